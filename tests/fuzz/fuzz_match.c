/*
 * fuzz_match.c — libFuzzer driver for node/match.h: the canonical forms of a
 * name in kana and of an address, on arbitrary bytes (both come from an
 * organisation's issuance request body).
 *
 * The whole input goes through both folds. Properties checked, from
 * match.h's opening comment:
 *   - a successful fold is NUL-terminated at the length returned, shorter
 *     than the buffer, and valid UTF-8 with no NUL (strictly decoded here,
 *     independently of match.c);
 *   - idempotence: f(f(x)) == f(x);
 *   - never truncated: for each of several buffer sizes, a fold either
 *     succeeds with exactly the result of the big buffer (when that plus
 *     its NUL fits) or fails with -1; n + 1 bytes fit and n do not;
 *   - an input one fold refuses as invalid UTF-8 the other refuses too.
 * Seeds: tests/fuzz/corpus/match/.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "match.h"

/* Whether s[0..n) is strict UTF-8 (no overlong forms, surrogates, code
 * points above U+10FFFF) without a NUL byte. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char b = s[i];
        size_t need;
        uint32_t c, min;
        if (b == 0)
            return false;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1, c = b & 0x1Fu, min = 0x80;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2, c = b & 0x0Fu, min = 0x800;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3, c = b & 0x07u, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (s[i + k] & 0x3Fu);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        i += need + 1;
    }
    return true;
}

typedef int (*fold_fn)(const char *, size_t, char *, size_t);

/* Runs one fold over the input with every property above; returns the
 * length of the big-buffer result or -1. */
static int check_fold(fold_fn fold, const char *what, const char *in,
                      size_t size)
{
    /* Kana: one input byte ('-') can become three (ー); address: three
     * bytes (千) four. 3 * size + 1 covers both. */
    size_t big_cap = 3 * size + 1;
    char *big = malloc(big_cap);
    char *again = malloc(big_cap);
    char *small = malloc(big_cap);
    FUZZ_CHECK(big != NULL && again != NULL && small != NULL);

    int n = fold(in, size, big, big_cap);
    if (n >= 0) {
        size_t len = (size_t)n;
        FUZZ_CHECK(len < big_cap && strlen(big) == len);
        FUZZ_CHECK(valid_utf8((const unsigned char *)big, len));

        int m = fold(big, len, again, big_cap);
        if (m != n || memcmp(again, big, len + 1) != 0) {
            fprintf(stderr, "%s not idempotent: '%s' -> '%s'\n", what, big,
                    m < 0 ? "<error>" : again);
            FUZZ_CHECK(!"f(f(x)) == f(x)");
        }
    }

    /* Smaller buffers: the same result or -1, never a truncated one. */
    static const size_t caps[] = {0, 1, 2, 3, 4, 7, 16, 64, KZ_NODE_MATCH_MAX};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        size_t cap = caps[c] < big_cap ? caps[c] : big_cap;
        memset(small, 0x55, big_cap);
        int r = fold(in, size, small, cap);
        if (n >= 0 && (size_t)n < cap) {
            FUZZ_CHECK(r == n && memcmp(small, big, (size_t)n + 1) == 0);
        } else {
            FUZZ_CHECK(r == -1);
        }
        /* Nothing written past the buffer. */
        for (size_t k = cap; k < big_cap; k++)
            FUZZ_CHECK(small[k] == 0x55);
    }
    if (n >= 0) {
        FUZZ_CHECK(fold(in, size, small, (size_t)n + 1) == n);
        FUZZ_CHECK(memcmp(small, big, (size_t)n + 1) == 0);
        FUZZ_CHECK(fold(in, size, small, (size_t)n) == -1);
    }
    free(small);
    free(again);
    free(big);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    bool valid = valid_utf8(data, size);

    int k = check_fold(kz_node_match_kana, "kana", in, size);
    int a = check_fold(kz_node_match_address, "address", in, size);
    /* Both refuse exactly the invalid inputs (their results always fit the
     * big buffer, so -1 can only mean invalid). */
    FUZZ_CHECK((k >= 0) == valid);
    FUZZ_CHECK((a >= 0) == valid);
    return 0;
}
