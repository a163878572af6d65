/*
 * keys.c — data keys, blind indexes and sealing for the register
 * (keys.h). The state side (what apply writes for key commands) lives in
 * register.c; this file reads that state and does the cryptography.
 */
#include "keys.h"
#include "kz_endian.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kizuna.pb-c.h"

static const char cmd_magic[4] = {'K', 'Z', 'S', 'C'};

int kz_node_keys_open(struct kz_node_keys *k, const char *ring_path)
{
    memset(k, 0, sizeof *k);
    snprintf(k->ring_path, sizeof k->ring_path, "%s", ring_path);
    return kz_stor_keyring_load(ring_path, &k->ring, k->errmsg,
                                sizeof k->errmsg);
}

int kz_node_keys_reload_ring(struct kz_node_keys *k)
{
    struct kz_stor_keyring ring;
    int rv = kz_stor_keyring_load(k->ring_path, &ring, k->errmsg,
                                  sizeof k->errmsg);
    if (rv != KZ_OK)
        return rv;
    kz_stor_keyring_wipe(&k->ring);
    k->ring = ring;
    kz_stor_keyring_wipe(&ring);
    return KZ_OK;
}

void kz_node_keys_wipe(struct kz_node_keys *k)
{
    OPENSSL_cleanse(k, sizeof *k);
    kz_stor_hmac_forget(); /* its keyed contexts hold these keys too */
    kz_stor_cipher_forget();
}

bool kz_node_keys_in_state(kz_stor *st)
{
    char *v;
    size_t vl;
    if (kz_stor_get(st, KZ_STOR_CF_META, "key/index", 9, &v, &vl) != KZ_OK)
        return false;
    free(v);
    return true;
}

int kz_node_keys_refresh(struct kz_node_keys *k, kz_stor *st)
{
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, KZ_STOR_CF_META, "key/index", 9, &v, &vl);
    if (rv != KZ_OK) {
        k->ready = false;
        return rv;
    }
    unsigned char index_key[KZ_STOR_KEY_BYTES];
    rv = kz_stor_unwrap_key(&k->ring, "index", (unsigned char *)v, vl,
                            index_key);
    free(v);
    if (rv != KZ_OK) {
        snprintf(k->errmsg, sizeof k->errmsg,
                 "the keyring cannot open the index key (%s): is every "
                 "master key of the cluster in %s?",
                 kz_strerror(rv), k->ring_path);
        k->ready = false;
        return rv;
    }
    rv = kz_stor_get(st, KZ_STOR_CF_META, "key/current", 11, &v, &vl);
    if (rv != KZ_OK || vl != 4) {
        if (rv == KZ_OK)
            free(v);
        k->ready = false;
        return KZ_ECORRUPT;
    }
    uint32_t current = kz_get_be32((unsigned char *)v);
    free(v);
    k->terms_format = 1;
    if (kz_stor_get(st, KZ_STOR_CF_META, "terms/format", 12, &v, &vl) ==
        KZ_OK) {
        if (vl == 1 && v[0] >= '1' && v[0] <= '9')
            k->terms_format = (unsigned)(v[0] - '0');
        free(v);
    }

    struct kz_node_data_key data[KZ_NODE_MAX_DATA_KEYS];
    unsigned n = 0;
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_META, "key/data/", 9,
                                        NULL, 0);
    if (it == NULL)
        return KZ_ENOMEM;
    const char *key, *val;
    size_t kl;
    rv = KZ_OK;
    while (rv == KZ_OK && kz_stor_iter_next(it, &key, &kl, &val, &vl)) {
        if (n == KZ_NODE_MAX_DATA_KEYS || kl != 9 + 8) {
            rv = KZ_ECORRUPT;
            break;
        }
        char label[32];
        snprintf(label, sizeof label, "data/%.8s", key + 9);
        data[n].id = (uint32_t)strtoul(label + 5, NULL, 16);
        rv = kz_stor_unwrap_key(&k->ring, label, (const unsigned char *)val,
                                vl, data[n].key);
        if (rv == KZ_OK) {
            kz_stor_hmac(data[n].key, "kizuna-record-nonce", 19, NULL, 0,
                         data[n].nonce_key);
            n++;
        } else {
            snprintf(k->errmsg, sizeof k->errmsg,
                     "the keyring cannot open data key %s (%s)", label + 5,
                     kz_strerror(rv));
        }
    }
    kz_stor_iter_free(it);
    if (rv != KZ_OK) {
        OPENSSL_cleanse(data, sizeof data);
        OPENSSL_cleanse(index_key, sizeof index_key);
        k->ready = false;
        return rv;
    }
    memcpy(k->data, data, sizeof data[0] * n);
    k->n_data = n;
    memcpy(k->index_key, index_key, sizeof index_key);
    k->current = current;
    k->ready = true;
    OPENSSL_cleanse(data, sizeof data);
    OPENSSL_cleanse(index_key, sizeof index_key);
    return KZ_OK;
}

static const struct kz_node_data_key *data_key(const struct kz_node_keys *k,
                                               uint32_t id)
{
    for (unsigned i = 0; i < k->n_data; i++)
        if (k->data[i].id == id)
            return &k->data[i];
    return NULL;
}

static int pack_command(Kizuna__Command *cmd, char **out, size_t *len)
{
    *len = kizuna__command__get_packed_size(cmd);
    *out = malloc(*len ? *len : 1);
    if (*out == NULL)
        return KZ_ENOMEM;
    kizuna__command__pack(cmd, (uint8_t *)*out);
    return KZ_OK;
}

static int new_wrapped(struct kz_node_keys *k, const char *label,
                       unsigned char wrapped[KZ_STOR_WRAPPED_BYTES])
{
    unsigned char key[KZ_STOR_KEY_BYTES];
    int rv = kz_stor_random(key, sizeof key);
    if (rv == KZ_OK)
        rv = kz_stor_wrap_key(&k->ring, kz_stor_keyring_current(&k->ring),
                              label, key, wrapped);
    OPENSSL_cleanse(key, sizeof key);
    return rv;
}

int kz_node_keys_make_init(struct kz_node_keys *k, const char *muni,
                           char **out, size_t *len)
{
    unsigned char dk[KZ_STOR_WRAPPED_BYTES], ik[KZ_STOR_WRAPPED_BYTES];
    int rv = new_wrapped(k, "data/00000001", dk);
    if (rv == KZ_OK)
        rv = new_wrapped(k, "index", ik);
    if (rv != KZ_OK)
        return rv;
    Kizuna__KeyInit ki = KIZUNA__KEY_INIT__INIT;
    ki.has_data_key_id = 1;
    ki.data_key_id = 1;
    ki.has_data_key = 1;
    ki.data_key.data = dk;
    ki.data_key.len = sizeof dk;
    ki.has_index_key = 1;
    ki.index_key.data = ik;
    ki.index_key.len = sizeof ik;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.municipality = (char *)muni;
    cmd.op_case = KIZUNA__COMMAND__OP_KEY_INIT;
    cmd.key_init = &ki;
    return pack_command(&cmd, out, len);
}

int kz_node_keys_make_rotate_data(struct kz_node_keys *k, const char *muni,
                                  char **out, size_t *len)
{
    if (!k->ready)
        return KZ_ENOTFOUND;
    uint32_t id = k->current + 1;
    char label[32];
    snprintf(label, sizeof label, "data/%08x", id);
    unsigned char dk[KZ_STOR_WRAPPED_BYTES];
    int rv = new_wrapped(k, label, dk);
    if (rv != KZ_OK)
        return rv;
    Kizuna__KeyAdd ka = KIZUNA__KEY_ADD__INIT;
    ka.has_data_key_id = 1;
    ka.data_key_id = id;
    ka.has_data_key = 1;
    ka.data_key.data = dk;
    ka.data_key.len = sizeof dk;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.municipality = (char *)muni;
    cmd.op_case = KIZUNA__COMMAND__OP_KEY_ADD;
    cmd.key_add = &ka;
    return pack_command(&cmd, out, len);
}

int kz_node_keys_make_rewrap(struct kz_node_keys *k, kz_stor *st,
                             const char *muni, char **out, size_t *len,
                             unsigned *n_keys)
{
    if (!k->ready)
        return KZ_ENOTFOUND;
    (void)st;
    uint32_t master = kz_stor_keyring_current(&k->ring);
    unsigned n = k->n_data;
    uint32_t *ids = calloc(n ? n : 1, sizeof *ids);
    ProtobufCBinaryData *blobs = calloc(n ? n : 1, sizeof *blobs);
    unsigned char(*wrapped)[KZ_STOR_WRAPPED_BYTES] =
        calloc(n + 1, KZ_STOR_WRAPPED_BYTES);
    int rv = (ids && blobs && wrapped) ? KZ_OK : KZ_ENOMEM;
    for (unsigned i = 0; rv == KZ_OK && i < n; i++) {
        char label[32];
        snprintf(label, sizeof label, "data/%08x", k->data[i].id);
        rv = kz_stor_wrap_key(&k->ring, master, label, k->data[i].key,
                              wrapped[i]);
        ids[i] = k->data[i].id;
        blobs[i].data = wrapped[i];
        blobs[i].len = KZ_STOR_WRAPPED_BYTES;
    }
    if (rv == KZ_OK)
        rv = kz_stor_wrap_key(&k->ring, master, "index", k->index_key,
                              wrapped[n]);
    if (rv == KZ_OK) {
        Kizuna__KeyRewrap kr = KIZUNA__KEY_REWRAP__INIT;
        kr.n_data_key_ids = n;
        kr.data_key_ids = ids;
        kr.n_data_keys = n;
        kr.data_keys = blobs;
        kr.has_index_key = 1;
        kr.index_key.data = wrapped[n];
        kr.index_key.len = KZ_STOR_WRAPPED_BYTES;
        Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
        cmd.municipality = (char *)muni;
        cmd.op_case = KIZUNA__COMMAND__OP_KEY_REWRAP;
        cmd.key_rewrap = &kr;
        rv = pack_command(&cmd, out, len);
        *n_keys = n;
    }
    free(ids);
    free(blobs);
    free(wrapped);
    return rv;
}

int kz_node_keys_seal_command(struct kz_node_keys *k, const void *cmd,
                              size_t len, char **out, size_t *out_len)
{
    const struct kz_node_data_key *dk = k->ready ? data_key(k, k->current)
                                                 : NULL;
    if (dk == NULL)
        return KZ_ENOTFOUND;
    unsigned char nonce[KZ_STOR_NONCE_BYTES];
    if (kz_stor_random(nonce, sizeof nonce) != KZ_OK)
        return KZ_EIO;
    size_t total = sizeof cmd_magic + len + KZ_STOR_SEAL_OVERHEAD;
    char *o = malloc(total);
    if (o == NULL)
        return KZ_ENOMEM;
    memcpy(o, cmd_magic, sizeof cmd_magic);
    int rv = kz_stor_seal(dk->key, dk->id, nonce, "cmd", 3, cmd, len,
                          (unsigned char *)o + sizeof cmd_magic);
    if (rv != KZ_OK) {
        free(o);
        return rv;
    }
    *out = o;
    *out_len = total;
    return KZ_OK;
}

int kz_node_keys_open_command(struct kz_node_keys *k, const char *in,
                              size_t len, char **plain, size_t *plain_len,
                              bool *was_sealed)
{
    *plain = NULL;
    *was_sealed = false;
    if (len < sizeof cmd_magic || memcmp(in, cmd_magic, sizeof cmd_magic) != 0)
        return KZ_OK;
    *was_sealed = true;
    uint32_t id;
    const char *sealed = in + sizeof cmd_magic;
    size_t slen = len - sizeof cmd_magic;
    if (kz_stor_sealed_key_id(sealed, slen, &id) != KZ_OK)
        return KZ_ECORRUPT;
    const struct kz_node_data_key *dk = data_key(k, id);
    if (dk == NULL)
        return KZ_ENOTFOUND;
    char *o = malloc(slen);
    if (o == NULL)
        return KZ_ENOMEM;
    int rv = kz_stor_unseal(dk->key, "cmd", 3, sealed, slen,
                            (unsigned char *)o, plain_len);
    if (rv != KZ_OK) {
        free(o);
        return rv;
    }
    *plain = o;
    return KZ_OK;
}

int kz_node_keys_seal_value(struct kz_node_keys *k, uint64_t index,
                            const void *aad, size_t aadlen, const void *plain,
                            size_t len, unsigned char **out, size_t *out_len)
{
    const struct kz_node_data_key *dk = k->ready ? data_key(k, k->current)
                                                 : NULL;
    if (dk == NULL)
        return KZ_ENOTFOUND;
    /* Deterministic nonce: the same on every replica, unique per (raft
     * index, storage key) under one data key — every write of a key at one
     * index writes the same plaintext. */
    unsigned char be[8], mac[32];
    for (int i = 7; i >= 0; i--) {
        be[i] = (unsigned char)(index & 0xff);
        index >>= 8;
    }
    unsigned char msg[8 + 512];
    size_t ml = aadlen < 512 ? aadlen : 512;
    memcpy(msg, be, 8);
    memcpy(msg + 8, aad, ml);
    kz_stor_hmac(dk->nonce_key, msg, 8 + ml, NULL, 0, mac);
    unsigned char *o = malloc(len + KZ_STOR_SEAL_OVERHEAD);
    if (o == NULL)
        return KZ_ENOMEM;
    int rv = kz_stor_seal(dk->key, dk->id, mac, aad, aadlen, plain, len, o);
    if (rv != KZ_OK) {
        free(o);
        return rv;
    }
    *out = o;
    *out_len = len + KZ_STOR_SEAL_OVERHEAD;
    return KZ_OK;
}

int kz_node_keys_open_value(struct kz_node_keys *k, const void *aad,
                            size_t aadlen, const void *sealed, size_t len,
                            unsigned char **out, size_t *out_len)
{
    uint32_t id;
    if (kz_stor_sealed_key_id(sealed, len, &id) != KZ_OK)
        return KZ_ECORRUPT;
    const struct kz_node_data_key *dk = data_key(k, id);
    if (dk == NULL)
        return KZ_ENOTFOUND;
    unsigned char *o = malloc(len);
    if (o == NULL)
        return KZ_ENOMEM;
    int rv = kz_stor_unseal(dk->key, aad, aadlen, sealed, len, o, out_len);
    if (rv != KZ_OK) {
        free(o);
        return rv;
    }
    *out = o;
    return KZ_OK;
}

void kz_node_keys_blind(const struct kz_node_keys *k, char domain,
                        const char *value, size_t len,
                        char out[KZ_NODE_BLIND_HEX])
{
    unsigned char head[2] = {(unsigned char)domain, 0}, mac[32];
    static const char hex[] = "0123456789abcdef";
    kz_stor_hmac(k->index_key, head, 2, value, len, mac);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[32] = '\0';
}
