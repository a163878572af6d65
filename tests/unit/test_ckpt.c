/*
 * test_ckpt.c — file snapshots (consensus/ckpt.h): the codecs, the
 * directory of checkpoints, and fetching over real TLS from a real
 * kz_cons node (node 1, on a loop of its own in a thread, as another
 * process would be): a complete fetch, a fetch that resumes from what an
 * interrupted one left, a source that is down, and a checkpoint nobody has.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "kz_test_ports.h"
#include "ckpt.h"
#include "consensus.h"
#include "kz_endian.h"
#include "kz_fs.h"

static char tmp[64];
static char pki[128];
static int base_port;

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static void dirs_setup(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/kz-ckpt-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
}

static void dirs_teardown(void)
{
    cr_assert_eq(kz_fs_rmtree(tmp), KZ_OK);
}

/* ------------------------------------------------------------ codecs */

Test(ckpt, descriptor_round_trip_and_refusals)
{
    unsigned char d[KZ_CKPT_DESC_LEN];
    kz_cons__ckpt_desc_build(1234, 1200, d);
    uint64_t a, b;
    cr_assert_eq(kz_cons__ckpt_desc_parse(d, sizeof d, &a, &b), KZ_OK);
    cr_assert_eq(a, 1234);
    cr_assert_eq(b, 1200);
    cr_assert_eq(kz_cons__ckpt_desc_parse(d, sizeof d - 1, &a, &b),
                 KZ_ECORRUPT);
    kz_cons__ckpt_desc_build(10, 11, d); /* state past raft: impossible */
    cr_assert_eq(kz_cons__ckpt_desc_parse(d, sizeof d, &a, &b), KZ_ECORRUPT);
    kz_cons__ckpt_desc_build(10, 9, d);
    d[0] = 'X';
    cr_assert_eq(kz_cons__ckpt_desc_parse(d, sizeof d, &a, &b), KZ_ECORRUPT);
}

Test(ckpt, names_cannot_leave_their_directory)
{
    const char *good[] = {"000123.sst", "MANIFEST-000005", "CURRENT",
                          "OPTIONS-000007", "000009.blob", "a_b-c.d"};
    const char *bad[] = {"", ".", "..", "../x", "a/b", ".progress", "a b",
                         "x\n", "/etc"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_assert(kz_fs_name_ok(good[i], strlen(good[i])), "%s",
                  good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert(!kz_fs_name_ok(bad[i], strlen(bad[i])), "%s",
                  bad[i]);
    char longname[KZ_CKPT_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert(!kz_fs_name_ok(longname, strlen(longname)));
    cr_assert(kz_fs_name_ok(longname, KZ_CKPT_NAME_MAX));
}

Test(ckpt, get_and_info_round_trip)
{
    unsigned char req[KZ_CKPT_GET_MAX];
    size_t n = kz_cons__ckpt_get_build(7, 1 << 20, 4096, "000001.sst", req);
    cr_assert_gt(n, 0);
    uint64_t idx, off;
    uint32_t len;
    char name[KZ_CKPT_NAME_MAX + 1];
    cr_assert_eq(kz_cons__ckpt_get_parse(req, n, &idx, &off, &len, name),
                 KZ_OK);
    cr_assert(idx == 7 && off == (1 << 20) && len == 4096);
    cr_assert_str_eq(name, "000001.sst");
    cr_assert_eq(kz_cons__ckpt_get_parse(req, n - 1, &idx, &off, &len, name),
                 KZ_ECORRUPT);
    cr_assert_eq(kz_cons__ckpt_get_build(7, 0, 10, "../etc", req), 0);
    n = kz_cons__ckpt_get_build(7, 0, KZ_CKPT_CHUNK + 1, "x", req);
    cr_assert_eq(kz_cons__ckpt_get_parse(req, n, &idx, &off, &len, name),
                 KZ_ECORRUPT, "more than a chunk");

    struct kz_fs_file files[2] = {{"b.sst", 10}, {"a.sst", 0}};
    struct kz_cons__ckpt_info in = {.index = 9, .n = 2, .files = files};
    unsigned char *p;
    size_t plen;
    cr_assert_eq(kz_cons__ckpt_info_build(0, &in, &p, &plen), KZ_OK);
    struct kz_cons__ckpt_info out;
    cr_assert_eq(kz_cons__ckpt_info_parse(p, plen, &out), KZ_OK);
    cr_assert_eq(out.index, 9);
    cr_assert_eq(out.n, 2);
    cr_assert_eq(out.total, 10);
    cr_assert_str_eq(out.files[0].name, "a.sst"); /* sorted */
    kz_cons__ckpt_info_free(&out);
    cr_assert_eq(kz_cons__ckpt_info_parse(p, plen - 1, &out), KZ_ECORRUPT);
    free(p);
    files[1] = files[0]; /* a duplicate name */
    cr_assert_eq(kz_cons__ckpt_info_build(0, &in, &p, &plen), KZ_OK);
    cr_assert_eq(kz_cons__ckpt_info_parse(p, plen, &out), KZ_ECORRUPT);
    free(p);
    cr_assert_eq(kz_cons__ckpt_info_build(KZ_ENOTFOUND, NULL, &p, &plen),
                 KZ_OK);
    cr_assert_eq(kz_cons__ckpt_info_parse(p, plen, &out), KZ_ENOTFOUND);
    free(p);
}

/* ------------------------------------------------------- the directory */

static void mkdirf(const char *root, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", root, name);
    cr_assert_eq(mkdir(path, 0700), 0, "%s", path);
}

static bool exists(const char *root, const char *name)
{
    char path[256];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", root, name);
    return stat(path, &sb) == 0;
}

Test(ckpt, newest_and_prune, .init = dirs_setup, .fini = dirs_teardown)
{
    mkdirf(tmp, "00000000000000000001");
    mkdirf(tmp, "00000000000000000005");
    mkdirf(tmp, "00000000000000000003");
    mkdirf(tmp, "incoming-00000000000000000007");
    mkdirf(tmp, "tmp-00000000000000000002");
    mkdirf(tmp, "0000000000000000009"); /* 19 digits: not a checkpoint */
    uint64_t idx;
    cr_assert_eq(kz_cons__ckpt_newest(tmp, 4, &idx), KZ_OK);
    cr_assert_eq(idx, 5);
    cr_assert_eq(kz_cons__ckpt_newest(tmp, 6, &idx), KZ_ENOTFOUND,
                 "a partial fetch is not a checkpoint");
    kz_cons__ckpt_prune(tmp, 2, 7);
    cr_assert(exists(tmp, "00000000000000000005"));
    cr_assert(exists(tmp, "00000000000000000003"));
    cr_assert(!exists(tmp, "00000000000000000001"));
    cr_assert(exists(tmp, "incoming-00000000000000000007"), "kept");
    cr_assert(!exists(tmp, "tmp-00000000000000000002"));
    cr_assert(exists(tmp, "0000000000000000009"), "not ours");
    kz_cons__ckpt_prune(tmp, 2, 0);
    cr_assert(!exists(tmp, "incoming-00000000000000000007"));
}

Test(ckpt, serving_refuses_traversal_and_reads_past_the_end,
     .init = dirs_setup, .fini = dirs_teardown)
{
    mkdirf(tmp, "00000000000000000004");
    char path[256];
    snprintf(path, sizeof path, "%s/00000000000000000004/a.sst", tmp);
    write_file(path, "hello", 5);
    unsigned char req[KZ_CKPT_GET_MAX], *out;
    size_t olen;
    int type;
    /* A hand-made request naming "../x" is malformed: the link closes. */
    size_t n = kz_cons__ckpt_get_build(4, 0, 1, "a.sst", req);
    req[21] = 4;
    memcpy(req + 22, "../x", 4);
    cr_assert_eq(kz_cons__ckpt_serve(tmp, KZ_F_CKPT_GET, req, 26, &out, &olen,
                                     &type),
                 KZ_ECORRUPT);
    n = kz_cons__ckpt_get_build(4, 0, 5, "a.sst", req);
    cr_assert_eq(kz_cons__ckpt_serve(tmp, KZ_F_CKPT_GET, req, n, &out, &olen,
                                     &type),
                 KZ_OK);
    cr_assert_eq(type, KZ_F_CKPT_DATA);
    cr_assert_eq(olen, KZ_CKPT_DATA_HEADER + 5);
    cr_assert_eq(kz_get_be32(out), 0);
    cr_assert(memcmp(out + KZ_CKPT_DATA_HEADER, "hello", 5) == 0);
    free(out);
    n = kz_cons__ckpt_get_build(4, 3, 5, "a.sst", req);
    cr_assert_eq(kz_cons__ckpt_serve(tmp, KZ_F_CKPT_GET, req, n, &out, &olen,
                                     &type),
                 KZ_OK);
    cr_assert_eq(kz_get_be32(out), KZ_EINVAL, "past the end");
    free(out);
    n = kz_cons__ckpt_get_build(4, 0, 5, "b.sst", req);
    cr_assert_eq(kz_cons__ckpt_serve(tmp, KZ_F_CKPT_GET, req, n, &out, &olen,
                                     &type),
                 KZ_OK);
    cr_assert_eq(kz_get_be32(out), KZ_ENOTFOUND);
    free(out);
}

/* A checkpoint a peer is fetching outlives newer ones: prune keeps it
 * while the pin lasts, and removes it once the pin is gone. */
Test(ckpt, prune_keeps_a_checkpoint_being_served, .init = dirs_setup,
     .fini = dirs_teardown)
{
    mkdirf(tmp, "00000000000000000002");
    char path[256];
    snprintf(path, sizeof path, "%s/00000000000000000002/a.sst", tmp);
    write_file(path, "hello", 5);
    unsigned char req[KZ_CKPT_GET_MAX], *out;
    size_t olen;
    int type;
    size_t n = kz_cons__ckpt_get_build(2, 0, 5, "a.sst", req);
    cr_assert_eq(kz_cons__ckpt_serve(tmp, KZ_F_CKPT_GET, req, n, &out, &olen,
                                     &type),
                 KZ_OK);
    cr_assert_eq(kz_get_be32(out), 0);
    free(out);
    mkdirf(tmp, "00000000000000000004");
    mkdirf(tmp, "00000000000000000006");
    mkdirf(tmp, "00000000000000000001");
    kz_cons__ckpt_prune(tmp, 2, 0);
    cr_assert(exists(tmp, "00000000000000000006"));
    cr_assert(exists(tmp, "00000000000000000004"));
    cr_assert(exists(tmp, "00000000000000000002"), "being fetched");
    cr_assert(!exists(tmp, "00000000000000000001"));
    /* The same directory name elsewhere is not pinned. */
    char other[300];
    snprintf(other, sizeof other, "%s/other", tmp);
    cr_assert_eq(mkdir(other, 0700), 0);
    mkdirf(other, "00000000000000000002");
    mkdirf(other, "00000000000000000004");
    mkdirf(other, "00000000000000000006");
    kz_cons__ckpt_prune(other, 2, 0);
    cr_assert(!exists(other, "00000000000000000002"));
    kz_cons__ckpt_unpin_all();
    kz_cons__ckpt_prune(tmp, 2, 0);
    cr_assert(!exists(tmp, "00000000000000000002"), "no longer fetched");
    cr_assert(exists(tmp, "00000000000000000006"));
}

/* ------------------------------------------------------------ fetching */

static uv_loop_t sloop;
static kz_cons *srv;
static uv_thread_t sthread;
static uv_async_t stop_async;
static char srv_root[128];

static int s_apply(void *data, uint64_t index, const char *cmd, size_t len,
                   bool want, char **result, size_t *rlen)
{
    (void)data, (void)index, (void)cmd, (void)len, (void)want;
    (void)result, (void)rlen;
    return 0;
}

static uint64_t s_applied(void *data)
{
    (void)data;
    return 0;
}

static int s_checkpoint(void *data, const char *dir)
{
    (void)data;
    return mkdir(dir, 0700) == 0 ? KZ_OK : KZ_EIO;
}

static int s_install(void *data, const char *dir)
{
    (void)data, (void)dir;
    return KZ_OK;
}

static void on_srv_closed(void *data)
{
    (void)data;
}

static void on_stop(uv_async_t *a)
{
    kz_cons_close(srv, on_srv_closed, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void srv_main(void *arg)
{
    (void)arg;
    uv_run(&sloop, UV_RUN_DEFAULT);
}

static void addr_of(int i, char *out, size_t n)
{
    snprintf(out, n, "127.0.0.1:%d", base_port + i);
}

static void pki_file(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", pki, name);
}

static char big[5 * KZ_CKPT_CHUNK + 12345];

/* Node 1 serves checkpoint 42: a 5.x MB file, a small one, an empty one. */
static void fetch_setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    dirs_setup();
    base_port = kz_test_free_ports(4);
    cr_assert_geq(base_port, 0, "no free loopback ports");
    snprintf(pki, sizeof pki, "%s/pki", tmp);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "'%s/deploy/gen-pki' %s 1:127.0.0.1 2:127.0.0.1 3:127.0.0.1 "
             ">/dev/null 2>&1",
             KZ_SOURCE_DIR, pki);
    cr_assert_eq(system(cmd), 0, "gen-pki");
    snprintf(srv_root, sizeof srv_root, "%s/srv", tmp);
    cr_assert_eq(mkdir(srv_root, 0700), 0);
    mkdirf(srv_root, "00000000000000000042");
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 2654435761u >> 13);
    char path[256];
    snprintf(path, sizeof path, "%s/00000000000000000042/000007.sst",
             srv_root);
    write_file(path, big, sizeof big);
    snprintf(path, sizeof path, "%s/00000000000000000042/MANIFEST-000001",
             srv_root);
    write_file(path, "manifest", 8);
    snprintf(path, sizeof path, "%s/00000000000000000042/000008.log",
             srv_root);
    write_file(path, "", 0);

    struct kz_cons_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.id = 1;
    char raftdir[128];
    snprintf(raftdir, sizeof raftdir, "%s/raft", tmp);
    cr_assert_eq(mkdir(raftdir, 0700), 0);
    cfg.dir = raftdir;
    for (int j = 0; j < 3; j++) {
        cfg.peers[j].id = (uint64_t)j + 1;
        snprintf(cfg.peers[j].region, sizeof cfg.peers[j].region, "r%d", j);
        addr_of(j, cfg.peers[j].raft_addr, sizeof cfg.peers[j].raft_addr);
    }
    cfg.n_peers = 3;
    cfg.election_timeout_ms = 1000;
    cfg.heartbeat_timeout_ms = 100;
    char cert[256], key[256], ca[256];
    pki_file(cert, sizeof cert, "node-1.pem");
    pki_file(key, sizeof key, "node-1.key");
    pki_file(ca, sizeof ca, "ca.pem");
    cfg.tls_cert = cert;
    cfg.tls_key = key;
    cfg.tls_ca = ca;
    cfg.snapshot_dir = srv_root;
    struct kz_cons_fsm fsm = {.apply = s_apply,
                              .applied_index = s_applied,
                              .checkpoint = s_checkpoint,
                              .install = s_install};
    uv_loop_init(&sloop);
    char err[256];
    cr_assert_eq(kz_cons_init(&srv, &sloop, &cfg, &fsm, err, sizeof err),
                 KZ_OK, "%s", err);
    cr_assert_eq(kz_cons_start(srv, err, sizeof err), KZ_OK, "%s", err);
    uv_async_init(&sloop, &stop_async, on_stop);
    cr_assert_eq(uv_thread_create(&sthread, srv_main, NULL), 0);
}

static void fetch_teardown(void)
{
    uv_async_send(&stop_async);
    uv_thread_join(&sthread);
    kz_cons_free(srv);
    while (uv_run(&sloop, UV_RUN_NOWAIT) != 0)
        ;
    uv_loop_close(&sloop);
    dirs_teardown();
}

/* Fetches into root as node 2, from sources (node ids). */
static int fetch(const char *root, uint64_t min, const int *ids, unsigned n,
                 unsigned deadline_ms, struct kz_cons__ckpt_fetched *got,
                 char *err, size_t errlen)
{
    char cert[256], key[256], ca[256], self[64];
    pki_file(cert, sizeof cert, "node-2.pem");
    pki_file(key, sizeof key, "node-2.key");
    pki_file(ca, sizeof ca, "ca.pem");
    addr_of(1, self, sizeof self);
    struct kz_cons__tls_config tc = {.id = 2,
                                     .address = self,
                                     .cert = cert,
                                     .key = key,
                                     .ca = ca,
                                     .handshake_timeout_ms = 2000};
    struct kz_cons__ckpt_source src[3];
    for (unsigned i = 0; i < n; i++) {
        src[i].id = (uint64_t)ids[i];
        addr_of(ids[i] - 1, src[i].addr, sizeof src[i].addr);
    }
    struct kz_cons__ckpt_fetch_args a = {.tls = &tc,
                                         .root = root,
                                         .min_index = min,
                                         .sources = src,
                                         .n_sources = n,
                                         .deadline_ms = deadline_ms,
                                         .idle_timeout_ms = 2000,
                                         .self_id = 2};
    return kz_cons__ckpt_fetch(&a, got, err, errlen);
}

static void assert_same_checkpoint(const char *root)
{
    const char *names[] = {"000007.sst", "MANIFEST-000001", "000008.log"};
    for (int i = 0; i < 3; i++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "%s/00000000000000000042/%s", srv_root,
                 names[i]);
        snprintf(b, sizeof b, "%s/00000000000000000042/%s", root, names[i]);
        size_t la, lb;
        char *x = read_file(a, &la), *y = read_file(b, &lb);
        cr_assert_not_null(y, "%s missing", b);
        cr_assert_eq(la, lb, "%s: %zu bytes, not %zu", names[i], lb, la);
        cr_assert(memcmp(x, y, la) == 0, "%s differs", names[i]);
        free(x);
        free(y);
    }
    cr_assert(!exists(root, "incoming-00000000000000000042"));
    cr_assert(!exists(root, "00000000000000000042/.progress"));
}

Test(ckpt, fetches_from_the_first_source_that_answers,
     .init = fetch_setup, .fini = fetch_teardown, .timeout = 60)
{
    char root[128], err[256] = "";
    snprintf(root, sizeof root, "%s/dst", tmp);
    cr_assert_eq(mkdir(root, 0700), 0);
    int ids[] = {3, 1}; /* node 3 is down */
    struct kz_cons__ckpt_fetched got;
    cr_assert_eq(fetch(root, 40, ids, 2, 30000, &got, err, sizeof err),
                 KZ_OK, "%s", err);
    cr_assert_eq(got.index, 42);
    cr_assert_eq(got.source, 1);
    cr_assert_eq(got.total, sizeof big + 8);
    cr_assert_eq(got.bytes, got.total);
    assert_same_checkpoint(root);
}

Test(ckpt, resumes_where_an_interrupted_fetch_stopped,
     .init = fetch_setup, .fini = fetch_teardown, .timeout = 60)
{
    char root[128], inc[256], path[320], err[256] = "";
    snprintf(root, sizeof root, "%s/dst", tmp);
    cr_assert_eq(mkdir(root, 0700), 0);
    /* What a fetch killed after 3 MB leaves: the file, and its progress. */
    snprintf(inc, sizeof inc, "%s/incoming-00000000000000000042", root);
    cr_assert_eq(mkdir(inc, 0700), 0);
    snprintf(path, sizeof path, "%s/000007.sst", inc);
    write_file(path, big, 3 * KZ_CKPT_CHUNK + 100); /* 100 bytes past */
    snprintf(path, sizeof path, "%s/.progress", inc);
    char line[64];
    snprintf(line, sizeof line, "000007.sst %u\n", 3 * KZ_CKPT_CHUNK);
    write_file(path, line, strlen(line));
    int ids[] = {1};
    struct kz_cons__ckpt_fetched got;
    cr_assert_eq(fetch(root, 42, ids, 1, 30000, &got, err, sizeof err),
                 KZ_OK, "%s", err);
    cr_assert_eq(got.index, 42);
    cr_assert_eq(got.bytes, got.total - 3 * KZ_CKPT_CHUNK,
                 "fetched %llu of %llu", (unsigned long long)got.bytes,
                 (unsigned long long)got.total);
    assert_same_checkpoint(root);
}

Test(ckpt, a_checkpoint_nobody_has_times_out,
     .init = fetch_setup, .fini = fetch_teardown, .timeout = 60)
{
    char root[128], err[256] = "";
    snprintf(root, sizeof root, "%s/dst", tmp);
    cr_assert_eq(mkdir(root, 0700), 0);
    int ids[] = {1, 3};
    struct kz_cons__ckpt_fetched got;
    cr_assert_eq(fetch(root, 43, ids, 2, 1500, &got, err, sizeof err),
                 KZ_ETIMEDOUT);
    cr_assert(strstr(err, "index 43") != NULL, "%s", err);
    uint64_t idx;
    cr_assert_eq(kz_cons__ckpt_newest(root, 0, &idx), KZ_ENOTFOUND);
}
