/*
 * kz_csv.c — the push CSV reader of kz_csv.h.
 *
 * One byte at a time through a four-state machine (start of a field,
 * unquoted, quoted, quote seen inside quotes). The fields of the current
 * record are kept in one growing buffer, NUL-separated, with their start
 * offsets; a record is handed to the callback when its line end (or the end
 * of input) is reached. A CR outside quotes is held back until the next
 * byte says whether it was half of a CRLF. After an error the machine keeps
 * running in "discard" mode (nothing stored, nothing refused) so that it
 * finds the record's end exactly where a correct record would have ended.
 */
#include "kz_csv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_START, S_UNQ, S_Q, S_QQ };

struct kz_csv {
    kz_csv_record_fn fn;
    void *ud;
    size_t max_field, max_fields;
    unsigned long line, rec_line;
    int state;
    bool cr;       /* a CR outside quotes, not yet known to be CRLF */
    bool rec_any;  /* the record has begun (an empty line has not) */
    const char *err; /* the record is malformed: discard mode */
    int stop_rv;   /* non-zero: the callback stopped the reader */
    char *buf;
    size_t len, cap, field_start;
    size_t *offs;
    size_t nf, offcap;
    char **ptrs;
    size_t *lens;
    unsigned char bom[3];
    size_t bom_n;
    bool bom_done;
};

kz_csv *kz_csv_new(unsigned long first_line, size_t max_field,
                   size_t max_fields, kz_csv_record_fn fn, void *ud)
{
    kz_csv *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->fn = fn;
    p->ud = ud;
    p->max_field = max_field ? max_field : (1u << 20);
    p->max_fields = max_fields ? max_fields : 4096;
    p->line = p->rec_line = first_line;
    p->state = S_START;
    return p;
}

void kz_csv_free(kz_csv *p)
{
    if (p == NULL)
        return;
    free(p->buf);
    free(p->offs);
    free(p->ptrs);
    free(p->lens);
    free(p);
}

unsigned long kz_csv_line(const kz_csv *p)
{
    return p->line;
}

static int grow(kz_csv *p, size_t need)
{
    if (need <= p->cap)
        return 0;
    size_t cap = p->cap ? p->cap : 256;
    while (cap < need)
        cap *= 2;
    char *b = realloc(p->buf, cap);
    if (b == NULL)
        return -1;
    p->buf = b;
    p->cap = cap;
    return 0;
}

static int add_char(kz_csv *p, char c)
{
    if (p->err != NULL)
        return 0;
    if (c == '\0') {
        p->err = "contains a NUL byte";
        return 0;
    }
    if (p->len - p->field_start >= p->max_field) {
        p->err = "a field is too long";
        return 0;
    }
    if (grow(p, p->len + 2) != 0)
        return -1;
    p->buf[p->len++] = c;
    return 0;
}

static int end_field(kz_csv *p)
{
    if (p->err != NULL)
        return 0;
    if (p->nf >= p->max_fields) {
        p->err = "too many fields";
        return 0;
    }
    if (p->nf == p->offcap) {
        size_t cap = p->offcap ? p->offcap * 2 : 32;
        size_t *o = realloc(p->offs, cap * sizeof *o);
        if (o == NULL)
            return -1;
        p->offs = o;
        char **pt = realloc(p->ptrs, cap * sizeof *pt);
        if (pt == NULL)
            return -1;
        p->ptrs = pt;
        size_t *l = realloc(p->lens, cap * sizeof *l);
        if (l == NULL)
            return -1;
        p->lens = l;
        p->offcap = cap;
    }
    if (grow(p, p->len + 1) != 0)
        return -1;
    p->offs[p->nf] = p->field_start;
    p->lens[p->nf] = p->len - p->field_start;
    p->nf++;
    p->buf[p->len++] = '\0';
    p->field_start = p->len;
    return 0;
}

/* The record ends (at a line end or the end of input). */
static int end_record(kz_csv *p)
{
    int rv = 0;
    if (p->rec_any || p->err != NULL) {
        if (end_field(p) != 0)
            return -1;
        if (p->err != NULL) {
            rv = p->fn(p->ud, p->rec_line, NULL, NULL, 0, p->err);
        } else {
            for (size_t i = 0; i < p->nf; i++)
                p->ptrs[i] = p->buf + p->offs[i];
            rv = p->fn(p->ud, p->rec_line, p->ptrs, p->lens, p->nf, NULL);
        }
    }
    p->len = p->field_start = p->nf = 0;
    p->err = NULL;
    p->rec_any = false;
    p->state = S_START;
    p->rec_line = p->line;
    if (rv != 0)
        p->stop_rv = rv;
    return rv;
}

static int step(kz_csv *p, char c)
{
    if (p->cr) {
        p->cr = false;
        if (c == '\n') {
            p->line++;
            return end_record(p);
        }
        /* A CR alone is text (the validator of the field decides). */
        if (p->state == S_QQ) {
            if (p->err == NULL)
                p->err = "text after a closing quote";
            p->state = S_UNQ;
        }
        p->rec_any = true;
        if (p->state == S_START)
            p->state = S_UNQ;
        if (add_char(p, '\r') != 0)
            return -1;
    }
    switch (p->state) {
    case S_START:
        if (c == '"') {
            p->rec_any = true;
            p->state = S_Q;
            return 0;
        }
        if (c == ',') {
            p->rec_any = true;
            return end_field(p);
        }
        if (c == '\n') {
            p->line++;
            return end_record(p);
        }
        if (c == '\r') {
            p->cr = true;
            return 0;
        }
        p->rec_any = true;
        p->state = S_UNQ;
        return add_char(p, c);
    case S_UNQ:
        if (c == ',') {
            p->state = S_START;
            return end_field(p);
        }
        if (c == '\n') {
            p->line++;
            return end_record(p);
        }
        if (c == '\r') {
            p->cr = true;
            return 0;
        }
        return add_char(p, c);
    case S_Q:
        if (c == '"') {
            p->state = S_QQ;
            return 0;
        }
        if (c == '\n')
            p->line++;
        return add_char(p, c);
    default: /* S_QQ */
        if (c == '"') {
            p->state = S_Q;
            return add_char(p, '"');
        }
        if (c == ',') {
            p->state = S_START;
            return end_field(p);
        }
        if (c == '\n') {
            p->line++;
            return end_record(p);
        }
        if (c == '\r') {
            p->cr = true;
            return 0;
        }
        if (p->err == NULL)
            p->err = "text after a closing quote";
        p->state = S_UNQ;
        return 0;
    }
}

static int run(kz_csv *p, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int rv = step(p, buf[i]);
        if (rv != 0)
            return rv;
    }
    return 0;
}

int kz_csv_feed(kz_csv *p, const char *buf, size_t len)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    if (p->stop_rv != 0)
        return p->stop_rv;
    while (!p->bom_done && len > 0) {
        p->bom[p->bom_n++] = (unsigned char)*buf++;
        len--;
        if (p->bom[p->bom_n - 1] != bom[p->bom_n - 1]) {
            p->bom_done = true;
            int rv = run(p, (const char *)p->bom, p->bom_n);
            if (rv != 0)
                return rv;
        } else if (p->bom_n == 3) {
            p->bom_done = true; /* dropped */
        }
    }
    return run(p, buf, len);
}

int kz_csv_finish(kz_csv *p)
{
    if (p->stop_rv != 0)
        return p->stop_rv;
    if (!p->bom_done) {
        p->bom_done = true;
        int rv = run(p, (const char *)p->bom, p->bom_n);
        if (rv != 0)
            return rv;
    }
    if (p->cr) {
        p->cr = false;
        return end_record(p);
    }
    if (p->state == S_Q && p->err == NULL)
        p->err = "end of input inside a quoted field";
    if (p->rec_any || p->err != NULL)
        return end_record(p);
    return 0;
}

int kz_csv_append_field(char **buf, size_t *len, size_t *cap, const char *s,
                        size_t slen)
{
    bool quote = slen > 0 && (s[0] == ' ' || s[slen - 1] == ' ');
    size_t extra = 0;
    for (size_t i = 0; i < slen; i++) {
        if (s[i] == '"')
            extra++;
        if (s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n')
            quote = true;
    }
    size_t need = *len + slen + extra + (quote ? 2 : 0) + 1;
    if (need > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < need)
            c *= 2;
        char *b = realloc(*buf, c);
        if (b == NULL)
            return -1;
        *buf = b;
        *cap = c;
    }
    char *o = *buf + *len;
    if (quote)
        *o++ = '"';
    for (size_t i = 0; i < slen; i++) {
        if (s[i] == '"')
            *o++ = '"';
        *o++ = s[i];
    }
    if (quote)
        *o++ = '"';
    *len = (size_t)(o - *buf);
    (*buf)[*len] = '\0';
    return 0;
}
