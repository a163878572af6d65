/*
 * test_zengin.c — the 全銀協 総合振込 file (node/zengin): the layouts of
 * DOMAIN.md §6 sum to 120 bytes, a built file has records of exactly 120
 * bytes + CR LF in the order 1, 2..., 8, 9 with the right bytes in every
 * field (expected records written out by hand here), the trailer's count and
 * total, the kana conversion (JIS X 0201 bytes spelled out), every refusal of
 * the writer (amount over N10, total over N12, fields that do not fit or do
 * not convert), and build -> check round trips plus the reader's refusals.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz_error.h"
#include "zengin.h"

/* ---- helpers ----------------------------------------------------------- */

/* Appends s left-aligned in `width` spaces (C) to the record at *r. */
static void put_c(char **r, const char *s, size_t width)
{
    size_t n = strlen(s);
    cr_assert_leq(n, width, "test bug: '%s' wider than %zu", s, width);
    memcpy(*r, s, n);
    memset(*r + n, ' ', width - n);
    *r += width;
}

/* Appends s (exactly `width` characters, as a bank would see it) to *r. */
static void put_n(char **r, const char *s, size_t width)
{
    cr_assert_eq(strlen(s), width, "test bug: '%s' is not %zu digits", s,
                 width);
    memcpy(*r, s, width);
    *r += width;
}

static const struct kz_zengin_header header = {
    .requester_code = "123456789",
    .requester_name = "キズナシ",
    .transfer_mmdd = "0315",
    .bank_code = 1,
    .branch_code = 12,
    .bank_name = "ミズホ",
    .branch_name = "ホンテン",
    .account_type = 1,
    .account_number = "1234567",
};

static struct kz_zengin_payee payee(const char *name, long long yen)
{
    return (struct kz_zengin_payee){
        .bank_code = 5,
        .branch_code = 101,
        .bank_name = "ミツビシユーエフジェイ",
        .branch_name = "センダイ",
        .account_type = 1,
        .account_number = "765",
        .name = name,
        .amount_yen = yen,
        .customer_code1 = "42",
        .customer_code2 = NULL,
    };
}

static int build(const struct kz_zengin_payee *p, size_t n, char **out,
                 size_t *len, char *err, size_t errlen)
{
    return kz_zengin_build(&header, p, n, out, len, err, errlen);
}

/* Builds, expecting KZ_EINVAL with `needle` in the message. */
static void expect_refused(const struct kz_zengin_header *h,
                           const struct kz_zengin_payee *p, size_t n,
                           const char *needle)
{
    char *out = (char *)"sentinel";
    size_t len = 99;
    char err[256];
    int rc = kz_zengin_build(h, p, n, &out, &len, err, sizeof err);
    cr_expect_eq(rc, KZ_EINVAL, "expected a refusal about %s", needle);
    cr_expect_null(out);
    cr_expect_eq(len, 0);
    cr_expect_not_null(strstr(err, needle), "'%s' not in '%s'", needle, err);
}

/* ---- layouts ----------------------------------------------------------- */

Test(zengin, layouts_sum_to_120_and_match_the_document)
{
    /* Widths as DOMAIN.md §6 lists them. */
    static const unsigned header_w[] = {1, 2, 1, 10, 40, 4, 4,
                                        15, 3, 15, 1, 7, 17};
    static const unsigned data_w[] = {1, 4, 15, 3, 15, 4, 1, 7,
                                      30, 10, 1, 10, 10, 1, 1, 7};
    static const unsigned trailer_w[] = {1, 6, 12, 101};
    static const unsigned end_w[] = {1, 119};
    static const struct {
        int kind;
        const unsigned *w;
        size_t n;
    } kinds[] = {
        {1, header_w, sizeof header_w / sizeof header_w[0]},
        {2, data_w, sizeof data_w / sizeof data_w[0]},
        {8, trailer_w, sizeof trailer_w / sizeof trailer_w[0]},
        {9, end_w, sizeof end_w / sizeof end_w[0]},
    };
    for (size_t k = 0; k < 4; k++) {
        const struct kz_zengin_field *f;
        size_t n = kz_zengin_layout(kinds[k].kind, &f);
        cr_assert_eq(n, kinds[k].n, "kind %d", kinds[k].kind);
        unsigned sum = 0, doc_sum = 0;
        for (size_t i = 0; i < n; i++) {
            cr_expect_eq(f[i].width, kinds[k].w[i], "kind %d field %zu (%s)",
                         kinds[k].kind, i, f[i].name);
            cr_expect(f[i].type == 'N' || f[i].type == 'C');
            sum += f[i].width;
            doc_sum += kinds[k].w[i];
        }
        cr_expect_eq(sum, 120, "kind %d sums to %u", kinds[k].kind, sum);
        cr_expect_eq(doc_sum, 120, "the document's kind %d", kinds[k].kind);
        cr_expect_str_eq(f[0].name, "data kind");
        cr_expect_eq(f[0].width, 1);
    }
    const struct kz_zengin_field *f;
    cr_expect_eq(kz_zengin_layout(0, &f), 0);
    cr_expect_eq(kz_zengin_layout(3, &f), 0);
}

/* ---- the file ---------------------------------------------------------- */

Test(zengin, every_record_is_120_bytes_plus_crlf_in_order)
{
    struct kz_zengin_payee p[3] = {payee("ヤマダ タロウ", 1000000),
                                   payee("サトウ ハナコ", 750000),
                                   payee("すずき いちろう", 375000)};
    char *out;
    size_t len;
    char err[256];
    cr_assert_eq(build(p, 3, &out, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 6 * 122);
    cr_expect_eq(out[len], '\0', "NUL after the file");
    static const char kinds[] = "122289";
    for (size_t r = 0; r < 6; r++) {
        const char *rec = out + r * 122;
        cr_expect_eq(rec[0], kinds[r], "record %zu", r + 1);
        cr_expect_eq(rec[120], '\r');
        cr_expect_eq(rec[121], '\n');
        for (size_t i = 0; i < 120; i++) {
            unsigned char c = (unsigned char)rec[i];
            cr_expect((c >= 0x20 && c <= 0x7E) || (c >= 0xA1 && c <= 0xDF),
                      "record %zu byte %zu: 0x%02X", r + 1, i, c);
        }
    }
    free(out);
}

Test(zengin, header_and_data_bytes)
{
    struct kz_zengin_payee p = payee("ヤマダ タロウ", 1234567);
    char *out;
    size_t len;
    char err[256];
    cr_assert_eq(build(&p, 1, &out, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, 4 * 122);

    char want[121], *r = want;
    put_n(&r, "1", 1);
    put_n(&r, "21", 2);
    put_n(&r, "0", 1);
    put_n(&r, "0123456789", 10);
    put_c(&r, "\xB7\xBD\xDE\xC5\xBC", 40); /* ｷｽﾞﾅｼ */
    put_n(&r, "0315", 4);
    put_n(&r, "0001", 4);
    put_c(&r, "\xD0\xBD\xDE\xCE", 15); /* ﾐｽﾞﾎ */
    put_n(&r, "012", 3);
    put_c(&r, "\xCE\xDD\xC3\xDD", 15); /* ﾎﾝﾃﾝ */
    put_n(&r, "1", 1);
    put_n(&r, "1234567", 7);
    put_c(&r, "", 17);
    cr_assert_eq(r - want, 120);
    cr_expect_eq(memcmp(out, want, 120), 0, "header:\n%.120s\nwant:\n%.120s",
                 out, want);

    r = want;
    put_n(&r, "2", 1);
    put_n(&r, "0005", 4);
    /* ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ: 13 bytes (ュ ェ large, ー as '-') */
    put_c(&r, "\xD0\xC2\xCB\xDE\xBC\xD5-\xB4\xCC\xBC\xDE\xB4\xB2", 15);
    put_n(&r, "101", 3);
    put_c(&r, "\xBE\xDD\xC0\xDE\xB2", 15); /* ｾﾝﾀﾞｲ */
    put_n(&r, "0000", 4);
    put_n(&r, "1", 1);
    put_n(&r, "0000765", 7);
    put_c(&r, "\xD4\xCF\xC0\xDE \xC0\xDB\xB3", 30); /* ﾔﾏﾀﾞ ﾀﾛｳ */
    put_n(&r, "0001234567", 10);
    put_n(&r, "0", 1);
    put_n(&r, "0000000042", 10);
    put_n(&r, "0000000000", 10);
    put_n(&r, "7", 1);
    put_c(&r, " ", 1);
    put_c(&r, "", 7);
    cr_assert_eq(r - want, 120);
    cr_expect_eq(memcmp(out + 122, want, 120), 0,
                 "data:\n%.120s\nwant:\n%.120s", out + 122, want);

    r = want;
    put_n(&r, "8", 1);
    put_n(&r, "000001", 6);
    put_n(&r, "000001234567", 12);
    put_c(&r, "", 101);
    cr_expect_eq(memcmp(out + 244, want, 120), 0, "trailer");

    r = want;
    put_n(&r, "9", 1);
    put_c(&r, "", 119);
    cr_expect_eq(memcmp(out + 366, want, 120), 0, "end");
    free(out);
}

Test(zengin, trailer_count_and_total_are_the_sum)
{
    enum { N = 250 };
    struct kz_zengin_payee *p = calloc(N, sizeof *p);
    cr_assert_not_null(p);
    long long sum = 0;
    for (size_t i = 0; i < N; i++) {
        p[i] = payee("タナカ", (long long)(i + 1) * 12345 + 7);
        sum += p[i].amount_yen;
    }
    char *out;
    size_t len;
    char err[256];
    cr_assert_eq(build(p, N, &out, &len, err, sizeof err), 0, "%s", err);
    cr_assert_eq(len, (N + 3) * 122);
    const char *trailer = out + (N + 1) * 122;
    char want[20];
    snprintf(want, sizeof want, "8%06d%012lld", N, sum);
    cr_expect_eq(memcmp(trailer, want, 19), 0, "%.19s vs %s", trailer, want);

    size_t count = 0;
    long long total = 0;
    cr_expect_eq(kz_zengin_check(out, len, &count, &total, err, sizeof err),
                 0, "%s", err);
    cr_expect_eq(count, N);
    cr_expect_eq(total, sum);
    free(out);
    free(p);
}

/* ---- kana -------------------------------------------------------------- */

static void expect_kana(const char *in, const char *want)
{
    char out[256];
    size_t n = 999;
    int rc = kz_zengin_kana(in, out, sizeof out, &n);
    cr_assert_eq(rc, 0, "'%s': %d", in, rc);
    cr_expect_eq(n, strlen(want), "'%s': length %zu, want %zu", in, n,
                 strlen(want));
    cr_expect_str_eq(out, want, "'%s'", in);
}

static void expect_kana_refused(const char *in)
{
    char out[256];
    cr_expect_eq(kz_zengin_kana(in, out, sizeof out, NULL), KZ_EINVAL, "'%s'",
                 in);
}

Test(zengin, kana_brief_cases)
{
    /* ﾔ ﾏ ﾀ ﾞ space ﾀ ﾛ ｳ */
    expect_kana("ヤマダ タロウ", "\xD4\xCF\xC0\xDE\x20\xC0\xDB\xB3");
    /* ｶ ﾞ ﾂ ｺ ｳ: hiragana, voiced split, small っ large */
    expect_kana("がっこう", "\xB6\xDE\xC2\xBA\xB3");
    expect_kana("ＡＢＣ", "ABC");
    expect_kana_refused("山田");
    expect_kana_refused("ヤマ田");
}

Test(zengin, kana_more_cases)
{
    expect_kana("", "");
    expect_kana("abc xyz", "ABC XYZ");
    expect_kana("ａｂｃ１２３", "ABC123");
    expect_kana("キャノン", "\xB7\xD4\xC9\xDD");           /* ｷﾔﾉﾝ */
    expect_kana("ｷｬﾉﾝ", "\xB7\xD4\xC9\xDD");              /* half-width too */
    expect_kana("ぱぴぷぺぽ", "\xCA\xDF\xCB\xDF\xCC\xDF\xCD\xDF\xCE\xDF");
    expect_kana("ヴ", "\xB3\xDE");                       /* ｳﾞ */
    expect_kana("ゔ", "\xB3\xDE");
    expect_kana("ァィゥェォヮヵヶ", "\xB1\xB2\xB3\xB4\xB5\xDC\xB6\xB9");
    expect_kana("ヰヱヲ", "\xB2\xB4\xA6");               /* ｲｴｦ */
    expect_kana("サトー", "\xBB\xC4-");                   /* ー -> '-' */
    expect_kana("ｻﾄｰ", "\xBB\xC4-");
    expect_kana("ジョン・スミス", "\xBC\xDE\xD6\xDD.\xBD\xD0\xBD");
    expect_kana("ヤマダ　タロウ", "\xD4\xCF\xC0\xDE \xC0\xDB\xB3"); /* U+3000 */
    expect_kana("カ゛", "\xB6\xDE");                      /* spacing ゛ */
    expect_kana("か\xE3\x82\x99", "\xB6\xDE");            /* combining */
    expect_kana("(カ)", "(\xB6)");
    expect_kana("（カ）", "(\xB6)");
    expect_kana("A-B.C,D/E", "A-B.C,D/E");
    expect_kana("「ア」", "\xA2\xB1\xA3");

    expect_kana_refused("@");
    expect_kana_refused("A&B");
    expect_kana_refused("tab\there");
    expect_kana_refused("line\n");
    expect_kana_refused("\xFF");             /* invalid UTF-8 */
    expect_kana_refused("\xE3\x82");         /* truncated */
    expect_kana_refused("\xC0\xAF");         /* overlong '/' */
    expect_kana_refused("ゝ");               /* iteration mark */
    expect_kana_refused("😀");
    expect_kana_refused("é");

    char out[8];
    cr_expect_eq(kz_zengin_kana(NULL, out, sizeof out, NULL), KZ_EINVAL);
    cr_expect_eq(kz_zengin_kana("A", NULL, 8, NULL), KZ_EINVAL);
}

Test(zengin, kana_every_kana_converts_to_the_bank_set)
{
    for (unsigned cp = 0x3041; cp <= 0x30FA; cp++) {
        if (cp > 0x3096 && cp < 0x30A1)
            continue; /* marks and iteration marks between the two */
        char in[4] = {(char)(0xE0 | (cp >> 12)),
                      (char)(0x80 | ((cp >> 6) & 0x3F)),
                      (char)(0x80 | (cp & 0x3F)), 0};
        char out[8];
        size_t n;
        cr_assert_eq(kz_zengin_kana(in, out, sizeof out, &n), 0, "U+%04X",
                     cp);
        cr_expect(n == 1 || n == 2, "U+%04X: %zu bytes", cp, n);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)out[i];
            /* ｦ, or ｱ..ﾟ: never a small kana (0xA7..0xAF) nor ｰ (0xB0). */
            cr_expect(c == 0xA6 || (c >= 0xB1 && c <= 0xDF),
                      "U+%04X byte %zu: 0x%02X", cp, i, c);
        }
        if (n == 2)
            cr_expect((unsigned char)out[1] == 0xDE ||
                          (unsigned char)out[1] == 0xDF,
                      "U+%04X: second byte is a mark", cp);
    }
}

Test(zengin, kana_never_writes_past_cap)
{
    /* ﾔﾏﾀﾞ: 4 bytes + NUL. */
    char buf[16];
    size_t n = 0;
    memset(buf, 'X', sizeof buf);
    cr_expect_eq(kz_zengin_kana("ヤマダ", buf, 5, &n), 0);
    cr_expect_eq(n, 4);
    cr_expect_eq(buf[4], '\0');
    cr_expect_eq(buf[5], 'X');
    for (size_t cap = 0; cap < 5; cap++) {
        memset(buf, 'X', sizeof buf);
        cr_expect_eq(kz_zengin_kana("ヤマダ", buf, cap, NULL), KZ_ETOOBIG,
                     "cap %zu", cap);
        for (size_t i = cap; i < sizeof buf; i++)
            cr_expect_eq(buf[i], 'X', "cap %zu: byte %zu written", cap, i);
    }
    /* The empty text needs its NUL. */
    cr_expect_eq(kz_zengin_kana("", buf, 0, NULL), KZ_ETOOBIG);
    cr_expect_eq(kz_zengin_kana("", buf, 1, &n), 0);
    cr_expect_eq(n, 0);
}

/* ---- refusals of the writer -------------------------------------------- */

Test(zengin, amount_over_n10_is_refused)
{
    struct kz_zengin_payee p = payee("タナカ", 10000000000LL);
    expect_refused(&header, &p, 1, "amount");
    p.amount_yen = 0;
    expect_refused(&header, &p, 1, "amount");
    p.amount_yen = -5;
    expect_refused(&header, &p, 1, "amount");

    p.amount_yen = 9999999999LL;
    char *out;
    size_t len;
    char err[256];
    cr_assert_eq(build(&p, 1, &out, &len, err, sizeof err), 0, "%s", err);
    cr_expect_eq(memcmp(out + 122 + 80, "9999999999", 10), 0);
    long long total;
    cr_expect_eq(kz_zengin_check(out, len, NULL, &total, err, sizeof err), 0);
    cr_expect_eq(total, 9999999999LL);
    free(out);
}

Test(zengin, total_over_n12_is_refused)
{
    enum { N = 101 }; /* 101 x (10^10 - 1) > 10^12 - 1 */
    struct kz_zengin_payee p[N];
    for (size_t i = 0; i < N; i++)
        p[i] = payee("タナカ", 9999999999LL);
    expect_refused(&header, p, N, "total");
    char *out;
    size_t len;
    char err[256];
    cr_expect_eq(build(p, N - 1, &out, &len, err, sizeof err), 0, "%s", err);
    free(out);
}

Test(zengin, fields_that_do_not_fit_or_convert_are_refused)
{
    struct kz_zengin_payee p[2] = {payee("タナカ", 1), payee("タナカ", 1)};
    p[1].name = "山田 太郎";
    expect_refused(&header, p, 2, "payee[1]: payee name: '山'");

    /* 30 half-width bytes fit, 31 do not (ガ counts two). */
    p[1].name = "アイウエオアイウエオアイウエオアイウエオアイウエオアイウエオ";
    char *out;
    size_t len;
    char err[256];
    cr_expect_eq(build(p, 2, &out, &len, err, sizeof err), 0, "%s", err);
    free(out);
    p[1].name = "アイウエオアイウエオアイウエオアイウエオアイウエオアイウエガ";
    expect_refused(&header, p, 2, "payee name does not fit in 30");
    p[1] = payee("", 1);
    expect_refused(&header, p, 2, "payee name is required");
    p[1] = payee(NULL, 1);
    expect_refused(&header, p, 2, "payee name is required");
    p[1] = payee("タナカ", 1);
    p[1].name = "\xE3\x82";
    expect_refused(&header, p, 2, "not valid UTF-8");

    p[1] = payee("タナカ", 1);
    p[1].account_number = "12345678";
    expect_refused(&header, p, 2, "account number");
    p[1].account_number = "12a";
    expect_refused(&header, p, 2, "account number");
    p[1].account_number = "";
    expect_refused(&header, p, 2, "account number");
    p[1].account_number = NULL;
    expect_refused(&header, p, 2, "account number");
    p[1] = payee("タナカ", 1);
    p[1].account_type = 3;
    expect_refused(&header, p, 2, "account type");
    p[1] = payee("タナカ", 1);
    p[1].bank_code = 10000;
    expect_refused(&header, p, 2, "bank code");
    p[1] = payee("タナカ", 1);
    p[1].branch_code = 1000;
    expect_refused(&header, p, 2, "branch code");
    p[1] = payee("タナカ", 1);
    p[1].bank_name = "ミツイスミトモシンタクギンコウ"; /* 15 + 1 */
    expect_refused(&header, p, 2, "bank name");
    p[1] = payee("タナカ", 1);
    p[1].customer_code2 = "12345678901";
    expect_refused(&header, p, 2, "customer code 2");
    p[1].customer_code2 = "-1";
    expect_refused(&header, p, 2, "customer code 2");

    struct kz_zengin_header h = header;
    h.requester_code = "12345678901";
    expect_refused(&h, p, 1, "requester code");
    h = header;
    h.requester_name = "木綱市";
    expect_refused(&h, p, 1, "requester name");
    h = header;
    h.requester_name = NULL;
    expect_refused(&h, p, 1, "requester name");
    static const char *const bad_dates[] = {"1301", "0230", "0431", "0000",
                                            "315",  "03155", "03a5", NULL};
    for (size_t k = 0; k < sizeof bad_dates / sizeof bad_dates[0]; k++) {
        h = header;
        h.transfer_mmdd = bad_dates[k];
        expect_refused(&h, p, 1, "transfer date");
    }
    h = header;
    h.transfer_mmdd = "0229";
    cr_expect_eq(kz_zengin_build(&h, p, 1, &out, &len, err, sizeof err), 0);
    free(out);
    h = header;
    h.account_type = 0;
    expect_refused(&h, p, 1, "account type");

    expect_refused(&header, p, 0, "payees");
    cr_expect_eq(kz_zengin_build(NULL, p, 1, &out, &len, err, sizeof err),
                 KZ_EINVAL);
    cr_expect_eq(kz_zengin_build(&header, NULL, 1, &out, &len, NULL, 0),
                 KZ_EINVAL);
}

Test(zengin, optional_names_and_codes_are_blank_or_zero)
{
    struct kz_zengin_payee p = payee("タナカ", 500);
    p.bank_name = NULL;
    p.branch_name = "";
    p.customer_code1 = "";
    char *out;
    size_t len;
    char err[256];
    cr_assert_eq(build(&p, 1, &out, &len, err, sizeof err), 0, "%s", err);
    const char *d = out + 122;
    cr_expect_eq(memcmp(d + 5, "               ", 15), 0, "bank name");
    cr_expect_eq(memcmp(d + 23, "               ", 15), 0, "branch name");
    cr_expect_eq(memcmp(d + 91, "00000000000000000000", 20), 0, "codes");
    free(out);
}

/* ---- the reader -------------------------------------------------------- */

static char *sample(size_t *len)
{
    struct kz_zengin_payee p[2] = {payee("ヤマダ タロウ", 1000000),
                                   payee("がっこう", 2500)};
    char *out;
    char err[256];
    cr_assert_eq(build(p, 2, &out, len, err, sizeof err), 0, "%s", err);
    return out;
}

static void expect_corrupt(const char *buf, size_t len, const char *what)
{
    char err[256];
    size_t count = 77;
    cr_expect_eq(kz_zengin_check(buf, len, &count, NULL, err, sizeof err),
                 KZ_ECORRUPT, "%s", what);
    cr_expect_gt(strlen(err), 0, "%s: a message", what);
}

Test(zengin, round_trip_build_check)
{
    size_t len, count;
    long long total;
    char err[256];
    char *f = sample(&len);
    cr_expect_eq(kz_zengin_check(f, len, &count, &total, err, sizeof err), 0,
                 "%s", err);
    cr_expect_eq(count, 2);
    cr_expect_eq(total, 1002500);
    free(f);
}

Test(zengin, check_refuses_what_build_never_writes)
{
    size_t len;
    char *f = sample(&len);
    char *m = malloc(len + 122);
    cr_assert_not_null(m);

    expect_corrupt(f, 0, "empty");
    expect_corrupt(f, len - 1, "short by one byte");
    expect_corrupt(f, len - 122, "no end record");
    expect_corrupt(f + 122, len - 122, "no header");

    size_t t = len - 2 * 122; /* the trailer */
    memcpy(m, f, len);
    m[t + 18] = m[t + 18] == '9' ? '8' : '9'; /* trailer total */
    expect_corrupt(m, len, "trailer total");
    memcpy(m, f, len);
    m[t + 6] = '3'; /* trailer count 000003 */
    expect_corrupt(m, len, "trailer count");
    memcpy(m, f, len);
    m[122 + 85] = '9'; /* an amount digit */
    expect_corrupt(m, len, "amount changed");
    memcpy(m, f, len);
    m[120] = '\n';
    expect_corrupt(m, len, "no CR");
    memcpy(m, f, len);
    m[122 + 50] = 'a'; /* lower case in the payee name */
    expect_corrupt(m, len, "lower case");
    memcpy(m, f, len);
    m[122 + 50] = (char)0xB0; /* ｰ: not in the bank set */
    expect_corrupt(m, len, "long vowel mark");
    memcpy(m, f, len);
    m[122 + 1] = 'X'; /* bank code */
    expect_corrupt(m, len, "letter in N field");
    memcpy(m, f, len);
    m[1] = '1'; /* type code 11 */
    expect_corrupt(m, len, "type code");
    memcpy(m, f, len);
    m[3] = '1'; /* code kind 1 (EBCDIC) */
    expect_corrupt(m, len, "code kind");
    memcpy(m, f, len);
    m[122 + 119] = 'A'; /* data filler */
    expect_corrupt(m, len, "filler");
    memcpy(m, f, len);
    m[122] = '3';
    expect_corrupt(m, len, "data kind 3");
    /* Header and first data record swapped. */
    memcpy(m, f + 122, 122);
    memcpy(m + 122, f, 122);
    memcpy(m + 244, f + 244, len - 244);
    expect_corrupt(m, len, "order");
    /* A record after the end record. */
    memcpy(m, f, len);
    memcpy(m + len, f + len - 122, 122);
    expect_corrupt(m, len + 122, "after the end");
    /* No data records at all: header, trailer 0/0, end. */
    memcpy(m, f, 122);
    memcpy(m + 122, "8000000000000000000", 19);
    memset(m + 122 + 19, ' ', 101);
    memcpy(m + 122 + 120, "\r\n", 2);
    memcpy(m + 244, f + len - 122, 122);
    expect_corrupt(m, 366, "no data");
    cr_expect_eq(kz_zengin_check(NULL, 0, NULL, NULL, NULL, 0), KZ_ECORRUPT);
    free(m);
    free(f);
}
