/*
 * test_cli.c — the `kizuna` CLI against a real cluster, as an operator or an
 * emergency app would use it: victim add / get / search / note / patch,
 * shelter put / summary, cluster status and sample load, with their exit
 * codes (0 ok, 1 HTTP error, 2 usage), and failover when the first endpoint
 * in the list is down; audit verify asking every node, and audit list.
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

/* Runs `kizuna <global options for role> ARGS`, returns its exit code and
 * its standard output (caller frees). */
static int cli(const char *role, const char *endpoints, const char *args,
               char **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/kizuna' --endpoints '%s' --cacert '%s/pki/ca.pem' "
             "--cert '%s/pki/%s.pem' --key '%s/pki/%s.key' --timeout 20 %s "
             "2>/dev/null",
             KZ_BIN_DIR, endpoints, cluster.dir, cluster.dir, role,
             cluster.dir, role, args);
    char *buf;
    int code = kz_it_run(cmd, &buf);
    if (out != NULL)
        *out = buf;
    else
        free(buf);
    return code;
}

Test(cli, register_search_note_and_status, .fini = teardown, .timeout = 300)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    char eps[300];
    snprintf(eps, sizeof eps, "%s/endpoints", cluster.dir);
    char *out;

    cr_assert_eq(cli("registrar", eps,
                     "shelter put cli-shelter --name 石巻市立湊小学校 "
                     "--capacity 300",
                     NULL),
                 0);
    cr_assert_eq(cli("registrar", eps,
                     "victim add --name '高橋 健一' --name-kana 'たかはし "
                     "けんいち' --dob 1948-02-03 --sex male --shelter "
                     "cli-shelter --needs elderly,medication",
                     &out),
                 0);
    json_t *j = json_loads(out, 0, NULL);
    free(out);
    cr_assert_not_null(j, "victim add printed no JSON");
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);

    char args[256];
    snprintf(args, sizeof args, "victim get %s", id);
    cr_assert_eq(cli("caseworker", eps, args, &out), 0);
    cr_assert(strstr(out, "高橋 健一") != NULL);
    free(out);

    cr_assert_eq(cli("caseworker", eps, "victim search --q takahashi", &out),
                 0);
    cr_assert(strstr(out, id) != NULL, "search did not find %s", id);
    free(out);

    snprintf(args, sizeof args,
             "victim note %s --status injured --text '軽傷' --author 担当",
             id);
    cr_assert_eq(cli("caseworker", eps, args, NULL), 0);
    cr_assert_eq(cli("caseworker", eps, "shelter summary cli-shelter", &out),
                 0);
    j = json_loads(out, 0, NULL);
    free(out);
    cr_assert_eq(json_integer_value(json_object_get(j, "total")), 1);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(j, "by_status"), "injured")),
                 1);
    json_decref(j);

    /* Compare-and-set through the CLI: a stale version is refused (1). */
    snprintf(args, sizeof args, "victim patch %s --if-match 1 --set contact=x",
             id);
    cr_assert_eq(cli("registrar", eps, args, NULL), 1);

    /* Errors: an unknown id (1), a wrong role (1), bad usage (2). */
    cr_assert_eq(cli("caseworker", eps, "victim get nosuchid", NULL), 1);
    cr_assert_eq(cli("caseworker", eps,
                     "victim add --name x --name-kana x --sex male --dob "
                     "1990-01-01",
                     NULL),
                 1);
    cr_assert_eq(cli("caseworker", eps, "victim frobnicate", NULL), 2);

    cr_assert_eq(cli("operator", eps, "cluster status", &out), 0);
    cr_assert(strstr(out, "tokyo") && strstr(out, "osaka") &&
                  strstr(out, "sapporo"),
              "cluster status: %s", out);
    free(out);

    cr_assert_eq(cli("registrar", eps, "sample load --count 30 --shelters 3",
                     NULL),
                 0);
    cr_assert_eq(cli("caseworker", eps, "victim search --all --limit 100",
                     &out),
                 0);
    j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "search --all printed no JSON: %.200s", out);
    free(out);
    json_t *items = json_is_array(j) ? j : json_object_get(j, "items");
    cr_assert_eq(json_array_size(items), 31, "%zu records",
                 json_array_size(items));
    json_decref(j);

    /* Failover: the first endpoint of the list is down. */
    cr_assert_eq(kz_it_ctl(&cluster, "kill 1"), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    snprintf(args, sizeof args, "victim get %s", id);
    cr_assert_eq(cli("caseworker", eps, args, &out), 0,
                 "no failover past a dead first endpoint");
    cr_assert(strstr(out, "高橋 健一") != NULL);
    free(out);
}

/* Every node has applied as far as the others (so their logs match). */
static bool all_applied(void *arg)
{
    struct kz_it_cluster *c = arg;
    long long first = kz_it_applied(c, 1);
    for (int i = 2; i <= c->n; i++)
        if (kz_it_applied(c, i) != first)
            return false;
    return first > 0;
}

Test(cli, audit_verify_asks_every_node, .fini = teardown, .timeout = 300)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    char eps[300];
    snprintf(eps, sizeof eps, "%s/endpoints", cluster.dir);
    cr_assert_eq(cli("registrar", eps,
                     "shelter put audit-shelter --name 湊小学校", NULL),
                 0);
    cr_assert_eq(cli("registrar", eps, "sample load --count 3 --shelters 1",
                     NULL),
                 0);
    cr_assert(kz_it_wait(all_applied, &cluster, 30000), "nodes apart");

    char *out;
    cr_assert_eq(cli("auditor", eps, "audit verify", &out), 0, "%s", out);
    int lines = 0;
    for (char *l = out, *nl; *l != '\0'; l = nl + 1, lines++) {
        nl = strchr(l, '\n');
        cr_assert_not_null(nl);
        *nl = '\0';
        cr_assert(nl - l > 3 && strcmp(nl - 3, " ok") == 0, "line: %s", l);
        cr_assert_not_null(strstr(l, "entries "), "line: %s", l);
    }
    cr_assert_eq(lines, 3, "one line per node, got %d", lines);
    free(out);

    cr_assert_eq(cli("auditor", eps, "audit verify --json", &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(json_is_array(j), "not an array: %.200s", out);
    free(out);
    cr_assert_eq(json_array_size(j), 3);
    for (int i = 1; i <= 3; i++) {
        json_t *o = json_array_get(j, (size_t)i - 1);
        cr_assert_str_eq(json_string_value(json_object_get(o, "endpoint")),
                         cluster.url[i]);
        cr_assert(json_is_true(json_object_get(o, "ok")));
        cr_assert_geq(json_integer_value(json_object_get(o, "entries")), 5);
    }
    json_decref(j);

    /* Only the auditor may ask: every node refuses (1). */
    cr_assert_eq(cli("caseworker", eps, "audit verify", NULL), 1);

    cr_assert_eq(cli("auditor", eps,
                     "audit list --subject audit-shelter --limit 10", &out),
                 0);
    j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "not one JSON line: %.200s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "action")),
                     "shelter.put");
    json_decref(j);
    free(out);
}
