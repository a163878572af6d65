/*
 * name_fold.h — folding of victim names into search keys.
 *
 * Owns the one definition of "the same name" for the register's name search
 * (DOMAIN.md §1): kanji, hiragana, katakana (full or half width) and romaji in
 * any common romanisation fold to one canonical string, so a search is a
 * prefix comparison of folded strings. Nothing here touches storage or the
 * network; the functions are pure, allocation-free on the common path and
 * safe to call from any thread.
 *
 * Happy path: on apply, the record's name and name_kana go through
 * kz_node_name_keys() and each key is written to the name index; a search
 * string goes through kz_node_name_query(), and a record matches when
 *   - the whole folded query is a prefix of one of the record's keys, or
 *   - the query has two or more terms besides the whole one, and every such
 *     term is a prefix of some key of the record.
 * For 山田 太郎 / やまだ たろう this makes "山田", "太郎 山田", "ﾔﾏﾀﾞ",
 * "Yamada Taro", "taro yamada", "TAROU", "Tarō" and "ＹＡＭＡＤＡ" all match.
 *
 * Failure modes: invalid UTF-8 (including a NUL byte inside the given
 * length) and results longer than the caller's buffer are refused, never
 * truncated — a truncated key would silently match the wrong people. The
 * table of what folds to what is in name_fold.c's opening comment.
 */
#ifndef KZ_NAME_FOLD_H
#define KZ_NAME_FOLD_H

#include <stddef.h>

/* Size of one key or query term buffer, in bytes, including the NUL. */
#define KZ_NODE_NAME_KEY_MAX 128

/*
 * Folds one name token (UTF-8, `len` bytes, need not be NUL-terminated) to its
 * canonical search form, written NUL-terminated to `out` (caller-owned, `cap`
 * bytes). Separators inside the token are removed, so a whole "family given"
 * string may be passed too.
 *
 * Returns the length written (excluding the NUL), or -1 if `in` is not valid
 * UTF-8, the result plus its NUL does not fit in `cap`, `out` is NULL, or a
 * scratch allocation failed (only for inputs over a few hundred bytes).
 * `in` may be NULL when `len` is 0; the result is then "".
 * On -1 the contents of `out` are unspecified.
 */
int kz_node_name_fold(const char *in, size_t len, char *out, size_t cap);

/*
 * Index keys for one record. `name` (e.g. "山田 太郎") and `name_kana`
 * (e.g. "やまだ たろう") are NUL-terminated, tokens separated by ASCII space
 * or U+3000; either may be NULL or empty. For each of the two, in this order:
 * the folded form of each token, of all tokens concatenated in order, and of
 * all tokens concatenated in reverse order. Empty and duplicate keys are left
 * out; so is everything from a string that is not valid UTF-8, and any key
 * whose folded form does not fit in KZ_NODE_NAME_KEY_MAX. Only the first 15
 * separators split tokens; the rest of the string is the last token.
 *
 * `keys` is caller-owned, room for `max` keys. Returns the number written
 * (at most `max`; keys that do not fit are dropped, the earlier ones kept).
 */
size_t kz_node_name_keys(const char *name, const char *name_kana,
                         char (*keys)[KZ_NODE_NAME_KEY_MAX], size_t max);

/*
 * Index keys of a record's dictionary readings (Victim.name_reading: one or
 * more readings separated by '\n', see name_reading.h): the keys
 * kz_node_name_keys() makes of each reading as if it were the kana, without
 * duplicates. Same contract for `keys` and `max`; NULL or "" gives none.
 */
size_t kz_node_name_reading_keys(const char *readings,
                                 char (*keys)[KZ_NODE_NAME_KEY_MAX],
                                 size_t max);

/*
 * Query terms for the NUL-terminated search string `q`. If `q` has two or
 * more tokens (ASCII space or U+3000 between them) that fold to something,
 * their folded forms come first, in order; the folded whole of `q`
 * (separators removed) always comes last, and `*whole_index` (if not NULL)
 * is set to its index. So a result of 1 means a one-token query, and a result
 * n > 1 means n - 1 token terms that must each prefix some key of a record.
 * Only the first 15 separators split tokens, as for the keys.
 *
 * Returns the number of terms written to the caller-owned `terms` (room for
 * `max`), or 0 if `q` is NULL, not valid UTF-8, folds to "", or its whole
 * does not fit in KZ_NODE_NAME_KEY_MAX. If the token terms and the whole do
 * not all fit in `max`, only the whole is returned (index 0): a query that
 * loses terms must match fewer records, never more.
 */
size_t kz_node_name_query(const char *q, char (*terms)[KZ_NODE_NAME_KEY_MAX],
                          size_t max, size_t *whole_index);

/*
 * The common form of a variant kanji (齋 -> 斎, 髙 -> 高, ...: the table in
 * name_fold.c), or c itself. For name_reading.c, whose dictionary knows
 * only the common forms.
 */
unsigned long kz_node_kanji_common(unsigned long c);

#endif /* KZ_NAME_FOLD_H */
