/*
 * `kizuna` command-line parsing and the request bodies and paths built from
 * it (cli_args.c), and how `audit verify` judges the nodes' answers. No
 * process, no network. (`card sign`'s signatures are checked against the
 * node's verifier in test_card.c.)
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"

static char err[256];

/* Parses a NULL-terminated list of words (argv[0] is added). */
static int parse_words(kz_cli_args *a, const char *const *words)
{
	static char *argv[64];
	int argc = 1;
	argv[0] = "kizuna";
	while (*words != NULL && argc < 63)
		argv[argc++] = (char *)*words++;
	argv[argc] = NULL;
	err[0] = '\0';
	return kz_cli_args_parse(argc, argv, a, err, sizeof(err));
}

#define PARSE(a, ...) parse_words((a), (const char *const[]){__VA_ARGS__, NULL})

static void clear_env(void)
{
	unsetenv("KIZUNA_ENDPOINTS");
	unsetenv("KIZUNA_CACERT");
	unsetenv("KIZUNA_CERT");
	unsetenv("KIZUNA_KEY");
}

Test(client_args, victim_get_with_globals_anywhere, .init = clear_env)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "--endpoints", "http://127.0.0.1:1", "victim", "get",
			   "v-123", "--stale", "--json", "--purpose=安否確認",
			   "--timeout", "2.5"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_VICTIM_GET);
	cr_assert_str_eq(a.id, "v-123");
	cr_assert(a.stale);
	cr_assert(a.json);
	cr_assert_str_eq(a.endpoints, "http://127.0.0.1:1");
	cr_assert_str_eq(a.purpose, "安否確認");
	cr_assert_eq(a.timeout_ms, 2500);
	cr_assert_not(a.help);
}

Test(client_args, defaults_and_environment, .init = clear_env)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "cluster", "status"), KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_CLUSTER_STATUS);
	cr_assert_str_eq(a.endpoints, "var/cluster/endpoints");
	cr_assert_str_eq(a.cacert, "var/cluster/pki/ca.pem");
	cr_assert_str_eq(a.cert, "var/cluster/pki/operator.pem");
	cr_assert_str_eq(a.key, "var/cluster/pki/operator.key");
	cr_assert(a.cacert_default && a.cert_default && a.key_default);
	cr_assert_str_eq(a.purpose, "cli");
	cr_assert_eq(a.timeout_ms, 0);

	setenv("KIZUNA_ENDPOINTS", "/etc/kizuna/endpoints", 1);
	setenv("KIZUNA_CERT", "/etc/kizuna/registrar.pem", 1);
	cr_assert_eq(PARSE(&a, "cluster", "status", "--cacert", "/x/ca.pem"),
		     KZ_CLI_ARGS_OK);
	cr_assert_str_eq(a.endpoints, "/etc/kizuna/endpoints");
	cr_assert_str_eq(a.cert, "/etc/kizuna/registrar.pem");
	cr_assert_not(a.cert_default);
	cr_assert_str_eq(a.cacert, "/x/ca.pem");
	cr_assert_not(a.cacert_default);
	cr_assert(a.key_default);
}

Test(client_args, usage_errors)
{
	kz_cli_args a;
	cr_assert_eq(parse_words(&a, (const char *const[]){NULL}), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "frobnicate"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "eat"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "get"), KZ_CLI_ARGS_USAGE);
	cr_assert_not_null(strstr(err, "missing ID"), "%s", err);
	cr_assert_eq(PARSE(&a, "victim", "get", "a", "b"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "get", "a", "--bogus"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "get", "a", "--set", "x=1"),
		     KZ_CLI_ARGS_USAGE, "an option of another command");
	cr_assert_not_null(strstr(err, "does not take"), "%s", err);
	cr_assert_eq(PARSE(&a, "victim", "get", "a", "--json=1"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "get", "a", "--endpoints"), KZ_CLI_ARGS_USAGE,
		     "value missing");
	cr_assert_eq(PARSE(&a, "--name", "x", "victim", "add"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "cluster", "status", "--timeout", "0"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "cluster", "status", "--timeout", "soon"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "cluster", "status", "-x"), KZ_CLI_ARGS_USAGE);
}

Test(client_args, help_anywhere)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "--help"), KZ_CLI_ARGS_OK);
	cr_assert(a.help);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_NONE);
	cr_assert_eq(PARSE(&a, "victim", "-h"), KZ_CLI_ARGS_OK);
	cr_assert(a.help);
	cr_assert_str_eq(a.group, "victim");
	cr_assert_eq(PARSE(&a, "victim", "add", "--help"), KZ_CLI_ARGS_OK,
		     "help needs no other option");
	cr_assert(a.help);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_VICTIM_ADD);
}

Test(client_args, victim_add_fields)
{
	kz_cli_args a;
	json_t *body;
	char *s;

	cr_assert_eq(PARSE(&a, "victim", "add", "--name", "山田 太郎", "--name-kana",
			   "やまだ たろう", "--dob", "1950-04-01", "--sex", "male",
			   "--damage", "zenkai", "--needs", "elderly,medication",
			   "--shelter", "ishinomaki-03", "--status", "safe",
			   "--household", "h-000123"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(kz_cli_args_victim_body(&a, &body), 0);
	s = json_dumps(body, JSON_COMPACT);
	cr_assert_str_eq(s, "{\"name\":\"山田 太郎\",\"name_kana\":\"やまだ たろう\","
			    "\"dob\":\"1950-04-01\",\"sex\":\"male\","
			    "\"household_id\":\"h-000123\",\"damage\":\"zenkai\","
			    "\"shelter_id\":\"ishinomaki-03\",\"status\":\"safe\","
			    "\"needs\":[\"elderly\",\"medication\"]}");
	free(s);
	json_decref(body);
}

Test(client_args, victim_add_validation)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "victim", "add", "--file", "people.jsonl"),
		     KZ_CLI_ARGS_OK);
	cr_assert_str_eq(a.file, "people.jsonl");
	cr_assert_eq(PARSE(&a, "victim", "add", "--file", "p.jsonl", "--name", "x"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "add", "--name", "x", "--name-kana", "k",
			   "--dob", "1950-04-01"),
		     KZ_CLI_ARGS_USAGE, "sex missing");
	cr_assert_eq(PARSE(&a, "victim", "add", "--name", "x", "--name-kana", "k",
			   "--dob", "1950-04-01", "--sex", "M"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "add", "--name", "x", "--name-kana", "k",
			   "--dob", "1950-02-30", "--sex", "male"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "add", "--name", "x", "--name-kana", "k",
			   "--dob", "1950-02-03", "--sex", "male", "--damage",
			   "total"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "add", "--name", "x", "--name-kana", "k",
			   "--dob", "1950-02-03", "--sex", "male", "--needs",
			   "infant,,elderly"),
		     KZ_CLI_ARGS_USAGE);
}

Test(client_args, patch_body_values)
{
	kz_cli_args a;
	json_t *body;
	char *s;

	cr_assert_eq(PARSE(&a, "victim", "patch", "v-9", "--if-match", "17", "--set",
			   "status=injured", "--set", "capacity=42", "--set",
			   "consent.disclose_safety=false", "--set",
			   "needs=[\"infant\"]", "--set", "contact=090-1234-5678",
			   "--set", "note=\"42\"", "--set=address=宮城県石巻市 湊町",
			   "--set", "consent.to=[]"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.if_match, "17");
	cr_assert_eq(a.n_sets, 8);
	cr_assert_eq(kz_cli_args_patch_body(&a, &body, err, sizeof(err)), 0, "%s",
		     err);
	s = json_dumps(body, JSON_COMPACT);
	cr_assert_str_eq(s, "{\"status\":\"injured\",\"capacity\":42,"
			    "\"consent\":{\"disclose_safety\":false,\"to\":[]},"
			    "\"needs\":[\"infant\"],\"contact\":\"090-1234-5678\","
			    "\"note\":\"42\",\"address\":\"宮城県石巻市 湊町\"}");
	free(s);
	json_decref(body);

	cr_assert_eq(PARSE(&a, "victim", "patch", "v-9", "--set", "a=1", "--set",
			   "a.b=2"),
		     KZ_CLI_ARGS_OK);
	cr_assert_eq(kz_cli_args_patch_body(&a, &body, err, sizeof(err)), -1);
	cr_assert_null(body);
	cr_assert_eq(PARSE(&a, "victim", "patch", "v-9", "--set", ".b=2"),
		     KZ_CLI_ARGS_OK);
	cr_assert_eq(kz_cli_args_patch_body(&a, &body, err, sizeof(err)), -1);

	cr_assert_eq(PARSE(&a, "victim", "patch", "v-9"), KZ_CLI_ARGS_USAGE,
		     "nothing to set");
	cr_assert_eq(PARSE(&a, "victim", "patch", "v-9", "--set", "novalue"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "patch", "v-9", "--set", "=1"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "patch", "v-9", "--set", "a=1",
			   "--if-match", "W/\"x\""),
		     KZ_CLI_ARGS_USAGE);
}

Test(client_args, search_path)
{
	kz_cli_args a;
	char *p;

	cr_assert_eq(PARSE(&a, "victim", "search", "--q", "やまだ たろう", "--dob",
			   "1950-04-01", "--limit", "50", "--stale", "--all"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert(a.all);
	p = kz_cli_args_search_path(&a, NULL);
	cr_assert_str_eq(p, "/v1/victims?q=%E3%82%84%E3%81%BE%E3%81%A0%20%E3%81%9F"
			    "%E3%82%8D%E3%81%86&dob=1950-04-01&limit=50"
			    "&consistency=stale");
	free(p);
	p = kz_cli_args_search_path(&a, "c/1+2");
	cr_assert_not_null(strstr(p, "&cursor=c%2F1%2B2"), "%s", p);
	free(p);

	cr_assert_eq(PARSE(&a, "victim", "search"), KZ_CLI_ARGS_OK);
	p = kz_cli_args_search_path(&a, NULL);
	cr_assert_str_eq(p, "/v1/victims");
	free(p);
	cr_assert_eq(PARSE(&a, "victim", "search", "--shelter", "ishinomaki-01",
			   "--status", "missing"),
		     KZ_CLI_ARGS_OK);
	p = kz_cli_args_search_path(&a, "x");
	cr_assert_str_eq(p, "/v1/victims?shelter=ishinomaki-01&status=missing&cursor=x");
	free(p);

	cr_assert_eq(PARSE(&a, "victim", "search", "--limit", "0"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "search", "--limit", "10x"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "search", "--status", "lost"),
		     KZ_CLI_ARGS_USAGE);
}

Test(client_args, note_and_shelter)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "victim", "note", "v-1", "--status", "safe", "--text",
			   "避難所で確認", "--author", "石巻市", "--location",
			   "湊小学校"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.location, "湊小学校");
	cr_assert_eq(PARSE(&a, "victim", "note", "v-1", "--status", "safe"),
		     KZ_CLI_ARGS_USAGE, "text missing");
	cr_assert_eq(PARSE(&a, "victim", "note", "v-1", "--status", "fine", "--text",
			   "x"),
		     KZ_CLI_ARGS_USAGE);

	cr_assert_eq(PARSE(&a, "shelter", "put", "ishinomaki-01", "--name",
			   "石巻市立湊小学校", "--capacity", "300"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_SHELTER_PUT);
	cr_assert_eq(a.capacity, 300);
	cr_assert_eq(PARSE(&a, "shelter", "put", "s", "--name", "n"), KZ_CLI_ARGS_OK);
	cr_assert_eq(a.capacity, -1, "capacity not given");
	cr_assert_eq(PARSE(&a, "shelter", "put", "s"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "shelter", "put", "s", "--name", "n", "--capacity",
			   "-3"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "shelter", "summary", "s", "--stale"), KZ_CLI_ARGS_OK);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_SHELTER_SUMMARY);
}

Test(client_args, sample_commands)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "sample", "gen", "--count", "100"), KZ_CLI_ARGS_OK);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_SAMPLE_GEN);
	cr_assert_eq(a.count, 100);
	cr_assert_eq(a.seed, 1);
	cr_assert_eq(a.shelters, 10);
	cr_assert_eq(PARSE(&a, "sample", "load", "--count=5", "--seed",
			   "18446744073709551615", "--shelters", "0"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.seed, UINT64_MAX);
	cr_assert_eq(a.shelters, 0);
	cr_assert_eq(PARSE(&a, "sample", "gen"), KZ_CLI_ARGS_USAGE, "count missing");
	cr_assert_eq(PARSE(&a, "sample", "gen", "--count", "-1"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "sample", "gen", "--count", "1", "--seed", "-5"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "sample", "gen", "--count", "1", "--shelters", "1000"),
		     KZ_CLI_ARGS_USAGE);
}

Test(client_args, cluster_membership_and_leadership, .init = clear_env)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "cluster", "add", "6"), KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_CLUSTER_ADD);
	cr_assert_str_eq(a.id, "6");
	cr_assert_null(a.role);
	cr_assert_eq(a.force, 0);
	cr_assert_eq(PARSE(&a, "cluster", "add", "6", "--role", "standby",
			   "--force"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.role, "standby");
	cr_assert_eq(a.force, 1);
	cr_assert_eq(PARSE(&a, "cluster", "promote", "6"), KZ_CLI_ARGS_OK, "%s",
		     err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_CLUSTER_PROMOTE);
	cr_assert_str_eq(a.id, "6");
	cr_assert_eq(PARSE(&a, "cluster", "promote", "x"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "cluster", "promote", "6", "--role", "spare"),
		     KZ_CLI_ARGS_USAGE, "promote only makes voters");
	cr_assert_eq(PARSE(&a, "cluster", "add", "6", "--role", "boss"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "cluster", "add", "x6"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "cluster", "add"), KZ_CLI_ARGS_USAGE);
	/* With its addresses (the replicated address book), by --id too. */
	cr_assert_eq(PARSE(&a, "cluster", "add", "--id", "7", "--address",
			   "10.0.0.7:7401", "--api", "10.0.0.7:7400", "--region",
			   "sapporo", "--role", "standby"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.id, "7");
	cr_assert_str_eq(a.address, "10.0.0.7:7401");
	cr_assert_str_eq(a.api, "10.0.0.7:7400");
	cr_assert_str_eq(a.region, "sapporo");
	cr_assert_eq(PARSE(&a, "cluster", "add", "7", "--address",
			   "10.0.0.7:7401", "--region", "sapporo"),
		     KZ_CLI_ARGS_USAGE, "--api missing");
	cr_assert_eq(PARSE(&a, "cluster", "add", "7", "--id", "8"),
		     KZ_CLI_ARGS_USAGE, "two ids");
	cr_assert_eq(PARSE(&a, "cluster", "add", "--id", "8", "7"),
		     KZ_CLI_ARGS_USAGE, "two ids");
	cr_assert_eq(PARSE(&a, "cluster", "remove", "--id", "8"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(PARSE(&a, "cluster", "snapshot"), KZ_CLI_ARGS_OK, "%s",
		     err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_CLUSTER_SNAPSHOT);
	cr_assert_eq(PARSE(&a, "cluster", "remove", "6", "--force"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_CLUSTER_REMOVE);
	cr_assert_eq(PARSE(&a, "cluster", "remove", "6", "--role", "voter"),
		     KZ_CLI_ARGS_USAGE, "--role is add's");
	cr_assert_eq(PARSE(&a, "cluster", "transfer-leader"), KZ_CLI_ARGS_OK,
		     "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_CLUSTER_LEADER);
	cr_assert_eq(PARSE(&a, "cluster", "transfer-leader", "--to", "3"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.to, "3");
	cr_assert_eq(PARSE(&a, "cluster", "transfer-leader", "--region", "osaka"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.region, "osaka");
	cr_assert_eq(PARSE(&a, "cluster", "transfer-leader", "--to", "3",
			   "--region", "osaka"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "cluster", "transfer-leader", "--to",
			   "2026-01-01T00:00:00Z"),
		     KZ_CLI_ARGS_USAGE);
}

Test(client_args, audit_commands, .init = clear_env)
{
	kz_cli_args a;
	char *p;

	cr_assert_eq(PARSE(&a, "audit", "verify", "--json"), KZ_CLI_ARGS_OK, "%s",
		     err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_AUDIT_VERIFY);
	cr_assert(a.json);
	cr_assert_eq(PARSE(&a, "audit", "verify", "--subject", "v-1"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_not_null(strstr(err, "does not take"), "%s", err);
	cr_assert_eq(PARSE(&a, "audit", "verify", "x"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "audit"), KZ_CLI_ARGS_USAGE);
	{
		char *text = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&text, &len);
		cr_assert_eq(PARSE(&a, "audit", "--help"), KZ_CLI_ARGS_OK);
		kz_cli_args_usage(f, &a);
		fclose(f);
		cr_assert_not_null(strstr(text, "audit verify"), "%s", text);
		cr_assert_not_null(strstr(text, "audit list [--subject ID]"), "%s",
				   text);
		free(text);
	}

	cr_assert_eq(PARSE(&a, "audit", "list", "--subject", "v-1", "--from",
			   "2026-11-23T00:00:00Z", "--to=2026-11-23T23:59:59.5Z",
			   "--limit", "2500"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_AUDIT_LIST);
	cr_assert_str_eq(a.subject, "v-1");
	cr_assert_eq(a.limit, 2500);
	p = kz_cli_args_audit_list_path(&a, 0, 1000);
	cr_assert_str_eq(p, "/v1/audit?subject=v-1&from=2026-11-23T00%3A00%3A00Z"
			    "&to=2026-11-23T23%3A59%3A59.5Z&limit=1000");
	free(p);
	p = kz_cli_args_audit_list_path(&a, 1000, 500);
	cr_assert_not_null(strstr(p, "&after=1000&limit=500"), "%s", p);
	free(p);

	cr_assert_eq(PARSE(&a, "audit", "list"), KZ_CLI_ARGS_OK);
	cr_assert_eq(a.limit, 0, "no limit: every record");
	cr_assert_null(a.subject);
	p = kz_cli_args_audit_list_path(&a, 7, 100);
	cr_assert_str_eq(p, "/v1/audit?after=7&limit=100");
	free(p);

	cr_assert_eq(PARSE(&a, "audit", "list", "--limit", "0"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "audit", "list", "--subject", ""),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "audit", "list", "--from", "2026-11-23"),
		     KZ_CLI_ARGS_USAGE, "a date is not a time");
	cr_assert_eq(PARSE(&a, "audit", "list", "--from",
			   "2026-11-23T00:00:00+09:00"),
		     KZ_CLI_ARGS_USAGE, "UTC only");
	cr_assert_eq(PARSE(&a, "audit", "list", "--to", "2026-02-30T00:00:00Z"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "audit", "list", "--to", "2026-11-23T24:00:00Z"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "audit", "list", "--to", "2026-11-23T00:00:00.Z"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "search", "--from",
			   "2026-11-23T00:00:00Z"),
		     KZ_CLI_ARGS_USAGE, "only audit list takes --from");
}

/* One node's answer as `audit verify` records it. */
static json_t *answer(const char *ep, int status, const char *body)
{
	json_t *o = json_pack("{s:s}", "endpoint", ep);
	if (status == 0) {
		json_object_set_new(o, "error", json_string("refused"));
		return o;
	}
	json_object_set_new(o, "http_status", json_integer(status));
	if (body != NULL) {
		json_t *b = json_loads(body, 0, NULL);
		cr_assert_not_null(b, "%s", body);
		json_object_update(o, b);
		json_decref(b);
	}
	return o;
}

#define HEAD_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEAD_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

Test(client_args, audit_verdict)
{
	json_t *n = json_array();
	/* Whole chains; a node behind (fewer entries) is no disagreement; a
	 * node that cannot be reached does not count. */
	json_array_append_new(n, answer("https://1", 200,
					"{\"entries\":5,\"head\":\"" HEAD_A
					"\",\"ok\":true}"));
	json_array_append_new(n, answer("https://2", 200,
					"{\"entries\":4,\"head\":\"" HEAD_B
					"\",\"ok\":true}"));
	json_array_append_new(n, answer("https://3", 0, NULL));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_OK);
	cr_assert_null(json_object_get(json_array_get(n, 0), "disagrees_with"));

	/* Same length, another head: both named. */
	json_array_append_new(n, answer("https://4", 200,
					"{\"entries\":5,\"head\":\"" HEAD_B
					"\",\"ok\":true}"));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_HTTP);
	json_t *w = json_object_get(json_array_get(n, 0), "disagrees_with");
	cr_assert_eq(json_array_size(w), 1);
	cr_assert_str_eq(json_string_value(json_array_get(w, 0)), "https://4");
	w = json_object_get(json_array_get(n, 3), "disagrees_with");
	cr_assert_str_eq(json_string_value(json_array_get(w, 0)), "https://1");
	cr_assert_null(json_object_get(json_array_get(n, 1), "disagrees_with"));
	json_decref(n);

	/* With first_seq (after retention) the end of the log is compared, not
	 * the count: 8..12 and 1..5 both hold 5 entries. */
	n = json_array();
	json_array_append_new(n, answer("https://1", 200,
					"{\"entries\":5,\"first_seq\":8,"
					"\"head\":\"" HEAD_A "\",\"ok\":true}"));
	json_array_append_new(n, answer("https://2", 200,
					"{\"entries\":5,\"head\":\"" HEAD_B
					"\",\"ok\":true}"));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_OK);
	json_array_append_new(n, answer("https://3", 200,
					"{\"entries\":12,\"head\":\"" HEAD_B
					"\",\"ok\":true}"));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_HTTP,
		     "1..12 and 8..12 end at the same seq");
	json_decref(n);

	/* A broken chain, or a refusal, is a failure. */
	n = json_array();
	json_array_append_new(n, answer("https://1", 200,
					"{\"entries\":2,\"head\":\"" HEAD_A
					"\",\"ok\":false,\"first_bad_seq\":3,"
					"\"reason\":\"previous-hash link "
					"broken\"}"));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_HTTP);
	json_decref(n);
	n = json_array();
	json_array_append_new(n, answer("https://1", 403, NULL));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_HTTP);
	json_decref(n);
	n = json_array();
	json_array_append_new(n, answer("https://1", 200, "{\"ok\":true}"));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_HTTP,
		     "not a verify result");
	json_decref(n);

	/* Nobody answered. */
	n = json_array();
	json_array_append_new(n, answer("https://1", 0, NULL));
	json_array_append_new(n, answer("https://2", 0, NULL));
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_UNREACHABLE);
	json_decref(n);
	n = json_array();
	cr_assert_eq(kz_cli_args_audit_verdict(n), KZ_CLI_EXIT_UNREACHABLE);
	json_decref(n);
}

/* The nonce 00 01 02 ... 1f in every form `card sign` takes. */
#define NONCE_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define NONCE_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

Test(client_args, card_sign, .init = clear_env)
{
	static const char *const forms[] = {
		NONCE_HEX,
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
		NONCE_B64,
		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", /* no padding */
	};
	kz_cli_args a;
	char *sig, *cert;
	size_t i;
	int k;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		cr_assert_eq(PARSE(&a, "card", "sign", "--key", "c.key",
				   "--nonce", forms[i]),
			     KZ_CLI_ARGS_OK, "%s: %s", forms[i], err);
		cr_assert_eq(a.cmd, KZ_CLI_CMD_CARD_SIGN);
		for (k = 0; k < KZ_CLI_NONCE_LEN; k++)
			cr_assert_eq(a.nonce_bytes[k], k, "%s", forms[i]);
		cr_assert_str_eq(a.card_key, "c.key");
		cr_assert_null(a.card_cert);
	}
	/* URL-safe base64: '-' and '_' are 62 and 63, so fb ff bf... */
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "k", "--nonce",
			   "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.nonce_bytes[0], 0xfb);
	cr_assert_eq(a.nonce_bytes[1], 0xff);
	cr_assert_eq(a.nonce_bytes[2], 0xbf);
	cr_assert_eq(a.nonce_bytes[31], 0xff);

	/* The card's --cert, with globals anywhere. */
	cr_assert_eq(PARSE(&a, "--cert", "c.pem", "card", "sign", "--nonce",
			   NONCE_HEX, "--key=c.key"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.card_cert, "c.pem");
	cr_assert_str_eq(a.card_key, "c.key");

	/* The TLS client's key from the environment is never the card's. */
	setenv("KIZUNA_KEY", "/etc/kizuna/operator.key", 1);
	cr_assert_eq(PARSE(&a, "card", "sign", "--nonce", NONCE_HEX),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_not_null(strstr(err, "--key"), "%s", err);
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "c.key"),
		     KZ_CLI_ARGS_USAGE, "no nonce");

	/* Nonces of the wrong length or alphabet, or not canonical. */
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "k", "--nonce", "abc"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_not_null(strstr(err, "--nonce"), "%s", err);
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "k", "--nonce",
			   NONCE_HEX "00"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "k", "--nonce",
			   "g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "k", "--nonce",
			   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9="),
		     KZ_CLI_ARGS_USAGE, "low bits set in the last symbol");
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "k", "--nonce",
			   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh*="),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "get", "x", "--nonce", NONCE_HEX),
		     KZ_CLI_ARGS_USAGE, "--nonce belongs to card sign");

	/* A key file that is not there: a message, nothing allocated. */
	cr_assert_eq(PARSE(&a, "card", "sign", "--key", "/nonexistent/c.key",
			   "--nonce", NONCE_HEX),
		     KZ_CLI_ARGS_OK);
	cr_assert_eq(kz_cli_args_card_sign(&a, &sig, &cert, err, sizeof(err)),
		     -1);
	cr_assert_null(sig);
	cr_assert_null(cert);
	cr_assert_not_null(strstr(err, "/nonexistent/c.key"), "%s", err);
}

Test(client_args, backup_commands, .init = clear_env)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "backup", "create", "/srv/b1"), KZ_CLI_ARGS_OK,
		     "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_BACKUP_CREATE);
	cr_assert_str_eq(a.id, "/srv/b1");
	cr_assert_eq(PARSE(&a, "backup", "create"), KZ_CLI_ARGS_USAGE,
		     "a directory is needed");
	cr_assert_eq(PARSE(&a, "backup", "restore", "/srv/b1"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_not_null(strstr(err, "--data-dir"), "%s", err);
	cr_assert_eq(PARSE(&a, "backup", "restore", "/srv/b1", "--data-dir",
			   "/var/lib/kizuna"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_BACKUP_RESTORE);
	cr_assert_str_eq(a.data_dir, "/var/lib/kizuna");
	cr_assert_eq(PARSE(&a, "backup", "create", "/b", "--data-dir", "/d"),
		     KZ_CLI_ARGS_USAGE, "--data-dir belongs to restore");
}

Test(client_args, import_csv, .init = clear_env)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "import", "csv", "extract.csv", "--encoding",
			   "shift_jis", "--map", "氏名=name,生年月日=dob",
			   "--dry-run", "--batch", "500", "--ignore-unknown",
			   "--json"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_IMPORT_CSV);
	cr_assert_str_eq(a.id, "extract.csv");
	cr_assert_str_eq(a.encoding, "shift_jis");
	cr_assert_str_eq(a.map, "氏名=name,生年月日=dob");
	cr_assert(a.dry_run);
	cr_assert(a.ignore_unknown);
	cr_assert(a.json);
	cr_assert_eq(a.batch, 500);
	cr_assert_eq(PARSE(&a, "import", "csv", "-"), KZ_CLI_ARGS_OK, "%s",
		     err);
	cr_assert_str_eq(a.id, "-");
	cr_assert_eq(a.batch, 0);
	cr_assert_null(a.encoding);

	cr_assert_eq(PARSE(&a, "import", "csv"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--encoding", "latin1"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert(strstr(err, "--encoding") != NULL, "%s", err);
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--batch", "501"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--batch", "0"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--in-flight", "3"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.in_flight, 3);
	cr_assert_eq(PARSE(&a, "import", "csv", "f"), KZ_CLI_ARGS_OK, "%s",
		     err);
	cr_assert_eq(a.in_flight, 0, "not given: the import's default");
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--in-flight", "9"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert(strstr(err, "--in-flight: want 1..8") != NULL, "%s", err);
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--in-flight", "0"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "import", "pfif", "f", "--in-flight", "2"),
		     KZ_CLI_ARGS_USAGE, "--in-flight is for csv");
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--map", "氏名"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "import", "csv", "f", "--map", "=name"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "victim", "get", "x", "--dry-run"),
		     KZ_CLI_ARGS_USAGE);
}

Test(client_args, import_and_export_pfif, .init = clear_env)
{
	kz_cli_args a;
	cr_assert_eq(PARSE(&a, "import", "pfif", "people.xml", "--dry-run",
			   "--batch", "100", "--json"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_IMPORT_PFIF);
	cr_assert_str_eq(a.id, "people.xml");
	cr_assert(a.dry_run);
	cr_assert(a.json);
	cr_assert_eq(a.batch, 100);
	cr_assert_eq(PARSE(&a, "import", "pfif"), KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "import", "pfif", "f", "--batch", "501"),
		     KZ_CLI_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "import", "pfif", "f", "--map", "a=name"),
		     KZ_CLI_ARGS_USAGE, "--map is for csv");
	cr_assert_eq(PARSE(&a, "export", "pfif", "--out", "r.xml"),
		     KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_eq(a.cmd, KZ_CLI_CMD_EXPORT_PFIF);
	cr_assert_str_eq(a.out, "r.xml");
	cr_assert_eq(PARSE(&a, "export", "pfif"), KZ_CLI_ARGS_OK, "%s", err);
	cr_assert_null(a.out);
	cr_assert_eq(PARSE(&a, "export", "pfif", "--dry-run"),
		     KZ_CLI_ARGS_USAGE);
}
