/*
 * libkizuna: endpoints files and URL lists, client options checked at open,
 * and the small helpers (percent-encoding, error descriptions). No network.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kizuna.h"

static char errmsg[256];

Test(client_endpoints, file_text_with_comments_and_blanks)
{
	const char *text = "# Kizuna dev cluster\n"
			   "\n"
			   "https://127.0.0.11:8443 1 tokyo\n"
			   "   \t\n"
			   "  https://127.0.0.12:8443/   2   tokyo   # trailing comment\r\n"
			   "https://127.0.0.13:8443 3 osaka";
	kz_cli_endpoint *eps;
	size_t n;

	cr_assert_eq(kz_cli_endpoints_parse_text(text, &eps, &n, errmsg,
						 sizeof(errmsg)),
		     KZ_CLI_OK, "%s", errmsg);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(eps[0].url, "https://127.0.0.11:8443");
	cr_assert_str_eq(eps[0].node_id, "1");
	cr_assert_str_eq(eps[0].region, "tokyo");
	cr_assert_str_eq(eps[1].url, "https://127.0.0.12:8443",
			 "trailing slash dropped");
	cr_assert_str_eq(eps[1].region, "tokyo", "CR and comment not kept");
	cr_assert_str_eq(eps[2].node_id, "3");
	cr_assert_str_eq(eps[2].region, "osaka", "last line without newline");
	kz_cli_endpoints_free(eps, n);
}

static void expect_bad(const char *text, const char *needle)
{
	kz_cli_endpoint *eps = (kz_cli_endpoint *)1;
	size_t n = 99;
	errmsg[0] = '\0';
	cr_assert_eq(kz_cli_endpoints_parse_text(text, &eps, &n, errmsg,
						 sizeof(errmsg)),
		     KZ_CLI_EINVAL, "accepted: %s", text);
	cr_assert_null(eps);
	cr_assert_eq(n, 0);
	cr_assert_not_null(strstr(errmsg, needle), "errmsg '%s' lacks '%s'",
			   errmsg, needle);
}

Test(client_endpoints, bad_lines_are_errors_with_line_numbers)
{
	expect_bad("https://127.0.0.11:8443 1 tokyo\nhttps://127.0.0.12:8443 2\n",
		   "line 2");
	expect_bad("https://127.0.0.11:8443 1 tokyo extra\n", "line 1");
	expect_bad("# c\n\nftp://127.0.0.11 1 tokyo\n", "line 3");
	expect_bad("127.0.0.11:8443 1 tokyo\n", "not an http");
	expect_bad("https:// 1 tokyo\n", "line 1");
	expect_bad("https:///path 1 tokyo\n", "line 1");
	expect_bad("https://127.0.0.11 1 tokyo\nhttps://127.0.0.11/ 2 osaka\n",
		   "duplicate");
	expect_bad("# nothing here\n\n   \n", "no endpoint");
	expect_bad("", "no endpoint");
}

Test(client_endpoints, url_list)
{
	kz_cli_endpoint *eps;
	size_t n;
	cr_assert_eq(kz_cli_endpoints_parse(
			     "http://127.0.0.1:1, HTTPS://127.0.0.2:2/ ,https://localhost:3",
			     &eps, &n, errmsg, sizeof(errmsg)),
		     KZ_CLI_OK, "%s", errmsg);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(eps[0].url, "http://127.0.0.1:1");
	cr_assert_str_eq(eps[1].url, "HTTPS://127.0.0.2:2");
	cr_assert_str_eq(eps[2].url, "https://localhost:3");
	cr_assert_null(eps[0].node_id);
	cr_assert_null(eps[0].region);
	kz_cli_endpoints_free(eps, n);

	cr_assert_eq(kz_cli_endpoints_parse("http://127.0.0.1:1,,http://127.0.0.1:2",
					    &eps, &n, errmsg, sizeof(errmsg)),
		     KZ_CLI_EINVAL);
	cr_assert_eq(kz_cli_endpoints_parse("http://127.0.0.1:1,http://127.0.0.1:1",
					    &eps, &n, errmsg, sizeof(errmsg)),
		     KZ_CLI_EINVAL);
	cr_assert_eq(kz_cli_endpoints_parse("", &eps, &n, errmsg, sizeof(errmsg)),
		     KZ_CLI_EINVAL);
}

Test(client_endpoints, file_on_disk)
{
	char path[] = "/tmp/kz-endpoints-XXXXXX";
	int fd = mkstemp(path);
	const char *text = "https://127.0.0.11:8443 1 tokyo\n"
			   "https://127.0.0.21:8443 4 sapporo\n";
	kz_cli_endpoint *eps;
	size_t n;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert_eq(kz_cli_endpoints_parse(path, &eps, &n, errmsg, sizeof(errmsg)),
		     KZ_CLI_OK, "%s", errmsg);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(eps[1].region, "sapporo");
	kz_cli_endpoints_free(eps, n);
	unlink(path);

	cr_assert_eq(kz_cli_endpoints_parse(path, &eps, &n, errmsg, sizeof(errmsg)),
		     KZ_CLI_EIO, "a missing file is an I/O error");
	cr_assert_null(eps);
	cr_assert_not_null(strstr(errmsg, path));
}

Test(client_endpoints, open_checks_options)
{
	kz_cli_opts o;
	kz_cli *cli = (kz_cli *)1;
	const kz_cli_endpoint *eps;
	size_t n;

	memset(&o, 0, sizeof(o));
	o.endpoints = "http://127.0.0.1:1 1 tokyo"; /* not a URL list item */
	cr_assert_eq(kz_cli_open(&o, &cli, errmsg, sizeof(errmsg)), KZ_CLI_EINVAL);
	cr_assert_null(cli);

	o.endpoints = "http://127.0.0.1:1,http://127.0.0.1:2";
	o.cacert = "/nonexistent/kizuna/ca.pem";
	cr_assert_eq(kz_cli_open(&o, &cli, errmsg, sizeof(errmsg)), KZ_CLI_EIO);
	cr_assert_null(cli);
	cr_assert_not_null(strstr(errmsg, "CA certificate"));

	o.cacert = NULL;
	o.deadline_ms = -1;
	cr_assert_eq(kz_cli_open(&o, &cli, errmsg, sizeof(errmsg)), KZ_CLI_EINVAL);

	o.deadline_ms = 0;
	cr_assert_eq(kz_cli_open(&o, &cli, errmsg, sizeof(errmsg)), KZ_CLI_OK,
		     "%s", errmsg);
	eps = kz_cli_endpoints(cli, &n);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(eps[1].url, "http://127.0.0.1:2");
	cr_assert_eq(kz_cli_current_endpoint(cli), 0);
	cr_assert_str_eq(kz_cli_errmsg(cli), "");
	kz_cli_close(cli);
}

Test(client_endpoints, request_rejects_bad_arguments)
{
	kz_cli_opts o;
	kz_cli *cli;
	kz_cli_response r;
	const char *bad[] = {"X-Purpose: a\r\nX-Evil: b", NULL};
	const char *noval[] = {"NoColon", NULL};

	memset(&o, 0, sizeof(o));
	o.endpoints = "http://127.0.0.1:1";
	cr_assert_eq(kz_cli_open(&o, &cli, errmsg, sizeof(errmsg)), KZ_CLI_OK);
	cr_assert_eq(kz_cli_request(cli, "GET", "v1/no-slash", NULL, NULL, 0, &r),
		     KZ_CLI_EINVAL);
	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/cluster", bad, NULL, 0, &r),
		     KZ_CLI_EINVAL, "header injection refused");
	cr_assert_eq(kz_cli_request(cli, "GET", "/v1/cluster", noval, NULL, 0, &r),
		     KZ_CLI_EINVAL);
	cr_assert_null(r.body);
	cr_assert_eq(r.index, -1);
	kz_cli_response_free(&r);
	kz_cli_close(cli);
}

Test(client_endpoints, urlencode)
{
	char *s = kz_cli_urlencode("山田 太郎");
	cr_assert_str_eq(s, "%E5%B1%B1%E7%94%B0%20%E5%A4%AA%E9%83%8E");
	free(s);
	s = kz_cli_urlencode("a-b_c.d~Z9");
	cr_assert_str_eq(s, "a-b_c.d~Z9");
	free(s);
	s = kz_cli_urlencode("a&b=c?d/e#f+");
	cr_assert_str_eq(s, "a%26b%3Dc%3Fd%2Fe%23f%2B");
	free(s);
	s = kz_cli_urlencode("");
	cr_assert_str_eq(s, "");
	free(s);
}

Test(client_endpoints, error_describe)
{
	char buf[256];
	char body[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such "
		      "victim\",\"request_id\":\"r-7\"}}";
	char other[] = "<html>bad gateway</html>\nmore";
	kz_cli_response r;

	memset(&r, 0, sizeof(r));
	r.status = 404;
	r.body = body;
	r.body_len = strlen(body);
	cr_assert_str_eq(kz_cli_error_describe(&r, buf, sizeof(buf)),
			 "404 not_found: no such victim (request r-7)");
	r.status = 502;
	r.body = other;
	r.body_len = strlen(other);
	cr_assert_str_eq(kz_cli_error_describe(&r, buf, sizeof(buf)),
			 "502 <html>bad gateway</html>");
	r.body = NULL;
	r.body_len = 0;
	cr_assert_str_eq(kz_cli_error_describe(&r, buf, sizeof(buf)),
			 "502 (no error body)");
	cr_assert_str_eq(kz_cli_error_describe(&r, buf, 8), "502 (no");
}

Test(client_endpoints, strerror_table)
{
	cr_assert_str_eq(kz_cli_strerror(KZ_CLI_OK), "ok");
	cr_assert_str_eq(kz_cli_strerror(KZ_CLI_EUNREACHABLE),
			 "no endpoint reachable");
	cr_assert_str_eq(kz_cli_strerror(12345), "unknown error");
}
