/*
 * consensus.c — raft 0.22 on libuv, proposals, batched read barriers and the
 * peer link (see consensus.h for the contract).
 *
 * Proposals. The leader wraps a command in an envelope
 *   u32 magic "KZC1" | u32 payload length | u64 origin id | u64 boot nonce |
 *   u64 proposal seq | payload | zero padding to a multiple of 8
 * (big-endian; raft wants 8-byte multiples) and hands it to raft_apply. On
 * apply, the origin triple tells whether this very process proposed the entry
 * and still waits for it (the seq is in the `props` table): only then is the
 * state machine asked for a result, which is stored in the prop, not passed
 * through raft, so results of entries nobody waits for (replay, a proposal
 * whose leader stepped down before the commit) are never built or leaked.
 *
 * Merged proposals (kz_cons_propose_merged, kz_cons_propose_batched; see
 * merge_flush): the leader turns those arriving in one loop turn, its own
 * and forwarded ones, into one command (fsm.merge, fsm.merge_each) and one
 * entry, and answers each when it applies, the batched ones each with the
 * part of the entry's result that is theirs.
 *
 * Reads. Every read that arrives while no barrier is in flight starts one;
 * reads arriving meanwhile wait for the next. When the barrier is applied the
 * batch is served at raft_last_applied(). A follower asks the leader over the
 * peer link (READ_INDEX), then waits until it has applied that index.
 *
 * Peer link. Frames: u32 length (of what follows) | u8 type | u64 reqid |
 * payload. Outbound connections are made on demand, one per peer; inbound
 * ones serve PROPOSE, READ_INDEX and STATUS. A frame over 64 MiB or of an
 * unknown type closes the connection.
 *
 * Transport. raft's own TCP transport is not used: its handshake is
 * plaintext and unauthenticated. Both raft and the peer link run over the
 * mutually authenticated TLS channels of peer_tls.h, on the raft address;
 * the struct raft_uv_transport below hands raft the plaintext end of a
 * channel. No plaintext port exists.
 */
#include "consensus.h"
#include "ckpt.h"
#include "kz_endian.h"
#include "kz_fs.h"
#include "kz_log.h"
#include "peer_tls.h"

#include <raft.h>
#include <raft/uv.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENVELOPE_MAGIC 0x4b5a4331u /* "KZC1" */
#define ENVELOPE_HEADER 32
#define FRAME_MAX KZ_CONS__FRAME_MAX
/* The top bit of a forwarded proposal's reqid: the follower will wait to
 * apply it (kz_cons_propose_read), so the leader nudges the commit to it
 * (nudge_commit). A peer echoes reqids whole, so one that ignores the bit
 * answers as before. */
#define REQID_WAITS (1ull << 63)
/* The next bit: the proposal may be merged with others on the leader
 * (kz_cons_propose_merged). A leader that ignores it proposes it alone. */
#define REQID_MERGE (1ull << 62)
/* The next: the follower needs only the entries before the index it is
 * answered with applied (wait_index), so the leader need not nudge the
 * commit when the entry that index names told it so (FLAG_PRIOR_SENT).
 * A follower without it waits for the index itself and is nudged. */
#define REQID_BEFORE (1ull << 61)
/* The next: the proposal may be merged with others proposed so, each
 * keeping its own result (kz_cons_propose_batched, fsm.merge_each). A
 * leader that ignores it proposes it alone, which answers it the same. */
#define REQID_EACH (1ull << 60)
/* What a node's state machine applies beyond what every version does, in
 * the u32 a follower's STATUS query carries (a leader that ignores it
 * answers as before). FEATURE_EACH: what fsm.merge_each makes. The
 * leader merges batched proposals only while every voter and standby has
 * said it can apply the result (each_allowed): an older node would apply
 * a merged entry as a command it does not know, and change nothing. */
#define FEATURE_EACH 1u
#define FRAME_HEADER KZ_CONS__FRAME_HEADER

/* How long the leader's word that this follower is caught up holds (see
 * snapshot_policy). */
#define CAUGHT_UP_VALID_MS 1500

/* raft's log segments: 15 MB instead of raft 0.22's 8. Closing a segment
 * destroys its kernel AIO context on the loop thread (UvWriterClose), and
 * io_destroy waits for an RCU grace period: about 30 ms here, on every node
 * at once since their logs are the same (kizuna_event_loop_busy_seconds).
 * Larger segments close less often, but raft reports its free log space
 * in KB in an unsigned short (uvUpdateCapacity): two prepared segments and
 * up to two being written must stay under 64 MB, or the count wraps, falls
 * below raft's 4 MB capacity threshold and every proposal is refused
 * (32 MB segments did that). */
#define RAFT_SEGMENT_BYTES (15u << 20)

/* raft 0.22 reserves each log segment with posix_fallocate. On ext4 that
 * leaves "unwritten" extents, and every O_DSYNC append into one converts
 * its extent and writes the inode as well (ext4_fsync_nojournal in the
 * profile): a synced 4 KB direct write took 0.19-0.20 ms there against
 * 0.13 ms over written zeros (dd oflag=direct,dsync, 2000 writes each).
 * raft has no switch for it, so every binary that links this library is
 * linked with --wrap=posix_fallocate (consensus/CMakeLists.txt): raft's
 * call, from its thread pool while it prepares a segment ahead of use,
 * comes here, reserves the space as before (so a full disk still fails
 * it with ENOSPC), then writes the zeros and syncs them, through a
 * second descriptor without raft's O_DSYNC. A segment's blocks are then
 * written once more by raft's appends; the zeros cost a segment's size of
 * disk writes off the loop (15 MB). If the zeros cannot be written the
 * reservation stands, as raft asked: appends work, only slower, and a
 * failing disk shows in them. kizuna-bench read: 11,788 against 10,484
 * reads/s (three alternated runs each, 12% more); writes, CPU-bound,
 * unchanged (docs/ARCHITECTURE.md, "Raft log"). */
int __real_posix_fallocate(int fd, off_t offset, off_t len);
int __wrap_posix_fallocate(int fd, off_t offset, off_t len);
int __wrap_posix_fallocate(int fd, off_t offset, off_t len)
{
    static const char zeros[1 << 16];
    int rv = __real_posix_fallocate(fd, offset, len);
    if (rv != 0 || len <= 0)
        return rv;
    char path[48];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int wfd = open(path, O_WRONLY | O_CLOEXEC);
    if (wfd < 0)
        return 0;
    off_t at = offset, end = offset + len;
    while (at < end) {
        size_t n = (size_t)(end - at) < sizeof zeros ? (size_t)(end - at)
                                                     : sizeof zeros;
        ssize_t w = pwrite(wfd, zeros, n, at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        at += w;
    }
    if (at == end)
        (void)fdatasync(wfd);
    close(wfd);
    return 0;
}

/* raft closes a log segment's writer on the loop thread, and destroying
 * its kernel AIO context there (io_destroy) waited for an RCU grace
 * period: 30-45 ms in which the node's loop stood still, every 15 MB of
 * log, on every node at about the same moment (perf trace; docs/
 * ARCHITECTURE.md, "Raft log"). raft 0.22 has no switch for it either:
 * io_destroy is its own syscall wrapper (syscall.o), so the same
 * --wrap (consensus/CMakeLists.txt) sends raft's calls here, and the
 * context is destroyed on a thread of its own. raft calls it only once
 * the writer's requests are done, and never uses the context again, so
 * the later destroy changes nothing but when the kernel frees it. If no
 * thread can be made, it is destroyed here, as before. */
int __real_io_destroy(aio_context_t ctx);
int __wrap_io_destroy(aio_context_t ctx);

static _Atomic uint64_t aio_destroys_handed, aio_destroys_done;

static void *destroy_aio(void *arg)
{
    (void)__real_io_destroy((aio_context_t)(uintptr_t)arg);
    atomic_fetch_add(&aio_destroys_done, 1);
    return NULL;
}

int __wrap_io_destroy(aio_context_t ctx)
{
    pthread_attr_t a;
    pthread_t t;
    if (pthread_attr_init(&a) == 0) {
        int rv = pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (rv == 0) {
            atomic_fetch_add(&aio_destroys_handed, 1);
            rv = pthread_create(&t, &a, destroy_aio, (void *)(uintptr_t)ctx);
            if (rv != 0)
                atomic_fetch_sub(&aio_destroys_handed, 1);
        }
        pthread_attr_destroy(&a);
        if (rv == 0)
            return 0;
    }
    return __real_io_destroy(ctx);
}

void kz_cons_aio_destroys(uint64_t *handed, uint64_t *done)
{
    *done = atomic_load(&aio_destroys_done);
    *handed = atomic_load(&aio_destroys_handed);
}

enum req_type { REQ_PROPOSE = 1, REQ_READ, REQ_STATUS, REQ_CHANGE, REQ_SNAPSHOT };
enum req_flag {
    FLAG_NO_FORWARD = 1, /* came from a peer: never forward again */
    FLAG_WAIT_APPLY = 2, /* follower read waiting for local apply */
    FLAG_WAIT_LOCAL = 4, /* forwarded proposal: done when applied here */
    FLAG_MERGE = 8,      /* the leader may merge it (fsm.merge) */
    /* Leader, a merged proposal or a read index answered: the entry before
     * the index answered was committed when the entry at that index was
     * appended, so every AppendEntries carrying it told the follower so
     * (no commit nudge, see wait_index). */
    FLAG_PRIOR_SENT = 16,
    FLAG_EACH = 32       /* the leader may merge it keeping its result */
};
enum frame_type {
    F_PROPOSE = 1,
    F_RESULT = 2,
    F_READ_INDEX = 3,
    F_INDEX = 4,
    F_STATUS = 5,
    F_STATUS_REPLY = 6,
    F_CHANGE = 7, /* membership: u8 op | u8 role | u64 id; answered by F_RESULT */
    /* 8..11: file snapshots (ckpt.h) */
    F_CKPT_LIST = KZ_F_CKPT_LIST,
    F_CKPT_GET = KZ_F_CKPT_GET
};

/* A membership change can wait for a new node to catch up before raft
 * promotes it: its deadline is at least this long. */
#define CHANGE_TIMEOUT_MS 60000

struct conn;
struct raft_connect;

/* A membership change raft knows about (like struct prop: lives until
 * raft's callback). An add of a voter or standby is raft_add (as a spare)
 * then raft_assign, which catches the node up before it counts. */
struct change {
    struct raft_change rc;
    struct raft_transfer tr; /* KZ_CONS_TRANSFER */
    kz_cons *c;
    kz_cons_req *user; /* NULL once detached */
    uint64_t id;
    int role;          /* the raft role wanted */
    int next;          /* what follows the change raft is making now */
    kz_cons_req q;     /* catch-up: the new node's status */
    bool querying;
    uint64_t next_query_ms;
};

/* A new voter goes spare -> standby (raft replicates to it) -> caught up
 * (its applied index, asked over the peer link) -> voter. raft 0.22's own
 * promotion of a spare must finish each catch-up round within an election
 * timeout, which a snapshot of a large state does not: the change failed
 * and left the node a spare that nothing replicates to. */
enum change_next { NEXT_NONE, NEXT_STANDBY, NEXT_CATCH_UP };

/* A proposal raft knows about. Lives until raft's callback, even when the
 * user req it served is gone (timed out, closed). */
struct prop {
    struct raft_apply apply;
    kz_cons *c;
    uint64_t seq;
    kz_cons_req *user; /* NULL once detached */
    char *result;
    size_t result_len;
    struct prop *hnext; /* props hash chain */
    /* An entry of merged proposals: the reqs it serves (NULL: detached);
     * mq: the merge queue whose entries in flight it counts in (NULL:
     * none); each: its result is one for each member (fsm.merge_each). */
    kz_cons_req **members;
    size_t n_members;
    struct merge_queue *mq;
    bool each;
    uint64_t commit_at; /* raft's commit index when proposed */
};

#define PROPS_BUCKETS 1024

/* Proposals the leader may merge (see merge_flush): those waiting, each
 * with its command parked in result, and the merged entries raft has not
 * applied yet. One queue for read records (fsm.merge), one for commands
 * that each keep a result (fsm.merge_each): a read's record never waits
 * for a registration's apply, and the other way round. */
struct merge_queue {
    kz_cons_req waiting;
    unsigned in_flight, max_in_flight;
    bool each;
};
enum { MQ_READS, MQ_EACH, MQ_COUNT };

struct kz_cons {
    uv_loop_t *loop;
    struct kz_cons_config cfg;
    struct kz_cons_fsm fsm;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm rfsm;
    uint64_t boot_nonce;
    uint64_t next_seq;
    uint64_t next_reqid;
    struct prop *props[PROPS_BUCKETS];

    /* Every user req in flight, for deadlines and close. */
    kz_cons_req inflight;
    /* Reads waiting for the next barrier, and the barrier's batch. */
    kz_cons_req reads_waiting;
    kz_cons_req reads_batch;
    bool barrier_in_flight;
    uint64_t barrier_commit_at; /* raft's commit index when it was asked */
    struct raft_barrier barrier;
    /* The commit nudge (see nudge_commit): wanted since a follower was told
     * an index it waits to apply, while raft's last index was nudge_last. */
    uv_idle_t nudge_idle;
    uint64_t nudge_last;
    /* Merged proposals (merge_flush), and the idle handle that flushes
     * before the loop would block. */
    struct merge_queue mq[MQ_COUNT];
    uv_idle_t merge_idle;
    /* What each peer (by slot) said its state machine applies, in its
     * last STATUS query (FEATURE_*); told: it has queried since this
     * process started. */
    uint32_t peer_features[KZ_CONS_MAX_PEERS];
    bool peer_told[KZ_CONS_MAX_PEERS];

    struct kz_cons__tls *tls;
    raft_uv_accept_cb raft_accept;
    struct raft_connect *raft_connects; /* raft connects waiting for TLS */
    uv_timer_t timer;
    uv_check_t check;
    struct conn *conns; /* all open connections */
    struct conn *out[KZ_CONS_MAX_PEERS]; /* outbound, by peer slot */

    uint64_t last_leader_seen;
    /* A lost leader (on_peer_gone): its id while this node's election
     * timeout is shortened, and when to restore it at the latest. */
    uint64_t lost_leader;
    uint64_t lost_leader_until;
    bool started, closing;
    unsigned snapshot_threshold_set; /* what raft has now (snapshot_policy) */
    uint64_t snap_entries, snap_bytes; /* applied since the last image */
    uint64_t state_bytes, state_bytes_at; /* fsm.state_bytes, at snap_entries */
    bool state_bytes_known;
    struct change *promoting; /* waiting for a standby to catch up */
    /* A follower snapshots only while the leader says it is caught up
     * (snapshot_policy): asked every second over the peer link. */
    kz_cons_req caught_up_q;
    bool caught_up_querying;
    /* kz_cons_snapshot_now: the user's req (NULL: none), and the read
     * barrier that makes an entry to apply (the snapshot comes after it). */
    kz_cons_req *snap_req;
    kz_cons_req snap_barrier;
    bool snap_barrier_busy;
    uint64_t caught_up_at_ms, caught_up_next_ms;
    int handles_open;
    void (*close_cb)(void *);
    void *close_data;
    struct kz_cons_counters counters;
    char snapdir[4096]; /* file snapshots: the checkpoints (ckpt.h) */
    struct kz_cons__tls_config tls_cfg; /* for fetching them */
    char tls_files[4][1024];            /* tls_cfg's cert, key, ca, crl */
    char errmsg[256];
};

struct conn {
    uv_stream_t *s;  /* plaintext end of a TLS channel; NULL until open */
    void *pending;   /* the channel being opened (outbound) */
    kz_cons *c;
    int slot; /* outbound peer slot, -1 for inbound */
    uint64_t peer_id; /* inbound: the raft id the channel proved */
    bool open, closed;
    int refs; /* 1 for the handle + 1 per inbound request being served */
    char *rbuf;
    size_t rlen, rcap;
    kz_cons_req waiting; /* outbound requests waiting for a reply */
    struct conn *next;
};

/* ---------------------------------------------------------------- helpers */

/* Fresh time for deadlines: the loop's cached time lags behind any long
 * blocking step of the iteration (an apply, a snapshot). */
static uint64_t now_ms(kz_cons *c)
{
    uv_update_time(c->loop);
    return uv_now(c->loop);
}

static void list_init(kz_cons_req *head)
{
    head->prev = head->next = head;
}

static bool list_empty(const kz_cons_req *head)
{
    return head->next == head;
}

static void list_push(kz_cons_req *head, kz_cons_req *r)
{
    r->prev = head->prev;
    r->next = head;
    head->prev->next = r;
    head->prev = r;
}

static void list_remove(kz_cons_req *r)
{
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->prev = r->next = r;
}

/* Every user req sits on exactly one list while in flight (inflight, a
 * read batch or a connection's waiting list); finish takes it off and fires
 * the callback once. */
static void finish(kz_cons_req *req, int status)
{
    list_remove(req);
    if (status != 0) {
        free(req->result); /* a partial result or a parked frame payload */
        req->result = NULL;
        req->result_len = 0;
    }
    req->type = 0;
    req->cb(req, status);
}

/* A req that gives up before raft's callback leaves its prop or change
 * behind, detached: the callback then only frees it. */
static void detach(kz_cons_req *r)
{
    if (r->priv == NULL)
        return;
    if (r->type == REQ_PROPOSE) {
        struct prop *p = r->priv;
        if (p->user == r)
            p->user = NULL;
        for (size_t i = 0; i < p->n_members; i++)
            if (p->members[i] == r)
                p->members[i] = NULL;
    }
    else if (r->type == REQ_CHANGE)
        ((struct change *)r->priv)->user = NULL;
    else if (r->type == REQ_SNAPSHOT)
        ((kz_cons *)r->priv)->snap_req = NULL;
    r->priv = NULL;
}

static void fail_all(kz_cons_req *head, int status)
{
    while (!list_empty(head)) {
        kz_cons_req *r = head->next;
        detach(r);
        finish(r, status);
    }
}

/* Metrics (kz_cons_counters): fixed buckets, counted on the loop thread. */
static void hist_init(struct kz_cons_hist *h, const uint64_t *le)
{
    memset(h, 0, sizeof *h);
    memcpy(h->le, le, sizeof h->le);
}

static void hist_observe(struct kz_cons_hist *h, uint64_t v)
{
    unsigned i = 0;
    while (i < KZ_CONS_HIST_BOUNDS && v > h->le[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

/* Called just before a proposal's successful finish: only proposals made
 * through propose() carry started_ns (one served for a peer does not). */
static void observe_proposal(kz_cons *c, const kz_cons_req *req, int status)
{
    if (status == 0 && req->type == REQ_PROPOSE && req->started_ns != 0)
        hist_observe(&c->counters.proposal_us,
                     (uv_hrtime() - req->started_ns) / 1000);
}

static int raft_to_kz(int rv)
{
    switch (rv) {
    case 0:
        return KZ_OK;
    case RAFT_NOMEM:
        return KZ_ENOMEM;
    case RAFT_NOTLEADER:
        return KZ_ENOTLEADER;
    case RAFT_LEADERSHIPLOST:
        return KZ_ENOQUORUM;
    case RAFT_SHUTDOWN:
        return KZ_ESHUTDOWN;
    case RAFT_TOOBIG:
        return KZ_ETOOBIG;
    case RAFT_CANTCHANGE:
        return KZ_EBUSY;
    case RAFT_NOTFOUND:
        return KZ_ENOTFOUND;
    case RAFT_BADID:
    case RAFT_BADROLE:
    case RAFT_DUPLICATEID:
        return KZ_EINVAL;
    case RAFT_NOCONNECTION:
        return KZ_ENET;
    default:
        return KZ_EIO;
    }
}

/* Appends a peer this node has no 'node' line for. Slots are never
 * removed, so a slot number stays valid for the node's life. */
static int learn_peer(kz_cons *c, uint64_t id, const char *region,
                      const char *addr)
{
    if (id == 0 || addr == NULL || addr[0] == '\0' ||
        strlen(addr) >= KZ_CONS_ADDR_MAX || c->cfg.n_peers >= KZ_CONS_MAX_PEERS)
        return -1;
    struct kz_cons_peer *p = &c->cfg.peers[c->cfg.n_peers];
    memset(p, 0, sizeof *p);
    p->id = id;
    p->learned = true;
    snprintf(p->raft_addr, sizeof p->raft_addr, "%s", addr);
    snprintf(p->region, sizeof p->region, "%s", region ? region : "");
    kz_log_node(c->cfg.id, KZ_LOG_INFO, "peer address learned",
                "peer=%llu address=%s region=%s", (unsigned long long)id,
                p->raft_addr, p->region[0] ? p->region : NULL);
    return (int)c->cfg.n_peers++;
}

static const struct raft_server *member(const kz_cons *c, uint64_t id);

/* The slot of peer id. A peer without a 'node' line here is learnt from
 * raft's configuration (replicated: it names every member's raft
 * address) or, for the leader, from the address its messages carry; a
 * learnt slot follows a change of the configuration's address (a node
 * removed and added again elsewhere under the same id). */
static int peer_slot(kz_cons *c, uint64_t id)
{
    const struct raft_server *s = member(c, id);
    for (unsigned i = 0; i < c->cfg.n_peers; i++) {
        struct kz_cons_peer *p = &c->cfg.peers[i];
        if (p->id != id)
            continue;
        if (p->learned && s != NULL && s->address != NULL &&
            strcmp(s->address, p->raft_addr) != 0 &&
            strlen(s->address) < sizeof p->raft_addr)
            snprintf(p->raft_addr, sizeof p->raft_addr, "%s", s->address);
        return (int)i;
    }
    if (s != NULL)
        return learn_peer(c, id, NULL, s->address);
    raft_id leader;
    const char *addr;
    raft_leader(&c->raft, &leader, &addr);
    if (leader == id)
        return learn_peer(c, id, NULL, addr);
    return -1;
}

int kz_cons_set_peer(kz_cons *c, uint64_t id, const char *region,
                     const char *raft_addr)
{
    if (id == 0 || raft_addr == NULL || raft_addr[0] == '\0' ||
        strlen(raft_addr) >= KZ_CONS_ADDR_MAX ||
        (region != NULL && strlen(region) >= KZ_CONS_REGION_MAX))
        return KZ_EINVAL;
    for (unsigned i = 0; i < c->cfg.n_peers; i++) {
        struct kz_cons_peer *p = &c->cfg.peers[i];
        if (p->id != id)
            continue;
        if (!p->learned)
            return KZ_OK; /* this node's own 'node' line wins */
        snprintf(p->raft_addr, sizeof p->raft_addr, "%s", raft_addr);
        if (region != NULL)
            snprintf(p->region, sizeof p->region, "%s", region);
        return KZ_OK;
    }
    return learn_peer(c, id, region, raft_addr) < 0 ? KZ_ETOOBIG : KZ_OK;
}

/* The peer slot of the leader this node knows, -1 when none (or itself):
 * where a follower forwards. */
static int leader_slot(kz_cons *c)
{
    raft_id leader;
    const char *addr;
    raft_leader(&c->raft, &leader, &addr);
    return leader != 0 && leader != c->cfg.id ? peer_slot(c, leader) : -1;
}

static void prop_insert(kz_cons *c, struct prop *p)
{
    struct prop **b = &c->props[p->seq % PROPS_BUCKETS];
    p->hnext = *b;
    *b = p;
}

static struct prop *prop_find(kz_cons *c, uint64_t seq)
{
    for (struct prop *p = c->props[seq % PROPS_BUCKETS]; p; p = p->hnext)
        if (p->seq == seq)
            return p;
    return NULL;
}

static void prop_remove(kz_cons *c, struct prop *p)
{
    struct prop **b = &c->props[p->seq % PROPS_BUCKETS];
    while (*b != NULL && *b != p)
        b = &(*b)->hnext;
    if (*b == p)
        *b = p->hnext;
}

static void snapshot_policy(kz_cons *c);

/* -------------------------------------------------------------------- fsm */

static int fsm_apply(struct raft_fsm *rfsm, const struct raft_buffer *buf,
                     void **result)
{
    kz_cons *c = rfsm->data;
    snapshot_policy(c); /* before raft may decide to snapshot after this */
    /* raft 0.22 does not pass the index: it sets last_applied after. */
    uint64_t index = raft_last_applied(&c->raft) + 1;
    const unsigned char *p = buf->base;
    *result = NULL;
    if (buf->len < ENVELOPE_HEADER || kz_get_be32(p) != ENVELOPE_MAGIC)
        return RAFT_MALFORMED;
    uint32_t len = kz_get_be32(p + 4);
    if ((size_t)len > buf->len - ENVELOPE_HEADER)
        return RAFT_MALFORMED;
    if (index <= c->fsm.applied_index(c->fsm.data))
        return 0; /* already in the state machine: replay after restart */
    uint64_t origin = kz_get_be64(p + 8), boot = kz_get_be64(p + 16);
    uint64_t seq = kz_get_be64(p + 24);
    struct prop *prop = NULL;
    if (origin == c->cfg.id && boot == c->boot_nonce) {
        prop = prop_find(c, seq);
        /* Someone waits for a result: the proposer, or the members of a
         * merged entry that each keep theirs. */
        if (prop != NULL && prop->user == NULL &&
            !(prop->each && prop->members != NULL))
            prop = NULL;
    }
    char *res = NULL;
    size_t rlen = 0;
    int rv = c->fsm.apply(c->fsm.data, index, (const char *)p + ENVELOPE_HEADER,
                          len, prop != NULL, prop ? &res : NULL,
                          prop ? &rlen : NULL);
    if (rv != 0) {
        kz_log_node(c->cfg.id, KZ_LOG_FATAL, "apply failed",
                    "index=%llu error=%s", (unsigned long long)index,
                    kz_strerror(rv));
        free(res);
        return RAFT_IOERR;
    }
    if (prop != NULL) {
        prop->result = res;
        prop->result_len = rlen;
    }
    c->snap_entries++;
    c->snap_bytes += buf->len;
    return 0;
}

/* Complete checkpoints kept besides those a peer is fetching (ckpt.c pins
 * them): the newest is all a restart or a peer's catch-up needs, and each
 * older one holds files compaction has replaced (a 20-minute soak: two
 * checkpoints held 1.7x the live table files). */
#define CKPT_KEEP 1

static bool file_snapshots(const kz_cons *c)
{
    return c->fsm.checkpoint != NULL && c->fsm.install != NULL &&
           c->snapdir[0] != '\0';
}

static void fatal(kz_cons *c, const char *what, int code, const char *detail)
{
    kz_log_node(c->cfg.id, KZ_LOG_FATAL, "consensus failure",
                "what=%s error=%s detail=%s", what, kz_strerror(code),
                detail && detail[0] ? detail : NULL);
    if (c->fsm.fatal != NULL)
        c->fsm.fatal(c->fsm.data, what, code, detail);
    abort();
}

/* File snapshots: a checkpoint in snapdir named by raft's index (written
 * under tmp-<index>, renamed when complete), and a descriptor for raft. */
static int checkpoint_snapshot(kz_cons *c, char **data, size_t *len)
{
    uint64_t index = raft_last_applied(&c->raft);
    uint64_t fsm_index = c->fsm.applied_index(c->fsm.data);
    char path[4200], tmp[4200];
    kz_cons__ckpt_path(c->snapdir, index, path, sizeof path);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(tmp, sizeof tmp, "%s/tmp-%020llu", c->snapdir,
                 (unsigned long long)index);
        kz_fs_rmtree(tmp);
        int rv = c->fsm.checkpoint(c->fsm.data, tmp);
        if (rv != 0) {
            kz_log_node(c->cfg.id, KZ_LOG_ERROR, "snapshot failed",
                        "index=%llu error=%s", (unsigned long long)index,
                        kz_strerror(rv));
            kz_fs_rmtree(tmp);
            return rv;
        }
        if (kz_fs_fsync_dir(tmp) != KZ_OK || rename(tmp, path) != 0 ||
            kz_fs_fsync_dir(c->snapdir) != KZ_OK) {
            kz_fs_rmtree(tmp);
            return KZ_EIO;
        }
    }
    kz_cons__ckpt_prune(c->snapdir, CKPT_KEEP, 0);
    *data = raft_malloc(KZ_CKPT_DESC_LEN);
    if (*data == NULL)
        return KZ_ENOMEM;
    kz_cons__ckpt_desc_build(index, fsm_index, (unsigned char *)*data);
    *len = KZ_CKPT_DESC_LEN;
    return KZ_OK;
}

static int fsm_snapshot(struct raft_fsm *rfsm, struct raft_buffer *bufs[],
                        unsigned *n)
{
    kz_cons *c = rfsm->data;
    char *data;
    size_t len;
    c->snap_entries = c->snap_bytes = c->state_bytes_at = 0;
    c->state_bytes_known = false;
    kz_cons_req *asked = c->snap_req;
    int rv = file_snapshots(c)
                 ? checkpoint_snapshot(c, &data, &len)
                 : c->fsm.snapshot(c->fsm.data, raft_malloc, &data, &len);
    if (asked != NULL && c->snap_req == asked) {
        c->snap_req = NULL;
        asked->priv = NULL;
        asked->index = raft_last_applied(&c->raft);
        kz_log_node(c->cfg.id, rv == 0 ? KZ_LOG_INFO : KZ_LOG_ERROR,
                    "snapshot on request", "index=%llu result=%s",
                    (unsigned long long)asked->index,
                    rv == 0 ? "ok" : kz_strerror(rv));
        finish(asked, rv == 0 ? KZ_OK : KZ_EIO);
    }
    snapshot_policy(c); /* the threshold it set may have been 1 */
    if (rv != 0)
        return rv == KZ_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL) {
        raft_free(data);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = data;
    (*bufs)[0].len = len;
    *n = 1;
    return 0;
}

/* Peers to fetch a checkpoint from: the leader first, then the others in
 * configuration order. */
static unsigned fetch_sources(kz_cons *c, struct kz_cons__ckpt_source *out)
{
    unsigned n = 0;
    /* A node that joined without 'node' lines for the others knows them
     * from the configuration the snapshot came with. */
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id != c->cfg.id)
            (void)peer_slot(c, conf->servers[i].id);
    int first = leader_slot(c);
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < c->cfg.n_peers; i++) {
            const struct kz_cons_peer *p = &c->cfg.peers[i];
            if (p->id == c->cfg.id || (pass == 0) != ((int)i == first))
                continue;
            out[n].id = p->id;
            snprintf(out[n].addr, sizeof out[n].addr, "%s",
                     p->dial_addr[0] ? p->dial_addr : p->raft_addr);
            n++;
        }
    return n;
}

/* Installs the state a descriptor names: from a local checkpoint at or
 * past it, or one fetched from a peer. raft 0.22 cannot go on after a
 * failed restore (its log already starts past the snapshot), so every
 * failure here is fatal. */
static int checkpoint_restore(kz_cons *c, const struct raft_buffer *buf)
{
    uint64_t index, fsm_index;
    if (kz_cons__ckpt_desc_parse(buf->base, buf->len, &index, &fsm_index) !=
        KZ_OK)
        fatal(c, "restoring a snapshot", KZ_ECORRUPT,
              "not a checkpoint descriptor");
    if (fsm_index <= c->fsm.applied_index(c->fsm.data))
        return 0;
    uint64_t have;
    char msg[512] = "";
    if (kz_cons__ckpt_newest(c->snapdir, index, &have) != KZ_OK) {
        struct kz_cons__ckpt_source src[KZ_CONS_MAX_PEERS];
        struct kz_cons__ckpt_fetch_args a = {
            .tls = &c->tls_cfg,
            .root = c->snapdir,
            .min_index = index,
            .sources = src,
            .n_sources = fetch_sources(c, src),
            .deadline_ms = c->cfg.snapshot_fetch_timeout_ms,
            .self_id = c->cfg.id,
        };
        struct kz_cons__ckpt_fetched got;
        int rv = kz_cons__ckpt_fetch(&a, &got, msg, sizeof msg);
        if (rv != KZ_OK)
            fatal(c, "fetching a snapshot", rv, msg);
        have = got.index;
    }
    char path[4200];
    kz_cons__ckpt_path(c->snapdir, have, path, sizeof path);
    kz_log_node(c->cfg.id, KZ_LOG_INFO, "installing snapshot",
                "index=%llu for_index=%llu", (unsigned long long)have,
                (unsigned long long)index);
    int rv = c->fsm.install(c->fsm.data, path);
    if (rv != KZ_OK)
        fatal(c, "installing a snapshot", rv, path);
    uint64_t rss, peak;
    kz_cons__rss_mb(&rss, &peak);
    kz_log_node(c->cfg.id, KZ_LOG_INFO, "snapshot installed",
                "index=%llu rss_mb=%llu peak_rss_mb=%llu",
                (unsigned long long)have, (unsigned long long)rss,
                (unsigned long long)peak);
    kz_cons__ckpt_prune(c->snapdir, CKPT_KEEP, 0);
    return 0;
}

static int fsm_restore(struct raft_fsm *rfsm, struct raft_buffer *buf)
{
    kz_cons *c = rfsm->data;
    int rv = file_snapshots(c) ? checkpoint_restore(c, buf)
                               : c->fsm.restore(c->fsm.data, buf->base,
                                                buf->len);
    if (rv != 0)
        return RAFT_CORRUPT;
    c->snap_entries = c->snap_bytes = c->state_bytes_at = 0;
    c->state_bytes_known = false;
    /* On success the state machine owns the buffer: raft 0.22 only frees
     * the array around it. */
    raft_free(buf->base);
    return 0;
}

/* -------------------------------------------------------------- peer link */

static void conn_unref(struct conn *k);
static int conn_send(struct conn *k, int type, uint64_t reqid,
                     const void *payload, size_t len,
                     const void *payload2, size_t len2);
static struct conn *conn_outbound(kz_cons *c, int slot);

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows up as a read error: close there */
    free(w->data);
}

static int conn_send(struct conn *k, int type, uint64_t reqid,
                     const void *payload, size_t len, const void *payload2,
                     size_t len2)
{
    if (!k->open || k->closed)
        return KZ_ENET;
    size_t total = FRAME_HEADER + len + len2;
    unsigned char head[FRAME_HEADER];
    kz_put_be32(head, (uint32_t)(total - 4));
    head[4] = (unsigned char)type;
    kz_put_be64(head + 5, reqid);
    uv_buf_t b[3] = {uv_buf_init((char *)head, FRAME_HEADER),
                     uv_buf_init((char *)payload, (unsigned)len),
                     uv_buf_init((char *)payload2, (unsigned)len2)};
    return kz_cons__write(k->s, b, 3, on_written) == 0 ? KZ_OK : KZ_ENET;
}

static void conn_on_close(uv_handle_t *h)
{
    struct conn *k = h->data;
    raft_free(h); /* channel streams are raft_malloc'd (peer_tls.h) */
    k->s = NULL;
    conn_unref(k);
}

static void maybe_finish_close(kz_cons *c);

static void conn_unref(struct conn *k)
{
    if (--k->refs > 0)
        return;
    kz_cons *c = k->c;
    free(k->rbuf);
    free(k);
    c->handles_open--;
    maybe_finish_close(c);
}

static void conn_close(struct conn *k, int status)
{
    if (k->closed)
        return;
    kz_cons *c = k->c;
    k->closed = true;
    k->open = false;
    if (k->slot >= 0 && c->out[k->slot] == k)
        c->out[k->slot] = NULL;
    for (struct conn **pp = &c->conns; *pp; pp = &(*pp)->next)
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    fail_all(&k->waiting, status);
    if (k->s != NULL)
        uv_close((uv_handle_t *)k->s, conn_on_close);
    else if (k->pending != NULL)
        kz_cons__tls_cancel(c->tls, k->pending); /* -> on_channel: unref */
    else
        conn_unref(k);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *k = h->data;
    (void)suggested;
    if (k->rcap - k->rlen < 65536) {
        size_t ncap = k->rcap ? k->rcap * 2 : 131072;
        char *n = realloc(k->rbuf, ncap);
        if (n == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        k->rbuf = n;
        k->rcap = ncap;
    }
    *buf = uv_buf_init(k->rbuf + k->rlen, (unsigned)(k->rcap - k->rlen));
}

/* Serving side: a request from a peer is run as a local req whose callback
 * writes the reply. The conn is kept alive (refs) until then. */
struct served {
    kz_cons_req req;
    struct conn *k;
    uint64_t reqid;
    int ftype; /* the frame being served: F_PROPOSE, F_READ_INDEX, F_CHANGE */
};

/* A follower learns that entries are committed from the next
 * AppendEntries the leader sends, which raft 0.22 sends for a new entry or
 * a heartbeat (every heartbeat_timeout_ms, 100 by default). A follower told
 * the index of a read or of its own proposal waits to apply it locally, so
 * without new entries it waited for the heartbeat: 52 ms at the median for
 * a linearizable read on a follower, 2.8 on the leader. So when the leader
 * has answered such a request (a read index, or a proposal whose reqid
 * says the follower waits for it) and no entry has been appended by the next
 * loop turn, it appends an empty one (a barrier): its AppendEntries carries
 * the commit index at once. Under load new entries do that anyway. */
static void on_nudged(struct raft_barrier *b, int status)
{
    (void)status;
    free(b);
}

static void on_nudge_idle(uv_idle_t *h)
{
    kz_cons *c = h->data;
    uv_idle_stop(h);
    if (c->closing || raft_state(&c->raft) != RAFT_LEADER ||
        raft_last_index(&c->raft) != c->nudge_last)
        return; /* an entry went out after the answer: it carries the index */
    /* One of its own: an earlier nudge still in flight went out before
     * this commit. */
    struct raft_barrier *b = calloc(1, sizeof *b);
    if (b == NULL)
        return; /* the next heartbeat carries it */
    if (raft_barrier(&c->raft, b, on_nudged) != 0) {
        free(b);
        return;
    }
    c->counters.commit_nudges++;
}

static void nudge_commit(kz_cons *c)
{
    if (c->nudge_idle.loop == NULL || c->closing)
        return;
    c->nudge_last = raft_last_index(&c->raft);
    uv_idle_start(&c->nudge_idle, on_nudge_idle);
}

static void served_reply(kz_cons_req *req, int status)
{
    struct served *s = req->data;
    /* A follower that waits for the entries before the index only
     * (REQID_BEFORE, wait_index) was told they are committed when
     * FLAG_PRIOR_SENT; one that waits for the index itself learns of it
     * from the next entry or heartbeat, so the leader nudges. */
    bool told = (s->reqid & REQID_BEFORE) && (req->flags & FLAG_PRIOR_SENT);
    if (status == 0 && !told &&
        (s->ftype == F_READ_INDEX ||
         (s->ftype == F_PROPOSE && (s->reqid & REQID_WAITS))))
        nudge_commit(s->k->c);
    unsigned char hdr[12];
    kz_put_be32(hdr, (uint32_t)status);
    kz_put_be64(hdr + 4, req->index);
    if (!s->k->closed) {
        if (s->ftype == F_PROPOSE || s->ftype == F_CHANGE)
            conn_send(s->k, F_RESULT, s->reqid, hdr, 12, req->result,
                      status == 0 ? req->result_len : 0);
        else
            conn_send(s->k, F_INDEX, s->reqid, hdr, 12, NULL, 0);
    }
    free(req->result);
    conn_unref(s->k);
    free(s);
}

static void status_payload(kz_cons *c, unsigned char out[57])
{
    struct kz_cons_status st;
    kz_cons_get_status(c, &st);
    kz_put_be64(out, st.id);
    kz_put_be64(out + 8, st.term);
    kz_put_be64(out + 16, st.commit_index);
    kz_put_be64(out + 24, st.applied_index);
    kz_put_be64(out + 32, st.last_index);
    kz_put_be64(out + 40, st.leader_id);
    kz_put_be64(out + 48, st.ms_since_leader);
    out[56] = (unsigned char)st.state;
}

static int propose_local(kz_cons *c, kz_cons_req *req, const char *cmd,
                         size_t len);
static int read_local(kz_cons *c, kz_cons_req *req);
static int change_local(kz_cons *c, kz_cons_req *req, int op, uint64_t id,
                        int role);

static void serve_frame(struct conn *k, int type, uint64_t reqid,
                        const unsigned char *p, size_t len)
{
    kz_cons *c = k->c;
    if (type == F_STATUS) {
        /* A newer peer tells what its state machine applies; an older
         * one sends nothing, which says it applies none of it. */
        int slot = k->peer_id != 0 ? peer_slot(c, k->peer_id) : -1;
        if (slot >= 0) {
            c->peer_told[slot] = true;
            c->peer_features[slot] = len >= 4 ? kz_get_be32(p) : 0;
        }
        unsigned char st[57];
        status_payload(c, st);
        unsigned char hdr[4];
        kz_put_be32(hdr, 0);
        conn_send(k, F_STATUS_REPLY, reqid, hdr, 4, st, sizeof st);
        return;
    }
    struct served *s = calloc(1, sizeof *s);
    if (s == NULL) {
        conn_close(k, KZ_ENOMEM);
        return;
    }
    s->k = k;
    s->reqid = reqid;
    s->req.data = s;
    s->req.cb = served_reply;
    s->req.flags = FLAG_NO_FORWARD;
    if (type == F_PROPOSE && (reqid & REQID_MERGE))
        s->req.flags |= FLAG_MERGE;
    if (type == F_PROPOSE && (reqid & REQID_EACH))
        s->req.flags |= FLAG_EACH;
    s->ftype = type;
    list_init(&s->req);
    k->refs++;
    int rv;
    if (type == F_PROPOSE) {
        rv = propose_local(c, &s->req, (const char *)p, len);
    } else if (type == F_CHANGE) {
        rv = len == 10 ? change_local(c, &s->req, p[0], kz_get_be64(p + 2),
                                      p[1])
                       : KZ_EINVAL;
    } else {
        rv = read_local(c, &s->req);
    }
    if (rv != 0)
        served_reply(&s->req, rv); /* not queued: answer the error now */
}

/* A peer fetching a checkpoint (ckpt.h): answered at once, from disk. */
static void serve_ckpt(struct conn *k, int type, uint64_t reqid,
                       const unsigned char *p, size_t len)
{
    kz_cons *c = k->c;
    unsigned char *out = NULL;
    size_t olen = 0;
    int rtype;
    int rv = kz_cons__ckpt_serve(file_snapshots(c) ? c->snapdir : NULL, type,
                                 p, len, &out, &olen, &rtype);
    if (rv != KZ_OK) {
        conn_close(k, rv);
        return;
    }
    conn_send(k, rtype, reqid, out, olen, NULL, 0);
    free(out);
}

static void client_frame(struct conn *k, int type, uint64_t reqid,
                         const unsigned char *p, size_t len)
{
    kz_cons_req *req = NULL;
    for (kz_cons_req *r = k->waiting.next; r != &k->waiting; r = r->next)
        if (r->reqid == reqid) {
            req = r;
            break;
        }
    if (req == NULL)
        return; /* timed out meanwhile */
    if (type == F_STATUS_REPLY) {
        if (len < 4 + 57) {
            finish(req, KZ_ECORRUPT);
            return;
        }
        const unsigned char *s = p + 4;
        req->peer.id = kz_get_be64(s);
        req->peer.term = kz_get_be64(s + 8);
        req->peer.commit_index = kz_get_be64(s + 16);
        req->peer.applied_index = kz_get_be64(s + 24);
        req->peer.last_index = kz_get_be64(s + 32);
        req->peer.leader_id = kz_get_be64(s + 40);
        req->peer.ms_since_leader = kz_get_be64(s + 48);
        req->peer.state = s[56];
        finish(req, 0);
        return;
    }
    if (len < 12) {
        finish(req, KZ_ECORRUPT);
        return;
    }
    int status = (int)kz_get_be32(p);
    req->index = kz_get_be64(p + 4);
    if (type == F_RESULT && status == 0) {
        req->result_len = len - 12;
        req->result = malloc(req->result_len + 1);
        if (req->result == NULL) {
            finish(req, KZ_ENOMEM);
            return;
        }
        memcpy(req->result, p + 12, req->result_len);
        req->result[req->result_len] = '\0';
    }
    if ((type == F_INDEX ||
         (type == F_RESULT && (req->flags & FLAG_WAIT_LOCAL))) &&
        status == 0) {
        /* Wait until this follower has applied the leader's read index. */
        list_remove(req);
        req->flags |= FLAG_WAIT_APPLY;
        list_push(&k->c->inflight, req);
        return;
    }
    if (status == KZ_ENOTLEADER)
        status = KZ_ENOLEADER;
    observe_proposal(k->c, req, status);
    finish(req, status);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *k = s->data;
    (void)buf;
    if (n < 0) {
        conn_close(k, KZ_ENET);
        return;
    }
    k->rlen += (size_t)n;
    size_t off = 0;
    struct kz_cons__frame fr;
    int got;
    while ((got = kz_cons__frame_next((unsigned char *)k->rbuf, k->rlen, &off,
                                      &fr)) != 0) {
        int type = fr.type;
        if (got < 0) {
            conn_close(k, KZ_ECORRUPT);
            return;
        }
        if (k->slot < 0 && (type == F_CKPT_LIST || type == F_CKPT_GET)) {
            serve_ckpt(k, type, fr.reqid, fr.payload, fr.len);
        } else if (k->slot < 0 &&
                   (type == F_PROPOSE || type == F_READ_INDEX ||
                    type == F_STATUS || type == F_CHANGE)) {
            serve_frame(k, type, fr.reqid, fr.payload, fr.len);
        } else if (k->slot >= 0 && (type == F_RESULT || type == F_INDEX ||
                                    type == F_STATUS_REPLY)) {
            client_frame(k, type, fr.reqid, fr.payload, fr.len);
        } else {
            conn_close(k, KZ_ECORRUPT);
            return;
        }
        if (k->closed)
            return;
    }
    if (off > 0) {
        memmove(k->rbuf, k->rbuf + off, k->rlen - off);
        k->rlen -= off;
    }
}

static struct conn *conn_new(kz_cons *c, int slot)
{
    struct conn *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->c = c;
    k->slot = slot;
    k->refs = 1;
    list_init(&k->waiting);
    c->handles_open++; /* until the last unref */
    k->next = c->conns;
    c->conns = k;
    return k;
}

static void conn_attach(struct conn *k, uv_stream_t *s)
{
    k->s = s;
    s->data = k;
    k->open = true;
    uv_read_start(s, on_alloc, on_read);
}

static void on_channel(void *data, int status, uv_stream_t *s)
{
    struct conn *k = data;
    k->pending = NULL;
    if (k->closed) {
        conn_unref(k); /* canceled by conn_close */
        return;
    }
    if (status != 0) {
        /* Nothing queued here was sent: the leader cannot have seen it, so
         * the caller may safely retry (not "in doubt"). */
        conn_close(k, KZ_ENOLEADER);
        return;
    }
    conn_attach(k, s);
    /* Send what queued up while connecting. */
    for (kz_cons_req *r = k->waiting.next; r != &k->waiting; r = r->next) {
        const char *cmd = r->result;
        size_t len = r->result_len;
        int type = r->type == REQ_PROPOSE  ? F_PROPOSE
                   : r->type == REQ_READ   ? F_READ_INDEX
                   : r->type == REQ_CHANGE ? F_CHANGE
                                           : F_STATUS;
        conn_send(k, type, r->reqid, cmd, len, NULL, 0);
        free(r->result);
        r->result = NULL;
        r->result_len = 0;
    }
}

static struct conn *conn_outbound(kz_cons *c, int slot)
{
    if (c->out[slot] != NULL)
        return c->out[slot];
    struct conn *k = conn_new(c, slot);
    if (k == NULL)
        return NULL;
    const struct kz_cons_peer *p = &c->cfg.peers[slot];
    k->pending = kz_cons__tls_connect(c->tls, KZ_CHAN_PEER, p->id,
                                      p->dial_addr[0] ? p->dial_addr
                                                      : p->raft_addr,
                                      on_channel, k);
    if (k->pending == NULL) {
        conn_close(k, KZ_ENET);
        return NULL;
    }
    c->out[slot] = k;
    return k;
}

/* Queues req on the outbound connection to peer slot. While connecting the
 * frame payload is parked in req->result (sent by on_connect). */
static int send_to_peer(kz_cons *c, int slot, kz_cons_req *req, int ftype,
                        const char *payload, size_t len)
{
    struct conn *k = conn_outbound(c, slot);
    if (k == NULL)
        return KZ_ENOLEADER; /* not sent: safe to retry */
    req->reqid =
        ++c->next_reqid &
        ~(REQID_WAITS | REQID_MERGE | REQID_BEFORE | REQID_EACH);
    if (ftype == F_PROPOSE && (req->flags & FLAG_WAIT_LOCAL))
        req->reqid |= REQID_WAITS;
    if (ftype == F_PROPOSE && (req->flags & FLAG_MERGE))
        req->reqid |= REQID_MERGE | REQID_BEFORE;
    if (ftype == F_PROPOSE && (req->flags & FLAG_EACH))
        req->reqid |= REQID_EACH;
    if (ftype == F_READ_INDEX)
        req->reqid |= REQID_BEFORE;
    if (k->open) {
        int rv = conn_send(k, ftype, req->reqid, payload, len, NULL, 0);
        if (rv != 0)
            return rv == KZ_ENET ? KZ_ENOLEADER : rv; /* not sent */
    } else if (len > 0) {
        req->result = malloc(len);
        if (req->result == NULL)
            return KZ_ENOMEM;
        memcpy(req->result, payload, len);
        req->result_len = len;
    }
    list_push(&k->waiting, req);
    return KZ_OK;
}

static void on_stream_closed_free(uv_handle_t *h)
{
    raft_free(h);
}

/* An authenticated inbound channel: raft's go to raft, the peer link's to
 * a new connection. */
static void on_accept_channel(void *data, int kind, uint64_t id,
                              const char *address, uv_stream_t *s)
{
    kz_cons *c = data;
    if (c->closing) {
        uv_close((uv_handle_t *)s, on_stream_closed_free);
        return;
    }
    if (kind == KZ_CHAN_RAFT) {
        if (c->raft_accept == NULL) {
            uv_close((uv_handle_t *)s, on_stream_closed_free);
            return;
        }
        c->raft_accept(&c->transport, id, address, s);
        return;
    }
    struct conn *k = conn_new(c, -1);
    if (k == NULL) {
        uv_close((uv_handle_t *)s, on_stream_closed_free);
        return;
    }
    k->peer_id = id;
    conn_attach(k, s);
}

/* ------------------------------------------------- raft's transport */

/* A raft connect request waiting for its channel. */
struct raft_connect {
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    kz_cons *c;
    void *pending;
    struct raft_connect *next;
};

/* raft owns transport->data (raft_uv_init sets it): find our struct from
 * the embedded transport instead. */
static kz_cons *tr_cons(struct raft_uv_transport *t)
{
    return (kz_cons *)(void *)((char *)t - offsetof(kz_cons, transport));
}

static int tr_init(struct raft_uv_transport *t, raft_id id,
                   const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    kz_cons *c = tr_cons(t);
    c->raft_accept = cb; /* the shared channel listener routes to it */
    return 0;
}

static void tr_connected(void *data, int status, uv_stream_t *s)
{
    struct raft_connect *rc = data;
    kz_cons *c = rc->c;
    for (struct raft_connect **pp = &c->raft_connects; *pp; pp = &(*pp)->next)
        if (*pp == rc) {
            *pp = rc->next;
            break;
        }
    int rv = status == 0             ? 0
             : status == KZ_ECANCELED ? RAFT_CANCELED
                                      : RAFT_NOCONNECTION;
    rc->cb(rc->req, s, rv);
    free(rc);
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
                      raft_id id, const char *address, raft_uv_connect_cb cb)
{
    kz_cons *c = tr_cons(t);
    struct raft_connect *rc = calloc(1, sizeof *rc);
    if (rc == NULL)
        return RAFT_NOMEM;
    rc->req = req;
    rc->cb = cb;
    rc->c = c;
    /* raft names the peer by the address in its configuration; a local
     * dial_addr for that id (a relay, a chaos proxy) takes precedence. */
    for (unsigned i = 0; i < c->cfg.n_peers; i++)
        if (c->cfg.peers[i].id == id && c->cfg.peers[i].dial_addr[0])
            address = c->cfg.peers[i].dial_addr;
    rc->pending = kz_cons__tls_connect(c->tls, KZ_CHAN_RAFT, id, address,
                                       tr_connected, rc);
    if (rc->pending == NULL) {
        free(rc);
        return RAFT_NOCONNECTION;
    }
    rc->next = c->raft_connects;
    c->raft_connects = rc;
    return 0;
}

static void tr_close(struct raft_uv_transport *t,
                     raft_uv_transport_close_cb cb)
{
    kz_cons *c = tr_cons(t);
    c->raft_accept = NULL;
    /* Cancel pending connects: each cb fires with RAFT_CANCELED and
     * unlinks itself (tr_connected). */
    while (c->raft_connects != NULL) {
        struct raft_connect *rc = c->raft_connects;
        kz_cons__tls_cancel(c->tls, rc->pending);
        if (c->raft_connects == rc) { /* not pending any more: drop it */
            c->raft_connects = rc->next;
            free(rc);
        }
    }
    cb(t);
}

/* -------------------------------------------------------------- proposals */

static void merge_schedule(kz_cons *c);

static void on_applied(struct raft_apply *a, int status, void *result)
{
    struct prop *p = a->data;
    kz_cons *c = p->c;
    (void)result; /* results travel in the prop, see fsm_apply */
    prop_remove(c, p);
    int st = raft_to_kz(status);
    int prior = p->commit_at + 1 >= a->index ? FLAG_PRIOR_SENT : 0;
    if (p->mq != NULL) {
        p->mq->in_flight--;
        merge_schedule(c);
    }
    /* Members that each keep a result: theirs, in order, from the one
     * the state machine wrote for the entry (fsm.merge_each). */
    const unsigned char *rp = (const unsigned char *)p->result;
    size_t rleft = p->each && st == 0 && rp != NULL ? p->result_len : 0;
    kz_cons_req *req = p->user;
    if (req != NULL) {
        req->priv = NULL;
        req->result = p->result;
        req->result_len = p->result_len;
        req->index = a->index;
        req->flags |= prior;
        p->result = NULL;
        observe_proposal(c, req, st);
        finish(req, st);
    }
    /* A member's callback may detach others (close): they are NULL then,
     * and their results are passed over. */
    for (size_t i = 0; i < p->n_members; i++) {
        const unsigned char *mine = NULL;
        size_t mine_len = 0;
        if (rleft >= 4 && kz_get_be32(rp) <= rleft - 4) {
            mine_len = kz_get_be32(rp);
            mine = rp + 4;
            rp += 4 + mine_len;
            rleft -= 4 + mine_len;
        } else {
            rleft = 0; /* malformed or short: the rest get none */
        }
        kz_cons_req *m = p->members[i];
        if (m == NULL)
            continue;
        p->members[i] = NULL;
        m->priv = NULL;
        m->index = a->index;
        m->flags |= prior;
        m->result = NULL;
        m->result_len = 0;
        if (mine != NULL) {
            m->result = malloc(mine_len ? mine_len : 1);
            if (m->result != NULL) {
                memcpy(m->result, mine, mine_len);
                m->result_len = mine_len;
            }
        }
        observe_proposal(c, m, st);
        finish(m, st);
    }
    free(p->members);
    free(p->result);
    free(p);
}

/* Hands one entry, the envelope around cmd, to raft; *out is its prop. */
static int apply_entry(kz_cons *c, const char *cmd, size_t len,
                       struct prop **out)
{
    if (len > FRAME_MAX - 64)
        return KZ_ETOOBIG;
    size_t total = (ENVELOPE_HEADER + len + 7) & ~(size_t)7;
    struct prop *p = calloc(1, sizeof *p);
    if (p == NULL)
        return KZ_ENOMEM;
    unsigned char *e = raft_malloc(total);
    if (e == NULL) {
        free(p);
        return KZ_ENOMEM;
    }
    memset(e + ENVELOPE_HEADER + len, 0, total - ENVELOPE_HEADER - len);
    p->c = c;
    p->seq = ++c->next_seq;
    p->apply.data = p;
    kz_put_be32(e, ENVELOPE_MAGIC);
    kz_put_be32(e + 4, (uint32_t)len);
    kz_put_be64(e + 8, c->cfg.id);
    kz_put_be64(e + 16, c->boot_nonce);
    kz_put_be64(e + 24, p->seq);
    memcpy(e + ENVELOPE_HEADER, cmd, len);
    struct raft_buffer buf = {.base = e, .len = total};
    p->commit_at = raft_commit_index(&c->raft);
    prop_insert(c, p);
    int rv = raft_apply(&c->raft, &p->apply, &buf, 1, on_applied);
    if (rv != 0) {
        prop_remove(c, p);
        /* raft 0.22 fails these before the entry reaches the log, so the
         * buffer is still ours; on other errors raft may hold it already. */
        if (rv == RAFT_NOTLEADER || rv == RAFT_NOSPACE || rv == RAFT_MALFORMED)
            raft_free(e);
        free(p);
        return raft_to_kz(rv);
    }
    *out = p;
    return KZ_OK;
}

/* req waits for prop p now (in inflight, for its deadline). */
static void track(kz_cons *c, kz_cons_req *req, struct prop *p)
{
    req->type = REQ_PROPOSE;
    req->priv = p;
    req->result = NULL;
    req->result_len = 0;
    req->deadline = now_ms(c) + c->cfg.request_timeout_ms;
    list_push(&c->inflight, req);
}

/* ------------------------------------------------------ merged proposals
 *
 * kz_cons_propose_merged and kz_cons_propose_batched: on the leader, such
 * proposals (its own and those forwarded with REQID_MERGE or REQID_EACH)
 * wait in their merge queue. At the end of the loop turn (on_check, or
 * merge_idle when made outside I/O callbacks), while fewer than the
 * queue's max_in_flight merged entries are unapplied, the waiting ones
 * become one command (fsm.merge, fsm.merge_each) and one entry; when it
 * is applied, each is answered with its index and, for merge_each, its
 * own result. Each entry costs a round of AppendEntries to every
 * follower, a result back from each, a log write and an apply on every
 * node; proposals arriving together pay for one. A merge the state
 * machine refuses leaves them to go one by one. */
/* Read records: two merged entries in flight, the proposals arriving
 * meanwhile make the next one larger. One was better while every read
 * came as a batch of its own (3-7% less node CPU a read, as many reads);
 * since a node batches the reads of a loop turn (node/http_api.c), two
 * gave 11,067 against 10,007 reads/s on the means of six alternated
 * pairs (kizuna-bench read, 64 connections), CPU a read the same. */
#define MERGE_IN_FLIGHT 2
/* Registrations (kz_cons_propose_batched): one. Against 2, alternated
 * on fresh clusters (kizuna-bench write, 64 connections): p99 37-43 ms
 * against 41-51, 5% less node CPU a write, 2% fewer writes/s (within
 * noise); at 1000 writes/s offered p50 1.50-1.52 against 1.45-1.46 ms. */
#define EACH_IN_FLIGHT 1
#define MERGE_MAX_BYTES (1u << 20)
#define MERGE_MAX_COUNT 256

static void on_merge_idle(uv_idle_t *h);

static bool merge_ready(const struct merge_queue *q)
{
    return !list_empty(&q->waiting) && q->in_flight < q->max_in_flight;
}

static void merge_schedule(kz_cons *c)
{
    if (c->closing || c->merge_idle.loop == NULL)
        return;
    for (int i = 0; i < MQ_COUNT; i++)
        if (merge_ready(&c->mq[i])) {
            uv_idle_start(&c->merge_idle, on_merge_idle);
            return;
        }
}

/* Whether every voter and standby but this node said, in its last STATUS
 * query (a follower sends one to its leader every second), that it can
 * apply what fsm.merge_each makes. Until then batched proposals go one by
 * one, as in a cluster where some node runs an older version. */
static bool each_allowed(kz_cons *c)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        if (s->id == c->cfg.id || s->role == RAFT_SPARE)
            continue;
        int slot = peer_slot(c, s->id);
        if (slot < 0 || !c->peer_told[slot] ||
            !(c->peer_features[slot] & FEATURE_EACH))
            return false;
    }
    return true;
}

static int merge_enqueue(kz_cons *c, struct merge_queue *q,
                         kz_cons_req *req, const char *cmd, size_t len)
{
    if (len > FRAME_MAX - 64)
        return KZ_ETOOBIG;
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return KZ_ENOMEM;
    memcpy(copy, cmd, len);
    req->type = REQ_PROPOSE;
    req->priv = NULL;
    req->result = copy; /* parked until merge_flush */
    req->result_len = len;
    req->deadline = now_ms(c) + c->cfg.request_timeout_ms;
    list_push(&q->waiting, req);
    c->counters.proposals++;
    merge_schedule(c);
    return KZ_OK;
}

/* Proposes the reqs alone, each its own entry; they sit on a list of the
 * caller's until then, so that a callback that closes this node (finish)
 * cannot reach them. With q, each counts as a merged entry in flight. */
static void merge_one_by_one(kz_cons *c, kz_cons_req **reqs, size_t n,
                             struct merge_queue *q)
{
    for (size_t i = 0; i < n; i++) {
        kz_cons_req *r = reqs[i];
        struct prop *p = NULL;
        int rv = c->closing ? KZ_ESHUTDOWN
                            : apply_entry(c, r->result, r->result_len, &p);
        if (rv != KZ_OK) {
            finish(r, rv == KZ_ENOTLEADER ? KZ_ENOLEADER : rv);
            continue;
        }
        free(r->result);
        list_remove(r);
        p->user = r;
        p->mq = q;
        if (q != NULL)
            q->in_flight++;
        track(c, r, p);
    }
}

/* Turns what waits in q into entries while q may have more in flight. */
static void merge_flush_queue(kz_cons *c, struct merge_queue *q)
{
    while (!c->closing && merge_ready(q)) {
        if (raft_state(&c->raft) != RAFT_LEADER) {
            fail_all(&q->waiting, KZ_ENOLEADER); /* never proposed */
            return;
        }
        size_t n = 0, bytes = 0;
        for (kz_cons_req *r = q->waiting.next; r != &q->waiting;
             r = r->next) {
            if (n > 0 && (bytes + r->result_len > MERGE_MAX_BYTES ||
                          n == MERGE_MAX_COUNT))
                break;
            bytes += r->result_len;
            n++;
        }
        kz_cons_req **m = calloc(n, sizeof *m);
        const char **cmds = calloc(n, sizeof *cmds);
        size_t *lens = calloc(n, sizeof *lens);
        if (m == NULL || cmds == NULL || lens == NULL) {
            free(m);
            free(cmds);
            free(lens);
            fail_all(&q->waiting, KZ_ENOMEM);
            return;
        }
        /* This entry's reqs, in order, then on a list of their own. */
        kz_cons_req *r = q->waiting.next;
        for (size_t i = 0; i < n; i++, r = r->next) {
            m[i] = r;
            cmds[i] = r->result;
            lens[i] = r->result_len;
        }
        kz_cons_req batch;
        list_init(&batch);
        for (size_t i = 0; i < n; i++) {
            list_remove(m[i]);
            list_push(&batch, m[i]);
        }
        char *merged = NULL;
        size_t mlen = 0;
        struct prop *p = NULL;
        int (*merge)(void *, const char *const *, const size_t *, size_t,
                     char **, size_t *) =
            q->each ? c->fsm.merge_each : c->fsm.merge;
        /* A member that cannot apply merged registrations may have
         * joined since these were queued (each_allowed). */
        bool open = !q->each || each_allowed(c);
        int rv = n > 1 && open ? merge(c->fsm.data, cmds, lens, n, &merged,
                                       &mlen)
                               : KZ_EINVAL;
        free(cmds);
        free(lens);
        if (rv != KZ_OK) {
            /* One alone, or a merge refused: each its own entry (one
             * alone counts as the merged entry in flight). */
            if (!open)
                c->counters.each_alone += n;
            merge_one_by_one(c, m, n, n == 1 && open ? q : NULL);
            free(m);
            continue;
        }
        rv = apply_entry(c, merged, mlen, &p);
        free(merged);
        if (rv != KZ_OK) {
            free(m);
            fail_all(&batch, rv == KZ_ENOTLEADER ? KZ_ENOLEADER : rv);
            continue;
        }
        p->mq = q;
        p->each = q->each;
        p->members = m;
        p->n_members = n;
        for (size_t i = 0; i < n; i++) {
            free(m[i]->result);
            list_remove(m[i]);
            track(c, m[i], p);
        }
        q->in_flight++;
        if (q->each) {
            c->counters.each_entries++;
            c->counters.each_proposals += n;
        } else {
            c->counters.merged_entries++;
            c->counters.merged_proposals += n;
        }
    }
}

static void merge_flush(kz_cons *c)
{
    if (c->merge_idle.loop != NULL)
        uv_idle_stop(&c->merge_idle);
    for (int i = 0; i < MQ_COUNT; i++)
        merge_flush_queue(c, &c->mq[i]);
}

static void on_merge_idle(uv_idle_t *h)
{
    merge_flush(h->data);
}

static int propose_local(kz_cons *c, kz_cons_req *req, const char *cmd,
                         size_t len)
{
    if (c->closing)
        return KZ_ESHUTDOWN;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return KZ_ENOTLEADER;
    if ((req->flags & FLAG_MERGE) && c->fsm.merge != NULL)
        return merge_enqueue(c, &c->mq[MQ_READS], req, cmd, len);
    if ((req->flags & FLAG_EACH) && c->fsm.merge_each != NULL) {
        if (each_allowed(c))
            return merge_enqueue(c, &c->mq[MQ_EACH], req, cmd, len);
        c->counters.each_alone++;
    }
    struct prop *p = NULL;
    int rv = apply_entry(c, cmd, len, &p);
    if (rv != KZ_OK)
        return rv;
    p->user = req;
    track(c, req, p);
    c->counters.proposals++;
    return KZ_OK;
}

static int propose(kz_cons *c, kz_cons_req *req, const char *cmd, size_t len,
                   kz_cons_cb cb, int flags)
{
    req->cb = cb;
    req->flags = flags;
    req->result = NULL;
    req->result_len = 0;
    req->index = 0;
    req->started_ns = uv_hrtime();
    list_init(req);
    int rv = propose_local(c, req, cmd, len);
    if (rv != KZ_ENOTLEADER)
        return rv;
    int slot = leader_slot(c);
    if (slot < 0)
        return KZ_ENOLEADER;
    req->type = REQ_PROPOSE;
    req->priv = NULL;
    req->deadline = now_ms(c) + c->cfg.request_timeout_ms;
    rv = send_to_peer(c, slot, req, F_PROPOSE, cmd, len);
    if (rv == 0)
        c->counters.forwarded++;
    return rv;
}

int kz_cons_propose(kz_cons *c, kz_cons_req *req, const char *cmd, size_t len,
                    kz_cons_cb cb)
{
    return propose(c, req, cmd, len, cb, 0);
}

int kz_cons_propose_read(kz_cons *c, kz_cons_req *req, const char *cmd,
                         size_t len, kz_cons_cb cb)
{
    return propose(c, req, cmd, len, cb, FLAG_WAIT_LOCAL);
}

int kz_cons_propose_merged(kz_cons *c, kz_cons_req *req, const char *cmd,
                           size_t len, kz_cons_cb cb)
{
    return propose(c, req, cmd, len, cb, FLAG_WAIT_LOCAL | FLAG_MERGE);
}

int kz_cons_propose_batched(kz_cons *c, kz_cons_req *req, const char *cmd,
                            size_t len, kz_cons_cb cb)
{
    return propose(c, req, cmd, len, cb, FLAG_EACH);
}

/* ------------------------------------------------------------------ reads */

static void start_barrier(kz_cons *c);

static void on_barrier(struct raft_barrier *b, int status)
{
    kz_cons *c = b->data;
    c->barrier_in_flight = false;
    uint64_t index = raft_last_applied(&c->raft);
    /* The barrier entry was appended after every read of the batch
     * arrived, and index is at or past it. */
    int prior = c->barrier_commit_at + 1 >= index ? FLAG_PRIOR_SENT : 0;
    while (!list_empty(&c->reads_batch)) {
        kz_cons_req *r = c->reads_batch.next;
        r->index = index;
        r->flags |= prior;
        finish(r, raft_to_kz(status));
    }
    if (!c->closing && !list_empty(&c->reads_waiting))
        start_barrier(c);
}

static void start_barrier(kz_cons *c)
{
    /* Move every waiting read into the batch this barrier serves. */
    uint64_t batch = 0;
    while (!list_empty(&c->reads_waiting)) {
        kz_cons_req *r = c->reads_waiting.next;
        list_remove(r);
        list_push(&c->reads_batch, r);
        c->counters.barrier_reads++;
        batch++;
    }
    c->barrier.data = c;
    c->barrier_commit_at = raft_commit_index(&c->raft);
    int rv = raft_barrier(&c->raft, &c->barrier, on_barrier);
    if (rv != 0) {
        int status = raft_to_kz(rv);
        if (status == KZ_ENOTLEADER)
            status = KZ_ENOLEADER;
        fail_all(&c->reads_batch, status);
        return;
    }
    c->barrier_in_flight = true;
    c->counters.barriers++;
    hist_observe(&c->counters.barrier_batch, batch);
}

static int read_local(kz_cons *c, kz_cons_req *req)
{
    if (c->closing)
        return KZ_ESHUTDOWN;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return KZ_ENOTLEADER;
    req->type = REQ_READ;
    req->deadline = now_ms(c) + c->cfg.request_timeout_ms;
    list_push(&c->reads_waiting, req);
    if (!c->barrier_in_flight)
        start_barrier(c);
    return KZ_OK;
}

int kz_cons_read_index(kz_cons *c, kz_cons_req *req, kz_cons_cb cb)
{
    req->cb = cb;
    req->flags = 0;
    req->result = NULL;
    req->index = 0;
    req->priv = NULL;
    list_init(req);
    int rv = read_local(c, req);
    if (rv != KZ_ENOTLEADER)
        return rv;
    int slot = leader_slot(c);
    if (slot < 0)
        return KZ_ENOLEADER;
    req->type = REQ_READ;
    req->deadline = now_ms(c) + c->cfg.request_timeout_ms;
    return send_to_peer(c, slot, req, F_READ_INDEX, NULL, 0);
}

int kz_cons_query_peer(kz_cons *c, kz_cons_req *req, uint64_t id,
                       kz_cons_cb cb)
{
    req->cb = cb;
    req->flags = 0;
    req->result = NULL;
    req->priv = NULL;
    memset(&req->peer, 0, sizeof req->peer);
    list_init(req);
    if (c->closing)
        return KZ_ESHUTDOWN;
    int slot = peer_slot(c, id);
    if (slot < 0)
        return KZ_EINVAL;
    req->type = REQ_STATUS;
    req->deadline = now_ms(c) + c->cfg.request_timeout_ms;
    unsigned char features[4];
    kz_put_be32(features, c->fsm.merge_each != NULL ? FEATURE_EACH : 0);
    return send_to_peer(c, slot, req, F_STATUS, (const char *)features, 4);
}

static void on_snap_barrier(kz_cons_req *req, int status)
{
    kz_cons *c = req->data;
    c->snap_barrier_busy = false;
    if (status != 0 && c->snap_req != NULL) {
        kz_cons_req *asked = c->snap_req;
        detach(asked);
        finish(asked, status);
        snapshot_policy(c);
    }
}

int kz_cons_snapshot_now(kz_cons *c, kz_cons_req *req, kz_cons_cb cb)
{
    req->cb = cb;
    req->flags = 0;
    req->result = NULL;
    req->result_len = 0;
    req->index = 0;
    req->priv = NULL;
    list_init(req);
    if (c->closing)
        return KZ_ESHUTDOWN;
    if (c->snap_req != NULL || c->snap_barrier_busy)
        return KZ_EBUSY;
    int state = raft_state(&c->raft);
    /* A follower snapshots only while caught up (snapshot_policy: raft
     * 0.22.1 must not receive an InstallSnapshot meanwhile). */
    if (state != RAFT_LEADER &&
        !(state == RAFT_FOLLOWER && c->caught_up_at_ms != 0 &&
          now_ms(c) - c->caught_up_at_ms < CAUGHT_UP_VALID_MS))
        return KZ_ENOTLEADER;
    req->type = REQ_SNAPSHOT;
    req->priv = c;
    req->deadline = now_ms(c) + c->cfg.request_timeout_ms;
    list_push(&c->inflight, req);
    c->snap_req = req;
    snapshot_policy(c);
    /* raft checks its threshold after applying: a read barrier through the
     * leader appends an entry every node applies. */
    c->snap_barrier.data = c;
    c->snap_barrier_busy = true;
    int rv = kz_cons_read_index(c, &c->snap_barrier, on_snap_barrier);
    if (rv != KZ_OK) {
        c->snap_barrier_busy = false;
        detach(req);
        list_remove(req);
        req->type = 0;
        snapshot_policy(c);
        return rv;
    }
    return KZ_OK;
}

/* ------------------------------------------------------------- membership */

static int raft_role_of(int role)
{
    switch (role) {
    case KZ_CONS_VOTER:
        return RAFT_VOTER;
    case KZ_CONS_STANDBY:
        return RAFT_STANDBY;
    case KZ_CONS_SPARE:
        return RAFT_SPARE;
    default:
        return -1;
    }
}

static const struct raft_server *member(const kz_cons *c, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id == id)
            return &conf->servers[i];
    return NULL;
}

/* Ends a change: its user (if still waiting) hears status. */
static void change_end(struct change *ch, int status)
{
    kz_cons *c = ch->c;
    if (c->promoting == ch)
        c->promoting = NULL;
    kz_cons_req *req = ch->user;
    if (req != NULL) {
        req->priv = NULL;
        req->index = raft_last_index(&c->raft);
        finish(req, status);
    }
    free(ch);
}

static void on_change(struct raft_change *rc, int status)
{
    struct change *ch = rc->data;
    kz_cons *c = ch->c;
    if (status == 0 && ch->next == NEXT_STANDBY && !c->closing) {
        /* A spare now: make it a standby, which raft replicates to. */
        ch->next = ch->role == RAFT_VOTER ? NEXT_CATCH_UP : NEXT_NONE;
        int rv = raft_assign(&c->raft, &ch->rc, ch->id, RAFT_STANDBY,
                             on_change);
        if (rv == 0)
            return;
        status = rv;
    } else if (status == 0 && ch->next == NEXT_CATCH_UP && !c->closing) {
        /* A standby: wait (on_timer, promote_tick) until it has caught up,
         * then make it a voter. */
        ch->next = NEXT_NONE;
        ch->next_query_ms = 0;
        c->promoting = ch;
        return;
    }
    change_end(ch, raft_to_kz(status));
}

static void on_promote_status(kz_cons_req *q, int status)
{
    struct change *ch = q->data;
    kz_cons *c = ch->c;
    ch->querying = false;
    if (c->closing || ch->user == NULL) {
        /* closing, or nobody waits any more: the node stays a standby
         * (asking again resumes from here) */
        change_end(ch, KZ_ESHUTDOWN);
        return;
    }
    if (raft_state(&c->raft) != RAFT_LEADER) {
        change_end(ch, KZ_ENOQUORUM);
        return;
    }
    if (status == 0 &&
        q->peer.applied_index + 64 >= raft_commit_index(&c->raft)) {
        c->promoting = NULL;
        int rv = raft_assign(&c->raft, &ch->rc, ch->id, RAFT_VOTER,
                             on_change);
        if (rv != 0)
            change_end(ch, raft_to_kz(rv));
        return;
    }
    ch->next_query_ms = now_ms(c) + 200;
}

static void promote_tick(kz_cons *c, uint64_t now)
{
    struct change *ch = c->promoting;
    if (ch == NULL || ch->querying || now < ch->next_query_ms)
        return;
    if (ch->user == NULL || raft_state(&c->raft) != RAFT_LEADER) {
        change_end(ch, ch->user ? KZ_ENOQUORUM : KZ_ETIMEDOUT);
        return;
    }
    ch->q.data = ch;
    ch->querying = true;
    if (kz_cons_query_peer(c, &ch->q, ch->id, on_promote_status) != 0) {
        ch->querying = false;
        ch->next_query_ms = now + 200;
    }
}

/* The deadline of a change: long enough for a new node's catch-up. */
static uint64_t change_deadline(kz_cons *c)
{
    return now_ms(c) + (c->cfg.request_timeout_ms > CHANGE_TIMEOUT_MS
                            ? c->cfg.request_timeout_ms
                            : CHANGE_TIMEOUT_MS);
}

/* A change that is already so: req completes on the next loop turn
 * (on_check). */
static int change_already(kz_cons *c, kz_cons_req *req)
{
    req->index = raft_last_applied(&c->raft);
    req->flags |= FLAG_WAIT_APPLY;
    list_push(&c->inflight, req);
    return KZ_OK;
}

static struct change *change_new(kz_cons *c, uint64_t id)
{
    struct change *ch = calloc(1, sizeof *ch);
    if (ch != NULL) {
        ch->c = c;
        ch->id = id;
        ch->rc.data = ch;
        ch->tr.data = ch;
    }
    return ch;
}

/* raft took the change: req waits for its callback. */
static int change_started(kz_cons_req *req, struct change *ch)
{
    ch->user = req;
    req->priv = ch;
    list_push(&ch->c->inflight, req);
    return KZ_OK;
}

/* A leadership transfer ended (raft gives no status): it worked when this
 * node no longer leads. */
static void on_transfer_done(struct raft_transfer *t)
{
    struct change *ch = t->data;
    kz_cons *c = ch->c;
    kz_cons_req *req = ch->user;
    if (req != NULL) {
        req->priv = NULL;
        req->index = raft_last_index(&c->raft);
        finish(req, raft_state(&c->raft) == RAFT_LEADER ? KZ_ETIMEDOUT : 0);
    }
    free(ch);
}

/* KZ_CONS_TRANSFER on the leader: to id, a voter (0: raft picks the most
 * up-to-date one). */
static int transfer_local(kz_cons *c, kz_cons_req *req, uint64_t id)
{
    const struct raft_server *s = id ? member(c, id) : NULL;
    if (id != 0 && (s == NULL || s->role != RAFT_VOTER))
        return KZ_EINVAL;
    req->type = REQ_CHANGE;
    req->priv = NULL;
    req->deadline = change_deadline(c);
    if (id == c->cfg.id)
        return change_already(c, req);
    struct change *ch = change_new(c, id);
    if (ch == NULL)
        return KZ_ENOMEM;
    int rv = raft_transfer(&c->raft, &ch->tr, id, on_transfer_done);
    if (rv != 0) {
        free(ch);
        return raft_to_kz(rv);
    }
    return change_started(req, ch);
}

static int change_local(kz_cons *c, kz_cons_req *req, int op, uint64_t id,
                        int role)
{
    if (c->closing)
        return KZ_ESHUTDOWN;
    if (op == KZ_CONS_TRANSFER) {
        if (raft_state(&c->raft) != RAFT_LEADER)
            return KZ_ENOTLEADER;
        return transfer_local(c, req, id);
    }
    int want = raft_role_of(role);
    if ((op != KZ_CONS_ADD && op != KZ_CONS_REMOVE) || want < 0 || id == 0)
        return KZ_EINVAL;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return KZ_ENOTLEADER;
    int slot = peer_slot(c, id);
    if (op == KZ_CONS_ADD && slot < 0)
        return KZ_ENOTFOUND; /* no address for it in the configuration */
    if (op == KZ_CONS_REMOVE && id == c->cfg.id)
        return KZ_EINVAL; /* the leader: transfer leadership first */
    const struct raft_server *s = member(c, id);
    req->type = REQ_CHANGE;
    req->priv = NULL;
    req->deadline = change_deadline(c);
    if ((op == KZ_CONS_ADD && s != NULL && s->role == want) ||
        (op == KZ_CONS_REMOVE && s == NULL))
        return change_already(c, req);
    struct change *ch = change_new(c, id);
    if (ch == NULL)
        return KZ_ENOMEM;
    ch->role = want;
    int rv;
    if (op == KZ_CONS_REMOVE) {
        rv = raft_remove(&c->raft, &ch->rc, id, on_change);
    } else if (s == NULL) {
        ch->next = want != RAFT_SPARE ? NEXT_STANDBY : NEXT_NONE;
        rv = raft_add(&c->raft, &ch->rc, id, c->cfg.peers[slot].raft_addr,
                      on_change);
    } else if (want == RAFT_VOTER && s->role == RAFT_SPARE) {
        ch->next = NEXT_CATCH_UP;
        rv = raft_assign(&c->raft, &ch->rc, id, RAFT_STANDBY, on_change);
    } else if (want == RAFT_VOTER && s->role == RAFT_STANDBY) {
        ch->next = NEXT_NONE; /* catch up, then the voter entry */
        ch->next_query_ms = 0;
        c->promoting = ch;
        return change_started(req, ch);
    } else {
        rv = raft_assign(&c->raft, &ch->rc, id, want, on_change);
    }
    if (rv != 0) {
        free(ch);
        return raft_to_kz(rv);
    }
    return change_started(req, ch);
}

int kz_cons_change(kz_cons *c, kz_cons_req *req, int op, uint64_t id,
                   int role, kz_cons_cb cb)
{
    req->cb = cb;
    req->flags = 0;
    req->result = NULL;
    req->result_len = 0;
    req->index = 0;
    req->priv = NULL;
    list_init(req);
    int rv = change_local(c, req, op, id, role);
    if (rv != KZ_ENOTLEADER)
        return rv;
    int slot = leader_slot(c);
    if (slot < 0)
        return KZ_ENOLEADER;
    unsigned char pl[10];
    pl[0] = (unsigned char)op;
    pl[1] = (unsigned char)role;
    kz_put_be64(pl + 2, id);
    req->type = REQ_CHANGE;
    req->deadline = change_deadline(c);
    return send_to_peer(c, slot, req, F_CHANGE, (const char *)pl, sizeof pl);
}

unsigned kz_cons_members(kz_cons *c, struct kz_cons_member *out, unsigned max)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    unsigned n = 0;
    for (unsigned i = 0; i < conf->n && n < max; i++) {
        out[n].id = conf->servers[i].id;
        switch (conf->servers[i].role) {
        case RAFT_VOTER:
            out[n].role = KZ_CONS_VOTER;
            break;
        case RAFT_STANDBY:
            out[n].role = KZ_CONS_STANDBY;
            break;
        default:
            out[n].role = KZ_CONS_SPARE;
        }
        n++;
    }
    return n;
}

/* ------------------------------------------------- timers and the checker */

/* Requests past their deadline fail with KZ_ETIMEDOUT; a follower read whose
 * read index has been applied completes. Walks every list a req may be on. */
static void expire_list(kz_cons *c, kz_cons_req *head, uint64_t now)
{
    kz_cons_req *r = head->next;
    while (r != head) {
        kz_cons_req *next = r->next;
        if (r->deadline <= now) {
            detach(r);
            c->counters.timeouts++;
            finish(r, KZ_ETIMEDOUT);
        }
        r = next;
    }
}

/* raft 0.22.1 crashes a node that receives an InstallSnapshot while it is
 * taking a snapshot of its own: takeSnapshotCb (src/legacy.c) clears
 * legacy.snapshot_pending before reading it and starts persisting NULL. Only
 * followers receive InstallSnapshot, and the leader sends one only to a
 * follower that needs entries its log no longer has. So a follower takes
 * snapshots only while the leader, asked every second, says it has applied
 * within FOLLOWER_SLACK entries of the commit index (the leader keeps
 * snapshot_trailing entries, 1024 by default, behind its own snapshots);
 * otherwise its threshold is out of reach. Without follower snapshots a
 * follower held its whole log since it last installed a snapshot in memory
 * (raft 0.22 keeps the log between snapshots in memory). See
 * docs/ARCHITECTURE.md. */
#define SNAPSHOT_LOG_BYTES (64ull << 20)
#define FOLLOWER_SLACK 64

static void on_caught_up_status(kz_cons_req *q, int status)
{
    kz_cons *c = q->data;
    c->caught_up_querying = false;
    if (status != 0 || c->closing)
        return;
    raft_id leader;
    const char *addr;
    raft_leader(&c->raft, &leader, &addr);
    if (q->peer.id == leader && q->peer.state == KZ_CONS_LEADER &&
        raft_last_applied(&c->raft) + FOLLOWER_SLACK >= q->peer.commit_index)
        c->caught_up_at_ms = now_ms(c);
}

static void caught_up_tick(kz_cons *c, uint64_t now, raft_id leader)
{
    if (raft_state(&c->raft) != RAFT_FOLLOWER || leader == 0 ||
        leader == c->cfg.id || c->caught_up_querying ||
        now < c->caught_up_next_ms)
        return;
    c->caught_up_next_ms = now + 1000;
    c->caught_up_q.data = c;
    if (kz_cons_query_peer(c, &c->caught_up_q, leader, on_caught_up_status) ==
        KZ_OK)
        c->caught_up_querying = true;
}

static void snapshot_policy(kz_cons *c)
{
    unsigned min = c->cfg.snapshot_threshold ? c->cfg.snapshot_threshold
                                             : 1024;
    unsigned want = UINT_MAX;
    int state = raft_state(&c->raft);
    bool may = state == RAFT_LEADER ||
               (state == RAFT_FOLLOWER && c->caught_up_at_ms != 0 &&
                now_ms(c) - c->caught_up_at_ms < CAUGHT_UP_VALID_MS);
    if (may && c->snap_req != NULL) {
        want = 1; /* asked for (kz_cons_snapshot_now): at the next apply */
    } else if (may && c->snap_bytes >= SNAPSHOT_LOG_BYTES) {
        /* raft 0.22 keeps every entry since the last snapshot in memory:
         * past SNAPSHOT_LOG_BYTES of commands (2 MB photos fill 64 MB in
         * 32 entries), a snapshot now, whatever the entry count. */
        want = 1;
    } else if (may) {
        want = min;
        /* A whole-state image costs the state's size: deferred while the
         * log since the last one is small next to it (see consensus.h). */
        if (c->fsm.state_bytes != NULL && c->snap_entries < 16ull * min) {
            if (!c->state_bytes_known ||
                c->snap_entries - c->state_bytes_at >= 64) {
                c->state_bytes = c->fsm.state_bytes(c->fsm.data);
                c->state_bytes_at = c->snap_entries;
                c->state_bytes_known = true;
            }
            if (c->snap_bytes * 2 < c->state_bytes)
                want = UINT_MAX;
        }
    }
    if (want != c->snapshot_threshold_set) {
        c->snapshot_threshold_set = want;
        raft_set_snapshot_threshold(&c->raft, want);
    }
}

/* The channel to peer id ended from its side: when id is our leader, its
 * process has most likely died (a dead process closes its connections).
 * raft 0.22 followers refuse votes while they still have a leader, and
 * forget it only when their own randomized election timeout (T..2T since
 * the last heartbeat) runs out: an election waits for the later of the
 * followers' timers. So this follower shortens its timeout to a quarter
 * (never under two heartbeats) and stands for election that much sooner.
 * A live leader's heartbeats keep resetting the timer, and pre-vote keeps a
 * follower that was wrong from disturbing anyone; a leader cut off by the
 * network closes nothing and is noticed the usual way. The timeout is
 * restored once another leader is known, or after 2T. */
static void on_peer_gone(void *data, uint64_t id)
{
    kz_cons *c = data;
    raft_id leader;
    const char *addr;
    raft_leader(&c->raft, &leader, &addr);
    if (!c->started || c->closing || id == 0 || leader != id ||
        id == c->cfg.id || raft_state(&c->raft) != RAFT_FOLLOWER)
        return;
    unsigned t = c->cfg.election_timeout_ms;
    unsigned quick = t / 4;
    if (quick < 2 * c->cfg.heartbeat_timeout_ms)
        quick = 2 * c->cfg.heartbeat_timeout_ms;
    if (quick >= t)
        return;
    c->lost_leader_until = now_ms(c) + 2 * (uint64_t)t;
    if (c->lost_leader == id)
        return; /* already shortened (its other channel) */
    c->lost_leader = id;
    c->counters.leader_channel_lost++;
    raft_set_election_timeout(&c->raft, quick);
    kz_log_node(c->cfg.id, KZ_LOG_INFO, "leader connection closed",
                "leader=%llu election_timeout_ms=%u",
                (unsigned long long)id, quick);
}

static void on_timer(uv_timer_t *t)
{
    kz_cons *c = t->data;
    uint64_t now = now_ms(c);
    snapshot_policy(c);
    raft_id leader;
    const char *addr;
    raft_leader(&c->raft, &leader, &addr);
    if (leader != 0)
        c->last_leader_seen = now;
    if (c->lost_leader != 0 &&
        ((leader != 0 && leader != c->lost_leader) ||
         now >= c->lost_leader_until)) {
        c->lost_leader = 0;
        raft_set_election_timeout(&c->raft, c->cfg.election_timeout_ms);
    }
    promote_tick(c, now);
    caught_up_tick(c, now, leader);
    expire_list(c, &c->inflight, now);
    expire_list(c, &c->reads_waiting, now);
    expire_list(c, &c->reads_batch, now);
    for (int i = 0; i < MQ_COUNT; i++)
        expire_list(c, &c->mq[i].waiting, now);
    for (struct conn *k = c->conns; k != NULL; k = k->next)
        expire_list(c, &k->waiting, now);
}

/* The index a follower's request waits to have applied. A read point
 * needs only the entries before the index the leader answered with: for
 * a merged proposal (kz_cons_propose_merged) its entry's, for a read
 * index at or past the barrier's. The leader appended that entry after
 * the call, so every entry committed before the call precedes it, and
 * they are committed since it is (the leader applied it). The entry holds
 * only what the merge combined (read records), or nothing (a barrier),
 * which the read does not need. The entry before was usually committed
 * when the leader appended the entry (FLAG_PRIOR_SENT), and the follower
 * applies it on receiving that entry, so it answers when the leader's
 * reply arrives: waiting for the entry itself took the next
 * AppendEntries, and at one read at a time a commit nudge, a barrier
 * entry, for every read. */
static uint64_t wait_index(const kz_cons_req *r)
{
    bool before = (r->flags & FLAG_MERGE) || r->type == REQ_READ;
    return before && r->index > 0 ? r->index - 1 : r->index;
}

static void on_check(uv_check_t *h)
{
    kz_cons *c = h->data;
    /* Proposals to merge made by this turn's callbacks: one entry. */
    merge_flush(c);
    uint64_t applied = raft_last_applied(&c->raft);
    kz_cons_req *r = c->inflight.next;
    while (r != &c->inflight) {
        kz_cons_req *next = r->next;
        if ((r->flags & FLAG_WAIT_APPLY) && wait_index(r) <= applied) {
            observe_proposal(c, r, 0);
            finish(r, 0);
        }
        r = next;
    }
}

/* ------------------------------------------------------------- lifecycle */

int kz_cons_init(kz_cons **out, uv_loop_t *loop,
                 const struct kz_cons_config *cfg,
                 const struct kz_cons_fsm *fsm, char *errmsg, size_t errlen)
{
    int self = -1;
    for (unsigned i = 0; i < cfg->n_peers; i++)
        if (cfg->peers[i].id == cfg->id)
            self = (int)i;
    if (self < 0 || cfg->n_peers == 0 || cfg->n_peers > KZ_CONS_MAX_PEERS) {
        snprintf(errmsg, errlen, "node %llu is not in the cluster list",
                 (unsigned long long)cfg->id);
        return KZ_ECONFIG;
    }
    kz_cons *c = calloc(1, sizeof *c);
    if (c == NULL)
        return KZ_ENOMEM;
    c->loop = loop;
    c->cfg = *cfg;
    c->cfg.dir = NULL;       /* only used during init */
    c->cfg.bind_addr = NULL;
    c->fsm = *fsm;
    if (c->cfg.request_timeout_ms == 0)
        c->cfg.request_timeout_ms = 5000;
    list_init(&c->inflight);
    list_init(&c->reads_waiting);
    list_init(&c->reads_batch);
    for (int i = 0; i < MQ_COUNT; i++)
        list_init(&c->mq[i].waiting);
    c->mq[MQ_READS].max_in_flight = MERGE_IN_FLIGHT;
    c->mq[MQ_EACH].max_in_flight = EACH_IN_FLIGHT;
    c->mq[MQ_EACH].each = true;
    /* Buckets of the metrics: 1 ms to 10 s; 1 to 4096 reads. */
    static const uint64_t latency_us[KZ_CONS_HIST_BOUNDS] = {
        1000,   2500,    5000,    10000,   25000,   50000,   100000,
        250000, 500000, 1000000, 2500000, 5000000, 10000000};
    static const uint64_t batch_reads[KZ_CONS_HIST_BOUNDS] = {
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    hist_init(&c->counters.proposal_us, latency_us);
    hist_init(&c->counters.barrier_batch, batch_reads);
    if (getrandom(&c->boot_nonce, sizeof c->boot_nonce, 0) !=
        sizeof c->boot_nonce)
        c->boot_nonce = (uint64_t)uv_hrtime();

    struct kz_cons__tls_config tc = {
        .id = cfg->id,
        .address = cfg->peers[self].raft_addr,
        .bind = (cfg->bind_addr && cfg->bind_addr[0]) ? cfg->bind_addr
                                                      : cfg->peers[self].raft_addr,
        .cert = cfg->tls_cert,
        .key = cfg->tls_key,
        .ca = cfg->tls_ca,
        .crl = cfg->tls_crl,
        .plaintext = cfg->peer_plaintext,
        .handshake_timeout_ms = 5000,
        .peer_gone = on_peer_gone,
        .peer_gone_data = c,
    };
    if (cfg->snapshot_dir != NULL)
        snprintf(c->snapdir, sizeof c->snapdir, "%s", cfg->snapshot_dir);
    c->cfg.snapshot_dir = NULL;
    int rv = kz_cons__tls_new(&c->tls, loop, &tc, errmsg, errlen);
    if (rv != 0)
        goto err_after_alloc;
    /* The fetcher's channel layer uses the same identity; its strings are
     * the caller's, which outlive init: keep copies. */
    c->tls_cfg = tc;
    c->tls_cfg.bind = NULL;
    c->tls_cfg.peer_gone = NULL; /* a fetch channel's end says nothing */
    c->tls_cfg.address = c->cfg.peers[self].raft_addr;
    const char *files[4] = {tc.cert, tc.key, tc.ca, tc.crl};
    for (int i = 0; i < 4; i++)
        snprintf(c->tls_files[i], sizeof c->tls_files[i], "%s",
                 files[i] ? files[i] : "");
    c->tls_cfg.cert = c->tls_files[0];
    c->tls_cfg.key = c->tls_files[1];
    c->tls_cfg.ca = c->tls_files[2];
    c->tls_cfg.crl = tc.crl ? c->tls_files[3] : NULL;
    /* raft 0.22: version set by the user; raft_uv_init calls init. */
    c->transport.version = 1;
    c->transport.init = tr_init;
    c->transport.listen = tr_listen;
    c->transport.connect = tr_connect;
    c->transport.close = tr_close;
    rv = raft_uv_init(&c->io, loop, cfg->dir, &c->transport);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft io on %s: %s", cfg->dir,
                 c->io.errmsg[0] ? c->io.errmsg : raft_strerror(rv));
        goto err_after_transport;
    }
    raft_uv_set_segment_size(&c->io, RAFT_SEGMENT_BYTES);
    c->rfsm.version = 1;
    c->rfsm.data = c;
    c->rfsm.apply = fsm_apply;
    c->rfsm.snapshot = fsm_snapshot;
    c->rfsm.restore = fsm_restore;
    rv = raft_init(&c->raft, &c->io, &c->rfsm, cfg->id,
                   cfg->peers[self].raft_addr);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft init: %s", raft_errmsg(&c->raft));
        goto err_after_io;
    }
    c->raft.data = c;
    raft_set_election_timeout(&c->raft, cfg->election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_timeout_ms);
    /* Followers take no snapshots (snapshot_policy); nobody leads yet. */
    raft_set_snapshot_threshold(&c->raft, UINT_MAX);
    c->snapshot_threshold_set = UINT_MAX;
    if (cfg->snapshot_trailing)
        raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&c->raft, true);
    *out = c;
    return KZ_OK;

err_after_io:
    raft_uv_close(&c->io);
err_after_transport:
    kz_cons__tls_free(c->tls);
err_after_alloc:
    free(c);
    return rv == KZ_ECONFIG ? KZ_ECONFIG : KZ_EIO;
}

int kz_cons_start(kz_cons *c, char *errmsg, size_t errlen)
{
    /* Every initial member bootstraps the same configuration: the peers
     * not marked join. A joining node bootstraps nothing. */
    bool joining = false;
    for (unsigned i = 0; i < c->cfg.n_peers; i++)
        if (c->cfg.peers[i].id == c->cfg.id)
            joining = c->cfg.peers[i].join;
    int rv = 0;
    if (!joining) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (unsigned i = 0; i < c->cfg.n_peers; i++) {
            if (c->cfg.peers[i].join)
                continue;
            rv = raft_configuration_add(&conf, c->cfg.peers[i].id,
                                        c->cfg.peers[i].raft_addr, RAFT_VOTER);
            if (rv != 0) {
                raft_configuration_close(&conf);
                snprintf(errmsg, errlen, "cluster list: %s",
                         raft_strerror(rv));
                return KZ_ECONFIG;
            }
        }
        rv = raft_bootstrap(&c->raft, &conf);
        raft_configuration_close(&conf);
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
            snprintf(errmsg, errlen, "bootstrap: %s", raft_errmsg(&c->raft));
            return KZ_EIO;
        }
    }

    /* The channel listener (raft and peer link) is up before raft starts
     * so peers never see a raft node whose link is down. */
    rv = kz_cons__tls_listen(c->tls, on_accept_channel, c, errmsg, errlen);
    c->handles_open++; /* the channel layer, until its close callback */
    if (rv != 0)
        return rv;
    uv_timer_init(c->loop, &c->timer);
    c->timer.data = c;
    c->handles_open++;
    uv_timer_start(&c->timer, on_timer, 50, 50);
    uv_check_init(c->loop, &c->check);
    c->check.data = c;
    c->handles_open++;
    uv_check_start(&c->check, on_check);
    uv_idle_init(c->loop, &c->nudge_idle);
    c->nudge_idle.data = c;
    c->handles_open++;
    uv_idle_init(c->loop, &c->merge_idle);
    c->merge_idle.data = c;
    c->handles_open++;

    rv = raft_start(&c->raft);
    if (rv != 0) {
        snprintf(errmsg, errlen, "raft start: %s", raft_errmsg(&c->raft));
        return KZ_EIO;
    }
    c->started = true;
    c->last_leader_seen = now_ms(c);
    return KZ_OK;
}

static void maybe_finish_close(kz_cons *c)
{
    if (!c->closing || c->handles_open > 0 || c->close_cb == NULL)
        return;
    void (*cb)(void *) = c->close_cb;
    c->close_cb = NULL;
    cb(c->close_data);
}

static void on_handle_closed(uv_handle_t *h)
{
    kz_cons *c = h->data;
    c->handles_open--;
    maybe_finish_close(c);
}

static void on_tls_closed(void *data)
{
    kz_cons *c = data;
    c->handles_open--;
    maybe_finish_close(c);
}

static void on_raft_closed(struct raft *r)
{
    kz_cons *c = r->data;
    raft_uv_close(&c->io);
    /* raft has closed its streams; now every channel and the listener. */
    if (c->started)
        kz_cons__tls_close(c->tls, on_tls_closed, c);
    c->handles_open--; /* the raft "handle" */
    maybe_finish_close(c);
}

void kz_cons_close(kz_cons *c, void (*cb)(void *data), void *data)
{
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    fail_all(&c->inflight, KZ_ESHUTDOWN);
    fail_all(&c->reads_waiting, KZ_ESHUTDOWN);
    fail_all(&c->reads_batch, KZ_ESHUTDOWN);
    for (int i = 0; i < MQ_COUNT; i++)
        fail_all(&c->mq[i].waiting, KZ_ESHUTDOWN);
    while (c->conns != NULL)
        conn_close(c->conns, KZ_ESHUTDOWN);
    if (c->promoting != NULL && !c->promoting->querying)
        change_end(c->promoting, KZ_ESHUTDOWN);
    if (c->timer.loop != NULL)
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->check.loop != NULL)
        uv_close((uv_handle_t *)&c->check, on_handle_closed);
    if (c->nudge_idle.loop != NULL)
        uv_close((uv_handle_t *)&c->nudge_idle, on_handle_closed);
    if (c->merge_idle.loop != NULL)
        uv_close((uv_handle_t *)&c->merge_idle, on_handle_closed);
    c->handles_open++;
    /* Pending raft_apply and barrier callbacks fire with RAFT_SHUTDOWN
     * inside raft_close; the read batch fails through on_barrier. */
    raft_close(&c->raft, on_raft_closed);
}

void kz_cons_free(kz_cons *c)
{
    for (int i = 0; i < PROPS_BUCKETS; i++)
        while (c->props[i] != NULL) {
            struct prop *p = c->props[i];
            c->props[i] = p->hnext;
            free(p->members);
            free(p->result);
            free(p);
        }
    kz_cons__tls_free(c->tls);
    free(c);
}

void kz_cons_get_status(kz_cons *c, struct kz_cons_status *out)
{
    raft_id leader;
    const char *addr;
    raft_leader(&c->raft, &leader, &addr);
    memset(out, 0, sizeof *out);
    out->id = c->cfg.id;
    out->term = raft_current_term(&c->raft);
    out->commit_index = raft_commit_index(&c->raft);
    out->applied_index = raft_last_applied(&c->raft);
    out->last_index = raft_last_index(&c->raft);
    out->leader_id = leader;
    switch (raft_state(&c->raft)) {
    case RAFT_LEADER:
        out->state = KZ_CONS_LEADER;
        break;
    case RAFT_CANDIDATE:
        out->state = KZ_CONS_CANDIDATE;
        break;
    case RAFT_FOLLOWER:
        out->state = KZ_CONS_FOLLOWER;
        break;
    default:
        out->state = KZ_CONS_UNAVAILABLE;
    }
    uint64_t now = now_ms(c);
    if (out->state == KZ_CONS_LEADER)
        out->ms_since_leader = 0;
    else
        out->ms_since_leader = now - c->last_leader_seen;
}

const char *kz_cons_member_role(kz_cons *c, uint64_t id)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id == id)
            switch (conf->servers[i].role) {
            case RAFT_VOTER:
                return "voter";
            case RAFT_STANDBY:
                return "standby";
            default:
                return "spare";
            }
    return NULL;
}

unsigned kz_cons_peer_progress(kz_cons *c, struct kz_cons_peer_progress *out,
                               unsigned max)
{
    if (c->closing || raft_state(&c->raft) != RAFT_LEADER)
        return 0;
    const struct raft_configuration *conf = &c->raft.configuration;
    unsigned n = 0;
    for (unsigned i = 0; i < conf->n && n < max; i++) {
        raft_index m;
        if (raft_match_index(&c->raft, conf->servers[i].id, &m) != 0)
            continue;
        out[n].id = conf->servers[i].id;
        out[n].match_index = m;
        n++;
    }
    return n;
}

void kz_cons_get_counters(kz_cons *c, struct kz_cons_counters *out)
{
    *out = c->counters;
    struct kz_cons__tls_stats ts;
    kz_cons__tls_stats(c->tls, &ts);
    out->channels_accepted = ts.accepted;
    out->channels_refused = ts.refused;
    out->handshakes_failed = ts.handshakes_failed;
    out->channel_pauses = ts.paused;
    out->channel_queued_bytes = ts.queued;
    out->each_ready = raft_state(&c->raft) == RAFT_LEADER &&
                      c->fsm.merge_each != NULL && each_allowed(c);
}

int kz_cons_reload_tls(kz_cons *c, char *errmsg, size_t errlen)
{
    return kz_cons__tls_reload(c->tls, errmsg, errlen);
}
