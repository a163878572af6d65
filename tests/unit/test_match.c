/*
 * test_match.c — canonical forms of the kana name and the address for
 * link-code issuance matching (node/match).
 *
 * Each case reads as the caller's rule: two facts match when their folds are
 * byte-equal. Covered: every variation match.h promises to fold (width,
 * script, marks, separators, numerals, 丁目/番地 forms, ヶ/が, postcodes),
 * the variations it promises to keep apart, invalid UTF-8 and NUL bytes,
 * buffers too small, empty input, the malloc path for long addresses, and
 * idempotence: every fold done here through K() or A() is folded again and
 * must come back unchanged, and a sweep over short strings built from the
 * characters the rules look at checks it exhaustively.
 */
#include "match.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*fold_fn)(const char *, size_t, char *, size_t);

/* Folds s with fn into one of a few static buffers ("<error>" on -1) and
 * checks that folding the result again changes nothing. */
static const char *fold_checked(fold_fn fn, const char *name, const char *s)
{
    static char buf[8][KZ_NODE_MATCH_MAX];
    static int next;
    char *b = buf[next++ % 8];
    char again[KZ_NODE_MATCH_MAX];

    int n = fn(s, strlen(s), b, KZ_NODE_MATCH_MAX);
    if (n < 0)
        return strcpy(b, "<error>");
    cr_assert_eq((size_t)n, strlen(b), "%s(\"%s\"): length", name, s);
    int m = fn(b, (size_t)n, again, sizeof again);
    cr_assert(m == n && strcmp(again, b) == 0,
              "%s not idempotent: \"%s\" -> \"%s\" -> \"%s\"", name, s, b,
              m < 0 ? "<error>" : again);
    return b;
}

static const char *K(const char *s)
{
    return fold_checked(kz_node_match_kana, "kana", s);
}

static const char *A(const char *s)
{
    return fold_checked(kz_node_match_address, "address", s);
}

/* Every string of a NULL-terminated group folds to the first one's fold. */
static void assert_same(fold_fn fn, const char *name,
                        const char *const *group)
{
    char want[KZ_NODE_MATCH_MAX];

    snprintf(want, sizeof want, "%s", fold_checked(fn, name, group[0]));
    cr_assert_str_neq(want, "<error>", "\"%s\" failed", group[0]);
    for (size_t i = 1; group[i] != NULL; i++) {
        const char *got = fold_checked(fn, name, group[i]);
        cr_assert_str_eq(got, want, "%s: \"%s\" -> \"%s\" but \"%s\" -> \"%s\"",
                         name, group[i], got, group[0], want);
    }
}

#define assert_kana_same(...)                                                 \
    assert_same(kz_node_match_kana, "kana",                                   \
                (const char *const[]){__VA_ARGS__, NULL})
#define assert_address_same(...)                                              \
    assert_same(kz_node_match_address, "address",                             \
                (const char *const[]){__VA_ARGS__, NULL})

#define assert_kana_differ(a, b)                                              \
    cr_assert_str_neq(K(a), K(b), "kana \"%s\" and \"%s\" should differ",     \
                      (a), (b))
#define assert_address_differ(a, b)                                           \
    cr_assert_str_neq(A(a), A(b), "address \"%s\" and \"%s\" should differ", \
                      (a), (b))

/* ---------------------------------------------------------------- kana */

Test(match_kana, hiragana_katakana_and_half_width_agree)
{
    assert_kana_same("ヤマダタロウ", "やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ　タロウ",
                     "やまだたろう", "ﾔﾏﾀﾞﾀﾛｳ", "ヤマダ\tタロウ");
    cr_assert_str_eq(K("やまだ たろう"), "ヤマダタロウ");
}

Test(match_kana, dakuten_and_handakuten_compose)
{
    cr_assert_str_eq(K("ｶﾞ"), "ガ");
    assert_kana_same("ガ", "ｶﾞ", "が", "か\xe3\x82\x99" /* か + U+3099 */,
                     "カ゛", "か゛", "ｶ゛", "カﾞ");
    assert_kana_same("パ", "ﾊﾟ", "は\xe3\x82\x9a", "ハ゜", "ぱ");
    assert_kana_same("ヴ", "ｳﾞ", "ゔ", "う゛");
    cr_assert_str_eq(K("ﾜﾞ"), "ヷ");
    cr_assert_str_eq(K("ﾎﾞｳﾌﾟ"), "ボウプ");
    /* A mark that composes with nothing is kept, as the spacing form. */
    cr_assert_str_eq(K("ﾞア"), "゛ア");
    cr_assert_str_eq(K("ア\xe3\x82\x99"), "ア゛");
    cr_assert_str_eq(K("ガﾞ"), "ガ゛");
    cr_assert_str_eq(K("ｶﾟ"), "カ゜");
}

Test(match_kana, small_ke_and_ka)
{
    assert_kana_same("ケ", "ヶ", "ゖ", "け", "ｹ");
    assert_kana_same("カ", "ヵ", "ゕ", "か");
    cr_assert_str_eq(K("ミツヶシマ"), "ミツケシマ");
}

Test(match_kana, spaces_and_middle_dots_removed)
{
    assert_kana_same("ジョンスミス", "ジョン・スミス", "ｼﾞｮﾝ･ｽﾐｽ", "ジョン スミス",
                     " ジョン\r\n\v\fスミス\t", "じょん　すみす",
                     "ジョン\xc2\xa0スミス" /* U+00A0 */);
    cr_assert_str_eq(K(" 　・･\t"), "");
}

Test(match_kana, long_vowel_variants_unified)
{
    assert_kana_same("サトー", "サト-", "サト－", "ｻﾄｰ", "サト‐", "さとー",
                     "サト―", "サト−", "サト–", "サト—");
    cr_assert_str_eq(K("ｻﾄｰ"), "サトー");
}

Test(match_kana, full_width_ascii_folded_and_lowercased)
{
    assert_kana_same("smith", "ＳＭＩＴＨ", "Smith", "ｓｍｉｔｈ", "S M I T H");
    cr_assert_str_eq(K("ＳＭＩＴＨ"), "smith");
    cr_assert_str_eq(K("Ａ１"), "a1");
}

Test(match_kana, iteration_marks_repeat_the_kana)
{
    assert_kana_same("スズキ", "すゞき", "スヾキ", "すずき");
    assert_kana_same("ササキ", "さゝき", "サヽキ");
    cr_assert_str_eq(K("ガヽ"), "ガカ", "ゝ repeats unvoiced");
    cr_assert_str_eq(K("ヽ"), "ヽ", "nothing to repeat: kept");
    cr_assert_str_eq(K("アヾ"), "アヾ", "nothing to voice: kept");
    cr_assert_str_eq(K("ヽ゛"), "ヾ");
}

Test(match_kana, different_names_stay_different)
{
    assert_kana_differ("ヤマダ", "ヤマタ");
    assert_kana_differ("ヤマダ", "ヤマダ゛");
    assert_kana_differ("サトー", "サトウ");
    assert_kana_differ("キャ", "キヤ");
    assert_kana_differ("ショウジ", "シヨウジ");
    assert_kana_differ("ヂ", "ジ");
    assert_kana_differ("ヅ", "ズ");
    assert_kana_differ("ヲ", "オ");
    assert_kana_differ("ヴ", "ブ");
    assert_kana_differ("ハ", "パ");
    assert_kana_differ("山田", "やまだ");
    assert_kana_differ("ヤマダ", "ヤマダタロウ");
}

Test(match_kana, kanji_and_other_text_kept)
{
    cr_assert_str_eq(K("山田"), "山田");
    cr_assert_str_eq(K("𠮷田"), "𠮷田");
    cr_assert_str_eq(K("o'brien"), "o'brien");
}

/* ------------------------------------------------------------- address */

Test(match_address, full_width_digits)
{
    cr_assert_str_eq(A("１丁目２番３号"), "1-2-3");
    assert_address_same("1-2-3", "１丁目２番３号", "１－２－３", "１ー２ー３");
}

Test(match_address, chome_banchi_go_and_dash_forms)
{
    assert_address_same("東京都千代田区霞が関1-2-3",
                        "東京都千代田区霞が関1丁目2番地3号",
                        "東京都千代田区霞が関1丁目2番3号",
                        "東京都千代田区霞が関1丁目2-3",
                        "東京都千代田区霞が関1-2-3",
                        "東京都千代田区霞が関1−2−3",
                        "東京都千代田区霞が関1‐2‐3",
                        "東京都千代田区霞が関1–2–3",
                        "東京都千代田区霞が関1—2—3",
                        "東京都千代田区霞が関1ー2ー3",
                        "東京都千代田区霞が関1ｰ2ｰ3",
                        "東京都千代田区霞が関1の2の3",
                        "東京都千代田区霞が関1ノ2ノ3",
                        "東京都千代田区霞が関一丁目二番三号",
                        "東京都千代田区霞が関 1丁目 2番 3号",
                        "東京都千代田区霞が関1丁目2番地の3");
    cr_assert_str_eq(A("東京都千代田区霞が関1丁目2番地3号"),
                     "東京都1000代田区霞ケ関1-2-3");
}

Test(match_address, trailing_units_dropped)
{
    cr_assert_str_eq(A("3丁目"), "3");
    cr_assert_str_eq(A("12番地"), "12");
    cr_assert_str_eq(A("5番"), "5");
    cr_assert_str_eq(A("7号"), "7");
    cr_assert_str_eq(A("123番地の4"), "123-4");
    assert_address_same("大通3", "大通3丁目", "大通三丁目", "大通３丁目");
    assert_address_same("1-2-3サンハイツ", "1丁目2番3号サンハイツ",
                        "1丁目2番3号 サンハイツ", "1-2-3 サンハイツ");
}

Test(match_address, kanji_numerals)
{
    assert_address_same("3-12", "三丁目十二番地", "3丁目12番地", "三丁目十二");
    cr_assert_str_eq(A("二十三"), "23");
    cr_assert_str_eq(A("十"), "10");
    cr_assert_str_eq(A("百五"), "105");
    cr_assert_str_eq(A("百〇五"), "105");
    cr_assert_str_eq(A("千"), "1000");
    cr_assert_str_eq(A("二千〇五"), "2005");
    cr_assert_str_eq(A("九千九百九十九"), "9999");
    cr_assert_str_eq(A("三百十"), "310");
    cr_assert_str_eq(A("二〇二三"), "2023");
    cr_assert_str_eq(A("一〇五"), "105");
    cr_assert_str_eq(A("〇"), "0");
    cr_assert_str_eq(A("零"), "0");
    cr_assert_str_eq(A("十十"), "1010", "no number: read as two");
    cr_assert_str_eq(A("北十条西三丁目"), "北10条西3");
    cr_assert_str_eq(A("一万"), "1万", "万 is not read");
}

Test(match_address, number_words_kept)
{
    cr_assert_str_eq(A("千代田区一番町"), "1000代田区1番町");
    assert_address_same("千代田区1番町5", "千代田区一番町5", "千代田区１番町５");
    cr_assert_str_eq(A("101号室"), "101号室");
    assert_address_same("1-2-3-101号室", "1丁目2番3号101号室",
                        "1-2-3 101号室", "一丁目二番三号 一〇一号室");
    cr_assert_str_eq(A("3号棟"), "3号棟");
    cr_assert_str_eq(A("国道1号線"), "国道1号線");
    cr_assert_str_eq(A("北一番丁"), "北1番丁");
}

Test(match_address, ke_and_ga_between_kanji)
{
    assert_address_same("霞ケ関", "霞ヶ関", "霞が関", "霞ヵ関", "霞ｹ関", "霞ガ関",
                        "霞 ヶ 関");
    cr_assert_str_eq(A("霞ヶ関"), "霞ケ関");
    assert_address_same("三ケ日町", "三ヶ日町", "三が日町", "3ヶ日町");
    assert_address_same("井ノ頭", "井の頭", "井ﾉ頭");
    cr_assert_str_eq(A("ケーキ"), "ケーキ");
    cr_assert_str_eq(A("ヶ丘"), "ヶ丘", "no kanji before: kept");
    cr_assert_str_eq(A("自由がおか"), "自由がおか", "no kanji after: kept");
}

Test(match_address, postcode_removed)
{
    assert_address_same("東京都千代田区霞ケ関1-2-3",
                        "〒100-0013 東京都千代田区霞が関1-2-3",
                        "〒100-0013東京都千代田区霞が関1-2-3",
                        "〒１００－００１３　東京都千代田区霞が関１－２－３",
                        "〒1000013 東京都千代田区霞が関1-2-3",
                        "100-0013 東京都千代田区霞が関1-2-3",
                        "〒 100ー0013 東京都千代田区霞が関1-2-3",
                        "〶100-0013東京都千代田区霞が関1-2-3");
    cr_assert_str_eq(A("〒100-0013"), "");
    cr_assert_str_eq(A("〒100-0013 1-2-3"), "1-2-3", "not one number");
    cr_assert_str_eq(A("〒100-0013-1"), "100-0013-1", "〒 alone removed");
    cr_assert_str_eq(A("百-〇〇一三東京"), "東京");
    cr_assert_str_eq(A("100丁目0013東京"), "東京", "made by step 6");
    cr_assert_str_eq(A("〒100-0013〒100-0013東京"), "東京");
    cr_assert_str_eq(A("東京〒1"), "東京〒1", "only a leading one");
    cr_assert_str_eq(A("100-0013-5"), "100-0013-5", "not a postcode");
    cr_assert_str_eq(A("1000013東京"), "1000013東京", "no 〒: not a postcode");
}

Test(match_address, spaces_removed_but_numbers_not_joined)
{
    assert_address_same("東京都千代田区", "東京都 千代田区", "東京都　千代田区",
                        " 東京都\t千代田区\n");
    cr_assert_str_eq(A("1 2"), "1-2");
    assert_address_differ("12", "1 2");
    cr_assert_str_eq(A("メゾン・ド・パリ"), "メゾンドパリ");
}

Test(match_address, oaza_dropped_aza_kept)
{
    assert_address_same("山田村上野123", "山田村大字上野123番地",
                        "山田村 大字 上野 百二十三番地");
    cr_assert_str_eq(A("山田村字上野"), "山田村字上野");
    cr_assert_str_eq(A("大大字字"), "", "what is left is no new 大字");
}

Test(match_address, latin_letters_case_folded)
{
    assert_address_same("a棟101", "Ａ棟101", "A棟101", "ａ棟１０１");
}

Test(match_address, different_addresses_stay_different)
{
    assert_address_differ("1-2-3", "1-2-4");
    assert_address_differ("12", "1-2");
    assert_address_differ("1-23", "12-3");
    assert_address_differ("霞ヶ関", "霞関");
    assert_address_differ("渡辺町", "渡邊町");
    assert_address_differ("つくば市", "ツクバ市");
    assert_address_differ("東京都千代田区1-1", "千代田区1-1");
    assert_address_differ("山田村字上野", "山田村上野");
    assert_address_differ("センター", "センタ-");
    assert_address_differ("1番町", "1町");
    assert_address_differ("5階", "5");
}

/* -------------------------------------------------- failures and limits */

static void assert_refused(fold_fn fn, const char *s, size_t len)
{
    char out[KZ_NODE_MATCH_MAX];
    cr_assert_eq(fn(s, len, out, sizeof out), -1);
}

Test(match, invalid_utf8_and_nul_refused)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"\xff", 1},                 /* never occurs */
        {"\xc0\xaf", 2},             /* overlong '/' */
        {"\xe0\x80\xaf", 3},         /* overlong */
        {"\xed\xa0\x80", 3},         /* surrogate */
        {"\xf4\x90\x80\x80", 4},     /* above U+10FFFF */
        {"\xe3\x81", 2},             /* truncated */
        {"\xe3\x81\x82\x80", 4},     /* stray continuation */
        {"ア\0イ", 7},               /* NUL inside the length */
        {"1丁目\xe3", 10},           /* truncated at the end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_refused(kz_node_match_kana, bad[i].s, bad[i].len);
        assert_refused(kz_node_match_address, bad[i].s, bad[i].len);
    }
}

/* s folds to n bytes: n + 1 bytes of buffer suffice, n do not. */
static void assert_exact_fit(fold_fn fn, const char *s)
{
    char big[KZ_NODE_MATCH_MAX], small[KZ_NODE_MATCH_MAX];
    int n = fn(s, strlen(s), big, sizeof big);

    cr_assert_geq(n, 0);
    cr_assert_eq(fn(s, strlen(s), small, (size_t)n + 1), n);
    cr_assert_str_eq(small, big);
    cr_assert_eq(fn(s, strlen(s), small, (size_t)n), -1, "\"%s\", cap %d", s,
                 n);
    cr_assert_eq(fn(s, strlen(s), small, 0), -1);
}

Test(match, too_small_buffer_refused)
{
    assert_exact_fit(kz_node_match_kana, "やまだ たろう");
    assert_exact_fit(kz_node_match_kana, "ｶﾞｶﾞ"); /* last kana replaced */
    assert_exact_fit(kz_node_match_kana, "サト-");
    assert_exact_fit(kz_node_match_address, "〒100-0013 東京都千代田区霞が関一丁目二番三号");
    assert_exact_fit(kz_node_match_address, "千");
    assert_exact_fit(kz_node_match_kana, "");
    assert_exact_fit(kz_node_match_address, "");
}

Test(match, empty_and_null)
{
    char out[8] = "x";

    cr_assert_eq(kz_node_match_kana("", 0, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(kz_node_match_address("", 0, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
    cr_assert_eq(kz_node_match_kana(NULL, 0, out, sizeof out), 0);
    cr_assert_eq(kz_node_match_address(NULL, 0, out, sizeof out), 0);
    cr_assert_eq(kz_node_match_kana(NULL, 1, out, sizeof out), -1);
    cr_assert_eq(kz_node_match_address(NULL, 1, out, sizeof out), -1);
    cr_assert_eq(kz_node_match_kana("ア", 3, NULL, 8), -1);
    cr_assert_eq(kz_node_match_address("1", 1, NULL, 8), -1);
    /* Input that folds to nothing: the caller treats 0 as "no fact". */
    cr_assert_str_eq(K(" ・ "), "");
    cr_assert_str_eq(A("〒100-0013 "), "");
}

Test(match, long_input_that_folds_short)
{
    /* Over the address fold's stack scratch: the malloc path. */
    size_t n = 3000;
    char *s = malloc(n + 16);
    cr_assert_not_null(s);
    memset(s, ' ', n);
    strcpy(s + n, "1丁目");
    cr_assert_str_eq(A(s), "1");
    cr_assert_str_eq(K(s), "1丁目");
    free(s);
}

Test(match, long_result_refused_not_truncated)
{
    char in[2 * KZ_NODE_MATCH_MAX], out[KZ_NODE_MATCH_MAX];

    memset(in, 'a', sizeof in);
    cr_assert_eq(kz_node_match_kana(in, sizeof in, out, sizeof out), -1);
    cr_assert_eq(kz_node_match_address(in, sizeof in, out, sizeof out), -1);
    /* 千 (3 bytes) reads as 1000 (4): the address may outgrow its input. */
    char thousands[3 * 600 + 1] = "";
    for (int i = 0; i < 600; i++)
        strcat(thousands, "千");
    char *big = malloc(4096);
    cr_assert_not_null(big);
    int r = kz_node_match_address(thousands, strlen(thousands), big, 4096);
    cr_assert_eq(r, 2400);
    /* Around the size where the scratch array moves from stack to heap. */
    for (size_t count = 254; count <= 258; count++) {
        size_t bytes = 3 * count;
        r = kz_node_match_address(thousands, bytes, big, 4096);
        cr_assert_eq(r, (int)(4 * count), "%zu bytes of 千", bytes);
    }
    free(big);
}

/* ----------------------------------------------- idempotence, exhaustive */

/* Folds every string of up to `depth` pieces from `alpha` with both folds
 * and checks each result folds to itself. */
static void sweep(const char *const *alpha, size_t na, int depth)
{
    size_t idx[4] = {0};
    size_t total = 1;

    for (int d = 0; d < depth; d++)
        total *= na + 1; /* na + 1: "no piece" at that position */
    for (size_t t = 0; t < total; t++) {
        char s[64] = "";
        size_t v = t;
        for (int d = 0; d < depth; d++) {
            idx[d] = v % (na + 1);
            v /= na + 1;
            if (idx[d] > 0)
                strcat(s, alpha[idx[d] - 1]);
        }
        K(s);
        A(s);
    }
}

Test(match, idempotent_on_address_pieces)
{
    static const char *const pieces[] = {
        "1", "十", "二", "百", "〇", "千", "丁目", "丁", "目", "番", "番地",
        "地", "号", "室", "町", "の", "ノ", "-", "ー", " ", "ヶ", "が", "関",
        "大", "字", "〒", "ｶ", "ﾞ", "ﾟ", "ヽ", "a", "・", "100-0013",
    };
    sweep(pieces, sizeof pieces / sizeof pieces[0], 3);
}

Test(match, idempotent_on_kana_pieces)
{
    static const char *const pieces[] = {
        "か", "ｶ", "ﾞ", "ﾟ", "\xe3\x82\x99", "゛", "は", "ﾊ", "う", "ワ", "ゝ",
        "ゞ", "ヽ", "ヾ", "ヶ", "ゕ", "ー", "-", " ", "・", "ア", "ガ", "Ａ",
    };
    sweep(pieces, sizeof pieces / sizeof pieces[0], 4);
}
