/* Linearizability of one compare-and-set register's history.
 *
 * The register holds (version, value). Versions are assigned by the server
 * (raft log indexes); the checker only assumes that a successful write sets
 * a version different from the one before. Values written are unique per
 * history (tokens).
 *
 * Search: Wing & Gong's, with Lowe's just-in-time linearization and
 * memoisation of (set of linearized operations, register state), as in
 * Knossos and Porcupine. A history of many keys is checked key by key
 * (linearizability is compositional). No global state: thread-safe. */
#ifndef KZ_CHAOS_LINEAR_H
#define KZ_CHAOS_LINEAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kz_lin_kind { KZ_LIN_READ, KZ_LIN_CAS };
enum kz_lin_outcome { KZ_LIN_OK, KZ_LIN_FAIL, KZ_LIN_UNKNOWN };

/* One operation on one key. Times in microseconds on one clock; an
 * operation that completed before another was invoked (strictly) precedes
 * it, equal times overlap.
 * READ  ok: the register held (version, value) at some instant in
 *       [invoke, complete]. fail / unknown: says nothing (dropped).
 * CAS   "if version == expect then (version, value) := (new, value)".
 *       ok: it took effect; `version` is the new version returned.
 *       fail: refused because the version was not `expect` (HTTP 412);
 *       no effect.
 *       unknown: timed out / connection lost: it may have taken effect at
 *       any time after invoke, or never; complete is ignored; its new
 *       version is not known to the client. */
struct kz_lin_op {
    int64_t invoke_us, complete_us;
    int kind;         /* enum kz_lin_kind */
    int outcome;      /* enum kz_lin_outcome */
    uint64_t expect;  /* CAS: If-Match version */
    uint64_t version; /* READ ok: version read; CAS ok: the new version */
    int64_t value;    /* READ ok: value read; CAS: value written */
    size_t id;        /* the caller's id (e.g. history line), reported back */
};

struct kz_lin_result {
    bool linearizable;
    bool gave_up;  /* the search hit max_states: unknown (linearizable false) */
    size_t states; /* search states explored (memoised) */
    /* When not linearizable: the id of the operation the search could not
     * place at the deepest point it reached (the latest completion every
     * partial linearization failed at), and why, for people. */
    size_t bad_id;
    char why[160];
};

/* Checks ops (any order; a sorted copy is made) from the known initial
 * state (version0, value0). max_states bounds the search (0: 1,000,000).
 * Returns 0, or -1 when out of memory. */
int kz_lin_check(const struct kz_lin_op *ops, size_t n, uint64_t version0,
                 int64_t value0, size_t max_states, struct kz_lin_result *res);

#endif /* KZ_CHAOS_LINEAR_H */
