/*
 * kizuna-bench's open loop (--rate, client/bench.c): the command line, the
 * schedule's arithmetic (when request k is due, how many are due at a
 * time), one turn of the loop on a hand-built run (requests handed to
 * free slots in turn, the rest waiting, latency counted from the due
 * time), the summary's figures, then whole runs against a server in a
 * thread of this process on 127.0.0.1 that answers etcd puts, fast or
 * slowly (each answer held a few ms, standing for a server that cannot
 * keep up): the schedule kept, the wait in the latencies, the requests
 * left unsent at the end of a timed run. The assertions on those runs are
 * what the server's slowness forces whatever the machine's speed (lower
 * bounds of a latency, upper bounds of what one connection can send), never
 * how fast this machine is.
 *
 * bench.c is compiled in, as in test_client_bench.c.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

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

#define MS KZ_CLI__NS_PER_MS
#define SEC KZ_CLI__NS_PER_S

/* ---- command line ---------------------------------------------------------------------- */

Test(client_bench_openloop, rate_is_parsed, .init = clear_env)
{
	kz_cli_bench_args a;

	/* Absent: the closed loop, as before. */
	cr_assert_eq(PARSE(&a, "write"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_float_eq(a.rate, 0.0, 1e-12);

	cr_assert_eq(PARSE(&a, "--rate", "300", "read"), KZ_CLI_BENCH_ARGS_OK,
		     "%s", err);
	cr_assert_float_eq(a.rate, 300.0, 1e-12);
	cr_assert_eq(PARSE(&a, "write", "--rate=0.5"), KZ_CLI_BENCH_ARGS_OK,
		     "%s", err);
	cr_assert_float_eq(a.rate, 0.5, 1e-12);
	cr_assert_eq(PARSE(&a, "write", "--rate", "2.5e3"), KZ_CLI_BENCH_ARGS_OK,
		     "%s", err);
	cr_assert_float_eq(a.rate, 2500.0, 1e-12);
	/* Both ends of the range. */
	cr_assert_eq(PARSE(&a, "write", "--rate", "0.001"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(PARSE(&a, "write", "--rate", "1000000"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);

	/* Every workload with a measured phase, either target, either way of
	 * ending the run, and a failover. */
	cr_assert_eq(PARSE(&a, "mixed", "--rate", "100", "--requests", "50"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(a.requests, 50);
	cr_assert_eq(PARSE(&a, "photo", "--rate", "100"), KZ_CLI_BENCH_ARGS_OK,
		     "%s", err);
	cr_assert_eq(PARSE(&a, "identity", "--rate", "100"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(PARSE(&a, "update", "--rate", "100", "--duration", "3"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_eq(PARSE(&a, "--target", "etcd", "read", "--rate", "100"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_float_eq(a.rate, 100.0, 1e-12);
	cr_assert_eq(PARSE(&a, "write", "--rate", "100", "--duration", "9",
			   "--failover-cmd", "true"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	cr_assert_float_eq(a.rate, 100.0, 1e-12);
	cr_assert_str_eq(a.failover_cmd, "true");
}

Test(client_bench_openloop, bad_rates_are_usage_errors, .init = clear_env)
{
	static const char *const bad[] = {"0",    "-5",   "-0.5", "abc",
					  "300x", "1e7",  "inf",  "nan",
					  "0.0001", "1000000.5", "5 ", "0x"};
	kz_cli_bench_args a;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(PARSE(&a, "write", "--rate", bad[i]),
			     KZ_CLI_BENCH_ARGS_USAGE, "--rate '%s' taken",
			     bad[i]);
		cr_assert(strstr(err, "--rate wants a number from 0.001 to "
				      "1e+06") != NULL,
			  "%s", err);
		cr_assert(strstr(err, bad[i]) != NULL, "%s", err);
	}
	/* No value at all. */
	cr_assert_eq(PARSE(&a, "write", "--rate"), KZ_CLI_BENCH_ARGS_USAGE);
	cr_assert_str_eq(err, "--rate needs a value");
	cr_assert_eq(PARSE(&a, "write", "--rate="), KZ_CLI_BENCH_ARGS_USAGE);
	/* The usage error is what main turns into exit status 2. */
	cr_assert_eq(KZ_CLI_BENCH_ARGS_USAGE, KZ_CLI_BENCH_EXIT_USAGE);
}

Test(client_bench_openloop, help_tells_of_the_rate)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cr_assert_not_null(f);
	kz_cli_bench_usage(f);
	fclose(f);
	cr_assert(strstr(text, "--rate R") != NULL, "%s", text);
	cr_assert(strstr(text, "open loop") != NULL, "%s", text);
	free(text);
}

/* ---- the schedule ------------------------------------------------------------------------ */

Test(client_bench_openloop, request_k_is_due_at_k_over_rate)
{
	cr_assert_eq(kz_cli_bench_sched_offset_ns(300, 0), 0);
	cr_assert_eq(kz_cli_bench_sched_offset_ns(300, 1), 3333333);
	cr_assert_eq(kz_cli_bench_sched_offset_ns(300, 2), 6666666);
	cr_assert_eq(kz_cli_bench_sched_offset_ns(300, 3), 10 * MS);
	cr_assert_eq(kz_cli_bench_sched_offset_ns(300, 300), SEC);
	cr_assert_eq(kz_cli_bench_sched_offset_ns(1, 86400), 86400 * SEC);
	cr_assert_eq(kz_cli_bench_sched_offset_ns(0.5, 3), 6 * SEC);
	cr_assert_eq(kz_cli_bench_sched_offset_ns(1000000, 7), 7000);
	/* A whole day at the highest rate, to the ns. */
	cr_assert_eq(kz_cli_bench_sched_offset_ns(1000000, 86400000000ull),
		     86400 * SEC);
	/* Past 2^62 ns the offsets stop growing rather than wrap. */
	cr_assert_eq(kz_cli_bench_sched_offset_ns(0.001, UINT64_MAX),
		     KZ_CLI_BENCH_SCHED_END_NS);
}

Test(client_bench_openloop, due_count_at_a_time)
{
	/* Request 0 is due at once. */
	cr_assert_eq(kz_cli_bench_sched_due(300, 0), 1);
	cr_assert_eq(kz_cli_bench_sched_due(300, 3333332), 1);
	cr_assert_eq(kz_cli_bench_sched_due(300, 3333333), 2);
	cr_assert_eq(kz_cli_bench_sched_due(300, 10 * MS - 1), 3);
	cr_assert_eq(kz_cli_bench_sched_due(300, 10 * MS), 4);
	cr_assert_eq(kz_cli_bench_sched_due(1000, SEC), 1001);
	cr_assert_eq(kz_cli_bench_sched_due(1000, SEC - 1), 1000);
	cr_assert_eq(kz_cli_bench_sched_due(0.5, 5 * SEC), 3);
	/* A 5 s run at 300/s holds 1500 requests (the last due at 4.9967 s):
	 * those due before the deadline, as the run counts them. */
	cr_assert_eq(kz_cli_bench_sched_due(300, 5 * SEC - 1), 1500);
	/* Never stuck at the end of time. */
	cr_assert_geq(kz_cli_bench_sched_due(0.001, UINT64_MAX), 1);
}

Test(client_bench_openloop, due_count_agrees_with_the_offsets)
{
	static const double rates[] = {0.001, 0.7,   3,      7,       300,
				       333.333, 1000, 4999.9, 65537,  1000000};
	static const uint64_t starts[] = {0, 1000, 123456789, 86400000000ull};
	size_t r, i;
	uint64_t k;

	for (r = 0; r < sizeof(rates) / sizeof(rates[0]); r++)
		for (i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
			for (k = starts[i]; k < starts[i] + 200; k++) {
				uint64_t off = kz_cli_bench_sched_offset_ns(
				    rates[r], k);
				if (off >= KZ_CLI_BENCH_SCHED_END_NS)
					continue;
				cr_assert_eq(
				    kz_cli_bench_sched_due(rates[r], off), k + 1,
				    "rate %g k %llu", rates[r],
				    (unsigned long long)k);
				if (k > 0)
					cr_assert_eq(kz_cli_bench_sched_due(
							 rates[r], off - 1),
						     k, "rate %g k %llu",
						     rates[r],
						     (unsigned long long)k);
				cr_assert_gt(kz_cli_bench_sched_offset_ns(
						 rates[r], k + 1),
					     off);
			}
}

/* ---- one turn of the loop, on a hand-built run ----------------------------------------------- */

/* A hand-built write run with n slots over the endpoints of a, the
 * measured phase open at rate from t0 (a time of the caller's). */
static void ol_fixture(kz_cli_bench_args *a, kz_cli__bench *b,
		       kz_cli__phase *ph, kz_cli_bench_stats st[2],
		       kz_cli_bench_records *rec, kz_cli_bench_schedule *sc,
		       size_t n, double rate, uint64_t t0)
{
	size_t i;
	bench_fixture(a, b, ph, st, rec, 0);
	b->n_slots = n;
	b->slots = calloc(n, sizeof(*b->slots));
	cr_assert_not_null(b->slots);
	for (i = 0; i < n; i++) {
		b->slots[i].b = b;
		b->slots[i].ep = i % b->n_eps;
	}
	memset(sc, 0, sizeof(*sc));
	sc->rate = rate;
	ph->name = "write";
	ph->rate = rate;
	ph->sched = sc;
	ph->start_ns = t0;
	ph->deadline_ns = t0 + 100 * SEC;
}

/* Ends slot s's request as the transport would with an answer of status
 * (its connection given up first: the loop is never run). */
static void answer(kz_cli__bench *b, kz_cli__slot *s, int status)
{
	kz_bh_result r;
	memset(&r, 0, sizeof(r));
	r.err = KZ_BH_OK;
	r.status = status;
	r.errmsg = "";
	kz_bh_abort(s->h[s->op]);
	kz_cli__on_resp(s, "{\"header\":{}}", 13); /* etcd's put answer */
	kz_cli__finish(b, s, &r);
	cr_assert_not(s->busy);
}

Test(client_bench_openloop, due_requests_go_to_free_slots_in_turn,
     .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli_bench_schedule sc;
	/* The schedule started 10 s ago, at one request a second: the
	 * requests handed out below are all overdue on the real clock, so
	 * their latencies are known to be at least that old. */
	uint64_t t0 = kz_cli__bnow_ns() - 10 * SEC, wait, before, after;
	size_t i;

	cr_assert_eq(PARSE(&a, "--target", "etcd", "--endpoints",
			   "http://127.0.0.1:9,http://127.0.0.2:9", "write",
			   "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	ol_fixture(&a, &b, &ph, st, &rec, &sc, 3, 1.0, t0);

	/* At t0: request 0, on slot 0; the loop may sleep until request 1
	 * is due, a second later. */
	wait = 5 * SEC;
	cr_assert_eq(kz_cli__ol_turn(&b, t0, 0, &wait), 1);
	cr_assert_eq(b.fatal, 0, "%s", b.errmsg);
	cr_assert(b.slots[0].busy);
	cr_assert_eq(b.slots[0].op_start_ns, t0);
	cr_assert_eq(b.slots[0].due_ns, 0); /* used, and cleared */
	cr_assert_eq(wait, SEC);
	cr_assert_eq(ph.ol_next, 1);
	cr_assert_eq(ph.sent, 1);

	/* Nothing more is due before t0 + 1 s. */
	wait = 5 * SEC;
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + SEC - 1, 0, &wait), 0);
	cr_assert_eq(wait, 1);

	/* At t0 + 3.5 s requests 1, 2 and 3 are due: the two free slots
	 * take 1 and 2, in turn from the one after slot 0; 3 waits for a
	 * slot (and the loop for a request to end, not for a time). */
	wait = 5 * SEC;
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + 3500 * MS, 0, &wait), 2);
	cr_assert(b.slots[1].busy && b.slots[2].busy);
	cr_assert_eq(b.slots[1].op_start_ns, t0 + SEC);
	cr_assert_eq(b.slots[2].op_start_ns, t0 + 2 * SEC);
	cr_assert_str_eq(b.slots[1].url, "http://127.0.0.2:9/v3/kv/put");
	cr_assert_eq(wait, 5 * SEC);
	cr_assert_eq(ph.ol_next, 3);
	cr_assert_eq(sc.queued, 0);
	/* Every request so far went out late by the real clock, by 10 s at
	 * least, and that is what was kept. */
	cr_assert_eq(sc.n_delay, 3);
	for (i = 0; i < 3; i++)
		cr_assert_geq(sc.delay_ns[i] + i * SEC, 10 * SEC);

	/* Request 0 is answered: its latency runs from its due time, t0. */
	before = kz_cli__bnow_ns();
	answer(&b, &b.slots[0], 200);
	after = kz_cli__bnow_ns();
	cr_assert_eq(st[KZ_CLI_BENCH_OP_WRITE].n_lat, 1);
	cr_assert_geq(st[KZ_CLI_BENCH_OP_WRITE].lat_ns[0], before - t0);
	cr_assert_leq(st[KZ_CLI_BENCH_OP_WRITE].lat_ns[0], after - t0);

	/* The freed slot takes request 3, which had waited: queued, and timed
	 * from t0 + 3 s, not from now. */
	wait = 5 * SEC;
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + 3600 * MS, 0, &wait), 1);
	cr_assert(b.slots[0].busy);
	cr_assert_eq(b.slots[0].op_start_ns, t0 + 3 * SEC);
	cr_assert_eq(sc.queued, 1);
	cr_assert_eq(wait, 400 * MS); /* request 4 at t0 + 4 s */
	before = kz_cli__bnow_ns();
	answer(&b, &b.slots[0], 200);
	after = kz_cli__bnow_ns();
	cr_assert_eq(st[KZ_CLI_BENCH_OP_WRITE].n_lat, 2);
	cr_assert_geq(st[KZ_CLI_BENCH_OP_WRITE].lat_ns[1],
		      before - (t0 + 3 * SEC));
	cr_assert_leq(st[KZ_CLI_BENCH_OP_WRITE].lat_ns[1],
		      after - (t0 + 3 * SEC));

	/* A slot pausing after a transport failure is passed over; the
	 * loop wakes when its pause ends if a request waits for it. */
	answer(&b, &b.slots[1], 200);
	answer(&b, &b.slots[2], 200);
	b.slots[0].not_before_ns = t0 + 6 * SEC + 50 * MS;
	b.slots[1].not_before_ns = t0 + 6 * SEC + 80 * MS;
	b.slots[2].not_before_ns = t0 + 6 * SEC + 90 * MS;
	wait = 5 * SEC;
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + 6 * SEC, 0, &wait), 0);
	cr_assert_eq(wait, 50 * MS);
	cr_assert_eq(ph.ol_next, 4);
	wait = 5 * SEC;
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + 6 * SEC + 60 * MS, 0, &wait),
		     1);
	cr_assert(b.slots[0].busy);
	cr_assert_eq(b.slots[0].op_start_ns, t0 + 4 * SEC);
	cr_assert_eq(sc.queued, 2); /* 4 waited; 5 and 6 still wait */
	cr_assert_eq(wait, 20 * MS);

	/* At the deadline the last turn sends what is due and has a slot;
	 * what still waits is never sent, and the schedule is over. */
	b.slots[1].not_before_ns = b.slots[2].not_before_ns = 0;
	ph.deadline_ns = t0 + 20 * SEC + 500 * MS;
	wait = 5 * SEC;
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + 21 * SEC, 1, &wait), 2);
	cr_assert_eq(ph.ol_next, 7);
	cr_assert(ph.ol_closed);
	answer(&b, &b.slots[1], 200);
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + 22 * SEC, 1, &wait), 0);
	kz_cli__ol_end(&ph, &sc);
	cr_assert_eq(sc.scheduled, 21); /* due at t0 + 0 .. 20 s */
	cr_assert_eq(sc.sent, 7);
	cr_assert_eq(sc.queued, 4);
	cr_assert_float_eq(sc.window_s, 20.5, 1e-9);
	for (i = 1; i < sc.n_delay; i++) /* sorted */
		cr_assert_geq(sc.delay_ns[i], sc.delay_ns[i - 1]);

	free(sc.delay_ns);
	free(st[0].lat_ns);
	kz_cli__close(&b);
}

Test(client_bench_openloop, requests_end_the_schedule, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli__bench b;
	kz_cli__phase ph;
	kz_cli_bench_stats st[2];
	kz_cli_bench_records rec;
	kz_cli_bench_schedule sc;
	uint64_t t0 = kz_cli__bnow_ns(), wait = SEC;
	size_t i;

	cr_assert_eq(PARSE(&a, "--target", "etcd", "--endpoints",
			   "http://127.0.0.1:9", "write", "--requests", "5",
			   "--rate", "1000", "--quiet"),
		     KZ_CLI_BENCH_ARGS_OK, "%s", err);
	ol_fixture(&a, &b, &ph, st, &rec, &sc, 3, 1000.0, t0);
	ph.limit = 5;
	ph.deadline_ns = 0;

	/* A second in, all five are due, whatever the rate says next. */
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + SEC, 0, &wait), 3);
	cr_assert_eq(ph.ol_next, 3);
	cr_assert_not(ph.ol_closed);
	for (i = 0; i < 3; i++)
		answer(&b, &b.slots[i], 200);
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + SEC, 0, &wait), 2);
	cr_assert(ph.ol_closed);
	cr_assert_eq(sc.queued, 2);
	cr_assert_eq(ph.sent, 5);
	for (i = 0; i < 2; i++)
		answer(&b, &b.slots[i], 200);
	cr_assert_eq(kz_cli__ol_turn(&b, t0 + 2 * SEC, 0, &wait), 0);
	kz_cli__ol_end(&ph, &sc);
	cr_assert_eq(sc.scheduled, 5);
	cr_assert_eq(sc.sent, 5);
	cr_assert_eq(st[KZ_CLI_BENCH_OP_WRITE].n_lat, 5);

	free(sc.delay_ns);
	free(st[0].lat_ns);
	kz_cli__close(&b);
}

static void quiet_fired(uv_timer_t *t)
{
	(void)t;
	cr_assert_fail("the turn waited for the quiet handle");
}

Test(client_bench_openloop, tick_due_before_the_turn_still_ends_it,
     .timeout = 20)
{
	/* A turn whose tick falls due before uv_run looks: libuv runs the
	 * tick first and would then poll with no timeout, until the other
	 * handle (a request's timeout, a quiet keep-alive connection: here
	 * a minute's timer) wakes it. The open loop waits so between due
	 * times with nothing in flight; the turn must end at once. */
	uv_loop_t loop;
	uv_timer_t tick, quiet;
	uint64_t t;

	cr_assert_eq(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &tick);
	uv_timer_init(&loop, &quiet);
	uv_timer_start(&quiet, quiet_fired, 60000, 0);
	uv_update_time(&loop);
	uv_timer_start(&tick, kz_cli__tick, 1, 0);
	/* Watch the clock until the tick is overdue (libuv's clock may be
	 * the coarse one, a millisecond behind). */
	t = uv_hrtime();
	while (uv_hrtime() - t < 5 * MS)
		;
	uv_run(&loop, UV_RUN_ONCE);
	cr_assert_not(uv_is_active((uv_handle_t *)&tick));
	cr_assert(uv_is_active((uv_handle_t *)&quiet));
	/* The stop is for that turn only. */
	uv_timer_start(&tick, kz_cli__tick, 1, 0);
	uv_run(&loop, UV_RUN_ONCE);
	cr_assert_not(uv_is_active((uv_handle_t *)&tick));
	uv_close((uv_handle_t *)&tick, NULL);
	uv_close((uv_handle_t *)&quiet, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- the summary ---------------------------------------------------------------------------- */

Test(client_bench_openloop, summary_of_an_open_loop_run, .init = clear_env)
{
	kz_cli_bench_args a;
	kz_cli_bench_result r;
	json_t *j, *sc, *d, *lat;
	uint64_t lat_ns[1000], delay_ns[4] = {0, 100000, 2000000, 30000000};
	char *text = NULL;
	size_t len = 0, i;
	FILE *f;

	cr_assert_eq(PARSE(&a, "write", "--rate", "300"), KZ_CLI_BENCH_ARGS_OK,
		     "%s", err);
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 1000; i++)
		lat_ns[i] = (i + 1) * MS; /* 1..1000 ms */
	r.op[0].requests = r.op[0].ok = 1000;
	r.op[0].lat_ns = lat_ns;
	r.op[0].n_lat = 1000;
	r.elapsed_s = 5.0;
	r.n_endpoints = 1;
	r.sched.rate = 300;
	r.sched.scheduled = 1500;
	r.sched.sent = 1000;
	r.sched.queued = 700;
	r.sched.window_s = 5.0;
	r.sched.delay_ns = delay_ns;
	r.sched.n_delay = 4;

	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	cr_assert_float_eq(json_real_value(json_object_get(j, "target_rate")),
			   300.0, 1e-9);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "achieved_rate")), 200.0, 1e-9);
	sc = json_object_get(j, "schedule");
	cr_assert_eq(json_integer_value(json_object_get(sc, "scheduled")), 1500);
	cr_assert_eq(json_integer_value(json_object_get(sc, "sent")), 1000);
	cr_assert_eq(json_integer_value(json_object_get(sc, "unsent")), 500);
	cr_assert_eq(json_integer_value(json_object_get(sc, "queued")), 700);
	cr_assert_float_eq(json_real_value(json_object_get(sc, "window_s")),
			   5.0, 1e-9);
	d = json_object_get(sc, "send_delay_ms");
	cr_assert_float_eq(json_real_value(json_object_get(d, "p50")), 0.1,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(d, "max")), 30.0,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(d, "mean")), 8.025,
			   1e-9);
	/* The latencies, p99.9 next to p99, the fields read before unchanged. */
	lat = json_object_get(j, "latency_ms");
	cr_assert_float_eq(json_real_value(json_object_get(lat, "p99")), 990.0,
			   1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(lat, "p999")),
			   999.0, 1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(lat, "max")),
			   1000.0, 1e-9);
	cr_assert_float_eq(
	    json_real_value(json_object_get(j, "throughput_ops_s")), 200.0,
	    1e-9);
	json_decref(j);

	f = open_memstream(&text, &len);
	cr_assert_not_null(f);
	kz_cli_bench_report_text(f, &a, &r);
	fclose(f);
	cr_assert(strstr(text, "open loop     300.0 requests/s asked, 200.0/s "
			       "sent") != NULL,
		  "%s", text);
	cr_assert(strstr(text, "1500 due, 1000 sent, 500 unsent") != NULL,
		  "%s", text);
	cr_assert(strstr(text, "700 waited for a free connection") != NULL,
		  "%s", text);
	cr_assert(strstr(text, "send delay    p50 0.10") != NULL, "%s", text);
	cr_assert(strstr(text, "p99 990.00  p99.9 999.00  max 1000.00") !=
		      NULL,
		  "%s", text);
	free(text);

	/* A closed-loop run has none of the schedule's fields. */
	memset(&r.sched, 0, sizeof(r.sched));
	cr_assert_eq(PARSE(&a, "write"), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	j = kz_cli_bench_report_json(&a, &r);
	cr_assert_not_null(j);
	cr_assert_null(json_object_get(j, "target_rate"));
	cr_assert_null(json_object_get(j, "achieved_rate"));
	cr_assert_null(json_object_get(j, "schedule"));
	cr_assert_not_null(
	    json_object_get(json_object_get(j, "latency_ms"), "p999"));
	json_decref(j);
}

/* ---- whole runs against a server in this process -------------------------------------------- */

#define SRV_CONNS 32

/* A plain HTTP/1.1 server on 127.0.0.1 and 127.0.0.2 (one port each),
 * in a thread, that answers every request with etcd's answer to a put,
 * one request at a time, each held delay_ns first (0: at once). */
typedef struct srv {
	int lfd[2], port[2], stop[2];
	long delay_ns;
	pthread_t th;
	unsigned long answered;
	struct {
		int fd;
		char buf[16384];
		size_t len;
	} c[SRV_CONNS];
} srv;

/* Length of the first complete request in buf, 0 when it is not all
 * there yet. */
static size_t srv_request_len(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4), *p;
	size_t head, body = 0;
	if (end == NULL)
		return 0;
	head = (size_t)(end - buf) + 4;
	for (p = buf; p < end; p = memchr(p, '\n', (size_t)(end - p)) + 1) {
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			body = strtoul(p + 15, NULL, 10);
		if (memchr(p, '\n', (size_t)(end - p)) == NULL)
			break;
	}
	return len >= head + body ? head + body : 0;
}

static void *srv_run(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\n"
				     "Content-Type: application/json\r\n"
				     "Content-Length: 13\r\n"
				     "\r\n"
				     "{\"header\":{}}";
	srv *s = arg;
	for (;;) {
		struct pollfd p[3 + SRV_CONNS];
		int who[3 + SRV_CONNS];
		nfds_t n = 0, i;
		int k;
		p[n].fd = s->stop[0];
		p[n++].events = POLLIN;
		for (k = 0; k < 2; k++) {
			p[n].fd = s->lfd[k];
			p[n++].events = POLLIN;
		}
		for (k = 0; k < SRV_CONNS; k++)
			if (s->c[k].fd >= 0) {
				who[n] = k;
				p[n].fd = s->c[k].fd;
				p[n++].events = POLLIN;
			}
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents != 0)
			break;
		for (i = 1; i < 3; i++) {
			int fd;
			if (p[i].revents == 0)
				continue;
			fd = accept(p[i].fd, NULL, NULL);
			for (k = 0; fd >= 0 && k < SRV_CONNS; k++)
				if (s->c[k].fd < 0) {
					s->c[k].fd = fd;
					s->c[k].len = 0;
					fd = -1;
				}
			if (fd >= 0)
				close(fd); /* more than the test asks for */
		}
		for (i = 3; i < n; i++) {
			size_t rl;
			ssize_t got;
			k = who[i];
			if (p[i].revents == 0)
				continue;
			got = recv(s->c[k].fd, s->c[k].buf + s->c[k].len,
				   sizeof(s->c[k].buf) - s->c[k].len, 0);
			if (got <= 0) {
				close(s->c[k].fd);
				s->c[k].fd = -1;
				continue;
			}
			s->c[k].len += (size_t)got;
			while ((rl = srv_request_len(s->c[k].buf,
						     s->c[k].len)) > 0) {
				/* The server's slowness, not the test waiting
				 * for something. */
				struct timespec ts = {0, s->delay_ns};
				if (s->delay_ns > 0)
					nanosleep(&ts, NULL);
				if (send(s->c[k].fd, answer, sizeof(answer) - 1,
					 MSG_NOSIGNAL) < 0)
					break;
				__atomic_add_fetch(&s->answered, 1,
						   __ATOMIC_RELAXED);
				memmove(s->c[k].buf, s->c[k].buf + rl,
					s->c[k].len - rl);
				s->c[k].len -= rl;
			}
		}
	}
	return NULL;
}

static void srv_start(srv *s, long delay_ns)
{
	int k, one = 1;
	memset(s, 0, sizeof(*s));
	s->delay_ns = delay_ns;
	for (k = 0; k < SRV_CONNS; k++)
		s->c[k].fd = -1;
	cr_assert_eq(pipe(s->stop), 0);
	for (k = 0; k < 2; k++) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(k == 0 ? 0x7f000001 : 0x7f000002);
		s->lfd[k] = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_geq(s->lfd[k], 0);
		setsockopt(s->lfd[k], SOL_SOCKET, SO_REUSEADDR, &one,
			   sizeof(one));
		cr_assert_eq(bind(s->lfd[k], (struct sockaddr *)&sa,
				  sizeof(sa)),
			     0, "bind: %s", strerror(errno));
		cr_assert_eq(listen(s->lfd[k], 64), 0);
		cr_assert_eq(getsockname(s->lfd[k], (struct sockaddr *)&sa,
					 &sl),
			     0);
		s->port[k] = ntohs(sa.sin_port);
	}
	cr_assert_eq(pthread_create(&s->th, NULL, srv_run, s), 0);
}

static void srv_stop(srv *s)
{
	int k;
	cr_assert_eq(write(s->stop[1], "x", 1), 1);
	pthread_join(s->th, NULL);
	for (k = 0; k < SRV_CONNS; k++)
		if (s->c[k].fd >= 0)
			close(s->c[k].fd);
	for (k = 0; k < 2; k++)
		close(s->lfd[k]);
	close(s->stop[0]);
	close(s->stop[1]);
}

/* Runs kizuna-bench against s with the options given (etcd's write:
 * plain HTTP, no certificate, no preload). */
static void run_against(srv *s, int both, kz_cli_bench_args *a,
			kz_cli_bench_result *res, const char *const *opts)
{
	static char endpoints[128];
	const char *words[32] = {"--target", "etcd", "--endpoints", endpoints,
				 "--quiet", "write"};
	char msg[512];
	size_t n = 6;
	int rc;
	if (both)
		snprintf(endpoints, sizeof(endpoints),
			 "http://127.0.0.1:%d,http://127.0.0.2:%d", s->port[0],
			 s->port[1]);
	else
		snprintf(endpoints, sizeof(endpoints), "http://127.0.0.1:%d",
			 s->port[0]);
	while (*opts != NULL && n < 31)
		words[n++] = *opts++;
	words[n] = NULL;
	cr_assert_eq(parse_words(a, words), KZ_CLI_BENCH_ARGS_OK, "%s", err);
	msg[0] = '\0';
	rc = kz_cli_bench_run(a, res, msg, sizeof(msg));
	cr_assert_eq(rc, KZ_CLI_OK, "%s", msg);
}

Test(client_bench_openloop, run_keeps_the_schedule_over_the_endpoints,
     .init = clear_env)
{
	srv s;
	kz_cli_bench_args a;
	kz_cli_bench_result res;
	const kz_cli_bench_stats *w = &res.op[KZ_CLI_BENCH_OP_WRITE];

	srv_start(&s, 0);
	run_against(&s, 1, &a, &res,
		    (const char *const[]){"--connections", "4", "--rate", "500",
					  "--requests", "20", NULL});
	cr_assert_float_eq(res.sched.rate, 500.0, 1e-12);
	cr_assert_eq(res.sched.scheduled, 20);
	cr_assert_eq(res.sched.sent, 20);
	cr_assert_eq(res.sched.n_delay, 20);
	cr_assert_eq(w->requests, 20);
	cr_assert_eq(w->ok, 20, "%s", w->first_error);
	cr_assert_eq(w->n_lat, 20);
	/* The schedule spans 20 / 500 s at least. */
	cr_assert_geq(res.sched.window_s, 0.04 - 1e-9);
	/* Requests go round the slots, so both endpoints had some. */
	cr_assert_eq(res.n_endpoints, 2);
	cr_assert_gt(res.ep[0].st.ok, 0);
	cr_assert_gt(res.ep[1].st.ok, 0);
	cr_assert_eq(res.ep[0].st.ok + res.ep[1].st.ok, 20);
	cr_assert_eq(kz_cli_bench_exit_code(&res), KZ_CLI_BENCH_EXIT_OK);
	kz_cli_bench_result_free(&res);
	srv_stop(&s);
	cr_assert_eq(s.answered, 20);
}

Test(client_bench_openloop, slow_server_shows_in_the_latency,
     .init = clear_env)
{
	/* One connection, a server that holds every answer 5 ms, 40
	 * requests due 0.5 ms apart: they can only go one after the other,
	 * so request k ends (k + 1) * 5 ms after the start at the earliest
	 * while it was due at k * 0.5 ms. Timed from its due time the last
	 * one took at least 200 - 19.5 ms; timed from its send (a closed
	 * loop's way) each would take about 5 ms. */
	srv s;
	kz_cli_bench_args a;
	kz_cli_bench_result res;
	const kz_cli_bench_stats *w = &res.op[KZ_CLI_BENCH_OP_WRITE];

	srv_start(&s, 5 * (long)MS);
	run_against(&s, 0, &a, &res,
		    (const char *const[]){"--connections", "1", "--rate",
					  "2000", "--requests", "40", NULL});
	cr_assert_eq(res.sched.scheduled, 40);
	cr_assert_eq(res.sched.sent, 40);
	cr_assert_eq(w->ok, 40, "%s", w->first_error);
	cr_assert_geq(w->lat_ns[w->n_lat - 1], 180 * MS);
	/* The tool says it could not keep to the schedule: requests waited
	 * for the connection, the last went out 39 answers (195 ms) in at
	 * the earliest, and the rate achieved is what that allows. */
	cr_assert_geq(res.sched.queued, 1);
	cr_assert_geq(res.sched.delay_ns[res.sched.n_delay - 1],
		      195 * MS - 19500000ull);
	cr_assert_geq(res.sched.window_s, 0.195);
	cr_assert_lt(kz_cli__rate(res.sched.sent, res.sched.window_s), 210.0);
	kz_cli_bench_result_free(&res);
	srv_stop(&s);
}

Test(client_bench_openloop, timed_run_leaves_the_overdue_unsent,
     .init = clear_env)
{
	/* 100 ms at 1000/s is 100 requests (99 if the phase started a ms
	 * after its deadline was set); one connection to a server that
	 * takes 5 ms an answer sends 21 at most in that time, plus the
	 * last turn's. The rest are counted, not sent; every one sent is
	 * answered and counted. */
	srv s;
	kz_cli_bench_args a;
	kz_cli_bench_result res;
	const kz_cli_bench_stats *w = &res.op[KZ_CLI_BENCH_OP_WRITE];

	srv_start(&s, 5 * (long)MS);
	run_against(&s, 0, &a, &res,
		    (const char *const[]){"--connections", "1", "--rate",
					  "1000", "--duration", "0.1", NULL});
	cr_assert_geq(res.sched.scheduled, 99);
	cr_assert_leq(res.sched.scheduled, 100);
	cr_assert_leq(res.sched.sent, 23);
	cr_assert_geq(res.sched.sent, 1);
	cr_assert_eq(w->requests, res.sched.sent);
	cr_assert_geq(res.sched.queued, 1);
	/* The text says so. */
	{
		char *text = NULL;
		size_t len = 0;
		char want[64];
		FILE *f = open_memstream(&text, &len);
		cr_assert_not_null(f);
		kz_cli_bench_report_text(f, &a, &res);
		fclose(f);
		snprintf(want, sizeof(want), "%llu unsent",
			 (unsigned long long)(res.sched.scheduled -
					      res.sched.sent));
		cr_assert(strstr(text, want) != NULL, "%s", text);
		free(text);
	}
	kz_cli_bench_result_free(&res);
	srv_stop(&s);
}
