/*
 * fuzz_ckpt.c — libFuzzer driver for the file-snapshot codecs
 * (consensus/ckpt.h): the raft descriptor, a peer's GET request and a
 * peer's INFO answer, all read from another node.
 *
 * The first byte picks the decoder; the rest is its input. Properties
 * checked: no read past len; a descriptor that parses names a state index
 * at or below its raft index and builds back to the same bytes; a GET that
 * parses has a valid name and a length of 1..one chunk, and builds back to
 * the same bytes; an INFO that parses has at most KZ_CKPT_FILES_MAX
 * files, valid unique names, sizes that sum to its total, and builds into
 * a payload that parses to the same list. Seeds: tests/fuzz/corpus/ckpt/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "fuzz_util.h"
#include "kz_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = size - 1;
    unsigned char *buf = malloc(n ? n : 1); /* exact size for ASan */
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data + 1, n);
    switch (data[0] % 3) {
    case 0: {
        uint64_t index, fsm;
        if (kz_cons__ckpt_desc_parse(buf, n, &index, &fsm) == KZ_OK) {
            FUZZ_CHECK(index > 0 && fsm <= index);
            unsigned char again[KZ_CKPT_DESC_LEN];
            kz_cons__ckpt_desc_build(index, fsm, again);
            FUZZ_CHECK(n == KZ_CKPT_DESC_LEN && memcmp(again, buf, n) == 0);
        }
        break;
    }
    case 1: {
        uint64_t index, off;
        uint32_t len;
        char name[KZ_CKPT_NAME_MAX + 1];
        if (kz_cons__ckpt_get_parse(buf, n, &index, &off, &len, name) ==
            KZ_OK) {
            FUZZ_CHECK(len >= 1 && len <= KZ_CKPT_CHUNK);
            FUZZ_CHECK(kz_fs_name_ok(name, strlen(name)));
            unsigned char again[KZ_CKPT_GET_MAX];
            size_t l = kz_cons__ckpt_get_build(index, off, len, name, again);
            FUZZ_CHECK(l == n && memcmp(again, buf, n) == 0);
        }
        break;
    }
    default: {
        struct kz_cons__ckpt_info info;
        int rv = kz_cons__ckpt_info_parse(buf, n, &info);
        if (rv == KZ_OK) {
            FUZZ_CHECK(info.n <= KZ_CKPT_FILES_MAX && info.index > 0);
            uint64_t total = 0;
            for (unsigned i = 0; i < info.n; i++) {
                const char *nm = info.files[i].name;
                FUZZ_CHECK(kz_fs_name_ok(nm, strlen(nm)));
                if (i > 0)
                    FUZZ_CHECK(strcmp(info.files[i - 1].name, nm) < 0);
                total += info.files[i].size;
            }
            FUZZ_CHECK(total == info.total);
            unsigned char *p;
            size_t plen;
            FUZZ_CHECK(kz_cons__ckpt_info_build(0, &info, &p, &plen) ==
                       KZ_OK);
            struct kz_cons__ckpt_info again;
            FUZZ_CHECK(kz_cons__ckpt_info_parse(p, plen, &again) == KZ_OK);
            FUZZ_CHECK(again.n == info.n && again.total == info.total &&
                       again.index == info.index);
            for (unsigned i = 0; i < info.n; i++)
                FUZZ_CHECK(strcmp(again.files[i].name, info.files[i].name) ==
                               0 &&
                           again.files[i].size == info.files[i].size);
            kz_cons__ckpt_info_free(&again);
            free(p);
            kz_cons__ckpt_info_free(&info);
        } else {
            FUZZ_CHECK(info.files == NULL);
        }
        break;
    }
    }
    free(buf);
    return 0;
}
