/*
 * idcheck.h — identity checks (本人確認, DOMAIN.md §3) on the replicated
 * state: challenges, the binding of cards to people, the authentication
 * CA's CRL, verifications and the disaster fallback. Apply is in idcheck.c
 * (kz_node_apply_idcheck, apply.h); this header is the read side the HTTP
 * API needs before it proposes.
 *
 * The flow. POST /v1/identity/challenges proposes a challenge whose 32-byte
 * nonce and expiry the proposer chose. The card signs the nonce's SHA-256.
 * POST /v1/identity/verifications waits for a read index (so a challenge
 * made through any node is seen), reads the challenge and the installed CRL
 * here, checks the card (card.h: signature, chain, validity, revocation)
 * and proposes its verdict with the hash of the nonce it checked and the
 * CRL version it used. Apply then decides, in log order, once for the whole
 * cluster: an unknown, used or expired challenge is refused and nothing
 * changes; a CRL installed meanwhile refuses the verdict (crl_changed: the
 * proposer checks again); otherwise the challenge is consumed whatever the
 * verdict (one attempt per challenge), and a good card is mapped through
 * its binding to the person and to the caller's link code.
 *
 * Key layout (records column family unless noted):
 *   <muni>/x/<challenge id>            Challenge (nonce, expiry, use)
 *   index <muni>/t/<expiry, 16 hex>\0<challenge id>   for pruning
 *   <muni>/y/<key sha256 hex>          CardBinding: key -> ID code
 *   <muni>/r/crl                       IdentityCrl, the installed CRL
 *   <muni>/k/<fallback id>             IdentityFallback, sealed
 * Challenges are pruned a day after they expire (a few per new challenge,
 * by the command's time), so "used" and "expired" stay distinguishable
 * from "unknown" for that long.
 */
#ifndef KZ_NODE_IDCHECK_H
#define KZ_NODE_IDCHECK_H

#include <stdint.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

/* Loads the challenge id. KZ_OK, KZ_ENOTFOUND, KZ_ECORRUPT. */
int kz_node_challenge_load(kz_stor *st, const char *muni, const char *id,
                           Kizuna__Challenge **out);

/* Loads the installed CRL. KZ_OK, KZ_ENOTFOUND (none installed yet),
 * KZ_ECORRUPT. */
int kz_node_crl_load(kz_stor *st, const char *muni, Kizuna__IdentityCrl **out);

#endif
