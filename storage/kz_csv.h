/*
 * kz_csv.h — an RFC 4180 CSV reader that is fed bytes as they arrive (push
 * parser), shared by the node (POST /v1/import/csv decodes its body with it)
 * and the CLI (`kizuna import csv` streams a file through it). It lives with
 * kz_log and kz_error because both sides link this library and client/ never
 * includes node/; it knows nothing of victims, only of records and lines.
 *
 * Grammar: fields separated by ',', records by LF or CRLF; a field that
 * starts with '"' is quoted: it ends at a '"' not followed by another '"'
 * ("" is one quote) and may hold ',', CR and LF. A '"' inside an unquoted
 * field is taken literally (municipal exports do this). A UTF-8 byte order
 * mark at the very start is dropped. A line with nothing on it is no record
 * (it still counts as a line).
 *
 * Line numbers count LF bytes, including those inside quoted fields, so a
 * record's number is the line its first byte is on, as an editor shows it.
 *
 * Failure modes, per record: text after a closing quote, a NUL byte, a
 * field longer than max_field bytes, more than max_fields fields, or end of
 * input inside quotes. The reader then skips to the end of that record
 * (honouring quotes, so it resynchronises where an editor would) and hands
 * the callback the error instead of the fields. The reader itself fails
 * only when out of memory or when the callback stops it.
 */
#ifndef KZ_CSV_H
#define KZ_CSV_H

#include <stddef.h>

typedef struct kz_csv kz_csv;

/* One record, or one malformed record. For a record, err is NULL and
 * fields[0..n-1] are NUL-terminated (no field holds a NUL), lens their
 * lengths; both are owned by the reader and valid only during the call.
 * For a malformed record, err says why (static text) and n is 0. line is
 * the line its first byte is on. A non-zero return stops the reader: that
 * value is returned by kz_csv_feed / kz_csv_finish. */
typedef int (*kz_csv_record_fn)(void *ud, unsigned long line,
                                char *const *fields, const size_t *lens,
                                size_t n, const char *err);

/* A reader whose first byte is on line first_line. max_field bytes per
 * field and max_fields fields per record (0: 1 MiB and 4096). NULL when out
 * of memory. Freed with kz_csv_free. */
kz_csv *kz_csv_new(unsigned long first_line, size_t max_field,
                   size_t max_fields, kz_csv_record_fn fn, void *ud);

/* Parses len more bytes. 0, -1 when out of memory, or the callback's
 * non-zero return (the reader is then stopped: feed no more). */
int kz_csv_feed(kz_csv *p, const char *buf, size_t len);

/* End of input: hands over the last record if it had no line end. Same
 * returns as kz_csv_feed. */
int kz_csv_finish(kz_csv *p);

/* The line the next byte fed would be on. */
unsigned long kz_csv_line(const kz_csv *p);

void kz_csv_free(kz_csv *p);

/* Appends s (len bytes) to *buf (size *len, capacity *cap; realloc'd as
 * needed, the caller frees it) as one CSV field: quoted when it holds ',',
 * '"', CR or LF or starts or ends with a space, with '"' doubled. 0, or -1
 * when out of memory (the buffer is then unchanged). */
int kz_csv_append_field(char **buf, size_t *len, size_t *cap, const char *s,
                        size_t slen);

#endif
