/*
 * config.c — parsing of kizunad settings (config.h).
 *
 * One table maps keys to fields, so the file, the flags and the docs agree.
 * Values are checked when set: numbers in range, addresses host:port,
 * municipality codes of six digits. Unknown keys are errors, not ignored:
 * a typo in a timeout must not silently fall back to a default.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_U64, K_UINT, K_STR, K_ADDR, K_LEVEL };

struct setting {
    const char *key;
    enum kind kind;
    size_t off;
    size_t size;
    unsigned long long min, max;
};

#define F(f) offsetof(struct kz_node_config, f), sizeof(((struct kz_node_config *)0)->f)
static const struct setting settings[] = {
    {"id", K_U64, F(id), 1, 1ull << 62},
    {"region", K_STR, F(region), 0, 0},
    {"data_dir", K_STR, F(data_dir), 0, 0},
    {"api_listen", K_ADDR, F(api_listen), 0, 0},
    {"raft_listen", K_ADDR, F(raft_listen), 0, 0},
    {"tls_cert", K_STR, F(tls_cert), 0, 0},
    {"tls_key", K_STR, F(tls_key), 0, 0},
    {"tls_ca", K_STR, F(tls_ca), 0, 0},
    {"tls_crl", K_STR, F(tls_crl), 0, 0},
    {"master_key_file", K_STR, F(master_key_file), 0, 0},
    {"municipality", K_STR, F(municipality), 0, 0},
    {"election_timeout_ms", K_UINT, F(election_timeout_ms), 50, 600000},
    {"heartbeat_timeout_ms", K_UINT, F(heartbeat_timeout_ms), 10, 60000},
    {"snapshot_threshold", K_UINT, F(snapshot_threshold), 2, 100000000},
    {"snapshot_trailing", K_UINT, F(snapshot_trailing), 1, 100000000},
    {"snapshot_fetch_timeout_s", K_UINT, F(snapshot_fetch_timeout_s), 10, 86400},
    {"request_timeout_ms", K_UINT, F(request_timeout_ms), 100, 600000},
    {"max_body_bytes", K_UINT, F(max_body_bytes), 1024, 64u << 20},
    {"max_connections", K_UINT, F(max_connections), 1, 1000000},
    {"tls_handshake_timeout_ms", K_UINT, F(tls_handshake_timeout_ms), 100, 600000},
    {"request_header_timeout_ms", K_UINT, F(request_header_timeout_ms), 100, 600000},
    {"idle_timeout_ms", K_UINT, F(idle_timeout_ms), 100, 3600000},
    {"peer_tls", K_UINT, F(peer_tls), 0, 1},
    {"audit_reads", K_UINT, F(audit_reads), 0, 1},
    {"photo_max_bytes", K_UINT, F(photo_max_bytes), 1024, 32u << 20},
    {"min_free_mb", K_UINT, F(min_free_mb), 0, 1u << 20},
    {"preferred_leader_region", K_STR, F(preferred_leader_region), 0, 0},
    {"leader_hold_down_s", K_UINT, F(leader_hold_down_s), 1, 86400},
    {"audit_retention_days", K_UINT, F(audit_retention_days), 0, 36500},
    {"auth_ca", K_STR, F(auth_ca), 0, 0},
    {"challenge_ttl_s", K_UINT, F(challenge_ttl_s), 1, 3600},
    {"payout_requester_code", K_STR, F(payout_requester_code), 0, 0},
    {"payout_requester_name", K_STR, F(payout_requester_name), 0, 0},
    {"payout_bank_code", K_UINT, F(payout_bank_code), 0, 9999},
    {"payout_bank_name", K_STR, F(payout_bank_name), 0, 0},
    {"payout_branch_code", K_UINT, F(payout_branch_code), 0, 999},
    {"payout_branch_name", K_STR, F(payout_branch_name), 0, 0},
    {"payout_account_type", K_UINT, F(payout_account_type), 1, 9},
    {"payout_account_number", K_STR, F(payout_account_number), 0, 0},
    {"log_level", K_LEVEL, F(log_level), 0, 0},
};
#undef F

void kz_node_config_defaults(struct kz_node_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->region, sizeof c->region, "default");
    snprintf(c->data_dir, sizeof c->data_dir, "var/kizunad");
    snprintf(c->api_listen, sizeof c->api_listen, "127.0.0.1:7400");
    snprintf(c->municipality, sizeof c->municipality, "131016");
    c->election_timeout_ms = 1000;
    c->heartbeat_timeout_ms = 100;
    /* A snapshot is a RocksDB checkpoint taken on the loop (raft 0.22
     * calls even snapshot_async there): 10-70 ms, most of it copying the
     * live WAL. Every 4096 entries that was every 4 s at 1000 writes/s,
     * and the stalls set the p99. The 64 MB rule of consensus.c still
     * bounds the log raft keeps in memory. */
    c->snapshot_threshold = 32768;
    c->snapshot_trailing = 1024;
    c->snapshot_fetch_timeout_s = 600;
    c->request_timeout_ms = 5000;
    c->max_body_bytes = 1u << 20;
    c->max_connections = 1024;
    c->tls_handshake_timeout_ms = 5000;
    c->request_header_timeout_ms = 10000;
    c->idle_timeout_ms = 60000;
    c->peer_tls = 1;
    c->audit_reads = 1;
    c->photo_max_bytes = 2u << 20;
    c->min_free_mb = 64;
    c->leader_hold_down_s = 30;
    c->audit_retention_days = 3650;
    c->challenge_ttl_s = 300;
    c->payout_account_type = 1;
    c->log_level = KZ_LOG_INFO;
}

/* host:port with 1 <= port <= max_port. Raft addresses need max 65534:
 * the peer link listens on port + 1. */
static int valid_addr(const char *s, long max_port)
{
    return kz_node_valid_addr(s, max_port);
}

bool kz_node_valid_region(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KZ_CONS_REGION_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' &&
            s[i] != '.')
            return false;
    return true;
}

bool kz_node_valid_addr(const char *s, long max_port)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return false;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || strlen(s) >= KZ_CONS_ADDR_MAX)
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return colon[1] != '\0' && *end == '\0' && port > 0 && port <= max_port;
}

static int set_member(struct kz_node_config *c, const char *value, char *err,
                      size_t errlen)
{
    struct kz_node_member m;
    char id[32], opt[4][64], extra[2];
    memset(&m, 0, sizeof m);
    int got = sscanf(value, "%31s %31s %63s %63s %63s %63s %63s %63s %1s", id,
                     m.region, m.raft_addr, m.api_addr, opt[0], opt[1],
                     opt[2], opt[3], extra);
    bool ok = got >= 4 && got <= 8;
    for (int i = 0; ok && i < got - 4; i++) {
        if (strcmp(opt[i], "via") == 0 && i + 1 < got - 4 &&
            m.via_addr[0] == '\0') {
            if (!valid_addr(opt[i + 1], 65535)) {
                snprintf(err, errlen, "node %s: via wants host:port", id);
                return -1;
            }
            snprintf(m.via_addr, sizeof m.via_addr, "%s", opt[i + 1]);
            i++;
        } else if (strcmp(opt[i], "join") == 0 && !m.join) {
            m.join = true;
        } else {
            ok = false;
        }
    }
    if (!ok) {
        snprintf(err, errlen,
                 "node: expected '<id> <region> <raft host:port> <api "
                 "host:port> [via <host:port>] [join]'");
        return -1;
    }
    char *end;
    errno = 0;
    m.id = strtoull(id, &end, 10);
    if (*end != '\0' || id[0] == '-' || errno != 0 || m.id == 0 ||
        m.id > (1ull << 62)) {
        snprintf(err, errlen, "node: bad id '%s'", id);
        return -1;
    }
    if (!valid_addr(m.raft_addr, 65534) || !valid_addr(m.api_addr, 65535)) {
        snprintf(err, errlen, "node %s: addresses must be host:port", id);
        return -1;
    }
    for (unsigned i = 0; i < c->n_members; i++)
        if (c->members[i].id == m.id) {
            snprintf(err, errlen, "node %s listed twice", id);
            return -1;
        }
    if (c->n_members == KZ_CONS_MAX_PEERS) {
        snprintf(err, errlen, "at most %d nodes", KZ_CONS_MAX_PEERS);
        return -1;
    }
    c->members[c->n_members++] = m;
    return 0;
}

int kz_node_config_set(struct kz_node_config *c, const char *key,
                       const char *value, char *err, size_t errlen)
{
    if (strcmp(key, "node") == 0)
        return set_member(c, value, err, errlen);
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        const struct setting *s = &settings[i];
        if (strcmp(s->key, key) != 0)
            continue;
        char *field = (char *)c + s->off;
        if (s->kind == K_LEVEL) {
            /* fatal would hide every error: not a threshold to run with. */
            enum kz_log_level level;
            if (kz_log_level_parse(value, &level) != KZ_OK ||
                level == KZ_LOG_FATAL) {
                snprintf(err, errlen,
                         "%s: expected debug, info, warn or error", key);
                return -1;
            }
            *(enum kz_log_level *)(void *)field = level;
            return 0;
        }
        if (s->kind == K_STR || s->kind == K_ADDR) {
            if (strlen(value) >= s->size || value[0] == '\0') {
                snprintf(err, errlen, "%s: empty or too long", key);
                return -1;
            }
            if (s->kind == K_ADDR &&
                !valid_addr(value, strcmp(key, "raft_listen") == 0 ? 65534
                                                                   : 65535)) {
                snprintf(err, errlen, "%s: expected host:port", key);
                return -1;
            }
            memcpy(field, value, strlen(value) + 1);
            return 0;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno != 0 || *end != '\0' || value[0] == '-' || v < s->min ||
            v > s->max) {
            snprintf(err, errlen, "%s: expected an integer from %llu to %llu",
                     key, s->min, s->max);
            return -1;
        }
        if (s->kind == K_U64)
            *(uint64_t *)(void *)field = v;
        else
            *(unsigned *)(void *)field = (unsigned)v;
        return 0;
    }
    snprintf(err, errlen, "unknown setting '%s'", key);
    return -1;
}

int kz_node_config_load(struct kz_node_config *c, const char *path, char *err,
                        size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int lineno = 0, rv = 0;
    while (rv == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*p == '\0')
            continue;
        char *key = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (*p)
            *p++ = '\0';
        while (isspace((unsigned char)*p))
            p++;
        char msg[256];
        if (kz_node_config_set(c, key, p, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rv = -1;
        }
    }
    fclose(f);
    return rv;
}

int kz_node_config_from_args(struct kz_node_config *c, int argc, char **argv,
                             char *err, size_t errlen)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--config") == 0) {
            if (kz_node_config_load(c, argv[i + 1], err, errlen) != 0)
                return -1;
        }
    for (int i = 1; i < argc; i += 2) {
        if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
            snprintf(err, errlen, "expected --key value, got '%s'", argv[i]);
            return -1;
        }
        if (strcmp(argv[i], "--config") == 0)
            continue;
        char key[64];
        snprintf(key, sizeof key, "%s", argv[i] + 2);
        for (char *k = key; *k; k++)
            if (*k == '-')
                *k = '_';
        if (kz_node_config_set(c, key, argv[i + 1], err, errlen) != 0)
            return -1;
    }
    return 0;
}

const struct kz_node_member *kz_node_config_self(const struct kz_node_config *c)
{
    for (unsigned i = 0; i < c->n_members; i++)
        if (c->members[i].id == c->id)
            return &c->members[i];
    return NULL;
}

int kz_node_config_check(const struct kz_node_config *c, char *err,
                         size_t errlen)
{
    if (c->id == 0) {
        snprintf(err, errlen, "id is required");
        return -1;
    }
    if (kz_node_config_self(c) == NULL) {
        snprintf(err, errlen, "node %llu is not among the 'node' lines",
                 (unsigned long long)c->id);
        return -1;
    }
    /* A node marked join may list only itself: it waits to be added, and
     * learns the others from the cluster (the replicated address book). */
    if (!c->tls_cert[0] || !c->tls_key[0] || !c->tls_ca[0]) {
        snprintf(err, errlen, "tls_cert, tls_key and tls_ca are required");
        return -1;
    }
    if (!c->master_key_file[0]) {
        snprintf(err, errlen,
                 "master_key_file is required (encryption at rest)");
        return -1;
    }
    if (strlen(c->municipality) != 6 ||
        strspn(c->municipality, "0123456789") != 6) {
        snprintf(err, errlen, "municipality: expected a 6-digit code");
        return -1;
    }
    if (c->heartbeat_timeout_ms * 2 > c->election_timeout_ms) {
        snprintf(err, errlen,
                 "heartbeat_timeout_ms must be at most half of "
                 "election_timeout_ms");
        return -1;
    }
    return 0;
}
