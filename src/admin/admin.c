/* admin.c: a tiny HTTP/1.0-style admin server for probes, run from the main thread's poll loop. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin/admin.h"
#include "core/log.h"
#include "core/loop.h"

#define CLIENT_TIMEOUT_MS 5000

int sg_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon;
    memset(ss, 0, sizeof(*ss));
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (e == NULL || e[1] != ':' || (size_t)(e - s - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(e - s - 1));
        host[e - s - 1] = '\0';
        colon = e + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535 || colon[1] == '\0')
        return -EINVAL;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (host[0] == '\0' || inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
        return 0;
    }
    return -EINVAL;
}

int sg_admin_open(sg_admin_t *a, const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(a, 0, sizeof(*a));
    a->listen_fd = -1;
    for (int i = 0; i < SG_ADMIN_MAX_CLIENTS; i++)
        a->clients[i].fd = -1;
    int rc = sg_parse_hostport(addr, &ss, &len);
    if (rc < 0)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 64) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    a->listen_fd = fd;
    /* The reserve is taken now, while descriptors are plenty; a start that cannot take it fails. */
    for (a->nreserve = 0; a->nreserve < SG_ADMIN_RESERVE; a->nreserve++) {
        int r = eventfd(0, EFD_CLOEXEC);
        if (r < 0) {
            int err = -errno;
            sg_admin_close(a);
            return err;
        }
        a->reserve[a->nreserve] = r;
    }
    return 0;
}

/* Takes back the descriptors that probes used, as far as the fd table allows. */
static void refill_reserve(sg_admin_t *a)
{
    while (a->nreserve < SG_ADMIN_RESERVE) {
        int r = eventfd(0, EFD_CLOEXEC);
        if (r < 0)
            return; /* still at the limit: tried again after the next poll */
        a->reserve[a->nreserve++] = r;
    }
}

void sg_admin_close(sg_admin_t *a)
{
    if (a->listen_fd < 0)
        return; /* never opened (its client slots were never set up) or already closed */
    for (int i = 0; i < SG_ADMIN_MAX_CLIENTS; i++)
        if (a->clients[i].fd >= 0) {
            close(a->clients[i].fd);
            a->clients[i].fd = -1;
        }
    if (a->listen_fd >= 0)
        close(a->listen_fd);
    a->listen_fd = -1;
    while (a->nreserve > 0)
        close(a->reserve[--a->nreserve]);
}

int sg_admin_pollfds(const sg_admin_t *a, struct pollfd *pfds, uint64_t now_ms)
{
    int n = 0;
    if (a->listen_fd < 0)
        return 0;
    pfds[n++] = (struct pollfd){.fd = a->listen_fd, .events = now_ms < a->paused_until_ms ? 0 : POLLIN};
    for (int i = 0; i < SG_ADMIN_MAX_CLIENTS; i++)
        pfds[n++] = (struct pollfd){.fd = a->clients[i].fd, .events = POLLIN}; /* fd -1 is ignored by poll */
    return n;
}

int sg_admin_next_timeout_ms(const sg_admin_t *a, uint64_t now_ms)
{
    if (a->listen_fd < 0 || now_ms >= a->paused_until_ms)
        return -1;
    return (int)(a->paused_until_ms - now_ms);
}

/* Writes all of p, waiting up to a second in total: admin answers are small and probes are local. */
static void write_all(int fd, const char *p, size_t n)
{
    uint64_t deadline = sg_now_ms() + 1000;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return;
        uint64_t now = sg_now_ms();
        if (now >= deadline)
            return;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        poll(&pfd, 1, (int)(deadline - now));
    }
}

static void reply_typed(sg_admin_client_t *c, int status, const char *reason, const char *type, const char *body,
                        size_t blen)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, type, blen);
    write_all(c->fd, head, (size_t)n);
    write_all(c->fd, body, blen);
    close(c->fd);
    c->fd = -1;
}

static void reply(sg_admin_client_t *c, int status, const char *reason, const char *body)
{
    reply_typed(c, status, reason, "text/plain", body, strlen(body));
}

static void reply_metrics(sg_admin_t *a, sg_admin_client_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL) {
        reply(c, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    a->render_metrics(f, a->ctx);
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        reply(c, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    reply_typed(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", buf, len);
    free(buf);
}

static void serve(sg_admin_t *a, sg_admin_client_t *c)
{
    ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        close(c->fd);
        c->fd = -1;
        return;
    }
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    if (strstr(c->buf, "\r\n\r\n") == NULL && strstr(c->buf, "\n\n") == NULL) {
        if (c->len >= sizeof(c->buf) - 1)
            reply(c, 431, "Request Header Fields Too Large", "too large\n");
        return;
    }
    char method[8], path[256];
    if (sscanf(c->buf, "%7s %255s", method, path) != 2) {
        reply(c, 400, "Bad Request", "bad request\n");
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        reply(c, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    if (strcmp(path, "/healthz") == 0)
        reply(c, 200, "OK", "ok\n");
    else if (strcmp(path, "/metrics") == 0 && a->render_metrics)
        reply_metrics(a, c);
    else if (strcmp(path, "/ready") == 0)
        a->ready ? reply(c, 200, "OK", "ready\n") : reply(c, 503, "Service Unavailable", "not ready\n");
    else
        reply(c, 404, "Not Found", "not found\n");
}

static bool out_of_fds(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/*
 * /healthz is the gateway's lifeline: a liveness probe that fails gets the pod restarted, cutting every stream
 * on it. So at the fd limit a probe is accepted on a reserved descriptor: one is closed and the accept
 * retried (the spare-fd technique of libuv and HAProxy, kept for the probes). Without a reserve left the
 * listener rests for SG_ADMIN_PAUSE_MS: it is level-triggered, and retrying at once would spin.
 */
static void accept_clients(sg_admin_t *a, uint64_t now_ms)
{
    for (;;) {
        bool reserved = false;
        int fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && out_of_fds(errno))
            a->accept_fd_limit++;
        /* Another thread may take the descriptor just freed before accept does: then the next one is spent. */
        while (fd < 0 && (errno == EMFILE || errno == ENFILE) && a->nreserve > 0) {
            close(a->reserve[--a->nreserve]);
            fd = accept4(a->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            reserved = fd >= 0;
        }
        if (fd < 0) {
            if (out_of_fds(errno)) {
                a->paused_until_ms = now_ms + SG_ADMIN_PAUSE_MS;
                sg_log_error("admin: accept: %s, no descriptor in reserve: not accepting for %d ms",
                             strerror(errno), SG_ADMIN_PAUSE_MS);
            }
            return;
        }
        if (reserved) {
            a->reserve_accepts++;
            sg_log_info("admin: at the fd limit: a probe was accepted on a reserved descriptor");
        }
        int slot = -1;
        for (int i = 0; i < SG_ADMIN_MAX_CLIENTS && slot < 0; i++)
            if (a->clients[i].fd < 0)
                slot = i;
        if (slot < 0) {
            close(fd); /* probes are few; overflow is refused */
            continue;
        }
        a->clients[slot].fd = fd;
        a->clients[slot].len = 0;
        a->clients[slot].deadline_ms = now_ms + CLIENT_TIMEOUT_MS;
    }
}

void sg_admin_handle(sg_admin_t *a, const struct pollfd *pfds, int n, uint64_t now_ms)
{
    if (a->listen_fd < 0 || n == 0)
        return;
    for (int i = 1; i < n; i++) {
        sg_admin_client_t *c = &a->clients[i - 1];
        if (c->fd >= 0 && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            serve(a, c);
        if (c->fd >= 0 && now_ms > c->deadline_ms) {
            close(c->fd);
            c->fd = -1;
        }
    }
    if ((pfds[0].revents & POLLIN) && now_ms >= a->paused_until_ms)
        accept_clients(a, now_ms);
    refill_reserve(a);
}
