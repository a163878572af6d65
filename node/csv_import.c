/*
 * csv_import.c — POST /v1/import/csv's body into victims (csv_import.h).
 *
 * Happy path: kz_csv (storage/kz_csv.h) hands over the header record, whose
 * names are checked against the fields POST /v1/victims takes; then each
 * data record becomes a JSON object and goes through the single
 * registration's decoder (records.c), and lands either in the accepted rows
 * or in the rejections with its line. Failure modes: a header that names an
 * unknown or repeated field, or is malformed, refuses the whole body (400);
 * so does a body with more than KZ_NODE_IMPORT_MAX_ROWS records (413).
 * Everything else is one record's problem and refuses that record only.
 */
#include "csv_import.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kz_csv.h"
#include "records.h"

/* The fields of POST /v1/victims (records.c), in the order of API.md. */
static const char *const fields[] = {
    "name",       "name_kana", "dob",    "sex",     "address",
    "household_id", "damage",  "needs",  "shelter_id", "status",
    "contact",    "consent",   "damage_certified_on", NULL};

#define MAX_COLS 13

struct dec {
    struct kz_node_csv_batch *out;
    unsigned long offset; /* user's line = parser's line + offset */
    bool have_header;
    size_t ncols;
    int col_field[MAX_COLS]; /* index into fields[] */
    /* whole-body refusal */
    int status;
    char code[32];
    char err[KZ_NODE_ERR_MAX];
};

static int refuse(struct dec *d, int status, const char *code, const char *fmt,
                  const char *a, const char *b)
{
    d->status = status;
    snprintf(d->code, sizeof d->code, "%s", code);
    snprintf(d->err, sizeof d->err, fmt, a, b);
    return 1;
}

static int reject(struct dec *d, unsigned long line, const char *column,
                  const char *code, const char *message)
{
    json_t *o = json_pack("{s:I,s:s?,s:s,s:s}", "line", (json_int_t)line,
                          "column", column, "code", code, "message", message);
    if (o == NULL || json_array_append_new(d->out->rejected, o) != 0)
        return -1;
    return 0;
}

/* A printable copy of a header name for a message: at most 40 bytes, no
 * control characters. */
static void shown(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < cap && o < 40; i++)
        out[o++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[o] = '\0';
}

static int header(struct dec *d, char *const *f, const size_t *lens, size_t n)
{
    char name[48], col[16];
    if (n > MAX_COLS && n > 0) {
        snprintf(col, sizeof col, "%zu", n);
        return refuse(d, 400, "bad_header",
                      "header: %s columns, but a register record has at "
                      "most 13 fields%s",
                      col, "");
    }
    for (size_t i = 0; i < n; i++) {
        int k = -1;
        for (int j = 0; fields[j] != NULL; j++)
            if (strlen(fields[j]) == lens[i] && strcmp(fields[j], f[i]) == 0)
                k = j;
        shown(f[i], lens[i], name, sizeof name);
        snprintf(col, sizeof col, "%zu", i + 1);
        if (k < 0)
            return refuse(d, 400, "unknown_column",
                          "header column %s '%s': not a register field (name, "
                          "name_kana, dob, sex, address, household_id, "
                          "damage, needs, shelter_id, status, contact, "
                          "consent, damage_certified_on)",
                          col, name);
        for (size_t j = 0; j < i; j++)
            if (d->col_field[j] == k)
                return refuse(d, 400, "duplicate_column",
                              "header column %s '%s': named twice", col, name);
        d->col_field[i] = k;
    }
    d->ncols = n;
    d->have_header = true;
    return 0;
}

/* `needs`: codes separated by ';' or '|', spaces around them ignored. */
static json_t *needs_array(const char *s)
{
    json_t *a = json_array();
    while (a != NULL && *s) {
        size_t n = strcspn(s, ";|");
        const char *b = s, *e = s + n;
        while (b < e && *b == ' ')
            b++;
        while (e > b && e[-1] == ' ')
            e--;
        if (e > b) {
            json_t *v = json_stringn(b, (size_t)(e - b));
            if (v == NULL) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        s += n;
        if (*s)
            s++;
    }
    return a;
}

/* `consent`: a yes/no for disclose_safety, or the JSON object itself. */
static json_t *consent_value(const char *s, size_t len)
{
    static const char *const yes[] = {"true", "yes", "1", NULL};
    static const char *const no[] = {"false", "no", "0", NULL};
    if (len > 0 && s[0] == '{')
        return json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(s, yes[i]) == 0)
            return json_pack("{s:b}", "disclose_safety", 1);
    for (int i = 0; no[i]; i++)
        if (strcasecmp(s, no[i]) == 0)
            return json_pack("{s:b}", "disclose_safety", 0);
    return NULL;
}

static int data_record(struct dec *d, unsigned long line, char *const *f,
                       const size_t *lens, size_t n)
{
    char msg[KZ_NODE_ERR_MAX];
    if (n != d->ncols) {
        snprintf(msg, sizeof msg, "%zu fields, but the header has %zu", n,
                 d->ncols);
        return reject(d, line, NULL, "bad_csv", msg);
    }
    json_t *obj = json_object();
    if (obj == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0)
            continue; /* an empty cell: the field is absent */
        const char *name = fields[d->col_field[i]];
        json_t *v;
        if (strcmp(name, "needs") == 0)
            v = needs_array(f[i]);
        else if (strcmp(name, "consent") == 0)
            v = consent_value(f[i], lens[i]);
        else
            v = json_stringn(f[i], lens[i]); /* NULL: not UTF-8 */
        if (v == NULL) {
            json_decref(obj);
            snprintf(msg, sizeof msg, "%s: %s", name,
                     strcmp(name, "consent") == 0
                         ? "must be true or false, or a JSON object"
                         : "is not valid UTF-8");
            return reject(d, line, name, "bad_request", msg);
        }
        json_object_set_new(obj, name, v);
    }
    Kizuna__Victim *vic;
    char err[KZ_NODE_ERR_MAX];
    int rv = kz_node_victim_from_json(obj, false, &vic, NULL, NULL, err,
                                      sizeof err);
    json_decref(obj);
    if (rv != 0) {
        /* "dob: must be ..." or "consent.recipients: ...": the column is
         * the field before the first ':' or '.'. */
        char col[40];
        size_t cl = strcspn(err, ":.");
        snprintf(col, sizeof col, "%.*s", (int)(cl < 39 ? cl : 39), err);
        return reject(d, line, col, "bad_request", err);
    }
    struct kz_node_csv_batch *b = d->out;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct kz_node_csv_row *r = realloc(b->rows, cap * sizeof *r);
        if (r == NULL) {
            kizuna__victim__free_unpacked(vic, NULL);
            return -1;
        }
        b->rows = r;
        b->cap = cap;
    }
    b->rows[b->n].line = line;
    b->rows[b->n].v = vic;
    b->n++;
    return 0;
}

static int on_record(void *ud, unsigned long line, char *const *f,
                     const size_t *lens, size_t n, const char *err)
{
    struct dec *d = ud;
    if (!d->have_header) {
        if (err != NULL)
            return refuse(d, 400, "bad_header", "header line: %s%s", err, "");
        return header(d, f, lens, n);
    }
    line += d->offset;
    if (++d->out->records > KZ_NODE_IMPORT_MAX_ROWS) {
        char max[16];
        snprintf(max, sizeof max, "%d", KZ_NODE_IMPORT_MAX_ROWS);
        return refuse(d, 413, "too_many_rows",
                      "a batch holds at most %s records%s: split the file "
                      "(kizuna import csv does)",
                      max, "");
    }
    if (err != NULL)
        return reject(d, line, NULL, "bad_csv", err);
    return data_record(d, line, f, lens, n);
}

int kz_node_csv_decode(const char *body, size_t len, unsigned long first_line,
                       struct kz_node_csv_batch *out, int *status,
                       char *code, size_t codelen, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->rejected = json_array();
    struct dec d = {.out = out};
    if (first_line < 2)
        first_line = 2;
    /* The parser counts the header as line 1. */
    d.offset = first_line - 2;
    int rv = -1;
    if (out->rejected == NULL) {
        refuse(&d, 500, "internal", "out of memory%s%s", "", "");
        goto done;
    }
    if (len > KZ_NODE_IMPORT_MAX_BYTES) {
        refuse(&d, 413, "too_large",
               "a batch is at most 4 MB%s%s: split the file (kizuna import "
               "csv does)",
               "", "");
        goto done;
    }
    kz_csv *p = kz_csv_new(1, 0, MAX_COLS + 1, on_record, &d);
    if (p == NULL) {
        refuse(&d, 500, "internal", "out of memory%s%s", "", "");
        goto done;
    }
    int prv = kz_csv_feed(p, body, len);
    if (prv == 0)
        prv = kz_csv_finish(p);
    kz_csv_free(p);
    if (prv < 0 && d.status == 0)
        refuse(&d, 500, "internal", "out of memory%s%s", "", "");
    else if (prv == 0 && !d.have_header)
        refuse(&d, 400, "bad_request",
               "a CSV body is required: a header line of field names, then "
               "one record per person%s%s",
               "", "");
    rv = d.status != 0 ? -1 : 0;
done:
    if (rv != 0) {
        *status = d.status;
        snprintf(code, codelen, "%s", d.code);
        snprintf(err, errlen, "%s", d.err);
    }
    return rv;
}

void kz_node_csv_batch_free(struct kz_node_csv_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        kizuna__victim__free_unpacked(b->rows[i].v, NULL);
    free(b->rows);
    json_decref(b->rejected);
    memset(b, 0, sizeof *b);
}
