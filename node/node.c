/*
 * node.c — wiring of one node (node.h): the store, the raft group whose state
 * machine is register.c, and the HTTP API.
 *
 * Restore decision: raft hands the state machine its last snapshot on every
 * start. The store already holds a state at least that new unless it was
 * lost, so the image is only loaded when its index is above the store's
 * applied index; the log entries in between are then skipped by index on
 * replay. A follower that fell behind the leader's log gets the leader's
 * newer image and loads it.
 */
#include "node.h"
#include "addrbook.h"
#include "audit_queue.h"
#include "metrics.h"
#include "kizuna.pb-c.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "kz_log.h"
#include "register.h"

/* Exit status of a node stopped by a storage failure (EX_TEMPFAIL): start
 * it again once the disk is fixed. */
#define KZ_NODE_EXIT_STORAGE 75

/* A command that cannot be applied (the store refuses writes: a full or
 * failing disk; or a key this node cannot open) stops the node at once,
 * crash-only, rather than retry: RocksDB keeps a write error sticky and
 * aborts on later writes, and a replica that skips a command diverges.
 * Nothing is lost: the raft log holds every committed entry and the store
 * replays from its applied index at the next start. */
static void stop_on_storage_failure(struct kz_node *n, const char *what,
                                    int rv)
{
    kz_log(KZ_LOG_FATAL, "storage failure, stopping",
           "what=%s error=%s detail=%s exit=%d hint=%s", what,
           kz_strerror(rv), rv == KZ_EIO ? kz_stor_errmsg(n->stor) : NULL,
           KZ_NODE_EXIT_STORAGE,
           "start the node again once the disk has room or is replaced: "
           "it replays the raft log from its applied index");
    _exit(KZ_NODE_EXIT_STORAGE);
}

/* Free bytes for an unprivileged writer in the data dir; UINT64_MAX when
 * it cannot be told. */
static uint64_t free_bytes(const struct kz_node *n)
{
    struct statvfs sv;
    if (statvfs(n->cfg.data_dir, &sv) != 0)
        return UINT64_MAX;
    return (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* True when data_dir has less than min_free_mb free (never when it is 0);
 * the free bytes go to *avail. */
static bool below_min_free(const struct kz_node *n,
                           const struct kz_node_config *cfg, uint64_t *avail)
{
    *avail = free_bytes(n);
    return cfg->min_free_mb > 0 && *avail < ((uint64_t)cfg->min_free_mb << 20);
}

/* Below min_free_mb of free space the node stops before the disk is full:
 * RocksDB 7.8 (Debian's build keeps its assertions) aborts in a background
 * flush when a blob or table file cannot be written, and a half-written
 * state is worse than a stopped node. Checked every 200 ms and after each
 * MiB applied. */
static void check_free_space(struct kz_node *n)
{
    n->applied_bytes_unchecked = 0;
    uint64_t avail;
    if (!below_min_free(n, &n->cfg, &avail))
        return;
    kz_log(KZ_LOG_FATAL, "disk nearly full, stopping",
           "free_mb=%llu min_free_mb=%u data_dir=%s exit=%d hint=%s",
           (unsigned long long)(avail >> 20), n->cfg.min_free_mb,
           n->cfg.data_dir, KZ_NODE_EXIT_STORAGE,
           "start the node again once there is room: it replays the raft "
           "log from its applied index");
    _exit(KZ_NODE_EXIT_STORAGE);
}

static void refresh_keys(struct kz_node *n)
{
    int rv = kz_node_keys_refresh(&n->keys, n->stor);
    if (rv != KZ_OK && rv != KZ_ENOTFOUND)
        kz_log(KZ_LOG_ERROR, "keyring refresh failed", "error=%s",
               n->keys.errmsg);
}

static int fsm_apply(void *data, uint64_t index, const char *cmd, size_t len,
                     bool want_result, char **result, size_t *result_len)
{
    struct kz_node *n = data;
    bool keys_changed = false;
    n->applied_bytes_unchecked += len;
    if (n->applied_bytes_unchecked >= (1u << 20))
        check_free_space(n);
    int rv = kz_node_apply(n->stor, &n->keys, index, cmd, len, want_result,
                           result, result_len, &keys_changed);
    if (rv != KZ_OK) {
        char what[64];
        snprintf(what, sizeof what, "apply of index %llu",
                 (unsigned long long)index);
        stop_on_storage_failure(n, what, rv);
    }
    if (keys_changed) {
        refresh_keys(n);
        kz_node_book_refresh(n);
    }
    return rv;
}

static int fsm_merge(void *data, const char *const *cmds, const size_t *lens,
                     size_t n, char **out, size_t *out_len)
{
    struct kz_node *n_ = data;
    return kz_node_merge_audits(&n_->keys, cmds, lens, n, out, out_len);
}

static int fsm_merge_each(void *data, const char *const *cmds,
                          const size_t *lens, size_t n, char **out,
                          size_t *out_len)
{
    struct kz_node *n_ = data;
    return kz_node_merge_creates(&n_->keys, cmds, lens, n, out, out_len);
}

static uint64_t fsm_applied(void *data)
{
    struct kz_node *n = data;
    return kz_stor_applied_index(n->stor);
}

static uint64_t fsm_state_bytes(void *data)
{
    struct kz_node *n = data;
    return kz_stor_disk_size(n->stor);
}

/* File snapshots (consensus.h): a RocksDB checkpoint per raft snapshot. */
static int fsm_checkpoint(void *data, const char *dir)
{
    struct kz_node *n = data;
    int rv = kz_stor_checkpoint(n->stor, dir);
    if (rv != KZ_OK)
        kz_log(KZ_LOG_ERROR, "checkpoint failed", "dir=%s error=%s", dir,
               kz_stor_errmsg(n->stor));
    return rv;
}

static int fsm_install(void *data, const char *dir)
{
    struct kz_node *n = data;
    int rv = kz_stor_install(n->stor, dir);
    if (rv != KZ_OK)
        stop_on_storage_failure(n, "installing the snapshot", rv);
    refresh_keys(n); /* the state may carry keys this node lacked */
    kz_node_book_refresh(n); /* and nodes added since */
    return KZ_OK;
}

static void fsm_fatal(void *data, const char *what, int code,
                      const char *detail)
{
    (void)data;
    kz_log(KZ_LOG_FATAL, "consensus failure, stopping",
           "what=%s error=%s detail=%s exit=%d", what, kz_strerror(code),
           detail && detail[0] ? detail : NULL, KZ_NODE_EXIT_STORAGE);
    _exit(KZ_NODE_EXIT_STORAGE);
}

static int mkdir_p(const char *path)
{
    char tmp[KZ_NODE_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int kz_node_init(struct kz_node *n, uv_loop_t *loop,
                 const struct kz_node_config *cfg)
{
    memset(n, 0, sizeof *n);
    n->loop = loop;
    n->cfg = *cfg;
    char path[KZ_NODE_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
    if (mkdir_p(path) != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "%s: %s", path, strerror(errno));
        return KZ_EIO;
    }
    uint64_t avail;
    if (below_min_free(n, cfg, &avail)) {
        snprintf(n->errmsg, sizeof n->errmsg,
                 "only %llu MB free in %s, below min_free_mb=%u: not "
                 "starting (free some space, or lower min_free_mb)",
                 (unsigned long long)(avail >> 20), cfg->data_dir,
                 cfg->min_free_mb);
        return KZ_EIO;
    }
    int rv = kz_node_keys_open(&n->keys, cfg->master_key_file);
    if (rv != KZ_OK) {
        snprintf(n->errmsg, sizeof n->errmsg, "%s", n->keys.errmsg);
        return rv;
    }
    snprintf(path, sizeof path, "%s/state", cfg->data_dir);
    /* This node's place in the member list staggers its memtable flushes
     * against its peers' (struct kz_stor_open_opts). */
    struct kz_stor_open_opts so = {0, cfg->n_members};
    for (unsigned i = 0; i < cfg->n_members; i++)
        if (cfg->members[i].id == cfg->id)
            so.replica = i;
    rv = kz_stor_open_with(path, &so, &n->stor, n->errmsg, sizeof n->errmsg);
    if (rv != KZ_OK)
        return rv;
    kz_log_node(cfg->id, KZ_LOG_INFO, "state store open", "terms_buffer_mb=%zu",
                kz_stor_terms_buffer(n->stor) >> 20);
    refresh_keys(n);
    snprintf(path, sizeof path, "%s/audit-queue", cfg->data_dir);
    rv = kz_node_audit_queue_open(&n->audit_q, path, n->errmsg,
                                  sizeof n->errmsg);
    if (rv != KZ_OK)
        goto err_after_stor;
    rv = kz_node_audit_queue_trim(
        n->audit_q,
        kz_node_audit_queue_handed(n->stor, kz_node_audit_queue_id(n->audit_q)));
    if (rv != KZ_OK)
        goto err_after_stor;

    struct kz_cons_config cc;
    memset(&cc, 0, sizeof cc);
    cc.id = cfg->id;
    snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
    cc.dir = path;
    cc.bind_addr = cfg->raft_listen;
    cc.tls_cert = cfg->tls_cert;
    cc.tls_key = cfg->tls_key;
    cc.tls_ca = cfg->tls_ca;
    cc.tls_crl = cfg->tls_crl;
    cc.peer_plaintext = !cfg->peer_tls;
    for (unsigned i = 0; i < cfg->n_members; i++) {
        cc.peers[i].id = cfg->members[i].id;
        snprintf(cc.peers[i].region, sizeof cc.peers[i].region, "%s",
                 cfg->members[i].region);
        snprintf(cc.peers[i].raft_addr, sizeof cc.peers[i].raft_addr, "%s",
                 cfg->members[i].raft_addr);
        snprintf(cc.peers[i].dial_addr, sizeof cc.peers[i].dial_addr, "%s",
                 cfg->members[i].via_addr);
        cc.peers[i].join = cfg->members[i].join;
    }
    cc.n_peers = cfg->n_members;
    cc.election_timeout_ms = cfg->election_timeout_ms;
    cc.heartbeat_timeout_ms = cfg->heartbeat_timeout_ms;
    cc.snapshot_threshold = cfg->snapshot_threshold;
    cc.snapshot_trailing = cfg->snapshot_trailing;
    cc.snapshot_fetch_timeout_ms = cfg->snapshot_fetch_timeout_s * 1000u;
    cc.request_timeout_ms = cfg->request_timeout_ms;
    char snapdir[KZ_NODE_PATH_MAX + 16];
    snprintf(snapdir, sizeof snapdir, "%s/snapshots", cfg->data_dir);
    if (mkdir_p(snapdir) != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "%s: %s", snapdir,
                 strerror(errno));
        rv = KZ_EIO;
        goto err_after_stor;
    }
    cc.snapshot_dir = snapdir;
    struct kz_cons_fsm fsm = {
        .data = n,
        .apply = fsm_apply,
        .merge = fsm_merge,
        .merge_each = fsm_merge_each,
        .applied_index = fsm_applied,
        .state_bytes = fsm_state_bytes,
        .checkpoint = fsm_checkpoint,
        .install = fsm_install,
        .fatal = fsm_fatal,
    };
    rv = kz_cons_init(&n->cons, loop, &cc, &fsm, n->errmsg, sizeof n->errmsg);
    if (rv != KZ_OK)
        goto err_after_stor;
    kz_node_book_init(n);
    kz_node_book_refresh(n); /* nodes added through the API, from the state */
    rv = kz_node_http_init(n);
    if (rv != KZ_OK)
        goto err_after_http;
    return KZ_OK;

err_after_http:
    kz_node_http_free(n);
    kz_node_idcheck_free(n);
    /* raft was initialised but not started: closing it needs the loop. */
    return rv;
err_after_stor:
    kz_node_audit_queue_close(n->audit_q);
    n->audit_q = NULL;
    kz_stor_close(n->stor);
    n->stor = NULL;
    return rv;
}

static void on_keys_init(kz_cons_req *req, int status)
{
    struct kz_node *n = req->data;
    n->keys_init_in_flight = false;
    free(req->result);
    if (status == 0)
        kz_log(KZ_LOG_INFO, "data and index keys created", NULL);
}

static void on_audit_handed(kz_cons_req *req, int status)
{
    struct kz_node *n = req->data;
    n->audit_q_in_flight = false;
    free(req->result);
    if (status != 0)
        return; /* kept: the next tick hands it over again */
    uint64_t id = kz_node_audit_queue_id(n->audit_q);
    if (kz_node_audit_queue_trim(n->audit_q,
                                 kz_node_audit_queue_handed(n->stor, id)) !=
        KZ_OK)
        kz_log(KZ_LOG_WARN, "cannot trim the audit queue file",
               "queue=%llu", (unsigned long long)id);
}

/* Hands the records of stale reads (audit_queue.h) to the cluster, a batch
 * at a time, whenever a leader is known. What was appended is trimmed from
 * the file by what the replicated state says, so a lost answer costs a
 * retry, never a duplicate or a gap. */
static void hand_over_audit_queue(struct kz_node *n,
                                  const struct kz_cons_status *st)
{
    if (n->audit_q_in_flight || st->leader_id == 0 || !n->keys.ready ||
        kz_node_audit_queue_length(n->audit_q) == 0)
        return;
    uint64_t id = kz_node_audit_queue_id(n->audit_q);
    uint64_t handed = kz_node_audit_queue_handed(n->stor, id);
    if (kz_node_audit_queue_trim(n->audit_q, handed) != KZ_OK)
        return;
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    uint8_t *cmd;
    size_t len, count;
    if (kz_node_audit_queue_command(n->audit_q, handed, 256,
                                    n->cfg.municipality,
                                    tv.tv_sec * 1000 + tv.tv_usec / 1000,
                                    &cmd, &len, &count) != KZ_OK ||
        cmd == NULL)
        return;
    char *sealed;
    size_t slen;
    int rv = kz_node_keys_seal_command(&n->keys, cmd, len, &sealed, &slen);
    free(cmd);
    if (rv != KZ_OK)
        return;
    n->audit_q_req.data = n;
    if (kz_cons_propose(n->cons, &n->audit_q_req, sealed, slen,
                        on_audit_handed) == 0)
        n->audit_q_in_flight = true;
    free(sealed);
}

static void on_audit_pruned(kz_cons_req *req, int status)
{
    struct kz_node *n = req->data;
    n->audit_prune_in_flight = false;
    if (status == 0 && req->result != NULL) {
        /* The result is "200" and the JSON of register.c's prune. */
        json_t *j = json_loads(req->result + 3, 0, NULL);
        kz_log(KZ_LOG_INFO, "audit records pruned",
               "pruned=%lld checkpoint_seq=%lld retention_days=%u",
               (long long)json_integer_value(json_object_get(j, "pruned")),
               (long long)json_integer_value(
                   json_object_get(j, "checkpoint_seq")),
               n->cfg.audit_retention_days);
        json_decref(j);
    }
    free(req->result);
}

/* The time of the oldest audit record still stored; false when none. */
static bool oldest_audit_ms(struct kz_node *n, int64_t *at)
{
    char prefix[32];
    int pl = snprintf(prefix, sizeof prefix, "%s/a/", n->cfg.municipality);
    kz_stor_iter *it = kz_stor_iter_new(n->stor, KZ_STOR_CF_RECORDS, prefix,
                                        (size_t)pl, NULL, 0);
    const char *k, *v;
    size_t kl, vl;
    bool found = false;
    if (it != NULL && kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        Kizuna__AuditRecord *rec =
            kizuna__audit_record__unpack(NULL, vl, (const uint8_t *)v);
        if (rec != NULL) {
            *at = rec->at_ms;
            found = true;
            kizuna__audit_record__free_unpacked(rec, NULL);
        }
    }
    kz_stor_iter_free(it);
    return found;
}

/* Retention (audit_retention_days): the leader proposes a prune when the
 * oldest record is past the period, at most once a minute. Apply keeps a
 * checkpoint so the rest of the chain still verifies, and records the
 * prune in the chain. */
static void audit_retention(struct kz_node *n, const struct kz_cons_status *st)
{
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    int64_t now = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    if (n->cfg.audit_retention_days == 0 || st->state != KZ_CONS_LEADER ||
        n->audit_prune_in_flight || !n->keys.ready ||
        now - n->audit_prune_last_ms < 60000)
        return;
    n->audit_prune_last_ms = now;
    int64_t cutoff = now - (int64_t)n->cfg.audit_retention_days * 86400000;
    int64_t oldest;
    if (!oldest_audit_ms(n, &oldest) || oldest >= cutoff)
        return;
    Kizuna__AuditPrune ap = KIZUNA__AUDIT_PRUNE__INIT;
    ap.has_before_ms = ap.has_max = 1;
    ap.before_ms = cutoff;
    ap.max = 10000;
    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    ctx.org = n->cfg.municipality;
    ctx.role = "system";
    ctx.purpose = "retention";
    ctx.has_node_id = 1;
    ctx.node_id = n->cfg.id;
    ctx.region = n->cfg.region;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.has_time_ms = 1;
    cmd.time_ms = now;
    cmd.municipality = n->cfg.municipality;
    cmd.audit = &ctx;
    cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_PRUNE;
    cmd.audit_prune = &ap;
    size_t len = kizuna__command__get_packed_size(&cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return;
    kizuna__command__pack(&cmd, buf);
    char *sealed;
    size_t slen;
    int rv = kz_node_keys_seal_command(&n->keys, buf, len, &sealed, &slen);
    free(buf);
    if (rv != KZ_OK)
        return;
    n->audit_prune_req.data = n;
    if (kz_cons_propose(n->cons, &n->audit_prune_req, sealed, slen,
                        on_audit_pruned) == 0)
        n->audit_prune_in_flight = true;
    free(sealed);
}

/* ---- preferred leader region ----------------------------------------------
 * A leader outside preferred_leader_region that has led for the hold-down,
 * and has not moved leadership within it, asks a voter of that region for
 * its status; when it answers and has applied nearly all this leader
 * committed (within 1000 entries: raft's transfer then waits for the rest),
 * leadership is transferred to it. A failover therefore moves leadership
 * away at once (raft), and back once the preferred region is healthy and
 * caught up, never more often than once per hold-down (no flapping). */

static void on_moved(kz_cons_req *r, int status)
{
    struct kz_node *n = r->data;
    free(r->result);
    r->result = NULL;
    n->move_in_flight = false;
    kz_log(status == KZ_OK ? KZ_LOG_INFO : KZ_LOG_WARN,
           "leadership to the preferred region", "region=%s result=%s",
           n->cfg.preferred_leader_region,
           status == KZ_OK ? "done" : kz_strerror(status));
}

static void on_candidate_status(kz_cons_req *r, int status)
{
    struct kz_node *n = r->data;
    struct kz_cons_status me;
    kz_cons_get_status(n->cons, &me);
    if (status != KZ_OK || me.state != KZ_CONS_LEADER ||
        r->peer.applied_index + 1000 < me.commit_index) {
        n->move_in_flight = false; /* not ready: try after the hold-down */
        return;
    }
    n->move_req.data = n;
    if (kz_cons_change(n->cons, &n->move_req, KZ_CONS_TRANSFER, r->peer.id,
                       KZ_CONS_VOTER, on_moved) != KZ_OK)
        n->move_in_flight = false;
}

static void prefer_region(struct kz_node *n, const struct kz_cons_status *st)
{
    const char *want = n->cfg.preferred_leader_region;
    uint64_t now = uv_now(n->loop);
    if (want[0] == '\0' || st->state != KZ_CONS_LEADER) {
        n->leading_since_ms = 0;
        return;
    }
    if (n->leading_since_ms == 0)
        n->leading_since_ms = now;
    uint64_t hold = (uint64_t)n->cfg.leader_hold_down_s * 1000;
    if (strcmp(n->cfg.region, want) == 0 || n->move_in_flight ||
        now - n->leading_since_ms < hold ||
        (n->last_move_ms != 0 && now - n->last_move_ms < hold))
        return;
    struct kz_cons_member m[KZ_CONS_MAX_PEERS];
    unsigned cnt = kz_cons_members(n->cons, m, KZ_CONS_MAX_PEERS);
    for (unsigned i = 0; i < cnt; i++) {
        const struct kz_node_member *a = kz_node_book_find(n, m[i].id);
        if (m[i].role != KZ_CONS_VOTER || a == NULL ||
            strcmp(a->region, want) != 0)
            continue;
        n->last_move_ms = now;
        n->move_query.data = n;
        if (kz_cons_query_peer(n->cons, &n->move_query, m[i].id,
                               on_candidate_status) == KZ_OK) {
            n->move_in_flight = true;
            return;
        }
    }
}

/* The first leader of a new cluster creates its keys: a random data key and
 * index key, wrapped by the current master key, in one raft command (apply
 * refuses a second one, so two leaders racing cannot both win). Every tick
 * also hands queued audit records over. */
static void on_keys_timer(uv_timer_t *t)
{
    struct kz_node *n = t->data;
    check_free_space(n);
    struct kz_cons_status cs;
    kz_cons_get_status(n->cons, &cs);
    prefer_region(n, &cs);
    hand_over_audit_queue(n, &cs);
    audit_retention(n, &cs);
    if (n->keys_init_in_flight || kz_node_keys_in_state(n->stor))
        return;
    struct kz_cons_status st;
    kz_cons_get_status(n->cons, &st);
    if (st.state != KZ_CONS_LEADER)
        return;
    char *cmd;
    size_t len;
    if (kz_node_keys_make_init(&n->keys, n->cfg.municipality, &cmd, &len) !=
        KZ_OK)
        return;
    n->keys_req.data = n;
    if (kz_cons_propose(n->cons, &n->keys_req, cmd, len, on_keys_init) == 0)
        n->keys_init_in_flight = true;
    free(cmd);
}

/* ---- peer probes -------------------------------------------------------
 * Raft only talks leader to follower: whether two followers can reach each
 * other, or a follower the leader, shows nowhere else. Every second each
 * other member of the configuration is asked its status over the peer link
 * (authenticated, the path forwarding takes); the answer's time and round
 * trip feed /metrics (kizuna_peer_*). One probe per peer in flight; a probe
 * that fails or times out (request_timeout_ms) counts as a failure. */
static void on_probe(kz_cons_req *req, int status)
{
    struct kz_node_probe *pr = req->data;
    pr->in_flight = false;
    free(req->result);
    req->result = NULL;
    if (status == KZ_OK) {
        pr->last_ok_ms = uv_now(pr->n->loop);
        if (pr->last_ok_ms == 0)
            pr->last_ok_ms = 1;
        pr->rtt_us = (uv_hrtime() - pr->sent_ns) / 1000;
    } else if (status != KZ_ESHUTDOWN && status != KZ_ECANCELED) {
        pr->failures++;
    }
}

static void on_probe_timer(uv_timer_t *t)
{
    struct kz_node *n = t->data;
    for (unsigned i = 0; i < n->n_book && i < KZ_CONS_MAX_PEERS; i++) {
        struct kz_node_probe *pr = &n->probes[i];
        if (n->book[i].id == n->cfg.id || pr->in_flight ||
            kz_cons_member_role(n->cons, n->book[i].id) == NULL)
            continue; /* a node removed, or not added yet: not probed */
        if (pr->id != n->book[i].id) { /* a slot's first probe */
            memset(pr, 0, sizeof *pr);
            pr->id = n->book[i].id;
        }
        pr->n = n;
        pr->req.data = pr;
        pr->sent_ns = uv_hrtime();
        if (kz_cons_query_peer(n->cons, &pr->req, pr->id, on_probe) == KZ_OK)
            pr->in_flight = true;
        else
            pr->failures++;
    }
}

/* Runs once a turn, before the loop waits for events: the turn since the
 * last one took this long, of which uv_metrics_idle_time says how much was
 * waiting. */
static void on_loop_turn(uv_prepare_t *h)
{
    struct kz_node *n = h->data;
    uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(n->loop);
    if (n->loop_turn_ns != 0) {
        uint64_t wall = now - n->loop_turn_ns, waited = idle - n->loop_idle_ns;
        kz_node_metrics_loop_observe(n, wall > waited ? (wall - waited) / 1000
                                                      : 0);
    }
    n->loop_turn_ns = now;
    n->loop_idle_ns = idle;
}

int kz_node_start(struct kz_node *n)
{
    int rv = kz_cons_start(n->cons, n->errmsg, sizeof n->errmsg);
    if (rv != KZ_OK)
        return rv;
    uv_timer_init(n->loop, &n->keys_timer);
    n->keys_timer.data = n;
    uv_timer_start(&n->keys_timer, on_keys_timer, 100, 200);
    uv_timer_init(n->loop, &n->probe_timer);
    n->probe_timer.data = n;
    uv_timer_start(&n->probe_timer, on_probe_timer, 500, 1000);
    if (uv_loop_configure(n->loop, UV_METRICS_IDLE_TIME) == 0) {
        uv_prepare_init(n->loop, &n->loop_probe);
        n->loop_probe.data = n;
        uv_prepare_start(&n->loop_probe, on_loop_turn);
        uv_unref((uv_handle_t *)&n->loop_probe);
    }
    return kz_node_http_start(n);
}

/* The node has stopped once consensus is closed and no stale reads'
 * records are being written on a worker thread (which uses the audit
 * queue kz_node_free closes): the last such write calls this again. */
void kz_node_maybe_stopped(struct kz_node *n)
{
    if (!n->cons_closed || kz_node_http_busy(n) || n->stopped_cb == NULL)
        return;
    void (*cb)(struct kz_node *) = n->stopped_cb;
    n->stopped_cb = NULL;
    cb(n);
}

static void on_cons_closed(void *data)
{
    struct kz_node *n = data;
    n->cons_closed = true;
    kz_node_maybe_stopped(n);
}

void kz_node_stop(struct kz_node *n, void (*cb)(struct kz_node *))
{
    n->stopped_cb = cb;
    uv_close((uv_handle_t *)&n->keys_timer, NULL);
    uv_close((uv_handle_t *)&n->probe_timer, NULL);
    if (n->loop_probe.loop != NULL)
        uv_close((uv_handle_t *)&n->loop_probe, NULL);
    kz_node_http_stop(n);
    kz_cons_close(n->cons, on_cons_closed, n);
}

void kz_node_free(struct kz_node *n)
{
    if (n->cons != NULL)
        kz_cons_free(n->cons);
    kz_node_http_free(n);
    kz_node_idcheck_free(n);
    kz_stor_close(n->stor);
    kz_node_audit_queue_close(n->audit_q);
    n->audit_q = NULL;
    kz_node_keys_wipe(&n->keys);
    n->cons = NULL;
    n->stor = NULL;
}
