/*
 * kizuna-bench's pure parts (client/bench.c): nearest-rank percentiles, the
 * command line and its defaults, the padding of sample records (and of the
 * update workload's PATCH bodies) to a body size within the server's field
 * limits, and the photo bodies; for search, payout and day: their command
 * lines and --mix, the name queries and their romaji, the note and payout
 * bodies, the payout plan, the requests each kind sends, the judging of
 * search and payout answers and the summary's by_kind. No process, no
 * network (a run is set up by hand, its loop never run).
 *
 * bench.c belongs to the kizuna-bench executable, not to kz_client, so it is
 * compiled into this test directly (tests/CMakeLists.txt links every unit
 * test with kz_node and kz_client only).
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
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
	unsetenv("KIZUNA_CERT");
	unsetenv("KIZUNA_KEY");
}

/* ---- percentiles ---------------------------------------------------------- */

Test(client_bench, percentile_nearest_rank)
{
	uint64_t v[100];
	size_t i;
	for (i = 0; i < 100; i++)
		v[i] = i + 1; /* 1..100 */
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 50), 50);
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 90), 90);
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 99), 99);
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 99.5), 100);
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 100), 100);
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 0), 1);
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 0.5), 1);

	/* 10 values: p50 is the 5th, p99 and p91 the 10th, p90 the 9th. */
	cr_assert_eq(kz_cli_bench_percentile(v, 10, 50), 5);
	cr_assert_eq(kz_cli_bench_percentile(v, 10, 90), 9);
	cr_assert_eq(kz_cli_bench_percentile(v, 10, 91), 10);
	cr_assert_eq(kz_cli_bench_percentile(v, 10, 99), 10);
	cr_assert_eq(kz_cli_bench_percentile(v, 10, 1), 1);
}

Test(client_bench, percentile_p999)
{
	static uint64_t v[100000];
	static const size_t ns[] = {1000, 2000, 3000, 7000, 10000, 100000};
	size_t i;
	for (i = 0; i < 100000; i++)
		v[i] = i + 1;
	/* p99.9 of n values is the ceil(0.999 n)th: a double's 99.9 / 100
	 * is a hair above 0.999, which must not make it the next rank. */
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
		cr_assert_eq(kz_cli_bench_percentile(v, ns[i], 99.9),
			     ns[i] - ns[i] / 1000, "n %zu", ns[i]);
	cr_assert_eq(kz_cli_bench_percentile(v, 1001, 99.9), 1000);
	cr_assert_eq(kz_cli_bench_percentile(v, 999, 99.9), 999);
	cr_assert_eq(kz_cli_bench_percentile(v, 100, 99.9), 100);
	cr_assert_eq(kz_cli_bench_percentile(v, 10, 99.9), 10);
	/* The others keep their ranks. */
	cr_assert_eq(kz_cli_bench_percentile(v, 1000, 99), 990);
	cr_assert_eq(kz_cli_bench_percentile(v, 1000, 50), 500);
	cr_assert_eq(kz_cli_bench_percentile(v, 100000, 99.99), 99990);
	cr_assert_eq(kz_cli_bench_percentile(v, 3, 33.4), 2);
	cr_assert_eq(kz_cli_bench_percentile(v, 3, 100.0 / 3.0), 1);
}

Test(client_bench, percentile_small_inputs)
{
	uint64_t one = 42;
	cr_assert_eq(kz_cli_bench_percentile(NULL, 0, 50), 0);
	cr_assert_eq(kz_cli_bench_percentile(&one, 1, 0), 42);
	cr_assert_eq(kz_cli_bench_percentile(&one, 1, 50), 42);
	cr_assert_eq(kz_cli_bench_percentile(&one, 1, 100), 42);
	cr_assert_eq(kz_cli_bench_percentile(&one, 1, 150), 42);
}

/* ---- command line ------------------------------------------------------------ */

Test(client_bench, defaults, .init = clear_env)
{
	kz_cli_bench_args a;
	cr_assert_eq(PARSE(&a, "write"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.workload, KZ_CLI_BENCH_WRITE);
	cr_assert_str_eq(a.endpoints, "var/cluster/endpoints");
	cr_assert_str_eq(a.cacert, "var/cluster/pki/ca.pem");
	cr_assert_str_eq(a.write_cert, "var/cluster/pki/registrar.pem");
	cr_assert_str_eq(a.write_key, "var/cluster/pki/registrar.key");
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/caseworker.pem");
	cr_assert_str_eq(a.read_key, "var/cluster/pki/caseworker.key");
	cr_assert_str_eq(a.purpose, "bench");
	cr_assert_eq(a.connections, 16);
	cr_assert_float_eq(a.duration_s, 10.0, 1e-9);
	cr_assert_eq(a.requests, 0);
	cr_assert_eq(a.record_bytes, 1024);
	cr_assert_eq(a.preload, 1000);
	cr_assert_float_eq(a.read_ratio, 0.9, 1e-9);
	cr_assert_eq(a.photo_bytes, 30000);
	cr_assert_eq(a.timeout_ms, 10000);
	cr_assert_eq(a.seed, 1);
	cr_assert_not(a.stale || a.json || a.quiet || a.help);
}

Test(client_bench, options_anywhere_both_forms, .init = clear_env)
{
	kz_cli_bench_args a;
	cr_assert_eq(PARSE(&a, "--connections=4", "read", "--requests", "500",
			   "--consistency", "stale", "--json",
			   "--preload=20", "--timeout", "2.5", "--seed", "7",
			   "--purpose=安否確認"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.workload, KZ_CLI_BENCH_READ);
	cr_assert_eq(a.connections, 4);
	cr_assert_eq(a.requests, 500);
	cr_assert(a.stale);
	cr_assert(a.json);
	cr_assert_eq(a.preload, 20);
	cr_assert_eq(a.timeout_ms, 2500);
	cr_assert_eq(a.seed, 7);
	cr_assert_str_eq(a.purpose, "安否確認");

	/* The transport speaks HTTP/1.1 only: --http2 is refused, and
	 * says why. */
	cr_assert_eq(PARSE(&a, "read", "--http2"), KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert(strstr(err, "HTTP/1.1") != NULL, "%s", err);

	cr_assert_eq(PARSE(&a, "mixed", "--read-ratio", "0.25"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.workload, KZ_CLI_BENCH_MIXED);
	cr_assert_float_eq(a.read_ratio, 0.25, 1e-9);

	cr_assert_eq(PARSE(&a, "--help"), KZ_CLI_BENCH_ARGS_OK);
	cr_assert(a.help);
	cr_assert_eq(PARSE(&a, "-h"), KZ_CLI_BENCH_ARGS_OK);
	cr_assert(a.help);
}

Test(client_bench, certificates_and_environment, .init = clear_env)
{
	kz_cli_bench_args a;

	/* --pki moves every default, the CA included. */
	cr_assert_eq(PARSE(&a, "--pki", "/tmp/c/pki", "read"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.cacert, "/tmp/c/pki/ca.pem");
	cr_assert_str_eq(a.write_cert, "/tmp/c/pki/registrar.pem");
	cr_assert_str_eq(a.write_key, "/tmp/c/pki/registrar.key");
	cr_assert_str_eq(a.read_cert, "/tmp/c/pki/caseworker.pem");
	cr_assert_str_eq(a.read_key, "/tmp/c/pki/caseworker.key");

	/* One certificate for both; without --key it must hold its key. */
	cr_assert_eq(PARSE(&a, "--cert", "/x/op.pem", "mixed"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.write_cert, "/x/op.pem");
	cr_assert_str_eq(a.read_cert, "/x/op.pem");
	cr_assert_null(a.write_key);
	cr_assert_null(a.read_key);
	cr_assert_eq(PARSE(&a, "--cert", "/x/op.pem", "--key", "/x/op.key",
			   "mixed"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.write_key, "/x/op.key");
	cr_assert_str_eq(a.read_key, "/x/op.key");

	/* The specific options win over --cert; the other side keeps its
	 * default pair. */
	cr_assert_eq(PARSE(&a, "--write-cert", "/w.pem", "--write-key",
			   "/w.key", "read"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.write_cert, "/w.pem");
	cr_assert_str_eq(a.write_key, "/w.key");
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/caseworker.pem");
	cr_assert_str_eq(a.read_key, "var/cluster/pki/caseworker.key");
	cr_assert_eq(PARSE(&a, "--cert", "/c.pem", "--read-cert", "/r.pem",
			   "read"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.write_cert, "/c.pem");
	cr_assert_str_eq(a.read_cert, "/r.pem");

	setenv("KIZUNA_ENDPOINTS", "https://127.0.0.1:1,https://127.0.0.2:1", 1);
	setenv("KIZUNA_CACERT", "/etc/kizuna/ca.pem", 1);
	setenv("KIZUNA_CERT", "/etc/kizuna/operator.pem", 1);
	cr_assert_eq(PARSE(&a, "write"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.endpoints, "https://127.0.0.1:1,https://127.0.0.2:1");
	cr_assert_str_eq(a.cacert, "/etc/kizuna/ca.pem");
	/* KIZUNA_CERT names one role: not used for both sides. */
	cr_assert_str_eq(a.write_cert, "var/cluster/pki/registrar.pem");
	cr_assert_eq(PARSE(&a, "write", "--endpoints", "/e", "--cacert", "/ca"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.endpoints, "/e");
	cr_assert_str_eq(a.cacert, "/ca");
	clear_env();
}

Test(client_bench, usage_errors, .init = clear_env)
{
	kz_cli_bench_args a;
	const char *const *bad[] = {
	    (const char *const[]){NULL},                       /* no workload */
	    (const char *const[]){"scan", NULL},               /* unknown */
	    (const char *const[]){"write", "read", NULL},      /* two */
	    (const char *const[]){"write", "--nope", NULL},
	    (const char *const[]){"write", "-x", NULL},
	    (const char *const[]){"write", "--connections", NULL},
	    (const char *const[]){"write", "--connections=", NULL},
	    (const char *const[]){"write", "--connections", "0", NULL},
	    (const char *const[]){"write", "--connections", "4x", NULL},
	    (const char *const[]){"write", "--duration", "0", NULL},
	    (const char *const[]){"write", "--duration", "nan", NULL},
	    (const char *const[]){"write", "--duration", "inf", NULL},
	    (const char *const[]){"write", "--duration", "1", "--requests",
				  "5", NULL},
	    (const char *const[]){"write", "--record-bytes", "-1", NULL},
	    (const char *const[]){"write", "--preload", "10", NULL},
	    (const char *const[]){"write", "--consistency", "stale", NULL},
	    (const char *const[]){"read", "--read-ratio", "0.5", NULL},
	    (const char *const[]){"mixed", "--read-ratio", "1.5", NULL},
	    (const char *const[]){"read", "--consistency", "eventual", NULL},
	    (const char *const[]){"read", "--preload", "0", NULL},
	    (const char *const[]){"write", "--json=1", NULL},
	    (const char *const[]){"write", "--seed", "-3", NULL},
	    (const char *const[]){"read", "--purpose", "a\nb", NULL},
	    (const char *const[]){"photos", NULL},
	    (const char *const[]){"photo", "--read-ratio", "0.5", NULL},
	    (const char *const[]){"photo", "--photo-bytes", "3", NULL},
	    (const char *const[]){"photo", "--photo-bytes", "33554433", NULL},
	    (const char *const[]){"photo", "--photo-bytes", "-1", NULL},
	    (const char *const[]){"photo", "--photo-bytes", "30k", NULL},
	    (const char *const[]){"photo", "--photo-bytes=", NULL},
	    (const char *const[]){"read", "--photo-bytes", "1000", NULL},
	    (const char *const[]){"write", "--photo-bytes", "1000", NULL},
	    (const char *const[]){"mixed", "--photo-bytes", "1000", NULL},
	    (const char *const[]){"updates", NULL},
	    (const char *const[]){"update", "--consistency", "stale", NULL},
	    (const char *const[]){"update", "--read-ratio", "0.5", NULL},
	    (const char *const[]){"update", "--photo-bytes", "1000", NULL},
	    (const char *const[]){"update", "--preload", "0", NULL},
	    (const char *const[]){"update", "--cards", "/c", NULL},
	    (const char *const[]){"update", "--failover-cmd", "true", NULL},
	    (const char *const[]){"update", "--target", "etcd", NULL},
	};
	size_t i;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse_words(&a, bad[i]), KZ_CLI_BENCH_ARGS_USAGE,
			     "case %zu accepted", i);
		cr_assert_neq(err[0], '\0', "case %zu: no message", i);
	}
}

/* ---- the photo workload's command line ----------------------------------------- */

Test(client_bench, photo_workload_and_its_certificates, .init = clear_env)
{
	kz_cli_bench_args a;

	/* Photos are read by terminals: the reader's default follows. */
	cr_assert_eq(PARSE(&a, "photo"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.workload, KZ_CLI_BENCH_PHOTO);
	cr_assert_str_eq(kz_cli_bench_workload_name(a.workload), "photo");
	cr_assert_eq(a.photo_bytes, 30000);
	cr_assert_eq(a.preload, 1000);
	cr_assert_not(a.stale);
	cr_assert_str_eq(a.write_cert, "var/cluster/pki/registrar.pem");
	cr_assert_str_eq(a.write_key, "var/cluster/pki/registrar.key");
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/terminal.pem");
	cr_assert_str_eq(a.read_key, "var/cluster/pki/terminal.key");

	cr_assert_eq(PARSE(&a, "--pki", "/tmp/c/pki", "photo", "--preload",
			   "200", "--consistency=stale", "--photo-bytes",
			   "65536"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.read_cert, "/tmp/c/pki/terminal.pem");
	cr_assert_str_eq(a.read_key, "/tmp/c/pki/terminal.key");
	cr_assert_eq(a.preload, 200);
	cr_assert(a.stale);
	cr_assert_eq(a.photo_bytes, 65536);

	/* --read-cert is the photo reader's, as it is the victim reader's. */
	cr_assert_eq(PARSE(&a, "photo", "--read-cert", "/t.pem", "--read-key",
			   "/t.key"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.read_cert, "/t.pem");
	cr_assert_str_eq(a.read_key, "/t.key");
	cr_assert_str_eq(a.write_cert, "var/cluster/pki/registrar.pem");
	cr_assert_eq(PARSE(&a, "photo", "--cert", "/x/op.pem"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.read_cert, "/x/op.pem");
	cr_assert_null(a.read_key);

	/* The other reads keep the caseworker. */
	cr_assert_eq(PARSE(&a, "read"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/caseworker.pem");
}

Test(client_bench, photo_bytes_bounds, .init = clear_env)
{
	kz_cli_bench_args a;

	/* The JPEG magic alone, and the largest photo_max_bytes a node can
	 * be given. */
	cr_assert_eq(PARSE(&a, "photo", "--photo-bytes", "4"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.photo_bytes, KZ_CLI_BENCH_PHOTO_MIN);
	cr_assert_eq(PARSE(&a, "photo", "--photo-bytes=33554432"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.photo_bytes, KZ_CLI_BENCH_PHOTO_MAX);

	cr_assert_eq(PARSE(&a, "photo", "--photo-bytes", "3"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert(strstr(err, "--photo-bytes") != NULL, "%s", err);
	cr_assert(strstr(err, "4 to 33554432") != NULL, "%s", err);
	cr_assert_eq(PARSE(&a, "photo", "--photo-bytes", "33554433"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "read", "--photo-bytes", "1000"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert(strstr(err, "applies to photo") != NULL, "%s", err);
}

/* ---- photo bodies ------------------------------------------------------------- */

Test(client_bench, photo_body_is_a_jpeg_of_the_size_asked)
{
	static const unsigned char magic[4] = {0xff, 0xd8, 0xff, 0xe0};
	unsigned char buf[64];
	size_t lens[] = {4, 5, 11, 12, 13, 20, 60};
	size_t i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		/* Every byte asked for is written, none past them. */
		memset(buf, 0xaa, sizeof(buf));
		kz_cli_bench_photo_body(1, 0, buf, lens[i]);
		cr_assert(memcmp(buf, magic, 4) == 0, "len %zu", lens[i]);
		cr_assert_eq(buf[lens[i]], 0xaa, "len %zu: wrote past", lens[i]);
	}
	/* Random after the magic: 56 bytes are not all the canary. */
	memset(buf, 0xaa, sizeof(buf));
	kz_cli_bench_photo_body(1, 0, buf, 60);
	for (i = 4; i < 60 && buf[i] == 0xaa; i++)
		;
	cr_assert_lt(i, 60);
}

Test(client_bench, photo_body_by_seed_and_number)
{
	enum { LEN = 30000 };
	unsigned char *a = malloc(LEN), *b = malloc(LEN);
	cr_assert(a != NULL && b != NULL);

	kz_cli_bench_photo_body(7, 3, a, LEN);
	kz_cli_bench_photo_body(7, 3, b, LEN);
	cr_assert(memcmp(a, b, LEN) == 0, "same seed and number differ");

	/* Every photo different: by number within a run, by seed across
	 * runs, and not one photo shifted by a few bytes into another. */
	kz_cli_bench_photo_body(7, 4, b, LEN);
	cr_assert(memcmp(a + 4, b + 4, LEN - 4) != 0);
	cr_assert(memcmp(a + 4, b + 12, LEN - 12) != 0);
	cr_assert(memcmp(a + 12, b + 4, LEN - 12) != 0);
	kz_cli_bench_photo_body(8, 3, b, LEN);
	cr_assert(memcmp(a + 4, b + 4, LEN - 4) != 0);
	free(a);
	free(b);
}

/* A photo read's answer as kz_cli__on_resp keeps it: the first bytes in
 * resp, the whole length in resp_total. */
static void answer(kz_cli__slot *s, const unsigned char *body, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->req = KZ_CLI__REQ_PHOTO_GET;
	snprintf(s->url, sizeof(s->url), "https://n1/v1/photos/X");
	kz_cli__on_resp(s, (const char *)body, len);
}

Test(client_bench, photo_read_of_another_length_is_a_failure, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__slot s;
	kz_cli_bench_stats st;
	unsigned char *photo = malloc(30000);
	cr_assert_not_null(photo);
	cr_assert_eq(PARSE(&a, "photo"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	memset(&b, 0, sizeof(b));
	b.a = &a;
	kz_cli_bench_photo_body(1, 0, photo, 30000);

	/* Longer than resp: judged by the whole length and the magic. */
	answer(&s, photo, 30000);
	cr_assert(kz_cli__photo_ok(&b, &s));
	answer(&s, photo, 29999); /* cut */
	cr_assert_not(kz_cli__photo_ok(&b, &s));
	photo[0] = '{'; /* right length, not a JPEG */
	answer(&s, photo, 30000);
	cr_assert_not(kz_cli__photo_ok(&b, &s));

	/* Counted as requested, neither ok nor timed. */
	memset(&st, 0, sizeof(st));
	answer(&s, photo, 12);
	cr_assert_eq(kz_cli__account(&b, &st, &s, KZ_BH_OK, 200, 0, 5000, 1),
		     KZ_CLI_OK);
	cr_assert_eq(kz_cli__account(&b, &st, &s, KZ_BH_OK, 200, 0, 7000, 0),
		     KZ_CLI_OK);
	cr_assert_eq(st.requests, 2);
	cr_assert_eq(st.ok, 1);
	cr_assert_eq(st.bad_bodies, 1);
	cr_assert_eq(st.http_errors + st.transport_errors, 0);
	cr_assert_eq(st.n_lat, 1);
	cr_assert_eq(st.lat_ns[0], 7000);
	cr_assert(strstr(st.first_error, "12 bytes") != NULL, "%s",
		  st.first_error);
	free(st.lat_ns);
	free(photo);
}

/* ---- record bodies ------------------------------------------------------------- */

static size_t field_len(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return v != NULL ? json_string_length(v) : 0;
}

/* Checks one padded body against the rules of bench.h. */
static void check_body(const char *body, size_t len, size_t target, int capped)
{
	json_error_t jerr;
	json_t *o = json_loadb(body, len, 0, &jerr);
	const char *p;
	cr_assert_not_null(o, "not JSON: %s", jerr.text);
	cr_assert_eq(strlen(body), len);
	cr_assert_leq(field_len(o, "address"), KZ_CLI_BENCH_MAX_ADDRESS);
	cr_assert_leq(field_len(o, "contact"), KZ_CLI_BENCH_MAX_CONTACT);
	cr_assert_str_not_empty(json_string_value(json_object_get(o, "name")));
	if (capped) {
		/* Only the limits stopped it: the address is full, and so is
		 * the contact unless adding one would have overshot. */
		cr_assert_lt(len, target);
		cr_assert_eq(field_len(o, "address"), KZ_CLI_BENCH_MAX_ADDRESS);
		if (json_object_get(o, "contact") != NULL)
			cr_assert_eq(field_len(o, "contact"),
				     KZ_CLI_BENCH_MAX_CONTACT);
	} else {
		cr_assert_eq(len, target, "body %zu bytes, asked %zu", len,
			     target);
	}
	for (p = body; *p; p++)
		cr_assert((unsigned char)*p >= 0x20, "control byte in body");
	json_decref(o);
}

Test(client_bench, bodies_reach_the_size_or_the_limits)
{
	kz_cli_sample gen;
	uint64_t rng = 99;
	size_t targets[] = {700, 900, 1024, 1100, 4096};
	size_t t, i, capped_1024 = 0;
	kz_cli_sample_init(&gen, 1, 10);
	for (t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		for (i = 0; i < 300; i++) {
			json_t *v;
			char *body;
			size_t len;
			int capped;
			cr_assert_eq(kz_cli_sample_victim(&gen, &v), KZ_CLI_OK);
			cr_assert_eq(kz_cli_bench_victim_body(v, targets[t],
							      &rng, &body, &len,
							      &capped),
				     KZ_CLI_OK);
			check_body(body, len, targets[t], capped);
			if (targets[t] == 1024)
				capped_1024 += (size_t)capped;
			/* 700 and 900 bytes always fit; 4 KiB never does. */
			if (targets[t] <= 900)
				cr_assert_not(capped);
			if (targets[t] == 4096)
				cr_assert(capped);
			free(body);
			json_decref(v);
		}
	}
	/* 1024 is at the edge: some records reach it, some cannot. */
	cr_assert_gt(capped_1024, 0);
	cr_assert_lt(capped_1024, 300);
}

Test(client_bench, small_target_sends_the_plain_record)
{
	kz_cli_sample gen;
	uint64_t rng = 5;
	json_t *v;
	char *body, *plain;
	size_t len;
	int capped;
	kz_cli_sample_init(&gen, 3, 0);
	cr_assert_eq(kz_cli_sample_victim(&gen, &v), KZ_CLI_OK);
	plain = json_dumps(v, JSON_COMPACT);
	cr_assert_not_null(plain);
	cr_assert_eq(kz_cli_bench_victim_body(v, 0, &rng, &body, &len, &capped),
		     KZ_CLI_OK);
	cr_assert_str_eq(body, plain);
	cr_assert_not(capped);
	free(body);
	cr_assert_eq(kz_cli_bench_victim_body(v, 100, &rng, &body, &len,
					      &capped),
		     KZ_CLI_OK);
	cr_assert_str_eq(body, plain);
	cr_assert_not(capped);
	free(body);
	free(plain);
	json_decref(v);
}

Test(client_bench, contact_is_added_when_absent)
{
	json_t *v = json_pack("{s:s, s:s}", "name", "山田 太郎", "address",
			      "宮城県石巻市");
	uint64_t rng = 1;
	char *body;
	size_t len;
	int capped;
	json_t *o;
	cr_assert_not_null(v);
	cr_assert_eq(kz_cli_bench_victim_body(v, 700, &rng, &body, &len,
					      &capped),
		     KZ_CLI_OK);
	check_body(body, len, 700, capped);
	o = json_loads(body, 0, NULL);
	cr_assert_eq(field_len(o, "address"), KZ_CLI_BENCH_MAX_ADDRESS);
	cr_assert_gt(field_len(o, "contact"), 0);
	/* The real address stays in front of the filler. */
	cr_assert(strncmp(json_string_value(json_object_get(o, "address")),
			  "宮城県石巻市 ", strlen("宮城県石巻市 ")) == 0);
	json_decref(o);
	free(body);
	json_decref(v);
}

Test(client_bench, same_rng_same_body)
{
	kz_cli_sample g1, g2;
	uint64_t r1 = 11, r2 = 11;
	json_t *v1, *v2;
	char *b1, *b2;
	size_t l1, l2;
	int c1, c2;
	kz_cli_sample_init(&g1, 4, 10);
	kz_cli_sample_init(&g2, 4, 10);
	cr_assert_eq(kz_cli_sample_victim(&g1, &v1), KZ_CLI_OK);
	cr_assert_eq(kz_cli_sample_victim(&g2, &v2), KZ_CLI_OK);
	cr_assert_eq(kz_cli_bench_victim_body(v1, 800, &r1, &b1, &l1, &c1),
		     KZ_CLI_OK);
	cr_assert_eq(kz_cli_bench_victim_body(v2, 800, &r2, &b2, &l2, &c2),
		     KZ_CLI_OK);
	cr_assert_str_eq(b1, b2);
	free(b1);
	free(b2);
	json_decref(v1);
	json_decref(v2);
}

/* ---- summary ------------------------------------------------------------------- */

Test(client_bench, exit_code)
{
	kz_cli_bench_result r;
	memset(&r, 0, sizeof(r));
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_FAIL);
	r.op[KZ_CLI_BENCH_OP_READ].ok = 1;
	r.op[KZ_CLI_BENCH_OP_READ].http_errors = 5; /* answers, not failures */
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_OK);
	r.preload.transport_errors = 1;
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_FAIL);

	/* A photo that came back wrong fails the run; one refused by the
	 * photo preload only when the transport failed. */
	memset(&r, 0, sizeof(r));
	r.op[KZ_CLI_BENCH_OP_READ].ok = 10;
	r.photos.http_errors = 2;
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_OK);
	r.op[KZ_CLI_BENCH_OP_READ].bad_bodies = 1;
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_FAIL);
	r.op[KZ_CLI_BENCH_OP_READ].bad_bodies = 0;
	r.photos.transport_errors = 1;
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_FAIL);
}

Test(client_bench, json_summary_has_the_fields, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli_bench_result r;
	json_t *j, *lat;
	uint64_t lat_ns[4] = {1000000, 2000000, 3000000, 40000000};
	cr_assert_eq(PARSE(&a, "write"), KZ_CLI_BENCH_ARGS_OK);
	memset(&r, 0, sizeof(r));
	r.op[0].requests = 6;
	r.op[0].ok = 4;
	r.op[0].http_errors = 2;
	r.op[0].by_status[503] = 2;
	r.op[0].lat_ns = lat_ns;
	r.op[0].n_lat = 4;
	r.elapsed_s = 2.0;
	r.records.count = 6;
	r.records.bytes = 6 * 1000;
	r.n_endpoints = 1;
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "workload")),
			 "write");
	cr_assert_eq(json_integer_value(json_object_get(j, "connections")), 16);
	cr_assert_eq(json_integer_value(json_object_get(j, "ok")), 4);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "throughput_ops_s")), 2.0, 1e-9);
	cr_assert_eq(json_integer_value(json_object_get(
			 json_object_get(json_object_get(j, "errors"),
					 "by_status"),
			 "503")),
		     2);
	lat = json_object_get(j, "latency_ms");
	cr_assert_float_eq(json_real_value(json_object_get(lat, "p50")), 2.0,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(lat, "p99")), 40.0,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(lat, "p999")), 40.0,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(lat, "max")), 40.0,
			   1e-9);
	cr_assert_float_eq(
	    json_real_value(json_object_get(json_object_get(j, "record_bytes"),
					    "mean")),
	    1000.0, 1e-9);
	json_decref(j);
}

Test(client_bench, json_summary_of_a_photo_run, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli_bench_result r;
	json_t *j, *ph;
	uint64_t lat_ns[2] = {1000000, 3000000};
	cr_assert_eq(PARSE(&a, "photo", "--photo-bytes", "1000"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	memset(&r, 0, sizeof(r));
	r.op[KZ_CLI_BENCH_OP_READ].requests = 3;
	r.op[KZ_CLI_BENCH_OP_READ].ok = 2;
	r.op[KZ_CLI_BENCH_OP_READ].bad_bodies = 1;
	r.op[KZ_CLI_BENCH_OP_READ].body_bytes_in = 2 * 1000 + 10;
	r.op[KZ_CLI_BENCH_OP_READ].lat_ns = lat_ns;
	r.op[KZ_CLI_BENCH_OP_READ].n_lat = 2;
	r.elapsed_s = 2.0;
	r.photos.requests = r.photos.ok = 5;
	r.photos_s = 0.5;
	r.n_endpoints = 1;
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "workload")),
			 "photo");
	cr_assert_str_eq(json_string_value(json_object_get(j, "consistency")),
			 "linearizable");
	cr_assert_eq(json_integer_value(json_object_get(j, "photo_bytes")),
		     1000);
	cr_assert_eq(json_integer_value(json_object_get(j, "ok")), 2);
	cr_assert_eq(json_integer_value(json_object_get(
			 json_object_get(j, "errors"), "bad_body")),
		     1);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "throughput_ops_s")), 1.0, 1e-9);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "body_bytes_in_s")), 1005.0,
	    1e-9);
	ph = json_object_get(j, "photos");
	cr_assert_eq(json_integer_value(json_object_get(ph, "stored")), 5);
	cr_assert_float_eq(
	    json_real_value(json_object_get(ph, "throughput_ops_s")), 10.0,
	    1e-9);
	cr_assert_not_null(json_object_get(j, "preload"));
	json_decref(j);
}

/* ---- the identity workload ---------------------------------------------------------- */

Test(client_bench, identity_workload_command_line, .init = clear_env)
{
	kz_cli_bench_args a;

	/* Terminals check identities; cards default to the PKI's cards/. */
	cr_assert_eq(PARSE(&a, "identity"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.workload, KZ_CLI_BENCH_IDENTITY);
	cr_assert_str_eq(kz_cli_bench_workload_name(a.workload), "identity");
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/terminal.pem");
	cr_assert_str_eq(a.cards, "var/cluster/pki/cards");
	cr_assert_eq(PARSE(&a, "--pki", "/p", "identity", "--cards", "/c"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.cards, "/c");
	cr_assert_str_eq(a.read_key, "/p/terminal.key");
	/* Settings that would mean nothing are refused. */
	cr_assert_eq(PARSE(&a, "identity", "--preload", "10"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "identity", "--consistency", "stale"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "identity", "--record-bytes", "10"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "read", "--cards", "/c"), KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_eq(PARSE(&a, "photo", "--cards", "/c"),
		     KZ_CLI_BENCH_ARGS_USAGE);
}

static void json_answer(kz_cli__slot *s, const char *body)
{
	memset(s, 0, sizeof(*s));
	kz_cli__on_resp(s, (const char *)body, strlen(body));
}

Test(client_bench, identity_answers_are_read)
{
	kz_cli__slot s;
	json_answer(&s, "{\"challenge_id\":\"0123456789abcdef0123456789abcdef\","
			"\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\","
			"\"expires\":\"2026-11-24T00:00:00Z\"}");
	cr_assert(kz_cli__take_challenge(&s));
	cr_assert_str_eq(s.challenge_id, "0123456789abcdef0123456789abcdef");
	for (int i = 0; i < 32; i++)
		cr_assert_eq(s.nonce[i], i);
	/* A nonce that is not 32 bytes, or no id: not a challenge. */
	json_answer(&s, "{\"challenge_id\":\"x\",\"nonce\":\"AAEC\"}");
	cr_assert_not(kz_cli__take_challenge(&s));
	json_answer(&s, "{\"nonce\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"}");
	cr_assert_not(kz_cli__take_challenge(&s));
	json_answer(&s, "{\"verified\":true,\"assurance\":\"high\"}");
	cr_assert(kz_cli__verified(&s));
	json_answer(&s, "{\"verified\":false,\"reason\":\"revoked\"}");
	cr_assert_not(kz_cli__verified(&s));
	json_answer(&s, "not json");
	cr_assert_not(kz_cli__verified(&s));
}

/* ---- the update workload ---------------------------------------------------------- */

Test(client_bench, update_workload_command_line, .init = clear_env)
{
	kz_cli_bench_args a;

	/* The read workloads' preload, then registrar writes. */
	cr_assert_eq(PARSE(&a, "update"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.workload, KZ_CLI_BENCH_UPDATE);
	cr_assert_str_eq(kz_cli_bench_workload_name(a.workload), "update");
	cr_assert_eq(a.preload, 1000);
	cr_assert_eq(a.record_bytes, 1024);
	cr_assert_eq(a.target, KZ_CLI_BENCH_TARGET_KIZUNA);
	cr_assert_str_eq(a.write_cert, "var/cluster/pki/registrar.pem");
	cr_assert_str_eq(a.write_key, "var/cluster/pki/registrar.key");

	/* What deploy/soak runs. */
	cr_assert_eq(PARSE(&a, "--pki", "/s/pki", "--endpoints", "/s/endpoints",
			   "update", "--preload", "2000", "--connections",
			   "16", "--duration=1200", "--record-bytes", "600",
			   "--json", "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.preload, 2000);
	cr_assert_eq(a.connections, 16);
	cr_assert_float_eq(a.duration_s, 1200.0, 1e-9);
	cr_assert_eq(a.record_bytes, 600);
	cr_assert_str_eq(a.write_cert, "/s/pki/registrar.pem");
	cr_assert(a.json && a.quiet);
	cr_assert_eq(PARSE(&a, "update", "--requests", "500"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.requests, 500);

	/* It reads nothing: a consistency would mean nothing. */
	cr_assert_eq(PARSE(&a, "update", "--consistency", "linearizable"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert(strstr(err, "--consistency") != NULL, "%s", err);
	/* Kizuna's records only: refused against etcd, and said so. */
	cr_assert_eq(PARSE(&a, "update", "--target", "etcd"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert(strstr(err, "etcd") != NULL && strstr(err, "update") != NULL,
		  "%s", err);
	/* write keeps refusing --preload, and says where it applies. */
	cr_assert_eq(PARSE(&a, "write", "--preload", "10"),
		     KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert(strstr(err, "update") != NULL, "%s", err);
}

/* Checks one PATCH body: status, address and contact only, within the
 * limits, and the size asked for unless capped. */
static void check_update(const char *body, size_t len, size_t target,
			 int capped, const json_t *victim)
{
	json_error_t jerr;
	json_t *o = json_loadb(body, len, 0, &jerr);
	const char *key;
	json_t *v;
	cr_assert_not_null(o, "not JSON: %s", jerr.text);
	cr_assert_eq(strlen(body), len);
	json_object_foreach(o, key, v)
	{
		cr_assert(strcmp(key, "status") == 0 ||
			      strcmp(key, "address") == 0 ||
			      strcmp(key, "contact") == 0,
			  "field %s in a PATCH body", key);
		cr_assert(json_is_string(v), "%s is not a string", key);
	}
	cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
			 json_string_value(json_object_get(victim, "status")));
	cr_assert_leq(field_len(o, "address"), KZ_CLI_BENCH_MAX_ADDRESS);
	cr_assert_leq(field_len(o, "contact"), KZ_CLI_BENCH_MAX_CONTACT);
	if (capped) {
		cr_assert_lt(len, target);
		cr_assert_eq(field_len(o, "address"), KZ_CLI_BENCH_MAX_ADDRESS);
		cr_assert_eq(field_len(o, "contact"), KZ_CLI_BENCH_MAX_CONTACT);
	} else {
		cr_assert_eq(len, target, "body %zu bytes, asked %zu", len,
			     target);
	}
	json_decref(o);
}

Test(client_bench, update_bodies_reach_the_size_or_the_limits)
{
	kz_cli_sample gen;
	uint64_t rng = 17;
	size_t targets[] = {400, 700, 780, 1024};
	size_t t, i;
	kz_cli_sample_init(&gen, 1, 10);
	for (t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		for (i = 0; i < 200; i++) {
			json_t *v;
			char *body, *before, *after;
			size_t len;
			int capped;
			cr_assert_eq(kz_cli_sample_victim(&gen, &v), KZ_CLI_OK);
			before = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
			cr_assert_eq(kz_cli_bench_update_body(v, targets[t],
							      &rng, &body, &len,
							      &capped),
				     KZ_CLI_OK);
			check_update(body, len, targets[t], capped, v);
			/* Up to about 800 bytes always fit; 1 KiB never. */
			if (targets[t] <= 780)
				cr_assert_not(capped, "%zu capped at %zu",
					      targets[t], len);
			else
				cr_assert(capped);
			/* The sample victim is the caller's, untouched. */
			after = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
			cr_assert_str_eq(before, after);
			free(before);
			free(after);
			free(body);
			json_decref(v);
		}
	}
}

Test(client_bench, update_bodies_differ)
{
	kz_cli_sample gen;
	uint64_t rng = 3;
	json_t *v;
	char *b1, *b2;
	size_t l1, l2;
	int c1, c2;
	kz_cli_sample_init(&gen, 2, 10);
	cr_assert_eq(kz_cli_sample_victim(&gen, &v), KZ_CLI_OK);
	/* Same person twice: the filler still makes two different
	 * rewrites of the record. */
	cr_assert_eq(kz_cli_bench_update_body(v, 600, &rng, &b1, &l1, &c1),
		     KZ_CLI_OK);
	cr_assert_eq(kz_cli_bench_update_body(v, 600, &rng, &b2, &l2, &c2),
		     KZ_CLI_OK);
	cr_assert_eq(l1, l2);
	cr_assert_str_neq(b1, b2);
	free(b1);
	free(b2);
	/* 0: the fields as they are, unpadded. */
	cr_assert_eq(kz_cli_bench_update_body(v, 0, &rng, &b1, &l1, &c1),
		     KZ_CLI_OK);
	cr_assert_not(c1);
	cr_assert_lt(l1, 300);
	free(b1);
	json_decref(v);
}

Test(client_bench, update_request_is_a_patch_of_a_preloaded_id,
     .init = clear_env)
{
	/* The slot's request handed to the transport, whose loop is never
	 * run: no network. */
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli__slot *s;
	json_t *o;
	size_t k;

	cr_assert_eq(PARSE(&a, "update", "--record-bytes", "600",
			   "--endpoints", "https://127.0.0.1:9", "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	s = bench_fixture(&a, &b, &ph, st, &rec, 1);
	kz_cli__pool_add(&b, "01AAAAAAAAAAAAAAAAAAAAAAAA", 26);
	kz_cli__pool_add(&b, "01BBBBBBBBBBBBBBBBBBBBBBBB", 26);
	ph.name = "update";
	ph.updates = 1;

	for (k = 0; k < 20; k++) {
		kz_cli__start(&b, s);
		cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
		cr_assert(s->busy);
		cr_assert_eq(s->req, KZ_CLI__REQ_VICTIM_PATCH);
		cr_assert_eq(s->op, KZ_CLI_BENCH_OP_WRITE);
		cr_assert_lt(s->victim, 2);
		cr_assert_str_eq(s->url, s->victim == 0
					     ? "https://127.0.0.1:9/v1/victims/"
					       "01AAAAAAAAAAAAAAAAAAAAAAAA"
					     : "https://127.0.0.1:9/v1/victims/"
					       "01BBBBBBBBBBBBBBBBBBBBBBBB");
		o = json_loads(s->body, 0, NULL);
		cr_assert_not_null(o, "%s", s->body);
		cr_assert_null(json_object_get(o, "name"));
		cr_assert_not_null(json_object_get(o, "status"));
		cr_assert_eq(strlen(s->body), 600);
		json_decref(o);
		kz_bh_abort(s->h[KZ_CLI_BENCH_OP_WRITE]);
		s->busy = 0;
	}
	/* The PATCH bodies are the phase's records; no reader was made. */
	cr_assert_eq(rec.count, 20);
	cr_assert_eq(rec.bytes, 20 * 600);
	cr_assert_eq(ph.sent, 20);
	cr_assert_null(s->h[KZ_CLI_BENCH_OP_READ]);

	/* Nothing preloaded: the run stops rather than POST new records. */
	b.n_ids = 0;
	kz_cli__start(&b, s);
	cr_assert_eq(b.fatal, KZ_CLI_EINVAL);
	cr_assert_not(s->busy);
	cr_assert_eq(ph.sent, 20);

	kz_cli__close(&b);
}

Test(client_bench, json_summary_of_an_update_run, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli_bench_result r;
	json_t *j, *pre;
	uint64_t lat_ns[2] = {2000000, 4000000};
	cr_assert_eq(PARSE(&a, "update", "--preload", "50"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	memset(&r, 0, sizeof(r));
	r.op[KZ_CLI_BENCH_OP_WRITE].requests = 3;
	r.op[KZ_CLI_BENCH_OP_WRITE].ok = 2;
	r.op[KZ_CLI_BENCH_OP_WRITE].http_errors = 1;
	r.op[KZ_CLI_BENCH_OP_WRITE].by_status[404] = 1;
	r.op[KZ_CLI_BENCH_OP_WRITE].lat_ns = lat_ns;
	r.op[KZ_CLI_BENCH_OP_WRITE].n_lat = 2;
	r.elapsed_s = 1.0;
	r.preload.requests = r.preload.ok = 50;
	r.preload_s = 0.5;
	r.pool_ids = 50;
	r.records.count = 3;
	r.records.bytes = 3 * 800;
	r.records.capped = 3;
	r.n_endpoints = 1;
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	cr_assert_str_eq(json_string_value(json_object_get(j, "workload")),
			 "update");
	cr_assert(json_is_null(json_object_get(j, "consistency")));
	cr_assert_eq(json_integer_value(json_object_get(j, "update_ids")), 50);
	cr_assert_eq(json_integer_value(json_object_get(j, "ok")), 2);
	cr_assert_eq(json_integer_value(json_object_get(
			 json_object_get(json_object_get(j, "errors"),
					 "by_status"),
			 "404")),
		     1);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "throughput_ops_s")), 2.0, 1e-9);
	cr_assert_eq(json_integer_value(json_object_get(
			 json_object_get(j, "record_bytes"), "capped")),
		     3);
	pre = json_object_get(j, "preload");
	cr_assert_eq(json_integer_value(json_object_get(pre, "records")), 50);
	cr_assert_null(json_object_get(j, "reads"));
	json_decref(j);
	/* The text summary says what was updated, and how big. */
	{
		char *text = NULL;
		size_t tlen = 0;
		FILE *f = open_memstream(&text, &tlen);
		cr_assert_not_null(f);
		kz_cli_bench_report_text(f, &a, &r);
		fclose(f);
		cr_assert(strstr(text, "workload      update (PATCH") != NULL,
			  "%s", text);
		cr_assert(strstr(text, "50 ids to update") != NULL, "%s", text);
		cr_assert(strstr(text, "update bytes  800 mean") != NULL, "%s",
			  text);
		cr_assert(strstr(text, "3 of 3 updates capped") != NULL, "%s",
			  text);
		cr_assert(strstr(text, "reads") == NULL, "%s", text);
		free(text);
	}
	/* An update that succeeded is a run that worked. */
	cr_assert_eq(kz_cli_bench_exit_code(&r), KZ_CLI_BENCH_EXIT_OK);
}

/* ---- the search, payout and day workloads: command lines ------------------------- */

Test(client_bench, search_payout_day_command_lines, .init = clear_env)
{
	kz_cli_bench_args a;
	static const unsigned def[KZ_CLI_BENCH_KIND_COUNT] = {50, 25, 12,
							       10, 3,  0};

	/* search: read's preload and consistency, the caseworker reads. */
	cr_assert_eq(PARSE(&a, "search", "--consistency", "stale", "--preload",
			   "300"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.workload, KZ_CLI_BENCH_SEARCH);
	cr_assert_str_eq(kz_cli_bench_workload_name(a.workload), "search");
	cr_assert(a.stale);
	cr_assert_eq(a.preload, 300);
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/caseworker.pem");
	cr_assert_null(a.payout_cert);

	/* payout: the payout and operator roles from --pki, or as given
	 * (a certificate given alone must hold its key). */
	cr_assert_eq(PARSE(&a, "--pki", "/p", "payout"), KZ_CLI_BENCH_ARGS_OK,
		     "%s", err);
	cr_assert_str_eq(kz_cli_bench_workload_name(a.workload), "payout");
	cr_assert_str_eq(a.payout_cert, "/p/payout.pem");
	cr_assert_str_eq(a.payout_key, "/p/payout.key");
	cr_assert_str_eq(a.operator_cert, "/p/operator.pem");
	cr_assert_str_eq(a.operator_key, "/p/operator.key");
	cr_assert_str_eq(a.write_cert, "/p/registrar.pem");
	cr_assert_eq(PARSE(&a, "payout", "--payout-cert", "/x.pem",
			   "--operator-cert=/o.pem", "--operator-key", "/o.key"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(a.payout_cert, "/x.pem");
	cr_assert_null(a.payout_key);
	cr_assert_str_eq(a.operator_cert, "/o.pem");
	cr_assert_str_eq(a.operator_key, "/o.key");

	/* day: the default mix, no cards and so no identity checks. */
	cr_assert_eq(PARSE(&a, "day"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_str_eq(kz_cli_bench_workload_name(a.workload), "day");
	cr_assert_eq(memcmp(a.mix, def, sizeof(def)), 0);
	cr_assert_null(a.cards);
	cr_assert_str_eq(a.read_cert, "var/cluster/pki/caseworker.pem");
	cr_assert_str_eq(a.payout_cert, "var/cluster/pki/payout.pem");
	/* With cards, identity checks join at weight 5. */
	cr_assert_eq(PARSE(&a, "day", "--cards", "/c"), KZ_CLI_BENCH_ARGS_OK,
		     "%s", err);
	cr_assert_str_eq(a.cards, "/c");
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_IDENTITY], 5);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_READ], 50);
	/* --mix replaces the whole mix. */
	cr_assert_eq(PARSE(&a, "day", "--mix", "read=80,write=20",
			   "--consistency=stale"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_READ], 80);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_WRITE], 20);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_SEARCH], 0);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_PAYOUT], 0);
	cr_assert(a.stale);
	cr_assert_eq(PARSE(&a, "day", "--cards", "/c", "--mix",
			   "identity=1,note=0,search=9"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_IDENTITY], 1);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_SEARCH], 9);
}

Test(client_bench, search_payout_day_usage_errors, .init = clear_env)
{
	kz_cli_bench_args a;
	static const struct {
		const char *words[6];
		const char *says; /* in the message */
	} bad[] = {
	    {{"searches"}, "search, payout or day"},
	    {{"search", "--read-ratio", "0.5"}, "mixed"},
	    {{"search", "--photo-bytes", "10"}, "photo"},
	    {{"search", "--cards", "/c"}, "identity and day"},
	    {{"search", "--mix", "read=1"}, "day"},
	    {{"search", "--payout-cert", "/p"}, "payout and day"},
	    {{"search", "--target", "etcd"}, "etcd"},
	    {{"search", "--failover-cmd", "true"}, "write"},
	    {{"search", "--preload", "0"}, "preload"},
	    {{"payout", "--consistency", "stale"}, "payout only writes"},
	    {{"payout", "--mix", "read=1"}, "day"},
	    {{"payout", "--cards", "/c"}, "identity and day"},
	    {{"read", "--operator-key", "/k"}, "payout and day"},
	    {{"write", "--payout-key", "/k"}, "payout and day"},
	    {{"day", "--target", "etcd"}, "etcd"},
	    {{"day", "--mix", "identity=5"}, "--cards"},
	    {{"day", "--cards", "/c", "--mix", "read=5"}, "no weight"},
	    {{"day", "--mix", "read=0,write=0"}, "every weight is 0"},
	    {{"day", "--mix", "reads=5"}, "unknown kind 'reads'"},
	    {{"day", "--mix", "read=5,read=6"}, "twice"},
	    {{"day", "--mix", "read"}, "KIND=WEIGHT"},
	    {{"day", "--mix", "read=5,"}, "KIND=WEIGHT"},
	    {{"day", "--mix", "read="}, "weight from 0 to 1000"},
	    {{"day", "--mix", "read=1001"}, "weight from 0 to 1000"},
	    {{"day", "--mix", "read=-1"}, "weight from 0 to 1000"},
	    {{"day", "--mix", "read=5x"}, "weight from 0 to 1000"},
	    {{"day", "--mix", "read= 5"}, "weight from 0 to 1000"},
	    {{"day", "--mix="}, "needs a value"},
	};
	size_t i;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *w[7] = {0};
		memcpy(w, bad[i].words, sizeof(bad[i].words));
		cr_assert_eq(parse_words(&a, w), KZ_CLI_BENCH_ARGS_USAGE,
			     "case %zu accepted", i);
		cr_assert(strstr(err, bad[i].says) != NULL,
			  "case %zu: '%s' does not say '%s'", i, err,
			  bad[i].says);
	}
}

/* ---- the day's mix ---------------------------------------------------------------- */

Test(client_bench, mix_parse_reads_every_kind)
{
	unsigned w[KZ_CLI_BENCH_KIND_COUNT];
	cr_assert_eq(kz_cli_bench_mix_parse("read=50,search=25,write=12,"
					    "note=10,payout=3,identity=1000",
					    w, err, sizeof(err)),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(w[KZ_CLI_BENCH_KIND_READ], 50);
	cr_assert_eq(w[KZ_CLI_BENCH_KIND_SEARCH], 25);
	cr_assert_eq(w[KZ_CLI_BENCH_KIND_WRITE], 12);
	cr_assert_eq(w[KZ_CLI_BENCH_KIND_NOTE], 10);
	cr_assert_eq(w[KZ_CLI_BENCH_KIND_PAYOUT], 3);
	cr_assert_eq(w[KZ_CLI_BENCH_KIND_IDENTITY], 1000);
	for (int k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++)
		cr_assert_str_neq(kz_cli_bench_kind_name((kz_cli_bench_kind)k),
				  "none");
	cr_assert_str_eq(kz_cli_bench_kind_name(KZ_CLI_BENCH_KIND_COUNT),
			 "none");
}

Test(client_bench, mix_pick_follows_the_weights)
{
	unsigned w[KZ_CLI_BENCH_KIND_COUNT] = {50, 25, 12, 10, 3, 0};
	unsigned long got[KZ_CLI_BENCH_KIND_COUNT + 1] = {0};
	uint64_t rng = 42, again = 42;
	const unsigned long n = 200000;
	unsigned long i;
	int k;

	for (i = 0; i < n; i++)
		got[kz_cli_bench_mix_pick(w, &rng)]++;
	/* Each share within half a percentage point of its weight (the
	 * standard error at 200,000 draws is at most 0.11 points), and a
	 * kind of weight 0 never. */
	for (k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++)
		cr_assert(fabs(100.0 * (double)got[k] / (double)n - w[k]) < 0.5,
			  "%s: %lu of %lu for weight %u",
			  kz_cli_bench_kind_name((kz_cli_bench_kind)k), got[k],
			  n, w[k]);
	cr_assert_eq(got[KZ_CLI_BENCH_KIND_IDENTITY], 0);
	cr_assert_eq(got[KZ_CLI_BENCH_KIND_COUNT], 0);
	/* The same seed draws the same kinds. */
	rng = 42;
	for (i = 0; i < 1000; i++)
		cr_assert_eq(kz_cli_bench_mix_pick(w, &rng),
			     kz_cli_bench_mix_pick(w, &again));
	/* Nothing to draw from. */
	memset(w, 0, sizeof(w));
	cr_assert_eq(kz_cli_bench_mix_pick(w, &rng), KZ_CLI_BENCH_KIND_COUNT);
}

/* ---- search queries --------------------------------------------------------------- */

Test(client_bench, search_queries_of_one_person)
{
	char q[256];
	const char *name = "佐藤 和子", *kana = "さとう かずこ";
	static const char *const want[KZ_CLI_BENCH_Q_COUNT] = {
	    "さとう", "佐藤和子", "さとう かずこ", "和子 佐藤", "Kazuko Satou"};
	for (int k = 0; k < KZ_CLI_BENCH_Q_COUNT; k++) {
		int n = kz_cli_bench_search_query((kz_cli_bench_query)k, name,
						  kana, q, sizeof(q));
		cr_assert_eq(n, (int)strlen(want[k]), "%s: %s",
			     kz_cli_bench_query_name((kz_cli_bench_query)k), q);
		cr_assert_str_eq(q, want[k]);
		/* Only the family name alone may find a page without them. */
		cr_assert_eq(kz_cli_bench_query_full((kz_cli_bench_query)k),
			     k != KZ_CLI_BENCH_Q_FAMILY_KANA);
	}
	/* Names without the family/given shape, and a buffer too small. */
	cr_assert_eq(kz_cli_bench_search_query(KZ_CLI_BENCH_Q_KANJI, "佐藤和子",
					       kana, q, sizeof(q)),
		     -1);
	cr_assert_eq(kz_cli_bench_search_query(KZ_CLI_BENCH_Q_KANJI, name,
					       "さとうかずこ", q, sizeof(q)),
		     -1);
	cr_assert_eq(kz_cli_bench_search_query(KZ_CLI_BENCH_Q_KANJI,
					       "佐藤 和 子", kana, q, sizeof(q)),
		     -1);
	cr_assert_eq(kz_cli_bench_search_query(KZ_CLI_BENCH_Q_KANA_FULL, name,
					       kana, q, 10),
		     -1);
	cr_assert_eq(kz_cli_bench_search_query(KZ_CLI_BENCH_Q_ROMAJI, name,
					       "佐藤 和子", q, sizeof(q)),
		     -1);
}

Test(client_bench, romaji_is_hepburn_as_typed)
{
	static const char *const cases[][2] = {
	    {"さとう かずこ", "Satou Kazuko"},
	    {"けんいち", "Ken'ichi"}, /* not け-に-ち */
	    {"しんや", "Shin'ya"},
	    {"れん", "Ren"},
	    {"こんの", "Konno"},
	    {"しょうた", "Shouta"},
	    {"きょうこ", "Kyouko"},
	    {"ちよ", "Chiyo"},
	    {"じゅんこ", "Junko"},
	    {"ちゃ", "Cha"},
	    {"はっとり", "Hattori"},
	    {"まっちゃ", "Matcha"},
	    {"つむぎ", "Tsumugi"},
	    {"ふじ", "Fuji"},
	    {"おのでら みちこ", "Onodera Michiko"},
	    {"サトウ", "Satou"},  /* katakana */
	    {"サトー", "Satoo"},  /* the long mark repeats the vowel */
	    {"ファン", "Fan"},    /* a small vowel changes the one before */
	    {"あっ", "A"},        /* っ with nothing after it */
	};
	char out[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = kz_cli_bench_romaji(cases[i][0], out, sizeof(out));
		cr_assert_eq(n, (int)strlen(cases[i][1]), "%s: '%s'",
			     cases[i][0], out);
		cr_assert_str_eq(out, cases[i][1], "%s", cases[i][0]);
	}
	/* Not kana, and too small a buffer. */
	cr_assert_eq(kz_cli_bench_romaji("佐藤", out, sizeof(out)), -1);
	cr_assert_eq(kz_cli_bench_romaji("satou", out, sizeof(out)), -1);
	cr_assert_eq(kz_cli_bench_romaji("さとう", out, 4), -1);
	cr_assert_eq(kz_cli_bench_romaji("\xe3\x81", out, sizeof(out)), -1);
}

Test(client_bench, every_sample_person_gives_every_query)
{
	/* The tables of the sample (sample.c) hold only kana the romaji
	 * table knows, and every name has the family/given shape. */
	kz_cli_sample gen;
	char q[256];
	kz_cli_sample_init(&gen, 7, 10);
	for (int i = 0; i < 3000; i++) {
		json_t *v;
		cr_assert_eq(kz_cli_sample_victim(&gen, &v), KZ_CLI_OK);
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *kana =
		    json_string_value(json_object_get(v, "name_kana"));
		for (int k = 0; k < KZ_CLI_BENCH_Q_COUNT; k++)
			cr_assert_gt(kz_cli_bench_search_query(
					 (kz_cli_bench_query)k, name, kana, q,
					 sizeof(q)),
				     0, "%s / %s: no %s query", name, kana,
				     kz_cli_bench_query_name(
					 (kz_cli_bench_query)k));
		json_decref(v);
	}
}

Test(client_bench, query_kinds_by_seed)
{
	unsigned long got[KZ_CLI_BENCH_Q_COUNT] = {0};
	uint64_t rng = 9, again = 9;
	const unsigned long n = 100000;
	static const unsigned share[KZ_CLI_BENCH_Q_COUNT] = {25, 25, 20, 15,
							      15};
	for (unsigned long i = 0; i < n; i++)
		got[kz_cli_bench_query_pick(&rng)]++;
	for (int k = 0; k < KZ_CLI_BENCH_Q_COUNT; k++)
		cr_assert(fabs(100.0 * (double)got[k] / (double)n - share[k]) <
			      0.7,
			  "%s: %lu of %lu",
			  kz_cli_bench_query_name((kz_cli_bench_query)k),
			  got[k], n);
	rng = 9;
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(kz_cli_bench_query_pick(&rng),
			     kz_cli_bench_query_pick(&again));
	cr_assert_str_eq(kz_cli_bench_query_name(KZ_CLI_BENCH_Q_COUNT), "none");
}

/* A day-like run set up by hand (no network): three kept people, the
 * search and payout tallies wired to r. */
static kz_cli__slot *kinds_fixture(kz_cli_bench_args *a, kz_cli__bench *b,
				   kz_cli__phase *ph, kz_cli_bench_stats st[2],
				   kz_cli_bench_records *rec,
				   kz_cli_bench_result *r)
{
	static const char *const people[][5] = {
	    {"01AAAAAAAAAAAAAAAAAAAAAAAA", "佐藤 和子", "さとう かずこ",
	     "bT-h-000002", "zenkai"},
	    {"01BBBBBBBBBBBBBBBBBBBBBBBB", "阿部 健一", "あべ けんいち",
	     "bT-h-000001", "chukibo_hankai"},
	    {"01CCCCCCCCCCCCCCCCCCCCCCCC", "佐藤 博", "さとう ひろし",
	     "bT-h-000002", "zenkai"},
	    {"01DDDDDDDDDDDDDDDDDDDDDDDD", "千葉 陽菜", "ちば ひな",
	     "bT-h-000003", "hankai"},
	};
	kz_cli__slot *s = bench_fixture(a, b, ph, st, rec, 1);
	char body[512];
	memset(r, 0, sizeof(*r));
	b->keep_people = 1;
	b->search_res = &r->search;
	b->payout_res = &r->payouts;
	snprintf(b->hh_tag, sizeof(b->hh_tag), "bT");
	memcpy(b->mix, a->mix, sizeof(b->mix));
	for (size_t i = 0; i < sizeof(people) / sizeof(people[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"id\":\"%s\",\"version\":3,\"name\":\"%s\","
			 "\"name_kana\":\"%s\",\"household_id\":\"%s\","
			 "\"damage\":\"%s\"}",
			 people[i][0], people[i][1], people[i][2], people[i][3],
			 people[i][4]);
		memset(s->resp, 0, sizeof(s->resp));
		s->resp_len = 0;
		kz_cli__on_resp(s, body, strlen(body));
		kz_cli__keep_id(b, s);
	}
	cr_assert_eq(b->n_ids, 4);
	ph->name = "test";
	ph->kinds = r->kinds;
	return s;
}

/* The answer of slot s's request req, as the transport hands it (the
 * slot's connections are kept, unlike json_answer's). */
static void slot_answer(kz_cli__slot *s, enum kz_cli__req req,
			const char *body)
{
	s->resp_len = 0;
	s->resp_total = 0;
	s->whole_len = 0;
	s->whole_cut = 0;
	s->why[0] = '\0';
	s->req = req;
	kz_cli__on_resp(s, body, strlen(body));
}

static void search_answer(kz_cli__slot *s, const char *body)
{
	slot_answer(s, KZ_CLI__REQ_SEARCH, body);
}

Test(client_bench, kept_people_and_search_requests, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli_bench_result r;
	kz_cli__slot *s;
	char first[KZ_CLI__URL_MAX];

	cr_assert_eq(PARSE(&a, "search", "--endpoints", "https://127.0.0.1:9",
			   "--consistency", "stale", "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	s = kinds_fixture(&a, &b, &ph, st, &rec, &r);
	/* Each id keeps its person. */
	cr_assert_str_eq(b.ids[1], "01BBBBBBBBBBBBBBBBBBBBBBBB");
	cr_assert_str_eq(b.people[1].name, "阿部 健一");
	cr_assert_str_eq(b.people[1].kana, "あべ けんいち");
	cr_assert_str_eq(b.people[1].household, "bT-h-000001");
	cr_assert_str_eq(b.people[1].damage, "chukibo_hankai");

	for (int i = 0; i < 200; i++) {
		kz_cli__start(&b, s);
		cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
		cr_assert(s->busy);
		cr_assert_eq(s->req, KZ_CLI__REQ_SEARCH);
		cr_assert_eq(s->op, KZ_CLI_BENCH_OP_READ);
		cr_assert_eq(s->kind, KZ_CLI_BENCH_KIND_SEARCH);
		cr_assert_lt(s->person, 4);
		/* A GET of the register's search, the query encoded. */
		cr_assert(strncmp(s->url, "https://127.0.0.1:9/v1/victims?q=",
				  33) == 0,
			  "%s", s->url);
		cr_assert(strstr(s->url, "&consistency=stale") != NULL);
		cr_assert(strpbrk(s->url + 33, " \x80\xe3") == NULL, "%s",
			  s->url);
		if (i == 0)
			memcpy(first, s->url, sizeof(first));
		kz_bh_abort(s->h[KZ_CLI_BENCH_OP_READ]);
		s->busy = 0;
	}
	/* Every kind of query was sent, and counted. */
	for (int k = 0; k < KZ_CLI_BENCH_Q_COUNT; k++)
		cr_assert_gt(r.search.by_query[k], 0, "%s",
			     kz_cli_bench_query_name((kz_cli_bench_query)k));
	/* The same seed makes the same first query. */
	b.rng = 1;
	kz_cli__start(&b, s);
	cr_assert_str_eq(s->url, first);
	kz_bh_abort(s->h[KZ_CLI_BENCH_OP_READ]);
	s->busy = 0;
	/* Queries go out percent-encoded. */
	{
		char enc[64];
		cr_assert_eq(kz_cli__url_encode("Ken'ichi Abe", enc,
						sizeof(enc)),
			     0);
		cr_assert_str_eq(enc, "Ken%27ichi%20Abe");
		cr_assert_eq(kz_cli__url_encode("佐", enc, sizeof(enc)), 0);
		cr_assert_str_eq(enc, "%E4%BD%90");
		cr_assert_eq(kz_cli__url_encode("abcd", enc, 4), -1);
	}
	kz_cli__close(&b);
}

Test(client_bench, search_answers_are_judged, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2], k;
	kz_cli_bench_records rec;
	kz_cli_bench_result r;
	kz_cli__slot *s;
	const char *with =
	    "{\"items\":[{\"id\":\"01CCCCCCCCCCCCCCCCCCCCCCCC\",\"name\":\"佐藤 博\"},"
	    "{\"id\":\"01AAAAAAAAAAAAAAAAAAAAAAAA\",\"name\":\"佐藤 和子\"}],"
	    "\"next_cursor\":null}";
	const char *without =
	    "{\"items\":[{\"id\":\"01CCCCCCCCCCCCCCCCCCCCCCCC\",\"name\":\"佐藤 博\"}],"
	    "\"next_cursor\":null}";
	const char *goes_on =
	    "{\"items\":[{\"id\":\"01CCCCCCCCCCCCCCCCCCCCCCCC\"}],"
	    "\"next_cursor\":\"01CCCCCCCCCCCCCCCCCCCCCCCC\"}";

	cr_assert_eq(PARSE(&a, "search", "--endpoints", "https://127.0.0.1:9",
			   "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	s = kinds_fixture(&a, &b, &ph, st, &rec, &r);
	s->person = 0; /* 佐藤 和子 */
	s->query = KZ_CLI_BENCH_Q_KANJI;

	search_answer(s, with);
	cr_assert_not(kz_cli__kind_answer(&b, s, 200, 1));
	cr_assert_eq(r.search.found, 1);
	search_answer(s, goes_on); /* may be on the next page */
	cr_assert_not(kz_cli__kind_answer(&b, s, 200, 1));
	cr_assert_eq(r.search.unchecked, 1);
	/* A complete page without the person searched for. */
	search_answer(s, without);
	cr_assert(kz_cli__kind_answer(&b, s, 200, 1));
	cr_assert_eq(r.search.checked, 2);
	cr_assert_eq(r.search.found, 1);
	cr_assert(strstr(s->why, "01AAAAAAAAAAAAAAAAAAAAAAAA") != NULL, "%s",
		  s->why);
	/* Counted as a bad body, and the reason names no person: no name
	 * from the page or the query goes into the summary. */
	memset(&k, 0, sizeof(k));
	cr_assert_eq(kz_cli__account(&b, &k, s, KZ_BH_OK, 200, 0, 1000, 1),
		     KZ_CLI_OK);
	cr_assert_eq(k.bad_bodies, 1);
	cr_assert_eq(k.ok, 0);
	cr_assert(strstr(k.first_error, "without the person") != NULL, "%s",
		  k.first_error);
	cr_assert(strstr(k.first_error, "佐藤") == NULL, "%s", k.first_error);
	cr_assert(strstr(k.first_error, "q=") == NULL, "%s", k.first_error);
	/* A family-name query is not judged on whom it holds, only on
	 * being a page. */
	s->query = KZ_CLI_BENCH_Q_FAMILY_KANA;
	search_answer(s, without);
	cr_assert_not(kz_cli__kind_answer(&b, s, 200, 1));
	search_answer(s, "{\"error\":{\"code\":\"x\"}}");
	cr_assert(kz_cli__kind_answer(&b, s, 200, 1));
	cr_assert(strstr(s->why, "no items array") != NULL, "%s", s->why);
	search_answer(s, "<html>");
	cr_assert(kz_cli__kind_answer(&b, s, 200, 1));
	/* Not a 2xx: its status says it all. */
	search_answer(s, "{}");
	cr_assert_not(kz_cli__kind_answer(&b, s, 503, 0));
	/* Stale reads may not have the record yet: counted, not judged. */
	a.stale = 1;
	s->query = KZ_CLI_BENCH_Q_ROMAJI;
	search_answer(s, without);
	cr_assert_not(kz_cli__kind_answer(&b, s, 200, 1));
	cr_assert_eq(r.search.stale_misses, 1);
	/* An answer longer than is kept whole is not judged good. */
	search_answer(s, with);
	s->whole_cut = 1;
	cr_assert(kz_cli__kind_answer(&b, s, 200, 1));
	kz_cli__close(&b);
}

/* ---- notes and payouts ------------------------------------------------------------ */

Test(client_bench, note_bodies)
{
	uint64_t rng = 5, again = 5;
	int seen_injured = 0;
	for (int i = 0; i < 200; i++) {
		char *body, *twin;
		size_t len, tlen;
		json_t *o;
		const char *status;
		cr_assert_eq(kz_cli_bench_note_body(&rng, &body, &len),
			     KZ_CLI_OK);
		cr_assert_eq(kz_cli_bench_note_body(&again, &twin, &tlen),
			     KZ_CLI_OK);
		cr_assert_str_eq(body, twin); /* a function of the rng */
		cr_assert_eq(len, strlen(body));
		o = json_loads(body, 0, NULL);
		cr_assert_not_null(o, "%s", body);
		/* What the server's note takes (records.c), and no more. */
		cr_assert_eq(json_object_size(o), 4, "%s", body);
		status = json_string_value(json_object_get(o, "status"));
		cr_assert(status != NULL &&
			      (strcmp(status, "safe") == 0 ||
			       strcmp(status, "injured") == 0 ||
			       strcmp(status, "missing") == 0 ||
			       strcmp(status, "unknown") == 0),
			  "%s", body);
		seen_injured |= strcmp(status, "injured") == 0;
		cr_assert_str_eq(json_string_value(json_object_get(o, "author")),
				 "kizuna-bench");
		cr_assert_gt(json_string_length(json_object_get(o, "text")), 0);
		cr_assert_gt(json_string_length(
				 json_object_get(o, "last_known_location")),
			     0);
		json_decref(o);
		free(body);
		free(twin);
	}
	cr_assert(seen_injured);
}

Test(client_bench, payout_bodies_and_keys)
{
	char *body, key[160];
	size_t len;
	json_t *o, *acct;
	char hh[80];

	cr_assert_eq(kz_cli_bench_payout_body("b1234abcd-h-000007", "repair",
					      "さとう かずこ", 1234567, &body,
					      &len),
		     KZ_CLI_OK);
	cr_assert_eq(len, strlen(body));
	o = json_loads(body, 0, NULL);
	cr_assert_not_null(o, "%s", body);
	cr_assert_str_eq(json_string_value(json_object_get(o, "household_id")),
			 "b1234abcd-h-000007");
	cr_assert_str_eq(json_string_value(json_object_get(o, "program")),
			 "seikatsu_saiken");
	cr_assert_str_eq(json_string_value(json_object_get(o, "item")),
			 "repair");
	acct = json_object_get(o, "account");
	cr_assert_eq(json_integer_value(json_object_get(acct, "bank_code")), 1);
	cr_assert_eq(json_integer_value(json_object_get(acct, "branch_code")),
		     567);
	cr_assert_eq(json_integer_value(json_object_get(acct, "account_type")),
		     1);
	/* Seven digits, as the transfer file holds them. */
	cr_assert_str_eq(
	    json_string_value(json_object_get(acct, "account_number")),
	    "2234567");
	cr_assert_str_eq(json_string_value(json_object_get(acct, "holder")),
			 "さとう かずこ");
	json_decref(o);
	free(body);

	cr_assert_eq(kz_cli_bench_payout_key("b1234abcd", "b1234abcd-h-000007",
					     "basic", key, sizeof(key)),
		     (int)strlen("kizuna-bench-b1234abcd-b1234abcd-h-000007-"
				 "basic"));
	cr_assert_str_eq(key,
			 "kizuna-bench-b1234abcd-b1234abcd-h-000007-basic");
	/* The server takes at most 128 characters (a household id has at
	 * most 64). */
	memset(hh, 'h', 64);
	hh[64] = '\0';
	cr_assert_eq(kz_cli_bench_payout_key("b1234abcd", hh, "repair", key,
					     sizeof(key)),
		     94);
	{
		char tag[61];
		memset(tag, 't', 60);
		tag[60] = '\0';
		cr_assert_eq(kz_cli_bench_payout_key(tag, hh, "repair", key,
						     sizeof(key)),
			     -1);
	}
	cr_assert_eq(kz_cli_bench_payout_key("t", "h", "basic", key, 8), -1);
}

Test(client_bench, the_program_table_says_what_is_paid)
{
	unsigned char pay[KZ_CLI__DAMAGES][KZ_CLI__ITEMS];
	/* The shape of GET /v1/programs/seikatsu_saiken (payouts.c). */
	json_t *prog = json_loads(
	    "{\"id\":\"seikatsu_saiken\",\"disaster_date\":\"2026-01-01\","
	    "\"closed\":false,\"table\":{\"amounts_yen\":{"
	    "\"zenkai\":{\"basic\":1000000,\"build\":2000000,\"repair\":"
	    "1000000,\"rent\":500000},"
	    "\"daikibo_hankai\":{\"basic\":500000,\"build\":2000000,"
	    "\"repair\":1000000,\"rent\":500000},"
	    "\"chukibo_hankai\":{\"basic\":null,\"build\":1000000,"
	    "\"repair\":500000,\"rent\":250000},"
	    "\"hankai\":{\"basic\":null,\"build\":null,\"repair\":0,"
	    "\"rent\":null}},\"not_eligible\":[\"none\"]}}",
	    0, NULL);
	cr_assert_not_null(prog);
	cr_assert_eq(kz_cli__payable_from(prog, pay), 5);
	cr_assert(pay[kz_cli__damage_index("zenkai")][KZ_CLI__ITEM_BASIC]);
	cr_assert(pay[kz_cli__damage_index("zenkai")][KZ_CLI__ITEM_REPAIR]);
	cr_assert_not(
	    pay[kz_cli__damage_index("chukibo_hankai")][KZ_CLI__ITEM_BASIC]);
	cr_assert(pay[kz_cli__damage_index("chukibo_hankai")][KZ_CLI__ITEM_REPAIR]);
	/* An amount of 0 pays nothing; a level not listed neither. */
	cr_assert_not(pay[kz_cli__damage_index("hankai")][KZ_CLI__ITEM_REPAIR]);
	cr_assert_not(pay[kz_cli__damage_index("none")][KZ_CLI__ITEM_BASIC]);
	cr_assert_eq(kz_cli__damage_index("bogus"), KZ_CLI__DAMAGES);
	json_decref(prog);
	cr_assert_eq(kz_cli__payable_from(NULL, pay), 0);
}

/* The default table's payable levels, as kz_cli__payable_from reads them. */
static void default_payable(kz_cli__bench *b)
{
	static const char *const levels[] = {"zenkai", "kaitai", "choki_hinan",
					     "daikibo_hankai"};
	size_t d;
	memset(b->payable, 0, sizeof(b->payable));
	for (size_t i = 0; i < 4; i++) {
		d = kz_cli__damage_index(levels[i]);
		cr_assert_lt(d, KZ_CLI__DAMAGES);
		b->payable[d][KZ_CLI__ITEM_BASIC] = 1;
		b->payable[d][KZ_CLI__ITEM_REPAIR] = 1;
	}
	d = kz_cli__damage_index("chukibo_hankai");
	cr_assert_lt(d, KZ_CLI__DAMAGES);
	b->payable[d][KZ_CLI__ITEM_REPAIR] = 1;
}

Test(client_bench, payout_plan_and_requests, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli_bench_result r;
	kz_cli__slot *s;
	json_t *o;

	cr_assert_eq(PARSE(&a, "payout", "--endpoints", "https://127.0.0.1:9",
			   "--pki", "/nowhere", "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	s = kinds_fixture(&a, &b, &ph, st, &rec, &r);
	/* The payout identity's TLS settings (the fixture opened the
	 * transport before the arguments had them in the run). */
	cr_assert_not_null(b.tls[KZ_CLI__ID_PAYOUT]);
	default_payable(&b);
	cr_assert_eq(kz_cli__make_plan(&b), KZ_CLI_OK);
	/* Households in id order, each once: basics first (h-000002, the
	 * chukibo household h-000001 has none), then repairs; the hankai
	 * household h-000003 gets nothing. */
	cr_assert_eq(r.payouts.households, 2);
	cr_assert_eq(r.payouts.planned, 3);
	cr_assert_eq(b.n_plan, 3);
	cr_assert_str_eq(b.people[b.plan[0].person].household, "bT-h-000002");
	cr_assert_eq(b.plan[0].item, KZ_CLI__ITEM_BASIC);
	cr_assert_str_eq(b.people[b.plan[1].person].household, "bT-h-000001");
	cr_assert_eq(b.plan[1].item, KZ_CLI__ITEM_REPAIR);
	cr_assert_str_eq(b.people[b.plan[2].person].household, "bT-h-000002");
	cr_assert_eq(b.plan[2].item, KZ_CLI__ITEM_REPAIR);
	/* The first member kept stands for its household. */
	cr_assert_eq(b.plan[0].person, 0);

	for (size_t i = 0; i < 3; i++) {
		kz_cli__start(&b, s);
		cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
		cr_assert(s->busy);
		cr_assert_eq(s->req, KZ_CLI__REQ_PAYOUT);
		cr_assert_eq(s->op, KZ_CLI_BENCH_OP_WRITE);
		cr_assert_eq(s->kind, KZ_CLI_BENCH_KIND_PAYOUT);
		cr_assert_eq(s->plan, i);
		cr_assert_str_eq(s->url, "https://127.0.0.1:9/v1/payouts");
		/* Its own key, on the payout role's connection. */
		cr_assert(strstr(s->pay_hdrs, i == 0
						  ? "Idempotency-Key: "
						    "kizuna-bench-bT-bT-h-"
						    "000002-basic\r\n"
						  : "Idempotency-Key: "
						    "kizuna-bench-bT-") != NULL,
			  "%s", s->pay_hdrs);
		cr_assert(strstr(s->pay_hdrs, "Content-Type: application/json") !=
			  NULL);
		cr_assert_not_null(s->h[KZ_CLI__ID_PAYOUT]);
		cr_assert_null(s->h[KZ_CLI_BENCH_OP_WRITE]);
		o = json_loads(s->body, 0, NULL);
		cr_assert_not_null(o);
		cr_assert_str_eq(json_string_value(json_object_get(o, "item")),
				 kz_cli__items[b.plan[i].item]);
		json_decref(o);
		kz_bh_abort(s->h[KZ_CLI__ID_PAYOUT]);
		s->busy = 0;
	}
	cr_assert_eq(r.payouts.sent, 3);
	/* Nothing left: the phase ends at what it sent, and says so. */
	kz_cli__start(&b, s);
	cr_assert_eq(b.fatal, 0);
	cr_assert_not(s->busy);
	cr_assert_eq(ph.limit, 3);
	cr_assert_eq(ph.sent, 3);
	cr_assert(r.payouts.ran_out);

	/* The answers: paid, already paid, refused; the first refusal
	 * described by its code, never the account. */
	slot_answer(s, KZ_CLI__REQ_PAYOUT,
		    "{\"id\":\"p1\",\"amount_yen\":750000,"
		    "\"status\":\"approved\"}");
	cr_assert_not(kz_cli__kind_answer(&b, s, 201, 1));
	slot_answer(s, KZ_CLI__REQ_PAYOUT, "{\"status\":\"approved\"}");
	cr_assert(kz_cli__kind_answer(&b, s, 201, 1));
	cr_assert(strstr(s->why, "amount_yen") != NULL);
	slot_answer(s, KZ_CLI__REQ_PAYOUT,
		    "{\"error\":{\"code\":\"already_paid\",\"message\":"
		    "\"paid\"},\"payout\":{\"account\":{\"holder\":"
		    "\"さとう かずこ\"}}}");
	cr_assert_not(kz_cli__kind_answer(&b, s, 409, 0));
	slot_answer(s, KZ_CLI__REQ_PAYOUT,
		    "{\"error\":{\"code\":\"not_eligible\",\"message\":"
		    "\"no\"}}");
	cr_assert_not(kz_cli__kind_answer(&b, s, 422, 0));
	cr_assert_eq(r.payouts.paid, 1);
	cr_assert_eq(r.payouts.yen, 750000);
	cr_assert_eq(r.payouts.already_paid, 1);
	cr_assert_eq(r.payouts.refused, 1);
	cr_assert(strstr(r.payouts.first_refusal, "409 already_paid") != NULL,
		  "%s", r.payouts.first_refusal);
	cr_assert(strstr(r.payouts.first_refusal, "さとう") == NULL);
	kz_cli__close(&b);
}

Test(client_bench, payout_preload_takes_eligible_households_of_the_run,
     .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	int seen_other = 0;

	cr_assert_eq(PARSE(&a, "payout", "--endpoints", "https://127.0.0.1:9",
			   "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	bench_fixture(&a, &b, &ph, st, &rec, 0);
	default_payable(&b);
	snprintf(b.hh_tag, sizeof(b.hh_tag), "b0000beef");
	b.eligible_only = 1;
	for (int i = 0; i < 300; i++) {
		json_t *v;
		cr_assert_eq(kz_cli__next_victim(&b, &v), KZ_CLI_OK);
		const char *hh =
		    json_string_value(json_object_get(v, "household_id"));
		cr_assert(strncmp(hh, "b0000beef-h-", 12) == 0, "%s", hh);
		cr_assert(kz_cli__pays(&b, json_string_value(
					       json_object_get(v, "damage"))));
		json_decref(v);
	}
	/* day keeps every household (only renamed). */
	b.eligible_only = 0;
	for (int i = 0; i < 300; i++) {
		json_t *v;
		cr_assert_eq(kz_cli__next_victim(&b, &v), KZ_CLI_OK);
		seen_other |= !kz_cli__pays(
		    &b, json_string_value(json_object_get(v, "damage")));
		json_decref(v);
	}
	cr_assert(seen_other);
	kz_cli__close(&b);
}

Test(client_bench, day_requests_by_kind, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli_bench_result r;
	kz_cli__slot *s;
	unsigned long by[KZ_CLI_BENCH_KIND_COUNT] = {0};

	cr_assert_eq(PARSE(&a, "day", "--endpoints", "https://127.0.0.1:9",
			   "--mix", "read=40,search=20,write=20,note=10,"
			   "payout=10",
			   "--record-bytes", "0", "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	s = kinds_fixture(&a, &b, &ph, st, &rec, &r);
	default_payable(&b);
	cr_assert_eq(kz_cli__make_plan(&b), KZ_CLI_OK);
	cr_assert_eq(b.n_plan, 3);
	ph.keep_ids = 1;

	for (int i = 0; i < 400; i++) {
		int ident;
		kz_cli__start(&b, s);
		cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
		cr_assert(s->busy);
		by[s->kind]++;
		switch (s->kind) {
		case KZ_CLI_BENCH_KIND_READ:
			cr_assert_eq(s->req, KZ_CLI__REQ_VICTIM_GET);
			cr_assert(strstr(s->url, "?consistency=linearizable"));
			break;
		case KZ_CLI_BENCH_KIND_SEARCH:
			cr_assert_eq(s->req, KZ_CLI__REQ_SEARCH);
			break;
		case KZ_CLI_BENCH_KIND_WRITE:
			cr_assert_eq(s->req, KZ_CLI__REQ_VICTIM_POST);
			cr_assert_str_eq(s->url,
					 "https://127.0.0.1:9/v1/victims");
			/* The run's households, as in the preload. */
			cr_assert(strstr(s->body, "\"household_id\":\"bT-h-") !=
				  NULL,
				  "%s", s->body);
			break;
		case KZ_CLI_BENCH_KIND_NOTE:
			cr_assert_eq(s->req, KZ_CLI__REQ_NOTE);
			cr_assert(strstr(s->url, "/notes") != NULL);
			cr_assert(strncmp(s->url,
					  "https://127.0.0.1:9/v1/victims/01",
					  33) == 0,
				  "%s", s->url);
			break;
		case KZ_CLI_BENCH_KIND_PAYOUT:
			cr_assert_eq(s->req, KZ_CLI__REQ_PAYOUT);
			break;
		default:
			cr_assert_fail("kind %d", s->kind);
		}
		/* Reads, searches and identity checks count as reads. */
		cr_assert_eq(s->op, s->kind == KZ_CLI_BENCH_KIND_READ ||
					    s->kind == KZ_CLI_BENCH_KIND_SEARCH
					? KZ_CLI_BENCH_OP_READ
					: KZ_CLI_BENCH_OP_WRITE);
		/* Notes go out as the caseworker, registrations as the
		 * registrar, payouts as the payout role. */
		ident = s->kind == KZ_CLI_BENCH_KIND_WRITE ? KZ_CLI_BENCH_OP_WRITE
			: s->kind == KZ_CLI_BENCH_KIND_PAYOUT ? KZ_CLI__ID_PAYOUT
							       : KZ_CLI_BENCH_OP_READ;
		cr_assert_not_null(s->h[ident]);
		kz_bh_abort(s->h[ident]);
		s->busy = 0;
	}
	/* Payouts stop at the plan's 3, and the mix goes on without them. */
	cr_assert_eq(by[KZ_CLI_BENCH_KIND_PAYOUT], 3);
	cr_assert(r.payouts.ran_out);
	cr_assert_eq(b.mix[KZ_CLI_BENCH_KIND_PAYOUT], 0);
	cr_assert_eq(a.mix[KZ_CLI_BENCH_KIND_PAYOUT], 10);
	for (int k = 0; k < KZ_CLI_BENCH_KIND_PAYOUT; k++)
		cr_assert_gt(by[k], 20, "%s: %lu",
			     kz_cli_bench_kind_name((kz_cli_bench_kind)k),
			     by[k]);
	cr_assert_eq(by[KZ_CLI_BENCH_KIND_IDENTITY], 0);
	cr_assert_eq(ph.sent, 400);
	cr_assert_eq(rec.count, by[KZ_CLI_BENCH_KIND_WRITE]);
	kz_cli__close(&b);
}

Test(client_bench, day_counts_each_kind, .init = clear_env)
{
	/* A finished request counts in its side (reads or writes) and in
	 * its kind. */
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli_bench_result r;
	kz_cli__slot *s;
	kz_bh_result done;

	cr_assert_eq(PARSE(&a, "day", "--endpoints", "https://127.0.0.1:9",
			   "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	s = kinds_fixture(&a, &b, &ph, st, &rec, &r);
	memset(&done, 0, sizeof(done));
	done.err = KZ_BH_OK;
	done.status = 201;
	s->busy = 1;
	s->req = KZ_CLI__REQ_NOTE;
	s->op = KZ_CLI_BENCH_OP_WRITE;
	s->kind = KZ_CLI_BENCH_KIND_NOTE;
	s->start_ns = kz_cli__bnow_ns();
	slot_answer(s, KZ_CLI__REQ_NOTE,
		    "{\"id\":\"01AAAAAAAAAAAAAAAAAAAAAAAA\"}");
	kz_cli__finish(&b, s, &done);
	cr_assert_eq(st[KZ_CLI_BENCH_OP_WRITE].ok, 1);
	cr_assert_eq(r.kinds[KZ_CLI_BENCH_KIND_NOTE].ok, 1);
	cr_assert_eq(r.kinds[KZ_CLI_BENCH_KIND_NOTE].n_lat, 1);
	/* A search page without the person: a bad body of reads and of
	 * searches alike. */
	s->busy = 1;
	s->op = KZ_CLI_BENCH_OP_READ;
	s->kind = KZ_CLI_BENCH_KIND_SEARCH;
	s->person = 3;
	s->query = KZ_CLI_BENCH_Q_SWAPPED;
	search_answer(s, "{\"items\":[],\"next_cursor\":null}");
	done.status = 200;
	kz_cli__finish(&b, s, &done);
	cr_assert_eq(st[KZ_CLI_BENCH_OP_READ].bad_bodies, 1);
	cr_assert_eq(r.kinds[KZ_CLI_BENCH_KIND_SEARCH].bad_bodies, 1);
	cr_assert_eq(r.kinds[KZ_CLI_BENCH_KIND_SEARCH].ok, 0);
	cr_assert_eq(s->why[0], '\0'); /* reset for the next request */
	free(st[0].lat_ns);
	free(st[1].lat_ns);
	kz_cli_bench_result_free(&r);
	kz_cli__close(&b);
}

Test(client_bench, json_summary_of_a_day_run, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli_bench_result r;
	json_t *j, *bk, *k;
	uint64_t read_lat[4] = {1000000, 2000000, 3000000, 9000000};
	uint64_t pay_lat[1] = {5000000};

	cr_assert_eq(PARSE(&a, "day"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	memset(&r, 0, sizeof(r));
	r.op[KZ_CLI_BENCH_OP_READ].requests = r.op[KZ_CLI_BENCH_OP_READ].ok = 4;
	r.op[KZ_CLI_BENCH_OP_READ].lat_ns = read_lat;
	r.op[KZ_CLI_BENCH_OP_READ].n_lat = 4;
	r.kinds[KZ_CLI_BENCH_KIND_READ].requests =
	    r.kinds[KZ_CLI_BENCH_KIND_READ].ok = 4;
	r.kinds[KZ_CLI_BENCH_KIND_READ].lat_ns = read_lat;
	r.kinds[KZ_CLI_BENCH_KIND_READ].n_lat = 4;
	r.op[KZ_CLI_BENCH_OP_WRITE].requests = 2;
	r.op[KZ_CLI_BENCH_OP_WRITE].ok = 1;
	r.op[KZ_CLI_BENCH_OP_WRITE].http_errors = 1;
	r.op[KZ_CLI_BENCH_OP_WRITE].by_status[409] = 1;
	r.op[KZ_CLI_BENCH_OP_WRITE].lat_ns = pay_lat;
	r.op[KZ_CLI_BENCH_OP_WRITE].n_lat = 1;
	r.kinds[KZ_CLI_BENCH_KIND_PAYOUT] = r.op[KZ_CLI_BENCH_OP_WRITE];
	r.elapsed_s = 2.0;
	r.n_endpoints = 1;
	r.search.by_query[KZ_CLI_BENCH_Q_ROMAJI] = 7;
	r.payouts.households = 10;
	r.payouts.planned = 15;
	r.payouts.sent = 2;
	r.payouts.paid = 1;
	r.payouts.already_paid = 1;
	r.payouts.yen = 1000000;
	snprintf(r.payouts.first_refusal, sizeof(r.payouts.first_refusal),
		 "409 already_paid: paid");
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	/* The fields every workload has are there, unchanged. */
	cr_assert_str_eq(json_string_value(json_object_get(j, "workload")),
			 "day");
	cr_assert_str_eq(json_string_value(json_object_get(j, "consistency")),
			 "linearizable");
	cr_assert_eq(json_integer_value(json_object_get(j, "ok")), 5);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "throughput_ops_s")), 2.5, 1e-9);
	cr_assert_not_null(json_object_get(j, "latency_ms"));
	cr_assert_not_null(json_object_get(j, "preload"));
	/* by_kind: each kind with its weight, throughput and latency. */
	cr_assert_eq(json_integer_value(
			 json_object_get(json_object_get(j, "mix"), "read")),
		     50);
	bk = json_object_get(j, "by_kind");
	cr_assert_eq(json_object_size(bk), KZ_CLI_BENCH_KIND_COUNT);
	k = json_object_get(bk, "read");
	cr_assert_eq(json_integer_value(json_object_get(k, "weight")), 50);
	cr_assert_eq(json_integer_value(json_object_get(k, "ok")), 4);
	cr_assert_float_eq(json_real_value(json_object_get(k, "ops_s")), 2.0,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(k, "p50_ms")), 2.0,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(k, "p99_ms")), 9.0,
			   1e-9);
	k = json_object_get(bk, "payout");
	cr_assert_eq(json_integer_value(json_object_get(
			 json_object_get(json_object_get(k, "errors"),
					 "by_status"),
			 "409")),
		     1);
	cr_assert_not_null(json_object_get(bk, "identity"));
	cr_assert_eq(json_integer_value(json_object_get(
			 json_object_get(json_object_get(j, "search"),
					 "by_query"),
			 "romaji")),
		     7);
	k = json_object_get(j, "payouts");
	cr_assert_eq(json_integer_value(json_object_get(k, "paid")), 1);
	cr_assert_eq(json_integer_value(json_object_get(k, "already_paid")), 1);
	cr_assert_eq(json_integer_value(json_object_get(k, "planned")), 15);
	cr_assert(json_is_false(json_object_get(k, "ran_out")));
	cr_assert(json_is_null(json_object_get(k, "ran_out_s")));
	cr_assert_str_eq(
	    json_string_value(json_object_get(k, "first_refusal")),
	    "409 already_paid: paid");
	json_decref(j);
	/* The text says the same for a person. */
	{
		char *text = NULL;
		size_t tlen = 0;
		FILE *f = open_memstream(&text, &tlen);
		cr_assert_not_null(f);
		r.payouts.ran_out = 1;
		r.payouts.ran_out_s = 1.5;
		kz_cli_bench_report_text(f, &a, &r);
		fclose(f);
		cr_assert(strstr(text, "mix           read 50, search 25, "
				       "write 12, note 10, payout 3\n") != NULL,
			  "%s", text);
		cr_assert(strstr(text, "by kind       read") != NULL, "%s",
			  text);
		cr_assert(strstr(text, "1 paid (1000000 yen) of 15 planned for "
				       "10 households; 1 already paid (409)") !=
			      NULL,
			  "%s", text);
		cr_assert(strstr(text, "ran out of households at 1.50 s") !=
			      NULL,
			  "%s", text);
		free(text);
	}
	/* payout's summary has no reads' consistency and no mix. */
	cr_assert_eq(PARSE(&a, "payout"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert(json_is_null(json_object_get(j, "consistency")));
	cr_assert_null(json_object_get(j, "by_kind"));
	cr_assert_null(json_object_get(j, "search"));
	cr_assert(json_is_true(
	    json_object_get(json_object_get(j, "payouts"), "ran_out")));
	json_decref(j);
}
