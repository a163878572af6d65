/*
 * addrbook.c — where the other nodes are.
 *
 * A node knows the nodes of its own configuration file ('node' lines) and
 * the nodes added later through the API with their addresses
 * (POST /v1/cluster/nodes with raft_address, api_address and region),
 * which the cluster replicates as SetNodeAddresses commands into the state
 * (meta "node/<id>", not sealed: no personal data). A 'node' line always
 * wins over a replicated entry for the same id: it is this host's own
 * view (a relay, a test proxy). The book in memory (kz_node.book) only
 * grows or changes in place, so a slot number stays valid.
 */
#include "addrbook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kz_log.h"

#define BOOK_PREFIX "node/"
#define BOOK_KEY_MAX 32

static size_t book_key(char out[BOOK_KEY_MAX], uint64_t id)
{
    return (size_t)snprintf(out, BOOK_KEY_MAX, BOOK_PREFIX "%020" PRIu64, id);
}

static bool valid_entry(const Kizuna__NodeAddress *a)
{
    return a != NULL && a->has_id && a->id != 0 && a->id <= (1ull << 62) &&
           a->region != NULL && kz_node_valid_region(a->region) &&
           a->raft_address != NULL &&
           kz_node_valid_addr(a->raft_address, 65534) &&
           a->api_address != NULL && kz_node_valid_addr(a->api_address, 65535);
}

int kz_node_apply_addresses(kz_stor *st, kz_stor_batch *b,
                            const Kizuna__Command *cmd,
                            struct kz_node_result *r)
{
    const Kizuna__SetNodeAddresses *s = cmd->set_node_addresses;
    if (s == NULL || s->n_nodes == 0 || s->n_nodes > KZ_CONS_MAX_PEERS) {
        kz_node_result_error(r, 400, "bad_command",
                             "an address book change names 1-16 nodes");
        return KZ_OK;
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (!valid_entry(s->nodes[i])) {
            kz_node_result_error(r, 400, "bad_command",
                                 "a node needs an id, a region and two "
                                 "host:port addresses");
            return KZ_OK;
        }
        for (size_t j = 0; j < i; j++)
            if (s->nodes[j]->id == s->nodes[i]->id ||
                strcmp(s->nodes[j]->raft_address, s->nodes[i]->raft_address) ==
                    0) {
                kz_node_result_error(r, 400, "bad_command",
                                     "a node or raft address named twice");
                return KZ_OK;
            }
    }
    /* Two nodes at one raft address would take each other's traffic. */
    kz_stor_iter *it = kz_stor_iter_new(st, KZ_STOR_CF_META, BOOK_PREFIX,
                                        strlen(BOOK_PREFIX), NULL, 0);
    if (it == NULL)
        return KZ_ENOMEM;
    const char *k, *v;
    size_t kl, vl;
    char clash[160] = "";
    while (clash[0] == '\0' && kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        Kizuna__NodeAddress *old = kizuna__node_address__unpack(
            NULL, vl, (const uint8_t *)v);
        if (old == NULL)
            continue;
        for (size_t i = 0; i < s->n_nodes; i++)
            if (old->id != s->nodes[i]->id && old->raft_address != NULL &&
                strcmp(old->raft_address, s->nodes[i]->raft_address) == 0)
                snprintf(clash, sizeof clash,
                         "node %" PRIu64 " already has raft address %s",
                         old->id, old->raft_address);
        kizuna__node_address__free_unpacked(old, NULL);
    }
    kz_stor_iter_free(it);
    if (clash[0]) {
        kz_node_result_error(r, 409, "address_in_use", clash);
        return KZ_OK;
    }
    for (size_t i = 0; i < s->n_nodes; i++) {
        const Kizuna__NodeAddress *a = s->nodes[i];
        Kizuna__NodeAddress e = KIZUNA__NODE_ADDRESS__INIT;
        e.has_id = 1;
        e.id = a->id;
        e.region = a->region;
        e.raft_address = a->raft_address;
        e.api_address = a->api_address;
        size_t sz = kizuna__node_address__get_packed_size(&e);
        uint8_t *buf = malloc(sz ? sz : 1);
        if (buf == NULL)
            return KZ_ENOMEM;
        kizuna__node_address__pack(&e, buf);
        char key[BOOK_KEY_MAX];
        size_t klen = book_key(key, a->id);
        kz_stor_batch_put(b, KZ_STOR_CF_META, key, klen, buf, sz);
        free(buf);
    }
    snprintf(r->subject, sizeof r->subject, "node/%" PRIu64, s->nodes[0]->id);
    kz_node_result_set(r, 200,
                       json_pack("{s:I}", "nodes", (json_int_t)s->n_nodes));
    return KZ_OK;
}

const struct kz_node_member *kz_node_book_find(const struct kz_node *n,
                                               uint64_t id)
{
    for (unsigned i = 0; i < n->n_book; i++)
        if (n->book[i].id == id)
            return &n->book[i];
    return NULL;
}

static void book_put(struct kz_node *n, const Kizuna__NodeAddress *a)
{
    struct kz_node_member *m = NULL;
    for (unsigned i = 0; i < n->n_book; i++)
        if (n->book[i].id == a->id)
            m = &n->book[i];
    if (m != NULL && m->listed)
        return; /* this file's 'node' line wins */
    bool fresh = m == NULL;
    if (fresh) {
        if (n->n_book == KZ_CONS_MAX_PEERS) {
            kz_log(KZ_LOG_WARN, "address book full, node ignored",
                   "peer=%" PRIu64 " max=%d", a->id, KZ_CONS_MAX_PEERS);
            return;
        }
        m = &n->book[n->n_book];
        memset(m, 0, sizeof *m);
        m->id = a->id;
        m->join = true;
    } else if (strcmp(m->region, a->region) == 0 &&
               strcmp(m->raft_addr, a->raft_address) == 0 &&
               strcmp(m->api_addr, a->api_address) == 0) {
        return;
    }
    snprintf(m->region, sizeof m->region, "%s", a->region);
    snprintf(m->raft_addr, sizeof m->raft_addr, "%s", a->raft_address);
    snprintf(m->api_addr, sizeof m->api_addr, "%s", a->api_address);
    if (fresh)
        n->n_book++;
    if (n->cons != NULL &&
        kz_cons_set_peer(n->cons, m->id, m->region, m->raft_addr) != KZ_OK)
        kz_log(KZ_LOG_WARN, "peer not added to consensus", "peer=%" PRIu64,
               m->id);
    kz_log(KZ_LOG_INFO, fresh ? "address book: node added"
                              : "address book: node changed",
           "peer=%" PRIu64 " region=%s raft=%s api=%s", m->id, m->region,
           m->raft_addr, m->api_addr);
}

void kz_node_book_init(struct kz_node *n)
{
    n->n_book = 0;
    for (unsigned i = 0; i < n->cfg.n_members; i++) {
        n->book[n->n_book] = n->cfg.members[i];
        n->book[n->n_book].listed = true;
        n->n_book++;
    }
}

void kz_node_book_refresh(struct kz_node *n)
{
    kz_stor_iter *it = kz_stor_iter_new(n->stor, KZ_STOR_CF_META, BOOK_PREFIX,
                                        strlen(BOOK_PREFIX), NULL, 0);
    if (it == NULL)
        return;
    const char *k, *v;
    size_t kl, vl;
    while (kz_stor_iter_next(it, &k, &kl, &v, &vl)) {
        Kizuna__NodeAddress *a =
            kizuna__node_address__unpack(NULL, vl, (const uint8_t *)v);
        if (a != NULL && valid_entry(a))
            book_put(n, a);
        if (a != NULL)
            kizuna__node_address__free_unpacked(a, NULL);
    }
    kz_stor_iter_free(it);
}
