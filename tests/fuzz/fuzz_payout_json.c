/*
 * fuzz_payout_json.c — libFuzzer driver for the payout endpoints' body
 * parsers (node/payouts.h, node/payout_rules.h): the body of
 * PUT /v1/programs/{id} for each program, the body of POST /v1/payouts, and
 * a program's rule table as JSON text.
 *
 * Input: byte 0 picks the parser (mod 4: program seikatsu_saiken, program
 * gienkin, payout request, table); the rest is the JSON text.
 *
 * Properties checked: every parser either accepts or refuses with a
 * message; an accepted program names its id and, for seikatsu_saiken with a
 * table, holds the table in the canonical form, which parses again into the
 * same table; an accepted payout request has a household id, a program, an
 * item and an account whose holder converts for the bank file; an accepted
 * table prints as JSON that parses back into the same table.
 * Seeds: tests/fuzz/corpus/payout_json/.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "payout_rules.h"
#include "payouts.h"
#include "zengin.h"

static void table_roundtrip(const struct kz_payout_table *t)
{
    char *s = kz_payout_table_json(t);
    FUZZ_CHECK(s != NULL);
    struct kz_payout_table u;
    char err[160];
    FUZZ_CHECK(kz_payout_table_parse(s, &u, err, sizeof err) == 0);
    FUZZ_CHECK(memcmp(t, &u, sizeof u) == 0);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char err[256] = "";
    unsigned which = data[0] % 4;
    if (which == 3) {
        struct kz_payout_table t;
        if (kz_payout_table_parse(text, &t, err, sizeof err) == 0)
            table_roundtrip(&t);
        else
            FUZZ_CHECK(err[0] != '\0');
        free(text);
        return 0;
    }
    json_t *body = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    if (body == NULL)
        return 0;
    if (which < 2) {
        const char *id = which == 0 ? "seikatsu_saiken" : "gienkin";
        Kizuna__Program p;
        char *table = NULL;
        int rv = kz_node_program_from_json(id, body, &p, &table, err,
                                           sizeof err);
        if (rv == 0) {
            FUZZ_CHECK(strcmp(p.id, id) == 0);
            FUZZ_CHECK(p.table_json == table);
            if (table != NULL) {
                struct kz_payout_table t;
                FUZZ_CHECK(kz_payout_table_parse(table, &t, err,
                                                 sizeof err) == 0);
                table_roundtrip(&t);
            }
        } else {
            FUZZ_CHECK(rv == -1 && err[0] != '\0');
        }
        free(table);
    } else {
        Kizuna__CreatePayout cp;
        Kizuna__BankAccount a;
        if (kz_node_payout_request_from_json(body, &cp, &a, err,
                                             sizeof err) == 0) {
            char kana[31];
            FUZZ_CHECK(cp.household_id && cp.program && cp.item);
            FUZZ_CHECK(cp.account == &a && a.account_number && a.holder);
            FUZZ_CHECK(kz_zengin_kana(a.holder, kana, sizeof kana, NULL) == 0);
        } else {
            FUZZ_CHECK(err[0] != '\0');
        }
    }
    json_decref(body);
    return 0;
}
