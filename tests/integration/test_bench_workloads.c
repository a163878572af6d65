/*
 * test_bench_workloads.c — the built `kizuna-bench` binary's search, payout
 * and day workloads against a real 3-node cluster (deploy/local-cluster via
 * the harness), each a short run (--requests) with --json, judged by what
 * the summary says: requests succeeded, none failed in any way (no HTTP
 * error, transport error or bad body, which for search means every
 * full-name query found the person asked for), and the fields each
 * workload adds (search, payouts, by_kind) are there and add up. A second
 * payout run on the same cluster must pay new households (its household
 * ids are its own), never meet a 409. The day runs once more with
 * citizens' cards so identity checks join the mix. Nothing here times
 * anything: speed is the benchmark's business, not the test's.
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
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);
}

static void teardown(void)
{
    kz_it_down(&cluster);
}

/* A new cluster makes its data key just after electing a leader and
 * answers writes 503 until then: the runs start once a registrar's write
 * goes through (PUT of a shelter is idempotent, so polling is harmless). */
static bool writes_accepted(void *arg)
{
    kz_cli *reg = arg;
    kz_cli_response r = kz_it_call(
        reg, "PUT", "/v1/shelters/it-bench-01",
        "{\"name\":\"試験避難所\",\"address\":\"宮城県石巻市\",\"capacity\":10}");
    bool ok = r.status == 200 || r.status == 201;
    kz_cli_response_free(&r);
    return ok;
}

/* Runs kizuna-bench with ARGS against the cluster (its endpoints file and
 * PKI), --json --quiet; returns its exit status and the parsed summary in
 * *out (NULL when stdout was not one JSON object). Its stderr is kept in
 * the cluster's directory and printed when the run fails. */
static int bench(const char *args, json_t **out)
{
    char cmd[2048], errpath[300];
    snprintf(errpath, sizeof errpath, "%s/bench.stderr", cluster.dir);
    snprintf(cmd, sizeof cmd,
             "'%s/kizuna-bench' --endpoints '%s/endpoints' --pki '%s/pki' "
             "--connections 4 --timeout 20 --json --quiet %s 2>'%s'",
             KZ_BIN_DIR, cluster.dir, cluster.dir, args, errpath);
    char *buf;
    int code = kz_it_run(cmd, &buf);
    *out = json_loads(buf, 0, NULL);
    if (code != 0 || *out == NULL) {
        char *err = kz_it_slurp(errpath);
        fprintf(stderr, "kizuna-bench %s: exit %d\nstdout: %s\nstderr: %s\n",
                args, code, buf, err ? err : "");
        free(err);
    }
    free(buf);
    return code;
}

static long long num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* The checks every run shares: it succeeded, sent from least to most
 * requests, and nothing failed. */
static void clean_run(const json_t *j, const char *workload, long long least,
                      long long most)
{
    const json_t *e = json_object_get(j, "errors");
    cr_assert_str_eq(json_string_value(json_object_get(j, "workload")),
                     workload);
    cr_assert(num(j, "requests") >= least && num(j, "requests") <= most,
              "%s: %lld requests", workload, num(j, "requests"));
    cr_assert_gt(num(j, "ok"), 0);
    cr_assert_eq(num(j, "ok"), num(j, "requests"), "%s: first error %s",
                 workload,
                 json_string_value(json_object_get(e, "first")));
    cr_assert_eq(num(e, "http"), 0);
    cr_assert_eq(num(e, "transport"), 0);
    cr_assert_eq(num(e, "bad_body"), 0);
    cr_assert_gt(num(json_object_get(j, "preload"), "records"), 0);
}

static void check_search(const json_t *j, long long sent)
{
    const json_t *s = json_object_get(j, "search"), *q;
    const char *key;
    json_t *v;
    long long total = 0;
    cr_assert_not_null(s, "no search object");
    q = json_object_get(s, "by_query");
    cr_assert_eq(json_object_size(q), 5);
    json_object_foreach((json_t *)q, key, v)
        total += json_integer_value(v);
    cr_assert_eq(total, sent);
    /* Full-name queries looked at found their person every time. */
    cr_assert_gt(num(s, "checked"), 0);
    cr_assert_eq(num(s, "found"), num(s, "checked"));
}

static void check_payouts(const json_t *j, long long *paid)
{
    const json_t *p = json_object_get(j, "payouts");
    cr_assert_not_null(p, "no payouts object");
    cr_assert_gt(num(p, "households"), 0);
    cr_assert_gt(num(p, "planned"), 0);
    cr_assert_eq(num(p, "paid"), num(p, "sent"));
    cr_assert_eq(num(p, "already_paid"), 0);
    cr_assert_eq(num(p, "refused"), 0);
    cr_assert_gt(num(p, "yen"), 0);
    *paid = num(p, "paid");
}

Test(bench_workloads, search_payout_and_day, .init = setup, .fini = teardown,
     .timeout = 600)
{
    json_t *j, *bk;
    long long paid, first_paid;

    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 5000);
    cr_assert(kz_it_wait(writes_accepted, reg, 60000),
              "the cluster never accepted a write");
    kz_cli_close(reg);

    /* search: every answer a page, every full-name query finding its
     * person. */
    cr_assert_eq(bench("--preload 100 --requests 200 search", &j), 0);
    clean_run(j, "search", 200, 200);
    check_search(j, 200);
    json_decref(j);

    /* payout: the bench gives the program its disaster date, then pays
     * each planned payout once. */
    cr_assert_eq(bench("--preload 150 --requests 40 payout", &j), 0);
    clean_run(j, "payout", 40, 40);
    check_payouts(j, &first_paid);
    cr_assert_eq(first_paid, 40);
    cr_assert(json_is_true(
        json_object_get(json_object_get(j, "payouts"), "program_set")));
    json_decref(j);
    /* Again: the date is there now, and the new run's households are
     * its own, so nothing is already paid. The plan is smaller than the
     * requests asked: the run stops when it runs out, and says so. */
    cr_assert_eq(bench("--preload 30 --requests 1000 payout", &j), 0);
    const json_t *p = json_object_get(j, "payouts");
    cr_assert(json_is_false(json_object_get(p, "program_set")));
    cr_assert(json_is_true(json_object_get(p, "ran_out")));
    clean_run(j, "payout", num(p, "planned"), num(p, "planned"));
    check_payouts(j, &paid);
    cr_assert_eq(paid, num(p, "planned"));
    json_decref(j);

    /* day: every kind of the default mix but identity, each counted in
     * by_kind, the kinds adding up to the whole. */
    cr_assert_eq(bench("--preload 200 --requests 400 day", &j), 0);
    clean_run(j, "day", 400, 400);
    bk = json_object_get(j, "by_kind");
    cr_assert_not_null(bk, "no by_kind");
    long long sum = 0;
    const char *kinds[] = {"read", "search", "write", "note", "payout"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const json_t *k = json_object_get(bk, kinds[i]);
        cr_assert_not_null(k, "by_kind has no %s", kinds[i]);
        cr_assert_gt(num(k, "ok"), 0, "no %s succeeded", kinds[i]);
        cr_assert(json_is_number(json_object_get(k, "ops_s")));
        cr_assert(json_is_number(json_object_get(k, "p50_ms")));
        cr_assert(json_is_number(json_object_get(k, "p99_ms")));
        sum += num(k, "requests");
    }
    cr_assert_eq(num(json_object_get(bk, "identity"), "requests"), 0);
    cr_assert_eq(sum, 400);
    check_search(j, num(json_object_get(bk, "search"), "requests"));
    check_payouts(j, &paid);
    cr_assert_eq(paid, num(json_object_get(bk, "payout"), "ok"));
    json_decref(j);

    /* With citizens' cards (bound to people the runs registered),
     * identity checks join the day. A check is two requests counted as
     * one; --requests counts both while the challenge is in flight, so
     * a run may end up to one per connection (4) short. */
    cr_assert_eq(kz_it_ctl(&cluster, "cards 2"), 0);
    char args[600];
    snprintf(args, sizeof args,
             "--preload 50 --requests 200 --cards '%s/pki/cards' "
             "--mix read=5,identity=5 day",
             cluster.dir);
    cr_assert_eq(bench(args, &j), 0);
    clean_run(j, "day", 196, 200);
    bk = json_object_get(j, "by_kind");
    cr_assert_gt(num(json_object_get(bk, "identity"), "ok"), 0);
    cr_assert_eq(num(json_object_get(bk, "identity"), "ok") +
                     num(json_object_get(bk, "read"), "ok"),
                 num(j, "ok"));
    cr_assert_null(json_object_get(j, "payouts"));
    json_decref(j);
}
