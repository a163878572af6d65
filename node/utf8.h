/*
 * utf8.h — the one strict UTF-8 decoder and encoder of node/, and the
 * half-width katakana table, shared by name folding (name_fold.c), fact
 * matching (match.c) and text validation (records.c).
 */
#ifndef KZ_NODE_UTF8_H
#define KZ_NODE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at p[*i] (len bytes in all), advancing *i.
 * Strict: no overlong forms, no surrogates, nothing above U+10FFFF, and no
 * NUL (results are NUL-terminated strings, which a NUL would cut short).
 * Returns 0, or -1. */
int kz_utf8_decode(const unsigned char *p, size_t len, size_t *i,
                   uint32_t *cp);
/* Writes c as UTF-8 to b; returns the byte count (1 to 4). */
size_t kz_utf8_encode(uint32_t c, char b[4]);
/* Whether len bytes of s are well-formed UTF-8 without NUL. */
bool kz_utf8_valid(const char *s, size_t len);

/* Full-width katakana of the half-width forms U+FF66..U+FF9D, in order
 * (ｰ U+FF70 is ー). */
extern const uint16_t kz_halfwidth_kana[56];

#endif
