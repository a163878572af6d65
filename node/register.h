/*
 * register.h — the replicated state machine of the victim register
 * (被災者台帳) and the shelter registry, and the read side of their keys.
 *
 * Key layout (every key starts with the municipality code, so the state can
 * later be range-partitioned by municipality):
 *   records  <muni>/v/<id>                 Victim (protobuf)
 *            <muni>/s/<id>                 Shelter (protobuf)
 *   index    <muni>/n/<blind prefix>\0<id> every prefix of every folded
 *                                          name key, as a keyed hash (keys.h)
 *            <muni>/d/<blind dob>\0<id>    date of birth, keyed hash
 *            <muni>/s/<shelter>\0<id>      current shelter
 *            <muni>/t/<status>\0<id>       安否 status
 *            <muni>/h/<household>\0<id>    household members
 *            <muni>/c/<shelter>\0<counter> shelter counters, 8 bytes BE
 *            <muni>/P/<blind PFIF id>      victim id of an imported PFIF
 *                                          person_record_id (pfif.h)
 */
#ifndef KZ_NODE_REGISTER_H
#define KZ_NODE_REGISTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

/* Applies one command (a packed kizuna.Command) at index, in one batch with
 * the applied index. Deterministic. Commands that fail a rule (unknown id,
 * If-Match mismatch, malformed bytes) still consume their index and change
 * nothing else. When want_result, *result is a malloc'd "NNN" HTTP status
 * followed by the JSON body. A command may be sealed (keys.h): it is opened
 * first. Records are stored sealed, names and dates of birth indexed by
 * blind terms. *keys_changed is set when a key command or an address
 * book change was applied (the caller unwraps the keys and re-reads the
 * address book, addrbook.h). Returns a kz_error only for storage
 * failures or a command this node cannot open (fatal: the node stops rather
 * than diverge). */
struct kz_node_keys;
int kz_node_apply(kz_stor *st, struct kz_node_keys *keys, uint64_t index,
                  const char *cmd, size_t len, bool want_result,
                  char **result, size_t *result_len, bool *keys_changed);

/* The leader's merge of read audits (kz_cons_propose_merged): n commands,
 * each an AuditAppend of read records for one municipality with no queue
 * fields (and no audit context or request id of the command's own),
 * become one AuditAppend (sealed when any was) with their records
 * in order. The merged command's time is the latest of theirs; a record
 * whose own command was earlier keeps that time as its context's at_ms.
 * KZ_EINVAL when any is not such a command (they then go one by one). */
int kz_node_merge_audits(struct kz_node_keys *keys, const char *const *cmds,
                         const size_t *lens, size_t n, char **out,
                         size_t *out_len);

/* The most registrations one merged entry holds (CreateEach). */
#define KZ_NODE_EACH_MAX 256
/* The leader's merge of registrations (kz_cons_propose_batched): n
 * commands, each a CreateVictim of one municipality, become one CreateEach
 * (sealed when any was) holding each one's victim, time, request id and
 * audit context, in order; apply gives each its own result and audit
 * record (kz_cons_fsm.merge_each). KZ_EINVAL when any is not such a
 * command, or n > KZ_NODE_EACH_MAX (they then go one by one). */
int kz_node_merge_creates(struct kz_node_keys *keys, const char *const *cmds,
                          const size_t *lens, size_t n, char **out,
                          size_t *out_len);

/* Point reads. KZ_ENOTFOUND when absent; *out freed with
 * kizuna__*__free_unpacked(*out, NULL). */
int kz_node_load_victim(kz_stor *st, struct kz_node_keys *keys,
                        const char *muni, const char *id, Kizuna__Victim **out);
int kz_node_load_shelter(kz_stor *st, const char *muni, const char *id,
                         Kizuna__Shelter **out);

/* The per-shelter summary of API.md as a new JSON object. */
json_t *kz_node_shelter_summary(kz_stor *st, const char *muni,
                                const char *shelter_id);

/* Counter names kept per shelter. */
extern const char *const kz_node_counter_names[];

#endif
