/*
 * fuzz_endpoints.c — libFuzzer driver for the client library's endpoints
 * parsers (client/kizuna.h): the text of an endpoints file, and, when the
 * input looks like one ("://" in it), a comma-separated URL list as given
 * on the command line. A spec without "://" would be opened as a file path,
 * so the driver never passes one to kz_cli_endpoints_parse.
 *
 * Properties checked: success gives n >= 1 endpoints whose URLs start with
 * http:// or https://, hold no byte <= ' ' and end in no '/', with node id
 * and region set for the file form; failure gives NULL, 0 and a message.
 * Seeds: tests/fuzz/corpus/endpoints/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_util.h"
#include "kizuna.h"

static void endpoints_check(int rc, kz_cli_endpoint *eps, size_t n,
                            const char *err, int file_form)
{
    if (rc != KZ_CLI_OK) {
        FUZZ_CHECK(rc == KZ_CLI_EINVAL || rc == KZ_CLI_ENOMEM);
        FUZZ_CHECK(eps == NULL && n == 0 && err[0] != '\0');
        return;
    }
    FUZZ_CHECK(eps != NULL && n >= 1);
    for (size_t i = 0; i < n; i++) {
        const char *u = eps[i].url;
        size_t len = strlen(u);
        FUZZ_CHECK(strncasecmp(u, "http://", 7) == 0 ||
                   strncasecmp(u, "https://", 8) == 0);
        FUZZ_CHECK(u[len - 1] != '/');
        for (size_t k = 0; k < len; k++)
            FUZZ_CHECK((unsigned char)u[k] > ' ');
        if (file_form)
            FUZZ_CHECK(eps[i].node_id != NULL && eps[i].node_id[0] != '\0' &&
                       eps[i].region != NULL && eps[i].region[0] != '\0');
    }
    kz_cli_endpoints_free(eps, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    kz_cli_endpoint *eps = (kz_cli_endpoint *)text; /* must become NULL */
    size_t n = 99;
    char err[256] = "";
    int rc = kz_cli_endpoints_parse_text(text, &eps, &n, err, sizeof err);
    endpoints_check(rc, eps, n, err, 1);

    if (strstr(text, "://") != NULL) {
        eps = (kz_cli_endpoint *)text;
        n = 99;
        err[0] = '\0';
        rc = kz_cli_endpoints_parse(text, &eps, &n, err, sizeof err);
        endpoints_check(rc, eps, n, err, 0);
    }
    free(text);
    return 0;
}
