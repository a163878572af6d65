/*
 * `kizuna`: the operator's command-line tool (etcdctl-like) over libkizuna.
 *
 * Owns the process: parses the command line (cli_args.c), opens one client,
 * runs one command and maps the outcome to the exit code:
 *   0 every call answered 2xx; 1 the server refused (its error code and
 *   message on stderr); 2 usage or configuration error; 3 no endpoint
 *   reachable; 4 a write was sent but no answer came (it may have been
 *   applied: look before sending it again).
 * Output: records and search results as pretty JSON on stdout (compact with
 * --json), `cluster status` as a table, `audit verify` one line per node,
 * `audit list` one JSON line per record, diagnostics on stderr. `sample gen`
 * and `card sign` (a card's signature over a challenge's nonce, two base64
 * lines) need no cluster at all.
 *
 * `audit verify` is the one command that does not fail over: it asks every
 * endpoint, through a client of its own, and compares their answers
 * (0 all whole and agreeing, 1 a broken chain or two nodes that differ,
 * 3 no node answered).
 */
#include "backup_cmd.h"
#include "cli_args.h"
#include "import_csv.h"
#include "import_pfif.h"
#include "kizuna.h"
#include "sample.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KZ_CLI__MAX_ERRORS_SHOWN 10

typedef struct kz_cli__ctx {
	const kz_cli_args *a;
	const kz_cli_opts *opts; /* what cli was opened with */
	kz_cli *cli;
} kz_cli__ctx;

/* The worse of two exit codes: unreachable > in doubt > refused > ok. */
static int kz_cli__worse(int x, int y)
{
	static const int rank[] = {0, 1, 4, 3, 2}; /* indexed by exit code */
	if (x == KZ_CLI_EXIT_USAGE || y == KZ_CLI_EXIT_USAGE)
		return KZ_CLI_EXIT_USAGE;
	return rank[x] >= rank[y] ? x : y;
}

static double kz_cli__now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints a JSON body: pretty by default, one line with --json. A body that is
 * not JSON is printed as it came. */
static void kz_cli__print_body(const kz_cli__ctx *c, const char *body,
			       size_t len)
{
	json_t *v = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	char *s;
	if (v == NULL) {
		fwrite(body, 1, len, stdout);
		if (len > 0 && body[len - 1] != '\n')
			putchar('\n');
		return;
	}
	s = json_dumps(v, JSON_ENCODE_ANY |
			       (c->a->json ? JSON_COMPACT : JSON_INDENT(2)));
	if (s != NULL) {
		puts(s);
		free(s);
	}
	json_decref(v);
}

static void kz_cli__print_json(const kz_cli__ctx *c, const json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY |
				       (c->a->json ? JSON_COMPACT : JSON_INDENT(2)));
	if (s != NULL) {
		puts(s);
		free(s);
	}
}

/* One API call. Always initialises *resp; the caller frees it with
 * kz_cli_response_free. Returns an exit code and has already told the user
 * what went wrong (prefixed with `what`, e.g. "line 12", when given). */
static int kz_cli__call(const kz_cli__ctx *c, const char *what,
			const char *method, const char *path,
			const char *const *headers, const char *body,
			size_t bodylen, kz_cli_response *resp)
{
	char desc[600];
	const char *pre = what ? what : "", *sep = what ? ": " : "";
	int rc = kz_cli_request(c->cli, method, path, headers, body, bodylen,
				resp);
	switch (rc) {
	case KZ_CLI_OK:
		if (resp->status >= 200 && resp->status < 300)
			return KZ_CLI_EXIT_OK;
		fprintf(stderr, "kizuna: %s%s%s\n", pre, sep,
			kz_cli_error_describe(resp, desc, sizeof(desc)));
		return KZ_CLI_EXIT_HTTP;
	case KZ_CLI_EUNREACHABLE:
		fprintf(stderr, "kizuna: %s%s%s\n", pre, sep,
			kz_cli_errmsg(c->cli));
		return KZ_CLI_EXIT_UNREACHABLE;
	case KZ_CLI_EINDOUBT:
		fprintf(stderr, "kizuna: %s%soutcome unknown: %s\n", pre, sep,
			kz_cli_errmsg(c->cli));
		return KZ_CLI_EXIT_INDOUBT;
	case KZ_CLI_ECONFIG:
		fprintf(stderr, "kizuna: %s%s%s\n", pre, sep,
			kz_cli_errmsg(c->cli));
		return KZ_CLI_EXIT_USAGE;
	default:
		fprintf(stderr, "kizuna: %s%s%s: %s\n", pre, sep,
			kz_cli_strerror(rc), kz_cli_errmsg(c->cli));
		return KZ_CLI_EXIT_HTTP;
	}
}

/* A call with a JSON body (may be NULL) whose answer is printed. */
static int kz_cli__call_print(const kz_cli__ctx *c, const char *method,
			      const char *path, const char *const *headers,
			      const json_t *body)
{
	kz_cli_response resp;
	char *text = NULL;
	int ex;

	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL) {
			fprintf(stderr, "kizuna: out of memory\n");
			return KZ_CLI_EXIT_HTTP;
		}
	}
	ex = kz_cli__call(c, NULL, method, path, headers, text,
			  text ? strlen(text) : 0, &resp);
	if (ex == KZ_CLI_EXIT_OK) {
		kz_cli__print_body(c, resp.body, resp.body_len);
		if (resp.stale_ms >= 0)
			fprintf(stderr,
				"kizuna: stale read from node %s at index %lld, "
				"up to %lld ms old\n",
				resp.node[0] ? resp.node : "?", resp.index,
				resp.stale_ms);
	}
	kz_cli_response_free(&resp);
	free(text);
	return ex;
}

/* "/v1/<collection>/<id encoded><suffix>"; malloc'd, NULL when out of
 * memory. */
static char *kz_cli__id_path(const char *collection, const char *id,
			     const char *suffix)
{
	char *enc = kz_cli_urlencode(id);
	char *path;
	size_t n;
	if (enc == NULL)
		return NULL;
	n = strlen("/v1/") + strlen(collection) + 1 + strlen(enc) +
	    strlen(suffix) + 1;
	path = malloc(n);
	if (path != NULL)
		snprintf(path, n, "/v1/%s/%s%s", collection, enc, suffix);
	free(enc);
	return path;
}

/* ---- victim ------------------------------------------------------------------- */

static int kz_cli__victim_add_file(const kz_cli__ctx *c)
{
	FILE *f = stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lineno = 0, added = 0, failed = 0, indoubt = 0;
	int worst = KZ_CLI_EXIT_OK;

	if (strcmp(c->a->file, "-") != 0) {
		f = fopen(c->a->file, "r");
		if (f == NULL) {
			fprintf(stderr, "kizuna: %s: %s\n", c->a->file,
				strerror(errno));
			return KZ_CLI_EXIT_USAGE;
		}
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char what[32];
		kz_cli_response resp;
		json_t *rec;
		int ex;

		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strspn(line, " \t") == (size_t)n)
			continue;
		snprintf(what, sizeof(what), "line %lu", lineno);
		rec = json_loadb(line, (size_t)n, 0, NULL);
		if (!json_is_object(rec)) {
			fprintf(stderr, "kizuna: %s: not a JSON object\n", what);
			json_decref(rec);
			failed++;
			worst = kz_cli__worse(worst, KZ_CLI_EXIT_HTTP);
			continue;
		}
		json_decref(rec);
		ex = kz_cli__call(c, what, "POST", "/v1/victims", NULL, line,
				  (size_t)n, &resp);
		if (ex == KZ_CLI_EXIT_OK) {
			json_t *body = json_loadb(resp.body, resp.body_len, 0,
						  NULL);
			const char *id = json_string_value(
				json_object_get(body, "id"));
			if (c->a->json)
				kz_cli__print_body(c, resp.body, resp.body_len);
			else
				printf("%s\n", id ? id : "?");
			json_decref(body);
			added++;
		} else if (ex == KZ_CLI_EXIT_INDOUBT) {
			indoubt++;
		} else {
			failed++;
		}
		kz_cli_response_free(&resp);
		worst = kz_cli__worse(worst, ex);
		if (ex == KZ_CLI_EXIT_UNREACHABLE || ex == KZ_CLI_EXIT_USAGE)
			break; /* the next lines would fail the same way */
	}
	if (ferror(f)) {
		fprintf(stderr, "kizuna: %s: read error\n", c->a->file);
		worst = kz_cli__worse(worst, KZ_CLI_EXIT_HTTP);
	}
	fprintf(stderr, "kizuna: added %lu, failed %lu, outcome unknown %lu\n",
		added, failed, indoubt);
	free(line);
	if (f != stdin)
		fclose(f);
	return worst;
}

static int kz_cli__victim_add(const kz_cli__ctx *c)
{
	json_t *body;
	int ex;
	if (c->a->file != NULL)
		return kz_cli__victim_add_file(c);
	if (kz_cli_args_victim_body(c->a, &body) != 0) {
		fprintf(stderr, "kizuna: the field values must be UTF-8 text\n");
		return KZ_CLI_EXIT_USAGE;
	}
	ex = kz_cli__call_print(c, "POST", "/v1/victims", NULL, body);
	json_decref(body);
	return ex;
}

static int kz_cli__victim_get(const kz_cli__ctx *c)
{
	char *path = kz_cli__id_path("victims", c->a->id,
				     c->a->stale ? "?consistency=stale" : "");
	int ex;
	if (path == NULL)
		return KZ_CLI_EXIT_HTTP;
	ex = kz_cli__call_print(c, "GET", path, NULL, NULL);
	free(path);
	return ex;
}

/* victim duplicates / merge / unmerge: GET .../duplicates, POST
 * .../merge {"into"}, POST .../unmerge {}. */
static int kz_cli__victim_dedup(const kz_cli__ctx *c)
{
	kz_cli_cmd cmd = c->a->cmd;
	char *path = kz_cli__id_path(
		"victims", c->a->id,
		cmd == KZ_CLI_CMD_VICTIM_DUPLICATES ? "/duplicates"
		: cmd == KZ_CLI_CMD_VICTIM_MERGE    ? "/merge"
						    : "/unmerge");
	json_t *body = NULL;
	int ex;
	if (path == NULL)
		return KZ_CLI_EXIT_HTTP;
	if (cmd == KZ_CLI_CMD_VICTIM_MERGE) {
		if (c->a->into == NULL || c->a->into[0] == '\0') {
			fprintf(stderr, "kizuna: victim merge: --into KEEP "
					"(the record to keep) is required\n");
			free(path);
			return KZ_CLI_EXIT_USAGE;
		}
		body = json_pack("{s:s}", "into", c->a->into);
	} else if (cmd == KZ_CLI_CMD_VICTIM_UNMERGE) {
		body = json_object();
	}
	ex = kz_cli__call_print(c, body ? "POST" : "GET", path, NULL, body);
	json_decref(body);
	free(path);
	return ex;
}

static int kz_cli__victim_patch(const kz_cli__ctx *c)
{
	char err[256], ifmatch[96];
	const char *headers[2] = {NULL, NULL};
	json_t *body;
	char *path;
	int ex;

	if (kz_cli_args_patch_body(c->a, &body, err, sizeof(err)) != 0) {
		fprintf(stderr, "kizuna: %s\n", err);
		return KZ_CLI_EXIT_USAGE;
	}
	if (c->a->if_match != NULL) {
		snprintf(ifmatch, sizeof(ifmatch), "If-Match: %s", c->a->if_match);
		headers[0] = ifmatch;
	}
	path = kz_cli__id_path("victims", c->a->id, "");
	if (path == NULL) {
		json_decref(body);
		return KZ_CLI_EXIT_HTTP;
	}
	ex = kz_cli__call_print(c, "PATCH", path, headers, body);
	free(path);
	json_decref(body);
	return ex;
}

static int kz_cli__victim_search(const kz_cli__ctx *c)
{
	json_t *all = NULL, *page = NULL;
	char *cursor = NULL, *path = NULL;
	unsigned long pages = 0;
	int ex = KZ_CLI_EXIT_OK;

	if (c->a->all) {
		all = json_array();
		if (all == NULL)
			return KZ_CLI_EXIT_HTTP;
	}
	for (;;) {
		kz_cli_response resp;
		json_t *items;
		const char *next;

		path = kz_cli_args_search_path(c->a, cursor);
		if (path == NULL) {
			ex = KZ_CLI_EXIT_HTTP;
			goto out;
		}
		ex = kz_cli__call(c, NULL, "GET", path, NULL, NULL, 0, &resp);
		free(path);
		path = NULL;
		if (ex != KZ_CLI_EXIT_OK) {
			kz_cli_response_free(&resp);
			goto out;
		}
		if (resp.stale_ms >= 0 && pages == 0)
			fprintf(stderr,
				"kizuna: stale read from node %s at index %lld, "
				"up to %lld ms old\n",
				resp.node[0] ? resp.node : "?", resp.index,
				resp.stale_ms);
		pages++;
		if (!c->a->all) {
			kz_cli__print_body(c, resp.body, resp.body_len);
			kz_cli_response_free(&resp);
			goto out;
		}
		json_decref(page);
		page = json_loadb(resp.body, resp.body_len, 0, NULL);
		kz_cli_response_free(&resp);
		items = json_object_get(page, "items");
		if (!json_is_array(items)) {
			fprintf(stderr, "kizuna: search answer without items\n");
			ex = KZ_CLI_EXIT_HTTP;
			goto out;
		}
		if (json_array_extend(all, items) != 0) {
			ex = KZ_CLI_EXIT_HTTP;
			goto out;
		}
		next = json_string_value(json_object_get(page, "next_cursor"));
		if (next == NULL || *next == '\0')
			break;
		if (cursor != NULL && strcmp(cursor, next) == 0) {
			fprintf(stderr, "kizuna: the server returned the same "
					"cursor twice; stopping\n");
			ex = KZ_CLI_EXIT_HTTP;
			goto out;
		}
		free(cursor);
		cursor = strdup(next);
		if (cursor == NULL) {
			ex = KZ_CLI_EXIT_HTTP;
			goto out;
		}
	}
	{
		json_t *res = json_pack("{s:O, s:n}", "items", all, "next_cursor");
		if (res == NULL) {
			ex = KZ_CLI_EXIT_HTTP;
			goto out;
		}
		kz_cli__print_json(c, res);
		json_decref(res);
	}
out:
	free(cursor);
	json_decref(page);
	json_decref(all);
	return ex;
}

static int kz_cli__victim_note(const kz_cli__ctx *c)
{
	json_t *body = json_pack("{s:s, s:s, s:s*, s:s*}", "status",
				 c->a->status, "text", c->a->text, "author",
				 c->a->author, "last_known_location",
				 c->a->location);
	char *path;
	int ex;
	if (body == NULL) {
		fprintf(stderr, "kizuna: --text and friends must be UTF-8\n");
		return KZ_CLI_EXIT_USAGE;
	}
	path = kz_cli__id_path("victims", c->a->id, "/notes");
	if (path == NULL) {
		json_decref(body);
		return KZ_CLI_EXIT_HTTP;
	}
	ex = kz_cli__call_print(c, "POST", path, NULL, body);
	free(path);
	json_decref(body);
	return ex;
}

/* ---- shelter ------------------------------------------------------------------ */

static int kz_cli__shelter_put(const kz_cli__ctx *c)
{
	json_t *body = json_pack("{s:s, s:s*}", "name", c->a->name, "address",
				 c->a->address);
	char *path;
	int ex;
	if (body == NULL) {
		fprintf(stderr, "kizuna: --name and --address must be UTF-8\n");
		return KZ_CLI_EXIT_USAGE;
	}
	if (c->a->capacity >= 0 &&
	    json_object_set_new(body, "capacity",
				json_integer(c->a->capacity)) != 0) {
		json_decref(body);
		return KZ_CLI_EXIT_HTTP;
	}
	path = kz_cli__id_path("shelters", c->a->id, "");
	if (path == NULL) {
		json_decref(body);
		return KZ_CLI_EXIT_HTTP;
	}
	ex = kz_cli__call_print(c, "PUT", path, NULL, body);
	free(path);
	json_decref(body);
	return ex;
}

static int kz_cli__shelter_summary(const kz_cli__ctx *c)
{
	char *path = kz_cli__id_path("shelters", c->a->id,
				     c->a->stale ? "/summary?consistency=stale"
						 : "/summary");
	int ex;
	if (path == NULL)
		return KZ_CLI_EXIT_HTTP;
	ex = kz_cli__call_print(c, "GET", path, NULL, NULL);
	free(path);
	return ex;
}

/* ---- keys --------------------------------------------------------------------- */

static int kz_cli__keys_rotate(const kz_cli__ctx *c)
{
	json_t *body = json_pack("{s:b}", c->a->rotate_master ? "master" : "data",
				 1);
	int ex = kz_cli__call_print(c, "POST", "/v1/keys/rotate", NULL, body);
	json_decref(body);
	return ex;
}

/* ---- cluster ------------------------------------------------------------------ */

/* cluster add ID / cluster remove ID: POST /v1/cluster/nodes, DELETE
 * /v1/cluster/nodes/ID (API.md); prints the server's answer. */
static int kz_cli__cluster_change(const kz_cli__ctx *c)
{
	char path[96];
	int add = c->a->cmd == KZ_CLI_CMD_CLUSTER_ADD ||
		  c->a->cmd == KZ_CLI_CMD_CLUSTER_PROMOTE;
	json_t *body = NULL;
	int ex;
	if (add) {
		snprintf(path, sizeof path, "/v1/cluster/nodes%s",
			 c->a->force ? "?force=true" : "");
		body = json_pack("{s:I,s:s}", "id",
				 (json_int_t)strtoll(c->a->id, NULL, 10), "role",
				 c->a->role ? c->a->role : "voter");
		if (c->a->cmd == KZ_CLI_CMD_CLUSTER_ADD && c->a->address) {
			json_object_set_new(body, "raft_address",
					    json_string(c->a->address));
			json_object_set_new(body, "api_address",
					    json_string(c->a->api));
			json_object_set_new(body, "region",
					    json_string(c->a->region));
		}
	} else {
		snprintf(path, sizeof path, "/v1/cluster/nodes/%s%s", c->a->id,
			 c->a->force ? "?force=true" : "");
	}
	ex = kz_cli__call_print(c, add ? "POST" : "DELETE", path, NULL, body);
	json_decref(body);
	return ex;
}

/* cluster promote: a member (standby or spare) becomes a voter, through
 * the same POST /v1/cluster/nodes as add; a node that is not a member is
 * refused here, so that promote never adds one. */
static int kz_cli__cluster_promote(const kz_cli__ctx *c)
{
	kz_cli_response resp;
	json_t *root = NULL, *n;
	const char *role = NULL;
	long long id = strtoll(c->a->id, NULL, 10);
	size_t i;
	int ex = kz_cli__call(c, "cluster promote", "GET", "/v1/cluster", NULL,
			      NULL, 0, &resp);
	if (ex == KZ_CLI_EXIT_OK)
		root = json_loadb(resp.body, resp.body_len, 0, NULL);
	kz_cli_response_free(&resp);
	if (ex != KZ_CLI_EXIT_OK)
		return ex;
	json_array_foreach(json_object_get(root, "nodes"), i, n)
		if (json_integer_value(json_object_get(n, "id")) == id)
			role = json_string_value(json_object_get(n, "role"));
	if (role == NULL || strcmp(role, "none") == 0) {
		fprintf(stderr,
			"kizuna: cluster promote: node %s is not a member "
			"(kizuna cluster add %s)\n",
			c->a->id, c->a->id);
		json_decref(root);
		return KZ_CLI_EXIT_HTTP;
	}
	json_decref(root);
	return kz_cli__cluster_change(c);
}

/* After a transfer the old leader has stepped down, but the election that
 * follows may pick another node than the one asked for: polls GET
 * /v1/cluster (up to 15 s) until a leader is known and says whether it is
 * the node (--to) or in the region (--region) asked for. */
static int kz_cli__leader_settled(const kz_cli__ctx *c)
{
	double end = kz_cli__now_s() + 15.0;
	for (;;) {
		kz_cli_response resp;
		long long leader = 0;
		const char *region = NULL;
		json_t *root = NULL;
		if (kz_cli__call(c, "checking the new leader", "GET",
				 "/v1/cluster", NULL, NULL, 0,
				 &resp) == KZ_CLI_EXIT_OK)
			root = json_loadb(resp.body, resp.body_len, 0, NULL);
		kz_cli_response_free(&resp);
		if (json_is_integer(json_object_get(root, "leader"))) {
			size_t i;
			json_t *n;
			leader = json_integer_value(json_object_get(root, "leader"));
			json_array_foreach(json_object_get(root, "nodes"), i, n)
				if (json_integer_value(json_object_get(n, "id")) ==
				    leader)
					region = json_string_value(
						json_object_get(n, "region"));
		}
		if (leader > 0) {
			int ok = c->a->to ? leader == strtoll(c->a->to, NULL, 10)
					  : region != NULL &&
						    strcmp(region, c->a->region) == 0;
			if (ok)
				fprintf(stderr, "kizuna: node %lld (region %s) leads\n",
					leader, region ? region : "?");
			else
				fprintf(stderr,
					"kizuna: the leader stepped down, but the "
					"election chose node %lld (region %s), not %s "
					"%s: ask again once it is caught up\n",
					leader, region ? region : "?",
					c->a->to ? "node" : "region",
					c->a->to ? c->a->to : c->a->region);
			json_decref(root);
			return ok ? KZ_CLI_EXIT_OK : KZ_CLI_EXIT_HTTP;
		}
		json_decref(root);
		if (kz_cli__now_s() > end) {
			fprintf(stderr, "kizuna: no leader 15 s after the transfer; "
					"see kizuna cluster status\n");
			return KZ_CLI_EXIT_HTTP;
		}
		usleep(200000);
	}
}

/* cluster transfer-leader: POST /v1/cluster/leader. */
static int kz_cli__cluster_leader(const kz_cli__ctx *c)
{
	json_t *body = c->a->to ? json_pack("{s:I}", "id",
					    (json_int_t)strtoll(c->a->to, NULL, 10))
		       : c->a->region ? json_pack("{s:s}", "region", c->a->region)
				      : json_object();
	int ex = kz_cli__call_print(c, "POST", "/v1/cluster/leader", NULL, body);
	json_decref(body);
	if (ex != KZ_CLI_EXIT_OK || (c->a->to == NULL && c->a->region == NULL))
		return ex;
	return kz_cli__leader_settled(c);
}

/* A JSON scalar as table text ("-" when missing); buf holds numbers. */
static const char *kz_cli__cell(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, len, "%g", json_real_value(v));
		return buf;
	}
	if (json_is_true(v))
		return "yes";
	if (json_is_false(v))
		return "no";
	return "-";
}

enum { KZ_CLI__COLS = 8 };

/* One table cell padded to width; the last one ends the line instead. */
static void kz_cli__print_cell(const char *text, size_t width, int last)
{
	if (last)
		printf("%s\n", text);
	else
		printf("%-*s  ", (int)width, text);
}

/* The cells of one node's row; numbers are formatted into bufs. */
static void kz_cli__node_row(const json_t *node, const json_t *leader,
			     const char *cells[KZ_CLI__COLS],
			     char bufs[KZ_CLI__COLS][64])
{
	static const char *const keys[KZ_CLI__COLS] = {
		"region", "id", "address", "role", "state", "applied_index",
		"lag", "reachable"};
	const json_t *id = json_object_get(node, "id");
	int i;
	for (i = 0; i < KZ_CLI__COLS; i++)
		cells[i] = kz_cli__cell(json_object_get(node, keys[i]), bufs[i],
					sizeof(bufs[i]));
	/* Mark the leader: by the cluster's leader id, or the node's state. */
	if ((id != NULL && leader != NULL && json_equal(id, leader)) ||
	    (json_is_string(json_object_get(node, "state")) &&
	     strcmp(cells[4], "leader") == 0)) {
		char tmp[64];
		snprintf(tmp, sizeof(tmp), "%s*", cells[1]);
		memcpy(bufs[1], tmp, sizeof(tmp));
		cells[1] = bufs[1];
	}
}

static int kz_cli__cluster_status(const kz_cli__ctx *c)
{
	static const char *const head[KZ_CLI__COLS] = {
		"REGION", "ID", "ADDRESS", "ROLE", "STATE", "APPLIED", "LAG",
		"REACHABLE"};
	kz_cli_response resp;
	json_t *root = NULL, *nodes, *leader, *regions = NULL;
	size_t width[KZ_CLI__COLS], i, r;
	char tb[2][64];
	int ex, k;

	ex = kz_cli__call(c, NULL, "GET", "/v1/cluster", NULL, NULL, 0, &resp);
	if (ex != KZ_CLI_EXIT_OK || c->a->json) {
		if (ex == KZ_CLI_EXIT_OK)
			kz_cli__print_body(c, resp.body, resp.body_len);
		kz_cli_response_free(&resp);
		return ex;
	}
	root = json_loadb(resp.body, resp.body_len, 0, NULL);
	nodes = json_object_get(root, "nodes");
	if (!json_is_object(root) || !json_is_array(nodes)) {
		fprintf(stderr, "kizuna: /v1/cluster answer has no nodes\n");
		ex = KZ_CLI_EXIT_HTTP;
		goto out;
	}
	leader = json_object_get(root, "leader");
	printf("leader: %s  term: %s  (answered by node %s at index %lld)\n",
	       kz_cli__cell(leader, tb[0], sizeof(tb[0])),
	       kz_cli__cell(json_object_get(root, "term"), tb[1], sizeof(tb[1])),
	       resp.node[0] ? resp.node : "?", resp.index);

	/* Regions in order of first appearance; nodes grouped under them. */
	regions = json_array();
	if (regions == NULL) {
		ex = KZ_CLI_EXIT_HTTP;
		goto out;
	}
	for (k = 0; k < KZ_CLI__COLS; k++)
		width[k] = strlen(head[k]);
	for (i = 0; i < json_array_size(nodes); i++) {
		const json_t *n = json_array_get(nodes, i);
		const char *cells[KZ_CLI__COLS];
		char bufs[KZ_CLI__COLS][64];
		json_t *reg = json_object_get(n, "region");
		int seen = 0;
		kz_cli__node_row(n, leader, cells, bufs);
		for (k = 0; k < KZ_CLI__COLS; k++)
			if (strlen(cells[k]) > width[k])
				width[k] = strlen(cells[k]);
		for (r = 0; r < json_array_size(regions); r++)
			if (json_equal(json_array_get(regions, r),
				       reg ? reg : json_null()))
				seen = 1;
		if (!seen && json_array_append(regions, reg ? reg : json_null()) != 0) {
			ex = KZ_CLI_EXIT_HTTP;
			goto out;
		}
	}
	for (k = 0; k < KZ_CLI__COLS; k++)
		kz_cli__print_cell(head[k], width[k], k + 1 == KZ_CLI__COLS);
	for (r = 0; r < json_array_size(regions); r++) {
		const json_t *want = json_array_get(regions, r);
		for (i = 0; i < json_array_size(nodes); i++) {
			const json_t *n = json_array_get(nodes, i);
			const json_t *reg = json_object_get(n, "region");
			const char *cells[KZ_CLI__COLS];
			char bufs[KZ_CLI__COLS][64];
			if (!json_equal(reg ? reg : json_null(), want))
				continue;
			kz_cli__node_row(n, leader, cells, bufs);
			for (k = 0; k < KZ_CLI__COLS; k++)
				kz_cli__print_cell(cells[k], width[k],
						   k + 1 == KZ_CLI__COLS);
		}
	}
out:
	json_decref(regions);
	json_decref(root);
	kz_cli_response_free(&resp);
	return ex;
}

/* ---- audit -------------------------------------------------------------------- */

/* Asks one endpoint for its chain, through a client of its own so the call
 * cannot fail over to another node; a stale read, so a node without a
 * quorum answers from its own copy. Fills o (see
 * kz_cli_args_audit_verdict); returns -1 only when out of memory. */
static int kz_cli__verify_one(const kz_cli__ctx *c, const kz_cli_endpoint *ep,
			      json_t *o)
{
	kz_cli_opts opts = *c->opts;
	kz_cli_response resp;
	kz_cli *one;
	char err[512];
	json_t *answer;
	int rc;

	memset(&resp, 0, sizeof(resp));
	opts.endpoints = ep->url;
	opts.shuffle = 0;
	rc = kz_cli_open(&opts, &one, err, sizeof(err));
	if (rc != KZ_CLI_OK)
		return json_object_set_new(o, "error", json_string(err));
	rc = kz_cli_request(one, "GET", "/v1/audit/verify?consistency=stale",
			    NULL, NULL, 0, &resp);
	if (rc != KZ_CLI_OK) {
		rc = json_object_set_new(o, "error",
					 json_string(kz_cli_errmsg(one)));
		goto out;
	}
	if (json_object_get(o, "node") == NULL && resp.node[0] != '\0')
		json_object_set_new(o, "node", json_string(resp.node));
	if (json_object_get(o, "region") == NULL && resp.region[0] != '\0')
		json_object_set_new(o, "region", json_string(resp.region));
	rc = json_object_set_new(o, "http_status", json_integer(resp.status));
	if (rc != 0)
		goto out;
	if (resp.status < 200 || resp.status > 299) {
		rc = json_object_set_new(
			o, "error",
			json_string(kz_cli_error_describe(&resp, err,
							  sizeof(err))));
		goto out;
	}
	answer = json_loadb(resp.body, resp.body_len, 0, NULL);
	if (!json_is_object(answer))
		rc = json_object_set_new(o, "error",
					 json_string("the answer is not a "
						     "JSON object"));
	else
		rc = json_object_update_missing(o, answer);
	json_decref(answer);
out:
	kz_cli_response_free(&resp);
	kz_cli_close(one);
	return rc;
}

/* One node's line: endpoint, node, region, then its verdict. */
static void kz_cli__verify_line(const json_t *o)
{
	const json_t *with = json_object_get(o, "disagrees_with");
	const json_t *first = json_object_get(o, "first_seq");
	const char *ep = json_string_value(json_object_get(o, "endpoint"));
	const char *node = json_string_value(json_object_get(o, "node"));
	const char *region = json_string_value(json_object_get(o, "region"));
	const char *head = json_string_value(json_object_get(o, "head"));
	const char *error = json_string_value(json_object_get(o, "error"));
	size_t i;

	printf("%s  node %s  %s  ", ep ? ep : "?", node ? node : "?",
	       region ? region : "-");
	if (error != NULL || head == NULL) {
		printf("error: %s\n", error ? error : "no verify result");
		return;
	}
	printf("entries %" JSON_INTEGER_FORMAT,
	       json_integer_value(json_object_get(o, "entries")));
	if (json_integer_value(first) > 1)
		printf(" from seq %" JSON_INTEGER_FORMAT,
		       json_integer_value(first));
	printf("  head %.16s  ", head);
	if (!json_is_true(json_object_get(o, "ok"))) {
		const char *why =
			json_string_value(json_object_get(o, "reason"));
		printf("BROKEN at seq %" JSON_INTEGER_FORMAT ": %s\n",
		       json_integer_value(json_object_get(o, "first_bad_seq")),
		       why ? why : "?");
		return;
	}
	if (with == NULL) {
		printf("ok\n");
		return;
	}
	printf("ok, but the head differs from");
	for (i = 0; i < json_array_size(with); i++)
		printf(" %s", json_string_value(json_array_get(with, i)));
	printf(" at the same seq\n");
}

static int kz_cli__audit_verify(const kz_cli__ctx *c)
{
	size_t n, i;
	const kz_cli_endpoint *eps = kz_cli_endpoints(c->cli, &n);
	json_t *nodes = json_array();
	int ex;

	if (nodes == NULL)
		goto err_nomem;
	for (i = 0; i < n; i++) {
		json_t *o = json_pack("{s:s, s:s*, s:s*}", "endpoint", eps[i].url,
				      "node", eps[i].node_id, "region",
				      eps[i].region);
		if (o == NULL || json_array_append_new(nodes, o) != 0 ||
		    kz_cli__verify_one(c, &eps[i], o) != 0)
			goto err_after_nodes;
	}
	ex = kz_cli_args_audit_verdict(nodes);
	if (c->a->json) {
		kz_cli__print_json(c, nodes);
	} else {
		for (i = 0; i < n; i++)
			kz_cli__verify_line(json_array_get(nodes, i));
	}
	if (ex == KZ_CLI_EXIT_UNREACHABLE)
		fprintf(stderr, "kizuna: no node answered\n");
	json_decref(nodes);
	return ex;

err_after_nodes:
	json_decref(nodes);
err_nomem:
	fprintf(stderr, "kizuna: out of memory\n");
	return KZ_CLI_EXIT_HTTP;
}

/* Pages through GET /v1/audit, printing each record as one JSON line, to
 * the end or until --limit records. */
static int kz_cli__audit_list(const kz_cli__ctx *c)
{
	unsigned long long after = 0;
	long limit = c->a->limit, printed = 0; /* limit 0: all */
	int ex;

	for (;;) {
		long page = limit > 0 && limit - printed < 1000 ? limit - printed
								: 1000;
		kz_cli_response resp;
		json_t *body, *items, *next;
		char *path;
		size_t i;

		path = kz_cli_args_audit_list_path(c->a, after, page);
		if (path == NULL)
			goto err_nomem;
		ex = kz_cli__call(c, NULL, "GET", path, NULL, NULL, 0, &resp);
		free(path);
		if (ex != KZ_CLI_EXIT_OK) {
			kz_cli_response_free(&resp);
			return ex;
		}
		body = json_loadb(resp.body, resp.body_len, 0, NULL);
		kz_cli_response_free(&resp);
		items = json_object_get(body, "items");
		next = json_object_get(body, "next_after");
		if (!json_is_array(items) ||
		    (!json_is_null(next) && !json_is_integer(next))) {
			fprintf(stderr, "kizuna: /v1/audit answer without items "
					"or next_after\n");
			json_decref(body);
			return KZ_CLI_EXIT_HTTP;
		}
		for (i = 0; i < json_array_size(items) &&
			    (limit == 0 || printed < limit);
		     i++, printed++) {
			char *s = json_dumps(json_array_get(items, i),
					     JSON_COMPACT);
			if (s == NULL) {
				json_decref(body);
				goto err_nomem;
			}
			puts(s);
			free(s);
		}
		if (json_is_null(next) || (limit > 0 && printed >= limit)) {
			json_decref(body);
			return KZ_CLI_EXIT_OK;
		}
		if ((unsigned long long)json_integer_value(next) <= after) {
			fprintf(stderr, "kizuna: the server returned the same "
					"page twice; stopping\n");
			json_decref(body);
			return KZ_CLI_EXIT_HTTP;
		}
		after = (unsigned long long)json_integer_value(next);
		json_decref(body);
	}

err_nomem:
	fprintf(stderr, "kizuna: out of memory\n");
	return KZ_CLI_EXIT_HTTP;
}

/* ---- sample ------------------------------------------------------------------ */

static int kz_cli__sample_gen(const kz_cli_args *a)
{
	kz_cli_sample gen;
	long i;
	char *line = NULL;
	size_t len = 0, cap = 0;
	kz_cli_sample_init(&gen, a->seed, (unsigned)a->shelters);
	if (a->csv) {
		if (kz_cli_import_csv_line(NULL, &line, &len, &cap) != 0)
			goto err_nomem;
		fputs(line, stdout);
	}
	for (i = 0; i < a->count; i++) {
		json_t *rec;
		char *s;
		if (kz_cli_sample_victim(&gen, &rec) != KZ_CLI_OK)
			goto err_nomem;
		if (a->csv) {
			len = 0;
			if (kz_cli_import_csv_line(rec, &line, &len, &cap) != 0) {
				json_decref(rec);
				goto err_nomem;
			}
			json_decref(rec);
			fputs(line, stdout);
			continue;
		}
		s = json_dumps(rec, JSON_COMPACT);
		json_decref(rec);
		if (s == NULL)
			goto err_nomem;
		puts(s);
		free(s);
	}
	free(line);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kizuna: writing output: %s\n", strerror(errno));
		return KZ_CLI_EXIT_HTTP;
	}
	return KZ_CLI_EXIT_OK;

err_nomem:
	free(line);
	fprintf(stderr, "kizuna: out of memory\n");
	return KZ_CLI_EXIT_HTTP;
}

static int kz_cli__sample_load(const kz_cli__ctx *c)
{
	const kz_cli_args *a = c->a;
	kz_cli_sample gen;
	unsigned long ok = 0, failed = 0, indoubt = 0, shelters_ok = 0;
	double start = kz_cli__now_s(), elapsed;
	int worst = KZ_CLI_EXIT_OK, ex;
	long i;

	kz_cli_sample_init(&gen, a->seed, (unsigned)a->shelters);
	for (i = 0; i < a->shelters; i++) {
		char id[32], what[48];
		kz_cli_response resp;
		json_t *body;
		char *text, *path;
		if (kz_cli_sample_shelter(&gen, (unsigned)i, id, sizeof(id),
					  &body) != KZ_CLI_OK)
			goto err_nomem;
		text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		path = kz_cli__id_path("shelters", id, "");
		if (text == NULL || path == NULL) {
			free(text);
			free(path);
			goto err_nomem;
		}
		snprintf(what, sizeof(what), "shelter %s", id);
		ex = kz_cli__call(c, what, "PUT", path, NULL, text, strlen(text),
				  &resp);
		kz_cli_response_free(&resp);
		free(text);
		free(path);
		worst = kz_cli__worse(worst, ex);
		if (ex == KZ_CLI_EXIT_UNREACHABLE || ex == KZ_CLI_EXIT_USAGE)
			goto summary;
		shelters_ok += ex == KZ_CLI_EXIT_OK;
	}
	for (i = 0; i < a->count; i++) {
		kz_cli_response resp;
		char what[48];
		json_t *rec;
		char *text;
		if (kz_cli_sample_victim(&gen, &rec) != KZ_CLI_OK)
			goto err_nomem;
		text = json_dumps(rec, JSON_COMPACT);
		json_decref(rec);
		if (text == NULL)
			goto err_nomem;
		snprintf(what, sizeof(what), "victim %ld", i + 1);
		if (failed + indoubt >= KZ_CLI__MAX_ERRORS_SHOWN) {
			/* Keep counting, stop printing: the summary says how
			 * many. */
			ex = kz_cli_request(c->cli, "POST", "/v1/victims", NULL,
					    text, strlen(text), &resp);
			ex = ex == KZ_CLI_OK ? (resp.status / 100 == 2
							? KZ_CLI_EXIT_OK
							: KZ_CLI_EXIT_HTTP)
			     : ex == KZ_CLI_EINDOUBT    ? KZ_CLI_EXIT_INDOUBT
			     : ex == KZ_CLI_EUNREACHABLE
				     ? KZ_CLI_EXIT_UNREACHABLE
				     : KZ_CLI_EXIT_HTTP;
			if (ex == KZ_CLI_EXIT_UNREACHABLE)
				fprintf(stderr, "kizuna: %s: %s\n", what,
					kz_cli_errmsg(c->cli));
		} else {
			ex = kz_cli__call(c, what, "POST", "/v1/victims", NULL,
					  text, strlen(text), &resp);
		}
		kz_cli_response_free(&resp);
		free(text);
		worst = kz_cli__worse(worst, ex);
		if (ex == KZ_CLI_EXIT_OK)
			ok++;
		else if (ex == KZ_CLI_EXIT_INDOUBT)
			indoubt++;
		else
			failed++;
		if (ex == KZ_CLI_EXIT_UNREACHABLE || ex == KZ_CLI_EXIT_USAGE)
			break;
		if ((i + 1) % 100 == 0) {
			double t = kz_cli__now_s() - start;
			fprintf(stderr, "kizuna: %ld/%ld victims, %.1f/s\n",
				i + 1, a->count, t > 0 ? (double)(i + 1) / t : 0.0);
		}
	}
summary:
	elapsed = kz_cli__now_s() - start;
	printf("loaded %lu/%ld victims and %lu/%ld shelters in %.2f s "
	       "(%.1f victims/s); %lu failed, %lu outcome unknown\n",
	       ok, a->count, shelters_ok, a->shelters, elapsed,
	       elapsed > 0 ? (double)ok / elapsed : 0.0, failed, indoubt);
	return worst;

err_nomem:
	fprintf(stderr, "kizuna: out of memory\n");
	return KZ_CLI_EXIT_HTTP;
}

/* ---- card ------------------------------------------------------------------- */

/* `card sign`: the signature, and with --cert the certificate, one base64
 * line each, for a script to put into POST /v1/identity/verifications. */
static int kz_cli__card_sign(const kz_cli_args *a)
{
	char err[512], *sig, *cert;

	if (kz_cli_args_card_sign(a, &sig, &cert, err, sizeof(err)) != 0) {
		fprintf(stderr, "kizuna: %s\n", err);
		return KZ_CLI_EXIT_USAGE;
	}
	puts(sig);
	if (cert != NULL)
		puts(cert);
	free(sig);
	free(cert);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kizuna: writing output: %s\n", strerror(errno));
		return KZ_CLI_EXIT_HTTP;
	}
	return KZ_CLI_EXIT_OK;
}

/* ---- main --------------------------------------------------------------------- */

/* A certificate path that was only defaulted is used when the file exists,
 * so plain http:// endpoints work without a PKI. */
static const char *kz_cli__cert_path(const char *path, int defaulted)
{
	if (defaulted && access(path, R_OK) != 0)
		return NULL;
	return path;
}

int main(int argc, char **argv)
{
	kz_cli_args args;
	kz_cli_opts opts;
	kz_cli__ctx ctx;
	char err[512];
	int ex, rc;

	if (kz_cli_args_parse(argc, argv, &args, err, sizeof(err)) !=
	    KZ_CLI_ARGS_OK) {
		fprintf(stderr, "kizuna: %s\n(see 'kizuna --help')\n", err);
		return KZ_CLI_EXIT_USAGE;
	}
	if (args.help) {
		kz_cli_args_usage(stdout, &args);
		return KZ_CLI_EXIT_OK;
	}
	if (args.cmd == KZ_CLI_CMD_SAMPLE_GEN)
		return kz_cli__sample_gen(&args);
	if (args.cmd == KZ_CLI_CMD_CARD_SIGN)
		return kz_cli__card_sign(&args);
	if (args.cmd == KZ_CLI_CMD_BACKUP_RESTORE)
		return kz_cli_backup_restore(args.id, args.data_dir, args.json);

	memset(&opts, 0, sizeof(opts));
	opts.endpoints = args.endpoints;
	opts.cacert = kz_cli__cert_path(args.cacert, args.cacert_default);
	opts.cert = kz_cli__cert_path(args.cert, args.cert_default);
	opts.key = kz_cli__cert_path(args.key, args.key_default);
	opts.purpose = args.purpose;
	opts.request_timeout_ms = args.timeout_ms;
	opts.deadline_ms = args.timeout_ms;
	opts.verbose = args.verbose;
	ctx.a = &args;
	ctx.opts = &opts;
	rc = kz_cli_open(&opts, &ctx.cli, err, sizeof(err));
	if (rc != KZ_CLI_OK) {
		fprintf(stderr, "kizuna: %s\n", err);
		if (rc == KZ_CLI_EIO && strstr(err, "endpoints") != NULL)
			fprintf(stderr, "(give --endpoints FILE|URL,URL or set "
					"KIZUNA_ENDPOINTS)\n");
		return rc == KZ_CLI_ENOMEM ? KZ_CLI_EXIT_HTTP : KZ_CLI_EXIT_USAGE;
	}

	switch (args.cmd) {
	case KZ_CLI_CMD_VICTIM_ADD:
		ex = kz_cli__victim_add(&ctx);
		break;
	case KZ_CLI_CMD_VICTIM_GET:
		ex = kz_cli__victim_get(&ctx);
		break;
	case KZ_CLI_CMD_VICTIM_DUPLICATES:
	case KZ_CLI_CMD_VICTIM_MERGE:
	case KZ_CLI_CMD_VICTIM_UNMERGE:
		ex = kz_cli__victim_dedup(&ctx);
		break;
	case KZ_CLI_CMD_VICTIM_PATCH:
		ex = kz_cli__victim_patch(&ctx);
		break;
	case KZ_CLI_CMD_VICTIM_SEARCH:
		ex = kz_cli__victim_search(&ctx);
		break;
	case KZ_CLI_CMD_VICTIM_NOTE:
		ex = kz_cli__victim_note(&ctx);
		break;
	case KZ_CLI_CMD_SHELTER_PUT:
		ex = kz_cli__shelter_put(&ctx);
		break;
	case KZ_CLI_CMD_SHELTER_SUMMARY:
		ex = kz_cli__shelter_summary(&ctx);
		break;
	case KZ_CLI_CMD_CLUSTER_STATUS:
		ex = kz_cli__cluster_status(&ctx);
		break;
	case KZ_CLI_CMD_SAMPLE_LOAD:
		ex = kz_cli__sample_load(&ctx);
		break;
	case KZ_CLI_CMD_CLUSTER_ADD:
	case KZ_CLI_CMD_CLUSTER_REMOVE:
		ex = kz_cli__cluster_change(&ctx);
		break;
	case KZ_CLI_CMD_CLUSTER_SNAPSHOT:
		ex = kz_cli__call_print(&ctx, "POST", "/v1/cluster/snapshot",
					NULL, NULL);
		break;
	case KZ_CLI_CMD_CLUSTER_PROMOTE:
		ex = kz_cli__cluster_promote(&ctx);
		break;
	case KZ_CLI_CMD_CLUSTER_LEADER:
		ex = kz_cli__cluster_leader(&ctx);
		break;
	case KZ_CLI_CMD_KEYS_ROTATE:
		ex = kz_cli__keys_rotate(&ctx);
		break;
	case KZ_CLI_CMD_AUDIT_VERIFY:
		ex = kz_cli__audit_verify(&ctx);
		break;
	case KZ_CLI_CMD_AUDIT_LIST:
		ex = kz_cli__audit_list(&ctx);
		break;
	case KZ_CLI_CMD_BACKUP_CREATE:
		ex = kz_cli_backup_create(ctx.cli, args.id, args.json);
		break;
	case KZ_CLI_CMD_IMPORT_CSV: {
		kz_cli_import_opts io;
		memset(&io, 0, sizeof(io));
		io.file = args.id;
		io.encoding = args.encoding;
		io.map = args.map;
		io.ignore_unknown = args.ignore_unknown;
		io.dry_run = args.dry_run;
		io.check_duplicates = args.check_duplicates;
		io.batch = args.batch;
		io.in_flight = args.in_flight;
		io.json = args.json;
		io.cli_opts = &opts;
		ex = kz_cli_import_csv(ctx.cli, &io);
		break;
	}
	case KZ_CLI_CMD_IMPORT_PFIF: {
		kz_cli_pfif_opts po;
		memset(&po, 0, sizeof(po));
		po.file = args.id;
		po.dry_run = args.dry_run;
		po.batch = args.batch;
		po.json = args.json;
		ex = kz_cli_import_pfif(ctx.cli, &po);
		break;
	}
	case KZ_CLI_CMD_EXPORT_PFIF:
		ex = kz_cli_export_pfif(ctx.cli, args.out);
		break;
	default:
		ex = KZ_CLI_EXIT_USAGE;
		break;
	}
	kz_cli_close(ctx.cli);
	if (fflush(stdout) != 0)
		ex = kz_cli__worse(ex, KZ_CLI_EXIT_HTTP);
	return ex;
}
