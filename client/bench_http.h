/*
 * bench_http.h — kizuna-bench's transport (bench_http.c): a lean HTTP/1.1
 * client on a libuv loop, over plain TCP (http://) or TLS 1.3 (https://).
 *
 * Owns, per kz_bh_conn, at most one TCP connection to one endpoint, kept
 * alive between requests, with one request in flight at a time; per
 * kz_bh_tls, one OpenSSL SSL_CTX (CA file, client certificate and key)
 * shared by the connections that present that certificate. TLS runs over
 * two memory BIOs: the bytes libuv reads go into the read BIO, what SSL
 * puts in the write BIO is handed to libuv. The server is verified against
 * the CA file (or OpenSSL's default paths when there is none), its
 * certificate must name the URL's host (an IP SAN for an address, a DNS
 * name otherwise, as libcurl checks it); SNI is sent for names only.
 *
 * A request: kz_bh_send with the method, URL (the connection's origin and
 * the request target), prebuilt header lines and a body sent with
 * Content-Length. The response's status line and headers are parsed
 * (Content-Length, Transfer-Encoding: chunked, or a body up to the close;
 * Connection: close and HTTP/1.0 end the connection after it), its body
 * handed to on_body as it arrives, and on_done called once with the status
 * or the failure. Runs in the loop's thread only (one static read buffer).
 *
 * Failure modes, each a kz_bh_err in the result (the connection is closed
 * after any of them; nothing is retried except as libcurl does it: a
 * request sent on a reused connection that the server closed or reset
 * before answering a byte goes out once more on a new connection):
 *   - local (every request would fail the same way: kz_bh_err_local):
 *     a malformed URL, a CA file or client certificate/key OpenSSL cannot
 *     load, out of memory;
 *   - the host does not resolve, the connection is refused or unreachable;
 *   - the TLS handshake fails, or the server's certificate is not verified;
 *   - sending or receiving fails (reset), the server closes before the
 *     response is complete, the response is not HTTP/1.x;
 *   - the request times out: the connect (TCP and TLS handshake) after
 *     connect_timeout_ms, the whole request after timeout_ms, both counted
 *     from kz_bh_send.
 */
#ifndef KZ_CLI_BENCH_HTTP_H
#define KZ_CLI_BENCH_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Why a request failed (0: it did not). The names are kz_bh_strerror's. */
typedef enum kz_bh_err {
	KZ_BH_OK = 0,
	KZ_BH_E_URL,      /* "bad URL" (local) */
	KZ_BH_E_NOMEM,    /* "out of memory" (local) */
	KZ_BH_E_CACERT,   /* "CA file unusable" (local) */
	KZ_BH_E_CERT,     /* "client certificate unusable" (local) */
	KZ_BH_E_RESOLVE,  /* "could not resolve host" */
	KZ_BH_E_CONNECT,  /* "could not connect" */
	KZ_BH_E_TLS,      /* "TLS handshake failed" */
	KZ_BH_E_VERIFY,   /* "server certificate not verified" */
	KZ_BH_E_SEND,     /* "send failed" */
	KZ_BH_E_RECV,     /* "receive failed" */
	KZ_BH_E_CLOSED,   /* "connection closed before the response ended" */
	KZ_BH_E_PROTOCOL, /* "bad HTTP response" */
	KZ_BH_E_TIMEOUT,  /* "timed out" */
	KZ_BH_ERR_COUNT_
} kz_bh_err;

/* A short, stable name of e (never NULL; "unknown" out of range). */
const char *kz_bh_strerror(int e);

/* Whether e is local: every later request would fail the same way. */
int kz_bh_err_local(int e);

/* ---- response parser (pure, tested without a network) ------------------------ */

#define KZ_BH_LINE_MAX 8192 /* longest status, header or chunk-size line */

typedef void (*kz_bh_body_cb)(void *ud, const char *data, size_t len);

/* One HTTP/1.x response being read. Fields are read-only for the caller. */
typedef struct kz_bh_parser {
	int state;
	int status;      /* of the final response, once its line is read */
	int minor;       /* HTTP/1.<minor> */
	int chunked;     /* Transfer-Encoding ends with chunked */
	int te;          /* a Transfer-Encoding header was seen */
	int has_length;  /* a Content-Length header was seen */
	int close;       /* the connection ends after this response */
	int keep_alive;  /* Connection: keep-alive (HTTP/1.0) */
	uint64_t length; /* Content-Length, then what is left of the body or
			    of the current chunk */
	uint64_t body_bytes; /* body bytes handed to on_body */
	kz_bh_body_cb on_body;
	void *ud;
	size_t line_len;
	char line[KZ_BH_LINE_MAX];
} kz_bh_parser;

/* Ready for a response; on_body (may be NULL) gets its body in pieces. */
void kz_bh_parser_init(kz_bh_parser *p, kz_bh_body_cb on_body, void *ud);

/* Feeds the next len bytes of the connection. Returns how many were part
 * of the response (len, or fewer when it ended before: the rest is not
 * this response's), or -1 when the bytes are not an HTTP/1.x response.
 * Interim 1xx responses are skipped. */
long kz_bh_parser_feed(kz_bh_parser *p, const char *data, size_t len);

/* Whether the response is complete. */
int kz_bh_parser_done(const kz_bh_parser *p);

/* The connection was closed: completes a body read up to the close.
 * Returns 1 when the response is complete, 0 when it was cut. */
int kz_bh_parser_eof(kz_bh_parser *p);

/* ---- TLS identities -------------------------------------------------------------- */

typedef struct kz_bh_tls kz_bh_tls;

/* A client identity: CA file (NULL: OpenSSL's default paths), client
 * certificate chain (NULL: none) and its key (NULL: in the certificate
 * file), all PEM. The paths are copied; the files are loaded at the first
 * TLS connection that needs them (so a bad file fails that request with a
 * local error). NULL when out of memory. */
kz_bh_tls *kz_bh_tls_new(const char *cacert, const char *cert,
			 const char *key);

/* Frees t (NULL is fine); no connection may still use it. */
void kz_bh_tls_free(kz_bh_tls *t);

/* ---- connections ---------------------------------------------------------------- */

typedef struct kz_bh_result {
	kz_bh_err err;       /* KZ_BH_OK: status holds the answer */
	int status;          /* HTTP status of the final response */
	int connects;        /* new connections this request made (TCP
				connected; refused attempts are not) */
	uint64_t body_bytes; /* response body bytes received */
	const char *errmsg;  /* what failed, "" when ok; valid during on_done */
} kz_bh_result;

typedef void (*kz_bh_done_cb)(void *ud, const kz_bh_result *r);

typedef struct kz_bh_conn kz_bh_conn;

typedef struct kz_bh_conn_opts {
	uv_loop_t *loop;
	const char *url;        /* the endpoint: http[s]://host[:port][/...] */
	kz_bh_tls *tls;         /* https: the identity (NULL: none, CA from
				   the default paths); borrowed */
	long connect_timeout_ms; /* TCP connect and TLS handshake */
	long timeout_ms;        /* the whole request */
	kz_bh_body_cb on_body;  /* response body pieces (may be NULL) */
	kz_bh_done_cb on_done;  /* once per request sent */
	void *ud;               /* for both callbacks */
} kz_bh_conn_opts;

/* A connection to o->url's origin (none opened yet). Returns KZ_BH_OK with
 * *out set, KZ_BH_E_URL (message in err) or KZ_BH_E_NOMEM. */
int kz_bh_conn_new(const kz_bh_conn_opts *o, kz_bh_conn **out, char *err,
		   size_t errlen);

/* Sends a request on c (none in flight): method, url (c's origin followed
 * by the request target; the origin alone asks for "/"), headers (complete
 * lines, each ending in "\r\n"; Host, User-Agent and Content-Length are
 * added) and body[0..body_len-1], borrowed until on_done (body NULL: none,
 * and no Content-Length unless has_body). Returns KZ_BH_OK (on_done will be
 * called, from the loop, never from here) or a local error with nothing
 * sent: KZ_BH_E_URL (url not on c's origin, or c busy) or KZ_BH_E_NOMEM. */
int kz_bh_send(kz_bh_conn *c, const char *method, const char *url,
	       const char *headers, const char *body, size_t body_len,
	       int has_body);

/* Whether a request is in flight on c. */
int kz_bh_busy(const kz_bh_conn *c);

/* Gives up the request in flight, if any, without calling on_done, and
 * closes c's connection (the next request opens a new one). */
void kz_bh_abort(kz_bh_conn *c);

/* Aborts and frees c (NULL is fine). Its libuv handles are closed: c's
 * memory goes once the loop has run their close callbacks, so run the loop
 * (uv_run) before uv_loop_close. */
void kz_bh_conn_free(kz_bh_conn *c);

#endif /* KZ_CLI_BENCH_HTTP_H */
