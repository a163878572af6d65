/*
 * peer_tls.h — authenticated, encrypted channels between nodes (internal to
 * consensus/).
 *
 * Every byte between two nodes, raft's and the peer link's alike, goes
 * through one listener on the node's raft address. A channel is a TCP
 * connection carrying TLS 1.3 with mutual authentication: both sides present
 * a certificate of the cluster CA whose CN is "node-<raft id>". Inside TLS
 * the connecting side first sends a preamble
 *   u64 magic "KZCHAN01" | u8 kind | u64 raft id | u16 address length |
 *   address
 * and the accepting side refuses the channel unless the id is the one its
 * certificate names. After that the channel is a plaintext byte stream for
 * its user, delivered as one end of a socketpair (a uv_pipe_t allocated with
 * raft_malloc, which raft frees with raft_free when it closes it), while this
 * module pumps TLS between the TCP socket and the other end on the same loop
 * through OpenSSL memory BIOs.
 *
 * Refusals (bad certificate, other CA, wrong id, plaintext or garbage on the
 * port, no handshake within the deadline) close the TCP connection and are
 * logged on stderr with the peer address only.
 *
 * `plaintext` (a test-only setting, `peer_tls 0`) keeps the channels,
 * preamble and pumping but skips TLS, so the cost of TLS alone can be
 * measured; identities are then unauthenticated.
 */
#ifndef KZ_CONS_PEER_TLS_H
#define KZ_CONS_PEER_TLS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum kz_cons__chan_kind { KZ_CHAN_RAFT = 1, KZ_CHAN_PEER = 2 };

struct kz_cons__tls;

/* A new inbound channel: the user now owns stream (close it with uv_close;
 * free it with raft_free in the close callback). */
typedef void (*kz_cons__accept_cb)(void *data, int kind, uint64_t id,
                                   const char *address, uv_stream_t *stream);

/* Outbound: status 0 with a stream the user now owns, or non-zero (KZ_ENET,
 * KZ_ECANCELED) and NULL. Called exactly once. */
typedef void (*kz_cons__connect_cb)(void *data, int status,
                                    uv_stream_t *stream);

struct kz_cons__tls_config {
    uint64_t id;
    const char *address;   /* our raft address, sent in preambles */
    const char *bind;      /* listen address (host:port) */
    const char *cert, *key, *ca;
    const char *crl;       /* optional PEM CRL(s) of ca: revoked nodes refused */
    bool plaintext;        /* test only */
    unsigned handshake_timeout_ms;
    /* Optional: an open channel to node id ended from the other side (EOF
     * or reset on its TCP connection, not a close of ours). A process that
     * dies closes every connection it had, so this is how a node learns at
     * once that a peer is gone. Called once per channel. */
    void (*peer_gone)(void *data, uint64_t id);
    void *peer_gone_data;
};

int kz_cons__tls_new(struct kz_cons__tls **out, uv_loop_t *loop,
                     const struct kz_cons__tls_config *cfg, char *errmsg,
                     size_t errlen);
/* Starts listening; accepted channels go to cb. */
int kz_cons__tls_listen(struct kz_cons__tls *t, kz_cons__accept_cb cb,
                        void *data, char *errmsg, size_t errlen);
/* Opens a channel of `kind` to node `id` at address; the server's
 * certificate must name that id. Returns non-zero (and never calls cb) when
 * the connection cannot even be started. The returned handle cancels it. */
void *kz_cons__tls_connect(struct kz_cons__tls *t, int kind, uint64_t id,
                           const char *address, kz_cons__connect_cb cb,
                           void *data);
/* Cancels a pending connect from kz_cons__tls_connect: its cb fires with
 * KZ_ECANCELED (now, or never if it already fired). */
void kz_cons__tls_cancel(struct kz_cons__tls *t, void *pending);
/* Reloads certificate, key and CA from their files for new channels. */
int kz_cons__tls_reload(struct kz_cons__tls *t, char *errmsg, size_t errlen);
/* Stops listening, fails pending connects (KZ_ECANCELED), closes every
 * channel; cb fires when all handles are closed. Then free. */
void kz_cons__tls_close(struct kz_cons__tls *t, void (*cb)(void *), void *data);
void kz_cons__tls_free(struct kz_cons__tls *t);

/* The channel preamble (the first plaintext bytes of a channel), parsed and
 * built by pure functions so they can be fuzzed. */
#define KZ_CONS__PREAMBLE_MAX (8 + 1 + 8 + 2 + 255)
struct kz_cons__preamble {
    int kind;          /* KZ_CHAN_RAFT or KZ_CHAN_PEER */
    uint64_t id;       /* raft id the peer claims */
    char address[64];  /* its raft address, NUL-terminated */
    size_t length;     /* bytes of buf the preamble used */
};
/* Returns 1 with *out filled when buf starts with a whole, valid preamble;
 * 0 when more bytes are needed (never for more than KZ_CONS__PREAMBLE_MAX
 * bytes); -1 when it is malformed, with a reason in *why. */
int kz_cons__preamble_parse(const unsigned char *buf, size_t len,
                            struct kz_cons__preamble *out, const char **why);
/* Writes a preamble into out (KZ_CONS__PREAMBLE_MAX bytes); returns its
 * length, or 0 when address is empty or longer than 63 bytes. */
size_t kz_cons__preamble_build(int kind, uint64_t id, const char *address,
                               unsigned char *out);

/* Writes the bytes of bufs to s in order after whatever s has queued. While
 * nothing is queued they are written at once (uv_try_write): no copy, no
 * write callback, and no re-arming of the descriptor's poll that libuv
 * does after every uv_write. What the socket does not take then (or every
 * byte, when some are queued or the write fails) is copied into one
 * malloc'd struct kz_cons__wreq and queued with uv_write; cb, called only
 * for such a write, must free(w->data). Returns 0, or a libuv error when
 * nothing could be queued. */
struct kz_cons__wreq {
    uv_write_t w;
    uv_buf_t buf;
    char data[];
};
int kz_cons__write(uv_stream_t *s, const uv_buf_t *bufs, unsigned nbufs,
                   uv_write_cb cb);

struct kz_cons__tls_stats {
    uint64_t accepted, refused, handshakes_failed, connected;
    uint64_t paused; /* times a channel stopped reading: flow control */
    uint64_t queued; /* bytes now waiting in the channels' write queues */
};
void kz_cons__tls_stats(struct kz_cons__tls *t, struct kz_cons__tls_stats *out);

#endif
