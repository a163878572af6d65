/*
 * test_payout_store.c — payouts as apply decides them (node/payouts.c) on a
 * real RocksDB store: programs read as their defaults until set; amounts
 * from the household's size and latest damage (3/4 for one person); rent
 * then build; already paid (409 with the payout); the same Idempotency-Key
 * and body answering the first answer, another body refused; ineligible,
 * late and unknown households refused and nothing written; a program's own
 * table applied; gienkin; the export file checked by kz_zengin_check, each
 * payout exported once; and the same commands giving the same answers on
 * two stores.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "keys.h"
#include "kz_test_keys.h"
#include "payouts.h"
#include "register.h"
#include "zengin.h"

#define MUNI "131016"
/* 2024-03-01T00:00:00Z (09:00 in Japan). */
#define T0 1709251200000LL
#define DAY 86400000LL

static char dir[64];
static kz_stor *st;
static struct kz_node_keys keys;
static uint64_t next_index;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_payout_XXXXXX");
    kz_test_store_open(dir, MUNI, &st, &keys);
    next_index = 2;
}

static void teardown(void)
{
    kz_test_store_close(dir, st, &keys);
}

TestSuite(payouts, .init = setup, .fini = teardown);

static int apply_at(Kizuna__Command *cmd, int64_t t, json_t **body)
{
    return kz_test_apply_at(st, &keys, MUNI, &next_index, cmd, t, body);
}

static void member(const char *id, const char *hid, const char *damage,
                   const char *certified_on)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = (char *)id;
    v.name = "給付 一郎";
    v.household_id = (char *)hid;
    v.damage = (char *)damage;
    v.damage_certified_on = (char *)certified_on;
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    cv.victim = &v;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    cmd.create_victim = &cv;
    cr_assert_eq(apply_at(&cmd, T0, NULL), 201);
}

static int put_program(const char *id, const char *json_body, json_t **out)
{
    json_error_t e;
    json_t *body = json_loads(json_body, 0, &e);
    cr_assert_not_null(body, "%s", e.text);
    Kizuna__Program p;
    char *table = NULL, err[256];
    cr_assert_eq(kz_node_program_from_json(id, body, &p, &table, err,
                                           sizeof err),
                 0, "%s", err);
    Kizuna__PutProgram pp = KIZUNA__PUT_PROGRAM__INIT;
    pp.program = &p;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_PROGRAM;
    cmd.put_program = &pp;
    int status = apply_at(&cmd, T0, out);
    free(table);
    json_decref(body);
    return status;
}

static int n_payouts;

/* A payout request; key NULL: a key of its own. hash: the body's. */
static int pay(const char *hid, const char *program, const char *item,
               const char *key, uint8_t hash, int64_t t, json_t **out)
{
    char id[32], own[32];
    snprintf(id, sizeof id, "p%04d", ++n_payouts);
    snprintf(own, sizeof own, "k%04d", n_payouts);
    uint8_t sha[32];
    memset(sha, hash, sizeof sha);
    Kizuna__BankAccount a = KIZUNA__BANK_ACCOUNT__INIT;
    a.has_bank_code = a.has_branch_code = a.has_account_type = 1;
    a.bank_code = 1;
    a.branch_code = 123;
    a.account_type = 1;
    a.account_number = "1234567";
    a.holder = "ヒサイ タロウ";
    Kizuna__CreatePayout cp = KIZUNA__CREATE_PAYOUT__INIT;
    cp.id = id;
    cp.household_id = (char *)hid;
    cp.program = (char *)program;
    cp.item = (char *)item;
    cp.account = &a;
    cp.idempotency_key = key ? (char *)key : own;
    cp.has_request_sha256 = 1;
    cp.request_sha256.data = sha;
    cp.request_sha256.len = sizeof sha;
    cp.org = MUNI;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_PAYOUT;
    cmd.create_payout = &cp;
    return apply_at(&cmd, t, out);
}

static long long amount(json_t *j)
{
    return (long long)json_integer_value(json_object_get(j, "amount_yen"));
}

static const char *code(json_t *j)
{
    const char *s =
        json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    return s ? s : "";
}

/* Keys in the records and index column families. */
static size_t count_keys(void)
{
    size_t n = 0;
    int cfs[] = {KZ_STOR_CF_RECORDS, KZ_STOR_CF_INDEX};
    for (int c = 0; c < 2; c++) {
        kz_stor_iter *it = kz_stor_iter_new(st, cfs[c], "", 0, NULL, 0);
        const char *k, *v;
        size_t kl, vl;
        while (it && kz_stor_iter_next(it, &k, &kl, &v, &vl))
            n++;
        kz_stor_iter_free(it);
    }
    return n;
}

Test(payouts, defaults_then_data)
{
    json_t *j = kz_node_programs_json(st, MUNI);
    cr_assert_eq(json_array_size(j), 2);
    json_t *s = json_array_get(j, 0);
    cr_assert_str_eq(json_string_value(json_object_get(s, "id")),
                     "seikatsu_saiken");
    cr_assert(json_is_null(json_object_get(s, "disaster_date")));
    json_t *zenkai = json_object_get(
        json_object_get(json_object_get(s, "table"), "amounts_yen"), "zenkai");
    cr_assert_eq(json_integer_value(json_object_get(zenkai, "basic")),
                 1000000);
    json_decref(j);
    cr_assert_eq(put_program("seikatsu_saiken",
                             "{\"disaster_date\":\"2024-01-01\"}", &j),
                 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "disaster_date")),
                     "2024-01-01");
    cr_assert_gt(json_integer_value(json_object_get(j, "version")), 0);
    json_decref(j);
    /* Refused by the parser. */
    json_t *bad = json_loads("{\"per_household_yen\":5}", 0, NULL);
    Kizuna__Program p;
    char *t = NULL, err[128];
    cr_assert_eq(kz_node_program_from_json("seikatsu_saiken", bad, &p, &t,
                                           err, sizeof err),
                 -1);
    cr_assert_eq(kz_node_program_from_json("nope", bad, &p, &t, err,
                                           sizeof err),
                 -1);
    json_decref(bad);
    bad = json_loads("{\"table\":{\"amounts_yen\":{\"big\":{}}}}", 0, NULL);
    cr_assert_eq(kz_node_program_from_json("seikatsu_saiken", bad, &p, &t,
                                           err, sizeof err),
                 -1);
    json_decref(bad);
}

Test(payouts, amounts_rent_and_already_paid)
{
    json_t *j;
    put_program("seikatsu_saiken", "{\"disaster_date\":\"2024-01-01\"}", NULL);
    /* Two people; the later certificate (daikibo_hankai -> zenkai) counts. */
    member("a1", "h-two", "daikibo_hankai", "2024-01-05");
    member("a2", "h-two", "zenkai", "2024-02-01");
    member("b1", "h-one", "zenkai", "2024-01-05");
    cr_assert_eq(pay("h-two", "seikatsu_saiken", "basic", NULL, 1, T0, &j),
                 201);
    cr_assert_eq(amount(j), 1000000);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     "approved");
    json_decref(j);
    cr_assert_eq(pay("h-one", "seikatsu_saiken", "basic", NULL, 2, T0, &j),
                 201);
    cr_assert_eq(amount(j), 750000, "3/4 for one person");
    json_decref(j);
    /* Rent, then build: build less the rent paid. */
    cr_assert_eq(pay("h-two", "seikatsu_saiken", "rent", NULL, 3, T0, &j),
                 201);
    cr_assert_eq(amount(j), 500000);
    json_decref(j);
    cr_assert_eq(pay("h-two", "seikatsu_saiken", "build", NULL, 4, T0, &j),
                 201);
    cr_assert_eq(amount(j), 1500000);
    json_decref(j);
    /* Already paid: 409 with the payout, and nothing written. */
    size_t before = count_keys();
    cr_assert_eq(pay("h-two", "seikatsu_saiken", "basic", NULL, 5, T0, &j),
                 409);
    cr_assert_str_eq(code(j), "already_paid");
    cr_assert_eq(amount(json_object_get(j, "payout")), 1000000);
    json_decref(j);
    cr_assert_eq(count_keys(), before, "a refusal writes nothing");
    /* Refusals: unknown household, ineligible damage, deadline. */
    member("c1", "h-hankai", "hankai", "2024-01-05");
    before = count_keys();
    cr_assert_eq(pay("h-none", "seikatsu_saiken", "basic", NULL, 6, T0, &j),
                 422);
    cr_assert_str_eq(code(j), "not_eligible");
    json_decref(j);
    cr_assert_eq(pay("h-hankai", "seikatsu_saiken", "basic", NULL, 7, T0, &j),
                 422);
    cr_assert_str_eq(code(j), "not_eligible");
    json_decref(j);
    cr_assert_eq(count_keys(), before, "a refusal writes nothing");
    /* 2024-01-01 + 13 months = 2025-02-01; 2025-02-02 is late. */
    cr_assert_eq(pay("h-one", "seikatsu_saiken", "repair", NULL, 8,
                     1738454400000LL /* 2025-02-02 UTC */, &j),
                 201, "repair: 37 months");
    json_decref(j);
    member("d1", "h-late", "zenkai", "2024-01-05");
    before = count_keys();
    cr_assert_eq(pay("h-late", "seikatsu_saiken", "basic", NULL, 9,
                     1738454400000LL, &j),
                 422);
    cr_assert_str_eq(code(j), "deadline_passed");
    json_decref(j);
    cr_assert_eq(count_keys(), before, "a refusal writes nothing");
    /* The household's ledger. */
    j = kz_node_household_payouts_json(st, &keys, MUNI, "h-two", true);
    cr_assert_eq(json_array_size(json_object_get(j, "payouts")), 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "total_yen")),
                 3000000);
    json_decref(j);
    /* The ledger: per program and item, and in all. */
    j = kz_node_ledger_json(st, MUNI);
    json_t *items = json_object_get(
        json_object_get(json_object_get(j, "programs"), "seikatsu_saiken"),
        "items");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(items, "basic"), "count")),
                 2);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(items, "basic"), "yen")),
                 1750000);
    cr_assert_eq(json_integer_value(json_object_get(j, "count")), 5);
    cr_assert_eq(json_integer_value(json_object_get(j, "yen")),
                 1000000 + 750000 + 500000 + 1500000 + 750000);
    json_decref(j);
}

Test(payouts, idempotency_keys)
{
    json_t *j, *k;
    put_program("seikatsu_saiken", "{\"disaster_date\":\"2024-01-01\"}", NULL);
    member("a1", "h1", "zenkai", "2024-01-05");
    member("a2", "h1", "zenkai", "2024-01-05");
    cr_assert_eq(pay("h1", "seikatsu_saiken", "basic", "key-1", 1, T0, &j),
                 201);
    size_t before = count_keys();
    cr_assert_eq(pay("h1", "seikatsu_saiken", "basic", "key-1", 1, T0 + 5, &k),
                 201, "the same key and body: the first answer");
    cr_assert(json_equal(j, k));
    cr_assert_eq(count_keys(), before);
    json_decref(k);
    cr_assert_eq(pay("h1", "seikatsu_saiken", "basic", "key-1", 2, T0, &k),
                 422);
    cr_assert_str_eq(code(k), "idempotency_key_reused");
    json_decref(k);
    json_decref(j);
    j = kz_node_household_payouts_json(st, &keys, MUNI, "h1", true);
    cr_assert_eq(json_array_size(json_object_get(j, "payouts")), 1);
    json_decref(j);
}

Test(payouts, program_table_and_gienkin)
{
    json_t *j;
    put_program("seikatsu_saiken",
                "{\"disaster_date\":\"2024-01-01\",\"table\":{\"amounts_yen\":"
                "{\"hankai\":{\"basic\":300000}},\"one_person_household\":"
                "{\"numerator\":1,\"denominator\":2}}}",
                NULL);
    member("a1", "h1", "hankai", "2024-01-05");
    cr_assert_eq(pay("h1", "seikatsu_saiken", "basic", NULL, 1, T0, &j), 201);
    cr_assert_eq(amount(j), 150000, "the program's table and ratio");
    json_decref(j);
    cr_assert_eq(pay("h1", "gienkin", "donation", NULL, 2, T0, &j), 422);
    cr_assert_str_eq(code(j), "not_configured");
    json_decref(j);
    put_program("gienkin", "{\"per_household_yen\":120000}", NULL);
    cr_assert_eq(pay("h1", "gienkin", "donation", NULL, 3, T0, &j), 201);
    cr_assert_eq(amount(j), 120000);
    json_decref(j);
    put_program("gienkin", "{\"closed\":true}", NULL);
    member("b1", "h2", "zenkai", "2024-01-05");
    cr_assert_eq(pay("h2", "gienkin", "donation", NULL, 4, T0, &j), 422);
    cr_assert_str_eq(code(j), "program_closed");
    json_decref(j);
}

static int export(json_t **out)
{
    Kizuna__TransferHeader th = KIZUNA__TRANSFER_HEADER__INIT;
    th.requester_code = "1234567890";
    th.requester_name = "キズナシ";
    th.has_bank_code = th.has_branch_code = th.has_account_type = 1;
    th.bank_code = 1;
    th.branch_code = 1;
    th.account_type = 1;
    th.account_number = "7654321";
    th.transfer_mmdd = "0315";
    Kizuna__ExportPayouts ep = KIZUNA__EXPORT_PAYOUTS__INIT;
    char id[16];
    snprintf(id, sizeof id, "x%llu", (unsigned long long)next_index);
    ep.export_id = id;
    ep.header = &th;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_EXPORT_PAYOUTS;
    cmd.export_payouts = &ep;
    return apply_at(&cmd, T0 + DAY, out);
}

Test(payouts, export_once)
{
    json_t *j;
    put_program("seikatsu_saiken", "{\"disaster_date\":\"2024-01-01\"}", NULL);
    member("a1", "h1", "zenkai", "2024-01-05");
    member("b1", "h2", "zenkai", "2024-01-05");
    member("b2", "h2", "zenkai", "2024-01-05");
    cr_assert_eq(pay("h1", "seikatsu_saiken", "basic", NULL, 1, T0, NULL), 201);
    cr_assert_eq(pay("h2", "seikatsu_saiken", "basic", NULL, 2, T0, NULL), 201);
    cr_assert_eq(export(&j), 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "count")), 2);
    cr_assert_eq(json_integer_value(json_object_get(j, "total_yen")), 1750000);
    const char *b64 = json_string_value(json_object_get(j, "file_base64"));
    size_t bl = strlen(b64);
    unsigned char *file = malloc(bl);
    int fl = EVP_DecodeBlock(file, (const unsigned char *)b64, (int)bl);
    while (fl > 0 && file[fl - 1] == 0)
        fl--;
    size_t count;
    long long total;
    char err[128];
    cr_assert_eq(kz_zengin_check((const char *)file, (size_t)fl, &count,
                                 &total, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(count, 2);
    cr_assert_eq(total, 1750000);
    /* The payee name in half-width katakana. */
    cr_assert_not_null(memmem(file, (size_t)fl, "\xcb\xbb\xb2", 3), "ﾋｻｲ");
    free(file);
    json_decref(j);
    cr_assert_eq(export(&j), 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "count")), 0);
    json_decref(j);
    j = kz_node_household_payouts_json(st, &keys, MUNI, "h2", true);
    json_t *p = json_array_get(json_object_get(j, "payouts"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(p, "status")),
                     "exported");
    cr_assert_not_null(json_object_get(p, "export_id"));
    json_decref(j);
    /* A new payout goes into the next file only. */
    member("c1", "h3", "zenkai", "2024-01-05");
    cr_assert_eq(pay("h3", "seikatsu_saiken", "basic", NULL, 3, T0, NULL), 201);
    cr_assert_eq(export(&j), 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "count")), 1);
    json_decref(j);
}

Test(payouts, request_parser)
{
    static const char *const bad[] = {
        "{}",
        "{\"household_id\":\"h1\",\"program\":\"x\",\"item\":\"basic\","
        "\"account\":{}}",
        "{\"household_id\":\"h1\",\"program\":\"gienkin\",\"item\":\"donation\","
        "\"account\":{\"bank_code\":1,\"branch_code\":1,\"account_type\":3,"
        "\"account_number\":\"1\",\"holder\":\"ア\"}}",
        "{\"household_id\":\"h1\",\"program\":\"gienkin\",\"item\":\"donation\","
        "\"account\":{\"bank_code\":1,\"branch_code\":1,\"account_type\":1,"
        "\"account_number\":\"12345678\",\"holder\":\"ア\"}}",
        "{\"household_id\":\"h1\",\"program\":\"gienkin\",\"item\":\"donation\","
        "\"account\":{\"bank_code\":1,\"branch_code\":1,\"account_type\":1,"
        "\"account_number\":\"1\",\"holder\":\"被災 太郎\"}}",
        "{\"household_id\":\"h1\",\"program\":\"gienkin\",\"item\":\"donation\","
        "\"extra\":1,\"account\":{}}",
        NULL};
    Kizuna__CreatePayout cp;
    Kizuna__BankAccount a;
    char err[160];
    for (const char *const *b = bad; *b; b++) {
        json_t *j = json_loads(*b, 0, NULL);
        cr_assert_not_null(j);
        cr_assert_eq(kz_node_payout_request_from_json(j, &cp, &a, err,
                                                      sizeof err),
                     -1, "accepted: %s", *b);
        json_decref(j);
    }
    json_t *j = json_loads(
        "{\"household_id\":\"h1\",\"program\":\"gienkin\",\"item\":\"donation\","
        "\"account\":{\"bank_code\":9999,\"branch_code\":999,\"account_type\":"
        "4,\"account_number\":\"1234567\",\"holder\":\"ひさい たろう\"}}",
        0, NULL);
    cr_assert_eq(kz_node_payout_request_from_json(j, &cp, &a, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(cp.account->bank_code, 9999);
    json_decref(j);
}
