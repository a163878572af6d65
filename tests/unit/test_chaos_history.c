/* The history format and checkers of kizuna-chaos (chaos/history.c): each
 * checker on a small history that passes and on one with the anomaly it
 * exists to catch. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

static struct kz_hist_op op(int kind, int result, int64_t t0, int64_t t1,
                            const char *key)
{
    struct kz_hist_op o;
    memset(&o, 0, sizeof o);
    o.op = kind;
    o.result = result;
    o.t0 = t0;
    o.t1 = t1;
    o.node = 1;
    snprintf(o.region, sizeof o.region, "tokyo");
    snprintf(o.key, sizeof o.key, "%s", key ? key : "");
    return o;
}

static void add(struct kz_hist *h, struct kz_hist_op o)
{
    cr_assert_eq(kz_hist_add(h, &o), 0);
}

static bool has_anomaly(const struct kz_check *c, const char *needle)
{
    for (size_t i = 0; i < c->anomalies; i++)
        if (strstr(c->anomaly[i], needle) != NULL)
            return true;
    return false;
}

/* A register key: init v10/0, CAS to v20/7, then reads. */
static void register_history(struct kz_hist *h, int64_t stale_value)
{
    struct kz_hist_op o = op(KZ_H_INIT, KZ_R_OK, 0, 0, "v1");
    o.version = 10;
    add(h, o);
    o = op(KZ_H_CAS, KZ_R_OK, 100, 200, "v1");
    o.expect = 10;
    o.version = 20;
    o.value = 7;
    add(h, o);
    o = op(KZ_H_READ, KZ_R_OK, 300, 400, "v1");
    o.version = stale_value ? 10 : 20;
    o.value = stale_value ? 0 : 7;
    snprintf(o.rid, sizeof o.rid, "r-read");
    add(h, o);
}

Test(chaos_history, lines_round_trip)
{
    struct kz_hist_op o = op(KZ_H_CAS, KZ_R_UNKNOWN, 12, 34, "v-9");
    o.expect = 5;
    o.version = 6;
    o.value = 77;
    o.status = 503;
    o.proc = 3;
    snprintf(o.rid, sizeof o.rid, "abc");
    snprintf(o.what, sizeof o.what, "with \"quotes\"");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(kz_hist_write(f, &o), 0);
    fclose(f);
    struct kz_hist_op back;
    cr_assert_eq(kz_hist_parse_line(buf, &back), 0, "%s", buf);
    free(buf);
    cr_assert_eq(back.op, KZ_H_CAS);
    cr_assert_eq(back.result, KZ_R_UNKNOWN);
    cr_assert_eq(back.t0, 12);
    cr_assert_eq(back.t1, 34);
    cr_assert_eq(back.expect, 5);
    cr_assert_eq(back.version, 6);
    cr_assert_eq(back.value, 77);
    cr_assert_eq(back.status, 503);
    cr_assert_eq(back.proc, 3);
    cr_assert_str_eq(back.key, "v-9");
    cr_assert_str_eq(back.rid, "abc");
    cr_assert_str_eq(back.what, "with \"quotes\"");
    cr_assert_str_eq(back.region, "tokyo");
    cr_assert_eq(kz_hist_parse_line("{\"t0\":1}", &back), -1);
    cr_assert_eq(kz_hist_parse_line("not json", &back), -1);
    /* times outside a run (the checkers size tables by them) */
    cr_assert_eq(kz_hist_parse_line("{\"t0\":5,\"t1\":4,\"op\":\"read\","
                                    "\"result\":\"ok\"}",
                                    &back),
                 -1);
    cr_assert_eq(kz_hist_parse_line("{\"t0\":-1,\"t1\":4,\"op\":\"read\","
                                    "\"result\":\"ok\"}",
                                    &back),
                 -1);
    cr_assert_eq(kz_hist_parse_line("{\"t0\":1,\"t1\":351166666666666905,"
                                    "\"op\":\"read\",\"result\":\"ok\"}",
                                    &back),
                 -1);
    cr_assert_eq(kz_hist_parse_line("{\"t0\":1,\"t1\":2,\"op\":\"zap\","
                                    "\"result\":\"ok\"}",
                                    &back),
                 -1);
}

Test(chaos_history, register_linearizable_and_stale_read)
{
    struct kz_hist h = {0};
    struct kz_check c;
    register_history(&h, 0);
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.anomalies, 0, "%s", c.anomalies ? c.anomaly[0] : "");
    cr_assert_eq(c.keys_checked, 1);
    kz_check_free(&c);
    kz_hist_free(&h);

    register_history(&h, 1); /* the read after the CAS sees the old value */
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert(has_anomaly(&c, "register v1: not linearizable"));
    kz_check_free(&c);
    kz_hist_free(&h);
}

Test(chaos_history, set_every_acknowledged_add_on_every_node)
{
    struct kz_hist h = {0};
    struct kz_hist_op a = op(KZ_H_ADD, KZ_R_OK, 10, 20, "v-new");
    add(&h, a);
    add(&h, op(KZ_H_ADD, KZ_R_UNKNOWN, 10, 20, "")); /* may be anywhere */
    struct kz_hist_op f1 = op(KZ_H_FINAL, KZ_R_OK, 30, 31, "v-new");
    struct kz_hist_op f2 = f1;
    f2.node = 2;
    add(&h, f1);
    add(&h, f2);
    struct kz_check c;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.anomalies, 0, "%s", c.anomalies ? c.anomaly[0] : "");
    kz_check_free(&c);

    h.ops[3].result = KZ_R_FAIL; /* node 2 lost it */
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.anomalies, 1);
    cr_assert(has_anomaly(&c, "v-new (t=0.000 s) is missing on node 2"));
    kz_check_free(&c);

    h.n = 3; /* node 2 never asked: also an anomaly, not a pass */
    h.ops[2].node = 2;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert(has_anomaly(&c, "not read back on node 1"));
    kz_check_free(&c);
    kz_hist_free(&h);
}

Test(chaos_history, audit_counts_and_chains)
{
    struct kz_hist h = {0};
    struct kz_hist_op a = op(KZ_H_AUDIT, KZ_R_OK, 1, 1, "v1");
    a.value = 1;
    snprintf(a.rid, sizeof a.rid, "r1");
    add(&h, a);
    struct kz_hist_op ch = op(KZ_H_CHAIN, KZ_R_OK, 2, 2, "");
    ch.value = 40;
    snprintf(ch.what, sizeof ch.what, "beef");
    add(&h, ch);
    ch.node = 2;
    add(&h, ch);
    struct kz_check c;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.anomalies, 0);
    cr_assert(c.chains_equal);
    kz_check_free(&c);

    h.ops[0].value = 0; /* a read nobody recorded */
    h.ops[2].value = 39; /* node 2 is one record short */
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert(has_anomaly(&c, "has 0 access records, not 1"));
    cr_assert(has_anomaly(&c, "node 2's chain (39 entries"));
    cr_assert(!c.chains_equal);
    kz_check_free(&c);
    kz_hist_free(&h);
}

Test(chaos_history, digests_must_match)
{
    struct kz_hist h = {0};
    for (unsigned n = 1; n <= 3; n++) {
        struct kz_hist_op d = op(KZ_H_DIGEST, KZ_R_OK, 5, 5, "");
        d.node = n;
        d.version = 99;
        snprintf(d.what, sizeof d.what, "%s", n == 3 ? "bbbb" : "aaaa");
        add(&h, d);
    }
    struct kz_check c;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert(!c.digests_equal);
    cr_assert(has_anomaly(&c, "convergence: node 3 holds bbbb"));
    kz_check_free(&c);
    snprintf(h.ops[2].what, sizeof h.ops[2].what, "aaaa");
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert(c.digests_equal);
    cr_assert_eq(c.digest_index, 99);
    cr_assert_eq(c.anomalies, 0);
    kz_check_free(&c);
    kz_hist_free(&h);
}

Test(chaos_history, membership_changes_must_complete)
{
    struct kz_hist h = {0};
    struct kz_hist_op a = op(KZ_H_MEMBER, KZ_R_OK, 5, 9, "");
    a.node = 4;
    snprintf(a.what, sizeof a.what, "add node 4 as a voter");
    add(&h, a);
    struct kz_hist_op u = op(KZ_H_MEMBER, KZ_R_OK, 9, 12, "");
    u.node = 4;
    snprintf(u.what, sizeof u.what, "node 4 caught up to index 70");
    add(&h, u);
    struct kz_check c;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.anomalies, 0);
    cr_assert_eq(c.counts[KZ_H_MEMBER][KZ_R_OK], 2);
    kz_check_free(&c);
    /* the catch-up timed out, and a removal was left in doubt */
    h.ops[1].result = KZ_R_FAIL;
    struct kz_hist_op d = op(KZ_H_MEMBER, KZ_R_UNKNOWN, 20, 80, "");
    d.node = 4;
    d.status = 503;
    snprintf(d.what, sizeof d.what, "remove node 4");
    add(&h, d);
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.anomalies, 2);
    cr_assert(has_anomaly(&c, "membership: node 4 caught up to index 70 did "
                              "not complete (fail"));
    cr_assert(has_anomaly(&c, "membership: remove node 4 did not complete "
                              "(unknown, status 503)"));
    kz_check_free(&c);
    /* and a member line survives a write and a parse */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_eq(kz_hist_write(f, &h.ops[2]), 0);
    fclose(f);
    struct kz_hist_op back;
    cr_assert_eq(kz_hist_parse_line(buf, &back), 0, "%s", buf);
    cr_assert_eq(back.op, KZ_H_MEMBER);
    cr_assert_eq(back.status, 503);
    cr_assert_str_eq(back.what, "remove node 4");
    free(buf);
    kz_hist_free(&h);
}

Test(chaos_history, failover_and_availability)
{
    struct kz_hist h = {0};
    struct kz_hist_op k = op(KZ_H_NEMESIS, KZ_R_OK, 2000000, 2000000, "");
    snprintf(k.what, sizeof k.what, "kill -9 leader node 1");
    add(&h, k);
    /* before the fault: an ok write; during: two unknown; after 1.5 s an
     * acknowledged write again. */
    add(&h, op(KZ_H_ADD, KZ_R_OK, 1000000, 1100000, "a"));
    struct kz_hist_op u = op(KZ_H_CAS, KZ_R_UNKNOWN, 2100000, 5100000, "x");
    snprintf(u.region, sizeof u.region, "osaka");
    add(&h, u);
    add(&h, op(KZ_H_READ, KZ_R_UNKNOWN, 2200000, 5200000, "x"));
    add(&h, op(KZ_H_ADD, KZ_R_OK, 3000000, 3500000, "b"));
    struct kz_hist_op heal = k;
    snprintf(heal.what, sizeof heal.what, "restart the killed node(s)");
    heal.t0 = 4000000;
    add(&h, heal);
    struct kz_check c;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.n_failovers, 1, "a heal is not a fault");
    cr_assert_float_eq(c.failovers[0].resumed_after_s, 1.5, 1e-9);
    cr_assert_eq(c.n_regions, 2);
    cr_assert_eq(c.seconds, 6, "up to the last completion (5.2 s)");
    /* tokyo: the add at 1 s answered; the read in flight from 2.2 to 5.2 s
     * unanswered in each of those seconds; the add at 3 s answered. */
    size_t tokyo = strcmp(c.regions[0], "tokyo") == 0 ? 0 : 1;
    cr_assert_eq(c.invoked[tokyo * c.seconds + 1], 1);
    cr_assert_eq(c.answered[tokyo * c.seconds + 1], 1);
    cr_assert_eq(c.invoked[tokyo * c.seconds + 2], 1);
    cr_assert_eq(c.answered[tokyo * c.seconds + 2], 0);
    cr_assert_eq(c.invoked[tokyo * c.seconds + 3], 2);
    cr_assert_eq(c.answered[tokyo * c.seconds + 3], 1);
    cr_assert_eq(c.invoked[tokyo * c.seconds + 5], 1);
    cr_assert_eq(c.answered[tokyo * c.seconds + 5], 0);
    /* printing covers every column without crashing */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    kz_check_print(f, &c, "t");
    fclose(f);
    cr_assert_not_null(strstr(buf, "kill -9 leader node 1"));
    cr_assert_not_null(strstr(buf, "osaka"));
    free(buf);
    kz_check_free(&c);
    kz_hist_free(&h);
}

Test(chaos_history, payouts_once_and_ledger)
{
    struct kz_hist h = {0};
    struct kz_hist_op p = op(KZ_H_PAYOUT, KZ_R_OK, 10, 20, "chaos-h001");
    p.status = 201;
    p.value = 1000000;
    snprintf(p.what, sizeof p.what, "pay-1");
    add(&h, p);
    struct kz_hist_op dup = p; /* a racing request: 409, the same payout */
    dup.result = KZ_R_FAIL;
    dup.status = 409;
    add(&h, dup);
    struct kz_hist_op fin = op(KZ_H_PAYOUTS, KZ_R_OK, 30, 31, "chaos-h001");
    fin.value = 1;
    fin.version = 1000000;
    snprintf(fin.what, sizeof fin.what, "pay-1");
    add(&h, fin);
    struct kz_hist_op lg = op(KZ_H_LEDGER, KZ_R_OK, 32, 33, "");
    lg.value = 1000000;
    add(&h, lg);
    struct kz_check c;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert_eq(c.anomalies, 0, "%s", c.anomalies ? c.anomaly[0] : "");
    cr_assert_eq(c.households, 1);
    cr_assert(c.ledger_equal);
    kz_check_free(&c);

    h.ops[2].value = 2; /* paid twice */
    h.ops[2].version = 2000000;
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert(has_anomaly(&c, "household chaos-h001 was paid 2 times"));
    cr_assert(has_anomaly(&c, "the ledger says 1000000 yen, the households 2000000"));
    kz_check_free(&c);

    h.ops[2].value = 1;
    h.ops[2].version = 1000000;
    snprintf(h.ops[1].what, sizeof h.ops[1].what, "pay-2"); /* 409 names another */
    cr_assert_eq(kz_check_run(&h, 0, &c), 0);
    cr_assert(has_anomaly(&c, "409's payout pay-2 of household chaos-h001"));
    kz_check_free(&c);
    kz_hist_free(&h);
}
