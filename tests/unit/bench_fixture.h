/*
 * bench_fixture.h — a kizuna-bench run set up by hand for unit tests that
 * include client/bench.c: the arguments parsed, the endpoints and headers
 * made, the transport's loop opened but never run (so no network: a
 * request started only begins its connect), and the phase's stats and
 * records wired in. For test_client_bench.c and
 * test_client_bench_etcd.c.
 */
#ifndef KZ_TEST_BENCH_FIXTURE_H
#define KZ_TEST_BENCH_FIXTURE_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* Sets up b for the parsed a, with phase ph feeding st[0..1] and rec;
 * with_slot: also one request slot, returned (else NULL). Undone by
 * kz_cli__close(b). */
static kz_cli__slot *bench_fixture(kz_cli_bench_args *a, kz_cli__bench *b,
				   kz_cli__phase *ph, kz_cli_bench_stats st[2],
				   kz_cli_bench_records *rec, int with_slot)
{
	char msg[256];
	kz_cli__slot *s = NULL;

	memset(b, 0, sizeof(*b));
	memset(ph, 0, sizeof(*ph));
	memset(st, 0, 2 * sizeof(*st));
	memset(rec, 0, sizeof(*rec));
	b->a = a;
	b->rng = 1;
	kz_cli_sample_init(&b->gen, a->seed, KZ_CLI__SHELTERS);
	cr_assert_eq(kz_cli_endpoints_parse(a->endpoints, &b->eps, &b->n_eps,
					    msg, sizeof(msg)),
		     KZ_CLI_OK, "%s", msg);
	cr_assert_eq(kz_cli__make_headers(b), KZ_CLI_OK);
	cr_assert_eq(kz_cli__open_transport(b), KZ_CLI_OK);
	if (with_slot) {
		b->n_slots = 1;
		b->slots = calloc(1, sizeof(*b->slots));
		cr_assert_not_null(b->slots);
		s = &b->slots[0];
		s->b = b;
	}
	ph->st[0] = &st[0];
	ph->st[1] = &st[1];
	ph->rec = rec;
	b->ph = ph;
	return s;
}

#endif
