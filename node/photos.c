/*
 * photos.c — face photos (photos.h).
 */
#include "photos.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "keys.h"
#include "records.h"
#include "register.h"

const char *kz_node_photo_type(const unsigned char *p, size_t len)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n',
                                         0x1a, '\n'};
    static const unsigned char jp2[12] = {0, 0, 0, 0x0c, 'j', 'P', ' ', ' ',
                                          '\r', '\n', 0x87, '\n'};
    static const unsigned char j2k[4] = {0xff, 0x4f, 0xff, 0x51};
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return "image/jpeg";
    if (len >= sizeof png && memcmp(p, png, sizeof png) == 0)
        return "image/png";
    if ((len >= sizeof jp2 && memcmp(p, jp2, sizeof jp2) == 0) ||
        (len >= sizeof j2k && memcmp(p, j2k, sizeof j2k) == 0))
        return "image/jp2";
    return NULL;
}

size_t kz_node_photo_key(char *buf, const char *muni, const char *victim_id)
{
    return kz_node_make_key(buf, muni, 'p', victim_id, NULL);
}

int kz_node_apply_photo(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni, uint64_t index,
                        const Kizuna__Command *cmd, struct kz_node_result *r)
{
    Kizuna__Photo *ph = cmd->put_photo->photo;
    const char *type = ph && ph->has_data
                           ? kz_node_photo_type(ph->data.data, ph->data.len)
                           : NULL;
    if (ph == NULL || ph->victim_id == NULL ||
        !kz_node_valid_ref(ph->victim_id) || type == NULL) {
        kz_node_result_error(r, 400, "bad_command", "photo incomplete");
        return KZ_OK;
    }
    Kizuna__Victim *v;
    int rv = kz_node_load_victim(st, keys, muni, ph->victim_id, &v);
    if (rv == KZ_ENOTFOUND) {
        kz_node_result_error(r, 404, "not_found", "no victim with this id");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    kizuna__victim__free_unpacked(v, NULL);
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_photo_key(key, muni, ph->victim_id);
    char *old;
    size_t ol;
    bool existed = kz_stor_get(st, KZ_STOR_CF_BLOBS, key, kl, &old, &ol) ==
                   KZ_OK;
    if (existed)
        free(old);
    /* The stored copy: the type apply recognised, whatever the proposer
     * said (the command's own strings stay the command's to free). */
    Kizuna__Photo stored = *ph;
    stored.content_type = (char *)type;
    stored.has_version = stored.has_updated_ms = 1;
    stored.version = index;
    stored.updated_ms = cmd->time_ms;
    size_t sz = kizuna__photo__get_packed_size(&stored);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (buf == NULL)
        return KZ_ENOMEM;
    kizuna__photo__pack(&stored, buf);
    unsigned char *sealed;
    size_t slen;
    rv = kz_node_keys_seal_value(keys, index, key, kl, buf, sz, &sealed, &slen);
    OPENSSL_cleanse(buf, sz);
    free(buf);
    if (rv != KZ_OK)
        return rv;
    kz_stor_batch_put(b, KZ_STOR_CF_BLOBS, key, kl, sealed, slen);
    free(sealed);
    snprintf(r->subject, sizeof r->subject, "%s", ph->victim_id);
    if (existed) {
        r->compact_cf = KZ_STOR_CF_BLOBS;
        memcpy(r->compact_key, key, kl);
        r->compact_klen = kl;
    }
    char t[40];
    kz_node_format_time(cmd->time_ms, t, sizeof t);
    kz_node_result_set(r, existed ? 200 : 201,
                       json_pack("{s:s,s:s,s:I,s:I,s:s}", "victim_id",
                                 ph->victim_id, "content_type", type, "bytes",
                                 (json_int_t)ph->data.len, "version",
                                 (json_int_t)index, "updated_at", t));
    return KZ_OK;
}

int kz_node_load_photo(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const char *victim_id,
                       Kizuna__Photo **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_valid_ref(victim_id)
                    ? kz_node_photo_key(key, muni, victim_id)
                    : 0;
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_sealed(st, keys, KZ_STOR_CF_BLOBS, key, kl,
                              &kizuna__photo__descriptor,
                              (ProtobufCMessage **)out);
}
