/*
 * register.c — apply for the victim register and shelters (register.h).
 *
 * Every command becomes exactly one kz_stor batch committed with its raft
 * index: the record, the index keys it adds and removes, and the shelter
 * counters it moves. Apply takes time and ids from the command, never from
 * the clock, so every replica writes the same bytes.
 *
 * Indexes are maintained by difference: the keys of the old record are
 * deleted and those of the new one put, in the same batch (a key in both is
 * deleted then re-put, which RocksDB resolves in batch order). Counters are
 * summed per key in memory first, so a move within one shelter nets to zero.
 */
#include "register.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addrbook.h"
#include "apply.h"
#include "audit.h"
#include "audit_queue.h"
#include "csv_import.h"
#include "keys.h"
#include "kz_endian.h"
#include "kz_log.h"
#include "name_fold.h"
#include "pfif.h"
#include "photos.h"
#include "records.h"
#include "text.h"

#define KEY_MAX KZ_NODE_KEY_MAX
#define MAX_NAME_KEYS 24

const char *const kz_node_counter_names[] = {
    "total",         "sex_female",           "sex_male",
    "sex_other",     "sex_unknown",          "needs_infant",
    "needs_elderly", "needs_disabled",       "needs_pregnant",
    "needs_chronic_illness", "needs_medication", "status_safe",
    "status_injured", "status_missing",      "status_deceased",
    "status_unknown", NULL};

/* ------------------------------------------------------------------ keys */

size_t kz_node_make_key(char *buf, const char *muni, char kind, const char *a,
                        const char *b)
{
    /* "<muni>/<kind>/<a>" by hand: this runs for every index key of every
     * record applied (snprintf was a fifth of an import's apply). */
    size_t ml = strlen(muni), al = strlen(a);
    if (ml + 3 + al >= KEY_MAX - 1)
        return 0;
    memcpy(buf, muni, ml);
    buf[ml] = '/';
    buf[ml + 1] = kind;
    buf[ml + 2] = '/';
    memcpy(buf + ml + 3, a, al + 1);
    size_t len = ml + 3 + al;
    if (b != NULL) {
        size_t bl = strlen(b);
        if (len + 1 + bl >= KEY_MAX)
            return 0;
        buf[len++] = '\0';
        memcpy(buf + len, b, bl);
        len += bl;
    }
    return len;
}

void kz_node_term_id(char *out, const char *id, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(255 - (unsigned char)id[i]);
    out[n] = '\0';
}

/* Length of the UTF-8 character starting at p (1 for anything invalid:
 * folded keys are valid UTF-8, so this only bounds the walk). */
static size_t utf8_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        return 2;
    if ((c & 0xF0) == 0xE0)
        return 3;
    if ((c & 0xF8) == 0xF0)
        return 4;
    return 1;
}

/* Whether one of the first i keys starts with the first len bytes of
 * names[i]: that prefix's index key was made already. */
static bool prefix_seen(char names[][KZ_NODE_NAME_KEY_MAX], size_t i,
                        size_t len)
{
    for (size_t j = 0; j < i; j++)
        if (strncmp(names[j], names[i], len) == 0 && strlen(names[j]) >= len)
            return true;
    return false;
}

/* What for_index_keys calls for every index key: its family, the key and
 * its value (empty but for the name terms of the ladder format). */
typedef void (*index_fn)(void *arg, int cf, const char *k, size_t n,
                         const char *v, size_t vn);

/* The rungs of the ladder format (KZ_NODE_TERMS_LADDER), in characters. */
static const unsigned char rungs[] = {1,  2,  3,  4,  6,  8,  12,
                                      16, 24, 32, 48, 64, 96, 128};

size_t kz_node_term_rung(size_t chars)
{
    size_t r = 0;
    for (size_t i = 0; i < sizeof rungs && rungs[i] <= chars; i++)
        r = rungs[i];
    return r;
}

/* The rung after the one at or below chars (beyond the last: no end). */
static size_t next_rung(size_t chars)
{
    for (size_t i = 0; i < sizeof rungs; i++)
        if (rungs[i] > chars)
            return rungs[i];
    return (size_t)-1;
}

size_t kz_node_rung_prefix(const char *term, size_t len)
{
    size_t end = 0, chars = 0, at_rung = 0;
    while (end < len) {
        end += utf8_len((unsigned char)term[end]);
        if (end > len)
            end = len;
        chars++;
        if (kz_node_term_rung(chars) == chars)
            at_rung = end;
    }
    return at_rung;
}

void kz_node_term_tag(const char *blind, char *out)
{
    for (size_t i = 0; i < KZ_NODE_TERM_TAG; i++) {
        unsigned hi = (unsigned char)blind[2 * i], lo = (unsigned char)blind[2 * i + 1];
        hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
        lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
        out[i] = (char)((hi << 4) | lo);
    }
}

/* The tags (KZ_NODE_TERM_TAG bytes each) of the prefixes that the term
 * names[i][0, end) (chars characters, a rung) stands for: every distinct
 * prefix, over all nk keys, that starts with it and is shorter than the
 * next rung. Into out (room for MAX_NAME_KEYS * 128 tags); its length. */
static size_t rung_tags(const struct kz_node_keys *keys, char kind,
                        char names[][KZ_NODE_NAME_KEY_MAX], size_t nk,
                        size_t i, size_t end, size_t chars, char *out)
{
    char blind[KZ_NODE_BLIND_HEX];
    size_t o = 0, stop = next_rung(chars);
    for (size_t j = 0; j < nk; j++) {
        size_t len = strlen(names[j]);
        if (len < end || memcmp(names[j], names[i], end) != 0)
            continue;
        size_t e = end, c = chars;
        while (e < len) {
            e += utf8_len((unsigned char)names[j][e]);
            if (e > len)
                e = len;
            if (++c >= stop)
                break;
            if (prefix_seen(names, j, e))
                continue;
            kz_node_keys_blind(keys, kind, names[j], e, blind);
            kz_node_term_tag(blind, out + o);
            o += KZ_NODE_TERM_TAG;
        }
    }
    return o;
}

/* fn for the blind terms of each of the nk folded keys, under index kind
 * `kind`, each distinct prefix once: a token's prefixes are also those of
 * the concatenation that starts with it ("yamada", "yamadataro"), a third
 * of the puts otherwise. Format 1: a term for every prefix (at character
 * boundaries). The ladder format: a term for the prefixes whose length is
 * a rung, its value the tags of the longer prefixes up to the next rung
 * (docs/ARCHITECTURE.md, "Name search"). */
static void for_prefix_keys(const struct kz_node_keys *keys, const char *muni,
                            char kind, const char *id,
                            char names[][KZ_NODE_NAME_KEY_MAX], size_t nk,
                            index_fn fn, void *arg)
{
    char key[KEY_MAX], blind[KZ_NODE_BLIND_HEX];
    char tags[MAX_NAME_KEYS * KZ_NODE_NAME_KEY_MAX * KZ_NODE_TERM_TAG];
    bool ladder = keys->terms_format >= KZ_NODE_TERMS_LADDER;
    size_t n;
    for (size_t i = 0; i < nk; i++) {
        size_t len = strlen(names[i]), chars = 0;
        for (size_t end = 0; end < len;) {
            end += utf8_len((unsigned char)names[i][end]);
            if (end > len)
                end = len;
            chars++;
            if (ladder && kz_node_term_rung(chars) != chars)
                continue;
            if (prefix_seen(names, i, end))
                continue;
            size_t tl = ladder ? rung_tags(keys, kind, names, nk, i, end,
                                           chars, tags)
                               : 0;
            kz_node_keys_blind(keys, kind, names[i], end, blind);
            if ((n = kz_node_make_key(key, muni, kind, blind, id)) > 0)
                fn(arg, KZ_STOR_CF_TERMS, key, n, tags, tl);
        }
    }
}

/* Calls fn for every index key of v (not the counters). Names are indexed
 * by blind terms of the prefixes (at character boundaries) of every folded
 * key (for_prefix_keys), so a prefix search is an exact lookup of one keyed
 * hash; dates of birth by the blind term of the date. Both in the terms
 * family, followed by the id inverted (kz_node_term_id). Shelter, status
 * and household ids are operational codes and stay readable. */
static void for_index_keys(const struct kz_node_keys *keys, const char *muni,
                           const Kizuna__Victim *v, index_fn fn, void *arg)
{
    char key[KEY_MAX], blind[KZ_NODE_BLIND_HEX];
    size_t n;
    char names[MAX_NAME_KEYS][KZ_NODE_NAME_KEY_MAX];
    char tid[KEY_MAX];
    size_t idl = strlen(v->id);
    if (idl >= sizeof tid)
        idl = sizeof tid - 1; /* too long for any key: make_key refuses it */
    kz_node_term_id(tid, v->id, idl);
    size_t nk = kz_node_name_keys(v->name, v->name_kana, names, MAX_NAME_KEYS);
    for_prefix_keys(keys, muni, 'n', tid, names, nk, fn, arg);
    /* issue 9: a record without kana is also indexed by the dictionary
     * reading its proposer stored, under 'R', so that search can rank
     * these matches below name and kana matches (search.c). */
    nk = (v->name_kana == NULL || v->name_kana[0] == '\0')
             ? kz_node_name_reading_keys(v->name_reading, names, MAX_NAME_KEYS)
             : 0;
    for_prefix_keys(keys, muni, 'R', tid, names, nk, fn, arg);
    if (v->dob) {
        kz_node_keys_blind(keys, 'd', v->dob, strlen(v->dob), blind);
        if ((n = kz_node_make_key(key, muni, 'd', blind, tid)) > 0)
            fn(arg, KZ_STOR_CF_TERMS, key, n, "", 0);
    }
    if (v->shelter_id &&
        (n = kz_node_make_key(key, muni, 's', v->shelter_id, v->id)) > 0)
        fn(arg, KZ_STOR_CF_INDEX, key, n, "", 0);
    if ((n = kz_node_make_key(key, muni, 't', v->status ? v->status : "unknown",
                      v->id)) > 0)
        fn(arg, KZ_STOR_CF_INDEX, key, n, "", 0);
    if (v->household_id &&
        (n = kz_node_make_key(key, muni, 'h', v->household_id, v->id)) > 0)
        fn(arg, KZ_STOR_CF_INDEX, key, n, "", 0);
}

static void put_index(void *b, int cf, const char *k, size_t n, const char *v,
                      size_t vn)
{
    kz_stor_batch_put(b, cf, k, n, v, vn);
}

static void del_index(void *b, int cf, const char *k, size_t n, const char *v,
                      size_t vn)
{
    (void)v;
    (void)vn;
    kz_stor_batch_delete(b, cf, k, n);
}

/* The index keys of one record, collected (reindex). */
struct ikey {
    int cf;
    size_t off, n;   /* the key, in keyset.buf */
    size_t voff, vn; /* its value, after it */
};

struct keyset {
    struct ikey *v;
    size_t n, cap;
    struct kz_node_text buf; /* the keys' bytes, one after another */
    bool oom;
};

static void collect_key(void *arg, int cf, const char *k, size_t n,
                        const char *val, size_t vn)
{
    struct keyset *s = arg;
    if (s->oom)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct ikey *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) {
            s->oom = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    size_t off = s->buf.len;
    kz_node_text_put(&s->buf, k, n);
    kz_node_text_put(&s->buf, val, vn);
    if (s->buf.oom) {
        s->oom = true;
        return;
    }
    s->v[s->n++] = (struct ikey){cf, off, n, off + n, vn};
}

/* The buffer the keys being sorted live in (qsort has no context). */
static const char *ikey_buf;

static int ikey_cmp3(const char *ba, const struct ikey *a, const char *bb,
                     const struct ikey *b)
{
    if (a->cf != b->cf)
        return a->cf < b->cf ? -1 : 1;
    int c = memcmp(ba + a->off, bb + b->off, a->n < b->n ? a->n : b->n);
    if (c != 0)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

static int ikey_cmp(const void *a, const void *b)
{
    return ikey_cmp3(ikey_buf, a, ikey_buf, b);
}

/* Sorts s's keys and drops repeats. */
static void keyset_sort(struct keyset *s)
{
    if (s->n == 0)
        return;
    ikey_buf = s->buf.p;
    qsort(s->v, s->n, sizeof *s->v, ikey_cmp);
    ikey_buf = NULL;
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++)
        if (ikey_cmp3(s->buf.p, &s->v[i], s->buf.p, &s->v[w - 1]) != 0)
            s->v[w++] = s->v[i];
    s->n = w;
}

static void keyset_free(struct keyset *s)
{
    free(s->v);
    free(s->buf.p);
}

/* Whether a key in both sets keeps its value (the tags of a ladder term). */
static bool ikey_same_value(const struct keyset *a, const struct ikey *x,
                            const struct keyset *b, const struct ikey *y)
{
    return x->vn == y->vn &&
           memcmp(a->buf.p + x->voff, b->buf.p + y->voff, x->vn) == 0;
}

/* Moves the index keys of a changed record from old's to v's: deletes the
 * keys only old has, puts the keys only v has and those whose value
 * changed. A note or a status change leaves the name, so nearly every key
 * stays: deleting and putting them all again wrote some 70 memtable
 * entries for one that changed. Out of memory, it does it the long way,
 * which gives the same state. */
static void reindex(const struct kz_node_keys *keys, const char *muni,
                    const Kizuna__Victim *old, const Kizuna__Victim *v,
                    kz_stor_batch *b)
{
    struct keyset o = {0}, n = {0};
    for_index_keys(keys, muni, old, collect_key, &o);
    for_index_keys(keys, muni, v, collect_key, &n);
    if (o.oom || n.oom) {
        for_index_keys(keys, muni, old, del_index, b);
        for_index_keys(keys, muni, v, put_index, b);
    } else {
        keyset_sort(&o);
        keyset_sort(&n);
        size_t i = 0, j = 0;
        while (i < o.n || j < n.n) {
            int c = i == o.n   ? 1
                    : j == n.n ? -1
                               : ikey_cmp3(o.buf.p, &o.v[i], n.buf.p, &n.v[j]);
            if (c < 0) {
                del_index(b, o.v[i].cf, o.buf.p + o.v[i].off, o.v[i].n,
                          NULL, 0);
                i++;
            } else if (c > 0 || !ikey_same_value(&o, &o.v[i], &n, &n.v[j])) {
                put_index(b, n.v[j].cf, n.buf.p + n.v[j].off, n.v[j].n,
                          n.buf.p + n.v[j].voff, n.v[j].vn);
                i += c == 0;
                j++;
            } else {
                i++;
                j++;
            }
        }
    }
    keyset_free(&o);
    keyset_free(&n);
}

/* -------------------------------------------------------------- counters */

struct delta {
    char shelter[72];
    const char *counter;
    long long d;
};

/* Counter changes of one command, summed per (shelter, counter) before
 * they are written: a counter is read from the store once, so two changes
 * to it in one batch (a move within a shelter, or an import of many people
 * into one shelter) must be added up first. Grows on the heap: an import
 * batch touches up to 2000 x 11 counters. */
struct deltas {
    struct delta *v;
    size_t n, cap;
    bool oom; /* a change could not be kept: the command must fail */
};

static void add_delta(struct deltas *ds, const char *shelter,
                      const char *counter, long long d)
{
    /* Newest first: an import's rows mostly share a few shelters. */
    for (size_t i = ds->n; i-- > 0;)
        if (strcmp(ds->v[i].counter, counter) == 0 &&
            strcmp(ds->v[i].shelter, shelter) == 0) {
            ds->v[i].d += d;
            return;
        }
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 32;
        struct delta *v = realloc(ds->v, cap * sizeof *v);
        if (v == NULL) {
            ds->oom = true;
            return;
        }
        ds->v = v;
        ds->cap = cap;
    }
    snprintf(ds->v[ds->n].shelter, sizeof ds->v[ds->n].shelter, "%s",
             shelter);
    ds->v[ds->n].counter = counter;
    ds->v[ds->n].d = d;
    ds->n++;
}

static void deltas_free(struct deltas *ds)
{
    free(ds->v);
    ds->v = NULL;
    ds->n = ds->cap = 0;
}

/* Adds (sign +1) or removes (-1) what record v contributes to its shelter. */
static void contribute(struct deltas *ds, const Kizuna__Victim *v, int sign)
{
    if (v->merged_into != NULL)
        return; /* a duplicate merged into another record: counted there */
    if (v == NULL || v->shelter_id == NULL)
        return;
    char name[48];
    add_delta(ds, v->shelter_id, "total", sign);
    snprintf(name, sizeof name, "sex_%s", v->sex ? v->sex : "unknown");
    for (const char *const *c = kz_node_counter_names; *c; c++)
        if (strcmp(*c, name) == 0)
            add_delta(ds, v->shelter_id, *c, sign);
    for (size_t i = 0; i < v->n_needs; i++) {
        snprintf(name, sizeof name, "needs_%s", v->needs[i]);
        for (const char *const *c = kz_node_counter_names; *c; c++)
            if (strcmp(*c, name) == 0)
                add_delta(ds, v->shelter_id, *c, sign);
    }
    snprintf(name, sizeof name, "status_%s", v->status ? v->status : "unknown");
    for (const char *const *c = kz_node_counter_names; *c; c++)
        if (strcmp(*c, name) == 0)
            add_delta(ds, v->shelter_id, *c, sign);
}

static long long get_counter(kz_stor *st, const char *key, size_t n)
{
    char *v;
    size_t vl;
    if (kz_stor_get(st, KZ_STOR_CF_INDEX, key, n, &v, &vl) != KZ_OK)
        return 0;
    long long x = 0;
    if (vl == 8)
        for (int i = 0; i < 8; i++)
            x = (long long)(((unsigned long long)x << 8) | (unsigned char)v[i]);
    free(v);
    return x;
}

/* Writes the summed changes and frees them. KZ_ENOMEM when a change was
 * lost: the node stops rather than keep counters that differ from the
 * other replicas'. */
static int write_deltas(kz_stor *st, kz_stor_batch *b, const char *muni,
                        struct deltas *ds)
{
    if (ds->oom) {
        deltas_free(ds);
        return KZ_ENOMEM;
    }
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->v[i].d == 0)
            continue;
        char key[KEY_MAX];
        size_t n = kz_node_make_key(key, muni, 'c', ds->v[i].shelter, ds->v[i].counter);
        if (n == 0)
            continue;
        unsigned long long x =
            (unsigned long long)(get_counter(st, key, n) + ds->v[i].d);
        unsigned char be[8];
        for (int j = 7; j >= 0; j--) {
            be[j] = (unsigned char)(x & 0xff);
            x >>= 8;
        }
        kz_stor_batch_put(b, KZ_STOR_CF_INDEX, key, n, be, 8);
    }
    deltas_free(ds);
    return KZ_OK;
}

/* ---------------------------------------------------------------- results */

void kz_node_result_victim(struct kz_node_result *r, int status,
                           const Kizuna__Victim *v)
{
    r->status = status;
    if (!r->want)
        return; /* nobody waits: nothing to write */
    size_t n = 0;
    char *js = kz_node_victim_json(v, &n);
    char *out = js ? malloc(n + 4) : NULL;
    if (out != NULL) {
        snprintf(out, 4, "%03d", status);
        memcpy(out + 3, js, n + 1);
        *r->buf = out;
        *r->len = n + 3;
    }
    free(js);
}

void kz_node_result_set(struct kz_node_result *r, int status, json_t *body)
{
    r->status = status;
    if (!r->want) {
        json_decref(body);
        return;
    }
    char *js = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (js == NULL)
        return;
    size_t n = strlen(js);
    char *out = malloc(n + 4);
    if (out != NULL) {
        snprintf(out, 4, "%03d", status);
        memcpy(out + 3, js, n + 1);
        *r->buf = out;
        *r->len = n + 3;
    }
    free(js);
}

void kz_node_result_error(struct kz_node_result *r, int status,
                          const char *code, const char *message)
{
    r->status = status;
    if (!r->want)
        return;
    json_t *e = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                          message);
    kz_node_result_set(r, status, e);
}

/* --------------------------------------------------------------- records */

int kz_node_put_sealed(kz_stor_batch *b, struct kz_node_keys *keys,
                       uint64_t index, const char *key, size_t kl,
                       const ProtobufCMessage *msg)
{
    size_t sz = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (buf == NULL)
        return KZ_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    unsigned char *sealed;
    size_t slen;
    int rv = kz_node_keys_seal_value(keys, index, key, kl, buf, sz, &sealed,
                                     &slen);
    OPENSSL_cleanse(buf, sz);
    free(buf);
    if (rv != KZ_OK)
        return rv;
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, kl, sealed, slen);
    free(sealed);
    return KZ_OK;
}

int kz_node_get_sealed(kz_stor *st, struct kz_node_keys *keys, int cf,
                       const char *key, size_t kl,
                       const ProtobufCMessageDescriptor *d,
                       ProtobufCMessage **out)
{
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, cf, key, kl, &v, &vl);
    if (rv != KZ_OK)
        return rv;
    unsigned char *plain;
    size_t pl;
    rv = kz_node_keys_open_value(keys, key, kl, v, vl, &plain, &pl);
    free(v);
    if (rv != KZ_OK)
        return rv == KZ_ENOTFOUND ? KZ_ECORRUPT : rv;
    *out = protobuf_c_message_unpack(d, NULL, pl, plain);
    OPENSSL_cleanse(plain, pl);
    free(plain);
    return *out ? KZ_OK : KZ_ECORRUPT;
}

static int store_victim(kz_stor_batch *b, struct kz_node_keys *keys,
                        uint64_t index, const char *muni,
                        const Kizuna__Victim *v)
{
    char key[KEY_MAX];
    size_t n = kz_node_make_key(key, muni, 'v', v->id, NULL);
    return kz_node_put_sealed(b, keys, index, key, n, &v->base);
}

/* Reads and opens a record once and decodes it into *out and, when copy is
 * not NULL, a second independent message (the image before a change, for
 * index and counter differences) without a second read and decryption. */
static int load_victim(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const char *id, Kizuna__Victim **out,
                       Kizuna__Victim **copy)
{
    char key[KEY_MAX];
    size_t n = kz_node_make_key(key, muni, 'v', id, NULL);
    if (n == 0)
        return KZ_ENOTFOUND;
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, n, &v, &vl);
    if (rv != KZ_OK)
        return rv;
    unsigned char *plain;
    size_t pl;
    rv = kz_node_keys_open_value(keys, key, n, v, vl, &plain, &pl);
    free(v);
    if (rv != KZ_OK)
        return rv == KZ_ENOTFOUND ? KZ_ECORRUPT : rv;
    *out = kizuna__victim__unpack(NULL, pl, plain);
    if (copy != NULL) {
        *copy = *out ? kizuna__victim__unpack(NULL, pl, plain) : NULL;
        if (*out != NULL && *copy == NULL) {
            kizuna__victim__free_unpacked(*out, NULL);
            *out = NULL;
        }
    }
    OPENSSL_cleanse(plain, pl);
    free(plain);
    return *out ? KZ_OK : KZ_ECORRUPT;
}

int kz_node_load_victim(kz_stor *st, struct kz_node_keys *keys,
                        const char *muni, const char *id, Kizuna__Victim **out)
{
    return load_victim(st, keys, muni, id, out, NULL);
}

int kz_node_load_shelter(kz_stor *st, const char *muni, const char *id,
                         Kizuna__Shelter **out)
{
    char key[KEY_MAX];
    size_t n = kz_node_make_key(key, muni, 's', id, NULL);
    if (n == 0)
        return KZ_ENOTFOUND;
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, n, &v, &vl);
    if (rv != KZ_OK)
        return rv;
    *out = kizuna__shelter__unpack(NULL, vl, (uint8_t *)v);
    free(v);
    return *out ? KZ_OK : KZ_ECORRUPT;
}

/* Moves the record's shelter history when its shelter changes. */
static int stay_change(Kizuna__Victim *v, const char *old_shelter,
                       int64_t now)
{
    const char *neu = v->shelter_id;
    if ((old_shelter == NULL && neu == NULL) ||
        (old_shelter && neu && strcmp(old_shelter, neu) == 0))
        return KZ_OK;
    if (old_shelter != NULL && v->n_shelter_history > 0) {
        Kizuna__ShelterStay *last =
            v->shelter_history[v->n_shelter_history - 1];
        if (!last->has_out_ms) {
            last->has_out_ms = 1;
            last->out_ms = now;
        }
    }
    if (neu == NULL)
        return KZ_OK;
    Kizuna__ShelterStay **h =
        realloc(v->shelter_history,
                (v->n_shelter_history + 1) * sizeof *v->shelter_history);
    if (h == NULL)
        return KZ_ENOMEM;
    v->shelter_history = h;
    Kizuna__ShelterStay *s = malloc(sizeof *s);
    if (s == NULL)
        return KZ_ENOMEM;
    kizuna__shelter_stay__init(s);
    s->shelter_id = strdup(neu);
    if (s->shelter_id == NULL) {
        free(s);
        return KZ_ENOMEM;
    }
    s->has_in_ms = 1;
    s->in_ms = now;
    h[v->n_shelter_history++] = s;
    return KZ_OK;
}

/* A registration into batch b; its shelter counters are added to ds,
 * which the caller writes. */
static int create_one(kz_stor *st, struct kz_node_keys *keys,
                      kz_stor_batch *b, const char *muni, uint64_t index,
                      const Kizuna__Command *cmd, struct kz_node_result *r,
                      struct deltas *ds)
{
    Kizuna__Victim *v = cmd->create_victim->victim;
    if (v == NULL || v->id == NULL || !kz_node_valid_ref(v->id)) {
        kz_node_result_error(r, 400, "bad_command", "create without a valid id");
        return KZ_OK;
    }
    Kizuna__Victim *old;
    int lrv = kz_node_load_victim(st, keys, muni, v->id, &old);
    if (lrv == KZ_OK) {
        kizuna__victim__free_unpacked(old, NULL);
        kz_node_result_error(r, 409, "conflict", "a record with this id exists");
        return KZ_OK;
    }
    if (lrv != KZ_ENOTFOUND)
        return lrv; /* unreadable here, maybe readable elsewhere: stop */
    v->has_version = 1;
    v->version = index;
    v->has_created_ms = v->has_updated_ms = 1;
    v->created_ms = v->updated_ms = cmd->time_ms;
    int rv = stay_change(v, NULL, cmd->time_ms);
    if (rv != KZ_OK)
        return rv;
    if ((rv = store_victim(b, keys, index, muni, v)) != KZ_OK)
        return rv;
    for_index_keys(keys, muni, v, put_index, b);
    contribute(ds, v, +1);
    r->status = 201;
    if (r->want)
        kz_node_result_victim(r, 201, v);
    return KZ_OK;
}

static int apply_create(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni, uint64_t index,
                        const Kizuna__Command *cmd, struct kz_node_result *r)
{
    struct deltas ds = {.n = 0};
    int rv = create_one(st, keys, b, muni, index, cmd, r, &ds);
    if (rv == KZ_OK && r->status == 201)
        return write_deltas(st, b, muni, &ds);
    deltas_free(&ds);
    return rv;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An import batch (CreateVictims): every record, its index keys, its
 * audit record (audit_command) and the shelter counters of all of them go
 * into this one batch, so search finds the imported people and the shelter
 * view counts them exactly as if each had been registered alone. All or
 * nothing: an invalid or repeated id, or one that exists, refuses the whole
 * command before anything is written (a proposer that draws random ids
 * never sends such a command, so refusing the batch costs nothing real and
 * keeps apply simple). */
static int apply_create_batch(kz_stor *st, struct kz_node_keys *keys,
                              kz_stor_batch *b, const char *muni,
                              uint64_t index, const Kizuna__Command *cmd,
                              struct kz_node_result *r)
{
    const Kizuna__CreateVictims *cv = cmd->create_victims;
    size_t n = cv->n_victims;
    if (n == 0 || n > KZ_NODE_IMPORT_MAX_ROWS) {
        kz_node_result_error(r, 400, "bad_command",
                             "an import batch holds 1 to 500 records");
        return KZ_OK;
    }
    const char **ids = malloc(n * sizeof *ids);
    if (ids == NULL)
        return KZ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const Kizuna__Victim *v = cv->victims[i];
        if (v->id == NULL || !kz_node_valid_ref(v->id) || v->name == NULL) {
            free(ids);
            kz_node_result_error(r, 400, "bad_command",
                                 "import record without a valid id or name");
            return KZ_OK;
        }
        ids[i] = v->id;
    }
    qsort(ids, n, sizeof *ids, cmp_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0) {
            free(ids);
            kz_node_result_error(r, 400, "bad_command",
                                 "an id is named twice in one import batch");
            return KZ_OK;
        }
    free(ids);
    for (size_t i = 0; i < n; i++) {
        Kizuna__Victim *old;
        int lrv = kz_node_load_victim(st, keys, muni, cv->victims[i]->id, &old);
        if (lrv == KZ_OK) {
            kizuna__victim__free_unpacked(old, NULL);
            kz_node_result_error(r, 409, "conflict",
                                 "a record with an id of this batch exists");
            return KZ_OK;
        }
        if (lrv != KZ_ENOTFOUND)
            return lrv;
    }
    struct deltas ds = {.n = 0};
    json_t *idl = r->want ? json_array() : NULL;
    int rv = KZ_OK;
    for (size_t i = 0; i < n && rv == KZ_OK; i++) {
        Kizuna__Victim *v = cv->victims[i];
        v->has_version = 1;
        v->version = index;
        v->has_created_ms = v->has_updated_ms = 1;
        v->created_ms = v->updated_ms = cmd->time_ms;
        if ((rv = stay_change(v, NULL, cmd->time_ms)) != KZ_OK)
            break;
        if ((rv = store_victim(b, keys, index, muni, v)) != KZ_OK)
            break;
        for_index_keys(keys, muni, v, put_index, b);
        contribute(&ds, v, +1);
        if (idl != NULL)
            json_array_append_new(idl, json_string(v->id));
    }
    if (rv != KZ_OK) {
        deltas_free(&ds);
        json_decref(idl);
        return rv;
    }
    if ((rv = write_deltas(st, b, muni, &ds)) != KZ_OK) {
        json_decref(idl);
        return rv;
    }
    r->status = 200;
    if (r->want)
        kz_node_result_set(r, 200, json_pack("{s:I,s:o}", "accepted",
                                             (json_int_t)n, "ids", idl));
    return KZ_OK;
}

/* ------------------------------------------------------------ PFIF */

static int patch_field(Kizuna__Victim *dst, Kizuna__Victim *src,
                       const char *name);

/* The record a PFIF person_record_id names: the 'P' index (a blind term of
 * the id -> the victim id) for records that came from PFIF, or, for an id
 * of this register's own exports (KZ_NODE_PFIF_NATIVE_PREFIX + victim id),
 * that victim when it exists. KZ_ENOTFOUND when neither. */
static int pfif_lookup(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const char *pid, char out[80])
{
    char key[KEY_MAX], blind[KZ_NODE_BLIND_HEX];
    kz_node_keys_blind(keys, 'P', pid, strlen(pid), blind);
    size_t n = kz_node_make_key(key, muni, 'P', blind, NULL);
    char *v;
    size_t vl;
    int rv = n ? kz_stor_get(st, KZ_STOR_CF_INDEX, key, n, &v, &vl)
               : KZ_ENOTFOUND;
    if (rv == KZ_OK) {
        snprintf(out, 80, "%.*s", (int)(vl < 79 ? vl : 79), v);
        free(v);
        return KZ_OK;
    }
    if (rv != KZ_ENOTFOUND)
        return rv;
    size_t pl = strlen(KZ_NODE_PFIF_NATIVE_PREFIX);
    if (strncmp(pid, KZ_NODE_PFIF_NATIVE_PREFIX, pl) != 0 ||
        !kz_node_valid_ref(pid + pl))
        return KZ_ENOTFOUND;
    n = kz_node_make_key(key, muni, 'v', pid + pl, NULL);
    if (n == 0 || (rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, n, &v,
                                    &vl)) != KZ_OK)
        return rv;
    free(v);
    snprintf(out, 80, "%s", pid + pl);
    return KZ_OK;
}

/* Not a kz_error: a new record's id that is taken (409), inside apply. */
#define PFIF_ID_TAKEN (-1000)

/* The status a batch of new notes gives the record: that of the latest
 * one (by time, then order) that says something, i.e. is not "unknown";
 * NULL when none does. notes[from..n) are the new ones. */
static const char *pfif_notes_status(const Kizuna__Victim *v, size_t from)
{
    const Kizuna__Note *best = NULL;
    for (size_t i = from; i < v->n_notes; i++) {
        const Kizuna__Note *n = v->notes[i];
        if (n->status == NULL || strcmp(n->status, "unknown") == 0)
            continue;
        if (best == NULL || n->at_ms >= best->at_ms)
            best = n;
    }
    return best ? best->status : NULL;
}

static int set_status(Kizuna__Victim *v, const char *st)
{
    if (st == NULL)
        return KZ_OK;
    char *c = strdup(st);
    if (c == NULL)
        return KZ_ENOMEM;
    free(v->status);
    v->status = c;
    return KZ_OK;
}

/* Moves src's notes whose pfif_note_id dst does not hold yet to the end
 * of dst's (dated now when the note had no date); frees the others. */
static int pfif_merge_notes(Kizuna__Victim *dst, Kizuna__Victim *src,
                            int64_t now, size_t *added)
{
    int rv = KZ_OK;
    *added = 0;
    for (size_t i = 0; i < src->n_notes; i++) {
        Kizuna__Note *n = src->notes[i];
        bool have = false;
        for (size_t j = 0; !have && j < dst->n_notes; j++)
            have = dst->notes[j]->pfif_note_id != NULL &&
                   n->pfif_note_id != NULL &&
                   strcmp(dst->notes[j]->pfif_note_id, n->pfif_note_id) == 0;
        if (have || rv != KZ_OK)
            continue;
        Kizuna__Note **nn =
            realloc(dst->notes, (dst->n_notes + 1) * sizeof *nn);
        if (nn == NULL) {
            rv = KZ_ENOMEM;
            continue;
        }
        dst->notes = nn;
        if (!n->has_at_ms) {
            n->has_at_ms = 1;
            n->at_ms = now;
        }
        nn[dst->n_notes++] = n;
        src->notes[i] = NULL;
        (*added)++;
    }
    for (size_t i = 0; i < src->n_notes; i++)
        if (src->notes[i] != NULL)
            kizuna__note__free_unpacked(src->notes[i], NULL);
    free(src->notes);
    src->notes = NULL;
    src->n_notes = 0;
    return rv;
}

static int cmp_pid(const void *a, const void *b)
{
    const Kizuna__PfifPerson *x = *(const Kizuna__PfifPerson *const *)a;
    const Kizuna__PfifPerson *y = *(const Kizuna__PfifPerson *const *)b;
    return strcmp(x->victim->pfif_record_id, y->victim->pfif_record_id);
}

/* One PFIF import batch (ImportPfif, kizuna.proto): every person is
 * created, or updated when the 'P' index (or the native id prefix) names
 * its record; one RocksDB batch holds every record, index key, counter and
 * per-person audit record. All or nothing: a malformed entry or a record
 * id named twice refuses the command (400), a new id that exists too
 * (409), before anything is written. */
static int apply_import_pfif(kz_stor *st, struct kz_node_keys *keys,
                             kz_stor_batch *b, const char *muni,
                             uint64_t index, const Kizuna__Command *cmd,
                             struct kz_node_result *r)
{
    const Kizuna__ImportPfif *ip = cmd->import_pfif;
    size_t n = ip->n_persons;
    if (n == 0 || n > KZ_NODE_PFIF_MAX_PERSONS) {
        kz_node_result_error(r, 400, "bad_command",
                             "a PFIF batch holds 1 to 500 persons");
        return KZ_OK;
    }
    for (size_t i = 0; i < n; i++) {
        const Kizuna__PfifPerson *p = ip->persons[i];
        const Kizuna__Victim *v = p->victim;
        bool ok = v != NULL && v->pfif_record_id != NULL &&
                  kz_node_valid_text(v->pfif_record_id, KZ_NODE_PFIF_ID_MAX);
        if (ok && !p->notes_only)
            ok = v->id != NULL && kz_node_valid_ref(v->id) && v->name != NULL;
        /* Only the fields a PFIF person maps to (pfif.c); a name set
         * must come with a name, so a record never loses it. */
        static const char *const mapped[] = {"name", "name_kana",
                                             "name_reading", "dob", "sex",
                                             "address", NULL};
        for (size_t j = 0; ok && j < p->n_set; j++)
            ok = kz_node_valid_code(p->set[j], mapped) &&
                 (strcmp(p->set[j], "name") != 0 || v->name != NULL);
        for (size_t j = 0; ok && j < v->n_notes; j++)
            ok = v->notes[j]->status != NULL &&
                 kz_node_valid_code(v->notes[j]->status,
                                    kz_node_status_codes);
        if (!ok) {
            kz_node_result_error(r, 400, "bad_command",
                                 "PFIF person without a valid record id, id, "
                                 "name or note status");
            return KZ_OK;
        }
    }
    const Kizuna__PfifPerson **sorted = malloc(n * sizeof *sorted);
    char (*found)[80] = calloc(n, sizeof *found);
    if (sorted == NULL || found == NULL) {
        free(sorted);
        free(found);
        return KZ_ENOMEM;
    }
    memcpy(sorted, ip->persons, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_pid);
    bool dup = false;
    for (size_t i = 1; i < n; i++)
        dup = dup || strcmp(sorted[i - 1]->victim->pfif_record_id,
                            sorted[i]->victim->pfif_record_id) == 0;
    free(sorted);
    if (dup) {
        free(found);
        kz_node_result_error(r, 400, "bad_command",
                             "a PFIF record id is named twice in one batch");
        return KZ_OK;
    }
    int rv = KZ_OK;
    for (size_t i = 0; i < n && rv == KZ_OK; i++) {
        Kizuna__PfifPerson *p = ip->persons[i];
        rv = pfif_lookup(st, keys, muni, p->victim->pfif_record_id, found[i]);
        if (rv == KZ_ENOTFOUND) {
            found[i][0] = '\0';
            rv = KZ_OK;
            if (p->notes_only)
                continue;
            /* A new record: its id must be free, and not drawn twice. */
            for (size_t j = 0; j < i && rv == KZ_OK; j++)
                if (!ip->persons[j]->notes_only && found[j][0] == '\0' &&
                    strcmp(ip->persons[j]->victim->id, p->victim->id) == 0)
                    rv = PFIF_ID_TAKEN;
            Kizuna__Victim *old = NULL;
            int lrv = rv == KZ_OK ? kz_node_load_victim(st, keys, muni,
                                                        p->victim->id, &old)
                                  : KZ_OK;
            if (lrv == KZ_OK) {
                if (old)
                    kizuna__victim__free_unpacked(old, NULL);
                rv = PFIF_ID_TAKEN;
            } else if (lrv != KZ_ENOTFOUND)
                rv = lrv;
        }
    }
    if (rv == PFIF_ID_TAKEN) {
        free(found);
        kz_node_result_error(r, 409, "conflict",
                             "a new record's id exists (or is drawn twice)");
        return KZ_OK;
    }
    if (rv != KZ_OK) {
        free(found);
        return rv;
    }
    struct kz_node_audit_head h;
    memset(&h, 0, sizeof h);
    if (cmd->audit != NULL && (rv = kz_node_audit_load_head(st, &h)) != KZ_OK) {
        free(found);
        return rv;
    }
    struct deltas ds = {.n = 0};
    json_t *list = json_array();
    size_t created = 0, updated = 0, notes_added = 0;
    for (size_t i = 0; i < n && rv == KZ_OK; i++) {
        Kizuna__PfifPerson *p = ip->persons[i];
        Kizuna__Victim *src = p->victim, *v = NULL, *old = NULL;
        const char *outcome;
        size_t added = 0;
        if (found[i][0] == '\0' && p->notes_only) {
            json_array_append_new(
                list, json_pack("{s:s,s:n,s:s,s:I}", "record_id",
                                src->pfif_record_id, "id", "outcome",
                                "not_found", "line", (json_int_t)p->line));
            continue;
        }
        if (found[i][0] == '\0') {
            /* Created: the proposer's record, dated and indexed here. */
            v = src;
            v->has_version = v->has_created_ms = v->has_updated_ms = 1;
            v->version = index;
            v->created_ms = v->updated_ms = cmd->time_ms;
            for (size_t j = 0; j < v->n_notes; j++)
                if (!v->notes[j]->has_at_ms) {
                    v->notes[j]->has_at_ms = 1;
                    v->notes[j]->at_ms = cmd->time_ms;
                }
            added = v->n_notes;
            if ((rv = set_status(v, pfif_notes_status(v, 0))) != KZ_OK ||
                (rv = stay_change(v, NULL, cmd->time_ms)) != KZ_OK ||
                (rv = store_victim(b, keys, index, muni, v)) != KZ_OK)
                break;
            for_index_keys(keys, muni, v, put_index, b);
            contribute(&ds, v, +1);
            char key[KEY_MAX], blind[KZ_NODE_BLIND_HEX];
            kz_node_keys_blind(keys, 'P', v->pfif_record_id,
                               strlen(v->pfif_record_id), blind);
            size_t kl = kz_node_make_key(key, muni, 'P', blind, NULL);
            if (kl > 0)
                kz_stor_batch_put(b, KZ_STOR_CF_INDEX, key, kl, v->id,
                                  strlen(v->id));
            created++;
            outcome = "created";
        } else {
            /* Updated: the document's fields replace the record's, its
             * new notes are appended (patch_field and the notes move out
             * of the command, which is freed after apply). */
            if ((rv = load_victim(st, keys, muni, found[i], &v, &old)) !=
                KZ_OK)
                break;
            for (size_t j = 0; j < p->n_set && !p->notes_only; j++)
                (void)patch_field(v, src, p->set[j]); /* names checked */
            size_t before = v->n_notes;
            if (rv == KZ_OK)
                rv = pfif_merge_notes(v, src, cmd->time_ms, &added);
            if (rv == KZ_OK)
                rv = set_status(v, pfif_notes_status(v, before));
            if (rv == KZ_OK)
                rv = stay_change(v, old->shelter_id, cmd->time_ms);
            if (rv == KZ_OK) {
                v->has_version = v->has_updated_ms = 1;
                v->version = index;
                v->updated_ms = cmd->time_ms;
                rv = store_victim(b, keys, index, muni, v);
            }
            if (rv == KZ_OK) {
                for_index_keys(keys, muni, old, del_index, b);
                for_index_keys(keys, muni, v, put_index, b);
                contribute(&ds, old, -1);
                contribute(&ds, v, +1);
            }
            updated++;
            outcome = "updated";
        }
        notes_added += added;
        if (rv == KZ_OK && cmd->audit != NULL) {
            /* Audited as the single calls it stands for: a registration
             * or a change of that record, tied by the import's request
             * id. */
            Kizuna__AuditContext ctx = *cmd->audit;
            ctx.action = v == src ? "victim.create" : "victim.patch";
            ctx.subject = v->id;
            ctx.person = NULL;
            ctx.has_outcome = 1;
            ctx.outcome = v == src ? 201 : 200;
            rv = kz_node_audit_append(b, muni, &h, index, cmd->time_ms, &ctx);
        }
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:s,s:I}", "record_id",
                            v->pfif_record_id ? v->pfif_record_id
                                              : src->pfif_record_id,
                            "id", v->id, "outcome", outcome, "line",
                            (json_int_t)p->line));
        if (v != src)
            kizuna__victim__free_unpacked(v, NULL);
        if (old != NULL)
            kizuna__victim__free_unpacked(old, NULL);
    }
    free(found);
    if (rv != KZ_OK) {
        deltas_free(&ds);
        json_decref(list);
        return rv;
    }
    if (cmd->audit != NULL)
        kz_node_audit_put_head(b, &h);
    if ((rv = write_deltas(st, b, muni, &ds)) != KZ_OK) {
        json_decref(list);
        return rv;
    }
    r->status = 200;
    if (r->want)
        kz_node_result_set(
            r, 200,
            json_pack("{s:I,s:I,s:I,s:o}", "created", (json_int_t)created,
                      "updated", (json_int_t)updated, "notes_added",
                      (json_int_t)notes_added, "persons", list));
    else
        json_decref(list);
    return KZ_OK;
}

/* Replaces field `name` of dst by the one in src (absent in src: cleared). */
static int patch_field(Kizuna__Victim *dst, Kizuna__Victim *src,
                       const char *name)
{
#define KZ__STR_FIELD(f)                                                      \
    if (strcmp(name, #f) == 0) {                                              \
        free(dst->f);                                                         \
        dst->f = src->f;                                                      \
        src->f = NULL;                                                        \
        return KZ_OK;                                                         \
    }
    KZ__STR_FIELD(name)
    KZ__STR_FIELD(name_kana)
    KZ__STR_FIELD(name_reading) /* issue 9: set by the proposer with name */
    KZ__STR_FIELD(dob)
    KZ__STR_FIELD(sex)
    KZ__STR_FIELD(address)
    KZ__STR_FIELD(household_id)
    KZ__STR_FIELD(damage)
    KZ__STR_FIELD(shelter_id)
    KZ__STR_FIELD(status)
    KZ__STR_FIELD(contact)
    KZ__STR_FIELD(damage_certified_on)
#undef KZ__STR_FIELD
    if (strcmp(name, "needs") == 0) {
        for (size_t i = 0; i < dst->n_needs; i++)
            free(dst->needs[i]);
        free(dst->needs);
        dst->needs = src->needs;
        dst->n_needs = src->n_needs;
        src->needs = NULL;
        src->n_needs = 0;
        return KZ_OK;
    }
    if (strcmp(name, "consent") == 0) {
        if (dst->consent)
            kizuna__consent__free_unpacked(dst->consent, NULL);
        dst->consent = src->consent;
        src->consent = NULL;
        return KZ_OK;
    }
    return KZ_EINVAL;
}

/* The end of a change to victim v (old: its image before): new version and
 * time, stored, index keys moved when reindex, shelter counts moved, and
 * the record as the 200 result. */
static int store_changed(kz_stor *st, struct kz_node_keys *keys,
                         kz_stor_batch *b, const char *muni, uint64_t index,
                         int64_t time_ms, const Kizuna__Victim *old,
                         Kizuna__Victim *v, bool reindex_keys,
                         struct kz_node_result *r)
{
    v->version = index;
    v->has_updated_ms = 1;
    v->updated_ms = time_ms;
    int rv = store_victim(b, keys, index, muni, v);
    if (rv != KZ_OK)
        return rv;
    if (reindex_keys)
        reindex(keys, muni, old, v, b);
    struct deltas ds = {.n = 0};
    contribute(&ds, old, -1);
    contribute(&ds, v, +1);
    if ((rv = write_deltas(st, b, muni, &ds)) != KZ_OK)
        return rv;
    r->status = 200;
    if (r->want)
        kz_node_result_victim(r, 200, v);
    return KZ_OK;
}

static int apply_patch(kz_stor *st, struct kz_node_keys *keys, kz_stor_batch *b,
                        const char *muni,
                       uint64_t index, const Kizuna__Command *cmd,
                       struct kz_node_result *r)
{
    Kizuna__PatchVictim *p = cmd->patch_victim;
    Kizuna__Victim *v = NULL, *old = NULL;
    int rv;
    if (p->id == NULL || p->fields == NULL) {
        kz_node_result_error(r, 400, "bad_command", "patch without id or fields");
        return KZ_OK;
    }
    /* v is changed; old keeps the image for index and counter differences. */
    rv = load_victim(st, keys, muni, p->id, &v, &old);
    if (rv == KZ_ENOTFOUND) {
        kz_node_result_error(r, 404, "not_found", "no victim with this id");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    if (p->has_if_match && p->if_match != v->version) {
        char msg[96];
        snprintf(msg, sizeof msg, "version is %llu, not %llu",
                 (unsigned long long)v->version,
                 (unsigned long long)p->if_match);
        kz_node_result_error(r, 412, "version_mismatch", msg);
        kizuna__victim__free_unpacked(v, NULL);
        kizuna__victim__free_unpacked(old, NULL);
        return KZ_OK;
    }
    for (size_t i = 0; i < p->n_set; i++)
        if (patch_field(v, p->fields, p->set[i]) != KZ_OK) {
            kz_node_result_error(r, 400, "bad_command", "patch of an unknown field");
            rv = KZ_OK;
            goto out;
        }
    if (v->name == NULL) {
        kz_node_result_error(r, 400, "bad_request", "name: must not be removed");
        rv = KZ_OK;
        goto out;
    }
    if ((rv = stay_change(v, old->shelter_id, cmd->time_ms)) != KZ_OK)
        goto out;
    rv = store_changed(st, keys, b, muni, index, cmd->time_ms, old, v, true,
                       r);
out:
    if (old)
        kizuna__victim__free_unpacked(old, NULL);
    kizuna__victim__free_unpacked(v, NULL);
    return rv;
}

/* MergeVictim: marks a duplicate (or undoes it). Nothing is deleted: the
 * duplicate keeps its data, notes and index keys; searches and shelter
 * counts leave it out while merged_into is set. */
static int apply_merge(kz_stor *st, struct kz_node_keys *keys,
                       kz_stor_batch *b, const char *muni, uint64_t index,
                       const Kizuna__Command *cmd, struct kz_node_result *r)
{
    const Kizuna__MergeVictim *m = cmd->merge_victim;
    bool undo = m->has_undo && m->undo;
    if (m->id == NULL || (!undo && (m->into == NULL || !m->into[0]))) {
        kz_node_result_error(r, 400, "bad_command", "merge without ids");
        return KZ_OK;
    }
    if (!undo && strcmp(m->id, m->into) == 0) {
        kz_node_result_error(r, 400, "bad_request",
                             "into: a record cannot be merged into itself");
        return KZ_OK;
    }
    Kizuna__Victim *v = NULL, *old = NULL, *target = NULL;
    int rv = load_victim(st, keys, muni, m->id, &v, &old);
    if (rv == KZ_ENOTFOUND) {
        kz_node_result_error(r, 404, "not_found", "no victim with this id");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    snprintf(r->subject, sizeof r->subject, "%s", m->id);
    if (m->has_if_match && m->if_match != v->version) {
        char msg[96];
        snprintf(msg, sizeof msg, "version is %llu, not %llu",
                 (unsigned long long)v->version,
                 (unsigned long long)m->if_match);
        kz_node_result_error(r, 412, "version_mismatch", msg);
        goto out;
    }
    if (undo && v->merged_into == NULL) {
        kz_node_result_error(r, 409, "not_merged",
                             "this record is not merged into another");
        goto out;
    }
    if (!undo && v->merged_into != NULL) {
        kz_node_result_error(r, 409, "already_merged",
                             "this record is merged already (undo first)");
        goto out;
    }
    if (!undo) {
        rv = kz_node_load_victim(st, keys, muni, m->into, &target);
        if (rv == KZ_ENOTFOUND) {
            rv = KZ_OK;
            kz_node_result_error(r, 404, "not_found",
                                 "into: no victim with this id");
            goto out;
        }
        if (rv != KZ_OK)
            goto out;
        if (target->merged_into != NULL) {
            kz_node_result_error(r, 409, "already_merged",
                                 "into: that record is itself merged into "
                                 "another; merge into that one");
            goto out;
        }
    }
    free(v->merged_into);
    v->merged_into = undo ? NULL : strdup(m->into);
    if (!undo && v->merged_into == NULL) {
        rv = KZ_ENOMEM;
        goto out;
    }
    /* The index keys stay: searches skip merged records. */
    rv = store_changed(st, keys, b, muni, index, cmd->time_ms, old, v, false,
                       r);
out:
    if (target)
        kizuna__victim__free_unpacked(target, NULL);
    kizuna__victim__free_unpacked(old, NULL);
    kizuna__victim__free_unpacked(v, NULL);
    return rv;
}

static int apply_note(kz_stor *st, struct kz_node_keys *keys, kz_stor_batch *b,
                        const char *muni,
                      uint64_t index, const Kizuna__Command *cmd,
                      struct kz_node_result *r)
{
    Kizuna__AddNote *a = cmd->add_note;
    Kizuna__Victim *v = NULL, *old = NULL;
    if (a->victim_id == NULL || a->note == NULL || a->note->status == NULL ||
        !kz_node_valid_code(a->note->status, kz_node_status_codes)) {
        kz_node_result_error(r, 400, "bad_command", "note without victim or status");
        return KZ_OK;
    }
    int rv = load_victim(st, keys, muni, a->victim_id, &v, &old);
    if (rv == KZ_ENOTFOUND) {
        kz_node_result_error(r, 404, "not_found", "no victim with this id");
        return KZ_OK;
    }
    if (rv != KZ_OK)
        return rv;
    Kizuna__Note **notes =
        realloc(v->notes, (v->n_notes + 1) * sizeof *v->notes);
    if (notes == NULL) {
        rv = KZ_ENOMEM;
        goto out;
    }
    v->notes = notes;
    Kizuna__Note *n = a->note;
    a->note = NULL; /* moved into the record */
    n->has_at_ms = 1;
    n->at_ms = cmd->time_ms;
    notes[v->n_notes++] = n;
    free(v->status);
    v->status = strdup(n->status);
    if (v->status == NULL) {
        rv = KZ_ENOMEM;
        goto out;
    }
    v->version = index;
    v->updated_ms = cmd->time_ms;
    if ((rv = store_victim(b, keys, index, muni, v)) != KZ_OK)
        goto out;
    reindex(keys, muni, old, v, b);
    struct deltas ds = {.n = 0};
    contribute(&ds, old, -1);
    contribute(&ds, v, +1);
    if ((rv = write_deltas(st, b, muni, &ds)) != KZ_OK)
        goto out;
    r->status = 201;
    if (r->want)
        kz_node_result_victim(r, 201, v);
out:
    if (old)
        kizuna__victim__free_unpacked(old, NULL);
    kizuna__victim__free_unpacked(v, NULL);
    return rv;
}

static int apply_shelter(kz_stor *st, struct kz_node_keys *keys, kz_stor_batch *b,
                        const char *muni,
                         uint64_t index, const Kizuna__Command *cmd,
                         struct kz_node_result *r)
{
    (void)keys; /* shelters are not personal data: stored in the clear */
    Kizuna__Shelter *s = cmd->put_shelter->shelter;
    if (s == NULL || s->id == NULL || !kz_node_valid_ref(s->id)) {
        kz_node_result_error(r, 400, "bad_command", "shelter without a valid id");
        return KZ_OK;
    }
    Kizuna__Shelter *old = NULL;
    int existed = kz_node_load_shelter(st, muni, s->id, &old) == KZ_OK;
    if (old)
        kizuna__shelter__free_unpacked(old, NULL);
    s->has_version = 1;
    s->version = index;
    s->has_updated_ms = 1;
    s->updated_ms = cmd->time_ms;
    char key[KEY_MAX];
    size_t n = kz_node_make_key(key, muni, 's', s->id, NULL);
    size_t sz = kizuna__shelter__get_packed_size(s);
    uint8_t *buf = malloc(sz ? sz : 1);
    if (buf == NULL)
        return KZ_ENOMEM;
    kizuna__shelter__pack(s, buf);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, n, buf, sz);
    free(buf);
    r->status = existed ? 200 : 201;
    if (r->want)
        kz_node_result_set(r, existed ? 200 : 201, kz_node_shelter_to_json(s));
    return KZ_OK;
}

/* ----------------------------------------------------------------- audit */

/* The record id a command is about. */
static const char *command_subject(const Kizuna__Command *cmd)
{
    switch (cmd->op_case) {
    case KIZUNA__COMMAND__OP_CREATE_VICTIM:
        return cmd->create_victim->victim ? cmd->create_victim->victim->id
                                          : NULL;
    case KIZUNA__COMMAND__OP_PATCH_VICTIM:
        return cmd->patch_victim->id;
    case KIZUNA__COMMAND__OP_MERGE_VICTIM:
        return cmd->merge_victim->id;
    case KIZUNA__COMMAND__OP_ADD_NOTE:
        return cmd->add_note->victim_id;
    case KIZUNA__COMMAND__OP_PUT_SHELTER:
        return cmd->put_shelter->shelter ? cmd->put_shelter->shelter->id
                                         : NULL;
    default:
        return NULL;
    }
}

static const char *command_action(const Kizuna__Command *cmd)
{
    switch (cmd->op_case) {
    case KIZUNA__COMMAND__OP_CREATE_VICTIM:
        return "victim.create";
    case KIZUNA__COMMAND__OP_CREATE_VICTIMS:
        return "victim.import";
    case KIZUNA__COMMAND__OP_IMPORT_PFIF:
        return "victim.import_pfif";
    case KIZUNA__COMMAND__OP_PATCH_VICTIM:
        return "victim.patch";
    case KIZUNA__COMMAND__OP_MERGE_VICTIM:
        return cmd->merge_victim->has_undo && cmd->merge_victim->undo
                   ? "victim.unmerge"
                   : "victim.merge";
    case KIZUNA__COMMAND__OP_ADD_NOTE:
        return "victim.note";
    case KIZUNA__COMMAND__OP_PUT_SHELTER:
        return "shelter.put";
    case KIZUNA__COMMAND__OP_PUT_ORG:
        return "org.put";
    case KIZUNA__COMMAND__OP_PUT_WHITELIST:
        return "whitelist.put";
    case KIZUNA__COMMAND__OP_ISSUE_LINK:
        return "linkcode.issue";
    case KIZUNA__COMMAND__OP_UNLINK:
        return "linkcode.unlink";
    case KIZUNA__COMMAND__OP_CREATE_MEDIATION:
        return "mediation.request";
    case KIZUNA__COMMAND__OP_REPLY_MEDIATION:
        return "mediation.reply";
    case KIZUNA__COMMAND__OP_AUDIT_PRUNE:
        return "audit.prune";
    case KIZUNA__COMMAND__OP_PUT_PHOTO:
        return "photo.put";
    case KIZUNA__COMMAND__OP_CREATE_CHALLENGE:
        return "identity.challenge";
    case KIZUNA__COMMAND__OP_BIND_CARD:
        return "identity.card_bind";
    case KIZUNA__COMMAND__OP_VERIFY_IDENTITY:
        return "identity.verify";
    case KIZUNA__COMMAND__OP_PUT_CRL:
        return "identity.crl_put";
    case KIZUNA__COMMAND__OP_IDENTITY_FALLBACK:
        return "identity.fallback";
    case KIZUNA__COMMAND__OP_PUT_PROGRAM:
        return "program.put";
    case KIZUNA__COMMAND__OP_CREATE_PAYOUT:
        return "payout.create";
    case KIZUNA__COMMAND__OP_EXPORT_PAYOUTS:
        return "payout.export";
    default:
        return "other";
    }
}

/* Appends the record of cmd (which carries cmd->audit) with the outcome
 * r to the chain at head h, which the caller puts. */
static int audit_one(kz_stor_batch *b, const char *muni,
                     struct kz_node_audit_head *h, uint64_t index,
                     const Kizuna__Command *cmd,
                     const struct kz_node_result *r)
{
    Kizuna__AuditContext ctx = *cmd->audit;
    ctx.action = (char *)command_action(cmd);
    ctx.subject = r->subject[0] ? (char *)r->subject
                                : (char *)command_subject(cmd);
    ctx.person = r->person[0] ? (char *)r->person : NULL;
    ctx.has_outcome = 1;
    ctx.outcome = r->status ? r->status : 200;
    return kz_node_audit_append(b, muni, h, index, cmd->time_ms, &ctx);
}

/* Every register command carries who asked (cmd->audit); its record goes
 * into the log in the same batch, with the outcome decided here. */
static int audit_command(kz_stor *st, kz_stor_batch *b, const char *muni,
                         uint64_t index, const Kizuna__Command *cmd,
                         const struct kz_node_result *r)
{
    struct kz_node_audit_head h;
    int rv = kz_node_audit_load_head(st, &h);
    if (rv != KZ_OK)
        return rv;
    Kizuna__AuditContext ctx = *cmd->audit;
    if (cmd->op_case == KIZUNA__COMMAND__OP_CREATE_VICTIMS &&
        r->status == 200) {
        /* An import is audited as the registrations it made: one
         * victim.create record per person, as a single POST would write;
         * the shared request id ties them to the import. */
        ctx.action = "victim.create";
        ctx.person = NULL;
        ctx.has_outcome = 1;
        ctx.outcome = 201;
        const Kizuna__CreateVictims *cv = cmd->create_victims;
        for (size_t i = 0; rv == KZ_OK && i < cv->n_victims; i++) {
            ctx.subject = cv->victims[i]->id;
            rv = kz_node_audit_append(b, muni, &h, index, cmd->time_ms, &ctx);
        }
        if (rv == KZ_OK)
            kz_node_audit_put_head(b, &h);
        return rv;
    }
    rv = audit_one(b, muni, &h, index, cmd, r);
    if (rv == KZ_OK)
        kz_node_audit_put_head(b, &h);
    return rv;
}

/* ------------------------------------------------- merged registrations */

struct each_id {
    const char *id;
    size_t at;
};

static int cmp_each_id(const void *a, const void *b)
{
    const struct each_id *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Marks in later[i] the registrations of ce whose (well-formed) id an
 * earlier one of the entry names: applied in turn, the earlier one took
 * it, or was refused because a record holds it, so the later one is a
 * conflict either way. Sorting, not pairs: an entry's size is whatever
 * the leader made. */
static int each_later_ids(const Kizuna__CreateEach *ce, bool *later)
{
    size_t n = ce->n_creates, k = 0;
    struct each_id *v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL)
        return KZ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        later[i] = false;
        const Kizuna__Victim *x = ce->creates[i]->victim;
        if (x != NULL && x->id != NULL && kz_node_valid_ref(x->id))
            v[k++] = (struct each_id){x->id, i};
    }
    qsort(v, k, sizeof *v, cmp_each_id);
    for (size_t i = 1; i < k; i++)
        if (strcmp(v[i - 1].id, v[i].id) == 0)
            later[v[i].at] = true;
    free(v);
    return KZ_OK;
}

/* Registrations the leader merged into one entry (CreateEach,
 * kz_node_merge_creates): each applied in turn into this one batch as if
 * alone, with its own result and audit record. What one registration reads
 * from the store (does its id exist) cannot see what an earlier one of the
 * entry put in the batch, so ids named earlier in the entry are found
 * first (each_later_ids), and shelter counters and the audit chain's head
 * are carried across the entry in memory and written once. When wanted,
 * the result is the results in order, each a 4-byte big-endian length then
 * its bytes (kz_cons_fsm.merge_each): never "NNN" + JSON of its own. */
static int apply_create_each(kz_stor *st, struct kz_node_keys *keys,
                             kz_stor_batch *b, const char *muni,
                             uint64_t index, const Kizuna__Command *cmd,
                             struct kz_node_result *r)
{
    const Kizuna__CreateEach *ce = cmd->create_each;
    size_t n = ce->n_creates;
    struct kz_node_audit_head h;
    int rv = kz_node_audit_load_head(st, &h);
    if (rv != KZ_OK)
        return rv;
    bool *later = malloc(n ? n : 1);
    if (later == NULL)
        return KZ_ENOMEM;
    if ((rv = each_later_ids(ce, later)) != KZ_OK) {
        free(later);
        return rv;
    }
    size_t audited = 0;
    struct deltas ds = {.n = 0};
    unsigned char *out = NULL;
    size_t out_len = 0, out_cap = 0;
    for (size_t i = 0; rv == KZ_OK && i < n; i++) {
        const Kizuna__EachCreate *e = ce->creates[i];
        Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
        cv.victim = e->victim;
        Kizuna__Command one = KIZUNA__COMMAND__INIT;
        one.has_time_ms = 1;
        one.time_ms = e->time_ms;
        one.request_id = e->request_id;
        one.municipality = (char *)muni;
        one.audit = e->audit;
        one.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
        one.create_victim = &cv;
        char *res = NULL;
        size_t res_len = 0;
        struct kz_node_result sr = {.want = r->want, .buf = &res,
                                    .len = &res_len};
        if (later[i])
            kz_node_result_error(&sr, 409, "conflict",
                                 "a record with this id exists");
        else
            rv = create_one(st, keys, b, muni, index, &one, &sr, &ds);
        if (rv == KZ_OK && e->audit != NULL) {
            rv = audit_one(b, muni, &h, index, &one, &sr);
            audited++;
        }
        if (rv == KZ_OK && r->want) {
            if (out_len + 4 + res_len > out_cap) {
                size_t cap = (out_len + 4 + res_len) * 2;
                unsigned char *grown = realloc(out, cap);
                if (grown == NULL)
                    rv = KZ_ENOMEM;
                else {
                    out = grown;
                    out_cap = cap;
                }
            }
            if (rv == KZ_OK) {
                kz_put_be32(out + out_len, (uint32_t)res_len);
                if (res_len > 0)
                    memcpy(out + out_len + 4, res, res_len);
                out_len += 4 + res_len;
            }
        }
        free(res);
    }
    free(later);
    if (rv == KZ_OK)
        rv = write_deltas(st, b, muni, &ds);
    else
        deltas_free(&ds);
    if (rv == KZ_OK && audited > 0)
        kz_node_audit_put_head(b, &h);
    if (rv != KZ_OK) {
        free(out);
        return rv;
    }
    r->status = 200;
    if (r->want) {
        *r->buf = (char *)out;
        *r->len = out_len;
    }
    return KZ_OK;
}

/* Records of calls that changed nothing (refusals, reads): appended as
 * given. Records from a node's durable queue (stale reads, audit_queue.h)
 * carry their queue numbers; the last one appended per queue is kept in
 * meta "auditq/<queue id>", so a batch handed over twice (its first answer
 * lost) is appended once. */
static int apply_audit_append(kz_stor *st, kz_stor_batch *b, const char *muni,
                              uint64_t index, const Kizuna__Command *cmd,
                              struct kz_node_result *r)
{
    const Kizuna__AuditAppend *aa = cmd->audit_append;
    struct kz_node_audit_head h;
    int rv = kz_node_audit_load_head(st, &h);
    size_t first = 0;
    char qkey[48];
    int ql = 0;
    if (rv == KZ_OK && aa->has_queue_node && aa->has_queue_first_seq) {
        ql = snprintf(qkey, sizeof qkey, "auditq/%llu",
                      (unsigned long long)aa->queue_node);
        uint64_t done = kz_node_audit_queue_handed(st, aa->queue_node);
        if (done >= aa->queue_first_seq)
            first = (size_t)(done - aa->queue_first_seq + 1);
        if (first > aa->n_entries)
            first = aa->n_entries;
        uint64_t last = aa->queue_first_seq + aa->n_entries - 1;
        if (aa->n_entries > 0 && last > done) {
            unsigned char be[8];
            kz_put_be64(be, last);
            kz_stor_batch_put(b, KZ_STOR_CF_META, qkey, (size_t)ql, be, 8);
        }
    }
    for (size_t i = first; rv == KZ_OK && i < aa->n_entries; i++)
        rv = kz_node_audit_append(b, muni, &h, index, cmd->time_ms,
                                  aa->entries[i]);
    if (rv == KZ_OK && first < aa->n_entries)
        kz_node_audit_put_head(b, &h);
    if (rv == KZ_OK) {
        r->status = 200;
        if (r->want)
            kz_node_result_set(r, 200, json_pack("{s:I}", "audit_seq",
                                         (json_int_t)h.seq));
    }
    return rv;
}

/* Retention: prunes old records, keeping a checkpoint of the last one
 * pruned (audit.h); the prune itself is recorded by audit_command. */
static int apply_audit_prune(kz_stor *st, kz_stor_batch *b, const char *muni,
                             const Kizuna__Command *cmd,
                             struct kz_node_result *r)
{
    const Kizuna__AuditPrune *ap = cmd->audit_prune;
    if (!ap->has_before_ms) {
        kz_node_result_error(r, 400, "bad_command", "prune without a time");
        return KZ_OK;
    }
    uint64_t pruned = 0;
    struct kz_node_audit_checkpoint cp;
    int rv = kz_node_audit_prune(st, b, muni, ap->before_ms,
                                 ap->has_max && ap->max ? ap->max : 10000,
                                 &pruned, &cp);
    if (rv != KZ_OK)
        return rv;
    /* The checkpoint goes into the chain with the prune's own record, so a
     * checkpoint changed later disagrees with the log. */
    int off = snprintf(r->subject, sizeof r->subject,
                       "audit-checkpoint-%llu-", (unsigned long long)cp.seq);
    for (int i = 0; i < 16 && off > 0 && off + 3 <= (int)sizeof r->subject;
         i++)
        off += snprintf(r->subject + off, 3, "%02x", cp.hash[i]);
    kz_node_result_set(r, 200,
                       json_pack("{s:I,s:I}", "pruned", (json_int_t)pruned,
                                 "checkpoint_seq", (json_int_t)cp.seq));
    return KZ_OK;
}

/* ------------------------------------------------------------------ keys */

static bool meta_has(kz_stor *st, const char *key)
{
    char *v;
    size_t vl;
    if (kz_stor_get(st, KZ_STOR_CF_META, key, strlen(key), &v, &vl) != KZ_OK)
        return false;
    free(v);
    return true;
}

static void put_current(kz_stor_batch *b, uint32_t id)
{
    unsigned char be[4] = {(unsigned char)(id >> 24), (unsigned char)(id >> 16),
                           (unsigned char)(id >> 8), (unsigned char)id};
    kz_stor_batch_put(b, KZ_STOR_CF_META, "key/current", 11, be, 4);
}

static void data_key_name(char out[32], uint32_t id)
{
    snprintf(out, 32, "key/data/%08x", id);
}

static bool valid_wrapped(const ProtobufCBinaryData *d, int has)
{
    return has && d->len == KZ_STOR_WRAPPED_BYTES;
}

/* Key commands store wrapped blobs as given: the proposer generated and
 * wrapped them; apply only checks shapes and order, so it stays
 * deterministic. *keys_changed tells the node to unwrap again. */
static void apply_keys(kz_stor *st, kz_stor_batch *b, const Kizuna__Command *cmd,
                       struct kz_node_result *r, bool *keys_changed)
{
    char name[32];
    switch (cmd->op_case) {
    case KIZUNA__COMMAND__OP_KEY_INIT: {
        const Kizuna__KeyInit *k = cmd->key_init;
        if (meta_has(st, "key/index")) {
            kz_node_result_error(r, 409, "conflict", "keys are already initialised");
            return;
        }
        if (!k->has_data_key_id || k->data_key_id == 0 ||
            !valid_wrapped(&k->data_key, k->has_data_key) ||
            !valid_wrapped(&k->index_key, k->has_index_key)) {
            kz_node_result_error(r, 400, "bad_command", "malformed key init");
            return;
        }
        data_key_name(name, k->data_key_id);
        kz_stor_batch_put(b, KZ_STOR_CF_META, name, strlen(name),
                          k->data_key.data, k->data_key.len);
        kz_stor_batch_put(b, KZ_STOR_CF_META, "key/index", 9, k->index_key.data,
                          k->index_key.len);
        put_current(b, k->data_key_id);
        /* A new register indexes names on the ladder (apply.h); older ones
         * have no such key and keep format 1. */
        kz_stor_batch_put(b, KZ_STOR_CF_META, "terms/format", 12,
                          (char[]){(char)('0' + KZ_NODE_TERMS_LADDER)}, 1);
        break;
    }
    case KIZUNA__COMMAND__OP_KEY_ADD: {
        const Kizuna__KeyAdd *k = cmd->key_add;
        char *v;
        size_t vl;
        uint32_t current = 0;
        if (kz_stor_get(st, KZ_STOR_CF_META, "key/current", 11, &v, &vl) ==
            KZ_OK) {
            if (vl == 4)
                current = ((uint32_t)(unsigned char)v[0] << 24) |
                          ((uint32_t)(unsigned char)v[1] << 16) |
                          ((uint32_t)(unsigned char)v[2] << 8) |
                          (uint32_t)(unsigned char)v[3];
            free(v);
        }
        if (current == 0) {
            kz_node_result_error(r, 409, "conflict", "keys are not initialised");
            return;
        }
        if (!k->has_data_key_id || k->data_key_id != current + 1 ||
            !valid_wrapped(&k->data_key, k->has_data_key)) {
            kz_node_result_error(r, 409, "conflict",
                      "data key id is not the next one (a concurrent "
                      "rotation?)");
            return;
        }
        data_key_name(name, k->data_key_id);
        kz_stor_batch_put(b, KZ_STOR_CF_META, name, strlen(name),
                          k->data_key.data, k->data_key.len);
        put_current(b, k->data_key_id);
        break;
    }
    case KIZUNA__COMMAND__OP_KEY_REWRAP: {
        const Kizuna__KeyRewrap *k = cmd->key_rewrap;
        if (k->n_data_key_ids != k->n_data_keys ||
            !valid_wrapped(&k->index_key, k->has_index_key)) {
            kz_node_result_error(r, 400, "bad_command", "malformed key rewrap");
            return;
        }
        if (!meta_has(st, "key/index")) {
            kz_node_result_error(r, 409, "conflict", "keys are not initialised");
            return;
        }
        /* A rewrap must cover every data key of the state: one left under
         * an old master key would become unreadable when that key is
         * retired (a data key added concurrently, for instance). */
        size_t in_state = 0;
        kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_META, "key/data/",
                                            9, NULL, 0);
        const char *ik;
        size_t ikl;
        while (it != NULL && kz_stor_iter_next(it, &ik, &ikl, NULL, NULL))
            in_state++;
        kz_stor_iter_free(it);
        if (in_state != k->n_data_key_ids) {
            kz_node_result_error(r, 409, "conflict",
                      "rewrap does not cover every data key (a concurrent "
                      "rotation?): retry");
            return;
        }
        for (size_t i = 0; i < k->n_data_key_ids; i++) {
            data_key_name(name, k->data_key_ids[i]);
            for (size_t j = 0; j < i; j++)
                if (k->data_key_ids[j] == k->data_key_ids[i]) {
                    kz_node_result_error(r, 400, "bad_command", "key named twice");
                    return;
                }
            if (!meta_has(st, name) || k->data_keys[i].len != KZ_STOR_WRAPPED_BYTES) {
                kz_node_result_error(r, 409, "conflict", "rewrap names an unknown key");
                return;
            }
        }
        for (size_t i = 0; i < k->n_data_key_ids; i++) {
            data_key_name(name, k->data_key_ids[i]);
            kz_stor_batch_put(b, KZ_STOR_CF_META, name, strlen(name),
                              k->data_keys[i].data, k->data_keys[i].len);
        }
        kz_stor_batch_put(b, KZ_STOR_CF_META, "key/index", 9, k->index_key.data,
                          k->index_key.len);
        break;
    }
    default:
        return;
    }
    *keys_changed = true;
    if (r->want)
        kz_node_result_set(r, 200, json_pack("{s:b}", "ok", 1));
}

/* Every key starts with the municipality code (config.h keeps 15 bytes of
 * it): a command naming anything else is refused whole, before any key is
 * built from it. */
/* A merged entry's result is one framed result per registration, even
 * when the entry was refused before any was looked at (keys not ready, a
 * bad municipality): then each gets that refusal. */
static void frame_refusal(char **result, size_t *result_len, size_t n)
{
    size_t one = *result_len, total = n * (4 + one);
    char *out = total > 0 && total / n == 4 + one ? malloc(total) : NULL;
    for (size_t i = 0; out != NULL && i < n; i++) {
        kz_put_be32((unsigned char *)out + i * (4 + one), (uint32_t)one);
        memcpy(out + i * (4 + one) + 4, *result, one);
    }
    free(*result);
    *result = out;
    *result_len = out != NULL ? total : 0;
}

static bool valid_municipality(const char *m)
{
    return m != NULL && strlen(m) <= 15 && kz_node_valid_ref(m);
}

int kz_node_apply(kz_stor *st, struct kz_node_keys *keys, uint64_t index,
                  const char *data, size_t len, bool want_result,
                  char **result, size_t *result_len, bool *keys_changed)
{
    struct kz_node_result r = {.want = want_result, .buf = result,
                               .len = result_len};
    if (want_result) {
        *result = NULL;
        *result_len = 0;
    }
    *keys_changed = false;
    /* Sealed commands (the normal case) are opened with the data key they
     * name. A replica whose keyring cannot open one must not guess: it
     * stops (the error is fatal for the node) rather than diverge. */
    char *plain = NULL;
    size_t plain_len = 0;
    bool sealed = false;
    int rv = kz_node_keys_open_command(keys, data, len, &plain, &plain_len,
                                       &sealed);
    if (rv != KZ_OK) {
        kz_log(KZ_LOG_ERROR, "cannot open a sealed command",
               "index=%llu error=%s detail=%s", (unsigned long long)index,
               rv == KZ_ENOTFOUND ? "its data key is not unwrapped on this node"
                                  : kz_strerror(rv),
               keys->errmsg[0] ? keys->errmsg : NULL);
        return rv == KZ_ENOTFOUND ? KZ_ECONFIG : rv;
    }
    if (sealed) {
        data = plain;
        len = plain_len;
    }
    kz_stor_batch *b = kz_stor_batch_new(st);
    if (b == NULL) {
        free(plain);
        return KZ_ENOMEM;
    }
    Kizuna__Command *cmd =
        kizuna__command__unpack(NULL, len, (const uint8_t *)data);
    if (cmd == NULL || !valid_municipality(cmd->municipality)) {
        /* Deterministic on every replica: the entry is consumed, nothing
         * else changes. */
        kz_node_result_error(&r, 400, "bad_command", "undecodable command");
    } else if (cmd->op_case == KIZUNA__COMMAND__OP_KEY_INIT ||
               cmd->op_case == KIZUNA__COMMAND__OP_KEY_ADD ||
               cmd->op_case == KIZUNA__COMMAND__OP_KEY_REWRAP) {
        apply_keys(st, b, cmd, &r, keys_changed);
    } else if (!keys->ready && !kz_node_keys_in_state(st)) {
        /* Decided by the state, the same on every replica (keys->ready
         * only once the node read the state's keys: then they are there,
         * and the lookup, a RocksDB get per command, is skipped). */
        kz_node_result_error(&r, 503, "keys_not_ready",
                  "the cluster has no data key yet; retry");
    } else if (!keys->ready) {
        /* The state has keys this node cannot open: stop, do not diverge. */
        kz_log(KZ_LOG_ERROR, "cannot apply: keyring not ready",
               "index=%llu error=%s", (unsigned long long)index, keys->errmsg);
        rv = KZ_ECONFIG;
    } else {
        const char *muni = cmd->municipality;
        switch (cmd->op_case) {
        case KIZUNA__COMMAND__OP_CREATE_VICTIM:
            rv = apply_create(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_CREATE_VICTIMS:
            rv = apply_create_batch(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_CREATE_EACH:
            rv = apply_create_each(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_IMPORT_PFIF:
            rv = apply_import_pfif(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_PATCH_VICTIM:
            rv = apply_patch(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_MERGE_VICTIM:
            rv = apply_merge(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_ADD_NOTE:
            rv = apply_note(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_PUT_SHELTER:
            rv = apply_shelter(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_AUDIT_APPEND:
            rv = apply_audit_append(st, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_AUDIT_PRUNE:
            rv = apply_audit_prune(st, b, muni, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_PUT_PHOTO:
            rv = kz_node_apply_photo(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_PUT_ORG:
        case KIZUNA__COMMAND__OP_PUT_WHITELIST:
        case KIZUNA__COMMAND__OP_ISSUE_LINK:
        case KIZUNA__COMMAND__OP_UNLINK:
        case KIZUNA__COMMAND__OP_CREATE_MEDIATION:
        case KIZUNA__COMMAND__OP_REPLY_MEDIATION:
            rv = kz_node_apply_links(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_CREATE_CHALLENGE:
        case KIZUNA__COMMAND__OP_BIND_CARD:
        case KIZUNA__COMMAND__OP_VERIFY_IDENTITY:
        case KIZUNA__COMMAND__OP_PUT_CRL:
        case KIZUNA__COMMAND__OP_IDENTITY_FALLBACK:
            rv = kz_node_apply_idcheck(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_PUT_PROGRAM:
        case KIZUNA__COMMAND__OP_CREATE_PAYOUT:
        case KIZUNA__COMMAND__OP_EXPORT_PAYOUTS:
            rv = kz_node_apply_payouts(st, keys, b, muni, index, cmd, &r);
            break;
        case KIZUNA__COMMAND__OP_SET_NODE_ADDRESSES:
            rv = kz_node_apply_addresses(st, b, cmd, &r);
            *keys_changed = true; /* the node re-reads its address book */
            break;
        default:
            kz_node_result_error(&r, 400, "bad_command", "unknown command");
        }
        /* A PFIF batch that applied wrote one record per person itself
         * (apply_import_pfif); refused, it gets the one record here.
         * Merged registrations carry theirs each (apply_create_each). */
        if (rv == KZ_OK && cmd->audit != NULL &&
            cmd->op_case != KIZUNA__COMMAND__OP_AUDIT_APPEND &&
            cmd->op_case != KIZUNA__COMMAND__OP_CREATE_EACH &&
            !(cmd->op_case == KIZUNA__COMMAND__OP_IMPORT_PFIF &&
              r.status == 200))
            rv = audit_command(st, b, muni, index, cmd, &r);
    }
    if (rv == KZ_OK && want_result && *result != NULL && cmd != NULL &&
        cmd->op_case == KIZUNA__COMMAND__OP_CREATE_EACH && r.status != 200)
        frame_refusal(result, result_len, cmd->create_each->n_creates);
    if (cmd != NULL)
        kizuna__command__free_unpacked(cmd, NULL);
    if (plain != NULL) {
        OPENSSL_cleanse(plain, plain_len);
        free(plain);
    }
    if (rv == KZ_OK)
        rv = kz_stor_batch_commit(st, b, index);
    kz_stor_batch_free(b);
    /* Storage upkeep, not state: a replaced photo's old bytes go now. */
    if (rv == KZ_OK && r.compact_klen > 0)
        kz_stor_compact_key(st, r.compact_cf, r.compact_key, r.compact_klen);
    if (rv != KZ_OK && want_result && *result != NULL) {
        free(*result);
        *result = NULL;
    }
    return rv;
}

/* Opens and decodes the n commands of a merge into c (each freed by the
 * caller when not NULL); *any_sealed when any was sealed. */
static int unpack_merge(struct kz_node_keys *keys, const char *const *cmds,
                        const size_t *lens, size_t n, Kizuna__Command **c,
                        bool *any_sealed)
{
    *any_sealed = false;
    for (size_t i = 0; i < n; i++) {
        char *plain = NULL;
        size_t plen = 0;
        bool sealed = false;
        int rv = kz_node_keys_open_command(keys, cmds[i], lens[i], &plain,
                                           &plen, &sealed);
        if (rv != KZ_OK)
            return rv;
        *any_sealed = *any_sealed || sealed;
        c[i] = kizuna__command__unpack(
            NULL, sealed ? plen : lens[i],
            (const uint8_t *)(sealed ? plain : cmds[i]));
        if (plain != NULL) {
            OPENSSL_cleanse(plain, plen);
            free(plain);
        }
        if (c[i] == NULL || !valid_municipality(c[i]->municipality) ||
            strcmp(c[i]->municipality, c[0]->municipality) != 0)
            return KZ_EINVAL;
    }
    return KZ_OK;
}

/* Packs the merged command (op set by the caller) of municipality muni
 * and time `latest` into *out, sealed when sealed. */
static int pack_merged(struct kz_node_keys *keys, Kizuna__Command *cmd,
                       const char *muni, int64_t latest, bool sealed,
                       char **out, size_t *out_len)
{
    cmd->has_time_ms = 1;
    cmd->time_ms = latest;
    cmd->municipality = (char *)muni;
    size_t len = kizuna__command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return KZ_ENOMEM;
    kizuna__command__pack(cmd, buf);
    if (!sealed) {
        *out = (char *)buf;
        *out_len = len;
        return KZ_OK;
    }
    int rv = kz_node_keys_seal_command(keys, buf, len, out, out_len);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rv;
}

static void free_merge(Kizuna__Command **c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i] != NULL)
            kizuna__command__free_unpacked(c[i], NULL);
    free(c);
}

int kz_node_merge_audits(struct kz_node_keys *keys, const char *const *cmds,
                         const size_t *lens, size_t n, char **out,
                         size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    Kizuna__Command **c = calloc(n, sizeof *c);
    if (c == NULL)
        return KZ_ENOMEM;
    bool any_sealed = false;
    size_t total = 0;
    int64_t latest = 0;
    int rv = unpack_merge(keys, cmds, lens, n, c, &any_sealed);
    for (size_t i = 0; rv == KZ_OK && i < n; i++) {
        const Kizuna__Command *k = c[i];
        if (k->op_case != KIZUNA__COMMAND__OP_AUDIT_APPEND ||
            k->audit != NULL || k->request_id != NULL ||
            k->audit_append->has_queue_node ||
            k->audit_append->has_queue_first_seq) {
            rv = KZ_EINVAL;
            break;
        }
        total += k->audit_append->n_entries;
        if (i == 0 || k->time_ms > latest)
            latest = k->time_ms;
    }
    Kizuna__AuditContext **entries =
        rv == KZ_OK ? calloc(total ? total : 1, sizeof *entries) : NULL;
    if (rv == KZ_OK && entries == NULL)
        rv = KZ_ENOMEM;
    if (rv == KZ_OK) {
        size_t e = 0;
        for (size_t i = 0; i < n; i++) {
            Kizuna__AuditAppend *aa = c[i]->audit_append;
            for (size_t j = 0; j < aa->n_entries; j++) {
                Kizuna__AuditContext *x = aa->entries[j];
                if (!x->has_at_ms && c[i]->time_ms != latest) {
                    x->has_at_ms = 1;
                    x->at_ms = c[i]->time_ms;
                }
                entries[e++] = x;
            }
        }
        Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
        aa.n_entries = total;
        aa.entries = entries;
        Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
        cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
        cmd.audit_append = &aa;
        rv = pack_merged(keys, &cmd, c[0]->municipality, latest, any_sealed,
                         out, out_len);
    }
    free(entries);
    free_merge(c, n);
    return rv;
}

int kz_node_merge_creates(struct kz_node_keys *keys, const char *const *cmds,
                          const size_t *lens, size_t n, char **out,
                          size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (n > KZ_NODE_EACH_MAX)
        return KZ_EINVAL;
    Kizuna__Command **c = calloc(n, sizeof *c);
    Kizuna__EachCreate *each = calloc(n, sizeof *each);
    Kizuna__EachCreate **ptrs = calloc(n, sizeof *ptrs);
    if (c == NULL || each == NULL || ptrs == NULL) {
        free(c);
        free(each);
        free(ptrs);
        return KZ_ENOMEM;
    }
    bool any_sealed = false;
    int64_t latest = 0;
    int rv = unpack_merge(keys, cmds, lens, n, c, &any_sealed);
    for (size_t i = 0; rv == KZ_OK && i < n; i++) {
        const Kizuna__Command *k = c[i];
        if (k->op_case != KIZUNA__COMMAND__OP_CREATE_VICTIM ||
            k->create_victim->victim == NULL) {
            rv = KZ_EINVAL;
            break;
        }
        kizuna__each_create__init(&each[i]);
        each[i].has_time_ms = 1;
        each[i].time_ms = k->time_ms;
        each[i].request_id = k->request_id;
        each[i].audit = k->audit;
        each[i].victim = k->create_victim->victim;
        ptrs[i] = &each[i];
        if (i == 0 || k->time_ms > latest)
            latest = k->time_ms;
    }
    if (rv == KZ_OK) {
        Kizuna__CreateEach ce = KIZUNA__CREATE_EACH__INIT;
        ce.n_creates = n;
        ce.creates = ptrs;
        Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
        cmd.op_case = KIZUNA__COMMAND__OP_CREATE_EACH;
        cmd.create_each = &ce;
        rv = pack_merged(keys, &cmd, c[0]->municipality, latest, any_sealed,
                         out, out_len);
    }
    free(ptrs);
    free(each);
    free_merge(c, n);
    return rv;
}

json_t *kz_node_shelter_summary(kz_stor *st, const char *muni,
                                const char *shelter_id)
{
    json_t *o = json_object();
    json_t *sex = json_object(), *needs = json_object(), *status = json_object();
    for (const char *const *c = kz_node_counter_names; *c; c++) {
        char key[KEY_MAX];
        size_t n = kz_node_make_key(key, muni, 'c', shelter_id, *c);
        long long v = n ? get_counter(st, key, n) : 0;
        if (strcmp(*c, "total") == 0)
            json_object_set_new(o, "total", json_integer(v));
        else if (strncmp(*c, "sex_", 4) == 0)
            json_object_set_new(sex, *c + 4, json_integer(v));
        else if (strncmp(*c, "needs_", 6) == 0)
            json_object_set_new(needs, *c + 6, json_integer(v));
        else if (strncmp(*c, "status_", 7) == 0)
            json_object_set_new(status, *c + 7, json_integer(v));
    }
    json_object_set_new(o, "by_sex", sex);
    json_object_set_new(o, "needs", needs);
    json_object_set_new(o, "by_status", status);
    /* Convenience fields the shelter view of the seeds asks for. */
    json_object_set(o, "infants", json_object_get(needs, "infant"));
    json_object_set(o, "elderly", json_object_get(needs, "elderly"));
    return o;
}
