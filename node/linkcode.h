/*
 * linkcode.h — the codec of link codes (DOMAIN.md §2): an organisation's
 * code for a person, LA = AES-256(KA, ID code), and its printable text.
 *
 * The cipher. The ID code is a random 16-byte identifier; the link code is
 * exactly one AES-256 block of it under organisation A's 32-byte key, i.e.
 * ECB of one block, no padding, no IV. That is deterministic on purpose:
 * the same person must always get the same code from A, so A can store it
 * and the core can look it up. ECB's known weakness is that equal plaintext
 * blocks give equal ciphertext blocks and so leak the structure of a longer
 * message; here the message is a single block with no structure (random
 * bits), and AES under a secret key is a pseudorandom permutation of it. So
 * A's code is indistinguishable from random to anyone without KA: it says
 * nothing about the ID code, and codes of A and of B for the same person are
 * unrelated to anyone without both keys. Decrypting with KA gives the ID
 * code back, which is how the core translates LA -> ID code -> LB.
 *
 * The text. 29 symbols of Crockford base32 (0-9 A-Z without I L O U),
 * grouped by four with '-' (36 characters):
 *
 *   symbols  0..1   the key index, 0..1023, as a 2-digit base-32 number
 *   symbols  2..27  the 128-bit block, as a 26-digit base-32 number, big
 *                   endian (130 bits, so symbol 2 is always 0..7)
 *   symbol   28     check symbol, Crockford's: the 140-bit number that
 *                   symbols 0..27 spell, modulo 37, written with the 32
 *                   data symbols plus * ~ $ = U for 32..36
 *
 *   e.g. "0H4E-MAVW-MMB7-8PZY-NZ29-J15M-JR49-F": index 17 ("0H"), the
 *   block 8ea2b7ca...4b496089 (FIPS-197's AES-256 example), check "F"
 *
 * What the check symbol catches. 37 is prime and larger than 32, so
 *   - every single substitution: changing symbol i by d (0 < |d| < 32) changes
 *     the number by d * 32^i, never a multiple of 37;
 *   - every adjacent transposition of two different symbols a, b: the number
 *     changes by (a - b) * 31 * 32^i, never a multiple of 37; swapping the
 *     last data symbol with the check symbol itself is caught too (it would
 *     need c == a). tests/unit/test_linkcode.c checks both exhaustively.
 * It is a typing check, not an integrity check: anyone can compute it, so a
 * code that passes it may still be unissued, or forged; the ID table decides.
 *
 * The key index is visible in the code by design: the core must know which
 * of A's keys to decrypt with, and keys rotate while old codes must still
 * resolve. It says only which key generation issued the code.
 *
 * Parsing is lenient, as for any code typed by people: case-insensitive,
 * dashes and spaces anywhere ignored, Crockford's confusables read as the
 * digit (O -> 0, I and L -> 1). kz_node_linkcode_format() gives the one
 * canonical text of a parsed code, for comparison and audit.
 *
 * The functions are pure (no storage, no network, no global state), safe to
 * call from any thread. All buffers are caller-owned; nothing is allocated
 * that outlives a call. Key and ID code buffers are never copied; the
 * cipher context (which holds the key schedule) is cleansed by OpenSSL when
 * freed, and a decrypted ID code is cleansed from this module's stack.
 * Errors come from storage/kz_error.h.
 */
#ifndef KZ_NODE_LINKCODE_H
#define KZ_NODE_LINKCODE_H

#include <stddef.h>

#include "kz_error.h"

#define KZ_NODE_LINKCODE_KEY_BYTES 32
#define KZ_NODE_LINKCODE_MAX 48 /* text buffer, incl. NUL (36 + 1 used) */
#define KZ_NODE_LINKCODE_MAX_INDEX 1023

/*
 * The link code of `id_code` under organisation key `key` of generation
 * `key_index`, written as canonical text, NUL-terminated, into `out`. All
 * buffers caller-owned.
 * Returns KZ_OK; KZ_EINVAL if key_index > KZ_NODE_LINKCODE_MAX_INDEX (out is
 * then ""); KZ_ENOMEM if no cipher context; KZ_EIO if OpenSSL fails (out is
 * then "").
 */
int kz_node_linkcode_make(const unsigned char key[KZ_NODE_LINKCODE_KEY_BYTES],
                          unsigned key_index, const unsigned char id_code[16],
                          char out[KZ_NODE_LINKCODE_MAX]);

/*
 * Parses `len` bytes of `text` (need not be NUL-terminated; never read past
 * len) into the key index and the 16-byte cipher block. Accepts lowercase,
 * '-' and ' ' anywhere, O for 0 and I/L for 1.
 * Returns KZ_OK, or KZ_EINVAL for anything else: another character
 * (including NUL), not exactly 29 symbols, a check symbol (* ~ $ = U) among
 * the first 28, a block number of 2^128 or more, or a failed check symbol.
 * On KZ_EINVAL *key_index and block are unspecified.
 */
int kz_node_linkcode_parse(const char *text, size_t len, unsigned *key_index,
                           unsigned char block[16]);

/*
 * Decrypts a parsed block with the key of its index, giving the ID code
 * (caller-owned `id_code`). Any block opens under any key: a code opened
 * with another organisation's key gives an unrelated ID code, which the ID
 * table will not know. On error id_code is zeroed.
 * Returns KZ_OK, KZ_ENOMEM (no cipher context) or KZ_EIO (OpenSSL failed).
 */
int kz_node_linkcode_open(const unsigned char key[KZ_NODE_LINKCODE_KEY_BYTES],
                          const unsigned char block[16],
                          unsigned char id_code[16]);

/*
 * The canonical text of (key_index, block), as kz_node_linkcode_make writes
 * it, into caller-owned `out`. key_index must be at most
 * KZ_NODE_LINKCODE_MAX_INDEX (as every parsed index is); a larger one writes
 * "" rather than a code of another index.
 */
void kz_node_linkcode_format(unsigned key_index, const unsigned char block[16],
                             char out[KZ_NODE_LINKCODE_MAX]);

#endif
