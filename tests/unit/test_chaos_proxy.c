/* The fault proxies of kizuna-chaos (chaos/proxy.c) over real loopback TCP:
 * bytes pass both ways, delays are applied per direction, a blocked
 * direction holds its bytes until the link heals (and only that
 * direction), and a closed side closes the other. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"

/* An echo server on an ephemeral loopback port that counts what it got. */
struct echo {
    int lfd, port;
    pthread_t thread;
    atomic_size_t received;
    atomic_bool stop;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    while (!atomic_load(&e->stop)) {
        struct pollfd p = {e->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(e->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        char buf[4096];
        for (;;) {
            struct pollfd q = {fd, POLLIN, 0};
            if (atomic_load(&e->stop))
                break;
            if (poll(&q, 1, 50) <= 0)
                continue;
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            atomic_fetch_add(&e->received, (size_t)n);
            if (write(fd, buf, (size_t)n) != n)
                break;
        }
        close(fd);
    }
    return NULL;
}

static void echo_start(struct echo *e)
{
    memset(e, 0, sizeof *e);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    e->lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(e->lfd, 0);
    cr_assert_eq(bind(e->lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(getsockname(e->lfd, (struct sockaddr *)&a, &len), 0);
    cr_assert_eq(listen(e->lfd, 8), 0);
    e->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&e->thread, NULL, echo_main, e), 0);
}

static void echo_stop(struct echo *e)
{
    atomic_store(&e->stop, true);
    pthread_join(e->thread, NULL);
    close(e->lfd);
}

static int64_t ms_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A free range of 4 ports for the 2x2 relays (the diagonal is unused). */
static unsigned free_base(void)
{
    for (unsigned base = 20000 + (unsigned)(getpid() % 2000) * 8;; base += 8) {
        bool ok = true;
        for (unsigned p = base; p < base + 4 && ok; p++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET,
                                    .sin_port = htons((uint16_t)p)};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
            close(fd);
        }
        if (ok)
            return base;
    }
}

static int dial(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Reads n bytes within ms; returns how many arrived. */
static size_t read_within(int fd, char *buf, size_t n, int ms)
{
    size_t got = 0;
    int64_t end = ms_now() + ms;
    while (got < n) {
        int left = (int)(end - ms_now());
        if (left <= 0)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            break;
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

struct fixture {
    struct echo e;
    kz_proxy *p;
    unsigned base;
    int fd; /* node 1 dialing node 2 */
};

static void setup(struct fixture *f)
{
    echo_start(&f->e);
    char t[32];
    snprintf(t, sizeof t, "127.0.0.1:%d", f->e.port);
    const char *targets[2] = {t, t};
    char err[200];
    f->base = free_base();
    f->p = kz_proxy_start(2, "127.0.0.1", f->base, targets, 42, err,
                          sizeof err);
    cr_assert_not_null(f->p, "%s", err);
    /* pair (1,2) listens on base + (1-1)*2 + (2-1) */
    f->fd = dial(f->base + 1);
}

static void teardown(struct fixture *f)
{
    close(f->fd);
    kz_proxy_stop(f->p);
    echo_stop(&f->e);
}

Test(chaos_proxy, passes_bytes_both_ways_and_counts_them)
{
    struct fixture f;
    setup(&f);
    char out[1000], in[1000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)i;
    cr_assert_eq(write(f.fd, out, sizeof out), (ssize_t)sizeof out);
    cr_assert_eq(read_within(f.fd, in, sizeof in, 2000), sizeof in);
    cr_assert_eq(memcmp(in, out, sizeof in), 0);
    struct kz_proxy_stats s12, s21;
    /* The proxy's thread counts a chunk after writing it: the echo can
     * reach us before the count does. */
    int64_t end = ms_now() + 2000;
    do {
        kz_proxy_stats(f.p, 1, 2, &s12);
        kz_proxy_stats(f.p, 2, 1, &s21);
    } while ((s12.bytes < sizeof out || s21.bytes < sizeof out) &&
             ms_now() < end && poll(NULL, 0, 5) == 0);
    cr_assert_eq(s12.bytes, sizeof out);
    cr_assert_eq(s21.bytes, sizeof out, "the answers travel on link 2->1");
    cr_assert_eq(s12.connections, 1);
    teardown(&f);
}

Test(chaos_proxy, delay_is_applied_per_direction)
{
    struct fixture f;
    setup(&f);
    struct kz_proxy_link l = {.delay_ms = 80};
    kz_proxy_set(f.p, 1, 2, &l);
    kz_proxy_set(f.p, 2, 1, &l);
    char b[16] = "ping", in[16];
    int64_t t0 = ms_now();
    cr_assert_eq(write(f.fd, b, 4), 4);
    cr_assert_eq(read_within(f.fd, in, 4, 3000), 4);
    int64_t rtt = ms_now() - t0;
    cr_assert_geq(rtt, 160, "round trip %lld ms < 2 x 80 ms", (long long)rtt);
    teardown(&f);
}

Test(chaos_proxy, blocked_direction_holds_bytes_until_healed)
{
    struct fixture f;
    setup(&f);
    struct kz_proxy_link l = {.blocked = true};
    kz_proxy_set(f.p, 1, 2, &l);
    char b[8] = "abcd", in[8];
    cr_assert_eq(write(f.fd, b, 4), 4);
    cr_assert_eq(read_within(f.fd, in, 4, 400), 0, "a partition delivered");
    cr_assert_eq(atomic_load(&f.e.received), 0);
    struct kz_proxy_stats s;
    kz_proxy_stats(f.p, 1, 2, &s);
    cr_assert_eq(s.held_bytes, 4);
    kz_proxy_heal(f.p);
    cr_assert_eq(read_within(f.fd, in, 4, 2000), 4, "held bytes after heal");
    cr_assert_eq(memcmp(in, "abcd", 4), 0);
    teardown(&f);
}

Test(chaos_proxy, one_way_block_lets_the_other_direction_through)
{
    struct fixture f;
    setup(&f);
    struct kz_proxy_link l = {.blocked = true};
    kz_proxy_set(f.p, 2, 1, &l); /* answers lost, requests arrive */
    char b[8] = "wxyz", in[8];
    cr_assert_eq(write(f.fd, b, 4), 4);
    int64_t end = ms_now() + 2000;
    while (atomic_load(&f.e.received) < 4 && ms_now() < end)
        usleep(10000);
    cr_assert_eq(atomic_load(&f.e.received), 4, "1->2 still delivers");
    cr_assert_eq(read_within(f.fd, in, 4, 300), 0, "2->1 is cut");
    l.blocked = false;
    kz_proxy_set(f.p, 2, 1, &l);
    cr_assert_eq(read_within(f.fd, in, 4, 2000), 4);
    teardown(&f);
}

Test(chaos_proxy, a_closed_side_closes_the_other)
{
    struct fixture f;
    setup(&f);
    char b[4] = "q", in[4];
    cr_assert_eq(write(f.fd, b, 1), 1);
    cr_assert_eq(read_within(f.fd, in, 1, 2000), 1);
    echo_stop(&f.e); /* the server side goes away */
    /* our side sees EOF (read 0) once the relay closes it */
    struct pollfd p = {f.fd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 3000), 1);
    cr_assert_eq(read(f.fd, in, sizeof in), 0);
    close(f.fd);
    kz_proxy_stop(f.p);
}
