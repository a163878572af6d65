/*
 * test_records.c — JSON <-> protobuf decoders and encoders of the register
 * (node/records).
 *
 * The decoders take outside input, so most cases here are refusals: each
 * asserts the call fails, that *out is NULL, and that the message names the
 * offending field. The accepting cases check the decoded message field by
 * field, and the encoder is checked by a round trip through JSON.
 */
#include "records.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "bad test JSON %s: %s", text, e.text);
    return j;
}

static void free_set(char **set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(set[i]);
    free(set);
}

/* Decodes a create body that must be accepted. */
static Kizuna__Victim *create_ok(const char *text)
{
    json_t *j = J(text);
    Kizuna__Victim *v = (Kizuna__Victim *)1;
    char err[KZ_NODE_ERR_MAX] = "";
    int rv = kz_node_victim_from_json(j, false, &v, NULL, NULL, err, sizeof err);
    json_decref(j);
    cr_assert_eq(rv, 0, "create %s refused: %s", text, err);
    cr_assert_not_null(v);
    return v;
}

/* A create body that must be refused with a message containing `field`. */
static void create_bad(const char *text, const char *field)
{
    json_t *j = J(text);
    Kizuna__Victim *v = (Kizuna__Victim *)1;
    char err[KZ_NODE_ERR_MAX] = "";
    int rv = kz_node_victim_from_json(j, false, &v, NULL, NULL, err, sizeof err);
    json_decref(j);
    cr_assert_eq(rv, -1, "create %s accepted", text);
    cr_assert_null(v, "create %s: *out not NULL on error", text);
    cr_assert_not_null(strstr(err, field), "create %s: message \"%s\" does not "
                                           "name %s", text, err, field);
}

static void patch_bad(const char *text, const char *field)
{
    json_t *j = J(text);
    Kizuna__Victim *v = (Kizuna__Victim *)1;
    char **set = (char **)1;
    size_t n = 99;
    char err[KZ_NODE_ERR_MAX] = "";
    int rv = kz_node_victim_from_json(j, true, &v, &set, &n, err, sizeof err);
    json_decref(j);
    cr_assert_eq(rv, -1, "patch %s accepted", text);
    cr_assert_null(v);
    cr_assert_null(set, "patch %s: set not NULL on error", text);
    cr_assert_eq(n, 0);
    cr_assert_not_null(strstr(err, field), "patch %s: message \"%s\" does not "
                                           "name %s", text, err, field);
}

/* ------------------------------------------------------------- create */

Test(records, create_minimal_has_only_name)
{
    Kizuna__Victim *v = create_ok("{\"name\":\"山田 太郎\"}");
    cr_assert_str_eq(v->name, "山田 太郎");
    cr_assert_null(v->id);
    cr_assert_null(v->name_kana);
    cr_assert_null(v->dob);
    cr_assert_null(v->sex);
    cr_assert_null(v->shelter_id);
    cr_assert_null(v->status);
    cr_assert_null(v->consent);
    cr_assert_eq(v->n_needs, 0);
    cr_assert_not(v->has_version);
    kizuna__victim__free_unpacked(v, NULL);
}

static const char full_body[] =
    "{\"name\":\"山田 太郎\",\"name_kana\":\"やまだ たろう\","
    "\"dob\":\"1950-04-01\",\"sex\":\"male\",\"address\":\"千代田区1-1\","
    "\"household_id\":\"H-001\",\"damage\":\"hankai\","
    "\"needs\":[\"elderly\",\"medication\"],\"shelter_id\":\"S1\","
    "\"status\":\"safe\",\"contact\":\"090-0000-0000\","
    "\"consent\":{\"disclose_safety\":true,\"recipients\":[\"family\","
    "\"red_cross\"]},\"damage_certified_on\":\"2024-01-05\"}";

Test(records, create_full_decodes_every_field)
{
    Kizuna__Victim *v = create_ok(full_body);
    cr_assert_str_eq(v->name, "山田 太郎");
    cr_assert_str_eq(v->name_kana, "やまだ たろう");
    cr_assert_str_eq(v->dob, "1950-04-01");
    cr_assert_str_eq(v->sex, "male");
    cr_assert_str_eq(v->address, "千代田区1-1");
    cr_assert_str_eq(v->household_id, "H-001");
    cr_assert_str_eq(v->damage, "hankai");
    cr_assert_eq(v->n_needs, 2);
    cr_assert_str_eq(v->needs[0], "elderly");
    cr_assert_str_eq(v->needs[1], "medication");
    cr_assert_str_eq(v->shelter_id, "S1");
    cr_assert_str_eq(v->status, "safe");
    cr_assert_str_eq(v->contact, "090-0000-0000");
    cr_assert_not_null(v->consent);
    cr_assert(v->consent->has_disclose_safety);
    cr_assert(v->consent->disclose_safety);
    cr_assert_eq(v->consent->n_recipients, 2);
    cr_assert_str_eq(v->consent->recipients[1], "red_cross");
    cr_assert_str_eq(v->damage_certified_on, "2024-01-05");
    kizuna__victim__free_unpacked(v, NULL);
}

Test(records, create_decoded_message_packs_and_unpacks)
{
    /* The decoder's message is built by hand; packing it proves every
     * has_ flag and count agrees with its pointers. */
    Kizuna__Victim *v = create_ok(full_body);
    size_t sz = kizuna__victim__get_packed_size(v);
    uint8_t *buf = malloc(sz);
    cr_assert_eq(kizuna__victim__pack(v, buf), sz);
    Kizuna__Victim *u = kizuna__victim__unpack(NULL, sz, buf);
    cr_assert_not_null(u);
    cr_assert_str_eq(u->name_kana, "やまだ たろう");
    cr_assert_eq(u->n_needs, 2);
    cr_assert_eq(u->consent->n_recipients, 2);
    kizuna__victim__free_unpacked(u, NULL);
    free(buf);
    kizuna__victim__free_unpacked(v, NULL);
}

Test(records, create_requires_name)
{
    create_bad("{}", "name");
    create_bad("{\"dob\":\"1950-04-01\"}", "name");
    create_bad("{\"name\":null}", "name");
    create_bad("{\"name\":\"\"}", "name");
    create_bad("{\"name\":42}", "name");
    create_bad("{\"name\":[\"a\"]}", "name");
}

Test(records, create_refuses_unknown_field_by_name)
{
    create_bad("{\"name\":\"a\",\"nickname\":\"b\"}", "nickname");
    create_bad("{\"name\":\"a\",\"Name\":\"b\"}", "Name");
    create_bad("{\"name\":\"a\",\"notes\":[]}", "notes");
    create_bad("{\"name\":\"a\",\"shelter_history\":[]}", "shelter_history");
}

Test(records, create_refuses_server_assigned_fields)
{
    create_bad("{\"name\":\"a\",\"id\":\"x\"}", "id");
    create_bad("{\"name\":\"a\",\"version\":3}", "version");
    json_t *j = J("{\"name\":\"a\",\"version\":3}");
    Kizuna__Victim *v;
    char err[KZ_NODE_ERR_MAX];
    cr_assert_eq(kz_node_victim_from_json(j, false, &v, NULL, NULL, err,
                                          sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "assigned by the server"), "%s", err);
    json_decref(j);
}

Test(records, refuses_non_object_body)
{
    const char *bodies[] = {"[]", "[{\"name\":\"a\"}]", "\"name\"", "3",
                            "null", "true"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        json_t *j = json_loads(bodies[i], JSON_DECODE_ANY, NULL);
        cr_assert_not_null(j);
        Kizuna__Victim *v = (Kizuna__Victim *)1;
        char **set = (char **)1;
        size_t n = 9;
        char err[KZ_NODE_ERR_MAX] = "";
        cr_assert_eq(kz_node_victim_from_json(j, false, &v, NULL, NULL, err,
                                              sizeof err),
                     -1, "%s accepted", bodies[i]);
        cr_assert_null(v);
        cr_assert_not_null(strstr(err, "object"), "%s", err);
        cr_assert_eq(kz_node_victim_from_json(j, true, &v, &set, &n, err,
                                              sizeof err),
                     -1);
        cr_assert_null(v);
        cr_assert_null(set);
        Kizuna__Note *note = (Kizuna__Note *)1;
        cr_assert_eq(kz_node_note_from_json(j, &note, err, sizeof err), -1);
        cr_assert_null(note);
        Kizuna__Shelter *s = (Kizuna__Shelter *)1;
        cr_assert_eq(kz_node_shelter_from_json(j, &s, err, sizeof err), -1);
        cr_assert_null(s);
        json_decref(j);
    }
}

/* ------------------------------------------------------------- dates */

Test(records, valid_date_calendar)
{
    cr_assert(kz_node_valid_date("2024-02-29"), "leap day 2024");
    cr_assert(kz_node_valid_date("2000-02-29"), "leap day 2000");
    cr_assert(kz_node_valid_date("1950-12-31"));
    cr_assert(kz_node_valid_date("2023-04-30"));
    cr_assert(kz_node_valid_date("1850-01-01"));
    cr_assert_not(kz_node_valid_date("2023-02-29"), "2023 is not leap");
    cr_assert_not(kz_node_valid_date("1900-02-29"), "1900 is not leap");
    cr_assert_not(kz_node_valid_date("2023-02-30"));
    cr_assert_not(kz_node_valid_date("2023-04-31"));
    cr_assert_not(kz_node_valid_date("1999-13-01"));
    cr_assert_not(kz_node_valid_date("1999-00-10"));
    cr_assert_not(kz_node_valid_date("1999-01-00"));
    cr_assert_not(kz_node_valid_date("1999-01-32"));
    cr_assert_not(kz_node_valid_date("abc"));
    cr_assert_not(kz_node_valid_date(""));
    cr_assert_not(kz_node_valid_date("2024-2-29"));
    cr_assert_not(kz_node_valid_date("2024-02-9 "));
    cr_assert_not(kz_node_valid_date("2024/02/09"));
    cr_assert_not(kz_node_valid_date("+024-02-09"));
    cr_assert_not(kz_node_valid_date(" 2024-02-09"));
    cr_assert_not(kz_node_valid_date("2024-02-090"));
}

Test(records, create_checks_dates)
{
    Kizuna__Victim *v =
        create_ok("{\"name\":\"a\",\"dob\":\"2024-02-29\","
                  "\"damage_certified_on\":\"2024-03-01\"}");
    cr_assert_str_eq(v->dob, "2024-02-29");
    kizuna__victim__free_unpacked(v, NULL);
    create_bad("{\"name\":\"a\",\"dob\":\"2023-02-30\"}", "dob");
    create_bad("{\"name\":\"a\",\"dob\":\"1999-13-01\"}", "dob");
    create_bad("{\"name\":\"a\",\"dob\":\"abc\"}", "dob");
    create_bad("{\"name\":\"a\",\"dob\":19500401}", "dob");
    create_bad("{\"name\":\"a\",\"dob\":\"1950-04-01T00:00:00Z\"}", "dob");
    create_bad("{\"name\":\"a\",\"damage_certified_on\":\"2023-02-29\"}",
               "damage_certified_on");
}

/* ------------------------------------------------------------- codes */

Test(records, create_checks_codes)
{
    for (const char *const *c = kz_node_sex_codes; *c; c++) {
        char body[128];
        snprintf(body, sizeof body, "{\"name\":\"a\",\"sex\":\"%s\"}", *c);
        Kizuna__Victim *v = create_ok(body);
        cr_assert_str_eq(v->sex, *c);
        kizuna__victim__free_unpacked(v, NULL);
    }
    for (const char *const *c = kz_node_damage_codes; *c; c++) {
        char body[128];
        snprintf(body, sizeof body, "{\"name\":\"a\",\"damage\":\"%s\"}", *c);
        Kizuna__Victim *v = create_ok(body);
        kizuna__victim__free_unpacked(v, NULL);
    }
    for (const char *const *c = kz_node_status_codes; *c; c++) {
        char body[128];
        snprintf(body, sizeof body, "{\"name\":\"a\",\"status\":\"%s\"}", *c);
        Kizuna__Victim *v = create_ok(body);
        kizuna__victim__free_unpacked(v, NULL);
    }
    create_bad("{\"name\":\"a\",\"sex\":\"f\"}", "sex");
    create_bad("{\"name\":\"a\",\"sex\":\"Female\"}", "sex");
    create_bad("{\"name\":\"a\",\"sex\":\"\"}", "sex");
    create_bad("{\"name\":\"a\",\"status\":\"alive\"}", "status");
    create_bad("{\"name\":\"a\",\"status\":true}", "status");
    create_bad("{\"name\":\"a\",\"damage\":\"total\"}", "damage");
    create_bad("{\"name\":\"a\",\"damage\":\"zenkai \"}", "damage");
}

Test(records, code_error_lists_the_codes)
{
    json_t *j = J("{\"name\":\"a\",\"status\":\"alive\"}");
    Kizuna__Victim *v;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_victim_from_json(j, false, &v, NULL, NULL, err,
                                          sizeof err),
                 -1);
    for (const char *const *c = kz_node_status_codes; *c; c++)
        cr_assert_not_null(strstr(err, *c), "%s missing from \"%s\"", *c, err);
    json_decref(j);
}

Test(records, create_checks_needs)
{
    Kizuna__Victim *v = create_ok(
        "{\"name\":\"a\",\"needs\":[\"infant\",\"elderly\",\"disabled\","
        "\"pregnant\",\"chronic_illness\",\"medication\"]}");
    cr_assert_eq(v->n_needs, 6);
    cr_assert_str_eq(v->needs[4], "chronic_illness");
    kizuna__victim__free_unpacked(v, NULL);

    v = create_ok("{\"name\":\"a\",\"needs\":[]}");
    cr_assert_eq(v->n_needs, 0);
    kizuna__victim__free_unpacked(v, NULL);

    create_bad("{\"name\":\"a\",\"needs\":[\"infant\",\"infant\"]}", "needs");
    create_bad("{\"name\":\"a\",\"needs\":[\"infant\",\"wheelchair\"]}",
               "needs");
    create_bad("{\"name\":\"a\",\"needs\":\"infant\"}", "needs");
    create_bad("{\"name\":\"a\",\"needs\":[1]}", "needs");
    create_bad("{\"name\":\"a\",\"needs\":[null]}", "needs");
    create_bad("{\"name\":\"a\",\"needs\":[\"infant\",\"elderly\",\"disabled\","
               "\"pregnant\",\"chronic_illness\",\"medication\",\"infant\"]}",
               "needs");

    json_t *j = J("{\"name\":\"a\",\"needs\":[\"elderly\",\"elderly\"]}");
    char err[KZ_NODE_ERR_MAX];
    cr_assert_eq(kz_node_victim_from_json(j, false, &v, NULL, NULL, err,
                                          sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "duplicate"), "%s", err);
    json_decref(j);
}

Test(records, create_checks_refs)
{
    Kizuna__Victim *v = create_ok(
        "{\"name\":\"a\",\"household_id\":\"H_1.a:b-C\",\"shelter_id\":"
        "\"1234567890123456789012345678901234567890123456789012345678901234\"}");
    cr_assert_eq(strlen(v->shelter_id), 64);
    kizuna__victim__free_unpacked(v, NULL);
    create_bad("{\"name\":\"a\",\"shelter_id\":\"\"}", "shelter_id");
    create_bad("{\"name\":\"a\",\"shelter_id\":\"a/b\"}", "shelter_id");
    create_bad("{\"name\":\"a\",\"shelter_id\":\"避難所\"}", "shelter_id");
    create_bad("{\"name\":\"a\",\"shelter_id\":\"a b\"}", "shelter_id");
    create_bad(
        "{\"name\":\"a\",\"household_id\":"
        "\"12345678901234567890123456789012345678901234567890123456789012345\"}",
        "household_id");
    cr_assert(kz_node_valid_ref("a"));
    cr_assert_not(kz_node_valid_ref(""));
    cr_assert_not(kz_node_valid_ref("a\\b"));
}

/* --------------------------------------------------------- free text */

static char *repeat(const char *unit, size_t times)
{
    size_t ul = strlen(unit);
    char *s = malloc(ul * times + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * ul, unit, ul);
    s[ul * times] = '\0';
    return s;
}

static json_t *obj_with(const char *key, const char *value)
{
    json_t *j = json_pack("{s:s}", "name", "a");
    cr_assert_not_null(j);
    cr_assert_eq(json_object_set_new(j, key, json_string(value)), 0);
    return j;
}

static int decode_create(json_t *j, char *err, size_t errlen)
{
    Kizuna__Victim *v = (Kizuna__Victim *)1;
    int rv = kz_node_victim_from_json(j, false, &v, NULL, NULL, err, errlen);
    if (rv == 0)
        kizuna__victim__free_unpacked(v, NULL);
    else
        cr_assert_null(v);
    return rv;
}

Test(records, name_size_limit_is_256_bytes)
{
    char err[KZ_NODE_ERR_MAX];
    /* 85 kanji = 255 bytes, plus one ASCII = 256: accepted. */
    char *kanji = repeat("山", 85);
    char *at = malloc(strlen(kanji) + 2);
    sprintf(at, "%sa", kanji);
    json_t *j = json_pack("{s:s}", "name", at);
    cr_assert_eq(decode_create(j, err, sizeof err), 0, "256 bytes: %s", err);
    json_decref(j);
    /* 86 kanji = 258 bytes: refused. */
    free(kanji);
    kanji = repeat("山", 86);
    j = json_pack("{s:s}", "name", kanji);
    cr_assert_eq(decode_create(j, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "name"), "%s", err);
    json_decref(j);
    free(kanji);
    free(at);

    char *ascii = repeat("a", 257);
    j = json_pack("{s:s}", "name", ascii);
    cr_assert_eq(decode_create(j, err, sizeof err), -1);
    json_decref(j);
    j = json_pack("{s:s}", "name", ascii + 1);
    cr_assert_eq(decode_create(j, err, sizeof err), 0);
    json_decref(j);
    free(ascii);

    /* Other limits: address 512, contact 256. */
    char *addr = repeat("x", 513);
    j = obj_with("address", addr);
    cr_assert_eq(decode_create(j, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "address"), "%s", err);
    json_decref(j);
    j = obj_with("address", addr + 1);
    cr_assert_eq(decode_create(j, err, sizeof err), 0);
    json_decref(j);
    j = obj_with("contact", addr + 256);
    cr_assert_eq(decode_create(j, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "contact"), "%s", err);
    json_decref(j);
    free(addr);
}

Test(records, refuses_c0_controls_and_del_in_one_line_fields)
{
    const char *fields[] = {"name", "name_kana", "address", "contact"};
    const char *bad[] = {"a\x1b[31mred", "a\nb", "a\tb", "a\rb", "a\x7f",
                         "\x01"};
    char err[KZ_NODE_ERR_MAX];
    for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            json_t *j = obj_with(fields[f], bad[i]);
            cr_assert_eq(decode_create(j, err, sizeof err), -1,
                         "%s with control byte %zu accepted", fields[f], i);
            cr_assert_not_null(strstr(err, fields[f]), "%s", err);
            json_decref(j);
        }
    /* A NUL inside the JSON string is refused, not truncated. */
    json_t *j = json_object();
    json_object_set_new(j, "name", json_stringn("ab\0cd", 5));
    cr_assert_eq(decode_create(j, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "name"), "%s", err);
    json_decref(j);
}

Test(records, refuses_c1_controls)
{
    /* U+009B is CSI and U+0085 NEL: control characters (Unicode Cc), and a
     * terminal that honours C1 controls reads U+009B as the start of an
     * escape sequence, which the one-line fields are meant to keep out of
     * CLI tables. */
    const char *bad[] = {"a\xc2\x9b" "31mred", "a\xc2\x85" "b"};
    char err[KZ_NODE_ERR_MAX];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = obj_with("name", bad[i]);
        int rv = decode_create(j, err, sizeof err);
        json_decref(j);
        cr_assert_eq(rv, -1, "name with C1 control %zu accepted", i);
    }
}

Test(records, consent_validation)
{
    Kizuna__Victim *v =
        create_ok("{\"name\":\"a\",\"consent\":{\"disclose_safety\":false}}");
    cr_assert(v->consent->has_disclose_safety);
    cr_assert_not(v->consent->disclose_safety);
    cr_assert_eq(v->consent->n_recipients, 0);
    kizuna__victim__free_unpacked(v, NULL);

    v = create_ok("{\"name\":\"a\",\"consent\":{}}");
    cr_assert_not_null(v->consent);
    cr_assert_not(v->consent->has_disclose_safety);
    kizuna__victim__free_unpacked(v, NULL);

    create_bad("{\"name\":\"a\",\"consent\":true}", "consent");
    create_bad("{\"name\":\"a\",\"consent\":[]}", "consent");
    create_bad("{\"name\":\"a\",\"consent\":{\"disclose_safety\":\"yes\"}}",
               "consent.disclose_safety");
    create_bad("{\"name\":\"a\",\"consent\":{\"disclose_safety\":1}}",
               "consent.disclose_safety");
    create_bad("{\"name\":\"a\",\"consent\":{\"share\":true}}",
               "consent.share");
    create_bad("{\"name\":\"a\",\"consent\":{\"recipients\":\"family\"}}",
               "consent.recipients");
    create_bad("{\"name\":\"a\",\"consent\":{\"recipients\":[1]}}",
               "consent.recipients");
    create_bad("{\"name\":\"a\",\"consent\":{\"recipients\":[\"a\\u001bb\"]}}",
               "consent.recipients");

    /* 32 recipients are fine, 33 are not. */
    json_t *r = json_array();
    for (int i = 0; i < 32; i++)
        json_array_append_new(r, json_sprintf("org%d", i));
    json_t *j = json_pack("{s:s,s:{s:O}}", "name", "a", "consent",
                          "recipients", r);
    char err[KZ_NODE_ERR_MAX];
    cr_assert_eq(decode_create(j, err, sizeof err), 0, "%s", err);
    json_decref(j);
    json_array_append_new(r, json_string("org32"));
    j = json_pack("{s:s,s:{s:O}}", "name", "a", "consent", "recipients", r);
    cr_assert_eq(decode_create(j, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "consent.recipients"), "%s", err);
    json_decref(j);
    json_decref(r);
}

/* -------------------------------------------------------------- patch */

static bool set_has(char **set, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i], name) == 0)
            return true;
    return false;
}

Test(records, patch_names_fields_present)
{
    json_t *j = J("{\"status\":\"injured\",\"shelter_id\":\"S2\"}");
    Kizuna__Victim *v;
    char **set;
    size_t n;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_victim_from_json(j, true, &v, &set, &n, err,
                                          sizeof err),
                 0, "%s", err);
    json_decref(j);
    cr_assert_eq(n, 2);
    cr_assert(set_has(set, n, "status"));
    cr_assert(set_has(set, n, "shelter_id"));
    cr_assert_str_eq(v->status, "injured");
    cr_assert_str_eq(v->shelter_id, "S2");
    cr_assert_null(v->name, "a patch does not require name");
    free_set(set, n);
    kizuna__victim__free_unpacked(v, NULL);
}

Test(records, patch_null_clears_a_field)
{
    json_t *j = J("{\"shelter_id\":null,\"needs\":null,\"consent\":null,"
                  "\"dob\":null,\"sex\":null}");
    Kizuna__Victim *v;
    char **set;
    size_t n;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_victim_from_json(j, true, &v, &set, &n, err,
                                          sizeof err),
                 0, "%s", err);
    json_decref(j);
    cr_assert_eq(n, 5);
    const char *names[] = {"shelter_id", "needs", "consent", "dob", "sex"};
    for (size_t i = 0; i < 5; i++)
        cr_assert(set_has(set, n, names[i]), "%s not in set", names[i]);
    cr_assert_null(v->shelter_id);
    cr_assert_null(v->dob);
    cr_assert_null(v->sex);
    cr_assert_null(v->consent);
    cr_assert_eq(v->n_needs, 0);
    free_set(set, n);
    kizuna__victim__free_unpacked(v, NULL);
}

Test(records, patch_refusals)
{
    patch_bad("{}", "body");
    patch_bad("{\"id\":\"x\"}", "id");
    patch_bad("{\"version\":4}", "version");
    patch_bad("{\"nickname\":\"x\"}", "nickname");
    patch_bad("{\"name\":\"\"}", "name");
    patch_bad("{\"dob\":\"2023-02-29\"}", "dob");
    patch_bad("{\"status\":\"alive\"}", "status");
    /* One bad field spoils the whole patch, set included. */
    patch_bad("{\"status\":\"safe\",\"sex\":\"f\"}", "sex");
    patch_bad("[]", "body");
}

Test(records, patch_without_set_out_is_refused)
{
    json_t *j = J("{\"status\":\"safe\"}");
    Kizuna__Victim *v = (Kizuna__Victim *)1;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_victim_from_json(j, true, &v, NULL, NULL, err,
                                          sizeof err),
                 -1);
    cr_assert_null(v);
    json_decref(j);
}

/* -------------------------------------------------------- to_json */

Test(records, to_json_round_trips_fields)
{
    json_t *in = J(full_body);
    Kizuna__Victim *v;
    char err[KZ_NODE_ERR_MAX];
    cr_assert_eq(kz_node_victim_from_json(in, false, &v, NULL, NULL, err,
                                          sizeof err),
                 0);
    v->id = strdup("V1");
    v->has_version = 1;
    v->version = 17;
    v->has_created_ms = v->has_updated_ms = 1;
    v->created_ms = 1700000000123;
    v->updated_ms = 0;

    json_t *out = kz_node_victim_to_json(v);
    cr_assert_str_eq(json_string_value(json_object_get(out, "id")), "V1");
    cr_assert_eq(json_integer_value(json_object_get(out, "version")), 17);
    cr_assert_str_eq(
        json_string_value(json_object_get(out, "created_at")),
        "2023-11-14T22:13:20.123Z");
    cr_assert_str_eq(
        json_string_value(json_object_get(out, "updated_at")),
        "1970-01-01T00:00:00.000Z");
    cr_assert(json_is_array(json_object_get(out, "notes")));
    cr_assert_eq(json_array_size(json_object_get(out, "notes")), 0);
    cr_assert_eq(json_array_size(json_object_get(out, "shelter_history")), 0);

    /* Every input field comes back equal. */
    const char *key;
    json_t *val;
    json_object_foreach(in, key, val)
    {
        json_t *o = json_object_get(out, key);
        cr_assert_not_null(o, "%s missing from to_json", key);
        cr_assert(json_equal(val, o), "%s differs", key);
    }

    /* And the output, minus what the server adds, decodes to the same. */
    json_t *again = json_deep_copy(out);
    const char *server[] = {"id", "version", "notes", "shelter_history",
                            "created_at", "updated_at"};
    for (size_t i = 0; i < sizeof server / sizeof server[0]; i++)
        json_object_del(again, server[i]);
    Kizuna__Victim *v2;
    cr_assert_eq(kz_node_victim_from_json(again, false, &v2, NULL, NULL, err,
                                          sizeof err),
                 0, "%s", err);
    json_t *out2 = kz_node_victim_to_json(v2);
    json_object_foreach(in, key, val)
        cr_assert(json_equal(val, json_object_get(out2, key)), "%s", key);

    json_decref(out2);
    kizuna__victim__free_unpacked(v2, NULL);
    json_decref(again);
    json_decref(out);
    json_decref(in);
    kizuna__victim__free_unpacked(v, NULL);
}

Test(records, to_json_omits_absent_fields_and_shows_history)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = "V2";
    v.name = "佐藤";
    Kizuna__Note note = KIZUNA__NOTE__INIT;
    note.status = "safe";
    note.text = "line1\nline2";
    note.has_at_ms = 1;
    note.at_ms = 86400000 + 1;
    Kizuna__Note *notes[] = {&note};
    v.notes = notes;
    v.n_notes = 1;
    Kizuna__ShelterStay s1 = KIZUNA__SHELTER_STAY__INIT, s2 =
                                                           KIZUNA__SHELTER_STAY__INIT;
    s1.shelter_id = "S1";
    s1.has_in_ms = 1;
    s1.in_ms = 1000;
    s1.has_out_ms = 1;
    s1.out_ms = 2000;
    s2.shelter_id = "S2";
    s2.has_in_ms = 1;
    s2.in_ms = 2000;
    Kizuna__ShelterStay *hist[] = {&s1, &s2};
    v.shelter_history = hist;
    v.n_shelter_history = 2;

    json_t *o = kz_node_victim_to_json(&v);
    cr_assert_null(json_object_get(o, "dob"));
    cr_assert_null(json_object_get(o, "sex"));
    cr_assert_null(json_object_get(o, "consent"));
    cr_assert_eq(json_array_size(json_object_get(o, "needs")), 0);
    json_t *n0 = json_array_get(json_object_get(o, "notes"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(n0, "status")), "safe");
    cr_assert_str_eq(json_string_value(json_object_get(n0, "text")),
                     "line1\nline2");
    cr_assert_str_eq(json_string_value(json_object_get(n0, "at")),
                     "1970-01-02T00:00:00.001Z");
    json_t *h = json_object_get(o, "shelter_history");
    cr_assert_eq(json_array_size(h), 2);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(h, 0), "checked_out")),
        "1970-01-01T00:00:02.000Z");
    cr_assert(json_is_null(json_object_get(json_array_get(h, 1), "checked_out")));
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(h, 1), "shelter_id")),
        "S2");
    json_decref(o);
}

Test(records, format_time)
{
    char buf[40];
    kz_node_format_time(0, buf, sizeof buf);
    cr_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    kz_node_format_time(1709164800999LL, buf, sizeof buf);
    cr_assert_str_eq(buf, "2024-02-29T00:00:00.999Z");
}

Test(records, format_time_before_1970_and_out_of_range)
{
    /* Found writing the apply fuzz driver: -1 ms printed "...00:00:00.-01Z", and times
     * past year 9999 printed a truncated or garbled time (or read an unset
     * struct tm when gmtime_r failed). */
    char buf[40];
    kz_node_format_time(-1, buf, sizeof buf);
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    kz_node_format_time(-1500, buf, sizeof buf);
    cr_assert_str_eq(buf, "1969-12-31T23:59:58.500Z");
    kz_node_format_time(253402300799999LL, buf, sizeof buf);
    cr_assert_str_eq(buf, "9999-12-31T23:59:59.999Z");
    kz_node_format_time(253402300800000LL, buf, sizeof buf);
    cr_assert_str_eq(buf, "9999-12-31T23:59:59.999Z");
    kz_node_format_time(INT64_MAX, buf, sizeof buf);
    cr_assert_str_eq(buf, "9999-12-31T23:59:59.999Z");
    kz_node_format_time(INT64_MIN, buf, sizeof buf);
    cr_assert_str_eq(buf, "0000-01-01T00:00:00.000Z");
}

/* ------------------------------------------------------------- notes */

static Kizuna__Note *note_ok(const char *text)
{
    json_t *j = J(text);
    Kizuna__Note *n = NULL;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_note_from_json(j, &n, err, sizeof err), 0,
                 "note %s refused: %s", text, err);
    json_decref(j);
    return n;
}

static void note_bad(const char *text, const char *field)
{
    json_t *j = J(text);
    Kizuna__Note *n = (Kizuna__Note *)1;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_note_from_json(j, &n, err, sizeof err), -1,
                 "note %s accepted", text);
    cr_assert_null(n);
    cr_assert_not_null(strstr(err, field), "note %s: \"%s\" does not name %s",
                       text, err, field);
    json_decref(j);
}

Test(records, note_decoder)
{
    Kizuna__Note *n = note_ok(
        "{\"status\":\"missing\",\"text\":\"seen at\\nthe station\\t(2F)\","
        "\"author\":\"消防団\",\"last_known_location\":\"駅前\"}");
    cr_assert_str_eq(n->status, "missing");
    cr_assert_str_eq(n->text, "seen at\nthe station\t(2F)");
    cr_assert_str_eq(n->author, "消防団");
    cr_assert_str_eq(n->last_known_location, "駅前");
    cr_assert_not(n->has_at_ms, "time comes from the command, not the body");
    kizuna__note__free_unpacked(n, NULL);

    n = note_ok("{\"status\":\"safe\"}");
    cr_assert_null(n->text);
    kizuna__note__free_unpacked(n, NULL);

    note_bad("{}", "status");
    note_bad("{\"text\":\"hello\"}", "status");
    note_bad("{\"status\":null}", "status");
    note_bad("{\"status\":\"fine\"}", "status");
    note_bad("{\"status\":\"safe\",\"at\":\"2024-01-01T00:00:00Z\"}", "at");
    note_bad("{\"status\":\"safe\",\"author\":\"a\\nb\"}", "author");
    note_bad("{\"status\":\"safe\",\"text\":\"a\\u001b[2Jb\"}", "text");
    note_bad("{\"status\":\"safe\",\"last_known_location\":5}",
             "last_known_location");
}

Test(records, note_text_limit)
{
    char *t = repeat("x", 4000);
    json_t *j = json_pack("{s:s,s:s}", "status", "safe", "text", t);
    Kizuna__Note *n;
    char err[KZ_NODE_ERR_MAX];
    cr_assert_eq(kz_node_note_from_json(j, &n, err, sizeof err), 0);
    kizuna__note__free_unpacked(n, NULL);
    json_decref(j);
    free(t);
    t = repeat("x", 4001);
    j = json_pack("{s:s,s:s}", "status", "safe", "text", t);
    cr_assert_eq(kz_node_note_from_json(j, &n, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "text"), "%s", err);
    json_decref(j);
    free(t);
}

/* ----------------------------------------------------------- shelters */

static void shelter_bad(const char *text, const char *field)
{
    json_t *j = J(text);
    Kizuna__Shelter *s = (Kizuna__Shelter *)1;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_shelter_from_json(j, &s, err, sizeof err), -1,
                 "shelter %s accepted", text);
    cr_assert_null(s);
    cr_assert_not_null(strstr(err, field), "shelter %s: \"%s\" does not name "
                                           "%s", text, err, field);
    json_decref(j);
}

Test(records, shelter_decoder)
{
    json_t *j = J("{\"name\":\"第一小学校\",\"address\":\"千代田区2-2\","
                  "\"capacity\":10000000}");
    Kizuna__Shelter *s;
    char err[KZ_NODE_ERR_MAX] = "";
    cr_assert_eq(kz_node_shelter_from_json(j, &s, err, sizeof err), 0, "%s",
                 err);
    json_decref(j);
    cr_assert_str_eq(s->name, "第一小学校");
    cr_assert_str_eq(s->address, "千代田区2-2");
    cr_assert(s->has_capacity);
    cr_assert_eq(s->capacity, 10000000);
    s->id = strdup("S1");
    s->has_version = 1;
    s->version = 9;
    json_t *o = kz_node_shelter_to_json(s);
    cr_assert_str_eq(json_string_value(json_object_get(o, "id")), "S1");
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")),
                     "第一小学校");
    cr_assert_eq(json_integer_value(json_object_get(o, "capacity")), 10000000);
    cr_assert_eq(json_integer_value(json_object_get(o, "version")), 9);
    json_decref(o);
    kizuna__shelter__free_unpacked(s, NULL);

    j = J("{\"name\":\"x\",\"capacity\":0}");
    cr_assert_eq(kz_node_shelter_from_json(j, &s, err, sizeof err), 0);
    cr_assert(s->has_capacity);
    cr_assert_eq(s->capacity, 0);
    kizuna__shelter__free_unpacked(s, NULL);
    json_decref(j);

    j = J("{\"name\":\"x\"}");
    cr_assert_eq(kz_node_shelter_from_json(j, &s, err, sizeof err), 0);
    cr_assert_not(s->has_capacity);
    o = kz_node_shelter_to_json(s);
    cr_assert_null(json_object_get(o, "capacity"));
    json_decref(o);
    kizuna__shelter__free_unpacked(s, NULL);
    json_decref(j);

    shelter_bad("{}", "name");
    shelter_bad("{\"name\":null}", "name");
    shelter_bad("{\"address\":\"x\"}", "name");
    shelter_bad("{\"name\":\"x\",\"capacity\":-1}", "capacity");
    shelter_bad("{\"name\":\"x\",\"capacity\":10000001}", "capacity");
    shelter_bad("{\"name\":\"x\",\"capacity\":1.5}", "capacity");
    shelter_bad("{\"name\":\"x\",\"capacity\":\"10\"}", "capacity");
    shelter_bad("{\"name\":\"x\",\"id\":\"S1\"}", "id");
    shelter_bad("{\"name\":\"x\",\"beds\":3}", "beds");
    shelter_bad("{\"name\":\"a\\u0007b\"}", "name");
}

/* kz_node_victim_json must be json_dumps(kz_node_victim_to_json(v),
 * JSON_COMPACT) byte for byte. */
static void assert_same_json(const Kizuna__Victim *v, const char *what)
{
    json_t *tree = kz_node_victim_to_json(v);
    char *want = json_dumps(tree, JSON_COMPACT);
    json_decref(tree);
    size_t len = 0;
    char *got = kz_node_victim_json(v, &len);
    cr_assert_not_null(want);
    cr_assert_not_null(got);
    cr_assert_eq(len, strlen(got), "%s: length", what);
    cr_assert_str_eq(got, want, "%s", what);
    free(want);
    free(got);
}

#include "sample.h"

Test(records, victim_text_is_jansson_dump_of_sample_records)
{
    kz_cli_sample gen;
    kz_cli_sample_init(&gen, 20261206, 30);
    for (int i = 0; i < 300; i++) {
        json_t *rec;
        Kizuna__Victim *v = NULL;
        char err[KZ_NODE_ERR_MAX] = "";
        cr_assert_eq(kz_cli_sample_victim(&gen, &rec), 0);
        cr_assert_eq(kz_node_victim_from_json(rec, false, &v, NULL, NULL, err,
                                              sizeof err),
                     0, "%s", err);
        json_decref(rec);
        char id[32];
        snprintf(id, sizeof id, "019b%08dabcdef", i);
        v->id = strdup(id);
        v->version = (uint64_t)i * 7919;
        v->created_ms = 1765000000000LL + i;
        v->updated_ms = 1765000000000LL + 2 * i;
        assert_same_json(v, "sample");
        kizuna__victim__free_unpacked(v, NULL);
    }
}

/* Hostile text: every control character, quotes, backslashes, slashes, DEL,
 * non-ASCII, and strings that are not UTF-8 (jansson leaves those out), in
 * every kind of place: members, arrays, notes, stays, consent. */
Test(records, victim_text_is_jansson_dump_of_hostile_records)
{
    char ctl[40];
    for (int i = 1; i < 32; i++)
        ctl[i - 1] = (char)i;
    memcpy(ctl + 31, "\"\\/\x7f", 5);
    static char bad1[] = "ok\xff", bad2[] = "\xe3\x81", bad3[] = "\xed\xa0\x80";
    static char kana[] = "ヤマダ タロウ", emoji[] = "\xf0\x9f\x98\x80 x";
    char *strs[] = {ctl, bad1, bad2, bad3, kana, emoji, "", "plain"};
    size_t ns = sizeof strs / sizeof *strs;
    for (size_t i = 0; i < ns; i++) {
        Kizuna__Victim v = KIZUNA__VICTIM__INIT;
        Kizuna__Consent c = KIZUNA__CONSENT__INIT;
        Kizuna__Note n1 = KIZUNA__NOTE__INIT, n2 = KIZUNA__NOTE__INIT;
        Kizuna__Note *notes[] = {&n1, &n2};
        Kizuna__ShelterStay s1 = KIZUNA__SHELTER_STAY__INIT,
                            s2 = KIZUNA__SHELTER_STAY__INIT;
        Kizuna__ShelterStay *stays[] = {&s1, &s2};
        char *arr[] = {strs[i], "elderly", strs[(i + 1) % ns]};
        char *s = strs[i];
        v.id = s;
        v.name = s;
        v.name_kana = strs[(i + 2) % ns];
        v.dob = NULL;
        v.sex = s;
        v.address = strs[(i + 3) % ns];
        v.contact = s;
        v.merged_into = i % 2 ? s : NULL;
        v.needs = arr;
        v.n_needs = 3;
        v.version = UINT64_MAX / (i + 1);
        v.created_ms = -1 - (long long)i;
        v.updated_ms = 253402300799999LL + (long long)i;
        c.has_disclose_safety = i % 2;
        c.disclose_safety = i % 3 == 0;
        c.recipients = arr;
        c.n_recipients = i % 4;
        v.consent = i % 5 ? &c : NULL;
        n1.status = s;
        n1.text = strs[(i + 4) % ns];
        n1.at_ms = 1765000000123LL;
        n2.author = s;
        v.notes = notes;
        v.n_notes = i % 3;
        s1.shelter_id = s;
        s1.in_ms = 1;
        s2.has_out_ms = 1;
        s2.out_ms = 2;
        v.shelter_history = stays;
        v.n_shelter_history = i % 3;
        assert_same_json(&v, "hostile");
    }
    /* Empty: nothing but the members every record has. */
    Kizuna__Victim e = KIZUNA__VICTIM__INIT;
    assert_same_json(&e, "empty");
}
