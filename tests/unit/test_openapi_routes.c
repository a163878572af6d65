/*
 * test_openapi_routes.c — every route the node serves (the route table of
 * node/http_api.c) is described in docs/openapi.yaml, with its method:
 * the description is checked by a validator (deploy/check-openapi), and
 * this keeps it complete. A '*' segment of the table matches any
 * "{name}" segment of the document.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "no %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

/* Whether the document's path (up to its ':') matches the route pattern. */
static bool same_path(const char *doc, const char *pat)
{
    while (*doc != ':' && *doc != '\0' && *pat != '\0') {
        if (*pat == '*' && *doc == '{') {
            while (*doc != '}' && *doc != '\0')
                doc++;
            if (*doc == '\0')
                return false;
            doc++;
            pat++;
            continue;
        }
        if (*doc != *pat)
            return false;
        doc++;
        pat++;
    }
    return *doc == ':' && *pat == '\0';
}

/* Whether the document describes method (lower case) on pattern. */
static bool described(const char *yaml, const char *pat, const char *method)
{
    for (const char *p = strstr(yaml, "\n  /"); p; p = strstr(p + 1, "\n  /")) {
        if (!same_path(p + 3, pat))
            continue;
        /* The operations of this path: up to the next path entry. */
        const char *end = strstr(p + 1, "\n  /");
        const char *cut = strstr(p + 1, "\ncomponents:");
        if (end == NULL || (cut != NULL && cut < end))
            end = cut;
        char want[32];
        snprintf(want, sizeof want, "\n    %s:", method);
        const char *m = strstr(p, want);
        return m != NULL && (end == NULL || m < end);
    }
    return false;
}

Test(openapi, every_served_route_is_described)
{
    char *src = slurp(KZ_SOURCE_DIR "/node/http_api.c");
    char *yaml = slurp(KZ_SOURCE_DIR "/docs/openapi.yaml");
    const char *table = strstr(src, "static const struct route routes[] = {");
    cr_assert_not_null(table);
    const char *table_end = strstr(table, "\n};");
    cr_assert_not_null(table_end);
    int routes = 0;
    for (const char *p = strstr(table, "{\""); p && p < table_end;
         p = strstr(p + 1, "{\"")) {
        char method[16], pat[128];
        if (sscanf(p, "{\"%15[A-Z]\", \"%127[^\"]\"", method, pat) != 2)
            continue;
        for (char *c = method; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        cr_expect(described(yaml, pat, method),
                  "%s %s is served but not in docs/openapi.yaml", method, pat);
        routes++;
    }
    cr_assert_gt(routes, 40, "only %d routes found in the table", routes);
    free(src);
    free(yaml);
}
