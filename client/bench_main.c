/*
 * `kizuna-bench`: a thin main over bench.c. Parses the command line, runs the
 * workload, prints the summary (text, or one JSON object with --json) on
 * stdout and maps the outcome to the exit status: 0 at least one request
 * succeeded and none failed in transport, 1 otherwise (or the run could not
 * finish), 2 a bad command line or configuration. Progress and diagnostics
 * go to stderr.
 */
#include "bench.h"
#include "kizuna.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	kz_cli_bench_args a;
	kz_cli_bench_result res;
	char err[600];
	int rc, code;

	if (kz_cli_bench_args_parse(argc, argv, &a, err, sizeof(err)) !=
	    KZ_CLI_BENCH_ARGS_OK) {
		fprintf(stderr, "kizuna-bench: %s (see --help)\n", err);
		return KZ_CLI_BENCH_EXIT_USAGE;
	}
	if (a.help) {
		kz_cli_bench_usage(stdout);
		return KZ_CLI_BENCH_EXIT_OK;
	}

	rc = kz_cli_bench_run(&a, &res, err, sizeof(err));
	if (rc != KZ_CLI_OK) {
		fprintf(stderr, "kizuna-bench: %s\n", err);
		kz_cli_bench_result_free(&res);
		return rc == KZ_CLI_EIO || rc == KZ_CLI_EINVAL ||
			       rc == KZ_CLI_ECONFIG
			   ? KZ_CLI_BENCH_EXIT_USAGE
			   : KZ_CLI_BENCH_EXIT_FAIL;
	}
	if (a.json) {
		json_t *j = kz_cli_bench_report_json(&a, &res);
		char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (s == NULL) {
			fprintf(stderr, "kizuna-bench: out of memory\n");
			kz_cli_bench_result_free(&res);
			return KZ_CLI_BENCH_EXIT_FAIL;
		}
		puts(s);
		free(s);
	} else {
		kz_cli_bench_report_text(stdout, &a, &res);
	}
	code = kz_cli_bench_exit_code(&res);
	kz_cli_bench_result_free(&res);
	return code;
}
