/*
 * match.c — canonical forms of the name in kana and the address for link-code
 * issuance matching (see match.h for what folds and what deliberately does
 * not).
 *
 * The kana fold is one left-to-right pass that writes straight into the
 * caller's buffer; it only ever looks back at the last code point it wrote
 * (to compose a dakuten, to repeat a kana for ゝ). The address fold needs to
 * look ahead (does a 番 end the number or lead to the next one?), so it
 * decodes into an array of code points first — on the stack for inputs up to
 * 768 bytes — and runs its steps over that array in place:
 *   decode    characters, kanji numerals, 大字, marks (match.h steps 1-3)
 *   postcode  a leading 〒 and postcode skipped (step 7)
 *   spaces    white space -> '-' between digits, else removed (step 4)
 *   particles ヶ/が/の between kanji or digits (step 5)
 *   numbers   丁目/番地/番/号/の/dashes between and after numbers (step 6)
 *   postcode  again, on what step 6 made
 * and encodes the rest into the caller's buffer.
 *
 * Why it is idempotent. Every decision depends on the code point written
 * just before (kana) or on the neighbours in the array (address), never on
 * something a later step removes without leaving an equivalent neighbour:
 * white space is resolved before context is looked at, and where a step
 * removes a word (丁目 after a digit), the digit it leaves behind belongs to
 * the same class (kanji or digit) for the step-5 context. The canonical
 * targets (カ ケ ノ ー '-' digits) are fixed points of every rule. The unit
 * test and the fuzz driver check f(f(x)) == f(x).
 *
 * Failure modes: invalid UTF-8 or a NUL byte, a result that does not fit,
 * and (address, long input) a failed malloc() all return -1; the output is
 * then unspecified, and nothing is ever written past `cap`.
 */
#include "match.h"
#include "utf8.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Addresses up to this many bytes are folded in a scratch array on the
 * stack (about 4 KiB; see addr_units_needed), longer ones in malloc()ed
 * memory. */
#define STACK_INPUT 768
#define STACK_UNITS (STACK_INPUT + STACK_INPUT / 3 + 4)

/* Not a code point: a run of white space in the address array. */
#define SP 0x110000u

#define CP_PROLONGED 0x30FCu /* ー */
#define CP_DAKUTEN 0x309Bu   /* ゛ */
#define CP_HANDAKUTEN 0x309Cu /* ゜ */
#define CP_ITER 0x30FDu      /* ヽ */
#define CP_ITER_VOICED 0x30FEu /* ヾ */
#define CP_KATA_KA 0x30ABu   /* カ */
#define CP_KATA_KE 0x30B1u   /* ケ */
#define CP_KATA_NO 0x30CEu   /* ノ */
#define CP_POSTAL 0x3012u    /* 〒 */
#define CP_DAI 0x5927u       /* 大 */
#define CP_AZA 0x5B57u       /* 字 */

/* ------------------------------------------------------------------ UTF-8 */


/* ----------------------------------------------------- the caller's buffer */

/* A writer into the caller's buffer that remembers the last code point, so
 * that a following mark can replace it. Once something does not fit it
 * stays failed: nothing is ever truncated. */
struct writer {
    char *buf;
    size_t cap; /* usable bytes, the NUL included; at most INT_MAX */
    size_t len;
    size_t last_at; /* where `last` starts in buf */
    uint32_t last;
    bool has_last;
    bool overflow;
};

static void writer_init(struct writer *w, char *out, size_t cap)
{
    w->buf = out;
    w->cap = cap > (size_t)INT_MAX ? (size_t)INT_MAX : cap;
    w->len = 0;
    w->last_at = 0;
    w->last = 0;
    w->has_last = false;
    w->overflow = false;
}

static void writer_put(struct writer *w, uint32_t c)
{
    char b[4];
    size_t n = kz_utf8_encode(c, b);

    if (w->overflow || n >= w->cap - w->len) { /* keep a byte for the NUL */
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, b, n);
    w->last_at = w->len;
    w->len += n;
    w->last = c;
    w->has_last = true;
}

static void writer_replace_last(struct writer *w, uint32_t c)
{
    w->len = w->last_at;
    writer_put(w, c);
}

/* NUL-terminates; returns the length or -1. */
static int writer_finish(struct writer *w)
{
    if (w->overflow)
        return -1;
    w->buf[w->len] = '\0';
    return (int)w->len;
}

/* ------------------------------------------------------ character classes */

static bool is_space(uint32_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r' || c == 0xA0 || c == 0x3000;
}

static bool is_middle_dot(uint32_t c)
{
    return c == 0x30FB /* ・ */ || c == 0xFF65 /* ･ */;
}

/* Hyphens, dashes and minus signs (not ー, whose meaning depends on where
 * it is). U+FF0D － is folded to '-' by fold_width() before this is asked. */
static bool is_dash(uint32_t c)
{
    return c == '-' || (c >= 0x2010 && c <= 0x2015) || c == 0x2043 ||
           c == 0x2212 || c == 0xFE63 || c == 0xFF0D;
}

static bool is_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

static bool is_kata_letter(uint32_t c)
{
    return c >= 0x30A1 && c <= 0x30FA;
}

static bool is_kanji(uint32_t c)
{
    return (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x3FFFF) ||
           c == 0x3005 /* 々 */;
}

/* 1 for a dakuten, 2 for a handakuten (combining, spacing or half-width),
 * else 0. */
static int mark_kind(uint32_t c)
{
    if (c == 0x3099 || c == CP_DAKUTEN || c == 0xFF9E)
        return 1;
    if (c == 0x309A || c == CP_HANDAKUTEN || c == 0xFF9F)
        return 2;
    return 0;
}

/* U+FF61..U+FF64 ｡｢｣､ and U+FF66..U+FF9D half-width katakana -> full width
 * (U+FF65 ･ is a middle dot, handled before). */
static const uint16_t halfwidth_punct[] = {0x3002, 0x300C, 0x300D, 0x3001};

/* Full-width ASCII -> ASCII, A-Z -> a-z, half-width katakana and
 * punctuation -> full width (ｰ -> ー). Marks are left to the caller. */
static uint32_t fold_width(uint32_t c)
{
    if (c >= 0xFF01 && c <= 0xFF5E)
        c -= 0xFEE0;
    if (c >= 'A' && c <= 'Z')
        return c + ('a' - 'A');
    if (c >= 0xFF61 && c <= 0xFF64)
        return halfwidth_punct[c - 0xFF61];
    if (c >= 0xFF66 && c <= 0xFF9D)
        return kz_halfwidth_kana[c - 0xFF66];
    return c;
}

/* The kana that a dakuten (semi = false) or handakuten (semi = true) makes
 * of hiragana or katakana k, or 0 if the mark does not compose with k. */
static uint32_t compose(uint32_t k, bool semi)
{
    bool kata = k >= 0x30A1 && k <= 0x30F6;
    uint32_t h = kata ? k - 0x60 : k; /* the hiragana of the same kana */
    bool h_row = h == 0x306F || h == 0x3072 || h == 0x3075 || h == 0x3078 ||
                 h == 0x307B; /* は ひ ふ へ ほ */
    uint32_t r = 0;

    if (semi) {
        if (h_row)
            r = h + 2;
    } else if (h_row || (h >= 0x304B && h <= 0x3061 && (h - 0x304B) % 2 == 0) ||
               h == 0x3064 || h == 0x3066 || h == 0x3068) {
        r = h + 1; /* か..ち, つ て と, は..ほ: the voiced form is the next */
    } else if (h == 0x3046) {
        r = 0x3094; /* う -> ゔ */
    }
    if (r != 0)
        return kata ? r + 0x60 : r;
    if (semi)
        return 0;
    if (k >= 0x30EF && k <= 0x30F2)
        return k + 8; /* ワ ヰ ヱ ヲ -> ヷ ヸ ヹ ヺ */
    if (k == CP_ITER || k == 0x309D)
        return k + 1; /* ヽ -> ヾ, ゝ -> ゞ */
    return 0;
}

/* The unvoiced katakana of katakana k (ガ -> カ, パ -> ハ, ヴ -> ウ), or k. */
static uint32_t unvoiced(uint32_t k)
{
    if (k == 0x30F4)
        return 0x30A6;
    if (k >= 0x30F7 && k <= 0x30FA)
        return k - 8;
    if (k > 0x30A1 && k <= 0x30F6 && compose(k - 1, false) == k)
        return k - 1;
    if (k > 0x30A2 && k <= 0x30F6 && compose(k - 2, true) == k)
        return k - 2;
    return k;
}

/* ------------------------------------------------------------ kana names */

int kz_node_match_kana(const char *in, size_t len, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)in;
    struct writer w;
    size_t i = 0;

    if (out == NULL || cap == 0 || (in == NULL && len > 0))
        return -1;
    writer_init(&w, out, cap);
    while (i < len) {
        uint32_t c;
        if (kz_utf8_decode(p, len, &i, &c) != 0)
            return -1;
        if (is_space(c) || is_middle_dot(c))
            continue;
        c = fold_width(c);
        if (is_dash(c))
            c = CP_PROLONGED;
        else if ((c >= 0x3041 && c <= 0x3096) || c == 0x309D || c == 0x309E)
            c += 0x60; /* hiragana -> katakana, ゝ ゞ -> ヽ ヾ */
        if (c == 0x30F5)
            c = CP_KATA_KA;
        else if (c == 0x30F6)
            c = CP_KATA_KE;

        int mark = mark_kind(c);
        if (mark != 0) {
            uint32_t v = w.has_last ? compose(w.last, mark == 2) : 0;
            if (v != 0)
                writer_replace_last(&w, v);
            else
                writer_put(&w, mark == 2 ? CP_HANDAKUTEN : CP_DAKUTEN);
        } else if ((c == CP_ITER || c == CP_ITER_VOICED) && w.has_last &&
                   is_kata_letter(w.last)) {
            uint32_t base = unvoiced(w.last);
            uint32_t v = c == CP_ITER ? base : compose(base, false);
            writer_put(&w, v != 0 ? v : c);
        } else {
            writer_put(&w, c);
        }
        if (w.overflow)
            return -1;
    }
    return writer_finish(&w);
}

/* --------------------------------------------------- address: the array */

struct units {
    uint32_t *u;
    size_t n;
    size_t cap;
};

/* The capacity is sized from the input (addr_units_needed), so this cannot
 * fail; the check keeps a wrong estimate from becoming an overflow. */
static int push(struct units *a, uint32_t c)
{
    if (a->n >= a->cap)
        return -1;
    a->u[a->n++] = c;
    return 0;
}

/* White space runs are kept as one SP. */
static int push_sp(struct units *a)
{
    if (a->n > 0 && a->u[a->n - 1] == SP)
        return 0;
    return push(a, SP);
}

/* Index of the last unit that is not SP, or SIZE_MAX. SP runs are single,
 * so this looks back at most two units. */
static size_t last_non_sp(const struct units *a)
{
    if (a->n == 0)
        return SIZE_MAX;
    if (a->u[a->n - 1] != SP)
        return a->n - 1;
    return a->n >= 2 ? a->n - 2 : SIZE_MAX;
}

/* Units an input of len bytes can decode to: one per code point, except
 * that a kanji numeral (3 bytes) reads as up to 4 digits (千 -> 1000).
 * Must agree with STACK_UNITS. */
static size_t addr_units_needed(size_t len)
{
    return len + len / 3 + 4;
}

/* ----------------------------------------- address: kanji numerals */

/* 0..9 for 〇 零 一..九, 10 100 1000 for 十 百 千, else -1. */
static int numeral_value(uint32_t c)
{
    switch (c) {
    case 0x3007: case 0x96F6: return 0; /* 〇 零 */
    case 0x4E00: return 1;              /* 一 */
    case 0x4E8C: return 2;              /* 二 */
    case 0x4E09: return 3;              /* 三 */
    case 0x56DB: return 4;              /* 四 */
    case 0x4E94: return 5;              /* 五 */
    case 0x516D: return 6;              /* 六 */
    case 0x4E03: return 7;              /* 七 */
    case 0x516B: return 8;              /* 八 */
    case 0x4E5D: return 9;              /* 九 */
    case 0x5341: return 10;             /* 十 */
    case 0x767E: return 100;            /* 百 */
    case 0x5343: return 1000;           /* 千 */
    default: return -1;
    }
}

/* The numeral value of the code point at p[i] (-1 if none, at the end, or
 * invalid: the main loop reports invalid input), its end in *next. */
static int numeral_at(const unsigned char *p, size_t len, size_t i,
                      size_t *next)
{
    uint32_t c;

    *next = i;
    if (i >= len || kz_utf8_decode(p, len, next, &c) != 0)
        return -1;
    return numeral_value(c);
}

static int push_decimal(struct units *a, unsigned value)
{
    char d[8];
    size_t n = 0;

    do {
        d[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0)
        if (push(a, (uint32_t)d[--n]) != 0)
            return -1;
    return 0;
}

/*
 * Reads one number from the run of kanji numerals at p[*i] (which starts
 * with one), pushes its digits and advances *i past what it read. Every call
 * reads at least one numeral and pushes at most 4 digits (at most one per
 * numeral when read place by place), which is what addr_units_needed counts.
 *
 * A run of 〇..九 alone (or one starting with 〇/零, or a single digit not
 * followed by 十百千) reads place by place: 二〇二三 -> 2023. Otherwise the
 * run reads as [d]千 [d]百 [d]十 [d], each unit at most once and in falling
 * order, with 〇/零 after a unit and before a digit skipped (百〇五 -> 105);
 * the number ends where that shape breaks, and the rest is the next number.
 */
static int numeral_number(const unsigned char *p, size_t len, size_t *i,
                          struct units *a)
{
    size_t next, k;
    int v0 = numeral_at(p, len, *i, &next), v;

    if (v0 < 10) {
        size_t m = 0;
        for (k = *i; (v = numeral_at(p, len, k, &next)) >= 0 && v < 10;
             k = next)
            m++;
        if (v0 == 0 || m >= 2 || v < 0) {
            for (k = *i; (v = numeral_at(p, len, k, &next)) >= 0 && v < 10;
                 k = next)
                if (push(a, (uint32_t)('0' + v)) != 0)
                    return -1;
            *i = k;
            return 0;
        }
    }

    unsigned value = 0, last_unit = 10000;
    int pending = -1;
    for (k = *i;;) {
        v = numeral_at(p, len, k, &next);
        if (v >= 1 && v <= 9) {
            if (pending >= 0)
                break;
            pending = v;
            k = next;
        } else if (v == 0) {
            if (pending >= 0 || value == 0)
                break;
            size_t z = next, zn;
            int w;
            while ((w = numeral_at(p, len, z, &zn)) == 0)
                z = zn;
            if (w < 1 || w > 9)
                break;
            k = z; /* zero filler: 百〇五 */
        } else if (v >= 10) {
            if ((unsigned)v >= last_unit)
                break;
            value += (unsigned)(pending < 0 ? 1 : pending) * (unsigned)v;
            pending = -1;
            last_unit = (unsigned)v;
            k = next;
        } else {
            break;
        }
    }
    if (pending >= 0)
        value += (unsigned)pending;
    *i = k;
    return push_decimal(a, value);
}

/* ------------------------------------------- address: the steps */

/* Step 1-3: decodes and folds characters, reads kanji numerals, drops 大字;
 * white space becomes SP. */
static int addr_decode(const unsigned char *p, size_t len, struct units *a)
{
    size_t i = 0;

    while (i < len) {
        size_t at = i;
        uint32_t c;
        if (kz_utf8_decode(p, len, &i, &c) != 0)
            return -1;
        if (numeral_value(c) >= 0) {
            i = at;
            if (numeral_number(p, len, &i, a) != 0)
                return -1;
            continue;
        }
        if (is_space(c) || is_middle_dot(c)) {
            if (push_sp(a) != 0)
                return -1;
            continue;
        }
        c = fold_width(c);
        if (is_dash(c))
            c = '-';
        else if (c == 0x3036) /* 〶 */
            c = CP_POSTAL;

        size_t k = last_non_sp(a);
        int mark = mark_kind(c);
        if (mark != 0) {
            uint32_t v = k != SIZE_MAX ? compose(a->u[k], mark == 2) : 0;
            if (v != 0)
                a->u[k] = v;
            else if (push(a, mark == 2 ? CP_HANDAKUTEN : CP_DAKUTEN) != 0)
                return -1;
            continue;
        }
        if (c == CP_AZA && k != SIZE_MAX && a->u[k] == CP_DAI) {
            /* 大字 -> white space (so that 1大字2 stays two numbers). */
            a->n = k;
            if (push_sp(a) != 0)
                return -1;
            continue;
        }
        if (push(a, c) != 0)
            return -1;
    }
    return 0;
}

/* Length of the run of digits at a->u[k]. */
static size_t digits_at(const struct units *a, size_t k)
{
    size_t m = 0;

    while (k + m < a->n && is_digit(a->u[k + m]))
        m++;
    return m;
}

/* Whether a->u[k] is a dash. The callers ask right after digits, where a
 * ー is one too (step 6 reads it so). */
static bool dash_at(const struct units *a, size_t k)
{
    return k < a->n && (a->u[k] == '-' || a->u[k] == CP_PROLONGED);
}

/* Whether nothing at a->u[k] continues a number. */
static bool number_ends(const struct units *a, size_t k)
{
    return k >= a->n || (!is_digit(a->u[k]) && !dash_at(a, k));
}

/* The postcode at a->u[q] (ddd-dddd; after 〒 also ddddddd), as its length,
 * or 0. */
static size_t postcode_at(const struct units *a, size_t q, bool after_mark)
{
    if (digits_at(a, q) == 3 && dash_at(a, q + 3) &&
        digits_at(a, q + 4) == 4 && number_ends(a, q + 8))
        return 8;
    if (after_mark && digits_at(a, q) == 7 && number_ends(a, q + 7))
        return 7;
    return 0;
}

/*
 * Step 7: where the address starts once leading 〒 marks and postcodes are
 * skipped, repeatedly, with the white space around them. Done twice: here,
 * while white space still separates a postcode from what follows ("〒100-0013
 * 1-2" would otherwise read as one number), and again after step 6, which
 * can make a new one ("100丁目0013" -> "100-0013"), so that a canonical form
 * never starts with one.
 */
static size_t addr_postcode(const struct units *a)
{
    size_t p = 0;

    for (;;) {
        while (p < a->n && a->u[p] == SP)
            p++;
        bool mark = p < a->n && a->u[p] == CP_POSTAL;
        size_t q = mark ? p + 1 : p;
        while (mark && q < a->n && a->u[q] == SP)
            q++;
        q += postcode_at(a, q, mark);
        if (q == p)
            return p;
        p = q;
    }
}

/* Step 4, from a->u[start]: SP between two digits -> '-', any other SP
 * removed. */
static void addr_spaces(struct units *a, size_t start)
{
    size_t w = 0;

    for (size_t r = start; r < a->n; r++) {
        uint32_t c = a->u[r];
        if (c != SP)
            a->u[w++] = c;
        else if (w > 0 && is_digit(a->u[w - 1]) && r + 1 < a->n &&
                 is_digit(a->u[r + 1]))
            a->u[w++] = '-';
    }
    a->n = w;
}

/* Step 5: ヶ-like and の-like particles between kanji or digits. Their
 * targets are neither, so folding one never changes another's context. */
static void addr_particles(struct units *a)
{
    for (size_t i = 1; i + 1 < a->n; i++) {
        uint32_t c = a->u[i], before = a->u[i - 1], after = a->u[i + 1];
        bool ke = c == 0x30F6 || c == 0x30F5 || c == CP_KATA_KE ||
                  c == 0x3096 || c == 0x3095 || c == 0x304C /* が */ ||
                  c == 0x30AC /* ガ */;
        bool no = c == 0x306E /* の */ || c == CP_KATA_NO;
        if ((ke || no) && (is_kanji(before) || is_digit(before)) &&
            (is_kanji(after) || is_digit(after)))
            a->u[i] = ke ? CP_KATA_KE : CP_KATA_NO;
    }
}

enum sep { SEP_NONE, SEP_DASH, SEP_NO, SEP_CHOME, SEP_BANCHI, SEP_BAN, SEP_GO };

/* The separator word at a->u[k], its length in *n (SEP_NONE: not one). */
static enum sep sep_at(const struct units *a, size_t k, size_t *n)
{
    uint32_t c = k < a->n ? a->u[k] : 0;
    uint32_t d = k + 1 < a->n ? a->u[k + 1] : 0;

    *n = 1;
    if (c == '-' || c == CP_PROLONGED)
        return SEP_DASH;
    if (c == 0x306E || c == CP_KATA_NO)
        return SEP_NO;
    if (c == 0x53F7) /* 号 */
        return SEP_GO;
    if (c == 0x4E01 && d == 0x76EE) { /* 丁目 */
        *n = 2;
        return SEP_CHOME;
    }
    if (c == 0x756A) { /* 番 */
        if (d == 0x5730) { /* 番地 */
            *n = 2;
            return SEP_BANCHI;
        }
        return SEP_BAN;
    }
    return SEP_NONE;
}

/* Whether a 番 or 号 that ends a number is part of the word that follows
 * (一番町, 101号室) rather than a unit to drop. 番地 never is: 番 + 地
 * would read back as 番地. */
static bool sep_in_word(enum sep s, uint32_t next)
{
    switch (s) {
    case SEP_BAN:
        return next == 0x753A /* 町 */ || next == 0x4E01 /* 丁 */ ||
               next == 0x9928 /* 館 */ || next == 0x8857 /* 街 */;
    case SEP_GO:
        return next == 0x5BA4 /* 室 */ || next == 0x68DF /* 棟 */ ||
               next == 0x9928 /* 館 */ || next == 0x7DDA /* 線 */ ||
               next == 0x5730 /* 地 */ || next == 0x57CB /* 埋 */;
    default:
        return false;
    }
}

/*
 * Step 6, in place (the output never outgrows what it has read): after a
 * run of digits, a sequence of separator words followed by a digit becomes
 * one '-'; not followed by a digit, its dashes become '-', の ノ stay, and
 * 丁目 番地 番 号 are dropped unless the last is part of the next word.
 */
static void addr_numbers(struct units *a)
{
    size_t w = 0, r = 0, n;

    while (r < a->n) {
        if (!is_digit(a->u[r])) {
            a->u[w++] = a->u[r++];
            continue;
        }
        while (r < a->n && is_digit(a->u[r]))
            a->u[w++] = a->u[r++];
        size_t k = r;
        while (sep_at(a, k, &n) != SEP_NONE)
            k += n;
        if (k == r)
            continue;
        if (k < a->n && is_digit(a->u[k])) {
            a->u[w++] = '-';
            r = k;
            continue;
        }
        while (r < k) {
            enum sep s = sep_at(a, r, &n);
            if (s == SEP_DASH) {
                a->u[w++] = '-';
            } else if (s == SEP_NO) {
                a->u[w++] = a->u[r];
            } else if (r + n == k && k < a->n && sep_in_word(s, a->u[k])) {
                for (size_t j = 0; j < n; j++)
                    a->u[w++] = a->u[r + j];
            }
            r += n;
        }
    }
    a->n = w;
}

int kz_node_match_address(const char *in, size_t len, char *out, size_t cap)
{
    uint32_t stack[STACK_UNITS];
    struct units a = {stack, 0, STACK_UNITS};
    struct writer w;
    int rv = -1;

    if (out == NULL || cap == 0 || (in == NULL && len > 0) ||
        len > SIZE_MAX / 2 / sizeof(uint32_t))
        return -1;
    if (addr_units_needed(len) > STACK_UNITS) {
        a.cap = addr_units_needed(len);
        a.u = malloc(a.cap * sizeof *a.u);
        if (a.u == NULL)
            return -1;
    }
    if (addr_decode((const unsigned char *)in, len, &a) != 0)
        goto out_units;
    addr_spaces(&a, addr_postcode(&a));
    addr_particles(&a);
    addr_numbers(&a);
    writer_init(&w, out, cap);
    for (size_t i = addr_postcode(&a); i < a.n && !w.overflow; i++)
        writer_put(&w, a.u[i]);
    rv = writer_finish(&w);
out_units:
    if (a.u != stack)
        free(a.u);
    return rv;
}
