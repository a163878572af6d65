/*
 * test_linkcode.c — link codes (node/linkcode): known answers from an
 * independent AES implementation, make -> parse -> open round trips at the
 * edges of the key index, two organisations' keys, the lenient reading of
 * typed codes, and the check symbol: every single substitution and every
 * adjacent transposition of a valid code is refused, exhaustively over
 * positions and symbols, for many codes.
 */
#include <criterion/criterion.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linkcode.h"

#define NSYM 29 /* symbols of a code: 2 index, 26 block, 1 check */

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

static void random_bytes(unsigned char *b, size_t n)
{
    cr_assert_eq(RAND_bytes(b, (int)n), 1);
}

static int parse_str(const char *s, unsigned *index, unsigned char block[16])
{
    return kz_node_linkcode_parse(s, strlen(s), index, block);
}

/* The 29 symbols of a canonical code, its dashes left out. */
static void strip(const char *code, char sym[NSYM + 1])
{
    size_t n = 0;
    for (; *code != '\0'; code++)
        if (*code != '-') {
            cr_assert_lt(n, (size_t)NSYM, "too many symbols in %s", code);
            sym[n++] = *code;
        }
    cr_assert_eq(n, (size_t)NSYM);
    sym[n] = '\0';
}

/* 29 symbols back into the canonical grouping by four. */
static void group(const char sym[NSYM], char out[KZ_NODE_LINKCODE_MAX])
{
    size_t n = 0;
    for (int i = 0; i < NSYM; i++) {
        if (i > 0 && i % 4 == 0)
            out[n++] = '-';
        out[n++] = sym[i];
    }
    out[n] = '\0';
}

static int value(char c)
{
    return (int)(strchr(alphabet, c) - alphabet);
}

/* The check symbol of 28 data symbols, computed here independently of
 * linkcode.c: the base-32 number they spell, modulo 37. */
static char check_of(const char sym[28])
{
    unsigned r = 0;
    for (int i = 0; i < 28; i++)
        r = (r * 32 + (unsigned)value(sym[i])) % 37;
    return alphabet[r];
}

/* Known answers. The blocks were computed with the openssl command line,
 * not with this code:
 *   printf 00112233445566778899aabbccddeeff | xxd -r -p |
 *     openssl enc -aes-256-ecb -nopad \
 *       -K 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f |
 *     xxd -p                      -> 8ea2b7ca516745bfeafc49904b496089
 * (FIPS-197 appendix C.3), and likewise for the second key and ID code;
 * the texts with a separate base-32 / mod-37 computation (Python's
 * integers). */
static const struct {
    const char *key_hex, *id_hex, *block_hex;
    unsigned index;
    const char *text;
} kat[] = {
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff", "8ea2b7ca516745bfeafc49904b496089",
     17, "0H4E-MAVW-MMB7-8PZY-NZ29-J15M-JR49-F"},
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "00112233445566778899aabbccddeeff", "8ea2b7ca516745bfeafc49904b496089",
     0, "004E-MAVW-MMB7-8PZY-NZ29-J15M-JR49-W"},
    {"9c3e1f0a7b2d4c58e6a1f0937d2b5c4e8a16f3d0c9b7e2a45f1083d6c7b9e2a1",
     "6b697a756e612d69642d636f64652d31", "df3fda6f7f84b4b28a73d4e637571e54",
     1023, "ZZ6Z-7ZD6-YZW4-PJS8-MWYM-WRVN-E7JM-M"},
    {"9c3e1f0a7b2d4c58e6a1f0937d2b5c4e8a16f3d0c9b7e2a45f1083d6c7b9e2a1",
     "6b697a756e612d69642d636f64652d31", "df3fda6f7f84b4b28a73d4e637571e54",
     5, "056Z-7ZD6-YZW4-PJS8-MWYM-WRVN-E7JM-W"},
};

static void unhex(const char *hex, unsigned char *out, size_t n)
{
    cr_assert_eq(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (unsigned char)v;
    }
}

Test(linkcode, known_answers)
{
    for (size_t k = 0; k < sizeof kat / sizeof kat[0]; k++) {
        unsigned char key[32], id[16], want[16], block[16], back[16];
        unhex(kat[k].key_hex, key, 32);
        unhex(kat[k].id_hex, id, 16);
        unhex(kat[k].block_hex, want, 16);

        char text[KZ_NODE_LINKCODE_MAX];
        cr_assert_eq(kz_node_linkcode_make(key, kat[k].index, id, text), KZ_OK);
        cr_assert_str_eq(text, kat[k].text);

        unsigned index = 9999;
        cr_assert_eq(parse_str(text, &index, block), KZ_OK);
        cr_assert_eq(index, kat[k].index);
        cr_assert(memcmp(block, want, 16) == 0, "block of vector %zu", k);
        cr_assert_eq(kz_node_linkcode_open(key, block, back), KZ_OK);
        cr_assert(memcmp(back, id, 16) == 0);
    }
}

Test(linkcode, round_trip_at_every_edge_of_the_index)
{
    static const unsigned indexes[] = {0, 1, 31, 32, 512, 1022, 1023};
    for (int rep = 0; rep < 50; rep++)
        for (size_t i = 0; i < sizeof indexes / sizeof indexes[0]; i++) {
            unsigned char key[32], id[16], block[16], back[16];
            random_bytes(key, sizeof key);
            random_bytes(id, sizeof id);
            char text[KZ_NODE_LINKCODE_MAX], again[KZ_NODE_LINKCODE_MAX];
            cr_assert_eq(kz_node_linkcode_make(key, indexes[i], id, text),
                         KZ_OK);
            cr_assert_eq(strlen(text), 36u);

            unsigned index = 9999;
            cr_assert_eq(parse_str(text, &index, block), KZ_OK, "%s", text);
            cr_assert_eq(index, indexes[i]);
            cr_assert_eq(kz_node_linkcode_open(key, block, back), KZ_OK);
            cr_assert(memcmp(back, id, 16) == 0, "%s", text);

            kz_node_linkcode_format(index, block, again);
            cr_assert_str_eq(again, text);
            /* Deterministic: the same person gets the same code. */
            cr_assert_eq(kz_node_linkcode_make(key, indexes[i], id, again),
                         KZ_OK);
            cr_assert_str_eq(again, text);
        }
}

Test(linkcode, extreme_blocks)
{
    /* All-zero and all-one blocks: the padding bits and symbol 2's range. */
    unsigned char block[16], got[16];
    char text[KZ_NODE_LINKCODE_MAX];
    unsigned index;
    for (int fill = 0; fill <= 0xff; fill += 0xff) {
        memset(block, fill, sizeof block);
        kz_node_linkcode_format(KZ_NODE_LINKCODE_MAX_INDEX, block, text);
        cr_assert_eq(parse_str(text, &index, got), KZ_OK, "%s", text);
        cr_assert_eq(index, (unsigned)KZ_NODE_LINKCODE_MAX_INDEX);
        cr_assert(memcmp(got, block, 16) == 0, "%s", text);
    }
    /* (1023 * 32^26 + 2^128 - 1) mod 37 = 18, "J" */
    cr_assert_str_eq(text, "ZZ7Z-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-J");
}

Test(linkcode, two_organisations_get_unrelated_codes)
{
    for (int rep = 0; rep < 100; rep++) {
        unsigned char ka[32], kb[32], id[16], block[16], wrong[16];
        random_bytes(ka, sizeof ka);
        random_bytes(kb, sizeof kb);
        random_bytes(id, sizeof id);
        char la[KZ_NODE_LINKCODE_MAX], lb[KZ_NODE_LINKCODE_MAX];
        cr_assert_eq(kz_node_linkcode_make(ka, 3, id, la), KZ_OK);
        cr_assert_eq(kz_node_linkcode_make(kb, 3, id, lb), KZ_OK);
        cr_assert_str_neq(la, lb);

        unsigned index;
        cr_assert_eq(parse_str(la, &index, block), KZ_OK);
        cr_assert_eq(kz_node_linkcode_open(kb, block, wrong), KZ_OK);
        cr_assert(memcmp(wrong, id, 16) != 0,
                  "A's code opened with B's key gave the ID code");
    }
}

Test(linkcode, reads_codes_as_people_type_them)
{
    /* Index 32 and a block of zeros and ones: the text is all 0s and 1s
     * but for its check symbol, so every confusable has a place to go. */
    unsigned char block[16] = {0x20, 0x00, 0x42, 0x00, 0x80, 0x21, 0x08, 0x00,
                               0x00, 0x80, 0x20, 0x00, 0x42, 0x10, 0x80, 0x20};
    char text[KZ_NODE_LINKCODE_MAX];
    kz_node_linkcode_format(32, block, text);
    cr_assert_str_eq(text, "1010-0110-1011-1000-1010-0111-1010-Y");

    char typed[6][128];
    /* O for 0, I for 1 */
    snprintf(typed[0], 128, "%s", text);
    for (char *p = typed[0]; *p; p++)
        *p = *p == '0' ? 'O' : *p == '1' ? 'I' : *p;
    /* o, l, L, i mixed, lower case */
    snprintf(typed[1], 128, "%s", text);
    int turn = 0;
    for (char *p = typed[1]; *p; p++) {
        if (*p == '0')
            *p = turn++ % 2 ? 'o' : 'O';
        else if (*p == '1')
            *p = "lLiI"[turn++ % 4];
        else if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    /* no dashes */
    char sym[NSYM + 1];
    strip(text, sym);
    snprintf(typed[2], 128, "%s", sym);
    /* spaces instead of dashes, and around */
    snprintf(typed[3], 128, "  %s  ", text);
    for (char *p = typed[3]; *p; p++)
        if (*p == '-')
            *p = ' ';
    /* odd grouping, doubled separators */
    snprintf(typed[4], 128, "-%.5s -- %.10s- %s-", sym, sym + 5, sym + 15);
    /* a random code, lower case */
    unsigned char key[32], id[16];
    random_bytes(key, sizeof key);
    random_bytes(id, sizeof id);
    char other[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(kz_node_linkcode_make(key, 700, id, other), KZ_OK);
    snprintf(typed[5], 128, "%s", other);
    for (char *p = typed[5]; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');

    for (int t = 0; t < 6; t++) {
        unsigned index;
        unsigned char got[16];
        char canon[KZ_NODE_LINKCODE_MAX];
        cr_assert_eq(parse_str(typed[t], &index, got), KZ_OK, "\"%s\"",
                     typed[t]);
        kz_node_linkcode_format(index, got, canon);
        cr_assert_str_eq(canon, t == 5 ? other : text, "\"%s\"", typed[t]);
    }
}

/* A valid code's symbols, for the exhaustive tests: the known answers,
 * codes of extreme index and block, and random ones. */
static void sample_code(int n, char sym[NSYM + 1])
{
    char text[KZ_NODE_LINKCODE_MAX];
    unsigned char block[16];
    if (n < (int)(sizeof kat / sizeof kat[0])) {
        strip(kat[n].text, sym);
        return;
    }
    random_bytes(block, sizeof block);
    unsigned index = (unsigned)block[0] << 2 | (block[1] & 3u);
    if (n % 8 == 0) {
        memset(block, 0, sizeof block);
        index = 0;
    } else if (n % 8 == 1) {
        memset(block, 0xff, sizeof block);
        index = KZ_NODE_LINKCODE_MAX_INDEX;
    }
    kz_node_linkcode_format(index, block, text);
    strip(text, sym);
}

#define SAMPLES 300

Test(linkcode, every_single_substitution_is_refused)
{
    size_t tried = 0;
    for (int n = 0; n < SAMPLES; n++) {
        char sym[NSYM + 1], bad[NSYM + 1], text[KZ_NODE_LINKCODE_MAX];
        sample_code(n, sym);
        group(sym, text);
        unsigned index;
        unsigned char block[16];
        cr_assert_eq(parse_str(text, &index, block), KZ_OK, "%s", text);
        for (int pos = 0; pos < NSYM; pos++)
            for (int v = 0; v < 37; v++) {
                if (alphabet[v] == sym[pos])
                    continue;
                memcpy(bad, sym, sizeof bad);
                bad[pos] = alphabet[v];
                group(bad, text);
                cr_assert_eq(parse_str(text, &index, block), KZ_EINVAL,
                             "substitution at %d accepted: %s", pos, text);
                /* Typed without dashes it is no better. */
                cr_assert_eq(kz_node_linkcode_parse(bad, NSYM, &index, block),
                             KZ_EINVAL);
                tried++;
            }
    }
    /* 29 positions, 36 other symbols each, for every sample. */
    cr_assert_eq(tried, (size_t)SAMPLES * NSYM * 36);
}

Test(linkcode, every_adjacent_transposition_is_refused)
{
    size_t tried = 0;
    for (int n = 0; n < SAMPLES; n++) {
        char sym[NSYM + 1], bad[NSYM + 1], text[KZ_NODE_LINKCODE_MAX];
        sample_code(n, sym);
        for (int pos = 0; pos + 1 < NSYM; pos++) {
            if (sym[pos] == sym[pos + 1])
                continue; /* swapping equal symbols changes nothing */
            memcpy(bad, sym, sizeof bad);
            bad[pos] = sym[pos + 1];
            bad[pos + 1] = sym[pos];
            group(bad, text);
            unsigned index;
            unsigned char block[16];
            cr_assert_eq(parse_str(text, &index, block), KZ_EINVAL,
                         "transposition at %d accepted: %s", pos, text);
            tried++;
        }
    }
    cr_assert_gt(tried, (size_t)SAMPLES * 20);
}

/* The check symbol alone, without the range checks that also refuse some
 * of the codes above: for every position and every nonzero change of one
 * data symbol (d * 32^i), and every adjacent swap of two different data
 * symbols ((a - b) * 31 * 32^i), the number changes by a non-multiple of 37.
 * The last data symbol swapped with the check symbol is the case c == a
 * only, tested in the parser above. */
Test(linkcode, the_check_sees_every_change_of_the_number)
{
    for (int i = 0; i < 28; i++) {
        unsigned w = 1; /* 32^i mod 37 */
        for (int k = 0; k < i; k++)
            w = w * 32 % 37;
        for (int d = 1; d < 32; d++) {
            cr_assert_neq(d * w % 37, 0u, "substitution at %d by %d", i, d);
            cr_assert_neq(d * 31 * w % 37, 0u, "transposition at %d", i);
        }
    }
}

Test(linkcode, refuses_wrong_lengths)
{
    char sym[NSYM + 1], text[64];
    unsigned index;
    unsigned char block[16];
    strip(kat[0].text, sym);

    cr_assert_eq(kz_node_linkcode_parse("", 0, &index, block), KZ_EINVAL);
    cr_assert_eq(parse_str("----  --", &index, block), KZ_EINVAL);
    /* One symbol fewer, one more (with a check valid for its first 28). */
    cr_assert_eq(kz_node_linkcode_parse(sym, NSYM - 1, &index, block),
                 KZ_EINVAL);
    snprintf(text, sizeof text, "%s0", sym);
    cr_assert_eq(parse_str(text, &index, block), KZ_EINVAL);
    snprintf(text, sizeof text, "%.28s%c", sym, check_of(sym));
    cr_assert_eq(parse_str(text, &index, block), KZ_OK);
    snprintf(text, sizeof text, "%s%s", sym, sym);
    cr_assert_eq(parse_str(text, &index, block), KZ_EINVAL);
    /* Each prefix of a valid code is refused, and only the bytes up to len
     * are read: the code sits at the very end of a heap block, without a
     * NUL, so ASan sees any read past it. */
    size_t len = strlen(kat[0].text);
    char *exact = malloc(len);
    cr_assert_not_null(exact);
    memcpy(exact, kat[0].text, len);
    for (size_t l = 0; l < len; l++)
        cr_assert_eq(kz_node_linkcode_parse(exact, l, &index, block),
                     KZ_EINVAL, "prefix of %zu accepted", l);
    cr_assert_eq(kz_node_linkcode_parse(exact, len, &index, block), KZ_OK);
    free(exact);
}

Test(linkcode, refuses_bad_characters)
{
    static const char bad_chars[] = "U*~$=_.+:/\t\n\r\x7f";
    char sym[NSYM + 1], text[KZ_NODE_LINKCODE_MAX];
    unsigned index;
    unsigned char block[16];
    strip(kat[2].text, sym);

    for (int pos = 0; pos < NSYM; pos++) {
        /* In a data position, the check-only symbols too. */
        for (const char *c = bad_chars; *c != '\0'; c++) {
            if (pos == NSYM - 1 && strchr("U*~$=", *c) != NULL)
                continue; /* a check symbol: a substitution, tested above */
            char mod[NSYM + 1];
            memcpy(mod, sym, sizeof mod);
            mod[pos] = *c;
            group(mod, text);
            cr_assert_eq(parse_str(text, &index, block), KZ_EINVAL,
                         "'%c' at %d accepted", *c, pos);
        }
        /* A NUL byte, or a byte of UTF-8, inside the given length. */
        for (unsigned b = 0x80; b <= 0x100; b += 0x40) {
            char mod[NSYM + 1];
            memcpy(mod, sym, sizeof mod);
            mod[pos] = (char)(b & 0xff);
            cr_assert_eq(kz_node_linkcode_parse(mod, NSYM, &index, block),
                         KZ_EINVAL, "byte %#x at %d accepted", b & 0xff, pos);
        }
    }
    /* Full-width digits (UTF-8) are not folded: codes are ASCII. */
    cr_assert_eq(parse_str("\xef\xbc\x90" "04E-MAVW-MMB7-8PZY-NZ29-J15M-JR49-W",
                           &index, block),
                 KZ_EINVAL);
}

Test(linkcode, refuses_out_of_range)
{
    unsigned char key[32] = {1}, id[16] = {2}, block[16] = {3};
    char text[KZ_NODE_LINKCODE_MAX];

    /* make and format: index 1024 and beyond. */
    memset(text, 'x', sizeof text);
    cr_assert_eq(kz_node_linkcode_make(key, KZ_NODE_LINKCODE_MAX_INDEX + 1, id,
                                       text),
                 KZ_EINVAL);
    cr_assert_str_eq(text, "");
    cr_assert_eq(kz_node_linkcode_make(key, ~0u, id, text), KZ_EINVAL);
    memset(text, 'x', sizeof text);
    kz_node_linkcode_format(KZ_NODE_LINKCODE_MAX_INDEX + 1, block, text);
    cr_assert_str_eq(text, "");

    /* parse: two symbols cannot spell an index over 1023, but the block's
     * 26 can spell a number of 2^128 or more (symbol 2 above 7). Those are
     * refused even with a correct check symbol. */
    char sym[NSYM + 1];
    strip(kat[0].text, sym);
    for (int v = 0; v < 32; v++) {
        sym[2] = alphabet[v];
        sym[28] = check_of(sym);
        group(sym, text);
        unsigned index;
        cr_assert_eq(parse_str(text, &index, block), v < 8 ? KZ_OK : KZ_EINVAL,
                     "%s", text);
    }
}
