/*
 * dedup.h — possible duplicates of a person (dedup.c, issue 9): candidates
 * found by name search, scored on kana name, date of birth, sex and
 * address. Merging is a raft command (MergeVictim, register.c): explicit,
 * audited and reversible.
 */
#ifndef KZ_NODE_DEDUP_H
#define KZ_NODE_DEDUP_H

#include <jansson.h>
#include <stddef.h>

#include "kizuna.pb-c.h"
#include "state_store.h"

/* Candidates score at least this. */
#define KZ_NODE_DEDUP_MIN 0.6

struct kz_node_keys;

/* How alike a and b are (see dedup.c), appending the reasons ("kana",
 * "dob", ...) to reasons; 0 when their names have nothing in common. */
double kz_node_dedup_score(const Kizuna__Victim *a, const Kizuna__Victim *b,
                           json_t *reasons);

/* Up to max candidates for v (never v itself, never a merged record), best
 * first: a new array of {"score", "reasons", "record"} into *out. */
int kz_node_dedup_find(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const Kizuna__Victim *v,
                       size_t max, json_t **out);

#endif
