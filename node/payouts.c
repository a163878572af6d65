/* payouts.c — SKELETON, being written (see payouts.h). */
#include "payouts.h"
#include <stdio.h>
#include "apply.h"

int kz_node_apply_payouts(kz_stor *st, struct kz_node_keys *keys,
                          kz_stor_batch *b, const char *muni, uint64_t index,
                          const Kizuna__Command *cmd, struct kz_node_result *r)
{
    (void)st; (void)keys; (void)b; (void)muni; (void)index; (void)cmd;
    kz_node_result_error(r, 501, "not_implemented", "payouts are being built");
    return 0;
}
json_t *kz_node_programs_json(kz_stor *st, const char *muni) { (void)st; (void)muni; return json_array(); }
json_t *kz_node_program_json(kz_stor *st, const char *muni, const char *id) { (void)st; (void)muni; (void)id; return NULL; }
int kz_node_program_from_json(const char *id, const json_t *body, Kizuna__Program *out, char **table_json, char *err, size_t errlen) { (void)id; (void)body; (void)out; *table_json = NULL; snprintf(err, errlen, "not built"); return -1; }
int kz_node_payout_request_from_json(const json_t *body, Kizuna__CreatePayout *out, Kizuna__BankAccount *acct, char *err, size_t errlen) { (void)body; (void)out; (void)acct; snprintf(err, errlen, "not built"); return -1; }
json_t *kz_node_payout_json(kz_stor *st, struct kz_node_keys *keys, const char *muni, const char *id, char *household) { (void)st; (void)keys; (void)muni; (void)id; (void)household; return NULL; }
json_t *kz_node_household_payouts_json(kz_stor *st, struct kz_node_keys *keys, const char *muni, const char *hid) { (void)st; (void)keys; (void)muni; (void)hid; return json_array(); }
