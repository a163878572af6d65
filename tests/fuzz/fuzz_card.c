/*
 * fuzz_card.c — libFuzzer driver for the verification of a citizen's card
 * (node/card.h): a user certificate and a signature, both outside input
 * (POST /v1/identity/verifications), judged against a fixed authentication
 * CA, with or without its CRL, at one of four fixed times.
 *
 * Input: byte 0 picks the trust (bit 0: with the CRL) and the time (bits
 * 1-2: T_FRESH, T_STALE, T_LATE, T_EARLY below); bytes 1-2 are the
 * certificate's length n (big-endian, cut to what follows); then n bytes of
 * certificate (DER or PEM), then the signature (the rest). The nonce is
 * fixed.
 *
 * Properties checked: kz_card_verify returns KZ_OK with an outcome of the
 * enum; MALFORMED exactly when serial_hex and key_sha256 are empty, and
 * otherwise they are well-formed hex (even-length uppercase serial, 64
 * lowercase digits); crl_stale agrees with kz_card_trust_crl_status; a card
 * on the CRL (serial 1002) is never OK when the CRL is installed; and the
 * thread's OpenSSL error queue is left empty.
 *
 * The CA and CRL below, and the seeds in tests/fuzz/corpus/card/ (cards of
 * that CA: EC P-256 serial 1001, revoked EC P-256 1002, RSA-2048 1003,
 * EC P-384 1004, valid 2025-06-01 to 2030-06-01; a self-signed one; their
 * signatures over the nonce made with `openssl dgst -sha256 -sign`), were
 * made once with the openssl CLI: `openssl ca -selfsign` for the CA
 * (2025-01-01 to 2045-01-01), `openssl ca -startdate -enddate` for the
 * cards, `openssl ca -revoke` and `openssl ca -gencrl -crl_lastupdate
 * 20260101000000Z -crl_nextupdate 20260102000000Z` for the CRL. The CA key
 * was not kept: to add valid cards, make a new CA, CRL and every seed.
 */
#include <openssl/err.h>
#include <stdint.h>
#include <string.h>

#include "card.h"
#include "fuzz_util.h"

static const char card_fuzz_ca[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhjCCASugAwIBAgICEAAwCgYIKoZIzj0EAwIwKDEmMCQGA1UEAwwdS2l6dW5h\n"
    "IEZ1enogQXV0aGVudGljYXRpb24gQ0EwHhcNMjUwMTAxMDAwMDAwWhcNNDUwMTAx\n"
    "MDAwMDAwWjAoMSYwJAYDVQQDDB1LaXp1bmEgRnV6eiBBdXRoZW50aWNhdGlvbiBD\n"
    "QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOcjMeg1allMLwVPt+AoNLKkzusm\n"
    "THbIzCNTDSyHzbpAV29kGaHn4qhCy36W/2+FR9zdtBYTd7dOHBHBUIJdMhejRTBD\n"
    "MBIGA1UdEwEB/wQIMAYBAf8CAQAwDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBTv\n"
    "cU/7zOltqpv4rVAicPakOl5HxTAKBggqhkjOPQQDAgNJADBGAiEAxPk7N7IB//Up\n"
    "jiN3bwMMNYcDoyFjM1t++49HIZroMoYCIQCVIfA0WrgLXSsHFGX+7f4ysUR0tgUu\n"
    "XQB6ZNXTL1Ajug==\n"
    "-----END CERTIFICATE-----\n";

/* Revokes serial 1002; lastUpdate 2026-01-01, nextUpdate 2026-01-02. */
static const char card_fuzz_crl[] =
    "-----BEGIN X509 CRL-----\n"
    "MIHWMH4CAQEwCgYIKoZIzj0EAwIwKDEmMCQGA1UEAwwdS2l6dW5hIEZ1enogQXV0\n"
    "aGVudGljYXRpb24gQ0EXDTI2MDEwMTAwMDAwMFoXDTI2MDEwMjAwMDAwMFowFTAT\n"
    "AgIQAhcNMjYxMTIzMjIwOTE2WqAOMAwwCgYDVR0UBAMCAQEwCgYIKoZIzj0EAwID\n"
    "SAAwRQIhALAl3NkgWf/OS0J2oRVGE/Lqk1/JoayGwUKO3b1qdavXAiAd23MDTeR9\n"
    "YrlZsunEs0SEjKKq4H6avCWY0VdZX6qTOQ==\n"
    "-----END X509 CRL-----\n";

static const char card_fuzz_nonce[] = "Kizuna fuzz_card: the nonce 0123";
_Static_assert(sizeof card_fuzz_nonce == KZ_CARD_NONCE_LEN + 1,
               "the nonce is 32 bytes");

static const int64_t card_fuzz_times[4] = {
    1767268800000, /* T_FRESH 2026-01-01T12:00Z: cards valid, CRL fresh */
    1811808000000, /* T_STALE 2027-06-01: cards valid, CRL stale */
    1924992000000, /* T_LATE  2031-01-01: cards expired */
    1740787200000, /* T_EARLY 2025-03-01: cards not yet valid */
};

/* The two trusts, made on first use and kept for the process. */
static struct kz_card_trust *card_fuzz_trust(int with_crl)
{
    static struct kz_card_trust *trusts[2];
    if (trusts[with_crl] == NULL) {
        char err[256];
        int rv = kz_card_trust_new(
            card_fuzz_ca, sizeof card_fuzz_ca - 1,
            with_crl ? card_fuzz_crl : NULL,
            with_crl ? sizeof card_fuzz_crl - 1 : 0, &trusts[with_crl], err,
            sizeof err);
        if (rv != KZ_OK)
            fprintf(stderr, "fuzz_card: trust: %s\n", err);
        FUZZ_CHECK(rv == KZ_OK);
    }
    return trusts[with_crl];
}

static int card_fuzz_hex(const char *s, const char *digits)
{
    return s[strspn(s, digits)] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int with_crl = data[0] & 1;
    int64_t now_ms = card_fuzz_times[(data[0] >> 1) & 3];
    size_t cert_len = (size_t)data[1] << 8 | data[2];
    if (cert_len > size - 3)
        cert_len = size - 3;
    const unsigned char *cert = data + 3;
    const unsigned char *sig = cert + cert_len;
    size_t sig_len = size - 3 - cert_len;

    const struct kz_card_trust *t = card_fuzz_trust(with_crl);
    struct kz_card_result r;
    FUZZ_CHECK(kz_card_verify(t, cert, cert_len, sig, sig_len,
                              (const unsigned char *)card_fuzz_nonce, now_ms,
                              &r) == KZ_OK);

    FUZZ_CHECK(strcmp(kz_card_outcome_name(r.outcome), "unknown") != 0);
    size_t sn = strnlen(r.serial_hex, sizeof r.serial_hex);
    size_t kn = strnlen(r.key_sha256, sizeof r.key_sha256);
    FUZZ_CHECK(sn < sizeof r.serial_hex && kn < sizeof r.key_sha256);
    if (r.outcome == KZ_CARD_MALFORMED) {
        FUZZ_CHECK(sn == 0 && kn == 0);
    } else {
        const char *digits = r.serial_hex[0] == '-' ? r.serial_hex + 1
                                                    : r.serial_hex;
        FUZZ_CHECK(strlen(digits) >= 2 && strlen(digits) % 2 == 0);
        FUZZ_CHECK(card_fuzz_hex(digits, "0123456789ABCDEF"));
        FUZZ_CHECK(kn == 64 && card_fuzz_hex(r.key_sha256, "0123456789abcdef"));
    }
    bool stale;
    kz_card_trust_crl_status(t, now_ms, NULL, NULL, &stale);
    FUZZ_CHECK(r.crl_stale == stale);
    if (with_crl && r.outcome == KZ_CARD_OK)
        FUZZ_CHECK(strcmp(r.serial_hex, "1002") != 0);
    FUZZ_CHECK(ERR_peek_error() == 0);
    return 0;
}
