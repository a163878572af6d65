/*
 * test_idcheck.c — identity checks on a real 3-node cluster (DOMAIN.md §3):
 * cards from deploy/gen-cards (EC P-256 and RSA-2048) bound to people; a
 * challenge made through one node and verified through another; a
 * challenge used once cluster-wide, also across a leader change (the
 * leader is killed between challenge and verification); the distinct
 * refusals (challenge_used, challenge_expired, challenge_unknown,
 * bad_signature, revoked after a new CRL, unknown_certificate for another
 * CA and for a valid card bound to nobody); an older CRL refused; the
 * disaster fallback (terminal only, needs the stored photo, assurance low);
 * and every outcome in the audit log.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "harness.h"

static struct kz_it_cluster cluster;
/* Short-lived challenges, so expiry can be seen; long enough for a call
 * that waits out an election. */
static const char *const sets[] = {"challenge_ttl_s=10", NULL};

static void setup(void)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", sets);
}

static void teardown(void)
{
    kz_it_down(&cluster);
}

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A JSON call; retries while the cluster answers 503 or nobody answers.
 * Returns the status; *out (may be NULL) the decoded body. */
struct call {
    kz_cli *cli;
    const char *method, *path, *body;
    long status;
    json_t *json;
};

static bool call_once(void *arg)
{
    struct call *c = arg;
    kz_cli_response r;
    json_decref(c->json);
    c->json = NULL;
    if (kz_cli_request(c->cli, c->method, c->path, NULL, c->body,
                       c->body ? strlen(c->body) : 0, &r) != KZ_CLI_OK)
        return false;
    c->status = r.status;
    c->json = json_loadb(r.body, r.body_len, 0, NULL);
    kz_cli_response_free(&r);
    return c->status != 503;
}

static long call(kz_cli *cli, const char *method, const char *path,
                 const char *body, json_t **out)
{
    struct call c = {cli, method, path, body, 0, NULL};
    cr_assert(kz_it_wait(call_once, &c, 30000), "%s %s: no answer", method,
              path);
    if (out)
        *out = c.json;
    else
        json_decref(c.json);
    return c.status;
}

static char *add_victim(kz_cli *reg, const char *name)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"name_kana\":\"ほんにん たろう\","
             "\"dob\":\"1960-01-02\",\"sex\":\"male\"}",
             name);
    json_t *j;
    cr_assert_eq(call(reg, "POST", "/v1/victims", body, &j), 201);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    return id;
}

static char *file_b64_der(const char *pem_path)
{
    FILE *f = fopen(pem_path, "r");
    cr_assert_not_null(f, "%s", pem_path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(x);
    unsigned char *der = NULL;
    int len = i2d_X509(x, &der);
    X509_free(x);
    cr_assert_gt(len, 0);
    char *out = malloc(4 * ((size_t)len + 2) / 3 + 4);
    EVP_EncodeBlock((unsigned char *)out, der, len);
    OPENSSL_free(der);
    return out;
}

/* The card's part: sign SHA-256 of the nonce (base64) with its key. */
static char *sign_b64(const char *key_path, const char *nonce_b64)
{
    unsigned char nonce[64];
    int nl = EVP_DecodeBlock(nonce, (const unsigned char *)nonce_b64,
                             (int)strlen(nonce_b64));
    cr_assert_eq(nl, 33, "nonce: 32 bytes in base64 (decoded with padding)");
    FILE *f = fopen(key_path, "r");
    cr_assert_not_null(f, "%s", key_path);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    cr_assert_not_null(k);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t sl = sizeof sig;
    cr_assert_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    cr_assert_eq(EVP_DigestSign(md, sig, &sl, nonce, 32), 1);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    char *out = malloc(4 * (sl + 2) / 3 + 4);
    EVP_EncodeBlock((unsigned char *)out, sig, (int)sl);
    return out;
}

struct card {
    char pem[512], key[512];
};

static void card_paths(struct card *c, const char *dir, const char *name)
{
    snprintf(c->pem, sizeof c->pem, "%s/cards/%s.pem", dir, name);
    snprintf(c->key, sizeof c->key, "%s/cards/%s.key", dir, name);
}

static void bind_card(kz_cli *reg, const char *vid, const struct card *c,
                      long want)
{
    char *der = file_b64_der(c->pem);
    char path[160], *body = malloc(strlen(der) + 64);
    snprintf(path, sizeof path, "/v1/identity/cards/%s", vid);
    sprintf(body, "{\"certificate\":\"%s\"}", der);
    cr_assert_eq(call(reg, "PUT", path, body, NULL), want);
    free(body);
    free(der);
}

/* A challenge: its id and nonce (both malloc'd). */
static void challenge(kz_cli *t, char **id, char **nonce)
{
    json_t *j;
    cr_assert_eq(call(t, "POST", "/v1/identity/challenges", NULL, &j), 201);
    *id = strdup(json_string_value(json_object_get(j, "challenge_id")));
    *nonce = strdup(json_string_value(json_object_get(j, "nonce")));
    cr_assert_not_null(json_object_get(j, "expires"));
    json_decref(j);
}

/* POST /v1/identity/verifications; the body of the answer in *out. */
static long verify(kz_cli *t, const char *cid, const struct card *c,
                   const char *signed_nonce, json_t **out)
{
    char *der = file_b64_der(c->pem);
    char *sig = sign_b64(c->key, signed_nonce);
    char *body = malloc(strlen(der) + strlen(sig) + 256);
    sprintf(body,
            "{\"challenge_id\":\"%s\",\"certificate\":\"%s\","
            "\"signature\":\"%s\"}",
            cid, der, sig);
    long st = call(t, "POST", "/v1/identity/verifications", body, out);
    free(body);
    free(sig);
    free(der);
    return st;
}

static const char *str(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* jp, not the value: the call that fills it is an argument too. */
static void expect_reason(long st, json_t **jp, long want_st, const char *why)
{
    json_t *j = *jp;
    char *d = json_dumps(j, JSON_COMPACT);
    cr_assert_eq(st, want_st, "status %ld, want %ld (%s): %s", st, want_st,
                 why, d);
    cr_assert(json_is_false(json_object_get(j, "verified")), "%s", d);
    free(d);
    cr_assert_str_eq(str(j, "reason"), why);
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static bool past(void *arg)
{
    return now_ms() > *(int64_t *)arg;
}

static bool has_leader(void *arg)
{
    return kz_it_leader(arg) != 0;
}

Test(idcheck, cards_challenges_crl_and_fallback, .init = setup,
     .fini = teardown, .timeout = 300)
{
    char pki[300], other[300];
    snprintf(pki, sizeof pki, "%s/pki", cluster.dir);
    snprintf(other, sizeof other, "%s/other-ca", cluster.dir);
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    kz_cli *t1 = kz_it_client(&cluster, "terminal", "1", 20000);
    kz_cli *t2 = kz_it_client(&cluster, "terminal", "2", 20000);
    kz_cli *t3 = kz_it_client(&cluster, "terminal", "3", 20000);
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    kz_cli *op = kz_it_client(&cluster, "operator", NULL, 20000);
    char *alice = add_victim(reg, "本人 一郎");
    char *bob = add_victim(reg, "本人 二郎");

    /* Cards: EC for alice, RSA for bob, one bound to nobody, and one from
     * another CA. */
    struct card ca, cb, cn, cx;
    sh("'" KZ_SOURCE_DIR "/deploy/gen-cards' '%s' %s >/dev/null", pki, alice);
    sh("'" KZ_SOURCE_DIR "/deploy/gen-cards' '%s' %s --rsa >/dev/null", pki,
       bob);
    sh("'" KZ_SOURCE_DIR "/deploy/gen-cards' '%s' %s >/dev/null", pki,
       "nobody");
    sh("'" KZ_SOURCE_DIR "/deploy/gen-cards' '%s' %s >/dev/null", other,
       "stranger");
    card_paths(&ca, pki, alice);
    card_paths(&cb, pki, bob);
    card_paths(&cn, pki, "nobody");
    card_paths(&cx, other, "stranger");
    bind_card(reg, alice, &ca, 201);
    bind_card(reg, alice, &ca, 200);    /* again: the same binding */
    bind_card(reg, bob, &ca, 409);      /* a card is one person's */
    bind_card(reg, bob, &cb, 201);
    bind_card(reg, bob, &cx, 422);      /* not from the authentication CA */
    bind_card(reg, "nosuchvictim", &cb, 404);
    cr_assert_eq(call(cw, "PUT", "/v1/identity/cards/x", "{}", NULL), 403);

    /* Challenge through node 1, verified through node 2 (EC), replayed
     * through node 3. */
    char *cid, *nonce;
    json_t *j;
    challenge(t1, &cid, &nonce);
    cr_assert_eq(verify(t2, cid, &ca, nonce, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "verified")), "%s",
              json_dumps(j, 0));
    cr_assert_str_eq(str(j, "assurance"), "high");
    cr_assert_str_eq(str(j, "victim_id"), alice);
    /* The terminal's organisation (the municipality) gets its link code. */
    cr_assert_gt(strlen(str(j, "link_code")), 20);
    char *alice_code = strdup(str(j, "link_code"));
    json_decref(j);
    expect_reason(verify(t3, cid, &ca, nonce, &j), &j, 409, "challenge_used");
    json_decref(j);
    free(cid);
    free(nonce);

    /* RSA card; the same person's link code is stable. */
    challenge(t3, &cid, &nonce);
    cr_assert_eq(verify(t1, cid, &cb, nonce, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "verified")));
    cr_assert_str_eq(str(j, "victim_id"), bob);
    json_decref(j);
    free(cid);
    free(nonce);
    challenge(t2, &cid, &nonce);
    cr_assert_eq(verify(t2, cid, &ca, nonce, &j), 200);
    cr_assert_str_eq(str(j, "link_code"), alice_code);
    json_decref(j);
    free(cid);
    free(nonce);

    /* A signature over another nonce; a card bound to nobody; a card of
     * another CA. Each consumes its challenge. */
    char *cid2, *nonce2;
    challenge(t1, &cid, &nonce);
    challenge(t1, &cid2, &nonce2);
    expect_reason(verify(t2, cid, &ca, nonce2, &j), &j, 200, "bad_signature");
    json_decref(j);
    expect_reason(verify(t2, cid, &ca, nonce, &j), &j, 409, "challenge_used");
    json_decref(j);
    expect_reason(verify(t3, cid2, &cn, nonce2, &j), &j, 200,
                  "unknown_certificate");
    json_decref(j);
    free(cid);
    free(nonce);
    free(cid2);
    free(nonce2);
    challenge(t1, &cid, &nonce);
    expect_reason(verify(t1, cid, &cx, nonce, &j), &j, 200,
                  "unknown_certificate");
    json_decref(j);
    free(cid);
    free(nonce);
    challenge(t1, &cid, &nonce);
    expect_reason(verify(t1, "nosuchchallenge", &ca, nonce, &j), &j, 404,
                  "challenge_unknown");
    json_decref(j);
    free(cid);
    free(nonce);

    /* Expiry: a challenge used after its expiry is refused as such. */
    challenge(t1, &cid, &nonce);
    int64_t until = now_ms() + 10500;
    cr_assert(kz_it_wait(past, &until, 20000));
    expect_reason(verify(t2, cid, &ca, nonce, &j), &j, 409,
                  "challenge_expired");
    json_decref(j);
    free(cid);
    free(nonce);

    /* Revocation: a new CRL installed by the operator takes effect on
     * every node; the old CRL is then refused as older. */
    char crl_path[400];
    snprintf(crl_path, sizeof crl_path, "%s/auth-ca.crl", pki);
    char *old_crl = kz_it_slurp(crl_path);
    cr_assert_not_null(old_crl);
    struct timeval tv0;
    gettimeofday(&tv0, NULL);
    /* A CRL's thisUpdate has one-second resolution: make the new one
     * strictly newer. */
    int64_t next_second = (int64_t)(tv0.tv_sec + 1) * 1000 + 50;
    cr_assert(kz_it_wait(past, &next_second, 5000));
    sh("'" KZ_SOURCE_DIR "/deploy/gen-cards' '%s' --revoke %s >/dev/null",
       pki, bob);
    char *crl = kz_it_slurp(crl_path);
    cr_assert_eq(call(op, "PUT", "/v1/identity/crl", crl, &j), 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "revoked")), 1);
    json_decref(j);
    cr_assert_eq(call(op, "PUT", "/v1/identity/crl", old_crl, NULL), 409);
    cr_assert_eq(call(op, "PUT", "/v1/identity/crl", "not a crl", NULL), 422);
    cr_assert_eq(call(op, "GET", "/v1/identity/crl", NULL, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "installed")));
    cr_assert(json_is_false(json_object_get(j, "stale")));
    json_decref(j);
    free(crl);
    free(old_crl);
    for (int node = 1; node <= 3; node++) {
        kz_cli *t = node == 1 ? t1 : node == 2 ? t2 : t3;
        challenge(t, &cid, &nonce);
        expect_reason(verify(t, cid, &cb, nonce, &j), &j, 200, "revoked");
        json_decref(j);
        free(cid);
        free(nonce);
    }

    /* A leader change between challenge and verification: the challenge
     * is still there, still usable once. */
    challenge(t1, &cid, &nonce);
    int leader = kz_it_leader(&cluster);
    cr_assert_gt(leader, 0);
    char args[64];
    snprintf(args, sizeof args, "kill %d", leader);
    cr_assert_eq(kz_it_ctl(&cluster, args), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000));
    int other_node = leader == 1 ? 2 : 1;
    kz_cli *ts = other_node == 1 ? t1 : t2;
    cr_assert_eq(verify(ts, cid, &ca, nonce, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "verified")));
    json_decref(j);
    int third = 6 - leader - other_node;
    kz_cli *tt = third == 1 ? t1 : third == 2 ? t2 : t3;
    expect_reason(verify(tt, cid, &ca, nonce, &j), &j, 409, "challenge_used");
    json_decref(j);
    snprintf(args, sizeof args, "restart %d", leader);
    cr_assert_eq(kz_it_ctl(&cluster, args), 0);
    free(cid);
    free(nonce);

    /* Disaster fallback: terminals only; the stored photo must exist. */
    char fb[256];
    snprintf(fb, sizeof fb,
             "{\"victim_id\":\"%s\",\"photo_compared\":true,"
             "\"knowledge_check\":true,\"confirmed_by\":\"staff-17\"}",
             alice);
    cr_assert_eq(call(cw, "POST", "/v1/identity/fallback", fb, NULL), 403);
    cr_assert_eq(call(t1, "POST", "/v1/identity/fallback", fb, &j), 422);
    cr_assert_str_eq(str(json_object_get(j, "error"), "code"), "no_photo");
    json_decref(j);
    char ppath[128];
    snprintf(ppath, sizeof ppath, "/v1/photos/%s", alice);
    char jpg[64] = {(char)0xff, (char)0xd8, (char)0xff, (char)0xe0};
    kz_cli_response r;
    const char *h[] = {"Content-Type: image/jpeg", NULL};
    cr_assert_eq(kz_cli_request(reg, "PUT", ppath, h, jpg, sizeof jpg, &r),
                 KZ_CLI_OK);
    cr_assert_eq(r.status, 201);
    kz_cli_response_free(&r);
    cr_assert_eq(call(t1, "POST", "/v1/identity/fallback", fb, &j), 201);
    cr_assert_str_eq(str(j, "assurance"), "low");
    cr_assert_str_eq(str(j, "confirmed_by"), "staff-17");
    cr_assert_str_eq(str(j, "link_code"), alice_code);
    json_decref(j);
    char fb2[256];
    snprintf(fb2, sizeof fb2,
             "{\"victim_id\":\"%s\",\"photo_compared\":true,"
             "\"knowledge_check\":false,\"confirmed_by\":\"staff-17\"}",
             alice);
    cr_assert_eq(call(t1, "POST", "/v1/identity/fallback", fb2, NULL), 422);

    /* Every outcome is in the audit log: for alice, the 3 good checks by
     * card (nodes 2 and 2, and across the leader change), the fallback and
     * its 2 refusals, each with its outcome. */
    kz_cli *au = kz_it_client(&cluster, "auditor", NULL, 20000);
    char apath[160];
    snprintf(apath, sizeof apath, "/v1/audit?subject=%s&limit=1000", alice);
    cr_assert_eq(call(au, "GET", apath, NULL, &j), 200);
    int verified = 0, fallbacks = 0, refused_fb = 0;
    json_t *items = json_object_get(j, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *a = str(it, "action");
        long oc = (long)json_integer_value(json_object_get(it, "outcome"));
        if (strcmp(a, "identity.verify") == 0 && oc == 200)
            verified++;
        if (strcmp(a, "identity.fallback") == 0 && oc == 201)
            fallbacks++;
        if (strcmp(a, "identity.fallback") == 0 && oc == 422)
            refused_fb++;
    }
    json_decref(j);
    cr_assert_eq(verified, 3, "alice's verified checks in the audit log");
    cr_assert_eq(fallbacks, 1);
    cr_assert_eq(refused_fb, 2);
    /* Refusals about challenges are recorded too (by challenge id). */
    cr_assert_eq(call(au, "GET", "/v1/audit?limit=1000", NULL, &j), 200);
    int used = 0;
    items = json_object_get(j, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        if (strcmp(str(it, "action"), "identity.verify") == 0 &&
            json_integer_value(json_object_get(it, "outcome")) == 409)
            used++;
    }
    json_decref(j);
    cr_assert_geq(used, 4, "challenge_used/expired refusals audited");

    free(alice_code);
    free(alice);
    free(bob);
    kz_cli_close(reg);
    kz_cli_close(t1);
    kz_cli_close(t2);
    kz_cli_close(t3);
    kz_cli_close(cw);
    kz_cli_close(op);
    kz_cli_close(au);
}
