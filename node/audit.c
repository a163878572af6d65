/*
 * audit.c — the hash-chained audit log (audit.h).
 *
 * Happy path: apply appends records after the head; retention prunes the
 * oldest and moves the checkpoint forward; verify walks from the checkpoint
 * to the head. Failure modes: a record that does not decode, sits under
 * another seq's key, or does not link to the one before it breaks the chain
 * at that seq; prune stops before such a record rather than delete it.
 */
#include "audit.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz_endian.h"
#include "records.h"

static const char head_key[] = "audit/head";
static const char checkpoint_key[] = "audit/checkpoint";

#define KZ__AUDIT_CHECKPOINT_BYTES 48

static size_t record_key(char *buf, size_t cap, const char *muni, uint64_t seq)
{
    int n = snprintf(buf, cap, "%s/a/%016llx", muni, (unsigned long long)seq);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

int kz_node_audit_load_head(kz_stor *st, struct kz_node_audit_head *h)
{
    memset(h, 0, sizeof *h);
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, KZ_STOR_CF_META, head_key, sizeof head_key - 1,
                         &v, &vl);
    if (rv == KZ_ENOTFOUND)
        return KZ_OK;
    if (rv != KZ_OK)
        return rv;
    if (vl != 40) {
        free(v);
        return KZ_ECORRUPT;
    }
    h->seq = kz_get_be64((unsigned char *)v);
    memcpy(h->hash, v + 8, 32);
    free(v);
    return KZ_OK;
}

int kz_node_audit_append(kz_stor_batch *b, const char *muni,
                         struct kz_node_audit_head *h, uint64_t raft_index,
                         int64_t at_ms, const Kizuna__AuditContext *ctx)
{
    Kizuna__AuditRecord rec = KIZUNA__AUDIT_RECORD__INIT;
    rec.has_seq = 1;
    rec.seq = h->seq + 1;
    rec.has_at_ms = 1;
    rec.at_ms = at_ms;
    rec.has_raft_index = 1;
    rec.raft_index = raft_index;
    rec.ctx = (Kizuna__AuditContext *)ctx;
    rec.has_prev_hash = 1;
    rec.prev_hash.data = h->hash;
    rec.prev_hash.len = 32;
    size_t n = kizuna__audit_record__get_packed_size(&rec);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return KZ_ENOMEM;
    kizuna__audit_record__pack(&rec, buf);
    char key[96];
    size_t kl = record_key(key, sizeof key, muni, rec.seq);
    kz_stor_batch_put(b, KZ_STOR_CF_RECORDS, key, kl, buf, n);
    SHA256(buf, n, h->hash);
    free(buf);
    h->seq = rec.seq;
    return KZ_OK;
}

void kz_node_audit_put_head(kz_stor_batch *b,
                            const struct kz_node_audit_head *h)
{
    unsigned char hv[40];
    kz_put_be64(hv, h->seq);
    memcpy(hv + 8, h->hash, 32);
    kz_stor_batch_put(b, KZ_STOR_CF_META, head_key, sizeof head_key - 1, hv,
                      sizeof hv);
}

int kz_node_audit_load_checkpoint(kz_stor *st,
                                  struct kz_node_audit_checkpoint *cp)
{
    memset(cp, 0, sizeof *cp);
    char *v;
    size_t vl;
    int rv = kz_stor_get(st, KZ_STOR_CF_META, checkpoint_key,
                         sizeof checkpoint_key - 1, &v, &vl);
    if (rv == KZ_ENOTFOUND)
        return KZ_OK;
    if (rv != KZ_OK)
        return rv;
    if (vl != KZ__AUDIT_CHECKPOINT_BYTES) {
        free(v);
        return KZ_ECORRUPT;
    }
    cp->seq = kz_get_be64((unsigned char *)v);
    memcpy(cp->hash, v + 8, 32);
    cp->at_ms = (int64_t)kz_get_be64((unsigned char *)v + 40);
    free(v);
    return KZ_OK;
}

/* Why the record rec, stored under key k, does not continue the chain at
 * seq expect after a record whose hash is prev; NULL when it does. */
static const char *chain_break(const char *muni, uint64_t expect,
                               const unsigned char prev[32], const char *k,
                               size_t kl, const Kizuna__AuditRecord *rec)
{
    if (rec == NULL)
        return "record does not decode";
    if (!rec->has_seq)
        return "record without a sequence number";
    if (rec->seq > expect)
        return "record missing";
    if (rec->seq != expect)
        return "sequence number out of order";
    if (!rec->has_prev_hash || rec->prev_hash.len != 32 ||
        memcmp(rec->prev_hash.data, prev, 32) != 0)
        return "previous-hash link broken";
    char want[96];
    size_t wl = record_key(want, sizeof want, muni, rec->seq);
    if (wl != kl || memcmp(want, k, kl) != 0)
        return "record stored under another key";
    return NULL;
}

/* An iterator over the records from seq `from` on; NULL when out of
 * memory (or muni is absurdly long). The caller frees it with
 * kz_stor_iter_free. */
static kz_stor_iter *records_from(kz_stor *st, const char *muni, uint64_t from)
{
    char prefix[32], start[96];
    int pl = snprintf(prefix, sizeof prefix, "%s/a/", muni);
    size_t sl = record_key(start, sizeof start, muni, from);
    if (pl < 0 || (size_t)pl >= sizeof prefix || sl == 0)
        return NULL;
    return kz_stor_iter_new(st, KZ_STOR_CF_RECORDS, prefix, (size_t)pl, start,
                            sl);
}

/* Walks from the checkpoint as verify does, so only records that link are
 * deleted: pruning cannot launder a changed record (the next record kept
 * would no longer link to the new checkpoint) nor a removed one (prune stops
 * at the gap). */
int kz_node_audit_prune(kz_stor *st, kz_stor_batch *b, const char *muni,
                        int64_t before_ms, uint64_t max, uint64_t *pruned,
                        struct kz_node_audit_checkpoint *cp)
{
    if (pruned != NULL)
        *pruned = 0;
    struct kz_node_audit_checkpoint c;
    struct kz_node_audit_head head;
    int rv = kz_node_audit_load_checkpoint(st, &c);
    if (rv == KZ_OK)
        rv = kz_node_audit_load_head(st, &head);
    if (rv != KZ_OK)
        return rv;
    if (cp != NULL)
        *cp = c;
    kz_stor_iter *it = records_from(st, muni, c.seq + 1);
    if (it == NULL)
        return KZ_ENOMEM;
    uint64_t n = 0;
    const char *k, *v;
    size_t kl, vl;
    /* c.seq + 1 is the record looked at next: never the head. */
    while (n < max && c.seq + 1 < head.seq &&
           kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        Kizuna__AuditRecord *rec =
            kizuna__audit_record__unpack(NULL, vl, (const uint8_t *)v);
        const char *why = chain_break(muni, c.seq + 1, c.hash, k, kl, rec);
        int64_t at_ms = rec != NULL ? rec->at_ms : 0;
        if (rec != NULL)
            kizuna__audit_record__free_unpacked(rec, NULL);
        if (why != NULL || at_ms >= before_ms)
            break;
        kz_stor_batch_delete(b, KZ_STOR_CF_RECORDS, k, kl);
        c.seq++;
        SHA256((const unsigned char *)v, vl, c.hash);
        c.at_ms = at_ms;
        n++;
    }
    kz_stor_iter_free(it);
    if (n > 0) {
        unsigned char cv[KZ__AUDIT_CHECKPOINT_BYTES];
        kz_put_be64(cv, c.seq);
        memcpy(cv + 8, c.hash, 32);
        kz_put_be64(cv + 40, (uint64_t)c.at_ms);
        kz_stor_batch_put(b, KZ_STOR_CF_META, checkpoint_key,
                          sizeof checkpoint_key - 1, cv, sizeof cv);
    }
    if (pruned != NULL)
        *pruned = n;
    if (cp != NULL)
        *cp = c;
    return KZ_OK;
}

static void hexify(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

int kz_node_audit_verify(kz_stor *st, const char *muni,
                         struct kz_node_audit_check *out)
{
    memset(out, 0, sizeof *out);
    struct kz_node_audit_head head;
    int rv = kz_node_audit_load_head(st, &head);
    if (rv == KZ_OK)
        rv = kz_node_audit_load_checkpoint(st, &out->checkpoint);
    if (rv != KZ_OK)
        return rv;
    uint64_t expect = out->checkpoint.seq + 1;
    out->first_seq = expect;
    kz_stor_iter *it = records_from(st, muni, expect);
    if (it == NULL)
        return KZ_ENOMEM;
    unsigned char running[32];
    memcpy(running, out->checkpoint.hash, 32);
    /* The prune that set the checkpoint recorded it in the chain (subject
     * "audit-checkpoint-<seq>-<first 16 bytes of its hash>", register.c):
     * a checkpoint rewritten to skip records has no such witness. */
    char witness[80] = "";
    bool witnessed = out->checkpoint.seq == 0;
    if (!witnessed) {
        int off = snprintf(witness, sizeof witness, "audit-checkpoint-%llu-",
                           (unsigned long long)out->checkpoint.seq);
        hexify(out->checkpoint.hash, 16, witness + off);
    }
    const char *k, *v;
    size_t kl, vl;
    out->ok = true;
    while (kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        Kizuna__AuditRecord *rec =
            kizuna__audit_record__unpack(NULL, vl, (const uint8_t *)v);
        if (!witnessed && rec != NULL && rec->ctx != NULL &&
            rec->ctx->subject != NULL &&
            strcmp(rec->ctx->subject, witness) == 0)
            witnessed = true;
        const char *why = chain_break(muni, expect, running, k, kl, rec);
        if (rec != NULL)
            kizuna__audit_record__free_unpacked(rec, NULL);
        if (why != NULL) {
            out->ok = false;
            out->first_bad = expect;
            snprintf(out->why, sizeof out->why, "%s", why);
            break;
        }
        SHA256((const unsigned char *)v, vl, running);
        out->entries++;
        expect++;
    }
    kz_stor_iter_free(it);
    /* The walk must end exactly at the head: this catches a truncated tail
     * and a changed newest record, which no later record links to. */
    uint64_t last = expect - 1;
    const char *why = NULL;
    if (out->ok && last < head.seq) {
        out->first_bad = last + 1;
        why = "records missing at the end of the log";
    } else if (out->ok && last > head.seq) {
        out->first_bad = head.seq + 1;
        why = "records after the recorded head";
    } else if (out->ok && memcmp(running, head.hash, 32) != 0) {
        out->first_bad = head.seq;
        why = "the newest record does not match the recorded head";
    } else if (out->ok && !witnessed) {
        out->first_bad = out->first_seq;
        why = "no prune in the chain recorded this checkpoint";
    }
    if (why != NULL) {
        out->ok = false;
        snprintf(out->why, sizeof out->why, "%s", why);
    }
    memcpy(out->head, running, 32);
    return KZ_OK;
}

/* Whether a record is about subject: its subject, or one of the records a
 * read disclosed. */
static bool about(const Kizuna__AuditContext *c, const char *subject)
{
    if (c == NULL)
        return false;
    if (c->subject != NULL && strcmp(c->subject, subject) == 0)
        return true;
    for (size_t i = 0; i < c->n_subjects; i++)
        if (strcmp(c->subjects[i], subject) == 0)
            return true;
    return false;
}

json_t *kz_node_audit_list(kz_stor *st, const char *muni, uint64_t after,
                           int64_t from_ms, int64_t to_ms, size_t limit,
                           const char *subject, uint64_t *next)
{
    return kz_node_audit_list_org(st, muni, after, from_ms, to_ms, limit,
                                  subject, NULL, next);
}

json_t *kz_node_audit_list_org(kz_stor *st, const char *muni, uint64_t after,
                               int64_t from_ms, int64_t to_ms, size_t limit,
                               const char *subject, const char *org,
                               uint64_t *next)
{
    json_t *arr = json_array();
    *next = 0;
    char prefix[32], start[96];
    int pl = snprintf(prefix, sizeof prefix, "%s/a/", muni);
    size_t sl = record_key(start, sizeof start, muni, after + 1);
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_RECORDS, prefix,
                                        (size_t)pl, start, sl);
    if (it == NULL)
        return arr;
    const char *k, *v;
    size_t kl, vl;
    while (kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        Kizuna__AuditRecord *rec =
            kizuna__audit_record__unpack(NULL, vl, (const uint8_t *)v);
        if (rec == NULL)
            continue;
        const Kizuna__AuditContext *c = rec->ctx;
        if ((subject != NULL && !about(c, subject)) ||
            (org != NULL &&
             (c == NULL || c->org == NULL || strcmp(c->org, org) != 0)) ||
            rec->at_ms < from_ms || rec->at_ms > to_ms) {
            kizuna__audit_record__free_unpacked(rec, NULL);
            continue;
        }
        if (json_array_size(arr) == limit) {
            *next = rec->seq - 1;
            kizuna__audit_record__free_unpacked(rec, NULL);
            break;
        }
        char t[40], prev[65] = "", hash[65];
        unsigned char h[32];
        SHA256((const unsigned char *)v, vl, h);
        hexify(h, 32, hash);
        if (rec->prev_hash.len == 32)
            hexify(rec->prev_hash.data, 32, prev);
        kz_node_format_time(rec->at_ms, t, sizeof t);
        json_t *o = json_pack("{s:I,s:s,s:I,s:s,s:s}", "seq",
                              (json_int_t)rec->seq, "at", t, "raft_index",
                              (json_int_t)rec->raft_index, "prev_hash", prev,
                              "hash", hash);
#define KZ__AUDIT_STR(field)                                                  \
    if (c != NULL && c->field != NULL)                                         \
        json_object_set_new(o, #field, json_string(c->field));
        KZ__AUDIT_STR(org)
        KZ__AUDIT_STR(role)
        KZ__AUDIT_STR(cert_sha256)
        KZ__AUDIT_STR(purpose)
        KZ__AUDIT_STR(request_id)
        KZ__AUDIT_STR(region)
        KZ__AUDIT_STR(action)
        KZ__AUDIT_STR(subject)
        KZ__AUDIT_STR(person)
#undef KZ__AUDIT_STR
        if (c != NULL && c->n_subjects > 0) {
            json_t *subs = json_array();
            for (size_t i = 0; i < c->n_subjects; i++)
                json_array_append_new(subs, json_string(c->subjects[i]));
            json_object_set_new(o, "subjects", subs);
        }
        if (c != NULL && c->has_at_ms) {
            char when[40];
            kz_node_format_time(c->at_ms, when, sizeof when);
            json_object_set_new(o, "accessed_at", json_string(when));
        }
        if (c != NULL && c->has_node_id)
            json_object_set_new(o, "node", json_integer((json_int_t)c->node_id));
        if (c != NULL && c->has_outcome)
            json_object_set_new(o, "outcome", json_integer(c->outcome));
        if (c != NULL && c->has_count)
            json_object_set_new(o, "count", json_integer((json_int_t)c->count));
        json_array_append_new(arr, o);
        kizuna__audit_record__free_unpacked(rec, NULL);
    }
    kz_stor_iter_free(it);
    return arr;
}
