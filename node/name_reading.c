/*
 * name_reading.c — kana readings of kanji names through MeCab (see
 * name_reading.h for the contract and the failure modes).
 *
 * ipadic's feature string is "品詞,細分類1,細分類2,細分類3,活用型,活用形,
 * 原形,読み,発音"; the reading is field 8 (index 7), in katakana. Unknown
 * words have only 7 fields: the whole name then gets no reading. Names are
 * parsed token by token, because family and given name parsed together are
 * sometimes joined into a word the dictionary reads differently.
 */
#include "name_reading.h"

#include <mecab.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kz_log.h"
#include "name_fold.h"
#include "utf8.h"

#define MAX_READING 512

static pthread_once_t reading_once = PTHREAD_ONCE_INIT;
static mecab_model_t *reading_model; /* read-only once opened */
static mecab_t *reading_tagger;      /* parse(lattice) is thread-safe */

static void reading_open(void)
{
    mecab_model_t *m = mecab_model_new2("-d " KZ_NODE_READING_DICDIR);
    if (m == NULL) {
        kz_log(KZ_LOG_WARN, "name readings off: no dictionary",
               "dicdir=%s", KZ_NODE_READING_DICDIR);
        return;
    }
    mecab_t *t = mecab_model_new_tagger(m);
    if (t == NULL) {
        mecab_model_destroy(m);
        kz_log(KZ_LOG_WARN, "name readings off: no tagger", NULL);
        return;
    }
    reading_model = m;
    reading_tagger = t;
}

static bool has_kanji_only_japanese(const char *s, size_t len)
{
    bool kanji = false;
    size_t i = 0;
    uint32_t c;

    while (i < len) {
        if (kz_utf8_decode((const unsigned char *)s, len, &i, &c) != 0)
            return false;
        if (c < 0x80 && c != ' ')
            return false; /* Latin letters or digits: no dictionary reading */
        if ((c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
            (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3FFFF))
            kanji = true;
    }
    return kanji;
}

/* Appends to buf the reading of the path the lattice holds now, with one
 * space wherever the sentence had a separator between two words; -1 if a
 * word of it has no reading or buf is full. */
static int read_path(mecab_lattice_t *lat, const char *sentence, char *buf,
                     size_t *bl)
{
    size_t end = 0;

    for (const mecab_node_t *n = mecab_lattice_get_bos_node(lat); n;
         n = n->next) {
        if (n->stat == MECAB_BOS_NODE || n->stat == MECAB_EOS_NODE)
            continue;
        if (n->stat != MECAB_NOR_NODE || n->feature == NULL)
            return -1;
        const char *f = n->feature;
        for (int k = 0; k < 7 && f; k++) {
            f = strchr(f, ',');
            if (f)
                f++;
        }
        if (f == NULL || *f == '\0' || *f == '*')
            return -1;
        size_t rl = strcspn(f, ",");
        size_t at = (size_t)(n->surface - sentence);
        bool space = end > 0 && at > end;
        if (*bl + rl + 3 > MAX_READING)
            return -1;
        if (space)
            buf[(*bl)++] = ' ';
        memcpy(buf + *bl, f, rl);
        *bl += rl;
        end = at + n->length;
    }
    return 0;
}

int kz_node_name_reading(const char *name, char **out)
{
    char common[MAX_READING], buf[MAX_READING];
    size_t cl = 0, bl = 0, len, i = 0;
    uint32_t c;
    int rv = -1;

    *out = NULL;
    if (name == NULL)
        return -1;
    len = strlen(name);
    if (!kz_utf8_valid(name, len) || !has_kanji_only_japanese(name, len))
        return -1;
    /* Variant kanji as their common form (髙橋 as 高橋: ipadic knows only
     * the latter), separators as one ASCII space (MeCab skips it). */
    while (i < len) {
        if (kz_utf8_decode((const unsigned char *)name, len, &i, &c) != 0 ||
            cl + 5 >= sizeof common)
            return -1;
        if (c == 0x3000)
            c = ' ';
        cl += kz_utf8_encode((uint32_t)kz_node_kanji_common(c), common + cl);
    }
    common[cl] = '\0';
    pthread_once(&reading_once, reading_open);
    if (reading_tagger == NULL)
        return -1;
    mecab_lattice_t *lat = mecab_model_new_lattice(reading_model);
    if (lat == NULL)
        return -1;
    mecab_lattice_set_request_type(lat, MECAB_NBEST);
    mecab_lattice_set_sentence2(lat, common, cl);
    if (!mecab_parse_lattice(reading_tagger, lat))
        goto done;
    /* The best few paths: a given name's reading is often not the first
     * (秀一: ヒデカズ, シュウイチ, ...). Duplicates and paths with an
     * unknown word are left out. */
    for (int path = 0; path < KZ_NODE_READING_PATHS; path++) {
        size_t mark = bl;
        if (path > 0 && !mecab_lattice_next(lat))
            break;
        if (bl > 0)
            buf[bl++] = '\n';
        size_t from = bl;
        /* Surfaces point into the lattice's own copy of the sentence in
         * N-best mode, not into `common`. */
        if (read_path(lat, mecab_lattice_get_sentence(lat), buf, &bl) != 0 ||
            bl == from) {
            bl = mark;
            continue;
        }
        buf[bl] = '\0';
        /* Already have this one? (each earlier one ends in '\n' or at from) */
        for (const char *s = buf; s < buf + from;) {
            size_t l = strcspn(s, "\n");
            if (l == bl - from && memcmp(s, buf + from, l) == 0) {
                bl = mark;
                break;
            }
            s += l + 1;
        }
    }
    if (bl == 0)
        goto done;
    buf[bl] = '\0';
    *out = strdup(buf);
    rv = *out ? 0 : -1;
done:
    mecab_lattice_destroy(lat);
    return rv;
}
