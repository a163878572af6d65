/*
 * test_payout_race.c — exactly-once payouts on a real 3-node cluster
 * (DOMAIN.md §6). 50 households (one- and several-person, eligible and
 * not) are each asked for 4 times, 200 requests in all, from 8 threads
 * spread over every node: per household, two requests share an
 * Idempotency-Key (a retry) and two others have keys of their own (two
 * operators in two regions). The leader is killed while they run. Then:
 * every eligible household was paid exactly once, with the amount of the
 * rules (3/4 for one person); every request with the same key got the same
 * payout id; ineligible households were refused 422 and paid nothing; the
 * ledger's total is the sum; the same key with another body is 422; the
 * export file holds every payout once, and a second export holds none.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define HOUSEHOLDS 50
#define PER_HOUSEHOLD 4
#define THREADS 8
/* The four facts of one member of household 1, for a link code. */
#define FACTS                                                                 \
    ",\"name_kana\":\"せたい はなこ\",\"dob\":\"1971-04-05\","               \
    "\"sex\":\"female\",\"address\":\"宮城県石巻市給付町1-2\""

static struct kz_it_cluster cluster;

static void setup(void)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
}

static void teardown(void)
{
    kz_it_down(&cluster);
}

struct call {
    kz_cli *cli;
    const char *method, *path, *body;
    const char *const *headers;
    long status;
    json_t *json;
};

static bool call_once(void *arg)
{
    struct call *c = arg;
    kz_cli_response r;
    json_decref(c->json);
    c->json = NULL;
    int rv = kz_cli_request(c->cli, c->method, c->path, c->headers, c->body,
                            c->body ? strlen(c->body) : 0, &r);
    if (rv != KZ_CLI_OK)
        return false; /* unreachable, or in doubt: ask again (same key) */
    c->status = r.status;
    c->json = json_loadb(r.body, r.body_len, 0, NULL);
    kz_cli_response_free(&r);
    return c->status != 503;
}

/* A call retried (same headers, so the same Idempotency-Key) until a
 * definite answer; the status, and the body in *out when not NULL. */
static long call(kz_cli *cli, const char *method, const char *path,
                 const char *const *headers, const char *body, json_t **out)
{
    struct call c = {cli, method, path, body, headers, 0, NULL};
    cr_assert(kz_it_wait(call_once, &c, 60000), "%s %s: no answer", method,
              path);
    if (out)
        *out = c.json;
    else
        json_decref(c.json);
    return c.status;
}

static const char *str(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* Household h: 1 to 3 members; every fifth is ineligible (hankai). */
static int members_of(int h)
{
    return 1 + h % 3;
}

static bool eligible(int h)
{
    return h % 5 != 4;
}

static long long amount_of(int h)
{
    return members_of(h) == 1 ? 750000 : 1000000;
}

struct job {
    int household, copy;
    char key[64];
    long status;
    char payout_id[80];
    long long amount;
};

static struct job jobs[HOUSEHOLDS * PER_HOUSEHOLD];
static atomic_int next_job;

static void body_of(int h, char *out, size_t cap)
{
    snprintf(out, cap,
             "{\"household_id\":\"race-h%02d\",\"program\":\"seikatsu_saiken\","
             "\"item\":\"basic\",\"account\":{\"bank_code\":1,"
             "\"branch_code\":%d,\"account_type\":1,\"account_number\":\"%07d\","
             "\"holder\":\"ヒサイ タロウ\"}}",
             h, 100 + h, 1000000 + h);
}

static void *worker(void *arg)
{
    long t = (long)arg;
    /* Each thread talks to one node first, the others after it. */
    char nodes[16];
    int first = 1 + (int)(t % 3);
    snprintf(nodes, sizeof nodes, "%d,%d,%d", first, first % 3 + 1,
             (first + 1) % 3 + 1);
    kz_cli *cli = kz_it_client(&cluster, "payout", nodes, 30000);
    int i;
    while ((i = atomic_fetch_add(&next_job, 1)) < HOUSEHOLDS * PER_HOUSEHOLD) {
        struct job *j = &jobs[i];
        char body[512], hdr[96];
        body_of(j->household, body, sizeof body);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", j->key);
        const char *headers[] = {hdr, NULL};
        json_t *a;
        j->status = call(cli, "POST", "/v1/payouts", headers, body, &a);
        json_t *p = j->status == 409 ? json_object_get(a, "payout") : a;
        snprintf(j->payout_id, sizeof j->payout_id, "%s", str(p, "id"));
        j->amount = json_integer_value(json_object_get(p, "amount_yen"));
        json_decref(a);
    }
    kz_cli_close(cli);
    return NULL;
}

static bool has_leader(void *arg)
{
    return kz_it_leader(arg) != 0;
}

static bool half_done(void *arg)
{
    (void)arg;
    return atomic_load(&next_job) >= HOUSEHOLDS * PER_HOUSEHOLD / 3;
}

Test(payout_race, exactly_once_through_a_leader_kill, .init = setup,
     .fini = teardown, .timeout = 600)
{
    kz_cli *op = kz_it_client(&cluster, "operator", NULL, 30000);
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 30000);
    /* The disaster happened a month ago (deadline 13 months). */
    time_t now = time(NULL) - 30 * 86400;
    struct tm tm;
    gmtime_r(&now, &tm);
    char prog[128];
    strftime(prog, sizeof prog, "{\"disaster_date\":\"%Y-%m-%d\"}", &tm);
    cr_assert_eq(call(op, "PUT", "/v1/programs/seikatsu_saiken", NULL, prog,
                      NULL),
                 200);

    /* The register: households of 1-3 people with their damage. */
    for (int h = 0; h < HOUSEHOLDS; h++)
        for (int m = 0; m < members_of(h); m++) {
            char v[512];
            snprintf(v, sizeof v,
                     "{\"name\":\"世帯 %d-%d\",\"household_id\":\"race-h%02d\","
                     "\"damage\":\"%s\"%s}",
                     h, m, h, eligible(h) ? "zenkai" : "hankai",
                     h == 1 && m == 0 ? FACTS : "");
            cr_assert_eq(call(reg, "POST", "/v1/victims", NULL, v, NULL),
                         201);
        }

    /* Four requests per household, interleaved: copies 0 and 1 share a
     * key, 2 and 3 have their own. */
    for (int i = 0; i < HOUSEHOLDS * PER_HOUSEHOLD; i++) {
        struct job *j = &jobs[i];
        j->household = i % HOUSEHOLDS;
        j->copy = i / HOUSEHOLDS;
        snprintf(j->key, sizeof j->key, "race-%02d-%d", j->household,
                 j->copy == 1 ? 0 : j->copy);
    }
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, worker, (void *)t), 0);
    /* Kill the leader once a third of the requests are taken. */
    cr_assert(kz_it_wait(half_done, NULL, 120000));
    int leader = kz_it_leader(&cluster);
    cr_assert_gt(leader, 0);
    char args[32];
    snprintf(args, sizeof args, "kill %d", leader);
    cr_assert_eq(kz_it_ctl(&cluster, args), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000));
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    snprintf(args, sizeof args, "restart %d", leader);
    cr_assert_eq(kz_it_ctl(&cluster, args), 0);

    int by[6] = {0};
    for (int i = 0; i < HOUSEHOLDS * PER_HOUSEHOLD; i++)
        by[jobs[i].status / 100 % 6]++;
    int n409 = 0, n201 = 0;
    for (int i = 0; i < HOUSEHOLDS * PER_HOUSEHOLD; i++) {
        n409 += jobs[i].status == 409;
        n201 += jobs[i].status == 201;
    }
    fprintf(stderr, "payout_race: leader %d killed; %d answered 201, %d 409 "
                    "(already paid), %d 4xx in all\n",
            leader, n201, n409, by[4]);
    /* Racing keys of one household: all but one see the payout. */
    cr_assert_geq(n409, 1);

    /* Answers: one payout id per household, whichever request made it. */
    long long want_total = 0;
    int want_count = 0;
    for (int h = 0; h < HOUSEHOLDS; h++) {
        const char *id = NULL;
        int created = 0;
        for (int c = 0; c < PER_HOUSEHOLD; c++) {
            struct job *j = &jobs[c * HOUSEHOLDS + h];
            if (!eligible(h)) {
                cr_assert_eq(j->status, 422, "household %d copy %d: %ld", h,
                             c, j->status);
                continue;
            }
            cr_assert(j->status == 201 || j->status == 409,
                      "household %d copy %d: %ld", h, c, j->status);
            created += j->status == 201;
            cr_assert_eq(j->amount, amount_of(h), "household %d", h);
            if (id == NULL)
                id = j->payout_id;
            cr_assert_str_eq(j->payout_id, id, "household %d paid twice", h);
        }
        if (eligible(h)) {
            /* The two copies with one key answer alike: both 201 when the
             * first made it, or both 409. At least one request created. */
            cr_assert_eq(jobs[h].status, jobs[HOUSEHOLDS + h].status,
                         "household %d: one key, two answers", h);
            cr_assert_geq(created, 1);
            want_total += amount_of(h);
            want_count++;
        }
    }

    /* The ledger, read by the auditor. */
    kz_cli *au = kz_it_client(&cluster, "auditor", NULL, 30000);
    const char *purpose[] = {"X-Purpose: payout audit", NULL};
    long long total = 0;
    for (int h = 0; h < HOUSEHOLDS; h++) {
        char path[96];
        snprintf(path, sizeof path, "/v1/payouts?household_id=race-h%02d", h);
        json_t *j;
        cr_assert_eq(call(au, "GET", path, purpose, NULL, &j), 200);
        json_t *ps = json_object_get(j, "payouts");
        cr_assert_eq(json_array_size(ps), eligible(h) ? 1u : 0u,
                     "household %d has %zu payouts", h, json_array_size(ps));
        total += json_integer_value(json_object_get(j, "total_yen"));
        json_decref(j);
    }
    cr_assert_eq(total, want_total);
    /* The ledger view: per program and item, equal to the sum. */
    json_t *lg;
    cr_assert_eq(call(au, "GET", "/v1/payouts/ledger", NULL, NULL, &lg), 200);
    json_t *basic = json_object_get(
        json_object_get(
            json_object_get(json_object_get(lg, "programs"), "seikatsu_saiken"),
            "items"),
        "basic");
    cr_assert_eq(json_integer_value(json_object_get(basic, "count")),
                 want_count);
    cr_assert_eq(json_integer_value(json_object_get(basic, "yen")), want_total);
    cr_assert_eq(json_integer_value(json_object_get(lg, "yen")), want_total);
    json_decref(lg);

    /* The same key with another body. */
    char body[512], hdr[96];
    body_of(1, body, sizeof body);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", jobs[0].key);
    const char *headers[] = {hdr, NULL};
    kz_cli *pay = kz_it_client(&cluster, "payout", NULL, 30000);
    cr_assert_eq(call(pay, "POST", "/v1/payouts", headers, body, NULL), 422);

    /* Export: every payout once, then none. */
    json_t *x;
    cr_assert_eq(call(pay, "POST", "/v1/payouts/export", NULL, "{}", &x), 200);
    cr_assert_eq(json_integer_value(json_object_get(x, "count")), want_count);
    cr_assert_eq(json_integer_value(json_object_get(x, "total_yen")),
                 want_total);
    const char *b64 = str(x, "file_base64");
    size_t bl = strlen(b64);
    unsigned char *file = malloc(bl);
    int fl = EVP_DecodeBlock(file, (const unsigned char *)b64, (int)bl);
    cr_assert_gt(fl, 0);
    while (fl > 0 && file[fl - 1] == 0)
        fl--; /* base64 padding */
    cr_assert_eq(fl % 122, 0, "records of 120 bytes + CR LF");
    cr_assert_eq(fl / 122, want_count + 3);
    /* The trailer: kind 8, count N6, total N12. */
    const unsigned char *tr = file + (fl / 122 - 2) * 122;
    cr_assert_eq(tr[0], '8');
    char n6[7], n12[13];
    memcpy(n6, tr + 1, 6);
    n6[6] = '\0';
    memcpy(n12, tr + 7, 12);
    n12[12] = '\0';
    cr_assert_eq(atoi(n6), want_count);
    cr_assert_eq(atoll(n12), want_total);
    free(file);
    json_decref(x);
    cr_assert_eq(call(pay, "POST", "/v1/payouts/export", NULL, "{}", &x), 200);
    cr_assert_eq(json_integer_value(json_object_get(x, "count")), 0);
    json_decref(x);

    /* The welfare council asks the municipality, through mediation, which
     * payouts the household received: amounts, no bank account. */
    kz_cli *org = kz_it_client(&cluster, "org-SHAKYO01", NULL, 30000);
    json_t *lc;
    const char *four = "{\"name_kana\":\"せたい はなこ\",\"dob\":\"1971-04-05\","
                       "\"sex\":\"female\",\"address\":\"宮城県石巻市給付町1-2\"}";
    long st = call(org, "POST", "/v1/linkcodes", NULL, four, &lc);
    cr_assert(st == 201 || st == 200, "link code: %ld", st);
    char med[256];
    snprintf(med, sizeof med,
             "{\"bp_id\":\"BP-SHAKYO-PAYOUTS\",\"provider\":\"131016\","
             "\"link_code\":\"%s\",\"info_type\":\"payouts\"}",
             str(lc, "link_code"));
    json_decref(lc);
    json_t *m;
    cr_assert_eq(call(org, "POST", "/v1/mediations", NULL, med, &m), 200);
    json_t *ans = json_object_get(m, "answer");
    json_t *ps = json_object_get(ans, "payouts");
    cr_assert_eq(json_array_size(ps), 1, "%s", json_dumps(m, 0));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(ps, 0),
                                                    "amount_yen")),
                 1000000);
    cr_assert_null(json_object_get(json_array_get(ps, 0), "account"));
    cr_assert_str_eq(str(json_array_get(ps, 0), "status"), "exported");
    json_decref(m);
    kz_cli_close(org);

    kz_cli_close(op);
    kz_cli_close(reg);
    kz_cli_close(au);
    kz_cli_close(pay);
}
