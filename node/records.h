/*
 * records.h — JSON <-> protobuf for the register's records, with the
 * validation of API.md (codes, dates, sizes, unknown fields).
 *
 * Decoders take outside input: they never trust it, reject unknown fields
 * and oversize values with a message naming the field, and leave *out empty
 * on error. The fuzz driver tests/fuzz/fuzz_records.c exercises them.
 */
#ifndef KZ_NODE_RECORDS_H
#define KZ_NODE_RECORDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kizuna.pb-c.h"

#define KZ_NODE_ERR_MAX 200

/* Decodes a victim from a JSON object. For a patch (patch = true) every field
 * is optional, JSON null clears a field, and the names of the fields present
 * are added to out_set (caller frees each and the array with free()). For a
 * create, name is required. On success *out is a new message: free it with
 * kizuna__victim__free_unpacked(*out, NULL) (all its parts are malloc'd, as
 * in an unpacked message). Returns 0, or -1 with a message for a person in
 * err and *out NULL. The note and shelter decoders work the same way. */
int kz_node_victim_from_json(json_t *obj, bool patch, Kizuna__Victim **out,
                             char ***out_set, size_t *n_set, char *err,
                             size_t errlen);

/* A new JSON object for a record (caller owns the reference). */
json_t *kz_node_victim_to_json(const Kizuna__Victim *v);
/* The same record as compact JSON text, exactly what json_dumps of the
 * above with JSON_COMPACT gives, without building it (malloc'd, *len
 * bytes plus a NUL); NULL when out of memory. */
char *kz_node_victim_json(const Kizuna__Victim *v, size_t *len);

int kz_node_note_from_json(json_t *obj, Kizuna__Note **out, char *err,
                           size_t errlen);
int kz_node_shelter_from_json(json_t *obj, Kizuna__Shelter **out, char *err,
                              size_t errlen);
json_t *kz_node_shelter_to_json(const Kizuna__Shelter *s);

/* Validators shared with the query-string parser. */
bool kz_node_valid_date(const char *s);
bool kz_node_valid_code(const char *s, const char *const *codes);
bool kz_node_valid_ref(const char *s); /* ids: [A-Za-z0-9_.:-]{1,64}; NULL: no */
/* 1 to max bytes of well-formed UTF-8 without control characters. */
bool kz_node_valid_text(const char *s, size_t max);

extern const char *const kz_node_sex_codes[];
extern const char *const kz_node_status_codes[];
extern const char *const kz_node_damage_codes[];
extern const char *const kz_node_needs_codes[];

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (UTC) into milliseconds. */
bool kz_node_parse_time(const char *s, int64_t *ms);

/* RFC 3339 UTC with milliseconds, into buf (at least 32 bytes). */
void kz_node_format_time(long long ms, char *buf, size_t len);

#endif
