/*
 * test_peer_tls.c — the node-to-node channels of consensus/peer_tls.h over
 * real TLS on loopback: a good channel carries bytes both ways; a wrong
 * node id (either side), a certificate from another CA, plaintext on the
 * port, a silent client and a TLS 1.2 client are all refused, and the
 * listener keeps serving.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <raft.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kz_test_ports.h"
#include "kz_error.h"
#include "peer_tls.h"

static uv_loop_t loop;
static char pki[64], other_pki[64];
static int port;
static struct kz_cons__tls *server;

struct accepted {
    int count;
    int kind;
    uint64_t id;
    char addr[64];
    uv_stream_t *s;
    char got[64];
    size_t got_len;
};
static struct accepted acc;

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

static bool run_until(bool (*cond)(void *), void *arg, unsigned ms)
{
    uv_timer_t wake;
    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, on_wake, 10, 10);
    uv_update_time(&loop); /* setup's gen-pki may have taken seconds */
    uint64_t end = uv_now(&loop) + ms;
    bool ok;
    while (!(ok = cond(arg)) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static void gen(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "'%s/deploy/gen-pki' %s 1:127.0.0.1 2:127.0.0.1 3:127.0.0.1 "
             ">/dev/null 2>&1",
             KZ_SOURCE_DIR, dir);
    cr_assert_eq(system(cmd), 0, "gen-pki %s", dir);
}

static struct kz_cons__tls *make_with(const char *cert, const char *key,
                                      uint64_t id, unsigned handshake_ms,
                                      const char *crl);

static struct kz_cons__tls *make(const char *dir, int cert_node, uint64_t id,
                                 unsigned handshake_ms)
{
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/node-%d.pem", dir, cert_node);
    snprintf(key, sizeof key, "%s/node-%d.key", dir, cert_node);
    return make_with(cert, key, id, handshake_ms, NULL);
}

static struct kz_cons__tls *make_with(const char *cert, const char *key,
                                      uint64_t id, unsigned handshake_ms,
                                      const char *crl)
{
    char ca[128], addr[64];
    snprintf(ca, sizeof ca, "%s/ca.pem", pki); /* trust our CA */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    struct kz_cons__tls_config cfg = {.id = id,
                                      .address = addr,
                                      .bind = addr,
                                      .cert = cert,
                                      .key = key,
                                      .ca = ca,
                                      .crl = crl,
                                      .handshake_timeout_ms = handshake_ms};
    struct kz_cons__tls *t;
    char err[256];
    cr_assert_eq(kz_cons__tls_new(&t, &loop, &cfg, err, sizeof err), KZ_OK,
                 "%s", err);
    return t;
}

static void free_stream(uv_handle_t *h)
{
    raft_free(h);
}

static void acc_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    (void)s;
    b->base = malloc(256);
    b->len = 256;
}

static void acc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    if (n > 0 && acc.got_len + (size_t)n < sizeof acc.got) {
        memcpy(acc.got + acc.got_len, b->base, (size_t)n);
        acc.got_len += (size_t)n;
    }
    free(b->base);
}

static void on_accept(void *data, int kind, uint64_t id, const char *address,
                      uv_stream_t *s)
{
    (void)data;
    acc.count++;
    acc.kind = kind;
    acc.id = id;
    snprintf(acc.addr, sizeof acc.addr, "%s", address);
    acc.s = s;
    uv_read_start(s, acc_alloc, acc_read);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    memset(&acc, 0, sizeof acc);
    uv_loop_init(&loop);
    port = kz_test_free_ports(1);
    cr_assert_geq(port, 0, "no free loopback ports");
    snprintf(pki, sizeof pki, "/tmp/kz-tls-XXXXXX");
    snprintf(other_pki, sizeof other_pki, "/tmp/kz-tls-other-XXXXXX");
    cr_assert_not_null(mkdtemp(pki));
    cr_assert_not_null(mkdtemp(other_pki));
    gen(pki);
    gen(other_pki);
    server = make(pki, 2, 2, 400);
    char err[256];
    cr_assert_eq(kz_cons__tls_listen(server, on_accept, NULL, err, sizeof err),
                 KZ_OK, "%s", err);
}

static bool closed_flag;
static void on_closed(void *d)
{
    (void)d;
    closed_flag = true;
}
static bool is_closed(void *a)
{
    (void)a;
    return closed_flag;
}

static void close_tls(struct kz_cons__tls *t)
{
    closed_flag = false;
    kz_cons__tls_close(t, on_closed, NULL);
    cr_assert(run_until(is_closed, NULL, 5000));
    kz_cons__tls_free(t);
}

static void teardown(void)
{
    if (acc.s != NULL)
        uv_close((uv_handle_t *)acc.s, free_stream);
    close_tls(server);
    while (uv_run(&loop, UV_RUN_NOWAIT) != 0)
        ;
    uv_loop_close(&loop);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", pki, other_pki);
    cr_assert_eq(system(cmd), 0);
}

struct conn_result {
    int fired;
    int status;
    uv_stream_t *s;
};

static void on_connected(void *data, int status, uv_stream_t *s)
{
    struct conn_result *r = data;
    r->fired++;
    r->status = status;
    r->s = s;
}

static bool fired(void *a)
{
    return ((struct conn_result *)a)->fired > 0;
}

static bool accepted_or_refused(void *a)
{
    struct kz_cons__tls_stats st;
    kz_cons__tls_stats(server, &st);
    return acc.count > 0 || st.refused > *(uint64_t *)a;
}

/* The listener a has refused a channel (its own stats, not server's). */
static bool refused_by(void *a)
{
    struct kz_cons__tls_stats st;
    kz_cons__tls_stats((struct kz_cons__tls *)a, &st);
    return st.refused > 0;
}

static uint64_t refused(void)
{
    struct kz_cons__tls_stats st;
    kz_cons__tls_stats(server, &st);
    return st.refused;
}

static bool got_bytes(void *a)
{
    return acc.got_len >= *(size_t *)a;
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

TestSuite(peer_tls, .init = setup, .fini = teardown, .timeout = 60);

Test(peer_tls, good_channel_carries_bytes_and_names_the_peer)
{
    struct kz_cons__tls *client = make(pki, 1, 1, 2000);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    struct conn_result r = {0};
    cr_assert_not_null(kz_cons__tls_connect(client, KZ_CHAN_RAFT, 2, addr,
                                            on_connected, &r));
    cr_assert(run_until(fired, &r, 5000));
    cr_assert_eq(r.status, 0);
    cr_assert_not_null(r.s);
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init("hello raft", 10);
    cr_assert_eq(uv_write(w, r.s, &b, 1, on_written), 0);
    size_t want = 10;
    cr_assert(run_until(got_bytes, &want, 5000), "bytes never arrived");
    cr_assert_eq(acc.count, 1);
    cr_assert_eq(acc.kind, KZ_CHAN_RAFT);
    cr_assert_eq(acc.id, 1);
    cr_assert_str_eq(acc.addr, addr);
    cr_assert(memcmp(acc.got, "hello raft", 10) == 0);
    uv_close((uv_handle_t *)r.s, free_stream);
    close_tls(client);
}

Test(peer_tls, client_refuses_a_server_certificate_for_another_node)
{
    struct kz_cons__tls *client = make(pki, 1, 1, 2000);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    struct conn_result r = {0};
    /* The listener holds node-2's certificate; we expect node 3. */
    cr_assert_not_null(kz_cons__tls_connect(client, KZ_CHAN_RAFT, 3, addr,
                                            on_connected, &r));
    cr_assert(run_until(fired, &r, 5000));
    cr_assert_neq(r.status, 0);
    cr_assert_null(r.s);
    cr_assert_eq(acc.count, 0);
    close_tls(client);
}

Test(peer_tls, server_refuses_a_peer_claiming_another_id)
{
    /* Holds node-3's certificate but announces raft id 1. */
    struct kz_cons__tls *client = make(pki, 3, 1, 2000);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    uint64_t before = refused();
    struct conn_result r = {0};
    cr_assert_not_null(kz_cons__tls_connect(client, KZ_CHAN_PEER, 2, addr,
                                            on_connected, &r));
    cr_assert(run_until(accepted_or_refused, &before, 5000));
    cr_assert_eq(acc.count, 0, "a peer with a mismatched id was accepted");
    cr_assert_eq(refused(), before + 1);
    if (r.s != NULL)
        uv_close((uv_handle_t *)r.s, free_stream);
    close_tls(client);
}

Test(peer_tls, server_refuses_a_certificate_from_another_ca)
{
    struct kz_cons__tls *client = make(other_pki, 1, 1, 2000);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    uint64_t before = refused();
    struct conn_result r = {0};
    cr_assert_not_null(kz_cons__tls_connect(client, KZ_CHAN_RAFT, 2, addr,
                                            on_connected, &r));
    cr_assert(run_until(accepted_or_refused, &before, 5000));
    cr_assert_eq(acc.count, 0);
    cr_assert_gt(refused(), before);
    if (r.s != NULL)
        uv_close((uv_handle_t *)r.s, free_stream);
    close_tls(client);
}

/* Raw sockets for plaintext and silent clients. */
static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

Test(peer_tls, plaintext_on_the_peer_port_is_refused)
{
    uint64_t before = refused();
    int fd = raw_connect();
    const char *junk = "KZCHAN01 I am node 1, trust me\r\n\r\n";
    cr_assert_eq(write(fd, junk, strlen(junk)), (ssize_t)strlen(junk));
    cr_assert(run_until(accepted_or_refused, &before, 5000));
    cr_assert_eq(acc.count, 0);
    struct kz_cons__tls_stats st;
    kz_cons__tls_stats(server, &st);
    cr_assert_geq(st.handshakes_failed, 1);
    close(fd);
}

Test(peer_tls, silent_client_is_dropped_at_the_deadline)
{
    uint64_t before = refused();
    int fd = raw_connect();
    /* Handshake deadline of the listener: 400 ms. */
    cr_assert(run_until(accepted_or_refused, &before, 5000));
    cr_assert_eq(acc.count, 0);
    close(fd);
}

Test(peer_tls, tls12_client_is_refused_and_tls13_is_used)
{
    char cmd[1024];
    /* A TLS 1.2 client with a valid node certificate. */
    snprintf(cmd, sizeof cmd,
             "timeout 10 openssl s_client -connect 127.0.0.1:%d -tls1_2 "
             "-cert %s/node-1.pem -key %s/node-1.key -CAfile %s/ca.pem "
             "</dev/null >/dev/null 2>&1",
             port, pki, pki, pki);
    /* s_client runs in a child while this loop serves it. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(system(cmd) == 0 ? 0 : 1);
    uint64_t before = refused();
    cr_assert(run_until(accepted_or_refused, &before, 8000));
    int st;
    waitpid(pid, &st, 0);
    cr_assert_eq(acc.count, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1,
              "openssl s_client -tls1_2 completed a handshake");
}

Test(peer_tls, revoked_node_certificate_is_refused)
{
    /* tls_pki.sh wants DIR/pki: point it at a directory holding ours. */
    char base[128], cmd[1024], cert[256], key[256], crl[256];
    snprintf(base, sizeof base, "%s/crl", pki);
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s && ln -s %s %s/pki && S='%s/tests/integration/"
             "tls_pki.sh' && \"$S\" %s issue node-1 peer >/dev/null && "
             "\"$S\" %s revoke node-1 >/dev/null && "
             "\"$S\" %s crl %s/crl.pem >/dev/null",
             base, pki, base, KZ_SOURCE_DIR, base, base, base, base);
    cr_assert_eq(system(cmd), 0, "making a revoked certificate and its CRL");
    snprintf(cert, sizeof cert, "%s/tls/node-1.pem", base);
    snprintf(key, sizeof key, "%s/tls/node-1.key", base);
    snprintf(crl, sizeof crl, "%s/crl.pem", base);

    /* A second listener, on port + 1, that checks the CRL. */
    port++;
    char ncert[128], nkey[128];
    snprintf(ncert, sizeof ncert, "%s/node-2.pem", pki);
    snprintf(nkey, sizeof nkey, "%s/node-2.key", pki);
    struct kz_cons__tls *checking = make_with(ncert, nkey, 2, 2000, crl);
    char err[256];
    cr_assert_eq(kz_cons__tls_listen(checking, on_accept, NULL, err,
                                     sizeof err),
                 KZ_OK, "%s", err);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);

    struct kz_cons__tls *revoked = make_with(cert, key, 1, 2000, NULL);
    struct conn_result r = {0};
    cr_assert_not_null(kz_cons__tls_connect(revoked, KZ_CHAN_PEER, 2, addr,
                                            on_connected, &r));
    cr_assert(run_until(fired, &r, 5000));
    cr_assert(run_until(refused_by, checking, 5000),
              "a revoked node certificate was not refused");
    cr_assert_eq(acc.count, 0);
    if (r.s != NULL)
        uv_close((uv_handle_t *)r.s, free_stream);

    /* Control: node 1's own (not revoked) certificate still gets in. */
    struct kz_cons__tls *good = make(pki, 1, 1, 2000);
    struct conn_result g = {0};
    cr_assert_not_null(kz_cons__tls_connect(good, KZ_CHAN_PEER, 2, addr,
                                            on_connected, &g));
    cr_assert(run_until(fired, &g, 5000));
    cr_assert_eq(g.status, 0);
    size_t want = 1;
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init("x", 1);
    cr_assert_eq(uv_write(w, g.s, &b, 1, on_written), 0);
    cr_assert(run_until(got_bytes, &want, 5000));
    cr_assert_eq(acc.count, 1);
    uv_close((uv_handle_t *)g.s, free_stream);
    close_tls(good);
    close_tls(revoked);
    close_tls(checking);
}

/* ------------------------------------------------------------ flow control */

#define FLOW_CHUNK (1u << 20)
#define FLOW_CHUNKS 64
#define FLOW_BOUND (8u << 20) /* 4 MB high water, plus a read in flight */

struct flow_write {
    uv_write_t w;
    unsigned char data[FLOW_CHUNK];
};

static struct {
    size_t got;
    bool bad;
} sink;

static void flow_written(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
}

static void sink_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    (void)s;
    b->base = malloc(65536);
    b->len = 65536;
}

static void sink_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)s;
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)b->base[i] != (unsigned char)((sink.got + (size_t)i) % 251))
            sink.bad = true;
    if (n > 0)
        sink.got += (size_t)n;
    free(b->base);
}

static bool both_paused(void *a)
{
    struct kz_cons__tls *client = a;
    struct kz_cons__tls_stats cs, ss;
    kz_cons__tls_stats(client, &cs);
    kz_cons__tls_stats(server, &ss);
    return cs.paused > 0 && ss.paused > 0;
}

static bool sink_full(void *a)
{
    (void)a;
    return sink.got >= (size_t)FLOW_CHUNK * FLOW_CHUNKS || sink.bad;
}

static bool accepted(void *a)
{
    (void)a;
    return acc.s != NULL;
}

/* A user that stops reading makes both ends of the channel stop reading
 * (the receiver from TCP, the sender from its user), so what the channels
 * hold stays bounded while 64 MB wait in the writer's own queue; once the
 * reader reads again every byte arrives, in order. */
Test(peer_tls, a_reader_that_stops_bounds_what_the_channel_queues)
{
    struct kz_cons__tls *client = make(pki, 1, 1, 2000);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    struct conn_result r = {0};
    cr_assert_not_null(kz_cons__tls_connect(client, KZ_CHAN_RAFT, 2, addr,
                                            on_connected, &r));
    cr_assert(run_until(fired, &r, 5000));
    cr_assert_eq(r.status, 0);
    cr_assert(run_until(accepted, NULL, 5000));
    uv_read_stop(acc.s); /* the reader holds off */
    for (unsigned c = 0; c < FLOW_CHUNKS; c++) {
        struct flow_write *fw = malloc(sizeof *fw);
        cr_assert_not_null(fw);
        for (size_t i = 0; i < FLOW_CHUNK; i++)
            fw->data[i] = (unsigned char)(((size_t)c * FLOW_CHUNK + i) % 251);
        fw->w.data = fw;
        uv_buf_t b = uv_buf_init((char *)fw->data, FLOW_CHUNK);
        cr_assert_eq(uv_write(&fw->w, r.s, &b, 1, flow_written), 0);
    }
    cr_assert(run_until(both_paused, client, 20000),
              "the channel never stopped reading");
    struct kz_cons__tls_stats cs, ss;
    kz_cons__tls_stats(client, &cs);
    kz_cons__tls_stats(server, &ss);
    cr_assert_leq(cs.queued, FLOW_BOUND, "sender queues %llu bytes",
                  (unsigned long long)cs.queued);
    cr_assert_leq(ss.queued, FLOW_BOUND, "receiver queues %llu bytes",
                  (unsigned long long)ss.queued);
    cr_assert_gt(r.s->write_queue_size, (size_t)FLOW_CHUNK * FLOW_CHUNKS / 2,
                 "the writer's own queue should hold most of it");
    memset(&sink, 0, sizeof sink);
    uv_read_start(acc.s, sink_alloc, sink_read);
    cr_assert(run_until(sink_full, NULL, 30000), "got %zu bytes", sink.got);
    cr_assert(!sink.bad, "bytes arrived changed or out of order");
    cr_assert_eq(sink.got, (size_t)FLOW_CHUNK * FLOW_CHUNKS);
    kz_cons__tls_stats(client, &cs);
    kz_cons__tls_stats(server, &ss);
    cr_assert_eq(cs.queued + ss.queued, 0);
    uv_close((uv_handle_t *)r.s, free_stream);
    close_tls(client);
}

/* kz_cons__write: bytes go out at once while nothing is queued (no
 * callback), what the socket does not take is queued with one callback,
 * and the reader gets every byte in the order written either way. */
struct wtest {
    int callbacks;
    unsigned char *got;
    size_t got_len, want;
};
static struct wtest wt;

static void wt_written(uv_write_t *w, int status)
{
    cr_expect_eq(status, 0);
    wt.callbacks++;
    free(w->data);
}

static void wt_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)s;
    if (n > 0) {
        cr_assert_leq(wt.got_len + (size_t)n, wt.want);
        memcpy(wt.got + wt.got_len, buf->base, (size_t)n);
        wt.got_len += (size_t)n;
    }
    free(buf->base);
}

static bool wt_all_read(void *a)
{
    return wt.got_len == wt.want && wt.callbacks == *(int *)a;
}

Test(peer_tls, writes_go_out_at_once_or_queued_in_order)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uv_pipe_t a, b;
    uv_pipe_init(&loop, &a, 0);
    uv_pipe_init(&loop, &b, 0);
    cr_assert_eq(uv_pipe_open(&a, sv[0]), 0);
    cr_assert_eq(uv_pipe_open(&b, sv[1]), 0);
    /* Far more than a socketpair's buffer, so that some must queue. */
    size_t total = 8u << 20, at = 0;
    unsigned char *data = malloc(total);
    cr_assert_not_null(data);
    for (size_t i = 0; i < total; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    memset(&wt, 0, sizeof wt);
    wt.want = total;
    wt.got = malloc(total);
    cr_assert_not_null(wt.got);

    /* A small write of three pieces, nothing queued: out now. */
    uv_buf_t small[3] = {uv_buf_init((char *)data, 5),
                         uv_buf_init(NULL, 0),
                         uv_buf_init((char *)data + 5, 95)};
    cr_assert_eq(kz_cons__write((uv_stream_t *)&a, small, 3, wt_written), 0);
    at = 100;
    cr_assert_eq(a.write_queue_size, 0, "a small write was queued");
    /* Large writes until the socket stops taking them: the rest queues. */
    while (at < total && a.write_queue_size == 0) {
        uv_buf_t piece = uv_buf_init((char *)data + at, 1u << 20);
        cr_assert_eq(kz_cons__write((uv_stream_t *)&a, &piece, 1, wt_written),
                     0);
        at += 1u << 20;
    }
    cr_assert_gt(a.write_queue_size, 0, "the socket took 8 MB unread");
    int queued = 1; /* the write that filled the socket */
    /* While some are queued, the next bytes queue behind them. */
    while (at < total) {
        size_t len = total - at < 300000 ? total - at : 300000;
        uv_buf_t piece = uv_buf_init((char *)data + at, (unsigned)len);
        cr_assert_eq(kz_cons__write((uv_stream_t *)&a, &piece, 1, wt_written),
                     0);
        at += len;
        queued++;
    }
    uv_read_start((uv_stream_t *)&b, sink_alloc, wt_read);
    cr_assert(run_until(wt_all_read, &queued, 10000),
              "read %zu of %zu bytes, %d callbacks for %d queued writes",
              wt.got_len, wt.want, wt.callbacks, queued);
    /* Only queued writes call back: the ones that went out at once not. */
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(wt.callbacks, queued);
    cr_assert_eq(memcmp(wt.got, data, total), 0, "bytes out of order");
    cr_assert_eq(a.write_queue_size, 0);
    uv_close((uv_handle_t *)&a, NULL);
    uv_close((uv_handle_t *)&b, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    free(wt.got);
    free(data);
}
