/*
 * fuzz_bench_http.c — libFuzzer driver for kizuna-bench's HTTP/1.1
 * response parser (client/bench_http.h): the bytes a server under test
 * sends back, fed whole, then again in two reads split at a place the
 * first byte picks, then one byte at a time.
 *
 * Properties checked: a feed returns -1 or a count within what it was
 * given; the three ways of feeding agree on whether the bytes are a
 * response, on whether it completed and on its body; the body handed over
 * is never longer than the input; a response said complete stays so.
 * Seeds: tests/fuzz/corpus/bench_http/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench_http.h"
#include "fuzz_util.h"

struct body {
    char *p;
    size_t len, cap;
};

static void on_body(void *ud, const char *data, size_t len)
{
    struct body *b = ud;
    if (b->len + len > b->cap) {
        size_t cap = (b->len + len) * 2;
        char *p = realloc(b->p, cap);
        FUZZ_CHECK(p != NULL);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

struct outcome {
    int bad;      /* -1 from a feed */
    int done;     /* complete after the bytes (or at the close) */
    size_t used;  /* bytes taken as the response */
    struct body body;
};

/* Feeds data in pieces of at most `piece` bytes (0: whole), the first
 * piece `first` bytes long when first > 0; then the close. */
static void run(const uint8_t *data, size_t size, size_t first, size_t piece,
                struct outcome *o)
{
    kz_bh_parser p;
    memset(o, 0, sizeof *o);
    kz_bh_parser_init(&p, on_body, &o->body);
    size_t at = 0;
    while (at < size && !o->bad && !kz_bh_parser_done(&p)) {
        size_t n = size - at;
        if (at == 0 && first > 0 && first < n)
            n = first;
        else if (piece > 0 && piece < n)
            n = piece;
        long r = kz_bh_parser_feed(&p, (const char *)data + at, n);
        if (r < 0) {
            o->bad = 1;
            break;
        }
        FUZZ_CHECK((size_t)r <= n);
        at += (size_t)r;
        if ((size_t)r < n)
            FUZZ_CHECK(kz_bh_parser_done(&p));
    }
    o->used = at;
    if (!o->bad) {
        int was_done = kz_bh_parser_done(&p);
        o->done = was_done ? 1 : kz_bh_parser_eof(&p);
        if (was_done)
            FUZZ_CHECK(kz_bh_parser_done(&p));
    }
    FUZZ_CHECK(o->body.len <= size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    struct outcome whole, split, bytes;
    size_t first = size ? (size_t)data[0] % (size + 1) : 0;
    run(data, size, 0, 0, &whole);
    run(data, size, first, 0, &split);
    run(data, size, 0, 1, &bytes);
    const struct outcome *other[] = {&split, &bytes};
    for (int i = 0; i < 2; i++) {
        FUZZ_CHECK(other[i]->bad == whole.bad);
        if (whole.bad)
            continue;
        FUZZ_CHECK(other[i]->done == whole.done);
        FUZZ_CHECK(other[i]->used == whole.used);
        FUZZ_CHECK(other[i]->body.len == whole.body.len);
        FUZZ_CHECK(whole.body.len == 0 ||
                   memcmp(other[i]->body.p, whole.body.p, whole.body.len) ==
                       0);
    }
    free(whole.body.p);
    free(split.body.p);
    free(bytes.body.p);
    return 0;
}
