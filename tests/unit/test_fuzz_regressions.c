/*
 * test_fuzz_regressions.c — every libFuzzer driver of tests/fuzz, run once
 * over each input of its committed seed corpus (tests/fuzz/corpus/<name>/)
 * and of its regressions (tests/fuzz/regressions/<name>/: inputs that once
 * crashed it, kept after the fix).
 *
 * The drivers are compiled into this test (tests/CMakeLists.txt) with
 * LLVMFuzzerTestOneInput renamed to kz_fuzz_<name>, so the properties they
 * check also run in the normal build and under ASan+UBSan in build-asan,
 * without clang or libFuzzer. A driver's property failure aborts; the input
 * being run is then printed before the process dies.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KZ_FUZZ_DRIVERS(X)                                                    \
    X(records)                                                                \
    X(command)                                                                \
    X(name_fold)                                                              \
    X(config)                                                                 \
    X(identity)                                                               \
    X(endpoints)                                                              \
    X(preamble)                                                               \
    X(linkcode)                                                               \
    X(match)                                                                  \
    X(zengin)                                                                 \
    X(card)                                                                   \
    X(payout_json)                                                            \
    X(history)                                                                \
    X(ckpt)                                                                   \
    X(csv)                                                                    \
    X(pfif)                                                                   \
    X(bench_http)

#define KZ__DECL(name) int kz_fuzz_##name(const uint8_t *data, size_t size);
KZ_FUZZ_DRIVERS(KZ__DECL)
#undef KZ__DECL

/* The input being run, for the crash report. */
static char current[1024];

static void say_current(void)
{
    if (current[0] != '\0') {
        static const char pre[] = "\nfuzz regression: crashed on ";
        (void)!write(2, pre, sizeof pre - 1);
        (void)!write(2, current, strlen(current));
        (void)!write(2, "\n", 1);
    }
}

static void on_fatal_signal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ASan calls this hook (when present) as it reports an error. */
void __asan_on_error(void);
void __asan_on_error(void)
{
    say_current();
}

static void *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            cr_assert_not_null(nb);
            buf = nb;
            cap *= 2;
        }
    }
    cr_assert(!ferror(f), "%s", path);
    fclose(f);
    *len = n;
    return buf;
}

/* Runs fn over every regular file of KZ_SOURCE_DIR/tests/fuzz/<sub>/<name>/;
 * returns how many (0 when the folder does not exist). */
static size_t run_dir(int (*fn)(const uint8_t *, size_t), const char *sub,
                      const char *name)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s/%s", KZ_SOURCE_DIR, sub, name);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(current, sizeof current, "%s/%s", dir, e->d_name);
        size_t len;
        void *data = read_all(current, &len);
        cr_assert_eq(fn(data, len), 0, "%s", current);
        free(data);
        count++;
    }
    current[0] = '\0';
    closedir(d);
    return count;
}

static void setup(void)
{
    signal(SIGABRT, on_fatal_signal);
    signal(SIGSEGV, on_fatal_signal);
    signal(SIGBUS, on_fatal_signal);
    signal(SIGFPE, on_fatal_signal);
}

TestSuite(fuzz_regressions, .init = setup);

/* Each driver: its seeds (at least one, or the corpus is missing) and its
 * regressions. */
#define KZ__TEST(name)                                                        \
    Test(fuzz_regressions, name)                                              \
    {                                                                         \
        size_t seeds = run_dir(kz_fuzz_##name, "corpus", #name);              \
        cr_assert_gt(seeds, 0, "no seed corpus for " #name);                  \
        run_dir(kz_fuzz_##name, "regressions", #name);                        \
    }
KZ_FUZZ_DRIVERS(KZ__TEST)
#undef KZ__TEST
