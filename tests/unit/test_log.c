/*
 * test_log.c — the logfmt log (storage/kz_log): the fixed fields, quoting
 * and escaping read back by a small logfmt parser, NULL values leaving their
 * pair out, level filtering and parsing, long lines cut, and one call being
 * exactly one line, also from two threads at once.
 *
 * stderr (fd 2) is pointed at a temporary file around each call; Criterion
 * runs every test in its own process, so the level and node set here stay
 * here.
 */
#include "kz_log.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kz_error.h"

/* ------------------------------------------------- capturing stderr */

static char cap_path[64];
static int cap_fd = -1, saved_fd = -1;

static void capture_start(void)
{
    snprintf(cap_path, sizeof cap_path, "/tmp/kz_log_XXXXXX");
    cap_fd = mkstemp(cap_path);
    cr_assert_geq(cap_fd, 0);
    int fl = fcntl(cap_fd, F_GETFL);
    cr_assert_eq(fcntl(cap_fd, F_SETFL, fl | O_APPEND), 0);
    saved_fd = dup(STDERR_FILENO);
    cr_assert_geq(saved_fd, 0);
    cr_assert_eq(dup2(cap_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Stops capturing; what was written (caller frees). */
static char *capture_end(void)
{
    cr_assert_eq(dup2(saved_fd, STDERR_FILENO), STDERR_FILENO);
    close(saved_fd);
    off_t len = lseek(cap_fd, 0, SEEK_END);
    cr_assert_geq(len, 0);
    char *text = malloc((size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(pread(cap_fd, text, (size_t)len, 0), len);
    text[len] = '\0';
    close(cap_fd);
    unlink(cap_path);
    return text;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* ------------------------------------------------- a logfmt parser */

#define MAX_PAIRS 32

struct pair {
    char key[64];
    char value[KZ_LOG_LINE_MAX];
    bool quoted;
};

struct parsed {
    struct pair p[MAX_PAIRS];
    int n;
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses one line (without its '\n') strictly: pairs key=value separated by
 * single spaces, keys of [a-z0-9_], values bare (no space, '=', '"', '\' or
 * control character) or quoted with the escapes of kz_log.h. false on any
 * deviation. */
static bool parse_line(const char *s, struct parsed *out)
{
    out->n = 0;
    while (*s != '\0') {
        if (out->n == MAX_PAIRS)
            return false;
        struct pair *p = &out->p[out->n++];
        size_t k = 0;
        while ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
               *s == '_') {
            if (k + 1 >= sizeof p->key)
                return false;
            p->key[k++] = *s++;
        }
        p->key[k] = '\0';
        if (k == 0 || *s++ != '=')
            return false;
        size_t v = 0;
        p->quoted = *s == '"';
        if (p->quoted) {
            s++;
            while (*s != '"') {
                unsigned char c = (unsigned char)*s;
                if (c == '\0' || c < 0x20 || c == 0x7f)
                    return false;
                if (c == '\\') {
                    s++;
                    switch (*s) {
                    case '"':
                    case '\\':
                        c = (unsigned char)*s;
                        break;
                    case 'n':
                        c = '\n';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'u':
                        if (strncmp(s + 1, "00", 2) != 0 ||
                            hexval(s[3]) < 0 || hexval(s[4]) < 0)
                            return false;
                        c = (unsigned char)(hexval(s[3]) * 16 + hexval(s[4]));
                        s += 4;
                        break;
                    default:
                        return false;
                    }
                }
                if (v + 1 >= sizeof p->value)
                    return false;
                p->value[v++] = (char)c;
                s++;
            }
            s++;
        } else {
            while (*s != '\0' && *s != ' ') {
                unsigned char c = (unsigned char)*s;
                if (c < 0x20 || c == 0x7f || c == '=' || c == '"' || c == '\\')
                    return false;
                p->value[v++] = *s++;
            }
            if (v == 0)
                return false; /* an empty value is always quoted */
        }
        p->value[v] = '\0';
        if (*s == ' ') {
            s++;
            if (*s == '\0' || *s == ' ')
                return false;
        } else if (*s != '\0') {
            return false;
        }
    }
    return out->n > 0;
}

static const struct pair *get(const struct parsed *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->p[i].key, key) == 0)
            return &l->p[i];
    return NULL;
}

/* The one line of text, parsed; fails the test unless text is exactly one
 * '\n'-terminated line that parses. */
static void one_line(const char *text, struct parsed *out)
{
    cr_assert_eq(count_lines(text), 1, "not one line: [%s]", text);
    size_t len = strlen(text);
    cr_assert(len > 0 && text[len - 1] == '\n', "no final newline: [%s]",
              text);
    char *copy = strndup(text, len - 1);
    cr_assert_not_null(copy);
    cr_assert(parse_line(copy, out), "not logfmt: [%s]", copy);
    free(copy);
}

static void assert_value(const struct parsed *l, const char *key,
                         const char *want)
{
    const struct pair *p = get(l, key);
    cr_assert_not_null(p, "no %s", key);
    cr_assert_str_eq(p->value, want, "%s", key);
}

/* ------------------------------------------------------------- tests */

Test(log, fixed_fields_come_first)
{
    kz_log_set_node(7);
    capture_start();
    kz_log(KZ_LOG_INFO, "snapshot fetched", "index=%llu bytes=%zu from=%d",
           4096ull, (size_t)1048576, 3);
    char *text = capture_end();
    struct parsed l;
    one_line(text, &l);
    cr_assert_eq(l.n, 7, "%s", text);
    const char *order[] = {"ts", "level", "node", "msg", "index", "bytes",
                           "from"};
    for (int i = 0; i < 7; i++)
        cr_assert_str_eq(l.p[i].key, order[i]);
    /* 2026-12-06T08:20:25.123Z */
    const char *ts = l.p[0].value;
    cr_assert_eq(strlen(ts), 24, "%s", ts);
    cr_assert(ts[4] == '-' && ts[7] == '-' && ts[10] == 'T' &&
                  ts[13] == ':' && ts[16] == ':' && ts[19] == '.' &&
                  ts[23] == 'Z',
              "%s", ts);
    assert_value(&l, "level", "info");
    assert_value(&l, "node", "7");
    assert_value(&l, "msg", "snapshot fetched");
    cr_assert(l.p[3].quoted);
    assert_value(&l, "index", "4096");
    cr_assert(!get(&l, "index")->quoted);
    assert_value(&l, "bytes", "1048576");
    assert_value(&l, "from", "3");
    cr_assert_not_null(strstr(text, " msg=\"snapshot fetched\" index=4096 "));
    free(text);
}

Test(log, node_left_out_until_set_and_overridden_per_call)
{
    capture_start();
    kz_log(KZ_LOG_INFO, "stopped", NULL);
    kz_log_node(12, KZ_LOG_WARN, "x", "k=%d", 1);
    char *text = capture_end();
    cr_assert_eq(count_lines(text), 2);
    char *nl = strchr(text, '\n');
    *nl = '\0';
    struct parsed l;
    cr_assert(parse_line(text, &l), "%s", text);
    cr_assert_null(get(&l, "node"));
    cr_assert_eq(l.n, 3);
    assert_value(&l, "msg", "stopped");
    cr_assert(!get(&l, "msg")->quoted);
    nl[strlen(nl + 1)] = '\0';
    cr_assert(parse_line(nl + 1, &l), "%s", nl + 1);
    assert_value(&l, "node", "12");
    assert_value(&l, "level", "warn");
    free(text);
}

Test(log, values_are_quoted_and_escaped)
{
    const struct {
        const char *v;
        bool quoted;
    } values[] = {
        {"", true},                                  /* empty */
        {"two words", true},                         /* space */
        {"a=b", true},                               /* '=' */
        {"say \"hi\"", true},                        /* quotes */
        {"back\\slash", true},                       /* backslash */
        {"line one\nline two\r\n", true},            /* newlines */
        {"tab\there", true},                         /* tab */
        {"bell\a esc\x1b del\x7f", true},            /* other controls */
        {" msg=forged level=fatal", true},           /* a forged key */
        {"IO error: No space left on device", true}, /* RocksDB's words */
        {"/var/lib/kizuna/snap/00042", false},
        {"東北", false}, /* UTF-8 is left as it is */
        {"a7f3c0de", false},
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        capture_start();
        kz_log(KZ_LOG_ERROR, "escape test", "value=%s after=%d", values[i].v,
               1);
        char *text = capture_end();
        struct parsed l;
        one_line(text, &l);
        cr_assert_eq(l.n, 5, "value %zu: %s", i, text);
        assert_value(&l, "value", values[i].v);
        assert_value(&l, "after", "1");
        assert_value(&l, "level", "error");
        cr_assert_eq(get(&l, "value")->quoted, values[i].quoted,
                     "value %zu: %s", i, text);
        free(text);
    }
}

Test(log, msg_is_escaped_like_a_value)
{
    capture_start();
    kz_log(KZ_LOG_INFO, "odd \"msg\"\nhere", NULL);
    char *text = capture_end();
    struct parsed l;
    one_line(text, &l);
    assert_value(&l, "msg", "odd \"msg\"\nhere");
    cr_assert_not_null(strstr(text, "msg=\"odd \\\"msg\\\"\\nhere\""), "%s",
                       text);
    free(text);
}

Test(log, numbers_chars_and_percent)
{
    capture_start();
    kz_log(KZ_LOG_INFO, "numbers",
           "a=%d b=%u c=%lld d=%llu e=%zu f=%.1f g=%5d h=%x i=%c j=100%% "
           "k=%.*s l=%ld",
           -5, 7u, -9000000000ll, 18446744073709551615ull, (size_t)3, 2.25,
           42, 255u, 'q', 3, "abcdef", -1l);
    char *text = capture_end();
    struct parsed l;
    one_line(text, &l);
    assert_value(&l, "a", "-5");
    assert_value(&l, "b", "7");
    assert_value(&l, "c", "-9000000000");
    assert_value(&l, "d", "18446744073709551615");
    assert_value(&l, "e", "3");
    assert_value(&l, "f", "2.2");
    assert_value(&l, "g", "   42"); /* padded: quoted */
    cr_assert(get(&l, "g")->quoted);
    assert_value(&l, "h", "ff");
    assert_value(&l, "i", "q");
    assert_value(&l, "j", "100%");
    assert_value(&l, "k", "abc");
    assert_value(&l, "l", "-1");
    free(text);
}

Test(log, null_string_leaves_its_pair_out)
{
    const char *cases[][3] = {{NULL, "b", "c"},
                              {"a", NULL, "c"},
                              {"a", "b", NULL},
                              {NULL, NULL, NULL}};
    for (int i = 0; i < 4; i++) {
        capture_start();
        kz_log(KZ_LOG_INFO, "drop", "x=%s y=%s z=%s", cases[i][0],
               cases[i][1], cases[i][2]);
        char *text = capture_end();
        struct parsed l;
        one_line(text, &l); /* no double or trailing space: parses */
        const char *keys[] = {"x", "y", "z"};
        int present = 0;
        for (int k = 0; k < 3; k++) {
            const struct pair *p = get(&l, keys[k]);
            cr_assert_eq(p != NULL, cases[i][k] != NULL, "case %d: %s", i,
                         text);
            if (p != NULL) {
                cr_assert_str_eq(p->value, cases[i][k]);
                present++;
            }
        }
        cr_assert_eq(l.n, 3 + present, "case %d: %s", i, text);
        free(text);
    }
}

Test(log, levels_filter)
{
    cr_assert_eq(kz_log_get_level(), KZ_LOG_INFO, "the default is info");
    cr_assert(!kz_log_enabled(KZ_LOG_DEBUG));
    capture_start();
    kz_log(KZ_LOG_DEBUG, "hidden", NULL);
    kz_log(KZ_LOG_INFO, "shown", NULL);
    kz_log_set_level(KZ_LOG_WARN);
    kz_log(KZ_LOG_INFO, "hidden", NULL);
    kz_log(KZ_LOG_WARN, "shown", NULL);
    kz_log(KZ_LOG_ERROR, "shown", NULL);
    kz_log(KZ_LOG_FATAL, "shown", NULL);
    kz_log_set_level(KZ_LOG_DEBUG);
    kz_log(KZ_LOG_DEBUG, "shown", NULL);
    char *text = capture_end();
    cr_assert_eq(count_lines(text), 5, "%s", text);
    cr_assert_null(strstr(text, "hidden"), "%s", text);
    const char *want[] = {"info", "warn", "error", "fatal", "debug"};
    char *line = text;
    for (int i = 0; i < 5; i++) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        struct parsed l;
        cr_assert(parse_line(line, &l), "%s", line);
        assert_value(&l, "level", want[i]);
        line = nl + 1;
    }
    free(text);
}

Test(log, level_names_parse)
{
    enum kz_log_level lv = KZ_LOG_INFO;
    const char *names[] = {"debug", "info", "warn", "error", "fatal"};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(kz_log_level_parse(names[i], &lv), KZ_OK);
        cr_assert_eq((int)lv, i);
        cr_assert_str_eq(kz_log_level_name(lv), names[i]);
    }
    cr_assert_eq(kz_log_level_parse("DEBUG", &lv), KZ_OK);
    cr_assert_eq(lv, KZ_LOG_DEBUG);
    lv = KZ_LOG_WARN;
    cr_assert_eq(kz_log_level_parse("verbose", &lv), KZ_EINVAL);
    cr_assert_eq(kz_log_level_parse("", &lv), KZ_EINVAL);
    cr_assert_eq(kz_log_level_parse("warning", &lv), KZ_EINVAL);
    cr_assert_eq(kz_log_level_parse(NULL, &lv), KZ_EINVAL);
    cr_assert_eq(lv, KZ_LOG_WARN, "unchanged on error");
    cr_assert_str_eq(kz_log_level_name((enum kz_log_level)9), "?");
}

Test(log, long_lines_are_cut_at_a_value)
{
    size_t big = 3 * KZ_LOG_LINE_MAX;
    char *v = malloc(big + 1);
    cr_assert_not_null(v);
    for (size_t i = 0; i < big; i++)
        v[i] = "ab\"\n"[i % 4];
    v[big] = '\0';
    capture_start();
    kz_log(KZ_LOG_WARN, "long", "first=%d value=%s last=%d", 1, v, 2);
    kz_log(KZ_LOG_WARN, "long", "a=%s b=%s", v + big - 3000, v + big - 3000);
    char *text = capture_end();
    cr_assert_eq(count_lines(text), 2, "cut lines stay single lines");
    char *line = text;
    for (int i = 0; i < 2; i++) {
        char *nl = strchr(line, '\n');
        cr_assert_leq((size_t)(nl - line) + 1, KZ_LOG_LINE_MAX);
        *nl = '\0';
        struct parsed l;
        cr_assert(parse_line(line, &l), "line %d does not parse", i);
        assert_value(&l, "truncated", "true");
        cr_assert_str_eq(l.p[l.n - 1].key, "truncated");
        line = nl + 1;
    }
    free(text);
    free(v);
}

Test(log, errno_is_kept)
{
    capture_start();
    errno = ENOSPC;
    kz_log(KZ_LOG_ERROR, "x", "path=%s", "/nonexistent");
    int e = errno;
    char *text = capture_end();
    cr_assert_eq(e, ENOSPC);
    free(text);
}

#define THREAD_LINES 2000

static void *log_many(void *arg)
{
    const char *who = arg;
    for (int i = 0; i < THREAD_LINES; i++)
        kz_log(KZ_LOG_INFO, "thread line",
               "who=%s i=%d filler=%s", who, i,
               "a value long enough that a torn write would show in the "
               "middle of another thread's line, were lines written in parts");
    return NULL;
}

Test(log, lines_from_threads_never_interleave)
{
    capture_start();
    pthread_t t[2];
    cr_assert_eq(pthread_create(&t[0], NULL, log_many, "one"), 0);
    cr_assert_eq(pthread_create(&t[1], NULL, log_many, "two"), 0);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    char *text = capture_end();
    cr_assert_eq(count_lines(text), 2 * THREAD_LINES);
    int next[2] = {0, 0};
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        struct parsed l;
        cr_assert(parse_line(line, &l), "torn line: %s", line);
        const struct pair *who = get(&l, "who"), *i = get(&l, "i");
        cr_assert(who != NULL && i != NULL && get(&l, "filler") != NULL);
        int w = who->value[0] == 't';
        cr_assert_eq(atoi(i->value), next[w]++, "order within a thread");
        line = nl + 1;
    }
    cr_assert_eq(next[0], THREAD_LINES);
    cr_assert_eq(next[1], THREAD_LINES);
    free(text);
}

/* ------------------------------------------------- journald priority */

/* JOURNAL_STREAM naming the stream stderr is: each line starts with its
 * syslog priority; naming another stream (stderr redirected since systemd
 * set it), malformed or absent: no prefix. */
Test(log, journal_priority_prefix)
{
    capture_start();
    struct stat st;
    cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    cr_assert_eq(setenv("JOURNAL_STREAM", js, 1), 0);
    bool on = kz_log_detect_journal();
    kz_log_set_level(KZ_LOG_DEBUG);
    kz_log(KZ_LOG_DEBUG, "d", NULL);
    kz_log(KZ_LOG_INFO, "i", NULL);
    kz_log(KZ_LOG_WARN, "w", NULL);
    kz_log(KZ_LOG_ERROR, "e", NULL);
    kz_log(KZ_LOG_FATAL, "f", NULL);
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    cr_assert_eq(setenv("JOURNAL_STREAM", js, 1), 0);
    bool other = kz_log_detect_journal();
    kz_log(KZ_LOG_ERROR, "plain", NULL);
    cr_assert_eq(setenv("JOURNAL_STREAM", "12:x", 1), 0);
    bool bad = kz_log_detect_journal();
    cr_assert_eq(unsetenv("JOURNAL_STREAM"), 0);
    bool none = kz_log_detect_journal();
    char *text = capture_end();
    cr_assert(on && !other && !bad && !none);
    static const char *const want[] = {"<7>ts=", "<6>ts=", "<4>ts=",
                                       "<3>ts=", "<2>ts=", "ts="};
    static const char *const msgs[] = {"d", "i", "w", "e", "f", "plain"};
    const char *line = text;
    for (int i = 0; i < 6; i++) {
        cr_assert_not_null(line, "line %d missing: %s", i, text);
        cr_assert_eq(strncmp(line, want[i], strlen(want[i])), 0,
                     "line %d: %.40s", i, line);
        char m[32];
        snprintf(m, sizeof m, " msg=%s\n", msgs[i]);
        const char *end = strchr(line, '\n');
        cr_assert_not_null(end);
        cr_assert_eq(strncmp(end - strlen(m) + 1, m, strlen(m)), 0,
                     "line %d: %.*s", i, (int)(end - line), line);
        line = end + 1;
    }
    cr_assert_eq(count_lines(text), 6);
    free(text);
}
