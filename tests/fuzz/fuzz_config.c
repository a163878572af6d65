/*
 * fuzz_config.c — libFuzzer driver for kizunad's configuration file parser
 * (node/config.h): the input is written to a file in a private temp
 * directory (fuzz_util.h) and read by kz_node_config_load over the
 * defaults, then the result goes through kz_node_config_check.
 *
 * Properties checked: every string field of the result is NUL-terminated
 * within its array (nothing was copied past a field), a failed load or check
 * leaves a message, a checked configuration names itself among its members,
 * and the member count stays within KZ_CONS_MAX_PEERS.
 * Seeds: tests/fuzz/corpus/config/.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fuzz_util.h"

#define CONFIG_TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[320];
    if (path[0] == '\0')
        snprintf(path, sizeof path, "%s/kizunad.conf",
                 kz_fuzz_tmpdir("config"));
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size);
    FUZZ_CHECK(fclose(f) == 0);

    struct kz_node_config c;
    char err[512];
    kz_node_config_defaults(&c);
    err[0] = '\0';
    int rv = kz_node_config_load(&c, path, err, sizeof err);
    FUZZ_CHECK(rv == 0 || (rv == -1 && err[0] != '\0'));

    FUZZ_CHECK(CONFIG_TERMINATED(c.region) && CONFIG_TERMINATED(c.data_dir) &&
               CONFIG_TERMINATED(c.api_listen) &&
               CONFIG_TERMINATED(c.raft_listen) &&
               CONFIG_TERMINATED(c.tls_cert) && CONFIG_TERMINATED(c.tls_key) &&
               CONFIG_TERMINATED(c.tls_ca) &&
               CONFIG_TERMINATED(c.municipality));
    FUZZ_CHECK(c.n_members <= KZ_CONS_MAX_PEERS);
    for (unsigned i = 0; i < c.n_members; i++)
        FUZZ_CHECK(CONFIG_TERMINATED(c.members[i].region) &&
                   CONFIG_TERMINATED(c.members[i].raft_addr) &&
                   CONFIG_TERMINATED(c.members[i].api_addr));

    err[0] = '\0';
    if (kz_node_config_check(&c, err, sizeof err) == 0)
        FUZZ_CHECK(kz_node_config_self(&c) != NULL && c.id != 0);
    else
        FUZZ_CHECK(err[0] != '\0');
    return 0;
}
