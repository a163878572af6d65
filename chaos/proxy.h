/* Fault-injecting TCP relays between the nodes of a chaos cluster.
 *
 * The kernels this runs on may have no netem, so inter-region latency and
 * partitions come from here: one listener per ordered pair of nodes (from,
 * to). Node `from` dials peer `to` at the pair's listener (its configuration
 * says "node <to> ... via <host>:<port>", see deploy/local-cluster --proxy)
 * and the relay connects on to `to`'s raft address. Bytes are opaque (TLS
 * passes through: peers still authenticate each other by certificate).
 *
 * Every byte is attributed to a direction: from the dialer to the target is
 * link (from, to); the answers on the same connection are link (to, from).
 * Each directed link has its own fault state, changeable at run time from
 * any thread:
 *   - delay and jitter: each chunk is delivered delay ± jitter ms after it was
 *     read, never before an earlier chunk of the same direction (TCP order);
 *   - stalls: a fraction of chunks wait an extra stall_ms, like a lost
 *     segment waiting for its retransmission;
 *   - a bandwidth cap: chunks are serialised at that rate;
 *   - blocked: nothing is delivered; chunks are held (and, past a bound, the
 *     sender is no longer read: its TCP window fills) until the link heals,
 *     as a partition that TCP rides out. A one-way partition blocks one
 *     direction only.
 * A connection closed or reset on either side is closed on the other. */
#ifndef KZ_CHAOS_PROXY_H
#define KZ_CHAOS_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kz_proxy kz_proxy;

struct kz_proxy_link {
    unsigned delay_ms;      /* one-way latency */
    unsigned jitter_ms;     /* uniform in [-jitter, +jitter], floored at 0 */
    unsigned stall_permille; /* chunks out of 1000 that stall */
    unsigned stall_ms;      /* extra wait of a stalled chunk (default 200) */
    unsigned kbytes_per_s;  /* bandwidth cap; 0: none */
    bool blocked;           /* partition of this direction */
};

struct kz_proxy_stats {
    uint64_t bytes;       /* delivered on this direction */
    uint64_t held_bytes;  /* queued now (delay or block) */
    unsigned connections; /* open connections of the pair (from dials to) */
};

/* Starts the relays of n nodes (ids 1..n) in a thread of their own: pair
 * (from, to) listens on host:base_port + (from-1)*n + (to-1) and connects to
 * targets[to-1] ("ip:port", the raft address). seed makes jitter and stalls
 * reproducible. Returns NULL with err filled on failure (e.g. a port in
 * use). */
kz_proxy *kz_proxy_start(unsigned n, const char *host, unsigned base_port,
                         const char *const *targets, uint64_t seed, char *err,
                         size_t errlen);

/* Sets / reads the fault state of direction from -> to (1-based ids). */
void kz_proxy_set(kz_proxy *p, unsigned from, unsigned to,
                  const struct kz_proxy_link *l);
void kz_proxy_get(kz_proxy *p, unsigned from, unsigned to,
                  struct kz_proxy_link *l);
void kz_proxy_stats(kz_proxy *p, unsigned from, unsigned to,
                    struct kz_proxy_stats *s);

/* Unblocks every direction and removes stalls and caps; delays stay (they
 * are the regions' distances, not a fault). */
void kz_proxy_heal(kz_proxy *p);

/* Closes every connection and listener, joins the thread, frees p. */
void kz_proxy_stop(kz_proxy *p);

#endif /* KZ_CHAOS_PROXY_H */
