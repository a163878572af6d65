/*
 * text.h — a growing text buffer, for the writers that build a body in
 * memory (PFIF pages, victim records as JSON).
 *
 * Owns p (malloc'd, NUL-terminated once anything was put; free() it). An
 * allocation failure sets oom and drops every later put: the writer checks
 * oom once at the end instead of after every piece.
 */
#ifndef KZ_NODE_TEXT_H
#define KZ_NODE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct kz_node_text {
    char *p;
    size_t len, cap;
    bool oom;
};

/* Appends n bytes of s. */
void kz_node_text_put(struct kz_node_text *b, const char *s, size_t n);

#endif
