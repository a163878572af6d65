/*
 * test_replication.c — a 3-node cluster on loopback survives kill -9 of its
 * leader without losing an acknowledged write, and restarted nodes catch up
 * by log and by snapshot.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sample.h"

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

/* Realistic records from the sample generator (seeded: reproducible). */
static kz_cli_sample gen;
static bool gen_ready;

static char *create_victim(kz_cli *cli, int i)
{
    (void)i;
    if (!gen_ready) {
        kz_cli_sample_init(&gen, 20110311, 8);
        gen_ready = true;
    }
    json_t *rec;
    cr_assert_eq(kz_cli_sample_victim(&gen, &rec), 0);
    char *body = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    kz_cli_response r = kz_it_call(cli, "POST", "/v1/victims", body);
    free(body);
    char *id = NULL;
    if (r.status == 201) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        cr_assert_not_null(j, "201 without JSON");
        id = strdup(json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    kz_cli_response_free(&r);
    return id;
}

struct catchup {
    struct kz_it_cluster *c;
    int node;
    long long target;
};

static bool caught_up(void *arg)
{
    struct catchup *k = arg;
    return kz_it_applied(k->c, k->node) >= k->target;
}

static bool has_leader(void *arg)
{
    return kz_it_leader(arg) != 0;
}

/* Highest applied index reported by any live node. */
static long long top_applied(struct kz_it_cluster *c)
{
    long long top = -1;
    for (int i = 1; i <= c->n; i++) {
        long long a = kz_it_applied(c, i);
        if (a > top)
            top = a;
    }
    return top;
}

/* Every id must be readable on every node (stale reads: local state). */
static void assert_everywhere(struct kz_it_cluster *c, char **ids, int n)
{
    long long target = top_applied(c);
    for (int node = 1; node <= c->n; node++) {
        struct catchup k = {c, node, target};
        if (!kz_it_wait(caught_up, &k, 60000)) {
            char path[300];
            snprintf(path, sizeof path, "%s/node%d/kizunad.log", c->dir, node);
            char *log = kz_it_slurp(path);
            fprintf(stderr, "--- node %d log:\n%s\n", node, log ? log : "");
            free(log);
            cr_assert_fail("node %d did not catch up to index %lld (at %lld)",
                           node, target, kz_it_applied(c, node));
        }
        char nid[8];
        snprintf(nid, sizeof nid, "%d", node);
        kz_cli *cli = kz_it_client(c, "caseworker", nid, 5000);
        for (int i = 0; i < n; i++) {
            char path[128];
            snprintf(path, sizeof path, "/v1/victims/%s?consistency=stale",
                     ids[i]);
            kz_cli_response r = kz_it_call(cli, "GET", path, NULL);
            cr_assert_eq(r.status, 200,
                         "acknowledged write %s missing on node %d (%ld)",
                         ids[i], node, r.status);
            cr_assert_str_eq(r.node, nid);
            kz_cli_response_free(&r);
        }
        kz_cli_close(cli);
    }
}

Test(replication, acked_writes_survive_leader_kill, .fini = teardown,
     .timeout = 300)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    int leader = kz_it_leader(&cluster);
    kz_cli *w = kz_it_client(&cluster, "registrar", NULL, 20000);
    char *ids[150];
    int acked = 0, total = 150;
    for (int i = 0; i < total; i++) {
        if (i == 50) {
            char a[32];
            snprintf(a, sizeof a, "kill %d", leader);
            cr_assert_eq(kz_it_ctl(&cluster, a), 0, "kill leader");
        }
        char *id = create_victim(w, i);
        if (id != NULL)
            ids[acked++] = id;
    }
    kz_cli_close(w);
    /* Writes in doubt at the moment of the kill may fail; the rest must
     * succeed through the new leader. */
    cr_assert_geq(acked, total - 5, "only %d of %d writes acknowledged", acked,
                  total);
    int new_leader = kz_it_leader(&cluster);
    cr_assert(new_leader != 0 && new_leader != leader,
              "leadership did not move (%d -> %d)", leader, new_leader);
    char a[32];
    snprintf(a, sizeof a, "restart %d", leader);
    cr_assert_eq(kz_it_ctl(&cluster, a), 0, "restart old leader");
    assert_everywhere(&cluster, ids, acked);
    for (int i = 0; i < acked; i++)
        free(ids[i]);
}

/* Every node's data/snapshots holds a complete checkpoint (a directory
 * named by 20 digits). The follower that never lagged can only have one by
 * taking it itself. */
static bool every_node_snapshotted(void *arg)
{
    (void)arg;
    for (int n = 1; n <= 3; n++) {
        char path[300];
        snprintf(path, sizeof path, "%s/node%d/data/snapshots", cluster.dir,
                 n);
        DIR *d = opendir(path);
        bool found = false;
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL)
            if (strlen(e->d_name) == 20 &&
                strspn(e->d_name, "0123456789") == 20)
                found = true;
        if (d != NULL)
            closedir(d);
        if (!found)
            return false;
    }
    return true;
}

static void catch_up_case(const char *const *sets, bool expect_snapshot)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", sets);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    int leader = kz_it_leader(&cluster);
    int follower = leader % 3 + 1;
    char a[32];
    snprintf(a, sizeof a, "kill %d", follower);
    cr_assert_eq(kz_it_ctl(&cluster, a), 0);
    kz_cli *w = kz_it_client(&cluster, "registrar", NULL, 20000);
    int n = expect_snapshot ? 120 : 40;
    char **ids = calloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n; i++) {
        ids[i] = create_victim(w, i);
        cr_assert_not_null(ids[i], "write %d failed with 2 of 3 nodes up", i);
    }
    kz_cli_close(w);
    snprintf(a, sizeof a, "restart %d", follower);
    cr_assert_eq(kz_it_ctl(&cluster, a), 0);
    assert_everywhere(&cluster, ids, n);
    char path[300];
    snprintf(path, sizeof path, "%s/node%d/kizunad.log", cluster.dir,
             follower);
    char *log = kz_it_slurp(path);
    cr_assert_not_null(log);
    bool by_snapshot = strstr(log, " msg=\"installing snapshot\" ") != NULL;
    cr_assert_eq(by_snapshot, expect_snapshot,
                 "node %d caught up %s, expected %s", follower,
                 by_snapshot ? "by snapshot" : "by log",
                 expect_snapshot ? "by snapshot" : "by log");
    /* It had no checkpoint that recent: it fetched one from a peer over
     * the peer link (raft carried only the descriptor). */
    if (expect_snapshot)
        cr_assert_not_null(strstr(log, " msg=\"snapshot fetched\" "), "%s",
                           log);
    /* Followers that are caught up take snapshots too (raft 0.22 holds the
     * log since the last snapshot in memory): more writes, and every node
     * ends up with a checkpoint of its own. */
    if (expect_snapshot) {
        kz_cli *w2 = kz_it_client(&cluster, "registrar", NULL, 20000);
        for (int i = 0; i < 60; i++) {
            char *id = create_victim(w2, 1000 + i);
            cr_assert_not_null(id);
            free(id);
        }
        kz_cli_close(w2);
        cr_assert(kz_it_wait(every_node_snapshotted, NULL, 30000),
                  "a follower took no snapshot of its own");
    }
    free(log);
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

Test(replication, restarted_follower_catches_up_by_log, .fini = teardown,
     .timeout = 300)
{
    catch_up_case(NULL, false);
}

Test(replication, lagging_follower_catches_up_by_snapshot, .fini = teardown,
     .timeout = 300)
{
    static const char *const sets[] = {"snapshot_threshold=16",
                                       "snapshot_trailing=4", NULL};
    catch_up_case(sets, true);
}
