/*
 * test_csv.c — the push CSV reader (storage/kz_csv.h): RFC 4180 quoting,
 * CRLF and LF, line ends inside quotes, the byte order mark, empty fields
 * and lines, malformed records and how the reader resynchronises after
 * them, limits, line numbers, and that any split of the input into pieces
 * gives the same records.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz_csv.h"

/* Every record as one line of text: "L<line>:a|b|c" or "L<line>!error". */
struct got {
    char text[4096];
    size_t n;
    int stop_after; /* stop (return 7) after this many records; 0: never */
};

static int on_rec(void *ud, unsigned long line, char *const *f,
                  const size_t *lens, size_t n, const char *err)
{
    struct got *g = ud;
    size_t off = strlen(g->text);
    if (err != NULL) {
        snprintf(g->text + off, sizeof g->text - off, "L%lu!%s\n", line, err);
    } else {
        off += (size_t)snprintf(g->text + off, sizeof g->text - off, "L%lu:",
                                line);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(strlen(f[i]), lens[i]);
            off += (size_t)snprintf(g->text + off, sizeof g->text - off,
                                    "%s%s", i ? "|" : "", f[i]);
        }
        snprintf(g->text + off, sizeof g->text - off, "\n");
    }
    g->n++;
    return g->stop_after && g->n >= (size_t)g->stop_after ? 7 : 0;
}

/* Parses s (len bytes) fed in pieces of `piece` bytes (0: whole). */
static const char *parse_in(const char *s, size_t len, size_t piece,
                            size_t max_field, size_t max_fields,
                            struct got *g)
{
    memset(g, 0, sizeof *g);
    kz_csv *p = kz_csv_new(1, max_field, max_fields, on_rec, g);
    cr_assert_not_null(p);
    if (piece == 0)
        piece = len ? len : 1;
    for (size_t off = 0; off < len; off += piece)
        cr_assert_eq(kz_csv_feed(p, s + off,
                                 len - off < piece ? len - off : piece), 0);
    cr_assert_eq(kz_csv_finish(p), 0);
    kz_csv_free(p);
    return g->text;
}

static const char *parse(const char *s)
{
    static struct got g;
    return parse_in(s, strlen(s), 0, 0, 0, &g);
}

Test(csv, plain_records_lf_and_crlf)
{
    cr_assert_str_eq(parse("a,b,c\n1,2,3\n"), "L1:a|b|c\nL2:1|2|3\n");
    cr_assert_str_eq(parse("a,b\r\n1,2\r\n"), "L1:a|b\nL2:1|2\n");
    /* The last record needs no line end. */
    cr_assert_str_eq(parse("a,b\n1,2"), "L1:a|b\nL2:1|2\n");
    cr_assert_str_eq(parse("a,b\r\n1,2\r"), "L1:a|b\nL2:1|2\n");
}

Test(csv, quoting_and_doubled_quotes)
{
    cr_assert_str_eq(parse("\"a,b\",\"say \"\"hi\"\"\",\"\"\n"),
                     "L1:a,b|say \"hi\"|\n");
    /* A quote inside an unquoted field is a character. */
    cr_assert_str_eq(parse("ab\"c,d\n"), "L1:ab\"c|d\n");
}

Test(csv, empty_fields_and_blank_lines)
{
    cr_assert_str_eq(parse(",,\n"), "L1:||\n");
    cr_assert_str_eq(parse("a\n\n\r\nb\n"), "L1:a\nL4:b\n");
    cr_assert_str_eq(parse("\"\"\n"), "L1:\n");
    cr_assert_str_eq(parse(""), "");
    cr_assert_str_eq(parse("\n\n"), "");
}

Test(csv, embedded_newlines_keep_line_numbers)
{
    cr_assert_str_eq(parse("h\n\"one\ntwo\nthree\",x\nnext\n"),
                     "L1:h\nL2:one\ntwo\nthree|x\nL5:next\n");
    /* CRLF inside quotes is kept as it is. */
    cr_assert_str_eq(parse("\"a\r\nb\"\r\nc\r\n"), "L1:a\r\nb\nL3:c\n");
}

Test(csv, byte_order_mark_is_dropped_only_at_the_start)
{
    cr_assert_str_eq(parse("\xEF\xBB\xBFname,dob\n"), "L1:name|dob\n");
    cr_assert_str_eq(parse("x\n\xEF\xBB\xBFy\n"), "L1:x\nL2:\xEF\xBB\xBFy\n");
    /* A start that only looks like a mark is kept. */
    cr_assert_str_eq(parse("\xEF\xBBz\n"), "L1:\xEF\xBBz\n");
    struct got g;
    cr_assert_str_eq(parse_in("\xEF\xBB\xBF" "a\n", 4, 1, 0, 0, &g), "L1:a\n");
}

Test(csv, malformed_records_resynchronise)
{
    /* Text after a closing quote: that record only; the reader finds the
     * end of it and goes on. */
    cr_assert_str_eq(parse("a\n\"x\"y,z\nb\n"),
                     "L1:a\nL2!text after a closing quote\nL3:b\n");
    /* Inside quotes a line end does not end the bad record. */
    cr_assert_str_eq(parse("\"x\"y,\"p\nq\"\nb\n"),
                     "L1!text after a closing quote\nL3:b\n");
    cr_assert_str_eq(parse("a\n\"open\nb\n"),
                     "L1:a\nL2!end of input inside a quoted field\n");
    static const char nul[] = "a\nx\0y\nb\n";
    struct got g;
    cr_assert_str_eq(parse_in(nul, sizeof nul - 1, 0, 0, 0, &g),
                     "L1:a\nL2!contains a NUL byte\nL3:b\n");
}

Test(csv, limits_refuse_the_record)
{
    struct got g;
    cr_assert_str_eq(parse_in("abc,de\nabcdef\nx\n", 16, 0, 5, 0, &g),
                     "L1:abc|de\nL2!a field is too long\nL3:x\n");
    cr_assert_str_eq(parse_in("a,b,c\na,b\n", 10, 0, 0, 2, &g),
                     "L1!too many fields\nL2:a|b\n");
}

Test(csv, any_split_gives_the_same_records)
{
    static const char in[] =
        "\xEF\xBB\xBFname,note\r\n\"a, \"\"b\"\"\",\"multi\r\nline\"\r\n"
        "\r\nplain,x\"y\r\n\"bad\"q,1\r\nlast,\"\"";
    struct got whole, part;
    parse_in(in, sizeof in - 1, 0, 0, 0, &whole);
    cr_assert_eq(whole.n, 5);
    for (size_t piece = 1; piece < sizeof in; piece++) {
        parse_in(in, sizeof in - 1, piece, 0, 0, &part);
        cr_assert_str_eq(part.text, whole.text, "piece %zu", piece);
    }
}

Test(csv, callback_stops_the_reader)
{
    struct got g;
    memset(&g, 0, sizeof g);
    g.stop_after = 1;
    kz_csv *p = kz_csv_new(10, 0, 0, on_rec, &g);
    cr_assert_eq(kz_csv_feed(p, "a\nb\nc\n", 6), 7);
    cr_assert_eq(kz_csv_feed(p, "d\n", 2), 7);
    cr_assert_eq(kz_csv_finish(p), 7);
    cr_assert_str_eq(g.text, "L10:a\n");
    kz_csv_free(p);
}

Test(csv, append_field_quotes_when_needed)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const char *in[] = {"plain", "a,b", "say \"x\"", "two\nlines", " pad",
                        ""};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        if (i > 0)
            cr_assert_eq(kz_csv_append_field(&buf, &len, &cap, "", 0), 0);
        cr_assert_eq(kz_csv_append_field(&buf, &len, &cap, in[i],
                                         strlen(in[i])), 0);
        buf[len++] = i + 1 < sizeof in / sizeof in[0] ? ',' : '\n';
        buf[len] = '\0';
    }
    cr_assert_str_eq(buf, "plain,\"a,b\",\"say \"\"x\"\"\",\"two\nlines\","
                          "\" pad\",\n");
    /* And back. */
    cr_assert_str_eq(parse(buf), "L1:plain|a,b|say \"x\"|two\nlines| pad|\n");
    free(buf);
}
