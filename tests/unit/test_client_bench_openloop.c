/*
 * kizuna-bench's load loop (client/bench.c) on libuv, what a unit can show
 * of it without a server: the turn of the loop the tick timer bounds.
 *
 * bench.c is compiled in, as in test_client_bench.c.
 */
#include <criterion/criterion.h>

#include <uv.h>

#include "bench.c"

#define MS KZ_CLI__NS_PER_MS

/* ---- one turn of the loop ---------------------------------------------------------------- */

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
