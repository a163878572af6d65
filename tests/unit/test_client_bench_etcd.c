/*
 * kizuna-bench against etcd, and its failover measure (client/bench.c):
 * the --target and --failover-* command line, base64 and the bodies of
 * etcd's JSON gateway, how its answers are judged, the requests a slot
 * builds (handed to a transport whose loop is never run: no network),
 * the bookkeeping of a failover and a failover command run as a real child
 * process.
 *
 * bench.c is compiled in, as in test_client_bench.c, so its static
 * functions can be called.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bench.c"
#include "bench_fixture.h"

static char err[256];

static int parse_words(kz_cli_bench_args *a, const char *const *words)
{
	static char *argv[64];
	int argc = 1;
	argv[0] = "kizuna-bench";
	while (*words != NULL && argc < 63)
		argv[argc++] = (char *)*words++;
	argv[argc] = NULL;
	err[0] = '\0';
	return kz_cli_bench_args_parse(argc, argv, a, err, sizeof(err));
}

#define PARSE(a, ...) parse_words((a), (const char *const[]){__VA_ARGS__, NULL})

static void clear_env(void)
{
	unsetenv("KIZUNA_ENDPOINTS");
	unsetenv("KIZUNA_CACERT");
}

/* base64 back to bytes, into a malloc'd NUL-terminated buffer. */
static char *unbase64(const char *s, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	char *out = malloc(n + 1);
	int k;
	cr_assert_not_null(out);
	k = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s,
			    (int)n);
	cr_assert_geq(k, 0, "not base64: %s", s);
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	while (n > 0 && s[n - 1] == '=') {
		pad++;
		n--;
	}
	*len = (size_t)k - pad;
	out[*len] = '\0';
	return out;
}

/* ---- command line ------------------------------------------------------------ */

Test(client_bench_etcd, kizuna_stays_the_default, .init = clear_env)
{
	kz_cli_bench_args a;
	cr_assert_eq(PARSE(&a, "write"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.target, KZ_CLI_BENCH_TARGET_KIZUNA);
	cr_assert_str_eq(kz_cli_bench_target_name(a.target), "kizuna");
	cr_assert_str_eq(a.endpoints, "var/cluster/endpoints");
	cr_assert_str_eq(a.cacert, "var/cluster/pki/ca.pem");
	cr_assert_null(a.failover_cmd);
	cr_assert_eq(PARSE(&a, "--target", "kizuna", "read"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.target, KZ_CLI_BENCH_TARGET_KIZUNA);
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/caseworker.pem");
	cr_assert_eq(PARSE(&a, "--target", "zookeeper", "write"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert(strstr(err, "zookeeper") != NULL, "%s", err);
}

Test(client_bench_etcd, etcd_takes_no_certificate, .init = clear_env)
{
	kz_cli_bench_args a;

	/* KIZUNA_ENDPOINTS names Kizuna's nodes, not etcd's. */
	setenv("KIZUNA_ENDPOINTS", "https://10.0.0.1:7400", 1);
	cr_assert_eq(PARSE(&a, "--target", "etcd", "write"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.target, KZ_CLI_BENCH_TARGET_ETCD);
	cr_assert_str_eq(kz_cli_bench_target_name(a.target), "etcd");
	cr_assert_str_eq(a.endpoints, KZ_CLI_BENCH_DEFAULT_ETCD);
	cr_assert_null(a.cacert);
	cr_assert_null(a.write_cert);
	cr_assert_null(a.write_key);
	cr_assert_null(a.read_cert);
	cr_assert_null(a.read_key);
	cr_assert_eq(a.record_bytes, 1024);

	cr_assert_eq(PARSE(&a, "read", "--target=etcd", "--endpoints",
			   "http://127.0.0.1:2379,http://127.0.0.2:2379",
			   "--consistency", "stale", "--preload", "50"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.endpoints,
			 "http://127.0.0.1:2379,http://127.0.0.2:2379");
	cr_assert_eq(a.stale, 1);
	cr_assert_eq(a.preload, 50);
	cr_assert_null(a.read_cert);

	/* No certificate file is looked at, even where none exists. */
	cr_assert_eq(kz_cli__check_files(&a, 1, err, sizeof(err)), KZ_CLI_OK);
	cr_assert_eq(PARSE(&a, "--pki", "/nonexistent/pki", "read"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(kz_cli__check_files(&a, 1, err, sizeof(err)),
		     KZ_CLI_EIO);
}

Test(client_bench_etcd, etcd_refuses_what_it_would_ignore, .init = clear_env)
{
	kz_cli_bench_args a;
	static const char *const kizuna_only[][2] = {
	    {"--pki", "/p"},        {"--cacert", "/c"},
	    {"--cert", "/c"},       {"--key", "/k"},
	    {"--write-cert", "/c"}, {"--write-key", "/k"},
	    {"--read-cert", "/c"},  {"--read-key", "/k"},
	    {"--purpose", "x"},
	};
	size_t i;

	for (i = 0; i < sizeof(kizuna_only) / sizeof(kizuna_only[0]); i++) {
		cr_assert_eq(PARSE(&a, "--target", "etcd", kizuna_only[i][0],
				   kizuna_only[i][1], "write"),
			     KZ_CLI_BENCH_ARGS_USAGE, "%s accepted",
			     kizuna_only[i][0]);
		cr_assert(strstr(err, kizuna_only[i][0]) != NULL, "%s", err);
	}
	cr_assert_eq(PARSE(&a, "--target", "etcd", "--http2", "write"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "--target", "etcd", "mixed"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "--target", "etcd", "photo"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "--target", "etcd", "identity"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	/* The workload rules still hold. */
	cr_assert_eq(PARSE(&a, "--target", "etcd", "--preload", "5", "write"),
		     KZ_CLI_BENCH_ARGS_USAGE);
}

Test(client_bench_etcd, failover_command_line, .init = clear_env)
{
	kz_cli_bench_args a;

	cr_assert_eq(PARSE(&a, "write", "--duration", "12", "--failover-cmd",
			   "kill -9 1234"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.failover_cmd, "kill -9 1234");
	cr_assert_float_eq(a.failover_at_s, 4.0, 1e-9); /* a third */
	cr_assert_eq(PARSE(&a, "--target", "etcd", "write", "--duration", "12",
			   "--failover-cmd", "x", "--failover-at", "2.5"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_float_eq(a.failover_at_s, 2.5, 1e-9);
	cr_assert_eq(PARSE(&a, "write", "--duration", "12", "--failover-cmd",
			   "x", "--failover-at", "0"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);

	/* Outside the run, without a command, with a count of requests,
	 * or for reads: refused. */
	cr_assert_eq(PARSE(&a, "write", "--duration", "12", "--failover-cmd",
			   "x", "--failover-at", "12"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "write", "--failover-at", "1"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "write", "--requests", "100", "--failover-cmd",
			   "x"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "read", "--failover-cmd", "x"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "write", "--failover-cmd", "x",
			   "--failover-at", "-1"),
		     KZ_CLI_BENCH_ARGS_USAGE);
}

/* ---- bodies and answers --------------------------------------------------------- */

Test(client_bench_etcd, base64_of_rfc4648)
{
	static const char *const vec[][2] = {
	    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
	    {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	size_t i, n;
	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		char *s = kz_cli_bench_base64(vec[i][0], strlen(vec[i][0]), &n);
		cr_assert_not_null(s);
		cr_assert_str_eq(s, vec[i][1]);
		cr_assert_eq(n, strlen(vec[i][1]));
		free(s);
	}
	/* Binary bytes, and no line breaks however long. */
	{
		unsigned char bin[3000];
		char *s, *back;
		size_t blen;
		for (i = 0; i < sizeof(bin); i++)
			bin[i] = (unsigned char)(i * 7);
		s = kz_cli_bench_base64(bin, sizeof(bin), &n);
		cr_assert_not_null(s);
		cr_assert_eq(n, 4000);
		cr_assert_null(strchr(s, '\n'));
		back = unbase64(s, &blen);
		cr_assert_eq(blen, sizeof(bin));
		cr_assert_eq(memcmp(back, bin, blen), 0);
		free(back);
		free(s);
	}
}

Test(client_bench_etcd, keys_by_seed_and_number)
{
	char buf[64], small[16];
	cr_assert_eq(kz_cli_bench_etcd_key(1, 0, buf, sizeof(buf)), 16);
	cr_assert_str_eq(buf, "kizuna-bench/1/0");
	cr_assert_eq(kz_cli_bench_etcd_key(UINT64_MAX, UINT64_MAX, buf,
					   sizeof(buf)),
		     54);
	cr_assert_str_eq(buf,
			 "kizuna-bench/18446744073709551615/18446744073709551615");
	cr_assert_eq(kz_cli_bench_etcd_key(1, 12345, small, sizeof(small)), -1);
}

Test(client_bench_etcd, put_body_carries_the_record)
{
	const char *record = "{\"name\":\"山田 太郎\",\"address\":\"石巻\"}";
	json_t *o;
	char *body, *k, *v;
	size_t len, klen, vlen;

	cr_assert_eq(kz_cli_bench_etcd_put_body("kizuna-bench/1/7", record,
						strlen(record), &body, &len),
		     KZ_CLI_OK);
	cr_assert_eq(strlen(body), len);
	o = json_loads(body, 0, NULL);
	cr_assert_not_null(o, "%s", body);
	cr_assert_eq(json_object_size(o), 2);
	k = unbase64(json_string_value(json_object_get(o, "key")), &klen);
	v = unbase64(json_string_value(json_object_get(o, "value")), &vlen);
	cr_assert_str_eq(k, "kizuna-bench/1/7");
	cr_assert_eq(vlen, strlen(record));
	cr_assert_eq(memcmp(v, record, vlen), 0);
	free(k);
	free(v);
	json_decref(o);
	free(body);
}

Test(client_bench_etcd, range_body_linearizable_or_serializable)
{
	json_t *o;
	char *body, *k;
	size_t len, klen;

	cr_assert_eq(kz_cli_bench_etcd_range_body("kizuna-bench/2/3", 0, &body,
						  &len),
		     KZ_CLI_OK);
	o = json_loads(body, 0, NULL);
	cr_assert_not_null(o, "%s", body);
	/* etcd's default is the linearizable read: nothing else is sent. */
	cr_assert_eq(json_object_size(o), 1);
	k = unbase64(json_string_value(json_object_get(o, "key")), &klen);
	cr_assert_str_eq(k, "kizuna-bench/2/3");
	free(k);
	json_decref(o);
	free(body);

	cr_assert_eq(kz_cli_bench_etcd_range_body("kizuna-bench/2/3", 1, &body,
						  &len),
		     KZ_CLI_OK);
	cr_assert_eq(strlen(body), len);
	o = json_loads(body, 0, NULL);
	cr_assert_not_null(o);
	cr_assert(json_is_true(json_object_get(o, "serializable")), "%s", body);
	cr_assert_not_null(json_object_get(o, "key"));
	json_decref(o);
	free(body);
}

#define HEADER                                                                 \
	"\"header\":{\"cluster_id\":\"1913612760652691597\",\"member_id\":"     \
	"\"16136227774972281382\",\"revision\":\"2\",\"raft_term\":\"2\"}"

Test(client_bench_etcd, answers_are_judged)
{
	/* What etcd 3.4's gateway answers (base64 of kizuna-bench/1/0). */
	const char *put = "{" HEADER "}";
	const char *range =
	    "{" HEADER ",\"kvs\":[{\"key\":\"a2l6dW5hLWJlbmNoLzEvMA==\","
	    "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":"
	    "\"1\",\"value\":\"YmFy\"}],\"count\":\"1\"}";
	const char *missing = "{" HEADER "}";
	const char *other =
	    "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"value\":\"YmFy\"}],"
	    "\"count\":\"1\"}";
	const char *error = "{\"error\":\"etcdserver: request timed out\","
			    "\"code\":14}";

	cr_assert(kz_cli_bench_etcd_put_answer_ok(put, strlen(put)));
	cr_assert_not(kz_cli_bench_etcd_put_answer_ok(error, strlen(error)));
	cr_assert_not(kz_cli_bench_etcd_put_answer_ok("<html>", 6));
	cr_assert_not(kz_cli_bench_etcd_put_answer_ok(put, strlen(put) - 3));

	cr_assert(kz_cli_bench_etcd_range_answer_ok(range, strlen(range),
						    "kizuna-bench/1/0"));
	cr_assert_not(kz_cli_bench_etcd_range_answer_ok(range, strlen(range),
							"kizuna-bench/1/1"));
	cr_assert_not(kz_cli_bench_etcd_range_answer_ok(
	    missing, strlen(missing), "kizuna-bench/1/0"));
	cr_assert_not(kz_cli_bench_etcd_range_answer_ok(other, strlen(other),
							"kizuna-bench/1/0"));
	cr_assert_not(kz_cli_bench_etcd_range_answer_ok(
	    range, strlen(range) - 10, "kizuna-bench/1/0"));
}

static void answer(kz_cli__slot *s, const char *body)
{
	s->resp_len = 0;
	s->resp_total = 0;
	kz_cli__on_resp(s, (const char *)body, strlen(body));
}

Test(client_bench_etcd, wrong_answer_is_a_bad_body, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__slot s;
	kz_cli_bench_stats st;
	char big[KZ_CLI__RESP_MAX + 100];

	cr_assert_eq(PARSE(&a, "--target", "etcd", "read"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	memset(&b, 0, sizeof(b));
	memset(&s, 0, sizeof(s));
	b.a = &a;
	s.req = KZ_CLI__REQ_ETCD_RANGE;
	snprintf(s.key, sizeof(s.key), "kizuna-bench/1/0");
	snprintf(s.url, sizeof(s.url), "http://127.0.0.1:2379/v3/kv/range");

	answer(&s, "{" HEADER ",\"kvs\":[{\"key\":\"a2l6dW5hLWJlbmNoLzEvMA==\","
		   "\"value\":\"YmFy\"}],\"count\":\"1\"}");
	cr_assert(kz_cli__etcd_answer_ok(&s));
	answer(&s, "{" HEADER "}"); /* the key is not there */
	cr_assert_not(kz_cli__etcd_answer_ok(&s));
	/* An answer longer than what is kept is cut: not ok. */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "{" HEADER "}", strlen("{" HEADER "}"));
	answer(&s, big);
	cr_assert_not(kz_cli__etcd_answer_ok(&s));
	s.req = KZ_CLI__REQ_ETCD_PUT;
	answer(&s, "{" HEADER "}");
	cr_assert(kz_cli__etcd_answer_ok(&s));

	/* Counted as a request, neither ok nor timed, and shown. */
	memset(&st, 0, sizeof(st));
	answer(&s, "{\"unexpected\":1}");
	cr_assert_eq(kz_cli__account(&b, &st, &s, KZ_BH_OK, 200, 0, 5000, 1),
		     KZ_CLI_OK);
	cr_assert_eq(st.requests, 1);
	cr_assert_eq(st.ok, 0);
	cr_assert_eq(st.bad_bodies, 1);
	cr_assert_eq(st.n_lat, 0);
	cr_assert(strstr(st.first_error, "unexpected") != NULL, "%s",
		  st.first_error);
	free(st.lat_ns);
}

/* ---- the requests a slot sends ---------------------------------------------------- */

Test(client_bench_etcd, slot_puts_the_record_then_ranges_it,
     .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli__slot *s;
	json_t *o, *victim;
	char *k, *v;
	size_t klen, vlen;

	cr_assert_eq(PARSE(&a, "--target", "etcd", "--endpoints",
			   "http://127.0.0.1:9/", "--seed", "7", "--quiet", "read"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	s = bench_fixture(&a, &b, &ph, st, &rec, 1);
	ph.name = "test";

	/* Nothing stored yet: the slot writes, whatever the phase asks. */
	ph.read_ratio = 1.0;
	kz_cli__start(&b, s);
	cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
	cr_assert(s->busy);
	cr_assert_eq(s->req, KZ_CLI__REQ_ETCD_PUT);
	cr_assert_eq(s->op, KZ_CLI_BENCH_OP_WRITE);
	cr_assert_str_eq(s->url, "http://127.0.0.1:9/v3/kv/put");
	cr_assert_str_eq(s->key, "kizuna-bench/7/0");
	o = json_loads(s->body, 0, NULL);
	cr_assert_not_null(o);
	k = unbase64(json_string_value(json_object_get(o, "key")), &klen);
	v = unbase64(json_string_value(json_object_get(o, "value")), &vlen);
	cr_assert_str_eq(k, "kizuna-bench/7/0");
	/* The value is the padded victim a Kizuna write would POST. */
	victim = json_loadb(v, vlen, 0, NULL);
	cr_assert_not_null(victim, "%s", v);
	cr_assert_str_not_empty(
	    json_string_value(json_object_get(victim, "name")));
	cr_assert_eq(rec.count, 1);
	cr_assert_eq(rec.bytes, vlen);
	cr_assert(vlen <= 1024 && vlen > 900, "%zu", vlen);
	json_decref(victim);
	json_decref(o);
	free(k);
	free(v);

	/* Its put answered: the key joins the pool, reads range it. */
	kz_bh_abort(s->h[KZ_CLI_BENCH_OP_WRITE]);
	s->busy = 0;
	kz_cli__pool_add(&b, s->key, strlen(s->key));
	a.stale = 1;
	kz_cli__start(&b, s);
	cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
	cr_assert_eq(s->req, KZ_CLI__REQ_ETCD_RANGE);
	cr_assert_eq(s->op, KZ_CLI_BENCH_OP_READ);
	cr_assert_str_eq(s->url, "http://127.0.0.1:9/v3/kv/range");
	cr_assert_str_eq(s->key, "kizuna-bench/7/0");
	o = json_loads(s->body, 0, NULL);
	cr_assert_not_null(o);
	cr_assert(json_is_true(json_object_get(o, "serializable")));
	json_decref(o);

	/* Puts and ranges go out as nobody: one connection serves both. */
	cr_assert_eq(s->h[KZ_CLI_BENCH_OP_READ], s->h[KZ_CLI_BENCH_OP_WRITE]);

	/* The next put is the next key. */
	kz_bh_abort(s->h[KZ_CLI_BENCH_OP_READ]);
	s->busy = 0;
	ph.read_ratio = 0.0;
	kz_cli__start(&b, s);
	cr_assert_str_eq(s->key, "kizuna-bench/7/1");
	cr_assert_eq(ph.sent, 3);

	kz_cli__close(&b);
}

/* ---- failover ------------------------------------------------------------------------ */

Test(client_bench_etcd, failover_counts_only_what_was_sent_after)
{
	kz_cli__bench b;
	kz_cli__slot s;
	memset(&b, 0, sizeof(b));
	memset(&s, 0, sizeof(s));

	/* Before the kill nothing counts. */
	s.op = KZ_CLI_BENCH_OP_WRITE;
	s.start_ns = 100;
	kz_cli__failover_note(&b, &s, 1, 200);
	kz_cli__failover_note(&b, &s, 0, 200);
	cr_assert_eq(b.fo_recovered_ns, 0);
	cr_assert_eq(b.fo_errors_after, 0);

	b.fo_kill_ns = 1000;
	/* Sent before the kill, done after: not a recovery. */
	kz_cli__failover_note(&b, &s, 1, 1500);
	cr_assert_eq(b.fo_recovered_ns, 0);
	/* Sent after: failures are counted; an ok read is not a write. */
	s.start_ns = 1000;
	kz_cli__failover_note(&b, &s, 0, 1600);
	s.op = KZ_CLI_BENCH_OP_READ;
	kz_cli__failover_note(&b, &s, 1, 1700);
	cr_assert_eq(b.fo_recovered_ns, 0);
	cr_assert_eq(b.fo_errors_after, 1);
	/* The first ok write sent after the kill ends it; later ones do not
	 * move it. */
	s.op = KZ_CLI_BENCH_OP_WRITE;
	s.start_ns = 1800;
	kz_cli__failover_note(&b, &s, 1, 2500);
	cr_assert_eq(b.fo_recovered_ns, 2500);
	kz_cli__failover_note(&b, &s, 1, 2400);
	cr_assert_eq(b.fo_recovered_ns, 2500);
}

Test(client_bench_etcd, failover_result_from_the_times)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_failover fo;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&ph, 0, sizeof(ph));
	a.quiet = 1;
	b.a = &a;
	ph.start_ns = 1000000000ull;
	b.fo_start_ns = ph.start_ns + 4000000000ull;
	b.fo_kill_ns = ph.start_ns + 4050000000ull;
	b.fo_recovered_ns = ph.start_ns + 5300000000ull;
	b.fo_status = 0;
	b.fo_errors_after = 12;
	kz_cli__failover_end(&b, &ph, &fo);
	cr_assert(fo.asked && fo.ran && fo.exited && fo.recovered);
	cr_assert_float_eq(fo.started_s, 4.0, 1e-9);
	cr_assert_float_eq(fo.killed_s, 4.05, 1e-9);
	cr_assert_float_eq(fo.recovered_s, 5.3, 1e-9);
	cr_assert_float_eq(fo.failover_s, 1.25, 1e-9);
	cr_assert_eq(fo.errors_after, 12);

	b.fo_recovered_ns = 0;
	kz_cli__failover_end(&b, &ph, &fo);
	cr_assert_not(fo.recovered);
	cr_assert_float_eq(fo.failover_s, 0.0, 1e-9);
}

Test(client_bench_etcd, probes_run_from_the_kill_to_the_recovery,
     .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	uint64_t wait, now = 5 * KZ_CLI__NS_PER_S;
	size_t i;

	cr_assert_eq(PARSE(&a, "--target", "etcd", "--endpoints",
			   "http://127.0.0.1:9,http://127.0.0.2:9", "write",
			   "--failover-cmd", "true", "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	bench_fixture(&a, &b, &ph, st, &rec, 0);
	b.probes = calloc(KZ_CLI__PROBES, sizeof(*b.probes));
	cr_assert_not_null(b.probes);
	for (i = 0; i < KZ_CLI__PROBES; i++) {
		b.probes[i].b = &b;
		b.probes[i].ep = i % b.n_eps;
		b.probes[i].probe = 1;
	}
	ph.failover = 1;

	/* Before the kill: nothing. */
	wait = KZ_CLI__NS_PER_S;
	cr_assert_eq(kz_cli__probe(&b, now, &wait), 0);
	cr_assert_eq(wait, KZ_CLI__NS_PER_S);

	/* After it: one write now, on its own slot, the next in 25 ms. */
	b.fo_kill_ns = 1; /* before any request's start_ns */
	cr_assert_eq(kz_cli__probe(&b, now, &wait), 1);
	cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
	cr_assert_eq(b.fo_probes, 1);
	cr_assert(b.probes[0].busy);
	cr_assert_eq(b.probes[0].req, KZ_CLI__REQ_ETCD_PUT);
	cr_assert_eq(wait, KZ_CLI__PROBE_INTERVAL_NS);
	wait = KZ_CLI__NS_PER_S;
	cr_assert_eq(kz_cli__probe(&b, now + KZ_CLI__NS_PER_MS, &wait), 0);
	cr_assert_eq(wait, KZ_CLI__PROBE_INTERVAL_NS - KZ_CLI__NS_PER_MS);
	/* The next goes to the next endpoint, while the first still hangs. */
	now += KZ_CLI__PROBE_INTERVAL_NS;
	cr_assert_eq(kz_cli__probe(&b, now, &wait), 1);
	cr_assert(b.probes[1].busy);
	cr_assert_eq(b.probes[1].ep, 1);
	cr_assert_str_eq(b.probes[1].url, "http://127.0.0.2:9/v3/kv/put");
	/* Every probe slot busy: none is sent, none is lost. */
	for (i = 2; i < KZ_CLI__PROBES; i++) {
		now += KZ_CLI__PROBE_INTERVAL_NS;
		cr_assert_eq(kz_cli__probe(&b, now, &wait), 1);
	}
	now += KZ_CLI__PROBE_INTERVAL_NS;
	cr_assert_eq(kz_cli__probe(&b, now, &wait), 0);
	cr_assert_eq(b.fo_probes, KZ_CLI__PROBES);

	/* A probe's ok write ends the failover, and the probing. */
	b.probes[3].busy = 0;
	kz_bh_abort(b.probes[3].h[KZ_CLI_BENCH_OP_WRITE]);
	kz_cli__failover_note(&b, &b.probes[3], 1, now);
	cr_assert_eq(b.fo_recovered_ns, now);
	now += KZ_CLI__PROBE_INTERVAL_NS;
	cr_assert_eq(kz_cli__probe(&b, now, &wait), 0);
	/* None of it is in the run's figures. */
	cr_assert_eq(st[0].requests + st[1].requests, 0);

	kz_cli__close(&b);
}

/* Polls until the child has ended, for at most 10 s. */
static int wait_child(pid_t pid, int *status)
{
	int i;
	for (i = 0; i < 10000; i++) {
		struct timespec ts = {0, 1000000};
		if (kz_cli__reap(pid, 0, status))
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

Test(client_bench_etcd, failover_command_runs_in_a_shell)
{
	pid_t pid = 0;
	int status = -2;

	cr_assert_eq(kz_cli__spawn_sh("exit 3", &pid), 0);
	cr_assert_gt(pid, 0);
	cr_assert(wait_child(pid, &status));
	cr_assert_eq(status, 3);
	/* A command killed by a signal: 128 + the signal, as a shell says. */
	cr_assert_eq(kz_cli__spawn_sh("kill -9 $$", &pid), 0);
	cr_assert(wait_child(pid, &status));
	cr_assert_eq(status, 128 + 9);
	/* Blocking wait too. */
	cr_assert_eq(kz_cli__spawn_sh("true", &pid), 0);
	cr_assert(kz_cli__reap(pid, 1, &status));
	cr_assert_eq(status, 0);
}

/* ---- summary -------------------------------------------------------------------------- */

Test(client_bench_etcd, exit_code_of_a_failover_run)
{
	kz_cli_bench_result r;
	memset(&r, 0, sizeof(r));
	r.op[0].ok = 10;
	r.op[0].transport_errors = 30; /* the killed node */
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_FAIL);
	r.failover.asked = 1;
	r.failover.ran = r.failover.exited = 1;
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_FAIL);
	r.failover.recovered = 1;
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_OK);
	r.op[0].bad_bodies = 1;
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_FAIL);
}

Test(client_bench_etcd, json_summary_names_target_and_failover,
     .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli_bench_result r;
	json_t *j, *fo;
	char *text = NULL;
	size_t tlen = 0;
	FILE *f;
	uint64_t lat_ns[2] = {1000000, 3000000};

	cr_assert_eq(PARSE(&a, "--target", "etcd", "write", "--failover-cmd",
			   "true"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	memset(&r, 0, sizeof(r));
	r.op[0].requests = r.op[0].ok = 2;
	r.op[0].lat_ns = lat_ns;
	r.op[0].n_lat = 2;
	r.elapsed_s = 1.0;
	r.failover.asked = r.failover.ran = r.failover.exited = 1;
	r.failover.recovered = 1;
	r.failover.started_s = 3.0;
	r.failover.killed_s = 3.01;
	r.failover.recovered_s = 4.51;
	r.failover.failover_s = 1.5;
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "target")),
			 "etcd");
	cr_assert_float_eq(json_real_value(json_object_get(j, "failover_s")),
			   1.5, 1e-9);
	fo = json_object_get(j, "failover");
	cr_assert(json_is_true(json_object_get(fo, "recovered")));
	cr_assert_float_eq(json_real_value(json_object_get(fo, "killed_s")),
			   3.01, 1e-9);
	json_decref(j);

	/* Not recovered: null, not a number. */
	r.failover.recovered = 0;
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	cr_assert(json_is_null(json_object_get(j, "failover_s")));
	json_decref(j);

	/* Serializable reads are called so; the text says what was measured. */
	cr_assert_eq(PARSE(&a, "--target", "etcd", "read", "--consistency",
			   "stale"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	memset(&r, 0, sizeof(r));
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_str_eq(json_string_value(json_object_get(j, "consistency")),
			 "serializable");
	cr_assert_null(json_object_get(j, "failover_s"));
	json_decref(j);
	f = open_memstream(&text, &tlen);
	cr_assert_not_null(f);
	kz_cli_bench_report_text(f, &a, &r);
	fclose(f);
	cr_assert(strstr(text, "serializable reads") != NULL, "%s", text);
	cr_assert(strstr(text, "etcd") != NULL, "%s", text);
	free(text);
}
