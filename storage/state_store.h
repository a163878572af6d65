/*
 * state_store.h — the replicated state machine's RocksDB store.
 *
 * Owns one RocksDB database with three column families:
 *   meta     format version and the applied raft index
 *   records  the records themselves (keys chosen by the caller)
 *   index    secondary indexes and counters (keys chosen by the caller)
 * The store knows nothing of victims or raft: keys and values are bytes.
 *
 * Happy path: the state machine builds one kz_stor_batch per command and
 * commits it together with the command's raft index, so the data and the
 * applied index move atomically. After a crash, RocksDB recovers a prefix of
 * its committed batches and kz_stor_applied_index() says where replay from the
 * raft log must resume.
 *
 * Durability decision: batches are written with RocksDB's WAL on but not
 * fsynced. The raft log (fsynced by raft) is the write-ahead log: whatever
 * RocksDB loses in an OS crash is re-applied from it on restart, because
 * apply skips only indexes <= the persisted applied index.
 *
 * Failure modes: every call that can fail returns a kz_error code and writes a
 * message into the store's errmsg (kz_stor_errmsg()).
 */
#ifndef KZ_STATE_STORE_H
#define KZ_STATE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kz_error.h"

enum kz_stor_cf {
    KZ_STOR_CF_META = 0,
    KZ_STOR_CF_RECORDS = 1,
    KZ_STOR_CF_INDEX = 2,
    KZ_STOR_CF_BLOBS = 3, /* large values (photos), in blob files */
    /* Keys "<term>\0<rest>" read only by the whole term: a scan of one
     * term's keys (an iterator whose prefix ends with the '\0') or a get.
     * Held in a hash of small skip lists by term, not one ordered list, so
     * that inserting the ~35 keyed-hash terms of a registration costs a few
     * comparisons each instead of a walk down a list of every key. A scan
     * of a prefix that is not a whole term still works, at the cost of
     * sorting the memtable: do not do it on a hot path. */
    KZ_STOR_CF_TERMS = 4,
    KZ_STOR_CF__COUNT = 5
};

/* 2: the name and birth-date terms moved from index to terms (a store of
 * format 1 is moved over when it is opened). */
#define KZ_STOR_FORMAT_VERSION 2

typedef struct kz_stor kz_stor;
typedef struct kz_stor_batch kz_stor_batch;
typedef struct kz_stor_iter kz_stor_iter;

/* Opens (creating if missing) the store in directory path. On failure returns
 * a code and, if errmsg is not NULL, a message in errmsg. */
int kz_stor_open(const char *path, kz_stor **out, char *errmsg, size_t errlen);

/* How a store sits among the replicas of one state (kz_stor_open_with). */
struct kz_stor_open_opts {
    /* This replica's place, 0..replicas-1; replicas 0: alone (as
     * kz_stor_open: 64 MB write buffers, 64 MB of WAL at most). Replicas
     * apply the same commands, so with the same sizes they flush the same
     * families at the same moment, on a full memtable or a full WAL: a
     * flush of terms is seconds of CPU, and when the replicas share
     * machines (or the leader and the follower that makes its quorum
     * flush together) every commit waits meanwhile. Each replica so gets
     * sizes of its own, in a band of its own with a random place in it:
     * the terms write buffer from 64 MB down to 32 MB, the WAL cap from 64
     * MB up to 96 MB. */
    unsigned replica, replicas;
};
int kz_stor_open_with(const char *path, const struct kz_stor_open_opts *o,
                      kz_stor **out, char *errmsg, size_t errlen);
/* The write buffer of the terms family this store was opened with, bytes
 * (the other families have 64 MB). */
size_t kz_stor_terms_buffer(const kz_stor *st);
void kz_stor_close(kz_stor *st);
const char *kz_stor_errmsg(const kz_stor *st);

/* Index of the last command whose batch was committed (0 for a new store). */
uint64_t kz_stor_applied_index(const kz_stor *st);

/* Point read. On KZ_OK *val is malloc'd (caller frees with free()) and
 * *vlen set; KZ_ENOTFOUND when the key is absent. */
int kz_stor_get(kz_stor *st, int cf, const void *key, size_t klen,
                char **val, size_t *vlen);

/* Batches: the caller owns the batch and frees it with kz_stor_batch_free
 * whether or not it was committed (once). Keys and values are copied. */
kz_stor_batch *kz_stor_batch_new(kz_stor *st);
void kz_stor_batch_put(kz_stor_batch *b, int cf, const void *key, size_t klen,
                       const void *val, size_t vlen);
void kz_stor_batch_delete(kz_stor_batch *b, int cf, const void *key,
                          size_t klen);
size_t kz_stor_batch_count(const kz_stor_batch *b);
/* Writes the batch plus the applied index atomically. The applied index must
 * be greater than the current one. */
int kz_stor_batch_commit(kz_stor *st, kz_stor_batch *b, uint64_t applied_index);
/* Puts and deletes of family cf that committed batches held since the store
 * was opened (the applied index of each commit not counted): what apply
 * costs in memtable inserts. 0 for a bad cf. */
uint64_t kz_stor_writes(const kz_stor *st, int cf);
/* The family's name ("meta", "records", "index", "blobs", "terms"; "?"
 * for a bad cf), for metrics and reports. */
const char *kz_stor_cf_name(int cf);
void kz_stor_batch_free(kz_stor_batch *b);

/* Iterates keys of cf that start with prefix, beginning at the first key >=
 * start (start may be NULL to begin at prefix). Pointers returned by
 * kz_stor_iter_next stay valid until the next call. */
kz_stor_iter *kz_stor_iter_new(kz_stor *st, int cf, const void *prefix,
                               size_t plen, const void *start, size_t slen);
bool kz_stor_iter_next(kz_stor_iter *it, const char **key, size_t *klen,
                       const char **val, size_t *vlen);
void kz_stor_iter_free(kz_stor_iter *it);

/* Whole-state dump for raft snapshots: a consistent point-in-time image of
 * every column family, in the format documented in docs/ARCHITECTURE.md.
 * The buffer is allocated with alloc (so raft can own it) and has `header`
 * bytes reserved at its start for the caller. */
int kz_stor_dump(kz_stor *st, void *(*alloc)(size_t), size_t header,
                 char **buf, size_t *len);
/* File snapshots: a RocksDB checkpoint of the state at the applied index in
 * dir (which must not exist): SST and blob files hard-linked, MANIFEST and
 * the rest copied; its files never change afterwards. */
int kz_stor_checkpoint(kz_stor *st, const char *dir);
/* Replaces the whole state by a checkpoint (from kz_stor_checkpoint, maybe
 * another node's), leaving dir as it is: stages <path>.new (links to the
 * immutable files, copies of the rest), swaps it in through <path>.old and
 * reopens. A crash in between is recovered by the next open (the old state
 * comes back). On failure the old state is reopened when it can be; the
 * store is unusable (KZ_EIO) otherwise. */
int kz_stor_install(kz_stor *st, const char *dir);
/* Sets the applied index outside any command: for a state restored from a
 * backup into a new cluster, whose raft log starts again at 1 (0 there). */
int kz_stor_reset_applied(kz_stor *st, uint64_t index);
/* Reads only the applied index recorded in a dump. */
int kz_stor_dump_index(const char *buf, size_t len, uint64_t *index);
/* Replaces the whole state by a dump. */
int kz_stor_load(kz_stor *st, const char *buf, size_t len);

/* SHA-256 over every entry of every column family (cf, key and value, each
 * length-prefixed) but the applied index, at one point in time, with that
 * point's applied index and entry count. Replicas that applied the same
 * commands have the same digest (stored values are sealed
 * deterministically): kizuna-chaos's convergence check. */
int kz_stor_digest(kz_stor *st, unsigned char out[32], uint64_t *index,
                   uint64_t *entries);

/* Approximate on-disk size in bytes (for metrics and /v1/cluster). */
uint64_t kz_stor_disk_size(kz_stor *st);
/* RocksDB's estimate of the bytes the keys in [start, limit) of column
 * family cf take in SST files (compressed), for metrics; 0 on error. */
uint64_t kz_stor_range_size(kz_stor *st, int cf, const char *start,
                            size_t start_len, const char *limit,
                            size_t limit_len);

/* An integer RocksDB property, for metrics. cf >= 0: of that column
 * family; KZ_STOR_CF_ALL: summed over every column family, for properties
 * kept per column family ("rocksdb.estimate-live-data-size"). A property
 * of the whole database ("rocksdb.is-write-stopped",
 * "rocksdb.actual-delayed-write-rate", "rocksdb.num-running-compactions")
 * is read with any single cf. KZ_ENOTFOUND when RocksDB has no integer
 * property of that name; KZ_EINVAL for a bad cf. */
#define KZ_STOR_CF_ALL (-1)
int kz_stor_property_u64(kz_stor *st, int cf, const char *name,
                         uint64_t *out);

/* Compacts the range of one key (with blob garbage collection), so the
 * replaced versions of its value leave the files; maintenance, not state. */
void kz_stor_compact_key(kz_stor *st, int cf, const void *key, size_t klen);

/* CRC-32C (Castagnoli) of n bytes: for files that guard their own records. */
uint32_t kz_stor_crc32c(const void *data, size_t n);

#endif
