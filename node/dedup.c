/*
 * dedup.c — possible duplicates of a person in the register (issue 9).
 *
 * After a disaster one person is often registered twice: by a shelter in
 * kanji, by a phone line in kana, by an import from another municipality
 * with the birth date typed differently. Candidates for a record are the
 * people a name search finds (its kana, its kanji name: the search folds
 * kana, romaji and readings), each scored on what is compared the same way
 * for everyone:
 *
 *   name     folded kana equal (either name order; the record's reading
 *            when it has no kana) 0.40, or one kana apart (an insertion,
 *            deletion or substitution of one kana, katakana read as
 *            hiragana) 0.25, or
 *            the kanji names equal 0.40; nothing in common: not a candidate
 *   dob      equal 0.30; same year and month 0.10; other years -0.20
 *   sex      equal 0.10; different -0.50 (both given)
 *   address  equal once folded 0.20; one a prefix of the other 0.10
 *
 * A candidate scores at least KZ_NODE_DEDUP_MIN (0.6): a name with a birth
 * date, or a name with sex and address. Merged records are never
 * candidates. Read-only; the caller audits the read of every record it
 * returns.
 */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

#include "name_fold.h"
#include "records.h"
#include "register.h"
#include "search.h"
#include "utf8.h"

#define FOLD_MAX KZ_NODE_NAME_KEY_MAX

/* Folded forms of a name: the tokens in order and, for two or more, in
 * reverse order; 0, 1 or 2 written. */
static int fold_name(const char *s, char out[2][FOLD_MAX])
{
    if (s == NULL || s[0] == '\0')
        return 0;
    if (kz_node_name_fold(s, strlen(s), out[0], FOLD_MAX) <= 0)
        return 0;
    /* The last token first: "やまだ たろう" -> "たろう やまだ". */
    const char *sp = strrchr(s, ' ');
    const char *wide = strstr(s, "\xe3\x80\x80"); /* U+3000 */
    const char *cut = sp;
    size_t skip = 1;
    if (wide != NULL && (cut == NULL || wide > cut)) {
        cut = wide;
        skip = 3;
    }
    if (cut == NULL || cut == s)
        return 1;
    char swapped[2 * FOLD_MAX];
    size_t tail = strlen(cut + skip), head = (size_t)(cut - s);
    if (tail + head + 2 > sizeof swapped)
        return 1;
    memcpy(swapped, cut + skip, tail);
    swapped[tail] = ' ';
    memcpy(swapped + tail + 1, s, head);
    swapped[tail + 1 + head] = '\0';
    return kz_node_name_fold(swapped, strlen(swapped), out[1], FOLD_MAX) > 0
               ? 2
               : 1;
}

/* Code points of s into cp (at most max); how many, or -1. */
static int code_points(const char *s, uint32_t *cp, int max)
{
    size_t i = 0, len = strlen(s);
    int n = 0;
    while (i < len) {
        if (n == max || kz_utf8_decode((const unsigned char *)s, len, &i,
                                       &cp[n]) != 0)
            return -1;
        n++;
    }
    return n;
}

/* Whether a and b are at most one insertion, deletion or substitution of a
 * code point apart. */
static bool one_edit(const char *a, const char *b)
{
    uint32_t x[FOLD_MAX], y[FOLD_MAX];
    int n = code_points(a, x, FOLD_MAX), m = code_points(b, y, FOLD_MAX);
    if (n < 0 || m < 0 || abs(n - m) > 1)
        return false;
    int i = 0, j = 0, edits = 0;
    while (i < n && j < m) {
        if (x[i] == y[j]) {
            i++;
            j++;
            continue;
        }
        if (++edits > 1)
            return false;
        if (n > m)
            i++;
        else if (m > n)
            j++;
        else {
            i++;
            j++;
        }
    }
    return edits + (n - i) + (m - j) <= 1;
}

/* s with katakana as hiragana and without spaces (the romaji fold hides
 * how many kana differ: ち/つ are chi/tsu); "" when not valid UTF-8. */
static void hiragana(const char *s, char *out, size_t cap)
{
    size_t i = 0, len = strlen(s), o = 0;
    uint32_t c;
    out[0] = '\0';
    while (i < len) {
        if (kz_utf8_decode((const unsigned char *)s, len, &i, &c) != 0) {
            out[0] = '\0';
            return;
        }
        if (c == ' ' || c == 0x3000)
            continue;
        if (c >= 0x30A1 && c <= 0x30F6)
            c -= 0x60;
        char b[4];
        size_t n = kz_utf8_encode(c, b);
        if (o + n + 1 > cap) {
            out[0] = '\0';
            return;
        }
        memcpy(out + o, b, n);
        o += n;
        out[o] = '\0';
    }
}

/* Whether the kana of a and b (in either name order) are one kana apart. */
static bool kana_one_edit(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    char ha[FOLD_MAX * 2], hb[FOLD_MAX * 2], sw[FOLD_MAX * 2], hs[FOLD_MAX * 2];
    hiragana(a, ha, sizeof ha);
    hiragana(b, hb, sizeof hb);
    if (ha[0] == '\0' || hb[0] == '\0')
        return false;
    if (one_edit(ha, hb))
        return true;
    /* b with its last token first */
    const char *sp = strrchr(b, ' ');
    if (sp == NULL || sp == b || strlen(b) + 2 > sizeof sw)
        return false;
    snprintf(sw, sizeof sw, "%s %.*s", sp + 1, (int)(sp - b), b);
    hiragana(sw, hs, sizeof hs);
    return hs[0] != '\0' && one_edit(ha, hs);
}

/* The kana a record is known by: its own, else its first reading. */
static const char *kana_of(const Kizuna__Victim *v, char *buf, size_t cap)
{
    if (v->name_kana != NULL && v->name_kana[0])
        return v->name_kana;
    if (v->name_reading == NULL || v->name_reading[0] == '\0')
        return NULL;
    size_t n = strcspn(v->name_reading, "\n");
    if (n >= cap)
        return NULL;
    memcpy(buf, v->name_reading, n);
    buf[n] = '\0';
    return buf;
}

static void reason(json_t *reasons, const char *what)
{
    json_array_append_new(reasons, json_string(what));
}

double kz_node_dedup_score(const Kizuna__Victim *a, const Kizuna__Victim *b,
                           json_t *reasons)
{
    double score = 0;
    char ka[2][FOLD_MAX], kb[2][FOLD_MAX], ra[FOLD_MAX], rb[FOLD_MAX];
    int na = fold_name(kana_of(a, ra, sizeof ra), ka);
    int nb = fold_name(kana_of(b, rb, sizeof rb), kb);
    bool kana_equal = false;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            kana_equal |= strcmp(ka[i], kb[j]) == 0;
    bool kana_close = !kana_equal && kana_one_edit(kana_of(a, ra, sizeof ra),
                                                   kana_of(b, rb, sizeof rb));
    char na_[2][FOLD_MAX], nb_[2][FOLD_MAX];
    int nna = fold_name(a->name, na_), nnb = fold_name(b->name, nb_);
    bool name_equal = false;
    for (int i = 0; i < nna; i++)
        for (int j = 0; j < nnb; j++)
            name_equal |= strcmp(na_[i], nb_[j]) == 0;
    if (kana_equal || name_equal) {
        score += 0.40;
        reason(reasons, kana_equal ? "kana" : "name");
    } else if (kana_close) {
        score += 0.25;
        reason(reasons, "kana_one_edit");
    } else {
        return 0; /* no name in common: not the same person here */
    }
    if (a->dob != NULL && b->dob != NULL) {
        if (strcmp(a->dob, b->dob) == 0) {
            score += 0.30;
            reason(reasons, "dob");
        } else if (strlen(a->dob) >= 7 && strncmp(a->dob, b->dob, 7) == 0) {
            score += 0.10;
            reason(reasons, "dob_month");
        } else if (strncmp(a->dob, b->dob, 4) != 0) {
            score -= 0.20;
        }
    }
    if (a->sex != NULL && b->sex != NULL) {
        if (strcmp(a->sex, b->sex) == 0) {
            score += 0.10;
            reason(reasons, "sex");
        } else {
            score -= 0.50;
        }
    }
    char fa[4 * FOLD_MAX], fb[4 * FOLD_MAX];
    if (a->address != NULL && b->address != NULL &&
        kz_node_name_fold(a->address, strlen(a->address), fa, sizeof fa) > 0 &&
        kz_node_name_fold(b->address, strlen(b->address), fb, sizeof fb) > 0) {
        size_t la = strlen(fa), lb = strlen(fb);
        if (strcmp(fa, fb) == 0) {
            score += 0.20;
            reason(reasons, "address");
        } else if (la >= 6 && lb >= 6 &&
                   strncmp(fa, fb, la < lb ? la : lb) == 0) {
            score += 0.10;
            reason(reasons, "address_prefix");
        }
    }
    return score;
}

static int cmp_score(const void *x, const void *y)
{
    const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
    double sa = json_real_value(json_object_get(a, "score"));
    double sb = json_real_value(json_object_get(b, "score"));
    if (sa != sb)
        return sa < sb ? 1 : -1;
    return strcmp(json_string_value(json_object_get(json_object_get(a, "record"), "id")),
                  json_string_value(json_object_get(json_object_get(b, "record"), "id")));
}

/* Ids a name search for q finds, added to ids (no duplicates). */
static int search_ids(kz_stor *st, struct kz_node_keys *keys,
                      const char *muni, const char *q, json_t *ids)
{
    if (q == NULL || q[0] == '\0')
        return KZ_OK;
    struct kz_node_search s = {.q = q, .limit = 200};
    struct kz_node_search_page pg;
    int rv = kz_node_search_run(st, keys, muni, &s, &pg);
    if (rv == KZ_OK)
        for (size_t i = 0; i < json_array_size(pg.items); i++) {
            const char *id = json_string_value(
                json_object_get(json_array_get(pg.items, i), "id"));
            if (id != NULL)
                json_object_set_new(ids, id, json_true());
        }
    json_decref(pg.items);
    return rv;
}

int kz_node_dedup_find(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const Kizuna__Victim *v,
                       size_t max, json_t **out)
{
    *out = NULL;
    json_t *ids = json_object();
    char rb[FOLD_MAX];
    int rv = search_ids(st, keys, muni, kana_of(v, rb, sizeof rb), ids);
    if (rv == KZ_OK)
        rv = search_ids(st, keys, muni, v->name, ids);
    if (rv != KZ_OK) {
        json_decref(ids);
        return rv;
    }
    json_t *found = json_array();
    const char *id;
    json_t *unused;
    json_object_foreach(ids, id, unused)
    {
        if (v->id != NULL && strcmp(id, v->id) == 0)
            continue;
        Kizuna__Victim *c;
        rv = kz_node_load_victim(st, keys, muni, id, &c);
        if (rv == KZ_ENOTFOUND)
            continue;
        if (rv != KZ_OK)
            break;
        json_t *reasons = json_array();
        double score = c->merged_into ? 0 : kz_node_dedup_score(v, c, reasons);
        if (score >= KZ_NODE_DEDUP_MIN - 1e-9) {
            json_array_append_new(
                found, json_pack("{s:f,s:o,s:o}", "score",
                                 (double)(long)(score * 100 + 0.5) / 100,
                                 "reasons", reasons, "record",
                                 kz_node_victim_to_json(c)));
        } else {
            json_decref(reasons);
        }
        kizuna__victim__free_unpacked(c, NULL);
    }
    json_decref(ids);
    if (rv != KZ_OK && rv != KZ_ENOTFOUND) {
        json_decref(found);
        return rv;
    }
    size_t n = json_array_size(found);
    json_t **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (sorted == NULL) {
        json_decref(found);
        return KZ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(found, i);
    qsort(sorted, n, sizeof *sorted, cmp_score);
    *out = json_array();
    for (size_t i = 0; i < n && i < max; i++)
        json_array_append(*out, sorted[i]);
    free(sorted);
    json_decref(found);
    return KZ_OK;
}
