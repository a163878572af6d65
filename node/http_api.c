/*
 * http_api.c — the HTTP/JSON API of API.md on h2o (HTTP/1.1 and HTTP/2 over
 * TLS with required client certificates), on the node's loop.
 *
 * Happy path of a call: h2o parses the request and buffers its body (up to
 * max_body_bytes, else h2o answers 413); on_req finds the route, reads the
 * caller's organisation (O) and role (OU) from its certificate, checks the
 * route's roles, validates input, then
 *   - a write packs a kizuna.Command and proposes it (consensus forwards it
 *     to the leader when this node follows); the state machine's result
 *     ("NNN" + JSON, built on apply) is the response;
 *   - a linearizable read waits for a read index (one raft barrier serves
 *     every read waiting for it), then reads local state;
 *   - a stale read answers from local state at once, marked with
 *     X-Kizuna-Stale-Ms.
 * Between the request and the callback, the client may go away and h2o free
 * the request: a guard allocated in the request's pool (disposed with it)
 * cuts the link, and the late callback only frees its own state.
 *
 * No personal data is logged here: refusals log the route and role only.
 */
#include <h2o.h>
#include <h2o/http2.h>
#include <openssl/crypto.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http_internal.h"
#include "addrbook.h"
#include "backup.h"
#include "kz_fs.h"
#include "kz_log.h"
#include "identity.h"
#include "audit.h"
#include "audit_queue.h"
#include "csv_import.h"
#include "dedup.h"
#include "links.h"
#include "payouts.h"
#include "photos.h"
#include "linkcode.h"
#include "kizuna.pb-c.h"
#include "metrics.h"
#include "node.h"
#include "records.h"
#include "register.h"
#include "search.h"
#include "ui_assets.h"

/* Short names for the role bits of identity.h (the role table lives there),
 * plus R_ANY, a property of a route rather than of a certificate. */
enum role {
    R_NONE = KZ_NODE_ROLE_NONE,
    R_REGISTRAR = KZ_NODE_ROLE_REGISTRAR,
    R_CASEWORKER = KZ_NODE_ROLE_CASEWORKER,
    R_TERMINAL = KZ_NODE_ROLE_TERMINAL,
    R_PAYOUT = KZ_NODE_ROLE_PAYOUT,
    R_AUDITOR = KZ_NODE_ROLE_AUDITOR,
    R_OPERATOR = KZ_NODE_ROLE_OPERATOR,
    R_ORG = KZ_NODE_ROLE_ORG,
    R_CITIZEN = KZ_NODE_ROLE_CITIZEN,
    R_ANY = KZ_NODE_ROLE__ALL + 1 /* no certificate role needed */
};


/* The authorisation table: the one place that says who may call what. */
static const struct route routes[] = {
    /* method, path, route, roles, X-Purpose required, audited read */
    {"GET", "/healthz", RT_HEALTHZ, R_ANY, false, false},
    {"GET", "/readyz", RT_READYZ, R_ANY, false, false},
    {"GET", "/metrics", RT_METRICS, R_ANY, false, false},
    /* The web console: static files, no role (the TLS handshake still
     * wants a client certificate); every call the page makes goes to /v1
     * with the browser's certificate, and the API decides. */
    {"GET", "/ui", RT_UI_ASSET, R_ANY, false, false},
    {"GET", "/ui/", RT_UI_ASSET, R_ANY, false, false},
    {"GET", "/ui/*", RT_UI_ASSET, R_ANY, false, false},
    {"GET", "/v1/cluster", RT_CLUSTER, R_OPERATOR, false, false},
    {"POST", "/v1/victims", RT_VICTIM_CREATE, R_REGISTRAR, false, false},
    {"POST", "/v1/import/csv", RT_IMPORT_CSV, R_REGISTRAR, false, false},
    {"POST", "/v1/import/pfif", RT_IMPORT_PFIF, R_REGISTRAR, false, false},
    {"GET", "/v1/export/pfif", RT_EXPORT_PFIF, R_REGISTRAR, true, true},
    {"GET", "/v1/victims", RT_VICTIM_SEARCH, R_CASEWORKER | R_TERMINAL, true,
     true},
    {"GET", "/v1/victims/*", RT_VICTIM_GET, R_CASEWORKER | R_TERMINAL, true,
     true},
    {"PATCH", "/v1/victims/*", RT_VICTIM_PATCH, R_REGISTRAR | R_CASEWORKER,
     false, false},
    {"POST", "/v1/victims/*/notes", RT_VICTIM_NOTE,
     R_CASEWORKER | R_TERMINAL, false, false},
    {"GET", "/v1/victims/*/duplicates", RT_VICTIM_DUPS,
     R_REGISTRAR | R_CASEWORKER, true, true},
    {"POST", "/v1/victims/*/merge", RT_VICTIM_MERGE, R_REGISTRAR, false,
     false},
    {"POST", "/v1/victims/*/unmerge", RT_VICTIM_UNMERGE, R_REGISTRAR, false,
     false},
    {"PUT", "/v1/shelters/*", RT_SHELTER_PUT, R_REGISTRAR, false, false},
    {"GET", "/v1/shelters/*/summary", RT_SHELTER_SUMMARY,
     R_CASEWORKER | R_REGISTRAR, false, false},
    {"POST", "/v1/cluster/reload-tls", RT_TLS_RELOAD, R_OPERATOR, false, false},
    {"GET", "/v1/cluster/digest", RT_DIGEST, R_OPERATOR, false, false},
    {"POST", "/v1/cluster/backups", RT_BACKUP_CREATE, R_OPERATOR, true, true},
    {"GET", "/v1/cluster/backups/*", RT_BACKUP_GET, R_OPERATOR, false, false},
    {"DELETE", "/v1/cluster/backups/*", RT_BACKUP_DELETE, R_OPERATOR, false,
     false},
    {"POST", "/v1/cluster/nodes", RT_NODE_ADD, R_OPERATOR, false, false},
    {"POST", "/v1/cluster/snapshot", RT_SNAPSHOT, R_OPERATOR, false, false},
    {"DELETE", "/v1/cluster/nodes/*", RT_NODE_REMOVE, R_OPERATOR, false,
     false},
    {"POST", "/v1/cluster/leader", RT_LEADER_TRANSFER, R_OPERATOR, false,
     false},
    {"POST", "/v1/keys/rotate", RT_KEYS_ROTATE, R_OPERATOR, false, false},
    {"GET", "/v1/audit", RT_AUDIT_LIST, R_AUDITOR, false, false},
    {"GET", "/v1/audit/verify", RT_AUDIT_VERIFY, R_AUDITOR, false, false},
    {"PUT", "/v1/orgs/*", RT_ORG_PUT, R_OPERATOR, false, false},
    {"GET", "/v1/orgs/*", RT_ORG_GET, R_OPERATOR, false, false},
    {"PUT", "/v1/whitelist/*", RT_WHITELIST_PUT, R_OPERATOR, false, false},
    {"GET", "/v1/whitelist/*", RT_WHITELIST_GET, R_OPERATOR, false, false},
    {"POST", "/v1/linkcodes", RT_LINK_ISSUE, R_ORG, false, false},
    {"DELETE", "/v1/linkcodes/*", RT_LINK_UNLINK, R_ORG, false, false},
    {"POST", "/v1/mediations", RT_MED_CREATE, R_ORG, false, false},
    {"GET", "/v1/mediations/inbox", RT_MED_INBOX, R_ORG, false, true},
    {"GET", "/v1/mediations/*", RT_MED_GET, R_ORG, false, true},
    {"POST", "/v1/mediations/*/reply", RT_MED_REPLY, R_ORG, false, false},
    {"GET", "/v1/portal/me", RT_PORTAL_ME, R_CITIZEN, false, true},
    {"GET", "/v1/portal/access-log", RT_PORTAL_LOG, R_CITIZEN, false, true},
    {"PUT", "/v1/photos/*", RT_PHOTO_PUT, R_REGISTRAR, false, false},
    {"GET", "/v1/photos/*", RT_PHOTO_GET, R_TERMINAL, true, true},
    {"POST", "/v1/identity/challenges", RT_ID_CHALLENGE,
     R_CASEWORKER | R_TERMINAL, false, false},
    {"POST", "/v1/identity/verifications", RT_ID_VERIFY,
     R_CASEWORKER | R_TERMINAL, false, false},
    {"POST", "/v1/identity/fallback", RT_ID_FALLBACK, R_TERMINAL, false,
     false},
    {"PUT", "/v1/identity/crl", RT_ID_CRL_PUT, R_OPERATOR, false, false},
    {"GET", "/v1/identity/crl", RT_ID_CRL_GET, R_OPERATOR, false, false},
    {"PUT", "/v1/identity/cards/*", RT_ID_CARD_PUT, R_REGISTRAR, false, false},
    {"GET", "/v1/programs", RT_PROGRAMS_GET, R_PAYOUT | R_OPERATOR, false,
     false},
    {"GET", "/v1/programs/*", RT_PROGRAM_GET, R_PAYOUT | R_OPERATOR, false,
     false},
    {"PUT", "/v1/programs/*", RT_PROGRAM_PUT, R_OPERATOR, false, false},
    {"POST", "/v1/payouts", RT_PAYOUT_CREATE, R_PAYOUT, false, false},
    {"GET", "/v1/payouts", RT_PAYOUT_LIST, R_PAYOUT | R_AUDITOR, true, true},
    {"POST", "/v1/payouts/export", RT_PAYOUT_EXPORT, R_PAYOUT, false, false},
    {"GET", "/v1/payouts/ledger", RT_PAYOUT_LEDGER, R_PAYOUT | R_AUDITOR,
     false, false},
    {"GET", "/v1/payouts/*", RT_PAYOUT_GET, R_PAYOUT | R_AUDITOR, true, true},
};

/* One generation of the API's TLS settings (certificate, key, CA, CRL). A
 * reload puts a new one at the head of the list, for new connections; an
 * older one is freed when the last connection accepted with it closes. */
struct tls_gen {
    SSL_CTX *ctx;
    unsigned conns; /* open connections accepted with ctx */
    struct tls_gen *next;
};

/* At most `burst` log lines per 10 s window of one kind, so a flood of
 * refused clients cannot flood the log; the next line written counts the
 * ones left out. */
struct log_limit {
    uint64_t window_start;
    unsigned lines;
    uint64_t left_out;
};

/* Who is calling, for the audit record of what the call changes: set by
 * on_req before it dispatches and read by propose(), which runs within the
 * same on_req call (one thread, no request interleaves). */
struct caller {
    bool known;
    char cn[64]; /* citizens: the portal link code their certificate holds */
    char org[128];
    char role[32];
    char cert_sha256[65];
    char purpose[256];
};

/* Audited reads waiting for their audit entry: up to AUDIT_PIPELINE
 * batches are in flight; reads arriving while all are share the next one.
 * The leader merges batches arriving together from every node into one
 * raft entry (kz_cons_propose_merged), so more batches in flight cost
 * peer messages, not entries: 8 against 4 gave 5-9% more reads at 64
 * connections, the same p50 at 4000 reads/s offered (docs/ARCHITECTURE.md
 * "Audit log"). */
#define AUDIT_PIPELINE 8
struct audit_batch {
    kz_cons_req creq;
    struct kz_node *node;
    struct pending *list;
    bool busy;
};

struct read_audits {
    struct pending *waiting, **tail;
    struct audit_batch slots[AUDIT_PIPELINE];
    unsigned in_flight;
    /* A read's record waits for the end of the loop turn (flush_prep, run
     * before the loop next polls; flush_idle keeps that poll from blocking
     * when the read came after it), so reads arriving in one turn share a
     * batch: one seal and one peer message instead of one each. */
    uv_prepare_t flush_prep;
    uv_idle_t flush_idle;
    bool handles, deferred;
};

/* Stale reads whose records wait for the audit queue's sync (group commit,
 * audit_queue.h): those staged for the next write, and those in the write
 * running on a worker thread. */
struct stale_sync {
    uv_work_t work;
    struct kz_node *node;
    struct pending *waiting, **tail;
    struct pending *writing;
    int status; /* kz_node_audit_queue_write's, set by the worker */
    bool busy;
};

struct kz_node_http {
    struct caller caller;
    struct read_audits audits;
    struct stale_sync stale;
    struct kz_node *node;
    SSL_CTX *ssl_ctx; /* the current context: gens->ctx */
    struct tls_gen *gens; /* current first, then older ones still in use */
    char cert_serial[80]; /* of the current certificate, for logs */
    long crl_revoked;     /* entries in the current CRL; -1: no tls_crl */
    unsigned n_conns;     /* open API connections */
    struct log_limit log_refused_conn, log_refused_cert;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    bool listening;
    char index_hdr[32];
};

/* True when ctx is one of this node's live API contexts (current or one
 * still used by connections accepted before a reload). */
static bool tls_ctx_is_ours(const struct kz_node_http *h, const SSL_CTX *ctx)
{
    for (const struct tls_gen *g = h->gens; g != NULL; g = g->next)
        if (g->ctx == ctx)
            return true;
    return false;
}

struct handler {
    h2o_handler_t super;
    struct kz_node *node;
};

struct pending;

/* Lives in the request's pool: disposed when h2o frees the request. */
struct guard {
    struct pending *p;
};

struct answer {
    int status;
    json_t *body;
    char *text; /* the body as JSON text instead (answer_text) */
    size_t text_len;
    Kizuna__Photo *photo; /* a photo as the body instead of JSON */
    char etag[32];
    json_t *subjects; /* ids of the victims whose data it discloses */
    uint64_t index;
    long long stale_ms;
};

struct pending {
    kz_cons_req creq;
    struct kz_node *node;
    h2o_req_t *req; /* NULL once h2o freed it */
    struct guard *guard;
    const struct route *route;
    char arg[80]; /* path parameter */
    char request_id[24];
    int n_peers_left;
    json_t *cluster; /* RT_CLUSTER: the answer being assembled */
    /* Audited reads (see "read audit" below). */
    struct caller who;
    bool read_first;     /* not yet read: the audit entry is the read point */
    struct answer ans;   /* read already, waiting for its audit record */
    struct pending *next_audit;
    /* kz_http_after_read_index: what to do once the index is applied. */
    void *after_data;
    kz_http_after_fn after_fn;
    void (*after_free)(void *);
    /* A write whose 2xx answer gets these members added to the state
     * machine's (an import's rejected rows, known only here). */
    json_t *merge;
    /* A write that is the first step of a request: on a 2xx, then (which
     * takes p) goes on instead of an answer (an address book entry before
     * the membership change it is for: node_id, node_role). */
    void (*then)(struct pending *p);
    uint64_t node_id;
    int node_role;
};

struct peer_query {
    kz_cons_req creq;
    struct pending *p;
    unsigned slot;
};

/* ---------------------------------------------------------------- helpers */

/* Random bytes from the kernel's generator, fetched 4 KB at a time (in
 * sixteen calls): every request takes 8 for its id, and a getrandom call
 * each was a syscall a request. Only the loop thread calls this. Bytes
 * handed out are wiped from the pool. */
static void random_bytes(unsigned char *b, size_t n)
{
    static unsigned char pool[4096];
    static size_t left;
    while (n > 0) {
        if (left == 0) {
            /* Up to 256 bytes a call is never cut short by a signal. */
            for (size_t at = 0; at < sizeof pool; at += 256)
                if (getrandom(pool + at, 256, 0) != 256)
                    for (size_t i = at; i < at + 256; i++)
                        pool[i] = (unsigned char)(uv_hrtime() >> (i % 8));
            left = sizeof pool;
        }
        size_t take = n < left ? n : left;
        unsigned char *from = pool + sizeof pool - left;
        memcpy(b, from, take);
        memset(from, 0, take);
        left -= take;
        b += take;
        n -= take;
    }
}

static void random_hex(char *out, size_t nbytes)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char b[32];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    random_bytes(b, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

static void guard_dispose(void *arg)
{
    struct guard *g = arg;
    if (g->p != NULL) {
        g->p->req = NULL;
        g->p->guard = NULL;
    }
}

static void answer_free(struct answer *a);

static void pending_free(struct pending *p)
{
    if (p->after_free != NULL)
        p->after_free(p->after_data);
    if (p->guard != NULL)
        p->guard->p = NULL;
    json_decref(p->cluster);
    json_decref(p->merge);
    answer_free(&p->ans);
    free(p);
}

/* h2o keeps pointers, not copies: the value goes into the request's pool.
 * Names are string literals. */
static void add_header(h2o_req_t *req, const char *name, const char *value)
{
    h2o_iovec_t v = h2o_strdup(&req->pool, value, strlen(value));
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 0,
                          NULL, v.base, v.len);
}

static void add_node_headers(struct kz_node *n, h2o_req_t *req,
                             uint64_t index, long long stale_ms)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)n->cfg.id);
    add_header(req, "x-kizuna-node", buf);
    add_header(req, "x-kizuna-region", n->cfg.region);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)index);
    add_header(req, "x-kizuna-index", buf);
    if (stale_ms >= 0) {
        snprintf(buf, sizeof buf, "%lld", stale_ms);
        add_header(req, "x-kizuna-stale-ms", buf);
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static const struct route *route_of(h2o_req_t *req);

/* Microseconds since the request arrived (h2o's request_begin_at: wall
 * clock, read once per loop iteration), for the duration histogram. */
static uint64_t req_age_us(h2o_req_t *req)
{
    const struct timeval *t = &req->timestamps.request_begin_at;
    if (t->tv_sec == 0 && t->tv_usec == 0)
        t = &req->processed_at.at;
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t us = ((int64_t)now.tv_sec - (int64_t)t->tv_sec) * 1000000 +
                 ((int64_t)now.tv_usec - (int64_t)t->tv_usec);
    return us > 0 ? (uint64_t)us : 0; /* the wall clock stepped back */
}

/* At debug level, one line per answer: the route pattern, never the path
 * (paths carry record ids and link codes), and nothing of the caller's
 * certificate. */
static void log_answer(h2o_req_t *req, const struct route *rt, int status,
                       uint64_t us)
{
    if (!kz_log_enabled(KZ_LOG_DEBUG))
        return;
    ssize_t i = h2o_find_header_by_str(&req->res.headers,
                                       H2O_STRLIT("x-request-id"), -1);
    char rid[24] = "-";
    if (i >= 0) {
        h2o_iovec_t v = req->res.headers.entries[i].value;
        snprintf(rid, sizeof rid, "%.*s", (int)v.len, v.base);
    }
    kz_log(KZ_LOG_DEBUG, "request",
           "request_id=%s method=%.*s route=%s status=%d ms=%.1f", rid,
           (int)(req->method.len < 16 ? req->method.len : 16),
           req->method.base, rt ? rt->pattern : "-", status,
           (double)us / 1e3);
}

/* Counts an answer for /metrics, and logs it. */
static void observe_answer(struct kz_node *n, h2o_req_t *req, int status)
{
    n->stats.http_requests++;
    if (status >= 100 && status < 600)
        n->stats.http_by_class[status / 100]++;
    const struct route *rt = route_of(req);
    uint64_t us = req_age_us(req);
    kz_node_metrics_http_observe(n, rt ? (int)rt->id : 0, status, us);
    log_answer(req, rt, status, us);
}

static void send_body(struct kz_node *n, h2o_req_t *req, int status,
                      const char *ctype, const char *body, size_t len,
                      uint64_t index, long long stale_ms)
{
    observe_answer(n, req, status);
    req->res.status = status;
    req->res.reason = reason_of(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   ctype, strlen(ctype));
    add_node_headers(n, req, index, stale_ms);
    h2o_send_inline(req, body, len);
}

static void send_json(struct kz_node *n, h2o_req_t *req, int status,
                      json_t *body, uint64_t index, long long stale_ms)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s == NULL) {
        send_body(n, req, 500, "application/json",
                  "{\"error\":{\"code\":\"internal\"}}", 28, index, -1);
        return;
    }
    send_body(n, req, status, "application/json; charset=utf-8", s,
              strlen(s), index, stale_ms);
    free(s);
}

static void send_error(struct kz_node *n, h2o_req_t *req, const char *rid,
                       int status, const char *code, const char *message)
{
    if (status == 503)
        add_header(req, "retry-after", "1");
    json_t *e = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code,
                          "message", message, "request_id", rid);
    send_json(n, req, status, e, kz_stor_applied_index(n->stor), -1);
}

/* Maps a consensus failure to the API's answer. */
static void send_cons_error(struct kz_node *n, h2o_req_t *req,
                            const char *rid, int err, bool write)
{
    switch (err) {
    case KZ_ENOLEADER:
    case KZ_ENOTLEADER:
        send_error(n, req, rid, 503, "no_leader",
                   "no leader is reachable from this node (no quorum); "
                   "retry, or read with consistency=stale");
        break;
    case KZ_ENOQUORUM:
        send_error(n, req, rid, 503, "no_quorum",
                   write ? "the leader lost its quorum before the write "
                           "committed; it was not applied unless a later "
                           "leader commits it"
                         : "the leader lost its quorum");
        break;
    case KZ_ETIMEDOUT:
        send_error(n, req, rid, 503, "timeout",
                   write ? "no quorum answered in time; the outcome of this "
                           "write is unknown: read before retrying"
                         : "no quorum answered in time");
        break;
    case KZ_ENET:
        send_error(n, req, rid, 503, "leader_unreachable",
                   "the leader could not be reached over the peer link");
        break;
    case KZ_ESHUTDOWN:
        send_error(n, req, rid, 503, "shutting_down", "this node is stopping");
        break;
    case KZ_ETOOBIG:
        send_error(n, req, rid, 413, "too_large", "command too large");
        break;
    default:
        send_error(n, req, rid, 500, "internal", kz_strerror(err));
    }
}

/* h2o 2.2.5 keeps the SSL object in a private struct that starts with the
 * SSL_CTX and the SSL pointers; the layout is checked against our own
 * SSL_CTXs (every generation still in use after reloads) before it is
 * trusted, so a different h2o build fails closed. */
struct h2o225_ssl_prefix {
    SSL_CTX *ssl_ctx;
    SSL *ossl;
};

static SSL *request_ssl(struct kz_node_http *h, h2o_req_t *req)
{
    if (req->conn->callbacks->get_socket == NULL)
        return NULL;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    if (sock == NULL || sock->ssl == NULL)
        return NULL;
    struct h2o225_ssl_prefix *pre = (struct h2o225_ssl_prefix *)sock->ssl;
    if (pre->ssl_ctx == NULL || !tls_ctx_is_ours(h, pre->ssl_ctx) ||
        pre->ossl == NULL || SSL_get_SSL_CTX(pre->ossl) != pre->ssl_ctx)
        return NULL;
    return pre->ossl;
}

/* What a connection's client certificate says, worked out at its first
 * request and kept on the SSL object (a TLS 1.3 connection's certificate
 * does not change): the digest and the subject parse were a twentieth of
 * the CPU of a read. */
struct peer_info {
    bool verified; /* a certificate that verified: else 401 */
    struct kz_node_identity id;
    char cert_sha256[65]; /* SHA-256 of the DER, hex: the audit's "which" */
    char cn[64];          /* subject CN if printable ASCII, else "" */
};

static int peer_info_index = -1;

static void peer_info_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
                           int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void cert_fingerprint(X509 *cert, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int len = 0;
    out[0] = '\0';
    if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32)
        return;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static void cert_cn(X509 *cert, char *out, size_t cap)
{
    out[0] = '\0';
    X509_NAME *name = X509_get_subject_name(cert);
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (i < 0)
        return;
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int len = ASN1_STRING_length(v);
    const unsigned char *p = ASN1_STRING_get0_data(v);
    if (len <= 0 || (size_t)len >= cap)
        return;
    for (int k = 0; k < len; k++)
        if (p[k] < 0x20 || p[k] > 0x7e)
            return;
    memcpy(out, p, (size_t)len);
    out[len] = '\0';
}

/* NULL without a TLS connection of ours or out of memory; ->verified false
 * without a verified client certificate (401). A verified certificate
 * whose subject identity.c refuses (no O or OU, two of them, control
 * characters...) authenticates with no role: every route that needs one
 * answers 403, as for a certificate without an OU. */
static const struct peer_info *peer_info(struct kz_node_http *h,
                                         h2o_req_t *req)
{
    SSL *ssl = request_ssl(h, req);
    if (ssl == NULL || peer_info_index < 0)
        return NULL;
    struct peer_info *pi = SSL_get_ex_data(ssl, peer_info_index);
    if (pi != NULL)
        return pi;
    if ((pi = calloc(1, sizeof *pi)) == NULL)
        return NULL;
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (cert != NULL && SSL_get_verify_result(ssl) == X509_V_OK) {
        pi->verified = true;
        (void)kz_node_identity_from_cert(cert, &pi->id); /* -1: no role */
        cert_fingerprint(cert, pi->cert_sha256);
        cert_cn(cert, pi->cn, sizeof pi->cn);
    }
    if (SSL_set_ex_data(ssl, peer_info_index, pi) != 1) {
        free(pi);
        return NULL;
    }
    return pi;
}

static bool match_route(const struct route *r, const char *path, size_t len,
                        char *arg, size_t argcap)
{
    const char *p = r->pattern;
    size_t i = 0;
    while (*p) {
        if (*p == '*') {
            size_t start = i;
            while (i < len && path[i] != '/')
                i++;
            if (i == start || i - start >= argcap)
                return false;
            memcpy(arg, path + start, i - start);
            arg[i - start] = '\0';
            p++;
            continue;
        }
        if (i >= len || path[i] != *p)
            return false;
        i++;
        p++;
    }
    return i == len;
}

/* The route of a request (as on_req finds it), NULL when none matches:
 * the answer is labelled with it in /metrics and in the log. */
static const struct route *route_of(h2o_req_t *req)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char a[80];
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (h2o_memis(req->method.base, req->method.len, routes[i].method,
                      strlen(routes[i].method)) &&
            match_route(&routes[i], req->path.base, plen, a, sizeof a))
            return &routes[i];
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text; -1 on bad escapes or an
 * embedded NUL. */
static int url_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '+')
            c = ' ';
        else if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return -1;
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return (int)o;
}

/* Finds query parameter `name`; returns 1 and the decoded value, 0 when
 * absent, -1 when malformed. */
static int query_param(h2o_req_t *req, const char *name, char *out,
                       size_t cap)
{
    if (req->query_at == SIZE_MAX)
        return 0;
    const char *q = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    size_t nl = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(seg_end - q));
        size_t kl = (size_t)((eq ? eq : seg_end) - q);
        if (kl == nl && memcmp(q, name, nl) == 0) {
            const char *v = eq ? eq + 1 : seg_end;
            return url_decode(v, (size_t)(seg_end - v), out, cap) < 0 ? -1 : 1;
        }
        q = seg_end + 1;
    }
    return 0;
}

/* Copies header `name` into out: 1 when present, 0 when absent, -1 when
 * longer than cap - 1 (never silently treated as absent: an oversize
 * If-Match must not turn a compare-and-set into a blind write). */
static int header_value(h2o_req_t *req, const char *name, char *out,
                        size_t cap)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return 0;
    h2o_iovec_t v = req->headers.entries[i].value;
    if (v.len >= cap)
        return -1;
    memcpy(out, v.base, v.len);
    out[v.len] = '\0';
    return 1;
}

/* ---------------------------------------------------------------- writes */

static void on_write_done(kz_cons_req *creq, int status)
{
    struct pending *p = creq->data;
    struct kz_node *n = p->node;
    if (p->req != NULL) {
        if (status != 0) {
            send_cons_error(n, p->req, p->request_id, status, true);
        } else if (creq->result == NULL || creq->result_len < 3) {
            send_error(n, p->req, p->request_id, 500, "internal",
                       "the state machine returned no result");
        } else {
            int code = (creq->result[0] - '0') * 100 +
                       (creq->result[1] - '0') * 10 + (creq->result[2] - '0');
            if (code >= 400) {
                /* Add the request id to the state machine's error. */
                json_t *e = json_loadb(creq->result + 3, creq->result_len - 3,
                                       0, NULL);
                json_t *inner = e ? json_object_get(e, "error") : NULL;
                if (inner != NULL)
                    json_object_set_new(inner, "request_id",
                                        json_string(p->request_id));
                send_json(n, p->req, code,
                          e ? e : json_pack("{s:{s:s}}", "error", "code",
                                            "internal"),
                          creq->index, -1);
            } else if (p->then != NULL) {
                free(creq->result);
                creq->result = NULL;
                p->then(p);
                return;
            } else if (p->merge != NULL) {
                n->stats.writes++;
                json_t *b = json_loadb(creq->result + 3, creq->result_len - 3,
                                       0, NULL);
                if (json_is_object(b)) {
                    json_object_update(b, p->merge);
                    send_json(n, p->req, code, b, creq->index, -1);
                } else {
                    json_decref(b);
                    send_error(n, p->req, p->request_id, 500, "internal",
                               "the state machine returned no result");
                }
            } else {
                n->stats.writes++;
                send_body(n, p->req, code, "application/json; charset=utf-8",
                          creq->result + 3, creq->result_len - 3, creq->index,
                          -1);
            }
        }
    }
    free(creq->result);
    pending_free(p);
}

static struct pending *pending_new(struct kz_node *n, h2o_req_t *req,
                                   const struct route *r, const char *arg,
                                   const char *rid)
{
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    struct guard *g = h2o_mem_alloc_shared(&req->pool, sizeof *g,
                                           guard_dispose);
    g->p = p;
    p->guard = g;
    p->node = n;
    p->req = req;
    p->route = r;
    p->creq.data = p;
    snprintf(p->arg, sizeof p->arg, "%s", arg);
    snprintf(p->request_id, sizeof p->request_id, "%s", rid);
    return p;
}

/* What a write that is a first step goes on with (struct pending). */
struct pending_then {
    void (*fn)(struct pending *p);
    uint64_t node_id;
    int node_role;
};

/* Proposes cmd (freed here) for req; the answer comes from on_write_done
 * (or, with then, the next step). */
static int submit_then(struct kz_node *n, h2o_req_t *req,
                       const struct route *r, const char *arg,
                       const char *rid, char *cmd, size_t len, json_t *merge,
                       const struct pending_then *then)
{
    struct pending *p = pending_new(n, req, r, arg, rid);
    if (p == NULL) {
        free(cmd);
        json_decref(merge);
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    p->merge = merge;
    if (then != NULL) {
        p->then = then->fn;
        p->node_id = then->node_id;
        p->node_role = then->node_role;
    }
    /* Registrations arriving together, on any node, may share one raft
     * entry (kz_node_merge_creates), each answered with its own result. */
    int rv = r->id == RT_VICTIM_CREATE
                 ? kz_cons_propose_batched(n->cons, &p->creq, cmd, len,
                                           on_write_done)
                 : kz_cons_propose(n->cons, &p->creq, cmd, len, on_write_done);
    free(cmd);
    if (rv != 0) {
        send_cons_error(n, req, rid, rv, true);
        pending_free(p);
    }
    return 0;
}

static int submit(struct kz_node *n, h2o_req_t *req, const struct route *r,
                  const char *arg, const char *rid, char *cmd, size_t len,
                  json_t *merge)
{
    return submit_then(n, req, r, arg, rid, cmd, len, merge, NULL);
}

/* Proposes cmd for req; when merge is not NULL (taken), its members are
 * added to a 2xx answer; then, when not NULL, goes on after a 2xx instead
 * of an answer. */
static int propose_full(struct kz_node *n, h2o_req_t *req,
                        const struct route *r, const char *arg,
                        const char *rid, Kizuna__Command *cmd, json_t *merge,
                        const struct pending_then *then)
{
    /* Wall-clock time chosen here, carried in the command: apply never
     * reads a clock. */
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    cmd->has_time_ms = 1;
    cmd->time_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    cmd->request_id = (char *)rid;
    cmd->municipality = n->cfg.municipality;
    /* Who asked, for the audit record apply writes with the change. */
    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    const struct caller *who = &n->http->caller;
    if (who->known) {
        ctx.org = (char *)who->org;
        ctx.role = (char *)who->role;
        ctx.cert_sha256 = (char *)who->cert_sha256;
        ctx.purpose = who->purpose[0] ? (char *)who->purpose : NULL;
    }
    ctx.request_id = (char *)rid;
    ctx.has_node_id = 1;
    ctx.node_id = n->cfg.id;
    ctx.region = n->cfg.region;
    cmd->audit = &ctx;
    size_t len = kizuna__command__get_packed_size(cmd);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        json_decref(merge);
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    kizuna__command__pack(cmd, buf);
    /* The raft log is on disk too: commands travel and rest sealed. */
    char *sealed;
    size_t slen;
    int rv = kz_node_keys_seal_command(&n->keys, buf, len, &sealed, &slen);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (rv != KZ_OK) {
        json_decref(merge);
        send_error(n, req, rid, 503, "keys_not_ready",
                   "this node has no data key yet (a new cluster creates "
                   "one when it elects its first leader); retry");
        return 0;
    }
    return submit_then(n, req, r, arg, rid, sealed, slen, merge, then);
}

static int propose_merge(struct kz_node *n, h2o_req_t *req,
                         const struct route *r, const char *arg,
                         const char *rid, Kizuna__Command *cmd, json_t *merge)
{
    return propose_full(n, req, r, arg, rid, cmd, merge, NULL);
}

static int propose(struct kz_node *n, h2o_req_t *req, const struct route *r,
                   const char *arg, const char *rid, Kizuna__Command *cmd)
{
    return propose_full(n, req, r, arg, rid, cmd, NULL, NULL);
}

static json_t *parse_body(struct kz_node *n, h2o_req_t *req, const char *rid)
{
    json_error_t jerr;
    if (req->entity.base == NULL || req->entity.len == 0) {
        send_error(n, req, rid, 400, "bad_request", "a JSON body is required");
        return NULL;
    }
    json_t *body = json_loadb(req->entity.base, req->entity.len,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (body == NULL) {
        char msg[256];
        snprintf(msg, sizeof msg, "malformed JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        send_error(n, req, rid, 400, "bad_json", msg);
    }
    return body;
}

static void new_victim_id(char *out)
{
    /* 12 hex digits of milliseconds, then 14 random: sortable by creation,
     * unguessable, chosen by the proposer (apply stays deterministic). */
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    unsigned long long ms =
        (unsigned long long)tv.tv_sec * 1000 + (unsigned long long)tv.tv_usec / 1000;
    snprintf(out, 13, "%012llx", ms & 0xffffffffffffull);
    random_hex(out + 12, 7);
}

/* ------------------------------------------ link codes and mediation */

/* Checks that body is an object with no keys outside `allowed` (NULL
 * terminated) and that every `required` one is a non-empty string; on
 * failure answers 400 naming the field. */
static bool check_fields(struct kz_node *n, h2o_req_t *req, const char *rid,
                         json_t *body, const char *const *allowed,
                         const char *const *required)
{
    char msg[160];
    if (!json_is_object(body)) {
        send_error(n, req, rid, 400, "bad_request", "expected a JSON object");
        return false;
    }
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        bool known = false;
        for (const char *const *a = allowed; *a; a++)
            known = known || strcmp(*a, key) == 0;
        if (!known) {
            snprintf(msg, sizeof msg, "%.60s: unknown field", key);
            send_error(n, req, rid, 400, "bad_request", msg);
            return false;
        }
    }
    for (const char *const *f = required; *f; f++) {
        const char *sv = json_string_value(json_object_get(body, *f));
        if (sv == NULL || sv[0] == '\0' || strlen(sv) > 512) {
            snprintf(msg, sizeof msg, "%s: required, a string of 1 to 512 "
                                      "bytes", *f);
            send_error(n, req, rid, 400, "bad_request", msg);
            return false;
        }
    }
    return true;
}

/* info_types: an array of known information types; *out malloc'd. */
static bool parse_info_types(struct kz_node *n, h2o_req_t *req,
                             const char *rid, json_t *arr, char ***out,
                             size_t *count)
{
    size_t k = json_array_size(arr);
    *out = NULL;
    *count = 0;
    if (!json_is_array(arr) || k == 0 || k > 16) {
        send_error(n, req, rid, 400, "bad_request",
                   "info_types: an array of 1 to 16 of damage shelter "
                   "safety_status household");
        return false;
    }
    *out = calloc(k, sizeof **out);
    for (size_t i = 0; *out != NULL && i < k; i++) {
        const char *t = json_string_value(json_array_get(arr, i));
        if (t == NULL || !kz_node_valid_code(t, kz_node_info_types)) {
            free(*out);
            *out = NULL;
            send_error(n, req, rid, 400, "bad_request",
                       "info_types: each one of damage shelter "
                       "safety_status household");
            return false;
        }
        (*out)[i] = (char *)t;
    }
    *count = k;
    return *out != NULL;
}

/* The caller's organisation code, when it can name link-code tables. */
static bool caller_org(struct kz_node *n, h2o_req_t *req, const char *rid)
{
    if (kz_node_valid_ref(n->http->caller.org))
        return true;
    send_error(n, req, rid, 403, "org_not_registered",
               "the certificate's organisation is not a valid code");
    return false;
}

static int handle_unlink(struct kz_node *n, h2o_req_t *req,
                         const struct route *r, const char *arg,
                         const char *rid)
{
    unsigned ki;
    unsigned char block[16];
    char from[16];
    int got = query_param(req, "from", from, sizeof from);
    if (kz_node_linkcode_parse(arg, strlen(arg), &ki, block) != 0) {
        send_error(n, req, rid, 400, "bad_link_code",
                   "link code: malformed or its check character is wrong");
        return 0;
    }
    if (got < 0 || (got > 0 && !kz_node_valid_date(from))) {
        send_error(n, req, rid, 400, "bad_request",
                   "from: a date YYYY-MM-DD");
        return 0;
    }
    if (!caller_org(n, req, rid))
        return 0;
    if (got <= 0) {
        uv_timeval64_t tv = {0, 0};
        uv_gettimeofday(&tv);
        kz_node_date_jst(tv.tv_sec * 1000 + tv.tv_usec / 1000, from);
    }
    Kizuna__Unlink ul = KIZUNA__UNLINK__INIT;
    ul.org = n->http->caller.org;
    ul.has_key_index = ul.has_block = 1;
    ul.key_index = ki;
    ul.block.data = block;
    ul.block.len = 16;
    ul.from = from;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_UNLINK;
    cmd.unlink = &ul;
    return propose(n, req, r, arg, rid, &cmd);
}

static int handle_links_write(struct kz_node *n, h2o_req_t *req,
                              const struct route *r, const char *arg,
                              const char *rid, json_t *body)
{
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    const struct caller *who = &n->http->caller;
    switch (r->id) {
    case RT_ORG_PUT: {
        static const char *const allowed[] = {"name", "kind", "info_types",
                                              "rotate_key", NULL};
        static const char *const required[] = {"name", "kind", NULL};
        char **types;
        size_t nt;
        if (!check_fields(n, req, rid, body, allowed, required) ||
            !parse_info_types(n, req, rid,
                              json_object_get(body, "info_types"), &types,
                              &nt))
            return 0;
        const char *kind = json_string_value(json_object_get(body, "kind"));
        json_t *rot = json_object_get(body, "rotate_key");
        if (!kz_node_valid_ref(kind) || (rot && !json_is_boolean(rot)) ||
            !kz_node_valid_text(json_string_value(json_object_get(body, "name")),
                                256)) {
            free(types);
            send_error(n, req, rid, 400, "bad_request",
                       "name: text without control characters; kind: a code "
                       "like municipality, ministry, private, portal; "
                       "rotate_key: a boolean");
            return 0;
        }
        unsigned char key[32];
        if (RAND_bytes(key, sizeof key) != 1) {
            free(types);
            send_error(n, req, rid, 500, "internal", "no randomness");
            return 0;
        }
        Kizuna__Org o = KIZUNA__ORG__INIT;
        o.code = (char *)arg;
        o.name = (char *)json_string_value(json_object_get(body, "name"));
        o.kind = (char *)kind;
        o.n_info_types = nt;
        o.info_types = types;
        Kizuna__PutOrg po = KIZUNA__PUT_ORG__INIT;
        po.org = &o;
        po.has_rotate_key = 1;
        po.rotate_key = json_is_true(rot);
        po.has_new_key = 1;
        po.new_key.data = key;
        po.new_key.len = sizeof key;
        cmd.op_case = KIZUNA__COMMAND__OP_PUT_ORG;
        cmd.put_org = &po;
        int rv = propose(n, req, r, arg, rid, &cmd);
        OPENSSL_cleanse(key, sizeof key);
        free(types);
        return rv;
    }
    case RT_WHITELIST_PUT: {
        static const char *const allowed[] = {"requester", "provider",
                                              "info_types", "description",
                                              NULL};
        static const char *const required[] = {"requester", "provider", NULL};
        char **types;
        size_t nt;
        if (!check_fields(n, req, rid, body, allowed, required) ||
            !parse_info_types(n, req, rid,
                              json_object_get(body, "info_types"), &types,
                              &nt))
            return 0;
        const char *rq = json_string_value(json_object_get(body, "requester"));
        const char *pv = json_string_value(json_object_get(body, "provider"));
        json_t *desc = json_object_get(body, "description");
        if (!kz_node_valid_ref(strncmp(rq, "kind:", 5) == 0 ? rq + 5 : rq) ||
            !kz_node_valid_ref(pv) ||
            (desc && !kz_node_valid_text(json_string_value(desc), 512))) {
            free(types);
            send_error(n, req, rid, 400, "bad_request",
                       "requester: an organisation code or kind:<kind>; "
                       "provider: an organisation code; description: text");
            return 0;
        }
        Kizuna__WhitelistEntry w = KIZUNA__WHITELIST_ENTRY__INIT;
        w.bp_id = (char *)arg;
        w.requester = (char *)rq;
        w.provider = (char *)pv;
        w.n_info_types = nt;
        w.info_types = types;
        w.description = (char *)json_string_value(desc);
        Kizuna__PutWhitelist pw = KIZUNA__PUT_WHITELIST__INIT;
        pw.entry = &w;
        cmd.op_case = KIZUNA__COMMAND__OP_PUT_WHITELIST;
        cmd.put_whitelist = &pw;
        int rv = propose(n, req, r, arg, rid, &cmd);
        free(types);
        return rv;
    }
    case RT_LINK_ISSUE: {
        static const char *const fields[] = {"name_kana", "dob", "sex",
                                             "address", NULL};
        if (!check_fields(n, req, rid, body, fields, fields) ||
            !caller_org(n, req, rid))
            return 0;
        const char *dob = json_string_value(json_object_get(body, "dob"));
        const char *sex = json_string_value(json_object_get(body, "sex"));
        if (!kz_node_valid_date(dob) ||
            !kz_node_valid_code(sex, kz_node_sex_codes)) {
            send_error(n, req, rid, 400, "bad_request",
                       "dob: a date YYYY-MM-DD; sex: female, male or other");
            return 0;
        }
        unsigned char fresh[16];
        if (RAND_bytes(fresh, sizeof fresh) != 1) {
            send_error(n, req, rid, 500, "internal", "no randomness");
            return 0;
        }
        Kizuna__IssueLink il = KIZUNA__ISSUE_LINK__INIT;
        il.org = (char *)who->org;
        il.name_kana =
            (char *)json_string_value(json_object_get(body, "name_kana"));
        il.dob = (char *)dob;
        il.sex = (char *)sex;
        il.address = (char *)json_string_value(json_object_get(body, "address"));
        il.has_new_id_code = 1;
        il.new_id_code.data = fresh;
        il.new_id_code.len = 16;
        cmd.op_case = KIZUNA__COMMAND__OP_ISSUE_LINK;
        cmd.issue_link = &il;
        return propose(n, req, r, arg, rid, &cmd);
    }
    case RT_MED_CREATE: {
        static const char *const fields[] = {"bp_id", "provider", "link_code",
                                             "info_type", NULL};
        if (!check_fields(n, req, rid, body, fields, fields) ||
            !caller_org(n, req, rid))
            return 0;
        const char *bp = json_string_value(json_object_get(body, "bp_id"));
        const char *pv = json_string_value(json_object_get(body, "provider"));
        const char *lc = json_string_value(json_object_get(body, "link_code"));
        const char *it = json_string_value(json_object_get(body, "info_type"));
        unsigned ki;
        unsigned char block[16];
        if (kz_node_linkcode_parse(lc, strlen(lc), &ki, block) != 0) {
            send_error(n, req, rid, 400, "bad_link_code",
                       "link_code: malformed or its check character is "
                       "wrong");
            return 0;
        }
        if (!kz_node_valid_ref(bp) || !kz_node_valid_ref(pv) ||
            !kz_node_valid_code(it, kz_node_info_types)) {
            send_error(n, req, rid, 400, "bad_request",
                       "bp_id, provider: codes; info_type: damage, shelter, "
                       "safety_status or household");
            return 0;
        }
        char id[32];
        new_victim_id(id);
        Kizuna__CreateMediation cm = KIZUNA__CREATE_MEDIATION__INIT;
        cm.id = id;
        cm.requester = (char *)who->org;
        cm.bp_id = (char *)bp;
        cm.provider = (char *)pv;
        cm.info_type = (char *)it;
        cm.has_key_index = cm.has_block = 1;
        cm.key_index = ki;
        cm.block.data = block;
        cm.block.len = 16;
        cmd.op_case = KIZUNA__COMMAND__OP_CREATE_MEDIATION;
        cmd.create_mediation = &cm;
        n->http->caller.purpose[0] = '\0';
        snprintf(n->http->caller.purpose, sizeof n->http->caller.purpose,
                 "bp:%s", bp);
        return propose(n, req, r, arg, rid, &cmd);
    }
    case RT_MED_REPLY: {
        static const char *const allowed[] = {"answer", NULL};
        static const char *const required[] = {NULL};
        if (!check_fields(n, req, rid, body, allowed, required) ||
            !caller_org(n, req, rid))
            return 0;
        json_t *ans = json_object_get(body, "answer");
        char *js = json_is_object(ans) ? json_dumps(ans, JSON_COMPACT) : NULL;
        if (js == NULL || strlen(js) > 65536) {
            free(js);
            send_error(n, req, rid, 400, "bad_request",
                       "answer: a JSON object of at most 64 KiB");
            return 0;
        }
        Kizuna__ReplyMediation rm = KIZUNA__REPLY_MEDIATION__INIT;
        rm.id = (char *)arg;
        rm.provider = (char *)who->org;
        rm.answer = js;
        cmd.op_case = KIZUNA__COMMAND__OP_REPLY_MEDIATION;
        cmd.reply_mediation = &rm;
        int rv = propose(n, req, r, arg, rid, &cmd);
        free(js);
        return rv;
    }
    default:
        send_error(n, req, rid, 500, "internal", "unrouted write");
        return 0;
    }
}

/* PUT /v1/photos/{victim_id}: the body is the image itself. */
static int handle_photo_put(struct kz_node *n, h2o_req_t *req,
                            const struct route *r, const char *arg,
                            const char *rid)
{
    const unsigned char *p = (const unsigned char *)req->entity.base;
    size_t len = req->entity.base ? req->entity.len : 0;
    if (len > n->cfg.photo_max_bytes) {
        send_error(n, req, rid, 413, "too_large",
                   "the photo is larger than photo_max_bytes");
        return 0;
    }
    const char *type = len ? kz_node_photo_type(p, len) : NULL;
    if (type == NULL) {
        send_error(n, req, rid, 415, "unsupported_media_type",
                   "a photo must be JPEG, PNG or JPEG 2000");
        return 0;
    }
    Kizuna__Photo ph = KIZUNA__PHOTO__INIT;
    ph.victim_id = (char *)arg;
    ph.content_type = (char *)type;
    ph.has_data = 1;
    ph.data.data = (uint8_t *)p;
    ph.data.len = len;
    Kizuna__PutPhoto pp = KIZUNA__PUT_PHOTO__INIT;
    pp.photo = &ph;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_PHOTO;
    cmd.put_photo = &pp;
    return propose(n, req, r, arg, rid, &cmd);
}

/* POST /v1/import/csv (csv_import.h): the body's valid records are
 * registered by one CreateVictims command (one raft entry, one batch on
 * apply), with ids drawn here as for POST /v1/victims; the rows refused
 * here are added to the state machine's answer. With dry_run=1 nothing is
 * proposed. */
static int handle_import_csv(struct kz_node *n, h2o_req_t *req,
                             const struct route *r, const char *rid)
{
    char q[32], code[32], err[KZ_NODE_ERR_MAX];
    unsigned long first_line = 2;
    bool dry = false;
    int got = query_param(req, "first_line", q, sizeof q);
    if (got != 0) {
        char *end = q;
        unsigned long long v = got > 0 ? strtoull(q, &end, 10) : 0;
        if (got < 0 || end == q || *end != '\0' || q[0] == '-' || v < 2 ||
            v > 1000000000000ull) {
            send_error(n, req, rid, 400, "bad_request",
                       "first_line: want the line number (2 or more) of "
                       "the body's first data record in the original file");
            return 0;
        }
        first_line = (unsigned long)v;
    }
    if (!kz_http_dry_run(n, req, rid, &dry))
        return 0;
    if (req->entity.base == NULL || req->entity.len == 0) {
        send_error(n, req, rid, 400, "bad_request",
                   "a CSV body is required: a header line of field names, "
                   "then one record per person");
        return 0;
    }
    struct kz_node_csv_batch b;
    int status = 400;
    if (kz_node_csv_decode(req->entity.base, req->entity.len, first_line, &b,
                           &status, code, sizeof code, err, sizeof err) != 0) {
        kz_node_csv_batch_free(&b);
        send_error(n, req, rid, status, code, err);
        return 0;
    }
    kz_log(KZ_LOG_INFO, "csv import batch",
           "records=%zu valid=%zu rejected=%zu dry_run=%s request_id=%s",
           b.records, b.n, json_array_size(b.rejected), dry ? "true" : "false",
           rid);
    json_t *merge = json_pack("{s:O,s:b}", "rejected", b.rejected, "dry_run",
                              dry);
    if (merge == NULL) {
        kz_node_csv_batch_free(&b);
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    if (dry || b.n == 0) {
        /* Nothing to write: answered from here. A dry run counts the
         * records a real run would propose. */
        json_object_set_new(merge, "accepted", json_integer((json_int_t)b.n));
        json_object_set_new(merge, "ids", json_array());
        kz_node_csv_batch_free(&b);
        send_json(n, req, 200, merge, kz_stor_applied_index(n->stor), -1);
        return 0;
    }
    Kizuna__Victim **vs = malloc(b.n * sizeof *vs);
    if (vs == NULL) {
        json_decref(merge);
        kz_node_csv_batch_free(&b);
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    for (size_t i = 0; i < b.n; i++) {
        char id[32];
        new_victim_id(id);
        vs[i] = b.rows[i].v;
        vs[i]->id = strdup(id);
        if (vs[i]->id == NULL) {
            free(vs);
            json_decref(merge);
            kz_node_csv_batch_free(&b);
            send_error(n, req, rid, 500, "internal", "out of memory");
            return 0;
        }
    }
    Kizuna__CreateVictims cv = KIZUNA__CREATE_VICTIMS__INIT;
    cv.n_victims = b.n;
    cv.victims = vs;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIMS;
    cmd.create_victims = &cv;
    int rv = propose_merge(n, req, r, "", rid, &cmd, merge);
    free(vs);
    kz_node_csv_batch_free(&b);
    return rv;
}

static int handle_write(struct kz_node *n, h2o_req_t *req,
                        const struct route *r, const char *arg,
                        const char *rid)
{
    char err[KZ_NODE_ERR_MAX];
    if (r->id == RT_LINK_UNLINK)
        return handle_unlink(n, req, r, arg, rid);
    json_t *body = parse_body(n, req, rid);
    if (body == NULL)
        return 0;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    int rv = 0;
    switch (r->id) {
    case RT_VICTIM_CREATE: {
        Kizuna__Victim *v;
        if (kz_node_victim_from_json(body, false, &v, NULL, NULL, err,
                                     sizeof err) != 0) {
            send_error(n, req, rid, 400, "bad_request", err);
            break;
        }
        char id[32];
        new_victim_id(id);
        v->id = strdup(id);
        Kizuna__CreateVictim cv = KIZUNA__CREATE_VICTIM__INIT;
        cv.victim = v;
        cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIM;
        cmd.create_victim = &cv;
        if (v->id == NULL)
            send_error(n, req, rid, 500, "internal", "out of memory");
        else
            rv = propose(n, req, r, arg, rid, &cmd);
        kizuna__victim__free_unpacked(v, NULL);
        break;
    }
    case RT_VICTIM_PATCH: {
        Kizuna__Victim *v;
        char **set;
        size_t n_set;
        char im[32];
        Kizuna__PatchVictim pv = KIZUNA__PATCH_VICTIM__INIT;
        int got = header_value(req, "if-match", im, sizeof im);
        if (got < 0) {
            send_error(n, req, rid, 400, "bad_request",
                       "If-Match: expected a record version number");
            break;
        }
        if (got > 0) {
            char *s = im, *end;
            if (*s == '"')
                s++;
            unsigned long long ver = strtoull(s, &end, 10);
            if (end == s || (*end != '\0' && strcmp(end, "\"") != 0)) {
                send_error(n, req, rid, 400, "bad_request",
                           "If-Match: expected a record version number");
                break;
            }
            pv.has_if_match = 1;
            pv.if_match = ver;
        }
        if (kz_node_victim_from_json(body, true, &v, &set, &n_set, err,
                                     sizeof err) != 0) {
            send_error(n, req, rid, 400, "bad_request", err);
            break;
        }
        pv.id = (char *)arg;
        pv.fields = v;
        pv.set = set;
        pv.n_set = n_set;
        cmd.op_case = KIZUNA__COMMAND__OP_PATCH_VICTIM;
        cmd.patch_victim = &pv;
        rv = propose(n, req, r, arg, rid, &cmd);
        kizuna__victim__free_unpacked(v, NULL);
        for (size_t i = 0; i < n_set; i++)
            free(set[i]);
        free(set);
        break;
    }
    case RT_VICTIM_MERGE:
    case RT_VICTIM_UNMERGE: {
        /* {"into": "<id>"} (merge), {} (unmerge); "if_match" optional. */
        json_t *into = json_object_get(body, "into");
        json_t *im = json_object_get(body, "if_match");
        bool merge = r->id == RT_VICTIM_MERGE;
        size_t want = (merge ? 1u : 0u) + (im != NULL);
        if (json_object_size(body) != want ||
            (merge && (!json_is_string(into) ||
                       !kz_node_valid_ref(json_string_value(into)))) ||
            (im != NULL &&
             (!json_is_integer(im) || json_integer_value(im) <= 0))) {
            send_error(n, req, rid, 400, "bad_request",
                       merge ? "send {\"into\": \"<id of the record to "
                               "keep>\"} (and \"if_match\": <version>)"
                             : "send {} (or {\"if_match\": <version>})");
            break;
        }
        Kizuna__MergeVictim mv = KIZUNA__MERGE_VICTIM__INIT;
        mv.id = (char *)arg;
        mv.into = merge ? (char *)json_string_value(into) : NULL;
        mv.has_undo = 1;
        mv.undo = !merge;
        if (im != NULL) {
            mv.has_if_match = 1;
            mv.if_match = (uint64_t)json_integer_value(im);
        }
        cmd.op_case = KIZUNA__COMMAND__OP_MERGE_VICTIM;
        cmd.merge_victim = &mv;
        rv = propose(n, req, r, arg, rid, &cmd);
        break;
    }
    case RT_VICTIM_NOTE: {
        Kizuna__Note *note;
        if (kz_node_note_from_json(body, &note, err, sizeof err) != 0) {
            send_error(n, req, rid, 400, "bad_request", err);
            break;
        }
        Kizuna__AddNote an = KIZUNA__ADD_NOTE__INIT;
        an.victim_id = (char *)arg;
        an.note = note;
        cmd.op_case = KIZUNA__COMMAND__OP_ADD_NOTE;
        cmd.add_note = &an;
        rv = propose(n, req, r, arg, rid, &cmd);
        kizuna__note__free_unpacked(note, NULL);
        break;
    }
    case RT_SHELTER_PUT: {
        Kizuna__Shelter *s;
        if (kz_node_shelter_from_json(body, &s, err, sizeof err) != 0) {
            send_error(n, req, rid, 400, "bad_request", err);
            break;
        }
        s->id = strdup(arg);
        Kizuna__PutShelter ps = KIZUNA__PUT_SHELTER__INIT;
        ps.shelter = s;
        cmd.op_case = KIZUNA__COMMAND__OP_PUT_SHELTER;
        cmd.put_shelter = &ps;
        if (s->id == NULL)
            send_error(n, req, rid, 500, "internal", "out of memory");
        else
            rv = propose(n, req, r, arg, rid, &cmd);
        kizuna__shelter__free_unpacked(s, NULL);
        break;
    }
    default:
        rv = handle_links_write(n, req, r, arg, rid, body);
    }
    json_decref(body);
    return rv;
}

/* ----------------------------------------------------------------- reads */

/* A read's answer (struct answer) is built from local state and sent only
 * once the read's audit record is durable: committed, or in the local queue
 * of a stale read. */

static void answer_ok(struct answer *a, int status, json_t *body)
{
    json_decref(a->body);
    free(a->text);
    a->text = NULL;
    a->status = status;
    a->body = body;
}

/* A victim record as the body, written as text (kz_node_victim_json): no
 * tree to build and dump on a hot path. */
static void answer_victim(struct answer *a, const Kizuna__Victim *v)
{
    size_t len = 0;
    char *text = kz_node_victim_json(v, &len);
    if (text == NULL) {
        answer_ok(a, 500, json_pack("{s:{s:s}}", "error", "code", "internal"));
        return;
    }
    answer_ok(a, 200, NULL);
    a->text = text;
    a->text_len = len;
}

static void answer_error(struct answer *a, const char *rid, int status,
                         const char *code, const char *message)
{
    answer_ok(a, status,
              json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code,
                        "message", message, "request_id", rid));
}

static void answer_init(struct answer *a)
{
    memset(a, 0, sizeof *a);
    a->subjects = json_array();
    a->stale_ms = -1;
}

static void answer_free(struct answer *a)
{
    if (a->photo != NULL) {
        OPENSSL_cleanse(a->photo->data.data, a->photo->data.len);
        kizuna__photo__free_unpacked(a->photo, NULL);
        a->photo = NULL;
    }
    json_decref(a->body);
    json_decref(a->subjects);
    a->body = a->subjects = NULL;
    free(a->text);
    a->text = NULL;
}

/* Sends and frees the answer. */
static void answer_send(struct kz_node *n, h2o_req_t *req, struct answer *a)
{
    if (a->status == 503)
        add_header(req, "retry-after", "1");
    if (a->etag[0] && a->status < 300)
        add_header(req, "etag", a->etag);
    if (a->photo != NULL && a->status == 200) {
        /* h2o sends from the request's pool: one copy there, then ours is
         * wiped. The type is the one apply recognised. */
        const char *type = a->photo->content_type ? a->photo->content_type
                                                  : "image/jpeg";
        h2o_iovec_t v = h2o_strdup(&req->pool,
                                   (const char *)a->photo->data.data,
                                   a->photo->data.len);
        send_body(n, req, 200, type, v.base, v.len, a->index, a->stale_ms);
        answer_free(a);
        return;
    }
    if (a->text != NULL) {
        send_body(n, req, a->status, "application/json; charset=utf-8",
                  a->text, a->text_len, a->index,
                  a->status < 300 ? a->stale_ms : -1);
        answer_free(a);
        return;
    }
    json_t *body = a->body;
    a->body = NULL;
    send_json(n, req, a->status ? a->status : 500,
              body ? body : json_pack("{s:{s:s}}", "error", "code",
                                      "internal"),
              a->index, a->status < 300 ? a->stale_ms : -1);
    answer_free(a);
}

static bool parse_search(h2o_req_t *req, const char *rid, struct answer *a,
                         struct kz_node_search *s, char (*bufs)[256])
{
    static const char *names[] = {"q", "dob", "shelter", "status", "cursor",
                                  "limit"};
    const char *vals[6] = {0};
    for (int i = 0; i < 6; i++) {
        int got = query_param(req, names[i], bufs[i], 256);
        if (got < 0) {
            char msg[80];
            snprintf(msg, sizeof msg, "%s: malformed or too long", names[i]);
            answer_error(a, rid, 400, "bad_request", msg);
            return false;
        }
        if (got > 0 && bufs[i][0] != '\0')
            vals[i] = bufs[i];
    }
    memset(s, 0, sizeof *s);
    s->q = vals[0];
    s->dob = vals[1];
    s->shelter = vals[2];
    s->status = vals[3];
    s->cursor = vals[4];
    s->limit = 50;
    if (s->dob && !kz_node_valid_date(s->dob)) {
        answer_error(a, rid, 400, "bad_request",
                   "dob: must be a valid date YYYY-MM-DD");
        return false;
    }
    if (s->status && !kz_node_valid_code(s->status, kz_node_status_codes)) {
        answer_error(a, rid, 400, "bad_request",
                   "status: must be one of safe injured missing deceased "
                   "unknown");
        return false;
    }
    if ((s->shelter && !kz_node_valid_ref(s->shelter)) ||
        (s->cursor && !kz_node_valid_ref(s->cursor))) {
        answer_error(a, rid, 400, "bad_request",
                   "shelter and cursor must be ids");
        return false;
    }
    if (vals[5]) {
        char *end;
        long l = strtol(vals[5], &end, 10);
        if (*end != '\0' || l < 1 || l > 1000) {
            answer_error(a, rid, 400, "bad_request",
                       "limit: must be an integer from 1 to 1000");
            return false;
        }
        s->limit = (size_t)l;
    }
    return true;
}

/* Answers a read from local state into *a (sent by the caller, once its
 * audit record is durable). stale_ms < 0: linearizable. */
static void serve_read(struct kz_node *n, h2o_req_t *req,
                       const struct route *r, const char *arg,
                       const char *rid, long long stale_ms,
                       const struct caller *who, struct answer *a)
{
    a->index = kz_stor_applied_index(n->stor);
    a->stale_ms = stale_ms;
    const char *muni = n->cfg.municipality;
    if (!n->keys.ready && r->id != RT_AUDIT_LIST && r->id != RT_AUDIT_VERIFY &&
        r->id != RT_SHELTER_SUMMARY && r->id != RT_WHITELIST_GET &&
        r->id != RT_PROGRAMS_GET && r->id != RT_PROGRAM_GET &&
        r->id != RT_ID_CRL_GET && r->id != RT_PAYOUT_LEDGER) {
        answer_error(a, rid, 503, "keys_not_ready",
                   "this node cannot open the register's keys yet; retry");
        return;
    }
    if (stale_ms >= 0)
        n->stats.reads_stale++;
    else
        n->stats.reads_linearizable++;
    switch (r->id) {
    case RT_BACKUP_CREATE: {
        /* At the read point: everything committed before the call. */
        json_t *m;
        char err[256] = "";
        int rv = kz_node_backup_create(n, rid, &m, err, sizeof err);
        if (rv != KZ_OK) {
            kz_log(KZ_LOG_ERROR, "backup failed", "error=%s request_id=%s",
                   err, rid);
            answer_error(a, rid, rv == KZ_EIO ? 507 : 500, "backup_failed",
                         "the checkpoint could not be written (see the "
                         "node's log)");
            return;
        }
        answer_ok(a, 201, m);
        return;
    }
    case RT_VICTIM_GET:
    case RT_VICTIM_DUPS: {
        /* One record; or it and its possible duplicates (dedup.c): every
         * record disclosed is named in the read's audit record. */
        Kizuna__Victim *v;
        int rv = kz_node_load_victim(n->stor, &n->keys, muni, arg, &v);
        if (rv == KZ_ENOTFOUND) {
            answer_error(a, rid, 404, "not_found", "no victim with this id");
            return;
        }
        if (rv != KZ_OK) {
            answer_error(a, rid, 500, "internal", kz_strerror(rv));
            return;
        }
        if (r->id == RT_VICTIM_GET) {
            snprintf(a->etag, sizeof a->etag, "\"%llu\"",
                     (unsigned long long)v->version);
            json_array_append_new(a->subjects, json_string(v->id));
            answer_victim(a, v);
            kizuna__victim__free_unpacked(v, NULL);
            return;
        }
        json_t *cands = NULL;
        rv = kz_node_dedup_find(n->stor, &n->keys, muni, v, 20, &cands);
        if (rv != KZ_OK) {
            kizuna__victim__free_unpacked(v, NULL);
            answer_error(a, rid, 500, "internal", kz_strerror(rv));
            return;
        }
        json_array_append_new(a->subjects, json_string(v->id));
        for (size_t i = 0; i < json_array_size(cands); i++)
            json_array_append(
                a->subjects,
                json_object_get(json_object_get(json_array_get(cands, i),
                                                "record"),
                                "id"));
        answer_ok(a, 200,
                  json_pack("{s:o,s:o,s:f}", "record",
                            kz_node_victim_to_json(v), "candidates", cands,
                            "min_score", KZ_NODE_DEDUP_MIN));
        kizuna__victim__free_unpacked(v, NULL);
        return;
    }
    case RT_VICTIM_SEARCH: {
        char bufs[6][256];
        struct kz_node_search s;
        if (!parse_search(req, rid, a, &s, bufs))
            return;
        struct kz_node_search_page pg;
        int rv = kz_node_search_run(n->stor, &n->keys, muni, &s, &pg);
        if (rv != 0) {
            json_decref(pg.items);
            answer_error(a, rid, 500, "internal", kz_strerror(rv));
            return;
        }
        for (size_t i = 0; i < json_array_size(pg.items); i++)
            json_array_append(a->subjects,
                              json_object_get(json_array_get(pg.items, i),
                                              "id"));
        json_t *o = json_object();
        json_object_set_new(o, "items", pg.items);
        json_object_set_new(o, "next_cursor",
                            pg.has_next ? json_string(pg.next_cursor)
                                        : json_null());
        if (pg.truncated)
            json_object_set_new(o, "truncated", json_true());
        answer_ok(a, 200, o);
        return;
    }
    case RT_AUDIT_VERIFY: {
        struct kz_node_audit_check chk;
        int rv = kz_node_audit_verify(n->stor, muni, &chk);
        if (rv != KZ_OK) {
            answer_error(a, rid, 500, "internal", kz_strerror(rv));
            return;
        }
        char head[65];
        for (int i = 0; i < 32; i++)
            snprintf(head + 2 * i, 3, "%02x", chk.head[i]);
        json_t *o = json_pack("{s:I,s:s,s:b,s:I}", "entries",
                              (json_int_t)chk.entries, "head", head, "ok",
                              chk.ok, "first_seq", (json_int_t)chk.first_seq);
        if (!chk.ok) {
            json_object_set_new(o, "first_bad_seq",
                                json_integer((json_int_t)chk.first_bad));
            json_object_set_new(o, "reason", json_string(chk.why));
        }
        answer_ok(a, 200, o);
        return;
    }
    case RT_AUDIT_LIST: {
        /* API.md: ?subject=&from=&to= (RFC 3339 times); after= and limit=
         * page through the records in log order. */
        char from_s[40], to_s[40], after_s[24], limit_s[16], subject[80],
            org[KZ_NODE_ORG_MAX];
        int gf = query_param(req, "from", from_s, sizeof from_s);
        int gt = query_param(req, "to", to_s, sizeof to_s);
        int ga = query_param(req, "after", after_s, sizeof after_s);
        int gl = query_param(req, "limit", limit_s, sizeof limit_s);
        int gs = query_param(req, "subject", subject, sizeof subject);
        int go = query_param(req, "org", org, sizeof org);
        int64_t from_ms = INT64_MIN, to_ms = INT64_MAX;
        char *end = NULL;
        unsigned long long after = ga > 0 ? strtoull(after_s, &end, 10) : 0;
        long limit = gl > 0 ? strtol(limit_s, NULL, 10) : 100;
        bool bad = gf < 0 || gt < 0 || ga < 0 || gl < 0 || gs < 0 ||
                   go < 0 || (go > 0 && org[0] == '\0') ||
                   (ga > 0 && (end == after_s || *end)) || limit < 1 ||
                   limit > 1000 || (gs > 0 && !kz_node_valid_ref(subject)) ||
                   (gf > 0 && !kz_node_parse_time(from_s, &from_ms)) ||
                   (gt > 0 && !kz_node_parse_time(to_s, &to_ms));
        if (bad) {
            answer_error(a, rid, 400, "bad_request",
                       "from, to: RFC 3339 UTC times; after: a sequence "
                       "number; limit: 1 to 1000; subject: a record id; "
                       "org: an organisation code");
            return;
        }
        uint64_t next = 0;
        json_t *items = kz_node_audit_list_org(
            n->stor, muni, after, from_ms, to_ms, (size_t)limit,
            gs > 0 ? subject : NULL, go > 0 ? org : NULL, &next);
        json_t *o = json_pack("{s:o}", "items", items);
        json_object_set_new(o, "next_after",
                            next ? json_integer((json_int_t)next) : json_null());
        answer_ok(a, 200, o);
        return;
    }
    case RT_SHELTER_SUMMARY: {
        Kizuna__Shelter *sh = NULL;
        int rv = kz_node_load_shelter(n->stor, muni, arg, &sh);
        json_t *o = kz_node_shelter_summary(n->stor, muni, arg);
        json_object_set_new(o, "shelter_id", json_string(arg));
        if (rv == KZ_OK) {
            json_object_set_new(o, "name", json_string(sh->name));
            if (sh->has_capacity)
                json_object_set_new(o, "capacity",
                                    json_integer(sh->capacity));
            kizuna__shelter__free_unpacked(sh, NULL);
        } else if (json_integer_value(json_object_get(o, "total")) == 0) {
            json_decref(o);
            answer_error(a, rid, 404, "not_found",
                       "no shelter with this id");
            return;
        }
        answer_ok(a, 200, o);
        return;
    }
    case RT_PHOTO_GET: {
        Kizuna__Photo *ph;
        int rv = kz_node_load_photo(n->stor, &n->keys, muni, arg, &ph);
        if (rv == KZ_ENOTFOUND) {
            answer_error(a, rid, 404, "not_found", "no photo for this victim");
            return;
        }
        if (rv != KZ_OK) {
            answer_error(a, rid, 500, "internal", kz_strerror(rv));
            return;
        }
        snprintf(a->etag, sizeof a->etag, "\"%llu\"",
                 (unsigned long long)ph->version);
        a->photo = ph;
        json_array_append_new(a->subjects, json_string(arg));
        a->status = 200;
        return;
    }
    case RT_PROGRAMS_GET:
        answer_ok(a, 200,
                  json_pack("{s:o}", "programs",
                            kz_node_programs_json(n->stor, muni)));
        return;
    case RT_PROGRAM_GET: {
        json_t *o = kz_node_program_json(n->stor, muni, arg);
        if (o == NULL)
            answer_error(a, rid, 404, "not_found",
                         "no such program (seikatsu_saiken, gienkin)");
        else
            answer_ok(a, 200, o);
        return;
    }
    case RT_ID_CRL_GET:
        answer_ok(a, 200, kz_api_crl_status(n));
        return;
    case RT_PAYOUT_LEDGER:
        answer_ok(a, 200, kz_node_ledger_json(n->stor, muni));
        return;
    case RT_PAYOUT_GET: {
        char hid[80] = "";
        json_t *o = kz_node_payout_json(n->stor, &n->keys, muni, arg, hid);
        if (o == NULL) {
            answer_error(a, rid, 404, "not_found", "no payout with this id");
            return;
        }
        if (hid[0])
            json_array_append_new(a->subjects, json_string(hid));
        answer_ok(a, 200, o);
        return;
    }
    case RT_PAYOUT_LIST: {
        char hid[80];
        if (query_param(req, "household_id", hid, sizeof hid) != 1 ||
            !kz_node_valid_ref(hid)) {
            answer_error(a, rid, 400, "bad_request",
                         "household_id: required, a household id");
            return;
        }
        json_array_append_new(a->subjects, json_string(hid));
        answer_ok(a, 200,
                  kz_node_household_payouts_json(n->stor, &n->keys, muni,
                                                 hid, true));
        return;
    }
    case RT_ORG_GET:
    case RT_WHITELIST_GET: {
        json_t *o = r->id == RT_ORG_GET
                        ? kz_node_org_json(n->stor, &n->keys, muni, arg)
                        : kz_node_whitelist_json(n->stor, muni, arg);
        if (o == NULL)
            answer_error(a, rid, 404, "not_found", "no such entry");
        else
            answer_ok(a, 200, o);
        return;
    }
    case RT_MED_GET: {
        char vid[80];
        json_t *o = kz_node_mediation_view(n->stor, &n->keys, muni, arg,
                                           who->org, vid);
        if (o == NULL) {
            answer_error(a, rid, 404, "not_found",
                         "no request with this id for your organisation");
            return;
        }
        if (vid[0])
            json_array_append_new(a->subjects, json_string(vid));
        answer_ok(a, 200, o);
        return;
    }
    case RT_MED_INBOX: {
        char after[80], limit_s[16], next[80];
        int ga = query_param(req, "after", after, sizeof after);
        int gl = query_param(req, "limit", limit_s, sizeof limit_s);
        long limit = gl > 0 ? strtol(limit_s, NULL, 10) : 100;
        if (ga < 0 || gl < 0 || limit < 1 || limit > 1000 ||
            (ga > 0 && after[0] && !kz_node_valid_ref(after))) {
            answer_error(a, rid, 400, "bad_request",
                         "after: a request id; limit: 1 to 1000");
            return;
        }
        json_t *items = kz_node_mediation_inbox(
            n->stor, &n->keys, muni, who->org, ga > 0 ? after : "",
            (size_t)limit, next, a->subjects);
        answer_ok(a, 200,
                  json_pack("{s:o,s:o}", "items", items, "next_after",
                            next[0] ? json_string(next) : json_null()));
        return;
    }
    case RT_PORTAL_ME:
    case RT_PORTAL_LOG: {
        /* A citizen's certificate holds the portal's link code for them
         * (CN); the portal is an organisation of kind "portal" (O). */
        json_t *org = kz_node_org_json(n->stor, &n->keys, muni, who->org);
        const char *kind = json_string_value(json_object_get(org, "kind"));
        bool portal = kind != NULL && strcmp(kind, "portal") == 0;
        json_decref(org);
        char vid[80], hex[33];
        uv_timeval64_t tv = {0, 0};
        uv_gettimeofday(&tv);
        int rv = portal ? kz_node_link_resolve(
                              n->stor, &n->keys, muni, who->org, who->cn,
                              tv.tv_sec * 1000 + tv.tv_usec / 1000, vid, hex)
                        : KZ_ENOTFOUND;
        if (rv != KZ_OK) {
            answer_error(a, rid, 403, "unknown_citizen",
                         "this certificate is not linked to a registered "
                         "person (or its portal link was unlinked)");
            return;
        }
        json_array_append_new(a->subjects, json_string(vid));
        if (r->id == RT_PORTAL_ME) {
            Kizuna__Victim *v;
            rv = kz_node_load_victim(n->stor, &n->keys, muni, vid, &v);
            if (rv != KZ_OK) {
                answer_error(a, rid, 404, "not_found", "no record");
                return;
            }
            answer_victim(a, v);
            kizuna__victim__free_unpacked(v, NULL);
            return;
        }
        char after_s[24], limit_s[16];
        int ga = query_param(req, "after", after_s, sizeof after_s);
        int gl = query_param(req, "limit", limit_s, sizeof limit_s);
        char *end = NULL;
        unsigned long long after = ga > 0 ? strtoull(after_s, &end, 10) : 0;
        long limit = gl > 0 ? strtol(limit_s, NULL, 10) : 100;
        if (ga < 0 || gl < 0 || (ga > 0 && (end == after_s || *end)) ||
            limit < 1 || limit > 1000) {
            answer_error(a, rid, 400, "bad_request",
                         "after: a sequence number; limit: 1 to 1000");
            return;
        }
        uint64_t next = 0;
        json_t *items = kz_node_audit_list(n->stor, muni, after, INT64_MIN,
                                           INT64_MAX, (size_t)limit, vid,
                                           &next);
        answer_ok(a, 200,
                  json_pack("{s:o,s:o}", "items", items, "next_after",
                            next ? json_integer((json_int_t)next)
                                 : json_null()));
        return;
    }
    default:
        answer_error(a, rid, 500, "internal", "unrouted read");
    }
}

/* -------------------------------------------------------------- read audit
 *
 * A read of personal data is answered only once its audit record is
 * durable (DESIGN.md "Data path" 4 and 5):
 *   - GET /v1/victims/{id}: the record names its subject before the read,
 *     so the raft entry that carries it is the read point (proposed with
 *     kz_cons_propose_read): once it is applied here, the record is
 *     committed and the local state is linearizable; then read and answer.
 *   - reads whose subjects are known only after reading (search, inbox,
 *     portal): read at a read index, then commit the record naming every
 *     victim disclosed, then answer. Nothing leaves before the commit.
 *   - consistency=stale: answered from local state after the record is
 *     synced to the node's durable queue (audit_queue.h), handed to the
 *     cluster when a leader is reachable.
 * Records of reads arriving together share one entry. audit_reads 0 (test
 * only) turns it off, to measure what it costs. */

static const char *read_action(enum route_id id)
{
    switch (id) {
    case RT_VICTIM_GET:
        return "victim.read";
    case RT_VICTIM_DUPS:
        return "victim.duplicates";
    case RT_PHOTO_GET:
        return "photo.read";
    case RT_VICTIM_SEARCH:
        return "victim.search";
    case RT_MED_GET:
        return "mediation.read";
    case RT_MED_INBOX:
        return "mediation.inbox";
    case RT_PORTAL_ME:
        return "portal.me";
    case RT_PORTAL_LOG:
        return "portal.access_log";
    case RT_PAYOUT_GET:
        return "payout.read";
    case RT_PAYOUT_LIST:
        return "payout.list";
    case RT_BACKUP_CREATE:
        return "backup.create";
    default:
        return "read";
    }
}

/* The audit record of one read; strings point into who, arg and subjects
 * (and *subj, malloc'd, which the caller frees). */
static void read_context(struct kz_node *n, const struct caller *who,
                         const struct route *r, const char *rid,
                         const char *arg, const struct answer *ans,
                         Kizuna__AuditContext *ctx, char ***subj)
{
    kizuna__audit_context__init(ctx);
    *subj = NULL;
    ctx->org = (char *)who->org;
    ctx->role = (char *)who->role;
    ctx->cert_sha256 = (char *)who->cert_sha256;
    ctx->purpose = who->purpose[0] ? (char *)who->purpose
                   : r->roles == R_CITIZEN ? "self (portal)"
                                           : NULL;
    ctx->request_id = (char *)rid;
    ctx->has_node_id = 1;
    ctx->node_id = n->cfg.id;
    ctx->region = n->cfg.region;
    ctx->action = (char *)read_action(r->id);
    if (ans == NULL) { /* not read yet: the path names the subject */
        ctx->subject = arg[0] ? (char *)arg : NULL;
        return;
    }
    ctx->has_outcome = 1;
    ctx->outcome = ans->status;
    size_t k = json_array_size(ans->subjects);
    if (k >= 1)
        ctx->subject = (char *)json_string_value(json_array_get(ans->subjects, 0));
    if (k > 1 && (*subj = calloc(k, sizeof **subj)) != NULL) {
        for (size_t i = 0; i < k; i++)
            (*subj)[i] =
                (char *)json_string_value(json_array_get(ans->subjects, i));
        ctx->n_subjects = k;
        ctx->subjects = *subj;
    }
}

static void audits_flush(struct kz_node *n);

/* A backup's read point: its own record applied here too (below). */
static void on_backup_point(kz_cons_req *creq, int status)
{
    struct pending *p = creq->data;
    struct kz_node *n = p->node;
    if (p->req != NULL) {
        if (status != 0) {
            send_cons_error(n, p->req, p->request_id, status, false);
        } else {
            answer_init(&p->ans);
            serve_read(n, p->req, p->route, p->arg, p->request_id, -1,
                       &p->who, &p->ans);
            answer_send(n, p->req, &p->ans);
        }
    }
    pending_free(p);
}

/* index: the committed entry that holds the read's record. A follower is
 * answered once it applied the entries before it (kz_cons_propose_merged),
 * which is all a read needs; a backup also waits for that entry, so that
 * the checkpoint holds the record of its own making (a read index taken
 * now is past it). */
static void finish_audited(struct pending *p, int status, uint64_t index)
{
    struct kz_node *n = p->node;
    if (p->req != NULL && status == 0 && p->read_first &&
        p->route->id == RT_BACKUP_CREATE &&
        kz_stor_applied_index(n->stor) < index) {
        int rv = kz_cons_read_index(n->cons, &p->creq, on_backup_point);
        if (rv == 0)
            return;
        status = rv;
    }
    if (p->req != NULL) {
        if (status != 0) {
            send_cons_error(n, p->req, p->request_id, status, false);
        } else {
            if (p->read_first) {
                answer_init(&p->ans);
                serve_read(n, p->req, p->route, p->arg, p->request_id, -1,
                           &p->who, &p->ans);
            }
            answer_send(n, p->req, &p->ans);
        }
    }
    pending_free(p);
}

static void on_audits_committed(kz_cons_req *creq, int status)
{
    struct audit_batch *slot = creq->data;
    struct kz_node *n = slot->node;
    struct read_audits *ra = &n->http->audits;
    slot->busy = false;
    ra->in_flight--;
    free(creq->result);
    creq->result = NULL;
    struct pending *p = slot->list;
    slot->list = NULL;
    while (p != NULL) {
        struct pending *next = p->next_audit;
        finish_audited(p, status, creq->index);
        p = next;
    }
    if (ra->waiting != NULL)
        audits_flush(n);
}

/* Proposes one entry with the records of every waiting read. */
static void audits_flush(struct kz_node *n)
{
    struct read_audits *ra = &n->http->audits;
    struct pending *batch = ra->waiting;
    ra->waiting = NULL;
    ra->tail = &ra->waiting;
    size_t k = 0;
    for (struct pending *p = batch; p != NULL; p = p->next_audit)
        k++;
    Kizuna__AuditContext *ctx = calloc(k, sizeof *ctx);
    Kizuna__AuditContext **ptrs = calloc(k, sizeof *ptrs);
    char ***subj = calloc(k, sizeof *subj);
    int rv = ctx && ptrs && subj ? KZ_OK : KZ_ENOMEM;
    size_t i = 0;
    for (struct pending *p = batch; rv == KZ_OK && p != NULL;
         p = p->next_audit, i++) {
        read_context(n, &p->who, p->route, p->request_id, p->arg,
                     p->read_first ? NULL : &p->ans, &ctx[i], &subj[i]);
        ptrs[i] = &ctx[i];
    }
    char *sealed = NULL;
    size_t slen = 0;
    if (rv == KZ_OK) {
        Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
        aa.n_entries = k;
        aa.entries = ptrs;
        Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
        uv_timeval64_t tv = {0, 0};
        uv_gettimeofday(&tv);
        cmd.has_time_ms = 1;
        cmd.time_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
        cmd.municipality = n->cfg.municipality;
        cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
        cmd.audit_append = &aa;
        size_t len = kizuna__command__get_packed_size(&cmd);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf == NULL)
            rv = KZ_ENOMEM;
        else {
            kizuna__command__pack(&cmd, buf);
            rv = kz_node_keys_seal_command(&n->keys, buf, len, &sealed, &slen);
            free(buf);
        }
    }
    for (size_t j = 0; subj != NULL && j < k; j++)
        free(subj[j]);
    free(subj);
    free(ptrs);
    free(ctx);
    struct audit_batch *slot = NULL;
    for (unsigned j = 0; slot == NULL && j < AUDIT_PIPELINE; j++)
        if (!ra->slots[j].busy)
            slot = &ra->slots[j];
    if (rv == KZ_OK) {
        slot->node = n;
        slot->creq.data = slot;
        rv = kz_cons_propose_merged(n->cons, &slot->creq, sealed, slen,
                                    on_audits_committed);
    }
    free(sealed);
    if (rv != KZ_OK) {
        while (batch != NULL) {
            struct pending *next = batch->next_audit;
            finish_audited(batch, rv == KZ_ENOTFOUND ? KZ_ENOLEADER : rv, 0);
            batch = next;
        }
        return;
    }
    slot->list = batch;
    slot->busy = true;
    ra->in_flight++;
}

static void on_audits_turn_end(uv_prepare_t *h)
{
    struct kz_node *n = h->data;
    struct read_audits *ra = &n->http->audits;
    ra->deferred = false;
    uv_prepare_stop(&ra->flush_prep);
    uv_idle_stop(&ra->flush_idle);
    if (ra->waiting != NULL && ra->in_flight < AUDIT_PIPELINE)
        audits_flush(n);
}

static void on_audits_idle(uv_idle_t *h)
{
    (void)h; /* only there so that the loop does not block before flush_prep */
}

static void audit_read(struct kz_node *n, struct pending *p)
{
    struct read_audits *ra = &n->http->audits;
    if (ra->tail == NULL)
        ra->tail = &ra->waiting;
    p->next_audit = NULL;
    *ra->tail = p;
    ra->tail = &p->next_audit;
    if (ra->in_flight >= AUDIT_PIPELINE || ra->deferred)
        return; /* on_audits_committed or the turn's end flushes it */
    if (!ra->handles) {
        audits_flush(n);
        return;
    }
    ra->deferred = true;
    uv_prepare_start(&ra->flush_prep, on_audits_turn_end);
    uv_idle_start(&ra->flush_idle, on_audits_idle);
}

static bool audits_on(struct kz_node *n, const struct route *r)
{
    return r->audited && n->cfg.audit_reads;
}

static void on_read_index(kz_cons_req *creq, int status)
{
    struct pending *p = creq->data;
    struct kz_node *n = p->node;
    if (p->req == NULL || status != 0) {
        if (p->req != NULL)
            send_cons_error(n, p->req, p->request_id, status, false);
        pending_free(p);
        return;
    }
    answer_init(&p->ans);
    serve_read(n, p->req, p->route, p->arg, p->request_id, -1, &p->who,
               &p->ans);
    /* A refusal or a miss discloses nothing: no record to wait for. */
    if (audits_on(n, p->route) && p->ans.status == 200) {
        audit_read(n, p);
        return;
    }
    answer_send(n, p->req, &p->ans);
    pending_free(p);
}

static void send_audit_unavailable(struct kz_node *n, h2o_req_t *req,
                                   const char *rid)
{
    send_error(n, req, rid, 503, "audit_unavailable",
               "the access record of this read could not be written; "
               "nothing was disclosed");
}

static void stale_sync_start(struct kz_node *n);

static void stale_sync_work(uv_work_t *w)
{
    struct stale_sync *s = w->data;
    s->status = kz_node_audit_queue_write(s->node->audit_q);
}

/* The batch is on disk (or not): answer its reads (or refuse them). */
static void stale_sync_done(uv_work_t *w, int status)
{
    struct stale_sync *s = w->data;
    struct kz_node *n = s->node;
    int rv = kz_node_audit_queue_end(n->audit_q,
                                     status == 0 ? s->status : KZ_EIO);
    if (rv != KZ_OK)
        kz_log(KZ_LOG_ERROR, "audit queue write failed, reads refused",
               "error=%s", kz_strerror(rv));
    struct pending *p = s->writing;
    s->writing = NULL;
    s->busy = false;
    while (p != NULL) {
        struct pending *next = p->next_audit;
        if (p->req != NULL) {
            if (rv == KZ_OK)
                answer_send(n, p->req, &p->ans);
            else
                send_audit_unavailable(n, p->req, p->request_id);
        }
        pending_free(p);
        p = next;
    }
    stale_sync_start(n);
    if (!s->busy)
        kz_node_maybe_stopped(n); /* when stopping, this was the last */
}

/* Writes every staged record in one batch on a worker thread, unless a
 * batch is being written: then they wait for it. */
static void stale_sync_start(struct kz_node *n)
{
    struct stale_sync *s = &n->http->stale;
    if (s->busy || s->waiting == NULL)
        return;
    /* Every waiting read staged one record, and no batch is in flight:
     * begin cannot refuse. */
    int rv = kz_node_audit_queue_begin(n->audit_q);
    s->writing = s->waiting;
    s->waiting = NULL;
    s->tail = &s->waiting;
    s->busy = true;
    s->node = n;
    s->work.data = s;
    s->status = rv;
    if (rv == KZ_OK && uv_queue_work(n->loop, &s->work, stale_sync_work,
                                     stale_sync_done) == 0)
        return;
    stale_sync_done(&s->work, rv == KZ_OK ? UV_EIO : 0);
}

/* A stale read: answered once its record is synced to the local queue.
 * Records of stale reads arriving together share one write and sync. */
static void serve_stale(struct kz_node *n, h2o_req_t *req,
                        const struct route *r, const char *arg,
                        const char *rid)
{
    struct kz_cons_status st;
    kz_cons_get_status(n->cons, &st);
    struct answer a;
    answer_init(&a);
    serve_read(n, req, r, arg, rid, (long long)st.ms_since_leader,
               &n->http->caller, &a);
    if (!audits_on(n, r) || a.status != 200) {
        answer_send(n, req, &a);
        return;
    }
    Kizuna__AuditContext ctx;
    char **subj;
    read_context(n, &n->http->caller, r, rid, arg, &a, &ctx, &subj);
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    ctx.has_at_ms = 1;
    ctx.at_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    struct pending *p = pending_new(n, req, r, arg, rid);
    int rv = p != NULL ? kz_node_audit_queue_stage(n->audit_q, &ctx)
                       : KZ_ENOMEM;
    free(subj);
    if (rv != KZ_OK) {
        answer_free(&a);
        if (p != NULL)
            pending_free(p);
        send_audit_unavailable(n, req, rid);
        return;
    }
    p->ans = a; /* the answer waits with the request */
    struct stale_sync *s = &n->http->stale;
    if (s->tail == NULL)
        s->tail = &s->waiting;
    p->next_audit = NULL;
    *s->tail = p;
    s->tail = &p->next_audit;
    stale_sync_start(n);
}

static int handle_read(struct kz_node *n, h2o_req_t *req,
                       const struct route *r, const char *arg,
                       const char *rid)
{
    char consistency[32];
    int got = query_param(req, "consistency", consistency, sizeof consistency);
    if (got < 0 || (got > 0 && strcmp(consistency, "stale") != 0 &&
                    strcmp(consistency, "linearizable") != 0)) {
        send_error(n, req, rid, 400, "bad_request",
                   "consistency: must be linearizable or stale");
        return 0;
    }
    if (got > 0 && strcmp(consistency, "stale") == 0) {
        serve_stale(n, req, r, arg, rid);
        return 0;
    }
    struct pending *p = pending_new(n, req, r, arg, rid);
    if (p == NULL) {
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    p->who = n->http->caller;
    if (audits_on(n, r) && (r->id == RT_VICTIM_GET || r->id == RT_PHOTO_GET ||
                            r->id == RT_BACKUP_CREATE)) {
        p->read_first = true;
        audit_read(n, p);
        return 0;
    }
    int rv = kz_cons_read_index(n->cons, &p->creq, on_read_index);
    if (rv != 0) {
        send_cons_error(n, req, rid, rv, false);
        pending_free(p);
    }
    return 0;
}

/* --------------------------------------------------------------- cluster */

static const char *state_name(int s)
{
    switch (s) {
    case KZ_CONS_LEADER:
        return "leader";
    case KZ_CONS_FOLLOWER:
        return "follower";
    case KZ_CONS_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

static json_t *member_json(struct kz_node *n, unsigned slot,
                           const struct kz_cons_status *st, bool reachable)
{
    const struct kz_node_member *m = &n->book[slot];
    char url[96];
    snprintf(url, sizeof url, "https://%s", m->api_addr);
    const char *role = kz_cons_member_role(n->cons, m->id);
    json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:b}", "id", (json_int_t)m->id,
                          "region", m->region, "address", url, "role",
                          role ? role : "none", "reachable", reachable);
    if (reachable) {
        json_object_set_new(o, "state", json_string(state_name(st->state)));
        json_object_set_new(o, "term", json_integer((json_int_t)st->term));
        json_object_set_new(o, "applied_index",
                            json_integer((json_int_t)st->applied_index));
        json_object_set_new(o, "commit_index",
                            json_integer((json_int_t)st->commit_index));
    } else {
        json_object_set_new(o, "state", json_string("unavailable"));
        json_object_set_new(o, "applied_index", json_null());
    }
    return o;
}

static void cluster_finish(struct pending *p)
{
    struct kz_node *n = p->node;
    if (p->req != NULL) {
        /* Lag against the highest applied index seen. */
        json_t *nodes = json_object_get(p->cluster, "nodes");
        json_int_t top = 0;
        size_t i;
        json_t *v;
        json_array_foreach(nodes, i, v)
        {
            json_int_t a = json_integer_value(json_object_get(v, "applied_index"));
            if (a > top)
                top = a;
        }
        json_array_foreach(nodes, i, v)
        {
            json_t *a = json_object_get(v, "applied_index");
            json_object_set_new(v, "lag", json_is_integer(a)
                                              ? json_integer(top - json_integer_value(a))
                                              : json_null());
        }
        send_json(n, p->req, 200, json_incref(p->cluster),
                  kz_stor_applied_index(n->stor), -1);
    }
    pending_free(p);
}

static void on_peer_status(kz_cons_req *creq, int status)
{
    struct peer_query *q = creq->data;
    struct pending *p = q->p;
    json_t *nodes = json_object_get(p->cluster, "nodes");
    json_array_set_new(nodes, q->slot,
                       member_json(p->node, q->slot, &creq->peer, status == 0));
    free(q);
    if (--p->n_peers_left == 0)
        cluster_finish(p);
}

static int handle_cluster(struct kz_node *n, h2o_req_t *req,
                          const struct route *r, const char *rid)
{
    struct kz_cons_status st;
    kz_cons_get_status(n->cons, &st);
    struct pending *p = pending_new(n, req, r, "", rid);
    if (p == NULL) {
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    p->cluster = json_pack("{s:o,s:I,s:I,s:[]}", "leader",
                           st.leader_id ? json_integer((json_int_t)st.leader_id)
                                        : json_null(),
                           "term", (json_int_t)st.term, "served_by",
                           (json_int_t)n->cfg.id, "nodes");
    json_t *nodes = json_object_get(p->cluster, "nodes");
    for (unsigned i = 0; i < n->n_book; i++)
        json_array_append_new(nodes, json_null());
    p->n_peers_left = 1; /* held until every query is sent */
    for (unsigned i = 0; i < n->n_book; i++) {
        if (n->book[i].id == n->cfg.id) {
            json_array_set_new(nodes, i, member_json(n, i, &st, true));
            continue;
        }
        struct peer_query *q = calloc(1, sizeof *q);
        if (q == NULL)
            continue;
        q->p = p;
        q->slot = i;
        q->creq.data = q;
        p->n_peers_left++;
        if (kz_cons_query_peer(n->cons, &q->creq, n->book[i].id,
                               on_peer_status) != 0) {
            struct kz_cons_status none = {0};
            json_array_set_new(nodes, i, member_json(n, i, &none, false));
            free(q);
            p->n_peers_left--;
        }
    }
    if (--p->n_peers_left == 0)
        cluster_finish(p);
    return 0;
}

/* ------------------------------------------------------------ membership */

static const char *role_name(int role)
{
    return role == KZ_CONS_VOTER     ? "voter"
           : role == KZ_CONS_STANDBY ? "standby"
                                     : "spare";
}

static const struct kz_node_member *address_book(struct kz_node *n,
                                                 uint64_t id)
{
    return kz_node_book_find(n, id);
}

/* The region of node id: the address book's, or extra's for a node being
 * added with its addresses (not in the book yet); NULL when unknown. */
static const char *region_of(struct kz_node *n, uint64_t id,
                             const struct kz_node_member *extra)
{
    if (extra != NULL && extra->id == id)
        return extra->region;
    const struct kz_node_member *a = address_book(n, id);
    return a ? a->region : NULL;
}

/* Whether the voters among m[0..cnt) keep a majority when any one region is
 * lost; when not, the region that breaks it goes to *lost. */
static bool survives_a_region(struct kz_node *n,
                              const struct kz_cons_member *m, unsigned cnt,
                              const struct kz_node_member *extra,
                              const char **lost)
{
    unsigned voters = 0;
    for (unsigned i = 0; i < cnt; i++)
        voters += m[i].role == KZ_CONS_VOTER;
    for (unsigned i = 0; i < cnt; i++) {
        const char *ra = region_of(n, m[i].id, extra);
        if (m[i].role != KZ_CONS_VOTER || ra == NULL)
            continue;
        unsigned left = 0;
        for (unsigned j = 0; j < cnt; j++) {
            const char *rb = region_of(n, m[j].id, extra);
            if (m[j].role == KZ_CONS_VOTER &&
                (rb == NULL || strcmp(ra, rb) != 0))
                left++;
        }
        if (left * 2 <= voters) {
            *lost = ra;
            return false;
        }
    }
    return true;
}

static json_t *members_json(struct kz_node *n)
{
    struct kz_cons_member m[KZ_CONS_MAX_PEERS];
    unsigned cnt = kz_cons_members(n->cons, m, KZ_CONS_MAX_PEERS);
    json_t *a = json_array();
    for (unsigned i = 0; i < cnt; i++) {
        const struct kz_node_member *b = address_book(n, m[i].id);
        json_array_append_new(
            a, json_pack("{s:I,s:s?,s:s}", "id", (json_int_t)m[i].id,
                         "region", b ? b->region : NULL, "role",
                         role_name(m[i].role)));
    }
    return a;
}

static void on_membership_done(kz_cons_req *creq, int status)
{
    struct pending *p = creq->data;
    struct kz_node *n = p->node;
    free(creq->result);
    creq->result = NULL;
    kz_log(status == KZ_OK ? KZ_LOG_INFO : KZ_LOG_WARN, "membership change",
           "change=%s result=%s request_id=%s", p->arg,
           status == KZ_OK ? "ok" : kz_strerror(status), p->request_id);
    if (p->req != NULL) {
        if (status == KZ_OK && p->route->id == RT_LEADER_TRANSFER) {
            struct kz_cons_status st;
            kz_cons_get_status(n->cons, &st);
            send_json(n, p->req, 200,
                      json_pack("{s:o,s:o}", "leader",
                                st.leader_id && st.leader_id != n->cfg.id
                                    ? json_integer((json_int_t)st.leader_id)
                                    : json_null(),
                                "members", members_json(n)),
                      kz_stor_applied_index(n->stor), -1);
        } else if (status == KZ_OK)
            send_json(n, p->req, 200,
                      json_pack("{s:o}", "members", members_json(n)),
                      kz_stor_applied_index(n->stor), -1);
        else if (status == KZ_EBUSY)
            send_error(n, p->req, p->request_id, 409, "change_in_progress",
                       "another membership change is in progress; retry "
                       "when it is done (GET /v1/cluster)");
        else if (status == KZ_EINVAL && p->route->id == RT_LEADER_TRANSFER)
            send_error(n, p->req, p->request_id, 409, "not_a_voter",
                       "leadership can only go to a voter");
        else if (status == KZ_EINVAL)
            send_error(n, p->req, p->request_id, 409, "leader_cannot_leave",
                       "the leader cannot remove itself: move leadership "
                       "first (POST /v1/cluster/leader) and retry");
        else if (status == KZ_ETIMEDOUT && p->route->id == RT_LEADER_TRANSFER)
            send_error(n, p->req, p->request_id, 503, "timeout",
                       "the leader still leads: the target did not take "
                       "over in time (is it caught up and reachable?)");
        else if (status == KZ_ENOTFOUND)
            send_error(n, p->req, p->request_id, 404, "unknown_node",
                       "the leader knows no address for this id: give "
                       "its region, raft_address and api_address, or add "
                       "its 'node' line");
        else if (status == KZ_ETIMEDOUT)
            send_error(n, p->req, p->request_id, 503, "timeout",
                       "the change did not complete in time (a new node may "
                       "still be catching up); GET /v1/cluster shows where "
                       "it stands");
        else
            send_cons_error(n, p->req, p->request_id, status, true);
    }
    pending_free(p);
}

/* The membership change of p (p->node_id, p->node_role), once the address
 * book has the node: the second step of an add with addresses. */
static void membership_change(struct pending *p)
{
    p->then = NULL;
    int rv = kz_cons_change(p->node->cons, &p->creq, KZ_CONS_ADD, p->node_id,
                            p->node_role, on_membership_done);
    if (rv != KZ_OK)
        on_membership_done(&p->creq, rv);
}

/* Proposes the address book entry of node a, with the entries this node
 * knows (so a node whose file lists only itself learns the others' regions
 * and API addresses too), then the change (membership_change). */
static int propose_address(struct kz_node *n, h2o_req_t *req,
                           const struct route *r, const char *what,
                           const char *rid, const struct kz_node_member *a,
                           int role)
{
    Kizuna__NodeAddress e[KZ_CONS_MAX_PEERS + 1];
    Kizuna__NodeAddress *ep[KZ_CONS_MAX_PEERS + 1];
    size_t cnt = 0;
    const struct kz_node_member *all[KZ_CONS_MAX_PEERS + 1];
    all[cnt++] = a;
    for (unsigned i = 0; i < n->n_book; i++)
        if (n->book[i].id != a->id &&
            strcmp(n->book[i].raft_addr, a->raft_addr) != 0 &&
            kz_node_valid_region(n->book[i].region) && cnt <= KZ_CONS_MAX_PEERS)
            all[cnt++] = &n->book[i];
    if (cnt > KZ_CONS_MAX_PEERS)
        cnt = KZ_CONS_MAX_PEERS;
    for (size_t i = 0; i < cnt; i++) {
        kizuna__node_address__init(&e[i]);
        e[i].has_id = 1;
        e[i].id = all[i]->id;
        e[i].region = (char *)all[i]->region;
        e[i].raft_address = (char *)all[i]->raft_addr;
        e[i].api_address = (char *)all[i]->api_addr;
        ep[i] = &e[i];
    }
    Kizuna__SetNodeAddresses sa = KIZUNA__SET_NODE_ADDRESSES__INIT;
    sa.n_nodes = cnt;
    sa.nodes = ep;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_SET_NODE_ADDRESSES;
    cmd.set_node_addresses = &sa;
    struct pending_then t = {membership_change, a->id, role};
    return propose_full(n, req, r, what, rid, &cmd, NULL, &t);
}

/* POST /v1/cluster/nodes {"id": N, "role": "voter"|"standby"|"spare"
 *                         [, "region": R, "raft_address": "host:port",
 *                            "api_address": "host:port"]}
 * DELETE /v1/cluster/nodes/{id}[?force=true]
 * A node is known by its 'node' line (its addresses, region, "join") or,
 * for one no file lists, by the addresses given here: they go into the
 * replicated address book first, then the node is added. A change after
 * which the voters would not survive the loss of a region, while they do
 * now, is refused (409) unless ?force=true. */
static int handle_membership(struct kz_node *n, h2o_req_t *req,
                             const struct route *r, const char *arg,
                             const char *rid)
{
    uint64_t id = 0;
    int role = KZ_CONS_VOTER, op;
    struct kz_node_member given;
    bool have_addr = false;
    memset(&given, 0, sizeof given);
    if (r->id == RT_NODE_ADD) {
        op = KZ_CONS_ADD;
        json_t *body = parse_body(n, req, rid);
        if (body == NULL)
            return 0;
        json_t *jid = json_object_get(body, "id");
        json_t *jrole = json_object_get(body, "role");
        json_t *jreg = json_object_get(body, "region");
        json_t *jraft = json_object_get(body, "raft_address");
        json_t *japi = json_object_get(body, "api_address");
        const char *rs = jrole ? json_string_value(jrole) : "voter";
        have_addr = jreg || jraft || japi;
        size_t fields = 1u + (jrole != NULL) + (have_addr ? 3u : 0u);
        bool bad = !json_is_integer(jid) || json_integer_value(jid) <= 0 ||
                   rs == NULL || json_object_size(body) != fields;
        if (!bad) {
            id = (uint64_t)json_integer_value(jid);
            if (strcmp(rs, "voter") == 0)
                role = KZ_CONS_VOTER;
            else if (strcmp(rs, "standby") == 0)
                role = KZ_CONS_STANDBY;
            else if (strcmp(rs, "spare") == 0)
                role = KZ_CONS_SPARE;
            else
                bad = true;
        }
        if (!bad && have_addr) {
            const char *reg = json_string_value(jreg);
            const char *ra = json_string_value(jraft);
            const char *aa = json_string_value(japi);
            bad = reg == NULL || ra == NULL || aa == NULL ||
                  !kz_node_valid_region(reg) ||
                  !kz_node_valid_addr(ra, 65534) ||
                  !kz_node_valid_addr(aa, 65535);
            if (!bad) {
                given.id = id;
                snprintf(given.region, sizeof given.region, "%s", reg);
                snprintf(given.raft_addr, sizeof given.raft_addr, "%s", ra);
                snprintf(given.api_addr, sizeof given.api_addr, "%s", aa);
                given.join = true;
            }
        }
        json_decref(body);
        if (bad) {
            send_error(n, req, rid, 400, "bad_request",
                       "send {\"id\": <node id>, \"role\": \"voter\" | "
                       "\"standby\" | \"spare\"} (role defaults to voter), "
                       "with \"region\" (letters, digits, . _ -), "
                       "\"raft_address\" and \"api_address\" (host:port) "
                       "for a node no configuration file lists");
            return 0;
        }
    } else {
        op = KZ_CONS_REMOVE;
        char *end;
        unsigned long long v = strtoull(arg, &end, 10);
        if (arg[0] < '1' || arg[0] > '9' || *end != '\0') {
            send_error(n, req, rid, 404, "unknown_node", "no node with this id");
            return 0;
        }
        id = v;
    }
    const struct kz_node_member *known = address_book(n, id);
    if (known == NULL && !have_addr) {
        send_error(n, req, rid, 404, "unknown_node",
                   op == KZ_CONS_ADD
                       ? "no node with this id is known: give its "
                         "\"region\", \"raft_address\" and \"api_address\""
                       : "no node with this id");
        return 0;
    }
    if (known != NULL && have_addr) {
        if (strcmp(known->region, given.region) == 0 &&
            strcmp(known->raft_addr, given.raft_addr) == 0 &&
            strcmp(known->api_addr, given.api_addr) == 0) {
            have_addr = false; /* nothing new */
        } else if (known->listed || kz_cons_member_role(n->cons, id) != NULL) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "node %llu is known in region %s at %s (API %s)%s",
                     (unsigned long long)id, known->region, known->raft_addr,
                     known->api_addr,
                     known->listed ? " by a 'node' line of this node's file"
                                   : "; remove it first to move it");
            send_error(n, req, rid, 409, "address_conflict", msg);
            return 0;
        }
    }
    if (have_addr)
        for (unsigned i = 0; i < n->n_book; i++)
            if (n->book[i].id != id &&
                strcmp(n->book[i].raft_addr, given.raft_addr) == 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "node %llu already has raft address %s",
                         (unsigned long long)n->book[i].id, given.raft_addr);
                send_error(n, req, rid, 409, "address_in_use", msg);
                return 0;
            }
    char force[8] = "";
    int fq = query_param(req, "force", force, sizeof force);
    if (fq < 0 || (fq == 1 && strcmp(force, "true") != 0 &&
                   strcmp(force, "false") != 0)) {
        send_error(n, req, rid, 400, "bad_request", "force: true or false");
        return 0;
    }
    /* The configuration before and after, as far as this node knows it. */
    const struct kz_node_member *extra = have_addr ? &given : NULL;
    struct kz_cons_member m[KZ_CONS_MAX_PEERS + 1];
    unsigned cnt = kz_cons_members(n->cons, m, KZ_CONS_MAX_PEERS);
    const char *lost = NULL, *lost_after = NULL;
    bool before = survives_a_region(n, m, cnt, NULL, &lost);
    unsigned i = 0;
    while (i < cnt && m[i].id != id)
        i++;
    if (op == KZ_CONS_REMOVE && i < cnt)
        m[i] = m[--cnt];
    else if (op == KZ_CONS_ADD)
        m[i < cnt ? i : cnt++] = (struct kz_cons_member){id, role};
    if (before && !survives_a_region(n, m, cnt, extra, &lost_after) &&
        strcmp(force, "true") != 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "after this change the voters could not survive the loss "
                 "of region %s (no majority left); add ?force=true to do it "
                 "anyway",
                 lost_after);
        send_error(n, req, rid, 409, "would_lose_region_tolerance", msg);
        return 0;
    }
    char what[80];
    snprintf(what, sizeof what, "%s node %llu%s%s",
             op == KZ_CONS_ADD ? "add" : "remove", (unsigned long long)id,
             op == KZ_CONS_ADD ? " as " : "",
             op == KZ_CONS_ADD ? role_name(role) : "");
    if (have_addr)
        return propose_address(n, req, r, what, rid, &given, role);
    struct pending *p = pending_new(n, req, r, what, rid);
    if (p == NULL) {
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    int rv = kz_cons_change(n->cons, &p->creq, op, id, role,
                            on_membership_done);
    if (rv != KZ_OK)
        on_membership_done(&p->creq, rv);
    return 0;
}

/* POST /v1/cluster/snapshot: this node takes a raft snapshot now (a
 * RocksDB checkpoint, which trims its raft log). */
static void on_snapshot_done(kz_cons_req *creq, int status)
{
    struct pending *p = creq->data;
    struct kz_node *n = p->node;
    if (p->req != NULL) {
        struct kz_cons_status st;
        kz_cons_get_status(n->cons, &st);
        if (status == KZ_OK)
            send_json(n, p->req, 200,
                      json_pack("{s:I,s:I,s:I}", "index",
                                (json_int_t)creq->index, "term",
                                (json_int_t)st.term, "node",
                                (json_int_t)n->cfg.id),
                      kz_stor_applied_index(n->stor), -1);
        else if (status == KZ_EBUSY)
            send_error(n, p->req, p->request_id, 409, "snapshot_in_progress",
                       "a snapshot asked for is being taken; retry");
        else if (status == KZ_ENOTLEADER)
            send_error(n, p->req, p->request_id, 409, "not_caught_up",
                       "this node is not the leader nor a caught-up "
                       "follower (raft 0.22 cannot take a snapshot while "
                       "it may receive one): retry, or ask the leader");
        else if (status == KZ_ETIMEDOUT)
            send_error(n, p->req, p->request_id, 503, "timeout",
                       "no snapshot within the request timeout (is there "
                       "a leader?)");
        else if (status == KZ_EIO)
            send_error(n, p->req, p->request_id, 500, "snapshot_failed",
                       "the snapshot failed (see the node's log)");
        else
            send_cons_error(n, p->req, p->request_id, status, true);
    }
    free(creq->result);
    creq->result = NULL;
    pending_free(p);
}

static int handle_snapshot(struct kz_node *n, h2o_req_t *req,
                           const struct route *r, const char *rid)
{
    if (req->entity.base != NULL && req->entity.len > 0) {
        send_error(n, req, rid, 400, "bad_request", "no body expected");
        return 0;
    }
    struct pending *p = pending_new(n, req, r, "", rid);
    if (p == NULL) {
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    kz_log(KZ_LOG_INFO, "snapshot asked", "request_id=%s", rid);
    int rv = kz_cons_snapshot_now(n->cons, &p->creq, on_snapshot_done);
    if (rv != KZ_OK)
        on_snapshot_done(&p->creq, rv);
    return 0;
}

/* POST /v1/cluster/leader {"id": N} | {"region": "R"} | {}: hands
 * leadership to node N, to a voter of region R (none needed when the
 * leader is there already), or to the most up-to-date voter. Any node
 * takes it (forwarded to the leader); the answer comes once the old leader
 * stepped down. */
static int handle_transfer(struct kz_node *n, h2o_req_t *req,
                           const struct route *r, const char *rid)
{
    json_t *body = parse_body(n, req, rid);
    if (body == NULL)
        return 0;
    json_t *jid = json_object_get(body, "id");
    json_t *jreg = json_object_get(body, "region");
    bool bad = json_object_size(body) != (size_t)(jid != NULL) + (jreg != NULL) ||
               (jid && jreg) ||
               (jid && (!json_is_integer(jid) || json_integer_value(jid) <= 0)) ||
               (jreg && !json_is_string(jreg));
    uint64_t id = jid ? (uint64_t)json_integer_value(jid) : 0;
    char region[KZ_CONS_REGION_MAX] = "";
    if (jreg && json_is_string(jreg))
        snprintf(region, sizeof region, "%s", json_string_value(jreg));
    json_decref(body);
    if (bad) {
        send_error(n, req, rid, 400, "bad_request",
                   "send {\"id\": <voter>}, {\"region\": \"<region>\"} or {}");
        return 0;
    }
    if (id != 0 && address_book(n, id) == NULL) {
        send_error(n, req, rid, 404, "unknown_node", "no node with this id");
        return 0;
    }
    if (region[0]) {
        struct kz_cons_status st;
        kz_cons_get_status(n->cons, &st);
        struct kz_cons_member m[KZ_CONS_MAX_PEERS];
        unsigned cnt = kz_cons_members(n->cons, m, KZ_CONS_MAX_PEERS);
        for (unsigned i = 0; i < cnt; i++) {
            const struct kz_node_member *a = address_book(n, m[i].id);
            if (m[i].role != KZ_CONS_VOTER || a == NULL ||
                strcmp(a->region, region) != 0)
                continue;
            if (id == 0 || m[i].id == st.leader_id)
                id = m[i].id; /* the leader itself when it is there */
        }
        if (id == 0) {
            send_error(n, req, rid, 404, "unknown_region",
                       "no voter in that region");
            return 0;
        }
    }
    char what[64];
    if (id != 0)
        snprintf(what, sizeof what, "leadership to node %llu",
                 (unsigned long long)id);
    else
        snprintf(what, sizeof what, "leadership to any voter");
    struct pending *p = pending_new(n, req, r, what, rid);
    if (p == NULL) {
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    int rv = kz_cons_change(n->cons, &p->creq, KZ_CONS_TRANSFER, id,
                            KZ_CONS_VOTER, on_membership_done);
    if (rv != KZ_OK)
        on_membership_done(&p->creq, rv);
    return 0;
}

/* ------------------------------------------------------------ keys */

/* POST /v1/keys/rotate {"data": true} or {"master": true}.
 * data: a new data key, wrapped by the current master key, seals new
 * writes. master: re-reads the keyring file and re-wraps every data key and
 * the index key under its newest master key; no record is rewritten. Every
 * node must have the new master key in its keyring file before a master
 * rotation (a node that cannot unwrap stops applying rather than diverge). */
static int handle_keys_rotate(struct kz_node *n, h2o_req_t *req,
                              const struct route *r, const char *rid)
{
    json_t *body = parse_body(n, req, rid);
    if (body == NULL)
        return 0;
    json_t *d = json_object_get(body, "data"), *m = json_object_get(body, "master");
    bool data = json_is_true(d), master = json_is_true(m);
    bool bad = json_object_size(body) !=
               (size_t)((d != NULL) + (m != NULL)) ||
               (d && !json_is_boolean(d)) || (m && !json_is_boolean(m));
    json_decref(body);
    if (bad || data == master) {
        send_error(n, req, rid, 400, "bad_request",
                   "send {\"data\": true} or {\"master\": true}, one at a "
                   "time");
        return 0;
    }
    if (!n->keys.ready) {
        send_error(n, req, rid, 503, "keys_not_ready",
                   "this node cannot open the register's keys yet; retry");
        return 0;
    }
    char *cmd = NULL;
    size_t len = 0;
    unsigned count = 0;
    int rv;
    if (master) {
        rv = kz_node_keys_reload_ring(&n->keys);
        if (rv == KZ_OK)
            rv = kz_node_keys_make_rewrap(&n->keys, n->stor,
                                          n->cfg.municipality, &cmd, &len,
                                          &count);
    } else {
        rv = kz_node_keys_make_rotate_data(&n->keys, n->cfg.municipality,
                                           &cmd, &len);
    }
    if (rv != KZ_OK) {
        send_error(n, req, rid, rv == KZ_ECONFIG ? 422 : 500,
                   rv == KZ_ECONFIG ? "keyring_refused" : "internal",
                   rv == KZ_ECONFIG ? n->keys.errmsg : kz_strerror(rv));
        return 0;
    }
    kz_log(KZ_LOG_INFO, "key rotation proposed", "key=%s request_id=%s",
           master ? "master" : "data", rid);
    /* Key commands carry wrapped keys only: proposed unsealed. */
    return submit(n, req, r, "", rid, cmd, len, NULL);
}

/* ----------------------------------------------------------------- audit */

static void on_refusal_audited(kz_cons_req *creq, int status)
{
    (void)status; /* best effort: the refusal itself is already answered */
    free(creq->result);
    free(creq);
}

/* Appends the audit record of a refused call. The 403 does not wait for it:
 * a refusal discloses nothing. Sealed like every command when keys exist. */
static void audit_refusal(struct kz_node *n, const struct route *r,
                          const char *arg, const char *rid, int outcome)
{
    const struct caller *who = &n->http->caller;
    char action[160];
    snprintf(action, sizeof action, "refused %s %s", r->method, r->pattern);
    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    ctx.org = (char *)who->org;
    ctx.role = (char *)who->role;
    ctx.cert_sha256 = (char *)who->cert_sha256;
    ctx.purpose = who->purpose[0] ? (char *)who->purpose : NULL;
    ctx.request_id = (char *)rid;
    ctx.has_node_id = 1;
    ctx.node_id = n->cfg.id;
    ctx.region = n->cfg.region;
    ctx.action = action;
    ctx.subject = arg[0] ? (char *)arg : NULL;
    ctx.has_outcome = 1;
    ctx.outcome = outcome;
    Kizuna__AuditContext *entries[1] = {&ctx};
    Kizuna__AuditAppend aa = KIZUNA__AUDIT_APPEND__INIT;
    aa.n_entries = 1;
    aa.entries = entries;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    uv_timeval64_t tv = {0, 0};
    uv_gettimeofday(&tv);
    cmd.has_time_ms = 1;
    cmd.time_ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
    cmd.request_id = (char *)rid;
    cmd.municipality = n->cfg.municipality;
    cmd.op_case = KIZUNA__COMMAND__OP_AUDIT_APPEND;
    cmd.audit_append = &aa;
    size_t len = kizuna__command__get_packed_size(&cmd);
    uint8_t *buf = malloc(len ? len : 1);
    kz_cons_req *creq = calloc(1, sizeof *creq);
    if (buf == NULL || creq == NULL) {
        free(buf);
        free(creq);
        return;
    }
    kizuna__command__pack(&cmd, buf);
    char *sealed = NULL;
    size_t slen = 0;
    int rv = kz_node_keys_seal_command(&n->keys, buf, len, &sealed, &slen);
    rv = kz_cons_propose(n->cons, creq, rv == KZ_OK ? sealed : (char *)buf,
                         rv == KZ_OK ? slen : len, on_refusal_audited);
    if (rv != 0) {
        kz_log(KZ_LOG_ERROR, "refusal audit record not proposed",
               "error=%s request_id=%s", kz_strerror(rv), rid);
        free(creq);
    }
    free(sealed);
    free(buf);
}

/* ------------------------------------------- for the other API files */

void kz_http_caller(struct kz_node *n, struct kz_http_caller_view *out)
{
    const struct caller *who = &n->http->caller;
    out->org = who->org;
    out->role = who->role;
    out->cn = who->cn;
    out->cert_sha256 = who->cert_sha256;
    out->purpose = who->purpose;
}

int kz_http_propose_merge(struct kz_node *n, h2o_req_t *req,
                          const struct route *r, const char *arg,
                          const char *rid, Kizuna__Command *cmd,
                          json_t *merge)
{
    return propose_merge(n, req, r, arg, rid, cmd, merge);
}

void kz_http_new_victim_id(char *out)
{
    new_victim_id(out);
}

void kz_http_stream_head(struct kz_node *n, h2o_req_t *req, int status,
                         const char *ctype)
{
    observe_answer(n, req, status);
    req->res.status = status;
    req->res.reason = reason_of(status);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   ctype, strlen(ctype));
    add_node_headers(n, req, kz_stor_applied_index(n->stor), -1);
}

void kz_http_send_error(struct kz_node *n, h2o_req_t *req, const char *rid,
                        int status, const char *code, const char *message)
{
    send_error(n, req, rid, status, code, message);
}

void kz_http_send_json(struct kz_node *n, h2o_req_t *req, int status,
                       json_t *body)
{
    send_json(n, req, status, body, kz_stor_applied_index(n->stor), -1);
}

void kz_http_send_cons_error(struct kz_node *n, h2o_req_t *req,
                             const char *rid, int err, bool write)
{
    send_cons_error(n, req, rid, err, write);
}

json_t *kz_http_parse_body(struct kz_node *n, h2o_req_t *req, const char *rid)
{
    return parse_body(n, req, rid);
}

bool kz_http_check_fields(struct kz_node *n, h2o_req_t *req, const char *rid,
                          json_t *body, const char *const *allowed,
                          const char *const *required)
{
    return check_fields(n, req, rid, body, allowed, required);
}

int kz_http_header(h2o_req_t *req, const char *name, char *out, size_t cap)
{
    return header_value(req, name, out, cap);
}

bool kz_http_dry_run(struct kz_node *n, h2o_req_t *req, const char *rid,
                     bool *dry)
{
    char q[16];
    int got = query_param(req, "dry_run", q, sizeof q);
    *dry = false;
    if (got == 0)
        return true;
    if (got > 0 && (strcmp(q, "1") == 0 || strcmp(q, "true") == 0)) {
        *dry = true;
        return true;
    }
    if (got > 0 && (strcmp(q, "0") == 0 || strcmp(q, "false") == 0))
        return true;
    send_error(n, req, rid, 400, "bad_request",
               "dry_run: want 1, true, 0 or false");
    return false;
}

int kz_http_query(h2o_req_t *req, const char *name, char *out, size_t cap)
{
    return query_param(req, name, out, cap);
}

int kz_http_propose(struct kz_node *n, h2o_req_t *req, const struct route *r,
                    const char *arg, const char *rid, Kizuna__Command *cmd)
{
    return propose(n, req, r, arg, rid, cmd);
}

void kz_http_audit_refusal(struct kz_node *n, const struct route *r,
                           const char *arg, const char *rid, int outcome)
{
    audit_refusal(n, r, arg, rid, outcome);
}

static void on_after_read_index(kz_cons_req *creq, int status)
{
    struct pending *p = creq->data;
    struct kz_node *n = p->node;
    if (p->req != NULL) {
        /* The handler may propose: it does so as the request's caller. */
        struct caller saved = n->http->caller;
        n->http->caller = p->who;
        p->after_fn(n, p->req, p->route, p->arg, p->request_id, p->after_data,
                    status);
        n->http->caller = saved;
    }
    pending_free(p);
}

int kz_http_after_read_index(struct kz_node *n, h2o_req_t *req,
                             const struct route *r, const char *arg,
                             const char *rid, void *data, kz_http_after_fn fn,
                             void (*free_data)(void *))
{
    struct pending *p = pending_new(n, req, r, arg, rid);
    if (p == NULL) {
        free_data(data);
        send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    p->who = n->http->caller;
    p->after_data = data;
    p->after_fn = fn;
    p->after_free = free_data;
    int rv = kz_cons_read_index(n->cons, &p->creq, on_after_read_index);
    if (rv != 0) {
        send_cons_error(n, req, rid, rv, false);
        pending_free(p);
    }
    return 0;
}

/* ------------------------------------------------------------ the router */

static void send_text(struct kz_node *n, h2o_req_t *req, int status,
                      const char *ctype, const char *text)
{
    send_body(n, req, status, ctype, text, strlen(text),
              kz_stor_applied_index(n->stor), -1);
}

/* GET /metrics: rendered by metrics.c, with what only this file knows. */
static void handle_metrics(struct kz_node *n, h2o_req_t *req, const char *rid)
{
    struct kz_node_metrics_http h = {
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
        .audit_entries_in_flight = n->http->audits.in_flight,
    };
    char *text;
    size_t len;
    if (kz_node_metrics_render(n, &h, &text, &len) != KZ_OK) {
        send_error(n, req, rid, 500, "internal", "out of memory");
        return;
    }
    send_body(n, req, 200, "text/plain; version=0.0.4", text, len,
              kz_stor_applied_index(n->stor), -1);
    free(text);
}

/* GET /ui, GET /ui/ (the page) and GET /ui/{file}: a file of the console compiled into the
 * binary (ui_assets.h), with its own Content-Type, a strict CSP (no inline
 * script, everything from this node) and no caching without revalidation:
 * the names carry no version, so a browser asks again (If-None-Match, 304)
 * and never keeps a console older than the node. */
static void handle_ui(struct kz_node *n, h2o_req_t *req, const char *name,
                      const char *rid)
{
    if (name[0] == '\0')
        name = "index.html";
    const struct kz_node_ui_asset *a = kz_node_ui_find(name, strlen(name));
    if (a == NULL) {
        send_error(n, req, rid, 404, "not_found", "no such file in the console");
        return;
    }
    add_header(req, "content-security-policy", KZ_NODE_UI_CSP);
    add_header(req, "x-content-type-options", "nosniff");
    add_header(req, "x-frame-options", "DENY");
    add_header(req, "referrer-policy", "no-referrer");
    add_header(req, "cache-control", "no-cache");
    add_header(req, "etag", a->etag);
    char inm[80];
    if (header_value(req, "if-none-match", inm, sizeof inm) == 1 &&
        strcmp(inm, a->etag) == 0) {
        observe_answer(n, req, 304);
        req->res.status = 304;
        req->res.reason = reason_of(304);
        req->res.content_length = 0;
        add_node_headers(n, req, kz_stor_applied_index(n->stor), -1);
        h2o_send_inline(req, "", 0);
        return;
    }
    send_body(n, req, 200, a->content_type, (const char *)a->data, a->len,
              kz_stor_applied_index(n->stor), -1);
}

static int handle_reload_tls(struct kz_node *n, h2o_req_t *req,
                             const char *rid);
static int handle_digest(struct kz_node *n, h2o_req_t *req, const char *rid);

/* GET /v1/cluster/backups/{id}: the manifest; ?file=NAME: that file of the
 * checkpoint, streamed from disk (backup.h). */
static int handle_backup_get(struct kz_node *n, h2o_req_t *req,
                             const char *id, const char *rid)
{
    char name[KZ_FS_NAME_MAX + 2];
    int got = query_param(req, "file", name, sizeof name);
    if (got < 0) {
        send_error(n, req, rid, 400, "bad_request", "file: not a file name");
        return 0;
    }
    if (got == 0) {
        json_t *m;
        if (kz_node_backup_manifest(n, id, &m) != KZ_OK) {
            send_error(n, req, rid, 404, "not_found", "no backup with this id");
            return 0;
        }
        send_json(n, req, 200, m, kz_stor_applied_index(n->stor), -1);
        return 0;
    }
    char path[KZ_NODE_PATH_MAX + 256];
    int rv = kz_node_backup_file(n, id, name, path, sizeof path);
    if (rv == KZ_EINVAL) {
        send_error(n, req, rid, 400, "bad_request", "file: not a file name");
        return 0;
    }
    if (rv != KZ_OK) {
        send_error(n, req, rid, 404, "not_found",
                   "no such file in a backup of this node");
        return 0;
    }
    n->stats.http_requests++;
    n->stats.http_by_class[2]++;
    add_node_headers(n, req, kz_stor_applied_index(n->stor), -1);
    /* Logged before: once sending, req may be gone. A file removed in
     * between gets a second line, its 404. */
    log_answer(req, route_of(req), 200, req_age_us(req));
    if (h2o_file_send(req, 200, "OK", path,
                      h2o_iovec_init(H2O_STRLIT("application/octet-stream")),
                      0) != 0) {
        n->stats.http_by_class[2]--;
        n->stats.http_requests--;
        send_error(n, req, rid, 404, "not_found",
                   "no such file in a backup of this node");
    }
    return 0;
}

/* DELETE /v1/cluster/backups/{id}: frees the disk it holds. */
static int handle_backup_delete(struct kz_node *n, h2o_req_t *req,
                                const char *id, const char *rid)
{
    int rv = kz_node_backup_delete(n, id);
    if (rv == KZ_ENOTFOUND) {
        send_error(n, req, rid, 404, "not_found", "no backup with this id");
        return 0;
    }
    if (rv != KZ_OK) {
        send_error(n, req, rid, 500, "internal", "the backup could not be "
                                                 "removed");
        return 0;
    }
    send_json(n, req, 200, json_pack("{s:s}", "deleted", id),
              kz_stor_applied_index(n->stor), -1);
    return 0;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct kz_node *n = ((struct handler *)self)->node;
    char rid[24];
    random_hex(rid, 8);
    add_header(req, "x-request-id", rid);

    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    const struct route *r = NULL;
    char arg[80] = "";
    bool path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        char a[80] = "";
        if (!match_route(&routes[i], req->path.base, plen, a, sizeof a))
            continue;
        path_known = true;
        if (h2o_memis(req->method.base, req->method.len, routes[i].method,
                      strlen(routes[i].method))) {
            r = &routes[i];
            memcpy(arg, a, sizeof arg);
            break;
        }
    }
    if (r == NULL) {
        send_error(n, req, rid, path_known ? 405 : 404,
                   path_known ? "method_not_allowed" : "not_found",
                   path_known ? "method not allowed on this path"
                              : "no such endpoint");
        return 0;
    }
    if (r->id != RT_PHOTO_PUT && r->id != RT_IMPORT_CSV &&
        r->id != RT_IMPORT_PFIF &&
        req->entity.base != NULL && req->entity.len > n->cfg.max_body_bytes) {
        send_error(n, req, rid, 413, "too_large",
                   "the body is larger than max_body_bytes");
        return 0;
    }
    if ((r->id == RT_IMPORT_CSV || r->id == RT_IMPORT_PFIF) &&
        req->entity.base != NULL &&
        req->entity.len > KZ_NODE_IMPORT_MAX_BYTES) {
        send_error(n, req, rid, 413, "too_large",
                   r->id == RT_IMPORT_CSV
                       ? "an import batch is at most 4 MB (and 500 "
                         "records): split the file (kizuna import csv does)"
                       : "an import batch is at most 4 MB (and 500 "
                         "persons): split the file (kizuna import pfif "
                         "does)");
        return 0;
    }
    struct caller *who = &n->http->caller;
    memset(who, 0, sizeof *who);
    if (!(r->roles & R_ANY)) {
        const struct peer_info *pi = peer_info(n->http, req);
        if (pi == NULL || !pi->verified) {
            send_error(n, req, rid, 401, "unauthenticated",
                       "a verified client certificate is required");
            return 0;
        }
        const struct kz_node_identity id = pi->id;
        who->known = true;
        snprintf(who->org, sizeof who->org, "%s", id.org);
        snprintf(who->role, sizeof who->role, "%s", id.role_name);
        memcpy(who->cert_sha256, pi->cert_sha256, sizeof who->cert_sha256);
        if (id.role == R_CITIZEN)
            snprintf(who->cn, sizeof who->cn, "%s", pi->cn);
        if (header_value(req, "x-purpose", who->purpose,
                         sizeof who->purpose) != 1)
            who->purpose[0] = '\0';
        if (!(r->roles & id.role)) {
            kz_log(KZ_LOG_WARN, "request refused to role",
                   "method=%s route=%s role=%s status=403 request_id=%s",
                   r->method, r->pattern,
                   id.role_name[0] ? id.role_name : "-", rid);
            char msg[160];
            snprintf(msg, sizeof msg,
                     "role '%s' may not call %s %s",
                     id.role_name[0] ? id.role_name : "(none)", r->method,
                     r->pattern);
            send_error(n, req, rid, 403, "forbidden", msg);
            audit_refusal(n, r, arg, rid, 403);
            return 0;
        }
    }
    /* Path ids are ids: anything else names no record. Refused before any
     * proposal so a bad id never costs a raft entry. */
    /* A link code's check symbol may be one of * ~ $ = (linkcode.h),
     * percent-encoded or not: decoded here, checked by the parser. */
    if (r->id == RT_LINK_UNLINK) {
        char dec[sizeof arg];
        if (url_decode(arg, strlen(arg), dec, sizeof dec) < 0) {
            send_error(n, req, rid, 400, "bad_link_code",
                       "link code: malformed percent-encoding");
            return 0;
        }
        memcpy(arg, dec, sizeof arg);
    } else if (arg[0] != '\0' && !kz_node_valid_ref(arg)) {
        if (r->id == RT_SHELTER_PUT)
            send_error(n, req, rid, 400, "bad_request",
                       "shelter id: must be 1-64 characters of A-Z a-z 0-9 "
                       "_ - . :");
        else
            send_error(n, req, rid, 404, "not_found", "no record with this id");
        return 0;
    }
    if (r->personal) {
        char purpose[256];
        if (header_value(req, "x-purpose", purpose, sizeof purpose) != 1 ||
            purpose[0] == '\0') {
            send_error(n, req, rid, 400, "purpose_required",
                       "X-Purpose is required when reading personal data");
            return 0;
        }
    }
    switch (r->id) {
    case RT_HEALTHZ:
        send_text(n, req, 200, "text/plain", "ok\n");
        return 0;
    case RT_READYZ: {
        struct kz_cons_status st;
        kz_cons_get_status(n->cons, &st);
        bool ready = st.leader_id != 0 &&
                     st.applied_index + 64 >= st.commit_index;
        if (!ready)
            add_header(req, "retry-after", "1");
        send_text(n, req, ready ? 200 : 503, "text/plain",
                  ready ? "ready\n"
                        : (st.leader_id == 0 ? "no leader\n"
                                             : "catching up\n"));
        return 0;
    }
    case RT_METRICS:
        handle_metrics(n, req, rid);
        return 0;
    case RT_UI_ASSET:
        handle_ui(n, req, arg, rid);
        return 0;
    case RT_CLUSTER:
        return handle_cluster(n, req, r, rid);
    case RT_TLS_RELOAD:
        return handle_reload_tls(n, req, rid);
    case RT_DIGEST:
        return handle_digest(n, req, rid);
    case RT_NODE_ADD:
    case RT_NODE_REMOVE:
        return handle_membership(n, req, r, arg, rid);
    case RT_LEADER_TRANSFER:
        return handle_transfer(n, req, r, rid);
    case RT_SNAPSHOT:
        return handle_snapshot(n, req, r, rid);
    case RT_KEYS_ROTATE:
        return handle_keys_rotate(n, req, r, rid);
    case RT_VICTIM_GET:
    case RT_VICTIM_DUPS:
    case RT_VICTIM_SEARCH:
    case RT_SHELTER_SUMMARY:
    case RT_AUDIT_LIST:
    case RT_AUDIT_VERIFY:
    case RT_ORG_GET:
    case RT_WHITELIST_GET:
    case RT_MED_GET:
    case RT_MED_INBOX:
    case RT_PORTAL_ME:
    case RT_PORTAL_LOG:
    case RT_PHOTO_GET:
    case RT_BACKUP_CREATE:
        return handle_read(n, req, r, arg, rid);
    case RT_BACKUP_GET:
        return handle_backup_get(n, req, arg, rid);
    case RT_BACKUP_DELETE:
        return handle_backup_delete(n, req, arg, rid);
    case RT_PHOTO_PUT:
        return handle_photo_put(n, req, r, arg, rid);
    case RT_IMPORT_CSV:
        return handle_import_csv(n, req, r, rid);
    case RT_IMPORT_PFIF:
    case RT_EXPORT_PFIF:
        return kz_api_pfif(n, req, r, rid);
    case RT_ID_CHALLENGE:
    case RT_ID_VERIFY:
    case RT_ID_FALLBACK:
    case RT_ID_CRL_PUT:
    case RT_ID_CARD_PUT:
        return kz_api_identity(n, req, r, arg, rid);
    case RT_PROGRAM_PUT:
    case RT_PAYOUT_CREATE:
    case RT_PAYOUT_EXPORT:
        return kz_api_payouts(n, req, r, arg, rid);
    case RT_ID_CRL_GET:
    case RT_PROGRAMS_GET:
    case RT_PROGRAM_GET:
    case RT_PAYOUT_LIST:
    case RT_PAYOUT_GET:
    case RT_PAYOUT_LEDGER:
        return handle_read(n, req, r, arg, rid);
    default:
        return handle_write(n, req, r, arg, rid);
    }
}

/* ------------------------------------------------------------- lifecycle */

/* Limits (docs/ARCHITECTURE.md, "Limits and reload"): at most
 * max_connections API connections are open; one more is accepted and reset
 * at once (accepting keeps libuv's listener from stalling on it), counted
 * and logged. h2o closes a connection that has not finished its TLS
 * handshake within tls_handshake_timeout_ms, an HTTP/1 request (headers and
 * body) not received within request_header_timeout_ms (also the keep-alive
 * idle time) and an HTTP/2 connection without requests for idle_timeout_ms.
 *
 * Reload: the API's SSL_CTX is rebuilt from the files and becomes the
 * accept context for new connections; a connection keeps the context it was
 * accepted with (its SSL holds a reference), and the list of generations
 * lets request_ssl() recognise every context still in use. */

static bool log_allowed(struct kz_node_http *h, struct log_limit *l,
                        unsigned burst)
{
    uint64_t now = uv_now(h->node->loop);
    if (l->window_start == 0 || now - l->window_start >= 10000) {
        l->window_start = now ? now : 1;
        l->lines = 0;
    }
    if (l->lines >= burst) {
        l->left_out++;
        return false;
    }
    l->lines++;
    return true;
}

/* Records the OpenSSL error behind a failed step in n->errmsg. */
static int tls_fail(struct kz_node *n, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[160];
    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(n->errmsg, sizeof n->errmsg, "%s %s: %s", what, path,
             e ? buf : "failed");
    ERR_clear_error();
    return KZ_ECONFIG;
}

/* Logs why a client certificate was refused: the handshake fails without an
 * alert (h2o), so the node's log is where an operator sees it. The reason
 * only, never the subject: a citizen certificate names a person. */
static int on_client_verify(int ok, X509_STORE_CTX *x)
{
    if (ok)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(
        x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct kz_node_http *h =
        ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
    if (h == NULL || !log_allowed(h, &h->log_refused_cert, 20))
        return ok;
    int err = X509_STORE_CTX_get_error(x);
    kz_log(KZ_LOG_WARN, "API client certificate refused",
           "reason=%s depth=%d not_logged=%llu",
           X509_verify_cert_error_string(err),
           X509_STORE_CTX_get_error_depth(x),
           (unsigned long long)h->log_refused_cert.left_out);
    h->log_refused_cert.left_out = 0;
    return ok;
}

/* Counts the API handshakes this node ends with a fatal alert (a missing,
 * bad or revoked client certificate, no common protocol) for /metrics. */
static void on_tls_info(const SSL *ssl, int where, int ret)
{
    if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_WRITE) ||
        (ret >> 8) != SSL3_AL_FATAL || SSL_is_init_finished(ssl))
        return;
    struct kz_node_http *h = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (h != NULL)
        h->node->stats.api_handshakes_failed++;
}

/* The issuer of crl among the certificates of the store, or NULL. */
static X509 *crl_issuer(X509_STORE *st, X509_CRL *crl)
{
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(st);
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (ca != NULL &&
            X509_NAME_cmp(X509_get_subject_name(ca),
                          X509_CRL_get_issuer(crl)) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
            return ca;
    }
    return NULL;
}

/* Adds the CRLs of tls_crl (PEM, one or more) to ctx's store and turns on
 * revocation checks of client certificates. A CRL that the configured CA
 * did not sign, or that is out of its validity, is refused here: installed,
 * it would make OpenSSL refuse every client. *revoked: entries loaded. */
static int load_crl(struct kz_node *n, SSL_CTX *ctx, long *revoked)
{
    const char *path = n->cfg.tls_crl;
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    int rv = KZ_ECONFIG, count = 0;
    *revoked = 0;
    ERR_clear_error();
    BIO *b = BIO_new_file(path, "r");
    if (b == NULL)
        return tls_fail(n, "CRL", path);
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
        if (crl_issuer(st, crl) == NULL) {
            snprintf(n->errmsg, sizeof n->errmsg,
                     "CRL %s: not signed by a CA of tls_ca", path);
            goto err_after_read;
        }
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl)) > 0 ||
            (next != NULL && X509_cmp_current_time(next) < 0)) {
            snprintf(n->errmsg, sizeof n->errmsg,
                     "CRL %s: not valid now (expired or not yet valid); it "
                     "would refuse every client",
                     path);
            goto err_after_read;
        }
        /* The store takes its own reference. */
        if (X509_STORE_add_crl(st, crl) != 1) {
            tls_fail(n, "CRL", path);
            goto err_after_read;
        }
        STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
        *revoked += rev ? sk_X509_REVOKED_num(rev) : 0;
        count++;
        X509_CRL_free(crl);
    }
    /* The loop ends at the end of the file (no further PEM block) or on a
     * block that does not parse: only the first is fine. */
    unsigned long e = ERR_peek_last_error();
    bool at_end = e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM &&
                             ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
    if (!at_end) {
        tls_fail(n, "CRL", path);
        goto close_file;
    }
    ERR_clear_error();
    if (count == 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "CRL %s: no CRL in the file",
                 path);
        goto close_file;
    }
    X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
    rv = KZ_OK;
    goto close_file;

err_after_read:
    X509_CRL_free(crl);
close_file:
    BIO_free(b);
    return rv;
}

static void cert_serial(SSL_CTX *ctx, char *out, size_t cap)
{
    snprintf(out, cap, "?");
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    BIGNUM *bn = cert ? ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), NULL)
                      : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex != NULL)
        snprintf(out, cap, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
}

/* A new API context from the configured files; NULL with n->errmsg set.
 * *revoked: CRL entries, -1 without tls_crl. */
static SSL_CTX *api_ctx_new(struct kz_node_http *h, long *revoked)
{
    struct kz_node *n = h->node;
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_fail(n, "TLS", "context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* With client certificates OpenSSL refuses to resume a session that
     * has no session id context, and closes the connection: name one.
     * Sessions and tickets stay per context, so none made before a reload
     * resumes after it (a newly revoked certificate cannot slip through). */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"kizuna-api",
                                   10);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* TLS 1.2 only with forward-secret AEAD suites (TLS 1.3's all are). */
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
        tls_fail(n, "TLS", "cipher list");
        goto err_after_ctx;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, n->cfg.tls_cert) != 1) {
        tls_fail(n, "certificate", n->cfg.tls_cert);
        goto err_after_ctx;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, n->cfg.tls_key, SSL_FILETYPE_PEM) !=
            1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_fail(n, "key", n->cfg.tls_key);
        goto err_after_ctx;
    }
    if (SSL_CTX_load_verify_locations(ctx, n->cfg.tls_ca, NULL) != 1) {
        tls_fail(n, "CA", n->cfg.tls_ca);
        goto err_after_ctx;
    }
    *revoked = -1;
    if (n->cfg.tls_crl[0] != '\0' && load_crl(n, ctx, revoked) != KZ_OK)
        goto err_after_ctx;
    SSL_CTX_set_app_data(ctx, h);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       on_client_verify);
    SSL_CTX_set_info_callback(ctx, on_tls_info);
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;

err_after_ctx:
    SSL_CTX_free(ctx);
    return NULL;
}

/* Frees the generations that are neither current nor used by a connection. */
static void tls_gens_prune(struct kz_node_http *h)
{
    if (h->gens == NULL)
        return;
    struct tls_gen **pp = &h->gens->next;
    while (*pp != NULL) {
        struct tls_gen *g = *pp;
        if (g->conns == 0) {
            *pp = g->next;
            SSL_CTX_free(g->ctx);
            free(g);
        } else {
            pp = &g->next;
        }
    }
}

/* Makes ctx (owned by the list from now on) the context of new
 * connections. */
static void tls_gen_install(struct kz_node_http *h, struct tls_gen *g,
                            SSL_CTX *ctx, long revoked)
{
    g->ctx = ctx;
    g->conns = 0;
    g->next = h->gens;
    h->gens = g;
    h->ssl_ctx = ctx;
    h->accept_ctx.ssl_ctx = ctx;
    h->crl_revoked = revoked;
    cert_serial(ctx, h->cert_serial, sizeof h->cert_serial);
    tls_gens_prune(h);
}

int kz_node_http_init(struct kz_node *n)
{
    if (peer_info_index < 0)
        peer_info_index =
            SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_info_free);
    struct kz_node_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return KZ_ENOMEM;
    n->http = h;
    h->node = n;
    struct tls_gen *g = calloc(1, sizeof *g);
    if (g == NULL)
        return KZ_ENOMEM;
    long revoked;
    SSL_CTX *ctx = api_ctx_new(h, &revoked);
    if (ctx == NULL) {
        free(g);
        return KZ_ECONFIG;
    }
    tls_gen_install(h, g, ctx, revoked);

    h2o_config_init(&h->config);
    /* The largest body any route takes; on_req holds the others to
     * max_body_bytes. */
    h->config.max_request_entity_size =
        n->cfg.photo_max_bytes > n->cfg.max_body_bytes ? n->cfg.photo_max_bytes
                                                       : n->cfg.max_body_bytes;
    if (h->config.max_request_entity_size < KZ_NODE_IMPORT_MAX_BYTES)
        h->config.max_request_entity_size = KZ_NODE_IMPORT_MAX_BYTES;
    /* Read by h2o_context_init (kz_node_http_start). */
    h->config.handshake_timeout = n->cfg.tls_handshake_timeout_ms;
    h->config.http1.req_timeout = n->cfg.request_header_timeout_ms;
    h->config.http2.idle_timeout = n->cfg.idle_timeout_ms;
    h2o_hostconf_t *host = h2o_config_register_host(
        &h->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct handler *hd =
        (struct handler *)h2o_create_handler(path, sizeof *hd);
    hd->super.on_req = on_req;
    hd->node = n;
    return KZ_OK;
}

int kz_node_reload_tls(struct kz_node *n, const char *trigger,
                       const char *request_id)
{
    struct kz_node_http *h = n->http;
    struct tls_gen *g = calloc(1, sizeof *g);
    if (g == NULL) {
        snprintf(n->errmsg, sizeof n->errmsg, "out of memory");
        goto err;
    }
    long revoked;
    SSL_CTX *ctx = api_ctx_new(h, &revoked);
    if (ctx == NULL)
        goto err_after_gen;
    /* Peers last: after it nothing can fail, so either both take the new
     * files or neither does. */
    char perr[200];
    if (kz_cons_reload_tls(n->cons, perr, sizeof perr) != KZ_OK) {
        snprintf(n->errmsg, sizeof n->errmsg, "peer channels: %s", perr);
        SSL_CTX_free(ctx);
        goto err_after_gen;
    }
    tls_gen_install(h, g, ctx, revoked);
    n->stats.tls_reloads++;
    unsigned older = 0;
    for (struct tls_gen *o = h->gens->next; o != NULL; o = o->next)
        older++;
    char crl[32];
    snprintf(crl, sizeof crl, "%ld", revoked);
    kz_log(KZ_LOG_INFO, "TLS reloaded",
           "trigger=%s serial=%s crl_revoked=%s older_contexts=%u "
           "request_id=%s",
           trigger, h->cert_serial, revoked < 0 ? NULL : crl, older,
           request_id);
    return KZ_OK;

err_after_gen:
    free(g);
err:
    n->stats.tls_reload_fails++;
    kz_log(KZ_LOG_ERROR, "TLS reload refused, current certificates kept",
           "trigger=%s error=%s request_id=%s", trigger, n->errmsg,
           request_id);
    return KZ_ECONFIG;
}

static int handle_reload_tls(struct kz_node *n, h2o_req_t *req,
                             const char *rid)
{
    if (kz_node_reload_tls(n, "API", rid) != KZ_OK) {
        char msg[400];
        snprintf(msg, sizeof msg,
                 "reload refused; this node keeps its current certificates: "
                 "%s",
                 n->errmsg);
        send_error(n, req, rid, 422, "tls_reload_failed", msg);
        return 0;
    }
    struct kz_node_http *h = n->http;
    json_t *o = json_pack("{s:b,s:I,s:s,s:o}", "reloaded", 1, "node",
                          (json_int_t)n->cfg.id, "certificate_serial",
                          h->cert_serial, "crl_revoked",
                          h->crl_revoked < 0 ? json_null()
                                             : json_integer(h->crl_revoked));
    send_json(n, req, 200, o, kz_stor_applied_index(n->stor), -1);
    return 0;
}

/* GET /v1/cluster/digest: this node's state digest at its applied index (no
 * read index: it says what this replica holds). It reads the whole state on
 * the loop thread: a diagnostic for tests and drills, not for a busy node. */
static int handle_digest(struct kz_node *n, h2o_req_t *req, const char *rid)
{
    unsigned char d[32];
    uint64_t index, entries;
    if (kz_stor_digest(n->stor, d, &index, &entries) != KZ_OK) {
        send_error(n, req, rid, 500, "internal", "cannot read the state");
        return 0;
    }
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    json_t *o = json_pack("{s:I,s:I,s:I,s:s}", "node", (json_int_t)n->cfg.id,
                          "applied_index", (json_int_t)index, "entries",
                          (json_int_t)entries, "digest", hex);
    send_json(n, req, 200, o, index, -1);
    return 0;
}

/* An accepted API connection. tcp comes first: h2o's close callback gets
 * &tcp. */
struct api_conn {
    uv_tcp_t tcp;
    struct kz_node_http *h;
    struct tls_gen *gen;
};

static void api_conn_closed(uv_handle_t *handle)
{
    struct api_conn *c = (struct api_conn *)handle;
    struct kz_node_http *h = c->h;
    h->n_conns--;
    h->node->stats.conns_open = h->n_conns;
    if (--c->gen->conns == 0 && c->gen != h->gens)
        tls_gens_prune(h);
    free(c);
}

static void refuse_conn(struct kz_node_http *h, struct api_conn *c)
{
    struct kz_node *n = h->node;
    n->stats.conns_refused++;
    if (log_allowed(h, &h->log_refused_conn, 5)) {
        kz_log(KZ_LOG_WARN, "API connection refused",
               "open=%u max_connections=%u refused_total=%llu", h->n_conns,
               n->cfg.max_connections,
               (unsigned long long)n->stats.conns_refused);
        h->log_refused_conn.left_out = 0;
    }
    /* A reset: the client learns at once, and no TIME_WAIT is left here. */
    if (uv_tcp_close_reset(&c->tcp, (uv_close_cb)free) != 0)
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
}

static void on_accept(uv_stream_t *listener, int status)
{
    struct kz_node_http *h = listener->data;
    if (status != 0)
        return;
    struct api_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(listener->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    if (h->n_conns >= h->node->cfg.max_connections) {
        refuse_conn(h, c);
        return;
    }
    c->h = h;
    c->gen = h->gens;
    c->gen->conns++;
    h->n_conns++;
    h->node->stats.conns_open = h->n_conns;
    uv_tcp_nodelay(&c->tcp, 1);
    h2o_socket_t *sock =
        h2o_uv_socket_create((uv_stream_t *)&c->tcp, api_conn_closed);
    h2o_accept(&h->accept_ctx, sock);
}

int kz_node_http_start(struct kz_node *n)
{
    struct kz_node_http *h = n->http;
    h2o_context_init(&h->ctx, n->loop, &h->config);
    h->accept_ctx.ctx = &h->ctx;
    h->accept_ctx.hosts = h->config.hosts;
    h->accept_ctx.ssl_ctx = h->ssl_ctx;

    char host[KZ_CONS_ADDR_MAX];
    snprintf(host, sizeof host, "%s", n->cfg.api_listen);
    char *colon = strrchr(host, ':');
    *colon = '\0';
    struct sockaddr_in sa;
    if (uv_ip4_addr(host, atoi(colon + 1), &sa) != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "api_listen: bad IPv4 address");
        return KZ_ECONFIG;
    }
    uv_tcp_init(n->loop, &h->listener);
    h->listener.data = h;
    int rv = uv_tcp_bind(&h->listener, (struct sockaddr *)&sa, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&h->listener, 512, on_accept);
    if (rv != 0) {
        snprintf(n->errmsg, sizeof n->errmsg, "api listen on %s: %s",
                 n->cfg.api_listen, uv_strerror(rv));
        uv_close((uv_handle_t *)&h->listener, NULL);
        return KZ_ENET;
    }
    h->listening = true;
    uv_prepare_init(n->loop, &h->audits.flush_prep);
    h->audits.flush_prep.data = n;
    uv_idle_init(n->loop, &h->audits.flush_idle);
    h->audits.flush_idle.data = n;
    h->audits.handles = true;
    return KZ_OK;
}

bool kz_node_http_busy(struct kz_node *n)
{
    return n->http != NULL && n->http->stale.busy;
}

void kz_node_http_stop(struct kz_node *n)
{
    struct kz_node_http *h = n->http;
    if (h != NULL && h->listening) {
        h->listening = false;
        uv_close((uv_handle_t *)&h->listener, NULL);
    }
    if (h != NULL && h->audits.handles) {
        /* Reads still arriving flush at once from now on. */
        h->audits.handles = false;
        uv_close((uv_handle_t *)&h->audits.flush_prep, NULL);
        uv_close((uv_handle_t *)&h->audits.flush_idle, NULL);
        if (h->audits.deferred) {
            h->audits.deferred = false;
            if (h->audits.waiting != NULL &&
                h->audits.in_flight < AUDIT_PIPELINE)
                audits_flush(n);
        }
    }
}

/* Called once the loop no longer runs (kizunad drops open connections at
 * shutdown): a connection's SSL keeps its own reference to its context. */
void kz_node_http_free(struct kz_node *n)
{
    struct kz_node_http *h = n->http;
    if (h == NULL)
        return;
    while (h->gens != NULL) {
        struct tls_gen *g = h->gens;
        h->gens = g->next;
        SSL_CTX_free(g->ctx);
        free(g);
    }
    free(h);
    n->http = NULL;
}
