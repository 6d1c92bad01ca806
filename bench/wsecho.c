/* wsecho: the benchmark's WebSocket origin: answers the opening handshake and echoes every data frame back
 * unmasked (a ping gets a pong, a close is echoed and the connection closed). epoll, one thread per --threads,
 * SO_REUSEPORT. Replies to everything read in one loop round go out in one write. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/ws.h"

#define IN_CAP (256 * 1024)

typedef struct wconn {
    int fd;
    bool ws;            /* handshake done */
    bool closing;
    size_t in_len;
    uint8_t *in;
    uint8_t *out;
    size_t out_len, out_cap, out_off;
} wconn_t;

static int g_port, g_threads = 1;

static int out_put(wconn_t *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 65536;
        while (cap < c->out_len + n)
            cap *= 2;
        uint8_t *q = realloc(c->out, cap);
        if (q == NULL)
            return -1;
        c->out = q;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

static void conn_free(int ep, wconn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Writes what is queued; returns -1 when the connection must go. */
static int flush_out(int ep, wconn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                return 0;
            }
            return -1;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off > 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    c->out_len = c->out_off = 0;
    return c->closing ? -1 : 0;
}

static int handshake(wconn_t *c)
{
    uint8_t *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (e == NULL)
        return c->in_len >= IN_CAP ? -1 : 0;
    size_t hl = (size_t)(e - c->in) + 4;
    const char *k = memmem(c->in, hl, "ec-WebSocket-Key:", 17);
    if (k == NULL)
        k = memmem(c->in, hl, "ec-websocket-key:", 17);
    if (k == NULL)
        return -1;
    k += 17;
    while (*k == ' ')
        k++;
    const char *ke = k;
    while (ke < (const char *)e && *ke != '\r')
        ke++;
    char acc[SG_WS_ACCEPT_LEN + 1];
    if (sg_ws_accept((sg_str_t){k, (size_t)(ke - k)}, acc) < 0)
        return -1;
    char resp[256];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
    if (out_put(c, resp, (size_t)n) < 0)
        return -1;
    memmove(c->in, c->in + hl, c->in_len - hl);
    c->in_len -= hl;
    c->ws = true;
    return 0;
}

/* Echoes every complete frame in the buffer. */
static int frames(wconn_t *c)
{
    size_t o = 0;
    while (c->in_len - o >= 2) {
        uint8_t *h = c->in + o;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (c->in_len - o < 4)
                break;
            len = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (len == 127) {
            if (c->in_len - o < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | h[2 + i];
            hl = 10;
        }
        bool masked = h[1] & 0x80;
        size_t mhl = hl + (masked ? 4 : 0);
        if (len > IN_CAP - mhl)
            return -1; /* bigger than the benchmark sends */
        if (c->in_len - o < mhl + len)
            break;
        uint8_t *p = h + mhl;
        if (masked)
            for (uint64_t i = 0; i < len; i++)
                p[i] ^= h[hl + (i & 3)];
        uint8_t op = h[0] & 0x0f;
        uint8_t oh[10];
        size_t ol = 0;
        oh[ol++] = (uint8_t)((h[0] & 0x80) | (op == 9 ? 10 : op));
        if (len < 126) {
            oh[ol++] = (uint8_t)len;
        } else if (len < 65536) {
            oh[ol++] = 126;
            oh[ol++] = (uint8_t)(len >> 8);
            oh[ol++] = (uint8_t)len;
        } else {
            oh[ol++] = 127;
            for (int i = 7; i >= 0; i--)
                oh[ol++] = (uint8_t)(len >> (8 * i));
        }
        if (op != 10 && (out_put(c, oh, ol) < 0 || out_put(c, p, (size_t)len) < 0))
            return -1;
        if (op == 8)
            c->closing = true;
        o += mhl + (size_t)len;
    }
    memmove(c->in, c->in + o, c->in_len - o);
    c->in_len -= o;
    return 0;
}

static int on_read(wconn_t *c)
{
    for (;;) {
        if (c->in_len == IN_CAP)
            return -1;
        ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0)
            return -1;
        c->in_len += (size_t)n;
        if (!c->ws && handshake(c) < 0)
            return -1;
        if (c->ws && frames(c) < 0)
            return -1;
        if ((size_t)n < 65536)
            return 0;
    }
}

static void *serve(void *arg)
{
    (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
        perror("wsecho: bind/listen");
        exit(1);
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    wconn_t *dirty[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        int nd = 0;
        for (int i = 0; i < n; i++) {
            wconn_t *c = evs[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    wconn_t *nc = calloc(1, sizeof(*nc));
                    nc->in = malloc(IN_CAP);
                    nc->fd = fd;
                    struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
                }
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && flush_out(ep, c) < 0) {
                conn_free(ep, c);
                continue;
            }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && on_read(c) < 0) {
                conn_free(ep, c);
                continue;
            }
            if (c->out_len > c->out_off)
                dirty[nd++] = c;
        }
        for (int i = 0; i < nd; i++)
            if (flush_out(ep, dirty[i]) < 0)
                conn_free(ep, dirty[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            g_port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            g_threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: wsecho --port PORT [--threads N]\n");
            return 2;
        }
    }
    if (g_port <= 0 || g_threads < 1 || g_threads > 64) {
        fprintf(stderr, "usage: wsecho --port PORT [--threads N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    pthread_t t[64];
    for (int i = 1; i < g_threads; i++)
        pthread_create(&t[i], NULL, serve, NULL);
    serve(NULL);
    return 0;
}
