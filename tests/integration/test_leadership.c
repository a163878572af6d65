/*
 * Leadership: POST /v1/cluster/leader (to a node, to a region) and the
 * preferred leader region. Three nodes in regions a, b, c, with c
 * preferred and a hold-down of 2 s: leadership settles in c; a manual
 * transfer away is undone after the hold-down; after c's node is killed,
 * writes go on elsewhere and leadership comes back once it is healthy. The
 * followers of a killed leader count its closed connection (their shortened
 * election timeout).
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

static bool leader_is(void *arg)
{
    return kz_it_leader(&cluster) == *(int *)arg;
}

static bool leader_not(void *arg)
{
    int l = kz_it_leader(&cluster);
    return l != 0 && l != *(int *)arg;
}

/* kizuna CLI as the operator on every node; exit status, output in *out. */
static void write_one(kz_cli *w)
{
    kz_cli_response r = kz_it_call(
        w, "POST", "/v1/victims",
        "{\"name\":\"指導 試験\",\"name_kana\":\"シドウ シケン\","
        "\"dob\":\"1975-05-05\",\"sex\":\"male\"}");
    cr_assert_eq(r.status, 201, "write: %ld", r.status);
    kz_cli_response_free(&r);
}

Test(leadership, transfer_and_preferred_region, .fini = teardown,
     .timeout = 300)
{
    static const char *const sets[] = {"preferred_leader_region=c",
                                       "leader_hold_down_s=2", NULL};
    kz_it_up(&cluster, "a:1,b:1,c:1", sets);
    int three = 3, one = 1;
    cr_assert(kz_it_wait(leader_is, &three, 30000),
              "leadership did not settle in the preferred region (node 3)");
    kz_cli *op = kz_it_client(&cluster, "operator", NULL, 20000);
    kz_cli *w = kz_it_client(&cluster, "registrar", NULL, 20000);
    write_one(w);

    /* Refusals. */
    char code[64];
    kz_cli_response r =
        kz_it_call(op, "POST", "/v1/cluster/leader", "{\"id\": 9}");
    cr_assert_eq(r.status, 404);
    kz_cli_response_free(&r);
    r = kz_it_call(op, "POST", "/v1/cluster/leader", "{\"region\": \"z\"}");
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(kz_it_error_code(&r, code, sizeof code),
                     "unknown_region");
    kz_cli_response_free(&r);
    r = kz_it_call(op, "POST", "/v1/cluster/leader",
                   "{\"id\": 1, \"region\": \"a\"}");
    cr_assert_eq(r.status, 400);
    kz_cli_response_free(&r);

    /* A transfer to node 1, through whichever node answers. */
    r = kz_it_call(op, "POST", "/v1/cluster/leader", "{\"id\": 1}");
    cr_assert_eq(r.status, 200, "%ld %.*s", r.status, (int)r.body_len,
                 r.body);
    kz_cli_response_free(&r);
    cr_assert(kz_it_wait(leader_not, &three, 10000), "node 3 still leads");
    write_one(w);
    /* After the hold-down, back to the preferred region. */
    cr_assert(kz_it_wait(leader_is, &three, 30000),
              "leadership did not return to region c");

    /* A transfer by region; the leader already there: a no-op. */
    r = kz_it_call(op, "POST", "/v1/cluster/leader", "{\"region\": \"c\"}");
    cr_assert_eq(r.status, 200);
    kz_cli_response_free(&r);
    char *out = NULL;
    int ex = kz_it_cli(&cluster, "operator",
                       "cluster transfer-leader --region a", &out);
    cr_assert_eq(ex, 0, "kizuna cluster transfer-leader: exit %d: %s", ex,
                 out);
    free(out);
    cr_assert(kz_it_wait(leader_is, &one, 10000), "region a did not lead");
    cr_assert(kz_it_wait(leader_is, &three, 30000), "not back in c");

    /* Region c lost: writes continue elsewhere; once its node is back and
     * caught up, leadership returns. The leader is killed (SIGKILL): both
     * followers see its connections close and shorten their election
     * timeout, which nothing before did (transfers close no connection). */
    static const char *const lost = "kizuna_raft_leader_connection_lost_total";
    for (int i = 1; i <= 2; i++)
        cr_assert_eq(kz_it_metric(&cluster, i, lost), 0, "node %d", i);
    cr_assert_eq(kz_it_ctl(&cluster, "kill 3"), 0);
    cr_assert(kz_it_wait(leader_not, &three, 30000), "no failover");
    for (int i = 1; i <= 2; i++)
        cr_assert_geq(kz_it_metric(&cluster, i, lost), 1, "node %d", i);
    for (int i = 0; i < 5; i++)
        write_one(w);
    cr_assert_eq(kz_it_ctl(&cluster, "restart 3"), 0);
    cr_assert(kz_it_wait(leader_is, &three, 60000),
              "leadership did not return after node 3 came back");
    write_one(w);
    kz_cli_close(w);
    kz_cli_close(op);
}
