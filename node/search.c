/*
 * search.c — register search by name, date of birth, shelter and status,
 * with a cursor (search.h).
 *
 * Plan: pick one source of candidate ids, then check the other filters on
 * each record.
 *   q given      the name index: ids whose folded key starts with the whole
 *                folded query, plus (several tokens) ids where every token
 *                prefixes some key; collected, sorted and deduplicated.
 *                Two tiers: matches on the name or kana ('n' keys) first,
 *                then matches that need the dictionary reading of a record
 *                without kana ('R' keys, register.c), each in id order. A
 *                page that ends in the second tier has the cursor "R:<id>"
 *                (ids are hex, so it is never an id itself).
 *   else dob / shelter / status
 *                that index's exact prefix, already in id order
 *   else         the records themselves, in id order
 * Results are in id order; the cursor is the last id returned, so a page
 * starts strictly after it whatever was written meanwhile.
 */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "keys.h"
#include "name_fold.h"
#include "records.h"
#include "register.h"

#define KEY_MAX 512
#define MAX_TERMS 16

struct idset {
    char **v;
    size_t n, cap;
    bool truncated;
};

static void idset_free(struct idset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int idset_add(struct idset *s, const char *id, size_t n)
{
    if (s->n == KZ_NODE_SEARCH_MAX_CANDIDATES) {
        s->truncated = true;
        return 0;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            return KZ_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n] = strndup(id, n);
    if (s->v[s->n] == NULL)
        return KZ_ENOMEM;
    s->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void idset_sort_unique(struct idset *s)
{
    if (s->n == 0)
        return;
    qsort(s->v, s->n, sizeof *s->v, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++) {
        if (strcmp(s->v[i], s->v[w - 1]) == 0)
            free(s->v[i]);
        else
            s->v[w++] = s->v[i];
    }
    s->n = w;
}

/* The same for a set read from one term, whose ids come newest first
 * (inverted, kz_node_term_id): reversed, they are nearly always in order
 * already, which one pass checks; qsort only when not (ids of different
 * lengths where one is a prefix of another). */
static void idset_sort_from_descending(struct idset *s)
{
    for (size_t i = 0, j = s->n; i + 1 < j; i++, j--) {
        char *t = s->v[i];
        s->v[i] = s->v[j - 1];
        s->v[j - 1] = t;
    }
    for (size_t i = 1; i < s->n; i++)
        if (strcmp(s->v[i - 1], s->v[i]) >= 0) {
            idset_sort_unique(s);
            return;
        }
}

static bool idset_has(const struct idset *s, const char *id)
{
    if (s->n == 0)
        return false; /* v may be NULL, which bsearch must not get */
    return bsearch(&id, s->v, s->n, sizeof *s->v, cmp_str) != NULL;
}

/* Ids of the records under one blind term of the terms family, sorted;
 * with tag, only those whose value holds it (the ladder format, apply.h). */
static int blind_ids(kz_stor *st, const char *muni, char kind,
                     const char *blind, const char *tag, struct idset *out)
{
    char prefix[KEY_MAX];
    /* exact term: "<blind>\0<id inverted>" (kz_node_term_id) */
    size_t pl = kz_node_make_key(prefix, muni, kind, blind, "");
    if (pl == 0)
        return KZ_EINVAL;
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_TERMS, prefix, pl,
                                        NULL, 0);
    if (it == NULL)
        return KZ_ENOMEM;
    const char *k, *v;
    size_t kl, vl;
    int rv = 0;
    char id[KEY_MAX];
    while (rv == 0 && kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        if (kl <= pl || kl - pl >= sizeof id)
            continue;
        if (tag != NULL) {
            size_t t = 0;
            while (t + KZ_NODE_TERM_TAG <= vl &&
                   memcmp(v + t, tag, KZ_NODE_TERM_TAG) != 0)
                t += KZ_NODE_TERM_TAG;
            if (t + KZ_NODE_TERM_TAG > vl)
                continue;
        }
        kz_node_term_id(id, k + pl, kl - pl);
        rv = idset_add(out, id, kl - pl);
    }
    kz_stor_iter_free(it);
    if (rv == 0)
        idset_sort_from_descending(out);
    return rv;
}

/* Ids of records with a name key (kind 'n') or reading key (kind 'R')
 * starting with term. Format 1 indexes every prefix of every key by its
 * blind term, so this is one exact lookup; the ladder format, only those
 * of a rung's length, so a term between rungs is looked up under its
 * longest prefix on a rung and filtered by its tag. */
static int name_prefix(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, char kind, const char *term,
                       struct idset *out)
{
    char blind[KZ_NODE_BLIND_HEX], tag[KZ_NODE_TERM_TAG];
    size_t len = strlen(term), end = len;
    if (keys->terms_format >= KZ_NODE_TERMS_LADDER)
        end = kz_node_rung_prefix(term, len);
    bool between = end < len; /* between two rungs: filter by the tag */
    if (between) {
        kz_node_keys_blind(keys, kind, term, len, blind);
        kz_node_term_tag(blind, tag);
    }
    kz_node_keys_blind(keys, kind, term, end, blind);
    return blind_ids(st, muni, kind, blind, between ? tag : NULL, out);
}

/* Adds the ids of the records in src to dst (both sorted, unique). Into
 * an empty dst (a term's reading set, nearly always empty, taking its
 * name set) that is a copy, already in order: no sort. */
static int idset_merge(struct idset *dst, const struct idset *src)
{
    bool copy = dst->n == 0;
    int rv = 0;
    for (size_t i = 0; rv == 0 && i < src->n; i++)
        rv = idset_add(dst, src->v[i], strlen(src->v[i]));
    if (rv == 0 && !copy)
        idset_sort_unique(dst);
    dst->truncated |= src->truncated;
    return rv;
}

/* Keeps in acc only the ids also in cur (both sorted, unique). */
static void idset_keep_common(struct idset *acc, const struct idset *cur)
{
    size_t w = 0;
    for (size_t i = 0; i < acc->n; i++) {
        if (idset_has(cur, acc->v[i]))
            acc->v[w++] = acc->v[i];
        else
            free(acc->v[i]);
    }
    acc->n = w;
    acc->truncated |= cur->truncated;
}

/* The ids of one term: on the name keys (*n) and on the name or the
 * reading keys (*a, n's ids and the 'R' term's). Each term of the terms
 * family is read once for both tiers. */
static int term_sets(kz_stor *st, struct kz_node_keys *keys, const char *muni,
                     const char *term, struct idset *n, struct idset *a)
{
    int rv = name_prefix(st, keys, muni, 'n', term, n);
    if (rv == 0)
        rv = name_prefix(st, keys, muni, 'R', term, a);
    if (rv == 0)
        rv = idset_merge(a, n);
    return rv;
}

/* The candidates of both tiers: *exact, matches on the name and kana;
 * *all, matches that may also use dictionary readings. A candidate's
 * folded key starts with the whole folded query, or (several tokens)
 * every token starts some key. */
static int name_candidates(kz_stor *st, struct kz_node_keys *keys,
                           const char *muni, const char *q,
                           struct idset *exact, struct idset *all)
{
    char terms[MAX_TERMS][KZ_NODE_NAME_KEY_MAX];
    size_t whole;
    size_t n = kz_node_name_query(q, terms, MAX_TERMS, &whole);
    if (n == 0)
        return 0;
    int rv = term_sets(st, keys, muni, terms[whole], exact, all);
    if (rv != 0 || n < 2)
        return rv;
    /* Every token must prefix some key: intersect the token sets. */
    struct idset acc_n = {0}, acc_a = {0};
    bool first = true;
    for (size_t t = 0; t < n && rv == 0; t++) {
        if (t == whole)
            continue;
        struct idset cur_n = {0}, cur_a = {0};
        rv = term_sets(st, keys, muni, terms[t], &cur_n, &cur_a);
        if (rv == 0 && first) {
            acc_n = cur_n;
            acc_a = cur_a;
            first = false;
            continue;
        }
        if (rv == 0) {
            idset_keep_common(&acc_n, &cur_n);
            idset_keep_common(&acc_a, &cur_a);
        }
        idset_free(&cur_n);
        idset_free(&cur_a);
    }
    if (rv == 0)
        rv = idset_merge(exact, &acc_n);
    if (rv == 0)
        rv = idset_merge(all, &acc_a);
    idset_free(&acc_n);
    idset_free(&acc_a);
    return rv;
}

static bool matches(const Kizuna__Victim *v, const struct kz_node_search *q)
{
    if (v->merged_into != NULL && !q->include_merged)
        return false;
    if (q->dob && (!v->dob || strcmp(v->dob, q->dob) != 0))
        return false;
    if (q->shelter && (!v->shelter_id || strcmp(v->shelter_id, q->shelter)))
        return false;
    if (q->status &&
        strcmp(v->status ? v->status : "unknown", q->status) != 0)
        return false;
    return true;
}

/* Loads, filters and appends one candidate (skipped unless its id is after
 * `after`, when that is not NULL); returns 1 when the page is full (and
 * sets the cursor: `tier` then the last id taken), 0 to go on, or an
 * error. */
static int take(kz_stor *st, struct kz_node_keys *keys, const char *muni,
                const struct kz_node_search *q, const char *after,
                const char *tier, const char *id, json_t *items,
                struct kz_node_search_page *pg, char *last)
{
    if (after && strcmp(id, after) <= 0)
        return 0;
    Kizuna__Victim *v;
    int rv = kz_node_load_victim(st, keys, muni, id, &v);
    if (rv == KZ_ENOTFOUND)
        return 0;
    if (rv != KZ_OK)
        return rv;
    rv = 0;
    if (matches(v, q)) {
        if (json_array_size(items) == q->limit) {
            /* One more match exists: the page is full, and a cursor then
             * always leads to a non-empty page. */
            snprintf(pg->next_cursor, sizeof pg->next_cursor, "%s", last);
            pg->has_next = true;
            rv = 1;
        } else {
            json_array_append_new(items, kz_node_victim_to_json(v));
            snprintf(last, 72, "%s%s", tier, id);
        }
    }
    kizuna__victim__free_unpacked(v, NULL);
    return rv;
}

int kz_node_search_run(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const struct kz_node_search *q,
                       struct kz_node_search_page *pg)
{
    char last[72] = "";
    int rv = 0;
    memset(pg, 0, sizeof *pg);
    pg->items = json_array();
    if (q->q != NULL) {
        /* Tier 0: name and kana; tier 1: the rest of what readings find.
         * A cursor "R:<id>" resumes in tier 1, a plain id in tier 0. */
        struct idset exact = {0}, all = {0};
        bool in_reading = q->cursor && strncmp(q->cursor, "R:", 2) == 0;
        const char *after = in_reading ? q->cursor + 2 : q->cursor;
        rv = name_candidates(st, keys, muni, q->q, &exact, &all);
        for (size_t i = 0; rv == 0 && !in_reading && i < exact.n; i++)
            rv = take(st, keys, muni, q, after, "", exact.v[i], pg->items,
                      pg, last);
        if (!in_reading)
            after = NULL;
        for (size_t i = 0; rv == 0 && i < all.n; i++)
            if (!idset_has(&exact, all.v[i]))
                rv = take(st, keys, muni, q, after, "R:", all.v[i],
                          pg->items, pg, last);
        pg->truncated = exact.truncated || all.truncated;
        idset_free(&exact);
        idset_free(&all);
        return rv < 0 ? KZ_EIO : (rv == 1 ? 0 : rv);
    }
    char prefix[KEY_MAX], start[KEY_MAX];
    int pl;
    int cf = KZ_STOR_CF_INDEX;
    if (q->dob) {
        /* Terms hold ids newest first: collected and sorted. */
        char blind[KZ_NODE_BLIND_HEX];
        struct idset ids = {0};
        kz_node_keys_blind(keys, 'd', q->dob, strlen(q->dob), blind);
        rv = blind_ids(st, muni, 'd', blind, NULL, &ids);
        for (size_t i = 0; rv == 0 && i < ids.n; i++)
            rv = take(st, keys, muni, q, q->cursor, "", ids.v[i], pg->items,
                      pg, last);
        pg->truncated = ids.truncated;
        idset_free(&ids);
        return rv == 1 ? 0 : rv;
    }
    if (q->shelter)
        pl = snprintf(prefix, sizeof prefix, "%s/s/%s", muni, q->shelter);
    else if (q->status)
        pl = snprintf(prefix, sizeof prefix, "%s/t/%s", muni, q->status);
    else {
        pl = snprintf(prefix, sizeof prefix, "%s/v/", muni);
        cf = KZ_STOR_CF_RECORDS;
    }
    if (pl < 0 || pl >= (int)sizeof prefix - 80)
        return KZ_EINVAL;
    size_t plen = (size_t)pl;
    if (cf == KZ_STOR_CF_INDEX)
        prefix[plen++] = '\0'; /* exact value: "<value>\0<id>" */
    size_t slen = plen;
    memcpy(start, prefix, plen);
    if (q->cursor) {
        size_t cl = strlen(q->cursor);
        memcpy(start + plen, q->cursor, cl);
        slen += cl;
    }
    kz_stor_iter *it = kz_stor_iter_new(st, cf, prefix, plen, start, slen);
    if (it == NULL)
        return KZ_ENOMEM;
    const char *k;
    size_t kl;
    char id[72];
    while (rv == 0 && kz_stor_iter_next(it, &k, &kl, NULL, NULL)) {
        size_t idl = kl - plen;
        if (idl == 0 || idl >= sizeof id)
            continue;
        memcpy(id, k + plen, idl);
        id[idl] = '\0';
        rv = take(st, keys, muni, q, q->cursor, "", id, pg->items, pg, last);
    }
    kz_stor_iter_free(it);
    return rv == 1 ? 0 : rv;
}
