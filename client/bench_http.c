/*
 * kizuna-bench's transport: HTTP/1.1 over TCP or TLS 1.3 on libuv (see
 * bench_http.h for what it owns and how it fails).
 *
 * Happy path of a request: kz_bh_send writes the request into the
 * connection's buffer; on a connection kept from the last request it goes
 * out at once (uv_try_write; what the socket does not take is queued with
 * uv_write), else a link is opened: resolve (getaddrinfo, once per
 * connection), uv_tcp_connect, then for https the handshake over the
 * memory BIOs, then the request. Every read goes through the TLS session
 * (if any) into the response parser; when the parser says the response is
 * complete the timer stops and on_done runs. The link stays open and
 * reading while idle, so a close by the server is noticed (and the link
 * dropped) before the next request.
 *
 * A link (the TCP handle, its connect request and TLS session) is
 * allocated apart from its connection: closing a libuv handle is
 * asynchronous, so a connection can give a link up (timeout, failure,
 * Connection: close) and open the next one at once; the old link frees
 * itself in its close callback and ignores whatever libuv still reports
 * for it (its conn pointer is NULL from the moment it is given up).
 */
#include "bench_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define KZ_BH__MAX_ADDRS 4
#define KZ_BH__READ_BUF 65536
#define KZ_BH__KEEPALIVE_S 60 /* TCP keep-alive probes after this idle time */

/* ---- errors ------------------------------------------------------------------------ */

const char *kz_bh_strerror(int e)
{
	static const char *const names[KZ_BH_ERR_COUNT_] = {
	    [KZ_BH_OK] = "ok",
	    [KZ_BH_E_URL] = "bad URL",
	    [KZ_BH_E_NOMEM] = "out of memory",
	    [KZ_BH_E_CACERT] = "CA file unusable",
	    [KZ_BH_E_CERT] = "client certificate unusable",
	    [KZ_BH_E_RESOLVE] = "could not resolve host",
	    [KZ_BH_E_CONNECT] = "could not connect",
	    [KZ_BH_E_TLS] = "TLS handshake failed",
	    [KZ_BH_E_VERIFY] = "server certificate not verified",
	    [KZ_BH_E_SEND] = "send failed",
	    [KZ_BH_E_RECV] = "receive failed",
	    [KZ_BH_E_CLOSED] = "connection closed before the response ended",
	    [KZ_BH_E_PROTOCOL] = "bad HTTP response",
	    [KZ_BH_E_TIMEOUT] = "timed out",
	};
	return e >= 0 && e < KZ_BH_ERR_COUNT_ ? names[e] : "unknown";
}

int kz_bh_err_local(int e)
{
	return e == KZ_BH_E_URL || e == KZ_BH_E_NOMEM || e == KZ_BH_E_CACERT ||
	       e == KZ_BH_E_CERT;
}

/* ---- response parser ------------------------------------------------------------------ */

enum {
	KZ_BH__P_STATUS = 0, /* before or in the status line */
	KZ_BH__P_HEADER,
	KZ_BH__P_BODY_LEN,   /* length bytes of body left */
	KZ_BH__P_BODY_EOF,   /* body up to the close */
	KZ_BH__P_CHUNK_SIZE,
	KZ_BH__P_CHUNK_DATA, /* length bytes of the chunk left */
	KZ_BH__P_CHUNK_END,  /* the CRLF after a chunk's data */
	KZ_BH__P_TRAILER,
	KZ_BH__P_DONE,
	KZ_BH__P_ERROR
};

static void kz_bh__parser_reset(kz_bh_parser *p)
{
	p->state = KZ_BH__P_STATUS;
	p->status = 0;
	p->minor = 1;
	p->chunked = p->te = p->has_length = p->close = p->keep_alive = 0;
	p->length = 0;
	p->line_len = 0;
}

void kz_bh_parser_init(kz_bh_parser *p, kz_bh_body_cb on_body, void *ud)
{
	kz_bh__parser_reset(p);
	p->body_bytes = 0;
	p->on_body = on_body;
	p->ud = ud;
}

int kz_bh_parser_done(const kz_bh_parser *p)
{
	return p->state == KZ_BH__P_DONE;
}

int kz_bh_parser_eof(kz_bh_parser *p)
{
	if (p->state == KZ_BH__P_BODY_EOF)
		p->state = KZ_BH__P_DONE;
	return p->state == KZ_BH__P_DONE;
}

static int kz_bh__is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* s[0..n-1] without the optional white space around it. */
static void kz_bh__trim(const char **s, size_t *n)
{
	while (*n > 0 && kz_bh__is_ows(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && kz_bh__is_ows((*s)[*n - 1]))
		(*n)--;
}

/* Whether the comma-separated list v[0..n-1] has token tok (any case);
 * last: only its last element counts. */
static int kz_bh__has_token(const char *v, size_t n, const char *tok, int last)
{
	size_t tl = strlen(tok), i = 0;
	int found = 0;
	while (i <= n) {
		size_t j = i;
		const char *e;
		size_t el;
		while (j < n && v[j] != ',')
			j++;
		e = v + i;
		el = j - i;
		kz_bh__trim(&e, &el);
		if (el > 0 || !last) {
			int is = el == tl && strncasecmp(e, tok, tl) == 0;
			if (last)
				found = is;
			else if (is)
				return 1;
		}
		i = j + 1;
	}
	return found;
}

static int kz_bh__status_line(kz_bh_parser *p, const char *l, size_t n)
{
	int i;
	if (n == 0)
		return 0; /* a stray empty line before the response: skipped */
	if (n < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[7] < '0' ||
	    l[7] > '9' || l[8] != ' ')
		return -1;
	p->minor = l[7] - '0';
	p->status = 0;
	for (i = 9; i < 12; i++) {
		if (l[i] < '0' || l[i] > '9')
			return -1;
		p->status = p->status * 10 + (l[i] - '0');
	}
	if (p->status < 100 || (n > 12 && l[12] != ' '))
		return -1;
	p->state = KZ_BH__P_HEADER;
	return 0;
}

/* The empty line after the headers: where the body is, if any. */
static int kz_bh__headers_end(kz_bh_parser *p)
{
	if (p->status < 200) {
		if (p->status == 101)
			return -1; /* never asked for an upgrade */
		kz_bh__parser_reset(p); /* interim: the real one follows */
		return 0;
	}
	if (p->minor == 0 && !p->keep_alive)
		p->close = 1;
	if (p->status == 204 || p->status == 304) {
		p->state = KZ_BH__P_DONE;
	} else if (p->te) {
		/* Transfer-Encoding wins over Content-Length; a coding that
		 * does not end in chunked runs to the close. */
		p->state = p->chunked ? KZ_BH__P_CHUNK_SIZE : KZ_BH__P_BODY_EOF;
		if (!p->chunked)
			p->close = 1;
	} else if (p->has_length) {
		p->state = p->length > 0 ? KZ_BH__P_BODY_LEN : KZ_BH__P_DONE;
	} else {
		p->state = KZ_BH__P_BODY_EOF;
		p->close = 1;
	}
	return 0;
}

static int kz_bh__header(kz_bh_parser *p, const char *l, size_t n)
{
	const char *colon, *v;
	size_t nl, vl, i;

	if (n == 0)
		return kz_bh__headers_end(p);
	if (kz_bh__is_ows(l[0]))
		return 0; /* obsolete line folding: nothing we read */
	colon = memchr(l, ':', n);
	if (colon == NULL || colon == l)
		return -1;
	nl = (size_t)(colon - l);
	v = colon + 1;
	vl = n - nl - 1;
	kz_bh__trim(&v, &vl);
	if (nl == 14 && strncasecmp(l, "content-length", nl) == 0) {
		uint64_t len = 0;
		if (vl == 0 || vl > 18)
			return -1;
		for (i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return -1;
			len = len * 10 + (uint64_t)(v[i] - '0');
		}
		if (p->has_length && p->length != len)
			return -1;
		p->has_length = 1;
		p->length = len;
	} else if (nl == 17 && strncasecmp(l, "transfer-encoding", nl) == 0) {
		p->te = 1;
		p->chunked = kz_bh__has_token(v, vl, "chunked", 1);
	} else if (nl == 10 && strncasecmp(l, "connection", nl) == 0) {
		if (kz_bh__has_token(v, vl, "close", 0))
			p->close = 1;
		if (kz_bh__has_token(v, vl, "keep-alive", 0))
			p->keep_alive = 1;
	}
	return 0;
}

static int kz_bh__chunk_size(kz_bh_parser *p, const char *l, size_t n)
{
	uint64_t size = 0;
	size_t i;
	for (i = 0; i < n; i++) {
		char c = l[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (d < 0)
			break;
		if (size >> 56)
			return -1; /* no body is that long */
		size = size * 16 + (uint64_t)d;
	}
	if (i == 0)
		return -1;
	while (i < n && kz_bh__is_ows(l[i]))
		i++;
	if (i < n && l[i] != ';')
		return -1; /* only extensions may follow */
	p->length = size;
	p->state = size > 0 ? KZ_BH__P_CHUNK_DATA : KZ_BH__P_TRAILER;
	return 0;
}

/* One line (without its CR LF) in the state the parser is in. */
static int kz_bh__line(kz_bh_parser *p, const char *l, size_t n)
{
	switch (p->state) {
	case KZ_BH__P_STATUS:
		return kz_bh__status_line(p, l, n);
	case KZ_BH__P_HEADER:
		return kz_bh__header(p, l, n);
	case KZ_BH__P_CHUNK_SIZE:
		return kz_bh__chunk_size(p, l, n);
	case KZ_BH__P_CHUNK_END:
		if (n != 0)
			return -1;
		p->state = KZ_BH__P_CHUNK_SIZE;
		return 0;
	case KZ_BH__P_TRAILER:
		if (n == 0)
			p->state = KZ_BH__P_DONE;
		return 0; /* trailer fields: not read */
	default:
		return -1;
	}
}

static void kz_bh__body(kz_bh_parser *p, const char *d, size_t n)
{
	p->body_bytes += n;
	if (p->on_body != NULL && n > 0)
		p->on_body(p->ud, d, n);
}

long kz_bh_parser_feed(kz_bh_parser *p, const char *data, size_t len)
{
	size_t i = 0;

	while (i < len && p->state != KZ_BH__P_DONE) {
		size_t left = len - i, take;
		const char *nl;

		switch (p->state) {
		case KZ_BH__P_ERROR:
			return -1;
		case KZ_BH__P_BODY_EOF:
			kz_bh__body(p, data + i, left);
			i = len;
			continue;
		case KZ_BH__P_BODY_LEN:
		case KZ_BH__P_CHUNK_DATA:
			take = left < p->length ? left : (size_t)p->length;
			kz_bh__body(p, data + i, take);
			i += take;
			p->length -= take;
			if (p->length == 0)
				p->state = p->state == KZ_BH__P_BODY_LEN
					       ? KZ_BH__P_DONE
					       : KZ_BH__P_CHUNK_END;
			continue;
		default:
			break;
		}
		/* A line: gathered in p->line until its LF, which may come in
		 * a later piece. */
		nl = memchr(data + i, '\n', left);
		take = nl != NULL ? (size_t)(nl - (data + i)) : left;
		if (take > sizeof(p->line) - p->line_len) {
			p->state = KZ_BH__P_ERROR;
			return -1;
		}
		memcpy(p->line + p->line_len, data + i, take);
		p->line_len += take;
		i += take;
		if (nl == NULL)
			break;
		i++; /* the LF */
		take = p->line_len;
		p->line_len = 0;
		if (take > 0 && p->line[take - 1] == '\r')
			take--;
		if (kz_bh__line(p, p->line, take) != 0) {
			p->state = KZ_BH__P_ERROR;
			return -1;
		}
	}
	return p->state == KZ_BH__P_ERROR ? -1 : (long)i;
}

/* ---- TLS identities ---------------------------------------------------------------------- */

struct kz_bh_tls {
	char *cacert, *cert, *key;
	SSL_CTX *ctx; /* made at the first connection that needs it */
};

static char *kz_bh__dup(const char *s, int *bad)
{
	char *d;
	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*bad = 1;
	return d;
}

kz_bh_tls *kz_bh_tls_new(const char *cacert, const char *cert,
			 const char *key)
{
	kz_bh_tls *t = calloc(1, sizeof(*t));
	int bad = 0;
	if (t == NULL)
		return NULL;
	t->cacert = kz_bh__dup(cacert, &bad);
	t->cert = kz_bh__dup(cert, &bad);
	t->key = kz_bh__dup(key, &bad);
	if (bad) {
		kz_bh_tls_free(t);
		return NULL;
	}
	return t;
}

void kz_bh_tls_free(kz_bh_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t->cacert);
	free(t->cert);
	free(t->key);
	free(t);
}

/* OpenSSL's first queued error as text, the queue cleared. */
static const char *kz_bh__ssl_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		snprintf(buf, len, "no detail");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* t's SSL_CTX, made on first use: TLS 1.3 only, the server verified
 * against the CA file, the client certificate and key loaded (as libcurl
 * with CAINFO, SSLCERT and SSLKEY of type PEM). NULL with *err and msg set
 * when a file cannot be used. */
static SSL_CTX *kz_bh__tls_ctx(kz_bh_tls *t, kz_bh_err *err, char *msg,
			       size_t msglen)
{
	SSL_CTX *ctx;
	char e[200];

	if (t->ctx != NULL)
		return t->ctx;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		*err = KZ_BH_E_NOMEM;
		snprintf(msg, msglen, "SSL_CTX_new: %s",
			 kz_bh__ssl_errstr(e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (t->cacert != NULL
		? SSL_CTX_load_verify_locations(ctx, t->cacert, NULL) != 1
		: SSL_CTX_set_default_verify_paths(ctx) != 1) {
		*err = KZ_BH_E_CACERT;
		snprintf(msg, msglen, "CA file %s: %s",
			 t->cacert != NULL ? t->cacert : "(default)",
			 kz_bh__ssl_errstr(e, sizeof(e)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* libcurl's default: a CA file may hold an intermediate to trust. */
	X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx),
			     X509_V_FLAG_PARTIAL_CHAIN);
	if (t->cert != NULL &&
	    (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, t->key != NULL ? t->key : t->cert,
					 SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(ctx) != 1)) {
		*err = KZ_BH_E_CERT;
		snprintf(msg, msglen, "client certificate %s (key %s): %s",
			 t->cert, t->key != NULL ? t->key : t->cert,
			 kz_bh__ssl_errstr(e, sizeof(e)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	t->ctx = ctx;
	return ctx;
}

/* ---- connections ---------------------------------------------------------------------------- */

typedef struct kz_bh_link {
	uv_tcp_t tcp;
	uv_connect_t creq;
	struct kz_bh_conn *c; /* NULL once given up */
	SSL *ssl;             /* https; owns the two BIOs */
	BIO *rbio, *wbio;
	int ready;            /* connected (and TLS handshake done) */
} kz_bh_link;

/* A write the socket did not take at once: its own copy of the bytes. */
typedef struct kz_bh_wreq {
	uv_write_t req;
	kz_bh_link *l;
	char data[];
} kz_bh_wreq;

struct kz_bh_conn {
	uv_loop_t *loop;
	uv_timer_t timer;      /* the request's deadline, or a failure to
				  report from the loop */
	kz_bh_link *link;      /* NULL: none open */
	kz_bh_tls *tls;        /* NULL: plain HTTP */
	char *origin;          /* "scheme://authority" */
	size_t origin_len;
	char *authority;       /* Host header */
	char *host;            /* without brackets */
	char port[8];
	int host_is_ip;
	int resolved;
	struct sockaddr_storage addrs[KZ_BH__MAX_ADDRS];
	int n_addrs, addr;     /* addr: the one being tried */
	long connect_ms, total_ms;
	kz_bh_body_cb on_body;
	kz_bh_done_cb on_done;
	void *ud;
	/* the request in flight */
	int busy;
	int reused;            /* it went out on a link of an earlier one */
	int retried;           /* it was sent again on a new link */
	int got_bytes;         /* some of the response came */
	int connects;
	int junk;              /* bytes past the response: close the link */
	int in_send;           /* inside kz_bh_send: on_done must wait */
	uint64_t start_ms;     /* uv_now at kz_bh_send */
	kz_bh_err pending;     /* a failure to report from the timer */
	char *req;             /* the request, head and body */
	size_t req_len, req_cap;
	kz_bh_parser parser;
	char err[256];
};

static char kz_bh__rbuf[KZ_BH__READ_BUF]; /* the loop's thread only */

static void kz_bh__msg(kz_bh_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void kz_bh__msg(kz_bh_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static void kz_bh__link_closed(uv_handle_t *h)
{
	kz_bh_link *l = h->data;
	SSL_free(l->ssl);
	free(l);
}

/* Gives up c's link: it closes and frees itself. */
static void kz_bh__drop_link(kz_bh_conn *c)
{
	kz_bh_link *l = c->link;
	if (l == NULL)
		return;
	c->link = NULL;
	l->c = NULL;
	uv_close((uv_handle_t *)&l->tcp, kz_bh__link_closed);
}

static void kz_bh__fail(kz_bh_conn *c, kz_bh_err err);

/* The request ended: on_done runs (from the loop: a failure met inside
 * kz_bh_send is reported by the timer). */
static void kz_bh__done(kz_bh_conn *c, kz_bh_err err)
{
	kz_bh_result r;
	if (c->in_send) {
		kz_bh__fail(c, err);
		return;
	}
	uv_timer_stop(&c->timer);
	c->busy = 0;
	c->pending = KZ_BH_OK;
	if (err != KZ_BH_OK || c->parser.close || c->junk)
		kz_bh__drop_link(c);
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.status = err == KZ_BH_OK ? c->parser.status : 0;
	r.connects = c->connects;
	r.body_bytes = c->parser.body_bytes;
	r.errmsg = err == KZ_BH_OK ? "" : c->err;
	c->on_done(c->ud, &r);
}

static void kz_bh__timer_cb(uv_timer_t *t);

/* The request failed (c->err says how): reported from the loop, so that
 * on_done never runs inside kz_bh_send. */
static void kz_bh__fail(kz_bh_conn *c, kz_bh_err err)
{
	kz_bh__drop_link(c);
	c->pending = err;
	uv_timer_start(&c->timer, kz_bh__timer_cb, 0, 0);
}

/* Arms the deadline of the request's current step: the connect's while
 * a link is being opened, the whole request's once it is up. */
static void kz_bh__arm(kz_bh_conn *c, int connecting)
{
	uint64_t limit = (uint64_t)c->total_ms, now = uv_now(c->loop),
		 spent = now > c->start_ms ? now - c->start_ms : 0;
	if (connecting && (uint64_t)c->connect_ms < limit)
		limit = (uint64_t)c->connect_ms;
	uv_timer_start(&c->timer, kz_bh__timer_cb, limit > spent ? limit - spent
								: 0,
		       0);
}

static void kz_bh__timer_cb(uv_timer_t *t)
{
	kz_bh_conn *c = t->data;
	if (!c->busy)
		return;
	if (c->pending != KZ_BH_OK) {
		kz_bh__done(c, c->pending);
		return;
	}
	kz_bh__msg(c, "%s timed out after %llu ms",
		   c->link != NULL && c->link->ready ? "request" : "connect",
		   (unsigned long long)(uv_now(c->loop) - c->start_ms));
	kz_bh__done(c, KZ_BH_E_TIMEOUT);
}

static int kz_bh__open_link(kz_bh_conn *c);

/* The link failed after the request went out: on a reused link that the
 * server closed (or reset) before answering a byte, the request goes out
 * again once on a new link, as libcurl does; otherwise it fails. */
static void kz_bh__link_lost(kz_bh_conn *c, kz_bh_err err)
{
	if (c->reused && !c->retried && !c->got_bytes) {
		c->retried = 1;
		c->reused = 0;
		kz_bh__drop_link(c);
		kz_bh__open_link(c); /* a failure is reported from the loop */
		return;
	}
	kz_bh__drop_link(c);
	kz_bh__done(c, err);
}

static void kz_bh__write_cb(uv_write_t *req, int status)
{
	kz_bh_wreq *w = (kz_bh_wreq *)req;
	kz_bh_link *l = w->l;
	free(w);
	if (status < 0 && l->c != NULL && l->c->busy &&
	    status != UV_ECANCELED) {
		kz_bh__msg(l->c, "send: %s", uv_strerror(status));
		kz_bh__link_lost(l->c, KZ_BH_E_SEND);
	}
}

/* Hands data to the socket: what it does not take at once is queued. */
static int kz_bh__write(kz_bh_link *l, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	kz_bh_wreq *w;
	int n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
	if (n == (int)len)
		return 0;
	if (n < 0 && n != UV_EAGAIN)
		return n;
	if (n < 0)
		n = 0;
	w = malloc(sizeof(*w) + len - (size_t)n);
	if (w == NULL)
		return UV_ENOMEM;
	w->l = l;
	memcpy(w->data, data + n, len - (size_t)n);
	b = uv_buf_init(w->data, (unsigned)(len - (size_t)n));
	n = uv_write(&w->req, (uv_stream_t *)&l->tcp, &b, 1, kz_bh__write_cb);
	if (n < 0)
		free(w);
	return n;
}

/* Sends what the TLS session has written into its BIO. */
static int kz_bh__flush_tls(kz_bh_link *l)
{
	char *p;
	long n = BIO_get_mem_data(l->wbio, &p);
	int rc;
	if (n <= 0)
		return 0;
	rc = kz_bh__write(l, p, (size_t)n);
	(void)BIO_reset(l->wbio);
	return rc;
}

/* The request onto c's ready link. */
static void kz_bh__send_request(kz_bh_conn *c)
{
	kz_bh_link *l = c->link;
	int rc;
	kz_bh__arm(c, 0);
	if (l->ssl != NULL) {
		size_t w = 0;
		ERR_clear_error();
		if (SSL_write_ex(l->ssl, c->req, c->req_len, &w) != 1 ||
		    w != c->req_len) {
			char e[200];
			kz_bh__msg(c, "TLS write: %s",
				   kz_bh__ssl_errstr(e, sizeof(e)));
			kz_bh__link_lost(c, KZ_BH_E_SEND);
			return;
		}
		rc = kz_bh__flush_tls(l);
	} else {
		rc = kz_bh__write(l, c->req, c->req_len);
	}
	if (rc < 0) {
		kz_bh__msg(c, "send: %s", uv_strerror(rc));
		kz_bh__link_lost(c, KZ_BH_E_SEND);
	}
}

/* Response bytes (plaintext) for c. Returns 0 while c's request goes on,
 * 1 once it ended (on_done ran) or, with none in flight, the link was
 * dropped (the server sent what nobody asked for). */
static int kz_bh__response(kz_bh_conn *c, const char *d, size_t n)
{
	long used;
	if (!c->busy) {
		/* Nothing was asked: not ours to read. */
		kz_bh__drop_link(c);
		return 1;
	}
	c->got_bytes = 1;
	used = kz_bh_parser_feed(&c->parser, d, n);
	if (used < 0) {
		kz_bh__msg(c, "not an HTTP/1.x response");
		kz_bh__done(c, KZ_BH_E_PROTOCOL);
		return 1;
	}
	if (!kz_bh_parser_done(&c->parser))
		return 0;
	if ((size_t)used < n)
		c->junk = 1;
	kz_bh__done(c, KZ_BH_OK);
	return 1;
}

/* The link's peer closed (EOF or TLS close_notify). */
static void kz_bh__eof(kz_bh_conn *c)
{
	if (!c->busy) {
		kz_bh__drop_link(c); /* an idle keep-alive closed */
		return;
	}
	if (c->got_bytes && kz_bh_parser_eof(&c->parser)) {
		kz_bh__drop_link(c);
		kz_bh__done(c, KZ_BH_OK);
		return;
	}
	kz_bh__msg(c, "%s", c->got_bytes ? "connection closed in the middle "
					   "of the response"
					 : "connection closed with no response");
	kz_bh__link_lost(c, KZ_BH_E_CLOSED);
}

/* The handshake went on: verified and done, still going, or failed. */
static void kz_bh__handshake(kz_bh_conn *c)
{
	kz_bh_link *l = c->link;
	int r, e;
	char buf[200];

	ERR_clear_error();
	r = SSL_do_handshake(l->ssl);
	if (kz_bh__flush_tls(l) < 0) {
		kz_bh__msg(c, "TLS handshake: send failed");
		kz_bh__drop_link(c);
		kz_bh__done(c, KZ_BH_E_SEND);
		return;
	}
	if (r == 1) {
		l->ready = 1;
		kz_bh__send_request(c);
		return;
	}
	e = SSL_get_error(l->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return;
	if (SSL_get_verify_result(l->ssl) != X509_V_OK) {
		kz_bh__msg(c, "server certificate: %s",
			   X509_verify_cert_error_string(
			       SSL_get_verify_result(l->ssl)));
		ERR_clear_error();
		kz_bh__drop_link(c);
		kz_bh__done(c, KZ_BH_E_VERIFY);
		return;
	}
	kz_bh__msg(c, "TLS handshake: %s", kz_bh__ssl_errstr(buf, sizeof(buf)));
	kz_bh__drop_link(c);
	kz_bh__done(c, KZ_BH_E_TLS);
}

/* TLS bytes from the socket: through the session into the response. */
static void kz_bh__tls_in(kz_bh_link *l, const char *d, size_t n)
{
	kz_bh_conn *c = l->c;
	static char plain[16384 + 256];

	if (BIO_write(l->rbio, d, (int)n) != (int)n) {
		kz_bh__msg(c, "TLS: out of memory");
		kz_bh__drop_link(c);
		if (c->busy)
			kz_bh__done(c, KZ_BH_E_NOMEM);
		return;
	}
	if (!l->ready) {
		kz_bh__handshake(c);
		if (l->c == NULL || !l->ready)
			return;
	}
	for (;;) {
		size_t got = 0;
		int r, e;
		ERR_clear_error();
		r = SSL_read_ex(l->ssl, plain, sizeof(plain), &got);
		if (r == 1) {
			if (kz_bh__response(c, plain, got))
				return;
			continue;
		}
		e = SSL_get_error(l->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			/* Post-handshake messages may want an answer. */
			if (kz_bh__flush_tls(l) < 0 && c->busy) {
				kz_bh__msg(c, "send failed");
				kz_bh__link_lost(c, KZ_BH_E_SEND);
			}
			return;
		}
		if (e == SSL_ERROR_ZERO_RETURN) {
			kz_bh__eof(c);
			return;
		}
		if (!c->busy) {
			kz_bh__drop_link(c);
			return;
		}
		{
			char buf[200];
			kz_bh__msg(c, "TLS read: %s",
				   kz_bh__ssl_errstr(buf, sizeof(buf)));
		}
		kz_bh__link_lost(c, KZ_BH_E_RECV);
		return;
	}
}

static void kz_bh__alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	(void)h;
	(void)suggested;
	*b = uv_buf_init(kz_bh__rbuf, sizeof(kz_bh__rbuf));
}

static void kz_bh__read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	kz_bh_link *l = s->data;
	kz_bh_conn *c = l->c;

	if (c == NULL || n == 0)
		return;
	if (n == UV_EOF) {
		kz_bh__eof(c);
	} else if (n < 0) {
		if (!c->busy) {
			kz_bh__drop_link(c);
			return;
		}
		kz_bh__msg(c, "receive: %s", uv_strerror((int)n));
		kz_bh__link_lost(c, KZ_BH_E_RECV);
	} else if (l->ssl != NULL) {
		kz_bh__tls_in(l, b->base, (size_t)n);
	} else {
		kz_bh__response(c, b->base, (size_t)n);
	}
}

/* A new TLS session on c's link, the handshake started. */
static int kz_bh__tls_start(kz_bh_conn *c)
{
	kz_bh_link *l = c->link;
	kz_bh_err err = KZ_BH_OK;
	SSL_CTX *ctx = kz_bh__tls_ctx(c->tls, &err, c->err, sizeof(c->err));
	int ok;

	if (ctx == NULL)
		return err;
	l->ssl = SSL_new(ctx);
	l->rbio = BIO_new(BIO_s_mem());
	l->wbio = BIO_new(BIO_s_mem());
	if (l->ssl == NULL || l->rbio == NULL || l->wbio == NULL) {
		BIO_free(l->rbio);
		BIO_free(l->wbio);
		l->rbio = l->wbio = NULL;
		kz_bh__msg(c, "TLS: out of memory");
		return KZ_BH_E_NOMEM;
	}
	SSL_set_bio(l->ssl, l->rbio, l->wbio);
	SSL_set_connect_state(l->ssl);
	SSL_set_hostflags(l->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* The name the certificate must carry: an IP SAN for an address
	 * (and no SNI, which names hosts only), else a DNS name. */
	ok = c->host_is_ip
		 ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl),
						 c->host) == 1
		 : SSL_set_tlsext_host_name(l->ssl, c->host) == 1 &&
		       SSL_set1_host(l->ssl, c->host) == 1;
	if (!ok) {
		kz_bh__msg(c, "TLS: cannot check the host %s", c->host);
		return KZ_BH_E_URL;
	}
	kz_bh__handshake(c);
	return KZ_BH_OK;
}

static void kz_bh__connect_cb(uv_connect_t *req, int status)
{
	kz_bh_link *l = req->data;
	kz_bh_conn *c = l->c;
	int rc;

	if (c == NULL)
		return; /* given up (status is UV_ECANCELED) */
	if (status < 0) {
		kz_bh__msg(c, "connect to %s: %s", c->authority,
			   uv_strerror(status));
		kz_bh__drop_link(c);
		if (c->addr + 1 < c->n_addrs) { /* the host's next address */
			c->addr++;
			kz_bh__open_link(c);
			return;
		}
		kz_bh__done(c, KZ_BH_E_CONNECT);
		return;
	}
	/* Counted as libcurl's CURLINFO_NUM_CONNECTS: connections made,
	 * not attempts refused. */
	c->connects++;
	rc = uv_read_start((uv_stream_t *)&l->tcp, kz_bh__alloc_cb,
			   kz_bh__read_cb);
	if (rc < 0) {
		kz_bh__msg(c, "read: %s", uv_strerror(rc));
		kz_bh__drop_link(c);
		kz_bh__done(c, KZ_BH_E_RECV);
		return;
	}
	if (c->tls == NULL) {
		l->ready = 1;
		kz_bh__send_request(c);
		return;
	}
	rc = kz_bh__tls_start(c);
	if (rc != KZ_BH_OK) {
		kz_bh__drop_link(c);
		kz_bh__done(c, (kz_bh_err)rc);
	}
}

/* The host's addresses, looked up once per connection. */
static int kz_bh__resolve(kz_bh_conn *c)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc;
	if (c->resolved)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(c->host, c->port, &hints, &res);
	if (rc != 0) {
		kz_bh__msg(c, "resolve %s: %s", c->host, gai_strerror(rc));
		return -1;
	}
	c->n_addrs = 0;
	for (ai = res; ai != NULL && c->n_addrs < KZ_BH__MAX_ADDRS;
	     ai = ai->ai_next)
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(c->addrs[0]))
			memcpy(&c->addrs[c->n_addrs++], ai->ai_addr,
			       ai->ai_addrlen);
	freeaddrinfo(res);
	if (c->n_addrs == 0) {
		kz_bh__msg(c, "resolve %s: no address", c->host);
		return -1;
	}
	c->resolved = 1;
	return 0;
}

/* Opens a new link to c->addrs[c->addr] for the request in flight.
 * Returns 0, or -1 with the failure reported from the loop. */
static int kz_bh__open_link(kz_bh_conn *c)
{
	kz_bh_link *l;
	int rc;

	if (kz_bh__resolve(c) != 0) {
		kz_bh__fail(c, KZ_BH_E_RESOLVE);
		return -1;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		kz_bh__msg(c, "out of memory");
		kz_bh__fail(c, KZ_BH_E_NOMEM);
		return -1;
	}
	rc = uv_tcp_init(c->loop, &l->tcp);
	if (rc < 0) {
		free(l);
		kz_bh__msg(c, "socket: %s", uv_strerror(rc));
		kz_bh__fail(c, KZ_BH_E_CONNECT);
		return -1;
	}
	l->c = c;
	l->tcp.data = l;
	l->creq.data = l;
	c->link = l;
	uv_tcp_nodelay(&l->tcp, 1);
	uv_tcp_keepalive(&l->tcp, 1, KZ_BH__KEEPALIVE_S);
	rc = uv_tcp_connect(&l->creq, &l->tcp,
			    (const struct sockaddr *)&c->addrs[c->addr],
			    kz_bh__connect_cb);
	if (rc < 0) {
		kz_bh__msg(c, "connect to %s: %s", c->authority,
			   uv_strerror(rc));
		kz_bh__fail(c, KZ_BH_E_CONNECT);
		return -1;
	}
	kz_bh__arm(c, 1);
	return 0;
}

/* Splits url into c's origin, authority, host and port; *https: its
 * scheme. Returns KZ_BH_OK, KZ_BH_E_URL or KZ_BH_E_NOMEM. */
static int kz_bh__parse_url(kz_bh_conn *c, const char *url, int *https,
			    char *err, size_t errlen)
{
	const char *auth, *end, *h, *he, *colon = NULL;
	size_t i;

	if (strncasecmp(url, "https://", 8) == 0) {
		*https = 1;
		auth = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		*https = 0;
		auth = url + 7;
	} else {
		snprintf(err, errlen, "not an http:// or https:// URL: %s", url);
		return KZ_BH_E_URL;
	}
	end = auth + strcspn(auth, "/?#");
	if (memchr(auth, '@', (size_t)(end - auth)) != NULL) {
		snprintf(err, errlen, "user info in URL: %s", url);
		return KZ_BH_E_URL;
	}
	if (*auth == '[') {
		h = auth + 1;
		he = memchr(h, ']', (size_t)(end - h));
		if (he == NULL) {
			snprintf(err, errlen, "bad IPv6 address in %s", url);
			return KZ_BH_E_URL;
		}
		if (he + 1 < end && he[1] == ':')
			colon = he + 1;
		else if (he + 1 != end) {
			snprintf(err, errlen, "bad authority in %s", url);
			return KZ_BH_E_URL;
		}
	} else {
		h = auth;
		colon = memchr(auth, ':', (size_t)(end - auth));
		he = colon != NULL ? colon : end;
	}
	if (he == h) {
		snprintf(err, errlen, "no host in URL: %s", url);
		return KZ_BH_E_URL;
	}
	if (colon != NULL) {
		size_t pl = (size_t)(end - colon - 1);
		if (pl == 0 || pl >= sizeof(c->port)) {
			snprintf(err, errlen, "bad port in %s", url);
			return KZ_BH_E_URL;
		}
		for (i = 0; i < pl; i++)
			if (colon[1 + i] < '0' || colon[1 + i] > '9') {
				snprintf(err, errlen, "bad port in %s", url);
				return KZ_BH_E_URL;
			}
		memcpy(c->port, colon + 1, pl);
		c->port[pl] = '\0';
		if (atoi(c->port) < 1 || atoi(c->port) > 65535) {
			snprintf(err, errlen, "bad port in %s", url);
			return KZ_BH_E_URL;
		}
	} else {
		snprintf(c->port, sizeof(c->port), "%s", *https ? "443" : "80");
	}
	c->origin_len = (size_t)(end - url);
	c->origin = strndup(url, c->origin_len);
	c->authority = strndup(auth, (size_t)(end - auth));
	c->host = strndup(h, (size_t)(he - h));
	if (c->origin == NULL || c->authority == NULL || c->host == NULL)
		return KZ_BH_E_NOMEM;
	{
		unsigned char a[16];
		c->host_is_ip = inet_pton(AF_INET, c->host, a) == 1 ||
				inet_pton(AF_INET6, c->host, a) == 1;
	}
	return KZ_BH_OK;
}

static void kz_bh__conn_closed(uv_handle_t *h)
{
	kz_bh_conn *c = h->data;
	free(c->origin);
	free(c->authority);
	free(c->host);
	free(c->req);
	free(c);
}

int kz_bh_conn_new(const kz_bh_conn_opts *o, kz_bh_conn **out, char *err,
		   size_t errlen)
{
	kz_bh_conn *c = calloc(1, sizeof(*c));
	int rc, https = 0;

	*out = NULL;
	if (c == NULL)
		return KZ_BH_E_NOMEM;
	rc = kz_bh__parse_url(c, o->url, &https, err, errlen);
	if (rc == KZ_BH_E_NOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc == KZ_BH_OK && https && o->tls == NULL) {
		snprintf(err, errlen, "https needs a TLS identity: %s", o->url);
		rc = KZ_BH_E_URL;
	}
	if (rc != KZ_BH_OK) {
		free(c->origin);
		free(c->authority);
		free(c->host);
		free(c);
		return rc;
	}
	c->tls = https ? o->tls : NULL;
	c->loop = o->loop;
	c->connect_ms = o->connect_timeout_ms;
	c->total_ms = o->timeout_ms;
	c->on_body = o->on_body;
	c->on_done = o->on_done;
	c->ud = o->ud;
	uv_timer_init(c->loop, &c->timer);
	c->timer.data = c;
	*out = c;
	return KZ_BH_OK;
}

int kz_bh_busy(const kz_bh_conn *c)
{
	return c->busy;
}

/* Room for n bytes more in c->req. */
static int kz_bh__reserve(kz_bh_conn *c, size_t n)
{
	size_t cap;
	char *p;
	if (c->req_len + n <= c->req_cap)
		return 0;
	cap = c->req_cap ? c->req_cap : 4096;
	while (cap < c->req_len + n)
		cap *= 2;
	p = realloc(c->req, cap);
	if (p == NULL)
		return -1;
	c->req = p;
	c->req_cap = cap;
	return 0;
}

int kz_bh_send(kz_bh_conn *c, const char *method, const char *url,
	       const char *headers, const char *body, size_t body_len,
	       int has_body)
{
	const char *target;
	int n;
	size_t head;

	if (c->busy || strncmp(url, c->origin, c->origin_len) != 0)
		return KZ_BH_E_URL;
	target = url + c->origin_len;
	if (*target == '\0')
		target = "/";
	else if (*target != '/')
		return KZ_BH_E_URL;
	has_body = has_body || body != NULL;
	head = strlen(method) + strlen(target) + strlen(c->authority) +
	       (headers != NULL ? strlen(headers) : 0) + 128;
	if (kz_bh__reserve(c, head + (has_body ? body_len : 0)) != 0)
		return KZ_BH_E_NOMEM;
	n = snprintf(c->req, c->req_cap,
		     "%s %s HTTP/1.1\r\nHost: %s\r\n"
		     "User-Agent: kizuna-bench/1\r\n%s",
		     method, target, c->authority,
		     headers != NULL ? headers : "");
	if (has_body)
		n += snprintf(c->req + n, c->req_cap - (size_t)n,
			      "Content-Length: %zu\r\n", body_len);
	n += snprintf(c->req + n, c->req_cap - (size_t)n, "\r\n");
	c->req_len = (size_t)n;
	if (has_body && body_len > 0) {
		memcpy(c->req + c->req_len, body, body_len);
		c->req_len += body_len;
	}
	kz_bh_parser_init(&c->parser, c->on_body, c->ud);
	c->busy = 1;
	c->retried = c->got_bytes = c->connects = c->junk = 0;
	c->pending = KZ_BH_OK;
	c->err[0] = '\0';
	uv_update_time(c->loop);
	c->start_ms = uv_now(c->loop);
	c->in_send = 1;
	if (c->link != NULL && c->link->ready) {
		c->reused = 1;
		kz_bh__send_request(c);
	} else {
		c->reused = 0;
		kz_bh__drop_link(c);
		c->addr = 0;
		kz_bh__open_link(c);
	}
	c->in_send = 0;
	return KZ_BH_OK;
}

void kz_bh_abort(kz_bh_conn *c)
{
	uv_timer_stop(&c->timer);
	c->busy = 0;
	c->pending = KZ_BH_OK;
	kz_bh__drop_link(c);
}

void kz_bh_conn_free(kz_bh_conn *c)
{
	if (c == NULL)
		return;
	kz_bh_abort(c);
	uv_close((uv_handle_t *)&c->timer, kz_bh__conn_closed);
}
