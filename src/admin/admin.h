/* admin.h: the admin listener on the main thread: GET /healthz, GET /ready, GET /metrics. */
#ifndef SG_ADMIN_H
#define SG_ADMIN_H

#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>

#include "core/sg.h"

#define SG_ADMIN_MAX_CLIENTS 32
/* Descriptors held in reserve so that probes are answered at the fd limit (docs/ARCHITECTURE.md). */
#define SG_ADMIN_RESERVE 4
/* Out of descriptors and reserves, the admin listener rests this long instead of spinning on accept. */
#define SG_ADMIN_PAUSE_MS 100

typedef struct sg_admin_client {
    int fd;
    uint64_t deadline_ms;
    size_t len;
    char buf[2048];
} sg_admin_client_t;

typedef struct sg_admin {
    int listen_fd;
    bool ready;         /* /ready answers 200 while true */
    void (*render_metrics)(FILE *f, void *ctx);
    void *ctx;
    sg_admin_client_t clients[SG_ADMIN_MAX_CLIENTS];
    int reserve[SG_ADMIN_RESERVE];  /* idle descriptors (eventfds), closed to make room for a probe and
                                     * taken again after each poll round */
    int nreserve;
    uint64_t paused_until_ms;       /* no accepting before then */
    uint64_t accept_fd_limit;       /* accepts that failed for want of a descriptor (metrics) */
    uint64_t reserve_accepts;       /* probes accepted on a reserved descriptor (metrics) */
} sg_admin_t;

/* Parses "ADDR:PORT" ("[v6]:PORT" too), listens and takes the reserved descriptors. Returns 0 or -errno /
 * -EINVAL. */
int sg_admin_open(sg_admin_t *a, const char *addr);
void sg_admin_close(sg_admin_t *a);
/* Adds the admin's fds to pfds (room for 1 + SG_ADMIN_MAX_CLIENTS); returns how many. While the listener
 * rests (out of descriptors) it is listed without events. */
int sg_admin_pollfds(const sg_admin_t *a, struct pollfd *pfds, uint64_t now_ms);
/* Milliseconds until the listener's rest ends, or -1 when it is not resting. */
int sg_admin_next_timeout_ms(const sg_admin_t *a, uint64_t now_ms);
/* Handles what poll reported for those fds, and client deadlines. */
void sg_admin_handle(sg_admin_t *a, const struct pollfd *pfds, int n, uint64_t now_ms);

/* Splits "host:port" / "[v6]:port" into a socket address. Returns 0 or -EINVAL. */
int sg_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
