/*
 * card.h — verification of a citizen's card (DOMAIN.md §3, "Certificate"):
 * the card's user certificate chains to the authentication CA (a CA of its
 * own, separate from the cluster's TLS CA), is within its validity period,
 * is not on the CA's CRL, carries an allowed key, and that key signed the
 * challenge's nonce.
 *
 * Happy path: the node builds one kz_card_trust from the authentication CA's
 * certificate(s) and, once the operator installs it (PUT /v1/identity/crl),
 * its CRL; a new CRL means a new trust object, swapped in by the caller. For
 * POST /v1/identity/verifications the caller decodes the body's base64
 * certificate and signature and calls kz_card_verify() with the challenge's
 * nonce and the wall clock; outcome OK means the card holder is present, and
 * serial_hex / key_sha256 name the card for the lookup of the person.
 *
 * Failure modes: every refusal is an outcome, never an error code (the
 * certificate and signature are outside input); KZ_ENOMEM only when OpenSSL
 * cannot allocate. A trust is read-only once made: several threads may verify
 * against the same trust at once. Nothing here reads a clock or a file.
 */
#ifndef KZ_NODE_CARD_H
#define KZ_NODE_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kz_error.h"

/* Outcomes, in the order the checks run (see kz_card_verify). */
enum kz_card_outcome {
    KZ_CARD_OK = 0,
    KZ_CARD_BAD_SIGNATURE,       /* the key did not sign this nonce */
    KZ_CARD_REVOKED,             /* on the installed CRL */
    KZ_CARD_EXPIRED,             /* outside a validity period of the chain */
    KZ_CARD_UNKNOWN_CERTIFICATE, /* no chain to the CA, or not a card's cert */
    KZ_CARD_MALFORMED            /* the certificate bytes do not parse */
};

/* The API.md reason string of an outcome: "ok", "bad_signature", "revoked",
 * "expired", "unknown_certificate", "malformed"; "unknown" for a value not in
 * the enum. Static text, never NULL. */
const char *kz_card_outcome_name(enum kz_card_outcome o);

/* The authentication CA (one or more certificates, each a trust anchor)
 * and its CRLs (none until one is installed). Opaque, read-only once made. */
struct kz_card_trust;

/* Makes a trust from the CA certificate(s) (ca_pem: PEM text holding one or
 * more CERTIFICATE blocks, or one DER certificate) and, unless crl_pem is
 * NULL or crl_len 0, the CRL (PEM text with one or more X509 CRL blocks, or
 * one DER CRL). Every certificate must be a CA; every CRL must be issued and
 * signed by one of them. The buffers are only read; the caller keeps them.
 * Returns KZ_OK with *out a new trust the caller frees with
 * kz_card_trust_free, or KZ_EINVAL (nothing parsable, a certificate that is
 * not a CA, a CRL from another issuer or with a bad signature) or KZ_ENOMEM,
 * with *out NULL and a message in err (errlen may be 0). */
int kz_card_trust_new(const char *ca_pem, size_t ca_len, const char *crl_pem,
                      size_t crl_len, struct kz_card_trust **out, char *err,
                      size_t errlen);

/* Frees a trust; NULL is ignored. */
void kz_card_trust_free(struct kz_card_trust *t);

/* CRL facts for the answer and /metrics: *has_crl when a CRL is installed;
 * *next_update_ms its nextUpdate (the earliest, with several CRLs) in ms
 * since the epoch, 0 when there is none; *stale when now_ms is past that
 * nextUpdate. Any output pointer may be NULL. */
void kz_card_trust_crl_status(const struct kz_card_trust *t, int64_t now_ms,
                              bool *has_crl, int64_t *next_update_ms,
                              bool *stale);

#define KZ_CARD_NONCE_LEN 32

/* The verdict on one card. */
struct kz_card_result {
    enum kz_card_outcome outcome;
    /* The certificate's serial as `openssl x509 -serial` prints it:
     * uppercase hex, two digits a byte, "-" first for a negative one; "" when
     * the certificate did not parse. */
    char serial_hex[80];
    /* SHA-256 of the certificate's SubjectPublicKeyInfo (DER), lowercase
     * hex: the key the person is bound to; "" when it did not parse. */
    char key_sha256[65];
    /* The CRL's nextUpdate has passed: the card was still checked against
     * it, but the operator should install a fresh one. */
    bool crl_stale;
};

/* Judges a card. cert is the user certificate, PEM or DER (at most 64 KiB;
 * DER must be exactly one certificate); sig the card's signature over the
 * nonce: EVP_DigestVerify with SHA-256 over the nonce's 32 bytes, ECDSA
 * (DER-encoded) or RSA PKCS#1 v1.5. now_ms is the verification time, in ms
 * since the epoch (the caller's wall clock: no clock is read here).
 *
 * Checks, in order; the first that fails is the outcome:
 *   1. the certificate parses (else MALFORMED);
 *   2. it chains to one of the trust's CAs at now_ms, checked against the
 *      CRL when one is installed (a CRL past its nextUpdate still counts,
 *      and crl_stale says so): REVOKED when listed, EXPIRED when a
 *      certificate of the chain is past notAfter or before notBefore,
 *      UNKNOWN_CERTIFICATE for another CA, a self-signed certificate, a bad
 *      certificate signature, or no CRL covering its issuer;
 *   3. it is a card's certificate: not a CA, and its keyUsage (when present)
 *      allows digitalSignature (else UNKNOWN_CERTIFICATE);
 *   4. its key is EC on P-256 (named curve) or RSA of 2048 to 8192 bits
 *      (else UNKNOWN_CERTIFICATE);
 *   5. sig verifies over the nonce (else BAD_SIGNATURE).
 * serial_hex and key_sha256 are filled whenever the certificate parses,
 * whatever the outcome; crl_stale always. Leaves the thread's OpenSSL error
 * queue empty. The inputs are only read.
 * Returns KZ_OK with the verdict in *out; KZ_EINVAL when t, out or nonce is
 * NULL (or cert / sig NULL with a non-zero length); KZ_ENOMEM when OpenSSL
 * could not allocate: *out is then no verdict (the caller answers 5xx). */
int kz_card_verify(const struct kz_card_trust *t, const unsigned char *cert,
                   size_t cert_len, const unsigned char *sig, size_t sig_len,
                   const unsigned char nonce[KZ_CARD_NONCE_LEN], int64_t now_ms,
                   struct kz_card_result *out);

#endif
