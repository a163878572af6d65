/*
 * test_import_csv.c — `kizuna import csv` through the real CLI against a
 * 3-node cluster, with the committed fixtures of tests/integration/data
 * (make_register_fixtures.sh): 307 records of a municipal export under a
 * Japanese header mapped with --map, a memo column left out with
 * --ignore-unknown (some memos span lines), a blank line, and 7 bad
 * records. Checks: a dry run reports exactly the bad lines and changes
 * nothing; the import reports the same lines (exit 1) and registers the
 * 300 others; a follower finds them by search and the shelter counts them;
 * the Shift_JIS file gives the same records as the UTF-8 one; an unmapped
 * column is a usage error before anything is sent. Then the endpoint
 * itself: 403 for a caseworker, 400 for an unknown column, 413 past 500
 * records, and a dry run's answer with first_line.
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
    return kz_it_leader(arg) != 0;
}

#define MAP                                                                   \
    "氏名=name,フリガナ=name_kana,生年月日=dob,性別=sex,住所=address,"        \
    "世帯番号=household_id,被害=damage,要配慮=needs,避難所=shelter_id,"       \
    "安否=status,連絡先=contact,同意=consent,罹災証明日=damage_certified_on"

static const unsigned long bad_lines[] = {13, 41, 42, 80, 155, 218, 314};
#define N_BAD (sizeof bad_lines / sizeof bad_lines[0])

/* Runs the import of fixture `file` with extra options; returns the exit
 * code, the output in *out (caller frees). */
static int import(const char *file, const char *extra, char **out)
{
    char args[1024];
    snprintf(args, sizeof args,
             "import csv '%s/tests/integration/data/%s' --map '%s' "
             "--ignore-unknown --batch 100 %s",
             KZ_SOURCE_DIR, file, MAP, extra);
    return kz_it_cli(&cluster, "registrar", args, out);
}

/* The lines the CLI reported as rejected ("FILE:LINE: ..."), in order. */
static size_t rejected_lines(const char *out, const char *file,
                             unsigned long *lines, size_t cap)
{
    size_t n = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "%s:", file);
    for (const char *p = strstr(out, pat); p != NULL && n < cap;
         p = strstr(p + 1, pat))
        if (p[strlen(pat)] >= '0' && p[strlen(pat)] <= '9')
            lines[n++] = strtoul(p + strlen(pat), NULL, 10);
    return n;
}

static void expect_bad_lines(const char *out, const char *file)
{
    unsigned long got[32];
    size_t n = rejected_lines(out, file, got, 32);
    cr_assert_eq(n, N_BAD, "%zu rejections reported:\n%s", n, out);
    for (size_t i = 0; i < N_BAD; i++)
        cr_assert_eq(got[i], bad_lines[i], "rejection %zu: line %lu:\n%s", i,
                     got[i], out);
}

/* The ids of the --json batch answers in out, in file order. */
static json_t *ids_of(const char *out)
{
    json_t *ids = json_array();
    for (const char *p = out; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (*p != '{')
            continue;
        size_t l = strcspn(p, "\n");
        json_t *a = json_loadb(p, l, 0, NULL);
        cr_assert_not_null(a, "not JSON: %.*s", (int)l, p);
        cr_assert(json_is_false(json_object_get(a, "dry_run")));
        json_array_extend(ids, json_object_get(a, "ids"));
        json_decref(a);
    }
    return ids;
}

static int search_count(kz_cli *cli, const char *q)
{
    char *enc = kz_cli_urlencode(q), path[512];
    snprintf(path, sizeof path, "/v1/victims?q=%s&limit=1000", enc);
    free(enc);
    kz_cli_response r = kz_it_call(cli, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "search: %ld %s", r.status, r.body);
    json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
    int n = (int)json_array_size(json_object_get(b, "items"));
    json_decref(b);
    kz_cli_response_free(&r);
    return n;
}

/* POST /v1/import/csv with a CSV body; the status, and the error code into
 * code (when not NULL). */
static int post_csv(kz_cli *cli, const char *query, const char *body,
                    char *code)
{
    const char *const hdr[] = {"Content-Type: text/csv", NULL};
    char path[128];
    kz_cli_response r;
    snprintf(path, sizeof path, "/v1/import/csv%s", query);
    cr_assert_eq(kz_cli_request(cli, "POST", path, hdr, body, strlen(body),
                                &r),
                 KZ_CLI_OK);
    int st = (int)r.status;
    if (code != NULL)
        kz_it_error_code(&r, code, 64);
    kz_cli_response_free(&r);
    return st;
}

static json_t *get_record(kz_cli *cli, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/victims/%s", id);
    kz_cli_response r = kz_it_call(cli, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "get %s: %ld %s", id, r.status, r.body);
    json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
    kz_cli_response_free(&r);
    /* What differs between two registrations of the same person. */
    const char *drop[] = {"id", "version", "created_at", "updated_at",
                          "shelter_history"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        json_object_del(b, drop[i]);
    return b;
}

Test(import_csv, dry_run_import_search_and_shift_jis, .fini = teardown,
     .timeout = 600)
{
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 20000), "no leader");
    /* Reads on node 3 only, writes through the CLI (any node). */
    kz_cli *cw = kz_it_client(&cluster, "caseworker", "3", 20000);
    char *out;

    /* An unmapped column is refused before anything is sent. */
    char args[1024];
    snprintf(args, sizeof args,
             "import csv '%s/tests/integration/data/register_utf8.csv' "
             "--map '%s'",
             KZ_SOURCE_DIR, MAP);
    cr_assert_eq(kz_it_cli(&cluster, "registrar", args, &out), 2, "%s", out);
    cr_assert(strstr(out, "'備考'") != NULL, "%s", out);
    free(out);

    /* Dry run: the same verdicts, nothing registered. */
    cr_assert_eq(import("register_utf8.csv", "--dry-run", &out), 1, "%s", out);
    expect_bad_lines(out, "register_utf8.csv");
    cr_assert(strstr(out, "307 rows, 300 accepted, 7 rejected") != NULL, "%s",
              out);
    free(out);
    cr_assert_eq(search_count(cw, "伊藤 陸"), 0);
    cr_assert_eq(search_count(cw, "ごとう いさむ"), 0);

    /* The import. */
    cr_assert_eq(import("register_utf8.csv", "--json", &out), 1, "%s", out);
    expect_bad_lines(out, "register_utf8.csv");
    cr_assert(strstr(out, "307 rows, 300 accepted, 7 rejected") != NULL, "%s",
              out);
    json_t *ids = ids_of(out);
    free(out);
    cr_assert_eq(json_array_size(ids), 300);

    /* Found by search on another node, by kanji and by kana, and counted
     * by the shelter view. */
    cr_assert_eq(search_count(cw, "伊藤 陸"), 1);
    cr_assert_eq(search_count(cw, "ごとう いさむ"), 1);
    json_t *first = get_record(cw, json_string_value(json_array_get(ids, 0)));
    cr_assert_str_eq(json_string_value(json_object_get(first, "name")),
                     "伊藤 陸");
    cr_assert_str_eq(json_string_value(json_object_get(first, "dob")),
                     "1998-06-21");
    cr_assert_str_eq(json_string_value(json_object_get(first, "shelter_id")),
                     "ishinomaki-02");
    json_decref(first);

    /* Shift_JIS: the same records, one by one. */
    cr_assert_eq(import("register_sjis.csv", "--encoding shift_jis --json",
                        &out),
                 1, "%s", out);
    expect_bad_lines(out, "register_sjis.csv");
    json_t *ids2 = ids_of(out);
    free(out);
    cr_assert_eq(json_array_size(ids2), 300);
    for (size_t i = 0; i < 300; i++) {
        json_t *a = get_record(cw, json_string_value(json_array_get(ids, i)));
        json_t *b = get_record(cw, json_string_value(json_array_get(ids2, i)));
        char *as = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
        char *bs = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
        cr_assert_str_eq(as, bs, "record %zu", i);
        free(as);
        free(bs);
        json_decref(a);
        json_decref(b);
    }
    cr_assert_eq(search_count(cw, "伊藤 陸"), 2);
    json_decref(ids);
    json_decref(ids2);

    /* The endpoint itself: roles, whole-body refusals, a dry run's
     * answer with first_line. */
    kz_cli *reg = kz_it_client(&cluster, "registrar", "2", 20000);
    cr_assert_eq(post_csv(cw, "", "name\nx\n", NULL), 403);
    char code[64];
    cr_assert_eq(post_csv(reg, "", "name,氏名\nx,y\n", code), 400);
    cr_assert_str_eq(code, "unknown_column");
    size_t cap = 8 + 501 * 3;
    char *big = malloc(cap);
    size_t off = (size_t)snprintf(big, cap, "name\n");
    for (int i = 0; i < 501; i++)
        off += (size_t)snprintf(big + off, cap - off, "p\n");
    cr_assert_eq(post_csv(reg, "", big, code), 413);
    cr_assert_str_eq(code, "too_many_rows");
    free(big);
    const char *const hdr[] = {"Content-Type: text/csv", NULL};
    const char *body = "name,dob\n試験 一,1950-01-01\n試験 二,1950-02-30\n";
    kz_cli_response r;
    cr_assert_eq(kz_cli_request(reg, "POST",
                                "/v1/import/csv?first_line=50&dry_run=1", hdr,
                                body, strlen(body), &r),
                 KZ_CLI_OK);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *a = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert(json_is_true(json_object_get(a, "dry_run")), "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(a, "accepted")), 1);
    cr_assert_eq(json_array_size(json_object_get(a, "ids")), 0);
    json_t *rj = json_array_get(json_object_get(a, "rejected"), 0);
    cr_assert_eq(json_integer_value(json_object_get(rj, "line")), 51);
    cr_assert_str_eq(json_string_value(json_object_get(rj, "column")), "dob");
    json_decref(a);
    kz_cli_response_free(&r);
    cr_assert_eq(search_count(cw, "試験"), 0);
    kz_cli_close(reg);
    kz_cli_close(cw);
}
