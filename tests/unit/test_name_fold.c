/*
 * test_name_fold.c — name folding, index keys and query terms (node/name_fold).
 *
 * Checks the search contract end to end without the index: match() below
 * applies the caller's rule (whole query prefixes a key, or every token
 * prefixes some key) to the keys of a record, so each case reads as "this
 * record is found by this query" or "is not". Also: every romanisation
 * variant the fold promises, the variants it must keep apart, invalid UTF-8,
 * buffers too small, and an exhaustive idempotence sweep over kana pairs and
 * triples (the canonical romaji, typed back in, must find the same record).
 */
#include "name_fold.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NKEYS 32
#define NTERMS 20

static int fold(const char *s, char *out, size_t cap)
{
    return kz_node_name_fold(s, strlen(s), out, cap);
}

/* Folds s into a static buffer, for cr_assert_str_eq; "<error>" on -1. */
static const char *F(const char *s)
{
    static char buf[4][KZ_NODE_NAME_KEY_MAX];
    static int next;
    char *b = buf[next++ % 4];

    if (fold(s, b, KZ_NODE_NAME_KEY_MAX) < 0)
        snprintf(b, KZ_NODE_NAME_KEY_MAX, "<error>");
    return b;
}

static bool has_key_with_prefix(char (*keys)[KZ_NODE_NAME_KEY_MAX], size_t nk,
                                const char *prefix)
{
    for (size_t i = 0; i < nk; i++)
        if (strncmp(keys[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

/* The search code's rule, on the record's keys and the query's terms. */
static bool match(const char *name, const char *kana, const char *q)
{
    char keys[NKEYS][KZ_NODE_NAME_KEY_MAX];
    char terms[NTERMS][KZ_NODE_NAME_KEY_MAX];
    size_t whole = 99;
    size_t nk = kz_node_name_keys(name, kana, keys, NKEYS);
    size_t nt = kz_node_name_query(q, terms, NTERMS, &whole);

    if (nt == 0)
        return false;
    cr_assert_lt(whole, nt);
    if (has_key_with_prefix(keys, nk, terms[whole]))
        return true;
    if (nt < 2)
        return false;
    for (size_t t = 0; t < nt; t++)
        if (t != whole && !has_key_with_prefix(keys, nk, terms[t]))
            return false;
    return true;
}

static const char *nz(const char *s)
{
    return s ? s : "(null)";
}

#define assert_match(name, kana, q)                                           \
    cr_assert(match((name), (kana), (q)), "%s / %s should match \"%s\"",      \
              nz(name), nz(kana), (q))
#define assert_no_match(name, kana, q)                                        \
    cr_assert(!match((name), (kana), (q)), "%s / %s should not match \"%s\"", \
              nz(name), nz(kana), (q))

/* Every string in a NULL-terminated group folds to the same result. */
static void assert_same_fold(const char *const *group)
{
    const char *want = F(group[0]);
    char w[KZ_NODE_NAME_KEY_MAX];

    cr_assert_str_neq(want, "<error>", "%s failed to fold", group[0]);
    snprintf(w, sizeof w, "%s", want);
    for (size_t i = 1; group[i]; i++)
        cr_assert_str_eq(F(group[i]), w, "\"%s\" folds to \"%s\", \"%s\" to \"%s\"",
                         group[i], F(group[i]), group[0], w);
}

/* ------------------------------------------------------ folding, basics */

Test(name_fold, ascii_is_lowercased)
{
    cr_assert_str_eq(F("YAMADA"), "yamada");
    cr_assert_str_eq(F("Yamada"), "yamada");
}

Test(name_fold, full_width_ascii_becomes_ascii)
{
    cr_assert_str_eq(F("ＹＡＭＡＤＡ"), "yamada");
    cr_assert_str_eq(F("ｙａｍａｄａ"), "yamada");
    cr_assert_str_eq(F("Ａ１２３"), "a123");
}

Test(name_fold, katakana_and_hiragana_become_romaji)
{
    cr_assert_str_eq(F("やまだ"), "yamada");
    cr_assert_str_eq(F("ヤマダ"), "yamada");
    cr_assert_str_eq(F("たろう"), "taro");
    cr_assert_str_eq(F("さとう"), "sato");
}

Test(name_fold, half_width_katakana_with_marks)
{
    cr_assert_str_eq(F("ﾔﾏﾀﾞ"), "yamada");
    cr_assert_str_eq(F("ﾊﾟﾊﾟ"), "papa");
    cr_assert_str_eq(F("ｼﾞｭﾝ"), "jun");
    cr_assert_str_eq(F("ｻﾄｳ"), "sato");
    cr_assert_str_eq(F("ｳﾞｧ"), "ba");
    cr_assert_str_eq(F("ﾞｱ"), "a", "a mark with nothing before it is dropped");
}

Test(name_fold, combining_and_spacing_dakuten)
{
    /* NFD input: か + U+3099, は + U+309A, and the spacing forms ゛ ゜. */
    cr_assert_str_eq(F("\xe3\x81\x8b\xe3\x82\x99"), "ga");
    cr_assert_str_eq(F("\xe3\x81\xaf\xe3\x82\x9a"), "pa");
    cr_assert_str_eq(F("か゛"), "ga");
    cr_assert_str_eq(F("ヷ"), "ba");
}

Test(name_fold, separators_are_removed)
{
    cr_assert_str_eq(F("山田 太郎"), "山田太郎");
    cr_assert_str_eq(F("山田　太郎"), "山田太郎");
    cr_assert_str_eq(F("ヤマダ・タロウ"), "yamadataro");
    cr_assert_str_eq(F("ﾔﾏﾀﾞ･ﾀﾛｳ"), "yamadataro");
    cr_assert_str_eq(F("Yamada-Taro"), "yamadataro");
    cr_assert_str_eq(F("Yamada, T."), "yamadat");
    cr_assert_str_eq(F(" 　・-.,"), "");
}

Test(name_fold, macrons_and_circumflexes)
{
    cr_assert_str_eq(F("Tarō"), "taro");
    cr_assert_str_eq(F("TARŌ"), "taro");
    cr_assert_str_eq(F("Yūko"), "yuko");
    cr_assert_str_eq(F("Tarô"), "taro");
    cr_assert_str_eq(F("Ōno"), "ono");
}

Test(name_fold, chouon_is_dropped)
{
    cr_assert_str_eq(F("サトー"), "sato");
    cr_assert_str_eq(F("ｻﾄｰ"), "sato");
    cr_assert_str_eq(F("ウォーカー"), "uoka");
    cr_assert_str_eq(F("Woka"), "woka");
}

Test(name_fold, kanji_kept_unchanged)
{
    cr_assert_str_eq(F("山田"), "山田");
    cr_assert_str_eq(F("𠮷田"), "𠮷田");
}

Test(name_fold, kanji_variants_fold_to_common_form)
{
    static const char *const groups[][6] = {
        {"山崎", "山﨑", "山嵜", NULL},
        {"高橋", "髙橋", NULL},
        {"渡辺", "渡邊", "渡邉", NULL},
        {"斎藤", "齋藤", "齊藤", "斉藤", NULL},
        {"沢田", "澤田", NULL},
        {"浜田", "濱田", "濵田", NULL},
        {"広田", "廣田", NULL},
        {"国分", "國分", NULL},
        {"桜井", "櫻井", NULL},
        {"真田", "眞田", NULL},
        {"恵子", "惠子", NULL},
        {"島田", "嶋田", NULL},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        assert_same_fold(groups[g]);
    cr_assert_str_eq(F("髙橋"), "高橋");
}

Test(name_fold, ke_variants)
{
    static const char *const g[] = {"三ヶ尻", "三ケ尻", "三ヵ尻", "三ｹ尻",
                                    NULL};
    assert_same_fold(g);
    cr_assert_str_eq(F("ケイコ"), "keiko");
}

Test(name_fold, iteration_marks)
{
    cr_assert_str_eq(F("佐々木"), F("佐佐木"));
    cr_assert_str_eq(F("さゝき"), "sasaki");
    cr_assert_str_eq(F("すゞき"), "suzuki");
    cr_assert_str_eq(F("々"), "々", "nothing to repeat: kept");
}

Test(name_fold, tokens_with_digits_are_kept_literally)
{
    cr_assert_str_eq(F("ID-A123"), "ida123");
    cr_assert_str_eq(F("si2"), "si2");
}

Test(name_fold, non_romaji_letters_kept)
{
    cr_assert_str_eq(F("Smith"), "smith");
    cr_assert_str_eq(F("O'Brien"), "obrien");
    cr_assert_str_eq(F("xyz"), "xyz");
}

/* ------------------------------------------------------- romanisations */

Test(name_fold, long_vowels)
{
    static const char *const g[][8] = {
        {"さとう", "sato", "satou", "satoh", "satoo", "satō", "サトウ", NULL},
        {"おおの", "ono", "oono", "ohno", "ōno", "ôno", "オオノ", NULL},
        {"いとう", "ito", "itou", "itoh", "itō", NULL},
        {"しょう", "sho", "shou", "syou", "shoh", "shō", "sho-", NULL},
        {"ゆうこ", "yuko", "yuuko", "yūko", NULL},
        {"おおはら", "ohara", "oohara", "ōhara", "ouhara", NULL},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        assert_same_fold(g[i]);
}

Test(name_fold, hepburn_kunrei_nihonshiki)
{
    static const char *const g[][6] = {
        {"しんばし", "shinbashi", "simbashi", "sinbasi", "shimbashi", NULL},
        {"ほんま", "homma", "honma", NULL},
        {"ちよ", "chiyo", "tiyo", NULL},
        {"ふじ", "fuji", "huzi", "fuzi", "hudi", NULL},
        {"つじ", "tsuji", "tuji", "tudi", "つぢ", NULL},
        {"じゅん", "jun", "zyun", "jyun", "ぢゅん", NULL},
        {"しゃ", "sha", "sya", "shya", NULL},
        {"ちゃ", "cha", "tya", "cya", "chya", NULL},
        {"みずの", "mizuno", "miduno", "みづの", NULL},
        {"けんいち", "kenichi", "ken'ichi", "kenniti", "ken’ichi", NULL},
        {"まっちゃ", "matcha", "maccha", "mattya", NULL},
        {"はっとり", "hattori", NULL},
        {"いっしき", "isshiki", "issiki", NULL},
        {"ふぁ", "fa", NULL},
        {"ゔぁ", "va", "ヴァ", "ば", "ba", NULL},
        {"うぃ", "うい", "ui", NULL},
        {"ゐ", "い", "i", NULL},
        {"を", "お", "o", NULL},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        assert_same_fold(g[i]);
}

Test(name_fold, kana_spellings_fold_to_hepburn)
{
    cr_assert_str_eq(F("しんばし"), "shinbashi");
    cr_assert_str_eq(F("ちよ"), "chiyo");
    cr_assert_str_eq(F("つじ"), "tsuji");
    cr_assert_str_eq(F("まっちゃ"), "maccha");
    cr_assert_str_eq(F("きょうこ"), "kyoko");
    cr_assert_str_eq(F("りゅう"), "ryu");
    cr_assert_str_eq(F("こんの"), "kono");
}

Test(name_fold, nn_before_vowel_agrees_with_hepburn)
{
    /* "konno" is Hepburn for こんの and IME input for こんお: both fold alike,
     * as do けんいち/けにち (Hepburn without the apostrophe is ambiguous). */
    cr_assert_str_eq(F("konno"), F("こんの"));
    cr_assert_str_eq(F("kanno"), F("かんの"));
    cr_assert_str_eq(F("anna"), F("アンナ"));
}

Test(name_fold, different_names_stay_different)
{
    cr_assert_str_neq(F("sattou"), F("さとう"));
    cr_assert_str_neq(F("さっとう"), F("さとう"));
    cr_assert_str_neq(F("はせがわ"), F("はせかわ"));
    cr_assert_str_neq(F("hasegawa"), F("hasekawa"));
    cr_assert_str_neq(F("いいだ"), F("いだ"));
    cr_assert_str_neq(F("きょう"), F("きよう"));
    cr_assert_str_neq(F("山田"), F("山本"));
}

/* --------------------------------------------------- errors and limits */

Test(name_fold, invalid_utf8_is_refused)
{
    static const char *const bad[] = {
        "\x80",             /* lone continuation byte */
        "\xc0\x80",         /* overlong NUL */
        "\xe0\x80\xaf",     /* overlong '/' */
        "\xed\xa0\x80",     /* surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\xf5\x80\x80\x80", /* never-used lead byte */
        "\xff",
        "\xe3\x81",         /* truncated やま.. */
        "yama\xe3",         /* truncated at the end */
    };
    char out[KZ_NODE_NAME_KEY_MAX];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(fold(bad[i], out, sizeof out), -1, "case %zu", i);
    /* A NUL byte inside the given length. */
    cr_assert_eq(kz_node_name_fold("ab\0cd", 5, out, sizeof out), -1);
    /* A length that cuts a character in two. */
    cr_assert_eq(kz_node_name_fold("や", 2, out, sizeof out), -1);
}

Test(name_fold, output_too_long_is_refused)
{
    char out[KZ_NODE_NAME_KEY_MAX], big[400];

    cr_assert_eq(fold("yamada", out, 7), 6, "exact fit, with the NUL");
    cr_assert_str_eq(out, "yamada");
    cr_assert_eq(fold("yamada", out, 6), -1, "no room for the NUL");
    cr_assert_eq(fold("山田", out, 6), -1);
    cr_assert_eq(fold("山田", out, 7), 6);
    cr_assert_eq(fold("", out, 0), -1, "cap 0 cannot hold the NUL");
    cr_assert_eq(kz_node_name_fold("a", 1, NULL, 10), -1);

    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(fold(big, out, sizeof out), -1, "399 letters into 128");
}

Test(name_fold, long_input_that_folds_short)
{
    /* Over the on-stack scratch size: exercises the heap path. */
    char in[1200], out[KZ_NODE_NAME_KEY_MAX];
    size_t n = 0;

    for (int i = 0; i < 300; i++)
        memcpy(in + n, "　", 3), n += 3;
    memcpy(in + n, "ヤマダ", 9), n += 9;
    in[n] = '\0';
    cr_assert_eq(fold(in, out, sizeof out), 6);
    cr_assert_str_eq(out, "yamada");
}

Test(name_fold, empty_and_null_input)
{
    char out[4] = "xyz";

    cr_assert_eq(kz_node_name_fold(NULL, 0, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(kz_node_name_fold("", 0, out, sizeof out), 0);
    cr_assert_eq(kz_node_name_fold(NULL, 3, out, sizeof out), -1);
    cr_assert_eq(kz_node_name_fold("abc", 0, out, sizeof out), 0,
                 "len, not the NUL, bounds the input");
}

/* ------------------------------------------------- idempotence, exhaustive */

/* Every string of up to `maxlen` pieces from `alpha`: folding the folded form
 * again must not change it — the canonical form is itself a spelling that
 * finds the same records. */
static void sweep_idempotent(const char *const *alpha, size_t na,
                             size_t maxlen)
{
    char in[64], once[KZ_NODE_NAME_KEY_MAX], twice[KZ_NODE_NAME_KEY_MAX];
    size_t idx[8];

    for (size_t len = 1; len <= maxlen; len++) {
        memset(idx, 0, sizeof idx);
        for (;;) {
            size_t k = 0;

            in[0] = '\0';
            for (size_t i = 0; i < len; i++)
                strcat(in, alpha[idx[i]]);
            if (fold(in, once, sizeof once) >= 0) {
                cr_assert_geq(fold(once, twice, sizeof twice), 0);
                if (strcmp(once, twice) != 0)
                    cr_assert_fail("%s -> %s -> %s", in, once, twice);
            }
            while (k < len && ++idx[k] == na)
                idx[k++] = 0;
            if (k == len)
                break;
        }
    }
}

static void kana_utf8(unsigned c, char *b)
{
    b[0] = (char)(0xE0 | (c >> 12));
    b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    b[2] = (char)(0x80 | (c & 0x3F));
    b[3] = '\0';
}

/* All hiragana U+3041..U+3096 and ー, as UTF-8 strings. */
static char all_kana[87][4];
static const char *all_kana_p[87];

static size_t make_all_kana(void)
{
    size_t n = 0;

    for (unsigned c = 0x3041; c <= 0x3096; c++)
        kana_utf8(c, all_kana[n++]);
    kana_utf8(0x30FC, all_kana[n++]);
    for (size_t i = 0; i < n; i++)
        all_kana_p[i] = all_kana[i];
    return n;
}

Test(name_fold, fold_is_idempotent_on_kana)
{
    /* Every pair of kana, and every triple of the kana the rules treat
     * specially (small kana, っ, ん, long vowels, and their partners). */
    static const char *const special[] = {
        "ぁ", "ぃ", "ぅ", "ぇ", "ぉ", "ゃ", "ゅ", "ょ", "ゎ", "っ", "ん", "ー",
        "あ", "い", "う", "お", "き", "し", "ち", "ぢ", "じ", "つ", "て", "で",
        "と", "ど", "す", "ず", "ふ", "ゔ", "な", "に", "ま", "ば", "や", "わ",
        "を", "ゐ", "ゖ",
    };
    sweep_idempotent(all_kana_p, make_all_kana(), 2);
    sweep_idempotent(special, sizeof special / sizeof special[0], 3);
}

Test(name_fold, katakana_folds_like_hiragana)
{
    size_t n = make_all_kana();
    char h[8], k[8], hk[KZ_NODE_NAME_KEY_MAX], kk[KZ_NODE_NAME_KEY_MAX];

    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++) {
            unsigned ca = a < n - 1 ? 0x3041 + (unsigned)a : 0x30FC;
            unsigned cb = b < n - 1 ? 0x3041 + (unsigned)b : 0x30FC;

            kana_utf8(ca, h);
            kana_utf8(cb, h + 3);
            kana_utf8(ca == 0x30FC ? ca : ca + 0x60, k);
            kana_utf8(cb == 0x30FC ? cb : cb + 0x60, k + 3);
            cr_assert_geq(fold(h, hk, sizeof hk), 0);
            cr_assert_geq(fold(k, kk, sizeof kk), 0);
            if (strcmp(hk, kk) != 0)
                cr_assert_fail("%s -> %s but %s -> %s", h, hk, k, kk);
        }
}

Test(name_fold, fold_is_idempotent_on_romaji)
{
    static const char *const letters[] = {
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
        "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "'",
    };
    /* The letters the reader treats specially, one piece longer. */
    static const char *const special[] = {
        "a", "i", "u", "e", "o", "n", "m", "h", "s", "t", "c", "y", "w",
        "f", "d", "z", "j", "b", "'",
    };
    sweep_idempotent(letters, sizeof letters / sizeof letters[0], 3);
    sweep_idempotent(special, sizeof special / sizeof special[0], 4);
}

Test(name_fold, fold_is_idempotent_on_mixed_input)
{
    static const char *const pieces[] = {
        "ゝ", "ｶ", "ﾞ", "ヴ", "ぢ", "ゅ", "て", "ぃ", "ふ", "ぁ", "っ", "ん",
        "う", "お", "ヶ", "山", "々", "ー", "ō", "-", " ", "2", "'", "n", "h",
        "t", "s", "y", "o", "u", "m", "b",
    };
    sweep_idempotent(pieces, sizeof pieces / sizeof pieces[0], 3);
}

/* --------------------------------------------------------- index keys */

Test(name_keys, family_given_and_both_orders)
{
    char k[NKEYS][KZ_NODE_NAME_KEY_MAX];
    size_t n = kz_node_name_keys("山田 太郎", "やまだ たろう", k, NKEYS);

    cr_assert_eq(n, 8);
    cr_assert_str_eq(k[0], "山田");
    cr_assert_str_eq(k[1], "太郎");
    cr_assert_str_eq(k[2], "山田太郎");
    cr_assert_str_eq(k[3], "太郎山田");
    cr_assert_str_eq(k[4], "yamada");
    cr_assert_str_eq(k[5], "taro");
    cr_assert_str_eq(k[6], "yamadataro");
    cr_assert_str_eq(k[7], "taroyamada");
}

Test(name_keys, duplicates_removed)
{
    char k[NKEYS][KZ_NODE_NAME_KEY_MAX];

    /* One token: the token, its concatenation and reverse are one key. */
    cr_assert_eq(kz_node_name_keys("佐藤", "さとう", k, NKEYS), 2);
    cr_assert_str_eq(k[0], "佐藤");
    cr_assert_str_eq(k[1], "sato");
    /* A romaji name and its kana give the same keys. */
    cr_assert_eq(kz_node_name_keys("Yamada Taro", "ヤマダ　タロウ", k, NKEYS),
                 4);
    /* Kanji variants are the same key too: 高橋 once, 高橋高橋 once. */
    cr_assert_eq(kz_node_name_keys("髙橋 高橋", NULL, k, NKEYS), 2);
}

Test(name_keys, null_empty_and_invalid)
{
    char k[NKEYS][KZ_NODE_NAME_KEY_MAX];

    cr_assert_eq(kz_node_name_keys(NULL, NULL, k, NKEYS), 0);
    cr_assert_eq(kz_node_name_keys("", "", k, NKEYS), 0);
    cr_assert_eq(kz_node_name_keys("   ", "・", k, NKEYS), 0);
    cr_assert_eq(kz_node_name_keys(NULL, "やまだ", k, NKEYS), 1);
    cr_assert_str_eq(k[0], "yamada");
    cr_assert_eq(kz_node_name_keys("山田 \xff", "やまだ", k, NKEYS), 1,
                 "nothing from an invalid name, kana still indexed");
    cr_assert_eq(kz_node_name_keys("山田", "やまだ", NULL, NKEYS), 0);
    cr_assert_eq(kz_node_name_keys("山田", "やまだ", k, 0), 0);
}

Test(name_keys, at_most_max)
{
    char k[NKEYS][KZ_NODE_NAME_KEY_MAX];

    memset(k, 'X', sizeof k);
    cr_assert_eq(kz_node_name_keys("山田 太郎", "やまだ たろう", k, 3), 3);
    cr_assert_str_eq(k[2], "山田太郎");
    cr_assert_eq(k[3][0], 'X', "nothing written past max");
}

Test(name_keys, too_long_concatenation_is_left_out)
{
    char k[NKEYS][KZ_NODE_NAME_KEY_MAX], name[200];

    /* Two tokens of 80 letters each: each fits, the concatenations do not. */
    memset(name, 'k', 80);
    name[80] = ' ';
    memset(name + 81, 'x', 80);
    name[161] = '\0';
    cr_assert_eq(kz_node_name_keys(name, NULL, k, NKEYS), 2);
}

Test(name_keys, many_tokens)
{
    char k[NKEYS][KZ_NODE_NAME_KEY_MAX];
    const char *name = "a b c d e f g h i j k l m n o p q r";

    /* 15 single tokens, the 16th is "pqr", then both concatenations. */
    size_t n = kz_node_name_keys(name, NULL, k, NKEYS);
    cr_assert_eq(n, 18);
    cr_assert_str_eq(k[16], F(name));
}

/* --------------------------------------------------------- query terms */

Test(name_query, single_token)
{
    char t[NTERMS][KZ_NODE_NAME_KEY_MAX];
    size_t w = 99;

    cr_assert_eq(kz_node_name_query("山田", t, NTERMS, &w), 1);
    cr_assert_eq(w, 0);
    cr_assert_str_eq(t[0], "山田");
    cr_assert_eq(kz_node_name_query("  Yamada-Taro ", t, NTERMS, &w), 1);
    cr_assert_str_eq(t[w], "yamadataro");
}

Test(name_query, several_tokens_then_whole)
{
    char t[NTERMS][KZ_NODE_NAME_KEY_MAX];
    size_t w = 99;

    cr_assert_eq(kz_node_name_query("太郎 山田", t, NTERMS, &w), 3);
    cr_assert_eq(w, 2);
    cr_assert_str_eq(t[0], "太郎");
    cr_assert_str_eq(t[1], "山田");
    cr_assert_str_eq(t[2], "太郎山田");
    cr_assert_eq(kz_node_name_query("ヤマダ　タロウ", t, NTERMS, &w), 3);
    cr_assert_str_eq(t[w], "yamadataro");
    cr_assert_eq(kz_node_name_query("Taro Yamada", t, NTERMS, NULL), 3,
                 "whole_index may be NULL");
}

Test(name_query, empty_invalid_and_tokens_that_fold_to_nothing)
{
    char t[NTERMS][KZ_NODE_NAME_KEY_MAX];
    size_t w = 99;

    cr_assert_eq(kz_node_name_query(NULL, t, NTERMS, &w), 0);
    cr_assert_eq(kz_node_name_query("", t, NTERMS, &w), 0);
    cr_assert_eq(kz_node_name_query(" 　・ ", t, NTERMS, &w), 0);
    cr_assert_eq(kz_node_name_query("山\xe5", t, NTERMS, &w), 0);
    cr_assert_eq(kz_node_name_query("山田", NULL, NTERMS, &w), 0);
    cr_assert_eq(kz_node_name_query("山田", t, 0, &w), 0);
    /* "・" is a token that folds to nothing: a one-token query remains. */
    cr_assert_eq(kz_node_name_query("山田 ・", t, NTERMS, &w), 1);
    cr_assert_eq(w, 0);
    cr_assert_str_eq(t[0], "山田");
}

Test(name_query, no_room_for_tokens_keeps_only_the_whole)
{
    char t[NTERMS][KZ_NODE_NAME_KEY_MAX];
    size_t w = 99;

    cr_assert_eq(kz_node_name_query("a b c", t, 3, &w), 1);
    cr_assert_eq(w, 0);
    cr_assert_str_eq(t[0], "abc");
    cr_assert_eq(kz_node_name_query("a b c", t, 4, &w), 4);
    cr_assert_eq(w, 3);
}

Test(name_query, whole_too_long)
{
    char t[NTERMS][KZ_NODE_NAME_KEY_MAX], q[300];

    memset(q, 'k', sizeof q - 1);
    q[sizeof q - 1] = '\0';
    cr_assert_eq(kz_node_name_query(q, t, NTERMS, NULL), 0);
}

/* ------------------------------------------------- search, end to end */

Test(name_match, yamada_taro)
{
    static const char *const yes[] = {
        "山田", "山田太郎", "太郎 山田", "太郎山田", "やまだ", "ヤマダ タロウ",
        "ﾔﾏﾀﾞ", "yamada", "Yamada Taro", "taro yamada", "TAROU", "Tarō",
        "yamadatarou", "ＹＡＭＡＤＡ", "山田 taro", "yama", "山", "ta",
        "ヤマダ・タロウ", "ﾀﾛｳ ﾔﾏﾀﾞ", "Yamada, Taro", "yamada t",
    };
    static const char *const no[] = {
        "山本", "yamamoto", "jiro", "yamada jiro", "田中 太郎", "taroyamamoto",
        "hanako", "", "  ",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_match("山田 太郎", "やまだ たろう", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_no_match("山田 太郎", "やまだ たろう", no[i]);
}

Test(name_match, sato)
{
    static const char *const yes[] = {"sato", "satou", "satoh", "サトウ",
                                      "ｻﾄｳ", "佐藤", "satō", "sat"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_match("佐藤", "さとう", yes[i]);
    /* Small-tsu doubling is a different name. */
    assert_no_match("佐藤", "さとう", "sattou");
    assert_no_match("佐藤", "さとう", "satto");
    assert_no_match("佐藤", "さとう", "サットウ");
}

Test(name_match, long_vowel_names)
{
    static const char *const ono[] = {"ono", "oono", "ohno", "Ōno", "オーノ"};
    static const char *const ito[] = {"ito", "itou", "itoh", "イトー"};
    for (size_t i = 0; i < sizeof ono / sizeof ono[0]; i++)
        assert_match("大野", "おおの", ono[i]);
    for (size_t i = 0; i < sizeof ito / sizeof ito[0]; i++)
        assert_match("伊藤", "いとう", ito[i]);
    assert_match("しょう", "しょう", "sho");
    assert_match("翔", "しょう", "shou");
    assert_match("翔", "しょう", "syou");
    assert_match("翔", "しょう", "shoh");
}

Test(name_match, romanisation_systems)
{
    assert_match("新橋", "しんばし", "shinbashi");
    assert_match("新橋", "しんばし", "simbashi");
    assert_match("新橋", "しんばし", "sinbasi");
    assert_match("本間", "ほんま", "homma");
    assert_match("本間", "ほんま", "honma");
    assert_match("千代", "ちよ", "chiyo");
    assert_match("千代", "ちよ", "tiyo");
    assert_match("藤", "ふじ", "fuji");
    assert_match("藤", "ふじ", "huzi");
    assert_match("藤", "ふじ", "fuzi");
    assert_match("辻", "つじ", "tsuji");
    assert_match("辻", "つじ", "tuji");
    assert_match("辻", "つじ", "tudi");
    assert_match("純", "じゅん", "jun");
    assert_match("純", "じゅん", "zyun");
    assert_match("純", "じゅん", "jyun");
    assert_match("健一", "けんいち", "kenichi");
    assert_match("健一", "けんいち", "ken'ichi");
    assert_match("健一", "けんいち", "kenniti");
    assert_match("今野", "こんの", "konno");
    assert_match("今野", "こんの", "kon");
}

Test(name_match, voicing_is_kept)
{
    assert_match("長谷川", "はせがわ", "hasegawa");
    assert_no_match("長谷川", "はせがわ", "hasekawa");
    assert_no_match("長谷川", "はせかわ", "hasegawa");
    assert_no_match("長谷川", "はせかわ", "はせがわ");
    assert_match("長谷川", "はせかわ", "ハセカワ");
}

Test(name_match, kanji_variants)
{
    assert_match("齋藤 一郎", NULL, "斎藤");
    assert_match("斎藤 一郎", NULL, "齋藤");
    assert_match("斉藤 一郎", NULL, "齊藤 一郎");
    assert_match("髙橋", NULL, "高橋");
    assert_match("高橋", NULL, "髙橋");
    assert_match("三ヶ尻", NULL, "三ケ尻");
    assert_match("渡邉", NULL, "渡辺");
    assert_no_match("斎藤", NULL, "佐藤");
}

Test(name_match, mixed_script_tokens)
{
    assert_match("山田 太郎", "やまだ たろう", "山田 たろう");
    assert_match("山田 太郎", "やまだ たろう", "taro 山田");
    assert_no_match("山田 太郎", "やまだ たろう", "jiro 山田");
}

/* ヴ and its small-vowel forms are the same sound as the ブ row in
 * Japanese usage (ヴィクトル / ビクトル, ヴァイオリン / バイオリン), and
 * registers write either. */
Test(name_fold, vu_row_folds_to_bu_row)
{
    static const char *const g[][7] = {
        {"ヴァ", "バ", "ｳﾞｧ", "ゔぁ", "ヷ", "va", NULL},
        {"ヴィ", "ビ", "ｳﾞｨ", "ヸ", "vi", "bi", NULL},
        {"ヴ", "ブ", "ｳﾞ", "ヴゥ", "vu", "bu", NULL},
        {"ヴェ", "ベ", "ヹ", "ve", "be", NULL},
        {"ヴォ", "ボ", "ヺ", "vo", "bo", NULL},
        {"ヴィクトル", "ビクトル", "ｳﾞｨｸﾄﾙ", "ビクトル", NULL},
        {"イヴァノヴァ", "イバノバ", NULL},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        assert_same_fold(g[i]);
    cr_assert_str_eq(F("ヴィクトル"), "bikutoru");
    assert_match("PETROV Viktor", "ペトロフ ヴィクトル", "ビクトル ペトロフ");
    assert_match("PETROV Viktor", "ペトロフ ヴィクトル", "ﾋﾞｸﾄﾙ");
}

/* Small vowels after ウ, イ, テ and デ are often written full size in
 * registers (ウイルソン, ウエイ, ステイーブン); they fold together. Other
 * small vowels keep their sound (ファ fa, ジェ je). */
Test(name_fold, small_vowels_written_full_size)
{
    static const char *const g[][5] = {
        {"ウィ", "ウイ", "ui", NULL},
        {"ウェ", "ウエ", "ue", NULL},
        {"ウォ", "ウオ", "uo", NULL},
        {"イェ", "イエ", "ie", NULL},
        {"ティ", "テイ", "tei", NULL},
        {"ディ", "デイ", "dei", NULL},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        assert_same_fold(g[i]);
    assert_match("WILSON Olivia", "ウィルソン オリヴィア", "ウイルソン オリビア");
    assert_match("李 偉", "リ ウェイ", "リ ウエイ");
    assert_match("LEE Steven", "リー スティーヴン", "ステイーブン");
    cr_assert_str_eq(F("wi"), "wi", "romaji wi stays (see name_fold.c table 2)");
    cr_assert_str_neq(F("ファ"), F("フア"));
    cr_assert_str_neq(F("ジェ"), F("ジエ"));
    cr_assert_str_neq(F("きょう"), F("きよう"), "yōon stays: 京 is not 清");
}

Test(name_fold, h_marks_a_long_u_too)
{
    static const char *const g[][5] = {
        {"ゆうき", "yuki", "yuuki", "yuhki", NULL},
        {"しゅうじ", "shuji", "shuhji", "syuuzi", NULL},
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        assert_same_fold(g[i]);
    cr_assert_str_eq(F("shuhei"), F("しゅうへい"), "h starting a syllable stays");
}

/* A record's dictionary readings (name_reading.h) index like kana, each of
 * them, without duplicates. */
Test(name_fold, reading_keys_of_every_reading)
{
    char keys[NKEYS][KZ_NODE_NAME_KEY_MAX];
    size_t n = kz_node_name_reading_keys(
        "ウエノ ヒデカズ\nウエノ シュウイチ", keys, NKEYS);
    const char *want[] = {"ueno", "hidekazu", "uenohidekazu", "hidekazueno", /* uu: one long u */
                          "shuichi", "uenoshuichi", "shuichiueno"};
    cr_assert_eq(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(keys[i], want[i]);
    cr_assert_eq(kz_node_name_reading_keys(NULL, keys, NKEYS), 0);
    cr_assert_eq(kz_node_name_reading_keys("", keys, NKEYS), 0);
    cr_assert_eq(kz_node_name_reading_keys("\n\n", keys, NKEYS), 0);
    cr_assert_eq(kz_node_name_reading_keys("ア\nイ\nウ", keys, 2), 2);
}
