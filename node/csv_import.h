/*
 * csv_import.h — the decoder of POST /v1/import/csv: a UTF-8 CSV body (a
 * header line of register field names, then one person per record) into
 * victims ready to be proposed as one CreateVictims command, plus the
 * records it refuses, each with its line in the user's file.
 *
 * Every data record becomes the JSON object POST /v1/victims would have
 * received (an empty cell is an absent field; `needs` is split on ';' or
 * '|'; `consent` is true/false/yes/no/1/0 for disclose_safety, or a JSON
 * object) and goes through kz_node_victim_from_json, so the rules are the
 * ones of a single registration and live in records.c only.
 *
 * Outside input: tests/fuzz/fuzz_csv.c drives kz_node_csv_decode.
 */
#ifndef KZ_NODE_CSV_IMPORT_H
#define KZ_NODE_CSV_IMPORT_H

#include <jansson.h>
#include <stddef.h>

#include "kizuna.pb-c.h"

/* One batch (one request body, one raft entry) holds at most this many
 * data records and bytes. Every replica applies a batch in one go on its
 * loop, at 0.5-1.5 ms a person on the 2-core test machine: 1000 people
 * stalled loops past the 1 s election timeout and cost the leader its
 * leadership (docs/ARCHITECTURE.md, "CSV import"); 500 keep a batch under
 * about 0.75 s there. */
#define KZ_NODE_IMPORT_MAX_ROWS 500
#define KZ_NODE_IMPORT_MAX_BYTES (4u << 20)

struct kz_node_csv_row {
    unsigned long line; /* in the user's file */
    Kizuna__Victim *v;  /* id not yet set */
};

struct kz_node_csv_batch {
    struct kz_node_csv_row *rows; /* accepted, in file order */
    size_t n, cap;
    size_t records; /* data records seen, accepted or not */
    json_t *rejected; /* [{line, column, code, message}] in file order */
};

/* Decodes body (len bytes). first_line is the line number, in the user's
 * file, of the body's first data record (the header is the line before).
 * On 0 *out holds the accepted rows and the rejections; the caller frees it
 * with kz_node_csv_batch_free (also after an error). On -1 the whole body
 * is refused: *status is 400 or 413, code and err say why for a person
 * (err names the column for a header problem). */
int kz_node_csv_decode(const char *body, size_t len, unsigned long first_line,
                       struct kz_node_csv_batch *out, int *status,
                       char *code, size_t codelen, char *err, size_t errlen);

void kz_node_csv_batch_free(struct kz_node_csv_batch *b);

#endif
