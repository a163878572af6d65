/*
 * `kizuna` command-line parsing and the request bodies and paths built from
 * it (cli_args.c). No process, no network.
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
