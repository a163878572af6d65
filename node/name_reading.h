/*
 * name_reading.h — a kana reading of a kanji name from a dictionary, for the
 * name search of records that have no kana (DOMAIN.md §1, issue 9).
 *
 * Owns the one call into MeCab (Debian's mecab + mecab-ipadic-utf8): the
 * proposing node reads "山田 太郎" as "ヤマダ タロウ" and puts it in the
 * command (Victim.name_reading), so apply stays deterministic whatever
 * dictionary each replica has. Nothing here is called on apply.
 *
 * Happy path: the first call opens the dictionary (once per process; the
 * dictionary is read-only and shared, every call parses in its own lattice,
 * so any thread may call). A name with at least one kanji is parsed whole
 * (family and given name together read better: 純一 alone is ジュンイツ,
 * after 中村 it is the given name ジュンイチ), and the readings of the
 * KZ_NODE_READING_PATHS best paths are kept, because a given name often has
 * several (秀一: ヒデカズ, シュウイチ, ヒデイチ). Each reading keeps a space
 * where the name had one, so its tokens index like kana tokens.
 *
 * Failure modes: no dictionary installed (logged once, then every call says
 * "no reading"), a word the dictionary does not know (no reading at all
 * rather than half of one: a wrong key would find the wrong people), a name
 * with no kanji or with Latin letters (the folded name already is its
 * reading), out of memory. None of them fails the write: the record is then
 * found by its name as before.
 */
#ifndef KZ_NODE_NAME_READING_H
#define KZ_NODE_NAME_READING_H

#include <stddef.h>

/* The dictionary MeCab opens (mecab-ipadic-utf8 on Debian). */
#define KZ_NODE_READING_DICDIR "/var/lib/mecab/dic/ipadic-utf8"

/* How many of MeCab's best paths give readings (duplicates dropped). */
#define KZ_NODE_READING_PATHS 3

/*
 * Sets *out to a new NUL-terminated list of katakana readings of `name`
 * (UTF-8, NUL-terminated): one to KZ_NODE_READING_PATHS readings, best
 * first, separated by '\n', tokens inside one separated by an ASCII space
 * ("ウエノ ヒデカズ\nウエノ シュウイチ\nウエノ ヒデイチ"); returns 0. The
 * caller frees *out with free(). Returns -1 and sets *out to NULL when there
 * is no reading (see the failure modes above).
 */
int kz_node_name_reading(const char *name, char **out);

#endif
