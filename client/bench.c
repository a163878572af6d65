/*
 * kizuna-bench: command line, request bodies, the load loop on libuv and
 * the summary (see bench.h for the design; bench_http.c is the transport:
 * connections, TLS and HTTP/1.1).
 *
 * Happy path of a run: check the certificate files, open N slots, run the
 * preload phase (read/mixed/photo/update: exactly --preload POSTs, keeping
 * the ids the server answers), in photo the photo phase (one PUT per id
 * kept, keeping the ids whose photo was stored), then the measured phase
 * (for --duration or until --requests were sent; in update its writes are
 * PATCHes of kept ids; with --rate its requests start when the schedule
 * says, on whichever slot is free, not when a slot frees:
 * kz_cli__ol_turn), then sort the latencies. A phase stops starting
 * requests when it is over and waits for the ones in flight (each bounded
 * by --timeout), so every request sent is counted.
 * Against etcd the same phases send puts and ranges (the preload keeps the
 * keys stored instead of ids), with no certificate and no shelters. With a
 * failover, the measured phase starts the command at its time, polls it
 * without stopping the load, and watches the writes sent after it ended.
 *
 * Failure modes: a transport failure is counted and the slot pauses 100 ms;
 * a failure the transport would repeat on every request (a CA file or
 * certificate OpenSSL cannot load, a bad endpoint URL: kz_bh_err_local)
 * ends the run with KZ_CLI_ECONFIG, and so does
 * a failover command that cannot be started; running out of memory for the
 * latency array ends it with KZ_CLI_ENOMEM.
 */
#include "bench.h"
#include "bench_http.h"

#include "kizuna.h"
#include "sample.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

extern char **environ; /* for posix_spawn: the command gets ours */

#define KZ_CLI__NS_PER_S 1000000000ull
#define KZ_CLI__NS_PER_MS 1000000ull
#define KZ_CLI__BACKOFF_NS (100 * KZ_CLI__NS_PER_MS)
#define KZ_CLI__CONNECT_TIMEOUT_MS 5000L
#define KZ_CLI__RESP_MAX 8192 /* response bytes kept, enough for a record */
#define KZ_CLI__ID_MAX 64     /* ids kept for reads (the server's are 26) */
#define KZ_CLI__NAME_MAX 96   /* a kept name or kana (the sample's: < 40) */
#define KZ_CLI__URL_MAX 512
#define KZ_CLI__SHELTERS 10 /* as `kizuna sample load` */
#define KZ_CLI__PHOTO_STREAM 0x70686f746full /* "photo": not the id stream */
#define KZ_CLI__FAILOVER_POLL_NS KZ_CLI__NS_PER_MS /* command exit check */
/* Failover probes: a write every 25 ms, each given up after 1 s, so 40
 * probe slots are never all busy. */
#define KZ_CLI__PROBE_INTERVAL_NS (25 * KZ_CLI__NS_PER_MS)
#define KZ_CLI__PROBE_TIMEOUT_MS 1000L
#define KZ_CLI__PROBES 40

/* What the server recognises a JPEG by (node/photos.c looks at 3 bytes;
 * FF E0 is the APP0 marker of a JFIF file). */
static const unsigned char kz_cli__jpeg_magic[4] = {0xff, 0xd8, 0xff, 0xe0};

/* ---- small helpers ----------------------------------------------------------- */

static void kz_cli__bfmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void kz_cli__bfmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static uint64_t kz_cli__bnow_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * KZ_CLI__NS_PER_S + (uint64_t)ts.tv_nsec;
}

static double kz_cli__cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0.0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* splitmix64: the same generator as sample.c, so a seed means one thing. */
static uint64_t kz_cli__brand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n) for n >= 1 (the modulo bias is below 2^-40 for the pool
 * sizes used here). */
static size_t kz_cli__brand_below(uint64_t *s, size_t n)
{
	return (size_t)(kz_cli__brand(s) % (uint64_t)n);
}

/* Uniform in [0, 1). */
static double kz_cli__brand_unit(uint64_t *s)
{
	return (double)(kz_cli__brand(s) >> 11) / 9007199254740992.0; /* 2^53 */
}

/* ---- command line --------------------------------------------------------------- */

const char *kz_cli_bench_workload_name(kz_cli_bench_workload w)
{
	switch (w) {
	case KZ_CLI_BENCH_WRITE:
		return "write";
	case KZ_CLI_BENCH_READ:
		return "read";
	case KZ_CLI_BENCH_MIXED:
		return "mixed";
	case KZ_CLI_BENCH_PHOTO:
		return "photo";
	case KZ_CLI_BENCH_IDENTITY:
		return "identity";
	case KZ_CLI_BENCH_UPDATE:
		return "update";
	case KZ_CLI_BENCH_SEARCH:
		return "search";
	case KZ_CLI_BENCH_PAYOUT:
		return "payout";
	case KZ_CLI_BENCH_DAY:
		return "day";
	default:
		return "none";
	}
}

const char *kz_cli_bench_target_name(kz_cli_bench_target t)
{
	return t == KZ_CLI_BENCH_TARGET_ETCD ? "etcd" : "kizuna";
}

void kz_cli_bench_usage(FILE *f)
{
	fputs(
	    "usage: kizuna-bench [options] WORKLOAD\n"
	    "\n"
	    "Load generator for a Kizuna cluster: N connections (one request in\n"
	    "flight each), spread round-robin over the endpoints and kept alive.\n"
	    "Progress on stderr once a second; the summary on stdout.\n"
	    "\n"
	    "WORKLOAD\n"
	    "  write   POST /v1/victims: new sample victims padded to --record-bytes\n"
	    "          (random text in the address, then the contact, within the\n"
	    "          server's limits of 512 and 256 bytes; capped when they do not\n"
	    "          allow the size asked for, which the summary says)\n"
	    "  read    register --preload records, then GET /v1/victims/{id} of\n"
	    "          random ones among them\n"
	    "  mixed   the same preload, then reads (share --read-ratio) and writes\n"
	    "  photo   the same preload, then PUT /v1/photos/{id} of each record\n"
	    "          (--photo-bytes of JPEG magic and random bytes), then\n"
	    "          GET /v1/photos/{id} of random ones among them with the\n"
	    "          terminal certificate; a 200 of another length is an error\n"
	    "  identity  identity checks with citizens' cards (--cards DIR):\n"
	    "          POST /v1/identity/challenges, sign the nonce with a card\n"
	    "          chosen at random, POST /v1/identity/verifications, as the\n"
	    "          terminal; one operation is the pair, ok when the answer\n"
	    "          says verified (a refusal counts as a bad body)\n"
	    "  update  the same preload, then PATCH /v1/victims/{id} of random\n"
	    "          ones among them (registrar certificate): status, address\n"
	    "          and contact of another sample person, padded toward\n"
	    "          --record-bytes within the field limits (about 800 bytes at\n"
	    "          most); records are rewritten, none added\n"
	    "  search  the same preload, then GET /v1/victims?q= of a name query\n"
	    "          made from a random preloaded person (caseworker): family\n"
	    "          name in kana 25%, full name in kanji 25%, family and given\n"
	    "          name in kana 20%, given name first in kanji 15%, romaji\n"
	    "          15%; a 200 without an items array, or a complete page of a\n"
	    "          full-name query without the person, is a bad body\n"
	    "  payout  give program seikatsu_saiken a disaster date if it has none\n"
	    "          (operator certificate), register --preload sample people of\n"
	    "          households it pays for (household ids new to this run),\n"
	    "          then POST /v1/payouts (payout certificate) of each\n"
	    "          household's basic, then repair support, once each; 201 is\n"
	    "          ok, 409 and 422 are counted apart; the run ends early when\n"
	    "          every planned payout was sent (raise --preload)\n"
	    "  day     a disaster day: the preload (every household), then each\n"
	    "          request drawn by --mix from read, search, write (a new\n"
	    "          registration), note (POST /v1/victims/{id}/notes), payout\n"
	    "          and, with --cards, identity; the summary has each kind's\n"
	    "          throughput and latency\n"
	    "\n"
	    "Cluster and certificates\n"
	    "  --target T          kizuna (default) or etcd: write and read only\n"
	    "                      against etcd v3's JSON gateway over plain HTTP\n"
	    "                      (POST /v3/kv/put of keys kizuna-bench/SEED/N\n"
	    "                      whose values are the record bodies a Kizuna\n"
	    "                      write would send; POST /v3/kv/range, with\n"
	    "                      \"serializable\" for --consistency stale); no\n"
	    "                      certificate options\n"
	    "  --endpoints FILE|URL,URL  default $KIZUNA_ENDPOINTS or\n"
	    "                            var/cluster/endpoints (etcd:\n"
	    "                            http://127.0.0.1:2379)\n"
	    "  --pki DIR           where the defaults below live (var/cluster/pki)\n"
	    "  --cacert F          CA of the nodes ($KIZUNA_CACERT or DIR/ca.pem)\n"
	    "  --cert F, --key F   one client certificate for writes and reads\n"
	    "  --write-cert F, --write-key F  for POST and PUT (DIR/registrar.pem,\n"
	    "                      .key)\n"
	    "  --read-cert F, --read-key F    for GET (DIR/caseworker.pem, .key;\n"
	    "                      photo: DIR/terminal.pem, .key)\n"
	    "                      a certificate given without its key must hold\n"
	    "                      the key\n"
	    "  --purpose P         X-Purpose of reads (bench)\n"
	    "  --cards DIR         identity: <name>.pem and <name>.key of cards\n"
	    "                      bound to people (DIR/cards; deploy/local-cluster\n"
	    "                      cards N makes them); day: puts identity checks\n"
	    "                      in the mix (none without it)\n"
	    "  --payout-cert F, --payout-key F      payout, day: for POST\n"
	    "                      /v1/payouts (DIR/payout.pem, .key)\n"
	    "  --operator-cert F, --operator-key F  payout, day: to give the\n"
	    "                      program a disaster date when it has none\n"
	    "                      (DIR/operator.pem, .key)\n"
	    "\n"
	    "Load\n"
	    "  --connections N     concurrent requests (16); mixed keeps a registrar\n"
	    "                      and a caseworker connection per slot\n"
	    "  --duration SEC      measured time (10), or\n"
	    "  --requests N        measured requests\n"
	    "  --rate R            open loop: R requests/s in all (0.001 to\n"
	    "                      1000000), request k due at k/R s into the\n"
	    "                      measured phase (the preload runs flat out);\n"
	    "                      one due while every connection is busy waits\n"
	    "                      for one, and its latency counts from when it\n"
	    "                      was due. Without it, a closed loop: each\n"
	    "                      connection sends again once answered\n"
	    "  --record-bytes B    POST (update: PATCH) body size (1024; 0: the\n"
	    "                      plain record)\n"
	    "  --preload N         records registered before read/mixed/photo/\n"
	    "                      update/search/payout/day (1000)\n"
	    "  --read-ratio R      mixed: share of reads, 0..1 (0.9)\n"
	    "  --mix K=W,...       day: weight of each kind, 0..1000; kinds read,\n"
	    "                      search, write, note, payout, identity; those\n"
	    "                      left out get 0 (read=50,search=25,write=12,\n"
	    "                      note=10,payout=3, and identity=5 with --cards)\n"
	    "  --photo-bytes B     photo: size of every photo, 4..33554432\n"
	    "                      (30000; a node refuses more than its\n"
	    "                      photo_max_bytes, 2 MiB by default)\n"
	    "  --consistency C     linearizable (default) or stale (Kizuna:\n"
	    "                      after the preload, one linearizable read on\n"
	    "                      each endpoint waits until it applied the\n"
	    "                      preload, so that no stale read meets a\n"
	    "                      record its node has not applied yet)\n"
	    "  --timeout SEC       per request (10)\n"
	    "  --seed S            sample data, photos and id choice (1)\n"
	    "\n"
	    "Failover (write, with --duration; with --rate the schedule goes on\n"
	    "through it, the probes outside it)\n"
	    "  --failover-cmd CMD  run CMD (/bin/sh -c) during the run, e.g. one\n"
	    "                      that kill -9s the leader; its exit is taken as\n"
	    "                      the kill, so kill last. Reports failover_s: from\n"
	    "                      then to the first ok write sent after it\n"
	    "  --failover-at SEC   when, into the run (a third of --duration)\n"
	    "\n"
	    "Output\n"
	    "  --json              the summary as one JSON object on stdout\n"
	    "  --quiet             no progress lines\n"
	    "\n"
	    "Exit status: 0 when at least one request succeeded, none failed in\n"
	    "transport and no photo, search page or payout (or etcd answer)\n"
	    "came back wrong (with a failover: a write recovered after it, and\n"
	    "no body was wrong), 1 otherwise, 2 for a bad command line or\n"
	    "configuration.\n",
	    f);
}

enum kz_cli__bopt_id {
	KZ_CLI__O_ENDPOINTS,
	KZ_CLI__O_PKI,
	KZ_CLI__O_CACERT,
	KZ_CLI__O_CERT,
	KZ_CLI__O_KEY,
	KZ_CLI__O_WCERT,
	KZ_CLI__O_WKEY,
	KZ_CLI__O_RCERT,
	KZ_CLI__O_RKEY,
	KZ_CLI__O_PURPOSE,
	KZ_CLI__O_CARDS,
	KZ_CLI__O_CONNECTIONS,
	KZ_CLI__O_DURATION,
	KZ_CLI__O_REQUESTS,
	KZ_CLI__O_RATE,
	KZ_CLI__O_RECORD_BYTES,
	KZ_CLI__O_PRELOAD,
	KZ_CLI__O_READ_RATIO,
	KZ_CLI__O_PHOTO_BYTES,
	KZ_CLI__O_CONSISTENCY,
	KZ_CLI__O_HTTP2,
	KZ_CLI__O_TIMEOUT,
	KZ_CLI__O_SEED,
	KZ_CLI__O_TARGET,
	KZ_CLI__O_FAILOVER_CMD,
	KZ_CLI__O_FAILOVER_AT,
	KZ_CLI__O_JSON,
	KZ_CLI__O_QUIET,
	KZ_CLI__O_HELP,
	KZ_CLI__O_PAYOUT_CERT,
	KZ_CLI__O_PAYOUT_KEY,
	KZ_CLI__O_OPERATOR_CERT,
	KZ_CLI__O_OPERATOR_KEY,
	KZ_CLI__O_MIX,
	KZ_CLI__O_COUNT_
};

typedef struct kz_cli__bopt {
	const char *name;
	enum kz_cli__bopt_id id;
	int takes_value;
} kz_cli__bopt;

static const kz_cli__bopt kz_cli__bopts[] = {
	{"endpoints", KZ_CLI__O_ENDPOINTS, 1},
	{"pki", KZ_CLI__O_PKI, 1},
	{"cacert", KZ_CLI__O_CACERT, 1},
	{"cert", KZ_CLI__O_CERT, 1},
	{"key", KZ_CLI__O_KEY, 1},
	{"write-cert", KZ_CLI__O_WCERT, 1},
	{"write-key", KZ_CLI__O_WKEY, 1},
	{"read-cert", KZ_CLI__O_RCERT, 1},
	{"read-key", KZ_CLI__O_RKEY, 1},
	{"purpose", KZ_CLI__O_PURPOSE, 1},
	{"cards", KZ_CLI__O_CARDS, 1},
	{"connections", KZ_CLI__O_CONNECTIONS, 1},
	{"duration", KZ_CLI__O_DURATION, 1},
	{"requests", KZ_CLI__O_REQUESTS, 1},
	{"rate", KZ_CLI__O_RATE, 1},
	{"record-bytes", KZ_CLI__O_RECORD_BYTES, 1},
	{"preload", KZ_CLI__O_PRELOAD, 1},
	{"read-ratio", KZ_CLI__O_READ_RATIO, 1},
	{"photo-bytes", KZ_CLI__O_PHOTO_BYTES, 1},
	{"consistency", KZ_CLI__O_CONSISTENCY, 1},
	{"http2", KZ_CLI__O_HTTP2, 0},
	{"timeout", KZ_CLI__O_TIMEOUT, 1},
	{"seed", KZ_CLI__O_SEED, 1},
	{"target", KZ_CLI__O_TARGET, 1},
	{"failover-cmd", KZ_CLI__O_FAILOVER_CMD, 1},
	{"failover-at", KZ_CLI__O_FAILOVER_AT, 1},
	{"json", KZ_CLI__O_JSON, 0},
	{"quiet", KZ_CLI__O_QUIET, 0},
	{"help", KZ_CLI__O_HELP, 0},
	{"payout-cert", KZ_CLI__O_PAYOUT_CERT, 1},
	{"payout-key", KZ_CLI__O_PAYOUT_KEY, 1},
	{"operator-cert", KZ_CLI__O_OPERATOR_CERT, 1},
	{"operator-key", KZ_CLI__O_OPERATOR_KEY, 1},
	{"mix", KZ_CLI__O_MIX, 1},
};
#define KZ_CLI__NBOPTS (sizeof(kz_cli__bopts) / sizeof(kz_cli__bopts[0]))

static int kz_cli__busage(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int kz_cli__busage(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return KZ_CLI_BENCH_ARGS_USAGE;
}

/* A whole number in [min, max]. */
static int kz_cli__blong(const char *opt, const char *s, long min, long max,
			 long *out, char *err, size_t errlen)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return kz_cli__busage(err, errlen,
				      "--%s wants a whole number from %ld to %ld, "
				      "got '%s'",
				      opt, min, max, s);
	*out = v;
	return KZ_CLI_BENCH_ARGS_OK;
}

/* A finite number in [min, max]. */
static int kz_cli__bdouble(const char *opt, const char *s, double min,
			   double max, double *out, char *err, size_t errlen)
{
	char *end;
	double v;
	errno = 0;
	v = strtod(s, &end);
	/* v != v: NaN; the range check also rejects the infinities. */
	if (errno != 0 || end == s || *end != '\0' || v != v || v < min ||
	    v > max)
		return kz_cli__busage(err, errlen,
				      "--%s wants a number from %g to %g, got '%s'",
				      opt, min, max, s);
	*out = v;
	return KZ_CLI_BENCH_ARGS_OK;
}

/* dir/name into buf; the result points at buf. */
static int kz_cli__bpath(char *buf, const char *dir, const char *name,
			 const char **out, char *err, size_t errlen)
{
	int n = snprintf(buf, KZ_CLI_BENCH_PATH_MAX, "%s/%s", dir, name);
	if (n < 0 || n >= KZ_CLI_BENCH_PATH_MAX)
		return kz_cli__busage(err, errlen, "--pki path too long");
	*out = buf;
	return KZ_CLI_BENCH_ARGS_OK;
}

/* ---- the search, payout and day workloads' command line ---------------------- */

static const char *const kz_cli__kind_names[KZ_CLI_BENCH_KIND_COUNT] = {
	[KZ_CLI_BENCH_KIND_READ] = "read",
	[KZ_CLI_BENCH_KIND_SEARCH] = "search",
	[KZ_CLI_BENCH_KIND_WRITE] = "write",
	[KZ_CLI_BENCH_KIND_NOTE] = "note",
	[KZ_CLI_BENCH_KIND_PAYOUT] = "payout",
	[KZ_CLI_BENCH_KIND_IDENTITY] = "identity",
};

/* The day's default mix, the shares of an operator's day after a disaster
 * as we picture it: mostly looking people up (by id from a list, or by
 * name), a steady trickle of new registrations and safety notes, few
 * payouts (they start days later and come in batches). Identity checks
 * join only with --cards (KZ_CLI__MIX_IDENTITY). */
static const unsigned kz_cli__mix_default[KZ_CLI_BENCH_KIND_COUNT] = {
	[KZ_CLI_BENCH_KIND_READ] = 50,  [KZ_CLI_BENCH_KIND_SEARCH] = 25,
	[KZ_CLI_BENCH_KIND_WRITE] = 12, [KZ_CLI_BENCH_KIND_NOTE] = 10,
	[KZ_CLI_BENCH_KIND_PAYOUT] = 3, [KZ_CLI_BENCH_KIND_IDENTITY] = 0,
};
#define KZ_CLI__MIX_IDENTITY 5
#define KZ_CLI__MIX_MAX 1000

const char *kz_cli_bench_kind_name(kz_cli_bench_kind k)
{
	return (unsigned)k < KZ_CLI_BENCH_KIND_COUNT ? kz_cli__kind_names[k]
						     : "none";
}

int kz_cli_bench_mix_parse(const char *spec,
			   unsigned w[KZ_CLI_BENCH_KIND_COUNT], char *err,
			   size_t errlen)
{
	int seen[KZ_CLI_BENCH_KIND_COUNT] = {0};
	const char *p = spec;
	unsigned long total = 0;
	int k;

	for (k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++)
		w[k] = 0;
	if (spec == NULL || spec[0] == '\0')
		return kz_cli__busage(err, errlen, "--mix is empty");
	for (;;) {
		size_t item = strcspn(p, ","), name;
		const char *eq = memchr(p, '=', item);
		char num[16], *end;
		unsigned long v;
		if (eq == NULL)
			return kz_cli__busage(err, errlen,
					      "--mix wants KIND=WEIGHT,... "
					      "(kinds read, search, write, "
					      "note, payout, identity), got "
					      "'%.*s'",
					      (int)item, p);
		name = (size_t)(eq - p);
		for (k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++)
			if (strlen(kz_cli__kind_names[k]) == name &&
			    strncmp(kz_cli__kind_names[k], p, name) == 0)
				break;
		if (k == KZ_CLI_BENCH_KIND_COUNT)
			return kz_cli__busage(err, errlen,
					      "--mix: unknown kind '%.*s' (read, "
					      "search, write, note, payout or "
					      "identity)",
					      (int)name, p);
		if (seen[k])
			return kz_cli__busage(err, errlen,
					      "--mix names %s twice",
					      kz_cli__kind_names[k]);
		seen[k] = 1;
		if (item - name - 1 == 0 || item - name - 1 >= sizeof(num))
			return kz_cli__busage(err, errlen,
					      "--mix: %s wants a weight from 0 "
					      "to %d",
					      kz_cli__kind_names[k],
					      KZ_CLI__MIX_MAX);
		memcpy(num, eq + 1, item - name - 1);
		num[item - name - 1] = '\0';
		errno = 0;
		v = strtoul(num, &end, 10);
		if (errno != 0 || *end != '\0' || num[0] < '0' ||
		    num[0] > '9' || v > KZ_CLI__MIX_MAX)
			return kz_cli__busage(err, errlen,
					      "--mix: %s wants a weight from 0 "
					      "to %d, got '%s'",
					      kz_cli__kind_names[k],
					      KZ_CLI__MIX_MAX, num);
		w[k] = (unsigned)v;
		total += v;
		if (p[item] == '\0')
			break;
		p += item + 1;
	}
	if (total == 0)
		return kz_cli__busage(err, errlen,
				      "--mix: every weight is 0, nothing to "
				      "send");
	return KZ_CLI_BENCH_ARGS_OK;
}

kz_cli_bench_kind
kz_cli_bench_mix_pick(const unsigned w[KZ_CLI_BENCH_KIND_COUNT], uint64_t *rng)
{
	uint64_t total = 0, r;
	int k;
	for (k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++)
		total += w[k];
	if (total == 0)
		return KZ_CLI_BENCH_KIND_COUNT;
	r = kz_cli__brand(rng) % total;
	for (k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++) {
		if (r < w[k])
			return (kz_cli_bench_kind)k;
		r -= w[k];
	}
	return KZ_CLI_BENCH_KIND_COUNT; /* not reached */
}

/* Checks the options of search, payout and day that need no path yet
 * (the certificates come in kz_cli__bargs_roles, once --pki is known) and
 * sets the day's mix. */
static int kz_cli__bargs_workloads(kz_cli_bench_args *out, const char **val,
				   char *err, size_t errlen)
{
	static const enum kz_cli__bopt_id pay_only[] = {
	    KZ_CLI__O_PAYOUT_CERT, KZ_CLI__O_PAYOUT_KEY,
	    KZ_CLI__O_OPERATOR_CERT, KZ_CLI__O_OPERATOR_KEY};
	int payout = out->workload == KZ_CLI_BENCH_PAYOUT ||
		     out->workload == KZ_CLI_BENCH_DAY;
	size_t k;
	int rc;

	for (k = 0; k < sizeof(pay_only) / sizeof(pay_only[0]); k++)
		if (!payout && val[pay_only[k]] != NULL) {
			size_t j = 0;
			while (kz_cli__bopts[j].id != pay_only[k])
				j++;
			return kz_cli__busage(err, errlen,
					      "--%s applies to payout and day",
					      kz_cli__bopts[j].name);
		}
	if (out->workload != KZ_CLI_BENCH_DAY) {
		if (val[KZ_CLI__O_MIX] != NULL)
			return kz_cli__busage(err, errlen,
					      "--mix applies to day");
		return KZ_CLI_BENCH_ARGS_OK;
	}
	if (val[KZ_CLI__O_MIX] == NULL) {
		memcpy(out->mix, kz_cli__mix_default, sizeof(out->mix));
		if (val[KZ_CLI__O_CARDS] != NULL)
			out->mix[KZ_CLI_BENCH_KIND_IDENTITY] =
			    KZ_CLI__MIX_IDENTITY;
		return KZ_CLI_BENCH_ARGS_OK;
	}
	if ((rc = kz_cli_bench_mix_parse(val[KZ_CLI__O_MIX], out->mix, err,
					 errlen)) != 0)
		return rc;
	/* Cards and identity checks go together: either alone would be a
	 * setting the run ignores, or one it cannot carry out. */
	if (out->mix[KZ_CLI_BENCH_KIND_IDENTITY] > 0 &&
	    val[KZ_CLI__O_CARDS] == NULL)
		return kz_cli__busage(err, errlen,
				      "--mix gives identity a weight: identity "
				      "checks need citizens' cards (--cards "
				      "DIR)");
	if (out->mix[KZ_CLI_BENCH_KIND_IDENTITY] == 0 &&
	    val[KZ_CLI__O_CARDS] != NULL)
		return kz_cli__busage(err, errlen,
				      "--cards given, but --mix gives identity "
				      "no weight");
	return KZ_CLI_BENCH_ARGS_OK;
}

/* One role's certificate and key: the option's, else <pki>/<role>.pem and
 * (only with that default certificate) <pki>/<role>.key. */
static int kz_cli__brole(kz_cli_bench_args *out, const char *role,
			 const char *cert, const char *key,
			 const char **cert_out, const char **key_out,
			 char *cert_buf, char *key_buf, char *err,
			 size_t errlen)
{
	char name[64];
	int rc;
	*cert_out = cert;
	*key_out = key;
	if (cert != NULL)
		return KZ_CLI_BENCH_ARGS_OK;
	snprintf(name, sizeof(name), "%s.pem", role);
	if ((rc = kz_cli__bpath(cert_buf, out->pki, name, cert_out, err,
				errlen)) != 0)
		return rc;
	snprintf(name, sizeof(name), "%s.key", role);
	if (key == NULL &&
	    (rc = kz_cli__bpath(key_buf, out->pki, name, key_out, err,
				errlen)) != 0)
		return rc;
	return KZ_CLI_BENCH_ARGS_OK;
}

/* The payout and operator identities of payout and day, and day's cards
 * (no default directory: identity checks are in its mix only when asked
 * for). */
static int kz_cli__bargs_roles(kz_cli_bench_args *out, const char **val,
			       char *err, size_t errlen)
{
	int rc;
	if (out->workload == KZ_CLI_BENCH_DAY)
		out->cards = val[KZ_CLI__O_CARDS];
	if (out->workload != KZ_CLI_BENCH_PAYOUT &&
	    out->workload != KZ_CLI_BENCH_DAY)
		return KZ_CLI_BENCH_ARGS_OK;
	if ((rc = kz_cli__brole(out, "payout", val[KZ_CLI__O_PAYOUT_CERT],
				val[KZ_CLI__O_PAYOUT_KEY], &out->payout_cert,
				&out->payout_key, out->payout_cert_buf,
				out->payout_key_buf, err, errlen)) != 0)
		return rc;
	return kz_cli__brole(out, "operator", val[KZ_CLI__O_OPERATOR_CERT],
			     val[KZ_CLI__O_OPERATOR_KEY], &out->operator_cert,
			     &out->operator_key, out->operator_cert_buf,
			     out->operator_key_buf, err, errlen);
}

int kz_cli_bench_args_parse(int argc, char **argv, kz_cli_bench_args *out,
			    char *err, size_t errlen)
{
	const char *val[KZ_CLI__O_COUNT_] = {NULL};
	int flag[KZ_CLI__O_COUNT_] = {0};
	const char *workload = NULL, *env;
	int i, rc = KZ_CLI_BENCH_ARGS_OK;
	size_t k;

	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *name, *eq, *v = NULL;
		size_t namelen;
		const kz_cli__bopt *o = NULL;
		if (strcmp(arg, "-h") == 0) {
			out->help = 1;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			if (arg[0] == '-' && arg[1] != '\0')
				return kz_cli__busage(err, errlen,
						      "unknown option '%s'", arg);
			if (workload != NULL)
				return kz_cli__busage(
				    err, errlen,
				    "one workload only (got '%s' and '%s')",
				    workload, arg);
			workload = arg;
			continue;
		}
		name = arg + 2;
		eq = strchr(name, '=');
		namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
		for (k = 0; k < KZ_CLI__NBOPTS; k++)
			if (strlen(kz_cli__bopts[k].name) == namelen &&
			    strncmp(kz_cli__bopts[k].name, name, namelen) == 0)
				o = &kz_cli__bopts[k];
		if (o == NULL)
			return kz_cli__busage(err, errlen,
					      "unknown option '--%.*s'",
					      (int)namelen, name);
		if (!o->takes_value) {
			if (eq != NULL)
				return kz_cli__busage(err, errlen,
						      "--%s takes no value",
						      o->name);
			flag[o->id] = 1;
			continue;
		}
		if (eq != NULL)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		if (v == NULL || v[0] == '\0')
			return kz_cli__busage(err, errlen, "--%s needs a value",
					      o->name);
		val[o->id] = v;
	}

	out->help = out->help || flag[KZ_CLI__O_HELP];
	if (out->help)
		return KZ_CLI_BENCH_ARGS_OK;
	out->json = flag[KZ_CLI__O_JSON];
	out->quiet = flag[KZ_CLI__O_QUIET];
	/* Still known, to say why it is refused: the transport
	 * (bench_http.c) speaks HTTP/1.1 only. */
	if (flag[KZ_CLI__O_HTTP2])
		return kz_cli__busage(err, errlen,
				      "--http2 is not supported: kizuna-bench "
				      "speaks HTTP/1.1 (one request in flight "
				      "per connection, kept alive)");

	if (workload == NULL)
		return kz_cli__busage(err, errlen,
				      "no workload (write, read, mixed, "
				      "photo, identity, update, search, "
				      "payout or day)");
	if (strcmp(workload, "write") == 0)
		out->workload = KZ_CLI_BENCH_WRITE;
	else if (strcmp(workload, "read") == 0)
		out->workload = KZ_CLI_BENCH_READ;
	else if (strcmp(workload, "mixed") == 0)
		out->workload = KZ_CLI_BENCH_MIXED;
	else if (strcmp(workload, "photo") == 0)
		out->workload = KZ_CLI_BENCH_PHOTO;
	else if (strcmp(workload, "identity") == 0)
		out->workload = KZ_CLI_BENCH_IDENTITY;
	else if (strcmp(workload, "update") == 0)
		out->workload = KZ_CLI_BENCH_UPDATE;
	else if (strcmp(workload, "search") == 0)
		out->workload = KZ_CLI_BENCH_SEARCH;
	else if (strcmp(workload, "payout") == 0)
		out->workload = KZ_CLI_BENCH_PAYOUT;
	else if (strcmp(workload, "day") == 0)
		out->workload = KZ_CLI_BENCH_DAY;
	else
		return kz_cli__busage(err, errlen,
				      "unknown workload '%s' (write, read, "
				      "mixed, photo, identity, update, "
				      "search, payout or day)",
				      workload);

	if (val[KZ_CLI__O_TARGET] != NULL) {
		if (strcmp(val[KZ_CLI__O_TARGET], "etcd") == 0)
			out->target = KZ_CLI_BENCH_TARGET_ETCD;
		else if (strcmp(val[KZ_CLI__O_TARGET], "kizuna") != 0)
			return kz_cli__busage(err, errlen,
					      "--target wants kizuna or etcd, "
					      "got '%s'",
					      val[KZ_CLI__O_TARGET]);
	}
	if (out->target == KZ_CLI_BENCH_TARGET_ETCD) {
		/* etcd is spoken to in plain HTTP, as nobody: an option that
		 * names a certificate or a purpose would be ignored. */
		static const enum kz_cli__bopt_id kizuna_only[] = {
		    KZ_CLI__O_PKI,   KZ_CLI__O_CACERT, KZ_CLI__O_CERT,
		    KZ_CLI__O_KEY,   KZ_CLI__O_WCERT,  KZ_CLI__O_WKEY,
		    KZ_CLI__O_RCERT, KZ_CLI__O_RKEY,   KZ_CLI__O_PURPOSE};
		/* mixed, photo, identity and update speak Kizuna's API
		 * (records, photos, cards, PATCH): etcd has no such thing. */
		if (out->workload != KZ_CLI_BENCH_WRITE &&
		    out->workload != KZ_CLI_BENCH_READ)
			return kz_cli__busage(err, errlen,
					      "--target etcd runs write or "
					      "read, not %s (a Kizuna "
					      "workload)",
					      workload);
		for (k = 0; k < sizeof(kizuna_only) / sizeof(kizuna_only[0]);
		     k++)
			if (val[kizuna_only[k]] != NULL ||
			    flag[kizuna_only[k]]) {
				size_t j = 0;
				while (kz_cli__bopts[j].id != kizuna_only[k])
					j++;
				return kz_cli__busage(
				    err, errlen,
				    "--%s applies to Kizuna (etcd is spoken "
				    "to in plain HTTP/1.1, without "
				    "certificates)",
				    kz_cli__bopts[j].name);
			}
	}

	/* Options that would silently mean nothing for this workload are
	 * refused, so a summary is never labelled with a setting it ignored. */
	if (out->workload == KZ_CLI_BENCH_IDENTITY &&
	    (val[KZ_CLI__O_PRELOAD] != NULL ||
	     val[KZ_CLI__O_CONSISTENCY] != NULL ||
	     val[KZ_CLI__O_RECORD_BYTES] != NULL))
		return kz_cli__busage(err, errlen,
				      "--preload, --consistency and "
				      "--record-bytes do not apply to identity");
	if (out->workload != KZ_CLI_BENCH_IDENTITY &&
	    out->workload != KZ_CLI_BENCH_DAY && val[KZ_CLI__O_CARDS] != NULL)
		return kz_cli__busage(err, errlen,
				      "--cards applies to identity and day");
	if ((rc = kz_cli__bargs_workloads(out, val, err, errlen)) != 0)
		return rc;
	if (out->workload == KZ_CLI_BENCH_WRITE) {
		if (val[KZ_CLI__O_PRELOAD] != NULL ||
		    val[KZ_CLI__O_CONSISTENCY] != NULL)
			return kz_cli__busage(err, errlen,
					      "--preload and --consistency "
					      "apply to read, mixed and photo "
					      "(--preload to update too)");
	}
	if ((out->workload == KZ_CLI_BENCH_UPDATE ||
	     out->workload == KZ_CLI_BENCH_PAYOUT) &&
	    val[KZ_CLI__O_CONSISTENCY] != NULL)
		return kz_cli__busage(err, errlen,
				      "--consistency applies to reads (read, "
				      "mixed, photo, search and day): %s only "
				      "writes",
				      workload);
	if (out->workload != KZ_CLI_BENCH_MIXED &&
	    val[KZ_CLI__O_READ_RATIO] != NULL)
		return kz_cli__busage(err, errlen,
				      "--read-ratio applies to mixed");
	if (out->workload != KZ_CLI_BENCH_PHOTO &&
	    val[KZ_CLI__O_PHOTO_BYTES] != NULL)
		return kz_cli__busage(err, errlen,
				      "--photo-bytes applies to photo");
	if (val[KZ_CLI__O_DURATION] != NULL && val[KZ_CLI__O_REQUESTS] != NULL)
		return kz_cli__busage(err, errlen,
				      "--duration and --requests exclude each "
				      "other");

	out->connections = 16;
	out->duration_s = 10.0;
	out->record_bytes = 1024;
	out->preload = 1000;
	out->read_ratio = 0.9;
	out->photo_bytes = KZ_CLI_BENCH_PHOTO_DEFAULT;
	out->timeout_ms = 10000;
	out->seed = 1;
	out->purpose = val[KZ_CLI__O_PURPOSE] ? val[KZ_CLI__O_PURPOSE] : "bench";
	if (strchr(out->purpose, '\r') != NULL ||
	    strchr(out->purpose, '\n') != NULL || strlen(out->purpose) > 512)
		return kz_cli__busage(err, errlen,
				      "--purpose must be one line of at most "
				      "512 bytes");

	if (val[KZ_CLI__O_CONNECTIONS] != NULL &&
	    (rc = kz_cli__blong("connections", val[KZ_CLI__O_CONNECTIONS], 1,
				4096, &out->connections, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_DURATION] != NULL &&
	    (rc = kz_cli__bdouble("duration", val[KZ_CLI__O_DURATION], 0.001,
				  86400.0, &out->duration_s, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_REQUESTS] != NULL &&
	    (rc = kz_cli__blong("requests", val[KZ_CLI__O_REQUESTS], 1,
				1000000000L, &out->requests, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_RATE] != NULL &&
	    (rc = kz_cli__bdouble("rate", val[KZ_CLI__O_RATE],
				  KZ_CLI_BENCH_RATE_MIN, KZ_CLI_BENCH_RATE_MAX,
				  &out->rate, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_RECORD_BYTES] != NULL &&
	    (rc = kz_cli__blong("record-bytes", val[KZ_CLI__O_RECORD_BYTES], 0,
				1048576L, &out->record_bytes, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_PRELOAD] != NULL &&
	    (rc = kz_cli__blong("preload", val[KZ_CLI__O_PRELOAD], 1,
				100000000L, &out->preload, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_READ_RATIO] != NULL &&
	    (rc = kz_cli__bdouble("read-ratio", val[KZ_CLI__O_READ_RATIO], 0.0,
				  1.0, &out->read_ratio, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_PHOTO_BYTES] != NULL &&
	    (rc = kz_cli__blong("photo-bytes", val[KZ_CLI__O_PHOTO_BYTES],
				KZ_CLI_BENCH_PHOTO_MIN, KZ_CLI_BENCH_PHOTO_MAX,
				&out->photo_bytes, err, errlen)) != 0)
		return rc;
	if (val[KZ_CLI__O_TIMEOUT] != NULL) {
		double t;
		if ((rc = kz_cli__bdouble("timeout", val[KZ_CLI__O_TIMEOUT],
					  0.001, 3600.0, &t, err, errlen)) != 0)
			return rc;
		out->timeout_ms = (long)(t * 1000.0 + 0.5);
		if (out->timeout_ms < 1)
			out->timeout_ms = 1;
	}
	if (val[KZ_CLI__O_SEED] != NULL) {
		char *end;
		errno = 0;
		out->seed = strtoull(val[KZ_CLI__O_SEED], &end, 10);
		if (errno != 0 || *end != '\0' || val[KZ_CLI__O_SEED][0] == '-')
			return kz_cli__busage(err, errlen,
					      "--seed wants a whole number, got "
					      "'%s'",
					      val[KZ_CLI__O_SEED]);
	}
	if (val[KZ_CLI__O_FAILOVER_AT] != NULL &&
	    val[KZ_CLI__O_FAILOVER_CMD] == NULL)
		return kz_cli__busage(err, errlen,
				      "--failover-at needs --failover-cmd");
	if (val[KZ_CLI__O_FAILOVER_CMD] != NULL) {
		/* The measure is about writes, and needs the load to go on
		 * past the kill for a known time. */
		if (out->workload != KZ_CLI_BENCH_WRITE)
			return kz_cli__busage(err, errlen,
					      "--failover-cmd applies to write");
		if (val[KZ_CLI__O_REQUESTS] != NULL)
			return kz_cli__busage(err, errlen,
					      "--failover-cmd needs a timed run "
					      "(--duration), not --requests");
		out->failover_cmd = val[KZ_CLI__O_FAILOVER_CMD];
		out->failover_at_s = out->duration_s / 3.0;
		if (val[KZ_CLI__O_FAILOVER_AT] != NULL &&
		    (rc = kz_cli__bdouble("failover-at",
					  val[KZ_CLI__O_FAILOVER_AT], 0.0,
					  86400.0, &out->failover_at_s, err,
					  errlen)) != 0)
			return rc;
		if (out->failover_at_s >= out->duration_s)
			return kz_cli__busage(err, errlen,
					      "--failover-at %g is not within "
					      "--duration %g",
					      out->failover_at_s,
					      out->duration_s);
	}
	if (val[KZ_CLI__O_CONSISTENCY] != NULL) {
		if (strcmp(val[KZ_CLI__O_CONSISTENCY], "stale") == 0)
			out->stale = 1;
		else if (strcmp(val[KZ_CLI__O_CONSISTENCY], "linearizable") != 0)
			return kz_cli__busage(err, errlen,
					      "--consistency wants linearizable "
					      "or stale, got '%s'",
					      val[KZ_CLI__O_CONSISTENCY]);
	}

	if (out->target == KZ_CLI_BENCH_TARGET_ETCD) {
		/* No certificate at all: every one of them stays NULL. */
		out->endpoints = val[KZ_CLI__O_ENDPOINTS]
				     ? val[KZ_CLI__O_ENDPOINTS]
				     : KZ_CLI_BENCH_DEFAULT_ETCD;
		return KZ_CLI_BENCH_ARGS_OK;
	}

	/* Where requests go, and as whom. */
	env = getenv("KIZUNA_ENDPOINTS");
	out->endpoints = val[KZ_CLI__O_ENDPOINTS] ? val[KZ_CLI__O_ENDPOINTS]
		       : (env != NULL && env[0] != '\0')
			   ? env
			   : KZ_CLI_BENCH_DEFAULT_ENDPOINTS;
	out->pki = val[KZ_CLI__O_PKI] ? val[KZ_CLI__O_PKI]
				      : KZ_CLI_BENCH_DEFAULT_PKI;
	env = getenv("KIZUNA_CACERT");
	if (val[KZ_CLI__O_CACERT] != NULL)
		out->cacert = val[KZ_CLI__O_CACERT];
	else if (env != NULL && env[0] != '\0' && val[KZ_CLI__O_PKI] == NULL)
		out->cacert = env;
	else if ((rc = kz_cli__bpath(out->cacert_buf, out->pki, "ca.pem",
				     &out->cacert, err, errlen)) != 0)
		return rc;

	out->write_cert = val[KZ_CLI__O_WCERT] ? val[KZ_CLI__O_WCERT]
						: val[KZ_CLI__O_CERT];
	out->write_key = val[KZ_CLI__O_WKEY] ? val[KZ_CLI__O_WKEY]
					      : val[KZ_CLI__O_KEY];
	out->read_cert = val[KZ_CLI__O_RCERT] ? val[KZ_CLI__O_RCERT]
					       : val[KZ_CLI__O_CERT];
	out->read_key = val[KZ_CLI__O_RKEY] ? val[KZ_CLI__O_RKEY]
					     : val[KZ_CLI__O_KEY];
	/* A default key only goes with a default certificate: pairing a
	 * certificate of the user's with a key of ours would only fail later,
	 * in the TLS handshake. The reader is whoever may make the measured
	 * GETs: a caseworker, but for photos a terminal (the only role the
	 * server lets read them). */
	if (out->write_cert == NULL) {
		if ((rc = kz_cli__bpath(out->write_cert_buf, out->pki,
					"registrar.pem", &out->write_cert, err,
					errlen)) != 0)
			return rc;
		if (out->write_key == NULL &&
		    (rc = kz_cli__bpath(out->write_key_buf, out->pki,
					"registrar.key", &out->write_key, err,
					errlen)) != 0)
			return rc;
	}
	if (out->workload == KZ_CLI_BENCH_IDENTITY) {
		out->cards = val[KZ_CLI__O_CARDS];
		if (out->cards == NULL &&
		    (rc = kz_cli__bpath(out->cards_buf, out->pki, "cards",
					&out->cards, err, errlen)) != 0)
			return rc;
	}
	if (out->read_cert == NULL) {
		int photo = out->workload == KZ_CLI_BENCH_PHOTO ||
			    out->workload == KZ_CLI_BENCH_IDENTITY;
		if ((rc = kz_cli__bpath(out->read_cert_buf, out->pki,
					photo ? "terminal.pem"
					      : "caseworker.pem",
					&out->read_cert, err, errlen)) != 0)
			return rc;
		if (out->read_key == NULL &&
		    (rc = kz_cli__bpath(out->read_key_buf, out->pki,
					photo ? "terminal.key"
					      : "caseworker.key",
					&out->read_key, err, errlen)) != 0)
			return rc;
	}
	return kz_cli__bargs_roles(out, val, err, errlen);
}

/* ---- percentiles ------------------------------------------------------------------ */

uint64_t kz_cli_bench_percentile(const uint64_t *sorted, size_t n, double p)
{
	double exact;
	size_t rank;
	if (n == 0)
		return 0;
	if (!(p > 0.0)) /* also NaN */
		return sorted[0];
	if (p >= 100.0)
		return sorted[n - 1];
	exact = p / 100.0 * (double)n;
	/* p is meant as written in decimal, which a double only comes near:
	 * 99.9 / 100 * 1000 is 999.0000000000001, whose ceiling would be
	 * rank 1000, the maximum. Rounding errors are some 1e-16 of exact;
	 * the gaps between real ranks of a p with a few decimals are far
	 * wider than 1e-14 of it. */
	exact -= exact * 1e-14;
	rank = (size_t)exact; /* floor; rank = ceil(exact), at least 1 */
	if ((double)rank < exact)
		rank++;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

/* ---- the open loop's schedule ------------------------------------------------------- */

uint64_t kz_cli_bench_sched_offset_ns(double rate, uint64_t k)
{
	/* Divided last, so that whole numbers of seconds stay exact; a
	 * double holds any offset below the end to well under a ns. */
	double ns = (double)k * 1e9 / rate;
	if (!(ns < (double)KZ_CLI_BENCH_SCHED_END_NS))
		return KZ_CLI_BENCH_SCHED_END_NS;
	return (uint64_t)ns;
}

uint64_t kz_cli_bench_sched_due(double rate, uint64_t elapsed_ns)
{
	double est;
	uint64_t n;
	/* Past the end every offset is the same: the search below would
	 * never stop. */
	if (elapsed_ns >= KZ_CLI_BENCH_SCHED_END_NS)
		elapsed_ns = KZ_CLI_BENCH_SCHED_END_NS - 1;
	/* The estimate by multiplication can differ from the offsets'
	 * division in the last bit: it is only a start, moved to where the
	 * offsets say, so that the two never disagree on a request. */
	est = (double)elapsed_ns * rate / 1e9;
	n = est < (double)KZ_CLI_BENCH_SCHED_END_NS ? (uint64_t)est + 1
						    : KZ_CLI_BENCH_SCHED_END_NS;
	while (n > 0 && kz_cli_bench_sched_offset_ns(rate, n - 1) > elapsed_ns)
		n--;
	while (kz_cli_bench_sched_offset_ns(rate, n) <= elapsed_ns)
		n++;
	return n;
}

static int kz_cli__cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

/* ---- request bodies ---------------------------------------------------------------- */

/* Appends up to `want` random bytes to string field `key` of v, without
 * taking it past `max` bytes. When the field is absent it is added, which
 * costs its key and quotes first (overhead bytes of compact JSON); it is not
 * added when that alone would overshoot. Returns the bytes the body grew
 * by, or (size_t)-1 when out of memory. */
static size_t kz_cli__pad_field(json_t *v, const char *key, size_t max,
				size_t want, uint64_t *rng)
{
	static const char alnum[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	json_t *cur = json_object_get(v, key);
	size_t curlen = 0, overhead = 0, add, i;
	char *s;
	if (cur != NULL && !json_is_string(cur))
		return 0;
	if (cur != NULL)
		curlen = json_string_length(cur);
	else
		overhead = strlen(key) + 6; /* ,"key":"" */
	if (curlen >= max || want <= overhead)
		return 0;
	add = want - overhead;
	if (add > max - curlen)
		add = max - curlen;
	s = malloc(curlen + add + 1);
	if (s == NULL)
		return (size_t)-1;
	if (curlen > 0)
		memcpy(s, json_string_value(cur), curlen);
	for (i = 0; i < add; i++)
		s[curlen + i] = alnum[kz_cli__brand(rng) % (sizeof(alnum) - 1)];
	/* A space keeps the real address readable in front of the filler. */
	if (curlen > 0 && add >= 2)
		s[curlen] = ' ';
	s[curlen + add] = '\0';
	if (json_object_set_new(v, key, json_stringn(s, curlen + add)) != 0) {
		free(s);
		return (size_t)-1;
	}
	free(s);
	return add + overhead;
}

int kz_cli_bench_victim_body(json_t *victim, size_t target, uint64_t *rng,
			     char **body, size_t *len, int *capped)
{
	char *s;
	size_t n, grew;

	*body = NULL;
	*len = 0;
	*capped = 0;
	s = json_dumps(victim, JSON_COMPACT);
	if (s == NULL)
		return KZ_CLI_ENOMEM;
	n = strlen(s);
	if (n >= target) {
		*body = s;
		*len = n;
		return KZ_CLI_OK;
	}
	free(s);
	/* ASCII filler is never escaped, so each byte added to a value adds
	 * one byte to the body. */
	grew = kz_cli__pad_field(victim, "address", KZ_CLI_BENCH_MAX_ADDRESS,
				 target - n, rng);
	if (grew == (size_t)-1)
		return KZ_CLI_ENOMEM;
	n += grew;
	if (n < target) {
		grew = kz_cli__pad_field(victim, "contact",
					 KZ_CLI_BENCH_MAX_CONTACT, target - n,
					 rng);
		if (grew == (size_t)-1)
			return KZ_CLI_ENOMEM;
	}
	s = json_dumps(victim, JSON_COMPACT);
	if (s == NULL)
		return KZ_CLI_ENOMEM;
	*body = s;
	*len = strlen(s);
	*capped = *len < target;
	return KZ_CLI_OK;
}

int kz_cli_bench_update_body(const json_t *victim, size_t target,
			     uint64_t *rng, char **body, size_t *len,
			     int *capped)
{
	/* The fields a registrar changes when a person turns up, moves or
	 * gets a phone: the rest of the record stays as registered. */
	static const char *const keep[] = {"status", "address", "contact"};
	json_t *u = json_object();
	size_t i;
	int rc;

	*body = NULL;
	*len = 0;
	*capped = 0;
	if (u == NULL)
		return KZ_CLI_ENOMEM;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		json_t *v = json_object_get(victim, keep[i]);
		if (v != NULL && json_object_set(u, keep[i], v) != 0) {
			json_decref(u);
			return KZ_CLI_ENOMEM;
		}
	}
	/* Padding replaces a string with a new one: the victim's own values
	 * are shared, never changed. */
	rc = kz_cli_bench_victim_body(u, target, rng, body, len, capped);
	json_decref(u);
	return rc;
}

/* Photo n's stream starts two splitmix steps away from (seed, n): photos of
 * one run, or of runs with other seeds, start at unrelated points of the
 * generator's cycle rather than at neighbouring ones, where one photo's
 * bytes would be another's shifted by a few words. */
void kz_cli_bench_photo_body(uint64_t seed, uint64_t n, unsigned char *buf,
			     size_t len)
{
	uint64_t run = seed ^ KZ_CLI__PHOTO_STREAM, start, st;
	size_t i, k;

	start = kz_cli__brand(&run) ^ n;
	st = kz_cli__brand(&start);
	memcpy(buf, kz_cli__jpeg_magic,
	       len < sizeof(kz_cli__jpeg_magic) ? len
						: sizeof(kz_cli__jpeg_magic));
	for (i = sizeof(kz_cli__jpeg_magic); i < len; i += 8) {
		uint64_t r = kz_cli__brand(&st);
		for (k = 0; k < 8 && i + k < len; k++)
			buf[i + k] = (unsigned char)(r >> (8 * k));
	}
}

/* ---- etcd bodies and answers -------------------------------------------------------- */

char *kz_cli_bench_base64(const void *in, size_t len, size_t *out_len)
{
	size_t n;
	char *out;
	/* EVP_EncodeBlock counts in int. */
	if (len > (1u << 30))
		return NULL;
	n = 4 * ((len + 2) / 3);
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	/* It writes the NUL too, and no line breaks (unlike EVP_EncodeUpdate). */
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in,
			(int)len);
	if (out_len != NULL)
		*out_len = n;
	return out;
}

int kz_cli_bench_etcd_key(uint64_t seed, uint64_t n, char *buf, size_t len)
{
	int k = snprintf(buf, len, "kizuna-bench/%llu/%llu",
			 (unsigned long long)seed, (unsigned long long)n);
	return k < 0 || (size_t)k >= len ? -1 : k;
}

/* o serialised compactly into *body / *len; o is consumed (NULL: out of
 * memory). */
static int kz_cli__dump_body(json_t *o, char **body, size_t *len)
{
	*body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (*body == NULL)
		return KZ_CLI_ENOMEM;
	*len = strlen(*body);
	return KZ_CLI_OK;
}

int kz_cli_bench_etcd_put_body(const char *key, const char *value,
			       size_t value_len, char **body, size_t *len)
{
	char *k64 = kz_cli_bench_base64(key, strlen(key), NULL);
	char *v64 = kz_cli_bench_base64(value, value_len, NULL);
	json_t *o = k64 != NULL && v64 != NULL
			? json_pack("{s:s,s:s}", "key", k64, "value", v64)
			: NULL;
	free(k64);
	free(v64);
	*len = 0;
	return kz_cli__dump_body(o, body, len);
}

int kz_cli_bench_etcd_range_body(const char *key, int serializable,
				 char **body, size_t *len)
{
	char *k64 = kz_cli_bench_base64(key, strlen(key), NULL);
	json_t *o = k64 != NULL ? json_pack("{s:s}", "key", k64) : NULL;
	free(k64);
	/* Absent means false, etcd's default: a linearizable range. */
	if (o != NULL && serializable &&
	    json_object_set_new(o, "serializable", json_true()) != 0) {
		json_decref(o);
		o = NULL;
	}
	*len = 0;
	return kz_cli__dump_body(o, body, len);
}

int kz_cli_bench_etcd_put_answer_ok(const char *resp, size_t len)
{
	json_t *v = json_loadb(resp, len, 0, NULL);
	int ok = json_is_object(json_object_get(v, "header"));
	json_decref(v);
	return ok;
}

int kz_cli_bench_etcd_range_answer_ok(const char *resp, size_t len,
				      const char *key)
{
	json_t *v = json_loadb(resp, len, 0, NULL), *kv;
	char *k64 = kz_cli_bench_base64(key, strlen(key), NULL);
	size_t i;
	int ok = 0;
	json_array_foreach(json_object_get(v, "kvs"), i, kv)
	{
		const char *got = json_string_value(json_object_get(kv, "key"));
		if (got != NULL && k64 != NULL && strcmp(got, k64) == 0)
			ok = 1;
	}
	free(k64);
	json_decref(v);
	return ok;
}

/* ---- search, payout and day: queries and bodies --------------------------------- */

static const char *const kz_cli__query_names[KZ_CLI_BENCH_Q_COUNT] = {
	[KZ_CLI_BENCH_Q_FAMILY_KANA] = "family_kana",
	[KZ_CLI_BENCH_Q_KANJI] = "kanji",
	[KZ_CLI_BENCH_Q_KANA_FULL] = "kana_full",
	[KZ_CLI_BENCH_Q_SWAPPED] = "swapped",
	[KZ_CLI_BENCH_Q_ROMAJI] = "romaji",
};

/* How an operator looks a person up, in percent: the family name alone
 * when that is all the caller knows, the name as written on a list, read
 * out over the phone (kana, with a space), given name first as people
 * often say it, and romaji from a foreign-language desk or a keyboard
 * without an IME. */
static const unsigned kz_cli__query_share[KZ_CLI_BENCH_Q_COUNT] = {
	[KZ_CLI_BENCH_Q_FAMILY_KANA] = 25, [KZ_CLI_BENCH_Q_KANJI] = 25,
	[KZ_CLI_BENCH_Q_KANA_FULL] = 20,   [KZ_CLI_BENCH_Q_SWAPPED] = 15,
	[KZ_CLI_BENCH_Q_ROMAJI] = 15,
};

const char *kz_cli_bench_query_name(kz_cli_bench_query q)
{
	return (unsigned)q < KZ_CLI_BENCH_Q_COUNT ? kz_cli__query_names[q]
						  : "none";
}

kz_cli_bench_query kz_cli_bench_query_pick(uint64_t *rng)
{
	unsigned r = (unsigned)(kz_cli__brand(rng) % 100);
	int q;
	for (q = 0; q < KZ_CLI_BENCH_Q_COUNT - 1; q++) {
		if (r < kz_cli__query_share[q])
			return (kz_cli_bench_query)q;
		r -= kz_cli__query_share[q];
	}
	return (kz_cli_bench_query)q;
}

int kz_cli_bench_query_full(kz_cli_bench_query q)
{
	return q != KZ_CLI_BENCH_Q_FAMILY_KANA && q < KZ_CLI_BENCH_Q_COUNT;
}

/* Hepburn of the hiragana U+3041..U+3096, in code point order; small kana
 * (ぁ っ ゃ ゎ ...) stand here as their full-size sound and are combined by
 * kz_cli_bench_romaji. */
static const char *const kz_cli__hepburn[0x3096 - 0x3041 + 1] = {
	"a",  "a",  "i",   "i",  "u",  "u",  "e",  "e",  "o",  "o",  /* ぁ..お */
	"ka", "ga", "ki",  "gi", "ku", "gu", "ke", "ge", "ko", "go", /* か..ご */
	"sa", "za", "shi", "ji", "su", "zu", "se", "ze", "so", "zo", /* さ..ぞ */
	"ta", "da", "chi", "ji", "tsu", "tsu", "zu", "te", "de", "to", /* た..と */
	"do", "na", "ni",  "nu", "ne", "no", "ha", "ba", "pa", "hi", /* ど..ひ */
	"bi", "pi", "fu",  "bu", "pu", "he", "be", "pe", "ho", "bo", /* び..ぼ */
	"po", "ma", "mi",  "mu", "me", "mo", "ya", "ya", "yu", "yu", /* ぽ..ゆ */
	"yo", "yo", "ra",  "ri", "ru", "re", "ro", "wa", "wa", "i",  /* ょ..ゐ */
	"e",  "o",  "n",   "vu", "ka", "ke",                         /* ゑ..ゖ */
};

/* One decoded code point of s (UTF-8 of at most 3 bytes: kana and ASCII
 * are all a name needs here); *adv its length. -1 when not valid. */
static long kz_cli__utf8_next(const unsigned char *s, size_t *adv)
{
	if (s[0] < 0x80) {
		*adv = 1;
		return s[0];
	}
	if ((s[0] & 0xe0) == 0xc0 && (s[1] & 0xc0) == 0x80) {
		*adv = 2;
		return ((long)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
	}
	if ((s[0] & 0xf0) == 0xe0 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80) {
		*adv = 3;
		return ((long)(s[0] & 0x0f) << 12) | ((long)(s[1] & 0x3f) << 6) |
		       (s[2] & 0x3f);
	}
	return -1;
}

#define KZ_CLI__SYL_MAX 128 /* syllables of one name */

/* A unit of romaji before it is written: a syllable, or what depends on
 * its neighbours (っ, ん, ー, a word break). */
typedef struct kz_cli__syl {
	char kind;  /* 's' syllable, 'Q' っ, 'N' ん, 'L' ー, ' ' space */
	char r[6];  /* the syllable */
} kz_cli__syl;

int kz_cli_bench_romaji(const char *kana, char *out, size_t len)
{
	kz_cli__syl syl[KZ_CLI__SYL_MAX];
	const unsigned char *p = (const unsigned char *)kana;
	size_t n = 0, o = 0, i, adv;
	int word_start = 1;
	char last_vowel = 'a';

	while (*p != '\0') {
		long c = kz_cli__utf8_next(p, &adv);
		kz_cli__syl *prev = n > 0 ? &syl[n - 1] : NULL;
		if (c < 0 || n == KZ_CLI__SYL_MAX)
			return -1;
		p += adv;
		if (c >= 0x30a1 && c <= 0x30f6) /* katakana: as hiragana */
			c -= 0x60;
		if (c == ' ' || c == 0x3000) {
			if (n > 0 && prev->kind != ' ')
				syl[n++].kind = ' ';
			continue;
		}
		if (c == 0x30fc) { /* ー: the vowel before it again */
			syl[n++].kind = 'L';
			continue;
		}
		if (c < 0x3041 || c > 0x3096)
			return -1;
		if (c == 0x3063) { /* っ */
			syl[n++].kind = 'Q';
			continue;
		}
		if (c == 0x3093) { /* ん */
			syl[n++].kind = 'N';
			continue;
		}
		/* ゃ ゅ ょ after an i-row syllable make one: きゃ kya, しゃ sha,
		 * ちゃ cha, じゃ ja. */
		if ((c == 0x3083 || c == 0x3085 || c == 0x3087) && prev != NULL &&
		    prev->kind == 's' && strlen(prev->r) >= 2 &&
		    prev->r[strlen(prev->r) - 1] == 'i') {
			size_t l = strlen(prev->r) - 1;
			int hush = (l == 2 && (strncmp(prev->r, "sh", 2) == 0 ||
					       strncmp(prev->r, "ch", 2) == 0)) ||
				   (l == 1 && prev->r[0] == 'j');
			if (!hush)
				prev->r[l++] = 'y';
			prev->r[l++] = kz_cli__hepburn[c - 0x3041][1];
			prev->r[l] = '\0';
			continue;
		}
		/* A small vowel after a syllable replaces its vowel (ふぁ fa,
		 * てぃ ti). */
		if ((c == 0x3041 || c == 0x3043 || c == 0x3045 || c == 0x3047 ||
		     c == 0x3049) &&
		    prev != NULL && prev->kind == 's' && strlen(prev->r) >= 2) {
			prev->r[strlen(prev->r) - 1] = kz_cli__hepburn[c - 0x3041][0];
			continue;
		}
		syl[n].kind = 's';
		memcpy(syl[n].r, kz_cli__hepburn[c - 0x3041],
		       strlen(kz_cli__hepburn[c - 0x3041]) + 1);
		n++;
	}
	for (i = 0; i < n; i++) {
		const kz_cli__syl *next = i + 1 < n ? &syl[i + 1] : NULL;
		char w[8];
		size_t wl = 0, k;
		switch (syl[i].kind) {
		case ' ':
			w[wl++] = ' ';
			break;
		case 'Q':
			/* っ doubles the consonant after it (っち tch); before
			 * a vowel, a break or the end it has no sound to
			 * write. */
			if (next != NULL && next->kind == 's' &&
			    strchr("aeiou", next->r[0]) == NULL)
				w[wl++] = next->r[0] == 'c' ? 't' : next->r[0];
			break;
		case 'N':
			w[wl++] = 'n';
			/* けんいち is Ken'ichi, not Kenichi (け + に + ち). */
			if (next != NULL && next->kind == 's' &&
			    strchr("aeiouy", next->r[0]) != NULL)
				w[wl++] = '\'';
			break;
		case 'L':
			if (!word_start)
				w[wl++] = last_vowel;
			break;
		default:
			wl = strlen(syl[i].r);
			memcpy(w, syl[i].r, wl);
			last_vowel = w[wl - 1];
		}
		for (k = 0; k < wl; k++) {
			if (o + 1 >= len)
				return -1;
			out[o++] = word_start && w[k] >= 'a' && w[k] <= 'z'
				       ? (char)(w[k] - 'a' + 'A')
				       : w[k];
			if (w[k] != ' ')
				word_start = 0;
		}
		if (syl[i].kind == ' ')
			word_start = 1;
	}
	while (o > 0 && out[o - 1] == ' ') /* a trailing space */
		o--;
	if (len == 0)
		return -1;
	out[o] = '\0';
	return (int)o;
}

/* s[0..n-1] into out at *o (len bytes in all, NUL kept room for).
 * Returns 0, or -1 when it does not fit. */
static int kz_cli__put(char *out, size_t len, size_t *o, const char *s,
		       size_t n)
{
	if (*o + n + 1 > len)
		return -1;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
	return 0;
}

int kz_cli_bench_search_query(kz_cli_bench_query q, const char *name,
			      const char *kana, char *out, size_t len)
{
	const char *nsp = name != NULL ? strchr(name, ' ') : NULL;
	const char *ksp = kana != NULL ? strchr(kana, ' ') : NULL;
	size_t o = 0, fl, kfl;
	char fam[KZ_CLI__NAME_MAX], giv[KZ_CLI__NAME_MAX],
	    famr[KZ_CLI__NAME_MAX];
	int r1, r2;

	if (len == 0)
		return -1;
	out[0] = '\0';
	/* Family name, one space, given name: the shape of the register's
	 * records (and of the sample's). */
	if (nsp == NULL || ksp == NULL || nsp == name || ksp == kana ||
	    nsp[1] == '\0' || ksp[1] == '\0' || strchr(nsp + 1, ' ') != NULL ||
	    strchr(ksp + 1, ' ') != NULL)
		return -1;
	fl = (size_t)(nsp - name);
	kfl = (size_t)(ksp - kana);
	switch (q) {
	case KZ_CLI_BENCH_Q_FAMILY_KANA:
		r1 = kz_cli__put(out, len, &o, kana, kfl);
		break;
	case KZ_CLI_BENCH_Q_KANJI:
		r1 = kz_cli__put(out, len, &o, name, fl) ||
		     kz_cli__put(out, len, &o, nsp + 1, strlen(nsp + 1));
		break;
	case KZ_CLI_BENCH_Q_KANA_FULL:
		r1 = kz_cli__put(out, len, &o, kana, strlen(kana));
		break;
	case KZ_CLI_BENCH_Q_SWAPPED:
		r1 = kz_cli__put(out, len, &o, nsp + 1, strlen(nsp + 1)) ||
		     kz_cli__put(out, len, &o, " ", 1) ||
		     kz_cli__put(out, len, &o, name, fl);
		break;
	case KZ_CLI_BENCH_Q_ROMAJI:
		/* Given name first, as a name is written in romaji. */
		if (kfl >= sizeof(fam))
			return -1;
		memcpy(fam, kana, kfl);
		fam[kfl] = '\0';
		r1 = kz_cli_bench_romaji(ksp + 1, giv, sizeof(giv));
		r2 = r1 < 0 ? -1 : kz_cli_bench_romaji(fam, famr, sizeof(famr));
		r1 = r1 < 0 || r2 < 0 ||
		     kz_cli__put(out, len, &o, giv, (size_t)r1) ||
		     kz_cli__put(out, len, &o, " ", 1) ||
		     kz_cli__put(out, len, &o, famr, (size_t)r2);
		break;
	default:
		return -1;
	}
	if (r1 != 0) {
		out[0] = '\0';
		return -1;
	}
	return (int)o;
}

/* in, percent-encoded for a query string (everything but A-Z a-z 0-9 - . _
 * ~), into out (len bytes). Returns 0, or -1 when it does not fit. */
static int kz_cli__url_encode(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *in != '\0'; in++) {
		unsigned char c = (unsigned char)*in;
		int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
			    c == '_' || c == '~';
		if (o + (plain ? 1 : 3) + 1 > len)
			return -1;
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (len == 0)
		return -1;
	out[o] = '\0';
	return 0;
}

int kz_cli_bench_note_body(uint64_t *rng, char **body, size_t *len)
{
	/* What caseworkers and terminals report about a person: mostly
	 * found safe, a few injured, some not heard of yet. Not deceased:
	 * a bench does not declare people dead. */
	static const struct {
		const char *status, *text;
		unsigned percent;
	} notes[] = {
	    {"safe", "避難所で本人を確認。体調に問題なし。", 40},
	    {"safe", "家族から電話で無事との連絡。", 30},
	    {"injured", "足を負傷、救護所で手当て済み。", 10},
	    {"unknown", "自宅付近で見かけたとの情報、未確認。", 12},
	    {"missing", "家族が捜索中、連絡が取れない。", 8},
	};
	static const char *const places[] = {
	    "石巻市立湊小学校", "石巻市総合体育館", "石巻専修大学",
	    "石巻市立住吉中学校", "石巻市立渡波小学校"};
	unsigned r = (unsigned)(kz_cli__brand(rng) % 100);
	size_t k = 0;
	json_t *o;
	while (k + 1 < sizeof(notes) / sizeof(notes[0]) &&
	       r >= notes[k].percent) {
		r -= notes[k].percent;
		k++;
	}
	o = json_pack("{s:s,s:s,s:s,s:s}", "status", notes[k].status, "text",
		      notes[k].text, "author", "kizuna-bench",
		      "last_known_location",
		      places[kz_cli__brand_below(
			  rng, sizeof(places) / sizeof(places[0]))]);
	*len = 0;
	return kz_cli__dump_body(o, body, len);
}

int kz_cli_bench_payout_body(const char *household, const char *item,
			     const char *holder, uint64_t n, char **body,
			     size_t *len)
{
	char number[16];
	json_t *o;
	/* Seven digits, as the 全銀 file holds them. */
	snprintf(number, sizeof(number), "%07llu",
		 (unsigned long long)(1000000 + n % 9000000));
	o = json_pack("{s:s,s:s,s:s,s:{s:i,s:i,s:i,s:s,s:s}}", "household_id",
		      household, "program", "seikatsu_saiken", "item", item,
		      "account", "bank_code", 1, "branch_code",
		      (int)(n % 1000), "account_type", 1, "account_number",
		      number, "holder", holder);
	*len = 0;
	return kz_cli__dump_body(o, body, len);
}

int kz_cli_bench_payout_key(const char *tag, const char *household,
			    const char *item, char *buf, size_t len)
{
	int k = snprintf(buf, len, "kizuna-bench-%s-%s-%s", tag, household,
			 item);
	/* The server takes 1 to 128 printable characters. */
	return k < 0 || (size_t)k >= len || k > 128 ? -1 : k;
}

/* ---- the load loop ------------------------------------------------------------------ */

struct kz_cli__bench;

/* What a request does. The kind it counts as (KZ_CLI_BENCH_OP_*), and so
 * the handle and certificate it goes out with, is its side: POST, PATCH
 * and PUT write as the registrar, the GETs read. etcd's put writes and its
 * range reads, both POSTs without a certificate. */
enum kz_cli__req {
	KZ_CLI__REQ_VICTIM_POST,
	KZ_CLI__REQ_VICTIM_GET,
	KZ_CLI__REQ_VICTIM_PATCH,
	KZ_CLI__REQ_PHOTO_PUT,
	KZ_CLI__REQ_PHOTO_GET,
	KZ_CLI__REQ_ID_CHALLENGE,
	KZ_CLI__REQ_ID_VERIFY,
	KZ_CLI__REQ_ETCD_PUT,
	KZ_CLI__REQ_ETCD_RANGE,
	KZ_CLI__REQ_SEARCH,     /* GET /v1/victims?q= */
	KZ_CLI__REQ_NOTE,       /* POST /v1/victims/{id}/notes */
	KZ_CLI__REQ_PAYOUT,     /* POST /v1/payouts */
	KZ_CLI__REQ_COUNT_
};

/* The identities a slot's handles present, indexes of its h[] and of the
 * run's tls[]: the first two are KZ_CLI_BENCH_OP_WRITE and _READ (the
 * registrar, and the reader: caseworker or terminal), then the payout
 * role's. */
#define KZ_CLI__ID_PAYOUT 2
#define KZ_CLI__IDS 3

/* search: answers are kept whole (they are judged whole) up to this. */
#define KZ_CLI__WHOLE_MAX (16u << 20)

/* search, day: a registered person, as the 201 of their POST said
 * (b->people[i] is b->ids[i]'s). */
typedef struct kz_cli__person {
	char name[KZ_CLI__NAME_MAX];      /* "佐藤 和子", "" when unknown */
	char kana[KZ_CLI__NAME_MAX];
	char household[KZ_CLI__ID_MAX];
	char damage[24];
} kz_cli__person;

/* payout, day: one payout to make, of the household of a kept person. */
typedef struct kz_cli__plan {
	size_t person;  /* index in b->people */
	int item;       /* KZ_CLI__ITEM_* */
} kz_cli__plan;

/* The items of seikatsu_saiken the bench pays: the basic support, and of
 * the additional support the one that never depends on what else was paid
 * (build and repair are reduced by rent paid; repair and rent are two
 * roads a household does not take both of, so one of them is enough). */
enum { KZ_CLI__ITEM_BASIC = 0, KZ_CLI__ITEM_REPAIR = 1, KZ_CLI__ITEMS = 2 };
static const char *const kz_cli__items[KZ_CLI__ITEMS] = {"basic", "repair"};

/* The damage codes of API.md, in its order. */
static const char *const kz_cli__damages[] = {
	"zenkai",	  "kaitai", "choki_hinan", "daikibo_hankai",
	"chukibo_hankai", "hankai", "jun_hankai",  "ichibu_sonkai",
	"none"};
#define KZ_CLI__DAMAGES (sizeof(kz_cli__damages) / sizeof(kz_cli__damages[0]))

/* identity: a citizen's card (the bench plays the card's part). */
typedef struct kz_cli__card {
	EVP_PKEY *key;
	char *cert_b64; /* DER of the certificate, base64 */
} kz_cli__card;

/* One concurrent client: at most one request in flight. */
typedef struct kz_cli__slot {
	struct kz_cli__bench *b;
	size_t ep;              /* endpoint index: every request goes there */
	int probe;              /* a failover probe, not one of the N */
	kz_bh_conn *h[KZ_CLI__IDS]; /* by identity (KZ_CLI_BENCH_OP_*,
				   KZ_CLI__ID_PAYOUT); created when needed */
	int busy;               /* a request is with the transport */
	int op;                 /* kind of that request */
	enum kz_cli__req req;   /* what it does */
	size_t victim;          /* photo PUT, PATCH: whose (index in b->ids) */
	char key[KZ_CLI__ID_MAX]; /* etcd: the key put or ranged */
	uint64_t start_ns;      /* when the request in flight was sent */
	uint64_t op_start_ns;   /* where its latency counts from: start_ns, or
				   in an open loop when it was due (identity:
				   of the challenge, for the pair) */
	uint64_t due_ns;        /* open loop: when the request about to be
				   started was due; 0: closed loop */
	int id_verify;          /* identity: the next request verifies */
	char challenge_id[64];
	unsigned char nonce[32];
	uint64_t not_before_ns; /* pause after a transport failure */
	char *body;             /* POST/PUT body of the request in flight
				   (malloc'd, owned by the slot) */
	char url[KZ_CLI__URL_MAX];
	char resp[KZ_CLI__RESP_MAX]; /* start of the response body */
	size_t resp_len;
	uint64_t resp_total;    /* whole response body, also past resp */
	char errmsg[256];       /* the transport's failure, "" if none */
	/* search, payout, day (ph->kinds set) */
	int kind;               /* kz_cli_bench_kind of the request */
	int query;              /* search: kz_cli_bench_query */
	size_t person;          /* search: whom (index in b->ids) */
	size_t plan;            /* payout: which (index in b->plan) */
	char *whole;            /* search: the whole answer (malloc'd, owned
				   by the slot), whole_len bytes of it */
	size_t whole_len, whole_cap;
	int whole_cut;          /* it was longer than KZ_CLI__WHOLE_MAX */
	char pay_hdrs[400];     /* payout: header lines with its key */
	char why[200];          /* a bad body's reason, "" if none */
} kz_cli__slot;

/* One phase of a run: what to send, when to stop, where to count. */
typedef struct kz_cli__phase {
	const char *name;       /* in progress lines */
	double read_ratio;      /* 0: all writes, 1: all reads */
	uint64_t limit;         /* requests to send; 0: until deadline_ns */
	uint64_t deadline_ns;
	int keep_ids;           /* add the ids of created records to the pool */
	int photos;             /* writes PUT the photo of each id in turn (the
				   nth request the nth id; limit at most
				   n_ids), reads GET photos of photo_ids */
	int updates;            /* writes PATCH random ids of the pool
				   instead of POSTing new records */
	kz_cli_bench_stats *st[2];
	kz_cli_bench_records *rec;
	kz_cli_bench_endpoint *ep; /* per-endpoint stats, NULL: not kept */
	int failover;           /* runs a->failover_cmd at a->failover_at_s */
	double rate;            /* > 0: open loop, requests due at start_ns +
				   k / rate s (kz_cli__ol_turn); 0: closed */
	kz_cli_bench_schedule *sched; /* open loop: how it was kept */
	uint64_t ol_next;       /* open loop: the next request of the
				   schedule to send (= those sent) */
	uint64_t ol_waited;     /* those below this one waited for a slot */
	size_t ol_cursor;       /* the slot to offer the next request first */
	uint64_t ol_last_ns;    /* when the last one was sent */
	int ol_closed;          /* the schedule is over: nothing more sent */
	kz_cli_bench_stats *kinds; /* search, payout, day: the measured phase
				   sends their kinds of request
				   (kz_cli__kind_request) and counts each
				   here too, by kz_cli_bench_kind */
	uint64_t sent;
	uint64_t start_ns, end_ns;
} kz_cli__phase;

typedef struct kz_cli__bench {
	const kz_cli_bench_args *a;
	kz_cli_endpoint *eps;
	size_t n_eps;
	uv_loop_t loop;         /* the transport's (loop_open: initialised) */
	int loop_open;
	uv_timer_t tick;        /* bounds one turn of the loop */
	kz_bh_tls *tls[KZ_CLI__IDS]; /* client identity by KZ_CLI_BENCH_OP_*,
				   KZ_CLI__ID_PAYOUT (payout, day) */
	uint64_t n_done;        /* requests finished (counts the loop's turns) */
	kz_cli__slot *slots;
	size_t n_slots;
	char *hdrs[KZ_CLI__REQ_COUNT_]; /* header lines of each kind */
	kz_cli_sample gen;
	uint64_t rng;
	char (*ids)[KZ_CLI__ID_MAX]; /* pool of ids to read */
	size_t n_ids, cap_ids;
	size_t *photo_ids;      /* photo: indexes in ids of the victims whose
				   photo was stored; room for n_ids */
	size_t n_photo_ids;
	kz_cli__card *cards;    /* identity */
	size_t n_cards;
	uint64_t next_key;      /* etcd: number of the next key put */
	kz_cli__phase *ph;
	int warned_cap;         /* bit 0 a record, bit 1 an update capped */
	/* --failover-cmd, during the measured phase (a->failover_cmd set) */
	pid_t fo_pid;           /* the command while it runs, 0 otherwise */
	uint64_t fo_start_ns;   /* when it was started, 0: not yet */
	uint64_t fo_kill_ns;    /* when it was seen to exit, 0: not yet */
	uint64_t fo_recovered_ns; /* first ok write sent after fo_kill_ns */
	int fo_status;
	uint64_t fo_errors_after;
	kz_cli__slot *probes;   /* KZ_CLI__PROBES of them with a failover */
	uint64_t fo_next_probe_ns;
	uint64_t fo_probes;     /* probes sent */
	int fatal;              /* KZ_CLI_E* that ends the run, 0: none */
	char errmsg[512];
	/* search, payout, day */
	int keep_people;        /* kept ids come with their person */
	kz_cli__person *people; /* cap_people entries, people[i] is ids[i]'s */
	size_t cap_people;
	char hh_tag[16];        /* payout, day: "b<8 hex>", prefixed to the
				   sample's household ids ("" : as they are) */
	int eligible_only;      /* payout: the preload registers only
				   households the program pays something */
	unsigned char payable[KZ_CLI__DAMAGES][KZ_CLI__ITEMS]; /* the program's
				   table: which item it pays which damage */
	kz_cli__plan *plan;     /* payout, day: the payouts to make */
	size_t n_plan, next_plan;
	unsigned mix[KZ_CLI_BENCH_KIND_COUNT]; /* day: the weights in force
				   (payout's drops to 0 when the plan is done) */
	kz_cli_bench_search *search_res;   /* where search tallies go */
	kz_cli_bench_payouts *payout_res;  /* where payout tallies go */
} kz_cli__bench;

/* search, payout, day: below, after kz_cli__finish. */
static int kz_cli__check_file(const char *what, const char *path, char *errmsg,
			      size_t errlen);
static int kz_cli__kind_request(kz_cli__bench *b, kz_cli__slot *s,
				enum kz_cli__req *req, int *op, kz_bh_conn **h,
				size_t *len);
static int kz_cli__kind_answer(kz_cli__bench *b, kz_cli__slot *s, long status,
			       int ok2xx);
static void kz_cli__keep_person(kz_cli__bench *b, const kz_cli__slot *s);
static void kz_cli__keep_whole(kz_cli__slot *s, const char *data, size_t n);

/* A piece of the response body of slot ud's request: the first
 * KZ_CLI__RESP_MAX - 1 bytes are kept, all are counted (a search's
 * answer is also kept whole). */
static void kz_cli__on_resp(void *ud, const char *data, size_t n)
{
	kz_cli__slot *s = ud;
	size_t room = sizeof(s->resp) - 1 - s->resp_len;
	memcpy(s->resp + s->resp_len, data, n < room ? n : room);
	s->resp_len += n < room ? n : room;
	s->resp_total += n;
	if (s->req == KZ_CLI__REQ_SEARCH)
		kz_cli__keep_whole(s, data, n);
}

static void kz_cli__finish(kz_cli__bench *b, kz_cli__slot *s,
			   const kz_bh_result *r);

static void kz_cli__on_done(void *ud, const kz_bh_result *r)
{
	kz_cli__slot *s = ud;
	s->b->n_done++;
	kz_cli__finish(s->b, s, r);
}

/* Whether both kinds of request go out with the same identity (etcd:
 * none; Kizuna: --cert for both): then, as libcurl would reuse it, a
 * slot has one connection for both. */
static int kz_cli__one_identity(const kz_cli_bench_args *a)
{
	return a->target == KZ_CLI_BENCH_TARGET_ETCD ||
	       ((a->write_cert == a->read_cert ||
		 (a->write_cert != NULL && a->read_cert != NULL &&
		  strcmp(a->write_cert, a->read_cert) == 0)) &&
		(a->write_key == a->read_key ||
		 (a->write_key != NULL && a->read_key != NULL &&
		  strcmp(a->write_key, a->read_key) == 0)));
}

/* The connection of slot s for requests of kind op, made on first use:
 * to the slot's endpoint, with the identity of op (bench_http.h; as
 * libkizuna, every node connection is TLS 1.3, mutually authenticated;
 * etcd is spoken to in plain HTTP). When both kinds share an identity,
 * h[READ] is h[WRITE]. NULL with b->fatal set on failure. */
static kz_bh_conn *kz_cli__handle(kz_cli__bench *b, kz_cli__slot *s, int op)
{
	const kz_cli_bench_args *a = b->a;
	kz_bh_conn_opts o;
	char err[300];
	int rc;

	if (s->h[op] != NULL)
		return s->h[op];
	if (op == KZ_CLI_BENCH_OP_READ && kz_cli__one_identity(a))
		return s->h[op] = kz_cli__handle(b, s, KZ_CLI_BENCH_OP_WRITE);
	memset(&o, 0, sizeof(o));
	o.loop = &b->loop;
	o.url = b->eps[s->ep].url;
	o.tls = b->tls[op];
	o.connect_timeout_ms = a->timeout_ms < KZ_CLI__CONNECT_TIMEOUT_MS
				   ? a->timeout_ms
				   : KZ_CLI__CONNECT_TIMEOUT_MS;
	o.timeout_ms = s->probe && a->timeout_ms > KZ_CLI__PROBE_TIMEOUT_MS
			   ? KZ_CLI__PROBE_TIMEOUT_MS
			   : a->timeout_ms;
	o.on_body = kz_cli__on_resp;
	o.on_done = kz_cli__on_done;
	o.ud = s;
	err[0] = '\0';
	rc = kz_bh_conn_new(&o, &s->h[op], err, sizeof(err));
	if (rc != KZ_BH_OK) {
		b->fatal = rc == KZ_BH_E_NOMEM ? KZ_CLI_ENOMEM : KZ_CLI_ECONFIG;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg), "%s",
			     err[0] ? err : kz_bh_strerror(rc));
		return NULL;
	}
	return s->h[op];
}

/* The index of damage code d in kz_cli__damages, KZ_CLI__DAMAGES when it
 * is none of them (or NULL). */
static size_t kz_cli__damage_index(const char *d)
{
	size_t i;
	for (i = 0; d != NULL && i < KZ_CLI__DAMAGES; i++)
		if (strcmp(d, kz_cli__damages[i]) == 0)
			return i;
	return KZ_CLI__DAMAGES;
}

/* Whether the program pays a household of damage d anything the bench
 * asks for. */
static int kz_cli__pays(const kz_cli__bench *b, const char *d)
{
	size_t k = kz_cli__damage_index(d);
	int item;
	for (item = 0; k < KZ_CLI__DAMAGES && item < KZ_CLI__ITEMS; item++)
		if (b->payable[k][item])
			return 1;
	return 0;
}

/* The next sample victim to register. payout and day: with the run's
 * household ids, so that a second run on the same cluster registers new
 * households instead of adding members to ones already paid; payout: of
 * a household the program pays for (the others are skipped, all their
 * members alike, since members share the damage). After 10,000 skipped in
 * a row, one is taken anyway: the plan will say that nothing is payable. */
static int kz_cli__next_victim(kz_cli__bench *b, json_t **v)
{
	char hh[KZ_CLI__ID_MAX];
	const char *old;
	int rc, skipped = 0;

	for (;;) {
		rc = kz_cli_sample_victim(&b->gen, v);
		if (rc != KZ_CLI_OK || b->hh_tag[0] == '\0')
			return rc;
		old = json_string_value(json_object_get(*v, "household_id"));
		if (old != NULL) {
			snprintf(hh, sizeof(hh), "%s-%s", b->hh_tag, old);
			if (json_object_set_new(*v, "household_id",
						json_string(hh)) != 0) {
				json_decref(*v);
				*v = NULL;
				return KZ_CLI_ENOMEM;
			}
		}
		if (!b->eligible_only || skipped++ == 10000 ||
		    kz_cli__pays(b, json_string_value(
					json_object_get(*v, "damage"))))
			return KZ_CLI_OK;
		json_decref(*v);
		*v = NULL;
	}
}

/* The next POST body (update: PATCH body, when the phase updates),
 * counted in the phase's record sizes. */
static int kz_cli__next_body(kz_cli__bench *b, char **body, size_t *len)
{
	json_t *v;
	int capped, rc, patch = b->ph->updates;
	kz_cli_bench_records *rec = b->ph->rec;

	rc = kz_cli__next_victim(b, &v);
	if (rc != KZ_CLI_OK)
		return rc;
	if (patch)
		rc = kz_cli_bench_update_body(v, (size_t)b->a->record_bytes,
					      &b->rng, body, len, &capped);
	else
		rc = kz_cli_bench_victim_body(v, (size_t)b->a->record_bytes,
					      &b->rng, body, len, &capped);
	json_decref(v);
	if (rc != KZ_CLI_OK)
		return rc;
	/* Once per kind: the preload's records and the updates differ. */
	if (capped && !(b->warned_cap & (1 << patch)) && !b->a->quiet) {
		fprintf(stderr,
			"kizuna-bench: note: %s cannot reach %ld bytes "
			"within the server's field limits (address %d, "
			"contact %d bytes); such %s are sent at the "
			"limits (this one: %zu bytes)\n",
			patch ? "an update" : "a record", b->a->record_bytes,
			KZ_CLI_BENCH_MAX_ADDRESS, KZ_CLI_BENCH_MAX_CONTACT,
			patch ? "updates" : "records", *len);
		b->warned_cap |= 1 << patch;
	}
	if (rec->count == 0 || *len < rec->min)
		rec->min = *len;
	if (*len > rec->max)
		rec->max = *len;
	rec->count++;
	rec->bytes += *len;
	rec->capped += (uint64_t)capped;
	return KZ_CLI_OK;
}

/* identity: the verification body for slot s, the nonce signed with a
 * card chosen at random (the card's part, done here). */
static int kz_cli__verify_body(kz_cli__bench *b, kz_cli__slot *s, char **body,
			       size_t *len)
{
	const kz_cli__card *c = &b->cards[kz_cli__brand_below(&b->rng,
							       b->n_cards)];
	unsigned char sig[1024];
	char sig64[1400];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL &&
		 EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->key) == 1 &&
		 EVP_DigestSign(md, sig, &sl, s->nonce, sizeof(s->nonce)) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return KZ_CLI_ECONFIG;
	EVP_EncodeBlock((unsigned char *)sig64, sig, (int)sl);
	*len = strlen(c->cert_b64) + strlen(sig64) + strlen(s->challenge_id) +
	       80;
	*body = malloc(*len);
	if (*body == NULL)
		return KZ_CLI_ENOMEM;
	*len = (size_t)snprintf(*body, *len,
				"{\"challenge_id\":\"%s\",\"certificate\":"
				"\"%s\",\"signature\":\"%s\"}",
				s->challenge_id, c->cert_b64, sig64);
	return KZ_CLI_OK;
}

/* identity: the next request of slot s, a challenge or its verification,
 * both POSTs as the terminal (the read handle). Returns the request kind,
 * or -1 with b->fatal set. */
static int kz_cli__identity_request(kz_cli__bench *b, kz_cli__slot *s,
				    size_t *len)
{
	const kz_cli_endpoint *ep = &b->eps[s->ep];
	int n, rc;

	if (!s->id_verify) {
		s->body = strdup("{}");
		*len = 2;
		n = snprintf(s->url, sizeof(s->url),
			     "%s/v1/identity/challenges", ep->url);
		rc = s->body != NULL ? KZ_CLI_OK : KZ_CLI_ENOMEM;
	} else {
		rc = kz_cli__verify_body(b, s, &s->body, len);
		n = snprintf(s->url, sizeof(s->url),
			     "%s/v1/identity/verifications", ep->url);
	}
	if (rc != KZ_CLI_OK || n < 0 || (size_t)n >= sizeof(s->url)) {
		b->fatal = rc != KZ_CLI_OK ? rc : KZ_CLI_EINVAL;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     rc == KZ_CLI_ECONFIG
				 ? "a card's key could not sign"
				 : "out of memory, or endpoint URL too long");
		return -1;
	}
	return s->id_verify ? KZ_CLI__REQ_ID_VERIFY : KZ_CLI__REQ_ID_CHALLENGE;
}

/* etcd: the body (*len bytes) and URL of slot s's next request, a put of
 * a new key whose value is the record body a Kizuna write would carry, or
 * a range of a stored key (b->n_ids > 0). Returns 0, or -1 with b->fatal
 * set. */
static int kz_cli__etcd_request(kz_cli__bench *b, kz_cli__slot *s,
				enum kz_cli__req req, size_t *len)
{
	const kz_cli_endpoint *ep = &b->eps[s->ep];
	int n, rc;

	if (req == KZ_CLI__REQ_ETCD_PUT) {
		char *value;
		size_t vlen;
		rc = kz_cli__next_body(b, &value, &vlen);
		if (rc == KZ_CLI_OK) {
			/* 64 bytes hold any two 64-bit numbers. */
			kz_cli_bench_etcd_key(b->a->seed, b->next_key++, s->key,
					      sizeof(s->key));
			rc = kz_cli_bench_etcd_put_body(s->key, value, vlen,
							&s->body, len);
			free(value);
		}
	} else {
		size_t k = kz_cli__brand_below(&b->rng, b->n_ids);
		memcpy(s->key, b->ids[k], strlen(b->ids[k]) + 1);
		rc = kz_cli_bench_etcd_range_body(s->key, b->a->stale, &s->body,
						  len);
	}
	if (rc != KZ_CLI_OK) {
		b->fatal = rc;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "cannot make an etcd request: %s",
			     kz_cli_strerror(rc));
		return -1;
	}
	n = snprintf(s->url, sizeof(s->url), "%s/v3/kv/%s", ep->url,
		     req == KZ_CLI__REQ_ETCD_PUT ? "put" : "range");
	if (n < 0 || (size_t)n >= sizeof(s->url)) {
		b->fatal = KZ_CLI_EINVAL;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "endpoint URL too long: %s", ep->url);
		return -1;
	}
	return 0;
}

/* Starts the next request of slot s. On failure sets b->fatal. */
static void kz_cli__start(kz_cli__bench *b, kz_cli__slot *s)
{
	const kz_cli_endpoint *ep = &b->eps[s->ep];
	kz_cli__phase *ph = b->ph;
	int op = KZ_CLI_BENCH_OP_WRITE, n;
	size_t pool = ph->photos ? b->n_photo_ids : b->n_ids;
	enum kz_cli__req req;
	const char *method;
	size_t len = 0;
	kz_bh_conn *h;

	if (b->a->workload == KZ_CLI_BENCH_IDENTITY) {
		int kind;
		h = kz_cli__handle(b, s, KZ_CLI_BENCH_OP_READ);
		if (h == NULL)
			return;
		free(s->body);
		s->body = NULL;
		kind = kz_cli__identity_request(b, s, &len);
		if (kind < 0)
			return;
		req = (enum kz_cli__req)kind;
		op = KZ_CLI_BENCH_OP_READ;
		n = 0;
		goto send;
	}
	if (ph->kinds != NULL) {
		if (kz_cli__kind_request(b, s, &req, &op, &h, &len) <= 0)
			return;
		goto send;
	}
	if (ph->read_ratio >= 1.0 ||
	    (ph->read_ratio > 0.0 &&
	     kz_cli__brand_unit(&b->rng) < ph->read_ratio))
		op = KZ_CLI_BENCH_OP_READ;
	if (op == KZ_CLI_BENCH_OP_READ && pool == 0 && !ph->photos)
		op = KZ_CLI_BENCH_OP_WRITE; /* nothing to read yet */
	/* The run only starts a photo phase with something to do: a read
	 * phase with a photo to read, a write phase of at most n_ids. */
	if (ph->photos && (op == KZ_CLI_BENCH_OP_READ ? pool == 0
						      : ph->sent >= b->n_ids)) {
		b->fatal = KZ_CLI_EINVAL;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "no photo to %s", op == KZ_CLI_BENCH_OP_READ
						   ? "read"
						   : "store");
		return;
	}
	if (b->a->target == KZ_CLI_BENCH_TARGET_ETCD)
		req = op == KZ_CLI_BENCH_OP_WRITE ? KZ_CLI__REQ_ETCD_PUT
						  : KZ_CLI__REQ_ETCD_RANGE;
	else if (ph->photos)
		req = op == KZ_CLI_BENCH_OP_WRITE ? KZ_CLI__REQ_PHOTO_PUT
						  : KZ_CLI__REQ_PHOTO_GET;
	else if (op == KZ_CLI_BENCH_OP_WRITE)
		req = ph->updates ? KZ_CLI__REQ_VICTIM_PATCH
				  : KZ_CLI__REQ_VICTIM_POST;
	else
		req = KZ_CLI__REQ_VICTIM_GET;
	/* The run only starts an update phase after a preload that kept
	 * at least one id. */
	if (req == KZ_CLI__REQ_VICTIM_PATCH && pool == 0) {
		b->fatal = KZ_CLI_EINVAL;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "no record to update");
		return;
	}
	h = kz_cli__handle(b, s, op);
	if (h == NULL)
		return;
	free(s->body);
	s->body = NULL;
	if (req == KZ_CLI__REQ_ETCD_PUT || req == KZ_CLI__REQ_ETCD_RANGE) {
		if (kz_cli__etcd_request(b, s, req, &len) != 0)
			return;
		goto send;
	}
	if (req == KZ_CLI__REQ_VICTIM_POST) {
		int rc = kz_cli__next_body(b, &s->body, &len);
		if (rc != KZ_CLI_OK) {
			b->fatal = rc;
			kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
				     "cannot make a record: %s",
				     kz_cli_strerror(rc));
			return;
		}
		n = snprintf(s->url, sizeof(s->url), "%s/v1/victims", ep->url);
	} else if (req == KZ_CLI__REQ_VICTIM_PATCH) {
		int rc = kz_cli__next_body(b, &s->body, &len);
		if (rc != KZ_CLI_OK) {
			b->fatal = rc;
			kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
				     "cannot make an update: %s",
				     kz_cli_strerror(rc));
			return;
		}
		/* No If-Match: the last writer wins, as a registrar who
		 * just learnt the news would have it. */
		s->victim = kz_cli__brand_below(&b->rng, pool);
		n = snprintf(s->url, sizeof(s->url), "%s/v1/victims/%s",
			     ep->url, b->ids[s->victim]);
	} else if (req == KZ_CLI__REQ_PHOTO_PUT) {
		len = (size_t)b->a->photo_bytes;
		s->victim = (size_t)ph->sent;
		s->body = malloc(len);
		if (s->body == NULL) {
			b->fatal = KZ_CLI_ENOMEM;
			kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
				     "out of memory for a photo of %zu bytes",
				     len);
			return;
		}
		/* Photo n of the run belongs to the nth victim registered. */
		kz_cli_bench_photo_body(b->a->seed, (uint64_t)s->victim,
					(unsigned char *)s->body, len);
		n = snprintf(s->url, sizeof(s->url), "%s/v1/photos/%s",
			     ep->url, b->ids[s->victim]);
	} else {
		size_t k = kz_cli__brand_below(&b->rng, pool);
		const char *id = b->ids[ph->photos ? b->photo_ids[k] : k];
		n = snprintf(s->url, sizeof(s->url),
			     "%s/v1/%s/%s?consistency=%s", ep->url,
			     ph->photos ? "photos" : "victims", id,
			     b->a->stale ? "stale" : "linearizable");
	}
	if (n < 0 || (size_t)n >= sizeof(s->url)) {
		b->fatal = KZ_CLI_EINVAL;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "endpoint URL too long: %s", ep->url);
		return;
	}
send:
	/* Writes and every etcd call (its gateway takes ranges too as POSTs)
	 * carry a body; the photo write is sent as a PUT, the update as a
	 * PATCH; the Kizuna reads are GETs. */
	method = req == KZ_CLI__REQ_PHOTO_PUT	   ? "PUT"
		 : req == KZ_CLI__REQ_VICTIM_PATCH ? "PATCH"
		 : req == KZ_CLI__REQ_VICTIM_GET ||
			 req == KZ_CLI__REQ_PHOTO_GET ||
			 req == KZ_CLI__REQ_SEARCH
		     ? "GET"
		     : "POST";
	s->op = op;
	s->req = req;
	s->resp_len = 0;
	s->resp_total = 0;
	s->errmsg[0] = '\0';
	s->start_ns = kz_cli__bnow_ns();
	/* An open loop times a request from when it was due, so that the
	 * wait for a slot is in its latency; the verification of an
	 * identity check is timed with its challenge. */
	if (req != KZ_CLI__REQ_ID_VERIFY)
		s->op_start_ns = s->due_ns != 0 && s->due_ns < s->start_ns
				     ? s->due_ns
				     : s->start_ns;
	/* A payout's headers carry its own Idempotency-Key. */
	n = kz_bh_send(h, method, s->url,
		       req == KZ_CLI__REQ_PAYOUT ? s->pay_hdrs : b->hdrs[req],
		       s->body, len, strcmp(method, "GET") != 0);
	if (n != KZ_BH_OK) {
		b->fatal = n == KZ_BH_E_NOMEM ? KZ_CLI_ENOMEM : KZ_CLI_EINVAL;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "cannot send %s %s: %s", method, s->url,
			     kz_bh_strerror(n));
		return;
	}
	s->busy = 1;
	ph->sent++;
}

/* Adds str[0..len-1] (len < KZ_CLI__ID_MAX) to the pool read from. When
 * out of memory the reads use the ids kept so far. */
static void kz_cli__pool_add(kz_cli__bench *b, const char *str, size_t len)
{
	if (b->n_ids == b->cap_ids) {
		size_t cap = b->cap_ids ? b->cap_ids * 2 : 1024;
		char(*ids)[KZ_CLI__ID_MAX] = realloc(b->ids, cap * sizeof(*ids));
		if (ids == NULL)
			return;
		b->ids = ids;
		b->cap_ids = cap;
	}
	memcpy(b->ids[b->n_ids], str, len);
	b->ids[b->n_ids][len] = '\0';
	b->n_ids++;
}

/* Keeps the id of the record a 201 created, for later reads. */
static void kz_cli__keep_id(kz_cli__bench *b, const kz_cli__slot *s)
{
	json_t *v, *id;
	const char *str;
	size_t len, i;

	if (b->keep_people) {
		kz_cli__keep_person(b, s);
		return;
	}
	v = json_loadb(s->resp, s->resp_len, 0, NULL);
	if (v == NULL)
		return;
	id = json_object_get(v, "id");
	str = json_string_value(id);
	len = str != NULL ? strlen(str) : 0;
	/* The id goes into a URL path unencoded: take only plain ones. */
	for (i = 0; i < len; i++)
		if (!((str[i] >= '0' && str[i] <= '9') ||
		      (str[i] >= 'a' && str[i] <= 'z') ||
		      (str[i] >= 'A' && str[i] <= 'Z') || str[i] == '-' ||
		      str[i] == '_'))
			len = 0;
	if (len > 0 && len < KZ_CLI__ID_MAX)
		kz_cli__pool_add(b, str, len);
	json_decref(v);
}

static int kz_cli__push_latency(kz_cli_bench_stats *st, uint64_t ns)
{
	if (st->n_lat == st->cap_lat) {
		size_t cap = st->cap_lat ? st->cap_lat * 2 : 4096;
		uint64_t *lat = realloc(st->lat_ns, cap * sizeof(*lat));
		if (lat == NULL)
			return KZ_CLI_ENOMEM;
		st->lat_ns = lat;
		st->cap_lat = cap;
	}
	st->lat_ns[st->n_lat++] = ns;
	return KZ_CLI_OK;
}

/* Whether the 2xx answer to a photo read is the photo: as long as every
 * photo sent, and a JPEG (a node that answered with something else, an
 * error page or a cut body, is not a read served). */
static int kz_cli__photo_ok(const kz_cli__bench *b, const kz_cli__slot *s)
{
	return s->resp_total == (uint64_t)b->a->photo_bytes &&
	       s->resp_len >= sizeof(kz_cli__jpeg_magic) &&
	       memcmp(s->resp, kz_cli__jpeg_magic,
		      sizeof(kz_cli__jpeg_magic)) == 0;
}

/* Counts one finished request in st; result: KZ_BH_OK or the transport's
 * failure (kz_bh_err); bad_body: a 2xx photo read whose body is not the
 * photo. Returns KZ_CLI_ENOMEM when its latency cannot be kept. */
static int kz_cli__account(kz_cli__bench *b, kz_cli_bench_stats *st,
			   kz_cli__slot *s, int result, long status,
			   long connects, uint64_t lat_ns, int bad_body)
{
	st->requests++;
	st->body_bytes_in += s->resp_total;
	st->connects += (uint64_t)(connects > 0 ? connects : 0);
	if (result != KZ_BH_OK) {
		st->transport_errors++;
		st->by_transport[(unsigned)result < KZ_CLI_BENCH_MAX_TRANSPORT
					 ? (unsigned)result
					 : 0]++;
		if (st->first_error[0] == '\0')
			kz_cli__bfmt(st->first_error, sizeof(st->first_error),
				     "%s: %s", b->eps[s->ep].url,
				     s->errmsg[0] ? s->errmsg
						  : kz_bh_strerror(result));
		return KZ_CLI_OK;
	}
	/* A bad body that says why itself (search, payout): the reason
	 * names no person, unlike the answer. */
	if (status >= 200 && status < 300 && bad_body && s->why[0] != '\0') {
		st->bad_bodies++;
		if (st->first_error[0] == '\0')
			kz_cli__bfmt(st->first_error, sizeof(st->first_error),
				     "%s: %ld: %s", b->eps[s->ep].url, status,
				     s->why);
		return KZ_CLI_OK;
	}
	if (status >= 200 && status < 300 && bad_body &&
	    (s->req == KZ_CLI__REQ_ID_CHALLENGE ||
	     s->req == KZ_CLI__REQ_ID_VERIFY ||
	     s->req == KZ_CLI__REQ_ETCD_PUT ||
	     s->req == KZ_CLI__REQ_ETCD_RANGE)) {
		st->bad_bodies++;
		s->resp[s->resp_len] = '\0';
		if (st->first_error[0] == '\0')
			kz_cli__bfmt(st->first_error, sizeof(st->first_error),
				     "%s: %ld: %.160s", s->url, status, s->resp);
		return KZ_CLI_OK;
	}
	if (status >= 200 && status < 300 && bad_body) {
		st->bad_bodies++;
		if (st->first_error[0] == '\0')
			kz_cli__bfmt(st->first_error, sizeof(st->first_error),
				     "%s: %ld with %llu bytes, not the JPEG "
				     "of %ld bytes stored",
				     s->url, status,
				     (unsigned long long)s->resp_total,
				     b->a->photo_bytes);
		return KZ_CLI_OK;
	}
	if (status >= 200 && status < 300) {
		st->ok++;
		return kz_cli__push_latency(st, lat_ns);
	}
	st->http_errors++;
	st->by_status[status >= 100 && status < KZ_CLI_BENCH_MAX_STATUS
			  ? status
			  : 0]++;
	if (st->first_error[0] == '\0') {
		kz_cli_response r;
		memset(&r, 0, sizeof(r));
		r.status = status;
		r.body = s->resp;
		r.body_len = s->resp_len;
		s->resp[s->resp_len] = '\0';
		kz_cli_error_describe(&r, st->first_error,
				      sizeof(st->first_error));
	}
	return KZ_CLI_OK;
}

/* identity: takes challenge_id and nonce from a challenge's answer. */
static int kz_cli__take_challenge(kz_cli__slot *s)
{
	json_t *v = json_loadb(s->resp, s->resp_len, 0, NULL);
	const char *id = json_string_value(json_object_get(v, "challenge_id"));
	const char *nonce = json_string_value(json_object_get(v, "nonce"));
	unsigned char raw[48];
	int n = nonce != NULL && strlen(nonce) == 44
		    ? EVP_DecodeBlock(raw, (const unsigned char *)nonce, 44)
		    : -1;
	int ok = id != NULL && strlen(id) < sizeof(s->challenge_id) && n == 33;
	if (ok) {
		memcpy(s->challenge_id, id, strlen(id) + 1);
		memcpy(s->nonce, raw, sizeof(s->nonce));
	}
	json_decref(v);
	return ok;
}

/* identity: the verification's answer says verified. */
static int kz_cli__verified(const kz_cli__slot *s)
{
	json_t *v = json_loadb(s->resp, s->resp_len, 0, NULL);
	int ok = json_is_true(json_object_get(v, "verified"));
	json_decref(v);
	return ok;
}

/* Whether the 2xx answer of slot s's etcd request is etcd's answer to it. */
static int kz_cli__etcd_answer_ok(const kz_cli__slot *s)
{
	/* A body longer than resp was cut: not judged, not ok. */
	if (s->resp_total > s->resp_len)
		return 0;
	return s->req == KZ_CLI__REQ_ETCD_PUT
		   ? kz_cli_bench_etcd_put_answer_ok(s->resp, s->resp_len)
		   : kz_cli_bench_etcd_range_answer_ok(s->resp, s->resp_len,
						       s->key);
}

/* Failover: what a request that ended at end_ns, ok or not, tells. Only
 * requests sent after the command ended count: the first ok write among
 * them ends the failover; the others that failed are counted. */
static void kz_cli__failover_note(kz_cli__bench *b, const kz_cli__slot *s,
				  int ok, uint64_t end_ns)
{
	if (b->fo_kill_ns == 0 || s->start_ns < b->fo_kill_ns)
		return;
	if (!ok)
		b->fo_errors_after++;
	else if (s->op == KZ_CLI_BENCH_OP_WRITE && b->fo_recovered_ns == 0)
		b->fo_recovered_ns = end_ns;
}

/* Accounts for a finished request (r, from the transport) and frees its
 * slot. */
static void kz_cli__finish(kz_cli__bench *b, kz_cli__slot *s,
			   const kz_bh_result *r)
{
	kz_cli__phase *ph = b->ph;
	uint64_t end = kz_cli__bnow_ns();
	long status = r->err == KZ_BH_OK ? r->status : 0,
	     connects = r->connects;
	int rc, ok2xx, bad_body, result = r->err;

	if (result != KZ_BH_OK)
		kz_cli__bfmt(s->errmsg, sizeof(s->errmsg), "%s: %s",
			     kz_bh_strerror(result), r->errmsg);
	s->busy = 0;
	ph->end_ns = end;
	ok2xx = result == KZ_BH_OK && status >= 200 && status < 300;
	/* identity: a challenge answered leads to its verification; only
	 * the pair is counted, from the challenge's start. */
	if (s->req == KZ_CLI__REQ_ID_CHALLENGE && ok2xx &&
	    kz_cli__take_challenge(s)) {
		s->id_verify = 1;
		ph->sent--; /* one operation is the pair */
		return;
	}
	if (s->req == KZ_CLI__REQ_ID_VERIFY)
		s->id_verify = 0;
	bad_body = ok2xx && ((s->req == KZ_CLI__REQ_PHOTO_GET &&
			      !kz_cli__photo_ok(b, s)) ||
			     s->req == KZ_CLI__REQ_ID_CHALLENGE ||
			     (s->req == KZ_CLI__REQ_ID_VERIFY &&
			      !kz_cli__verified(s)) ||
			     ((s->req == KZ_CLI__REQ_ETCD_PUT ||
			       s->req == KZ_CLI__REQ_ETCD_RANGE) &&
			      !kz_cli__etcd_answer_ok(s)));
	if (ph->kinds != NULL && result == KZ_BH_OK && !s->probe)
		bad_body |= kz_cli__kind_answer(b, s, status, ok2xx);
	/* A probe only tells when writes came back: it is not one of the N
	 * clients, so it stays out of their figures. */
	if (s->probe) {
		kz_cli__failover_note(b, s, ok2xx && !bad_body, end);
		return;
	}
	uint64_t lat = end - s->op_start_ns;
	rc = kz_cli__account(b, ph->st[s->op], s, result, status, connects,
			     lat, bad_body);
	if (rc == KZ_CLI_OK && ph->ep != NULL)
		rc = kz_cli__account(b, &ph->ep[s->ep].st, s, result, status,
				     connects, lat, bad_body);
	if (rc == KZ_CLI_OK && ph->kinds != NULL &&
	    (unsigned)s->kind < KZ_CLI_BENCH_KIND_COUNT)
		rc = kz_cli__account(b, &ph->kinds[s->kind], s, result, status,
				     connects, lat, bad_body);
	if (rc != KZ_CLI_OK && !b->fatal) {
		b->fatal = KZ_CLI_ENOMEM;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "out of memory for latencies");
	}
	kz_cli__failover_note(b, s, ok2xx && !bad_body, end);
	if (result != KZ_BH_OK) {
		s->not_before_ns = end + KZ_CLI__BACKOFF_NS;
		if (kz_bh_err_local(result) && !b->fatal) {
			b->fatal = result == KZ_BH_E_NOMEM ? KZ_CLI_ENOMEM
							   : KZ_CLI_ECONFIG;
			kz_cli__bfmt(b->errmsg, sizeof(b->errmsg), "%s: %s",
				     b->eps[s->ep].url, s->errmsg);
		}
		return;
	}
	if (ok2xx && s->req == KZ_CLI__REQ_VICTIM_POST && ph->keep_ids)
		kz_cli__keep_id(b, s);
	s->why[0] = '\0';
	if (ok2xx && !bad_body && s->req == KZ_CLI__REQ_ETCD_PUT &&
	    ph->keep_ids)
		kz_cli__pool_add(b, s->key, strlen(s->key));
	/* Each victim's photo is sent once: photo_ids has room for all. */
	if (ok2xx && s->req == KZ_CLI__REQ_PHOTO_PUT &&
	    b->n_photo_ids < b->n_ids)
		b->photo_ids[b->n_photo_ids++] = s->victim;
}

/* ---- search, payout and day: requests and answers ------------------------------- */

/* search: a piece of slot s's answer, kept whole up to KZ_CLI__WHOLE_MAX
 * (past that, or out of memory, it is marked cut and no longer kept). */
static void kz_cli__keep_whole(kz_cli__slot *s, const char *data, size_t n)
{
	size_t cap;
	char *w;
	if (s->whole_cut || n == 0)
		return;
	if (s->whole_len + n > KZ_CLI__WHOLE_MAX) {
		s->whole_cut = 1;
		return;
	}
	if (s->whole_len + n + 1 > s->whole_cap) {
		cap = s->whole_cap ? s->whole_cap : 16384;
		while (cap < s->whole_len + n + 1)
			cap *= 2;
		w = realloc(s->whole, cap);
		if (w == NULL) {
			s->whole_cut = 1;
			return;
		}
		s->whole = w;
		s->whole_cap = cap;
	}
	memcpy(s->whole + s->whole_len, data, n);
	s->whole_len += n;
	s->whole[s->whole_len] = '\0';
}

/* String field key of v into dst (cap bytes); "" when absent or too
 * long. */
static void kz_cli__copy_field(char *dst, size_t cap, const json_t *v,
			       const char *key)
{
	const char *str = json_string_value(json_object_get(v, key));
	size_t n = str != NULL ? strlen(str) : 0;
	if (n >= cap)
		n = 0;
	if (n > 0)
		memcpy(dst, str, n);
	dst[n] = '\0';
}

/* search, payout, day: keeps the id of the record a 201 created, as
 * kz_cli__keep_id does, with the person's name, kana, household and
 * damage (what searches and payouts are made of) at the same index. */
static void kz_cli__keep_person(kz_cli__bench *b, const kz_cli__slot *s)
{
	json_t *v = json_loadb(s->resp, s->resp_len, 0, NULL);
	const char *id = json_string_value(json_object_get(v, "id"));
	size_t len = id != NULL ? strlen(id) : 0, i, before = b->n_ids;
	kz_cli__person *p;

	/* The id goes into a URL path unencoded: take only plain ones. */
	for (i = 0; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'z') ||
		      (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-' ||
		      id[i] == '_'))
			len = 0;
	if (len == 0 || len >= KZ_CLI__ID_MAX) {
		json_decref(v);
		return;
	}
	/* Room for the person first, so that an id is never kept without
	 * one. */
	if (b->n_ids == b->cap_people) {
		size_t cap = b->cap_people ? b->cap_people * 2 : 1024;
		p = realloc(b->people, cap * sizeof(*p));
		if (p == NULL) {
			json_decref(v);
			return;
		}
		b->people = p;
		b->cap_people = cap;
	}
	kz_cli__pool_add(b, id, len);
	if (b->n_ids > before) {
		p = &b->people[before];
		kz_cli__copy_field(p->name, sizeof(p->name), v, "name");
		kz_cli__copy_field(p->kana, sizeof(p->kana), v, "name_kana");
		kz_cli__copy_field(p->household, sizeof(p->household), v,
				   "household_id");
		kz_cli__copy_field(p->damage, sizeof(p->damage), v, "damage");
	}
	json_decref(v);
}

/* search: the URL of a name query about a random kept person (the query
 * kind drawn by kz_cli_bench_query_pick; romaji that cannot be made falls
 * back to the kana, and a person whose names have no family/given shape
 * is passed over for another). Returns 0, or -1 when 8 people in a row
 * could not be searched for. */
static int kz_cli__search_url(kz_cli__bench *b, kz_cli__slot *s)
{
	char q[2 * KZ_CLI__NAME_MAX + 8], enc[KZ_CLI__URL_MAX];
	kz_cli_bench_query query = kz_cli_bench_query_pick(&b->rng);
	int tries, n;

	for (tries = 0; tries < 8; tries++) {
		size_t k = kz_cli__brand_below(&b->rng, b->n_ids);
		const kz_cli__person *p = &b->people[k];
		if (kz_cli_bench_search_query(query, p->name, p->kana, q,
					      sizeof(q)) < 0) {
			query = KZ_CLI_BENCH_Q_KANA_FULL;
			if (kz_cli_bench_search_query(query, p->name, p->kana,
						      q, sizeof(q)) < 0)
				continue;
		}
		if (kz_cli__url_encode(q, enc, sizeof(enc)) != 0)
			continue;
		n = snprintf(s->url, sizeof(s->url),
			     "%s/v1/victims?q=%s&consistency=%s",
			     b->eps[s->ep].url, enc,
			     b->a->stale ? "stale" : "linearizable");
		if (n < 0 || (size_t)n >= sizeof(s->url))
			continue;
		s->person = k;
		s->query = (int)query;
		s->whole_len = 0;
		s->whole_cut = 0;
		if (b->search_res != NULL)
			b->search_res->by_query[query]++;
		return 0;
	}
	return -1;
}

/* payout, day: the next planned payout into slot s (body, headers with
 * its Idempotency-Key, URL). The account is the household's: derived
 * from the index of the member it was planned for, so a household's two
 * payouts go to one account. */
static int kz_cli__payout_request(kz_cli__bench *b, kz_cli__slot *s,
				  size_t *len)
{
	const kz_cli__plan *pl = &b->plan[b->next_plan];
	const kz_cli__person *p = &b->people[pl->person];
	const char *item = kz_cli__items[pl->item];
	char key[160];
	int rc, n;

	if (kz_cli_bench_payout_key(b->hh_tag, p->household, item, key,
				    sizeof(key)) < 0)
		return KZ_CLI_EINVAL;
	rc = kz_cli_bench_payout_body(p->household, item, p->kana,
				      (uint64_t)pl->person, &s->body, len);
	if (rc != KZ_CLI_OK)
		return rc;
	n = snprintf(s->pay_hdrs, sizeof(s->pay_hdrs),
		     "%sIdempotency-Key: %s\r\n", b->hdrs[KZ_CLI__REQ_PAYOUT],
		     key);
	if (n < 0 || (size_t)n >= sizeof(s->pay_hdrs))
		return KZ_CLI_EINVAL;
	n = snprintf(s->url, sizeof(s->url), "%s/v1/payouts",
		     b->eps[s->ep].url);
	if (n < 0 || (size_t)n >= sizeof(s->url))
		return KZ_CLI_EINVAL;
	s->plan = b->next_plan++;
	if (b->payout_res != NULL)
		b->payout_res->sent++;
	return KZ_CLI_OK;
}

/* Every planned payout has been sent: payouts leave the mix (day), and
 * the summary will say when. */
static void kz_cli__ran_out(kz_cli__bench *b)
{
	kz_cli_bench_payouts *pr = b->payout_res;
	b->mix[KZ_CLI_BENCH_KIND_PAYOUT] = 0;
	if (pr == NULL || pr->ran_out)
		return;
	pr->ran_out = 1;
	pr->ran_out_s = (double)(kz_cli__bnow_ns() - b->ph->start_ns) / 1e9;
	if (!b->a->quiet)
		fprintf(stderr,
			"kizuna-bench: payout: all %zu planned payouts sent at "
			"%.2f s; %s\n",
			b->n_plan, pr->ran_out_s,
			b->a->workload == KZ_CLI_BENCH_PAYOUT
			    ? "the run ends once they are answered (raise "
			      "--preload for a longer run)"
			    : "the mix goes on without payouts");
}

/* search, payout, day: prepares slot s's next request of the measured
 * phase: draws its kind (day: by b->mix; an identity check whose
 * challenge was answered goes on with its verification), makes its URL
 * and body and picks the handle of the identity it needs (the registrar
 * registers, the reader reads, searches, writes notes and checks
 * identities, the payout role pays). Returns 1 with *req, *op (what it
 * counts as), *h and *len set; 0 when there is nothing left to send
 * (payout: every planned payout was sent; the phase stops at what it has
 * sent); -1 with b->fatal set. */
static int kz_cli__kind_request(kz_cli__bench *b, kz_cli__slot *s,
				enum kz_cli__req *req, int *op, kz_bh_conn **h,
				size_t *len)
{
	const kz_cli_bench_args *a = b->a;
	kz_cli__phase *ph = b->ph;
	const char *ep = b->eps[s->ep].url;
	int kind, ident = KZ_CLI_BENCH_OP_READ, n = 0, rc = KZ_CLI_OK;
	size_t k;

	free(s->body);
	s->body = NULL;
	*len = 0;
	s->why[0] = '\0';
	if (s->id_verify)
		kind = KZ_CLI_BENCH_KIND_IDENTITY;
	else if (a->workload == KZ_CLI_BENCH_SEARCH)
		kind = KZ_CLI_BENCH_KIND_SEARCH;
	else if (a->workload == KZ_CLI_BENCH_PAYOUT)
		kind = KZ_CLI_BENCH_KIND_PAYOUT;
	else
		kind = kz_cli_bench_mix_pick(b->mix, &b->rng);
	if (kind == KZ_CLI_BENCH_KIND_PAYOUT && b->next_plan >= b->n_plan) {
		kz_cli__ran_out(b);
		kind = a->workload == KZ_CLI_BENCH_DAY
			   ? kz_cli_bench_mix_pick(b->mix, &b->rng)
			   : KZ_CLI_BENCH_KIND_COUNT;
	}
	if (kind == KZ_CLI_BENCH_KIND_COUNT) {
		/* Only payouts were asked for, and none is left: the phase
		 * ends with what it sent (at least one: the run does not
		 * start with an empty plan). */
		ph->limit = ph->sent;
		return 0;
	}
	switch (kind) {
	case KZ_CLI_BENCH_KIND_READ:
		k = kz_cli__brand_below(&b->rng, b->n_ids);
		n = snprintf(s->url, sizeof(s->url),
			     "%s/v1/victims/%s?consistency=%s", ep, b->ids[k],
			     a->stale ? "stale" : "linearizable");
		*req = KZ_CLI__REQ_VICTIM_GET;
		break;
	case KZ_CLI_BENCH_KIND_SEARCH:
		if (kz_cli__search_url(b, s) != 0) {
			b->fatal = KZ_CLI_EINVAL;
			kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
				     "no kept person has a name to search "
				     "for (family name, space, given name)");
			return -1;
		}
		*req = KZ_CLI__REQ_SEARCH;
		break;
	case KZ_CLI_BENCH_KIND_WRITE:
		rc = kz_cli__next_body(b, &s->body, len);
		n = snprintf(s->url, sizeof(s->url), "%s/v1/victims", ep);
		*req = KZ_CLI__REQ_VICTIM_POST;
		ident = KZ_CLI_BENCH_OP_WRITE;
		break;
	case KZ_CLI_BENCH_KIND_NOTE:
		k = kz_cli__brand_below(&b->rng, b->n_ids);
		rc = kz_cli_bench_note_body(&b->rng, &s->body, len);
		n = snprintf(s->url, sizeof(s->url), "%s/v1/victims/%s/notes",
			     ep, b->ids[k]);
		*req = KZ_CLI__REQ_NOTE;
		break;
	case KZ_CLI_BENCH_KIND_PAYOUT:
		rc = kz_cli__payout_request(b, s, len);
		*req = KZ_CLI__REQ_PAYOUT;
		ident = KZ_CLI__ID_PAYOUT;
		break;
	default: /* KZ_CLI_BENCH_KIND_IDENTITY */
		n = kz_cli__identity_request(b, s, len);
		if (n < 0)
			return -1; /* b->fatal says why */
		*req = (enum kz_cli__req)n;
		n = 0;
	}
	if (rc != KZ_CLI_OK || n < 0 || (size_t)n >= sizeof(s->url)) {
		b->fatal = rc != KZ_CLI_OK ? rc : KZ_CLI_EINVAL;
		kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
			     "cannot make a %s request: %s",
			     kz_cli_bench_kind_name((kz_cli_bench_kind)kind),
			     rc != KZ_CLI_OK ? kz_cli_strerror(rc)
					     : "endpoint URL too long");
		return -1;
	}
	*op = kind == KZ_CLI_BENCH_KIND_WRITE || kind == KZ_CLI_BENCH_KIND_NOTE ||
		      kind == KZ_CLI_BENCH_KIND_PAYOUT
		  ? KZ_CLI_BENCH_OP_WRITE
		  : KZ_CLI_BENCH_OP_READ;
	*h = kz_cli__handle(b, s, ident);
	if (*h == NULL)
		return -1;
	s->kind = kind;
	return 1;
}

/* search: whether the 200 answer of slot s is not what was asked for (and
 * then why, in s->why, naming no person): not a page with an "items"
 * array, or a complete page (no next_cursor, not truncated) of a full-name
 * query without the person searched for. A page that goes on is not
 * judged (the person may be on a later one); with --consistency stale a
 * miss is counted, not judged (the node may not have the record yet). */
static int kz_cli__search_bad(kz_cli__bench *b, kz_cli__slot *s)
{
	kz_cli_bench_search *sr = b->search_res;
	json_t *v, *items, *it;
	size_t i;
	int complete, found = 0, bad = 0;

	if (s->whole_cut) {
		kz_cli__bfmt(s->why, sizeof(s->why),
			     "a search answer over %u bytes, not judged",
			     KZ_CLI__WHOLE_MAX);
		return 1;
	}
	v = json_loadb(s->whole != NULL ? s->whole : "", s->whole_len, 0,
		       NULL);
	items = json_object_get(v, "items");
	if (!json_is_array(items)) {
		kz_cli__bfmt(s->why, sizeof(s->why),
			     "%s search: not a page of results (no items "
			     "array in %zu bytes)",
			     kz_cli_bench_query_name(
				 (kz_cli_bench_query)s->query),
			     s->whole_len);
		json_decref(v);
		return 1;
	}
	if (!kz_cli_bench_query_full((kz_cli_bench_query)s->query) ||
	    sr == NULL) {
		json_decref(v);
		return 0;
	}
	json_array_foreach(items, i, it)
	{
		const char *id = json_string_value(json_object_get(it, "id"));
		if (id != NULL && strcmp(id, b->ids[s->person]) == 0)
			found = 1;
	}
	complete = json_is_null(json_object_get(v, "next_cursor")) ||
		   json_object_get(v, "next_cursor") == NULL;
	complete = complete && !json_is_true(json_object_get(v, "truncated"));
	if (found) {
		sr->checked++;
		sr->found++;
	} else if (!complete) {
		sr->unchecked++;
	} else if (b->a->stale) {
		sr->checked++;
		sr->stale_misses++;
	} else {
		sr->checked++;
		bad = 1;
		kz_cli__bfmt(s->why, sizeof(s->why),
			     "%s search: a complete page of %zu results "
			     "without the person searched for (%s)",
			     kz_cli_bench_query_name(
				 (kz_cli_bench_query)s->query),
			     json_array_size(items), b->ids[s->person]);
	}
	json_decref(v);
	return bad;
}

/* payout: counts slot s's answer: a 2xx with the payout's id and amount
 * is paid (a 2xx without them is a bad body), a 409 already paid, a 422
 * refused; the first 409 or 422 is described (the error's code and
 * message: rules, never the account). */
static int kz_cli__payout_answer(kz_cli__bench *b, kz_cli__slot *s,
				 long status, int ok2xx)
{
	kz_cli_bench_payouts *pr = b->payout_res;
	json_t *v;
	int bad = 0;

	if (pr == NULL)
		return 0;
	if (ok2xx) {
		v = json_loadb(s->resp, s->resp_len, 0, NULL);
		if (json_is_string(json_object_get(v, "id")) &&
		    json_is_integer(json_object_get(v, "amount_yen"))) {
			pr->paid++;
			pr->yen += (uint64_t)json_integer_value(
			    json_object_get(v, "amount_yen"));
		} else {
			bad = 1;
			kz_cli__bfmt(s->why, sizeof(s->why),
				     "a payout answered without its id and "
				     "amount_yen");
		}
		json_decref(v);
		return bad;
	}
	if (status != 409 && status != 422)
		return 0;
	if (status == 409)
		pr->already_paid++;
	else
		pr->refused++;
	if (pr->first_refusal[0] == '\0') {
		kz_cli_response r;
		memset(&r, 0, sizeof(r));
		r.status = status;
		r.body = s->resp;
		r.body_len = s->resp_len;
		s->resp[s->resp_len] = '\0';
		kz_cli_error_describe(&r, pr->first_refusal,
				      sizeof(pr->first_refusal));
	}
	return 0;
}

/* What the answer of slot s's request (search, payout, day; the transport
 * delivered it) says beyond its status. Returns 1 for a bad body (s->why
 * says why). */
static int kz_cli__kind_answer(kz_cli__bench *b, kz_cli__slot *s, long status,
			       int ok2xx)
{
	if (s->req == KZ_CLI__REQ_SEARCH)
		return ok2xx && kz_cli__search_bad(b, s);
	if (s->req == KZ_CLI__REQ_PAYOUT)
		return kz_cli__payout_answer(b, s, status, ok2xx);
	return 0;
}

/* Orders kept people by household id. */
static int kz_cli__cmp_household(const void *x, const void *y)
{
	const kz_cli__person *a = *(const kz_cli__person *const *)x;
	const kz_cli__person *b = *(const kz_cli__person *const *)y;
	int c = strcmp(a->household, b->household);
	/* Ties by place: the first member kept stands for the household. */
	return c != 0 ? c : (a > b) - (a < b);
}

/* payout, day: the payouts of the households the preload registered, each
 * (household, item) the program pays once: every household's basic
 * support, then every household's repair support, in household order
 * (so a household's two payouts are far apart, as in life). Returns
 * KZ_CLI_OK or KZ_CLI_ENOMEM. */
static int kz_cli__make_plan(kz_cli__bench *b)
{
	const kz_cli__person **hh;
	size_t i, m = 0, nh = 0;
	int item;

	b->n_plan = b->next_plan = 0;
	if (b->n_ids == 0)
		return KZ_CLI_OK;
	hh = malloc(b->n_ids * sizeof(*hh));
	if (hh == NULL)
		return KZ_CLI_ENOMEM;
	for (i = 0; i < b->n_ids; i++)
		if (b->people[i].household[0] != '\0' &&
		    kz_cli__pays(b, b->people[i].damage))
			hh[m++] = &b->people[i];
	qsort(hh, m, sizeof(*hh), kz_cli__cmp_household);
	for (i = 0; i < m; i++)
		if (nh == 0 || strcmp(hh[nh - 1]->household, hh[i]->household) !=
				   0)
			hh[nh++] = hh[i];
	free(b->plan);
	b->plan = malloc((nh > 0 ? nh : 1) * KZ_CLI__ITEMS * sizeof(*b->plan));
	if (b->plan == NULL) {
		free(hh);
		return KZ_CLI_ENOMEM;
	}
	for (item = 0; item < KZ_CLI__ITEMS; item++)
		for (i = 0; i < nh; i++)
			if (b->payable[kz_cli__damage_index(hh[i]->damage)]
				      [item]) {
				b->plan[b->n_plan].person =
				    (size_t)(hh[i] - b->people);
				b->plan[b->n_plan].item = item;
				b->n_plan++;
			}
	if (b->payout_res != NULL) {
		b->payout_res->households = nh;
		b->payout_res->planned = b->n_plan;
	}
	free(hh);
	return KZ_CLI_OK;
}

/* Which items the program's table (program: the answer of GET
 * /v1/programs/seikatsu_saiken) pays which damage level: an amount above
 * 0 in table.amounts_yen. Returns how many (damage, item) it pays. */
static int kz_cli__payable_from(const json_t *program,
				unsigned char payable[KZ_CLI__DAMAGES]
						     [KZ_CLI__ITEMS])
{
	json_t *amounts = json_object_get(json_object_get(program, "table"),
					  "amounts_yen");
	size_t d;
	int item, n = 0;
	for (d = 0; d < KZ_CLI__DAMAGES; d++)
		for (item = 0; item < KZ_CLI__ITEMS; item++) {
			json_t *y = json_object_get(
			    json_object_get(amounts, kz_cli__damages[d]),
			    kz_cli__items[item]);
			payable[d][item] =
			    json_is_integer(y) && json_integer_value(y) > 0;
			n += payable[d][item];
		}
	return n;
}

/* One call with libkizuna as the identity cert/key: its status in
 * *status and its JSON body in *out (NULL when none; the caller
 * json_decrefs). Returns KZ_CLI_OK when a node answered. */
static int kz_cli__sync_call(const kz_cli__bench *b, const char *cert,
			     const char *key, const char *method,
			     const char *path, const char *body, long *status,
			     json_t **out, char *err, size_t errlen)
{
	kz_cli_opts o;
	kz_cli *cli;
	kz_cli_response r;
	int rc;

	*out = NULL;
	*status = 0;
	memset(&o, 0, sizeof(o));
	o.endpoints = b->a->endpoints;
	o.cacert = b->a->cacert;
	o.cert = cert;
	o.key = key;
	o.deadline_ms = b->a->timeout_ms;
	o.request_timeout_ms = b->a->timeout_ms;
	rc = kz_cli_open(&o, &cli, err, errlen);
	if (rc != KZ_CLI_OK)
		return rc;
	rc = kz_cli_request(cli, method, path, NULL, body,
			    body != NULL ? strlen(body) : 0, &r);
	if (rc == KZ_CLI_OK) {
		*status = r.status;
		*out = json_loadb(r.body, r.body_len, 0, NULL);
		if (r.status < 200 || r.status >= 300)
			kz_cli_error_describe(&r, err, errlen);
	} else {
		kz_cli__bfmt(err, errlen, "%s", kz_cli_errmsg(cli));
	}
	kz_cli_response_free(&r);
	kz_cli_close(cli);
	return rc;
}

/* Stale reads after a preload: a follower may not have applied the last
 * records yet, and a stale read of one answers 404, which the run would
 * count as an error. One linearizable read of the last record kept, on
 * each endpoint, returns once that node has applied everything committed
 * before it, the whole preload included. A node that does not answer is
 * only reported: the run then says what it sees. */
static void kz_cli__settle(kz_cli__bench *b, const kz_cli_bench_result *res)
{
	const kz_cli_bench_args *a = b->a;
	char path[KZ_CLI__ID_MAX + 32], err[512];
	size_t i;

	if (b->n_ids == 0)
		return;
	snprintf(path, sizeof(path), "/v1/victims/%s", b->ids[b->n_ids - 1]);
	for (i = 0; i < res->n_endpoints; i++) {
		kz_cli_opts o;
		kz_cli *cli;
		kz_cli_response r;
		int rc;

		memset(&o, 0, sizeof(o));
		o.endpoints = res->ep[i].url;
		o.cacert = a->cacert;
		o.cert = a->read_cert;
		o.key = a->read_key;
		o.purpose = "kizuna-bench";
		o.deadline_ms = a->timeout_ms;
		o.request_timeout_ms = a->timeout_ms;
		if (kz_cli_open(&o, &cli, err, sizeof(err)) != KZ_CLI_OK) {
			fprintf(stderr, "kizuna-bench: settle %s: %s\n",
				res->ep[i].url, err);
			continue;
		}
		rc = kz_cli_request(cli, "GET", path, NULL, NULL, 0, &r);
		if (rc != KZ_CLI_OK)
			snprintf(err, sizeof(err), "%s", kz_cli_errmsg(cli));
		else if (r.status != 200)
			snprintf(err, sizeof(err), "HTTP %ld", r.status);
		if (rc != KZ_CLI_OK || r.status != 200)
			fprintf(stderr,
				"kizuna-bench: settle %s: the last preloaded "
				"record did not read back (%s); stale reads "
				"there may miss records\n",
				res->ep[i].url, err);
		kz_cli_response_free(&r);
		kz_cli_close(cli);
	}
}

/* payout, day: reads program seikatsu_saiken (payout certificate) and,
 * when it has no disaster date, gives it one 30 days ago (operator
 * certificate; *set then 1) so that both deadlines are ahead; a date the
 * operator set is left as it is, and so is a closed program (refused:
 * every payout would be). Fills b->payable from the table. */
static int kz_cli__program_setup(kz_cli__bench *b, int *set, char *errmsg,
				 size_t errlen)
{
	static const char path[] = "/v1/programs/seikatsu_saiken";
	const kz_cli_bench_args *a = b->a;
	char err[300] = "", body[64];
	json_t *prog = NULL;
	long status;
	int rc, round;

	*set = 0;
	for (round = 0; round < 2; round++) {
		json_decref(prog);
		rc = kz_cli__sync_call(b, a->payout_cert, a->payout_key, "GET",
				       path, NULL, &status, &prog, err,
				       sizeof(err));
		if (rc != KZ_CLI_OK || status != 200) {
			kz_cli__bfmt(errmsg, errlen,
				     "payout: cannot read program "
				     "seikatsu_saiken: %s",
				     err[0] ? err : kz_cli_strerror(rc));
			json_decref(prog);
			return rc != KZ_CLI_OK ? rc : KZ_CLI_EUNREACHABLE;
		}
		if (json_is_true(json_object_get(prog, "closed"))) {
			kz_cli__bfmt(errmsg, errlen,
				     "payout: program seikatsu_saiken is "
				     "closed (every payout would be refused; "
				     "the bench does not reopen it)");
			json_decref(prog);
			return KZ_CLI_ECONFIG;
		}
		if (json_is_string(json_object_get(prog, "disaster_date")) ||
		    round == 1)
			break;
		{
			time_t t = time(NULL) - 30 * 86400;
			struct tm tm;
			json_t *ans;
			gmtime_r(&t, &tm);
			strftime(body, sizeof(body),
				 "{\"disaster_date\":\"%Y-%m-%d\"}", &tm);
			rc = kz_cli__sync_call(b, a->operator_cert,
					       a->operator_key, "PUT", path,
					       body, &status, &ans, err,
					       sizeof(err));
			json_decref(ans);
			if (rc != KZ_CLI_OK || status < 200 || status >= 300) {
				kz_cli__bfmt(errmsg, errlen,
					     "payout: program seikatsu_saiken "
					     "has no disaster date and the "
					     "bench could not set one: %s",
					     err[0] ? err
						    : kz_cli_strerror(rc));
				json_decref(prog);
				return rc != KZ_CLI_OK ? rc
						       : KZ_CLI_EUNREACHABLE;
			}
			*set = 1;
			if (!a->quiet)
				fprintf(stderr,
					"kizuna-bench: payout: program "
					"seikatsu_saiken had no disaster "
					"date; set %.10s\n",
					body + 18);
		}
	}
	rc = kz_cli__payable_from(prog, b->payable) > 0 ? KZ_CLI_OK
							 : KZ_CLI_ECONFIG;
	if (rc != KZ_CLI_OK)
		kz_cli__bfmt(errmsg, errlen,
			     "payout: the table of program seikatsu_saiken "
			     "pays neither basic nor repair support to any "
			     "damage level");
	json_decref(prog);
	return rc;
}

/* search, payout, day, before the preload: people are kept with their
 * ids, tallies go to res; payout and day (with payouts in the mix): a
 * run tag for household ids, the payout certificate checked and the
 * program read (kz_cli__program_setup). */
static int kz_cli__kinds_setup(kz_cli__bench *b, kz_cli_bench_result *res,
			       char *errmsg, size_t errlen)
{
	const kz_cli_bench_args *a = b->a;
	int payout = a->workload == KZ_CLI_BENCH_PAYOUT, rc;
	struct timespec ts;
	uint64_t tag;

	if (a->workload != KZ_CLI_BENCH_SEARCH && !payout &&
	    a->workload != KZ_CLI_BENCH_DAY)
		return KZ_CLI_OK;
	b->keep_people = 1;
	b->search_res = &res->search;
	b->payout_res = &res->payouts;
	memcpy(b->mix, a->mix, sizeof(b->mix));
	if (a->workload == KZ_CLI_BENCH_SEARCH)
		return KZ_CLI_OK;
	/* Time and pid: two runs, even started together, get two tags. */
	clock_gettime(CLOCK_REALTIME, &ts);
	tag = (uint64_t)ts.tv_sec * KZ_CLI__NS_PER_S + (uint64_t)ts.tv_nsec;
	tag ^= (uint64_t)getpid() << 40;
	snprintf(b->hh_tag, sizeof(b->hh_tag), "b%08x",
		 (unsigned)(kz_cli__brand(&tag) >> 32));
	if (!payout && a->mix[KZ_CLI_BENCH_KIND_PAYOUT] == 0)
		return KZ_CLI_OK;
	if ((rc = kz_cli__check_file("payout certificate", a->payout_cert,
				     errmsg, errlen)) != KZ_CLI_OK ||
	    (rc = kz_cli__check_file("payout key", a->payout_key, errmsg,
				     errlen)) != KZ_CLI_OK)
		return rc;
	b->eligible_only = payout;
	return kz_cli__program_setup(b, &res->payouts.program_set, errmsg,
				     errlen);
}

/* payout, day, after the preload: the plan of payouts. payout without one
 * is an error; day goes on without payouts (and says so). */
static int kz_cli__kinds_plan(kz_cli__bench *b, char *errmsg, size_t errlen)
{
	const kz_cli_bench_args *a = b->a;
	int payout = a->workload == KZ_CLI_BENCH_PAYOUT, rc, k;
	unsigned left = 0;

	if (!payout && (a->workload != KZ_CLI_BENCH_DAY ||
			a->mix[KZ_CLI_BENCH_KIND_PAYOUT] == 0))
		return KZ_CLI_OK;
	rc = kz_cli__make_plan(b);
	if (rc != KZ_CLI_OK) {
		kz_cli__bfmt(errmsg, errlen, "out of memory");
		return rc;
	}
	if (b->n_plan > 0)
		return KZ_CLI_OK;
	b->mix[KZ_CLI_BENCH_KIND_PAYOUT] = 0;
	b->payout_res->ran_out = 1;
	for (k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++)
		left += b->mix[k];
	if (payout || left == 0) {
		kz_cli__bfmt(errmsg, errlen,
			     "payout: the preload registered no household "
			     "the program pays for (%zu records kept)",
			     b->n_ids);
		return KZ_CLI_EUNREACHABLE;
	}
	if (!a->quiet)
		fprintf(stderr, "kizuna-bench: payout: the preload registered "
				"no household the program pays for; the mix "
				"goes on without payouts\n");
	return KZ_CLI_OK;
}

/* One progress line: ok so far, ok per second since the last line (open
 * loop: and the requests due that found no free connection yet). */
static void kz_cli__progress(const kz_cli__bench *b, uint64_t now,
			     uint64_t *last_ns, uint64_t *last_ok)
{
	const kz_cli__phase *ph = b->ph;
	uint64_t ok = 0, errs = 0;
	int i;
	double dt = (double)(now - *last_ns) / 1e9;
	/* preload counts both kinds in one block: do not add it twice */
	for (i = 0; i < (ph->st[0] == ph->st[1] ? 1 : 2); i++) {
		ok += ph->st[i]->ok;
		errs += ph->st[i]->http_errors + ph->st[i]->transport_errors +
			ph->st[i]->bad_bodies;
	}
	if (!b->a->quiet) {
		fprintf(stderr,
			"kizuna-bench: %-7s %5.0f s  %10llu ok  %8.0f ops/s  "
			"%llu errors",
			ph->name, (double)(now - ph->start_ns) / 1e9,
			(unsigned long long)ok,
			dt > 0 ? (double)(ok - *last_ok) / dt : 0.0,
			(unsigned long long)errs);
		/* Open loop: a queue that grows is a schedule not kept
		 * (those due since the last turn are not in it yet). */
		if (ph->rate > 0.0 && !ph->ol_closed)
			fprintf(stderr, "  %llu waiting for a connection",
				(unsigned long long)(ph->ol_waited > ph->ol_next
							 ? ph->ol_waited -
							       ph->ol_next
							 : 0));
		fputc('\n', stderr);
	}
	*last_ns = now;
	*last_ok = ok;
}

/* ---- failover ----------------------------------------------------------------------- */

/* Starts /bin/sh -c cmd, stdin from /dev/null and stdout onto our stderr
 * (stdout is the summary's). Returns 0 with *pid set, or an errno. */
static int kz_cli__spawn_sh(const char *cmd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)cmd, NULL};
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc != 0)
		return rc;
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, 2, 1);
	if (rc == 0)
		rc = posix_spawn(pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* Whether child pid has ended (block: waits until it has). Its exit status
 * goes to *status: 128+N when signal N killed it, -1 when unknown. */
static int kz_cli__reap(pid_t pid, int block, int *status)
{
	int ws = 0;
	pid_t r;
	do
		r = waitpid(pid, &ws, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (r < 0)
		*status = -1; /* not ours to wait for any more */
	else if (WIFEXITED(ws))
		*status = WEXITSTATUS(ws);
	else if (WIFSIGNALED(ws))
		*status = 128 + WTERMSIG(ws);
	else
		*status = -1;
	return 1;
}

/* Once per turn of the loop of a failover phase: starts the command when
 * its time has come, notices when it has ended. Returns how long the loop
 * may wait before looking again (at most wait_ns): until the start, or
 * KZ_CLI__FAILOVER_POLL_NS while the command runs. Sets b->fatal when the
 * command cannot be started. */
static uint64_t kz_cli__failover_tick(kz_cli__bench *b, uint64_t now,
				      uint64_t wait_ns)
{
	uint64_t at = b->ph->start_ns + (uint64_t)(b->a->failover_at_s * 1e9);
	int rc;

	if (b->fo_start_ns == 0) {
		if (now < at)
			return at - now < wait_ns ? at - now : wait_ns;
		rc = kz_cli__spawn_sh(b->a->failover_cmd, &b->fo_pid);
		if (rc != 0) {
			b->fo_pid = 0;
			b->fatal = KZ_CLI_ECONFIG;
			kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
				     "cannot start the failover command: %s",
				     strerror(rc));
			return wait_ns;
		}
		b->fo_start_ns = now;
		if (!b->a->quiet)
			fprintf(stderr,
				"kizuna-bench: failover: command started at "
				"%.2f s (pid %ld)\n",
				(double)(now - b->ph->start_ns) / 1e9,
				(long)b->fo_pid);
	}
	if (b->fo_pid == 0)
		return wait_ns;
	if (!kz_cli__reap(b->fo_pid, 0, &b->fo_status))
		return KZ_CLI__FAILOVER_POLL_NS < wait_ns ? KZ_CLI__FAILOVER_POLL_NS
							  : wait_ns;
	b->fo_pid = 0;
	b->fo_kill_ns = kz_cli__bnow_ns();
	if (!b->a->quiet)
		fprintf(stderr,
			"kizuna-bench: failover: command exited with %d at "
			"%.3f s; timing the first write sent from now on\n",
			b->fo_status,
			(double)(b->fo_kill_ns - b->ph->start_ns) / 1e9);
	return wait_ns;
}

/* Failover probes, once per turn of the loop between the kill and the
 * first write that succeeds after it: the N clients may all be waiting on
 * requests sent before the kill (a write the dead leader took may hang
 * until the server gives it up), and then none of them sends anything
 * new. So a probe write is sent every KZ_CLI__PROBE_INTERVAL_NS on a probe
 * slot of its own (round-robin over the endpoints, given up after
 * KZ_CLI__PROBE_TIMEOUT_MS): the first ok write sent after the kill, a
 * probe's or a client's, ends the failover. Returns 1 when a probe was
 * started; lowers *wait_ns to the next probe's time. */
static int kz_cli__probe(kz_cli__bench *b, uint64_t now, uint64_t *wait_ns)
{
	size_t i;
	if (b->probes == NULL || b->fo_kill_ns == 0 || b->fo_recovered_ns != 0)
		return 0;
	if (now < b->fo_next_probe_ns) {
		if (b->fo_next_probe_ns - now < *wait_ns)
			*wait_ns = b->fo_next_probe_ns - now;
		return 0;
	}
	if (*wait_ns > KZ_CLI__PROBE_INTERVAL_NS)
		*wait_ns = KZ_CLI__PROBE_INTERVAL_NS;
	for (i = 0; i < KZ_CLI__PROBES; i++) {
		kz_cli__slot *s =
		    &b->probes[(b->fo_probes + i) % KZ_CLI__PROBES];
		if (s->busy)
			continue;
		kz_cli__start(b, s);
		if (!s->busy)
			return 0; /* b->fatal says why */
		b->fo_probes++;
		b->fo_next_probe_ns = now + KZ_CLI__PROBE_INTERVAL_NS;
		return 1;
	}
	return 0;
}

/* After a failover phase: waits for a command still running (the
 * recovery can then not be measured) and fills *fo. */
static void kz_cli__failover_end(kz_cli__bench *b, const kz_cli__phase *ph,
				 kz_cli_bench_failover *fo)
{
	memset(fo, 0, sizeof(*fo));
	fo->asked = 1;
	if (b->fo_pid != 0) {
		if (!b->a->quiet)
			fprintf(stderr,
				"kizuna-bench: failover: the run ended before "
				"the command did; waiting for it\n");
		kz_cli__reap(b->fo_pid, 1, &b->fo_status);
		b->fo_pid = 0;
	}
	fo->ran = b->fo_start_ns != 0;
	fo->exited = b->fo_kill_ns != 0;
	fo->status = b->fo_status;
	fo->started_s = fo->ran ? (double)(b->fo_start_ns - ph->start_ns) / 1e9
				: 0.0;
	fo->killed_s = fo->exited ? (double)(b->fo_kill_ns - ph->start_ns) / 1e9
				  : 0.0;
	fo->recovered = b->fo_recovered_ns != 0;
	if (fo->recovered) {
		fo->recovered_s = (double)(b->fo_recovered_ns - ph->start_ns) / 1e9;
		fo->failover_s =
		    (double)(b->fo_recovered_ns - b->fo_kill_ns) / 1e9;
	}
	fo->errors_after = b->fo_errors_after;
	fo->probes = b->fo_probes;
}

/* ---- the open loop ------------------------------------------------------------------- */

/* How many requests the open-loop phase's schedule holds: --requests, or
 * those due before the deadline. */
static uint64_t kz_cli__ol_scheduled(const kz_cli__phase *ph)
{
	if (ph->limit > 0)
		return ph->limit;
	if (ph->deadline_ns <= ph->start_ns)
		return 0;
	return kz_cli_bench_sched_due(ph->rate,
				      ph->deadline_ns - ph->start_ns - 1);
}

/* How many requests of the open-loop phase's schedule are due at now:
 * all of them up to the end (--requests, or those due before the
 * deadline). */
static uint64_t kz_cli__ol_due(const kz_cli__phase *ph, uint64_t now)
{
	uint64_t due = kz_cli_bench_sched_due(
	    ph->rate, now > ph->start_ns ? now - ph->start_ns : 0);
	uint64_t end = kz_cli__ol_scheduled(ph);
	return due < end ? due : end;
}

/* Keeps how late the request slot s just sent went out. */
static int kz_cli__ol_note(kz_cli_bench_schedule *sc, const kz_cli__slot *s)
{
	if (sc->n_delay == sc->cap_delay) {
		size_t cap = sc->cap_delay ? sc->cap_delay * 2 : 4096;
		uint64_t *d = realloc(sc->delay_ns, cap * sizeof(*d));
		if (d == NULL)
			return KZ_CLI_ENOMEM;
		sc->delay_ns = d;
		sc->cap_delay = cap;
	}
	sc->delay_ns[sc->n_delay++] = s->start_ns - s->op_start_ns;
	return KZ_CLI_OK;
}

/* One turn of an open-loop phase (ph->rate > 0) at now: first the
 * identity checks whose challenge was answered send their verification
 * (unless stopping: they are half of an operation already scheduled);
 * then every request of the schedule due by now goes out in order, each
 * on the next free slot from ph->ol_cursor on, so that the requests go
 * round the slots and their endpoints as in the closed loop (a slot
 * pausing after a transport failure is passed over: the others take its
 * share). Those left when no slot is free wait for the next turn, which
 * comes when a request ends; they are marked as having waited. Lowers
 * *wait_ns to the next due time when nothing waits (the loop's timer
 * then wakes it), or to the end of a slot's pause when one would take a
 * waiting request. The first turn at or past the deadline is the
 * schedule's last. Returns how many requests were started; sets
 * b->fatal when one cannot be. */
static size_t kz_cli__ol_turn(kz_cli__bench *b, uint64_t now, int stopping,
			      uint64_t *wait_ns)
{
	kz_cli__phase *ph = b->ph;
	uint64_t due;
	size_t i, from, started = 0;

	for (i = 0; i < b->n_slots && !stopping && !b->fatal; i++) {
		kz_cli__slot *s = &b->slots[i];
		if (s->busy || !s->id_verify)
			continue;
		kz_cli__start(b, s);
		started += (size_t)s->busy;
	}
	if (ph->ol_closed || b->fatal)
		return started;
	due = kz_cli__ol_due(ph, now);
	from = ph->ol_cursor;
	for (i = 0; i < b->n_slots && ph->ol_next < due && !b->fatal; i++) {
		size_t k = (from + i) % b->n_slots;
		kz_cli__slot *s = &b->slots[k];
		if (s->busy || s->id_verify)
			continue;
		if (s->not_before_ns > now) {
			if (s->not_before_ns - now < *wait_ns)
				*wait_ns = s->not_before_ns - now;
			continue;
		}
		s->due_ns = ph->start_ns +
			    kz_cli_bench_sched_offset_ns(ph->rate, ph->ol_next);
		kz_cli__start(b, s);
		s->due_ns = 0;
		if (!s->busy)
			break; /* b->fatal says why */
		if (kz_cli__ol_note(ph->sched, s) != KZ_CLI_OK) {
			b->fatal = KZ_CLI_ENOMEM;
			kz_cli__bfmt(b->errmsg, sizeof(b->errmsg),
				     "out of memory for send delays");
		}
		ph->sched->queued += (uint64_t)(ph->ol_next < ph->ol_waited);
		ph->ol_next++;
		ph->ol_last_ns = s->start_ns;
		ph->ol_cursor = (k + 1) % b->n_slots;
		started++;
	}
	if (ph->ol_next < due)
		ph->ol_waited = due; /* no slot for them now */
	else if (ph->ol_next < kz_cli__ol_scheduled(ph)) {
		uint64_t next = ph->start_ns + kz_cli_bench_sched_offset_ns(
						   ph->rate, ph->ol_next);
		if (next > now && next - now < *wait_ns)
			*wait_ns = next - now;
	}
	if (ph->ol_next >= kz_cli__ol_scheduled(ph) ||
	    (ph->limit == 0 && now >= ph->deadline_ns))
		ph->ol_closed = 1;
	return started;
}

/* After an open-loop phase: how the schedule was kept, into *sc (whose
 * rate, queued and delays the phase filled). */
static void kz_cli__ol_end(const kz_cli__phase *ph,
			   kz_cli_bench_schedule *sc)
{
	double span_s = ph->limit > 0 ? (double)ph->limit / ph->rate
			: ph->deadline_ns > ph->start_ns
			    ? (double)(ph->deadline_ns - ph->start_ns) / 1e9
			    : 0.0;
	double last_s = ph->ol_last_ns > ph->start_ns
			    ? (double)(ph->ol_last_ns - ph->start_ns) / 1e9
			    : 0.0;
	sc->scheduled = kz_cli__ol_scheduled(ph);
	sc->sent = ph->ol_next;
	/* Sent on time, the last request goes out within the span: the
	 * rate achieved is then the rate asked. */
	sc->window_s = last_s > span_s ? last_s : span_s;
	if (sc->n_delay > 0)
		qsort(sc->delay_ns, sc->n_delay, sizeof(uint64_t),
		      kz_cli__cmp_u64);
}

/* The tick timer ends a turn of the loop. It may already be due when
 * uv_run(UV_RUN_ONCE) starts (the turn took a while, or the wait was
 * under a millisecond): libuv then runs it before it polls, and polls
 * with no timeout left, until a socket or another timer wakes it: an
 * answer, or when the requests in flight hang (on a dead leader) their
 * --timeout, which would hold up the failover command's 1 ms polling and
 * the deadline; in an open loop between due times, with nothing in
 * flight, only a keep-alive connection the server closes. uv_stop makes
 * that poll return at once. */
static void kz_cli__tick(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs one phase to its end. Returns 0, or b->fatal. */
static int kz_cli__run_phase(kz_cli__bench *b, kz_cli__phase *ph)
{
	uint64_t now = kz_cli__bnow_ns(), next_tick, last_tick, last_ok = 0;
	size_t busy = 0, i;
	int stopping = 0;

	b->ph = ph;
	ph->start_ns = ph->end_ns = now;
	last_tick = now;
	next_tick = now + KZ_CLI__NS_PER_S;
	for (i = 0; i < b->n_slots; i++)
		b->slots[i].not_before_ns = 0;
	for (;;) {
		uint64_t wait_ns, done;

		now = kz_cli__bnow_ns();
		if (b->fatal ||
		    (ph->limit > 0 ? ph->sent >= ph->limit
				   : now >= ph->deadline_ns))
			stopping = 1;
		wait_ns = next_tick > now ? next_tick - now : 0;
		if (ph->failover && !stopping) {
			wait_ns = kz_cli__failover_tick(b, now, wait_ns);
			if (b->fatal)
				stopping = 1;
		}
		/* Open loop: the schedule says when requests start, not the
		 * slots' answers. */
		if (ph->rate > 0.0) {
			busy += kz_cli__ol_turn(b, now, stopping, &wait_ns);
			if (b->fatal)
				stopping = 1;
		}
		for (i = 0; i < b->n_slots && !stopping && !(ph->rate > 0.0);
		     i++) {
			kz_cli__slot *s = &b->slots[i];
			if (s->busy)
				continue;
			if (s->not_before_ns > now) {
				if (s->not_before_ns - now < wait_ns)
					wait_ns = s->not_before_ns - now;
				continue;
			}
			kz_cli__start(b, s);
			busy += (size_t)s->busy;
			if (b->fatal || (ph->limit > 0 && ph->sent >= ph->limit))
				stopping = 1;
		}
		if (ph->failover && !stopping)
			busy += (size_t)kz_cli__probe(b, now, &wait_ns);
		if (!stopping && ph->limit == 0 && ph->deadline_ns > now &&
		    ph->deadline_ns - now < wait_ns)
			wait_ns = ph->deadline_ns - now;
		if (busy == 0 && stopping)
			break;

		/* One turn of the loop: whatever the sockets have, or at most
		 * until wait_ns (the tick timer; libuv counts in ms). The
		 * requests that end in it have been through kz_cli__finish
		 * when it returns. */
		done = b->n_done;
		if (busy > 0 || ph->rate > 0.0) {
			uint64_t ms = wait_ns / KZ_CLI__NS_PER_MS;
			/* The timer counts from the loop's clock, which was
			 * last read when the loop last ran: an open loop
			 * waits for a due time, so read it now. */
			if (ph->rate > 0.0)
				uv_update_time(&b->loop);
			uv_timer_start(&b->tick, kz_cli__tick, ms > 0 ? ms : 1,
				       0);
			uv_run(&b->loop, UV_RUN_ONCE);
		} else if (wait_ns > 0) {
			/* Every slot is pausing after a failure. */
			struct timespec ts = {
			    (time_t)(wait_ns / KZ_CLI__NS_PER_S),
			    (long)(wait_ns % KZ_CLI__NS_PER_S)};
			nanosleep(&ts, NULL);
		}
		busy -= (size_t)(b->n_done - done);
		now = kz_cli__bnow_ns();
		if (now >= next_tick) {
			kz_cli__progress(b, now, &last_tick, &last_ok);
			next_tick += KZ_CLI__NS_PER_S;
			if (next_tick <= now)
				next_tick = now + KZ_CLI__NS_PER_S;
		}
	}
	/* A timed phase lasted until its deadline even when its last answer
	 * came earlier (slots pausing after failures). */
	if (ph->limit == 0 && !b->fatal && ph->end_ns < ph->deadline_ns)
		ph->end_ns = ph->deadline_ns;
	if (ph->end_ns < ph->start_ns)
		ph->end_ns = ph->start_ns;
	return b->fatal;
}

/* ---- run ---------------------------------------------------------------------------- */

void kz_cli_bench_result_free(kz_cli_bench_result *res)
{
	int i;
	if (res == NULL)
		return;
	for (i = 0; i < 2; i++)
		free(res->op[i].lat_ns);
	free(res->preload.lat_ns);
	free(res->photos.lat_ns);
	free(res->sched.delay_ns);
	for (i = 0; i < KZ_CLI_BENCH_KIND_COUNT; i++)
		free(res->kinds[i].lat_ns);
	for (i = 0; res->ep != NULL && (size_t)i < res->n_endpoints; i++)
		free(res->ep[i].st.lat_ns);
	free(res->ep);
	memset(res, 0, sizeof(*res));
}

static int kz_cli__check_file(const char *what, const char *path, char *errmsg,
			      size_t errlen)
{
	if (path == NULL || access(path, R_OK) == 0)
		return KZ_CLI_OK;
	kz_cli__bfmt(errmsg, errlen, "cannot read %s %s: %s", what, path,
		     strerror(errno));
	return KZ_CLI_EIO;
}

/* The certificate files of a run (reads: the reader's too). etcd is
 * spoken to without any, so there is nothing to check. */
static int kz_cli__check_files(const kz_cli_bench_args *a, int reads,
			       char *errmsg, size_t errlen)
{
	int rc;
	if (a->target == KZ_CLI_BENCH_TARGET_ETCD)
		return KZ_CLI_OK;
	if ((rc = kz_cli__check_file("CA certificate", a->cacert, errmsg,
				     errlen)) != KZ_CLI_OK ||
	    (rc = kz_cli__check_file("write certificate", a->write_cert,
				     errmsg, errlen)) != KZ_CLI_OK ||
	    (rc = kz_cli__check_file("write key", a->write_key, errmsg,
				     errlen)) != KZ_CLI_OK)
		return rc;
	if (reads &&
	    ((rc = kz_cli__check_file("read certificate", a->read_cert, errmsg,
				      errlen)) != KZ_CLI_OK ||
	     (rc = kz_cli__check_file("read key", a->read_key, errmsg,
				      errlen)) != KZ_CLI_OK))
		return rc;
	return KZ_CLI_OK;
}

/* Frees n slots (NULL is fine), giving up their requests in flight. */
static void kz_cli__free_slots(kz_cli__slot *slots, size_t n)
{
	size_t i;
	int op;
	for (i = 0; slots != NULL && i < n; i++) {
		kz_cli__slot *s = &slots[i];
		for (op = 0; op < 2; op++)
			if (op == 0 || s->h[1] != s->h[0])
				kz_bh_conn_free(s->h[op]);
		kz_bh_conn_free(s->h[KZ_CLI__ID_PAYOUT]);
		free(s->body);
		free(s->whole);
	}
	free(slots);
}

/* The transport's loop and the two client identities (write: the
 * registrar's, read: the caseworker's or terminal's; their files are
 * loaded at the first connection). kz_cli__close undoes it. */
static int kz_cli__open_transport(kz_cli__bench *b)
{
	const kz_cli_bench_args *a = b->a;
	if (uv_loop_init(&b->loop) != 0)
		return KZ_CLI_ENOMEM;
	b->loop_open = 1;
	uv_timer_init(&b->loop, &b->tick);
	b->tls[KZ_CLI_BENCH_OP_WRITE] =
	    kz_bh_tls_new(a->cacert, a->write_cert, a->write_key);
	b->tls[KZ_CLI_BENCH_OP_READ] =
	    kz_bh_tls_new(a->cacert, a->read_cert, a->read_key);
	if (b->tls[0] == NULL || b->tls[1] == NULL)
		return KZ_CLI_ENOMEM;
	if (a->payout_cert != NULL &&
	    (b->tls[KZ_CLI__ID_PAYOUT] = kz_bh_tls_new(
		 a->cacert, a->payout_cert, a->payout_key)) == NULL)
		return KZ_CLI_ENOMEM;
	return KZ_CLI_OK;
}

static void kz_cli__close(kz_cli__bench *b)
{
	size_t i;
	kz_cli__free_slots(b->slots, b->n_slots);
	kz_cli__free_slots(b->probes, KZ_CLI__PROBES);
	if (b->loop_open) {
		/* The connections' handles close in the loop. */
		uv_close((uv_handle_t *)&b->tick, NULL);
		uv_run(&b->loop, UV_RUN_DEFAULT);
		uv_loop_close(&b->loop);
		b->loop_open = 0;
	}
	for (i = 0; i < KZ_CLI__IDS; i++)
		kz_bh_tls_free(b->tls[i]);
	for (i = 0; i < KZ_CLI__REQ_COUNT_; i++)
		free(b->hdrs[i]);
	free(b->ids);
	free(b->people);
	free(b->plan);
	free(b->photo_ids);
	for (i = 0; i < b->n_cards; i++) {
		EVP_PKEY_free(b->cards[i].key);
		free(b->cards[i].cert_b64);
	}
	free(b->cards);
	kz_cli_endpoints_free(b->eps, b->n_eps);
	/* A run that failed with the failover command still running leaves
	 * no zombie behind. */
	if (b->fo_pid != 0) {
		int st;
		kz_cli__reap(b->fo_pid, 1, &st);
		b->fo_pid = 0;
	}
}

/* identity: every <name>.pem with its <name>.key in dir (at most 1000). */
static int kz_cli__load_cards(kz_cli__bench *b, const char *dir, char *errmsg,
			      size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (d == NULL) {
		kz_cli__bfmt(errmsg, errlen, "cards: cannot open %s: %s", dir,
			     strerror(errno));
		return KZ_CLI_EIO;
	}
	while ((e = readdir(d)) != NULL && b->n_cards < 1000) {
		size_t nl = strlen(e->d_name);
		char pem[KZ_CLI_BENCH_PATH_MAX + 300], key[sizeof(pem)];
		FILE *f;
		X509 *x = NULL;
		EVP_PKEY *k = NULL;
		unsigned char *der = NULL;
		int dl;
		kz_cli__card *c;
		if (nl < 5 || strcmp(e->d_name + nl - 4, ".pem") != 0)
			continue;
		snprintf(pem, sizeof(pem), "%s/%s", dir, e->d_name);
		snprintf(key, sizeof(key), "%s/%.*s.key", dir, (int)(nl - 4),
			 e->d_name);
		if ((f = fopen(pem, "r")) != NULL) {
			x = PEM_read_X509(f, NULL, NULL, NULL);
			fclose(f);
		}
		if ((f = fopen(key, "r")) != NULL) {
			k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
		}
		dl = x != NULL ? i2d_X509(x, &der) : -1;
		X509_free(x);
		c = realloc(b->cards, (b->n_cards + 1) * sizeof(*c));
		if (k == NULL || dl <= 0 || c == NULL) {
			EVP_PKEY_free(k);
			OPENSSL_free(der);
			if (c != NULL)
				b->cards = c;
			continue; /* not a card: skipped */
		}
		b->cards = c;
		c = &b->cards[b->n_cards];
		c->key = k;
		c->cert_b64 = malloc(4 * (((size_t)dl + 2) / 3) + 1);
		if (c->cert_b64 == NULL) {
			EVP_PKEY_free(k);
			OPENSSL_free(der);
			break;
		}
		EVP_EncodeBlock((unsigned char *)c->cert_b64, der, dl);
		OPENSSL_free(der);
		b->n_cards++;
	}
	closedir(d);
	if (b->n_cards == 0) {
		kz_cli__bfmt(errmsg, errlen,
			     "cards: no <name>.pem with its <name>.key in %s "
			     "(deploy/local-cluster cards N makes them)",
			     dir);
		return KZ_CLI_EIO;
	}
	return KZ_CLI_OK;
}

/* The sample victims stay in shelters ishinomaki-01..10: register those
 * first (PUT is idempotent, so a second run changes nothing), with the
 * synchronous client, so the records written point at real shelters. A
 * failure is only reported: the run itself will show what is wrong. */
static void kz_cli__put_shelters(kz_cli__bench *b)
{
	const kz_cli_bench_args *a = b->a;
	kz_cli_opts o;
	kz_cli *cli;
	char err[512], id[64], path[128];
	unsigned i;

	memset(&o, 0, sizeof(o));
	o.endpoints = a->endpoints;
	o.cacert = a->cacert;
	o.cert = a->write_cert;
	o.key = a->write_key;
	/* Short: when no node answers, the run itself says so. */
	o.deadline_ms = a->timeout_ms < 3000 ? a->timeout_ms : 3000;
	o.request_timeout_ms = o.deadline_ms;
	if (kz_cli_open(&o, &cli, err, sizeof(err)) != KZ_CLI_OK) {
		fprintf(stderr, "kizuna-bench: shelters: %s\n", err);
		return;
	}
	for (i = 0; i < KZ_CLI__SHELTERS; i++) {
		kz_cli_response r;
		json_t *v;
		char *body;
		int rc;
		if (kz_cli_sample_shelter(&b->gen, i, id, sizeof(id), &v) !=
		    KZ_CLI_OK)
			break;
		body = json_dumps(v, JSON_COMPACT);
		json_decref(v);
		if (body == NULL)
			break;
		snprintf(path, sizeof(path), "/v1/shelters/%s", id);
		rc = kz_cli_request(cli, "PUT", path, NULL, body, strlen(body),
				    &r);
		free(body);
		if (rc != KZ_CLI_OK) {
			fprintf(stderr, "kizuna-bench: shelter %s: %s\n", id,
				kz_cli_errmsg(cli));
			kz_cli_response_free(&r);
			break;
		}
		if (r.status < 200 || r.status >= 300) {
			fprintf(stderr, "kizuna-bench: shelter %s: %s\n", id,
				kz_cli_error_describe(&r, err, sizeof(err)));
			kz_cli_response_free(&r);
			break;
		}
		kz_cli_response_free(&r);
	}
	kz_cli_close(cli);
}

/* The fixed headers of each kind of request, as the lines the transport
 * sends (kz_cli__close frees them). */
static int kz_cli__make_headers(kz_cli__bench *b)
{
	char purpose[600];
	const char *vpost[] = {"Accept: application/json",
			       "Content-Type: application/json", NULL};
	const char *vget[] = {"Accept: application/json", purpose, NULL};
	/* The server trusts the magic bytes, not this; sent as a real
	 * uploader would. Errors come back as JSON. */
	const char *pput[] = {"Accept: application/json",
			      "Content-Type: image/jpeg", NULL};
	const char *pget[] = {"Accept: image/jpeg, application/json", purpose,
			      NULL};
	/* etcd's gateway: a JSON body both ways, and no certificate or
	 * purpose to show. */
	const char *etcd[] = {"Accept: */*", "Content-Type: application/json",
			      NULL};
	const char *const *lists[KZ_CLI__REQ_COUNT_] = {
	    [KZ_CLI__REQ_VICTIM_POST] = vpost,
	    [KZ_CLI__REQ_VICTIM_GET] = vget,
	    [KZ_CLI__REQ_VICTIM_PATCH] = vpost,
	    [KZ_CLI__REQ_PHOTO_PUT] = pput,
	    [KZ_CLI__REQ_PHOTO_GET] = pget,
	    [KZ_CLI__REQ_ID_CHALLENGE] = vpost,
	    [KZ_CLI__REQ_ID_VERIFY] = vpost,
	    [KZ_CLI__REQ_ETCD_PUT] = etcd,
	    [KZ_CLI__REQ_ETCD_RANGE] = etcd,
	    /* A search reads personal data as a GET does; a note and a
	     * payout write (the payout's key is added per request). */
	    [KZ_CLI__REQ_SEARCH] = vget,
	    [KZ_CLI__REQ_NOTE] = vpost,
	    [KZ_CLI__REQ_PAYOUT] = vpost,
	};
	int req, i;

	snprintf(purpose, sizeof(purpose), "X-Purpose: %s", b->a->purpose);
	for (req = 0; req < KZ_CLI__REQ_COUNT_; req++) {
		size_t len = 1, off = 0;
		for (i = 0; lists[req][i] != NULL; i++)
			len += strlen(lists[req][i]) + 2;
		b->hdrs[req] = malloc(len);
		if (b->hdrs[req] == NULL)
			return KZ_CLI_ENOMEM;
		for (i = 0; lists[req][i] != NULL; i++)
			off += (size_t)snprintf(b->hdrs[req] + off, len - off,
						"%s\r\n", lists[req][i]);
		b->hdrs[req][off] = '\0';
	}
	return KZ_CLI_OK;
}

int kz_cli_bench_run(const kz_cli_bench_args *a, kz_cli_bench_result *res,
		     char *errmsg, size_t errlen)
{
	kz_cli__bench b;
	kz_cli__phase pre, pho, main_ph;
	int rc, preload = a->workload != KZ_CLI_BENCH_WRITE &&
			  a->workload != KZ_CLI_BENCH_IDENTITY;
	int identity = a->workload == KZ_CLI_BENCH_IDENTITY;
	int photo = a->workload == KZ_CLI_BENCH_PHOTO;
	int update = a->workload == KZ_CLI_BENCH_UPDATE;
	int payout = a->workload == KZ_CLI_BENCH_PAYOUT;
	int day = a->workload == KZ_CLI_BENCH_DAY;
	int kinds = day || payout || a->workload == KZ_CLI_BENCH_SEARCH;
	/* update and payout only write */
	int reads = preload && !update && !payout;
	int etcd = a->target == KZ_CLI_BENCH_TARGET_ETCD;
	size_t i;
	double cpu0;

	memset(res, 0, sizeof(*res));
	memset(&b, 0, sizeof(b));
	if (errmsg != NULL && errlen > 0)
		errmsg[0] = '\0';
	b.a = a;
	b.rng = a->seed ^ 0x6b697a756e61ull; /* not the sample stream */
	kz_cli_sample_init(&b.gen, a->seed, KZ_CLI__SHELTERS);

	/* Every file is checked before the first connection, so a typo costs
	 * a message, not a run full of TLS errors. */
	rc = kz_cli__check_files(a, reads || identity, errmsg, errlen);
	if (rc != KZ_CLI_OK)
		return rc;

	rc = kz_cli_endpoints_parse(a->endpoints, &b.eps, &b.n_eps, errmsg,
				    errlen);
	if (rc != KZ_CLI_OK)
		return rc;
	res->ep = calloc(b.n_eps, sizeof(*res->ep));
	if (res->ep == NULL) {
		kz_cli__bfmt(errmsg, errlen, "out of memory");
		rc = KZ_CLI_ENOMEM;
		goto err_after_eps;
	}
	res->n_endpoints = b.n_eps;
	for (i = 0; i < b.n_eps; i++) {
		kz_cli__bfmt(res->ep[i].url, sizeof(res->ep[i].url), "%s",
			     b.eps[i].url);
		kz_cli__bfmt(res->ep[i].node, sizeof(res->ep[i].node), "%s",
			     b.eps[i].node_id ? b.eps[i].node_id : "");
		kz_cli__bfmt(res->ep[i].region, sizeof(res->ep[i].region), "%s",
			     b.eps[i].region ? b.eps[i].region : "");
	}

	rc = kz_cli__make_headers(&b);
	if (rc == KZ_CLI_OK)
		rc = kz_cli__open_transport(&b);
	if (rc != KZ_CLI_OK) {
		kz_cli__bfmt(errmsg, errlen, "out of memory");
		goto err_after_global;
	}
	b.n_slots = (size_t)a->connections;
	b.slots = calloc(b.n_slots, sizeof(*b.slots));
	if (b.slots == NULL) {
		kz_cli__bfmt(errmsg, errlen, "out of memory");
		rc = KZ_CLI_ENOMEM;
		goto err_after_global;
	}
	for (i = 0; i < b.n_slots; i++) {
		b.slots[i].b = &b;
		b.slots[i].ep = i % b.n_eps;
	}
	if (a->failover_cmd != NULL) {
		b.probes = calloc(KZ_CLI__PROBES, sizeof(*b.probes));
		if (b.probes == NULL) {
			kz_cli__bfmt(errmsg, errlen, "out of memory");
			rc = KZ_CLI_ENOMEM;
			goto err_after_global;
		}
		for (i = 0; i < KZ_CLI__PROBES; i++) {
			b.probes[i].b = &b;
			b.probes[i].ep = i % b.n_eps;
			b.probes[i].probe = 1;
		}
	}

	if (identity || (day && a->cards != NULL)) {
		rc = kz_cli__load_cards(&b, a->cards, errmsg, errlen);
		if (rc != KZ_CLI_OK)
			goto err_after_global;
	}
	if (!identity && !etcd)
		kz_cli__put_shelters(&b);
	rc = kz_cli__kinds_setup(&b, res, errmsg, errlen);
	if (rc != KZ_CLI_OK)
		goto err_after_global;
	if (preload) {
		memset(&pre, 0, sizeof(pre));
		pre.name = "preload";
		pre.read_ratio = 0.0;
		pre.limit = (uint64_t)a->preload;
		pre.keep_ids = 1;
		pre.st[0] = pre.st[1] = &res->preload;
		pre.rec = &res->preload_records;
		if (!a->quiet)
			fprintf(stderr,
				"kizuna-bench: preload: %s %ld records\n",
				etcd ? "putting" : "registering", a->preload);
		if (kz_cli__run_phase(&b, &pre) != 0)
			goto err_fatal;
		res->preload_s = (double)(pre.end_ns - pre.start_ns) / 1e9;
		if (b.n_ids == 0) {
			kz_cli__bfmt(errmsg, errlen,
				     "preload registered no record (%llu "
				     "requests; first error: %s)",
				     (unsigned long long)res->preload.requests,
				     res->preload.first_error[0]
					 ? res->preload.first_error
					 : "none; no id in the answers");
			rc = KZ_CLI_EUNREACHABLE;
			goto err_after_global;
		}
		if (b.n_ids < (size_t)a->preload && !a->quiet)
			fprintf(stderr,
				"kizuna-bench: preload: only %zu of %ld "
				"records registered; %s those\n",
				b.n_ids, a->preload,
				photo    ? "photographing"
				: update ? "updating"
				: payout ? "paying"
					 : "reading");
		rc = kz_cli__kinds_plan(&b, errmsg, errlen);
		if (rc != KZ_CLI_OK)
			goto err_after_global;
		if (a->stale && !etcd && !photo)
			kz_cli__settle(&b, res);
	}
	if (photo) {
		/* One PUT per victim, like the preload not retried: a photo
		 * refused (a 503 from a node without its data key yet, say)
		 * is counted and its victim left out of the reads. */
		b.photo_ids = malloc(b.n_ids * sizeof(*b.photo_ids));
		if (b.photo_ids == NULL) {
			kz_cli__bfmt(errmsg, errlen, "out of memory");
			rc = KZ_CLI_ENOMEM;
			goto err_after_global;
		}
		memset(&pho, 0, sizeof(pho));
		pho.name = "photos";
		pho.read_ratio = 0.0;
		pho.limit = (uint64_t)b.n_ids;
		pho.photos = 1;
		pho.st[0] = pho.st[1] = &res->photos;
		if (!a->quiet)
			fprintf(stderr,
				"kizuna-bench: photos: storing %zu photos of "
				"%ld bytes\n",
				b.n_ids, a->photo_bytes);
		if (kz_cli__run_phase(&b, &pho) != 0)
			goto err_fatal;
		res->photos_s = (double)(pho.end_ns - pho.start_ns) / 1e9;
		if (b.n_photo_ids == 0) {
			kz_cli__bfmt(errmsg, errlen,
				     "stored no photo (%llu requests; first "
				     "error: %s)",
				     (unsigned long long)res->photos.requests,
				     res->photos.first_error[0]
					 ? res->photos.first_error
					 : "none");
			rc = KZ_CLI_EUNREACHABLE;
			goto err_after_global;
		}
		if (b.n_photo_ids < b.n_ids && !a->quiet)
			fprintf(stderr,
				"kizuna-bench: photos: only %zu of %zu "
				"stored; reading those\n",
				b.n_photo_ids, b.n_ids);
	}

	memset(&main_ph, 0, sizeof(main_ph));
	main_ph.name = kz_cli_bench_workload_name(a->workload);
	main_ph.read_ratio = a->workload == KZ_CLI_BENCH_WRITE || update
				 ? 0.0
			     : a->workload == KZ_CLI_BENCH_MIXED
				 ? a->read_ratio
				 : 1.0; /* read, photo */
	main_ph.photos = photo;
	main_ph.updates = update;
	main_ph.limit = (uint64_t)a->requests;
	main_ph.deadline_ns =
	    kz_cli__bnow_ns() + (uint64_t)(a->duration_s * 1e9);
	/* New records join the pool read from (day: searched and noted
	 * too). */
	main_ph.keep_ids = a->workload == KZ_CLI_BENCH_MIXED || day;
	main_ph.kinds = kinds ? res->kinds : NULL;
	main_ph.st[KZ_CLI_BENCH_OP_WRITE] = &res->op[KZ_CLI_BENCH_OP_WRITE];
	main_ph.st[KZ_CLI_BENCH_OP_READ] = &res->op[KZ_CLI_BENCH_OP_READ];
	main_ph.rec = &res->records;
	main_ph.ep = res->ep;
	main_ph.failover = a->failover_cmd != NULL;
	main_ph.rate = a->rate;
	main_ph.sched = &res->sched;
	res->sched.rate = a->rate;
	cpu0 = kz_cli__cpu_s();
	if (kz_cli__run_phase(&b, &main_ph) != 0)
		goto err_fatal;
	if (main_ph.failover)
		kz_cli__failover_end(&b, &main_ph, &res->failover);
	if (main_ph.rate > 0.0)
		kz_cli__ol_end(&main_ph, &res->sched);
	res->cpu_s = kz_cli__cpu_s() - cpu0;
	res->elapsed_s = (double)(main_ph.end_ns - main_ph.start_ns) / 1e9;
	res->pool_ids = photo ? b.n_photo_ids : b.n_ids;

	for (i = 0; i < 2; i++)
		if (res->op[i].n_lat > 0)
			qsort(res->op[i].lat_ns, res->op[i].n_lat,
			      sizeof(uint64_t), kz_cli__cmp_u64);
	if (res->preload.n_lat > 0)
		qsort(res->preload.lat_ns, res->preload.n_lat, sizeof(uint64_t),
		      kz_cli__cmp_u64);
	if (res->photos.n_lat > 0)
		qsort(res->photos.lat_ns, res->photos.n_lat, sizeof(uint64_t),
		      kz_cli__cmp_u64);
	for (i = 0; i < KZ_CLI_BENCH_KIND_COUNT; i++)
		if (res->kinds[i].n_lat > 0)
			qsort(res->kinds[i].lat_ns, res->kinds[i].n_lat,
			      sizeof(uint64_t), kz_cli__cmp_u64);
	for (i = 0; i < res->n_endpoints; i++)
		if (res->ep[i].st.n_lat > 0)
			qsort(res->ep[i].st.lat_ns, res->ep[i].st.n_lat,
			      sizeof(uint64_t), kz_cli__cmp_u64);
	kz_cli__close(&b);
	return KZ_CLI_OK;

err_fatal:
	rc = b.fatal;
	kz_cli__bfmt(errmsg, errlen, "%s", b.errmsg);
err_after_global:
	kz_cli__close(&b);
	return rc;
err_after_eps:
	kz_cli_endpoints_free(b.eps, b.n_eps);
	return rc;
}

/* ---- summary --------------------------------------------------------------------------- */

/* The stats of the measured phase taken together (mixed: reads and
 * writes). lat_ns is malloc'd and sorted (NULL when out of memory or
 * empty); the caller frees it. */
static kz_cli_bench_stats *kz_cli__total(const kz_cli_bench_result *res,
					 kz_cli_bench_stats *t)
{
	int i;
	size_t k;
	memset(t, 0, sizeof(*t));
	for (i = 0; i < 2; i++) {
		const kz_cli_bench_stats *s = &res->op[i];
		t->requests += s->requests;
		t->ok += s->ok;
		t->http_errors += s->http_errors;
		t->transport_errors += s->transport_errors;
		t->bad_bodies += s->bad_bodies;
		t->body_bytes_in += s->body_bytes_in;
		t->connects += s->connects;
		for (k = 0; k < KZ_CLI_BENCH_MAX_STATUS; k++)
			t->by_status[k] += s->by_status[k];
		for (k = 0; k < KZ_CLI_BENCH_MAX_TRANSPORT; k++)
			t->by_transport[k] += s->by_transport[k];
		if (t->first_error[0] == '\0')
			memcpy(t->first_error, s->first_error,
			       sizeof(t->first_error));
	}
	t->n_lat = res->op[0].n_lat + res->op[1].n_lat;
	if (t->n_lat == 0)
		return t;
	t->lat_ns = malloc(t->n_lat * sizeof(uint64_t));
	if (t->lat_ns == NULL) {
		t->n_lat = 0;
		return t;
	}
	if (res->op[0].n_lat > 0)
		memcpy(t->lat_ns, res->op[0].lat_ns,
		       res->op[0].n_lat * sizeof(uint64_t));
	if (res->op[1].n_lat > 0)
		memcpy(t->lat_ns + res->op[0].n_lat, res->op[1].lat_ns,
		       res->op[1].n_lat * sizeof(uint64_t));
	qsort(t->lat_ns, t->n_lat, sizeof(uint64_t), kz_cli__cmp_u64);
	return t;
}

static double kz_cli__ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double kz_cli__mean_ms(const kz_cli_bench_stats *s)
{
	size_t i;
	double sum = 0;
	if (s->n_lat == 0)
		return 0;
	for (i = 0; i < s->n_lat; i++)
		sum += (double)s->lat_ns[i];
	return sum / (double)s->n_lat / 1e6;
}

static double kz_cli__rate(uint64_t n, double s)
{
	return s > 0 ? (double)n / s : 0.0;
}

/* The records a run's summary talks about: the measured phase's writes, or
 * the preload's for a run that only reads. */
static const kz_cli_bench_records *
kz_cli__records_of(const kz_cli_bench_args *a, const kz_cli_bench_result *res)
{
	return a->workload == KZ_CLI_BENCH_READ ||
		       a->workload == KZ_CLI_BENCH_PHOTO ||
		       a->workload == KZ_CLI_BENCH_SEARCH ||
		       a->workload == KZ_CLI_BENCH_PAYOUT
		   ? &res->preload_records
		   : &res->records;
}

/* How the reads were asked for: etcd calls its local reads
 * serializable. */
static const char *kz_cli__consistency(const kz_cli_bench_args *a)
{
	if (!a->stale)
		return "linearizable";
	return a->target == KZ_CLI_BENCH_TARGET_ETCD ? "serializable" : "stale";
}

static uint64_t kz_cli__failed(const kz_cli_bench_stats *s)
{
	return s->http_errors + s->transport_errors + s->bad_bodies;
}

static void kz_cli__text_errors(FILE *f, const char *label,
				const kz_cli_bench_stats *s)
{
	size_t k;
	const char *sep = "";
	fprintf(f, "%-14s", label);
	if (kz_cli__failed(s) == 0) {
		fputs("none\n", f);
		return;
	}
	if (s->http_errors > 0) {
		fprintf(f, "%llu http (", (unsigned long long)s->http_errors);
		for (k = 0; k < KZ_CLI_BENCH_MAX_STATUS; k++)
			if (s->by_status[k] > 0) {
				fprintf(f, "%s%zu: %llu", sep, k,
					(unsigned long long)s->by_status[k]);
				sep = ", ";
			}
		fputs(")", f);
		sep = "; ";
	} else {
		sep = "";
	}
	if (s->transport_errors > 0) {
		const char *isep = "";
		fprintf(f, "%s%llu transport (", sep,
			(unsigned long long)s->transport_errors);
		for (k = 0; k < KZ_CLI_BENCH_MAX_TRANSPORT; k++)
			if (s->by_transport[k] > 0) {
				fprintf(f, "%s%s: %llu", isep,
					kz_bh_strerror((int)k),
					(unsigned long long)s->by_transport[k]);
				isep = ", ";
			}
		fputs(")", f);
		sep = "; ";
	}
	if (s->bad_bodies > 0)
		fprintf(f, "%s%llu bad bodies (2xx, not the answer asked for)", sep,
			(unsigned long long)s->bad_bodies);
	fputc('\n', f);
	fprintf(f, "%-14s%s\n", "first error", s->first_error);
}

/* label NULL: continues a line already started. */
static void kz_cli__text_latency(FILE *f, const char *label,
				 const kz_cli_bench_stats *s)
{
	if (label != NULL)
		fprintf(f, "%-14s", label);
	fprintf(f,
		"p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f "
		"(%zu ok)\n",
		kz_cli__ms(kz_cli_bench_percentile(s->lat_ns, s->n_lat, 50)),
		kz_cli__ms(kz_cli_bench_percentile(s->lat_ns, s->n_lat, 90)),
		kz_cli__ms(kz_cli_bench_percentile(s->lat_ns, s->n_lat, 99)),
		kz_cli__ms(kz_cli_bench_percentile(s->lat_ns, s->n_lat, 99.9)),
		kz_cli__ms(kz_cli_bench_percentile(s->lat_ns, s->n_lat, 100)),
		kz_cli__mean_ms(s), s->n_lat);
}

/* What an open-loop run asked, what it sent and how late: whether the
 * tool kept to its schedule (if not, the rate asked was not offered). */
static void kz_cli__text_schedule(FILE *f, const kz_cli_bench_schedule *sc)
{
	const uint64_t *d = sc->delay_ns;
	size_t n = sc->n_delay;
	double mean = 0.0;
	size_t i;
	for (i = 0; i < n; i++)
		mean += (double)d[i];
	if (n > 0)
		mean /= (double)n;
	fprintf(f,
		"%-14s%.1f requests/s asked, %.1f/s sent; latency counts from "
		"each request's due time\n",
		"open loop", sc->rate, kz_cli__rate(sc->sent, sc->window_s));
	fprintf(f,
		"%-14s%llu due, %llu sent, %llu unsent (no connection free by "
		"the end); %llu waited for a free connection\n",
		"schedule", (unsigned long long)sc->scheduled,
		(unsigned long long)sc->sent,
		(unsigned long long)(sc->scheduled - sc->sent),
		(unsigned long long)sc->queued);
	fprintf(f,
		"%-14sp50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f ms "
		"after the due time\n",
		"send delay", kz_cli__ms(kz_cli_bench_percentile(d, n, 50)),
		kz_cli__ms(kz_cli_bench_percentile(d, n, 99)),
		kz_cli__ms(kz_cli_bench_percentile(d, n, 99.9)),
		kz_cli__ms(kz_cli_bench_percentile(d, n, 100)), mean / 1e6);
}

static void kz_cli__text_failover(FILE *f, const kz_cli_bench_failover *fo)
{
	fprintf(f, "%-14s", "failover");
	if (!fo->exited) {
		fprintf(f, "not measured: the command %s\n",
			fo->ran ? "outlasted the run" : "never started");
		return;
	}
	if (fo->recovered)
		fprintf(f, "%.3f s (first ok write sent after the kill done at "
			   "%.3f s)\n",
			fo->failover_s, fo->recovered_s);
	else
		fprintf(f, "not measured: no write sent after the kill "
			   "succeeded\n");
	fprintf(f,
		"%-14scommand run at %.2f s, ended (the kill) at %.3f s, exit "
		"%d; %llu failed requests sent after it, %llu probes\n",
		"", fo->started_s, fo->killed_s, fo->status,
		(unsigned long long)fo->errors_after,
		(unsigned long long)fo->probes);
}

/* search, payout, day: their own lines (below, with their JSON). */
static void kz_cli__text_kinds(FILE *f, const kz_cli_bench_args *a,
			       const kz_cli_bench_result *res);

void kz_cli_bench_report_text(FILE *f, const kz_cli_bench_args *a,
			      const kz_cli_bench_result *res)
{
	kz_cli_bench_stats t;
	const kz_cli_bench_records *rec = kz_cli__records_of(a, res);

	kz_cli__total(res, &t);
	fprintf(f, "%-14s%s", "workload", kz_cli_bench_workload_name(a->workload));
	if (a->workload == KZ_CLI_BENCH_IDENTITY)
		fprintf(f, " (challenge + card signature + verification = one "
			   "operation)");
	else if (a->workload == KZ_CLI_BENCH_UPDATE)
		fprintf(f, " (PATCH of random preloaded records)");
	else if (a->workload == KZ_CLI_BENCH_PAYOUT)
		fprintf(f, " (POST /v1/payouts, each household and item "
			   "once)");
	else if (a->workload != KZ_CLI_BENCH_WRITE)
		fprintf(f, ", %s reads", kz_cli__consistency(a));
	if (a->workload == KZ_CLI_BENCH_MIXED)
		fprintf(f, ", read ratio %.2f", a->read_ratio);
	if (a->workload == KZ_CLI_BENCH_PHOTO)
		fprintf(f, ", photos of %ld bytes", a->photo_bytes);
	fputc('\n', f);
	if (a->target == KZ_CLI_BENCH_TARGET_ETCD)
		fprintf(f, "%-14s%s\n", "target",
			"etcd (v3 JSON gateway, plain HTTP)");
	fprintf(f, "%-14s%zu\n", "endpoints", res->n_endpoints);
	fprintf(f, "%-14s%ld (%s)\n", "connections", a->connections,
		"HTTP/1.1");
	if (a->workload == KZ_CLI_BENCH_READ ||
	    a->workload == KZ_CLI_BENCH_MIXED ||
	    a->workload == KZ_CLI_BENCH_UPDATE ||
	    a->workload == KZ_CLI_BENCH_SEARCH ||
	    a->workload == KZ_CLI_BENCH_PAYOUT ||
	    a->workload == KZ_CLI_BENCH_DAY)
		fprintf(f,
			"%-14s%llu records in %.2f s (%.0f/s), %zu ids to "
			"%s\n",
			"preload", (unsigned long long)res->preload.ok,
			res->preload_s,
			kz_cli__rate(res->preload.ok, res->preload_s),
			res->pool_ids,
			a->workload == KZ_CLI_BENCH_UPDATE   ? "update"
			: a->workload == KZ_CLI_BENCH_SEARCH ? "search for"
			: a->workload == KZ_CLI_BENCH_PAYOUT ? "pay from"
							     : "read");
	if (a->workload == KZ_CLI_BENCH_PHOTO)
		fprintf(f, "%-14s%llu records in %.2f s (%.0f/s)\n", "preload",
			(unsigned long long)res->preload.ok, res->preload_s,
			kz_cli__rate(res->preload.ok, res->preload_s));
	if (a->workload != KZ_CLI_BENCH_WRITE &&
	    kz_cli__failed(&res->preload) > 0)
		kz_cli__text_errors(f, "preload errors", &res->preload);
	if (a->workload == KZ_CLI_BENCH_PHOTO) {
		fprintf(f,
			"%-14s%llu stored in %.2f s (%.0f/s, %.1f MB/s), %zu "
			"ids to read\n",
			"photos", (unsigned long long)res->photos.ok,
			res->photos_s, kz_cli__rate(res->photos.ok, res->photos_s),
			kz_cli__rate(res->photos.ok * (uint64_t)a->photo_bytes,
				     res->photos_s) /
			    1e6,
			res->pool_ids);
		kz_cli__text_latency(f, "", &res->photos);
		if (kz_cli__failed(&res->photos) > 0)
			kz_cli__text_errors(f, "photo errors", &res->photos);
	}
	fprintf(f, "%-14s%.2f s\n", "duration", res->elapsed_s);
	fprintf(f, "%-14s%llu sent, %llu ok, %llu new connections\n",
		"requests", (unsigned long long)t.requests,
		(unsigned long long)t.ok, (unsigned long long)t.connects);
	kz_cli__text_errors(f, "errors", &t);
	fprintf(f, "%-14s%.1f ops/s", "throughput",
		kz_cli__rate(t.ok, res->elapsed_s));
	if (a->workload == KZ_CLI_BENCH_PHOTO)
		fprintf(f, ", %.1f MB/s of response bodies",
			kz_cli__rate(t.body_bytes_in, res->elapsed_s) / 1e6);
	fputc('\n', f);
	if (res->sched.rate > 0.0)
		kz_cli__text_schedule(f, &res->sched);
	kz_cli__text_latency(f, "latency ms", &t);
	if (a->workload == KZ_CLI_BENCH_MIXED) {
		int op;
		for (op = 0; op < 2; op++) {
			const kz_cli_bench_stats *s = &res->op[op];
			fprintf(f, "%-14s%llu ok, %.1f ops/s, ",
				op == KZ_CLI_BENCH_OP_WRITE ? "  writes"
							    : "  reads",
				(unsigned long long)s->ok,
				kz_cli__rate(s->ok, res->elapsed_s));
			kz_cli__text_latency(f, NULL, s);
		}
	}
	if (res->ep != NULL) {
		size_t i;
		for (i = 0; i < res->n_endpoints; i++) {
			const kz_cli_bench_endpoint *e = &res->ep[i];
			char who[200];
			if (e->node[0] != '\0')
				snprintf(who, sizeof(who), "%s (node %s%s%s)",
					 e->url, e->node,
					 e->region[0] ? ", " : "", e->region);
			else
				snprintf(who, sizeof(who), "%s", e->url);
			fprintf(f,
				"%-14s%s  %llu ok, %llu errors, p50 %.2f  p99 "
				"%.2f  p99.9 %.2f ms\n",
				i == 0 ? "by endpoint" : "", who,
				(unsigned long long)e->st.ok,
				(unsigned long long)kz_cli__failed(&e->st),
				kz_cli__ms(kz_cli_bench_percentile(
				    e->st.lat_ns, e->st.n_lat, 50)),
				kz_cli__ms(kz_cli_bench_percentile(
				    e->st.lat_ns, e->st.n_lat, 99)),
				kz_cli__ms(kz_cli_bench_percentile(
				    e->st.lat_ns, e->st.n_lat, 99.9)));
		}
	}
	if (rec->count > 0) {
		fprintf(f, "%-14s%.0f mean, %zu..%zu (asked %ld",
			a->workload == KZ_CLI_BENCH_UPDATE ? "update bytes"
							   : "record bytes",
			(double)rec->bytes / (double)rec->count, rec->min,
			rec->max, a->record_bytes);
		if (rec->capped > 0)
			fprintf(f,
				"; %llu of %llu %s capped at the field "
				"limits",
				(unsigned long long)rec->capped,
				(unsigned long long)rec->count,
				a->workload == KZ_CLI_BENCH_UPDATE ? "updates"
								   : "records");
		fputs(")\n", f);
	}
	if (res->failover.asked)
		kz_cli__text_failover(f, &res->failover);
	kz_cli__text_kinds(f, a, res);
	fprintf(f, "%-14s%.2f s (%.0f%% of one core)\n", "client cpu",
		res->cpu_s,
		res->elapsed_s > 0 ? 100.0 * res->cpu_s / res->elapsed_s : 0.0);
	free(t.lat_ns);
}

/* Sets key to a new value; a NULL value (out of memory) marks *bad. */
static void kz_cli__jset(json_t *o, const char *key, json_t *v, int *bad)
{
	if (v == NULL || json_object_set_new(o, key, v) != 0)
		*bad = 1;
}

static json_t *kz_cli__json_errors(const kz_cli_bench_stats *s, int *bad)
{
	json_t *o = json_object(), *st = json_object(), *tr = json_object();
	size_t k;
	char key[16];
	if (o == NULL || st == NULL || tr == NULL) {
		json_decref(o);
		json_decref(st);
		json_decref(tr);
		*bad = 1;
		return NULL;
	}
	kz_cli__jset(o, "http", json_integer((json_int_t)s->http_errors), bad);
	kz_cli__jset(o, "transport",
		     json_integer((json_int_t)s->transport_errors), bad);
	kz_cli__jset(o, "bad_body", json_integer((json_int_t)s->bad_bodies),
		     bad);
	for (k = 0; k < KZ_CLI_BENCH_MAX_STATUS; k++)
		if (s->by_status[k] > 0) {
			snprintf(key, sizeof(key), "%zu", k);
			kz_cli__jset(st, key,
				     json_integer((json_int_t)s->by_status[k]),
				     bad);
		}
	for (k = 0; k < KZ_CLI_BENCH_MAX_TRANSPORT; k++)
		if (s->by_transport[k] > 0)
			kz_cli__jset(tr, kz_bh_strerror((int)k),
				     json_integer(
					 (json_int_t)s->by_transport[k]),
				     bad);
	kz_cli__jset(o, "by_status", st, bad);
	kz_cli__jset(o, "by_transport", tr, bad);
	kz_cli__jset(o, "first",
		     s->first_error[0] ? json_string(s->first_error)
				       : json_null(),
		     bad);
	return o;
}

static json_t *kz_cli__json_latency(const kz_cli_bench_stats *s, int *bad)
{
	json_t *o = json_object();
	if (o == NULL) {
		*bad = 1;
		return NULL;
	}
	kz_cli__jset(o, "p50",
		     json_real(kz_cli__ms(
			 kz_cli_bench_percentile(s->lat_ns, s->n_lat, 50))),
		     bad);
	kz_cli__jset(o, "p90",
		     json_real(kz_cli__ms(
			 kz_cli_bench_percentile(s->lat_ns, s->n_lat, 90))),
		     bad);
	kz_cli__jset(o, "p99",
		     json_real(kz_cli__ms(
			 kz_cli_bench_percentile(s->lat_ns, s->n_lat, 99))),
		     bad);
	kz_cli__jset(o, "p999",
		     json_real(kz_cli__ms(
			 kz_cli_bench_percentile(s->lat_ns, s->n_lat, 99.9))),
		     bad);
	kz_cli__jset(o, "max",
		     json_real(kz_cli__ms(
			 kz_cli_bench_percentile(s->lat_ns, s->n_lat, 100))),
		     bad);
	kz_cli__jset(o, "mean", json_real(kz_cli__mean_ms(s)), bad);
	return o;
}

/* An open-loop run's target_rate, achieved_rate and schedule, into o. */
static void kz_cli__json_schedule(json_t *o, const kz_cli_bench_schedule *sc,
				  int *bad)
{
	json_t *sub = json_object();
	kz_cli_bench_stats d;
	/* The delays are timed like latencies: the same figures. */
	memset(&d, 0, sizeof(d));
	d.lat_ns = sc->delay_ns;
	d.n_lat = sc->n_delay;
	kz_cli__jset(o, "target_rate", json_real(sc->rate), bad);
	kz_cli__jset(o, "achieved_rate",
		     json_real(kz_cli__rate(sc->sent, sc->window_s)), bad);
	if (sub != NULL) {
		kz_cli__jset(sub, "scheduled",
			     json_integer((json_int_t)sc->scheduled), bad);
		kz_cli__jset(sub, "sent", json_integer((json_int_t)sc->sent),
			     bad);
		kz_cli__jset(sub, "unsent",
			     json_integer((json_int_t)(sc->scheduled - sc->sent)),
			     bad);
		kz_cli__jset(sub, "queued",
			     json_integer((json_int_t)sc->queued), bad);
		kz_cli__jset(sub, "window_s", json_real(sc->window_s), bad);
		kz_cli__jset(sub, "send_delay_ms", kz_cli__json_latency(&d, bad),
			     bad);
	}
	kz_cli__jset(o, "schedule", sub, bad);
}

/* requests, ok, errors, throughput and latency of one stats block. */
static void kz_cli__json_stats(json_t *o, const kz_cli_bench_stats *s,
			       double elapsed_s, int *bad)
{
	kz_cli__jset(o, "requests", json_integer((json_int_t)s->requests), bad);
	kz_cli__jset(o, "ok", json_integer((json_int_t)s->ok), bad);
	kz_cli__jset(o, "connects", json_integer((json_int_t)s->connects), bad);
	kz_cli__jset(o, "errors", kz_cli__json_errors(s, bad), bad);
	kz_cli__jset(o, "throughput_ops_s",
		     json_real(kz_cli__rate(s->ok, elapsed_s)), bad);
	kz_cli__jset(o, "body_bytes_in",
		     json_integer((json_int_t)s->body_bytes_in), bad);
	kz_cli__jset(o, "body_bytes_in_s",
		     json_real(kz_cli__rate(s->body_bytes_in, elapsed_s)), bad);
	kz_cli__jset(o, "latency_ms", kz_cli__json_latency(s, bad), bad);
}

/* ---- search, payout and day: summary ------------------------------------------------ */

/* Whether the run's summary has a search section: search, or a day with
 * searches in its mix. */
static int kz_cli__has_search(const kz_cli_bench_args *a)
{
	return a->workload == KZ_CLI_BENCH_SEARCH ||
	       (a->workload == KZ_CLI_BENCH_DAY &&
		a->mix[KZ_CLI_BENCH_KIND_SEARCH] > 0);
}

/* The same for payouts. */
static int kz_cli__has_payouts(const kz_cli_bench_args *a)
{
	return a->workload == KZ_CLI_BENCH_PAYOUT ||
	       (a->workload == KZ_CLI_BENCH_DAY &&
		a->mix[KZ_CLI_BENCH_KIND_PAYOUT] > 0);
}

static void kz_cli__text_kinds(FILE *f, const kz_cli_bench_args *a,
			       const kz_cli_bench_result *res)
{
	const kz_cli_bench_search *sr = &res->search;
	const kz_cli_bench_payouts *pr = &res->payouts;
	int k, first = 1;

	if (a->workload == KZ_CLI_BENCH_DAY) {
		fprintf(f, "%-14s", "mix");
		for (k = 0; k < KZ_CLI_BENCH_KIND_COUNT; k++)
			if (a->mix[k] > 0) {
				fprintf(f, "%s%s %u", first ? "" : ", ",
					kz_cli__kind_names[k], a->mix[k]);
				first = 0;
			}
		fputc('\n', f);
		for (k = 0, first = 1; k < KZ_CLI_BENCH_KIND_COUNT; k++) {
			const kz_cli_bench_stats *s = &res->kinds[k];
			if (a->mix[k] == 0 && s->requests == 0)
				continue;
			fprintf(f,
				"%-14s%-8s %8llu ok  %8.1f ops/s  p50 %.2f  "
				"p99 %.2f ms  %llu errors\n",
				first ? "by kind" : "", kz_cli__kind_names[k],
				(unsigned long long)s->ok,
				kz_cli__rate(s->ok, res->elapsed_s),
				kz_cli__ms(kz_cli_bench_percentile(
				    s->lat_ns, s->n_lat, 50)),
				kz_cli__ms(kz_cli_bench_percentile(
				    s->lat_ns, s->n_lat, 99)),
				(unsigned long long)kz_cli__failed(s));
			first = 0;
		}
	}
	if (kz_cli__has_search(a)) {
		fprintf(f, "%-14s", "searches");
		for (k = 0, first = 1; k < KZ_CLI_BENCH_Q_COUNT; k++) {
			fprintf(f, "%s%s %llu", first ? "" : ", ",
				kz_cli__query_names[k],
				(unsigned long long)sr->by_query[k]);
			first = 0;
		}
		fprintf(f,
			"\n%-14sfull-name pages: %llu held the person, %llu "
			"did not, %llu went on (not judged)",
			"", (unsigned long long)sr->found,
			(unsigned long long)(sr->checked - sr->found),
			(unsigned long long)sr->unchecked);
		if (a->stale)
			fprintf(f, "; %llu stale misses (not errors)",
				(unsigned long long)sr->stale_misses);
		fputc('\n', f);
	}
	if (kz_cli__has_payouts(a)) {
		fprintf(f,
			"%-14s%llu paid (%llu yen) of %llu planned for %llu "
			"households; %llu already paid (409), %llu refused "
			"(422)\n",
			"payouts", (unsigned long long)pr->paid,
			(unsigned long long)pr->yen,
			(unsigned long long)pr->planned,
			(unsigned long long)pr->households,
			(unsigned long long)pr->already_paid,
			(unsigned long long)pr->refused);
		if (pr->first_refusal[0] != '\0')
			fprintf(f, "%-14sfirst refusal: %s\n", "",
				pr->first_refusal);
		if (pr->ran_out)
			fprintf(f,
				"%-14sran out of households at %.2f s: every "
				"planned payout was sent (raise --preload)\n",
				"", pr->ran_out_s);
		if (pr->program_set)
			fprintf(f,
				"%-14sprogram seikatsu_saiken had no disaster "
				"date: the bench set one 30 days ago\n",
				"");
	}
}

static void kz_cli__json_kinds(json_t *o, const kz_cli_bench_args *a,
			       const kz_cli_bench_result *res, int *bad)
{
	const kz_cli_bench_search *sr = &res->search;
	const kz_cli_bench_payouts *pr = &res->payouts;
	json_t *sub, *j;
	int k;

	if (a->workload == KZ_CLI_BENCH_DAY) {
		sub = json_object();
		for (k = 0; sub != NULL && k < KZ_CLI_BENCH_KIND_COUNT; k++)
			kz_cli__jset(sub, kz_cli__kind_names[k],
				     json_integer(a->mix[k]), bad);
		kz_cli__jset(o, "mix", sub, bad);
		sub = json_object();
		for (k = 0; sub != NULL && k < KZ_CLI_BENCH_KIND_COUNT; k++) {
			const kz_cli_bench_stats *s = &res->kinds[k];
			j = json_object();
			if (j == NULL) {
				*bad = 1;
				break;
			}
			kz_cli__jset(j, "weight", json_integer(a->mix[k]), bad);
			kz_cli__jset(j, "requests",
				     json_integer((json_int_t)s->requests),
				     bad);
			kz_cli__jset(j, "ok", json_integer((json_int_t)s->ok),
				     bad);
			kz_cli__jset(j, "errors", kz_cli__json_errors(s, bad),
				     bad);
			kz_cli__jset(j, "ops_s",
				     json_real(kz_cli__rate(s->ok,
							    res->elapsed_s)),
				     bad);
			kz_cli__jset(j, "p50_ms",
				     json_real(kz_cli__ms(kz_cli_bench_percentile(
					 s->lat_ns, s->n_lat, 50))),
				     bad);
			kz_cli__jset(j, "p90_ms",
				     json_real(kz_cli__ms(kz_cli_bench_percentile(
					 s->lat_ns, s->n_lat, 90))),
				     bad);
			kz_cli__jset(j, "p99_ms",
				     json_real(kz_cli__ms(kz_cli_bench_percentile(
					 s->lat_ns, s->n_lat, 99))),
				     bad);
			kz_cli__jset(j, "max_ms",
				     json_real(kz_cli__ms(kz_cli_bench_percentile(
					 s->lat_ns, s->n_lat, 100))),
				     bad);
			kz_cli__jset(sub, kz_cli__kind_names[k], j, bad);
		}
		kz_cli__jset(o, "by_kind", sub, bad);
	}
	if (kz_cli__has_search(a)) {
		sub = json_object();
		j = json_object();
		for (k = 0; j != NULL && k < KZ_CLI_BENCH_Q_COUNT; k++)
			kz_cli__jset(j, kz_cli__query_names[k],
				     json_integer((json_int_t)sr->by_query[k]),
				     bad);
		if (sub != NULL) {
			kz_cli__jset(sub, "by_query", j, bad);
			kz_cli__jset(sub, "checked",
				     json_integer((json_int_t)sr->checked), bad);
			kz_cli__jset(sub, "found",
				     json_integer((json_int_t)sr->found), bad);
			kz_cli__jset(sub, "unchecked",
				     json_integer((json_int_t)sr->unchecked),
				     bad);
			kz_cli__jset(sub, "stale_misses",
				     json_integer((json_int_t)sr->stale_misses),
				     bad);
		} else {
			json_decref(j);
		}
		kz_cli__jset(o, "search", sub, bad);
	}
	if (kz_cli__has_payouts(a)) {
		sub = json_object();
		if (sub != NULL) {
			kz_cli__jset(sub, "program_set",
				     json_boolean(pr->program_set), bad);
			kz_cli__jset(sub, "households",
				     json_integer((json_int_t)pr->households),
				     bad);
			kz_cli__jset(sub, "planned",
				     json_integer((json_int_t)pr->planned), bad);
			kz_cli__jset(sub, "sent",
				     json_integer((json_int_t)pr->sent), bad);
			kz_cli__jset(sub, "paid",
				     json_integer((json_int_t)pr->paid), bad);
			kz_cli__jset(sub, "already_paid",
				     json_integer((json_int_t)pr->already_paid),
				     bad);
			kz_cli__jset(sub, "refused",
				     json_integer((json_int_t)pr->refused), bad);
			kz_cli__jset(sub, "yen",
				     json_integer((json_int_t)pr->yen), bad);
			kz_cli__jset(sub, "ran_out", json_boolean(pr->ran_out),
				     bad);
			kz_cli__jset(sub, "ran_out_s",
				     pr->ran_out ? json_real(pr->ran_out_s)
						 : json_null(),
				     bad);
			kz_cli__jset(sub, "first_refusal",
				     pr->first_refusal[0]
					 ? json_string(pr->first_refusal)
					 : json_null(),
				     bad);
		}
		kz_cli__jset(o, "payouts", sub, bad);
	}
}

json_t *kz_cli_bench_report_json(const kz_cli_bench_args *a,
				 const kz_cli_bench_result *res)
{
	kz_cli_bench_stats t;
	const kz_cli_bench_records *rec = kz_cli__records_of(a, res);
	json_t *o = json_object(), *sub;
	int bad = 0;

	if (o == NULL)
		return NULL;
	kz_cli__total(res, &t);
	kz_cli__jset(o, "workload",
		     json_string(kz_cli_bench_workload_name(a->workload)), &bad);
	kz_cli__jset(o, "target", json_string(kz_cli_bench_target_name(a->target)),
		     &bad);
	kz_cli__jset(o, "consistency",
		     a->workload == KZ_CLI_BENCH_WRITE ||
			     a->workload == KZ_CLI_BENCH_UPDATE ||
			     a->workload == KZ_CLI_BENCH_PAYOUT
			 ? json_null()
			 : json_string(kz_cli__consistency(a)),
		     &bad);
	if (a->workload == KZ_CLI_BENCH_MIXED)
		kz_cli__jset(o, "read_ratio", json_real(a->read_ratio), &bad);
	if (a->workload == KZ_CLI_BENCH_PHOTO)
		kz_cli__jset(o, "photo_bytes", json_integer(a->photo_bytes),
			     &bad);
	/* update: how many records the PATCHes were spread over. */
	if (a->workload == KZ_CLI_BENCH_UPDATE)
		kz_cli__jset(o, "update_ids",
			     json_integer((json_int_t)res->pool_ids), &bad);
	kz_cli__jset(o, "endpoints", json_integer((json_int_t)res->n_endpoints),
		     &bad);
	kz_cli__jset(o, "connections", json_integer(a->connections), &bad);
	kz_cli__jset(o, "http", json_string("1.1"), &bad);
	kz_cli__jset(o, "duration_s", json_real(res->elapsed_s), &bad);
	kz_cli__json_stats(o, &t, res->elapsed_s, &bad);
	if (res->sched.rate > 0.0)
		kz_cli__json_schedule(o, &res->sched, &bad);
	sub = json_object();
	if (sub != NULL) {
		kz_cli__jset(sub, "asked", json_integer(a->record_bytes), &bad);
		kz_cli__jset(sub, "count", json_integer((json_int_t)rec->count),
			     &bad);
		kz_cli__jset(sub, "mean",
			     json_real(rec->count ? (double)rec->bytes /
							(double)rec->count
						  : 0.0),
			     &bad);
		kz_cli__jset(sub, "min", json_integer((json_int_t)rec->min),
			     &bad);
		kz_cli__jset(sub, "max", json_integer((json_int_t)rec->max),
			     &bad);
		kz_cli__jset(sub, "capped",
			     json_integer((json_int_t)rec->capped), &bad);
	}
	kz_cli__jset(o, "record_bytes", sub, &bad);
	kz_cli__jset(o, "client_cpu_s", json_real(res->cpu_s), &bad);
	sub = json_array();
	if (sub != NULL && res->ep != NULL) {
		size_t i;
		for (i = 0; i < res->n_endpoints; i++) {
			const kz_cli_bench_endpoint *e = &res->ep[i];
			json_t *j = json_object();
			if (j == NULL || json_array_append_new(sub, j) != 0) {
				bad = 1;
				break;
			}
			kz_cli__jset(j, "url", json_string(e->url), &bad);
			kz_cli__jset(j, "node",
				     e->node[0] ? json_string(e->node)
						: json_null(),
				     &bad);
			kz_cli__jset(j, "region",
				     e->region[0] ? json_string(e->region)
						  : json_null(),
				     &bad);
			kz_cli__json_stats(j, &e->st, res->elapsed_s, &bad);
		}
	}
	kz_cli__jset(o, "by_endpoint", sub, &bad);
	if (a->workload != KZ_CLI_BENCH_WRITE) {
		sub = json_object();
		if (sub != NULL) {
			kz_cli__jset(sub, "records",
				     json_integer((json_int_t)res->preload.ok),
				     &bad);
			kz_cli__jset(sub, "duration_s",
				     json_real(res->preload_s), &bad);
			kz_cli__json_stats(sub, &res->preload, res->preload_s,
					   &bad);
		}
		kz_cli__jset(o, "preload", sub, &bad);
	}
	if (a->workload == KZ_CLI_BENCH_PHOTO) {
		sub = json_object();
		if (sub != NULL) {
			kz_cli__jset(sub, "stored",
				     json_integer((json_int_t)res->photos.ok),
				     &bad);
			kz_cli__jset(sub, "duration_s",
				     json_real(res->photos_s), &bad);
			kz_cli__json_stats(sub, &res->photos, res->photos_s,
					   &bad);
		}
		kz_cli__jset(o, "photos", sub, &bad);
	}
	if (a->workload == KZ_CLI_BENCH_MIXED) {
		sub = json_object();
		if (sub != NULL)
			kz_cli__json_stats(sub, &res->op[KZ_CLI_BENCH_OP_WRITE],
					   res->elapsed_s, &bad);
		kz_cli__jset(o, "writes", sub, &bad);
		sub = json_object();
		if (sub != NULL)
			kz_cli__json_stats(sub, &res->op[KZ_CLI_BENCH_OP_READ],
					   res->elapsed_s, &bad);
		kz_cli__jset(o, "reads", sub, &bad);
	}
	kz_cli__json_kinds(o, a, res, &bad);
	if (res->failover.asked) {
		const kz_cli_bench_failover *fo = &res->failover;
		/* failover_s: null when nothing was measured, never a guess. */
		kz_cli__jset(o, "failover_s",
			     fo->exited && fo->recovered
				 ? json_real(fo->failover_s)
				 : json_null(),
			     &bad);
		sub = json_object();
		if (sub != NULL) {
			kz_cli__jset(sub, "command_started_s",
				     fo->ran ? json_real(fo->started_s)
					     : json_null(),
				     &bad);
			kz_cli__jset(sub, "killed_s",
				     fo->exited ? json_real(fo->killed_s)
						: json_null(),
				     &bad);
			kz_cli__jset(sub, "command_status",
				     fo->exited ? json_integer(fo->status)
						: json_null(),
				     &bad);
			kz_cli__jset(sub, "recovered",
				     json_boolean(fo->recovered), &bad);
			kz_cli__jset(sub, "recovered_s",
				     fo->recovered ? json_real(fo->recovered_s)
						   : json_null(),
				     &bad);
			kz_cli__jset(sub, "errors_after",
				     json_integer((json_int_t)fo->errors_after),
				     &bad);
			kz_cli__jset(sub, "probes",
				     json_integer((json_int_t)fo->probes),
				     &bad);
		}
		kz_cli__jset(o, "failover", sub, &bad);
	}
	free(t.lat_ns);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int kz_cli_bench_exit_code(const kz_cli_bench_result *res)
{
	uint64_t ok = res->op[0].ok + res->op[1].ok;
	uint64_t transport = res->op[0].transport_errors +
			     res->op[1].transport_errors +
			     res->preload.transport_errors +
			     res->photos.transport_errors;
	/* A wrong photo is the register handing out wrong data: worse
	 * than an error answer, so the run fails. */
	uint64_t bad = res->op[0].bad_bodies + res->op[1].bad_bodies;
	/* A failover run is there to make transport fail: what matters is
	 * that the writes came back. */
	if (res->failover.asked)
		return ok > 0 && bad == 0 && res->failover.recovered
			   ? KZ_CLI_BENCH_EXIT_OK
			   : KZ_CLI_BENCH_EXIT_FAIL;
	return ok > 0 && transport == 0 && bad == 0 ? KZ_CLI_BENCH_EXIT_OK
						    : KZ_CLI_BENCH_EXIT_FAIL;
}
