/*
 * test_api.c — the register's HTTP contract on a real 3-node cluster:
 * compare-and-set with If-Match, validation errors, roles from client
 * certificates, X-Purpose, search, safety notes and shelter summaries, and
 * what the nodes log about calls (request ids, never personal data).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct kz_it_cluster cluster;

static void setup(void)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
}

static void teardown(void)
{
    kz_it_down(&cluster);
}

static json_t *body_json(const kz_cli_response *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    cr_assert_not_null(j, "response is not JSON: %s", r->body);
    return j;
}

static long call_with(kz_cli *cli, const char *method, const char *path,
                      const char *const *headers, const char *body,
                      json_t **out)
{
    kz_cli_response r;
    int rv = kz_cli_request(cli, method, path, headers, body,
                            body ? strlen(body) : 0, &r);
    cr_assert_eq(rv, KZ_CLI_OK, "%s %s: %s", method, path, kz_cli_errmsg(cli));
    long st = r.status;
    if (out != NULL)
        *out = body_json(&r);
    kz_cli_response_free(&r);
    return st;
}

static const char *error_code(json_t *j)
{
    return json_string_value(
        json_object_get(json_object_get(j, "error"), "code"));
}

Test(api, if_match_is_compare_and_set, .init = setup, .fini = teardown,
     .timeout = 120)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    json_t *j;
    cr_assert_eq(call_with(reg, "POST", "/v1/victims", NULL,
                           "{\"name\":\"佐藤 一郎\",\"name_kana\":\"さとう "
                           "いちろう\",\"dob\":\"1941-03-11\",\"sex\":\"male\"}",
                           &j),
                 201);
    char id[64], path[128], im[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_int_t v1 = json_integer_value(json_object_get(j, "version"));
    json_decref(j);
    snprintf(path, sizeof path, "/v1/victims/%s", id);

    snprintf(im, sizeof im, "If-Match: %lld", (long long)v1);
    const char *h1[] = {im, NULL};
    cr_assert_eq(call_with(reg, "PATCH", path, h1,
                           "{\"address\":\"宮城県石巻市門脇町2丁目\"}", &j),
                 200);
    json_int_t v2 = json_integer_value(json_object_get(j, "version"));
    cr_assert_gt(v2, v1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "address")),
                     "宮城県石巻市門脇町2丁目");
    json_decref(j);

    /* The same If-Match again: the record moved on. */
    cr_assert_eq(call_with(reg, "PATCH", path, h1,
                           "{\"address\":\"上書きされない\"}", &j),
                 412);
    cr_assert_str_eq(error_code(j), "version_mismatch");
    json_decref(j);

    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &j), 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "address")),
                     "宮城県石巻市門脇町2丁目");
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), v2);
    json_decref(j);

    cr_assert_eq(call_with(reg, "PATCH", "/v1/victims/nosuchid", NULL,
                           "{\"address\":\"x\"}", &j),
                 404);
    json_decref(j);
    kz_cli_close(cw);
    kz_cli_close(reg);
}

Test(api, bad_input_gets_clear_400s_and_changes_nothing, .init = setup,
     .fini = teardown, .timeout = 120)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    static const struct {
        const char *body;
        const char *code;
        const char *mentions;
    } cases[] = {
        {"{\"name\":\"a\",\"dob\":\"2023-02-30\"}", "bad_request", "dob"},
        {"{\"name\":\"a\",\"sex\":\"unknown\"}", "bad_request", "sex"},
        {"{\"name\":\"a\",\"colour\":\"red\"}", "bad_request", "colour"},
        {"{\"name\":\"a\",\"damage\":\"zenkai\",", "bad_json", "JSON"},
        {"[1,2]", "bad_request", "object"},
        {"{\"dob\":\"1990-01-01\"}", "bad_request", "name"},
        {"{\"name\":\"a\",\"needs\":[\"infant\",\"infant\"]}", "bad_request",
         "needs"},
        {"{\"name\":\"a\",\"name\":\"b\"}", "bad_json", "duplicate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j;
        cr_assert_eq(call_with(reg, "POST", "/v1/victims", NULL, cases[i].body,
                               &j),
                     400, "case %zu", i);
        cr_assert_str_eq(error_code(j), cases[i].code, "case %zu", i);
        const char *msg = json_string_value(
            json_object_get(json_object_get(j, "error"), "message"));
        cr_assert(strstr(msg, cases[i].mentions) != NULL,
                  "case %zu: message '%s' does not mention %s", i, msg,
                  cases[i].mentions);
        cr_assert_not_null(
            json_object_get(json_object_get(j, "error"), "request_id"));
        json_decref(j);
    }
    /* An oversize field. */
    char *big = malloc(2000);
    memset(big, 'a', 1999);
    big[1999] = '\0';
    char *body = malloc(2100);
    snprintf(body, 2100, "{\"name\":\"%s\"}", big);
    json_t *j;
    cr_assert_eq(call_with(reg, "POST", "/v1/victims", NULL, body, &j), 400);
    json_decref(j);
    free(big);
    free(body);
    /* A body over max_body_bytes (1 MiB): 413 from the server. */
    size_t huge = 2u << 20;
    body = malloc(huge + 1);
    memset(body, ' ', huge);
    body[huge] = '\0';
    body[0] = '{';
    body[huge - 1] = '}';
    /* h2o answers 413 and closes without reading the rest of the body, so
     * the client may see the reset before the answer: try a few times; the
     * 413 must show up, and nothing may be created either way. */
    kz_cli_response r;
    bool saw_413 = false;
    for (int attempt = 0; attempt < 5 && !saw_413; attempt++) {
        int rv = kz_cli_request(reg, "POST", "/v1/victims", NULL, body, huge,
                                &r);
        if (rv == KZ_CLI_OK) {
            cr_assert_eq(r.status, 413, "oversize body answered %ld",
                         r.status);
            saw_413 = true;
        }
        kz_cli_response_free(&r);
    }
    cr_assert(saw_413, "an oversize body never got its 413");
    free(body);

    /* Nothing was created by any of these. */
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    cr_assert_eq(call_with(cw, "GET", "/v1/victims?limit=10", NULL, NULL, &j),
                 200);
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 0);
    json_decref(j);
    kz_cli_close(cw);
    kz_cli_close(reg);
}

Test(api, roles_and_purpose_are_enforced, .init = setup, .fini = teardown,
     .timeout = 120)
{
    json_t *j;
    /* A caseworker may not register; a registrar may not search. */
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    cr_assert_eq(call_with(cw, "POST", "/v1/victims", NULL,
                           "{\"name\":\"a\"}", &j),
                 403);
    cr_assert_str_eq(error_code(j), "forbidden");
    json_decref(j);
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    const char *purpose[] = {"X-Purpose: audit", NULL};
    cr_assert_eq(call_with(reg, "GET", "/v1/victims?q=a", purpose, NULL, &j),
                 403);
    json_decref(j);
    cr_assert_eq(call_with(cw, "GET", "/v1/cluster", NULL, NULL, &j), 403);
    json_decref(j);
    kz_cli_close(reg);
    kz_cli_close(cw);

    /* Reads of personal data need X-Purpose: a client with no default. */
    char ca[300], cert[300], key[300], err[200];
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", cluster.dir);
    snprintf(cert, sizeof cert, "%s/pki/caseworker.pem", cluster.dir);
    snprintf(key, sizeof key, "%s/pki/caseworker.key", cluster.dir);
    kz_cli_opts o = {0};
    o.endpoints = cluster.url[1];
    o.cacert = ca;
    o.cert = cert;
    o.key = key;
    kz_cli *np = NULL;
    cr_assert_eq(kz_cli_open(&o, &np, err, sizeof err), KZ_CLI_OK, "%s", err);
    cr_assert_eq(call_with(np, "GET", "/v1/victims?q=a", NULL, NULL, &j), 400);
    cr_assert_str_eq(error_code(j), "purpose_required");
    json_decref(j);
    kz_cli_close(np);

    /* No client certificate at all: the TLS handshake is refused. */
    kz_cli_opts anon = {0};
    anon.endpoints = cluster.url[1];
    anon.cacert = ca;
    anon.deadline_ms = 2000;
    kz_cli *an = NULL;
    cr_assert_eq(kz_cli_open(&anon, &an, err, sizeof err), KZ_CLI_OK);
    kz_cli_response r;
    int rv = kz_cli_request(an, "GET", "/v1/victims?q=a", NULL, NULL, 0, &r);
    cr_assert(rv != KZ_CLI_OK || r.status == 401,
              "an anonymous client was served (%ld)", r.status);
    kz_cli_response_free(&r);
    kz_cli_close(an);
}

static size_t search_count(kz_cli *cw, const char *query)
{
    char path[512];
    snprintf(path, sizeof path, "/v1/victims?%s", query);
    json_t *j;
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &j), 200, "%s", query);
    size_t n = json_array_size(json_object_get(j, "items"));
    json_decref(j);
    return n;
}

Test(api, search_notes_and_shelter_summary, .init = setup, .fini = teardown,
     .timeout = 120)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    json_t *j;
    cr_assert_eq(call_with(reg, "PUT", "/v1/shelters/ishinomaki-01", NULL,
                           "{\"name\":\"石巻市立湊小学校\",\"capacity\":300}",
                           &j),
                 201);
    json_decref(j);
    const char *people[] = {
        "{\"name\":\"山田 太郎\",\"name_kana\":\"やまだ たろう\",\"dob\":"
        "\"1940-01-02\",\"sex\":\"male\",\"shelter_id\":\"ishinomaki-01\","
        "\"needs\":[\"elderly\",\"medication\"],\"status\":\"safe\"}",
        "{\"name\":\"山田 花子\",\"name_kana\":\"やまだ はなこ\",\"dob\":"
        "\"2025-06-01\",\"sex\":\"female\",\"shelter_id\":\"ishinomaki-01\","
        "\"needs\":[\"infant\"]}",
        "{\"name\":\"鈴木 一郎\",\"name_kana\":\"すずき いちろう\",\"dob\":"
        "\"1980-01-02\",\"sex\":\"male\"}",
    };
    char first_id[64] = "";
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(call_with(reg, "POST", "/v1/victims", NULL, people[i], &j),
                     201);
        if (i == 0)
            snprintf(first_id, sizeof first_id, "%s",
                     json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    cr_assert_eq(search_count(cw, "q=yamada"), 2);
    cr_assert_eq(search_count(cw, "q=%E3%83%A4%E3%83%9E%E3%83%80"), 2); /* ヤマダ */
    cr_assert_eq(search_count(cw, "q=taro+yamada"), 1);
    cr_assert_eq(search_count(cw, "q=%E5%B1%B1%E7%94%B0%E5%A4%AA%E9%83%8E"),
                 1); /* 山田太郎 */
    cr_assert_eq(search_count(cw, "q=suzuki"), 1);
    cr_assert_eq(search_count(cw, "dob=1980-01-02"), 1);
    cr_assert_eq(search_count(cw, "shelter=ishinomaki-01"), 2);
    cr_assert_eq(search_count(cw, "q=yamada&shelter=ishinomaki-01&status=safe"),
                 1);
    cr_assert_eq(search_count(cw, "q=tanaka"), 0);
    cr_assert_eq(search_count(cw, "q=yamada&consistency=stale"), 2);
    /* Paging: limit 1 walks both Yamadas with a cursor. */
    json_t *p1;
    cr_assert_eq(call_with(cw, "GET", "/v1/victims?q=yamada&limit=1", NULL,
                           NULL, &p1),
                 200);
    const char *cur = json_string_value(json_object_get(p1, "next_cursor"));
    cr_assert_not_null(cur);
    char path[256];
    snprintf(path, sizeof path, "/v1/victims?q=yamada&limit=1&cursor=%s", cur);
    json_t *p2;
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &p2), 200);
    cr_assert_eq(json_array_size(json_object_get(p2, "items")), 1);
    cr_assert_str_neq(
        json_string_value(json_object_get(
            json_array_get(json_object_get(p1, "items"), 0), "id")),
        json_string_value(json_object_get(
            json_array_get(json_object_get(p2, "items"), 0), "id")));
    json_decref(p1);
    json_decref(p2);

    /* A safety note changes the status and the shelter's counters. */
    snprintf(path, sizeof path, "/v1/victims/%s/notes", first_id);
    cr_assert_eq(call_with(cw, "POST", path, NULL,
                           "{\"status\":\"injured\",\"text\":\"軽傷、救護所で手当て\","
                           "\"author\":\"避難所担当\"}",
                           &j),
                 201);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")),
                     "injured");
    cr_assert_eq(json_array_size(json_object_get(j, "notes")), 1);
    json_decref(j);

    cr_assert_eq(call_with(cw, "GET", "/v1/shelters/ishinomaki-01/summary",
                           NULL, NULL, &j),
                 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "total")), 2);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(j, "by_sex"), "female")),
                 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "infants")), 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "elderly")), 1);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(j, "by_status"), "injured")),
                 1);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(j, "by_status"), "safe")),
                 0);
    json_decref(j);
    kz_cli_close(cw);
    kz_cli_close(reg);
}

struct audit_wait {
    kz_cli *cli;
    size_t want;
};

static bool audit_has(void *arg)
{
    struct audit_wait *w = arg;
    kz_cli_response r = kz_it_call(w->cli, "GET", "/v1/audit?limit=1000",
                                   NULL);
    size_t n = 0;
    if (r.status == 200) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        n = json_array_size(json_object_get(j, "items"));
        json_decref(j);
    }
    kz_cli_response_free(&r);
    return n >= w->want;
}

Test(api, writes_and_refusals_are_audited_in_one_chain, .init = setup,
     .fini = teardown, .timeout = 120)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    json_t *j;
    const char *purpose[] = {"X-Purpose: 避難所受付", NULL};
    cr_assert_eq(call_with(reg, "POST", "/v1/victims", purpose,
                           "{\"name\":\"監査 記録\",\"sex\":\"female\"}", &j),
                 201);
    char id[64], path[128];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    snprintf(path, sizeof path, "/v1/victims/%s", id);
    cr_assert_eq(call_with(reg, "PATCH", path, NULL, "{\"status\":\"safe\"}",
                           &j),
                 200);
    json_decref(j);
    /* A refused call: recorded too. */
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    cr_assert_eq(call_with(cw, "POST", "/v1/victims", NULL,
                           "{\"name\":\"x\"}", &j),
                 403);
    json_decref(j);
    /* Auditors only. */
    cr_assert_eq(call_with(cw, "GET", "/v1/audit", NULL, NULL, &j), 403);
    json_decref(j);

    kz_cli *aud = kz_it_client(&cluster, "auditor", NULL, 20000);
    struct audit_wait w = {aud, 4};
    cr_assert(kz_it_wait(audit_has, &w, 20000), "audit records missing");
    snprintf(path, sizeof path, "/v1/audit?subject=%s", id);
    cr_assert_eq(call_with(aud, "GET", path, NULL, NULL, &j), 200);
    json_t *items = json_object_get(j, "items");
    cr_assert_eq(json_array_size(items), 2, "create and patch of %s", id);
    json_t *first = json_array_get(items, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "action")),
                     "victim.create");
    cr_assert_str_eq(json_string_value(json_object_get(first, "role")),
                     "registrar");
    cr_assert_str_eq(json_string_value(json_object_get(first, "purpose")),
                     "避難所受付");
    cr_assert_eq(strlen(json_string_value(
                     json_object_get(first, "cert_sha256"))),
                 64);
    json_decref(j);

    /* Every node holds the same, intact chain. */
    char head[3][80];
    for (int node = 1; node <= 3; node++) {
        char ids[4];
        snprintf(ids, sizeof ids, "%d", node);
        kz_cli *one = kz_it_client(&cluster, "auditor", ids, 20000);
        struct audit_wait wn = {one, 4};
        cr_assert(kz_it_wait(audit_has, &wn, 20000));
        cr_assert_eq(call_with(one, "GET", "/v1/audit/verify", NULL, NULL, &j),
                     200);
        cr_assert(json_is_true(json_object_get(j, "ok")), "node %d", node);
        cr_assert_geq(json_integer_value(json_object_get(j, "entries")), 4);
        snprintf(head[node - 1], sizeof head[0], "%s",
                 json_string_value(json_object_get(j, "head")));
        json_decref(j);
        kz_cli_close(one);
    }
    cr_assert_str_eq(head[0], head[1]);
    cr_assert_str_eq(head[1], head[2]);
    kz_cli_close(aud);
    kz_cli_close(cw);
    kz_cli_close(reg);
}

/* ------------------------------------------------------------------ logs */

static void setup_debug(void)
{
    /* Debug: every request's line too, so that the check for personal data
     * covers them. */
    static const char *const sets[] = {"log_level=debug", NULL};
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", sets);
}

static char *node_log(int node)
{
    char path[320];
    snprintf(path, sizeof path, "%s/node%d/kizunad.log", cluster.dir, node);
    return kz_it_slurp(path);
}

/* One line of node 1's log holding a, b and c (docs/OPERATIONS.md, "Logs"). */
struct log_line {
    const char *a, *b, *c;
};

static bool log_has(void *arg)
{
    const struct log_line *w = arg;
    char *log = node_log(1);
    bool found = false;
    for (char *line = log; line != NULL && !found;) {
        char *eol = strchr(line, '\n');
        if (eol != NULL)
            *eol = '\0';
        found = strstr(line, w->a) != NULL && strstr(line, w->b) != NULL &&
                strstr(line, w->c) != NULL;
        line = eol != NULL ? eol + 1 : NULL;
    }
    free(log);
    return found;
}

Test(api, logs_name_request_ids_never_personal_data, .init = setup_debug,
     .fini = teardown, .timeout = 120)
{
    /* A call that logs: its line carries the request id of the answer. */
    kz_cli *op = kz_it_client(&cluster, "operator", "1", 20000);
    kz_cli_response r = kz_it_call(op, "POST", "/v1/cluster/reload-tls", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_neq(r.request_id[0], '\0');
    char rid[64];
    snprintf(rid, sizeof rid, " request_id=%s", r.request_id);
    kz_cli_response_free(&r);
    kz_cli_close(op);
    struct log_line reload = {" level=info ", " msg=\"TLS reloaded\" ", rid};
    cr_assert(kz_it_wait(log_has, &reload, 10000),
              "no TLS reload line with%s", rid);
    /* Its request line: the route, not the path. */
    struct log_line access = {" msg=request ", rid,
                              " route=/v1/cluster/reload-tls status=200 "};
    cr_assert(kz_it_wait(log_has, &access, 10000),
              "no request line with%s", rid);

    /* A refusal: the request_id of the error body is the logged one. */
    kz_cli *cw = kz_it_client(&cluster, "caseworker", "1", 20000);
    json_t *j;
    r = kz_it_call(cw, "POST", "/v1/victims", "{\"name\":\"a\"}");
    cr_assert_eq(r.status, 403);
    j = body_json(&r);
    const char *erid = json_string_value(
        json_object_get(json_object_get(j, "error"), "request_id"));
    cr_assert_not_null(erid);
    cr_assert_str_eq(erid, r.request_id);
    snprintf(rid, sizeof rid, " request_id=%s", erid);
    json_decref(j);
    kz_cli_response_free(&r);
    struct log_line refused = {" level=warn ",
                               " msg=\"request refused to role\" ", rid};
    cr_assert(kz_it_wait(log_has, &refused, 10000),
              "no refusal line with%s", rid);

    /* Personal data stays out of every log: a victim registered, read,
     * searched for by name and date of birth, and changed. */
    const char *name = "蓮沼 ゆかり", *kana = "はすぬま ゆかり",
               *dob = "1937-07-17", *address = "宮城県気仙沼市唐桑町崎浜99";
    kz_cli *reg = kz_it_client(&cluster, "registrar", "1", 20000);
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"name_kana\":\"%s\",\"dob\":\"%s\","
             "\"sex\":\"female\"}",
             name, kana, dob);
    cr_assert_eq(call_with(reg, "POST", "/v1/victims", NULL, body, &j), 201);
    char path[160];
    snprintf(path, sizeof path, "/v1/victims/%s",
             json_string_value(json_object_get(j, "id")));
    json_decref(j);
    snprintf(body, sizeof body, "{\"address\":\"%s\"}", address);
    cr_assert_eq(call_with(reg, "PATCH", path, NULL, body, &j), 200);
    json_decref(j);
    /* Refused input naming the person: the refusal is logged, not it. */
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"shoe_size\":23}", name);
    cr_assert_eq(call_with(reg, "POST", "/v1/victims", NULL, body, &j), 400);
    json_decref(j);
    kz_cli_close(reg);
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &j), 200);
    json_decref(j);
    cr_assert_eq(search_count(cw, "q=hasunuma"), 1);
    cr_assert_eq(search_count(cw, "q=%E8%93%AE%E6%B2%BC"), 1); /* 蓮沼 */
    cr_assert_eq(search_count(cw, "dob=1937-07-17"), 1);
    kz_cli_close(cw);
    /* The searches were logged (at debug), by route. */
    struct log_line searched = {" msg=request ", " route=/v1/victims ",
                                " method=GET "};
    cr_assert(kz_it_wait(log_has, &searched, 10000), "no search line");

    const char *personal[] = {name, "蓮沼", kana, "hasunuma", dob, address,
                              "%E8%93%AE", "気仙沼"};
    for (int node = 1; node <= 3; node++) {
        char *log = node_log(node);
        cr_assert_not_null(log, "node %d has no log", node);
        for (size_t i = 0; i < sizeof personal / sizeof personal[0]; i++)
            cr_assert_null(strstr(log, personal[i]),
                           "node %d logged '%s':\n%s", node, personal[i],
                           log);
        free(log);
    }
}

/* ------------------------------------------------------------ duplicates */

static json_t *find_candidate(json_t *dups, const char *id)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(dups, "candidates"), i, c)
    {
        const char *cid = json_string_value(
            json_object_get(json_object_get(c, "record"), "id"));
        if (cid && strcmp(cid, id) == 0)
            return c;
    }
    return NULL;
}

static bool has_reason(json_t *cand, const char *why)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(cand, "reasons"), i, r)
    {
        if (strcmp(json_string_value(r), why) == 0)
            return true;
    }
    return false;
}

static long shelter_total(kz_cli *cw, const char *shelter)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/shelters/%s/summary", shelter);
    json_t *j;
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &j), 200);
    long t = (long)json_integer_value(json_object_get(j, "total"));
    json_decref(j);
    return t;
}

/* One person registered twice (kanji by a shelter, kana only by a phone
 * line, the birth date the same) is found as a duplicate, on another node
 * too; a namesake of another year and sex is not. A registrar merges the
 * copy: it leaves searches and shelter counts, keeps its data, and comes
 * back by an undo; both steps and the duplicates read are audited. */
Test(api, duplicates_found_merged_and_undone, .init = setup,
     .fini = teardown, .timeout = 120)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", "1", 20000);
    json_t *j;
    cr_assert_eq(call_with(reg, "PUT", "/v1/shelters/kesennuma-02", NULL,
                           "{\"name\":\"気仙沼中学校\",\"capacity\":200}", &j),
                 201);
    json_decref(j);
    const char *people[] = {
        /* A: the shelter's record */
        "{\"name\":\"佐藤 健一\",\"name_kana\":\"さとう けんいち\",\"dob\":"
        "\"1951-04-09\",\"sex\":\"male\",\"address\":\"気仙沼市本町1-2-3\","
        "\"shelter_id\":\"kesennuma-02\"}",
        /* B: the phone line's, kana only, given name first, katakana */
        "{\"name\":\"ケンイチ サトウ\",\"name_kana\":\"ケンイチ サトウ\","
        "\"dob\":\"1951-04-09\",\"sex\":\"male\",\"shelter_id\":"
        "\"kesennuma-02\"}",
        /* C: a namesake, another year and sex */
        "{\"name\":\"佐藤 健一\",\"name_kana\":\"さとう けんいち\",\"dob\":"
        "\"1990-02-01\",\"sex\":\"female\"}",
        /* D: someone else */
        "{\"name\":\"高橋 美咲\",\"name_kana\":\"たかはし みさき\",\"dob\":"
        "\"1951-04-09\",\"sex\":\"female\"}",
    };
    char ids[4][64];
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(call_with(reg, "POST", "/v1/victims", NULL, people[i],
                               &j),
                     201);
        snprintf(ids[i], sizeof ids[i], "%s",
                 json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    kz_cli *cw = kz_it_client(&cluster, "caseworker", "2", 20000);
    char path[256];
    snprintf(path, sizeof path, "/v1/victims/%s/duplicates", ids[0]);
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &j), 200);
    json_t *b = find_candidate(j, ids[1]);
    cr_assert_not_null(b, "B is not a candidate of A: %s",
                       json_dumps(j, JSON_COMPACT));
    cr_assert_geq(json_real_value(json_object_get(b, "score")), 0.6);
    cr_assert(has_reason(b, "kana") && has_reason(b, "dob") &&
              has_reason(b, "sex"));
    cr_assert_null(find_candidate(j, ids[2]), "C (other year, sex) is not");
    cr_assert_null(find_candidate(j, ids[3]), "D (other name) is not");
    cr_assert_null(find_candidate(j, ids[0]), "A is not its own candidate");
    json_decref(j);
    cr_assert_eq(shelter_total(cw, "kesennuma-02"), 2);
    cr_assert_eq(search_count(cw, "q=%E3%81%95%E3%81%A8%E3%81%86"), 3); /* さとう */

    /* Refusals: a caseworker may not merge; into itself; into nothing. */
    snprintf(path, sizeof path, "/v1/victims/%s/merge", ids[1]);
    char body[160];
    snprintf(body, sizeof body, "{\"into\":\"%s\"}", ids[0]);
    cr_assert_eq(call_with(cw, "POST", path, NULL, body, &j), 403);
    json_decref(j);
    snprintf(body, sizeof body, "{\"into\":\"%s\"}", ids[1]);
    cr_assert_eq(call_with(reg, "POST", path, NULL, body, &j), 400);
    json_decref(j);
    cr_assert_eq(call_with(reg, "POST", path, NULL, "{\"into\":\"nobody\"}",
                           &j),
                 404);
    json_decref(j);
    cr_assert_eq(call_with(reg, "POST", path, NULL, "{}", &j), 400);
    json_decref(j);

    /* Merge B into A. */
    snprintf(body, sizeof body, "{\"into\":\"%s\"}", ids[0]);
    cr_assert_eq(call_with(reg, "POST", path, NULL, body, &j), 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "merged_into")),
                     ids[0]);
    json_decref(j);
    cr_assert_eq(call_with(reg, "POST", path, NULL, body, &j), 409);
    cr_assert_str_eq(error_code(j), "already_merged");
    json_decref(j);
    char path_a[256];
    snprintf(path_a, sizeof path_a, "/v1/victims/%s/merge", ids[0]);
    snprintf(body, sizeof body, "{\"into\":\"%s\"}", ids[1]);
    cr_assert_eq(call_with(reg, "POST", path_a, NULL, body, &j), 409,
                 "nothing merges into a merged record");
    json_decref(j);
    cr_assert_eq(search_count(cw, "q=%E3%81%95%E3%81%A8%E3%81%86"), 2);
    cr_assert_eq(shelter_total(cw, "kesennuma-02"), 1);
    snprintf(path, sizeof path, "/v1/victims/%s", ids[1]);
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &j), 200,
                 "a merged record is kept");
    cr_assert_str_eq(json_string_value(json_object_get(j, "merged_into")),
                     ids[0]);
    json_decref(j);
    snprintf(path, sizeof path, "/v1/victims/%s/duplicates", ids[0]);
    cr_assert_eq(call_with(cw, "GET", path, NULL, NULL, &j), 200);
    cr_assert_null(find_candidate(j, ids[1]), "merged: no longer a candidate");
    json_decref(j);

    /* Undo. */
    snprintf(path, sizeof path, "/v1/victims/%s/unmerge", ids[1]);
    cr_assert_eq(call_with(reg, "POST", path, NULL, "{}", &j), 200);
    cr_assert_null(json_object_get(j, "merged_into"));
    json_decref(j);
    cr_assert_eq(call_with(reg, "POST", path, NULL, "{}", &j), 409);
    cr_assert_str_eq(error_code(j), "not_merged");
    json_decref(j);
    cr_assert_eq(search_count(cw, "q=%E3%81%95%E3%81%A8%E3%81%86"), 3);
    cr_assert_eq(shelter_total(cw, "kesennuma-02"), 2);

    /* The audit log has the merge, the undo and the duplicates read. */
    kz_cli *aud = kz_it_client(&cluster, "auditor", "3", 20000);
    snprintf(path, sizeof path, "/v1/audit?subject=%s&limit=100", ids[1]);
    bool merge = false, unmerge = false, read = false;
    for (int tries = 0; tries < 50 && !(merge && unmerge && read); tries++) {
        cr_assert_eq(call_with(aud, "GET", path, NULL, NULL, &j), 200);
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(j, "items"), i, it)
        {
            const char *a = json_string_value(json_object_get(it, "action"));
            merge |= a && strcmp(a, "victim.merge") == 0;
            unmerge |= a && strcmp(a, "victim.unmerge") == 0;
            read |= a && strcmp(a, "victim.duplicates") == 0;
        }
        json_decref(j);
    }
    cr_assert(merge && unmerge && read, "audit: merge %d unmerge %d read %d",
              merge, unmerge, read);
    kz_cli_close(aud);
    kz_cli_close(cw);
    kz_cli_close(reg);
}
