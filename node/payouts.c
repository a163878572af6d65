/*
 * payouts.c — payout programs, the payout ledger and the transfer-file
 * export on the replicated state (payouts.h has the key layout).
 *
 * Happy path of a payout: apply finds no earlier answer under the caller's
 * Idempotency-Key, reads the program, the household (members and their
 * damage) and whether this item was paid, computes the amount with
 * payout_rules.h, and writes in one batch the sealed payout, the "paid"
 * marker of (program, household, item), the household and export indexes
 * and the idempotency record holding the answer. Every step reads the state
 * as of this entry, so the log orders racing requests and the second one
 * sees the first's payout.
 *
 * Refusals write nothing (register.c adds only the audit record). Apply
 * reads no clock: the apply date is the command's time in Japan.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "kz_error.h"
#include "links.h"
#include "payout_rules.h"
#include "payouts.h"
#include "records.h"
#include "register.h"
#include "zengin.h"

#define EXPORT_CAP 100000
#define HOLDER_MAX 30 /* bytes of the 全銀 payee name field */

static const char *const program_ids[] = {"seikatsu_saiken", "gienkin", NULL};

static const char *default_name(const char *id)
{
    return strcmp(id, "gienkin") == 0 ? "義援金" : "被災者生活再建支援金";
}

/* ------------------------------------------------------------- programs */

/* The stored program id, or a new one holding the defaults (*out freed by
 * the caller either way). KZ_ENOTFOUND for an unknown id. */
static int load_program(kz_stor *st, const char *muni, const char *id,
                        Kizuna__Program **out)
{
    if (!kz_node_valid_code(id, program_ids))
        return KZ_ENOTFOUND;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'g', id, NULL);
    int rv = kz_node_get_plain(st, key, kl, &kizuna__program__descriptor,
                               (ProtobufCMessage **)out);
    if (rv != KZ_ENOTFOUND)
        return rv;
    /* The default, built as a decoded message so it frees the same way. */
    Kizuna__Program d = KIZUNA__PROGRAM__INIT;
    d.id = (char *)id;
    d.name = (char *)default_name(id);
    size_t n = kizuna__program__get_packed_size(&d);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return KZ_ENOMEM;
    kizuna__program__pack(&d, buf);
    *out = kizuna__program__unpack(NULL, n, buf);
    free(buf);
    return *out ? KZ_OK : KZ_ENOMEM;
}

/* The program's table (its own, else the default). */
static void program_table(const Kizuna__Program *p, struct kz_payout_table *t)
{
    char err[8];
    if (p->table_json == NULL ||
        kz_payout_table_parse(p->table_json, t, err, sizeof err) != 0)
        kz_payout_table_default(t);
}

static json_t *program_to_json(const Kizuna__Program *p)
{
    json_t *table = json_null();
    if (strcmp(p->id, "seikatsu_saiken") == 0) {
        struct kz_payout_table t;
        program_table(p, &t);
        char *s = kz_payout_table_json(&t);
        table = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        if (table == NULL)
            table = json_null();
    }
    return json_pack("{s:s,s:s,s:s?,s:I,s:b,s:o,s:I}", "id", p->id, "name",
                     p->name ? p->name : default_name(p->id), "disaster_date",
                     p->disaster_date, "per_household_yen",
                     (json_int_t)p->per_household_yen, "closed",
                     (int)p->closed, "table", table, "version",
                     (json_int_t)p->version);
}

json_t *kz_node_program_json(kz_stor *st, const char *muni, const char *id)
{
    Kizuna__Program *p;
    if (load_program(st, muni, id, &p) != KZ_OK)
        return NULL;
    json_t *o = program_to_json(p);
    kizuna__program__free_unpacked(p, NULL);
    return o;
}

json_t *kz_node_programs_json(kz_stor *st, const char *muni)
{
    json_t *a = json_array();
    for (const char *const *id = program_ids; *id; id++) {
        json_t *o = kz_node_program_json(st, muni, *id);
        if (o)
            json_array_append_new(a, o);
    }
    return a;
}

static int perr(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

int kz_node_program_from_json(const char *id, const json_t *body,
                              Kizuna__Program *out, char **table_json,
                              char *err, size_t errlen)
{
    *table_json = NULL;
    if (!kz_node_valid_code(id, program_ids))
        return perr(err, errlen,
                    "unknown program (programs: seikatsu_saiken, gienkin)");
    if (!json_is_object(body))
        return perr(err, errlen, "expected a JSON object");
    bool saiken = strcmp(id, "seikatsu_saiken") == 0;
    kizuna__program__init(out);
    out->id = (char *)id;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (strcmp(k, "name") == 0) {
            if (!kz_node_valid_text(json_string_value(v), 128))
                return perr(err, errlen, "name: text, at most 128 bytes");
            out->name = (char *)json_string_value(v);
        } else if (strcmp(k, "disaster_date") == 0) {
            if (!kz_node_valid_date(json_string_value(v)))
                return perr(err, errlen, "disaster_date: YYYY-MM-DD");
            out->disaster_date = (char *)json_string_value(v);
        } else if (strcmp(k, "per_household_yen") == 0) {
            if (saiken)
                return perr(err, errlen,
                            "per_household_yen: only for gienkin");
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 100000000)
                return perr(err, errlen,
                            "per_household_yen: integer yen, 0 to 100000000");
            out->has_per_household_yen = 1;
            out->per_household_yen = json_integer_value(v);
        } else if (strcmp(k, "closed") == 0) {
            if (!json_is_boolean(v))
                return perr(err, errlen, "closed: a boolean");
            out->has_closed = 1;
            out->closed = json_is_true(v);
        } else if (strcmp(k, "table") == 0) {
            if (!saiken)
                return perr(err, errlen, "table: only for seikatsu_saiken");
            if (!json_is_object(v))
                return perr(err, errlen, "table: an object (see GET "
                                         "/v1/programs/seikatsu_saiken)");
            struct kz_payout_table t;
            char *text = json_dumps(v, JSON_COMPACT);
            int rv = text ? kz_payout_table_parse(text, &t, err, errlen)
                          : perr(err, errlen, "out of memory");
            free(text);
            if (rv != 0)
                return -1;
            *table_json = kz_payout_table_json(&t);
            if (*table_json == NULL)
                return perr(err, errlen, "out of memory");
            out->table_json = *table_json;
        } else {
            snprintf(err, errlen, "%.60s: unknown field", k);
            return -1;
        }
    }
    return 0;
}

static int apply_program(kz_stor *st, kz_stor_batch *b, const char *muni,
                         uint64_t index, const Kizuna__Command *cmd,
                         struct kz_node_result *r)
{
    const Kizuna__Program *in = cmd->put_program->program;
    struct kz_payout_table t;
    char err[8];
    if (in == NULL || in->id == NULL ||
        (in->name && !kz_node_valid_text(in->name, 128)) ||
        (in->disaster_date && !kz_node_valid_date(in->disaster_date)) ||
        (in->table_json &&
         kz_payout_table_parse(in->table_json, &t, err, sizeof err) != 0) ||
        (in->has_per_household_yen &&
         (in->per_household_yen < 0 || in->per_household_yen > 100000000))) {
        kz_node_result_error(r, 400, "bad_command", "program incomplete");
        return KZ_OK;
    }
    Kizuna__Program *p;
    int rv = load_program(st, muni, in->id, &p);
    if (rv == KZ_ENOTFOUND) {
        kz_node_result_error(r, 404, "not_found", "no such program");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    /* Merge: what the command names replaces; the rest stays. */
    Kizuna__Program m = *p;
    if (in->name)
        m.name = in->name;
    if (in->disaster_date)
        m.disaster_date = in->disaster_date;
    if (in->table_json)
        m.table_json = in->table_json;
    if (in->has_per_household_yen) {
        m.has_per_household_yen = 1;
        m.per_household_yen = in->per_household_yen;
    }
    if (in->has_closed) {
        m.has_closed = 1;
        m.closed = in->closed;
    }
    m.has_version = m.has_updated_ms = 1;
    m.version = index;
    m.updated_ms = cmd->time_ms;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'g', in->id, NULL);
    kz_node_put_plain(b, key, kl, &m.base);
    snprintf(r->subject, sizeof r->subject, "%s", in->id);
    kz_node_result_set(r, 200, program_to_json(&m));
    kizuna__program__free_unpacked(p, NULL);
    return KZ_OK;
}

/* -------------------------------------------------------------- payouts */

static bool digits(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The account can go into a transfer file. */
static const char *account_problem(const Kizuna__BankAccount *a)
{
    char kana[HOLDER_MAX + 1];
    if (a == NULL)
        return "account: required";
    if (!a->has_bank_code || a->bank_code > 9999)
        return "account.bank_code: 0 to 9999";
    if (!a->has_branch_code || a->branch_code > 999)
        return "account.branch_code: 0 to 999";
    if (!a->has_account_type ||
        !(a->account_type == 1 || a->account_type == 2 ||
          a->account_type == 4 || a->account_type == 9))
        return "account.account_type: 1 (普通), 2 (当座), 4 (貯蓄) or 9";
    if (!digits(a->account_number, 1, 7))
        return "account.account_number: 1 to 7 digits";
    if (a->holder == NULL || a->holder[0] == '\0' ||
        kz_zengin_kana(a->holder, kana, sizeof kana, NULL) != 0)
        return "account.holder: the payee's name in kana (katakana, "
               "hiragana, A-Z, digits), at most 30 half-width characters";
    char name[16];
    if ((a->bank_name &&
         kz_zengin_kana(a->bank_name, name, sizeof name, NULL) != 0) ||
        (a->branch_name &&
         kz_zengin_kana(a->branch_name, name, sizeof name, NULL) != 0))
        return "account.bank_name, branch_name: kana, at most 15 half-width "
               "characters";
    return NULL;
}

static int uint_field(const json_t *o, const char *k, unsigned max,
                      uint32_t *out, bool *has)
{
    json_t *v = json_object_get(o, k);
    if (v == NULL || !json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > (json_int_t)max)
        return -1;
    *out = (uint32_t)json_integer_value(v);
    *has = true;
    return 0;
}

int kz_node_payout_request_from_json(const json_t *body,
                                     Kizuna__CreatePayout *out,
                                     Kizuna__BankAccount *acct, char *err,
                                     size_t errlen)
{
    static const char *const fields[] = {"household_id", "program", "item",
                                         "account", NULL};
    static const char *const afields[] = {
        "bank_code",      "bank_name",      "branch_code", "branch_name",
        "account_type",   "account_number", "holder",      NULL};
    kizuna__create_payout__init(out);
    kizuna__bank_account__init(acct);
    if (!json_is_object(body))
        return perr(err, errlen, "expected a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (!kz_node_valid_code(k, fields)) {
            snprintf(err, errlen, "%.60s: unknown field", k);
            return -1;
        }
    }
    out->household_id =
        (char *)json_string_value(json_object_get(body, "household_id"));
    out->program = (char *)json_string_value(json_object_get(body, "program"));
    out->item = (char *)json_string_value(json_object_get(body, "item"));
    if (!kz_node_valid_ref(out->household_id))
        return perr(err, errlen, "household_id: required, a household id");
    if (!kz_node_valid_code(out->program, program_ids))
        return perr(err, errlen,
                    "program: seikatsu_saiken or gienkin");
    if (!kz_node_valid_text(out->item, 32))
        return perr(err, errlen,
                    "item: basic, build, repair or rent (seikatsu_saiken); "
                    "donation (gienkin)");
    json_t *a = json_object_get(body, "account");
    if (!json_is_object(a))
        return perr(err, errlen, "account: required, an object");
    json_object_foreach(a, k, v) {
        if (!kz_node_valid_code(k, afields)) {
            snprintf(err, errlen, "account.%.60s: unknown field", k);
            return -1;
        }
        if (!json_is_integer(v) && !json_is_string(v)) {
            snprintf(err, errlen, "account.%.60s: a string or a number", k);
            return -1;
        }
    }
    bool hb = false, hr = false, ht = false;
    if (uint_field(a, "bank_code", 9999, &acct->bank_code, &hb) != 0)
        return perr(err, errlen, "account.bank_code: required, 0 to 9999");
    if (uint_field(a, "branch_code", 999, &acct->branch_code, &hr) != 0)
        return perr(err, errlen, "account.branch_code: required, 0 to 999");
    if (uint_field(a, "account_type", 9, &acct->account_type, &ht) != 0)
        return perr(err, errlen, "account.account_type: 1, 2, 4 or 9");
    acct->has_bank_code = hb;
    acct->has_branch_code = hr;
    acct->has_account_type = ht;
    acct->account_number =
        (char *)json_string_value(json_object_get(a, "account_number"));
    acct->holder = (char *)json_string_value(json_object_get(a, "holder"));
    acct->bank_name = (char *)json_string_value(json_object_get(a, "bank_name"));
    acct->branch_name =
        (char *)json_string_value(json_object_get(a, "branch_name"));
    const char *why = account_problem(acct);
    if (why != NULL)
        return perr(err, errlen, why);
    out->account = acct;
    return 0;
}

/* The part of index key k after its prefix of pl bytes, as a string in
 * out (cap bytes); false when there is none or it does not fit. */
static bool key_tail(const char *k, size_t kl, size_t pl, char *out,
                     size_t cap)
{
    if (kl <= pl || kl - pl >= cap)
        return false;
    memcpy(out, k + pl, kl - pl);
    out[kl - pl] = '\0';
    return true;
}

static int load_payout(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const char *id, Kizuna__Payout **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, '$', id, NULL);
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_sealed(st, keys, KZ_STOR_CF_RECORDS, key, kl,
                              &kizuna__payout__descriptor,
                              (ProtobufCMessage **)out);
}

static json_t *payout_to_json(const Kizuna__Payout *p, bool account)
{
    char created[40], exported[40];
    kz_node_format_time(p->created_ms, created, sizeof created);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:s}", "id", p->id,
                          "household_id", p->household_id, "program",
                          p->program, "item", p->item, "amount_yen",
                          (json_int_t)p->amount_yen, "status", p->status,
                          "version", (json_int_t)p->version, "created_at",
                          created);
    if (o == NULL)
        return NULL;
    if (account && p->account) {
        const Kizuna__BankAccount *a = p->account;
        json_object_set_new(
            o, "account",
            json_pack("{s:i,s:s?,s:i,s:s?,s:i,s:s,s:s}", "bank_code",
                      (int)a->bank_code, "bank_name", a->bank_name,
                      "branch_code", (int)a->branch_code, "branch_name",
                      a->branch_name, "account_type", (int)a->account_type,
                      "account_number", a->account_number, "holder",
                      a->holder));
        json_object_set_new(o, "damage", json_string(p->damage));
        json_object_set_new(o, "household_size",
                            json_integer(p->household_size));
    }
    if (p->export_id) {
        kz_node_format_time(p->exported_ms, exported, sizeof exported);
        json_object_set_new(o, "export_id", json_string(p->export_id));
        json_object_set_new(o, "exported_at", json_string(exported));
    }
    return o;
}

json_t *kz_node_payout_json(kz_stor *st, struct kz_node_keys *keys,
                            const char *muni, const char *id, char *household)
{
    Kizuna__Payout *p;
    if (load_payout(st, keys, muni, id, &p) != KZ_OK)
        return NULL;
    if (household)
        snprintf(household, 80, "%s", p->household_id);
    json_t *o = payout_to_json(p, true);
    kizuna__payout__free_unpacked(p, NULL);
    return o;
}

json_t *kz_node_household_payouts_json(kz_stor *st, struct kz_node_keys *keys,
                                       const char *muni, const char *hid,
                                       bool with_account)
{
    char prefix[KZ_NODE_KEY_MAX];
    size_t pl = kz_node_make_key(prefix, muni, 'v', hid, "");
    json_t *arr = json_array();
    long long total = 0;
    kz_stor_iter *it =
        pl ? kz_stor_iter_new(st, KZ_STOR_CF_INDEX, prefix, pl, NULL, 0)
           : NULL;
    const char *k, *v;
    size_t kl, vl;
    while (it != NULL && kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        char id[80];
        if (!key_tail(k, kl, pl, id, sizeof id))
            continue;
        Kizuna__Payout *p;
        if (load_payout(st, keys, muni, id, &p) != KZ_OK)
            continue;
        total += p->amount_yen;
        json_array_append_new(arr, payout_to_json(p, with_account));
        kizuna__payout__free_unpacked(p, NULL);
    }
    kz_stor_iter_free(it);
    return json_pack("{s:s,s:o,s:I}", "household_id", hid, "payouts", arr,
                     "total_yen", (json_int_t)total);
}

/* Members of household hid and its damage: the latest 罹災証明書 level set
 * on any member (latest damage_certified_on, then latest change). */
static int household_of(kz_stor *st, struct kz_node_keys *keys,
                        const char *muni, const char *hid, unsigned *size,
                        char damage[32])
{
    char prefix[KZ_NODE_KEY_MAX];
    size_t pl = kz_node_make_key(prefix, muni, 'h', hid, "");
    *size = 0;
    damage[0] = '\0';
    if (pl == 0)
        return KZ_OK;
    kz_stor_iter *it =
        kz_stor_iter_new(st, KZ_STOR_CF_INDEX, prefix, pl, NULL, 0);
    if (it == NULL)
        return KZ_ENOMEM;
    const char *k, *v;
    size_t kl, vl;
    char best_on[16] = "";
    int64_t best_ms = -1;
    int rv = KZ_OK;
    while (rv == KZ_OK && kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        char vid[80];
        if (!key_tail(k, kl, pl, vid, sizeof vid))
            continue;
        Kizuna__Victim *m;
        rv = kz_node_load_victim(st, keys, muni, vid, &m);
        if (rv == KZ_ENOTFOUND) {
            rv = KZ_OK;
            continue;
        }
        if (rv != KZ_OK)
            break;
        (*size)++;
        const char *on = m->damage_certified_on ? m->damage_certified_on : "";
        int c = strcmp(on, best_on);
        if (m->damage && strlen(m->damage) < 32 &&
            (best_ms < 0 || c > 0 || (c == 0 && m->updated_ms > best_ms))) {
            snprintf(damage, 32, "%s", m->damage);
            snprintf(best_on, sizeof best_on, "%s", on);
            best_ms = m->updated_ms;
        }
        kizuna__victim__free_unpacked(m, NULL);
    }
    kz_stor_iter_free(it);
    return rv;
}

static size_t paid_key(char *key, const char *muni, const char *program,
                       const char *hid, const char *item)
{
    char b[160];
    if (snprintf(b, sizeof b, "%s/%s", hid, item) >= (int)sizeof b)
        return 0;
    return kz_node_make_key(key, muni, 'u', program, b);
}

/* The payout that paid (program, household, item), if any. */
static int paid_payout(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const char *program, const char *hid,
                       const char *item, Kizuna__Payout **out)
{
    char key[KZ_NODE_KEY_MAX], *v;
    size_t kl = paid_key(key, muni, program, hid, item), vl;
    if (kl == 0)
        return KZ_ENOTFOUND;
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, kl, &v, &vl);
    if (rv != KZ_OK)
        return rv;
    char id[80];
    if (vl == 0 || vl >= sizeof id) {
        free(v);
        return KZ_ECORRUPT;
    }
    memcpy(id, v, vl);
    id[vl] = '\0';
    free(v);
    rv = load_payout(st, keys, muni, id, out);
    return rv == KZ_ENOTFOUND ? KZ_ECORRUPT : rv;
}

static size_t idem_key(char *key, const char *muni, const char *org,
                       const char *ikey)
{
    return kz_node_make_key(key, muni, 'n', org, ikey);
}

static void refuse(struct kz_node_result *r, int status, const char *code,
                   const char *message)
{
    kz_node_result_set(r, status,
                       json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code,
                                 "message", message, "reason", message));
}

static const char *refusal_code(int rc)
{
    switch (rc) {
    case KZ_PAYOUT_DEADLINE_PASSED:
        return "deadline_passed";
    case KZ_PAYOUT_NOT_CONFIGURED:
        return "not_configured";
    case KZ_PAYOUT_UNKNOWN_ITEM:
        return "unknown_item";
    default:
        return "not_eligible";
    }
}

/* An earlier answer under this key: answered from it (true). */
static bool replay(kz_stor *st, const char *muni,
                   const Kizuna__CreatePayout *cp, struct kz_node_result *r,
                   int *rv)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = idem_key(key, muni, cp->org, cp->idempotency_key);
    Kizuna__IdempotencyRecord *ir;
    *rv = kl ? kz_node_get_plain(st, key, kl,
                                 &kizuna__idempotency_record__descriptor,
                                 (ProtobufCMessage **)&ir)
             : KZ_ENOTFOUND;
    if (*rv == KZ_ENOTFOUND) {
        *rv = KZ_OK;
        return false;
    }
    if (*rv != KZ_OK)
        return true;
    if (ir->request_sha256.len != cp->request_sha256.len ||
        memcmp(ir->request_sha256.data, cp->request_sha256.data,
               ir->request_sha256.len) != 0) {
        refuse(r, 422, "idempotency_key_reused",
               "this Idempotency-Key was used with another request body; "
               "use a new key for a new payout");
    } else {
        json_t *body = ir->body ? json_loads(ir->body, 0, NULL) : NULL;
        if (body == NULL)
            *rv = KZ_ECORRUPT;
        else
            kz_node_result_set(r, ir->status, body);
        if (ir->payout_id)
            snprintf(r->subject, sizeof r->subject, "%s", ir->payout_id);
    }
    kizuna__idempotency_record__free_unpacked(ir, NULL);
    return true;
}

static bool valid_create(const Kizuna__CreatePayout *cp)
{
    return cp->id && kz_node_valid_ref(cp->id) &&
           kz_node_valid_ref(cp->household_id) && cp->program && cp->item &&
           cp->org && cp->idempotency_key && cp->idempotency_key[0] &&
           strlen(cp->idempotency_key) <= 128 && cp->has_request_sha256 &&
           cp->request_sha256.len == 32;
}

/* The ledger: per (program, item) the number of payouts and their yen,
 * "<count> <yen>" under <muni>/L/<program>\0<item>, kept by apply with
 * every payout (so it always equals the sum of the payouts). */
static int ledger_get(kz_stor *st, const char *key, size_t kl,
                      long long *count, long long *yen)
{
    char *v, buf[64];
    size_t vl;
    *count = *yen = 0;
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, kl, &v, &vl);
    if (rv == KZ_ENOTFOUND)
        return KZ_OK;
    if (rv != KZ_OK)
        return rv;
    bool ok = vl < sizeof buf;
    if (ok) {
        memcpy(buf, v, vl);
        buf[vl] = '\0';
        ok = sscanf(buf, "%lld %lld", count, yen) == 2;
    }
    free(v);
    return ok ? KZ_OK : KZ_ECORRUPT;
}

static int ledger_add(kz_stor *st, kz_stor_batch *b, const char *muni,
                      const Kizuna__Payout *p)
{
    char key[KZ_NODE_KEY_MAX], val[64];
    size_t kl = kz_node_make_key(key, muni, 'L', p->program, p->item);
    long long count, yen;
    int rv = ledger_get(st, key, kl, &count, &yen);
    if (rv != KZ_OK)
        return rv;
    int n = snprintf(val, sizeof val, "%lld %lld", count + 1,
                     yen + p->amount_yen);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, kl, val, (size_t)n);
    return KZ_OK;
}

json_t *kz_node_ledger_json(kz_stor *st, const char *muni)
{
    char prefix[KZ_NODE_KEY_MAX];
    size_t pl = kz_node_make_key(prefix, muni, 'L', "", NULL);
    json_t *programs = json_object();
    long long all_count = 0, all_yen = 0;
    kz_stor_iter *it =
        kz_stor_iter_new(st, KZ_STOR_CF_RECORDS, prefix, pl, NULL, 0);
    const char *k, *v;
    size_t kl, vl;
    while (it != NULL && kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        char prog[64], item[64], buf[64];
        const char *nul = memchr(k + pl, '\0', kl - pl);
        size_t plen = nul ? (size_t)(nul - (k + pl)) : 0;
        size_t ilen = nul ? kl - pl - plen - 1 : 0;
        long long count, yen;
        if (nul == NULL || plen >= sizeof prog || ilen >= sizeof item ||
            vl >= sizeof buf)
            continue;
        memcpy(prog, k + pl, plen);
        prog[plen] = '\0';
        memcpy(item, nul + 1, ilen);
        item[ilen] = '\0';
        memcpy(buf, v, vl);
        buf[vl] = '\0';
        if (sscanf(buf, "%lld %lld", &count, &yen) != 2)
            continue;
        json_t *po = json_object_get(programs, prog);
        if (po == NULL) {
            po = json_pack("{s:{},s:I,s:I}", "items", "count", (json_int_t)0,
                           "yen", (json_int_t)0);
            json_object_set_new(programs, prog, po);
        }
        json_object_set_new(json_object_get(po, "items"), item,
                            json_pack("{s:I,s:I}", "count", (json_int_t)count,
                                      "yen", (json_int_t)yen));
        json_object_set_new(po, "count",
                            json_integer(json_integer_value(json_object_get(
                                             po, "count")) +
                                         count));
        json_object_set_new(po, "yen",
                            json_integer(json_integer_value(json_object_get(
                                             po, "yen")) +
                                         yen));
        all_count += count;
        all_yen += yen;
    }
    kz_stor_iter_free(it);
    return json_pack("{s:o,s:I,s:I}", "programs", programs, "count",
                     (json_int_t)all_count, "yen", (json_int_t)all_yen);
}

/* Writes the payout decided on and its indexes; the answer into r. */
static int record_payout(kz_stor *st, kz_stor_batch *b,
                         struct kz_node_keys *keys,
                         const char *muni, uint64_t index,
                         const Kizuna__Command *cmd, Kizuna__Payout *p,
                         struct kz_node_result *r)
{
    const Kizuna__CreatePayout *cp = cmd->create_payout;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, '$', p->id, NULL);
    int rv = kz_node_put_sealed(b, keys, index, key, kl, &p->base);
    if (rv != KZ_OK)
        return rv;
    kl = paid_key(key, muni, p->program, p->household_id, p->item);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, kl, p->id, strlen(p->id));
    kl = kz_node_make_key(key, muni, 'v', p->household_id, p->id);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, key, kl, "", 0);
    kl = kz_node_make_key(key, muni, 'e', p->id, NULL);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, key, kl, "", 0);
    if ((rv = ledger_add(st, b, muni, p)) != KZ_OK)
        return rv;
    json_t *answer = payout_to_json(p, false);
    char *text = json_dumps(answer, JSON_COMPACT);
    if (text == NULL) {
        json_decref(answer);
        return KZ_ENOMEM;
    }
    Kizuna__IdempotencyRecord ir = KIZUNA__IDEMPOTENCY_RECORD__INIT;
    ir.has_request_sha256 = ir.has_status = 1;
    ir.request_sha256 = cp->request_sha256;
    ir.status = 201;
    ir.body = text;
    ir.payout_id = p->id;
    kl = idem_key(key, muni, cp->org, cp->idempotency_key);
    kz_node_put_plain(b, key, kl, &ir.base);
    free(text);
    snprintf(r->subject, sizeof r->subject, "%s", p->id);
    kz_node_result_set(r, 201, answer);
    return KZ_OK;
}

static int apply_payout(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni, uint64_t index,
                        const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__CreatePayout *cp = cmd->create_payout;
    if (!valid_create(cp)) {
        kz_node_result_error(r, 400, "bad_command", "payout incomplete");
        return KZ_OK;
    }
    int rv;
    if (replay(st, muni, cp, r, &rv))
        return rv;
    snprintf(r->subject, sizeof r->subject, "%s", cp->household_id);
    const char *why = account_problem(cp->account);
    if (why != NULL) {
        kz_node_result_error(r, 400, "bad_command", why);
        return KZ_OK;
    }
    Kizuna__Program *prog;
    rv = load_program(st, muni, cp->program, &prog);
    if (rv == KZ_ENOTFOUND) {
        refuse(r, 422, "unknown_program",
               "unknown program (programs: seikatsu_saiken, gienkin)");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    unsigned size = 0;
    char damage[32];
    Kizuna__Payout *paid = NULL, *rent = NULL;
    struct kz_payout_table table;
    program_table(prog, &table);
    if (prog->closed) {
        refuse(r, 422, "program_closed", "this program takes no new payouts");
        goto out;
    }
    if ((rv = household_of(st, keys, muni, cp->household_id, &size,
                           damage)) != KZ_OK)
        goto out;
    if (size == 0) {
        refuse(r, 422, "not_eligible",
               "household unknown: no registered person has this "
               "household_id");
        goto out;
    }
    rv = paid_payout(st, keys, muni, cp->program, cp->household_id, cp->item,
                     &paid);
    if (rv == KZ_OK) {
        json_t *e = json_pack(
            "{s:{s:s,s:s},s:o}", "error", "code", "already_paid", "message",
            "this household already received this item of this program",
            "payout", payout_to_json(paid, false));
        kz_node_result_set(r, 409, e);
        goto out;
    }
    if (rv != KZ_ENOTFOUND)
        goto out;
    bool less_rent = strcmp(cp->program, "seikatsu_saiken") == 0 &&
                     (strcmp(cp->item, "build") == 0 ||
                      strcmp(cp->item, "repair") == 0);
    rv = less_rent ? paid_payout(st, keys, muni, "seikatsu_saiken",
                                 cp->household_id, "rent", &rent)
                   : KZ_ENOTFOUND;
    if (rv != KZ_OK && rv != KZ_ENOTFOUND)
        goto out;
    rv = KZ_OK;
    char today[11];
    kz_node_date_jst(cmd->time_ms, today);
    struct kz_payout_input in = {
        .program = cp->program,
        .item = cp->item,
        .damage = damage[0] ? damage : NULL,
        .household_size = size,
        .disaster_date = prog->disaster_date,
        .apply_date = today,
        .paid_rent_yen = rent ? rent->amount_yen : 0,
        .gienkin_per_household_yen = prog->per_household_yen,
        .table = &table,
    };
    long long amount;
    const char *reason;
    int rc = kz_payout_compute(&in, &amount, &reason);
    if (rc != KZ_PAYOUT_OK) {
        refuse(r, 422, refusal_code(rc), reason);
        goto out;
    }
    Kizuna__Payout p = KIZUNA__PAYOUT__INIT;
    p.id = cp->id;
    p.household_id = cp->household_id;
    p.program = cp->program;
    p.item = cp->item;
    p.has_amount_yen = p.has_household_size = p.has_created_ms = 1;
    p.has_version = 1;
    p.amount_yen = amount;
    p.status = "approved";
    p.account = cp->account;
    p.damage = damage;
    p.household_size = size;
    p.requested_by = cp->org;
    p.created_ms = cmd->time_ms;
    p.version = index;
    rv = record_payout(st, b, keys, muni, index, cmd, &p, r);
out:
    if (paid)
        kizuna__payout__free_unpacked(paid, NULL);
    if (rent)
        kizuna__payout__free_unpacked(rent, NULL);
    kizuna__program__free_unpacked(prog, NULL);
    return rv;
}

/* --------------------------------------------------------------- export */

struct batch_of {
    Kizuna__Payout **p;
    size_t n, cap;
};

static void batch_free(struct batch_of *x)
{
    for (size_t i = 0; i < x->n; i++)
        kizuna__payout__free_unpacked(x->p[i], NULL);
    free(x->p);
}

/* The approved payouts not yet exported, in index key order (payout ids
 * are random, so this is not the order they were approved in). */
static int pending_exports(kz_stor *st, struct kz_node_keys *keys,
                           const char *muni, size_t max, struct batch_of *x)
{
    char prefix[KZ_NODE_KEY_MAX];
    size_t pl = kz_node_make_key(prefix, muni, 'e', "", NULL); /* <muni>/e/ */
    kz_stor_iter *it =
        kz_stor_iter_new(st, KZ_STOR_CF_INDEX, prefix, pl, NULL, 0);
    if (it == NULL)
        return KZ_ENOMEM;
    const char *k, *v;
    size_t kl, vl;
    int rv = KZ_OK;
    while (rv == KZ_OK && x->n < max &&
           kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        char id[80];
        if (!key_tail(k, kl, pl, id, sizeof id))
            continue;
        if (x->n == x->cap) {
            size_t cap = x->cap ? x->cap * 2 : 64;
            Kizuna__Payout **np = realloc(x->p, cap * sizeof *np);
            if (np == NULL) {
                rv = KZ_ENOMEM;
                break;
            }
            x->p = np;
            x->cap = cap;
        }
        rv = load_payout(st, keys, muni, id, &x->p[x->n]);
        if (rv == KZ_OK)
            x->n++;
        else if (rv == KZ_ENOTFOUND)
            rv = KZ_ECORRUPT;
    }
    kz_stor_iter_free(it);
    return rv;
}

static int build_file(const Kizuna__TransferHeader *th,
                      const struct batch_of *x, char **file, size_t *len,
                      long long *total, char *err, size_t errlen)
{
    struct kz_zengin_header h = {
        .requester_code = th->requester_code,
        .requester_name = th->requester_name,
        .transfer_mmdd = th->transfer_mmdd,
        .bank_code = th->bank_code,
        .branch_code = th->branch_code,
        .bank_name = th->bank_name,
        .branch_name = th->branch_name,
        .account_type = th->account_type,
        .account_number = th->account_number,
    };
    struct kz_zengin_payee *pay = calloc(x->n, sizeof *pay);
    if (pay == NULL)
        return KZ_ENOMEM;
    *total = 0;
    for (size_t i = 0; i < x->n; i++) {
        const Kizuna__Payout *p = x->p[i];
        const Kizuna__BankAccount *a = p->account;
        if (a == NULL) {
            free(pay);
            snprintf(err, errlen, "payout %s has no account", p->id);
            return KZ_EINVAL;
        }
        pay[i] = (struct kz_zengin_payee){
            .bank_code = a->bank_code,
            .branch_code = a->branch_code,
            .bank_name = a->bank_name,
            .branch_name = a->branch_name,
            .account_type = a->account_type,
            .account_number = a->account_number,
            .name = a->holder,
            .amount_yen = p->amount_yen,
        };
        *total += p->amount_yen;
    }
    int rv = kz_zengin_build(&h, pay, x->n, file, len, err, errlen);
    free(pay);
    return rv;
}

static json_t *b64_json(const char *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)p, (int)n);
    json_t *s = json_string(out);
    free(out);
    return s;
}

static int apply_export(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni, uint64_t index,
                        const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__ExportPayouts *ep = cmd->export_payouts;
    if (ep->export_id == NULL || !kz_node_valid_ref(ep->export_id) ||
        ep->header == NULL) {
        kz_node_result_error(r, 400, "bad_command", "export incomplete");
        return KZ_OK;
    }
    snprintf(r->subject, sizeof r->subject, "%s", ep->export_id);
    size_t max = ep->max ? ep->max : EXPORT_CAP;
    if (max > EXPORT_CAP)
        max = EXPORT_CAP;
    struct batch_of x = {0};
    int rv = pending_exports(st, keys, muni, max, &x);
    if (rv != KZ_OK) {
        batch_free(&x);
        return rv;
    }
    if (x.n == 0) {
        kz_node_result_set(r, 200,
                           json_pack("{s:s,s:i,s:i}", "export_id",
                                     ep->export_id, "count", 0, "total_yen",
                                     0));
        batch_free(&x);
        return KZ_OK;
    }
    char *file = NULL, err[256] = "";
    size_t flen = 0;
    long long total = 0;
    rv = build_file(ep->header, &x, &file, &flen, &total, err, sizeof err);
    if (rv == KZ_EINVAL) {
        kz_node_result_error(r, 422, "export_refused", err);
        batch_free(&x);
        return KZ_OK;
    }
    if (rv != KZ_OK) {
        batch_free(&x);
        return rv;
    }
    char **ids = calloc(x.n, sizeof *ids);
    if (ids == NULL) {
        free(file);
        batch_free(&x);
        return KZ_ENOMEM;
    }
    char key[KZ_NODE_KEY_MAX];
    size_t kl;
    for (size_t i = 0; i < x.n && rv == KZ_OK; i++) {
        Kizuna__Payout *p = x.p[i];
        ids[i] = p->id;
        kl = kz_node_make_key(key, muni, 'e', p->id, NULL);
        kz_stor_batch_delete(b, KZ_STOR_CF_INDEX, key, kl);
        /* Borrowed strings into a decoded message: the originals are put
         * back before it is freed. */
        char *old_status = p->status, *old_export = p->export_id;
        p->status = "exported";
        p->export_id = ep->export_id;
        p->has_exported_ms = p->has_version = 1;
        p->exported_ms = cmd->time_ms;
        p->version = index;
        kl = kz_node_make_key(key, muni, '$', p->id, NULL);
        rv = kz_node_put_sealed(b, keys, index, key, kl, &p->base);
        p->status = old_status;
        p->export_id = old_export;
    }
    Kizuna__PayoutExport pe = KIZUNA__PAYOUT_EXPORT__INIT;
    pe.id = ep->export_id;
    pe.has_file = pe.has_count = pe.has_total_yen = pe.has_created_ms = 1;
    pe.file.data = (uint8_t *)file;
    pe.file.len = flen;
    pe.count = (uint32_t)x.n;
    pe.total_yen = total;
    pe.n_payout_ids = x.n;
    pe.payout_ids = ids;
    pe.created_ms = cmd->time_ms;
    kl = kz_node_make_key(key, muni, 'X', ep->export_id, NULL);
    if (rv == KZ_OK)
        kz_node_put_plain(b, key, kl, &pe.base);
    if (rv == KZ_OK) {
        char fname[96];
        snprintf(fname, sizeof fname, "%s.txt", ep->export_id);
        kz_node_result_set(r, 200,
                           json_pack("{s:s,s:I,s:I,s:o,s:s}", "export_id",
                                     ep->export_id, "count",
                                     (json_int_t)x.n, "total_yen",
                                     (json_int_t)total, "file_base64",
                                     b64_json(file, flen), "filename",
                                     fname));
    }
    free(ids);
    free(file);
    batch_free(&x);
    return rv;
}

int kz_node_apply_payouts(kz_stor *st, struct kz_node_keys *keys,
                          kz_stor_batch *b, const char *muni, uint64_t index,
                          const Kizuna__Command *cmd, struct kz_node_result *r)
{
    switch (cmd->op_case) {
    case KIZUNA__COMMAND__OP_PUT_PROGRAM:
        if (cmd->put_program->program == NULL)
            break;
        return apply_program(st, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_CREATE_PAYOUT:
        return apply_payout(st, keys, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_EXPORT_PAYOUTS:
        return apply_export(st, keys, b, muni, index, cmd, r);
    default:
        break;
    }
    kz_node_result_error(r, 400, "bad_command", "not a payout command");
    return KZ_OK;
}
