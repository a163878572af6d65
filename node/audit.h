/*
 * audit.h — the audit log (アクセス記録): append-only and hash-chained, in
 * the replicated state.
 *
 * Every record is stored under <muni>/a/<seq as 16 hex digits> (records
 * column family) as a packed kizuna.AuditRecord that carries the SHA-256 of
 * the record before it (32 zero bytes for the first). The head — last seq
 * and the SHA-256 of its stored bytes — is kept in meta "audit/head". So
 * anyone holding the records can recompute the chain, and a changed, removed
 * or reordered record breaks it from that record on.
 *
 * Records are written by apply in the batch of the command they describe,
 * with the command's time and raft index: every replica holds the same log.
 *
 * Retention: kz_node_audit_prune deletes the oldest records and keeps, in
 * meta "audit/checkpoint", the seq, hash and time of the last one deleted.
 * The chain then starts at the checkpoint: the first record kept must link
 * to its hash, so a removed or changed record is still caught, and a
 * checkpoint whose hash was changed breaks the chain at the first record
 * kept. Prune only deletes records that link correctly, so a break is never
 * pruned away.
 */
#ifndef KZ_NODE_AUDIT_H
#define KZ_NODE_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

struct kz_node_audit_head {
    uint64_t seq;
    unsigned char hash[32];
};

/* Reads the head (seq 0 and a zero hash for an empty log). */
int kz_node_audit_load_head(kz_stor *st, struct kz_node_audit_head *h);
/* Appends one record to batch b after head h (advanced in memory). The
 * caller writes the head once its records are appended
 * (kz_node_audit_put_head): an import's 500 records rewrote it 500 times,
 * each a memtable insert. */
int kz_node_audit_append(kz_stor_batch *b, const char *muni,
                         struct kz_node_audit_head *h, uint64_t raft_index,
                         int64_t at_ms, const Kizuna__AuditContext *ctx);
/* Writes head h into batch b. */
void kz_node_audit_put_head(kz_stor_batch *b,
                            const struct kz_node_audit_head *h);

/* The retention checkpoint: what the chain starts from once records were
 * pruned. Stored in meta "audit/checkpoint" as 48 bytes: seq (be64), hash
 * (32 bytes), at_ms (be64, two's complement). */
struct kz_node_audit_checkpoint {
    uint64_t seq;           /* last pruned seq (0: nothing pruned) */
    unsigned char hash[32]; /* SHA-256 of that record's stored bytes */
    int64_t at_ms;          /* its time */
};

/* Reads the checkpoint (all zero when nothing was ever pruned). KZ_ECORRUPT
 * when the stored value has the wrong size. */
int kz_node_audit_load_checkpoint(kz_stor *st,
                                  struct kz_node_audit_checkpoint *cp);

/* In batch b: deletes, in seq order from the first record still stored, the
 * records with at_ms < before_ms, at most max of them (0: none), and writes
 * the new checkpoint (meta "audit/checkpoint") to the last one deleted. The
 * run ends at the first record not older than before_ms (times from
 * different proposers need not be monotonic), so what stays is always a
 * contiguous tail of the log.
 * *pruned is the number deleted, *cp the checkpoint after (either may be
 * NULL). Never deletes the head record (the newest), so the chain always has
 * an anchor. Stops early, at KZ_OK, before a record that does not link to
 * the one before it (or does not decode): what breaks the chain stays for
 * kz_node_audit_verify to report.
 *
 * Deterministic (no clock): the caller passes before_ms, chosen by the
 * proposer. Reads the store as committed, not b: the caller must not prune
 * twice, nor prune records appended, in the same uncommitted batch.
 * Appending after the prune in the same batch is fine (the head it loads is
 * the committed one, which prune leaves in place). */
int kz_node_audit_prune(kz_stor *st, kz_stor_batch *b, const char *muni,
                        int64_t before_ms, uint64_t max, uint64_t *pruned,
                        struct kz_node_audit_checkpoint *cp);

struct kz_node_audit_check {
    uint64_t entries;   /* records walked (those still stored) */
    uint64_t first_seq; /* seq the walk started at: checkpoint.seq + 1 */
    struct kz_node_audit_checkpoint checkpoint;
    unsigned char head[32];
    bool ok;
    uint64_t first_bad; /* seq of the first record that breaks the chain */
    char why[128];
};
/* Walks the log from the checkpoint (seq checkpoint.seq + 1, linked to
 * checkpoint.hash; seq 1 and a zero hash when nothing was pruned) to the
 * head and recomputes the chain. Records at or before the checkpoint are
 * not part of the chain and not looked at. */
int kz_node_audit_verify(kz_stor *st, const char *muni,
                         struct kz_node_audit_check *out);

/* Records after seq `after`, with from_ms <= time <= to_ms and subject ==
 * subject (when not NULL), at most limit, as a new JSON array; *next is the
 * seq to pass as `after` for more, 0 when done. */
json_t *kz_node_audit_list(kz_stor *st, const char *muni, uint64_t after,
                           int64_t from_ms, int64_t to_ms, size_t limit,
                           const char *subject, uint64_t *next);
/* The same, also only records of calls made by organisation org (when not
 * NULL). */
json_t *kz_node_audit_list_org(kz_stor *st, const char *muni, uint64_t after,
                               int64_t from_ms, int64_t to_ms, size_t limit,
                               const char *subject, const char *org,
                               uint64_t *next);

#endif
