/*
 * fuzz_name_fold.c — libFuzzer driver for node/name_fold.h: the fold of one
 * name, the index keys of a record and the terms of a search, on arbitrary
 * bytes (names reach the fold from request bodies and query strings).
 *
 * The input is folded whole; then split at its first NUL byte into the
 * record's name and name_kana (no NUL: name only) for kz_node_name_keys, and
 * the name part is also run as a query.
 *
 * Properties checked, all from name_fold.h / name_fold.c's opening comment:
 *   - a successful fold is NUL-terminated at the length returned;
 *   - idempotence: fold(fold(x)) == fold(x), for the fold and for every key
 *     and query term (each is itself a fold);
 *   - a fold never truncates: with a buffer one byte too small it fails;
 *   - a person is found by their own name: the whole term of the query for
 *     a name is one of that name's index keys (when the query has one);
 *   - the keys of a list of readings are folds too, and a dictionary
 *     reading (MeCab) is valid UTF-8 or absent, never half a buffer.
 * Seeds: tests/fuzz/corpus/name_fold/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "name_fold.h"
#include "name_reading.h"
#include "utf8.h"

#define NF_BIG 8192 /* more than any fold of a libFuzzer input of 4 KiB */
#define NF_KEYS 40
#define NF_TERMS 20

/* s (a fold result, NUL-terminated) folds to itself. */
static void name_fold_fixed_point(const char *s)
{
    static char again[NF_BIG];
    size_t len = strlen(s);
    int n = kz_node_name_fold(s, len, again, sizeof again);
    if (n < 0 || (size_t)n != len || memcmp(s, again, len) != 0) {
        fprintf(stderr, "not idempotent: '%s' -> '%s'\n", s,
                n < 0 ? "<error>" : again);
        FUZZ_CHECK(!"fold(fold(x)) == fold(x)");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char once[NF_BIG];
    const char *in = (const char *)data;

    int n = kz_node_name_fold(in, size, once, sizeof once);
    if (n >= 0) {
        FUZZ_CHECK((size_t)n < sizeof once && strlen(once) == (size_t)n);
        name_fold_fixed_point(once);
        /* Exactly n + 1 bytes fit; n do not. */
        char *exact = malloc((size_t)n + 1);
        FUZZ_CHECK(exact != NULL);
        FUZZ_CHECK(kz_node_name_fold(in, size, exact, (size_t)n + 1) == n);
        FUZZ_CHECK(memcmp(exact, once, (size_t)n + 1) == 0);
        FUZZ_CHECK(kz_node_name_fold(in, size, exact, (size_t)n) == -1);
        free(exact);
    }

    /* name \0 name_kana, each NUL-terminated. */
    char *name = malloc(size + 1);
    FUZZ_CHECK(name != NULL);
    memcpy(name, data, size);
    name[size] = '\0';
    size_t name_len = strlen(name);
    const char *kana = name_len < size ? name + name_len + 1 : NULL;

    static char keys[NF_KEYS][KZ_NODE_NAME_KEY_MAX];
    size_t nk = kz_node_name_keys(name, kana, keys, NF_KEYS);
    FUZZ_CHECK(nk <= NF_KEYS);
    for (size_t i = 0; i < nk; i++) {
        FUZZ_CHECK(keys[i][0] != '\0' &&
                   strlen(keys[i]) < KZ_NODE_NAME_KEY_MAX);
        name_fold_fixed_point(keys[i]);
    }

    static char terms[NF_TERMS][KZ_NODE_NAME_KEY_MAX];
    size_t whole = (size_t)-1;
    size_t nt = kz_node_name_query(name, terms, NF_TERMS, &whole);
    FUZZ_CHECK(nt <= NF_TERMS);
    if (nt > 0) {
        FUZZ_CHECK(whole == nt - 1);
        for (size_t i = 0; i < nt; i++) {
            FUZZ_CHECK(terms[i][0] != '\0');
            name_fold_fixed_point(terms[i]);
        }
        /* The record named `name` (no kana) is found by searching `name`. */
        size_t nk_self = kz_node_name_keys(name, NULL, keys, NF_KEYS);
        int found = 0;
        for (size_t i = 0; i < nk_self && !found; i++)
            found = strcmp(keys[i], terms[whole]) == 0;
        if (!found) {
            fprintf(stderr, "query whole '%s' is no key of its own name\n",
                    terms[whole]);
            FUZZ_CHECK(!"a name is found by itself");
        }
    }
    /* The name part as a record's list of dictionary readings (issue 9),
     * and the dictionary reading of the name itself (name_reading.h). */
    nk = kz_node_name_reading_keys(name, keys, NF_KEYS);
    FUZZ_CHECK(nk <= NF_KEYS);
    for (size_t i = 0; i < nk; i++)
        name_fold_fixed_point(keys[i]);
    char *reading = NULL;
    if (kz_node_name_reading(name, &reading) == 0) {
        FUZZ_CHECK(reading != NULL && reading[0] != '\0');
        FUZZ_CHECK(kz_utf8_valid(reading, strlen(reading)));
    } else {
        FUZZ_CHECK(reading == NULL);
    }
    free(reading);
    free(name);
    return 0;
}
