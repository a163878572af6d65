/*
 * test_search.c — register search (node/search) over a register filled by
 * kz_node_apply on a real RocksDB store.
 *
 * A small register of people whose names share family names, given names
 * and readings; each case is a query and the exact ids it must return, in id
 * order: names in kanji, hiragana, katakana (full and half width) and romaji,
 * either order, with and without a space; the dob, shelter and status
 * filters alone, together and with a name. The paging tests walk every
 * page with small limits and require each match exactly once, in id order,
 * with has_next false only on the last page.
 *
 * The register is encrypted at rest (node/keys.h): the store gets its keys
 * by a KeyInit at index 1, every other create is sealed as a proposer seals
 * it, and names and dates of birth are found through blind (keyed) index
 * terms. The last section searches across a data-key rotation, with a node
 * that only has the master key of a later rewrap, and with a wrong index
 * key.
 */
#include "register.h"
#include "search.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz_test_keys.h"

#define MUNI "131016"
#define T0 1700000000000LL

static char dir[64];
static char keydir[64];
static char ring_path[1100];
static kz_stor *st;
static struct kz_node_keys keys;                 /* the node's keys */
static struct kz_node_keys *search_keys = &keys; /* what run() searches with */
static uint64_t next_index;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_search_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[256] = "";
    cr_assert_eq(kz_stor_open(dir, &st, err, sizeof err), KZ_OK, "%s", err);
    snprintf(keydir, sizeof keydir, "/tmp/kz_search_keys_XXXXXX");
    cr_assert_not_null(mkdtemp(keydir));
    const uint32_t ring1[] = {1};
    kz_test_keys_open(&keys, keydir, "master.key", ring1, 1, ring_path,
                      sizeof ring_path);
    kz_test_keys_init(st, &keys, MUNI, 1);
    search_keys = &keys;
    next_index = 2;
}

static void teardown(void)
{
    kz_stor_close(st);
    st = NULL;
    kz_node_keys_wipe(&keys);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(keydir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(search, .init = setup, .fini = teardown);

struct person {
    const char *id, *name, *kana, *dob, *shelter, *status;
};

/* Creates p, with `reading` (Victim.name_reading, as a proposer derives
 * it; NULL for none). */
static void add_read(const struct person *p, const char *reading)
{
    Kizuna__Command c = KIZUNA__COMMAND__INIT;
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = (char *)p->id;
    v.name = (char *)p->name;
    v.name_kana = (char *)p->kana;
    v.dob = (char *)p->dob;
    v.shelter_id = (char *)p->shelter;
    v.status = (char *)p->status;
    v.name_reading = (char *)reading;
    cv.victim = &v;
    c.municipality = MUNI;
    c.has_time_ms = 1;
    c.time_ms = T0 + (int64_t)next_index;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    c.create_victim = &cv;
    size_t len = kizuna__command__get_packed_size(&c);
    char *buf = malloc(len);
    kizuna__command__pack(&c, (uint8_t *)buf);
    /* Every other one sealed, as a proposer seals it. */
    if (next_index % 2 == 1) {
        size_t sl;
        char *sealed = kz_test_seal(&keys, buf, len, &sl);
        free(buf);
        buf = sealed;
        len = sl;
    }
    char *res = NULL;
    size_t rl;
    bool changed = true;
    int rv = kz_node_apply(st, &keys, next_index++, buf, len, true, &res, &rl,
                           &changed);
    free(buf);
    cr_assert_eq(rv, KZ_OK);
    cr_assert_not(changed);
    cr_assert_not_null(res);
    cr_assert_eq(strncmp(res, "201", 3), 0, "create %s: %s", p->id, res);
    free(res);
}

static void add(const struct person *p)
{
    add_read(p, NULL);
}

/* The register most cases search. */
static const struct person people[] = {
    {"V01", "山田 太郎", "やまだ たろう", "1950-04-01", "S1", "safe"},
    {"V02", "山田 花子", "やまだ はなこ", "1955-06-15", "S1", "missing"},
    {"V03", "田中 太郎", "たなか たろう", "1950-04-01", "S2", "safe"},
    {"V04", "佐藤 一郎", "さとう いちろう", "1980-01-01", NULL, "injured"},
    {"V05", "山本 花子", "やまもと はなこ", "1990-02-02", "S2", NULL},
    {"V06", "Smith John", NULL, "1950-04-01", "S1", "safe"},
    {"V07", "佐々木 陽菜", "ささき ひな", NULL, NULL, NULL},
    {"V08", "山田 太郎", NULL, "1960-01-01", "S2", "deceased"},
};

/* Out of id order on purpose: results must come in id order. */
static const int fill_order[] = {7, 2, 0, 5, 1, 4, 3, 6};

static void fill(void)
{
    for (int i = 0; i < 8; i++)
        add(&people[fill_order[i]]);
}

struct result {
    char ids[1024];
    bool has_next;
    bool truncated;
    char cursor[72];
    size_t n;
};

static struct result run(const struct kz_node_search *q)
{
    struct result r = {0};
    struct kz_node_search_page pg;
    int rv = kz_node_search_run(st, search_keys, MUNI, q, &pg);
    cr_assert_eq(rv, 0, "search: %d", rv);
    cr_assert(json_is_array(pg.items));
    size_t i;
    json_t *it;
    json_array_foreach(pg.items, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "id"));
        cr_assert_not_null(id, "item without id");
        cr_assert(json_is_integer(json_object_get(it, "version")));
        size_t l = strlen(r.ids);
        snprintf(r.ids + l, sizeof r.ids - l, "%s%s", l ? "," : "", id);
    }
    r.n = json_array_size(pg.items);
    r.has_next = pg.has_next;
    r.truncated = pg.truncated;
    snprintf(r.cursor, sizeof r.cursor, "%s", pg.next_cursor);
    json_decref(pg.items);
    return r;
}

static void expect(const char *q, const char *dob, const char *shelter,
                   const char *status, const char *want)
{
    struct kz_node_search s = {.q = q, .dob = dob, .shelter = shelter,
                               .status = status, .limit = 100};
    struct result r = run(&s);
    cr_assert_str_eq(r.ids, want,
                     "q=%s dob=%s shelter=%s status=%s: got [%s], want [%s]",
                     q ? q : "-", dob ? dob : "-", shelter ? shelter : "-",
                     status ? status : "-", r.ids, want);
    cr_assert_not(r.has_next);
    cr_assert_not(r.truncated);
}

#define Q(q, want) expect((q), NULL, NULL, NULL, (want))

/* ----------------------------------------------------------- by name */

Test(search, kanji_either_order_with_and_without_space)
{
    fill();
    Q("山田", "V01,V02,V08");
    Q("山田太郎", "V01,V08");
    Q("山田 太郎", "V01,V08");
    Q("山田　太郎", "V01,V08"); /* U+3000 */
    Q("太郎 山田", "V01,V08");
    Q("太郎山田", "V01,V08");
    Q("太郎", "V01,V03,V08");
    Q("山田 花子", "V02");
    Q("花子 山田", "V02");
    Q("花子", "V02,V05");
    Q("山", "V01,V02,V05,V08");
    Q("佐々木", "V07");
    Q("佐佐木", "V07");
}

Test(search, kana_and_katakana)
{
    fill();
    Q("やまだ", "V01,V02");
    Q("やまだ たろう", "V01");
    Q("たろう やまだ", "V01");
    Q("やまだたろう", "V01");
    Q("ヤマダ", "V01,V02");
    Q("ヤマダ タロウ", "V01");
    Q("ﾔﾏﾀﾞ ﾀﾛｳ", "V01");
    Q("タロー", "V01,V03");
    Q("はなこ", "V02,V05");
    Q("ささき", "V07");
}

Test(search, romaji_any_case_and_spelling)
{
    fill();
    Q("yamada", "V01,V02");
    Q("Yamada Taro", "V01");
    Q("taro yamada", "V01");
    Q("yamadataro", "V01");
    Q("TAROU", "V01,V03");
    Q("Tarō", "V01,V03");
    Q("ＹＡＭＡＤＡ", "V01,V02");
    Q("yama", "V01,V02,V05");
    Q("hanako", "V02,V05");
    Q("satou ichirou", "V04");
    Q("Sato Ichiro", "V04");
    Q("satoh", "V04");
    Q("smith", "V06");
    Q("john smith", "V06");
    Q("SMITH JOHN", "V06");
}

Test(search, no_match_is_empty)
{
    fill();
    Q("鈴木", "");
    Q("zzz", "");
    Q("yamadb", "");
    Q("山田 一郎", ""); /* each token matches someone, never the same one */
    Q("花子 太郎", "");
    Q("・", ""); /* folds to nothing */

    /* Another municipality sees none of it. */
    struct kz_node_search s = {.q = "山田", .limit = 100};
    struct kz_node_search_page pg;
    cr_assert_eq(kz_node_search_run(st, &keys, "041009", &s, &pg), 0);
    cr_assert_eq(json_array_size(pg.items), 0);
    cr_assert_not(pg.has_next);
    json_decref(pg.items);
}

Test(search, ids_that_prefix_each_other_come_in_id_order)
{
    /* A term's ids are read newest first (inverted) and reversed; where
     * one id is a prefix of another that is not id order, and the set is
     * sorted instead. */
    static const char *const ids[] = {"X2", "X1", "X10", "X100", "X11"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        struct person p = {ids[i], "森 一", "もり はじめ", "1990-01-01",
                           "S1", "safe"};
        add(&p);
    }
    Q("森", "X1,X10,X100,X11,X2");
    Q("mori", "X1,X10,X100,X11,X2");
    Q("森 一", "X1,X10,X100,X11,X2");
}

Test(search, empty_register)
{
    Q("山田", "");
    expect(NULL, NULL, NULL, NULL, "");
    expect(NULL, "1950-04-01", NULL, NULL, "");
}

/* ---------------------------------------------------------- filters */

Test(search, filters_alone)
{
    fill();
    expect(NULL, NULL, NULL, NULL, "V01,V02,V03,V04,V05,V06,V07,V08");
    expect(NULL, "1950-04-01", NULL, NULL, "V01,V03,V06");
    expect(NULL, "1950-04-02", NULL, NULL, "");
    expect(NULL, NULL, "S1", NULL, "V01,V02,V06");
    expect(NULL, NULL, "S2", NULL, "V03,V05,V08");
    expect(NULL, NULL, "S", NULL, ""); /* exact shelter, not a prefix */
    expect(NULL, NULL, "S9", NULL, "");
    expect(NULL, NULL, NULL, "safe", "V01,V03,V06");
    expect(NULL, NULL, NULL, "deceased", "V08");
    expect(NULL, NULL, NULL, "unknown", "V05,V07"); /* no status given */
}

Test(search, filters_combined)
{
    fill();
    expect(NULL, "1950-04-01", "S1", NULL, "V01,V06");
    expect(NULL, "1950-04-01", NULL, "safe", "V01,V03,V06");
    expect(NULL, NULL, "S1", "safe", "V01,V06");
    expect(NULL, NULL, "S2", "safe", "V03");
    expect(NULL, "1950-04-01", "S2", "safe", "V03");
    expect(NULL, "1950-04-01", "S2", "missing", "");
}

Test(search, name_with_filters)
{
    fill();
    expect("山田", "1950-04-01", NULL, NULL, "V01");
    expect("太郎", "1950-04-01", NULL, NULL, "V01,V03");
    expect("山田", NULL, "S2", NULL, "V08");
    expect("山田", NULL, NULL, "missing", "V02");
    expect("太郎", "1950-04-01", "S2", "safe", "V03");
    expect("taro", NULL, "S1", "safe", "V01");
    expect("山田 太郎", "1960-01-01", NULL, NULL, "V08");
    expect("山田", NULL, NULL, "injured", "");
    expect("hanako", NULL, NULL, "unknown", "V05");
}

/* ----------------------------------------------------------- paging */

/* 30 people: P00..P29 created in a scrambled order. Even ones are 佐藤,
 * odd ones 加藤; every third is in S3; status cycles safe/missing/injured;
 * dob is 2000-01-01 for multiples of 4. */
static bool p_match(int i, const char *what)
{
    if (strcmp(what, "q") == 0)
        return i % 2 == 0;
    if (strcmp(what, "shelter") == 0)
        return i % 3 == 0;
    if (strcmp(what, "status") == 0)
        return i % 3 == 1; /* missing */
    if (strcmp(what, "dob") == 0)
        return i % 4 == 0;
    if (strcmp(what, "q+status") == 0)
        return i % 2 == 0 && i % 3 == 1;
    return true;
}

static void fill_paging(void)
{
    static const char *const statuses[] = {"safe", "missing", "injured"};
    for (int k = 0; k < 30; k++) {
        int i = (k * 7) % 30; /* 7 is coprime with 30: a permutation */
        char id[8];
        snprintf(id, sizeof id, "P%02d", i);
        struct person p = {id,
                           i % 2 == 0 ? "佐藤 一" : "加藤 一",
                           i % 2 == 0 ? "さとう はじめ" : "かとう はじめ",
                           i % 4 == 0 ? "2000-01-01" : "2001-01-01",
                           i % 3 == 0 ? "S3" : "S4",
                           statuses[i % 3]};
        add(&p);
    }
}

static void walk(const char *what, struct kz_node_search base, size_t limit)
{
    char want[512] = "";
    size_t nwant = 0;
    for (int i = 0; i < 30; i++)
        if (p_match(i, what)) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "%sP%02d", l ? "," : "", i);
            nwant++;
        }

    char got[512] = "";
    char cursor[72] = "";
    size_t pages = 0, total = 0;
    for (;;) {
        struct kz_node_search s = base;
        s.limit = limit;
        s.cursor = cursor[0] ? cursor : NULL;
        struct result r = run(&s);
        pages++;
        cr_assert_leq(r.n, limit, "%s: page over the limit", what);
        cr_assert_leq(pages, 40, "%s: paging does not end", what);
        total += r.n;
        if (r.n > 0) {
            size_t l = strlen(got);
            snprintf(got + l, sizeof got - l, "%s%s", l ? "," : "", r.ids);
        }
        if (!r.has_next)
            break;
        cr_assert_eq(r.n, limit, "%s: short page with has_next", what);
        /* The cursor is the last id of the page. */
        const char *last = strrchr(r.ids, ',');
        last = last ? last + 1 : r.ids;
        cr_assert_str_eq(r.cursor, last, "%s: cursor", what);
        snprintf(cursor, sizeof cursor, "%s", r.cursor);
    }
    cr_assert_str_eq(got, want, "%s limit %zu:\n got  %s\n want %s", what,
                     limit, got, want);
    cr_assert_eq(total, nwant);
}

Test(search, paging_visits_every_match_once_in_id_order)
{
    fill_paging();
    const size_t limits[] = {1, 2, 4, 5, 7, 30, 100};
    for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
        walk("all", (struct kz_node_search){0}, limits[l]);
        walk("q", (struct kz_node_search){.q = "佐藤"}, limits[l]);
        walk("q", (struct kz_node_search){.q = "はじめ さとう"}, limits[l]);
        walk("shelter", (struct kz_node_search){.shelter = "S3"}, limits[l]);
        walk("status", (struct kz_node_search){.status = "missing"}, limits[l]);
        walk("dob", (struct kz_node_search){.dob = "2000-01-01"}, limits[l]);
        walk("q+status",
             (struct kz_node_search){.q = "sato", .status = "missing"},
             limits[l]);
    }
}

Test(search, cursor_between_and_past_ids)
{
    fill_paging();
    /* A cursor need not be a match or even exist: the page starts after it. */
    struct kz_node_search s = {.q = "佐藤", .cursor = "P05", .limit = 3};
    struct result r = run(&s);
    cr_assert_str_eq(r.ids, "P06,P08,P10");
    cr_assert(r.has_next);
    cr_assert_str_eq(r.cursor, "P10");

    s = (struct kz_node_search){.cursor = "P065", .limit = 2};
    r = run(&s);
    cr_assert_str_eq(r.ids, "P07,P08");

    s = (struct kz_node_search){.shelter = "S3", .cursor = "P10", .limit = 2};
    r = run(&s);
    cr_assert_str_eq(r.ids, "P12,P15");

    s = (struct kz_node_search){.q = "佐藤", .cursor = "P28", .limit = 3};
    r = run(&s);
    cr_assert_str_eq(r.ids, "");
    cr_assert_not(r.has_next);

    s = (struct kz_node_search){.status = "safe", .cursor = "Q", .limit = 3};
    r = run(&s);
    cr_assert_str_eq(r.ids, "");
    cr_assert_not(r.has_next);
}

Test(search, page_that_ends_exactly_at_the_last_match)
{
    fill_paging();
    /* 15 matches, limit 5: the third page is full and has no next. */
    struct kz_node_search s = {.q = "佐藤", .cursor = "P18", .limit = 5};
    struct result r = run(&s);
    cr_assert_str_eq(r.ids, "P20,P22,P24,P26,P28");
    cr_assert_not(r.has_next);

    s = (struct kz_node_search){.shelter = "S3", .cursor = "P12", .limit = 5};
    r = run(&s);
    cr_assert_str_eq(r.ids, "P15,P18,P21,P24,P27");
    cr_assert_not(r.has_next);

    s = (struct kz_node_search){.cursor = "P24", .limit = 5};
    r = run(&s);
    cr_assert_str_eq(r.ids, "P25,P26,P27,P28,P29");
    cr_assert_not(r.has_next);
}

Test(search, has_next_only_when_another_index_match_follows)
{
    /* has_next promises another page with something on it. Candidates that
     * fail the other filters after the last match must not announce one
     * (the client would fetch an empty page). */
    fill_paging();

    /* 佐藤 and missing: P04 P10 P16 P22 P28. */
    struct kz_node_search s = {.q = "佐藤", .status = "missing", .limit = 4};
    struct result r = run(&s);
    cr_assert_str_eq(r.ids, "P04,P10,P16,P22");
    cr_assert(r.has_next, "P28 still follows");

    /* Index path: dob 2000-01-01 holds P00 P04 ... P28; of them only P00
     * P12 P24 are safe. The page of 3 holds them all; P28 (right dob,
     * status missing) follows in the dob index but is no match. */
    s = (struct kz_node_search){.dob = "2000-01-01", .status = "safe",
                                .limit = 3};
    r = run(&s);
    cr_assert_str_eq(r.ids, "P00,P12,P24");
    cr_assert_not(r.has_next, "no further match, yet has_next (cursor %s)",
                  r.cursor);
}

Test(search, has_next_only_when_another_name_match_follows)
{
    /* The same on the name path: 加藤 (odd ids) and safe: P03 P09 P15 P21
     * P27. After P27 the candidate P29 (加藤, injured) is no match. */
    fill_paging();
    struct kz_node_search s = {.q = "加藤", .status = "safe", .cursor = "P09",
                               .limit = 3};
    struct result r = run(&s);
    cr_assert_str_eq(r.ids, "P15,P21,P27");
    cr_assert_not(r.has_next, "no further match, yet has_next (cursor %s)",
                  r.cursor);
}

/* ------------------------------------------------- encryption at rest */

/* The name, dob and filter cases that must hold whatever key sealed the
 * records. */
static void expect_the_register(void)
{
    Q("山田", "V01,V02,V08");
    Q("太郎 山田", "V01,V08");
    Q("ﾔﾏﾀﾞ ﾀﾛｳ", "V01");
    Q("Sato Ichiro", "V04");
    Q("yama", "V01,V02,V05");
    Q("佐佐木", "V07");
    expect(NULL, NULL, NULL, NULL, "V01,V02,V03,V04,V05,V06,V07,V08");
    expect(NULL, "1950-04-01", NULL, NULL, "V01,V03,V06");
    expect(NULL, NULL, "S2", NULL, "V03,V05,V08");
    expect(NULL, NULL, NULL, "unknown", "V05,V07");
    expect("太郎", "1950-04-01", "S2", "safe", "V03");
}

Test(search, records_sealed_before_and_after_a_data_key_rotation)
{
    for (int i = 0; i < 4; i++)
        add(&people[fill_order[i]]);
    char *cmd;
    size_t len;
    cr_assert_eq(kz_node_keys_make_rotate_data(&keys, MUNI, &cmd, &len),
                 KZ_OK);
    kz_test_apply_key_cmd(st, &keys, next_index++, cmd, len);
    free(cmd);
    cr_assert_eq(keys.current, 2);
    for (int i = 4; i < 8; i++)
        add(&people[fill_order[i]]);
    expect_the_register();
}

Test(search, a_node_with_only_the_new_master_key_after_a_rewrap)
{
    fill();
    kz_test_append_ring(ring_path, 2);
    cr_assert_eq(kz_node_keys_reload_ring(&keys), KZ_OK, "%s", keys.errmsg);
    char *cmd;
    size_t len;
    unsigned n;
    cr_assert_eq(kz_node_keys_make_rewrap(&keys, st, MUNI, &cmd, &len, &n),
                 KZ_OK);
    kz_test_apply_key_cmd(st, &keys, next_index++, cmd, len);
    free(cmd);

    struct kz_node_keys only2;
    char path[1100];
    const uint32_t ring2[] = {2};
    kz_test_keys_open(&only2, keydir, "only2.key", ring2, 1, path,
                      sizeof path);
    cr_assert_eq(kz_node_keys_refresh(&only2, st), KZ_OK, "%s", only2.errmsg);
    search_keys = &only2;
    expect_the_register();
    search_keys = &keys;
    kz_node_keys_wipe(&only2);
}

Test(search, blind_terms_need_the_index_key)
{
    /* The same data keys but another index key: the records still open, but
     * no name or dob term is found; the shelter and status indexes (not
     * personal data, kept readable) still work. */
    fill();
    static struct kz_node_keys other;
    other = keys;
    other.index_key[0] ^= 0x80;
    search_keys = &other;
    Q("山田", "");
    Q("yamada", "");
    Q("太郎 山田", "");
    expect(NULL, "1950-04-01", NULL, NULL, "");
    expect(NULL, NULL, "S1", NULL, "V01,V02,V06");
    expect(NULL, NULL, NULL, "safe", "V01,V03,V06");
    expect(NULL, NULL, NULL, NULL, "V01,V02,V03,V04,V05,V06,V07,V08");
    search_keys = &keys;
    kz_node_keys_wipe(&other);
    Q("山田", "V01,V02,V08");
}

/* ------------------------------------------- dictionary readings (issue 9) */

/* Records without kana carry the reading their proposer looked up; a match
 * through it ranks after every name or kana match, whatever the ids. */
static const struct person read_people[] = {
    {"A01", "山田 太郎", NULL, NULL, NULL, NULL},
    {"A02", "山本 太郎", NULL, NULL, NULL, NULL},
    {"B01", "山田 太郎", "やまだ たろう", NULL, NULL, NULL},
    {"B02", "山中 太郎", "やまなか たろう", NULL, NULL, NULL},
    {"C01", "山田 次郎", "やまだ じろう", NULL, NULL, NULL},
};
/* B02's reading is wrong on purpose: with kana, only the kana counts. */
static const char *const readings[] = {"ヤマダ タロウ", "ヤマモト タロウ", NULL,
                                       "サンチュウ タロウ", NULL};

static void fill_readings(void)
{
    for (size_t i = 0; i < sizeof read_people / sizeof read_people[0]; i++)
        add_read(&read_people[i], readings[i]);
}

Test(search, reading_matches_rank_after_name_and_kana_matches)
{
    fill_readings();
    Q("やまだ たろう", "B01,A01");
    Q("Taro Yamada", "B01,A01");
    Q("yamada", "B01,C01,A01");
    Q("ヤマモト", "A02");
    Q("たろう", "B01,B02,A01,A02");
    Q("山田 太郎", "A01,B01"); /* the kanji are the name itself: tier 0 */
    Q("山田 たろう", "B01,A01"); /* a token from each: reading tier */
}

Test(search, reading_is_not_indexed_when_the_record_has_kana)
{
    fill_readings();
    Q("さんちゅう", "");
    Q("やまなか", "B02");
}

Test(search, paging_crosses_from_name_matches_to_reading_matches)
{
    fill_readings();
    struct kz_node_search s = {.q = "たろう", .limit = 1};
    const char *want[] = {"B01", "B02", "A01", "A02"};
    const char *cursor[] = {"B01", "B02", "R:A01", ""};
    char cur[72] = "";
    for (size_t i = 0; i < 4; i++) {
        s.cursor = cur[0] ? cur : NULL;
        struct result r = run(&s);
        cr_assert_str_eq(r.ids, want[i], "page %zu", i);
        cr_assert_eq(r.has_next, i < 3, "page %zu", i);
        cr_assert_str_eq(r.cursor, cursor[i], "page %zu", i);
        snprintf(cur, sizeof cur, "%s", r.cursor);
    }
    /* A reading cursor skips every name match. */
    s = (struct kz_node_search){.q = "たろう", .cursor = "R:A00", .limit = 5};
    struct result r = run(&s);
    cr_assert_str_eq(r.ids, "A01,A02");
}

/* ------------------------------------------------------- the ladder format */

/* Long keys that share long prefixes (the tags between rungs must tell
 * them apart), kanji, kana and readings. */
static const struct person ladder_people[] = {
    {"L01", "Wolfeschlegelsteinhausenbergerdorff Karl", NULL, NULL, NULL,
     NULL},
    {"L02", "Wolfeschlegelsteinhausenbergerhof Anna", NULL, NULL, NULL, NULL},
    {"L03", "Wolfeschlegel Maria", NULL, NULL, NULL, NULL},
    {"L04", "石川 文子", "いしかわ ふみこ", NULL, NULL, NULL},
    {"L05", "石川 文男", "いしかわ ふみお", NULL, NULL, NULL},
    {"L06", "石川県 花子", NULL, NULL, NULL, NULL},
    {"L07", "Ishikawafumikoyamanaka Taro", NULL, NULL, NULL, NULL},
    {"L08", "小野寺 ひかりこ", "おのでら ひかりこ", NULL, NULL, NULL},
};
static const char *const ladder_readings[] = {
    NULL, NULL, NULL, NULL, NULL, "イシカワケン ハナコ", NULL, NULL};
#define N_LADDER (sizeof ladder_people / sizeof ladder_people[0])

static void fill_ladder(void)
{
    for (size_t i = 0; i < N_LADDER; i++)
        add_read(&ladder_people[i], ladder_readings[i]);
}

/* Every prefix (at character boundaries) of s and of s with its two
 * tokens swapped, appended to q. */
static void prefixes_of(const char *s, char (*q)[128], size_t *n, size_t max)
{
    char forms[2][128];
    const char *sp = strchr(s, ' ');
    snprintf(forms[0], sizeof forms[0], "%s", s);
    if (sp != NULL)
        snprintf(forms[1], sizeof forms[1], "%s %.*s", sp + 1, (int)(sp - s),
                 s);
    for (int f = 0; f < (sp ? 2 : 1); f++) {
        size_t len = strlen(forms[f]);
        for (size_t end = 1; end <= len; end++) {
            if (end < len && ((unsigned char)forms[f][end] & 0xC0) == 0x80)
                continue; /* inside a character */
            cr_assert_lt(*n, max);
            snprintf(q[(*n)++], 128, "%.*s", (int)end, forms[f]);
        }
    }
}

Test(search, ladder_format_finds_what_every_prefix_finds)
{
    static char q[1200][128];
    static char got2[1200][256];
    size_t nq = 0;
    for (size_t i = 0; i < N_LADDER; i++) {
        prefixes_of(ladder_people[i].name, q, &nq, 1200);
        if (ladder_people[i].kana)
            prefixes_of(ladder_people[i].kana, q, &nq, 1200);
        if (ladder_readings[i])
            prefixes_of(ladder_readings[i], q, &nq, 1200);
    }
    /* A new register is on the ladder. */
    cr_assert_eq(keys.terms_format, KZ_NODE_TERMS_LADDER);
    fill_ladder();
    uint64_t ladder_terms = kz_stor_writes(st, KZ_STOR_CF_TERMS);
    for (size_t i = 0; i < nq; i++) {
        struct kz_node_search s = {.q = q[i], .limit = 100};
        snprintf(got2[i], sizeof got2[i], "%s", run(&s).ids);
    }
    /* Between rungs 24 and 32: the tags of the 31st character differ. */
    Q("wolfeschlegelsteinhausenbergerd", "L01");
    Q("wolfeschlegelsteinhausenbergerh", "L02");
    Q("Wolfeschlegelsteinhausenberger", "L01,L02");
    Q("ishikawafumi", "L04,L05,L07");
    Q("ishikawafumik", "L04,L07");
    Q("ishikawafumikoy", "L07");

    /* The same register in format 1 (a term for every prefix), as a
     * register created before the ladder holds it. */
    kz_stor_close(st);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    snprintf(dir, sizeof dir, "/tmp/kz_search_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[256] = "";
    cr_assert_eq(kz_stor_open(dir, &st, err, sizeof err), KZ_OK, "%s", err);
    kz_test_keys_init(st, &keys, MUNI, 1);
    kz_stor_batch *b = kz_stor_batch_new(st);
    kz_stor_batch_put(b, KZ_STOR_CF_META, "terms/format", 12, "1", 1);
    cr_assert_eq(kz_stor_batch_commit(st, b, 2), KZ_OK);
    kz_stor_batch_free(b);
    cr_assert_eq(kz_node_keys_refresh(&keys, st), KZ_OK);
    cr_assert_eq(keys.terms_format, 1);
    next_index = 3;
    fill_ladder();
    uint64_t every_terms = kz_stor_writes(st, KZ_STOR_CF_TERMS);
    cr_assert_lt(ladder_terms * 10, every_terms * 7,
                 "ladder %llu terms, every prefix %llu",
                 (unsigned long long)ladder_terms,
                 (unsigned long long)every_terms);
    size_t found = 0;
    for (size_t i = 0; i < nq; i++) {
        struct kz_node_search s = {.q = q[i], .limit = 100};
        struct result r = run(&s);
        cr_assert_str_eq(got2[i], r.ids, "q=%s: ladder [%s], every prefix [%s]",
                         q[i], got2[i], r.ids);
        found += r.n > 0;
    }
    /* Every query is a prefix of someone's name: all find someone. */
    cr_assert_eq(found, nq, "%zu of %zu queries found someone", found, nq);
    Q("wolfeschlegelsteinhausenbergerd", "L01");
}
