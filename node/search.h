/*
 * search.h — register search (GET /v1/victims) over the indexes of
 * register.h. Read-only; runs on the node's loop against local state.
 */
#ifndef KZ_NODE_SEARCH_H
#define KZ_NODE_SEARCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "state_store.h"

/* A name query collects at most this many candidate ids before filtering;
 * past it the page says truncated (refine the query). */
#define KZ_NODE_SEARCH_MAX_CANDIDATES 20000

struct kz_node_search {
    const char *q;       /* name: kanji, kana or romaji, either order */
    const char *dob;     /* YYYY-MM-DD */
    const char *shelter; /* shelter id */
    const char *status;  /* 安否 code */
    const char *cursor;  /* id after which the page starts, or NULL */
    size_t limit;        /* 1..1000 */
    bool include_merged; /* also records merged into another (duplicates) */
};

struct kz_node_search_page {
    json_t *items; /* new array of records; caller owns the reference */
    bool has_next;
    bool truncated;
    char next_cursor[72];
};

struct kz_node_keys;
int kz_node_search_run(kz_stor *st, struct kz_node_keys *keys,
                       const char *muni, const struct kz_node_search *q,
                       struct kz_node_search_page *page);

#endif
