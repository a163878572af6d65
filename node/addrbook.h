/*
 * addrbook.h — the nodes this node knows: its configuration's 'node' lines,
 * then the ones added through the API with their addresses and replicated
 * in the state (addrbook.c).
 */
#ifndef KZ_NODE_ADDRBOOK_H
#define KZ_NODE_ADDRBOOK_H

#include <stdint.h>

#include "apply.h"
#include "node.h"

/* Applies SetNodeAddresses: every entry valid, or nothing stored (400);
 * a raft address another node already has: 409 address_in_use. */
int kz_node_apply_addresses(kz_stor *st, kz_stor_batch *b,
                            const Kizuna__Command *cmd,
                            struct kz_node_result *r);

/* n->book from the configuration's 'node' lines (at init). */
void kz_node_book_init(struct kz_node *n);
/* Adds the replicated entries (at start, after an apply that changed them,
 * after a snapshot install) and tells consensus (kz_cons_set_peer). */
void kz_node_book_refresh(struct kz_node *n);
/* The entry for id, NULL when none. */
const struct kz_node_member *kz_node_book_find(const struct kz_node *n,
                                               uint64_t id);

#endif
