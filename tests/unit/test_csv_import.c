/*
 * test_csv_import.c — POST /v1/import/csv's decoder (node/csv_import.h):
 * header checks that refuse the whole body, per-record rejections with the
 * column and the line in the user's file (first_line, embedded newlines,
 * blank lines), the cells that are not plain strings (needs, consent), the
 * same validation as POST /v1/victims, and the batch limits.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv_import.h"
#include "records.h"

static struct kz_node_csv_batch b;
static int status;
static char code[32], err[KZ_NODE_ERR_MAX];

static int decode(const char *body, unsigned long first_line)
{
    kz_node_csv_batch_free(&b);
    status = 0;
    code[0] = err[0] = '\0';
    return kz_node_csv_decode(body, strlen(body), first_line, &b, &status,
                              code, sizeof code, err, sizeof err);
}

static void fini(void)
{
    kz_node_csv_batch_free(&b);
}

TestSuite(csv_import, .fini = fini);

/* Rejection i as "line:column:code". */
static const char *rej(size_t i)
{
    static char out[128];
    json_t *r = json_array_get(b.rejected, i);
    cr_assert_not_null(r, "no rejection %zu", i);
    const char *col = json_string_value(json_object_get(r, "column"));
    snprintf(out, sizeof out, "%lld:%s:%s",
             (long long)json_integer_value(json_object_get(r, "line")),
             col ? col : "-",
             json_string_value(json_object_get(r, "code")));
    return out;
}

Test(csv_import, valid_rows_become_victims)
{
    cr_assert_eq(decode("name,name_kana,dob,sex,needs,shelter_id,consent\n"
                        "山田 花子,ヤマダ ハナコ,1948-04-02,female,"
                        "elderly; medication,s-1,yes\n"
                        "\"佐藤, 太郎\",,,male,infant|pregnant,,"
                        "\"{\"\"disclose_safety\"\":false,\"\"recipients\"\":"
                        "[\"\"family\"\"]}\"\n",
                        2),
                 0, "%s", err);
    cr_assert_eq(b.n, 2);
    cr_assert_eq(b.records, 2);
    cr_assert_eq(json_array_size(b.rejected), 0);
    const Kizuna__Victim *v = b.rows[0].v;
    cr_assert_eq(b.rows[0].line, 2);
    cr_assert_str_eq(v->name, "山田 花子");
    cr_assert_str_eq(v->dob, "1948-04-02");
    cr_assert_eq(v->n_needs, 2);
    cr_assert_str_eq(v->needs[1], "medication");
    cr_assert(v->consent && v->consent->disclose_safety);
    v = b.rows[1].v;
    cr_assert_str_eq(v->name, "佐藤, 太郎");
    cr_assert_null(v->name_kana, "an empty cell is an absent field");
    cr_assert_null(v->dob);
    cr_assert_null(v->id, "ids are drawn by the proposer");
    cr_assert_eq(v->consent->n_recipients, 1);
    cr_assert_not(v->consent->disclose_safety);
}

Test(csv_import, rejections_name_line_and_column)
{
    cr_assert_eq(decode("name,dob,sex,status\n"
                        "ok,1950-01-01,male,safe\n"      /* 10 */
                        "x,1950-13-01,male,safe\n"       /* 11 dob */
                        "\"two\nlines\",,robot,\n"       /* 12 sex */
                        "\n"                             /* 14 blank */
                        ",1950-01-01,,\n"                /* 15 name req. */
                        "y,,,\"bad\"q\n"                 /* 16 syntax */
                        "z,,\n"                          /* 17 too few */
                        "w,,,,\n"                        /* 18 too many */
                        "v,,,zombie\n"                   /* 19 status */
                        "last,,female,\n",               /* 20 ok */
                        10),
                 0, "%s", err);
    cr_assert_eq(b.records, 9);
    cr_assert_eq(b.n, 2);
    cr_assert_eq(b.rows[0].line, 10);
    cr_assert_eq(b.rows[1].line, 20);
    cr_assert_eq(json_array_size(b.rejected), 7);
    cr_assert_str_eq(rej(0), "11:dob:bad_request");
    cr_assert_str_eq(rej(1), "12:name:bad_request"); /* a newline in a name */
    cr_assert_str_eq(rej(2), "15:name:bad_request");
    cr_assert_str_eq(rej(3), "16:-:bad_csv");
    cr_assert_str_eq(rej(4), "17:-:bad_csv");
    cr_assert_str_eq(rej(5), "18:-:bad_csv");
    cr_assert_str_eq(rej(6), "19:status:bad_request");
    /* The message is the single registration's. */
    const char *m = json_string_value(
        json_object_get(json_array_get(b.rejected, 0), "message"));
    cr_assert_str_eq(m, "dob: must be a valid date YYYY-MM-DD");
}

Test(csv_import, same_rules_as_post_victims)
{
    /* Every rejection here is what kz_node_victim_from_json says for the
     * same object. */
    cr_assert_eq(decode("name,household_id,needs,contact,consent\n"
                        "a,h 1,,,\n"
                        "b,,infant;infant,,\n"
                        "c,,,\x01,\n"
                        "d,,,,maybe\n"
                        "\xff\xfe,,,,\n",
                        2),
                 0);
    cr_assert_eq(b.n, 0);
    cr_assert_str_eq(rej(0), "2:household_id:bad_request");
    cr_assert_str_eq(rej(1), "3:needs:bad_request");
    cr_assert_str_eq(rej(2), "4:contact:bad_request");
    cr_assert_str_eq(rej(3), "5:consent:bad_request");
    cr_assert_str_eq(rej(4), "6:name:bad_request"); /* not UTF-8 */
}

Test(csv_import, header_problems_refuse_the_body)
{
    cr_assert_eq(decode("name,氏名\nx,y\n", 2), -1);
    cr_assert_eq(status, 400);
    cr_assert_str_eq(code, "unknown_column");
    cr_assert(strstr(err, "column 2 '氏名'") != NULL, "%s", err);
    cr_assert_eq(decode("name,dob,name\n", 2), -1);
    cr_assert_str_eq(code, "duplicate_column");
    cr_assert_eq(decode("id,name\n", 2), -1);
    cr_assert_str_eq(code, "unknown_column");
    cr_assert_eq(decode("\"name\"x\n", 2), -1);
    cr_assert_str_eq(code, "bad_header");
    cr_assert_eq(decode("", 2), -1);
    cr_assert_str_eq(code, "bad_request");
    /* A header alone is a batch of nothing. */
    cr_assert_eq(decode("\xEF\xBB\xBFname\r\n", 2), 0);
    cr_assert_eq(b.records, 0);
}

Test(csv_import, batch_limits)
{
    size_t cap = 16 + (KZ_NODE_IMPORT_MAX_ROWS + 1) * 4;
    char *body = malloc(cap);
    size_t off = (size_t)snprintf(body, cap, "name\n");
    for (int i = 0; i < KZ_NODE_IMPORT_MAX_ROWS; i++)
        off += (size_t)snprintf(body + off, cap - off, "p%d\n", i % 10);
    cr_assert_eq(decode(body, 2), 0);
    cr_assert_eq(b.n, KZ_NODE_IMPORT_MAX_ROWS);
    cr_assert_eq(b.rows[KZ_NODE_IMPORT_MAX_ROWS - 1].line,
                 KZ_NODE_IMPORT_MAX_ROWS + 1);
    snprintf(body + off, cap - off, "x\n");
    cr_assert_eq(decode(body, 2), -1);
    cr_assert_eq(status, 413);
    cr_assert_str_eq(code, "too_many_rows");
    free(body);
    kz_node_csv_batch_free(&b); /* the caller frees after an error too */
    cr_assert_eq(kz_node_csv_decode("name\n", KZ_NODE_IMPORT_MAX_BYTES + 1,
                                    2, &b, &status, code, sizeof code, err,
                                    sizeof err),
                 -1);
    cr_assert_eq(status, 413);
}
