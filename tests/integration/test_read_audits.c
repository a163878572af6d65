/*
 * test_read_audits.c — audited reads that reach a node in the same loop
 * turn share one batch of access records: one sealed command forwarded to
 * the leader, not one each (node/http_api.c, audit_read).
 *
 * A follower is stopped (SIGSTOP) while 24 caseworker connections, each
 * already open, send it a read; once all 24 requests wait in its sockets it
 * is resumed, so its next poll finds them together. Before batches waited
 * for the turn's end, each of the first 8 reads (the batches a node keeps
 * in flight) went to the leader alone: 9 forwarded proposals at least.
 * Every read is still answered and recorded.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "harness.h"

#define READERS 24

static struct kz_it_cluster cluster;
static pid_t stopped_node; /* a node left stopped by a failed assertion */

static void teardown(void)
{
    if (stopped_node > 0)
        kill(stopped_node, SIGCONT);
    stopped_node = 0;
    kz_it_down(&cluster);
}

struct reader {
    kz_cli *cli;
    char path[128];
    long status;
    pthread_t th;
};

static void *read_once(void *arg)
{
    struct reader *r = arg;
    kz_cli_response resp;
    const char *h[] = {"X-Purpose: test", NULL};
    r->status = kz_cli_request(r->cli, "GET", r->path, h, NULL, 0, &resp) ==
                        KZ_CLI_OK
                    ? resp.status
                    : -1;
    kz_cli_response_free(&resp);
    return NULL;
}

/* Connections to the node's API port with bytes waiting to be read. */
static int waiting_requests(const char *ip, int port)
{
    char cmd[256], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "ss -tnH state established '( sport = :%d )' src %s", port, ip);
    if (kz_it_run(cmd, &out) != 0) {
        free(out);
        return -1;
    }
    int n = 0;
    for (char *line = strtok(out, "\n"); line != NULL;
         line = strtok(NULL, "\n")) {
        long recvq = 0;
        if (sscanf(line, "%ld", &recvq) == 1 && recvq > 0)
            n++;
    }
    free(out);
    return n;
}

struct waiting {
    const char *ip;
    int port;
};

static bool all_sent(void *arg)
{
    struct waiting *w = arg;
    return waiting_requests(w->ip, w->port) >= READERS;
}

/* The audit chain's length on node f once it stopped growing and the
 * leader's is the same: every record made so far applied on both. */
struct settle {
    int f, leader;
    long long last;
};

static bool settled(void *arg)
{
    struct settle *st = arg;
    long long a = kz_it_metric(&cluster, st->f, "kizuna_audit_log_seq");
    long long b = kz_it_metric(&cluster, st->leader, "kizuna_audit_log_seq");
    bool same = a >= 0 && a == b && a == st->last;
    st->last = a;
    return same;
}

static long long settled_seq(int f, int leader)
{
    struct settle st = {f, leader, -1};
    cr_assert(kz_it_wait(settled, &st, 20000),
              "the audit chains of nodes %d and %d did not settle", f,
              leader);
    return st.last;
}

Test(read_audits, reads_in_one_turn_share_one_forwarded_batch,
     .fini = teardown, .timeout = 300)
{
    /* A long election timeout: the stopped follower must not start an
     * election when it resumes. */
    const char *sets[] = {"election_timeout_ms=10000",
                          "heartbeat_timeout_ms=200", NULL};
    kz_it_up(&cluster, "a:1,b:1,c:1", sets);
    cr_assert(kz_it_wait(kz_it_has_leader, &cluster, 30000), "no leader");
    int leader = kz_it_leader(&cluster);
    int f = leader == 1 ? 2 : 1;

    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    kz_cli_response r = kz_it_call(reg, "POST", "/v1/victims",
                                   "{\"name\":\"高橋 花子\",\"name_kana\":"
                                   "\"たかはし はなこ\",\"dob\":\"1950-05-05\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_t *j = json_loads(r.body, 0, NULL);
    cr_assert_not_null(j);
    char path[128];
    snprintf(path, sizeof path, "/v1/victims/%s",
             json_string_value(json_object_get(j, "id")));
    json_decref(j);
    kz_cli_response_free(&r);
    kz_cli_close(reg);

    /* Every reader's connection open, and the record applied on f. */
    char ids[8];
    snprintf(ids, sizeof ids, "%d", f);
    static struct reader rd[READERS];
    for (int i = 0; i < READERS; i++) {
        rd[i].cli = kz_it_client(&cluster, "caseworker", ids, 20000);
        snprintf(rd[i].path, sizeof rd[i].path, "%s", path);
        read_once(&rd[i]);
        cr_assert_eq(rd[i].status, 200, "reader %d: %ld", i, rd[i].status);
    }
    long long audit_before = settled_seq(f, leader);
    long long fwd_before = kz_it_metric(&cluster, f, "kizuna_forwarded_total");
    cr_assert_geq(fwd_before, 0);

    /* The node's address and port, from its URL https://IP:PORT. */
    char ip[64];
    int port = 0;
    cr_assert_eq(sscanf(cluster.url[f], "https://%63[^:]:%d", ip, &port), 2,
                 "%s", cluster.url[f]);

    stopped_node = kz_it_node_pid(&cluster, f);
    cr_assert_eq(kill(stopped_node, SIGSTOP), 0);
    for (int i = 0; i < READERS; i++)
        cr_assert_eq(pthread_create(&rd[i].th, NULL, read_once, &rd[i]), 0);
    struct waiting w = {ip, port};
    bool sent = kz_it_wait(all_sent, &w, 10000);
    kill(stopped_node, SIGCONT);
    stopped_node = 0;
    for (int i = 0; i < READERS; i++)
        pthread_join(rd[i].th, NULL);
    cr_assert(sent, "the %d requests did not all reach the node's sockets",
              READERS);
    for (int i = 0; i < READERS; i++) {
        cr_assert_eq(rd[i].status, 200, "reader %d: %ld", i, rd[i].status);
        kz_cli_close(rd[i].cli);
    }

    long long fwd = kz_it_metric(&cluster, f, "kizuna_forwarded_total") -
                    fwd_before;
    cr_assert_geq(fwd, 1);
    cr_assert_leq(fwd, 2,
                  "%lld proposals forwarded for %d reads of one turn", fwd,
                  READERS);
    /* Each read has its record all the same, and only one. */
    long long recorded = settled_seq(f, leader) - audit_before;
    cr_assert_eq(recorded, READERS, "%lld records for %d reads", recorded,
                 READERS);
}
