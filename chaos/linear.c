/* Linearizability checker of one compare-and-set register: see linear.h.
 *
 * The history becomes a doubly linked list of call and return events in
 * time order (at equal times calls come first: such operations overlap).
 * The search walks the list from its head. At a call it tries to linearize
 * that operation now: the model accepts it from the current state and the
 * resulting (linearized set, state) was not explored before. If so, the
 * call and its return are lifted out of the list and the walk restarts at
 * the head (the calls before the first return are exactly the operations
 * that may come next). At a return it has met an operation that had to
 * take effect already but could not: it backtracks to the last choice and
 * tries the next call after it. Lifting and relinking are LIFO, so the
 * list is restored exactly ("dancing links"); the stack is explicit, so
 * thousands of operations need no deep recursion.
 *
 * Unknown writes have no return: they may be placed anywhere after their
 * call, or never, so the search is done when every operation with a known
 * outcome is placed.
 *
 * Four reductions keep it fast, each keeping the answer exact:
 * - An operation with a known outcome that leaves the state as it is (a
 *   read, a refused write) and fits now is taken at once, without trying
 *   the alternatives: any linearization that places it later can place it
 *   now instead (it was invoked before every pending return, and no state
 *   changes). Without this, k concurrent reads cost 2^k states.
 * - An unknown write that would not change the state is never tried: not
 *   placing it at all leaves every choice it would have left.
 * - A written value that no read returned is only remembered as "some
 *   value no read saw": the states it tells apart behave the same.
 * - A node is pruned by an explored one that differs only in having placed
 *   fewer unknown writes (see struct memo); at a node the operations with a
 *   known outcome are tried before the unknown writes so that those come
 *   first. Without this, every subset of the unknown writes that fit would
 *   be explored before a history is found wrong.
 * And a first pass leaves out unknown writes whose value no read returned
 * (deciding they never happened, one of their possible fates): when that
 * finds a linearization, it is one of the whole history. Only if not is
 * the full search run. Partitions leave many writes unknown; this keeps
 * them cheap. */
#include "linear.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_STATES 1000000

/* The model's state. version is meaningful only when version_known (an
 * unknown write took effect and nobody read the version it made), value
 * only when readable (else no read returned it, so what it is does not
 * matter; it is kept for the report). */
struct state {
    uint64_t version;
    int64_t value;
    bool version_known;
    bool readable;
};

/* An operation kept for the search. */
struct iop {
    int kind, outcome;
    uint64_t expect, version;
    int64_t value;
    bool readable; /* some ok read returned value */
    size_t id;
    int64_t invoke, complete;
    size_t call_ev, ret_ev; /* list nodes; ret_ev 0: none (unknown) */
};

struct event {
    int64_t time;
    bool is_ret;
    size_t op;
};

struct frame {
    size_t op;
    struct state before;
    bool forced; /* taken without alternatives (see the top comment) */
};

/* The memo: explored (linearized set, state) pairs, appended as entries
 * (state, bitset), found by hashes of the set kept incrementally (Zobrist:
 * the xor of a random word per member), so a step costs O(1) plus bitset
 * compares on hash matches.
 *
 * A node is also pruned by an explored one with the same state, the same
 * operations with a known outcome and a subset of its unknown writes
 * placed: an unknown write need never be placed, so that one had every
 * choice this one has, and more. Entries are grouped by (those operations,
 * state) for this; as the operations with a known outcome are tried first
 * at a node, a group's oldest entries have the fewest unknown writes, and
 * only the first GROUP_SCAN of a group are kept there to compare with (the
 * rest only prune their exact repeats), which keeps a step cheap. */
#define GROUP_SCAN 32

struct memo {
    size_t words;
    const uint64_t *unknown; /* bitset of the unknown writes */
    size_t count, cap_entries;
    uint64_t *hash_all; /* of the whole set and the state */
    uint64_t *hash_def; /* of its operations with a known outcome, state */
    struct state *st;
    uint64_t *bits;     /* cap_entries * words */
    size_t *group_next; /* next entry of the group + 1; 0: none */
    size_t *group_len;  /* of a group's head: entries linked after it */
    size_t *exact;      /* table: entry + 1 by hash_all; 0: empty slot */
    size_t *groups;     /* table: group head + 1 by hash_def */
    size_t table_cap;
};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static bool state_eq(const struct state *a, const struct state *b)
{
    if (a->version_known != b->version_known || a->readable != b->readable)
        return false;
    if (a->version_known && a->version != b->version)
        return false;
    return !a->readable || a->value == b->value;
}

static uint64_t state_hash(const struct state *s)
{
    uint64_t v = s->version_known ? s->version : 0x5bd1e995u;
    uint64_t x = s->readable ? (uint64_t)s->value : 0x27d4eb2fu;
    return splitmix64(v ^ splitmix64(x ^ ((uint64_t)s->version_known << 1 |
                                          (uint64_t)s->readable)));
}

static void table_put(size_t *t, size_t cap, uint64_t h, size_t entry)
{
    size_t j = h & (cap - 1);
    while (t[j] != 0)
        j = (j + 1) & (cap - 1);
    t[j] = entry + 1;
}

static int memo_tables_grow(struct memo *m)
{
    size_t cap = m->table_cap ? m->table_cap * 2 : 1024;
    if (cap > SIZE_MAX / sizeof(size_t))
        return -1;
    size_t *exact = calloc(cap, sizeof *exact);
    size_t *groups = calloc(cap, sizeof *groups);
    if (exact == NULL || groups == NULL) {
        free(exact);
        free(groups);
        return -1;
    }
    for (size_t i = 0; i < m->table_cap; i++) {
        if (m->exact[i] != 0) {
            size_t e = m->exact[i] - 1;
            table_put(exact, cap, m->hash_all[e], e);
        }
        if (m->groups[i] != 0) {
            size_t e = m->groups[i] - 1;
            table_put(groups, cap, m->hash_def[e], e);
        }
    }
    free(m->exact);
    free(m->groups);
    m->exact = exact;
    m->groups = groups;
    m->table_cap = cap;
    return 0;
}

static int memo_entries_grow(struct memo *m)
{
    size_t cap = m->cap_entries ? m->cap_entries * 2 : 1024;
    if (cap > SIZE_MAX / sizeof(uint64_t) / m->words)
        return -1;
#define GROW(field)                                                          \
    do {                                                                     \
        void *p_ = realloc(m->field, cap * sizeof *m->field);                \
        if (p_ == NULL)                                                      \
            return -1;                                                       \
        m->field = p_;                                                       \
    } while (0)
    GROW(hash_all);
    GROW(hash_def);
    GROW(st);
    GROW(group_next);
    GROW(group_len);
#undef GROW
    uint64_t *b = realloc(m->bits, cap * m->words * sizeof *b);
    if (b == NULL)
        return -1;
    m->bits = b;
    m->cap_entries = cap;
    return 0;
}

/* Whether the explored set a has the same operations with a known outcome
 * as b and a subset of its unknown writes. */
static bool dominates(const uint64_t *a, const uint64_t *b,
                      const uint64_t *unknown, size_t words)
{
    for (size_t i = 0; i < words; i++)
        if (((a[i] ^ b[i]) & ~unknown[i]) != 0 || (a[i] & ~b[i]) != 0)
            return false;
    return true;
}

static bool same_definite(const uint64_t *a, const uint64_t *b,
                          const uint64_t *unknown, size_t words)
{
    for (size_t i = 0; i < words; i++)
        if (((a[i] ^ b[i]) & ~unknown[i]) != 0)
            return false;
    return true;
}

/* Adds (bits, s), the set hashing to set_all (all of it) and set_def (its
 * operations with a known outcome): 1 if it is new, 0 if it was explored
 * before or is dominated by an explored node, -1 when out of memory. */
static int memo_add(struct memo *m, const uint64_t *bits, uint64_t set_all,
                    uint64_t set_def, const struct state *s)
{
    size_t words = m->words;
    if ((m->count + 1) * 2 > m->table_cap && memo_tables_grow(m) != 0)
        return -1;
    uint64_t sh = state_hash(s);
    uint64_t h_all = set_all ^ sh, h_def = set_def ^ sh;
    size_t mask = m->table_cap - 1;
    size_t j = h_all & mask;
    for (; m->exact[j] != 0; j = (j + 1) & mask) {
        size_t e = m->exact[j] - 1;
        if (m->hash_all[e] == h_all && state_eq(&m->st[e], s) &&
            memcmp(&m->bits[e * words], bits, words * sizeof *bits) == 0)
            return 0;
    }
    size_t exact_slot = j;
    size_t head = SIZE_MAX;
    size_t g = h_def & mask;
    for (; m->groups[g] != 0; g = (g + 1) & mask) {
        size_t e = m->groups[g] - 1;
        if (m->hash_def[e] == h_def && state_eq(&m->st[e], s) &&
            same_definite(&m->bits[e * words], bits, m->unknown, words)) {
            head = e;
            break;
        }
    }
    if (head != SIZE_MAX)
        for (size_t e = head + 1; e != 0; e = m->group_next[e - 1])
            if (dominates(&m->bits[(e - 1) * words], bits, m->unknown,
                          words))
                return 0;
    if (m->count == m->cap_entries && memo_entries_grow(m) != 0)
        return -1;
    size_t e = m->count++;
    m->hash_all[e] = h_all;
    m->hash_def[e] = h_def;
    m->st[e] = *s;
    memcpy(&m->bits[e * words], bits, words * sizeof *bits);
    m->group_next[e] = 0;
    m->group_len[e] = 0;
    m->exact[exact_slot] = e + 1;
    if (head == SIZE_MAX) {
        m->groups[g] = e + 1; /* a new group, e its head */
    } else if (m->group_len[head] < GROUP_SCAN) {
        m->group_next[e] = m->group_next[head]; /* linked after the head */
        m->group_next[head] = e + 1;
        m->group_len[head]++;
    }
    return 1;
}

static void memo_free(struct memo *m)
{
    free(m->hash_all);
    free(m->hash_def);
    free(m->st);
    free(m->bits);
    free(m->group_next);
    free(m->group_len);
    free(m->exact);
    free(m->groups);
}

/* The model: whether op may take effect in s, and the state after. */
static bool step(const struct iop *op, const struct state *s,
                 struct state *out)
{
    *out = *s;
    if (op->kind == KZ_LIN_READ) {
        /* An unreadable value is one no read returned: not this one. */
        if (!s->readable || s->value != op->value)
            return false;
        if (s->version_known)
            return s->version == op->version;
        out->version = op->version; /* learns the version it did not know */
        out->version_known = true;
        return true;
    }
    /* Against an unknown version a write may or may not match. */
    bool may_match = !s->version_known || s->version == op->expect;
    switch (op->outcome) {
    case KZ_LIN_OK:
        if (!may_match)
            return false;
        *out = (struct state){.version = op->version, .value = op->value,
                              .version_known = true,
                              .readable = op->readable};
        return true;
    case KZ_LIN_FAIL:
        return !s->version_known || s->version != op->expect;
    default: /* unknown, placed: it took effect */
        if (!may_match)
            return false;
        *out = (struct state){.value = op->value, .version_known = false,
                              .readable = op->readable};
        return true;
    }
}

static int by_event(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->is_ret != y->is_ret)
        return x->is_ret ? 1 : -1; /* equal times overlap */
    return x->op < y->op ? -1 : x->op > y->op;
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void state_str(const struct state *s, char *buf, size_t len)
{
    char v[24] = "?", x[24] = "?";
    if (s->version_known)
        snprintf(v, sizeof v, "%" PRIu64, s->version);
    snprintf(x, sizeof x, "%" PRId64, s->value);
    snprintf(buf, len, "(v=%s, value=%s)", v, x);
}

static void describe(const struct iop *op, const struct state *s,
                     char *buf, size_t len)
{
    char st[64];
    state_str(s, st, sizeof st);
    int k;
    if (op->kind == KZ_LIN_READ)
        k = snprintf(buf, len,
                     "read (v=%" PRIu64 ", value=%" PRId64 ") at op %zu: no "
                     "linearization explains it; latest possible state %s",
                     op->version, op->value, op->id, st);
    else if (op->outcome == KZ_LIN_OK)
        k = snprintf(buf, len,
                     "cas ok (if v=%" PRIu64 " -> v=%" PRIu64
                     ", value=%" PRId64 ") at op %zu: no linearization "
                     "explains it; latest possible state %s",
                     op->expect, op->version, op->value, op->id, st);
    else
        k = snprintf(buf, len,
                     "cas refused (if v=%" PRIu64 ", value=%" PRId64
                     ") at op %zu: no linearization explains it; latest "
                     "possible state %s",
                     op->expect, op->value, op->id, st);
    if (k < 0)
        buf[0] = '\0';
}

static void set_bit(uint64_t *bits, size_t i)
{
    bits[i / 64] |= UINT64_C(1) << (i % 64);
}

static void clear_bit(uint64_t *bits, size_t i)
{
    bits[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

/* The event list: nodes 1..ne, node 0 the head sentinel (circular). */
struct list {
    size_t *next, *prev;
};

static void unlink_node(struct list *l, size_t i)
{
    l->next[l->prev[i]] = l->next[i];
    l->prev[l->next[i]] = l->prev[i];
}

static void relink_node(struct list *l, size_t i)
{
    l->next[l->prev[i]] = i;
    l->prev[l->next[i]] = i;
}

static void lift(struct list *l, const struct iop *op)
{
    unlink_node(l, op->call_ev);
    if (op->ret_ev)
        unlink_node(l, op->ret_ev);
}

static void unlift(struct list *l, const struct iop *op)
{
    if (op->ret_ev)
        relink_node(l, op->ret_ev);
    relink_node(l, op->call_ev);
}

/* One search over in[], leaving out the unknown writes no read saw when
 * skip_unseen (*skipped: whether there was any). Adds its states to
 * res->states and fills the rest of res. */
static int search(const struct kz_lin_op *in, size_t n_in, bool skip_unseen,
                  bool *skipped, uint64_t version0, int64_t value0,
                  size_t max_states, struct kz_lin_result *res)
{
    *skipped = false;
    size_t cap = n_in + 1;
    int64_t *seen = malloc(cap * sizeof *seen);
    struct iop *ops = malloc(cap * sizeof *ops);
    struct event *ev = malloc(2 * cap * sizeof *ev);
    size_t *ev_op = malloc(2 * cap * sizeof *ev_op);
    bool *ev_ret = malloc(2 * cap * sizeof *ev_ret);
    struct list l = {.next = malloc(2 * cap * sizeof(size_t)),
                     .prev = malloc(2 * cap * sizeof(size_t))};
    struct frame *stack = malloc(cap * sizeof *stack);
    uint64_t *zob = malloc(cap * sizeof *zob);
    size_t words = n_in / 64 + 1;
    uint64_t *bits = calloc(words, sizeof *bits);
    uint64_t *unknown = calloc(words, sizeof *unknown);
    struct memo memo = {.words = words, .unknown = unknown};
    int rc = -1;
    if (!seen || !ops || !ev || !ev_op || !ev_ret || !l.next || !l.prev ||
        !stack || !zob || !bits || !unknown)
        goto out;

    size_t n_seen = 0;
    for (size_t i = 0; i < n_in; i++)
        if (in[i].kind == KZ_LIN_READ && in[i].outcome == KZ_LIN_OK)
            seen[n_seen++] = in[i].value;
    qsort(seen, n_seen, sizeof *seen, by_value);

    /* Keep what constrains: ok reads and every write (a refused one says
     * the version was not its expect). Anything else is malformed and says
     * nothing either. */
    size_t n = 0, definite = 0;
    for (size_t i = 0; i < n_in; i++) {
        const struct kz_lin_op *o = &in[i];
        bool read_ok = o->kind == KZ_LIN_READ && o->outcome == KZ_LIN_OK;
        bool cas = o->kind == KZ_LIN_CAS &&
                   (o->outcome == KZ_LIN_OK || o->outcome == KZ_LIN_FAIL ||
                    o->outcome == KZ_LIN_UNKNOWN);
        if (!read_ok && !cas)
            continue;
        bool readable = bsearch(&o->value, seen, n_seen, sizeof *seen,
                                by_value) != NULL;
        if (skip_unseen && cas && o->outcome == KZ_LIN_UNKNOWN &&
            !readable) {
            *skipped = true;
            continue;
        }
        ops[n] = (struct iop){.kind = o->kind, .outcome = o->outcome,
                              .expect = o->expect, .version = o->version,
                              .value = o->value, .readable = readable,
                              .id = o->id, .invoke = o->invoke_us,
                              .complete = o->complete_us};
        /* A return before the call would end the search at once. */
        if (ops[n].complete < ops[n].invoke)
            ops[n].complete = ops[n].invoke;
        if (o->outcome != KZ_LIN_UNKNOWN)
            definite++;
        else
            set_bit(unknown, n);
        zob[n] = splitmix64(n + 0x51ed270b27ull);
        n++;
    }

    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        ev[ne++] = (struct event){.time = ops[i].invoke, .op = i};
        if (ops[i].outcome != KZ_LIN_UNKNOWN)
            ev[ne++] = (struct event){.time = ops[i].complete, .is_ret = true,
                                      .op = i};
    }
    qsort(ev, ne, sizeof *ev, by_event);
    /* Nodes 1..ne in time order: a larger node is a later event. */
    for (size_t i = 0; i <= ne; i++) {
        l.next[i] = i == ne ? 0 : i + 1;
        l.prev[i] = i == 0 ? ne : i - 1;
    }
    for (size_t i = 0; i < ne; i++) {
        size_t node = i + 1;
        ev_op[node] = ev[i].op;
        ev_ret[node] = ev[i].is_ret;
        if (ev[i].is_ret)
            ops[ev[i].op].ret_ev = node;
        else
            ops[ev[i].op].call_ev = node;
    }

    struct state cur = {.version = version0, .value = value0,
                        .version_known = true,
                        .readable = true};
    uint64_t set_all = 0, set_def = 0; /* hashes of the set (struct memo) */
    size_t depth = 0, remaining = definite;
    size_t best_ev = 0; /* the latest return the search stopped at */
    struct state best_state = cur;
    size_t entry = l.next[0];
    bool fresh = true; /* at a new node of the search tree */
    /* At a node the calls of operations with a known outcome are tried
     * first, then the unknown writes: the nodes without an unknown write
     * come first and prune those with it (see struct memo). */
    bool unknown_phase = false;
    bool linearizable = false, gave_up = false;

    for (;;) {
        if (remaining == 0) {
            linearizable = true; /* what is left: unknown, never placed */
            break;
        }
        bool dead = false; /* this node is known to lead nowhere */
        if (fresh) {
            fresh = false;
            /* A definite op that fits and keeps the state: take it. */
            size_t forced = SIZE_MAX;
            for (size_t e = l.next[0]; e != 0 && !ev_ret[e]; e = l.next[e]) {
                const struct iop *op = &ops[ev_op[e]];
                struct state ns;
                if (op->outcome != KZ_LIN_UNKNOWN && step(op, &cur, &ns) &&
                    state_eq(&ns, &cur)) {
                    forced = ev_op[e];
                    break;
                }
            }
            if (forced != SIZE_MAX) {
                set_bit(bits, forced);
                int added = memo_add(&memo, bits, set_all ^ zob[forced],
                                     set_def ^ zob[forced], &cur);
                if (added < 0)
                    goto out;
                if (added == 0) {
                    /* Explored and failed: so does this node. */
                    clear_bit(bits, forced);
                    dead = true;
                } else {
                    if (++res->states > max_states) {
                        gave_up = true;
                        break;
                    }
                    set_all ^= zob[forced];
                    set_def ^= zob[forced];
                    stack[depth++] = (struct frame){.op = forced,
                                                    .before = cur,
                                                    .forced = true};
                    lift(&l, &ops[forced]);
                    remaining--;
                    fresh = true;
                    continue;
                }
            } else {
                entry = l.next[0];
                unknown_phase = false;
            }
        }
        if (!dead && !unknown_phase && (entry == 0 || ev_ret[entry])) {
            unknown_phase = true;
            entry = l.next[0];
            continue;
        }
        if (dead || entry == 0 || ev_ret[entry]) {
            if (!dead && entry != 0 && entry > best_ev) {
                best_ev = entry;
                best_state = cur;
            }
            /* Back to the last real choice: a forced step had none. */
            bool none = false;
            struct frame f = {.forced = false};
            do {
                if (depth == 0) {
                    none = true;
                    break;
                }
                f = stack[--depth];
                const struct iop *op = &ops[f.op];
                unlift(&l, op);
                clear_bit(bits, f.op);
                set_all ^= zob[f.op];
                if (op->outcome != KZ_LIN_UNKNOWN)
                    set_def ^= zob[f.op];
                cur = f.before;
                if (op->outcome != KZ_LIN_UNKNOWN)
                    remaining++;
            } while (f.forced);
            if (none)
                break; /* not linearizable */
            entry = l.next[ops[f.op].call_ev];
            unknown_phase = ops[f.op].outcome == KZ_LIN_UNKNOWN;
            continue;
        }
        size_t i = ev_op[entry];
        const struct iop *op = &ops[i];
        struct state ns;
        if (unknown_phase != (op->outcome == KZ_LIN_UNKNOWN) ||
            !step(op, &cur, &ns) ||
            (op->outcome == KZ_LIN_UNKNOWN && state_eq(&ns, &cur))) {
            entry = l.next[entry];
            continue;
        }
        set_bit(bits, i);
        uint64_t zd = op->outcome != KZ_LIN_UNKNOWN ? zob[i] : 0;
        int added = memo_add(&memo, bits, set_all ^ zob[i], set_def ^ zd, &ns);
        if (added < 0)
            goto out;
        if (added == 0) {
            clear_bit(bits, i);
            entry = l.next[entry];
            continue;
        }
        if (++res->states > max_states) {
            gave_up = true;
            break;
        }
        set_all ^= zob[i];
        set_def ^= zd;
        stack[depth++] = (struct frame){.op = i, .before = cur};
        cur = ns;
        lift(&l, op);
        if (op->outcome != KZ_LIN_UNKNOWN)
            remaining--;
        fresh = true;
    }

    res->linearizable = linearizable;
    res->gave_up = gave_up;
    res->bad_id = 0;
    res->why[0] = '\0';
    if (gave_up)
        snprintf(res->why, sizeof res->why,
                 "search gave up after %zu states", res->states);
    else if (!linearizable && best_ev != 0) {
        const struct iop *bad = &ops[ev_op[best_ev]];
        res->bad_id = bad->id;
        describe(bad, &best_state, res->why, sizeof res->why);
    }
    rc = 0;
out:
    memo_free(&memo);
    free(seen);
    free(ops);
    free(ev);
    free(ev_op);
    free(ev_ret);
    free(l.next);
    free(l.prev);
    free(stack);
    free(zob);
    free(bits);
    free(unknown);
    return rc;
}

int kz_lin_check(const struct kz_lin_op *ops, size_t n, uint64_t version0,
                 int64_t value0, size_t max_states, struct kz_lin_result *res)
{
    memset(res, 0, sizeof *res);
    if (max_states == 0)
        max_states = DEFAULT_MAX_STATES;
    /* The cheap pass first (see the top comment). It is the whole search
     * when it left nothing out; its states count against the bound. */
    bool skipped;
    if (search(ops, n, true, &skipped, version0, value0, max_states, res) != 0)
        return -1;
    if (res->linearizable || !skipped || res->gave_up)
        return 0;
    return search(ops, n, false, &skipped, version0, value0, max_states, res);
}
