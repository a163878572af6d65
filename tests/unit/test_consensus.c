/*
 * test_consensus.c — consensus/ with three real raft nodes in one process,
 * on one libuv loop, over loopback TCP: election, proposals on the leader
 * and forwarded from followers, read index on a follower, status queries,
 * leader loss, and that every request's callback fires exactly once, also
 * on close. Runs under ASan in make check.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kz_test_ports.h"
#include "consensus.h"

#define N 3

struct tnode {
    kz_cons *c;
    uint64_t applied;
    char log[8192]; /* applied commands, ';'-separated */
    bool closed;
    uint64_t state_bytes; /* what t_state_bytes claims */
    unsigned snapshots;   /* images taken */
};

static uv_loop_t loop;
static struct tnode nodes[N];
static char dirs[N][64];
static char pki[64];
static int base_port;
static unsigned heartbeat_ms = 50; /* restart_slow_heartbeat: 1500 */
/* Nodes started without fsm.merge_each, as an older version is. */
static bool no_each[3];

static int t_apply(void *data, uint64_t index, const char *cmd, size_t len,
                   bool want, char **result, size_t *rlen)
{
    struct tnode *t = data;
    size_t used = strlen(t->log);
    if (used + len + 2 < sizeof t->log) {
        memcpy(t->log + used, cmd, len);
        t->log[used + len] = ';';
        t->log[used + len + 1] = '\0';
    }
    t->applied = index;
    if (want && len > 5 && memcmp(cmd, "each:", 5) == 0) {
        /* Merged with t_merge_each: "ok:<part>" for each '&'-separated
         * part, framed (4-byte big-endian length, bytes); a part
         * "trunc..." ends the result there (those after get none). */
        char *out = malloc(2 * len + 64);
        size_t off = 0;
        const char *p = cmd + 5, *end = cmd + len;
        while (p < end) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            size_t pl = (size_t)((amp ? amp : end) - p);
            if (pl >= 5 && memcmp(p, "trunc", 5) == 0)
                break;
            uint32_t n = (uint32_t)pl + 3;
            unsigned char be[4] = {n >> 24, n >> 16, n >> 8, n};
            memcpy(out + off, be, 4);
            memcpy(out + off + 4, "ok:", 3);
            memcpy(out + off + 7, p, pl);
            off += 4 + n;
            p += pl + 1;
        }
        *result = out;
        *rlen = off;
    } else if (want) {
        *result = malloc(len + 4);
        memcpy(*result, "ok:", 3);
        memcpy(*result + 3, cmd, len);
        (*result)[len + 3] = '\0';
        *rlen = len + 3;
    }
    return 0;
}

/* Joins the commands with '+'; refuses any that starts with 'x' (they
 * then go one by one). */
static int t_merge(void *data, const char *const *cmds, const size_t *lens,
                   size_t n, char **out, size_t *out_len)
{
    (void)data;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > 0 && cmds[i][0] == 'x')
            return KZ_EINVAL;
        total += lens[i] + 1;
    }
    char *m = malloc(total);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            m[off++] = '+';
        memcpy(m + off, cmds[i], lens[i]);
        off += lens[i];
    }
    *out = m;
    *out_len = off;
    return 0;
}

/* Joins batched commands as "each:a&b&c" (t_apply gives each its own
 * result); refuses any that starts with 'x'. */
static int t_merge_each(void *data, const char *const *cmds,
                        const size_t *lens, size_t n, char **out,
                        size_t *out_len)
{
    (void)data;
    size_t total = 5;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > 0 && cmds[i][0] == 'x')
            return KZ_EINVAL;
        total += lens[i] + 1;
    }
    char *m = malloc(total);
    memcpy(m, "each:", 5);
    size_t off = 5;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            m[off++] = '&';
        memcpy(m + off, cmds[i], lens[i]);
        off += lens[i];
    }
    *out = m;
    *out_len = off;
    return 0;
}

static uint64_t t_applied(void *data)
{
    return ((struct tnode *)data)->applied;
}

static int t_snapshot(void *data, void *(*alloc)(size_t), char **buf,
                      size_t *len)
{
    struct tnode *t = data;
    size_t n = strlen(t->log);
    t->snapshots++;
    *buf = alloc(8 + n + 1);
    memcpy(*buf, &t->applied, 8);
    memcpy(*buf + 8, t->log, n + 1);
    *len = 8 + n + 1;
    return 0;
}

static int t_restore(void *data, const char *buf, size_t len)
{
    struct tnode *t = data;
    uint64_t idx;
    if (len < 9)
        return KZ_ECORRUPT;
    memcpy(&idx, buf, 8);
    if (idx <= t->applied)
        return 0;
    t->applied = idx;
    snprintf(t->log, sizeof t->log, "%s", buf + 8);
    return 0;
}

static uint64_t t_state_bytes(void *data)
{
    return ((struct tnode *)data)->state_bytes;
}

static void on_wake(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until cond holds or ms pass. */
static bool run_until(bool (*cond)(void *), void *arg, unsigned ms)
{
    uv_timer_t wake;
    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, on_wake, 10, 10);
    uint64_t end = uv_now(&loop) + ms;
    bool ok = false;
    while (!(ok = cond(arg)) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static int leader_index(void)
{
    for (int i = 0; i < N; i++) {
        if (nodes[i].closed)
            continue;
        struct kz_cons_status st;
        kz_cons_get_status(nodes[i].c, &st);
        if (st.state == KZ_CONS_LEADER)
            return i;
    }
    return -1;
}

static bool has_leader(void *arg)
{
    (void)arg;
    int l = leader_index();
    if (l < 0)
        return false;
    /* and every live follower knows it */
    struct kz_cons_status ls;
    kz_cons_get_status(nodes[l].c, &ls);
    for (int i = 0; i < N; i++) {
        if (nodes[i].closed)
            continue;
        struct kz_cons_status st;
        kz_cons_get_status(nodes[i].c, &st);
        if (st.leader_id != ls.id)
            return false;
    }
    return true;
}

static void start_node(int i)
{
    struct kz_cons_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = (uint64_t)i + 1;
    cfg.dir = dirs[i];
    for (int j = 0; j < N; j++) {
        cfg.peers[j].id = (uint64_t)j + 1;
        snprintf(cfg.peers[j].region, sizeof cfg.peers[j].region, "r%d", j);
        snprintf(cfg.peers[j].raft_addr, sizeof cfg.peers[j].raft_addr,
                 "127.0.0.1:%d", base_port + j);
    }
    cfg.n_peers = N;
    cfg.election_timeout_ms = heartbeat_ms * 4 > 300 ? heartbeat_ms * 4 : 300;
    cfg.heartbeat_timeout_ms = heartbeat_ms;
    cfg.snapshot_threshold = 16;
    cfg.snapshot_trailing = 4;
    cfg.request_timeout_ms = 3000;
    char cert[128], key[128], ca[128];
    snprintf(cert, sizeof cert, "%s/node-%d.pem", pki, i + 1);
    snprintf(key, sizeof key, "%s/node-%d.key", pki, i + 1);
    snprintf(ca, sizeof ca, "%s/ca.pem", pki);
    cfg.tls_cert = cert;
    cfg.tls_key = key;
    cfg.tls_ca = ca;
    struct kz_cons_fsm fsm = {.data = &nodes[i],
                              .apply = t_apply,
                              .merge = t_merge,
                              .merge_each = no_each[i] ? NULL : t_merge_each,
                              .applied_index = t_applied,
                              .snapshot = t_snapshot,
                              .restore = t_restore,
                              .state_bytes = t_state_bytes};
    char err[256];
    cr_assert_eq(kz_cons_init(&nodes[i].c, &loop, &cfg, &fsm, err, sizeof err),
                 KZ_OK, "%s", err);
    cr_assert_eq(kz_cons_start(nodes[i].c, err, sizeof err), KZ_OK, "%s", err);
    nodes[i].closed = false;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as kizunad does: raft writes to dead peers */
    uv_loop_init(&loop);
    base_port = kz_test_free_ports(N + 2);
    cr_assert_geq(base_port, 0, "no free loopback ports");
    for (int i = 0; i < N; i++) {
        memset(&nodes[i], 0, sizeof nodes[i]);
        snprintf(dirs[i], sizeof dirs[i], "/tmp/kz-cons-XXXXXX");
        cr_assert_not_null(mkdtemp(dirs[i]));
    }
    /* Real TLS between the nodes: a dev PKI made by the deploy script. */
    snprintf(pki, sizeof pki, "/tmp/kz-cons-pki-XXXXXX");
    cr_assert_not_null(mkdtemp(pki));
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "'%s/deploy/gen-pki' %s 1:127.0.0.1 2:127.0.0.1 3:127.0.0.1 "
             ">/dev/null 2>&1",
             KZ_SOURCE_DIR, pki);
    cr_assert_eq(system(cmd), 0, "gen-pki");
    for (int i = 0; i < N; i++)
        start_node(i);
}

static int closed_count;

static void on_closed(void *data)
{
    (void)data;
    closed_count++;
}

static bool all_closed(void *arg)
{
    return closed_count == *(int *)arg;
}

static void stop_node(int i)
{
    int want = closed_count + 1;
    kz_cons_close(nodes[i].c, on_closed, NULL);
    cr_assert(run_until(all_closed, &want, 5000), "close callback");
    uv_run(&loop, UV_RUN_NOWAIT);
    kz_cons_free(nodes[i].c);
    nodes[i].closed = true;
}

static void teardown(void)
{
    for (int i = 0; i < N; i++)
        if (!nodes[i].closed)
            stop_node(i);
    /* Let every closing handle finish before the loop goes. */
    while (uv_run(&loop, UV_RUN_NOWAIT) != 0)
        ;
    uv_loop_close(&loop);
    for (int i = 0; i < N; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dirs[i]);
        cr_assert_eq(system(cmd), 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", pki);
    cr_assert_eq(system(cmd), 0);
}

struct call {
    kz_cons_req req;
    int fired;
    int status;
    char result[128];
    uint64_t index;
    int node;              /* where it was made (propose_merged) */
    uint64_t applied_then; /* that node's state machine's, when it fired */
};

static void on_call(kz_cons_req *req, int status)
{
    struct call *c = req->data;
    c->fired++;
    c->status = status;
    c->index = req->index;
    c->applied_then = nodes[c->node].applied;
    if (req->result != NULL)
        snprintf(c->result, sizeof c->result, "%.*s", (int)req->result_len,
                 req->result);
    free(req->result);
}

static bool fired(void *arg)
{
    return ((struct call *)arg)->fired > 0;
}

static void propose_on(int i, const char *cmd, struct call *c)
{
    memset(c, 0, sizeof *c);
    c->req.data = c;
    int rv = kz_cons_propose(nodes[i].c, &c->req, cmd, strlen(cmd), on_call);
    cr_assert_eq(rv, KZ_OK, "propose on node %d: %s", i + 1, kz_strerror(rv));
    cr_assert(run_until(fired, c, 5000), "proposal callback never fired");
    cr_assert_eq(c->fired, 1);
}

struct applied_at {
    int node;
    uint64_t index;
};

static bool node_applied(void *arg)
{
    struct applied_at *a = arg;
    return nodes[a->node].applied >= a->index;
}

TestSuite(consensus, .init = setup, .fini = teardown, .timeout = 60);

/* Restarts every node with heartbeats 1.5 s apart. (A test's own .init
 * runs after the suite's, not instead of it: starting the nodes again
 * there re-initialised the loop under running nodes, and their teardown
 * crashed.) */
static void restart_slow_heartbeat(void)
{
    for (int i = 0; i < N; i++)
        stop_node(i);
    heartbeat_ms = 1500;
    for (int i = 0; i < N; i++)
        start_node(i);
}

Test(consensus, proposals_on_leader_and_follower_apply_everywhere)
{
    cr_assert(run_until(has_leader, NULL, 10000), "no leader elected");
    int l = leader_index();
    int f = (l + 1) % N;
    struct call c;
    propose_on(l, "alpha", &c);
    cr_assert_eq(c.status, 0);
    cr_assert_str_eq(c.result, "ok:alpha");
    cr_assert_gt(c.index, 0);

    propose_on(f, "beta", &c); /* forwarded over the peer link */
    cr_assert_eq(c.status, 0, "forwarded proposal: %s", kz_strerror(c.status));
    cr_assert_str_eq(c.result, "ok:beta");

    for (int i = 0; i < N; i++) {
        struct applied_at a = {i, c.index};
        cr_assert(run_until(node_applied, &a, 5000), "node %d behind", i + 1);
        cr_assert(strstr(nodes[i].log, "alpha;beta;") != NULL,
                  "node %d log: %s", i + 1, nodes[i].log);
    }
}

static bool aio_destroys_all_done(void *arg)
{
    (void)arg;
    uint64_t handed, done;
    kz_cons_aio_destroys(&handed, &done);
    return done == handed;
}

/* 40 MB of entries: raft closes several log segments and prepares new
 * ones on the way. Its free-space count (KB in an unsigned short) must not
 * wrap with our segment size, or it refuses every proposal (NOSPACE).
 * Each closed segment's AIO context is destroyed on a thread of its own,
 * not on the loop (__wrap_io_destroy), and every such destroy ends. */
Test(consensus, proposals_go_on_across_log_segments)
{
    cr_assert(run_until(has_leader, NULL, 10000), "no leader elected");
    uint64_t handed0, done0;
    kz_cons_aio_destroys(&handed0, &done0);
    int l = leader_index();
    size_t len = 1u << 20;
    char *big = malloc(len + 1);
    cr_assert_not_null(big);
    struct call c;
    for (int i = 0; i < 40; i++) {
        memset(big, 'a' + i % 26, len);
        big[len] = '\0';
        memset(&c, 0, sizeof c);
        c.req.data = &c;
        int rv = kz_cons_propose(nodes[l].c, &c.req, big, len, on_call);
        cr_assert_eq(rv, KZ_OK, "entry %d refused: %s", i, kz_strerror(rv));
        cr_assert(run_until(fired, &c, 10000), "entry %d never committed", i);
        cr_assert_eq(c.status, 0, "entry %d: %s", i, kz_strerror(c.status));
    }
    free(big);
    for (int i = 0; i < N; i++) {
        struct applied_at a = {i, c.index};
        cr_assert(run_until(node_applied, &a, 10000), "node %d behind", i + 1);
    }
    uint64_t handed, done;
    kz_cons_aio_destroys(&handed, &done);
    /* 40 MB over 15 MB segments: at least two closed on each of 3 nodes */
    cr_assert_geq(handed - handed0, 6,
                  "%llu AIO contexts destroyed off the loop",
                  (unsigned long long)(handed - handed0));
    cr_assert(run_until(aio_destroys_all_done, NULL, 10000),
              "AIO context destroys never finished");
}

/* How much of a file is in extents the filesystem has not written yet
 * (ext4 "unwritten", or delayed allocation): 0 when every byte is on disk
 * as written blocks; -1 when FIEMAP cannot say; -2 when the file is gone
 * (raft renamed a segment it closed). */
static long long unwritten_bytes(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return errno == ENOENT ? -2 : -1;
    struct stat sb;
    size_t n = 64;
    struct fiemap *fm =
        calloc(1, sizeof *fm + n * sizeof(struct fiemap_extent));
    long long bad = -1;
    if (fm != NULL && fstat(fd, &sb) == 0) {
        fm->fm_length = FIEMAP_MAX_OFFSET;
        fm->fm_flags = FIEMAP_FLAG_SYNC;
        fm->fm_extent_count = (unsigned)n;
        if (ioctl(fd, FS_IOC_FIEMAP, fm) == 0 && fm->fm_mapped_extents < n) {
            unsigned long long covered = 0;
            bad = 0;
            for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
                struct fiemap_extent *e = &fm->fm_extents[i];
                if (e->fe_flags & (FIEMAP_EXTENT_UNWRITTEN |
                                   FIEMAP_EXTENT_DELALLOC |
                                   FIEMAP_EXTENT_UNKNOWN))
                    bad += (long long)e->fe_length;
                covered += e->fe_length;
            }
            if (covered < (unsigned long long)sb.st_size) /* holes */
                bad += (long long)((unsigned long long)sb.st_size - covered);
        }
    }
    free(fm);
    close(fd);
    return bad;
}

struct segs {
    int node, files;
    long long unwritten; /* summed over the open segments; -1: no FIEMAP */
};

static bool segments_written(void *arg)
{
    struct segs *s = arg;
    s->files = 0;
    s->unwritten = 0;
    DIR *d = opendir(dirs[s->node]);
    if (d == NULL)
        return false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "open-", 5) != 0)
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dirs[s->node], e->d_name);
        long long u = unwritten_bytes(path);
        if (u == -2)
            continue;
        if (u < 0) {
            s->unwritten = -1;
            break;
        }
        s->files++;
        s->unwritten += u;
    }
    closedir(d);
    return s->unwritten == 0 && s->files >= 2;
}

/* raft 0.22 reserves its segments with posix_fallocate, which ext4 leaves
 * unwritten: each synced append into them then also converts the extent
 * and writes the inode. Our wrapper (consensus.c) writes zeros into the
 * reservation, so the segments raft prepares ahead are plain written
 * blocks. Without it the prepared segments stay unwritten for good and
 * this never holds. */
Test(consensus, prepared_log_segments_are_written_not_just_reserved)
{
    cr_assert(run_until(has_leader, NULL, 10000), "no leader elected");
    for (int i = 0; i < N; i++) {
        struct segs s = {.node = i};
        bool ok = run_until(segments_written, &s, 10000);
        cr_assert_neq(s.unwritten, -1,
                      "FIEMAP does not work on %s's filesystem", dirs[i]);
        cr_assert(ok, "node %d: %d open segments, %lld bytes unwritten",
                  i + 1, s.files, s.unwritten);
    }
}

Test(consensus, read_index_on_follower_sees_prior_writes)
{
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    int f = (l + 2) % N;
    struct call c;
    propose_on(l, "gamma", &c);
    uint64_t written = c.index;
    memset(&c, 0, sizeof c);
    c.req.data = &c;
    cr_assert_eq(kz_cons_read_index(nodes[f].c, &c.req, on_call), KZ_OK);
    cr_assert(run_until(fired, &c, 5000));
    cr_assert_eq(c.status, 0);
    cr_assert_geq(c.index, written);
    /* When the read completes, the follower has applied the write. */
    cr_assert_geq(nodes[f].applied, written);
    cr_assert(strstr(nodes[f].log, "gamma;") != NULL);
}

/* kz_cons_propose_read on a follower: the callback fires only once the
 * follower itself has applied the entry (a plain forwarded proposal may
 * answer before), so the entry is the follower's linearizable read point;
 * the leader's result still comes back. */
Test(consensus, propose_read_on_follower_completes_after_local_apply)
{
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    int f = (l + 1) % N;
    struct call w;
    propose_on(l, "before", &w);
    for (int round = 0; round < 20; round++) {
        struct call c;
        memset(&c, 0, sizeof c);
        c.req.data = &c;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "audit%d", round);
        cr_assert_eq(kz_cons_propose_read(nodes[f].c, &c.req, cmd,
                                          strlen(cmd), on_call),
                     KZ_OK);
        cr_assert(run_until(fired, &c, 5000));
        cr_assert_eq(c.status, 0, "%s", kz_strerror(c.status));
        cr_assert_eq(c.fired, 1);
        char want[40];
        snprintf(want, sizeof want, "ok:%s", cmd);
        cr_assert_str_eq(c.result, want);
        cr_assert_gt(c.index, w.index);
        cr_assert_geq(nodes[f].applied, c.index,
                      "round %d: answered at %llu before applying %llu", round,
                      (unsigned long long)nodes[f].applied,
                      (unsigned long long)c.index);
        snprintf(want, sizeof want, "%s;", cmd);
        cr_assert(strstr(nodes[f].log, want) != NULL);
    }
}

Test(consensus, many_reads_share_barriers)
{
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    struct kz_cons_counters before, after;
    kz_cons_get_counters(nodes[l].c, &before);
    enum { R = 50 };
    static struct call calls[R];
    for (int i = 0; i < R; i++) {
        memset(&calls[i], 0, sizeof calls[i]);
        calls[i].req.data = &calls[i];
        cr_assert_eq(kz_cons_read_index(nodes[l].c, &calls[i].req, on_call),
                     KZ_OK);
    }
    for (int i = 0; i < R; i++) {
        cr_assert(run_until(fired, &calls[i], 5000));
        cr_assert_eq(calls[i].fired, 1);
        cr_assert_eq(calls[i].status, 0);
    }
    kz_cons_get_counters(nodes[l].c, &after);
    cr_assert_eq(after.barrier_reads - before.barrier_reads, R);
    /* Reads issued together: the first gets its own barrier, the other 49
     * wait for one more. */
    cr_assert_leq(after.barriers - before.barriers, 2,
                  "%llu barriers for %d reads",
                  (unsigned long long)(after.barriers - before.barriers), R);
}

Test(consensus, status_query_over_peer_link)
{
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    int f = (l + 1) % N;
    struct call c;
    memset(&c, 0, sizeof c);
    c.req.data = &c;
    cr_assert_eq(kz_cons_query_peer(nodes[f].c, &c.req, (uint64_t)l + 1,
                                    on_call),
                 KZ_OK);
    cr_assert(run_until(fired, &c, 5000));
    cr_assert_eq(c.status, 0);
    cr_assert_eq(c.req.peer.id, (uint64_t)l + 1);
    cr_assert_eq(c.req.peer.state, KZ_CONS_LEADER);
    cr_assert_eq(kz_cons_query_peer(nodes[f].c, &c.req, 99, on_call),
                 KZ_EINVAL);
}

Test(consensus, leader_loss_elects_a_new_leader_and_writes_continue)
{
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    struct call c;
    propose_on(l, "before", &c);
    stop_node(l);
    cr_assert(run_until(has_leader, NULL, 10000), "no new leader");
    int l2 = leader_index();
    cr_assert_neq(l2, l);
    int f = -1;
    for (int i = 0; i < N; i++)
        if (i != l && i != l2)
            f = i;
    propose_on(f, "after", &c);
    cr_assert_eq(c.status, 0, "%s", kz_strerror(c.status));
    struct applied_at a = {l2, c.index};
    cr_assert(run_until(node_applied, &a, 5000));
    cr_assert(strstr(nodes[l2].log, "before;after;") != NULL);
}

Test(consensus, snapshots_and_restart_keep_the_state)
{
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    int f = (l + 1) % N;
    stop_node(f);
    struct call c;
    char cmd[16];
    for (int i = 0; i < 40; i++) { /* threshold 16: several snapshots */
        snprintf(cmd, sizeof cmd, "w%d", i);
        propose_on(l, cmd, &c);
        cr_assert_eq(c.status, 0);
    }
    /* The follower restarts with an empty state machine (as if its state
     * were lost) and must get everything back by snapshot + log. */
    memset(&nodes[f], 0, sizeof nodes[f]);
    start_node(f);
    struct applied_at a = {f, c.index};
    cr_assert(run_until(node_applied, &a, 10000), "follower never caught up");
    cr_assert(strstr(nodes[f].log, "w39;") != NULL, "log: %s", nodes[f].log);
}

/* With a state far larger than the log since the last image, the leader
 * defers snapshots past the threshold (16 here), up to 16 x 16 entries;
 * once the log outweighs half the state, the threshold applies again. */
Test(consensus, snapshots_wait_for_the_log_to_weigh_against_the_state)
{
    /* Huge on every node before any can lead: a leader reads the size at
     * its first apply and then every 64 entries, so one that applied its
     * election entry before the size was set kept the small size and
     * snapshotted at 16 (CI, on a loaded machine). */
    for (int i = 0; i < N; i++)
        nodes[i].state_bytes = 1ull << 40;
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    unsigned before = nodes[l].snapshots;
    struct call c;
    char cmd[16];
    for (int i = 0; i < 100; i++) {
        snprintf(cmd, sizeof cmd, "d%d", i);
        propose_on(l, cmd, &c);
        cr_assert_eq(c.status, 0);
    }
    cr_assert_eq(nodes[l].snapshots, before,
                 "a snapshot 100 entries in, with a huge state");
    for (int i = 100; i < 300; i++) { /* past 16 x 16: taken anyway */
        snprintf(cmd, sizeof cmd, "d%d", i);
        propose_on(l, cmd, &c);
        cr_assert_eq(c.status, 0);
    }
    cr_assert_gt(nodes[l].snapshots, before, "no snapshot after 300 entries");
    /* A small state: every 16 entries or so again. */
    nodes[l].state_bytes = 0;
    before = nodes[l].snapshots;
    for (int i = 300; i < 400; i++) { /* re-read within 64 entries */
        snprintf(cmd, sizeof cmd, "d%d", i);
        propose_on(l, cmd, &c);
        cr_assert_eq(c.status, 0);
    }
    cr_assert_geq(nodes[l].snapshots, before + 2, "%u snapshots",
                  nodes[l].snapshots - before);
}

Test(consensus, close_fails_pending_requests_exactly_once)
{
    cr_assert(run_until(has_leader, NULL, 10000));
    int l = leader_index();
    int f = (l + 1) % N;
    /* Stop the two others: the leader's proposals cannot commit. */
    for (int i = 0; i < N; i++)
        if (i != l)
            stop_node(i);
    (void)f;
    static struct call c[5];
    int accepted = 0;
    for (int i = 0; i < 5; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].req.data = &c[i];
        if (kz_cons_propose(nodes[l].c, &c[i].req, "stuck", 5, on_call) == 0)
            accepted++;
        else
            c[i].fired = -100; /* refused synchronously: no callback */
    }
    /* The leader has not noticed it lost its followers yet: it accepts. */
    cr_assert_gt(accepted, 0, "no proposal was accepted: nothing tested");
    stop_node(l);
    for (int i = 0; i < 5; i++) {
        if (c[i].fired == -100)
            continue;
        cr_assert_eq(c[i].fired, 1, "request %d fired %d times", i, c[i].fired);
        cr_assert_neq(c[i].status, 0);
    }
}

/* Restarts the nodes with heartbeats 1.5 s apart, then: the leader (*l), a
 * follower (*f), a first write on the leader (*w: the leader's term has a
 * commit) and the leader's counters after it. */
static void slow_heartbeat_cluster(int *l, int *f, struct call *w,
                                   struct kz_cons_counters *before)
{
    restart_slow_heartbeat();
    cr_assert(run_until(has_leader, NULL, 30000), "no leader elected");
    *l = leader_index();
    *f = (*l + 1) % N;
    propose_on(*l, "first", w);
    kz_cons_get_counters(nodes[*l].c, before);
}

/* A follower learns of a commit from the leader's next AppendEntries. With
 * heartbeats 1.5 s apart (election timeout 6 s: raft 0.22 drops a follower
 * it has not heard from within an election timeout back to one message a
 * heartbeat) and nothing else written, each proposal a follower waits to
 * apply (kz_cons_propose_read) would wait for one (0.75 s on average); the
 * leader appends an empty entry instead once it has answered
 * (nudge_commit), so each of 5 completes within 0.5 s (all 5 by chance
 * without it: about 1 in 250). */
Test(consensus, follower_reads_do_not_wait_for_a_heartbeat)
{
    int l, f;
    struct call w;
    struct kz_cons_counters before;
    slow_heartbeat_cluster(&l, &f, &w, &before);
    for (int round = 0; round < 5; round++) {
        struct call c;
        memset(&c, 0, sizeof c);
        c.req.data = &c;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "read%d", round);
        int rv = kz_cons_propose_read(nodes[f].c, &c.req, cmd, strlen(cmd),
                                      on_call);
        cr_assert_eq(rv, KZ_OK);
        cr_assert(run_until(fired, &c, 500),
                  "round %d: the follower waited for a heartbeat", round);
        cr_assert_eq(c.status, 0, "%s", kz_strerror(c.status));
        struct kz_cons_status st; /* raft's applied index counts barriers */
        kz_cons_get_status(nodes[f].c, &st);
        cr_assert_geq(st.applied_index, c.index, "round %d", round);
    }
    struct kz_cons_counters after;
    kz_cons_get_counters(nodes[l].c, &after);
    cr_assert_geq(after.commit_nudges, before.commit_nudges + 5);
    heartbeat_ms = 50;
}

static bool all_fired(void *arg)
{
    struct call *c = arg;
    for (int i = 0; i < 6; i++)
        if (c[i].fired == 0)
            return false;
    return true;
}

typedef int (*propose_fn)(kz_cons *c, kz_cons_req *req, const char *cmd,
                          size_t len, kz_cons_cb cb);

static void propose_with(propose_fn fn, int node, struct call *c,
                         const char *cmd)
{
    memset(c, 0, sizeof *c);
    c->req.data = c;
    c->node = node;
    cr_assert_eq(fn(nodes[node].c, &c->req, cmd, strlen(cmd), on_call),
                 KZ_OK);
}

static void propose_merged(int node, struct call *c, const char *cmd)
{
    propose_with(kz_cons_propose_merged, node, c, cmd);
}

static void propose_batched(int node, struct call *c, const char *cmd)
{
    propose_with(kz_cons_propose_batched, node, c, cmd);
}

/* Two proposals made with fn on the leader l in one turn, x then y, into
 * a[0] and a[1] (the rest of a unused); both fired with success. */
static void two_on_leader(propose_fn fn, int l, struct call a[6],
                          const char *x, const char *y)
{
    memset(a, 0, 6 * sizeof *a);
    propose_with(fn, l, &a[0], x);
    propose_with(fn, l, &a[1], y);
    for (int i = 2; i < 6; i++)
        a[i].fired = 1;
    cr_assert(run_until(all_fired, a, 5000));
    cr_assert_eq(a[0].status, 0);
    cr_assert_eq(a[1].status, 0);
}

/* Two batched proposals on the leader in one turn: whether they shared
 * an entry. */
static bool batched_pair_merges(void *arg)
{
    struct call a[6];
    two_on_leader(kz_cons_propose_batched, *(int *)arg, a, "pair0", "pair1");
    return a[0].index == a[1].index;
}

/* Six proposals made with fn after a plain one (*w) on the leader *l: the
 * three named <prefix>l0-2 on the leader in one turn, <prefix>f0-2 on a
 * follower; each fired once with success, after *w. */
static void six_after_one(propose_fn fn, const char *prefix, int *l,
                          struct call *w, struct kz_cons_counters *before,
                          struct call c[6], char cmd[6][8])
{
    cr_assert(run_until(has_leader, NULL, 10000), "no leader elected");
    *l = leader_index();
    int f = (*l + 1) % N;
    /* The leader merges registrations once every follower has said it
     * can apply them (its status query, every second). */
    if (fn == kz_cons_propose_batched)
        cr_assert(run_until(batched_pair_merges, l, 5000),
                  "batched proposals never merged");
    propose_on(*l, "before", w);
    kz_cons_get_counters(nodes[*l].c, before);
    for (int i = 0; i < 6; i++) {
        snprintf(cmd[i], 8, "%s%c%d", prefix, i < 3 ? 'l' : 'f', i % 3);
        propose_with(fn, i < 3 ? *l : f, &c[i], cmd[i]);
    }
    cr_assert(run_until(all_fired, c, 5000), "a proposal never fired");
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(c[i].fired, 1, "%s fired %d times", cmd[i], c[i].fired);
        cr_assert_eq(c[i].status, 0, "%s: %s", cmd[i],
                     kz_strerror(c[i].status));
        cr_assert_gt(c[i].index, w->index);
    }
    /* The leader's three were made in one turn: one entry. */
    cr_assert_eq(c[1].index, c[0].index);
    cr_assert_eq(c[2].index, c[0].index);
}

/* Every node applied the six: the leader's three as the entry `joined`,
 * each of the follower's once, merged or alone. */
static void six_applied_everywhere(struct call c[6], char cmd[6][8],
                                   const char *joined)
{
    uint64_t last = 0;
    for (int i = 0; i < 6; i++)
        last = c[i].index > last ? c[i].index : last;
    for (int n = 0; n < N; n++) {
        struct applied_at a = {n, last};
        cr_assert(run_until(node_applied, &a, 5000), "node %d behind", n + 1);
        cr_assert(strstr(nodes[n].log, joined) != NULL, "node %d log: %s",
                  n + 1, nodes[n].log);
        for (int i = 3; i < 6; i++) {
            const char *at = strstr(nodes[n].log, cmd[i]);
            cr_assert_not_null(at, "node %d lacks %s", n + 1, cmd[i]);
            cr_assert_null(strstr(at + 1, cmd[i]), "node %d: %s twice",
                           n + 1, cmd[i]);
        }
    }
}

/* Proposals made with kz_cons_propose_merged that reach the leader in one
 * loop turn become one entry (fsm.merge), each answered with its index once
 * applied; those the state machine will not merge go one by one. */
Test(consensus, merged_proposals_share_one_entry)
{
    int l;
    struct call w, c[6];
    struct kz_cons_counters before;
    char cmd[6][8];
    six_after_one(kz_cons_propose_merged, "m", &l, &w, &before, c, cmd);
    cr_assert_str_empty(c[0].result); /* merged: no result of its own */
    /* The follower had applied every entry before its own when answered
     * (wait_index in consensus.c): "before" among them. */
    for (int i = 3; i < 6; i++) {
        cr_assert_geq(c[i].applied_then + 1, c[i].index, "%s", cmd[i]);
        cr_assert_geq(c[i].applied_then, w.index, "%s", cmd[i]);
    }
    struct kz_cons_counters after;
    kz_cons_get_counters(nodes[l].c, &after);
    cr_assert_geq(after.merged_entries, before.merged_entries + 1);
    cr_assert_geq(after.merged_proposals, before.merged_proposals + 3);
    six_applied_everywhere(c, cmd, ";ml0+ml1+ml2;");

    /* Refused by the state machine: each its own entry, with its result. */
    struct call x[6];
    two_on_leader(kz_cons_propose_merged, l, x, "x1", "x2");
    cr_assert_neq(x[0].index, x[1].index);
    cr_assert_str_eq(x[0].result, "ok:x1");
    cr_assert(strstr(nodes[l].log, ";x1;x2;") != NULL, "log: %s",
              nodes[l].log);
}


/* Proposals made with kz_cons_propose_batched that reach the leader in
 * one loop turn become one entry (fsm.merge_each), and each proposer, on
 * the leader or a follower, receives its own part of the entry's result;
 * they never share an entry with merged read records; a proposer whose
 * part the result lacks gets no result, not another's; those the state
 * machine will not merge go one by one with their results. */
Test(consensus, batched_proposals_keep_their_results)
{
    int l;
    struct call w, c[6];
    struct kz_cons_counters before;
    char cmd[6][8];
    six_after_one(kz_cons_propose_batched, "b", &l, &w, &before, c, cmd);
    int f = (l + 1) % N;
    for (int i = 0; i < 6; i++) {
        char want[16];
        snprintf(want, sizeof want, "ok:%s", cmd[i]);
        cr_assert_str_eq(c[i].result, want, "%s got %s", cmd[i], c[i].result);
    }
    struct kz_cons_counters after;
    kz_cons_get_counters(nodes[l].c, &after);
    cr_assert_geq(after.each_entries, before.each_entries + 1);
    cr_assert_geq(after.each_proposals, before.each_proposals + 3);
    cr_assert_eq(after.merged_entries, before.merged_entries);
    six_applied_everywhere(c, cmd, ";each:bl0&bl1&bl2;");

    /* Read records and batched commands in one turn: separate entries. */
    struct call m[6];
    propose_merged(l, &m[0], "mr0");
    propose_batched(l, &m[1], "bm0");
    propose_merged(l, &m[2], "mr1");
    propose_batched(l, &m[3], "bm1");
    m[4].fired = m[5].fired = 1;
    cr_assert(run_until(all_fired, m, 5000));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(m[i].status, 0);
    cr_assert_eq(m[0].index, m[2].index);
    cr_assert_eq(m[1].index, m[3].index);
    cr_assert_neq(m[0].index, m[1].index);
    cr_assert_str_eq(m[1].result, "ok:bm0");
    cr_assert_str_eq(m[3].result, "ok:bm1");
    cr_assert(strstr(nodes[l].log, ";mr0+mr1;") != NULL, "log: %s",
              nodes[l].log);
    cr_assert(strstr(nodes[l].log, ";each:bm0&bm1;") != NULL, "log: %s",
              nodes[l].log);

    /* A result that stops early: those it lacks get none. */
    struct call t[6];
    propose_batched(l, &t[0], "bt0");
    propose_batched(l, &t[1], "trunc1");
    propose_batched(l, &t[2], "bt2");
    t[3].fired = t[4].fired = t[5].fired = 1;
    cr_assert(run_until(all_fired, t, 5000));
    cr_assert_eq(t[0].index, t[2].index);
    cr_assert_str_eq(t[0].result, "ok:bt0");
    cr_assert_str_empty(t[1].result);
    cr_assert_str_empty(t[2].result);

    /* Refused by the state machine: each its own entry, with its result. */
    struct call x[6];
    propose_batched(l, &x[0], "x1");
    propose_batched(f, &x[1], "x2");
    propose_batched(l, &x[2], "x3");
    for (int i = 3; i < 6; i++)
        x[i].fired = 1;
    cr_assert(run_until(all_fired, x, 5000));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(x[i].status, 0);
        char want[8];
        snprintf(want, sizeof want, "ok:x%d", i + 1);
        cr_assert_str_eq(x[i].result, want);
    }
    cr_assert_neq(x[0].index, x[2].index);
}

/* A cluster where one node's state machine cannot apply merged batched
 * proposals (started without fsm.merge_each, as an older version): its
 * status queries say so, and the leader proposes every batched proposal
 * alone, each with its own result, for as long as that node is a member,
 * whichever node leads. Proposals made over 2.5 s, more than two of the
 * node's queries. */
Test(consensus, batched_proposals_stay_alone_beside_an_older_node)
{
    for (int i = 0; i < N; i++)
        stop_node(i);
    no_each[2] = true;
    for (int i = 0; i < N; i++)
        start_node(i);
    cr_assert(run_until(has_leader, NULL, 10000), "no leader elected");
    int l = leader_index();
    struct kz_cons_counters before, after;
    kz_cons_get_counters(nodes[l].c, &before);
    uint64_t start = uv_now(&loop);
    int rounds = 0;
    while (uv_now(&loop) - start < 2500) {
        int now_l = leader_index();
        cr_assert_geq(now_l, 0, "no leader");
        cr_assert_not(batched_pair_merges(&now_l),
                      "merged beside an old node");
        rounds += now_l == l;
        uv_update_time(&loop);
    }
    cr_assert_gt(rounds, 0);
    kz_cons_get_counters(nodes[l].c, &after);
    cr_assert_eq(after.each_entries, before.each_entries);
    if (l != 2) /* an old node leading has no merge_each: plain ones */
        cr_assert_geq(after.each_alone, before.each_alone + 2 * rounds);
    no_each[2] = false;
}

/* A read point on a follower, a merged proposal or a read index, waits
 * only for the entries before the index the leader answers with (the
 * entry of the merged proposal, or the barrier), which that entry itself
 * told the follower are committed: with heartbeats 1.5 s apart and one
 * read at a time, each is answered within 0.5 s without a commit nudge,
 * so a read costs one entry, not two. A write acknowledged on the leader
 * just before is applied on the follower when the read is answered (the
 * read is linearizable). */
Test(consensus, follower_read_points_need_no_nudge)
{
    int l, f;
    struct call w;
    struct kz_cons_counters before;
    slow_heartbeat_cluster(&l, &f, &w, &before);
    for (int round = 0; round < 6; round++) {
        char cmd[32];
        snprintf(cmd, sizeof cmd, "write%d", round);
        propose_on(l, cmd, &w);
        struct call c;
        if (round % 2 == 0) {
            snprintf(cmd, sizeof cmd, "mread%d", round);
            propose_merged(f, &c, cmd);
        } else {
            memset(&c, 0, sizeof c);
            c.req.data = &c;
            c.node = f;
            cr_assert_eq(kz_cons_read_index(nodes[f].c, &c.req, on_call),
                         KZ_OK);
        }
        cr_assert(run_until(fired, &c, 500),
                  "round %d: the follower waited for a heartbeat", round);
        cr_assert_eq(c.status, 0, "%s", kz_strerror(c.status));
        cr_assert_gt(c.index, w.index, "round %d", round);
        cr_assert_geq(c.applied_then, w.index,
                      "round %d: the write before is not applied", round);
        struct kz_cons_status st; /* raft's applied index counts barriers */
        kz_cons_get_status(nodes[f].c, &st);
        cr_assert_geq(st.applied_index + 1, c.index, "round %d", round);
    }
    struct kz_cons_counters after;
    kz_cons_get_counters(nodes[l].c, &after);
    cr_assert_eq(after.commit_nudges, before.commit_nudges,
                 "%llu commit nudges",
                 (unsigned long long)(after.commit_nudges -
                                      before.commit_nudges));
    heartbeat_ms = 50;
}
