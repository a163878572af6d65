/*
 * Backup and restore (`kizuna backup create`, `kizuna backup restore`): a
 * disaster-recovery drill in miniature. A 3-node cluster takes 30
 * registrations; an online backup is taken (audited, downloaded with a
 * manifest of SHA-256 sums, removed from the node afterwards); a damaged
 * copy is refused by restore; then every node is stopped, its data
 * directory thrown away and rebuilt from the backup, and the cluster that
 * starts from those directories serves every record, takes new writes, and
 * converges to one state digest.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

static bool has_leader(void *arg)
{
    (void)arg;
    return kz_it_leader(&cluster) != 0;
}

/* Every node answers the same digest at the same applied index. */
static bool converged(void *arg)
{
    (void)arg;
    return kz_it_digests_equal(&cluster, 3);
}

/* The last line of the CLI's output that is a JSON object (stderr's
 * progress lines come before it). */
static json_t *json_of(const char *text)
{
    const char *last = NULL;
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (*p == '{')
            last = p;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return last ? json_loadb(last, strcspn(last, "\n"), 0, NULL) : NULL;
}

Test(backup, create_restore_and_start_a_new_cluster, .fini = teardown,
     .timeout = 300)
{
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);
    cr_assert(kz_it_wait(has_leader, NULL, 30000), "no leader");
    kz_cli *w = kz_it_client(&cluster, "registrar", NULL, 20000);
    char ids[30][64];
    for (int i = 0; i < 30; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"name\":\"復旧 太郎%d\",\"name_kana\":\"フッキュウ "
                 "タロウ\",\"dob\":\"1970-01-%02d\",\"sex\":\"male\"}",
                 i, i % 28 + 1);
        kz_cli_response r = kz_it_call(w, "POST", "/v1/victims", body);
        cr_assert_eq(r.status, 201, "write %d: %ld", i, r.status);
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        snprintf(ids[i], sizeof ids[i], "%s",
                 json_string_value(json_object_get(j, "id")));
        json_decref(j);
        kz_cli_response_free(&r);
    }
    kz_cli_close(w);

    /* An online backup, then the digest of the node it came from. */
    char bdir[400], args[1200], *out;
    snprintf(bdir, sizeof bdir, "%s/backup", cluster.dir);
    snprintf(args, sizeof args,
             "--purpose 'disaster recovery drill' --json backup create '%s'",
             bdir);
    int st = kz_it_cli(&cluster, "operator", args, &out);
    cr_assert_eq(st, 0, "backup create: %s", out);
    json_t *made = json_of(out);
    cr_assert_not_null(made, "%s", out);
    int from = (int)json_integer_value(json_object_get(made, "node"));
    long long bindex =
        json_integer_value(json_object_get(made, "applied_index"));
    const char *bid = json_string_value(json_object_get(made, "id"));
    cr_assert(from >= 1 && from <= 3 && bindex > 30 && bid != NULL, "%s", out);
    free(out);
    json_t *before = kz_it_digest(&cluster, from);
    cr_assert_not_null(before);

    char path[600];
    snprintf(path, sizeof path, "%s/kizuna-backup.json", bdir);
    json_t *m = json_load_file(path, 0, NULL);
    cr_assert_not_null(m, "no manifest");
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        cr_assert_eq(strlen(json_string_value(json_object_get(f, "sha256"))),
                     64);
    }
    cr_assert_gt(json_array_size(json_object_get(m, "files")), 2);
    /* The node deleted its checkpoint once it was downloaded. */
    snprintf(path, sizeof path, "%s/node%d/data/backups/%s", cluster.dir,
             from, bid);
    struct stat sb;
    cr_assert_neq(stat(path, &sb), 0, "%s is still there", path);

    /* A backup taken on a follower: answered only once that follower
     * applied the entry holding the backup's own record, so the checkpoint
     * holds it (reads need only the entries before their record's). */
    int leader = kz_it_leader(&cluster);
    cr_assert_gt(leader, 0);
    char fnode[4];
    snprintf(fnode, sizeof fnode, "%d", leader % 3 + 1);
    kz_cli *op = kz_it_client(&cluster, "operator", fnode, 20000);
    const char *fh[] = {"X-Purpose: follower drill", NULL};
    kz_cli_response fb;
    cr_assert_eq(kz_cli_request(op, "POST", "/v1/cluster/backups", fh, "{}",
                                2, &fb),
                 KZ_CLI_OK);
    cr_assert_eq(fb.status, 201, "backup on node %s: %ld %s", fnode,
                 fb.status, fb.body);
    json_t *fm = json_loadb(fb.body, fb.body_len, 0, NULL);
    cr_assert_not_null(fm);
    cr_assert_eq(json_integer_value(json_object_get(fm, "node")),
                 leader % 3 + 1);
    long long fapplied =
        json_integer_value(json_object_get(fm, "applied_index"));
    json_decref(fm);
    kz_cli_response_free(&fb);
    kz_cli_close(op);

    /* The backup was an audited read. */
    kz_cli *aud = kz_it_client(&cluster, "auditor", NULL, 20000);
    kz_cli_response r = kz_it_call(aud, "GET", "/v1/audit?limit=500", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "backup.create"), "no audit record");
    cr_assert_not_null(strstr(r.body, "disaster recovery drill"));
    json_t *log = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(log);
    long long frec = -1;
    json_array_foreach(json_object_get(log, "items"), i, f)
    {
        const char *pur = json_string_value(json_object_get(f, "purpose"));
        if (pur != NULL && strcmp(pur, "follower drill") == 0)
            frec = json_integer_value(json_object_get(f, "raft_index"));
    }
    json_decref(log);
    cr_assert_gt(frec, 0, "no record of the follower's backup");
    cr_assert_geq(fapplied, frec,
                  "the follower's backup (applied index %lld) lacks its own "
                  "record (raft index %lld)",
                  fapplied, frec);
    kz_cli_response_free(&r);
    kz_cli_close(aud);

    /* A damaged copy is refused before anything is written. */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/backup-damaged", cluster.dir);
    snprintf(args, sizeof args,
             "cp -r '%s' '%s' && "
             "f=$(ls '%s'/*.sst '%s'/*.log 2>/dev/null | head -n 1) && "
             "printf 'X' | dd of=\"$f\" bs=1 seek=100 conv=notrunc "
             "2>/dev/null",
             bdir, bad, bad, bad);
    cr_assert_eq(system(args), 0);
    snprintf(args, sizeof args, "backup restore '%s' --data-dir '%s/x'", bad,
             cluster.dir);
    st = kz_it_cli(&cluster, "operator", args, &out);
    cr_assert_neq(st, 0, "a damaged backup was restored: %s", out);
    cr_assert_not_null(strstr(out, "damaged"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/x", cluster.dir);
    cr_assert_neq(stat(path, &sb), 0, "restore wrote into %s", path);

    /* Every region lost: the nodes' data directories are gone. */
    cr_assert_eq(kz_it_ctl(&cluster, "down"), 0);
    char digest[65] = "";
    for (int n = 1; n <= 3; n++) {
        snprintf(args, sizeof args, "rm -rf '%s/node%d/data'", cluster.dir,
                 n);
        cr_assert_eq(system(args), 0);
        snprintf(args, sizeof args,
                 "--json backup restore '%s' --data-dir '%s/node%d/data'",
                 bdir, cluster.dir, n);
        st = kz_it_cli(&cluster, "operator", args, &out);
        cr_assert_eq(st, 0, "restore node %d: %s", n, out);
        json_t *res = json_of(out);
        cr_assert_not_null(res, "%s", out);
        const char *d = json_string_value(json_object_get(res, "digest"));
        cr_assert_not_null(d);
        if (n == 1)
            snprintf(digest, sizeof digest, "%s", d);
        cr_assert_str_eq(d, digest, "restores differ");
        json_decref(res);
        free(out);
    }
    /* The restored state is the backed-up one (when nothing was applied on
     * that node between the backup and the digest call). */
    if (json_integer_value(json_object_get(before, "applied_index")) ==
        bindex)
        cr_assert_str_eq(
            digest, json_string_value(json_object_get(before, "digest")),
            "the restored state differs from the one backed up");

    /* A new cluster from those directories. */
    for (int n = 1; n <= 3; n++) {
        snprintf(args, sizeof args, "restart %d", n);
        cr_assert_eq(kz_it_ctl(&cluster, args), 0, "start node %d", n);
    }
    cr_assert(kz_it_wait(has_leader, NULL, 30000), "no leader after restore");
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    for (int k = 0; k < 30; k++) {
        char p[128];
        snprintf(p, sizeof p, "/v1/victims/%s", ids[k]);
        const char *hdr[] = {"X-Purpose: drill", NULL};
        kz_cli_response g;
        cr_assert_eq(kz_cli_request(cw, "GET", p, hdr, NULL, 0, &g),
                     KZ_CLI_OK);
        cr_assert_eq(g.status, 200, "victim %d after restore: %ld", k,
                     g.status);
        cr_assert_not_null(strstr(g.body, "復旧"));
        kz_cli_response_free(&g);
    }
    kz_cli_close(cw);
    /* The backup holds the record of its own making: the node it came
     * from applied that record's entry before writing the checkpoint. */
    aud = kz_it_client(&cluster, "auditor", NULL, 20000);
    r = kz_it_call(aud, "GET", "/v1/audit?limit=500", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body, "disaster recovery drill"),
                       "the restored audit log lacks the backup's record");
    kz_cli_response_free(&r);
    kz_cli_close(aud);
    w = kz_it_client(&cluster, "registrar", NULL, 20000);
    r = kz_it_call(w, "POST", "/v1/victims",
                   "{\"name\":\"新規 花子\",\"name_kana\":\"シンキ ハナコ\","
                   "\"dob\":\"1990-02-02\",\"sex\":\"female\"}");
    cr_assert_eq(r.status, 201, "a write after restore: %ld", r.status);
    kz_cli_response_free(&r);
    kz_cli_close(w);
    cr_assert(kz_it_wait(converged, NULL, 30000),
              "the restored nodes do not converge");
    json_decref(before);
    json_decref(made);
    json_decref(m);
}
