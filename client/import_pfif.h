/*
 * import_pfif.h — `kizuna import pfif FILE` and `kizuna export pfif`:
 * PFIF 1.4 XML in and out of the register (POST /v1/import/pfif, GET
 * /v1/export/pfif).
 *
 * Import: the file is read with libxml2's streaming reader (never whole;
 * no network, a DTD refused) and cut here into batches: each top-level
 * person or note element is copied, namespace declarations included, into
 * a batch document of at most --batch persons (default 200, at most 500)
 * and 2 MB, sent as one call (one raft entry on the server). Splitting
 * client-side keeps one round trip per batch, memory at one batch, and
 * each server call within its limits; the server then never holds more
 * than a batch. For each element the batch keeps (its first line in the
 * batch, its line in the file), so the server's rejections, which name
 * lines of the batch, are printed as FILE:LINE of the user's file.
 * Failure modes are those of `import csv`: a refused batch or an unknown
 * outcome stops the import naming the records not sent; exit codes 0 all
 * taken, 1 a record rejected, 2 usage (no such file, not PFIF 1.4, not
 * well-formed), 3 unreachable, 4 a batch in doubt.
 *
 * Export: the document streams to --out FILE (written as FILE.part, renamed
 * once complete) or standard output, from the first endpoint that answers.
 */
#ifndef KZ_CLI_IMPORT_PFIF_H
#define KZ_CLI_IMPORT_PFIF_H

#include "kizuna.h"

#define KZ_CLI_PFIF_DEFAULT_BATCH 200

typedef struct kz_cli_pfif_opts {
	const char *file; /* "-": standard input */
	int dry_run;
	long batch;       /* persons per call; 0: the default */
	int json;         /* each batch's answer as a JSON line on stdout */
} kz_cli_pfif_opts;

/* Returns the CLI's exit code (see above). */
int kz_cli_import_pfif(kz_cli *cli, const kz_cli_pfif_opts *o);

/* GET /v1/export/pfif into out ("-" or NULL: standard output). Returns the
 * CLI's exit code: 0 a complete document, 1 refused or cut short, 2 the
 * file cannot be written, 3 unreachable. */
int kz_cli_export_pfif(kz_cli *cli, const char *out);

#endif /* KZ_CLI_IMPORT_PFIF_H */
