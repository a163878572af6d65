/*
 * utf8.c — strict UTF-8 and the half-width katakana table (utf8.h).
 */
#include "utf8.h"

const uint16_t kz_halfwidth_kana[56] = {
    0x30F2, 0x30A1, 0x30A3, 0x30A5, 0x30A7, 0x30A9, 0x30E3, 0x30E5, /* ｦｧｨｩｪｫｬｭ */
    0x30E7, 0x30C3, 0x30FC, 0x30A2, 0x30A4, 0x30A6, 0x30A8, 0x30AA, /* ｮｯｰｱｲｳｴｵ */
    0x30AB, 0x30AD, 0x30AF, 0x30B1, 0x30B3, 0x30B5, 0x30B7, 0x30B9, /* ｶｷｸｹｺｻｼｽ */
    0x30BB, 0x30BD, 0x30BF, 0x30C1, 0x30C4, 0x30C6, 0x30C8, 0x30CA, /* ｾｿﾀﾁﾂﾃﾄﾅ */
    0x30CB, 0x30CC, 0x30CD, 0x30CE, 0x30CF, 0x30D2, 0x30D5, 0x30D8, /* ﾆﾇﾈﾉﾊﾋﾌﾍ */
    0x30DB, 0x30DE, 0x30DF, 0x30E0, 0x30E1, 0x30E2, 0x30E4, 0x30E6, /* ﾎﾏﾐﾑﾒﾓﾔﾕ */
    0x30E8, 0x30E9, 0x30EA, 0x30EB, 0x30EC, 0x30ED, 0x30EF, 0x30F3, /* ﾖﾗﾘﾙﾚﾛﾜﾝ */
};

int kz_utf8_decode(const unsigned char *p, size_t len, size_t *i,
                   uint32_t *cp)
{
    unsigned char b = p[*i];
    uint32_t c, min;
    size_t need;

    if (b < 0x80) {
        if (b == 0)
            return -1;
        *cp = b;
        (*i)++;
        return 0;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        c = b & 0x1Fu;
        need = 1;
        min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        c = b & 0x0Fu;
        need = 2;
        min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        c = b & 0x07u;
        need = 3;
        min = 0x10000;
    } else {
        return -1;
    }
    if (len - *i - 1 < need)
        return -1;
    for (size_t k = 1; k <= need; k++) {
        unsigned char nb = p[*i + k];
        if ((nb & 0xC0) != 0x80)
            return -1;
        c = (c << 6) | (nb & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return -1;
    *i += need + 1;
    *cp = c;
    return 0;
}

size_t kz_utf8_encode(uint32_t c, char b[4])
{
    if (c < 0x80) {
        b[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        b[0] = (char)(0xC0 | (c >> 6));
        b[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        b[0] = (char)(0xE0 | (c >> 12));
        b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        b[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (c >> 18));
    b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    b[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

bool kz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    while (i < len)
        if (kz_utf8_decode(p, len, &i, &cp) != 0)
            return false;
    return true;
}
