/* Histories and checkers of kizuna-chaos: see history.h. */
#include "history.h"

#include "linear.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[KZ_H__COUNT] = {
    "init",  "read",  "cas",    "add",     "final",
    "audit", "chain", "digest", "nemesis", "phase", "payout", "payouts",
    "ledger", "member"};
static const char *const result_names[3] = {"ok", "fail", "unknown"};

const char *kz_hist_op_name(int op)
{
    return op >= 0 && op < KZ_H__COUNT ? op_names[op] : "?";
}

const char *kz_hist_result_name(int result)
{
    return result >= 0 && result < 3 ? result_names[result] : "?";
}

int kz_hist_add(struct kz_hist *h, const struct kz_hist_op *op)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        struct kz_hist_op *o = realloc(h->ops, cap * sizeof *o);
        if (o == NULL)
            return -1;
        h->ops = o;
        h->cap = cap;
    }
    h->ops[h->n++] = *op;
    return 0;
}

void kz_hist_free(struct kz_hist *h)
{
    free(h->ops);
    memset(h, 0, sizeof *h);
}

static int by_t0(const void *a, const void *b)
{
    const struct kz_hist_op *x = a, *y = b;
    if (x->t0 != y->t0)
        return x->t0 < y->t0 ? -1 : 1;
    /* stable enough: keep file order for equal times via proc, then key */
    if (x->proc != y->proc)
        return x->proc < y->proc ? -1 : 1;
    return 0;
}

void kz_hist_sort(struct kz_hist *h)
{
    if (h->n > 1)
        qsort(h->ops, h->n, sizeof *h->ops, by_t0);
}

/* ------------------------------------------------------------ JSON lines */

int kz_hist_write(FILE *f, const struct kz_hist_op *op)
{
    json_t *o = json_pack(
        "{s:I,s:I,s:i,s:i,s:s,s:s,s:s,s:i}", "t0", (json_int_t)op->t0, "t1",
        (json_int_t)op->t1, "proc", (int)op->proc, "node", (int)op->node,
        "region", op->region, "op", kz_hist_op_name(op->op), "result",
        kz_hist_result_name(op->result), "status", op->status);
    if (o == NULL)
        return -1;
    if (op->key[0])
        json_object_set_new(o, "key", json_string(op->key));
    if (op->expect)
        json_object_set_new(o, "expect", json_integer((json_int_t)op->expect));
    if (op->version)
        json_object_set_new(o, "version",
                            json_integer((json_int_t)op->version));
    if (op->value)
        json_object_set_new(o, "value", json_integer((json_int_t)op->value));
    if (op->rid[0])
        json_object_set_new(o, "rid", json_string(op->rid));
    if (op->what[0])
        json_object_set_new(o, "what", json_string(op->what));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL)
        return -1;
    int rc = fprintf(f, "%s\n", s) < 0 ? -1 : 0;
    free(s);
    return rc;
}

static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* Copies a string member, cut to size at a UTF-8 character boundary (a
 * cut character would make the line unwritable as JSON). */
static void copy_str(json_t *o, const char *k, char *dst, size_t size)
{
    const char *s = json_string_value(json_object_get(o, k));
    size_t n = s ? strlen(s) : 0;
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; /* s[n] is where the next character would start */
    }
    memcpy(dst, s ? s : "", n);
    dst[n] = '\0';
}

int kz_hist_parse_line(const char *line, struct kz_hist_op *op)
{
    memset(op, 0, sizeof *op);
    json_t *o = json_loads(line, 0, NULL);
    if (o == NULL || !json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    int rc = -1;
    json_t *t0 = json_object_get(o, "t0"), *t1 = json_object_get(o, "t1");
    const char *ops = json_string_value(json_object_get(o, "op"));
    const char *res = json_string_value(json_object_get(o, "result"));
    if (!json_is_integer(t0) || !json_is_integer(t1) || ops == NULL ||
        res == NULL)
        goto out;
    op->op = name_index(ops, op_names, KZ_H__COUNT);
    op->result = name_index(res, result_names, 3);
    if (op->op < 0 || op->result < 0)
        goto out;
    op->t0 = json_integer_value(t0);
    op->t1 = json_integer_value(t1);
    /* The checkers size per-second tables by the last t1: a time outside
     * one run's span is malformed, not a reason to allocate terabytes. */
    if (op->t0 < 0 || op->t1 < op->t0 || op->t1 > KZ_HIST_MAX_US)
        goto out;
    op->proc = (unsigned)json_integer_value(json_object_get(o, "proc"));
    op->node = (unsigned)json_integer_value(json_object_get(o, "node"));
    op->status = (int)json_integer_value(json_object_get(o, "status"));
    op->expect = (uint64_t)json_integer_value(json_object_get(o, "expect"));
    op->version = (uint64_t)json_integer_value(json_object_get(o, "version"));
    op->value = json_integer_value(json_object_get(o, "value"));
    copy_str(o, "region", op->region, sizeof op->region);
    copy_str(o, "key", op->key, sizeof op->key);
    copy_str(o, "rid", op->rid, sizeof op->rid);
    copy_str(o, "what", op->what, sizeof op->what);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int kz_hist_load(const char *path, struct kz_hist *h, char *err,
                 size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len <= 1)
            continue;
        struct kz_hist_op op;
        if (kz_hist_parse_line(line, &op) != 0) {
            snprintf(err, errlen, "%s:%zu: not a history line", path, lineno);
            rc = -1;
            break;
        }
        if (kz_hist_add(h, &op) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------- checkers */

static int anomaly(struct kz_check *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **a = realloc(c->anomaly, (c->anomalies + 1) * sizeof *a);
    if (a == NULL)
        return -1;
    c->anomaly = a;
    if ((a[c->anomalies] = strdup(buf)) == NULL)
        return -1;
    c->anomalies++;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    const struct kz_hist_op *const *x = a, *const *y = b;
    int k = strcmp((*x)->key, (*y)->key);
    if (k != 0)
        return k;
    return (*x)->t0 < (*y)->t0 ? -1 : (*x)->t0 > (*y)->t0;
}

/* The register: every key's reads and compare-and-sets, from its init. */
static int check_register(const struct kz_hist *h, size_t max_states,
                          struct kz_check *c)
{
    size_t m = 0;
    const struct kz_hist_op **v = malloc((h->n + 1) * sizeof *v);
    struct kz_lin_op *lin = malloc((h->n + 1) * sizeof *lin);
    if (v == NULL || lin == NULL) {
        free(v);
        free(lin);
        return -1;
    }
    for (size_t i = 0; i < h->n; i++) {
        int op = h->ops[i].op;
        if (op == KZ_H_INIT || op == KZ_H_READ || op == KZ_H_CAS)
            v[m++] = &h->ops[i];
    }
    qsort(v, m, sizeof *v, by_key);
    int rc = 0;
    for (size_t i = 0; i < m && rc == 0;) {
        size_t j = i;
        while (j < m && strcmp(v[j]->key, v[i]->key) == 0)
            j++;
        const struct kz_hist_op *init = NULL;
        size_t n = 0;
        for (size_t k = i; k < j; k++) {
            const struct kz_hist_op *o = v[k];
            if (o->op == KZ_H_INIT) {
                init = o;
                continue;
            }
            if (o->op == KZ_H_READ && o->result != KZ_R_OK)
                continue; /* a failed or unanswered read says nothing */
            if (o->op == KZ_H_CAS && o->result == KZ_R_FAIL &&
                o->status != 412)
                continue; /* refused as a bad request: not applied, and
                             not a statement about the version */
            struct kz_lin_op *l = &lin[n++];
            memset(l, 0, sizeof *l);
            l->invoke_us = o->t0;
            l->complete_us = o->result == KZ_R_UNKNOWN ? INT64_MAX : o->t1;
            l->kind = o->op == KZ_H_READ ? KZ_LIN_READ : KZ_LIN_CAS;
            l->outcome = o->result == KZ_R_OK     ? KZ_LIN_OK
                         : o->result == KZ_R_FAIL ? KZ_LIN_FAIL
                                                  : KZ_LIN_UNKNOWN;
            l->expect = o->expect;
            l->version = o->version;
            l->value = o->value;
            l->id = (size_t)(o - h->ops);
        }
        if (init == NULL) {
            if (n > 0)
                rc = anomaly(c, "register %s: operations but no init line",
                             v[i]->key);
            i = j;
            continue;
        }
        struct kz_lin_result res;
        if (kz_lin_check(lin, n, init->version, init->value, max_states,
                         &res) != 0) {
            rc = -1;
            break;
        }
        c->keys_checked++;
        c->lin_states += res.states;
        if (res.gave_up) {
            c->gave_up = true;
            rc = anomaly(c,
                         "register %s: the linearizability search gave up "
                         "after %zu states (%zu operations): unknown",
                         v[i]->key, res.states, n);
        } else if (!res.linearizable) {
            const struct kz_hist_op *bad =
                res.bad_id < h->n ? &h->ops[res.bad_id] : NULL;
            rc = anomaly(c,
                         "register %s: not linearizable: %s (%s at t=%.3f s "
                         "through node %u)",
                         v[i]->key, res.why,
                         bad ? kz_hist_op_name(bad->op) : "?",
                         bad ? (double)bad->t0 / 1e6 : 0.0,
                         bad ? bad->node : 0);
        }
        i = j;
    }
    free(v);
    free(lin);
    return rc;
}

/* The set: every acknowledged registration is on every node at the end. */
static int by_key_node(const void *a, const void *b)
{
    const struct kz_hist_op *const *x = a, *const *y = b;
    int k = strcmp((*x)->key, (*y)->key);
    if (k != 0)
        return k;
    return (*x)->node < (*y)->node ? -1 : (*x)->node > (*y)->node;
}

static int check_set(const struct kz_hist *h, struct kz_check *c)
{
    unsigned nodes = 0;
    size_t nf = 0;
    const struct kz_hist_op **fin = malloc((h->n + 1) * sizeof *fin);
    if (fin == NULL)
        return -1;
    for (size_t i = 0; i < h->n; i++)
        if (h->ops[i].op == KZ_H_FINAL) {
            fin[nf++] = &h->ops[i];
            if (h->ops[i].node > nodes)
                nodes = h->ops[i].node;
        }
    qsort(fin, nf, sizeof *fin, by_key_node);
    int rc = 0;
    for (size_t i = 0; i < h->n && rc == 0; i++) {
        const struct kz_hist_op *a = &h->ops[i];
        if (a->op != KZ_H_ADD || a->result != KZ_R_OK)
            continue;
        if (nodes == 0) {
            rc = anomaly(c, "set: acknowledged registration %s never read back",
                         a->key);
            continue;
        }
        for (unsigned node = 1; node <= nodes && rc == 0; node++) {
            struct kz_hist_op probe;
            const struct kz_hist_op *pp = &probe, **hit;
            memcpy(probe.key, a->key, sizeof probe.key);
            probe.node = node;
            hit = bsearch(&pp, fin, nf, sizeof *fin, by_key_node);
            if (hit == NULL)
                rc = anomaly(c,
                             "set: acknowledged registration %s was not read "
                             "back on node %u",
                             a->key, node);
            else if ((*hit)->result != KZ_R_OK)
                rc = anomaly(c,
                             "set: acknowledged registration %s (t=%.3f s) is "
                             "missing on node %u",
                             a->key, (double)a->t1 / 1e6, node);
        }
    }
    free(fin);
    return rc;
}

/* Audit: each acknowledged read has exactly one access record; every
 * node's chain verifies and all chains are the same. */
static int check_audit(const struct kz_hist *h, struct kz_check *c)
{
    const struct kz_hist_op *first = NULL;
    bool any_chain = false;
    c->chains_equal = true;
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *o = &h->ops[i];
        if (o->op == KZ_H_AUDIT && o->value != 1 &&
            anomaly(c,
                    "audit: the read %s of %s has %" PRId64
                    " access records, not 1",
                    o->rid, o->key, o->value) != 0)
            return -1;
        if (o->op != KZ_H_CHAIN)
            continue;
        any_chain = true;
        if (o->result != KZ_R_OK &&
            anomaly(c, "audit: node %u's access log does not verify (%s)",
                    o->node, o->what) != 0)
            return -1;
        if (first == NULL) {
            first = o;
        } else if (strcmp(first->what, o->what) != 0 ||
                   first->value != o->value) {
            c->chains_equal = false;
            if (anomaly(c,
                        "audit: node %u's chain (%" PRId64
                        " entries, head %.16s) differs from node %u's "
                        "(%" PRId64 ", %.16s)",
                        o->node, o->value, o->what, first->node,
                        first->value, first->what) != 0)
                return -1;
        }
    }
    if (!any_chain)
        c->chains_equal = false;
    return 0;
}

/* Membership: every change asked for completed, every new member caught
 * up. */
static int check_member(const struct kz_hist *h, struct kz_check *c)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *o = &h->ops[i];
        if (o->op == KZ_H_MEMBER && o->result != KZ_R_OK &&
            anomaly(c, "membership: %s did not complete (%s, status %d)",
                    o->what, kz_hist_result_name(o->result), o->status) != 0)
            return -1;
    }
    return 0;
}

static int check_digest(const struct kz_hist *h, struct kz_check *c)
{
    const struct kz_hist_op *first = NULL;
    c->digests_equal = false;
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *o = &h->ops[i];
        if (o->op != KZ_H_DIGEST)
            continue;
        if (o->result != KZ_R_OK) {
            if (anomaly(c, "convergence: node %u gave no digest (%s)",
                        o->node, o->what) != 0)
                return -1;
            continue;
        }
        if (first == NULL) {
            first = o;
            c->digests_equal = true;
            c->digest_index = o->version;
        } else if (strcmp(first->what, o->what) != 0 ||
                   first->version != o->version) {
            c->digests_equal = false;
            if (anomaly(c,
                        "convergence: node %u holds %.16s at index %" PRIu64
                        ", node %u holds %.16s at index %" PRIu64,
                        o->node, o->what, o->version, first->node,
                        first->what, first->version) != 0)
                return -1;
        }
    }
    return 0;
}

/* Payouts: each household paid (item basic) at most once; every
 * acknowledged payout, and every 409's, is that one; the ledger's total is
 * the sum of the households' totals. */
static int check_payouts(const struct kz_hist *h, struct kz_check *c)
{
    bool any_final = false, ledger_seen = false;
    int64_t sum = 0, ledger = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *f = &h->ops[i];
        if (f->op == KZ_H_LEDGER && f->result == KZ_R_OK) {
            ledger_seen = true;
            ledger = f->value;
        }
        if (f->op != KZ_H_PAYOUTS)
            continue;
        any_final = true;
        if (f->result != KZ_R_OK) {
            if (anomaly(c, "payouts: household %s could not be read back",
                        f->key) != 0)
                return -1;
            continue;
        }
        sum += (int64_t)f->version;
        c->households++;
        if (f->value > 1 &&
            anomaly(c, "payouts: household %s was paid %" PRId64 " times",
                    f->key, f->value) != 0)
            return -1;
    }
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *p = &h->ops[i];
        if (p->op != KZ_H_PAYOUT || !p->what[0] ||
            (p->result != KZ_R_OK && p->status != 409))
            continue;
        const struct kz_hist_op *fin = NULL;
        for (size_t k = 0; k < h->n && fin == NULL; k++)
            if (h->ops[k].op == KZ_H_PAYOUTS &&
                strcmp(h->ops[k].key, p->key) == 0)
                fin = &h->ops[k];
        if (fin == NULL) {
            if (any_final &&
                anomaly(c, "payouts: household %s was not read back",
                        p->key) != 0)
                return -1;
            continue;
        }
        if (fin->result == KZ_R_OK &&
            (fin->value < 1 || strcmp(fin->what, p->what) != 0) &&
            anomaly(c,
                    "payouts: %s payout %s of household %s (t=%.3f s) is not "
                    "the household's payout at the end (%s)",
                    p->result == KZ_R_OK ? "acknowledged" : "409's", p->what,
                    p->key, (double)p->t0 / 1e6,
                    fin->value ? fin->what : "none") != 0)
            return -1;
    }
    if (any_final && ledger_seen && ledger != sum &&
        anomaly(c,
                "payouts: the ledger says %" PRId64 " yen, the households "
                "%" PRId64,
                ledger, sum) != 0)
        return -1;
    c->ledger_equal = any_final && ledger_seen && ledger == sum;
    if (any_final && !ledger_seen &&
        anomaly(c, "payouts: the ledger could not be read") != 0)
        return -1;
    return 0;
}

static bool is_fault(const struct kz_hist_op *o)
{
    static const char *const faults[] = {"kill", "pause", "isolate",
                                         "partition", "stale"};
    if (o->op != KZ_H_NEMESIS)
        return false;
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        if (strncmp(o->what, faults[i], strlen(faults[i])) == 0)
            return true;
    return false;
}

static bool is_write_ok(const struct kz_hist_op *o)
{
    return (o->op == KZ_H_CAS || o->op == KZ_H_ADD || o->op == KZ_H_PAYOUT) &&
           o->result == KZ_R_OK;
}

static int check_failover(const struct kz_hist *h, struct kz_check *c)
{
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *e = &h->ops[i];
        if (!is_fault(e))
            continue;
        int64_t best = -1;
        for (size_t k = 0; k < h->n; k++) {
            const struct kz_hist_op *w = &h->ops[k];
            if (is_write_ok(w) && w->t0 >= e->t0 &&
                (best < 0 || w->t1 < best))
                best = w->t1;
        }
        struct kz_failover *f =
            realloc(c->failovers, (c->n_failovers + 1) * sizeof *f);
        if (f == NULL)
            return -1;
        c->failovers = f;
        f = &c->failovers[c->n_failovers++];
        f->at_s = (double)e->t0 / 1e6;
        f->resumed_after_s = best < 0 ? -1 : (double)(best - e->t0) / 1e6;
        snprintf(f->what, sizeof f->what, "%s", e->what);
    }
    return 0;
}

static int check_availability(const struct kz_hist *h, struct kz_check *c)
{
    int64_t last = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *o = &h->ops[i];
        if (o->op != KZ_H_READ && o->op != KZ_H_CAS && o->op != KZ_H_ADD &&
            o->op != KZ_H_PAYOUT)
            continue;
        if (o->t1 > last)
            last = o->t1;
        size_t r;
        for (r = 0; r < c->n_regions; r++)
            if (strcmp(c->regions[r], o->region) == 0)
                break;
        if (r == c->n_regions) {
            char(*g)[32] = realloc(c->regions, (r + 1) * sizeof *g);
            if (g == NULL)
                return -1;
            c->regions = g;
            snprintf(g[r], sizeof g[r], "%s", o->region);
            c->n_regions++;
        }
    }
    c->seconds = (size_t)(last / 1000000) + 1;
    if (c->n_regions == 0)
        return 0;
    c->invoked = calloc(c->n_regions * c->seconds, sizeof *c->invoked);
    c->answered = calloc(c->n_regions * c->seconds, sizeof *c->answered);
    if (c->invoked == NULL || c->answered == NULL)
        return -1;
    for (size_t i = 0; i < h->n; i++) {
        const struct kz_hist_op *o = &h->ops[i];
        if (o->op != KZ_H_READ && o->op != KZ_H_CAS && o->op != KZ_H_ADD &&
            o->op != KZ_H_PAYOUT)
            continue;
        size_t r = 0;
        while (strcmp(c->regions[r], o->region) != 0)
            r++;
        /* Every second the call was in flight: a call stuck for 3 s on a
         * cut-off node weighs 3 s, not one call among hundreds. */
        size_t s0 = (size_t)(o->t0 < 0 ? 0 : o->t0 / 1000000);
        size_t s1 = (size_t)(o->t1 < o->t0 ? s0 : (size_t)(o->t1 / 1000000));
        for (size_t s = s0; s <= s1 && s < c->seconds; s++) {
            c->invoked[r * c->seconds + s]++;
            if (o->result != KZ_R_UNKNOWN)
                c->answered[r * c->seconds + s]++;
        }
    }
    return 0;
}

int kz_check_run(const struct kz_hist *h, size_t max_states,
                 struct kz_check *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < h->n; i++)
        c->counts[h->ops[i].op][h->ops[i].result]++;
    if (check_register(h, max_states, c) != 0 || check_set(h, c) != 0 ||
        check_audit(h, c) != 0 || check_digest(h, c) != 0 ||
        check_payouts(h, c) != 0 || check_member(h, c) != 0 ||
        check_failover(h, c) != 0 || check_availability(h, c) != 0)
        return -1;
    return 0;
}

void kz_check_free(struct kz_check *c)
{
    for (size_t i = 0; i < c->anomalies; i++)
        free(c->anomaly[i]);
    free(c->anomaly);
    free(c->failovers);
    free(c->regions);
    free(c->invoked);
    free(c->answered);
    memset(c, 0, sizeof *c);
}

/* -------------------------------------------------------------- reports */

void kz_check_print(FILE *f, const struct kz_check *c, const char *title)
{
    fprintf(f, "== %s\n", title);
    fprintf(f, "operations    ok      fail    unknown\n");
    static const int shown[] = {KZ_H_READ, KZ_H_CAS, KZ_H_ADD, KZ_H_PAYOUT};
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++) {
        int op = shown[i];
        fprintf(f, "  %-9s %7zu %7zu %7zu\n", kz_hist_op_name(op),
                c->counts[op][KZ_R_OK], c->counts[op][KZ_R_FAIL],
                c->counts[op][KZ_R_UNKNOWN]);
    }
    fprintf(f,
            "checked: %zu register keys (%zu search states), %zu "
            "registrations on every node, %zu audited reads, digests %s%s, "
            "audit chains %s\n",
            c->keys_checked, c->lin_states, c->counts[KZ_H_ADD][KZ_R_OK],
            c->counts[KZ_H_AUDIT][KZ_R_OK],
            c->digests_equal ? "equal" : "NOT equal",
            c->digests_equal ? "" : "", c->chains_equal ? "equal" : "NOT equal");
    if (c->households > 0)
        fprintf(f,
                "payouts: %zu households each paid at most once, every "
                "acknowledged payout kept, ledger %s the sum\n",
                c->households, c->ledger_equal ? "equal to" : "NOT equal to");
    size_t changes = c->counts[KZ_H_MEMBER][KZ_R_OK] +
                     c->counts[KZ_H_MEMBER][KZ_R_FAIL] +
                     c->counts[KZ_H_MEMBER][KZ_R_UNKNOWN];
    if (changes > 0)
        fprintf(f, "membership: %zu of %zu changes and catch-ups completed\n",
                c->counts[KZ_H_MEMBER][KZ_R_OK], changes);
    fprintf(f, "anomalies: %zu\n", c->anomalies);
    for (size_t i = 0; i < c->anomalies && i < 20; i++)
        fprintf(f, "  ! %s\n", c->anomaly[i]);
    if (c->anomalies > 20)
        fprintf(f, "  ... and %zu more (report.json)\n", c->anomalies - 20);
    if (c->n_failovers > 0)
        fprintf(f, "faults (seconds until a write was acknowledged again):\n");
    for (size_t i = 0; i < c->n_failovers; i++) {
        const struct kz_failover *x = &c->failovers[i];
        if (x->resumed_after_s < 0)
            fprintf(f, "  t=%6.1f s  %-44s never\n", x->at_s, x->what);
        else
            fprintf(f, "  t=%6.1f s  %-44s %6.2f s\n", x->at_s, x->what,
                    x->resumed_after_s);
    }
    if (c->n_regions == 0)
        return;
    fprintf(f,
            "availability (%% of the calls in flight that were answered; the "
            "worst second of each 5 s):\n  %-10s",
            "t (s)");
    for (size_t s = 0; s < c->seconds; s += 5)
        fprintf(f, " %4zu", s);
    fprintf(f, "\n");
    for (size_t r = 0; r < c->n_regions; r++) {
        fprintf(f, "  %-10s", c->regions[r]);
        for (size_t s = 0; s < c->seconds; s += 5) {
            double worst = 2;
            for (size_t k = s; k < s + 5 && k < c->seconds; k++) {
                unsigned inv = c->invoked[r * c->seconds + k];
                double share =
                    inv ? (double)c->answered[r * c->seconds + k] / inv : 2;
                if (share < worst)
                    worst = share;
            }
            if (worst > 1)
                fprintf(f, "    -");
            else
                fprintf(f, " %4u", (unsigned)(100.0 * worst + 0.5));
        }
        fprintf(f, "\n");
    }
}

int kz_check_write_json(const char *path, const struct kz_check *c,
                        const char *scenario, uint64_t seed,
                        double duration_s)
{
    json_t *o = json_object();
    json_object_set_new(o, "scenario", json_string(scenario));
    json_object_set_new(o, "seed", json_integer((json_int_t)seed));
    json_object_set_new(o, "duration_s", json_real(duration_s));
    json_t *ops = json_object();
    for (int op = 0; op < KZ_H__COUNT; op++) {
        json_t *x = json_object();
        for (int r = 0; r < 3; r++)
            json_object_set_new(x, kz_hist_result_name(r),
                                json_integer((json_int_t)c->counts[op][r]));
        json_object_set_new(ops, kz_hist_op_name(op), x);
    }
    json_object_set_new(o, "operations", ops);
    json_t *an = json_array();
    for (size_t i = 0; i < c->anomalies; i++)
        json_array_append_new(an, json_string(c->anomaly[i]));
    json_object_set_new(o, "anomalies", an);
    json_object_set_new(o, "ok", json_boolean(c->anomalies == 0));
    json_object_set_new(o, "register_keys", json_integer((json_int_t)c->keys_checked));
    json_object_set_new(o, "search_states", json_integer((json_int_t)c->lin_states));
    json_object_set_new(o, "digests_equal", json_boolean(c->digests_equal));
    json_object_set_new(o, "digest_index", json_integer((json_int_t)c->digest_index));
    json_object_set_new(o, "audit_chains_equal", json_boolean(c->chains_equal));
    json_object_set_new(o, "payout_households", json_integer((json_int_t)c->households));
    json_object_set_new(o, "ledger_equal", json_boolean(c->ledger_equal));
    json_t *fo = json_array();
    for (size_t i = 0; i < c->n_failovers; i++) {
        const struct kz_failover *x = &c->failovers[i];
        json_array_append_new(
            fo, json_pack("{s:f,s:s,s:o}", "at_s", x->at_s, "fault", x->what,
                          "writes_resumed_after_s",
                          x->resumed_after_s < 0
                              ? json_null()
                              : json_real(x->resumed_after_s)));
    }
    json_object_set_new(o, "faults", fo);
    json_t *av = json_object();
    for (size_t r = 0; r < c->n_regions; r++) {
        json_t *a = json_array();
        for (size_t s = 0; s < c->seconds; s++) {
            unsigned inv = c->invoked[r * c->seconds + s];
            json_array_append_new(
                a, inv ? json_real((double)c->answered[r * c->seconds + s] / inv)
                       : json_null());
        }
        json_object_set_new(av, c->regions[r], a);
    }
    json_object_set_new(o, "availability_per_second", av);
    int rc = json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return rc;
}
