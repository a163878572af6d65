/*
 * Membership changes on a real cluster: three members in three regions and
 * a spare (node 4, configured everywhere as "join"). The spare is added as
 * a voter (after the region check refuses it without force), catches up,
 * then counts: with node 2 killed, writes need node 4's acknowledgement.
 * Then it is removed with the CLI, and the leader's own removal is refused.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "sample.h"

static struct kz_it_cluster cluster;
static kz_cli_sample gen;

static void teardown(void)
{
    kz_it_down(&cluster);
}

/* Registers a sample victim; returns its id. A write left in doubt (no
 * answer, or a 503 while leadership moves) is sent again, at most three
 * times: this test is about membership, and a duplicate registration does
 * not matter to it. */
static char *create_victim(kz_cli *cli)
{
    json_t *rec;
    cr_assert_eq(kz_cli_sample_victim(&gen, &rec), 0);
    char *body = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    kz_cli_response r = kz_it_call(cli, "POST", "/v1/victims", body);
    for (int tries = 1; tries < 3 && (r.status == 0 || r.status == 503);
         tries++) {
        kz_cli_response_free(&r);
        r = kz_it_call(cli, "POST", "/v1/victims", body);
    }
    free(body);
    cr_assert_eq(r.status, 201, "registration: %ld %.*s", r.status,
                 (int)r.body_len, r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(j);
    char *id = strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    kz_cli_response_free(&r);
    return id;
}

/* Field key ("role", "region", "address"...) of node id in GET /v1/cluster
 * as node `from` answers it; "" when absent. */
static void field_of(int from, int id, const char *key, char *out, size_t len)
{
    char nodes[8];
    snprintf(nodes, sizeof nodes, "%d", from);
    kz_cli *op = kz_it_client(&cluster, "operator", nodes, 3000);
    kz_cli_response r = kz_it_call(op, "GET", "/v1/cluster", NULL);
    out[0] = '\0';
    if (r.status == 200) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "nodes"), i, v)
        {
            const char *s = json_string_value(json_object_get(v, key));
            if (json_integer_value(json_object_get(v, "id")) == id)
                snprintf(out, len, "%s", s ? s : "");
        }
        json_decref(j);
    }
    kz_cli_response_free(&r);
    kz_cli_close(op);
}

/* The role node id has in GET /v1/cluster as node `from` sees it. */
static void role_of(int from, int id, char *out, size_t len)
{
    field_of(from, id, "role", out, len);
}

static bool members_has(const kz_cli_response *r, int id, const char *role)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    bool found = false;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, "members"), i, v)
    {
        if (json_integer_value(json_object_get(v, "id")) == id &&
            (role == NULL ||
             strcmp(json_string_value(json_object_get(v, "role")), role) == 0))
            found = true;
    }
    json_decref(j);
    return found;
}

struct caught {
    int node;
    long long target;
};

static bool caught_up(void *arg)
{
    struct caught *k = arg;
    return kz_it_applied(&cluster, k->node) >= k->target;
}



/* Node 4's role as nodes 1..nodes each see it. */
struct role_on {
    int nodes;
    const char *role;
};

static bool node4_role_everywhere(void *arg)
{
    const struct role_on *w = arg;
    char role[16];
    for (int i = 1; i <= w->nodes; i++) {
        role_of(i, 4, role, sizeof role);
        if (strcmp(role, w->role) != 0)
            return false;
    }
    return true;
}

static struct role_on voter_on_3 = {3, "voter"}, gone_on_3 = {3, "none"},
                      standby_on_4 = {4, "standby"}, voter_on_4 = {4, "voter"};

static bool leader_among_members(void *arg)
{
    (void)arg;
    int l = kz_it_leader(&cluster);
    return l >= 1 && l <= 3;
}

Test(membership, add_catch_up_vote_remove, .fini = teardown, .timeout = 600)
{
    kz_cli_sample_init(&gen, 20260311, 8);
    kz_it_up_spares(&cluster, "tokyo:1,osaka:1,sapporo:1", "osaka:1", NULL);
    cr_assert(kz_it_wait(leader_among_members, NULL, 30000), "no leader");
    cr_assert_eq(kz_it_ctl(&cluster, "wait --all"), 0, "members not ready");
    kz_cli *w = kz_it_client(&cluster, "registrar", "1,2,3", 20000);
    kz_cli *op = kz_it_client(&cluster, "operator", "1,2,3", 90000);
    char *ids[40];
    for (int i = 0; i < 30; i++)
        ids[i] = create_victim(w);

    /* Refusals, before anything changes. */
    char code[64];
    kz_cli_response r = kz_it_call(op, "POST", "/v1/cluster/nodes",
                                   "{\"id\": 9}");
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(kz_it_error_code(&r, code, sizeof code),
                     "unknown_node");
    kz_cli_response_free(&r);
    r = kz_it_call(op, "POST", "/v1/cluster/nodes",
                   "{\"id\": 4, \"role\": \"boss\"}");
    cr_assert_eq(r.status, 400);
    kz_cli_response_free(&r);
    r = kz_it_call(op, "DELETE", "/v1/cluster/nodes/x4", NULL);
    cr_assert_eq(r.status, 404);
    kz_cli_response_free(&r);
    /* Two voters in osaka out of four: losing osaka leaves no majority. */
    r = kz_it_call(op, "POST", "/v1/cluster/nodes", "{\"id\": 4}");
    cr_assert_eq(r.status, 409, "%ld %.*s", r.status, (int)r.body_len,
                 r.body);
    cr_assert_str_eq(kz_it_error_code(&r, code, sizeof code),
                     "would_lose_region_tolerance");
    kz_cli_response_free(&r);
    char role[16];
    role_of(1, 4, role, sizeof role);
    cr_assert_str_eq(role, "none", "a refused change changed nothing");

    /* Start the spare and add it, knowingly. */
    cr_assert_eq(kz_it_ctl(&cluster, "restart 4"), 0);
    r = kz_it_call(op, "POST", "/v1/cluster/nodes?force=true",
                   "{\"id\": 4, \"role\": \"voter\"}");
    cr_assert_eq(r.status, 200, "%ld %.*s", r.status, (int)r.body_len,
                 r.body);
    cr_assert(members_has(&r, 4, "voter"), "%.*s", (int)r.body_len, r.body);
    kz_cli_response_free(&r);
    cr_assert(kz_it_wait(node4_role_everywhere, &voter_on_3, 30000),
              "every member sees node 4 as a voter");
    /* Adding it again is a no-op that succeeds. */
    r = kz_it_call(op, "POST", "/v1/cluster/nodes?force=true", "{\"id\": 4}");
    cr_assert_eq(r.status, 200);
    kz_cli_response_free(&r);

    /* It caught up: everything written before it joined is there. */
    long long top = kz_it_applied(&cluster, kz_it_leader(&cluster));
    struct caught k = {4, top};
    cr_assert(kz_it_wait(caught_up, &k, 60000), "node 4 did not catch up");
    kz_cli *r4 = kz_it_client(&cluster, "caseworker", "4", 5000);
    for (int i = 0; i < 30; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/victims/%s?consistency=stale",
                 ids[i]);
        r = kz_it_call(r4, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s missing on the new node", ids[i]);
        cr_assert_str_eq(r.node, "4");
        kz_cli_response_free(&r);
    }
    kz_cli_close(r4);

    /* It votes: four voters need three, so with node 2 down every write
     * needs node 4 (unless node 2 led: then 1, 3 and 4 elect). */
    cr_assert_eq(kz_it_ctl(&cluster, "kill 2"), 0);
    kz_cli *w134 = kz_it_client(&cluster, "registrar", "1,3,4", 30000);
    for (int i = 30; i < 40; i++)
        ids[i] = create_victim(w134);
    kz_cli_close(w134);
    cr_assert_eq(kz_it_ctl(&cluster, "restart 2"), 0);

    /* Remove it with the CLI; the configuration no longer has it. Node 4
     * may have won the election while node 2 was down: a leader cannot
     * remove itself, so the operator moves leadership first, as the 409
     * says. */
    char *out = NULL;
    int ex;
    if (kz_it_leader(&cluster) == 4) {
        ex = kz_it_cli(&cluster, "operator", "cluster transfer-leader --to 1",
                       &out);
        cr_assert_eq(ex, 0, "transfer-leader: exit %d: %s", ex, out);
        free(out);
        out = NULL;
    }
    ex = kz_it_cli(&cluster, "operator", "cluster remove 4", &out);
    cr_assert_eq(ex, 0, "kizuna cluster remove 4: exit %d: %s", ex, out);
    cr_assert(strstr(out, "\"members\"") != NULL, "%s", out);
    free(out);
    /* Committed when the CLI returned; the followers learn it next. */
    cr_assert(kz_it_wait(node4_role_everywhere, &gone_on_3, 10000),
              "a member still lists node 4");
    r = kz_it_call(op, "DELETE", "/v1/cluster/nodes/4", NULL);
    cr_assert_eq(r.status, 200, "removing a non-member succeeds");
    cr_assert(!members_has(&r, 4, NULL));
    kz_cli_response_free(&r);
    cr_assert_eq(kz_it_ctl(&cluster, "kill 4"), 0);

    /* The leader cannot remove itself, even with force. */
    int leader = 0;
    for (int tries = 0; tries < 100 && (leader < 1 || leader > 3); tries++)
        leader = kz_it_leader(&cluster);
    char path[64];
    snprintf(path, sizeof path, "/v1/cluster/nodes/%d?force=true", leader);
    r = kz_it_call(op, "DELETE", path, NULL);
    cr_assert_eq(r.status, 409, "%ld %.*s", r.status, (int)r.body_len,
                 r.body);
    cr_assert_str_eq(kz_it_error_code(&r, code, sizeof code),
                     "leader_cannot_leave");
    kz_cli_response_free(&r);

    /* Writes go on with the three members, and every write is on each. */
    for (int i = 0; i < 40; i++) {
        char p2[128];
        snprintf(p2, sizeof p2, "/v1/victims/%s", ids[i]);
        kz_cli *cw = kz_it_client(&cluster, "caseworker", "1,2,3", 20000);
        r = kz_it_call(cw, "GET", p2, NULL);
        cr_assert_eq(r.status, 200, "%s lost", ids[i]);
        kz_cli_response_free(&r);
        kz_cli_close(cw);
        free(ids[i]);
    }
    char *extra = create_victim(w);
    free(extra);
    kz_cli_close(op);
    kz_cli_close(w);
}

/* GET /v1/cluster on node `from`: node id's region and API address ("" when
 * not listed). */
static void book_of(int from, int id, char *region, char *address, size_t len)
{
    field_of(from, id, "region", region, len);
    field_of(from, id, "address", address, len);
}


static bool same_state(void *arg)
{
    (void)arg;
    return kz_it_digests_equal(&cluster, 4);
}

/* Node 4 is in no member's file, and its own file lists no other node:
 * `kizuna cluster add 4 --address --api --region` puts it in the
 * replicated address book, then adds it. The log is compacted first
 * (snapshot_threshold 16), so it must fetch a checkpoint from peers it
 * only knows from raft's configuration and the leader's messages. */
Test(membership, add_by_address, .fini = teardown, .timeout = 600)
{
    static const char *const sets[] = {"snapshot_threshold=16",
                                       "snapshot_trailing=8", NULL};
    kz_cli_sample_init(&gen, 20261206, 8);
    kz_it_up_unlisted(&cluster, "tokyo:1,osaka:1,sapporo:1", "sapporo:1",
                      sets);
    cr_assert(kz_it_wait(leader_among_members, NULL, 30000), "no leader");
    cr_assert_eq(kz_it_ctl(&cluster, "wait --all"), 0, "members not ready");
    kz_cli *w = kz_it_client(&cluster, "registrar", "1,2,3", 20000);
    kz_cli *op = kz_it_client(&cluster, "operator", "1,2,3", 90000);
    char *ids[41];
    for (int i = 0; i < 40; i++)
        ids[i] = create_victim(w);

    /* Refusals: unknown without addresses, half the addresses, a bad
     * region, another node's raft address. */
    char code[64], body[512];
    kz_cli_response r = kz_it_call(op, "POST", "/v1/cluster/nodes",
                                   "{\"id\": 4}");
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(kz_it_error_code(&r, code, sizeof code), "unknown_node");
    kz_cli_response_free(&r);
    r = kz_it_call(op, "POST", "/v1/cluster/nodes",
                   "{\"id\": 4, \"region\": \"sapporo\"}");
    cr_assert_eq(r.status, 400);
    kz_cli_response_free(&r);
    snprintf(body, sizeof body,
             "{\"id\": 4, \"region\": \"札幌\", \"raft_address\": "
             "\"%s.14:%d\", \"api_address\": \"%s.14:%d\"}",
             cluster.net, cluster.port + 1, cluster.net, cluster.port);
    r = kz_it_call(op, "POST", "/v1/cluster/nodes", body);
    cr_assert_eq(r.status, 400);
    kz_cli_response_free(&r);
    snprintf(body, sizeof body,
             "{\"id\": 4, \"region\": \"sapporo\", \"raft_address\": "
             "\"%s.11:%d\", \"api_address\": \"%s.14:%d\"}",
             cluster.net, cluster.port + 1, cluster.net, cluster.port);
    r = kz_it_call(op, "POST", "/v1/cluster/nodes", body);
    cr_assert_eq(r.status, 409, "%ld %.*s", r.status, (int)r.body_len, r.body);
    cr_assert_str_eq(kz_it_error_code(&r, code, sizeof code), "address_in_use");
    kz_cli_response_free(&r);
    /* A 'node' line wins: node 1 cannot be moved by the API. */
    snprintf(body, sizeof body,
             "{\"id\": 1, \"region\": \"tokyo\", \"raft_address\": "
             "\"%s.19:%d\", \"api_address\": \"%s.19:%d\"}",
             cluster.net, cluster.port + 1, cluster.net, cluster.port);
    r = kz_it_call(op, "POST", "/v1/cluster/nodes", body);
    cr_assert_eq(r.status, 409, "%ld %.*s", r.status, (int)r.body_len, r.body);
    cr_assert_str_eq(kz_it_error_code(&r, code, sizeof code),
                     "address_conflict");
    kz_cli_response_free(&r);

    /* Start it and add it with the CLI, as a standby. */
    cr_assert_eq(kz_it_ctl(&cluster, "restart 4"), 0);
    char args[256], *out = NULL;
    snprintf(args, sizeof args,
             "cluster add 4 --address %s.14:%d --api %s.14:%d --region "
             "sapporo --role standby",
             cluster.net, cluster.port + 1, cluster.net, cluster.port);
    int ex = kz_it_cli(&cluster, "operator", args, &out);
    cr_assert_eq(ex, 0, "kizuna %s: exit %d: %s", args, ex, out);
    cr_assert(strstr(out, "\"standby\"") != NULL, "%s", out);
    free(out);
    cr_assert(kz_it_wait(node4_role_everywhere, &standby_on_4, 60000),
              "node 4 is not a standby on every node (itself included)");
    long long top = kz_it_applied(&cluster, kz_it_leader(&cluster));
    struct caught k = {4, top};
    cr_assert(kz_it_wait(caught_up, &k, 60000), "node 4 did not catch up");

    /* It came by a checkpoint, fetched from a peer it learnt. */
    char logpath[300];
    snprintf(logpath, sizeof logpath, "%s/node4/kizunad.log", cluster.dir);
    char *log4 = kz_it_slurp(logpath);
    cr_assert_not_null(log4);
    cr_assert(strstr(log4, "msg=\"snapshot fetched\"") != NULL,
              "node 4 fetched no checkpoint");
    cr_assert(strstr(log4, "msg=\"peer address learned\"") != NULL,
              "node 4 learnt no peer");
    free(log4);

    /* Every node, node 4 too, knows everyone's region and API address. */
    char region[64], address[64], want[64];
    for (int from = 1; from <= 4; from++)
        for (int id = 1; id <= 4; id++) {
            static const char *const regions[] = {"", "tokyo", "osaka",
                                                  "sapporo", "sapporo"};
            book_of(from, id, region, address, sizeof region);
            snprintf(want, sizeof want, "https://%s.%d:%d", cluster.net,
                     10 + id, cluster.port);
            cr_assert_str_eq(region, regions[id], "node %d on node %d", id,
                             from);
            cr_assert_str_eq(address, want, "node %d on node %d", id, from);
        }

    /* Data written before it joined is there; a write sent to it is
     * forwarded to the leader (a peer no file of node 4 names). */
    kz_cli *r4 = kz_it_client(&cluster, "caseworker", "4", 5000);
    for (int i = 0; i < 40; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/victims/%s?consistency=stale",
                 ids[i]);
        r = kz_it_call(r4, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "%s missing on node 4", ids[i]);
        kz_cli_response_free(&r);
    }
    kz_cli_close(r4);
    kz_cli *w4 = kz_it_client(&cluster, "registrar", "4", 20000);
    ids[40] = create_victim(w4);
    kz_cli_close(w4);

    /* Promoted (sapporo then holds 2 of 4 voters: --force). */
    ex = kz_it_cli(&cluster, "operator", "cluster promote 4 --force", &out);
    cr_assert_eq(ex, 0, "promote: exit %d: %s", ex, out);
    free(out);
    cr_assert(kz_it_wait(node4_role_everywhere, &voter_on_4, 30000),
              "node 4 is not a voter everywhere");

    /* The book outlives restarts: node 1 from its state, node 4 from the
     * log and snapshot it has. */
    int leader = kz_it_leader(&cluster);
    int other = leader == 1 ? 2 : 1;
    snprintf(args, sizeof args, "restart %d", other);
    cr_assert_eq(kz_it_ctl(&cluster, args), 0);
    cr_assert_eq(kz_it_ctl(&cluster, "restart 4"), 0);
    snprintf(args, sizeof args, "wait --node %d", other);
    cr_assert_eq(kz_it_ctl(&cluster, args), 0);
    cr_assert_eq(kz_it_ctl(&cluster, "wait --node 4"), 0);
    book_of(other, 4, region, address, sizeof region);
    cr_assert_str_eq(region, "sapporo", "node %d forgot node 4", other);
    book_of(4, 2, region, address, sizeof region);
    cr_assert_str_eq(region, "osaka", "node 4 forgot node 2");
    w4 = kz_it_client(&cluster, "registrar", "4", 20000);
    char *after = create_victim(w4);
    free(after);
    kz_cli_close(w4);
    cr_assert(kz_it_wait(same_state, NULL, 30000), "states differ");
    for (int i = 0; i < 41; i++)
        free(ids[i]);
    kz_cli_close(op);
    kz_cli_close(w);
}

/* POST /v1/cluster/snapshot: the node takes a checkpoint now, at the entry
 * a read barrier makes it apply; a follower does once the leader says it
 * is caught up. The checkpoint directory is named by its raft index. */
struct snap_ask {
    int node;
    long long index;
};

static bool snapshot_taken(void *arg)
{
    struct snap_ask *s = arg;
    char nodes[8];
    snprintf(nodes, sizeof nodes, "%d", s->node);
    kz_cli *op = kz_it_client(&cluster, "operator", nodes, 10000);
    kz_cli_response r = kz_it_call(op, "POST", "/v1/cluster/snapshot", NULL);
    bool ok = r.status == 200;
    if (ok) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        s->index = json_integer_value(json_object_get(j, "index"));
        cr_assert_eq(json_integer_value(json_object_get(j, "node")), s->node);
        json_decref(j);
    } else {
        char code[64];
        cr_assert(r.status == 409 &&
                      strcmp(kz_it_error_code(&r, code, sizeof code),
                             "not_caught_up") == 0,
                  "node %d: %ld %.*s", s->node, r.status, (int)r.body_len,
                  r.body);
    }
    kz_cli_response_free(&r);
    kz_cli_close(op);
    return ok;
}

static bool has_checkpoint(int node, long long index)
{
    char path[512];
    snprintf(path, sizeof path, "%s/node%d/data/snapshots/%020lld",
             cluster.dir, node, index);
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

Test(membership, snapshot_on_request, .fini = teardown, .timeout = 300)
{
    kz_cli_sample_init(&gen, 20261207, 8);
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    cr_assert(kz_it_wait(leader_among_members, NULL, 30000), "no leader");
    kz_cli *w = kz_it_client(&cluster, "registrar", "1,2,3", 20000);
    for (int i = 0; i < 5; i++)
        free(create_victim(w));
    kz_cli_close(w);
    int leader = kz_it_leader(&cluster);
    kz_cli *op = kz_it_client(&cluster, "operator", "1,2,3", 20000);
    kz_cli_response r =
        kz_it_call(op, "POST", "/v1/cluster/snapshot", "{\"now\": true}");
    cr_assert_eq(r.status, 400, "a body is refused");
    kz_cli_response_free(&r);
    kz_cli_close(op);
    struct snap_ask s = {leader, 0};
    cr_assert(snapshot_taken(&s), "the leader refused");
    cr_assert_gt(s.index, 5);
    cr_assert(has_checkpoint(leader, s.index),
              "no checkpoint %lld on node %d", s.index, leader);
    struct snap_ask f = {leader == 1 ? 2 : 1, 0};
    cr_assert(kz_it_wait(snapshot_taken, &f, 20000),
              "follower %d took no snapshot", f.node);
    /* At its next applied entry: its own barrier's, or the leader's if the
     * follower had not applied that one yet when it was asked. */
    cr_assert_geq(f.index, s.index);
    cr_assert(has_checkpoint(f.node, f.index));
}
