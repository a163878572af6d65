/*
 * kz_fs.h — small file-system helpers shared by storage/ and consensus/.
 */
#ifndef KZ_FS_H
#define KZ_FS_H

/* rm -rf without following symlinks: KZ_OK once path is gone (or never
 * was), KZ_EIO otherwise. */
int kz_fs_rmtree(const char *path);
/* fsync of a directory (after creating, renaming or removing in it). */
int kz_fs_fsync_dir(const char *path);

#endif
