/*
 * test_ui.c — GET /ui/ on a real node: every file of node/ui/ is served
 * byte for byte with its Content-Type, a strict Content-Security-Policy,
 * Cache-Control: no-cache, an ETag that answers If-None-Match with 304, and
 * the other protective headers; /ui is the page too; unknown files and
 * other methods get the API's JSON errors; any role's certificate opens
 * the console (the API behind it decides what the role may see), and no
 * certificate still gets no TLS session (the listener did not change).
 *
 * The browser side is tests/ui/test_ui.sh (headless Chromium). Here libcurl
 * speaks to the node directly, so every header can be read.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness.h"

#define UI_DIR KZ_SOURCE_DIR "/node/ui"

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

struct buf {
    char *p;
    size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
    struct buf *b = ud;
    size_t n = sz * nm;
    char *p = realloc(b->p, b->n + n + 1);
    if (p == NULL)
        return 0;
    memcpy(p + b->n, d, n);
    b->p = p;
    b->n += n;
    b->p[b->n] = '\0';
    return n;
}

struct answer {
    long status; /* 0: no HTTP answer (e.g. the handshake failed) */
    struct buf body, head;
};

static void answer_free(struct answer *a)
{
    free(a->body.p);
    free(a->head.p);
}

/* One request; role NULL: no client certificate. */
static struct answer call(const char *role, const char *method,
                          const char *path, const char *header)
{
    struct answer a = {0};
    char url[256], ca[512], cert[512], key[512];
    snprintf(url, sizeof url, "%s%s", cluster.url[1], path);
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", cluster.dir);
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    if (role != NULL) {
        snprintf(cert, sizeof cert, "%s/pki/%s.pem", cluster.dir, role);
        snprintf(key, sizeof key, "%s/pki/%s.key", cluster.dir, role);
        curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, key);
    }
    struct curl_slist *h = NULL;
    if (header != NULL)
        h = curl_slist_append(h, header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a.head);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send .. as written */
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (a.body.p == NULL)
        a.body.p = calloc(1, 1);
    if (a.head.p == NULL)
        a.head.p = calloc(1, 1);
    return a;
}

/* The value of header name in a (into out, "" when absent). */
static const char *header(const struct answer *a, const char *name,
                          char *out, size_t cap)
{
    out[0] = '\0';
    size_t n = strlen(name);
    for (const char *p = a->head.p; p && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r\n");
            snprintf(out, cap, "%.*s", (int)l, v);
            return out;
        }
    }
    return out;
}

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    cr_assert_fail("%s: unexpected extension", name);
    return NULL;
}

/* The headers every console file carries. */
static void assert_console_headers(const struct answer *a, const char *what)
{
    char v[512];
    header(a, "content-security-policy", v, sizeof v);
    cr_assert_not_null(strstr(v, "default-src 'self'"), "%s: CSP '%s'", what, v);
    cr_assert_not_null(strstr(v, "script-src 'self'"), "%s: CSP", what);
    cr_assert_not_null(strstr(v, "frame-ancestors 'none'"), "%s: CSP", what);
    cr_assert_null(strstr(v, "unsafe"), "%s: CSP allows something unsafe", what);
    cr_assert_str_eq(header(a, "cache-control", v, sizeof v), "no-cache", "%s", what);
    cr_assert_str_eq(header(a, "x-content-type-options", v, sizeof v), "nosniff");
    cr_assert_str_eq(header(a, "x-frame-options", v, sizeof v), "DENY");
    cr_assert_str_eq(header(a, "referrer-policy", v, sizeof v), "no-referrer");
    cr_assert_eq(strlen(header(a, "etag", v, sizeof v)), 34, "%s: ETag", what);
}

Test(ui, every_file_served_with_its_headers, .fini = teardown, .timeout = 300)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    kz_it_up(&cluster, "a:1", NULL);

    DIR *d = opendir(UI_DIR);
    cr_assert_not_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        char path[300], file[512], v[512];
        snprintf(path, sizeof path, "/ui/%s", e->d_name);
        snprintf(file, sizeof file, "%s/%s", UI_DIR, e->d_name);
        char *want = kz_it_slurp(file);
        cr_assert_not_null(want);
        struct answer a = call("operator", "GET", path, NULL);
        cr_assert_eq(a.status, 200, "%s: %ld", path, a.status);
        cr_assert_eq(a.body.n, strlen(want), "%s: length", path);
        cr_assert(memcmp(a.body.p, want, a.body.n) == 0, "%s: bytes", path);
        cr_assert_str_eq(header(&a, "content-type", v, sizeof v),
                         type_of(e->d_name), "%s", path);
        assert_console_headers(&a, path);

        /* Revalidation: the same ETag is not sent again. */
        char etag[64], inm[96];
        header(&a, "etag", etag, sizeof etag);
        snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
        struct answer b = call("operator", "GET", path, inm);
        cr_assert_eq(b.status, 304, "%s with If-None-Match: %ld", path, b.status);
        cr_assert_eq(b.body.n, 0);
        struct answer c = call("operator", "GET", path, "If-None-Match: \"0\"");
        cr_assert_eq(c.status, 200);
        answer_free(&a);
        answer_free(&b);
        answer_free(&c);
        free(want);
    }
    closedir(d);
    cr_assert_geq(files, 3);

    /* /ui/ is index.html. */
    char *index = kz_it_slurp(UI_DIR "/index.html");
    struct answer a = call("operator", "GET", "/ui/", NULL);
    cr_assert_eq(a.status, 200);
    cr_assert_str_eq(a.body.p, index);
    assert_console_headers(&a, "/ui/");
    answer_free(&a);
    free(index);
}

Test(ui, roles_errors_and_the_tls_door, .fini = teardown,
     .timeout = 300)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    kz_it_up(&cluster, "a:1", NULL);
    char v[256];

    /* Any role opens the console; what it may see is the API's business. */
    const char *roles[] = {"terminal", "caseworker", "auditor", "registrar",
                           "payout"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        struct answer a = call(roles[i], "GET", "/ui/console.js", NULL);
        cr_assert_eq(a.status, 200, "%s: %ld", roles[i], a.status);
        answer_free(&a);
    }
    struct answer r = call("terminal", "GET", "/v1/cluster", NULL);
    cr_assert_eq(r.status, 403, "the API still refuses by role");
    answer_free(&r);

    struct answer a = call("operator", "GET", "/ui", NULL);
    char *index = kz_it_slurp(UI_DIR "/index.html");
    cr_assert_eq(a.status, 200, "/ui: %ld", a.status);
    cr_assert_str_eq(a.body.p, index);
    cr_assert_str_eq(header(&a, "content-type", v, sizeof v),
                     "text/html; charset=utf-8");
    answer_free(&a);
    free(index);

    a = call("operator", "GET", "/ui/no-such.js", NULL);
    cr_assert_eq(a.status, 404);
    cr_assert_not_null(strstr(a.body.p, "\"code\":\"not_found\""));
    cr_assert_not_null(strstr(a.body.p, "\"request_id\":"));
    answer_free(&a);

    a = call("operator", "GET", "/ui/../v1/cluster", NULL);
    cr_assert_neq(a.status, 200, "no way out of /ui/ through ..");
    answer_free(&a);

    a = call("operator", "POST", "/ui/", NULL);
    cr_assert_eq(a.status, 405);
    answer_free(&a);

    /* The listener still wants a client certificate: no TLS session, no
     * HTTP status, without one. */
    a = call(NULL, "GET", "/ui/", NULL);
    cr_assert_eq(a.status, 0, "/ui/ without a certificate: %ld", a.status);
    answer_free(&a);
}
