/*
 * test_tls.c — the API's front door on a real 3-node cluster: who gets in
 * (client certificates from an unknown CA, expired, missing, revoked by a
 * CRL), which protocols and ciphers are offered (openssl s_client and
 * testssl.sh), certificate and CRL reload without a restart (SIGHUP and
 * POST /v1/cluster/reload-tls), and the limits that keep a node serving the
 * others (max_connections, handshake, request and HTTP/2 idle timeouts).
 *
 * Certificates and CRLs are made with the openssl CLI by tls_pki.sh beside
 * this file, from the cluster's own dev CA. Refused TLS clients see the
 * connection close (h2o sends no alert), so a refusal is "no HTTP status",
 * and the node's log says why.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define PKI_SH KZ_SOURCE_DIR "/tests/integration/tls_pki.sh"
#define SHELTER "tls-test"
#define VICTIM                                                               \
    "{\"name\":\"試験 花子\",\"name_kana\":\"しけん はなこ\",\"dob\":"       \
    "\"1958-07-21\",\"sex\":\"female\",\"shelter_id\":\"" SHELTER "\"}"

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

/* ------------------------------------------------------------- helpers */

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Runs a shell command (output appended to DIR/test.log); its exit status. */
static int sh(struct kz_it_cluster *c, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2400];
    snprintf(full, sizeof full, "( %s ) >>'%s/test.log' 2>&1", cmd, c->dir);
    int st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* First line of a command's standard output, without the newline. */
static void sh_line(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = '\0';
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen");
    if (fgets(out, (int)cap, p) == NULL)
        out[0] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    pclose(p);
}

static void api_addr(struct kz_it_cluster *c, int node, char *out, size_t cap)
{
    snprintf(out, cap, "%s.%d:%d", c->net, 10 + node, c->port);
}

/* A client of one node with any certificate (NULL: none). */
static kz_cli *client_of(struct kz_it_cluster *c, int node, const char *cert,
                         const char *key, long deadline_ms)
{
    char ca[300], err[256];
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", c->dir);
    kz_cli_opts o;
    memset(&o, 0, sizeof o);
    o.endpoints = c->url[node];
    o.cacert = ca;
    o.cert = cert;
    o.key = key;
    o.purpose = "integration-test";
    o.deadline_ms = deadline_ms;
    o.request_timeout_ms = deadline_ms;
    kz_cli *cli = NULL;
    cr_assert_eq(kz_cli_open(&o, &cli, err, sizeof err), KZ_CLI_OK,
                 "kz_cli_open: %s", err);
    return cli;
}

/* A client with DIR/tls/NAME.pem (made by tls_pki.sh). */
static kz_cli *client_named(struct kz_it_cluster *c, int node,
                            const char *name, long deadline_ms)
{
    char cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/tls/%s.pem", c->dir, name);
    snprintf(key, sizeof key, "%s/tls/%s.key", c->dir, name);
    return client_of(c, node, cert, key, deadline_ms);
}

static long status_of(kz_cli *cli, const char *method, const char *path,
                      const char *body)
{
    kz_cli_response r = kz_it_call(cli, method, path, body);
    long st = r.status;
    kz_cli_response_free(&r);
    return st;
}

/* Records in the test's shelter, by a linearizable search. */
static long count_records(struct kz_it_cluster *c)
{
    kz_cli *cw = kz_it_client(c, "caseworker", NULL, 20000);
    kz_cli_response r = kz_it_call(
        cw, "GET", "/v1/victims?shelter=" SHELTER "&limit=1000", NULL);
    cr_assert_eq(r.status, 200, "search: %ld %s", r.status,
                 r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(j);
    long n = (long)json_array_size(json_object_get(j, "items"));
    json_decref(j);
    kz_cli_response_free(&r);
    kz_cli_close(cw);
    return n;
}

/* Whether one line of the node's log (docs/OPERATIONS.md, "Logs") holds
 * needle and, when it is not NULL, also. */
static bool log_has(struct kz_it_cluster *c, int node, const char *needle,
                    const char *also)
{
    char path[320];
    snprintf(path, sizeof path, "%s/node%d/kizunad.log", c->dir, node);
    char *log = kz_it_slurp(path);
    bool found = false;
    for (char *line = log; line != NULL && !found;) {
        char *eol = strchr(line, '\n');
        if (eol != NULL)
            *eol = '\0';
        found = strstr(line, needle) != NULL &&
                (also == NULL || strstr(line, also) != NULL);
        line = eol != NULL ? eol + 1 : NULL;
    }
    free(log);
    return found;
}

struct log_wait {
    struct kz_it_cluster *c;
    int node;
    const char *needle, *also;
};

static bool log_cond(void *arg)
{
    struct log_wait *w = arg;
    return log_has(w->c, w->node, w->needle, w->also);
}

/* Waits for a line of the node's log with msg="<msg>" and also (a
 * key=value, or NULL). */
static void expect_log(struct kz_it_cluster *c, int node, const char *msg,
                       const char *also)
{
    char needle[160];
    snprintf(needle, sizeof needle, " msg=\"%s\"", msg);
    struct log_wait w = {c, node, needle, also};
    cr_assert(kz_it_wait(log_cond, &w, 10000),
              "node %d never logged '%s' with '%s'", node, needle,
              also ? also : "");
}

/* A value of /metrics on one node, -1 when absent. */
/* The serial number of the certificate a new TLS connection to node sees. */
static void served_serial(struct kz_it_cluster *c, int node, char *out,
                          size_t cap)
{
    char addr[64], line[256];
    api_addr(c, node, addr, sizeof addr);
    sh_line(line, sizeof line,
            "openssl s_client -connect %s -CAfile '%s/pki/ca.pem' "
            "-cert '%s/pki/operator.pem' -key '%s/pki/operator.key' "
            "</dev/null 2>/dev/null | openssl x509 -noout -serial "
            "2>/dev/null",
            addr, c->dir, c->dir, c->dir);
    snprintf(out, cap, "%s", strncmp(line, "serial=", 7) == 0 ? line + 7 : "");
}

struct serial_wait {
    struct kz_it_cluster *c;
    int node;
    const char *want;
};

static bool serial_is(void *arg)
{
    struct serial_wait *w = arg;
    char got[128];
    served_serial(w->c, w->node, got, sizeof got);
    return strcmp(got, w->want) == 0;
}

/* ---- an `openssl s_client` we talk through, for connections held open */

struct sclient {
    pid_t pid;
    int in, out; /* its stdin; its stdout and stderr */
    char buf[32768];
    size_t len;
};

static void sc_start(struct sclient *s, struct kz_it_cluster *c, int node,
                     const char *role, const char *alpn)
{
    char addr[64], ca[300], cert[300], key[300];
    api_addr(c, node, addr, sizeof addr);
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", c->dir);
    snprintf(cert, sizeof cert, "%s/pki/%s.pem", c->dir, role);
    snprintf(key, sizeof key, "%s/pki/%s.key", c->dir, role);
    const char *argv[16] = {"openssl", "s_client", "-connect", addr,
                            "-CAfile", ca, "-cert", cert, "-key", key,
                            "-brief", "-ign_eof", NULL};
    if (alpn != NULL) {
        argv[12] = "-alpn";
        argv[13] = alpn;
        argv[14] = NULL;
    }
    int in[2], out[2];
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    memset(s, 0, sizeof *s);
    s->pid = fork();
    cr_assert_geq(s->pid, 0, "fork");
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives the test */
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        execvp("openssl", (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    s->in = in[1];
    s->out = out[0];
    fcntl(s->out, F_SETFL, O_NONBLOCK);
}

/* Reads what is there within ms; false at EOF. */
static bool sc_pump(struct sclient *s, int ms)
{
    struct pollfd p = {s->out, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return true;
    if (s->len + 1 >= sizeof s->buf)
        s->len = 0; /* only the recent output matters */
    ssize_t n = read(s->out, s->buf + s->len, sizeof s->buf - 1 - s->len);
    if (n == 0)
        return false;
    if (n > 0) {
        s->len += (size_t)n;
        s->buf[s->len] = '\0';
    }
    return true;
}

static bool sc_wait_for(struct sclient *s, const char *needle, int ms)
{
    long long end = now_ms() + ms;
    while (now_ms() < end) {
        if (s->len > 0 && strstr(s->buf, needle) != NULL)
            return true;
        if (!sc_pump(s, 50))
            return s->len > 0 && strstr(s->buf, needle) != NULL;
    }
    return false;
}

static void sc_send(struct sclient *s, const char *text)
{
    s->len = 0;
    s->buf[0] = '\0';
    ssize_t n = write(s->in, text, strlen(text));
    cr_assert_eq(n, (ssize_t)strlen(text), "write to s_client");
}

/* True once s_client has exited (the server closed the connection). */
static bool sc_exited(struct sclient *s, int ms)
{
    long long end = now_ms() + ms;
    do {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            return true;
        }
        sc_pump(s, 20);
    } while (now_ms() < end);
    return false;
}

static void sc_stop(struct sclient *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    close(s->in);
    close(s->out);
}

/* ---- raw TCP */

static int tcp_open(struct kz_it_cluster *c, int node)
{
    char ip[32];
    snprintf(ip, sizeof ip, "%s.%d", c->net, 10 + node);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->port);
    cr_assert_eq(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect %s: %s", ip, strerror(errno));
    return fd;
}

/* True when the peer has closed or reset fd (checked for up to ms). */
static bool tcp_closed(int fd, int ms)
{
    long long end = now_ms() + ms;
    do {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = end - now_ms();
        if (poll(&p, 1, left > 0 ? (int)left : 0) > 0) {
            char b[512];
            ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                return true;
        }
    } while (now_ms() < end);
    return false;
}

/* --------------------------------------------------------------- tests */

Test(tls, refused_certificates_change_nothing_and_cluster_serves,
     .fini = teardown, .timeout = 240)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    struct kz_it_cluster *c = &cluster;
    cr_assert_eq(sh(c, "'%s' '%s' other-ca stranger registrar", PKI_SH,
                    c->dir),
                 0, "tls_pki other-ca");
    cr_assert_eq(sh(c,
                    "'%s' '%s' issue lapsed registrar 200101000000Z "
                    "210101000000Z",
                    PKI_SH, c->dir),
                 0, "tls_pki issue (expired)");

    kz_cli *reg = kz_it_client(c, "registrar", NULL, 20000);
    cr_assert_eq(status_of(reg, "POST", "/v1/victims", VICTIM), 201);
    long before = count_records(c);
    cr_assert_eq(before, 1);

    /* Each would be allowed to write if it got in: a registrar from a CA
     * the cluster does not know (same CA name), an expired registrar of the
     * cluster CA, and no certificate at all. */
    kz_cli *bad[3] = {client_named(c, 1, "stranger", 3000),
                      client_named(c, 1, "lapsed", 3000),
                      client_of(c, 1, NULL, NULL, 3000)};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(status_of(bad[i], "POST", "/v1/victims", VICTIM), 0,
                     "client %d got an HTTP answer", i);
        cr_assert_eq(status_of(bad[i], "GET", "/healthz", NULL), 0,
                     "client %d got an HTTP answer", i);
        kz_cli_close(bad[i]);
    }
    expect_log(c, 1, "API client certificate refused",
               "reason=\"unable to get local issuer certificate\"");
    expect_log(c, 1, "API client certificate refused",
               "reason=\"certificate has expired\"");

    cr_assert_eq(count_records(c), before, "a refused client changed data");
    /* Node 1 still serves good clients. */
    kz_cli *reg1 = kz_it_client(c, "registrar", "1", 20000);
    cr_assert_eq(status_of(reg1, "POST", "/v1/victims", VICTIM), 201);
    cr_assert_eq(count_records(c), before + 1);
    kz_cli_close(reg1);
    kz_cli_close(reg);
    kz_it_down(c);
}

/* Exit status of s_client offering one protocol version and a cipher
 * list; *hello tells whether it sent its ClientHello (so a refusal is the
 * server's, not the local openssl's), *negotiated whether a session came
 * up. */
static int s_client_offer(struct kz_it_cluster *c, int node, const char *flag,
                          const char *ciphers, bool *hello, bool *negotiated)
{
    static int seq;
    char addr[64], out[320];
    api_addr(c, node, addr, sizeof addr);
    snprintf(out, sizeof out, "%s/s_client-%d.txt", c->dir, ++seq);
    /* SECLEVEL=0: OpenSSL 3 would not even offer TLS 1.0/1.1 or NULL
     * ciphers otherwise, and the refusal tested here is the server's. */
    char cmd[1600];
    snprintf(cmd, sizeof cmd,
             "timeout 20 openssl s_client -connect %s %s -cipher "
             "'%s:@SECLEVEL=0' -CAfile '%s/pki/ca.pem' -cert "
             "'%s/pki/operator.pem' -key '%s/pki/operator.key' -brief -msg "
             "</dev/null >'%s' 2>&1",
             addr, flag, ciphers, c->dir, c->dir, c->dir, out);
    int st = system(cmd);
    char *text = kz_it_slurp(out);
    cr_assert_not_null(text);
    *hello = strstr(text, ">>> ") != NULL &&
             strstr(text, "ClientHello") != NULL;
    *negotiated = strstr(text, "Protocol version: ") != NULL;
    free(text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(tls, only_tls12_and_tls13_with_strong_ciphers, .fini = teardown,
     .timeout = 180)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    /* TLS 1.2 weak suites that this machine's openssl can still offer
     * (3DES, RC4 and export ones it cannot: testssl covers those). */
    static const struct {
        const char *flag, *ciphers;
        bool ok;
    } cases[] = {{"-tls1", "DEFAULT", false},
                 {"-tls1_1", "DEFAULT", false},
                 {"-tls1_2", "DEFAULT", true},
                 {"-tls1_3", "DEFAULT", true},
                 {"-tls1_2", "eNULL", false},
                 {"-tls1_2", "aNULL", false},
                 {"-tls1_2", "ECDHE-ECDSA-AES128-SHA", false},
                 {"-tls1_2", "ECDHE-ECDSA-AES256-SHA384", false},
                 {"-tls1_2", "ECDHE-ECDSA-AES128-GCM-SHA256", true}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool hello, negotiated;
        int st = s_client_offer(&cluster, 1, cases[i].flag, cases[i].ciphers,
                                &hello, &negotiated);
        cr_assert(hello, "%s %s: s_client sent no ClientHello",
                  cases[i].flag, cases[i].ciphers);
        if (cases[i].ok) {
            cr_assert_eq(st, 0, "%s %s refused", cases[i].flag,
                         cases[i].ciphers);
            cr_assert(negotiated, "%s %s: nothing negotiated",
                      cases[i].flag, cases[i].ciphers);
        } else {
            cr_assert_neq(st, 0, "%s %s accepted", cases[i].flag,
                          cases[i].ciphers);
            cr_assert(!negotiated, "%s %s negotiated", cases[i].flag,
                      cases[i].ciphers);
        }
    }
    kz_it_down(&cluster);
}

static const char *finding(json_t *report, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(report, i, e)
    {
        const char *eid = json_string_value(json_object_get(e, "id"));
        if (eid != NULL && strcmp(eid, id) == 0)
            return json_string_value(json_object_get(e, "finding"));
    }
    return NULL;
}

Test(tls, testssl_finds_no_weak_protocol_or_cipher, .fini = teardown,
     .timeout = 300)
{
    cr_assert_eq(system("command -v testssl >/dev/null 2>&1"), 0,
                 "testssl (Debian package testssl.sh) is not installed: run "
                 "deploy/install-deps");
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    struct kz_it_cluster *c = &cluster;
    char addr[64], json[320];
    api_addr(c, 1, addr, sizeof addr);
    snprintf(json, sizeof json, "%s/testssl.json", c->dir);
    /* Protocols (-p), cipher categories (-s), forward secrecy (-f) and RC4
     * (-4), all offline: no DNS, the system openssl. testssl 3.0 cannot
     * present a client certificate; these checks only need the server's
     * hello, which comes before the certificate request. */
    int st = sh(c,
                "timeout 240 testssl --quiet --color 0 --warnings off "
                "--openssl /usr/bin/openssl --nodns none --connect-timeout 5 "
                "--openssl-timeout 5 -p -s -f -4 --jsonfile '%s' https://%s",
                json, addr);
    if (st < 0 || st >= 244) {
        char log[320];
        snprintf(log, sizeof log, "%s/test.log", c->dir);
        char *text = kz_it_slurp(log);
        fprintf(stderr, "%s\n", text ? text : "");
        free(text);
    }
    /* Its status adds up the checks' own: 1 from its NPN probe, an
     * s_client without a client certificate that this server refuses, is
     * expected; 244 and up are testssl's errors (connect, openssl...). The
     * findings below are what count. */
    cr_assert(st >= 0 && st < 244,
              "testssl exited with %d (its output is above)", st);
    json_error_t jerr;
    json_t *report = json_load_file(json, 0, &jerr);
    cr_assert_not_null(report, "testssl JSON: %s", jerr.text);

    static const char *const absent[] = {
        "SSLv2",           "SSLv3",          "TLS1",
        "TLS1_1",          "cipherlist_NULL", "cipherlist_aNULL",
        "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA",
        "cipherlist_AVERAGE"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
        const char *f = finding(report, absent[i]);
        cr_assert_not_null(f, "testssl reported nothing for %s", absent[i]);
        cr_assert(strncmp(f, "not offered", 11) == 0, "%s: %s", absent[i],
                  f);
    }
    static const char *const present[] = {"TLS1_2", "TLS1_3",
                                          "cipherlist_STRONG", "PFS"};
    for (size_t i = 0; i < sizeof present / sizeof present[0]; i++) {
        const char *f = finding(report, present[i]);
        cr_assert_not_null(f, "testssl reported nothing for %s", present[i]);
        cr_assert(strncmp(f, "offered", 7) == 0, "%s: %s", present[i], f);
    }
    const char *rc4 = finding(report, "RC4");
    cr_assert(rc4 != NULL && strcmp(rc4, "not vulnerable") == 0, "RC4: %s",
              rc4 ? rc4 : "(none)");
    size_t i;
    json_t *e;
    json_array_foreach(report, i, e)
    {
        const char *sev = json_string_value(json_object_get(e, "severity"));
        cr_assert(sev == NULL || (strcmp(sev, "HIGH") != 0 &&
                                  strcmp(sev, "CRITICAL") != 0 &&
                                  strcmp(sev, "FATAL") != 0),
                  "%s: %s %s",
                  json_string_value(json_object_get(e, "id")), sev,
                  json_string_value(json_object_get(e, "finding")));
    }
    json_decref(report);
    kz_it_down(c);
}

/* Writes len bytes of text to path (replacing it). */
static void put_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static long reload_tls(struct kz_it_cluster *c, int node, json_t **out)
{
    char ids[8];
    snprintf(ids, sizeof ids, "%d", node);
    kz_cli *op = kz_it_client(c, "operator", ids, 5000);
    kz_cli_response r = kz_it_call(op, "POST", "/v1/cluster/reload-tls", NULL);
    long st = r.status;
    *out = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
    kz_cli_response_free(&r);
    kz_cli_close(op);
    return st;
}

/* One HTTP/1.1 request from DIR/tls/NAME.pem over s_client, saving or
 * resuming a TLS session (sess: "-sess_out" or "-sess_in"). */
static void session_probe(struct kz_it_cluster *c, int node, const char *name,
                          const char *sess, bool *reused, bool *answered)
{
    char addr[64], out[320];
    api_addr(c, node, addr, sizeof addr);
    snprintf(out, sizeof out, "%s/tls/probe.txt", c->dir);
    char cmd[1800];
    snprintf(cmd, sizeof cmd,
             "printf 'GET /healthz HTTP/1.1\r\nHost: kizuna\r\n"
             "Connection: close\r\n\r\n' | timeout 20 openssl s_client "
             "-connect %s -CAfile '%s/pki/ca.pem' -cert '%s/tls/%s.pem' "
             "-key '%s/tls/%s.key' -ign_eof %s '%s/tls/%s.sess' >'%s' 2>&1",
             addr, c->dir, c->dir, name, c->dir, name, sess, c->dir, name,
             out);
    (void)system(cmd);
    char *text = kz_it_slurp(out);
    cr_assert_not_null(text);
    *reused = strstr(text, "\nReused, ") != NULL;
    *answered = strstr(text, "HTTP/1.1 200") != NULL;
    free(text);
}

Test(tls, certificates_and_crl_reload_without_restart, .fini = teardown,
     .timeout = 300)
{
    signal(SIGPIPE, SIG_IGN);
    /* HTTP/1 keep-alive idle is the request timeout: long enough for the
     * connection held across reloads below. */
    const char *sets[] = {"request_header_timeout_ms=120000", NULL};
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", sets);
    struct kz_it_cluster *c = &cluster;
    char path[320];

    /* A connection accepted before the reload, kept open throughout. */
    struct sclient held;
    sc_start(&held, c, 1, "operator", NULL);
    cr_assert(sc_wait_for(&held, "CONNECTION ESTABLISHED", 10000),
              "s_client: %s", held.buf);
    sc_send(&held, "GET /v1/cluster HTTP/1.1\r\nHost: kizuna\r\n\r\n");
    cr_assert(sc_wait_for(&held, "HTTP/1.1 200", 10000), "%s", held.buf);

    /* ---- SIGHUP: a newly issued certificate for node 1 */
    char old_serial[128], new_serial[128];
    served_serial(c, 1, old_serial, sizeof old_serial);
    cr_assert_neq(old_serial[0], '\0', "no certificate served");
    snprintf(path, sizeof path, "%s/pki/node-1.pem", c->dir);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(sh(c, "'%s/deploy/gen-pki' '%s/pki' 1:%s.11", KZ_SOURCE_DIR,
                    c->dir, c->net),
                 0, "gen-pki");
    sh_line(new_serial, sizeof new_serial, "'%s' '%s' serial '%s'", PKI_SH,
            c->dir, path);
    cr_assert_neq(new_serial[0], '\0');
    cr_assert_str_neq(new_serial, old_serial);
    cr_assert_eq(kill(kz_it_node_pid(c, 1), SIGHUP), 0);
    struct serial_wait sw = {c, 1, new_serial};
    cr_assert(kz_it_wait(serial_is, &sw, 10000),
              "node 1 does not serve the new certificate %s", new_serial);
    expect_log(c, 1, "TLS reloaded", " trigger=SIGHUP ");

    /* The old connection still authenticates with its old context. */
    sc_send(&held, "GET /v1/cluster HTTP/1.1\r\nHost: kizuna\r\n\r\n");
    cr_assert(sc_wait_for(&held, "HTTP/1.1 200", 10000),
              "held connection after reload: %s", held.buf);

    /* The cluster works: a write through node 1, read back everywhere. */
    kz_cli *reg1 = kz_it_client(c, "registrar", "1", 20000);
    cr_assert_eq(status_of(reg1, "POST", "/v1/victims", VICTIM), 201);
    kz_cli_close(reg1);
    cr_assert_eq(count_records(c), 1);

    /* A reload that fails keeps what the node has. */
    char *good = kz_it_slurp(path);
    cr_assert_not_null(good);
    put_file(path, "not a certificate\n", 18);
    cr_assert_eq(kill(kz_it_node_pid(c, 1), SIGHUP), 0);
    expect_log(c, 1, "TLS reload refused, current certificates kept",
               " trigger=SIGHUP ");
    char now[128];
    served_serial(c, 1, now, sizeof now);
    cr_assert_str_eq(now, new_serial);
    put_file(path, good, strlen(good));
    free(good);

    /* ---- CRL: node 1 restarts with an empty one, then a revocation is
     * loaded by POST /v1/cluster/reload-tls. */
    cr_assert_eq(sh(c, "'%s' '%s' issue revokee caseworker", PKI_SH,
                    c->dir),
                 0);
    char crl[320];
    snprintf(crl, sizeof crl, "%s/tls/crl.pem", c->dir);
    cr_assert_eq(sh(c, "'%s' '%s' crl '%s'", PKI_SH, c->dir, crl), 0);
    char args[512];
    snprintf(args, sizeof args, "up --set request_header_timeout_ms=120000 "
                                "--set tls_crl=%s", crl);
    cr_assert_eq(kz_it_ctl(c, args), 0);
    cr_assert_eq(kz_it_ctl(c, "restart 1"), 0);
    cr_assert_eq(kz_it_ctl(c, "wait --node 1 --timeout 30"), 0);

    kz_cli *rv = client_named(c, 1, "revokee", 5000);
    const char *search = "/v1/victims?shelter=" SHELTER;
    cr_assert_eq(status_of(rv, "GET", search, NULL), 200,
                 "not yet revoked: refused");
    kz_cli_close(rv);
    /* A TLS session to resume later; resuming works before the reload
     * (so its failure after the reload means something). */
    bool reused, answered;
    session_probe(c, 1, "revokee", "-sess_out", &reused, &answered);
    cr_assert(answered && !reused);
    session_probe(c, 1, "revokee", "-sess_in", &reused, &answered);
    cr_assert(answered && reused, "control: the session was not resumed");

    cr_assert_eq(sh(c, "'%s' '%s' revoke revokee", PKI_SH, c->dir), 0);
    cr_assert_eq(sh(c, "'%s' '%s' crl '%s'", PKI_SH, c->dir, crl), 0);
    json_t *j;
    cr_assert_eq(reload_tls(c, 1, &j), 200);
    cr_assert_not_null(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "crl_revoked")), 1);
    cr_assert_str_eq(
        json_string_value(json_object_get(j, "certificate_serial")),
        new_serial);
    json_decref(j);
    expect_log(c, 1, "TLS reloaded", " trigger=API ");

    rv = client_named(c, 1, "revokee", 3000);
    cr_assert_eq(status_of(rv, "GET", search, NULL), 0,
                 "revoked certificate still accepted");
    kz_cli_close(rv);
    /* Nor can it resume its session from before the reload: sessions and
     * tickets belong to the old context. */
    session_probe(c, 1, "revokee", "-sess_in", &reused, &answered);
    cr_assert(!reused && !answered, "revoked client resumed its session");
    expect_log(c, 1, "API client certificate refused",
               "reason=\"certificate revoked\"");
    kz_cli *cw1 = kz_it_client(c, "caseworker", "1", 5000);
    cr_assert_eq(status_of(cw1, "GET", search, NULL), 200);

    /* A bad CRL file: refused with the reason, the old CRL stays. */
    put_file(crl, "garbage\n", 8);
    cr_assert_eq(reload_tls(c, 1, &j), 422);
    cr_assert_not_null(j);
    json_t *err = json_object_get(j, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")),
                     "tls_reload_failed");
    cr_assert(strstr(json_string_value(json_object_get(err, "message")),
                     "CRL") != NULL);
    json_decref(j);
    rv = client_named(c, 1, "revokee", 3000);
    cr_assert_eq(status_of(rv, "GET", search, NULL), 0);
    kz_cli_close(rv);
    cr_assert_eq(status_of(cw1, "GET", search, NULL), 200);
    kz_cli_close(cw1);
    cr_assert_eq(
        kz_it_metric(c, 1, "kizuna_tls_reloads_total{result=\"ok\"}"), 1);
    cr_assert_eq(
        kz_it_metric(c, 1, "kizuna_tls_reloads_total{result=\"failed\"}"), 1);

    sc_stop(&held);
    kz_it_down(c);
}

struct served {
    struct kz_it_cluster *c;
    int node;
};

static bool node_answers(void *arg)
{
    struct served *s = arg;
    char cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/pki/operator.pem", s->c->dir);
    snprintf(key, sizeof key, "%s/pki/operator.key", s->c->dir);
    kz_cli *op = client_of(s->c, s->node, cert, key, 1000);
    long st = status_of(op, "GET", "/v1/cluster", NULL);
    kz_cli_close(op);
    return st == 200;
}

/* True when node 1's API has no connection left open or half-closed (so
 * the clients used so far no longer count against max_connections). */
static bool api_quiet(void *arg)
{
    struct kz_it_cluster *c = arg;
    char addr[64], out[64];
    api_addr(c, 1, addr, sizeof addr);
    sh_line(out, sizeof out,
            "ss -Htn state established state close-wait src %s | wc -l",
            addr);
    return strcmp(out, "0") == 0;
}

Test(tls, connection_limit_keeps_node_alive, .fini = teardown,
     .timeout = 240)
{
    /* The held connections never finish a handshake: a long handshake
     * timeout keeps them open while the node is full. */
    const char *sets[] = {"max_connections=8",
                          "tls_handshake_timeout_ms=120000", NULL};
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", sets);
    struct kz_it_cluster *c = &cluster;
    struct served n1 = {c, 1}, n2 = {c, 2};
    cr_assert(kz_it_wait(node_answers, &n1, 10000));
    long long refused0 =
        kz_it_metric(c, 1, "kizuna_http_connections_refused_total");
    cr_assert_eq(refused0, 0);
    cr_assert(kz_it_wait(api_quiet, c, 10000));

    enum { N = 20, MAX = 8 };
    int fds[N];
    bool closed[N] = {false};
    for (int i = 0; i < N; i++)
        fds[i] = tcp_open(c, 1);
    /* All but max_connections are reset by the node at once. */
    int n_closed = 0;
    long long end = now_ms() + 10000;
    while (n_closed < N - MAX && now_ms() < end)
        for (int i = 0; i < N; i++)
            if (!closed[i] && tcp_closed(fds[i], 10)) {
                closed[i] = true;
                n_closed++;
            }
    cr_assert_eq(n_closed, N - MAX, "%d of %d connections closed", n_closed,
                 N);
    /* Full: node 1 refuses a normal client, node 2 serves it. */
    cr_assert(!node_answers(&n1), "node 1 accepted a connection over the "
                                  "limit");
    cr_assert(node_answers(&n2));

    for (int i = 0; i < N; i++)
        close(fds[i]);
    cr_assert(kz_it_wait(node_answers, &n1, 10000),
              "node 1 does not serve after the connections closed");
    cr_assert_geq(kz_it_metric(c, 1, "kizuna_http_connections_refused_total"),
                  N - MAX + 1);
    cr_assert_eq(kill(kz_it_node_pid(c, 1), 0), 0, "node 1 died");
    expect_log(c, 1, "API connection refused", " open=8 max_connections=8 ");
    kz_it_down(c);
}

Test(tls, slow_clients_are_cut_off, .fini = teardown, .timeout = 240)
{
    signal(SIGPIPE, SIG_IGN);
    /* Defaults are 5 s, 10 s and 60 s (h2o's own: 10 s each): every wait
     * below gives up long before those. */
    const char *sets[] = {"tls_handshake_timeout_ms=1000",
                          "request_header_timeout_ms=1000",
                          "idle_timeout_ms=1000", NULL};
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", sets);
    struct kz_it_cluster *c = &cluster;
    struct served n1 = {c, 1};

    /* No handshake at all. */
    int fd = tcp_open(c, 1);
    cr_assert(tcp_closed(fd, 4000), "a silent TCP client was not cut off");
    close(fd);

    /* A handshake, then half a request line, one byte every 200 ms: it
     * would take 40 s to finish. */
    struct sclient s;
    sc_start(&s, c, 1, "operator", NULL);
    cr_assert(sc_wait_for(&s, "CONNECTION ESTABLISHED", 10000), "%s", s.buf);
    cr_assert(node_answers(&n1), "node 1 does not serve others meanwhile");
    static const char line[] = "GET /v1/cluster?padding=aaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    bool cut = false;
    long long end = now_ms() + 6000;
    for (size_t i = 0; i < sizeof line - 1 && now_ms() < end && !cut; i++) {
        char b[2] = {line[i], '\0'};
        if (write(s.in, b, 1) != 1)
            break;
        cut = sc_exited(&s, 200);
    }
    cr_assert(cut || sc_exited(&s, 0), "a slow request was not cut off");
    sc_stop(&s);

    /* HTTP/2: a connection that sends no request. */
    sc_start(&s, c, 1, "operator", "h2");
    cr_assert(sc_wait_for(&s, "CONNECTION ESTABLISHED", 10000), "%s", s.buf);
    cr_assert(sc_exited(&s, 5000), "an idle HTTP/2 connection stayed open");
    sc_stop(&s);

    cr_assert(node_answers(&n1));
    cr_assert_eq(kill(kz_it_node_pid(c, 1), 0), 0, "node 1 died");
    kz_it_down(c);
}
