/*
 * test_card.c — a citizen's card (node/card.h): every outcome of
 * kz_card_verify on real certificates, the CRL (fresh, stale, of another
 * CA), the trust's refusals, and the dev cards of deploy/gen-cards signed
 * through the CLI's `card sign` code (client/cli_args.h).
 *
 * Keys, certificates and CRLs are made here with the OpenSSL API, relative
 * to the wall clock read once per test: an authentication CA and another
 * CA (EC P-256), cards with EC P-256, RSA-2048, RSA-1024 and EC P-384 keys,
 * expired and not-yet-valid ones, CA certificates and self-signed leaves
 * posing as cards.
 */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "card.h"
#include "cli_args.h"

#define DAY 86400L

static time_t now_s;
static int64_t now_ms;
static EVP_PKEY *ca_key, *other_ca_key, *ec_key;
static X509 *ca, *other_ca;
static unsigned char nonce[KZ_CARD_NONCE_LEN];

/* ---- making certificates --------------------------------------------------- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(e, "extension %d = %s", nid, value);
    cr_assert_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

struct spec {
    long serial;
    long not_before; /* seconds from now */
    long not_after;
    bool is_ca;
    const char *key_usage; /* NULL: the default for is_ca */
};

/* A certificate for key, issued by issuer (NULL: self-signed) with
 * issuer_key. Caller frees with X509_free. */
static X509 *issue(X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *key,
                   const char *cn, struct spec s)
{
    X509 *x = X509_new();
    cr_assert_not_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), s.serial);
    cr_assert_not_null(ASN1_TIME_set(X509_getm_notBefore(x), now_s + s.not_before));
    cr_assert_not_null(ASN1_TIME_set(X509_getm_notAfter(x), now_s + s.not_after));
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    cr_assert_eq(X509_set_pubkey(x, key), 1);
    X509 *iss = issuer ? issuer : x;
    if (s.is_ca) {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        add_ext(x, iss, NID_key_usage,
                s.key_usage ? s.key_usage : "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, iss, NID_key_usage,
                s.key_usage ? s.key_usage : "critical,digitalSignature");
        add_ext(x, iss, NID_ext_key_usage, "clientAuth");
    }
    add_ext(x, iss, NID_subject_key_identifier, "hash");
    cr_assert_gt(X509_sign(x, issuer_key, EVP_sha256()), 0);
    return x;
}

static X509 *make_ca(EVP_PKEY *key, const char *cn)
{
    return issue(NULL, key, key, cn,
                 (struct spec){.serial = 1, .not_before = -DAY,
                               .not_after = 3650 * DAY, .is_ca = true});
}

/* A card of the authentication CA, valid from yesterday for a year. */
static X509 *make_card(EVP_PKEY *key, long serial)
{
    return issue(ca, ca_key, key, "3F2A9C0D1E",
                 (struct spec){.serial = serial, .not_before = -DAY,
                               .not_after = 365 * DAY});
}

static char *pem_of(X509 *x, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_X509(b, x), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

static unsigned char *der_of(X509 *x, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    cr_assert_gt(n, 0);
    unsigned char *out = malloc((size_t)n);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

/* A CRL of issuer listing these serials; lastUpdate and nextUpdate in
 * seconds from now. Returns PEM text (malloc'd). */
static char *make_crl(X509 *issuer, EVP_PKEY *key, const long *serials,
                      size_t n, long last, long next, size_t *len)
{
    X509_CRL *crl = X509_CRL_new();
    cr_assert_not_null(crl);
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
    ASN1_TIME *t = ASN1_TIME_set(NULL, now_s + last);
    X509_CRL_set1_lastUpdate(crl, t);
    ASN1_TIME *nt = ASN1_TIME_set(NULL, now_s + next);
    X509_CRL_set1_nextUpdate(crl, nt);
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        ASN1_INTEGER_set(sn, serials[i]);
        X509_REVOKED_set_serialNumber(r, sn);
        X509_REVOKED_set_revocationDate(r, t);
        cr_assert_eq(X509_CRL_add0_revoked(crl, r), 1);
        ASN1_INTEGER_free(sn);
    }
    X509_CRL_sort(crl);
    cr_assert_gt(X509_CRL_sign(crl, key, EVP_sha256()), 0);
    BIO *b = BIO_new(BIO_s_mem());
    cr_assert_eq(PEM_write_bio_X509_CRL(b, crl), 1);
    char *data;
    long bl = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)bl + 1);
    memcpy(out, data, (size_t)bl);
    out[bl] = '\0';
    *len = (size_t)bl;
    BIO_free(b);
    ASN1_TIME_free(t);
    ASN1_TIME_free(nt);
    X509_CRL_free(crl);
    return out;
}

/* The card's signature over msg (32 bytes), as a card makes it. */
static size_t sign(EVP_PKEY *key, const unsigned char *msg, unsigned char *sig,
                   size_t cap)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = cap;
    cr_assert_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key), 1);
    cr_assert_eq(EVP_DigestSign(md, sig, &len, msg, KZ_CARD_NONCE_LEN), 1);
    EVP_MD_CTX_free(md);
    return len;
}

/* A trust of these CAs (and CRL text, may be NULL). */
static struct kz_card_trust *trust_of(X509 *const *cas, size_t n,
                                      const char *crl, size_t crl_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(PEM_write_bio_X509(b, cas[i]), 1);
    char *data;
    long bl = BIO_get_mem_data(b, &data);
    struct kz_card_trust *t = NULL;
    char err[256];
    int rv = kz_card_trust_new(data, (size_t)bl, crl, crl_len, &t, err,
                               sizeof err);
    cr_assert_eq(rv, KZ_OK, "kz_card_trust_new: %s", err);
    cr_assert_not_null(t);
    BIO_free(b);
    return t;
}

static struct kz_card_trust *trust_ca(const char *crl, size_t crl_len)
{
    return trust_of(&ca, 1, crl, crl_len);
}

/* kz_card_verify of x as PEM and as DER with sig over nonce at `when`;
 * both must agree. Returns the PEM result. */
static struct kz_card_result verify_at(const struct kz_card_trust *t, X509 *x,
                                       const unsigned char *sig, size_t siglen,
                                       int64_t when)
{
    size_t plen, dlen;
    char *pem = pem_of(x, &plen);
    unsigned char *der = der_of(x, &dlen);
    struct kz_card_result r, rd;
    cr_assert_eq(kz_card_verify(t, (const unsigned char *)pem, plen, sig,
                                siglen, nonce, when, &r),
                 KZ_OK);
    cr_assert_eq(kz_card_verify(t, der, dlen, sig, siglen, nonce, when, &rd),
                 KZ_OK);
    cr_assert_eq(r.outcome, rd.outcome, "PEM %s, DER %s",
                 kz_card_outcome_name(r.outcome),
                 kz_card_outcome_name(rd.outcome));
    cr_assert_str_eq(r.serial_hex, rd.serial_hex);
    cr_assert_str_eq(r.key_sha256, rd.key_sha256);
    cr_assert_eq(ERR_peek_error(), 0, "OpenSSL error queue left non-empty");
    free(pem);
    free(der);
    return r;
}

static struct kz_card_result verify(const struct kz_card_trust *t, X509 *x,
                                    EVP_PKEY *signer)
{
    unsigned char sig[1024];
    size_t len = sign(signer, nonce, sig, sizeof sig);
    return verify_at(t, x, sig, len, now_ms);
}

#define ASSERT_OUTCOME(r, want)                                               \
    cr_assert_eq((r).outcome, (want), "got %s, want %s",                     \
                 kz_card_outcome_name((r).outcome),                           \
                 kz_card_outcome_name(want))

static void setup(void)
{
    now_s = time(NULL);
    now_ms = (int64_t)now_s * 1000 + 500;
    ca_key = EVP_EC_gen("P-256");
    other_ca_key = EVP_EC_gen("P-256");
    ec_key = EVP_EC_gen("P-256");
    cr_assert(ca_key && other_ca_key && ec_key);
    ca = make_ca(ca_key, "Kizuna Test Authentication CA");
    other_ca = make_ca(other_ca_key, "Some Other CA");
    cr_assert_eq(RAND_bytes(nonce, sizeof nonce), 1);
}

static void teardown(void)
{
    X509_free(ca);
    X509_free(other_ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_ca_key);
    EVP_PKEY_free(ec_key);
}

TestSuite(card, .init = setup, .fini = teardown);

/* ---- outcomes ---------------------------------------------------------------- */

Test(card, outcome_names_are_the_api_reasons)
{
    cr_assert_str_eq(kz_card_outcome_name(KZ_CARD_OK), "ok");
    cr_assert_str_eq(kz_card_outcome_name(KZ_CARD_BAD_SIGNATURE), "bad_signature");
    cr_assert_str_eq(kz_card_outcome_name(KZ_CARD_REVOKED), "revoked");
    cr_assert_str_eq(kz_card_outcome_name(KZ_CARD_EXPIRED), "expired");
    cr_assert_str_eq(kz_card_outcome_name(KZ_CARD_UNKNOWN_CERTIFICATE),
                     "unknown_certificate");
    cr_assert_str_eq(kz_card_outcome_name(KZ_CARD_MALFORMED), "malformed");
    cr_assert_str_eq(kz_card_outcome_name((enum kz_card_outcome)99), "unknown");
}

Test(card, ecdsa_card_verifies_and_names_serial_and_key)
{
    struct kz_card_trust *t = trust_ca(NULL, 0);
    X509 *card = make_card(ec_key, 0x4b5a01);
    struct kz_card_result r = verify(t, card, ec_key);
    ASSERT_OUTCOME(r, KZ_CARD_OK);
    cr_assert_str_eq(r.serial_hex, "4B5A01");
    cr_assert_not(r.crl_stale);

    /* The binding key: SHA-256 of the DER SubjectPublicKeyInfo. */
    unsigned char *spki = NULL, md[32];
    int n = i2d_PUBKEY(ec_key, &spki);
    cr_assert_gt(n, 0);
    cr_assert_eq(EVP_Digest(spki, (size_t)n, md, NULL, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    cr_assert_str_eq(r.key_sha256, hex);

    bool has, stale;
    int64_t next;
    kz_card_trust_crl_status(t, now_ms, &has, &next, &stale);
    cr_assert_not(has);
    cr_assert_eq(next, 0);
    cr_assert_not(stale);
    X509_free(card);
    kz_card_trust_free(t);
}

Test(card, rsa_2048_card_verifies_and_rsa_1024_is_refused)
{
    struct kz_card_trust *t = trust_ca(NULL, 0);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    cr_assert_not_null(rsa);
    X509 *card = make_card(rsa, 0x2048);
    struct kz_card_result r = verify(t, card, rsa);
    ASSERT_OUTCOME(r, KZ_CARD_OK);
    cr_assert_str_eq(r.serial_hex, "2048");
    cr_assert_eq(strlen(r.key_sha256), 64);

    /* The ECDSA card's signature is no RSA card's. */
    unsigned char sig[512];
    size_t len = sign(ec_key, nonce, sig, sizeof sig);
    ASSERT_OUTCOME(verify_at(t, card, sig, len, now_ms), KZ_CARD_BAD_SIGNATURE);

    EVP_PKEY *weak = EVP_RSA_gen(1024);
    cr_assert_not_null(weak);
    X509 *weak_card = make_card(weak, 0x1024);
    r = verify(t, weak_card, weak);
    ASSERT_OUTCOME(r, KZ_CARD_UNKNOWN_CERTIFICATE);
    cr_assert_str_eq(r.serial_hex, "1024", "filled whatever the outcome");
    X509_free(weak_card);
    EVP_PKEY_free(weak);
    X509_free(card);
    EVP_PKEY_free(rsa);
    kz_card_trust_free(t);
}

Test(card, p384_card_is_refused)
{
    struct kz_card_trust *t = trust_ca(NULL, 0);
    EVP_PKEY *k = EVP_EC_gen("P-384");
    cr_assert_not_null(k);
    X509 *card = make_card(k, 384);
    struct kz_card_result r = verify(t, card, k);
    ASSERT_OUTCOME(r, KZ_CARD_UNKNOWN_CERTIFICATE);
    cr_assert_str_eq(r.serial_hex, "0180");
    X509_free(card);
    EVP_PKEY_free(k);
    kz_card_trust_free(t);
}

Test(card, bad_signatures)
{
    struct kz_card_trust *t = trust_ca(NULL, 0);
    X509 *card = make_card(ec_key, 7);
    unsigned char sig[256];
    size_t len = sign(ec_key, nonce, sig, sizeof sig);
    ASSERT_OUTCOME(verify_at(t, card, sig, len, now_ms), KZ_CARD_OK);

    /* Over another nonce (a replayed answer to an old challenge). */
    unsigned char other[KZ_CARD_NONCE_LEN], osig[256];
    memcpy(other, nonce, sizeof other);
    other[31] ^= 1;
    size_t olen = sign(ec_key, other, osig, sizeof osig);
    struct kz_card_result r = verify_at(t, card, osig, olen, now_ms);
    ASSERT_OUTCOME(r, KZ_CARD_BAD_SIGNATURE);
    cr_assert_str_eq(r.serial_hex, "07");
    cr_assert_eq(strlen(r.key_sha256), 64);

    /* Truncated, empty, one bit flipped, another key's. */
    ASSERT_OUTCOME(verify_at(t, card, sig, len - 1, now_ms), KZ_CARD_BAD_SIGNATURE);
    ASSERT_OUTCOME(verify_at(t, card, sig, len / 2, now_ms), KZ_CARD_BAD_SIGNATURE);
    ASSERT_OUTCOME(verify_at(t, card, sig, 0, now_ms), KZ_CARD_BAD_SIGNATURE);
    ASSERT_OUTCOME(verify_at(t, card, NULL, 0, now_ms), KZ_CARD_BAD_SIGNATURE);
    for (size_t i = 0; i < len; i += 5) {
        unsigned char bad[256];
        memcpy(bad, sig, len);
        bad[i] ^= 0x10;
        cr_assert_eq(verify_at(t, card, bad, len, now_ms).outcome,
                     KZ_CARD_BAD_SIGNATURE, "flip at %zu", i);
    }
    EVP_PKEY *thief = EVP_EC_gen("P-256");
    unsigned char tsig[256];
    size_t tlen = sign(thief, nonce, tsig, sizeof tsig);
    ASSERT_OUTCOME(verify_at(t, card, tsig, tlen, now_ms), KZ_CARD_BAD_SIGNATURE);
    EVP_PKEY_free(thief);
    X509_free(card);
    kz_card_trust_free(t);
}

Test(card, certificates_not_from_the_authentication_ca)
{
    struct kz_card_trust *t = trust_ca(NULL, 0);

    X509 *foreign = issue(other_ca, other_ca_key, ec_key, "3F2A9C0D1E",
                          (struct spec){.serial = 9, .not_before = -DAY,
                                        .not_after = 365 * DAY});
    ASSERT_OUTCOME(verify(t, foreign, ec_key), KZ_CARD_UNKNOWN_CERTIFICATE);

    X509 *self = issue(NULL, ec_key, ec_key, "3F2A9C0D1E",
                       (struct spec){.serial = 9, .not_before = -DAY,
                                     .not_after = 365 * DAY});
    ASSERT_OUTCOME(verify(t, self, ec_key), KZ_CARD_UNKNOWN_CERTIFICATE);

    /* The CA's own certificate is trusted, but it is no card. */
    ASSERT_OUTCOME(verify(t, ca, ca_key), KZ_CARD_UNKNOWN_CERTIFICATE);

    /* A certificate of the CA whose key may not sign. */
    X509 *encrypt_only =
        issue(ca, ca_key, ec_key, "3F2A9C0D1E",
              (struct spec){.serial = 10, .not_before = -DAY,
                            .not_after = 365 * DAY,
                            .key_usage = "critical,keyAgreement"});
    ASSERT_OUTCOME(verify(t, encrypt_only, ec_key), KZ_CARD_UNKNOWN_CERTIFICATE);

    /* A card whose CA signature was tampered with (last byte of s). */
    X509 *card = make_card(ec_key, 11);
    size_t dlen;
    unsigned char *der = der_of(card, &dlen);
    der[dlen - 1] ^= 0x01;
    unsigned char sig[256];
    size_t slen = sign(ec_key, nonce, sig, sizeof sig);
    struct kz_card_result r;
    cr_assert_eq(kz_card_verify(t, der, dlen, sig, slen, nonce, now_ms, &r),
                 KZ_OK);
    ASSERT_OUTCOME(r, KZ_CARD_UNKNOWN_CERTIFICATE);
    free(der);

    X509_free(card);
    X509_free(encrypt_only);
    X509_free(self);
    X509_free(foreign);
    kz_card_trust_free(t);
}

Test(card, validity_period)
{
    struct kz_card_trust *t = trust_ca(NULL, 0);
    X509 *expired = issue(ca, ca_key, ec_key, "3F2A9C0D1E",
                          (struct spec){.serial = 20, .not_before = -400 * DAY,
                                        .not_after = -DAY});
    ASSERT_OUTCOME(verify(t, expired, ec_key), KZ_CARD_EXPIRED);

    X509 *early = issue(ca, ca_key, ec_key, "3F2A9C0D1E",
                        (struct spec){.serial = 21, .not_before = DAY,
                                      .not_after = 365 * DAY});
    ASSERT_OUTCOME(verify(t, early, ec_key), KZ_CARD_EXPIRED);

    /* The same valid card, judged at other times: the caller's clock. */
    X509 *card = make_card(ec_key, 22);
    unsigned char sig[256];
    size_t len = sign(ec_key, nonce, sig, sizeof sig);
    ASSERT_OUTCOME(verify_at(t, card, sig, len, now_ms), KZ_CARD_OK);
    ASSERT_OUTCOME(verify_at(t, card, sig, len, now_ms + 400 * DAY * 1000),
                   KZ_CARD_EXPIRED);
    ASSERT_OUTCOME(verify_at(t, card, sig, len, now_ms - 2 * DAY * 1000),
                   KZ_CARD_EXPIRED);
    X509_free(card);
    X509_free(early);
    X509_free(expired);
    kz_card_trust_free(t);
}

Test(card, revoked_by_the_crl)
{
    const long revoked[] = {30, 0x7fff};
    size_t clen;
    char *crl = make_crl(ca, ca_key, revoked, 2, -3600, DAY, &clen);
    struct kz_card_trust *t = trust_ca(crl, clen);
    struct kz_card_trust *no_crl = trust_ca(NULL, 0);
    X509 *gone = make_card(ec_key, 30);
    X509 *fine = make_card(ec_key, 31);

    struct kz_card_result r = verify(t, gone, ec_key);
    ASSERT_OUTCOME(r, KZ_CARD_REVOKED);
    cr_assert_str_eq(r.serial_hex, "1E");
    cr_assert_not(r.crl_stale);
    ASSERT_OUTCOME(verify(t, fine, ec_key), KZ_CARD_OK);
    ASSERT_OUTCOME(verify(no_crl, gone, ec_key), KZ_CARD_OK);

    bool has, stale;
    int64_t next;
    kz_card_trust_crl_status(t, now_ms, &has, &next, &stale);
    cr_assert(has);
    cr_assert_eq(next, ((int64_t)now_s + DAY) * 1000);
    cr_assert_not(stale);
    kz_card_trust_crl_status(t, next + 1, NULL, NULL, &stale);
    cr_assert(stale);

    X509_free(fine);
    X509_free(gone);
    kz_card_trust_free(no_crl);
    kz_card_trust_free(t);
    free(crl);
}

Test(card, stale_crl_is_reported_and_still_enforced)
{
    const long revoked[] = {40};
    size_t clen;
    char *crl = make_crl(ca, ca_key, revoked, 1, -3 * DAY, -DAY, &clen);
    struct kz_card_trust *t = trust_ca(crl, clen);
    bool has, stale;
    kz_card_trust_crl_status(t, now_ms, &has, NULL, &stale);
    cr_assert(has && stale);

    X509 *gone = make_card(ec_key, 40);
    X509 *fine = make_card(ec_key, 41);
    struct kz_card_result r = verify(t, gone, ec_key);
    ASSERT_OUTCOME(r, KZ_CARD_REVOKED);
    cr_assert(r.crl_stale);
    r = verify(t, fine, ec_key);
    ASSERT_OUTCOME(r, KZ_CARD_OK);
    cr_assert(r.crl_stale);

    /* A CRL issued "in the future" by a clock ahead of ours: still used. */
    char *ahead = make_crl(ca, ca_key, revoked, 1, 600, DAY, &clen);
    struct kz_card_trust *t2 = trust_ca(ahead, clen);
    ASSERT_OUTCOME(verify(t2, gone, ec_key), KZ_CARD_REVOKED);
    ASSERT_OUTCOME(verify(t2, fine, ec_key), KZ_CARD_OK);

    X509_free(fine);
    X509_free(gone);
    kz_card_trust_free(t2);
    kz_card_trust_free(t);
    free(ahead);
    free(crl);
}

Test(card, two_cas_and_a_crl_for_only_one)
{
    const long revoked[] = {50};
    size_t clen;
    char *crl = make_crl(ca, ca_key, revoked, 1, -3600, DAY, &clen);
    X509 *both[] = {ca, other_ca};
    struct kz_card_trust *t = trust_of(both, 2, NULL, 0);
    struct kz_card_trust *tc = trust_of(both, 2, crl, clen);
    X509 *mine = make_card(ec_key, 51);
    X509 *theirs = issue(other_ca, other_ca_key, ec_key, "3F2A9C0D1E",
                         (struct spec){.serial = 52, .not_before = -DAY,
                                       .not_after = 365 * DAY});
    ASSERT_OUTCOME(verify(t, mine, ec_key), KZ_CARD_OK);
    ASSERT_OUTCOME(verify(t, theirs, ec_key), KZ_CARD_OK);
    /* With a CRL installed, a card whose issuer it does not cover cannot
     * be checked for revocation: refused, not waved through. */
    ASSERT_OUTCOME(verify(tc, mine, ec_key), KZ_CARD_OK);
    ASSERT_OUTCOME(verify(tc, theirs, ec_key), KZ_CARD_UNKNOWN_CERTIFICATE);
    X509_free(theirs);
    X509_free(mine);
    kz_card_trust_free(tc);
    kz_card_trust_free(t);
    free(crl);
}

Test(card, malformed_certificates)
{
    struct kz_card_trust *t = trust_ca(NULL, 0);
    X509 *card = make_card(ec_key, 60);
    size_t dlen, plen;
    unsigned char *der = der_of(card, &dlen);
    char *pem = pem_of(card, &plen);
    unsigned char sig[256];
    size_t slen = sign(ec_key, nonce, sig, sizeof sig);

    unsigned char trailing[4096];
    memcpy(trailing, der, dlen);
    trailing[dlen] = 0;
    char bad_pem[4096];
    memcpy(bad_pem, pem, plen + 1);
    bad_pem[40] = '*'; /* inside the base64 */
    static const unsigned char garbage[] = "\x30\x82\xff\xffnot a certificate";
    const struct {
        const unsigned char *p;
        size_t len;
        const char *what;
    } cases[] = {
        {garbage, sizeof garbage - 1, "garbage"},
        {(const unsigned char *)"hello", 5, "text"},
        {der, 0, "empty"},
        {NULL, 0, "NULL"},
        {der, dlen - 10, "truncated DER"},
        {der, 1, "one byte"},
        {trailing, dlen + 1, "DER with a byte after it"},
        {(const unsigned char *)bad_pem, plen, "PEM with a bad character"},
        {(const unsigned char *)pem, plen / 2, "half a PEM"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kz_card_result r;
        memset(&r, 0x5a, sizeof r);
        cr_assert_eq(kz_card_verify(t, cases[i].p, cases[i].len, sig, slen,
                                    nonce, now_ms, &r),
                     KZ_OK, "%s", cases[i].what);
        cr_assert_eq(r.outcome, KZ_CARD_MALFORMED, "%s: %s", cases[i].what,
                     kz_card_outcome_name(r.outcome));
        cr_assert_str_empty(r.serial_hex, "%s", cases[i].what);
        cr_assert_str_empty(r.key_sha256, "%s", cases[i].what);
        cr_assert_eq(ERR_peek_error(), 0, "%s: error queue", cases[i].what);
    }

    /* Arguments the caller must not give. */
    struct kz_card_result r;
    cr_assert_eq(kz_card_verify(NULL, der, dlen, sig, slen, nonce, now_ms, &r),
                 KZ_EINVAL);
    cr_assert_eq(kz_card_verify(t, der, dlen, sig, slen, NULL, now_ms, &r),
                 KZ_EINVAL);
    cr_assert_eq(kz_card_verify(t, der, dlen, NULL, 3, nonce, now_ms, &r),
                 KZ_EINVAL);
    free(pem);
    free(der);
    X509_free(card);
    kz_card_trust_free(t);
}

Test(card, trust_refuses_what_is_not_an_authentication_ca)
{
    struct kz_card_trust *t = (struct kz_card_trust *)&t;
    char err[256];
    size_t len;

    cr_assert_eq(kz_card_trust_new(NULL, 0, NULL, 0, &t, err, sizeof err),
                 KZ_EINVAL);
    cr_assert_null(t);
    cr_assert_str_not_empty(err);
    cr_assert_eq(kz_card_trust_new("junk", 4, NULL, 0, &t, err, sizeof err),
                 KZ_EINVAL);
    cr_assert_null(t);
    const char *broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END "
                         "CERTIFICATE-----\n";
    cr_assert_eq(kz_card_trust_new(broken, strlen(broken), NULL, 0, &t, err,
                                   sizeof err),
                 KZ_EINVAL);

    /* A card is no CA. */
    X509 *card = make_card(ec_key, 70);
    char *card_pem = pem_of(card, &len);
    cr_assert_eq(kz_card_trust_new(card_pem, len, NULL, 0, &t, err, sizeof err),
                 KZ_EINVAL);
    cr_assert(strstr(err, "not a CA") != NULL, "%s", err);

    size_t ca_len;
    char *ca_pem = pem_of(ca, &ca_len);
    /* A CRL of another CA, a CRL that is not one, text with no CRL. */
    const long revoked[] = {70};
    size_t clen;
    char *foreign = make_crl(other_ca, other_ca_key, revoked, 1, -60, DAY, &clen);
    cr_assert_eq(kz_card_trust_new(ca_pem, ca_len, foreign, clen, &t, err,
                                   sizeof err),
                 KZ_EINVAL);
    cr_assert(strstr(err, "CRL") != NULL, "%s", err);
    cr_assert_null(t);
    /* The right issuer name but another key's signature. */
    X509 *impostor = make_ca(other_ca_key, "Kizuna Test Authentication CA");
    char *forged = make_crl(impostor, other_ca_key, revoked, 1, -60, DAY, &clen);
    cr_assert_eq(kz_card_trust_new(ca_pem, ca_len, forged, clen, &t, err,
                                   sizeof err),
                 KZ_EINVAL);
    cr_assert_eq(kz_card_trust_new(ca_pem, ca_len, "junk", 4, &t, err,
                                   sizeof err),
                 KZ_EINVAL);
    cr_assert_eq(kz_card_trust_new(ca_pem, ca_len, ca_pem, ca_len, &t, err,
                                   sizeof err),
                 KZ_EINVAL);
    cr_assert_eq(ERR_peek_error(), 0);

    /* DER is taken too, for the CA and the CRL. */
    size_t dlen;
    unsigned char *ca_der = der_of(ca, &dlen);
    char *good = make_crl(ca, ca_key, revoked, 1, -60, DAY, &clen);
    BIO *b = BIO_new_mem_buf(good, (int)clen);
    X509_CRL *crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
    cr_assert_not_null(crl);
    unsigned char *crl_der = NULL;
    int crl_dlen = i2d_X509_CRL(crl, &crl_der);
    cr_assert_gt(crl_dlen, 0);
    cr_assert_eq(kz_card_trust_new((const char *)ca_der, dlen,
                                   (const char *)crl_der, (size_t)crl_dlen, &t,
                                   err, sizeof err),
                 KZ_OK, "%s", err);
    ASSERT_OUTCOME(verify(t, card, ec_key), KZ_CARD_REVOKED);
    kz_card_trust_free(t);
    kz_card_trust_free(NULL);

    OPENSSL_free(crl_der);
    X509_CRL_free(crl);
    BIO_free(b);
    free(good);
    free(ca_der);
    free(forged);
    X509_free(impostor);
    free(foreign);
    free(ca_pem);
    free(card_pem);
    X509_free(card);
}

/* ---- deploy/gen-cards and `kizuna card sign` --------------------------------- */

static char gdir[64];

static void gen_cards(const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s/deploy/gen-cards' %s %s >/dev/null 2>&1",
             KZ_SOURCE_DIR, gdir, args);
    cr_assert_eq(system(cmd), 0, "gen-cards %s", args);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    char *out = malloc(n + 1);
    memcpy(out, buf, n);
    out[n] = '\0';
    *len = n;
    return out;
}

static unsigned char *unbase64(const char *s, size_t *len)
{
    size_t n = strlen(s);
    unsigned char *out = malloc(n);
    int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    cr_assert_geq(got, 0, "base64: %s", s);
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    while (n > 0 && s[n - 1] == '=') {
        n--;
        got--;
    }
    *len = (size_t)got;
    return out;
}

/* `kizuna card sign --key DIR/cards/NAME.key --cert DIR/cards/NAME.pem
 * --nonce NONCE` through the CLI's own parsing and signing, then the node's
 * verdict on what it printed. */
static struct kz_card_result sign_with_cli(const struct kz_card_trust *t,
                                           const char *name,
                                           const char *nonce_text)
{
    char key[128], cert[128];
    snprintf(key, sizeof key, "%s/cards/%s.key", gdir, name);
    snprintf(cert, sizeof cert, "%s/cards/%s.pem", gdir, name);
    char *argv[] = {"kizuna", "card",  "sign", "--key",
                    key,      "--cert", cert,  "--nonce",
                    (char *)nonce_text, NULL};
    kz_cli_args a;
    char err[256];
    cr_assert_eq(kz_cli_args_parse(9, argv, &a, err, sizeof err),
                 KZ_CLI_ARGS_OK, "%s", err);
    cr_assert_eq(a.cmd, KZ_CLI_CMD_CARD_SIGN);
    char *sig_b64, *cert_b64;
    cr_assert_eq(kz_cli_args_card_sign(&a, &sig_b64, &cert_b64, err, sizeof err),
                 0, "%s", err);
    cr_assert_not_null(cert_b64);
    size_t slen, clen;
    unsigned char *sig = unbase64(sig_b64, &slen);
    unsigned char *der = unbase64(cert_b64, &clen);

    /* No name or address on the card: the subject is one random CN. */
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)clen);
    cr_assert_not_null(x);
    cr_assert_eq(X509_NAME_entry_count(X509_get_subject_name(x)), 1);
    X509_free(x);

    /* The cards were issued after the test began: judge them now. */
    struct kz_card_result r;
    cr_assert_eq(kz_card_verify(t, der, clen, sig, slen, nonce,
                                (int64_t)time(NULL) * 1000, &r),
                 KZ_OK);
    free(der);
    free(sig);
    free(cert_b64);
    free(sig_b64);
    return r;
}

static struct kz_card_trust *trust_from_dir(bool with_crl)
{
    char path[128];
    size_t ca_len, crl_len = 0;
    snprintf(path, sizeof path, "%s/auth-ca.pem", gdir);
    char *ca_pem = slurp(path, &ca_len);
    char *crl = NULL;
    if (with_crl) {
        snprintf(path, sizeof path, "%s/auth-ca.crl", gdir);
        crl = slurp(path, &crl_len);
    }
    struct kz_card_trust *t;
    char err[256];
    cr_assert_eq(kz_card_trust_new(ca_pem, ca_len, crl, crl_len, &t, err,
                                   sizeof err),
                 KZ_OK, "%s", err);
    free(crl);
    free(ca_pem);
    return t;
}

Test(card, gen_cards_signed_by_the_cli_and_revoked, .timeout = 120)
{
    snprintf(gdir, sizeof gdir, "/tmp/kz-cards-XXXXXX");
    cr_assert_not_null(mkdtemp(gdir));
    gen_cards("alice");
    gen_cards("bob --rsa");
    gen_cards("alice"); /* idempotent: kept */

    char hex[2 * KZ_CARD_NONCE_LEN + 1];
    for (int i = 0; i < KZ_CARD_NONCE_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", nonce[i]);
    char b64[64];
    EVP_EncodeBlock((unsigned char *)b64, nonce, KZ_CARD_NONCE_LEN);

    struct kz_card_trust *t = trust_from_dir(false);
    struct kz_card_result alice = sign_with_cli(t, "alice", hex);
    ASSERT_OUTCOME(alice, KZ_CARD_OK);
    ASSERT_OUTCOME(sign_with_cli(t, "alice", b64), KZ_CARD_OK);
    ASSERT_OUTCOME(sign_with_cli(t, "bob", hex), KZ_CARD_OK);

    gen_cards("--revoke alice");
    kz_card_trust_free(t);
    t = trust_from_dir(true);
    struct kz_card_result r = sign_with_cli(t, "alice", hex);
    ASSERT_OUTCOME(r, KZ_CARD_REVOKED);
    cr_assert_str_eq(r.serial_hex, alice.serial_hex);
    cr_assert_not(r.crl_stale);
    ASSERT_OUTCOME(sign_with_cli(t, "bob", hex), KZ_CARD_OK);
    bool has;
    int64_t next;
    kz_card_trust_crl_status(t, now_ms, &has, &next, NULL);
    cr_assert(has);
    cr_assert(next > now_ms && next <= now_ms + (DAY + 120) * 1000,
              "nextUpdate one day ahead");

    /* A refreshed CRL still lists her; issuing "alice" again makes a new
     * card, which is good. */
    gen_cards("--crl");
    gen_cards("--revoke alice");
    gen_cards("alice");
    kz_card_trust_free(t);
    t = trust_from_dir(true);
    r = sign_with_cli(t, "alice", hex);
    ASSERT_OUTCOME(r, KZ_CARD_OK);
    cr_assert_str_neq(r.serial_hex, alice.serial_hex);
    cr_assert_str_neq(r.key_sha256, alice.key_sha256);
    kz_card_trust_free(t);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", gdir);
    cr_assert_eq(system(cmd), 0);
}
