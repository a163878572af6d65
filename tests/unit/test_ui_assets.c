/*
 * test_ui_assets.c — the web console compiled into kizunad (ui_assets.h):
 * every file under node/ui/ is in the table, byte for byte, with the
 * Content-Type of its extension and a quoted ETag; the table holds nothing
 * else; and the files keep to what the Content-Security-Policy allows (no
 * inline script or style, no event-handler attributes, no address outside
 * the node), so a change that would break under the CSP fails here and not
 * only in a browser.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui_assets.h"

#define UI_DIR KZ_SOURCE_DIR "/node/ui"

/* The whole file (malloc'd, NUL-terminated; caller frees), NULL if absent. */
static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", UI_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *ext_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return NULL;
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return NULL;
}

Test(ui_assets, every_file_is_embedded_byte_for_byte)
{
    DIR *d = opendir(UI_DIR);
    cr_assert_not_null(d, "no %s", UI_DIR);
    size_t files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        size_t len;
        char *b = slurp(e->d_name, &len);
        cr_assert_not_null(b);
        const struct kz_node_ui_asset *a =
            kz_node_ui_find(e->d_name, strlen(e->d_name));
        cr_assert_not_null(a, "%s is not embedded (rebuild?)", e->d_name);
        cr_assert_eq(a->len, len, "%s: %zu bytes embedded, %zu on disk",
                     e->d_name, a->len, len);
        cr_assert(memcmp(a->data, b, len) == 0, "%s differs", e->d_name);
        cr_assert_eq(a->data[len], 0);
        const char *want = ext_type(e->d_name);
        cr_assert_not_null(want, "%s: extension not expected", e->d_name);
        cr_assert_str_eq(a->content_type, want);
        cr_assert_eq(strlen(a->etag), 34);
        cr_assert(a->etag[0] == '"' && a->etag[33] == '"');
        free(b);
    }
    closedir(d);
    cr_assert_eq(kz_node_ui_count(), files,
                 "the table has %zu assets, node/ui/ %zu files",
                 kz_node_ui_count(), files);
    cr_assert_not_null(kz_node_ui_find("index.html", 10));
    cr_assert_null(kz_node_ui_find("index.htm", 9));
    cr_assert_null(kz_node_ui_find("", 0));
    cr_assert_null(kz_node_ui_at(files));
}

Test(ui_assets, etags_differ)
{
    for (size_t i = 0; i < kz_node_ui_count(); i++)
        for (size_t j = i + 1; j < kz_node_ui_count(); j++)
            cr_assert_str_neq(kz_node_ui_at(i)->etag, kz_node_ui_at(j)->etag);
}

/* What the CSP (KZ_NODE_UI_CSP) would block, or what would leave the
 * node. */
Test(ui_assets, files_keep_to_the_csp)
{
    cr_assert_not_null(strstr(KZ_NODE_UI_CSP, "default-src 'self'"));
    cr_assert_null(strstr(KZ_NODE_UI_CSP, "unsafe"));
    for (size_t i = 0; i < kz_node_ui_count(); i++) {
        const struct kz_node_ui_asset *a = kz_node_ui_at(i);
        const char *s = (const char *)a->data;
        /* The SVG's namespace is a name, not an address. */
        const char *http = strstr(s, "http://");
        if (http != NULL && strstr(a->name, ".svg") != NULL &&
            strncmp(http, "http://www.w3.org/2000/svg", 26) == 0)
            http = strstr(http + 26, "http://");
        cr_assert_null(http, "%s names an http:// address", a->name);
        cr_assert_null(strstr(s, "https://"), "%s names an https:// address",
                       a->name);
        if (strcmp(a->name, "index.html") != 0)
            continue;
        cr_assert_null(strstr(s, " style="), "inline style in index.html");
        cr_assert_null(strstr(s, "<style"), "inline style in index.html");
        cr_assert_null(strstr(s, " onclick="), "handler attribute");
        cr_assert_null(strstr(s, " onload="), "handler attribute");
        /* Every <script> has a src, and every src/href names an embedded
         * file or a fragment. */
        for (const char *p = strstr(s, "<script"); p; p = strstr(p + 1, "<script")) {
            const char *end = strchr(p, '>');
            cr_assert_not_null(end);
            cr_assert(memmem(p, (size_t)(end - p), "src=", 4) != NULL,
                      "inline <script> in index.html");
        }
        const char *attrs[] = {" src=\"", " href=\""};
        for (int k = 0; k < 2; k++) {
            for (const char *p = strstr(s, attrs[k]); p;
                 p = strstr(p + 1, attrs[k])) {
                const char *v = p + strlen(attrs[k]);
                const char *q = strchr(v, '"');
                cr_assert_not_null(q);
                if (*v == '#')
                    continue;
                /* Absolute, so that GET /ui (no slash) works too. */
                cr_assert(strncmp(v, "/ui/", 4) == 0,
                          "index.html: %.*s is not under /ui/", (int)(q - v), v);
                v += 4;
                cr_assert_not_null(kz_node_ui_find(v, (size_t)(q - v)),
                                   "index.html refers to %.*s, not embedded",
                                   (int)(q - v), v);
            }
        }
    }
}
