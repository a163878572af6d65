/*
 * test_import_pfif.c — PFIF 1.4 interchange on a real 3-node cluster over
 * TLS: `kizuna import pfif` of a generated document (250 persons, one per
 * line, in batches of 100; two bad persons; top-level notes, one about a
 * person nobody registered) reports exactly the bad lines of the file and
 * registers the rest, found by search on another node by kanji and kana.
 * Importing a changed version updates the same records (same ids, no
 * duplicate, the new note added once). The export holds only the records
 * whose consent allows disclosure (recipients naming "pfif" or none), and
 * the audit log has its pfif.export record with the count and a
 * victim.export record naming each person disclosed. Then the endpoint
 * itself: 403 for a caseworker, 400 for bad XML and for a DTD, 413 past 500
 * persons.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

static bool has_leader(void *arg)
{
    return kz_it_leader(arg) != 0;
}

#define NS "xmlns:pfif=\"http://zesty.ca/pfif/1.4\""
#define N_PERSONS 250
#define BAD_SEX 7    /* person 7: sex "unknown" */
#define BAD_NAME 150 /* person 150: no name */

/* Writes the test document: person i on line 3 + i, then two top-level
 * notes (about person 0, and about a person not in the register). `v2`
 * changes person 0's address and adds a second note. */
static void write_doc(const char *path, bool v2)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<pfif:pfif %s>\n",
            NS);
    for (int i = 0; i < N_PERSONS; i++) {
        fprintf(f, "<pfif:person><pfif:person_record_id>pf.test/p.%d"
                   "</pfif:person_record_id>",
                i);
        if (i == 0)
            fprintf(f, "<pfif:full_name>高橋 美咲</pfif:full_name>"
                       "<pfif:alternate_names>たかはし みさき"
                       "</pfif:alternate_names><pfif:sex>female</pfif:sex>"
                       "<pfif:date_of_birth>1975-06-01</pfif:date_of_birth>"
                       "<pfif:home_city>%s</pfif:home_city>",
                    v2 ? "女川町" : "石巻市");
        else if (i == 1)
            fprintf(f, "<pfif:family_name>阿部</pfif:family_name>"
                       "<pfif:given_name>健一</pfif:given_name>"
                       "<pfif:sex>male</pfif:sex>");
        else if (i == BAD_SEX)
            fprintf(f, "<pfif:full_name>悪い 性別</pfif:full_name>"
                       "<pfif:sex>unknown</pfif:sex>");
        else if (i != BAD_NAME)
            fprintf(f, "<pfif:full_name>避難者 %03d</pfif:full_name>", i);
        fprintf(f, "</pfif:person>\n");
    }
    fprintf(f, "<pfif:note><pfif:note_record_id>pf.test/n.1"
               "</pfif:note_record_id><pfif:person_record_id>pf.test/p.0"
               "</pfif:person_record_id><pfif:source_date>"
               "2011-03-12T02:00:00Z</pfif:source_date><pfif:status>"
               "believed_missing</pfif:status><pfif:text>not found yet"
               "</pfif:text></pfif:note>\n");
    fprintf(f, "<pfif:note><pfif:note_record_id>pf.test/n.2"
               "</pfif:note_record_id><pfif:person_record_id>pf.test/nobody"
               "</pfif:person_record_id><pfif:text>?</pfif:text>"
               "</pfif:note>\n");
    if (v2)
        fprintf(f, "<pfif:note><pfif:note_record_id>pf.test/n.3"
                   "</pfif:note_record_id><pfif:person_record_id>pf.test/p.0"
                   "</pfif:person_record_id><pfif:source_date>"
                   "2011-03-14T02:00:00Z</pfif:source_date><pfif:status>"
                   "believed_alive</pfif:status><pfif:text>at the shelter"
                   "</pfif:text></pfif:note>\n");
    fprintf(f, "</pfif:pfif>\n");
    cr_assert_eq(fclose(f), 0);
}

#define LINE_NOBODY (3 + N_PERSONS + 1)

static int search(kz_cli *cli, const char *q, char *id_out)
{
    char *enc = kz_cli_urlencode(q), path[512];
    snprintf(path, sizeof path, "/v1/victims?q=%s&limit=1000", enc);
    free(enc);
    kz_cli_response r = kz_it_call(cli, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "search: %ld %s", r.status, r.body);
    json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
    json_t *items = json_object_get(b, "items");
    int n = (int)json_array_size(items);
    if (id_out != NULL && n > 0)
        snprintf(id_out, 64, "%s",
                 json_string_value(
                     json_object_get(json_array_get(items, 0), "id")));
    json_decref(b);
    kz_cli_response_free(&r);
    return n;
}

static json_t *get_json(kz_cli *cli, const char *path)
{
    kz_cli_response r = kz_it_call(cli, "GET", path, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body);
    json_t *b = json_loadb(r.body, r.body_len, 0, NULL);
    kz_cli_response_free(&r);
    cr_assert_not_null(b);
    return b;
}

/* The file lines the CLI reported ("FILE:LINE: ..." lines that are not
 * warnings), in order. */
static size_t reported(const char *out, const char *file, unsigned long *lines,
                       size_t cap)
{
    size_t n = 0;
    char pat[300];
    snprintf(pat, sizeof pat, "%s:", file);
    for (const char *p = strstr(out, pat); p != NULL && n < cap;
         p = strstr(p + 1, pat)) {
        const char *q = p + strlen(pat);
        if (*q < '0' || *q > '9')
            continue;
        char *end;
        unsigned long l = strtoul(q, &end, 10);
        if (strncmp(end, ": warning", 9) != 0)
            lines[n++] = l;
    }
    return n;
}

static int post(kz_cli *cli, const char *body, char *code)
{
    const char *const hdr[] = {"Content-Type: application/xml", NULL};
    kz_cli_response r;
    cr_assert_eq(kz_cli_request(cli, "POST", "/v1/import/pfif", hdr, body,
                                strlen(body), &r),
                 KZ_CLI_OK);
    int st = (int)r.status;
    if (code != NULL)
        kz_it_error_code(&r, code, 64);
    kz_cli_response_free(&r);
    return st;
}

struct audit_probe {
    kz_cli *cli;
    char rid[64];
    long long count;
    json_t *subjects;
};

/* Whether the audit log (on node 3) holds the export's record. */
static bool export_audited(void *arg)
{
    struct audit_probe *a = arg;
    kz_cli_response r =
        kz_it_call(a->cli, "GET", "/v1/audit?limit=1000", NULL);
    json_t *b = r.status == 200 ? json_loadb(r.body, r.body_len, 0, NULL)
                                : NULL;
    kz_cli_response_free(&r);
    json_t *items = json_object_get(b, "items");
    bool found = false;
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *act = json_string_value(json_object_get(it, "action"));
        if (act == NULL)
            continue;
        if (strcmp(act, "pfif.export") == 0) {
            found = true;
            a->count = json_integer_value(json_object_get(it, "count"));
            snprintf(a->rid, sizeof a->rid, "%s",
                     json_string_value(json_object_get(it, "request_id")));
        } else if (strcmp(act, "victim.export") == 0) {
            json_t *s = json_object_get(it, "subjects");
            if (json_is_array(s))
                json_array_extend(a->subjects, s);
            else
                json_array_append(a->subjects, json_object_get(it, "subject"));
        }
    }
    json_decref(b);
    if (!found)
        json_array_clear(a->subjects);
    return found;
}

static bool in_array(json_t *a, const char *s)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (strcmp(json_string_value(json_array_get(a, i)), s) == 0)
            return true;
    return false;
}

static void patch(kz_cli *cli, const char *id, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/victims/%s", id);
    kz_cli_response r;
    cr_assert_eq(kz_cli_request(cli, "PATCH", path, NULL, body, strlen(body),
                                &r),
                 KZ_CLI_OK);
    cr_assert_eq(r.status, 200, "%ld %s", r.status, r.body);
    kz_cli_response_free(&r);
}

Test(import_pfif, import_reimport_export_and_refusals, .fini = teardown,
     .timeout = 600)
{
    kz_it_up(&cluster, "a:1,b:1,c:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 20000), "no leader");
    kz_cli *cw = kz_it_client(&cluster, "caseworker", "3", 20000);
    char file[300], args[600], *out;
    snprintf(file, sizeof file, "%s/people.pfif.xml", cluster.dir);
    write_doc(file, false);

    /* Dry run: the verdicts, nothing registered. */
    snprintf(args, sizeof args, "import pfif '%s' --batch 100 --dry-run",
             file);
    cr_assert_eq(kz_it_cli(&cluster, "registrar", args, &out), 1, "%s", out);
    free(out);
    cr_assert_eq(search(cw, "たかはし みさき", NULL), 0);

    /* The import: the bad persons and the note about nobody by line. */
    snprintf(args, sizeof args, "import pfif '%s' --batch 100", file);
    cr_assert_eq(kz_it_cli(&cluster, "registrar", args, &out), 1, "%s", out);
    unsigned long lines[16];
    size_t n = reported(out, file, lines, 16);
    cr_assert_eq(n, 3, "%s", out);
    cr_assert_eq(lines[0], 3 + BAD_SEX, "%s", out);
    cr_assert_eq(lines[1], 3 + BAD_NAME, "%s", out);
    cr_assert_eq(lines[2], LINE_NOBODY, "%s", out);
    cr_assert(strstr(out, "248 created, 1 updated") != NULL, "%s", out);
    free(out);

    /* Searchable on another node, by kanji and kana, either order. */
    char id0[64] = "", id1[64] = "", again[64] = "";
    cr_assert_eq(search(cw, "たかはし みさき", id0), 1);
    cr_assert_eq(search(cw, "美咲 高橋", NULL), 1);
    cr_assert_eq(search(cw, "阿部健一", id1), 1);
    cr_assert_eq(search(cw, "避難者", NULL), 246);
    char path[128];
    snprintf(path, sizeof path, "/v1/victims/%s", id0);
    json_t *v = get_json(cw, path);
    cr_assert_str_eq(json_string_value(json_object_get(v, "address")),
                     "石巻市");
    cr_assert_str_eq(json_string_value(json_object_get(v, "status")),
                     "missing", "from its note");
    cr_assert_eq(json_array_size(json_object_get(v, "notes")), 1);
    json_decref(v);

    /* Again, changed: the same records updated, nothing duplicated. */
    write_doc(file, true);
    cr_assert_eq(kz_it_cli(&cluster, "registrar", args, &out), 1, "%s", out);
    cr_assert(strstr(out, "0 created, 249 updated") != NULL, "%s", out);
    free(out);
    cr_assert_eq(search(cw, "たかはし みさき", again), 1, "no duplicate");
    cr_assert_str_eq(again, id0, "the same record");
    cr_assert_eq(search(cw, "避難者", NULL), 246);
    v = get_json(cw, path);
    cr_assert_str_eq(json_string_value(json_object_get(v, "address")),
                     "女川町");
    cr_assert_str_eq(json_string_value(json_object_get(v, "status")), "safe");
    cr_assert_eq(json_array_size(json_object_get(v, "notes")), 2,
                 "n.1 once, n.3 added");
    json_decref(v);

    /* Consent: id0 discloses to anyone, id1 only to its family. */
    kz_cli *reg = kz_it_client(&cluster, "registrar", "2", 20000);
    patch(reg, id0, "{\"consent\":{\"disclose_safety\":true}}");
    patch(reg, id1,
          "{\"consent\":{\"disclose_safety\":true,\"recipients\":"
          "[\"family\"]}}");
    char xml[300];
    snprintf(xml, sizeof xml, "%s/export.xml", cluster.dir);
    snprintf(args, sizeof args, "export pfif --out '%s'", xml);
    cr_assert_eq(kz_it_cli(&cluster, "registrar", args, &out), 0, "%s", out);
    free(out);
    char *doc = kz_it_slurp(xml);
    cr_assert_not_null(doc);
    size_t persons = 0;
    for (const char *p = strstr(doc, "<pfif:person>"); p != NULL;
         p = strstr(p + 1, "<pfif:person>"))
        persons++;
    cr_assert_eq(persons, 1, "%s", doc);
    cr_assert(strstr(doc, "pf.test/p.0</pfif:person_record_id>") != NULL);
    cr_assert(strstr(doc, "pf.test/p.1<") == NULL, "recipients exclude pfif");
    cr_assert(strstr(doc, "<pfif:status>believed_alive</pfif:status>"));
    cr_assert(strstr(doc, "</pfif:pfif>") != NULL);
    free(doc);

    /* The export's audit records (read on node 3). */
    struct audit_probe ap = {.cli = kz_it_client(&cluster, "auditor", "3",
                                                 20000),
                             .subjects = json_array()};
    cr_assert(kz_it_wait(export_audited, &ap, 20000), "no pfif.export record");
    cr_assert_eq(ap.count, 1);
    cr_assert(ap.rid[0] != '\0');
    cr_assert(in_array(ap.subjects, id0), "victim.export names the person");
    cr_assert_not(in_array(ap.subjects, id1));
    json_decref(ap.subjects);
    kz_cli_close(ap.cli);

    /* The endpoint: roles, whole-body refusals. */
    char code[64];
    cr_assert_eq(post(cw, "<pfif:pfif " NS "/>", NULL), 403);
    kz_cli_response r = kz_it_call(cw, "GET", "/v1/export/pfif", NULL);
    cr_assert_eq(r.status, 403);
    kz_cli_response_free(&r);
    cr_assert_eq(post(reg, "<pfif:pfif " NS "><pfif:person>", code), 400);
    cr_assert_str_eq(code, "bad_xml");
    cr_assert_eq(post(reg,
                      "<!DOCTYPE p [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
                      "<pfif:pfif " NS "><pfif:person><pfif:full_name>&e;"
                      "</pfif:full_name></pfif:person></pfif:pfif>",
                      code),
                 400);
    cr_assert_str_eq(code, "dtd_not_allowed");
    size_t cap = 64 + 501 * 80, off = 0;
    char *big = malloc(cap);
    off += (size_t)snprintf(big, cap, "<pfif:pfif %s>", NS);
    for (int i = 0; i < 501; i++)
        off += (size_t)snprintf(big + off, cap - off,
                                "<pfif:person><pfif:person_record_id>b/%d"
                                "</pfif:person_record_id></pfif:person>",
                                i);
    snprintf(big + off, cap - off, "</pfif:pfif>");
    cr_assert_eq(post(reg, big, code), 413);
    cr_assert_str_eq(code, "too_many_records");
    free(big);
    kz_cli_close(reg);
    kz_cli_close(cw);
}
