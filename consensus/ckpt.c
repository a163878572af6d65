/*
 * ckpt.c — file snapshots (see ckpt.h).
 *
 * The fetch runs on a loop of its own, with a channel layer of its own (our
 * certificate, client side only), while the node's loop waits in raft's
 * restore callback: raft 0.22 restores synchronously, and a follower that
 * is installing a snapshot has nothing else it could safely do. One source
 * at a time; its answers come in order, so the window is a ring of the
 * chunks asked for.
 */
#define _XOPEN_SOURCE 700
#include "ckpt.h"
#include "kz_endian.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <raft.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "kz_error.h"
#include "kz_fs.h"
#include "kz_log.h"

static const unsigned char desc_magic[8] = {'K', 'Z', 'C', 'K',
                                            'P', 'T', '0', '1'};
#define SYNC_EVERY (64ull << 20)
#define WINDOW_MAX 16
#define PIN_MS 60000
#define PINS_MAX 32

/* ------------------------------------------------------------------ codecs */

int kz_cons__frame_next(const unsigned char *buf, size_t len, size_t *off,
                        struct kz_cons__frame *out)
{
    if (len - *off < 4)
        return 0;
    const unsigned char *p = buf + *off;
    uint32_t flen = kz_get_be32(p);
    if (flen < KZ_CONS__FRAME_HEADER - 4 || flen > KZ_CONS__FRAME_MAX)
        return -1;
    if (len - *off < 4 + (size_t)flen)
        return 0;
    out->type = p[4];
    out->reqid = kz_get_be64(p + 5);
    out->payload = p + KZ_CONS__FRAME_HEADER;
    out->len = flen - (KZ_CONS__FRAME_HEADER - 4);
    *off += 4 + (size_t)flen;
    return 1;
}

void kz_cons__ckpt_desc_build(uint64_t index, uint64_t fsm_index,
                              unsigned char out[KZ_CKPT_DESC_LEN])
{
    memcpy(out, desc_magic, 8);
    kz_put_be64(out + 8, index);
    kz_put_be64(out + 16, fsm_index);
}

int kz_cons__ckpt_desc_parse(const unsigned char *p, size_t len,
                             uint64_t *index, uint64_t *fsm_index)
{
    if (len != KZ_CKPT_DESC_LEN || memcmp(p, desc_magic, 8) != 0)
        return KZ_ECORRUPT;
    *index = kz_get_be64(p + 8);
    *fsm_index = kz_get_be64(p + 16);
    if (*index == 0 || *fsm_index > *index)
        return KZ_ECORRUPT;
    return KZ_OK;
}

size_t kz_cons__ckpt_get_build(uint64_t index, uint64_t offset,
                               uint32_t length, const char *name,
                               unsigned char *out)
{
    size_t n = strlen(name);
    if (!kz_fs_name_ok(name, n))
        return 0;
    kz_put_be64(out, index);
    kz_put_be64(out + 8, offset);
    kz_put_be32(out + 16, length);
    out[20] = (unsigned char)(n >> 8);
    out[21] = (unsigned char)n;
    memcpy(out + 22, name, n);
    return 22 + n;
}

int kz_cons__ckpt_get_parse(const unsigned char *p, size_t len,
                            uint64_t *index, uint64_t *offset,
                            uint32_t *length,
                            char name[KZ_CKPT_NAME_MAX + 1])
{
    if (len < 22)
        return KZ_ECORRUPT;
    size_t n = ((size_t)p[20] << 8) | p[21];
    if (len != 22 + n || !kz_fs_name_ok((const char *)p + 22, n))
        return KZ_ECORRUPT;
    *index = kz_get_be64(p);
    *offset = kz_get_be64(p + 8);
    *length = kz_get_be32(p + 16);
    if (*length == 0 || *length > KZ_CKPT_CHUNK ||
        *offset > UINT64_MAX - *length)
        return KZ_ECORRUPT;
    memcpy(name, p + 22, n);
    name[n] = '\0';
    return KZ_OK;
}

int kz_cons__ckpt_info_build(int status, const struct kz_cons__ckpt_info *in,
                             unsigned char **out, size_t *len)
{
    size_t n = 4;
    if (status == 0) {
        n += 12;
        for (unsigned i = 0; i < in->n; i++)
            n += 2 + strlen(in->files[i].name) + 8;
    }
    unsigned char *p = malloc(n);
    if (p == NULL)
        return KZ_ENOMEM;
    kz_put_be32(p, (uint32_t)status);
    if (status == 0) {
        kz_put_be64(p + 4, in->index);
        kz_put_be32(p + 12, in->n);
        size_t off = 16;
        for (unsigned i = 0; i < in->n; i++) {
            size_t l = strlen(in->files[i].name);
            p[off] = (unsigned char)(l >> 8);
            p[off + 1] = (unsigned char)l;
            memcpy(p + off + 2, in->files[i].name, l);
            kz_put_be64(p + off + 2 + l, in->files[i].size);
            off += 2 + l + 8;
        }
    }
    *out = p;
    *len = n;
    return KZ_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kz_fs_file *)a)->name,
                  ((const struct kz_fs_file *)b)->name);
}

int kz_cons__ckpt_info_parse(const unsigned char *p, size_t len,
                             struct kz_cons__ckpt_info *out)
{
    memset(out, 0, sizeof *out);
    if (len < 4)
        return KZ_ECORRUPT;
    int status = (int)kz_get_be32(p);
    if (status != 0)
        return len == 4 ? status : KZ_ECORRUPT;
    if (len < 16)
        return KZ_ECORRUPT;
    uint64_t index = kz_get_be64(p + 4);
    uint32_t n = kz_get_be32(p + 12);
    /* Each entry takes at least 11 bytes: bounds n before allocating. */
    if (index == 0 || n > KZ_CKPT_FILES_MAX || n > (len - 16) / 11)
        return KZ_ECORRUPT;
    struct kz_fs_file *files = calloc(n ? n : 1, sizeof *files);
    if (files == NULL)
        return KZ_ENOMEM;
    size_t off = 16;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 2)
            goto corrupt;
        size_t l = ((size_t)p[off] << 8) | p[off + 1];
        if (len - off - 2 < l + 8 ||
            !kz_fs_name_ok((const char *)p + off + 2, l))
            goto corrupt;
        memcpy(files[i].name, p + off + 2, l);
        files[i].name[l] = '\0';
        files[i].size = kz_get_be64(p + off + 2 + l);
        if (files[i].size > (1ull << 50) || total + files[i].size < total)
            goto corrupt;
        total += files[i].size;
        off += 2 + l + 8;
    }
    if (off != len)
        goto corrupt;
    qsort(files, n, sizeof *files, name_cmp);
    for (uint32_t i = 1; i < n; i++)
        if (strcmp(files[i - 1].name, files[i].name) == 0)
            goto corrupt;
    out->index = index;
    out->n = n;
    out->files = files;
    out->total = total;
    return KZ_OK;
corrupt:
    free(files);
    return KZ_ECORRUPT;
}

void kz_cons__ckpt_info_free(struct kz_cons__ckpt_info *info)
{
    free(info->files);
    info->files = NULL;
    info->n = 0;
}

/* --------------------------------------------------------------- the dir */

void kz_cons__ckpt_path(const char *root, uint64_t index, char *out,
                        size_t outlen)
{
    snprintf(out, outlen, "%s/%020" PRIu64, root, index);
}

/* A complete checkpoint's directory name: exactly 20 digits. */
static bool complete_name(const char *name, uint64_t *index)
{
    if (strlen(name) != 20)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        if (v > (UINT64_MAX - (uint64_t)(name[i] - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *index = v;
    return v > 0;
}

/* Index in "incoming-<20 digits>" or "tmp-<20 digits>". */
static bool partial_name(const char *name, uint64_t *index)
{
    const char *p = NULL;
    if (strncmp(name, "incoming-", 9) == 0)
        p = name + 9;
    else if (strncmp(name, "tmp-", 4) == 0)
        p = name + 4;
    return p != NULL && complete_name(p, index);
}

int kz_cons__ckpt_newest(const char *root, uint64_t min, uint64_t *index)
{
    DIR *d = opendir(root);
    if (d == NULL)
        return KZ_ENOTFOUND;
    bool found = false;
    uint64_t best = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t v;
        if (complete_name(e->d_name, &v) && v >= min && (!found || v > best)) {
            best = v;
            found = true;
        }
    }
    closedir(d);
    if (!found)
        return KZ_ENOTFOUND;
    *index = best;
    return KZ_OK;
}

int kz_cons__ckpt_list(const char *root, uint64_t index,
                       struct kz_cons__ckpt_info *out)
{
    memset(out, 0, sizeof *out);
    char path[4200];
    kz_cons__ckpt_path(root, index, path, sizeof path);
    size_t n;
    int rv = kz_fs_list(path, KZ_CKPT_FILES_MAX, &out->files, &n);
    if (rv != KZ_OK)
        return rv;
    out->n = (unsigned)n;
    for (size_t i = 0; i < n; i++)
        out->total += out->files[i].size;
    out->index = index;
    return KZ_OK;
}

static int u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Checkpoints being served: a fetch of a large state takes longer than the
 * leader takes to write two newer checkpoints under a steady load of big
 * entries, so a checkpoint a peer asked about in the last PIN_MS is not
 * pruned (seen: a follower restarting five fetches of 1.1-1.9 GB, each
 * superseded and deleted under it, 4.6 GB moved in 45 s for one state).
 * Keyed by a hash of the directory and the index; the serving loop and the
 * pruning loop may differ (tests run several nodes in one process). */
static struct pin {
    uint64_t root_hash, index, until_ms;
} pins[PINS_MAX];
static uv_mutex_t pins_mu;
static uv_once_t pins_once = UV_ONCE_INIT;

static void pins_init(void)
{
    if (uv_mutex_init(&pins_mu) != 0)
        abort();
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t root_hash(const char *root)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)root; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

/* Pins (root, index) for PIN_MS from now; when the table is full, the pin
 * closest to expiring makes room. */
static void pin(const char *root, uint64_t index)
{
    uv_once(&pins_once, pins_init);
    uint64_t h = root_hash(root), now = mono_ms();
    uv_mutex_lock(&pins_mu);
    struct pin *slot = &pins[0];
    for (size_t i = 0; i < PINS_MAX; i++) {
        if (pins[i].root_hash == h && pins[i].index == index) {
            slot = &pins[i];
            break;
        }
        if (pins[i].until_ms < slot->until_ms)
            slot = &pins[i];
    }
    slot->root_hash = h;
    slot->index = index;
    slot->until_ms = now + PIN_MS;
    uv_mutex_unlock(&pins_mu);
}

static bool pinned(const char *root, uint64_t index)
{
    uv_once(&pins_once, pins_init);
    uint64_t h = root_hash(root), now = mono_ms();
    bool found = false;
    uv_mutex_lock(&pins_mu);
    for (size_t i = 0; i < PINS_MAX && !found; i++)
        found = pins[i].root_hash == h && pins[i].index == index &&
                pins[i].until_ms > now;
    uv_mutex_unlock(&pins_mu);
    return found;
}

void kz_cons__ckpt_unpin_all(void)
{
    uv_once(&pins_once, pins_init);
    uv_mutex_lock(&pins_mu);
    memset(pins, 0, sizeof pins);
    uv_mutex_unlock(&pins_mu);
}

void kz_cons__ckpt_prune(const char *root, unsigned keep,
                         uint64_t partial_keep)
{
    DIR *d = opendir(root);
    if (d == NULL)
        return;
    uint64_t *idx = NULL;
    size_t n = 0, cap = 0;
    char path[4400];
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t v;
        if (complete_name(e->d_name, &v)) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                uint64_t *ni = realloc(idx, ncap * sizeof *idx);
                if (ni == NULL)
                    break;
                idx = ni;
                cap = ncap;
            }
            idx[n++] = v;
        } else if (partial_name(e->d_name, &v) && v != partial_keep) {
            snprintf(path, sizeof path, "%s/%s", root, e->d_name);
            kz_fs_rmtree(path);
        }
    }
    closedir(d);
    if (n > keep) {
        qsort(idx, n, sizeof *idx, u64_desc);
        for (size_t i = keep; i < n; i++) {
            if (pinned(root, idx[i]))
                continue; /* a peer is fetching it */
            kz_cons__ckpt_path(root, idx[i], path, sizeof path);
            kz_fs_rmtree(path);
        }
    }
    free(idx);
}

void kz_cons__rss_mb(uint64_t *rss, uint64_t *peak)
{
    *rss = *peak = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return;
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            *rss = kb >> 10;
        else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            *peak = kb >> 10;
    }
    fclose(f);
}

/* ---------------------------------------------------------------- serving */

static int serve_list(const char *root, const unsigned char *req, size_t len,
                      unsigned char **out, size_t *olen)
{
    if (len != 8)
        return KZ_ECORRUPT;
    uint64_t min = kz_get_be64(req), index;
    struct kz_cons__ckpt_info info;
    memset(&info, 0, sizeof info);
    int status = kz_cons__ckpt_newest(root, min, &index);
    if (status == KZ_OK) {
        pin(root, index); /* before listing: prune may run between */
        status = kz_cons__ckpt_list(root, index, &info);
    }
    int rv = kz_cons__ckpt_info_build(status, &info, out, olen);
    kz_cons__ckpt_info_free(&info);
    return rv;
}

static int data_status(unsigned char **out, size_t *olen, int status)
{
    unsigned char *p = malloc(4);
    if (p == NULL)
        return KZ_ENOMEM;
    kz_put_be32(p, (uint32_t)status);
    *out = p;
    *olen = 4;
    return KZ_OK;
}

static int serve_get(const char *root, const unsigned char *req, size_t len,
                     unsigned char **out, size_t *olen)
{
    uint64_t index, off;
    uint32_t n;
    char name[KZ_CKPT_NAME_MAX + 1];
    if (kz_cons__ckpt_get_parse(req, len, &index, &off, &n, name) != KZ_OK)
        return KZ_ECORRUPT;
    pin(root, index);
    char path[4400];
    kz_cons__ckpt_path(root, index, path, sizeof path);
    size_t pl = strlen(path);
    snprintf(path + pl, sizeof path - pl, "/%s", name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return data_status(out, olen, KZ_ENOTFOUND);
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
        off + n > (uint64_t)sb.st_size) {
        close(fd);
        return data_status(out, olen, KZ_EINVAL);
    }
    unsigned char *p = malloc(KZ_CKPT_DATA_HEADER + n);
    if (p == NULL) {
        close(fd);
        return KZ_ENOMEM;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + KZ_CKPT_DATA_HEADER + got, n - got,
                          (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(p);
        return data_status(out, olen, KZ_EIO);
    }
    kz_put_be32(p, 0);
    unsigned int mdlen = 0;
    if (!EVP_Digest(p + KZ_CKPT_DATA_HEADER, n, p + 4, &mdlen, EVP_sha256(),
                    NULL)) {
        free(p);
        return data_status(out, olen, KZ_EIO);
    }
    *out = p;
    *olen = KZ_CKPT_DATA_HEADER + n;
    return KZ_OK;
}

int kz_cons__ckpt_serve(const char *root, int type, const unsigned char *req,
                        size_t len, unsigned char **out, size_t *olen,
                        int *reply_type)
{
    if (type == KZ_F_CKPT_LIST) {
        *reply_type = KZ_F_CKPT_INFO;
        if (root == NULL || root[0] == '\0')
            return kz_cons__ckpt_info_build(KZ_ENOTFOUND, NULL, out, olen);
        return serve_list(root, req, len, out, olen);
    }
    *reply_type = KZ_F_CKPT_DATA;
    if (root == NULL || root[0] == '\0')
        return data_status(out, olen, KZ_ENOTFOUND);
    return serve_get(root, req, len, out, olen);
}

/* --------------------------------------------------------------- fetching */

struct slot {
    uint64_t reqid, off;
    uint32_t len;
};

struct fx {
    const struct kz_cons__ckpt_fetch_args *a;
    uv_loop_t loop;
    struct kz_cons__tls *tls;
    uv_timer_t timer;
    void *pending;     /* channel being opened */
    uv_stream_t *s;    /* open channel */
    unsigned src;      /* current source */
    unsigned rounds;   /* passes over the sources */
    bool listing, waiting_retry, finished;
    uint64_t reqid;
    char *rbuf;
    size_t rlen, rcap;
    struct kz_cons__ckpt_info info;
    bool have_info;
    char dir[4300];
    uint64_t *progress; /* per file: bytes durably written */
    unsigned file;      /* the file being fetched */
    int fd;
    uint64_t next_off, written, synced;
    struct slot win[WINDOW_MAX];
    unsigned head, count, window;
    uint64_t t0, last_activity, last_log, deadline, bytes_fetched;
    int result;
    uint64_t got;
    char *errmsg;
    size_t errlen;
};

static uint64_t fx_now(struct fx *f)
{
    (void)f;
    return uv_hrtime() / 1000000u;
}

static void fx_finish(struct fx *f, int result)
{
    if (f->finished)
        return;
    f->finished = true;
    f->result = result;
    uv_stop(&f->loop);
}

static int fx_local_error(struct fx *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->errmsg, f->errlen, fmt, ap);
    va_end(ap);
    fx_finish(f, KZ_EIO);
    return KZ_EIO;
}

static void on_stream_closed(uv_handle_t *h)
{
    raft_free(h);
}

static void fx_try_source(struct fx *f);

/* Drops the current source (logging why) and moves on to the next one; after
 * a whole round, waits a second. */
static void fx_source_failed(struct fx *f, const char *why)
{
    if (f->finished)
        return;
    const struct kz_cons__ckpt_source *s = &f->a->sources[f->src];
    kz_log_node(f->a->self_id, KZ_LOG_WARN, "snapshot source failed",
                "from=%llu addr=%s error=%s", (unsigned long long)s->id,
                s->addr, why);
    if (f->s != NULL) {
        uv_close((uv_handle_t *)f->s, on_stream_closed);
        f->s = NULL;
    }
    if (f->pending != NULL) {
        kz_cons__tls_cancel(f->tls, f->pending);
        f->pending = NULL;
    }
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    f->count = 0;
    f->head = 0;
    f->rlen = 0;
    f->src++;
    if (f->src < f->a->n_sources) {
        fx_try_source(f);
        return;
    }
    f->src = 0;
    f->rounds++;
    f->waiting_retry = true;
    f->last_activity = fx_now(f) + 1000; /* the timer retries after 1 s */
}


struct fx_write {
    uv_write_t w;
    uv_buf_t buf;
};

static void fx_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows up as a read error */
    free(w->data);
}

static int fx_send(struct fx *f, int type, const void *payload, size_t len)
{
    struct fx_write *w = malloc(sizeof *w + KZ_CONS__FRAME_HEADER + len);
    if (w == NULL)
        return KZ_ENOMEM;
    unsigned char *p = (unsigned char *)(w + 1);
    kz_put_be32(p, (uint32_t)(KZ_CONS__FRAME_HEADER - 4 + len));
    p[4] = (unsigned char)type;
    kz_put_be64(p + 5, ++f->reqid);
    memcpy(p + KZ_CONS__FRAME_HEADER, payload, len);
    w->buf = uv_buf_init((char *)p, (unsigned)(KZ_CONS__FRAME_HEADER + len));
    w->w.data = w;
    if (uv_write(&w->w, f->s, &w->buf, 1, fx_written) != 0) {
        free(w);
        return KZ_ENET;
    }
    return KZ_OK;
}

static int fx_save_progress(struct fx *f)
{
    char tmp[4400], path[4400];
    snprintf(tmp, sizeof tmp, "%s/.progress.tmp", f->dir);
    snprintf(path, sizeof path, "%s/.progress", f->dir);
    FILE *fp = fopen(tmp, "w");
    if (fp == NULL)
        return fx_local_error(f, "%s: %s", tmp, strerror(errno));
    for (unsigned i = 0; i < f->info.n; i++)
        if (f->progress[i] > 0)
            fprintf(fp, "%s %" PRIu64 "\n", f->info.files[i].name,
                    f->progress[i]);
    int bad = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    if (fclose(fp) != 0 || bad || rename(tmp, path) != 0)
        return fx_local_error(f, "%s: %s", path, strerror(errno));
    return KZ_OK;
}

/* What an earlier, interrupted fetch of the same checkpoint got durably. */
static void fx_load_progress(struct fx *f)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/.progress", f->dir);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return;
    char name[KZ_CKPT_NAME_MAX + 1];
    uint64_t v;
    while (fscanf(fp, "%128s %" SCNu64, name, &v) == 2) {
        struct kz_fs_file key;
        memcpy(key.name, name, sizeof name);
        struct kz_fs_file *hit = bsearch(
            &key, f->info.files, f->info.n, sizeof key, name_cmp);
        if (hit == NULL)
            continue;
        unsigned i = (unsigned)(hit - f->info.files);
        char fp2[4600];
        struct stat sb;
        snprintf(fp2, sizeof fp2, "%s/%s", f->dir, hit->name);
        if (v <= hit->size && stat(fp2, &sb) == 0 &&
            (uint64_t)sb.st_size >= v)
            f->progress[i] = v;
    }
    fclose(fp);
}

static void fx_open_file(struct fx *f);

static void fx_complete(struct fx *f)
{
    char path[4400], final[4400];
    snprintf(path, sizeof path, "%s/.progress", f->dir);
    unlink(path);
    kz_cons__ckpt_path(f->a->root, f->info.index, final, sizeof final);
    if (kz_fs_fsync_dir(f->dir) != KZ_OK || rename(f->dir, final) != 0 ||
        kz_fs_fsync_dir(f->a->root) != KZ_OK) {
        fx_local_error(f, "%s: %s", final, strerror(errno));
        return;
    }
    uint64_t ms = fx_now(f) - f->t0, rss, peak;
    kz_cons__rss_mb(&rss, &peak);
    kz_log_node(f->a->self_id, KZ_LOG_INFO, "snapshot fetched",
                "index=%llu from=%llu files=%u bytes=%llu new_bytes=%llu "
                "ms=%llu rss_mb=%llu peak_rss_mb=%llu",
                (unsigned long long)f->info.index,
                (unsigned long long)f->a->sources[f->src].id, f->info.n,
                (unsigned long long)f->info.total,
                (unsigned long long)f->bytes_fetched, (unsigned long long)ms,
                (unsigned long long)rss, (unsigned long long)peak);
    f->got = f->info.index;
    fx_finish(f, KZ_OK);
}

static void fx_pump(struct fx *f)
{
    const struct kz_fs_file *file = &f->info.files[f->file];
    while (f->count < f->window && f->next_off < file->size) {
        uint64_t left = file->size - f->next_off;
        uint32_t n = left < KZ_CKPT_CHUNK ? (uint32_t)left : KZ_CKPT_CHUNK;
        unsigned char req[KZ_CKPT_GET_MAX];
        size_t l = kz_cons__ckpt_get_build(f->info.index, f->next_off, n,
                                           file->name, req);
        if (l == 0 || fx_send(f, KZ_F_CKPT_GET, req, l) != KZ_OK) {
            fx_source_failed(f, "cannot send a request");
            return;
        }
        struct slot *s = &f->win[(f->head + f->count) % WINDOW_MAX];
        s->reqid = f->reqid;
        s->off = f->next_off;
        s->len = n;
        f->count++;
        f->next_off += n;
    }
}

/* Opens the next file not yet complete and asks for its chunks; when none
 * is left, the checkpoint is complete. */
static void fx_open_file(struct fx *f)
{
    while (f->file < f->info.n &&
           f->progress[f->file] == f->info.files[f->file].size)
        f->file++;
    if (f->file == f->info.n) {
        fx_complete(f);
        return;
    }
    char path[4600];
    snprintf(path, sizeof path, "%s/%s", f->dir, f->info.files[f->file].name);
    f->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        fx_local_error(f, "%s: %s", path, strerror(errno));
        return;
    }
    f->next_off = f->written = f->synced = f->progress[f->file];
    fx_pump(f);
}

static int fx_file_done(struct fx *f)
{
    const struct kz_fs_file *file = &f->info.files[f->file];
    if (ftruncate(f->fd, (off_t)file->size) != 0 || fsync(f->fd) != 0)
        return fx_local_error(f, "%s: %s", file->name, strerror(errno));
    close(f->fd);
    f->fd = -1;
    f->progress[f->file] = file->size;
    return fx_save_progress(f);
}

/* Sets up <root>/incoming-<index> for the checkpoint just listed. */
static void fx_begin(struct fx *f)
{
    const char *root = f->a->root;
    snprintf(f->dir, sizeof f->dir, "%s/incoming-%020" PRIu64, root,
             f->info.index);
    kz_cons__ckpt_prune(root, UINT32_MAX, f->info.index);
    if (mkdir(f->dir, 0700) != 0 && errno != EEXIST) {
        fx_local_error(f, "%s: %s", f->dir, strerror(errno));
        return;
    }
    free(f->progress);
    f->progress = calloc(f->info.n ? f->info.n : 1, sizeof *f->progress);
    if (f->progress == NULL) {
        fx_local_error(f, "out of memory");
        return;
    }
    fx_load_progress(f);
    uint64_t need = 0, have = 0;
    for (unsigned i = 0; i < f->info.n; i++) {
        need += f->info.files[i].size - f->progress[i];
        have += f->progress[i];
        if (f->info.files[i].size == 0) { /* nothing to ask for */
            char path[4600];
            snprintf(path, sizeof path, "%s/%s", f->dir,
                     f->info.files[i].name);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                          0600);
            if (fd < 0 || fsync(fd) != 0) {
                if (fd >= 0)
                    close(fd);
                fx_local_error(f, "%s: %s", path, strerror(errno));
                return;
            }
            close(fd);
        }
    }
    struct statvfs sv;
    if (statvfs(root, &sv) == 0) {
        uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
        if (avail < need + (64ull << 20)) {
            fx_local_error(f,
                           "snapshot %llu needs %llu MB more, only %llu MB "
                           "free in %s",
                           (unsigned long long)f->info.index,
                           (unsigned long long)(need >> 20),
                           (unsigned long long)(avail >> 20), root);
            return;
        }
    }
    kz_log_node(f->a->self_id, KZ_LOG_INFO, "fetching snapshot",
                "index=%llu from=%llu files=%u bytes_needed=%llu resuming=%s",
                (unsigned long long)f->info.index,
                (unsigned long long)f->a->sources[f->src].id, f->info.n,
                (unsigned long long)need, have > 0 ? "true" : "false");
    f->file = 0;
    fx_open_file(f);
}

static void fx_on_info(struct fx *f, const unsigned char *p, size_t len)
{
    if (!f->listing) {
        fx_source_failed(f, "an answer nobody asked for");
        return;
    }
    f->listing = false;
    struct kz_cons__ckpt_info info;
    int rv = kz_cons__ckpt_info_parse(p, len, &info);
    if (rv == KZ_ENOMEM) {
        fx_local_error(f, "out of memory");
        return;
    }
    if (rv == KZ_ECORRUPT) {
        fx_source_failed(f, "malformed list");
        return;
    }
    if (rv != KZ_OK || info.index < f->a->min_index) {
        kz_cons__ckpt_info_free(&info);
        fx_source_failed(f, "has no checkpoint that recent");
        return;
    }
    kz_cons__ckpt_info_free(&f->info);
    f->info = info;
    f->have_info = true;
    fx_begin(f);
}

static void fx_on_data(struct fx *f, uint64_t reqid, const unsigned char *p,
                       size_t len)
{
    if (f->count == 0 || f->win[f->head].reqid != reqid) {
        fx_source_failed(f, "an answer out of order");
        return;
    }
    struct slot s = f->win[f->head];
    const struct kz_fs_file *file = &f->info.files[f->file];
    if (len < 4 || kz_get_be32(p) != 0) {
        fx_source_failed(f, "no longer has the checkpoint");
        return;
    }
    if (len != KZ_CKPT_DATA_HEADER + s.len) {
        fx_source_failed(f, "a chunk of the wrong length");
        return;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(p + KZ_CKPT_DATA_HEADER, s.len, md, &mdlen, EVP_sha256(),
                    NULL) ||
        memcmp(md, p + 4, 32) != 0) {
        fx_source_failed(f, "a chunk failed its checksum");
        return;
    }
    size_t done = 0;
    while (done < s.len) {
        ssize_t w = pwrite(f->fd, p + KZ_CKPT_DATA_HEADER + done,
                           s.len - done, (off_t)(s.off + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fx_local_error(f, "%s/%s: %s", f->dir, file->name,
                           strerror(w < 0 ? errno : ENOSPC));
            return;
        }
        done += (size_t)w;
    }
    f->head = (f->head + 1) % WINDOW_MAX;
    f->count--;
    f->written += s.len;
    f->bytes_fetched += s.len;
    if (f->written == file->size) {
        if (fx_file_done(f) != KZ_OK)
            return;
        f->file++;
        fx_open_file(f);
        return;
    }
    if (f->written - f->synced >= SYNC_EVERY) {
        if (fdatasync(f->fd) != 0) {
            fx_local_error(f, "%s: %s", file->name, strerror(errno));
            return;
        }
        f->synced = f->written;
        f->progress[f->file] = f->written;
        if (fx_save_progress(f) != KZ_OK)
            return;
    }
    fx_pump(f);
}

static void fx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fx *f = h->data;
    (void)suggested;
    if (f->rcap - f->rlen < 65536) {
        size_t ncap = f->rcap ? f->rcap * 2 : (2u << 20);
        char *n = realloc(f->rbuf, ncap);
        if (n == NULL) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        f->rbuf = n;
        f->rcap = ncap;
    }
    *buf = uv_buf_init(f->rbuf + f->rlen, (unsigned)(f->rcap - f->rlen));
}

static void fx_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fx *f = s->data;
    (void)buf;
    if (f->finished || f->s != s)
        return;
    if (n < 0) {
        fx_source_failed(f, "connection lost");
        return;
    }
    f->rlen += (size_t)n;
    f->last_activity = fx_now(f);
    size_t off = 0;
    struct kz_cons__frame fr;
    int got;
    while ((got = kz_cons__frame_next((unsigned char *)f->rbuf, f->rlen, &off,
                                      &fr)) != 0) {
        if (got < 0) {
            fx_source_failed(f, "a malformed frame");
            return;
        }
        if (fr.type == KZ_F_CKPT_INFO)
            fx_on_info(f, fr.payload, fr.len);
        else if (fr.type == KZ_F_CKPT_DATA)
            fx_on_data(f, fr.reqid, fr.payload, fr.len);
        else
            fx_source_failed(f, "a frame of an unknown type");
        if (f->finished || f->s != s)
            return; /* the buffer was reset */
    }
    if (off > 0) {
        memmove(f->rbuf, f->rbuf + off, f->rlen - off);
        f->rlen -= off;
    }
}

static void fx_connected(void *data, int status, uv_stream_t *s)
{
    struct fx *f = data;
    f->pending = NULL;
    if (status == KZ_ECANCELED)
        return;
    if (status != 0) {
        fx_source_failed(f, "cannot connect");
        return;
    }
    if (f->finished) {
        uv_close((uv_handle_t *)s, on_stream_closed);
        return;
    }
    f->s = s;
    s->data = f;
    f->rlen = 0;
    f->last_activity = fx_now(f);
    uv_read_start(s, fx_alloc, fx_read);
    unsigned char req[8];
    kz_put_be64(req, f->a->min_index);
    f->listing = true;
    if (fx_send(f, KZ_F_CKPT_LIST, req, sizeof req) != KZ_OK)
        fx_source_failed(f, "cannot send a request");
}

static void fx_try_source(struct fx *f)
{
    const struct kz_cons__ckpt_source *s = &f->a->sources[f->src];
    f->waiting_retry = false;
    f->last_activity = fx_now(f);
    f->pending = kz_cons__tls_connect(f->tls, KZ_CHAN_PEER, s->id, s->addr,
                                      fx_connected, f);
    if (f->pending == NULL)
        fx_source_failed(f, "cannot connect");
}

static void fx_tick(uv_timer_t *t)
{
    struct fx *f = t->data;
    uint64_t now = fx_now(f);
    if (f->finished)
        return;
    if (now >= f->deadline) {
        snprintf(f->errmsg, f->errlen,
                 "no peer served a snapshot at or past index %llu within "
                 "%u s",
                 (unsigned long long)f->a->min_index,
                 (unsigned)((f->deadline - f->t0) / 1000));
        fx_finish(f, KZ_ETIMEDOUT);
        return;
    }
    if (f->waiting_retry) {
        if (now >= f->last_activity)
            fx_try_source(f);
        return;
    }
    unsigned idle = f->a->idle_timeout_ms ? f->a->idle_timeout_ms : 20000;
    if (now - f->last_activity > idle) {
        fx_source_failed(f, "no answer");
        return;
    }
    if (f->have_info && now - f->last_log >= 5000) {
        f->last_log = now;
        uint64_t have = 0;
        for (unsigned i = 0; i < f->info.n; i++)
            have += f->progress[i];
        if (f->file < f->info.n)
            have += f->written - f->progress[f->file];
        double secs = (double)(now - f->t0) / 1e3;
        kz_log_node(f->a->self_id, KZ_LOG_INFO, "snapshot fetch progress",
                    "index=%llu bytes=%llu total_bytes=%llu mb_per_s=%.0f",
                    (unsigned long long)f->info.index,
                    (unsigned long long)have,
                    (unsigned long long)f->info.total,
                    secs > 0 ? (double)(f->bytes_fetched >> 20) / secs : 0.0);
    }
}

static void fx_tls_closed(void *data)
{
    (void)data;
}

int kz_cons__ckpt_fetch(const struct kz_cons__ckpt_fetch_args *a,
                        struct kz_cons__ckpt_fetched *out, char *errmsg,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (a->n_sources == 0) {
        snprintf(errmsg, errlen, "no peer to fetch a snapshot from");
        return KZ_ETIMEDOUT;
    }
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return KZ_ENOMEM;
    f->a = a;
    f->fd = -1;
    f->errmsg = errmsg;
    f->errlen = errlen;
    f->window = a->window ? a->window : 4;
    if (f->window > WINDOW_MAX)
        f->window = WINDOW_MAX;
    if (uv_loop_init(&f->loop) != 0) {
        free(f);
        return KZ_ENOMEM;
    }
    int rv = kz_cons__tls_new(&f->tls, &f->loop, a->tls, errmsg, errlen);
    if (rv != 0) {
        uv_loop_close(&f->loop);
        free(f);
        return KZ_ECONFIG;
    }
    f->t0 = f->last_log = fx_now(f);
    f->deadline = f->t0 + (a->deadline_ms ? a->deadline_ms : 600000);
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
    uv_timer_start(&f->timer, fx_tick, 200, 200);
    fx_try_source(f);
    if (!f->finished)
        uv_run(&f->loop, UV_RUN_DEFAULT);

    /* Close everything, then let the loop run the close callbacks. */
    f->finished = true;
    if (f->s != NULL)
        uv_close((uv_handle_t *)f->s, on_stream_closed);
    f->s = NULL;
    if (f->pending != NULL)
        kz_cons__tls_cancel(f->tls, f->pending);
    if (f->fd >= 0)
        close(f->fd);
    uv_close((uv_handle_t *)&f->timer, NULL);
    kz_cons__tls_close(f->tls, fx_tls_closed, f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    kz_cons__tls_free(f->tls);
    if (uv_loop_close(&f->loop) != 0)
        kz_log_node(a->self_id, KZ_LOG_ERROR,
                    "snapshot fetch: a handle outlived its loop", NULL);
    rv = f->result;
    out->index = f->got;
    out->bytes = f->bytes_fetched;
    out->total = f->info.total;
    out->source = f->got ? f->a->sources[f->src].id : 0;
    kz_cons__ckpt_info_free(&f->info);
    free(f->progress);
    free(f->rbuf);
    free(f);
    return rv;
}
