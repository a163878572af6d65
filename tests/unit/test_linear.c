/* The linearizability checker of kizuna-chaos (chaos/linear.c) on small
 * histories known to be linearizable or not, including the classic stale
 * read, and on generated ones. */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "linear.h"

static struct kz_lin_op rd(int64_t t0, int64_t t1, uint64_t v, int64_t x,
                           size_t id)
{
    return (struct kz_lin_op){.invoke_us = t0, .complete_us = t1,
                              .kind = KZ_LIN_READ, .outcome = KZ_LIN_OK,
                              .version = v, .value = x, .id = id};
}

static struct kz_lin_op cas(int64_t t0, int64_t t1, int outcome,
                            uint64_t expect, uint64_t v, int64_t x, size_t id)
{
    return (struct kz_lin_op){.invoke_us = t0, .complete_us = t1,
                              .kind = KZ_LIN_CAS, .outcome = outcome,
                              .expect = expect, .version = v, .value = x,
                              .id = id};
}

static bool lin(const struct kz_lin_op *ops, size_t n, struct kz_lin_result *r)
{
    cr_assert_eq(kz_lin_check(ops, n, 1, 0, 0, r), 0);
    cr_assert(!r->gave_up);
    return r->linearizable;
}

Test(linear, empty_and_sequential)
{
    struct kz_lin_result r;
    cr_assert(lin(NULL, 0, &r));
    struct kz_lin_op h[] = {
        rd(0, 1, 1, 0, 0),
        cas(2, 3, KZ_LIN_OK, 1, 5, 10, 1),
        rd(4, 5, 5, 10, 2),
        cas(6, 7, KZ_LIN_FAIL, 1, 0, 11, 3), /* stale expect: refused */
        cas(8, 9, KZ_LIN_OK, 5, 9, 12, 4),
        rd(10, 11, 9, 12, 5),
    };
    cr_assert(lin(h, sizeof h / sizeof h[0], &r), "%s", r.why);
}

Test(linear, concurrent_read_sees_old_or_new)
{
    struct kz_lin_result r;
    struct kz_lin_op old[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                              rd(1, 9, 1, 0, 1)};
    struct kz_lin_op new[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                              rd(1, 9, 5, 7, 1)};
    cr_assert(lin(old, 2, &r));
    cr_assert(lin(new, 2, &r));
}

Test(linear, stale_read_after_acknowledged_write)
{
    /* The write completes at 10; a read that starts at 20 returns the old
     * state: the classic stale read of a leader that lost its lease. */
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 100),
                            rd(20, 30, 1, 0, 101)};
    cr_assert(!lin(h, 2, &r));
    cr_assert_eq(r.bad_id, 101);
    cr_assert_not_null(strstr(r.why, "read of (v=1, value=0)"), "%s", r.why);
}

Test(linear, value_never_written)
{
    struct kz_lin_result r;
    struct kz_lin_op h[] = {rd(0, 1, 1, 42, 7)};
    cr_assert(!lin(h, 1, &r));
    cr_assert_eq(r.bad_id, 7);
}

Test(linear, lost_update)
{
    /* Two writers both succeed from version 1: one overwrote the other. */
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                            cas(0, 10, KZ_LIN_OK, 1, 6, 8, 1)};
    cr_assert(!lin(h, 2, &r));
}

Test(linear, unknown_writes)
{
    struct kz_lin_result r;
    /* observed later: it took effect */
    struct kz_lin_op seen[] = {cas(0, 5, KZ_LIN_UNKNOWN, 1, 0, 7, 0),
                               rd(100, 101, 9, 7, 1),
                               cas(102, 103, KZ_LIN_OK, 9, 12, 8, 2),
                               rd(104, 105, 12, 8, 3)};
    cr_assert(lin(seen, 4, &r), "%s", r.why);
    /* never observed: it may never have happened */
    struct kz_lin_op never[] = {cas(0, 5, KZ_LIN_UNKNOWN, 1, 0, 7, 0),
                                rd(100, 101, 1, 0, 1),
                                cas(102, 103, KZ_LIN_OK, 1, 12, 8, 2),
                                rd(104, 105, 12, 8, 3)};
    cr_assert(lin(never, 4, &r), "%s", r.why);
    /* observed before it was even sent: impossible */
    struct kz_lin_op early[] = {rd(0, 1, 9, 7, 0),
                                cas(10, 11, KZ_LIN_UNKNOWN, 1, 0, 7, 1)};
    cr_assert(!lin(early, 2, &r));
    cr_assert_eq(r.bad_id, 0);
    /* took effect, then a later read sees the state from before it, then
     * it again: no order explains both */
    struct kz_lin_op flip[] = {cas(0, 1, KZ_LIN_UNKNOWN, 1, 0, 7, 0),
                               rd(10, 11, 9, 7, 1), rd(20, 21, 1, 0, 2)};
    cr_assert(!lin(flip, 3, &r));
    cr_assert_eq(r.bad_id, 2);
}

Test(linear, refused_write)
{
    struct kz_lin_result r;
    /* refused although the version was `expect` all along */
    struct kz_lin_op bad[] = {cas(0, 1, KZ_LIN_FAIL, 1, 0, 7, 0),
                              rd(2, 3, 1, 0, 1)};
    cr_assert(!lin(bad, 2, &r));
    cr_assert_eq(r.bad_id, 0);
    /* refused while another write moved the version: fine */
    struct kz_lin_op ok[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 8, 0),
                             cas(2, 12, KZ_LIN_FAIL, 1, 0, 7, 1),
                             rd(20, 21, 5, 8, 2)};
    cr_assert(lin(ok, 3, &r), "%s", r.why);
}

/* A generated history: clients with overlapping intervals whose effects
 * happen at random points inside them. Linearizable by construction. */
static size_t generate(struct kz_lin_op *h, size_t n, unsigned seed,
                       int64_t spread)
{
    srand(seed);
    struct point {
        int64_t at;
        size_t i;
    } *pts = malloc(n * sizeof *pts);
    for (size_t i = 0; i < n; i++) {
        int64_t t0 = (int64_t)i * 10 + rand() % 5;
        int64_t t1 = t0 + 1 + rand() % spread;
        h[i] = (struct kz_lin_op){.invoke_us = t0, .complete_us = t1,
                                  .id = i};
        pts[i].at = t0 + rand() % (t1 - t0 + 1);
        pts[i].i = i;
    }
    /* apply in linearization-point order */
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (pts[b].at < pts[a].at) {
                struct point t = pts[a];
                pts[a] = pts[b];
                pts[b] = t;
            }
    uint64_t version = 1, next_version = 2;
    int64_t value = 0, token = 1;
    for (size_t k = 0; k < n; k++) {
        struct kz_lin_op *o = &h[pts[k].i];
        int c = rand() % 3;
        if (c == 0) {
            o->kind = KZ_LIN_READ;
            o->outcome = KZ_LIN_OK;
            o->version = version;
            o->value = value;
        } else {
            o->kind = KZ_LIN_CAS;
            o->value = token++;
            /* half the writers know the current version */
            o->expect = rand() % 2 ? version : version - 1;
            if (o->expect == version) {
                version = o->version = next_version++;
                value = o->value;
                o->outcome = KZ_LIN_OK;
            } else {
                o->outcome = KZ_LIN_FAIL;
            }
            if (c == 2 && rand() % 4 == 0) {
                o->outcome = KZ_LIN_UNKNOWN; /* the client never heard */
                o->version = 0;
            }
        }
    }
    free(pts);
    return n;
}

Test(linear, generated_histories)
{
    enum { N = 300 };
    struct kz_lin_op h[N];
    struct kz_lin_result r;
    for (unsigned seed = 1; seed <= 5; seed++) {
        generate(h, N, seed, 40);
        cr_assert_eq(kz_lin_check(h, N, 1, 0, 0, &r), 0);
        cr_assert(r.linearizable, "seed %u: %s", seed, r.why);
        /* corrupt one read that comes after a committed write */
        for (size_t i = N / 2; i < N; i++)
            if (h[i].kind == KZ_LIN_READ && h[i].value != 0) {
                h[i].value = 999999;
                break;
            }
        cr_assert_eq(kz_lin_check(h, N, 1, 0, 0, &r), 0);
        cr_assert(!r.linearizable, "seed %u: a corrupted read passed", seed);
    }
}

Test(linear, busy_clients_with_unanswered_writes)
{
    /* 10 clients, one call at a time each, like kizuna-chaos's workers;
     * a quarter of the writes never answered (a partition). The search
     * must finish (no give-up) within its default bound. */
    enum { PROCS = 10, EACH = 40, N = PROCS * EACH };
    static struct kz_lin_op h[N];
    struct kz_lin_result r;
    generate(h, N, 11, 90); /* ~9 calls overlap at any time */
    cr_assert_eq(kz_lin_check(h, N, 1, 0, 0, &r), 0);
    cr_assert(!r.gave_up, "%zu states were not enough", r.states);
    cr_assert(r.linearizable, "%s", r.why);
}
