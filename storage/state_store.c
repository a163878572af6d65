/*
 * state_store.c — RocksDB behind the kz_stor_* API (see state_store.h).
 *
 * The applied index lives in meta under "applied" as 8 big-endian bytes and
 * is cached in memory; every commit writes it in the same WriteBatch as the
 * command's data. Dumps iterate a RocksDB snapshot, so a dump taken while
 * nothing else writes (apply runs on the same loop) is exactly the state at
 * the cached applied index.
 */
#include "state_store.h"
#include "kz_endian.h"

#include <openssl/evp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <rocksdb/c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kz_fs.h"
#include "kz_log.h"

static const char *const cf_names[KZ_STOR_CF__COUNT] = {
    "meta", "records", "index", "blobs", "terms"};
static const char meta_applied[] = "applied";
static const char meta_format[] = "format";

/* Dump format: see kz_stor_dump. */
static const char dump_magic[8] = {'K', 'Z', 'S', 'N', 'A', 'P', '0', '2'};
#define DUMP_HEADER 32

/* CRC-32C (Castagnoli), bitwise-table: guards snapshot images against
 * corruption on disk or on the wire, which raft does not check. */
uint32_t kz_stor_crc32c(const void *data, size_t n)
{
    const unsigned char *p = data;
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

struct kz_stor {
    rocksdb_t *db;
    rocksdb_options_t *opts, *blob_opts, *terms_opts;
    size_t write_buffer; /* of terms (replica_place) */
    rocksdb_column_family_handle_t *cf[KZ_STOR_CF__COUNT];
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    uint64_t applied;
    uint64_t writes[KZ_STOR_CF__COUNT]; /* puts and deletes committed */
    char path[4096];
    char errmsg[256];
};

struct kz_stor_batch {
    kz_stor *st;
    rocksdb_writebatch_t *wb;
    size_t n;
    uint64_t per_cf[KZ_STOR_CF__COUNT];
};

struct kz_stor_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ropts;
    char *prefix;
    size_t plen;
    bool started;
    bool done; /* RocksDB must not be stepped past its end */
};

static void close_db(kz_stor *st);

static int seterr(kz_stor *st, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* Takes ownership of a RocksDB error string. */
static int rocks_err(kz_stor *st, char *err, const char *what)
{
    seterr(st, KZ_EIO, "%s: %s", what, err ? err : "?");
    rocksdb_free(err);
    return KZ_EIO;
}

/* The terms family's prefix: a key up to and including its first '\0'
 * (the whole key when it has none). */
static char *term_prefix(void *state, const char *key, size_t len,
                         size_t *out_len)
{
    (void)state;
    const char *z = memchr(key, '\0', len);
    *out_len = z != NULL ? (size_t)(z - key) + 1 : len;
    return (char *)key;
}

static unsigned char term_in_domain(void *state, const char *key, size_t len)
{
    (void)state;
    (void)key;
    (void)len;
    return 1;
}

static void term_prefix_free(void *state)
{
    (void)state;
}

static const char *term_prefix_name(void *state)
{
    (void)state;
    return "kizuna.term-to-nul.v1";
}

/* Format 1 kept the name ('n', 'R') and birth-date ('d') terms of the
 * register in index, as "<muni>/<kind>/<term>\0<id>": no other key of
 * index has those kinds. Format 2 keeps them in terms with every byte of
 * the id as 255 - b (the node's kz_node_term_id: newest first). Moves
 * them over in batches of 10,000 keys (a crash in the middle leaves the
 * rest in index: the move goes on at the next open, the format being
 * written last), then writes format 2. */
static int migrate_terms(kz_stor *st)
{
    char *err = NULL;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(st->db, ro, st->cf[KZ_STOR_CF_INDEX]);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    uint64_t moved = 0;
    bool oom = false;
    for (rocksdb_iter_seek_to_first(it); err == NULL; rocksdb_iter_next(it)) {
        bool valid = rocksdb_iter_valid(it);
        if (valid) {
            size_t kl, vl;
            const char *k = rocksdb_iter_key(it, &kl);
            const char *slash = memchr(k, '/', kl);
            size_t at = slash != NULL ? (size_t)(slash - k) : kl;
            if (at + 2 < kl && k[at + 2] == '/' &&
                (k[at + 1] == 'n' || k[at + 1] == 'R' || k[at + 1] == 'd') &&
                memchr(k, '\0', kl) != NULL) {
                const char *v = rocksdb_iter_value(it, &vl);
                char *nk = malloc(kl);
                if (nk == NULL) {
                    oom = true;
                    break;
                }
                size_t tl = (size_t)((const char *)memchr(k, '\0', kl) - k) + 1;
                memcpy(nk, k, tl);
                for (size_t i = tl; i < kl; i++)
                    nk[i] = (char)(255 - (unsigned char)k[i]);
                rocksdb_writebatch_put_cf(wb, st->cf[KZ_STOR_CF_TERMS], nk, kl,
                                          v, vl);
                free(nk);
                rocksdb_writebatch_delete_cf(wb, st->cf[KZ_STOR_CF_INDEX], k,
                                             kl);
                moved++;
            }
        }
        if (!valid || rocksdb_writebatch_count(wb) >= 20000) {
            if (!valid) {
                unsigned char fmt[8];
                kz_put_be64(fmt, KZ_STOR_FORMAT_VERSION);
                rocksdb_writebatch_put_cf(wb, st->cf[KZ_STOR_CF_META],
                                          meta_format, sizeof meta_format - 1,
                                          (const char *)fmt, 8);
            }
            rocksdb_write(st->db, st->wopts, wb, &err);
            rocksdb_writebatch_clear(wb);
            if (!valid)
                break;
        }
    }
    rocksdb_writebatch_destroy(wb);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (oom)
        return seterr(st, KZ_ENOMEM, "moving terms to format 2: out of memory");
    if (err != NULL)
        return rocks_err(st, err, "moving terms to format 2");
    kz_log(KZ_LOG_INFO, "store moved to format 2", "terms_moved=%llu",
           (unsigned long long)moved);
    return KZ_OK;
}

/* Opens RocksDB at st->path with st's options and reads the format and the
 * applied index. On failure nothing stays open. */
static int open_db(kz_stor *st)
{
    char *err = NULL;
    const rocksdb_options_t *cf_opts[KZ_STOR_CF__COUNT];
    for (int i = 0; i < KZ_STOR_CF__COUNT; i++)
        cf_opts[i] = i == KZ_STOR_CF_BLOBS   ? st->blob_opts
                     : i == KZ_STOR_CF_TERMS ? st->terms_opts
                                             : st->opts;
    /* RocksDB requires the default column family to be listed: we map it to
     * meta by opening "default" and using it as meta. */
    const char *names[KZ_STOR_CF__COUNT] = {"default", cf_names[1],
                                            cf_names[2], cf_names[3],
                                            cf_names[4]};
    st->db = rocksdb_open_column_families(st->opts, st->path,
                                          KZ_STOR_CF__COUNT, names, cf_opts,
                                          st->cf, &err);
    if (err != NULL) {
        st->db = NULL;
        memset(st->cf, 0, sizeof st->cf);
        return rocks_err(st, err, "open");
    }
    char *v;
    size_t vlen;
    int rv = kz_stor_get(st, KZ_STOR_CF_META, meta_format,
                         sizeof meta_format - 1, &v, &vlen);
    if (rv == KZ_ENOTFOUND) {
        unsigned char fmt[8];
        kz_put_be64(fmt, KZ_STOR_FORMAT_VERSION);
        rocksdb_put_cf(st->db, st->wopts, st->cf[KZ_STOR_CF_META], meta_format,
                       sizeof meta_format - 1, (const char *)fmt, 8, &err);
        if (err != NULL) {
            rv = rocks_err(st, err, "write format");
            goto err;
        }
    } else if (rv != KZ_OK) {
        goto err;
    } else {
        uint64_t fmt = vlen == 8 ? kz_get_be64((unsigned char *)v) : 0;
        free(v);
        if (fmt == 1 && (rv = migrate_terms(st)) != KZ_OK)
            goto err;
        if (fmt == 1)
            fmt = KZ_STOR_FORMAT_VERSION;
        if (fmt != KZ_STOR_FORMAT_VERSION) {
            rv = seterr(st, KZ_ECORRUPT,
                        "store format %llu, this build reads %d",
                        (unsigned long long)fmt, KZ_STOR_FORMAT_VERSION);
            goto err;
        }
    }
    st->applied = 0;
    rv = kz_stor_get(st, KZ_STOR_CF_META, meta_applied,
                     sizeof meta_applied - 1, &v, &vlen);
    if (rv == KZ_OK) {
        if (vlen != 8) {
            free(v);
            rv = seterr(st, KZ_ECORRUPT, "bad applied index record");
            goto err;
        }
        st->applied = kz_get_be64((unsigned char *)v);
        free(v);
    } else if (rv != KZ_ENOTFOUND) {
        goto err;
    }
    return KZ_OK;
err:
    close_db(st);
    return rv;
}

static void close_db(kz_stor *st)
{
    for (int i = 0; i < KZ_STOR_CF__COUNT; i++)
        if (st->cf[i] != NULL)
            rocksdb_column_family_handle_destroy(st->cf[i]);
    memset(st->cf, 0, sizeof st->cf);
    if (st->db != NULL)
        rocksdb_close(st->db);
    st->db = NULL;
}

/* An install (kz_stor_install) swaps <path>.new in through <path>.old; a
 * crash between its two renames leaves no <path>: the old state comes
 * back (raft then installs the snapshot again). */
static int recover_swap(kz_stor *st)
{
    char other[sizeof st->path + 8];
    struct stat sb;
    snprintf(other, sizeof other, "%s.old", st->path);
    if (stat(st->path, &sb) != 0 && errno == ENOENT &&
        stat(other, &sb) == 0 && rename(other, st->path) != 0)
        return seterr(st, KZ_EIO, "%s: %s", other, strerror(errno));
    if (kz_fs_rmtree(other) != KZ_OK)
        return seterr(st, KZ_EIO, "%s: cannot remove", other);
    snprintf(other, sizeof other, "%s.new", st->path);
    if (kz_fs_rmtree(other) != KZ_OK)
        return seterr(st, KZ_EIO, "%s: cannot remove", other);
    return KZ_OK;
}

int kz_stor_open(const char *path, kz_stor **out, char *errmsg, size_t errlen)
{
    return kz_stor_open_with(path, NULL, out, errmsg, errlen);
}

/* Where in [0, 1) this replica's memtable and WAL sizes fall: in a band
 * of its own by its place, at random within the band (see struct
 * kz_stor_open_opts); -1 for a store alone. */
static double replica_place(const struct kz_stor_open_opts *o)
{
    if (o == NULL || o->replicas == 0)
        return -1;
    unsigned r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = (unsigned)time(NULL);
    return ((double)(o->replica % o->replicas) +
            (double)(r % 1000u) / 1000.0) /
           (double)o->replicas;
}

size_t kz_stor_terms_buffer(const kz_stor *st)
{
    return st->write_buffer;
}

int kz_stor_open_with(const char *path, const struct kz_stor_open_opts *o,
                      kz_stor **out, char *errmsg, size_t errlen)
{
    kz_stor *st = calloc(1, sizeof *st);
    if (st == NULL) {
        if (errmsg != NULL)
            snprintf(errmsg, errlen, "%s", kz_strerror(KZ_ENOMEM));
        return KZ_ENOMEM;
    }
    snprintf(st->path, sizeof st->path, "%s", path);

    st->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(st->opts, 1);
    rocksdb_options_set_create_missing_column_families(st->opts, 1);
    /* Two cores: keep background work small and predictable. */
    rocksdb_options_increase_parallelism(st->opts, 2);
    /* LZ4, except in levels 0 and 1: what a flush writes (level 0) is
     * rewritten soon by a compaction into level 1, and that again soon into
     * level 2, so compressing it only spent CPU, a flush thread's and a
     * compaction's, on a machine where writes are CPU-bound: 3-11% more
     * registrations/s, 6 of 7 alternated runs. Those levels are small
     * (level 1 holds at most 256 MB a family). */
    int per_level[7] = {rocksdb_no_compression,  rocksdb_no_compression,
                        rocksdb_lz4_compression, rocksdb_lz4_compression,
                        rocksdb_lz4_compression, rocksdb_lz4_compression,
                        rocksdb_lz4_compression};
    rocksdb_options_set_compression_per_level(st->opts, per_level, 7);
    /* A WAL file can only go once every column family has flushed what it
     * holds of it. A family that takes few small writes (meta, audit)
     * never fills its memtable, so without a cap it kept every WAL since
     * its first write: a 15-minute chaos run left 450 MB of WAL files on a
     * node. Past 64 MB of WAL, RocksDB flushes the families that pin the
     * oldest file. */
    /* Replicas get sizes of their own (struct kz_stor_open_opts): the
     * terms write buffer from 64 MB down to 32 MB (set below), the WAL cap
     * from 64 MB up to 96 MB, so that their flushes, "buffer full" and
     * "WAL full" alike, come at different moments. The other families
     * keep 64 MB: their flushes are short, and smaller buffers for them
     * made more flushes and compactions (p99 at 1000 writes/s 70-384 ms
     * against 62-80 ms with terms alone staggered, four runs each). */
    const size_t mb64 = (size_t)64 << 20;
    double place = replica_place(o);
    st->write_buffer = place < 0 ? mb64
                                 : mb64 - (size_t)((double)(mb64 / 2) * place);
    rocksdb_options_set_max_total_wal_size(
        st->opts, place < 0 ? mb64
                            : mb64 + (size_t)((double)(mb64 / 2) * place));
    /* Up to 4 memtables a family, not RocksDB's 2. When the WAL cap is
     * reached while a family's full memtable is being flushed (a terms
     * flush sorts its memtable first, 0.3-0.7 s; a records flush waits
     * behind it, as flushes go one at a time), RocksDB switches that
     * family's new memtable too, though it holds only what came since.
     * With 2 that made a second immutable one, and RocksDB stopped every
     * write until the first was flushed: the apply, and with it the
     * node's loop, stood still for up to a second ("Stopping writes
     * because we have 2 immutable memtables" in RocksDB's LOG, terms and
     * records alike). With 4, a third immutable memtable slows writes and
     * a fourth stops them; the extra ones exist only while a flush
     * lags. */
    rocksdb_options_set_max_write_buffer_number(st->opts, 4);

    /* Large values (face photos): integrated blob files, so compactions
     * move pointers rather than megabytes; garbage collection of blob files
     * runs with every compaction (age cutoff 1.0), so a replaced photo's
     * old bytes leave the disk once its range is compacted. */
    st->blob_opts = rocksdb_options_create_copy(st->opts);
    rocksdb_options_set_enable_blob_files(st->blob_opts, 1);
    rocksdb_options_set_min_blob_size(st->blob_opts, 4096);
    rocksdb_options_set_enable_blob_gc(st->blob_opts, 1);
    rocksdb_options_set_blob_gc_age_cutoff(st->blob_opts, 1.0);
    rocksdb_options_set_blob_compression_type(st->blob_opts,
                                              rocksdb_no_compression);
    /* Terms: a hash of skip lists by term (see KZ_STOR_CF_TERMS), which
     * RocksDB only allows without concurrent memtable writes (one writer
     * here anyway). 2^18 buckets (2 MB of pointers a memtable); the lists
     * are 12 levels high, since the terms of a first character hold a
     * fiftieth of the register. */
    rocksdb_options_set_allow_concurrent_memtable_write(st->opts, 0);
    st->terms_opts = rocksdb_options_create_copy(st->opts);
    rocksdb_options_set_prefix_extractor(
        st->terms_opts,
        rocksdb_slicetransform_create(NULL, term_prefix_free, term_prefix,
                                      term_in_domain, NULL,
                                      term_prefix_name));
    rocksdb_options_set_hash_skip_list_rep(st->terms_opts, 1u << 18, 12, 4);
    rocksdb_options_set_write_buffer_size(st->terms_opts, st->write_buffer);
    /* Universal (tiered) compaction for terms. Their keys are keyed
     * hashes, so every flush spans the whole family, and leveled
     * compaction rewrote all of level 1, then level 2 again and again: in
     * the last minutes of a 1,000,000-row import, compaction was 44% of
     * the nodes' CPU (13% in the first minute). Universal rewrites far
     * less: the import took 3816, 4013 and 4170 rows/s leveled against
     * 4756, 4604 and 4595 (alternated, fresh clusters), with the same
     * search speed on the million (119.2 against 118.6 searches/s) and
     * writes/s within noise. A store made with leveled compaction opens
     * as it is: universal takes each level as one sorted run. */
    rocksdb_options_set_compaction_style(st->terms_opts,
                                         rocksdb_universal_compaction);
    st->ropts = rocksdb_readoptions_create();
    /* Whole-family scans (dump, load) cross terms. */
    rocksdb_readoptions_set_total_order_seek(st->ropts, 1);
    st->wopts = rocksdb_writeoptions_create();
    int rv = recover_swap(st);
    if (rv == KZ_OK)
        rv = open_db(st);
    if (rv != KZ_OK) {
        if (errmsg != NULL)
            snprintf(errmsg, errlen, "%s", st->errmsg);
        kz_stor_close(st);
        return rv;
    }
    *out = st;
    return KZ_OK;
}

void kz_stor_close(kz_stor *st)
{
    if (st == NULL)
        return;
    close_db(st);
    if (st->ropts != NULL)
        rocksdb_readoptions_destroy(st->ropts);
    if (st->wopts != NULL)
        rocksdb_writeoptions_destroy(st->wopts);
    rocksdb_options_destroy(st->opts);
    if (st->blob_opts != NULL)
        rocksdb_options_destroy(st->blob_opts);
    if (st->terms_opts != NULL)
        rocksdb_options_destroy(st->terms_opts);
    free(st);
}

int kz_stor_reset_applied(kz_stor *st, uint64_t index)
{
    unsigned char v[8];
    kz_put_be64(v, index);
    char *err = NULL;
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, 1);
    rocksdb_put_cf(st->db, wo, st->cf[KZ_STOR_CF_META], meta_applied,
                   sizeof meta_applied - 1, (const char *)v, 8, &err);
    rocksdb_writeoptions_destroy(wo);
    if (err != NULL)
        return rocks_err(st, err, "reset applied index");
    st->applied = index;
    return KZ_OK;
}

int kz_stor_checkpoint(kz_stor *st, const char *dir)
{
    char *err = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(st->db, &err);
    if (err != NULL)
        return rocks_err(st, err, "checkpoint");
    /* No flush (log_size_for_flush above any WAL this store keeps, which
     * max_total_wal_size caps at 64-96 MB): SST and blob files as hard links,
     * MANIFEST and the live WAL copied, which reopening replays. Flushing
     * every memtable first stalled the loop that takes the snapshot for up
     * to 1.4 s under a write load (p99 253 ms, against 124 ms with no
     * snapshots); copying the WAL is mostly page-cache work. */
    rocksdb_checkpoint_create(cp, dir, UINT64_C(1) << 40, &err);
    rocksdb_checkpoint_object_destroy(cp);
    if (err != NULL)
        return rocks_err(st, err, "checkpoint");
    return KZ_OK;
}

/* Files RocksDB never changes once written: shared with the checkpoint by a
 * hard link. The rest (MANIFEST, CURRENT, OPTIONS, WAL) is copied. */
static bool immutable_file(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcmp(name + n - 4, ".sst") == 0) ||
           (n > 5 && strcmp(name + n - 5, ".blob") == 0);
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return KZ_EIO;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return KZ_EIO;
    }
    char buf[65536];
    int rv = KZ_OK;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rv = KZ_EIO;
            break;
        }
        if (r == 0)
            break;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rv = KZ_EIO;
                break;
            }
            off += w;
        }
        if (rv != KZ_OK)
            break;
    }
    if (rv == KZ_OK && fsync(out) != 0)
        rv = KZ_EIO;
    close(in);
    if (close(out) != 0)
        rv = KZ_EIO;
    return rv;
}

/* <path>.new as a copy of the checkpoint in dir (links for SST and blob
 * files), fsynced. */
static int stage_checkpoint(kz_stor *st, const char *dir, const char *staged)
{
    if (kz_fs_rmtree(staged) != KZ_OK || mkdir(staged, 0700) != 0)
        return seterr(st, KZ_EIO, "%s: %s", staged, strerror(errno));
    DIR *d = opendir(dir);
    if (d == NULL)
        return seterr(st, KZ_EIO, "%s: %s", dir, strerror(errno));
    int rv = KZ_OK;
    struct dirent *e;
    char from[8400], to[8400];
    while (rv == KZ_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(from, sizeof from, "%s/%s", dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", staged, e->d_name);
        if (immutable_file(e->d_name) && link(from, to) == 0)
            continue;
        if (copy_file(from, to) != KZ_OK)
            rv = seterr(st, KZ_EIO, "%s: %s", to, strerror(errno));
    }
    closedir(d);
    if (rv == KZ_OK && kz_fs_fsync_dir(staged) != KZ_OK)
        rv = seterr(st, KZ_EIO, "%s: fsync", staged);
    return rv;
}

int kz_stor_install(kz_stor *st, const char *dir)
{
    char staged[sizeof st->path + 8], old[sizeof st->path + 8];
    snprintf(staged, sizeof staged, "%s.new", st->path);
    snprintf(old, sizeof old, "%s.old", st->path);
    int rv = stage_checkpoint(st, dir, staged);
    if (rv != KZ_OK) {
        kz_fs_rmtree(staged);
        return rv;
    }
    char parent[sizeof st->path];
    snprintf(parent, sizeof parent, "%s", st->path);
    char *slash = strrchr(parent, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(parent, sizeof parent, ".");
    close_db(st);
    if (rename(st->path, old) != 0 || rename(staged, st->path) != 0 ||
        kz_fs_fsync_dir(parent) != KZ_OK) {
        rv = seterr(st, KZ_EIO, "swapping %s in: %s", staged,
                    strerror(errno));
        recover_swap(st);
        open_db(st); /* the old state, if it can be had */
        return rv;
    }
    kz_fs_rmtree(old);
    return open_db(st);
}

void kz_stor_compact_key(kz_stor *st, int cf, const void *key, size_t klen)
{
    char *end = malloc(klen + 1);
    if (end == NULL)
        return;
    memcpy(end, key, klen);
    end[klen] = '\0'; /* the next key after it */
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    rocksdb_compactoptions_set_bottommost_level_compaction(co, 2 /* force */);
    rocksdb_compact_range_cf_opt(st->db, st->cf[cf], co, key, klen, end,
                                 klen + 1);
    rocksdb_compactoptions_destroy(co);
    free(end);
}

const char *kz_stor_errmsg(const kz_stor *st)
{
    return st->errmsg;
}

uint64_t kz_stor_applied_index(const kz_stor *st)
{
    return st->applied;
}

int kz_stor_get(kz_stor *st, int cf, const void *key, size_t klen, char **val,
                size_t *vlen)
{
    char *err = NULL;
    size_t n = 0;
    char *v = rocksdb_get_cf(st->db, st->ropts, st->cf[cf], key, klen, &n,
                             &err);
    if (err != NULL)
        return rocks_err(st, err, "get");
    if (v == NULL)
        return KZ_ENOTFOUND;
    /* RocksDB's buffer must be freed with rocksdb_free; callers use free(),
     * which is the same allocator in Debian's build, but copy to be sure. */
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        rocksdb_free(v);
        return KZ_ENOMEM;
    }
    memcpy(copy, v, n);
    copy[n] = '\0';
    rocksdb_free(v);
    *val = copy;
    *vlen = n;
    return KZ_OK;
}

kz_stor_batch *kz_stor_batch_new(kz_stor *st)
{
    kz_stor_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->st = st;
    b->wb = rocksdb_writebatch_create();
    return b;
}

void kz_stor_batch_put(kz_stor_batch *b, int cf, const void *key, size_t klen,
                       const void *val, size_t vlen)
{
    rocksdb_writebatch_put_cf(b->wb, b->st->cf[cf], key, klen, val, vlen);
    b->n++;
    b->per_cf[cf]++;
}

void kz_stor_batch_delete(kz_stor_batch *b, int cf, const void *key,
                          size_t klen)
{
    rocksdb_writebatch_delete_cf(b->wb, b->st->cf[cf], key, klen);
    b->n++;
    b->per_cf[cf]++;
}

size_t kz_stor_batch_count(const kz_stor_batch *b)
{
    return b->n;
}

int kz_stor_batch_commit(kz_stor *st, kz_stor_batch *b, uint64_t applied_index)
{
    char *err = NULL;
    if (applied_index <= st->applied)
        return seterr(st, KZ_EINVAL, "applied index %llu not above %llu",
                      (unsigned long long)applied_index,
                      (unsigned long long)st->applied);
    unsigned char idx[8];
    kz_put_be64(idx, applied_index);
    rocksdb_writebatch_put_cf(b->wb, st->cf[KZ_STOR_CF_META], meta_applied,
                              sizeof meta_applied - 1, (const char *)idx, 8);
    rocksdb_write(st->db, st->wopts, b->wb, &err);
    if (err != NULL)
        return rocks_err(st, err, "commit");
    st->applied = applied_index;
    for (int cf = 0; cf < KZ_STOR_CF__COUNT; cf++)
        st->writes[cf] += b->per_cf[cf];
    return KZ_OK;
}

uint64_t kz_stor_writes(const kz_stor *st, int cf)
{
    return cf >= 0 && cf < KZ_STOR_CF__COUNT ? st->writes[cf] : 0;
}

const char *kz_stor_cf_name(int cf)
{
    return cf >= 0 && cf < KZ_STOR_CF__COUNT ? cf_names[cf] : "?";
}

void kz_stor_batch_free(kz_stor_batch *b)
{
    if (b == NULL)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

kz_stor_iter *kz_stor_iter_new(kz_stor *st, int cf, const void *prefix,
                               size_t plen, const void *start, size_t slen)
{
    kz_stor_iter *it = calloc(1, sizeof *it);
    if (it == NULL)
        return NULL;
    it->prefix = malloc(plen + 1);
    if (it->prefix == NULL) {
        free(it);
        return NULL;
    }
    memcpy(it->prefix, prefix, plen);
    it->plen = plen;
    it->ropts = rocksdb_readoptions_create();
    /* In terms, a prefix that is a whole term ("...\0") stays in its hash
     * bucket; any other scan needs the total order (slow: see the enum). */
    if (cf == KZ_STOR_CF_TERMS &&
        (plen == 0 || ((const char *)prefix)[plen - 1] != '\0'))
        rocksdb_readoptions_set_total_order_seek(it->ropts, 1);
    it->it = rocksdb_create_iterator_cf(st->db, it->ropts, st->cf[cf]);
    /* Seek to the later of start and prefix: a start that sorts before the
     * prefix means "from the beginning of the prefix". */
    bool use_start = false;
    if (start != NULL && slen > 0) {
        size_t m = slen < plen ? slen : plen;
        int c = memcmp(start, prefix, m);
        use_start = c > 0 || (c == 0 && slen >= plen);
    }
    if (use_start)
        rocksdb_iter_seek(it->it, start, slen);
    else
        rocksdb_iter_seek(it->it, prefix, plen);
    return it;
}

bool kz_stor_iter_next(kz_stor_iter *it, const char **key, size_t *klen,
                       const char **val, size_t *vlen)
{
    if (it->done)
        return false;
    if (it->started)
        rocksdb_iter_next(it->it);
    it->started = true;
    if (!rocksdb_iter_valid(it->it)) {
        it->done = true;
        return false;
    }
    size_t kl;
    const char *k = rocksdb_iter_key(it->it, &kl);
    if (kl < it->plen || memcmp(k, it->prefix, it->plen) != 0) {
        it->done = true;
        return false;
    }
    *key = k;
    *klen = kl;
    if (val != NULL) {
        size_t vl;
        *val = rocksdb_iter_value(it->it, &vl);
        *vlen = vl;
    }
    return true;
}

void kz_stor_iter_free(kz_stor_iter *it)
{
    if (it == NULL)
        return;
    rocksdb_iter_destroy(it->it);
    rocksdb_readoptions_destroy(it->ropts);
    free(it->prefix);
    free(it);
}

/* Dump layout (all integers big-endian):
 *   [header bytes reserved for the caller]
 *   "KZSNAP02" | u64 applied index | u64 entry count | u32 CRC-32C of the
 *   entries | u32 zero
 *   entries: u8 cf | u32 key length | u32 value length | key | value
 * The meta column family is dumped like the others except the applied
 * index, which load rewrites from the header. */
int kz_stor_dump(kz_stor *st, void *(*alloc)(size_t), size_t header,
                 char **buf, size_t *len)
{
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(st->db);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    size_t total = header + DUMP_HEADER;
    uint64_t count = 0;
    int rv = KZ_OK;

    /* Pass 1 sizes the buffer, pass 2 fills it: both over the same
     * snapshot, so they see the same entries. */
    for (int pass = 0; pass < 2; pass++) {
        unsigned char *p = NULL;
        if (pass == 1) {
            *buf = alloc(total);
            if (*buf == NULL) {
                rv = KZ_ENOMEM;
                goto out;
            }
            p = (unsigned char *)*buf + header;
            memcpy(p, dump_magic, sizeof dump_magic);
            kz_put_be64(p + 8, st->applied);
            kz_put_be64(p + 16, count);
            memset(p + 24, 0, 8);
            p += DUMP_HEADER;
        }
        for (int cf = 0; cf < KZ_STOR_CF__COUNT; cf++) {
            rocksdb_iterator_t *it =
                rocksdb_create_iterator_cf(st->db, ro, st->cf[cf]);
            for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
                 rocksdb_iter_next(it)) {
                size_t kl, vl;
                const char *k = rocksdb_iter_key(it, &kl);
                const char *v = rocksdb_iter_value(it, &vl);
                if (cf == KZ_STOR_CF_META && kl == sizeof meta_applied - 1 &&
                    memcmp(k, meta_applied, kl) == 0)
                    continue;
                if (pass == 0) {
                    total += 9 + kl + vl;
                    count++;
                } else {
                    p[0] = (unsigned char)cf;
                    kz_put_be32(p + 1, (uint32_t)kl);
                    kz_put_be32(p + 5, (uint32_t)vl);
                    memcpy(p + 9, k, kl);
                    memcpy(p + 9 + kl, v, vl);
                    p += 9 + kl + vl;
                }
            }
            rocksdb_iter_destroy(it);
        }
    }
    {
        unsigned char *body = (unsigned char *)*buf + header;
        kz_put_be32(body + 24, kz_stor_crc32c(body + DUMP_HEADER,
                                   total - header - DUMP_HEADER));
    }
    *len = total;
out:
    rocksdb_readoptions_destroy(ro);
    rocksdb_release_snapshot(st->db, snap);
    return rv;
}

int kz_stor_digest(kz_stor *st, unsigned char out[32], uint64_t *index,
                   uint64_t *entries)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return KZ_ENOMEM;
    }
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(st->db);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    /* st->applied moves only on the loop thread that calls this, so it is
     * the snapshot's index. */
    *index = st->applied;
    *entries = 0;
    for (int cf = 0; cf < KZ_STOR_CF__COUNT; cf++) {
        rocksdb_iterator_t *it =
            rocksdb_create_iterator_cf(st->db, ro, st->cf[cf]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
             rocksdb_iter_next(it)) {
            size_t kl, vl;
            const char *k = rocksdb_iter_key(it, &kl);
            const char *v = rocksdb_iter_value(it, &vl);
            if (cf == KZ_STOR_CF_META && kl == sizeof meta_applied - 1 &&
                memcmp(k, meta_applied, kl) == 0)
                continue;
            unsigned char h[9];
            h[0] = (unsigned char)cf;
            kz_put_be32(h + 1, (uint32_t)kl);
            kz_put_be32(h + 5, (uint32_t)vl);
            EVP_DigestUpdate(md, h, sizeof h);
            EVP_DigestUpdate(md, k, kl);
            EVP_DigestUpdate(md, v, vl);
            (*entries)++;
        }
        rocksdb_iter_destroy(it);
    }
    rocksdb_readoptions_destroy(ro);
    rocksdb_release_snapshot(st->db, snap);
    unsigned int olen = 32;
    int ok = EVP_DigestFinal_ex(md, out, &olen);
    EVP_MD_CTX_free(md);
    return ok == 1 ? KZ_OK : KZ_EIO;
}

int kz_stor_dump_index(const char *buf, size_t len, uint64_t *index)
{
    if (len < DUMP_HEADER || memcmp(buf, dump_magic, sizeof dump_magic) != 0)
        return KZ_ECORRUPT;
    *index = kz_get_be64((const unsigned char *)buf + 8);
    return KZ_OK;
}

int kz_stor_load(kz_stor *st, const char *buf, size_t len)
{
    uint64_t index;
    char *err = NULL;
    if (kz_stor_dump_index(buf, len, &index) != KZ_OK)
        return seterr(st, KZ_ECORRUPT, "not a state dump");
    const unsigned char *p = (const unsigned char *)buf + DUMP_HEADER;
    const unsigned char *end = (const unsigned char *)buf + len;
    uint64_t count = kz_get_be64((const unsigned char *)buf + 16);
    if (kz_get_be32((const unsigned char *)buf + 28) != 0)
        return seterr(st, KZ_ECORRUPT, "dump header: reserved field set");
    if (kz_stor_crc32c(p, (size_t)(end - p)) !=
        kz_get_be32((const unsigned char *)buf + 24))
        return seterr(st, KZ_ECORRUPT, "dump checksum mismatch");

    /* Validate the whole dump before touching the state. */
    const unsigned char *q = p;
    for (uint64_t i = 0; i < count; i++) {
        if (end - q < 9 || q[0] >= KZ_STOR_CF__COUNT)
            return seterr(st, KZ_ECORRUPT, "truncated dump entry %llu",
                          (unsigned long long)i);
        uint64_t need = 9 + (uint64_t)kz_get_be32(q + 1) + kz_get_be32(q + 5);
        if ((uint64_t)(end - q) < need)
            return seterr(st, KZ_ECORRUPT, "truncated dump entry %llu",
                          (unsigned long long)i);
        q += need;
    }
    if (q != end)
        return seterr(st, KZ_ECORRUPT, "trailing bytes after dump");

    /* One batch: delete everything, then write the dump. Atomic. */
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (int cf = 0; cf < KZ_STOR_CF__COUNT; cf++) {
        rocksdb_iterator_t *it =
            rocksdb_create_iterator_cf(st->db, st->ropts, st->cf[cf]);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it);
             rocksdb_iter_next(it)) {
            size_t kl;
            const char *k = rocksdb_iter_key(it, &kl);
            rocksdb_writebatch_delete_cf(wb, st->cf[cf], k, kl);
        }
        rocksdb_iter_destroy(it);
    }
    for (uint64_t i = 0; i < count; i++) {
        uint32_t kl = kz_get_be32(p + 1), vl = kz_get_be32(p + 5);
        rocksdb_writebatch_put_cf(wb, st->cf[p[0]], (const char *)p + 9, kl,
                                  (const char *)p + 9 + kl, vl);
        p += 9 + (size_t)kl + vl;
    }
    unsigned char idx[8];
    kz_put_be64(idx, index);
    rocksdb_writebatch_put_cf(wb, st->cf[KZ_STOR_CF_META], meta_applied,
                              sizeof meta_applied - 1, (const char *)idx, 8);
    rocksdb_write(st->db, st->wopts, wb, &err);
    rocksdb_writebatch_destroy(wb);
    if (err != NULL)
        return rocks_err(st, err, "load");
    st->applied = index;
    return KZ_OK;
}

int kz_stor_property_u64(kz_stor *st, int cf, const char *name,
                         uint64_t *out)
{
    if (cf < KZ_STOR_CF_ALL || cf >= KZ_STOR_CF__COUNT)
        return KZ_EINVAL;
    if (st->db == NULL) /* a failed install left the store closed */
        return KZ_EIO;
    int first = cf == KZ_STOR_CF_ALL ? 0 : cf;
    int last = cf == KZ_STOR_CF_ALL ? KZ_STOR_CF__COUNT - 1 : cf;
    uint64_t total = 0;
    for (int i = first; i <= last; i++) {
        uint64_t v;
        /* rocksdb_property_int_cf: 0 when the property exists as an
         * integer. */
        if (rocksdb_property_int_cf(st->db, st->cf[i], name, &v) != 0)
            return KZ_ENOTFOUND;
        total += v;
    }
    *out = total;
    return KZ_OK;
}

uint64_t kz_stor_range_size(kz_stor *st, int cf, const char *start,
                            size_t start_len, const char *limit,
                            size_t limit_len)
{
    if (cf < 0 || cf >= KZ_STOR_CF__COUNT)
        return 0;
    uint64_t size = 0;
    char *err = NULL;
    rocksdb_approximate_sizes_cf(st->db, st->cf[cf], 1, &start, &start_len,
                                 &limit, &limit_len, &size, &err);
    if (err != NULL) {
        rocksdb_free(err);
        return 0;
    }
    return size;
}

uint64_t kz_stor_disk_size(kz_stor *st)
{
    uint64_t total = 0;
    for (int cf = 0; cf < KZ_STOR_CF__COUNT; cf++) {
        char *v = rocksdb_property_value_cf(st->db, st->cf[cf],
                                            "rocksdb.total-sst-files-size");
        if (v != NULL) {
            total += strtoull(v, NULL, 10);
            rocksdb_free(v);
        }
    }
    return total;
}
