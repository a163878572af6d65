/*
 * metrics.c — renders GET /metrics (Prometheus text format 0.0.4) and
 * counts the API's request durations for it.
 *
 * Happy path: the handler in http_api.c calls kz_node_metrics_render on
 * the loop thread; every value is read there and then (raft's status,
 * consensus counters, the node's counters, RocksDB properties, the data
 * directory), appended to a growable buffer and handed back whole. Every
 * family has # HELP and # TYPE; counters end in _total, and units are in
 * the names (_seconds, _bytes). `promtool check metrics` accepts the output
 * (tests/integration/test_metrics.c).
 *
 * Failure modes: out of memory (KZ_ENOMEM: the handler answers 500); a
 * RocksDB property or a file that cannot be read leaves its sample out
 * rather than report a made-up 0.
 *
 * No personal data: label values are route patterns (with `*` for the id),
 * status classes, raft states, node ids and the configured region, escaped
 * as the format requires.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "audit.h"
#include "audit_queue.h"
#include "http_internal.h"
#include "metrics.h"

/* Upper bounds (µs) of the request-duration buckets: 1 ms to 10 s, the same
 * as consensus/'s proposal buckets, so the two histograms compare. */
static const uint64_t latency_le_us[KZ_NODE_LATENCY_BOUNDS] = {
    1000,   2500,   5000,    10000,   25000,   50000,   100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000};

_Static_assert(RT_EXPORT_PFIF < KZ_NODE_ROUTE_SLOTS,
               "KZ_NODE_ROUTE_SLOTS must exceed every enum route_id");

static void latency_observe(struct kz_node_latency *l, uint64_t us)
{
    unsigned i = 0;
    while (i < KZ_NODE_LATENCY_BOUNDS && us > latency_le_us[i])
        i++;
    l->bucket[i]++;
    l->count++;
    l->sum_us += us;
}

void kz_node_metrics_http_observe(struct kz_node *n, int route, int status,
                                  uint64_t us)
{
    if (status < 100 || status >= 600)
        return;
    if (route < 0 || route >= KZ_NODE_ROUTE_SLOTS)
        route = 0;
    latency_observe(&n->stats.http_latency[route][status / 100 - 1], us);
}

void kz_node_metrics_loop_observe(struct kz_node *n, uint64_t us)
{
    latency_observe(&n->stats.loop_busy, us);
}

/* ------------------------------------------------------- the text buffer */

/* Grows as needed; after a failed allocation it stays failed (oom) and
 * appends nothing more, so the caller checks once at the end. */
struct mbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static bool reserve(struct mbuf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

__attribute__((format(printf, 2, 3))) static void put(struct mbuf *b,
                                                      const char *fmt, ...)
{
    if (!reserve(b, 256))
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (w < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)w >= b->cap - b->len) {
        if (!reserve(b, (size_t)w))
            return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)w;
}

/* # HELP and # TYPE of one family. */
static void family(struct mbuf *b, const char *name, const char *type,
                   const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge_u64(struct mbuf *b, const char *name, const char *help,
                      uint64_t v)
{
    family(b, name, "gauge", help);
    put(b, "%s %llu\n", name, (unsigned long long)v);
}

static void counter_u64(struct mbuf *b, const char *name, const char *help,
                        uint64_t v)
{
    family(b, name, "counter", help);
    put(b, "%s %llu\n", name, (unsigned long long)v);
}

/* A label value as the format wants it: \ " and newline escaped. Longer
 * values are cut (labels here are short: routes, regions). */
static const char *esc(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s != '\0' && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return out;
}

/* us as seconds, exactly, without trailing zeros: 2500 -> "0.0025". */
static const char *us_seconds(char out[32], uint64_t us)
{
    int n = snprintf(out, 32, "%llu.%06llu",
                     (unsigned long long)(us / 1000000),
                     (unsigned long long)(us % 1000000));
    while (n > 0 && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.')
        out[--n] = '\0';
    return out;
}

/* The samples of one histogram series. labels: "" or `a="x",b="y"`.
 * bucket holds per-bucket counts (not cumulative), nb bounds plus one for
 * the values above them. us: le and sum are microseconds, written as
 * seconds; else they are plain counts. */
static void hist_series(struct mbuf *b, const char *name, const char *labels,
                        const uint64_t *le, unsigned nb,
                        const uint64_t *bucket, uint64_t sum, bool us)
{
    const char *sep = labels[0] ? "," : "";
    char v[32];
    uint64_t cum = 0;
    for (unsigned i = 0; i < nb; i++) {
        cum += bucket[i];
        if (us)
            us_seconds(v, le[i]);
        else
            snprintf(v, sizeof v, "%llu", (unsigned long long)le[i]);
        put(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep, v,
            (unsigned long long)cum);
    }
    cum += bucket[nb];
    put(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
        (unsigned long long)cum);
    if (us)
        us_seconds(v, sum);
    else
        snprintf(v, sizeof v, "%llu", (unsigned long long)sum);
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    put(b, "%s_sum%s%s%s %s\n", name, open, labels, close, v);
    /* The count is the +Inf bucket: the same number by construction. */
    put(b, "%s_count%s%s%s %llu\n", name, open, labels, close,
        (unsigned long long)cum);
}

/* ------------------------------------------------------------------ raft */

static void raft_metrics(struct mbuf *b, struct kz_node *n)
{
    struct kz_cons_status st;
    kz_cons_get_status(n->cons, &st);
    gauge_u64(b, "kizuna_raft_term", "Current raft term.", st.term);
    gauge_u64(b, "kizuna_raft_leader", "1 if this node is the leader.",
              st.state == KZ_CONS_LEADER);
    family(b, "kizuna_raft_state", "gauge",
           "1 for this node's raft role, 0 for the others.");
    static const struct {
        int state;
        const char *name;
    } states[] = {{KZ_CONS_LEADER, "leader"},
                  {KZ_CONS_FOLLOWER, "follower"},
                  {KZ_CONS_CANDIDATE, "candidate"},
                  {KZ_CONS_UNAVAILABLE, "unavailable"}};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        put(b, "kizuna_raft_state{state=\"%s\"} %d\n", states[i].name,
            st.state == states[i].state);
    gauge_u64(b, "kizuna_raft_leader_id",
              "Raft id of the leader this node knows (0: none).",
              st.leader_id);
    char v[32];
    family(b, "kizuna_raft_seconds_since_leader", "gauge",
           "Time since this node last knew a leader (0 on the leader): how "
           "stale its stale reads may be.");
    put(b, "kizuna_raft_seconds_since_leader %s\n",
        us_seconds(v, st.ms_since_leader * 1000));
    gauge_u64(b, "kizuna_raft_commit_index",
              "Commit index known to this node.", st.commit_index);
    gauge_u64(b, "kizuna_raft_applied_index", "Last applied index.",
              st.applied_index);
    gauge_u64(b, "kizuna_raft_last_index",
              "Index of the last entry in this node's raft log.",
              st.last_index);

    /* Only the leader tracks its followers; elsewhere the families are
     * left out rather than reported empty. */
    struct kz_cons_peer_progress pp[KZ_CONS_MAX_PEERS];
    unsigned np = kz_cons_peer_progress(n->cons, pp, KZ_CONS_MAX_PEERS);
    if (np > 0) {
        family(b, "kizuna_raft_peer_match_index", "gauge",
               "On the leader: highest log index known to be stored on each "
               "server.");
        for (unsigned i = 0; i < np; i++)
            put(b, "kizuna_raft_peer_match_index{peer=\"%llu\"} %llu\n",
                (unsigned long long)pp[i].id,
                (unsigned long long)pp[i].match_index);
        family(b, "kizuna_raft_peer_lag_entries", "gauge",
               "On the leader: entries of its log each server does not hold "
               "yet.");
        for (unsigned i = 0; i < np; i++)
            put(b, "kizuna_raft_peer_lag_entries{peer=\"%llu\"} %llu\n",
                (unsigned long long)pp[i].id,
                (unsigned long long)(st.last_index > pp[i].match_index
                                         ? st.last_index - pp[i].match_index
                                         : 0));
    }

    struct kz_cons_counters c;
    kz_cons_get_counters(n->cons, &c);
    counter_u64(b, "kizuna_proposals_total", "Proposals handed to raft here.",
                c.proposals);
    counter_u64(b, "kizuna_forwarded_total",
                "Proposals forwarded to the leader.", c.forwarded);
    counter_u64(b, "kizuna_barriers_total", "Read barriers issued.",
                c.barriers);
    counter_u64(b, "kizuna_barrier_reads_total",
                "Reads served by those barriers.", c.barrier_reads);
    counter_u64(b, "kizuna_request_timeouts_total",
                "Requests that hit their deadline.", c.timeouts);
    family(b, "kizuna_proposal_duration_seconds", "histogram",
           "Proposals made on this node that committed, from the proposal "
           "to its result applied (forwarding to the leader included).");
    hist_series(b, "kizuna_proposal_duration_seconds", "",
                c.proposal_us.le, KZ_CONS_HIST_BOUNDS, c.proposal_us.bucket,
                c.proposal_us.sum, true);
    family(b, "kizuna_barrier_batch_reads", "histogram",
           "Linearizable reads served by each read barrier of this node.");
    hist_series(b, "kizuna_barrier_batch_reads", "", c.barrier_batch.le,
                KZ_CONS_HIST_BOUNDS, c.barrier_batch.bucket,
                c.barrier_batch.sum, false);
    counter_u64(b, "kizuna_peer_channels_accepted_total",
                "Node-to-node channels accepted (TLS and identity checked).",
                c.channels_accepted);
    counter_u64(b, "kizuna_peer_channels_refused_total",
                "Node-to-node channels refused: another CA, a wrong node id, "
                "plaintext, an old TLS version.",
                c.channels_refused);
    counter_u64(b, "kizuna_peer_tls_handshakes_failed_total",
                "Node-to-node TLS handshakes that failed or timed out.",
                c.handshakes_failed);
    counter_u64(b, "kizuna_peer_channel_pauses_total",
                "Times a node-to-node channel stopped reading because the "
                "other side had more than 4 MB queued (flow control).",
                c.channel_pauses);
    counter_u64(b, "kizuna_raft_leader_connection_lost_total",
                "Times this follower saw its leader close its connection "
                "and shortened its election timeout to elect another.",
                c.leader_channel_lost);
    counter_u64(b, "kizuna_raft_commit_nudges_total",
                "Empty entries this leader appended so that a follower "
                "waiting to apply a read or its proposal learns the commit "
                "without waiting for a heartbeat.",
                c.commit_nudges);
    counter_u64(b, "kizuna_raft_merged_entries_total",
                "Entries this leader made of several read-audit proposals "
                "arriving together, from any node.",
                c.merged_entries);
    counter_u64(b, "kizuna_raft_merged_proposals_total",
                "Read-audit proposals that went into such merged entries.",
                c.merged_proposals);
    counter_u64(b, "kizuna_raft_merged_write_entries_total",
                "Entries this leader made of several registrations arriving "
                "together, from any node, each answered with its own result.",
                c.each_entries);
    counter_u64(b, "kizuna_raft_merged_writes_total",
                "Registrations that went into such merged entries.",
                c.each_proposals);
    gauge_u64(b, "kizuna_raft_merging_writes",
              "1 when this node leads and merges registrations arriving "
              "together (every voter and standby said it can apply them).",
              c.each_ready ? 1 : 0);
    counter_u64(b, "kizuna_raft_unmerged_writes_total",
                "Registrations this leader proposed alone because some "
                "voter or standby has not said it can apply merged ones.",
                c.each_alone);
    gauge_u64(b, "kizuna_peer_channel_queued_bytes",
              "Bytes waiting in node-to-node channels' write queues.",
              c.channel_queued_bytes);
}

/* ------------------------------------------------------------------ HTTP */

static void http_metrics(struct mbuf *b, struct kz_node *n,
                         const struct kz_node_metrics_http *h)
{
    const struct kz_node_stats *s = &n->stats;
    family(b, "kizuna_http_responses_total", "counter",
           "HTTP responses by status class.");
    for (int i = 1; i <= 5; i++)
        put(b, "kizuna_http_responses_total{class=\"%dxx\"} %llu\n", i,
            (unsigned long long)s->http_by_class[i]);
    family(b, "kizuna_http_requests_total", "counter",
           "API calls by kind: writes proposed, linearizable and stale "
           "reads served.");
    put(b, "kizuna_http_requests_total{kind=\"write\"} %llu\n"
           "kizuna_http_requests_total{kind=\"read_linearizable\"} %llu\n"
           "kizuna_http_requests_total{kind=\"read_stale\"} %llu\n",
        (unsigned long long)s->writes,
        (unsigned long long)s->reads_linearizable,
        (unsigned long long)s->reads_stale);

    family(b, "kizuna_http_request_duration_seconds", "histogram",
           "API requests from their arrival to the response, by route and "
           "status class (routes and classes seen since start).");
    for (int r = 0; r < KZ_NODE_ROUTE_SLOTS; r++) {
        const char *method = "other", *pattern = "unmatched";
        if (r != 0) {
            method = NULL;
            for (size_t i = 0; i < h->n_routes; i++)
                if ((int)h->routes[i].id == r) {
                    method = h->routes[i].method;
                    pattern = h->routes[i].pattern;
                    break;
                }
        }
        for (int k = 0; k < 5; k++) {
            const struct kz_node_latency *l = &s->http_latency[r][k];
            if (l->count == 0 || method == NULL)
                continue;
            char m[32], p[160], labels[256];
            snprintf(labels, sizeof labels,
                     "method=\"%s\",route=\"%s\",class=\"%dxx\"",
                     esc(m, sizeof m, method), esc(p, sizeof p, pattern),
                     k + 1);
            hist_series(b, "kizuna_http_request_duration_seconds", labels,
                        latency_le_us, KZ_NODE_LATENCY_BOUNDS, l->bucket,
                        l->sum_us, true);
        }
    }

    family(b, "kizuna_event_loop_busy_seconds", "histogram",
           "Each turn of the node's event loop: the time it spent working "
           "rather than waiting for events. Every request the node holds "
           "waits for a long turn (a raft log segment closed, a snapshot).");
    hist_series(b, "kizuna_event_loop_busy_seconds", "", latency_le_us,
                KZ_NODE_LATENCY_BOUNDS, s->loop_busy.bucket,
                s->loop_busy.sum_us, true);

    gauge_u64(b, "kizuna_http_connections", "Open API connections.",
              s->conns_open);
    counter_u64(b, "kizuna_http_connections_refused_total",
                "Connections closed at accept because max_connections were "
                "open.",
                s->conns_refused);
    counter_u64(b, "kizuna_http_tls_handshakes_failed_total",
                "API TLS handshakes this node ended with a fatal alert (no, "
                "bad or revoked client certificate; no common protocol).",
                s->api_handshakes_failed);
    family(b, "kizuna_tls_reloads_total", "counter",
           "Certificate and CRL reloads.");
    put(b, "kizuna_tls_reloads_total{result=\"ok\"} %llu\n"
           "kizuna_tls_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)s->tls_reloads,
        (unsigned long long)s->tls_reload_fails);
    gauge_u64(b, "kizuna_audit_queue_records",
              "Audit records of stale reads queued on this node, not yet "
              "handed to the cluster.",
              kz_node_audit_queue_length(n->audit_q));
    gauge_u64(b, "kizuna_audit_read_entries_in_flight",
              "Raft entries carrying audit records of reads, not yet "
              "committed.",
              h->audit_entries_in_flight);
    /* The audit log grows by design (every read and write of personal
     * data, kept audit_retention_days): its share of the disk, so that
     * growth can be told apart from anything else's. */
    struct kz_node_audit_head head;
    if (kz_node_audit_load_head(n->stor, &head) == KZ_OK)
        gauge_u64(b, "kizuna_audit_log_seq",
                  "Audit records ever appended (the chain's head).",
                  head.seq);
    char lo[40], hi[40];
    int ll = snprintf(lo, sizeof lo, "%s/a/", n->cfg.municipality);
    int hl = snprintf(hi, sizeof hi, "%s/a0", n->cfg.municipality);
    if (ll > 0 && hl > 0 && (size_t)ll < sizeof lo && (size_t)hl < sizeof hi)
        gauge_u64(b, "kizuna_audit_log_bytes",
                  "RocksDB's estimate of the audit records' size in SST "
                  "files (compressed).",
                  kz_stor_range_size(n->stor, KZ_STOR_CF_RECORDS, lo,
                                     (size_t)ll, hi, (size_t)hl));
}

/* --------------------------------------------------------------- storage */

static void rocks_gauge(struct mbuf *b, struct kz_node *n, const char *name,
                        const char *help, int cf, const char *property)
{
    uint64_t v;
    if (kz_stor_property_u64(n->stor, cf, property, &v) == KZ_OK)
        gauge_u64(b, name, help, v);
}

/* Bytes of the regular files directly in dir; false when it cannot be
 * read. */
static bool dir_bytes(const char *dir, uint64_t *out)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
    }
    closedir(d);
    *out = total;
    return true;
}

static void storage_metrics(struct mbuf *b, struct kz_node *n)
{
    gauge_u64(b, "kizuna_rocksdb_sst_files_bytes",
              "Size of the state store's SST files.",
              kz_stor_disk_size(n->stor));
    rocks_gauge(b, n, "kizuna_rocksdb_blob_files_bytes",
                "Size of the state store's blob files (photos).",
                KZ_STOR_CF_ALL, "rocksdb.total-blob-file-size");
    rocks_gauge(b, n, "kizuna_rocksdb_live_data_estimate_bytes",
                "RocksDB's estimate of the live data in the state store.",
                KZ_STOR_CF_ALL, "rocksdb.estimate-live-data-size");
    rocks_gauge(b, n, "kizuna_rocksdb_memtable_bytes",
                "Memory held by the state store's memtables.",
                KZ_STOR_CF_ALL, "rocksdb.cur-size-all-mem-tables");
    rocks_gauge(b, n, "kizuna_rocksdb_pending_compaction_bytes",
                "Bytes RocksDB estimates compaction must rewrite; writes "
                "slow down and then stop when it grows too large.",
                KZ_STOR_CF_ALL, "rocksdb.estimate-pending-compaction-bytes");
    rocks_gauge(b, n, "kizuna_rocksdb_write_stopped",
                "1 while RocksDB stops writes (a stall): applies wait.",
                KZ_STOR_CF_META, "rocksdb.is-write-stopped");
    rocks_gauge(b, n, "kizuna_rocksdb_delayed_write_rate_bytes_per_second",
                "Rate RocksDB holds writes to while it delays them (0: no "
                "delay).",
                KZ_STOR_CF_META, "rocksdb.actual-delayed-write-rate");
    rocks_gauge(b, n, "kizuna_rocksdb_running_compactions",
                "Compactions running now.", KZ_STOR_CF_META,
                "rocksdb.num-running-compactions");
    /* What applying the log writes, by family: a registration's cost is
     * mostly its memtable inserts, nearly all of them name terms. */
    family(b, "kizuna_store_writes_total", "counter",
           "Puts and deletes applied to each column family of the state "
           "store since the node started (the applied index not counted).");
    for (int cf = 0; cf < KZ_STOR_CF__COUNT; cf++)
        put(b, "kizuna_store_writes_total{family=\"%s\"} %llu\n",
            kz_stor_cf_name(cf),
            (unsigned long long)kz_stor_writes(n->stor, cf));
    rocks_gauge(b, n, "kizuna_rocksdb_running_flushes",
                "Memtable flushes running now.", KZ_STOR_CF_META,
                "rocksdb.num-running-flushes");

    char path[KZ_NODE_PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/raft", n->cfg.data_dir);
    uint64_t v;
    if (dir_bytes(path, &v))
        gauge_u64(b, "kizuna_raft_log_bytes",
                  "Size of the raft directory (log segments, snapshot "
                  "descriptors).",
                  v);
    struct statvfs vfs;
    if (statvfs(n->cfg.data_dir, &vfs) == 0)
        gauge_u64(b, "kizuna_data_dir_free_bytes",
                  "Free space in data_dir for this process (below "
                  "min_free_mb the node stops).",
                  (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize);
}

/* --------------------------------------------------------------- process */

static void process_metrics(struct mbuf *b)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size, resident;
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &size, &resident) == 2)
            gauge_u64(b, "process_resident_memory_bytes",
                      "Resident memory of the kizunad process.",
                      resident * (unsigned long long)sysconf(_SC_PAGESIZE));
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        uint64_t fds = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        gauge_u64(b, "process_open_fds",
                  "Open file descriptors of the kizunad process.",
                  fds > 0 ? fds - 1 : 0); /* not the one listing them */
    }
}

/* ----------------------------------------------------------- peer probes */

/* What the probes (node.c) saw of each other member of the configuration
 * (nodes removed or not yet added are left out). */
enum probe_series { P_REACHABLE, P_LAST_CONTACT, P_ROUND_TRIP, P_FAILURES };

static void probe_family(struct mbuf *b, struct kz_node *n,
                         enum probe_series what, const char *name,
                         const char *type, const char *help)
{
    /* Reachable: answered within the last 3 probes (3 s). */
    static const uint64_t fresh_ms = 3000;
    uint64_t now = uv_now(n->loop);
    family(b, name, type, help);
    for (unsigned i = 0; i < n->n_book && i < KZ_CONS_MAX_PEERS; i++) {
        const struct kz_node_probe *pr = &n->probes[i];
        const struct kz_node_member *m = &n->book[i];
        if (m->id == n->cfg.id || kz_cons_member_role(n->cons, m->id) == NULL)
            continue;
        bool mine = pr->id == m->id; /* probed at least once */
        bool answered = mine && pr->last_ok_ms != 0;
        char v[32], region[2 * KZ_CONS_REGION_MAX + 8];
        switch (what) {
        case P_REACHABLE:
            snprintf(v, sizeof v, "%d",
                     answered && now - pr->last_ok_ms <= fresh_ms);
            break;
        case P_LAST_CONTACT:
            if (!answered)
                continue; /* never answered: left out */
            us_seconds(v, (now - pr->last_ok_ms) * 1000);
            break;
        case P_ROUND_TRIP:
            if (!answered)
                continue;
            us_seconds(v, pr->rtt_us);
            break;
        case P_FAILURES:
            snprintf(v, sizeof v, "%llu",
                     (unsigned long long)(mine ? pr->failures : 0));
            break;
        }
        put(b, "%s{peer=\"%llu\",region=\"%s\"} %s\n", name,
            (unsigned long long)m->id, esc(region, sizeof region, m->region),
            v);
    }
}

static void probe_metrics(struct mbuf *b, struct kz_node *n)
{
    probe_family(b, n, P_REACHABLE, "kizuna_peer_reachable", "gauge",
                 "1 when the peer answered a status probe over the peer "
                 "link in the last 3 s (probes every second), else 0.");
    probe_family(b, n, P_LAST_CONTACT, "kizuna_peer_last_contact_seconds",
                 "gauge",
                 "Seconds since the peer last answered a status probe "
                 "(peers that never answered since this node started are "
                 "left out).");
    probe_family(b, n, P_ROUND_TRIP, "kizuna_peer_round_trip_seconds",
                 "gauge",
                 "Round trip of the last answered status probe to the peer "
                 "(TLS peer link, its loop included).");
    probe_family(b, n, P_FAILURES, "kizuna_peer_probe_failures_total",
                 "counter",
                 "Status probes to the peer that got no answer (refused, "
                 "timed out, no channel).");
}

/* ------------------------------------------------------------------ all */

int kz_node_metrics_render(struct kz_node *n,
                           const struct kz_node_metrics_http *h, char **out,
                           size_t *len)
{
    struct mbuf b = {0};
    char region[2 * KZ_CONS_REGION_MAX + 8];
    family(&b, "kizuna_node_info", "gauge",
           "Always 1: this node's raft id and region as labels.");
    put(&b, "kizuna_node_info{node=\"%llu\",region=\"%s\"} 1\n",
        (unsigned long long)n->cfg.id,
        esc(region, sizeof region, n->cfg.region));
    raft_metrics(&b, n);
    probe_metrics(&b, n);
    http_metrics(&b, n, h);
    storage_metrics(&b, n);
    process_metrics(&b);
    /* The identity checks' lines (api_identity.c) write into a fixed
     * buffer: offer it room, more when that was not enough. */
    for (size_t room = 4096; room <= 65536 && reserve(&b, room); room *= 4) {
        int w = kz_api_identity_metrics(n, b.p + b.len, room);
        if (w >= 0) {
            b.len += (size_t)w;
            break;
        }
    }
    if (b.oom || !reserve(&b, 0)) {
        free(b.p);
        *out = NULL;
        return KZ_ENOMEM;
    }
    b.p[b.len] = '\0';
    *out = b.p;
    *len = b.len;
    return KZ_OK;
}
