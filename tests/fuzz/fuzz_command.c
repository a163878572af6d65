/*
 * fuzz_command.c — libFuzzer driver for the raft command decoder and the
 * state machine, as a follower meets them: the input is the payload of a
 * committed entry (a packed kizuna.Command, a sealed one, or anything at
 * all), applied by kz_node_apply to a real RocksDB store.
 *
 * Setup, once per process: a keyring with one fixed test master key and a
 * store in a private temp directory (fuzz_util.h: /dev/shm when present);
 * the cluster's keys are created by applying kz_node_keys_make_init's
 * command at index 1, as the first leader would. The store is kept across
 * inputs, so commands meet the records earlier inputs created (a patch or a
 * note can find its victim); the index grows by one per input, as raft's
 * would. Inputs of even length are applied with want_result (the
 * proposer's path, which builds the "NNN" + JSON result), the others as a
 * follower does: decided by the input, so a crash replays on the same path.
 *
 * Two input forms:
 *   "SEAL" + bytes  the driver seals the bytes with the current data key
 *                   (kz_node_keys_seal_command, as a proposer does) and
 *                   applies that: the sealed path with a key that opens it;
 *   anything else   applied as is: plain commands, garbage, and "KZSC" +
 *                   garbage (a sealed command that does not open).
 * A key command from the fuzzer may leave the state with keys this keyring
 * cannot unwrap; the node would stop there (by design), so the driver starts
 * over with a fresh store instead.
 *
 * The same input also goes, as two proposals at once, through the
 * leader's merge of read audits (kz_node_merge_audits): it must refuse
 * whatever is not a read audit (non-zero, nothing made), and what it
 * merges must apply with 200 and carry every record of both.
 *
 * And through the leader's merge of registrations (kz_node_merge_creates):
 * it must refuse whatever is not a registration; what it merges (the same
 * registration twice) must apply with two framed results, the second a
 * 409 conflict when the first registered (201), else the same status.
 *
 * Properties checked: apply returns KZ_OK for every input except one that
 * claims to be sealed ("KZSC") and does not open — those, and storage
 * failures, are the documented fatal errors; an applied entry moves the
 * applied index to its index; a wanted result is "NNN" and a JSON object
 * whose times are all well-formed RFC 3339, or, for merged registrations
 * (CreateEach), such results each framed by a 4-byte big-endian length.
 * Seeds (packed valid commands, tests/fuzz/make_seeds.c):
 * tests/fuzz/corpus/command/.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "audit.h"
#include "keys.h"
#include "register.h"
#include "state_store.h"

#define COMMAND_MUNI "131016"
/* A test-only master key: nothing it protects leaves the fuzzer's temp
 * directory. */
#define COMMAND_MASTER_KEY                                                    \
    "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

static kz_stor *command_store;
static char command_store_path[320];
static struct kz_node_keys command_keys;
static uint64_t command_index;
static unsigned command_generation;

/* Closes the store and removes its directory (a reset must not fill
 * /dev/shm with dead stores). */
static void command_close_store(void)
{
    if (command_store == NULL)
        return;
    kz_stor_close(command_store);
    command_store = NULL;
    nftw(command_store_path, kz_fuzz__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void command_die(const char *what, int rv, const char *msg)
{
    fprintf(stderr, "fuzz_command: %s: %s: %s\n", what, kz_strerror(rv),
            msg);
    abort();
}

/* Opens a new, empty store and gives it the cluster's keys (index 1). */
static void command_new_store(void)
{
    const char *dir = kz_fuzz_tmpdir("command");
    char path[320], err[256] = "";
    if (command_generation == 0) {
        snprintf(path, sizeof path, "%s/master.keys", dir);
        FILE *f = fopen(path, "w");
        if (f == NULL || fputs(COMMAND_MASTER_KEY, f) < 0 || fclose(f) != 0)
            command_die("writing the keyring", KZ_EIO, path);
        chmod(path, 0600);
        int rv = kz_node_keys_open(&command_keys, path);
        if (rv != KZ_OK)
            command_die("keyring", rv, command_keys.errmsg);
    }
    command_close_store();
    snprintf(command_store_path, sizeof command_store_path, "%s/state-%u",
             dir, command_generation++);
    int rv = kz_stor_open(command_store_path, &command_store, err, sizeof err);
    if (rv != KZ_OK)
        command_die("opening a store", rv, err);
    /* Registered after RocksDB's first open: exit handlers run in reverse,
     * so the store closes before RocksDB's own statics (its default Env,
     * made on first use) are destroyed. */
    static bool close_at_exit;
    if (!close_at_exit)
        close_at_exit = atexit(command_close_store) == 0;

    char *init;
    size_t init_len;
    bool changed = false;
    rv = kz_node_keys_make_init(&command_keys, COMMAND_MUNI, &init, &init_len);
    if (rv != KZ_OK)
        command_die("making the key init command", rv, command_keys.errmsg);
    rv = kz_node_apply(command_store, &command_keys, 1, init, init_len, false,
                       NULL, NULL, &changed);
    free(init);
    if (rv != KZ_OK || !changed)
        command_die("applying the key init command", rv, "");
    if ((rv = kz_node_keys_refresh(&command_keys, command_store)) != KZ_OK)
        command_die("unwrapping the keys", rv, command_keys.errmsg);
    command_index = kz_stor_applied_index(command_store);
}

/* Every time in a result (created_at, at, checked_in...) is RFC 3339 UTC
 * with milliseconds, "YYYY-MM-DDTHH:MM:SS.mmmZ", whatever time the command
 * carried. */
static void command_check_times(json_t *j, const char *key)
{
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) command_check_times(v, k);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) command_check_times(v, key);
    } else if (json_is_string(j) && key != NULL &&
               (strstr(key, "_at") != NULL || strncmp(key, "checked_", 8) == 0 ||
                strcmp(key, "at") == 0)) {
        const char *t = json_string_value(j);
        static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
        FUZZ_CHECK(strlen(t) == sizeof shape - 1);
        for (size_t i = 0; i < sizeof shape - 1; i++)
            FUZZ_CHECK(shape[i] == 'd' ? t[i] >= '0' && t[i] <= '9'
                                       : t[i] == shape[i]);
    }
}

/* Checks one "NNN" + JSON result of rlen bytes; returns NNN. */
static int command_check_result(const char *result, size_t rlen)
{
    FUZZ_CHECK(result != NULL && rlen >= 3);
    FUZZ_CHECK(result[0] >= '1' && result[0] <= '5' && result[1] >= '0' &&
               result[1] <= '9' && result[2] >= '0' && result[2] <= '9');
    json_t *body = json_loadb(result + 3, rlen - 3, 0, NULL);
    FUZZ_CHECK(json_is_object(body));
    command_check_times(body, NULL);
    json_decref(body);
    return (result[0] - '0') * 100 + (result[1] - '0') * 10 + result[2] - '0';
}

/* Checks a merged entry's framed results: how many there are, and the
 * statuses of the first max in st. */
static size_t command_check_frames(const char *res, size_t rlen, int *st,
                                   size_t max)
{
    size_t n = 0, off = 0;
    while (off < rlen) {
        FUZZ_CHECK(rlen - off >= 4);
        const unsigned char *p = (const unsigned char *)res + off;
        size_t fl = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
                    (size_t)p[2] << 8 | p[3];
        FUZZ_CHECK(fl <= rlen - off - 4);
        int status = command_check_result(res + off + 4, fl);
        if (n < max)
            st[n] = status;
        n++;
        off += 4 + fl;
    }
    return n;
}

/* Whether the (possibly sealed) input is a merged-registrations entry. */
static bool command_is_each(const char *in, size_t len)
{
    char *plain = NULL;
    size_t plen = 0;
    bool sealed = false;
    if (kz_node_keys_open_command(&command_keys, in, len, &plain, &plen,
                                  &sealed) != KZ_OK)
        return false;
    Kizuna__Command *c = kizuna__command__unpack(
        NULL, sealed ? plen : len, (const uint8_t *)(sealed ? plain : in));
    free(plain);
    bool each = c != NULL && c->op_case == KIZUNA__COMMAND__OP_CREATE_EACH;
    if (c != NULL)
        kizuna__command__free_unpacked(c, NULL);
    return each;
}

/* Applies a merged entry at the next index, with a result (freed by the
 * caller). */
static char *command_apply_merged(char *merged, size_t mlen, size_t *rlen)
{
    char *result = NULL;
    bool keys_changed = false;
    uint64_t index = ++command_index;
    int rv = kz_node_apply(command_store, &command_keys, index, merged, mlen,
                           true, &result, rlen, &keys_changed);
    free(merged);
    FUZZ_CHECK(rv == KZ_OK && !keys_changed);
    FUZZ_CHECK(kz_stor_applied_index(command_store) == index);
    return result;
}

/* The input twice, merged as the leader merges registrations; what
 * merges is applied at the next index. */
static void command_merge_creates(const char *in, size_t len)
{
    const char *pair[2] = {in, in};
    size_t lens[2] = {len, len};
    char *merged = NULL;
    size_t mlen = 0;
    int rv =
        kz_node_merge_creates(&command_keys, pair, lens, 2, &merged, &mlen);
    if (rv != KZ_OK) {
        FUZZ_CHECK(merged == NULL);
        return;
    }
    FUZZ_CHECK(merged != NULL && mlen > 0);
    FUZZ_CHECK(command_is_each(merged, mlen));
    size_t result_len = 0;
    char *result = command_apply_merged(merged, mlen, &result_len);
    int st[2];
    FUZZ_CHECK(command_check_frames(result, result_len, st, 2) == 2);
    FUZZ_CHECK(st[0] == 201 ? st[1] == 409 : st[1] == st[0]);
    free(result);
}

/* The input twice, merged as the leader merges read audits; what merges
 * is applied at the next index. */
static void command_merge(const char *in, size_t len)
{
    const char *pair[2] = {in, in};
    size_t lens[2] = {len, len};
    char *merged = NULL;
    size_t mlen = 0;
    int rv = kz_node_merge_audits(&command_keys, pair, lens, 2, &merged, &mlen);
    if (rv != KZ_OK) {
        FUZZ_CHECK(merged == NULL);
        return;
    }
    FUZZ_CHECK(merged != NULL && mlen > 0);
    /* How many records the merge holds: twice the input's. */
    char *plain = NULL;
    size_t plen = 0;
    bool was_sealed = false;
    FUZZ_CHECK(kz_node_keys_open_command(&command_keys, merged, mlen, &plain,
                                         &plen, &was_sealed) == KZ_OK);
    Kizuna__Command *c = kizuna__command__unpack(
        NULL, was_sealed ? plen : mlen,
        (const uint8_t *)(was_sealed ? plain : merged));
    free(plain);
    FUZZ_CHECK(c != NULL && c->op_case == KIZUNA__COMMAND__OP_AUDIT_APPEND);
    size_t records = c->audit_append->n_entries;
    kizuna__command__free_unpacked(c, NULL);
    FUZZ_CHECK(records % 2 == 0);
    struct kz_node_audit_head before, after;
    FUZZ_CHECK(kz_node_audit_load_head(command_store, &before) == KZ_OK);
    size_t result_len = 0;
    char *result = command_apply_merged(merged, mlen, &result_len);
    FUZZ_CHECK(result != NULL && result_len >= 3 &&
               memcmp(result, "200", 3) == 0);
    free(result);
    FUZZ_CHECK(kz_node_audit_load_head(command_store, &after) == KZ_OK);
    FUZZ_CHECK(after.seq == before.seq + records);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (command_store == NULL)
        command_new_store();
    const char *in = (const char *)data;
    size_t len = size;
    char *sealed = NULL;
    if (size >= 4 && memcmp(data, "SEAL", 4) == 0) {
        int rv = kz_node_keys_seal_command(&command_keys, data + 4, size - 4,
                                           &sealed, &len);
        if (rv != KZ_OK)
            command_die("sealing", rv, command_keys.errmsg);
        in = sealed;
    }
    bool claims_sealed =
        sealed == NULL && size >= 4 && memcmp(data, "KZSC", 4) == 0;
    command_merge(in, len);
    command_merge_creates(in, len);
    bool each = command_is_each(in, len);

    uint64_t index = ++command_index;
    bool want = (size & 1) == 0, keys_changed = false;
    char *result = NULL;
    size_t result_len = 0;
    int rv = kz_node_apply(command_store, &command_keys, index, in, len, want,
                           want ? &result : NULL, want ? &result_len : NULL,
                           &keys_changed);
    free(sealed);
    if (rv != KZ_OK && !claims_sealed)
        fprintf(stderr, "fuzz_command: apply: %s: %s\n", kz_strerror(rv),
                kz_stor_errmsg(command_store));
    FUZZ_CHECK(rv == KZ_OK || claims_sealed);
    if (rv != KZ_OK) {
        FUZZ_CHECK(!want || result == NULL);
        return 0;
    }
    FUZZ_CHECK(kz_stor_applied_index(command_store) == index);
    if (want && each) {
        command_check_frames(result, result_len, NULL, 0);
        free(result);
    } else if (want) {
        FUZZ_CHECK(result != NULL && strlen(result) == result_len);
        command_check_result(result, result_len);
        free(result);
    }
    if (keys_changed &&
        kz_node_keys_refresh(&command_keys, command_store) != KZ_OK)
        command_new_store(); /* keys this keyring cannot open: start over */
    return 0;
}
