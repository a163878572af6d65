/*
 * seal.h — encryption-at-rest primitives (OpenSSL 3 EVP), domain-agnostic.
 *
 * Sealed format (all integers big-endian):
 *   u8 version (1) | u32 key id | 12-byte nonce | ciphertext | 16-byte tag
 * AES-256-GCM; the caller's associated data (e.g. the storage key a value
 * lives under) is authenticated but not stored, so a sealed value moved to
 * another key no longer opens.
 *
 * Nonces: kz_stor_seal takes the nonce from the caller. Random nonces are
 * for proposers; a replicated state machine, which must write the same bytes
 * on every replica, derives them (kz_stor_hmac of a per-key secret and a
 * value unique to the write, such as the raft index).
 *
 * The master keyring is a file of lines "<id> <64 hex digits>" ('#'
 * comments), readable by its owner only: a file that grants any permission
 * to group or others is refused. The highest id is the current master key.
 */
#ifndef KZ_STOR_SEAL_H
#define KZ_STOR_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "kz_error.h"

#define KZ_STOR_KEY_BYTES 32
#define KZ_STOR_NONCE_BYTES 12
#define KZ_STOR_SEAL_OVERHEAD (1 + 4 + 12 + 16)
#define KZ_STOR_MAX_MASTER_KEYS 64

/* Fills buf with n bytes from the OS CSPRNG. */
int kz_stor_random(void *buf, size_t n);

/* HMAC-SHA-256 of the concatenation a|b (b may be NULL). */
void kz_stor_hmac(const unsigned char key[KZ_STOR_KEY_BYTES], const void *a,
                  size_t alen, const void *b, size_t blen,
                  unsigned char out[32]);
/* Frees and wipes this thread's keyed HMAC contexts (kz_stor_hmac keeps
 * one per key it was given lately); the next call makes them again. */
void kz_stor_hmac_forget(void);
/* Frees and wipes this thread's AES-GCM contexts (kz_stor_seal and
 * kz_stor_unseal keep one per key and direction lately used). */
void kz_stor_cipher_forget(void);

/* Seals plain into out (room for len + KZ_STOR_SEAL_OVERHEAD bytes). */
int kz_stor_seal(const unsigned char key[KZ_STOR_KEY_BYTES], uint32_t key_id,
                 const unsigned char nonce[KZ_STOR_NONCE_BYTES],
                 const void *aad, size_t aadlen, const void *plain,
                 size_t len, unsigned char *out);

/* Key id of a sealed buffer; KZ_ECORRUPT if it is not one. */
int kz_stor_sealed_key_id(const void *sealed, size_t len, uint32_t *key_id);

/* Opens a sealed buffer into out (room for len - KZ_STOR_SEAL_OVERHEAD);
 * KZ_ECORRUPT when it was altered, the key is wrong or aad differs. */
int kz_stor_unseal(const unsigned char key[KZ_STOR_KEY_BYTES], const void *aad,
                   size_t aadlen, const void *sealed, size_t len,
                   unsigned char *out, size_t *out_len);

struct kz_stor_keyring {
    unsigned n;
    uint32_t ids[KZ_STOR_MAX_MASTER_KEYS];
    unsigned char keys[KZ_STOR_MAX_MASTER_KEYS][KZ_STOR_KEY_BYTES];
};

/* Loads a keyring file; refuses group/other permissions, bad lines,
 * duplicate ids and an empty ring. */
int kz_stor_keyring_load(const char *path, struct kz_stor_keyring *kr,
                         char *errmsg, size_t errlen);
/* The key with this id, or NULL. */
const unsigned char *kz_stor_keyring_get(const struct kz_stor_keyring *kr,
                                         uint32_t id);
/* The highest id (the key new wraps use). */
uint32_t kz_stor_keyring_current(const struct kz_stor_keyring *kr);
/* Wipes the key material. */
void kz_stor_keyring_wipe(struct kz_stor_keyring *kr);

/* Wraps a data key under master key `master_id` of the ring (random nonce,
 * associated data "kizuna-key" | label): out has KZ_STOR_KEY_BYTES +
 * KZ_STOR_SEAL_OVERHEAD bytes. */
#define KZ_STOR_WRAPPED_BYTES (KZ_STOR_KEY_BYTES + KZ_STOR_SEAL_OVERHEAD)
int kz_stor_wrap_key(const struct kz_stor_keyring *kr, uint32_t master_id,
                     const char *label, const unsigned char key[32],
                     unsigned char out[KZ_STOR_WRAPPED_BYTES]);
int kz_stor_unwrap_key(const struct kz_stor_keyring *kr, const char *label,
                       const unsigned char *wrapped, size_t len,
                       unsigned char key[32]);

#endif
