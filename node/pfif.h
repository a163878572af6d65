/*
 * pfif.h — PFIF 1.4 (People Finder Interchange Format, XML) in and out of
 * the register: the decoder of POST /v1/import/pfif and the writer of GET
 * /v1/export/pfif.
 *
 * Decoder: a request body (one batch: at most KZ_NODE_PFIF_MAX_PERSONS
 * person elements, KZ_NODE_PFIF_MAX_BYTES bytes) is parsed with libxml2 as
 * outside input: no network, no DTD (a document that declares one is
 * refused whole), no entity substitution beyond XML's own. Each
 * <pfif:person> becomes the JSON object POST /v1/victims would have
 * received and goes through kz_node_victim_from_json, so the register's
 * rules live in records.c only; its notes (nested, or top-level notes that
 * name it by person_record_id) go through kz_node_note_from_json. What maps
 * to what, and what is lost: docs/ARCHITECTURE.md, "PFIF 1.4".
 *
 * A person or note the register cannot take is listed in `rejected` with
 * its record id and the line of its element; a value left out because the
 * register cannot hold it (a date of birth without a day, alternate names
 * without kana) is listed in `warnings`. Nothing here reads a clock: notes
 * without a date get the command's time on apply.
 *
 * Outside input: tests/fuzz/fuzz_pfif.c drives kz_node_pfif_decode.
 */
#ifndef KZ_NODE_PFIF_H
#define KZ_NODE_PFIF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "csv_import.h"
#include "kizuna.pb-c.h"
#include "text.h"

#define KZ_NODE_PFIF_NS "http://zesty.ca/pfif/1.4"
/* One batch is one raft entry applied in one go on every node: the same
 * bound as a CSV batch (csv_import.h, docs/ARCHITECTURE.md "CSV import"). */
#define KZ_NODE_PFIF_MAX_PERSONS KZ_NODE_IMPORT_MAX_ROWS
#define KZ_NODE_PFIF_MAX_BYTES KZ_NODE_IMPORT_MAX_BYTES
#define KZ_NODE_PFIF_MAX_NOTES 5000        /* note elements in one batch */
#define KZ_NODE_PFIF_MAX_PERSON_NOTES 100  /* notes about one person */
#define KZ_NODE_PFIF_ID_MAX 256            /* bytes of a record id */

/* person_record_id of a record that did not come from PFIF:
 * KZ_NODE_PFIF_DOMAIN "/victim." <victim id>; its notes are
 * KZ_NODE_PFIF_DOMAIN "/note." <victim id> "." <n>. Importing such an id
 * updates the record it names, so an export read back changes nothing. */
#define KZ_NODE_PFIF_DOMAIN "kizuna.example"
#define KZ_NODE_PFIF_NATIVE_PREFIX KZ_NODE_PFIF_DOMAIN "/victim."

struct kz_node_pfif_row {
    unsigned long line; /* of the person element (first note if notes_only) */
    bool notes_only;    /* top-level notes of a person not in the body */
    Kizuna__Victim *v;  /* pfif_record_id set, id not yet */
    char **set;         /* fields of v the document gave (PfifPerson.set) */
    size_t n_set;
};

struct kz_node_pfif_batch {
    struct kz_node_pfif_row *rows; /* accepted, in document order */
    size_t n, cap;
    size_t persons;   /* person elements seen, accepted or not */
    size_t notes;     /* note elements seen */
    json_t *rejected; /* [{record_id, line, field?, code, message}] */
    json_t *warnings; /* [{record_id, line, field, message}] */
};

/* Decodes body (len bytes). On 0 *out holds the accepted persons and the
 * rejections; the caller frees it with kz_node_pfif_batch_free (also after
 * an error). On -1 the whole body is refused: *status is 400 (not XML, a
 * DTD, not a PFIF 1.4 document) or 413 (too many persons or notes, too
 * large), code and err say why for a person. */
int kz_node_pfif_decode(const char *body, size_t len,
                        struct kz_node_pfif_batch *out, int *status,
                        char *code, size_t codelen, char *err, size_t errlen);

void kz_node_pfif_batch_free(struct kz_node_pfif_batch *b);

/* PFIF note status -> the register's status (API.md), NULL when it is not
 * a PFIF 1.4 status: information_sought -> unknown, is_note_author and
 * believed_alive -> safe, believed_missing -> missing, believed_dead ->
 * deceased. And back (safe/injured -> believed_alive, missing ->
 * believed_missing, deceased -> believed_dead, unknown -> NULL: no
 * status). */
const char *kz_node_pfif_status_in(const char *pfif_status);
const char *kz_node_pfif_status_out(const char *status);

/* A growing output buffer; oom is set (and further appends ignored) when
 * an allocation fails. The caller frees p with free(). */

/* Appends s as it is (no escaping). */
void kz_node_pfif_buf_put(struct kz_node_text *b, const char *s);

/* The document's start (XML declaration and the pfif:pfif root) and end. */
void kz_node_pfif_begin(struct kz_node_text *b);
void kz_node_pfif_end(struct kz_node_text *b);

/* Appends v as one <pfif:person> with its notes, every text XML-escaped.
 * source names the register ("Kizuna <municipality>"). Fields written:
 * docs/ARCHITECTURE.md, "PFIF 1.4". */
void kz_node_pfif_write_person(struct kz_node_text *b,
                               const Kizuna__Victim *v, const char *source);

/* Whether v may leave the register in a PFIF export: DOMAIN.md §1, consent
 * to disclose safety information, and, when the consent names recipients,
 * only if "pfif" is one of them (a PFIF export goes to person-finder
 * services, not to one named organisation). Never a record merged into
 * another as a duplicate (its merged_into is set). */
bool kz_node_pfif_exportable(const Kizuna__Victim *v);

#endif
