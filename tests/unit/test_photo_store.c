/*
 * test_photo_store.c — face photos as apply stores them (node/photos.c) on a
 * real RocksDB store: types by magic bytes, a photo for an unknown victim
 * refused, the stored bytes sealed (no plaintext, the victim id bound as
 * associated data: a flipped byte or a blob moved under another victim is
 * refused when read), and a replacement reads back as the new image.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "kz_test_keys.h"
#include "photos.h"
#include "register.h"

#define MUNI "131016"

static char dir[64];
static kz_stor *st;
static struct kz_node_keys keys;
static uint64_t next_index;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_photo_XXXXXX");
    kz_test_store_open(dir, MUNI, &st, &keys);
    next_index = 2;
}

static void teardown(void)
{
    kz_test_store_close(dir, st, &keys);
}

TestSuite(photo, .init = setup, .fini = teardown);

static int apply(Kizuna__Command *cmd)
{
    return kz_test_apply(st, &keys, MUNI, &next_index, cmd, NULL);
}

static void create(const char *id)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = (char *)id;
    v.name = "写真 花子";
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    cv.victim = &v;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    cmd.create_victim = &cv;
    cr_assert_eq(apply(&cmd), 201);
}

static int put(const char *id, const unsigned char *img, size_t len)
{
    Kizuna__Photo ph = KIZUNA__PHOTO__INIT;
    ph.victim_id = (char *)id;
    ph.content_type = "image/whatever"; /* apply decides from the bytes */
    ph.has_data = 1;
    ph.data.data = (uint8_t *)img;
    ph.data.len = len;
    Kizuna__PutPhoto pp = KIZUNA__PUT_PHOTO__INIT;
    pp.photo = &ph;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_PHOTO;
    cmd.put_photo = &pp;
    return apply(&cmd);
}

static unsigned char img_a[5000], img_b[4000];

static void fill(unsigned char *p, size_t n, const char *marker)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + 7);
    p[0] = 0xff;
    p[1] = 0xd8;
    p[2] = 0xff;
    memcpy(p + 64, marker, strlen(marker));
}

Test(photo, types_by_magic_bytes)
{
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a,
                                        '\n', 0};
    static const unsigned char jp2[] = {0, 0, 0, 0x0c, 'j', 'P', ' ', ' ',
                                        '\r', '\n', 0x87, '\n'};
    static const unsigned char j2k[] = {0xff, 0x4f, 0xff, 0x51, 0};
    static const unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xe1};
    cr_assert_str_eq(kz_node_photo_type(jpg, sizeof jpg), "image/jpeg");
    cr_assert_str_eq(kz_node_photo_type(png, sizeof png), "image/png");
    cr_assert_str_eq(kz_node_photo_type(jp2, sizeof jp2), "image/jp2");
    cr_assert_str_eq(kz_node_photo_type(j2k, sizeof j2k), "image/jp2");
    cr_assert_null(kz_node_photo_type((const unsigned char *)"GIF89a", 6));
    cr_assert_null(kz_node_photo_type(jpg, 2), "a truncated magic");
    cr_assert_null(kz_node_photo_type(png, 7));
}

Test(photo, stored_sealed_and_bound_to_the_victim)
{
    fill(img_a, sizeof img_a, "MARKER-A");
    cr_assert_eq(put("nobody", img_a, sizeof img_a), 404);
    create("v1");
    create("v2");
    cr_assert_eq(put("v1", (const unsigned char *)"GIF89a", 6), 400);
    cr_assert_eq(put("v1", img_a, sizeof img_a), 201);
    Kizuna__Photo *ph;
    cr_assert_eq(kz_node_load_photo(st, &keys, MUNI, "v1", &ph), KZ_OK);
    cr_assert_eq(ph->data.len, sizeof img_a);
    cr_assert(memcmp(ph->data.data, img_a, sizeof img_a) == 0);
    cr_assert_str_eq(ph->content_type, "image/jpeg");
    kizuna__photo__free_unpacked(ph, NULL);
    cr_assert_eq(kz_node_load_photo(st, &keys, MUNI, "v2", &ph),
                 KZ_ENOTFOUND);

    /* The stored value: no plaintext. */
    char key[512], key2[512], *v;
    size_t kl = kz_node_photo_key(key, MUNI, "v1"), vl;
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_BLOBS, key, kl, &v, &vl), KZ_OK);
    cr_assert_null(memmem(v, vl, "MARKER-A", 8));

    /* Moved under another victim: the associated data no longer matches. */
    size_t kl2 = kz_node_photo_key(key2, MUNI, "v2");
    kz_stor_batch *b = kz_stor_batch_new(st);
    kz_stor_batch_put(b, KZ_STOR_CF_BLOBS, key2, kl2, v, vl);
    cr_assert_eq(kz_stor_batch_commit(st, b, next_index++), KZ_OK);
    kz_stor_batch_free(b);
    cr_assert_eq(kz_node_load_photo(st, &keys, MUNI, "v2", &ph), KZ_ECORRUPT);

    /* One flipped byte anywhere in it: refused. */
    for (size_t at = 0; at < vl; at += vl / 7 + 1) {
        v[at] ^= 0x01;
        b = kz_stor_batch_new(st);
        kz_stor_batch_put(b, KZ_STOR_CF_BLOBS, key, kl, v, vl);
        cr_assert_eq(kz_stor_batch_commit(st, b, next_index++), KZ_OK);
        kz_stor_batch_free(b);
        cr_assert_neq(kz_node_load_photo(st, &keys, MUNI, "v1", &ph), KZ_OK,
                      "a byte flipped at %zu went unnoticed", at);
        v[at] ^= 0x01;
    }
    free(v);
}

Test(photo, a_replacement_reads_back_as_the_new_image)
{
    fill(img_a, sizeof img_a, "MARKER-A");
    fill(img_b, sizeof img_b, "MARKER-B");
    create("v1");
    cr_assert_eq(put("v1", img_a, sizeof img_a), 201);
    cr_assert_eq(put("v1", img_b, sizeof img_b), 200);
    Kizuna__Photo *ph;
    cr_assert_eq(kz_node_load_photo(st, &keys, MUNI, "v1", &ph), KZ_OK);
    cr_assert_eq(ph->data.len, sizeof img_b);
    cr_assert(memcmp(ph->data.data, img_b, sizeof img_b) == 0);
    kizuna__photo__free_unpacked(ph, NULL);
}
