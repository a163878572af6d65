/*
 * libkizuna: endpoints, connections and failover (see kizuna.h for the
 * contract).
 *
 * Owns one CURL easy handle per endpoint. curl_easy_reset() before each
 * attempt clears the options but keeps the handle's connection cache, so a
 * node's TLS session stays open between calls (keep-alive) while no option
 * of one call leaks into the next.
 *
 * Happy path: kz_cli_request() -> kz_cli__attempt() on cli->current -> the
 * node answers -> the response is handed to the caller.
 * Failure modes, per attempt:
 *   - local problem (bad URL, unreadable certificate, out of memory): return
 *     at once, every endpoint would fail the same way;
 *   - transport failure before anything was sent (refused, connect timeout,
 *     TLS handshake failure): try the next endpoint;
 *   - transport failure after the request was handed to the socket (reset,
 *     timeout waiting for the answer): the node may have applied it. Safe
 *     calls go on to the next endpoint; unsafe ones stop with
 *     KZ_CLI_EINDOUBT so that a register call is never made twice;
 *   - 503 (no quorum reachable from that node): keep it, try the next one.
 *     A 503 that says the write's outcome is unknown (timeout, no_quorum,
 *     leader_unreachable, shutting_down: it may have been proposed) ends an
 *     unsafe call with KZ_CLI_EINDOUBT like a lost connection.
 *   - a conditional write (If-Match) that may already have been applied by
 *     an earlier attempt and then meets 412 version_mismatch ends with
 *     KZ_CLI_EINDOUBT: the version may have moved because of this very call
 *     (kizuna-chaos found callers taking that 412 for "not applied").
 * After a whole round without an answer: back off and start a new round,
 * until the call's deadline.
 */
#include "kizuna.h"
#include "curl_local.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KZ_CLI__MAX_BODY (64u * 1024u * 1024u) /* larger answers: ETOOBIG */
#define KZ_CLI__MAX_ENDPOINTS_FILE (1u << 20)
#define KZ_CLI__BACKOFF_MIN_MS 100
#define KZ_CLI__BACKOFF_MAX_MS 1000
#define KZ_CLI__EP_ERR 200 /* bytes kept of one endpoint's last failure */
#define KZ_CLI__ETRANSPORT 1000 /* internal: this endpoint did not answer */

struct kz_cli {
	kz_cli_endpoint *eps;
	size_t n;
	CURL **curls; /* one per endpoint, same index */
	char *cacert;
	char *cert;
	char *key;
	char *purpose;
	long connect_ms;
	long request_ms;
	long deadline_ms;
	int http2;
	int retry_unsafe;
	int verbose;
	size_t current;  /* endpoint that answered last */
	uint64_t jitter; /* xorshift64 state for backoff jitter */
	char (*ep_err)[KZ_CLI__EP_ERR]; /* per endpoint: why the last call failed */
	char errmsg[1024];
	char curlerr[CURL_ERROR_SIZE];
};

const char *kz_cli_strerror(int rc)
{
	switch (rc) {
#define KZ_CLI__TEXT(name, value, text)                                         \
	case (value):                                                           \
		return (text);
		KZ_CLI_ERRORS(KZ_CLI__TEXT)
#undef KZ_CLI__TEXT
	default:
		return "unknown error";
	}
}

static void kz_cli__fmt(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void kz_cli__fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static int kz_cli__lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* ASCII case-insensitive prefix test, for header names and URL schemes. */
static int kz_cli__has_prefix_ci(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++)
		if (kz_cli__lower((unsigned char)*s) !=
		    kz_cli__lower((unsigned char)*prefix))
			return 0;
	return 1;
}

static char *kz_cli__strdup(const char *s)
{
	size_t n;
	char *p;
	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	p = malloc(n);
	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static char *kz_cli__strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* ---- endpoints ---------------------------------------------------------------- */

void kz_cli_endpoints_free(kz_cli_endpoint *eps, size_t n)
{
	size_t i;
	if (eps == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(eps[i].url);
		free(eps[i].node_id);
		free(eps[i].region);
	}
	free(eps);
}

/* A URL we accept: http(s)://host..., no whitespace. Returns the length to
 * keep (trailing slashes dropped), 0 when invalid. */
static size_t kz_cli__url_check(const char *url, size_t len)
{
	size_t scheme, i;
	if (len > 8 && kz_cli__has_prefix_ci(url, "https://"))
		scheme = 8;
	else if (len > 7 && kz_cli__has_prefix_ci(url, "http://"))
		scheme = 7;
	else
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)url[i] <= ' ')
			return 0;
	while (len > scheme && url[len - 1] == '/')
		len--;
	if (len == scheme || url[scheme] == '/')
		return 0; /* no host */
	return len;
}

/* Appends one endpoint, copying the given slices. */
static int kz_cli__eps_push(kz_cli_endpoint **eps, size_t *n, size_t *cap,
			    const char *url, size_t urllen, const char *id,
			    size_t idlen, const char *region, size_t regionlen)
{
	kz_cli_endpoint *e;
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		kz_cli_endpoint *p = realloc(*eps, ncap * sizeof(*p));
		if (p == NULL)
			return KZ_CLI_ENOMEM;
		*eps = p;
		*cap = ncap;
	}
	e = &(*eps)[*n];
	memset(e, 0, sizeof(*e));
	e->url = kz_cli__strndup(url, urllen);
	if (e->url == NULL)
		goto err_after_entry;
	if (id != NULL) {
		e->node_id = kz_cli__strndup(id, idlen);
		if (e->node_id == NULL)
			goto err_after_entry;
	}
	if (region != NULL) {
		e->region = kz_cli__strndup(region, regionlen);
		if (e->region == NULL)
			goto err_after_entry;
	}
	(*n)++;
	return KZ_CLI_OK;

err_after_entry:
	free(e->url);
	free(e->node_id);
	free(e->region);
	return KZ_CLI_ENOMEM;
}

static int kz_cli__eps_has_url(const kz_cli_endpoint *eps, size_t n,
			       const char *url, size_t len)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (strlen(eps[i].url) == len && memcmp(eps[i].url, url, len) == 0)
			return 1;
	return 0;
}

static int kz_cli__is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int kz_cli_endpoints_parse_text(const char *text, kz_cli_endpoint **out,
				size_t *n, char *errmsg, size_t errlen)
{
	kz_cli_endpoint *eps = NULL;
	size_t count = 0, cap = 0;
	unsigned lineno = 0;
	const char *line = text;
	int rc;

	if (out == NULL || n == NULL || text == NULL) {
		kz_cli__fmt(errmsg, errlen, "endpoints: no text");
		return KZ_CLI_EINVAL;
	}
	*out = NULL;
	*n = 0;
	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		const char *tok[4];
		size_t toklen[4];
		size_t ntok = 0, urllen;
		const char *p;

		if (end == NULL)
			end = line + strlen(line);
		lineno++;
		/* Split on whitespace; a token starting with '#' ends the line. */
		for (p = line; p < end;) {
			const char *start;
			while (p < end && kz_cli__is_space(*p))
				p++;
			if (p == end || *p == '#')
				break;
			start = p;
			while (p < end && !kz_cli__is_space(*p))
				p++;
			if (ntok == 4)
				break;
			tok[ntok] = start;
			toklen[ntok] = (size_t)(p - start);
			ntok++;
		}
		line = *end == '\n' ? end + 1 : end;
		if (ntok == 0)
			continue;
		if (ntok != 3) {
			kz_cli__fmt(errmsg, errlen,
				    "endpoints line %u: want '<url> <node-id> "
				    "<region>', got %s%zu field(s)",
				    lineno, ntok == 4 ? "more than " : "",
				    ntok == 4 ? (size_t)3 : ntok);
			rc = KZ_CLI_EINVAL;
			goto err_after_alloc;
		}
		urllen = kz_cli__url_check(tok[0], toklen[0]);
		if (urllen == 0) {
			kz_cli__fmt(errmsg, errlen,
				    "endpoints line %u: '%.*s' is not an http:// "
				    "or https:// URL",
				    lineno, (int)(toklen[0] > 200 ? 200 : toklen[0]),
				    tok[0]);
			rc = KZ_CLI_EINVAL;
			goto err_after_alloc;
		}
		if (kz_cli__eps_has_url(eps, count, tok[0], urllen)) {
			kz_cli__fmt(errmsg, errlen,
				    "endpoints line %u: duplicate URL", lineno);
			rc = KZ_CLI_EINVAL;
			goto err_after_alloc;
		}
		rc = kz_cli__eps_push(&eps, &count, &cap, tok[0], urllen, tok[1],
				      toklen[1], tok[2], toklen[2]);
		if (rc != KZ_CLI_OK) {
			kz_cli__fmt(errmsg, errlen, "endpoints: out of memory");
			goto err_after_alloc;
		}
	}
	if (count == 0) {
		kz_cli__fmt(errmsg, errlen, "endpoints: no endpoint listed");
		rc = KZ_CLI_EINVAL;
		goto err_after_alloc;
	}
	*out = eps;
	*n = count;
	return KZ_CLI_OK;

err_after_alloc:
	kz_cli_endpoints_free(eps, count);
	return rc;
}

static int kz_cli__parse_url_list(const char *spec, kz_cli_endpoint **out,
				  size_t *n, char *errmsg, size_t errlen)
{
	kz_cli_endpoint *eps = NULL;
	size_t count = 0, cap = 0;
	const char *p = spec;
	int rc;

	for (;;) {
		const char *end = strchr(p, ',');
		const char *s, *e;
		size_t urllen;
		if (end == NULL)
			end = p + strlen(p);
		for (s = p; s < end && (kz_cli__is_space(*s) || *s == '\n'); s++)
			;
		for (e = end; e > s && (kz_cli__is_space(e[-1]) || e[-1] == '\n'); e--)
			;
		urllen = kz_cli__url_check(s, (size_t)(e - s));
		if (urllen == 0) {
			kz_cli__fmt(errmsg, errlen,
				    "endpoints: '%.*s' is not an http:// or "
				    "https:// URL",
				    (int)((e - s) > 200 ? 200 : (e - s)), s);
			rc = KZ_CLI_EINVAL;
			goto err_after_alloc;
		}
		if (kz_cli__eps_has_url(eps, count, s, urllen)) {
			kz_cli__fmt(errmsg, errlen, "endpoints: duplicate URL");
			rc = KZ_CLI_EINVAL;
			goto err_after_alloc;
		}
		rc = kz_cli__eps_push(&eps, &count, &cap, s, urllen, NULL, 0,
				      NULL, 0);
		if (rc != KZ_CLI_OK) {
			kz_cli__fmt(errmsg, errlen, "endpoints: out of memory");
			goto err_after_alloc;
		}
		if (*end == '\0')
			break;
		p = end + 1;
	}
	*out = eps;
	*n = count;
	return KZ_CLI_OK;

err_after_alloc:
	kz_cli_endpoints_free(eps, count);
	return rc;
}

int kz_cli_endpoints_parse(const char *spec, kz_cli_endpoint **out, size_t *n,
			   char *errmsg, size_t errlen)
{
	FILE *f;
	char *text;
	size_t len;
	int rc;

	if (out == NULL || n == NULL || spec == NULL || *spec == '\0') {
		kz_cli__fmt(errmsg, errlen, "endpoints: none given");
		return KZ_CLI_EINVAL;
	}
	*out = NULL;
	*n = 0;
	if (strstr(spec, "://") != NULL)
		return kz_cli__parse_url_list(spec, out, n, errmsg, errlen);

	f = fopen(spec, "r");
	if (f == NULL) {
		kz_cli__fmt(errmsg, errlen, "endpoints file %s: %s", spec,
			    strerror(errno));
		return KZ_CLI_EIO;
	}
	text = malloc(KZ_CLI__MAX_ENDPOINTS_FILE + 1);
	if (text == NULL) {
		rc = KZ_CLI_ENOMEM;
		kz_cli__fmt(errmsg, errlen, "endpoints: out of memory");
		goto err_after_open;
	}
	len = fread(text, 1, KZ_CLI__MAX_ENDPOINTS_FILE + 1, f);
	if (ferror(f)) {
		rc = KZ_CLI_EIO;
		kz_cli__fmt(errmsg, errlen, "endpoints file %s: read error",
			    spec);
		goto err_after_alloc;
	}
	if (len > KZ_CLI__MAX_ENDPOINTS_FILE) {
		rc = KZ_CLI_EINVAL;
		kz_cli__fmt(errmsg, errlen, "endpoints file %s: too large",
			    spec);
		goto err_after_alloc;
	}
	if (memchr(text, '\0', len) != NULL) {
		rc = KZ_CLI_EINVAL;
		kz_cli__fmt(errmsg, errlen, "endpoints file %s: binary data",
			    spec);
		goto err_after_alloc;
	}
	text[len] = '\0';
	rc = kz_cli_endpoints_parse_text(text, out, n, errmsg, errlen);

err_after_alloc:
	free(text);
err_after_open:
	fclose(f);
	return rc;
}

/* ---- time ------------------------------------------------------------------ */

static int64_t kz_cli__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kz_cli__sleep_ms(int64_t ms)
{
	struct timespec ts;
	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t kz_cli__xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* ---- client ------------------------------------------------------------------ */

static int kz_cli__readable(const char *what, const char *path, char *errmsg,
			    size_t errlen)
{
	if (path == NULL)
		return KZ_CLI_OK;
	if (access(path, R_OK) != 0) {
		kz_cli__fmt(errmsg, errlen, "%s %s: %s", what, path,
			    strerror(errno));
		return KZ_CLI_EIO;
	}
	return KZ_CLI_OK;
}

int kz_cli_open(const kz_cli_opts *opts, kz_cli **out, char *errmsg,
		size_t errlen)
{
	kz_cli *cli;
	struct timespec ts;
	size_t i;
	int rc;

	if (out == NULL || opts == NULL) {
		kz_cli__fmt(errmsg, errlen, "kz_cli_open: no options");
		return KZ_CLI_EINVAL;
	}
	*out = NULL;
	if ((rc = kz_cli__readable("CA certificate", opts->cacert, errmsg,
				   errlen)) != KZ_CLI_OK ||
	    (rc = kz_cli__readable("client certificate", opts->cert, errmsg,
				   errlen)) != KZ_CLI_OK ||
	    (rc = kz_cli__readable("client key", opts->key, errmsg, errlen)) !=
		    KZ_CLI_OK)
		return rc;
	if (opts->connect_timeout_ms < 0 || opts->request_timeout_ms < 0 ||
	    opts->deadline_ms < 0) {
		kz_cli__fmt(errmsg, errlen, "kz_cli_open: negative timeout");
		return KZ_CLI_EINVAL;
	}

	cli = calloc(1, sizeof(*cli));
	if (cli == NULL) {
		kz_cli__fmt(errmsg, errlen, "out of memory");
		return KZ_CLI_ENOMEM;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		kz_cli__fmt(errmsg, errlen, "libcurl initialisation failed");
		rc = KZ_CLI_ECONFIG;
		goto err_after_alloc;
	}
	rc = kz_cli_endpoints_parse(opts->endpoints, &cli->eps, &cli->n, errmsg,
				    errlen);
	if (rc != KZ_CLI_OK)
		goto err_after_global;

	rc = KZ_CLI_ENOMEM;
	cli->curls = calloc(cli->n, sizeof(*cli->curls));
	if (cli->curls == NULL)
		goto err_nomem;
	for (i = 0; i < cli->n; i++) {
		cli->curls[i] = curl_easy_init();
		if (cli->curls[i] == NULL)
			goto err_nomem;
	}
	cli->ep_err = calloc(cli->n, sizeof(*cli->ep_err));
	if (cli->ep_err == NULL)
		goto err_nomem;
	if ((opts->cacert && !(cli->cacert = kz_cli__strdup(opts->cacert))) ||
	    (opts->cert && !(cli->cert = kz_cli__strdup(opts->cert))) ||
	    (opts->key && !(cli->key = kz_cli__strdup(opts->key))) ||
	    (opts->purpose && !(cli->purpose = kz_cli__strdup(opts->purpose))))
		goto err_nomem;

	cli->connect_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 1000;
	cli->request_ms = opts->request_timeout_ms ? opts->request_timeout_ms : 10000;
	cli->deadline_ms = opts->deadline_ms ? opts->deadline_ms : 10000;
	cli->http2 = opts->http2;
	cli->retry_unsafe = opts->retry_unsafe;
	cli->verbose = opts->verbose;
	clock_gettime(CLOCK_REALTIME, &ts);
	cli->jitter = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		      ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)cli;
	if (cli->jitter == 0)
		cli->jitter = 0x9e3779b97f4a7c15ull;
	cli->current = opts->shuffle ? kz_cli__xorshift(&cli->jitter) % cli->n : 0;
	*out = cli;
	return KZ_CLI_OK;

err_nomem:
	kz_cli__fmt(errmsg, errlen, "out of memory");
	kz_cli_close(cli); /* also undoes curl_global_init */
	return rc;
err_after_global:
	curl_global_cleanup();
err_after_alloc:
	free(cli);
	return rc;
}

void kz_cli_close(kz_cli *cli)
{
	size_t i;
	if (cli == NULL)
		return;
	if (cli->curls != NULL)
		for (i = 0; i < cli->n; i++)
			if (cli->curls[i] != NULL)
				curl_easy_cleanup(cli->curls[i]);
	free(cli->curls);
	free(cli->ep_err);
	kz_cli_endpoints_free(cli->eps, cli->n);
	free(cli->cacert);
	free(cli->cert);
	free(cli->key);
	free(cli->purpose);
	free(cli);
	curl_global_cleanup();
}

const kz_cli_endpoint *kz_cli_endpoints(const kz_cli *cli, size_t *n)
{
	if (n != NULL)
		*n = cli->n;
	return cli->eps;
}

size_t kz_cli_current_endpoint(const kz_cli *cli)
{
	return cli->current;
}

const char *kz_cli_errmsg(const kz_cli *cli)
{
	return cli->errmsg;
}

void kz_cli_response_free(kz_cli_response *resp)
{
	if (resp == NULL)
		return;
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
	resp->index = -1;
	resp->stale_ms = -1;
	resp->retry_after_s = -1;
}

static void kz_cli__response_init(kz_cli_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->index = -1;
	resp->stale_ms = -1;
	resp->retry_after_s = -1;
}

/* ---- one attempt ------------------------------------------------------------ */

/* Where the curl callbacks of one attempt write. */
typedef struct kz_cli__capture {
	kz_cli_response *resp;
	size_t cap;
	int too_big;
	int nomem;
	CURL *h;
	kz_cli_sink sink; /* the body of a 200 goes here (kz_cli_get_stream) */
	void *sink_ud;
	int sink_failed;
} kz_cli__capture;

static size_t kz_cli__on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	kz_cli__capture *cap = ud;
	kz_cli_response *r = cap->resp;
	size_t n = size * nmemb;

	if (cap->sink != NULL) {
		long st = 0;
		curl_easy_getinfo(cap->h, CURLINFO_RESPONSE_CODE, &st);
		if (st == 200) {
			if (cap->sink(cap->sink_ud, data, n) != 0) {
				cap->sink_failed = 1;
				return 0;
			}
			return n;
		}
	}
	if (n > KZ_CLI__MAX_BODY - r->body_len) {
		cap->too_big = 1;
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	}
	if (r->body_len + n + 1 > cap->cap) {
		size_t ncap = cap->cap ? cap->cap : 4096;
		char *p;
		while (ncap < r->body_len + n + 1)
			ncap *= 2;
		p = realloc(r->body, ncap);
		if (p == NULL) {
			cap->nomem = 1;
			return 0;
		}
		r->body = p;
		cap->cap = ncap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return n;
}

/* Copies a header value without surrounding blanks into dst. */
static void kz_cli__header_copy(char *dst, size_t dstlen, const char *v,
				size_t len)
{
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
			   v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, v, len);
	dst[len] = '\0';
}

static long long kz_cli__header_ll(const char *v, size_t len)
{
	char tmp[32];
	char *end;
	long long x;
	kz_cli__header_copy(tmp, sizeof(tmp), v, len);
	errno = 0;
	x = strtoll(tmp, &end, 10);
	if (end == tmp || *end != '\0' || errno != 0 || x < 0)
		return -1;
	return x;
}

static size_t kz_cli__on_header(char *data, size_t size, size_t nitems,
				void *ud)
{
	kz_cli__capture *cap = ud;
	kz_cli_response *r = cap->resp;
	size_t n = size * nitems;
	const char *colon;
	const char *v;
	size_t namelen, vlen;

	/* A new status line starts a new header block (after 1xx answers). */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		r->node[0] = r->region[0] = '\0';
		r->index = r->stale_ms = -1;
		r->retry_after_s = -1;
		return n;
	}
	colon = memchr(data, ':', n);
	if (colon == NULL)
		return n;
	namelen = (size_t)(colon - data);
	v = colon + 1;
	vlen = n - namelen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
#define KZ_CLI__IS(name) (namelen == sizeof(name) - 1 && kz_cli__has_prefix_ci(data, (name)))
	if (KZ_CLI__IS("X-Kizuna-Node"))
		kz_cli__header_copy(r->node, sizeof(r->node), v, vlen);
	else if (KZ_CLI__IS("X-Kizuna-Region"))
		kz_cli__header_copy(r->region, sizeof(r->region), v, vlen);
	else if (KZ_CLI__IS("X-Request-Id"))
		kz_cli__header_copy(r->request_id, sizeof(r->request_id), v,
				    vlen);
	else if (KZ_CLI__IS("X-Kizuna-Index"))
		r->index = kz_cli__header_ll(v, vlen);
	else if (KZ_CLI__IS("X-Kizuna-Stale-Ms"))
		r->stale_ms = kz_cli__header_ll(v, vlen);
	else if (KZ_CLI__IS("Retry-After")) {
		/* Seconds only; an HTTP-date counts as absent (we cap at 1 s
		 * anyway). */
		long long s = kz_cli__header_ll(v, vlen);
		r->retry_after_s = s > 86400 ? 86400 : (long)s;
	}
#undef KZ_CLI__IS
	return n;
}

/* Sends the call to endpoint idx once. Returns KZ_CLI_OK when the node
 * answered (resp filled, resp->body owned by resp), KZ_CLI__ETRANSPORT when
 * it did not (*sent says whether the request may have reached it), or a
 * public error code for a local problem. cli->errmsg describes failures. */
static int kz_cli__attempt(kz_cli *cli, size_t idx, const char *method,
			   const char *path, struct curl_slist *hdrs,
			   const char *body, size_t bodylen, int64_t budget_ms,
			   kz_cli_sink sink, void *sink_ud,
			   kz_cli_response *resp, int *sent)
{
	CURL *h = cli->curls[idx];
	const char *base = cli->eps[idx].url;
	kz_cli__capture cap;
	CURLcode cc = CURLE_OK;
	size_t baselen = strlen(base), pathlen = strlen(path);
	char *url;
	long status = 0, reqsize = 0;
	long total = cli->request_ms < budget_ms ? cli->request_ms : (long)budget_ms;
	long conn = cli->connect_ms < total ? cli->connect_ms : total;
	int rc;

	kz_cli__response_init(resp);
	*sent = 0;
	url = malloc(baselen + pathlen + 1);
	if (url == NULL) {
		kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg), "out of memory");
		return KZ_CLI_ENOMEM;
	}
	memcpy(url, base, baselen);
	memcpy(url + baselen, path, pathlen + 1);

	memset(&cap, 0, sizeof(cap));
	cap.resp = resp;
	cap.h = h;
	cap.sink = sink;
	cap.sink_ud = sink_ud;
	cli->curlerr[0] = '\0';
	curl_easy_reset(h); /* keeps the connection cache */
	KZ_CLI__SETOPT(cc, h, CURLOPT_URL, url);
	KZ_CLI__SETOPT(cc, h, CURLOPT_ERRORBUFFER, cli->curlerr);
	KZ_CLI__SETOPT(cc, h, CURLOPT_NOSIGNAL, 1L);
	KZ_CLI__SETOPT(cc, h, CURLOPT_PROTOCOLS_STR, "http,https");
	KZ_CLI__SETOPT(cc, h, CURLOPT_FOLLOWLOCATION, 0L);
	KZ_CLI__SETOPT(cc, h, CURLOPT_CONNECTTIMEOUT_MS, conn > 0 ? conn : 1L);
	KZ_CLI__SETOPT(cc, h, CURLOPT_TIMEOUT_MS, total > 0 ? total : 1L);
	KZ_CLI__SETOPT(cc, h, CURLOPT_TCP_KEEPALIVE, 1L);
	KZ_CLI__SETOPT(cc, h, CURLOPT_USERAGENT, "kizuna-client/1");
	KZ_CLI__SETOPT(cc, h, CURLOPT_HTTP_VERSION,
		       cli->http2 ? (long)CURL_HTTP_VERSION_2TLS
				  : (long)CURL_HTTP_VERSION_1_1);
	KZ_CLI__SETOPT(cc, h, CURLOPT_HTTPHEADER, hdrs);
	KZ_CLI__SETOPT(cc, h, CURLOPT_WRITEFUNCTION, kz_cli__on_body);
	KZ_CLI__SETOPT(cc, h, CURLOPT_WRITEDATA, &cap);
	KZ_CLI__SETOPT(cc, h, CURLOPT_HEADERFUNCTION, kz_cli__on_header);
	KZ_CLI__SETOPT(cc, h, CURLOPT_HEADERDATA, &cap);
	/* Every node connection is TLS 1.3 with mutual authentication. */
	KZ_CLI__SETOPT(cc, h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
	if (cli->cacert != NULL)
		KZ_CLI__SETOPT(cc, h, CURLOPT_CAINFO, cli->cacert);
	if (cli->cert != NULL) {
		KZ_CLI__SETOPT(cc, h, CURLOPT_SSLCERT, cli->cert);
		KZ_CLI__SETOPT(cc, h, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (cli->key != NULL) {
		KZ_CLI__SETOPT(cc, h, CURLOPT_SSLKEY, cli->key);
		KZ_CLI__SETOPT(cc, h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (strcmp(method, "GET") == 0 && body == NULL) {
		KZ_CLI__SETOPT(cc, h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		KZ_CLI__SETOPT(cc, h, CURLOPT_NOBODY, 1L);
	} else {
		KZ_CLI__SETOPT(cc, h, CURLOPT_CUSTOMREQUEST, method);
		if (body != NULL || strcmp(method, "DELETE") != 0) {
			KZ_CLI__SETOPT(cc, h, CURLOPT_POSTFIELDSIZE_LARGE,
				       (curl_off_t)(body != NULL ? bodylen : 0));
			KZ_CLI__SETOPT(cc, h, CURLOPT_POSTFIELDS,
				       body != NULL ? body : "");
		}
	}
	if (cc != CURLE_OK) {
		kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
			    "libcurl rejected an option: %s",
			    curl_easy_strerror(cc));
		rc = KZ_CLI_ECONFIG;
		goto err_after_url;
	}

	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &reqsize);
	if (cc != CURLE_OK) {
		free(resp->body);
		kz_cli__response_init(resp);
		if (cap.nomem || cc == CURLE_OUT_OF_MEMORY) {
			kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
				    "out of memory");
			rc = KZ_CLI_ENOMEM;
		} else if (cap.sink_failed) {
			kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
				    "%s: the download could not be written",
				    base);
			rc = KZ_CLI_EIO;
		} else if (cap.too_big) {
			kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
				    "%s: response larger than %u bytes", base,
				    KZ_CLI__MAX_BODY);
			rc = KZ_CLI_ETOOBIG;
		} else {
			kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg), "%s: %s",
				    base,
				    cli->curlerr[0] ? cli->curlerr
						    : curl_easy_strerror(cc));
			rc = kz_cli__curl_local(cc) ? KZ_CLI_ECONFIG
						    : KZ_CLI__ETRANSPORT;
			/* Bytes of the request left this process: the node may
			 * have acted on it. */
			*sent = reqsize > 0;
		}
		goto err_after_url;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	resp->status = status;
	resp->endpoint = idx;
	if (resp->body == NULL) {
		resp->body = calloc(1, 1);
		if (resp->body == NULL) {
			kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
				    "out of memory");
			rc = KZ_CLI_ENOMEM;
			goto err_after_url;
		}
	}
	free(url);
	return KZ_CLI_OK;

err_after_url:
	free(url);
	return rc;
}

/* A call that may be sent again after an unknown outcome: idempotent by HTTP
 * semantics, or made so by Idempotency-Key / If-Match. */
static int kz_cli__safe_to_repeat(const char *method, const char *const *headers)
{
	size_t i;
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
	    strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0 ||
	    strcmp(method, "OPTIONS") == 0)
		return 1;
	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		if (kz_cli__has_prefix_ci(headers[i], "Idempotency-Key:") ||
		    kz_cli__has_prefix_ci(headers[i], "If-Match:"))
			return 1;
	return 0;
}

/* A 503 whose write may nevertheless have been proposed (see
 * send_cons_error in node/http_api.c): its outcome is unknown. */
static int kz_cli__503_in_doubt(const kz_cli_response *resp)
{
	static const char *const codes[] = {"\"timeout\"", "\"no_quorum\"",
					    "\"leader_unreachable\"",
					    "\"shutting_down\""};
	size_t i;
	if (resp->body == NULL)
		return 0;
	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strstr(resp->body, codes[i]) != NULL)
			return 1;
	return 0;
}

static int kz_cli__has_header(const char *const *headers, const char *name)
{
	size_t i;
	for (i = 0; headers != NULL && headers[i] != NULL; i++)
		if (kz_cli__has_prefix_ci(headers[i], name))
			return 1;
	return 0;
}

/* Builds the header list of a call. The caller frees it with
 * curl_slist_free_all. NULL when out of memory or a header is malformed
 * (*bad set). */
static struct curl_slist *kz_cli__headers(const kz_cli *cli,
					  const char *const *headers,
					  int has_body, int *bad)
{
	struct curl_slist *list = NULL, *tmp;
	char purpose[1024];
	size_t i;

	*bad = 0;
#define KZ_CLI__ADD(s)                                                          \
	do {                                                                    \
		tmp = curl_slist_append(list, (s));                             \
		if (tmp == NULL)                                                \
			goto err_after_list;                                    \
		list = tmp;                                                     \
	} while (0)
	KZ_CLI__ADD("Accept: application/json");
	KZ_CLI__ADD("Expect:"); /* no 100-continue round trip */
	/* A body is JSON unless the caller says otherwise (text/csv...). */
	if (has_body && !kz_cli__has_header(headers, "Content-Type:"))
		KZ_CLI__ADD("Content-Type: application/json");
	for (i = 0; headers != NULL && headers[i] != NULL; i++) {
		const char *h = headers[i];
		if (strchr(h, ':') == NULL || strchr(h, '\n') != NULL ||
		    strchr(h, '\r') != NULL) {
			*bad = 1;
			goto err_after_list;
		}
		KZ_CLI__ADD(h);
	}
	if (cli->purpose != NULL && !kz_cli__has_header(headers, "X-Purpose:")) {
		if (strchr(cli->purpose, '\n') != NULL ||
		    strchr(cli->purpose, '\r') != NULL ||
		    strlen(cli->purpose) > sizeof(purpose) - 32) {
			*bad = 1;
			goto err_after_list;
		}
		snprintf(purpose, sizeof(purpose), "X-Purpose: %s", cli->purpose);
		KZ_CLI__ADD(purpose);
	}
#undef KZ_CLI__ADD
	return list;

err_after_list:
	curl_slist_free_all(list);
	return NULL;
}

/* Logs one attempt without personal data: the query string (names, dates of
 * birth) is never printed. */
static void kz_cli__log(const kz_cli *cli, size_t idx, const char *method,
			const char *path, const char *outcome)
{
	size_t plen = strcspn(path, "?");
	size_t ulen = strlen(cli->eps[idx].url);
	if (!cli->verbose)
		return;
	/* Failure texts start with the endpoint's URL: do not say it twice. */
	if (strncmp(outcome, cli->eps[idx].url, ulen) == 0 &&
	    strncmp(outcome + ulen, ": ", 2) == 0)
		outcome += ulen + 2;
	fprintf(stderr, "kizuna: %s %.*s%s -> %s: %s\n", method, (int)plen,
		path, path[plen] ? "?…" : "", cli->eps[idx].url, outcome);
}

int kz_cli_request(kz_cli *cli, const char *method, const char *path,
		   const char *const *headers, const char *body,
		   size_t bodylen, kz_cli_response *out)
{
	struct curl_slist *hdrs;
	kz_cli_response last503;
	int have503 = 0, attempts = 0, safe, bad, rc, read_only, cond,
	    maybe_applied = 0;
	int64_t deadline, backoff = KZ_CLI__BACKOFF_MIN_MS;
	char lasterr[sizeof(cli->errmsg)] = "";
	size_t k;

	if (out != NULL)
		kz_cli__response_init(out);
	if (cli == NULL || method == NULL || path == NULL || out == NULL ||
	    path[0] != '/' || *method == '\0') {
		if (cli != NULL)
			kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
				    "kz_cli_request: bad arguments");
		return KZ_CLI_EINVAL;
	}
	cli->errmsg[0] = '\0';
	kz_cli__response_init(&last503);
	hdrs = kz_cli__headers(cli, headers, body != NULL, &bad);
	if (hdrs == NULL) {
		kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg), "%s",
			    bad ? "malformed request header" : "out of memory");
		return bad ? KZ_CLI_EINVAL : KZ_CLI_ENOMEM;
	}
	safe = cli->retry_unsafe || kz_cli__safe_to_repeat(method, headers);
	read_only = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
		    strcmp(method, "OPTIONS") == 0;
	cond = kz_cli__has_header(headers, "If-Match:");
	for (k = 0; k < cli->n; k++)
		cli->ep_err[k][0] = '\0';
	deadline = kz_cli__now_ms() + cli->deadline_ms;

	for (;;) {
		long retry_after = -1;
		int64_t remaining, wait;
		size_t i;

		for (i = 0; i < cli->n; i++) {
			size_t idx = (cli->current + i) % cli->n;
			kz_cli_response resp;
			int sent;

			remaining = deadline - kz_cli__now_ms();
			if (remaining <= 0)
				goto out_of_time;
			attempts++;
			rc = kz_cli__attempt(cli, idx, method, path, hdrs, body,
					     bodylen, remaining, NULL, NULL,
					     &resp, &sent);
			if (rc == KZ_CLI__ETRANSPORT) {
				kz_cli__log(cli, idx, method, path, cli->errmsg);
				if (sent && !safe) {
					memcpy(lasterr, cli->errmsg, sizeof(lasterr));
					kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
						    "%.400s (sent; it may or may "
						    "not have been applied)",
						    lasterr);
					rc = KZ_CLI_EINDOUBT;
					goto done;
				}
				if (sent && !read_only)
					maybe_applied = 1;
				snprintf(cli->ep_err[idx], KZ_CLI__EP_ERR, "%.*s",
					 KZ_CLI__EP_ERR - 1, cli->errmsg);
				continue;
			}
			if (rc != KZ_CLI_OK) {
				kz_cli__log(cli, idx, method, path, cli->errmsg);
				goto done;
			}
			if (resp.status == 503 && !read_only &&
			    kz_cli__503_in_doubt(&resp)) {
				if (!safe) {
					kz_cli__log(cli, idx, method, path,
						    "503, outcome unknown");
					kz_cli__fmt(cli->errmsg,
						    sizeof(cli->errmsg),
						    "%s answered 503 (the write "
						    "may or may not be applied)",
						    cli->eps[idx].url);
					kz_cli_response_free(&resp);
					rc = KZ_CLI_EINDOUBT;
					goto done;
				}
				maybe_applied = 1;
			}
			if (resp.status == 412 && cond && maybe_applied) {
				kz_cli__log(cli, idx, method, path,
					    "412 after an attempt in doubt");
				kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
					    "412 after an earlier attempt of "
					    "this conditional write may have "
					    "been applied: its outcome is "
					    "unknown");
				kz_cli_response_free(&resp);
				rc = KZ_CLI_EINDOUBT;
				goto done;
			}
			if (resp.status == 503) {
				kz_cli__log(cli, idx, method, path, "503");
				if (resp.retry_after_s > retry_after)
					retry_after = resp.retry_after_s;
				kz_cli_response_free(&last503);
				last503 = resp;
				have503 = 1;
				continue;
			}
			if (cli->verbose) {
				char st[16];
				snprintf(st, sizeof(st), "%ld", resp.status);
				kz_cli__log(cli, idx, method, path, st);
			}
			cli->current = idx;
			*out = resp;
			out->attempts = attempts;
			rc = KZ_CLI_OK;
			goto done;
		}
		/* A whole round without an answer: wait, then go round again. */
		remaining = deadline - kz_cli__now_ms();
		if (remaining <= 0)
			break;
		if (retry_after > 0)
			wait = retry_after * 1000 > KZ_CLI__BACKOFF_MAX_MS
				       ? KZ_CLI__BACKOFF_MAX_MS
				       : retry_after * 1000;
		else /* half fixed, half random: clients do not retry in step */
			wait = backoff / 2 + (int64_t)(kz_cli__xorshift(&cli->jitter) %
						       (uint64_t)(backoff / 2 + 1));
		kz_cli__sleep_ms(wait < remaining ? wait : remaining);
		backoff = backoff * 2 > KZ_CLI__BACKOFF_MAX_MS
				  ? KZ_CLI__BACKOFF_MAX_MS
				  : backoff * 2;
	}

out_of_time:
	if (have503) {
		/* Nodes answered, none could serve: give the caller the last
		 * 503 and its error body. */
		*out = last503;
		out->attempts = attempts;
		kz_cli__response_init(&last503);
		kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
			    "no endpoint could serve within %ld ms (last "
			    "answer: 503)",
			    cli->deadline_ms);
		rc = KZ_CLI_OK;
	} else {
		/* Say why each endpoint failed: one refusing connections and
		 * another refusing our certificate need different fixes. */
		size_t len;
		kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
			    "no endpoint reachable within %ld ms (%d attempts)",
			    cli->deadline_ms, attempts);
		for (k = 0; k < cli->n; k++) {
			len = strlen(cli->errmsg);
			if (cli->ep_err[k][0] != '\0' && len < sizeof(cli->errmsg))
				kz_cli__fmt(cli->errmsg + len,
					    sizeof(cli->errmsg) - len, "; %s",
					    cli->ep_err[k]);
		}
		rc = KZ_CLI_EUNREACHABLE;
	}
done:
	kz_cli_response_free(&last503);
	curl_slist_free_all(hdrs);
	return rc;
}

/* ---- helpers ------------------------------------------------------------------ */

int kz_cli_get_stream(kz_cli *cli, size_t endpoint, const char *path,
		      const char *const *headers, long timeout_ms,
		      kz_cli_sink sink, void *ud, kz_cli_response *out)
{
	struct curl_slist *hdrs;
	int bad, sent, rc;

	if (out != NULL)
		kz_cli__response_init(out);
	if (cli == NULL || path == NULL || path[0] != '/' || out == NULL ||
	    sink == NULL || endpoint >= cli->n || timeout_ms <= 0) {
		if (cli != NULL)
			kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg),
				    "kz_cli_get_stream: bad arguments");
		return KZ_CLI_EINVAL;
	}
	cli->errmsg[0] = '\0';
	hdrs = kz_cli__headers(cli, headers, 0, &bad);
	if (hdrs == NULL) {
		kz_cli__fmt(cli->errmsg, sizeof(cli->errmsg), "%s",
			    bad ? "malformed request header" : "out of memory");
		return bad ? KZ_CLI_EINVAL : KZ_CLI_ENOMEM;
	}
	/* One long attempt: request_ms would cut a large file short. */
	long saved = cli->request_ms;
	cli->request_ms = timeout_ms;
	rc = kz_cli__attempt(cli, endpoint, "GET", path, hdrs, NULL, 0,
			     timeout_ms, sink, ud, out, &sent);
	cli->request_ms = saved;
	curl_slist_free_all(hdrs);
	kz_cli__log(cli, endpoint, "GET", path,
		    rc == KZ_CLI_OK ? "answered" : cli->errmsg);
	if (rc == KZ_CLI_OK)
		out->attempts = 1;
	return rc == KZ_CLI__ETRANSPORT ? KZ_CLI_EUNREACHABLE : rc;
}

char *kz_cli_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, i;
	char *out, *p;

	if (s == NULL)
		return NULL;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			   (c >= '0' && c <= '9') || c == '-' || c == '.' ||
			   c == '_' || c == '~';
		n += keep ? 1 : 3;
	}
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (p = out, i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
		    c == '~') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

char *kz_cli_error_describe(const kz_cli_response *resp, char *buf,
			    size_t buflen)
{
	json_t *root = NULL, *err;
	const char *code = NULL, *message = NULL, *rid = NULL;

	if (buf == NULL || buflen == 0)
		return buf;
	buf[0] = '\0';
	if (resp == NULL)
		return buf;
	if (resp->body != NULL && resp->body_len > 0)
		root = json_loadb(resp->body, resp->body_len, 0, NULL);
	err = root != NULL ? json_object_get(root, "error") : NULL;
	if (json_is_object(err)) {
		code = json_string_value(json_object_get(err, "code"));
		message = json_string_value(json_object_get(err, "message"));
		rid = json_string_value(json_object_get(err, "request_id"));
	}
	if (code != NULL || message != NULL) {
		snprintf(buf, buflen, "%ld %s: %s%s%s%s", resp->status,
			 code ? code : "error", message ? message : "",
			 rid ? " (request " : "", rid ? rid : "", rid ? ")" : "");
	} else {
		/* Not the documented shape (a proxy, a crash page): the status
		 * and the first line of whatever came back. */
		size_t n = 0;
		if (resp->body != NULL)
			n = strcspn(resp->body, "\r\n");
		if (n > 200)
			n = 200;
		snprintf(buf, buflen, "%ld %s%.*s", resp->status,
			 n ? "" : "(no error body)", (int)n,
			 resp->body ? resp->body : "");
	}
	json_decref(root);
	return buf;
}
