/*
 * fuzz_csv.c — libFuzzer driver for the CSV import decoder
 * (node/csv_import.h over storage/kz_csv.h), fed exactly as http_api.c
 * feeds it: a request body of POST /v1/import/csv.
 *
 * Beyond "no sanitizer report", it checks the decoder's contract: a refused
 * body has a status of 400 or 413 and a message; an accepted one has no
 * more than 2000 records, accepted rows plus rejections make the records
 * seen, lines only grow, and every accepted victim has a name and survives
 * what register.c does to it (pack and unpack). The reader is also fed the
 * same bytes cut in two at every tenth offset and must hand over the same
 * records (the CLI feeds it in pieces).
 * Seeds: tests/fuzz/corpus/csv/.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv_import.h"
#include "fuzz_util.h"
#include "kizuna.pb-c.h"
#include "kz_csv.h"
#include "records.h"

/* A digest of every record the reader hands over, to compare two runs. */
struct csv_sum {
    unsigned long long h;
    size_t records;
};

static int csv_sum_record(void *ud, unsigned long line, char *const *f,
                          const size_t *lens, size_t n, const char *err)
{
    struct csv_sum *s = ud;
    s->records++;
    s->h = s->h * 1000003u + line;
    if (err != NULL) {
        s->h = s->h * 31u + 7u;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(strlen(f[i]) == lens[i]);
        for (size_t j = 0; j < lens[i]; j++)
            s->h = s->h * 131u + (unsigned char)f[i][j];
        s->h = s->h * 131u + 0x100u;
    }
    return 0;
}

static struct csv_sum csv_read(const uint8_t *data, size_t size, size_t cut)
{
    struct csv_sum s = {0, 0};
    kz_csv *p = kz_csv_new(1, 0, 0, csv_sum_record, &s);
    FUZZ_CHECK(p != NULL);
    FUZZ_CHECK(kz_csv_feed(p, (const char *)data, cut) == 0);
    FUZZ_CHECK(kz_csv_feed(p, (const char *)data + cut, size - cut) == 0);
    FUZZ_CHECK(kz_csv_finish(p) == 0);
    kz_csv_free(p);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kz_node_csv_batch b;
    int status = 0;
    char code[32], err[KZ_NODE_ERR_MAX];
    err[0] = '\0';
    if (kz_node_csv_decode((const char *)data, size, 2, &b, &status, code,
                           sizeof code, err, sizeof err) != 0) {
        FUZZ_CHECK(status == 400 || status == 413);
        FUZZ_CHECK(err[0] != '\0');
    } else {
        FUZZ_CHECK(b.records <= KZ_NODE_IMPORT_MAX_ROWS);
        FUZZ_CHECK(b.n + json_array_size(b.rejected) == b.records);
        unsigned long last = 0;
        for (size_t i = 0; i < b.n; i++) {
            const Kizuna__Victim *v = b.rows[i].v;
            FUZZ_CHECK(v->name != NULL && v->name[0] != '\0');
            FUZZ_CHECK(b.rows[i].line > last);
            last = b.rows[i].line;
            size_t sz = kizuna__victim__get_packed_size(v);
            uint8_t *buf = malloc(sz ? sz : 1);
            FUZZ_CHECK(buf != NULL);
            FUZZ_CHECK(kizuna__victim__pack(v, buf) == sz);
            Kizuna__Victim *back = kizuna__victim__unpack(NULL, sz, buf);
            FUZZ_CHECK(back != NULL);
            kizuna__victim__free_unpacked(back, NULL);
            free(buf);
        }
    }
    kz_node_csv_batch_free(&b);

    /* Pieces: the same records whatever the cut. */
    struct csv_sum whole = csv_read(data, size, size);
    for (size_t cut = 0; cut < size; cut += 10) {
        struct csv_sum part = csv_read(data, size, cut);
        FUZZ_CHECK(part.records == whole.records && part.h == whole.h);
    }
    return 0;
}
