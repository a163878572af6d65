/*
 * fuzz_pfif.c — libFuzzer driver for the PFIF 1.4 import decoder
 * (node/pfif.h, libxml2 underneath), fed exactly as api_pfif.c feeds it: a
 * request body of POST /v1/import/pfif.
 *
 * Beyond "no sanitizer report", it checks the decoder's contract: a refused
 * body has a status of 400 or 413 and a message; an accepted one has at
 * most 500 persons seen and rows, every row has a PFIF record id, every
 * person row a name, every note a register status and a note id, the set
 * names only mapped fields, and each victim survives what the proposer and
 * register.c do to it (pack and unpack). The writer then exports each
 * accepted person and the decoder must read that document back with the
 * same name and the same number of notes (escaping round-trips).
 * Seeds: tests/fuzz/corpus/pfif/ (real-looking PFIF documents).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kizuna.pb-c.h"
#include "pfif.h"
#include "records.h"

static void check_roundtrip(const Kizuna__Victim *v)
{
    struct kz_node_text out = {0};
    kz_node_pfif_begin(&out);
    kz_node_pfif_write_person(&out, v, "Kizuna fuzz");
    kz_node_pfif_end(&out);
    FUZZ_CHECK(!out.oom);
    struct kz_node_pfif_batch b;
    int status = 0;
    char code[32], err[KZ_NODE_ERR_MAX];
    int rv = kz_node_pfif_decode(out.p, out.len, &b, &status, code,
                                 sizeof code, err, sizeof err);
    FUZZ_CHECK(rv == 0);
    FUZZ_CHECK(b.n == 1);
    FUZZ_CHECK(json_array_size(b.rejected) == 0);
    FUZZ_CHECK(strcmp(b.rows[0].v->name, v->name) == 0);
    FUZZ_CHECK(strcmp(b.rows[0].v->pfif_record_id, v->pfif_record_id) == 0);
    FUZZ_CHECK(b.rows[0].v->n_notes == v->n_notes);
    kz_node_pfif_batch_free(&b);
    free(out.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const mapped[] = {"name", "name_kana", "name_reading",
                                         "dob", "sex", "address", NULL};
    struct kz_node_pfif_batch b;
    int status = 0;
    char code[32], err[KZ_NODE_ERR_MAX];
    err[0] = '\0';
    if (kz_node_pfif_decode((const char *)data, size, &b, &status, code,
                            sizeof code, err, sizeof err) != 0) {
        FUZZ_CHECK(status == 400 || status == 413);
        FUZZ_CHECK(err[0] != '\0');
        kz_node_pfif_batch_free(&b);
        return 0;
    }
    FUZZ_CHECK(b.persons <= KZ_NODE_PFIF_MAX_PERSONS);
    FUZZ_CHECK(b.n <= KZ_NODE_PFIF_MAX_PERSONS);
    for (size_t i = 0; i < b.n; i++) {
        const struct kz_node_pfif_row *r = &b.rows[i];
        Kizuna__Victim *v = r->v;
        FUZZ_CHECK(v->pfif_record_id != NULL && v->pfif_record_id[0]);
        FUZZ_CHECK(r->notes_only || (v->name != NULL && v->name[0]));
        for (size_t j = 0; j < r->n_set; j++)
            FUZZ_CHECK(kz_node_valid_code(r->set[j], mapped));
        for (size_t j = 0; j < v->n_notes; j++) {
            FUZZ_CHECK(kz_node_valid_code(v->notes[j]->status,
                                          kz_node_status_codes));
            FUZZ_CHECK(v->notes[j]->pfif_note_id != NULL);
        }
        size_t len = kizuna__victim__get_packed_size(v);
        uint8_t *buf = malloc(len ? len : 1);
        FUZZ_CHECK(buf != NULL);
        kizuna__victim__pack(v, buf);
        Kizuna__Victim *back = kizuna__victim__unpack(NULL, len, buf);
        FUZZ_CHECK(back != NULL);
        kizuna__victim__free_unpacked(back, NULL);
        free(buf);
        if (!r->notes_only)
            check_roundtrip(v);
    }
    kz_node_pfif_batch_free(&b);
    return 0;
}
