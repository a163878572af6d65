/*
 * import_csv.h — `kizuna import csv`: a municipal register extract (CSV,
 * UTF-8 or Shift_JIS) streamed into POST /v1/import/csv in batches.
 *
 * Owns the file, an iconv converter, a kz_csv reader (storage/kz_csv.h),
 * in_flight + 1 batch buffers, and in_flight sender threads with a client
 * each. Happy path: read 64 KiB, convert to UTF-8, parse; the header's
 * names are mapped to register fields (--map); each record is written
 * again as CSV under the mapped header (columns not imported left out)
 * into the batch body; a full batch (--batch records, or 2 MB) is queued
 * and sent by a free sender with first_line = its first record's line in
 * the file, so the server's rejections name lines of the user's file;
 * blank lines inside a batch are kept as blank lines for the same reason.
 * Up to in_flight batches are sent and not yet answered. Answers are
 * reported in file order: progress on stderr (every 0.5 s on a terminal,
 * every 5 s otherwise), each rejected record as FILE:LINE: column:
 * message, each --json answer as a line on stdout; then a summary.
 *
 * Failure modes: a record the reader cannot parse is rejected here, with
 * its line, and the batch is cut there (a batch covers consecutive lines).
 * A batch that no node answered, that a node refused whole, or whose
 * outcome is unknown (the library's KZ_CLI_EINDOUBT: sent, then the
 * connection or the leader was lost) stops the import: nothing more is
 * sent, the batches in flight with it are waited for, and each batch not
 * imported or in doubt is named with its lines, then the lines read but
 * not sent. A batch in doubt is never re-sent. The library retries another
 * node by itself only when nothing can have been proposed (refused
 * connection, 503 no_leader).
 */
#ifndef KZ_CLI_IMPORT_CSV_H
#define KZ_CLI_IMPORT_CSV_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "kizuna.h"

/* The fields POST /v1/victims (and so a CSV header) may name, NULL
 * terminated. */
extern const char *const kz_cli_import_fields[];

/* --map SRC=field,SRC=field: pairs into src[i] -> dst[i]. */
typedef struct kz_cli_import_map {
	char **src;
	char **dst;
	size_t n;
} kz_cli_import_map;

/* Parses spec (NULL or "" gives an empty map). Every dst must be a field of
 * kz_cli_import_fields, no SRC twice. 0, or -1 with a message in err;
 * free with kz_cli_import_map_free either way. */
int kz_cli_import_map_parse(const char *spec, kz_cli_import_map *m, char *err,
			    size_t errlen);
void kz_cli_import_map_free(kz_cli_import_map *m);

/* Maps a file's header (n names, spaces around each ignored) to register
 * fields: *cols becomes a malloc'd array of n field names (static strings),
 * NULL for a column that is left out (only with ignore_unknown). A name
 * that is neither mapped nor a field is an error listing every such name;
 * so is a --map source that is not in the header, and a field that two
 * columns would fill. 0, or -1 with a message in err and *cols NULL. */
int kz_cli_import_header(const kz_cli_import_map *m, char *const *names,
			 const size_t *lens, size_t n, int ignore_unknown,
			 const char ***cols, char *err, size_t errlen);

/* Encoding conversion to UTF-8: "utf-8" (no change) or "shift_jis" (CP932,
 * with glibc's iconv; also "sjis", "cp932"). */
typedef struct kz_cli_conv kz_cli_conv;

/* 0, or -1 for an unknown encoding. *out freed with kz_cli_conv_free. */
int kz_cli_conv_open(const char *encoding, kz_cli_conv **out);
/* Converts n more bytes; *out (owned by c, valid until the next call) gets
 * *outlen bytes of UTF-8. A multi-byte character cut at the end of in is
 * kept for the next call; at the end (final), a cut character is an error.
 * 0, or -1 for bytes that are not valid in the encoding (*bad_offset: how
 * many bytes of the whole input came before them) or out of memory. */
int kz_cli_conv_feed(kz_cli_conv *c, const char *in, size_t n, int final,
		     const char **out, size_t *outlen,
		     unsigned long long *bad_offset);
void kz_cli_conv_free(kz_cli_conv *c);

/* Appends record rec (a POST /v1/victims body) to *buf (as
 * kz_csv_append_field: *len bytes of *cap, realloc'd, the caller frees it)
 * as one CSV line in the column order of kz_cli_import_fields: needs joined
 * with ';', consent as true/false when it holds only disclose_safety (else
 * its JSON). With rec NULL, appends the header line. 0, or -1 when out of
 * memory. For `kizuna sample gen --csv`. */
int kz_cli_import_csv_line(const json_t *rec, char **buf, size_t *len,
			   size_t *cap);

/* Records per call unless --batch says otherwise (see import_csv.c). */
#define KZ_CLI_IMPORT_DEFAULT_BATCH 200
/* Batches sent and not yet answered, unless --in-flight says otherwise,
 * and the most it may say (see import_csv.c). */
#define KZ_CLI_IMPORT_DEFAULT_IN_FLIGHT 2
#define KZ_CLI_IMPORT_MAX_IN_FLIGHT 8

typedef struct kz_cli_import_opts {
	const char *file;     /* "-": standard input */
	const char *encoding; /* NULL: utf-8 */
	const char *map;      /* NULL: none */
	int ignore_unknown;
	int dry_run;
	long batch;           /* records per call; 0: the default */
	long in_flight;       /* batches in flight (1..8); 0: the default */
	int json;             /* each batch's answer as a JSON line on stdout */
	int check_duplicates; /* name possible duplicates of each new record */
	/* The options cli was opened with: each sender after the first opens
	 * a client of its own with them (a kz_cli is one thread's). NULL:
	 * one batch in flight, whatever in_flight says. Borrowed. */
	const kz_cli_opts *cli_opts;
} kz_cli_import_opts;

/* Runs the import through cli (one sender's client; the caller keeps it,
 * and must not use it until this returns). Returns the CLI's exit code: 0
 * every record accepted, 1 a record was rejected (or a batch refused), 2
 * usage (unreadable file, unmapped columns), 3 unreachable, 4 a batch in
 * doubt; after a failure, the worst of the batches in flight with it. */
int kz_cli_import_csv(kz_cli *cli, const kz_cli_import_opts *o);

#endif /* KZ_CLI_IMPORT_CSV_H */
