/*
 * test_partition.c — a node cut off from the majority keeps serving stale
 * reads (marked stale) and refuses linearizable reads and writes with 503
 * and Retry-After, in bounded time.
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

Test(partition, cut_off_node_serves_stale_reads_refuses_writes,
     .fini = teardown, .timeout = 300)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    kz_cli *w = kz_it_client(&cluster, "registrar", NULL, 20000);
    kz_cli_response r = kz_it_call(
        w, "POST", "/v1/victims",
        "{\"name\":\"孤立 試験\",\"dob\":\"1970-05-05\",\"sex\":\"female\"}");
    cr_assert_eq(r.status, 201);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    kz_cli_response_free(&r);
    kz_cli_close(w);

    /* Node 1 keeps running; the two others go away. Make sure node 1 has
     * the record before the cut (a linearizable read there). */
    kz_cli *n1 = kz_it_client(&cluster, "caseworker", "1", 10000);
    char path[160];
    snprintf(path, sizeof path, "/v1/victims/%s", id);
    r = kz_it_call(n1, "GET", path, NULL);
    cr_assert_eq(r.status, 200);
    kz_cli_response_free(&r);
    cr_assert_eq(kz_it_ctl(&cluster, "kill 2"), 0);
    cr_assert_eq(kz_it_ctl(&cluster, "kill 3"), 0);

    /* Stale read: served locally, marked. */
    snprintf(path, sizeof path, "/v1/victims/%s?consistency=stale", id);
    r = kz_it_call(n1, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "stale read on a cut-off node: %ld",
                 r.status);
    cr_assert_geq(r.stale_ms, 0, "no X-Kizuna-Stale-Ms on a stale read");
    cr_assert_geq(r.index, 1);
    kz_cli_response_free(&r);
    kz_cli_close(n1);

    /* Linearizable read and write: 503 with Retry-After, answered by the
     * node itself before the client's 8 s deadline (no hang). */
    kz_cli *c1 = kz_it_client(&cluster, "caseworker", "1", 8000);
    snprintf(path, sizeof path, "/v1/victims/%s", id);
    r = kz_it_call(c1, "GET", path, NULL);
    cr_assert_eq(r.status, 503, "linearizable read without quorum: %ld",
                 r.status);
    cr_assert_geq(r.retry_after_s, 0, "503 without Retry-After");
    kz_cli_response_free(&r);
    kz_cli_close(c1);

    kz_cli *w1 = kz_it_client(&cluster, "registrar", "1", 8000);
    r = kz_it_call(w1, "POST", "/v1/victims",
                   "{\"name\":\"届かない 書込\",\"sex\":\"male\"}");
    cr_assert_eq(r.status, 503, "write without quorum: %ld", r.status);
    cr_assert_geq(r.retry_after_s, 0, "503 without Retry-After");
    j = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(json_object_get(json_object_get(j, "error"), "code"));
    json_decref(j);
    kz_cli_response_free(&r);
    kz_cli_close(w1);

    /* The majority comes back: writes work again through node 1. */
    cr_assert_eq(kz_it_ctl(&cluster, "restart 2"), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader after heal");
    w1 = kz_it_client(&cluster, "registrar", "1", 20000);
    r = kz_it_call(w1, "POST", "/v1/victims",
                   "{\"name\":\"復旧 確認\",\"sex\":\"male\"}");
    cr_assert_eq(r.status, 201, "write after heal: %ld", r.status);
    kz_cli_response_free(&r);
    kz_cli_close(w1);
}
