/*
 * kz_fs.c — file-system helpers (see kz_fs.h).
 */
#define _XOPEN_SOURCE 700
#include "kz_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kz_error.h"

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) == 0 || errno == ENOENT ? 0 : -1;
    return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

int kz_fs_rmtree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? KZ_OK : KZ_EIO;
    if (!S_ISDIR(sb.st_mode))
        return unlink(path) == 0 ? KZ_OK : KZ_EIO;
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? KZ_OK
                                                               : KZ_EIO;
}

int kz_fs_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return KZ_EIO;
    int rv = fsync(fd) == 0 ? KZ_OK : KZ_EIO;
    close(fd);
    return rv;
}

bool kz_fs_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > KZ_FS_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-'))
            return false;
    }
    return true;
}

static int file_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kz_fs_file *)a)->name,
                  ((const struct kz_fs_file *)b)->name);
}

int kz_fs_list(const char *dir, size_t max, struct kz_fs_file **out,
               size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return KZ_ENOTFOUND;
    int dfd = dirfd(d);
    struct kz_fs_file *files = NULL;
    size_t cnt = 0, cap = 0;
    int rv = KZ_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        struct stat sb;
        if (!kz_fs_name_ok(e->d_name, l) ||
            fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(sb.st_mode))
            continue;
        if (cnt == max) {
            rv = KZ_ETOOBIG;
            break;
        }
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct kz_fs_file *nf = realloc(files, ncap * sizeof *files);
            if (nf == NULL) {
                rv = KZ_ENOMEM;
                break;
            }
            files = nf;
            cap = ncap;
        }
        memcpy(files[cnt].name, e->d_name, l + 1);
        files[cnt].size = (uint64_t)sb.st_size;
        cnt++;
    }
    closedir(d);
    if (rv != KZ_OK) {
        free(files);
        return rv;
    }
    if (cnt > 1)
        qsort(files, cnt, sizeof *files, file_cmp);
    *out = files;
    *n = cnt;
    return KZ_OK;
}
