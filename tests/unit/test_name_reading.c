/*
 * test_name_reading.c — dictionary readings of kanji names (node/name_reading)
 * and where they enter a record: kz_node_victim_from_json, which runs on the
 * proposing node (issue 9).
 *
 * Uses the real MeCab with Debian's mecab-ipadic-utf8 (deploy/install-deps);
 * the readings checked are of common names that any ipadic has.
 */
#include "name_reading.h"
#include "records.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The best reading of name is `first`, and `also` (if not NULL) is one of
 * the others. */
static void expect_readings(const char *name, const char *first,
                            const char *also)
{
    char *r = NULL;
    cr_assert_eq(kz_node_name_reading(name, &r), 0, "%s: no reading", name);
    size_t fl = strcspn(r, "\n");
    cr_assert(fl == strlen(first) && memcmp(r, first, fl) == 0,
              "%s: [%s], want %s first", name, r, first);
    if (also != NULL) {
        bool found = false;
        for (const char *s = r; *s;) {
            size_t l = strcspn(s, "\n");
            found |= l == strlen(also) && memcmp(s, also, l) == 0;
            s += l + (s[l] == '\n');
        }
        cr_assert(found, "%s: [%s], want %s too", name, r, also);
    }
    size_t lines = 1;
    for (const char *s = r; *s; s++)
        lines += *s == '\n';
    cr_assert_leq(lines, KZ_NODE_READING_PATHS);
    free(r);
}

#define expect_reading(name, want) expect_readings((name), (want), NULL)

static void expect_none(const char *name)
{
    char *r = (char *)"x";
    cr_assert_eq(kz_node_name_reading(name, &r), -1, "%s: a reading", name);
    cr_assert_null(r);
}

Test(name_reading, common_names_keep_their_spaces)
{
    expect_reading("山田 太郎", "ヤマダ タロウ");
    expect_reading("長谷川　京子", "ハセガワ キョウコ"); /* U+3000 */
    expect_reading("佐藤翔太", "サトウショウタ");
    expect_reading("渡邊 修一", "ワタナベ シュウイチ");
    expect_reading("中村 純一", "ナカムラ ジュンイチ"); /* alone: ジュンイツ */
}

/* Given names have several readings; the next-best paths keep them. */
Test(name_reading, the_best_few_readings)
{
    expect_readings("上野 秀一", "ウエノ ヒデカズ", "ウエノ シュウイチ");
    expect_readings("阿久津 力", "アクツ ツトム", "アクツ チカラ");
}

Test(name_reading, variant_kanji_read_as_their_common_form)
{
    expect_reading("髙橋", "タカハシ");
    expect_reading("齋藤", "サイトウ");
}

Test(name_reading, no_reading_rather_than_part_of_one)
{
    expect_none(NULL);
    expect_none("");
    expect_none("やまだ たろう");  /* no kanji: the kana is the reading */
    expect_none("SMITH John");
    expect_none("山田 John");     /* Latin letters: not a dictionary name */
    expect_none("𠮷野");          /* 𠮷 is not in the dictionary */
    expect_none("山田 \xff");     /* not UTF-8 */
}

static void *read_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        char *r = NULL;
        if (kz_node_name_reading("佐藤 花子", &r) != 0 ||
            strncmp(r, "サトウ ハナコ", strlen("サトウ ハナコ")) != 0) {
            free(r);
            return (void *)1;
        }
        free(r);
    }
    return NULL;
}

Test(name_reading, any_thread_may_call)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, read_many, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        cr_assert_null(rv);
    }
}

/* The proposer's decoder stores the reading in the command; the client can
 * neither set it nor see it. */
Test(name_reading, proposal_carries_the_reading)
{
    char err[256];
    Kizuna__Victim *v;
    json_t *o = json_pack("{s:s}", "name", "鈴木 一郎");
    cr_assert_eq(kz_node_victim_from_json(o, false, &v, NULL, NULL, err,
                                          sizeof err), 0, "%s", err);
    cr_assert_not_null(v->name_reading);
    cr_assert_eq(strncmp(v->name_reading, "スズキ イチロウ",
                         strlen("スズキ イチロウ")), 0, "%s", v->name_reading);
    json_t *out = kz_node_victim_to_json(v);
    cr_assert_null(json_object_get(out, "name_reading"));
    json_decref(out);
    kizuna__victim__free_unpacked(v, NULL);
    json_decref(o);

    o = json_pack("{s:s,s:s}", "name", "鈴木 一郎", "name_reading", "ア");
    cr_assert_eq(kz_node_victim_from_json(o, false, &v, NULL, NULL, err,
                                          sizeof err), -1);
    json_decref(o);
}

static bool in_set(char **set, size_t n, const char *f)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(set[i], f) == 0)
            return true;
    return false;
}

static void free_set(char **set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(set[i]);
    free(set);
}

Test(name_reading, a_patch_of_the_name_replaces_the_reading)
{
    char err[256], **set;
    size_t n;
    Kizuna__Victim *v;

    json_t *o = json_pack("{s:s}", "name", "田中 裕子");
    cr_assert_eq(kz_node_victim_from_json(o, true, &v, &set, &n, err,
                                          sizeof err), 0, "%s", err);
    cr_assert(in_set(set, n, "name_reading"));
    cr_assert_not_null(v->name_reading);
    cr_assert_eq(strncmp(v->name_reading, "タナカ ユウコ\n",
                         strlen("タナカ ユウコ\n")), 0, "%s", v->name_reading);
    free_set(set, n);
    kizuna__victim__free_unpacked(v, NULL);
    json_decref(o);

    /* A name without a reading clears the old one. */
    o = json_pack("{s:s}", "name", "SMITH John");
    cr_assert_eq(kz_node_victim_from_json(o, true, &v, &set, &n, err,
                                          sizeof err), 0, "%s", err);
    cr_assert(in_set(set, n, "name_reading"));
    cr_assert_null(v->name_reading);
    free_set(set, n);
    kizuna__victim__free_unpacked(v, NULL);
    json_decref(o);

    /* A patch that leaves the name alone leaves the reading alone. */
    o = json_pack("{s:s}", "status", "safe");
    cr_assert_eq(kz_node_victim_from_json(o, true, &v, &set, &n, err,
                                          sizeof err), 0, "%s", err);
    cr_assert_not(in_set(set, n, "name_reading"));
    free_set(set, n);
    kizuna__victim__free_unpacked(v, NULL);
    json_decref(o);
}
