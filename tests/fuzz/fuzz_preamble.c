/*
 * fuzz_preamble.c — libFuzzer driver for the node-to-node channel preamble
 * (consensus/peer_tls.h), the first plaintext a peer sends inside TLS and
 * the only part of the channel handshake that is Kizuna's own code.
 *
 * Properties checked: the parser never reads past len; it needs at most
 * KZ_CONS__PREAMBLE_MAX bytes to decide; a complete preamble reports a
 * length within the input, a known kind, a non-zero id and a printable
 * address; building that preamble again gives the same bytes; and every
 * shorter prefix of a complete preamble asks for more rather than failing.
 * Seeds: tests/fuzz/corpus/preamble/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "peer_tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: ASan catches any read past the end. */
    unsigned char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    struct kz_cons__preamble pre;
    const char *why = NULL;
    int rv = kz_cons__preamble_parse(buf, size, &pre, &why);
    FUZZ_CHECK(rv == -1 || rv == 0 || rv == 1);
    if (rv == 0)
        FUZZ_CHECK(size < KZ_CONS__PREAMBLE_MAX);
    if (rv == -1)
        FUZZ_CHECK(why != NULL && why[0] != '\0');
    if (rv == 1) {
        FUZZ_CHECK(pre.length >= 20 && pre.length <= size);
        FUZZ_CHECK(pre.kind == KZ_CHAN_RAFT || pre.kind == KZ_CHAN_PEER);
        FUZZ_CHECK(pre.id != 0);
        size_t alen = strlen(pre.address);
        FUZZ_CHECK(alen > 0 && alen < sizeof pre.address);
        for (size_t i = 0; i < alen; i++)
            FUZZ_CHECK((unsigned char)pre.address[i] > ' ' &&
                       (unsigned char)pre.address[i] < 0x7f);
        unsigned char again[KZ_CONS__PREAMBLE_MAX];
        size_t n = kz_cons__preamble_build(pre.kind, pre.id, pre.address,
                                           again);
        FUZZ_CHECK(n == pre.length && memcmp(again, buf, n) == 0);
        for (size_t cut = 0; cut < pre.length; cut++) {
            struct kz_cons__preamble part;
            const char *w = NULL;
            FUZZ_CHECK(kz_cons__preamble_parse(buf, cut, &part, &w) == 0);
        }
    }
    free(buf);
    return 0;
}
