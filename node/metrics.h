/*
 * metrics.h — GET /metrics: this node's metrics in the Prometheus text
 * exposition format 0.0.4 (the families are listed in
 * docs/ARCHITECTURE.md, "Metrics"). Internal to node/.
 *
 * The values come from where they are kept: raft's status and the
 * counters of consensus/ (kz_cons_get_status, kz_cons_get_counters,
 * kz_cons_peer_progress), the node's own counters (struct kz_node_stats),
 * RocksDB's properties (kz_stor_property_u64) and the file system. Label
 * values are route patterns, status classes, raft states, node ids and the
 * region name: never an id, a name or anything else a request carried.
 */
#ifndef KZ_NODE_METRICS_H
#define KZ_NODE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

struct route;

/* What only http_api.c knows, handed in by its handler. */
struct kz_node_metrics_http {
    const struct route *routes; /* the authorisation table, for labels */
    size_t n_routes;
    unsigned audit_entries_in_flight;
};

/* Renders every metric of n. On KZ_OK *out is a NUL-terminated text of
 * *len bytes, malloc'd: the caller frees it with free(). KZ_ENOMEM
 * otherwise, and *out is NULL. */
int kz_node_metrics_render(struct kz_node *n,
                           const struct kz_node_metrics_http *h, char **out,
                           size_t *len);

/* Counts one answered API request in kizuna_http_request_duration_seconds:
 * route is its enum route_id (0: no route matched), status the HTTP status
 * sent, us the time from its arrival to the response. */
void kz_node_metrics_http_observe(struct kz_node *n, int route, int status,
                                  uint64_t us);
/* Counts one turn of the event loop that worked us microseconds in
 * kizuna_event_loop_busy_seconds. */
void kz_node_metrics_loop_observe(struct kz_node *n, uint64_t us);

#endif
