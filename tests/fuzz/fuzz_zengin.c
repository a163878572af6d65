/*
 * fuzz_zengin.c — libFuzzer driver for node/zengin.h: the reader of 全銀協
 * transfer files and the kana conversion, on arbitrary bytes (a file comes
 * back from a bank or an operator; a name comes from a request body).
 *
 * Every input is
 *   1. read as a whole file by kz_zengin_check: it must not crash, and when
 *      it accepts, the length is (count + 3) * 122, count >= 1 and the total
 *      is within 0 .. count * (10^10 - 1);
 *   2. converted by kz_zengin_kana as a NUL-terminated text (cut at its first
 *      NUL) into a buffer of exactly `cap` bytes (heap, so ASan sees a write
 *      past it). On success: NUL at the length returned, the output only in
 *      the bank's set (ASCII 0x20-0x7E, half-width 0xA1-0xDF); the result
 *      with exactly len + 1 bytes is the same, with len bytes KZ_ETOOBIG;
 *      the output read back as half-width UTF-8 converts to itself (the
 *      conversion is idempotent);
 *   3. when the conversion succeeds and fits 30 bytes, used as a payee name
 *      in a one-payee file: kz_zengin_build must succeed and kz_zengin_check
 *      accept the file with count 1 and the amount as total.
 * Seeds: tests/fuzz/corpus/zengin/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kz_error.h"
#include "zengin.h"

/* JIS X 0201 bytes back to UTF-8 (ASCII as is, 0xA1..0xDF as U+FF61..). */
static size_t to_utf8(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x80) {
            out[o++] = (char)c;
            continue;
        }
        unsigned cp = c + 0xFEC0u;
        out[o++] = (char)(0xE0 | (cp >> 12));
        out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[o++] = (char)(0x80 | (cp & 0x3F));
    }
    out[o] = '\0';
    return o;
}

static void check_file(const uint8_t *data, size_t size)
{
    size_t count = 0;
    long long total = -1;
    char err[200];
    int rc = kz_zengin_check((const char *)data, size, &count, &total, err,
                             sizeof err);
    FUZZ_CHECK(rc == 0 || rc == KZ_ECORRUPT);
    FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL);
    if (rc == 0) {
        FUZZ_CHECK(count >= 1 && size == (count + 3) * KZ_ZENGIN_LINE);
        FUZZ_CHECK(total >= 0 &&
                   total <= (long long)count * KZ_ZENGIN_MAX_AMOUNT);
    }
}

static void check_kana(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    /* Every code point gives at most 2 bytes and takes at least 1. */
    size_t cap = 2 * size + 1;
    char *out = malloc(cap);
    FUZZ_CHECK(out != NULL);
    size_t n = (size_t)-1;
    int rc = kz_zengin_kana(text, out, cap, &n);
    FUZZ_CHECK(rc == 0 || rc == KZ_EINVAL);
    if (rc != 0)
        goto done_text;

    FUZZ_CHECK(n < cap && out[n] == '\0');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        FUZZ_CHECK((c >= 0x20 && c <= 0x7E) || (c >= 0xA1 && c <= 0xDF));
    }

    /* Exactly n + 1 bytes fit; n do not (and nothing is written past). */
    char *exact = malloc(n + 1);
    FUZZ_CHECK(exact != NULL);
    FUZZ_CHECK(kz_zengin_kana(text, exact, n + 1, NULL) == 0);
    FUZZ_CHECK(memcmp(exact, out, n + 1) == 0);
    free(exact);
    char *small = n > 0 ? malloc(n) : NULL;
    FUZZ_CHECK(n == 0 || small != NULL);
    FUZZ_CHECK(kz_zengin_kana(text, small, n, NULL) ==
               (small != NULL ? KZ_ETOOBIG : KZ_EINVAL));
    free(small);

    /* Idempotent: the output, as half-width UTF-8, converts to itself. */
    char *back = malloc(3 * n + 1);
    FUZZ_CHECK(back != NULL);
    to_utf8(out, n, back);
    char *again = malloc(n + 1);
    FUZZ_CHECK(again != NULL);
    size_t n2 = 0;
    FUZZ_CHECK(kz_zengin_kana(back, again, n + 1, &n2) == 0);
    FUZZ_CHECK(n2 == n && memcmp(again, out, n) == 0);
    free(again);
    free(back);

    /* A convertible name that fits makes a file the reader accepts. */
    if (n >= 1 && n <= 30) {
        struct kz_zengin_header h = {
            .requester_code = "1234567890",
            .requester_name = "ｷｽﾞﾅｼ",
            .transfer_mmdd = "0401",
            .bank_code = 1,
            .branch_code = 1,
            .account_type = 1,
            .account_number = "1",
        };
        long long amount = (long long)(size % 1000) * 1000 + 1;
        struct kz_zengin_payee p = {
            .bank_code = 9,
            .branch_code = 9,
            .account_type = 2,
            .account_number = "9",
            .name = text,
            .amount_yen = amount,
        };
        char *file = NULL, err[200];
        size_t len = 0, count = 0;
        long long total = 0;
        int brc = kz_zengin_build(&h, &p, 1, &file, &len, err, sizeof err);
        if (brc != 0)
            fprintf(stderr, "build refused a convertible name: %s\n", err);
        FUZZ_CHECK(brc == 0);
        FUZZ_CHECK(kz_zengin_check(file, len, &count, &total, err,
                                   sizeof err) == 0);
        FUZZ_CHECK(count == 1 && total == amount);
        free(file);
    }

done_text:
    free(out);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_file(data, size);
    check_kana(data, size);
    return 0;
}
