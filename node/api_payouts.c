/*
 * api_payouts.c — the payout endpoints of API.md that change state
 * (DOMAIN.md §6); the reads (GET /v1/programs, /v1/payouts) are served by
 * http_api.c's read path from payouts.h, audited like every read of
 * personal data.
 *
 *   PUT  /v1/programs/{id}   (operator) a program's disaster date, table,
 *                            gienkin amount, closed
 *   POST /v1/payouts         (payout) {household_id, program, item,
 *                            account} with Idempotency-Key
 *   POST /v1/payouts/export  (payout) the 全銀 transfer file of approved
 *                            payouts not yet exported
 *
 * The proposer only checks the shape of the input and chooses ids; whether
 * money is owed, how much, and whether it was paid already is decided in
 * apply (payouts.c), in log order.
 */
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"
#include "links.h"
#include "payouts.h"
#include "records.h"

static bool random_hex(char *out, size_t nbytes)
{
    unsigned char b[16];
    if (nbytes > sizeof b || RAND_bytes(b, (int)nbytes) != 1)
        return false;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return true;
}

static int handle_program_put(struct kz_node *n, h2o_req_t *req,
                              const struct route *r, const char *arg,
                              const char *rid, json_t *body)
{
    Kizuna__Program p = KIZUNA__PROGRAM__INIT;
    char *table = NULL, err[256];
    if (kz_node_program_from_json(arg, body, &p, &table, err, sizeof err) !=
        0) {
        free(table);
        kz_http_send_error(n, req, rid, strncmp(err, "unknown program", 15)
                                            ? 400
                                            : 404,
                           strncmp(err, "unknown program", 15) ? "bad_request"
                                                               : "not_found",
                           err);
        return 0;
    }
    Kizuna__PutProgram pp = KIZUNA__PUT_PROGRAM__INIT;
    pp.program = &p;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_PUT_PROGRAM;
    cmd.put_program = &pp;
    int rv = kz_http_propose(n, req, r, arg, rid, &cmd);
    free(table);
    return rv;
}

/* Idempotency-Key: 1-128 printable ASCII characters. */
static bool valid_idem_key(const char *k)
{
    size_t len = strlen(k);
    if (len == 0 || len > 128)
        return false;
    for (const char *p = k; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return false;
    return true;
}

static int handle_payout_create(struct kz_node *n, h2o_req_t *req,
                                const struct route *r, const char *rid,
                                json_t *body)
{
    char key[160];
    int got = kz_http_header(req, "idempotency-key", key, sizeof key);
    if (got != 1 || !valid_idem_key(key)) {
        kz_http_send_error(n, req, rid, 400, "idempotency_key_required",
                           "Idempotency-Key: required, 1 to 128 printable "
                           "ASCII characters; send the same key when you "
                           "retry the same payout");
        return 0;
    }
    Kizuna__CreatePayout cp = KIZUNA__CREATE_PAYOUT__INIT;
    Kizuna__BankAccount acct = KIZUNA__BANK_ACCOUNT__INIT;
    char err[256];
    if (kz_node_payout_request_from_json(body, &cp, &acct, err, sizeof err) !=
        0) {
        kz_http_send_error(n, req, rid, 400, "bad_request", err);
        return 0;
    }
    /* "The same body": the same JSON value, whatever its key order or
     * spacing. */
    char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    char id[33];
    uint8_t h[SHA256_DIGEST_LENGTH];
    if (canon == NULL || !random_hex(id, 16)) {
        free(canon);
        kz_http_send_error(n, req, rid, 500, "internal", "out of memory");
        return 0;
    }
    SHA256((const unsigned char *)canon, strlen(canon), h);
    free(canon);
    struct kz_http_caller_view who;
    kz_http_caller(n, &who);
    cp.id = id;
    cp.account = &acct;
    cp.idempotency_key = key;
    cp.has_request_sha256 = 1;
    cp.request_sha256.data = h;
    cp.request_sha256.len = sizeof h;
    cp.org = (char *)who.org;
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_CREATE_PAYOUT;
    cmd.create_payout = &cp;
    return kz_http_propose(n, req, r, cp.household_id, rid, &cmd);
}

static int handle_export(struct kz_node *n, h2o_req_t *req,
                         const struct route *r, const char *rid)
{
    const struct kz_node_config *c = &n->cfg;
    json_t *body = NULL;
    if (req->entity.base != NULL && req->entity.len > 0) {
        body = kz_http_parse_body(n, req, rid);
        static const char *const fields[] = {"transfer_date", "max", NULL};
        static const char *const none[] = {NULL};
        if (body == NULL ||
            !kz_http_check_fields(n, req, rid, body, fields, none)) {
            json_decref(body);
            return 0;
        }
    }
    const char *date = json_string_value(json_object_get(body, "transfer_date"));
    json_t *maxv = json_object_get(body, "max");
    if ((json_object_get(body, "transfer_date") && !kz_node_valid_date(date)) ||
        (maxv && (!json_is_integer(maxv) || json_integer_value(maxv) < 1 ||
                  json_integer_value(maxv) > 100000))) {
        json_decref(body);
        kz_http_send_error(n, req, rid, 400, "bad_request",
                           "transfer_date: YYYY-MM-DD (default: tomorrow, "
                           "Japan time); max: 1 to 100000 payouts");
        return 0;
    }
    if (c->payout_requester_code[0] == '\0' ||
        c->payout_account_number[0] == '\0') {
        json_decref(body);
        kz_http_send_error(n, req, rid, 503, "export_not_configured",
                           "this node has no sender account for transfer "
                           "files (payout_requester_code, "
                           "payout_account_number...)");
        return 0;
    }
    char mmdd[5], day[11];
    if (date != NULL) {
        snprintf(mmdd, sizeof mmdd, "%.2s%.2s", date + 5, date + 8);
    } else {
        uv_timeval64_t tv = {0, 0};
        uv_gettimeofday(&tv);
        kz_node_date_jst(tv.tv_sec * 1000 + 86400000LL, day);
        snprintf(mmdd, sizeof mmdd, "%.2s%.2s", day + 5, day + 8);
    }
    char id[33];
    if (!random_hex(id, 8)) {
        json_decref(body);
        kz_http_send_error(n, req, rid, 500, "internal", "no randomness");
        return 0;
    }
    Kizuna__TransferHeader th = KIZUNA__TRANSFER_HEADER__INIT;
    th.requester_code = (char *)c->payout_requester_code;
    th.requester_name = (char *)c->payout_requester_name;
    th.has_bank_code = th.has_branch_code = th.has_account_type = 1;
    th.bank_code = c->payout_bank_code;
    th.bank_name = (char *)c->payout_bank_name;
    th.branch_code = c->payout_branch_code;
    th.branch_name = (char *)c->payout_branch_name;
    th.account_type = c->payout_account_type;
    th.account_number = (char *)c->payout_account_number;
    th.transfer_mmdd = mmdd;
    Kizuna__ExportPayouts ep = KIZUNA__EXPORT_PAYOUTS__INIT;
    char export_id[40];
    snprintf(export_id, sizeof export_id, "x-%s", id);
    ep.export_id = export_id;
    ep.header = &th;
    if (maxv) {
        ep.has_max = 1;
        ep.max = (uint32_t)json_integer_value(maxv);
    }
    json_decref(body);
    Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
    cmd.op_case = KIZUNA__COMMAND__OP_EXPORT_PAYOUTS;
    cmd.export_payouts = &ep;
    return kz_http_propose(n, req, r, "", rid, &cmd);
}

int kz_api_payouts(struct kz_node *n, h2o_req_t *req, const struct route *r,
                   const char *arg, const char *rid)
{
    if (r->id == RT_PAYOUT_EXPORT)
        return handle_export(n, req, r, rid);
    json_t *body = kz_http_parse_body(n, req, rid);
    if (body == NULL)
        return 0;
    int rv = r->id == RT_PROGRAM_PUT
                 ? handle_program_put(n, req, r, arg, rid, body)
                 : handle_payout_create(n, req, r, rid, body);
    json_decref(body);
    return rv;
}
