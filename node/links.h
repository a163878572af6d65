/*
 * links.h — organisations, the business-process whitelist, the ID table,
 * link codes and information-provision mediation (DOMAIN.md §2), on the
 * replicated state. Apply is in links.c (kz_node_apply_links, apply.h); the
 * read side for the HTTP API is here.
 *
 * Key layout (records column family unless noted):
 *   <muni>/o/<org>                 Org, sealed: its link-code keys live
 *                                  only here and in sealed commands
 *   <muni>/w/<bp_id>               WhitelistEntry
 *   <muni>/i/<id code hex>         the victim id of an ID code
 *   <muni>/j/<victim id>           the ID code (16 bytes) of a victim
 *   <muni>/l/<org>\0<id code hex>  LinkRow: key index, link and unlink dates
 *   <muni>/m/<mediation id>        Mediation, sealed
 *   index <muni>/q/<provider>\0<mediation id>   a provider's inbox
 * The tables hold ID codes (random, 128 bits) and link metadata only: no My
 * Number, none of the four facts. A link code is computed when it is
 * shown (linkcode.h); it is never stored.
 *
 * Dates (link, unlink) are Japan's calendar days: UTC+9 of the command time.
 */
#ifndef KZ_NODE_LINKS_H
#define KZ_NODE_LINKS_H

#include <jansson.h>
#include <stdint.h>

#include "kizuna.pb-c.h"
#include "linkcode.h"
#include "state_store.h"

struct kz_node_keys;

/* Information types a mediation may ask for. */
extern const char *const kz_node_info_types[];

/* The organisation as JSON (never its keys); NULL when absent. */
json_t *kz_node_org_json(kz_stor *st, struct kz_node_keys *keys,
                         const char *muni, const char *code);
/* The whitelist entry as JSON; NULL when absent. */
json_t *kz_node_whitelist_json(kz_stor *st, const char *muni,
                               const char *bp_id);

/* Resolves a link code presented by org at time now_ms to the person's
 * victim id (out, 80 bytes) and ID code hex (33 bytes). KZ_OK, KZ_ENOTFOUND
 * (not issued to org, malformed, or no such person), KZ_EINVAL (unlinked). */
int kz_node_link_resolve(kz_stor *st, struct kz_node_keys *keys,
                         const char *muni, const char *org, const char *code,
                         int64_t now_ms, char victim_id[80],
                         char id_hex[33]);

/* A mediation as its requester or provider sees it (each with its own link
 * code); NULL when absent or viewer is neither. victim_id: whose. */
json_t *kz_node_mediation_view(kz_stor *st, struct kz_node_keys *keys,
                               const char *muni, const char *id,
                               const char *viewer, char victim_id[80]);
/* A provider's pending requests after mediation id `after` ("" from the
 * start), at most limit; *next (80 bytes) the id to continue from, "" when
 * done. Each item carries the provider's own link code; the victims' ids
 * are appended to victim_ids (for the audit record). */
json_t *kz_node_mediation_inbox(kz_stor *st, struct kz_node_keys *keys,
                                const char *muni, const char *provider,
                                const char *after, size_t limit, char *next,
                                json_t *victim_ids);

/* A person's link code for one organisation (kz_node_link_for). */
struct kz_node_link {
    int status; /* 200 existing link, 201 new link, 403 org not registered,
                   409 unlinked under the current key, 500 key missing */
    char code[KZ_NODE_LINKCODE_MAX];
    unsigned char id[16]; /* the person's ID code */
    char id_hex[33];
    unsigned key_index;
    int64_t linked_ms;
};

/* Within apply: org's link code for the victim vid, as issuance gives it.
 * The person gets the ID code `fresh` if they have none; org gets a link row
 * (its current key, linked at time_ms) if it has none valid on that day.
 * Writes into b only then. KZ_OK with out->status saying which; other codes
 * are storage errors. The caller cleanses *out. */
int kz_node_link_for(kz_stor *st, struct kz_node_keys *keys,
                     kz_stor_batch *b, const char *muni, const char *org,
                     const char *vid, const unsigned char fresh[16],
                     int64_t time_ms, struct kz_node_link *out);

/* Within apply: the ID code of victim vid, created from `fresh` (and the
 * reverse entry written into b) when they have none. */
int kz_node_id_code_of(kz_stor *st, kz_stor_batch *b, const char *muni,
                       const char *vid, const unsigned char fresh[16],
                       unsigned char id[16]);

/* The victim id (80 bytes) of an ID code (hex). KZ_ENOTFOUND when none. */
int kz_node_victim_of(kz_stor *st, const char *muni, const char *id_hex,
                      char victim_id[80]);

/* Calendar day in Japan (UTC+9) of a time in ms: YYYY-MM-DD. */
void kz_node_date_jst(int64_t ms, char out[11]);

#endif
