/*
 * config.h — kizunad configuration: a file of `key value` lines ('#'
 * comments, `node` lines repeat) and command-line flags `--key value` that
 * override it. See docs/ARCHITECTURE.md for every key and its default.
 */
#ifndef KZ_NODE_CONFIG_H
#define KZ_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "consensus.h"
#include "kz_log.h"

#define KZ_NODE_PATH_MAX 1024

struct kz_node_member {
    uint64_t id;
    char region[KZ_CONS_REGION_MAX];
    char raft_addr[KZ_CONS_ADDR_MAX];
    char api_addr[KZ_CONS_ADDR_MAX];
    char via_addr[KZ_CONS_ADDR_MAX]; /* optional "via host:port": dial here */
    bool join; /* "join": not an initial member (added later, see API.md) */
    bool listed; /* from this node's file (not the replicated address book) */
};

struct kz_node_config {
    uint64_t id;
    char region[KZ_CONS_REGION_MAX];
    char data_dir[KZ_NODE_PATH_MAX];
    char api_listen[KZ_CONS_ADDR_MAX];
    char raft_listen[KZ_CONS_ADDR_MAX]; /* bind address; default: own node line */
    char tls_cert[KZ_NODE_PATH_MAX];
    char tls_key[KZ_NODE_PATH_MAX];
    char tls_ca[KZ_NODE_PATH_MAX];
    char tls_crl[KZ_NODE_PATH_MAX]; /* optional: PEM CRL(s) of tls_ca; "" none */
    char master_key_file[KZ_NODE_PATH_MAX]; /* keyring, mode 0600 */
    char municipality[16];
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    unsigned snapshot_fetch_timeout_s; /* fetching a checkpoint from peers */
    unsigned request_timeout_ms;
    unsigned max_body_bytes;
    /* API limits that keep one client from starving the others. */
    unsigned max_connections;           /* open API connections */
    unsigned tls_handshake_timeout_ms;  /* TCP accept to finished handshake */
    unsigned request_header_timeout_ms; /* HTTP/1: whole request; also keep-alive idle */
    unsigned idle_timeout_ms;           /* HTTP/2: connection without requests */
    unsigned peer_tls; /* 1 (default); 0 only to measure TLS cost in tests */
    unsigned audit_reads; /* 1 (default); 0 only to measure the audit's cost */
    unsigned photo_max_bytes; /* PUT /v1/photos bodies; others: max_body_bytes */
    unsigned min_free_mb; /* stop below this much free space in data_dir; 0: never */
    /* Leadership goes back to this region once a voter there is healthy
     * and caught up ("": no preference), at most once per hold-down. */
    char preferred_leader_region[KZ_CONS_REGION_MAX];
    unsigned leader_hold_down_s;
    unsigned audit_retention_days; /* audit records kept; 0: for ever */
    char auth_ca[KZ_NODE_PATH_MAX]; /* citizens' cards' CA (PEM); "" none */
    unsigned challenge_ttl_s;       /* identity challenges expire after */
    /* The municipality's account, the sender of payout transfer files
     * (全銀 header); export refuses while payout_requester_code is "". */
    char payout_requester_code[16];
    char payout_requester_name[128];
    unsigned payout_bank_code;
    char payout_bank_name[64];
    unsigned payout_branch_code;
    char payout_branch_name[64];
    unsigned payout_account_type;
    char payout_account_number[16];
    enum kz_log_level log_level; /* lines below it are dropped; default info */
    struct kz_node_member members[KZ_CONS_MAX_PEERS];
    unsigned n_members;
};

/* Fills defaults. */
void kz_node_config_defaults(struct kz_node_config *c);
/* Applies one setting; returns 0 or -1 with a message in err. */
int kz_node_config_set(struct kz_node_config *c, const char *key,
                       const char *value, char *err, size_t errlen);
/* Reads a file of settings. */
int kz_node_config_load(struct kz_node_config *c, const char *path, char *err,
                        size_t errlen);
/* Parses argv (--config FILE first, then --key value overrides). */
int kz_node_config_from_args(struct kz_node_config *c, int argc, char **argv,
                             char *err, size_t errlen);
/* Checks the whole configuration (self in the member list, paths set...). */
int kz_node_config_check(const struct kz_node_config *c, char *err,
                         size_t errlen);
/* The member entry of this node, or NULL. */
const struct kz_node_member *kz_node_config_self(const struct kz_node_config *c);
/* host:port (printable ASCII, no spaces) with 1 <= port <= max_port. */
bool kz_node_valid_addr(const char *s, long max_port);
/* A region name: 1-31 of [A-Za-z0-9._-]. */
bool kz_node_valid_region(const char *s);

#endif
