/*
 * test_pfif.c — PFIF 1.4 in and out of the register (node/pfif.h and
 * ImportPfif in register.c): what each PFIF field becomes, per-record
 * rejections with record id and line, warnings for what the register
 * cannot hold, whole-body refusals (not XML, a DTD, not PFIF 1.4, too many
 * persons), the import applied on a real RocksDB store (created, then
 * updated in place on a second import, notes not added twice, top-level
 * notes), and the export writer (escaping, consent, status mapping) read
 * back by the decoder.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "kz_test_keys.h"
#include "pfif.h"
#include "records.h"
#include "register.h"
#include "search.h"

#define NS "xmlns:pfif=\"http://zesty.ca/pfif/1.4\""

static struct kz_node_pfif_batch b;
static int status;
static char code[32], err[KZ_NODE_ERR_MAX];

static int decode(const char *body)
{
    kz_node_pfif_batch_free(&b);
    status = 0;
    code[0] = err[0] = '\0';
    return kz_node_pfif_decode(body, strlen(body), &b, &status, code,
                               sizeof code, err, sizeof err);
}

static void fini(void)
{
    kz_node_pfif_batch_free(&b);
}

TestSuite(pfif, .fini = fini);

/* Rejection i as "line:record_id:field:code". */
static const char *rej(json_t *list, size_t i)
{
    static char out[256];
    json_t *r = json_array_get(list, i);
    cr_assert_not_null(r, "no entry %zu", i);
    const char *id = json_string_value(json_object_get(r, "record_id"));
    const char *f = json_string_value(json_object_get(r, "field"));
    const char *c = json_string_value(json_object_get(r, "code"));
    snprintf(out, sizeof out, "%lld:%s:%s:%s",
             (long long)json_integer_value(json_object_get(r, "line")),
             id ? id : "-", f ? f : "-", c ? c : "-");
    return out;
}

static bool has_set(const struct kz_node_pfif_row *r, const char *name)
{
    for (size_t i = 0; i < r->n_set; i++)
        if (strcmp(r->set[i], name) == 0)
            return true;
    return false;
}

static const char doc1[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<pfif:pfif " NS ">\n"
    "  <pfif:person>\n"
    "    <pfif:person_record_id>pf.example.org/p.1</pfif:person_record_id>\n"
    "    <pfif:full_name>Hanako Yamada</pfif:full_name>\n"
    "    <pfif:given_name>花子</pfif:given_name>\n"
    "    <pfif:family_name>山田</pfif:family_name>\n"
    "    <pfif:alternate_names>Hanako YAMADA\nやまだ はなこ</pfif:alternate_names>\n"
    "    <pfif:sex>female</pfif:sex>\n"
    "    <pfif:date_of_birth>1948-04-02</pfif:date_of_birth>\n"
    "    <pfif:home_street>一番町1-2-3</pfif:home_street>\n"
    "    <pfif:home_city>仙台市青葉区</pfif:home_city>\n"
    "    <pfif:home_state>宮城県</pfif:home_state>\n"
    "    <pfif:home_postal_code>980-0811</pfif:home_postal_code>\n"
    "    <pfif:home_country>JP</pfif:home_country>\n"
    "    <pfif:note>\n"
    "      <pfif:note_record_id>pf.example.org/n.1</pfif:note_record_id>\n"
    "      <pfif:author_name>Taro</pfif:author_name>\n"
    "      <pfif:source_date>2011-03-12T09:30:00Z</pfif:source_date>\n"
    "      <pfif:status>believed_missing</pfif:status>\n"
    "      <pfif:text>Not at the shelter &amp; not home</pfif:text>\n"
    "    </pfif:note>\n"
    "  </pfif:person>\n"
    "  <pfif:person>\n"
    "    <pfif:person_record_id>pf.example.org/p.2</pfif:person_record_id>\n"
    "    <pfif:full_name>佐藤 太郎</pfif:full_name>\n"
    "    <pfif:date_of_birth>1950</pfif:date_of_birth>\n"
    "    <pfif:alternate_names>Taro Sato</pfif:alternate_names>\n"
    "  </pfif:person>\n"
    "  <pfif:note>\n"
    "    <pfif:note_record_id>pf.example.org/n.2</pfif:note_record_id>\n"
    "    <pfif:person_record_id>pf.example.org/p.2</pfif:person_record_id>\n"
    "    <pfif:source_date>2011-03-13T10:00:00Z</pfif:source_date>\n"
    "    <pfif:status>is_note_author</pfif:status>\n"
    "    <pfif:text>I am safe</pfif:text>\n"
    "  </pfif:note>\n"
    "  <pfif:note>\n"
    "    <pfif:note_record_id>pf.example.org/n.3</pfif:note_record_id>\n"
    "    <pfif:person_record_id>pf.example.org/p.9</pfif:person_record_id>\n"
    "    <pfif:status>believed_dead</pfif:status>\n"
    "    <pfif:text>seen</pfif:text>\n"
    "  </pfif:note>\n"
    "</pfif:pfif>\n";

Test(pfif, person_fields_map_to_the_register)
{
    cr_assert_eq(decode(doc1), 0, "%s %s", code, err);
    cr_assert_eq(b.persons, 2);
    cr_assert_eq(b.notes, 3);
    cr_assert_eq(b.n, 3, "two persons and one notes-only row");
    cr_assert_eq(json_array_size(b.rejected), 0, "%s", rej(b.rejected, 0));
    const struct kz_node_pfif_row *r = &b.rows[0];
    const Kizuna__Victim *v = r->v;
    cr_assert_eq(r->line, 3);
    cr_assert_not(r->notes_only);
    cr_assert_null(v->id, "ids are drawn by the proposer");
    cr_assert_str_eq(v->pfif_record_id, "pf.example.org/p.1");
    cr_assert_str_eq(v->name, "山田 花子", "family name first");
    cr_assert_str_eq(v->name_kana, "やまだ はなこ", "the kana line");
    cr_assert_str_eq(v->sex, "female");
    cr_assert_str_eq(v->dob, "1948-04-02");
    cr_assert_str_eq(v->address, "980-0811 宮城県 仙台市青葉区 一番町1-2-3");
    cr_assert(has_set(r, "name") && has_set(r, "name_kana") &&
              has_set(r, "dob") && has_set(r, "sex") &&
              has_set(r, "address") && has_set(r, "name_reading"));
    cr_assert_eq(v->n_notes, 1);
    const Kizuna__Note *n = v->notes[0];
    cr_assert_str_eq(n->pfif_note_id, "pf.example.org/n.1");
    cr_assert_str_eq(n->status, "missing");
    cr_assert_str_eq(n->text, "Not at the shelter & not home");
    cr_assert_str_eq(n->author, "Taro");
    cr_assert(n->has_at_ms);
    cr_assert_eq(n->at_ms, 1299922200000LL);
    cr_assert_null(v->status, "apply derives the status from new notes");

    r = &b.rows[1];
    v = r->v;
    cr_assert_str_eq(v->name, "佐藤 太郎");
    cr_assert_null(v->dob, "a year alone is left out");
    cr_assert_null(v->name_kana);
    cr_assert_not(has_set(r, "dob"), "a field left out is not replaced");
    cr_assert_eq(v->n_notes, 1, "the top-level note joins its person");
    cr_assert_str_eq(v->notes[0]->status, "safe");
    cr_assert_eq(json_array_size(b.warnings), 2);
    cr_assert_str_eq(rej(b.warnings, 0), "25:pf.example.org/p.2:alternate_names:-");
    cr_assert_str_eq(rej(b.warnings, 1), "25:pf.example.org/p.2:date_of_birth:-");

    r = &b.rows[2];
    cr_assert(r->notes_only, "a note about a person not in the document");
    cr_assert_str_eq(r->v->pfif_record_id, "pf.example.org/p.9");
    cr_assert_null(r->v->name);
    cr_assert_eq(r->v->n_notes, 1);
    cr_assert_str_eq(r->v->notes[0]->status, "deceased");
    cr_assert_not(r->v->notes[0]->has_at_ms, "dated on apply");
    cr_assert_eq(r->line, 38);
}

Test(pfif, statuses)
{
    cr_assert_str_eq(kz_node_pfif_status_in("information_sought"), "unknown");
    cr_assert_str_eq(kz_node_pfif_status_in("is_note_author"), "safe");
    cr_assert_str_eq(kz_node_pfif_status_in("believed_alive"), "safe");
    cr_assert_str_eq(kz_node_pfif_status_in("believed_missing"), "missing");
    cr_assert_str_eq(kz_node_pfif_status_in("believed_dead"), "deceased");
    cr_assert_null(kz_node_pfif_status_in("alive"));
    cr_assert_str_eq(kz_node_pfif_status_out("safe"), "believed_alive");
    cr_assert_str_eq(kz_node_pfif_status_out("injured"), "believed_alive");
    cr_assert_str_eq(kz_node_pfif_status_out("missing"), "believed_missing");
    cr_assert_str_eq(kz_node_pfif_status_out("deceased"), "believed_dead");
    cr_assert_null(kz_node_pfif_status_out("unknown"));
}

Test(pfif, records_the_register_refuses_are_listed_with_their_lines)
{
    cr_assert_eq(decode("<pfif:pfif " NS ">\n"
                        "<pfif:person>\n"
                        "  <pfif:full_name>No Id</pfif:full_name>\n"
                        "</pfif:person>\n"
                        "<pfif:person>\n"
                        "  <pfif:person_record_id>x/1</pfif:person_record_id>\n"
                        "  <pfif:sex>unknown</pfif:sex>\n"
                        "  <pfif:full_name>A</pfif:full_name>\n"
                        "</pfif:person>\n"
                        "<pfif:person>\n"
                        "  <pfif:person_record_id>x/2</pfif:person_record_id>\n"
                        "</pfif:person>\n"
                        "<pfif:person>\n"
                        "  <pfif:person_record_id>x/3</pfif:person_record_id>\n"
                        "  <pfif:full_name>B</pfif:full_name>\n"
                        "  <pfif:date_of_birth>1950-02-30</pfif:date_of_birth>\n"
                        "  <pfif:note><pfif:status>fine</pfif:status>"
                        "<pfif:note_record_id>x/n1</pfif:note_record_id>"
                        "</pfif:note>\n"
                        "</pfif:person>\n"
                        "<pfif:person>\n"
                        "  <pfif:person_record_id>x/4</pfif:person_record_id>\n"
                        "  <pfif:full_name>C</pfif:full_name>\n"
                        "  <pfif:note><pfif:status>fine</pfif:status>"
                        "<pfif:note_record_id>x/n1</pfif:note_record_id>"
                        "</pfif:note>\n"
                        "  <pfif:note><pfif:text>no id</pfif:text></pfif:note>\n"
                        "</pfif:person>\n"
                        "<pfif:person>\n"
                        "  <pfif:person_record_id>x/4</pfif:person_record_id>\n"
                        "  <pfif:full_name>C again</pfif:full_name>\n"
                        "</pfif:person>\n"
                        "<pfif:note><pfif:text>orphan</pfif:text></pfif:note>\n"
                        "</pfif:pfif>"),
                 0, "%s", err);
    cr_assert_eq(b.persons, 6);
    cr_assert_eq(b.n, 1, "only x/4 is taken");
    cr_assert_str_eq(b.rows[0].v->pfif_record_id, "x/4");
    cr_assert_eq(b.rows[0].v->n_notes, 0, "its notes were refused");
    size_t k = json_array_size(b.rejected);
    cr_assert_eq(k, 8, "%zu", k);
    cr_assert_str_eq(rej(b.rejected, 0), "2:-:person_record_id:missing_record_id");
    cr_assert_str_eq(rej(b.rejected, 1), "5:x/1:sex:bad_request");
    cr_assert_str_eq(rej(b.rejected, 2), "10:x/2:full_name:missing_name");
    cr_assert_str_eq(rej(b.rejected, 3), "13:x/3:date_of_birth:bad_request");
    cr_assert_str_eq(rej(b.rejected, 4), "22:x/n1:status:bad_request");
    cr_assert_str_eq(rej(b.rejected, 5), "23:x/4:note_record_id:missing_record_id");
    cr_assert_str_eq(rej(b.rejected, 6), "25:x/4:person_record_id:duplicate_record");
    cr_assert_str_eq(rej(b.rejected, 7), "29:-:person_record_id:missing_record_id");
    /* Notes of a refused person are not looked at. */
    cr_assert_eq(b.notes, 3);
}

Test(pfif, whole_body_refusals)
{
    cr_assert_eq(decode("<pfif:pfif " NS "><pfif:person>"), -1);
    cr_assert_eq(status, 400);
    cr_assert_str_eq(code, "bad_xml");
    cr_assert(strstr(err, "line 1") != NULL, "%s", err);

    cr_assert_eq(decode("<?xml version=\"1.0\"?>\n"
                        "<!DOCTYPE pfif [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n"
                        "<pfif:pfif " NS "><pfif:person><pfif:full_name>&x;"
                        "</pfif:full_name></pfif:person></pfif:pfif>"),
                 -1);
    cr_assert_eq(status, 400);
    cr_assert_str_eq(code, "dtd_not_allowed");

    cr_assert_eq(decode("<!DOCTYPE lol [<!ENTITY a \"aaaaaaaaaa\">"
                        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
                        "<pfif:pfif " NS "/>"),
                 -1);
    cr_assert_str_eq(code, "dtd_not_allowed");

    cr_assert_eq(decode("<pfif:pfif xmlns:pfif=\"http://zesty.ca/pfif/1.2\"/>"),
                 -1);
    cr_assert_eq(status, 400);
    cr_assert_str_eq(code, "not_pfif");

    cr_assert_eq(decode("<pfif " NS "/>"), -1, "no namespace on the root");
    cr_assert_str_eq(code, "not_pfif");

    cr_assert_eq(decode(""), -1);
    cr_assert_eq(status, 400);

    /* 501 persons */
    size_t cap = 600 * 100, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big + len, cap - len, "<pfif:pfif %s>", NS);
    for (int i = 0; i < 501; i++)
        len += (size_t)snprintf(big + len, cap - len,
                                "<pfif:person><pfif:person_record_id>x/%d"
                                "</pfif:person_record_id></pfif:person>",
                                i);
    snprintf(big + len, cap - len, "</pfif:pfif>");
    cr_assert_eq(decode(big), -1);
    cr_assert_eq(status, 413);
    cr_assert_str_eq(code, "too_many_records");
    free(big);
}

Test(pfif, lines_past_65535_are_counted)
{
    size_t cap = 70000 + 512;
    char *s = malloc(cap);
    size_t len = (size_t)snprintf(s, cap, "<pfif:pfif %s>", NS);
    memset(s + len, '\n', 70000);
    len += 70000;
    snprintf(s + len, cap - len,
             "<pfif:person><pfif:person_record_id>x/1</pfif:person_record_id>"
             "</pfif:person></pfif:pfif>");
    cr_assert_eq(decode(s), 0);
    cr_assert_str_eq(rej(b.rejected, 0), "70001:x/1:full_name:missing_name");
    free(s);
}

/* ----------------------------------------------------------- apply */

static char dir[64];
static kz_stor *st;
static struct kz_node_keys keys;
static uint64_t idx = 2;

static void store_init(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz_pfif_XXXXXX");
    kz_test_store_open(dir, "131016", &st, &keys);
    idx = 2;
}

static void store_fini(void)
{
    kz_node_pfif_batch_free(&b);
    kz_test_store_close(dir, st, &keys);
}

/* Decodes doc and applies it as the proposer would (ids "N<k>"), with an
 * audit context; returns the status and the body. */
static int import(const char *doc, int first_id, json_t **body)
{
    cr_assert_eq(decode(doc), 0, "%s", err);
    Kizuna__PfifPerson *ps = calloc(b.n, sizeof *ps);
    Kizuna__PfifPerson **pp = calloc(b.n, sizeof *pp);
    for (size_t i = 0; i < b.n; i++) {
        kizuna__pfif_person__init(&ps[i]);
        pp[i] = &ps[i];
        ps[i].victim = b.rows[i].v;
        ps[i].set = b.rows[i].set;
        ps[i].n_set = b.rows[i].n_set;
        ps[i].has_notes_only = 1;
        ps[i].notes_only = b.rows[i].notes_only;
        if (!b.rows[i].notes_only) {
            char id[16];
            snprintf(id, sizeof id, "N%d", first_id + (int)i);
            b.rows[i].v->id = strdup(id);
        }
    }
    Kizuna__ImportPfif ip = KIZUNA__IMPORT_PFIF__INIT;
    ip.n_persons = b.n;
    ip.persons = pp;
    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    ctx.org = "131016";
    ctx.role = "registrar";
    ctx.request_id = "req-pfif";
    Kizuna__Command c = KIZUNA__COMMAND__INIT;
    c.op_case = KIZUNA__COMMAND__OP_IMPORT_PFIF;
    c.import_pfif = &ip;
    c.audit = &ctx;
    int s = kz_test_apply(st, &keys, "131016", &idx, &c, body);
    free(pp);
    free(ps);
    return s;
}

static Kizuna__Victim *load(const char *id)
{
    Kizuna__Victim *v = NULL;
    cr_assert_eq(kz_node_load_victim(st, &keys, "131016", id, &v), KZ_OK,
                 "load %s", id);
    return v;
}

static size_t search_count(const char *q)
{
    struct kz_node_search s = {.q = q, .limit = 50};
    struct kz_node_search_page pg;
    cr_assert_eq(kz_node_search_run(st, &keys, "131016", &s, &pg), 0);
    size_t n = json_array_size(pg.items);
    json_decref(pg.items);
    return n;
}

Test(pfif_apply, import_creates_then_updates_in_place, .init = store_init,
     .fini = store_fini)
{
    json_t *body;
    cr_assert_eq(import(doc1, 1, &body), 200);
    cr_assert_eq(json_integer_value(json_object_get(body, "created")), 2);
    cr_assert_eq(json_integer_value(json_object_get(body, "updated")), 0);
    json_t *ps = json_object_get(body, "persons");
    cr_assert_eq(json_array_size(ps), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(ps, 2),
                                                       "outcome")),
                     "not_found");
    json_decref(body);

    Kizuna__Victim *v = load("N1");
    cr_assert_str_eq(v->name, "山田 花子");
    cr_assert_str_eq(v->pfif_record_id, "pf.example.org/p.1");
    cr_assert_str_eq(v->status, "missing", "from its note");
    cr_assert_eq(v->n_notes, 1);
    uint64_t ver = v->version;
    kizuna__victim__free_unpacked(v, NULL);
    v = load("N2");
    cr_assert_str_eq(v->status, "safe");
    kizuna__victim__free_unpacked(v, NULL);
    cr_assert_eq(search_count("やまだ はなこ"), 1);
    cr_assert_eq(search_count("山田花子"), 1);

    /* The same records again, changed: same ids, updated, no new note. */
    char *doc2 = strdup(doc1);
    char *p = strstr(doc2, "一番町1-2-3");
    memcpy(p, "二番町", strlen("二番町"));
    p = strstr(doc2, "<pfif:text>I am safe");
    cr_assert_not_null(p);
    cr_assert_eq(import(doc2, 10, &body), 200);
    cr_assert_eq(json_integer_value(json_object_get(body, "created")), 0);
    cr_assert_eq(json_integer_value(json_object_get(body, "updated")), 2);
    cr_assert_eq(json_integer_value(json_object_get(body, "notes_added")), 0);
    json_decref(body);
    free(doc2);
    v = load("N1");
    cr_assert_str_eq(v->address, "980-0811 宮城県 仙台市青葉区 二番町1-2-3");
    cr_assert_eq(v->n_notes, 1, "a note already held is not added again");
    cr_assert_gt(v->version, ver);
    kizuna__victim__free_unpacked(v, NULL);
    Kizuna__Victim *none = NULL;
    cr_assert_eq(kz_node_load_victim(st, &keys, "131016", "N10", &none),
                 KZ_ENOTFOUND, "no second record");
    cr_assert_eq(search_count("やまだ はなこ"), 1);
    cr_assert_eq(search_count("二番町"), 0, "addresses are not searched");

    /* A later note about p.1 (top level, person not in the document). */
    cr_assert_eq(import("<pfif:pfif " NS "><pfif:note>"
                        "<pfif:note_record_id>pf.example.org/n.9"
                        "</pfif:note_record_id><pfif:person_record_id>"
                        "pf.example.org/p.1</pfif:person_record_id>"
                        "<pfif:source_date>2011-03-20T00:00:00Z"
                        "</pfif:source_date><pfif:status>believed_alive"
                        "</pfif:status><pfif:text>found</pfif:text>"
                        "</pfif:note></pfif:pfif>",
                        20, &body),
                 200);
    cr_assert_eq(json_integer_value(json_object_get(body, "updated")), 1);
    cr_assert_eq(json_integer_value(json_object_get(body, "notes_added")), 1);
    json_decref(body);
    v = load("N1");
    cr_assert_eq(v->n_notes, 2);
    cr_assert_str_eq(v->status, "safe");
    cr_assert_str_eq(v->name, "山田 花子", "a notes-only update keeps the rest");
    kizuna__victim__free_unpacked(v, NULL);

    /* Every created or updated person has its audit record. */
    uint64_t next = 0;
    json_t *a = kz_node_audit_list(st, "131016", 0, INT64_MIN, INT64_MAX, 100,
                                   NULL, &next);
    size_t creates = 0, patches = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *act = json_string_value(
            json_object_get(json_array_get(a, i), "action"));
        creates += act && strcmp(act, "victim.create") == 0;
        patches += act && strcmp(act, "victim.patch") == 0;
    }
    cr_assert_eq(creates, 2);
    cr_assert_eq(patches, 3);
    json_decref(a);
}

Test(pfif_apply, an_export_read_back_updates_the_native_record,
     .init = store_init, .fini = store_fini)
{
    /* A record registered natively, exported, imported again. */
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    v.id = "V7";
    v.name = "鈴木 一郎";
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    cv.victim = &v;
    Kizuna__Command c = KIZUNA__COMMAND__INIT;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    c.create_victim = &cv;
    cr_assert_eq(kz_test_apply(st, &keys, "131016", &idx, &c, NULL), 201);
    Kizuna__Victim *s = load("V7");
    struct kz_node_text out = {0};
    kz_node_pfif_begin(&out);
    kz_node_pfif_write_person(&out, s, "Kizuna 131016");
    kz_node_pfif_end(&out);
    kizuna__victim__free_unpacked(s, NULL);
    cr_assert(strstr(out.p, "kizuna.example/victim.V7") != NULL, "%s", out.p);
    json_t *body;
    cr_assert_eq(import(out.p, 1, &body), 200);
    cr_assert_eq(json_integer_value(json_object_get(body, "updated")), 1);
    cr_assert_eq(json_integer_value(json_object_get(body, "created")), 0);
    json_decref(body);
    free(out.p);
}

Test(pfif_apply, a_batch_naming_a_record_twice_is_refused_whole,
     .init = store_init, .fini = store_fini)
{
    Kizuna__Victim v1 = KIZUNA__VICTIM__INIT, v2 = KIZUNA__VICTIM__INIT;
    v1.id = "A1";
    v2.id = "A2";
    v1.name = v2.name = "X";
    v1.pfif_record_id = v2.pfif_record_id = "same/1";
    Kizuna__PfifPerson p1 = KIZUNA__PFIF_PERSON__INIT,
                       p2 = KIZUNA__PFIF_PERSON__INIT;
    p1.victim = &v1;
    p2.victim = &v2;
    Kizuna__PfifPerson *pp[] = {&p1, &p2};
    Kizuna__ImportPfif ip = KIZUNA__IMPORT_PFIF__INIT;
    ip.n_persons = 2;
    ip.persons = pp;
    Kizuna__Command c = KIZUNA__COMMAND__INIT;
    c.op_case = KIZUNA__COMMAND__OP_IMPORT_PFIF;
    c.import_pfif = &ip;
    cr_assert_eq(kz_test_apply(st, &keys, "131016", &idx, &c, NULL), 400);
    Kizuna__Victim *none = NULL;
    cr_assert_eq(kz_node_load_victim(st, &keys, "131016", "A1", &none),
                 KZ_ENOTFOUND);
    /* A field outside the PFIF mapping in `set` is refused too. */
    v2.pfif_record_id = "other/2";
    char *set[] = {"consent"};
    p2.set = set;
    p2.n_set = 1;
    cr_assert_eq(kz_test_apply(st, &keys, "131016", &idx, &c, NULL), 400);
}

/* ---------------------------------------------------------- writer */

Test(pfif, export_escapes_and_reads_back)
{
    Kizuna__Victim v = KIZUNA__VICTIM__INIT;
    Kizuna__Note n = KIZUNA__NOTE__INIT;
    Kizuna__Note *notes[] = {&n};
    Kizuna__Consent c = KIZUNA__CONSENT__INIT;
    v.id = "V1";
    v.name = "A <b> & \"c\"";
    v.name_kana = "ヤマダ";
    v.sex = "male";
    v.dob = "1970-01-02";
    v.address = "x y";
    v.updated_ms = 1300000000000LL;
    n.status = "deceased";
    n.text = "line1\nline2 ]]> </pfif:text>";
    n.at_ms = 1300000001000LL;
    v.n_notes = 1;
    v.notes = notes;
    cr_assert_not(kz_node_pfif_exportable(&v), "no consent");
    v.consent = &c;
    cr_assert_not(kz_node_pfif_exportable(&v));
    c.has_disclose_safety = c.disclose_safety = 1;
    cr_assert(kz_node_pfif_exportable(&v));
    char *fam[] = {"family"}, *both[] = {"family", "pfif"};
    c.n_recipients = 1;
    c.recipients = fam;
    cr_assert_not(kz_node_pfif_exportable(&v), "recipients without pfif");
    c.recipients = both;
    c.n_recipients = 2;
    cr_assert(kz_node_pfif_exportable(&v));
    v.merged_into = "x1";
    cr_assert_not(kz_node_pfif_exportable(&v), "a merged duplicate");
    v.merged_into = NULL;

    struct kz_node_text out = {0};
    kz_node_pfif_begin(&out);
    kz_node_pfif_write_person(&out, &v, "Kizuna 131016");
    kz_node_pfif_end(&out);
    cr_assert_not(out.oom);
    cr_assert(strstr(out.p, "<pfif:full_name>A &lt;b&gt; &amp; &quot;c&quot;"
                            "</pfif:full_name>") != NULL,
              "%s", out.p);
    cr_assert(strstr(out.p, "<pfif:status>believed_dead</pfif:status>"));
    cr_assert(strstr(out.p, "<pfif:entry_date>2011-03-13T07:06:40Z<"));
    cr_assert(strstr(out.p, "kizuna.example/note.V1.1"));

    cr_assert_eq(decode(out.p), 0, "%s", err);
    cr_assert_eq(b.n, 1);
    const Kizuna__Victim *r = b.rows[0].v;
    cr_assert_str_eq(r->pfif_record_id, "kizuna.example/victim.V1");
    cr_assert_str_eq(r->name, v.name);
    cr_assert_str_eq(r->name_kana, "ヤマダ");
    cr_assert_str_eq(r->dob, "1970-01-02");
    cr_assert_str_eq(r->sex, "male");
    cr_assert_eq(r->n_notes, 1);
    cr_assert_str_eq(r->notes[0]->text, n.text);
    cr_assert_str_eq(r->notes[0]->status, "deceased");
    cr_assert_eq(r->notes[0]->at_ms, 1300000001000LL);
    free(out.p);
}

/* libxml2 prints some errors itself (its encoding converters quote bytes
 * of the document): none may reach stderr, the node's log. */
static void redirect(void)
{
    cr_redirect_stderr();
}

Test(pfif, nothing_of_the_document_reaches_stderr, .init = redirect,
     .fini = fini)
{
    cr_assert_eq(decode("<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n"
                        "<pfif:pfif " NS "><pfif:person><pfif:full_name>"
                        "中村</pfif:full_name></pfif:person></pfif:pfif>"),
                 -1);
    cr_assert_eq(status, 400);
    cr_assert_eq(decode("<pfif:pfif " NS "><pfif:person>&nope;"
                        "</pfif:person></pfif:pfif>"),
                 -1);
    fflush(stderr);
    cr_assert_stderr_eq_str("");
}
