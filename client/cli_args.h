/*
 * Command-line parsing of the `kizuna` CLI, kept out of kizuna_main.c so that
 * tests can drive it without a process or a network.
 *
 * Owns nothing: kz_cli_args_parse() points the struct's strings into argv
 * (and the environment), so argv must outlive the struct. Happy path: global
 * options, a command ("victim get"...), its options and positional id, then
 * defaults from the environment. Failure modes: an unknown command or option,
 * a missing or malformed value, an invalid code (sex, status, damage, needs):
 * KZ_CLI_ARGS_USAGE with a message for the user. The builders below turn a
 * parsed command into the request body or path the API wants, and
 * kz_cli_args_audit_verdict judges the nodes' answers to `audit verify`.
 * kz_cli_args_card_sign does what a citizen's card does with a challenge
 * (OpenSSL, no network), for `card sign`.
 */
#ifndef KZ_CLI_CLI_ARGS_H
#define KZ_CLI_CLI_ARGS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of the CLI. */
enum {
	KZ_CLI_EXIT_OK = 0,          /* 2xx */
	KZ_CLI_EXIT_HTTP = 1,        /* the server answered with an error */
	KZ_CLI_EXIT_USAGE = 2,       /* bad command line or configuration */
	KZ_CLI_EXIT_UNREACHABLE = 3, /* no endpoint answered */
	KZ_CLI_EXIT_INDOUBT = 4      /* a write was sent, its outcome unknown */
};

/* kz_cli_args_parse results. */
enum { KZ_CLI_ARGS_OK = 0, KZ_CLI_ARGS_USAGE = 2 };

typedef enum kz_cli_cmd {
	KZ_CLI_CMD_NONE = 0,
	KZ_CLI_CMD_VICTIM_ADD,
	KZ_CLI_CMD_VICTIM_GET,
	KZ_CLI_CMD_VICTIM_PATCH,
	KZ_CLI_CMD_VICTIM_SEARCH,
	KZ_CLI_CMD_VICTIM_NOTE,
	KZ_CLI_CMD_VICTIM_DUPLICATES,
	KZ_CLI_CMD_VICTIM_MERGE,
	KZ_CLI_CMD_VICTIM_UNMERGE,
	KZ_CLI_CMD_SHELTER_PUT,
	KZ_CLI_CMD_SHELTER_SUMMARY,
	KZ_CLI_CMD_CLUSTER_STATUS,
	KZ_CLI_CMD_CLUSTER_ADD,
	KZ_CLI_CMD_CLUSTER_REMOVE,
	KZ_CLI_CMD_CLUSTER_LEADER,
	KZ_CLI_CMD_SAMPLE_GEN,
	KZ_CLI_CMD_SAMPLE_LOAD,
	KZ_CLI_CMD_KEYS_ROTATE,
	KZ_CLI_CMD_AUDIT_VERIFY,
	KZ_CLI_CMD_AUDIT_LIST,
	KZ_CLI_CMD_CARD_SIGN,
	KZ_CLI_CMD_BACKUP_CREATE,
	KZ_CLI_CMD_BACKUP_RESTORE,
	KZ_CLI_CMD_IMPORT_CSV,
	KZ_CLI_CMD_CLUSTER_PROMOTE,
	KZ_CLI_CMD_CLUSTER_SNAPSHOT,
	KZ_CLI_CMD_IMPORT_PFIF,
	KZ_CLI_CMD_EXPORT_PFIF,
	KZ_CLI_CMD_COUNT_
} kz_cli_cmd;

#define KZ_CLI_ARGS_MAX_SETS 64
#define KZ_CLI_NONCE_LEN 32 /* an identity challenge's nonce, in bytes */

#define KZ_CLI_DEFAULT_ENDPOINTS "var/cluster/endpoints"
#define KZ_CLI_DEFAULT_CACERT "var/cluster/pki/ca.pem"
#define KZ_CLI_DEFAULT_CERT "var/cluster/pki/operator.pem"
#define KZ_CLI_DEFAULT_KEY "var/cluster/pki/operator.key"

/* A parsed command line. Every string points into argv, the environment or
 * a static default: nothing here is freed. */
typedef struct kz_cli_args {
	/* global */
	const char *endpoints;
	const char *cacert, *cert, *key;
	int cacert_default, cert_default, key_default; /* 1: not given, a default */
	const char *purpose;
	long timeout_ms; /* --timeout; 0: library defaults */
	int json;        /* --json: compact JSON output */
	int verbose;     /* -v: the library logs each attempt */
	int help;        /* --help: print kz_cli_args_usage and exit 0 */
	const char *group; /* "victim", "shelter"... (NULL: none given) */
	kz_cli_cmd cmd;
	const char *id; /* positional id of get/patch/note/shelter */
	/* victim add */
	const char *file;
	const char *name, *name_kana, *dob, *sex, *address, *household;
	const char *damage, *shelter, *status, *needs;
	/* get / search */
	int stale, all;
	/* keys rotate */
	int rotate_data, rotate_master;
	/* cluster add / remove / transfer-leader (--to is shared with audit
	 * list's --to) */
	const char *role;
	int force;
	const char *api; /* cluster add: API host:port (--address: raft's) */
	const char *region;
	const char *q;
	long limit; /* search: page size; audit list: items in all; 0: default */
	/* patch */
	const char *if_match;
	const char *sets[KZ_CLI_ARGS_MAX_SETS];
	size_t n_sets;
	/* note */
	const char *text, *author, *location;
	/* shelter put */
	long capacity; /* -1: not given */
	/* audit list (NULL: not given); from and to are RFC 3339 UTC times */
	const char *subject, *from, *to;
	/* sample */
	long count;
	int csv; /* sample gen --csv */
	uint64_t seed;
	long shelters;
	/* card sign: --key and --cert as given on the line (the card's, not
	 * the TLS client's: no environment default), --nonce as given and
	 * decoded */
	const char *card_key, *card_cert, *nonce;
	/* backup create DIR / restore DIR (DIR is id): restore's target */
	const char *data_dir;
	/* import csv FILE (FILE is id) */
	const char *encoding; /* NULL: utf-8 */
	const char *map;      /* --map SRC=field,... */
	int dry_run, ignore_unknown;
	int check_duplicates; /* import csv --check-duplicates */
	const char *into; /* victim merge --into */
	long batch;           /* records per call; 0: not given (1000) */
	long in_flight;       /* import csv: batches in flight; 0: not given */
	/* export pfif --out FILE (NULL: standard output) */
	const char *out;
	unsigned char nonce_bytes[KZ_CLI_NONCE_LEN];
} kz_cli_args;

/* Parses argv[1..argc-1] into *out (argv[0] is the program name).
 * Returns KZ_CLI_ARGS_OK (check out->help), or KZ_CLI_ARGS_USAGE with a
 * message in err. Defaults: endpoints from KIZUNA_ENDPOINTS else
 * KZ_CLI_DEFAULT_ENDPOINTS, certificates from KIZUNA_CACERT / KIZUNA_CERT /
 * KIZUNA_KEY else the KZ_CLI_DEFAULT_* paths, purpose "cli", seed 1,
 * shelters 10. */
int kz_cli_args_parse(int argc, char **argv, kz_cli_args *out, char *err,
		      size_t errlen);

/* Prints the help for what a->group / a->cmd name (everything when neither
 * is set). */
void kz_cli_args_usage(FILE *f, const kz_cli_args *a);

/* Body of POST /v1/victims from the field options of `victim add` (not
 * --file). On 0 *out is a new reference the caller json_decrefs; -1: out
 * of memory. */
int kz_cli_args_victim_body(const kz_cli_args *a, json_t **out);

/* Body of PATCH /v1/victims/{id} from the --set key=value options: a value
 * that parses as JSON is taken as JSON (numbers, true, null, arrays...),
 * anything else as a string; "a.b=x" sets {"a":{"b":x}}. On 0 *out is a new
 * reference the caller json_decrefs; -1 with a message in err. */
int kz_cli_args_patch_body(const kz_cli_args *a, json_t **out, char *err,
			   size_t errlen);

/* Path and query of the search (cursor may be NULL):
 * "/v1/victims?q=…&dob=…&shelter=…&status=…&limit=…&consistency=stale&cursor=…".
 * Returns a malloc'd string the caller free()s, NULL when out of memory. */
char *kz_cli_args_search_path(const kz_cli_args *a, const char *cursor);

/* Path and query of one page of `audit list`:
 * "/v1/audit?subject=…&from=…&to=…&after=…&limit=…" (after only when > 0).
 * Returns a malloc'd string the caller free()s, NULL when out of memory. */
char *kz_cli_args_audit_list_path(const kz_cli_args *a,
				  unsigned long long after, long page);

/* Judges the answers of `audit verify`. nodes is an array with one object
 * per endpoint: {"endpoint":URL, ...} plus "http_status" when the node
 * answered (and then, for a 2xx, the server's verify result merged in:
 * entries, head, ok, and first_seq when the server reports it), or only
 * "error" when it did not. Two nodes whose chains are ok and end at the
 * same seq (first_seq - 1 + entries; first_seq is 1 when absent, so that is
 * the same number of entries) must have the same head: each node that
 * differs gets "disagrees_with": [URL...] added. Returns KZ_CLI_EXIT_OK when
 * every node that answered says ok and none disagree,
 * KZ_CLI_EXIT_UNREACHABLE when no node answered, KZ_CLI_EXIT_HTTP otherwise
 * (a broken chain, a disagreement, a refusal, or an answer that is not a
 * verify result). */
int kz_cli_args_audit_verdict(json_t *nodes);

/* `card sign`: signs a->nonce_bytes with the private key in a->card_key
 * (PEM, unencrypted; EC or RSA) as a card does: EVP_DigestSign with SHA-256
 * over the nonce's bytes, ECDSA or RSA PKCS#1 v1.5 per the key. *signature
 * becomes the signature in base64; when a->card_cert is set, *certificate
 * the certificate (PEM or DER file) as base64 DER, after checking it holds
 * the key's public half (else *certificate is NULL). Both are what POST
 * /v1/identity/verifications takes as "signature" and "certificate". The
 * strings are malloc'd; the caller free()s them. Returns 0, or -1 with
 * nothing allocated and a message in err. */
int kz_cli_args_card_sign(const kz_cli_args *a, char **signature,
			  char **certificate, char *err, size_t errlen);

#endif /* KZ_CLI_CLI_ARGS_H */
