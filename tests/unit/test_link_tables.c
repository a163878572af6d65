/*
 * test_link_tables.c — organisations, the ID table, issuance and mediation
 * as apply decides them (node/links.c), on a real RocksDB store through
 * kz_node_apply: a code issued to A is refused when B presents it; two
 * organisations get different codes for one person; rotation gives new
 * links a new code and keeps old codes resolving; issuance tolerates the
 * usual variation and refuses none or several matches; the tables hold no
 * four facts in the clear; apply is deterministic (two stores, same bytes).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "kz_test_keys.h"
#include "linkcode.h"
#include "links.h"
#include "register.h"

#define MUNI "131016"
#define T0 1700000000000LL

static char dir[64];
static kz_stor *st;
static struct kz_node_keys keys;
static uint64_t next_index;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_links_XXXXXX");
    kz_test_store_open(dir, MUNI, &st, &keys);
    next_index = 2;
}

static void teardown(void)
{
    kz_test_store_close(dir, st, &keys);
}

TestSuite(links, .init = setup, .fini = teardown);

/* Applies cmd; returns the status and, when body is not NULL, the body. */
static int apply(Kizuna__Command *cmd, json_t **body)
{
    return kz_test_apply(st, &keys, MUNI, &next_index, cmd, body);
}

static int put_org(const char *code, const char *kind, bool rotate,
                   unsigned char key_byte)
{
    char *types[] = {"damage", "household"};
    Kizuna__Org o = KIZUNA__ORG__INIT;
    o.code = (char *)code;
    o.name = "org";
    o.kind = (char *)kind;
    o.n_info_types = 2;
    o.info_types = types;
    unsigned char key[32];
    memset(key, key_byte, sizeof key);
    Kizuna__PutOrg po = KIZUNA__PUT_ORG__INIT;
    po.org = &o;
    po.has_rotate_key = 1;
    po.rotate_key = rotate;
    po.has_new_key = 1;
    po.new_key.data = key;
    po.new_key.len = 32;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_ORG;
    cmd.put_org = &po;
    return apply(&cmd, NULL);
}

static void put_whitelist(const char *bp, const char *requester,
                          const char *provider)
{
    char *types[] = {"damage", "household"};
    Kizuna__WhitelistEntry w = KIZUNA__WHITELIST_ENTRY__INIT;
    w.bp_id = (char *)bp;
    w.requester = (char *)requester;
    w.provider = (char *)provider;
    w.n_info_types = 2;
    w.info_types = types;
    Kizuna__PutWhitelist pw = KIZUNA__PUT_WHITELIST__INIT;
    pw.entry = &w;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_WHITELIST;
    cmd.put_whitelist = &pw;
    cr_assert_eq(apply(&cmd, NULL), 201);
}

static void create(const char *id, const char *kana, const char *dob,
                   const char *sex, const char *address)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = (char *)id;
    v.name = "名前";
    v.name_kana = (char *)kana;
    v.dob = (char *)dob;
    v.sex = (char *)sex;
    v.address = (char *)address;
    v.damage = "hankai";
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    cv.victim = &v;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    cmd.create_victim = &cv;
    cr_assert_eq(apply(&cmd, NULL), 201);
}

/* Issues for org; returns the status, *code the link code or error code. */
static int issue(const char *org, const char *kana, const char *dob,
                 const char *sex, const char *address, char *code)
{
    unsigned char fresh[16];
    for (int i = 0; i < 16; i++)
        fresh[i] = (unsigned char)(next_index * 31 + (uint64_t)i);
    Kizuna__IssueLink il = KIZUNA__ISSUE_LINK__INIT;
    il.org = (char *)org;
    il.name_kana = (char *)kana;
    il.dob = (char *)dob;
    il.sex = (char *)sex;
    il.address = (char *)address;
    il.has_new_id_code = 1;
    il.new_id_code.data = fresh;
    il.new_id_code.len = 16;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_ISSUE_LINK;
    cmd.issue_link = &il;
    json_t *j;
    int status = apply(&cmd, &j);
    const char *c = status < 300
                        ? json_string_value(json_object_get(j, "link_code"))
                        : json_string_value(json_object_get(
                              json_object_get(j, "error"), "code"));
    snprintf(code, KZ_NODE_LINKCODE_MAX, "%s", c ? c : "");
    json_decref(j);
    return status;
}

static int mediate(const char *requester, const char *bp, const char *provider,
                   const char *code, json_t **body)
{
    unsigned ki;
    unsigned char block[16];
    cr_assert_eq(kz_node_linkcode_parse(code, strlen(code), &ki, block), 0);
    char id[32];
    snprintf(id, sizeof id, "m%llu", (unsigned long long)next_index);
    Kizuna__CreateMediation cm = KIZUNA__CREATE_MEDIATION__INIT;
    cm.id = id;
    cm.requester = (char *)requester;
    cm.bp_id = (char *)bp;
    cm.provider = (char *)provider;
    cm.info_type = "damage";
    cm.has_key_index = cm.has_block = 1;
    cm.key_index = ki;
    cm.block.data = block;
    cm.block.len = 16;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_MEDIATION;
    cmd.create_mediation = &cm;
    return apply(&cmd, body);
}

/* Unlinks code of org from day `from`; returns the status. */
static int unlink_from(const char *org, const char *code, const char *from)
{
    unsigned ki;
    unsigned char block[16];
    cr_assert_eq(kz_node_linkcode_parse(code, strlen(code), &ki, block), 0);
    Kizuna__Unlink ul = KIZUNA__UNLINK__INIT;
    ul.org = (char *)org;
    ul.has_key_index = ul.has_block = 1;
    ul.key_index = ki;
    ul.block.data = block;
    ul.block.len = 16;
    ul.from = (char *)from;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_UNLINK;
    cmd.unlink = &ul;
    return apply(&cmd, NULL);
}

static const char *err(json_t *j)
{
    return json_string_value(
        json_object_get(json_object_get(j, "error"), "code"));
}

Test(links, issuance_matches_variants_and_refuses_none_or_several)
{
    cr_assert_eq(put_org("A", "insurer", false, 0xa1), 201);
    create("v1", "やまだ たろう", "1950-04-01", "male",
           "宮城県石巻市霞ヶ丘2-3-4");
    create("v2", "すずき はなこ", "1980-01-01", "female", "石巻市中央1-1-1");
    create("v3", "すずき はなこ", "1980-01-01", "female", "石巻市中央1-1-1");
    char c1[KZ_NODE_LINKCODE_MAX], c2[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(issue("A", "ﾔﾏﾀﾞ ﾀﾛｳ", "1950-04-01", "male",
                       "宮城県石巻市霞ケ丘２丁目３番地４号", c1),
                 201, "%s", c1);
    cr_assert_eq(issue("A", "ヤマダタロウ", "1950-04-01", "male",
                       "宮城県石巻市霞ヶ丘二丁目3番4号", c2),
                 200, "%s", c2);
    cr_assert_str_eq(c1, c2, "a second issuance gave another code");
    cr_assert_eq(issue("A", "ヤマダタロウ", "1950-04-02", "male",
                       "宮城県石巻市霞ヶ丘2-3-4", c2),
                 404);
    cr_assert_str_eq(c2, "no_match");
    cr_assert_eq(issue("A", "ヤマダタロウ", "1950-04-01", "female",
                       "宮城県石巻市霞ヶ丘2-3-4", c2),
                 404);
    cr_assert_eq(issue("A", "スズキハナコ", "1980-01-01", "female",
                       "石巻市中央1丁目1番1号", c2),
                 409);
    cr_assert_str_eq(c2, "ambiguous_match");
    cr_assert_eq(issue("NOPE", "ヤマダタロウ", "1950-04-01", "male",
                       "宮城県石巻市霞ヶ丘2-3-4", c2),
                 403);
    cr_assert_str_eq(c2, "org_not_registered");
}

Test(links, codes_are_per_organisation_and_rotation_keeps_old_ones)
{
    cr_assert_eq(put_org("A", "insurer", false, 0xa1), 201);
    cr_assert_eq(put_org("B", "welfare", false, 0xb2), 201);
    put_whitelist("BP-A", "A", MUNI);
    put_whitelist("BP-B", "kind:welfare", MUNI);
    create("v1", "やまだ たろう", "1950-04-01", "male", "石巻市2-3-4");
    char ca[KZ_NODE_LINKCODE_MAX], cb[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(issue("A", "やまだ たろう", "1950-04-01", "male",
                       "石巻市2-3-4", ca),
                 201);
    cr_assert_eq(issue("B", "やまだ たろう", "1950-04-01", "male",
                       "石巻市2-3-4", cb),
                 201);
    cr_assert_str_neq(ca, cb);
    /* Each resolves for its owner only. */
    char vid[80], hex[33], hex2[33];
    cr_assert_eq(kz_node_link_resolve(st, &keys, MUNI, "A", ca, T0 + 100, vid,
                                      hex),
                 KZ_OK);
    cr_assert_str_eq(vid, "v1");
    cr_assert_eq(kz_node_link_resolve(st, &keys, MUNI, "B", cb, T0 + 100, vid,
                                      hex2),
                 KZ_OK);
    cr_assert_str_eq(hex, hex2, "one person, one ID code");
    cr_assert_eq(kz_node_link_resolve(st, &keys, MUNI, "B", ca, T0 + 100, vid,
                                      hex),
                 KZ_ENOTFOUND);
    json_t *j;
    cr_assert_eq(mediate("A", "BP-A", MUNI, ca, &j), 200);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(j, "answer"), "damage")),
                     "hankai");
    json_decref(j);
    /* A's code presented by B. */
    cr_assert_eq(mediate("B", "BP-B", MUNI, ca, &j), 403);
    cr_assert_str_eq(err(j), "link_code_not_issued");
    json_decref(j);
    /* B is whitelisted by kind; A is not on BP-B. */
    cr_assert_eq(mediate("A", "BP-B", MUNI, ca, &j), 403);
    cr_assert_str_eq(err(j), "not_whitelisted");
    json_decref(j);
    /* An outside provider without a code for the person. */
    put_whitelist("BP-AC", "A", "C");
    cr_assert_eq(put_org("C", "insurer", false, 0xc3), 201);
    cr_assert_eq(mediate("A", "BP-AC", "C", ca, &j), 422);
    cr_assert_str_eq(err(j), "provider_has_no_code");
    json_decref(j);

    /* Rotation: A's key 2 serves new links; the code under key 1 still
     * resolves. */
    cr_assert_eq(put_org("A", "insurer", true, 0xa9), 200);
    cr_assert_eq(mediate("A", "BP-A", MUNI, ca, NULL), 200);
    create("v2", "さとう じろう", "1960-02-02", "male", "石巻市1-1-1");
    char c2[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(issue("A", "さとう じろう", "1960-02-02", "male",
                       "石巻市1-1-1", c2),
                 201);
    unsigned k1, k2;
    unsigned char b[16];
    cr_assert_eq(kz_node_linkcode_parse(ca, strlen(ca), &k1, b), 0);
    cr_assert_eq(kz_node_linkcode_parse(c2, strlen(c2), &k2, b), 0);
    cr_assert_eq(k1, 1);
    cr_assert_eq(k2, 2);
    cr_assert_eq(kz_node_link_resolve(st, &keys, MUNI, "A", c2, T0 + 100, vid,
                                      hex),
                 KZ_OK);
    cr_assert_str_eq(vid, "v2");
}

/* The link-code tables never hold the four facts in the clear: scan every
 * stored byte of the meta, records and index column families for them. */
Test(links, tables_hold_no_facts_in_the_clear)
{
    cr_assert_eq(put_org("A", "insurer", false, 0xa1), 201);
    create("v1", "やまだ たろう", "1950-04-01", "male", "石巻市門脇町2-3-4");
    char c[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(issue("A", "やまだ たろう", "1950-04-01", "male",
                       "石巻市門脇町2-3-4", c),
                 201);
    const char *facts[] = {"やまだ", "1950-04-01", "門脇町", "ヤマダ"};
    const int cfs[] = {KZ_STOR_CF_META, KZ_STOR_CF_RECORDS, KZ_STOR_CF_INDEX};
    for (size_t f = 0; f < 3; f++) {
        kz_stor_iter *it = kz_stor_iter_new(st, cfs[f], "", 0, NULL, 0);
        const char *k, *v;
        size_t kl, vl;
        size_t seen = 0;
        while (kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
            seen++;
            for (size_t i = 0; i < 4; i++) {
                size_t n = strlen(facts[i]);
                cr_assert_null(memmem(k, kl, facts[i], n), "%s in a key",
                               facts[i]);
                cr_assert_null(memmem(v, vl, facts[i], n), "%s in a value",
                               facts[i]);
            }
        }
        kz_stor_iter_free(it);
        cr_assert_gt(seen, 0);
    }
}

Test(links, unlinked_codes_stop_resolving)
{
    cr_assert_eq(put_org("A", "insurer", false, 0xa1), 201);
    put_whitelist("BP-A", "A", MUNI);
    create("v1", "やまだ たろう", "1950-04-01", "male", "石巻市2-3-4");
    char ca[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(issue("A", "やまだ たろう", "1950-04-01", "male",
                       "石巻市2-3-4", ca),
                 201);
    char day[11];
    kz_node_date_jst(T0, day);
    cr_assert_eq(unlink_from("A", ca, day), 200);
    json_t *j;
    cr_assert_eq(mediate("A", "BP-A", MUNI, ca, &j), 403);
    cr_assert_str_eq(err(j), "link_code_unlinked");
    json_decref(j);
    char vid[80], hex[33];
    cr_assert_eq(kz_node_link_resolve(st, &keys, MUNI, "A", ca, T0 + 100, vid,
                                      hex),
                 KZ_EINVAL);
    /* The same key cannot give the person a fresh code. */
    char again[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(issue("A", "やまだ たろう", "1950-04-01", "male",
                       "石巻市2-3-4", again),
                 409);
    cr_assert_str_eq(again, "link_unlinked");
}

/* An unlink date ahead can be brought forward, never pushed back. */
Test(links, unlink_dates_only_move_earlier)
{
    cr_assert_eq(put_org("A", "insurer", false, 0xa1), 201);
    create("v1", "やまだ たろう", "1950-04-01", "male", "石巻市2-3-4");
    char ca[KZ_NODE_LINKCODE_MAX];
    cr_assert_eq(issue("A", "やまだ たろう", "1950-04-01", "male",
                       "石巻市2-3-4", ca),
                 201);
    cr_assert_eq(unlink_from("A", ca, "2099-01-01"), 200);
    cr_assert_eq(unlink_from("A", ca, "2100-01-01"), 409, "pushed back");
    cr_assert_eq(unlink_from("A", ca, "2099-01-01"), 409,
                 "the same date again");
    cr_assert_eq(unlink_from("A", ca, "2098-06-30"), 200, "brought forward");
    char vid[80], hex[33];
    cr_assert_eq(kz_node_link_resolve(st, &keys, MUNI, "A", ca, T0 + 100, vid,
                                      hex),
                 KZ_OK, "still valid until then");
}
