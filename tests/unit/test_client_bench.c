/*
 * kizuna-bench's pure parts (client/bench.c): nearest-rank percentiles, the
 * command line and its defaults, the padding of sample records (and of the
 * update workload's PATCH bodies) to a body size within the server's field
 * limits, and the photo bodies. No process, no network.
 *
 * bench.c belongs to the kizuna-bench executable, not to kz_client, so it is
 * compiled into this test directly (tests/CMakeLists.txt links every unit
 * test with kz_node and kz_client only).
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
