/*
 * audit_queue.h — a node's durable queue of audit records it could not
 * commit yet: stale reads (DESIGN.md "Data path" 5). A stale read is
 * answered from local state, possibly by a node cut off from the majority;
 * its audit record is appended here and synced to disk before the answer
 * leaves, and handed to the cluster (an AuditAppend with the queue's id and
 * the queue numbers) whenever a leader is reachable.
 *
 * File: <data_dir>/audit-queue: "KZAQ" | u64 queue id, then records of
 *   u32 length | u32 CRC-32C of (seq | payload) | u64 seq | payload
 * (big-endian; payload a packed kizuna.AuditContext). A torn last record
 * (crash mid-write) fails its check and is cut off at open. Queue numbers
 * start at 1 and never repeat for a node: the replicated state keeps the
 * last one appended per queue (meta "auditq/<queue id>", register.c), which
 * makes a hand-over that is retried after a lost answer append once. The
 * file is emptied when everything in it has been handed over.
 */
#ifndef KZ_NODE_AUDIT_QUEUE_H
#define KZ_NODE_AUDIT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

struct kz_node_audit_queue;

/* Opens (creating) the queue file. Then call kz_node_audit_queue_trim
 * with the state's last appended number for kz_node_audit_queue_id(). */
int kz_node_audit_queue_open(struct kz_node_audit_queue **out,
                             const char *path, char *errmsg, size_t errlen);
/* The queue's id: random, chosen when the file is created, so a node whose
 * data directory was wiped never reuses numbers the cluster has seen. */
uint64_t kz_node_audit_queue_id(const struct kz_node_audit_queue *q);
void kz_node_audit_queue_close(struct kz_node_audit_queue *q);

/* Group commit: records of reads arriving together share one write and one
 * fdatasync, which may run on another thread while the loop goes on.
 *   stage   packs a record in memory (not in the queue yet);
 *   begin   numbers every staged record and makes them the batch to write
 *           (KZ_EINVAL while one is being written, or none is staged);
 *   write   writes the batch after the file's end and syncs it: blocking
 *           I/O that touches nothing but the batch and the file, so it may
 *           run on a worker thread between begin and end;
 *   end     with write's status: on KZ_OK the records are in the queue (to
 *           hand over); otherwise they are cut off the file and their
 *           numbers reused, and the reads they record must not be
 *           answered. Records staged meanwhile wait for the next begin. */
int kz_node_audit_queue_stage(struct kz_node_audit_queue *q,
                              const Kizuna__AuditContext *ctx);
size_t kz_node_audit_queue_staged(const struct kz_node_audit_queue *q);
int kz_node_audit_queue_begin(struct kz_node_audit_queue *q);
int kz_node_audit_queue_write(struct kz_node_audit_queue *q);
int kz_node_audit_queue_end(struct kz_node_audit_queue *q, int status);

/* Records not yet handed over (queue number > handed), at most max, as a
 * packed kizuna.Command ready to seal and propose (AuditAppend with
 * queue_node and queue_first_seq); *cmd malloc'd, NULL when nothing is
 * pending. */
int kz_node_audit_queue_command(struct kz_node_audit_queue *q,
                                uint64_t handed, size_t max,
                                const char *muni,
                                int64_t now_ms, uint8_t **cmd, size_t *len,
                                size_t *count);

/* Forgets records up to handed; empties the file once all are handed.
 * New records are numbered after handed. */
int kz_node_audit_queue_trim(struct kz_node_audit_queue *q, uint64_t handed);

/* The last queue number of queue_id the replicated state has appended. */
uint64_t kz_node_audit_queue_handed(kz_stor *st, uint64_t queue_id);

/* Records waiting (for metrics and tests). */
size_t kz_node_audit_queue_length(const struct kz_node_audit_queue *q);

#endif
