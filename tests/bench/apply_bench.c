/*
 * apply_bench.c — kizuna-apply-bench: what applying registrations costs one
 * node, without raft, TLS or HTTP: batches of CreateVictims (as an import
 * proposes them, sealed) applied by kz_node_apply to a real RocksDB store
 * in a temporary directory. Prints people/s and ms per person.
 *
 *   kizuna-apply-bench [BATCHES [PEOPLE_PER_BATCH]]   (default 20 x 200)
 *
 * A benchmark, not a test: it asserts nothing about speed. Records come
 * from the sample generator (client/sample.c, fixed seed).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keys.h"
#include "records.h"
#include "register.h"
#include "sample.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int rm_entry(const char *p, const struct stat *sb, int f,
                    struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

static int die(const char *what)
{
    fprintf(stderr, "kizuna-apply-bench: %s\n", what);
    return 1;
}

/* Seals and applies cmd at idx; 0 on success. */
static int apply(kz_stor *st, struct kz_node_keys *keys, uint64_t idx,
                 const Kizuna__Command *cmd, double *spent)
{
    size_t len = kizuna__command__get_packed_size(cmd);
    char *buf = malloc(len ? len : 1), *sealed = NULL, *res = NULL;
    size_t slen = 0, rl = 0;
    bool changed;
    if (buf == NULL)
        return -1;
    kizuna__command__pack(cmd, (uint8_t *)buf);
    int rv = kz_node_keys_seal_command(keys, buf, len, &sealed, &slen);
    free(buf);
    if (rv != KZ_OK)
        return -1;
    double t0 = now_s();
    rv = kz_node_apply(st, keys, idx, sealed, slen, true, &res, &rl, &changed);
    *spent += now_s() - t0;
    int ok = rv == KZ_OK && res != NULL && res[0] == '2';
    free(res);
    free(sealed);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    int batches = argc > 1 ? atoi(argv[1]) : 20;
    int per = argc > 2 ? atoi(argv[2]) : 200;
    if (batches <= 0 || per <= 0 || per > 500)
        return die("usage: kizuna-apply-bench [BATCHES [PEOPLE 1-500]]");
    char dir[] = "/tmp/kizuna-apply-bench-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return die("mkdtemp failed");
    char state[64], ring[64];
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(ring, sizeof ring, "%s/master.key", dir);
    FILE *f = fopen(ring, "w");
    unsigned char mk[32];
    if (f == NULL || kz_stor_random(mk, sizeof mk) != KZ_OK)
        return die("keyring");
    fprintf(f, "1 ");
    for (int i = 0; i < 32; i++)
        fprintf(f, "%02x", mk[i]);
    fprintf(f, "\n");
    fclose(f);
    chmod(ring, 0600);
    kz_stor *st = NULL;
    char err[256];
    struct kz_node_keys keys;
    int rc = 1;
    if (kz_stor_open(state, &st, err, sizeof err) != KZ_OK) {
        fprintf(stderr, "kizuna-apply-bench: %s\n", err);
        goto out;
    }
    if (kz_node_keys_open(&keys, ring) != KZ_OK) {
        fprintf(stderr, "kizuna-apply-bench: %s\n", keys.errmsg);
        goto out_st;
    }
    char *init = NULL;
    size_t il = 0;
    if (kz_node_keys_make_init(&keys, "131016", &init, &il) != KZ_OK) {
        die("key init");
        goto out_keys;
    }
    char *res = NULL;
    size_t rl;
    bool changed;
    if (kz_node_apply(st, &keys, 1, init, il, true, &res, &rl, &changed) !=
            KZ_OK ||
        kz_node_keys_refresh(&keys, st) != KZ_OK) {
        free(init);
        free(res);
        die("key init apply");
        goto out_keys;
    }
    free(init);
    free(res);
    kz_cli_sample gen;
    kz_cli_sample_init(&gen, 20261206, 100);
    double spent = 0;
    int people = 0;
    for (int b = 0; b < batches; b++) {
        Kizuna__Victim **vs = calloc((size_t)per, sizeof *vs);
        int n = 0;
        for (; vs != NULL && n < per; n++) {
            json_t *rec;
            char id[40];
            if (kz_cli_sample_victim(&gen, &rec) != 0 ||
                kz_node_victim_from_json(rec, false, &vs[n], NULL, NULL, err,
                                         sizeof err) != 0) {
                json_decref(rec);
                break;
            }
            json_decref(rec);
            snprintf(id, sizeof id, "b%08dp%04d", b, n);
            vs[n]->id = strdup(id);
        }
        Kizuna__CreateVictims cv = KIZUNA__CREATE_VICTIMS__INIT;
        cv.n_victims = (size_t)n;
        cv.victims = vs;
        Kizuna__Command cmd = KIZUNA__COMMAND__INIT;
        cmd.municipality = "131016";
        cmd.has_time_ms = 1;
        cmd.time_ms = 1765000000000;
        cmd.op_case = KIZUNA__COMMAND__OP_CREATE_VICTIMS;
        cmd.create_victims = &cv;
        int bad = n < per || apply(st, &keys, (uint64_t)b + 2, &cmd, &spent);
        for (int i = 0; i < n; i++)
            kizuna__victim__free_unpacked(vs[i], NULL);
        free(vs);
        if (bad) {
            die("a batch was not applied");
            goto out_keys;
        }
        people += n;
    }
    printf("kizuna-apply-bench: %d people in %d batches of %d: %.3f s "
           "applying, %.0f people/s, %.3f ms per person\n",
           people, batches, per, spent, people / spent,
           spent * 1000 / people);
    /* What apply wrote, per person: memtable inserts are most of its cost
     * (the key init's few writes included, a rounding error). */
    printf("kizuna-apply-bench: writes per person:");
    for (int cf = 0; cf < KZ_STOR_CF__COUNT; cf++)
        printf(" %s %.2f", kz_stor_cf_name(cf),
               (double)kz_stor_writes(st, cf) / people);
    printf("\n");
    rc = 0;
out_keys:
    kz_node_keys_wipe(&keys);
out_st:
    kz_stor_close(st);
out:
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
