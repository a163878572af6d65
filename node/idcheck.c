/*
 * idcheck.c — apply of the identity-check commands (idcheck.h).
 *
 * Every decision that must be the same cluster-wide (is this challenge
 * still usable, which person does this card belong to, which link code does
 * the caller get) is made here, in log order, from the state as of the
 * entry; the proposer's part is only the cryptography over a nonce it read
 * (card.h), whose hash and CRL version the command carries so apply can tell
 * a verdict about another nonce or an older CRL. Nothing here reads a clock
 * or a random source: times and ids come with the command.
 *
 * Refusals (4xx) write nothing; register.c still appends the audit record
 * of the attempt, so every outcome of an identity check is in the log.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "idcheck.h"
#include "kz_error.h"
#include "links.h"
#include "photos.h"
#include "records.h"
#include "register.h"

/* Expired challenges are kept this long (so a late replay still reads as
 * "expired", not "unknown"), then pruned, a few per new challenge. */
#define CHALLENGE_KEEP_MS (24LL * 3600 * 1000)
#define CHALLENGE_PRUNE_PER_CREATE 8
/* A challenge lives at most this long, whatever the proposer asks. */
#define CHALLENGE_MAX_TTL_MS (3600LL * 1000)

int kz_node_challenge_load(kz_stor *st, const char *muni, const char *id,
                           Kizuna__Challenge **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'x', id, NULL);
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_plain(st, key, kl, &kizuna__challenge__descriptor,
                             (ProtobufCMessage **)out);
}

static size_t crl_key(char *key, const char *muni)
{
    return kz_node_make_key(key, muni, 'r', "crl", NULL);
}

int kz_node_crl_load(kz_stor *st, const char *muni, Kizuna__IdentityCrl **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = crl_key(key, muni);
    return kz_node_get_plain(st, key, kl, &kizuna__identity_crl__descriptor,
                             (ProtobufCMessage **)out);
}

static void expiry_key(char *key, size_t *kl, const char *muni,
                       int64_t expires_ms, const char *id)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, (uint64_t)expires_ms);
    *kl = kz_node_make_key(key, muni, 't', hex, id);
}

/* Deletes up to CHALLENGE_PRUNE_PER_CREATE challenges that expired more
 * than CHALLENGE_KEEP_MS before now_ms (the expiry index is in time order). */
static void prune_challenges(kz_stor *st, kz_stor_batch *b, const char *muni,
                             int64_t now_ms)
{
    char prefix[KZ_NODE_KEY_MAX];
    size_t pl = kz_node_make_key(prefix, muni, 't', "", NULL);
    if (pl == 0)
        return;
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, prefix, pl,
                                        NULL, 0);
    const char *k, *v;
    size_t kl, vl;
    unsigned done = 0;
    while (it != NULL && done < CHALLENGE_PRUNE_PER_CREATE &&
           kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        if (kl < pl + 17 || k[pl + 16] != '\0')
            continue;
        char hex[17];
        memcpy(hex, k + pl, 16);
        hex[16] = '\0';
        int64_t exp = (int64_t)strtoull(hex, NULL, 16);
        if (exp + CHALLENGE_KEEP_MS >= now_ms)
            break;
        char id[80];
        size_t il = kl - pl - 17;
        if (il == 0 || il >= sizeof id)
            continue;
        memcpy(id, k + pl + 17, il);
        id[il] = '\0';
        char ck[KZ_NODE_KEY_MAX];
        size_t cl = kz_node_make_key(ck, muni, 'x', id, NULL);
        if (cl)
            kz_stor_batch_delete(b, KZ_STOR_CF_RECORDS, ck, cl);
        kz_stor_batch_delete(b, KZ_STOR_CF_INDEX, k, kl);
        done++;
    }
    kz_stor_iter_free(it);
}

static json_t *b64(const uint8_t *p, size_t n)
{
    char out[4 * ((64 + 2) / 3) + 1];
    if (n > 64)
        return json_null();
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return json_string(out);
}

static int apply_challenge(kz_stor *st, kz_stor_batch *b, const char *muni,
                           const Kizuna__Command *cmd,
                           struct kz_node_result *r)
{
    const Kizuna__Challenge *c = cmd->create_challenge->challenge;
    if (c == NULL || c->id == NULL || !kz_node_valid_ref(c->id) ||
        !c->has_nonce || c->nonce.len != 32 || !c->has_expires_ms ||
        c->expires_ms <= cmd->time_ms ||
        c->expires_ms - cmd->time_ms > CHALLENGE_MAX_TTL_MS) {
        kz_node_result_error(r, 400, "bad_command", "challenge incomplete");
        return KZ_OK;
    }
    Kizuna__Challenge *old;
    if (kz_node_challenge_load(st, muni, c->id, &old) == KZ_OK) {
        kizuna__challenge__free_unpacked(old, NULL);
        kz_node_result_error(r, 409, "challenge_exists",
                             "a challenge with this id exists; ask again");
        return KZ_OK;
    }
    prune_challenges(st, b, muni, cmd->time_ms);
    Kizuna__Challenge s = *c;
    s.has_created_ms = 1;
    s.created_ms = cmd->time_ms;
    s.has_used_ms = 0;
    s.outcome = NULL;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'x', c->id, NULL);
    kz_node_put_plain(b, key, kl, &s.base);
    expiry_key(key, &kl, muni, c->expires_ms, c->id);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, key, kl, "", 0);
    snprintf(r->subject, sizeof r->subject, "%s", c->id);
    char exp[40];
    kz_node_format_time(c->expires_ms, exp, sizeof exp);
    kz_node_result_set(r, 201,
                       json_pack("{s:s,s:o,s:s}", "challenge_id", c->id,
                                 "nonce", b64(c->nonce.data, c->nonce.len),
                                 "expires", exp));
    return KZ_OK;
}

static int load_binding(kz_stor *st, const char *muni, const char *key_sha,
                        Kizuna__CardBinding **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'y', key_sha, NULL);
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_plain(st, key, kl, &kizuna__card_binding__descriptor,
                             (ProtobufCMessage **)out);
}

static bool valid_sha_hex(const char *s)
{
    if (s == NULL || strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static void hex16(const uint8_t id[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

/* Names vid as the command's subject; answers 404 (r->status set) when it
 * is no registered victim. */
static int victim_known(kz_stor *st, struct kz_node_keys *keys,
                        const char *muni, const char *vid,
                        struct kz_node_result *r)
{
    snprintf(r->subject, sizeof r->subject, "%s", vid);
    Kizuna__Victim *v;
    int rv = kz_node_load_victim(st, keys, muni, vid, &v);
    if (rv == KZ_ENOTFOUND) {
        kz_node_result_error(r, 404, "not_found", "no victim with this id");
        return KZ_OK;
    }
    if (rv == KZ_OK)
        kizuna__victim__free_unpacked(v, NULL);
    return rv;
}

static int apply_bind(kz_stor *st, struct kz_node_keys *keys,
                      kz_stor_batch *b, const char *muni, uint64_t index,
                      const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__BindCard *bc = cmd->bind_card;
    if (bc->victim_id == NULL || !kz_node_valid_ref(bc->victim_id) ||
        !valid_sha_hex(bc->key_sha256) || bc->serial == NULL ||
        !kz_node_valid_text(bc->serial, 80) || !bc->has_new_id_code ||
        bc->new_id_code.len != 16) {
        kz_node_result_error(r, 400, "bad_command", "card binding incomplete");
        return KZ_OK;
    }
    int rv = victim_known(st, keys, muni, bc->victim_id, r);
    if (rv != KZ_OK || r->status != 0)
        return rv;
    int status = 201;
    Kizuna__CardBinding *old;
    if (load_binding(st, muni, bc->key_sha256, &old) == KZ_OK) {
        char hex[33], owner[80] = "";
        if (old->has_id_code && old->id_code.len == 16) {
            hex16(old->id_code.data, hex);
            if (kz_node_victim_of(st, muni, hex, owner) == KZ_OK)
                snprintf(r->person, sizeof r->person, "%s", hex);
        }
        kizuna__card_binding__free_unpacked(old, NULL);
        if (strcmp(owner, bc->victim_id) != 0) {
            r->person[0] = '\0';
            kz_node_result_error(r, 409, "card_bound_elsewhere",
                                 "this card's key is bound to another person");
            return KZ_OK;
        }
        status = 200;
    } else {
        unsigned char id[16];
        rv = kz_node_id_code_of(st, b, muni, bc->victim_id,
                                bc->new_id_code.data, id);
        if (rv != KZ_OK)
            return rv;
        hex16(id, r->person);
        Kizuna__CardBinding nb = KIZUNA__CARD_BINDING__INIT;
        nb.key_sha256 = bc->key_sha256;
        nb.serial = bc->serial;
        nb.has_id_code = nb.has_bound_ms = nb.has_version = 1;
        nb.id_code.data = id;
        nb.id_code.len = 16;
        nb.bound_ms = cmd->time_ms;
        nb.version = index;
        char key[KZ_NODE_KEY_MAX];
        size_t kl = kz_node_make_key(key, muni, 'y', bc->key_sha256, NULL);
        kz_node_put_plain(b, key, kl, &nb.base);
        OPENSSL_cleanse(id, sizeof id);
    }
    kz_node_result_set(r, status,
                       json_pack("{s:s,s:s,s:s}", "victim_id", bc->victim_id,
                                 "serial", bc->serial, "key_sha256",
                                 bc->key_sha256));
    return KZ_OK;
}

/* The caller's link code for the person, into the answer object. */
static int add_link_code(kz_stor *st, struct kz_node_keys *keys,
                         kz_stor_batch *b, const char *muni, const char *org,
                         const char *vid, const uint8_t fresh[16],
                         int64_t time_ms, json_t *o, char person[33])
{
    struct kz_node_link lk;
    int rv = kz_node_link_for(st, keys, b, muni, org, vid, fresh, time_ms, &lk);
    if (rv != KZ_OK)
        return rv;
    snprintf(person, 33, "%s", lk.id_hex);
    if (lk.status == 200 || lk.status == 201) {
        json_object_set_new(o, "link_code", json_string(lk.code));
    } else {
        json_object_set_new(o, "link_code", json_null());
        json_object_set_new(
            o, "link_code_reason",
            json_string(lk.status == 403   ? "org_not_registered"
                        : lk.status == 409 ? "link_unlinked"
                                           : "no_key"));
    }
    OPENSSL_cleanse(&lk, sizeof lk);
    return KZ_OK;
}

static void verify_refusal(struct kz_node_result *r, int status,
                           const char *code, const char *message)
{
    kz_node_result_set(r, status,
                       json_pack("{s:b,s:s,s:{s:s,s:s}}", "verified", 0,
                                 "reason", code, "error", "code", code,
                                 "message", message));
}

/* Why a verdict cannot use challenge c, as a refusal in r; false when it
 * can. h is the SHA-256 of c's nonce. */
static bool challenge_refused(const Kizuna__Challenge *c,
                              const Kizuna__VerifyIdentity *vi, int64_t now_ms,
                              const uint8_t h[SHA256_DIGEST_LENGTH],
                              uint64_t crl_version, struct kz_node_result *r)
{
    if (c->has_used_ms)
        verify_refusal(r, 409, "challenge_used",
                       "this challenge was used already; ask for a new one");
    else if (now_ms > c->expires_ms)
        verify_refusal(r, 409, "challenge_expired",
                       "this challenge expired; ask for a new one");
    else if (!vi->has_nonce_sha256 ||
             vi->nonce_sha256.len != SHA256_DIGEST_LENGTH ||
             memcmp(vi->nonce_sha256.data, h, SHA256_DIGEST_LENGTH) != 0)
        verify_refusal(r, 409, "challenge_not_checked",
                       "the card was not checked against this challenge");
    else if (vi->crl_version != crl_version)
        verify_refusal(r, 409, "crl_changed",
                       "a new CRL was installed during the check; retry");
    else
        return false;
    return true;
}

static int apply_verify(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni,
                        const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__VerifyIdentity *vi = cmd->verify_identity;
    if (vi->challenge_id == NULL || vi->org == NULL || vi->outcome == NULL ||
        !kz_node_valid_text(vi->outcome, 32) ||
        (vi->serial && !kz_node_valid_text(vi->serial, 80))) {
        kz_node_result_error(r, 400, "bad_command", "verification incomplete");
        return KZ_OK;
    }
    Kizuna__Challenge *c;
    int rv = kz_node_challenge_load(st, muni, vi->challenge_id, &c);
    if (rv == KZ_ENOTFOUND) {
        verify_refusal(r, 404, "challenge_unknown",
                       "no such challenge (ask for one with POST "
                       "/v1/identity/challenges)");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(c->nonce.data, c->nonce.len, h);
    Kizuna__IdentityCrl *crl = NULL;
    uint64_t crl_version = 0;
    if (kz_node_crl_load(st, muni, &crl) == KZ_OK) {
        crl_version = crl->version;
        kizuna__identity_crl__free_unpacked(crl, NULL);
    }
    if (challenge_refused(c, vi, cmd->time_ms, h, crl_version, r)) {
        kizuna__challenge__free_unpacked(c, NULL);
        return KZ_OK;
    }
    snprintf(r->subject, sizeof r->subject, "%s", c->id);
    /* One attempt per challenge, whatever the card's verdict. */
    const char *outcome = vi->outcome;
    Kizuna__CardBinding *bind = NULL;
    char vid[80] = "", hex[33] = "";
    if (strcmp(outcome, "ok") == 0) {
        if (!valid_sha_hex(vi->key_sha256) ||
            load_binding(st, muni, vi->key_sha256, &bind) != KZ_OK ||
            !bind->has_id_code || bind->id_code.len != 16) {
            outcome = "unknown_certificate"; /* valid card, nobody's */
        } else {
            hex16(bind->id_code.data, hex);
            if (kz_node_victim_of(st, muni, hex, vid) != KZ_OK)
                outcome = "unknown_certificate";
        }
    }
    c->has_used_ms = 1;
    c->used_ms = cmd->time_ms;
    c->outcome = (char *)outcome;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'x', c->id, NULL);
    kz_node_put_plain(b, key, kl, &c->base);
    c->outcome = NULL; /* not ours to free */
    json_t *o;
    if (strcmp(outcome, "ok") == 0) {
        o = json_pack("{s:b,s:s,s:s,s:s?}", "verified", 1, "assurance", "high",
                      "victim_id", vid, "serial", vi->serial);
        snprintf(r->subject, sizeof r->subject, "%s", vid);
        rv = add_link_code(st, keys, b, muni, vi->org, vid,
                           bind->id_code.data, cmd->time_ms, o, r->person);
    } else {
        o = json_pack("{s:b,s:s}", "verified", 0, "reason", outcome);
        rv = KZ_OK;
    }
    if (vi->crl_stale)
        json_object_set_new(o, "crl_stale", json_true());
    if (crl_version == 0)
        json_object_set_new(o, "crl_installed", json_false());
    json_object_set_new(o, "challenge_id", json_string(c->id));
    kz_node_result_set(r, 200, o);
    if (bind)
        kizuna__card_binding__free_unpacked(bind, NULL);
    kizuna__challenge__free_unpacked(c, NULL);
    return rv;
}

static int apply_crl(kz_stor *st, kz_stor_batch *b, const char *muni,
                     uint64_t index, const Kizuna__Command *cmd,
                     struct kz_node_result *r)
{
    const Kizuna__IdentityCrl *in = cmd->put_crl->crl;
    if (in == NULL || !in->has_crl || in->crl.len == 0 ||
        !in->has_this_update_ms) {
        kz_node_result_error(r, 400, "bad_command", "CRL incomplete");
        return KZ_OK;
    }
    Kizuna__IdentityCrl *old;
    if (kz_node_crl_load(st, muni, &old) == KZ_OK) {
        bool older = old->this_update_ms > in->this_update_ms;
        kizuna__identity_crl__free_unpacked(old, NULL);
        if (older) {
            kz_node_result_error(r, 409, "crl_older",
                                 "the installed CRL is newer than this one");
            return KZ_OK;
        }
    }
    Kizuna__IdentityCrl s = *in;
    s.has_version = s.has_installed_ms = 1;
    s.version = index;
    s.installed_ms = cmd->time_ms;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = crl_key(key, muni);
    kz_node_put_plain(b, key, kl, &s.base);
    char tu[40], nu[40];
    kz_node_format_time(in->this_update_ms, tu, sizeof tu);
    kz_node_format_time(in->next_update_ms, nu, sizeof nu);
    kz_node_result_set(r, 200,
                       json_pack("{s:b,s:s,s:s,s:I,s:I}", "installed", 1,
                                 "this_update", tu, "next_update", nu,
                                 "revoked", (json_int_t)in->revoked,
                                 "version", (json_int_t)index));
    return KZ_OK;
}

static int apply_fallback(kz_stor *st, struct kz_node_keys *keys,
                          kz_stor_batch *b, const char *muni, uint64_t index,
                          const Kizuna__Command *cmd,
                          struct kz_node_result *r)
{
    const Kizuna__IdentityFallback *f = cmd->identity_fallback;
    if (f->id == NULL || !kz_node_valid_ref(f->id) || f->victim_id == NULL ||
        !kz_node_valid_ref(f->victim_id) || f->org == NULL ||
        !kz_node_valid_text(f->confirmed_by, 128) || !f->has_new_id_code ||
        f->new_id_code.len != 16) {
        kz_node_result_error(r, 400, "bad_command", "fallback incomplete");
        return KZ_OK;
    }
    int rv = victim_known(st, keys, muni, f->victim_id, r);
    if (rv != KZ_OK || r->status != 0)
        return rv;
    if (!f->photo_compared || !f->knowledge_check) {
        kz_node_result_error(r, 422, "fallback_incomplete",
                             "the fallback needs the stored photo compared "
                             "and the knowledge check passed");
        return KZ_OK;
    }
    /* "Compared with the stored photo" must be possible. */
    char pk[KZ_NODE_KEY_MAX];
    size_t pkl = kz_node_photo_key(pk, muni, f->victim_id);
    char *pv = NULL;
    size_t pvl;
    rv = pkl ? kz_stor_get(st, KZ_STOR_CF_BLOBS, pk, pkl, &pv, &pvl)
             : KZ_ENOTFOUND;
    free(pv);
    if (rv == KZ_ENOTFOUND) {
        kz_node_result_error(r, 422, "no_photo",
                             "no face photo is stored for this person; the "
                             "fallback compares the stored photo");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    Kizuna__IdentityFallback s = *f;
    s.has_at_ms = 1;
    s.at_ms = cmd->time_ms;
    s.has_new_id_code = 0;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'k', f->id, NULL);
    rv = kz_node_put_sealed(b, keys, index, key, kl, &s.base);
    if (rv != KZ_OK)
        return rv;
    json_t *o = json_pack("{s:s,s:b,s:s,s:s,s:s}", "id", f->id, "verified", 1,
                          "assurance", "low", "victim_id", f->victim_id,
                          "confirmed_by", f->confirmed_by);
    rv = add_link_code(st, keys, b, muni, f->org, f->victim_id,
                       f->new_id_code.data, cmd->time_ms, o, r->person);
    kz_node_result_set(r, 201, o);
    return rv;
}

int kz_node_apply_idcheck(kz_stor *st, struct kz_node_keys *keys,
                          kz_stor_batch *b, const char *muni, uint64_t index,
                          const Kizuna__Command *cmd, struct kz_node_result *r)
{
    switch (cmd->op_case) {
    case KIZUNA__COMMAND__OP_CREATE_CHALLENGE:
        return apply_challenge(st, b, muni, cmd, r);
    case KIZUNA__COMMAND__OP_BIND_CARD:
        return apply_bind(st, keys, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_VERIFY_IDENTITY:
        return apply_verify(st, keys, b, muni, cmd, r);
    case KIZUNA__COMMAND__OP_PUT_CRL:
        return apply_crl(st, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_IDENTITY_FALLBACK:
        return apply_fallback(st, keys, b, muni, index, cmd, r);
    default:
        kz_node_result_error(r, 400, "bad_command", "not an identity command");
        return KZ_OK;
    }
}
