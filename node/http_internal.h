/*
 * http_internal.h — what the API's handlers in other files share with
 * http_api.c (internal to node/): the route ids, the route table's entry,
 * and the helpers that answer, parse and propose. http_api.c keeps the
 * table itself (who may call what), the router, TLS and the read path;
 * api_identity.c and api_payouts.c hold the handlers of their endpoints.
 *
 * The calling convention of every handler: it runs inside the router's call
 * for one request, answers it exactly once (now, or later from a callback),
 * and returns 0. kz_http_propose() takes the caller's identity for the audit
 * record from the router's state, so it must be called within that same
 * call, or within kz_http_after_read_index()'s callback, which restores it.
 */
#ifndef KZ_NODE_HTTP_INTERNAL_H
#define KZ_NODE_HTTP_INTERNAL_H

#include <h2o.h>
#include <jansson.h>
#include <stdbool.h>

#include "kizuna.pb-c.h"
#include "node.h"

enum route_id {
    RT_HEALTHZ = 1,
    RT_READYZ,
    RT_METRICS,
    RT_CLUSTER,
    RT_VICTIM_CREATE,
    RT_VICTIM_GET,
    RT_VICTIM_PATCH,
    RT_VICTIM_SEARCH,
    RT_VICTIM_NOTE,
    RT_VICTIM_DUPS,
    RT_SNAPSHOT,
    RT_VICTIM_MERGE,
    RT_VICTIM_UNMERGE,
    RT_SHELTER_PUT,
    RT_SHELTER_SUMMARY,
    RT_TLS_RELOAD,
    RT_DIGEST,
    RT_BACKUP_CREATE,
    RT_BACKUP_GET,
    RT_BACKUP_DELETE,
    RT_NODE_ADD,
    RT_NODE_REMOVE,
    RT_LEADER_TRANSFER,
    RT_KEYS_ROTATE,
    RT_AUDIT_LIST,
    RT_AUDIT_VERIFY,
    RT_ORG_PUT,
    RT_ORG_GET,
    RT_WHITELIST_PUT,
    RT_WHITELIST_GET,
    RT_LINK_ISSUE,
    RT_LINK_UNLINK,
    RT_MED_CREATE,
    RT_MED_INBOX,
    RT_MED_GET,
    RT_MED_REPLY,
    RT_PORTAL_ME,
    RT_PORTAL_LOG,
    RT_PHOTO_PUT,
    RT_PHOTO_GET,
    RT_ID_CHALLENGE,
    RT_ID_VERIFY,
    RT_ID_FALLBACK,
    RT_ID_CRL_PUT,
    RT_ID_CRL_GET,
    RT_ID_CARD_PUT,
    RT_PROGRAMS_GET,
    RT_PROGRAM_GET,
    RT_PROGRAM_PUT,
    RT_PAYOUT_CREATE,
    RT_PAYOUT_LIST,
    RT_PAYOUT_GET,
    RT_PAYOUT_EXPORT,
    RT_PAYOUT_LEDGER,
    RT_IMPORT_CSV,
    RT_UI_ASSET,
    RT_IMPORT_PFIF,
    RT_EXPORT_PFIF
};

struct route {
    const char *method;
    const char *pattern; /* '*' matches one path segment */
    enum route_id id;
    int roles;
    bool personal; /* reads personal data: X-Purpose required */
    bool audited;  /* a read of personal data: audit record before answer */
};

/* Who is calling (from the client certificate and X-Purpose). */
struct kz_http_caller_view {
    const char *org;  /* O */
    const char *role; /* OU */
    const char *cn;   /* citizens only */
    const char *cert_sha256;
    const char *purpose; /* X-Purpose, "" when none */
};
void kz_http_caller(struct kz_node *n, struct kz_http_caller_view *out);

void kz_http_send_error(struct kz_node *n, h2o_req_t *req, const char *rid,
                        int status, const char *code, const char *message);
/* Sends body (taken) with the node headers at the applied index. */
void kz_http_send_json(struct kz_node *n, h2o_req_t *req, int status,
                       json_t *body);
/* Maps a consensus failure (KZ_ENOLEADER...) to a 503/500 answer. */
void kz_http_send_cons_error(struct kz_node *n, h2o_req_t *req,
                             const char *rid, int err, bool write);
/* The JSON body, or NULL after answering 400. */
json_t *kz_http_parse_body(struct kz_node *n, h2o_req_t *req, const char *rid);
/* body is an object with only `allowed` keys and every `required` one a
 * non-empty string; else answers 400 and returns false. */
bool kz_http_check_fields(struct kz_node *n, h2o_req_t *req, const char *rid,
                          json_t *body, const char *const *allowed,
                          const char *const *required);
/* 1 and the value in out, 0 when absent, -1 when it does not fit. */
int kz_http_header(h2o_req_t *req, const char *name, char *out, size_t cap);
int kz_http_query(h2o_req_t *req, const char *name, char *out, size_t cap);
/* ?dry_run=1|true|0|false (absent: false) into *dry; false after answering
 * 400 for anything else. */
bool kz_http_dry_run(struct kz_node *n, h2o_req_t *req, const char *rid,
                     bool *dry);
/* Proposes cmd (time, request id, municipality and who asked are set
 * here); the state machine's result is the answer. */
int kz_http_propose(struct kz_node *n, h2o_req_t *req, const struct route *r,
                    const char *arg, const char *rid, Kizuna__Command *cmd);
/* As kz_http_propose; when merge is not NULL (taken), its members are
 * added to a 2xx answer (an import's rejections, known only here). */
int kz_http_propose_merge(struct kz_node *n, h2o_req_t *req,
                          const struct route *r, const char *arg,
                          const char *rid, Kizuna__Command *cmd,
                          json_t *merge);
/* A new victim id, as POST /v1/victims draws it (out: at least 27 bytes). */
void kz_http_new_victim_id(char *out);
/* For a body the caller streams (h2o_start_response, h2o_send): counts and
 * logs the answer, sets status, content type and the X-Kizuna-* headers. */
void kz_http_stream_head(struct kz_node *n, h2o_req_t *req, int status,
                         const char *ctype);

/* Appends the audit record of a call refused before any proposal. */
void kz_http_audit_refusal(struct kz_node *n, const struct route *r,
                           const char *arg, const char *rid, int outcome);

/* Waits for a read index (everything committed before the request is then
 * applied here), then calls fn with the request's caller restored, unless
 * the client went away meanwhile; data is freed with free_data either way.
 * status is 0 or a consensus error for kz_http_send_cons_error. */
typedef void (*kz_http_after_fn)(struct kz_node *n, h2o_req_t *req,
                                 const struct route *r, const char *arg,
                                 const char *rid, void *data, int status);
int kz_http_after_read_index(struct kz_node *n, h2o_req_t *req,
                             const struct route *r, const char *arg,
                             const char *rid, void *data, kz_http_after_fn fn,
                             void (*free_data)(void *));

/* GET /v1/identity/crl: the installed CRL's dates and whether it is stale
 * (api_identity.c). */
json_t *kz_api_crl_status(struct kz_node *n);
/* The identity checks' lines of /metrics into buf; bytes written or -1. */
int kz_api_identity_metrics(struct kz_node *n, char *buf, size_t cap);

/* Handlers of api_identity.c and api_payouts.c. */
int kz_api_identity(struct kz_node *n, h2o_req_t *req, const struct route *r,
                    const char *arg, const char *rid);
int kz_api_payouts(struct kz_node *n, h2o_req_t *req, const struct route *r,
                   const char *arg, const char *rid);
/* POST /v1/import/pfif and GET /v1/export/pfif (api_pfif.c). */
int kz_api_pfif(struct kz_node *n, h2o_req_t *req, const struct route *r,
                const char *rid);

#endif
