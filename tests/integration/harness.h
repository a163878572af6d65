/*
 * harness.h — integration tests on real kizunad processes over loopback.
 *
 * A test starts a cluster with deploy/local-cluster in a fresh directory, on
 * a random 127.x.y network and port (so it never collides with `make demo`
 * or another test), and talks to it with libkizuna. Whatever happens to the
 * test process (assertion, crash, timeout kill), a reaper process forked at
 * start sees its pipe close and runs `local-cluster down`, which stops every
 * node by its recorded pid.
 */
#ifndef KZ_IT_HARNESS_H
#define KZ_IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "kizuna.h"

#define KZ_IT_MAX_NODES 8

struct kz_it_cluster {
    char dir[256];
    char net[32];
    int port;
    int n;       /* every node, spares included */
    int members; /* the initial members: nodes 1..members */
    int reaper_pid;
    int reaper_fd;
    char url[KZ_IT_MAX_NODES + 1][64]; /* by node id */
};

/* Starts a cluster: regions like "a:1,b:1,c:1"; sets is NULL or a
 * NULL-terminated list of "key=value" kizunad settings. Fails the test on
 * error. */
void kz_it_up(struct kz_it_cluster *c, const char *regions,
              const char *const *sets);
/* The same with spares (local-cluster --spares, e.g. "osaka:1"): nodes
 * numbered after the members, configured as "join", not started. */
void kz_it_up_spares(struct kz_it_cluster *c, const char *regions,
                     const char *spares, const char *const *sets);
/* The same, the spares listed by no member's file and their own files
 * listing no other node (local-cluster --unlisted-spares): they are added
 * with their addresses (the replicated address book). */
void kz_it_up_unlisted(struct kz_it_cluster *c, const char *regions,
                       const char *spares, const char *const *sets);
/* Stops the cluster and removes its directory. */
void kz_it_down(struct kz_it_cluster *c);
/* Runs `deploy/local-cluster <args> --dir DIR`; returns its exit status. */
int kz_it_ctl(struct kz_it_cluster *c, const char *args);

/* A client for role (registrar, caseworker, operator...) on the given
 * endpoints: NULL for all nodes, or a node id list like "1,3". */
kz_cli *kz_it_client(struct kz_it_cluster *c, const char *role,
                     const char *nodes, long deadline_ms);

/* Runs the kizuna CLI with role's certificate against the initial members
 * (c->members of them), stderr merged into *out (malloc'd); returns its
 * exit status. */
int kz_it_cli(struct kz_it_cluster *c, const char *role, const char *args,
              char **out);

/* The "error"."code" of an error answer into buf ("" when none); buf. */
const char *kz_it_error_code(const kz_cli_response *r, char *buf,
                             size_t len);

/* One call; the response is returned (status 0 when no node answered). */
kz_cli_response kz_it_call(kz_cli *cli, const char *method, const char *path,
                           const char *body);

/* Polls cond every 50 ms until it is true or timeout_ms passes. */
bool kz_it_wait(bool (*cond)(void *), void *arg, int timeout_ms);

/* GET /v1/cluster/digest of one node (operator; caller decrefs), NULL when
 * it did not answer 200. */
json_t *kz_it_digest(struct kz_it_cluster *c, int node);
/* Whether nodes 1..n answer the same digest at the same applied index. */
bool kz_it_digests_equal(struct kz_it_cluster *c, int n);

/* Leader id from GET /v1/cluster on any node (0 if none). */
int kz_it_leader(struct kz_it_cluster *c);
/* A kz_it_wait condition: cluster (a struct kz_it_cluster *) has a leader. */
bool kz_it_has_leader(void *cluster);
/* The pid of node's running kizunad, from its pid file (fails the test when
 * there is none). */
int kz_it_node_pid(struct kz_it_cluster *c, int node);
/* Applied index of one node from a stale read of /v1/cluster, -1 if down. */
long long kz_it_applied(struct kz_it_cluster *c, int node);

/* Files below dir (whose path contains name_part, when not NULL) holding
 * needle: the at-rest tests look for plaintext with it. */
int kz_it_files_containing(const char *dir, const char *needle,
                           const char *name_part);

/* One series of node's GET /metrics ("name" or "name{labels}" exactly as
 * written), as an integer; -1 when the node did not answer or has no such
 * series. */
long long kz_it_metric(struct kz_it_cluster *c, int node, const char *name);

/* Reads a whole file (caller frees), NULL if absent. */
char *kz_it_slurp(const char *path);

/* Runs cmd with /bin/sh; returns its exit status (-1 if it did not exit)
 * and all it wrote to stdout in *out (malloc'd, NUL-terminated; the caller
 * frees it). The output is read to its end, however long: a child is
 * never left blocked on a full pipe. */
int kz_it_run(const char *cmd, char **out);

#endif
