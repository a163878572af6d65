/*
 * test_dedup.c — the duplicate score of node/dedup.c on pairs of records:
 * the same person written differently scores at least KZ_NODE_DEDUP_MIN,
 * and namesakes, other birth years or the other sex do not.
 */
#include "dedup.h"

#include <criterion/criterion.h>
#include <string.h>

static Kizuna__Victim person(const char *name, const char *kana,
                             const char *dob, const char *sex,
                             const char *address)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = "x";
    v.name = (char *)name;
    v.name_kana = (char *)kana;
    v.dob = (char *)dob;
    v.sex = (char *)sex;
    v.address = (char *)address;
    return v;
}

static double score(const Kizuna__Victim *a, const Kizuna__Victim *b,
                    const char *must_have)
{
    json_t *reasons = json_array();
    double s = kz_node_dedup_score(a, b, reasons);
    if (must_have != NULL) {
        bool found = false;
        size_t i;
        json_t *r;
        json_array_foreach(reasons, i, r)
        {
            found |= strcmp(json_string_value(r), must_have) == 0;
        }
        cr_assert(found, "reason %s missing", must_have);
    }
    json_decref(reasons);
    double back = 0;
    json_t *r2 = json_array();
    back = kz_node_dedup_score(b, a, r2);
    json_decref(r2);
    cr_assert_float_eq(s, back, 1e-9, "the score is symmetric");
    return s;
}

Test(dedup, same_person_written_differently)
{
    Kizuna__Victim a = person("佐藤 健一", "さとう けんいち", "1951-04-09",
                              "male", "気仙沼市本町1-2-3");
    /* Katakana, given name first, no kanji. */
    Kizuna__Victim b = person("ケンイチ サトウ", "ケンイチ サトウ",
                              "1951-04-09", "male", NULL);
    cr_assert_geq(score(&a, &b, "kana"), KZ_NODE_DEDUP_MIN);
    /* One kana wrong on a phone line, same birth date and address. */
    Kizuna__Victim c = person("サトウ ケンイツ", "さとう けんいつ", "1951-04-09",
                              "male", "気仙沼市本町1-2-3");
    cr_assert_geq(score(&a, &c, "kana_one_edit"), KZ_NODE_DEDUP_MIN);
    /* Full-width digits in the address: the same once folded. */
    Kizuna__Victim d = person("佐藤 健一", NULL, NULL, "male",
                              "気仙沼市本町１－２－３");
    cr_assert_geq(score(&a, &d, "address"), KZ_NODE_DEDUP_MIN);
    /* The day of birth typed wrong: name, month, sex, address. */
    Kizuna__Victim e = person("佐藤 健一", "さとう けんいち", "1951-04-19",
                              "male", "気仙沼市本町1-2-3");
    cr_assert_geq(score(&a, &e, "dob_month"), KZ_NODE_DEDUP_MIN);
}

Test(dedup, others_are_not)
{
    Kizuna__Victim a = person("佐藤 健一", "さとう けんいち", "1951-04-09",
                              "male", "気仙沼市本町1-2-3");
    /* A namesake: another year, the other sex. */
    Kizuna__Victim b = person("佐藤 健一", "さとう けんいち", "1990-02-01",
                              "female", NULL);
    cr_assert_lt(score(&a, &b, NULL), KZ_NODE_DEDUP_MIN);
    /* Another name, same birth date and sex. */
    Kizuna__Victim c = person("高橋 美咲", "たかはし みさき", "1951-04-09",
                              "male", "気仙沼市本町1-2-3");
    cr_assert_eq(score(&a, &c, NULL), 0);
    /* The same name only: not enough. */
    Kizuna__Victim d = person("佐藤 健一", "さとう けんいち", NULL, NULL,
                              NULL);
    cr_assert_lt(score(&a, &d, NULL), KZ_NODE_DEDUP_MIN);
    /* Two kana apart. */
    Kizuna__Victim e = person("佐藤 健二", "さとう けんじろ", "1951-04-09",
                              "male", NULL);
    cr_assert_eq(score(&a, &e, NULL), 0);
}
