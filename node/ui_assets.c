/*
 * ui_assets.c — looks the console's files up in the table the build
 * generated (ui_assets_gen.c). A handful of files: a linear scan.
 */
#include <string.h>

#include "ui_assets.h"

const struct kz_node_ui_asset *kz_node_ui_find(const char *name, size_t len)
{
    for (size_t i = 0; i < kz_node__ui_n_assets; i++) {
        const struct kz_node_ui_asset *a = &kz_node__ui_assets[i];
        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0)
            return a;
    }
    return NULL;
}

size_t kz_node_ui_count(void)
{
    return kz_node__ui_n_assets;
}

const struct kz_node_ui_asset *kz_node_ui_at(size_t i)
{
    return i < kz_node__ui_n_assets ? &kz_node__ui_assets[i] : NULL;
}
