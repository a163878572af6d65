/* Linearizability checker of one compare-and-set register: see linear.h.
 *
 * The history becomes a doubly linked list of call and return events in
 * time order (at equal times calls come first: such operations overlap).
 * The search walks the list from its head: at a call it tries to linearize
 * that operation now (the model accepts it from the current state and the
 * resulting (linearized set, state) was not explored before), removing its
 * call and return from the list and starting again from the head; at a
 * return it has met an operation that must already have taken effect but
 * could not, so it backtracks to the last choice. Operations whose outcome
 * is unknown have no return: they may be placed anywhere after their call
 * or never, so the search is done when no return is left. A choice point
 * remembers which of the model's alternatives it took (an unknown write
 * either took effect or did not). */
#include "linear.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_STATES 1000000

struct state {
    uint64_t version;
    int64_t value;
    bool known; /* false: an unknown write set value, its version unseen */
};

struct entry {
    int64_t time;
    bool is_call;
    size_t op;          /* index into the sorted ops */
    size_t match;       /* call: its return entry (or SIZE_MAX); return: call */
    size_t prev, next;  /* list links; SIZE_MAX = none */
};

struct frame {
    size_t entry;
    int alt;
    struct state before;
};

/* Memo: open addressing over (bitset, state). */
struct memo {
    size_t words, cap, used;
    uint64_t *keys;  /* cap * words */
    struct state *states;
    uint64_t *hashes; /* 0: empty slot */
};

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t memo_hash(const uint64_t *bits, size_t words,
                          const struct state *s)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < words; i++)
        h = mix(h, bits[i]);
    h = mix(h, s->version);
    h = mix(h, (uint64_t)s->value);
    h = mix(h, s->known);
    return h ? h : 1;
}

static bool state_eq(const struct state *a, const struct state *b)
{
    return a->version == b->version && a->value == b->value &&
           a->known == b->known;
}

static int memo_grow(struct memo *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    struct memo n = {.words = m->words, .cap = cap};
    n.keys = malloc(cap * m->words * sizeof *n.keys);
    n.states = malloc(cap * sizeof *n.states);
    n.hashes = calloc(cap, sizeof *n.hashes);
    if (!n.keys || !n.states || !n.hashes) {
        free(n.keys);
        free(n.states);
        free(n.hashes);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->hashes[i] == 0)
            continue;
        size_t j = m->hashes[i] & (cap - 1);
        while (n.hashes[j] != 0)
            j = (j + 1) & (cap - 1);
        n.hashes[j] = m->hashes[i];
        n.states[j] = m->states[i];
        memcpy(&n.keys[j * m->words], &m->keys[i * m->words],
               m->words * sizeof *n.keys);
        n.used++;
    }
    free(m->keys);
    free(m->states);
    free(m->hashes);
    *m = n;
    return 0;
}

/* Adds (bits, s); returns 1 if it was new, 0 if seen, -1 out of memory. */
static int memo_add(struct memo *m, const uint64_t *bits,
                    const struct state *s)
{
    if ((m->used + 1) * 2 > m->cap && memo_grow(m) != 0)
        return -1;
    uint64_t h = memo_hash(bits, m->words, s);
    size_t j = h & (m->cap - 1);
    while (m->hashes[j] != 0) {
        if (m->hashes[j] == h && state_eq(&m->states[j], s) &&
            memcmp(&m->keys[j * m->words], bits,
                   m->words * sizeof *bits) == 0)
            return 0;
        j = (j + 1) & (m->cap - 1);
    }
    m->hashes[j] = h;
    m->states[j] = *s;
    memcpy(&m->keys[j * m->words], bits, m->words * sizeof *bits);
    m->used++;
    return 1;
}

static void memo_free(struct memo *m)
{
    free(m->keys);
    free(m->states);
    free(m->hashes);
}

/* The model: how many alternatives op has from s (0: none), and the state
 * after alternative alt. */
static bool step(const struct kz_lin_op *op, const struct state *s, int alt,
                 struct state *out)
{
    *out = *s;
    if (op->kind == KZ_LIN_READ) {
        if (alt != 0 || op->value != s->value ||
            (s->known && op->version != s->version))
            return false;
        out->version = op->version; /* learns an unseen version */
        out->known = true;
        return true;
    }
    bool may_match = !s->known || s->version == op->expect;
    switch (op->outcome) {
    case KZ_LIN_OK:
        if (alt != 0 || !may_match)
            return false;
        out->version = op->version;
        out->value = op->value;
        out->known = true;
        return true;
    case KZ_LIN_FAIL:
        return alt == 0 && (!s->known || s->version != op->expect);
    default: /* unknown: took effect (alt 0) or not (alt 1) */
        if (alt == 0) {
            if (!may_match)
                return false;
            out->value = op->value;
            out->known = false;
            out->version = 0;
            return true;
        }
        return alt == 1;
    }
}

static int by_event(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1; /* equal times overlap */
    return x->op < y->op ? -1 : x->op > y->op;
}

static void unlink_entry(struct entry *e, size_t i, size_t *head)
{
    if (e[i].prev != SIZE_MAX)
        e[e[i].prev].next = e[i].next;
    else
        *head = e[i].next;
    if (e[i].next != SIZE_MAX)
        e[e[i].next].prev = e[i].prev;
}

static void relink_entry(struct entry *e, size_t i, size_t *head)
{
    if (e[i].prev != SIZE_MAX)
        e[e[i].prev].next = i;
    else
        *head = i;
    if (e[i].next != SIZE_MAX)
        e[e[i].next].prev = i;
}

static void describe(const struct kz_lin_op *op, const struct state *s,
                     char *buf, size_t len)
{
    char st[64];
    if (s->known)
        snprintf(st, sizeof st, "(v=%" PRIu64 ", value=%" PRId64 ")",
                 s->version, s->value);
    else
        snprintf(st, sizeof st, "(v=?, value=%" PRId64 ")", s->value);
    if (op->kind == KZ_LIN_READ)
        snprintf(buf, len,
                 "read of (v=%" PRIu64 ", value=%" PRId64
                 ") fits no order; the register could hold %s",
                 op->version, op->value, st);
    else
        snprintf(buf, len,
                 "%s compare-and-set if v=%" PRIu64 " -> (v=%" PRIu64
                 ", value=%" PRId64 ") fits no order; the register could "
                 "hold %s",
                 op->outcome == KZ_LIN_OK ? "acknowledged" : "refused",
                 op->expect, op->version, op->value, st);
}

static int search(const struct kz_lin_op *in, size_t n_in, bool reduced,
                  uint64_t version0, int64_t value0, size_t max_states,
                  struct kz_lin_result *res);

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int kz_lin_check(const struct kz_lin_op *in, size_t n_in, uint64_t version0,
                 int64_t value0, size_t max_states, struct kz_lin_result *res)
{
    /* First without the unknown writes that no read saw: leaving one out is
     * choosing "it never took effect", one of its two possible fates, so a
     * linearization found without them is one of the whole history. Only
     * when none is found is the full search (every fate) needed. This keeps
     * partitions, which leave many writes unknown, cheap to check. */
    bool any_unknown = false;
    for (size_t i = 0; i < n_in && !any_unknown; i++)
        any_unknown = in[i].kind == KZ_LIN_CAS &&
                      in[i].outcome == KZ_LIN_UNKNOWN;
    if (any_unknown) {
        if (search(in, n_in, true, version0, value0, max_states, res) != 0)
            return -1;
        if (res->linearizable)
            return 0;
    }
    return search(in, n_in, false, version0, value0, max_states, res);
}

static int search(const struct kz_lin_op *in, size_t n_in, bool reduced,
                  uint64_t version0, int64_t value0, size_t max_states,
                  struct kz_lin_result *res)
{
    memset(res, 0, sizeof *res);
    if (max_states == 0)
        max_states = DEFAULT_MAX_STATES;
    int64_t *seen = NULL; /* values ok reads returned, sorted */
    size_t n_seen = 0;
    if (reduced) {
        seen = malloc((n_in + 1) * sizeof *seen);
        if (seen == NULL)
            return -1;
        for (size_t i = 0; i < n_in; i++)
            if (in[i].kind == KZ_LIN_READ && in[i].outcome == KZ_LIN_OK)
                seen[n_seen++] = in[i].value;
        qsort(seen, n_seen, sizeof *seen, by_value);
    }
    /* Keep what constrains: ok reads, and every compare-and-set. */
    struct kz_lin_op *ops = malloc((n_in + 1) * sizeof *ops);
    struct entry *e = malloc((2 * n_in + 1) * sizeof *e);
    size_t *pos = malloc((n_in + 1) * sizeof *pos);
    struct frame *stack = malloc((n_in + 1) * sizeof *stack);
    size_t words = n_in / 64 + 1;
    uint64_t *bits = calloc(words, sizeof *bits);
    struct memo memo = {.words = words};
    int rc = -1;
    if (!ops || !e || !pos || !stack || !bits)
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < n_in; i++) {
        if (in[i].kind != KZ_LIN_CAS && in[i].outcome != KZ_LIN_OK)
            continue;
        if (reduced && in[i].kind == KZ_LIN_CAS &&
            in[i].outcome == KZ_LIN_UNKNOWN &&
            bsearch(&in[i].value, seen, n_seen, sizeof *seen, by_value) ==
                NULL)
            continue;
        ops[n++] = in[i];
    }

    size_t ne = 0, returns = 0;
    for (size_t i = 0; i < n; i++) {
        e[ne++] = (struct entry){.time = ops[i].invoke_us, .is_call = true,
                                 .op = i};
        if (ops[i].outcome != KZ_LIN_UNKNOWN) {
            e[ne++] = (struct entry){.time = ops[i].complete_us,
                                     .is_call = false, .op = i};
            returns++;
        }
    }
    qsort(e, ne, sizeof *e, by_event);
    for (size_t i = 0; i < n; i++)
        pos[i] = SIZE_MAX;
    for (size_t i = 0; i < ne; i++) {
        e[i].prev = i ? i - 1 : SIZE_MAX;
        e[i].next = i + 1 < ne ? i + 1 : SIZE_MAX;
        e[i].match = SIZE_MAX;
        if (e[i].is_call)
            pos[e[i].op] = i;
    }
    for (size_t i = 0; i < ne; i++)
        if (!e[i].is_call) {
            e[i].match = pos[e[i].op];
            e[pos[e[i].op]].match = i;
        }

    struct state s = {.version = version0, .value = value0, .known = true};
    size_t head = ne ? 0 : SIZE_MAX, depth = 0, linearized_returns = 0;
    size_t best = 0, bad_op = SIZE_MAX;
    struct state bad_state = s;
    size_t cur = head;
    int alt = 0;
    res->linearizable = true;
    while (linearized_returns < returns) {
        if (cur == SIZE_MAX || !e[cur].is_call) {
            /* A return of an operation not yet linearized (or the end):
             * back to the last choice. */
            if (cur != SIZE_MAX && depth >= best) {
                best = depth;
                bad_op = e[cur].op;
                bad_state = s;
            }
            if (depth == 0) {
                res->linearizable = false;
                break;
            }
            struct frame f = stack[--depth];
            size_t c = f.entry;
            const struct kz_lin_op *op = &ops[e[c].op];
            s = f.before;
            bits[e[c].op / 64] &= ~(1ull << (e[c].op % 64));
            if (e[c].match != SIZE_MAX) {
                relink_entry(e, e[c].match, &head);
                linearized_returns--;
            }
            relink_entry(e, c, &head);
            (void)op;
            cur = c;
            alt = f.alt + 1; /* the next alternative of the same call */
            continue;
        }
        const struct kz_lin_op *op = &ops[e[cur].op];
        struct state next;
        if (alt > 1) { /* no alternative left here: move on */
            cur = e[cur].next;
            alt = 0;
            continue;
        }
        if (!step(op, &s, alt, &next)) {
            if (alt == 0 && op->outcome == KZ_LIN_UNKNOWN &&
                op->kind == KZ_LIN_CAS) {
                alt = 1;
                continue;
            }
            cur = e[cur].next;
            alt = 0;
            continue;
        }
        if (++res->states > max_states) {
            res->gave_up = true;
            res->linearizable = false;
            break;
        }
        bits[e[cur].op / 64] |= 1ull << (e[cur].op % 64);
        int added = memo_add(&memo, bits, &next);
        if (added < 0)
            goto out;
        if (added == 0) { /* explored before */
            bits[e[cur].op / 64] &= ~(1ull << (e[cur].op % 64));
            if (alt == 0 && op->outcome == KZ_LIN_UNKNOWN) {
                alt = 1;
                continue;
            }
            cur = e[cur].next;
            alt = 0;
            continue;
        }
        stack[depth++] = (struct frame){.entry = cur, .alt = alt, .before = s};
        s = next;
        unlink_entry(e, cur, &head);
        if (e[cur].match != SIZE_MAX) {
            unlink_entry(e, e[cur].match, &head);
            linearized_returns++;
        }
        cur = head;
        alt = 0;
    }
    if (!res->linearizable && !res->gave_up && bad_op != SIZE_MAX) {
        res->bad_id = ops[bad_op].id;
        describe(&ops[bad_op], &bad_state, res->why, sizeof res->why);
    } else if (res->gave_up) {
        snprintf(res->why, sizeof res->why,
                 "search gave up after %zu states", res->states);
    }
    rc = 0;
out:
    memo_free(&memo);
    free(seen);
    free(ops);
    free(e);
    free(pos);
    free(stack);
    free(bits);
    return rc;
}
