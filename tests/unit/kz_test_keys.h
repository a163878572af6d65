/*
 * kz_test_keys.h — shared helpers of the unit tests for the register's
 * encryption at rest (node/keys.h): master keyring files, and giving a
 * store the cluster's keys the way a node does (apply a KeyInit command,
 * then unwrap the keys from the state).
 *
 * Include after <criterion/criterion.h>: failures are Criterion assertions.
 */
#ifndef KZ_TEST_KEYS_H
#define KZ_TEST_KEYS_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "keys.h"
#include "kizuna.pb-c.h"
#include "register.h"

/* A fixed 64-hex-digit master key, different for every id. */
static inline void kz_test_hex_key(uint32_t id, char out[65])
{
    uint32_t x = id * 2654435761u + 0x9e3779b9u;
    for (int i = 0; i < 32; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        snprintf(out + 2 * i, 3, "%02x", (unsigned)(x & 0xff));
    }
}

/* Writes a keyring file of lines "<id> <hex>" for ids[0..n) with this mode
 * (set with fchmod, so the umask does not matter); replaces any file there. */
static inline void kz_test_write_ring(const char *path, const uint32_t *ids,
                                      size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "cannot create keyring %s", path);
    cr_assert_eq(fchmod(fd, mode), 0);
    FILE *f = fdopen(fd, "w");
    cr_assert_not_null(f);
    fprintf(f, "# test master keys\n");
    for (size_t i = 0; i < n; i++) {
        char hex[65];
        kz_test_hex_key(ids[i], hex);
        fprintf(f, "%u %s\n", (unsigned)ids[i], hex);
    }
    cr_assert_eq(fclose(f), 0);
}

/* Appends key id to an existing keyring file (its mode is kept). */
static inline void kz_test_append_ring(const char *path, uint32_t id)
{
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f, "cannot append to keyring %s", path);
    char hex[65];
    kz_test_hex_key(id, hex);
    fprintf(f, "%u %s\n", (unsigned)id, hex);
    cr_assert_eq(fclose(f), 0);
}

/* Writes "<dir>/<name>" holding key ids[0..n) with mode 0600 and opens it
 * into k. The path is left in path (PATH_MAX-sized buffer of the caller). */
static inline void kz_test_keys_open(struct kz_node_keys *k, const char *dir,
                                     const char *name, const uint32_t *ids,
                                     size_t n, char *path, size_t pathcap)
{
    int pl = snprintf(path, pathcap, "%s/%s", dir, name);
    cr_assert(pl > 0 && (size_t)pl < pathcap);
    kz_test_write_ring(path, ids, n, 0600);
    int rv = kz_node_keys_open(k, path);
    cr_assert_eq(rv, KZ_OK, "kz_node_keys_open %s: %d %s", path, rv,
                 k->errmsg);
    cr_assert_not(k->ready, "a freshly opened keyring has no state keys");
}

/* Applies a key command (KeyInit, KeyAdd, KeyRewrap) at idx without a
 * result; asserts it was applied (keys_changed) and unwraps the keys again,
 * as a node does whenever keys_changed comes back true. */
static inline void kz_test_apply_key_cmd(kz_stor *st, struct kz_node_keys *k,
                                         uint64_t idx, const char *cmd,
                                         size_t len)
{
    bool changed = false;
    char *res = (char *)0x1; /* want_result false: never written */
    size_t rl = 0;
    int rv = kz_node_apply(st, k, idx, cmd, len, false, &res, &rl, &changed);
    cr_assert_eq(rv, KZ_OK, "key command at %llu: %d",
                 (unsigned long long)idx, rv);
    cr_assert_eq(res, (char *)0x1, "want_result false wrote a result");
    cr_assert_eq(kz_stor_applied_index(st), idx);
    cr_assert(changed, "key command at %llu did not change the keys",
              (unsigned long long)idx);
    rv = kz_node_keys_refresh(k, st);
    cr_assert_eq(rv, KZ_OK, "refresh after the key command: %d %s", rv,
                 k->errmsg);
    cr_assert(k->ready);
}

/* Makes a KeyInit command for muni (malloc'd, caller frees). */
static inline char *kz_test_make_init(struct kz_node_keys *k, const char *muni,
                                      size_t *len)
{
    char *cmd = NULL;
    int rv = kz_node_keys_make_init(k, muni, &cmd, len);
    cr_assert_eq(rv, KZ_OK, "kz_node_keys_make_init: %d %s", rv, k->errmsg);
    cr_assert_not_null(cmd);
    return cmd;
}

/* Gives an empty store the cluster's keys: a new KeyInit applied at idx. */
static inline void kz_test_keys_init(kz_stor *st, struct kz_node_keys *k,
                                     const char *muni, uint64_t idx)
{
    size_t len;
    char *cmd = kz_test_make_init(k, muni, &len);
    kz_test_apply_key_cmd(st, k, idx, cmd, len);
    free(cmd);
    cr_assert_eq(k->current, 1);
    cr_assert_eq(k->n_data, 1);
}

/* Seals a packed command as a proposer does; *out_len set, result malloc'd. */
static inline char *kz_test_seal(struct kz_node_keys *k, const char *cmd,
                                 size_t len, size_t *out_len)
{
    char *out = NULL;
    int rv = kz_node_keys_seal_command(k, cmd, len, &out, out_len);
    cr_assert_eq(rv, KZ_OK, "kz_node_keys_seal_command: %d", rv);
    cr_assert_not_null(out);
    cr_assert_eq(*out_len, 4 + len + KZ_STOR_SEAL_OVERHEAD);
    cr_assert_eq(memcmp(out, "KZSC", 4), 0);
    return out;
}

/* Applies cmd for municipality muni at *index (then advanced), at time
 * time_ms, as a node does; fails the test unless apply succeeds with a
 * result. Returns the result's status and, when body is not NULL, its JSON
 * body (caller decrefs). */
static inline int kz_test_apply_at(kz_stor *st, struct kz_node_keys *k,
                                   const char *muni, uint64_t *index,
                                   Kizuna__Command *cmd, int64_t time_ms,
                                   json_t **body)
{
    cmd->municipality = (char *)muni;
    cmd->has_time_ms = 1;
    cmd->time_ms = time_ms;
    size_t len = kizuna__command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    cr_assert_not_null(buf);
    kizuna__command__pack(cmd, buf);
    char *res = NULL;
    size_t rl = 0;
    bool changed;
    int rv = kz_node_apply(st, k, (*index)++, (char *)buf, len, true, &res,
                           &rl, &changed);
    free(buf);
    cr_assert_eq(rv, KZ_OK);
    cr_assert_not_null(res);
    cr_assert_geq(rl, 3);
    int status = (res[0] - '0') * 100 + (res[1] - '0') * 10 + (res[2] - '0');
    if (body != NULL) {
        *body = json_loads(res + 3, 0, NULL);
        cr_assert_not_null(*body);
    }
    free(res);
    return status;
}

/* kz_test_apply_at at time 1700000000000 + index. */
static inline int kz_test_apply(kz_stor *st, struct kz_node_keys *k,
                                const char *muni, uint64_t *index,
                                Kizuna__Command *cmd, json_t **body)
{
    return kz_test_apply_at(st, k, muni, index, cmd,
                            1700000000000LL + (int64_t)*index, body);
}

/* A fresh store in a new temp directory (dir: a mkdtemp template, e.g.
 * "/tmp/kz_x_XXXXXX", rewritten in place) holding the cluster's first keys
 * (KeyInit at index 1) for municipality muni, as a node has them. */
static inline void kz_test_store_open(char *dir, const char *muni,
                                      kz_stor **st, struct kz_node_keys *k)
{
    cr_assert_not_null(mkdtemp(dir));
    char err[256], path[4096], db[4096];
    snprintf(db, sizeof db, "%s/db", dir);
    cr_assert_eq(kz_stor_open(db, st, err, sizeof err), KZ_OK, "%s", err);
    const uint32_t ids[] = {1};
    kz_test_keys_open(k, dir, "master.key", ids, 1, path, sizeof path);
    kz_test_keys_init(*st, k, muni, 1);
}

static inline int kz_test__rm_entry(const char *path, const struct stat *sb,
                                    int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Closes the store, wipes the keys, removes the directory. */
static inline void kz_test_store_close(const char *dir, kz_stor *st,
                                       struct kz_node_keys *k)
{
    kz_stor_close(st);
    kz_node_keys_wipe(k);
    nftw(dir, kz_test__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
