/* origin: the benchmark's SSE origin; writes timestamped ~100-byte events to every stream, one write() each (one
 * TLS record each with --tls, for the TLS-to-backend scenario). */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EV 256
#define EVENT_MAX 1024

typedef struct opts {
    int port;
    int threads;
    long interval_us;   /* tick period */
    double rate;        /* total events/s over all streams; 0 = one event per stream per tick */
    int size;           /* bytes of one SSE event (id line + data line + blank line) */
    bool idle;          /* headers and one event, then silence (memory scenario) */
    bool chunked;       /* chunked transfer-encoding (default) or close-delimited body */
    SSL_CTX *tls;       /* --tls CERT KEY: HTTPS (the proxy under test then speaks TLS to its backend); NULL: plain */
} opts_t;

enum { S_HEAD, S_LIVE };

typedef struct stream {
    int fd;
    int state;
    int pos;            /* index in the worker's live array, -1 when not live */
    bool want_out;
    bool dead;
    uint8_t crlf;       /* how much of "\r\n\r\n" the request head has matched so far */
    uint64_t seq;       /* last id written */
    uint16_t pend_off, pend_len;
    char *pend;         /* remainder of a short write; while set, new events for this stream are skipped */
    SSL *ssl;           /* --tls */
    bool handshaken;
    struct stream *next_dead;
} stream_t;

typedef struct worker {
    const opts_t *o;
    int epfd, lfd, tfd;
    stream_t **live;
    size_t nlive, caplive;
    size_t cursor;      /* round-robin position for the rate mode */
    double budget;      /* events owed in the rate mode */
    uint64_t last_tick_ns;
    uint64_t written, skipped;
    stream_t *dead;
    pthread_t th;
} worker_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: origin --port N [--threads N] [--interval-us N] [--rate EVENTS_PER_S] [--size BYTES]\n"
                    "              [--idle] [--close-delimited] [--tls CERT KEY]\n"
                    "  Answers any GET with text/event-stream. Every tick it writes one event to every stream\n"
                    "  (or, with --rate, that many events per second spread round-robin over the streams):\n"
                    "  `id: <seq>\\ndata: <CLOCK_MONOTONIC ns> <padding>\\n\\n`, one write() per event.\n");
}

static void live_remove(worker_t *w, stream_t *s)
{
    if (s->pos < 0)
        return;
    size_t i = (size_t)s->pos;
    w->live[i] = w->live[--w->nlive];
    w->live[i]->pos = (int)i;
    s->pos = -1;
}

static void kill_stream(worker_t *w, stream_t *s)
{
    if (s->dead)
        return;
    s->dead = true;
    live_remove(w, s);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    SSL_free(s->ssl);
    s->ssl = NULL;
    close(s->fd);
    /* Freed after the epoll batch: a later event of the same batch may name it. */
    s->next_dead = w->dead;
    w->dead = s;
}

static void set_out(worker_t *w, stream_t *s, bool want)
{
    if (s->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u), .data.ptr = s};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0) {
        kill_stream(w, s);
        return;
    }
    s->want_out = want;
}

/* write(2), or SSL_write with write(2)'s results (-1 with errno EAGAIN when it must be retried with the same
 * bytes, EPIPE when the connection failed). */
static ssize_t out(stream_t *s, const char *p, size_t n)
{
    if (s->ssl == NULL)
        return write(s->fd, p, n);
    ERR_clear_error();
    int r = SSL_write(s->ssl, p, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(s->ssl, r);
    errno = e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    return -1;
}

/* One write(); a short write keeps the rest for EPOLLOUT. Returns false if nothing could be written. */
static bool write_once(worker_t *w, stream_t *s, const char *p, size_t n)
{
    ssize_t r = out(s, p, n);
    /* TLS: a record that could not go out must be retried with the same bytes: kept like a short write. */
    if (r < 0 && s->ssl != NULL && errno == EAGAIN)
        r = 0;
    if (r < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            kill_stream(w, s);
        return false;
    }
    if ((size_t)r < n) {
        size_t rest = n - (size_t)r;
        if (!s->pend)
            s->pend = malloc(EVENT_MAX + 32);
        if (!s->pend) {
            kill_stream(w, s);
            return true;
        }
        memcpy(s->pend, p + r, rest);
        s->pend_off = 0;
        s->pend_len = (uint16_t)rest;
        set_out(w, s, true);
    }
    return true;
}

static void flush_pend(worker_t *w, stream_t *s)
{
    while (s->pend_len > s->pend_off) {
        ssize_t r = out(s, s->pend + s->pend_off, (size_t)(s->pend_len - s->pend_off));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_stream(w, s);
            return;
        }
        s->pend_off = (uint16_t)(s->pend_off + r);
    }
    s->pend_off = s->pend_len = 0;
    set_out(w, s, false);
}

/* Formats the next event of s into buf (chunk-framed if asked); returns its length. */
static size_t format_event(const opts_t *o, uint64_t seq, char *buf)
{
    char *body = o->chunked ? buf + 8 : buf; /* room for "%04x\r\n" (+2 spare) */
    int n = snprintf(body, EVENT_MAX, "id: %llu\ndata: %llu ", (unsigned long long)seq,
                     (unsigned long long)now_ns());
    size_t len = (size_t)n;
    size_t want = (size_t)o->size;
    if (want > EVENT_MAX - 16)
        want = EVENT_MAX - 16;
    while (len + 2 < want)
        body[len++] = 'x';
    body[len++] = '\n';
    body[len++] = '\n';
    if (!o->chunked)
        return len;
    char hdr[8];
    int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", len);
    char *start = body - hl;
    memcpy(start, hdr, (size_t)hl);
    body[len++] = '\r';
    body[len++] = '\n';
    if (start != buf)
        memmove(buf, start, (size_t)hl + len);
    return (size_t)hl + len;
}

/* Sends the next event to s unless it is still blocked on a short write (then the event is not made, so
 * ids stay gapless and the loss shows as a lower delivered rate). */
static void emit(worker_t *w, stream_t *s)
{
    if (s->pend_len > s->pend_off) {
        w->skipped++;
        return;
    }
    char buf[EVENT_MAX + 32];
    size_t n = format_event(w->o, s->seq + 1, buf);
    if (write_once(w, s, buf, n)) {
        s->seq++;
        w->written++;
    } else {
        w->skipped++;
    }
}

static void go_live(worker_t *w, stream_t *s)
{
    char buf[512 + EVENT_MAX];
    int n = snprintf(buf, 512,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n%s\r\n",
                     w->o->chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
    size_t len = (size_t)n;
    if (w->o->idle) {
        /* One event, so a client knows the stream is through end to end; then nothing more. */
        len += format_event(w->o, 1, buf + len);
        s->seq = 1;
    }
    if (!write_once(w, s, buf, len)) {
        kill_stream(w, s);
        return;
    }
    s->state = S_LIVE;
    if (w->o->idle)
        return;
    if (w->nlive == w->caplive) {
        size_t cap = w->caplive ? w->caplive * 2 : 1024;
        stream_t **nl = realloc(w->live, cap * sizeof(*nl));
        if (!nl) {
            kill_stream(w, s);
            return;
        }
        w->live = nl;
        w->caplive = cap;
    }
    s->pos = (int)w->nlive;
    w->live[w->nlive++] = s;
}

/* TLS: one handshake step. True when done; false when it waits (EPOLLOUT armed if it waits to write) or failed. */
static bool handshake(worker_t *w, stream_t *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->handshaken = true;
        set_out(w, s, false);
        return true;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        set_out(w, s, e == SSL_ERROR_WANT_WRITE);
    else
        kill_stream(w, s);
    return false;
}

/* read(2), or SSL_read with read(2)'s results. */
static ssize_t in(stream_t *s, char *p, size_t n)
{
    if (s->ssl == NULL)
        return read(s->fd, p, n);
    ERR_clear_error();
    int r = SSL_read(s->ssl, p, (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
    return -1;
}

static void on_read(worker_t *w, stream_t *s)
{
    char buf[4096];
    if (s->ssl != NULL && !s->handshaken && !handshake(w, s))
        return;
    for (;;) {
        ssize_t n = in(s, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_stream(w, s);
            return;
        }
        if (n == 0) {
            kill_stream(w, s);
            return;
        }
        if (s->state != S_HEAD)
            continue; /* nothing more is expected; drain to notice EOF */
        static const char end[] = "\r\n\r\n";
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == end[s->crlf])
                s->crlf++;
            else
                s->crlf = buf[i] == '\r' ? 1 : 0;
            if (s->crlf == 4) {
                go_live(w, s);
                break;
            }
        }
        if (s->dead)
            return;
    }
}

static void on_accept(worker_t *w)
{
    for (;;) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "origin: accept: %s\n", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        stream_t *s = calloc(1, sizeof(*s));
        if (!s) {
            close(fd);
            continue;
        }
        s->fd = fd;
        s->pos = -1;
        if (w->o->tls != NULL) {
            s->ssl = SSL_new(w->o->tls);
            if (s->ssl == NULL || SSL_set_fd(s->ssl, fd) != 1) {
                SSL_free(s->ssl);
                close(fd);
                free(s);
                continue;
            }
            SSL_set_accept_state(s->ssl);
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(s);
        }
    }
}

static void on_tick(worker_t *w)
{
    uint64_t exp;
    if (read(w->tfd, &exp, sizeof(exp)) != (ssize_t)sizeof(exp))
        return;
    uint64_t now = now_ns();
    if (w->o->rate <= 0) {
        /* Overruns are not caught up: a tick that comes late writes one round, like a real ticker. */
        for (size_t i = w->nlive; i-- > 0;)
            emit(w, w->live[i]);
        w->last_tick_ns = now;
        return;
    }
    double per_thread = w->o->rate / w->o->threads;
    w->budget += per_thread * (double)(now - w->last_tick_ns) / 1e9;
    w->last_tick_ns = now;
    if (w->nlive == 0) {
        w->budget = 0;
        return;
    }
    /* Never owe more than one round per stream: a stalled ticker must not burst afterwards. */
    if (w->budget > (double)w->nlive)
        w->budget = (double)w->nlive;
    while (w->budget >= 1.0 && w->nlive > 0) {
        if (w->cursor >= w->nlive)
            w->cursor = 0;
        emit(w, w->live[w->cursor++]);
        w->budget -= 1.0;
    }
}

static void reap(worker_t *w)
{
    while (w->dead) {
        stream_t *s = w->dead;
        w->dead = s->next_dead;
        free(s->pend);
        free(s);
    }
}

static int listen_reuseport(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4096) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct epoll_event evs[MAX_EV];
    w->last_tick_ns = now_ns();
    for (;;) {
        int n = epoll_wait(w->epfd, evs, MAX_EV, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("origin: epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &w->lfd) {
                on_accept(w);
            } else if (p == &w->tfd) {
                on_tick(w);
            } else {
                stream_t *s = p;
                if (s->dead)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    kill_stream(w, s);
                    continue;
                }
                if ((evs[i].events & EPOLLOUT) && s->ssl != NULL && !s->handshaken) {
                    if (handshake(w, s))
                        on_read(w, s); /* the request may already be buffered in the SSL */
                    continue;
                }
                if (evs[i].events & EPOLLOUT)
                    flush_pend(w, s);
                if (!s->dead && (evs[i].events & (EPOLLIN | EPOLLRDHUP)))
                    on_read(w, s);
            }
        }
        reap(w);
    }
    return NULL;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    opts_t o = {.port = 0, .threads = 1, .interval_us = 1000, .rate = 0, .size = 100, .chunked = true};
    for (int i = 1; i < argc; i++) {
        long v;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--port") == 0 && has && parse_long(argv[++i], 1, 65535, &v)) {
            o.port = (int)v;
        } else if (strcmp(a, "--threads") == 0 && has && parse_long(argv[++i], 1, 64, &v)) {
            o.threads = (int)v;
        } else if (strcmp(a, "--interval-us") == 0 && has && parse_long(argv[++i], 50, 10000000, &v)) {
            o.interval_us = v;
        } else if (strcmp(a, "--rate") == 0 && has && parse_long(argv[++i], 0, 100000000, &v)) {
            o.rate = (double)v;
        } else if (strcmp(a, "--size") == 0 && has && parse_long(argv[++i], 40, EVENT_MAX - 16, &v)) {
            o.size = (int)v;
        } else if (strcmp(a, "--idle") == 0) {
            o.idle = true;
        } else if (strcmp(a, "--close-delimited") == 0) {
            o.chunked = false;
        } else if (strcmp(a, "--tls") == 0 && i + 2 < argc) {
            const char *crt = argv[++i], *key = argv[++i];
            o.tls = SSL_CTX_new(TLS_server_method());
            if (o.tls == NULL || SSL_CTX_use_certificate_chain_file(o.tls, crt) != 1 ||
                SSL_CTX_use_PrivateKey_file(o.tls, key, SSL_FILETYPE_PEM) != 1) {
                fprintf(stderr, "origin: --tls %s %s: cannot load the certificate and key\n", crt, key);
                return 1;
            }
            SSL_CTX_set_min_proto_version(o.tls, TLS1_2_VERSION);
            /* Retries come from the stream's pend copy; idle streams give their record buffers back. */
            SSL_CTX_set_mode(o.tls, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                        SSL_MODE_RELEASE_BUFFERS);
        } else {
            usage();
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    if (o.port == 0) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    worker_t *ws = calloc((size_t)o.threads, sizeof(*ws));
    if (!ws) {
        fprintf(stderr, "origin: out of memory\n");
        return 1;
    }
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        w->o = &o;
        w->lfd = listen_reuseport(o.port);
        if (w->lfd < 0) {
            fprintf(stderr, "origin: cannot listen on 127.0.0.1:%d: %s\n", o.port, strerror(-w->lfd));
            return 1;
        }
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct itimerspec its = {
            .it_interval = {.tv_sec = o.interval_us / 1000000, .tv_nsec = (o.interval_us % 1000000) * 1000},
            .it_value = {.tv_sec = o.interval_us / 1000000, .tv_nsec = (o.interval_us % 1000000) * 1000},
        };
        struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &w->lfd};
        struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &w->tfd};
        if (w->epfd < 0 || w->tfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->lfd, &lev) != 0 ||
            (!o.idle && (timerfd_settime(w->tfd, 0, &its, NULL) != 0 ||
                         epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tfd, &tev) != 0))) {
            perror("origin: setup");
            return 1;
        }
    }
    fprintf(stderr, "origin: listening on 127.0.0.1:%d (%d thread(s), %s, %s)\n", o.port, o.threads,
            o.idle ? "idle" : o.rate > 0 ? "rate" : "every stream every tick", o.chunked ? "chunked" : "close-delimited");
    for (int t = 1; t < o.threads; t++) {
        int rc = pthread_create(&ws[t].th, NULL, worker_main, &ws[t]);
        if (rc != 0) {
            fprintf(stderr, "origin: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }
    worker_main(&ws[0]);
    return 0;
}
