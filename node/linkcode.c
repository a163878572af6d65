/*
 * linkcode.c — link codes (linkcode.h): one AES-256 block on OpenSSL 3's
 * EVP interface, and the Crockford base32 text with its mod-37 check symbol.
 *
 * Happy path: make = encrypt the ID code, then format; the core parses a
 * typed code, picks the key of its index and opens it. The text is handled
 * as an array of 29 symbol values (0..36): the first 28 spell one base-32
 * number (index * 32^26 + block), the last is that number mod 37. Failure
 * modes: malformed text is KZ_EINVAL, never a best guess; an OpenSSL
 * failure is KZ_EIO (as in storage/seal.c) with no partial output.
 */
#include "linkcode.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#define LC_INDEX_SYMS 2
#define LC_BLOCK_SYMS 26
#define LC_DATA_SYMS (LC_INDEX_SYMS + LC_BLOCK_SYMS) /* 28 */
#define LC_SYMS (LC_DATA_SYMS + 1)                   /* 29, with the check */
#define LC_PAD_BITS (LC_BLOCK_SYMS * 5 - 128)        /* 2 leading zero bits */
#define LC_CHECK_MOD 37

/* Symbol values 0..31 are data, 32..36 only a check symbol. */
static const char lc__alphabet[LC_CHECK_MOD + 1] =
    "0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

/* The value of one typed character, or -1 for none. Case-insensitive;
 * Crockford's confusables read as the digit they look like. */
static int lc__value(unsigned char c)
{
    if (c >= 'a' && c <= 'z')
        c = (unsigned char)(c - 'a' + 'A');
    if (c == 'O')
        return 0;
    if (c == 'I' || c == 'L')
        return 1;
    if (c == '\0')
        return -1; /* memchr below would find the string's NUL */
    const char *p = memchr(lc__alphabet, c, LC_CHECK_MOD);
    return p == NULL ? -1 : (int)(p - lc__alphabet);
}

/* Bit `p` (0 = most significant) of the block as a 130-bit number: the
 * block's bits preceded by LC_PAD_BITS zeros. */
static unsigned lc__bit(const unsigned char block[16], unsigned p)
{
    if (p < LC_PAD_BITS)
        return 0;
    p -= LC_PAD_BITS;
    return (block[p / 8] >> (7 - p % 8)) & 1u;
}

/* The check symbol's value: the base-32 number of the data symbols mod 37. */
static unsigned lc__check(const unsigned char sym[LC_DATA_SYMS])
{
    unsigned r = 0;
    for (unsigned i = 0; i < LC_DATA_SYMS; i++)
        r = (r * 32 + sym[i]) % LC_CHECK_MOD;
    return r;
}

void kz_node_linkcode_format(unsigned key_index, const unsigned char block[16],
                             char out[KZ_NODE_LINKCODE_MAX])
{
    unsigned char sym[LC_SYMS];

    out[0] = '\0';
    if (key_index > KZ_NODE_LINKCODE_MAX_INDEX)
        return;
    sym[0] = (unsigned char)(key_index >> 5);
    sym[1] = (unsigned char)(key_index & 31);
    for (unsigned k = 0; k < LC_BLOCK_SYMS; k++) {
        unsigned v = 0;
        for (unsigned j = 0; j < 5; j++)
            v = v << 1 | lc__bit(block, 5 * k + j);
        sym[LC_INDEX_SYMS + k] = (unsigned char)v;
    }
    sym[LC_DATA_SYMS] = (unsigned char)lc__check(sym);

    size_t n = 0;
    for (unsigned i = 0; i < LC_SYMS; i++) {
        if (i > 0 && i % 4 == 0)
            out[n++] = '-';
        out[n++] = lc__alphabet[sym[i]];
    }
    out[n] = '\0';
}

int kz_node_linkcode_parse(const char *text, size_t len, unsigned *key_index,
                           unsigned char block[16])
{
    unsigned char sym[LC_SYMS];
    unsigned n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '-' || c == ' ')
            continue;
        int v = lc__value(c);
        if (v < 0 || n == LC_SYMS)
            return KZ_EINVAL;
        sym[n++] = (unsigned char)v;
    }
    if (n != LC_SYMS)
        return KZ_EINVAL;
    for (unsigned i = 0; i < LC_DATA_SYMS; i++)
        if (sym[i] >= 32)
            return KZ_EINVAL; /* * ~ $ = U are check symbols only */
    if (sym[LC_DATA_SYMS] != lc__check(sym))
        return KZ_EINVAL;

    /* The block's 130-bit number must fit in 128 bits: symbol 2 is 0..7.
     * Without this the two top bits would be dropped, and four codes (each
     * with its own check symbol) would parse to one block. */
    if (sym[LC_INDEX_SYMS] >> (5 - LC_PAD_BITS) != 0)
        return KZ_EINVAL;
    memset(block, 0, 16);
    for (unsigned k = 0; k < LC_BLOCK_SYMS; k++)
        for (unsigned j = 0; j < 5; j++) {
            unsigned p = 5 * k + j;
            if (p < LC_PAD_BITS)
                continue;
            p -= LC_PAD_BITS;
            unsigned bit = (sym[LC_INDEX_SYMS + k] >> (4 - j)) & 1u;
            block[p / 8] |= (unsigned char)(bit << (7 - p % 8));
        }
    *key_index = (unsigned)sym[0] << 5 | sym[1];
    return KZ_OK;
}

/* One AES-256 block, ECB, no padding, into out[16]. `enc` 1 encrypts, 0
 * decrypts. The result goes through a local buffer of two blocks (EVP's
 * documented worst case for an update) that is cleansed afterwards: on
 * decryption it holds an ID code. */
static int lc__aes_block(const unsigned char key[KZ_NODE_LINKCODE_KEY_BYTES],
                         int enc, const unsigned char in[16],
                         unsigned char out[16])
{
    unsigned char buf[32];
    int rv = KZ_EIO, n = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

    if (ctx == NULL)
        return KZ_ENOMEM;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_ecb(), NULL, key, NULL, enc) != 1)
        goto err_after_ctx;
    if (EVP_CIPHER_CTX_set_padding(ctx, 0) != 1)
        goto err_after_ctx;
    if (EVP_CipherUpdate(ctx, buf, &n, in, 16) != 1 || n != 16)
        goto err_after_ctx;
    if (EVP_CipherFinal_ex(ctx, buf + n, &fin) != 1 || fin != 0)
        goto err_after_ctx;
    memcpy(out, buf, 16);
    rv = KZ_OK;
err_after_ctx:
    /* Freeing the context cleanses its key schedule. */
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(buf, sizeof buf);
    return rv;
}

int kz_node_linkcode_make(const unsigned char key[KZ_NODE_LINKCODE_KEY_BYTES],
                          unsigned key_index, const unsigned char id_code[16],
                          char out[KZ_NODE_LINKCODE_MAX])
{
    unsigned char block[16];

    out[0] = '\0';
    if (key_index > KZ_NODE_LINKCODE_MAX_INDEX)
        return KZ_EINVAL;
    int rv = lc__aes_block(key, 1, id_code, block);
    if (rv != KZ_OK)
        return rv;
    kz_node_linkcode_format(key_index, block, out);
    return KZ_OK;
}

int kz_node_linkcode_open(const unsigned char key[KZ_NODE_LINKCODE_KEY_BYTES],
                          const unsigned char block[16],
                          unsigned char id_code[16])
{
    int rv = lc__aes_block(key, 0, block, id_code);
    if (rv != KZ_OK)
        memset(id_code, 0, 16);
    return rv;
}
