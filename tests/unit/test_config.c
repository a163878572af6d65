/*
 * test_config.c — kizunad settings (node/config): defaults, one setting at a
 * time with its range and format checks, `node` member lines, config files
 * (comments, blank lines, the line number of an error), command-line
 * overrides, and the whole-configuration check.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static char cfgpath[128];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kz_cfg_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(cfgpath, sizeof cfgpath, "%s/kizunad.conf", tmpdir);
}

static void teardown(void)
{
    unlink(cfgpath);
    rmdir(tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_file(const char *text)
{
    FILE *f = fopen(cfgpath, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, 1);
    fclose(f);
}

static void set_ok(struct kz_node_config *c, const char *k, const char *v)
{
    char err[256] = "";
    cr_assert_eq(kz_node_config_set(c, k, v, err, sizeof err), 0,
                 "%s = '%s' refused: %s", k, v, err);
}

/* A value that must be refused, with a message naming the key, and leave
 * the configuration as it was. */
static void set_bad(struct kz_node_config *c, const char *k, const char *v,
                    const char *in_msg)
{
    struct kz_node_config before;
    memcpy(&before, c, sizeof before); /* padding included */
    char err[256] = "";
    cr_assert_eq(kz_node_config_set(c, k, v, err, sizeof err), -1,
                 "%s = '%s' accepted", k, v);
    cr_assert_not_null(strstr(err, in_msg), "%s = '%s': message \"%s\"", k, v,
                       err);
    cr_assert_eq(memcmp(&before, c, sizeof before), 0,
                 "%s = '%s': refused but changed the config", k, v);
}

/* A configuration that passes the check. */
static void valid(struct kz_node_config *c)
{
    kz_node_config_defaults(c);
    set_ok(c, "id", "2");
    set_ok(c, "node", "1 tokyo 127.0.0.1:7301 127.0.0.1:7401");
    set_ok(c, "node", "2 osaka 127.0.0.1:7302 127.0.0.1:7402");
    set_ok(c, "node", "3 sapporo 127.0.0.1:7303 127.0.0.1:7403");
    set_ok(c, "tls_cert", "/etc/kz/node.crt");
    set_ok(c, "tls_key", "/etc/kz/node.key");
    set_ok(c, "tls_ca", "/etc/kz/ca.crt");
    set_ok(c, "master_key_file", "/etc/kz/master.key");
}

static void check_ok(const struct kz_node_config *c)
{
    char err[256] = "";
    cr_assert_eq(kz_node_config_check(c, err, sizeof err), 0, "check: %s",
                 err);
}

static void check_bad(const struct kz_node_config *c, const char *in_msg)
{
    char err[256] = "";
    cr_assert_eq(kz_node_config_check(c, err, sizeof err), -1,
                 "check passed, expected a complaint about %s", in_msg);
    cr_assert_not_null(strstr(err, in_msg), "check message \"%s\"", err);
}

/* ------------------------------------------------------------ defaults */

Test(config, defaults)
{
    struct kz_node_config c;
    memset(&c, 0xa5, sizeof c);
    kz_node_config_defaults(&c);
    cr_assert_eq(c.id, 0);
    cr_assert_str_eq(c.region, "default");
    cr_assert_str_eq(c.data_dir, "var/kizunad");
    cr_assert_str_eq(c.api_listen, "127.0.0.1:7400");
    cr_assert_str_eq(c.raft_listen, "");
    cr_assert_str_eq(c.municipality, "131016");
    cr_assert_str_eq(c.tls_cert, "");
    cr_assert_eq(c.election_timeout_ms, 1000);
    cr_assert_eq(c.heartbeat_timeout_ms, 100);
    cr_assert_eq(c.snapshot_threshold, 32768);
    cr_assert_eq(c.snapshot_trailing, 1024);
    cr_assert_eq(c.request_timeout_ms, 5000);
    cr_assert_eq(c.max_body_bytes, 1u << 20);
    cr_assert_str_eq(c.tls_crl, "");
    cr_assert_eq(c.max_connections, 1024);
    cr_assert_eq(c.tls_handshake_timeout_ms, 5000);
    cr_assert_eq(c.request_header_timeout_ms, 10000);
    cr_assert_eq(c.idle_timeout_ms, 60000);
    cr_assert_eq(c.n_members, 0);
    cr_assert_null(kz_node_config_self(&c));
}

/* -------------------------------------------------------- one setting */

Test(config, set_every_key)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_ok(&c, "id", "4611686018427387904"); /* 2^62, the maximum */
    cr_assert_eq(c.id, 1ull << 62);
    set_ok(&c, "id", "7");
    cr_assert_eq(c.id, 7);
    set_ok(&c, "region", "tohoku");
    cr_assert_str_eq(c.region, "tohoku");
    set_ok(&c, "data_dir", "/var/lib/kizuna");
    cr_assert_str_eq(c.data_dir, "/var/lib/kizuna");
    set_ok(&c, "api_listen", "0.0.0.0:8443");
    cr_assert_str_eq(c.api_listen, "0.0.0.0:8443");
    set_ok(&c, "raft_listen", "[::1]:7300");
    cr_assert_str_eq(c.raft_listen, "[::1]:7300");
    set_ok(&c, "tls_cert", "a.crt");
    set_ok(&c, "tls_key", "a.key");
    set_ok(&c, "tls_ca", "ca.crt");
    cr_assert_str_eq(c.tls_cert, "a.crt");
    cr_assert_str_eq(c.tls_key, "a.key");
    cr_assert_str_eq(c.tls_ca, "ca.crt");
    set_ok(&c, "municipality", "041009");
    cr_assert_str_eq(c.municipality, "041009");
    set_ok(&c, "election_timeout_ms", "50");
    cr_assert_eq(c.election_timeout_ms, 50);
    set_ok(&c, "election_timeout_ms", "600000");
    cr_assert_eq(c.election_timeout_ms, 600000);
    set_ok(&c, "heartbeat_timeout_ms", "10");
    cr_assert_eq(c.heartbeat_timeout_ms, 10);
    set_ok(&c, "snapshot_threshold", "2");
    cr_assert_eq(c.snapshot_threshold, 2);
    set_ok(&c, "snapshot_trailing", "100000000");
    cr_assert_eq(c.snapshot_trailing, 100000000);
    set_ok(&c, "request_timeout_ms", "100");
    cr_assert_eq(c.request_timeout_ms, 100);
    set_ok(&c, "max_body_bytes", "67108864");
    cr_assert_eq(c.max_body_bytes, 64u << 20);
    set_ok(&c, "tls_crl", "/etc/kizuna/crl.pem");
    cr_assert_str_eq(c.tls_crl, "/etc/kizuna/crl.pem");
    set_ok(&c, "max_connections", "1");
    cr_assert_eq(c.max_connections, 1);
    set_ok(&c, "max_connections", "1000000");
    cr_assert_eq(c.max_connections, 1000000);
    set_ok(&c, "tls_handshake_timeout_ms", "100");
    cr_assert_eq(c.tls_handshake_timeout_ms, 100);
    set_ok(&c, "request_header_timeout_ms", "600000");
    cr_assert_eq(c.request_header_timeout_ms, 600000);
    set_ok(&c, "idle_timeout_ms", "3600000");
    cr_assert_eq(c.idle_timeout_ms, 3600000);
}

Test(config, numbers_out_of_range_or_not_numbers)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_bad(&c, "id", "0", "id");
    set_bad(&c, "id", "4611686018427387905", "id");
    set_bad(&c, "id", "-1", "id");
    set_bad(&c, "id", "99999999999999999999999", "id"); /* overflows */
    set_bad(&c, "election_timeout_ms", "49", "election_timeout_ms");
    set_bad(&c, "election_timeout_ms", "600001", "election_timeout_ms");
    set_bad(&c, "election_timeout_ms", "abc", "election_timeout_ms");
    set_bad(&c, "election_timeout_ms", "1000ms", "election_timeout_ms");
    set_bad(&c, "election_timeout_ms", "", "election_timeout_ms");
    set_bad(&c, "election_timeout_ms", "-1000", "election_timeout_ms");
    set_bad(&c, "election_timeout_ms", "1e3", "election_timeout_ms");
    set_bad(&c, "heartbeat_timeout_ms", "9", "heartbeat_timeout_ms");
    set_bad(&c, "heartbeat_timeout_ms", "60001", "heartbeat_timeout_ms");
    set_bad(&c, "snapshot_threshold", "1", "snapshot_threshold");
    set_bad(&c, "snapshot_trailing", "0", "snapshot_trailing");
    set_bad(&c, "request_timeout_ms", "99", "request_timeout_ms");
    set_bad(&c, "max_body_bytes", "1023", "max_body_bytes");
    set_bad(&c, "max_body_bytes", "67108865", "max_body_bytes");
    /* Bigger than unsigned: refused, not wrapped. */
    set_bad(&c, "max_body_bytes", "4294968320", "max_body_bytes");
    cr_assert_eq(c.max_body_bytes, 1u << 20);
    /* 0 would refuse every connection, or time out at once. */
    set_bad(&c, "max_connections", "0", "max_connections");
    set_bad(&c, "max_connections", "1000001", "max_connections");
    set_bad(&c, "tls_handshake_timeout_ms", "99", "tls_handshake_timeout_ms");
    set_bad(&c, "request_header_timeout_ms", "0", "request_header_timeout_ms");
    set_bad(&c, "idle_timeout_ms", "3600001", "idle_timeout_ms");
    cr_assert_eq(c.max_connections, 1024);
}

Test(config, strings_empty_or_too_long)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_bad(&c, "region", "", "region");
    char longv[KZ_NODE_PATH_MAX + 8];
    memset(longv, 'r', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    longv[KZ_CONS_REGION_MAX] = '\0'; /* 32 chars: one too many */
    set_bad(&c, "region", longv, "region");
    longv[KZ_CONS_REGION_MAX - 1] = '\0'; /* 31: fits */
    set_ok(&c, "region", longv);
    cr_assert_eq(strlen(c.region), KZ_CONS_REGION_MAX - 1);

    memset(longv, 'd', sizeof longv - 1);
    longv[KZ_NODE_PATH_MAX] = '\0';
    set_bad(&c, "data_dir", longv, "data_dir");
    set_bad(&c, "tls_cert", longv, "tls_cert");
    longv[KZ_NODE_PATH_MAX - 1] = '\0';
    set_ok(&c, "data_dir", longv);
    set_bad(&c, "municipality", "1234567890123456", "municipality");
}

Test(config, addresses_must_be_host_port)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_bad(&c, "api_listen", "localhost", "api_listen");
    set_bad(&c, "api_listen", ":7400", "api_listen");
    set_bad(&c, "api_listen", "localhost:", "api_listen");
    set_bad(&c, "api_listen", "localhost:0", "api_listen");
    set_bad(&c, "api_listen", "localhost:65536", "api_listen");
    set_bad(&c, "api_listen", "localhost:http", "api_listen");
    set_bad(&c, "api_listen", "localhost:74x", "api_listen");
    set_bad(&c, "api_listen", "localhost:-80", "api_listen");
    set_bad(&c, "raft_listen", "", "raft_listen");
    set_ok(&c, "api_listen", "localhost:1");
    set_ok(&c, "api_listen", "example.org:65534");
}

Test(config, raft_port_leaves_room_for_the_peer_link)
{
    /* The peer link listens on the raft port + 1 (ARCHITECTURE.md), so a
     * raft address on 65535 has no peer-link port. */
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_bad(&c, "raft_listen", "127.0.0.1:65535", "raft_listen");
    set_bad(&c, "node", "1 r 127.0.0.1:65535 127.0.0.1:7400", "node");
    set_ok(&c, "raft_listen", "127.0.0.1:65534");
    set_ok(&c, "node", "1 r 127.0.0.1:65534 127.0.0.1:7400");
}

Test(config, api_port_65535_is_valid)
{
    /* Only raft addresses need port + 1; the HTTPS API may use the highest
     * port. */
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_ok(&c, "api_listen", "127.0.0.1:65535");
    cr_assert_str_eq(c.api_listen, "127.0.0.1:65535");
    set_ok(&c, "node", "1 r 127.0.0.1:7300 127.0.0.1:65535");
}

Test(config, unknown_keys_are_errors)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_bad(&c, "election_timeout", "1000", "election_timeout");
    set_bad(&c, "ID", "1", "ID");
    set_bad(&c, "", "1", "unknown");
    set_bad(&c, "election-timeout-ms", "1000", "election-timeout-ms");
}

/* ------------------------------------------------------------ members */

Test(config, node_lines)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_ok(&c, "node", "1 tokyo 10.0.0.1:7300 10.0.0.1:7400");
    set_ok(&c, "node", "  22   osaka\t10.0.0.2:7300   10.0.0.2:7400  ");
    cr_assert_eq(c.n_members, 2);
    cr_assert_eq(c.members[0].id, 1);
    cr_assert_str_eq(c.members[0].region, "tokyo");
    cr_assert_str_eq(c.members[0].raft_addr, "10.0.0.1:7300");
    cr_assert_str_eq(c.members[0].api_addr, "10.0.0.1:7400");
    cr_assert_eq(c.members[1].id, 22);
    cr_assert_str_eq(c.members[1].region, "osaka");
    cr_assert_str_eq(c.members[1].api_addr, "10.0.0.2:7400");
    cr_assert_str_eq(c.members[1].via_addr, "");
    /* "via": this node dials the peer through a relay (kizuna-chaos). */
    set_ok(&c, "node", "7 sapporo 10.0.0.7:7300 10.0.0.7:7400 via 127.0.0.1:9001");
    cr_assert_str_eq(c.members[2].raft_addr, "10.0.0.7:7300");
    cr_assert_str_eq(c.members[2].via_addr, "127.0.0.1:9001");
    cr_assert(!c.members[2].join);
    /* "join": not an initial member, in either order with via. */
    set_ok(&c, "node", "8 osaka 10.0.0.8:7300 10.0.0.8:7400 join");
    set_ok(&c, "node", "9 osaka 10.0.0.9:7300 10.0.0.9:7400 join via h:5");
    set_ok(&c, "node", "10 osaka 10.0.0.10:7300 10.0.0.10:7400 via h:6 join");
    cr_assert(c.members[3].join && c.members[4].join && c.members[5].join);
    cr_assert_str_eq(c.members[3].via_addr, "");
    cr_assert_str_eq(c.members[4].via_addr, "h:5");
    cr_assert_str_eq(c.members[5].via_addr, "h:6");

    c.id = 22;
    cr_assert_eq(kz_node_config_self(&c), &c.members[1]);
    c.id = 3;
    cr_assert_null(kz_node_config_self(&c));
}

Test(config, node_lines_malformed)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_ok(&c, "node", "5 tokyo h:1 h:2");
    set_bad(&c, "node", "", "node");
    set_bad(&c, "node", "1 tokyo h:1", "node");
    set_bad(&c, "node", "1 tokyo h:1h:2", "node");
    set_bad(&c, "node", "x tokyo h:1 h:2", "node");
    set_bad(&c, "node", "1x tokyo h:1 h:2", "node");
    set_bad(&c, "node", "0 tokyo h:1 h:2", "node");
    set_bad(&c, "node", "1 tokyo h h:2", "node");
    set_bad(&c, "node", "1 tokyo h:1 h:99999", "node");
    set_bad(&c, "node", "5 osaka h:3 h:4", "twice");
    set_bad(&c, "node", "6 tokyo h:1 h:2 via", "node");
    set_bad(&c, "node", "6 tokyo h:1 h:2 by h:3", "node");
    set_bad(&c, "node", "6 tokyo h:1 h:2 via h", "via");
    set_bad(&c, "node", "6 tokyo h:1 h:2 via h:3 x", "node");
    set_bad(&c, "node", "6 tokyo h:1 h:2 join join", "node");
    set_bad(&c, "node", "6 tokyo h:1 h:2 joined", "node");
    set_bad(&c, "node", "6 tokyo h:1 h:2 via h:3 via h:4", "node");
    set_bad(&c, "node", "6 tokyo h:1 h:2 join via", "node");
    cr_assert_eq(c.n_members, 1);
}

Test(config, node_id_negative_or_out_of_range)
{
    /* The `id` key takes 1..2^62; a member id outside that range can never
     * be this node's id, and "-1" is not a number of that range at all
     * (strtoull would wrap it to 2^64-1). */
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_bad(&c, "node", "-1 tokyo h:1 h:2", "node");
    set_bad(&c, "node", "99999999999999999999999 tokyo h:1 h:2", "node");
    set_bad(&c, "node", "4611686018427387905 tokyo h:1 h:2", "node");
    cr_assert_eq(c.n_members, 0);
}

Test(config, node_line_with_extra_fields)
{
    /* Four fields are expected; a fifth means the line is not what its
     * writer thinks (a missing newline, a wrong paste), and the file says
     * unknown input is an error, not ignored. */
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    set_bad(&c, "node", "1 tokyo h:1 h:2 2 osaka h:3 h:4", "node");
    cr_assert_eq(c.n_members, 0);
}

Test(config, too_many_nodes)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    for (int i = 1; i <= KZ_CONS_MAX_PEERS; i++) {
        char line[96];
        snprintf(line, sizeof line, "%d r%d 10.0.0.%d:7300 10.0.0.%d:7400", i,
                 i, i, i);
        set_ok(&c, "node", line);
    }
    cr_assert_eq(c.n_members, KZ_CONS_MAX_PEERS);
    set_bad(&c, "node", "99 r 10.0.1.1:7300 10.0.1.1:7400", "at most");
    cr_assert_eq(c.n_members, KZ_CONS_MAX_PEERS);
}

/* --------------------------------------------------------------- files */

Test(config, load_file_with_comments_and_blank_lines)
{
    write_file("# kizunad test configuration\n"
               "\n"
               "id 2\n"
               "   region   tohoku   # the region of this node\n"
               "data_dir /var/lib/kizuna data\n"
               "\t\n"
               "node 1 tokyo 127.0.0.1:7301 127.0.0.1:7401\n"
               "node 2 tohoku 127.0.0.1:7302 127.0.0.1:7402 # me\n"
               "#node 3 osaka 127.0.0.1:7303 127.0.0.1:7403\n"
               "election_timeout_ms 3000\n"
               "tls_cert /pki/n2.crt\n"
               "tls_key /pki/n2.key\n"
               "master_key_file /keys/master.key\n"
               "tls_ca /pki/ca.crt"); /* no newline at the end */
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    char err[256] = "";
    cr_assert_eq(kz_node_config_load(&c, cfgpath, err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(c.id, 2);
    cr_assert_str_eq(c.region, "tohoku");
    cr_assert_str_eq(c.data_dir, "/var/lib/kizuna data");
    cr_assert_eq(c.n_members, 2, "the commented-out node is not a member");
    cr_assert_str_eq(c.members[1].api_addr, "127.0.0.1:7402");
    cr_assert_eq(c.election_timeout_ms, 3000);
    cr_assert_eq(c.heartbeat_timeout_ms, 100, "unset keys keep defaults");
    cr_assert_str_eq(c.tls_ca, "/pki/ca.crt");
    check_ok(&c);
}

Test(config, load_error_names_file_and_line)
{
    write_file("id 1\n"
               "# comment\n"
               "\n"
               "region tokyo\n"
               "heartbeat_timeout_ms 5\n"
               "region never-reached\n");
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    char err[256] = "";
    cr_assert_eq(kz_node_config_load(&c, cfgpath, err, sizeof err), -1);
    char want[160];
    snprintf(want, sizeof want, "%s:5:", cfgpath);
    cr_assert_not_null(strstr(err, want), "message \"%s\" lacks %s", err,
                       want);
    cr_assert_not_null(strstr(err, "heartbeat_timeout_ms"), "%s", err);
    cr_assert_str_eq(c.region, "tokyo", "reading stops at the bad line");

    write_file("id 1\nbogus_key 3\n");
    kz_node_config_defaults(&c);
    cr_assert_eq(kz_node_config_load(&c, cfgpath, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2:", cfgpath);
    cr_assert_not_null(strstr(err, want), "%s", err);
    cr_assert_not_null(strstr(err, "bogus_key"), "%s", err);

    /* A key with no value. */
    write_file("\n\nregion\n");
    kz_node_config_defaults(&c);
    cr_assert_eq(kz_node_config_load(&c, cfgpath, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:3:", cfgpath);
    cr_assert_not_null(strstr(err, want), "%s", err);
}

Test(config, load_missing_file)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    char err[256] = "";
    char path[160];
    snprintf(path, sizeof path, "%s/absent.conf", tmpdir);
    cr_assert_eq(kz_node_config_load(&c, path, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "absent.conf"), "%s", err);
}

/* ----------------------------------------------------------- arguments */

Test(config, args_config_file_then_overrides)
{
    write_file("id 1\n"
               "region tokyo\n"
               "election_timeout_ms 3000\n"
               "heartbeat_timeout_ms 200\n"
               "node 1 tokyo 127.0.0.1:7301 127.0.0.1:7401\n");
    /* An override given before --config still wins: the file is read
     * first whatever its position. Dashes and underscores both work. */
    char *argv[] = {"kizunad",
                    "--region",
                    "osaka",
                    "--config",
                    cfgpath,
                    "--election-timeout-ms",
                    "5000",
                    "--heartbeat_timeout_ms",
                    "400",
                    "--tls-cert",
                    "n.crt",
                    NULL};
    int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    char err[256] = "";
    cr_assert_eq(kz_node_config_from_args(&c, argc, argv, err, sizeof err), 0,
                 "%s", err);
    cr_assert_eq(c.id, 1, "from the file");
    cr_assert_str_eq(c.region, "osaka", "flag beats file");
    cr_assert_eq(c.election_timeout_ms, 5000);
    cr_assert_eq(c.heartbeat_timeout_ms, 400);
    cr_assert_str_eq(c.tls_cert, "n.crt");
    cr_assert_eq(c.n_members, 1);
}

Test(config, args_errors)
{
    struct kz_node_config c;
    char err[256];
    {
        char *argv[] = {"kizunad", "--bogus", "1", NULL};
        kz_node_config_defaults(&c);
        cr_assert_eq(kz_node_config_from_args(&c, 3, argv, err, sizeof err),
                     -1);
        cr_assert_not_null(strstr(err, "bogus"), "%s", err);
    }
    {
        char *argv[] = {"kizunad", "--id", NULL};
        kz_node_config_defaults(&c);
        cr_assert_eq(kz_node_config_from_args(&c, 2, argv, err, sizeof err),
                     -1, "a flag without a value");
    }
    {
        char *argv[] = {"kizunad", "positional", "x", NULL};
        kz_node_config_defaults(&c);
        cr_assert_eq(kz_node_config_from_args(&c, 3, argv, err, sizeof err),
                     -1);
        cr_assert_not_null(strstr(err, "positional"), "%s", err);
    }
    {
        char *argv[] = {"kizunad", "--election-timeout-ms", "10", NULL};
        kz_node_config_defaults(&c);
        cr_assert_eq(kz_node_config_from_args(&c, 3, argv, err, sizeof err),
                     -1);
        cr_assert_eq(c.election_timeout_ms, 1000);
    }
    {
        char path[160];
        snprintf(path, sizeof path, "%s/absent.conf", tmpdir);
        char *argv[] = {"kizunad", "--config", path, NULL};
        kz_node_config_defaults(&c);
        cr_assert_eq(kz_node_config_from_args(&c, 3, argv, err, sizeof err),
                     -1);
        cr_assert_not_null(strstr(err, "absent.conf"), "%s", err);
    }
    {
        char *argv[] = {"kizunad", NULL};
        kz_node_config_defaults(&c);
        cr_assert_eq(kz_node_config_from_args(&c, 1, argv, err, sizeof err),
                     0, "no arguments: defaults");
    }
}

/* --------------------------------------------------------------- check */

Test(config, check_accepts_a_complete_config)
{
    struct kz_node_config c;
    valid(&c);
    check_ok(&c);
    /* heartbeat exactly half of election is allowed. */
    set_ok(&c, "election_timeout_ms", "1000");
    set_ok(&c, "heartbeat_timeout_ms", "500");
    check_ok(&c);
}

Test(config, check_requires_id)
{
    struct kz_node_config c;
    valid(&c);
    c.id = 0;
    check_bad(&c, "id");
}

Test(config, check_requires_self_among_nodes)
{
    struct kz_node_config c;
    valid(&c);
    set_ok(&c, "id", "4");
    check_bad(&c, "node 4");

    kz_node_config_defaults(&c);
    set_ok(&c, "id", "1");
    set_ok(&c, "tls_cert", "a");
    set_ok(&c, "tls_key", "b");
    set_ok(&c, "tls_ca", "c");
    check_bad(&c, "node 1"); /* no node lines at all */
}

Test(config, check_joining_node_may_list_only_itself)
{
    struct kz_node_config c;
    valid(&c);
    set_ok(&c, "node", "9 osaka 10.0.0.9:7300 10.0.0.9:7400 join");
    check_ok(&c); /* a spare beside the members */
    /* A node to be added with its addresses (kizuna cluster add --address)
     * knows nobody else: it learns the others once added. */
    struct kz_node_config j;
    kz_node_config_defaults(&j);
    set_ok(&j, "id", "9");
    set_ok(&j, "region", "osaka");
    set_ok(&j, "data_dir", "/var/lib/kz");
    set_ok(&j, "node", "9 osaka 10.0.0.9:7300 10.0.0.9:7400 join");
    set_ok(&j, "tls_cert", "/etc/kz/node.crt");
    set_ok(&j, "tls_key", "/etc/kz/node.key");
    set_ok(&j, "tls_ca", "/etc/kz/ca.crt");
    set_ok(&j, "master_key_file", "/etc/kz/master.key");
    check_ok(&j);
    cr_assert_eq(j.n_members, 1);
}

Test(config, region_and_address_syntax)
{
    cr_assert(kz_node_valid_region("sapporo"));
    cr_assert(kz_node_valid_region("eu-west_1.b"));
    cr_assert(!kz_node_valid_region(""));
    cr_assert(!kz_node_valid_region("札幌"));
    cr_assert(!kz_node_valid_region("a b"));
    cr_assert(!kz_node_valid_region("0123456789012345678901234567890123"));
    cr_assert(kz_node_valid_addr("10.0.0.9:7401", 65534));
    cr_assert(kz_node_valid_addr("node-5.example:7400", 65535));
    cr_assert(!kz_node_valid_addr("10.0.0.9:65535", 65534));
    cr_assert(!kz_node_valid_addr("10.0.0.9", 65535));
    cr_assert(!kz_node_valid_addr(":7400", 65535));
    cr_assert(!kz_node_valid_addr("10.0.0.9:0", 65535));
    cr_assert(!kz_node_valid_addr("10.0.0.9:74x", 65535));
    cr_assert(!kz_node_valid_addr("a b:7400", 65535));
}

Test(config, min_free_mb)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    cr_assert_eq(c.min_free_mb, 64);
    set_ok(&c, "min_free_mb", "0");
    cr_assert_eq(c.min_free_mb, 0);
    set_ok(&c, "min_free_mb", "1024");
    cr_assert_eq(c.min_free_mb, 1024);
    set_bad(&c, "min_free_mb", "-1", "min_free_mb");
}

Test(config, check_requires_tls_paths)
{
    const char *keys[] = {"tls_cert", "tls_key", "tls_ca"};
    for (int i = 0; i < 3; i++) {
        struct kz_node_config c;
        valid(&c);
        char *field = i == 0 ? c.tls_cert : i == 1 ? c.tls_key : c.tls_ca;
        field[0] = '\0';
        check_bad(&c, keys[i]);
    }
}

Test(config, check_requires_master_key_file)
{
    struct kz_node_config c;
    valid(&c);
    c.master_key_file[0] = '\0';
    check_bad(&c, "master_key_file");
}

Test(config, check_requires_six_digit_municipality)
{
    const char *bad[] = {"13101", "1310166", "13101a", "abcdef", "13 016"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kz_node_config c;
        valid(&c);
        set_ok(&c, "municipality", bad[i]);
        check_bad(&c, "municipality");
    }
}

Test(config, check_heartbeat_at_most_half_election)
{
    struct kz_node_config c;
    valid(&c);
    set_ok(&c, "election_timeout_ms", "1000");
    set_ok(&c, "heartbeat_timeout_ms", "501");
    check_bad(&c, "heartbeat_timeout_ms");
    set_ok(&c, "election_timeout_ms", "50");
    set_ok(&c, "heartbeat_timeout_ms", "26");
    check_bad(&c, "heartbeat_timeout_ms");
    set_ok(&c, "heartbeat_timeout_ms", "25");
    check_ok(&c);
}

Test(config, log_level)
{
    struct kz_node_config c;
    kz_node_config_defaults(&c);
    cr_assert_eq(c.log_level, KZ_LOG_INFO);
    set_ok(&c, "log_level", "debug");
    cr_assert_eq(c.log_level, KZ_LOG_DEBUG);
    set_ok(&c, "log_level", "WARN");
    cr_assert_eq(c.log_level, KZ_LOG_WARN);
    set_ok(&c, "log_level", "error");
    cr_assert_eq(c.log_level, KZ_LOG_ERROR);
    /* fatal would hide every error line. */
    set_bad(&c, "log_level", "fatal", "log_level");
    set_bad(&c, "log_level", "verbose", "log_level");
    set_bad(&c, "log_level", "", "log_level");
    set_bad(&c, "log_level", "info ", "log_level");
}
