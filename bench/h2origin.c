/* h2origin: the benchmark's SSE origin over HTTP/2 with prior knowledge (h2c), for the "SSE over an h2c upstream"
 * scenarios: the same timestamped ~100-byte events as origin.c, one DATA frame each, on streams of a few sessions. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
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
    long interval_us;
    double rate;        /* total events/s over all streams; 0 = one event per stream per tick */
    int size;
    bool idle;
} opts_t;

typedef struct conn conn_t;

typedef struct stream {
    conn_t *c;
    int32_t id;
    uint64_t seq;
    size_t pos;         /* index in live, or SIZE_MAX */
    size_t len, off;    /* the event waiting for nghttp2 */
    bool deferred;
    char buf[EVENT_MAX];
} stream_t;

struct conn {
    int fd;
    nghttp2_session *ses;
    char *pend;         /* the rest of a short write */
    size_t pend_len, pend_off;
    bool want_out;
    bool dead;
    conn_t *next_dead;
};

static const opts_t *O;
static int epfd;
static stream_t **live;
static size_t nlive, caplive, cursor;
static double budget;
static uint64_t last_tick_ns, written, skipped;
static conn_t *dead;
static conn_t **dirty;  /* sessions with something to send, flushed after each batch */
static size_t ndirty, capdirty;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t format_event(uint64_t seq, char *buf)
{
    int n = snprintf(buf, EVENT_MAX, "id: %llu\ndata: %llu ", (unsigned long long)seq, (unsigned long long)now_ns());
    size_t len = (size_t)n;
    size_t want = (size_t)O->size;
    while (len + 2 < want)
        buf[len++] = 'x';
    buf[len++] = '\n';
    buf[len++] = '\n';
    return len;
}

static void mark_dirty(conn_t *c)
{
    if (c->want_out || c->dead)
        return;
    c->want_out = true;
    if (ndirty == capdirty) {
        capdirty = capdirty ? capdirty * 2 : 64;
        dirty = realloc(dirty, capdirty * sizeof(*dirty));
        if (dirty == NULL) {
            fprintf(stderr, "h2origin: out of memory\n");
            exit(1);
        }
    }
    dirty[ndirty++] = c;
}

static void live_remove(stream_t *s)
{
    if (s->pos == SIZE_MAX)
        return;
    live[s->pos] = live[--nlive];
    live[s->pos]->pos = s->pos;
    s->pos = SIZE_MAX;
}

static void kill_conn(conn_t *c)
{
    if (c->dead)
        return;
    c->dead = true;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->next_dead = dead;
    dead = c;
}

/* Writes what nghttp2 has to send; a short write keeps the rest and waits for EPOLLOUT. */
static void flush(conn_t *c)
{
    while (!c->dead) {
        if (c->pend_len > c->pend_off) {
            ssize_t w = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
                return;
            }
            if (w < 0) {
                kill_conn(c);
                return;
            }
            c->pend_off += (size_t)w;
            continue;
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->ses, &data);
        if (n < 0) {
            kill_conn(c);
            return;
        }
        if (n == 0)
            break;
        ssize_t w = send(c->fd, data, (size_t)n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            kill_conn(c);
            return;
        }
        if (w < 0)
            w = 0;
        if (w < n) {
            free(c->pend);
            c->pend = malloc((size_t)(n - w));
            if (c->pend == NULL) {
                kill_conn(c);
                return;
            }
            memcpy(c->pend, data + w, (size_t)(n - w));
            c->pend_len = (size_t)(n - w);
            c->pend_off = 0;
        }
    }
    if (c->pend_len > 0 && c->pend_off >= c->pend_len) {
        free(c->pend);
        c->pend = NULL;
        c->pend_len = c->pend_off = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static ssize_t read_cb(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
    (void)ses;
    (void)id;
    (void)flags;
    (void)ud;
    stream_t *s = src->ptr;
    size_t k = s->len - s->off;
    if (k == 0) {
        s->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    if (k > len)
        k = len;
    memcpy(buf, s->buf + s->off, k);
    s->off += k;
    if (s->off == s->len)
        s->off = s->len = 0;
    return (ssize_t)k;
}

/* Queues the next event of s unless the last one has not left yet (then, as origin.c does, the event is not made:
 * ids stay gapless and the loss shows as a lower delivered rate). */
static void emit(stream_t *s)
{
    if (s->len > 0) {
        skipped++;
        return;
    }
    s->len = format_event(++s->seq, s->buf);
    s->off = 0;
    written++;
    if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(s->c->ses, s->id);
    }
    mark_dirty(s->c);
}

static int on_begin_headers(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    s->c = ud;
    s->id = f->hd.stream_id;
    s->pos = SIZE_MAX;
    nghttp2_session_set_stream_user_data(ses, f->hd.stream_id, s);
    return 0;
}

static int on_frame_recv(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_HEADERS))
        return 0;
    stream_t *s = nghttp2_session_get_stream_user_data(ses, f->hd.stream_id);
    if (s == NULL || s->seq > 0 || s->len > 0)
        return 0;
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"text/event-stream", 12, 17, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"cache-control", (uint8_t *)"no-cache", 13, 8, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = read_cb};
    /* The first event goes with the head, so a client knows the stream is through end to end. */
    s->len = format_event(++s->seq, s->buf);
    written++;
    nghttp2_submit_response(ses, s->id, nv, 3, &prd);
    mark_dirty(s->c);
    if (O->idle)
        return 0;
    if (nlive == caplive) {
        caplive = caplive ? caplive * 2 : 1024;
        live = realloc(live, caplive * sizeof(*live));
        if (live == NULL) {
            fprintf(stderr, "h2origin: out of memory\n");
            exit(1);
        }
    }
    s->pos = nlive;
    live[nlive++] = s;
    return 0;
}

static int on_stream_close(nghttp2_session *ses, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    (void)ud;
    stream_t *s = nghttp2_session_get_stream_user_data(ses, id);
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ses, id, NULL);
    live_remove(s);
    free(s);
    return 0;
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_t *c = calloc(1, sizeof(*c));
        nghttp2_session_callbacks *cbs;
        if (c == NULL || nghttp2_session_callbacks_new(&cbs) != 0) {
            close(fd);
            free(c);
            continue;
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        int rc = nghttp2_session_server_new(&c->ses, cbs, c);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1000000}};
        if (rc != 0 || nghttp2_submit_settings(c->ses, NGHTTP2_FLAG_NONE, iv, 1) != 0) {
            close(fd);
            free(c);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
        mark_dirty(c);
    }
}

static void on_read(conn_t *c)
{
    char buf[65536];
    for (int round = 0; round < 8 && !c->dead; round++) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            kill_conn(c);
            return;
        }
        if (nghttp2_session_mem_recv(c->ses, (const uint8_t *)buf, (size_t)n) < 0) {
            kill_conn(c);
            return;
        }
        mark_dirty(c);
        if ((size_t)n < sizeof(buf))
            break;
    }
}

static void on_tick(int tfd)
{
    uint64_t exp;
    if (read(tfd, &exp, sizeof(exp)) != (ssize_t)sizeof(exp))
        return;
    uint64_t now = now_ns();
    if (O->rate <= 0) {
        for (size_t i = nlive; i-- > 0;)
            emit(live[i]);
        last_tick_ns = now;
        return;
    }
    budget += O->rate * (double)(now - last_tick_ns) / 1e9;
    last_tick_ns = now;
    if (nlive == 0) {
        budget = 0;
        return;
    }
    if (budget > (double)nlive)
        budget = (double)nlive;
    while (budget >= 1.0 && nlive > 0) {
        if (cursor >= nlive)
            cursor = 0;
        emit(live[cursor++]);
        budget -= 1.0;
    }
}

static void reap(void)
{
    while (dead) {
        conn_t *c = dead;
        dead = c->next_dead;
        /* nghttp2_session_del calls no stream-close callback: free the streams it still holds. */
        for (size_t i = nlive; i-- > 0;) {
            if (live[i]->c == c) {
                stream_t *s = live[i];
                live_remove(s);
                free(s);
            }
        }
        nghttp2_session_del(c->ses);
        free(c->pend);
        free(c);
    }
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
    static opts_t o = {.interval_us = 1000, .size = 100};
    for (int i = 1; i < argc; i++) {
        long v;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--port") == 0 && has && parse_long(argv[++i], 1, 65535, &v))
            o.port = (int)v;
        else if (strcmp(a, "--interval-us") == 0 && has && parse_long(argv[++i], 50, 10000000, &v))
            o.interval_us = v;
        else if (strcmp(a, "--rate") == 0 && has && parse_long(argv[++i], 0, 100000000, &v))
            o.rate = (double)v;
        else if (strcmp(a, "--size") == 0 && has && parse_long(argv[++i], 40, EVENT_MAX - 16, &v))
            o.size = (int)v;
        else if (strcmp(a, "--idle") == 0)
            o.idle = true;
        else {
            fprintf(stderr, "usage: h2origin --port N [--interval-us N] [--rate EVENTS_PER_S] [--size BYTES] [--idle]\n"
                            "  origin.c's events over HTTP/2 with prior knowledge (h2c), one thread.\n");
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    if (o.port == 0) {
        fprintf(stderr, "h2origin: --port is required\n");
        return 2;
    }
    O = &o;
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 1024) != 0) {
        fprintf(stderr, "h2origin: cannot listen on 127.0.0.1:%d: %s\n", o.port, strerror(errno));
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {
        .it_interval = {.tv_sec = o.interval_us / 1000000, .tv_nsec = (o.interval_us % 1000000) * 1000},
        .it_value = {.tv_sec = o.interval_us / 1000000, .tv_nsec = (o.interval_us % 1000000) * 1000},
    };
    static int lkey, tkey;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &lkey};
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &tkey};
    if (epfd < 0 || tfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) != 0 ||
        (!o.idle && (timerfd_settime(tfd, 0, &its, NULL) != 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev) != 0))) {
        perror("h2origin: setup");
        return 1;
    }
    fprintf(stderr, "h2origin: listening on 127.0.0.1:%d (h2c, %s)\n", o.port,
            o.idle ? "idle" : o.rate > 0 ? "rate" : "every stream every tick");
    last_tick_ns = now_ns();
    struct epoll_event evs[MAX_EV];
    for (;;) {
        int n = epoll_wait(epfd, evs, MAX_EV, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("h2origin: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &lkey) {
                on_accept(lfd);
            } else if (p == &tkey) {
                on_tick(tfd);
            } else {
                conn_t *c = p;
                if (c->dead)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    kill_conn(c);
                    continue;
                }
                if (evs[i].events & EPOLLOUT)
                    mark_dirty(c);
                if (evs[i].events & EPOLLIN)
                    on_read(c);
            }
        }
        for (size_t i = 0; i < ndirty; i++) {
            dirty[i]->want_out = false;
            flush(dirty[i]);
        }
        ndirty = 0;
        reap();
    }
}
