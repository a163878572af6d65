/*
 * kz_log.h — the process's log: one logfmt line per event on stderr
 * (systemd's journal keeps it; deploy/local-cluster appends it to
 * node<i>/kizunad.log). docs/OPERATIONS.md, "Logs", is the reader's side.
 *
 *   ts=2026-12-06T08:20:25.123Z level=info node=3 msg="snapshot fetched" index=4096 from=1
 *
 * ts (UTC, milliseconds), level, node (left out while 0: not yet known) and
 * msg come first, in that order; the caller's key=value pairs follow. msg is
 * a short, constant event name: what varies goes into keys, so that a grep
 * for msg="..." finds every occurrence.
 *
 * Values are quoted only when they must be: when empty or when they hold a
 * space, '=', '"', '\' or a control character. Inside quotes '"' and '\'
 * are escaped with '\', newline, CR and tab as \n \r \t, other control
 * characters as \u00XX. Every value the caller passes through a conversion
 * (%s, %d, %llu, %.1f ...) is quoted and escaped by that rule, so text from
 * an error message, a path or a peer can neither break the line nor forge a
 * key. Hence the one convention: the format's literal text holds keys, '='
 * and the spaces between pairs, and each conversion is a whole value (never
 * `key="%s"`, never `key=%s:%d`). A NULL %s leaves its whole key=value pair
 * out.
 *
 * A line is at most KZ_LOG_LINE_MAX bytes; a longer one is cut at a value
 * (a cut value keeps its closing quote) and ends with truncated=true. Each
 * line goes out in one write(2) of a buffer on the stack, so lines from the
 * snapshot fetch thread and the loop never interleave (a pipe writes up to
 * PIPE_BUF = 4096 bytes atomically). No allocation: a node that logs its
 * out-of-memory or full-disk stop still gets its line out. errno is kept.
 *
 * Thread-safe. The level threshold and the node id are process-wide (one
 * stderr per process): set once at start, read atomically. Code that runs
 * several nodes in one process (unit tests) names its node with
 * kz_log_node().
 *
 * Personal data is never logged: no names, birth dates, addresses, photos,
 * ID numbers, link codes, certificate subjects or request paths (they carry
 * record ids). Ids of nodes and requests, indexes, sizes, route patterns,
 * paths under the data dir and error texts of RocksDB, OpenSSL and the OS
 * are fine.
 */
#ifndef KZ_LOG_H
#define KZ_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum kz_log_level {
    KZ_LOG_DEBUG,
    KZ_LOG_INFO, /* the default threshold */
    KZ_LOG_WARN,
    KZ_LOG_ERROR,
    KZ_LOG_FATAL /* the process stops right after (the caller exits) */
};

#define KZ_LOG_LINE_MAX 4096

/* The node id of every line from kz_log() (0: left out). */
void kz_log_set_node(uint64_t id);
/* Under systemd: when stderr is still the journal stream systemd named in
 * JOURNAL_STREAM, every line from then on starts with its syslog priority,
 * "<7>" debug, "<6>" info, "<4>" warn, "<3>" error, "<2>" fatal, which
 * journald takes as the entry's PRIORITY and strips (its default
 * SyslogLevelPrefix=yes): `journalctl -p warning` then shows warnings and
 * worse. Returns whether it is so. Called once at start. */
bool kz_log_detect_journal(void);
/* Lines below level are dropped. */
void kz_log_set_level(enum kz_log_level level);
enum kz_log_level kz_log_get_level(void);
/* Whether a line at level would be written: lets a caller skip work that
 * only a debug line needs. */
bool kz_log_enabled(enum kz_log_level level);

/* "debug", "info", "warn", "error" or "fatal" (any case) into *out: KZ_OK,
 * or KZ_EINVAL for anything else (*out unchanged). */
int kz_log_level_parse(const char *name, enum kz_log_level *out);
/* The lower-case name; "?" for a value outside the enum. */
const char *kz_log_level_name(enum kz_log_level level);

/* Writes one line: msg, then fmt's pairs (see above; NULL for none). */
void kz_log(enum kz_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same for the given node id instead of the process's. */
void kz_log_node(uint64_t node, enum kz_log_level level, const char *msg,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
