/*
 * test_storage.c — the RocksDB state store (storage/state_store).
 *
 * Every test opens a real RocksDB in a fresh mkdtemp directory and removes it
 * in the fini. Covered: point reads, batches committed with a strictly
 * increasing applied index (atomically with their data), the applied index
 * and data surviving close/reopen, the format-version guard, the directory
 * lock, prefix iterators with a start key, and snapshot dump/load: a load
 * reproduces the source exactly, replaces whatever the target held, and a
 * damaged dump (every truncation length, bad magic, bad counts, bad column
 * family, bad lengths) is refused with KZ_ECORRUPT leaving the target as it
 * was.
 */
#include "state_store.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir_a[64], dir_b[64];

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path)
{
    if (path[0] != '\0')
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    snprintf(dir_a, sizeof dir_a, "/tmp/kz_stor_a_XXXXXX");
    snprintf(dir_b, sizeof dir_b, "/tmp/kz_stor_b_XXXXXX");
    cr_assert_not_null(mkdtemp(dir_a));
    cr_assert_not_null(mkdtemp(dir_b));
}

static void teardown(void)
{
    rm_tree(dir_a);
    rm_tree(dir_b);
}

TestSuite(storage, .init = setup, .fini = teardown);

static kz_stor *open_at(const char *dir)
{
    kz_stor *st = NULL;
    char err[256] = "";
    int rv = kz_stor_open(dir, &st, err, sizeof err);
    cr_assert_eq(rv, KZ_OK, "open %s: %d %s", dir, rv, err);
    cr_assert_not_null(st);
    return st;
}

static void put_str(kz_stor_batch *b, int cf, const char *k, const char *v)
{
    kz_stor_batch_put(b, cf, k, strlen(k), v, strlen(v));
}

static void commit_one(kz_stor *st, int cf, const char *k, const char *v,
                       uint64_t index)
{
    kz_stor_batch *b = kz_stor_batch_new(st);
    cr_assert_not_null(b);
    put_str(b, cf, k, v);
    int rv = kz_stor_batch_commit(st, b, index);
    cr_assert_eq(rv, KZ_OK, "commit %s at %llu: %s", k,
                 (unsigned long long)index, kz_stor_errmsg(st));
    kz_stor_batch_free(b);
}

static void assert_value(kz_stor *st, int cf, const char *k, const char *want)
{
    char *v = NULL;
    size_t vl = 0;
    int rv = kz_stor_get(st, cf, k, strlen(k), &v, &vl);
    cr_assert_eq(rv, KZ_OK, "get %s: %d", k, rv);
    cr_assert_eq(vl, strlen(want), "get %s: length %zu, want %zu", k, vl,
                 strlen(want));
    cr_assert_eq(memcmp(v, want, vl), 0, "get %s: wrong bytes", k);
    free(v);
}

static void assert_absent(kz_stor *st, int cf, const char *k)
{
    char *v = NULL;
    size_t vl = 0;
    int rv = kz_stor_get(st, cf, k, strlen(k), &v, &vl);
    cr_assert_eq(rv, KZ_ENOTFOUND, "get %s: %d, want KZ_ENOTFOUND", k, rv);
}

/* A store with a few keys in every data column family, applied index 7. */
static void fill(kz_stor *st)
{
    kz_stor_batch *b = kz_stor_batch_new(st);
    put_str(b, KZ_STOR_CF_RECORDS, "131016/v/a", "alpha");
    put_str(b, KZ_STOR_CF_RECORDS, "131016/v/b", "beta");
    put_str(b, KZ_STOR_CF_INDEX, "131016/n/x", "");
    cr_assert_eq(kz_stor_batch_commit(st, b, 3), KZ_OK);
    kz_stor_batch_free(b);
    b = kz_stor_batch_new(st);
    /* A value with NUL bytes inside and a key with a NUL separator. */
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, "131016/s/S1\0v1", 14, "\0\0\0\x05",
                      4);
    put_str(b, KZ_STOR_CF_RECORDS, "131016/v/c", "gamma");
    kz_stor_batch_delete(b, KZ_STOR_CF_RECORDS, "131016/v/b", 10);
    cr_assert_eq(kz_stor_batch_commit(st, b, 7), KZ_OK);
    kz_stor_batch_free(b);
}

static void dump(kz_stor *st, size_t header, char **buf, size_t *len)
{
    int rv = kz_stor_dump(st, malloc, header, buf, len);
    cr_assert_eq(rv, KZ_OK, "dump: %d %s", rv, kz_stor_errmsg(st));
    cr_assert_not_null(*buf);
    cr_assert_geq(*len, header + 32);
}

/* --------------------------------------------------------- point reads */

Test(storage, new_store_is_empty_at_index_zero)
{
    kz_stor *st = open_at(dir_a);
    cr_assert_eq(kz_stor_applied_index(st), 0);
    assert_absent(st, KZ_STOR_CF_RECORDS, "131016/v/a");
    assert_absent(st, KZ_STOR_CF_INDEX, "131016/v/a");
    kz_stor_close(st);
}

Test(storage, committed_values_read_back_exactly)
{
    kz_stor *st = open_at(dir_a);
    fill(st);
    cr_assert_eq(kz_stor_applied_index(st), 7);
    assert_value(st, KZ_STOR_CF_RECORDS, "131016/v/a", "alpha");
    assert_value(st, KZ_STOR_CF_RECORDS, "131016/v/c", "gamma");
    assert_absent(st, KZ_STOR_CF_RECORDS, "131016/v/b"); /* deleted */

    char *v = NULL;
    size_t vl = 0;
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_INDEX, "131016/s/S1\0v1", 14, &v,
                             &vl),
                 KZ_OK);
    cr_assert_eq(vl, 4);
    cr_assert_eq(memcmp(v, "\0\0\0\x05", 4), 0);
    cr_assert_eq(v[4], '\0', "value is NUL-terminated past its length");
    free(v);
    /* The key without its NUL-separated tail is a different key. */
    assert_absent(st, KZ_STOR_CF_INDEX, "131016/s/S1");
    kz_stor_close(st);
}

Test(storage, column_families_are_separate)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    put_str(b, KZ_STOR_CF_RECORDS, "k", "in-records");
    put_str(b, KZ_STOR_CF_INDEX, "k", "in-index");
    cr_assert_eq(kz_stor_batch_commit(st, b, 1), KZ_OK);
    kz_stor_batch_free(b);
    assert_value(st, KZ_STOR_CF_RECORDS, "k", "in-records");
    assert_value(st, KZ_STOR_CF_INDEX, "k", "in-index");
    assert_absent(st, KZ_STOR_CF_META, "k");

    b = kz_stor_batch_new(st);
    kz_stor_batch_delete(b, KZ_STOR_CF_INDEX, "k", 1);
    cr_assert_eq(kz_stor_batch_commit(st, b, 2), KZ_OK);
    kz_stor_batch_free(b);
    assert_absent(st, KZ_STOR_CF_INDEX, "k");
    assert_value(st, KZ_STOR_CF_RECORDS, "k", "in-records");
    kz_stor_close(st);
}

Test(storage, batch_counts_puts_and_deletes)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    cr_assert_eq(kz_stor_batch_count(b), 0);
    put_str(b, KZ_STOR_CF_RECORDS, "a", "1");
    put_str(b, KZ_STOR_CF_INDEX, "b", "2");
    kz_stor_batch_delete(b, KZ_STOR_CF_RECORDS, "c", 1);
    cr_assert_eq(kz_stor_batch_count(b), 3);
    kz_stor_batch_free(b);
    kz_stor_close(st);
}

Test(storage, writes_per_family_count_committed_batches_only)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    put_str(b, KZ_STOR_CF_RECORDS, "a", "1");
    put_str(b, KZ_STOR_CF_TERMS, "t", "");
    kz_stor_batch_delete(b, KZ_STOR_CF_RECORDS, "c", 1);
    /* Not committed: an index at or below the applied one is refused. */
    cr_assert_eq(kz_stor_batch_commit(st, b, 0), KZ_EINVAL);
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF_RECORDS), 0);
    cr_assert_eq(kz_stor_batch_commit(st, b, 1), KZ_OK);
    kz_stor_batch_free(b);
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF_RECORDS), 2);
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF_TERMS), 1);
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF_INDEX), 0);
    /* The applied index is not a write of meta. */
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF_META), 0);
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF__COUNT), 0);
    cr_assert_str_eq(kz_stor_cf_name(KZ_STOR_CF_TERMS), "terms");
    cr_assert_str_eq(kz_stor_cf_name(KZ_STOR_CF_META), "meta");
    cr_assert_str_eq(kz_stor_cf_name(KZ_STOR_CF__COUNT), "?");
    b = kz_stor_batch_new(st);
    put_str(b, KZ_STOR_CF_RECORDS, "d", "4");
    cr_assert_eq(kz_stor_batch_commit(st, b, 2), KZ_OK);
    kz_stor_batch_free(b);
    cr_assert_eq(kz_stor_writes(st, KZ_STOR_CF_RECORDS), 3);
    kz_stor_close(st);
}

Test(storage, later_write_in_one_batch_wins)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    put_str(b, KZ_STOR_CF_INDEX, "key", "first");
    kz_stor_batch_delete(b, KZ_STOR_CF_INDEX, "key", 3);
    put_str(b, KZ_STOR_CF_INDEX, "key", "second");
    put_str(b, KZ_STOR_CF_INDEX, "gone", "x");
    kz_stor_batch_delete(b, KZ_STOR_CF_INDEX, "gone", 4);
    cr_assert_eq(kz_stor_batch_commit(st, b, 1), KZ_OK);
    kz_stor_batch_free(b);
    assert_value(st, KZ_STOR_CF_INDEX, "key", "second");
    assert_absent(st, KZ_STOR_CF_INDEX, "gone");
    kz_stor_close(st);
}

/* ------------------------------------------------------ applied index */

Test(storage, commit_refuses_index_not_above_applied)
{
    kz_stor *st = open_at(dir_a);
    commit_one(st, KZ_STOR_CF_RECORDS, "a", "1", 5);

    for (uint64_t idx = 0; idx <= 5; idx++) {
        kz_stor_batch *b = kz_stor_batch_new(st);
        put_str(b, KZ_STOR_CF_RECORDS, "b", "stale");
        put_str(b, KZ_STOR_CF_RECORDS, "a", "overwritten");
        int rv = kz_stor_batch_commit(st, b, idx);
        kz_stor_batch_free(b);
        cr_assert_eq(rv, KZ_EINVAL, "commit at %llu after 5: %d",
                     (unsigned long long)idx, rv);
        cr_assert_neq(kz_stor_errmsg(st)[0], '\0', "errmsg is set");
        cr_assert_eq(kz_stor_applied_index(st), 5);
        /* Nothing of the refused batch reached the store. */
        assert_absent(st, KZ_STOR_CF_RECORDS, "b");
        assert_value(st, KZ_STOR_CF_RECORDS, "a", "1");
    }
    /* Gaps are fine: only "greater" is required. */
    commit_one(st, KZ_STOR_CF_RECORDS, "b", "2", 100);
    cr_assert_eq(kz_stor_applied_index(st), 100);
    kz_stor_close(st);
}

Test(storage, empty_batch_moves_applied_index)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    cr_assert_eq(kz_stor_batch_commit(st, b, 42), KZ_OK);
    kz_stor_batch_free(b);
    cr_assert_eq(kz_stor_applied_index(st), 42);
    kz_stor_close(st);
    st = open_at(dir_a);
    cr_assert_eq(kz_stor_applied_index(st), 42);
    kz_stor_close(st);
}

Test(storage, applied_index_and_data_survive_reopen)
{
    kz_stor *st = open_at(dir_a);
    fill(st);
    /* A large index: all 8 bytes of the stored big-endian value matter. */
    commit_one(st, KZ_STOR_CF_RECORDS, "131016/v/d", "delta",
               0x0102030405060708ull);
    kz_stor_close(st);

    st = open_at(dir_a);
    cr_assert_eq(kz_stor_applied_index(st), 0x0102030405060708ull);
    assert_value(st, KZ_STOR_CF_RECORDS, "131016/v/a", "alpha");
    assert_value(st, KZ_STOR_CF_RECORDS, "131016/v/d", "delta");
    assert_absent(st, KZ_STOR_CF_RECORDS, "131016/v/b");
    /* The guard holds after reopen too. */
    kz_stor_batch *b = kz_stor_batch_new(st);
    cr_assert_eq(kz_stor_batch_commit(st, b, 0x0102030405060708ull),
                 KZ_EINVAL);
    kz_stor_batch_free(b);
    kz_stor_close(st);
}

/* Replicas get terms memtables of their own sizes, each in its band of
 * [32, 64] MB, so that they do not flush together; alone, 64 MB. Opened
 * many times each: the place in the band is random. */
Test(storage, replicas_get_terms_buffers_in_bands_of_their_own)
{
    const size_t mb = 1u << 20;
    kz_stor *st = open_at(dir_a);
    cr_assert_eq(kz_stor_terms_buffer(st), 64 * mb);
    kz_stor_close(st);
    for (unsigned replica = 0; replica < 3; replica++) {
        /* Band of replica r: from 64 - 32 (r + 1) / 3 to 64 - 32 r / 3 MB. */
        double hi = 64.0 - 32.0 * replica / 3.0;
        double lo = 64.0 - 32.0 * (replica + 1) / 3.0;
        for (int i = 0; i < 5; i++) {
            struct kz_stor_open_opts o = {replica, 3};
            char err[256] = "";
            st = NULL;
            cr_assert_eq(kz_stor_open_with(dir_a, &o, &st, err, sizeof err),
                         KZ_OK, "%s", err);
            double got = (double)kz_stor_terms_buffer(st) / (double)mb;
            cr_assert(got > lo - 0.01 && got <= hi + 0.01,
                      "replica %u: %.2f MB, not in (%.2f, %.2f]", replica,
                      got, lo, hi);
            /* The store works as any other. */
            commit_one(st, KZ_STOR_CF_TERMS, "131016/n/ab\001", "",
                       1 + replica * 5 + (unsigned)i);
            kz_stor_close(st);
        }
    }
}

/* The value of option name in section [CFOptions "cf"] of the newest
 * OPTIONS file RocksDB wrote in dir ("" when absent). */
static void cf_option(const char *dir, const char *cf, const char *name,
                      char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    char newest[256] = "";
    unsigned long best = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long n;
        if (sscanf(e->d_name, "OPTIONS-%lu", &n) == 1 && n >= best) {
            best = n;
            snprintf(newest, sizeof newest, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    cr_assert(newest[0], "no OPTIONS file in %s", dir);
    FILE *f = fopen(newest, "r");
    cr_assert_not_null(f);
    char section[128], line[512];
    snprintf(section, sizeof section, "[CFOptions \"%s\"]", cf);
    bool in = false;
    size_t nl = strlen(name);
    while (fgets(line, sizeof line, f) != NULL) {
        char *t = line + strspn(line, " \t");
        t[strcspn(t, "\r\n")] = '\0';
        if (t[0] == '[')
            in = strcmp(t, section) == 0;
        else if (in && strncmp(t, name, nl) == 0 && t[nl] == '=')
            snprintf(out, cap, "%s", t + nl + 1);
    }
    fclose(f);
}

/* A flush sorts (terms) or waits behind one; when the WAL cap switched a
 * family's memtables meanwhile, 2 memtables at most meant a second
 * immutable one and RocksDB stopped every write (the node's loop with it)
 * until the first was flushed. Every family keeps up to 4 (meta is
 * RocksDB's "default"). */
Test(storage, families_keep_four_memtables_so_a_slow_flush_stops_no_write)
{
    kz_stor *st = open_at(dir_a);
    static const char *const fams[] = {"default", "records", "index",
                                       "blobs", "terms"};
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        char v[64];
        cf_option(dir_a, fams[i], "max_write_buffer_number", v, sizeof v);
        cr_assert_str_eq(v, "4", "%s keeps %s memtables", fams[i], v);
    }
    commit_one(st, KZ_STOR_CF_TERMS, "131016/n/ab\001", "", 1);
    kz_stor_close(st);
}

Test(storage, open_refuses_other_format_version)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    kz_stor_batch_put(b, KZ_STOR_CF_META, "format", 6,
                      "\0\0\0\0\0\0\0\x03", 8);
    cr_assert_eq(kz_stor_batch_commit(st, b, 1), KZ_OK);
    kz_stor_batch_free(b);
    kz_stor_close(st);

    kz_stor *again = NULL;
    char err[256] = "";
    int rv = kz_stor_open(dir_a, &again, err, sizeof err);
    cr_assert_eq(rv, KZ_ECORRUPT, "open of a format-3 store: %d", rv);
    cr_assert_not_null(strstr(err, "format"), "message: %s", err);
}

/* A format-1 store kept the register's name and dob terms in index: they
 * move to terms when it is opened, with nothing else touched, and the
 * store is format 2 after. */
Test(storage, format_1_terms_move_to_terms)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    static const char n1[] = "131016/n/0123456789abcdef0123456789abcdef\0v1";
    static const char n2[] = "131016/R/0123456789abcdef0123456789abcdef\0v2";
    static const char d1[] = "131016/d/fedcba9876543210fedcba9876543210\0v1";
    static const char s1[] = "131016/s/S1\0v1";
    static const char nr[] = "131016/n/org"; /* no NUL: not a term */
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, n1, sizeof n1 - 1, "", 0);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, n2, sizeof n2 - 1, "", 0);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, d1, sizeof d1 - 1, "", 0);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, s1, sizeof s1 - 1, "", 0);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, nr, sizeof nr - 1, "x", 1);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, n1, sizeof n1 - 1, "r", 1);
    kz_stor_batch_put(b, KZ_STOR_CF_META, "format", 6,
                      "\0\0\0\0\0\0\0\x01", 8);
    cr_assert_eq(kz_stor_batch_commit(st, b, 7), KZ_OK);
    kz_stor_batch_free(b);
    kz_stor_close(st);

    st = open_at(dir_a);
    cr_assert_eq(kz_stor_applied_index(st), 7);
    const char *moved[] = {n1, n2, d1};
    for (int i = 0; i < 3; i++) {
        char *v;
        size_t vl;
        size_t kl = strlen(moved[i]) + 3; /* "\0v1" */
        cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_INDEX, moved[i], kl, &v, &vl),
                     KZ_ENOTFOUND, "term %d left in index", i);
        /* In terms, the id follows inverted: 255 - b. */
        char inv[64];
        memcpy(inv, moved[i], kl);
        for (size_t j = kl - 2; j < kl; j++)
            inv[j] = (char)(255 - (unsigned char)inv[j]);
        cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_TERMS, inv, kl, &v, &vl),
                     KZ_OK, "term %d not in terms", i);
        free(v);
    }
    /* A whole-term scan finds it. */
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_TERMS, n1,
                                        sizeof n1 - 3, NULL, 0);
    const char *k;
    size_t kl;
    cr_assert(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    cr_assert_eq(kl, sizeof n1 - 1);
    cr_assert_not(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    kz_stor_iter_free(it);
    char *v;
    size_t vl;
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_INDEX, s1, sizeof s1 - 1, &v, &vl),
                 KZ_OK, "a shelter key moved");
    free(v);
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_INDEX, nr, sizeof nr - 1, &v, &vl),
                 KZ_OK, "a key without a term moved");
    free(v);
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_RECORDS, n1, sizeof n1 - 1, &v,
                             &vl),
                 KZ_OK, "records were touched");
    free(v);
    cr_assert_eq(kz_stor_get(st, KZ_STOR_CF_META, "format", 6, &v, &vl), KZ_OK);
    cr_assert_eq(vl, 8);
    cr_assert_eq(v[7], 2, "format not raised");
    free(v);
    kz_stor_close(st);
}

/* Scans of terms: a whole term stays in its bucket; any other prefix
 * (here the empty one and a partial term) still sees every key, in order. */
Test(storage, terms_scans_by_term_and_in_order)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    static const char *const keys[] = {"a/n/t1\0x", "a/n/t1\0y", "a/n/t2\0x",
                                       "a/n/t10\0z"};
    for (int i = 0; i < 4; i++)
        kz_stor_batch_put(b, KZ_STOR_CF_TERMS, keys[i], strlen(keys[i]) + 2,
                          "", 0);
    cr_assert_eq(kz_stor_batch_commit(st, b, 1), KZ_OK);
    kz_stor_batch_free(b);
    const char *k;
    size_t kl, n = 0;
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_TERMS, "a/n/t1", 7,
                                        NULL, 0);
    while (kz_stor_iter_next(it, &k, &kl, NULL, NULL))
        n++;
    kz_stor_iter_free(it);
    cr_assert_eq(n, 2, "term t1 has 2 keys, not %zu", n);
    it = kz_stor_iter_new(st, KZ_STOR_CF_TERMS, "a/n/t1", 6, NULL, 0);
    n = 0;
    while (kz_stor_iter_next(it, &k, &kl, NULL, NULL))
        n++;
    kz_stor_iter_free(it);
    cr_assert_eq(n, 3, "prefix a/n/t1 (not a whole term): %zu keys", n);
    it = kz_stor_iter_new(st, KZ_STOR_CF_TERMS, "", 0, NULL, 0);
    char last[32] = "";
    n = 0;
    while (kz_stor_iter_next(it, &k, &kl, NULL, NULL)) {
        cr_assert_gt(memcmp(k, last, kl < sizeof last ? kl : sizeof last), 0);
        memcpy(last, k, kl < sizeof last ? kl : sizeof last);
        n++;
    }
    kz_stor_iter_free(it);
    cr_assert_eq(n, 4);
    kz_stor_close(st);
}

Test(storage, open_refuses_a_store_already_open)
{
    kz_stor *st = open_at(dir_a);
    kz_stor *second = NULL;
    char err[256] = "";
    int rv = kz_stor_open(dir_a, &second, err, sizeof err);
    cr_assert_eq(rv, KZ_EIO, "second open of a locked store: %d", rv);
    cr_assert_neq(err[0], '\0', "a message says why");
    /* The first handle still works. */
    commit_one(st, KZ_STOR_CF_RECORDS, "a", "1", 1);
    kz_stor_close(st);
}

Test(storage, open_fails_on_a_regular_file)
{
    char path[128];
    snprintf(path, sizeof path, "%s/file", dir_a);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "x", 1), 1);
    close(fd);
    kz_stor *st = NULL;
    char err[256] = "";
    int rv = kz_stor_open(path, &st, err, sizeof err);
    cr_assert_neq(rv, KZ_OK);
    cr_assert_neq(err[0], '\0');
}

/* ----------------------------------------------------------- iterators */

/* Collects "key=value" strings (key bytes after a NUL shown as '|'). */
static size_t collect(kz_stor_iter *it, char out[][64], size_t max)
{
    const char *k, *v;
    size_t kl, vl, n = 0;
    while (kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        cr_assert_lt(n, max, "iterator returned too many keys");
        char key[32];
        cr_assert_lt(kl, sizeof key);
        memcpy(key, k, kl);
        for (size_t i = 0; i < kl; i++)
            if (key[i] == '\0')
                key[i] = '|';
        key[kl] = '\0';
        snprintf(out[n++], 64, "%s=%.*s", key, (int)vl, v);
    }
    return n;
}

static void fill_iter(kz_stor *st)
{
    kz_stor_batch *b = kz_stor_batch_new(st);
    const char *keys[] = {"a/1", "a/2", "b/1", "b/2", "b/3", "b/30", "bb/1",
                          "c/1"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[16];
        snprintf(v, sizeof v, "v%zu", i);
        put_str(b, KZ_STOR_CF_INDEX, keys[i], v);
    }
    /* Same prefix in another column family: never returned. */
    put_str(b, KZ_STOR_CF_RECORDS, "b/15", "other-cf");
    cr_assert_eq(kz_stor_batch_commit(st, b, 1), KZ_OK);
    kz_stor_batch_free(b);
}

Test(storage, iterator_returns_prefix_keys_in_order)
{
    kz_stor *st = open_at(dir_a);
    fill_iter(st);
    char got[16][64];
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "b/", 2, NULL, 0);
    cr_assert_not_null(it);
    size_t n = collect(it, got, 16);
    kz_stor_iter_free(it);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(got[0], "b/1=v2");
    cr_assert_str_eq(got[1], "b/2=v3");
    cr_assert_str_eq(got[2], "b/3=v4");
    cr_assert_str_eq(got[3], "b/30=v5");

    it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "c/", 2, NULL, 0);
    n = collect(it, got, 16);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(got[0], "c/1=v7");
    kz_stor_iter_free(it);

    it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "zz", 2, NULL, 0);
    cr_assert_eq(collect(it, got, 16), 0);
    kz_stor_iter_free(it);
    kz_stor_close(st);
}

Test(storage, iterator_stays_exhausted)
{
    /* Once next has returned false, further calls return false too. "c/1"
     * is the last key of the column family, so the RocksDB iterator itself
     * runs off the end. */
    kz_stor *st = open_at(dir_a);
    fill_iter(st);
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "c/", 2, NULL, 0);
    const char *k;
    size_t kl;
    cr_assert(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    cr_assert_not(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    cr_assert_not(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    kz_stor_iter_free(it);

    /* Same for a prefix that ends before the last key. */
    it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "a/", 2, NULL, 0);
    cr_assert(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    cr_assert(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    cr_assert_not(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    cr_assert_not(kz_stor_iter_next(it, &k, &kl, NULL, NULL));
    kz_stor_iter_free(it);
    kz_stor_close(st);
}

Test(storage, iterator_key_only_leaves_value_alone)
{
    kz_stor *st = open_at(dir_a);
    fill_iter(st);
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "a/", 2, NULL, 0);
    const char *k;
    size_t kl;
    size_t count = 0;
    while (kz_stor_iter_next(it, &k, &kl, NULL, NULL)) {
        cr_assert_eq(kl, 3);
        cr_assert_eq(memcmp(k, "a/", 2), 0);
        count++;
    }
    kz_stor_iter_free(it);
    cr_assert_eq(count, 2);
    kz_stor_close(st);
}

Test(storage, iterator_starts_at_first_key_not_below_start)
{
    kz_stor *st = open_at(dir_a);
    fill_iter(st);
    char got[16][64];

    /* start equal to a key: that key is the first. */
    kz_stor_iter *it =
        kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "b/", 2, "b/2", 3);
    size_t n = collect(it, got, 16);
    kz_stor_iter_free(it);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(got[0], "b/2=v3");
    cr_assert_str_eq(got[2], "b/30=v5");

    /* start between keys. */
    it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "b/", 2, "b/25", 4);
    n = collect(it, got, 16);
    kz_stor_iter_free(it);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(got[0], "b/3=v4");
    cr_assert_str_eq(got[1], "b/30=v5");

    /* start past every key of the prefix. */
    it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "b/", 2, "b/4", 3);
    cr_assert_eq(collect(it, got, 16), 0);
    kz_stor_iter_free(it);
    kz_stor_close(st);
}

Test(storage, iterator_start_below_prefix_begins_at_prefix)
{
    /* The header: keys that start with prefix, from the first key >= start.
     * A start below the prefix therefore yields every key of the prefix,
     * even when keys outside the prefix lie between start and prefix. */
    kz_stor *st = open_at(dir_a);
    fill_iter(st);
    char got[16][64];
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "b/", 2, "a", 1);
    size_t n = collect(it, got, 16);
    kz_stor_iter_free(it);
    kz_stor_close(st);
    cr_assert_eq(n, 4, "start \"a\" below prefix \"b/\": %zu keys, want 4", n);
    cr_assert_str_eq(got[0], "b/1=v2");
}

Test(storage, iterator_with_nul_in_prefix)
{
    kz_stor *st = open_at(dir_a);
    kz_stor_batch *b = kz_stor_batch_new(st);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, "s/A\0v1", 6, "", 0);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, "s/A\0v2", 6, "", 0);
    kz_stor_batch_put(b, KZ_STOR_CF_INDEX, "s/AB\0v3", 7, "", 0);
    cr_assert_eq(kz_stor_batch_commit(st, b, 1), KZ_OK);
    kz_stor_batch_free(b);

    /* "s/A\0" is an exact value: it must not pick up shelter "AB". */
    char got[8][64];
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "s/A\0", 4, NULL,
                                        0);
    size_t n = collect(it, got, 8);
    kz_stor_iter_free(it);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(got[0], "s/A|v1=");
    cr_assert_str_eq(got[1], "s/A|v2=");

    it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "s/A\0", 4, "s/A\0v1", 6);
    n = collect(it, got, 8);
    kz_stor_iter_free(it);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(got[0], "s/A|v1=");
    kz_stor_close(st);
}

Test(storage, iterator_empty_prefix_walks_column_family)
{
    kz_stor *st = open_at(dir_a);
    fill_iter(st);
    char got[16][64];
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_INDEX, "", 0, NULL, 0);
    size_t n = collect(it, got, 16);
    kz_stor_iter_free(it);
    cr_assert_eq(n, 8);
    cr_assert_str_eq(got[0], "a/1=v0");
    cr_assert_str_eq(got[7], "c/1=v7");
    kz_stor_close(st);
}

/* ---------------------------------------------------------- dump/load */

Test(storage, dump_index_reads_applied_index)
{
    kz_stor *st = open_at(dir_a);
    fill(st);
    char *buf;
    size_t len;
    dump(st, 16, &buf, &len);
    uint64_t idx = 0;
    cr_assert_eq(kz_stor_dump_index(buf + 16, len - 16, &idx), KZ_OK);
    cr_assert_eq(idx, 7);
    /* The caller's header bytes are not part of the dump. */
    cr_assert_eq(kz_stor_dump_index(buf, len, &idx), KZ_ECORRUPT);
    free(buf);
    kz_stor_close(st);
}

Test(storage, dump_index_refuses_short_or_foreign_buffer)
{
    uint64_t idx = 99;
    char junk[64];
    memset(junk, 'K', sizeof junk);
    cr_assert_eq(kz_stor_dump_index(junk, sizeof junk, &idx), KZ_ECORRUPT);
    memcpy(junk, "KZSNAP02", 8);
    cr_assert_eq(kz_stor_dump_index(junk, 31, &idx), KZ_ECORRUPT);
    cr_assert_eq(kz_stor_dump_index(junk, 0, &idx), KZ_ECORRUPT);
    cr_assert_eq(idx, 99, "index untouched on error");
}

Test(storage, load_reproduces_source_exactly)
{
    kz_stor *src = open_at(dir_a);
    fill(src);
    char *buf;
    size_t len;
    dump(src, 16, &buf, &len);

    kz_stor *dst = open_at(dir_b);
    int rv = kz_stor_load(dst, buf + 16, len - 16);
    cr_assert_eq(rv, KZ_OK, "load: %d %s", rv, kz_stor_errmsg(dst));
    cr_assert_eq(kz_stor_applied_index(dst), 7);
    assert_value(dst, KZ_STOR_CF_RECORDS, "131016/v/a", "alpha");
    assert_value(dst, KZ_STOR_CF_RECORDS, "131016/v/c", "gamma");
    assert_absent(dst, KZ_STOR_CF_RECORDS, "131016/v/b");
    char *v;
    size_t vl;
    cr_assert_eq(kz_stor_get(dst, KZ_STOR_CF_INDEX, "131016/s/S1\0v1", 14, &v,
                             &vl),
                 KZ_OK);
    cr_assert_eq(vl, 4);
    cr_assert_eq(memcmp(v, "\0\0\0\x05", 4), 0);
    free(v);

    /* Same content, same dump bytes. */
    char *buf2;
    size_t len2;
    dump(dst, 0, &buf2, &len2);
    cr_assert_eq(len2, len - 16);
    cr_assert_eq(memcmp(buf2, buf + 16, len2), 0, "dumps differ");
    free(buf2);
    free(buf);
    kz_stor_close(src);

    /* The load is durable, index included. */
    kz_stor_close(dst);
    dst = open_at(dir_b);
    cr_assert_eq(kz_stor_applied_index(dst), 7);
    assert_value(dst, KZ_STOR_CF_RECORDS, "131016/v/c", "gamma");
    kz_stor_close(dst);
}

Test(storage, load_replaces_previous_state)
{
    kz_stor *src = open_at(dir_a);
    fill(src);
    char *buf;
    size_t len;
    dump(src, 0, &buf, &len);
    kz_stor_close(src);

    kz_stor *dst = open_at(dir_b);
    kz_stor_batch *b = kz_stor_batch_new(dst);
    put_str(b, KZ_STOR_CF_RECORDS, "131016/v/a", "stale-alpha");
    put_str(b, KZ_STOR_CF_RECORDS, "131016/v/zzz", "only-in-target");
    put_str(b, KZ_STOR_CF_INDEX, "131016/n/only", "");
    cr_assert_eq(kz_stor_batch_commit(dst, b, 50), KZ_OK);
    kz_stor_batch_free(b);

    cr_assert_eq(kz_stor_load(dst, buf, len), KZ_OK);
    /* The snapshot's index replaces the target's, even a higher one. */
    cr_assert_eq(kz_stor_applied_index(dst), 7);
    assert_value(dst, KZ_STOR_CF_RECORDS, "131016/v/a", "alpha");
    assert_absent(dst, KZ_STOR_CF_RECORDS, "131016/v/zzz");
    assert_absent(dst, KZ_STOR_CF_INDEX, "131016/n/only");

    char *buf2;
    size_t len2;
    dump(dst, 0, &buf2, &len2);
    cr_assert_eq(len2, len);
    cr_assert_eq(memcmp(buf2, buf, len), 0);
    free(buf2);
    free(buf);
    kz_stor_close(dst);
}

Test(storage, empty_store_round_trips)
{
    kz_stor *src = open_at(dir_a);
    char *buf;
    size_t len;
    dump(src, 0, &buf, &len);
    uint64_t idx = 99;
    cr_assert_eq(kz_stor_dump_index(buf, len, &idx), KZ_OK);
    cr_assert_eq(idx, 0);
    kz_stor_close(src);

    kz_stor *dst = open_at(dir_b);
    commit_one(dst, KZ_STOR_CF_RECORDS, "x", "y", 3);
    cr_assert_eq(kz_stor_load(dst, buf, len), KZ_OK);
    cr_assert_eq(kz_stor_applied_index(dst), 0);
    assert_absent(dst, KZ_STOR_CF_RECORDS, "x");
    free(buf);
    kz_stor_close(dst);
}

static void *failing_alloc(size_t n)
{
    (void)n;
    return NULL;
}

Test(storage, dump_reports_allocation_failure)
{
    kz_stor *st = open_at(dir_a);
    fill(st);
    char *buf = (char *)1;
    size_t len = 12345;
    cr_assert_eq(kz_stor_dump(st, failing_alloc, 0, &buf, &len), KZ_ENOMEM);
    /* The store still works. */
    commit_one(st, KZ_STOR_CF_RECORDS, "after", "ok", 8);
    kz_stor_close(st);
}

/* The target: its own state at index 50, dumped before each bad load. */
struct target {
    kz_stor *st;
    char *before;
    size_t before_len;
};

static void target_open(struct target *t)
{
    t->st = open_at(dir_b);
    kz_stor_batch *b = kz_stor_batch_new(t->st);
    put_str(b, KZ_STOR_CF_RECORDS, "131016/v/keep", "kept");
    put_str(b, KZ_STOR_CF_INDEX, "131016/n/keep", "");
    cr_assert_eq(kz_stor_batch_commit(t->st, b, 50), KZ_OK);
    kz_stor_batch_free(b);
    dump(t->st, 0, &t->before, &t->before_len);
}

static void target_assert_unchanged(struct target *t, const char *what)
{
    cr_assert_eq(kz_stor_applied_index(t->st), 50, "%s: index moved", what);
    char *now;
    size_t len;
    dump(t->st, 0, &now, &len);
    cr_assert_eq(len, t->before_len, "%s: target changed", what);
    cr_assert_eq(memcmp(now, t->before, len), 0, "%s: target changed", what);
    free(now);
}

static void target_close(struct target *t)
{
    free(t->before);
    kz_stor_close(t->st);
}

static void expect_refused(struct target *t, const char *buf, size_t len,
                           const char *what)
{
    int rv = kz_stor_load(t->st, buf, len);
    cr_assert_eq(rv, KZ_ECORRUPT, "%s: load returned %d", what, rv);
    target_assert_unchanged(t, what);
}

static void source_dump(char **buf, size_t *len)
{
    kz_stor *src = open_at(dir_a);
    fill(src);
    dump(src, 0, buf, len);
    kz_stor_close(src);
}

Test(storage, load_refuses_every_truncation)
{
    char *buf;
    size_t len;
    source_dump(&buf, &len);
    struct target t;
    target_open(&t);
    for (size_t cut = 0; cut < len; cut++) {
        /* A copy of exactly cut bytes, so ASan sees any read past it. */
        char *part = malloc(cut ? cut : 1);
        memcpy(part, buf, cut);
        char what[48];
        snprintf(what, sizeof what, "truncated to %zu of %zu", cut, len);
        expect_refused(&t, part, cut, what);
        free(part);
    }
    free(buf);
    target_close(&t);
}

Test(storage, load_refuses_damaged_headers_and_lengths)
{
    char *buf;
    size_t len;
    source_dump(&buf, &len);
    struct target t;
    target_open(&t);
    char *bad = malloc(len + 1);

    memcpy(bad, buf, len);
    bad[0] = 'X';
    expect_refused(&t, bad, len, "bad magic");

    memcpy(bad, buf, len);
    bad[23]++; /* entry count one too many */
    expect_refused(&t, bad, len, "count + 1");

    memcpy(bad, buf, len);
    bad[23]--; /* entry count one too few: trailing bytes */
    expect_refused(&t, bad, len, "count - 1");

    memcpy(bad, buf, len);
    bad[16] = 0x7f; /* absurd entry count */
    expect_refused(&t, bad, len, "huge count");

    memcpy(bad, buf, len);
    bad[32] = KZ_STOR_CF__COUNT; /* first entry's column family (header: 32 bytes) */
    expect_refused(&t, bad, len, "bad column family");

    memcpy(bad, buf, len);
    bad[32 + 1] = 0x7f; /* first entry's key length */
    expect_refused(&t, bad, len, "huge key length");

    memcpy(bad, buf, len);
    bad[32 + 5] = 0xff; /* first entry's value length */
    expect_refused(&t, bad, len, "huge value length");

    memcpy(bad, buf, len);
    bad[len] = 0;
    expect_refused(&t, bad, len + 1, "trailing byte");

    free(bad);
    free(buf);
    target_close(&t);
}

Test(storage, load_refuses_flipped_payload_byte)
{
    /* A dump is the whole state sent to a peer; a bit flipped in a value
     * (disk, memory or a transfer bug) must not become the follower's state.
     * Flip one bit in the last entry's value. */
    char *buf;
    size_t len;
    source_dump(&buf, &len);
    struct target t;
    target_open(&t);
    char *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[len - 1] ^= 0x01;
    int rv = kz_stor_load(t.st, bad, len);
    free(bad);
    free(buf);
    if (rv == KZ_ECORRUPT)
        target_assert_unchanged(&t, "flipped value bit");
    target_close(&t);
    /* Asserted after the cleanup so that a failure is not also a leak. */
    cr_assert_eq(rv, KZ_ECORRUPT, "flipped value bit: load returned %d", rv);
}

/* ------------------------------------------- checkpoints (file snapshots) */

/* dir_b/state: a store; a checkpoint of dir_a's store installed into it
 * replaces its state, leaves the checkpoint as it was, and survives a
 * reopen. */
Test(storage, checkpoint_install_replaces_the_state)
{
    kz_stor *a = open_at(dir_a);
    fill(a);
    char ck[128], state[128];
    snprintf(ck, sizeof ck, "%s/ck", dir_b);
    cr_assert_eq(kz_stor_checkpoint(a, ck), KZ_OK, "%s", kz_stor_errmsg(a));
    commit_one(a, KZ_STOR_CF_RECORDS, "131016/v/later", "after", 8);
    kz_stor_close(a);

    snprintf(state, sizeof state, "%s/state", dir_b);
    kz_stor *b = open_at(state);
    commit_one(b, KZ_STOR_CF_RECORDS, "131016/v/mine", "old", 20);
    cr_assert_eq(kz_stor_install(b, ck), KZ_OK, "%s", kz_stor_errmsg(b));
    cr_assert_eq(kz_stor_applied_index(b), 7);
    assert_value(b, KZ_STOR_CF_RECORDS, "131016/v/a", "alpha");
    assert_value(b, KZ_STOR_CF_RECORDS, "131016/v/c", "gamma");
    assert_absent(b, KZ_STOR_CF_RECORDS, "131016/v/b");
    assert_absent(b, KZ_STOR_CF_RECORDS, "131016/v/mine");
    assert_absent(b, KZ_STOR_CF_RECORDS, "131016/v/later");
    /* Writes go on after it, and nothing is left of the swap. */
    commit_one(b, KZ_STOR_CF_RECORDS, "131016/v/next", "next", 9);
    kz_stor_close(b);
    char p[160];
    snprintf(p, sizeof p, "%s.old", state);
    cr_assert_neq(access(p, F_OK), 0, "%s left behind", p);
    snprintf(p, sizeof p, "%s.new", state);
    cr_assert_neq(access(p, F_OK), 0, "%s left behind", p);
    b = open_at(state);
    cr_assert_eq(kz_stor_applied_index(b), 9);
    assert_value(b, KZ_STOR_CF_RECORDS, "131016/v/next", "next");
    /* The checkpoint itself is untouched: it can be installed again. */
    char state2[128];
    snprintf(state2, sizeof state2, "%s/state2", dir_b);
    kz_stor *c = open_at(state2);
    cr_assert_eq(kz_stor_install(c, ck), KZ_OK);
    assert_absent(c, KZ_STOR_CF_RECORDS, "131016/v/next");
    assert_value(c, KZ_STOR_CF_RECORDS, "131016/v/a", "alpha");
    kz_stor_close(c);
    kz_stor_close(b);
}

/* A crash between the two renames of an install leaves state.old and no
 * state: the next open brings the old state back. */
Test(storage, open_recovers_an_interrupted_swap)
{
    char state[128], old[160], staged[160];
    snprintf(state, sizeof state, "%s/state", dir_b);
    kz_stor *b = open_at(state);
    commit_one(b, KZ_STOR_CF_RECORDS, "131016/v/kept", "kept", 5);
    kz_stor_close(b);
    snprintf(old, sizeof old, "%s.old", state);
    snprintf(staged, sizeof staged, "%s.new", state);
    cr_assert_eq(rename(state, old), 0);
    cr_assert_eq(mkdir(staged, 0700), 0); /* a half-staged copy */
    b = open_at(state);
    cr_assert_eq(kz_stor_applied_index(b), 5);
    assert_value(b, KZ_STOR_CF_RECORDS, "131016/v/kept", "kept");
    cr_assert_neq(access(staged, F_OK), 0, "the staged copy stayed");
    kz_stor_close(b);
}

Test(storage, reset_applied_survives_reopen)
{
    kz_stor *a = open_at(dir_a);
    fill(a);
    unsigned char d1[32], d2[32];
    uint64_t i1, i2, n1, n2;
    cr_assert_eq(kz_stor_digest(a, d1, &i1, &n1), KZ_OK);
    cr_assert_eq(kz_stor_reset_applied(a, 0), KZ_OK);
    cr_assert_eq(kz_stor_applied_index(a), 0);
    cr_assert_eq(kz_stor_digest(a, d2, &i2, &n2), KZ_OK);
    cr_assert(memcmp(d1, d2, 32) == 0 && n1 == n2,
                 "the digest leaves the applied index out");
    kz_stor_close(a);
    a = open_at(dir_a);
    cr_assert_eq(kz_stor_applied_index(a), 0);
    commit_one(a, KZ_STOR_CF_RECORDS, "131016/v/new", "1", 1);
    kz_stor_close(a);
}
