/*
 * curl_local.h — what libkizuna and kizuna-bench both need to know about
 * libcurl errors (internal to client/).
 */
#ifndef KZ_CLI_CURL_LOCAL_H
#define KZ_CLI_CURL_LOCAL_H

#include <curl/curl.h>

/* libcurl failures that are local: every endpoint, and every later request,
 * would fail the same way (bad option, certificate files, memory), so
 * failing over or retrying cannot help. */
static inline int kz_cli__curl_local(CURLcode cc)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_READ_ERROR:
		return 1;
	default:
		return 0;
	}
}

/* Sets an option unless an earlier one failed: one check after a run. */
#define KZ_CLI__SETOPT(cc, h, opt, val)                                         \
	do {                                                                    \
		if ((cc) == CURLE_OK)                                           \
			(cc) = curl_easy_setopt((h), (opt), (val));             \
	} while (0)

#endif
