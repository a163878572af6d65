/*
 * test_links.c — link codes, mediation, the portal and the audit of reads
 * on a real 3-node cluster (DOMAIN.md §2 and §5):
 *   - issuance from the four facts with the usual variation, idempotent;
 *     none and several matches refused; two organisations get different
 *     codes; unlinking; key rotation keeps old codes resolving;
 *   - mediation: the municipality answers from the register; an outside
 *     provider's request is queued, survives kill -9 of the leader, is read
 *     from the provider's inbox by its own code and answered; each refusal
 *     has its own error;
 *   - every read of personal data leaves exactly one audit record, and the
 *     chains verify and are identical on every node;
 *   - a citizen certificate holding the portal's link code sees the
 *     person's own record and every access to it;
 *   - a stale read on a node cut off from the majority is answered, its
 *     record queued on that node and in the log once the cluster heals;
 *   - stale reads arriving together (their records share one write and
 *     sync of the queue) each leave exactly one record;
 *   - so do linearizable reads arriving together on every node (the
 *     leader merges their records into shared entries).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MUNI "131016"

static struct kz_it_cluster cluster;

static void setup(void)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
}

static void teardown(void)
{
    kz_it_down(&cluster);
}

static long call(kz_cli *cli, const char *method, const char *path,
                 const char *body, json_t **out)
{
    kz_cli_response r;
    int rv = kz_cli_request(cli, method, path, NULL, body,
                            body ? strlen(body) : 0, &r);
    cr_assert_eq(rv, KZ_CLI_OK, "%s %s: %s", method, path, kz_cli_errmsg(cli));
    long st = r.status;
    if (out != NULL) {
        *out = json_loadb(r.body, r.body_len, 0, NULL);
        cr_assert_not_null(*out, "%s %s: not JSON: %.*s", method, path,
                           (int)r.body_len, r.body);
    }
    kz_cli_response_free(&r);
    return st;
}

struct ready_call {
    kz_cli *cli;
    const char *method, *path, *body;
    long status;
    json_t *out;
};

static bool answered(void *arg)
{
    struct ready_call *c = arg;
    json_decref(c->out);
    c->out = NULL;
    c->status = call(c->cli, c->method, c->path, c->body, &c->out);
    return c->status != 503;
}

/* Calls until the answer is not 503 (a new cluster creates its first data
 * key just after electing a leader). */
static long call_ready(kz_cli *cli, const char *method, const char *path,
                       const char *body, json_t **out)
{
    struct ready_call c = {cli, method, path, body, 0, NULL};
    kz_it_wait(answered, &c, 20000);
    if (out)
        *out = c.out;
    else
        json_decref(c.out);
    return c.status;
}

static const char *err_code(json_t *j)
{
    return json_string_value(
        json_object_get(json_object_get(j, "error"), "code"));
}

static const char *str(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

static void register_orgs(void)
{
    kz_cli *op = kz_it_client(&cluster, "operator", NULL, 20000);
    static const char *const orgs[][2] = {
        {"HOKEN01", "{\"name\":\"Test insurer\",\"kind\":\"insurer\","
                    "\"info_types\":[\"damage\",\"household\"]}"},
        {"SHAKYO01", "{\"name\":\"Test welfare council\",\"kind\":\"welfare\","
                     "\"info_types\":[\"safety_status\",\"household\"]}"},
        {"PORTAL", "{\"name\":\"Portal\",\"kind\":\"portal\","
                   "\"info_types\":[\"damage\"]}"},
    };
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/orgs/%s", orgs[i][0]);
        long st = call_ready(op, "PUT", path, orgs[i][1], NULL);
        cr_assert(st == 200 || st == 201, "PUT %s: %ld", path, st);
    }
    static const char *const wl[][2] = {
        {"BP-T-DAMAGE", "{\"requester\":\"HOKEN01\",\"provider\":\"" MUNI
                        "\",\"info_types\":[\"damage\",\"household\"]}"},
        {"BP-T-HOUSEHOLD", "{\"requester\":\"kind:insurer\",\"provider\":"
                           "\"SHAKYO01\",\"info_types\":[\"household\"]}"},
        {"BP-T-BACK", "{\"requester\":\"SHAKYO01\",\"provider\":\"HOKEN01\","
                      "\"info_types\":[\"household\"]}"},
    };
    for (size_t i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/whitelist/%s", wl[i][0]);
        long st = call_ready(op, "PUT", path, wl[i][1], NULL);
        cr_assert(st == 200 || st == 201, "PUT %s: %ld", path, st);
    }
    /* Keys are never returned. */
    json_t *j;
    cr_assert_eq(call(op, "GET", "/v1/orgs/HOKEN01", NULL, &j), 200);
    cr_assert_str_eq(str(j, "kind"), "insurer");
    cr_assert_eq(json_integer_value(json_object_get(j, "key_index")), 1);
    char *dump = json_dumps(j, 0);
    cr_assert_null(strstr(dump, "\"key\""), "a key in %s", dump);
    free(dump);
    json_decref(j);
    kz_cli_close(op);
}

static char *add_victim(kz_cli *reg, const char *body)
{
    json_t *j;
    long st = call_ready(reg, "POST", "/v1/victims", body, &j);
    cr_assert_eq(st, 201, "POST /v1/victims: %ld", st);
    char *id = strdup(str(j, "id"));
    json_decref(j);
    return id;
}

/* Issues a link code; returns the status and the code (malloc'd). */
static long issue(kz_cli *org, const char *facts, char **code)
{
    json_t *j;
    long st = call(org, "POST", "/v1/linkcodes", facts, &j);
    if (code)
        *code = st < 300 ? strdup(str(j, "link_code")) : strdup(err_code(j));
    json_decref(j);
    return st;
}

static long mediate(kz_cli *org, const char *bp, const char *provider,
                    const char *code, const char *type, json_t **out)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"bp_id\":\"%s\",\"provider\":\"%s\",\"link_code\":\"%s\","
             "\"info_type\":\"%s\"}",
             bp, provider, code, type);
    return call(org, "POST", "/v1/mediations", body, out);
}

static bool has_leader(void *arg)
{
    return kz_it_leader(arg) != 0;
}

static const char *X_FACTS =
    "{\"name_kana\":\"ヤマダ タロウ\",\"dob\":\"1950-04-01\",\"sex\":\"male\","
    "\"address\":\"宮城県石巻市門脇町２丁目３番地４号\"}";

Test(links, issuance_mediation_and_portal, .init = setup, .fini = teardown,
     .timeout = 300)
{
    register_orgs();
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    char *x = add_victim(reg,
                         "{\"name\":\"山田 太郎\",\"name_kana\":\"やまだ たろう\","
                         "\"dob\":\"1950-04-01\",\"sex\":\"male\","
                         "\"address\":\"宮城県石巻市門脇町2-3-4\","
                         "\"household_id\":\"H-1\",\"damage\":\"zenkai\"}");
    /* Two people the facts cannot tell apart. */
    const char *twin = "{\"name\":\"鈴木 花子\",\"name_kana\":\"すずき はなこ\","
                       "\"dob\":\"1980-01-01\",\"sex\":\"female\","
                       "\"address\":\"宮城県石巻市中央1-1-1\"}";
    free(add_victim(reg, twin));
    free(add_victim(reg, twin));

    kz_cli *hoken = kz_it_client(&cluster, "org-HOKEN01", NULL, 20000);
    kz_cli *shakyo = kz_it_client(&cluster, "org-SHAKYO01", NULL, 20000);
    char *la, *la2, *lb, *err;
    /* Katakana and full-width numerals with 丁目/番地/号 match hiragana and
     * 2-3-4 in the register. */
    cr_assert_eq(issue(hoken, X_FACTS, &la), 201, "%s", la);
    cr_assert_eq(issue(hoken, X_FACTS, &la2), 200);
    cr_assert_str_eq(la, la2, "issuance is not idempotent");
    cr_assert_eq(issue(shakyo, X_FACTS, &lb), 201);
    cr_assert_str_neq(la, lb, "two organisations got the same code");
    cr_assert_eq(issue(hoken,
                       "{\"name_kana\":\"やまだ じろう\",\"dob\":\"1950-04-01\","
                       "\"sex\":\"male\",\"address\":\"宮城県石巻市門脇町2-3-4\"}",
                       &err),
                 404);
    cr_assert_str_eq(err, "no_match");
    free(err);
    cr_assert_eq(issue(hoken,
                       "{\"name_kana\":\"スズキ ハナコ\",\"dob\":\"1980-01-01\","
                       "\"sex\":\"female\",\"address\":\"宮城県石巻市中央１丁目１番１号\"}",
                       &err),
                 409);
    cr_assert_str_eq(err, "ambiguous_match");
    free(err);

    /* The municipality answers from the register. */
    json_t *j;
    cr_assert_eq(mediate(hoken, "BP-T-DAMAGE", MUNI, la, "damage", &j), 200);
    cr_assert_str_eq(str(j, "status"), "answered");
    cr_assert_str_eq(str(json_object_get(j, "answer"), "damage"), "zenkai");
    json_decref(j);
    /* Refusals, each with its own code. */
    cr_assert_eq(mediate(hoken, "BP-T-DAMAGE", MUNI, la, "shelter", &j), 403);
    cr_assert_str_eq(err_code(j), "not_whitelisted");
    json_decref(j);
    cr_assert_eq(mediate(hoken, "BP-T-DAMAGE", MUNI, lb, "damage", &j), 403);
    cr_assert_str_eq(err_code(j), "link_code_not_issued");
    json_decref(j);
    cr_assert_eq(mediate(shakyo, "BP-T-BACK", "HOKEN01", lb, "household", &j),
                 202);
    json_decref(j);

    /* An outside provider: queued, and it survives kill -9 of the leader. */
    cr_assert_eq(mediate(hoken, "BP-T-HOUSEHOLD", "SHAKYO01", la, "household",
                         &j),
                 202);
    cr_assert_str_eq(str(j, "status"), "queued");
    char *mid = strdup(str(j, "id"));
    json_decref(j);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000));
    int leader = kz_it_leader(&cluster);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "kill %d", leader);
    cr_assert_eq(kz_it_ctl(&cluster, cmd), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no new leader");
    cr_assert_eq(call(shakyo, "GET", "/v1/mediations/inbox", NULL, &j), 200);
    json_t *items = json_object_get(j, "items");
    json_t *mine = NULL;
    for (size_t i = 0; i < json_array_size(items); i++)
        if (strcmp(str(json_array_get(items, i), "id"), mid) == 0)
            mine = json_array_get(items, i);
    cr_assert_not_null(mine, "the queued request is not in the inbox");
    /* The provider sees its own code for the person, never the
     * requester's. */
    cr_assert_str_eq(str(mine, "link_code"), lb);
    cr_assert_str_eq(str(mine, "info_type"), "household");
    json_decref(j);
    char path[160];
    snprintf(path, sizeof path, "/v1/mediations/%s/reply", mid);
    cr_assert_eq(call(shakyo, "POST", path, "{\"answer\":{\"members\":1}}",
                      NULL),
                 200);
    cr_assert_eq(call(shakyo, "POST", path, "{\"answer\":{\"members\":2}}",
                      &j),
                 409);
    cr_assert_str_eq(err_code(j), "already_answered");
    json_decref(j);
    snprintf(path, sizeof path, "/v1/mediations/%s", mid);
    cr_assert_eq(call(hoken, "GET", path, NULL, &j), 200);
    cr_assert_str_eq(str(j, "status"), "answered");
    cr_assert_str_eq(str(j, "link_code"), la);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(j, "answer"), "members")),
                 1);
    json_decref(j);
    /* The portal: a citizen certificate holding the portal's code, issued
     * while the old leader is still down. */
    kz_cli *portal = kz_it_client(&cluster, "org-PORTAL", NULL, 20000);
    char *lp;
    cr_assert_eq(issue(portal, X_FACTS, &lp), 201);
    char gen[1024];
    snprintf(gen, sizeof gen,
             "%s/deploy/gen-pki %s/pki --citizen yamada %s >/dev/null",
             KZ_SOURCE_DIR, cluster.dir, lp);
    cr_assert_eq(system(gen), 0, "%s", gen);
    kz_cli *me = kz_it_client(&cluster, "citizen-yamada", NULL, 20000);
    cr_assert_eq(call(me, "GET", "/v1/portal/me", NULL, &j), 200);
    cr_assert_str_eq(str(j, "id"), x);
    json_decref(j);
    snprintf(cmd, sizeof cmd, "restart %d", leader);
    cr_assert_eq(kz_it_ctl(&cluster, cmd), 0);

    /* Exactly one audit record per read of personal data. */
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    snprintf(path, sizeof path, "/v1/victims/%s", x);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(call(cw, "GET", path, NULL, NULL), 200);
    cr_assert_eq(call(cw, "GET", "/v1/victims?q=yamada", NULL, NULL), 200);
    cr_assert_eq(call(me, "GET", "/v1/portal/access-log?limit=1000", NULL, &j),
                 200);
    items = json_object_get(j, "items");
    int reads = 0, searches = 0, issues = 0, portal_reads = 0;
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *a = str(json_array_get(items, i), "action");
        reads += strcmp(a, "victim.read") == 0;
        searches += strcmp(a, "victim.search") == 0;
        issues += strcmp(a, "linkcode.issue") == 0;
        portal_reads += strcmp(a, "portal.me") == 0;
    }
    cr_assert_eq(reads, 5, "victim.read records: %d", reads);
    cr_assert_eq(searches, 1, "victim.search records: %d", searches);
    cr_assert_eq(issues, 4, "linkcode.issue records: %d", issues);
    cr_assert_eq(portal_reads, 1, "portal.me records: %d", portal_reads);
    json_decref(j);

    /* Unlinking ends the code; rotation gives new links a new code while
     * old ones keep resolving. */
    snprintf(path, sizeof path, "/v1/linkcodes/%s", la);
    cr_assert_eq(call(hoken, "DELETE", path, NULL, NULL), 200);
    cr_assert_eq(mediate(hoken, "BP-T-DAMAGE", MUNI, la, "damage", &j), 403);
    cr_assert_str_eq(err_code(j), "link_code_unlinked");
    json_decref(j);
    cr_assert_eq(issue(hoken, X_FACTS, &err), 409);
    free(err);
    kz_cli *op = kz_it_client(&cluster, "operator", NULL, 20000);
    cr_assert_eq(call(op, "PUT", "/v1/orgs/HOKEN01",
                      "{\"name\":\"Test insurer\",\"kind\":\"insurer\","
                      "\"info_types\":[\"damage\",\"household\"],"
                      "\"rotate_key\":true}",
                      &j),
                 200);
    cr_assert_eq(json_integer_value(json_object_get(j, "key_index")), 2);
    json_decref(j);
    char *la3;
    cr_assert_eq(issue(hoken, X_FACTS, &la3), 201);
    cr_assert_str_neq(la3, la);
    cr_assert_eq(mediate(hoken, "BP-T-DAMAGE", MUNI, la3, "damage", NULL), 200);
    /* SHAKYO01's code from before HOKEN01's rotation still works. */
    cr_assert_eq(mediate(shakyo, "BP-T-BACK", "HOKEN01", lb, "household",
                         NULL),
                 202);

    free(la);
    free(la2);
    free(la3);
    free(lb);
    free(lp);
    free(mid);
    free(x);
    kz_cli_close(op);
    kz_cli_close(cw);
    kz_cli_close(me);
    kz_cli_close(portal);
    kz_cli_close(shakyo);
    kz_cli_close(hoken);
    kz_cli_close(reg);
}

struct verify_all {
    char head[80];
    bool ok;
};

/* Every node's chain verifies, and all have the same head. */
static bool chains_agree(void *arg)
{
    struct verify_all *v = arg;
    v->ok = false;
    char first[80] = "";
    for (int node = 1; node <= cluster.n; node++) {
        char ids[8];
        snprintf(ids, sizeof ids, "%d", node);
        kz_cli *au = kz_it_client(&cluster, "auditor", ids, 5000);
        kz_cli_response r = kz_it_call(au, "GET",
                                       "/v1/audit/verify?consistency=stale",
                                       NULL);
        json_t *j = r.status == 200
                        ? json_loadb(r.body, r.body_len, 0, NULL)
                        : NULL;
        kz_cli_response_free(&r);
        kz_cli_close(au);
        bool good = j && json_is_true(json_object_get(j, "ok"));
        const char *h = j ? str(j, "head") : NULL;
        if (!good || h == NULL || (first[0] && strcmp(first, h) != 0)) {
            json_decref(j);
            return false;
        }
        snprintf(first, sizeof first, "%s", h);
        json_decref(j);
    }
    snprintf(v->head, sizeof v->head, "%s", first);
    v->ok = true;
    return true;
}

static long long audit_count(kz_cli *au, const char *subject,
                             const char *action)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/audit?subject=%s&limit=1000", subject);
    json_t *j;
    cr_assert_eq(call(au, "GET", path, NULL, &j), 200);
    json_t *items = json_object_get(j, "items");
    long long k = 0;
    for (size_t i = 0; i < json_array_size(items); i++)
        k += strcmp(str(json_array_get(items, i), "action"), action) == 0;
    json_decref(j);
    return k;
}

struct stale_seen {
    kz_cli *au;
    const char *subject;
};

static bool stale_read_in_log(void *arg)
{
    struct stale_seen *s = arg;
    kz_cli_response r = kz_it_call(s->au, "GET", "/v1/cluster", NULL);
    kz_cli_response_free(&r);
    char path[200];
    snprintf(path, sizeof path, "/v1/audit?subject=%s&limit=1000", s->subject);
    r = kz_it_call(s->au, "GET", path, NULL);
    bool found = r.status == 200 && r.body &&
                 strstr(r.body, "\"victim.read\"") != NULL;
    kz_cli_response_free(&r);
    return found;
}

Test(links, stale_reads_are_queued_and_chains_agree, .init = setup,
     .fini = teardown, .timeout = 300)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    char *x = add_victim(reg, "{\"name\":\"佐藤 一郎\",\"dob\":\"1941-03-11\"}");
    kz_cli *au = kz_it_client(&cluster, "auditor", NULL, 20000);
    cr_assert_eq(audit_count(au, x, "victim.read"), 0);
    /* Cut node 1 off: the other two stop. */
    cr_assert_eq(kz_it_ctl(&cluster, "kill 2"), 0);
    cr_assert_eq(kz_it_ctl(&cluster, "kill 3"), 0);
    kz_cli *cw1 = kz_it_client(&cluster, "caseworker", "1", 5000);
    char path[160];
    snprintf(path, sizeof path, "/v1/victims/%s?consistency=stale", x);
    json_t *j;
    cr_assert_eq(call(cw1, "GET", path, NULL, &j), 200,
                 "a cut-off node must answer stale reads");
    cr_assert_str_eq(str(j, "id"), x);
    json_decref(j);
    /* Heal: the queued record reaches the log, once. */
    cr_assert_eq(kz_it_ctl(&cluster, "restart 2"), 0);
    cr_assert_eq(kz_it_ctl(&cluster, "restart 3"), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000));
    struct stale_seen s = {au, x};
    cr_assert(kz_it_wait(stale_read_in_log, &s, 30000),
              "the stale read's record never reached the log");
    cr_assert_eq(audit_count(au, x, "victim.read"), 1);
    struct verify_all v;
    cr_assert(kz_it_wait(chains_agree, &v, 30000),
              "the audit chains do not verify or differ between nodes");
    cr_assert_eq(audit_count(au, x, "victim.read"), 1,
                 "the queued record was appended twice");
    free(x);
    kz_cli_close(cw1);
    kz_cli_close(au);
    kz_cli_close(reg);
}

/* Reads from several connections at once. Stale: the node writes their
 * records in shared batches (audit_queue.h). Linearizable: the leader
 * merges the records of reads from every node into shared entries
 * (kz_cons_propose_merged). Either way every read leaves exactly one
 * record in the log. */
#define TOGETHER_THREADS 8
#define TOGETHER_READS 25

struct read_worker {
    kz_cli *cli;
    const char *path;
    int ok, other; /* 200s, and anything else */
};

struct records_of {
    kz_cli *au;
    const char *subject;
    long long want;
};

static bool all_records_in_log(void *arg);

static void *reader(void *arg)
{
    struct read_worker *w = arg;
    for (int i = 0; i < TOGETHER_READS; i++) {
        kz_cli_response r = kz_it_call(w->cli, "GET", w->path, NULL);
        if (r.status == 200)
            w->ok++;
        else
            w->other++;
        kz_cli_response_free(&r);
    }
    return NULL;
}

static bool read_ok(void *arg)
{
    struct ready_call *c = arg;
    json_decref(c->out);
    c->out = NULL;
    c->status = call(c->cli, c->method, c->path, c->body, &c->out);
    return c->status == 200;
}

static bool all_records_in_log(void *arg)
{
    struct records_of *a = arg;
    return audit_count(a->au, a->subject, "victim.read") >= a->want;
}

/* TOGETHER_THREADS workers make TOGETHER_READS reads of path each, all at
 * once, worker t on node nodes[t % strlen(nodes)] ("2": all on node 2);
 * each must be answered 200. Returns how many were. */
static int read_together(const char *path, const char *nodes)
{
    struct read_worker w[TOGETHER_THREADS];
    pthread_t th[TOGETHER_THREADS];
    size_t nn = strlen(nodes);
    for (int t = 0; t < TOGETHER_THREADS; t++) {
        char node[2] = {nodes[(size_t)t % nn], '\0'};
        w[t] = (struct read_worker){
            kz_it_client(&cluster, "caseworker", node, 5000), path, 0, 0};
        cr_assert_not_null(w[t].cli);
    }
    for (int t = 0; t < TOGETHER_THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, reader, &w[t]), 0);
    int ok = 0, other = 0;
    for (int t = 0; t < TOGETHER_THREADS; t++) {
        pthread_join(th[t], NULL);
        ok += w[t].ok;
        other += w[t].other;
        kz_cli_close(w[t].cli);
    }
    cr_assert_eq(other, 0, "%d of the reads were not answered 200", other);
    cr_assert_eq(ok, TOGETHER_THREADS * TOGETHER_READS);
    return ok;
}

Test(links, stale_reads_together_leave_one_record_each, .init = setup,
     .fini = teardown, .timeout = 300)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    char *x = add_victim(reg, "{\"name\":\"鈴木 花子\",\"dob\":\"1952-07-01\"}");
    kz_cli *au = kz_it_client(&cluster, "auditor", NULL, 20000);
    char path[160];
    snprintf(path, sizeof path, "/v1/victims/%s?consistency=stale", x);
    /* Every worker reads on node 2 until the record has reached it. */
    kz_cli *probe = kz_it_client(&cluster, "caseworker", "2", 5000);
    struct ready_call c = {probe, "GET", path, NULL, 0, NULL};
    cr_assert(kz_it_wait(read_ok, &c, 20000),
              "node 2 never had the record: %ld", c.status);
    json_decref(c.out);
    kz_cli_close(probe);
    /* That read's own record reaches the log on its own time: first it. */
    struct records_of first = {au, x, 1};
    cr_assert(kz_it_wait(all_records_in_log, &first, 30000));
    long long before = audit_count(au, x, "victim.read");
    cr_assert_eq(before, 1);

    int ok = read_together(path, "2");

    struct records_of a = {au, x, before + ok};
    cr_assert(kz_it_wait(all_records_in_log, &a, 60000),
              "only %lld of %d records reached the log",
              audit_count(au, x, "victim.read") - before, ok);
    struct verify_all v;
    cr_assert(kz_it_wait(chains_agree, &v, 30000),
              "the audit chains do not verify or differ between nodes");
    cr_assert_eq(audit_count(au, x, "victim.read"), before + ok,
                 "a record was appended twice");
    free(x);
    kz_cli_close(au);
    kz_cli_close(reg);
}

Test(links, linearizable_reads_together_leave_one_record_each, .init = setup,
     .fini = teardown, .timeout = 300)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    char *x = add_victim(reg, "{\"name\":\"高橋 次郎\",\"dob\":\"1939-12-24\"}");
    kz_cli *au = kz_it_client(&cluster, "auditor", NULL, 20000);
    char path[160];
    snprintf(path, sizeof path, "/v1/victims/%s", x);
    cr_assert_eq(audit_count(au, x, "victim.read"), 0);
    int ok = read_together(path, "123");
    /* Each answer came after its record was committed: all are there. */
    cr_assert_eq(audit_count(au, x, "victim.read"), ok,
                 "%lld records for %d reads", audit_count(au, x, "victim.read"),
                 ok);
    struct verify_all v;
    cr_assert(kz_it_wait(chains_agree, &v, 30000),
              "the audit chains do not verify or differ between nodes");
    free(x);
    kz_cli_close(au);
    kz_cli_close(reg);
}
