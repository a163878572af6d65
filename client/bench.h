/*
 * kizuna-bench — a load generator for the Kizuna API (bench.c).
 *
 * Owns one libuv loop and N "slots" (--connections): a slot has at most one
 * request in flight, is pinned to one endpoint (slot i talks to endpoint
 * i mod n, so the load is spread round-robin over the nodes) and keeps its
 * TLS connection alive between requests. Everything runs in one thread: the
 * transport (bench_http.h: HTTP/1.1 over TCP, TLS 1.3 with OpenSSL memory
 * BIOs, keep-alive) runs the sockets on the loop, and the loop starts the
 * slot's next request as soon as the last one completed (a closed loop: the
 * offered load is what N clients that never think can send).
 *
 * Open loop (--rate R): the measured phase sends on a schedule instead.
 * Request k (from 0) is due at t0 + k/R, t0 the start of the measured
 * phase (the preloads still run closed, as fast as they go). When its
 * time comes it goes out on a free slot, the slots taken in turn so that
 * the endpoints share the load as in the closed loop; when every slot is
 * busy (or pausing after a transport failure) it waits, in order, and
 * goes out as soon as a slot frees, with all the others due by then (the
 * schedule catches up; nothing is skipped). Its latency is counted from
 * the time it was due, not from when it went out: a server that slows
 * down makes the requests behind it wait, and that wait is in the
 * figures, where a closed loop would just send less (coordinated
 * omission). The loop wakes for the next due time with its libuv timer.
 * The schedule ends after --requests requests, or at the end of
 * --duration: requests due by then that are still waiting for a slot are
 * not sent, and the summary counts them (unsent). The summary also says
 * whether the tool kept to the schedule: the rate asked and the rate
 * sent, how many requests waited for a free slot (queued), and how long
 * after its due time each request went out (send delay, which also
 * holds the client's own lateness: libuv's timers count in whole
 * milliseconds, and a busy client falls behind). --connections is then
 * the most requests in flight at once: give it enough for the rate times
 * the latency. identity schedules operations: a slot whose challenge was
 * answered sends the verification at once, outside the schedule.
 *
 * Workloads:
 *   write  POST /v1/victims, each body a new sample victim (sample.h) padded
 *          to --record-bytes (see kz_cli_bench_victim_body);
 *   read   registers --preload records first (the write path, registrar
 *          certificate), then GET /v1/victims/{id} of uniformly random ids
 *          among them (caseworker certificate, X-Purpose, ?consistency=);
 *   mixed  the same preload, then each request is a read with probability
 *          --read-ratio, else a write; new ids join the pool read from;
 *   photo  the same preload, then one PUT /v1/photos/{id} per registered
 *          record (registrar certificate, --photo-bytes of JPEG magic and
 *          seeded random bytes, see kz_cli_bench_photo_body), then GET
 *          /v1/photos/{id} of uniformly random ids among those whose photo
 *          was stored (terminal certificate, X-Purpose, ?consistency=); a
 *          200 whose body is not --photo-bytes long or does not start with
 *          the JPEG magic counts as a bad body, not as ok;
 *   update the same preload, then PATCH /v1/victims/{id} of uniformly
 *          random ids among them (registrar certificate, as writes): each
 *          body is another sample person's status, address and contact,
 *          padded to --record-bytes within the field limits (see
 *          kz_cli_bench_update_body), so every PATCH rewrites a record
 *          already there instead of adding one; the state stays about the
 *          preload's size while the raft log and RocksDB see a steady
 *          stream of writes (what deploy/soak watches). Counted as writes;
 *   search the same preload (the bench keeps each record's name, kana,
 *          household and damage from the 201), then GET /v1/victims?q= of a
 *          name query made from a uniformly random preloaded person
 *          (caseworker certificate, X-Purpose, &consistency=), drawn as an
 *          operator searches: the family name in kana (25%), the full name
 *          in kanji without a space (25%), family and given name in kana
 *          with a space (20%), given name then family name in kanji (15%),
 *          given and family name in Hepburn romaji (15%; see
 *          kz_cli_bench_search_query). A 200 whose body is not a JSON
 *          object with an "items" array is a bad body; so is a complete
 *          page (no next_cursor, not truncated) of a full-name query that
 *          does not hold the person searched for. With --consistency stale
 *          such a miss is only counted (stale_misses: a stale node may not
 *          have the record yet), and a full page that goes on is not
 *          judged. Counted as reads;
 *   payout reads program seikatsu_saiken (GET /v1/programs/seikatsu_saiken,
 *          payout certificate) and, when it has no disaster date, gives it
 *          one 30 days ago (PUT, operator certificate; a date the operator
 *          set is left alone); the preload then registers sample people of
 *          eligible households only (a damage level the program's table
 *          pays basic or repair support for), under household ids unique
 *          to the run ("b<tag>-h-000123"), so a second run on the same
 *          cluster pays new households. The measured phase pays each
 *          (household, item) once, in order: every household's basic
 *          support, then every household's repair support: POST
 *          /v1/payouts {household_id, program, item, account} with an
 *          Idempotency-Key of its own (payout certificate). A 201 with an
 *          id and amount_yen is ok; a 409 (already paid) and a 422 (not
 *          eligible, deadline passed...) are counted on their own besides
 *          the status. When every planned payout has been sent the phase
 *          ends early and the summary says the run ran out of households
 *          (raise --preload). Counted as writes;
 *   day    a disaster-day mix, set up as payout (the program, household
 *          ids unique to the run) but with a preload of every sample
 *          household, eligible or not; then each request is drawn by weight (--mix, default read 50, search 25,
 *          write 12, note 10, payout 3; identity 5 when --cards is given,
 *          never without): read as read, search as search, write a new
 *          registration (its id joins the pool), note POST
 *          /v1/victims/{id}/notes of a random pooled id (caseworker; see
 *          kz_cli_bench_note_body), payout the next planned payout as in
 *          payout (when none is left, payouts drop out of the mix and the
 *          summary says so), identity a challenge and its verification as
 *          in identity, with the caseworker certificate. Reads, searches
 *          and identity checks count as reads, the rest as writes; the
 *          summary also has each kind's own figures (by_kind).
 * A connection's client certificate decides its role, so a slot has one
 * handle per identity it needs (registrar, the reader: caseworker or
 * terminal, and payout) and may hold up to three connections; at most one
 * of them is busy at a time.
 *
 * Measured: latency of every request from its start (sent, or due in an
 * open loop) to its completion (CLOCK_MONOTONIC), 2xx answers as ok, other
 * answers by status, transport failures (refused, reset, timed out, TLS) by
 * kind (kz_bh_err, named by kz_bh_strerror: "could not connect", "timed
 * out", ...). Percentiles are over the ok requests. Nothing is retried, in
 * the preloads either: a 503 or a refused connection is counted and the
 * slot moves on (after 100 ms for a transport failure, so a dead node is
 * not hammered in a tight loop); a record or photo the preload could not
 * store is only left out of the ids read from. (The one exception is the
 * transport's, as libcurl's: a request sent on a kept connection that the
 * server had closed goes out once more on a new one.) Each kind of request
 * has its timeouts: --timeout for the whole request, at most 5 s of it to
 * connect (TCP and TLS handshake); a probe's whole request at most 1 s.
 *
 * Targets (--target): kizuna (the default, everything above) or etcd, for
 * comparing the two on one machine. Against etcd v3's JSON gateway, over
 * plain HTTP without certificates, write is POST /v3/kv/put of a new key
 * "kizuna-bench/<seed>/<n>" whose value is the very body a Kizuna write
 * would POST (so both move the same bytes), and read is the same preload
 * of puts, then POST /v3/kv/range of random stored keys: linearizable, or
 * "serializable" (etcd's local read) with --consistency stale. A 2xx
 * counts as ok only when its body is etcd's answer to that request (a put
 * answer has a "header", a range answer lists the key in "kvs"); anything
 * else is a bad body. mixed, photo, identity, update, search, payout and
 * day are Kizuna's alone.
 *
 * Failover (--failover-cmd CMD, write only): at --failover-at seconds into
 * the measured phase, CMD runs under /bin/sh -c (stdout to our stderr) while
 * the load goes on. The moment it exits is taken as the kill, so the kill
 * must be its last step; failover_s is the time from then to the completion
 * of the first write that succeeded and was sent after it (the loop polls
 * the command every millisecond). A write sent before the kill never
 * counts, even if it succeeds later. Since every slot may be stuck on a
 * write sent before the kill (one the dead leader had taken can hang until
 * the server gives up on it), probes keep new writes going from the kill
 * until one succeeds: one every 25 ms, round-robin over the endpoints, on
 * slots of their own, each given up after 1 s; they are left out of the
 * run's figures. So failover_s is known to about 25 ms plus a write's
 * latency. The failures the kill causes (refused connections to the dead
 * node) are expected: such a run fails only when no write recovered.
 * With --rate the schedule goes on through the kill: writes due while
 * every slot hangs on the dead leader wait for one, and their latency
 * shows the outage as a client with that rate would see it. The probes
 * stay outside the schedule (slots of their own, not counted in it).
 *
 * Failure modes of the tool itself: a bad command line or an unreadable
 * certificate (before any request), a CA file or certificate OpenSSL cannot
 * load, or an endpoint URL the transport cannot use (the run stops at the
 * first request that meets it), a preload that registers nothing
 * (or, in photo, stores no photo; in payout, no eligible household), a
 * program that cannot be read (payout, and day with payouts in its mix),
 * a failover command that cannot be started.
 */
#ifndef KZ_CLI_BENCH_H
#define KZ_CLI_BENCH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sample.h"

/* Exit codes of kizuna-bench. */
enum {
	KZ_CLI_BENCH_EXIT_OK = 0,    /* >= 1 request ok, no transport error */
	KZ_CLI_BENCH_EXIT_FAIL = 1,  /* nothing succeeded, or transport errors */
	KZ_CLI_BENCH_EXIT_USAGE = 2  /* bad command line or configuration */
};

/* kz_cli_bench_args_parse results. */
enum { KZ_CLI_BENCH_ARGS_OK = 0, KZ_CLI_BENCH_ARGS_USAGE = 2 };

typedef enum kz_cli_bench_workload {
	KZ_CLI_BENCH_NONE = 0,
	KZ_CLI_BENCH_WRITE,
	KZ_CLI_BENCH_READ,
	KZ_CLI_BENCH_MIXED,
	KZ_CLI_BENCH_PHOTO,
	KZ_CLI_BENCH_IDENTITY,
	KZ_CLI_BENCH_UPDATE,
	KZ_CLI_BENCH_SEARCH,
	KZ_CLI_BENCH_PAYOUT,
	KZ_CLI_BENCH_DAY
} kz_cli_bench_workload;

/* The kinds of request of the search, payout and day workloads, indexes of
 * kz_cli_bench_args.mix and kz_cli_bench_result.kinds. */
typedef enum kz_cli_bench_kind {
	KZ_CLI_BENCH_KIND_READ = 0, /* GET /v1/victims/{id} */
	KZ_CLI_BENCH_KIND_SEARCH,   /* GET /v1/victims?q= */
	KZ_CLI_BENCH_KIND_WRITE,    /* POST /v1/victims */
	KZ_CLI_BENCH_KIND_NOTE,     /* POST /v1/victims/{id}/notes */
	KZ_CLI_BENCH_KIND_PAYOUT,   /* POST /v1/payouts */
	KZ_CLI_BENCH_KIND_IDENTITY, /* challenge + verification */
	KZ_CLI_BENCH_KIND_COUNT
} kz_cli_bench_kind;

/* The kinds of name query of a search (kz_cli_bench_search_query). */
typedef enum kz_cli_bench_query {
	KZ_CLI_BENCH_Q_FAMILY_KANA = 0, /* さとう */
	KZ_CLI_BENCH_Q_KANJI,           /* 佐藤和子 */
	KZ_CLI_BENCH_Q_KANA_FULL,       /* さとう かずこ */
	KZ_CLI_BENCH_Q_SWAPPED,         /* 和子 佐藤 */
	KZ_CLI_BENCH_Q_ROMAJI,          /* Kazuko Satou */
	KZ_CLI_BENCH_Q_COUNT
} kz_cli_bench_query;

/* What the requests go to (--target). */
typedef enum kz_cli_bench_target {
	KZ_CLI_BENCH_TARGET_KIZUNA = 0,
	KZ_CLI_BENCH_TARGET_ETCD
} kz_cli_bench_target;

/* The two kinds of request, indexes of kz_cli_bench_result.op. */
enum { KZ_CLI_BENCH_OP_WRITE = 0, KZ_CLI_BENCH_OP_READ = 1 };

/* Byte limits of the server's free-text fields (node/records.c). */
#define KZ_CLI_BENCH_MAX_ADDRESS 512
#define KZ_CLI_BENCH_MAX_CONTACT 256

/* --photo-bytes: at least the JPEG magic, at most the largest
 * photo_max_bytes a node can be configured with (node/config.c). */
#define KZ_CLI_BENCH_PHOTO_MIN 4
#define KZ_CLI_BENCH_PHOTO_MAX (32L << 20)
#define KZ_CLI_BENCH_PHOTO_DEFAULT 30000

/* --rate, requests per second: from one every 1000 s (slower measures
 * nothing a run could wait for) to a million a second, already far past
 * what the one thread can send (a request costs it about 20 us of CPU,
 * some 50,000/s at best): a larger number is a typo. */
#define KZ_CLI_BENCH_RATE_MIN 0.001
#define KZ_CLI_BENCH_RATE_MAX 1000000.0

#define KZ_CLI_BENCH_DEFAULT_ENDPOINTS "var/cluster/endpoints"
#define KZ_CLI_BENCH_DEFAULT_PKI "var/cluster/pki"
#define KZ_CLI_BENCH_DEFAULT_ETCD "http://127.0.0.1:2379" /* etcd's own */
#define KZ_CLI_BENCH_PATH_MAX 1024

/* A parsed command line. The const char * fields point into argv, the
 * environment, a static default or the *_buf arrays of the struct itself
 * (paths made from --pki): nothing is freed, argv must outlive the struct,
 * and the struct must not be copied by value once parsed. */
typedef struct kz_cli_bench_args {
	kz_cli_bench_workload workload;
	kz_cli_bench_target target;
	const char *endpoints;
	const char *pki;                 /* where the defaults below come from */
	const char *cacert;
	const char *write_cert, *write_key; /* registrar: POST */
	const char *read_cert, *read_key;   /* GET: caseworker, or terminal
					       in photo (GET /v1/photos is
					       the terminal's alone) */
	const char *purpose;             /* X-Purpose of reads */
	const char *cards;               /* identity: DIR of <name>.pem/.key
					    citizens' cards */
	long connections;
	double duration_s;               /* run time when requests == 0 */
	long requests;                   /* > 0: this many requests, then stop */
	double rate;                     /* > 0: open loop, requests per
					    second over the measured phase;
					    0: closed loop */
	long record_bytes;               /* body size asked for; 0: unpadded */
	long preload;                    /* records registered before
					    read/mixed/photo/update */
	long photo_bytes;                /* photo: size of every photo */
	double read_ratio;               /* mixed: share of reads */
	int stale;                       /* ?consistency=stale instead of
					    linearizable (etcd: serializable) */
	const char *failover_cmd;        /* write: run at failover_at_s; NULL:
					    no failover */
	double failover_at_s;            /* into the measured phase */
	int json;                        /* the summary as one JSON object */
	int quiet;                       /* no progress lines */
	int help;
	long timeout_ms;                 /* per request */
	uint64_t seed;                   /* sample data and id choice */
	const char *payout_cert, *payout_key;     /* payout, day: POST
						     /v1/payouts */
	const char *operator_cert, *operator_key; /* payout, day: gives the
						     program a disaster date
						     when it has none */
	unsigned mix[KZ_CLI_BENCH_KIND_COUNT];   /* day: weight of each kind */
	char cacert_buf[KZ_CLI_BENCH_PATH_MAX];
	char write_cert_buf[KZ_CLI_BENCH_PATH_MAX];
	char write_key_buf[KZ_CLI_BENCH_PATH_MAX];
	char read_cert_buf[KZ_CLI_BENCH_PATH_MAX];
	char read_key_buf[KZ_CLI_BENCH_PATH_MAX];
	char cards_buf[KZ_CLI_BENCH_PATH_MAX];
	char payout_cert_buf[KZ_CLI_BENCH_PATH_MAX];
	char payout_key_buf[KZ_CLI_BENCH_PATH_MAX];
	char operator_cert_buf[KZ_CLI_BENCH_PATH_MAX];
	char operator_key_buf[KZ_CLI_BENCH_PATH_MAX];
} kz_cli_bench_args;

/* Parses argv[1..argc-1] into *out. Options may come before or after the
 * workload, as "--opt value" or "--opt=value". Returns KZ_CLI_BENCH_ARGS_OK
 * (check out->help) or KZ_CLI_BENCH_ARGS_USAGE with a message in err.
 * Defaults: endpoints from KIZUNA_ENDPOINTS else var/cluster/endpoints; pki
 * var/cluster/pki; CA from KIZUNA_CACERT else <pki>/ca.pem; write certificate
 * --write-cert, else --cert, else <pki>/registrar.pem; read certificate
 * --read-cert, else --cert, else <pki>/caseworker.pem (<pki>/terminal.pem
 * for photo); a key defaults to the <pki> one only when its certificate was
 * a default too (an explicit certificate without a key must hold its key).
 * 16 connections, 10 s, 1024 bytes, preload 1000, read ratio 0.9, photos of
 * 30000 bytes, linearizable, timeout 10 s, seed 1, purpose "bench". Options
 * a workload would ignore (--preload and --consistency for write,
 * --consistency for update, which reads nothing, --read-ratio outside
 * mixed, --photo-bytes outside photo) are refused.
 * --target etcd: write or read only (mixed, photo, identity and update
 * are refused); endpoints from --endpoints else
 * KZ_CLI_BENCH_DEFAULT_ETCD (KIZUNA_ENDPOINTS is Kizuna's); no certificate
 * (cacert and every cert and key NULL), and the options that set one, or
 * --purpose, are refused. --http2 is refused for every target: the
 * transport speaks HTTP/1.1 only. --failover-cmd: write with
 * --duration only; --failover-at defaults to a third of the duration and
 * must fall within it. --rate: a number from KZ_CLI_BENCH_RATE_MIN to
 * KZ_CLI_BENCH_RATE_MAX, with any workload, target, --duration or
 * --requests, and --failover-cmd; absent: 0, the closed loop.
 * search: --consistency and --preload as read. payout: --preload as read,
 * --consistency refused (it reads nothing). day: --mix SPEC (day only; see
 * kz_cli_bench_mix_parse), default read 50, search 25, write 12, note 10,
 * payout 3, and identity 5 when --cards DIR is given (day has no default
 * cards directory: without --cards it checks no identity, and a --mix
 * that gives identity a weight without --cards, or --cards with a --mix
 * that gives it none, is refused). payout and day: --payout-cert and
 * --payout-key default to <pki>/payout.pem, .key, --operator-cert and
 * --operator-key to <pki>/operator.pem, .key (with the same rule for
 * keys as above); these four are refused elsewhere. */
int kz_cli_bench_args_parse(int argc, char **argv, kz_cli_bench_args *out,
			    char *err, size_t errlen);

/* Prints the help text. */
void kz_cli_bench_usage(FILE *f);

/* "write", "read", "mixed", "photo", "identity", "update", "search",
 * "payout", "day" (never NULL). */
const char *kz_cli_bench_workload_name(kz_cli_bench_workload w);

/* "read", "search", "write", "note", "payout", "identity" (never NULL). */
const char *kz_cli_bench_kind_name(kz_cli_bench_kind k);

/* "family_kana", "kanji", "kana_full", "swapped", "romaji" (never NULL). */
const char *kz_cli_bench_query_name(kz_cli_bench_query q);

/* Parses a day mix, "KIND=WEIGHT,..." with each KIND a
 * kz_cli_bench_kind_name at most once and each WEIGHT a whole number from 0
 * to 1000, into w (the caller's; kinds not named get 0). Returns
 * KZ_CLI_BENCH_ARGS_OK, or KZ_CLI_BENCH_ARGS_USAGE with a message in err
 * (unknown kind, a kind twice, no '=', a bad number, every weight 0; w is
 * then unspecified). */
int kz_cli_bench_mix_parse(const char *spec,
			   unsigned w[KZ_CLI_BENCH_KIND_COUNT], char *err,
			   size_t errlen);

/* A kind drawn with probability w[k] / (sum of w); KZ_CLI_BENCH_KIND_COUNT
 * when every weight is 0. rng is a splitmix64 state. */
kz_cli_bench_kind
kz_cli_bench_mix_pick(const unsigned w[KZ_CLI_BENCH_KIND_COUNT], uint64_t *rng);

/* "kizuna", "etcd" (never NULL). */
const char *kz_cli_bench_target_name(kz_cli_bench_target t);

/* ---- pure helpers (tested without a network) ------------------------------ */

/* Nearest-rank percentile p (0..100) of n values sorted ascending: the
 * smallest value with at least p% of the values <= it (p taken as the
 * decimal it is written as: p99.9 of 1000 values is the 999th); p <= 0
 * gives the minimum. 0 when n == 0. */
uint64_t kz_cli_bench_percentile(const uint64_t *sorted, size_t n, double p);

/* Open loop: when request k (from 0) of a schedule of rate requests per
 * second (> 0) is due, in ns after the schedule's start: k / rate seconds,
 * rounded down to the ns, at most KZ_CLI_BENCH_SCHED_END_NS. Grows with k,
 * never by less than 1e9 / rate ns rounded down. */
uint64_t kz_cli_bench_sched_offset_ns(double rate, uint64_t k);

/* Open loop: how many requests of that schedule are due elapsed_ns after
 * its start, those whose offset is <= elapsed_ns: request 0 is due at
 * once, so at least 1. Agrees with kz_cli_bench_sched_offset_ns at every
 * boundary: due(offset(k)) == k + 1 and due(offset(k) - 1) <= k. */
uint64_t kz_cli_bench_sched_due(double rate, uint64_t elapsed_ns);

/* Where the offsets stop growing (2^62 ns, over 140 years): a schedule
 * past it is never reached by a run. */
#define KZ_CLI_BENCH_SCHED_END_NS (UINT64_C(1) << 62)

/* Turns a sample victim into a POST body of `target` bytes (compact JSON,
 * UTF-8): when the plain record is shorter, random ASCII letters and digits
 * are appended to the address up to its limit, then to the contact (added
 * when absent) up to its limit. Random, so that compression in the log or
 * the store does not make the padding free. When the limits do not allow
 * `target` bytes the body stops at the limits and *capped is 1; a record
 * already longer than target is sent as it is (*capped 0). victim is
 * modified (padding added) and stays owned by the caller. On KZ_CLI_OK *body
 * is a malloc'd NUL-terminated string of *len bytes the caller free()s;
 * KZ_CLI_ENOMEM otherwise (*body NULL). rng is a splitmix64 state. */
int kz_cli_bench_victim_body(json_t *victim, size_t target, uint64_t *rng,
			     char **body, size_t *len, int *capped);

/* Turns a sample victim into a PATCH /v1/victims/{id} body of `target`
 * bytes: the victim's status, address and contact (when it has one) alone,
 * as if the person at that id had been found, moved or given a new number,
 * padded like kz_cli_bench_victim_body (random ASCII appended to the
 * address, then to the contact, within their limits; *capped 1 when the
 * limits stop it short of target, which with three fields happens past
 * about 800 bytes). The padding is random, so two bodies never carry the
 * same text and each PATCH really rewrites the record. victim is not
 * modified and stays the caller's. On KZ_CLI_OK *body is a malloc'd
 * NUL-terminated string of *len bytes the caller free()s; KZ_CLI_ENOMEM
 * otherwise (*body NULL). rng is a splitmix64 state. */
int kz_cli_bench_update_body(const json_t *victim, size_t target,
			     uint64_t *rng, char **body, size_t *len,
			     int *capped);

/* Fills buf[0..len-1] (len >= KZ_CLI_BENCH_PHOTO_MIN; buf is the caller's)
 * with photo number n of a run with this seed: the JPEG magic FF D8 FF E0,
 * which is all the server looks at, then pseudo-random bytes (so the photo
 * does not compress). A function of (seed, n, len) alone: the same
 * arguments give the same bytes, different n or seeds different ones. */
void kz_cli_bench_photo_body(uint64_t seed, uint64_t n, unsigned char *buf,
			     size_t len);

/* ---- search, payout and day (pure helpers, tested without a network) ------- */

/* A kind of name query drawn with the operator's shares (search in
 * bench.h's list of workloads). rng is a splitmix64 state. */
kz_cli_bench_query kz_cli_bench_query_pick(uint64_t *rng);

/* Whether a query of kind q names the whole person (family and given
 * name), so a complete page of results must hold them: all but
 * KZ_CLI_BENCH_Q_FAMILY_KANA. */
int kz_cli_bench_query_full(kz_cli_bench_query q);

/* Query q of the person registered as name ("佐藤 和子": family name, one
 * ASCII space, given name) and kana ("さとう かずこ"), as typed (UTF-8, not
 * URL-encoded), into out (the caller's, len bytes). Returns its length,
 * or -1 when the names do not have that shape, romaji cannot be made from
 * the kana (a character outside the kana table) or out is too small. */
int kz_cli_bench_search_query(kz_cli_bench_query q, const char *name,
			      const char *kana, char *out, size_t len);

/* Hepburn romaji of kana (hiragana or katakana; spaces kept, each word
 * capitalised), as a person would type it: し shi, ち chi, つ tsu, ふ fu, じ
 * ji, きょ kyo, っ doubling the next consonant (っち tch), ん n (n' before a
 * vowel or y, so けんいち is Ken'ichi), long vowels as the kana spell them
 * (さとう Satou). Into out (len bytes); returns the length, or -1 when a
 * character is not kana or a space, or out is too small. */
int kz_cli_bench_romaji(const char *kana, char *out, size_t len);

/* The body of POST /v1/victims/{id}/notes: a safety note (安否) with a
 * status drawn as the field reports them (mostly safe), a short text, the
 * author "kizuna-bench" and a shelter as last known location. On KZ_CLI_OK
 * *body is a malloc'd NUL-terminated string of *len bytes the caller
 * free()s; KZ_CLI_ENOMEM otherwise (*body NULL). rng is a splitmix64
 * state. */
int kz_cli_bench_note_body(uint64_t *rng, char **body, size_t *len);

/* The body of POST /v1/payouts of program seikatsu_saiken for household
 * and item, paid to an account derived from n (bank 1, branch n mod 1000,
 * an ordinary account numbered 1000000 + n mod 9000000) whose holder is
 * holder (kana). Ownership as kz_cli_bench_note_body. */
int kz_cli_bench_payout_body(const char *household, const char *item,
			     const char *holder, uint64_t n, char **body,
			     size_t *len);

/* The Idempotency-Key of the payout of item to household in the run tagged
 * tag: "kizuna-bench-<tag>-<household>-<item>", so each planned payout has
 * its own key and a retry would have the same one. Returns its length, or
 * -1 when it does not fit buf (len bytes) or 128 characters. */
int kz_cli_bench_payout_key(const char *tag, const char *household,
			    const char *item, char *buf, size_t len);

/* ---- etcd (pure helpers, tested without a network) --------------------------- */

/* Standard base64 (RFC 4648, padded, no line breaks) of in[0..len-1], as
 * etcd's JSON gateway wants its bytes fields. Returns a malloc'd
 * NUL-terminated string the caller free()s, its length in *out_len (may be
 * NULL); NULL when out of memory or len is over 1 GiB. */
char *kz_cli_bench_base64(const void *in, size_t len, size_t *out_len);

/* The key of the nth put of a run with this seed, "kizuna-bench/<seed>/<n>",
 * into buf (the caller's, len bytes). Returns its length, or -1 when it does
 * not fit (64 bytes always do). */
int kz_cli_bench_etcd_key(uint64_t seed, uint64_t n, char *buf, size_t len);

/* The body of POST /v3/kv/put: {"key": base64(key), "value":
 * base64(value[0..value_len-1])}. On KZ_CLI_OK *body is a malloc'd
 * NUL-terminated string of *len bytes the caller free()s; KZ_CLI_ENOMEM
 * otherwise (*body NULL). */
int kz_cli_bench_etcd_put_body(const char *key, const char *value,
			       size_t value_len, char **body, size_t *len);

/* The body of POST /v3/kv/range for one key: {"key": base64(key)}, plus
 * "serializable": true when serializable (a member answers from its own
 * state, without asking the leader). Ownership as the put body. */
int kz_cli_bench_etcd_range_body(const char *key, int serializable,
				 char **body, size_t *len);

/* Whether resp[0..len-1], the body of a 2xx to a put, is etcd's answer: a
 * JSON object with a "header" object. 1 or 0. */
int kz_cli_bench_etcd_put_answer_ok(const char *resp, size_t len);

/* Whether resp[0..len-1], the body of a 2xx to the range of key, is etcd's
 * answer holding it: a JSON object whose "kvs" array has an entry whose
 * "key" is base64(key). A range of a missing key answers 200 without
 * "kvs": that is not a read served. 1 or 0 (also when out of memory). */
int kz_cli_bench_etcd_range_answer_ok(const char *resp, size_t len,
				      const char *key);

/* ---- running --------------------------------------------------------------- */

#define KZ_CLI_BENCH_MAX_STATUS 600 /* statuses 100..599; others count at 0 */
#define KZ_CLI_BENCH_MAX_TRANSPORT 32 /* kz_bh_err kinds (bench_http.h) */

/* What one kind of request did during one phase. */
typedef struct kz_cli_bench_stats {
	uint64_t requests;         /* completed: ok + http_errors +
				      transport_errors + bad_bodies */
	uint64_t ok;               /* 2xx (with the expected body) */
	uint64_t http_errors;      /* answered, not 2xx */
	uint64_t transport_errors; /* no answer */
	uint64_t bad_bodies;       /* 2xx, but not the answer asked for:
				      a photo of another length or not a
				      JPEG, a search page without the
				      person searched for, ... */
	uint64_t by_status[KZ_CLI_BENCH_MAX_STATUS];
	uint64_t by_transport[KZ_CLI_BENCH_MAX_TRANSPORT];
	char first_error[256];     /* the first error seen, "" if none */
	uint64_t *lat_ns;          /* latency of each ok request, malloc'd,
				      owned by the stats; sorted after the run */
	size_t n_lat, cap_lat;
	uint64_t body_bytes_in;    /* response body bytes received */
	uint64_t connects;         /* new connections the requests opened
				      (keep-alive working: about one per
				      slot and kind) */
} kz_cli_bench_stats;

/* Sizes of the bodies of the records written. */
typedef struct kz_cli_bench_records {
	uint64_t count, bytes, capped;
	size_t min, max;
} kz_cli_bench_records;

/* The measured phase as one node saw it (both kinds of request). */
typedef struct kz_cli_bench_endpoint {
	char url[128];
	char node[32];     /* node id from the endpoints file, "" if unknown */
	char region[32];
	kz_cli_bench_stats st;
} kz_cli_bench_endpoint;

/* The failover of a run with --failover-cmd (times from the start of the
 * measured phase). */
typedef struct kz_cli_bench_failover {
	int asked;          /* --failover-cmd was given */
	int ran;            /* the command was started */
	int exited;         /* and ended: killed_s is known */
	int status;         /* its exit status; 128+N when killed by signal N */
	double started_s;   /* when it was started */
	double killed_s;    /* when it exited: taken as the kill */
	int recovered;      /* a write sent after the kill succeeded */
	double recovered_s; /* when the first such write completed */
	double failover_s;  /* recovered_s - killed_s; meaningful if recovered */
	uint64_t errors_after; /* failed requests sent after the kill */
	uint64_t probes;    /* probe writes sent after the kill */
} kz_cli_bench_failover;

/* The schedule of an open-loop run (--rate), and how well it was kept:
 * the measured phase. */
typedef struct kz_cli_bench_schedule {
	double rate;          /* asked, requests per second; 0: closed loop,
				 and nothing below is kept */
	uint64_t scheduled;   /* requests due within the run: --requests, or
				 those due before the end of --duration */
	uint64_t sent;        /* of them, sent (scheduled - sent: unsent,
				 still waiting for a slot at the end) */
	uint64_t queued;      /* sent after waiting for a free slot: at their
				 time every slot was busy or pausing */
	double window_s;      /* the time the sends took: the schedule's span
				 (--duration, or --requests / rate), or
				 longer when the last one went out later;
				 sent / window_s is the rate achieved */
	uint64_t *delay_ns;   /* per request sent, how long after its due time
				 it went out; malloc'd, owned by the
				 schedule, sorted after the run */
	size_t n_delay, cap_delay;
} kz_cli_bench_schedule;

/* search (and day's searches): what the name queries were and what their
 * answers held. */
typedef struct kz_cli_bench_search {
	uint64_t by_query[KZ_CLI_BENCH_Q_COUNT]; /* searches sent, by query */
	uint64_t checked;      /* complete pages of full-name queries, looked
				  through for the person */
	uint64_t found;        /* ... that held them */
	uint64_t unchecked;    /* full-name answers with more pages to come:
				  the person may be on a later one */
	uint64_t stale_misses; /* --consistency stale: complete pages without
				  the person (not bad bodies) */
} kz_cli_bench_search;

/* payout (and day's payouts): the plan and what became of it. */
typedef struct kz_cli_bench_payouts {
	int program_set;       /* the bench gave the program its disaster date */
	uint64_t households;   /* households the preload registered whose
				  damage the program pays for */
	uint64_t planned;      /* (household, item) payouts they allow */
	uint64_t sent;         /* POSTs sent in the measured phase */
	uint64_t paid;         /* 201 with a payout */
	uint64_t already_paid; /* 409 */
	uint64_t refused;      /* 422 (not eligible, deadline passed, ...) */
	uint64_t yen;          /* amount_yen of the payouts made */
	int ran_out;           /* every planned payout was sent before the end */
	double ran_out_s;      /* when, into the measured phase */
	char first_refusal[256]; /* the first 409 or 422 ("" if none): code and
				    message, no personal data */
} kz_cli_bench_payouts;

/* Outcome of a run. Filled by kz_cli_bench_run; release with
 * kz_cli_bench_result_free. */
typedef struct kz_cli_bench_result {
	kz_cli_bench_stats op[2];          /* measured phase, by KZ_CLI_BENCH_OP_* */
	kz_cli_bench_stats preload;        /* read/mixed/photo/update: the
					      registering phase */
	kz_cli_bench_stats photos;         /* photo: the PUT /v1/photos phase */
	kz_cli_bench_records records;      /* written in the measured phase
					      (update: the PATCH bodies) */
	kz_cli_bench_records preload_records;
	size_t pool_ids;                   /* ids read from at the end (photo:
					      those with a photo; update: the
					      ids the PATCHes were spread
					      over) */
	double elapsed_s;                  /* measured phase, first start to last end */
	double preload_s;
	double photos_s;
	double cpu_s;                      /* this process, measured phase */
	kz_cli_bench_failover failover;    /* write with --failover-cmd */
	kz_cli_bench_schedule sched;       /* --rate */
	size_t n_endpoints;
	kz_cli_bench_endpoint *ep;         /* n_endpoints entries, malloc'd,
					      owned by the result (NULL until
					      the endpoints are read) */
	/* search, payout, day: the measured phase by kind of request (also
	 * counted in op[]: searches and identity checks as reads, notes and
	 * payouts as writes) */
	kz_cli_bench_stats kinds[KZ_CLI_BENCH_KIND_COUNT];
	kz_cli_bench_search search;
	kz_cli_bench_payouts payouts;
} kz_cli_bench_result;

/* Runs the workload a describes. Prints progress on stderr once a second
 * (unless a->quiet). Returns KZ_CLI_OK with *res filled, whatever the
 * server answered; KZ_CLI_EIO (a certificate file cannot be read),
 * KZ_CLI_EINVAL (endpoints), KZ_CLI_ECONFIG (OpenSSL could not load the CA
 * file or a certificate, an endpoint URL is not http:// or https://, or
 * the failover command could not be started; payout and day: the
 * program is closed or its table pays nothing the bench asks for),
 * KZ_CLI_EUNREACHABLE (the preload registered nothing, or
 * stored no photo, or no household the program pays for; the program
 * could not be read) or KZ_CLI_ENOMEM with errmsg set. *res is always initialised; the caller
 * calls kz_cli_bench_result_free on it in every case. Not thread-safe (the
 * transport reads into one static buffer; the shelters are registered
 * with libkizuna, which calls curl_global_init): call from main. */
int kz_cli_bench_run(const kz_cli_bench_args *a, kz_cli_bench_result *res,
		     char *errmsg, size_t errlen);

/* Frees the latency arrays and resets *res (NULL is fine). */
void kz_cli_bench_result_free(kz_cli_bench_result *res);

/* The summary for a person: latencies as p50, p90, p99, p99.9, max and
 * mean (nearest rank, kz_cli_bench_percentile); an open-loop run's
 * schedule as in the JSON below. */
void kz_cli_bench_report_text(FILE *f, const kz_cli_bench_args *a,
			      const kz_cli_bench_result *res);

/* The summary as a JSON object (same fields; times in ms, sizes in bytes).
 * Every latency_ms object has p50, p90, p99, p999 (p99.9), max and mean.
 * An open-loop run adds target_rate, achieved_rate (requests per second)
 * and schedule: {scheduled, sent, unsent, queued, window_s,
 * send_delay_ms: {p50, p90, p99, p999, max, mean}}; a closed-loop run has
 * none of them.
 * Returns a new reference the caller json_decrefs, NULL when out of memory. */
json_t *kz_cli_bench_report_json(const kz_cli_bench_args *a,
				 const kz_cli_bench_result *res);

/* KZ_CLI_BENCH_EXIT_OK when at least one measured request succeeded, no
 * request (preloads included) failed in transport and no measured request
 * (a photo read, a search, ...) came back with a bad body, else
 * KZ_CLI_BENCH_EXIT_FAIL. With a failover,
 * transport failures are what the kill is expected to cause: the run is
 * ok when a write recovered after it and no body was bad. */
int kz_cli_bench_exit_code(const kz_cli_bench_result *res);

#endif /* KZ_CLI_BENCH_H */
