/*
 * A full disk on one node: node 3's data dir is a small tmpfs, filled up
 * while the cluster takes photo writes. Node 3 must stop with a clear
 * reason (a level=fatal log line, exit 75) when its free space falls under
 * min_free_mb, before RocksDB meets the full disk (Debian's RocksDB then
 * aborts on an assertion in a background flush); the other two keep
 * acknowledging writes; once space returns node 3 starts again, replays its
 * raft log and holds every acknowledged write.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "harness.h"

static struct kz_it_cluster cluster;
static char tmpfs[300];
static bool mounted;

static void teardown(void)
{
    if (mounted)
        umount2(tmpfs, MNT_DETACH); /* before the harness removes the dir */
    mounted = false;
    kz_it_down(&cluster);
}

static bool has_leader(void *arg)
{
    (void)arg;
    return kz_it_leader(&cluster) != 0;
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

static long long top_applied(void)
{
    long long top = -1;
    for (int i = 1; i <= 2; i++) {
        long long a = kz_it_applied(&cluster, i);
        if (a > top)
            top = a;
    }
    return top;
}

static int sh(const char *fmt, const char *a, const char *b)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

/* A photo of len bytes: the JPEG magic, then bytes that do not compress. */
static unsigned char *photo(size_t len, unsigned seed)
{
    unsigned char *p = malloc(len);
    cr_assert_not_null(p);
    uint64_t s = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (size_t i = 0; i < len; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (unsigned char)s;
    }
    p[0] = 0xff;
    p[1] = 0xd8;
    p[2] = 0xff;
    p[3] = 0xe0;
    return p;
}

Test(disk_full, node_stops_cleanly_and_recovers, .fini = teardown,
     .timeout = 600)
{
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);
    cr_assert(kz_it_wait(has_leader, NULL, 30000), "no leader");

    /* Node 3's data onto a 256 MB tmpfs of its own. */
    cr_assert_eq(kz_it_ctl(&cluster, "kill 3"), 0);
    char data[300], old[320];
    snprintf(data, sizeof data, "%s/node3/data", cluster.dir);
    snprintf(old, sizeof old, "%s/node3/data.old", cluster.dir);
    snprintf(tmpfs, sizeof tmpfs, "%s", data);
    cr_assert_eq(rename(data, old), 0);
    cr_assert_eq(sh("mkdir -p '%s'%s", data, ""), 0);
    cr_assert_eq(mount("kizuna-it", data, "tmpfs", 0, "size=256m"), 0,
                 "mounting a tmpfs needs root (the test runs as root in CI)");
    mounted = true;
    cr_assert_eq(sh("cp -a '%s/.' '%s/'", old, data), 0);
    cr_assert_eq(kz_it_ctl(&cluster, "restart 3"), 0);
    struct caught k = {3, top_applied()};
    cr_assert(kz_it_wait(caught_up, &k, 60000), "node 3 did not come back");

    kz_cli *rg = kz_it_client(&cluster, "registrar", "1,2", 20000);
    kz_cli_response r = kz_it_call(
        rg, "POST", "/v1/victims",
        "{\"name\":\"満杯 試験\",\"name_kana\":\"マンパイ シケン\","
        "\"dob\":\"1980-02-02\",\"sex\":\"female\"}");
    cr_assert_eq(r.status, 201);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    kz_cli_response_free(&r);

    /* Leave node 3 8 MB above min_free_mb (64 MB by default): the writes
     * below take it under, and it must stop before RocksDB meets a full
     * disk. */
    struct statvfs sv;
    cr_assert_eq(statvfs(data, &sv), 0);
    unsigned long long avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
    cr_assert_gt(avail, 80u << 20, "the tmpfs should have room left (%llu MB)", avail >> 20);
    char filler[340];
    snprintf(filler, sizeof filler, "%s/filler", data);
    int fd = open(filler, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    /* fallocate(2), not posix_fallocate: binaries that link kz_cons wrap
     * the latter to write zeros (consensus.c). */
    cr_assert_eq(fallocate(fd, 0, 0, (off_t)(avail - (72u << 20))), 0);
    close(fd);

    /* Photos of 1 MB through nodes 1 and 2 until node 3 stops. Every one
     * must be acknowledged: two of three nodes are a quorum. */
    char path[128];
    snprintf(path, sizeof path, "/v1/photos/%s", id);
    const size_t len = 1u << 20;
    unsigned sent = 0;
    unsigned char *last = NULL;
    while (sent < 60 && kz_it_applied(&cluster, 3) >= 0) {
        free(last);
        last = photo(len, sent);
        int rv = kz_cli_request(rg, "PUT", path, NULL, (const char *)last,
                                len, &r);
        cr_assert_eq(rv, KZ_CLI_OK, "photo %u: %s", sent, kz_cli_strerror(rv));
        cr_assert(r.status == 200 || r.status == 201, "photo %u: %ld", sent,
                  r.status);
        kz_cli_response_free(&r);
        sent++;
    }
    char logp[340];
    snprintf(logp, sizeof logp, "%s/node3/kizunad.log", cluster.dir);
    cr_assert_lt(sent, 60, "node 3 never stopped on its full disk");
    char *log = kz_it_slurp(logp);
    cr_assert_not_null(log);
    /* A log line (docs/OPERATIONS.md, "Logs") with level=fatal and
     * exit=75. */
    bool said_why = false;
    for (char *line = log; line != NULL && *line != '\0' && !said_why;) {
        char *eol = strchr(line, '\n');
        if (eol != NULL)
            *eol = '\0';
        said_why = strstr(line, " level=fatal ") != NULL &&
                   strstr(line, " exit=75") != NULL;
        if (eol != NULL)
            *eol = '\n';
        line = eol != NULL ? eol + 1 : NULL;
    }
    cr_assert(said_why, "node 3 stopped without saying why:\n%s", log);
    cr_assert(strstr(log, "Assertion") == NULL,
              "node 3 aborted instead of stopping:\n%s", log);
    free(log);

    /* Writes go on without it. */
    unsigned char *more = photo(len, 999);
    int rv = kz_cli_request(rg, "PUT", path, NULL, (const char *)more, len,
                            &r);
    cr_assert_eq(rv, KZ_CLI_OK);
    cr_assert(r.status == 200 || r.status == 201);
    kz_cli_response_free(&r);
    free(last);
    last = more;

    /* Space returns: node 3 starts again and catches up. */
    cr_assert_eq(unlink(filler), 0);
    cr_assert_eq(kz_it_ctl(&cluster, "restart 3"), 0);
    k.target = top_applied();
    cr_assert(kz_it_wait(caught_up, &k, 60000),
              "node 3 did not catch up after space returned");
    kz_cli *tm = kz_it_client(&cluster, "terminal", "3", 10000);
    char sp[160];
    snprintf(sp, sizeof sp, "%s?consistency=stale", path);
    r = kz_it_call(tm, "GET", sp, NULL);
    cr_assert_eq(r.status, 200, "photo on node 3: %ld", r.status);
    cr_assert_str_eq(r.node, "3");
    cr_assert_eq(r.body_len, len);
    cr_assert(memcmp(r.body, last, len) == 0,
              "node 3 holds the last acknowledged photo");
    kz_cli_response_free(&r);
    kz_cli_close(tm);
    kz_cli_close(rg);
    free(last);
}
