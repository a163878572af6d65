/*
 * libkizuna failover, against loopback only: ports bound but not listening
 * (connection refused), and a tiny scripted HTTP/1.1 server in a thread that
 * answers 200, answers 503, or reads the request and hangs up. Plain http://
 * here; mutual TLS is exercised by the integration tests with real nodes.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kizuna.h"

enum fake_mode { FAKE_OK, FAKE_503, FAKE_HANG_UP, FAKE_503_TIMEOUT, FAKE_412 };

typedef struct fake_srv {
	enum fake_mode mode;
	int lfd;
	int port;
	int stop[2];
	pthread_t thread;
	atomic_int requests;
	char last[8192]; /* last request, headers and body; read after stop */
} fake_srv;

static const char ok_body[] = "{\"id\":\"v-1\",\"version\":42}";
/* no_leader: refused before anything was proposed, so even a register call
 * may go on to the next node (unlike timeout / no_quorum, see below). */
static const char busy_body[] = "{\"error\":{\"code\":\"no_leader\",\"message\":"
				"\"no quorum reachable\",\"request_id\":\"r-1\"}}";
static const char timeout_body[] = "{\"error\":{\"code\":\"timeout\",\"message\":"
				   "\"outcome unknown\",\"request_id\":\"r-2\"}}";
static const char mismatch_body[] = "{\"error\":{\"code\":\"version_mismatch\","
				    "\"message\":\"version is 9\",\"request_id\":\"r-3\"}}";

/* A loopback port with nothing listening: connect() is refused. The socket
 * stays bound so no one else takes the port during the test. */
static int closed_port(int *fd_out)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*fd_out = fd;
	return ntohs(a.sin_port);
}

/* Reads one request (headers and Content-Length body) into s->last. */
static int read_request(fake_srv *s, int fd)
{
	size_t len = 0, need = 0;
	char *end = NULL;
	for (;;) {
		ssize_t n;
		if (len + 1 >= sizeof(s->last))
			return -1;
		n = read(fd, s->last + len, sizeof(s->last) - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		s->last[len] = '\0';
		if (end == NULL && (end = strstr(s->last, "\r\n\r\n")) != NULL) {
			const char *cl = strcasestr(s->last, "\r\nContent-Length:");
			need = (size_t)(end + 4 - s->last);
			if (cl != NULL && cl < end)
				need += strtoul(cl + 17, NULL, 10);
		}
		if (end != NULL && len >= need)
			return 0;
	}
}

static void respond(int fd, int status, const char *reason,
		    const char *extra, const char *body)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			 "%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 status, reason, extra, strlen(body), body);
	ssize_t w = write(fd, buf, (size_t)n); /* no asserts off the main thread */
	(void)w;
}

static void *fake_main(void *arg)
{
	fake_srv *s = arg;
	for (;;) {
		struct pollfd p[2] = {{s->lfd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};
		int fd;
		if (poll(p, 2, -1) < 0 || (p[1].revents & POLLIN))
			break;
		fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (read_request(s, fd) == 0) {
			atomic_fetch_add(&s->requests, 1);
			if (s->mode == FAKE_OK)
				respond(fd, 200, "OK",
					"X-Kizuna-Node: 2\r\nX-Kizuna-Region: osaka\r\n"
					"X-Request-Id: 5eed0123abcd4567\r\n"
					"X-Kizuna-Index: 42\r\nX-Kizuna-Stale-Ms: 17\r\n",
					ok_body);
			else if (s->mode == FAKE_503)
				respond(fd, 503, "Service Unavailable",
					"Retry-After: 0\r\nX-Kizuna-Node: 1\r\n",
					busy_body);
			else if (s->mode == FAKE_503_TIMEOUT)
				respond(fd, 503, "Service Unavailable",
					"Retry-After: 0\r\n", timeout_body);
			else if (s->mode == FAKE_412)
				respond(fd, 412, "Precondition Failed", "",
					mismatch_body);
			/* FAKE_HANG_UP: close without a word */
		}
		close(fd);
	}
	return NULL;
}

static void fake_start(fake_srv *s, enum fake_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->port = closed_port(&s->lfd);
	cr_assert_eq(listen(s->lfd, 16), 0);
	cr_assert_eq(pipe(s->stop), 0);
	atomic_init(&s->requests, 0);
	cr_assert_eq(pthread_create(&s->thread, NULL, fake_main, s), 0);
}

static int fake_stop(fake_srv *s)
{
	cr_assert_eq(write(s->stop[1], "x", 1), 1);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	close(s->stop[0]);
	close(s->stop[1]);
	return atomic_load(&s->requests);
}

static kz_cli *open_client(int port1, int port2, long deadline_ms,
			   const char *purpose)
{
	char spec[128], err[256];
	kz_cli_opts o;
	kz_cli *cli;
	snprintf(spec, sizeof(spec), "http://127.0.0.1:%d,http://127.0.0.1:%d",
		 port1, port2);
	memset(&o, 0, sizeof(o));
	o.endpoints = spec;
	o.deadline_ms = deadline_ms;
	o.purpose = purpose;
	cr_assert_eq(kz_cli_open(&o, &cli, err, sizeof(err)), KZ_CLI_OK, "%s", err);
	return cli;
}

Test(client_failover, all_unreachable_within_deadline)
{
	int fd1, fd2;
	kz_cli *cli = open_client(closed_port(&fd1), closed_port(&fd2), 300, NULL);
	kz_cli_response r;

	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/cluster", NULL, NULL, 0, &r),
		     KZ_CLI_EUNREACHABLE);
	cr_assert_null(r.body);
	cr_assert_not_null(strstr(kz_cli_errmsg(cli), "no endpoint reachable"),
			   "%s", kz_cli_errmsg(cli));
	/* Nothing was sent, so even a POST is simply unreachable. */
	cr_assert_eq(kz_cli_request(cli, "POST", "/v1/victims", NULL, "{}", 2, &r),
		     KZ_CLI_EUNREACHABLE);
	kz_cli_close(cli);
	close(fd1);
	close(fd2);
}

Test(client_failover, refused_then_next_endpoint_and_remembered)
{
	fake_srv s;
	int fd;
	kz_cli *cli;
	kz_cli_response r;

	fake_start(&s, FAKE_OK);
	cli = open_client(closed_port(&fd), s.port, 5000, "caseworker lookup");
	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/victims/v-1", NULL, NULL, 0, &r),
		     KZ_CLI_OK, "%s", kz_cli_errmsg(cli));
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.endpoint, 1);
	cr_assert_eq(r.attempts, 2);
	cr_assert_str_eq(r.body, ok_body);
	cr_assert_eq(r.body_len, strlen(ok_body));
	cr_assert_str_eq(r.node, "2");
	cr_assert_str_eq(r.region, "osaka");
	cr_assert_str_eq(r.request_id, "5eed0123abcd4567");
	cr_assert_eq(r.index, 42);
	cr_assert_eq(r.stale_ms, 17);
	cr_assert_eq(r.retry_after_s, -1);
	kz_cli_response_free(&r);
	cr_assert_null(r.body);
	cr_assert_eq(kz_cli_current_endpoint(cli), 1);

	/* The next call goes straight to the endpoint that answered. */
	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/victims/v-1", NULL, NULL, 0, &r),
		     KZ_CLI_OK);
	cr_assert_eq(r.attempts, 1);
	kz_cli_response_free(&r);
	kz_cli_close(cli);
	close(fd);
	cr_assert_eq(fake_stop(&s), 2);
	cr_assert_not_null(strstr(s.last, "\r\nX-Purpose: caseworker lookup\r\n"),
			   "X-Purpose from the options");
}

Test(client_failover, unavailable_then_next_endpoint)
{
	fake_srv busy, ok;
	kz_cli *cli;
	kz_cli_response r;

	fake_start(&busy, FAKE_503);
	fake_start(&ok, FAKE_OK);
	cli = open_client(busy.port, ok.port, 5000, NULL);
	cr_assert_eq(kz_cli_request(cli, "POST", "/v1/victims", NULL, "{\"a\":1}", 7,
				    &r),
		     KZ_CLI_OK, "%s", kz_cli_errmsg(cli));
	cr_assert_eq(r.status, 200, "a 503 is not the answer while a node can serve");
	cr_assert_eq(r.endpoint, 1);
	kz_cli_response_free(&r);
	kz_cli_close(cli);
	cr_assert_eq(fake_stop(&busy), 1);
	cr_assert_eq(fake_stop(&ok), 1);
	cr_assert_not_null(strstr(ok.last, "\r\nContent-Type: application/json\r\n"));
	cr_assert_not_null(strstr(ok.last, "\r\n\r\n{\"a\":1}"), "body delivered");
	cr_assert_null(strstr(ok.last, "X-Purpose"), "no purpose configured");
}

Test(client_failover, all_unavailable_returns_last_503)
{
	fake_srv a, b;
	kz_cli *cli;
	kz_cli_response r;
	char desc[256];

	fake_start(&a, FAKE_503);
	fake_start(&b, FAKE_503);
	cli = open_client(a.port, b.port, 400, NULL);
	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/cluster", NULL, NULL, 0, &r),
		     KZ_CLI_OK);
	cr_assert_eq(r.status, 503);
	cr_assert_eq(r.retry_after_s, 0);
	cr_assert_str_eq(kz_cli_error_describe(&r, desc, sizeof(desc)),
			 "503 no_leader: no quorum reachable (request r-1)");
	cr_assert_geq(r.attempts, 2);
	kz_cli_response_free(&r);
	kz_cli_close(cli);
	/* Rounds are retried until the deadline: both saw the call, and
	 * together they saw every attempt. */
	cr_assert_geq(fake_stop(&a), 1);
	cr_assert_geq(fake_stop(&b), 1);
}

Test(client_failover, unsafe_write_after_hang_up_is_in_doubt)
{
	fake_srv gone, ok;
	kz_cli *cli;
	kz_cli_response r;

	fake_start(&gone, FAKE_HANG_UP);
	fake_start(&ok, FAKE_OK);
	cli = open_client(gone.port, ok.port, 5000, NULL);
	cr_assert_eq(kz_cli_request(cli, "POST", "/v1/victims", NULL, "{}", 2, &r),
		     KZ_CLI_EINDOUBT, "a register call is never sent twice");
	cr_assert_null(r.body);
	cr_assert_not_null(strstr(kz_cli_errmsg(cli), "may or may not"));
	kz_cli_close(cli);
	cr_assert_eq(fake_stop(&gone), 1);
	cr_assert_eq(fake_stop(&ok), 0, "the write went to one node only");
}

Test(client_failover, safe_calls_after_hang_up_fail_over)
{
	fake_srv gone, ok;
	kz_cli *cli;
	kz_cli_response r;
	const char *idem[] = {"Idempotency-Key: k-1", NULL};
	const char *cas[] = {"If-Match: 7", "X-Purpose: override", NULL};

	fake_start(&gone, FAKE_HANG_UP);
	fake_start(&ok, FAKE_OK);
	cli = open_client(gone.port, ok.port, 5000, "cli");

	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/victims/v-1", NULL, NULL, 0, &r),
		     KZ_CLI_OK, "%s", kz_cli_errmsg(cli));
	cr_assert_eq(r.status, 200);
	kz_cli_response_free(&r);

	/* Back to the first endpoint for the next two. */
	kz_cli_close(cli);
	cli = open_client(gone.port, ok.port, 5000, "cli");
	cr_assert_eq(kz_cli_request(cli, "POST", "/v1/payouts", idem, "{}", 2, &r),
		     KZ_CLI_OK, "%s", kz_cli_errmsg(cli));
	cr_assert_eq(r.status, 200);
	kz_cli_response_free(&r);

	kz_cli_close(cli);
	cli = open_client(gone.port, ok.port, 5000, "cli");
	cr_assert_eq(kz_cli_request(cli, "PATCH", "/v1/victims/v-1", cas, "{}", 2, &r),
		     KZ_CLI_OK, "%s", kz_cli_errmsg(cli));
	kz_cli_response_free(&r);
	kz_cli_close(cli);

	cr_assert_eq(fake_stop(&gone), 3);
	cr_assert_eq(fake_stop(&ok), 3);
	cr_assert_not_null(strstr(ok.last, "PATCH /v1/victims/v-1 HTTP/1.1\r\n"));
	cr_assert_not_null(strstr(ok.last, "\r\nX-Purpose: override\r\n"));
	cr_assert_null(strstr(ok.last, "X-Purpose: cli"),
		       "the caller's X-Purpose wins, no duplicate");
}

/* A 503 that says "the outcome is unknown" is as good as a lost connection:
 * an unsafe write stops there instead of being sent to the next node. */
Test(client_failover, unsafe_write_after_503_timeout_is_in_doubt)
{
	fake_srv busy, ok;
	kz_cli *cli;
	kz_cli_response r;

	fake_start(&busy, FAKE_503_TIMEOUT);
	fake_start(&ok, FAKE_OK);
	cli = open_client(busy.port, ok.port, 5000, NULL);
	cr_assert_eq(kz_cli_request(cli, "POST", "/v1/victims", NULL, "{}", 2, &r),
		     KZ_CLI_EINDOUBT);
	cr_assert_not_null(strstr(kz_cli_errmsg(cli), "may or may not"));
	kz_cli_close(cli);
	cr_assert_eq(fake_stop(&busy), 1);
	cr_assert_eq(fake_stop(&ok), 0, "the write was not sent twice");

	/* A read after the same 503 still fails over. */
	fake_start(&busy, FAKE_503_TIMEOUT);
	fake_start(&ok, FAKE_OK);
	cli = open_client(busy.port, ok.port, 5000, NULL);
	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/victims/v-1", NULL, NULL, 0, &r),
		     KZ_CLI_OK);
	cr_assert_eq(r.status, 200);
	kz_cli_response_free(&r);
	kz_cli_close(cli);
	fake_stop(&busy);
	fake_stop(&ok);
}

/* A compare-and-set retried after an attempt that may have been applied:
 * its 412 may come from its own first attempt, so it is not "refused". */
Test(client_failover, conditional_write_412_after_doubt_is_in_doubt)
{
	const enum fake_mode first[] = {FAKE_HANG_UP, FAKE_503_TIMEOUT};
	const char *cas[] = {"If-Match: 7", NULL};
	for (size_t i = 0; i < 2; i++) {
		fake_srv a, b;
		kz_cli *cli;
		kz_cli_response r;
		fake_start(&a, first[i]);
		fake_start(&b, FAKE_412);
		cli = open_client(a.port, b.port, 5000, NULL);
		cr_assert_eq(kz_cli_request(cli, "PATCH", "/v1/victims/v-1", cas,
					    "{}", 2, &r),
			     KZ_CLI_EINDOUBT, "first endpoint mode %d", first[i]);
		cr_assert_not_null(strstr(kz_cli_errmsg(cli), "outcome is unknown"));
		kz_cli_close(cli);
		cr_assert_eq(fake_stop(&a), 1);
		cr_assert_eq(fake_stop(&b), 1);
	}
	/* Without an earlier attempt in doubt, 412 is the answer. */
	fake_srv c, d;
	kz_cli *cli;
	kz_cli_response r;
	fake_start(&c, FAKE_412);
	fake_start(&d, FAKE_OK);
	cli = open_client(c.port, d.port, 5000, NULL);
	cr_assert_eq(kz_cli_request(cli, "PATCH", "/v1/victims/v-1", cas, "{}", 2,
				    &r),
		     KZ_CLI_OK);
	cr_assert_eq(r.status, 412);
	kz_cli_response_free(&r);
	kz_cli_close(cli);
	fake_stop(&c);
	cr_assert_eq(fake_stop(&d), 0);
}

Test(client_failover, retry_unsafe_option)
{
	fake_srv gone, ok;
	char spec[128], err[256];
	kz_cli_opts o;
	kz_cli *cli;
	kz_cli_response r;

	fake_start(&gone, FAKE_HANG_UP);
	fake_start(&ok, FAKE_OK);
	snprintf(spec, sizeof(spec), "http://127.0.0.1:%d,http://127.0.0.1:%d",
		 gone.port, ok.port);
	memset(&o, 0, sizeof(o));
	o.endpoints = spec;
	o.retry_unsafe = 1;
	cr_assert_eq(kz_cli_open(&o, &cli, err, sizeof(err)), KZ_CLI_OK);
	cr_assert_eq(kz_cli_request(cli, "POST", "/v1/victims", NULL, "{}", 2, &r),
		     KZ_CLI_OK, "%s", kz_cli_errmsg(cli));
	cr_assert_eq(r.status, 200);
	kz_cli_response_free(&r);
	kz_cli_close(cli);
	cr_assert_eq(fake_stop(&gone), 1);
	cr_assert_eq(fake_stop(&ok), 1);
}
