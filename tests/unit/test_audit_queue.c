/*
 * test_audit_queue.c — the durable queue of stale reads' audit records
 * (node/audit_queue.h) and its group commit: records staged together are
 * written and synced as one batch, numbered consecutively, and are in the
 * queue (and in the file, for the next open) only once that batch is
 * durable. A batch whose write fails leaves neither records nor numbers
 * behind: the failure is a real one (RLIMIT_FSIZE makes pwrite fail), not
 * a status made up by the test.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_queue.h"
#include "kizuna.pb-c.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kz-auditq-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/audit-queue", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(audit_queue, .init = setup, .fini = teardown, .timeout = 60);

static struct kz_node_audit_queue *open_queue(void)
{
    struct kz_node_audit_queue *q = NULL;
    char err[256] = "";
    cr_assert_eq(kz_node_audit_queue_open(&q, path, err, sizeof err), KZ_OK,
                 "%s", err);
    return q;
}

static void stage(struct kz_node_audit_queue *q, const char *request_id)
{
    Kizuna__AuditContext ctx = KIZUNA__AUDIT_CONTEXT__INIT;
    ctx.action = "victim.read";
    ctx.request_id = (char *)request_id;
    ctx.subject = "V-0001";
    cr_assert_eq(kz_node_audit_queue_stage(q, &ctx), KZ_OK);
}

static int write_batch(struct kz_node_audit_queue *q)
{
    cr_assert_eq(kz_node_audit_queue_begin(q), KZ_OK);
    return kz_node_audit_queue_end(q, kz_node_audit_queue_write(q));
}

static off_t file_size(void)
{
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    return sb.st_size;
}

/* The queue's records as the command that hands them over: their numbers
 * (queue_first_seq on) and request ids, in order, "r1,r2,...". */
static void handed_over(struct kz_node_audit_queue *q, uint64_t *first,
                        char *ids, size_t cap)
{
    uint8_t *cmd;
    size_t len, count;
    cr_assert_eq(kz_node_audit_queue_command(q, 0, 1000, "131016", 1, &cmd,
                                             &len, &count),
                 KZ_OK);
    ids[0] = '\0';
    *first = 0;
    if (cmd == NULL)
        return;
    Kizuna__Command *c = kizuna__command__unpack(NULL, len, cmd);
    free(cmd);
    cr_assert_not_null(c);
    cr_assert_eq(c->op_case, KIZUNA__COMMAND__OP_AUDIT_APPEND);
    cr_assert_eq(c->audit_append->n_entries, count);
    *first = c->audit_append->queue_first_seq;
    for (size_t i = 0; i < count; i++) {
        size_t used = strlen(ids);
        snprintf(ids + used, cap - used, "%s%s", i ? "," : "",
                 c->audit_append->entries[i]->request_id);
    }
    kizuna__command__free_unpacked(c, NULL);
}

/* Opens the file again: it must hold exactly these records, the first
 * numbered first. */
static void expect_in_file(uint64_t want_first, const char *want_ids)
{
    struct kz_node_audit_queue *q = open_queue();
    uint64_t first;
    char ids[256];
    handed_over(q, &first, ids, sizeof ids);
    cr_assert_eq(first, want_first);
    cr_assert_str_eq(ids, want_ids);
    kz_node_audit_queue_close(q);
}

Test(audit_queue, records_staged_together_share_one_batch)
{
    struct kz_node_audit_queue *q = open_queue();
    off_t empty = file_size();
    stage(q, "r1");
    stage(q, "r2");
    stage(q, "r3");
    cr_assert_eq(kz_node_audit_queue_staged(q), 3);
    cr_assert_eq(kz_node_audit_queue_length(q), 0, "staged is not queued");
    cr_assert_eq(kz_node_audit_queue_begin(q), KZ_OK);
    /* Reads arriving during the write wait for the next batch. */
    stage(q, "r4");
    stage(q, "r5");
    cr_assert_eq(kz_node_audit_queue_begin(q), KZ_EINVAL,
                 "a second batch while one is being written");
    cr_assert_eq(file_size(), empty, "nothing written before write");
    cr_assert_eq(kz_node_audit_queue_write(q), KZ_OK);
    cr_assert_eq(kz_node_audit_queue_end(q, KZ_OK), KZ_OK);
    cr_assert_eq(kz_node_audit_queue_length(q), 3);
    cr_assert_eq(kz_node_audit_queue_staged(q), 2);
    cr_assert_eq(write_batch(q), KZ_OK);
    cr_assert_eq(kz_node_audit_queue_length(q), 5);
    cr_assert_eq(kz_node_audit_queue_begin(q), KZ_EINVAL, "nothing staged");

    uint64_t first;
    char ids[256];
    handed_over(q, &first, ids, sizeof ids);
    cr_assert_eq(first, 1);
    cr_assert_str_eq(ids, "r1,r2,r3,r4,r5");
    kz_node_audit_queue_close(q);

    /* The file holds them all, numbered on from 1. */
    expect_in_file(1, "r1,r2,r3,r4,r5");
}

Test(audit_queue, a_failed_write_leaves_no_record_and_no_number)
{
    struct kz_node_audit_queue *q = open_queue();
    stage(q, "r1");
    cr_assert_eq(write_batch(q), KZ_OK);
    off_t good = file_size();
    /* A real failure: the file may not grow past its size now. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = (struct rlimit){(rlim_t)good, old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    stage(q, "lost1");
    stage(q, "lost2");
    cr_assert_eq(kz_node_audit_queue_begin(q), KZ_OK);
    cr_assert_eq(kz_node_audit_queue_write(q), KZ_EIO);
    cr_assert_eq(kz_node_audit_queue_end(q, KZ_EIO), KZ_EIO);
    cr_assert_eq(kz_node_audit_queue_length(q), 1);
    cr_assert_eq(file_size(), good, "the failed batch left bytes behind");
    /* Space again: the next record takes the number the lost ones had. */
    lim.rlim_cur = old.rlim_cur;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    stage(q, "r2");
    cr_assert_eq(write_batch(q), KZ_OK);
    kz_node_audit_queue_close(q);

    expect_in_file(1, "r1,r2");
}

Test(audit_queue, trim_never_cuts_the_file_under_a_batch)
{
    struct kz_node_audit_queue *q = open_queue();
    stage(q, "r1");
    stage(q, "r2");
    cr_assert_eq(write_batch(q), KZ_OK);
    off_t empty_file = 12; /* "KZAQ" | queue id */
    stage(q, "r3");
    cr_assert_eq(kz_node_audit_queue_begin(q), KZ_OK);
    /* The cluster has 1 and 2: the file would start again, but r3 is
     * being written after its end. */
    cr_assert_eq(kz_node_audit_queue_trim(q, 2), KZ_OK);
    cr_assert_eq(kz_node_audit_queue_length(q), 0);
    cr_assert_gt(file_size(), empty_file, "cut under a batch in flight");
    cr_assert_eq(kz_node_audit_queue_end(q, kz_node_audit_queue_write(q)),
                 KZ_OK);
    cr_assert_eq(kz_node_audit_queue_length(q), 1);
    cr_assert_eq(kz_node_audit_queue_trim(q, 3), KZ_OK);
    cr_assert_eq(file_size(), empty_file, "emptied once all is handed");
    /* Numbers go on after the trim, in a file that starts again. */
    stage(q, "r4");
    cr_assert_eq(write_batch(q), KZ_OK);
    kz_node_audit_queue_close(q);
    expect_in_file(4, "r4");
}

Test(audit_queue, a_torn_last_record_is_cut_at_open)
{
    struct kz_node_audit_queue *q = open_queue();
    stage(q, "r1");
    stage(q, "r2");
    cr_assert_eq(write_batch(q), KZ_OK);
    off_t good = file_size();
    kz_node_audit_queue_close(q);
    /* A crash in the middle of the next batch's write. */
    FILE *f = fopen(path, "ab");
    cr_assert_not_null(f);
    fwrite("\0\0\0\x20garbage", 1, 11, f);
    fclose(f);
    q = open_queue();
    cr_assert_eq(file_size(), good);
    cr_assert_eq(kz_node_audit_queue_length(q), 2);
    stage(q, "r3");
    cr_assert_eq(write_batch(q), KZ_OK);
    kz_node_audit_queue_close(q);
    expect_in_file(1, "r1,r2,r3");
}
