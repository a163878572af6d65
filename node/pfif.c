/*
 * pfif.c — PFIF 1.4 XML to victims and back (pfif.h).
 *
 * Happy path of the decoder: libxml2 parses the whole body into a tree
 * (a batch is at most 4 MB; lines counted past 65535); the root must be
 * pfif:pfif in the PFIF 1.4 namespace. A first pass turns every
 * <pfif:person> into a JSON object of register fields and through
 * records.c's decoder, its nested notes through the note decoder; a second
 * pass attaches top-level <pfif:note>s to the person they name, or groups
 * them per person as notes-only rows that apply matches against the
 * register. Failure modes: the parser's error (not well-formed, a DTD,
 * too deep) refuses the body whole with its line; so do too many persons
 * or notes. A person or note that breaks a register rule is rejected with
 * its record id and line, and the rest goes on.
 *
 * libxml2 is set up for outside input: XML_PARSE_NONET (no network),
 * neither XML_PARSE_NOENT nor XML_PARSE_DTDLOAD (no entity of a DTD is
 * ever substituted or fetched), any DOCTYPE stops the parser (SAX
 * internalSubset), and errors go to a handler that keeps them quiet (the
 * library would print them, and they may quote the document).
 */
#include "pfif.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "records.h"
#include "utf8.h"

/* ------------------------------------------------------------ statuses */

static const char *const status_map[][2] = {
    {"information_sought", "unknown"}, {"is_note_author", "safe"},
    {"believed_alive", "safe"},        {"believed_missing", "missing"},
    {"believed_dead", "deceased"},     {NULL, NULL}};

const char *kz_node_pfif_status_in(const char *s)
{
    for (int i = 0; s != NULL && status_map[i][0] != NULL; i++)
        if (strcmp(s, status_map[i][0]) == 0)
            return status_map[i][1];
    return NULL;
}

const char *kz_node_pfif_status_out(const char *s)
{
    if (s == NULL)
        return NULL;
    if (strcmp(s, "safe") == 0 || strcmp(s, "injured") == 0)
        return "believed_alive";
    if (strcmp(s, "missing") == 0)
        return "believed_missing";
    if (strcmp(s, "deceased") == 0)
        return "believed_dead";
    return NULL; /* unknown: the note says nothing about it */
}

/* ------------------------------------------------------------- decoder */

struct dec {
    struct kz_node_pfif_batch *out;
    bool dtd;  /* the document declared a DTD: refused whole */
    bool oom;
    int status;
    char code[32];
    char err[KZ_NODE_ERR_MAX];
};

static void refuse(struct dec *d, int status, const char *code,
                   const char *msg)
{
    d->status = status;
    snprintf(d->code, sizeof d->code, "%s", code);
    snprintf(d->err, sizeof d->err, "%s", msg);
}

static void list_add(struct dec *d, json_t *arr, const char *record_id,
                     unsigned long line, const char *field, const char *code,
                     const char *message)
{
    json_t *o = json_pack("{s:s?,s:I,s:s?,s:s?,s:s}", "record_id", record_id,
                          "line", (json_int_t)line, "field", field, "code",
                          code, "message", message);
    if (o == NULL || json_array_append_new(arr, o) != 0)
        d->oom = true;
}

static void reject(struct dec *d, const char *record_id, unsigned long line,
                   const char *field, const char *code, const char *message)
{
    list_add(d, d->out->rejected, record_id, line, field, code, message);
}

static void warn(struct dec *d, const char *record_id, unsigned long line,
                 const char *field, const char *message)
{
    list_add(d, d->out->warnings, record_id, line, field, NULL, message);
}

/* SAX internalSubset: any DOCTYPE. Nothing of it is kept or fetched. */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext,
                       const xmlChar *sys)
{
    (void)name;
    (void)ext;
    (void)sys;
    xmlParserCtxtPtr c = ctx;
    struct dec *d = c->_private;
    d->dtd = true;
    xmlStopParser(c);
}

/* Parser errors are taken from the context's last error, never printed. */
static void on_error(void *ud, xmlErrorPtr e)
{
    (void)ud;
    (void)e;
}

/* libxml2's generic channel: errors raised without a parser context (the
 * encoding converters: "input conversion failed ... bytes 0xE4 0xB8") go
 * there and would be printed on stderr, the node's log, with bytes of the
 * document. Dropped. */
static void on_generic_error(void *ud, const char *fmt, ...)
{
    (void)ud;
    (void)fmt;
}

static bool is_pfif(const xmlNode *n, const char *local)
{
    return n->type == XML_ELEMENT_NODE && n->ns != NULL &&
           n->ns->href != NULL &&
           strcmp((const char *)n->ns->href, KZ_NODE_PFIF_NS) == 0 &&
           (local == NULL || strcmp((const char *)n->name, local) == 0);
}

static unsigned long line_of(const xmlNode *n)
{
    long l = xmlGetLineNo(n);
    return l > 0 ? (unsigned long)l : 0;
}

/* The text of element n, spaces and line ends around it trimmed; NULL when
 * empty. malloc'd. */
static char *text_of(const xmlNode *n)
{
    xmlChar *c = xmlNodeGetContent(n);
    if (c == NULL)
        return NULL;
    const char *s = (const char *)c, *e = s + strlen(s);
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
                     e[-1] == '\r'))
        e--;
    char *r = e > s ? strndup(s, (size_t)(e - s)) : NULL;
    xmlFree(c);
    return r;
}

/* The PFIF fields of a person or note that the register reads. */
enum {
    F_PERSON_RECORD_ID,
    F_FULL_NAME,
    F_GIVEN_NAME,
    F_FAMILY_NAME,
    F_ALTERNATE_NAMES,
    F_SEX,
    F_DATE_OF_BIRTH,
    F_HOME_STREET,
    F_HOME_NEIGHBORHOOD,
    F_HOME_CITY,
    F_HOME_STATE,
    F_HOME_POSTAL_CODE,
    F_NOTE_RECORD_ID,
    F_STATUS,
    F_TEXT,
    F_AUTHOR_NAME,
    F_LAST_KNOWN_LOCATION,
    F_SOURCE_DATE,
    F_ENTRY_DATE,
    F__COUNT
};

static const char *const field_names[F__COUNT] = {
    "person_record_id", "full_name",        "given_name",
    "family_name",      "alternate_names",  "sex",
    "date_of_birth",    "home_street",      "home_neighborhood",
    "home_city",        "home_state",       "home_postal_code",
    "note_record_id",   "status",           "text",
    "author_name",      "last_known_location", "source_date",
    "entry_date"};

struct fields {
    char *v[F__COUNT];
};

static void fields_free(struct fields *f)
{
    for (int i = 0; i < F__COUNT; i++)
        free(f->v[i]);
    memset(f, 0, sizeof *f);
}

/* Reads the PFIF child elements of n (other elements, such as notes, and
 * fields the register does not keep are skipped). The first of a repeated
 * field counts. */
static void read_fields(const xmlNode *n, struct fields *f)
{
    memset(f, 0, sizeof *f);
    for (const xmlNode *c = n->children; c != NULL; c = c->next) {
        if (!is_pfif(c, NULL))
            continue;
        for (int i = 0; i < F__COUNT; i++)
            if (f->v[i] == NULL &&
                strcmp((const char *)c->name, field_names[i]) == 0) {
                f->v[i] = text_of(c);
                break;
            }
    }
}

/* A record id: 1 to KZ_NODE_PFIF_ID_MAX bytes of text. */
static bool valid_id(const char *s)
{
    return s != NULL && kz_node_valid_text(s, KZ_NODE_PFIF_ID_MAX);
}

/* Whether s is a kana reading: hiragana, katakana (full or half width),
 * the long-vowel mark, middle dots and spaces, with at least one kana. */
static bool is_kana(const char *s, size_t len)
{
    size_t i = 0;
    bool any = false;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            i++;
            continue;
        }
        if ((c & 0xF0) != 0xE0 || i + 3 > len)
            return false;
        unsigned cp = ((unsigned)(c & 0x0F) << 12) |
                      ((unsigned)((unsigned char)s[i + 1] & 0x3F) << 6) |
                      ((unsigned)((unsigned char)s[i + 2] & 0x3F));
        if (cp == 0x3000) { /* ideographic space */
            i += 3;
            continue;
        }
        if (!((cp >= 0x3041 && cp <= 0x3096) ||
              (cp >= 0x309B && cp <= 0x30FF) ||
              (cp >= 0x31F0 && cp <= 0x31FF) ||
              (cp >= 0xFF65 && cp <= 0xFF9F)))
            return false;
        any = true;
        i += 3;
    }
    return any;
}

/* The first line of alternate_names that is a kana reading, malloc'd. */
static char *kana_of(const char *alt)
{
    while (alt != NULL && *alt) {
        size_t n = strcspn(alt, "\n");
        const char *s = alt, *e = alt + n;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (e > s && kz_utf8_valid(s, (size_t)(e - s)) &&
            is_kana(s, (size_t)(e - s)))
            return strndup(s, (size_t)(e - s));
        alt += n;
        if (*alt)
            alt++;
    }
    return NULL;
}

/* "YYYY" or "YYYY-MM": a date PFIF allows that the register cannot hold. */
static bool partial_date(const char *s)
{
    size_t n = strlen(s);
    if (n != 4 && n != 7)
        return false;
    for (size_t i = 0; i < n; i++)
        if (i == 4 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return false;
    return true;
}

/* The register's field name in a records.c message -> the PFIF field. */
static const char *pfif_field(const char *err)
{
    static const char *const map[][2] = {
        {"name_kana", "alternate_names"}, {"name", "full_name"},
        {"dob", "date_of_birth"},         {"sex", "sex"},
        {"address", "home_street"},       {"status", "status"},
        {"text", "text"},                 {"author", "author_name"},
        {"last_known_location", "last_known_location"}, {NULL, NULL}};
    size_t n = strcspn(err, ":.");
    for (int i = 0; map[i][0] != NULL; i++)
        if (strlen(map[i][0]) == n && strncmp(err, map[i][0], n) == 0)
            return map[i][1];
    return NULL;
}

static int row_add(struct dec *d, struct kz_node_pfif_row *r)
{
    struct kz_node_pfif_batch *b = d->out;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        struct kz_node_pfif_row *nr = realloc(b->rows, cap * sizeof *nr);
        if (nr == NULL)
            return -1;
        b->rows = nr;
        b->cap = cap;
    }
    b->rows[b->n++] = *r;
    return 0;
}

static struct kz_node_pfif_row *row_find(struct dec *d, const char *id)
{
    for (size_t i = 0; i < d->out->n; i++)
        if (strcmp(d->out->rows[i].v->pfif_record_id, id) == 0)
            return &d->out->rows[i];
    return NULL;
}

/* Adds note element n (about the person of row r, whose PFIF id is pid) to
 * r's victim, or rejects it. */
static void note_add(struct dec *d, struct kz_node_pfif_row *r,
                     const xmlNode *n, const char *pid)
{
    unsigned long line = line_of(n);
    struct fields f;
    char err[KZ_NODE_ERR_MAX];
    read_fields(n, &f);
    const char *nid = f.v[F_NOTE_RECORD_ID];
    Kizuna__Victim *v = r->v;
    if (!valid_id(nid)) {
        reject(d, pid, line, "note_record_id",
               nid ? "bad_record_id" : "missing_record_id",
               nid ? "note_record_id: at most 256 bytes of text without "
                     "control characters"
                   : "note_record_id: required");
        goto out;
    }
    if (f.v[F_PERSON_RECORD_ID] != NULL &&
        strcmp(f.v[F_PERSON_RECORD_ID], pid) != 0) {
        reject(d, nid, line, "person_record_id", "bad_note",
               "a note inside a person must name that person (or none)");
        goto out;
    }
    for (size_t i = 0; i < v->n_notes; i++)
        if (strcmp(v->notes[i]->pfif_note_id, nid) == 0) {
            reject(d, nid, line, "note_record_id", "duplicate_record",
                   "note_record_id: this note is in the document twice");
            goto out;
        }
    if (v->n_notes >= KZ_NODE_PFIF_MAX_PERSON_NOTES) {
        reject(d, nid, line, NULL, "too_many_notes",
               "a person has at most 100 notes in one batch");
        goto out;
    }
    const char *st = "unknown";
    if (f.v[F_STATUS] != NULL &&
        (st = kz_node_pfif_status_in(f.v[F_STATUS])) == NULL) {
        reject(d, nid, line, "status", "bad_request",
               "status: must be one of information_sought is_note_author "
               "believed_alive believed_missing believed_dead");
        goto out;
    }
    const char *when = f.v[F_SOURCE_DATE] ? f.v[F_SOURCE_DATE]
                                          : f.v[F_ENTRY_DATE];
    int64_t at = 0;
    if (when != NULL && !kz_node_parse_time(when, &at)) {
        reject(d, nid, line, f.v[F_SOURCE_DATE] ? "source_date" : "entry_date",
               "bad_request",
               "a note's date must be UTC, YYYY-MM-DDTHH:MM:SSZ");
        goto out;
    }
    json_t *o = json_pack("{s:s,s:s?,s:s?,s:s?}", "status", st, "text",
                          f.v[F_TEXT], "author", f.v[F_AUTHOR_NAME],
                          "last_known_location", f.v[F_LAST_KNOWN_LOCATION]);
    Kizuna__Note *note = NULL;
    int rv = o ? kz_node_note_from_json(o, &note, err, sizeof err) : -1;
    json_decref(o);
    if (o == NULL) {
        d->oom = true;
        goto out;
    }
    if (rv != 0) {
        reject(d, nid, line, pfif_field(err), "bad_request", err);
        goto out;
    }
    note->pfif_note_id = strdup(nid);
    if (when != NULL) {
        note->has_at_ms = 1;
        note->at_ms = at;
    }
    Kizuna__Note **nn = realloc(v->notes, (v->n_notes + 1) * sizeof *nn);
    if (note->pfif_note_id == NULL || nn == NULL) {
        if (nn != NULL)
            v->notes = nn;
        kizuna__note__free_unpacked(note, NULL);
        d->oom = true;
        goto out;
    }
    v->notes = nn;
    v->notes[v->n_notes++] = note;
out:
    fields_free(&f);
}

static char *join_address(const struct fields *f)
{
    static const int order[] = {F_HOME_POSTAL_CODE, F_HOME_STATE, F_HOME_CITY,
                                F_HOME_NEIGHBORHOOD, F_HOME_STREET};
    size_t len = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (f->v[order[i]] != NULL)
            len += strlen(f->v[order[i]]) + 1;
    if (len == 0)
        return NULL;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (f->v[order[i]] != NULL) {
            if (s[0])
                strcat(s, " ");
            strcat(s, f->v[order[i]]);
        }
    return s;
}

static void person(struct dec *d, const xmlNode *n)
{
    unsigned long line = line_of(n);
    struct fields f;
    char err[KZ_NODE_ERR_MAX];
    char *name = NULL, *kana = NULL, *addr = NULL;
    json_t *o = NULL;
    read_fields(n, &f);
    const char *pid = f.v[F_PERSON_RECORD_ID];
    if (!valid_id(pid)) {
        reject(d, NULL, line, "person_record_id",
               pid ? "bad_record_id" : "missing_record_id",
               pid ? "person_record_id: at most 256 bytes of text without "
                     "control characters"
                   : "person_record_id: required");
        goto out;
    }
    if (row_find(d, pid) != NULL) {
        reject(d, pid, line, "person_record_id", "duplicate_record",
               "person_record_id: this person is in the document twice");
        goto out;
    }
    /* The register writes names family name first (DOMAIN.md). */
    const char *fam = f.v[F_FAMILY_NAME], *giv = f.v[F_GIVEN_NAME];
    if (fam != NULL && giv != NULL) {
        size_t l = strlen(fam) + strlen(giv) + 2;
        if ((name = malloc(l)) != NULL)
            snprintf(name, l, "%s %s", fam, giv);
    } else if (f.v[F_FULL_NAME] != NULL) {
        name = strdup(f.v[F_FULL_NAME]);
    } else if (fam != NULL || giv != NULL) {
        name = strdup(fam ? fam : giv);
    } else {
        reject(d, pid, line, "full_name", "missing_name",
               "full_name (or family_name and given_name): required");
        goto out;
    }
    if (name == NULL) {
        d->oom = true;
        goto out;
    }
    o = json_object();
    if (o == NULL || json_object_set_new(o, "name", json_string(name)) != 0) {
        /* json_string refuses bytes that are not UTF-8: libxml2 hands
         * over UTF-8 only, so this is memory. */
        d->oom = true;
        goto out;
    }
    if (f.v[F_ALTERNATE_NAMES] != NULL) {
        kana = kana_of(f.v[F_ALTERNATE_NAMES]);
        if (kana != NULL)
            json_object_set_new(o, "name_kana", json_string(kana));
        else
            warn(d, pid, line, "alternate_names",
                 "no line of alternate_names is a kana reading: left out");
    }
    if (f.v[F_SEX] != NULL)
        json_object_set_new(o, "sex", json_string(f.v[F_SEX]));
    if (f.v[F_DATE_OF_BIRTH] != NULL) {
        if (partial_date(f.v[F_DATE_OF_BIRTH]))
            warn(d, pid, line, "date_of_birth",
                 "the register keeps full dates of birth (YYYY-MM-DD) only: "
                 "left out");
        else
            json_object_set_new(o, "dob", json_string(f.v[F_DATE_OF_BIRTH]));
    }
    if ((addr = join_address(&f)) != NULL)
        json_object_set_new(o, "address", json_string(addr));
    Kizuna__Victim *v = NULL;
    if (kz_node_victim_from_json(o, false, &v, NULL, NULL, err, sizeof err) !=
        0) {
        reject(d, pid, line, pfif_field(err), "bad_request", err);
        goto out;
    }
    struct kz_node_pfif_row r = {.line = line, .v = v};
    /* On an update, what the document gave replaces the record's value;
     * what it left out is kept (a PFIF record carries fewer fields than
     * the register). */
    const char *key;
    json_t *val;
    size_t k = json_object_size(o) + 1;
    r.set = calloc(k, sizeof *r.set);
    json_object_foreach(o, key, val)
    {
        (void)val;
        if (r.set != NULL && (r.set[r.n_set] = strdup(key)) != NULL)
            r.n_set++;
    }
    if (r.set != NULL && (r.set[r.n_set] = strdup("name_reading")) != NULL)
        r.n_set++;
    v->pfif_record_id = strdup(pid);
    if (r.set == NULL || r.n_set != k || v->pfif_record_id == NULL ||
        row_add(d, &r) != 0) {
        for (size_t i = 0; i < r.n_set; i++)
            free(r.set[i]);
        free(r.set);
        kizuna__victim__free_unpacked(v, NULL);
        d->oom = true;
        goto out;
    }
    struct kz_node_pfif_row *me = &d->out->rows[d->out->n - 1];
    for (const xmlNode *c = n->children; c != NULL && !d->oom; c = c->next)
        if (is_pfif(c, "note")) {
            if (++d->out->notes > KZ_NODE_PFIF_MAX_NOTES)
                break; /* the whole body is refused (413) */
            note_add(d, me, c, pid);
        }
out:
    json_decref(o);
    free(name);
    free(kana);
    free(addr);
    fields_free(&f);
}

/* A top-level note: to its person in the document, or to a notes-only row
 * of that person id (one per id). */
static void top_note(struct dec *d, const xmlNode *n)
{
    unsigned long line = line_of(n);
    xmlNode *pidn = NULL;
    for (xmlNode *c = n->children; c != NULL; c = c->next)
        if (is_pfif(c, "person_record_id")) {
            pidn = c;
            break;
        }
    char *pid = pidn ? text_of(pidn) : NULL;
    if (!valid_id(pid)) {
        char *nid = NULL;
        for (xmlNode *c = n->children; c != NULL; c = c->next)
            if (is_pfif(c, "note_record_id")) {
                nid = text_of(c);
                break;
            }
        reject(d, valid_id(nid) ? nid : NULL, line, "person_record_id",
               pid ? "bad_record_id" : "missing_record_id",
               "a top-level note needs the person_record_id of its person");
        free(nid);
        free(pid);
        return;
    }
    struct kz_node_pfif_row *r = row_find(d, pid);
    if (r == NULL) {
        struct kz_node_pfif_row nr = {.line = line, .notes_only = true};
        nr.v = malloc(sizeof *nr.v);
        if (nr.v != NULL) {
            kizuna__victim__init(nr.v);
            nr.v->pfif_record_id = strdup(pid);
        }
        if (nr.v == NULL || nr.v->pfif_record_id == NULL ||
            row_add(d, &nr) != 0) {
            if (nr.v != NULL)
                kizuna__victim__free_unpacked(nr.v, NULL);
            d->oom = true;
            free(pid);
            return;
        }
        r = &d->out->rows[d->out->n - 1];
    }
    note_add(d, r, n, pid);
    free(pid);
}

int kz_node_pfif_decode(const char *body, size_t len,
                        struct kz_node_pfif_batch *out, int *status,
                        char *code, size_t codelen, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->rejected = json_array();
    out->warnings = json_array();
    struct dec d = {.out = out};
    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr doc = NULL;
    if (out->rejected == NULL || out->warnings == NULL) {
        refuse(&d, 500, "internal", "out of memory");
        goto done;
    }
    if (len > KZ_NODE_PFIF_MAX_BYTES) {
        refuse(&d, 413, "too_large",
               "a batch is at most 4 MB: split the file (kizuna import pfif "
               "does)");
        goto done;
    }
    if (len == 0 || len > (size_t)INT32_MAX) {
        refuse(&d, 400, "bad_request", "a PFIF 1.4 XML body is required");
        goto done;
    }
    xmlInitParser();
    /* Per thread in libxml2, and nothing else in the node uses it: set
     * for every decode, so the thread that decodes is always covered. */
    xmlSetGenericErrorFunc(NULL, on_generic_error);
    xmlSetStructuredErrorFunc(NULL, on_error);
    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        refuse(&d, 500, "internal", "out of memory");
        goto done;
    }
    ctxt->_private = &d;
    ctxt->sax->internalSubset = on_doctype;
    ctxt->sax->serror = on_error;
    ctxt->sax->error = NULL;
    ctxt->sax->warning = NULL;
    doc = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR |
                                XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES);
    if (d.dtd) {
        refuse(&d, 400, "dtd_not_allowed",
               "a document type declaration (DTD) is not accepted in a PFIF "
               "import");
        goto done;
    }
    if (doc == NULL) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        char msg[KZ_NODE_ERR_MAX];
        /* libxml2's message names tags, never text; its line ends are
         * dropped so the answer stays one line. */
        snprintf(msg, sizeof msg, "not well-formed XML at line %d: %s",
                 e ? e->line : 0, e && e->message ? e->message : "error");
        msg[strcspn(msg, "\n")] = '\0';
        refuse(&d, 400, "bad_xml", msg);
        goto done;
    }
    xmlNode *root = xmlDocGetRootElement(doc);
    if (root == NULL || !is_pfif(root, "pfif")) {
        refuse(&d, 400, "not_pfif",
               "the root element must be pfif in the PFIF 1.4 namespace "
               "(http://zesty.ca/pfif/1.4)");
        goto done;
    }
    for (xmlNode *c = root->children; c != NULL; c = c->next)
        if (is_pfif(c, "person") &&
            ++out->persons > KZ_NODE_PFIF_MAX_PERSONS) {
            refuse(&d, 413, "too_many_records",
                   "a batch holds at most 500 persons: split the file "
                   "(kizuna import pfif does)");
            goto done;
        }
    for (xmlNode *c = root->children; c != NULL && !d.oom; c = c->next)
        if (is_pfif(c, "person"))
            person(&d, c);
    for (xmlNode *c = root->children; c != NULL && !d.oom; c = c->next)
        if (is_pfif(c, "note")) {
            if (++out->notes > KZ_NODE_PFIF_MAX_NOTES)
                break;
            top_note(&d, c);
        }
    if (out->notes > KZ_NODE_PFIF_MAX_NOTES) {
        refuse(&d, 413, "too_many_records",
               "a batch holds at most 5000 notes: split the file (kizuna "
               "import pfif does)");
        goto done;
    }
    if (out->n > KZ_NODE_PFIF_MAX_PERSONS) {
        refuse(&d, 413, "too_many_records",
               "a batch names at most 500 persons (with the persons its "
               "top-level notes are about): split the file");
        goto done;
    }
    if (d.oom)
        refuse(&d, 500, "internal", "out of memory");
done:
    if (doc != NULL)
        xmlFreeDoc(doc);
    if (ctxt != NULL)
        xmlFreeParserCtxt(ctxt);
    if (d.status != 0) {
        *status = d.status;
        snprintf(code, codelen, "%s", d.code);
        snprintf(err, errlen, "%s", d.err);
        return -1;
    }
    return 0;
}

void kz_node_pfif_batch_free(struct kz_node_pfif_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        kizuna__victim__free_unpacked(b->rows[i].v, NULL);
        for (size_t j = 0; j < b->rows[i].n_set; j++)
            free(b->rows[i].set[j]);
        free(b->rows[i].set);
    }
    free(b->rows);
    json_decref(b->rejected);
    json_decref(b->warnings);
    memset(b, 0, sizeof *b);
}

/* -------------------------------------------------------------- writer */

void kz_node_pfif_buf_put(struct kz_node_text *b, const char *s)
{
    kz_node_text_put(b, s, strlen(s));
}

#define puts_ kz_node_pfif_buf_put

/* Character data: & < > escaped, and what XML 1.0 cannot hold at all (C0
 * controls but tab and line feed) left out; a carriage return as a
 * reference so that it survives a parser's line-end normalisation. The
 * register's text is validated UTF-8, so bytes >= 0x80 go as they are. */
static void escaped(struct kz_node_text *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        unsigned char c = (unsigned char)*s;
        if (c == '&')
            rep = "&amp;";
        else if (c == '<')
            rep = "&lt;";
        else if (c == '>')
            rep = "&gt;";
        else if (c == '"')
            rep = "&quot;";
        else if (c == '\r')
            rep = "&#13;";
        else if (c < 0x20 && c != '\t' && c != '\n')
            rep = "";
        if (rep != NULL) {
            kz_node_text_put(b, run, (size_t)(s - run));
            puts_(b, rep);
            run = s + 1;
        }
    }
    kz_node_text_put(b, run, (size_t)(s - run));
}

static void element(struct kz_node_text *b, const char *indent,
                    const char *name, const char *value)
{
    if (value == NULL || value[0] == '\0')
        return;
    puts_(b, indent);
    puts_(b, "<pfif:");
    puts_(b, name);
    puts_(b, ">");
    escaped(b, value);
    puts_(b, "</pfif:");
    puts_(b, name);
    puts_(b, ">\n");
}

/* PFIF dates: UTC to the second, "YYYY-MM-DDTHH:MM:SSZ". */
static void pfif_time(long long ms, char out[32])
{
    char t[40];
    kz_node_format_time(ms, t, sizeof t);
    snprintf(out, 32, "%.19sZ", t);
}

void kz_node_pfif_begin(struct kz_node_text *b)
{
    puts_(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<pfif:pfif xmlns:pfif=\"" KZ_NODE_PFIF_NS "\">\n");
}

void kz_node_pfif_end(struct kz_node_text *b)
{
    puts_(b, "</pfif:pfif>\n");
}

bool kz_node_pfif_exportable(const Kizuna__Victim *v)
{
    const Kizuna__Consent *c = v->consent;
    if (v->merged_into != NULL)
        return false; /* a duplicate: the record it was merged into speaks */
    if (c == NULL || !c->has_disclose_safety || !c->disclose_safety)
        return false;
    if (c->n_recipients == 0)
        return true;
    for (size_t i = 0; i < c->n_recipients; i++)
        if (c->recipients[i] != NULL && strcmp(c->recipients[i], "pfif") == 0)
            return true;
    return false;
}

void kz_node_pfif_write_person(struct kz_node_text *b,
                               const Kizuna__Victim *v, const char *source)
{
    char pid[KZ_NODE_PFIF_ID_MAX + 64], t[32];
    if (v->pfif_record_id != NULL)
        snprintf(pid, sizeof pid, "%s", v->pfif_record_id);
    else
        snprintf(pid, sizeof pid, KZ_NODE_PFIF_NATIVE_PREFIX "%s",
                 v->id ? v->id : "");
    /* PFIF 1.4's order of person fields (its schema is a sequence). */
    puts_(b, "  <pfif:person>\n");
    element(b, "    ", "person_record_id", pid);
    pfif_time(v->updated_ms, t);
    element(b, "    ", "entry_date", t);
    element(b, "    ", "author_name", source);
    element(b, "    ", "source_name", source);
    element(b, "    ", "source_date", t);
    element(b, "    ", "full_name", v->name);
    element(b, "    ", "alternate_names", v->name_kana);
    element(b, "    ", "sex", v->sex);
    element(b, "    ", "date_of_birth", v->dob);
    element(b, "    ", "home_street", v->address);
    for (size_t i = 0; i < v->n_notes; i++) {
        const Kizuna__Note *n = v->notes[i];
        char nid[KZ_NODE_PFIF_ID_MAX + 96];
        if (n->pfif_note_id != NULL)
            snprintf(nid, sizeof nid, "%s", n->pfif_note_id);
        else
            snprintf(nid, sizeof nid, KZ_NODE_PFIF_DOMAIN "/note.%s.%zu",
                     v->id ? v->id : "", i + 1);
        pfif_time(n->at_ms, t);
        puts_(b, "    <pfif:note>\n");
        element(b, "      ", "note_record_id", nid);
        element(b, "      ", "person_record_id", pid);
        element(b, "      ", "entry_date", t);
        element(b, "      ", "author_name",
                n->author ? n->author : source);
        element(b, "      ", "source_date", t);
        element(b, "      ", "status", kz_node_pfif_status_out(n->status));
        element(b, "      ", "last_known_location", n->last_known_location);
        puts_(b, "      <pfif:text>");
        escaped(b, n->text ? n->text : "");
        puts_(b, "</pfif:text>\n");
        puts_(b, "    </pfif:note>\n");
    }
    puts_(b, "  </pfif:person>\n");
}
