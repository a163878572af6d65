/* Fault-injecting TCP relays: see proxy.h. One libuv loop in its own thread
 * owns every socket; other threads change the fault table under a mutex and
 * wake the loop with an async handle so held bytes move at once. */
#include "proxy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CHUNK_MAX 65536
#define HOLD_HIGH (4u << 20) /* stop reading the sender past this */
#define HOLD_LOW (1u << 20)  /* and start again below this */
#define STALL_DEFAULT_MS 200

struct chunk {
    uv_write_t req;
    struct chunk *next;
    uint64_t due;
    size_t len;
    char data[];
};

struct conn;

/* One direction of one relayed connection. */
struct dir {
    struct conn *c;
    unsigned from, to;       /* the directed link its bytes travel on */
    uv_stream_t *src, *dst;
    uv_timer_t timer;
    struct chunk *head, *tail;
    size_t held;
    uint64_t last_due;
    bool paused;
};

struct conn {
    kz_proxy *p;
    struct conn *prev, *next;
    unsigned from, to; /* the pair: from dialed to */
    uv_tcp_t client, upstream;
    uv_connect_t creq;
    struct dir up, down; /* client->upstream (from->to), and back */
    bool connected, closing;
    int open_handles;
};

struct link {
    struct kz_proxy_link f;
    uint64_t bytes, held;
    unsigned connections;
};

struct listener {
    uv_tcp_t tcp;
    kz_proxy *p;
    unsigned from, to;
};

struct kz_proxy {
    unsigned n;
    uv_loop_t loop;
    uv_async_t kick;
    pthread_t thread;
    pthread_mutex_t mu;
    struct link *links;         /* n*n, [(from-1)*n + (to-1)] */
    struct listener *listeners; /* n*n, unused on the diagonal */
    struct sockaddr_in *targets;
    struct conn *conns;
    uint64_t rng;
    bool stopping;
};

static struct link *link_of(kz_proxy *p, unsigned from, unsigned to)
{
    return &p->links[(size_t)(from - 1) * p->n + (to - 1)];
}

static uint64_t next_rand(kz_proxy *p) /* splitmix64; loop thread only */
{
    uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------- closing */

static void on_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct dir *ds[2] = {&c->up, &c->down};
    for (int i = 0; i < 2; i++)
        for (struct chunk *k = ds[i]->head, *next; k != NULL; k = next) {
            next = k->next;
            free(k);
        }
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    kz_proxy *p = c->p;
    pthread_mutex_lock(&p->mu);
    struct link *l = link_of(p, c->from, c->to);
    l->connections--;
    l->held -= c->up.held;
    link_of(p, c->to, c->from)->held -= c->down.held;
    pthread_mutex_unlock(&p->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_handle_t *hs[4] = {(uv_handle_t *)&c->client, (uv_handle_t *)&c->upstream,
                          (uv_handle_t *)&c->up.timer,
                          (uv_handle_t *)&c->down.timer};
    for (int i = 0; i < 4; i++) {
        hs[i]->data = c; /* was the direction, for reads and timers */
        uv_close(hs[i], on_handle_closed);
    }
}

/* ------------------------------------------------------------ delivery */

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows up as a read error or EOF too */
    free(req->data);
}

static void flush(struct dir *d);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static bool stopping(kz_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    bool s = p->stopping;
    pthread_mutex_unlock(&p->mu);
    return s;
}

static void on_timer(uv_timer_t *t)
{
    flush(t->data);
}

static void flush(struct dir *d)
{
    struct conn *c = d->c;
    kz_proxy *p = c->p;
    if (c->closing || (d == &c->up && !c->connected))
        return;
    pthread_mutex_lock(&p->mu);
    struct link *l = link_of(p, d->from, d->to);
    bool blocked = l->f.blocked;
    pthread_mutex_unlock(&p->mu);
    if (blocked)
        return; /* kz_proxy_set/heal kicks the loop when it opens again */
    uv_update_time(&p->loop);
    uint64_t now = uv_now(&p->loop);
    size_t sent = 0;
    while (d->head != NULL && d->head->due <= now) {
        struct chunk *k = d->head;
        d->head = k->next;
        if (d->head == NULL)
            d->tail = NULL;
        d->held -= k->len;
        sent += k->len;
        k->req.data = k;
        uv_buf_t b = uv_buf_init(k->data, (unsigned)k->len);
        if (uv_write(&k->req, d->dst, &b, 1, on_written) != 0) {
            free(k);
            conn_close(c);
            return;
        }
    }
    if (sent > 0) {
        pthread_mutex_lock(&p->mu);
        l->bytes += sent;
        l->held -= sent;
        pthread_mutex_unlock(&p->mu);
    }
    if (d->paused && d->held < HOLD_LOW) {
        d->paused = false;
        if (uv_read_start(d->src, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
    }
    if (d->head != NULL)
        uv_timer_start(&d->timer, on_timer, d->head->due - now, 0);
}

/* ------------------------------------------------------------- reading */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    struct chunk *k = malloc(sizeof *k + CHUNK_MAX);
    *buf = k ? uv_buf_init(k->data, CHUNK_MAX) : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dir *d = s->data;
    struct conn *c = d->c;
    kz_proxy *p = c->p;
    struct chunk *k =
        buf->base ? (struct chunk *)(buf->base - offsetof(struct chunk, data))
                  : NULL;
    if (nread == 0) {
        free(k);
        return;
    }
    if (nread < 0 || c->closing) {
        free(k);
        conn_close(c);
        return;
    }
    struct chunk *small = realloc(k, sizeof *k + (size_t)nread);
    if (small != NULL)
        k = small;
    k->next = NULL;
    k->len = (size_t)nread;

    uv_update_time(&p->loop);
    uint64_t now = uv_now(&p->loop);
    pthread_mutex_lock(&p->mu);
    struct link *l = link_of(p, d->from, d->to);
    struct kz_proxy_link f = l->f;
    l->held += k->len;
    pthread_mutex_unlock(&p->mu);

    int64_t delay = f.delay_ms;
    if (f.jitter_ms > 0)
        delay += (int64_t)(next_rand(p) % (2ull * f.jitter_ms + 1)) -
                 (int64_t)f.jitter_ms;
    if (delay < 0)
        delay = 0;
    if (f.stall_permille > 0 && next_rand(p) % 1000 < f.stall_permille)
        delay += f.stall_ms ? f.stall_ms : STALL_DEFAULT_MS;
    uint64_t due = now + (uint64_t)delay;
    if (f.kbytes_per_s > 0) {
        uint64_t ser = (uint64_t)k->len / f.kbytes_per_s; /* bytes/(KB/s) = ms */
        uint64_t start = d->last_due > due ? d->last_due : due;
        due = start + ser;
    } else if (due < d->last_due) {
        due = d->last_due; /* never overtake an earlier chunk */
    }
    k->due = d->last_due = due;
    if (d->tail)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
    d->held += k->len;
    if (d->held > HOLD_HIGH && !d->paused) {
        d->paused = true;
        uv_read_stop(s);
    }
    flush(d);
}

static void start_reading(struct dir *d)
{
    d->src->data = d;
    if (uv_read_start(d->src, on_alloc, on_read) != 0)
        conn_close(d->c);
}

/* ------------------------------------------------------------ accepting */

static void on_upstream(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->closing)
        return;
    if (status != 0) {
        conn_close(c);
        return;
    }
    c->connected = true;
    uv_tcp_nodelay(&c->upstream, 1);
    start_reading(&c->down);
    flush(&c->up);
}

static void dir_init(struct conn *c, struct dir *d, unsigned from,
                     unsigned to, uv_stream_t *src, uv_stream_t *dst)
{
    d->c = c;
    d->from = from;
    d->to = to;
    d->src = src;
    d->dst = dst;
    uv_timer_init(&c->p->loop, &d->timer);
    d->timer.data = d;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct listener *ls = server->data;
    kz_proxy *p = ls->p;
    if (status != 0 || stopping(p))
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->p = p;
    c->from = ls->from;
    c->to = ls->to;
    uv_tcp_init(&p->loop, &c->client);
    uv_tcp_init(&p->loop, &c->upstream);
    c->client.data = c->upstream.data = c;
    dir_init(c, &c->up, c->from, c->to, (uv_stream_t *)&c->client,
             (uv_stream_t *)&c->upstream);
    dir_init(c, &c->down, c->to, c->from, (uv_stream_t *)&c->upstream,
             (uv_stream_t *)&c->client);
    c->open_handles = 4;
    c->next = p->conns;
    if (p->conns)
        p->conns->prev = c;
    p->conns = c;
    pthread_mutex_lock(&p->mu);
    link_of(p, c->from, c->to)->connections++;
    pthread_mutex_unlock(&p->mu);
    if (uv_accept(server, (uv_stream_t *)&c->client) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->client, 1);
    c->creq.data = c;
    if (uv_tcp_connect(&c->creq, &c->upstream,
                       (const struct sockaddr *)&p->targets[c->to - 1],
                       on_upstream) != 0) {
        conn_close(c);
        return;
    }
    start_reading(&c->up);
}

/* -------------------------------------------------------------- control */

static void on_kick(uv_async_t *a)
{
    kz_proxy *p = a->data;
    if (stopping(p)) {
        while (p->conns != NULL)
            conn_close(p->conns);
        for (unsigned i = 0; i < p->n * p->n; i++)
            if (p->listeners[i].p != NULL)
                uv_close((uv_handle_t *)&p->listeners[i].tcp, NULL);
        uv_close((uv_handle_t *)&p->kick, NULL);
        return;
    }
    /* A link may have opened or lost its delay: move what is due. */
    for (struct conn *c = p->conns, *next; c != NULL; c = next) {
        next = c->next;
        flush(&c->up);
        if (!c->closing)
            flush(&c->down);
    }
}

static void *run(void *arg)
{
    kz_proxy *p = arg;
    uv_run(&p->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void free_proxy(kz_proxy *p)
{
    free(p->links);
    free(p->listeners);
    free(p->targets);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

kz_proxy *kz_proxy_start(unsigned n, const char *host, unsigned base_port,
                         const char *const *targets, uint64_t seed, char *err,
                         size_t errlen)
{
    if (n < 2 || n > 64 || base_port + n * n > 65535) {
        snprintf(err, errlen, "proxy: bad node count %u or base port %u", n,
                 base_port);
        return NULL;
    }
    kz_proxy *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->n = n;
    p->rng = seed;
    pthread_mutex_init(&p->mu, NULL);
    p->links = calloc((size_t)n * n, sizeof *p->links);
    p->listeners = calloc((size_t)n * n, sizeof *p->listeners);
    p->targets = calloc(n, sizeof *p->targets);
    if (!p->links || !p->listeners || !p->targets) {
        snprintf(err, errlen, "out of memory");
        free_proxy(p);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        char ip[64];
        const char *colon = strrchr(targets[i], ':');
        size_t hl = colon ? (size_t)(colon - targets[i]) : 0;
        if (colon == NULL || hl == 0 || hl >= sizeof ip) {
            snprintf(err, errlen, "proxy: bad target '%s'", targets[i]);
            free_proxy(p);
            return NULL;
        }
        memcpy(ip, targets[i], hl);
        ip[hl] = '\0';
        if (uv_ip4_addr(ip, atoi(colon + 1), &p->targets[i]) != 0) {
            snprintf(err, errlen, "proxy: bad target '%s'", targets[i]);
            free_proxy(p);
            return NULL;
        }
    }
    uv_loop_init(&p->loop);
    uv_async_init(&p->loop, &p->kick, on_kick);
    p->kick.data = p;
    int rc = 0;
    for (unsigned from = 1; from <= n && rc == 0; from++)
        for (unsigned to = 1; to <= n && rc == 0; to++) {
            if (from == to)
                continue;
            struct listener *ls = &p->listeners[(from - 1) * n + (to - 1)];
            unsigned port = base_port + (from - 1) * n + (to - 1);
            struct sockaddr_in sa;
            if ((rc = uv_ip4_addr(host, (int)port, &sa)) != 0) {
                snprintf(err, errlen, "proxy: bad host '%s'", host);
                break;
            }
            uv_tcp_init(&p->loop, &ls->tcp);
            ls->p = p;
            ls->from = from;
            ls->to = to;
            ls->tcp.data = ls;
            if ((rc = uv_tcp_bind(&ls->tcp, (const struct sockaddr *)&sa, 0)) ==
                    0 &&
                (rc = uv_listen((uv_stream_t *)&ls->tcp, 64, on_connection)) ==
                    0)
                continue;
            snprintf(err, errlen, "proxy: cannot listen on %s:%u: %s", host,
                     port, uv_strerror(rc));
        }
    if (rc == 0 && pthread_create(&p->thread, NULL, run, p) != 0) {
        snprintf(err, errlen, "proxy: cannot start its thread");
        rc = -1;
    }
    if (rc != 0) {
        p->stopping = true; /* no thread yet */
        on_kick(&p->kick); /* closes what was opened */
        uv_run(&p->loop, UV_RUN_DEFAULT);
        uv_loop_close(&p->loop);
        free_proxy(p);
        return NULL;
    }
    return p;
}

void kz_proxy_set(kz_proxy *p, unsigned from, unsigned to,
                  const struct kz_proxy_link *l)
{
    if (from < 1 || to < 1 || from > p->n || to > p->n || from == to)
        return;
    pthread_mutex_lock(&p->mu);
    link_of(p, from, to)->f = *l;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->kick);
}

void kz_proxy_get(kz_proxy *p, unsigned from, unsigned to,
                  struct kz_proxy_link *l)
{
    memset(l, 0, sizeof *l);
    if (from < 1 || to < 1 || from > p->n || to > p->n || from == to)
        return;
    pthread_mutex_lock(&p->mu);
    *l = link_of(p, from, to)->f;
    pthread_mutex_unlock(&p->mu);
}

void kz_proxy_stats(kz_proxy *p, unsigned from, unsigned to,
                    struct kz_proxy_stats *s)
{
    memset(s, 0, sizeof *s);
    if (from < 1 || to < 1 || from > p->n || to > p->n || from == to)
        return;
    pthread_mutex_lock(&p->mu);
    struct link *l = link_of(p, from, to);
    s->bytes = l->bytes;
    s->held_bytes = l->held;
    s->connections = l->connections;
    pthread_mutex_unlock(&p->mu);
}

void kz_proxy_heal(kz_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < (size_t)p->n * p->n; i++) {
        struct kz_proxy_link *f = &p->links[i].f;
        f->blocked = false;
        f->stall_permille = 0;
        f->kbytes_per_s = 0;
    }
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->kick);
}

void kz_proxy_stop(kz_proxy *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_mutex_unlock(&p->mu);
    uv_async_send(&p->kick);
    pthread_join(p->thread, NULL);
    uv_loop_close(&p->loop);
    free_proxy(p);
}
