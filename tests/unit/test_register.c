/*
 * test_register.c — the replicated state machine of the victim register and
 * the shelter registry (node/register), applied to a real RocksDB store.
 *
 * Commands are built as protobuf messages and packed exactly as a proposer
 * would; kz_node_apply's "NNN" + JSON result is decoded and checked. Refused
 * commands (409, 412, 404, 400) must consume their index and change nothing
 * else: those tests compare a full state dump taken before and after,
 * ignoring only the applied index. The shelter test walks one person through
 * check-in, moves, status notes and check-out, checking every counter of
 * both shelters after each step. The determinism test applies the same 200
 * varied commands to separate stores (with and without results, and across
 * a dump/load in the middle) and requires byte-identical dumps.
 */
#include "records.h"
#include "register.h"
#include "search.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUNI "131016"
#define T0 1700000000000LL

static char dirs[4][64];

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], sizeof dirs[i], "/tmp/kz_reg_%d_XXXXXX", i);
        cr_assert_not_null(mkdtemp(dirs[i]));
    }
}

static void teardown(void)
{
    for (int i = 0; i < 4; i++)
        if (dirs[i][0] != '\0')
            nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(reg, .init = setup, .fini = teardown);

static kz_stor *open_store(int i)
{
    kz_stor *st = NULL;
    char err[256] = "";
    cr_assert_eq(kz_stor_open(dirs[i], &st, err, sizeof err), KZ_OK, "%s",
                 err);
    return st;
}

/* ------------------------------------------------------------ commands */

struct vs {
    const char *id, *name, *kana, *dob, *sex, *shelter, *status, *household;
    const char *address, *contact;
    const char *needs[7];
};

static void victim_of(Kizuna__Victim *v, const struct vs *s)
{
    kizuna__victim__init(v);
    v->id = (char *)s->id;
    v->name = (char *)s->name;
    v->name_kana = (char *)s->kana;
    v->dob = (char *)s->dob;
    v->sex = (char *)s->sex;
    v->shelter_id = (char *)s->shelter;
    v->status = (char *)s->status;
    v->household_id = (char *)s->household;
    v->address = (char *)s->address;
    v->contact = (char *)s->contact;
    v->needs = (char **)s->needs;
    while (v->n_needs < 6 && s->needs[v->n_needs] != NULL)
        v->n_needs++;
}

static void cmd_init(Kizuna__Command *c, int64_t t)
{
    kizuna__command__init(c);
    c->municipality = MUNI;
    c->has_time_ms = 1;
    c->time_ms = t;
}

static char *pack(const Kizuna__Command *c, size_t *len)
{
    *len = kizuna__command__get_packed_size(c);
    char *buf = malloc(*len ? *len : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(kizuna__command__pack(c, (uint8_t *)buf), *len);
    return buf;
}

static char *pack_create(int64_t t, const struct vs *s, size_t *len)
{
    Kizuna__Command c;
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    Kizuna__Victim v;
    cmd_init(&c, t);
    victim_of(&v, s);
    cv.victim = &v;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    c.create_victim = &cv;
    return pack(&c, len);
}

/* if_match < 0: no If-Match. set: NULL-terminated field names. */
static char *pack_patch(int64_t t, const char *id, long long if_match,
                        const struct vs *fields, const char *const *set,
                        size_t *len)
{
    Kizuna__Command c;
    Kizuna__PatchVictim p = KIZUNA__PATCH_VICTIM__INIT;
    Kizuna__Victim v;
    cmd_init(&c, t);
    victim_of(&v, fields);
    p.id = (char *)id;
    if (if_match >= 0) {
        p.has_if_match = 1;
        p.if_match = (uint64_t)if_match;
    }
    p.fields = &v;
    p.set = (char **)set;
    while (set[p.n_set] != NULL)
        p.n_set++;
    c.op_case = KIZUNA__COMMAND__OP_PATCH_VICTIM;
    c.patch_victim = &p;
    return pack(&c, len);
}

static char *pack_note(int64_t t, const char *id, const char *status,
                       const char *text, size_t *len)
{
    Kizuna__Command c;
    Kizuna__AddNote a = KIZUNA__ADD_NOTE__INIT;
    Kizuna__Note n = KIZUNA__NOTE__INIT;
    cmd_init(&c, t);
    n.status = (char *)status;
    n.text = (char *)text;
    n.author = "tester";
    a.victim_id = (char *)id;
    a.note = &n;
    c.op_case = KIZUNA__COMMAND__OP_ADD_NOTE;
    c.add_note = &a;
    return pack(&c, len);
}

static char *pack_shelter(int64_t t, const char *id, const char *name,
                          long long capacity, size_t *len)
{
    Kizuna__Command c;
    Kizuna__PutShelter ps = KIZUNA__PUT_SHELTER__INIT;
    Kizuna__Shelter s = KIZUNA__SHELTER__INIT;
    cmd_init(&c, t);
    s.id = (char *)id;
    s.name = (char *)name;
    if (capacity >= 0) {
        s.has_capacity = 1;
        s.capacity = capacity;
    }
    ps.shelter = &s;
    c.op_case = KIZUNA__COMMAND__OP_PUT_SHELTER;
    c.put_shelter = &ps;
    return pack(&c, len);
}

/* Applies packed bytes at idx with a result; returns the HTTP status and
 * (if body) the decoded JSON body. Frees buf. */
static int apply_buf(kz_stor *st, uint64_t idx, char *buf, size_t len,
                     json_t **body)
{
    char *res = NULL;
    size_t rl = 0;
    int rv = kz_node_apply(st, idx, buf, len, true, &res, &rl);
    free(buf);
    cr_assert_eq(rv, KZ_OK, "apply at %llu: %d %s", (unsigned long long)idx,
                 rv, kz_stor_errmsg(st));
    cr_assert_eq(kz_stor_applied_index(st), idx, "index %llu not consumed",
                 (unsigned long long)idx);
    cr_assert_not_null(res, "no result at %llu", (unsigned long long)idx);
    cr_assert_geq(rl, 5);
    cr_assert_eq(strlen(res), rl);
    for (int i = 0; i < 3; i++)
        cr_assert(res[i] >= '0' && res[i] <= '9', "result %s", res);
    int status = (res[0] - '0') * 100 + (res[1] - '0') * 10 + (res[2] - '0');
    json_error_t e;
    json_t *j = json_loadb(res + 3, rl - 3, 0, &e);
    cr_assert_not_null(j, "result body is not JSON: %s", res);
    free(res);
    if (body != NULL)
        *body = j;
    else
        json_decref(j);
    return status;
}

static int create(kz_stor *st, uint64_t idx, const struct vs *s, json_t **body)
{
    size_t len;
    char *buf = pack_create(T0 + (int64_t)idx * 1000, s, &len);
    return apply_buf(st, idx, buf, len, body);
}

static int patch(kz_stor *st, uint64_t idx, const char *id, long long if_match,
                 const struct vs *fields, const char *const *set,
                 json_t **body)
{
    size_t len;
    char *buf =
        pack_patch(T0 + (int64_t)idx * 1000, id, if_match, fields, set, &len);
    return apply_buf(st, idx, buf, len, body);
}

static int note(kz_stor *st, uint64_t idx, const char *id, const char *status,
                const char *text, json_t **body)
{
    size_t len;
    char *buf = pack_note(T0 + (int64_t)idx * 1000, id, status, text, &len);
    return apply_buf(st, idx, buf, len, body);
}

static int shelter(kz_stor *st, uint64_t idx, const char *id, const char *name,
                   long long capacity, json_t **body)
{
    size_t len;
    char *buf =
        pack_shelter(T0 + (int64_t)idx * 1000, id, name, capacity, &len);
    return apply_buf(st, idx, buf, len, body);
}

static const char *error_code(json_t *body)
{
    const char *c =
        json_string_value(json_object_get(json_object_get(body, "error"),
                                          "code"));
    return c ? c : "(none)";
}

static Kizuna__Victim *load(kz_stor *st, const char *id)
{
    Kizuna__Victim *v = NULL;
    int rv = kz_node_load_victim(st, MUNI, id, &v);
    cr_assert_eq(rv, KZ_OK, "load %s: %d", id, rv);
    cr_assert_not_null(v);
    return v;
}

/* ---------------------------------------------------------- state dumps */

struct dumpbuf {
    char *buf;
    size_t len;
};

static struct dumpbuf take_dump(kz_stor *st)
{
    struct dumpbuf d;
    cr_assert_eq(kz_stor_dump(st, malloc, 0, &d.buf, &d.len), KZ_OK);
    cr_assert_geq(d.len, 24);
    return d;
}

/* Everything but the applied index (bytes 8..15 of the dump) is equal. */
static void assert_same_state(struct dumpbuf before, kz_stor *st,
                              const char *what)
{
    struct dumpbuf now = take_dump(st);
    cr_assert_eq(now.len, before.len, "%s: state size changed", what);
    cr_assert_eq(memcmp(now.buf, before.buf, 8), 0, "%s", what);
    cr_assert_eq(memcmp(now.buf + 16, before.buf + 16, now.len - 16), 0,
                 "%s: state changed", what);
    free(now.buf);
}

/* ids found by a search, comma-separated, into out. */
static const char *search_ids(kz_stor *st, const char *q, const char *dob,
                              const char *shelter_id, const char *status,
                              char *out, size_t cap)
{
    struct kz_node_search s = {.q = q, .dob = dob, .shelter = shelter_id,
                               .status = status, .limit = 1000};
    struct kz_node_search_page pg;
    cr_assert_eq(kz_node_search_run(st, MUNI, &s, &pg), 0);
    out[0] = '\0';
    size_t i;
    json_t *it;
    json_array_foreach(pg.items, i, it)
    {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", l ? "," : "",
                 json_string_value(json_object_get(it, "id")));
    }
    json_decref(pg.items);
    return out;
}

/* --------------------------------------------------------------- create */

static const struct vs yamada = {.id = "V1",
                                 .name = "山田 太郎",
                                 .kana = "やまだ たろう",
                                 .dob = "1950-04-01",
                                 .sex = "male",
                                 .shelter = "S1",
                                 .status = "safe",
                                 .household = "H1",
                                 .needs = {"elderly", "medication"}};

Test(reg, create_returns_201_and_version_is_index)
{
    kz_stor *st = open_store(0);
    json_t *body;
    cr_assert_eq(create(st, 5, &yamada, &body), 201);
    cr_assert_str_eq(json_string_value(json_object_get(body, "id")), "V1");
    cr_assert_eq(json_integer_value(json_object_get(body, "version")), 5);
    cr_assert_str_eq(json_string_value(json_object_get(body, "name")),
                     "山田 太郎");
    char t[40];
    kz_node_format_time(T0 + 5000, t, sizeof t);
    cr_assert_str_eq(json_string_value(json_object_get(body, "created_at")),
                     t);
    json_decref(body);

    Kizuna__Victim *v = load(st, "V1");
    cr_assert_eq(v->version, 5);
    cr_assert_eq(v->created_ms, T0 + 5000);
    cr_assert_eq(v->updated_ms, T0 + 5000);
    cr_assert_str_eq(v->name_kana, "やまだ たろう");
    cr_assert_str_eq(v->dob, "1950-04-01");
    cr_assert_str_eq(v->household_id, "H1");
    cr_assert_eq(v->n_needs, 2);
    cr_assert_str_eq(v->needs[1], "medication");
    /* Check-in into the shelter it was registered at. */
    cr_assert_eq(v->n_shelter_history, 1);
    cr_assert_str_eq(v->shelter_history[0]->shelter_id, "S1");
    cr_assert_eq(v->shelter_history[0]->in_ms, T0 + 5000);
    cr_assert_not(v->shelter_history[0]->has_out_ms);
    kizuna__victim__free_unpacked(v, NULL);

    Kizuna__Victim *none = NULL;
    cr_assert_eq(kz_node_load_victim(st, MUNI, "V2", &none), KZ_ENOTFOUND);
    cr_assert_eq(kz_node_load_victim(st, "041009", "V1", &none),
                 KZ_ENOTFOUND, "records are per municipality");
    kz_stor_close(st);
}

Test(reg, create_duplicate_id_is_409_and_changes_nothing)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);

    struct vs other = {.id = "V1", .name = "佐藤 花子", .dob = "1980-01-01",
                       .sex = "female", .shelter = "S2", .status = "missing"};
    json_t *body;
    cr_assert_eq(create(st, 2, &other, &body), 409);
    cr_assert_str_eq(error_code(body), "conflict");
    json_decref(body);
    assert_same_state(before, st, "duplicate create");
    free(before.buf);

    Kizuna__Victim *v = load(st, "V1");
    cr_assert_str_eq(v->name, "山田 太郎");
    cr_assert_eq(v->version, 1);
    kizuna__victim__free_unpacked(v, NULL);
    char ids[256];
    cr_assert_str_eq(search_ids(st, "佐藤", NULL, NULL, NULL, ids, sizeof ids),
                     "");
    kz_stor_close(st);
}

Test(reg, create_without_valid_id_is_400)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    const char *bad_ids[] = {NULL, "", "a/b", "V 1", "x\ny"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        struct vs s = yamada;
        s.id = bad_ids[i];
        json_t *body;
        cr_assert_eq(create(st, 2 + i, &s, &body), 400, "id %zu", i);
        cr_assert_str_eq(error_code(body), "bad_command");
        json_decref(body);
        assert_same_state(before, st, "create with bad id");
    }
    free(before.buf);
    kz_stor_close(st);
}

Test(reg, same_id_in_two_municipalities_is_two_records)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    Kizuna__Command c;
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    Kizuna__Victim v;
    struct vs s = {.id = "V1", .name = "鈴木 一郎"};
    cmd_init(&c, T0);
    c.municipality = "041009";
    victim_of(&v, &s);
    cv.victim = &v;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    c.create_victim = &cv;
    size_t len;
    char *buf = pack(&c, &len);
    cr_assert_eq(apply_buf(st, 2, buf, len, NULL), 201);

    Kizuna__Victim *a = load(st, "V1"), *b = NULL;
    cr_assert_eq(kz_node_load_victim(st, "041009", "V1", &b), KZ_OK);
    cr_assert_str_eq(a->name, "山田 太郎");
    cr_assert_str_eq(b->name, "鈴木 一郎");
    kizuna__victim__free_unpacked(a, NULL);
    kizuna__victim__free_unpacked(b, NULL);
    kz_stor_close(st);
}

/* ---------------------------------------------------------------- patch */

Test(reg, patch_with_matching_if_match_moves_version_and_indexes)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 3, &yamada, NULL), 201);
    char ids[256];
    cr_assert_str_eq(search_ids(st, "山田", NULL, NULL, NULL, ids, sizeof ids),
                     "V1");

    struct vs f = {.name = "田中 太郎", .kana = "たなか たろう",
                   .dob = "1951-05-02"};
    const char *set[] = {"name", "name_kana", "dob", NULL};
    json_t *body;
    cr_assert_eq(patch(st, 7, "V1", 3, &f, set, &body), 200);
    cr_assert_eq(json_integer_value(json_object_get(body, "version")), 7);
    cr_assert_str_eq(json_string_value(json_object_get(body, "name")),
                     "田中 太郎");
    json_decref(body);

    Kizuna__Victim *v = load(st, "V1");
    cr_assert_eq(v->version, 7);
    cr_assert_eq(v->created_ms, T0 + 3000, "created stays");
    cr_assert_eq(v->updated_ms, T0 + 7000);
    cr_assert_str_eq(v->name, "田中 太郎");
    cr_assert_str_eq(v->dob, "1951-05-02");
    /* Fields not in set are untouched. */
    cr_assert_str_eq(v->sex, "male");
    cr_assert_str_eq(v->shelter_id, "S1");
    cr_assert_eq(v->n_needs, 2);
    cr_assert_eq(v->n_shelter_history, 1, "no shelter change, no new stay");
    kizuna__victim__free_unpacked(v, NULL);

    /* The name and dob index keys followed the record. */
    cr_assert_str_eq(search_ids(st, "田中", NULL, NULL, NULL, ids, sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, "tanaka", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, "山田", NULL, NULL, NULL, ids, sizeof ids),
                     "");
    cr_assert_str_eq(search_ids(st, "yamada", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "");
    cr_assert_str_eq(search_ids(st, "太郎", NULL, NULL, NULL, ids, sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, NULL, "1951-05-02", NULL, NULL, ids,
                                sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, NULL, "1950-04-01", NULL, NULL, ids,
                                sizeof ids),
                     "");

    /* A second patch must match the new version. */
    struct vs f2 = {.contact = NULL, .status = "injured"};
    const char *set2[] = {"status", NULL};
    cr_assert_eq(patch(st, 8, "V1", 7, &f2, set2, NULL), 200);
    cr_assert_str_eq(search_ids(st, NULL, NULL, NULL, "injured", ids,
                                sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, NULL, NULL, NULL, "safe", ids, sizeof ids),
                     "");
    kz_stor_close(st);
}

Test(reg, patch_with_stale_if_match_is_412_and_changes_nothing)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    cr_assert_eq(patch(st, 2, "V1", 1, &f, set, NULL), 200);
    struct dumpbuf before = take_dump(st);

    struct vs g = {.name = "別人", .shelter = "S9", .status = "deceased"};
    const char *gset[] = {"name", "shelter_id", "status", NULL};
    long long stale[] = {1, 0, 3, 1000};
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        json_t *body;
        cr_assert_eq(patch(st, 3 + i, "V1", stale[i], &g, gset, &body), 412,
                     "If-Match %lld against version 2", stale[i]);
        cr_assert_str_eq(error_code(body), "version_mismatch");
        json_decref(body);
        assert_same_state(before, st, "stale patch");
    }
    free(before.buf);
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_eq(v->version, 2);
    cr_assert_str_eq(v->name, "山田 太郎");
    kizuna__victim__free_unpacked(v, NULL);
    kz_stor_close(st);
}

Test(reg, patch_without_if_match_applies)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct vs f = {.contact = NULL, .address = NULL, .status = "missing"};
    const char *set[] = {"status", NULL};
    cr_assert_eq(patch(st, 2, "V1", -1, &f, set, NULL), 200);
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_str_eq(v->status, "missing");
    cr_assert_eq(v->version, 2);
    kizuna__victim__free_unpacked(v, NULL);
    kz_stor_close(st);
}

Test(reg, patch_of_unknown_id_is_404)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    json_t *body;
    cr_assert_eq(patch(st, 2, "V404", -1, &f, set, &body), 404);
    cr_assert_str_eq(error_code(body), "not_found");
    json_decref(body);
    cr_assert_eq(patch(st, 3, "V404", 1, &f, set, NULL), 404);
    assert_same_state(before, st, "patch of unknown id");
    free(before.buf);
    kz_stor_close(st);
}

Test(reg, refused_patches_change_nothing)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    uint64_t idx = 2;
    json_t *body;

    /* Removing the name. */
    struct vs noname = {.status = "injured"};
    const char *set1[] = {"status", "name", NULL};
    cr_assert_eq(patch(st, idx++, "V1", -1, &noname, set1, &body), 400);
    json_decref(body);
    assert_same_state(before, st, "patch removing the name");

    /* Fields the server owns or that do not exist. */
    const char *owned[] = {"version", "id", "notes", "shelter_history",
                           "created_ms", "bogus"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++) {
        struct vs f = {.status = "injured"};
        const char *set[] = {"status", owned[i], NULL};
        cr_assert_eq(patch(st, idx++, "V1", -1, &f, set, &body), 400,
                     "patch of %s", owned[i]);
        cr_assert_str_eq(error_code(body), "bad_command");
        json_decref(body);
        assert_same_state(before, st, owned[i]);
    }

    /* A patch without fields at all. */
    Kizuna__Command c;
    Kizuna__PatchVictim p = KIZUNA__PATCH_VICTIM__INIT;
    cmd_init(&c, T0);
    p.id = "V1";
    c.op_case = KIZUNA__COMMAND__OP_PATCH_VICTIM;
    c.patch_victim = &p;
    size_t len;
    char *buf = pack(&c, &len);
    cr_assert_eq(apply_buf(st, idx++, buf, len, NULL), 400);
    assert_same_state(before, st, "patch without fields");
    free(before.buf);
    kz_stor_close(st);
}

Test(reg, patch_clears_named_absent_fields)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct vs f = {.dob = NULL};
    const char *set[] = {"dob", "needs", "household_id", NULL};
    cr_assert_eq(patch(st, 2, "V1", 1, &f, set, NULL), 200);
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_null(v->dob);
    cr_assert_eq(v->n_needs, 0);
    cr_assert_null(v->household_id);
    cr_assert_str_eq(v->name, "山田 太郎");
    kizuna__victim__free_unpacked(v, NULL);
    char ids[64];
    cr_assert_str_eq(search_ids(st, NULL, "1950-04-01", NULL, NULL, ids,
                                sizeof ids),
                     "", "the dob index key went with the dob");
    cr_assert_str_eq(search_ids(st, "やまだ", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V1");
    kz_stor_close(st);
}

/* ---------------------------------------------------------------- notes */

Test(reg, note_sets_status_and_appends_with_command_time)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    json_t *body;
    cr_assert_eq(note(st, 4, "V1", "missing", "not at the shelter", &body),
                 201);
    cr_assert_eq(json_integer_value(json_object_get(body, "version")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(body, "status")),
                     "missing");
    json_decref(body);
    cr_assert_eq(note(st, 6, "V1", "safe", "found", NULL), 201);

    Kizuna__Victim *v = load(st, "V1");
    cr_assert_str_eq(v->status, "safe");
    cr_assert_eq(v->version, 6);
    cr_assert_eq(v->updated_ms, T0 + 6000);
    cr_assert_eq(v->n_notes, 2);
    cr_assert_str_eq(v->notes[0]->status, "missing");
    cr_assert_str_eq(v->notes[0]->text, "not at the shelter");
    cr_assert_str_eq(v->notes[0]->author, "tester");
    cr_assert(v->notes[0]->has_at_ms);
    cr_assert_eq(v->notes[0]->at_ms, T0 + 4000);
    cr_assert_str_eq(v->notes[1]->status, "safe");
    cr_assert_eq(v->notes[1]->at_ms, T0 + 6000);
    kizuna__victim__free_unpacked(v, NULL);

    char ids[64];
    cr_assert_str_eq(search_ids(st, NULL, NULL, NULL, "safe", ids, sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, NULL, NULL, NULL, "missing", ids,
                                sizeof ids),
                     "");
    kz_stor_close(st);
}

Test(reg, refused_notes_change_nothing)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    json_t *body;
    cr_assert_eq(note(st, 2, "V404", "safe", NULL, &body), 404);
    cr_assert_str_eq(error_code(body), "not_found");
    json_decref(body);
    cr_assert_eq(note(st, 3, "V1", "alive", NULL, NULL), 400);
    cr_assert_eq(note(st, 4, "V1", NULL, "no status", NULL), 400);
    cr_assert_eq(note(st, 5, NULL, "safe", NULL, NULL), 400);
    assert_same_state(before, st, "refused notes");
    free(before.buf);
    kz_stor_close(st);
}

/* ------------------------------------------------------------- shelters */

Test(reg, put_shelter_creates_then_replaces)
{
    kz_stor *st = open_store(0);
    json_t *body;
    cr_assert_eq(shelter(st, 2, "S1", "第一小学校", 300, &body), 201);
    cr_assert_eq(json_integer_value(json_object_get(body, "version")), 2);
    json_decref(body);
    cr_assert_eq(shelter(st, 5, "S1", "第一小学校 体育館", 250, &body), 200);
    json_decref(body);
    Kizuna__Shelter *s = NULL;
    cr_assert_eq(kz_node_load_shelter(st, MUNI, "S1", &s), KZ_OK);
    cr_assert_str_eq(s->name, "第一小学校 体育館");
    cr_assert_eq(s->capacity, 250);
    cr_assert_eq(s->version, 5);
    cr_assert_eq(s->updated_ms, T0 + 5000);
    kizuna__shelter__free_unpacked(s, NULL);
    cr_assert_eq(kz_node_load_shelter(st, MUNI, "S2", &s), KZ_ENOTFOUND);

    /* A shelter and a victim with the same id do not collide. */
    struct vs v = {.id = "S1", .name = "同名"};
    cr_assert_eq(create(st, 6, &v, NULL), 201);
    cr_assert_eq(kz_node_load_shelter(st, MUNI, "S1", &s), KZ_OK);
    cr_assert_str_eq(s->name, "第一小学校 体育館");
    kizuna__shelter__free_unpacked(s, NULL);

    struct dumpbuf before = take_dump(st);
    cr_assert_eq(shelter(st, 7, "bad/id", "x", -1, &body), 400);
    json_decref(body);
    cr_assert_eq(shelter(st, 8, NULL, "x", -1, NULL), 400);
    assert_same_state(before, st, "bad shelter id");
    free(before.buf);
    kz_stor_close(st);
}

/* Compares a shelter summary with a description like
 * "total=2 female=1 unknown_sex=1 infant=1 safe=1"; counters not named
 * must be 0. Sex keys carry a "_sex" suffix for "unknown", and status
 * "unknown" is "unknown_status". */
static void expect_summary(kz_stor *st, const char *shelter_id,
                           const char *desc)
{
    json_t *want = json_pack(
        "{s:i,s:{s:i,s:i,s:i,s:i},s:{s:i,s:i,s:i,s:i,s:i,s:i},"
        "s:{s:i,s:i,s:i,s:i,s:i},s:i,s:i}",
        "total", 0, "by_sex", "female", 0, "male", 0, "other", 0, "unknown", 0,
        "needs", "infant", 0, "elderly", 0, "disabled", 0, "pregnant", 0,
        "chronic_illness", 0, "medication", 0, "by_status", "safe", 0,
        "injured", 0, "missing", 0, "deceased", 0, "unknown", 0, "infants", 0,
        "elderly", 0);
    cr_assert_not_null(want);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", desc);
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq);
        *eq = '\0';
        json_int_t n = atoi(eq + 1);
        json_t *group = NULL;
        const char *key = tok;
        if (strcmp(tok, "total") == 0)
            group = want;
        else if (strcmp(tok, "female") == 0 || strcmp(tok, "male") == 0 ||
                 strcmp(tok, "other") == 0)
            group = json_object_get(want, "by_sex");
        else if (strcmp(tok, "unknown_sex") == 0) {
            group = json_object_get(want, "by_sex");
            key = "unknown";
        } else if (strcmp(tok, "unknown_status") == 0) {
            group = json_object_get(want, "by_status");
            key = "unknown";
        } else if (json_object_get(json_object_get(want, "needs"), tok))
            group = json_object_get(want, "needs");
        else if (json_object_get(json_object_get(want, "by_status"), tok))
            group = json_object_get(want, "by_status");
        cr_assert_not_null(group, "bad counter name %s", tok);
        json_object_set_new(group, key, json_integer(n));
        if (strcmp(tok, "infant") == 0)
            json_object_set_new(want, "infants", json_integer(n));
        if (strcmp(tok, "elderly") == 0)
            json_object_set_new(want, "elderly", json_integer(n));
    }
    json_t *got = kz_node_shelter_summary(st, MUNI, shelter_id);
    cr_assert_not_null(got);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert(json_equal(got, want), "shelter %s:\n got  %s\n want %s",
              shelter_id, g, w);
    free(g);
    free(w);
    json_decref(got);
    json_decref(want);
}

Test(reg, shelter_counters_follow_every_change)
{
    kz_stor *st = open_store(0);
    expect_summary(st, "S1", "");

    struct vs a = {.id = "A", .name = "青木 愛", .sex = "female",
                   .shelter = "S1", .status = "safe",
                   .needs = {"infant", "elderly"}};
    cr_assert_eq(create(st, 1, &a, NULL), 201);
    expect_summary(st, "S1", "total=1 female=1 infant=1 elderly=1 safe=1");
    expect_summary(st, "S2", "");

    /* No sex, no status: counted as unknown. */
    struct vs b = {.id = "B", .name = "馬場 文", .shelter = "S1"};
    cr_assert_eq(create(st, 2, &b, NULL), 201);
    expect_summary(st, "S1",
                   "total=2 female=1 unknown_sex=1 infant=1 elderly=1 safe=1 "
                   "unknown_status=1");

    /* Not in a shelter: no counter moves. */
    struct vs c = {.id = "C", .name = "千葉 健", .sex = "male",
                   .status = "injured", .needs = {"disabled"}};
    cr_assert_eq(create(st, 3, &c, NULL), 201);
    expect_summary(st, "S1",
                   "total=2 female=1 unknown_sex=1 infant=1 elderly=1 safe=1 "
                   "unknown_status=1");

    /* A moves from S1 to S2: both shelters' counters move. */
    struct vs to_s2 = {.shelter = "S2"};
    const char *set_shelter[] = {"shelter_id", NULL};
    cr_assert_eq(patch(st, 4, "A", 1, &to_s2, set_shelter, NULL), 200);
    expect_summary(st, "S1", "total=1 unknown_sex=1 unknown_status=1");
    expect_summary(st, "S2", "total=1 female=1 infant=1 elderly=1 safe=1");

    /* A status change by a note. */
    cr_assert_eq(note(st, 5, "A", "injured", "sprained ankle", NULL), 201);
    expect_summary(st, "S2", "total=1 female=1 infant=1 elderly=1 injured=1");
    expect_summary(st, "S1", "total=1 unknown_sex=1 unknown_status=1");

    /* Sex and needs change within the same shelter. */
    struct vs f = {.sex = "other", .needs = {"pregnant", "medication"}};
    const char *set_sn[] = {"sex", "needs", NULL};
    cr_assert_eq(patch(st, 6, "A", 5, &f, set_sn, NULL), 200);
    expect_summary(st, "S2",
                   "total=1 other=1 pregnant=1 medication=1 injured=1");

    /* A status change by a patch, and a patch that touches nothing counted. */
    struct vs st_missing = {.status = "missing"};
    const char *set_status[] = {"status", NULL};
    cr_assert_eq(patch(st, 7, "A", -1, &st_missing, set_status, NULL), 200);
    struct vs addr = {.address = "どこか"};
    const char *set_addr[] = {"address", NULL};
    cr_assert_eq(patch(st, 8, "A", -1, &addr, set_addr, NULL), 200);
    expect_summary(st, "S2",
                   "total=1 other=1 pregnant=1 medication=1 missing=1");

    /* C checks in to S2. */
    cr_assert_eq(patch(st, 9, "C", -1, &to_s2, set_shelter, NULL), 200);
    expect_summary(st, "S2",
                   "total=2 other=1 male=1 pregnant=1 medication=1 disabled=1 "
                   "missing=1 injured=1");

    /* A leaves any shelter. */
    struct vs none = {.shelter = NULL};
    cr_assert_eq(patch(st, 10, "A", -1, &none, set_shelter, NULL), 200);
    expect_summary(st, "S2", "total=1 male=1 disabled=1 injured=1");
    expect_summary(st, "S1", "total=1 unknown_sex=1 unknown_status=1");

    /* Refused commands move nothing. */
    cr_assert_eq(patch(st, 11, "C", 1, &none, set_shelter, NULL), 412);
    cr_assert_eq(create(st, 12, &c, NULL), 409);
    expect_summary(st, "S2", "total=1 male=1 disabled=1 injured=1");

    /* A comes back to S1. */
    struct vs to_s1 = {.shelter = "S1"};
    cr_assert_eq(patch(st, 13, "A", -1, &to_s1, set_shelter, NULL), 200);
    expect_summary(st, "S1",
                   "total=2 other=1 unknown_sex=1 pregnant=1 medication=1 "
                   "missing=1 unknown_status=1");

    /* A's stays: S1 (closed at 4), S2 (closed at 10), S1 (open). */
    Kizuna__Victim *v = load(st, "A");
    cr_assert_eq(v->n_shelter_history, 3);
    cr_assert_str_eq(v->shelter_history[0]->shelter_id, "S1");
    cr_assert_eq(v->shelter_history[0]->in_ms, T0 + 1000);
    cr_assert(v->shelter_history[0]->has_out_ms);
    cr_assert_eq(v->shelter_history[0]->out_ms, T0 + 4000);
    cr_assert_str_eq(v->shelter_history[1]->shelter_id, "S2");
    cr_assert_eq(v->shelter_history[1]->in_ms, T0 + 4000);
    cr_assert_eq(v->shelter_history[1]->out_ms, T0 + 10000);
    cr_assert_str_eq(v->shelter_history[2]->shelter_id, "S1");
    cr_assert_eq(v->shelter_history[2]->in_ms, T0 + 13000);
    cr_assert_not(v->shelter_history[2]->has_out_ms);
    kizuna__victim__free_unpacked(v, NULL);

    /* The shelter index follows too. */
    char ids[64];
    cr_assert_str_eq(search_ids(st, NULL, NULL, "S1", NULL, ids, sizeof ids),
                     "A,B");
    cr_assert_str_eq(search_ids(st, NULL, NULL, "S2", NULL, ids, sizeof ids),
                     "C");
    kz_stor_close(st);
}

/* ----------------------------------------------------- malformed input */

Test(reg, malformed_commands_consume_index_with_400)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 1, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    uint64_t idx = 2;

    /* Bytes that are not a Command. */
    const char *junk[] = {"\xff\xff\xff\xff", "\x0a\xff\x01", "\x52\x05" "ab"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        size_t len = strlen(junk[i]);
        char *buf = malloc(len);
        memcpy(buf, junk[i], len);
        json_t *body;
        cr_assert_eq(apply_buf(st, idx++, buf, len, &body), 400, "junk %zu",
                     i);
        cr_assert_str_eq(error_code(body), "bad_command");
        json_decref(body);
    }
    /* A valid create truncated by one byte. */
    size_t len;
    char *buf = pack_create(T0, &yamada, &len);
    cr_assert_eq(apply_buf(st, idx++, buf, len - 1, NULL), 400);

    /* Empty bytes, a Command without municipality, without an op. */
    cr_assert_eq(apply_buf(st, idx++, malloc(1), 0, NULL), 400);
    Kizuna__Command c;
    cmd_init(&c, T0);
    buf = pack(&c, &len);
    cr_assert_eq(apply_buf(st, idx++, buf, len, NULL), 400);
    struct vs other = {.id = "V2", .name = "x"};
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    Kizuna__Victim v;
    victim_of(&v, &other);
    cv.victim = &v;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    c.create_victim = &cv;
    c.municipality = NULL;
    buf = pack(&c, &len);
    cr_assert_eq(apply_buf(st, idx++, buf, len, NULL), 400);
    /* A create without a victim. */
    cv.victim = NULL;
    c.municipality = MUNI;
    buf = pack(&c, &len);
    cr_assert_eq(apply_buf(st, idx++, buf, len, NULL), 400);

    assert_same_state(before, st, "malformed commands");
    free(before.buf);
    cr_assert_eq(kz_stor_applied_index(st), idx - 1);
    Kizuna__Victim *none = NULL;
    cr_assert_eq(kz_node_load_victim(st, MUNI, "V2", &none), KZ_ENOTFOUND);
    kz_stor_close(st);
}

/* ------------------------------------------------------------ results */

#define SENTINEL ((char *)0x5a5a5a5a)

static void apply_no_result(kz_stor *st, uint64_t idx, char *buf, size_t len)
{
    char *res = SENTINEL;
    size_t rl = 777;
    int rv = kz_node_apply(st, idx, buf, len, false, &res, &rl);
    free(buf);
    cr_assert_eq(rv, KZ_OK);
    cr_assert_eq(kz_stor_applied_index(st), idx);
    cr_assert_eq(res, SENTINEL, "want_result=false wrote a result");
    cr_assert_eq(rl, 777);
}

Test(reg, want_result_false_never_allocates)
{
    kz_stor *st = open_store(0);
    size_t len;
    uint64_t idx = 1;
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    char *b;
    b = pack_create(T0, &yamada, &len); /* 201 */
    apply_no_result(st, idx++, b, len);
    b = pack_create(T0, &yamada, &len); /* 409 */
    apply_no_result(st, idx++, b, len);
    b = pack_patch(T0, "V1", 1, &f, set, &len); /* 200 */
    apply_no_result(st, idx++, b, len);
    b = pack_patch(T0, "V1", 1, &f, set, &len); /* 412 */
    apply_no_result(st, idx++, b, len);
    b = pack_patch(T0, "V9", -1, &f, set, &len); /* 404 */
    apply_no_result(st, idx++, b, len);
    b = pack_note(T0, "V1", "safe", "x", &len); /* 201 */
    apply_no_result(st, idx++, b, len);
    b = pack_shelter(T0, "S1", "s", 3, &len); /* 201 */
    apply_no_result(st, idx++, b, len);
    char *junk = malloc(2);
    memcpy(junk, "\xff\xff", 2);
    apply_no_result(st, idx++, junk, 2); /* 400 */

    /* The state moved exactly as with results. */
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_eq(v->version, 6);
    cr_assert_eq(v->n_notes, 1);
    kizuna__victim__free_unpacked(v, NULL);

    char *buf = pack_note(T0, "V1", "injured", NULL, &len);
    cr_assert_eq(kz_node_apply(st, idx, buf, len, false, NULL, NULL), KZ_OK);
    free(buf);
    cr_assert_eq(kz_stor_applied_index(st), idx);
    kz_stor_close(st);
}

/* --------------------------------------------------------- determinism */

static const char *const names[][2] = {
    {"山田 太郎", "やまだ たろう"}, {"佐藤 花子", "さとう はなこ"},
    {"鈴木 一郎", "すずき いちろう"}, {"高橋 美咲", "たかはし みさき"},
    {"田中 健太", "たなか けんた"}, {"伊藤 さくら", "いとう さくら"},
    {"渡辺 翔", "わたなべ しょう"}, {"小林 由美", NULL},
    {"Smith John", NULL},          {"佐々木 陽菜", "ささき ひな"}};
static const char *const sexes[] = {"female", "male", "other", NULL};
static const char *const statuses[] = {"safe", "injured", "missing",
                                       "deceased", "unknown", NULL};
static const char *const shelters[] = {"S1", "S2", "S3", NULL};
static const char *const needs[] = {"infant", "elderly", "disabled",
                                    "pregnant", "chronic_illness",
                                    "medication"};
static const char *const dobs[] = {"1950-04-01", "1988-12-31", "2024-02-29",
                                   NULL};
static const char *const fieldnames[] = {"name", "name_kana", "dob", "sex",
                                         "shelter_id", "status", "needs",
                                         "household_id"};

struct rng {
    unsigned long long s;
};

static unsigned pick(struct rng *r, unsigned n)
{
    r->s = r->s * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((r->s >> 33) % n);
}

/* A random but reproducible mix: creates (some duplicates), patches with
 * right, wrong and no If-Match, notes, shelters, unknown ids, junk. */
static char *make_command(struct rng *r, uint64_t idx, size_t *len)
{
    int64_t t = T0 + (int64_t)idx * 997;
    char id[16], sid[8];
    snprintf(id, sizeof id, "V%03u", pick(r, 40));
    unsigned kind = pick(r, 100);
    if (kind < 30) {
        struct vs s = {.id = id};
        unsigned n = pick(r, 10);
        s.name = names[n][0];
        s.kana = names[n][1];
        s.dob = dobs[pick(r, 4)];
        s.sex = sexes[pick(r, 4)];
        s.shelter = shelters[pick(r, 4)];
        s.status = statuses[pick(r, 6)];
        s.household = pick(r, 2) ? "H1" : NULL;
        unsigned nn = pick(r, 4), first = pick(r, 6);
        for (unsigned i = 0; i < nn; i++)
            s.needs[i] = needs[(first + i) % 6];
        return pack_create(t, &s, len);
    }
    if (kind < 65) {
        struct vs f = {0};
        const char *set[9] = {0};
        unsigned nset = 1 + pick(r, 3), k = 0;
        for (unsigned i = 0; i < nset; i++) {
            const char *fn = fieldnames[pick(r, 8)];
            bool dup = false;
            for (unsigned j = 0; j < k; j++)
                dup |= strcmp(set[j], fn) == 0;
            if (dup)
                continue;
            set[k++] = fn;
            unsigned n = pick(r, 10);
            if (strcmp(fn, "name") == 0)
                f.name = names[n][0];
            else if (strcmp(fn, "name_kana") == 0)
                f.kana = names[n][1];
            else if (strcmp(fn, "dob") == 0)
                f.dob = dobs[pick(r, 4)];
            else if (strcmp(fn, "sex") == 0)
                f.sex = sexes[pick(r, 4)];
            else if (strcmp(fn, "shelter_id") == 0)
                f.shelter = shelters[pick(r, 4)];
            else if (strcmp(fn, "status") == 0)
                f.status = statuses[pick(r, 6)];
            else if (strcmp(fn, "needs") == 0)
                f.needs[0] = needs[pick(r, 6)];
            else
                f.household = pick(r, 2) ? "H2" : NULL;
        }
        /* Versions are indexes: guess near the present to hit some. */
        long long im = pick(r, 3) == 0 ? -1 : (long long)pick(r, (unsigned)idx + 1);
        return pack_patch(t, id, im, &f, set, len);
    }
    if (kind < 85)
        return pack_note(t, id, statuses[pick(r, 6)], "note", len);
    if (kind < 95) {
        snprintf(sid, sizeof sid, "S%u", 1 + pick(r, 3));
        return pack_shelter(t, sid, "避難所", pick(r, 500), len);
    }
    *len = 1 + pick(r, 8);
    char *junk = malloc(*len);
    for (size_t i = 0; i < *len; i++)
        junk[i] = (char)(0x80 | pick(r, 128));
    return junk;
}

Test(reg, apply_is_deterministic)
{
    enum { N = 200, HALF = 100 };
    char *cmds[N];
    size_t lens[N];
    struct rng r = {20240101};
    for (uint64_t i = 0; i < N; i++)
        cmds[i] = make_command(&r, i + 1, &lens[i]);

    kz_stor *a = open_store(0), *b = open_store(1), *c = open_store(2);
    int seen[6] = {0}; /* 200 201 400 404 409 412 */
    for (uint64_t i = 0; i < N; i++) {
        char *res = NULL;
        size_t rl;
        cr_assert_eq(kz_node_apply(a, i + 1, cmds[i], lens[i], true, &res, &rl),
                     KZ_OK);
        cr_assert_not_null(res);
        int status = atoi((char[4]){res[0], res[1], res[2], 0});
        const int codes[] = {200, 201, 400, 404, 409, 412};
        for (int k = 0; k < 6; k++)
            if (codes[k] == status)
                seen[k]++;
        free(res);
        cr_assert_eq(kz_node_apply(b, i + 1, cmds[i], lens[i], false, NULL,
                                   NULL),
                     KZ_OK);
        if (i < HALF)
            cr_assert_eq(kz_node_apply(c, i + 1, cmds[i], lens[i], false,
                                       NULL, NULL),
                         KZ_OK);
    }
    /* The sequence exercised every outcome, so the comparison means
     * something. */
    const int codes[] = {200, 201, 400, 404, 409, 412};
    for (int k = 0; k < 6; k++)
        cr_assert_gt(seen[k], 0, "no command ended %d", codes[k]);

    /* d: installs c's snapshot at HALF, then applies the rest. */
    struct dumpbuf mid = take_dump(c);
    kz_stor *d = open_store(3);
    cr_assert_eq(kz_stor_load(d, mid.buf, mid.len), KZ_OK);
    free(mid.buf);
    cr_assert_eq(kz_stor_applied_index(d), HALF);
    for (uint64_t i = HALF; i < N; i++)
        cr_assert_eq(kz_node_apply(d, i + 1, cmds[i], lens[i], false, NULL,
                                   NULL),
                     KZ_OK);

    struct dumpbuf da = take_dump(a), db = take_dump(b), dd = take_dump(d);
    cr_assert_eq(kz_stor_applied_index(a), N);
    cr_assert_eq(da.len, db.len, "dumps of a and b differ in size");
    cr_assert_eq(memcmp(da.buf, db.buf, da.len), 0, "a and b diverged");
    cr_assert_eq(da.len, dd.len, "dumps of a and d differ in size");
    cr_assert_eq(memcmp(da.buf, dd.buf, da.len), 0,
                 "snapshot + replay diverged");
    free(da.buf);
    free(db.buf);
    free(dd.buf);
    for (int i = 0; i < N; i++)
        free(cmds[i]);
    kz_stor_close(a);
    kz_stor_close(b);
    kz_stor_close(c);
    kz_stor_close(d);
}

Test(reg, counters_match_a_recount_after_random_commands)
{
    /* The counters are kept by difference; after 200 random commands they
     * must equal a count over the records themselves. */
    enum { N = 200 };
    struct rng r = {777};
    kz_stor *st = open_store(0);
    for (uint64_t i = 1; i <= N; i++) {
        size_t len;
        char *buf = make_command(&r, i, &len);
        cr_assert_eq(kz_node_apply(st, i, buf, len, false, NULL, NULL), KZ_OK);
        free(buf);
    }
    for (int s = 0; shelters[s]; s++) {
        long long total = 0, by_sex[4] = {0}, by_status[5] = {0}, nd[6] = {0};
        kz_stor_iter *it =
            kz_stor_iter_new(st, KZ_STOR_CF_RECORDS, MUNI "/v/", 9, NULL, 0);
        const char *k, *val;
        size_t kl, vl;
        while (kz_stor_iter_next(it, &k, &kl, &val, &vl)) {
            Kizuna__Victim *v =
                kizuna__victim__unpack(NULL, vl, (const uint8_t *)val);
            cr_assert_not_null(v);
            if (v->shelter_id && strcmp(v->shelter_id, shelters[s]) == 0) {
                total++;
                int x = 3;
                for (int i = 0; i < 3; i++)
                    if (v->sex && strcmp(v->sex, sexes[i]) == 0)
                        x = i;
                by_sex[x]++;
                x = 4;
                for (int i = 0; i < 5; i++)
                    if (v->status && strcmp(v->status, statuses[i]) == 0)
                        x = i;
                by_status[x]++;
                for (size_t n = 0; n < v->n_needs; n++)
                    for (int i = 0; i < 6; i++)
                        if (strcmp(v->needs[n], needs[i]) == 0)
                            nd[i]++;
            }
            kizuna__victim__free_unpacked(v, NULL);
        }
        kz_stor_iter_free(it);
        json_t *sum = kz_node_shelter_summary(st, MUNI, shelters[s]);
        cr_assert_eq(json_integer_value(json_object_get(sum, "total")), total,
                     "%s total", shelters[s]);
        cr_assert_gt(total, 0, "%s: the test should put people there",
                     shelters[s]);
        const char *sx[] = {"female", "male", "other", "unknown"};
        for (int i = 0; i < 4; i++)
            cr_assert_eq(json_integer_value(json_object_get(
                             json_object_get(sum, "by_sex"), sx[i])),
                         by_sex[i], "%s sex %s", shelters[s], sx[i]);
        for (int i = 0; i < 5; i++)
            cr_assert_eq(json_integer_value(json_object_get(
                             json_object_get(sum, "by_status"), statuses[i])),
                         by_status[i], "%s status %s", shelters[s],
                         statuses[i]);
        for (int i = 0; i < 6; i++)
            cr_assert_eq(json_integer_value(json_object_get(
                             json_object_get(sum, "needs"), needs[i])),
                         nd[i], "%s needs %s", shelters[s], needs[i]);
        json_decref(sum);
    }
    kz_stor_close(st);
}
