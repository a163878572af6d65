/*
 * backup.c — online backups of this node's state (see backup.h).
 */
#include "backup.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "kz_error.h"
#include "kz_fs.h"
#include "kz_log.h"
#include "node.h"

#define BACKUP_KEEP_MS (24ll * 3600 * 1000)
#define BACKUP_FILES_MAX 100000

static void backups_dir(const struct kz_node *n, char *out, size_t len)
{
    snprintf(out, len, "%s/backups", n->cfg.data_dir);
}

/* "<20 digits>-<1..19 digits>": the only names a backup has. */
static bool valid_id(const char *id, int64_t *at_ms)
{
    size_t len = strlen(id);
    if (len < 22 || len > 40 || id[20] != '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (i != 20 && (id[i] < '0' || id[i] > '9'))
            return false;
    if (at_ms != NULL)
        *at_ms = strtoll(id + 21, NULL, 10);
    return true;
}

static int64_t now_ms(void)
{
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void prune_old(const struct kz_node *n, int64_t now)
{
    char dir[KZ_NODE_PATH_MAX + 16];
    backups_dir(n, dir, sizeof dir);
    struct kz_fs_file *files;
    size_t cnt;
    /* The manifests name the backups that are complete. */
    if (kz_fs_list(dir, BACKUP_FILES_MAX, &files, &cnt) != KZ_OK)
        return;
    for (size_t i = 0; i < cnt; i++) {
        char id[KZ_FS_NAME_MAX + 1];
        size_t l = strlen(files[i].name);
        int64_t at;
        if (l < 6 || strcmp(files[i].name + l - 5, ".json") != 0)
            continue;
        memcpy(id, files[i].name, l - 5);
        id[l - 5] = '\0';
        if (valid_id(id, &at) && now - at > BACKUP_KEEP_MS)
            kz_node_backup_delete((struct kz_node *)n, id);
    }
    free(files);
}

static int write_manifest(const char *path, json_t *m)
{
    char tmp[KZ_NODE_PATH_MAX + 128];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(m, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0)
        return KZ_EIO;
    FILE *f = fopen(tmp, "r+");
    int rv = f != NULL && fsync(fileno(f)) == 0 ? KZ_OK : KZ_EIO;
    if (f != NULL)
        fclose(f);
    if (rv == KZ_OK && rename(tmp, path) != 0)
        rv = KZ_EIO;
    return rv;
}

int kz_node_backup_create(struct kz_node *n, const char *request_id,
                          json_t **manifest, char *err, size_t errlen)
{
    char dir[KZ_NODE_PATH_MAX + 16];
    backups_dir(n, dir, sizeof dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return KZ_EIO;
    }
    int64_t at = now_ms();
    prune_old(n, at);
    uint64_t index = kz_stor_applied_index(n->stor);
    char id[64], path[KZ_NODE_PATH_MAX + 96], mpath[KZ_NODE_PATH_MAX + 128];
    /* Two backups in the same millisecond at the same index: the second
     * takes the next free millisecond (the checkpoint refuses an existing
     * directory, and the cleanup below would remove the first backup). */
    for (int tries = 0;; tries++, at++) {
        struct stat sb;
        snprintf(id, sizeof id, "%020" PRIu64 "-%" PRId64, index, at);
        snprintf(path, sizeof path, "%s/%s", dir, id);
        if (lstat(path, &sb) != 0 && errno == ENOENT)
            break;
        if (tries == 1000) {
            snprintf(err, errlen, "%s: no free backup id", dir);
            return KZ_EIO;
        }
    }
    snprintf(mpath, sizeof mpath, "%s.json", path);
    int rv = kz_stor_checkpoint(n->stor, path);
    if (rv != KZ_OK) {
        snprintf(err, errlen, "%s", kz_stor_errmsg(n->stor));
        kz_fs_rmtree(path);
        return rv;
    }
    struct kz_fs_file *files;
    size_t cnt;
    rv = kz_fs_list(path, BACKUP_FILES_MAX, &files, &cnt);
    if (rv != KZ_OK) {
        snprintf(err, errlen, "%s: cannot list the checkpoint", path);
        kz_fs_rmtree(path);
        return rv;
    }
    json_t *list = json_array();
    uint64_t total = 0;
    for (size_t i = 0; i < cnt; i++) {
        json_array_append_new(list, json_pack("{s:s,s:I}", "name",
                                              files[i].name, "size",
                                              (json_int_t)files[i].size));
        total += files[i].size;
    }
    free(files);
    json_t *m = json_pack(
        "{s:s,s:I,s:s,s:s,s:I,s:I,s:i,s:I,s:o}", "id", id, "node",
        (json_int_t)n->cfg.id, "region", n->cfg.region, "municipality",
        n->cfg.municipality, "applied_index", (json_int_t)index,
        "created_at_ms", (json_int_t)at, "store_format",
        KZ_STOR_FORMAT_VERSION, "bytes", (json_int_t)total, "files", list);
    if (m == NULL || kz_fs_fsync_dir(path) != KZ_OK ||
        write_manifest(mpath, m) != KZ_OK || kz_fs_fsync_dir(dir) != KZ_OK) {
        snprintf(err, errlen, "%s: cannot write the manifest", mpath);
        json_decref(m);
        kz_fs_rmtree(path);
        kz_fs_rmtree(mpath);
        return KZ_EIO;
    }
    kz_log(KZ_LOG_INFO, "backup created",
           "backup=%s files=%zu bytes=%llu index=%llu request_id=%s", id, cnt,
           (unsigned long long)total, (unsigned long long)index, request_id);
    *manifest = m;
    return KZ_OK;
}

int kz_node_backup_manifest(struct kz_node *n, const char *id,
                            json_t **manifest)
{
    if (!valid_id(id, NULL))
        return KZ_ENOTFOUND;
    char dir[KZ_NODE_PATH_MAX + 16], path[KZ_NODE_PATH_MAX + 128];
    backups_dir(n, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    json_error_t je;
    *manifest = json_load_file(path, 0, &je);
    return *manifest != NULL ? KZ_OK : KZ_ENOTFOUND;
}

int kz_node_backup_file(struct kz_node *n, const char *id, const char *name,
                        char *path, size_t len)
{
    if (!kz_fs_name_ok(name, strlen(name)))
        return KZ_EINVAL;
    if (!valid_id(id, NULL))
        return KZ_ENOTFOUND;
    char dir[KZ_NODE_PATH_MAX + 16];
    backups_dir(n, dir, sizeof dir);
    snprintf(path, len, "%s/%s/%s", dir, id, name);
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return KZ_ENOTFOUND;
    return KZ_OK;
}

int kz_node_backup_delete(struct kz_node *n, const char *id)
{
    if (!valid_id(id, NULL))
        return KZ_ENOTFOUND;
    char dir[KZ_NODE_PATH_MAX + 16], path[KZ_NODE_PATH_MAX + 128];
    backups_dir(n, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return KZ_ENOTFOUND;
    /* The manifest goes first: without it the backup is not complete. */
    if (unlink(path) != 0)
        return KZ_EIO;
    snprintf(path, sizeof path, "%s/%s", dir, id);
    return kz_fs_rmtree(path);
}
