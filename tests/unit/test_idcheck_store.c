/*
 * test_idcheck_store.c — identity checks as apply decides them
 * (node/idcheck.c) on a real RocksDB store: a challenge is consumed by the
 * first verdict whatever it says, then refused as used; expiry by the
 * command's time; a verdict about another nonce or an older CRL refused
 * without consuming; a card's key bound to one person only; a good verdict
 * mapped to the person and the caller's link code; old challenges pruned a
 * day after expiry; a refusal writes nothing but its audit record.
 */
#include <criterion/criterion.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "idcheck.h"
#include "keys.h"
#include "kz_test_keys.h"
#include "register.h"

#define MUNI "131016"
#define T0 1800000000000LL

static char dir[64];
static kz_stor *st;
static struct kz_node_keys keys;
static uint64_t next_index;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_idcheck_XXXXXX");
    kz_test_store_open(dir, MUNI, &st, &keys);
    next_index = 2;
}

static void teardown(void)
{
    kz_test_store_close(dir, st, &keys);
}

TestSuite(idcheck, .init = setup, .fini = teardown);

static int apply_at(Kizuna__Command *cmd, int64_t t, json_t **body)
{
    return kz_test_apply_at(st, &keys, MUNI, &next_index, cmd, t, body);
}

static void create_victim(const char *id)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = (char *)id;
    v.name = "本人 花子";
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    cv.victim = &v;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    cmd.create_victim = &cv;
    cr_assert_eq(apply_at(&cmd, T0, NULL), 201);
}

static void put_org(const char *code)
{
    static uint8_t key[32] = {1, 2, 3};
    Kizuna__Org o = KIZUNA__ORG__INIT;
    o.code = (char *)code;
    o.name = "terminal org";
    o.kind = "municipality";
    Kizuna__PutOrg po = KIZUNA__PUT_ORG__INIT;
    po.org = &o;
    po.has_new_key = 1;
    po.new_key.data = key;
    po.new_key.len = sizeof key;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_ORG;
    cmd.put_org = &po;
    cr_assert_eq(apply_at(&cmd, T0, NULL), 201);
}

static const uint8_t nonce_a[32] = {0xaa, 1, 2, 3};

static int challenge(const char *id, int64_t t, int64_t ttl_ms)
{
    Kizuna__Challenge c = KIZUNA__CHALLENGE__INIT;
    c.id = (char *)id;
    c.has_nonce = c.has_expires_ms = 1;
    c.nonce.data = (uint8_t *)nonce_a;
    c.nonce.len = 32;
    c.expires_ms = t + ttl_ms;
    Kizuna__CreateChallenge cc = KIZUNA__CREATE_CHALLENGE__INIT;
    cc.challenge = &c;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_CHALLENGE;
    cmd.create_challenge = &cc;
    return apply_at(&cmd, t, NULL);
}

static const char key_a[] =
    "1111111111111111111111111111111111111111111111111111111111111111";
static const char key_b[] =
    "2222222222222222222222222222222222222222222222222222222222222222";

static int bind(const char *victim, const char *key)
{
    static uint8_t fresh[16] = {9, 9, 9};
    Kizuna__BindCard bc = KIZUNA__BIND_CARD__INIT;
    bc.victim_id = (char *)victim;
    bc.key_sha256 = (char *)key;
    bc.serial = "0A1B";
    bc.has_new_id_code = 1;
    bc.new_id_code.data = fresh;
    bc.new_id_code.len = 16;
    fresh[15]++;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_BIND_CARD;
    cmd.bind_card = &bc;
    return apply_at(&cmd, T0, NULL);
}

/* A verdict; nonce: the nonce the proposer checked (NULL: none). */
static int verdict(const char *cid, const uint8_t *nonce, const char *outcome,
                   const char *key, uint64_t crl_version, int64_t t,
                   json_t **body)
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    Kizuna__VerifyIdentity vi = KIZUNA__VERIFY_IDENTITY__INIT;
    vi.challenge_id = (char *)cid;
    vi.outcome = (char *)outcome;
    vi.key_sha256 = (char *)key;
    vi.serial = "0A1B";
    vi.org = "131016";
    vi.has_crl_version = 1;
    vi.crl_version = crl_version;
    if (nonce != NULL) {
        SHA256(nonce, 32, h);
        vi.has_nonce_sha256 = 1;
        vi.nonce_sha256.data = h;
        vi.nonce_sha256.len = sizeof h;
    }
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_VERIFY_IDENTITY;
    cmd.verify_identity = &vi;
    return apply_at(&cmd, t, body);
}

static const char *reason(json_t *j)
{
    const char *s = json_string_value(json_object_get(j, "reason"));
    return s ? s : "";
}

static bool challenge_used(const char *id)
{
    Kizuna__Challenge *c;
    cr_assert_eq(kz_node_challenge_load(st, MUNI, id, &c), KZ_OK);
    bool used = c->has_used_ms;
    kizuna__challenge__free_unpacked(c, NULL);
    return used;
}

Test(idcheck, consumed_once_whatever_the_verdict)
{
    json_t *j;
    cr_assert_eq(challenge("c1", T0, 60000), 201);
    cr_assert_eq(challenge("c1", T0, 60000), 409, "ids are unique");
    /* Not consumed by a verdict about another nonce. */
    uint8_t other[32] = {0xbb};
    cr_assert_eq(verdict("c1", other, "ok", key_a, 0, T0 + 1, &j), 409);
    cr_assert_str_eq(reason(j), "challenge_not_checked");
    json_decref(j);
    cr_assert_not(challenge_used("c1"));
    /* Nor by one checked against another CRL than the installed one. */
    cr_assert_eq(verdict("c1", nonce_a, "ok", key_a, 7, T0 + 1, &j), 409);
    cr_assert_str_eq(reason(j), "crl_changed");
    json_decref(j);
    cr_assert_not(challenge_used("c1"));
    /* A bad signature consumes it. */
    cr_assert_eq(verdict("c1", nonce_a, "bad_signature", key_a, 0, T0 + 2, &j),
                 200);
    cr_assert(json_is_false(json_object_get(j, "verified")));
    cr_assert_str_eq(reason(j), "bad_signature");
    json_decref(j);
    cr_assert(challenge_used("c1"));
    cr_assert_eq(verdict("c1", nonce_a, "ok", key_a, 0, T0 + 3, &j), 409);
    cr_assert_str_eq(reason(j), "challenge_used");
    json_decref(j);
    cr_assert_eq(verdict("nope", nonce_a, "ok", key_a, 0, T0 + 3, &j), 404);
    cr_assert_str_eq(reason(j), "challenge_unknown");
    json_decref(j);
}

Test(idcheck, expiry_by_command_time)
{
    json_t *j;
    cr_assert_eq(challenge("c2", T0, 1000), 201);
    cr_assert_eq(verdict("c2", nonce_a, "ok", key_a, 0, T0 + 1001, &j), 409);
    cr_assert_str_eq(reason(j), "challenge_expired");
    json_decref(j);
    cr_assert_not(challenge_used("c2"));
    /* A challenge living longer than an hour is not made. */
    cr_assert_eq(challenge("c3", T0, 3600001), 400);
}

Test(idcheck, binding_and_link_code)
{
    json_t *j;
    create_victim("v1");
    create_victim("v2");
    put_org("131016");
    cr_assert_eq(bind("v1", key_a), 201);
    cr_assert_eq(bind("v1", key_a), 200);
    cr_assert_eq(bind("v2", key_a), 409);
    /* The refusal gave v2 no ID code. */
    char k[KZ_NODE_KEY_MAX], *v;
    size_t kl = kz_node_make_key(k, MUNI, 'j', "v2", NULL), vl;
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_RECORDS, k, kl, &v, &vl),
                 KZ_ENOTFOUND);
    cr_assert_eq(bind("nobody", key_b), 404);
    cr_assert_eq(challenge("c4", T0, 60000), 201);
    cr_assert_eq(verdict("c4", nonce_a, "ok", key_a, 0, T0 + 5, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "verified")));
    cr_assert_str_eq(json_string_value(json_object_get(j, "victim_id")), "v1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "assurance")),
                     "high");
    const char *code = json_string_value(json_object_get(j, "link_code"));
    cr_assert_not_null(code);
    char *first = strdup(code);
    json_decref(j);
    /* A valid card bound to nobody is an unknown certificate. */
    cr_assert_eq(challenge("c5", T0, 60000), 201);
    cr_assert_eq(verdict("c5", nonce_a, "ok", key_b, 0, T0 + 6, &j), 200);
    cr_assert_str_eq(reason(j), "unknown_certificate");
    json_decref(j);
    /* The same person, the same link code for the same organisation. */
    cr_assert_eq(challenge("c6", T0, 60000), 201);
    cr_assert_eq(verdict("c6", nonce_a, "ok", key_a, 0, T0 + 7, &j), 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "link_code")),
                     first);
    json_decref(j);
    free(first);
}

Test(idcheck, pruned_a_day_after_expiry)
{
    cr_assert_eq(challenge("old1", T0, 1000), 201);
    cr_assert_eq(challenge("old2", T0, 2000), 201);
    cr_assert_eq(challenge("young", T0 + 86400000LL, 60000), 201);
    Kizuna__Challenge *c;
    /* old1 expired at T0+1000: a day later, at T0+86401000, it may go;
     * at T0+86400000 it is still kept. */
    cr_assert_eq(kz_node_challenge_load(st, MUNI, "old1", &c), KZ_OK);
    kizuna__challenge__free_unpacked(c, NULL);
    cr_assert_eq(challenge("later", T0 + 86400000LL + 1500, 60000), 201);
    cr_assert_eq(kz_node_challenge_load(st, MUNI, "old1", &c), KZ_ENOTFOUND);
    cr_assert_eq(kz_node_challenge_load(st, MUNI, "old2", &c), KZ_OK);
    kizuna__challenge__free_unpacked(c, NULL);
    cr_assert_eq(kz_node_challenge_load(st, MUNI, "young", &c), KZ_OK);
    kizuna__challenge__free_unpacked(c, NULL);
}

Test(idcheck, crl_newer_only)
{
    static uint8_t pem[] = "-----BEGIN X509 CRL-----";
    Kizuna__IdentityCrl c = KIZUNA__IDENTITY_CRL__INIT;
    c.has_crl = c.has_this_update_ms = 1;
    c.crl.data = pem;
    c.crl.len = sizeof pem - 1;
    c.this_update_ms = T0;
    Kizuna__PutCrl pc = KIZUNA__PUT_CRL__INIT;
    pc.crl = &c;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_CRL;
    cmd.put_crl = &pc;
    cr_assert_eq(apply_at(&cmd, T0, NULL), 200);
    uint64_t v1 = next_index - 1;
    c.this_update_ms = T0 - 1;
    cr_assert_eq(apply_at(&cmd, T0, NULL), 409);
    c.this_update_ms = T0 + 1;
    cr_assert_eq(apply_at(&cmd, T0, NULL), 200);
    Kizuna__IdentityCrl *got;
    cr_assert_eq(kz_node_crl_load(st, MUNI, &got), KZ_OK);
    cr_assert_eq(got->version, v1 + 2);
    kizuna__identity_crl__free_unpacked(got, NULL);
    /* A verdict made with the first CRL no longer counts. */
    json_t *j;
    cr_assert_eq(challenge("c7", T0, 60000), 201);
    cr_assert_eq(verdict("c7", nonce_a, "ok", key_a, v1, T0 + 1, &j), 409);
    cr_assert_str_eq(reason(j), "crl_changed");
    json_decref(j);
}
