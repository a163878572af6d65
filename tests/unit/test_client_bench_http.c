/*
 * kizuna-bench's transport (client/bench_http.c): the HTTP/1.x response
 * parser on its own (Content-Length, chunked, bodies up to the close,
 * interim answers, Connection: close, every split of the bytes into two
 * reads and one byte at a time, malformed answers), then connections to
 * servers in this process on 127.0.0.1: plain HTTP on the test's libuv
 * loop (keep-alive, Connection: close, a kept connection the server closed,
 * a server that never answers, a refused connection), and TLS 1.3 from a
 * server thread with a CA, server and client certificates made here (the
 * client certificate shown, the server verified, a certificate for another
 * address refused, an unusable client key a local failure).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "bench_http.h"

/* ---- parser ----------------------------------------------------------------------------- */

typedef struct body {
	char buf[4096];
	size_t len;
} body;

static void on_body(void *ud, const char *d, size_t n)
{
	body *b = ud;
	cr_assert_leq(b->len + n, sizeof(b->buf));
	memcpy(b->buf + b->len, d, n);
	b->len += n;
}

/* Feeds resp in pieces cut at the offsets cuts[0..n-1]; returns the bytes
 * the parser took in all (or -1). */
static long feed_cut(kz_bh_parser *p, const char *resp, size_t len,
		     const size_t *cuts, size_t n)
{
	size_t at = 0, i;
	long total = 0;
	for (i = 0; i <= n; i++) {
		size_t end = i < n ? cuts[i] : len;
		long r = kz_bh_parser_feed(p, resp + at, end - at);
		if (r < 0)
			return -1;
		total += r;
		if ((size_t)r < end - at)
			return total;
		at = end;
	}
	return total;
}

static const char chunked[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5\r\n{\"a\":\r\n"
    "A;ext=1\r\n\"012345678\r\n"
    "1 \r\n}\r\n"
    "0\r\n"
    "X-Trailer: yes\r\n"
    "\r\n";
static const char chunked_body[] = "{\"a\":\"012345678}";

Test(client_bench_http, chunked_in_one_piece)
{
	kz_bh_parser p;
	body b = {.len = 0};
	kz_bh_parser_init(&p, on_body, &b);
	cr_assert_eq(kz_bh_parser_feed(&p, chunked, strlen(chunked)),
		     (long)strlen(chunked));
	cr_assert(kz_bh_parser_done(&p));
	cr_assert_eq(p.status, 200);
	cr_assert_not(p.close);
	cr_assert_eq(b.len, strlen(chunked_body));
	cr_assert_eq(memcmp(b.buf, chunked_body, b.len), 0);
	cr_assert_eq(p.body_bytes, b.len);
}

/* Every response of this list, cut into two reads at every byte boundary
 * and fed one byte at a time, reads as it does in one piece. */
Test(client_bench_http, every_split_reads_the_same)
{
	static const char *const resps[] = {
	    chunked,
	    "HTTP/1.1 201 Created\r\nContent-Length: 11\r\nLocation: /x\r\n"
	    "\r\nhello world",
	    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\n"
	    "content-length: 4\r\nConnection: close\r\n\r\nbusy",
	    "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
	};
	size_t r;
	for (r = 0; r < sizeof(resps) / sizeof(resps[0]); r++) {
		const char *resp = resps[r];
		size_t len = strlen(resp), cut, i;
		kz_bh_parser p;
		body whole = {.len = 0};
		int status, close;

		kz_bh_parser_init(&p, on_body, &whole);
		cr_assert_eq(kz_bh_parser_feed(&p, resp, len), (long)len);
		cr_assert(kz_bh_parser_done(&p));
		status = p.status;
		close = p.close;
		for (cut = 0; cut <= len; cut++) {
			body b = {.len = 0};
			kz_bh_parser_init(&p, on_body, &b);
			cr_assert_eq(feed_cut(&p, resp, len, &cut, 1),
				     (long)len, "response %zu cut at %zu", r,
				     cut);
			cr_assert(kz_bh_parser_done(&p));
			cr_assert_eq(p.status, status);
			cr_assert_eq(p.close, close);
			cr_assert_eq(b.len, whole.len);
			cr_assert_eq(memcmp(b.buf, whole.buf, b.len), 0);
		}
		{
			body b = {.len = 0};
			kz_bh_parser_init(&p, on_body, &b);
			for (i = 0; i < len; i++)
				cr_assert_eq(kz_bh_parser_feed(&p, resp + i, 1),
					     1, "response %zu byte %zu", r, i);
			cr_assert(kz_bh_parser_done(&p));
			cr_assert_eq(b.len, whole.len);
			cr_assert_eq(memcmp(b.buf, whole.buf, b.len), 0);
		}
	}
}

Test(client_bench_http, interim_answer_then_the_final_one)
{
	static const char r[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 x\r\n"
				"Content-Length: 4\r\nConnection: close\r\n"
				"\r\nbusy";
	kz_bh_parser p;
	body b = {.len = 0};
	kz_bh_parser_init(&p, on_body, &b);
	cr_assert_eq(kz_bh_parser_feed(&p, r, strlen(r)), (long)strlen(r));
	cr_assert(kz_bh_parser_done(&p));
	cr_assert_eq(p.status, 503);
	cr_assert(p.close);
	cr_assert_eq(b.len, 4);
}

Test(client_bench_http, connection_close_and_http_1_0)
{
	static const char *const closing[] = {
	    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\n"
	    "Content-Length: 0\r\n\r\n",
	    "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	};
	static const char *const kept[] = {
	    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
	    "Content-Length: 0\r\n\r\n",
	    "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
	    "Content-Length: 0\r\n\r\n",
	};
	size_t i;
	kz_bh_parser p;
	for (i = 0; i < 3; i++) {
		kz_bh_parser_init(&p, NULL, NULL);
		cr_assert_eq(kz_bh_parser_feed(&p, closing[i],
					       strlen(closing[i])),
			     (long)strlen(closing[i]));
		cr_assert(kz_bh_parser_done(&p));
		cr_assert(p.close, "%s", closing[i]);
		kz_bh_parser_init(&p, NULL, NULL);
		cr_assert_eq(kz_bh_parser_feed(&p, kept[i], strlen(kept[i])),
			     (long)strlen(kept[i]));
		cr_assert(kz_bh_parser_done(&p));
		cr_assert_not(p.close, "%s", kept[i]);
	}
}

Test(client_bench_http, body_up_to_the_close)
{
	static const char r[] = "HTTP/1.1 200 OK\r\n\r\nall of it";
	kz_bh_parser p;
	body b = {.len = 0};
	kz_bh_parser_init(&p, on_body, &b);
	cr_assert_eq(kz_bh_parser_feed(&p, r, strlen(r)), (long)strlen(r));
	cr_assert_not(kz_bh_parser_done(&p));
	cr_assert(kz_bh_parser_eof(&p));
	cr_assert(kz_bh_parser_done(&p));
	cr_assert(p.close);
	cr_assert_eq(b.len, 9);

	/* A body cut short of its length, or of its chunks, is not. */
	kz_bh_parser_init(&p, NULL, NULL);
	cr_assert_eq(kz_bh_parser_feed(&p, "HTTP/1.1 200 OK\r\n"
					   "Content-Length: 10\r\n\r\nabc",
				       40),
		     40);
	cr_assert_not(kz_bh_parser_eof(&p));
	kz_bh_parser_init(&p, NULL, NULL);
	cr_assert_eq(kz_bh_parser_feed(&p, chunked, 80), 80);
	cr_assert_not(kz_bh_parser_eof(&p));
	kz_bh_parser_init(&p, NULL, NULL);
	cr_assert_not(kz_bh_parser_eof(&p)); /* nothing at all */
}

Test(client_bench_http, bytes_past_the_response_are_left)
{
	static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"
				"okHTTP/1.1 200 OK\r\n";
	kz_bh_parser p;
	kz_bh_parser_init(&p, NULL, NULL);
	cr_assert_eq(kz_bh_parser_feed(&p, r, strlen(r)), 40);
	cr_assert(kz_bh_parser_done(&p));
}

Test(client_bench_http, malformed_answers)
{
	static const char *const bad[] = {
	    "HTTX/1.1 200 OK\r\n\r\n",
	    "HTTP/2 200\r\n\r\n",
	    "HTTP/1.1 2x0 OK\r\n\r\n",
	    "HTTP/1.1 200OK\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "2\r\nabX\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "fffffffffffffffff\r\n",
	    "HTTP/1.1 101 Switching Protocols\r\n\r\n",
	};
	static char longline[KZ_BH_LINE_MAX + 64];
	size_t i;
	kz_bh_parser p;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kz_bh_parser_init(&p, NULL, NULL);
		cr_assert_eq(kz_bh_parser_feed(&p, bad[i], strlen(bad[i])), -1,
			     "%s", bad[i]);
		/* and stays refused */
		cr_assert_eq(kz_bh_parser_feed(&p, "x", 1), -1);
	}
	memcpy(longline, "HTTP/1.1 200 OK\r\nX: ", 21);
	memset(longline + 21, 'a', sizeof(longline) - 22);
	kz_bh_parser_init(&p, NULL, NULL);
	cr_assert_eq(kz_bh_parser_feed(&p, longline, sizeof(longline) - 1), -1);
}

Test(client_bench_http, error_kinds_have_names)
{
	int e;
	for (e = 0; e < KZ_BH_ERR_COUNT_; e++)
		cr_assert_str_neq(kz_bh_strerror(e), "unknown");
	cr_assert_str_eq(kz_bh_strerror(KZ_BH_ERR_COUNT_), "unknown");
	cr_assert_str_eq(kz_bh_strerror(KZ_BH_E_CONNECT), "could not connect");
	cr_assert(kz_bh_err_local(KZ_BH_E_CERT));
	cr_assert_not(kz_bh_err_local(KZ_BH_E_TIMEOUT));
}

/* ---- plain HTTP against a server on the loop ----------------------------------------------- */

/* What the test server does with the nth request of a connection. */
enum srv_mode {
	SRV_KEEP,       /* 200 with a 5-byte body, connection kept */
	SRV_CLOSE,      /* 200 with Connection: close, then closes */
	SRV_CHUNKED,    /* a chunked 200 in three writes */
	SRV_DROP_2ND,   /* answers the first request of a connection;
			   closes at the second without a word */
	SRV_SILENT      /* never answers */
};

typedef struct srv {
	uv_tcp_t listener;
	enum srv_mode mode;
	int accepted;
	int requests;
} srv;

typedef struct srv_conn {
	uv_tcp_t tcp;
	srv *s;
	int n;          /* requests seen on it */
	char buf[8192];
	size_t len;
} srv_conn;

static void srv_conn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void srv_write_cb(uv_write_t *w, int status)
{
	(void)status;
	free(w);
}

static void srv_send(srv_conn *c, const char *text)
{
	uv_write_t *w = malloc(sizeof(*w) + strlen(text));
	uv_buf_t b;
	cr_assert_not_null(w);
	memcpy((char *)(w + 1), text, strlen(text));
	b = uv_buf_init((char *)(w + 1), (unsigned)strlen(text));
	cr_assert_eq(uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, srv_write_cb),
		     0);
}

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	srv_conn *c = h->data;
	(void)sz;
	*b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	srv_conn *c = st->data;
	char *end;
	(void)b;
	if (n < 0) {
		uv_close((uv_handle_t *)&c->tcp, srv_conn_closed);
		return;
	}
	c->len += (size_t)n;
	/* The test's requests are GETs: a request ends at its empty line. */
	while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL) {
		size_t used = (size_t)(end + 4 - c->buf);
		cr_assert(memmem(c->buf, used, "\r\nHost: 127.0.0.1:", 18) !=
			  NULL);
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		c->n++;
		c->s->requests++;
		switch (c->s->mode) {
		case SRV_KEEP:
			srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				    "\r\nhello");
			break;
		case SRV_CLOSE:
			srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				    "Connection: close\r\n\r\nhello");
			uv_close((uv_handle_t *)&c->tcp, srv_conn_closed);
			return;
		case SRV_CHUNKED:
			srv_send(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: ");
			srv_send(c, "chunked\r\n\r\n3\r\nhel\r\n");
			srv_send(c, "2\r\nlo\r\n0\r\n\r\n");
			break;
		case SRV_DROP_2ND:
			if (c->n >= 2) {
				uv_close((uv_handle_t *)&c->tcp,
					 srv_conn_closed);
				return;
			}
			srv_send(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				    "\r\nhello");
			break;
		case SRV_SILENT:
			break;
		}
	}
}

static void srv_accept(uv_stream_t *l, int status)
{
	srv *s = l->data;
	srv_conn *c = calloc(1, sizeof(*c));
	cr_assert_eq(status, 0);
	cr_assert_not_null(c);
	c->s = s;
	uv_tcp_init(l->loop, &c->tcp);
	c->tcp.data = c;
	cr_assert_eq(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
	s->accepted++;
	uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
}

/* Listens on 127.0.0.1 at a port of the system's choosing. */
static int srv_start(uv_loop_t *loop, srv *s, enum srv_mode mode)
{
	struct sockaddr_in a;
	struct sockaddr_storage got;
	int len = sizeof(got);
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	uv_ip4_addr("127.0.0.1", 0, &a);
	cr_assert_eq(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
	cr_assert_eq(uv_listen((uv_stream_t *)&s->listener, 16, srv_accept), 0);
	uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
	return ntohs(((struct sockaddr_in *)&got)->sin_port);
}

/* uv_walk: closes what the test's server left open (arg: its listener;
 * every other TCP handle still open is one of its connections). */
static void close_any(uv_handle_t *h, void *arg)
{
	if (uv_is_closing(h))
		return;
	if (h == arg || h->type != UV_TCP)
		uv_close(h, NULL);
	else
		uv_close(h, srv_conn_closed);
}

typedef struct client {
	body b;
	int done;
	kz_bh_result r;
	char msg[256];
} client;

static void on_done(void *ud, const kz_bh_result *r)
{
	client *c = ud;
	c->done++;
	c->r = *r;
	snprintf(c->msg, sizeof(c->msg), "%s", r->errmsg);
	c->r.errmsg = c->msg;
}

static void client_body(void *ud, const char *d, size_t n)
{
	on_body(&((client *)ud)->b, d, n);
}

static kz_bh_conn *client_conn(uv_loop_t *loop, client *cl, const char *url,
			       kz_bh_tls *tls, long timeout_ms)
{
	kz_bh_conn_opts o;
	kz_bh_conn *c;
	char err[256];
	memset(&o, 0, sizeof(o));
	o.loop = loop;
	o.url = url;
	o.tls = tls;
	o.connect_timeout_ms = timeout_ms;
	o.timeout_ms = timeout_ms;
	o.on_body = client_body;
	o.on_done = on_done;
	o.ud = cl;
	cr_assert_eq(kz_bh_conn_new(&o, &c, err, sizeof(err)), KZ_BH_OK, "%s",
		     err);
	return c;
}

/* Sends GET url on c and runs the loop until it is done. */
static void get(uv_loop_t *loop, kz_bh_conn *c, client *cl, const char *url)
{
	int before = cl->done;
	cl->b.len = 0;
	cr_assert_eq(kz_bh_send(c, "GET", url, "Accept: */*\r\n", NULL, 0, 0),
		     KZ_BH_OK);
	cr_assert(kz_bh_busy(c));
	cr_assert_eq(cl->done, before, "on_done ran inside kz_bh_send");
	while (cl->done == before)
		uv_run(loop, UV_RUN_ONCE);
	cr_assert_not(kz_bh_busy(c));
}

/* Runs the loop for about ms milliseconds. */
static void spin(uv_loop_t *loop, int ms)
{
	while (ms-- > 0) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

/* Frees c, closes the server's handles (listener: NULL when it is not on
 * the loop) and the loop. */
static void finish_loop(uv_loop_t *loop, kz_bh_conn *c, uv_tcp_t *listener)
{
	kz_bh_conn_free(c);
	uv_walk(loop, close_any, listener);
	uv_run(loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(loop), 0);
}

Test(client_bench_http, keep_alive_one_connection)
{
	uv_loop_t loop;
	srv s;
	client cl;
	char url[64];
	kz_bh_conn *c;
	int i;

	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d",
		 srv_start(&loop, &s, SRV_KEEP));
	c = client_conn(&loop, &cl, url, NULL, 5000);
	strcat(url, "/v1/x?y=1");
	for (i = 0; i < 5; i++) {
		get(&loop, c, &cl, url);
		cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
		cr_assert_eq(cl.r.status, 200);
		cr_assert_eq(cl.r.connects, i == 0 ? 1 : 0);
		cr_assert_eq(cl.b.len, 5);
		cr_assert_eq(memcmp(cl.b.buf, "hello", 5), 0);
	}
	cr_assert_eq(s.accepted, 1);
	cr_assert_eq(s.requests, 5);
	/* Another origin's URL is refused, nothing sent. */
	cr_assert_eq(kz_bh_send(c, "GET", "http://127.0.0.2:1/", NULL, NULL, 0,
				0),
		     KZ_BH_E_URL);
	finish_loop(&loop, c, &s.listener);
}

Test(client_bench_http, connection_close_means_a_new_connection)
{
	uv_loop_t loop;
	srv s;
	client cl;
	char url[64];
	kz_bh_conn *c;
	int i;

	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
		 srv_start(&loop, &s, SRV_CLOSE));
	c = client_conn(&loop, &cl, url, NULL, 5000);
	for (i = 0; i < 3; i++) {
		get(&loop, c, &cl, url);
		cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
		cr_assert_eq(cl.r.connects, 1);
		cr_assert_eq(cl.b.len, 5);
	}
	cr_assert_eq(s.accepted, 3);
	finish_loop(&loop, c, &s.listener);
}

Test(client_bench_http, chunked_answer_over_the_wire)
{
	uv_loop_t loop;
	srv s;
	client cl;
	char url[64];
	kz_bh_conn *c;

	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
		 srv_start(&loop, &s, SRV_CHUNKED));
	c = client_conn(&loop, &cl, url, NULL, 5000);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
	cr_assert_eq(cl.r.connects, 0);
	cr_assert_eq(cl.b.len, 5);
	cr_assert_eq(memcmp(cl.b.buf, "hello", 5), 0);
	finish_loop(&loop, c, &s.listener);
}

/* A kept connection the server dropped when the request came (without
 * answering a byte): sent once more on a new one, as libcurl does. */
Test(client_bench_http, dropped_kept_connection_is_retried_once)
{
	uv_loop_t loop;
	srv s;
	client cl;
	char url[64];
	kz_bh_conn *c;

	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
		 srv_start(&loop, &s, SRV_DROP_2ND));
	c = client_conn(&loop, &cl, url, NULL, 5000);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
	cr_assert_eq(cl.r.status, 200);
	cr_assert_eq(cl.r.connects, 1);
	cr_assert_eq(s.accepted, 2);
	cr_assert_eq(s.requests, 3);
	finish_loop(&loop, c, &s.listener);
}

Test(client_bench_http, silent_server_times_out)
{
	uv_loop_t loop;
	srv s;
	client cl;
	char url[64];
	kz_bh_conn *c;
	uint64_t t0;

	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
		 srv_start(&loop, &s, SRV_SILENT));
	c = client_conn(&loop, &cl, url, NULL, 200);
	t0 = uv_hrtime();
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_E_TIMEOUT);
	cr_assert_geq(uv_hrtime() - t0, 190 * 1000000ull);
	cr_assert(strstr(cl.msg, "request timed out") != NULL, "%s", cl.msg);
	finish_loop(&loop, c, &s.listener);
}

Test(client_bench_http, refused_connection)
{
	uv_loop_t loop;
	srv s;
	client cl;
	char url[64];
	kz_bh_conn *c;
	int port;

	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	/* A port just freed: nothing listens there. */
	port = srv_start(&loop, &s, SRV_KEEP);
	uv_close((uv_handle_t *)&s.listener, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	c = client_conn(&loop, &cl, url, NULL, 2000);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_E_CONNECT, "%d %s", cl.r.err, cl.msg);
	cr_assert_eq(cl.r.connects, 0); /* none was made */
	cr_assert_not(kz_bh_err_local(cl.r.err));
	/* An abort with nothing in flight, and a request given up. */
	kz_bh_abort(c);
	cr_assert_eq(kz_bh_send(c, "GET", url, NULL, NULL, 0, 0), KZ_BH_OK);
	kz_bh_abort(c);
	spin(&loop, 20);
	cr_assert_eq(cl.done, 1);
	finish_loop(&loop, c, NULL);
}

Test(client_bench_http, bad_urls)
{
	uv_loop_t loop;
	kz_bh_conn_opts o;
	kz_bh_conn *c;
	char err[256];
	static const char *const bad[] = {
	    "ftp://127.0.0.1/", "http://", "http://:80", "http://h:99999",
	    "http://h:8x", "http://u@h/", "http://[::1", "https://h:1",
	};
	size_t i;
	uv_loop_init(&loop);
	memset(&o, 0, sizeof(o));
	o.loop = &loop;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.url = bad[i];
		err[0] = '\0';
		/* (https without an identity is refused too) */
		cr_assert_eq(kz_bh_conn_new(&o, &c, err, sizeof(err)),
			     KZ_BH_E_URL, "%s", bad[i]);
		cr_assert_null(c);
		cr_assert_str_not_empty(err);
	}
	o.url = "http://[::1]:8080/base";
	cr_assert_eq(kz_bh_conn_new(&o, &c, err, sizeof(err)), KZ_BH_OK, "%s",
		     err);
	finish_loop(&loop, c, NULL);
}

/* ---- TLS against a server thread ------------------------------------------------------------ */

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	cr_assert_not_null(k);
	return k;
}

/* A certificate for cn signed by (ca, cakey), or self-signed when ca is
 * NULL; san: "IP:..." or "DNS:..." or NULL. */
static X509 *new_cert(const char *cn, EVP_PKEY *key, X509 *ca,
		      EVP_PKEY *cakey, const char *san, int is_ca)
{
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	static long serial = 1;
	cr_assert_not_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, ca != NULL ? X509_get_subject_name(ca)
					   : X509_get_subject_name(x));
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, ca != NULL ? ca : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
				  is_ca ? "critical,CA:TRUE"
					: "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (is_ca) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
					  "critical,keyCertSign,cRLSign");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (san != NULL) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	cr_assert(X509_sign(x, ca != NULL ? cakey : key, EVP_sha256()) > 0);
	return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	if (x != NULL)
		PEM_write_X509(f, x);
	if (k != NULL)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

typedef struct tls_srv {
	SSL_CTX *ctx;
	int fd;
	int port;
	int rounds;        /* connections to serve */
	char client_cn[64]; /* of the last client certificate */
	int handshakes_ok;
} tls_srv;

/* Serves s->rounds connections: each handshake, then one request
 * answered with a chunked body, then the next on the same connection
 * until the client closes. */
static void *tls_srv_run(void *arg)
{
	tls_srv *s = arg;
	int r;
	for (r = 0; r < s->rounds; r++) {
		int fd = accept(s->fd, NULL, NULL);
		SSL *ssl;
		char buf[4096];
		size_t len = 0;
		if (fd < 0)
			break;
		ssl = SSL_new(s->ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1) {
			X509 *peer = SSL_get1_peer_certificate(ssl);
			s->handshakes_ok++;
			if (peer != NULL) {
				X509_NAME_get_text_by_NID(
				    X509_get_subject_name(peer), NID_commonName,
				    s->client_cn, sizeof(s->client_cn));
				X509_free(peer);
			}
			for (;;) {
				int n = SSL_read(ssl, buf + len,
						 (int)(sizeof(buf) - len));
				char *end;
				if (n <= 0)
					break;
				len += (size_t)n;
				while ((end = memmem(buf, len, "\r\n\r\n", 4)) !=
				       NULL) {
					static const char resp[] =
					    "HTTP/1.1 200 OK\r\n"
					    "Transfer-Encoding: chunked\r\n\r\n"
					    "2\r\nok\r\n0\r\n\r\n";
					size_t used = (size_t)(end + 4 - buf);
					memmove(buf, buf + used, len - used);
					len -= used;
					SSL_write(ssl, resp, sizeof(resp) - 1);
				}
			}
		}
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

typedef struct pki {
	char dir[64];
	char ca[128], srv_other[128], client[128], client_key[128];
	EVP_PKEY *cakey, *srvkey;
	X509 *ca_x, *srv_x, *srv_other_x;
} pki;

static void make_pki(pki *p)
{
	EVP_PKEY *ck = new_key();
	X509 *cx;
	snprintf(p->dir, sizeof(p->dir), "/tmp/kz-bh-test-XXXXXX");
	cr_assert_not_null(mkdtemp(p->dir));
	p->cakey = new_key();
	p->srvkey = new_key();
	p->ca_x = new_cert("test-ca", p->cakey, NULL, NULL, NULL, 1);
	p->srv_x = new_cert("node", p->srvkey, p->ca_x, p->cakey,
			    "IP:127.0.0.1", 0);
	p->srv_other_x = new_cert("node", p->srvkey, p->ca_x, p->cakey,
				  "IP:127.0.0.2", 0);
	cx = new_cert("registrar", ck, p->ca_x, p->cakey, NULL, 0);
	snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
	snprintf(p->client, sizeof(p->client), "%s/client.pem", p->dir);
	snprintf(p->client_key, sizeof(p->client_key), "%s/client.key", p->dir);
	write_pem(p->ca, p->ca_x, NULL);
	write_pem(p->client, cx, NULL);
	write_pem(p->client_key, NULL, ck);
	X509_free(cx);
	EVP_PKEY_free(ck);
}

static void free_pki(pki *p)
{
	char cmd[128];
	X509_free(p->ca_x);
	X509_free(p->srv_x);
	X509_free(p->srv_other_x);
	EVP_PKEY_free(p->cakey);
	EVP_PKEY_free(p->srvkey);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
	cr_assert_eq(system(cmd), 0);
}

static void tls_srv_start(tls_srv *s, pki *p, X509 *cert, int rounds,
			  pthread_t *th)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	X509_STORE *st;
	memset(s, 0, sizeof(*s));
	s->ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_min_proto_version(s->ctx, TLS1_3_VERSION);
	cr_assert_eq(SSL_CTX_use_certificate(s->ctx, cert), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey(s->ctx, p->srvkey), 1);
	st = SSL_CTX_get_cert_store(s->ctx);
	X509_STORE_add_cert(st, p->ca_x);
	SSL_CTX_set_verify(s->ctx,
			   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	s->rounds = rounds;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->fd, 8), 0);
	getsockname(s->fd, (struct sockaddr *)&a, &al);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(th, NULL, tls_srv_run, s), 0);
}

static void tls_srv_stop(tls_srv *s, pthread_t th)
{
	shutdown(s->fd, SHUT_RDWR);
	pthread_join(th, NULL);
	close(s->fd);
	SSL_CTX_free(s->ctx);
}

Test(client_bench_http, tls_verified_with_a_client_certificate)
{
	pki p;
	tls_srv s;
	pthread_t th;
	uv_loop_t loop;
	client cl;
	char url[64];
	kz_bh_tls *tls;
	kz_bh_conn *c;

	make_pki(&p);
	tls_srv_start(&s, &p, p.srv_x, 1, &th);
	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	tls = kz_bh_tls_new(p.ca, p.client, p.client_key);
	cr_assert_not_null(tls);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/v1/x", s.port);
	c = client_conn(&loop, &cl, url, tls, 5000);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
	cr_assert_eq(cl.r.status, 200);
	cr_assert_eq(cl.r.connects, 1);
	cr_assert_eq(cl.b.len, 2);
	get(&loop, c, &cl, url); /* on the same connection */
	cr_assert_eq(cl.r.err, KZ_BH_OK, "%s", cl.msg);
	cr_assert_eq(cl.r.connects, 0);
	cr_assert_str_eq(s.client_cn, "registrar");
	finish_loop(&loop, c, NULL);
	tls_srv_stop(&s, th);
	kz_bh_tls_free(tls);
	free_pki(&p);
}

Test(client_bench_http, tls_server_for_another_address_is_refused)
{
	pki p;
	tls_srv s;
	pthread_t th;
	uv_loop_t loop;
	client cl;
	char url[64];
	kz_bh_tls *tls;
	kz_bh_conn *c;

	make_pki(&p);
	tls_srv_start(&s, &p, p.srv_other_x, 1, &th);
	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	tls = kz_bh_tls_new(p.ca, p.client, p.client_key);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
	c = client_conn(&loop, &cl, url, tls, 5000);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_E_VERIFY, "%d %s", cl.r.err, cl.msg);
	cr_assert_not(kz_bh_err_local(cl.r.err));
	finish_loop(&loop, c, NULL);
	tls_srv_stop(&s, th);
	kz_bh_tls_free(tls);
	free_pki(&p);
}

Test(client_bench_http, tls_unusable_files_are_local_failures)
{
	pki p;
	tls_srv s;
	pthread_t th;
	uv_loop_t loop;
	client cl;
	char url[64];
	kz_bh_tls *tls;
	kz_bh_conn *c;

	make_pki(&p);
	tls_srv_start(&s, &p, p.srv_x, 2, &th);
	memset(&cl, 0, sizeof(cl));
	uv_loop_init(&loop);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
	/* The CA certificate as the client's, with the client's key. */
	tls = kz_bh_tls_new(p.ca, p.ca, p.client_key);
	c = client_conn(&loop, &cl, url, tls, 5000);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_E_CERT, "%d %s", cl.r.err, cl.msg);
	cr_assert(kz_bh_err_local(cl.r.err));
	kz_bh_conn_free(c);
	kz_bh_tls_free(tls);
	/* A CA file that is not one. */
	tls = kz_bh_tls_new(p.client_key, p.client, p.client_key);
	c = client_conn(&loop, &cl, url, tls, 5000);
	get(&loop, c, &cl, url);
	cr_assert_eq(cl.r.err, KZ_BH_E_CACERT, "%d %s", cl.r.err, cl.msg);
	cr_assert(kz_bh_err_local(cl.r.err));
	finish_loop(&loop, c, NULL);
	tls_srv_stop(&s, th);
	kz_bh_tls_free(tls);
	free_pki(&p);
}
