/*
 * test_search.c — name search through the API on three real nodes (issue 9):
 * dictionary readings of records registered without kana, taken by the
 * proposing node and replicated in the command, so every node indexes the
 * same keys (equal state digests) and answers the same ranked results:
 * name and kana matches first, reading matches after, across pages; a PATCH
 * of the name replaces the reading; ヴ and ブ spellings find each other.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

static bool has_leader(void *arg)
{
    (void)arg;
    return kz_it_leader(&cluster) != 0;
}

static json_t *call_json(kz_cli *cli, const char *method, const char *path,
                         const char *body, long want)
{
    kz_cli_response r = kz_it_call(cli, method, path, body);
    cr_assert_eq(r.status, want, "%s %s: %ld %s", method, path, r.status,
                 r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(j, "%s %s: not JSON", method, path);
    kz_cli_response_free(&r);
    return j;
}

struct post {
    kz_cli *cli;
    const char *body;
    kz_cli_response r;
};

/* One POST; false (to be polled again) while the answer is 503, which a
 * new cluster gives until its first leader has created the keys. */
static bool posted(void *arg)
{
    struct post *p = arg;
    kz_cli_response_free(&p->r);
    p->r = kz_it_call(p->cli, "POST", "/v1/victims", p->body);
    return p->r.status != 503;
}

/* POST /v1/victims; returns the new id (caller frees). */
static char *add(kz_cli *reg, const char *body)
{
    struct post p = {reg, body, {0}};
    kz_it_wait(posted, &p, 20000);
    cr_assert_eq(p.r.status, 201, "%s: %ld %s", body, p.r.status,
                 p.r.body ? p.r.body : "");
    json_t *j = json_loadb(p.r.body, p.r.body_len, 0, NULL);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    kz_cli_response_free(&p.r);
    return id;
}

/* The ids of a search page, comma-separated, and its next_cursor. */
static void search(kz_cli *cw, const char *q, int limit, const char *cursor,
                   char *ids, size_t idlen, char *next, size_t nextlen)
{
    char path[512];
    char *eq = kz_cli_urlencode(q);
    snprintf(path, sizeof path, "/v1/victims?q=%s&limit=%d%s%s", eq, limit,
             cursor ? "&cursor=" : "", cursor ? cursor : "");
    free(eq);
    json_t *j = call_json(cw, "GET", path, NULL, 200);
    size_t i;
    json_t *it;
    ids[0] = '\0';
    json_array_foreach(json_object_get(j, "items"), i, it)
    {
        size_t l = strlen(ids);
        snprintf(ids + l, idlen - l, "%s%s", l ? "," : "",
                 json_string_value(json_object_get(it, "id")));
        cr_assert_null(json_object_get(it, "name_reading"),
                       "the reading is not part of the API");
    }
    const char *nc = json_string_value(json_object_get(j, "next_cursor"));
    snprintf(next, nextlen, "%s", nc ? nc : "");
    json_decref(j);
}

/* Every node answers the same digest at the same applied index. */
static bool converged(void *arg)
{
    (void)arg;
    return kz_it_digests_equal(&cluster, 3);
}

Test(name_search, readings_rank_after_names_on_every_node, .fini = teardown,
     .timeout = 300)
{
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);
    cr_assert(kz_it_wait(has_leader, NULL, 30000), "no leader");
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);

    /* Kanji only: found by kana through the proposer's reading. */
    char *only = add(reg, "{\"name\":\"山田 太郎\",\"dob\":\"1950-04-01\"}");
    char *kana = add(reg, "{\"name\":\"山田 太郎\",\"name_kana\":\"やまだ たろう\"}");
    char *ueno = add(reg, "{\"name\":\"上野 秀一\"}");
    char *vik = add(reg, "{\"name\":\"PETROV Viktor\","
                         "\"name_kana\":\"ペトロフ ヴィクトル\"}");
    cr_assert(kz_it_wait(converged, NULL, 30000),
              "the nodes' state digests differ");

    char ids[512], next[80], want[512];
    for (int node = 1; node <= 3; node++) {
        char nodes[8];
        snprintf(nodes, sizeof nodes, "%d", node);
        kz_cli *cw = kz_it_client(&cluster, "caseworker", nodes, 10000);
        /* Kana matches first, the reading match after, whatever the ids. */
        snprintf(want, sizeof want, "%s,%s", kana, only);
        search(cw, "やまだ たろう", 10, NULL, ids, sizeof ids, next,
               sizeof next);
        cr_assert_str_eq(ids, want, "node %d", node);
        search(cw, "Taro Yamada", 10, NULL, ids, sizeof ids, next,
               sizeof next);
        cr_assert_str_eq(ids, want, "node %d", node);
        /* The second-best reading of 秀一 finds it too. */
        search(cw, "シュウイチ ウエノ", 10, NULL, ids, sizeof ids, next,
               sizeof next);
        cr_assert_str_eq(ids, ueno, "node %d", node);
        search(cw, "ビクトル", 10, NULL, ids, sizeof ids, next, sizeof next);
        cr_assert_str_eq(ids, vik, "node %d", node);
        kz_cli_close(cw);
    }

    /* Pages cross from the kana tier into the reading tier. */
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 10000);
    search(cw, "yamada", 1, NULL, ids, sizeof ids, next, sizeof next);
    cr_assert_str_eq(ids, kana);
    cr_assert_str_eq(next, kana);
    char cursor[80];
    snprintf(cursor, sizeof cursor, "%s", next);
    search(cw, "yamada", 1, cursor, ids, sizeof ids, next, sizeof next);
    cr_assert_str_eq(ids, only);
    cr_assert_str_eq(next, "");

    /* A new name brings its own reading; the old one is gone. */
    char path[128];
    snprintf(path, sizeof path, "/v1/victims/%s", only);
    json_decref(call_json(reg, "PATCH", path, "{\"name\":\"長谷川 京子\"}",
                          200));
    search(cw, "はせがわ きょうこ", 10, NULL, ids, sizeof ids, next,
           sizeof next);
    cr_assert_str_eq(ids, only);
    search(cw, "やまだ たろう", 10, NULL, ids, sizeof ids, next, sizeof next);
    cr_assert_str_eq(ids, kana);
    cr_assert(kz_it_wait(converged, NULL, 30000),
              "the nodes' state digests differ after the patch");

    kz_cli_close(cw);
    kz_cli_close(reg);
    free(only);
    free(kana);
    free(ueno);
    free(vik);
}
