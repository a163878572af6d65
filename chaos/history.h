/* Histories of a chaos run and their checkers.
 *
 * A history is a file of JSON lines, one per event, written by kizuna-chaos
 * run and read back by kizuna-chaos check:
 *   {"t0":us,"t1":us,"proc":P,"node":N,"region":"R","op":OP,"key":"K",
 *    "expect":E,"version":V,"value":X,"result":"ok|fail|unknown",
 *    "status":HTTP,"rid":"request id","what":"text"}
 * t0/t1: invocation and completion, microseconds since the run started
 * (0 <= t0 <= t1 <= KZ_HIST_MAX_US, else the line is malformed), on
 * one clock. A timeout, a lost connection or an answer that leaves the
 * outcome open is "unknown", never "fail".
 * OP is one of
 *   init     the register key's state before the run (version, value)
 *   read     linearizable GET of a register key: ok gives version and value
 *   cas      PATCH with If-Match: expect; value written; ok gives the new
 *            version; fail is a 412 (not applied)
 *   add      a registration (POST /v1/victims): ok gives the new id as key
 *   final    after healing: key read through node N: ok present, fail absent
 *   audit    after healing: value = access records naming request rid
 *   chain    after healing: node N's audit chain: value = entries, what =
 *            head, result ok when it verifies
 *   digest   after healing: node N's state digest (what) at version
 *   nemesis  a fault injected or healed (what), at t0
 *   phase    a scenario begins (what = its name), at t0
 *   payout   POST /v1/payouts (item basic) for household key with an
 *            Idempotency-Key: ok (201) or fail 409 "already paid" give the
 *            payout id (what) and its yen (value); other refusals are
 *            fail with no id
 *   payouts  after healing: household key's payouts: value = how many,
 *            version = total yen, what = the first one's id
 *   ledger   after healing: the ledger's total yen (value)
 *   member   a membership change asked for during a fault (what: "add
 *            node 6 as voter", "remove node 6"), or a new member's
 *            catch-up ("node 6 caught up"): anything but ok is an anomaly */
#ifndef KZ_CHAOS_HISTORY_H
#define KZ_CHAOS_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Times past this (7 days into a run) make a line malformed. */
#define KZ_HIST_MAX_US (7ll * 24 * 3600 * 1000000)
enum kz_hop {
    KZ_H_INIT, KZ_H_READ, KZ_H_CAS, KZ_H_ADD, KZ_H_FINAL, KZ_H_AUDIT,
    KZ_H_CHAIN, KZ_H_DIGEST, KZ_H_NEMESIS, KZ_H_PHASE, KZ_H_PAYOUT,
    KZ_H_PAYOUTS, KZ_H_LEDGER, KZ_H_MEMBER, KZ_H__COUNT
};
enum kz_hres { KZ_R_OK, KZ_R_FAIL, KZ_R_UNKNOWN };

struct kz_hist_op {
    int64_t t0, t1;
    unsigned proc, node;
    int op;     /* enum kz_hop */
    int result; /* enum kz_hres */
    int status; /* HTTP status, 0 when none */
    uint64_t expect, version;
    int64_t value;
    char region[32];
    char key[48];
    char rid[40];
    char what[128];
};

struct kz_hist {
    struct kz_hist_op *ops;
    size_t n, cap;
};

const char *kz_hist_op_name(int op);
const char *kz_hist_result_name(int result);

/* Appends a copy of op; -1 when out of memory. */
int kz_hist_add(struct kz_hist *h, const struct kz_hist_op *op);
void kz_hist_free(struct kz_hist *h);
/* Sorts by t0 (stable). */
void kz_hist_sort(struct kz_hist *h);

/* One JSON line (with the newline) per op. */
int kz_hist_write(FILE *f, const struct kz_hist_op *op);
/* Reads a history file; err says which line is malformed. */
int kz_hist_load(const char *path, struct kz_hist *h, char *err,
                 size_t errlen);
/* Parses one line; -1 when malformed. */
int kz_hist_parse_line(const char *line, struct kz_hist_op *op);

/* What the checkers found. anomalies: one line each, for people. */
struct kz_check {
    size_t counts[KZ_H__COUNT][3]; /* op x result */
    size_t keys_checked, lin_states;
    size_t anomalies;
    char **anomaly; /* anomalies lines */
    bool gave_up;   /* a key's search hit its bound: unknown, reported */
    /* Failovers: for each nemesis event that takes the leader away, the
     * seconds until a write was acknowledged again (-1: never). */
    size_t n_failovers;
    struct kz_failover {
        double at_s, resumed_after_s;
        char what[128];
    } *failovers;
    /* Availability: per region, per second since the start, the calls in
     * flight during that second and how many of them were answered (ok or
     * a definite refusal such as 412), so a call stuck for 3 s counts in
     * 3 seconds. */
    size_t n_regions, seconds;
    char (*regions)[32];
    unsigned *invoked, *answered; /* [region * seconds + second] */
    bool digests_equal, chains_equal;
    size_t households; /* read back after healing */
    bool ledger_equal; /* the ledger's total = the households' sum */
    uint64_t digest_index;
};

/* Runs every checker over h (sorted or not). Returns 0, -1 when out of
 * memory. */
int kz_check_run(const struct kz_hist *h, size_t max_states,
                 struct kz_check *c);
void kz_check_free(struct kz_check *c);

/* A short human summary (counts, anomalies, failovers, availability per
 * region in 5-second columns). */
void kz_check_print(FILE *f, const struct kz_check *c, const char *title);

/* The report as a JSON document (jansson), written to path. */
int kz_check_write_json(const char *path, const struct kz_check *c,
                        const char *scenario, uint64_t seed,
                        double duration_s);

#endif /* KZ_CHAOS_HISTORY_H */
