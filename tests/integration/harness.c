/*
 * harness.c — see harness.h.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The reaper: a shell whose standard input is a pipe that only the test
 * process holds open. When the test process is gone, however it ended, the
 * shell's `cat` sees EOF and the cluster is stopped by its recorded pids.
 * It runs in its own session (a kill of the test's process group leaves it
 * alone) under its own name (a pkill of test binaries too). */
static int start_reaper(const char *dir, int *wfd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setsid();
        dup2(p[0], 0); /* dup2 clears O_CLOEXEC on the copy */
        close(p[0]);
        close(p[1]);
        char script[1024];
        snprintf(script, sizeof script,
                 "cat >/dev/null; '%s/deploy/local-cluster' down --dir '%s' "
                 ">/dev/null 2>&1; rm -rf '%s'",
                 KZ_SOURCE_DIR, dir, dir);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    *wfd = p[1];
    return pid;
}

static unsigned rnd(void)
{
    unsigned v;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (unsigned)time(NULL) ^ (unsigned)getpid();
    return v;
}

int kz_it_ctl(struct kz_it_cluster *c, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s/deploy/local-cluster' %s --dir '%s' >>'%s/harness.log' 2>&1",
             KZ_SOURCE_DIR, args, c->dir, c->dir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void kz_it_up(struct kz_it_cluster *c, const char *regions,
              const char *const *sets)
{
    kz_it_up_spares(c, regions, NULL, sets);
}

static void up(struct kz_it_cluster *c, const char *regions,
               const char *spares, bool unlisted, const char *const *sets);

void kz_it_up_spares(struct kz_it_cluster *c, const char *regions,
                     const char *spares, const char *const *sets)
{
    up(c, regions, spares, false, sets);
}

void kz_it_up_unlisted(struct kz_it_cluster *c, const char *regions,
                       const char *spares, const char *const *sets)
{
    up(c, regions, spares, true, sets);
}

static void up(struct kz_it_cluster *c, const char *regions,
               const char *spares, bool unlisted, const char *const *sets)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "/tmp/kizuna-it-XXXXXX");
    cr_assert_not_null(mkdtemp(c->dir), "mkdtemp");
    unsigned r = rnd();
    snprintf(c->net, sizeof c->net, "127.%u.%u", 100 + r % 150,
             (r >> 8) % 250 + 1);
    /* Below the ephemeral range (32768+), where a listener could collide
     * with the local end of an outgoing connection. */
    c->port = 20000 + (int)((r >> 16) % 12000);
    c->reaper_pid = start_reaper(c->dir, &c->reaper_fd);
    cr_assert_gt(c->reaper_pid, 0, "reaper");
    /* Count nodes in "name:n,name:n". */
    for (const char *p = regions; (p = strchr(p, ':')) != NULL; p++)
        c->n += atoi(p + 1);
    c->members = c->n;
    for (const char *p = spares; p && (p = strchr(p, ':')) != NULL; p++)
        c->n += atoi(p + 1);
    cr_assert(c->n > 0 && c->n <= KZ_IT_MAX_NODES);
    for (int i = 1; i <= c->n; i++)
        snprintf(c->url[i], sizeof c->url[i], "https://%s.%d:%d", c->net,
                 10 + i, c->port);
    char args[768];
    int off = snprintf(args, sizeof args,
                       "up --regions %s --net %s --port %d --bin '%s'",
                       regions, c->net, c->port, KZ_BIN_DIR);
    if (spares != NULL)
        off += snprintf(args + off, sizeof args - (size_t)off,
                        " --spares %s%s", spares,
                        unlisted ? " --unlisted-spares" : "");
    for (; sets && *sets; sets++)
        off += snprintf(args + off, sizeof args - (size_t)off, " --set %s",
                        *sets);
    int st = kz_it_ctl(c, args);
    if (st != 0) {
        char path[300];
        snprintf(path, sizeof path, "%s/harness.log", c->dir);
        char *log = kz_it_slurp(path);
        fprintf(stderr, "%s\n", log ? log : "");
        free(log);
    }
    cr_assert_eq(st, 0, "local-cluster up failed (see above)");
}

void kz_it_down(struct kz_it_cluster *c)
{
    if (c->reaper_pid <= 0)
        return;
    close(c->reaper_fd); /* the reaper stops the nodes and cleans up */
    int st;
    waitpid(c->reaper_pid, &st, 0);
    c->reaper_pid = 0;
}

kz_cli *kz_it_client(struct kz_it_cluster *c, const char *role,
                     const char *nodes, long deadline_ms)
{
    char eps[1024] = "";
    int off = 0;
    for (int i = 1; i <= c->n; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", i);
        if (nodes != NULL) {
            /* match a whole id in the comma list */
            bool found = false;
            const char *p = nodes;
            while (*p) {
                size_t l = strcspn(p, ",");
                if (l == strlen(id) && strncmp(p, id, l) == 0)
                    found = true;
                p += l + (p[l] == ',');
            }
            if (!found)
                continue;
        }
        off += snprintf(eps + off, sizeof eps - (size_t)off, "%s%s",
                        off ? "," : "", c->url[i]);
    }
    char ca[300], cert[300], key[300], err[256];
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", c->dir);
    snprintf(cert, sizeof cert, "%s/pki/%s.pem", c->dir, role);
    snprintf(key, sizeof key, "%s/pki/%s.key", c->dir, role);
    kz_cli_opts o;
    memset(&o, 0, sizeof o);
    o.endpoints = eps;
    o.cacert = ca;
    o.cert = cert;
    o.key = key;
    o.purpose = "integration-test";
    o.deadline_ms = deadline_ms;
    o.request_timeout_ms = deadline_ms;
    kz_cli *cli = NULL;
    int rv = kz_cli_open(&o, &cli, err, sizeof err);
    cr_assert_eq(rv, KZ_CLI_OK, "kz_cli_open: %s", err);
    return cli;
}

int kz_it_cli(struct kz_it_cluster *c, const char *role, const char *args,
              char **out)
{
    char eps[600] = "";
    for (int i = 1, off = 0; i <= c->members; i++)
        off += snprintf(eps + off, sizeof eps - (size_t)off, "%s%s",
                        i > 1 ? "," : "", c->url[i]);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/kizuna' --endpoints '%s' --cacert '%s/pki/ca.pem' "
             "--cert '%s/pki/%s.pem' --key '%s/pki/%s.key' --timeout 30 %s "
             "2>&1",
             KZ_BIN_DIR, eps, c->dir, c->dir, role, c->dir, role, args);
    return kz_it_run(cmd, out);
}

int kz_it_run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *more = realloc(buf, cap * 2);
            cr_assert_not_null(more);
            buf = more;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *kz_it_error_code(const kz_cli_response *r, char *buf,
                             size_t len)
{
    buf[0] = '\0';
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    const char *c =
        json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    if (c != NULL)
        snprintf(buf, len, "%s", c);
    json_decref(j);
    return buf;
}

kz_cli_response kz_it_call(kz_cli *cli, const char *method, const char *path,
                           const char *body)
{
    kz_cli_response r;
    int rv = kz_cli_request(cli, method, path, NULL, body,
                            body ? strlen(body) : 0, &r);
    if (rv != KZ_CLI_OK) {
        kz_cli_response_free(&r);
        memset(&r, 0, sizeof r);
        r.index = -1;
        r.stale_ms = -1;
    }
    return r;
}

bool kz_it_wait(bool (*cond)(void *), void *arg, int timeout_ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (cond(arg))
            return true;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 +
                  (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > timeout_ms)
            return false;
        struct timespec d = {0, 50 * 1000000};
        nanosleep(&d, NULL); /* poll interval, not a wait for an event */
    }
}

static json_t *cluster_json(struct kz_it_cluster *c, const char *nodes)
{
    kz_cli *cli = kz_it_client(c, "operator", nodes, 1500);
    kz_cli_response r = kz_it_call(cli, "GET", "/v1/cluster", NULL);
    json_t *j = NULL;
    if (r.status == 200)
        j = json_loadb(r.body, r.body_len, 0, NULL);
    kz_cli_response_free(&r);
    kz_cli_close(cli);
    return j;
}

json_t *kz_it_digest(struct kz_it_cluster *c, int node)
{
    char nodes[8];
    snprintf(nodes, sizeof nodes, "%d", node);
    kz_cli *op = kz_it_client(c, "operator", nodes, 10000);
    kz_cli_response r = kz_it_call(op, "GET", "/v1/cluster/digest", NULL);
    json_t *j = r.status == 200 ? json_loadb(r.body, r.body_len, 0, NULL)
                                : NULL;
    kz_cli_response_free(&r);
    kz_cli_close(op);
    return j;
}

bool kz_it_digests_equal(struct kz_it_cluster *c, int n)
{
    json_t *d[KZ_IT_MAX_NODES];
    bool same = n > 0 && n <= KZ_IT_MAX_NODES;
    for (int i = 0; same && i < n; i++)
        d[i] = kz_it_digest(c, i + 1);
    for (int i = 0; same && i < n; i++)
        if (d[i] == NULL || d[0] == NULL ||
            json_integer_value(json_object_get(d[i], "applied_index")) !=
                json_integer_value(json_object_get(d[0], "applied_index")) ||
            !json_is_string(json_object_get(d[i], "digest")) ||
            !json_equal(json_object_get(d[i], "digest"),
                        json_object_get(d[0], "digest")))
            same = false;
    if (n > 0 && n <= KZ_IT_MAX_NODES)
        for (int i = 0; i < n; i++)
            json_decref(d[i]);
    return same;
}

int kz_it_leader(struct kz_it_cluster *c)
{
    json_t *j = cluster_json(c, NULL);
    int id = j ? (int)json_integer_value(json_object_get(j, "leader")) : 0;
    json_decref(j);
    return id;
}

bool kz_it_has_leader(void *cluster)
{
    return kz_it_leader(cluster) != 0;
}

int kz_it_node_pid(struct kz_it_cluster *c, int node)
{
    char path[320];
    snprintf(path, sizeof path, "%s/node%d/pid", c->dir, node);
    char *s = kz_it_slurp(path);
    cr_assert_not_null(s, "no pid file for node %d", node);
    int pid = atoi(s);
    free(s);
    cr_assert_gt(pid, 1);
    return pid;
}

long long kz_it_applied(struct kz_it_cluster *c, int node)
{
    char ids[8];
    snprintf(ids, sizeof ids, "%d", node);
    json_t *j = cluster_json(c, ids);
    long long idx = -1;
    if (j != NULL) {
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(j, "nodes"), i, v)
        {
            if (json_integer_value(json_object_get(v, "id")) == node)
                idx = json_integer_value(json_object_get(v, "applied_index"));
        }
    }
    json_decref(j);
    return idx;
}

char *kz_it_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b != NULL) {
        size_t got = fread(b, 1, (size_t)n, f);
        b[got] = '\0';
    }
    fclose(f);
    return b;
}

/* Counts files under dir (recursively) that contain needle. */
int kz_it_files_containing(const char *dir, const char *needle,
                            const char *name_part)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int hits = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            hits += kz_it_files_containing(path, needle, name_part);
            continue;
        }
        if (!S_ISREG(st.st_mode) ||
            (name_part && strstr(path, name_part) == NULL))
            continue;
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        char *buf = malloc((size_t)st.st_size + 1);
        size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        if (buf && memmem(buf, n, needle, strlen(needle)) != NULL)
            hits++;
        free(buf);
    }
    closedir(d);
    return hits;
}

long long kz_it_metric(struct kz_it_cluster *c, int node, const char *name)
{
    char ids[8];
    snprintf(ids, sizeof ids, "%d", node);
    kz_cli *op = kz_it_client(c, "operator", ids, 5000);
    kz_cli_response r = kz_it_call(op, "GET", "/metrics", NULL);
    long long v = -1;
    size_t nl = strlen(name);
    const char *p = r.status == 200 ? r.body : NULL;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
            v = atoll(p + nl + 1);
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    kz_cli_response_free(&r);
    kz_cli_close(op);
    return v;
}
