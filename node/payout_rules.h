/*
 * payout_rules.h — how much a household is owed for one payout item, or why
 * nothing (DOMAIN.md §6). Pure: no storage, no network, no clock, no global
 * mutable state; safe from any thread. The caller (the payout store) decides
 * whether the item was already paid; this module only applies the rules.
 *
 * 被災者生活再建支援金 (program "seikatsu_saiken", law as amended 2020-12-04),
 * the default table, in yen:
 *
 *   damage                          basic      build    repair     rent
 *   zenkai, kaitai, choki_hinan   1,000,000  2,000,000 1,000,000  500,000
 *   daikibo_hankai                  500,000  2,000,000 1,000,000  500,000
 *   chukibo_hankai                     —     1,000,000   500,000  250,000
 *   hankai, jun_hankai, ichibu_sonkai, none: not eligible
 *
 * Decisions (the amounts, the 3/4 rule, the deadlines, the rent rule and the
 * gienkin rule are also in the JSON of kz_payout_default_table_json()):
 *   - One-person households get 3/4 of each amount, floor(amount * 3 / 4) in
 *     integer yen. The table's amounts are multiples of 4, so the floor never
 *     drops a yen today; it is written down so an operator's table that is
 *     not cannot round up.
 *   - Rent then build: "build" pays the household's build amount less
 *     `paid_rent_yen` (the rent support already paid to it), so rent plus
 *     build never exceed the build amount. The law says the same of renting
 *     and then repairing (合計で200（又は100）万円), so "repair" is reduced
 *     the same way; DOMAIN.md names only build. When what was paid already
 *     covers the amount the request is refused (KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE,
 *     "already covered"), never answered with 0 yen.
 *   - Deadlines: basic within 13 months, build/repair/rent within 37 months.
 *     Allowed while apply_date <= disaster_date + N months, where adding N
 *     months keeps the day of month and clamps it to the last day of the
 *     target month (2024-01-31 + 13 months = 2025-02-28; 2024-01-01 + 13
 *     months = 2025-02-01). That is 民法 §140/§143 (the first day is not
 *     counted; a period of months ends the day before the corresponding day
 *     of the last month, or at that month's end when it has no such day),
 *     counted from the disaster date. An apply date before the disaster date
 *     is refused as KZ_PAYOUT_NOT_CONFIGURED (the disaster date must be wrong).
 *   - 義援金 (program "gienkin", item "donation"): a flat amount per household
 *     set by the operator (`gienkin_per_household_yen`; 0 or less = not
 *     configured), for every damage level except "none"; no 3/4 rule and no
 *     deadline (the allocation committee sets both outside this module), and
 *     the dates are not read.
 *
 * Refusals, in the order they are checked: unknown program or item
 * (KZ_PAYOUT_UNKNOWN_ITEM); household_size 0 (KZ_PAYOUT_NO_HOUSEHOLD); gienkin
 * amount not set (KZ_PAYOUT_NOT_CONFIGURED); damage code unknown, not in the
 * table, or without an amount for the item (KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE);
 * a date that is not a valid YYYY-MM-DD, an apply date before the disaster,
 * or a negative paid_rent_yen (KZ_PAYOUT_NOT_CONFIGURED: the request cannot
 * be decided from the inputs given); the deadline (KZ_PAYOUT_DEADLINE_PASSED);
 * rent already paid covering the amount (KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE).
 */
#ifndef KZ_NODE_PAYOUT_RULES_H
#define KZ_NODE_PAYOUT_RULES_H

#include <stddef.h>

enum kz_payout_refusal {
    KZ_PAYOUT_OK = 0,
    KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE,
    KZ_PAYOUT_DEADLINE_PASSED,
    KZ_PAYOUT_UNKNOWN_ITEM,
    KZ_PAYOUT_NO_HOUSEHOLD,
    KZ_PAYOUT_NOT_CONFIGURED
};

#define KZ_PAYOUT_ITEMS 4   /* basic, build, repair, rent */
#define KZ_PAYOUT_DAMAGES 9 /* every damage code of API.md */

/* The 被災者生活再建支援金 rules as data (a program's table, PUT
 * /v1/programs/seikatsu_saiken): yen by damage code (API.md order: zenkai,
 * kaitai, choki_hinan, daikibo_hankai, chukibo_hankai, hankai, jun_hankai,
 * ichibu_sonkai, none) and item (basic, build, repair, rent), -1 where none;
 * the deadlines in months per item; the one-person ratio. The rent rule is
 * fixed: build and repair are reduced by rent already paid. */
struct kz_payout_table {
    long long yen[KZ_PAYOUT_DAMAGES][KZ_PAYOUT_ITEMS];
    int months[KZ_PAYOUT_ITEMS];
    int one_num, one_den;
};

/* The built-in table (the law as amended 2020-12-04). */
void kz_payout_table_default(struct kz_payout_table *t);

/* Parses a table from JSON text (an object with any of "amounts_yen":
 * {damage: {item: yen or null}}, "deadline_months": {item: 1..120},
 * "one_person_household": {numerator, denominator}), over the default: what
 * is not given keeps its default. The informative keys of the default
 * table's JSON are accepted and ignored. 0, or -1 with a message in err
 * (unknown damage code, item or key; a value out of range). */
int kz_payout_table_parse(const char *json, struct kz_payout_table *t,
                          char *err, size_t errlen);

/* The table as compact JSON (malloc'd; NULL when out of memory), in the
 * shape kz_payout_table_parse reads. */
char *kz_payout_table_json(const struct kz_payout_table *t);

/* One request. Strings are NUL-terminated and borrowed for the call only;
 * any may be NULL (read as unknown / not given). */
struct kz_payout_input {
    const char *program;       /* "seikatsu_saiken" or "gienkin" */
    const char *item;          /* basic, build, repair, rent (seikatsu_saiken);
                                  "donation" (gienkin) */
    const char *damage;        /* the household's damage code (API.md) */
    unsigned household_size;   /* registered members, >= 1 */
    const char *disaster_date; /* YYYY-MM-DD of the disaster */
    const char *apply_date;    /* YYYY-MM-DD of the request (Japan time) */
    long long paid_rent_yen;   /* build or repair after rent: rent support
                                  already paid to this household, else 0 */
    long long gienkin_per_household_yen; /* operator-set; <= 0: not set */
    const struct kz_payout_table *table; /* seikatsu_saiken; NULL: default */
};

/* The deadlines, in months from the disaster date. */
#define KZ_PAYOUT_BASIC_MONTHS 13
#define KZ_PAYOUT_ADDITIONAL_MONTHS 37

/*
 * Computes the amount owed in integer yen. Returns KZ_PAYOUT_OK with
 * *amount_yen > 0 and *reason (if reason is not NULL) set to NULL, or a
 * refusal with *amount_yen = 0 and *reason set to a static English sentence
 * for the 422 body (never freed). Deterministic: the same input gives the
 * same answer on every node, whatever the clock says.
 */
int kz_payout_compute(const struct kz_payout_input *in, long long *amount_yen,
                      const char **reason);

/*
 * The default rule table as JSON (for GET /v1/programs): both programs, every
 * damage level x item amount (null where the table has none), the 3/4 rule
 * with its rounding, the deadlines in months and how they are counted, the
 * rent-then-build rule, and the gienkin rule. Static text, NUL-terminated,
 * never freed; built from the same table kz_payout_compute() reads, on the
 * first call (thread-safe). NULL only if that first build failed (it cannot
 * with the built-in table; checked by the unit test).
 */
const char *kz_payout_default_table_json(void);

#endif /* KZ_NODE_PAYOUT_RULES_H */
