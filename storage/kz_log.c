/*
 * kz_log.c — logfmt lines on stderr (kz_log.h).
 *
 * Happy path: below the threshold a call returns at once; otherwise the
 * line is built in a buffer on the stack — the fixed fields, then the
 * caller's format walked conversion by conversion, each value formatted on
 * its own and appended through the quoting rule — and written with one
 * write(2).
 *
 * Failure modes: a line longer than KZ_LOG_LINE_MAX is cut at a value and
 * marked truncated=true; a failed write (stderr closed, EPIPE) loses the
 * line and nothing else. A conversion this walker does not know (%n, or one
 * -Wformat would have refused) ends the line there, marked truncated, rather
 * than guess at the argument's type.
 */
#include "kz_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "kz_error.h"

static atomic_int min_level = KZ_LOG_INFO;
static _Atomic uint64_t node_id;
static atomic_bool journal; /* prefix lines with <priority> */

/* syslog(3) priorities by level: debug, info, warning, err, crit. */
static const char *const journal_prefix[] = {"<7>", "<6>", "<4>", "<3>",
                                             "<2>"};

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "fatal"};

#define LEVELS (int)(sizeof level_names / sizeof level_names[0])

void kz_log_set_node(uint64_t id)
{
    atomic_store(&node_id, id);
}

bool kz_log_detect_journal(void)
{
    /* systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it
     * connected; stderr may have been redirected since (a shell, a test):
     * only when it is still that stream does journald read our prefix. */
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    char extra;
    struct stat st;
    bool on = js != NULL &&
              sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) == 2 &&
              fstat(STDERR_FILENO, &st) == 0 &&
              (unsigned long long)st.st_dev == dev &&
              (unsigned long long)st.st_ino == ino;
    atomic_store(&journal, on);
    return on;
}

void kz_log_set_level(enum kz_log_level level)
{
    atomic_store(&min_level, (int)level);
}

enum kz_log_level kz_log_get_level(void)
{
    return (enum kz_log_level)atomic_load(&min_level);
}

bool kz_log_enabled(enum kz_log_level level)
{
    return (int)level >= atomic_load(&min_level);
}

int kz_log_level_parse(const char *name, enum kz_log_level *out)
{
    for (int i = 0; name != NULL && i < LEVELS; i++)
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum kz_log_level)i;
            return KZ_OK;
        }
    return KZ_EINVAL;
}

const char *kz_log_level_name(enum kz_log_level level)
{
    return (int)level >= 0 && (int)level < LEVELS ? level_names[level] : "?";
}

/* ------------------------------------------------------------ the line */

/* Room kept at the end for " truncated=true\n". */
#define TAIL_ROOM 17

struct line {
    char buf[KZ_LOG_LINE_MAX];
    size_t len;
    size_t pair_start; /* where the pair being written began (its space) */
    bool cut;
};

static size_t room(const struct line *l)
{
    return sizeof l->buf - TAIL_ROOM - l->len;
}

/* Appends n bytes whole, or nothing and marks the line cut. */
static void put_raw(struct line *l, const char *s, size_t n)
{
    if (l->cut)
        return;
    if (n > room(l)) {
        l->cut = true;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '=' || c == '"' || c == '\\')
            return true;
    }
    return false;
}

/* The escape of c inside quotes into out (at most 6 bytes); its length. */
static size_t escape(unsigned char c, char out[8])
{
    switch (c) {
    case '"':
        return (size_t)snprintf(out, 8, "\\\"");
    case '\\':
        return (size_t)snprintf(out, 8, "\\\\");
    case '\n':
        return (size_t)snprintf(out, 8, "\\n");
    case '\r':
        return (size_t)snprintf(out, 8, "\\r");
    case '\t':
        return (size_t)snprintf(out, 8, "\\t");
    default:
        if (c < ' ' || c == 0x7f)
            return (size_t)snprintf(out, 8, "\\u%04x", c);
        out[0] = (char)c;
        return 1;
    }
}

/* Appends one value, quoted and escaped when it must be. A value too long
 * for the rest of the line is cut inside its quotes and the line marked. */
static void put_value(struct line *l, const char *s, size_t n)
{
    if (l->cut)
        return;
    if (!needs_quotes(s, n) && n <= room(l)) {
        put_raw(l, s, n);
        return;
    }
    if (room(l) < 2) {
        l->cut = true;
        return;
    }
    l->buf[l->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        char e[8];
        size_t el = escape((unsigned char)s[i], e);
        if (el + 1 > room(l)) {
            l->cut = true;
            break;
        }
        memcpy(l->buf + l->len, e, el);
        l->len += el;
    }
    l->buf[l->len++] = '"'; /* room() kept a byte for it */
}

/* Formats one numeric value with its own conversion spec, taken from the
 * caller's format, which -Wformat checked against the argument at the call
 * site. */
static void put_number(struct line *l, const char *spec, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, spec);
    int n = vsnprintf(tmp, sizeof tmp, spec, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    put_value(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Appends the digits of a width or precision (from the format, or an int
 * argument for '*') to spec; false when spec would overflow. */
static bool spec_number(char *spec, size_t *sl, size_t cap, const char **p,
                        va_list *ap, int *value)
{
    int v = -1;
    if (**p == '*') {
        v = va_arg(*ap, int);
        (*p)++;
    } else if (**p >= '0' && **p <= '9') {
        v = 0;
        while (**p >= '0' && **p <= '9')
            if ((v = v * 10 + (*(*p)++ - '0')) > 100000)
                return false;
    }
    *value = v;
    if (v < 0)
        return true; /* none given, or a negative '*': left out */
    int n = snprintf(spec + *sl, cap - *sl, "%d", v);
    if (n < 0 || (size_t)n >= cap - *sl)
        return false;
    *sl += (size_t)n;
    return true;
}

/* One conversion of the caller's format, from *fmt (just past the '%'):
 * its argument is taken from *ap and appended as a value. false when the
 * conversion is not one this walker knows. */
static bool convert(struct line *l, const char **fmt, va_list *ap)
{
    char spec[40] = "%";
    size_t sl = 1;
    const char *p = *fmt;
    /* Flags, width, precision ('*' becomes the number it takes). */
    while (*p != '\0' && strchr("-+ #0", *p) != NULL && sl < 8)
        spec[sl++] = *p++;
    int width, precision = -1;
    if (!spec_number(spec, &sl, 24, &p, ap, &width))
        return false;
    if (*p == '.') {
        spec[sl++] = *p++;
        if (!spec_number(spec, &sl, 24, &p, ap, &precision))
            return false;
        if (precision < 0)
            precision = 0;
    }
    /* Length: hh h l ll j z t L. */
    int longs = 0;
    char len = '\0';
    while (*p != '\0' && strchr("hljztL", *p) != NULL && sl < 30) {
        if (*p == 'l')
            longs++;
        len = *p;
        spec[sl++] = *p++;
    }
    char conv = *p;
    if (conv == '\0')
        return false;
    spec[sl++] = conv;
    spec[sl] = '\0';
    *fmt = p + 1;
    switch (conv) {
    case '%':
        put_raw(l, "%", 1);
        return true;
    case 's': {
        const char *s = va_arg(*ap, const char *);
        if (s == NULL) {
            /* The whole pair goes: back to its space, and the format's
             * next space starts the next pair. */
            l->len = l->pair_start;
            return true;
        }
        size_t n = precision >= 0 ? strnlen(s, (size_t)precision) : strlen(s);
        put_value(l, s, n);
        return true;
    }
    case 'c': {
        char c = (char)va_arg(*ap, int);
        put_value(l, &c, 1);
        return true;
    }
    case 'd':
    case 'i':
        if (len == 'j')
            put_number(l, spec, va_arg(*ap, intmax_t));
        else if (len == 'z' || len == 't')
            put_number(l, spec, va_arg(*ap, ptrdiff_t));
        else if (longs == 2)
            put_number(l, spec, va_arg(*ap, long long));
        else if (longs == 1)
            put_number(l, spec, va_arg(*ap, long));
        else
            put_number(l, spec, va_arg(*ap, int));
        return true;
    case 'u':
    case 'x':
    case 'X':
    case 'o':
        if (len == 'j')
            put_number(l, spec, va_arg(*ap, uintmax_t));
        else if (len == 'z' || len == 't')
            put_number(l, spec, va_arg(*ap, size_t));
        else if (longs == 2)
            put_number(l, spec, va_arg(*ap, unsigned long long));
        else if (longs == 1)
            put_number(l, spec, va_arg(*ap, unsigned long));
        else
            put_number(l, spec, va_arg(*ap, unsigned));
        return true;
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
    case 'a':
    case 'A':
        if (len == 'L')
            put_number(l, spec, va_arg(*ap, long double));
        else
            put_number(l, spec, va_arg(*ap, double));
        return true;
    case 'p':
        put_number(l, spec, va_arg(*ap, void *));
        return true;
    default:
        return false;
    }
}

static void put_ts(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char buf[64];
    size_t n = strftime(buf, sizeof buf, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, sizeof buf - n, ".%03ldZ",
                          (long)(ts.tv_nsec / 1000000));
    put_raw(l, buf, n);
}

static void vlog(uint64_t node, enum kz_log_level level, const char *msg,
                 const char *fmt, va_list ap)
{
    if (!kz_log_enabled(level))
        return;
    int saved = errno;
    struct line l;
    l.len = 0;
    l.cut = false;
    if (atomic_load(&journal) && (int)level >= 0 && (int)level < LEVELS)
        put_raw(&l, journal_prefix[level], 3);
    put_ts(&l);
    put_raw(&l, " level=", 7);
    const char *name = kz_log_level_name(level);
    put_raw(&l, name, strlen(name));
    if (node != 0) {
        char nb[32];
        int n = snprintf(nb, sizeof nb, " node=%llu", (unsigned long long)node);
        put_raw(&l, nb, (size_t)n);
    }
    put_raw(&l, " msg=", 5);
    put_value(&l, msg, strlen(msg));
    if (fmt != NULL && fmt[0] != '\0') {
        l.pair_start = l.len;
        put_raw(&l, " ", 1);
        va_list args;
        va_copy(args, ap);
        for (const char *p = fmt; *p != '\0' && !l.cut;) {
            if (*p == '%') {
                p++;
                if (!convert(&l, &p, &args)) {
                    l.cut = true;
                    break;
                }
                continue;
            }
            if (*p == ' ')
                l.pair_start = l.len; /* where a NULL %s cuts back to */
            put_raw(&l, p, 1);
            p++;
        }
        va_end(args);
    }
    if (l.cut) {
        memcpy(l.buf + l.len, " truncated=true", 15); /* TAIL_ROOM */
        l.len += 15;
    }
    l.buf[l.len++] = '\n';
    for (size_t off = 0; off < l.len;) {
        ssize_t w = write(STDERR_FILENO, l.buf + off, l.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    errno = saved;
}

void kz_log(enum kz_log_level level, const char *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(atomic_load(&node_id), level, msg, fmt, ap);
    va_end(ap);
}

void kz_log_node(uint64_t node, enum kz_log_level level, const char *msg,
                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(node, level, msg, fmt, ap);
    va_end(ap);
}
