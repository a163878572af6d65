/*
 * test_peer_refusals.c — the raft port of a running node refuses a peer
 * with a valid certificate that claims another node's id, a plaintext
 * client, and a client certificate (a role's, not a node's); it logs each
 * refusal and the cluster keeps serving, with nothing changed.
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

struct log_wait {
    char path[300];
    const char *needle;
};

static bool log_has(void *arg)
{
    struct log_wait *w = arg;
    char *log = kz_it_slurp(w->path);
    bool found = log != NULL && strstr(log, w->needle) != NULL;
    free(log);
    return found;
}

static long long victims(void)
{
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    kz_cli_response r = kz_it_call(cw, "GET", "/v1/victims?limit=1000", NULL);
    cr_assert_eq(r.status, 200);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    long long n = (long long)json_array_size(json_object_get(j, "items"));
    json_decref(j);
    kz_cli_response_free(&r);
    kz_cli_close(cw);
    return n;
}

Test(peer_refusals, raft_port_refuses_impostors_and_cluster_serves,
     .fini = teardown, .timeout = 180)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    kz_cli_response r = kz_it_call(reg, "POST", "/v1/victims",
                                   "{\"name\":\"基準 一\",\"sex\":\"male\"}");
    cr_assert_eq(r.status, 201);
    kz_cli_response_free(&r);
    long long before = victims();

    char raft[64], log1[300];
    snprintf(raft, sizeof raft, "%s.11:%d", cluster.net, cluster.port + 1);
    snprintf(log1, sizeof log1, "%s/node1/kizunad.log", cluster.dir);

    /* node-2's valid certificate, announcing raft id 3 in the preamble. */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "printf 'KZCHAN01\\001\\000\\000\\000\\000\\000\\000\\000\\003"
             "\\000\\017127.0.0.13:9999' | timeout 10 openssl s_client "
             "-quiet -connect %s -cert %s/pki/node-2.pem -key "
             "%s/pki/node-2.key -CAfile %s/pki/ca.pem >/dev/null 2>&1",
             raft, cluster.dir, cluster.dir, cluster.dir);
    (void)!system(cmd);
    struct log_wait w = {"", "claims raft id 3, certificate names node-2"};
    snprintf(w.path, sizeof w.path, "%s", log1);
    cr_assert(kz_it_wait(log_has, &w, 10000),
              "node 1 did not refuse a peer claiming another id");

    /* Plaintext on the raft port. */
    char host[48];
    snprintf(host, sizeof host, "%s.11", cluster.net);
    snprintf(cmd, sizeof cmd,
             "timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d; printf "
             "\"KZCHAN01 hello raft\\r\\n\" >&3; cat <&3' >/dev/null 2>&1",
             host, cluster.port + 1);
    (void)!system(cmd);
    struct log_wait p = {"", "wrong version number"};
    snprintf(p.path, sizeof p.path, "%s", log1);
    cr_assert(kz_it_wait(log_has, &p, 10000),
              "node 1 did not refuse plaintext on its raft port");

    /* A role's client certificate is not a node's. */
    snprintf(cmd, sizeof cmd,
             "printf 'x' | timeout 10 openssl s_client -quiet -connect %s "
             "-cert %s/pki/operator.pem -key %s/pki/operator.key -CAfile "
             "%s/pki/ca.pem >/dev/null 2>&1",
             raft, cluster.dir, cluster.dir, cluster.dir);
    (void)!system(cmd);
    struct log_wait c = {"", "certificate does not name a node"};
    snprintf(c.path, sizeof c.path, "%s", log1);
    cr_assert(kz_it_wait(log_has, &c, 10000),
              "node 1 accepted a role certificate as a peer");

    /* Nothing changed, and the cluster still takes writes everywhere. */
    cr_assert_eq(victims(), before);
    r = kz_it_call(reg, "POST", "/v1/victims",
                   "{\"name\":\"基準 二\",\"sex\":\"female\"}");
    cr_assert_eq(r.status, 201);
    kz_cli_response_free(&r);
    kz_cli_close(reg);
    cr_assert_eq(victims(), before + 1);
}
