/*
 * make_seeds.c — writes the seed corpus of fuzz_command: packed
 * kizuna.Command messages as a proposer builds them (http_api.c), plus the
 * driver's "SEAL" form and a few near-misses.
 *
 *   build-fuzz/bin/make_seeds tests/fuzz/corpus/command
 *
 * Run by hand when the schema changes; the seeds it writes are committed,
 * the program is not run by any build. The seeds refer to each other in
 * the order the fuzzer reads a fresh corpus (by name): shelters first, then
 * victims created in them, then patches and notes of those victims, so a
 * patch seed finds its record in the driver's long-lived store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kizuna.pb-c.h"

#define MUNI "131016"
#define T0 1700000000000LL

static const char *dir;

static void write_file(const char *name, const void *prefix, size_t plen,
                       const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(prefix, 1, plen, f) != plen ||
        fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Packs cmd into NAME, and with prefix (e.g. "SEAL") into prefix_NAME. */
static void put(const char *name, const Kizuna__Command *cmd,
                const char *prefix)
{
    size_t len = kizuna__command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        exit(1);
    kizuna__command__pack(cmd, buf);
    write_file(name, "", 0, buf, len);
    if (prefix != NULL) {
        char pname[256];
        snprintf(pname, sizeof pname, "%s_%s", prefix, name);
        write_file(pname, prefix, strlen(prefix), buf, len);
    }
    free(buf);
}

static Kizuna__Command command(long long t)
{
    Kizuna__Command c = KIZUNA__COMMAND__INIT;
    c.has_time_ms = 1;
    c.time_ms = T0 + t;
    c.request_id = "req-0001";
    c.municipality = MUNI;
    return c;
}

static void shelters(void)
{
    Kizuna__Shelter s = KIZUNA__SHELTER__INIT;
    s.id = "sh-001";
    s.name = "第一小学校 体育館";
    s.address = "宮城県石巻市1-2-3";
    s.has_capacity = 1;
    s.capacity = 350;
    Kizuna__PutShelter ps = KIZUNA__PUT_SHELTER__INIT;
    ps.shelter = &s;
    Kizuna__Command c = command(1);
    c.op_case = KIZUNA__COMMAND__OP_PUT_SHELTER;
    c.put_shelter = &ps;
    put("10_shelter_put", &c, NULL);
    s.id = "sh-002";
    s.name = "市民センター";
    s.has_capacity = 0;
    s.address = NULL;
    put("11_shelter_put_second", &c, NULL);
    s.id = "../sh 3";
    put("12_shelter_bad_id", &c, NULL);
}

static void victims(void)
{
    static char *needs[] = {"elderly", "medication"};
    static char *recipients[] = {"family", "red_cross"};
    Kizuna__Consent consent = KIZUNA__CONSENT__INIT;
    consent.has_disclose_safety = 1;
    consent.disclose_safety = 1;
    consent.n_recipients = 2;
    consent.recipients = recipients;
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = "018bcfe56800a1b2c3d4e5f6a7";
    v.name = "山田 太郎";
    v.name_kana = "やまだ たろう";
    v.dob = "1958-04-01";
    v.sex = "male";
    v.address = "東京都千代田区千代田1-1";
    v.household_id = "hh-0001";
    v.damage = "hankai";
    v.n_needs = 2;
    v.needs = needs;
    v.shelter_id = "sh-001";
    v.status = "safe";
    v.contact = "090-1234-5678";
    v.consent = &consent;
    v.damage_certified_on = "2024-01-05";
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    cv.victim = &v;
    Kizuna__Command c = command(2);
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    c.create_victim = &cv;
    put("20_create_full", &c, "SEAL");

    Kizuna__Victim m = KIZUNA__VICTIM__INIT;
    m.id = "018bcfe56801ffeeddccbbaa99";
    m.name = "佐藤 花子";
    cv.victim = &m;
    put("21_create_min", &c, NULL);
    m.id = "018bcfe5680200000000000001";
    m.name = "Satoh Ken'ichi";
    m.shelter_id = "sh-002";
    m.sex = "female";
    m.status = "missing";
    put("22_create_in_shelter", &c, NULL);
    m.id = "not a valid id/";
    put("23_create_bad_id", &c, NULL);
    cv.victim = NULL;
    put("24_create_no_victim", &c, NULL);
}

static void patches(void)
{
    static char *set[] = {"shelter_id", "status", "needs", "name_kana"};
    static char *needs[] = {"infant"};
    Kizuna__Victim f = KIZUNA__VICTIM__INIT;
    f.shelter_id = "sh-002";
    f.status = "injured";
    f.n_needs = 1;
    f.needs = needs;
    Kizuna__PatchVictim p = KIZUNA__PATCH_VICTIM__INIT;
    p.id = "018bcfe56800a1b2c3d4e5f6a7";
    p.fields = &f;
    p.n_set = 4;
    p.set = set;
    Kizuna__Command c = command(3);
    c.op_case = KIZUNA__COMMAND__OP_PATCH_VICTIM;
    c.patch_victim = &p;
    put("30_patch_move_shelter", &c, "SEAL");
    p.has_if_match = 1;
    p.if_match = 1;
    put("31_patch_stale_if_match", &c, NULL);
    static char *bad_set[] = {"version"};
    p.has_if_match = 0;
    p.n_set = 1;
    p.set = bad_set;
    put("32_patch_unknown_field", &c, NULL);
    static char *name_set[] = {"name"};
    p.set = name_set;
    put("33_patch_remove_name", &c, NULL);
    p.id = "018bcfe568ffffffffffffffff";
    put("34_patch_unknown_id", &c, NULL);
}

/* Registrations the leader merged into one entry (CreateEach): a new
 * one in a shelter, the same id again (a conflict), one whose id exists
 * (from 20_create_full), a malformed id, and one with no victim. */
static void merged_creates(void)
{
    Kizuna__AuditContext who = KIZUNA__AUDIT_CONTEXT__INIT;
    who.org = "131016";
    who.role = "registrar";
    who.request_id = "req-0002";
    Kizuna__Victim a = KIZUNA__VICTIM__INIT;
    a.id = "018bcfe5680300000000000001";
    a.name = "高橋 一";
    a.shelter_id = "sh-001";
    a.sex = "female";
    Kizuna__Victim b = KIZUNA__VICTIM__INIT;
    b.id = "018bcfe56800a1b2c3d4e5f6a7";
    b.name = "山田 太郎";
    Kizuna__Victim bad = KIZUNA__VICTIM__INIT;
    bad.id = "not a valid id/";
    bad.name = "x";
    Kizuna__EachCreate e[5];
    Kizuna__EachCreate *ep[5];
    Kizuna__Victim *vs[5] = {&a, &a, &b, &bad, NULL};
    for (int i = 0; i < 5; i++) {
        kizuna__each_create__init(&e[i]);
        e[i].has_time_ms = 1;
        e[i].time_ms = T0 + 10 + i;
        e[i].request_id = "req-0002";
        e[i].audit = i == 4 ? NULL : &who;
        e[i].victim = vs[i];
        ep[i] = &e[i];
    }
    Kizuna__CreateEach ce = KIZUNA__CREATE_EACH__INIT;
    ce.n_creates = 5;
    ce.creates = ep;
    Kizuna__Command c = command(2);
    c.request_id = NULL;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_EACH;
    c.create_each = &ce;
    put("25_create_each", &c, "SEAL");
}

static void notes(void)
{
    Kizuna__Note n = KIZUNA__NOTE__INIT;
    n.status = "missing";
    n.text = "最後に見たのは駅前\n午後3時頃";
    n.author = "caseworker-12";
    n.last_known_location = "石巻駅";
    Kizuna__AddNote a = KIZUNA__ADD_NOTE__INIT;
    a.victim_id = "018bcfe56801ffeeddccbbaa99";
    a.note = &n;
    Kizuna__Command c = command(4);
    c.op_case = KIZUNA__COMMAND__OP_ADD_NOTE;
    c.add_note = &a;
    put("40_note", &c, "SEAL");
    n.status = "sleeping";
    put("41_note_bad_status", &c, NULL);
}

static void others(void)
{
    Kizuna__Command c = command(5);
    put("50_no_op", &c, NULL);
    c.municipality = NULL;
    put("51_no_municipality", &c, NULL);
    c.municipality = "999999/v/";
    Kizuna__Shelter s = KIZUNA__SHELTER__INIT;
    s.id = "sh-001";
    s.name = "other municipality";
    Kizuna__PutShelter ps = KIZUNA__PUT_SHELTER__INIT;
    ps.shelter = &s;
    c.op_case = KIZUNA__COMMAND__OP_PUT_SHELTER;
    c.put_shelter = &ps;
    put("52_odd_municipality", &c, NULL);

    /* A key rotation with a blob no keyring opens (the driver starts over
     * with a fresh store after it). */
    static uint8_t junk[65];
    memset(junk, 0xA5, sizeof junk);
    Kizuna__KeyAdd ka = KIZUNA__KEY_ADD__INIT;
    ka.has_data_key_id = 1;
    ka.data_key_id = 2;
    ka.has_data_key = 1;
    ka.data_key.data = junk;
    ka.data_key.len = sizeof junk;
    c = command(6);
    c.op_case = KIZUNA__COMMAND__OP_KEY_ADD;
    c.key_add = &ka;
    put("90_key_add_unopenable", &c, NULL);

    /* Claims to be sealed, is not. */
    write_file("60_kzsc_garbage", "KZSC", 4, "\x01\x00\x00\x00\x01garbage", 12);
    write_file("61_empty", "", 0, "", 0);
}

/* Organisations, whitelist, issuance matching 20_create_full, mediation
 * and reply (with a block no key opens: the refusal paths), unlink, the
 * audit queue's hand-over and retention. */
static void links(void)
{
    static char *types[] = {"damage", "household"};
    static uint8_t key[32], block[16], id[16];
    memset(key, 0x5a, sizeof key);
    memset(block, 0x3c, sizeof block);
    memset(id, 0x11, sizeof id);
    Kizuna__Org o = KIZUNA__ORG__INIT;
    o.code = "HOKEN01";
    o.name = "insurer";
    o.kind = "insurer";
    o.n_info_types = 2;
    o.info_types = types;
    Kizuna__PutOrg po = KIZUNA__PUT_ORG__INIT;
    po.org = &o;
    po.has_new_key = 1;
    po.new_key.data = key;
    po.new_key.len = sizeof key;
    Kizuna__Command c = command(7);
    c.op_case = KIZUNA__COMMAND__OP_PUT_ORG;
    c.put_org = &po;
    put("70_org_put", &c, "SEAL");
    po.has_rotate_key = 1;
    po.rotate_key = 1;
    put("71_org_rotate", &c, NULL);

    Kizuna__WhitelistEntry w = KIZUNA__WHITELIST_ENTRY__INIT;
    w.bp_id = "BP-1";
    w.requester = "kind:insurer";
    w.provider = MUNI;
    w.n_info_types = 2;
    w.info_types = types;
    Kizuna__PutWhitelist pw = KIZUNA__PUT_WHITELIST__INIT;
    pw.entry = &w;
    c.op_case = KIZUNA__COMMAND__OP_PUT_WHITELIST;
    c.put_whitelist = &pw;
    put("72_whitelist_put", &c, NULL);

    Kizuna__IssueLink il = KIZUNA__ISSUE_LINK__INIT;
    il.org = "HOKEN01";
    il.name_kana = "ヤマダ タロウ";
    il.dob = "1958-04-01";
    il.sex = "male";
    il.address = "東京都千代田区千代田１丁目１番";
    il.has_new_id_code = 1;
    il.new_id_code.data = id;
    il.new_id_code.len = sizeof id;
    c.op_case = KIZUNA__COMMAND__OP_ISSUE_LINK;
    c.issue_link = &il;
    put("73_link_issue", &c, "SEAL");

    Kizuna__CreateMediation cm = KIZUNA__CREATE_MEDIATION__INIT;
    cm.id = "med-1";
    cm.requester = "HOKEN01";
    cm.bp_id = "BP-1";
    cm.provider = MUNI;
    cm.info_type = "damage";
    cm.has_key_index = cm.has_block = 1;
    cm.key_index = 1;
    cm.block.data = block;
    cm.block.len = sizeof block;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_MEDIATION;
    c.create_mediation = &cm;
    put("74_mediation", &c, NULL);

    Kizuna__ReplyMediation rm = KIZUNA__REPLY_MEDIATION__INIT;
    rm.id = "med-1";
    rm.provider = "HOKEN01";
    rm.answer = "{\"members\":2}";
    c.op_case = KIZUNA__COMMAND__OP_REPLY_MEDIATION;
    c.reply_mediation = &rm;
    put("75_mediation_reply", &c, NULL);

    Kizuna__Unlink ul = KIZUNA__UNLINK__INIT;
    ul.org = "HOKEN01";
    ul.has_key_index = ul.has_block = 1;
    ul.key_index = 1;
    ul.block.data = block;
    ul.block.len = sizeof block;
    ul.from = "2024-04-01";
    c.op_case = KIZUNA__COMMAND__OP_UNLINK;
    c.unlink = &ul;
    put("76_unlink", &c, NULL);

    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    ctx.org = MUNI;
    ctx.role = "caseworker";
    ctx.action = "victim.read";
    ctx.subject = "018bcfe56800a1b2c3d4e5f6a7";
    Kizuna__AuditContext *entries[2] = {&ctx, &ctx};
    Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
    aa.n_entries = 2;
    aa.entries = entries;
    aa.has_queue_node = aa.has_queue_first_seq = 1;
    aa.queue_node = 77;
    aa.queue_first_seq = 1;
    c.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
    c.audit_append = &aa;
    put("77_audit_queue", &c, NULL);
    /* Read audits as a node proposes them: the leader merges these
     * (kz_node_merge_audits), sealed or not. */
    aa.has_queue_node = aa.has_queue_first_seq = 0;
    aa.queue_node = aa.queue_first_seq = 0;
    put("77_audit_reads", &c, "SEAL");

    static uint8_t jpeg[64] = {0xff, 0xd8, 0xff, 0xe0};
    Kizuna__Photo ph = KIZUNA__PHOTO__INIT;
    ph.victim_id = "018bcfe56800a1b2c3d4e5f6a7";
    ph.content_type = "image/jpeg";
    ph.has_data = 1;
    ph.data.data = jpeg;
    ph.data.len = sizeof jpeg;
    Kizuna__PutPhoto pp = KIZUNA__PUT_PHOTO__INIT;
    pp.photo = &ph;
    c.op_case = KIZUNA__COMMAND__OP_PUT_PHOTO;
    c.put_photo = &pp;
    put("79_photo_put", &c, "SEAL");
    put("7a_photo_replace", &c, NULL);

    Kizuna__AuditPrune ap = KIZUNA__AUDIT_PRUNE__INIT;
    ap.has_before_ms = 1;
    ap.before_ms = T0 + 3;
    c.op_case = KIZUNA__COMMAND__OP_AUDIT_PRUNE;
    c.audit_prune = &ap;
    put("78_audit_prune", &c, NULL);
}

/* Identity checks (idcheck.c): a challenge, a card bound, a verdict on
 * it, a CRL, a fallback. */
static void identity(void)
{
    Kizuna__Command c = command(10);
    static uint8_t nonce[32] = {1, 2, 3}, fresh[16] = {7}, h[32] = {9};
    static uint8_t crl[] = "-----BEGIN X509 CRL-----\n";
    Kizuna__Challenge ch = KIZUNA__CHALLENGE__INIT;
    ch.id = "0123456789abcdef0123456789abcdef";
    ch.has_nonce = ch.has_expires_ms = 1;
    ch.nonce.data = nonce;
    ch.nonce.len = sizeof nonce;
    ch.expires_ms = T0 + 300000;
    ch.org = MUNI;
    Kizuna__CreateChallenge cc = KIZUNA__CREATE_CHALLENGE__INIT;
    cc.challenge = &ch;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_CHALLENGE;
    c.create_challenge = &cc;
    put("80_challenge", &c, NULL);

    Kizuna__BindCard bc = KIZUNA__BIND_CARD__INIT;
    bc.victim_id = "018bcfe56800a1b2c3d4e5f6a7";
    bc.key_sha256 =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    bc.serial = "4787025ABC";
    bc.has_new_id_code = 1;
    bc.new_id_code.data = fresh;
    bc.new_id_code.len = sizeof fresh;
    c.op_case = KIZUNA__COMMAND__OP_BIND_CARD;
    c.bind_card = &bc;
    put("81_card_bind", &c, NULL);

    Kizuna__VerifyIdentity vi = KIZUNA__VERIFY_IDENTITY__INIT;
    vi.challenge_id = ch.id;
    vi.has_nonce_sha256 = vi.has_crl_version = 1;
    vi.nonce_sha256.data = h;
    vi.nonce_sha256.len = sizeof h;
    vi.outcome = "ok";
    vi.key_sha256 = bc.key_sha256;
    vi.serial = bc.serial;
    vi.org = MUNI;
    c.op_case = KIZUNA__COMMAND__OP_VERIFY_IDENTITY;
    c.verify_identity = &vi;
    put("82_verify", &c, NULL);

    Kizuna__IdentityCrl ic = KIZUNA__IDENTITY_CRL__INIT;
    ic.has_crl = ic.has_this_update_ms = ic.has_next_update_ms = 1;
    ic.crl.data = crl;
    ic.crl.len = sizeof crl - 1;
    ic.this_update_ms = T0;
    ic.next_update_ms = T0 + 86400000;
    Kizuna__PutCrl pc = KIZUNA__PUT_CRL__INIT;
    pc.crl = &ic;
    c.op_case = KIZUNA__COMMAND__OP_PUT_CRL;
    c.put_crl = &pc;
    put("83_crl_put", &c, NULL);

    Kizuna__IdentityFallback f = KIZUNA__IDENTITY_FALLBACK__INIT;
    f.id = "fb01";
    f.victim_id = bc.victim_id;
    f.org = MUNI;
    f.confirmed_by = "staff-1";
    f.has_photo_compared = f.has_knowledge_check = f.has_new_id_code = 1;
    f.photo_compared = f.knowledge_check = 1;
    f.new_id_code.data = fresh;
    f.new_id_code.len = sizeof fresh;
    c.op_case = KIZUNA__COMMAND__OP_IDENTITY_FALLBACK;
    c.identity_fallback = &f;
    put("84_fallback", &c, "SEAL");
}

/* Payouts (payouts.c): a program, a payout, an export. */
static void payouts(void)
{
    Kizuna__Command c = command(20);
    static uint8_t sha[32] = {5};
    Kizuna__Program pr = KIZUNA__PROGRAM__INIT;
    pr.id = "seikatsu_saiken";
    pr.disaster_date = "2023-11-01";
    pr.table_json = "{\"amounts_yen\":{\"hankai\":{\"basic\":300000}}}";
    Kizuna__PutProgram pp = KIZUNA__PUT_PROGRAM__INIT;
    pp.program = &pr;
    c.op_case = KIZUNA__COMMAND__OP_PUT_PROGRAM;
    c.put_program = &pp;
    put("90_program_put", &c, NULL);

    Kizuna__BankAccount a = KIZUNA__BANK_ACCOUNT__INIT;
    a.has_bank_code = a.has_branch_code = a.has_account_type = 1;
    a.bank_code = 1;
    a.branch_code = 123;
    a.account_type = 1;
    a.account_number = "1234567";
    a.holder = "ヒサイ タロウ";
    Kizuna__CreatePayout cp = KIZUNA__CREATE_PAYOUT__INIT;
    cp.id = "p0001";
    cp.household_id = "h-0001";
    cp.program = "seikatsu_saiken";
    cp.item = "basic";
    cp.account = &a;
    cp.idempotency_key = "key-1";
    cp.has_request_sha256 = 1;
    cp.request_sha256.data = sha;
    cp.request_sha256.len = sizeof sha;
    cp.org = MUNI;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_PAYOUT;
    c.create_payout = &cp;
    put("91_payout", &c, "SEAL");

    Kizuna__TransferHeader th = KIZUNA__TRANSFER_HEADER__INIT;
    th.requester_code = "1234567890";
    th.requester_name = "キズナシ";
    th.has_bank_code = th.has_branch_code = th.has_account_type = 1;
    th.bank_code = 1;
    th.branch_code = 1;
    th.account_type = 1;
    th.account_number = "7654321";
    th.transfer_mmdd = "0315";
    Kizuna__ExportPayouts ep = KIZUNA__EXPORT_PAYOUTS__INIT;
    ep.export_id = "x-0001";
    ep.header = &th;
    c.op_case = KIZUNA__COMMAND__OP_EXPORT_PAYOUTS;
    c.export_payouts = &ep;
    put("92_export", &c, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    shelters();
    victims();
    merged_creates();
    patches();
    notes();
    others();
    links();
    identity();
    payouts();
    return 0;
}
