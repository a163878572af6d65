/*
 * fuzz_util.h — small helpers shared by the libFuzzer drivers of tests/fuzz
 * (and by tests/unit/test_fuzz_regressions.c, which compiles the drivers in).
 *
 * FUZZ_CHECK(cond) aborts with the failed condition: libFuzzer (and the
 * regression test) then report the input as a crash. It is used for the
 * properties a driver checks beyond "no sanitizer report".
 *
 * kz_fuzz_tmpdir() makes one private directory per process (per driver
 * translation unit) for drivers that need files: under $TMPDIR when set
 * (deploy/run-fuzz points it at its own temp dir), else /dev/shm when
 * present (fast, nothing on disk), else /tmp. The directory and what is in
 * it are removed at a normal exit; after a crash deploy/run-fuzz removes its
 * TMPDIR as a whole.
 */
#ifndef KZ_FUZZ_UTIL_H
#define KZ_FUZZ_UTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__,    \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* The directory's path, "" until made. (A function, so that a driver that
 * never makes one has no unused static variable.) */
static inline char *kz_fuzz__dir(void)
{
    static char dir[256];
    return dir;
}

static inline int kz_fuzz__rm_entry(const char *path, const struct stat *sb, int flag,
                             struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void kz_fuzz__rm_dir(void)
{
    if (kz_fuzz__dir()[0] != '\0')
        nftw(kz_fuzz__dir(), kz_fuzz__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The process's private directory (created on first call; aborts if it
 * cannot be made, since the driver could test nothing). `tag` names it. */
static inline const char *kz_fuzz_tmpdir(const char *tag)
{
    char *dir = kz_fuzz__dir();
    if (dir[0] != '\0')
        return dir;
    const char *base = getenv("TMPDIR");
    struct stat sb;
    if (base == NULL || base[0] == '\0')
        base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm"
                                                                   : "/tmp";
    snprintf(dir, 256, "%s/kz_fuzz_%s_XXXXXX", base, tag);
    if (mkdtemp(dir) == NULL) {
        perror(dir);
        abort();
    }
    atexit(kz_fuzz__rm_dir);
    return dir;
}

#endif
