/*
 * consensus.h — one raft group on a libuv loop (canonical raft 0.22).
 *
 * Owns: the raft instance and its libuv I/O (segments under the data dir),
 * the command envelope, the batching of read barriers, and the peer link: a
 * framed channel over which a follower forwards proposals and read-index
 * requests to the leader and any node asks another for its status. raft and
 * the peer link both run over mutually authenticated TLS 1.3 channels on the
 * raft address (peer_tls.h). It knows nothing of victims: commands and
 * results are opaque bytes handed to the caller's state machine callbacks.
 *
 * Async calls take a caller-owned kz_cons_req whose cb fires exactly once:
 * on success, on failure, on timeout (the req's deadline) and on close. When
 * a submit function returns non-zero the cb never fires.
 *
 * The process must ignore SIGPIPE: raft and the peer link write to sockets
 * whose peer may have died.
 *
 * Failure modes: no leader known, or the leader could not be reached so the
 * request was never sent (KZ_ENOLEADER: safe to retry), the leader lost
 * leadership or quorum (KZ_ENOQUORUM, when raft gives up, or KZ_ETIMEDOUT at
 * the deadline: then the outcome of a proposal is unknown), the peer link
 * broke after the request was sent (KZ_ENET: outcome unknown), closing
 * (KZ_ESHUTDOWN).
 */
#ifndef KZ_CONSENSUS_H
#define KZ_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kz_error.h"

#define KZ_CONS_MAX_PEERS 16
#define KZ_CONS_ADDR_MAX 64
#define KZ_CONS_REGION_MAX 32

typedef struct kz_cons kz_cons;
typedef struct kz_cons_req kz_cons_req;

struct kz_cons_peer {
    uint64_t id;
    char region[KZ_CONS_REGION_MAX];
    char raft_addr[KZ_CONS_ADDR_MAX]; /* host:port: raft and peer link, TLS */
    /* Optional: where this node dials the peer instead of raft_addr (a
     * relay or, in kizuna-chaos, a fault-injecting proxy). The peer is still
     * authenticated by its certificate (CN node-<id>), not by the address. */
    char dial_addr[KZ_CONS_ADDR_MAX];
    /* Not an initial member: left out of the bootstrap configuration. A
     * node that is one itself never bootstraps; it waits until the leader
     * adds it (kz_cons_change) and sends it the log. */
    bool join;
    /* Set by kz_cons: not from the caller's list but learnt from raft's
     * configuration, the leader's messages or kz_cons_set_peer. */
    bool learned;
};

struct kz_cons_config {
    uint64_t id;
    const char *dir; /* raft segments and snapshots */
    const char *bind_addr; /* raft listen address if not our own raft_addr */
    const char *tls_cert, *tls_key, *tls_ca; /* node certificate (CN node-<id>) */
    const char *tls_crl; /* optional: CRL of tls_ca for peer certificates */
    bool peer_plaintext; /* test only: channels without TLS, to measure it */
    struct kz_cons_peer peers[KZ_CONS_MAX_PEERS]; /* includes this node */
    unsigned n_peers;
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    unsigned request_timeout_ms; /* deadline of every kz_cons_req */
    /* File snapshots (with kz_cons_fsm.checkpoint): the directory of
     * checkpoints, served to peers that fetch them (see ckpt.h). */
    const char *snapshot_dir;
    unsigned snapshot_fetch_timeout_ms; /* give up fetching (0: 10 min) */
};

/* The replicated state machine, supplied by the caller. */
struct kz_cons_fsm {
    void *data;
    /* Applies the committed command at index. Deterministic. When want_result
     * is true (the command was proposed by this process and someone waits for
     * it) the callback may set *result to a malloc'd buffer handed to the
     * waiting req. A non-zero return is fatal for the node. */
    int (*apply)(void *data, uint64_t index, const char *cmd, size_t len,
                 bool want_result, char **result, size_t *result_len);
    /* Applied index persisted by the state machine: entries at or below it
     * are skipped on replay. */
    uint64_t (*applied_index)(void *data);
    /* A whole-state image allocated with alloc (raft frees it). */
    int (*snapshot)(void *data, void *(*alloc)(size_t), char **buf,
                    size_t *len);
    /* Replaces the state by an image; may skip it when the local state is
     * already at or past the image's index. Does not take ownership. */
    int (*restore)(void *data, const char *buf, size_t len);
    /* Optional: about how many bytes the state holds. With it, the leader
     * defers a snapshot past snapshot_threshold entries while the commands
     * applied since the last one are under half the state's size (at most
     * 16 x snapshot_threshold entries), so the cost of writing whole-state
     * images stays proportional to what was written. NULL: a snapshot every
     * snapshot_threshold entries. */
    uint64_t (*state_bytes)(void *data);
    /* Optional, file snapshots instead of images: raft 0.22 sends a
     * snapshot as one in-memory message, so with these the raft snapshot
     * is a 24-byte descriptor and the state travels as files (ckpt.h).
     * checkpoint writes the state at the applied index into dir (which
     * does not exist yet) as files that never change afterwards; install
     * replaces the state by such a directory, which it must leave as it
     * is (the node serves it to others). A node behind a descriptor uses a
     * local checkpoint at or past it, or fetches the newest one a peer has
     * (the leader first) while raft waits. When both are set, snapshot and
     * restore are not used. */
    int (*checkpoint)(void *data, const char *dir);
    int (*install)(void *data, const char *dir);
    /* Optional: combines n commands proposed with kz_cons_propose_merged
     * (n >= 2, in the order they are to apply) into one whose apply does
     * what applying each in turn would; *out is malloc'd. Called on the
     * leader only. Non-zero: they are proposed one by one. NULL: merged
     * proposals are ordinary ones. */
    int (*merge)(void *data, const char *const *cmds, const size_t *lens,
                 size_t n, char **out, size_t *out_len);
    /* Optional: the same for commands proposed with kz_cons_propose_batched,
     * each of which keeps its own result. When the merged command is
     * applied with want_result, its result is the n results in order, each
     * as a 4-byte big-endian length then its bytes; each proposer receives
     * its own (NULL when the result holds none for it). NULL: batched
     * proposals are ordinary ones. A node with merge_each says so in its
     * status queries to its leader (every second), and a leader merges
     * only while every voter and standby has said so: its state machine
     * must apply what any peer's merge_each makes. */
    int (*merge_each)(void *data, const char *const *cmds,
                      const size_t *lens, size_t n, char **out,
                      size_t *out_len);
    /* Optional: called when the node cannot go on (a snapshot that could
     * neither be fetched nor installed: raft 0.22 cannot continue after a
     * failed restore). Must not return; NULL: abort(). */
    void (*fatal)(void *data, const char *what, int code, const char *detail);
};

enum kz_cons_state {
    KZ_CONS_UNAVAILABLE = 0,
    KZ_CONS_FOLLOWER = 1,
    KZ_CONS_CANDIDATE = 2,
    KZ_CONS_LEADER = 3
};

struct kz_cons_status {
    uint64_t id;
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t leader_id;
    int state;                 /* enum kz_cons_state */
    uint64_t ms_since_leader;  /* 0 on the leader; how stale local state may be */
};

typedef void (*kz_cons_cb)(kz_cons_req *req, int status);

/* A caller-owned asynchronous request. Set data; the rest is filled in. */
struct kz_cons_req {
    void *data;
    kz_cons_cb cb;
    /* Results, valid inside cb: */
    char *result;       /* propose: malloc'd result, owned by the caller now */
    size_t result_len;
    uint64_t index;     /* propose: index it was applied at; read: index read at */
    struct kz_cons_status peer; /* status query */
    /* Private. */
    int type;
    int flags;
    uint64_t deadline;
    uint64_t started_ns; /* propose: uv_hrtime() at the call, for metrics */
    uint64_t reqid;
    void *priv;
    kz_cons_req *prev, *next;
};

int kz_cons_init(kz_cons **out, uv_loop_t *loop,
                 const struct kz_cons_config *cfg,
                 const struct kz_cons_fsm *fsm, char *errmsg, size_t errlen);
/* Bootstraps on first start (every initial member bootstraps the same
 * configuration), starts raft and listens on the peer link. */
int kz_cons_start(kz_cons *c, char *errmsg, size_t errlen);
/* Fails every pending req with KZ_ESHUTDOWN, closes raft and every handle,
 * then calls cb; free with kz_cons_free after cb. */
void kz_cons_close(kz_cons *c, void (*cb)(void *data), void *data);
void kz_cons_free(kz_cons *c);

/* Proposes cmd (copied). On the leader it goes to raft; on a follower it is
 * forwarded to the leader. On success req->result holds the state machine's
 * result for it. */
int kz_cons_propose(kz_cons *c, kz_cons_req *req, const char *cmd, size_t len,
                    kz_cons_cb cb);
/* A proposal that is also a linearizable read point: cb fires with 0 once
 * cmd is committed AND applied by this node (a follower waits for its own
 * apply of req->index), so the local state then holds everything committed
 * before the call, and cmd with it. The entry that makes a read
 * linearizable can so carry a record of the read (the audit log). */
int kz_cons_propose_read(kz_cons *c, kz_cons_req *req, const char *cmd,
                         size_t len, kz_cons_cb cb);
/* A read point like kz_cons_propose_read, for a command the leader may
 * merge with others proposed so (on any node) into one entry (fsm.merge):
 * proposals arriving together share an entry, its replication and its
 * apply. cb fires with 0 once the entry is committed and this node has
 * applied every entry before it, so the local state holds everything
 * committed before the call; req->index is the entry's. On a follower the
 * entry itself may not be applied yet: the read does not need what the
 * merge combined (records of reads), and waiting for it took another
 * round. req->result is NULL when it was merged (no result of its own). */
int kz_cons_propose_merged(kz_cons *c, kz_cons_req *req, const char *cmd,
                           size_t len, kz_cons_cb cb);
/* A proposal like kz_cons_propose, which the leader may merge with others
 * proposed so (on any node) into one entry (fsm.merge_each): commands
 * arriving together share an entry, its replication and its apply, and
 * each proposer still receives its own result in req->result. As with
 * kz_cons_propose, cb fires once the entry is applied on the leader; a
 * follower does not wait for its own apply. */
int kz_cons_propose_batched(kz_cons *c, kz_cons_req *req, const char *cmd,
                            size_t len, kz_cons_cb cb);
/* Linearizable read point: when cb fires with 0, the local state has applied
 * everything committed before the call. Reads arriving together share one
 * raft barrier; req->index is the leader's applied index once it applied
 * the barrier (the barrier's index or later). A follower has then applied
 * at least up to the entry before req->index: when that is the barrier,
 * the barrier itself changes no state. */
int kz_cons_read_index(kz_cons *c, kz_cons_req *req, kz_cons_cb cb);
/* Asks peer id for its status over the peer link (req->peer). */
int kz_cons_query_peer(kz_cons *c, kz_cons_req *req, uint64_t id,
                       kz_cons_cb cb);

/* Makes this node take a raft snapshot (a checkpoint with file snapshots)
 * at its next applied entry, which a read barrier through the leader
 * provides. cb fires with 0 once it is taken (req->index: the applied
 * index then); KZ_EIO when it failed, KZ_ETIMEDOUT past the request
 * timeout. KZ_EBUSY while one is asked already; KZ_ENOTLEADER on a
 * follower that is not caught up (the leader says so every second) or a
 * candidate: raft 0.22.1 crashes a follower that receives a snapshot while
 * taking one. */
int kz_cons_snapshot_now(kz_cons *c, kz_cons_req *req, kz_cons_cb cb);

void kz_cons_get_status(kz_cons *c, struct kz_cons_status *out);
/* Configured role of a member: "voter", "standby", "spare" or NULL. */
const char *kz_cons_member_role(kz_cons *c, uint64_t id);
/* Membership. */
enum kz_cons_role { KZ_CONS_VOTER = 1, KZ_CONS_STANDBY = 2, KZ_CONS_SPARE = 3 };
enum kz_cons_change_op { KZ_CONS_ADD = 1, KZ_CONS_REMOVE = 2, KZ_CONS_TRANSFER = 3 };
struct kz_cons_member {
    uint64_t id;
    int role; /* enum kz_cons_role */
};
/* Changes the configuration through the leader (forwarded from a follower).
 * TRANSFER hands leadership to id, a voter (0: the most up-to-date one;
 * the leader itself: success at once); cb fires with 0 once the old leader
 * has stepped down, KZ_ETIMEDOUT when it still leads after raft gave up,
 * KZ_EINVAL when id is not a voter; role is ignored.
 * ADD puts id (which must be in cfg.peers: its address) in the role: a new
 * voter or standby is added as a spare first, and raft catches it up before
 * it counts. ADD of a member changes its role. REMOVE takes id out; the
 * leader cannot remove itself (KZ_EINVAL: transfer leadership first).
 * Already so: success. cb fires once the last configuration entry is
 * committed; another change in flight: KZ_EBUSY; id unknown: KZ_ENOTFOUND.
 * The deadline is at least 60 s (a catch-up can be long). */
int kz_cons_change(kz_cons *c, kz_cons_req *req, int op, uint64_t id,
                   int role, kz_cons_cb cb);
/* Adds (or updates) the address of a peer that has no entry in
 * cfg.peers: the replicated address book of the caller, so that an ADD can
 * name a node no configuration file lists. An entry of cfg.peers is left
 * as it is (this node's own list wins). KZ_ETOOBIG past
 * KZ_CONS_MAX_PEERS peers. */
int kz_cons_set_peer(kz_cons *c, uint64_t id, const char *region,
                     const char *raft_addr);
/* The latest configuration this node knows (appended, maybe not yet
 * committed): up to max members into out; returns how many. */
unsigned kz_cons_members(kz_cons *c, struct kz_cons_member *out, unsigned max);
/* Replication progress of one server, as the leader sees it. */
struct kz_cons_peer_progress {
    uint64_t id;
    uint64_t match_index; /* highest log index known to be stored there */
};
/* On the leader: every server of the configuration (itself included) with
 * its match index, up to max into out; returns how many. 0 on any node
 * that is not the leader: only the leader tracks its followers. */
unsigned kz_cons_peer_progress(kz_cons *c, struct kz_cons_peer_progress *out,
                               unsigned max);
/* A histogram with fixed buckets, for metrics: bucket[i] counts the values
 * in (le[i-1], le[i]], bucket[KZ_CONS_HIST_BOUNDS] those above the last
 * bound; sum is the total of the values, in le's unit. */
#define KZ_CONS_HIST_BOUNDS 13
struct kz_cons_hist {
    uint64_t le[KZ_CONS_HIST_BOUNDS]; /* ascending upper bounds */
    uint64_t bucket[KZ_CONS_HIST_BOUNDS + 1];
    uint64_t count, sum;
};
/* Counters for metrics. */
struct kz_cons_counters {
    uint64_t proposals, forwarded, barriers, barrier_reads, timeouts;
    uint64_t channels_accepted, channels_refused, handshakes_failed;
    /* Times a peer channel stopped reading one side because the other
     * side's write queue was full (flow control). */
    uint64_t channel_pauses;
    uint64_t channel_queued_bytes; /* now, in peer channels' write queues */
    /* Times this follower heard its leader's channel close and shortened
     * its election timeout (see on_peer_gone in consensus.c). */
    uint64_t leader_channel_lost;
    /* Empty entries this leader appended so that followers learn a commit
     * they wait for without waiting for a heartbeat (nudge_commit in
     * consensus.c). */
    uint64_t commit_nudges;
    /* Entries this leader made of several merged proposals, and how many
     * proposals they held (kz_cons_propose_merged). */
    uint64_t merged_entries, merged_proposals;
    /* The same for proposals that keep their results
     * (kz_cons_propose_batched). */
    uint64_t each_entries, each_proposals;
    /* Batched proposals this leader proposed alone because some voter or
     * standby had not said it can apply merged ones (an older version,
     * or not heard from since this leader started). */
    uint64_t each_alone;
    /* Now: this node leads and merges batched proposals (every voter and
     * standby said it can apply them). */
    bool each_ready;
    /* Proposals made on this node (kz_cons_propose, kz_cons_propose_read)
     * that succeeded: microseconds from the call to the callback, the
     * round trip to the leader included when forwarded. Proposals served
     * for a peer are counted by that peer. */
    struct kz_cons_hist proposal_us;
    /* Reads served by each read barrier this node started (leader). */
    struct kz_cons_hist barrier_batch;
};
/* Reloads the node certificate, key and CA for new peer channels. */
int kz_cons_reload_tls(kz_cons *c, char *errmsg, size_t errlen);
void kz_cons_get_counters(kz_cons *c, struct kz_cons_counters *out);
/* raft's kernel AIO contexts (one a log segment's writer) handed to a
 * thread of their own to be destroyed, and how many of those are done:
 * process-wide, since this process started. */
void kz_cons_aio_destroys(uint64_t *handed, uint64_t *done);

#endif
