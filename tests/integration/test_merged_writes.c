/*
 * test_merged_writes.c — registrations arriving together, on every node of
 * a real 3-node cluster, share raft entries (kz_cons_propose_batched,
 * CreateEach) and each caller still gets its own answer.
 *
 * 12 threads, 4 on each node, register 25 people each at once, every one
 * with an address no other has. Each 201 must carry the caller's own
 * person (the address sent), under an id no other answer has; the leader
 * must have merged registrations (its metrics); every record reads back as
 * registered; the shelter counts all of them; every registration has its
 * own victim.create audit record with its request id; and the three nodes'
 * digests are equal.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define THREADS 12
#define PER_THREAD 25
#define TOTAL (THREADS * PER_THREAD)

static struct kz_it_cluster cluster;

static void setup(void)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
}

static void teardown(void)
{
    kz_it_down(&cluster);
}

TestSuite(merged_writes, .init = setup, .fini = teardown, .timeout = 240);

struct reg {
    char address[96];
    long status;
    char id[64];
    char got_address[96];
    char request_id[64];
};

static struct reg regs[TOTAL];

static void *worker(void *arg)
{
    long t = (long)arg;
    char nodes[4];
    snprintf(nodes, sizeof nodes, "%d", 1 + (int)(t % 3));
    kz_cli *cli = kz_it_client(&cluster, "registrar", nodes, 30000);
    for (int i = 0; i < PER_THREAD; i++) {
        struct reg *g = &regs[t * PER_THREAD + i];
        snprintf(g->address, sizeof g->address, "宮城県石巻市並行町%ld-%d", t,
                 i);
        char body[256];
        snprintf(body, sizeof body,
                 "{\"name\":\"並行 花子\",\"name_kana\":\"へいこう はなこ\","
                 "\"shelter_id\":\"MW1\",\"address\":\"%s\"}",
                 g->address);
        kz_cli_response r;
        if (kz_cli_request(cli, "POST", "/v1/victims", NULL, body,
                           strlen(body), &r) != KZ_CLI_OK)
            continue; /* status stays 0: the main thread fails the test */
        g->status = r.status;
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *a = json_string_value(json_object_get(j, "address"));
        snprintf(g->id, sizeof g->id, "%s", id ? id : "");
        snprintf(g->got_address, sizeof g->got_address, "%s", a ? a : "");
        json_decref(j);
        snprintf(g->request_id, sizeof g->request_id, "%s", r.request_id);
        kz_cli_response_free(&r);
    }
    kz_cli_close(cli);
    return NULL;
}

/* A counter summed over the three nodes (each counts what it made as
 * leader; no node restarts here, so none goes back). */
static long long cluster_metric(const char *name)
{
    long long sum = 0;
    for (int i = 1; i <= 3; i++) {
        long long v = kz_it_metric(&cluster, i, name);
        cr_assert_geq(v, 0, "node %d has no %s", i, name);
        sum += v;
    }
    return sum;
}

static bool leader_merges(void *arg)
{
    (void)arg;
    long long sum = 0;
    for (int i = 1; i <= 3; i++) {
        long long v = kz_it_metric(&cluster, i, "kizuna_raft_merging_writes");
        sum += v > 0 ? v : 0;
    }
    return sum == 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(merged_writes, each_caller_gets_its_own_registration)
{
    cr_assert_geq(kz_it_leader(&cluster), 1, "no leader");
    /* The leader merges once every follower has said it can apply merged
     * registrations (its status query, every second). */
    cr_assert(kz_it_wait(leader_merges, NULL, 10000),
              "the leader never started merging registrations");
    long long entries0 =
        cluster_metric("kizuna_raft_merged_write_entries_total");
    long long merged0 = cluster_metric("kizuna_raft_merged_writes_total");
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, worker, (void *)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);

    char *ids[TOTAL];
    for (int i = 0; i < TOTAL; i++) {
        struct reg *g = &regs[i];
        cr_assert_eq(g->status, 201, "registration %d: status %ld", i,
                     g->status);
        cr_assert_str_eq(g->got_address, g->address,
                         "registration %d was answered with another's", i);
        cr_assert_str_not_empty(g->id);
        ids[i] = g->id;
    }
    qsort(ids, TOTAL, sizeof *ids, cmp_str);
    for (int i = 1; i < TOTAL; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "two answers name one id");

    /* The leader (whichever it was) merged some of them. */
    long long entries =
        cluster_metric("kizuna_raft_merged_write_entries_total") - entries0;
    long long merged =
        cluster_metric("kizuna_raft_merged_writes_total") - merged0;
    cr_assert_gt(entries, 0, "no registrations were merged");
    cr_assert_geq(merged, 2 * entries);
    cr_assert_leq(merged, TOTAL);

    /* Each reads back as registered, from any node. */
    kz_cli *reg = kz_it_client(&cluster, "caseworker", NULL, 30000);
    for (int i = 0; i < TOTAL; i += 7) {
        char path[128];
        snprintf(path, sizeof path, "/v1/victims/%s", regs[i].id);
        kz_cli_response r = kz_it_call(reg, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "GET %s: %ld", path, r.status);
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        cr_assert_str_eq(json_string_value(json_object_get(j, "address")),
                         regs[i].address);
        json_decref(j);
        kz_cli_response_free(&r);
    }
    /* The shelter counts every one (counters summed across entries). */
    kz_cli_response r =
        kz_it_call(reg, "GET", "/v1/shelters/MW1/summary", NULL);
    cr_assert_eq(r.status, 200, "shelter: %ld %.*s", r.status,
                 (int)r.body_len, r.body);
    json_t *s = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(s, "total")), TOTAL,
                 "shelter: %.*s",
                 (int)r.body_len, r.body);
    json_decref(s);
    kz_cli_response_free(&r);
    kz_cli_close(reg);

    /* One victim.create record for each, with its request id and the id
     * it answered. */
    kz_cli *op = kz_it_client(&cluster, "auditor", NULL, 30000);
    int found = 0;
    char path[160] = "/v1/audit?limit=1000";
    for (;;) {
        r = kz_it_call(op, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "audit: %ld %.*s", r.status,
                     (int)r.body_len, r.body);
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        json_t *recs = json_object_get(j, "items");
        size_t k;
        json_t *x;
        json_array_foreach(recs, k, x) {
            const char *act = json_string_value(json_object_get(x, "action"));
            const char *rid =
                json_string_value(json_object_get(x, "request_id"));
            const char *sub =
                json_string_value(json_object_get(x, "subject"));
            if (act == NULL || strcmp(act, "victim.create") != 0 || !rid)
                continue;
            for (int i = 0; i < TOTAL; i++)
                if (strcmp(regs[i].request_id, rid) == 0) {
                    cr_assert_str_eq(sub ? sub : "", regs[i].id);
                    found++;
                }
        }
        json_int_t next = json_integer_value(json_object_get(j, "next_after"));
        if (next == 0) {
            json_decref(j);
            kz_cli_response_free(&r);
            break;
        }
        snprintf(path, sizeof path, "/v1/audit?limit=1000&after=%lld",
                 (long long)next);
        json_decref(j);
        kz_cli_response_free(&r);
    }
    kz_cli_close(op);
    cr_assert_eq(found, TOTAL, "audit records of the registrations: %d",
                 found);
    cr_assert(kz_it_digests_equal(&cluster, 3), "replicas differ");
}
