/*
 * fuzz_identity.c — libFuzzer driver for the certificate-subject parser
 * (node/identity.h): the input is DER, decoded by d2i_X509 as OpenSSL
 * decodes a peer's certificate, and the parser reads O and OU from it.
 *
 * The parser only ever sees certificates OpenSSL decoded (and, in the node,
 * verified); this driver skips the verification, so subjects no CA of ours
 * would sign reach it too.
 *
 * Properties checked: on success org and role_name are non-empty,
 * NUL-terminated, free of control characters, and role is the table's bit
 * for role_name; on refusal everything is empty and `refused` says why; and
 * the parser leaves the thread's OpenSSL error queue as it found it.
 * Seeds (DER, made with the openssl CLI): tests/fuzz/corpus/identity/.
 */
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "identity.h"

static int identity_clean(const char *s, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strnlen(s, cap);
    if (n == 0 || n == cap)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f ||
            (p[i] == 0xC2 && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    X509 *cert = d2i_X509(NULL, &p, (long)size);
    ERR_clear_error();
    if (cert == NULL)
        return 0;

    struct kz_node_identity id;
    if (kz_node_identity_from_cert(cert, &id) == 0) {
        FUZZ_CHECK(id.refused == NULL);
        FUZZ_CHECK(identity_clean(id.org, sizeof id.org));
        FUZZ_CHECK(identity_clean(id.role_name, sizeof id.role_name));
        FUZZ_CHECK(id.role == kz_node_role_bit(id.role_name));
        FUZZ_CHECK((id.role & ~KZ_NODE_ROLE__ALL) == 0);
    } else {
        FUZZ_CHECK(id.refused != NULL && id.refused[0] != '\0');
        FUZZ_CHECK(id.org[0] == '\0' && id.role_name[0] == '\0' &&
                   id.role == 0);
    }
    FUZZ_CHECK(ERR_peek_error() == 0);
    X509_free(cert);
    return 0;
}
