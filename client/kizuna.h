/*
 * libkizuna — a small synchronous C client for the Kizuna HTTP/JSON API.
 *
 * Owns: the list of endpoints (one per node), one libcurl easy handle per
 * endpoint (so each node's TLS connection is kept alive and reused), and the
 * failover policy. Happy path: kz_cli_request() sends the call to the
 * endpoint that answered last and returns its status, body and the
 * X-Kizuna-* headers. Failure modes: a connection that cannot be made
 * (refused, timed out, TLS failure, reset) or a 503 from a node without a
 * quorum moves on to the next endpoint; after a full round without an answer
 * it backs off (100 ms doubling to 1 s, or the server's Retry-After capped at
 * 1 s) and tries again until the per-call deadline. A write that may already
 * have reached a node is never sent again unless it is safe to repeat (see
 * kz_cli_request), so the library never turns one register call into two.
 *
 * Any node accepts any call (followers forward writes), so there is no leader
 * discovery here: "the endpoint that answered last" is all the state kept.
 *
 * Threads: a kz_cli is not thread-safe; use one per thread. The library
 * prints nothing unless opts.verbose is set, and then never personal data:
 * only method, path without its query string, endpoint, status and error.
 */
#ifndef KZ_CLI_KIZUNA_H
#define KZ_CLI_KIZUNA_H

#include <stddef.h>

/* Error codes of this library (X-macro: code, value, text). */
#define KZ_CLI_ERRORS(X)                                                        \
	X(KZ_CLI_OK, 0, "ok")                                                   \
	X(KZ_CLI_EINVAL, 1, "invalid argument")                                 \
	X(KZ_CLI_ENOMEM, 2, "out of memory")                                    \
	X(KZ_CLI_EIO, 3, "cannot read file")                                    \
	X(KZ_CLI_ECONFIG, 4, "client configuration rejected")                   \
	X(KZ_CLI_EUNREACHABLE, 5, "no endpoint reachable")                      \
	X(KZ_CLI_EINDOUBT, 6, "request sent but no answer: outcome unknown")    \
	X(KZ_CLI_ETOOBIG, 7, "response too large")

enum {
#define KZ_CLI__ENUM(name, value, text) name = (value),
	KZ_CLI_ERRORS(KZ_CLI__ENUM)
#undef KZ_CLI__ENUM
};

/* Static text for an error code (never NULL). */
const char *kz_cli_strerror(int rc);

/* ---- endpoints --------------------------------------------------------------
 * An endpoints spec is either a path to a file of lines
 *     <url> <node-id> <region>
 * ('#' starts a comment, blank lines are ignored; every other line must have
 * exactly those three fields), or a comma-separated list of URLs (recognised
 * by containing "://"), whose node id and region are unknown (NULL).
 * URLs must be http:// or https://; a trailing '/' is dropped. */
typedef struct kz_cli_endpoint {
	char *url;     /* e.g. "https://127.0.0.11:8443", no trailing slash */
	char *node_id; /* NULL when unknown */
	char *region;  /* NULL when unknown */
} kz_cli_endpoint;

/* Parses the text of an endpoints file (NUL-terminated). On success *out is a
 * malloc'd array of *n >= 1 endpoints: the caller frees it with
 * kz_cli_endpoints_free(*out, *n). On error returns KZ_CLI_EINVAL (with the
 * line number in errmsg) or KZ_CLI_ENOMEM, and *out is NULL. */
int kz_cli_endpoints_parse_text(const char *text, kz_cli_endpoint **out,
				size_t *n, char *errmsg, size_t errlen);

/* Parses a spec (file path or URL list, see above). Same ownership as
 * kz_cli_endpoints_parse_text; KZ_CLI_EIO when the file cannot be read. */
int kz_cli_endpoints_parse(const char *spec, kz_cli_endpoint **out, size_t *n,
			   char *errmsg, size_t errlen);

/* Frees an array returned by the parse functions (NULL is fine). */
void kz_cli_endpoints_free(kz_cli_endpoint *eps, size_t n);

/* ---- client ---------------------------------------------------------------- */
typedef struct kz_cli kz_cli;

/* Options for kz_cli_open. Zero-initialise and set what you need; the strings
 * are copied, the caller keeps ownership of its own. */
typedef struct kz_cli_opts {
	const char *endpoints; /* spec, see above; required */
	const char *cacert;    /* PEM CA bundle that signed the nodes; NULL: system */
	const char *cert;      /* PEM client certificate (mutual TLS); NULL: none */
	const char *key;       /* PEM private key of cert; NULL: in cert */
	const char *purpose;   /* sent as X-Purpose on every call that has none */
	long connect_timeout_ms; /* per connection attempt; 0: 1000 */
	long request_timeout_ms; /* per attempt on one endpoint; 0: 10000 */
	long deadline_ms;        /* whole kz_cli_request incl. retries; 0: 10000 */
	int http2;         /* 1: offer HTTP/2 over TLS (ALPN); 0: HTTP/1.1 */
	int shuffle;       /* 1: start at a random endpoint (spreads load) */
	int retry_unsafe;  /* 1: also resend POST/PATCH after an unknown outcome */
	int verbose;       /* 1: one line per attempt on stderr (no personal data) */
} kz_cli_opts;

/* Creates a client. Reads the endpoints, checks that the given certificate
 * files are readable, creates the curl handles; makes no connection yet.
 * On success *out is owned by the caller and freed with kz_cli_close().
 * On error returns a KZ_CLI_E* code, *out is NULL and errmsg says why. */
int kz_cli_open(const kz_cli_opts *opts, kz_cli **out, char *errmsg,
		size_t errlen);

/* Closes every connection and frees the client (NULL is fine). */
void kz_cli_close(kz_cli *cli);

/* The endpoints in use (owned by cli; valid until kz_cli_close). */
const kz_cli_endpoint *kz_cli_endpoints(const kz_cli *cli, size_t *n);

/* Index of the endpoint the next call is sent to first (the one that answered
 * last). */
size_t kz_cli_current_endpoint(const kz_cli *cli);

/* Message of the last failed kz_cli_request (owned by cli; "" if none). */
const char *kz_cli_errmsg(const kz_cli *cli);

/* What one call returned. Filled by kz_cli_request; release with
 * kz_cli_response_free. Header values that were absent are "" or -1. */
typedef struct kz_cli_response {
	long status;        /* HTTP status, e.g. 201 */
	char *body;         /* malloc'd, NUL-terminated (may hold NULs before);
			       owned by the response */
	size_t body_len;    /* bytes in body, without the terminating NUL */
	char node[64];      /* X-Kizuna-Node */
	char region[64];    /* X-Kizuna-Region */
	char request_id[40]; /* X-Request-Id (the access record names it) */
	long long index;    /* X-Kizuna-Index (applied index), -1 if absent */
	long long stale_ms; /* X-Kizuna-Stale-Ms, -1 if absent (a fresh read) */
	long retry_after_s; /* Retry-After in seconds, -1 if absent */
	size_t endpoint;    /* index of the endpoint that answered */
	int attempts;       /* connection attempts this call took, >= 1 */
} kz_cli_response;

/* Frees out->body and resets the struct (NULL is fine). */
void kz_cli_response_free(kz_cli_response *resp);

/* Sends one call and waits for its answer.
 *   method  "GET", "POST", "PUT", "PATCH", "DELETE"...
 *   path    starting with '/', query string included and already
 *           percent-encoded (see kz_cli_urlencode)
 *   headers NULL or a NULL-terminated array of "Name: value" strings
 *           (X-Purpose, If-Match, Idempotency-Key...); borrowed for the call
 *   body    NULL or bodylen bytes, sent as application/json unless headers
 *           name a Content-Type; borrowed
 * Returns KZ_CLI_OK whenever a node answered, whatever the status (the caller
 * looks at out->status): after a deadline spent on 503s, that is the last
 * 503 with its error body. Returns KZ_CLI_EUNREACHABLE when no node answered
 * within the deadline, and KZ_CLI_EINDOUBT when a call that is not safe to
 * repeat (POST or PATCH without Idempotency-Key or If-Match, unless
 * opts.retry_unsafe) was sent and the connection then failed: it may or may
 * not have been applied. *out is always initialised; on KZ_CLI_OK the caller
 * releases it with kz_cli_response_free (harmless on the other codes). */
int kz_cli_request(kz_cli *cli, const char *method, const char *path,
		   const char *const *headers, const char *body,
		   size_t bodylen, kz_cli_response *out);

/* Where kz_cli_get_stream hands the body of a 200 as it arrives; a non-zero
 * return stops the transfer. */
typedef int (*kz_cli_sink)(void *ud, const char *data, size_t n);
/* GET path from endpoint number `endpoint` only (no failover: for what lives
 * on one node, such as a backup's files), in one attempt of at most
 * timeout_ms. The body of a 200 goes to sink instead of out->body; any
 * other status keeps its body in out->body as kz_cli_request does. Returns
 * KZ_CLI_OK when the node answered (look at out->status), KZ_CLI_EIO when
 * sink refused data, KZ_CLI_EUNREACHABLE when the node did not answer. */
int kz_cli_get_stream(kz_cli *cli, size_t endpoint, const char *path,
		      const char *const *headers, long timeout_ms,
		      kz_cli_sink sink, void *ud, kz_cli_response *out);
/* ---- helpers ------------------------------------------------------------------ */

/* Percent-encodes s for a path segment or a query value (RFC 3986 unreserved
 * characters stay; UTF-8 bytes are encoded). Returns a malloc'd string the
 * caller frees with free(), or NULL when out of memory. */
char *kz_cli_urlencode(const char *s);

/* Describes a non-2xx response for a person: "404 not_found: no such victim
 * (request 7f3a…)" from the server's {"error":{code,message,request_id}}, or
 * the status and the start of the body when it is not that shape. Writes at
 * most buflen bytes into buf (always NUL-terminated) and returns buf. */
char *kz_cli_error_describe(const kz_cli_response *resp, char *buf,
			    size_t buflen);

#endif /* KZ_CLI_KIZUNA_H */
