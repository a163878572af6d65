/*
 * zengin.h — the 全銀協 総合振込 (general transfer) file that Japanese banks
 * accept, for exporting approved payouts (DOMAIN.md §6). Pure: no storage,
 * no network, no global mutable state; safe from any thread.
 *
 * The file. Fixed 120-byte records, each followed by CR LF (122 bytes): one
 * header (kind 1), one data record per payee (kind 2), a trailer (kind 8:
 * count and total of the data records) and an end record (kind 9). Bytes are
 * JIS X 0201: ASCII plus half-width katakana 0xA1-0xDF (the single-byte part
 * of Shift_JIS, code kind 0). Number fields (N) are right-aligned and
 * zero-filled; text fields (C) left-aligned and space-filled. The field
 * layouts are the tables kz_zengin_layout() returns; the unit test checks each
 * sums to 120.
 *
 *   header  kind 1 | type code 21 | code kind 0 | requester code N10 |
 *           requester name C40 | transfer date MMDD N4 | bank N4 | bank name
 *           C15 | branch N3 | branch name C15 | account type N1 | account
 *           number N7 | filler C17
 *   data    kind 2 | bank N4 | bank name C15 | branch N3 | branch name C15 |
 *           clearing house N4 (0000) | account type N1 | account number N7 |
 *           payee name C30 | amount N10 | new code N1 | customer code 1 N10 |
 *           customer code 2 N10 | transfer kind N1 | identification C1 |
 *           filler C7
 *   trailer kind 8 | count N6 | total N12 | filler C101
 *   end     kind 9 | filler C119
 *
 * Values this module chooses (the caller does not): new code 0 (その他, the
 * usual value when the bank is not asked to flag first or changed
 * transfers), transfer kind 7 (テレ振込, electronic), identification a space
 * (customer codes, no EDI information). Absent customer codes are zeros;
 * absent bank and branch names are spaces (banks look names up by code).
 *
 * Text. Every text field is given in UTF-8 and goes through
 * kz_zengin_kana(); a text that cannot be converted or does not fit its
 * field is refused (KZ_EINVAL with the payee and field in `err`), never
 * truncated: a cut name may be refused by the bank or, worse, accepted for
 * the wrong account holder.
 *
 * Errors are codes of storage/kz_error.h.
 */
#ifndef KZ_NODE_ZENGIN_H
#define KZ_NODE_ZENGIN_H

#include <stddef.h>

#define KZ_ZENGIN_RECORD 120       /* bytes of a record, without CR LF */
#define KZ_ZENGIN_LINE 122         /* with CR LF */
#define KZ_ZENGIN_MAX_AMOUNT 9999999999LL     /* N10 */
#define KZ_ZENGIN_MAX_TOTAL 999999999999LL    /* N12 */
#define KZ_ZENGIN_MAX_COUNT 999999            /* N6 */

/* The sender: the municipality's account. Strings are NUL-terminated and
 * borrowed for the call. */
struct kz_zengin_header {
    const char *requester_code; /* 依頼人コード, 1-10 digits, from the bank */
    const char *requester_name; /* 依頼人名, UTF-8, converted (C40) */
    const char *transfer_mmdd;  /* 振込指定日, 4 digits MMDD */
    unsigned bank_code;         /* 仕向銀行 0-9999 */
    unsigned branch_code;       /* 仕向支店 0-999 */
    const char *bank_name;      /* UTF-8, converted (C15); NULL/"": spaces */
    const char *branch_name;    /* UTF-8, converted (C15); NULL/"": spaces */
    unsigned account_type;      /* 預金種目: 1 普通, 2 当座, 4 貯蓄, 9 その他 */
    const char *account_number; /* 1-7 digits */
};

/* One transfer. Same ownership and conversions as the header. */
struct kz_zengin_payee {
    unsigned bank_code;         /* 被仕向銀行 0-9999 */
    unsigned branch_code;       /* 被仕向支店 0-999 */
    const char *bank_name;      /* C15; NULL/"": spaces */
    const char *branch_name;    /* C15; NULL/"": spaces */
    unsigned account_type;      /* 1, 2, 4 or 9 */
    const char *account_number; /* 1-7 digits */
    const char *name;           /* 受取人名, any kana text (C30), required */
    long long amount_yen;       /* 1 .. KZ_ZENGIN_MAX_AMOUNT */
    const char *customer_code1; /* 0-10 digits; NULL/"": zeros */
    const char *customer_code2; /* 0-10 digits; NULL/"": zeros */
};

/*
 * Builds the whole file for n >= 1 payees (at most KZ_ZENGIN_MAX_COUNT, total
 * at most KZ_ZENGIN_MAX_TOTAL). On 0, *out is a malloc'd buffer of *len =
 * (n + 3) * 122 bytes plus a NUL after them; the caller frees it. On error
 * *out is NULL, *len 0, and the code is KZ_EINVAL (a field that is missing,
 * does not fit or cannot be converted; `err` names the record and field) or
 * KZ_ENOMEM. `err` (errlen bytes, may be NULL/0) is always NUL-terminated
 * when errlen > 0.
 */
int kz_zengin_build(const struct kz_zengin_header *h,
                    const struct kz_zengin_payee *p, size_t n, char **out,
                    size_t *len, char *err, size_t errlen);

/*
 * Converts a NUL-terminated UTF-8 text to the bank's half-width character
 * set, written NUL-terminated to `out` (caller-owned, `cap` bytes);
 * *outlen (may be NULL) is the length without the NUL.
 *
 *   katakana, hiragana, half-width katakana -> half-width katakana; voiced
 *     and semi-voiced kana split into base + ﾞ / ﾟ (ガ -> ｶﾞ, ぱ -> ﾊﾟ,
 *     ヴ -> ｳﾞ); a lone ゛ ゜ (or combining U+3099/U+309A) -> ﾞ ﾟ
 *   small kana -> large (ャ -> ﾔ, ッ -> ﾂ, ァ -> ｱ, ヮ -> ﾜ, ヵ -> ｶ, ヶ -> ｹ),
 *     as banks require; ヰ -> ｲ, ヱ -> ｴ
 *   ー ｰ and the dashes ‐ ‑ ‒ – — ― − -> '-'; ・ ･ -> '.'; ､ -> ','; ｡ -> '.';
 *     「 」 ｢ ｣ -> ｢ ｣
 *   full-width ASCII -> ASCII; a-z -> A-Z; U+3000 -> space
 *   kept as they are: space, 0-9, A-Z, and ( ) , - . /
 *   anything else (kanji, other symbols, controls, invalid UTF-8) -> KZ_EINVAL
 *
 * So the output holds only the bytes the 全銀 character set allows: 0x20,
 * ( ) , - . / 0-9 A-Z, and 0xA2-0xA3, 0xA6, 0xB1-0xDF. Returns 0; KZ_EINVAL
 * (also for NULL arguments); or KZ_ETOOBIG when the result and its NUL do not
 * fit in `cap` (nothing is ever written at or past out[cap]). On error the
 * contents of `out` are unspecified.
 */
int kz_zengin_kana(const char *utf8, char *out, size_t cap, size_t *outlen);

/*
 * Reads a file back: every record 120 bytes + CR LF; kinds 1, 2 (one or
 * more), 8, 9 in that order and nothing after; every N field digits and every
 * C field in the character set above (fillers all spaces); type code 21 and
 * code kind 0; the trailer's count and total equal the data records' count
 * and sum of amounts. Returns 0 with *count and *total (either may be NULL)
 * set, or KZ_ECORRUPT with the record number and reason in `err`. Any bytes,
 * any length: it reads only buf[0..len) and allocates nothing.
 */
int kz_zengin_check(const char *buf, size_t len, size_t *count,
                    long long *total, char *err, size_t errlen);

/* One field of a record layout: its name, its width in bytes, 'N' or 'C'. */
struct kz_zengin_field {
    const char *name;
    unsigned width;
    char type;
};

/*
 * The layout of the record of data kind `kind` (1, 2, 8 or 9): sets *fields
 * to a static table and returns its length, or 0 for any other kind. The
 * first field is always the one-digit data kind.
 */
size_t kz_zengin_layout(int kind, const struct kz_zengin_field **fields);

#endif /* KZ_NODE_ZENGIN_H */
