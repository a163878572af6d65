/*
 * apply.h — what the parts of apply share (internal to node/): the result
 * a command hands back to the proposer, and the storage key layout.
 *
 * register.c applies register commands and dispatches the others;
 * links.c applies organisations, the whitelist, the ID table and
 * mediation. Both write into the one batch of the command.
 */
#ifndef KZ_NODE_APPLY_H
#define KZ_NODE_APPLY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

#define KZ_NODE_KEY_MAX 512

struct kz_node_keys;

/* A command's outcome. status is kept on every replica (it goes into the
 * audit record); the body only where someone waits for it. subject and
 * person, when apply finds them, name whose data the command touched. */
struct kz_node_result {
    bool want;
    char **buf;
    size_t *len;
    int status;
    char subject[80]; /* record id */
    char person[33];  /* ID code, hex */
    /* A key whose replaced value should leave the files once the batch is
     * committed (a replaced photo): compacted after the commit. */
    int compact_cf;
    char compact_key[KZ_NODE_KEY_MAX];
    size_t compact_klen;
};

/* Sets the result to "NNN" + the JSON body (taken). */
void kz_node_result_set(struct kz_node_result *r, int status, json_t *body);
/* The same with a victim record as the body (kz_node_victim_json), written
 * only when someone waits for it. */
void kz_node_result_victim(struct kz_node_result *r, int status,
                           const Kizuna__Victim *v);
void kz_node_result_error(struct kz_node_result *r, int status,
                          const char *code, const char *message);

/* "<muni>/<kind>/<a>" and, when b is not NULL, "\0<b>". 0 when it does not
 * fit in KZ_NODE_KEY_MAX. */
size_t kz_node_make_key(char *buf, const char *muni, char kind, const char *a,
                        const char *b);

/* The name terms' format of clusters created since 2026-12-07 (older ones
 * keep format 1, a term for every prefix, as the state says): a prefix of
 * c characters has a term of its own only when c is a rung (1-4, 6, 8, 12,
 * 16, 24, 32, 48, 64, 96, 128); the value of that term holds a tag
 * (KZ_NODE_TERM_TAG bytes: the start of the prefix's blind term, 64 bits) of every
 * longer prefix of the record's keys up to the next rung. A search for a
 * prefix between rungs reads the term of its longest prefix on a rung and
 * keeps the records whose value holds its tag. (KZ_NODE_TERMS_LADDER and
 * KZ_NODE_TERM_TAG are in keys.h, next to the format's field.) */
/* The largest rung <= chars (0 for 0). */
size_t kz_node_term_rung(size_t chars);
/* A prefix's tag: the first KZ_NODE_TERM_TAG bytes of its blind term
 * (KZ_NODE_BLIND_HEX hex digits, lower case). */
void kz_node_term_tag(const char *blind, char *out);
/* The byte length of the longest prefix of term[0, len) whose length in
 * characters is a rung (the walk for_prefix_keys makes when indexing). */
size_t kz_node_rung_prefix(const char *term, size_t len);

/* A record id as it follows its term in the terms column family: every
 * byte b as 255 - b. Ids begin with their creation time, so the newest
 * record's key is the first of its term, where RocksDB's skip list of the
 * term inserts it (and checks it is not there yet) in a few comparisons;
 * in id order it went to the end of the list, a walk down every level.
 * Its own inverse; out holds strlen(id) + 1 bytes. */
void kz_node_term_id(char *out, const char *id, size_t n);

/* Puts msg into the batch under key (records column family), sealed with
 * the current data key: the storage key is the associated data and, with
 * the index, derives the nonce, so every replica writes the same bytes. */
int kz_node_put_sealed(kz_stor_batch *b, struct kz_node_keys *keys,
                       uint64_t index, const char *key, size_t kl,
                       const ProtobufCMessage *msg);

/* Puts msg into the batch under key (records column family), in the clear:
 * for records that hold no personal data. */
void kz_node_put_plain(kz_stor_batch *b, const char *key, size_t kl,
                       const ProtobufCMessage *msg);

/* Reads a value kz_node_put_plain wrote and decodes it as d. KZ_ENOTFOUND
 * when absent, KZ_ECORRUPT when it does not decode. */
int kz_node_get_plain(kz_stor *st, const char *key, size_t kl,
                      const ProtobufCMessageDescriptor *d,
                      ProtobufCMessage **out);

/* Reads and opens a value kz_node_put_sealed (or the photo store) wrote in
 * column family cf and decodes it as d. KZ_ENOTFOUND when absent,
 * KZ_ECORRUPT when it does not open or decode. */
int kz_node_get_sealed(kz_stor *st, struct kz_node_keys *keys, int cf,
                       const char *key, size_t kl,
                       const ProtobufCMessageDescriptor *d,
                       ProtobufCMessage **out);

/* Applies the link-code and mediation commands (links.c). */
int kz_node_apply_links(kz_stor *st, struct kz_node_keys *keys,
                        kz_stor_batch *b, const char *muni, uint64_t index,
                        const Kizuna__Command *cmd, struct kz_node_result *r);

/* Applies identity checks: challenges, card bindings, verifications, the
 * CRL and the disaster fallback (idcheck.c). */
int kz_node_apply_idcheck(kz_stor *st, struct kz_node_keys *keys,
                          kz_stor_batch *b, const char *muni, uint64_t index,
                          const Kizuna__Command *cmd, struct kz_node_result *r);

/* Applies payout programs, payouts and their export (payouts.c). */
int kz_node_apply_payouts(kz_stor *st, struct kz_node_keys *keys,
                          kz_stor_batch *b, const char *muni, uint64_t index,
                          const Kizuna__Command *cmd, struct kz_node_result *r);

#endif
