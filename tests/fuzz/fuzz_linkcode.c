/*
 * fuzz_linkcode.c — libFuzzer driver for node/linkcode.h: the parser of
 * typed link codes, on arbitrary bytes (codes reach it from request bodies
 * and from people).
 *
 * The whole input is parsed. When the parser accepts it, properties from
 * linkcode.h's opening comment:
 *   - the canonical text (format) is NUL-terminated, 36 characters, fits
 *     KZ_NODE_LINKCODE_MAX, and parses back to the same (index, block);
 *   - it is the input itself, normalised the way the parser reads it
 *     (dashes and spaces dropped, upper case, O -> 0, I/L -> 1): one code
 *     has one text, so no two different typings parse to one code unless
 *     they differ only in what the parser is documented to ignore;
 *   - under a fixed key, opening the block and making the code again from
 *     the ID code gives the same canonical text (open is make's inverse).
 * Seeds: tests/fuzz/corpus/linkcode/.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "linkcode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char key[KZ_NODE_LINKCODE_KEY_BYTES] = {
        0x4b, 0x69, 0x7a, 0x75, 0x6e, 0x61, 0x20, 0x66, 0x75, 0x7a, 0x7a,
        0x20, 0x6c, 0x69, 0x6e, 0x6b, 0x63, 0x6f, 0x64, 0x65, 0x20, 0x6b,
        0x65, 0x79, 0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36};
    unsigned index = 0, index2 = 0;
    unsigned char block[16], block2[16], id[16];
    char text[KZ_NODE_LINKCODE_MAX], again[KZ_NODE_LINKCODE_MAX];

    if (kz_node_linkcode_parse((const char *)data, size, &index, block) !=
        KZ_OK)
        return 0;
    FUZZ_CHECK(index <= KZ_NODE_LINKCODE_MAX_INDEX);

    memset(text, 0x7f, sizeof text);
    kz_node_linkcode_format(index, block, text);
    FUZZ_CHECK(memchr(text, '\0', sizeof text) != NULL);
    FUZZ_CHECK(strlen(text) == 36);
    FUZZ_CHECK(kz_node_linkcode_parse(text, strlen(text), &index2, block2) ==
               KZ_OK);
    FUZZ_CHECK(index2 == index);
    FUZZ_CHECK(memcmp(block2, block, 16) == 0);

    /* The input, normalised, is the canonical text without its dashes. */
    char want[KZ_NODE_LINKCODE_MAX];
    size_t nw = 0;
    for (const char *t = text; *t != '\0'; t++)
        if (*t != '-')
            want[nw++] = *t;
    size_t ni = 0;
    for (size_t i = 0; i < size; i++) {
        char c = (char)data[i];
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == 'O')
            c = '0';
        else if (c == 'I' || c == 'L')
            c = '1';
        FUZZ_CHECK(ni < nw && c == want[ni]);
        ni++;
    }
    FUZZ_CHECK(ni == nw);

    FUZZ_CHECK(kz_node_linkcode_open(key, block, id) == KZ_OK);
    FUZZ_CHECK(kz_node_linkcode_make(key, index, id, again) == KZ_OK);
    FUZZ_CHECK(strcmp(again, text) == 0);
    return 0;
}
