/*
 * audit_queue.c — the durable local queue of audit records (audit_queue.h).
 */
#include "audit_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kz_endian.h"
#include "kz_error.h"
#include "kz_log.h"
#include "state_store.h"

#define HEADER 16
#define FILE_HEADER 12 /* "KZAQ" | u64 queue id */
#define RECORD_MAX (1u << 20)

struct entry {
    uint64_t seq;
    uint8_t *payload;
    size_t len;
};

struct kz_node_audit_queue {
    int fd;
    uint64_t id;
    uint64_t next_seq;
    struct entry *e;
    size_t n, cap;
    off_t end; /* the file's size: where the next record goes */
    /* Staged records, in the file's format with seq and CRC still to
     * fill in (kz_node_audit_queue_begin), and the batch being written. */
    unsigned char *stage;
    size_t stage_len, stage_cap, stage_n;
    unsigned char *io;
    size_t io_len, io_cap;
    uint64_t io_first_seq;
    bool io_busy;
};

static uint32_t record_crc(const unsigned char *seq_be, const void *p,
                           size_t n)
{
    unsigned char *buf = malloc(8 + n);
    if (buf == NULL)
        return 0;
    memcpy(buf, seq_be, 8);
    memcpy(buf + 8, p, n);
    uint32_t c = kz_stor_crc32c(buf, 8 + n);
    free(buf);
    return c;
}

static int keep(struct kz_node_audit_queue *q, uint64_t seq,
                const void *payload, size_t len)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct entry *e = realloc(q->e, cap * sizeof *e);
        if (e == NULL)
            return KZ_ENOMEM;
        q->e = e;
        q->cap = cap;
    }
    uint8_t *p = malloc(len ? len : 1);
    if (p == NULL)
        return KZ_ENOMEM;
    memcpy(p, payload, len);
    q->e[q->n++] = (struct entry){seq, p, len};
    return KZ_OK;
}

/* Reads the file header, or writes one with a new random queue id. */
static int file_header(struct kz_node_audit_queue *q)
{
    unsigned char h[FILE_HEADER];
    ssize_t got = pread(q->fd, h, FILE_HEADER, 0);
    if (got == FILE_HEADER && memcmp(h, "KZAQ", 4) == 0) {
        q->id = kz_get_be64(h + 4);
        return KZ_OK;
    }
    if (got != 0)
        return KZ_ECORRUPT;
    if (getrandom(&q->id, sizeof q->id, 0) != sizeof q->id)
        return KZ_EIO;
    q->id &= 0x7fffffffffffffffull;
    memcpy(h, "KZAQ", 4);
    kz_put_be64(h + 4, q->id);
    if (pwrite(q->fd, h, FILE_HEADER, 0) != FILE_HEADER ||
        fdatasync(q->fd) != 0)
        return KZ_EIO;
    return KZ_OK;
}

int kz_node_audit_queue_open(struct kz_node_audit_queue **out,
                             const char *path, char *errmsg, size_t errlen)
{
    struct kz_node_audit_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return KZ_ENOMEM;
    q->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (q->fd < 0) {
        snprintf(errmsg, errlen, "%s: %s", path, strerror(errno));
        free(q);
        return KZ_EIO;
    }
    int hrv = file_header(q);
    if (hrv != KZ_OK) {
        snprintf(errmsg, errlen, "%s: %s", path,
                 hrv == KZ_ECORRUPT ? "not an audit queue file"
                                    : strerror(errno));
        close(q->fd);
        free(q);
        return hrv;
    }
    q->next_seq = 1;
    /* Read every whole, checked record; cut the file after the last. */
    off_t good = FILE_HEADER;
    unsigned char h[HEADER];
    for (;;) {
        if (pread(q->fd, h, HEADER, good) != HEADER)
            break;
        uint32_t len = kz_get_be32(h);
        if (len > RECORD_MAX)
            break;
        uint8_t *p = malloc(len ? len : 1);
        if (p == NULL)
            break;
        if (pread(q->fd, p, len, good + HEADER) != (ssize_t)len ||
            record_crc(h + 8, p, len) != kz_get_be32(h + 4)) {
            free(p);
            break;
        }
        uint64_t seq = kz_get_be64(h + 8);
        if (keep(q, seq, p, len) != KZ_OK) {
            free(p);
            break;
        }
        free(p);
        if (seq >= q->next_seq)
            q->next_seq = seq + 1;
        good += HEADER + len;
    }
    struct stat sb;
    if (fstat(q->fd, &sb) == 0 && sb.st_size != good) {
        kz_log(KZ_LOG_WARN, "audit queue: unfinished record cut",
               "path=%s bytes=%lld", path, (long long)(sb.st_size - good));
        if (ftruncate(q->fd, good) != 0 || fdatasync(q->fd) != 0) {
            snprintf(errmsg, errlen, "%s: %s", path, strerror(errno));
            kz_node_audit_queue_close(q);
            return KZ_EIO;
        }
    }
    q->end = good;
    *out = q;
    return KZ_OK;
}

void kz_node_audit_queue_close(struct kz_node_audit_queue *q)
{
    if (q == NULL)
        return;
    if (q->fd >= 0)
        close(q->fd);
    for (size_t i = 0; i < q->n; i++)
        free(q->e[i].payload);
    free(q->e);
    free(q->stage);
    free(q->io);
    free(q);
}

int kz_node_audit_queue_stage(struct kz_node_audit_queue *q,
                              const Kizuna__AuditContext *ctx)
{
    size_t len = kizuna__audit_context__get_packed_size(ctx);
    if (len > RECORD_MAX)
        return KZ_ETOOBIG;
    if (q->stage_len + HEADER + len > q->stage_cap) {
        size_t cap = q->stage_cap ? q->stage_cap : 4096;
        while (cap < q->stage_len + HEADER + len)
            cap *= 2;
        unsigned char *b = realloc(q->stage, cap);
        if (b == NULL)
            return KZ_ENOMEM;
        q->stage = b;
        q->stage_cap = cap;
    }
    unsigned char *rec = q->stage + q->stage_len;
    kz_put_be32(rec, (uint32_t)len);
    kizuna__audit_context__pack(ctx, rec + HEADER);
    q->stage_len += HEADER + len;
    q->stage_n++;
    return KZ_OK;
}

size_t kz_node_audit_queue_staged(const struct kz_node_audit_queue *q)
{
    return q->stage_n;
}

int kz_node_audit_queue_begin(struct kz_node_audit_queue *q)
{
    if (q->io_busy || q->stage_n == 0)
        return KZ_EINVAL;
    /* seq and CRC now, in order: numbers are consecutive in the file */
    q->io_first_seq = q->next_seq;
    for (size_t off = 0; off < q->stage_len;) {
        unsigned char *rec = q->stage + off;
        uint32_t len = kz_get_be32(rec);
        kz_put_be64(rec + 8, q->next_seq++);
        /* the CRC covers seq | payload, which follow each other */
        kz_put_be32(rec + 4, kz_stor_crc32c(rec + 8, 8 + (size_t)len));
        off += HEADER + len;
    }
    unsigned char *b = q->io;
    size_t cap = q->io_cap;
    q->io = q->stage;
    q->io_cap = q->stage_cap;
    q->io_len = q->stage_len;
    q->stage = b;
    q->stage_cap = cap;
    q->stage_len = q->stage_n = 0;
    q->io_busy = true;
    return KZ_OK;
}

int kz_node_audit_queue_write(struct kz_node_audit_queue *q)
{
    size_t done = 0;
    while (done < q->io_len) {
        ssize_t w = pwrite(q->fd, q->io + done, q->io_len - done,
                           q->end + (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return KZ_EIO;
        done += (size_t)w;
    }
    return fdatasync(q->fd) == 0 ? KZ_OK : KZ_EIO;
}

int kz_node_audit_queue_end(struct kz_node_audit_queue *q, int status)
{
    if (!q->io_busy) /* begin refused: no batch */
        return status != KZ_OK ? status : KZ_EINVAL;
    q->io_busy = false;
    if (status != KZ_OK) {
        /* Not durable: gone, numbers and all, as if never staged. A torn
         * tail left by a failed cut is cut at the next open. */
        q->next_seq = q->io_first_seq;
        if (ftruncate(q->fd, q->end) != 0)
            kz_log(KZ_LOG_WARN, "audit queue: cannot cut a failed write",
                   "error=%s", strerror(errno));
        return status;
    }
    /* On disk whatever follows: the next batch goes after it. */
    q->end += (off_t)q->io_len;
    for (size_t off = 0; off < q->io_len;) {
        const unsigned char *rec = q->io + off;
        uint32_t len = kz_get_be32(rec);
        int rv = keep(q, kz_get_be64(rec + 8), rec + HEADER, len);
        if (rv != KZ_OK)
            return rv; /* the next open reads the rest from the file */
        off += HEADER + len;
    }
    return KZ_OK;
}

int kz_node_audit_queue_command(struct kz_node_audit_queue *q,
                                uint64_t handed, size_t max,
                                const char *muni,
                                int64_t now_ms, uint8_t **cmd, size_t *len,
                                size_t *count)
{
    *cmd = NULL;
    *len = 0;
    *count = 0;
    size_t first = 0;
    while (first < q->n && q->e[first].seq <= handed)
        first++;
    size_t n = q->n - first < max ? q->n - first : max;
    if (n == 0)
        return KZ_OK;
    Kizuna__AuditContext **ctx = calloc(n, sizeof *ctx);
    if (ctx == NULL)
        return KZ_ENOMEM;
    int rv = KZ_OK;
    size_t got = 0;
    for (; got < n; got++) {
        const struct entry *e = &q->e[first + got];
        /* Queue numbers are consecutive (one writer, never reused). */
        if (e->seq != q->e[first].seq + got)
            break;
        ctx[got] = kizuna__audit_context__unpack(NULL, e->len, e->payload);
        if (ctx[got] == NULL) {
            rv = KZ_ECORRUPT;
            break;
        }
    }
    if (rv == KZ_OK && got > 0) {
        Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
        aa.n_entries = got;
        aa.entries = ctx;
        aa.has_queue_node = aa.has_queue_first_seq = 1;
        aa.queue_node = q->id;
        aa.queue_first_seq = q->e[first].seq;
        Kizuna__Command c = KIZUNA__COMMAND__INIT;
        c.has_time_ms = 1;
        c.time_ms = now_ms;
        c.municipality = (char *)muni;
        c.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
        c.audit_append = &aa;
        *len = kizuna__command__get_packed_size(&c);
        *cmd = malloc(*len ? *len : 1);
        if (*cmd == NULL)
            rv = KZ_ENOMEM;
        else {
            kizuna__command__pack(&c, *cmd);
            *count = got;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (ctx[i] != NULL)
            kizuna__audit_context__free_unpacked(ctx[i], NULL);
    free(ctx);
    return rv;
}

uint64_t kz_node_audit_queue_id(const struct kz_node_audit_queue *q)
{
    return q->id;
}

int kz_node_audit_queue_trim(struct kz_node_audit_queue *q, uint64_t handed)
{
    if (q->next_seq <= handed)
        q->next_seq = handed + 1;
    size_t drop = 0;
    while (drop < q->n && q->e[drop].seq <= handed)
        free(q->e[drop++].payload);
    if (drop == 0)
        return KZ_OK;
    memmove(q->e, q->e + drop, (q->n - drop) * sizeof *q->e);
    q->n -= drop;
    if (q->n == 0 && !q->io_busy) {
        /* Everything is in the replicated log: start the file again (not
         * while a batch is being written after the end). The queue
         * numbers go on from next_seq. */
        if (ftruncate(q->fd, FILE_HEADER) != 0)
            return KZ_EIO;
        q->end = FILE_HEADER;
    }
    return KZ_OK;
}

size_t kz_node_audit_queue_length(const struct kz_node_audit_queue *q)
{
    return q ? q->n : 0;
}

uint64_t kz_node_audit_queue_handed(kz_stor *st, uint64_t queue_id)
{
    char key[48];
    int kl = snprintf(key, sizeof key, "auditq/%llu",
                      (unsigned long long)queue_id);
    char *v;
    size_t vl;
    uint64_t done = 0;
    if (kz_stor_get(st, KZ_STOR_CF_META, key, (size_t)kl, &v, &vl) == KZ_OK) {
        if (vl == 8)
            done = kz_get_be64((unsigned char *)v);
        free(v);
    }
    return done;
}
