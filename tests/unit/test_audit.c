/*
 * test_audit.c — the hash-chained audit log (node/audit.h) as apply writes
 * it on a real RocksDB store: every register command records who asked,
 * about which record, with the outcome apply decided (also for refused
 * commands); refusals are appended as given; the chain verifies, and a
 * flipped byte, a removed record or a record moved to another seq breaks it
 * at that record.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "keys.h"
#include "kz_test_keys.h"
#include "records.h"
#include "register.h"

#define MUNI "131016"

static char dir[64];
static kz_stor *st;
static struct kz_node_keys keys;
static uint64_t next_index;

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_audit_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char err[256], path[4096];
    char db[128];
    snprintf(db, sizeof db, "%s/db", dir);
    cr_assert_eq(kz_stor_open(db, &st, err, sizeof err), KZ_OK, "%s", err);
    const uint32_t ids[] = {1};
    kz_test_keys_open(&keys, dir, "master.key", ids, 1, path, sizeof path);
    kz_test_keys_init(st, &keys, MUNI, 1);
    next_index = 2;
}

static void teardown(void)
{
    kz_stor_close(st);
    kz_node_keys_wipe(&keys);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(audit, .init = setup, .fini = teardown);

static Kizuna__AuditContext who(const char *role, const char *purpose)
{
    Kizuna__AuditContext c = KIZUNA__AUDIT_CONTEXT__INIT;
    c.org = "131016";
    c.role = (char *)role;
    c.cert_sha256 = "ab12";
    c.purpose = (char *)purpose;
    c.request_id = "req";
    c.has_node_id = 1;
    c.node_id = 2;
    c.region = "osaka";
    return c;
}

/* Applies a command (with the caller's audit context) and returns its
 * status. */
static int apply(Kizuna__Command *cmd)
{
    cmd->municipality = MUNI;
    cmd->has_time_ms = 1;
    cmd->time_ms = 1700000000000LL + (int64_t)next_index;
    size_t len = kizuna__command__get_packed_size(cmd);
    uint8_t *buf = malloc(len);
    kizuna__command__pack(cmd, buf);
    char *res = NULL;
    size_t rl = 0;
    bool changed;
    int rv = kz_node_apply(st, &keys, next_index++, (char *)buf, len, true,
                           &res, &rl, &changed);
    free(buf);
    cr_assert_eq(rv, KZ_OK);
    cr_assert_not_null(res);
    int status = atoi((char[4]){res[0], res[1], res[2], 0});
    free(res);
    return status;
}

static int create(const char *id)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = (char *)id;
    v.name = "監査 太郎";
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    cv.victim = &v;
    Kizuna__AuditContext ctx = who("registrar", "intake");
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    cmd.create_victim = &cv;
    cmd.audit = &ctx;
    return apply(&cmd);
}

static json_t *list_all(void)
{
    uint64_t next;
    return kz_node_audit_list(st, MUNI, 0, INT64_MIN, INT64_MAX, 1000, NULL,
                              &next);
}

Test(audit, commands_are_recorded_with_outcome_and_chain_verifies)
{
    cr_assert_eq(create("A1"), 201);
    cr_assert_eq(create("A1"), 409); /* refused by apply: still recorded */
    Kizuna__AuditContext ctx = who("caseworker", "safety check");
    ctx.action = "refused POST /v1/victims";
    ctx.has_outcome = 1;
    ctx.outcome = 403;
    Kizuna__AuditContext *entries[1] = {&ctx};
    Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
    aa.n_entries = 1;
    aa.entries = entries;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
    cmd.audit_append = &aa;
    cr_assert_eq(apply(&cmd), 200);

    json_t *items = list_all();
    cr_assert_eq(json_array_size(items), 3);
    json_t *a = json_array_get(items, 0), *b = json_array_get(items, 1),
           *c = json_array_get(items, 2);
    cr_assert_str_eq(json_string_value(json_object_get(a, "action")),
                     "victim.create");
    cr_assert_str_eq(json_string_value(json_object_get(a, "subject")), "A1");
    cr_assert_eq(json_integer_value(json_object_get(a, "outcome")), 201);
    cr_assert_str_eq(json_string_value(json_object_get(a, "purpose")),
                     "intake");
    cr_assert_str_eq(json_string_value(json_object_get(a, "role")),
                     "registrar");
    cr_assert_eq(json_integer_value(json_object_get(b, "outcome")), 409);
    cr_assert_str_eq(json_string_value(json_object_get(c, "action")),
                     "refused POST /v1/victims");
    cr_assert_eq(json_integer_value(json_object_get(c, "outcome")), 403);
    /* The chain: each record names its predecessor's hash. */
    cr_assert_str_eq(json_string_value(json_object_get(b, "prev_hash")),
                     json_string_value(json_object_get(a, "hash")));
    cr_assert_str_eq(json_string_value(json_object_get(c, "prev_hash")),
                     json_string_value(json_object_get(b, "hash")));
    /* No names in the log. */
    char *dump = json_dumps(items, 0);
    cr_assert_null(strstr(dump, "監査"));
    free(dump);
    json_decref(items);

    struct kz_node_audit_check chk;
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert(chk.ok, "%s", chk.why);
    cr_assert_eq(chk.entries, 3);
}

/* Overwrites record seq with the bytes given (or deletes it). */
static void tamper(uint64_t seq, const char *val, size_t len, bool del)
{
    char key[64];
    int kl = snprintf(key, sizeof key, "%s/a/%016llx", MUNI,
                      (unsigned long long)seq);
    kz_stor_batch *b = kz_stor_batch_new(st);
    if (del)
        kz_stor_batch_delete(b, KZ_STOR_CF_RECORDS, key, (size_t)kl);
    else
        kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, (size_t)kl, val, len);
    cr_assert_eq(kz_stor_batch_commit(st, b, next_index++), KZ_OK);
    kz_stor_batch_free(b);
}

static char *raw(uint64_t seq, size_t *len)
{
    char key[64], *v;
    int kl = snprintf(key, sizeof key, "%s/a/%016llx", MUNI,
                      (unsigned long long)seq);
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_RECORDS, key, (size_t)kl, &v, len),
                 KZ_OK);
    return v;
}

Test(audit, a_flipped_byte_breaks_the_chain_at_that_record)
{
    for (int i = 0; i < 5; i++) {
        char id[8];
        snprintf(id, sizeof id, "B%d", i);
        cr_assert_eq(create(id), 201);
    }
    size_t len;
    char *orig = raw(3, &len);
    char *v = malloc(len);
    /* A changed purpose: record 3 still decodes and links back, but record
     * 4 no longer links to it. */
    memcpy(v, orig, len);
    char *p = memmem(v, len, "intake", 6);
    cr_assert_not_null(p);
    p[5] = 'f';
    tamper(3, v, len, false);
    struct kz_node_audit_check chk;
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 4, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);
    /* A changed link (its last bytes): caught at record 3 itself. */
    memcpy(v, orig, len);
    v[len - 1] ^= 0x01;
    tamper(3, v, len, false);
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 3, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);
    /* Restored: whole again. */
    tamper(3, orig, len, false);
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert(chk.ok, "%s", chk.why);
    free(v);
    free(orig);
}

Test(audit, removed_or_moved_records_break_the_chain)
{
    for (int i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "C%d", i);
        cr_assert_eq(create(id), 201);
    }
    size_t len;
    char *v2 = raw(2, &len);
    tamper(2, NULL, 0, true);
    struct kz_node_audit_check chk;
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 2);
    /* Put it back under another seq's key: still refused. */
    tamper(2, v2, len, false);
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert(chk.ok, "restored: %s", chk.why);
    size_t len4;
    char *v4 = raw(4, &len4);
    tamper(4, v2, len, false);
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 4);
    free(v2);
    free(v4);
    /* Truncating the tail is caught by the head. */
    tamper(4, NULL, 0, true);
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert_not(chk.ok);
}

Test(audit, list_filters_by_time_and_subject_and_pages)
{
    for (int i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "D%d", i % 2);
        cr_assert_eq(create(id), i < 2 ? 201 : 409);
    }
    /* Times are 1700000000000 + index (indexes 2..7). */
    uint64_t next;
    json_t *a = kz_node_audit_list(st, MUNI, 0, 1700000000004LL,
                                   1700000000006LL, 100, NULL, &next);
    cr_assert_eq(json_array_size(a), 3);
    cr_assert_eq(next, 0);
    json_decref(a);
    a = kz_node_audit_list(st, MUNI, 0, INT64_MIN, INT64_MAX, 100, "D1",
                           &next);
    cr_assert_eq(json_array_size(a), 3);
    json_decref(a);
    /* Pages of 4 then 2, without overlap. */
    a = kz_node_audit_list(st, MUNI, 0, INT64_MIN, INT64_MAX, 4, NULL, &next);
    cr_assert_eq(json_array_size(a), 4);
    cr_assert_eq(next, 4);
    json_decref(a);
    a = kz_node_audit_list(st, MUNI, next, INT64_MIN, INT64_MAX, 4, NULL,
                           &next);
    cr_assert_eq(json_array_size(a), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(a, 0),
                                                    "seq")),
                 5);
    cr_assert_eq(next, 0);
    json_decref(a);

    int64_t ms;
    cr_assert(kz_node_parse_time("2023-11-14T22:13:20.004Z", &ms));
    cr_assert_eq(ms, 1700000000004LL);
    cr_assert(kz_node_parse_time("2023-11-14T22:13:20Z", &ms));
    cr_assert_eq(ms, 1700000000000LL);
    cr_assert_not(kz_node_parse_time("2023-11-14 22:13:20Z", &ms));
    cr_assert_not(kz_node_parse_time("2023-11-14T22:13:20+09:00", &ms));
    cr_assert_not(kz_node_parse_time("2023-02-30T00:00:00Z", &ms));
}
