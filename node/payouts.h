/*
 * payouts.h — payout programs, the payout ledger and the bank transfer
 * export (DOMAIN.md §6), on the replicated state. Apply is in payouts.c
 * (kz_node_apply_payouts, apply.h); the rules are payout_rules.h, the file
 * format zengin.h; this header is the read side for the HTTP API and the
 * parsers of request bodies (run by the proposer, before anything is
 * proposed).
 *
 * Exactly once. Every check that decides whether money is paid runs inside
 * apply, in log order, on the state as of that entry: two requests for the
 * same household and item racing through two regions are ordered by the
 * log, and the second sees the first's payout (409). A retried request with
 * the same Idempotency-Key and the same body gets the first answer back; the
 * same key with another body is refused (422 idempotency_key_reused).
 *
 * Key layout (records column family unless noted):
 *   <muni>/g/<program>                Program (plain: no personal data)
 *   <muni>/$/<payout id>              Payout, sealed (holds a bank account)
 *   <muni>/u/<program>\0<hid>\0<item> the payout id that paid this item
 *   <muni>/n/<org>\0<idempotency key> idempotency record: request hash,
 *                                     status and body of the first answer
 *   index <muni>/v/<hid>\0<payout id> a household's payouts
 *   index <muni>/e/<payout id>        approved, not yet exported
 *   <muni>/X/<export id>              an export: the file, count, total
 *   <muni>/L/<program>\0<item>        ledger: "<count> <yen>" of payouts
 * Household size and damage are read from the register at apply: the
 * members indexed under index <muni>/h/<hid>\0<victim id>; the damage is
 * the latest 罹災証明書 level set on any member (latest damage_certified_on,
 * then latest change).
 */
#ifndef KZ_NODE_PAYOUTS_H
#define KZ_NODE_PAYOUTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

struct kz_node_keys;

/* Every program as JSON, stored or default: an array of objects
 * {id, name, disaster_date, per_household_yen, closed, table, version}. */
json_t *kz_node_programs_json(kz_stor *st, const char *muni);

/* One program (stored, else its default); NULL for an unknown id. */
json_t *kz_node_program_json(kz_stor *st, const char *muni, const char *id);

/* Checks PUT /v1/programs/{id}'s body and fills *out (fields point into
 * body and into *table_json, which the caller frees). 0, or -1 with a
 * message for a 400 in err. */
int kz_node_program_from_json(const char *id, const json_t *body,
                              Kizuna__Program *out, char **table_json,
                              char *err, size_t errlen);

/* Checks POST /v1/payouts's body {household_id, program, item, account}
 * and fills *out and *acct (strings point into body). 0, or -1 with a
 * message for a 400 in err. */
int kz_node_payout_request_from_json(const json_t *body,
                                     Kizuna__CreatePayout *out,
                                     Kizuna__BankAccount *acct, char *err,
                                     size_t errlen);

/* One payout as JSON (with its account); NULL when absent. *household
 * (80 bytes, may be NULL) receives its household id. */
json_t *kz_node_payout_json(kz_stor *st, struct kz_node_keys *keys,
                            const char *muni, const char *id,
                            char *household);

/* A household's payouts, in id order, and the total paid; with_account
 * false leaves the bank accounts out (a mediation's answer to another
 * organisation). */
json_t *kz_node_household_payouts_json(kz_stor *st, struct kz_node_keys *keys,
                                       const char *muni, const char *hid,
                                       bool with_account);

/* The ledger: per program and item, the count and yen of every payout
 * made, and the totals: {programs: {<id>: {items: {<item>: {count, yen}},
 * count, yen}}, count, yen}. Kept by apply with each payout. */
json_t *kz_node_ledger_json(kz_stor *st, const char *muni);

#endif
