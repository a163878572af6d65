/*
 * kz_fs.c — file-system helpers (see kz_fs.h).
 */
#define _XOPEN_SOURCE 700
#include "kz_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
