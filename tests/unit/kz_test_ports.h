/*
 * kz_test_ports.h — a run of free loopback ports for unit tests that start
 * listeners. A random base alone collided once in CI ("address already in
 * use": two test processes run side by side, each with its own nodes), so
 * each candidate is checked by binding every port of the run first (with
 * SO_REUSEADDR, as libuv binds, so TIME_WAIT is no obstacle). What is free
 * now can still be taken before the test binds it; that window is short.
 */
#ifndef KZ_TEST_PORTS_H
#define KZ_TEST_PORTS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

static bool kz_test_port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* The first of n consecutive free ports in [20000, 32000): below the
 * kernel's ephemeral range (32768+), where a port could collide with the
 * local end of an outgoing connection. -1 when 100 tries found none. */
static int kz_test_free_ports(int n)
{
    for (int tries = 0; tries < 100; tries++) {
        unsigned r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            return -1;
        int base = 20000 + (int)(r % (unsigned)(12000 - n));
        bool ok = true;
        for (int i = 0; ok && i < n; i++)
            ok = kz_test_port_free(base + i);
        if (ok)
            return base;
    }
    return -1;
}

#endif
