/*
 * links.c — apply and reads of organisations, the whitelist, the ID table,
 * link codes and mediation (links.h).
 *
 * Everything a decision needs is decided here, at apply, from the state and
 * the command: issuance matches the four facts against the register,
 * mediation checks whitelist, link code and provider in one step. So two
 * requests racing each other are ordered by the log, every replica reaches
 * the same answer, and the answer and its audit record commit together.
 */
#include "links.h"
#include "payouts.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "keys.h"
#include "linkcode.h"
#include "match.h"
#include "records.h"
#include "register.h"

#define MAX_CANDIDATES 4096

const char *const kz_node_info_types[] = {
    "damage", "shelter", "safety_status", "household", "payouts", NULL};

/* ---------------------------------------------------------------- helpers */

static void hex16(const unsigned char id[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

void kz_node_date_jst(int64_t ms, char out[11])
{
    time_t t = (time_t)(ms / 1000) + 9 * 3600;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

void kz_node_put_plain(kz_stor_batch *b, const char *key, size_t kl,
                       const ProtobufCMessage *msg)
{
    size_t sz = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (buf == NULL)
        return;
    protobuf_c_message_pack(msg, buf);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, kl, buf, sz);
    free(buf);
}

int kz_node_get_plain(kz_stor *st, const char *key, size_t kl,
                      const ProtobufCMessageDescriptor *d,
                      ProtobufCMessage **out)
{
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, kl, &v, &vl);
    if (rv != KZ_OK)
        return rv;
    *out = protobuf_c_message_unpack(d, NULL, vl, (const uint8_t *)v);
    free(v);
    return *out ? KZ_OK : KZ_ECORRUPT;
}

static int load_org(kz_stor *st, struct kz_node_keys *keys, const char *muni,
                    const char *code, Kizuna__Org **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_valid_ref(code)
                    ? kz_node_make_key(key, muni, 'o', code, NULL)
                    : 0;
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_sealed(st, keys, KZ_STOR_CF_RECORDS, key, kl,
                              &kizuna__org__descriptor,
                              (ProtobufCMessage **)out);
}

static const Kizuna__OrgKey *org_key(const Kizuna__Org *o, unsigned index)
{
    for (size_t i = 0; i < o->n_keys; i++)
        if (o->keys[i]->index == index && o->keys[i]->key.len == 32)
            return o->keys[i];
    return NULL;
}

static int load_row(kz_stor *st, const char *muni, const char *org,
                    const char *id_hex, Kizuna__LinkRow **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'l', org, id_hex);
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_plain(st, key, kl, &kizuna__link_row__descriptor,
                     (ProtobufCMessage **)out);
}

/* Whether a row is valid on `day` (unlinked from its unlink date on). */
static bool row_valid(const Kizuna__LinkRow *row, const char *day)
{
    return row->unlinked_on == NULL || strcmp(day, row->unlinked_on) < 0;
}

static int victim_of(kz_stor *st, const char *muni, const char *id_hex,
                     char victim_id[80])
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'i', id_hex, NULL);
    char *v;
    size_t vl;
    int rv = kl ? kz_stor_get(st, KZ_STOR_CF_RECORDS, key, kl, &v, &vl)
                : KZ_ENOTFOUND;
    if (rv != KZ_OK)
        return rv;
    if (vl == 0 || vl >= 80) {
        free(v);
        return KZ_ECORRUPT;
    }
    memcpy(victim_id, v, vl);
    victim_id[vl] = '\0';
    free(v);
    return KZ_OK;
}

/* The link code of org for the person with id, under the key of its row. */
static int code_of(const Kizuna__Org *o, unsigned key_index,
                   const unsigned char id[16],
                   char out[KZ_NODE_LINKCODE_MAX])
{
    const Kizuna__OrgKey *k = org_key(o, key_index);
    if (k == NULL)
        return KZ_ENOTFOUND;
    return kz_node_linkcode_make(k->key.data, key_index, id, out);
}

/* Parses and opens a link code org presented; checks the row. */
static int resolve(kz_stor *st, struct kz_node_keys *keys, const char *muni,
                   const char *org, unsigned key_index,
                   const unsigned char block[16], int64_t now_ms,
                   unsigned char id[16], char id_hex[33])
{
    Kizuna__Org *o;
    int rv = load_org(st, keys, muni, org, &o);
    if (rv != KZ_OK)
        return rv;
    const Kizuna__OrgKey *k = org_key(o, key_index);
    rv = k ? kz_node_linkcode_open(k->key.data, block, id) : KZ_ENOTFOUND;
    kizuna__org__free_unpacked(o, NULL);
    if (rv != KZ_OK)
        return KZ_ENOTFOUND;
    hex16(id, id_hex);
    Kizuna__LinkRow *row;
    if (load_row(st, muni, org, id_hex, &row) != KZ_OK)
        return KZ_ENOTFOUND;
    char day[11];
    kz_node_date_jst(now_ms, day);
    rv = row->key_index != key_index ? KZ_ENOTFOUND
         : row_valid(row, day)       ? KZ_OK
                                     : KZ_EINVAL;
    kizuna__link_row__free_unpacked(row, NULL);
    return rv;
}

int kz_node_link_resolve(kz_stor *st, struct kz_node_keys *keys,
                         const char *muni, const char *org, const char *code,
                         int64_t now_ms, char victim_id[80], char id_hex[33])
{
    unsigned ki;
    unsigned char block[16], id[16];
    if (kz_node_linkcode_parse(code, strlen(code), &ki, block) != 0)
        return KZ_ENOTFOUND;
    int rv = resolve(st, keys, muni, org, ki, block, now_ms, id, id_hex);
    OPENSSL_cleanse(id, sizeof id);
    if (rv != KZ_OK)
        return rv;
    return victim_of(st, muni, id_hex, victim_id) == KZ_OK ? KZ_OK
                                                          : KZ_ENOTFOUND;
}

static bool valid_info_type(const char *s)
{
    return s != NULL && kz_node_valid_code(s, kz_node_info_types);
}

/* ----------------------------------------------------------- organisations */

static json_t *org_to_json(const Kizuna__Org *o)
{
    json_t *types = json_array();
    for (size_t i = 0; i < o->n_info_types; i++)
        json_array_append_new(types, json_string(o->info_types[i]));
    json_t *idx = json_array();
    for (size_t i = 0; i < o->n_keys; i++) {
        char t[40];
        kz_node_format_time(o->keys[i]->created_ms, t, sizeof t);
        json_array_append_new(idx, json_pack("{s:i,s:s}", "index",
                                             (int)o->keys[i]->index,
                                             "created_at", t));
    }
    char t[40];
    kz_node_format_time(o->updated_ms, t, sizeof t);
    return json_pack("{s:s,s:s?,s:s?,s:o,s:i,s:o,s:I,s:s}", "code", o->code,
                     "name", o->name, "kind", o->kind, "info_types", types,
                     "key_index", (int)o->current_key, "keys", idx,
                     "version", (json_int_t)o->version, "updated_at", t);
}

json_t *kz_node_org_json(kz_stor *st, struct kz_node_keys *keys,
                         const char *muni, const char *code)
{
    Kizuna__Org *o;
    if (load_org(st, keys, muni, code, &o) != KZ_OK)
        return NULL;
    json_t *j = org_to_json(o);
    kizuna__org__free_unpacked(o, NULL);
    return j;
}

static int apply_put_org(kz_stor *st, struct kz_node_keys *keys,
                         kz_stor_batch *b, const char *muni, uint64_t index,
                         const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__PutOrg *po = cmd->put_org;
    const Kizuna__Org *in = po->org;
    if (in == NULL || in->code == NULL || !kz_node_valid_ref(in->code) ||
        !kz_node_valid_text(in->name, 256) || in->kind == NULL ||
        !kz_node_valid_ref(in->kind)) {
        kz_node_result_error(r, 400, "bad_command", "organisation incomplete");
        return KZ_OK;
    }
    for (size_t i = 0; i < in->n_info_types; i++)
        if (!valid_info_type(in->info_types[i])) {
            kz_node_result_error(r, 400, "bad_command",
                                 "unknown information type");
            return KZ_OK;
        }
    Kizuna__Org *old = NULL;
    int rv = load_org(st, keys, muni, in->code, &old);
    if (rv != KZ_OK && rv != KZ_ENOTFOUND)
        return rv;
    bool new_key = old == NULL || po->rotate_key;
    if (new_key && (!po->has_new_key || po->new_key.len != 32)) {
        if (old)
            kizuna__org__free_unpacked(old, NULL);
        kz_node_result_error(r, 400, "bad_command", "no key in the command");
        return KZ_OK;
    }
    /* The new record: the given fields, the old keys, maybe one more. */
    size_t nk = old ? old->n_keys : 0;
    Kizuna__OrgKey **ks = calloc(nk + 1, sizeof *ks);
    Kizuna__OrgKey fresh = KIZUNA__ORG_KEY__INIT;
    if (ks == NULL) {
        if (old)
            kizuna__org__free_unpacked(old, NULL);
        return KZ_ENOMEM;
    }
    unsigned max_index = 0;
    for (size_t i = 0; i < nk; i++) {
        ks[i] = old->keys[i];
        if (old->keys[i]->index > max_index)
            max_index = old->keys[i]->index;
    }
    Kizuna__Org o = KIZUNA__ORG__INIT;
    o.code = in->code;
    o.name = in->name;
    o.kind = in->kind;
    o.n_info_types = in->n_info_types;
    o.info_types = in->info_types;
    o.has_current_key = 1;
    o.current_key = old ? old->current_key : 0;
    if (new_key) {
        if (max_index + 1 > KZ_NODE_LINKCODE_MAX_INDEX) {
            free(ks);
            kizuna__org__free_unpacked(old, NULL);
            kz_node_result_error(r, 422, "too_many_keys",
                                 "this organisation has used every key index");
            return KZ_OK;
        }
        fresh.has_index = fresh.has_key = fresh.has_created_ms = 1;
        fresh.index = max_index + 1;
        fresh.key = po->new_key;
        fresh.created_ms = cmd->time_ms;
        ks[nk++] = &fresh;
        o.current_key = fresh.index;
    }
    o.n_keys = nk;
    o.keys = ks;
    o.has_version = o.has_updated_ms = 1;
    o.version = index;
    o.updated_ms = cmd->time_ms;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'o', o.code, NULL);
    rv = kz_node_put_sealed(b, keys, index, key, kl, &o.base);
    if (rv == KZ_OK) {
        snprintf(r->subject, sizeof r->subject, "%s", o.code);
        kz_node_result_set(r, old ? 200 : 201, org_to_json(&o));
    }
    free(ks);
    if (old)
        kizuna__org__free_unpacked(old, NULL);
    return rv;
}

/* ------------------------------------------------------------- whitelist */

static json_t *whitelist_to_json(const Kizuna__WhitelistEntry *w)
{
    json_t *types = json_array();
    for (size_t i = 0; i < w->n_info_types; i++)
        json_array_append_new(types, json_string(w->info_types[i]));
    return json_pack("{s:s,s:s,s:s,s:o,s:s?,s:I}", "bp_id", w->bp_id,
                     "requester", w->requester, "provider", w->provider,
                     "info_types", types, "description", w->description,
                     "version", (json_int_t)w->version);
}

static int load_whitelist(kz_stor *st, const char *muni, const char *bp_id,
                          Kizuna__WhitelistEntry **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_valid_ref(bp_id)
                    ? kz_node_make_key(key, muni, 'w', bp_id, NULL)
                    : 0;
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_plain(st, key, kl, &kizuna__whitelist_entry__descriptor,
                     (ProtobufCMessage **)out);
}

json_t *kz_node_whitelist_json(kz_stor *st, const char *muni,
                               const char *bp_id)
{
    Kizuna__WhitelistEntry *w;
    if (load_whitelist(st, muni, bp_id, &w) != KZ_OK)
        return NULL;
    json_t *j = whitelist_to_json(w);
    kizuna__whitelist_entry__free_unpacked(w, NULL);
    return j;
}

static bool valid_requester(const char *s)
{
    if (s == NULL)
        return false;
    if (strncmp(s, "kind:", 5) == 0)
        s += 5;
    return kz_node_valid_ref(s);
}

static int apply_put_whitelist(kz_stor *st, kz_stor_batch *b,
                               const char *muni, uint64_t index,
                               const Kizuna__Command *cmd,
                               struct kz_node_result *r)
{
    (void)st;
    Kizuna__WhitelistEntry *w = cmd->put_whitelist->entry;
    if (w == NULL || w->bp_id == NULL || !kz_node_valid_ref(w->bp_id) ||
        !valid_requester(w->requester) || w->provider == NULL ||
        !kz_node_valid_ref(w->provider) || w->n_info_types == 0 ||
        (w->description != NULL && !kz_node_valid_text(w->description, 512))) {
        kz_node_result_error(r, 400, "bad_command", "whitelist entry incomplete");
        return KZ_OK;
    }
    for (size_t i = 0; i < w->n_info_types; i++)
        if (!valid_info_type(w->info_types[i])) {
            kz_node_result_error(r, 400, "bad_command",
                                 "unknown information type");
            return KZ_OK;
        }
    Kizuna__WhitelistEntry *old;
    bool existed = load_whitelist(st, muni, w->bp_id, &old) == KZ_OK;
    if (existed)
        kizuna__whitelist_entry__free_unpacked(old, NULL);
    w->has_version = w->has_updated_ms = 1;
    w->version = index;
    w->updated_ms = cmd->time_ms;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'w', w->bp_id, NULL);
    kz_node_put_plain(b, key, kl, &w->base);
    snprintf(r->subject, sizeof r->subject, "%s", w->bp_id);
    kz_node_result_set(r, existed ? 200 : 201, whitelist_to_json(w));
    return KZ_OK;
}

/* -------------------------------------------------------------- issuance */

/* 突合番号: twelve digits, the same for every asking of one link (so a
 * repeated issuance answers the same), unpredictable without the index key. */
static void matching_number(struct kz_node_keys *keys, const char *org,
                            const unsigned char id[16], char out[13])
{
    char buf[160], h[KZ_NODE_BLIND_HEX];
    size_t ol = strlen(org);
    if (ol > sizeof buf - 17)
        ol = sizeof buf - 17;
    memcpy(buf, org, ol);
    buf[ol] = '\0';
    memcpy(buf + ol + 1, id, 16);
    kz_node_keys_blind(keys, 'M', buf, ol + 17, h);
    char first[15];
    memcpy(first, h, 14); /* 56 bits */
    first[14] = '\0';
    unsigned long long v = strtoull(first, NULL, 16);
    snprintf(out, 13, "%012llu", v % 1000000000000ull);
}

struct facts {
    char kana[KZ_NODE_MATCH_MAX];
    char address[KZ_NODE_MATCH_MAX];
    const char *sex;
};

static bool fold_facts(const char *kana, const char *address, const char *sex,
                       struct facts *f)
{
    f->sex = sex;
    return kana != NULL && address != NULL && sex != NULL &&
           kz_node_match_kana(kana, strlen(kana), f->kana, sizeof f->kana) >
               0 &&
           kz_node_match_address(address, strlen(address), f->address,
                                 sizeof f->address) > 0;
}

/* Counts registered people whose four facts match; *id the first one. */
static int find_person(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const Kizuna__IssueLink *il,
                       const struct facts *want, size_t *count,
                       char id[80])
{
    *count = 0;
    char blind[KZ_NODE_BLIND_HEX], prefix[KZ_NODE_KEY_MAX];
    kz_node_keys_blind(keys, 'd', il->dob, strlen(il->dob), blind);
    size_t pl = kz_node_make_key(prefix, muni, 'd', blind, "");
    kz_stor_iter *it =
        kz_stor_iter_new(st, KZ_STOR_CF_TERMS, prefix, pl, NULL, 0);
    if (it == NULL)
        return KZ_ENOMEM;
    const char *k, *v;
    size_t kl, vl;
    int rv = KZ_OK;
    size_t seen = 0;
    while (rv == KZ_OK && seen++ < MAX_CANDIDATES &&
           kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        char vid[80];
        if (kl - pl >= sizeof vid)
            continue;
        kz_node_term_id(vid, k + pl, kl - pl);
        Kizuna__Victim *vic;
        rv = kz_node_load_victim(st, keys, muni, vid, &vic);
        if (rv == KZ_ENOTFOUND) {
            rv = KZ_OK;
            continue;
        }
        if (rv != KZ_OK)
            break;
        struct facts got;
        if (vic->sex != NULL &&
            fold_facts(vic->name_kana, vic->address, vic->sex, &got) &&
            strcmp(got.sex, want->sex) == 0 &&
            strcmp(got.kana, want->kana) == 0 &&
            strcmp(got.address, want->address) == 0) {
            if ((*count)++ == 0)
                snprintf(id, 80, "%s", vid);
        }
        OPENSSL_cleanse(&got, sizeof got);
        kizuna__victim__free_unpacked(vic, NULL);
    }
    kz_stor_iter_free(it);
    return rv;
}

/* The ID code of a victim, creating the ID table entry with fresh if it has
 * none. */
static int id_code_of(kz_stor *st, kz_stor_batch *b, const char *muni,
                      const char *vid, const unsigned char fresh[16],
                      unsigned char id[16])
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'j', vid, NULL);
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, kl, &v, &vl);
    if (rv == KZ_OK) {
        if (vl != 16) {
            free(v);
            return KZ_ECORRUPT;
        }
        memcpy(id, v, 16);
        free(v);
        return KZ_OK;
    }
    if (rv != KZ_ENOTFOUND)
        return rv;
    memcpy(id, fresh, 16);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, kl, id, 16);
    char hex[33], ikey[KZ_NODE_KEY_MAX];
    hex16(id, hex);
    size_t il = kz_node_make_key(ikey, muni, 'i', hex, NULL);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, ikey, il, vid, strlen(vid));
    return KZ_OK;
}

int kz_node_id_code_of(kz_stor *st, kz_stor_batch *b, const char *muni,
                       const char *vid, const unsigned char fresh[16],
                       unsigned char id[16])
{
    return id_code_of(st, b, muni, vid, fresh, id);
}

int kz_node_victim_of(kz_stor *st, const char *muni, const char *id_hex,
                      char victim_id[80])
{
    return victim_of(st, muni, id_hex, victim_id);
}

static bool org_registered(kz_stor *st, struct kz_node_keys *keys,
                           const char *muni, const char *org)
{
    Kizuna__Org *o;
    if (load_org(st, keys, muni, org, &o) != KZ_OK)
        return false;
    kizuna__org__free_unpacked(o, NULL);
    return true;
}

int kz_node_link_for(kz_stor *st, struct kz_node_keys *keys,
                     kz_stor_batch *b, const char *muni, const char *org,
                     const char *vid, const unsigned char fresh[16],
                     int64_t time_ms, struct kz_node_link *out)
{
    memset(out, 0, sizeof *out);
    Kizuna__Org *o;
    int rv = load_org(st, keys, muni, org, &o);
    if (rv == KZ_ENOTFOUND) {
        out->status = 403;
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    rv = id_code_of(st, b, muni, vid, fresh, out->id);
    if (rv != KZ_OK) {
        kizuna__org__free_unpacked(o, NULL);
        return rv;
    }
    hex16(out->id, out->id_hex);
    char day[11];
    kz_node_date_jst(time_ms, day);
    Kizuna__LinkRow *row = NULL;
    rv = load_row(st, muni, org, out->id_hex, &row);
    if (rv == KZ_OK && !row_valid(row, day) &&
        row->key_index == o->current_key) {
        /* The same key would give the same, unlinked, code back. */
        kizuna__link_row__free_unpacked(row, NULL);
        kizuna__org__free_unpacked(o, NULL);
        out->status = 409;
        return KZ_OK;
    }
    out->status = 200;
    if (rv == KZ_ENOTFOUND || (rv == KZ_OK && !row_valid(row, day))) {
        Kizuna__LinkRow fresh_row = KIZUNA__LINK_ROW__INIT;
        fresh_row.has_key_index = fresh_row.has_linked_ms = 1;
        fresh_row.key_index = o->current_key;
        fresh_row.linked_ms = time_ms;
        char key[KZ_NODE_KEY_MAX];
        size_t kl = kz_node_make_key(key, muni, 'l', org, out->id_hex);
        kz_node_put_plain(b, key, kl, &fresh_row.base);
        out->key_index = fresh_row.key_index;
        out->linked_ms = time_ms;
        out->status = 201;
        rv = KZ_OK;
    } else if (rv == KZ_OK) {
        out->key_index = row->key_index;
        out->linked_ms = row->linked_ms;
    }
    if (row)
        kizuna__link_row__free_unpacked(row, NULL);
    if (rv == KZ_OK && code_of(o, out->key_index, out->id, out->code) != KZ_OK)
        out->status = 500;
    kizuna__org__free_unpacked(o, NULL);
    return rv;
}

static int apply_issue(kz_stor *st, struct kz_node_keys *keys,
                       kz_stor_batch *b, const char *muni, uint64_t index,
                       const Kizuna__Command *cmd, struct kz_node_result *r)
{
    (void)index;
    const Kizuna__IssueLink *il = cmd->issue_link;
    struct facts want;
    if (il->org == NULL || il->dob == NULL || !kz_node_valid_date(il->dob) ||
        il->sex == NULL || !kz_node_valid_code(il->sex, kz_node_sex_codes) ||
        !il->has_new_id_code || il->new_id_code.len != 16 ||
        !fold_facts(il->name_kana, il->address, il->sex, &want)) {
        kz_node_result_error(r, 400, "bad_command", "issuance incomplete");
        return KZ_OK;
    }
    if (!org_registered(st, keys, muni, il->org)) {
        OPENSSL_cleanse(&want, sizeof want);
        kz_node_result_error(r, 403, "org_not_registered",
                             "your organisation is not registered for link "
                             "codes");
        return KZ_OK;
    }
    size_t count = 0;
    char vid[80] = "";
    int rv = find_person(st, keys, muni, il, &want, &count, vid);
    OPENSSL_cleanse(&want, sizeof want);
    if (rv != KZ_OK || count != 1) {
        if (rv == KZ_OK && count == 0)
            kz_node_result_error(r, 404, "no_match",
                                 "no registered person matches these facts; "
                                 "nothing was issued");
        else if (rv == KZ_OK)
            kz_node_result_error(r, 409, "ambiguous_match",
                                 "the facts match more than one registered "
                                 "person; nothing was issued");
        return rv;
    }
    struct kz_node_link lk;
    rv = kz_node_link_for(st, keys, b, muni, il->org, vid,
                          il->new_id_code.data, cmd->time_ms, &lk);
    if (rv != KZ_OK)
        return rv;
    snprintf(r->subject, sizeof r->subject, "%s", vid);
    snprintf(r->person, sizeof r->person, "%s", lk.id_hex);
    if (lk.status == 409) {
        kz_node_result_error(r, 409, "link_unlinked",
                             "this person's link code for your organisation "
                             "was unlinked; rotate the organisation's key to "
                             "issue a new one");
    } else if (lk.status == 200 || lk.status == 201) {
        char mn[13], linked[11];
        matching_number(keys, il->org, lk.id, mn);
        kz_node_date_jst(lk.linked_ms, linked);
        kz_node_result_set(r, lk.status,
                           json_pack("{s:s,s:s,s:i,s:s}", "link_code", lk.code,
                                     "matching_number", mn, "key_index",
                                     (int)lk.key_index, "linked_on", linked));
    } else {
        kz_node_result_error(r, 500, "internal", "no key for the link");
    }
    OPENSSL_cleanse(&lk, sizeof lk);
    return KZ_OK;
}

static int apply_unlink(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni,
                        const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__Unlink *ul = cmd->unlink;
    if (ul->org == NULL || !ul->has_block || ul->block.len != 16 ||
        ul->from == NULL || !kz_node_valid_date(ul->from)) {
        kz_node_result_error(r, 400, "bad_command", "unlink incomplete");
        return KZ_OK;
    }
    unsigned char id[16];
    char hex[33];
    /* A code already unlinked cannot be unlinked again (or its date
     * moved). */
    int rv = resolve(st, keys, muni, ul->org, ul->key_index, ul->block.data,
                     cmd->time_ms, id, hex);
    OPENSSL_cleanse(id, sizeof id);
    if (rv == KZ_EINVAL) {
        kz_node_result_error(r, 409, "link_unlinked",
                             "this link code is already unlinked");
        return KZ_OK;
    }
    if (rv != KZ_OK) {
        kz_node_result_error(r, 404, "link_code_not_issued",
                             "this link code was not issued to your "
                             "organisation");
        return rv == KZ_ENOTFOUND ? KZ_OK : rv;
    }
    Kizuna__LinkRow *row;
    if ((rv = load_row(st, muni, ul->org, hex, &row)) != KZ_OK)
        return rv;
    /* An unlink date still ahead may be brought forward, never pushed
     * back: that would lengthen the life of a code someone ended. */
    if (row->unlinked_on != NULL && strcmp(ul->from, row->unlinked_on) >= 0) {
        kizuna__link_row__free_unpacked(row, NULL);
        kz_node_result_error(r, 409, "link_unlinked",
                             "this link code is already unlinked from that "
                             "date or earlier");
        return KZ_OK;
    }
    char *old_unlink = row->unlinked_on;
    row->unlinked_on = (char *)ul->from;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'l', ul->org, hex);
    kz_node_put_plain(b, key, kl, &row->base);
    row->unlinked_on = old_unlink;
    kizuna__link_row__free_unpacked(row, NULL);
    char vid[80];
    if (victim_of(st, muni, hex, vid) == KZ_OK)
        snprintf(r->subject, sizeof r->subject, "%s", vid);
    snprintf(r->person, sizeof r->person, "%s", hex);
    char code[KZ_NODE_LINKCODE_MAX];
    kz_node_linkcode_format(ul->key_index, ul->block.data, code);
    kz_node_result_set(r, 200, json_pack("{s:s,s:s}", "link_code", code,
                                         "unlinked_on", ul->from));
    return KZ_OK;
}

/* ------------------------------------------------------------- mediation */

static bool whitelisted(const Kizuna__WhitelistEntry *w, const Kizuna__Org *req,
                        const char *provider, const char *info_type)
{
    bool who = strcmp(w->requester, req->code) == 0 ||
               (strncmp(w->requester, "kind:", 5) == 0 && req->kind &&
                strcmp(w->requester + 5, req->kind) == 0);
    if (!who || strcmp(w->provider, provider) != 0)
        return false;
    for (size_t i = 0; i < w->n_info_types; i++)
        if (strcmp(w->info_types[i], info_type) == 0)
            return true;
    return false;
}

static long long household_size(kz_stor *st, const char *muni,
                                const char *household)
{
    char prefix[KZ_NODE_KEY_MAX];
    size_t pl = kz_node_make_key(prefix, muni, 'h', household, "");
    if (pl == 0)
        return 0;
    kz_stor_iter *it =
        kz_stor_iter_new(st, KZ_STOR_CF_INDEX, prefix, pl, NULL, 0);
    long long n = 0;
    const char *k, *v;
    size_t kl, vl;
    while (it != NULL && kz_stor_iter_next(it, &k, &kl, &v, &vl))
        n++;
    kz_stor_iter_free(it);
    return n;
}

/* The municipality's own answer, from the register as of this entry. */
static json_t *register_answer(kz_stor *st, struct kz_node_keys *keys,
                               const Kizuna__Victim *v, const char *muni,
                               const char *info_type)
{
    if (strcmp(info_type, "payouts") == 0)
        return v->household_id
                   ? kz_node_household_payouts_json(st, keys, muni,
                                                    v->household_id, false)
                   : json_pack("{s:n,s:[],s:i}", "household_id", "payouts",
                               "total_yen", 0);
    char t[40];
    if (strcmp(info_type, "damage") == 0)
        return json_pack("{s:s?,s:s?}", "damage", v->damage,
                         "damage_certified_on", v->damage_certified_on);
    if (strcmp(info_type, "shelter") == 0) {
        json_t *o = json_pack("{s:s?}", "shelter_id", v->shelter_id);
        if (v->shelter_id && v->n_shelter_history > 0) {
            kz_node_format_time(
                v->shelter_history[v->n_shelter_history - 1]->in_ms, t,
                sizeof t);
            json_object_set_new(o, "since", json_string(t));
        }
        return o;
    }
    if (strcmp(info_type, "safety_status") == 0) {
        kz_node_format_time(v->updated_ms, t, sizeof t);
        return json_pack("{s:s,s:s}", "status",
                         v->status ? v->status : "unknown", "as_of", t);
    }
    /* household */
    return json_pack("{s:s?,s:I}", "household_id", v->household_id,
                     "members",
                     (json_int_t)(v->household_id
                                      ? household_size(st, muni,
                                                       v->household_id)
                                      : 1));
}

static int apply_mediation(kz_stor *st, struct kz_node_keys *keys,
                           kz_stor_batch *b, const char *muni,
                           uint64_t index, const Kizuna__Command *cmd,
                           struct kz_node_result *r)
{
    const Kizuna__CreateMediation *cm = cmd->create_mediation;
    if (cm->id == NULL || !kz_node_valid_ref(cm->id) || cm->requester == NULL ||
        cm->bp_id == NULL || cm->provider == NULL ||
        !valid_info_type(cm->info_type) || !cm->has_block ||
        cm->block.len != 16) {
        kz_node_result_error(r, 400, "bad_command", "mediation incomplete");
        return KZ_OK;
    }
    Kizuna__Org *req;
    int rv = load_org(st, keys, muni, cm->requester, &req);
    if (rv != KZ_OK) {
        kz_node_result_error(r, 403, "org_not_registered",
                             "your organisation is not registered for link "
                             "codes");
        return rv == KZ_ENOTFOUND ? KZ_OK : rv;
    }
    Kizuna__WhitelistEntry *w = NULL;
    bool ok = load_whitelist(st, muni, cm->bp_id, &w) == KZ_OK &&
              whitelisted(w, req, cm->provider, cm->info_type);
    if (w)
        kizuna__whitelist_entry__free_unpacked(w, NULL);
    kizuna__org__free_unpacked(req, NULL);
    if (!ok) {
        kz_node_result_error(r, 403, "not_whitelisted",
                             "this business process is not whitelisted for "
                             "your organisation, this provider and this "
                             "information type");
        return KZ_OK;
    }
    unsigned char id[16];
    char hex[33];
    rv = resolve(st, keys, muni, cm->requester, cm->key_index, cm->block.data,
                 cmd->time_ms, id, hex);
    if (rv != KZ_OK) {
        kz_node_result_error(r, 403,
                             rv == KZ_EINVAL ? "link_code_unlinked"
                                             : "link_code_not_issued",
                             rv == KZ_EINVAL
                                 ? "this link code has been unlinked"
                                 : "this link code was not issued to your "
                                   "organisation");
        return KZ_OK;
    }
    char vid[80];
    if ((rv = victim_of(st, muni, hex, vid)) != KZ_OK)
        return rv;
    snprintf(r->subject, sizeof r->subject, "%s", vid);
    snprintf(r->person, sizeof r->person, "%s", hex);
    bool self = strcmp(cm->provider, muni) == 0;
    char *answer = NULL;
    if (self) {
        Kizuna__Victim *v;
        if ((rv = kz_node_load_victim(st, keys, muni, vid, &v)) != KZ_OK)
            return rv == KZ_ENOTFOUND ? KZ_ECORRUPT : rv;
        json_t *a = register_answer(st, keys, v, muni, cm->info_type);
        kizuna__victim__free_unpacked(v, NULL);
        answer = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(a);
        if (answer == NULL)
            return KZ_ENOMEM;
    } else {
        Kizuna__LinkRow *row;
        char day[11];
        kz_node_date_jst(cmd->time_ms, day);
        bool has = false;
        if (load_row(st, muni, cm->provider, hex, &row) == KZ_OK) {
            has = row_valid(row, day);
            kizuna__link_row__free_unpacked(row, NULL);
        }
        if (!has) {
            kz_node_result_error(r, 422, "provider_has_no_code",
                                 "the provider holds no link code for this "
                                 "person");
            return KZ_OK;
        }
    }
    Kizuna__Mediation m = KIZUNA__MEDIATION__INIT;
    m.id = cm->id;
    m.requester = cm->requester;
    m.provider = cm->provider;
    m.bp_id = cm->bp_id;
    m.info_type = cm->info_type;
    m.has_id_code = 1;
    m.id_code.data = id;
    m.id_code.len = 16;
    m.victim_id = vid;
    m.has_requested_ms = m.has_version = 1;
    m.requested_ms = cmd->time_ms;
    m.version = index;
    m.status = self ? "answered" : "queued";
    m.answer = answer;
    if (self) {
        m.has_answered_ms = 1;
        m.answered_ms = cmd->time_ms;
    }
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'm', cm->id, NULL);
    rv = kz_node_put_sealed(b, keys, index, key, kl, &m.base);
    if (rv == KZ_OK && !self) {
        char q[KZ_NODE_KEY_MAX];
        size_t ql = kz_node_make_key(q, muni, 'q', cm->provider, cm->id);
        kz_stor_batch_put(b, KZ_STOR_CF_INDEX, q, ql, "", 0);
    }
    OPENSSL_cleanse(id, sizeof id);
    if (rv == KZ_OK) {
        json_t *o = json_pack("{s:s,s:s}", "id", cm->id, "status", m.status);
        if (self)
            json_object_set_new(o, "answer",
                                json_loads(answer, 0, NULL));
        kz_node_result_set(r, self ? 200 : 202, o);
    }
    free(answer);
    return rv;
}

static int load_mediation(kz_stor *st, struct kz_node_keys *keys,
                          const char *muni, const char *id,
                          Kizuna__Mediation **out)
{
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_valid_ref(id)
                    ? kz_node_make_key(key, muni, 'm', id, NULL)
                    : 0;
    if (kl == 0)
        return KZ_ENOTFOUND;
    return kz_node_get_sealed(st, keys, KZ_STOR_CF_RECORDS, key, kl,
                              &kizuna__mediation__descriptor,
                              (ProtobufCMessage **)out);
}

static int apply_reply(kz_stor *st, struct kz_node_keys *keys,
                       kz_stor_batch *b, const char *muni, uint64_t index,
                       const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__ReplyMediation *rm = cmd->reply_mediation;
    json_t *a = rm->answer ? json_loads(rm->answer, 0, NULL) : NULL;
    if (rm->id == NULL || rm->provider == NULL || !json_is_object(a)) {
        json_decref(a);
        kz_node_result_error(r, 400, "bad_command", "reply incomplete");
        return KZ_OK;
    }
    json_decref(a);
    Kizuna__Mediation *m;
    int rv = load_mediation(st, keys, muni, rm->id, &m);
    if (rv == KZ_ENOTFOUND ||
        (rv == KZ_OK && strcmp(m->provider, rm->provider) != 0)) {
        if (rv == KZ_OK)
            kizuna__mediation__free_unpacked(m, NULL);
        kz_node_result_error(r, 404, "not_found",
                             "no request with this id in your inbox");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    if (m->victim_id)
        snprintf(r->subject, sizeof r->subject, "%s", m->victim_id);
    if (m->id_code.len == 16)
        hex16(m->id_code.data, r->person);
    if (strcmp(m->status, "queued") != 0) {
        kizuna__mediation__free_unpacked(m, NULL);
        kz_node_result_error(r, 409, "already_answered",
                             "this request has been answered already");
        return KZ_OK;
    }
    char *old_status = m->status, *old_answer = m->answer;
    m->status = "answered";
    m->answer = rm->answer;
    m->has_answered_ms = m->has_version = 1;
    m->answered_ms = cmd->time_ms;
    m->version = index;
    char key[KZ_NODE_KEY_MAX];
    size_t kl = kz_node_make_key(key, muni, 'm', m->id, NULL);
    rv = kz_node_put_sealed(b, keys, index, key, kl, &m->base);
    char q[KZ_NODE_KEY_MAX];
    size_t ql = kz_node_make_key(q, muni, 'q', m->provider, m->id);
    kz_stor_batch_delete(b, KZ_STOR_CF_INDEX, q, ql);
    m->status = old_status;
    m->answer = old_answer;
    kizuna__mediation__free_unpacked(m, NULL);
    if (rv == KZ_OK)
        kz_node_result_set(r, 200, json_pack("{s:s,s:s}", "id", rm->id,
                                             "status", "answered"));
    return rv;
}

/* A mediation as viewer (its requester or its provider) sees it. */
static json_t *mediation_json(kz_stor *st, struct kz_node_keys *keys,
                              const char *muni, const Kizuna__Mediation *m,
                              const char *viewer)
{
    char t[40];
    kz_node_format_time(m->requested_ms, t, sizeof t);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", m->id,
                          "status", m->status, "bp_id", m->bp_id,
                          "requester", m->requester, "provider", m->provider,
                          "info_type", m->info_type, "requested_at", t);
    /* The viewer's own code for the person: never the other side's. */
    Kizuna__Org *o_view;
    char hex[33];
    Kizuna__LinkRow *row;
    if (m->id_code.len == 16 &&
        load_org(st, keys, muni, viewer, &o_view) == KZ_OK) {
        hex16(m->id_code.data, hex);
        if (load_row(st, muni, viewer, hex, &row) == KZ_OK) {
            char code[KZ_NODE_LINKCODE_MAX];
            if (code_of(o_view, row->key_index, m->id_code.data, code) ==
                KZ_OK)
                json_object_set_new(o, "link_code", json_string(code));
            kizuna__link_row__free_unpacked(row, NULL);
        }
        kizuna__org__free_unpacked(o_view, NULL);
    }
    if (m->answer != NULL) {
        json_object_set_new(o, "answer", json_loads(m->answer, 0, NULL));
        kz_node_format_time(m->answered_ms, t, sizeof t);
        json_object_set_new(o, "answered_at", json_string(t));
    }
    return o;
}

json_t *kz_node_mediation_view(kz_stor *st, struct kz_node_keys *keys,
                               const char *muni, const char *id,
                               const char *viewer, char victim_id[80])
{
    Kizuna__Mediation *m;
    victim_id[0] = '\0';
    if (load_mediation(st, keys, muni, id, &m) != KZ_OK)
        return NULL;
    json_t *o = NULL;
    if (strcmp(m->requester, viewer) == 0 ||
        strcmp(m->provider, viewer) == 0) {
        o = mediation_json(st, keys, muni, m, viewer);
        snprintf(victim_id, 80, "%s", m->victim_id ? m->victim_id : "");
    }
    kizuna__mediation__free_unpacked(m, NULL);
    return o;
}

json_t *kz_node_mediation_inbox(kz_stor *st, struct kz_node_keys *keys,
                                const char *muni, const char *provider,
                                const char *after, size_t limit, char *next,
                                json_t *victim_ids)
{
    json_t *arr = json_array();
    next[0] = '\0';
    char prefix[KZ_NODE_KEY_MAX], start[KZ_NODE_KEY_MAX];
    size_t pl = kz_node_make_key(prefix, muni, 'q', provider, "");
    size_t sl = 0;
    if (pl == 0)
        return arr;
    if (after[0]) {
        /* Just past `after`: its key with one more byte. */
        sl = kz_node_make_key(start, muni, 'q', provider, after);
        if (sl == 0 || sl + 1 >= sizeof start)
            return arr;
        start[sl++] = '\0';
    }
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, prefix, pl,
                                        sl ? start : NULL, sl);
    const char *k, *v;
    size_t kl, vl;
    while (it != NULL && kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        char id[80];
        if (kl - pl >= sizeof id)
            continue;
        memcpy(id, k + pl, kl - pl);
        id[kl - pl] = '\0';
        if (json_array_size(arr) == limit) {
            snprintf(next, 80, "%s", (const char *)json_string_value(
                                         json_object_get(json_array_get(
                                             arr, limit - 1), "id")));
            break;
        }
        Kizuna__Mediation *m;
        if (load_mediation(st, keys, muni, id, &m) != KZ_OK)
            continue;
        json_array_append_new(arr, mediation_json(st, keys, muni, m, provider));
        if (m->victim_id != NULL)
            json_array_append_new(victim_ids, json_string(m->victim_id));
        kizuna__mediation__free_unpacked(m, NULL);
    }
    kz_stor_iter_free(it);
    return arr;
}

/* ------------------------------------------------------------------ apply */

int kz_node_apply_links(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni, uint64_t index,
                        const Kizuna__Command *cmd, struct kz_node_result *r)
{
    switch (cmd->op_case) {
    case KIZUNA__COMMAND__OP_PUT_ORG:
        return apply_put_org(st, keys, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_PUT_WHITELIST:
        return apply_put_whitelist(st, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_ISSUE_LINK:
        return apply_issue(st, keys, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_UNLINK:
        return apply_unlink(st, keys, b, muni, cmd, r);
    case KIZUNA__COMMAND__OP_CREATE_MEDIATION:
        return apply_mediation(st, keys, b, muni, index, cmd, r);
    case KIZUNA__COMMAND__OP_REPLY_MEDIATION:
        return apply_reply(st, keys, b, muni, index, cmd, r);
    default:
        kz_node_result_error(r, 400, "bad_command", "unknown command");
        return KZ_OK;
    }
}
