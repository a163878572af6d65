/* kizuna-chaos: multi-region fault injection with checked histories.
 *
 *   kizuna-chaos run [--scenario NAME[,NAME...]|all] [--seed N]
 *                    [--duration 60s] [--dir DIR] [--regions R] ...
 *   kizuna-chaos check HISTORY
 *   kizuna-chaos list
 *
 * `run` starts its own cluster with deploy/local-cluster, every raft link
 * through the fault proxies of proxy.c (deploy/local-cluster --proxy), runs
 * the workloads from clients on every node while a nemesis injects the
 * scenarios' faults on a schedule drawn from the seed, heals, reads the
 * final state back from every node, checks the history (history.c,
 * linear.c), writes DIR/history.jsonl, DIR/report.json and DIR/summary.txt,
 * and stops every process it started (also on SIGINT/SIGTERM). Exit status:
 * 0 no anomaly, 1 anomalies, 2 usage, 3 the run itself failed. */
#include "history.h"
#include "kizuna.h"
#include "proxy.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KZ_SOURCE_DIR
#define KZ_SOURCE_DIR "."
#endif

#define MAX_NODES 9
#define FINAL_PROC 999

/* ------------------------------------------------------------ scenarios */

enum scen {
    S_KILL_FOLLOWER, S_KILL_LEADER, S_KILL_REGION, S_KILL_MAJORITY,
    S_PAUSE_LEADER, S_PART_REGION, S_PART_LEADER, S_PART_ONEWAY, S_PART_RING,
    S_SLOW, S_FLAP, S_DISK_FULL, S_STALE_DISK, S_MEMBERSHIP, S__COUNT
};

static const struct {
    const char *name, *what;
} scenarios[S__COUNT] = {
    {"kill-follower", "kill -9 a follower, restart it"},
    {"kill-leader", "kill -9 the leader, restart it"},
    {"kill-region", "kill -9 every node of a region, restart them"},
    {"kill-majority", "kill -9 a majority (no quorum), restart them"},
    {"pause-leader", "SIGSTOP the leader, SIGCONT it"},
    {"partition-region", "cut a region off from the others"},
    {"partition-leader", "cut the leader off from everyone"},
    {"partition-oneway", "the leader's messages are lost, it still hears"},
    {"partition-ring", "each node reaches only its two ring neighbours"},
    {"slow-links", "latency spikes (+100±50 ms) and 2% stalls on every link"},
    {"flapping", "the link leader<->a follower goes up and down every 0.5 s"},
    {"disk-full", "a node's data disk (tmpfs) fills up, then space returns"},
    {"stale-disk", "a node restarts from a copy of its data dir taken "
                   "while it ran"},
    {"membership", "with a follower killed, a new node joins as a voter, "
                   "catches up, and is removed"},
};

/* ------------------------------------------------------------- the run */

struct run {
    /* options */
    char root[PATH_MAX], bin[PATH_MAX], dir[PATH_MAX];
    char regions_spec[256], net[32];
    unsigned port, proxy_port, keys, workers, households;
    uint64_t seed;
    double duration_s;
    bool scen[S__COUNT];
    /* cluster */
    unsigned n;
    char region[MAX_NODES + 2][32]; /* by node id; n + 1: the spare */
    char ip[MAX_NODES + 2][32];
    unsigned spare; /* the node that joins and leaves (membership), or 0 */
    unsigned n_regions;
    char region_names[MAX_NODES][32];
    kz_proxy *proxy;
    bool cluster_up, tmpfs_mounted;
    char tmpfs_dir[PATH_MAX];
    /* state of the run */
    struct timespec start;
    atomic_bool stop_workers;
    pthread_mutex_t mu; /* history and rng */
    struct kz_hist hist;
    uint64_t rng;
    char (*key)[48]; /* register keys */
    bool paused[MAX_NODES + 2];
    atomic_uint_fast64_t token;
};

static struct run *the_run;
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int64_t now_us(struct run *r)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - r->start.tv_sec) * 1000000 +
           (t.tv_nsec - r->start.tv_nsec) / 1000;
}

static uint64_t rnd(struct run *r) /* splitmix64 over the seed */
{
    pthread_mutex_lock(&r->mu);
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);
    pthread_mutex_unlock(&r->mu);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kizuna-chaos: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void record(struct run *r, const struct kz_hist_op *op)
{
    pthread_mutex_lock(&r->mu);
    if (kz_hist_add(&r->hist, op) != 0)
        say("out of memory recording the history");
    pthread_mutex_unlock(&r->mu);
}

static void nemesis_note(struct run *r, int op, const char *fmt, ...)
{
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = op;
    o.t0 = o.t1 = now_us(r);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o.what, sizeof o.what, fmt, ap);
    va_end(ap);
    record(r, &o);
    say("t=%6.1f s  %s", (double)o.t0 / 1e6, o.what);
}

/* Sleeps up to ms, in slices, returning early on an interrupt. */
static void nap(unsigned ms)
{
    while (ms > 0 && !interrupted) {
        unsigned s = ms > 100 ? 100 : ms;
        struct timespec t = {0, (long)s * 1000000L};
        nanosleep(&t, NULL);
        ms -= s;
    }
}

/* ------------------------------------------------- deploy/local-cluster */

/* Runs deploy/local-cluster CMD [ARG] --dir DIR [extra...], its output
 * appended to DIR/local-cluster.log. Returns its exit status. */
static int lc(struct run *r, const char *cmd, const char *arg,
              const char *const *extra)
{
    char script[PATH_MAX + 32], log[PATH_MAX + 32];
    snprintf(script, sizeof script, "%s/deploy/local-cluster", r->root);
    snprintf(log, sizeof log, "%s/local-cluster.log", r->dir);
    const char *argv[24];
    size_t k = 0;
    argv[k++] = "bash";
    argv[k++] = script;
    argv[k++] = cmd;
    if (arg)
        argv[k++] = arg;
    argv[k++] = "--dir";
    argv[k++] = r->dir;
    for (size_t i = 0; extra && extra[i] && k < 23; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        FILE *f = fopen(log, "a");
        if (f) {
            dup2(fileno(f), 1);
            dup2(fileno(f), 2);
        }
        execvp("bash", (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int lc_node(struct run *r, const char *cmd, unsigned node)
{
    char a[16];
    snprintf(a, sizeof a, "%u", node);
    return lc(r, cmd, a, NULL);
}

/* The pid of node i's kizunad, checked against /proc (never a recycled
 * pid); 0 when it is not running. */
static pid_t node_pid(struct run *r, unsigned i)
{
    char path[PATH_MAX + 64], conf[PATH_MAX + 64], cmd[4096];
    snprintf(path, sizeof path, "%s/node%u/pid", r->dir, i);
    snprintf(conf, sizeof conf, "%s/node%u/kizunad.conf", r->dir, i);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    for (size_t k = 0; k < n; k++)
        if (cmd[k] == '\0')
            cmd[k] = ' ';
    cmd[n] = '\0';
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    char state = '?';
    if (f) {
        if (fscanf(f, "%*d %*s %c", &state) != 1)
            state = '?';
        fclose(f);
    }
    if (state == 'Z' || strstr(cmd, "kizunad") == NULL ||
        strstr(cmd, conf) == NULL)
        return 0;
    return (pid_t)pid;
}

static void signal_node(struct run *r, unsigned i, int sig)
{
    pid_t pid = node_pid(r, i);
    if (pid > 0)
        kill(pid, sig);
    if (sig == SIGSTOP)
        r->paused[i] = pid > 0;
    if (sig == SIGCONT)
        r->paused[i] = false;
}

/* ----------------------------------------------------------- API calls */

static kz_cli *client(struct run *r, unsigned node, const char *role,
                      long timeout_ms)
{
    char eps[512] = "", cert[PATH_MAX + 32], key[PATH_MAX + 32],
                    ca[PATH_MAX + 32], err[300];
    /* node 0: every member; the spare only when named */
    unsigned last = node > r->n ? node : r->n;
    for (unsigned i = 1; i <= last; i++) {
        if (node != 0 && i != node)
            continue;
        size_t l = strlen(eps);
        snprintf(eps + l, sizeof eps - l, "%shttps://%s:%u", l ? "," : "",
                 r->ip[i], r->port);
    }
    snprintf(cert, sizeof cert, "%s/pki/%s.pem", r->dir, role);
    snprintf(key, sizeof key, "%s/pki/%s.key", r->dir, role);
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", r->dir);
    kz_cli_opts o;
    memset(&o, 0, sizeof o);
    o.endpoints = eps;
    o.cacert = ca;
    o.cert = cert;
    o.key = key;
    o.purpose = "chaos test";
    o.connect_timeout_ms = 1000;
    o.request_timeout_ms = timeout_ms;
    o.deadline_ms = timeout_ms;
    kz_cli *c = NULL;
    if (kz_cli_open(&o, &c, err, sizeof err) != KZ_CLI_OK)
        say("client for node %u: %s", node, err);
    return c;
}

/* GET path through cli; the parsed JSON body of a 200, else NULL. */
static json_t *get_json(kz_cli *cli, const char *path, long *status)
{
    kz_cli_response resp;
    *status = 0;
    if (kz_cli_request(cli, "GET", path, NULL, NULL, 0, &resp) != KZ_CLI_OK)
        return NULL;
    *status = resp.status;
    json_t *j = resp.status == 200 ? json_loads(resp.body, 0, NULL) : NULL;
    kz_cli_response_free(&resp);
    return j;
}

/* The leader's id as node `via` (0: any) sees it; 0 when none. */
static unsigned leader_of(struct run *r)
{
    kz_cli *cli = client(r, 0, "operator", 1500);
    unsigned id = 0;
    for (int attempt = 0; attempt < 10 && id == 0 && !interrupted; attempt++) {
        long st;
        json_t *j = cli ? get_json(cli, "/v1/cluster", &st) : NULL;
        json_t *l = json_object_get(j, "leader");
        if (json_is_integer(l))
            id = (unsigned)json_integer_value(l);
        json_decref(j);
        if (id == 0)
            nap(300);
    }
    kz_cli_close(cli);
    return id <= r->n ? id : 0;
}

static int64_t contact_value(json_t *rec)
{
    const char *c = json_string_value(json_object_get(rec, "contact"));
    return c && c[0] == 't' ? strtoll(c + 1, NULL, 10) : -1;
}

/* --------------------------------------------------------------- workers */

struct worker {
    struct run *r;
    unsigned proc, node;
    pthread_t thread;
    uint64_t *known; /* version this worker last saw per key, 0: none */
};

static void op_done(struct worker *w, struct kz_hist_op *o)
{
    o->t1 = now_us(w->r);
    o->proc = w->proc;
    o->node = w->node;
    snprintf(o->region, sizeof o->region, "%s", w->r->region[w->node]);
    record(w->r, o);
}

static int do_read(struct worker *w, kz_cli *cli, unsigned k)
{
    struct run *r = w->r;
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = KZ_H_READ;
    snprintf(o.key, sizeof o.key, "%s", r->key[k]);
    char path[96];
    snprintf(path, sizeof path, "/v1/victims/%s", r->key[k]);
    kz_cli_response resp;
    o.t0 = now_us(r);
    int rc = kz_cli_request(cli, "GET", path, NULL, NULL, 0, &resp);
    o.result = KZ_R_UNKNOWN;
    if (rc == KZ_CLI_OK) {
        o.status = (int)resp.status;
        snprintf(o.rid, sizeof o.rid, "%s", resp.request_id);
        json_t *j = resp.status == 200 ? json_loads(resp.body, 0, NULL) : NULL;
        if (j != NULL) {
            o.result = KZ_R_OK;
            o.version = (uint64_t)json_integer_value(json_object_get(j, "version"));
            o.value = contact_value(j);
            w->known[k] = o.version;
        } else if (resp.status >= 400 && resp.status < 500) {
            o.result = KZ_R_FAIL;
        }
        json_decref(j);
        kz_cli_response_free(&resp);
    }
    op_done(w, &o);
    return o.result;
}

static int do_cas(struct worker *w, kz_cli *cli, unsigned k)
{
    struct run *r = w->r;
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = KZ_H_CAS;
    o.expect = w->known[k];
    o.value = (int64_t)atomic_fetch_add(&r->token, 1);
    snprintf(o.key, sizeof o.key, "%s", r->key[k]);
    char path[96], hdr[64], body[64];
    snprintf(path, sizeof path, "/v1/victims/%s", r->key[k]);
    snprintf(hdr, sizeof hdr, "If-Match: %" PRIu64, o.expect);
    int bl = snprintf(body, sizeof body, "{\"contact\":\"t%" PRId64 "\"}",
                      o.value);
    const char *hdrs[] = {hdr, NULL};
    kz_cli_response resp;
    o.t0 = now_us(r);
    int rc = kz_cli_request(cli, "PATCH", path, hdrs, body, (size_t)bl, &resp);
    o.result = KZ_R_UNKNOWN;
    w->known[k] = 0;
    if (rc == KZ_CLI_OK) {
        o.status = (int)resp.status;
        snprintf(o.rid, sizeof o.rid, "%s", resp.request_id);
        if (resp.status == 200) {
            json_t *j = json_loads(resp.body, 0, NULL);
            o.version = (uint64_t)json_integer_value(json_object_get(j, "version"));
            json_decref(j);
            o.result = o.version ? KZ_R_OK : KZ_R_UNKNOWN;
            w->known[k] = o.version;
        } else if (resp.status >= 400 && resp.status < 500) {
            o.result = KZ_R_FAIL; /* 412: refused; others: not applied */
        }
        kz_cli_response_free(&resp);
    }
    op_done(w, &o);
    return o.result;
}

static int do_add(struct worker *w, kz_cli *cli)
{
    struct run *r = w->r;
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = KZ_H_ADD;
    o.value = (int64_t)atomic_fetch_add(&r->token, 1);
    char body[256];
    int bl = snprintf(body, sizeof body,
                      "{\"name\":\"混沌 試験\",\"name_kana\":\"コントン "
                      "シケン\",\"dob\":\"1990-01-01\",\"sex\":\"other\","
                      "\"contact\":\"a%" PRId64 "\"}",
                      o.value);
    kz_cli_response resp;
    o.t0 = now_us(r);
    int rc = kz_cli_request(cli, "POST", "/v1/victims", NULL, body,
                            (size_t)bl, &resp);
    o.result = KZ_R_UNKNOWN;
    if (rc == KZ_CLI_OK) {
        o.status = (int)resp.status;
        snprintf(o.rid, sizeof o.rid, "%s", resp.request_id);
        if (resp.status == 201) {
            json_t *j = json_loads(resp.body, 0, NULL);
            const char *id = json_string_value(json_object_get(j, "id"));
            if (id) {
                snprintf(o.key, sizeof o.key, "%s", id);
                o.result = KZ_R_OK;
            }
            json_decref(j);
        } else if (resp.status >= 400 && resp.status < 500) {
            o.result = KZ_R_FAIL;
        }
        kz_cli_response_free(&resp);
    }
    op_done(w, &o);
    return o.result;
}

static void household_id(char *out, size_t len, unsigned h)
{
    snprintf(out, len, "chaos-h%03u", h);
}

/* A payout request for household h (item basic), with a fresh
 * Idempotency-Key: concurrent requests for one household race, and
 * libkizuna may resend one after a lost answer. */
static int do_payout(struct worker *w, kz_cli *cli, unsigned h)
{
    struct run *r = w->r;
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = KZ_H_PAYOUT;
    household_id(o.key, sizeof o.key, h);
    char body[400], hdr[80];
    int bl = snprintf(body, sizeof body,
                      "{\"household_id\":\"%s\",\"program\":"
                      "\"seikatsu_saiken\",\"item\":\"basic\",\"account\":"
                      "{\"bank_code\":1,\"branch_code\":%u,\"account_type\":"
                      "1,\"account_number\":\"%07u\",\"holder\":\"ヒサイ "
                      "タロウ\"}}",
                      o.key, 100 + h, 1000000 + h);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: chaos-%" PRIu64 "-%u",
             (uint64_t)atomic_fetch_add(&r->token, 1), w->proc);
    const char *hdrs[] = {hdr, NULL};
    kz_cli_response resp;
    o.t0 = now_us(r);
    int rc = kz_cli_request(cli, "POST", "/v1/payouts", hdrs, body,
                            (size_t)bl, &resp);
    o.result = KZ_R_UNKNOWN;
    if (rc == KZ_CLI_OK) {
        o.status = (int)resp.status;
        snprintf(o.rid, sizeof o.rid, "%s", resp.request_id);
        json_t *j = json_loads(resp.body, 0, NULL);
        json_t *p = resp.status == 409 ? json_object_get(j, "payout") : j;
        const char *id = json_string_value(json_object_get(p, "id"));
        if (resp.status == 201 || resp.status == 409) {
            snprintf(o.what, sizeof o.what, "%s", id ? id : "");
            o.value = json_integer_value(json_object_get(p, "amount_yen"));
        }
        if (resp.status == 201 && id)
            o.result = KZ_R_OK;
        else if (resp.status >= 400 && resp.status < 500)
            o.result = KZ_R_FAIL;
        json_decref(j);
        kz_cli_response_free(&resp);
    }
    op_done(w, &o);
    return o.result;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->r;
    kz_cli *cw = client(r, w->node, "caseworker", 3000);
    kz_cli *rg = client(r, w->node, "registrar", 3000);
    kz_cli *py = client(r, w->node, "payout", 3000);
    if (cw == NULL || rg == NULL || py == NULL) {
        kz_cli_close(cw);
        kz_cli_close(rg);
        kz_cli_close(py);
        return NULL;
    }
    while (!atomic_load(&r->stop_workers) && !interrupted) {
        uint64_t x = rnd(r);
        unsigned k = (unsigned)((x >> 8) % r->keys);
        int last;
        if (x % 100 < 15)
            last = do_add(w, rg);
        else if (x % 100 < 20 && r->households > 0)
            last = do_payout(w, py, (unsigned)((x >> 32) % r->households));
        else if (x % 100 < 58 || w->known[k] == 0)
            last = do_read(w, cw, k);
        else
            last = do_cas(w, cw, k);
        /* After an unanswered call, do not spin on a dead node. */
        if (last == KZ_R_UNKNOWN)
            nap(50);
    }
    kz_cli_close(cw);
    kz_cli_close(rg);
    kz_cli_close(py);
    return NULL;
}

/* ---------------------------------------------------------------- links */

/* One-way latency between two regions in ms: the RTTs halved for
 * the regions it names (Tokyo-Osaka 8 ms, Tokyo-Sapporo 15 ms,
 * Osaka-Sapporo 20 ms RTT), 5 ms for others, 0 inside a region. */
static unsigned base_delay(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return 0;
    static const struct {
        const char *x, *y;
        unsigned ms;
    } m[] = {{"tokyo", "osaka", 4}, {"tokyo", "sapporo", 8},
             {"osaka", "sapporo", 10}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if ((strcmp(a, m[i].x) == 0 && strcmp(b, m[i].y) == 0) ||
            (strcmp(a, m[i].y) == 0 && strcmp(b, m[i].x) == 0))
            return m[i].ms;
    return 5;
}

static void links_base(struct run *r)
{
    unsigned all = r->spare ? r->spare : r->n;
    for (unsigned a = 1; a <= all; a++)
        for (unsigned b = 1; b <= all; b++) {
            if (a == b)
                continue;
            struct kz_proxy_link l = {0};
            l.delay_ms = base_delay(r->region[a], r->region[b]);
            l.jitter_ms = l.delay_ms / 4;
            kz_proxy_set(r->proxy, a, b, &l);
        }
}

static void block(struct run *r, unsigned a, unsigned b, bool on)
{
    struct kz_proxy_link l;
    kz_proxy_get(r->proxy, a, b, &l);
    l.blocked = on;
    kz_proxy_set(r->proxy, a, b, &l);
}

/* Cuts every link between the nodes in set and the others (both ways). */
static void isolate(struct run *r, const bool *in)
{
    for (unsigned a = 1; a <= r->n; a++)
        for (unsigned b = 1; b <= r->n; b++)
            if (a != b && in[a] != in[b])
                block(r, a, b, true);
}

/* --------------------------------------------------------------- nemesis */

struct fault {
    enum scen s;
    unsigned nodes[MAX_NODES];
    size_t n_nodes;
    char region[32];
    char stale_copy[PATH_MAX];
};

static unsigned pick_follower(struct run *r, unsigned leader)
{
    unsigned f;
    do
        f = 1 + (unsigned)(rnd(r) % r->n);
    while (f == leader && r->n > 1);
    return f;
}

static int run_sh(const char *fmt, ...)
{
    char cmd[3 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The region that holds fewer than half of the voters (a region whose loss
 * the cluster must survive), chosen by the seed. */
static const char *minority_region(struct run *r)
{
    const char *cand[MAX_NODES];
    size_t nc = 0;
    for (unsigned g = 0; g < r->n_regions; g++) {
        unsigned cnt = 0;
        for (unsigned i = 1; i <= r->n; i++)
            cnt += strcmp(r->region[i], r->region_names[g]) == 0;
        if (2 * cnt < r->n)
            cand[nc++] = r->region_names[g];
    }
    return nc ? cand[rnd(r) % nc] : r->region_names[0];
}

/* A membership change through any member (the change goes to the leader),
 * recorded as a "member" op: ok only on 200. The region check is
 * overridden (force): this exercises raft, not the operators' policy. */
static void member_change(struct run *r, bool add, unsigned id)
{
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = KZ_H_MEMBER;
    o.proc = FINAL_PROC;
    o.node = id;
    snprintf(o.region, sizeof o.region, "%s", r->region[id]);
    snprintf(o.what, sizeof o.what, add ? "add node %u as a voter"
                                        : "remove node %u", id);
    kz_cli *cli = client(r, 0, "operator", 90000);
    o.result = KZ_R_UNKNOWN;
    o.t0 = now_us(r);
    if (cli != NULL) {
        char path[64], body[64];
        kz_cli_response resp;
        int rc;
        if (add) {
            snprintf(body, sizeof body, "{\"id\":%u,\"role\":\"voter\"}", id);
            rc = kz_cli_request(cli, "POST", "/v1/cluster/nodes?force=true",
                                NULL, body, strlen(body), &resp);
        } else {
            snprintf(path, sizeof path, "/v1/cluster/nodes/%u?force=true",
                     id);
            rc = kz_cli_request(cli, "DELETE", path, NULL, NULL, 0, &resp);
        }
        if (rc == KZ_CLI_OK) {
            o.status = (int)resp.status;
            o.result = resp.status == 200 ? KZ_R_OK
                       : resp.status == 503 ? KZ_R_UNKNOWN
                                            : KZ_R_FAIL;
            snprintf(o.rid, sizeof o.rid, "%s", resp.request_id);
        }
        kz_cli_response_free(&resp);
        kz_cli_close(cli);
    }
    o.t1 = now_us(r);
    record(r, &o);
    say("t=%6.1f s  membership: %s: %s (%d) in %.1f s", (double)o.t0 / 1e6,
        o.what, kz_hist_result_name(o.result), o.status,
        (double)(o.t1 - o.t0) / 1e6);
}

/* The highest applied index any member reports, or 0. */
static uint64_t members_applied(struct run *r)
{
    kz_cli *cli = client(r, 0, "operator", 3000);
    long st;
    json_t *j = cli ? get_json(cli, "/v1/cluster", &st) : NULL;
    uint64_t top = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "nodes"), i, v)
    {
        json_int_t a = json_integer_value(json_object_get(v, "applied_index"));
        if (a > 0 && (uint64_t)a > top)
            top = (uint64_t)a;
    }
    json_decref(j);
    if (cli)
        kz_cli_close(cli);
    return top;
}

/* Waits (up to 60 s) until node id has applied what the members had when
 * it was added; recorded as a "member" op. */
static void member_catch_up(struct run *r, unsigned id)
{
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = KZ_H_MEMBER;
    o.proc = FINAL_PROC;
    o.node = id;
    snprintf(o.region, sizeof o.region, "%s", r->region[id]);
    o.t0 = now_us(r);
    uint64_t target = members_applied(r), got = 0;
    kz_cli *cli = client(r, id, "operator", 2000);
    o.result = KZ_R_FAIL;
    while (cli != NULL && now_us(r) - o.t0 < 60000000 && !interrupted) {
        if (target == 0) { /* no member answered yet (an election) */
            target = members_applied(r);
            if (target == 0) {
                nap(200);
                continue;
            }
        }
        long st;
        json_t *j = get_json(cli, "/v1/cluster", &st);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "nodes"), i, v)
        {
            if (json_integer_value(json_object_get(v, "id")) == (json_int_t)id)
                got = (uint64_t)json_integer_value(
                    json_object_get(v, "applied_index"));
        }
        json_decref(j);
        if (got >= target) {
            o.result = KZ_R_OK;
            break;
        }
        nap(200);
    }
    if (cli)
        kz_cli_close(cli);
    o.t1 = now_us(r);
    o.version = got;
    snprintf(o.what, sizeof o.what, "node %u caught up to index %llu", id,
             (unsigned long long)target);
    record(r, &o);
    say("t=%6.1f s  membership: node %u at index %llu of %llu after %.1f s",
        (double)o.t1 / 1e6, id, (unsigned long long)got,
        (unsigned long long)target, (double)(o.t1 - o.t0) / 1e6);
}

static void fault_start(struct run *r, struct fault *f)
{
    unsigned leader = leader_of(r);
    bool in[MAX_NODES + 1] = {false};
    f->n_nodes = 0;
    switch (f->s) {
    case S_KILL_FOLLOWER:
    case S_KILL_LEADER: {
        unsigned v = f->s == S_KILL_LEADER && leader ? leader
                                                     : pick_follower(r, leader);
        f->nodes[f->n_nodes++] = v;
        lc_node(r, "kill", v); /* noted once done: failover counts from here */
        nemesis_note(r, KZ_H_NEMESIS, "kill -9 %s node %u",
                     v == leader ? "leader" : "follower", v);
        break;
    }
    case S_KILL_REGION: {
        const char *g = minority_region(r);
        snprintf(f->region, sizeof f->region, "%s", g);
        lc(r, "kill-region", g, NULL);
        nemesis_note(r, KZ_H_NEMESIS, "kill -9 region %s%s", g,
                     leader && strcmp(r->region[leader], g) == 0
                         ? " (holds the leader)"
                         : "");
        break;
    }
    case S_KILL_MAJORITY: {
        unsigned want = r->n / 2 + 1;
        if (leader)
            f->nodes[f->n_nodes++] = leader;
        while (f->n_nodes < want) {
            unsigned v = 1 + (unsigned)(rnd(r) % r->n);
            bool dup = false;
            for (size_t i = 0; i < f->n_nodes; i++)
                dup = dup || f->nodes[i] == v;
            if (!dup)
                f->nodes[f->n_nodes++] = v;
        }
        char list[64] = "";
        for (size_t i = 0; i < f->n_nodes; i++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%u", i ? "," : "",
                     f->nodes[i]);
        }
        for (size_t i = 0; i < f->n_nodes; i++)
            lc_node(r, "kill", f->nodes[i]);
        nemesis_note(r, KZ_H_NEMESIS, "kill -9 a majority: nodes %s", list);
        break;
    }
    case S_PAUSE_LEADER: {
        unsigned v = leader ? leader : pick_follower(r, 0);
        f->nodes[f->n_nodes++] = v;
        signal_node(r, v, SIGSTOP);
        nemesis_note(r, KZ_H_NEMESIS, "pause (SIGSTOP) leader node %u", v);
        break;
    }
    case S_PART_REGION: {
        const char *g = minority_region(r);
        for (unsigned i = 1; i <= r->n; i++)
            in[i] = strcmp(r->region[i], g) == 0;
        isolate(r, in);
        nemesis_note(r, KZ_H_NEMESIS, "partition: region %s cut off%s", g,
                     leader && in[leader] ? " (holds the leader)" : "");
        break;
    }
    case S_PART_LEADER: {
        unsigned v = leader ? leader : 1;
        in[v] = true;
        isolate(r, in);
        nemesis_note(r, KZ_H_NEMESIS, "isolate leader node %u", v);
        break;
    }
    case S_PART_ONEWAY: {
        unsigned v = leader ? leader : 1;
        for (unsigned b = 1; b <= r->n; b++)
            if (b != v)
                block(r, v, b, true);
        nemesis_note(r, KZ_H_NEMESIS,
                     "partition one-way: nothing from leader node %u arrives",
                     v);
        break;
    }
    case S_PART_RING: {
        for (unsigned a = 1; a <= r->n; a++)
            for (unsigned b = 1; b <= r->n; b++) {
                unsigned d = a > b ? a - b : b - a;
                if (a != b && d != 1 && d != r->n - 1)
                    block(r, a, b, true);
            }
        nemesis_note(r, KZ_H_NEMESIS,
                     "partition ring: each node reaches its two neighbours");
        break;
    }
    case S_SLOW: {
        nemesis_note(r, KZ_H_NEMESIS,
                     "slow links: +100±50 ms and 2%% stalls of 200 ms");
        for (unsigned a = 1; a <= r->n; a++)
            for (unsigned b = 1; b <= r->n; b++) {
                if (a == b)
                    continue;
                struct kz_proxy_link l;
                kz_proxy_get(r->proxy, a, b, &l);
                l.delay_ms += 100;
                l.jitter_ms = 50;
                l.stall_permille = 20;
                l.stall_ms = 200;
                kz_proxy_set(r->proxy, a, b, &l);
            }
        break;
    }
    case S_FLAP: {
        unsigned v = leader ? leader : 1;
        f->nodes[0] = v;
        f->nodes[1] = pick_follower(r, v);
        f->n_nodes = 2;
        nemesis_note(r, KZ_H_NEMESIS,
                     "partition flapping: link %u<->%u up/down every 0.5 s",
                     f->nodes[0], f->nodes[1]);
        break;
    }
    case S_DISK_FULL: {
        unsigned v = r->n; /* the node on the tmpfs */
        f->nodes[f->n_nodes++] = v;
        struct statvfs sv;
        if (!r->tmpfs_mounted || statvfs(r->tmpfs_dir, &sv) != 0) {
            nemesis_note(r, KZ_H_NEMESIS,
                         "disk full not injected: no tmpfs data dir");
            break;
        }
        unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
        run_sh("fallocate -l %llu '%s/filler' 2>/dev/null || "
               "dd if=/dev/zero of='%s/filler' bs=1M 2>/dev/null",
               avail, r->tmpfs_dir, r->tmpfs_dir);
        nemesis_note(r, KZ_H_NEMESIS,
                     "kill: disk full on node %u (%.0f MB filled)", v,
                     (double)avail / 1e6);
        break;
    }
    case S_STALE_DISK: {
        unsigned v = pick_follower(r, leader);
        f->nodes[f->n_nodes++] = v;
        snprintf(f->stale_copy, sizeof f->stale_copy, "%s/stale-node%u",
                 r->dir, v);
        nemesis_note(r, KZ_H_NEMESIS,
                     "stale disk: copying node %u's data dir while it runs",
                     v);
        run_sh("rm -rf '%s' && cp -a '%s/node%u/data' '%s' 2>/dev/null",
               f->stale_copy, r->dir, v, f->stale_copy);
        break;
    }
    case S_MEMBERSHIP: {
        /* One fault at a time: every member healthy first (a node may
         * still be catching up from the previous scenario). */
        const char *all[] = {"--all", "--timeout", "60", NULL};
        lc(r, "wait", NULL, all);
        leader = leader_of(r);
        unsigned v = pick_follower(r, leader), s = r->spare;
        f->nodes[f->n_nodes++] = v;
        lc_node(r, "kill", v);
        nemesis_note(r, KZ_H_NEMESIS,
                     "kill -9 follower node %u; node %u joins meanwhile", v,
                     s);
        /* A fresh node each time: no data from an earlier round. */
        run_sh("rm -rf '%s/node%u/data' && mkdir -p '%s/node%u/data'",
               r->dir, s, r->dir, s);
        lc_node(r, "restart", s);
        member_change(r, true, s);
        member_catch_up(r, s);
        break;
    }
    case S__COUNT:
        break;
    }
}

/* Called every 100 ms while a fault holds. */
static void fault_tick(struct run *r, struct fault *f, unsigned ms)
{
    if (f->s == S_FLAP && ms % 500 == 0) {
        bool down = (ms / 500) % 2 == 0;
        block(r, f->nodes[0], f->nodes[1], down);
        block(r, f->nodes[1], f->nodes[0], down);
    }
}

static void fault_end(struct run *r, struct fault *f)
{
    switch (f->s) {
    case S_KILL_FOLLOWER:
    case S_KILL_LEADER:
    case S_KILL_MAJORITY:
        nemesis_note(r, KZ_H_NEMESIS, "restart the killed node(s)");
        for (size_t i = 0; i < f->n_nodes; i++)
            lc_node(r, "restart", f->nodes[i]);
        break;
    case S_KILL_REGION:
        nemesis_note(r, KZ_H_NEMESIS, "restart region %s", f->region);
        lc(r, "restart-region", f->region, NULL);
        break;
    case S_PAUSE_LEADER:
        nemesis_note(r, KZ_H_NEMESIS, "resume (SIGCONT) node %u",
                     f->nodes[0]);
        signal_node(r, f->nodes[0], SIGCONT);
        break;
    case S_PART_REGION:
    case S_PART_LEADER:
    case S_PART_ONEWAY:
    case S_PART_RING:
    case S_FLAP:
    case S_SLOW:
        nemesis_note(r, KZ_H_NEMESIS, "heal the network");
        kz_proxy_heal(r->proxy);
        links_base(r);
        break;
    case S_DISK_FULL:
        if (!r->tmpfs_mounted)
            break;
        nemesis_note(r, KZ_H_NEMESIS, "heal: free node %u's disk",
                     f->nodes[0]);
        run_sh("rm -f '%s/filler'", r->tmpfs_dir);
        if (node_pid(r, f->nodes[0]) == 0) {
            nemesis_note(r, KZ_H_NEMESIS,
                         "node %u stopped on the full disk: restart it",
                         f->nodes[0]);
            lc_node(r, "restart", f->nodes[0]);
        }
        break;
    case S_STALE_DISK: {
        unsigned v = f->nodes[0];
        nemesis_note(r, KZ_H_NEMESIS,
                     "stale disk: restart node %u from its old copy", v);
        lc_node(r, "kill", v);
        /* Contents only: the data dir may be a tmpfs mount point. */
        run_sh("find '%s/node%u/data' -mindepth 1 -delete && "
               "cp -a '%s/.' '%s/node%u/data/' && rm -rf '%s'",
               r->dir, v, f->stale_copy, r->dir, v, f->stale_copy);
        lc_node(r, "restart", v);
        break;
    }
    case S_MEMBERSHIP:
        /* Removed while the follower is still down, then stopped. */
        member_change(r, false, r->spare);
        lc_node(r, "kill", r->spare);
        nemesis_note(r, KZ_H_NEMESIS, "restart node %u", f->nodes[0]);
        lc_node(r, "restart", f->nodes[0]);
        break;
    case S__COUNT:
        break;
    }
}

/* Heals everything, whatever was injected: before the final checks. */
static void heal_all(struct run *r)
{
    kz_proxy_heal(r->proxy);
    links_base(r);
    for (unsigned i = 1; i <= r->n; i++)
        if (r->paused[i])
            signal_node(r, i, SIGCONT);
    if (r->tmpfs_mounted)
        run_sh("rm -f '%s/filler'", r->tmpfs_dir);
    for (unsigned i = 1; i <= r->n; i++)
        if (node_pid(r, i) == 0) {
            nemesis_note(r, KZ_H_NEMESIS, "restart node %u (down at the end)",
                         i);
            lc_node(r, "restart", i);
        }
}

/* --------------------------------------------------------------- set-up */

static int parse_regions(struct run *r)
{
    char spec[256];
    snprintf(spec, sizeof spec, "%s", r->regions_spec);
    r->n = 0;
    r->n_regions = 0;
    for (char *save = NULL, *part = strtok_r(spec, ",", &save); part;
         part = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(part, ':');
        int count = colon ? atoi(colon + 1) : 0;
        if (colon == NULL || count < 1 || colon == part ||
            (size_t)(colon - part) >= 32 || r->n_regions == MAX_NODES)
            return -1;
        *colon = '\0';
        snprintf(r->region_names[r->n_regions++], 32, "%s", part);
        for (int k = 0; k < count; k++) {
            if (++r->n > MAX_NODES)
                return -1;
            snprintf(r->region[r->n], 32, "%s", part);
            snprintf(r->ip[r->n], 32, "%s.%u", r->net, 10 + r->n);
        }
    }
    return r->n >= 3 ? 0 : -1;
}

static void teardown(void)
{
    struct run *r = the_run;
    if (r == NULL)
        return;
    the_run = NULL;
    if (r->cluster_up) {
        for (unsigned i = 1; i <= r->n; i++)
            if (r->paused[i])
                signal_node(r, i, SIGCONT);
        say("stopping the cluster (deploy/local-cluster down --dir %s)",
            r->dir);
        lc(r, "down", NULL, NULL);
        r->cluster_up = false;
    }
    if (r->proxy) {
        kz_proxy_stop(r->proxy);
        r->proxy = NULL;
    }
    if (r->tmpfs_mounted) {
        if (umount2(r->tmpfs_dir, MNT_DETACH) != 0)
            say("cannot unmount %s: %s", r->tmpfs_dir, strerror(errno));
        r->tmpfs_mounted = false;
    }
}

/* Creates the register keys: victims with contact "t0", version read
 * back, written as init lines. */
static int create_keys(struct run *r)
{
    kz_cli *rg = client(r, 0, "registrar", 10000);
    kz_cli *cw = client(r, 0, "caseworker", 10000);
    int rc = rg && cw ? 0 : -1;
    for (unsigned k = 0; k < r->keys && rc == 0 && !interrupted; k++) {
        char body[160];
        int bl = snprintf(body, sizeof body,
                          "{\"name\":\"登録 %u\",\"name_kana\":\"トウロク "
                          "%u\",\"dob\":\"1970-01-01\",\"sex\":\"other\","
                          "\"contact\":\"t0\"}",
                          k, k);
        kz_cli_response resp;
        if (kz_cli_request(rg, "POST", "/v1/victims", NULL, body, (size_t)bl,
                           &resp) != KZ_CLI_OK ||
            resp.status != 201) {
            say("creating register key %u failed: %s", k, kz_cli_errmsg(rg));
            kz_cli_response_free(&resp);
            rc = -1;
            break;
        }
        json_t *j = json_loads(resp.body, 0, NULL);
        kz_cli_response_free(&resp);
        const char *id = json_string_value(json_object_get(j, "id"));
        struct kz_hist_op o;
        memset(&o, 0, sizeof o);
        o.op = KZ_H_INIT;
        snprintf(o.key, sizeof o.key, "%s", id ? id : "");
        snprintf(r->key[k], sizeof r->key[k], "%s", o.key);
        o.version = (uint64_t)json_integer_value(json_object_get(j, "version"));
        o.t0 = o.t1 = now_us(r);
        json_decref(j);
        if (!o.key[0] || !o.version) {
            say("creating register key %u: no id or version", k);
            rc = -1;
            break;
        }
        record(r, &o);
    }
    /* Payouts: the disaster a month ago; households of two people whose
     * homes were destroyed (zenkai: eligible for basic support). */
    kz_cli *op = client(r, 0, "operator", 10000);
    if (rc == 0 && r->households > 0) {
        time_t t = time(NULL) - 30 * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        char prog[64];
        int pl = (int)strftime(prog, sizeof prog,
                               "{\"disaster_date\":\"%Y-%m-%d\"}", &tm);
        kz_cli_response resp;
        if (op == NULL ||
            kz_cli_request(op, "PUT", "/v1/programs/seikatsu_saiken", NULL,
                           prog, (size_t)pl, &resp) != KZ_CLI_OK ||
            resp.status != 200) {
            say("setting the disaster date failed: %s",
                op ? kz_cli_errmsg(op) : "no client");
            rc = -1;
        }
        kz_cli_response_free(&resp);
    }
    for (unsigned h = 0; h < r->households && rc == 0 && !interrupted; h++)
        for (unsigned m = 0; m < 2 && rc == 0; m++) {
            char hid[32], body[200];
            household_id(hid, sizeof hid, h);
            int bl = snprintf(body, sizeof body,
                              "{\"name\":\"世帯 %u-%u\",\"dob\":"
                              "\"1980-01-01\",\"sex\":\"other\","
                              "\"household_id\":\"%s\",\"damage\":"
                              "\"zenkai\"}",
                              h, m, hid);
            kz_cli_response resp;
            if (kz_cli_request(rg, "POST", "/v1/victims", NULL, body,
                               (size_t)bl, &resp) != KZ_CLI_OK ||
                resp.status != 201) {
                say("registering household %s failed: %s", hid,
                    kz_cli_errmsg(rg));
                rc = -1;
            }
            kz_cli_response_free(&resp);
        }
    kz_cli_close(op);
    kz_cli_close(rg);
    kz_cli_close(cw);
    return rc;
}

/* After healing: each household's payouts and the ledger. */
static void final_payouts(struct run *r)
{
    kz_cli *au = client(r, 0, "auditor", 10000);
    for (unsigned h = 0; au && h < r->households && !interrupted; h++) {
        struct kz_hist_op o;
        memset(&o, 0, sizeof o);
        o.op = KZ_H_PAYOUTS;
        o.proc = FINAL_PROC;
        household_id(o.key, sizeof o.key, h);
        char path[96];
        snprintf(path, sizeof path, "/v1/payouts?household_id=%s", o.key);
        o.t0 = now_us(r);
        long st;
        json_t *j = get_json(au, path, &st);
        o.t1 = now_us(r);
        o.status = (int)st;
        o.result = j ? KZ_R_OK : KZ_R_UNKNOWN;
        json_t *ps = json_object_get(j, "payouts");
        o.value = (int64_t)json_array_size(ps);
        o.version = (uint64_t)json_integer_value(json_object_get(j, "total_yen"));
        const char *id =
            json_string_value(json_object_get(json_array_get(ps, 0), "id"));
        snprintf(o.what, sizeof o.what, "%s", id ? id : "");
        json_decref(j);
        record(r, &o);
    }
    if (au && r->households > 0) {
        struct kz_hist_op o;
        memset(&o, 0, sizeof o);
        o.op = KZ_H_LEDGER;
        o.proc = FINAL_PROC;
        o.t0 = now_us(r);
        long st;
        json_t *j = get_json(au, "/v1/payouts/ledger", &st);
        o.t1 = now_us(r);
        o.status = (int)st;
        o.result = j ? KZ_R_OK : KZ_R_UNKNOWN;
        o.value = json_integer_value(json_object_get(j, "yen"));
        json_decref(j);
        record(r, &o);
    }
    kz_cli_close(au);
}

/* ---------------------------------------------------------- final checks */

static int by_str(const void *a, const void *b);

/* Final reads through one node (a thread each): its share of the register
 * keys, then every acknowledged registration. Registrations are found by
 * pages of a search on their date of birth (one audited read per 1000
 * records, instead of one per record); one the search does not return is
 * read by id before it is called missing. */
struct final_job {
    struct run *r;
    unsigned node;
    const struct kz_hist_op *adds; /* copies of the acknowledged adds */
    size_t n_adds;
    pthread_t thread;
};

static void *final_node(void *arg)
{
    struct final_job *j = arg;
    struct run *r = j->r;
    kz_cli *c = client(r, j->node, "caseworker", 10000);
    if (c == NULL)
        return NULL;
    struct worker w = {.r = r, .proc = FINAL_PROC, .node = j->node};
    w.known = calloc(r->keys, sizeof *w.known);
    for (unsigned k = j->node - 1; w.known && k < r->keys && !interrupted;
         k += r->n)
        do_read(&w, c, k);
    free(w.known);

    char **found = NULL;
    size_t nf = 0, cap = 0;
    char cursor[64] = "";
    for (;;) {
        char path[160];
        snprintf(path, sizeof path, "/v1/victims?dob=1990-01-01&limit=1000%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        long st;
        json_t *page = get_json(c, path, &st);
        if (page == NULL)
            break;
        json_t *items = json_object_get(page, "items"), *it;
        size_t i;
        json_array_foreach(items, i, it)
        {
            const char *id = json_string_value(json_object_get(it, "id"));
            if (id == NULL)
                continue;
            if (nf == cap) {
                cap = cap ? 2 * cap : 1024;
                char **g = realloc(found, cap * sizeof *g);
                if (g == NULL)
                    break;
                found = g;
            }
            found[nf++] = strdup(id);
        }
        const char *next =
            json_string_value(json_object_get(page, "next_cursor"));
        snprintf(cursor, sizeof cursor, "%s", next ? next : "");
        json_decref(page);
        if (!cursor[0])
            break;
    }
    qsort(found, nf, sizeof *found, by_str);
    for (size_t i = 0; i < j->n_adds && !interrupted; i++) {
        const struct kz_hist_op *a = &j->adds[i];
        struct kz_hist_op o;
        memset(&o, 0, sizeof o);
        o.op = KZ_H_FINAL;
        o.node = j->node;
        o.proc = FINAL_PROC;
        snprintf(o.key, sizeof o.key, "%s", a->key);
        snprintf(o.region, sizeof o.region, "%s", r->region[j->node]);
        o.t0 = now_us(r);
        const char *key = a->key;
        if (bsearch(&key, found, nf, sizeof *found, by_str) != NULL) {
            o.result = KZ_R_OK;
            o.status = 200;
        } else {
            char path[96];
            snprintf(path, sizeof path, "/v1/victims/%s", a->key);
            o.result = KZ_R_UNKNOWN;
            for (int attempt = 0; attempt < 3 && o.result == KZ_R_UNKNOWN;
                 attempt++) {
                kz_cli_response resp;
                if (kz_cli_request(c, "GET", path, NULL, NULL, 0, &resp) ==
                    KZ_CLI_OK) {
                    o.status = (int)resp.status;
                    o.result = resp.status == 200   ? KZ_R_OK
                               : resp.status == 404 ? KZ_R_FAIL
                                                    : KZ_R_UNKNOWN;
                    kz_cli_response_free(&resp);
                }
            }
        }
        o.t1 = now_us(r);
        record(r, &o);
    }
    for (size_t i = 0; i < nf; i++)
        free(found[i]);
    free(found);
    kz_cli_close(c);
    return NULL;
}

static void final_reads(struct run *r)
{
    struct kz_hist_op *adds = NULL;
    size_t n_adds = 0;
    pthread_mutex_lock(&r->mu);
    adds = malloc((r->hist.n + 1) * sizeof *adds);
    for (size_t i = 0; adds && i < r->hist.n; i++)
        if (r->hist.ops[i].op == KZ_H_ADD && r->hist.ops[i].result == KZ_R_OK)
            adds[n_adds++] = r->hist.ops[i];
    pthread_mutex_unlock(&r->mu);
    if (adds == NULL)
        return;
    struct final_job jobs[MAX_NODES];
    for (unsigned i = 0; i < r->n; i++) {
        jobs[i] = (struct final_job){.r = r, .node = i + 1, .adds = adds,
                                     .n_adds = n_adds};
        pthread_create(&jobs[i].thread, NULL, final_node, &jobs[i]);
    }
    for (unsigned i = 0; i < r->n; i++)
        pthread_join(jobs[i].thread, NULL);
    free(adds);
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Waits until every node reports the same applied index twice in a row
 * (the audit queue drained, nothing in flight), up to 60 s, then records
 * each node's digest. */
static void digests(struct run *r)
{
    json_t *last[MAX_NODES + 1] = {NULL};
    uint64_t prev = 0;
    for (int round = 0; round < 120 && !interrupted; round++) {
        uint64_t idx0 = 0;
        bool same = true;
        for (unsigned i = 1; i <= r->n; i++) {
            kz_cli *c = client(r, i, "operator", 3000);
            long st;
            json_decref(last[i]);
            last[i] = c ? get_json(c, "/v1/cluster/digest", &st) : NULL;
            kz_cli_close(c);
            uint64_t idx = (uint64_t)json_integer_value(
                json_object_get(last[i], "applied_index"));
            if (i == 1)
                idx0 = idx;
            same = same && last[i] != NULL && idx == idx0;
        }
        if (same && idx0 == prev)
            break;
        prev = same ? idx0 : 0;
        nap(500);
    }
    for (unsigned i = 1; i <= r->n; i++) {
        struct kz_hist_op o;
        memset(&o, 0, sizeof o);
        o.op = KZ_H_DIGEST;
        o.node = i;
        o.proc = FINAL_PROC;
        o.t0 = o.t1 = now_us(r);
        const char *d = json_string_value(json_object_get(last[i], "digest"));
        o.result = d ? KZ_R_OK : KZ_R_FAIL;
        snprintf(o.what, sizeof o.what, "%s", d ? d : "no answer");
        o.version = (uint64_t)json_integer_value(
            json_object_get(last[i], "applied_index"));
        o.value = json_integer_value(json_object_get(last[i], "entries"));
        record(r, &o);
        json_decref(last[i]);
    }
}

/* Access records: each acknowledged workload read has exactly one (by its
 * request id); each node's chain verifies and they are the same. */
static void audit_checks(struct run *r)
{
    kz_cli *c = client(r, 1, "auditor", 10000);
    char **rids = NULL;
    size_t nr = 0, cap = 0;
    uint64_t after = 0;
    bool complete = c != NULL;
    while (complete && !interrupted) {
        char path[96];
        snprintf(path, sizeof path, "/v1/audit?limit=1000&after=%" PRIu64,
                 after);
        long st;
        json_t *j = get_json(c, path, &st);
        if (j == NULL) {
            say("reading the access log failed (HTTP %ld)", st);
            complete = false;
            break;
        }
        json_t *items = json_object_get(j, "items"), *it;
        size_t i;
        json_array_foreach(items, i, it)
        {
            const char *rid =
                json_string_value(json_object_get(it, "request_id"));
            if (rid == NULL)
                continue;
            if (nr == cap) {
                cap = cap ? cap * 2 : 4096;
                char **g = realloc(rids, cap * sizeof *g);
                if (g == NULL)
                    break;
                rids = g;
            }
            rids[nr++] = strdup(rid);
        }
        json_t *next = json_object_get(j, "next_after");
        bool more = json_is_integer(next);
        after = more ? (uint64_t)json_integer_value(next) : 0;
        json_decref(j);
        if (!more)
            break;
    }
    kz_cli_close(c);
    if (complete) {
        qsort(rids, nr, sizeof *rids, by_str);
        size_t n = r->hist.n;
        for (size_t i = 0; i < n; i++) {
            const struct kz_hist_op *o = &r->hist.ops[i];
            if (o->op != KZ_H_READ || o->result != KZ_R_OK || !o->rid[0] ||
                o->proc == FINAL_PROC)
                continue;
            const char *key = o->rid;
            char **hit = bsearch(&key, rids, nr, sizeof *rids, by_str);
            int64_t count = 0;
            if (hit) {
                char **lo = hit, **hi = hit;
                while (lo > rids && strcmp(lo[-1], key) == 0)
                    lo--;
                while (hi + 1 < rids + nr && strcmp(hi[1], key) == 0)
                    hi++;
                count = hi - lo + 1;
            }
            struct kz_hist_op a;
            memset(&a, 0, sizeof a);
            a.op = KZ_H_AUDIT;
            a.proc = FINAL_PROC;
            a.result = KZ_R_OK;
            a.value = count;
            snprintf(a.key, sizeof a.key, "%s", o->key);
            snprintf(a.rid, sizeof a.rid, "%s", o->rid);
            a.t0 = a.t1 = now_us(r);
            record(r, &a);
        }
    }
    for (size_t i = 0; i < nr; i++)
        free(rids[i]);
    free(rids);

    for (unsigned i = 1; i <= r->n; i++) {
        kz_cli *ci = client(r, i, "auditor", 30000);
        long st;
        json_t *j = ci ? get_json(ci, "/v1/audit/verify", &st) : NULL;
        kz_cli_close(ci);
        struct kz_hist_op o;
        memset(&o, 0, sizeof o);
        o.op = KZ_H_CHAIN;
        o.node = i;
        o.proc = FINAL_PROC;
        o.t0 = o.t1 = now_us(r);
        json_t *head = json_object_get(j, "head");
        o.result = json_is_true(json_object_get(j, "ok")) ? KZ_R_OK : KZ_R_FAIL;
        o.value = json_integer_value(json_object_get(j, "entries"));
        snprintf(o.what, sizeof o.what, "%s",
                 json_is_string(head) ? json_string_value(head)
                                      : (j ? "no head" : "no answer"));
        record(r, &o);
        json_decref(j);
    }
}

/* ------------------------------------------------------------------ run */

static int write_history(struct run *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    kz_hist_sort(&r->hist);
    for (size_t i = 0; i < r->hist.n; i++)
        kz_hist_write(f, &r->hist.ops[i]);
    return fclose(f);
}

static int cmd_run(struct run *r)
{
    if (parse_regions(r) != 0) {
        say("bad --regions '%s' (want name:count,..., 3 to %d nodes)",
            r->regions_spec, MAX_NODES);
        return 2;
    }
    if (run_sh("mkdir -p '%s'", r->dir) != 0) {
        say("cannot create %s", r->dir);
        return 3;
    }
    char env[PATH_MAX + 32];
    snprintf(env, sizeof env, "%s/cluster.env", r->dir);
    if (access(env, F_OK) == 0) {
        say("%s already holds a cluster: give another --dir or remove it "
            "(deploy/local-cluster down --dir %s; rm -rf %s)",
            r->dir, r->dir, r->dir);
        return 2;
    }
    the_run = r;
    atexit(teardown);
    clock_gettime(CLOCK_MONOTONIC, &r->start);
    r->rng = r->seed;
    atomic_store(&r->token, 1);

    /* The proxies first: the nodes dial their peers through them. */
    if (r->scen[S_MEMBERSHIP]) {
        /* One more node, configured everywhere as "join", in the region
         * with the fewest nodes. */
        unsigned best = 0, fewest = UINT32_MAX;
        for (unsigned g = 0; g < r->n_regions; g++) {
            unsigned cnt = 0;
            for (unsigned i = 1; i <= r->n; i++)
                cnt += strcmp(r->region[i], r->region_names[g]) == 0;
            if (cnt < fewest) {
                fewest = cnt;
                best = g;
            }
        }
        r->spare = r->n + 1;
        memcpy(r->region[r->spare], r->region_names[best], 32);
        snprintf(r->ip[r->spare], 32, "%s.%u", r->net, 10 + r->spare);
    }
    unsigned all = r->spare ? r->spare : r->n;
    const char *targets[MAX_NODES + 1];
    char tbuf[MAX_NODES + 1][48];
    for (unsigned i = 1; i <= all; i++) {
        snprintf(tbuf[i - 1], sizeof tbuf[i - 1], "%s:%u", r->ip[i],
                 r->port + 1);
        targets[i - 1] = tbuf[i - 1];
    }
    char err[256];
    r->proxy = kz_proxy_start(all, "127.0.0.1", r->proxy_port, targets,
                              r->seed, err, sizeof err);
    if (r->proxy == NULL) {
        say("%s", err);
        return 3;
    }
    links_base(r);

    if (r->scen[S_DISK_FULL]) {
        /* The last node's data on a small tmpfs of its own. */
        snprintf(r->tmpfs_dir, sizeof r->tmpfs_dir, "%s/node%u/data", r->dir,
                 r->n);
        run_sh("mkdir -p '%s'", r->tmpfs_dir);
        /* Room for a whole `make chaos` of data (a few hundred MB), so the
         * disk is full only while the scenario fills it. */
        if (mount("kizuna-chaos", r->tmpfs_dir, "tmpfs", 0, "size=1g") == 0)
            r->tmpfs_mounted = true;
        else
            say("disk-full: cannot mount a tmpfs on %s (%s); that scenario "
                "will report that it was not injected",
                r->tmpfs_dir, strerror(errno));
    }

    char regions[300], net[64], port[16], proxy[64], bin[PATH_MAX + 8];
    snprintf(regions, sizeof regions, "%s", r->regions_spec);
    snprintf(net, sizeof net, "%s", r->net);
    snprintf(port, sizeof port, "%u", r->port);
    snprintf(proxy, sizeof proxy, "127.0.0.1:%u", r->proxy_port);
    snprintf(bin, sizeof bin, "%s", r->bin);
    char spares[48];
    snprintf(spares, sizeof spares, "%s:1", r->region[r->spare]);
    const char *up[] = {"--regions", regions, "--net", net, "--port", port,
                        "--proxy", proxy, "--bin", bin,
                        "--set", "snapshot_threshold=256",
                        r->spare ? "--spares" : NULL, spares, NULL};
    say("starting %u nodes (%s) in %s, raft links through the fault proxies "
        "on 127.0.0.1:%u+",
        r->n, r->regions_spec, r->dir, r->proxy_port);
    r->cluster_up = true; /* from here on, teardown stops it */
    if (lc(r, "up", NULL, up) != 0) {
        say("deploy/local-cluster up failed: see %s/local-cluster.log",
            r->dir);
        return 3;
    }
    r->key = calloc(r->keys, sizeof *r->key);
    if (r->key == NULL || create_keys(r) != 0)
        return 3;

    /* Workers: `workers` per node, each talking to its node only, so
     * availability is measured per region. */
    size_t nw = (size_t)r->n * r->workers;
    struct worker *ws = calloc(nw, sizeof *ws);
    if (ws == NULL)
        return 3;
    for (size_t i = 0; i < nw; i++) {
        ws[i].r = r;
        ws[i].proc = (unsigned)i + 1;
        ws[i].node = 1 + (unsigned)(i % r->n);
        ws[i].known = calloc(r->keys, sizeof *ws[i].known);
        pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
    }

    /* The nemesis: each scenario for --duration, faults held for up to
     * 10 s with 5 s of calm between them. */
    nap(3000);
    for (int s = 0; s < S__COUNT && !interrupted; s++) {
        if (!r->scen[s])
            continue;
        nemesis_note(r, KZ_H_PHASE, "%s", scenarios[s].name);
        int64_t end = now_us(r) + (int64_t)(r->duration_s * 1e6);
        unsigned hold = r->duration_s >= 30 ? 10000 : 5000;
        while (now_us(r) + (int64_t)(hold + 2000) * 1000 < end &&
               !interrupted) {
            struct fault f;
            memset(&f, 0, sizeof f);
            f.s = (enum scen)s;
            fault_start(r, &f);
            for (unsigned ms = 0; ms < hold && !interrupted; ms += 100) {
                fault_tick(r, &f, ms);
                nap(100);
            }
            fault_end(r, &f);
            int64_t calm = now_us(r) + 5000000;
            while (now_us(r) < calm && now_us(r) < end && !interrupted)
                nap(100);
        }
        while (now_us(r) < end && !interrupted)
            nap(100);
    }
    nemesis_note(r, KZ_H_NEMESIS, "heal everything");
    heal_all(r);
    nap(2000);
    atomic_store(&r->stop_workers, true);
    for (size_t i = 0; i < nw; i++) {
        pthread_join(ws[i].thread, NULL);
        free(ws[i].known);
    }
    free(ws);
    if (interrupted) {
        say("interrupted: stopping");
        return 3;
    }
    if (lc(r, "wait", NULL, (const char *const[]){"--all", "--timeout", "90", NULL}) != 0)
        say("not every node became ready after healing (checking anyway)");

    say("final reads: every register key, every acknowledged registration "
        "on every node");
    final_reads(r);
    final_payouts(r);
    say("convergence: waiting for every node to reach the same index");
    digests(r);
    say("access records and audit chains");
    audit_checks(r);
    /* The audit reads above are not audited themselves, so the digests
     * taken before them still describe the final state. */

    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/history.jsonl", r->dir);
    if (write_history(r, path) != 0)
        say("cannot write %s", path);
    teardown();

    struct kz_check c;
    if (kz_check_run(&r->hist, 0, &c) != 0) {
        say("out of memory checking");
        return 3;
    }
    char title[512] = "";
    for (int s = 0; s < S__COUNT; s++)
        if (r->scen[s]) {
            size_t l = strlen(title);
            snprintf(title + l, sizeof title - l, "%s%s", l ? "," : "",
                     scenarios[s].name);
        }
    snprintf(path, sizeof path, "%s/report.json", r->dir);
    kz_check_write_json(path, &c, title, r->seed, (double)now_us(r) / 1e6);
    snprintf(path, sizeof path, "%s/summary.txt", r->dir);
    char head[700];
    snprintf(head, sizeof head, "kizuna-chaos %s (seed %" PRIu64 ", %s)",
             title, r->seed, r->regions_spec);
    FILE *f = fopen(path, "w");
    if (f) {
        kz_check_print(f, &c, head);
        fclose(f);
    }
    kz_check_print(stdout, &c, head);
    printf("history: %s/history.jsonl  report: %s/report.json\n", r->dir,
           r->dir);
    int code = c.anomalies ? 1 : 0;
    kz_check_free(&c);
    return code;
}

static int cmd_check(const char *path)
{
    struct kz_hist h = {0};
    char err[400];
    if (kz_hist_load(path, &h, err, sizeof err) != 0) {
        say("%s", err);
        kz_hist_free(&h);
        return 2;
    }
    struct kz_check c;
    if (kz_check_run(&h, 0, &c) != 0) {
        say("out of memory");
        kz_hist_free(&h);
        return 3;
    }
    kz_check_print(stdout, &c, path);
    int code = c.anomalies ? 1 : 0;
    kz_check_free(&c);
    kz_hist_free(&h);
    return code;
}

/* ------------------------------------------------------------------ CLI */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kizuna-chaos run [options]   start a cluster, inject "
            "faults, check\n"
            "       kizuna-chaos check HISTORY  re-check a saved "
            "history.jsonl\n"
            "       kizuna-chaos list           the scenarios\n"
            "run options:\n"
            "  --scenario NAME[,NAME...]|all   (default all)\n"
            "  --seed N             the fault schedule and workload choices "
            "(default 1)\n"
            "  --duration D         per scenario, e.g. 60s, 2m (default 60s)\n"
            "  --dir DIR            cluster, history and report (default "
            "build/chaos/run-<seed>; must not hold a cluster)\n"
            "  --regions R          default tokyo:2,osaka:2,sapporo:1\n"
            "  --net A.B.C          loopback /24 of the nodes (default "
            "127.0.90)\n"
            "  --port P             API port, raft on P+1 (default 7600)\n"
            "  --proxy-port P       first fault proxy port (default 17600)\n"
            "  --keys K             register keys (default 100)\n"
            "  --workers W          client threads per node (default 2)\n"
            "  --households H       payout households (default 20; 0: no "
            "payouts)\n"
            "  --bin DIR            kizunad's directory (default: this "
            "program's)\n"
            "Exit status: 0 no anomaly, 1 anomalies, 2 usage, 3 the run "
            "failed.\n");
}

static bool parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return false;
    if (*end == '\0' || strcmp(end, "s") == 0)
        *out = v;
    else if (strcmp(end, "m") == 0)
        *out = v * 60;
    else
        return false;
    return true;
}

static int set_scenarios(struct run *r, const char *spec)
{
    memset(r->scen, 0, sizeof r->scen);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "all") == 0) {
            for (int s = 0; s < S__COUNT; s++)
                r->scen[s] = true;
            continue;
        }
        int s;
        for (s = 0; s < S__COUNT; s++)
            if (strcmp(t, scenarios[s].name) == 0)
                break;
        if (s == S__COUNT) {
            say("unknown scenario '%s' (kizuna-chaos list)", t);
            return -1;
        }
        r->scen[s] = true;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "list") == 0) {
        for (int s = 0; s < S__COUNT; s++)
            printf("%-18s %s\n", scenarios[s].name, scenarios[s].what);
        printf("%-18s %s\n", "all", "every scenario above, one after another");
        return 0;
    }
    if (strcmp(argv[1], "check") == 0) {
        if (argc != 3) {
            usage(stderr);
            return 2;
        }
        return cmd_check(argv[2]);
    }
    if (strcmp(argv[1], "run") != 0) {
        say("unknown command '%s'", argv[1]);
        usage(stderr);
        return 2;
    }
    static struct run r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    const char *root = getenv("KIZUNA_ROOT");
    snprintf(r.root, sizeof r.root, "%s", root ? root : KZ_SOURCE_DIR);
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl > 0) {
        self[sl] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(r.bin, sizeof r.bin, "%s", self);
    }
    snprintf(r.regions_spec, sizeof r.regions_spec, "tokyo:2,osaka:2,sapporo:1");
    snprintf(r.net, sizeof r.net, "127.0.90");
    r.port = 7600;
    r.proxy_port = 17600;
    r.keys = 100;
    r.workers = 2;
    r.households = 20;
    r.seed = 1;
    r.duration_s = 60;
    set_scenarios(&r, "all");
    bool dir_set = false;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            say("option %s needs a value", o);
            return 2;
        }
        i++;
        if (strcmp(o, "--scenario") == 0) {
            if (set_scenarios(&r, v) != 0)
                return 2;
        } else if (strcmp(o, "--seed") == 0) {
            r.seed = strtoull(v, NULL, 10);
        } else if (strcmp(o, "--duration") == 0) {
            if (!parse_duration(v, &r.duration_s)) {
                say("bad --duration '%s' (e.g. 60s, 2m)", v);
                return 2;
            }
        } else if (strcmp(o, "--dir") == 0) {
            if (v[0] == '/')
                snprintf(r.dir, sizeof r.dir, "%s", v);
            else {
                char cwd[PATH_MAX / 2];
                snprintf(r.dir, sizeof r.dir, "%s/%s",
                         getcwd(cwd, sizeof cwd) ? cwd : ".", v);
            }
            dir_set = true;
        } else if (strcmp(o, "--regions") == 0) {
            snprintf(r.regions_spec, sizeof r.regions_spec, "%s", v);
        } else if (strcmp(o, "--net") == 0) {
            snprintf(r.net, sizeof r.net, "%s", v);
        } else if (strcmp(o, "--port") == 0) {
            r.port = (unsigned)atoi(v);
        } else if (strcmp(o, "--proxy-port") == 0) {
            r.proxy_port = (unsigned)atoi(v);
        } else if (strcmp(o, "--keys") == 0) {
            r.keys = (unsigned)atoi(v);
        } else if (strcmp(o, "--households") == 0) {
            r.households = (unsigned)atoi(v);
        } else if (strcmp(o, "--workers") == 0) {
            r.workers = (unsigned)atoi(v);
        } else if (strcmp(o, "--bin") == 0) {
            snprintf(r.bin, sizeof r.bin, "%s", v);
        } else {
            say("unknown option %s", o);
            usage(stderr);
            return 2;
        }
    }
    if (r.keys < 1 || r.keys > 10000 || r.workers < 1 || r.workers > 16 ||
        r.households > 1000 ||
        r.port < 1024 || r.port > 65000 || r.proxy_port < 1024 ||
        r.proxy_port > 65000) {
        say("--keys 1..10000, --workers 1..16, ports 1024..65000");
        return 2;
    }
    if (!dir_set)
        snprintf(r.dir, sizeof r.dir, "%s/build/chaos/run-%" PRIu64, r.root,
                 r.seed);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int code = cmd_run(&r);
    teardown();
    return code;
}
