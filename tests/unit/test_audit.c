/*
 * test_audit.c — the hash-chained audit log (node/audit.h) as apply writes
 * it on a real RocksDB store: every register command records who asked,
 * about which record, with the outcome apply decided (also for refused
 * commands); refusals are appended as given; the chain verifies, and a
 * flipped byte, a removed record or a record moved to another seq breaks it
 * at that record. Retention: prune deletes the oldest records by time (at
 * most max, never the head) and moves the checkpoint; the chain then
 * verifies from the checkpoint, and a changed or removed first record, a
 * forged checkpoint, or a break prune was asked to delete is still caught.
 */
#include <criterion/criterion.h>
#include <openssl/sha.h>
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

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_audit_XXXXXX");
    kz_test_store_open(dir, MUNI, &st, &keys);
    next_index = 2;
}

static void teardown(void)
{
    kz_test_store_close(dir, st, &keys);
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
    return kz_test_apply(st, &keys, MUNI, &next_index, cmd, NULL);
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

/* ------------------------------------------------------------ retention */

/* Registers n people (one audit record each, times increasing with the raft
 * index). */
static void fill(int n, const char *tag)
{
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "%s%d", tag, i);
        cr_assert_eq(create(id), 201);
    }
}

static int64_t at_of(uint64_t seq)
{
    size_t len;
    char *v = raw(seq, &len);
    Kizuna__AuditRecord *rec =
        kizuna__audit_record__unpack(NULL, len, (const uint8_t *)v);
    cr_assert_not_null(rec);
    int64_t at = rec->at_ms;
    kizuna__audit_record__free_unpacked(rec, NULL);
    free(v);
    return at;
}

static bool stored(uint64_t seq)
{
    char key[64], *v;
    size_t len;
    int kl = snprintf(key, sizeof key, "%s/a/%016llx", MUNI,
                      (unsigned long long)seq);
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, (size_t)kl, &v, &len);
    cr_assert(rv == KZ_OK || rv == KZ_ENOTFOUND);
    if (rv == KZ_OK)
        free(v);
    return rv == KZ_OK;
}

/* Prunes in a batch of its own and commits it, as apply would: with the
 * record that witnesses the checkpoint (subject
 * audit-checkpoint-<seq>-<16 bytes of hash>) appended in the same batch. */
static uint64_t prune(int64_t before_ms, uint64_t max,
                      struct kz_node_audit_checkpoint *cp)
{
    kz_stor_batch *b = kz_stor_batch_new(st);
    cr_assert_not_null(b);
    uint64_t n = 99;
    struct kz_node_audit_checkpoint c;
    cr_assert_eq(kz_node_audit_prune(st, b, MUNI, before_ms, max, &n, &c),
                 KZ_OK);
    if (cp != NULL)
        *cp = c;
    if (n > 0) {
        char subject[80];
        int off = snprintf(subject, sizeof subject, "audit-checkpoint-%llu-",
                           (unsigned long long)c.seq);
        for (int i = 0; i < 16; i++)
            off += snprintf(subject + off, 3, "%02x", c.hash[i]);
        struct kz_node_audit_head h;
        cr_assert_eq(kz_node_audit_load_head(st, &h), KZ_OK);
        Kizuna__AuditContext ctx = who("system", "retention");
        ctx.action = "audit.prune";
        ctx.subject = subject;
        cr_assert_eq(kz_node_audit_append(b, MUNI, &h, next_index,
                                          1700000000000LL + (int64_t)next_index,
                                          &ctx),
                     KZ_OK);
        kz_node_audit_put_head(b, &h);
    }
    cr_assert_eq(kz_stor_batch_commit(st, b, next_index++), KZ_OK);
    kz_stor_batch_free(b);
    return n;
}

static struct kz_node_audit_check verify(void)
{
    struct kz_node_audit_check chk;
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    return chk;
}

static void hex(const unsigned char *p, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

Test(audit, prune_by_time_leaves_a_chain_that_verifies_from_the_checkpoint)
{
    fill(20, "P");
    json_t *before = list_all();
    const char *hash7 = json_string_value(
        json_object_get(json_array_get(before, 6), "hash"));
    cr_assert_not_null(hash7);
    int64_t at7 = at_of(7);

    struct kz_node_audit_checkpoint cp;
    cr_assert_eq(prune(at_of(8), 1000, &cp), 7);
    cr_assert_eq(cp.seq, 7);
    cr_assert_eq(cp.at_ms, at7);
    char h[65];
    hex(cp.hash, h);
    cr_assert_str_eq(h, hash7, "the checkpoint is record 7's hash");
    json_decref(before);
    struct kz_node_audit_checkpoint loaded;
    cr_assert_eq(kz_node_audit_load_checkpoint(st, &loaded), KZ_OK);
    cr_assert_eq(memcmp(&loaded, &cp, sizeof cp), 0);
    cr_assert_not(stored(1));
    cr_assert_not(stored(7));
    cr_assert(stored(8));

    struct kz_node_audit_check chk = verify();
    cr_assert(chk.ok, "%s at %llu", chk.why,
              (unsigned long long)chk.first_bad);
    cr_assert_eq(chk.entries, 14); /* 8..20 and the prune's record */
    cr_assert_eq(chk.first_seq, 8);
    cr_assert_eq(chk.checkpoint.seq, 7);
    cr_assert_eq(memcmp(chk.checkpoint.hash, cp.hash, 32), 0);

    /* The same cut again prunes nothing; the log grows on as before. */
    cr_assert_eq(prune(at_of(8), 1000, &cp), 0);
    cr_assert_eq(cp.seq, 7);
    fill(2, "Q");
    chk = verify();
    cr_assert(chk.ok, "%s", chk.why);
    cr_assert_eq(chk.entries, 16);
    cr_assert_eq(chk.first_seq, 8);
}

Test(audit, prune_deletes_at_most_max)
{
    fill(20, "M");
    struct kz_node_audit_checkpoint cp;
    cr_assert_eq(prune(INT64_MAX, 5, &cp), 5);
    cr_assert_eq(cp.seq, 5);
    cr_assert_eq(prune(INT64_MAX, 3, &cp), 3, "goes on from the checkpoint");
    cr_assert_eq(cp.seq, 8);
    cr_assert_eq(prune(INT64_MAX, 0, &cp), 0);
    cr_assert_eq(cp.seq, 8);
    struct kz_node_audit_check chk = verify();
    cr_assert(chk.ok, "%s", chk.why);
    cr_assert_eq(chk.entries, 14); /* 9..22: two prune records */
    cr_assert_eq(chk.first_seq, 9);
}

Test(audit, prune_never_deletes_the_head)
{
    struct kz_node_audit_checkpoint cp;
    cr_assert_eq(prune(INT64_MAX, 1000, &cp), 0, "an empty log");
    cr_assert_eq(cp.seq, 0);
    cr_assert_eq(kz_node_audit_load_checkpoint(st, &cp), KZ_OK);
    cr_assert_eq(cp.seq, 0, "no checkpoint written for nothing pruned");

    fill(20, "H");
    cr_assert_eq(prune(INT64_MAX, 1000, &cp), 19);
    cr_assert_eq(cp.seq, 19);
    cr_assert(stored(20), "the head survives");
    struct kz_node_audit_check chk = verify();
    cr_assert(chk.ok, "%s", chk.why);
    cr_assert_eq(chk.entries, 2); /* 20 and the prune's record, 21 */
    cr_assert_eq(chk.first_seq, 20);
    /* The prune's own record is the head now: only 20 can go. */
    cr_assert_eq(prune(INT64_MAX, 1000, &cp), 1);
    cr_assert_eq(cp.seq, 20);
    cr_assert(stored(21));
    chk = verify();
    cr_assert(chk.ok, "%s", chk.why);
    cr_assert_eq(chk.entries, 2);
    cr_assert_eq(chk.first_seq, 21);
}

Test(audit, after_prune_a_changed_first_record_breaks_the_chain)
{
    fill(20, "F");
    cr_assert_eq(prune(at_of(6), 1000, NULL), 5);
    size_t len;
    char *orig = raw(6, &len);
    char *v = malloc(len);
    /* Its link (the last bytes): caught at 6 against the checkpoint. */
    memcpy(v, orig, len);
    v[len - 1] ^= 0x01;
    tamper(6, v, len, false);
    struct kz_node_audit_check chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 6, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);
    /* Its content: caught at 7, which no longer links to it. */
    memcpy(v, orig, len);
    char *p = memmem(v, len, "intake", 6);
    cr_assert_not_null(p);
    p[5] = 'f';
    tamper(6, v, len, false);
    chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 7, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);
    tamper(6, orig, len, false);
    chk = verify();
    cr_assert(chk.ok, "restored: %s", chk.why);
    free(v);
    free(orig);
}

Test(audit, after_prune_a_removed_first_record_breaks_the_chain)
{
    fill(20, "G");
    cr_assert_eq(prune(at_of(6), 1000, NULL), 5);
    tamper(6, NULL, 0, true);
    struct kz_node_audit_check chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 6, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);
    cr_assert_str_eq(chk.why, "record missing");
}

/* Overwrites meta "audit/checkpoint". */
static void tamper_checkpoint(const unsigned char *val, size_t len)
{
    kz_stor_batch *b = kz_stor_batch_new(st);
    kz_stor_batch_put(b, KZ_STOR_CF_META, "audit/checkpoint", 16, val, len);
    cr_assert_eq(kz_stor_batch_commit(st, b, next_index++), KZ_OK);
    kz_stor_batch_free(b);
}

Test(audit, a_forged_checkpoint_breaks_the_chain)
{
    fill(20, "K");
    cr_assert_eq(prune(at_of(6), 1000, NULL), 5);
    char *orig;
    size_t len;
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_META, "audit/checkpoint", 16,
                             &orig, &len),
                 KZ_OK);
    cr_assert_eq(len, 48);
    unsigned char v[48];

    /* Another hash: the first record kept no longer links to it. */
    memcpy(v, orig, 48);
    v[8 + 31] ^= 0x80;
    tamper_checkpoint(v, 48);
    struct kz_node_audit_check chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 6, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);

    /* An earlier seq (as if record 5 were still to come): it is missing. */
    memcpy(v, orig, 48);
    v[7] = 4;
    tamper_checkpoint(v, 48);
    chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 5, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);

    /* A later seq (hiding record 6): out of order at 7. */
    v[7] = 6;
    tamper_checkpoint(v, 48);
    chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 7, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);

    /* Not a checkpoint at all. */
    tamper_checkpoint(v, 47);
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_ECORRUPT);

    /* No checkpoint: the chain would have to start at 1. */
    kz_stor_batch *b = kz_stor_batch_new(st);
    kz_stor_batch_delete(b, KZ_STOR_CF_META, "audit/checkpoint", 16);
    cr_assert_eq(kz_stor_batch_commit(st, b, next_index++), KZ_OK);
    kz_stor_batch_free(b);
    chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 1, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);

    tamper_checkpoint((unsigned char *)orig, 48);
    chk = verify();
    cr_assert(chk.ok, "restored: %s", chk.why);
    free(orig);
}

Test(audit, prune_stops_before_a_break_so_it_stays_visible)
{
    fill(10, "S");
    size_t len;
    char *orig = raw(3, &len);
    char *v = malloc(len);
    memcpy(v, orig, len);
    char *p = memmem(v, len, "intake", 6);
    cr_assert_not_null(p);
    p[5] = 'f';
    tamper(3, v, len, false);
    /* 1..3 link (3 was changed, not its link); 4 does not link to the
     * changed 3, so prune stops there and the break is still reported. */
    struct kz_node_audit_checkpoint cp;
    cr_assert_eq(prune(INT64_MAX, 1000, &cp), 3);
    cr_assert_eq(cp.seq, 3);
    struct kz_node_audit_check chk = verify();
    cr_assert_not(chk.ok);
    cr_assert_eq(chk.first_bad, 4, "first bad %llu (%s)",
                 (unsigned long long)chk.first_bad, chk.why);
    cr_assert_eq(prune(INT64_MAX, 1000, &cp), 0);
    free(v);
    free(orig);

    /* A gap: prune stops at it too. */
    tamper(6, NULL, 0, true);
    cr_assert_eq(prune(INT64_MAX, 1000, &cp), 0);
    cr_assert(stored(4) && stored(5));
}

Test(audit, list_pages_through_what_is_left_after_prune)
{
    fill(20, "L");
    cr_assert_eq(prune(at_of(6), 1000, NULL), 5);
    uint64_t next = 0, want = 6;
    int pages = 0;
    do {
        json_t *a = kz_node_audit_list(st, MUNI, next, INT64_MIN, INT64_MAX,
                                       4, NULL, &next);
        pages++;
        for (size_t i = 0; i < json_array_size(a); i++)
            cr_assert_eq(json_integer_value(json_object_get(
                             json_array_get(a, i), "seq")),
                         (json_int_t)want++);
        json_decref(a);
    } while (next != 0);
    cr_assert_eq(want, 22, "listed up to %llu", (unsigned long long)want);
    cr_assert_eq(pages, 4);
    /* Starting inside the pruned range lands on the first record kept. */
    json_t *a = kz_node_audit_list(st, MUNI, 2, INT64_MIN, INT64_MAX, 1, NULL,
                                   &next);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(a, 0),
                                                    "seq")),
                 6);
    json_decref(a);
}

/* Retention as the leader proposes it: an AuditPrune command prunes, and its
 * own record (with the checkpoint it left) joins the chain, which still
 * verifies. The same command again prunes nothing more. */
Test(audit, prune_command_records_its_checkpoint_in_the_chain)
{
    fill(10, "P");
    int64_t cut = at_of(5) + 1; /* records 1..5 are older */
    Kizuna__AuditPrune ap = KIZUNA__AUDIT_PRUNE__INIT;
    ap.has_before_ms = 1;
    ap.before_ms = cut;
    Kizuna__AuditContext ctx = who("system", "retention");
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_PRUNE;
    cmd.audit_prune = &ap;
    cmd.audit = &ctx;
    cr_assert_eq(apply(&cmd), 200);
    struct kz_node_audit_check chk = verify();
    cr_assert(chk.ok, "%s", chk.why);
    cr_assert_eq(chk.first_seq, 6);
    cr_assert_eq(chk.entries, 6); /* 6..10 and the prune's record */
    json_t *items = list_all();
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(last, "action")),
                     "audit.prune");
    const char *subj = json_string_value(json_object_get(last, "subject"));
    cr_assert(strncmp(subj, "audit-checkpoint-5-", 19) == 0, "%s", subj);
    json_decref(items);
    cr_assert_eq(apply(&cmd), 200);
    chk = verify();
    cr_assert(chk.ok);
    cr_assert_eq(chk.first_seq, 6);
}

/* The forgery a checkpoint alone cannot catch: delete records and move the
 * checkpoint to the real seq and hash of the last one deleted. The links
 * all hold, but no prune in the chain recorded that checkpoint. */
Test(audit, a_checkpoint_moved_over_deleted_records_has_no_witness)
{
    fill(20, "W");
    cr_assert_eq(prune(at_of(6), 1000, NULL), 5);
    cr_assert(verify().ok);
    size_t len;
    char *r8 = raw(8, &len);
    unsigned char v[48] = {0};
    v[7] = 8; /* seq 8, its hash, its time */
    SHA256((const unsigned char *)r8, len, v + 8);
    free(r8);
    for (uint64_t seq = 6; seq <= 8; seq++)
        tamper(seq, NULL, 0, true);
    tamper_checkpoint(v, 48);
    struct kz_node_audit_check chk = verify();
    cr_assert_not(chk.ok, "records 6-8 vanished unnoticed");
    cr_assert(strstr(chk.why, "checkpoint") != NULL, "%s", chk.why);
}

/* GET /v1/audit?org=: only the calls of one organisation. */
Test(audit, list_filters_by_organisation)
{
    Kizuna__AuditContext a = who("org", "bp:BP-1"), b = who("org", "bp:BP-2");
    a.org = "HOKEN01";
    a.action = "mediation.request";
    b.org = "SHAKYO01";
    b.action = "mediation.request";
    Kizuna__AuditContext *entries[3] = {&a, &b, &a};
    Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
    aa.n_entries = 3;
    aa.entries = entries;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
    cmd.audit_append = &aa;
    cr_assert_eq(apply(&cmd), 200);
    uint64_t next;
    json_t *h = kz_node_audit_list_org(st, MUNI, 0, INT64_MIN, INT64_MAX, 100,
                                       NULL, "HOKEN01", &next);
    cr_assert_eq(json_array_size(h), 2);
    for (size_t i = 0; i < 2; i++)
        cr_assert_str_eq(json_string_value(json_object_get(
                             json_array_get(h, i), "org")),
                         "HOKEN01");
    json_decref(h);
    h = kz_node_audit_list_org(st, MUNI, 0, INT64_MIN, INT64_MAX, 100, NULL,
                               "NOBODY", &next);
    cr_assert_eq(json_array_size(h), 0);
    json_decref(h);
}

/* A node's AuditAppend of one read, sealed as it proposes it. */
static char *read_audit(const char *rid, int64_t t, const char *muni,
                        bool queued, size_t *len)
{
    Kizuna__AuditContext ctx = who("caseworker", "safety check");
    ctx.request_id = (char *)rid;
    ctx.action = "victim.read";
    ctx.subject = "A1";
    Kizuna__AuditContext *entries[1] = {&ctx};
    Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
    aa.n_entries = 1;
    aa.entries = entries;
    if (queued) { /* a stale read's queued record: never merged */
        aa.has_queue_node = 1;
        aa.queue_node = 2;
        aa.has_queue_first_seq = 1;
        aa.queue_first_seq = 1;
    }
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.municipality = (char *)muni;
    cmd.has_time_ms = 1;
    cmd.time_ms = t;
    cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
    cmd.audit_append = &aa;
    size_t n = kizuna__command__get_packed_size(&cmd);
    char *buf = malloc(n);
    cr_assert_not_null(buf);
    kizuna__command__pack(&cmd, (uint8_t *)buf);
    char *sealed = kz_test_seal(&keys, buf, n, len);
    free(buf);
    return sealed;
}

static int merge(char **cmds, const size_t *lens, size_t n, char **out,
                 size_t *out_len)
{
    return kz_node_merge_audits(&keys, (const char *const *)cmds, lens, n,
                                out, out_len);
}

/* The leader's merge of read audits (kz_cons_propose_merged): commands of
 * several nodes become one sealed command whose apply leaves every record,
 * in order, on one chain; a record keeps the time of its own command when
 * that was earlier than the merged one's. Anything else is refused. */
Test(audit, read_audits_of_several_nodes_merge_into_one_command)
{
    const int64_t t0 = 1700000000000LL;
    char *cmds[3];
    size_t lens[3];
    cmds[0] = read_audit("r1", t0 + 10, MUNI, false, &lens[0]);
    cmds[1] = read_audit("r2", t0 + 30, MUNI, false, &lens[1]);
    cmds[2] = read_audit("r3", t0 + 20, MUNI, false, &lens[2]);
    char *out = NULL;
    size_t out_len = 0;
    cr_assert_eq(merge(cmds, lens, 3, &out, &out_len), KZ_OK);
    cr_assert_eq(memcmp(out, "KZSC", 4), 0, "the merge is not sealed");
    char *res = NULL;
    size_t rl = 0;
    bool changed;
    cr_assert_eq(kz_node_apply(st, &keys, next_index++, out, out_len, true,
                               &res, &rl, &changed),
                 KZ_OK);
    cr_assert_eq(strncmp(res, "200", 3), 0, "%s", res);
    free(res);
    free(out);

    json_t *items = list_all();
    cr_assert_eq(json_array_size(items), 3);
    const char *rid[3] = {"r1", "r2", "r3"};
    for (size_t i = 0; i < 3; i++) {
        json_t *r = json_array_get(items, i);
        cr_assert_str_eq(json_string_value(json_object_get(r, "request_id")),
                         rid[i]);
        cr_assert_eq(json_integer_value(json_object_get(r, "raft_index")),
                     (json_int_t)next_index - 1);
        cr_assert_str_eq(json_string_value(json_object_get(r, "at")),
                         json_string_value(json_object_get(
                             json_array_get(items, 0), "at")));
    }
    /* r2's command was the latest: its time is the record's, nothing
     * more; r1 and r3 keep their own. */
    cr_assert_null(json_object_get(json_array_get(items, 1), "accessed_at"));
    char when[40];
    kz_node_format_time(t0 + 10, when, sizeof when);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(items, 0), "accessed_at")),
                     when);
    kz_node_format_time(t0 + 20, when, sizeof when);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(items, 2), "accessed_at")),
                     when);
    json_decref(items);
    struct kz_node_audit_check chk;
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert(chk.ok, "%s", chk.why);
    cr_assert_eq(chk.entries, 3);

    /* Refused: a queued stale-read record, another municipality, not an
     * AuditAppend. */
    char *other[3];
    size_t olen[3];
    other[0] = read_audit("q", t0, MUNI, true, &olen[0]);
    other[1] = read_audit("m", t0, "999999", false, &olen[1]);
    Kizuna__Command prune = KIZUNA__COMMAND__INIT;
    Kizuna__AuditPrune ap = KIZUNA__AUDIT_PRUNE__INIT;
    prune.municipality = MUNI;
    prune.op_case = KIZUNA__COMMAND__OP_AUDIT_PRUNE;
    prune.audit_prune = &ap;
    size_t pn = kizuna__command__get_packed_size(&prune);
    char *pbuf = malloc(pn);
    kizuna__command__pack(&prune, (uint8_t *)pbuf);
    other[2] = kz_test_seal(&keys, pbuf, pn, &olen[2]);
    free(pbuf);
    for (size_t i = 0; i < 3; i++) {
        char *pair[2] = {cmds[0], other[i]};
        size_t pl[2] = {lens[0], olen[i]};
        out = NULL;
        cr_assert_eq(merge(pair, pl, 2, &out, &out_len), KZ_EINVAL,
                     "case %zu merged", i);
        cr_assert_null(out);
        free(other[i]);
    }
    for (size_t i = 0; i < 3; i++)
        free(cmds[i]);
}
