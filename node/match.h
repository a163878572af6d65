/*
 * match.h — canonical forms of the name in kana and the address, for
 * matching an organisation's "four basic facts" against the register when a
 * link code is issued (DOMAIN.md §2, issuance step 3).
 *
 * The rule for the caller: two facts match when their canonical forms are
 * byte-equal (date of birth and sex are compared as the structured values
 * they are; they do not go through here). Both functions are pure: no
 * storage, no network, no global state, safe from any thread. The kana fold
 * never allocates; the address fold uses the stack for inputs up to 768
 * bytes and one malloc() beyond that.
 *
 * Folding is idempotent, f(f(x)) == f(x), so a canonical form may itself be
 * stored and folded again. The unit test checks it over every test input and
 * tests/fuzz/fuzz_match.c over arbitrary bytes.
 *
 * Design stance. An issuance that matches the wrong person hands a stranger
 * a link to a victim's data; one that matches nobody sends the organisation
 * to the counter. So only variation that is pure notation is folded (width,
 * script of the same kana, separators, how a number is written); anything
 * that could be a different spelling of a different name is kept apart.
 *
 * kz_node_match_kana — folded:
 *   - hiragana -> katakana; half-width katakana -> full width; a dakuten or
 *     handakuten (combining U+3099/U+309A, spacing ゛゜, half-width ﾞﾟ) is
 *     composed with the kana before it (ｶﾞ, か+U+3099, カ゛ -> ガ; ｳﾞ -> ヴ;
 *     ﾜﾞ -> ヷ); a mark that composes with nothing is kept as ゛ or ゜
 *   - ヵ -> カ, ヶ -> ケ (and the hiragana ゕ ゖ)
 *   - ゝ ヽ after a kana -> that kana unvoiced; ゞ ヾ -> that kana voiced
 *     (すゞき = スズキ); with no kana before (or none to voice) they stay ヽ ヾ
 *   - white space (ASCII space, tab, CR, LF, VT, FF, U+00A0, U+3000) and the
 *     middle dots ・ ･ removed
 *   - ー and its look-alikes - ‐ ‑ ‒ – — ― ⁃ − ﹣ － ｰ -> ー (kept, not
 *     removed: サトー and サトウ stay different)
 *   - full-width ASCII -> ASCII; A-Z -> a-z
 * kz_node_match_kana — deliberately NOT folded:
 *   - small kana other than ヵ ヶ: キャ ≠ キヤ, ショウ ≠ シヨウ (bank-style data
 *     with large kana only will not match; that is a spelling, not notation)
 *   - ヂ/ジ, ヅ/ズ, ヲ/オ, ヰ/イ, ヱ/エ, ヴ/ブ, long vowel ー vs ウ/オ: all are
 *     spellings a family may insist on
 *   - kanji and everything else: kept as it is (no romaji reading, no variant
 *     kanji; that is name_fold.h's business for search, not for matching)
 *
 * kz_node_match_address — folded, in this order:
 *   1. characters: full-width ASCII -> ASCII, A-Z -> a-z; half-width
 *      katakana -> full width with marks composed as above (hiragana and
 *      katakana are otherwise NOT folded to each other: つくば ≠ ツクバ);
 *      the dashes - ‐ ‑ ‒ – — ― ⁃ − ﹣ － -> '-'; ｰ -> ー; 〶 -> 〒
 *   2. kanji numerals 〇 零 一..九 十 百 千 -> arabic digits, wherever they
 *      are (place names too: 一番町 -> 1番町, 千代田 -> 1000代田; both sides
 *      fold alike, so this only ever equates a name with itself). A run with
 *      十百千 reads as a number below 10000 (二十三 -> 23, 十 -> 10, 百五 ->
 *      105, 二千〇五 -> 2005); a run of digits alone reads place by place
 *      (二〇二三 -> 2023, 一〇五 -> 105). A run that is no well-formed
 *      number is read greedily as several (十十 -> 1010). 万 and the formal
 *      numerals 壱弐参拾 are not read.
 *   3. the marker 大字 (ōaza) is removed; 字 alone is kept, because it also
 *      occurs inside names (十文字) and dropping it could equate them
 *   4. white space and the middle dots ・ ･: between two digits they become
 *      '-' ("1-2-3 101" -> "1-2-3-101", so "12" never equals "1 2");
 *      anywhere else they are removed
 *   5. ヶ ヵ ケ ゖ ゕ が ガ between two kanji or digits -> ケ (霞ヶ関 = 霞ケ関 =
 *      霞が関, 三ヶ日 = 3ケ日); の ノ likewise -> ノ (井の頭 = 井ノ頭). Outside
 *      that context they are kept as they are.
 *   6. numbers: after a run of digits, any sequence of '-', ー, 丁目, 番地,
 *      番, 号, の, ノ that is followed by another digit becomes one '-':
 *      "1丁目2番地3号", "1丁目2番3号", "1丁目2-3", "1-2-3", "1−2−3",
 *      "1の2の3", "123番地の4" -> "1-2-3" / "123-4". Not followed by a digit,
 *      丁目 番地 番 号 are dropped ("3丁目" -> "3", "12番地" -> "12") except a
 *      last 番 or 号 that is part of a word: 番町 番丁 番館 番街, 号室 号棟
 *      号館 号線 号地 号埋 (一番町 -> 1番町, 101号室 stays). The dashes, ー,
 *      の and ノ there are kept, as '-' for the dashes and ー.
 *   7. a leading 〒 and a leading postcode (ddd-dddd, any dash; after 〒
 *      also ddddddd) are removed, repeatedly, with the white space around
 *      them: before step 4, so that "〒100-0013 1-2-3" -> "1-2-3", and again
 *      after step 6, so that no canonical form starts with one
 * kz_node_match_address — deliberately NOT folded:
 *   - different kanji are never equated (no variant or old forms: 邊 ≠ 辺)
 *   - nothing is inferred or completed: a missing prefecture, city, 大字 name
 *     or 字 name is a different address ("千代田区1-1" ≠ "東京都千代田区1-1")
 *   - 条 線 地割 and the like are kept as written, as are floor and room
 *     words (5F, 5階, 号室)
 *   - a dash or ー that follows kana is not a long vowel or a separator
 *     decision: '-' stays '-', ー stays ー (センタ- ≠ センター)
 *   - no Unicode normalisation beyond the above (input is expected in NFC,
 *     except for the kana marks, which are composed)
 *
 * Failure modes (both functions): invalid UTF-8 (overlong forms, surrogates,
 * truncated sequences, bytes that never occur) and a NUL byte inside `len`
 * are refused, as is a result that does not fit the caller's buffer: nothing
 * is ever truncated, since a truncated form could match another person.
 */
#ifndef KZ_NODE_MATCH_H
#define KZ_NODE_MATCH_H

#include <stddef.h>

/* Output buffer size that holds any realistic canonical form, in bytes,
 * including the NUL. */
#define KZ_NODE_MATCH_MAX 512

/*
 * Canonical form of a name in kana (see the opening comment). `in` is UTF-8,
 * `len` bytes, need not be NUL-terminated; it may be NULL when `len` is 0.
 * The result is written NUL-terminated to `out`, which the caller owns and
 * which has room for `cap` bytes.
 *
 * Returns the length written (excluding the NUL; 0 for an input that folds
 * to nothing), or -1 if `in` is not valid UTF-8 or holds a NUL, the result
 * plus its NUL does not fit in `cap`, or `out` is NULL. On -1 the contents
 * of `out` are unspecified.
 */
int kz_node_match_kana(const char *in, size_t len, char *out, size_t cap);

/*
 * Canonical form of a Japanese address (see the opening comment). Same
 * arguments, ownership and return convention as kz_node_match_kana; in
 * addition -1 if an input longer than 768 bytes needs a scratch buffer and
 * malloc() fails.
 */
int kz_node_match_address(const char *in, size_t len, char *out, size_t cap);

#endif /* KZ_NODE_MATCH_H */
