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
 * varied commands (a third of them sealed) to separate stores (with and
 * without results, and across a dump/load in the middle) and requires
 * byte-identical dumps: record nonces are derived, not random.
 *
 * Encryption at rest (node/keys.h): every store gets the cluster's keys by
 * a KeyInit command applied at index 1, so the other commands start at 2.
 * The last section checks what that promises: records sealed under their
 * storage key, no name or date of birth in the clear in the indexes, moved
 * or altered values refused, register commands refused (503) until the
 * state has keys, data-key rotation, master-key rotation by re-wrapping
 * (data untouched), keyring permissions, and a node that cannot open a
 * sealed command stopping rather than diverging. Tests marked BUG fail
 * against the current register.c on purpose (see their comments).
 */
#include "records.h"
#include "register.h"
#include "search.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz_test_keys.h"
#include "name_fold.h"

#define MUNI "131016"
#define T0 1700000000000LL

static char dirs[4][64];
static char keydir[64];
static char ring_path[1100];        /* keydir/master.key: master key 1 */
static const uint32_t ring1[] = {1};
static kz_stor *stores[4];          /* open_store(i) */
static struct kz_node_keys keys[4]; /* the node keys of stores[i] */

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
    snprintf(keydir, sizeof keydir, "/tmp/kz_reg_keys_XXXXXX");
    cr_assert_not_null(mkdtemp(keydir));
    snprintf(ring_path, sizeof ring_path, "%s/master.key", keydir);
    kz_test_write_ring(ring_path, ring1, 1, 0600);
}

static void teardown(void)
{
    for (int i = 0; i < 4; i++) {
        kz_node_keys_wipe(&keys[i]);
        stores[i] = NULL;
        if (dirs[i][0] != '\0')
            nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    if (keydir[0] != '\0')
        nftw(keydir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(reg, .init = setup, .fini = teardown);

/* Store i with node keys opened from keyring file ring, but no keys in the
 * state yet (nothing applied). */
static kz_stor *open_bare_ring(int i, const char *ring)
{
    kz_stor *st = NULL;
    char err[256] = "";
    cr_assert_eq(kz_stor_open(dirs[i], &st, err, sizeof err), KZ_OK, "%s",
                 err);
    stores[i] = st;
    cr_assert_eq(kz_node_keys_open(&keys[i], ring), KZ_OK, "%s",
                 keys[i].errmsg);
    return st;
}

/* The same with the cluster keyring (master key 1). */
static kz_stor *open_bare(int i)
{
    return open_bare_ring(i, ring_path);
}

/* Store i with the cluster's keys: a KeyInit applied at index 1. */
static kz_stor *open_store(int i)
{
    kz_stor *st = open_bare(i);
    kz_test_keys_init(st, &keys[i], MUNI, 1);
    return st;
}

/* The node keys that go with a store of open_store / open_bare. */
static struct kz_node_keys *keys_of(kz_stor *st)
{
    for (int i = 0; i < 4; i++)
        if (stores[i] == st)
            return &keys[i];
    cr_assert_fail("store %p was not opened by open_store", (void *)st);
    return NULL;
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
    bool changed = true;
    int rv = kz_node_apply(st, keys_of(st), idx, buf, len, true, &res, &rl,
                           &changed);
    free(buf);
    cr_assert_eq(rv, KZ_OK, "apply at %llu: %d %s", (unsigned long long)idx,
                 rv, kz_stor_errmsg(st));
    cr_assert_not(changed, "a register command changed the keys");
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
    int rv = kz_node_load_victim(st, keys_of(st), MUNI, id, &v);
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

/* ids found by a search with node keys k, comma-separated, into out. */
static const char *search_ids_k(kz_stor *st, struct kz_node_keys *k,
                                const char *q, const char *dob,
                                const char *shelter_id, const char *status,
                                char *out, size_t cap)
{
    struct kz_node_search s = {.q = q, .dob = dob, .shelter = shelter_id,
                               .status = status, .limit = 1000};
    struct kz_node_search_page pg;
    cr_assert_eq(kz_node_search_run(st, k, MUNI, &s, &pg), 0);
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

/* The same with the store's own node keys. */
static const char *search_ids(kz_stor *st, const char *q, const char *dob,
                              const char *shelter_id, const char *status,
                              char *out, size_t cap)
{
    return search_ids_k(st, keys_of(st), q, dob, shelter_id, status, out,
                        cap);
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
    cr_assert_eq(kz_node_load_victim(st, keys_of(st), MUNI, "V2", &none),
                 KZ_ENOTFOUND);
    cr_assert_eq(kz_node_load_victim(st, keys_of(st), "041009", "V1", &none),
                 KZ_ENOTFOUND, "records are per municipality");
    kz_stor_close(st);
}

Test(reg, create_duplicate_id_is_409_and_changes_nothing)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);

    struct vs other = {.id = "V1", .name = "佐藤 花子", .dob = "1980-01-01",
                       .sex = "female", .shelter = "S2", .status = "missing"};
    json_t *body;
    cr_assert_eq(create(st, 3, &other, &body), 409);
    cr_assert_str_eq(error_code(body), "conflict");
    json_decref(body);
    assert_same_state(before, st, "duplicate create");
    free(before.buf);

    Kizuna__Victim *v = load(st, "V1");
    cr_assert_str_eq(v->name, "山田 太郎");
    cr_assert_eq(v->version, 2);
    kizuna__victim__free_unpacked(v, NULL);
    char ids[256];
    cr_assert_str_eq(search_ids(st, "佐藤", NULL, NULL, NULL, ids, sizeof ids),
                     "");
    kz_stor_close(st);
}

Test(reg, create_without_valid_id_is_400)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    const char *bad_ids[] = {NULL, "", "a/b", "V 1", "x\ny"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        struct vs s = yamada;
        s.id = bad_ids[i];
        json_t *body;
        cr_assert_eq(create(st, 3 + i, &s, &body), 400, "id %zu", i);
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
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
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
    cr_assert_eq(apply_buf(st, 3, buf, len, NULL), 201);

    Kizuna__Victim *a = load(st, "V1"), *b = NULL;
    cr_assert_eq(kz_node_load_victim(st, keys_of(st), "041009", "V1", &b),
                 KZ_OK);
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
    uint64_t terms = kz_stor_writes(st, KZ_STOR_CF_TERMS);
    cr_assert_eq(patch(st, 7, "V1", 3, &f, set, &body), 200);
    /* Only the terms that differ move. 太郎 and its prefixes (太, 太郎,
     * t, ta, tar, taro) stay, all on rungs (apply.h). Five keep their
     * value: no delete, no put. taro's value changes (it holds the tag of
     * the 5-letter prefix of "taroyamada", now "tarotanaka"): a put, no
     * delete. So 11 writes fewer than deleting every old term and putting
     * every new one. */
    uint64_t moved = kz_stor_writes(st, KZ_STOR_CF_TERMS) - terms;
    kz_stor *fresh = open_store(1);
    struct vs tanaka = yamada;
    tanaka.name = f.name;
    tanaka.kana = f.kana;
    tanaka.dob = f.dob;
    cr_assert_eq(create(fresh, 3, &tanaka, NULL), 201);
    uint64_t all = terms + kz_stor_writes(fresh, KZ_STOR_CF_TERMS);
    kz_stor_close(fresh);
    cr_assert_eq(moved, all - 11, "terms written: %llu, all: %llu",
                 (unsigned long long)moved, (unsigned long long)all);
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
    /* The term taro kept its key with a new value: the tag of "tarot",
     * not of "taroy", which a search between rungs reads. */
    cr_assert_str_eq(search_ids(st, "taro t", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, "taroy", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "");
    cr_assert_str_eq(search_ids(st, "tarot", NULL, NULL, NULL, ids,
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
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    cr_assert_eq(patch(st, 3, "V1", 2, &f, set, NULL), 200);
    struct dumpbuf before = take_dump(st);

    struct vs g = {.name = "別人", .shelter = "S9", .status = "deceased"};
    const char *gset[] = {"name", "shelter_id", "status", NULL};
    long long stale[] = {2, 0, 4, 1000};
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        json_t *body;
        cr_assert_eq(patch(st, 4 + i, "V1", stale[i], &g, gset, &body), 412,
                     "If-Match %lld against version 3", stale[i]);
        cr_assert_str_eq(error_code(body), "version_mismatch");
        json_decref(body);
        assert_same_state(before, st, "stale patch");
    }
    free(before.buf);
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_eq(v->version, 3);
    cr_assert_str_eq(v->name, "山田 太郎");
    kizuna__victim__free_unpacked(v, NULL);
    kz_stor_close(st);
}

Test(reg, patch_without_if_match_applies)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct vs f = {.contact = NULL, .address = NULL, .status = "missing"};
    const char *set[] = {"status", NULL};
    cr_assert_eq(patch(st, 3, "V1", -1, &f, set, NULL), 200);
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_str_eq(v->status, "missing");
    cr_assert_eq(v->version, 3);
    kizuna__victim__free_unpacked(v, NULL);
    kz_stor_close(st);
}

Test(reg, patch_of_unknown_id_is_404)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    json_t *body;
    cr_assert_eq(patch(st, 3, "V404", -1, &f, set, &body), 404);
    cr_assert_str_eq(error_code(body), "not_found");
    json_decref(body);
    cr_assert_eq(patch(st, 4, "V404", 2, &f, set, NULL), 404);
    assert_same_state(before, st, "patch of unknown id");
    free(before.buf);
    kz_stor_close(st);
}

Test(reg, refused_patches_change_nothing)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    uint64_t idx = 3;
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
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct vs f = {.dob = NULL};
    const char *set[] = {"dob", "needs", "household_id", NULL};
    cr_assert_eq(patch(st, 3, "V1", 2, &f, set, NULL), 200);
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
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    /* A note leaves the name: not one name term is written again, and
     * of the index only the status key moves (a delete and a put). */
    uint64_t terms = kz_stor_writes(st, KZ_STOR_CF_TERMS);
    uint64_t index = kz_stor_writes(st, KZ_STOR_CF_INDEX);
    cr_assert_gt(terms, 10, "the registration wrote its terms");
    json_t *body;
    cr_assert_eq(note(st, 4, "V1", "missing", "not at the shelter", &body),
                 201);
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF_TERMS), terms);
    uint64_t moved = kz_stor_writes(st, KZ_STOR_CF_INDEX) - index;
    cr_assert(moved >= 2 && moved < 10, "index writes of a note: %llu",
              (unsigned long long)moved);
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
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    json_t *body;
    cr_assert_eq(note(st, 3, "V404", "safe", NULL, &body), 404);
    cr_assert_str_eq(error_code(body), "not_found");
    json_decref(body);
    cr_assert_eq(note(st, 4, "V1", "alive", NULL, NULL), 400);
    cr_assert_eq(note(st, 5, "V1", NULL, "no status", NULL), 400);
    cr_assert_eq(note(st, 6, NULL, "safe", NULL, NULL), 400);
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
    cr_assert_eq(create(st, 2, &a, NULL), 201);
    expect_summary(st, "S1", "total=1 female=1 infant=1 elderly=1 safe=1");
    expect_summary(st, "S2", "");

    /* No sex, no status: counted as unknown. */
    struct vs b = {.id = "B", .name = "馬場 文", .shelter = "S1"};
    cr_assert_eq(create(st, 3, &b, NULL), 201);
    expect_summary(st, "S1",
                   "total=2 female=1 unknown_sex=1 infant=1 elderly=1 safe=1 "
                   "unknown_status=1");

    /* Not in a shelter: no counter moves. */
    struct vs c = {.id = "C", .name = "千葉 健", .sex = "male",
                   .status = "injured", .needs = {"disabled"}};
    cr_assert_eq(create(st, 4, &c, NULL), 201);
    expect_summary(st, "S1",
                   "total=2 female=1 unknown_sex=1 infant=1 elderly=1 safe=1 "
                   "unknown_status=1");

    /* A moves from S1 to S2: both shelters' counters move. */
    struct vs to_s2 = {.shelter = "S2"};
    const char *set_shelter[] = {"shelter_id", NULL};
    cr_assert_eq(patch(st, 5, "A", 2, &to_s2, set_shelter, NULL), 200);
    expect_summary(st, "S1", "total=1 unknown_sex=1 unknown_status=1");
    expect_summary(st, "S2", "total=1 female=1 infant=1 elderly=1 safe=1");

    /* A status change by a note. */
    cr_assert_eq(note(st, 6, "A", "injured", "sprained ankle", NULL), 201);
    expect_summary(st, "S2", "total=1 female=1 infant=1 elderly=1 injured=1");
    expect_summary(st, "S1", "total=1 unknown_sex=1 unknown_status=1");

    /* Sex and needs change within the same shelter. */
    struct vs f = {.sex = "other", .needs = {"pregnant", "medication"}};
    const char *set_sn[] = {"sex", "needs", NULL};
    cr_assert_eq(patch(st, 7, "A", 6, &f, set_sn, NULL), 200);
    expect_summary(st, "S2",
                   "total=1 other=1 pregnant=1 medication=1 injured=1");

    /* A status change by a patch, and a patch that touches nothing counted. */
    struct vs st_missing = {.status = "missing"};
    const char *set_status[] = {"status", NULL};
    cr_assert_eq(patch(st, 8, "A", -1, &st_missing, set_status, NULL), 200);
    struct vs addr = {.address = "どこか"};
    const char *set_addr[] = {"address", NULL};
    cr_assert_eq(patch(st, 9, "A", -1, &addr, set_addr, NULL), 200);
    expect_summary(st, "S2",
                   "total=1 other=1 pregnant=1 medication=1 missing=1");

    /* C checks in to S2. */
    cr_assert_eq(patch(st, 10, "C", -1, &to_s2, set_shelter, NULL), 200);
    expect_summary(st, "S2",
                   "total=2 other=1 male=1 pregnant=1 medication=1 disabled=1 "
                   "missing=1 injured=1");

    /* A leaves any shelter. */
    struct vs none = {.shelter = NULL};
    cr_assert_eq(patch(st, 11, "A", -1, &none, set_shelter, NULL), 200);
    expect_summary(st, "S2", "total=1 male=1 disabled=1 injured=1");
    expect_summary(st, "S1", "total=1 unknown_sex=1 unknown_status=1");

    /* Refused commands move nothing. */
    cr_assert_eq(patch(st, 12, "C", 1, &none, set_shelter, NULL), 412);
    cr_assert_eq(create(st, 13, &c, NULL), 409);
    expect_summary(st, "S2", "total=1 male=1 disabled=1 injured=1");

    /* A comes back to S1. */
    struct vs to_s1 = {.shelter = "S1"};
    cr_assert_eq(patch(st, 14, "A", -1, &to_s1, set_shelter, NULL), 200);
    expect_summary(st, "S1",
                   "total=2 other=1 unknown_sex=1 pregnant=1 medication=1 "
                   "missing=1 unknown_status=1");

    /* A's stays: S1 (in at 2, closed at 5), S2 (closed at 11), S1 (open,
     * since 14). */
    Kizuna__Victim *v = load(st, "A");
    cr_assert_eq(v->n_shelter_history, 3);
    cr_assert_str_eq(v->shelter_history[0]->shelter_id, "S1");
    cr_assert_eq(v->shelter_history[0]->in_ms, T0 + 2000);
    cr_assert(v->shelter_history[0]->has_out_ms);
    cr_assert_eq(v->shelter_history[0]->out_ms, T0 + 5000);
    cr_assert_str_eq(v->shelter_history[1]->shelter_id, "S2");
    cr_assert_eq(v->shelter_history[1]->in_ms, T0 + 5000);
    cr_assert_eq(v->shelter_history[1]->out_ms, T0 + 11000);
    cr_assert_str_eq(v->shelter_history[2]->shelter_id, "S1");
    cr_assert_eq(v->shelter_history[2]->in_ms, T0 + 14000);
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
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    struct dumpbuf before = take_dump(st);
    uint64_t idx = 3;

    /* Bytes that are not a Command, plain and sealed as a proposer would
     * seal them (opened, then refused like the plain ones). */
    const char *junk[] = {"\xff\xff\xff\xff", "\x0a\xff\x01", ("\x52\x05" "ab")};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        size_t len = strlen(junk[i]);
        char *buf = malloc(len);
        memcpy(buf, junk[i], len);
        json_t *body;
        cr_assert_eq(apply_buf(st, idx++, buf, len, &body), 400, "junk %zu",
                     i);
        cr_assert_str_eq(error_code(body), "bad_command");
        json_decref(body);
        size_t sl;
        char *sealed = kz_test_seal(keys_of(st), junk[i], len, &sl);
        cr_assert_eq(apply_buf(st, idx++, sealed, sl, &body), 400,
                     "sealed junk %zu", i);
        cr_assert_str_eq(error_code(body), "bad_command");
        json_decref(body);
    }
    /* A valid create truncated by one byte, plain and sealed. */
    size_t len;
    char *buf = pack_create(T0, &yamada, &len);
    size_t sl;
    char *sealed = kz_test_seal(keys_of(st), buf, len - 1, &sl);
    cr_assert_eq(apply_buf(st, idx++, buf, len - 1, NULL), 400);
    cr_assert_eq(apply_buf(st, idx++, sealed, sl, NULL), 400);

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
    cr_assert_eq(kz_node_load_victim(st, keys_of(st), MUNI, "V2", &none),
                 KZ_ENOTFOUND);
    kz_stor_close(st);
}

/* ------------------------------------------------------------ results */

#define SENTINEL ((char *)0x5a5a5a5a)

static void apply_no_result(kz_stor *st, uint64_t idx, char *buf, size_t len)
{
    char *res = SENTINEL;
    size_t rl = 777;
    bool changed = true;
    int rv = kz_node_apply(st, keys_of(st), idx, buf, len, false, &res, &rl,
                           &changed);
    free(buf);
    cr_assert_eq(rv, KZ_OK);
    cr_assert_eq(kz_stor_applied_index(st), idx);
    cr_assert_eq(res, SENTINEL, "want_result=false wrote a result");
    cr_assert_eq(rl, 777);
    cr_assert_not(changed);
}

Test(reg, want_result_false_never_allocates)
{
    kz_stor *st = open_store(0);
    size_t len, sl;
    uint64_t idx = 2;
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    char *b;
    b = pack_create(T0, &yamada, &len); /* 201 */
    apply_no_result(st, idx++, b, len);
    b = pack_create(T0, &yamada, &len); /* 409 */
    apply_no_result(st, idx++, b, len);
    b = pack_patch(T0, "V1", 2, &f, set, &len); /* 200 */
    apply_no_result(st, idx++, b, len);
    b = pack_patch(T0, "V1", 2, &f, set, &len); /* 412 */
    apply_no_result(st, idx++, b, len);
    b = pack_patch(T0, "V9", -1, &f, set, &len); /* 404 */
    apply_no_result(st, idx++, b, len);
    b = pack_note(T0, "V1", "safe", "x", &len); /* 201, sealed */
    char *s = kz_test_seal(keys_of(st), b, len, &sl);
    free(b);
    apply_no_result(st, idx++, s, sl);
    b = pack_shelter(T0, "S1", "s", 3, &len); /* 201 */
    apply_no_result(st, idx++, b, len);
    char *junk = malloc(2);
    memcpy(junk, "\xff\xff", 2);
    apply_no_result(st, idx++, junk, 2); /* 400 */

    /* The state moved exactly as with results. */
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_eq(v->version, 7);
    cr_assert_eq(v->n_notes, 1);
    kizuna__victim__free_unpacked(v, NULL);

    char *buf = pack_note(T0, "V1", "injured", NULL, &len);
    bool changed = true;
    cr_assert_eq(kz_node_apply(st, keys_of(st), idx, buf, len, false, NULL,
                               NULL, &changed),
                 KZ_OK);
    free(buf);
    cr_assert_not(changed);
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

static int apply_status(kz_stor *st, uint64_t idx, const char *cmd, size_t len)
{
    char *res = NULL;
    size_t rl;
    bool changed = true;
    cr_assert_eq(kz_node_apply(st, keys_of(st), idx, cmd, len, true, &res, &rl,
                               &changed),
                 KZ_OK, "apply at %llu", (unsigned long long)idx);
    cr_assert_not_null(res);
    cr_assert_not(changed);
    int status = atoi((char[4]){res[0], res[1], res[2], 0});
    free(res);
    return status;
}

static void apply_quiet(kz_stor *st, uint64_t idx, const char *cmd, size_t len)
{
    bool changed = true;
    cr_assert_eq(kz_node_apply(st, keys_of(st), idx, cmd, len, false, NULL,
                               NULL, &changed),
                 KZ_OK, "apply at %llu", (unsigned long long)idx);
    cr_assert_not(changed);
}

Test(reg, apply_is_deterministic)
{
    enum { N = 200, HALF = 100 };
    /* Every replica applies the same KeyInit bytes (one proposal): the same
     * wrapped keys, so the same data and index keys everywhere. */
    kz_stor *a = open_bare(0), *b = open_bare(1), *c = open_bare(2);
    size_t init_len;
    char *init = kz_test_make_init(&keys[0], MUNI, &init_len);
    kz_test_apply_key_cmd(a, &keys[0], 1, init, init_len);
    kz_test_apply_key_cmd(b, &keys[1], 1, init, init_len);
    kz_test_apply_key_cmd(c, &keys[2], 1, init, init_len);
    free(init);
    cr_assert_eq(memcmp(keys[0].index_key, keys[1].index_key,
                        sizeof keys[0].index_key),
                 0);
    cr_assert_eq(memcmp(keys[0].data[0].key, keys[2].data[0].key,
                        sizeof keys[0].data[0].key),
                 0);

    /* Commands at indexes 2..N+1; every third one sealed as a proposer
     * seals it (random nonce: the raft bytes differ from the plain ones,
     * the state they produce must not). */
    char *cmds[N];
    size_t lens[N];
    struct rng r = {20240101};
    int nsealed = 0;
    for (uint64_t i = 0; i < N; i++) {
        cmds[i] = make_command(&r, i + 2, &lens[i]);
        if (i % 3 == 1) {
            size_t sl;
            char *s = kz_test_seal(&keys[0], cmds[i], lens[i], &sl);
            free(cmds[i]);
            cmds[i] = s;
            lens[i] = sl;
            nsealed++;
        }
    }
    cr_assert_gt(nsealed, 60);

    int seen[6] = {0}; /* 200 201 400 404 409 412 */
    for (uint64_t i = 0; i < N; i++) {
        int status = apply_status(a, i + 2, cmds[i], lens[i]);
        const int codes[] = {200, 201, 400, 404, 409, 412};
        for (int k = 0; k < 6; k++)
            if (codes[k] == status)
                seen[k]++;
        apply_quiet(b, i + 2, cmds[i], lens[i]);
        if (i < HALF)
            apply_quiet(c, i + 2, cmds[i], lens[i]);
    }
    /* The sequence exercised every outcome, so the comparison means
     * something. */
    const int codes[] = {200, 201, 400, 404, 409, 412};
    for (int k = 0; k < 6; k++)
        cr_assert_gt(seen[k], 0, "no command ended %d", codes[k]);

    /* d: installs c's snapshot (keys included) at HALF + 1, unwraps the
     * keys from it, then applies the rest. */
    struct dumpbuf mid = take_dump(c);
    kz_stor *d = open_bare(3);
    cr_assert_eq(kz_stor_load(d, mid.buf, mid.len), KZ_OK);
    free(mid.buf);
    cr_assert_eq(kz_stor_applied_index(d), HALF + 1);
    cr_assert_eq(kz_node_keys_refresh(&keys[3], d), KZ_OK, "%s",
                 keys[3].errmsg);
    for (uint64_t i = HALF; i < N; i++)
        apply_quiet(d, i + 2, cmds[i], lens[i]);

    struct dumpbuf da = take_dump(a), db = take_dump(b), dd = take_dump(d);
    cr_assert_eq(kz_stor_applied_index(a), N + 1);
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
    for (uint64_t i = 2; i <= N + 1; i++) {
        size_t len;
        char *buf = make_command(&r, i, &len);
        apply_quiet(st, i, buf, len);
        free(buf);
    }
    for (int s = 0; shelters[s]; s++) {
        long long total = 0, by_sex[4] = {0}, by_status[5] = {0}, nd[6] = {0};
        kz_stor_iter *it =
            kz_stor_iter_new(st, KZ_STOR_CF_RECORDS, MUNI "/v/", 9, NULL, 0);
        const char *k;
        size_t kl;
        while (kz_stor_iter_next(it, &k, &kl, NULL, NULL)) {
            /* Records are sealed: read them through the register. */
            char id[64];
            cr_assert(kl > 9 && kl - 9 < sizeof id);
            memcpy(id, k + 9, kl - 9);
            id[kl - 9] = '\0';
            Kizuna__Victim *v = load(st, id);
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

/* --------------------------------------------------- encryption at rest */

static const struct vs suzuki = {.id = "V2",
                                 .name = "鈴木 一郎",
                                 .kana = "すずき いちろう",
                                 .dob = "1972-03-09",
                                 .sex = "male",
                                 .shelter = "S1",
                                 .status = "injured",
                                 .address = "千代田区千代田1-1",
                                 .contact = "090-1234-5678"};

static size_t record_key(char *key, size_t cap, const char *muni,
                         const char *id)
{
    int n = snprintf(key, cap, "%s/v/%s", muni, id);
    cr_assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* The raw stored value of record id (malloc'd). */
static char *raw_record(kz_stor *st, const char *id, size_t *len)
{
    char key[128];
    size_t kl = record_key(key, sizeof key, MUNI, id);
    char *v = NULL;
    int rv = kz_stor_get(st, KZ_STOR_CF_RECORDS, key, kl, &v, len);
    cr_assert_eq(rv, KZ_OK, "raw record %s: %d", id, rv);
    return v;
}

/* Writes a raw value under muni/v/id behind the register's back (a disk
 * error, an attacker with the files), committed at idx. */
static void put_raw_record(kz_stor *st, uint64_t idx, const char *muni,
                           const char *id, const void *val, size_t len)
{
    char key[128];
    size_t kl = record_key(key, sizeof key, muni, id);
    kz_stor_batch *b = kz_stor_batch_new(st);
    cr_assert_not_null(b);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, kl, val, len);
    cr_assert_eq(kz_stor_batch_commit(st, b, idx), KZ_OK);
    kz_stor_batch_free(b);
}

static uint32_t sealed_key_id(const void *sealed, size_t len)
{
    uint32_t id = 0;
    cr_assert_eq(kz_stor_sealed_key_id(sealed, len, &id), KZ_OK,
                 "not a sealed value");
    return id;
}

static uint32_t meta_key_id(kz_stor *st, const char *key)
{
    char *v = NULL;
    size_t vl;
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_META, key, strlen(key), &v, &vl),
                 KZ_OK, "meta %s", key);
    cr_assert_eq(vl, KZ_STOR_WRAPPED_BYTES, "meta %s", key);
    uint32_t id = sealed_key_id(v, vl);
    free(v);
    return id;
}

static void assert_absent(const void *hay, size_t hl, const char *needle,
                          const char *what)
{
    cr_assert_null(memmem(hay, hl, needle, strlen(needle)),
                   "%s holds \"%s\" in the clear", what, needle);
}

/* Every key and value of one column family, length-prefixed (malloc'd). */
static struct dumpbuf cf_image(kz_stor *st, int cf)
{
    struct dumpbuf d = {NULL, 0};
    FILE *f = open_memstream(&d.buf, &d.len);
    cr_assert_not_null(f);
    kz_stor_iter *it = kz_stor_iter_new(st, cf, "", 0, NULL, 0);
    cr_assert_not_null(it);
    const char *k, *v;
    size_t kl, vl;
    while (kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        fwrite(&kl, sizeof kl, 1, f);
        fwrite(k, 1, kl, f);
        fwrite(&vl, sizeof vl, 1, f);
        fwrite(v, 1, vl, f);
    }
    kz_stor_iter_free(it);
    cr_assert_eq(fclose(f), 0);
    return d;
}

/* Applies cmd (not freed) with a result; returns the HTTP status and, if
 * res_out, the whole "NNN" + JSON result (malloc'd). */
static int apply_keys_result(kz_stor *st, struct kz_node_keys *k,
                             uint64_t idx, const char *cmd, size_t len,
                             bool *changed, char **res_out)
{
    char *res = NULL;
    size_t rl = 0;
    int rv = kz_node_apply(st, k, idx, cmd, len, true, &res, &rl, changed);
    cr_assert_eq(rv, KZ_OK, "apply at %llu: %d", (unsigned long long)idx, rv);
    cr_assert_eq(kz_stor_applied_index(st), idx);
    cr_assert_not_null(res);
    cr_assert_eq(strlen(res), rl);
    int status = atoi((char[4]){res[0], res[1], res[2], 0});
    if (res_out != NULL)
        *res_out = res;
    else
        free(res);
    return status;
}

Test(reg, records_are_stored_sealed)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &suzuki, NULL), 201);
    size_t rl;
    char *raw = raw_record(st, "V2", &rl);
    cr_assert_eq((unsigned char)raw[0], 1, "seal format version byte");
    cr_assert_eq(sealed_key_id(raw, rl), 1, "sealed with data key 1");
    const char *clear[] = {suzuki.name,    "鈴木",         "一郎",
                           suzuki.kana,    "すずき",       "いちろう",
                           suzuki.address, "千代田",       suzuki.dob,
                           "1972",         suzuki.contact, "090-1234"};
    for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++)
        assert_absent(raw, rl, clear[i], "the stored record");

    /* The register still reads every field. */
    Kizuna__Victim *v = load(st, "V2");
    cr_assert_str_eq(v->name, suzuki.name);
    cr_assert_str_eq(v->name_kana, suzuki.kana);
    cr_assert_str_eq(v->address, suzuki.address);
    cr_assert_str_eq(v->dob, suzuki.dob);
    cr_assert_str_eq(v->contact, suzuki.contact);
    cr_assert_str_eq(v->status, "injured");
    cr_assert_eq(v->version, 2);
    /* Exactly the packed record plus the seal's overhead. */
    cr_assert_eq(rl, kizuna__victim__get_packed_size(v) +
                         KZ_STOR_SEAL_OVERHEAD);
    kizuna__victim__free_unpacked(v, NULL);
    free(raw);

    /* A patch re-seals the new image; still nothing in the clear. */
    struct vs f = {.address = "港区芝公園4-2-8"};
    const char *set[] = {"address", NULL};
    cr_assert_eq(patch(st, 3, "V2", 2, &f, set, NULL), 200);
    raw = raw_record(st, "V2", &rl);
    assert_absent(raw, rl, "港区芝公園", "the patched record");
    assert_absent(raw, rl, suzuki.name, "the patched record");
    free(raw);
    v = load(st, "V2");
    cr_assert_str_eq(v->address, "港区芝公園4-2-8");
    cr_assert_eq(v->version, 3);
    kizuna__victim__free_unpacked(v, NULL);
    kz_stor_close(st);
}

Test(reg, no_name_or_dob_in_the_clear_in_the_index_or_the_state)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    cr_assert_eq(create(st, 3, &suzuki, NULL), 201);
    /* A patch moves the name and dob index entries (delete + put). */
    struct vs f = {.dob = "1972-03-10", .kana = "すずき いちろー"};
    const char *set[] = {"dob", "name_kana", NULL};
    cr_assert_eq(patch(st, 4, "V2", 3, &f, set, NULL), 200);

    /* What must not be readable: the names, their readings, every folded
     * name key (what the index used to hold), romaji, the dates. */
    const char *needles[64];
    size_t nn = 0;
    const char *fixed[] = {"山田 太郎", "山田",       "太郎",
                           "やまだ",    "たろう",     "yamada",
                           "taro",      "鈴木",       "一郎",
                           "すずき",    "suzuki",     "ichiro",
                           "1950-04-01", "19500401",  "1972-03-09",
                           "1972-03-10", "千代田"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        needles[nn++] = fixed[i];
    static char folded[2][24][KZ_NODE_NAME_KEY_MAX];
    size_t n0 = kz_node_name_keys(yamada.name, yamada.kana, folded[0], 24);
    size_t n1 = kz_node_name_keys(suzuki.name, suzuki.kana, folded[1], 24);
    cr_assert_gt(n0, 0);
    cr_assert_gt(n1, 0);
    for (size_t i = 0; i < n0 && nn < 64; i++)
        needles[nn++] = folded[0][i];
    for (size_t i = 0; i < n1 && nn < 64; i++)
        needles[nn++] = folded[1][i];

    const char *k;
    size_t kl, n_name = 0, n_dob = 0, n_total = 0, n_terms = 0;
    /* Index and terms (where the name and dob terms are). */
    for (int cf = KZ_STOR_CF_INDEX; cf <= KZ_STOR_CF_TERMS;
         cf = cf == KZ_STOR_CF_INDEX ? KZ_STOR_CF_TERMS : cf + 1) {
    kz_stor_iter *it = kz_stor_iter_new(st, cf, "", 0, NULL, 0);
    cr_assert_not_null(it);
    while (kz_stor_iter_next(it, &k, &kl, NULL, NULL)) {
        if (cf == KZ_STOR_CF_TERMS)
            n_terms++;
        n_total++;
        for (size_t i = 0; i < nn; i++)
            assert_absent(k, kl, needles[i], "an index key");
        /* Name and dob entries are "<muni>/<n|d>/<32 hex>\0<id>". */
        if (kl > 9 && (memcmp(k, MUNI "/n/", 9) == 0 ||
                       memcmp(k, MUNI "/d/", 9) == 0)) {
            cr_assert_geq(kl, 9 + 32 + 2);
            for (size_t i = 9; i < 9 + 32; i++)
                cr_assert(strchr("0123456789abcdef", k[i]) && k[i] != '\0',
                          "blind term is not hex");
            cr_assert_eq(k[9 + 32], '\0');
            cr_assert_eq(cf, KZ_STOR_CF_TERMS, "a term outside terms");
            if (k[7] == 'n')
                n_name++;
            else
                n_dob++;
        }
    }
    kz_stor_iter_free(it);
    }
    cr_assert_gt(n_total, 0);
    cr_assert_eq(n_terms, n_name + n_dob, "terms holds only name and dob terms");
    cr_assert_gt(n_name, 4, "every prefix of every name key is indexed");
    cr_assert_eq(n_dob, 2, "one dob entry per record with a dob");

    /* The whole state (meta, records, index: what a snapshot ships). */
    struct dumpbuf d = take_dump(st);
    for (size_t i = 0; i < nn; i++)
        assert_absent(d.buf, d.len, needles[i], "the state dump");
    free(d.buf);

    /* The blind terms still find them. */
    char ids[64];
    cr_assert_str_eq(search_ids(st, "yamada", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, "スズキ イチロー", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V2");
    cr_assert_str_eq(search_ids(st, "鈴", NULL, NULL, NULL, ids, sizeof ids),
                     "V2");
    cr_assert_str_eq(search_ids(st, NULL, "1972-03-10", NULL, NULL, ids,
                                sizeof ids),
                     "V2");
    cr_assert_str_eq(search_ids(st, NULL, "1972-03-09", NULL, NULL, ids,
                                sizeof ids),
                     "", "the old dob entry went with the patch");
    kz_stor_close(st);
}

Test(reg, moved_or_altered_values_do_not_open)
{
    kz_stor *st = open_store(0);
    struct kz_node_keys *k = keys_of(st);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    cr_assert_eq(create(st, 3, &suzuki, NULL), 201);
    uint64_t idx = 4;
    size_t l1;
    char *raw1 = raw_record(st, "V1", &l1);

    /* V1's sealed bytes under V2's key, or under another municipality's V1:
     * the storage key is the associated data. */
    Kizuna__Victim *v = NULL;
    put_raw_record(st, idx++, MUNI, "V2", raw1, l1);
    cr_assert_eq(kz_node_load_victim(st, k, MUNI, "V2", &v), KZ_ECORRUPT);
    put_raw_record(st, idx++, "041009", "V1", raw1, l1);
    cr_assert_eq(kz_node_load_victim(st, k, "041009", "V1", &v), KZ_ECORRUPT);
    Kizuna__Victim *ok = load(st, "V1");
    cr_assert_str_eq(ok->name, yamada.name);
    kizuna__victim__free_unpacked(ok, NULL);

    /* One flipped bit in the version byte, the key id, the nonce, the
     * ciphertext or the tag. */
    const size_t at[] = {0, 4, 5, 5 + 11, 17, 17 + (l1 - 33) / 2, l1 - 16,
                         l1 - 1};
    char *bad = malloc(l1);
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        memcpy(bad, raw1, l1);
        bad[at[i]] ^= 0x01;
        put_raw_record(st, idx++, MUNI, "V1", bad, l1);
        v = NULL;
        cr_assert_eq(kz_node_load_victim(st, k, MUNI, "V1", &v), KZ_ECORRUPT,
                     "bit flipped at byte %zu of %zu", at[i], l1);
    }
    /* Truncated, and shorter than any sealed value. */
    put_raw_record(st, idx++, MUNI, "V1", raw1, l1 - 1);
    cr_assert_eq(kz_node_load_victim(st, k, MUNI, "V1", &v), KZ_ECORRUPT);
    put_raw_record(st, idx++, MUNI, "V1", raw1, KZ_STOR_SEAL_OVERHEAD - 1);
    cr_assert_eq(kz_node_load_victim(st, k, MUNI, "V1", &v), KZ_ECORRUPT);
    free(bad);

    /* The original bytes, back in place, open again. */
    put_raw_record(st, idx++, MUNI, "V1", raw1, l1);
    ok = load(st, "V1");
    cr_assert_str_eq(ok->name, yamada.name);
    kizuna__victim__free_unpacked(ok, NULL);
    free(raw1);
    kz_stor_close(st);
}

/* A replica's copy of a record that no longer opens (a disk error): patches
 * and notes of it stop the node (a storage failure, not a 4xx). */
Test(reg, patch_or_note_of_a_record_that_does_not_open_is_fatal)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    size_t l1;
    char *raw1 = raw_record(st, "V1", &l1);
    raw1[l1 / 2] ^= 0x40;
    put_raw_record(st, 3, MUNI, "V1", raw1, l1);
    free(raw1);
    struct dumpbuf before = take_dump(st);

    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    char *cmds[2];
    size_t lens[2];
    cmds[0] = pack_patch(T0, "V1", -1, &f, set, &lens[0]);
    cmds[1] = pack_note(T0, "V1", "safe", "found", &lens[1]);
    for (int i = 0; i < 2; i++) {
        char *res = NULL;
        size_t rl = 0;
        bool changed = false;
        int rv = kz_node_apply(st, keys_of(st), 4, cmds[i], lens[i], true,
                               &res, &rl, &changed);
        cr_assert_neq(rv, KZ_OK, "command %d applied over an unreadable "
                                 "record: %s", i, res ? res : "");
        cr_assert_null(res);
        cr_assert_eq(kz_stor_applied_index(st), 3, "index consumed");
        free(cmds[i]);
    }
    struct dumpbuf now = take_dump(st);
    cr_assert_eq(now.len, before.len);
    cr_assert_eq(memcmp(now.buf, before.buf, now.len), 0);
    free(now.buf);
    free(before.buf);
    kz_stor_close(st);
}

/* BUG (register.c apply_create): a create treats any load failure as
 * "absent". Over a record that does not open it applies (201) and writes the
 * new record over it, leaving the old one's index entries and shelter
 * counters behind — and a replica whose copy is intact answers 409 to the
 * same entry, so the replicas diverge. Like a patch, it must stop the node
 * (non-zero) and leave the state alone. */
Test(reg, create_over_a_record_that_does_not_open_is_fatal)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    size_t l1;
    char *raw1 = raw_record(st, "V1", &l1);
    raw1[l1 / 2] ^= 0x40;
    put_raw_record(st, 3, MUNI, "V1", raw1, l1);
    free(raw1);
    struct dumpbuf before = take_dump(st);

    struct vs other = {.id = "V1", .name = "佐藤 花子", .shelter = "S2"};
    size_t len;
    char *cmd = pack_create(T0 + 4000, &other, &len);
    char *res = NULL;
    size_t rl = 0;
    bool changed = false;
    int rv = kz_node_apply(st, keys_of(st), 4, cmd, len, true, &res, &rl,
                           &changed);
    free(cmd);
    struct dumpbuf now = take_dump(st);
    bool same = now.len == before.len &&
                memcmp(now.buf, before.buf, now.len) == 0;
    free(now.buf);
    free(before.buf);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", res ? res : "(no result)");
    free(res);
    kz_stor_close(st);
    cr_assert_neq(rv, KZ_OK,
                  "a create over a stored record that does not open applied "
                  "(result %s) instead of stopping the node",
                  msg);
    cr_assert(same, "the refused create changed the state");
}

Test(reg, register_commands_before_the_keys_exist_are_503)
{
    kz_stor *st = open_bare(0);
    struct kz_node_keys *k = keys_of(st);
    cr_assert_not(kz_node_keys_in_state(st));
    cr_assert_eq(kz_node_keys_refresh(k, st), KZ_ENOTFOUND);
    cr_assert_not(k->ready);
    struct dumpbuf before = take_dump(st);

    json_t *body;
    cr_assert_eq(create(st, 1, &yamada, &body), 503);
    cr_assert_str_eq(error_code(body), "keys_not_ready");
    json_decref(body);
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    cr_assert_eq(patch(st, 2, "V1", -1, &f, set, &body), 503);
    cr_assert_str_eq(error_code(body), "keys_not_ready");
    json_decref(body);
    cr_assert_eq(note(st, 3, "V1", "safe", NULL, NULL), 503);
    cr_assert_eq(shelter(st, 4, "S1", "第一小学校", 100, NULL), 503);
    /* Without a result too. */
    size_t len;
    char *buf = pack_create(T0, &suzuki, &len);
    apply_no_result(st, 5, buf, len);
    assert_same_state(before, st, "commands before the keys");
    free(before.buf);
    cr_assert_eq(kz_stor_applied_index(st), 5);
    cr_assert_not(kz_node_keys_in_state(st));
    Kizuna__Victim *none = NULL;
    cr_assert_eq(kz_node_load_victim(st, k, MUNI, "V1", &none), KZ_ENOTFOUND);

    /* The KeyInit (with a result: 200 ok), then the same create applies. */
    char *init = kz_test_make_init(k, MUNI, &len);
    bool changed = false;
    char *res = NULL;
    cr_assert_eq(apply_keys_result(st, k, 6, init, len, &changed, &res), 200);
    free(init);
    cr_assert(changed);
    json_t *ok = json_loads(res + 3, 0, NULL);
    cr_assert(json_is_true(json_object_get(ok, "ok")), "%s", res);
    json_decref(ok);
    free(res);
    cr_assert(kz_node_keys_in_state(st));
    cr_assert_eq(kz_node_keys_refresh(k, st), KZ_OK, "%s", k->errmsg);
    cr_assert_eq(create(st, 7, &yamada, NULL), 201);
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_eq(v->version, 7);
    kizuna__victim__free_unpacked(v, NULL);
    kz_stor_close(st);
}

Test(reg, second_key_init_is_409_and_keeps_the_keys)
{
    kz_stor *st = open_store(0);
    struct kz_node_keys *k = keys_of(st);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    unsigned char ik[KZ_STOR_KEY_BYTES], dk[KZ_STOR_KEY_BYTES];
    memcpy(ik, k->index_key, sizeof ik);
    memcpy(dk, k->data[0].key, sizeof dk);
    struct dumpbuf before = take_dump(st);

    size_t len;
    char *init2 = kz_test_make_init(k, MUNI, &len);
    bool changed = true;
    char *res = NULL;
    cr_assert_eq(apply_keys_result(st, k, 3, init2, len, &changed, &res), 409);
    cr_assert_not(changed, "a refused KeyInit reported changed keys");
    json_t *body = json_loads(res + 3, 0, NULL);
    cr_assert_str_eq(error_code(body), "conflict");
    json_decref(body);
    free(res);
    /* Sealed, and without a result: the same. */
    size_t sl;
    char *sealed = kz_test_seal(k, init2, len, &sl);
    changed = true;
    cr_assert_eq(kz_node_apply(st, k, 4, sealed, sl, false, NULL, NULL,
                               &changed),
                 KZ_OK);
    cr_assert_not(changed);
    free(sealed);
    free(init2);
    assert_same_state(before, st, "second KeyInit");
    free(before.buf);

    cr_assert_eq(kz_node_keys_refresh(k, st), KZ_OK);
    cr_assert_eq(k->n_data, 1);
    cr_assert_eq(k->current, 1);
    cr_assert_eq(memcmp(k->index_key, ik, sizeof ik), 0);
    cr_assert_eq(memcmp(k->data[0].key, dk, sizeof dk), 0);
    Kizuna__Victim *v = load(st, "V1");
    kizuna__victim__free_unpacked(v, NULL);
    char ids[64];
    cr_assert_str_eq(search_ids(st, "yamada", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V1");
    kz_stor_close(st);
}

Test(reg, data_key_rotation_seals_new_writes_with_the_new_key)
{
    kz_stor *st = open_store(0);
    struct kz_node_keys *k = keys_of(st);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);

    /* In flight across the rotation: a command sealed with data key 1. */
    size_t len, sl;
    char *plain = pack_note(T0 + 5000, "V1", "injured", "before", &len);
    char *sealed1 = kz_test_seal(k, plain, len, &sl);
    free(plain);
    cr_assert_eq(sealed_key_id(sealed1 + 4, sl - 4), 1);
    /* Another node that has unwrapped the keys before the rotation. */
    cr_assert_eq(kz_node_keys_open(&keys[1], ring_path), KZ_OK);
    cr_assert_eq(kz_node_keys_refresh(&keys[1], st), KZ_OK);

    char *rot = NULL;
    size_t rotl;
    cr_assert_eq(kz_node_keys_make_rotate_data(k, MUNI, &rot, &rotl), KZ_OK);
    kz_test_apply_key_cmd(st, k, 3, rot, rotl);
    free(rot);
    cr_assert_eq(k->current, 2);
    cr_assert_eq(k->n_data, 2);
    cr_assert_eq(meta_key_id(st, "key/data/00000002"), 1,
                 "wrapped by master key 1");

    /* Written before: still data key 1, still opens. */
    size_t rl;
    char *raw = raw_record(st, "V1", &rl);
    cr_assert_eq(sealed_key_id(raw, rl), 1);
    free(raw);
    Kizuna__Victim *v = load(st, "V1");
    cr_assert_str_eq(v->name, yamada.name);
    kizuna__victim__free_unpacked(v, NULL);

    /* Written after: data key 2. */
    cr_assert_eq(create(st, 4, &suzuki, NULL), 201);
    raw = raw_record(st, "V2", &rl);
    cr_assert_eq(sealed_key_id(raw, rl), 2);
    free(raw);
    v = load(st, "V2");
    cr_assert_str_eq(v->address, suzuki.address);
    kizuna__victim__free_unpacked(v, NULL);

    /* The in-flight command opens with key 1; the record it rewrites is
     * sealed with key 2. */
    cr_assert_eq(apply_buf(st, 5, sealed1, sl, NULL), 201);
    raw = raw_record(st, "V1", &rl);
    cr_assert_eq(sealed_key_id(raw, rl), 2);
    free(raw);
    v = load(st, "V1");
    cr_assert_eq(v->n_notes, 1);
    cr_assert_str_eq(v->notes[0]->text, "before");
    kizuna__victim__free_unpacked(v, NULL);

    /* Commands sealed now use key 2. */
    struct vs f = {.status = "safe"};
    const char *set[] = {"status", NULL};
    plain = pack_patch(T0 + 6000, "V2", 4, &f, set, &len);
    char *sealed2 = kz_test_seal(k, plain, len, &sl);
    free(plain);
    cr_assert_eq(sealed_key_id(sealed2 + 4, sl - 4), 2);
    cr_assert_eq(apply_buf(st, 6, sealed2, sl, NULL), 200);

    /* A concurrent rotation from the node that had not seen this one names
     * id 2 again: refused, nothing changes. */
    cr_assert_eq(kz_node_keys_make_rotate_data(&keys[1], MUNI, &rot, &rotl),
                 KZ_OK);
    struct dumpbuf before = take_dump(st);
    bool changed = true;
    json_t *body;
    char *res = NULL;
    cr_assert_eq(apply_keys_result(st, k, 7, rot, rotl, &changed, &res), 409);
    free(rot);
    cr_assert_not(changed);
    body = json_loads(res + 3, 0, NULL);
    cr_assert_str_eq(error_code(body), "conflict");
    json_decref(body);
    free(res);
    assert_same_state(before, st, "stale rotation");
    free(before.buf);
    cr_assert_eq(kz_node_keys_refresh(k, st), KZ_OK);
    cr_assert_eq(k->current, 2);
    cr_assert_eq(k->n_data, 2);

    /* The index key is not rotated: both are found. */
    char ids[64];
    cr_assert_str_eq(search_ids(st, "yamada", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V1");
    cr_assert_str_eq(search_ids(st, "suzuki", NULL, NULL, NULL, ids,
                                sizeof ids),
                     "V2");
    kz_stor_close(st);
}

Test(reg, master_key_rotation_rewraps_without_touching_data)
{
    kz_stor *st = open_store(0);
    struct kz_node_keys *k = keys_of(st);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    char *cmd;
    size_t len;
    cr_assert_eq(kz_node_keys_make_rotate_data(k, MUNI, &cmd, &len), KZ_OK);
    kz_test_apply_key_cmd(st, k, 3, cmd, len);
    free(cmd);
    cr_assert_eq(create(st, 4, &suzuki, NULL), 201);
    struct dumpbuf rec0 = cf_image(st, KZ_STOR_CF_RECORDS);
    struct dumpbuf idx0 = cf_image(st, KZ_STOR_CF_INDEX);
    struct dumpbuf trm0 = cf_image(st, KZ_STOR_CF_TERMS);

    /* The operator adds master key 2 to the keyring; the node re-reads it
     * and proposes the rewrap. */
    kz_test_append_ring(ring_path, 2);
    cr_assert_eq(kz_node_keys_reload_ring(k), KZ_OK, "%s", k->errmsg);
    cr_assert_eq(kz_stor_keyring_current(&k->ring), 2);
    unsigned n_keys = 0;
    cr_assert_eq(kz_node_keys_make_rewrap(k, st, MUNI, &cmd, &len, &n_keys),
                 KZ_OK);
    cr_assert_eq(n_keys, 2);
    kz_test_apply_key_cmd(st, k, 5, cmd, len);
    free(cmd);

    /* Only the wrapped keys changed: records and indexes are the same
     * bytes. */
    struct dumpbuf rec1 = cf_image(st, KZ_STOR_CF_RECORDS);
    struct dumpbuf idx1 = cf_image(st, KZ_STOR_CF_INDEX);
    struct dumpbuf trm1 = cf_image(st, KZ_STOR_CF_TERMS);
    cr_assert_eq(rec1.len, rec0.len);
    cr_assert_eq(memcmp(rec1.buf, rec0.buf, rec0.len), 0,
                 "the rewrap rewrote records");
    cr_assert_eq(idx1.len, idx0.len);
    cr_assert_eq(memcmp(idx1.buf, idx0.buf, idx0.len), 0,
                 "the rewrap rewrote the index");
    cr_assert_gt(trm0.len, 0);
    cr_assert_eq(trm1.len, trm0.len);
    cr_assert_eq(memcmp(trm1.buf, trm0.buf, trm0.len), 0,
                 "the rewrap rewrote the terms");
    free(trm0.buf);
    free(trm1.buf);
    free(rec0.buf);
    free(rec1.buf);
    free(idx0.buf);
    free(idx1.buf);
    cr_assert_eq(meta_key_id(st, "key/index"), 2);
    cr_assert_eq(meta_key_id(st, "key/data/00000001"), 2);
    cr_assert_eq(meta_key_id(st, "key/data/00000002"), 2);

    /* A node whose keyring holds only the new master key opens everything. */
    char p2[1100];
    const uint32_t only2[] = {2};
    kz_test_keys_open(&keys[1], keydir, "only2.key", only2, 1, p2, sizeof p2);
    cr_assert_eq(kz_node_keys_refresh(&keys[1], st), KZ_OK, "%s",
                 keys[1].errmsg);
    cr_assert_eq(keys[1].current, 2);
    cr_assert_eq(keys[1].n_data, 2);
    cr_assert_eq(memcmp(keys[1].index_key, k->index_key,
                        sizeof k->index_key),
                 0);
    const struct vs *people[] = {&yamada, &suzuki};
    for (int i = 0; i < 2; i++) {
        Kizuna__Victim *v = NULL;
        cr_assert_eq(kz_node_load_victim(st, &keys[1], MUNI, people[i]->id,
                                         &v),
                     KZ_OK, "%s", people[i]->id);
        cr_assert_str_eq(v->name, people[i]->name);
        cr_assert_str_eq(v->dob, people[i]->dob);
        kizuna__victim__free_unpacked(v, NULL);
    }
    char ids[64];
    cr_assert_str_eq(search_ids_k(st, &keys[1], "suzuki", NULL, NULL, NULL,
                                  ids, sizeof ids),
                     "V2");
    cr_assert_str_eq(search_ids_k(st, &keys[1], NULL, "1950-04-01", NULL,
                                  NULL, ids, sizeof ids),
                     "V1");

    /* Only the old master key: the state's keys no longer open. */
    char p1[1100];
    const uint32_t only1[] = {1};
    kz_test_keys_open(&keys[2], keydir, "only1.key", only1, 1, p1, sizeof p1);
    cr_assert_neq(kz_node_keys_refresh(&keys[2], st), KZ_OK);
    cr_assert_not(keys[2].ready);

    /* Writes go on; the new-key-only node reads them. */
    struct vs third = {.id = "V3", .name = "高橋 美咲", .dob = "2001-02-03"};
    cr_assert_eq(create(st, 6, &third, NULL), 201);
    Kizuna__Victim *v = NULL;
    cr_assert_eq(kz_node_load_victim(st, &keys[1], MUNI, "V3", &v), KZ_OK);
    cr_assert_str_eq(v->name, third.name);
    kizuna__victim__free_unpacked(v, NULL);
    kz_stor_close(st);
}

/* BUG (register.c apply_keys, KeyRewrap): apply accepts a rewrap that does
 * not name every data key of the state. A rewrap is built from the data keys
 * its proposer has unwrapped; a data key added meanwhile by a node still on
 * the old master key stays wrapped by the old master key only. The rewrap
 * is accepted (200), and once the old master key leaves the keyrings no node
 * can unwrap the state's keys: the cluster stops. A KeyAdd whose id is not
 * the next one is refused (409) for the same kind of race; a rewrap that
 * misses a data key should be too. */
Test(reg, rewrap_must_cover_every_data_key_of_the_state)
{
    kz_stor *st = open_store(0);
    struct kz_node_keys *k = keys_of(st);
    /* Node B: its keyring still has master key 1 only. */
    char p1[1100];
    const uint32_t only1[] = {1};
    kz_test_keys_open(&keys[1], keydir, "only1.key", only1, 1, p1, sizeof p1);
    cr_assert_eq(kz_node_keys_refresh(&keys[1], st), KZ_OK);

    /* Node A gets master key 2 and proposes a rewrap of data key 1... */
    kz_test_append_ring(ring_path, 2);
    cr_assert_eq(kz_node_keys_reload_ring(k), KZ_OK);
    char *rewrap, *rot;
    size_t rewrap_len, rot_len;
    unsigned n_keys;
    cr_assert_eq(kz_node_keys_make_rewrap(k, st, MUNI, &rewrap, &rewrap_len,
                                          &n_keys),
                 KZ_OK);
    cr_assert_eq(n_keys, 1);
    /* ...while node B proposes a data-key rotation, committed first. */
    cr_assert_eq(kz_node_keys_make_rotate_data(&keys[1], MUNI, &rot, &rot_len),
                 KZ_OK);
    kz_test_apply_key_cmd(st, k, 2, rot, rot_len);
    free(rot);
    cr_assert_eq(meta_key_id(st, "key/data/00000002"), 1);

    bool changed = false;
    int status = apply_keys_result(st, k, 3, rewrap, rewrap_len, &changed,
                                   NULL);
    free(rewrap);
    if (changed)
        cr_assert_eq(kz_node_keys_refresh(k, st), KZ_OK);
    if (status != 200) {
        cr_assert_eq(status, 409, "a stale rewrap is refused as a conflict");
        kz_stor_close(st);
        return;
    }
    /* Accepted: then the new master key alone must open the state. */
    char p2[1100];
    const uint32_t only2[] = {2};
    kz_test_keys_open(&keys[2], keydir, "only2.key", only2, 1, p2, sizeof p2);
    int rv = kz_node_keys_refresh(&keys[2], st);
    uint32_t dk2 = meta_key_id(st, "key/data/00000002");
    kz_stor_close(st);
    cr_assert_eq(rv, KZ_OK,
                 "the rewrap was accepted, but data key 2 is still wrapped "
                 "by master key %u: a keyring of the new master key alone "
                 "cannot open the state (%s)",
                 (unsigned)dk2, keys[2].errmsg);
}

Test(reg, keyring_open_to_group_or_others_is_refused)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/loose.key", keydir);
    const mode_t bad[] = {0644, 0640, 0604, 0660, 0620, 0602, 0610, 0601};
    struct kz_node_keys k;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kz_test_write_ring(path, ring1, 1, bad[i]);
        int rv = kz_node_keys_open(&k, path);
        cr_assert_eq(rv, KZ_ECONFIG, "mode %03o: %d", (unsigned)bad[i], rv);
        cr_assert_not_null(strstr(k.errmsg, "chmod"), "mode %03o: %s",
                           (unsigned)bad[i], k.errmsg);
        cr_assert_eq(k.ring.n, 0);
        kz_node_keys_wipe(&k);
    }
    const mode_t good[] = {0600, 0400};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        kz_test_write_ring(path, ring1, 1, good[i]);
        cr_assert_eq(kz_node_keys_open(&k, path), KZ_OK, "mode %03o: %s",
                     (unsigned)good[i], k.errmsg);
        cr_assert_eq(k.ring.n, 1);
        kz_node_keys_wipe(&k);
    }

    /* A keyring made readable by others after start: a reload refuses it
     * and keeps the keys it had. */
    kz_test_write_ring(path, ring1, 1, 0600);
    cr_assert_eq(kz_node_keys_open(&k, path), KZ_OK);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(kz_node_keys_reload_ring(&k), KZ_ECONFIG);
    cr_assert_eq(k.ring.n, 1);
    cr_assert_eq(kz_stor_keyring_current(&k.ring), 1);
    kz_node_keys_wipe(&k);

    /* A missing file, and files that are not keyrings. */
    snprintf(path, sizeof path, "%s/absent.key", keydir);
    cr_assert_eq(kz_node_keys_open(&k, path), KZ_ECONFIG);
    snprintf(path, sizeof path, "%s/bad.key", keydir);
    const char *contents[] = {"", "# only a comment\n", "1 abcd\n",
                              "1 zz\n", "0 " /* id 0 */};
    for (size_t i = 0; i < sizeof contents / sizeof contents[0]; i++) {
        unlink(path);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(contents[i], f);
        if (i == 4) {
            char hex[65];
            kz_test_hex_key(1, hex);
            fprintf(f, "%s\n", hex);
        }
        cr_assert_eq(fclose(f), 0);
        cr_assert_eq(chmod(path, 0600), 0);
        cr_assert_eq(kz_node_keys_open(&k, path), KZ_ECONFIG, "content %zu",
                     i);
        kz_node_keys_wipe(&k);
    }
    /* The same id twice. */
    const uint32_t twice[] = {3, 3};
    kz_test_write_ring(path, twice, 2, 0600);
    cr_assert_eq(kz_node_keys_open(&k, path), KZ_ECONFIG);
    kz_node_keys_wipe(&k);
}

Test(reg, sealed_command_this_node_cannot_open_stops_it)
{
    kz_stor *a = open_bare(0);
    /* Node b has another cluster's keyring. */
    char other[1100];
    snprintf(other, sizeof other, "%s/other.key", keydir);
    const uint32_t ring7[] = {7};
    kz_test_write_ring(other, ring7, 1, 0600);
    kz_stor *b = open_bare_ring(1, other);
    /* Node c has the right keyring but never unwraps the state's keys. */
    kz_stor *c = open_bare(2);

    size_t il;
    char *init = kz_test_make_init(&keys[0], MUNI, &il);
    kz_test_apply_key_cmd(a, &keys[0], 1, init, il);
    bool changed = false;
    cr_assert_eq(kz_node_apply(b, &keys[1], 1, init, il, false, NULL, NULL,
                               &changed),
                 KZ_OK, "a KeyInit applies whatever the keyring");
    cr_assert(changed);
    cr_assert_eq(kz_node_apply(c, &keys[2], 1, init, il, false, NULL, NULL,
                               &changed),
                 KZ_OK);
    free(init);
    struct dumpbuf before_b = take_dump(b), before_c = take_dump(c);

    size_t len, sl;
    char *cmd = pack_create(T0, &yamada, &len);
    char *sealed = kz_test_seal(&keys[0], cmd, len, &sl);
    cr_assert_eq(apply_status(a, 2, sealed, sl), 201, "node a applies it");

    kz_stor *st[] = {b, c};
    struct kz_node_keys *ks[] = {&keys[1], &keys[2]};
    struct dumpbuf *before[] = {&before_b, &before_c};
    for (int i = 0; i < 2; i++) {
        /* Sealed: cannot open it. In the clear: the state has keys this
         * node cannot use. Either way it must not apply (or skip) it. */
        const char *what[] = {"sealed", "plain"};
        const char *bytes[] = {sealed, cmd};
        size_t lens[] = {sl, len};
        for (int j = 0; j < 2; j++) {
            char *res = NULL;
            size_t rl = 0;
            changed = false;
            int rv = kz_node_apply(st[i], ks[i], 2, bytes[j], lens[j], true,
                                   &res, &rl, &changed);
            cr_assert_neq(rv, KZ_OK, "node %c applied a %s command it "
                                     "cannot open: %s",
                          'b' + i, what[j], res ? res : "");
            cr_assert_null(res);
            cr_assert_not(changed);
            cr_assert_eq(kz_stor_applied_index(st[i]), 1,
                         "node %c consumed the entry", 'b' + i);
        }
        struct dumpbuf now = take_dump(st[i]);
        cr_assert_eq(now.len, before[i]->len);
        cr_assert_eq(memcmp(now.buf, before[i]->buf, now.len), 0,
                     "node %c changed its state", 'b' + i);
        free(now.buf);
        free(before[i]->buf);
    }
    /* b's keyring cannot unwrap the keys at all. */
    cr_assert_neq(kz_node_keys_refresh(&keys[1], b), KZ_OK);
    cr_assert_not(keys[1].ready);
    cr_assert_eq(kz_node_apply(b, &keys[1], 2, sealed, sl, false, NULL, NULL,
                               &changed),
                 KZ_ECONFIG);
    /* Once c unwraps the keys, it applies the entry like a. */
    cr_assert_eq(kz_node_keys_refresh(&keys[2], c), KZ_OK);
    cr_assert_eq(apply_status(c, 2, sealed, sl), 201);

    /* A sealed entry altered in the log does not open either: stop. */
    sealed[sl - 3] ^= 0x10;
    cr_assert_neq(kz_node_apply(a, &keys[0], 3, sealed, sl, false, NULL, NULL,
                                &changed),
                  KZ_OK);
    cr_assert_eq(kz_stor_applied_index(a), 2);
    free(sealed);
    free(cmd);

    struct dumpbuf da = take_dump(a), dc = take_dump(c);
    cr_assert_eq(da.len, dc.len);
    cr_assert_eq(memcmp(da.buf, dc.buf, da.len), 0);
    free(da.buf);
    free(dc.buf);
    kz_stor_close(a);
    kz_stor_close(b);
    kz_stor_close(c);
}

/* Stores 0 and 1 as two replicas of one cluster: the same KeyInit bytes
 * applied to both, so the same keys. */
static void open_two_replicas(kz_stor **a, kz_stor **b)
{
    *a = open_bare(0);
    *b = open_bare(1);
    size_t il;
    char *init = kz_test_make_init(&keys[0], MUNI, &il);
    kz_test_apply_key_cmd(*a, &keys[0], 1, init, il);
    kz_test_apply_key_cmd(*b, &keys[1], 1, init, il);
    free(init);
}

Test(reg, sealed_commands_apply_like_plain_ones)
{
    /* The same commands, in the clear to a and sealed to b: the same
     * results and byte-identical states. */
    kz_stor *a, *b;
    open_two_replicas(&a, &b);

    struct vs f = {.status = "missing", .address = "仙台市青葉区"};
    const char *set[] = {"status", "address", NULL};
    char *cmds[9];
    size_t lens[9];
    cmds[0] = pack_create(T0 + 2000, &yamada, &lens[0]);         /* 201 */
    cmds[1] = pack_create(T0 + 3000, &suzuki, &lens[1]);         /* 201 */
    cmds[2] = pack_patch(T0 + 4000, "V1", 2, &f, set, &lens[2]); /* 200 */
    cmds[3] = pack_patch(T0 + 5000, "V1", 2, &f, set, &lens[3]); /* 412 */
    cmds[4] = pack_note(T0 + 6000, "V2", "safe", "ok", &lens[4]); /* 201 */
    cmds[5] = pack_shelter(T0 + 7000, "S1", "第一小学校", 300, &lens[5]);
    cmds[6] = pack_create(T0 + 8000, &yamada, &lens[6]);         /* 409 */
    cmds[7] = pack_patch(T0 + 9000, "V9", -1, &f, set, &lens[7]); /* 404 */
    cmds[8] = pack_note(T0 + 10000, "V1", "dead", NULL, &lens[8]); /* 400 */
    const int want[] = {201, 201, 200, 412, 201, 201, 409, 404, 400};
    for (int i = 0; i < 9; i++) {
        size_t sl;
        char *sealed = kz_test_seal(&keys[1], cmds[i], lens[i], &sl);
        /* The raft payload holds no personal data in the clear. */
        const char *clear[] = {yamada.name, yamada.kana, yamada.dob,
                               suzuki.name, suzuki.address, "仙台市"};
        for (size_t j = 0; j < sizeof clear / sizeof clear[0]; j++)
            assert_absent(sealed, sl, clear[j], "a sealed command");
        char *ra = NULL, *rb = NULL;
        bool ca = true, cb = true;
        int sa = apply_keys_result(a, &keys[0], (uint64_t)i + 2, cmds[i],
                                   lens[i], &ca, &ra);
        int sb = apply_keys_result(b, &keys[1], (uint64_t)i + 2, sealed, sl,
                                   &cb, &rb);
        cr_assert_eq(sa, want[i], "command %d: %s", i, ra);
        cr_assert_eq(sb, sa, "command %d", i);
        cr_assert_str_eq(rb, ra, "command %d", i);
        cr_assert_not(ca);
        cr_assert_not(cb);
        free(ra);
        free(rb);
        free(sealed);
        free(cmds[i]);
    }
    struct dumpbuf da = take_dump(a), db = take_dump(b);
    cr_assert_eq(da.len, db.len);
    cr_assert_eq(memcmp(da.buf, db.buf, da.len), 0,
                 "sealed and plain commands left different states");
    free(da.buf);
    free(db.buf);
    kz_stor_close(a);
    kz_stor_close(b);
}

/* ------------------------------------------------ import batches (CSV) */

#include "audit.h"

static char *pack_batch(int64_t t, const struct vs *const *s, size_t n,
                        bool audited, size_t *len)
{
    Kizuna__Command c;
    Kizuna__CreateVictims cv = KIZUNA__CREATE_VICTIMS__INIT;
    Kizuna__Victim v[8], *vp[8];
    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    cr_assert_leq(n, 8);
    cmd_init(&c, t);
    for (size_t i = 0; i < n; i++) {
        victim_of(&v[i], s[i]);
        vp[i] = &v[i];
    }
    cv.victims = vp;
    cv.n_victims = n;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIMS;
    c.create_victims = &cv;
    if (audited) {
        ctx.org = "131016";
        ctx.role = "registrar";
        ctx.request_id = "req-import";
        c.audit = &ctx;
    }
    return pack(&c, len);
}

static uint64_t audit_seq(kz_stor *st)
{
    struct kz_node_audit_head h;
    cr_assert_eq(kz_node_audit_load_head(st, &h), KZ_OK);
    return h.seq;
}

Test(reg, import_batch_is_one_entry_with_indexes_counters_and_audit)
{
    kz_stor *st = open_store(0);
    static const struct vs a = {.id = "B1", .name = "山田 花子",
                                .kana = "やまだ はなこ", .dob = "1948-04-02",
                                .sex = "female", .shelter = "S1",
                                .needs = {"elderly"}};
    static const struct vs b = {.id = "B2", .name = "佐藤 太郎",
                                .kana = "さとう たろう", .dob = "1950-01-01",
                                .sex = "male", .shelter = "S1",
                                .needs = {"elderly", "infant"}};
    static const struct vs c = {.id = "B3", .name = "鈴木 一郎",
                                .sex = "male", .shelter = "S2"};
    const struct vs *rows[] = {&a, &b, &c};
    uint64_t seq0 = audit_seq(st);
    size_t len;
    char *buf = pack_batch(T0, rows, 3, true, &len);
    json_t *body;
    cr_assert_eq(apply_buf(st, 2, buf, len, &body), 200);
    cr_assert_eq(json_integer_value(json_object_get(body, "accepted")), 3);
    json_t *ids = json_object_get(body, "ids");
    cr_assert_eq(json_array_size(ids), 3);
    cr_assert_str_eq(json_string_value(json_array_get(ids, 0)), "B1");
    cr_assert_str_eq(json_string_value(json_array_get(ids, 2)), "B3");
    json_decref(body);

    Kizuna__Victim *v = load(st, "B2");
    cr_assert_eq(v->version, 2);
    cr_assert_eq(v->created_ms, T0);
    cr_assert_eq(v->n_shelter_history, 1);
    kizuna__victim__free_unpacked(v, NULL);
    char out[256];
    cr_assert_str_eq(search_ids(st, "はなこ", NULL, NULL, NULL, out,
                                sizeof out), "B1");
    cr_assert_str_eq(search_ids(st, "鈴木", NULL, NULL, NULL, out,
                                sizeof out), "B3");
    cr_assert_str_eq(search_ids(st, NULL, "1950-01-01", NULL, NULL, out,
                                sizeof out), "B2");
    /* Two people into S1 in one batch: the counters add up (they are
     * summed before the one read of each counter). */
    json_t *sum = kz_node_shelter_summary(st, MUNI, "S1");
    cr_assert_eq(json_integer_value(json_object_get(sum, "total")), 2);
    cr_assert_eq(json_integer_value(json_object_get(sum, "elderly")), 2);
    cr_assert_eq(json_integer_value(json_object_get(sum, "infants")), 1);
    json_decref(sum);
    /* One victim.create audit record per person. */
    cr_assert_eq(audit_seq(st), seq0 + 3);
    kz_stor_close(st);
}

Test(reg, import_batch_refused_whole_changes_nothing)
{
    kz_stor *st = open_store(0);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    static const struct vs x = {.id = "X1", .name = "新 人", .shelter = "S1"};
    static const struct vs dup = {.id = "X1", .name = "別 人"};
    const struct vs *twice[] = {&x, &dup};
    const struct vs *exists[] = {&x, &yamada};
    struct dumpbuf before = take_dump(st);
    size_t len;
    json_t *body;
    char *buf = pack_batch(T0, twice, 2, true, &len);
    cr_assert_eq(apply_buf(st, 3, buf, len, &body), 400);
    cr_assert_str_eq(error_code(body), "bad_command");
    json_decref(body);
    buf = pack_batch(T0, exists, 2, false, &len);
    cr_assert_eq(apply_buf(st, 4, buf, len, &body), 409);
    json_decref(body);
    buf = pack_batch(T0, exists, 0, false, &len);
    cr_assert_eq(apply_buf(st, 5, buf, len, &body), 400);
    json_decref(body);
    /* Refusals are audited (one record each), nothing else changes: the
     * state differs from before only by the audit records of index 3. */
    char out[64];
    cr_assert_str_eq(search_ids(st, "新", NULL, NULL, NULL, out, sizeof out),
                     "");
    Kizuna__Victim *v = NULL;
    cr_assert_eq(kz_node_load_victim(st, keys_of(st), MUNI, "X1", &v),
                 KZ_ENOTFOUND);
    json_t *sum = kz_node_shelter_summary(st, MUNI, "S1");
    cr_assert_eq(json_integer_value(json_object_get(sum, "total")), 1);
    json_decref(sum);
    free(before.buf);
    kz_stor_close(st);
}

/* ------------------------------------- merged registrations (CreateEach) */

/* A registration as a node proposes it: its own time, request id and who
 * asked. */
static char *pack_create_by(int64_t t, const struct vs *s, const char *rid,
                            size_t *len)
{
    Kizuna__Command c;
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    Kizuna__Victim v;
    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    cmd_init(&c, t);
    victim_of(&v, s);
    cv.victim = &v;
    c.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    c.create_victim = &cv;
    c.request_id = (char *)rid;
    ctx.org = "131016";
    ctx.role = "registrar";
    ctx.request_id = (char *)rid;
    c.audit = &ctx;
    return pack(&c, len);
}

/* Splits a merged entry's result (4-byte big-endian length, bytes, for
 * each) into statuses and bodies; returns how many. */
static size_t split_results(const char *res, size_t rl, int *status,
                            json_t **body, size_t max)
{
    size_t n = 0, off = 0;
    while (off < rl) {
        cr_assert_geq(rl - off, 4, "a frame header is cut");
        const unsigned char *p = (const unsigned char *)res + off;
        size_t fl = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
                    (size_t)p[2] << 8 | p[3];
        cr_assert_leq(fl, rl - off - 4, "a frame is cut");
        cr_assert_geq(fl, 5);
        cr_assert_lt(n, max);
        const char *f = res + off + 4;
        status[n] = (f[0] - '0') * 100 + (f[1] - '0') * 10 + (f[2] - '0');
        body[n] = json_loadb(f + 3, fl - 3, 0, NULL);
        cr_assert_not_null(body[n], "frame %zu is not JSON", n);
        n++;
        off += 4 + fl;
    }
    return n;
}

/* Registrations merged into one entry apply as if one by one: each its
 * own result (201, or 409 for an id that exists or that an earlier one of
 * the entry took, or 400), its own audit record with its request id, time
 * and outcome in order on one chain, and shelter counters summed across
 * the entry. A replica applying without results writes the same state. */
Test(reg, merged_registrations_apply_as_if_one_by_one)
{
    kz_stor *st, *st2;
    open_two_replicas(&st, &st2);
    cr_assert_eq(create(st, 2, &yamada, NULL), 201);
    cr_assert_eq(create(st2, 2, &yamada, NULL), 201);
    static const struct vs p1 = {.id = "E1", .name = "田中 一",
                                 .kana = "たなか はじめ", .sex = "female",
                                 .shelter = "S1", .needs = {"infant"}};
    static const struct vs p2 = {.id = "E2", .name = "高橋 二郎",
                                 .sex = "male", .shelter = "S1"};
    static const struct vs p1again = {.id = "E1", .name = "別 人",
                                      .shelter = "S1"};
    static const struct vs bad = {.id = "bad id/", .name = "悪 い"};
    static const struct vs p4 = {.id = "E4", .name = "伊藤 四郎",
                                 .shelter = "S2"};
    /* A malformed id named twice is malformed twice, not a conflict. */
    const struct vs *rows[] = {&p1, &p2, &yamada, &p1again, &bad, &p4, &bad};
    const int want[] = {201, 201, 409, 409, 400, 201, 400};
    enum { N_ROWS = 7 };
    char *cmds[N_ROWS];
    size_t lens[N_ROWS];
    char rid[N_ROWS][16];
    for (int i = 0; i < N_ROWS; i++) {
        snprintf(rid[i], sizeof rid[i], "req-each-%d", i);
        char *plain = pack_create_by(T0 + 100 * i, rows[i], rid[i], &lens[i]);
        if (i % 2 == 0) { /* some sealed, as nodes propose them */
            size_t sl;
            cmds[i] = kz_test_seal(keys_of(st), plain, lens[i], &sl);
            lens[i] = sl;
            free(plain);
        } else {
            cmds[i] = plain;
        }
    }
    char *merged;
    size_t mlen;
    cr_assert_eq(kz_node_merge_creates(keys_of(st), (const char *const *)cmds,
                                       lens, N_ROWS, &merged, &mlen),
                 KZ_OK);
    cr_assert_eq(memcmp(merged, "KZSC", 4), 0, "merged entry not sealed");
    uint64_t seq0 = audit_seq(st);

    char *res = NULL;
    size_t rl = 0;
    bool changed = false;
    cr_assert_eq(kz_node_apply(st, keys_of(st), 3, merged, mlen, true, &res,
                               &rl, &changed),
                 KZ_OK);
    cr_assert_not_null(res);
    int status[8];
    json_t *body[8];
    cr_assert_eq(split_results(res, rl, status, body, 8), N_ROWS);
    free(res);
    for (int i = 0; i < N_ROWS; i++) {
        cr_assert_eq(status[i], want[i], "row %d: %d", i, status[i]);
        if (want[i] == 201)
            cr_assert_str_eq(json_string_value(json_object_get(body[i], "id")),
                             rows[i]->id);
        else
            cr_assert_str_eq(error_code(body[i]),
                             want[i] == 409 ? "conflict" : "bad_command");
        json_decref(body[i]);
    }
    /* The second replica, without results: the same state. */
    res = NULL;
    cr_assert_eq(kz_node_apply(st2, keys_of(st2), 3, merged, mlen, false,
                               &res, &rl, &changed),
                 KZ_OK);
    cr_assert_null(res);
    free(merged);
    struct dumpbuf a = take_dump(st), b = take_dump(st2);
    cr_assert_eq(a.len, b.len);
    cr_assert_eq(memcmp(a.buf, b.buf, a.len), 0, "replicas differ");
    free(a.buf);
    free(b.buf);

    /* Each as if alone: its own time; the first E1 kept, not the second. */
    Kizuna__Victim *v = load(st, "E1");
    cr_assert_eq(v->version, 3);
    cr_assert_eq(v->created_ms, T0);
    cr_assert_str_eq(v->name, "田中 一");
    kizuna__victim__free_unpacked(v, NULL);
    v = load(st, "E4");
    cr_assert_eq(v->created_ms, T0 + 500);
    kizuna__victim__free_unpacked(v, NULL);
    char out[256];
    cr_assert_str_eq(search_ids(st, "たなか", NULL, NULL, NULL, out,
                                sizeof out), "E1");
    /* yamada (S1) and two of the entry in S1, one in S2. */
    json_t *sum = kz_node_shelter_summary(st, MUNI, "S1");
    cr_assert_eq(json_integer_value(json_object_get(sum, "total")), 3);
    cr_assert_eq(json_integer_value(json_object_get(sum, "infants")), 1);
    json_decref(sum);
    sum = kz_node_shelter_summary(st, MUNI, "S2");
    cr_assert_eq(json_integer_value(json_object_get(sum, "total")), 1);
    json_decref(sum);

    /* One record each, in order, on a chain that verifies. */
    cr_assert_eq(audit_seq(st), seq0 + N_ROWS);
    uint64_t next;
    json_t *log = kz_node_audit_list(st, MUNI, seq0, INT64_MIN, INT64_MAX,
                                     100, NULL, &next);
    cr_assert_eq(json_array_size(log), N_ROWS);
    for (int i = 0; i < N_ROWS; i++) {
        json_t *r = json_array_get(log, (size_t)i);
        cr_assert_str_eq(json_string_value(json_object_get(r, "request_id")),
                         rid[i]);
        cr_assert_str_eq(json_string_value(json_object_get(r, "action")),
                         "victim.create");
        cr_assert_eq(json_integer_value(json_object_get(r, "outcome")),
                     want[i]);
        cr_assert_eq(json_integer_value(json_object_get(r, "raft_index")), 3);
        char when[40];
        kz_node_format_time(T0 + 100 * i, when, sizeof when);
        cr_assert_str_eq(json_string_value(json_object_get(r, "at")), when);
    }
    json_decref(log);
    struct kz_node_audit_check chk;
    cr_assert_eq(kz_node_audit_verify(st, MUNI, &chk), KZ_OK);
    cr_assert(chk.ok, "chain broken at %llu: %s",
              (unsigned long long)chk.first_bad, chk.why);
    for (int i = 0; i < N_ROWS; i++)
        free(cmds[i]);
    kz_stor_close(st);
    kz_stor_close(st2);
}

/* Only registrations of one municipality merge; anything else goes one by
 * one (KZ_EINVAL), and a malformed merged entry is refused whole. */
Test(reg, merge_of_registrations_refuses_other_commands)
{
    kz_stor *st = open_store(0);
    static const struct vs p = {.id = "F1", .name = "森 一"};
    size_t l[2];
    char *c[2];
    char *out;
    size_t ol;
    c[0] = pack_create_by(T0, &p, "r0", &l[0]);
    static const struct vs fields = {.status = "injured"};
    static const char *const set[] = {"status", NULL};
    c[1] = pack_patch(T0, "F1", -1, &fields, set, &l[1]);
    cr_assert_eq(kz_node_merge_creates(keys_of(st), (const char *const *)c, l,
                                       2, &out, &ol),
                 KZ_EINVAL);
    cr_assert_null(out);
    free(c[1]);
    Kizuna__Command other;
    Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
    Kizuna__Victim v;
    cmd_init(&other, T0);
    other.municipality = "999999";
    victim_of(&v, &p);
    cv.victim = &v;
    other.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
    other.create_victim = &cv;
    c[1] = pack(&other, &l[1]);
    cr_assert_eq(kz_node_merge_creates(keys_of(st), (const char *const *)c, l,
                                       2, &out, &ol),
                 KZ_EINVAL);
    free(c[0]);
    free(c[1]);
    const char *many[KZ_NODE_EACH_MAX + 1];
    size_t many_l[KZ_NODE_EACH_MAX + 1];
    cr_assert_eq(kz_node_merge_creates(keys_of(st), many, many_l,
                                       KZ_NODE_EACH_MAX + 1, &out, &ol),
                 KZ_EINVAL);

    /* An empty CreateEach: applied, with an empty result (no registration
     * to answer) and no audit record. */
    Kizuna__Command e;
    Kizuna__CreateEach ce = KIZUNA__CREATE_EACH__INIT;
    cmd_init(&e, T0);
    e.op_case = KIZUNA__COMMAND__OP_CREATE_EACH;
    e.create_each = &ce;
    size_t el;
    char *eb = pack(&e, &el);
    uint64_t seq0 = audit_seq(st);
    char *res = NULL;
    size_t rl = 0;
    bool changed = false;
    cr_assert_eq(kz_node_apply(st, keys_of(st), 2, eb, el, true, &res, &rl,
                               &changed),
                 KZ_OK);
    free(eb);
    cr_assert_null(res);
    cr_assert_eq(rl, 0);
    cr_assert_eq(kz_stor_applied_index(st), 2);
    cr_assert_eq(audit_seq(st), seq0);

    /* Refused before any registration is looked at (a municipality that
     * is not one): each still gets its own framed answer, the refusal. */
    Kizuna__EachCreate ec[2], *ecp[2] = {&ec[0], &ec[1]};
    Kizuna__Victim ev;
    victim_of(&ev, &p);
    for (int i = 0; i < 2; i++) {
        kizuna__each_create__init(&ec[i]);
        ec[i].victim = &ev;
    }
    ce.n_creates = 2;
    ce.creates = ecp;
    e.municipality = "not/one";
    eb = pack(&e, &el);
    cr_assert_eq(kz_node_apply(st, keys_of(st), 3, eb, el, true, &res, &rl,
                               &changed),
                 KZ_OK);
    free(eb);
    int status[2];
    json_t *body2[2];
    cr_assert_eq(split_results(res, rl, status, body2, 2), 2);
    free(res);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(status[i], 400);
        cr_assert_str_eq(error_code(body2[i]), "bad_command");
        json_decref(body2[i]);
    }
    cr_assert_eq(kz_stor_applied_index(st), 3);
    kz_stor_close(st);
}

/* ------------------------------------------------------------ address book */

static char *pack_addresses(int64_t t, const uint64_t *ids,
                            const char *const *regions,
                            const char *const *raft, size_t n, size_t *len)
{
    Kizuna__NodeAddress a[4], *ap[4];
    cr_assert_leq(n, 4);
    for (size_t i = 0; i < n; i++) {
        kizuna__node_address__init(&a[i]);
        a[i].has_id = 1;
        a[i].id = ids[i];
        a[i].region = (char *)regions[i];
        a[i].raft_address = (char *)raft[i];
        a[i].api_address = "10.0.0.5:7400";
        ap[i] = &a[i];
    }
    Kizuna__SetNodeAddresses s = KIZUNA__SET_NODE_ADDRESSES__INIT;
    s.n_nodes = n;
    s.nodes = ap;
    Kizuna__Command c;
    cmd_init(&c, t);
    c.op_case = KIZUNA__COMMAND__OP_SET_NODE_ADDRESSES;
    c.set_node_addresses = &s;
    return pack(&c, len);
}

static int apply_addresses(kz_stor *st, uint64_t idx, bool *changed,
                           const uint64_t *ids, const char *const *regions,
                           const char *const *raft, size_t n)
{
    size_t len;
    char *buf = pack_addresses(T0, ids, regions, raft, n, &len);
    char *res = NULL;
    size_t rl = 0;
    cr_assert_eq(kz_node_apply(st, keys_of(st), idx, buf, len, true, &res,
                               &rl, changed),
                 KZ_OK);
    free(buf);
    cr_assert_not_null(res);
    int status = atoi((char[4]){res[0], res[1], res[2], 0});
    free(res);
    return status;
}

static unsigned book_entries(kz_stor *st)
{
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_META, "node/", 5,
                                        NULL, 0);
    const char *k, *v;
    size_t kl, vl;
    unsigned n = 0;
    while (kz_stor_iter_next(it, &k, &kl, &v, &vl))
        n++;
    kz_stor_iter_free(it);
    return n;
}

/* SetNodeAddresses: stored under meta "node/<id>" and flagged for the node
 * to re-read; an invalid entry stores nothing (400); a raft address another
 * node has is refused (409); the same command again is accepted. */
Test(reg, address_book)
{
    kz_stor *st = open_store(0);
    bool changed = false;
    uint64_t ids[] = {5, 6};
    const char *regions[] = {"sapporo", "tokyo"};
    const char *raft[] = {"10.0.0.5:7401", "10.0.0.6:7401"};
    cr_assert_eq(apply_addresses(st, 2, &changed, ids, regions, raft, 2), 200);
    cr_assert(changed, "the node must re-read its address book");
    cr_assert_eq(book_entries(st), 2);
    /* Bad region, bad address, twice the same id: nothing stored. */
    const char *bad_region[] = {"札幌"};
    uint64_t seven[] = {7};
    const char *raft7[] = {"10.0.0.7:7401"};
    cr_assert_eq(apply_addresses(st, 3, &changed, seven, bad_region, raft7, 1),
                 400);
    const char *bad_raft[] = {"10.0.0.7"};
    cr_assert_eq(apply_addresses(st, 4, &changed, seven, regions, bad_raft, 1),
                 400);
    uint64_t twice[] = {7, 7};
    const char *raft77[] = {"10.0.0.7:7401", "10.0.0.8:7401"};
    cr_assert_eq(apply_addresses(st, 5, &changed, twice, regions, raft77, 2),
                 400);
    cr_assert_eq(book_entries(st), 2);
    /* Node 7 at node 5's raft address. */
    const char *raft5[] = {"10.0.0.5:7401"};
    cr_assert_eq(apply_addresses(st, 6, &changed, seven, regions, raft5, 1),
                 409);
    cr_assert_eq(book_entries(st), 2);
    /* The same entries again (a retried add): accepted, still two. */
    cr_assert_eq(apply_addresses(st, 7, &changed, ids, regions, raft, 2), 200);
    cr_assert_eq(book_entries(st), 2);
    cr_assert_eq(kz_stor_applied_index(st), 7);
    kz_stor_close(st);
}
