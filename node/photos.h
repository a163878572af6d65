/*
 * photos.h — face photos (顔写真, DOMAIN.md §4): apply of PutPhoto and the
 * read side.
 *
 * A photo is stored as uploaded under <muni>/p/<victim id> in the blobs
 * column family (RocksDB integrated blob files), sealed with AES-256-GCM
 * under the current data key: the storage key, which names the victim, is
 * the associated data, and the nonce is derived from the raft index and
 * that key, so it is fresh for every photo written and the same on every
 * replica. A replacement overwrites the key; the node then compacts that
 * key's range so the old blob leaves the files (kz_stor_compact_key).
 */
#ifndef KZ_NODE_PHOTOS_H
#define KZ_NODE_PHOTOS_H

#include <stddef.h>
#include <stdint.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

struct kz_node_keys;
struct kz_node_result;

/* The media type of an image by its magic bytes: "image/jpeg",
 * "image/png", "image/jp2" (JPEG 2000, JP2 box or raw codestream), or NULL
 * for anything else. */
const char *kz_node_photo_type(const unsigned char *p, size_t len);

int kz_node_apply_photo(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni, uint64_t index,
                        const Kizuna__Command *cmd, struct kz_node_result *r);

/* Loads a victim's photo; KZ_ENOTFOUND when there is none. Free *out with
 * kizuna__photo__free_unpacked(*out, NULL). */
int kz_node_load_photo(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const char *victim_id,
                       Kizuna__Photo **out);

/* The storage key of a victim's photo (for compaction after a replace). */
size_t kz_node_photo_key(char *buf, const char *muni, const char *victim_id);

#endif
