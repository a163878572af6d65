/*
 * records.c — JSON <-> protobuf for victims, notes and shelters.
 *
 * The happy path: jansson parses the body (in http_api.c), a decoder here
 * walks the object once, checks every key against the table of known fields,
 * validates each value and copies it into the protobuf message. Every error
 * names the field. The encoders turn a stored record back into the JSON shape
 * of API.md.
 */
#include "records.h"
#include "text.h"
#include "name_reading.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const kz_node_sex_codes[] = {"female", "male", "other", NULL};
const char *const kz_node_status_codes[] = {"safe",     "injured", "missing",
                                            "deceased", "unknown", NULL};
const char *const kz_node_damage_codes[] = {
    "zenkai",      "kaitai", "choki_hinan",   "daikibo_hankai",
    "chukibo_hankai", "hankai", "jun_hankai", "ichibu_sonkai",
    "none",        NULL};
const char *const kz_node_needs_codes[] = {"infant",   "elderly",
                                           "disabled", "pregnant",
                                           "chronic_illness", "medication",
                                           NULL};

/* Byte limits of free-text fields (UTF-8: a kanji is 3 bytes). */
#define MAX_NAME 256
#define MAX_ADDRESS 512
#define MAX_CONTACT 256
#define MAX_TEXT 4000
#define MAX_RECIPIENTS 32

bool kz_node_valid_code(const char *s, const char *const *codes)
{
    if (s == NULL)
        return false;
    for (; *codes; codes++)
        if (strcmp(s, *codes) == 0)
            return true;
    return false;
}

bool kz_node_valid_date(const char *s)
{
    int y, m, d;
    char tail;
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return false;
    if (y < 1850 || y > 2200 || m < 1 || m > 12 || d < 1)
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int max = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        max = 29;
    return d <= max;
}

bool kz_node_valid_ref(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
              c == ':'))
            return false;
    }
    return true;
}

/* Rejects control characters (C0, DEL, C1; newline and tab only in
 * multi-line text) so no record can smuggle terminal escapes into a CLI
 * table. */
static bool clean_text(const char *s, bool multiline)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p < 0x20 && !(multiline && (*p == '\n' || *p == '\t'))) ||
            *p == 0x7f)
            return false;
        /* C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F): U+009B starts an
         * escape sequence on terminals that honour C1. */
        if (p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F)
            return false;
    }
    return true;
}

bool kz_node_valid_text(const char *s, size_t max)
{
    if (s == NULL || s[0] == '\0' || strlen(s) > max || !clean_text(s, false))
        return false;
    return kz_utf8_valid(s, strlen(s));
}

/* RFC 3339 years have four digits: 0000-01-01T00:00:00.000Z and
 * 9999-12-31T23:59:59.999Z in ms since the epoch. */
#define MIN_TIME_MS (-62167219200000LL)
#define MAX_TIME_MS 253402300799999LL

bool kz_node_parse_time(const char *s, int64_t *ms)
{
    char date[11];
    int hh, mm, ss, n = 0;
    if (strlen(s) < 20 || s[10] != 'T')
        return false;
    memcpy(date, s, 10);
    date[10] = '\0';
    if (!kz_node_valid_date(date) ||
        sscanf(s + 11, "%2d:%2d:%2d%n", &hh, &mm, &ss, &n) != 3 || n != 8 ||
        hh > 23 || mm > 59 || ss > 60)
        return false;
    const char *p = s + 19;
    long frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        if (digits == 0)
            return false;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0)
        return false;
    struct tm tm = {0};
    tm.tm_year = atoi(date) - 1900;
    tm.tm_mon = atoi(date + 5) - 1;
    tm.tm_mday = atoi(date + 8);
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    *ms = (int64_t)timegm(&tm) * 1000 + frac;
    return true;
}

void kz_node_format_time(long long ms, char *buf, size_t len)
{
    /* Times come from commands (the proposer's clock), but one outside
     * RFC 3339's range (a forged or corrupt command) must still format as a
     * valid time, the same on every replica: it is clamped, which also keeps
     * gmtime_r from failing and leaving tm unset. Times before 1970 round
     * down (-1 ms is 23:59:59.999), never print a negative fraction. */
    if (ms < MIN_TIME_MS)
        ms = MIN_TIME_MS;
    if (ms > MAX_TIME_MS)
        ms = MAX_TIME_MS;
    long long secs = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)frac);
}

static int fail(char *err, size_t errlen, const char *field, const char *what)
{
    snprintf(err, errlen, "%s: %s", field, what);
    return -1;
}

/* A string field: type, size, text rules. *dst gets a malloc'd copy or NULL
 * for JSON null (when nullable). */
static int get_string(json_t *v, const char *field, size_t max, bool nullable,
                      bool multiline, char **dst, char *err, size_t errlen)
{
    if (json_is_null(v)) {
        if (!nullable)
            return fail(err, errlen, field, "must not be null");
        *dst = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return fail(err, errlen, field, "must be a string");
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n != strlen(s))
        return fail(err, errlen, field, "must not contain NUL");
    if (n > max) {
        char what[64];
        snprintf(what, sizeof what, "longer than %zu bytes", max);
        return fail(err, errlen, field, what);
    }
    if (!clean_text(s, multiline))
        return fail(err, errlen, field, "contains control characters");
    *dst = strdup(s);
    return *dst ? 0 : fail(err, errlen, field, "out of memory");
}

static int get_coded(json_t *v, const char *field, const char *const *codes,
                     bool nullable, char **dst, char *err, size_t errlen)
{
    if (get_string(v, field, 64, nullable, false, dst, err, errlen) != 0)
        return -1;
    if (*dst != NULL && !kz_node_valid_code(*dst, codes)) {
        free(*dst);
        *dst = NULL;
        char what[300];
        int off = snprintf(what, sizeof what, "must be one of");
        for (const char *const *c = codes; *c && off < (int)sizeof what; c++)
            off += snprintf(what + off, sizeof what - (size_t)off, " %s", *c);
        return fail(err, errlen, field, what);
    }
    return 0;
}

static int get_date(json_t *v, const char *field, char **dst, char *err,
                    size_t errlen)
{
    if (get_string(v, field, 10, true, false, dst, err, errlen) != 0)
        return fail(err, errlen, field, "must be a date YYYY-MM-DD");
    if (*dst != NULL && !kz_node_valid_date(*dst)) {
        free(*dst);
        *dst = NULL;
        return fail(err, errlen, field, "must be a valid date YYYY-MM-DD");
    }
    return 0;
}

static int get_ref(json_t *v, const char *field, char **dst, char *err,
                   size_t errlen)
{
    if (get_string(v, field, 64, true, false, dst, err, errlen) != 0)
        return -1;
    if (*dst != NULL && !kz_node_valid_ref(*dst)) {
        free(*dst);
        *dst = NULL;
        return fail(err, errlen, field,
                    "must be 1-64 characters of A-Z a-z 0-9 _ - . :");
    }
    return 0;
}

static int get_needs(json_t *v, Kizuna__Victim *out, char *err, size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return fail(err, errlen, "needs", "must be an array of codes");
    size_t n = json_array_size(v);
    if (n > 6)
        return fail(err, errlen, "needs", "has too many entries");
    out->needs = calloc(n ? n : 1, sizeof *out->needs);
    if (out->needs == NULL)
        return fail(err, errlen, "needs", "out of memory");
    for (size_t i = 0; i < n; i++) {
        char *code;
        if (get_coded(json_array_get(v, i), "needs", kz_node_needs_codes, false,
                      &code, err, errlen) != 0)
            return -1;
        for (size_t j = 0; j < out->n_needs; j++)
            if (strcmp(out->needs[j], code) == 0) {
                free(code);
                return fail(err, errlen, "needs", "has a duplicate code");
            }
        out->needs[out->n_needs++] = code;
    }
    return 0;
}

static int get_consent(json_t *v, Kizuna__Victim *out, char *err,
                       size_t errlen)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail(err, errlen, "consent", "must be an object");
    Kizuna__Consent *c = malloc(sizeof *c);
    if (c == NULL)
        return fail(err, errlen, "consent", "out of memory");
    kizuna__consent__init(c);
    out->consent = c;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (strcmp(key, "disclose_safety") == 0) {
            if (!json_is_boolean(val))
                return fail(err, errlen, "consent.disclose_safety",
                            "must be true or false");
            c->has_disclose_safety = 1;
            c->disclose_safety = json_is_true(val);
        } else if (strcmp(key, "recipients") == 0) {
            if (!json_is_array(val) || json_array_size(val) > MAX_RECIPIENTS)
                return fail(err, errlen, "consent.recipients",
                            "must be an array of at most 32 strings");
            size_t n = json_array_size(val);
            c->recipients = calloc(n ? n : 1, sizeof *c->recipients);
            if (c->recipients == NULL)
                return fail(err, errlen, "consent", "out of memory");
            for (size_t i = 0; i < n; i++) {
                char *s;
                if (get_string(json_array_get(val, i), "consent.recipients",
                               128, false, false, &s, err, errlen) != 0)
                    return -1;
                c->recipients[c->n_recipients++] = s;
            }
        } else {
            char f[96];
            snprintf(f, sizeof f, "consent.%.60s", key);
            return fail(err, errlen, f, "unknown field");
        }
    }
    return 0;
}

static int add_set(char ***set, size_t *n, const char *name)
{
    if (set == NULL)
        return 0;
    char **nset = realloc(*set, (*n + 1) * sizeof **set);
    if (nset == NULL)
        return -1;
    *set = nset;
    nset[*n] = strdup(name);
    if (nset[*n] == NULL)
        return -1;
    (*n)++;
    return 0;
}

int kz_node_victim_from_json(json_t *obj, bool patch, Kizuna__Victim **outp,
                             char ***out_set, size_t *n_set, char *err,
                             size_t errlen)
{
    Kizuna__Victim *out = malloc(sizeof *out);
    *outp = NULL;
    if (out == NULL)
        return fail(err, errlen, "body", "out of memory");
    kizuna__victim__init(out);
    if (out_set != NULL) {
        *out_set = NULL;
        *n_set = 0;
    }
    if (!json_is_object(obj)) {
        fail(err, errlen, "body", "must be a JSON object");
        goto err;
    }
    const char *key;
    json_t *v;
    int rv = 0;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "name") == 0) {
            rv = get_string(v, key, MAX_NAME, patch, false, &out->name, err,
                            errlen);
            if (rv == 0 && out->name != NULL && out->name[0] == '\0')
                rv = fail(err, errlen, key, "must not be empty");
        } else if (strcmp(key, "name_kana") == 0) {
            rv = get_string(v, key, MAX_NAME, true, false, &out->name_kana,
                            err, errlen);
        } else if (strcmp(key, "dob") == 0) {
            rv = get_date(v, key, &out->dob, err, errlen);
        } else if (strcmp(key, "sex") == 0) {
            rv = get_coded(v, key, kz_node_sex_codes, true, &out->sex, err,
                           errlen);
        } else if (strcmp(key, "address") == 0) {
            rv = get_string(v, key, MAX_ADDRESS, true, false, &out->address,
                            err, errlen);
        } else if (strcmp(key, "household_id") == 0) {
            rv = get_ref(v, key, &out->household_id, err, errlen);
        } else if (strcmp(key, "damage") == 0) {
            rv = get_coded(v, key, kz_node_damage_codes, true, &out->damage,
                           err, errlen);
        } else if (strcmp(key, "needs") == 0) {
            rv = get_needs(v, out, err, errlen);
        } else if (strcmp(key, "shelter_id") == 0) {
            rv = get_ref(v, key, &out->shelter_id, err, errlen);
        } else if (strcmp(key, "status") == 0) {
            rv = get_coded(v, key, kz_node_status_codes, true, &out->status,
                           err, errlen);
        } else if (strcmp(key, "contact") == 0) {
            rv = get_string(v, key, MAX_CONTACT, true, false, &out->contact,
                            err, errlen);
        } else if (strcmp(key, "consent") == 0) {
            rv = get_consent(v, out, err, errlen);
        } else if (strcmp(key, "damage_certified_on") == 0) {
            rv = get_date(v, key, &out->damage_certified_on, err, errlen);
        } else {
            char f[80];
            snprintf(f, sizeof f, "%.64s", key);
            rv = fail(err, errlen, f,
                      patch || !(strcmp(key, "id") == 0 ||
                                 strcmp(key, "version") == 0)
                          ? "unknown field"
                          : "is assigned by the server");
        }
        if (rv != 0)
            goto err;
        if (patch && add_set(out_set, n_set, key) != 0) {
            fail(err, errlen, key, "out of memory");
            goto err;
        }
    }
    if (!patch && out->name == NULL) {
        fail(err, errlen, "name", "is required");
        goto err;
    }
    if (patch && (out_set == NULL || *n_set == 0)) {
        fail(err, errlen, "body", "names no field to change");
        goto err;
    }
    /* issue 9: this runs on the proposing node, so the dictionary reading
     * goes into the command and apply stays deterministic (name_reading.h).
     * A patch of the name replaces the reading too (cleared if none). */
    bool name_set = out->name != NULL;
    for (size_t i = 0; patch && !name_set && i < *n_set; i++)
        name_set = strcmp((*out_set)[i], "name") == 0;
    if (name_set) {
        if (out->name != NULL)
            (void)kz_node_name_reading(out->name, &out->name_reading);
        if (patch && add_set(out_set, n_set, "name_reading") != 0) {
            fail(err, errlen, "name", "out of memory");
            goto err;
        }
    }
    *outp = out;
    return 0;
err:
    kizuna__victim__free_unpacked(out, NULL);
    if (out_set != NULL && *out_set != NULL) {
        for (size_t i = 0; i < *n_set; i++)
            free((*out_set)[i]);
        free(*out_set);
        *out_set = NULL;
        *n_set = 0;
    }
    return -1;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v != NULL)
        json_object_set_new(o, k, json_string(v));
}

json_t *kz_node_victim_to_json(const Kizuna__Victim *v)
{
    json_t *o = json_object();
    char t[40];
    set_str(o, "id", v->id);
    json_object_set_new(o, "version", json_integer((json_int_t)v->version));
    set_str(o, "name", v->name);
    set_str(o, "name_kana", v->name_kana);
    set_str(o, "dob", v->dob);
    set_str(o, "sex", v->sex);
    set_str(o, "address", v->address);
    set_str(o, "household_id", v->household_id);
    set_str(o, "damage", v->damage);
    set_str(o, "damage_certified_on", v->damage_certified_on);
    json_t *needs = json_array();
    for (size_t i = 0; i < v->n_needs; i++)
        json_array_append_new(needs, json_string(v->needs[i]));
    json_object_set_new(o, "needs", needs);
    set_str(o, "shelter_id", v->shelter_id);
    set_str(o, "status", v->status);
    set_str(o, "contact", v->contact);
    set_str(o, "merged_into", v->merged_into);
    if (v->consent != NULL) {
        json_t *c = json_object();
        if (v->consent->has_disclose_safety)
            json_object_set_new(c, "disclose_safety",
                                json_boolean(v->consent->disclose_safety));
        json_t *r = json_array();
        for (size_t i = 0; i < v->consent->n_recipients; i++)
            json_array_append_new(r, json_string(v->consent->recipients[i]));
        json_object_set_new(c, "recipients", r);
        json_object_set_new(o, "consent", c);
    }
    json_t *notes = json_array();
    for (size_t i = 0; i < v->n_notes; i++) {
        const Kizuna__Note *n = v->notes[i];
        json_t *j = json_object();
        set_str(j, "status", n->status);
        set_str(j, "text", n->text);
        set_str(j, "author", n->author);
        set_str(j, "last_known_location", n->last_known_location);
        kz_node_format_time(n->at_ms, t, sizeof t);
        json_object_set_new(j, "at", json_string(t));
        json_array_append_new(notes, j);
    }
    json_object_set_new(o, "notes", notes);
    json_t *hist = json_array();
    for (size_t i = 0; i < v->n_shelter_history; i++) {
        const Kizuna__ShelterStay *s = v->shelter_history[i];
        json_t *j = json_object();
        set_str(j, "shelter_id", s->shelter_id);
        kz_node_format_time(s->in_ms, t, sizeof t);
        json_object_set_new(j, "checked_in", json_string(t));
        if (s->has_out_ms) {
            kz_node_format_time(s->out_ms, t, sizeof t);
            json_object_set_new(j, "checked_out", json_string(t));
        } else {
            json_object_set_new(j, "checked_out", json_null());
        }
        json_array_append_new(hist, j);
    }
    json_object_set_new(o, "shelter_history", hist);
    kz_node_format_time(v->created_ms, t, sizeof t);
    json_object_set_new(o, "created_at", json_string(t));
    kz_node_format_time(v->updated_ms, t, sizeof t);
    json_object_set_new(o, "updated_at", json_string(t));
    return o;
}

/* ---------------------------------------------- the same, as text
 *
 * kz_node_victim_json writes what json_dumps(kz_node_victim_to_json(v),
 * JSON_COMPACT) would, byte for byte, without building the tree: a GET of
 * a record and the answer to a registration are the hot paths, where the
 * tree and jansson's dump were a sixth of a node's CPU under reads.
 * jansson's rules, followed here: members in the order set, a string that
 * is not valid UTF-8 left out (json_string() refuses it, so the member or
 * element is not added), `"` and `\` escaped, control characters as \b \f
 * \n \r \t or \u00XX (upper-case hex), nothing else escaped. test_records
 * compares the two on generated and hostile records. */
static void jb_put(struct kz_node_text *b, const char *s, size_t n)
{
    kz_node_text_put(b, s, n);
}

static void jb_lit(struct kz_node_text *b, const char *s)
{
    jb_put(b, s, strlen(s));
}

/* A JSON string of s (valid UTF-8 checked by the caller). */
static void jb_string(struct kz_node_text *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    jb_put(b, "\"", 1);
    const char *run = s;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u >= 0x20 && u != '"' && u != '\\')
            continue;
        jb_put(b, run, (size_t)(c - run));
        char esc[7] = {'\\', 0};
        size_t el = 2;
        switch (u) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[u >> 4];
            esc[5] = hex[u & 15];
            el = 6;
        }
        jb_put(b, esc, el);
        run = c + 1;
    }
    jb_put(b, run, strlen(run));
    jb_put(b, "\"", 1);
}

static bool jb_ok(const char *s)
{
    return s != NULL && kz_utf8_valid(s, strlen(s));
}

/* ,"k": before a member (no comma when *first), then the value. */
static void jb_key(struct kz_node_text *b, bool *first, const char *k)
{
    if (!*first)
        jb_put(b, ",", 1);
    *first = false;
    jb_string(b, k);
    jb_put(b, ":", 1);
}

static void jb_member_str(struct kz_node_text *b, bool *first, const char *k,
                          const char *v)
{
    if (!jb_ok(v))
        return;
    jb_key(b, first, k);
    jb_string(b, v);
}

static void jb_member_time(struct kz_node_text *b, bool *first, const char *k,
                           long long ms)
{
    char t[40];
    kz_node_format_time(ms, t, sizeof t);
    jb_key(b, first, k);
    jb_string(b, t);
}

static void jb_str_array(struct kz_node_text *b, char **v, size_t n)
{
    bool first = true;
    jb_put(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (!jb_ok(v[i]))
            continue;
        if (!first)
            jb_put(b, ",", 1);
        first = false;
        jb_string(b, v[i]);
    }
    jb_put(b, "]", 1);
}

char *kz_node_victim_json(const Kizuna__Victim *v, size_t *len)
{
    struct kz_node_text b = {0};
    bool first = true;
    char num[32];
    jb_put(&b, "{", 1);
    jb_member_str(&b, &first, "id", v->id);
    jb_key(&b, &first, "version");
    snprintf(num, sizeof num, "%lld", (long long)(json_int_t)v->version);
    jb_lit(&b, num);
    jb_member_str(&b, &first, "name", v->name);
    jb_member_str(&b, &first, "name_kana", v->name_kana);
    jb_member_str(&b, &first, "dob", v->dob);
    jb_member_str(&b, &first, "sex", v->sex);
    jb_member_str(&b, &first, "address", v->address);
    jb_member_str(&b, &first, "household_id", v->household_id);
    jb_member_str(&b, &first, "damage", v->damage);
    jb_member_str(&b, &first, "damage_certified_on", v->damage_certified_on);
    jb_key(&b, &first, "needs");
    jb_str_array(&b, v->needs, v->n_needs);
    jb_member_str(&b, &first, "shelter_id", v->shelter_id);
    jb_member_str(&b, &first, "status", v->status);
    jb_member_str(&b, &first, "contact", v->contact);
    jb_member_str(&b, &first, "merged_into", v->merged_into);
    if (v->consent != NULL) {
        bool cf = true;
        jb_key(&b, &first, "consent");
        jb_put(&b, "{", 1);
        if (v->consent->has_disclose_safety) {
            jb_key(&b, &cf, "disclose_safety");
            jb_lit(&b, v->consent->disclose_safety ? "true" : "false");
        }
        jb_key(&b, &cf, "recipients");
        jb_str_array(&b, v->consent->recipients, v->consent->n_recipients);
        jb_put(&b, "}", 1);
    }
    jb_key(&b, &first, "notes");
    jb_put(&b, "[", 1);
    for (size_t i = 0; i < v->n_notes; i++) {
        const Kizuna__Note *n = v->notes[i];
        bool nf = true;
        jb_put(&b, i ? ",{" : "{", i ? 2 : 1);
        jb_member_str(&b, &nf, "status", n->status);
        jb_member_str(&b, &nf, "text", n->text);
        jb_member_str(&b, &nf, "author", n->author);
        jb_member_str(&b, &nf, "last_known_location", n->last_known_location);
        jb_member_time(&b, &nf, "at", n->at_ms);
        jb_put(&b, "}", 1);
    }
    jb_put(&b, "]", 1);
    jb_key(&b, &first, "shelter_history");
    jb_put(&b, "[", 1);
    for (size_t i = 0; i < v->n_shelter_history; i++) {
        const Kizuna__ShelterStay *s = v->shelter_history[i];
        bool sf = true;
        jb_put(&b, i ? ",{" : "{", i ? 2 : 1);
        jb_member_str(&b, &sf, "shelter_id", s->shelter_id);
        jb_member_time(&b, &sf, "checked_in", s->in_ms);
        if (s->has_out_ms) {
            jb_member_time(&b, &sf, "checked_out", s->out_ms);
        } else {
            jb_key(&b, &sf, "checked_out");
            jb_lit(&b, "null");
        }
        jb_put(&b, "}", 1);
    }
    jb_put(&b, "]", 1);
    jb_member_time(&b, &first, "created_at", v->created_ms);
    jb_member_time(&b, &first, "updated_at", v->updated_ms);
    jb_put(&b, "}", 1);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int kz_node_note_from_json(json_t *obj, Kizuna__Note **outp, char *err,
                           size_t errlen)
{
    Kizuna__Note *out = malloc(sizeof *out);
    *outp = NULL;
    if (out == NULL)
        return fail(err, errlen, "body", "out of memory");
    kizuna__note__init(out);
    if (!json_is_object(obj)) {
        fail(err, errlen, "body", "must be a JSON object");
        goto err;
    }
    const char *key;
    json_t *v;
    int rv = 0;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "status") == 0)
            rv = get_coded(v, key, kz_node_status_codes, false, &out->status,
                           err, errlen);
        else if (strcmp(key, "text") == 0)
            rv = get_string(v, key, MAX_TEXT, true, true, &out->text, err,
                            errlen);
        else if (strcmp(key, "author") == 0)
            rv = get_string(v, key, MAX_NAME, true, false, &out->author, err,
                            errlen);
        else if (strcmp(key, "last_known_location") == 0)
            rv = get_string(v, key, MAX_ADDRESS, true, false,
                            &out->last_known_location, err, errlen);
        else {
            char f[80];
            snprintf(f, sizeof f, "%.64s", key);
            rv = fail(err, errlen, f, "unknown field");
        }
        if (rv != 0)
            goto err;
    }
    if (out->status == NULL) {
        fail(err, errlen, "status", "is required");
        goto err;
    }
    *outp = out;
    return 0;
err:
    kizuna__note__free_unpacked(out, NULL);
    return -1;
}

int kz_node_shelter_from_json(json_t *obj, Kizuna__Shelter **outp, char *err,
                              size_t errlen)
{
    Kizuna__Shelter *out = malloc(sizeof *out);
    *outp = NULL;
    if (out == NULL)
        return fail(err, errlen, "body", "out of memory");
    kizuna__shelter__init(out);
    if (!json_is_object(obj)) {
        fail(err, errlen, "body", "must be a JSON object");
        goto err;
    }
    const char *key;
    json_t *v;
    int rv = 0;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "name") == 0)
            rv = get_string(v, key, MAX_NAME, false, false, &out->name, err,
                            errlen);
        else if (strcmp(key, "address") == 0)
            rv = get_string(v, key, MAX_ADDRESS, true, false, &out->address,
                            err, errlen);
        else if (strcmp(key, "capacity") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 10000000)
                rv = fail(err, errlen, key,
                          "must be an integer from 0 to 10000000");
            else {
                out->has_capacity = 1;
                out->capacity = json_integer_value(v);
            }
        } else {
            char f[80];
            snprintf(f, sizeof f, "%.64s", key);
            rv = fail(err, errlen, f, "unknown field");
        }
        if (rv != 0)
            goto err;
    }
    if (out->name == NULL) {
        fail(err, errlen, "name", "is required");
        goto err;
    }
    *outp = out;
    return 0;
err:
    kizuna__shelter__free_unpacked(out, NULL);
    return -1;
}

json_t *kz_node_shelter_to_json(const Kizuna__Shelter *s)
{
    json_t *o = json_object();
    char t[40];
    set_str(o, "id", s->id);
    json_object_set_new(o, "version", json_integer((json_int_t)s->version));
    set_str(o, "name", s->name);
    set_str(o, "address", s->address);
    if (s->has_capacity)
        json_object_set_new(o, "capacity", json_integer(s->capacity));
    kz_node_format_time(s->updated_ms, t, sizeof t);
    json_object_set_new(o, "updated_at", json_string(t));
    return o;
}
