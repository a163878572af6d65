/*
 * test_at_rest.c — personal data is never on disk in the clear, and keys
 * rotate without rewriting data.
 *
 * After registering a person with a known name, kana, address and date of
 * birth, every file under every node's data directory (raft segments and
 * snapshots, RocksDB WAL, SST and manifest) is searched for those bytes. The
 * same search must find two controls, so it is known to read those files:
 * a shelter id (an operational code kept readable in an index key) in the
 * RocksDB files, and the raft envelope magic in the raft segments.
 *
 * Then the data key is rotated, the master key is rotated, the keyring files
 * are cut down to the new master key only, and a restarted cluster still
 * reads every record.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static struct kz_it_cluster cluster;

static void teardown(void)
{
    kz_it_down(&cluster);
}

static bool has_leader(void *arg)
{
    return kz_it_leader(arg) != 0;
}


static json_t *call_json(kz_cli *cli, const char *method, const char *path,
                         const char *body, long expect)
{
    kz_cli_response r = kz_it_call(cli, method, path, body);
    cr_assert_eq(r.status, expect, "%s %s: %ld %s", method, path, r.status,
                 r.body ? r.body : "");
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    kz_cli_response_free(&r);
    return j;
}

static void write_keyring(const char *dir, const char *content)
{
    char path[300];
    snprintf(path, sizeof path, "%s/keys/master.key", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
    cr_assert_eq(chmod(path, 0600), 0);
}

Test(at_rest, no_personal_data_on_disk_and_keys_rotate, .fini = teardown,
     .timeout = 300)
{
    kz_it_up(&cluster, "tokyo:1,osaka:1,sapporo:1", NULL);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    kz_cli *reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    kz_cli *cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    kz_cli *op = kz_it_client(&cluster, "operator", NULL, 20000);

    json_t *j = call_json(reg, "PUT", "/v1/shelters/grepcontrolshelter",
                          "{\"name\":\"対照避難所\"}", 201);
    json_decref(j);
    j = call_json(reg, "POST", "/v1/victims",
                  "{\"name\":\"暗号 秘密太郎\",\"name_kana\":\"あんごう "
                  "ひみつたろう\",\"dob\":\"1961-07-13\",\"sex\":\"male\","
                  "\"address\":\"宮城県秘密市機密町9-8-7\",\"contact\":"
                  "\"090-1357-2468\",\"shelter_id\":\"grepcontrolshelter\"}",
                  201);
    char id[64], path[160];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    snprintf(path, sizeof path, "/v1/victims/%s", id);

    /* Searchable by name and date of birth through the blind indexes. */
    j = call_json(cw, "GET", "/v1/victims?q=himitsutaro", NULL, 200);
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);
    j = call_json(cw, "GET", "/v1/victims?q=%E7%A7%98%E5%AF%86&dob=1961-07-13",
                  NULL, 200); /* 秘密 */
    cr_assert_eq(json_array_size(json_object_get(j, "items")), 1);
    json_decref(j);

    /* Every node has applied it; stop them so files are complete. */
    kz_cli_close(reg);
    kz_cli_close(cw);
    kz_cli_close(op);
    cr_assert_eq(kz_it_ctl(&cluster, "down"), 0);

    static const char *secrets[] = {"秘密太郎", "ひみつたろう", "himitsu",
                                    "宮城県秘密市機密町9-8-7", "機密町",
                                    "1961-07-13", "090-1357-2468"};
    for (int node = 1; node <= cluster.n; node++) {
        char data[300];
        snprintf(data, sizeof data, "%s/node%d/data", cluster.dir, node);
        for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
            cr_assert_eq(kz_it_files_containing(data, secrets[i], NULL), 0,
                         "node %d: '%s' found on disk", node, secrets[i]);
        cr_assert_gt(kz_it_files_containing(data, "grepcontrolshelter", "/state/"),
                     0, "node %d: control not found in RocksDB files", node);
        cr_assert_gt(kz_it_files_containing(data, "KZC1", "/raft/"), 0,
                     "node %d: control not found in raft segments", node);
    }

    /* Rotate the data key, then the master key, then drop the old master
     * key from every node's keyring and restart: everything still reads. */
    cr_assert_eq(kz_it_ctl(&cluster, "up"), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    op = kz_it_client(&cluster, "operator", NULL, 20000);
    reg = kz_it_client(&cluster, "registrar", NULL, 20000);
    cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    /* The data key through the CLI, as an operator would. */
    char cli[1024];
    snprintf(cli, sizeof cli,
             "'%s/kizuna' --endpoints '%s/endpoints' --cacert '%s/pki/ca.pem' "
             "--cert '%s/pki/operator.pem' --key '%s/pki/operator.key' "
             "keys rotate --data >/dev/null",
             KZ_BIN_DIR, cluster.dir, cluster.dir, cluster.dir, cluster.dir);
    cr_assert_eq(system(cli), 0, "kizuna keys rotate --data failed");
    j = call_json(reg, "POST", "/v1/victims",
                  "{\"name\":\"回転 後子\",\"sex\":\"female\"}", 201);
    char id2[64], path2[160];
    snprintf(id2, sizeof id2, "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    snprintf(path2, sizeof path2, "/v1/victims/%s", id2);

    char keyring_path[300];
    snprintf(keyring_path, sizeof keyring_path, "%s/keys/master.key",
             cluster.dir);
    char *old = kz_it_slurp(keyring_path);
    cr_assert_not_null(old);
    char both[1024];
    const char *new_key =
        "2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";
    snprintf(both, sizeof both, "%s%s", old, new_key);
    free(old);
    write_keyring(cluster.dir, both);
    j = call_json(op, "POST", "/v1/keys/rotate", "{\"master\":true}", 200);
    json_decref(j);
    j = call_json(op, "POST", "/v1/keys/rotate", "{\"colour\":true}", 400);
    json_decref(j);
    kz_cli_close(op);
    kz_cli_close(reg);
    kz_cli_close(cw);

    cr_assert_eq(kz_it_ctl(&cluster, "down"), 0);
    write_keyring(cluster.dir, new_key); /* master key 1 is gone */
    cr_assert_eq(kz_it_ctl(&cluster, "up"), 0);
    cr_assert(kz_it_wait(has_leader, &cluster, 30000), "no leader");
    cw = kz_it_client(&cluster, "caseworker", NULL, 20000);
    j = call_json(cw, "GET", path, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "address")),
                     "宮城県秘密市機密町9-8-7");
    json_decref(j);
    j = call_json(cw, "GET", path2, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "name")),
                     "回転 後子");
    json_decref(j);
    kz_cli_close(cw);
}
