/*
 * api_identity.c — the identity-check endpoints of API.md (DOMAIN.md §3):
 *
 *   POST /v1/identity/challenges     a nonce the card signs, used once
 *   POST /v1/identity/verifications  {challenge_id, certificate, signature}
 *   POST /v1/identity/fallback       disaster identification without a card
 *   PUT  /v1/identity/crl            the authentication CA's CRL
 *   GET  /v1/identity/crl            its dates, and whether it is stale
 *   PUT  /v1/identity/cards/{victim}  bind a card's key to a person
 *
 * The cryptography runs here, on the node that took the call: the card's
 * certificate must chain to the authentication CA (config auth_ca, a CA of
 * its own, not the cluster's TLS CA), be valid now, not be on the installed
 * CRL, and its key must have signed the challenge's nonce (card.h). A
 * verification first waits for a read index, so a challenge created through
 * any node is visible, then reads the challenge and the CRL from local
 * state, checks the card, and proposes the verdict; apply (idcheck.c)
 * decides the rest once for the whole cluster. The trust (CA + CRL) is
 * rebuilt only when the installed CRL's version changes.
 *
 * Nothing here logs a certificate, a signature or a person: counters only.
 */
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "card.h"
#include "http_internal.h"
#include "idcheck.h"
#include "kz_error.h"
#include "records.h"

#define CARD_MAX (64 * 1024)
#define SIG_MAX 1024
#define OUTCOME_REFUSED 7 /* verifications[] slot: refused before checking */

static int64_t now_ms(void)
{
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void random_id(char out[33])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        memset(b, 0, sizeof b); /* caller checks with a second RAND_bytes */
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Standard base64 (padding optional, whitespace ignored) into a malloc'd
 * buffer of at most max bytes. NULL when malformed or too long. */
static unsigned char *b64_decode(const char *in, size_t max, size_t *len)
{
    size_t n = strlen(in);
    if (n == 0 || n / 4 * 3 > max + 3)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 4);
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int l1 = 0, l2 = 0;
    bool ok = out != NULL && ctx != NULL;
    if (ok) {
        EVP_DecodeInit(ctx);
        ok = EVP_DecodeUpdate(ctx, out, &l1, (const unsigned char *)in,
                              (int)n) >= 0 &&
             EVP_DecodeFinal(ctx, out + l1, &l2) == 1;
    }
    EVP_ENCODE_CTX_free(ctx);
    if (!ok || l1 + l2 == 0 || (size_t)(l1 + l2) > max) {
        free(out);
        return NULL;
    }
    *len = (size_t)(l1 + l2);
    return out;
}

/* The certificate field: PEM text as is, or base64 DER. */
static unsigned char *cert_bytes(const char *in, size_t *len)
{
    if (strncmp(in, "-----BEGIN", 10) == 0) {
        *len = strlen(in);
        return *len <= CARD_MAX ? (unsigned char *)strdup(in) : NULL;
    }
    return b64_decode(in, CARD_MAX, len);
}

/* Reads the CA file once. */
static int load_ca(struct kz_node *n, char *err, size_t errlen)
{
    struct kz_node_idcheck *ic = &n->idcheck;
    if (ic->ca_pem != NULL)
        return 0;
    if (n->cfg.auth_ca[0] == '\0') {
        snprintf(err, errlen, "identity checks are not configured on this "
                              "node (auth_ca: the citizens' cards' CA)");
        return -1;
    }
    FILE *f = fopen(n->cfg.auth_ca, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "auth_ca cannot be read on this node");
        return -1;
    }
    char *buf = malloc(CARD_MAX + 1);
    size_t got = buf ? fread(buf, 1, CARD_MAX, f) : 0;
    fclose(f);
    if (got == 0) {
        free(buf);
        snprintf(err, errlen, "auth_ca is empty or unreadable on this node");
        return -1;
    }
    buf[got] = '\0';
    ic->ca_pem = buf;
    ic->ca_len = got;
    return 0;
}

/* The trust for the CRL installed in state (version crl_version). */
static int ensure_trust(struct kz_node *n, const Kizuna__IdentityCrl *crl,
                        char *err, size_t errlen)
{
    struct kz_node_idcheck *ic = &n->idcheck;
    uint64_t version = crl ? crl->version : 0;
    if (load_ca(n, err, errlen) != 0)
        return -1;
    if (ic->trust != NULL && ic->trust_crl_version == version)
        return 0;
    struct kz_card_trust *t;
    if (kz_card_trust_new(ic->ca_pem, ic->ca_len,
                          crl ? (const char *)crl->crl.data : NULL,
                          crl ? crl->crl.len : 0, &t, err, errlen) != KZ_OK)
        return -1;
    kz_card_trust_free(ic->trust);
    ic->trust = t;
    ic->trust_crl_version = version;
    return 0;
}

void kz_node_idcheck_free(struct kz_node *n)
{
    kz_card_trust_free(n->idcheck.trust);
    free(n->idcheck.ca_pem);
    n->idcheck.trust = NULL;
    n->idcheck.ca_pem = NULL;
}

/* ------------------------------------------------------------ challenge */

static int handle_challenge(struct kz_node *n, h2o_req_t *req,
                            const struct route *r, const char *rid)
{
    if (req->entity.base != NULL && req->entity.len > 0) {
        json_t *body = kz_http_parse_body(n, req, rid);
        static const char *const none[] = {NULL};
        bool ok = body && kz_http_check_fields(n, req, rid, body, none, none);
        json_decref(body);
        if (!ok)
            return 0;
    }
    char id[33];
    unsigned char nonce[KZ_CARD_NONCE_LEN];
    random_id(id);
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        kz_http_send_error(n, req, rid, 500, "internal", "no randomness");
        return 0;
    }
    struct kz_http_caller_view who;
    kz_http_caller(n, &who);
    Kizuna__Challenge c = KIZUNA__CHALLENGE__INIT;
    c.id = id;
    c.has_nonce = c.has_expires_ms = 1;
    c.nonce.data = nonce;
    c.nonce.len = sizeof nonce;
    c.expires_ms = now_ms() + (int64_t)n->cfg.challenge_ttl_s * 1000;
    c.org = (char *)who.org;
    Kizuna__CreateChallenge cc = KIZUNA__CREATE_CHALLENGE__INIT;
    cc.challenge = &c;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_CHALLENGE;
    cmd.create_challenge = &cc;
    return kz_http_propose(n, req, r, "", rid, &cmd);
}

/* --------------------------------------------------------- verification */

struct verify_job {
    char challenge_id[80];
    unsigned char *cert, *sig;
    size_t cert_len, sig_len;
};

static void verify_job_free(void *p)
{
    struct verify_job *j = p;
    if (j == NULL)
        return;
    free(j->cert);
    free(j->sig);
    free(j);
}

static void verify_refused(struct kz_node *n, h2o_req_t *req,
                           const struct route *r, const char *rid, int status,
                           const char *code, const char *message)
{
    n->idcheck.verifications[OUTCOME_REFUSED]++;
    kz_http_send_error(n, req, rid, status, code, message);
    kz_http_audit_refusal(n, r, "", rid, status);
}

static void verify_after(struct kz_node *n, h2o_req_t *req,
                         const struct route *r, const char *arg,
                         const char *rid, void *data, int status)
{
    (void)arg;
    struct verify_job *j = data;
    if (status != 0) {
        kz_http_send_cons_error(n, req, rid, status, false);
        return;
    }
    const char *muni = n->cfg.municipality;
    struct kz_http_caller_view who;
    kz_http_caller(n, &who);
    Kizuna__VerifyIdentity vi = KIZUNA__VERIFY_IDENTITY__INIT;
    vi.challenge_id = j->challenge_id;
    vi.org = (char *)who.org;
    Kizuna__Challenge *c = NULL;
    Kizuna__IdentityCrl *crl = NULL;
    struct kz_card_result res;
    memset(&res, 0, sizeof res);
    uint8_t h[SHA256_DIGEST_LENGTH];
    int rv = kz_node_challenge_load(n->stor, muni, j->challenge_id, &c);
    if (rv == KZ_OK) {
        int cr = kz_node_crl_load(n->stor, muni, &crl);
        char err[256];
        if (cr != KZ_OK && cr != KZ_ENOTFOUND) {
            kz_http_send_error(n, req, rid, 500, "internal",
                               "the installed CRL does not decode");
            goto out;
        }
        if (ensure_trust(n, crl, err, sizeof err) != 0) {
            verify_refused(n, req, r, rid, 503, "identity_not_configured",
                           err);
            goto out;
        }
        if (c->nonce.len != KZ_CARD_NONCE_LEN ||
            kz_card_verify(n->idcheck.trust, j->cert, j->cert_len, j->sig,
                           j->sig_len, c->nonce.data, now_ms(),
                           &res) != KZ_OK) {
            kz_http_send_error(n, req, rid, 500, "internal",
                               "the card could not be checked");
            goto out;
        }
        SHA256(c->nonce.data, c->nonce.len, h);
        vi.has_nonce_sha256 = 1;
        vi.nonce_sha256.data = h;
        vi.nonce_sha256.len = sizeof h;
        vi.outcome = (char *)kz_card_outcome_name(res.outcome);
        vi.key_sha256 = res.key_sha256[0] ? res.key_sha256 : NULL;
        vi.serial = res.serial_hex[0] ? res.serial_hex : NULL;
        vi.has_crl_version = 1;
        vi.crl_version = crl ? crl->version : 0;
        vi.has_crl_stale = 1;
        vi.crl_stale = res.crl_stale;
        if ((unsigned)res.outcome < OUTCOME_REFUSED)
            n->idcheck.verifications[res.outcome]++;
    } else if (rv == KZ_ENOTFOUND) {
        /* Apply answers 404 and records the attempt. */
        vi.outcome = (char *)"unchecked";
    } else {
        kz_http_send_error(n, req, rid, 500, "internal", kz_strerror(rv));
        goto out;
    }
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_VERIFY_IDENTITY;
    cmd.verify_identity = &vi;
    kz_http_propose(n, req, r, "", rid, &cmd);
out:
    if (c)
        kizuna__challenge__free_unpacked(c, NULL);
    if (crl)
        kizuna__identity_crl__free_unpacked(crl, NULL);
}

static int handle_verify(struct kz_node *n, h2o_req_t *req,
                         const struct route *r, const char *rid)
{
    json_t *body = kz_http_parse_body(n, req, rid);
    if (body == NULL)
        return 0;
    static const char *const fields[] = {"challenge_id", "certificate",
                                         "signature", NULL};
    static const char *const req_fields[] = {"challenge_id", NULL};
    if (!kz_http_check_fields(n, req, rid, body, fields, req_fields)) {
        json_decref(body);
        return 0;
    }
    const char *cid = json_string_value(json_object_get(body, "challenge_id"));
    const char *cert = json_string_value(json_object_get(body, "certificate"));
    const char *sig = json_string_value(json_object_get(body, "signature"));
    struct verify_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        json_decref(body);
        kz_http_send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    if (!kz_node_valid_ref(cid) || cert == NULL || sig == NULL ||
        (j->cert = cert_bytes(cert, &j->cert_len)) == NULL ||
        (j->sig = b64_decode(sig, SIG_MAX, &j->sig_len)) == NULL) {
        json_decref(body);
        verify_job_free(j);
        verify_refused(n, req, r, rid, 400, "bad_request",
                       "challenge_id: the id POST /v1/identity/challenges "
                       "gave; certificate: the card's certificate, base64 "
                       "DER or PEM (at most 64 KiB); signature: base64");
        return 0;
    }
    snprintf(j->challenge_id, sizeof j->challenge_id, "%s", cid);
    json_decref(body);
    return kz_http_after_read_index(n, req, r, "", rid, j, verify_after,
                                    verify_job_free);
}

/* ------------------------------------------------------------- fallback */

static int handle_fallback(struct kz_node *n, h2o_req_t *req,
                           const struct route *r, const char *rid,
                           json_t *body)
{
    static const char *const fields[] = {"victim_id", "photo_compared",
                                         "knowledge_check", "confirmed_by",
                                         NULL};
    static const char *const required[] = {"victim_id", "confirmed_by", NULL};
    if (!kz_http_check_fields(n, req, rid, body, fields, required))
        return 0;
    const char *vid = json_string_value(json_object_get(body, "victim_id"));
    const char *by = json_string_value(json_object_get(body, "confirmed_by"));
    json_t *pc = json_object_get(body, "photo_compared");
    json_t *kc = json_object_get(body, "knowledge_check");
    if (!kz_node_valid_ref(vid) || !kz_node_valid_text(by, 128) ||
        !json_is_boolean(pc) || !json_is_boolean(kc)) {
        kz_http_send_error(n, req, rid, 400, "bad_request",
                           "victim_id: a victim id; confirmed_by: who "
                           "compared and asked (text, at most 128 bytes); "
                           "photo_compared, knowledge_check: booleans");
        return 0;
    }
    char id[33];
    unsigned char fresh[16];
    random_id(id);
    if (RAND_bytes(fresh, sizeof fresh) != 1) {
        kz_http_send_error(n, req, rid, 500, "internal", "no randomness");
        return 0;
    }
    struct kz_http_caller_view who;
    kz_http_caller(n, &who);
    Kizuna__IdentityFallback f = KIZUNA__IDENTITY_FALLBACK__INIT;
    f.id = id;
    f.victim_id = (char *)vid;
    f.org = (char *)who.org;
    f.confirmed_by = (char *)by;
    f.has_photo_compared = f.has_knowledge_check = 1;
    f.photo_compared = json_is_true(pc);
    f.knowledge_check = json_is_true(kc);
    f.terminal = (char *)who.cert_sha256;
    f.has_new_id_code = 1;
    f.new_id_code.data = fresh;
    f.new_id_code.len = sizeof fresh;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_IDENTITY_FALLBACK;
    cmd.identity_fallback = &f;
    n->idcheck.fallbacks++;
    return kz_http_propose(n, req, r, vid, rid, &cmd);
}

/* ------------------------------------------------------------------ CRL */

static int64_t asn1_ms(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

static int handle_crl_put(struct kz_node *n, h2o_req_t *req,
                          const struct route *r, const char *rid)
{
    const char *p = req->entity.base;
    size_t len = p ? req->entity.len : 0;
    char err[256];
    if (len == 0) {
        kz_http_send_error(n, req, rid, 400, "bad_request",
                           "the body is the CRL, PEM or DER");
        return 0;
    }
    if (load_ca(n, err, sizeof err) != 0) {
        kz_http_send_error(n, req, rid, 503, "identity_not_configured", err);
        return 0;
    }
    /* It must be the authentication CA's, correctly signed. */
    struct kz_card_trust *t;
    if (kz_card_trust_new(n->idcheck.ca_pem, n->idcheck.ca_len, p, len, &t,
                          err, sizeof err) != KZ_OK) {
        char msg[320];
        snprintf(msg, sizeof msg, "not a CRL of the authentication CA: %s",
                 err);
        kz_http_send_error(n, req, rid, 422, "bad_crl", msg);
        return 0;
    }
    kz_card_trust_free(t);
    BIO *bio = BIO_new_mem_buf(p, (int)len);
    X509_CRL *crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
    if (crl == NULL) {
        const unsigned char *q = (const unsigned char *)p;
        crl = d2i_X509_CRL(NULL, &q, (long)len);
    }
    BIO_free(bio);
    if (crl == NULL) {
        kz_http_send_error(n, req, rid, 422, "bad_crl",
                           "the CRL does not parse");
        return 0;
    }
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    Kizuna__IdentityCrl c = KIZUNA__IDENTITY_CRL__INIT;
    c.has_crl = c.has_this_update_ms = c.has_next_update_ms = 1;
    c.has_revoked = 1;
    c.crl.data = (uint8_t *)p;
    c.crl.len = len;
    c.this_update_ms = asn1_ms(X509_CRL_get0_lastUpdate(crl));
    c.next_update_ms = asn1_ms(X509_CRL_get0_nextUpdate(crl));
    c.revoked = rev ? (uint64_t)sk_X509_REVOKED_num(rev) : 0;
    X509_CRL_free(crl);
    Kizuna__PutCrl pc = KIZUNA__PUT_CRL__INIT;
    pc.crl = &c;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_CRL;
    cmd.put_crl = &pc;
    return kz_http_propose(n, req, r, "", rid, &cmd);
}

json_t *kz_api_crl_status(struct kz_node *n)
{
    Kizuna__IdentityCrl *crl;
    if (kz_node_crl_load(n->stor, n->cfg.municipality, &crl) != KZ_OK)
        return json_pack("{s:b}", "installed", 0);
    char tu[40], nu[40], at[40];
    kz_node_format_time(crl->this_update_ms, tu, sizeof tu);
    kz_node_format_time(crl->next_update_ms, nu, sizeof nu);
    kz_node_format_time(crl->installed_ms, at, sizeof at);
    json_t *o = json_pack("{s:b,s:s,s:s,s:s,s:b,s:I,s:I}", "installed", 1,
                          "this_update", tu, "next_update", nu, "installed_at",
                          at, "stale",
                          crl->next_update_ms > 0 &&
                              now_ms() > crl->next_update_ms,
                          "revoked", (json_int_t)crl->revoked, "version",
                          (json_int_t)crl->version);
    kizuna__identity_crl__free_unpacked(crl, NULL);
    return o;
}

int kz_api_identity_metrics(struct kz_node *n, char *buf, size_t cap)
{
    static const char *const names[] = {"ok", "bad_signature", "revoked",
                                        "expired", "unknown_certificate",
                                        "malformed", "", "refused"};
    int64_t next = 0;
    int installed = 0;
    Kizuna__IdentityCrl *crl;
    if (kz_node_crl_load(n->stor, n->cfg.municipality, &crl) == KZ_OK) {
        installed = 1;
        next = crl->next_update_ms;
        kizuna__identity_crl__free_unpacked(crl, NULL);
    }
    size_t off = 0;
    int w = snprintf(buf, cap,
                     "# HELP kizuna_identity_checks_total Card checks made on "
                     "this node, by the card's verdict (refused: bad input "
                     "or not configured).\n"
                     "# TYPE kizuna_identity_checks_total counter\n");
    for (int i = 0; i < 8 && w > 0 && (off += (size_t)w) < cap; i++)
        w = names[i][0] ? snprintf(buf + off, cap - off,
                                   "kizuna_identity_checks_total{verdict=\"%s\"}"
                                   " %llu\n",
                                   names[i],
                                   (unsigned long long)
                                       n->idcheck.verifications[i])
                        : 0;
    if (off < cap && w >= 0)
        off += (size_t)snprintf(
            buf + off, cap - off,
            "# HELP kizuna_identity_fallbacks_total Disaster fallback "
            "identifications proposed here.\n"
            "# TYPE kizuna_identity_fallbacks_total counter\n"
            "kizuna_identity_fallbacks_total %llu\n"
            "# HELP kizuna_identity_crl_installed 1 when a CRL of the "
            "authentication CA is installed.\n"
            "# TYPE kizuna_identity_crl_installed gauge\n"
            "kizuna_identity_crl_installed %d\n"
            "# HELP kizuna_identity_crl_next_update_seconds The installed "
            "CRL's nextUpdate (Unix time; 0 none).\n"
            "# TYPE kizuna_identity_crl_next_update_seconds gauge\n"
            "kizuna_identity_crl_next_update_seconds %lld\n"
            "# HELP kizuna_identity_crl_stale 1 when the installed CRL is "
            "past its nextUpdate.\n"
            "# TYPE kizuna_identity_crl_stale gauge\n"
            "kizuna_identity_crl_stale %d\n",
            (unsigned long long)n->idcheck.fallbacks, installed,
            (long long)(next / 1000), installed && next > 0 && now_ms() > next);
    return off < cap ? (int)off : -1;
}

/* ---------------------------------------------------------------- cards */

static int handle_card_put(struct kz_node *n, h2o_req_t *req,
                           const struct route *r, const char *arg,
                           const char *rid, json_t *body)
{
    static const char *const fields[] = {"certificate", NULL};
    static const char *const none[] = {NULL};
    if (!kz_http_check_fields(n, req, rid, body, fields, none))
        return 0;
    char err[256];
    size_t len;
    const char *text = json_string_value(json_object_get(body, "certificate"));
    unsigned char *cert = text ? cert_bytes(text, &len) : NULL;
    if (cert == NULL) {
        kz_http_send_error(n, req, rid, 400, "bad_request",
                           "certificate: the card's certificate, base64 DER "
                           "or PEM (at most 64 KiB)");
        return 0;
    }
    Kizuna__IdentityCrl *crl = NULL;
    int cr = kz_node_crl_load(n->stor, n->cfg.municipality, &crl);
    if ((cr != KZ_OK && cr != KZ_ENOTFOUND) ||
        ensure_trust(n, crl, err, sizeof err) != 0) {
        if (crl)
            kizuna__identity_crl__free_unpacked(crl, NULL);
        free(cert);
        kz_http_send_error(n, req, rid, 503, "identity_not_configured",
                           cr == KZ_OK || cr == KZ_ENOTFOUND
                               ? err
                               : "the installed CRL does not decode");
        return 0;
    }
    if (crl)
        kizuna__identity_crl__free_unpacked(crl, NULL);
    /* Checks 1-4 of kz_card_verify with no signature: a card that passes
     * them fails only at the signature. */
    static const unsigned char zero[KZ_CARD_NONCE_LEN];
    struct kz_card_result res;
    int rv = kz_card_verify(n->idcheck.trust, cert, len, NULL, 0, zero,
                            now_ms(), &res);
    free(cert);
    if (rv != KZ_OK) {
        kz_http_send_error(n, req, rid, 500, "internal",
                           "the card could not be checked");
        return 0;
    }
    if (res.outcome != KZ_CARD_BAD_SIGNATURE) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "this card cannot be bound: %s (it must chain to the "
                 "authentication CA, be valid and not revoked)",
                 kz_card_outcome_name(res.outcome));
        kz_http_send_error(n, req, rid, 422, "card_not_valid", msg);
        return 0;
    }
    unsigned char fresh[16];
    if (RAND_bytes(fresh, sizeof fresh) != 1) {
        kz_http_send_error(n, req, rid, 500, "internal", "no randomness");
        return 0;
    }
    Kizuna__BindCard bc = KIZUNA__BIND_CARD__INIT;
    bc.victim_id = (char *)arg;
    bc.key_sha256 = res.key_sha256;
    bc.serial = res.serial_hex;
    bc.has_new_id_code = 1;
    bc.new_id_code.data = fresh;
    bc.new_id_code.len = sizeof fresh;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_BIND_CARD;
    cmd.bind_card = &bc;
    return kz_http_propose(n, req, r, arg, rid, &cmd);
}

int kz_api_identity(struct kz_node *n, h2o_req_t *req, const struct route *r,
                    const char *arg, const char *rid)
{
    switch (r->id) {
    case RT_ID_CHALLENGE:
        return handle_challenge(n, req, r, rid);
    case RT_ID_VERIFY:
        return handle_verify(n, req, r, rid);
    case RT_ID_CRL_PUT:
        return handle_crl_put(n, req, r, rid);
    default:
        break;
    }
    json_t *body = kz_http_parse_body(n, req, rid);
    if (body == NULL)
        return 0;
    int rv = r->id == RT_ID_FALLBACK
                 ? handle_fallback(n, req, r, rid, body)
                 : handle_card_put(n, req, r, arg, rid, body);
    json_decref(body);
    return rv;
}
