/*
 * node.h — one Kizuna node: the state store, the raft group and the HTTPS
 * API on one libuv loop. A node is a struct, not a global, so tests can run
 * several in one process.
 *
 * Lifecycle: kz_node_init (opens the store, builds raft and TLS), then
 * kz_node_start (raft, peer link, API listener), then kz_node_stop (stops
 * accepting, closes raft, then calls back; the caller then runs the loop
 * until it is empty and calls kz_node_free).
 */
#ifndef KZ_NODE_H
#define KZ_NODE_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "consensus.h"
#include "keys.h"
#include "state_store.h"

struct kz_node_http;
struct kz_card_trust;

/* Identity checks on this node (api_identity.c): the authentication CA
 * (auth_ca, read once) and the trust built from it and the installed CRL,
 * rebuilt when the CRL's version changes. */
struct kz_node_idcheck {
    char *ca_pem;
    size_t ca_len;
    struct kz_card_trust *trust;
    uint64_t trust_crl_version; /* CRL version the trust holds (0: none) */
    uint64_t verifications[8];  /* by card outcome (card.h), 7: refused */
    uint64_t fallbacks;
};
struct kz_node_audit_queue;

/* Durations of HTTP requests of one route and status class (metrics.c
 * keeps the bucket bounds): bucket[i] counts those within bound i and above
 * bound i-1, the last one those above every bound. */
#define KZ_NODE_LATENCY_BOUNDS 13
#define KZ_NODE_ROUTE_SLOTS 64 /* above every enum route_id (0: no route) */
struct kz_node_latency {
    uint64_t bucket[KZ_NODE_LATENCY_BOUNDS + 1];
    uint64_t count, sum_us;
};

struct kz_node_stats {
    uint64_t http_requests;
    uint64_t http_by_class[6]; /* index status / 100 */
    uint64_t reads_linearizable, reads_stale, writes;
    uint64_t conns_open;       /* API connections now (gauge) */
    uint64_t conns_refused;    /* closed at accept: max_connections reached */
    uint64_t tls_reloads;      /* successful certificate/CRL reloads */
    uint64_t tls_reload_fails; /* reloads refused (old files kept) */
    /* API TLS handshakes this node ended with a fatal alert (no, bad or
     * revoked client certificate; no common protocol). Handshakes that
     * time out or that the client drops are not counted. */
    uint64_t api_handshakes_failed;
    /* From a request's arrival to its response (send_body), by route id
     * (0: no route) and status class (status / 100 - 1); metrics.c. */
    struct kz_node_latency http_latency[KZ_NODE_ROUTE_SLOTS][5];
    /* Each turn of the event loop: the time it worked, i.e. did not wait
     * for events (node.c, on_loop_turn). */
    struct kz_node_latency loop_busy;
};

struct kz_node {
    uv_loop_t *loop;
    struct kz_node_config cfg;
    kz_stor *stor;
    kz_cons *cons;
    struct kz_node_http *http;
    struct kz_node_keys keys;
    uv_timer_t keys_timer;   /* proposes the first data key when leading */
    bool keys_init_in_flight;
    kz_cons_req keys_req;
    struct kz_node_audit_queue *audit_q; /* stale reads' records */
    kz_cons_req audit_q_req;
    bool audit_q_in_flight;
    kz_cons_req audit_prune_req;  /* retention, on the leader */
    bool audit_prune_in_flight;
    int64_t audit_prune_last_ms;
    struct kz_node_stats stats;
    struct kz_node_idcheck idcheck;
    uint64_t applied_bytes_unchecked; /* since the last free-space check */
    /* Preferred leader region (node.c, prefer_region). */
    uint64_t leading_since_ms, last_move_ms;
    bool move_in_flight;
    kz_cons_req move_query, move_req;
    /* Peer probes (node.c): every second each other node of the address
     * book is asked its status over the peer link; /metrics reports
     * whether it answered lately, when, and how fast. By book slot. */
    struct kz_node_probe {
        kz_cons_req req;
        struct kz_node *n;
        uint64_t id;
        bool in_flight;
        uint64_t sent_ns;     /* uv_hrtime when sent */
        uint64_t last_ok_ms;  /* uv_now of the last answer; 0 never */
        uint64_t rtt_us;      /* round trip of the last answer */
        uint64_t failures;    /* probes that got no answer */
    } probes[KZ_CONS_MAX_PEERS];
    uv_timer_t probe_timer;
    uv_prepare_t loop_probe; /* stats.loop_busy */
    uint64_t loop_turn_ns, loop_idle_ns;
    /* Address book (addrbook.h): this file's 'node' lines, then the nodes
     * added through the API; only grows or changes in place. */
    struct kz_node_member book[KZ_CONS_MAX_PEERS];
    unsigned n_book;
    void (*stopped_cb)(struct kz_node *);
    bool cons_closed; /* kz_node_stop: consensus has closed */
    char errmsg[256];
};

int kz_node_init(struct kz_node *n, uv_loop_t *loop,
                 const struct kz_node_config *cfg);
int kz_node_start(struct kz_node *n);
void kz_node_stop(struct kz_node *n, void (*cb)(struct kz_node *));
void kz_node_free(struct kz_node *n);

/* Frees the identity checks' CA and trust (api_identity.c). */
void kz_node_idcheck_free(struct kz_node *n);

/* HTTP API (http_api.c). */
int kz_node_http_init(struct kz_node *n);
int kz_node_http_start(struct kz_node *n);
void kz_node_http_stop(struct kz_node *n);
/* Whether a stale reads' audit batch is being written (a worker thread
 * uses the audit queue). */
bool kz_node_http_busy(struct kz_node *n);
/* Calls the kz_node_stop callback once the node has nothing left running. */
void kz_node_maybe_stopped(struct kz_node *n);
void kz_node_http_free(struct kz_node *n);
/* Reloads tls_cert, tls_key, tls_ca and tls_crl for new connections, the
 * API's and the peer channels' (kz_cons_reload_tls); open connections keep
 * what they were accepted with. All or nothing: on failure nothing changes
 * and n->errmsg says why. trigger ("SIGHUP", "API") and request_id (the
 * API call's, NULL for none) go into the log line. Implemented in
 * http_api.c, which owns the API's SSL contexts. */
int kz_node_reload_tls(struct kz_node *n, const char *trigger,
                       const char *request_id);

#endif
