/*
 * payout_rules.c — the payout rules of payout_rules.h.
 *
 * The amounts live in one table (`levels`, with the deadlines in `items`);
 * kz_payout_compute() reads it and kz_payout_default_table_json() prints it,
 * so the JSON an operator sees is the table that is applied. Happy path: look
 * up program, item, damage row; check the dates; scale for one person;
 * subtract rent already paid. Every other path is a refusal with a static
 * reason; nothing here allocates except the JSON text, once.
 */
#include "payout_rules.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* ---- the table --------------------------------------------------------- */

enum {
    ITEM_BASIC,
    ITEM_BUILD,
    ITEM_REPAIR,
    ITEM_RENT,
    ITEM_COUNT = KZ_PAYOUT_ITEMS
};

/* seikatsu_saiken items, in table-column order, with their deadlines. */
static const struct {
    const char *code;
    int months;
    bool less_rent; /* reduced by the rent support already paid */
} items[ITEM_COUNT] = {
    [ITEM_BASIC] = {"basic", KZ_PAYOUT_BASIC_MONTHS, false},
    [ITEM_BUILD] = {"build", KZ_PAYOUT_ADDITIONAL_MONTHS, true},
    [ITEM_REPAIR] = {"repair", KZ_PAYOUT_ADDITIONAL_MONTHS, true},
    [ITEM_RENT] = {"rent", KZ_PAYOUT_ADDITIONAL_MONTHS, false},
};

#define NONE (-1LL) /* the table's "—": no support of this kind */

/* 被災者生活再建支援金 by damage level (law as amended 2020-12-04). Levels of
 * API.md not listed here are not eligible. */
static const struct {
    const char *damage;
    long long yen[ITEM_COUNT];
} levels[] = {
    {"zenkai", {1000000, 2000000, 1000000, 500000}},
    {"kaitai", {1000000, 2000000, 1000000, 500000}},
    {"choki_hinan", {1000000, 2000000, 1000000, 500000}},
    {"daikibo_hankai", {500000, 2000000, 1000000, 500000}},
    {"chukibo_hankai", {NONE, 1000000, 500000, 250000}},
};
#define LEVEL_COUNT (sizeof levels / sizeof levels[0])

/* Every damage code of API.md, so an unknown code reads differently from a
 * known but ineligible one. */
static const char *const damage_codes[] = {
    "zenkai",         "kaitai", "choki_hinan", "daikibo_hankai",
    "chukibo_hankai", "hankai", "jun_hankai",  "ichibu_sonkai",
    "none",
};
#define DAMAGE_CODE_COUNT (sizeof damage_codes / sizeof damage_codes[0])
_Static_assert(DAMAGE_CODE_COUNT == KZ_PAYOUT_DAMAGES,
               "the table has a row per damage code");

/* One-person households: amount * 3 / 4, floored. */
#define ONE_PERSON_NUM 3
#define ONE_PERSON_DEN 4

static const char gienkin_item[] = "donation";

/* ---- dates ------------------------------------------------------------- */

struct ymd {
    int y, m, d;
};

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* Strict YYYY-MM-DD (exactly 10 characters, a real calendar day). */
static bool parse_date(const char *s, struct ymd *out)
{
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int v[3] = {0, 0, 0};
    static const struct {
        int part, from, to;
    } span[3] = {{0, 0, 4}, {1, 5, 7}, {2, 8, 10}};
    for (int k = 0; k < 3; k++)
        for (int i = span[k].from; i < span[k].to; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            v[span[k].part] = v[span[k].part] * 10 + (s[i] - '0');
        }
    if (v[0] < 1 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
        v[2] > month_days(v[0], v[1]))
        return false;
    *out = (struct ymd){v[0], v[1], v[2]};
    return true;
}

/* d + n months: same day of month, clamped to the target month's end. */
static struct ymd add_months(struct ymd d, int n)
{
    int m0 = d.m - 1 + n;
    struct ymd r = {d.y + m0 / 12, m0 % 12 + 1, d.d};
    int last = month_days(r.y, r.m);
    if (r.d > last)
        r.d = last;
    return r;
}

static long date_key(struct ymd d)
{
    return (long)d.y * 10000 + d.m * 100 + d.d;
}

/* ---- compute ----------------------------------------------------------- */

static int refuse(int code, const char *why, long long *amount_yen,
                  const char **reason)
{
    *amount_yen = 0;
    if (reason != NULL)
        *reason = why;
    return code;
}

static bool eq(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

static bool known_damage(const char *damage)
{
    for (size_t i = 0; i < DAMAGE_CODE_COUNT; i++)
        if (eq(damage, damage_codes[i]))
            return true;
    return false;
}

static int gienkin(const struct kz_payout_input *in, long long *amount_yen,
                   const char **reason)
{
    if (!eq(in->item, gienkin_item))
        return refuse(KZ_PAYOUT_UNKNOWN_ITEM,
                      "unknown item for gienkin (the only item is donation)",
                      amount_yen, reason);
    if (in->household_size == 0)
        return refuse(KZ_PAYOUT_NO_HOUSEHOLD,
                      "the household has no registered members", amount_yen,
                      reason);
    if (in->gienkin_per_household_yen <= 0)
        return refuse(KZ_PAYOUT_NOT_CONFIGURED,
                      "the gienkin amount per household is not configured",
                      amount_yen, reason);
    if (!known_damage(in->damage))
        return refuse(KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE,
                      "unknown damage code", amount_yen, reason);
    if (eq(in->damage, "none"))
        return refuse(KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE,
                      "gienkin is paid only to households with recorded "
                      "damage (damage is none)",
                      amount_yen, reason);
    if (reason != NULL)
        *reason = NULL;
    *amount_yen = in->gienkin_per_household_yen;
    return KZ_PAYOUT_OK;
}

static int seikatsu_saiken(const struct kz_payout_input *in,
                           long long *amount_yen, const char **reason)
{
    int item = -1;
    for (int i = 0; i < ITEM_COUNT; i++)
        if (eq(in->item, items[i].code))
            item = i;
    if (item < 0)
        return refuse(KZ_PAYOUT_UNKNOWN_ITEM,
                      "unknown item for seikatsu_saiken (items: basic, build, "
                      "repair, rent)",
                      amount_yen, reason);
    if (in->household_size == 0)
        return refuse(KZ_PAYOUT_NO_HOUSEHOLD,
                      "the household has no registered members", amount_yen,
                      reason);

    size_t level = DAMAGE_CODE_COUNT;
    for (size_t i = 0; i < DAMAGE_CODE_COUNT; i++)
        if (eq(in->damage, damage_codes[i]))
            level = i;
    if (level == DAMAGE_CODE_COUNT)
        return refuse(KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE, "unknown damage code",
                      amount_yen, reason);
    struct kz_payout_table def;
    const struct kz_payout_table *t = in->table;
    if (t == NULL) {
        kz_payout_table_default(&def);
        t = &def;
    }
    long long yen = t->yen[level][item];
    if (yen < 0) {
        bool any = false;
        for (int i = 0; i < ITEM_COUNT; i++)
            any = any || t->yen[level][i] >= 0;
        return refuse(KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE,
                      any ? "this damage level gets no support of this item "
                            "(e.g. chukibo_hankai has no basic support)"
                          : "this damage level is not eligible for "
                            "seikatsu_saiken (by the default table: zenkai, "
                            "kaitai, choki_hinan, daikibo_hankai or "
                            "chukibo_hankai)",
                      amount_yen, reason);
    }

    struct ymd disaster, apply;
    if (!parse_date(in->disaster_date, &disaster))
        return refuse(KZ_PAYOUT_NOT_CONFIGURED,
                      "the disaster date is not a valid YYYY-MM-DD",
                      amount_yen, reason);
    if (!parse_date(in->apply_date, &apply))
        return refuse(KZ_PAYOUT_NOT_CONFIGURED,
                      "the apply date is not a valid YYYY-MM-DD", amount_yen,
                      reason);
    if (date_key(apply) < date_key(disaster))
        return refuse(KZ_PAYOUT_NOT_CONFIGURED,
                      "the apply date is before the disaster date",
                      amount_yen, reason);
    if (in->paid_rent_yen < 0)
        return refuse(KZ_PAYOUT_NOT_CONFIGURED, "paid rent is negative",
                      amount_yen, reason);
    if (date_key(apply) > date_key(add_months(disaster, t->months[item])))
        return refuse(KZ_PAYOUT_DEADLINE_PASSED,
                      item == ITEM_BASIC
                          ? "basic support must be applied for within its "
                            "deadline (13 months of the disaster by default)"
                          : "additional support must be applied for within "
                            "its deadline (37 months by default)",
                      amount_yen, reason);

    /* yen >= 0, so integer division is the floor. */
    if (in->household_size == 1)
        yen = yen * t->one_num / t->one_den;
    if (items[item].less_rent) {
        if (in->paid_rent_yen >= yen)
            return refuse(KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE,
                          "already covered: the rent support paid is at "
                          "least this item's amount",
                          amount_yen, reason);
        yen -= in->paid_rent_yen;
    }
    /* An operator's table may say 0 (or 1, floored to 0 by the 3/4 rule):
     * a bank transfer of 0 yen cannot be exported, so it is not a payout. */
    if (yen < 1)
        return refuse(KZ_PAYOUT_NOT_ELIGIBLE_DAMAGE,
                      "the program's table gives 0 yen for this household",
                      amount_yen, reason);
    if (reason != NULL)
        *reason = NULL;
    *amount_yen = yen;
    return KZ_PAYOUT_OK;
}

int kz_payout_compute(const struct kz_payout_input *in, long long *amount_yen,
                      const char **reason)
{
    if (in == NULL)
        return refuse(KZ_PAYOUT_NOT_CONFIGURED, "no request", amount_yen,
                      reason);
    if (eq(in->program, "seikatsu_saiken"))
        return seikatsu_saiken(in, amount_yen, reason);
    if (eq(in->program, "gienkin"))
        return gienkin(in, amount_yen, reason);
    return refuse(KZ_PAYOUT_UNKNOWN_ITEM,
                  "unknown program (programs: seikatsu_saiken, gienkin)",
                  amount_yen, reason);
}

/* ---- the table as JSON ------------------------------------------------- */

static char table_json[4096];
static const char *table_json_ok;
static pthread_once_t table_json_once = PTHREAD_ONCE_INIT;

/* Appends to table_json at *at; false once it would not fit. */
static bool put(size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool put(size_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(table_json + *at, sizeof table_json - *at, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof table_json - *at)
        return false;
    *at += (size_t)n;
    return true;
}

static void build_table_json(void)
{
    size_t at = 0;
    bool ok = put(&at, "{\"programs\":[{\"id\":\"seikatsu_saiken\","
                       "\"name\":\"被災者生活再建支援金\","
                       "\"amounts_as_of\":\"2020-12-04\",\"items\":[");
    for (int i = 0; i < ITEM_COUNT && ok; i++)
        ok = put(&at, "%s\"%s\"", i ? "," : "", items[i].code);
    ok = ok && put(&at, "],\"amounts_yen\":{");
    for (size_t l = 0; l < LEVEL_COUNT && ok; l++) {
        ok = put(&at, "%s\"%s\":{", l ? "," : "", levels[l].damage);
        for (int i = 0; i < ITEM_COUNT && ok; i++) {
            if (levels[l].yen[i] == NONE)
                ok = put(&at, "%s\"%s\":null", i ? "," : "", items[i].code);
            else
                ok = put(&at, "%s\"%s\":%lld", i ? "," : "", items[i].code,
                         levels[l].yen[i]);
        }
        ok = ok && put(&at, "}");
    }
    ok = ok && put(&at, "},\"not_eligible\":[");
    bool first = true;
    for (size_t d = 0; d < DAMAGE_CODE_COUNT && ok; d++) {
        bool listed = false;
        for (size_t l = 0; l < LEVEL_COUNT; l++)
            listed = listed || strcmp(damage_codes[d], levels[l].damage) == 0;
        if (!listed) {
            ok = put(&at, "%s\"%s\"", first ? "" : ",", damage_codes[d]);
            first = false;
        }
    }
    ok = ok && put(&at, "],\"one_person_household\":{\"numerator\":%d,"
                        "\"denominator\":%d,\"rounding\":\"floor\"},"
                        "\"deadline_months\":{",
                   ONE_PERSON_NUM, ONE_PERSON_DEN);
    for (int i = 0; i < ITEM_COUNT && ok; i++)
        ok = put(&at, "%s\"%s\":%d", i ? "," : "", items[i].code,
                 items[i].months);
    ok = ok && put(&at, "},\"deadline_rule\":\"apply_date <= disaster_date + "
                        "N months, same day of month, clamped to the last "
                        "day of that month\",\"reduced_by_rent_paid\":[");
    first = true;
    for (int i = 0; i < ITEM_COUNT && ok; i++)
        if (items[i].less_rent) {
            ok = put(&at, "%s\"%s\"", first ? "" : ",", items[i].code);
            first = false;
        }
    ok = ok && put(&at, "]},{\"id\":\"gienkin\",\"name\":\"義援金\","
                        "\"items\":[\"%s\"],\"amount\":\"flat per household, "
                        "set by the operator\",\"not_eligible\":[\"none\"],"
                        "\"one_person_household\":null,"
                        "\"deadline_months\":null}]}",
                   gienkin_item);
    table_json_ok = ok ? table_json : NULL;
}

const char *kz_payout_default_table_json(void)
{
    pthread_once(&table_json_once, build_table_json);
    return table_json_ok;
}

/* ---- tables as data ---------------------------------------------------- */

void kz_payout_table_default(struct kz_payout_table *t)
{
    for (size_t d = 0; d < DAMAGE_CODE_COUNT; d++) {
        for (int i = 0; i < ITEM_COUNT; i++)
            t->yen[d][i] = NONE;
        for (size_t l = 0; l < LEVEL_COUNT; l++)
            if (strcmp(damage_codes[d], levels[l].damage) == 0)
                for (int i = 0; i < ITEM_COUNT; i++)
                    t->yen[d][i] = levels[l].yen[i];
    }
    for (int i = 0; i < ITEM_COUNT; i++)
        t->months[i] = items[i].months;
    t->one_num = ONE_PERSON_NUM;
    t->one_den = ONE_PERSON_DEN;
}

static int table_err(char *err, size_t errlen, const char *fmt,
                     const char *what)
{
    if (errlen > 0)
        snprintf(err, errlen, fmt, what);
    return -1;
}

static int item_index(const char *code)
{
    for (int i = 0; i < ITEM_COUNT; i++)
        if (strcmp(code, items[i].code) == 0)
            return i;
    return -1;
}

static int parse_amounts(json_t *a, struct kz_payout_table *t, char *err,
                         size_t errlen)
{
    const char *dk, *ik;
    json_t *row, *v;
    if (!json_is_object(a))
        return table_err(err, errlen, "%s: an object by damage level",
                         "amounts_yen");
    json_object_foreach(a, dk, row) {
        size_t d = DAMAGE_CODE_COUNT;
        for (size_t k = 0; k < DAMAGE_CODE_COUNT; k++)
            if (strcmp(dk, damage_codes[k]) == 0)
                d = k;
        if (d == DAMAGE_CODE_COUNT)
            return table_err(err, errlen,
                             "amounts_yen: unknown damage level %.40s", dk);
        if (!json_is_object(row))
            return table_err(err, errlen,
                             "amounts_yen.%.40s: an object by item", dk);
        json_object_foreach(row, ik, v) {
            int i = item_index(ik);
            if (i < 0)
                return table_err(err, errlen,
                                 "amounts_yen: unknown item %.40s", ik);
            if (json_is_null(v)) {
                t->yen[d][i] = NONE;
            } else if (json_is_integer(v) && json_integer_value(v) >= 0 &&
                       json_integer_value(v) <= 100000000) {
                t->yen[d][i] = json_integer_value(v);
            } else {
                return table_err(err, errlen,
                                 "amounts_yen: %.40s must be null or an "
                                 "integer number of yen, 0 to 100000000",
                                 ik);
            }
        }
    }
    return 0;
}

int kz_payout_table_parse(const char *text, struct kz_payout_table *t,
                          char *err, size_t errlen)
{
    kz_payout_table_default(t);
    json_t *o = json_loads(text ? text : "", JSON_REJECT_DUPLICATES, NULL);
    int rv = 0;
    if (!json_is_object(o)) {
        json_decref(o);
        return table_err(err, errlen, "%s: a JSON object", "table");
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (strcmp(k, "amounts_yen") == 0) {
            rv = parse_amounts(v, t, err, errlen);
        } else if (strcmp(k, "deadline_months") == 0) {
            const char *ik;
            json_t *m;
            if (!json_is_object(v))
                rv = table_err(err, errlen, "%s: an object by item", k);
            json_object_foreach(v, ik, m) {
                int i = item_index(ik);
                if (rv == 0 && i < 0)
                    rv = table_err(err, errlen,
                                   "deadline_months: unknown item %.40s", ik);
                else if (rv == 0 &&
                         (!json_is_integer(m) || json_integer_value(m) < 1 ||
                          json_integer_value(m) > 120))
                    rv = table_err(err, errlen,
                                   "deadline_months.%.40s: 1 to 120", ik);
                else if (rv == 0)
                    t->months[i] = (int)json_integer_value(m);
            }
        } else if (strcmp(k, "one_person_household") == 0) {
            json_t *n = json_object_get(v, "numerator");
            json_t *d = json_object_get(v, "denominator");
            if (!json_is_object(v) || !json_is_integer(n) ||
                !json_is_integer(d) || json_integer_value(d) < 1 ||
                json_integer_value(d) > 100 || json_integer_value(n) < 1 ||
                json_integer_value(n) > json_integer_value(d))
                rv = table_err(err, errlen,
                               "%s: {numerator, denominator}, 1 <= "
                               "numerator <= denominator <= 100",
                               k);
            else {
                t->one_num = (int)json_integer_value(n);
                t->one_den = (int)json_integer_value(d);
            }
        } else {
            /* What the default table shows besides the rules (names,
             * descriptions) is read back without meaning. */
            static const char *const informative[] = {
                "id", "name", "amounts_as_of", "items", "not_eligible",
                "deadline_rule", "reduced_by_rent_paid", NULL};
            bool known = false;
            for (const char *const *p = informative; *p; p++)
                known = known || strcmp(*p, k) == 0;
            if (!known)
                rv = table_err(err, errlen, "table: unknown field %.40s", k);
        }
        if (rv != 0)
            break;
    }
    json_decref(o);
    return rv;
}

char *kz_payout_table_json(const struct kz_payout_table *t)
{
    json_t *amounts = json_object(), *months = json_object();
    json_t *not_eligible = json_array();
    for (size_t d = 0; d < DAMAGE_CODE_COUNT; d++) {
        json_t *row = json_object();
        bool any = false;
        for (int i = 0; i < ITEM_COUNT; i++) {
            any = any || t->yen[d][i] >= 0;
            json_object_set_new(row, items[i].code,
                                t->yen[d][i] >= 0
                                    ? json_integer(t->yen[d][i])
                                    : json_null());
        }
        if (any)
            json_object_set_new(amounts, damage_codes[d], row);
        else {
            json_decref(row);
            json_array_append_new(not_eligible,
                                  json_string(damage_codes[d]));
        }
    }
    for (int i = 0; i < ITEM_COUNT; i++)
        json_object_set_new(months, items[i].code,
                            json_integer(t->months[i]));
    json_t *o = json_pack("{s:o,s:o,s:o,s:{s:i,s:i,s:s}}", "amounts_yen",
                          amounts, "not_eligible", not_eligible,
                          "deadline_months", months, "one_person_household",
                          "numerator", t->one_num, "denominator", t->one_den,
                          "rounding", "floor");
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}
