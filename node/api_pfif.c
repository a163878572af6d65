/*
 * api_pfif.c — PFIF 1.4 interchange (registrar role):
 *
 *   POST /v1/import/pfif[?dry_run=1]  one batch (a PFIF document of at most
 *        500 persons, 4 MB) decoded by pfif.h and proposed as one
 *        ImportPfif command: every person created, or updated when its
 *        person_record_id is known; the answer lists each person's outcome
 *        plus the proposer's rejections and warnings.
 *   GET  /v1/export/pfif  the register's consented records as one PFIF
 *        document, streamed.
 *
 * The export reads at a read index, then page by page (at most PAGE
 * persons, SCAN records looked at, per page) from local state: a page's
 * persons leave only once an audit entry naming each of them
 * (victim.export, subjects) is committed, exactly as a search is audited;
 * the last page's entry also carries the export's own record (pfif.export,
 * count = persons disclosed). The response starts (200, the document's
 * head) once the read index is reached; a failure after that cuts the
 * stream (h2o's error state: the client sees a truncated transfer, never a
 * well-formed document with records missing). The body is produced as h2o
 * asks for more (its generator's proceed), so one page at a time is held.
 *
 * Failure modes: the client goes away (h2o stops the generator and frees
 * the request: a guard in the request's pool cuts the link; a raft request
 * in flight then only frees the state); no quorum for an audit entry (the
 * stream is cut, nothing of that page left the node).
 */
#include <h2o.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "apply.h"
#include "keys.h"
#include "kz_log.h"
#include "node.h"
#include "pfif.h"
#include "records.h"
#include "register.h"

/* ------------------------------------------------------------- import */

static int handle_import(struct kz_node *n, h2o_req_t *req,
                         const struct route *r, const char *rid)
{
    char code[32], err[KZ_NODE_ERR_MAX];
    bool dry = false;
    if (!kz_http_dry_run(n, req, rid, &dry))
        return 0;
    if (req->entity.base == NULL || req->entity.len == 0) {
        kz_http_send_error(n, req, rid, 400, "bad_request",
                           "a PFIF 1.4 XML document is required");
        return 0;
    }
    struct kz_node_pfif_batch b;
    int status = 400;
    if (kz_node_pfif_decode(req->entity.base, req->entity.len, &b, &status,
                            code, sizeof code, err, sizeof err) != 0) {
        kz_node_pfif_batch_free(&b);
        kz_http_send_error(n, req, rid, status, code, err);
        return 0;
    }
    kz_log(KZ_LOG_INFO, "pfif import batch",
           "persons=%zu notes=%zu valid=%zu rejected=%zu dry_run=%s "
           "request_id=%s",
           b.persons, b.notes, b.n, json_array_size(b.rejected),
           dry ? "true" : "false", rid);
    json_t *merge = json_pack("{s:O,s:O,s:b}", "rejected", b.rejected,
                              "warnings", b.warnings, "dry_run", dry);
    if (merge == NULL) {
        kz_node_pfif_batch_free(&b);
        kz_http_send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    if (dry || b.n == 0) {
        /* Nothing to write: answered from here. Whether a person would be
         * created or updated is decided on apply, so a dry run counts. */
        json_object_set_new(merge, "accepted", json_integer((json_int_t)b.n));
        json_object_set_new(merge, "created", json_integer(0));
        json_object_set_new(merge, "updated", json_integer(0));
        json_object_set_new(merge, "persons", json_array());
        kz_node_pfif_batch_free(&b);
        kz_http_send_json(n, req, 200, merge);
        return 0;
    }
    Kizuna__PfifPerson *ps = calloc(b.n, sizeof *ps);
    Kizuna__PfifPerson **pp = calloc(b.n, sizeof *pp);
    int rv = 0;
    if (ps == NULL || pp == NULL)
        goto err_oom;
    for (size_t i = 0; i < b.n; i++) {
        kizuna__pfif_person__init(&ps[i]);
        pp[i] = &ps[i];
        ps[i].victim = b.rows[i].v;
        ps[i].n_set = b.rows[i].n_set;
        ps[i].set = b.rows[i].set;
        ps[i].has_notes_only = 1;
        ps[i].notes_only = b.rows[i].notes_only;
        ps[i].has_line = 1;
        ps[i].line = (uint32_t)b.rows[i].line;
        if (!b.rows[i].notes_only) {
            char id[32];
            kz_http_new_victim_id(id);
            if ((b.rows[i].v->id = strdup(id)) == NULL)
                goto err_oom;
        }
    }
    json_object_set_new(merge, "accepted", json_integer((json_int_t)b.n));
    Kizuna__ImportPfif ip = KIZUNA__IMPORT_PFIF__INIT;
    ip.n_persons = b.n;
    ip.persons = pp;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_IMPORT_PFIF;
    cmd.import_pfif = &ip;
    rv = kz_http_propose_merge(n, req, r, "", rid, &cmd, merge);
    free(pp);
    free(ps);
    kz_node_pfif_batch_free(&b);
    return rv;
err_oom:
    free(pp);
    free(ps);
    json_decref(merge);
    kz_node_pfif_batch_free(&b);
    kz_http_send_error(n, req, rid, 500, "internal", "out of memory");
    return 0;
}

/* ------------------------------------------------------------- export */

#define PAGE 200   /* persons per page (and per audit entry) */
#define SCAN 5000  /* records opened per page, at most: bounds a loop turn */

struct export;

/* Lives in the request's pool: disposed when h2o frees the request. */
struct export_guard {
    struct export *x;
};

struct export {
    h2o_generator_t gen;
    kz_cons_req creq;
    struct kz_node *node;
    h2o_req_t *req;       /* NULL once h2o freed the request */
    struct export_guard *guard;
    bool stopped;         /* h2o stopped the generator: send nothing more */
    bool busy;            /* a raft request is in flight */
    bool at_end;
    char rid[24];
    char org[128], role[32], cert[65], purpose[256], source[64];
    char cursor[KZ_NODE_KEY_MAX + 1]; /* first key of the next page */
    size_t cursor_len;
    uint64_t count;       /* persons disclosed so far */
    struct kz_node_text buf; /* the page being audited or sent */
    char **ids;           /* the page's victim ids (its audit subjects) */
    size_t n_ids;
};

static void ids_clear(struct export *x)
{
    for (size_t i = 0; i < x->n_ids; i++)
        free(x->ids[i]);
    x->n_ids = 0;
}

static void export_free(struct export *x)
{
    if (x->guard != NULL)
        x->guard->x = NULL;
    ids_clear(x);
    free(x->ids);
    if (x->buf.p != NULL)
        OPENSSL_cleanse(x->buf.p, x->buf.cap);
    free(x->buf.p);
    free(x);
}

static void guard_dispose(void *arg)
{
    struct export_guard *g = arg;
    struct export *x = g->x;
    if (x == NULL)
        return;
    x->req = NULL;
    x->guard = NULL;
    if (!x->busy)
        export_free(x);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    struct export *x = (struct export *)gen;
    x->stopped = true;
}

/* Sends the buffer (final: the document's end too). */
static void send_page(struct export *x, bool final)
{
    if (final)
        kz_node_pfif_end(&x->buf);
    if (x->buf.oom) {
        h2o_send(x->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    h2o_iovec_t v = h2o_iovec_init(x->buf.p, x->buf.len);
    h2o_send(x->req, &v, 1,
             final ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_audited(kz_cons_req *creq, int status)
{
    struct export *x = creq->data;
    x->busy = false;
    free(creq->result);
    creq->result = NULL;
    if (x->req == NULL) {
        export_free(x);
        return;
    }
    if (x->stopped)
        return; /* freed when h2o disposes the request */
    if (status != 0) {
        kz_log(KZ_LOG_WARN, "pfif export cut",
               "reason=audit_not_committed error=%s persons_sent=%llu "
               "request_id=%s",
               kz_strerror(status), (unsigned long long)x->count, x->rid);
        h2o_send(x->req, NULL, 0, H2O_SEND_STATE_ERROR);
        return;
    }
    x->count += x->n_ids;
    ids_clear(x);
    if (x->at_end)
        kz_log(KZ_LOG_INFO, "pfif export", "persons=%llu request_id=%s",
               (unsigned long long)x->count, x->rid);
    send_page(x, x->at_end);
}

/* Proposes the audit entry of the page in x->ids (and, on the last page,
 * of the whole export) as a read point. */
static int audit_page(struct export *x)
{
    struct kz_node *n = x->node;
    Kizuna__AuditContext ctx[2], *ptrs[2];
    size_t k = 0;
    for (int i = 0; i < 2; i++) {
        kizuna__audit_context__init(&ctx[i]);
        ctx[i].org = x->org;
        ctx[i].role = x->role;
        ctx[i].cert_sha256 = x->cert;
        ctx[i].purpose = x->purpose[0] ? x->purpose : NULL;
        ctx[i].request_id = x->rid;
        ctx[i].has_node_id = 1;
        ctx[i].node_id = n->cfg.id;
        ctx[i].region = n->cfg.region;
        ctx[i].has_outcome = 1;
        ctx[i].outcome = 200;
    }
    if (x->n_ids > 0) {
        ctx[k].action = "victim.export";
        ctx[k].subject = x->ids[0];
        if (x->n_ids > 1) {
            ctx[k].n_subjects = x->n_ids;
            ctx[k].subjects = x->ids;
        }
        ptrs[k] = &ctx[k];
        k++;
    }
    if (x->at_end) {
        ctx[k].action = "pfif.export";
        ctx[k].has_count = 1;
        ctx[k].count = x->count + x->n_ids;
        ptrs[k] = &ctx[k];
        k++;
    }
    Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
    aa.n_entries = k;
    aa.entries = ptrs;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    cmd.has_time_ms = 1;
    cmd.time_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    cmd.request_id = x->rid;
    cmd.municipality = n->cfg.municipality;
    cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
    cmd.audit_append = &aa;
    size_t len = kizuna__command__get_packed_size(&cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return KZ_ENOMEM;
    kizuna__command__pack(&cmd, buf);
    char *sealed = NULL;
    size_t slen = 0;
    int rv = kz_node_keys_seal_command(&n->keys, buf, len, &sealed, &slen);
    free(buf);
    if (rv != KZ_OK)
        return rv;
    x->creq.data = x;
    rv = kz_cons_propose_read(n->cons, &x->creq, sealed, slen, on_audited);
    free(sealed);
    if (rv == KZ_OK)
        x->busy = true;
    return rv;
}

/* Reads the next page into x->buf and x->ids. */
static int read_page(struct export *x)
{
    struct kz_node *n = x->node;
    char prefix[40];
    int pl = snprintf(prefix, sizeof prefix, "%s/v/", n->cfg.municipality);
    kz_stor_iter *it = kz_stor_iter_new(n->stor, KZ_STOR_CF_RECORDS, prefix,
                                        (size_t)pl, x->cursor_len ? x->cursor
                                                                  : NULL,
                                        x->cursor_len);
    if (it == NULL)
        return KZ_ENOMEM;
    if (x->ids == NULL && (x->ids = calloc(PAGE, sizeof *x->ids)) == NULL) {
        kz_stor_iter_free(it);
        return KZ_ENOMEM;
    }
    const char *k, *v;
    size_t kl, vl, scanned = 0;
    int rv = KZ_OK;
    x->at_end = true;
    while (kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        if (x->n_ids >= PAGE || scanned >= SCAN || kl > KZ_NODE_KEY_MAX) {
            /* The next page starts here. */
            x->at_end = false;
            memcpy(x->cursor, k, kl < KZ_NODE_KEY_MAX ? kl : KZ_NODE_KEY_MAX);
            x->cursor_len = kl < KZ_NODE_KEY_MAX ? kl : KZ_NODE_KEY_MAX;
            break;
        }
        scanned++;
        unsigned char *plain;
        size_t plen;
        rv = kz_node_keys_open_value(&n->keys, k, kl, v, vl, &plain, &plen);
        if (rv != KZ_OK)
            break;
        Kizuna__Victim *vic = kizuna__victim__unpack(NULL, plen, plain);
        OPENSSL_cleanse(plain, plen);
        free(plain);
        if (vic == NULL) {
            rv = KZ_ECORRUPT;
            break;
        }
        if (vic->id != NULL && kz_node_pfif_exportable(vic)) {
            kz_node_pfif_write_person(&x->buf, vic, x->source);
            if ((x->ids[x->n_ids] = strdup(vic->id)) != NULL)
                x->n_ids++;
            else
                x->buf.oom = true;
        }
        kizuna__victim__free_unpacked(vic, NULL);
    }
    kz_stor_iter_free(it);
    if (rv == KZ_OK && x->buf.oom)
        rv = KZ_ENOMEM;
    return rv;
}

/* One step: read a page; persons in it wait for their audit entry, an
 * empty page (only records without consent looked at) goes at once as a
 * line end, so h2o asks for the next. */
static void step(struct export *x)
{
    x->buf.len = 0;
    int rv = read_page(x);
    if (rv == KZ_OK && (x->n_ids > 0 || x->at_end) &&
        !x->node->cfg.audit_reads) {
        /* audit_reads 0: test only, to measure what auditing costs. */
        x->count += x->n_ids;
        ids_clear(x);
        send_page(x, x->at_end);
        return;
    }
    if (rv == KZ_OK && (x->n_ids > 0 || x->at_end))
        rv = audit_page(x);
    else if (rv == KZ_OK) {
        kz_node_pfif_buf_put(&x->buf, "\n");
        send_page(x, false);
        return;
    }
    if (rv != KZ_OK) {
        kz_log(KZ_LOG_ERROR, "pfif export cut", "error=%s request_id=%s",
               kz_strerror(rv), x->rid);
        h2o_send(x->req, NULL, 0, H2O_SEND_STATE_ERROR);
    }
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    struct export *x = (struct export *)gen;
    if (x->req == NULL || x->stopped || x->busy)
        return;
    step(x);
}

static void on_index(kz_cons_req *creq, int status)
{
    struct export *x = creq->data;
    x->busy = false;
    if (x->req == NULL) {
        export_free(x);
        return;
    }
    if (status != 0) {
        kz_http_send_cons_error(x->node, x->req, x->rid, status, false);
        return; /* freed when h2o disposes the request */
    }
    /* The head discloses nothing: the response starts now. */
    kz_http_stream_head(x->node, x->req, 200, "application/xml; charset=utf-8");
    h2o_start_response(x->req, &x->gen);
    x->buf.len = 0;
    kz_node_pfif_begin(&x->buf);
    send_page(x, false);
}

static int handle_export(struct kz_node *n, h2o_req_t *req,
                         const struct route *r, const char *rid)
{
    (void)r;
    char c[32];
    int got = kz_http_query(req, "consistency", c, sizeof c);
    if (got < 0 || (got > 0 && strcmp(c, "linearizable") != 0)) {
        kz_http_send_error(n, req, rid, 400, "bad_request",
                           "consistency: an export is read linearizable "
                           "only (each page is audited through the cluster)");
        return 0;
    }
    if (!n->keys.ready) {
        kz_http_send_error(n, req, rid, 503, "keys_not_ready",
                           "this node cannot open the register's keys yet; "
                           "retry");
        return 0;
    }
    struct export *x = calloc(1, sizeof *x);
    if (x == NULL) {
        kz_http_send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    struct export_guard *g =
        h2o_mem_alloc_shared(&req->pool, sizeof *g, guard_dispose);
    g->x = x;
    x->guard = g;
    x->node = n;
    x->req = req;
    x->gen.proceed = on_proceed;
    x->gen.stop = on_stop;
    snprintf(x->rid, sizeof x->rid, "%s", rid);
    struct kz_http_caller_view who;
    kz_http_caller(n, &who);
    snprintf(x->org, sizeof x->org, "%s", who.org ? who.org : "");
    snprintf(x->role, sizeof x->role, "%s", who.role ? who.role : "");
    snprintf(x->cert, sizeof x->cert, "%s",
             who.cert_sha256 ? who.cert_sha256 : "");
    snprintf(x->purpose, sizeof x->purpose, "%s",
             who.purpose ? who.purpose : "");
    snprintf(x->source, sizeof x->source, "Kizuna %s", n->cfg.municipality);
    x->creq.data = x;
    int rv = kz_cons_read_index(n->cons, &x->creq, on_index);
    if (rv != 0) {
        kz_http_send_cons_error(n, req, rid, rv, false);
        return 0; /* freed by guard_dispose */
    }
    x->busy = true;
    return 0;
}

int kz_api_pfif(struct kz_node *n, h2o_req_t *req, const struct route *r,
                const char *rid)
{
    if (r->id == RT_IMPORT_PFIF)
        return handle_import(n, req, r, rid);
    return handle_export(n, req, r, rid);
}
