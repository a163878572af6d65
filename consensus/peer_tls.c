/*
 * peer_tls.c — TLS 1.3 channels between nodes (see peer_tls.h).
 *
 * One struct chan per TCP connection. Its life:
 *   CONNECTING (client) -> HANDSHAKE -> PREAMBLE (server reads it) -> OPEN
 *   -> CLOSED
 * Bytes from the network go into the SSL's input memory BIO; whatever
 * OpenSSL wants to send comes out of its output BIO and is written to TCP.
 * Once OPEN, decrypted bytes are written to our end of a socketpair and the
 * user's end delivers them; bytes the user writes come out of our end and
 * are encrypted. Closing either side closes the whole channel: the user sees
 * EOF, raft reconnects.
 *
 * A chan is freed when its handles (tcp, timer, inner pipe, and the user's
 * pipe if it was never handed over) have all closed.
 */
#include "peer_tls.h"
#include "kz_endian.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kz_error.h"
#include "kz_log.h"

#define PREAMBLE_MAGIC "KZCHAN01"
#define PREAMBLE_MAX KZ_CONS__PREAMBLE_MAX

/* Flow control. A channel stops reading from one side while the other
 * side's write queue holds more than HIGH_WATER bytes, and reads again
 * once it has drained below LOW_WATER: a slow peer (or a user not reading)
 * then backs up into the kernel's socket buffers and into raft's own send
 * queue, instead of into copies here without bound. */
#define HIGH_WATER (4u << 20)
#define LOW_WATER (1u << 20)

enum chan_state { CONNECTING, HANDSHAKE, PREAMBLE, OPEN, CLOSED };

struct chan;

struct kz_cons__tls {
    uv_loop_t *loop;
    struct kz_cons__tls_config cfg;
    char address[64], bind[64], cert[1024], key[1024], ca[1024], crl[1024];
    SSL_CTX *server_ctx, *client_ctx;
    uv_tcp_t listener;
    bool listening;
    kz_cons__accept_cb accept_cb;
    void *accept_data;
    struct chan *chans;
    int handles_open;
    bool closing;
    void (*close_cb)(void *);
    void *close_data;
    struct kz_cons__tls_stats stats;
};

struct chan {
    struct kz_cons__tls *t;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t timer;
    uv_pipe_t inner;
    uv_pipe_t *outer; /* user's end until handed over */
    bool inner_open, handed;
    bool inner_paused; /* not reading the user: TCP's queue is full */
    bool tcp_paused;   /* not reading TCP: the user's queue is full */
    SSL *ssl;
    BIO *net_in, *net_out;
    bool client;
    int kind;
    uint64_t peer_id; /* from the certificate (TLS) or the preamble */
    char peer_addr[64];
    char remote[64]; /* ip:port, for logs */
    int state;
    unsigned char pre[PREAMBLE_MAX];
    size_t pre_len;
    kz_cons__connect_cb connect_cb;
    void *connect_data;
    int handles;
    struct chan *next;
};

/* -------------------------------------------------------------- helpers */

static int split_addr(const char *addr, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    return uv_ip4_addr(host, atoi(colon + 1), sa);
}

static void tls_errmsg(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    char detail[200] = "unknown";
    if (e != 0)
        ERR_error_string_n(e, detail, sizeof detail);
    snprintf(buf, len, "%s: %s", what, detail);
    ERR_clear_error();
}

static void refuse(struct chan *k, const char *why)
{
    k->t->stats.refused++;
    kz_log_node(k->t->cfg.id, KZ_LOG_WARN, "peer channel refused",
                "direction=%s peer=%s reason=%s", k->client ? "to" : "from",
                k->remote, why);
}

/* The node id a certificate names: CN "node-<id>". */
static bool cert_node_id(X509 *cert, uint64_t *id)
{
    char cn[64];
    X509_NAME *subj = X509_get_subject_name(cert);
    if (X509_NAME_entry_count(subj) == 0 ||
        X509_NAME_get_index_by_NID(subj, NID_commonName, -1) < 0)
        return false;
    /* exactly one CN */
    int first = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (X509_NAME_get_index_by_NID(subj, NID_commonName, first) >= 0)
        return false;
    if (X509_NAME_get_text_by_NID(subj, NID_commonName, cn, sizeof cn) <= 0)
        return false;
    if (strncmp(cn, "node-", 5) != 0 || cn[5] < '1' || cn[5] > '9')
        return false;
    char *end;
    unsigned long long v = strtoull(cn + 5, &end, 10);
    if (*end != '\0' || v == 0)
        return false;
    *id = v;
    return true;
}

/* ---------------------------------------------------------------- closing */

static void maybe_done(struct kz_cons__tls *t)
{
    if (t->closing && t->handles_open == 0 && t->close_cb != NULL) {
        void (*cb)(void *) = t->close_cb;
        t->close_cb = NULL;
        cb(t->close_data);
    }
}

static void chan_handle_closed(uv_handle_t *h)
{
    struct chan *k = h->data;
    struct kz_cons__tls *t = k->t;
    if (h == (uv_handle_t *)k->outer) {
        raft_free(k->outer);
        k->outer = NULL;
    }
    t->handles_open--;
    if (--k->handles == 0) {
        if (k->ssl != NULL)
            SSL_free(k->ssl); /* frees the BIOs too */
        free(k);
    }
    maybe_done(t);
}

static void chan_close(struct chan *k, int status)
{
    if (k->state == CLOSED)
        return;
    k->state = CLOSED;
    struct kz_cons__tls *t = k->t;
    for (struct chan **pp = &t->chans; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    if (k->client && !k->handed && k->connect_cb != NULL) {
        kz_cons__connect_cb cb = k->connect_cb;
        k->connect_cb = NULL;
        cb(k->connect_data, status ? status : KZ_ENET, NULL);
    }
    uv_close((uv_handle_t *)&k->tcp, chan_handle_closed);
    uv_close((uv_handle_t *)&k->timer, chan_handle_closed);
    if (k->inner_open)
        uv_close((uv_handle_t *)&k->inner, chan_handle_closed);
    if (k->outer != NULL && !k->handed)
        uv_close((uv_handle_t *)k->outer, chan_handle_closed);
}

/* ----------------------------------------------------------------- output */

static void inner_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void inner_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Resumes reading the side that was paused for s's queue, once it has
 * drained. Write callbacks of a closing handle run before its close
 * callback, so the chan is still there (and CLOSED). */
static void on_written(uv_write_t *w, int status)
{
    uv_stream_t *s = w->handle;
    free(w->data);
    struct chan *k = s->data;
    if (status != 0 || k == NULL || k->state == CLOSED ||
        s->write_queue_size > LOW_WATER)
        return;
    if (s == (uv_stream_t *)&k->tcp && k->inner_paused) {
        k->inner_paused = false;
        uv_read_start((uv_stream_t *)&k->inner, inner_alloc, inner_read);
    } else if (s == (uv_stream_t *)&k->inner && k->tcp_paused) {
        k->tcp_paused = false;
        uv_read_start((uv_stream_t *)&k->tcp, tcp_alloc, tcp_read);
    }
}

int kz_cons__write(uv_stream_t *s, const uv_buf_t *bufs, unsigned nbufs,
                   uv_write_cb cb)
{
    size_t total = 0, done = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (s->write_queue_size == 0) {
        /* A failure other than EAGAIN is left to uv_write, which reports
         * it as it always did (callback, then the read side's error). */
        int n = uv_try_write(s, bufs, nbufs);
        if (n > 0)
            done = (size_t)n;
    }
    if (done == total)
        return 0;
    struct kz_cons__wreq *w = malloc(sizeof *w + (total - done));
    if (w == NULL)
        return UV_ENOMEM;
    size_t skip = done, at = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->data + at, bufs[i].base + skip, len - skip);
        at += len - skip;
        skip = 0;
    }
    w->buf = uv_buf_init(w->data, (unsigned)at);
    w->w.data = w;
    int rv = uv_write(&w->w, s, &w->buf, 1, cb);
    if (rv != 0)
        free(w);
    return rv;
}

static int write_to(uv_stream_t *s, const void *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    return kz_cons__write(s, &b, 1, on_written) == 0 ? 0 : -1;
}

/* Sends whatever OpenSSL queued for the network. */
static int flush_net(struct chan *k)
{
    if (k->ssl == NULL)
        return 0;
    char buf[16384];
    int n;
    while ((n = BIO_read(k->net_out, buf, sizeof buf)) > 0)
        if (write_to((uv_stream_t *)&k->tcp, buf, (size_t)n) != 0)
            return -1;
    return 0;
}

/* Plaintext from the user (or our preamble) towards the peer. */
static int send_plain(struct chan *k, const void *data, size_t len)
{
    if (k->ssl == NULL)
        return write_to((uv_stream_t *)&k->tcp, data, len);
    const char *p = data;
    while (len > 0) {
        int n = SSL_write(k->ssl, p, (int)(len > 16384 ? 16384 : len));
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return flush_net(k);
}

/* ------------------------------------------------------------ inner pipe */

static void inner_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void inner_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct chan *k = s->data;
    if (n < 0) {
        free(buf->base);
        chan_close(k, KZ_ENET); /* the user closed its end */
        return;
    }
    if (n > 0 && k->state == OPEN && send_plain(k, buf->base, (size_t)n) != 0)
        chan_close(k, KZ_ENET);
    free(buf->base);
    if (k->state == OPEN && !k->inner_paused &&
        k->tcp.write_queue_size > HIGH_WATER) {
        k->inner_paused = true;
        k->t->stats.paused++;
        uv_read_stop((uv_stream_t *)&k->inner);
    }
}

/* Makes the socketpair, starts pumping, returns the user's end. */
static uv_stream_t *open_inner(struct chan *k)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return NULL;
    struct kz_cons__tls *t = k->t;
    k->outer = raft_malloc(sizeof *k->outer);
    if (k->outer == NULL) {
        close(sv[0]);
        close(sv[1]);
        return NULL;
    }
    uv_pipe_init(t->loop, &k->inner, 0);
    k->inner.data = k;
    k->inner_open = true;
    k->handles++;
    t->handles_open++;
    uv_pipe_init(t->loop, k->outer, 0);
    k->outer->data = k;
    k->handles++;
    t->handles_open++;
    if (uv_pipe_open(&k->inner, sv[0]) != 0 ||
        uv_pipe_open(k->outer, sv[1]) != 0)
        return NULL; /* chan_close closes both handles (and the fds) */
    uv_read_start((uv_stream_t *)&k->inner, inner_alloc, inner_read);
    return (uv_stream_t *)k->outer;
}

/* The user's end now belongs to the user: its close is not ours. */
static void hand_over(struct chan *k)
{
    k->handed = true;
    k->handles--;
    k->t->handles_open--;
}

/* --------------------------------------------------------- the channel */

static void deliver_plain(struct chan *k, const unsigned char *p, size_t n)
{
    if (n > 0 && write_to((uv_stream_t *)&k->inner, p, n) != 0)
        chan_close(k, KZ_ENET);
}

int kz_cons__preamble_parse(const unsigned char *buf, size_t len,
                            struct kz_cons__preamble *out, const char **why)
{
    if (len < 19) {
        /* Refuse a wrong magic as soon as it shows. */
        size_t m = len < 8 ? len : 8;
        if (memcmp(buf, PREAMBLE_MAGIC, m) != 0) {
            *why = "bad preamble";
            return -1;
        }
        return 0;
    }
    if (memcmp(buf, PREAMBLE_MAGIC, 8) != 0) {
        *why = "bad preamble";
        return -1;
    }
    int kind = buf[8];
    if (kind != KZ_CHAN_RAFT && kind != KZ_CHAN_PEER) {
        *why = "unknown channel kind";
        return -1;
    }
    size_t alen = ((size_t)buf[17] << 8) | buf[18];
    if (alen == 0 || alen >= sizeof out->address) {
        *why = "bad preamble address";
        return -1;
    }
    if (len < 19 + alen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (buf[19 + i] <= ' ' || buf[19 + i] >= 0x7f) {
            *why = "bad preamble address";
            return -1;
        }
    uint64_t id = kz_get_be64(buf + 9);
    if (id == 0) {
        *why = "raft id 0";
        return -1;
    }
    out->kind = kind;
    out->id = id;
    memcpy(out->address, buf + 19, alen);
    out->address[alen] = '\0';
    out->length = 19 + alen;
    return 1;
}

size_t kz_cons__preamble_build(int kind, uint64_t id, const char *address,
                               unsigned char *out)
{
    size_t alen = strlen(address);
    if (alen == 0 || alen >= sizeof((struct kz_cons__preamble *)0)->address)
        return 0;
    memcpy(out, PREAMBLE_MAGIC, 8);
    out[8] = (unsigned char)kind;
    kz_put_be64(out + 9, id);
    out[17] = (unsigned char)(alen >> 8);
    out[18] = (unsigned char)alen;
    memcpy(out + 19, address, alen);
    return 19 + alen;
}

/* Server side: collects and checks the preamble, then hands over. */
static void preamble_bytes(struct chan *k, const unsigned char *p, size_t n)
{
    size_t take = n;
    if (k->pre_len + take > sizeof k->pre)
        take = sizeof k->pre - k->pre_len;
    memcpy(k->pre + k->pre_len, p, take);
    k->pre_len += take;
    struct kz_cons__preamble pre;
    const char *why = NULL;
    int rv = kz_cons__preamble_parse(k->pre, k->pre_len, &pre, &why);
    if (rv == 0)
        return;
    if (rv < 0) {
        refuse(k, why);
        chan_close(k, KZ_ECORRUPT);
        return;
    }
    if (k->ssl != NULL && pre.id != k->peer_id) {
        char msg[96];
        snprintf(msg, sizeof msg,
                 "claims raft id %llu, certificate names node-%llu",
                 (unsigned long long)pre.id, (unsigned long long)k->peer_id);
        refuse(k, msg);
        chan_close(k, KZ_ECORRUPT);
        return;
    }
    k->peer_id = pre.id;
    k->kind = pre.kind;
    snprintf(k->peer_addr, sizeof k->peer_addr, "%s", pre.address);
    uv_timer_stop(&k->timer);
    uv_stream_t *s = open_inner(k);
    if (s == NULL) {
        chan_close(k, KZ_ENOMEM);
        return;
    }
    k->state = OPEN;
    k->t->stats.accepted++;
    hand_over(k);
    k->t->accept_cb(k->t->accept_data, pre.kind, pre.id, k->peer_addr, s);
    /* Bytes that followed the preamble in the same read. */
    if (k->state == OPEN && k->pre_len > pre.length)
        deliver_plain(k, k->pre + pre.length, k->pre_len - pre.length);
    if (k->state == OPEN && take < n)
        deliver_plain(k, p + take, n - take);
}

static void got_plain(struct chan *k, const unsigned char *p, size_t n)
{
    if (k->state == PREAMBLE)
        preamble_bytes(k, p, n);
    else if (k->state == OPEN)
        deliver_plain(k, p, n);
}

/* Client side, once the server is authenticated (or in plaintext mode). */
static void client_ready(struct chan *k)
{
    unsigned char pre[PREAMBLE_MAX];
    size_t plen = kz_cons__preamble_build(k->kind, k->t->cfg.id,
                                          k->t->address, pre);
    if (plen == 0 || send_plain(k, pre, plen) != 0) {
        chan_close(k, KZ_ENET);
        return;
    }
    uv_stream_t *s = open_inner(k);
    if (s == NULL) {
        chan_close(k, KZ_ENOMEM);
        return;
    }
    uv_timer_stop(&k->timer);
    k->state = OPEN;
    k->t->stats.connected++;
    hand_over(k);
    kz_cons__connect_cb cb = k->connect_cb;
    k->connect_cb = NULL;
    cb(k->connect_data, 0, s);
}

/* Checks the peer's certificate after the handshake. */
static bool verify_peer(struct chan *k, uint64_t expect)
{
    if (SSL_get_verify_result(k->ssl) != X509_V_OK) {
        refuse(k, X509_verify_cert_error_string(
                      SSL_get_verify_result(k->ssl)));
        return false;
    }
    X509 *cert = SSL_get0_peer_certificate(k->ssl);
    uint64_t id;
    if (cert == NULL || !cert_node_id(cert, &id)) {
        refuse(k, "certificate does not name a node (CN node-<id>)");
        return false;
    }
    if (expect != 0 && id != expect) {
        char why[96];
        snprintf(why, sizeof why, "expected node-%llu, certificate names node-%llu",
                 (unsigned long long)expect, (unsigned long long)id);
        refuse(k, why);
        return false;
    }
    k->peer_id = id;
    return true;
}

static void drive_tls(struct chan *k)
{
    if (k->state == HANDSHAKE) {
        int rv = SSL_do_handshake(k->ssl);
        if (flush_net(k) != 0) {
            chan_close(k, KZ_ENET);
            return;
        }
        if (rv != 1) {
            int err = SSL_get_error(k->ssl, rv);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                return;
            char msg[256];
            long vr = SSL_get_verify_result(k->ssl);
            if (vr != X509_V_OK) { /* say which: revoked, expired, other CA */
                snprintf(msg, sizeof msg, "TLS handshake: peer certificate: %s",
                         X509_verify_cert_error_string(vr));
                ERR_clear_error();
            } else {
                tls_errmsg(msg, sizeof msg, "TLS handshake");
            }
            k->t->stats.handshakes_failed++;
            refuse(k, msg);
            chan_close(k, KZ_ENET);
            return;
        }
        if (!verify_peer(k, k->client ? k->peer_id : 0)) {
            chan_close(k, KZ_ENET);
            return;
        }
        if (k->client) {
            client_ready(k);
        } else {
            k->state = PREAMBLE;
        }
        if (k->state == CLOSED)
            return;
    }
    unsigned char buf[16384];
    while (k->state == PREAMBLE || k->state == OPEN) {
        int n = SSL_read(k->ssl, buf, sizeof buf);
        if (n <= 0) {
            int err = SSL_get_error(k->ssl, n);
            flush_net(k);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
                return;
            chan_close(k, KZ_ENET); /* close_notify or a TLS error */
            return;
        }
        got_plain(k, buf, (size_t)n);
    }
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct chan *k = s->data;
    if (n < 0) {
        free(buf->base);
        if (k->state == HANDSHAKE || k->state == PREAMBLE)
            refuse(k, "connection closed before the channel opened");
        bool gone = k->state == OPEN && k->t->cfg.peer_gone != NULL;
        uint64_t id = k->peer_id;
        struct kz_cons__tls *t = k->t;
        chan_close(k, KZ_ENET);
        if (gone)
            t->cfg.peer_gone(t->cfg.peer_gone_data, id);
        return;
    }
    if (n == 0) {
        free(buf->base);
        return;
    }
    if (k->ssl == NULL) {
        got_plain(k, (unsigned char *)buf->base, (size_t)n);
    } else {
        BIO_write(k->net_in, buf->base, (int)n);
        drive_tls(k);
    }
    free(buf->base);
    if (k->state == OPEN && !k->tcp_paused && k->inner_open &&
        k->inner.write_queue_size > HIGH_WATER) {
        k->tcp_paused = true;
        k->t->stats.paused++;
        uv_read_stop((uv_stream_t *)&k->tcp);
    }
}

static void on_deadline(uv_timer_t *timer)
{
    struct chan *k = timer->data;
    refuse(k, "no channel within the handshake deadline");
    chan_close(k, KZ_ETIMEDOUT);
}

static struct chan *chan_new(struct kz_cons__tls *t, bool client)
{
    struct chan *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->t = t;
    k->client = client;
    uv_tcp_init(t->loop, &k->tcp);
    k->tcp.data = k;
    uv_timer_init(t->loop, &k->timer);
    k->timer.data = k;
    k->handles = 2;
    t->handles_open += 2;
    k->next = t->chans;
    t->chans = k;
    /* The loop's cached time may be old (a long blocking call before
     * this): a deadline counted from it could already have passed. */
    uv_update_time(t->loop);
    uv_timer_start(&k->timer, on_deadline, t->cfg.handshake_timeout_ms, 0);
    return k;
}

static int start_tls(struct chan *k)
{
    struct kz_cons__tls *t = k->t;
    uv_tcp_nodelay(&k->tcp, 1);
    if (t->cfg.plaintext) {
        if (k->client) {
            client_ready(k);
        } else {
            k->state = PREAMBLE;
        }
        if (k->state != CLOSED)
            uv_read_start((uv_stream_t *)&k->tcp, tcp_alloc, tcp_read);
        return 0;
    }
    k->ssl = SSL_new(k->client ? t->client_ctx : t->server_ctx);
    if (k->ssl == NULL)
        return -1;
    k->net_in = BIO_new(BIO_s_mem());
    k->net_out = BIO_new(BIO_s_mem());
    if (k->net_in == NULL || k->net_out == NULL) {
        BIO_free(k->net_in);
        BIO_free(k->net_out);
        k->net_in = k->net_out = NULL;
        return -1;
    }
    SSL_set_bio(k->ssl, k->net_in, k->net_out);
    if (k->client)
        SSL_set_connect_state(k->ssl);
    else
        SSL_set_accept_state(k->ssl);
    k->state = HANDSHAKE;
    uv_read_start((uv_stream_t *)&k->tcp, tcp_alloc, tcp_read);
    drive_tls(k); /* the client speaks first */
    return 0;
}

static void on_tcp_connect(uv_connect_t *req, int status)
{
    struct chan *k = req->data;
    if (k->state == CLOSED)
        return;
    if (status != 0) {
        chan_close(k, KZ_ENET);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&k->tcp, (struct sockaddr *)&ss, &len) == 0)
        uv_ip4_name((struct sockaddr_in *)&ss, k->remote, sizeof k->remote);
    if (start_tls(k) != 0)
        chan_close(k, KZ_ENOMEM);
}

void *kz_cons__tls_connect(struct kz_cons__tls *t, int kind, uint64_t id,
                           const char *address, kz_cons__connect_cb cb,
                           void *data)
{
    struct sockaddr_in sa;
    if (t->closing || split_addr(address, &sa) != 0)
        return NULL;
    struct chan *k = chan_new(t, true);
    if (k == NULL)
        return NULL;
    k->kind = kind;
    k->peer_id = id;
    k->state = CONNECTING;
    k->connect_cb = cb;
    k->connect_data = data;
    snprintf(k->remote, sizeof k->remote, "%s", address);
    k->creq.data = k;
    if (uv_tcp_connect(&k->creq, &k->tcp, (struct sockaddr *)&sa,
                       on_tcp_connect) != 0) {
        k->connect_cb = NULL; /* not started: the caller hears it now */
        chan_close(k, KZ_ENET);
        return NULL;
    }
    return k;
}

void kz_cons__tls_cancel(struct kz_cons__tls *t, void *pending)
{
    for (struct chan *k = t->chans; k != NULL; k = k->next)
        if (k == pending && !k->handed) {
            chan_close(k, KZ_ECANCELED);
            return;
        }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct kz_cons__tls *t = server->data;
    if (status != 0 || t->closing)
        return;
    struct chan *k = chan_new(t, false);
    if (k == NULL)
        return;
    if (uv_accept(server, (uv_stream_t *)&k->tcp) != 0) {
        chan_close(k, KZ_ENET);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&k->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[48];
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        snprintf(k->remote, sizeof k->remote, "%s:%d", ip,
                 ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    if (start_tls(k) != 0)
        chan_close(k, KZ_ENOMEM);
}

/* ------------------------------------------------------------- contexts */

static SSL_CTX *make_ctx(struct kz_cons__tls *t, bool server, char *errmsg,
                         size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
                                      : TLS_client_method());
    if (ctx == NULL) {
        tls_errmsg(errmsg, errlen, "peer TLS context");
        return NULL;
    }
    /* Nodes run the same build: TLS 1.3 only, no resumption, no tickets. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        tls_errmsg(errmsg, errlen, t->cert);
        goto err;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_errmsg(errmsg, errlen, t->key);
        goto err;
    }
    if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
        tls_errmsg(errmsg, errlen, t->ca);
        goto err;
    }
    if (t->crl[0] != '\0') {
        /* A revoked node certificate is refused on both sides. */
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (lookup == NULL ||
            X509_load_crl_file(lookup, t->crl, X509_FILETYPE_PEM) <= 0) {
            tls_errmsg(errmsg, errlen, t->crl);
            goto err;
        }
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       NULL);
    return ctx;
err:
    SSL_CTX_free(ctx);
    return NULL;
}

int kz_cons__tls_reload(struct kz_cons__tls *t, char *errmsg, size_t errlen)
{
    if (t->cfg.plaintext)
        return KZ_OK;
    SSL_CTX *s = make_ctx(t, true, errmsg, errlen);
    if (s == NULL)
        return KZ_ECONFIG;
    SSL_CTX *c = make_ctx(t, false, errmsg, errlen);
    if (c == NULL) {
        SSL_CTX_free(s);
        return KZ_ECONFIG;
    }
    /* Channels already open keep their SSL (which holds a reference to
     * its context); new ones use the new files. */
    SSL_CTX_free(t->server_ctx);
    SSL_CTX_free(t->client_ctx);
    t->server_ctx = s;
    t->client_ctx = c;
    return KZ_OK;
}

int kz_cons__tls_new(struct kz_cons__tls **out, uv_loop_t *loop,
                     const struct kz_cons__tls_config *cfg, char *errmsg,
                     size_t errlen)
{
    struct kz_cons__tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return KZ_ENOMEM;
    t->loop = loop;
    t->cfg = *cfg;
    snprintf(t->address, sizeof t->address, "%s", cfg->address);
    snprintf(t->bind, sizeof t->bind, "%s", cfg->bind ? cfg->bind : cfg->address);
    snprintf(t->cert, sizeof t->cert, "%s", cfg->cert ? cfg->cert : "");
    snprintf(t->key, sizeof t->key, "%s", cfg->key ? cfg->key : "");
    snprintf(t->ca, sizeof t->ca, "%s", cfg->ca ? cfg->ca : "");
    snprintf(t->crl, sizeof t->crl, "%s", cfg->crl ? cfg->crl : "");
    t->cfg.address = t->cfg.bind = t->cfg.cert = t->cfg.key = t->cfg.ca = NULL;
    t->cfg.crl = NULL;
    if (t->cfg.handshake_timeout_ms == 0)
        t->cfg.handshake_timeout_ms = 5000;
    if (!cfg->plaintext) {
        int rv = kz_cons__tls_reload(t, errmsg, errlen);
        if (rv != KZ_OK) {
            free(t);
            return rv;
        }
    }
    *out = t;
    return KZ_OK;
}

int kz_cons__tls_listen(struct kz_cons__tls *t, kz_cons__accept_cb cb,
                        void *data, char *errmsg, size_t errlen)
{
    struct sockaddr_in sa;
    if (split_addr(t->bind, &sa) != 0) {
        snprintf(errmsg, errlen, "bad listen address %s", t->bind);
        return KZ_ECONFIG;
    }
    t->accept_cb = cb;
    t->accept_data = data;
    uv_tcp_init(t->loop, &t->listener);
    t->listener.data = t;
    t->handles_open++;
    t->listening = true;
    int rv = uv_tcp_bind(&t->listener, (struct sockaddr *)&sa, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
    if (rv != 0) {
        snprintf(errmsg, errlen, "listen on %s: %s", t->bind, uv_strerror(rv));
        return KZ_ENET;
    }
    return KZ_OK;
}

static void listener_closed(uv_handle_t *h)
{
    struct kz_cons__tls *t = h->data;
    t->handles_open--;
    maybe_done(t);
}

void kz_cons__tls_close(struct kz_cons__tls *t, void (*cb)(void *), void *data)
{
    t->closing = true;
    t->close_cb = cb;
    t->close_data = data;
    if (t->listening) {
        t->listening = false;
        uv_close((uv_handle_t *)&t->listener, listener_closed);
    }
    while (t->chans != NULL)
        chan_close(t->chans, KZ_ECANCELED);
    maybe_done(t);
}

void kz_cons__tls_free(struct kz_cons__tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->server_ctx);
    SSL_CTX_free(t->client_ctx);
    free(t);
}

void kz_cons__tls_stats(struct kz_cons__tls *t, struct kz_cons__tls_stats *out)
{
    *out = t->stats;
    out->queued = 0;
    for (const struct chan *k = t->chans; k != NULL; k = k->next) {
        out->queued += k->tcp.write_queue_size;
        if (k->inner_open)
            out->queued += k->inner.write_queue_size;
    }
}
