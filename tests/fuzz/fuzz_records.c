/*
 * fuzz_records.c — libFuzzer driver for the JSON decoders of node/records.h,
 * fed exactly as http_api.c feeds them: the bytes of a request body parsed
 * by jansson with duplicate keys refused, then decoded as a victim (create
 * and patch), a note and a shelter.
 *
 * Beyond "no sanitizer report", it checks the decoders' contract: on error
 * *out is NULL and the message is non-empty; on success a victim survives
 * what register.c does to it (pack, unpack, and JSON encode: the record read
 * back encodes to the same JSON), and a patch names at least one field.
 * Seeds: tests/fuzz/corpus/records/.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kizuna.pb-c.h"
#include "records.h"

/* Pack, unpack and encode v as register.c stores and serves it. */
static void records_roundtrip(const Kizuna__Victim *v)
{
    json_t *j = kz_node_victim_to_json(v);
    FUZZ_CHECK(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);

    size_t sz = kizuna__victim__get_packed_size(v);
    uint8_t *buf = malloc(sz ? sz : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(kizuna__victim__pack(v, buf) == sz);
    Kizuna__Victim *back = kizuna__victim__unpack(NULL, sz, buf);
    FUZZ_CHECK(back != NULL);
    json_t *j2 = kz_node_victim_to_json(back);
    FUZZ_CHECK(json_equal(j, j2));

    json_decref(j2);
    kizuna__victim__free_unpacked(back, NULL);
    free(buf);
    free(text);
    json_decref(j);
}

/* Not NULL: a decoder that fails must reset *out to NULL, as documented. */
static Kizuna__Victim records_stale_victim;
static Kizuna__Note records_stale_note;
static Kizuna__Shelter records_stale_shelter;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *obj =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (obj == NULL)
        return 0;
    char err[KZ_NODE_ERR_MAX];

    /* POST /v1/victims */
    Kizuna__Victim *v = &records_stale_victim;
    err[0] = '\0';
    if (kz_node_victim_from_json(obj, false, &v, NULL, NULL, err,
                                 sizeof err) == 0) {
        FUZZ_CHECK(v != NULL && v->name != NULL && v->name[0] != '\0');
        records_roundtrip(v);
        kizuna__victim__free_unpacked(v, NULL);
    } else {
        FUZZ_CHECK(v == NULL && err[0] != '\0');
    }

    /* PATCH /v1/victims/{id} */
    char **set = NULL;
    size_t n_set = 0;
    v = &records_stale_victim;
    err[0] = '\0';
    if (kz_node_victim_from_json(obj, true, &v, &set, &n_set, err,
                                 sizeof err) == 0) {
        FUZZ_CHECK(v != NULL && n_set > 0 && set != NULL);
        records_roundtrip(v);
        kizuna__victim__free_unpacked(v, NULL);
    } else {
        FUZZ_CHECK(v == NULL && set == NULL && n_set == 0 && err[0] != '\0');
    }
    for (size_t i = 0; i < n_set; i++)
        free(set[i]);
    free(set);

    /* POST /v1/victims/{id}/notes */
    Kizuna__Note *note = &records_stale_note;
    err[0] = '\0';
    if (kz_node_note_from_json(obj, &note, err, sizeof err) == 0) {
        FUZZ_CHECK(note != NULL && note->status != NULL);
        kizuna__note__free_unpacked(note, NULL);
    } else {
        FUZZ_CHECK(note == NULL && err[0] != '\0');
    }

    /* PUT /v1/shelters/{id} */
    Kizuna__Shelter *sh = &records_stale_shelter;
    err[0] = '\0';
    if (kz_node_shelter_from_json(obj, &sh, err, sizeof err) == 0) {
        FUZZ_CHECK(sh != NULL && sh->name != NULL);
        json_t *j = kz_node_shelter_to_json(sh);
        FUZZ_CHECK(j != NULL);
        char *text = json_dumps(j, JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        free(text);
        json_decref(j);
        kizuna__shelter__free_unpacked(sh, NULL);
    } else {
        FUZZ_CHECK(sh == NULL && err[0] != '\0');
    }

    json_decref(obj);
    return 0;
}
