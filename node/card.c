/*
 * card.c — a citizen's card (card.h): its user certificate judged against
 * the authentication CA and CRL with OpenSSL's X509_verify_cert, then its
 * signature over the challenge's nonce.
 *
 * Happy path: parse (DER, else PEM), note the serial and the key hash, build
 * the chain at the caller's time with the CA certificates as the only trust
 * anchors and, when a CRL is installed, X509_V_FLAG_CRL_CHECK; then check
 * that it is an end-entity certificate with an allowed key, and verify the
 * signature with EVP_DigestVerify (SHA-256 over the nonce bytes).
 *
 * Failure modes: every problem with the card is an outcome. OpenSSL's verify
 * error is mapped to the API's reasons (revoked, expired, anything else
 * unknown_certificate); only an allocation failure is an error code. A CRL
 * past its nextUpdate (or, with clocks apart, not yet valid) is still used
 * rather than refusing every card: the verify callback lets that one error
 * through, revocation is still checked, and the result says the CRL is stale.
 * The OpenSSL error queue is emptied before returning, so a refused card
 * leaves nothing behind for the next TLS call on the thread.
 *
 * The trust is read-only after kz_card_trust_new: X509_STORE does its own
 * locking, and the CRL stack is only read by the verifications.
 */
#include "card.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CARD_MAX_CERT (64 * 1024) /* a card certificate is ~1 KiB */
#define CARD_MAX_SIG 1024         /* RSA-8192; ECDSA P-256 is at most 72 */
#define CARD_RSA_MIN_BITS 2048
#define CARD_RSA_MAX_BITS 8192

struct kz_card_trust {
    X509_STORE *store;        /* the CA certificates, each a trust anchor */
    STACK_OF(X509_CRL) *crls; /* NULL: no CRL installed */
    int64_t next_update_ms;   /* earliest nextUpdate of crls; 0: none */
};

static const char *const card__names[] = {
    [KZ_CARD_OK] = "ok",
    [KZ_CARD_BAD_SIGNATURE] = "bad_signature",
    [KZ_CARD_REVOKED] = "revoked",
    [KZ_CARD_EXPIRED] = "expired",
    [KZ_CARD_UNKNOWN_CERTIFICATE] = "unknown_certificate",
    [KZ_CARD_MALFORMED] = "malformed",
};

const char *kz_card_outcome_name(enum kz_card_outcome o)
{
    if ((unsigned)o >= sizeof card__names / sizeof card__names[0])
        return "unknown";
    return card__names[o];
}

/* ---- helpers ------------------------------------------------------------- */

static void card__msg(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void card__msg(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* OpenSSL's reason for the last error on the queue, for a message. */
static const char *card__ossl_reason(void)
{
    const char *r = ERR_reason_error_string(ERR_peek_last_error());
    return r != NULL ? r : "no detail";
}

/* A PEM password callback that has no password: an encrypted PEM block in
 * outside input must fail, not prompt on a terminal (OpenSSL's default). */
static int card__no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Milliseconds since the epoch of an ASN.1 time; 0 if it cannot be read. */
static int64_t card__time_ms(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

/* Whole seconds at or before now_ms (floor, also for negative times). */
static time_t card__secs(int64_t now_ms)
{
    int64_t s = now_ms / 1000;
    if (now_ms % 1000 < 0)
        s--;
    return (time_t)s;
}

/* ---- trust ---------------------------------------------------------------- */

/* Reads certificates and CRLs from buf: PEM (every CERTIFICATE and X509 CRL
 * block), or else one DER object of the kind want_crl says. Returns a new
 * stack the caller frees with sk_X509_INFO_pop_free(.., X509_INFO_free), or
 * NULL with a message. *nomem says an allocation failed. */
static STACK_OF(X509_INFO) *card__read(const char *buf, size_t len,
                                       bool want_crl, const char *what,
                                       bool *nomem, char *err, size_t errlen)
{
    *nomem = false;
    if (len > INT_MAX) {
        card__msg(err, errlen, "%s: too large", what);
        return NULL;
    }
    STACK_OF(X509_INFO) *infos = sk_X509_INFO_new_null();
    if (infos == NULL)
        goto err_nomem;

    const unsigned char *p = (const unsigned char *)buf;
    if (len > 0 && p[0] == 0x30) { /* a DER SEQUENCE: no PEM starts so */
        X509_INFO *info = X509_INFO_new();
        if (info == NULL || !sk_X509_INFO_push(infos, info)) {
            X509_INFO_free(info);
            goto err_after_infos_nomem;
        }
        const unsigned char *q = p;
        if (want_crl)
            info->crl = d2i_X509_CRL(NULL, &q, (long)len);
        else
            info->x509 = d2i_X509(NULL, &q, (long)len);
        if ((info->crl == NULL && info->x509 == NULL) || q != p + len) {
            card__msg(err, errlen, "%s: not a DER %s (%s)", what,
                      want_crl ? "CRL" : "certificate", card__ossl_reason());
            goto err_after_infos;
        }
        return infos;
    }

    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL)
        goto err_after_infos_nomem;
    STACK_OF(X509_INFO) *got =
        PEM_X509_INFO_read_bio(bio, infos, card__no_password, NULL);
    BIO_free(bio);
    if (got == NULL) {
        card__msg(err, errlen, "%s: bad PEM (%s)", what, card__ossl_reason());
        goto err_after_infos;
    }
    return infos;

err_after_infos_nomem:
    *nomem = true;
    card__msg(err, errlen, "%s: out of memory", what);
err_after_infos:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return NULL;
err_nomem:
    *nomem = true;
    card__msg(err, errlen, "%s: out of memory", what);
    return NULL;
}

/* Installs the CRLs of infos into t: each must name one of the CAs of cas
 * as its issuer and carry that CA's signature. */
static int card__add_crls(struct kz_card_trust *t, STACK_OF(X509_INFO) *infos,
                          STACK_OF(X509_INFO) *cas, char *err, size_t errlen)
{
    t->crls = sk_X509_CRL_new_null();
    if (t->crls == NULL)
        goto err_nomem;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_CRL *crl = sk_X509_INFO_value(infos, i)->crl;
        if (crl == NULL)
            continue;
        bool signed_by_ca = false;
        for (int j = 0; j < sk_X509_INFO_num(cas) && !signed_by_ca; j++) {
            X509 *ca = sk_X509_INFO_value(cas, j)->x509;
            EVP_PKEY *pk = ca != NULL ? X509_get0_pubkey(ca) : NULL;
            signed_by_ca = pk != NULL &&
                           X509_NAME_cmp(X509_CRL_get_issuer(crl),
                                         X509_get_subject_name(ca)) == 0 &&
                           X509_CRL_verify(crl, pk) == 1;
        }
        if (!signed_by_ca) {
            card__msg(err, errlen,
                      "CRL %d is not issued and signed by the "
                      "authentication CA",
                      sk_X509_CRL_num(t->crls) + 1);
            return KZ_EINVAL;
        }
        if (!X509_CRL_up_ref(crl))
            goto err_nomem;
        if (!sk_X509_CRL_push(t->crls, crl)) {
            X509_CRL_free(crl);
            goto err_nomem;
        }
        int64_t next = card__time_ms(X509_CRL_get0_nextUpdate(crl));
        if (next != 0 && (t->next_update_ms == 0 || next < t->next_update_ms))
            t->next_update_ms = next;
    }
    if (sk_X509_CRL_num(t->crls) == 0) {
        card__msg(err, errlen, "no CRL found in the CRL text");
        return KZ_EINVAL;
    }
    return KZ_OK;

err_nomem:
    card__msg(err, errlen, "out of memory");
    return KZ_ENOMEM;
}

int kz_card_trust_new(const char *ca_pem, size_t ca_len, const char *crl_pem,
                      size_t crl_len, struct kz_card_trust **out, char *err,
                      size_t errlen)
{
    STACK_OF(X509_INFO) *cas = NULL, *crls = NULL;
    bool nomem = false;
    int rv;

    card__msg(err, errlen, "%s", "");
    if (out == NULL)
        return KZ_EINVAL;
    *out = NULL;
    if (ca_pem == NULL || ca_len == 0) {
        card__msg(err, errlen, "no authentication CA certificate given");
        return KZ_EINVAL;
    }
    struct kz_card_trust *t = calloc(1, sizeof *t);
    if (t == NULL) {
        card__msg(err, errlen, "out of memory");
        return KZ_ENOMEM;
    }
    t->store = X509_STORE_new();
    if (t->store == NULL) {
        card__msg(err, errlen, "out of memory");
        rv = KZ_ENOMEM;
        goto err_after_trust;
    }

    cas = card__read(ca_pem, ca_len, false, "CA certificate", &nomem, err,
                     errlen);
    if (cas == NULL) {
        rv = nomem ? KZ_ENOMEM : KZ_EINVAL;
        goto err_after_trust;
    }
    int n_ca = 0;
    for (int i = 0; i < sk_X509_INFO_num(cas); i++) {
        X509 *ca = sk_X509_INFO_value(cas, i)->x509;
        if (ca == NULL)
            continue;
        n_ca++;
        /* A leaf among the anchors would let that one certificate vouch
         * for itself: only CA certificates are trusted. */
        if (X509_check_ca(ca) < 1) {
            card__msg(err, errlen,
                      "certificate %d of the CA text is not a CA "
                      "(basicConstraints CA:TRUE)",
                      n_ca);
            rv = KZ_EINVAL;
            goto err_after_cas;
        }
        if (X509_STORE_add_cert(t->store, ca) != 1) {
            card__msg(err, errlen, "CA certificate %d: %s", n_ca,
                      card__ossl_reason());
            rv = KZ_ENOMEM;
            goto err_after_cas;
        }
    }
    if (n_ca == 0) {
        card__msg(err, errlen, "no certificate found in the CA text");
        rv = KZ_EINVAL;
        goto err_after_cas;
    }

    if (crl_pem != NULL && crl_len > 0) {
        crls = card__read(crl_pem, crl_len, true, "CRL", &nomem, err, errlen);
        if (crls == NULL) {
            rv = nomem ? KZ_ENOMEM : KZ_EINVAL;
            goto err_after_cas;
        }
        rv = card__add_crls(t, crls, cas, err, errlen);
        if (rv != KZ_OK)
            goto err_after_crls;
        sk_X509_INFO_pop_free(crls, X509_INFO_free);
    }
    sk_X509_INFO_pop_free(cas, X509_INFO_free);
    ERR_clear_error();
    *out = t;
    return KZ_OK;

err_after_crls:
    sk_X509_INFO_pop_free(crls, X509_INFO_free);
err_after_cas:
    sk_X509_INFO_pop_free(cas, X509_INFO_free);
err_after_trust:
    kz_card_trust_free(t);
    ERR_clear_error();
    return rv;
}

void kz_card_trust_free(struct kz_card_trust *t)
{
    if (t == NULL)
        return;
    sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
    X509_STORE_free(t->store);
    free(t);
}

void kz_card_trust_crl_status(const struct kz_card_trust *t, int64_t now_ms,
                              bool *has_crl, int64_t *next_update_ms,
                              bool *stale)
{
    bool has = t != NULL && t->crls != NULL;
    int64_t next = has ? t->next_update_ms : 0;
    if (has_crl != NULL)
        *has_crl = has;
    if (next_update_ms != NULL)
        *next_update_ms = next;
    if (stale != NULL)
        *stale = has && next != 0 && now_ms > next;
}

/* ---- verification ---------------------------------------------------------- */

/* The card's certificate: DER when it starts as a DER SEQUENCE and decodes
 * as exactly one certificate, else the first CERTIFICATE block of PEM text.
 * NULL when neither. */
static X509 *card__parse(const unsigned char *cert, size_t len)
{
    if (len == 0 || len > CARD_MAX_CERT)
        return NULL;
    if (cert[0] == 0x30) {
        const unsigned char *q = cert;
        X509 *x = d2i_X509(NULL, &q, (long)len);
        if (x != NULL && q == cert + len)
            return x;
        X509_free(x);
    }
    BIO *bio = BIO_new_mem_buf(cert, (int)len);
    if (bio == NULL)
        return NULL;
    X509 *x = PEM_read_bio_X509(bio, NULL, card__no_password, NULL);
    BIO_free(bio);
    return x;
}

/* serial_hex as `openssl x509 -serial` prints it; -1 when it does not fit
 * (more than 39 bytes: RFC 5280 allows 20). */
static int card__serial(const X509 *x, char out[80])
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    const unsigned char *d = ASN1_STRING_get0_data(sn);
    int n = ASN1_STRING_length(sn);
    size_t at = 0;
    static const char hex[] = "0123456789ABCDEF";

    if (n < 0 || (d == NULL && n > 0))
        return -1;
    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER)
        out[at++] = '-';
    if (at + 2 * (size_t)n + 1 > 80)
        return -1;
    if (n == 0) {
        memcpy(out + at, "00", 2);
        at += 2;
    }
    for (int i = 0; i < n; i++) {
        out[at++] = hex[d[i] >> 4];
        out[at++] = hex[d[i] & 15];
    }
    out[at] = '\0';
    return 0;
}

/* key_sha256: SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex. */
static int card__key_hash(X509 *x, char out[65])
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (len <= 0)
        return -1;
    int ok = EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    if (ok != 1 || mdlen != sizeof md)
        return -1;
    for (unsigned i = 0; i < sizeof md; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Lets a CRL that is past its nextUpdate (or before its thisUpdate) be
 * used: revocation is still checked against it. Any other error stands. */
static int card__verify_cb(int ok, X509_STORE_CTX *ctx)
{
    if (!ok) {
        int e = X509_STORE_CTX_get_error(ctx);
        if (e == X509_V_ERR_CRL_HAS_EXPIRED || e == X509_V_ERR_CRL_NOT_YET_VALID)
            return 1;
    }
    return ok;
}

/* Step 2: the chain at now_ms. Sets *outcome; returns KZ_OK or KZ_ENOMEM. */
static int card__chain(const struct kz_card_trust *t, X509 *x, int64_t now_ms,
                       enum kz_card_outcome *outcome)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL)
        return KZ_ENOMEM;
    /* The store is shared, not modified: X509_STORE locks its own lookups. */
    if (X509_STORE_CTX_init(ctx, t->store, x, NULL) != 1) {
        X509_STORE_CTX_free(ctx);
        return KZ_ENOMEM;
    }
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(vp, card__secs(now_ms));
    /* Every configured CA is an anchor, root or not (an authentication CA
     * below a root the node was not given still works). */
    unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
    if (t->crls != NULL) {
        X509_STORE_CTX_set0_crls(ctx, t->crls);
        flags |= X509_V_FLAG_CRL_CHECK;
    }
    X509_VERIFY_PARAM_set_flags(vp, flags);
    X509_STORE_CTX_set_verify_cb(ctx, card__verify_cb);

    int rv = X509_verify_cert(ctx);
    int e = X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    if (rv == 1) {
        *outcome = KZ_CARD_OK;
        return KZ_OK;
    }
    switch (e) {
    case X509_V_ERR_OUT_OF_MEM:
        return KZ_ENOMEM;
    case X509_V_ERR_CERT_REVOKED:
        *outcome = KZ_CARD_REVOKED;
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        *outcome = KZ_CARD_EXPIRED;
        break;
    default:
        /* Another CA, self-signed, a bad certificate signature, a CRL
         * that does not cover the issuer, a malformed extension... */
        *outcome = KZ_CARD_UNKNOWN_CERTIFICATE;
        break;
    }
    return KZ_OK;
}

/* Steps 3 and 4: an end-entity certificate for signing, with a key of the
 * kinds a card holds. */
static bool card__usable(X509 *x)
{
    if (X509_check_ca(x) != 0)
        return false;
    uint32_t ku = X509_get_key_usage(x); /* UINT32_MAX: no keyUsage */
    if (ku != UINT32_MAX && !(ku & KU_DIGITAL_SIGNATURE))
        return false;

    ASN1_OBJECT *alg = NULL;
    X509_ALGOR *params = NULL;
    EVP_PKEY *pkey = X509_get0_pubkey(x);
    if (pkey == NULL ||
        X509_PUBKEY_get0_param(&alg, NULL, NULL, &params,
                               X509_get_X509_PUBKEY(x)) != 1)
        return false;
    switch (OBJ_obj2nid(alg)) {
    case NID_X9_62_id_ecPublicKey: {
        /* A named P-256, not explicit parameters that might describe it. */
        int ptype = V_ASN1_UNDEF;
        const void *pval = NULL;
        X509_ALGOR_get0(NULL, &ptype, &pval, params);
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
               ptype == V_ASN1_OBJECT &&
               OBJ_obj2nid(pval) == NID_X9_62_prime256v1;
    }
    case NID_rsaEncryption: {
        int bits = EVP_PKEY_get_bits(pkey);
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA &&
               bits >= CARD_RSA_MIN_BITS && bits <= CARD_RSA_MAX_BITS;
    }
    default:
        return false;
    }
}

/* Step 5. Returns KZ_OK with *outcome, or KZ_ENOMEM. */
static int card__signature(X509 *x, const unsigned char *sig, size_t sig_len,
                           const unsigned char *nonce,
                           enum kz_card_outcome *outcome)
{
    *outcome = KZ_CARD_BAD_SIGNATURE;
    if (sig_len == 0 || sig_len > CARD_MAX_SIG)
        return KZ_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL)
        return KZ_ENOMEM;
    EVP_PKEY *pkey = X509_get0_pubkey(x);
    EVP_PKEY_CTX *pctx = NULL;
    if (EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pkey) == 1 &&
        (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA ||
         EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0) &&
        EVP_DigestVerify(md, sig, sig_len, nonce, KZ_CARD_NONCE_LEN) == 1)
        *outcome = KZ_CARD_OK;
    EVP_MD_CTX_free(md);
    return KZ_OK;
}

int kz_card_verify(const struct kz_card_trust *t, const unsigned char *cert,
                   size_t cert_len, const unsigned char *sig, size_t sig_len,
                   const unsigned char nonce[KZ_CARD_NONCE_LEN], int64_t now_ms,
                   struct kz_card_result *out)
{
    if (out == NULL)
        return KZ_EINVAL;
    memset(out, 0, sizeof *out);
    out->outcome = KZ_CARD_MALFORMED;
    if (t == NULL || nonce == NULL || (cert == NULL && cert_len > 0) ||
        (sig == NULL && sig_len > 0))
        return KZ_EINVAL;
    kz_card_trust_crl_status(t, now_ms, NULL, NULL, &out->crl_stale);

    int rv = KZ_OK;
    X509 *x = card__parse(cert, cert_len);
    if (x == NULL)
        goto out_clear; /* MALFORMED */
    if (card__serial(x, out->serial_hex) != 0 ||
        card__key_hash(x, out->key_sha256) != 0) {
        out->serial_hex[0] = out->key_sha256[0] = '\0';
        goto out_after_cert; /* MALFORMED */
    }

    enum kz_card_outcome o;
    rv = card__chain(t, x, now_ms, &o);
    if (rv != KZ_OK)
        goto out_after_cert;
    if (o == KZ_CARD_OK && !card__usable(x))
        o = KZ_CARD_UNKNOWN_CERTIFICATE;
    if (o == KZ_CARD_OK)
        rv = card__signature(x, sig, sig_len, nonce, &o);
    if (rv == KZ_OK)
        out->outcome = o;

out_after_cert:
    X509_free(x);
out_clear:
    ERR_clear_error();
    return rv;
}
