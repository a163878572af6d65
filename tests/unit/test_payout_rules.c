/*
 * test_payout_rules.c — payout rules (node/payout_rules): every damage level
 * x item x household size against the amounts of DOMAIN.md §6 (the tables
 * below are copied from the document, not from the code), the deadlines on
 * their last day and the day after (month ends and leap days included), rent
 * then build or repair, gienkin, and every refusal. The JSON rule table is
 * read back with jansson and compared with the same tables.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "payout_rules.h"

#define NO (-1LL) /* DOMAIN.md's "—" */

static const char *const item_codes[4] = {"basic", "build", "repair", "rent"};

/* DOMAIN.md §6, households of two or more. */
static const struct {
    const char *damage;
    long long yen[4];
} two_plus[] = {
    {"zenkai", {1000000, 2000000, 1000000, 500000}},
    {"kaitai", {1000000, 2000000, 1000000, 500000}},
    {"choki_hinan", {1000000, 2000000, 1000000, 500000}},
    {"daikibo_hankai", {500000, 2000000, 1000000, 500000}},
    {"chukibo_hankai", {NO, 1000000, 500000, 250000}},
};

/* The same, 3/4 for one-person households, worked out by hand. */
static const struct {
    const char *damage;
    long long yen[4];
} one_person[] = {
    {"zenkai", {750000, 1500000, 750000, 375000}},
    {"kaitai", {750000, 1500000, 750000, 375000}},
    {"choki_hinan", {750000, 1500000, 750000, 375000}},
    {"daikibo_hankai", {375000, 1500000, 750000, 375000}},
    {"chukibo_hankai", {NO, 750000, 375000, 187500}},
};

static const char *const not_eligible[] = {"hankai", "jun_hankai",
                                           "ichibu_sonkai", "none"};

static struct kz_payout_input req(const char *item, const char *damage,
                                  unsigned size)
{
    return (struct kz_payout_input){
        .program = "seikatsu_saiken",
        .item = item,
        .damage = damage,
        .household_size = size,
        .disaster_date = "2024-01-01",
        .apply_date = "2024-03-15",
    };
}

/* Runs one request; checks that refusals zero the amount and give a reason
 * and that success gives no reason. */
static int run(const struct kz_payout_input *in, long long *yen)
{
    const char *reason = "untouched";
    *yen = -42;
    int rc = kz_payout_compute(in, yen, &reason);
    if (rc == KZ_PAYOUT_OK) {
        cr_expect_null(reason);
        cr_expect_gt(*yen, 0);
    } else {
        cr_expect_eq(*yen, 0);
        cr_expect_not_null(reason);
        cr_expect_neq(strcmp(reason, "untouched"), 0);
        cr_expect_gt(strlen(reason), 0);
    }
    return rc;
}

static void expect_amount(const char *damage, int item, unsigned size,
                          long long want)
{
    struct kz_payout_input in = req(item_codes[item], damage, size);
    long long yen;
    int rc = run(&in, &yen);
    if (want == NO) {
        cr_expect_eq(rc, KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE, "%s %s size %u: %d",
                     damage, item_codes[item], size, rc);
    } else {
        cr_expect_eq(rc, KZ_PAYOUT_OK, "%s %s size %u: %d", damage,
                     item_codes[item], size, rc);
        cr_expect_eq(yen, want, "%s %s size %u: %lld, want %lld", damage,
                     item_codes[item], size, yen, want);
    }
}

Test(payout_rules, amounts_households_of_two_or_more)
{
    static const unsigned sizes[] = {2, 3, 5, 12};
    for (size_t l = 0; l < sizeof two_plus / sizeof two_plus[0]; l++)
        for (int i = 0; i < 4; i++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                expect_amount(two_plus[l].damage, i, sizes[s],
                              two_plus[l].yen[i]);
}

Test(payout_rules, amounts_one_person_households_are_three_quarters)
{
    for (size_t l = 0; l < sizeof one_person / sizeof one_person[0]; l++)
        for (int i = 0; i < 4; i++)
            expect_amount(one_person[l].damage, i, 1, one_person[l].yen[i]);
}

Test(payout_rules, lower_damage_levels_are_not_eligible)
{
    for (size_t d = 0; d < sizeof not_eligible / sizeof not_eligible[0]; d++)
        for (int i = 0; i < 4; i++)
            for (unsigned size = 1; size <= 2; size++)
                expect_amount(not_eligible[d], i, size, NO);
    long long yen;
    struct kz_payout_input in = req("basic", "zenkai_typo", 2);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    in.damage = NULL;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    in.damage = "ZENKAI"; /* codes are exact */
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
}

/* One deadline case: the request for `item` on `apply` after a disaster on
 * `disaster` is allowed or refused as the deadline. */
struct deadline_case {
    const char *disaster, *apply, *item;
    bool allowed;
};

static const struct deadline_case deadlines[] = {
    /* Same day of month, 13 / 37 months on. */
    {"2024-01-01", "2025-02-01", "basic", true},
    {"2024-01-01", "2025-02-02", "basic", false},
    {"2024-01-01", "2027-02-01", "build", true},
    {"2024-01-01", "2027-02-02", "build", false},
    {"2024-01-01", "2027-02-01", "repair", true},
    {"2024-01-01", "2027-02-02", "repair", false},
    {"2024-01-01", "2027-02-01", "rent", true},
    {"2024-01-01", "2027-02-02", "rent", false},
    /* Basic after 13 months but within 37 is still too late. */
    {"2024-01-01", "2026-01-01", "basic", false},
    {"2024-01-01", "2026-01-01", "build", true},
    /* Month end: 2024-01-31 + 13 months has no 31st -> 2025-02-28. */
    {"2024-01-31", "2025-02-28", "basic", true},
    {"2024-01-31", "2025-03-01", "basic", false},
    /* + 37 months -> 2027-02-28. */
    {"2024-01-31", "2027-02-28", "build", true},
    {"2024-01-31", "2027-03-01", "build", false},
    /* Into a leap February: 2023-01-31 + 13 months -> 2024-02-29. */
    {"2023-01-31", "2024-02-29", "basic", true},
    {"2023-01-31", "2024-03-01", "basic", false},
    /* From a leap day: 2024-02-29 + 13 months -> 2025-03-29. */
    {"2024-02-29", "2025-03-29", "basic", true},
    {"2024-02-29", "2025-03-30", "basic", false},
    {"2024-02-29", "2027-03-29", "rent", true},
    {"2024-02-29", "2027-03-30", "rent", false},
    /* 30-day month target: 2024-03-31 + 13 months -> 2025-04-30. */
    {"2024-03-31", "2025-04-30", "basic", true},
    {"2024-03-31", "2025-05-01", "basic", false},
    /* Across the year end: 2024-12-31 + 13 months -> 2026-01-31. */
    {"2024-12-31", "2026-01-31", "basic", true},
    {"2024-12-31", "2026-02-01", "basic", false},
    /* + 37 months -> 2028-01-31. */
    {"2024-12-31", "2028-01-31", "build", true},
    {"2024-12-31", "2028-02-01", "build", false},
    /* The disaster day itself. */
    {"2024-01-01", "2024-01-01", "basic", true},
};

Test(payout_rules, deadlines_last_day_and_day_after)
{
    for (size_t k = 0; k < sizeof deadlines / sizeof deadlines[0]; k++) {
        const struct deadline_case *c = &deadlines[k];
        struct kz_payout_input in = req(c->item, "zenkai", 2);
        in.disaster_date = c->disaster;
        in.apply_date = c->apply;
        long long yen;
        int rc = run(&in, &yen);
        cr_expect_eq(rc, c->allowed ? KZ_PAYOUT_OK : KZ_PAYOUT_DEADLINE_PASSED,
                     "%s %s on %s: %d", c->disaster, c->item, c->apply, rc);
    }
}

Test(payout_rules, bad_dates_are_not_configured)
{
    static const char *const bad[] = {
        "",           "2024-1-01",   "2024-01-1",  "24-01-01",
        "2024/01/01", "2024-13-01",  "2024-00-10", "2024-01-00",
        "2024-01-32", "2023-02-29",  "2024-02-30", "2024-04-31",
        "0000-01-01", "2024-01-01x", "2024-01-01 ", " 2024-01-01",
        "２０２４-01-01", "2024-0a-01",
    };
    long long yen;
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct kz_payout_input in = req("basic", "zenkai", 2);
        in.disaster_date = bad[k];
        cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED, "disaster '%s'",
                     bad[k]);
        in = req("basic", "zenkai", 2);
        in.apply_date = bad[k];
        cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED, "apply '%s'",
                     bad[k]);
    }
    struct kz_payout_input in = req("basic", "zenkai", 2);
    in.disaster_date = NULL;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED);
    in = req("basic", "zenkai", 2);
    in.apply_date = NULL;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED);
    /* Applying the day before the disaster. */
    in = req("basic", "zenkai", 2);
    in.disaster_date = "2024-01-01";
    in.apply_date = "2023-12-31";
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED);
    /* A valid leap day is accepted. */
    in.apply_date = "2024-02-29";
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_OK);
}

Test(payout_rules, rent_then_build_pays_build_less_rent)
{
    long long rent, build;
    struct kz_payout_input in = req("rent", "zenkai", 3);
    cr_assert_eq(run(&in, &rent), KZ_PAYOUT_OK);
    cr_expect_eq(rent, 500000);

    in = req("build", "zenkai", 3);
    in.paid_rent_yen = rent;
    cr_assert_eq(run(&in, &build), KZ_PAYOUT_OK);
    cr_expect_eq(build, 1500000);
    cr_expect_eq(rent + build, 2000000, "rent + build is the build amount");

    /* One person: 375,000 rent, then 1,500,000 - 375,000. */
    in = req("build", "daikibo_hankai", 1);
    in.paid_rent_yen = 375000;
    cr_assert_eq(run(&in, &build), KZ_PAYOUT_OK);
    cr_expect_eq(build, 1125000);

    /* chukibo_hankai: 250,000 rent, then 1,000,000 - 250,000. */
    in = req("build", "chukibo_hankai", 2);
    in.paid_rent_yen = 250000;
    cr_assert_eq(run(&in, &build), KZ_PAYOUT_OK);
    cr_expect_eq(build, 750000);

    /* Rent then repair is capped at the repair amount the same way. */
    in = req("repair", "zenkai", 2);
    in.paid_rent_yen = 500000;
    cr_assert_eq(run(&in, &build), KZ_PAYOUT_OK);
    cr_expect_eq(build, 500000);

    /* The rent amount itself and basic support ignore paid rent. */
    in = req("rent", "zenkai", 2);
    in.paid_rent_yen = 500000;
    cr_expect_eq(run(&in, &rent), KZ_PAYOUT_OK);
    cr_expect_eq(rent, 500000);
    in = req("basic", "zenkai", 2);
    in.paid_rent_yen = 500000;
    cr_expect_eq(run(&in, &rent), KZ_PAYOUT_OK);
    cr_expect_eq(rent, 1000000);
}

Test(payout_rules, rent_paid_covering_the_amount_is_refused)
{
    long long yen;
    struct kz_payout_input in = req("build", "zenkai", 2);
    in.paid_rent_yen = 2000000;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    in.paid_rent_yen = 1999999;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_OK);
    cr_expect_eq(yen, 1);
    in.paid_rent_yen = -1;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED);
}

Test(payout_rules, unknown_program_and_item)
{
    long long yen;
    struct kz_payout_input in = req("basic", "zenkai", 2);
    static const char *const programs[] = {"", "seikatsu", "SEIKATSU_SAIKEN",
                                           "loan"};
    for (size_t k = 0; k < sizeof programs / sizeof programs[0]; k++) {
        in.program = programs[k];
        cr_expect_eq(run(&in, &yen), KZ_PAYOUT_UNKNOWN_ITEM, "'%s'",
                     programs[k]);
    }
    in.program = NULL;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_UNKNOWN_ITEM);

    static const char *const seikatsu_bad[] = {"donation", "", "Basic",
                                               "buy", "basic "};
    for (size_t k = 0; k < sizeof seikatsu_bad / sizeof seikatsu_bad[0];
         k++) {
        in = req(seikatsu_bad[k], "zenkai", 2);
        cr_expect_eq(run(&in, &yen), KZ_PAYOUT_UNKNOWN_ITEM, "'%s'",
                     seikatsu_bad[k]);
    }
    in = req(NULL, "zenkai", 2);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_UNKNOWN_ITEM);

    in = req("basic", "zenkai", 2);
    in.program = "gienkin";
    in.gienkin_per_household_yen = 100000;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_UNKNOWN_ITEM);

    /* A NULL request and a NULL reason pointer are survived. */
    cr_expect_eq(kz_payout_compute(NULL, &yen, NULL), KZ_PAYOUT_NOT_CONFIGURED);
    in = req("basic", "zenkai", 2);
    cr_expect_eq(kz_payout_compute(&in, &yen, NULL), KZ_PAYOUT_OK);
    cr_expect_eq(yen, 1000000);
}

Test(payout_rules, empty_household)
{
    long long yen;
    struct kz_payout_input in = req("basic", "zenkai", 0);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NO_HOUSEHOLD);
    in.program = "gienkin";
    in.item = "donation";
    in.gienkin_per_household_yen = 50000;
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NO_HOUSEHOLD);
}

static struct kz_payout_input gienkin(const char *damage, unsigned size,
                                      long long amount)
{
    return (struct kz_payout_input){
        .program = "gienkin",
        .item = "donation",
        .damage = damage,
        .household_size = size,
        .gienkin_per_household_yen = amount,
    };
}

Test(payout_rules, gienkin_not_configured)
{
    long long yen;
    struct kz_payout_input in = gienkin("zenkai", 2, 0);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED);
    in = gienkin("zenkai", 2, -100);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_CONFIGURED);
}

Test(payout_rules, gienkin_flat_per_household_any_damage_but_none)
{
    static const char *const paid[] = {
        "zenkai",         "kaitai", "choki_hinan", "daikibo_hankai",
        "chukibo_hankai", "hankai", "jun_hankai",  "ichibu_sonkai",
    };
    long long yen;
    for (size_t k = 0; k < sizeof paid / sizeof paid[0]; k++)
        for (unsigned size = 1; size <= 3; size++) {
            /* No dates given: gienkin does not read them. */
            struct kz_payout_input in = gienkin(paid[k], size, 123457);
            cr_expect_eq(run(&in, &yen), KZ_PAYOUT_OK, "%s", paid[k]);
            cr_expect_eq(yen, 123457, "%s size %u: no 3/4 rule", paid[k],
                         size);
        }
    struct kz_payout_input in = gienkin("none", 2, 123457);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    in = gienkin("bogus", 2, 123457);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    in = gienkin(NULL, 2, 123457);
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    /* No deadline: ten years on is still paid. */
    in = gienkin("zenkai", 2, 10000);
    in.disaster_date = "2014-01-01";
    in.apply_date = "2024-01-01";
    cr_expect_eq(run(&in, &yen), KZ_PAYOUT_OK);
}

Test(payout_rules, default_table_json_matches_the_document)
{
    const char *text = kz_payout_default_table_json();
    cr_assert_not_null(text);
    cr_expect_eq(kz_payout_default_table_json(), text, "one static text");
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    cr_assert_not_null(root, "%s at %d: %s", jerr.text, jerr.position, text);

    json_t *programs = json_object_get(root, "programs");
    cr_assert(json_is_array(programs));
    cr_assert_eq(json_array_size(programs), 2);
    json_t *ss = json_array_get(programs, 0);
    cr_expect_str_eq(json_string_value(json_object_get(ss, "id")),
                     "seikatsu_saiken");
    json_t *amounts = json_object_get(ss, "amounts_yen");
    cr_assert(json_is_object(amounts));
    cr_expect_eq(json_object_size(amounts),
                 sizeof two_plus / sizeof two_plus[0]);
    for (size_t l = 0; l < sizeof two_plus / sizeof two_plus[0]; l++) {
        json_t *row = json_object_get(amounts, two_plus[l].damage);
        cr_assert(json_is_object(row), "%s", two_plus[l].damage);
        for (int i = 0; i < 4; i++) {
            json_t *v = json_object_get(row, item_codes[i]);
            if (two_plus[l].yen[i] == NO)
                cr_expect(json_is_null(v), "%s %s", two_plus[l].damage,
                          item_codes[i]);
            else
                cr_expect_eq(json_integer_value(v), two_plus[l].yen[i],
                             "%s %s", two_plus[l].damage, item_codes[i]);
        }
    }
    json_t *ne = json_object_get(ss, "not_eligible");
    cr_assert_eq(json_array_size(ne), 4);
    for (size_t d = 0; d < 4; d++)
        cr_expect_str_eq(json_string_value(json_array_get(ne, d)),
                         not_eligible[d]);

    json_t *one = json_object_get(ss, "one_person_household");
    cr_expect_eq(json_integer_value(json_object_get(one, "numerator")), 3);
    cr_expect_eq(json_integer_value(json_object_get(one, "denominator")), 4);
    cr_expect_str_eq(json_string_value(json_object_get(one, "rounding")),
                     "floor");

    json_t *months = json_object_get(ss, "deadline_months");
    cr_expect_eq(json_integer_value(json_object_get(months, "basic")), 13);
    cr_expect_eq(json_integer_value(json_object_get(months, "build")), 37);
    cr_expect_eq(json_integer_value(json_object_get(months, "repair")), 37);
    cr_expect_eq(json_integer_value(json_object_get(months, "rent")), 37);

    json_t *less = json_object_get(ss, "reduced_by_rent_paid");
    cr_assert_eq(json_array_size(less), 2);
    cr_expect_str_eq(json_string_value(json_array_get(less, 0)), "build");
    cr_expect_str_eq(json_string_value(json_array_get(less, 1)), "repair");

    json_t *g = json_array_get(programs, 1);
    cr_expect_str_eq(json_string_value(json_object_get(g, "id")), "gienkin");
    cr_expect_str_eq(
        json_string_value(json_array_get(json_object_get(g, "items"), 0)),
        "donation");
    json_decref(root);
}

/* The table is data: the default prints and parses back to itself, a
 * program's table changes the amounts, and bad tables are refused. */
Test(payout_rules, table_as_data)
{
    struct kz_payout_table def, t;
    char err[160];
    kz_payout_table_default(&def);
    char *s = kz_payout_table_json(&def);
    cr_assert_not_null(s);
    cr_assert_eq(kz_payout_table_parse(s, &t, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(&def, &t, sizeof t), 0);
    free(s);
    /* The default table's JSON of GET /v1/programs reads back too. */
    cr_assert_eq(kz_payout_table_parse(
                     "{\"amounts_yen\":{\"hankai\":{\"basic\":300000}},"
                     "\"deadline_months\":{\"basic\":6}}",
                     &t, err, sizeof err),
                 0, "%s", err);
    struct kz_payout_input in = req("basic", "hankai", 2);
    in.table = &t;
    long long yen;
    cr_assert_eq(run(&in, &yen), KZ_PAYOUT_OK);
    cr_assert_eq(yen, 300000);
    in.table = NULL;
    cr_assert_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    /* A table that says 0 yen (or 1 yen, 3/4 of which floors to 0) pays
     * nothing: a 0-yen payout could never be exported to the bank. */
    cr_assert_eq(kz_payout_table_parse(
                     "{\"amounts_yen\":{\"hankai\":{\"basic\":0},"
                     "\"zenkai\":{\"basic\":1}}}",
                     &t, err, sizeof err),
                 0, "%s", err);
    in.table = &t;
    cr_assert_eq(run(&in, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    struct kz_payout_input one = req("basic", "zenkai", 1);
    one.table = &t;
    cr_assert_eq(run(&one, &yen), KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
    one.household_size = 2;
    cr_assert_eq(run(&one, &yen), KZ_PAYOUT_OK);
    cr_assert_eq(yen, 1);
    static const char *const bad[] = {
        "[]", "{\"amounts_yen\":{\"big\":{}}}",
        "{\"amounts_yen\":{\"zenkai\":{\"gold\":1}}}",
        "{\"amounts_yen\":{\"zenkai\":{\"basic\":-1}}}",
        "{\"deadline_months\":{\"basic\":0}}",
        "{\"one_person_household\":{\"numerator\":5,\"denominator\":4}}",
        "{\"surprise\":1}", NULL};
    for (const char *const *b = bad; *b; b++)
        cr_assert_eq(kz_payout_table_parse(*b, &t, err, sizeof err), -1,
                     "accepted %s", *b);
}
