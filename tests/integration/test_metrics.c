/*
 * test_metrics.c — GET /metrics on a real 3-node cluster: the text is valid
 * Prometheus exposition format 0.0.4, lint included (`promtool check
 * metrics`, from Debian's prometheus package, installed by
 * deploy/install-deps), on the leader and on the followers; and its values
 * follow what the cluster did: exactly one node reports itself leader and
 * the others name it, the leader reports its peers' progress, writes and
 * reads move the request, proposal and barrier histograms, a handshake
 * without a client certificate is counted, and nothing a request carried
 * (an id, a name) shows.
 *
 * promtool missing is a failure with the reason, not a skip: a check that
 * silently does not run proves nothing. Only the promtool binary is used;
 * no Prometheus server is started or needed.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define NAME "計測 太郎"
#define VICTIM                                                               \
    "{\"name\":\"" NAME "\",\"name_kana\":\"けいそく たろう\",\"dob\":"      \
    "\"1962-04-01\",\"sex\":\"male\"}"
#define WRITES 6

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

/* promtool's path, or NULL. */
static const char *promtool(void)
{
    static const char *const paths[] = {"/usr/bin/promtool",
                                        "/usr/local/bin/promtool", NULL};
    for (int i = 0; paths[i] != NULL; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* The body of GET /metrics on one node (malloc'd), NULL if it did not
 * answer 200. */
static char *fetch_metrics(int node)
{
    char ids[8];
    snprintf(ids, sizeof ids, "%d", node);
    kz_cli *op = kz_it_client(&cluster, "operator", ids, 5000);
    kz_cli_response r = kz_it_call(op, "GET", "/metrics", NULL);
    char *body = NULL;
    if (r.status == 200 && r.body != NULL)
        body = strdup(r.body);
    kz_cli_response_free(&r);
    kz_cli_close(op);
    return body;
}

/* The value of one series ("name" or "name{labels}" exactly as written),
 * -1 when absent. */
static double value(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = body; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

/* Runs promtool check metrics on body; fails the test with its output. */
static void check_with_promtool(const char *tool, const char *body, int node)
{
    char path[320], cmd[800];
    snprintf(path, sizeof path, "%s/metrics-node%d.prom", cluster.dir, node);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(body, 1, strlen(body), f), strlen(body));
    cr_assert_eq(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "'%s' check metrics < '%s' 2>&1", tool, path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen promtool");
    char out[4096];
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "promtool check metrics refused node %d's /metrics (exit %d; "
              "the text is in %s):\n%s",
              node, WIFEXITED(st) ? WEXITSTATUS(st) : -1, path, out);
}

/* Metrics of every node taken while leadership holds still: exactly one
 * node reports itself leader, and every node names it. */
struct snapshot {
    char *body[4]; /* by node id */
    int leader;
};

static void snapshot_free(struct snapshot *s)
{
    for (int i = 1; i <= 3; i++) {
        free(s->body[i]);
        s->body[i] = NULL;
    }
}

static bool one_leader(void *arg)
{
    struct snapshot *s = arg;
    snapshot_free(s);
    s->leader = 0;
    int leaders = 0;
    for (int i = 1; i <= 3; i++) {
        s->body[i] = fetch_metrics(i);
        if (s->body[i] == NULL)
            return false;
        if (value(s->body[i], "kizuna_raft_leader") == 1) {
            leaders++;
            s->leader = i;
        }
    }
    if (leaders != 1)
        return false;
    for (int i = 1; i <= 3; i++)
        if (value(s->body[i], "kizuna_raft_leader_id") != s->leader)
            return false;
    return true;
}

/* Sum over the nodes of one series (absent counts 0). */
static double sum_of(const struct snapshot *s, const char *series)
{
    double t = 0;
    for (int i = 1; i <= 3; i++) {
        double v = value(s->body[i], series);
        if (v > 0)
            t += v;
    }
    return t;
}

static bool handshake_counted(void *arg)
{
    double before = *(double *)arg;
    char *b = fetch_metrics(1);
    double v = b ? value(b, "kizuna_http_tls_handshakes_failed_total") : -1;
    free(b);
    return v > before;
}

Test(metrics, promtool_accepts_and_values_follow_the_cluster,
     .fini = teardown, .timeout = 300)
{
    const char *tool = promtool();
    cr_assert_not_null(tool,
                       "promtool not found (/usr/bin/promtool): it comes "
                       "with Debian's prometheus package; run "
                       "deploy/install-deps (or apt-get install prometheus)");
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);

    /* Writes through every node (forwarded from the followers), then
     * linearizable and stale reads of each record. */
    char ids[WRITES][64];
    for (int i = 0; i < WRITES; i++) {
        char node[8];
        snprintf(node, sizeof node, "%d", i % 3 + 1);
        kz_cli *w = kz_it_client(&cluster, "registrar", node, 20000);
        kz_cli_response r = kz_it_call(w, "POST", "/v1/victims", VICTIM);
        cr_assert_eq(r.status, 201, "write %d on node %s: %ld %s", i, node,
                     r.status, r.body ? r.body : "");
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        cr_assert_not_null(j);
        snprintf(ids[i], sizeof ids[i], "%s",
                 json_string_value(json_object_get(j, "id")));
        json_decref(j);
        kz_cli_response_free(&r);
        kz_cli_close(w);
    }
    for (int i = 0; i < WRITES; i++) {
        char node[8], path[160];
        snprintf(node, sizeof node, "%d", i % 3 + 1);
        kz_cli *rd = kz_it_client(&cluster, "caseworker", node, 20000);
        snprintf(path, sizeof path, "/v1/victims/%s", ids[i]);
        kz_cli_response r = kz_it_call(rd, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "read %s: %ld", path, r.status);
        kz_cli_response_free(&r);
        snprintf(path, sizeof path, "/v1/victims/%s?consistency=stale",
                 ids[i]);
        r = kz_it_call(rd, "GET", path, NULL);
        cr_assert_eq(r.status, 200, "stale read %s: %ld", path, r.status);
        kz_cli_response_free(&r);
        /* Not audited: served at a read index, through a read barrier. */
        r = kz_it_call(rd, "GET", "/v1/shelters/metrics-test/summary", NULL);
        cr_assert(r.status == 200 || r.status == 404, "summary: %ld",
                  r.status);
        kz_cli_response_free(&r);
        kz_cli_close(rd);
    }

    /* A client without a certificate: refused in the handshake. */
    char *b1 = fetch_metrics(1);
    cr_assert_not_null(b1);
    double refused_before = value(b1, "kizuna_http_tls_handshakes_failed_total");
    free(b1);
    cr_assert_geq(refused_before, 0, "no kizuna_http_tls_handshakes_failed_total");
    {
        char ca[300], err[256];
        snprintf(ca, sizeof ca, "%s/pki/ca.pem", cluster.dir);
        kz_cli_opts o;
        memset(&o, 0, sizeof o);
        o.endpoints = cluster.url[1];
        o.cacert = ca;
        o.deadline_ms = 3000;
        o.request_timeout_ms = 3000;
        kz_cli *anon = NULL;
        cr_assert_eq(kz_cli_open(&o, &anon, err, sizeof err), KZ_CLI_OK, "%s",
                     err);
        kz_cli_response r = kz_it_call(anon, "GET", "/healthz", NULL);
        cr_assert_eq(r.status, 0, "a client without a certificate got in");
        kz_cli_response_free(&r);
        kz_cli_close(anon);
    }
    cr_assert(kz_it_wait(handshake_counted, &refused_before, 5000),
              "the refused handshake was not counted");

    struct snapshot s = {0};
    cr_assert(kz_it_wait(one_leader, &s, 20000),
              "no moment with exactly one node reporting itself leader");

    for (int i = 1; i <= 3; i++) {
        const char *b = s.body[i];
        check_with_promtool(tool, b, i);
        /* Raft. */
        cr_assert_gt(value(b, "kizuna_raft_applied_index"), 0,
                     "node %d: applied index", i);
        cr_assert_geq(value(b, "kizuna_raft_last_index"),
                      value(b, "kizuna_raft_commit_index"));
        double states = 0;
        static const char *const names[] = {"leader", "follower", "candidate",
                                            "unavailable"};
        for (int k = 0; k < 4; k++) {
            char series[80];
            snprintf(series, sizeof series, "kizuna_raft_state{state=\"%s\"}",
                     names[k]);
            double v = value(b, series);
            cr_assert(v == 0 || v == 1, "node %d: %s = %g", i, series, v);
            states += v;
        }
        cr_assert_eq(states, 1, "node %d: one raft state at a time", i);
        cr_assert_eq(value(b, "kizuna_raft_state{state=\"leader\"}"),
                     i == s.leader);
        /* Peer progress: on the leader only, for every member. */
        for (int p = 1; p <= 3; p++) {
            char series[80];
            snprintf(series, sizeof series,
                     "kizuna_raft_peer_match_index{peer=\"%d\"}", p);
            if (i == s.leader)
                cr_assert_gt(value(b, series), 0, "leader: %s", series);
            else
                cr_assert_eq(value(b, series), -1,
                             "follower %d reports %s", i, series);
        }
        /* A histogram's count is its +Inf bucket. */
        cr_assert_eq(value(b, "kizuna_proposal_duration_seconds_count"),
                     value(b, "kizuna_proposal_duration_seconds_bucket{le=\"+Inf\"}"));
        /* The loop has turned, and its turns are measured. */
        cr_assert_gt(value(b, "kizuna_event_loop_busy_seconds_count"), 0,
                     "node %d", i);
        cr_assert_eq(value(b, "kizuna_event_loop_busy_seconds_count"),
                     value(b, "kizuna_event_loop_busy_seconds_bucket{le=\"+Inf\"}"));
        /* Buckets are cumulative, and turns go on being counted (the
         * fetch below is served by turns of this node's loop). */
        double short_turns = value(b, "kizuna_event_loop_busy_seconds_bucket{le=\"0.001\"}");
        cr_assert_geq(short_turns, 0, "node %d", i);
        cr_assert_leq(short_turns,
                      value(b, "kizuna_event_loop_busy_seconds_bucket{le=\"0.01\"}"));
        cr_assert_leq(value(b, "kizuna_event_loop_busy_seconds_bucket{le=\"0.01\"}"),
                      value(b, "kizuna_event_loop_busy_seconds_count"));
        char *again = fetch_metrics(i);
        cr_assert_not_null(again, "node %d: /metrics", i);
        cr_assert_gt(value(again, "kizuna_event_loop_busy_seconds_count"),
                     value(b, "kizuna_event_loop_busy_seconds_count"),
                     "node %d: the loop's turns are no longer counted", i);
        free(again);
        /* Storage and process. */
        cr_assert_geq(value(b, "kizuna_rocksdb_sst_files_bytes"), 0);
        cr_assert_geq(value(b, "kizuna_rocksdb_write_stopped"), 0);
        cr_assert_gt(value(b, "kizuna_data_dir_free_bytes"), 0);
        cr_assert_gt(value(b, "kizuna_raft_log_bytes"), 0);
        cr_assert_gt(value(b, "process_resident_memory_bytes"), 0);
        /* Every node applied registrations: records and their terms. */
        cr_assert_gt(value(b, "kizuna_store_writes_total{family=\"records\"}"),
                     0, "node %d", i);
        cr_assert_gt(value(b, "kizuna_store_writes_total{family=\"terms\"}"),
                     0, "node %d", i);
        cr_assert_geq(value(b, "kizuna_store_writes_total{family=\"blobs\"}"),
                      0, "node %d", i);
        /* The audit log: records were appended (the writes above). */
        cr_assert_gt(value(b, "kizuna_audit_log_seq"), 0);
        cr_assert_geq(value(b, "kizuna_audit_log_bytes"), 0);
        /* Peer channels: open ones, and their flow control. */
        cr_assert_gt(value(b, "kizuna_peer_channels_accepted_total"), 0);
        cr_assert_geq(value(b, "kizuna_peer_channel_pauses_total"), 0);
        cr_assert_geq(value(b, "kizuna_peer_channel_queued_bytes"), 0);
        cr_assert_geq(value(b, "kizuna_raft_commit_nudges_total"), 0);
        /* Nothing a request carried. */
        cr_assert_null(strstr(b, NAME), "node %d: a name in /metrics", i);
        for (int k = 0; k < WRITES; k++)
            cr_assert_null(strstr(b, ids[k]), "node %d: an id in /metrics",
                           i);
    }
    cr_assert_eq(value(s.body[s.leader], "kizuna_raft_seconds_since_leader"),
                 0);

    /* Every write was proposed on the node it reached, and measured there;
     * every read was answered and measured. */
    cr_assert_geq(sum_of(&s, "kizuna_proposal_duration_seconds_count"),
                  WRITES);
    cr_assert_geq(sum_of(&s, "kizuna_http_request_duration_seconds_count{"
                             "method=\"POST\",route=\"/v1/victims\","
                             "class=\"2xx\"}"),
                  WRITES);
    cr_assert_geq(sum_of(&s, "kizuna_http_request_duration_seconds_count{"
                             "method=\"GET\",route=\"/v1/victims/*\","
                             "class=\"2xx\"}"),
                  2 * WRITES);
    cr_assert_geq(sum_of(&s, "kizuna_http_requests_total{kind=\"write\"}"),
                  WRITES);
    cr_assert_geq(
        sum_of(&s, "kizuna_http_requests_total{kind=\"read_stale\"}"),
        WRITES);
    /* Reads at a read index wait for a barrier on the leader. */
    cr_assert_geq(value(s.body[s.leader], "kizuna_barrier_batch_reads_count"),
                  1);
    cr_assert_geq(value(s.body[s.leader], "kizuna_barrier_batch_reads_sum"),
                  value(s.body[s.leader], "kizuna_barrier_batch_reads_count"));
    snapshot_free(&s);
}

/* Peer probes: every node reports every other one reachable, with its
 * region; a killed node turns 0 on the two others (while it is down its
 * failures count up), and 1 again after its restart. Followers do not
 * talk to each other in raft: the probes are what shows it. */
struct reach {
    int node, peer;
    const char *region;
    int want;
};

static bool reach_is(void *arg)
{
    struct reach *r = arg;
    char *body = fetch_metrics(r->node);
    if (body == NULL)
        return false;
    char series[128];
    snprintf(series, sizeof series,
             "kizuna_peer_reachable{peer=\"%d\",region=\"%s\"}", r->peer,
             r->region);
    bool ok = value(body, series) == r->want;
    free(body);
    return ok;
}

Test(metrics, peer_probes_follow_reachability, .fini = teardown,
     .timeout = 300)
{
    static const char *const regions[] = {"", "a", "b", "c"};
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);
    for (int node = 1; node <= 3; node++)
        for (int peer = 1; peer <= 3; peer++) {
            if (peer == node)
                continue;
            struct reach r = {node, peer, regions[peer], 1};
            cr_assert(kz_it_wait(reach_is, &r, 20000),
                      "node %d never saw node %d reachable", node, peer);
        }
    char *body = fetch_metrics(1);
    cr_assert_not_null(body);
    char series[128];
    snprintf(series, sizeof series,
             "kizuna_peer_round_trip_seconds{peer=\"2\",region=\"b\"}");
    double rtt = value(body, series);
    cr_assert(rtt > 0 && rtt < 5, "round trip to node 2: %f", rtt);
    snprintf(series, sizeof series,
             "kizuna_peer_last_contact_seconds{peer=\"2\",region=\"b\"}");
    double last = value(body, series);
    cr_assert(last >= 0 && last < 3, "last contact with node 2: %f", last);
    cr_assert_eq(value(body, "kizuna_peer_reachable{peer=\"1\",region=\"a\"}"),
                 -1, "a node does not probe itself");
    free(body);

    cr_assert_eq(kz_it_ctl(&cluster, "kill 3"), 0);
    for (int node = 1; node <= 2; node++) {
        struct reach r = {node, 3, "c", 0};
        cr_assert(kz_it_wait(reach_is, &r, 20000),
                  "node %d still sees the killed node 3 reachable", node);
    }
    body = fetch_metrics(1);
    cr_assert_not_null(body);
    cr_assert_gt(value(body, "kizuna_peer_probe_failures_total{peer=\"3\","
                             "region=\"c\"}"),
                 0);
    struct reach up2 = {1, 2, "b", 1};
    cr_assert(reach_is(&up2), "node 2 is still reachable from node 1");
    free(body);
    cr_assert_eq(kz_it_ctl(&cluster, "restart 3"), 0);
    for (int node = 1; node <= 2; node++) {
        struct reach r = {node, 3, "c", 1};
        cr_assert(kz_it_wait(reach_is, &r, 30000),
                  "node %d does not see node 3 back", node);
    }
}
