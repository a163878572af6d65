/*
 * test_photos.c — face photos on a real 3-node cluster (DOMAIN.md §4):
 * upload as registrar, view as terminal only, types by magic bytes (415),
 * the size limit (413), every view audited once, a replacement serves the
 * new image, the image never lies in the clear in any file of any node,
 * and a terminal in a surviving region still sees the photo while a whole
 * region is down, as does a stale read on a node cut off from the rest.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct kz_it_cluster cluster;
static const char *const sets[] = {"photo_max_bytes=65536", NULL};

static void setup(void)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", sets);
}

static void teardown(void)
{
    kz_it_down(&cluster);
}

/* A 30 KB "JPEG": the JPEG magic, then bytes that do not compress and
 * carry a marker string to look for on disk. */
static unsigned char *fake_jpeg(size_t len, const char *marker)
{
    unsigned char *p = malloc(len);
    cr_assert_not_null(p);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    p[0] = 0xff;
    p[1] = 0xd8;
    p[2] = 0xff;
    memcpy(p + 100, marker, strlen(marker));
    return p;
}

struct put {
    kz_cli *cli;
    const char *id;
    const void *img;
    size_t len;
    long status;
};

static bool put_answered(void *arg)
{
    struct put *p = arg;
    char path[128];
    snprintf(path, sizeof path, "/v1/photos/%s", p->id);
    const char *h[] = {"Content-Type: image/jpeg", NULL};
    kz_cli_response r;
    cr_assert_eq(kz_cli_request(p->cli, "PUT", path, h, p->img, p->len, &r),
                 KZ_CLI_OK, "%s", kz_cli_errmsg(p->cli));
    p->status = r.status;
    kz_cli_response_free(&r);
    return p->status != 503;
}

/* PUTs a photo; polls while the cluster answers 503. */
static long put_photo(kz_cli *cli, const char *id, const void *img,
                      size_t len)
{
    struct put p = {cli, id, img, len, 0};
    kz_it_wait(put_answered, &p, 20000);
    return p.status;
}

struct got {
    kz_cli *cli;
    const char *path;
    long status;
    char *body;
    size_t len;
    char ctype[64];
};

static bool get_once(void *arg)
{
    struct got *g = arg;
    free(g->body);
    g->body = NULL;
    kz_cli_response r;
    if (kz_cli_request(g->cli, "GET", g->path, NULL, NULL, 0, &r) !=
        KZ_CLI_OK) {
        g->status = 0;
        return false;
    }
    g->status = r.status;
    g->len = r.body_len;
    g->body = malloc(r.body_len + 1);
    memcpy(g->body, r.body, r.body_len);
    kz_cli_response_free(&r);
    return g->status != 503 && g->status != 0;
}

struct created {
    kz_cli *reg;
    char *id;
};

/* POSTs a victim; true once it is created (503 while the first data key
 * is being made). */
static bool created(void *arg)
{
    struct created *c = arg;
    const char *body = "{\"name\":\"写真 花子\",\"dob\":\"1970-07-07\"}";
    kz_cli_response r;
    if (kz_cli_request(c->reg, "POST", "/v1/victims", NULL, body,
                       strlen(body), &r) != KZ_CLI_OK)
        return false;
    if (r.status == 201) {
        json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
        c->id = strdup(json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    kz_cli_response_free(&r);
    return c->id != NULL;
}

static char *add_victim(kz_cli *reg)
{
    struct created c = {reg, NULL};
    cr_assert(kz_it_wait(created, &c, 30000), "could not register a victim");
    return c.id;
}


static bool has_leader(void *arg)
{
    return kz_it_leader(arg) != 0;
}

Test(photos, upload_view_audit_and_outage, .init = setup, .fini = teardown,
     .timeout = 300)
{
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    char *id = add_victim(reg);
    unsigned char *img = fake_jpeg(30000, "PHOTOMARKER-ONE");
    cr_assert_eq(put_photo(reg, id, img, 30000), 201);

    /* Types by magic bytes, and the size limit. */
    cr_assert_eq(put_photo(reg, id, "GIF89a....", 10), 415);
    unsigned char *big = fake_jpeg(70000, "BIG");
    cr_assert_eq(put_photo(reg, id, big, 70000), 413);
    free(big);
    cr_assert_eq(put_photo(reg, "nosuchvictim", img, 30000), 404);

    /* Only terminals view photos. */
    char path[128];
    snprintf(path, sizeof path, "/v1/photos/%s", id);
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    struct got g = {.cli = cw, .path = path};
    cr_assert(kz_it_wait(get_once, &g, 20000));
    cr_assert_eq(g.status, 403);
    kz_cli *term = kz_it_client(&cluster, "terminal", NULL, 20000);
    g.cli = term;
    for (int i = 0; i < 3; i++) {
        cr_assert(kz_it_wait(get_once, &g, 20000));
        cr_assert_eq(g.status, 200);
        cr_assert_eq(g.len, 30000);
        cr_assert(memcmp(g.body, img, 30000) == 0, "the image changed");
    }

    /* A replacement serves the new image. */
    unsigned char *img2 = fake_jpeg(20000, "PHOTOMARKER-TWO");
    img2[5] ^= 0x55;
    cr_assert_eq(put_photo(reg, id, img2, 20000), 200);
    cr_assert(kz_it_wait(get_once, &g, 20000));
    cr_assert_eq(g.len, 20000);
    cr_assert(memcmp(g.body, img2, 20000) == 0);

    /* Every view audited once: 4 by the terminal (the caseworker's 403 is
     * a refusal, recorded as such). */
    kz_cli *au = kz_it_client(&cluster, "auditor", NULL, 20000);
    char apath[160];
    snprintf(apath, sizeof apath, "/v1/audit?subject=%s&limit=1000", id);
    kz_cli_response r;
    cr_assert_eq(kz_cli_request(au, "GET", apath, NULL, NULL, 0, &r),
                 KZ_CLI_OK);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    kz_cli_response_free(&r);
    int views = 0, puts = 0;
    json_t *items = json_object_get(j, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *a = json_string_value(
            json_object_get(json_array_get(items, i), "action"));
        views += strcmp(a, "photo.read") == 0;
        puts += strcmp(a, "photo.put") == 0;
    }
    json_decref(j);
    cr_assert_eq(views, 4, "photo.read records: %d", views);
    cr_assert_geq(puts, 2);

    /* Never in the clear on disk, on any node. */
    cr_assert_eq(kz_it_files_containing(cluster.dir, "PHOTOMARKER-ONE", NULL), 0);
    cr_assert_eq(kz_it_files_containing(cluster.dir, "PHOTOMARKER-TWO", NULL), 0);

    /* A whole region down: a surviving region still serves it. */
    cr_assert(kz_it_wait(has_leader, &cluster, 30000));
    cr_assert_eq(kz_it_ctl(&cluster, "kill-region tokyo"), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000));
    kz_cli *t23 = kz_it_client(&cluster, "terminal", "2,3", 20000);
    g.cli = t23;
    cr_assert(kz_it_wait(get_once, &g, 30000));
    cr_assert_eq(g.status, 200);
    cr_assert_eq(g.len, 20000);

    /* Node 3 cut off from the rest: a stale view still works there. */
    cr_assert_eq(kz_it_ctl(&cluster, "kill 2"), 0);
    kz_cli *t3 = kz_it_client(&cluster, "terminal", "3", 20000);
    char spath[160];
    snprintf(spath, sizeof spath, "%s?consistency=stale", path);
    struct got s = {.cli = t3, .path = spath};
    cr_assert(kz_it_wait(get_once, &s, 20000));
    cr_assert_eq(s.status, 200);
    cr_assert(memcmp(s.body, img2, 20000) == 0);
    free(s.body);

    free(g.body);
    free(img);
    free(img2);
    free(id);
    kz_cli_close(t3);
    kz_cli_close(t23);
    kz_cli_close(au);
    kz_cli_close(term);
    kz_cli_close(cw);
    kz_cli_close(reg);
}
