/*
 * ui_assets.h — the web console (/ui/) as it is compiled into kizunad.
 *
 * The files under node/ui/ become byte arrays at build time
 * (node/ui_embed.cmake writes ui_assets_gen.c); nothing is read from disk
 * at run time, so a node serves the console of exactly its own version.
 * The table is constant and owned by the program: nothing here is freed.
 */
#ifndef KZ_NODE_UI_ASSETS_H
#define KZ_NODE_UI_ASSETS_H

#include <stddef.h>

/* The Content-Security-Policy of every console answer: scripts, styles,
 * fonts and calls only from the node itself (no inline script or style, no
 * CDN); images also from blob: URLs, because a face photo is fetched with
 * its X-Purpose header and shown from a blob. */
#define KZ_NODE_UI_CSP                                                       \
    "default-src 'self'; script-src 'self'; style-src 'self'; "              \
    "img-src 'self' blob:; connect-src 'self'; object-src 'none'; "          \
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

struct kz_node_ui_asset {
    const char *name;         /* file name under node/ui/, e.g. "console.js" */
    const char *content_type; /* from the extension, charset included */
    const unsigned char *data; /* len bytes, then a NUL */
    size_t len;
    const char *etag; /* quoted: "\"<32 hex of SHA-256>\"" */
};

/* The asset called name (len bytes, not NUL-terminated), NULL when none. */
const struct kz_node_ui_asset *kz_node_ui_find(const char *name, size_t len);

/* The number of assets and the i-th one (0 <= i < count), in name order. */
size_t kz_node_ui_count(void);
const struct kz_node_ui_asset *kz_node_ui_at(size_t i);

/* Generated (ui_assets_gen.c); use the functions above. */
extern const struct kz_node_ui_asset kz_node__ui_assets[];
extern const size_t kz_node__ui_n_assets;

#endif
