/*
 * kz_fs.h — small file-system helpers shared by storage/ and consensus/.
 */
#ifndef KZ_FS_H
#define KZ_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* rm -rf without following symlinks: KZ_OK once path is gone (or never
 * was), KZ_EIO otherwise. */
int kz_fs_rmtree(const char *path);
/* fsync of a directory (after creating, renaming or removing in it). */
int kz_fs_fsync_dir(const char *path);

/* A plain file name that cannot leave its directory: 1..128 bytes of
 * [A-Za-z0-9._-], not starting with '.'. */
#define KZ_FS_NAME_MAX 128
bool kz_fs_name_ok(const char *name, size_t len);

struct kz_fs_file {
    char name[KZ_FS_NAME_MAX + 1];
    uint64_t size;
};
/* The regular files of dir whose names pass kz_fs_name_ok (others, and
 * symlinks, are skipped), sorted by name, at most max of them: KZ_OK with
 * a malloc'd *out (free()) and *n; KZ_ENOTFOUND when dir cannot be opened;
 * KZ_ETOOBIG past max; KZ_ENOMEM. */
int kz_fs_list(const char *dir, size_t max, struct kz_fs_file **out,
               size_t *n);

#endif
