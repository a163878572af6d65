/*
 * name_fold.c — name folding for the register's search (see name_fold.h).
 *
 * Owns the canonical search form of a name, and the keys and query terms
 * built from it. A fold works on an array of code points ("units"):
 *   A. decode and normalise: strict UTF-8 decoding; width, case, separators,
 *      diacritics, half-width and katakana to hiragana, dakuten marks,
 *      iteration marks and variant kanji (table 1 below);
 *   C. write the kana as canonical romaji (table 3), everything else as is;
 *   B. read every run of ASCII letters as romaji into kana (table 2) — the
 *      runs now hold both the romaji the user typed and the romaji C wrote;
 *   C. again, and encode the units as UTF-8 into the caller's buffer.
 * Happy path: "Satoh", "satou", "サトウ" and "ｻﾄｳ" all become "sato".
 * Because every letter, typed or written by C, goes through the one romaji
 * reader B, folding is idempotent — fold(fold(x)) == fold(x) — which the
 * unit test checks exhaustively over short kana, romaji and mixed strings.
 * That is what makes the canonical form itself a spelling that finds the
 * same records, and mixed input like "Smith あ" read like its fold "smitha".
 *
 * Failure modes: invalid UTF-8 (overlong forms, surrogates, truncation, bytes
 * that never occur, a NUL byte) and a result that does not fit the caller's
 * buffer make the fold fail; nothing is ever truncated. Folding needs one
 * scratch array of code points, on the stack for inputs up to 256 bytes and
 * from malloc() beyond that; a failed malloc() also makes the fold fail.
 *
 * Table 1 — pass A (input side):
 *   U+FF01..U+FF5E full-width ASCII   -> ASCII          ＹＡＭＡＤＡ -> yamada
 *   A..Z                              -> a..z
 *   ā á â à ä (and ī ū ē ō alike)     -> a (i u e o)     Tarō -> taro
 *   ’ ʼ                               -> '              Ken’ichi
 *   space U+3000 ・ ･ - . ,           removed           (also their full-width forms)
 *   half-width katakana ｱ..ﾝ ｧ ｯ ｰ    -> full width
 *   ﾞ ﾟ ゛ ゜ U+3099 U+309A            combine with the kana before; dropped elsewhere
 *   katakana                          -> hiragana        ヷヸヹヺ -> ゔぁ ゔぃ ゔぇ ゔぉ
 *   ゔ ゔぁ ゔぃ ゔぇ ゔぉ (ヴ ヴァ ..)   -> ぶ ば び べ ぼ   ヴィクトル = ビクトル
 *   うぃ うぇ うぉ いぇ てぃ でぃ      -> うい うえ うお いえ てい でい
 *                                                       ウィルソン = ウイルソン
 *   ヶ ヵ ゖ ゕ                          -> け              三ヶ尻 = 三ケ尻 = 三ヵ尻
 *   ー ｰ (chōon)                      removed           サトー = さとう
 *   ゝ ゞ ヽ ヾ after a kana            -> that kana (voiced for ゞ ヾ)
 *   variant kanji                     -> common form     see variant_kanji[]
 *   anything else                     kept
 *
 * Table 2 — pass B (romaji reader), on runs of ASCII letters and apostrophes
 * that contain no digit (a run with a digit, like an id "a123", is kept
 * literally, minus apostrophes):
 *   Hepburn, Kunrei and Nihon-shiki syllables all read as kana:
 *     si shi -> し   ti chi -> ち   tu tsu -> つ   hu fu -> ふ   zi ji -> じ
 *     di -> ぢ   du -> づ   sy* sh* shy* -> しゃ..   ty* cy* ch* chy* -> ちゃ..
 *     zy* jy* j* -> じゃ..   dy* -> ぢゃ..   ky gy ny hy by py my ry -> きゃ..
 *     fa fi fe fo -> ふぁ..   va vi vu ve vo -> ば び ぶ べ ぼ (as ヴ, table 1)
 *     wi we wo -> うぃ うぇ うぉ   ye -> いぇ   tsa tsi tse tso -> つぁ..
 *     (kept apart from kana ウィ = ウイ: "dwe" would otherwise fold to
 *     "due" and then to "zue", and folding would not be idempotent)
 *     *ye (kye, she, che, je..) -> きぇ..
 *   n' -> ん; nn -> ん (as IME input; Hepburn "nna" reads ん+あ, which
 *     pass C writes like ん+な, so both readings agree); n before a
 *     consonant, a non-letter or the end -> ん; m before b p m v -> ん
 *   a doubled consonant (kk, ss, cch, tch, ...) -> っ + the syllable
 *   h after an o- or u-row syllable, when no syllable starts at the h -> う
 *     (satoh, ohno, shoh, yuhki)
 *   other apostrophes dropped; a letter that starts no syllable is kept
 *     (so "smith" stays "smith")
 *
 * Table 3 — pass C (canonical romaji), modified Hepburn with these choices:
 *   し shi, ち chi, つ tsu, ふ fu, じ ぢ ji, ず づ zu, を o, ゐ i, ゑ e
 *   yōon: きゃ kya .. しゃ sha, ちゃ cha, じゃ ぢゃ ja; きぇ kye, しぇ she ..
 *   ふぁ fa, つぁ tsa; うぃ wi, うぇ we, うぉ wo, いぇ ye (from romaji only:
 *   kana ゔ, うぃ, てぃ .. are gone after table 1)
 *   とぅ tsu, どぅ zu, すぃ shi, ずぃ ji, てゅ chu, でゅ ju
 *     (so that Kunrei "tu" "du" "si" "zi" stay unambiguous)
 *   other small kana stand alone as their full-size reading
 *   々 right after a kanji (once all else is folded) -> that kanji:
 *     佐々木 = 佐佐木
 *   long vowels: お or う after an o-sound and う after a u-sound are
 *     dropped (おう, おお, うう -> o, o, u); ああ いい ええ are kept
 *   ん -> n, and a following な-row syllable loses its n (こんの -> kono,
 *     the same as "konno" read IME-style as こんお)
 *   っ doubles the next consonant (っち -> cchi, っし -> sshi); before a
 *     vowel, n, m, a non-kana or at the end it is dropped
 */
#include "name_fold.h"
#include "utf8.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Tokens beyond this are folded together with the last one. */
#define MAX_TOKENS 16
/* Scratch units kept on the stack; longer inputs use malloc(). */
#define STACK_UNITS 256

#define HIRA_FIRST 0x3041u /* ぁ */
#define HIRA_LAST 0x3096u  /* ゖ */

#define K_SMALL_A 0x3041u
#define K_SMALL_I 0x3043u
#define K_SMALL_U 0x3045u
#define K_SMALL_E 0x3047u
#define K_SMALL_O 0x3049u
#define K_U 0x3046u
#define K_KE 0x3051u
#define K_SOKUON 0x3063u
#define K_SMALL_YA 0x3083u
#define K_SMALL_YU 0x3085u
#define K_SMALL_YO 0x3087u
#define K_N 0x3093u
#define K_VU 0x3094u

struct seg {
    const unsigned char *p;
    size_t len;
};

/* ------------------------------------------------------------------ UTF-8 */

/* Decodes the first code point of a NUL-terminated literal from the tables. */
static uint32_t lit_cp(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    size_t len = strlen(*s), i = 0;
    uint32_t cp = 0;

    if (kz_utf8_decode(p, len, &i, &cp) != 0)
        return 0;
    *s += i;
    return cp;
}

/* ------------------------------------------------------------ the output */

struct out {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
};

static void out_bytes(struct out *o, const char *s, size_t n)
{
    /* Keep one byte for the NUL. */
    if (o->overflow || n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_cp(struct out *o, uint32_t c)
{
    char b[4];
    out_bytes(o, b, kz_utf8_encode(c, b));
}

/* --------------------------------------------------------- units buffer */

struct units {
    uint32_t *u;
    size_t n;
    size_t cap;
};

/* Capacity is sized from the input so this cannot fail in practice; the
 * check keeps a wrong estimate from becoming a heap overflow. */
static int push(struct units *a, uint32_t c)
{
    if (a->n >= a->cap)
        return -1;
    a->u[a->n++] = c;
    return 0;
}

static uint32_t last(const struct units *a)
{
    return a->n ? a->u[a->n - 1] : 0;
}

/* -------------------------------------------------------- pass A tables */

/*
 * Variant (異体字 / 旧字体) kanji common in family names, folded to the form
 * most registers use, so a record typed with either form is found with
 * either. Sorted by `from` for the binary search. Deliberately short: only
 * pairs that registers treat as one name; a wrong entry would make unrelated
 * names match each other.
 */
static const struct {
    uint32_t from, to;
} variant_kanji[] = {
    {0x51A8, 0x5BCC}, /* 冨 -> 富 */
    {0x570B, 0x56FD}, /* 國 -> 国 */
    {0x5CEF, 0x5CF0}, /* 峯 -> 峰 */
    {0x5D5C, 0x5D0E}, /* 嵜 -> 崎 */
    {0x5D8B, 0x5CF6}, /* 嶋 -> 島 */
    {0x5D8C, 0x5CF6}, /* 嶌 -> 島 */
    {0x5EE3, 0x5E83}, /* 廣 -> 広 */
    {0x5FB7, 0x5FB3}, /* 德 -> 徳 */
    {0x60E0, 0x6075}, /* 惠 -> 恵 */
    {0x6589, 0x658E}, /* 斉 -> 斎 */
    {0x6801, 0x67F3}, /* 栁 -> 柳 */
    {0x69C7, 0x69D9}, /* 槇 -> 槙 */
    {0x6AFB, 0x685C}, /* 櫻 -> 桜 */
    {0x6F81, 0x6E0B}, /* 澁 -> 渋 */
    {0x6FA4, 0x6CA2}, /* 澤 -> 沢 */
    {0x6FF1, 0x6D5C}, /* 濱 -> 浜 */
    {0x6FF5, 0x6D5C}, /* 濵 -> 浜 */
    {0x771E, 0x771F}, /* 眞 -> 真 */
    {0x8218, 0x9928}, /* 舘 -> 館 */
    {0x9089, 0x8FBA}, /* 邉 -> 辺 */
    {0x908A, 0x8FBA}, /* 邊 -> 辺 */
    {0x9AD9, 0x9AD8}, /* 髙 -> 高 */
    {0x9F4A, 0x658E}, /* 齊 -> 斎 */
    {0x9F4B, 0x658E}, /* 齋 -> 斎 */
    {0xFA10, 0x585A}, /* 塚 (compatibility form) -> 塚 */
    {0xFA11, 0x5D0E}, /* 﨑 -> 崎 */
};

static uint32_t fold_kanji(uint32_t c)
{
    size_t lo = 0, hi = sizeof variant_kanji / sizeof variant_kanji[0];

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (variant_kanji[mid].from == c)
            return variant_kanji[mid].to;
        if (variant_kanji[mid].from < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return c;
}

unsigned long kz_node_kanji_common(unsigned long c)
{
    return c > UINT32_MAX ? c : fold_kanji((uint32_t)c);
}

static bool is_kanji(uint32_t c)
{
    return (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3FFFF);
}

static bool is_hira(uint32_t c)
{
    return c >= HIRA_FIRST && c <= HIRA_LAST;
}

static bool is_separator(uint32_t c)
{
    return c == ' ' || c == 0x3000 || c == 0x30FB /* ・ */ ||
           c == 0xFF65 /* ･ */ || c == '-' || c == '.' || c == ',';
}

/* Latin letters with a diacritic that romanisations put on vowels (macron
 * for Hepburn, circumflex for Kunrei, and the odd acute or grave from a
 * foreign keyboard) -> the plain vowel; typographic apostrophes -> '. */
static uint32_t fold_latin(uint32_t c)
{
    switch (c) {
    case 0xE0: case 0xE1: case 0xE2: case 0xE4: case 0x101:
    case 0xC0: case 0xC1: case 0xC2: case 0xC4: case 0x100:
        return 'a';
    case 0xEC: case 0xED: case 0xEE: case 0xEF: case 0x12B:
    case 0xCC: case 0xCD: case 0xCE: case 0xCF: case 0x12A:
        return 'i';
    case 0xF9: case 0xFA: case 0xFB: case 0xFC: case 0x16B:
    case 0xD9: case 0xDA: case 0xDB: case 0xDC: case 0x16A:
        return 'u';
    case 0xE8: case 0xE9: case 0xEA: case 0xEB: case 0x113:
    case 0xC8: case 0xC9: case 0xCA: case 0xCB: case 0x112:
        return 'e';
    case 0xF2: case 0xF3: case 0xF4: case 0xF6: case 0x14D:
    case 0xD2: case 0xD3: case 0xD4: case 0xD6: case 0x14C:
        return 'o';
    case 0x2019: case 0x02BC:
        return '\'';
    default:
        return c;
    }
}

/* The kana a dakuten (semi = false) or handakuten (semi = true) makes of
 * hiragana k: writes 1 or 2 units to r and returns how many, or 0 if the mark
 * does not combine with k. わ ゐ ゑ を + dakuten are the katakana-only ヷ ヸ ヹ
 * ヺ, which exist in hiragana only as ゔ + a small vowel. */
static int voiced(uint32_t k, bool semi, uint32_t r[2])
{
    bool h_row = k == 0x306F || k == 0x3072 || k == 0x3075 || k == 0x3078 ||
                 k == 0x307B; /* は ひ ふ へ ほ */

    if (semi) {
        if (!h_row)
            return 0;
        r[0] = k + 2;
        return 1;
    }
    /* か き く け こ さ し す せ そ た ち: each voiced form is the next code. */
    if ((k >= 0x304B && k <= 0x3061 && (k - 0x304B) % 2 == 0) ||
        k == 0x3064 || k == 0x3066 || k == 0x3068 || h_row) {
        r[0] = k + 1;
        return 1;
    }
    if (k == K_U) {
        r[0] = K_VU;
        return 1;
    }
    if (k >= 0x308F && k <= 0x3092) { /* わ ゐ ゑ を */
        static const uint32_t small[] = {K_SMALL_A, K_SMALL_I, K_SMALL_E,
                                         K_SMALL_O};
        r[0] = K_VU;
        r[1] = small[k - 0x308F];
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------- pass A */

/*
 * Spellings of one sound that registers and people mix freely, made one:
 *   ゔ ゔぁ ゔぃ ゔぅ ゔぇ ゔぉ -> ぶ ば び ぶ べ ぼ   (ヴィクトル = ビクトル)
 *   うぃ うぇ うぉ -> うい うえ うお, いぇ -> いえ, てぃ でぃ -> てい でい
 *     (ウィルソン = ウイルソン, ウェイ = ウエイ, スティーヴン = ステイーブン)
 * Rewrites a in place (it only ever shortens).
 */
static void merge_spellings(struct units *a)
{
    size_t w = 0;

    for (size_t i = 0; i < a->n; i++) {
        uint32_t c = a->u[i], nx = i + 1 < a->n ? a->u[i + 1] : 0;

        if (c == K_VU) {
            static const uint32_t ba[] = {0x3070, 0x3073, 0x3076, 0x3079,
                                          0x307C}; /* ば び ぶ べ ぼ */
            int v = nx == K_SMALL_A   ? 0
                    : nx == K_SMALL_I ? 1
                    : nx == K_SMALL_U ? 2
                    : nx == K_SMALL_E ? 3
                    : nx == K_SMALL_O ? 4
                                      : -1;
            a->u[w++] = ba[v < 0 ? 2 : v];
            if (v >= 0)
                i++;
            continue;
        }
        a->u[w++] = c;
        if ((c == K_U && (nx == K_SMALL_I || nx == K_SMALL_E ||
                          nx == K_SMALL_O)) ||
            (c == 0x3044 && nx == K_SMALL_E) ||
            ((c == 0x3066 || c == 0x3067) && nx == K_SMALL_I)) {
            a->u[w++] = nx + 1; /* the full-size vowel */
            i++;
        }
    }
    a->n = w;
}

static int pass_a(const struct seg *segs, size_t nseg, struct units *a)
{
    for (size_t s = 0; s < nseg; s++) {
        const unsigned char *p = segs[s].p;
        size_t len = segs[s].len, i = 0;

        while (i < len) {
            uint32_t c, r[2];
            int nr;

            if (kz_utf8_decode(p, len, &i, &c) != 0)
                return -1;
            if (c >= 0xFF01 && c <= 0xFF5E)
                c -= 0xFEE0;
            if (is_separator(c))
                continue;
            if (c >= 'A' && c <= 'Z')
                c += 'a' - 'A';
            c = fold_latin(c);
            if (c >= 0xFF66 && c <= 0xFF9D)
                c = kz_halfwidth_kana[c - 0xFF66];
            else if (c == 0xFF9E || c == 0x309B)
                c = 0x3099;
            else if (c == 0xFF9F || c == 0x309C)
                c = 0x309A;
            if (c >= 0x30A1 && c <= 0x30F6)
                c -= 0x60; /* katakana -> hiragana */
            if (c == 0x3095 || c == 0x3096)
                c = K_KE; /* ゕ ゖ (from ヵ ヶ) read as ケ in names */

            switch (c) {
            case 0x30FC: /* ー: the long vowel is dropped, like ou/oo */
                continue;
            case 0x3099: /* (half-width / spacing / combining) dakuten */
            case 0x309A:
                nr = a->n ? voiced(last(a), c == 0x309A, r) : 0;
                if (nr > 0) {
                    a->n--;
                    for (int k = 0; k < nr; k++)
                        if (push(a, r[k]) != 0)
                            return -1;
                }
                continue; /* a mark with nothing to combine with is noise */
            case 0x30F7: case 0x30F8: case 0x30F9: case 0x30FA: /* ヷヸヹヺ */
                nr = voiced(c - 0x30F7 + 0x308F, false, r); /* わゐゑを + ゛ */
                for (int k = 0; k < nr; k++)
                    if (push(a, r[k]) != 0)
                        return -1;
                continue;
            case 0x309D: case 0x30FD: /* ゝ ヽ */
            case 0x309E: case 0x30FE: /* ゞ ヾ */
                if (is_hira(last(a)) && last(a) != K_N &&
                    last(a) != K_SOKUON) {
                    uint32_t prev = last(a);
                    if ((c == 0x309E || c == 0x30FE) &&
                        voiced(prev, false, r) == 1)
                        prev = r[0];
                    if (push(a, prev) != 0)
                        return -1;
                    continue;
                }
                break;
            default:
                c = fold_kanji(c);
                break;
            }
            if (push(a, c) != 0)
                return -1;
        }
    }
    merge_spellings(a);
    return 0;
}

/* ------------------------------------------------------------- pass B */

/*
 * Romaji onsets and the kana they make with a i u e o (in that order);
 * "" where the pair is not a syllable. Tried longest onset first.
 */
static const struct onset {
    const char *on;
    const char *kana[5];
} onsets[] = {
    {"shy", {"しゃ", "", "しゅ", "しぇ", "しょ"}},
    {"chy", {"ちゃ", "", "ちゅ", "ちぇ", "ちょ"}},
    {"sh", {"しゃ", "し", "しゅ", "しぇ", "しょ"}},
    {"ch", {"ちゃ", "ち", "ちゅ", "ちぇ", "ちょ"}},
    {"ts", {"つぁ", "つぃ", "つ", "つぇ", "つぉ"}},
    {"sy", {"しゃ", "", "しゅ", "しぇ", "しょ"}},
    {"ty", {"ちゃ", "", "ちゅ", "ちぇ", "ちょ"}},
    {"cy", {"ちゃ", "", "ちゅ", "ちぇ", "ちょ"}},
    {"zy", {"じゃ", "", "じゅ", "じぇ", "じょ"}},
    {"jy", {"じゃ", "", "じゅ", "じぇ", "じょ"}},
    {"dy", {"ぢゃ", "", "ぢゅ", "ぢぇ", "ぢょ"}},
    {"ky", {"きゃ", "", "きゅ", "きぇ", "きょ"}},
    {"gy", {"ぎゃ", "", "ぎゅ", "ぎぇ", "ぎょ"}},
    {"ny", {"にゃ", "", "にゅ", "にぇ", "にょ"}},
    {"hy", {"ひゃ", "", "ひゅ", "ひぇ", "ひょ"}},
    {"by", {"びゃ", "", "びゅ", "びぇ", "びょ"}},
    {"py", {"ぴゃ", "", "ぴゅ", "ぴぇ", "ぴょ"}},
    {"my", {"みゃ", "", "みゅ", "みぇ", "みょ"}},
    {"ry", {"りゃ", "", "りゅ", "りぇ", "りょ"}},
    {"k", {"か", "き", "く", "け", "こ"}},
    {"g", {"が", "ぎ", "ぐ", "げ", "ご"}},
    {"s", {"さ", "し", "す", "せ", "そ"}},
    {"z", {"ざ", "じ", "ず", "ぜ", "ぞ"}},
    {"j", {"じゃ", "じ", "じゅ", "じぇ", "じょ"}},
    {"t", {"た", "ち", "つ", "て", "と"}},
    {"d", {"だ", "ぢ", "づ", "で", "ど"}},
    {"n", {"な", "に", "ぬ", "ね", "の"}},
    {"h", {"は", "ひ", "ふ", "へ", "ほ"}},
    {"f", {"ふぁ", "ふぃ", "ふ", "ふぇ", "ふぉ"}},
    {"b", {"ば", "び", "ぶ", "べ", "ぼ"}},
    {"p", {"ぱ", "ぴ", "ぷ", "ぺ", "ぽ"}},
    {"m", {"ま", "み", "む", "め", "も"}},
    {"y", {"や", "", "ゆ", "いぇ", "よ"}},
    {"r", {"ら", "り", "る", "れ", "ろ"}},
    {"w", {"わ", "うぃ", "", "うぇ", "うぉ"}},
    {"v", {"ば", "び", "ぶ", "べ", "ぼ"}},
    {"", {"あ", "い", "う", "え", "お"}},
};

static int vowel_index(uint32_t c)
{
    switch (c) {
    case 'a': return 0;
    case 'i': return 1;
    case 'u': return 2;
    case 'e': return 3;
    case 'o': return 4;
    default: return -1;
    }
}

/* The syllable starting at r[k] (r has rl letters): returns how many letters
 * it takes and sets *kana to its kana (UTF-8), or returns 0 if none starts
 * there. */
static size_t syllable_at(const uint32_t *r, size_t rl, size_t k,
                          const char **kana)
{
    for (size_t o = 0; o < sizeof onsets / sizeof onsets[0]; o++) {
        size_t ol = strlen(onsets[o].on), j;
        int v;

        if (k + ol >= rl)
            continue;
        for (j = 0; j < ol; j++)
            if (r[k + j] != (unsigned char)onsets[o].on[j])
                break;
        if (j < ol)
            continue;
        v = vowel_index(r[k + ol]);
        if (v < 0 || onsets[o].kana[v][0] == '\0')
            continue;
        *kana = onsets[o].kana[v];
        return ol + 1;
    }
    return 0;
}

static int push_kana(struct units *b, const char *kana)
{
    while (*kana)
        if (push(b, lit_cp(&kana)) != 0)
            return -1;
    return 0;
}

/* Hiragana whose reading ends in o: an h after one of these is a long-vowel
 * mark (satoh, ohno). */
static bool ends_in_o(uint32_t c)
{
    static const uint32_t o_row[] = {
        0x304A, 0x3049, 0x3053, 0x3054, 0x305D, 0x305E, 0x3068, 0x3069,
        0x306E, 0x307B, 0x307C, 0x307D, 0x3082, 0x3088, 0x3087, 0x308D,
        0x3092, /* お ぉ こ ご そ ぞ と ど の ほ ぼ ぽ も よ ょ ろ を */
    };
    for (size_t i = 0; i < sizeof o_row / sizeof o_row[0]; i++)
        if (o_row[i] == c)
            return true;
    return false;
}

/* Hiragana whose reading ends in u: an h after one of these is a long-vowel
 * mark too (yuhki, shuhji). */
static bool ends_in_u(uint32_t c)
{
    static const uint32_t u_row[] = {
        0x3046, 0x3045, 0x304F, 0x3050, 0x3059, 0x305A, 0x3064, 0x3065,
        0x306C, 0x3075, 0x3076, 0x3077, 0x3080, 0x3086, 0x3085, 0x308B,
        /* う ぅ く ぐ す ず つ づ ぬ ふ ぶ ぷ む ゆ ゅ る */
    };
    for (size_t i = 0; i < sizeof u_row / sizeof u_row[0]; i++)
        if (u_row[i] == c)
            return true;
    return false;
}

/* True if the kana read so far end in an o- or u-sound, looking through
 * long-vowel う that pass C will drop anyway ("ouh", "ohh" read like "oh"). */
static bool after_long_sound(const struct units *b)
{
    size_t i = b->n;

    if (i > 0 && ends_in_u(b->u[i - 1])) /* う itself included */
        return true;
    while (i > 1 && b->u[i - 1] == K_U)
        i--;
    return i > 0 && ends_in_o(b->u[i - 1]);
}

static bool is_consonant(uint32_t c)
{
    return c >= 'a' && c <= 'z' && vowel_index(c) < 0;
}

/* Reads one run of romaji (lowercase letters, and apostrophes only right
 * after an n) into kana, appended to b. See table 2 at the top of the file. */
static int read_romaji(const uint32_t *r, size_t rl, struct units *b)
{
    size_t k = 0;

    while (k < rl) {
        uint32_t c = r[k], nx = k + 1 < rl ? r[k + 1] : 0;
        const char *kana = NULL;
        size_t used;

        if (c == '\'') { /* left over after "nn'" */
            k++;
            continue;
        }
        if (c == 'n' && (nx == '\'' || nx == 'n')) {
            if (push(b, K_N) != 0)
                return -1;
            k += 2;
            continue;
        }
        if (c == 'm' && (nx == 'b' || nx == 'p' || nx == 'm' || nx == 'v')) {
            if (push(b, K_N) != 0)
                return -1;
            k++;
            continue;
        }
        if (is_consonant(c) && c != 'n' &&
            (nx == c || (c == 't' && nx == 'c')) &&
            syllable_at(r, rl, k + 1, &kana) > 0) {
            if (push(b, K_SOKUON) != 0)
                return -1;
            k++;
            continue;
        }
        used = syllable_at(r, rl, k, &kana);
        if (used > 0) {
            if (push_kana(b, kana) != 0)
                return -1;
            k += used;
            continue;
        }
        if (c == 'n')
            c = K_N; /* before a consonant or at the end of the run */
        else if (c == 'h' && after_long_sound(b))
            c = K_U;
        if (push(b, c) != 0)
            return -1;
        k++;
    }
    return 0;
}

static bool is_ascii_alnum(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int pass_b(struct units *a, struct units *b)
{
    size_t i = 0;

    while (i < a->n) {
        size_t j = i;
        bool digit = false;

        while (j < a->n && (is_ascii_alnum(a->u[j]) || a->u[j] == '\'')) {
            if (a->u[j] >= '0' && a->u[j] <= '9')
                digit = true;
            j++;
        }
        if (j == i) {
            if (push(b, a->u[i++]) != 0)
                return -1;
            continue;
        }
        if (digit) {
            /* An id-like token ("a123"): letters are not romaji. */
            for (; i < j; i++)
                if (a->u[i] != '\'' && push(b, a->u[i]) != 0)
                    return -1;
            continue;
        }
        /* An apostrophe only matters after n (ken'ichi); elsewhere it is
         * dropped before reading so that "f'e" reads like "fe" — the folded
         * form has no apostrophes, and must read back the same. The run is
         * compacted in place: that part of `a` is not read again. */
        {
            uint32_t *r = a->u + i;
            size_t rl = 0;

            for (size_t t = i; t < j; t++)
                if (a->u[t] != '\'' || (rl > 0 && r[rl - 1] == 'n'))
                    r[rl++] = a->u[t];
            if (read_romaji(r, rl, b) != 0)
                return -1;
        }
        i = j;
    }
    return 0;
}

/* ------------------------------------------------------------- pass C */

/* Canonical reading of each hiragana, U+3041..U+3096. Small kana read as
 * their full-size forms here; combinations are handled by combine(). */
static const char *const kana_romaji[HIRA_LAST - HIRA_FIRST + 1] = {
    "a", "a", "i", "i", "u", "u", "e", "e", "o", "o",           /* ぁ..お */
    "ka", "ga", "ki", "gi", "ku", "gu", "ke", "ge", "ko", "go", /* か..ご */
    "sa", "za", "shi", "ji", "su", "zu", "se", "ze", "so", "zo",
    "ta", "da", "chi", "ji", "",   "tsu", "zu", "te", "de", "to", "do",
    "na", "ni", "nu", "ne", "no",
    "ha", "ba", "pa", "hi", "bi", "pi", "fu", "bu", "pu",
    "he", "be", "pe", "ho", "bo", "po",
    "ma", "mi", "mu", "me", "mo",
    "ya", "ya", "yu", "yu", "yo", "yo",                         /* ゃ..よ */
    "ra", "ri", "ru", "re", "ro",
    "wa", "wa", "i", "e", "o", "n", "bu", "ke", "ke",           /* ゎ..ゖ */
};

static const char *romaji_of(uint32_t k)
{
    return kana_romaji[k - HIRA_FIRST];
}

static bool is_small(uint32_t c)
{
    return c == K_SMALL_A || c == K_SMALL_I || c == K_SMALL_U ||
           c == K_SMALL_E || c == K_SMALL_O || c == K_SMALL_YA ||
           c == K_SMALL_YU || c == K_SMALL_YO;
}

/* The reading of kana `base` followed by small kana `small` as one syllable,
 * written to buf; NULL if they do not combine (the small kana then reads
 * alone). The irregular cases are chosen so that reading the result back in
 * pass B gives the same kana reading again (see table 3). */
static const char *combine(uint32_t base, uint32_t small, char buf[8])
{
    static const struct {
        uint32_t base, small;
        const char *romaji;
    } fixed[] = {
        {K_U, K_SMALL_I, "wi"},     /* うぃ, only from romaji "wi" */
        {K_U, K_SMALL_E, "we"},     /* うぇ */
        {K_U, K_SMALL_O, "wo"},     /* うぉ */
        {0x3044, K_SMALL_E, "ye"},  /* いぇ */
        {0x3068, K_SMALL_U, "tsu"}, /* とぅ */
        {0x3069, K_SMALL_U, "zu"},  /* どぅ */
        {0x3059, K_SMALL_I, "shi"}, /* すぃ */
        {0x305A, K_SMALL_I, "ji"},  /* ずぃ */
        {0x3066, K_SMALL_YU, "chu"}, /* てゅ */
        {0x3067, K_SMALL_YU, "ju"},  /* でゅ */
    };
    const char *r = romaji_of(base);
    size_t rl = strlen(r);
    bool y = small == K_SMALL_YA || small == K_SMALL_YU || small == K_SMALL_YO;
    char v = romaji_of(small)[y ? 1 : 0]; /* "ya" -> a, "e" -> e */

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (fixed[i].base == base && fixed[i].small == small)
            return fixed[i].romaji;

    if (y || small == K_SMALL_E) {
        /* い-row kana (reading "Ci", but not い itself) + ゃゅょぇ: yōon. */
        if (rl < 2 || r[rl - 1] != 'i')
            return NULL;
        memcpy(buf, r, rl - 1);
        buf[rl - 1] = '\0';
        if (strcmp(buf, "sh") != 0 && strcmp(buf, "ch") != 0 &&
            strcmp(buf, "j") != 0) {
            buf[rl - 1] = 'y';
            buf[rl] = v;
            buf[rl + 1] = '\0';
        } else {
            buf[rl - 1] = v;
            buf[rl] = '\0';
        }
        return buf;
    }
    /* ふ ゔ つ + small vowel: fa, va, tsa ... */
    if (base == 0x3075 || base == K_VU || base == 0x3064) {
        memcpy(buf, r, rl - 1);
        buf[rl - 1] = v;
        buf[rl] = '\0';
        return buf;
    }
    return NULL;
}

static bool is_vowel_ch(char c)
{
    return c == 'a' || c == 'i' || c == 'u' || c == 'e' || c == 'o';
}

static int push_str(struct units *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (push(o, (unsigned char)s[i]) != 0)
            return -1;
    return 0;
}

/* Writes b as canonical romaji into o: hiragana per table 3, anything else
 * unchanged. At most three units per unit read ("tsu"). */
static int pass_c(const struct units *b, struct units *o)
{
    bool sokuon = false, after_n = false;
    char prev_v = 0;
    size_t i = 0;

    while (i < b->n) {
        uint32_t c = b->u[i];
        const char *s = NULL;
        char buf[8];
        size_t used = 1, sl;

        if (!is_hira(c)) {
            if (push(o, c) != 0)
                return -1;
            sokuon = after_n = false;
            prev_v = 0;
            i++;
            continue;
        }
        if (c == K_SOKUON) {
            sokuon = true;
            i++;
            continue;
        }
        if (c == K_N) {
            if (!after_n && push(o, 'n') != 0)
                return -1;
            after_n = true;
            sokuon = false;
            prev_v = 0;
            i++;
            continue;
        }
        if (i + 1 < b->n && is_small(b->u[i + 1]))
            s = combine(c, b->u[i + 1], buf);
        if (s)
            used = 2;
        else
            s = romaji_of(c);

        if (s[1] == '\0' && is_vowel_ch(s[0])) {
            /* Long vowels: おう おお うう -> o o u, whatever the romanisation
             * did with them (ou, oo, oh, ō, ô, or nothing at all). */
            if ((prev_v == 'o' && (s[0] == 'o' || s[0] == 'u')) ||
                (prev_v == 'u' && s[0] == 'u')) {
                sokuon = after_n = false;
                i += used;
                continue;
            }
        } else if (sokuon && s[0] != 'n' && s[0] != 'm') {
            /* Before n and m a doubled letter would read back as ん. */
            if (push(o, (unsigned char)s[0]) != 0)
                return -1;
        }
        if (after_n && s[0] == 'n')
            s++; /* ん + な-row: "nna" and IME "nna" (ん+あ) agree as "na" */
        sl = strlen(s);
        if (push_str(o, s, sl) != 0)
            return -1;
        prev_v = is_vowel_ch(s[sl - 1]) ? s[sl - 1] : 0;
        sokuon = after_n = false;
        i += used;
    }
    return 0;
}

/* ----------------------------------------------------------- the fold */

static int fold_segs(const struct seg *segs, size_t nseg, char *out,
                     size_t cap)
{
    uint32_t stack[6 * STACK_UNITS];
    uint32_t *heap = NULL, *mem = stack;
    struct units x, y;
    struct out o = {out, cap, 0, false};
    size_t total = 0, room;
    int rc = -1;

    if (out == NULL || cap == 0)
        return -1;
    for (size_t s = 0; s < nseg; s++)
        total += segs[s].len;
    /* Pass A makes at most one unit per input byte (ヷ: 3 bytes, 2 units),
     * pass C at most three per unit and pass B at most one per unit, so two
     * buffers of 3 * total units suffice. */
    if (total > STACK_UNITS) {
        if (total > SIZE_MAX / (6 * sizeof(uint32_t)))
            return -1;
        heap = malloc(6 * total * sizeof(uint32_t));
        if (heap == NULL)
            return -1;
        mem = heap;
    }
    room = 3 * total;
    x = (struct units){mem, 0, room};
    y = (struct units){mem + room, 0, room};

    /* Kana is first written as romaji and read back, so that everything,
     * kana or Latin or a mix of both, goes through the one romaji reader:
     * that is what makes fold(fold(s)) == fold(s) for any s, and a token
     * like "Smith あ" reads the same as its folded form "smitha". */
    if (pass_a(segs, nseg, &x) != 0)
        goto done;
    if (pass_c(&x, &y) != 0)
        goto done;
    x.n = 0;
    if (pass_b(&y, &x) != 0)
        goto done;
    y.n = 0;
    if (pass_c(&x, &y) != 0)
        goto done;
    for (size_t i = 0; i < y.n; i++) {
        /* 々 repeats the kanji before it (佐々木 = 佐佐木). Done last, so
         * that whatever folds away between them (っ, ー, ') cannot make the
         * result differ from a fold of the folded form. */
        if (y.u[i] == 0x3005 && i > 0 && is_kanji(y.u[i - 1]))
            y.u[i] = y.u[i - 1];
        out_cp(&o, y.u[i]);
    }
    if (o.overflow)
        goto done;
    out[o.len] = '\0';
    rc = (int)o.len;
done:
    free(heap);
    return rc;
}

int kz_node_name_fold(const char *in, size_t len, char *out, size_t cap)
{
    struct seg s = {(const unsigned char *)in, len};

    if (in == NULL && len > 0)
        return -1;
    if (cap > (size_t)INT_MAX)
        cap = (size_t)INT_MAX; /* the length must fit the int result */
    return fold_segs(&s, len ? 1 : 0, out, cap);
}

/* ------------------------------------------------------ keys and queries */

/* Length of the token separator (ASCII space or U+3000) at p[i], or 0. */
static size_t space_at(const unsigned char *p, size_t len, size_t i)
{
    if (p[i] == ' ')
        return 1;
    if (len - i >= 3 && p[i] == 0xE3 && p[i + 1] == 0x80 && p[i + 2] == 0x80)
        return 3;
    return 0;
}

/* Splits s at ASCII spaces and U+3000 into at most MAX_TOKENS non-empty
 * tokens; the last one runs to the end of s (the fold drops the spaces). */
static size_t split_tokens(const char *s, size_t len, struct seg *tok)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0, i = 0, sp;

    while (i < len) {
        size_t start;

        while (i < len && (sp = space_at(p, len, i)) > 0)
            i += sp;
        if (i >= len)
            break;
        start = i;
        if (n == MAX_TOKENS - 1) {
            tok[n++] = (struct seg){p + start, len - start};
            break;
        }
        while (i < len && space_at(p, len, i) == 0)
            i++;
        tok[n++] = (struct seg){p + start, i - start};
    }
    return n;
}

static void add_key(char (*keys)[KZ_NODE_NAME_KEY_MAX], size_t max, size_t *n,
                    const char *k, int klen)
{
    if (klen <= 0 || *n >= max)
        return;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(keys[i], k) == 0)
            return;
    memcpy(keys[*n], k, (size_t)klen + 1);
    (*n)++;
}

static void add_string_keys(const char *s, char (*keys)[KZ_NODE_NAME_KEY_MAX],
                            size_t max, size_t *n)
{
    struct seg tok[MAX_TOKENS], rev[MAX_TOKENS];
    char k[KZ_NODE_NAME_KEY_MAX];
    size_t len, nt;

    if (s == NULL || *s == '\0')
        return;
    len = strlen(s);
    /* One bad byte makes the whole string suspect: index none of it. */
    if (!kz_utf8_valid(s, len))
        return;
    nt = split_tokens(s, len, tok);
    for (size_t t = 0; t < nt; t++)
        add_key(keys, max, n, k, fold_segs(&tok[t], 1, k, sizeof k));
    for (size_t t = 0; t < nt; t++)
        rev[t] = tok[nt - 1 - t];
    add_key(keys, max, n, k, fold_segs(tok, nt, k, sizeof k));
    add_key(keys, max, n, k, fold_segs(rev, nt, k, sizeof k));
}

size_t kz_node_name_keys(const char *name, const char *name_kana,
                         char (*keys)[KZ_NODE_NAME_KEY_MAX], size_t max)
{
    size_t n = 0;

    if (keys == NULL || max == 0)
        return 0;
    add_string_keys(name, keys, max, &n);
    add_string_keys(name_kana, keys, max, &n);
    return n;
}

size_t kz_node_name_reading_keys(const char *readings,
                                 char (*keys)[KZ_NODE_NAME_KEY_MAX],
                                 size_t max)
{
    char one[KZ_NODE_NAME_KEY_MAX * 2];
    size_t n = 0;

    if (keys == NULL || max == 0 || readings == NULL)
        return 0;
    for (const char *s = readings; *s;) {
        size_t l = strcspn(s, "\n");
        /* A reading too long for the buffer could not fit a key anyway. */
        if (l < sizeof one) {
            memcpy(one, s, l);
            one[l] = '\0';
            add_string_keys(one, keys, max, &n);
        }
        s += l;
        if (*s == '\n')
            s++;
    }
    return n;
}

size_t kz_node_name_query(const char *q, char (*terms)[KZ_NODE_NAME_KEY_MAX],
                          size_t max, size_t *whole_index)
{
    struct seg tok[MAX_TOKENS], all;
    char whole[KZ_NODE_NAME_KEY_MAX];
    size_t len, nt, n = 0;
    int wl;

    if (q == NULL || terms == NULL || max == 0)
        return 0;
    len = strlen(q);
    all = (struct seg){(const unsigned char *)q, len};
    wl = fold_segs(&all, 1, whole, sizeof whole);
    if (wl <= 0)
        return 0;

    nt = split_tokens(q, len, tok);
    if (nt < 2)
        nt = 0; /* one token: the whole is the only term */
    for (size_t t = 0; t < nt; t++) {
        int tl;

        if (n + 1 >= max) { /* no room left for the whole: give up tokens */
            n = 0;
            break;
        }
        tl = fold_segs(&tok[t], 1, terms[n], KZ_NODE_NAME_KEY_MAX);
        if (tl < 0) { /* a token too long to be any key's prefix */
            n = 0;
            break;
        }
        if (tl > 0)
            n++;
    }
    if (n < 2)
        n = 0; /* one token with content: the whole says it all */
    memcpy(terms[n], whole, (size_t)wl + 1);
    if (whole_index)
        *whole_index = n;
    return n + 1;
}
