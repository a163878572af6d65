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
/* Appends one record to batch b after head h (advanced in memory) and
 * rewrites the head in the batch. */
int kz_node_audit_append(kz_stor_batch *b, const char *muni,
                         struct kz_node_audit_head *h, uint64_t raft_index,
                         int64_t at_ms, const Kizuna__AuditContext *ctx);

struct kz_node_audit_check {
    uint64_t entries;
    unsigned char head[32];
    bool ok;
    uint64_t first_bad; /* seq of the first record that breaks the chain */
    char why[128];
};
/* Walks the whole log and recomputes the chain. */
int kz_node_audit_verify(kz_stor *st, const char *muni,
                         struct kz_node_audit_check *out);

/* Records after seq `after`, with from_ms <= time <= to_ms and subject ==
 * subject (when not NULL), at most limit, as a new JSON array; *next is the
 * seq to pass as `after` for more, 0 when done. */
json_t *kz_node_audit_list(kz_stor *st, const char *muni, uint64_t after,
                           int64_t from_ms, int64_t to_ms, size_t limit,
                           const char *subject, uint64_t *next);

#endif
