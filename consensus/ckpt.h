/*
 * ckpt.h — file snapshots: checkpoints kept on disk and fetched from peers
 * (internal to consensus/).
 *
 * raft 0.22 sends a snapshot as one in-memory message, so the raft snapshot
 * of a file-snapshot state machine is only a 24-byte descriptor
 *   u64 magic "KZCKPT01" | u64 raft index | u64 state machine index
 * naming a checkpoint: a directory `<root>/<raft index as 20 digits>` whose
 * files the state machine wrote (kz_cons_fsm.checkpoint) and never changes.
 * A node that must install a descriptor it is behind finds a complete local
 * checkpoint at or past its index, or fetches one from a peer over the peer
 * link (the same mutually authenticated TLS channels), then hands the
 * directory to the state machine (kz_cons_fsm.install).
 *
 * Frames on the peer link (u32 length | u8 type | u64 reqid | payload):
 *   F_CKPT_LIST  u64 min index
 *   F_CKPT_INFO  u32 status | u64 index | u32 n | n x (u16 len | name |
 *                u64 size)            (the newest checkpoint >= min index)
 *   F_CKPT_GET   u64 index | u64 offset | u32 length | u16 len | name
 *   F_CKPT_DATA  u32 status | 32-byte SHA-256 of the data | data
 * A GET asks for at most KZ_CKPT_CHUNK bytes; the answer carries exactly the
 * bytes asked for (files of a checkpoint never change), or a status.
 *
 * On the fetching side, files are written into `<root>/incoming-<index>`;
 * every chunk's SHA-256 is checked before it is written; every 64 MB and at
 * the end of each file the data is fsynced and `.progress` records how far
 * each file got, so a fetch cut off (connection lost, node killed) resumes
 * there, from the same peer or another holding the same checkpoint. A
 * complete fetch is fsynced and renamed to `<root>/<index>`: a directory
 * with a 20-digit name is always complete.
 *
 * Names in a checkpoint are plain file names: 1..128 bytes of
 * [A-Za-z0-9._-], not starting with '.', so no name can leave its
 * directory.
 */
#ifndef KZ_CONS_CKPT_H
#define KZ_CONS_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kz_fs.h"
#include "peer_tls.h"

#define KZ_CKPT_CHUNK (1u << 20)
#define KZ_CKPT_DESC_LEN 24
#define KZ_CKPT_NAME_MAX KZ_FS_NAME_MAX
#define KZ_CKPT_FILES_MAX 100000
#define KZ_CKPT_GET_MAX (8 + 8 + 4 + 2 + KZ_CKPT_NAME_MAX)
#define KZ_CKPT_DATA_HEADER (4 + 32)

/* Peer-link frame layout and the frame types of this protocol (the other
 * types are consensus.c's). */
#define KZ_CONS__FRAME_HEADER 13
#define KZ_CONS__FRAME_MAX (64u << 20)
enum {
    KZ_F_CKPT_LIST = 8,
    KZ_F_CKPT_INFO = 9,
    KZ_F_CKPT_GET = 10,
    KZ_F_CKPT_DATA = 11
};

/* The next whole frame in buf[*off..len): 1 with its type, reqid and payload
 * (and *off moved past it), 0 when more bytes are needed, -1 when the
 * length is out of bounds (close the connection). Both ends of the peer
 * link parse with it. */
struct kz_cons__frame {
    int type;
    uint64_t reqid;
    const unsigned char *payload;
    size_t len;
};
int kz_cons__frame_next(const unsigned char *buf, size_t len, size_t *off,
                        struct kz_cons__frame *out);

struct kz_cons__ckpt_info {
    uint64_t index;
    unsigned n;
    struct kz_fs_file *files; /* malloc'd; kz_cons__ckpt_info_free */
    uint64_t total;                   /* sum of sizes */
};

/* ---- pure codecs (fuzzed: tests/fuzz/fuzz_ckpt.c) ---- */
void kz_cons__ckpt_desc_build(uint64_t index, uint64_t fsm_index,
                              unsigned char out[KZ_CKPT_DESC_LEN]);
/* KZ_OK or KZ_ECORRUPT. */
int kz_cons__ckpt_desc_parse(const unsigned char *p, size_t len,
                             uint64_t *index, uint64_t *fsm_index);
/* Returns the request's length (out: KZ_CKPT_GET_MAX bytes), 0 for a bad
 * name. */
size_t kz_cons__ckpt_get_build(uint64_t index, uint64_t offset,
                               uint32_t length, const char *name,
                               unsigned char *out);
/* KZ_OK or KZ_ECORRUPT (bad length, name, or a length over a chunk). */
int kz_cons__ckpt_get_parse(const unsigned char *p, size_t len,
                            uint64_t *index, uint64_t *offset,
                            uint32_t *length,
                            char name[KZ_CKPT_NAME_MAX + 1]);
/* An INFO payload: malloc'd into *out. status != 0: no checkpoint. */
int kz_cons__ckpt_info_build(int status, const struct kz_cons__ckpt_info *in,
                             unsigned char **out, size_t *len);
/* KZ_OK with *out filled, the peer's status (non-zero) when it has none,
 * or KZ_ECORRUPT. Names are checked, duplicates refused. */
int kz_cons__ckpt_info_parse(const unsigned char *p, size_t len,
                             struct kz_cons__ckpt_info *out);
void kz_cons__ckpt_info_free(struct kz_cons__ckpt_info *info);

/* ---- the directory of checkpoints ---- */
/* `<root>/<index as 20 digits>`. */
void kz_cons__ckpt_path(const char *root, uint64_t index, char *out,
                        size_t outlen);
/* The newest complete checkpoint labelled >= min: KZ_OK and *index, or
 * KZ_ENOTFOUND. */
int kz_cons__ckpt_newest(const char *root, uint64_t min, uint64_t *index);
/* Lists a checkpoint's files (regular files with valid names). */
int kz_cons__ckpt_list(const char *root, uint64_t index,
                       struct kz_cons__ckpt_info *out);
/* Removes all but the newest `keep` complete checkpoints, and every
 * partial one (tmp-*, incoming-*) unless its index is `partial_keep`.
 * A complete checkpoint that kz_cons__ckpt_serve answered about in the
 * last 60 s (a peer is fetching it) is kept as well. */
void kz_cons__ckpt_prune(const char *root, unsigned keep,
                         uint64_t partial_keep);
/* Forgets every such pin (tests). */
void kz_cons__ckpt_unpin_all(void);

/* This process's resident and peak resident memory in MB (Linux
 * /proc/self/status; 0 when unknown), for the log lines of a fetch. */
void kz_cons__rss_mb(uint64_t *rss, uint64_t *peak);

/* ---- serving (the loop of the node that has the files) ---- */
/* The reply payload to a LIST or GET request, malloc'd into *out (its frame
 * type: INFO or DATA). A malformed request: KZ_ECORRUPT (close the
 * connection). Missing files are a status in the reply. */
int kz_cons__ckpt_serve(const char *root, int type, const unsigned char *req,
                        size_t len, unsigned char **out, size_t *olen,
                        int *reply_type);

/* ---- fetching (blocks the caller; runs its own loop) ---- */
struct kz_cons__ckpt_source {
    uint64_t id;
    char addr[64]; /* where to dial */
};

struct kz_cons__ckpt_fetch_args {
    const struct kz_cons__tls_config *tls; /* our identity, as for the peer link */
    const char *root;
    uint64_t min_index;
    const struct kz_cons__ckpt_source *sources; /* tried in order, rounds */
    unsigned n_sources;
    unsigned deadline_ms;     /* give up after this long (0: 10 minutes) */
    unsigned idle_timeout_ms; /* a source silent this long fails (0: 20 s) */
    unsigned window;          /* chunks in flight (0: 4) */
    uint64_t self_id;         /* for log lines */
};

struct kz_cons__ckpt_fetched {
    uint64_t index;   /* the checkpoint now in <root>/<index> */
    uint64_t bytes;   /* fetched in this call (less when resumed) */
    uint64_t total;   /* the checkpoint's size */
    uint64_t source;  /* the node it came from */
};

/* Fetches the newest checkpoint >= min_index any source has into
 * `<root>/<index>`: KZ_OK with *out. KZ_ETIMEDOUT when no source gave one
 * before the deadline; KZ_EIO on a local disk error (no room, a failed
 * write), with errmsg. Progress goes to stderr every 5 s. */
int kz_cons__ckpt_fetch(const struct kz_cons__ckpt_fetch_args *a,
                        struct kz_cons__ckpt_fetched *out, char *errmsg,
                        size_t errlen);

#endif
