/*
 * fuzz_history.c — libFuzzer driver for kizuna-chaos's history decoder
 * (chaos/history.c: kz_hist_parse_line, the reader of `kizuna-chaos check
 * HISTORY`) and the checkers behind it (history.c, linear.c).
 *
 * The input is split into lines; each is parsed. Properties checked: a line
 * that parses writes back (kz_hist_write) to a line that parses to the same
 * operation; the checkers then run over every parsed line as one history
 * (bounded search) without a sanitizer report, and every anomaly they
 * report is a non-empty line.
 * Seeds: tests/fuzz/corpus/history/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "history.h"

static int same_op(const struct kz_hist_op *a, const struct kz_hist_op *b)
{
    return a->t0 == b->t0 && a->t1 == b->t1 && a->proc == b->proc &&
           a->node == b->node && a->op == b->op && a->result == b->result &&
           a->status == b->status && a->expect == b->expect &&
           a->version == b->version && a->value == b->value &&
           strcmp(a->region, b->region) == 0 && strcmp(a->key, b->key) == 0 &&
           strcmp(a->rid, b->rid) == 0 && strcmp(a->what, b->what) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct kz_hist h = {0};
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        struct kz_hist_op op;
        if (kz_hist_parse_line(line, &op) != 0)
            continue;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        FUZZ_CHECK(f != NULL);
        int wrote = kz_hist_write(f, &op);
        fclose(f);
        if (wrote == 0) {
            struct kz_hist_op back;
            FUZZ_CHECK(kz_hist_parse_line(buf, &back) == 0);
            FUZZ_CHECK(same_op(&op, &back));
        }
        free(buf);
        if (kz_hist_add(&h, &op) != 0)
            break;
    }
    struct kz_check c;
    if (kz_check_run(&h, 20000, &c) == 0) {
        for (size_t i = 0; i < c.anomalies; i++)
            FUZZ_CHECK(c.anomaly[i] != NULL && c.anomaly[i][0] != '\0');
        kz_check_free(&c);
    }
    kz_hist_free(&h);
    free(text);
    return 0;
}
