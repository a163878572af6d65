/*
 * zengin.c — the 全銀協 総合振込 file (zengin.h): the kana conversion, the
 * writer and the reader.
 *
 * Layouts are data: one table of fields per record kind, indexed by the
 * enums below. The writer turns every field into its final bytes first
 * (numbers as decimal text, text through kz_zengin_kana) and then pads them
 * into the record by the table (N: zeros on the left, C: spaces on the
 * right); a value wider than its field is an error, never truncated. The
 * reader walks the same tables, so the two cannot disagree on an offset.
 *
 * Failure modes: a field that is missing, not digits, out of range, not
 * convertible or too wide (KZ_EINVAL, message naming record and field);
 * malloc failing (KZ_ENOMEM); for the reader, anything not exactly the shape
 * the writer produces (KZ_ECORRUPT).
 */
#include "zengin.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz_error.h"
#include "utf8.h"

/* ---- layouts ----------------------------------------------------------- */

enum {
    H_KIND, H_TYPE, H_CODE_KIND, H_REQ_CODE, H_REQ_NAME, H_DATE, H_BANK,
    H_BANK_NAME, H_BRANCH, H_BRANCH_NAME, H_ACC_TYPE, H_ACC_NUM, H_FILLER,
    H_COUNT
};
static const struct kz_zengin_field header_layout[H_COUNT] = {
    [H_KIND] = {"data kind", 1, 'N'},
    [H_TYPE] = {"type code", 2, 'N'},
    [H_CODE_KIND] = {"code kind", 1, 'N'},
    [H_REQ_CODE] = {"requester code", 10, 'N'},
    [H_REQ_NAME] = {"requester name", 40, 'C'},
    [H_DATE] = {"transfer date", 4, 'N'},
    [H_BANK] = {"bank code", 4, 'N'},
    [H_BANK_NAME] = {"bank name", 15, 'C'},
    [H_BRANCH] = {"branch code", 3, 'N'},
    [H_BRANCH_NAME] = {"branch name", 15, 'C'},
    [H_ACC_TYPE] = {"account type", 1, 'N'},
    [H_ACC_NUM] = {"account number", 7, 'N'},
    [H_FILLER] = {"filler", 17, 'C'},
};

enum {
    D_KIND, D_BANK, D_BANK_NAME, D_BRANCH, D_BRANCH_NAME, D_CLEARING,
    D_ACC_TYPE, D_ACC_NUM, D_NAME, D_AMOUNT, D_NEW_CODE, D_CUST1, D_CUST2,
    D_TRANSFER_KIND, D_IDENT, D_FILLER, D_COUNT
};
static const struct kz_zengin_field data_layout[D_COUNT] = {
    [D_KIND] = {"data kind", 1, 'N'},
    [D_BANK] = {"bank code", 4, 'N'},
    [D_BANK_NAME] = {"bank name", 15, 'C'},
    [D_BRANCH] = {"branch code", 3, 'N'},
    [D_BRANCH_NAME] = {"branch name", 15, 'C'},
    [D_CLEARING] = {"clearing house", 4, 'N'},
    [D_ACC_TYPE] = {"account type", 1, 'N'},
    [D_ACC_NUM] = {"account number", 7, 'N'},
    [D_NAME] = {"payee name", 30, 'C'},
    [D_AMOUNT] = {"amount", 10, 'N'},
    [D_NEW_CODE] = {"new code", 1, 'N'},
    [D_CUST1] = {"customer code 1", 10, 'N'},
    [D_CUST2] = {"customer code 2", 10, 'N'},
    [D_TRANSFER_KIND] = {"transfer kind", 1, 'N'},
    [D_IDENT] = {"identification", 1, 'C'},
    [D_FILLER] = {"filler", 7, 'C'},
};

enum { T_KIND, T_NUM, T_TOTAL, T_FILLER, T_COUNT };
static const struct kz_zengin_field trailer_layout[T_COUNT] = {
    [T_KIND] = {"data kind", 1, 'N'},
    [T_NUM] = {"count", 6, 'N'},
    [T_TOTAL] = {"total amount", 12, 'N'},
    [T_FILLER] = {"filler", 101, 'C'},
};

enum { E_KIND, E_FILLER, E_COUNT };
static const struct kz_zengin_field end_layout[E_COUNT] = {
    [E_KIND] = {"data kind", 1, 'N'},
    [E_FILLER] = {"filler", 119, 'C'},
};

size_t kz_zengin_layout(int kind, const struct kz_zengin_field **fields)
{
    switch (kind) {
    case 1: *fields = header_layout; return H_COUNT;
    case 2: *fields = data_layout; return D_COUNT;
    case 8: *fields = trailer_layout; return T_COUNT;
    case 9: *fields = end_layout; return E_COUNT;
    default: *fields = NULL; return 0;
    }
}

/* Values this module fixes (zengin.h). */
#define TYPE_CODE "21"   /* 総合振込 */
#define CODE_KIND "0"    /* JIS (Shift_JIS single-byte) */
#define CLEARING "0000"  /* no clearing house */
#define NEW_CODE "0"     /* その他 */
#define TRANSFER_KIND "7" /* テレ振込 */
#define IDENT " "        /* customer codes, no EDI */

/* ---- messages ---------------------------------------------------------- */

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- the character set ------------------------------------------------- */

/* Whether byte c may appear in a C field: space, ( ) , - . / 0-9 A-Z, ｢ ｣ ｦ
 * and ｱ..ﾝ ﾞ ﾟ. */
static bool allowed_byte(unsigned char c)
{
    return c == ' ' || c == '(' || c == ')' || c == ',' || c == '-' ||
           c == '.' || c == '/' || (c >= '0' && c <= '9') ||
           (c >= 'A' && c <= 'Z') || c == 0xA2 || c == 0xA3 || c == 0xA6 ||
           (c >= 0xB1 && c <= 0xDF);
}

#define DAKUTEN 0xDE    /* ﾞ */
#define HANDAKUTEN 0xDF /* ﾟ */

/* U+30A1 ァ .. U+30FA ヺ, in order, as the half-width text a bank wants:
 * small kana written large, voiced kana split. (Hiragana U+3041..U+3096 are
 * the same list 0x60 lower.) Decoded to JIS X 0201 bytes by kana_bytes(). */
static const char *const katakana[] = {
    "ｱ", "ｱ", "ｲ", "ｲ", "ｳ", "ｳ", "ｴ", "ｴ", "ｵ", "ｵ",          /* ァ..オ */
    "ｶ", "ｶﾞ", "ｷ", "ｷﾞ", "ｸ", "ｸﾞ", "ｹ", "ｹﾞ", "ｺ", "ｺﾞ",    /* カ..ゴ */
    "ｻ", "ｻﾞ", "ｼ", "ｼﾞ", "ｽ", "ｽﾞ", "ｾ", "ｾﾞ", "ｿ", "ｿﾞ",    /* サ..ゾ */
    "ﾀ", "ﾀﾞ", "ﾁ", "ﾁﾞ", "ﾂ", "ﾂ", "ﾂﾞ", "ﾃ", "ﾃﾞ", "ﾄ", "ﾄﾞ", /* タ..ド */
    "ﾅ", "ﾆ", "ﾇ", "ﾈ", "ﾉ",                                    /* ナ..ノ */
    "ﾊ", "ﾊﾞ", "ﾊﾟ", "ﾋ", "ﾋﾞ", "ﾋﾟ", "ﾌ", "ﾌﾞ", "ﾌﾟ",          /* ハ..プ */
    "ﾍ", "ﾍﾞ", "ﾍﾟ", "ﾎ", "ﾎﾞ", "ﾎﾟ",                           /* ヘ..ポ */
    "ﾏ", "ﾐ", "ﾑ", "ﾒ", "ﾓ",                                    /* マ..モ */
    "ﾔ", "ﾔ", "ﾕ", "ﾕ", "ﾖ", "ﾖ",                               /* ャ..ヨ */
    "ﾗ", "ﾘ", "ﾙ", "ﾚ", "ﾛ",                                    /* ラ..ロ */
    "ﾜ", "ﾜ", "ｲ", "ｴ", "ｦ", "ﾝ",                               /* ヮ..ン */
    "ｳﾞ", "ｶ", "ｹ", "ﾜﾞ", "ｲﾞ", "ｴﾞ", "ｦﾞ",                     /* ヴ..ヺ */
};
#define KATAKANA_FIRST 0x30A1u
#define KATAKANA_LAST 0x30FAu
_Static_assert(sizeof katakana / sizeof katakana[0] ==
                   KATAKANA_LAST - KATAKANA_FIRST + 1,
               "one entry per code point U+30A1..U+30FA");

/* Half-width small kana U+FF67 ｧ .. U+FF6F ｯ, written large. */
static const unsigned char small_halfwidth[9] = {
    0xB1, 0xB2, 0xB3, 0xB4, 0xB5, /* ｱ ｲ ｳ ｴ ｵ */
    0xD4, 0xD5, 0xD6, 0xC2,       /* ﾔ ﾕ ﾖ ﾂ */
};

/* The JIS X 0201 bytes of a katakana[] entry (UTF-8 of U+FF61..U+FF9F,
 * each byte = code point - 0xFEC0). Returns the count, 1 or 2. */
static size_t kana_bytes(const char *s, unsigned char b[2])
{
    size_t len = strlen(s), i = 0, n = 0;
    uint32_t cp;
    while (i < len && n < 2 && kz_utf8_decode((const unsigned char *)s, len, &i,
                                              &cp) == 0)
        b[n++] = (unsigned char)(cp - 0xFEC0u);
    return n;
}

/* What an ASCII character becomes: itself, upper case, or nothing (0). */
static unsigned char ascii_byte(uint32_t c)
{
    if (c >= 'a' && c <= 'z')
        return (unsigned char)(c - 'a' + 'A');
    return c < 0x80 && allowed_byte((unsigned char)c) ? (unsigned char)c : 0;
}

/* Maps one code point to 1 or 2 output bytes; 0 = not convertible. */
static size_t map_cp(uint32_t cp, unsigned char b[2])
{
    if (cp < 0x80) {
        b[0] = ascii_byte(cp);
        return b[0] != 0;
    }
    if (cp >= 0xFF01 && cp <= 0xFF5E) { /* full-width ASCII */
        b[0] = ascii_byte(cp - 0xFEE0u);
        return b[0] != 0;
    }
    if (cp >= KATAKANA_FIRST && cp <= KATAKANA_LAST)
        return kana_bytes(katakana[cp - KATAKANA_FIRST], b);
    if (cp >= 0x3041 && cp <= 0x3096) /* hiragana ぁ..ゖ */
        return kana_bytes(katakana[cp + 0x60 - KATAKANA_FIRST], b);
    if (cp >= 0xFF67 && cp <= 0xFF6F) {
        b[0] = small_halfwidth[cp - 0xFF67];
        return 1;
    }
    if (cp == 0xFF66 || (cp >= 0xFF71 && cp <= 0xFF9F)) { /* ｦ, ｱ..ﾟ */
        b[0] = (unsigned char)(cp - 0xFEC0u);
        return 1;
    }
    switch (cp) {
    case 0x3000: b[0] = ' '; return 1;
    case 0x3099: case 0x309B: b[0] = DAKUTEN; return 1;
    case 0x309A: case 0x309C: b[0] = HANDAKUTEN; return 1;
    case 0x30FC: case 0xFF70: case 0x2010: case 0x2011: case 0x2012:
    case 0x2013: case 0x2014: case 0x2015: case 0x2212:
        b[0] = '-'; return 1;
    case 0x30FB: case 0xFF65: case 0xFF61: b[0] = '.'; return 1;
    case 0xFF64: b[0] = ','; return 1;
    case 0x300C: case 0xFF62: b[0] = 0xA2; return 1;
    case 0x300D: case 0xFF63: b[0] = 0xA3; return 1;
    default: return 0;
    }
}

/* kz_zengin_kana, plus where it stopped on KZ_EINVAL: *bad_at is the byte
 * offset of the character, *bad_len its UTF-8 length (0: invalid UTF-8). */
static int kana_convert(const char *utf8, char *out, size_t cap,
                        size_t *outlen, size_t *bad_at, size_t *bad_len)
{
    const unsigned char *p = (const unsigned char *)utf8;
    size_t len = strlen(utf8), i = 0, o = 0;
    while (i < len) {
        size_t at = i;
        uint32_t cp;
        unsigned char b[2];
        size_t nb = 0;
        if (kz_utf8_decode(p, len, &i, &cp) == 0)
            nb = map_cp(cp, b);
        if (nb == 0) {
            *bad_at = at;
            *bad_len = i > at ? i - at : 0;
            return KZ_EINVAL;
        }
        if (cap - o <= nb) /* o < cap always: room for these and the NUL? */
            return KZ_ETOOBIG;
        memcpy(out + o, b, nb);
        o += nb;
    }
    if (o >= cap)
        return KZ_ETOOBIG;
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return 0;
}

int kz_zengin_kana(const char *utf8, char *out, size_t cap, size_t *outlen)
{
    size_t bad_at, bad_len;
    if (utf8 == NULL || out == NULL)
        return KZ_EINVAL;
    return kana_convert(utf8, out, cap, outlen, &bad_at, &bad_len);
}

/* ---- the writer -------------------------------------------------------- */

/* The longest field is C40; every value is prepared in one of these. */
#define VALUE_MAX 48

struct values {
    char v[D_COUNT][VALUE_MAX]; /* D_COUNT is the largest field count */
};
_Static_assert((int)H_COUNT <= (int)D_COUNT && (int)T_COUNT <= (int)D_COUNT &&
                   (int)E_COUNT <= (int)D_COUNT,
               "struct values holds every record's fields");

static bool all_digits(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Text field: converted, must fit `width`. NULL/"" is "" unless required. */
static int text_value(const char *what, const struct kz_zengin_field *f,
                      const char *utf8, bool required, char *dst, char *err,
                      size_t errlen)
{
    if (utf8 == NULL || utf8[0] == '\0') {
        if (required) {
            say(err, errlen, "%s: %s is required", what, f->name);
            return KZ_EINVAL;
        }
        dst[0] = '\0';
        return 0;
    }
    size_t bad_at = 0, bad_len = 0;
    int rc = kana_convert(utf8, dst, (size_t)f->width + 1, NULL, &bad_at,
                          &bad_len);
    if (rc == KZ_ETOOBIG) {
        say(err, errlen, "%s: %s does not fit in %u half-width characters",
            what, f->name, f->width);
        return KZ_EINVAL;
    }
    if (rc != 0 && bad_len == 0) {
        say(err, errlen, "%s: %s is not valid UTF-8 (byte %zu)", what,
            f->name, bad_at);
        return KZ_EINVAL;
    }
    if (rc != 0) {
        say(err, errlen,
            "%s: %s: '%.*s' (byte %zu) has no half-width form the bank "
            "accepts (write the name in kana)",
            what, f->name, (int)bad_len, utf8 + bad_at, bad_at);
        return KZ_EINVAL;
    }
    return 0;
}

/* Digit-string field: 1..width digits (0..width if !required; "" is
 * zeros). */
static int digits_value(const char *what, const struct kz_zengin_field *f,
                        const char *s, bool required, char *dst, char *err,
                        size_t errlen)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if ((required && n == 0) || n > f->width || !all_digits(s)) {
        say(err, errlen, "%s: %s must be %s%u digits", what, f->name,
            required ? "1 to " : "at most ", f->width);
        return KZ_EINVAL;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

/* Number field: 0..max, written in decimal. */
static int number_value(const char *what, const struct kz_zengin_field *f,
                        long long v, long long min, long long max, char *dst,
                        char *err, size_t errlen)
{
    if (v < min || v > max) {
        say(err, errlen, "%s: %s %lld is out of range %lld..%lld", what,
            f->name, v, min, max);
        return KZ_EINVAL;
    }
    snprintf(dst, VALUE_MAX, "%lld", v);
    return 0;
}

static int account_type_value(const char *what,
                              const struct kz_zengin_field *f, unsigned t,
                              char *dst, char *err, size_t errlen)
{
    if (t != 1 && t != 2 && t != 4 && t != 9) {
        say(err, errlen, "%s: %s must be 1, 2, 4 or 9 (got %u)", what,
            f->name, t);
        return KZ_EINVAL;
    }
    snprintf(dst, VALUE_MAX, "%u", t);
    return 0;
}

/* Lays prepared values into one record of 120 bytes + CR LF at rec. The
 * values were checked to fit by the *_value helpers. */
static void lay(char *rec, const struct kz_zengin_field *layout, size_t nf,
                const struct values *v)
{
    size_t at = 0;
    for (size_t i = 0; i < nf; i++) {
        const struct kz_zengin_field *f = &layout[i];
        size_t n = strlen(v->v[i]);
        if (f->type == 'N') {
            memset(rec + at, '0', f->width - n);
            memcpy(rec + at + f->width - n, v->v[i], n);
        } else {
            memcpy(rec + at, v->v[i], n);
            memset(rec + at + n, ' ', f->width - n);
        }
        at += f->width;
    }
    rec[KZ_ZENGIN_RECORD] = '\r';
    rec[KZ_ZENGIN_RECORD + 1] = '\n';
}

static void set(struct values *v, size_t i, const char *s)
{
    snprintf(v->v[i], VALUE_MAX, "%s", s);
}

static int prepare_header(const struct kz_zengin_header *h, struct values *v,
                          char *err, size_t errlen)
{
    const char *w = "header";
    const struct kz_zengin_field *L = header_layout;
    memset(v, 0, sizeof *v);
    set(v, H_KIND, "1");
    set(v, H_TYPE, TYPE_CODE);
    set(v, H_CODE_KIND, CODE_KIND);
    set(v, H_FILLER, "");
    int rc;
    if ((rc = digits_value(w, &L[H_REQ_CODE], h->requester_code, true,
                           v->v[H_REQ_CODE], err, errlen)) != 0 ||
        (rc = text_value(w, &L[H_REQ_NAME], h->requester_name, true,
                         v->v[H_REQ_NAME], err, errlen)) != 0 ||
        (rc = number_value(w, &L[H_BANK], h->bank_code, 0, 9999,
                           v->v[H_BANK], err, errlen)) != 0 ||
        (rc = text_value(w, &L[H_BANK_NAME], h->bank_name, false,
                         v->v[H_BANK_NAME], err, errlen)) != 0 ||
        (rc = number_value(w, &L[H_BRANCH], h->branch_code, 0, 999,
                           v->v[H_BRANCH], err, errlen)) != 0 ||
        (rc = text_value(w, &L[H_BRANCH_NAME], h->branch_name, false,
                         v->v[H_BRANCH_NAME], err, errlen)) != 0 ||
        (rc = account_type_value(w, &L[H_ACC_TYPE], h->account_type,
                                 v->v[H_ACC_TYPE], err, errlen)) != 0 ||
        (rc = digits_value(w, &L[H_ACC_NUM], h->account_number, true,
                           v->v[H_ACC_NUM], err, errlen)) != 0)
        return rc;

    /* MMDD: a day that exists in some year (02-29 included). */
    static const int mdays[12] = {31, 29, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    const char *d = h->transfer_mmdd;
    int mm = 0, dd = 0;
    if (d != NULL && strlen(d) == 4 && all_digits(d)) {
        mm = (d[0] - '0') * 10 + (d[1] - '0');
        dd = (d[2] - '0') * 10 + (d[3] - '0');
    }
    if (mm < 1 || mm > 12 || dd < 1 || dd > mdays[mm - 1]) {
        say(err, errlen, "header: transfer date must be MMDD, a real day");
        return KZ_EINVAL;
    }
    set(v, H_DATE, d);
    return 0;
}

static int prepare_data(const struct kz_zengin_payee *p, size_t index,
                        struct values *v, char *err, size_t errlen)
{
    char w[32];
    snprintf(w, sizeof w, "payee[%zu]", index);
    const struct kz_zengin_field *L = data_layout;
    memset(v, 0, sizeof *v);
    set(v, D_KIND, "2");
    set(v, D_CLEARING, CLEARING);
    set(v, D_NEW_CODE, NEW_CODE);
    set(v, D_TRANSFER_KIND, TRANSFER_KIND);
    set(v, D_IDENT, IDENT);
    set(v, D_FILLER, "");
    int rc;
    if ((rc = number_value(w, &L[D_BANK], p->bank_code, 0, 9999,
                           v->v[D_BANK], err, errlen)) != 0 ||
        (rc = text_value(w, &L[D_BANK_NAME], p->bank_name, false,
                         v->v[D_BANK_NAME], err, errlen)) != 0 ||
        (rc = number_value(w, &L[D_BRANCH], p->branch_code, 0, 999,
                           v->v[D_BRANCH], err, errlen)) != 0 ||
        (rc = text_value(w, &L[D_BRANCH_NAME], p->branch_name, false,
                         v->v[D_BRANCH_NAME], err, errlen)) != 0 ||
        (rc = account_type_value(w, &L[D_ACC_TYPE], p->account_type,
                                 v->v[D_ACC_TYPE], err, errlen)) != 0 ||
        (rc = digits_value(w, &L[D_ACC_NUM], p->account_number, true,
                           v->v[D_ACC_NUM], err, errlen)) != 0 ||
        (rc = text_value(w, &L[D_NAME], p->name, true, v->v[D_NAME], err,
                         errlen)) != 0 ||
        (rc = number_value(w, &L[D_AMOUNT], p->amount_yen, 1,
                           KZ_ZENGIN_MAX_AMOUNT, v->v[D_AMOUNT], err,
                           errlen)) != 0 ||
        (rc = digits_value(w, &L[D_CUST1], p->customer_code1, false,
                           v->v[D_CUST1], err, errlen)) != 0 ||
        (rc = digits_value(w, &L[D_CUST2], p->customer_code2, false,
                           v->v[D_CUST2], err, errlen)) != 0)
        return rc;
    return 0;
}

int kz_zengin_build(const struct kz_zengin_header *h,
                    const struct kz_zengin_payee *p, size_t n, char **out,
                    size_t *len, char *err, size_t errlen)
{
    struct values v;
    char *buf = NULL;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    say(err, errlen, "%s", "");
    if (h == NULL || (p == NULL && n > 0) || out == NULL || len == NULL) {
        say(err, errlen, "missing argument");
        return KZ_EINVAL;
    }
    if (n == 0 || n > KZ_ZENGIN_MAX_COUNT) {
        say(err, errlen, "the file needs 1 to %d payees (got %zu)",
            KZ_ZENGIN_MAX_COUNT, n);
        return KZ_EINVAL;
    }

    size_t total_len = (n + 3) * KZ_ZENGIN_LINE;
    buf = malloc(total_len + 1);
    if (buf == NULL) {
        say(err, errlen, "out of memory for %zu bytes", total_len + 1);
        return KZ_ENOMEM;
    }
    char *rec = buf;

    if ((rc = prepare_header(h, &v, err, errlen)) != 0)
        goto err_after_alloc;
    lay(rec, header_layout, H_COUNT, &v);
    rec += KZ_ZENGIN_LINE;

    long long total = 0;
    for (size_t i = 0; i < n; i++) {
        if ((rc = prepare_data(&p[i], i, &v, err, errlen)) != 0)
            goto err_after_alloc;
        /* Each amount <= 10^10 - 1 and the total is checked as it grows, so
         * this never overflows. */
        total += p[i].amount_yen;
        if (total > KZ_ZENGIN_MAX_TOTAL) {
            say(err, errlen, "payee[%zu]: the total exceeds %lld yen (N12)",
                i, KZ_ZENGIN_MAX_TOTAL);
            rc = KZ_EINVAL;
            goto err_after_alloc;
        }
        lay(rec, data_layout, D_COUNT, &v);
        rec += KZ_ZENGIN_LINE;
    }

    memset(&v, 0, sizeof v);
    set(&v, T_KIND, "8");
    snprintf(v.v[T_NUM], VALUE_MAX, "%zu", n);
    snprintf(v.v[T_TOTAL], VALUE_MAX, "%lld", total);
    lay(rec, trailer_layout, T_COUNT, &v);
    rec += KZ_ZENGIN_LINE;

    memset(&v, 0, sizeof v);
    set(&v, E_KIND, "9");
    lay(rec, end_layout, E_COUNT, &v);
    rec += KZ_ZENGIN_LINE;
    *rec = '\0';

    *out = buf;
    *len = total_len;
    return 0;

err_after_alloc:
    free(buf);
    return rc;
}

/* ---- the reader -------------------------------------------------------- */

/* Offset of field i of a layout. */
static size_t offset_of(const struct kz_zengin_field *layout, size_t i)
{
    size_t at = 0;
    for (size_t k = 0; k < i; k++)
        at += layout[k].width;
    return at;
}

/* Checks every field of one record against its layout. */
static bool check_fields(const unsigned char *rec,
                         const struct kz_zengin_field *layout, size_t nf,
                         size_t line, char *err, size_t errlen)
{
    size_t at = 0;
    for (size_t i = 0; i < nf; i++) {
        const struct kz_zengin_field *f = &layout[i];
        bool filler = strcmp(f->name, "filler") == 0;
        for (size_t k = 0; k < f->width; k++) {
            unsigned char c = rec[at + k];
            bool ok = f->type == 'N' ? c >= '0' && c <= '9'
                      : filler       ? c == ' '
                                     : allowed_byte(c);
            if (!ok) {
                say(err, errlen, "record %zu: %s: byte 0x%02X at column %zu",
                    line, f->name, c, at + k + 1);
                return false;
            }
        }
        at += f->width;
    }
    return true;
}

/* The value of an N field (at most 12 digits, checked to be digits). */
static long long number_at(const unsigned char *rec,
                           const struct kz_zengin_field *layout, size_t i)
{
    const unsigned char *s = rec + offset_of(layout, i);
    long long v = 0;
    for (unsigned k = 0; k < layout[i].width; k++)
        v = v * 10 + (s[k] - '0');
    return v;
}

static bool field_is(const unsigned char *rec,
                     const struct kz_zengin_field *layout, size_t i,
                     const char *want)
{
    return memcmp(rec + offset_of(layout, i), want, layout[i].width) == 0;
}

int kz_zengin_check(const char *buf, size_t len, size_t *count,
                    long long *total, char *err, size_t errlen)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t lines, data = 0;
    long long sum = 0;

    say(err, errlen, "%s", "");
    if (buf == NULL && len > 0) {
        say(err, errlen, "no buffer");
        return KZ_ECORRUPT;
    }
    if (len % KZ_ZENGIN_LINE != 0) {
        say(err, errlen, "length %zu is not a multiple of %d", len,
            KZ_ZENGIN_LINE);
        return KZ_ECORRUPT;
    }
    lines = len / KZ_ZENGIN_LINE;
    if (lines < 4) {
        say(err, errlen, "%zu records: a file has at least 4", lines);
        return KZ_ECORRUPT;
    }

    for (size_t r = 0; r < lines; r++) {
        const unsigned char *rec = b + r * KZ_ZENGIN_LINE;
        size_t line = r + 1;
        if (rec[KZ_ZENGIN_RECORD] != '\r' || rec[KZ_ZENGIN_RECORD + 1] != '\n') {
            say(err, errlen, "record %zu does not end in CR LF at byte 121",
                line);
            return KZ_ECORRUPT;
        }
        /* What may come here: 1 first, then 2s, then 8, then 9 last. */
        int want = r == 0 ? 1 : r == lines - 1 ? 9 : r == lines - 2 ? 8 : 2;
        if (rec[0] != '0' + want) {
            say(err, errlen, "record %zu: data kind '%c' where %d belongs",
                line, rec[0] >= 0x20 && rec[0] < 0x7F ? rec[0] : '?', want);
            return KZ_ECORRUPT;
        }
        const struct kz_zengin_field *layout;
        size_t nf = kz_zengin_layout(want, &layout);
        if (!check_fields(rec, layout, nf, line, err, errlen))
            return KZ_ECORRUPT;

        switch (want) {
        case 1:
            if (!field_is(rec, layout, H_TYPE, TYPE_CODE) ||
                !field_is(rec, layout, H_CODE_KIND, CODE_KIND)) {
                say(err, errlen, "record 1: not a 総合振込 header (type code "
                                 "21, code kind 0)");
                return KZ_ECORRUPT;
            }
            break;
        case 2:
            /* At most 999,999 records of < 10^10 yen each: the sum stays
             * below 10^16, far from overflowing. */
            if (data >= KZ_ZENGIN_MAX_COUNT) {
                say(err, errlen, "more than %d data records",
                    KZ_ZENGIN_MAX_COUNT);
                return KZ_ECORRUPT;
            }
            data++;
            sum += number_at(rec, layout, D_AMOUNT);
            break;
        case 8:
            if ((size_t)number_at(rec, layout, T_NUM) != data ||
                number_at(rec, layout, T_TOTAL) != sum) {
                say(err, errlen,
                    "trailer says %lld records, %lld yen; the file has %zu, "
                    "%lld yen",
                    number_at(rec, layout, T_NUM),
                    number_at(rec, layout, T_TOTAL), data, sum);
                return KZ_ECORRUPT;
            }
            break;
        default:
            break;
        }
    }
    if (count != NULL)
        *count = data;
    if (total != NULL)
        *total = sum;
    return 0;
}
