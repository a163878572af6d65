/* The linearizability checker of kizuna-chaos (chaos/linear.c): small
 * histories known to be linearizable or not (the classic stale read, lost
 * updates, unknown and refused writes), generated histories, a wide burst
 * of concurrent calls, and random small histories against a brute-force
 * search of every order. */
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

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The most states any check since the last reset explored: the tests bound
 * the search's work by this count, never by the clock. */
static size_t most_states;

/* Checks from the initial state (v=1, value=0). */
static bool lin(const struct kz_lin_op *ops, size_t n, struct kz_lin_result *r)
{
    cr_assert_eq(kz_lin_check(ops, n, 1, 0, 0, r), 0);
    if (r->states > most_states)
        most_states = r->states;
    cr_assert(!r->gave_up, "gave up after %zu states", r->states);
    return r->linearizable;
}

/* A small deterministic generator (no global rand() state). */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t rand_below(uint64_t *s, int64_t n)
{
    return (int64_t)(next_rand(s) % (uint64_t)n);
}

Test(linear, empty)
{
    struct kz_lin_result r;
    cr_assert(lin(NULL, 0, &r));
    cr_assert_eq(r.states, 0);
    cr_assert_str_empty(r.why);
}

Test(linear, sequential)
{
    struct kz_lin_result r;
    struct kz_lin_op h[] = {
        rd(0, 1, 1, 0, 0),
        cas(2, 3, KZ_LIN_OK, 1, 5, 10, 1),
        rd(4, 5, 5, 10, 2),
        cas(6, 7, KZ_LIN_FAIL, 1, 0, 11, 3), /* stale expect: refused */
        cas(8, 9, KZ_LIN_OK, 5, 9, 12, 4),
        rd(10, 11, 9, 12, 5),
    };
    cr_assert(lin(h, LEN(h), &r), "%s", r.why);
    /* any input order: the checker sorts a copy */
    struct kz_lin_op rev[LEN(h)];
    for (size_t i = 0; i < LEN(h); i++)
        rev[i] = h[LEN(h) - 1 - i];
    cr_assert(lin(rev, LEN(rev), &r), "%s", r.why);
    cr_assert_eq(rev[0].id, 5, "the input is not changed");
}

Test(linear, dropped_reads_say_nothing)
{
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 1, KZ_LIN_OK, 1, 5, 10, 0),
                            rd(2, 3, 77, 77, 1), rd(4, 5, 88, 88, 2)};
    h[1].outcome = KZ_LIN_FAIL;
    h[2].outcome = KZ_LIN_UNKNOWN;
    cr_assert(lin(h, LEN(h), &r), "%s", r.why);
}

Test(linear, concurrent_read_sees_old_or_new)
{
    struct kz_lin_result r;
    struct kz_lin_op old[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                              rd(1, 9, 1, 0, 1)};
    struct kz_lin_op new[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                              rd(1, 9, 5, 7, 1)};
    cr_assert(lin(old, LEN(old), &r), "%s", r.why);
    cr_assert(lin(new, LEN(new), &r), "%s", r.why);
}

Test(linear, equal_times_overlap)
{
    /* The write completes at 10, the read starts at 10: they overlap, so
     * seeing the old state is fine. One microsecond later it is not. */
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                            rd(10, 20, 1, 0, 1)};
    cr_assert(lin(h, LEN(h), &r), "%s", r.why);
    h[1].invoke_us = 11;
    cr_assert(!lin(h, LEN(h), &r));
    cr_assert_eq(r.bad_id, 1);
}

Test(linear, stale_read_after_acknowledged_write)
{
    /* The write completes at 10; a read that starts at 20 returns the old
     * state: the classic stale read of a leader that lost its lease. */
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 100),
                            rd(20, 30, 1, 0, 101)};
    cr_assert(!lin(h, LEN(h), &r));
    cr_assert_eq(r.bad_id, 101);
    cr_assert_not_null(strstr(r.why, "read (v=1, value=0) at op 101"), "%s",
                       r.why);
    cr_assert_not_null(strstr(r.why, "(v=5, value=7)"), "%s", r.why);
}

Test(linear, value_never_written)
{
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 1, KZ_LIN_OK, 1, 5, 7, 3),
                            rd(0, 10, 5, 42, 7)};
    cr_assert(!lin(h, LEN(h), &r));
    cr_assert_eq(r.bad_id, 7);
}

Test(linear, lost_update)
{
    /* Two writers both succeed from version 1: one overwrote the other. */
    struct kz_lin_result r;
    struct kz_lin_op both[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                               cas(0, 10, KZ_LIN_OK, 1, 6, 8, 1)};
    cr_assert(!lin(both, LEN(both), &r));
    struct kz_lin_op seq[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 7, 0),
                              cas(20, 30, KZ_LIN_OK, 1, 6, 8, 1)};
    cr_assert(!lin(seq, LEN(seq), &r));
    cr_assert_eq(r.bad_id, 1);
    cr_assert_not_null(strstr(r.why, "cas ok"), "%s", r.why);
}

Test(linear, unknown_write_observed)
{
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 5, KZ_LIN_UNKNOWN, 1, 0, 7, 0),
                            rd(100, 101, 9, 7, 1),
                            cas(102, 103, KZ_LIN_OK, 9, 12, 8, 2),
                            rd(104, 105, 12, 8, 3)};
    cr_assert(lin(h, LEN(h), &r), "%s", r.why);
    /* observed by a write only: its expect is the version it made */
    struct kz_lin_op w[] = {cas(0, 5, KZ_LIN_UNKNOWN, 1, 0, 7, 0),
                            cas(100, 101, KZ_LIN_OK, 9, 12, 8, 1),
                            rd(104, 105, 12, 8, 2)};
    cr_assert(lin(w, LEN(w), &r), "%s", r.why);
}

Test(linear, unknown_write_never_observed)
{
    struct kz_lin_result r;
    struct kz_lin_op h[] = {cas(0, 5, KZ_LIN_UNKNOWN, 1, 0, 7, 0),
                            rd(100, 101, 1, 0, 1),
                            cas(102, 103, KZ_LIN_OK, 1, 12, 8, 2),
                            rd(104, 105, 12, 8, 3)};
    cr_assert(lin(h, LEN(h), &r), "%s", r.why);
}

Test(linear, unknown_write_observed_too_early)
{
    struct kz_lin_result r;
    /* seen before it was even sent */
    struct kz_lin_op early[] = {rd(0, 1, 9, 7, 0),
                                cas(10, 11, KZ_LIN_UNKNOWN, 1, 0, 7, 1)};
    cr_assert(!lin(early, LEN(early), &r));
    cr_assert_eq(r.bad_id, 0);
    /* took effect, then a later read sees the state from before it */
    struct kz_lin_op flip[] = {cas(0, 1, KZ_LIN_UNKNOWN, 1, 0, 7, 0),
                               rd(10, 11, 9, 7, 1), rd(20, 21, 1, 0, 2)};
    cr_assert(!lin(flip, LEN(flip), &r));
    cr_assert_eq(r.bad_id, 2);
    /* its expect never matched, yet its value shows up */
    struct kz_lin_op nomatch[] = {cas(0, 1, KZ_LIN_UNKNOWN, 4, 0, 7, 0),
                                  rd(10, 11, 9, 7, 1)};
    cr_assert(!lin(nomatch, LEN(nomatch), &r));
    cr_assert_eq(r.bad_id, 1);
}

Test(linear, refused_write)
{
    struct kz_lin_result r;
    /* refused although the version was `expect` all along */
    struct kz_lin_op bad[] = {cas(0, 1, KZ_LIN_FAIL, 1, 0, 7, 0),
                              rd(2, 3, 1, 0, 1)};
    cr_assert(!lin(bad, LEN(bad), &r));
    cr_assert_eq(r.bad_id, 0);
    cr_assert_not_null(strstr(r.why, "cas refused"), "%s", r.why);
    struct kz_lin_op alone[] = {cas(0, 1, KZ_LIN_FAIL, 1, 0, 7, 0)};
    cr_assert(!lin(alone, LEN(alone), &r));
    /* refused while another write moved the version: fine */
    struct kz_lin_op ok[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 8, 0),
                             cas(2, 12, KZ_LIN_FAIL, 1, 0, 7, 1),
                             rd(20, 21, 5, 8, 2)};
    cr_assert(lin(ok, LEN(ok), &r), "%s", r.why);
    /* but not once that write had completed before it began... unless it
     * is refused for a version it did not expect */
    struct kz_lin_op after[] = {cas(0, 10, KZ_LIN_OK, 1, 5, 8, 0),
                                cas(20, 30, KZ_LIN_FAIL, 5, 0, 7, 1)};
    cr_assert(!lin(after, LEN(after), &r));
    cr_assert_eq(r.bad_id, 1);
}

/* A generated history: `clients` clients, each one call at a time, calls
 * overlapping across clients; each takes effect at a random point inside
 * its interval, and the results are computed by applying the calls in the
 * order of those points. Linearizable by construction. unknown_pct of the
 * writes lose their answer (whether they took effect or not). */
struct point {
    int64_t at;
    size_t i;
};

static int by_point(const void *a, const void *b)
{
    const struct point *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

static void generate(struct kz_lin_op *h, size_t n, size_t clients,
                     uint64_t seed, int64_t spread, int unknown_pct)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    struct point *pts = malloc(n * sizeof *pts);
    size_t *client = malloc(n * sizeof *client);
    int64_t *clock = calloc(clients, sizeof *clock);
    uint64_t *known = malloc(clients * sizeof *known);
    cr_assert(pts && client && clock && known);
    for (size_t c = 0; c < clients; c++)
        known[c] = 1;
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)rand_below(&s, (int64_t)clients);
        int64_t t0 = clock[c] + rand_below(&s, 5);
        int64_t t1 = t0 + 1 + rand_below(&s, spread);
        clock[c] = t1 + 1;
        h[i] = (struct kz_lin_op){.invoke_us = t0, .complete_us = t1,
                                  .id = i};
        client[i] = c;
        pts[i] = (struct point){.at = t0 + rand_below(&s, t1 - t0 + 1),
                                .i = i};
    }
    qsort(pts, n, sizeof *pts, by_point);
    uint64_t version = 1, next_version = 2;
    int64_t value = 0, token = 1000;
    for (size_t k = 0; k < n; k++) {
        struct kz_lin_op *o = &h[pts[k].i];
        size_t c = client[pts[k].i];
        if (rand_below(&s, 3) == 0) {
            o->kind = KZ_LIN_READ;
            o->outcome = KZ_LIN_OK;
            o->version = version;
            o->value = value;
            known[c] = version;
            continue;
        }
        o->kind = KZ_LIN_CAS;
        o->value = token++;
        o->expect = known[c]; /* the last version this client saw */
        if (o->expect == version) {
            version = o->version = next_version++;
            value = o->value;
            o->outcome = KZ_LIN_OK;
            known[c] = version;
        } else {
            o->outcome = KZ_LIN_FAIL;
            known[c] = version; /* as if the 412 told it */
        }
        if (rand_below(&s, 100) < unknown_pct) {
            o->outcome = KZ_LIN_UNKNOWN;
            o->version = 0;
            o->complete_us = INT64_MAX;
        }
    }
    free(pts);
    free(client);
    free(clock);
    free(known);
}

Test(linear, generated_histories)
{
    enum { N = 300 };
    struct kz_lin_op h[N];
    struct kz_lin_result r;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        generate(h, N, 5, seed, 40, 0);
        cr_assert(lin(h, N, &r), "seed %lu: %s", (unsigned long)seed, r.why);
        /* corrupt one read in the middle: a value nobody wrote */
        size_t bad = N;
        for (size_t i = N / 2; i < N && bad == N; i++)
            if (h[i].kind == KZ_LIN_READ)
                bad = i;
        cr_assert_lt(bad, N);
        h[bad].value = -777;
        cr_assert(!lin(h, N, &r), "seed %lu: a corrupted read passed",
                  (unsigned long)seed);
        cr_assert_eq(r.bad_id, bad, "seed %lu: bad_id %zu, not %zu: %s",
                     (unsigned long)seed, r.bad_id, bad, r.why);
    }
}

Test(linear, generated_histories_with_unknown_writes)
{
    enum { N = 300 };
    struct kz_lin_op h[N];
    struct kz_lin_result r;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        generate(h, N, 5, seed, 40, 20);
        cr_assert(lin(h, N, &r), "seed %lu: %s", (unsigned long)seed, r.why);
        /* proving a corrupted one wrong explores every fate of the unknown
         * writes before it: must not give up */
        size_t bad = N;
        for (size_t i = N / 2; i < N && bad == N; i++)
            if (h[i].kind == KZ_LIN_READ)
                bad = i;
        cr_assert_lt(bad, N);
        h[bad].value = -777;
        cr_assert(!lin(h, N, &r), "seed %lu: a corrupted read passed",
                  (unsigned long)seed);
        cr_assert_eq(r.bad_id, bad, "seed %lu: %s", (unsigned long)seed,
                     r.why);
    }
}

Test(linear, many_busy_clients)
{
    /* 10 clients, ~9 calls overlapping at any time, a fifth of the writes
     * unanswered (a partition): must finish within the default bound. */
    enum { N = 400 };
    static struct kz_lin_op h[N];
    struct kz_lin_result r;
    most_states = 0;
    generate(h, N, 10, 11, 90, 20);
    cr_assert(lin(h, N, &r), "%s", r.why);
    /* memoised, with reads taken greedily, the search stays near the
     * history's length (661 states when written); a blow-up is a bug */
    cr_assert_lt(r.states, 10 * N, "%zu states", r.states);
}

/* 40 calls at once: a chain of 10 writes in shuffled order, 30 reads of
 * its states. Without taking reads greedily and memoising this is
 * hopeless (40! orders, 2^30 read subsets). */
static size_t burst(struct kz_lin_op *h, uint64_t seed)
{
    uint64_t s = seed;
    size_t n = 0;
    for (size_t k = 0; k < 10; k++, n++) /* v 1+k -> 2+k, value 100+k */
        h[n] = cas(0, 1000, KZ_LIN_OK, 1 + k, 2 + k, 100 + (int64_t)k, n);
    for (size_t k = 0; k < 30; k++, n++) {
        int64_t at = rand_below(&s, 11); /* version 1+at */
        h[n] = rd(0, 1000, 1 + (uint64_t)at, at ? 99 + at : 0, n);
    }
    for (size_t i = n - 1; i > 0; i--) { /* shuffle the call order */
        size_t j = (size_t)rand_below(&s, (int64_t)i + 1);
        struct kz_lin_op t = h[i];
        h[i] = h[j];
        h[j] = t;
    }
    for (size_t i = 0; i < n; i++)
        h[i].invoke_us = (int64_t)i; /* all overlap, calls in that order */
    return n;
}

Test(linear, burst_of_concurrent_calls)
{
    struct kz_lin_op h[42];
    struct kz_lin_result r;
    most_states = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        size_t n = burst(h, seed);
        cr_assert(lin(h, n, &r), "%s", r.why);
        /* a read after all of it that sees a middle state */
        h[n] = rd(2000, 2001, 6, 104, 999);
        cr_assert(!lin(h, n + 1, &r));
        cr_assert_eq(r.bad_id, 999, "%s", r.why);
        /* a read among them of a value nobody wrote */
        h[n] = rd(5, 1000, 6, 555, 998);
        cr_assert(!lin(h, n + 1, &r));
        cr_assert_eq(r.bad_id, 998, "%s", r.why);
        /* and a lost update among them */
        h[n] = cas(7, 1000, KZ_LIN_OK, 4, 50, 5000, 997);
        cr_assert(!lin(h, n + 1, &r));
    }
    /* 40 reads of the same state and one impossible read, all at once */
    for (size_t i = 0; i < 40; i++)
        h[i] = rd((int64_t)i, 1000, 1, 0, i);
    h[40] = rd(3, 1000, 1, 1, 40);
    cr_assert(!lin(h, 41, &r));
    cr_assert_eq(r.bad_id, 40);
    /* 41 states at most when written: without greedy reads and the memo
     * this is 40! orders */
    cr_assert_lt(most_states, 400, "%zu states", most_states);
}

Test(linear, gives_up_at_the_bound)
{
    /* unknown writes that all fit, and a read nothing explains: the full
     * search has many states */
    struct kz_lin_op h[30];
    size_t n = 0;
    for (size_t k = 0; k < 20; k++, n++)
        h[n] = cas((int64_t)k, 0, KZ_LIN_UNKNOWN, 1 + k % 2, 0,
                   100 + (int64_t)k, n);
    for (size_t k = 0; k < 9; k++, n++)
        h[n] = rd(30, 1000, 50, 100 + (int64_t)k, n);
    h[n] = rd(30, 1000, 3, 42, n);
    n++;
    struct kz_lin_result r;
    cr_assert_eq(kz_lin_check(h, n, 1, 0, 5, &r), 0);
    cr_assert(r.gave_up);
    cr_assert(!r.linearizable);
    cr_assert_not_null(strstr(r.why, "gave up"), "%s", r.why);
}

/* The brute force: every order of the operations that respects real time,
 * unknown writes placed anywhere after their call or not at all. Same
 * model as linear.h describes. */
struct bstate {
    uint64_t version;
    int64_t value;
    bool known;
};

static bool brute(const struct kz_lin_op *h, size_t n, unsigned used,
                  struct bstate s)
{
    bool done = true;
    for (size_t i = 0; i < n; i++)
        if (!(used >> i & 1) && h[i].outcome != KZ_LIN_UNKNOWN)
            done = false;
    if (done)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (used >> i & 1)
            continue;
        bool minimal = true; /* no pending op completed before i began */
        for (size_t j = 0; j < n && minimal; j++)
            if (!(used >> j & 1) && h[j].outcome != KZ_LIN_UNKNOWN &&
                h[j].complete_us < h[i].invoke_us)
                minimal = false;
        if (!minimal)
            continue;
        const struct kz_lin_op *o = &h[i];
        struct bstate t = s;
        bool ok;
        if (o->kind == KZ_LIN_READ) {
            ok = s.value == o->value && (!s.known || s.version == o->version);
            t = (struct bstate){o->version, o->value, true};
        } else if (o->outcome == KZ_LIN_FAIL) {
            ok = !s.known || s.version != o->expect;
        } else {
            ok = !s.known || s.version == o->expect;
            t = (struct bstate){o->version, o->value,
                                o->outcome == KZ_LIN_OK};
        }
        if (ok && brute(h, n, used | 1u << i, t))
            return true;
    }
    return false;
}

Test(linear, agrees_with_brute_force)
{
    uint64_t s = 12345;
    size_t yes = 0, no = 0;
    for (int round = 0; round < 10000; round++) {
        struct kz_lin_op h[8];
        size_t n = 1 + (size_t)rand_below(&s, 8);
        for (size_t i = 0; i < n; i++) {
            int64_t t0 = rand_below(&s, 20);
            int64_t t1 = t0 + rand_below(&s, 8);
            /* drawn one by one: argument order is unspecified */
            uint64_t v = 1 + (uint64_t)rand_below(&s, 3);
            uint64_t e = 1 + (uint64_t)rand_below(&s, 3);
            if (rand_below(&s, 2) == 0) {
                h[i] = rd(t0, t1, v, rand_below(&s, 4), i);
            } else {
                int outcome = (int)rand_below(&s, 3);
                h[i] = cas(t0, t1, outcome, e, v, 1 + (int64_t)i % 3, i);
                if (outcome == KZ_LIN_UNKNOWN) /* ignored by the checker */
                    h[i].complete_us = rand_below(&s, 2) ? t0 : INT64_MAX;
            }
        }
        bool want = brute(h, n, 0, (struct bstate){1, 0, true});
        struct kz_lin_result r;
        cr_assert_eq(kz_lin_check(h, n, 1, 0, 0, &r), 0);
        cr_assert(!r.gave_up);
        if (r.linearizable != want) {
            for (size_t i = 0; i < n; i++)
                cr_log_error("op %zu: [%ld,%ld] kind %d outcome %d expect "
                             "%lu version %lu value %ld",
                             i, (long)h[i].invoke_us, (long)h[i].complete_us,
                             h[i].kind, h[i].outcome,
                             (unsigned long)h[i].expect,
                             (unsigned long)h[i].version, (long)h[i].value);
            cr_assert_fail("round %d: checker %d, brute force %d (%s)", round,
                           r.linearizable, want, r.why);
        }
        if (want)
            yes++;
        else
            no++;
    }
    /* both verdicts well represented */
    cr_assert_gt(yes, 300, "%zu linearizable", yes);
    cr_assert_gt(no, 300, "%zu not", no);
}
