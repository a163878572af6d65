/*
 * test_seal.c — storage/seal: AES-256-GCM sealing (round trip, tampering,
 * associated data, wrong key), key wrapping, HMAC, and the master keyring
 * file (format, duplicate ids, permissions).
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "seal.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz-seal-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(seal, .init = setup, .fini = teardown);

static const char *ring_file(const char *content, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/master.key", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
    cr_assert_eq(chmod(path, mode), 0);
    return path;
}

#define K1 "1111111111111111111111111111111111111111111111111111111111111111"
#define K2 "abcdefABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123"

Test(seal, round_trip_and_tamper_detection)
{
    unsigned char key[32], nonce[12];
    cr_assert_eq(kz_stor_random(key, sizeof key), KZ_OK);
    cr_assert_eq(kz_stor_random(nonce, sizeof nonce), KZ_OK);
    const char *msg = "山田 太郎 宮城県石巻市";
    size_t len = strlen(msg);
    unsigned char sealed[256], out[256];
    cr_assert_eq(kz_stor_seal(key, 7, nonce, "aad", 3, msg, len, sealed),
                 KZ_OK);
    size_t slen = len + KZ_STOR_SEAL_OVERHEAD, olen = 0;
    cr_assert_null(memmem(sealed, slen, msg, len), "plaintext visible");
    uint32_t id = 0;
    cr_assert_eq(kz_stor_sealed_key_id(sealed, slen, &id), KZ_OK);
    cr_assert_eq(id, 7);
    cr_assert_eq(kz_stor_unseal(key, "aad", 3, sealed, slen, out, &olen),
                 KZ_OK);
    cr_assert_eq(olen, len);
    cr_assert(memcmp(out, msg, len) == 0);

    /* Any flipped byte after the header, other associated data, another
     * key, or a truncation: refused. */
    for (size_t i = 5; i < slen; i += 3) {
        unsigned char bad[256];
        memcpy(bad, sealed, slen);
        bad[i] ^= 0x01;
        cr_assert_eq(kz_stor_unseal(key, "aad", 3, bad, slen, out, &olen),
                     KZ_ECORRUPT, "flip at %zu accepted", i);
    }
    cr_assert_eq(kz_stor_unseal(key, "aae", 3, sealed, slen, out, &olen),
                 KZ_ECORRUPT);
    unsigned char other[32];
    memcpy(other, key, 32);
    other[0] ^= 1;
    cr_assert_eq(kz_stor_unseal(other, "aad", 3, sealed, slen, out, &olen),
                 KZ_ECORRUPT);
    cr_assert_eq(kz_stor_unseal(key, "aad", 3, sealed, slen - 1, out, &olen),
                 KZ_ECORRUPT);
    cr_assert_eq(kz_stor_unseal(key, "aad", 3, sealed, 10, out, &olen),
                 KZ_ECORRUPT);
}

Test(seal, hmac_is_keyed_and_deterministic)
{
    unsigned char k1[32] = {1}, k2[32] = {2}, a[32], b[32], c[32];
    kz_stor_hmac(k1, "ab", 2, "cd", 2, a);
    kz_stor_hmac(k1, "abcd", 4, NULL, 0, b);
    kz_stor_hmac(k2, "abcd", 4, NULL, 0, c);
    cr_assert(memcmp(a, b, 32) == 0, "a|b is the concatenation");
    cr_assert(memcmp(b, c, 32) != 0, "the key matters");
}

/* kz_stor_hmac keeps keyed contexts for the last few keys: with more keys
 * than it keeps, used in turn, and long messages (the fallback path), it
 * must still be HMAC-SHA-256 itself, as OpenSSL's one-shot HMAC() says;
 * and a forget in the middle changes nothing but speed. */
Test(seal, hmac_matches_openssl_across_many_keys)
{
    unsigned char keys[7][32], msg[700];
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 32; j++)
            keys[i][j] = (unsigned char)(i * 31 + j);
    for (size_t j = 0; j < sizeof msg; j++)
        msg[j] = (unsigned char)(j * 7);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 7; i++)
            for (size_t len = 0; len < sizeof msg; len += 97) {
                unsigned char got[32], want[32];
                unsigned int wl = 32;
                kz_stor_hmac(keys[i], msg, len / 2, msg + len / 2,
                             len - len / 2, got);
                HMAC(EVP_sha256(), keys[i], 32, msg, len, want, &wl);
                cr_assert(memcmp(got, want, 32) == 0,
                          "key %d, %zu bytes, round %d", i, len, round);
                if (i == 3 && len == 97)
                    kz_stor_hmac_forget();
            }
}

/* One-shot AES-256-GCM with OpenSSL alone, as kz_stor_seal lays it out
 * (version, key id, nonce, ciphertext, tag). */
static void reference_seal(const unsigned char key[32], uint32_t key_id,
                           const unsigned char nonce[12], const void *aad,
                           size_t aadlen, const void *plain, size_t len,
                           unsigned char *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    out[0] = 1;
    out[1] = (unsigned char)(key_id >> 24);
    out[2] = (unsigned char)(key_id >> 16);
    out[3] = (unsigned char)(key_id >> 8);
    out[4] = (unsigned char)key_id;
    memcpy(out + 5, nonce, 12);
    cr_assert_eq(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce),
                 1);
    cr_assert_eq(EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen), 1);
    cr_assert_eq(EVP_EncryptUpdate(c, out + 17, &n, plain, (int)len), 1);
    cr_assert_eq(EVP_EncryptFinal_ex(c, out + 17 + n, &n), 1);
    cr_assert_eq(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16,
                                     out + 17 + len),
                 1);
    EVP_CIPHER_CTX_free(c);
}

/* kz_stor_seal and kz_stor_unseal keep keyed contexts for the last few
 * keys: with more keys than they keep, used in turn, each nonce and length
 * must give what a fresh context gives; a refused unseal (wrong tag) must
 * leave nothing behind for the next call with the same key; a forget in
 * the middle changes nothing but speed. */
Test(seal, sealing_matches_openssl_across_many_keys)
{
    unsigned char keys[7][32], msg[1500], nonce[12];
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 32; j++)
            keys[i][j] = (unsigned char)(i * 17 + j * 3);
    for (size_t j = 0; j < sizeof msg; j++)
        msg[j] = (unsigned char)(j * 13);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 7; i++)
            for (size_t len = 0; len < sizeof msg; len += 211) {
                unsigned char got[1600], want[1600], back[1600];
                size_t slen = len + KZ_STOR_SEAL_OVERHEAD, blen = 0;
                for (int j = 0; j < 12; j++)
                    nonce[j] = (unsigned char)(round * 7 + i + len + j);
                cr_assert_eq(kz_stor_seal(keys[i], (uint32_t)i, nonce, "ad",
                                          2, msg, len, got),
                             KZ_OK);
                reference_seal(keys[i], (uint32_t)i, nonce, "ad", 2, msg,
                               len, want);
                cr_assert(memcmp(got, want, slen) == 0,
                          "key %d, %zu bytes, round %d", i, len, round);
                /* Refused by the key before, then opened by its own. */
                if (len > 0)
                    cr_assert_eq(kz_stor_unseal(keys[(i + 6) % 7], "ad", 2,
                                                got, slen, back, &blen),
                                 KZ_ECORRUPT);
                got[slen - 1] ^= 0x80;
                cr_assert_eq(kz_stor_unseal(keys[i], "ad", 2, got, slen,
                                            back, &blen),
                             KZ_ECORRUPT, "a bad tag accepted");
                got[slen - 1] ^= 0x80;
                cr_assert_eq(kz_stor_unseal(keys[i], "ad", 2, got, slen,
                                            back, &blen),
                             KZ_OK, "key %d, %zu bytes, round %d", i, len,
                             round);
                cr_assert_eq(blen, len);
                cr_assert(memcmp(back, msg, len) == 0);
                if (i == 3 && len == 211)
                    kz_stor_cipher_forget();
            }
}

Test(seal, keyring_file_rules)
{
    struct kz_stor_keyring kr;
    char err[256];
    char text[512];
    snprintf(text, sizeof text, "# comment\n\n1 %s\n2 %s\n", K1, K2);
    cr_assert_eq(kz_stor_keyring_load(ring_file(text, 0600), &kr, err,
                                      sizeof err),
                 KZ_OK, "%s", err);
    cr_assert_eq(kr.n, 2);
    cr_assert_eq(kz_stor_keyring_current(&kr), 2);
    cr_assert_not_null(kz_stor_keyring_get(&kr, 1));
    cr_assert_eq(kz_stor_keyring_get(&kr, 2)[0], 0xab);
    cr_assert_null(kz_stor_keyring_get(&kr, 3));

    /* Readable by others: refused, whatever the content. */
    cr_assert_eq(kz_stor_keyring_load(ring_file(text, 0644), &kr, err,
                                      sizeof err),
                 KZ_ECONFIG);
    cr_assert_not_null(strstr(err, "chmod 600"), "%s", err);
    cr_assert_eq(kz_stor_keyring_load(ring_file(text, 0640), &kr, err,
                                      sizeof err),
                 KZ_ECONFIG);

    static const char *bad[] = {
        "1 1234\n",                  /* short key */
        "0 " K1 "\n",                /* id 0 */
        "x " K1 "\n",                /* no id */
        "1 " K1 " extra\n",          /* trailing junk */
        "1 " K1 "\n1 " K2 "\n",      /* duplicate id */
        "# only a comment\n",        /* no key */
        "1 zz11111111111111111111111111111111111111111111111111111111111111\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(kz_stor_keyring_load(ring_file(bad[i], 0600), &kr, err,
                                          sizeof err),
                     KZ_ECONFIG, "case %zu accepted", i);
    snprintf(text, sizeof text, "%s/none", dir);
    cr_assert_eq(kz_stor_keyring_load(text, &kr, err, sizeof err),
                 KZ_ECONFIG);
}

Test(seal, wrapped_keys_need_their_master_and_label)
{
    struct kz_stor_keyring kr, only2;
    char err[256], text[512];
    snprintf(text, sizeof text, "1 %s\n2 %s\n", K1, K2);
    cr_assert_eq(kz_stor_keyring_load(ring_file(text, 0600), &kr, err,
                                      sizeof err),
                 KZ_OK);
    unsigned char dk[32], back[32], w[KZ_STOR_WRAPPED_BYTES];
    cr_assert_eq(kz_stor_random(dk, sizeof dk), KZ_OK);
    cr_assert_eq(kz_stor_wrap_key(&kr, 1, "data/00000001", dk, w), KZ_OK);
    cr_assert_null(memmem(w, sizeof w, dk, sizeof dk));
    cr_assert_eq(kz_stor_unwrap_key(&kr, "data/00000001", w, sizeof w, back),
                 KZ_OK);
    cr_assert(memcmp(dk, back, 32) == 0);
    cr_assert_eq(kz_stor_unwrap_key(&kr, "index", w, sizeof w, back),
                 KZ_ECORRUPT, "label is bound");
    snprintf(text, sizeof text, "2 %s\n", K2);
    cr_assert_eq(kz_stor_keyring_load(ring_file(text, 0600), &only2, err,
                                      sizeof err),
                 KZ_OK);
    cr_assert_eq(kz_stor_unwrap_key(&only2, "data/00000001", w, sizeof w,
                                    back),
                 KZ_ENOTFOUND, "master key 1 is not in this ring");
    cr_assert_eq(kz_stor_wrap_key(&kr, 9, "x", dk, w), KZ_ENOTFOUND);
    kz_stor_keyring_wipe(&kr);
    kz_stor_keyring_wipe(&only2);
    cr_assert_eq(kr.n, 0);
}
