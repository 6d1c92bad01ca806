/* loadgen: the benchmark's SSE client; N streams over HTTP/1.1, or over M HTTP/2 connections (h2c or TLS with
 * ALPN h2, nghttp2 client sessions), incremental (de)chunking + SSE parsing, gaps, latency; optionally a TLS
 * handshake generator next to the streams. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

#define MAX_EV 512
#define RBUF (256 * 1024)      /* one read drains many events at once */
#define HEAD_MAX 4096
#define LINE_MAX_ 512
#define US_BUCKETS 100000      /* 1 us resolution up to 100 ms */
#define MS_BUCKETS 120000      /* then 1 ms resolution up to 120 s */
#define MAX_PIDS 16
#define MAX_HS_THREADS 16

enum { PROTO_H1, PROTO_H2C, PROTO_H2TLS };

typedef struct opts {
    const char *host;
    int port;
    const char *path;
    int streams;
    int threads;
    double warmup_s, duration_s, connect_timeout_s, settle_s;
    bool idle;
    int src_first, src_last;  /* source addresses 127.0.0.<first..last>; 0 = let the kernel choose */
    int connect_batch;        /* handshakes in flight per thread */
    long pace_us;             /* least time between two epoll rounds: lets events pile up so one read takes many */
    pid_t proxy_pids[MAX_PIDS];
    int nproxy;
    pid_t origin_pid;
    const char *label;
    int proto;                /* PROTO_*: h1 = one TCP connection per stream; h2c/h2tls = streams over --conns */
    int conns;                /* HTTP/2 connections; streams are spread evenly over them */
    int h2_window;            /* HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE we advertise (and the connection window) */
    double hs_rate;           /* TLS handshakes per second next to the streams (0 = none) */
    int hs_threads;
    int hs_port;              /* where the handshakes go (default: --port) */
    double hs_warmup_s;       /* handshakes run this long before the measured window */
} opts_t;

enum { P_NEW, P_CONNECTING, P_HEAD, P_BODY, P_DONE, P_TLS };
enum { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_TRAILER_LF, C_END };

typedef struct stream {
    int fd;
    uint8_t phase;
    uint8_t cstate;
    bool chunked;
    bool line_over;          /* the current line overflowed LINE_MAX_; it is dropped */
    bool has_id, has_ts;
    bool seen_line;          /* trailer line had content */
    bool h2_status_ok, h2_ctype_ok; /* HTTP/2: :status 200, content-type text/event-stream */
    uint64_t crem;           /* bytes left in the current chunk */
    uint64_t ev_id, ev_ts, last_id;
    uint16_t llen;
    char *head;              /* response head while it is read; freed after */
    uint16_t hlen;
    char line[LINE_MAX_];    /* carry of a partial SSE line */
} stream_t;

typedef struct shared {
    const opts_t *o;
    _Atomic int connected;   /* streams that got a 200 text/event-stream head */
    _Atomic int failed;
    _Atomic uint64_t win_start, win_end; /* ns; 0 = not yet decided */
    _Atomic uint64_t base_start, base_end; /* with --handshake-rate: the window before handshakes start */
    _Atomic bool stop, hs_stop;
    SSL_CTX *ssl_ctx;        /* --proto h2tls */
    nghttp2_session_callbacks *h2cb;
} shared_t;

/* One measured window's figures (per worker thread; merged at the end). */
typedef struct meas {
    uint64_t events, lat_max;
    uint32_t *hus, *hms, hover;
} meas_t;

struct worker;

/* An HTTP/2 connection carrying the streams w->st[first .. first + count). */
typedef struct conn {
    int fd;
    uint8_t phase;           /* P_NEW, P_CONNECTING, P_TLS, P_HEAD (session open), P_DONE */
    uint32_t evmask;         /* what epoll watches for it */
    SSL *ssl;
    nghttp2_session *sess;
    struct worker *w;
    int first, count;
    uint8_t *wbuf;           /* session output not yet taken by the socket */
    size_t wlen, woff, wcap;
} conn_t;

typedef struct worker {
    shared_t *sh;
    int id;
    int epfd;
    stream_t *st;
    int nst;
    int next_connect;        /* next stream index to connect */
    int inflight;
    uint64_t warm_events, gaps, missing, errors, closed, closed_live, bad_lines;
    _Atomic uint64_t first_events; /* streams that got their first event; read by the main thread */
    meas_t m[2];             /* [0] the measured window, [1] the baseline window (--handshake-rate) */
    conn_t *cn;              /* HTTP/2 connections of this thread */
    int ncn;
    uint64_t now;            /* time of the current read, for the nghttp2 callbacks */
    char *rbuf;
    pthread_t th;
} worker_t;

/* A TLS handshake generator thread (--handshake-rate). */
typedef struct hs {
    shared_t *sh;
    int id, nthreads;
    uint64_t t0;
    uint64_t ok, fail, in_win, sum_ns, max_ns;
    pthread_t th;
} hs_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port N [--host 127.0.0.1] [--path /sse] [--streams N] [--threads N]\n"
            "               [--warmup S] [--duration S] [--connect-timeout S] [--idle] [--settle S]\n"
            "               [--src-first 2 --src-last 250 | --src-first 0] [--connect-batch N]\n"
            "               [--pace-us N] [--proxy-pids P,P,...] [--origin-pid P] [--label NAME]\n"
            "               [--proto h1|h2c|h2tls] [--conns M] [--h2-window BYTES]\n"
            "               [--handshake-rate R] [--handshake-threads N] [--handshake-warmup S]\n"
            "               [--handshake-port P]\n"
            "  Streaming mode: connects every stream, waits --warmup, then counts events, id gaps and the\n"
            "  latency (now - the CLOCK_MONOTONIC stamp in each event) for --duration seconds.\n"
            "  Idle mode (--idle): connects every stream, waits for its first event, waits --settle, then\n"
            "  samples the VmRSS of --proxy-pids (the baseline is sampled before connecting) and holds the\n"
            "  streams for --duration. The last stdout line is `RESULT key=value ...`.\n"
            "  --pace-us N spaces epoll rounds by N us so each read() takes many events (less client CPU, at\n"
            "  the price of up to N us added to the measured latency).\n"
            "  --proto h2c|h2tls: the streams go over --conns HTTP/2 connections (prior-knowledge h2c, or TLS\n"
            "  with ALPN h2 and no certificate check), each stream a GET; we advertise --h2-window (default\n"
            "  16 MiB) as the stream window and open the connection window as far, so the client never throttles.\n"
            "  --handshake-rate R (streaming mode): after the warm-up, one window of --duration without\n"
            "  handshakes (base_* keys), then R full TLS handshakes per second (ALPN h2, the h2 preface, read\n"
            "  the server's SETTINGS, close) from --handshake-threads threads against the same port, and after\n"
            "  --handshake-warmup the measured window (the usual keys, plus hs_*). --handshake-port sends\n"
            "  the handshakes to another server instead (CPU contention without the proxy doing them).\n");
}

/* --- latency histogram --- */

static void hist_add(meas_t *m, uint64_t ns)
{
    uint64_t us = ns / 1000;
    m->events++;
    if (ns > m->lat_max)
        m->lat_max = ns;
    if (us < US_BUCKETS)
        m->hus[us]++;
    else if (us / 1000 < MS_BUCKETS)
        m->hms[us / 1000]++;
    else
        m->hover++;
}

/* Returns the q-quantile in microseconds over the merged histograms. */
static double hist_quantile(const uint32_t *hus, const uint32_t *hms, uint64_t total, double q)
{
    if (total == 0)
        return -1;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t acc = 0;
    for (size_t i = 0; i < US_BUCKETS; i++) {
        acc += hus[i];
        if (acc > rank)
            return (double)i;
    }
    for (size_t i = 0; i < MS_BUCKETS; i++) {
        acc += hms[i];
        if (acc > rank)
            return (double)i * 1000.0;
    }
    return (double)MS_BUCKETS * 1000.0;
}

/* --- SSE --- */

static void dispatch(worker_t *w, stream_t *s, uint64_t now)
{
    if (s->has_id) {
        if (s->last_id != 0 && s->ev_id != s->last_id + 1) {
            w->gaps++;
            if (s->ev_id > s->last_id)
                w->missing += s->ev_id - s->last_id - 1;
        }
        if (s->last_id == 0)
            atomic_fetch_add_explicit(&w->first_events, 1, memory_order_relaxed);
        s->last_id = s->ev_id;
    }
    if (s->has_ts) {
        uint64_t lat = now > s->ev_ts ? now - s->ev_ts : 0;
        uint64_t ws = atomic_load_explicit(&w->sh->win_start, memory_order_relaxed);
        uint64_t we = atomic_load_explicit(&w->sh->win_end, memory_order_relaxed);
        uint64_t bs = atomic_load_explicit(&w->sh->base_start, memory_order_relaxed);
        uint64_t be = atomic_load_explicit(&w->sh->base_end, memory_order_relaxed);
        if (ws != 0 && now >= ws && now < we)
            hist_add(&w->m[0], lat);
        else if (bs != 0 && now >= bs && now < be)
            hist_add(&w->m[1], lat);
        else if ((ws == 0 || now < ws) && (bs == 0 || now < bs))
            w->warm_events++;
    }
    s->has_id = s->has_ts = false;
}

static uint64_t parse_u64(const char *p, size_t n, bool *ok)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    *ok = i > 0;
    return v;
}

static void sse_line(worker_t *w, stream_t *s, const char *p, size_t n, uint64_t now)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n == 0) {
        dispatch(w, s, now);
        return;
    }
    bool ok;
    if (n > 4 && memcmp(p, "id: ", 4) == 0) {
        s->ev_id = parse_u64(p + 4, n - 4, &ok);
        s->has_id = ok;
        if (!ok)
            w->bad_lines++;
    } else if (n > 6 && memcmp(p, "data: ", 6) == 0) {
        s->ev_ts = parse_u64(p + 6, n - 6, &ok);
        s->has_ts = ok;
        if (!ok)
            w->bad_lines++;
    } else if (p[0] != ':' && !(n >= 6 && memcmp(p, "retry:", 6) == 0) && !(n >= 6 && memcmp(p, "event:", 6) == 0)) {
        w->bad_lines++;
    }
}

/* Feeds decoded body bytes to the line splitter. */
static void sse_feed(worker_t *w, stream_t *s, const char *p, size_t n, uint64_t now)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        if (!nl) {
            if (s->llen + n > LINE_MAX_) {
                s->line_over = true;
                s->llen = 0;
            } else {
                memcpy(s->line + s->llen, p, n);
                s->llen = (uint16_t)(s->llen + n);
            }
            return;
        }
        size_t len = (size_t)(nl - p);
        if (s->line_over) {
            s->line_over = false;
            s->llen = 0;
            w->bad_lines++;
        } else if (s->llen == 0) {
            sse_line(w, s, p, len, now);
        } else if (s->llen + len <= LINE_MAX_) {
            memcpy(s->line + s->llen, p, len);
            sse_line(w, s, s->line, s->llen + len, now);
            s->llen = 0;
        } else {
            s->llen = 0;
            w->bad_lines++;
        }
        p = nl + 1;
        n -= len + 1;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Chunked transfer-coding decoder; passes data runs to sse_feed. Returns -1 on a framing error, 1 at the end. */
static int dechunk(worker_t *w, stream_t *s, const char *p, size_t n, uint64_t now)
{
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        switch (s->cstate) {
        case C_SIZE: {
            int h = hexval(c);
            if (h >= 0) {
                if (s->crem > (UINT64_MAX >> 8))
                    return -1;
                s->crem = s->crem * 16 + (uint64_t)h;
                s->seen_line = true;
            } else if (c == ';' || c == ' ' || c == '\t') {
                s->cstate = C_EXT;
            } else if (c == '\r') {
                s->cstate = C_SIZE_LF;
            } else {
                return -1;
            }
            i++;
            break;
        }
        case C_EXT:
            if (c == '\r')
                s->cstate = C_SIZE_LF;
            i++;
            break;
        case C_SIZE_LF:
            if (c != '\n' || !s->seen_line)
                return -1;
            s->seen_line = false;
            s->cstate = s->crem == 0 ? C_TRAILER : C_DATA;
            i++;
            break;
        case C_DATA: {
            size_t take = n - i < s->crem ? n - i : (size_t)s->crem;
            sse_feed(w, s, p + i, take, now);
            s->crem -= take;
            i += take;
            if (s->crem == 0)
                s->cstate = C_DATA_CR;
            break;
        }
        case C_DATA_CR:
            if (c != '\r')
                return -1;
            s->cstate = C_DATA_LF;
            i++;
            break;
        case C_DATA_LF:
            if (c != '\n')
                return -1;
            s->cstate = C_SIZE;
            i++;
            break;
        case C_TRAILER:
            if (c == '\r')
                s->cstate = C_TRAILER_LF;
            else
                s->seen_line = true;
            i++;
            break;
        case C_TRAILER_LF:
            if (c != '\n')
                return -1;
            if (!s->seen_line) {
                s->cstate = C_END;
                return 1;
            }
            s->seen_line = false;
            s->cstate = C_TRAILER;
            i++;
            break;
        default:
            return 1;
        }
    }
    return 0;
}

/* --- connections --- */

/* Counts a stream that ended: failed before its head, or closed while live. */
static void stream_gone(worker_t *w, stream_t *s, bool error)
{
    if (s->phase == P_NEW || s->phase == P_CONNECTING || s->phase == P_HEAD)
        atomic_fetch_add(&w->sh->failed, 1);
    else
        w->closed_live++;
    if (error)
        w->errors++;
    w->closed++;
    s->phase = P_DONE;
}

static void stream_close(worker_t *w, stream_t *s, bool error)
{
    if (s->phase == P_DONE)
        return;
    if (s->phase == P_CONNECTING || s->phase == P_HEAD)
        w->inflight--;
    stream_gone(w, s, error);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    free(s->head);
    s->head = NULL;
}

/* A TCP socket to --host:--port from source number n, connect() started (non-blocking: may be in progress;
 * blocking: done, with SO_SNDTIMEO/SO_RCVTIMEO of 2 s). Returns the fd, or -1 (said on stderr). */
static int tcp_open(const opts_t *o, int port, int n, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!nonblock) {
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    if (o->src_first > 0) {
        /* Spread sources over 127.0.0.x so 9,000+ streams never run out of ephemeral ports; the port is
         * chosen at connect() time (IP_BIND_ADDRESS_NO_PORT) so each source has its full port range. */
        int span = o->src_last - o->src_first + 1;
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
        src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(o->src_first + n % span));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            fprintf(stderr, "loadgen: bind: %s\n", strerror(errno));
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, o->host, &dst.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad host %s (IPv4 literal expected)\n", o->host);
        exit(2);
    }
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && !(nonblock && errno == EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Starts a non-blocking connect for stream/connection number idx of this thread; -1 if it failed at once. */
static int start_fd(worker_t *w, int idx)
{
    const opts_t *o = w->sh->o;
    int fd = tcp_open(o, o->port, idx * o->threads + w->id, true);
    if (fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether a non-blocking connect() finished well. */
static bool connect_done(int fd)
{
    int err = 0;
    socklen_t el = sizeof(err);
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0;
}

static void start_connect(worker_t *w, int idx)
{
    stream_t *s = &w->st[idx];
    s->fd = start_fd(w, idx);
    if (s->fd < 0) {
        stream_gone(w, s, true);
        return;
    }
    s->phase = P_CONNECTING;
    w->inflight++;
}

static void on_connected(worker_t *w, int idx)
{
    const opts_t *o = w->sh->o;
    stream_t *s = &w->st[idx];
    if (!connect_done(s->fd)) {
        stream_close(w, s, true);
        return;
    }
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "User-Agent: ssegate-loadgen\r\n\r\n",
                     o->path, o->host, o->port);
    if (write(s->fd, req, (size_t)n) != n) {
        stream_close(w, s, true);
        return;
    }
    s->phase = P_HEAD;
    s->head = malloc(HEAD_MAX);
    if (!s->head) {
        stream_close(w, s, true);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0)
        stream_close(w, s, true);
}

static bool head_has(const char *head, size_t n, const char *name, const char *value)
{
    /* Case-insensitive search for "name:" at a line start, then value as a token inside the field value. */
    size_t nl = strlen(name), vl = strlen(value);
    for (size_t i = 0; i + nl + 1 < n; i++) {
        if ((i == 0 || head[i - 1] == '\n') && strncasecmp(head + i, name, nl) == 0 && head[i + nl] == ':') {
            const char *v = head + i + nl + 1;
            const char *e = memchr(v, '\r', n - (size_t)(v - head));
            if (!e)
                return false;
            for (const char *q = v; q + vl <= e; q++)
                if (strncasecmp(q, value, vl) == 0)
                    return true;
            return false;
        }
    }
    return false;
}

/* Handles bytes of the body; returns false if the stream was closed. */
static bool body_bytes(worker_t *w, stream_t *s, const char *p, size_t n, uint64_t now)
{
    if (!s->chunked) {
        sse_feed(w, s, p, n, now);
        return true;
    }
    int r = dechunk(w, s, p, n, now);
    if (r < 0) {
        fprintf(stderr, "loadgen: chunked framing error\n");
        stream_close(w, s, true);
        return false;
    }
    if (r > 0) {
        stream_close(w, s, true); /* an SSE stream that ends is an error in this benchmark */
        return false;
    }
    return true;
}

static void on_readable(worker_t *w, int idx)
{
    stream_t *s = &w->st[idx];
    for (int rounds = 0; rounds < 8; rounds++) {
        ssize_t n = read(s->fd, w->rbuf, RBUF);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                stream_close(w, s, true);
            return;
        }
        if (n == 0) {
            stream_close(w, s, true);
            return;
        }
        uint64_t now = now_ns();
        const char *p = w->rbuf;
        size_t len = (size_t)n;
        if (s->phase == P_HEAD) {
            size_t take = len < (size_t)(HEAD_MAX - s->hlen) ? len : (size_t)(HEAD_MAX - s->hlen);
            memcpy(s->head + s->hlen, p, take);
            size_t old = s->hlen;
            s->hlen = (uint16_t)(s->hlen + take);
            char *e = memmem(s->head, s->hlen, "\r\n\r\n", 4);
            if (!e) {
                if (s->hlen == HEAD_MAX)
                    stream_close(w, s, true);
                continue;
            }
            size_t hl = (size_t)(e - s->head) + 4;
            if (s->hlen < 12 || memcmp(s->head, "HTTP/1.", 7) != 0 || memcmp(s->head + 9, "200", 3) != 0 ||
                !head_has(s->head, hl, "content-type", "text/event-stream")) {
                if (w->errors < 3) {
                    int shown = (int)(hl < 200 ? hl : 200);
                    fprintf(stderr, "loadgen: unexpected response head:\n%.*s\n", shown, s->head);
                }
                stream_close(w, s, true);
                return;
            }
            s->chunked = head_has(s->head, hl, "transfer-encoding", "chunked");
            free(s->head);
            s->head = NULL;
            s->phase = P_BODY;
            w->inflight--;
            atomic_fetch_add(&w->sh->connected, 1);
            size_t used = hl - old;  /* bytes of this read that belonged to the head */
            p += used;
            len -= used;
        }
        if (len > 0 && !body_bytes(w, s, p, len, now))
            return;
        if ((size_t)n < RBUF)
            return;
    }
}

/* --- HTTP/2 connections (--proto h2c | h2tls) --- */

static void conn_watch(worker_t *w, conn_t *c, uint32_t events)
{
    if (c->evmask == events)
        return;
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(c - w->cn)};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->evmask = events;
}

/* Closes a connection; its streams that are still open count as errors. */
static void conn_close(worker_t *w, conn_t *c)
{
    if (c->phase == P_DONE || c->phase == P_NEW)
        return;
    for (int i = c->first; i < c->first + c->count; i++)
        if (w->st[i].phase != P_DONE)
            stream_gone(w, &w->st[i], true);
    if (c->phase == P_CONNECTING || c->phase == P_TLS)
        w->inflight--;
    if (c->sess)
        nghttp2_session_del(c->sess);
    c->sess = NULL;
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    free(c->wbuf);
    c->wbuf = NULL;
    c->phase = P_DONE;
}

/* Writes what it can; returns bytes written, 0 if the socket would block, -1 on an error. */
static ssize_t conn_write(conn_t *c, const uint8_t *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_write(c->ssl, p, (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r >= 0)
        return r;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
}

/* Reads into buf; returns bytes, 0 if nothing is there now, -1 at EOF or on an error. */
static ssize_t conn_read(conn_t *c, char *buf, size_t cap)
{
    if (c->ssl) {
        size_t got = 0;
        /* A TLS record is at most 16 KiB; fill the buffer with whole records before one mem_recv. */
        while (cap - got >= 16384 + 512) {
            int r = SSL_read(c->ssl, buf + got, (int)(cap - got));
            if (r > 0) {
                got += (size_t)r;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            return got > 0 ? (ssize_t)got : -1;
        }
        return (ssize_t)got;
    }
    for (;;) {
        ssize_t r = read(c->fd, buf, cap);
        if (r > 0)
            return r;
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    }
}

/* Sends the session's output; returns false if the connection was closed. */
static bool conn_flush(worker_t *w, conn_t *c)
{
    for (;;) {
        if (c->woff == c->wlen) {
            c->woff = c->wlen = 0;
            const uint8_t *d;
            ssize_t n = nghttp2_session_mem_send(c->sess, &d);
            if (n < 0) {
                conn_close(w, c);
                return false;
            }
            if (n == 0)
                break;
            if ((size_t)n > c->wcap) {
                uint8_t *nb = realloc(c->wbuf, (size_t)n);
                if (!nb) {
                    conn_close(w, c);
                    return false;
                }
                c->wbuf = nb;
                c->wcap = (size_t)n;
            }
            memcpy(c->wbuf, d, (size_t)n);
            c->wlen = (size_t)n;
        }
        ssize_t k = conn_write(c, c->wbuf + c->woff, c->wlen - c->woff);
        if (k < 0) {
            conn_close(w, c);
            return false;
        }
        if (k == 0)
            break;
        c->woff += (size_t)k;
    }
    if (!nghttp2_session_want_read(c->sess) && !nghttp2_session_want_write(c->sess) && c->woff == c->wlen) {
        conn_close(w, c); /* GOAWAY done both ways */
        return false;
    }
    conn_watch(w, c, EPOLLIN | EPOLLRDHUP | (c->woff < c->wlen ? EPOLLOUT : 0));
    return true;
}

static stream_t *h2_stream(nghttp2_session *sess, int32_t id)
{
    return nghttp2_session_get_stream_user_data(sess, id);
}

static int h2_on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    stream_t *s = h2_stream(sess, f->hd.stream_id);
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_RESPONSE || !s)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        s->h2_status_ok = valuelen == 3 && memcmp(value, "200", 3) == 0;
    else if (namelen == 12 && memcmp(name, "content-type", 12) == 0)
        s->h2_ctype_ok = valuelen >= 17 && strncasecmp((const char *)value, "text/event-stream", 17) == 0;
    return 0;
}

static int h2_on_frame(nghttp2_session *sess, const nghttp2_frame *f, void *ud)
{
    conn_t *c = ud;
    worker_t *w = c->w;
    stream_t *s = h2_stream(sess, f->hd.stream_id);
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_RESPONSE || !s || s->phase != P_HEAD)
        return 0;
    if (s->h2_status_ok && s->h2_ctype_ok) {
        s->phase = P_BODY;
        atomic_fetch_add(&w->sh->connected, 1);
        return 0;
    }
    if (w->errors < 3)
        fprintf(stderr, "loadgen: unexpected HTTP/2 response (status 200: %d, text/event-stream: %d)\n",
                s->h2_status_ok, s->h2_ctype_ok);
    stream_gone(w, s, true);
    nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_CANCEL);
    return 0;
}

static int h2_on_data(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    conn_t *c = ud;
    stream_t *s = h2_stream(sess, id);
    if (s && s->phase == P_BODY)
        sse_feed(c->w, s, (const char *)data, len, c->w->now);
    return 0;
}

static int h2_on_close(nghttp2_session *sess, int32_t id, uint32_t code, void *ud)
{
    conn_t *c = ud;
    stream_t *s = h2_stream(sess, id);
    if (s && s->phase != P_DONE) {
        if (c->w->errors < 3)
            fprintf(stderr, "loadgen: HTTP/2 stream %d closed (error code %u)\n", (int)id, code);
        stream_gone(c->w, s, true); /* an SSE stream that ends is an error in this benchmark */
    }
    return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
    return cb;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

/* TCP (and TLS) are up: the client session, our SETTINGS and windows, one GET per stream. */
static void conn_open(worker_t *w, conn_t *c)
{
    const opts_t *o = w->sh->o;
    w->inflight--;
    c->phase = P_HEAD;
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        conn_close(w, c);
        return;
    }
    /* Until the server's SETTINGS come, send no more than 100 requests (RFC 9113's recommended floor). */
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    int rc = nghttp2_session_client_new2(&c->sess, w->sh->h2cb, c, opt);
    nghttp2_option_del(opt);
    if (rc != 0) {
        conn_close(w, c);
        return;
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)o->h2_window}};
    char authority[300];
    snprintf(authority, sizeof(authority), "%s:%d", o->host, o->port);
    nghttp2_nv nva[] = {NV(":method", "GET"),           NV(":scheme", c->ssl ? "https" : "http"),
                        NV(":authority", authority),    NV(":path", o->path),
                        NV("accept", "text/event-stream"), NV("cache-control", "no-cache"),
                        NV("user-agent", "ssegate-loadgen")};
    if (nghttp2_submit_settings(c->sess, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
        nghttp2_session_set_local_window_size(c->sess, NGHTTP2_FLAG_NONE, 0, o->h2_window) != 0) {
        conn_close(w, c);
        return;
    }
    for (int i = c->first; i < c->first + c->count; i++) {
        stream_t *s = &w->st[i];
        s->phase = P_HEAD;
        if (nghttp2_submit_request(c->sess, NULL, nva, sizeof(nva) / sizeof(nva[0]), NULL, s) < 0)
            stream_gone(w, s, true);
    }
    conn_flush(w, c);
}

static void conn_handshake(worker_t *w, conn_t *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        const unsigned char *alpn = NULL;
        unsigned alen = 0;
        SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
        if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
            if (w->errors < 3)
                fprintf(stderr, "loadgen: the server did not select ALPN h2\n");
            conn_close(w, c);
            return;
        }
        conn_open(w, c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        conn_watch(w, c, EPOLLIN);
    else if (e == SSL_ERROR_WANT_WRITE)
        conn_watch(w, c, EPOLLOUT);
    else {
        if (w->errors < 3)
            fprintf(stderr, "loadgen: TLS handshake failed: %s\n", ERR_error_string(ERR_get_error(), NULL));
        conn_close(w, c);
    }
}

static void conn_start(worker_t *w, int idx)
{
    conn_t *c = &w->cn[idx];
    c->w = w;
    c->fd = start_fd(w, idx);
    if (c->fd < 0) {
        for (int i = c->first; i < c->first + c->count; i++)
            stream_gone(w, &w->st[i], true);
        c->phase = P_DONE;
        return;
    }
    c->evmask = EPOLLOUT;
    c->phase = P_CONNECTING;
    w->inflight++;
}

static void conn_event(worker_t *w, conn_t *c, uint32_t events)
{
    if (c->phase == P_CONNECTING) {
        if (!connect_done(c->fd)) {
            conn_close(w, c);
            return;
        }
        if (!w->sh->ssl_ctx) {
            conn_open(w, c);
            return;
        }
        c->ssl = SSL_new(w->sh->ssl_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
            conn_close(w, c);
            return;
        }
        SSL_set_connect_state(c->ssl);
        SSL_set_tlsext_host_name(c->ssl, "localhost");
        c->phase = P_TLS;
        conn_handshake(w, c);
        return;
    }
    if (c->phase == P_TLS) {
        conn_handshake(w, c);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        for (int rounds = 0; rounds < 8; rounds++) {
            ssize_t n = conn_read(c, w->rbuf, RBUF);
            if (n < 0) {
                conn_close(w, c);
                return;
            }
            if (n == 0)
                break;
            w->now = now_ns();
            if (nghttp2_session_mem_recv(c->sess, (const uint8_t *)w->rbuf, (size_t)n) < 0) {
                if (w->errors < 3)
                    fprintf(stderr, "loadgen: HTTP/2 protocol error from the server\n");
                conn_close(w, c);
                return;
            }
            if ((size_t)n < RBUF / 2)
                break;
        }
    }
    conn_flush(w, c);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    const opts_t *o = w->sh->o;
    struct epoll_event evs[MAX_EV];
    int per_thread_batch = o->connect_batch / o->threads > 0 ? o->connect_batch / o->threads : 1;
    uint64_t last_round = 0;
    while (!atomic_load(&w->sh->stop)) {
        if (o->pace_us > 0) {
            uint64_t t = now_ns();
            uint64_t pace = (uint64_t)o->pace_us * 1000u;
            if (t - last_round < pace) {
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(pace - (t - last_round))};
                nanosleep(&ts, NULL);
            }
            last_round = now_ns();
        }
        if (o->proto != PROTO_H1) {
            while (w->next_connect < w->ncn && w->inflight < per_thread_batch)
                conn_start(w, w->next_connect++);
        } else {
            while (w->next_connect < w->nst && w->inflight < per_thread_batch)
                start_connect(w, w->next_connect++);
        }
        int n = epoll_wait(w->epfd, evs, MAX_EV, 50);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            int idx = (int)evs[i].data.u64;
            if (o->proto != PROTO_H1) {
                if (w->cn[idx].phase != P_DONE)
                    conn_event(w, &w->cn[idx], evs[i].events);
                continue;
            }
            stream_t *s = &w->st[idx];
            if (s->phase == P_DONE)
                continue;
            if (s->phase == P_CONNECTING) {
                on_connected(w, idx);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                on_readable(w, idx);
        }
        uint64_t we = atomic_load(&w->sh->win_end);
        if (we != 0 && now_ns() > we + 200000000ull && !o->idle)
            break;
    }
    return NULL;
}

static bool parse_double(const char *s, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || *e || v < 0)
        return false;
    *out = v;
    return true;
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool parse_pids(const char *s, opts_t *o)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", s);
    o->nproxy = 0;
    char *save = NULL;
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v;
        if (o->nproxy == MAX_PIDS || !parse_int(tok, 1, 1 << 30, &v))
            return false;
        o->proxy_pids[o->nproxy++] = (pid_t)v;
    }
    return true;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* --- TLS --- */

static SSL_CTX *tls_client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the benchmark's throw-away self-signed certificate */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* every handshake is a full one */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    static const unsigned char alpn[] = {2, 'h', '2'};
    if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn)) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* One full handshake on a new connection (blocking, 2 s timeouts): ALPN h2, the client preface and an empty
 * SETTINGS, then the server's first frame must be its SETTINGS; close_notify and close. */
static bool hs_once(const opts_t *o, SSL_CTX *ctx, int n)
{
    int fd = tcp_open(o, o->hs_port ? o->hs_port : o->port, n, false);
    if (fd < 0)
        return false;
    bool ok = false;
    SSL *ssl = SSL_new(ctx);
    if (ssl && SSL_set_fd(ssl, fd) == 1) {
        SSL_set_tlsext_host_name(ssl, "localhost");
        if (SSL_connect(ssl) == 1) {
            static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
            const unsigned char *alpn = NULL;
            unsigned alen = 0;
            uint8_t frame[9];
            SSL_get0_alpn_selected(ssl, &alpn, &alen);
            ok = alen == 2 && memcmp(alpn, "h2", 2) == 0 && SSL_write(ssl, preface, 33) == 33 &&
                 SSL_read(ssl, frame, 9) == 9 && frame[3] == NGHTTP2_SETTINGS;
            SSL_shutdown(ssl);
        }
    }
    SSL_free(ssl);
    close(fd);
    return ok;
}

/* Handshake i is due at t0 + i / rate; thread k takes i = k, k + nthreads, ... A late thread does not skip. */
static void *hs_main(void *arg)
{
    hs_t *h = arg;
    const opts_t *o = h->sh->o;
    for (uint64_t i = (uint64_t)h->id; !atomic_load(&h->sh->hs_stop); i += (uint64_t)h->nthreads) {
        uint64_t due = h->t0 + (uint64_t)((double)i * 1e9 / o->hs_rate);
        uint64_t t;
        while ((t = now_ns()) < due && !atomic_load(&h->sh->hs_stop)) {
            uint64_t d = due - t < 50000000u ? due - t : 50000000u;
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)d};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&h->sh->hs_stop))
            break;
        bool ok = hs_once(o, h->sh->ssl_ctx, (int)(i % 1000000));
        uint64_t t1 = now_ns();
        if (!ok) {
            h->fail++;
            continue;
        }
        h->ok++;
        h->sum_ns += t1 - t;
        if (t1 - t > h->max_ns)
            h->max_ns = t1 - t;
        uint64_t ws = atomic_load(&h->sh->win_start), we = atomic_load(&h->sh->win_end);
        if (ws != 0 && t1 >= ws && t1 < we)
            h->in_win++;
    }
    return NULL;
}

/* --- results --- */

/* Merges window k of every thread into out (whose histograms are zeroed and allocated by the caller). */
static void meas_merge(const worker_t *ws, int nthreads, int k, meas_t *out)
{
    for (int t = 0; t < nthreads; t++) {
        const meas_t *m = &ws[t].m[k];
        if (!m->hus)
            continue;
        out->events += m->events;
        out->hover += m->hover;
        if (m->lat_max > out->lat_max)
            out->lat_max = m->lat_max;
        for (size_t i = 0; i < US_BUCKETS; i++)
            out->hus[i] += m->hus[i];
        for (size_t i = 0; i < MS_BUCKETS; i++)
            out->hms[i] += m->hms[i];
    }
}

typedef struct cpu_win {
    long long proxy0, proxy1, origin0, origin1, self0, self1, idle0, idle1;
    double window;
} cpu_win_t;

static void cpu_sample(const opts_t *o, cpu_win_t *c, bool end)
{
    long long proxy = o->nproxy ? cpu_sum(o->proxy_pids, o->nproxy) : -1;
    long long origin = o->origin_pid ? cpu_ticks(o->origin_pid) : -1;
    long long self = cpu_ticks(getpid()), idle = machine_idle();
    if (end) {
        c->proxy1 = proxy, c->origin1 = origin, c->self1 = self, c->idle1 = idle;
    } else {
        c->proxy0 = proxy, c->origin0 = origin, c->self0 = self, c->idle0 = idle;
    }
}

static void print_cpu(const char *pfx, const char *name, long long t0, long long t1, double window)
{
    if (t0 >= 0 && t1 >= 0 && window > 0)
        printf(" %s%s_cpu_pct=%.0f", pfx, name, (double)(t1 - t0) * 100.0 / (double)sysconf(_SC_CLK_TCK) / window);
}

/* Prints one window's keys, each name prefixed with pfx. */
static void print_window(const char *pfx, const meas_t *m, const cpu_win_t *c)
{
    const uint32_t *hus = m->hus, *hms = m->hms;
    uint64_t n = m->events;
    printf(" %swindow_s=%.2f %sevents=%llu %srate=%.0f", pfx, c->window, pfx, (unsigned long long)n, pfx,
           c->window > 0 ? (double)n / c->window : 0.0);
    printf(" %sp50_us=%.0f %sp99_us=%.0f %sp999_us=%.0f %smax_us=%.0f", pfx, hist_quantile(hus, hms, n, 0.50), pfx,
           hist_quantile(hus, hms, n, 0.99), pfx, hist_quantile(hus, hms, n, 0.999), pfx,
           (double)m->lat_max / 1000.0);
    print_cpu(pfx, "proxy", c->proxy0, c->proxy1, c->window);
    print_cpu(pfx, "origin", c->origin0, c->origin1, c->window);
    print_cpu(pfx, "client", c->self0, c->self1, c->window);
    /* All CPUs: everything that ran, ours or not. */
    if (c->idle0 >= 0 && c->idle1 >= 0 && c->window > 0) {
        double idle = (double)(c->idle1 - c->idle0) / (double)sysconf(_SC_CLK_TCK);
        double cpus = (double)sysconf(_SC_NPROCESSORS_ONLN);
        printf(" %smachine_cpu_pct=%.0f", pfx, (cpus * c->window - idle) * 100.0 / c->window);
    }
}

/* Sleeps through one measured window (its bounds published in start and end) with CPU samples around it. */
static void measure_window(const opts_t *o, _Atomic uint64_t *start, _Atomic uint64_t *end, cpu_win_t *c)
{
    cpu_sample(o, c, false);
    uint64_t s = now_ns();
    uint64_t e = s + (uint64_t)(o->duration_s * 1e9);
    atomic_store(end, e);
    atomic_store(start, s);
    sleep_s(o->duration_s);
    cpu_sample(o, c, true);
    c->window = (double)(e - s) / 1e9;
}

int main(int argc, char **argv)
{
    opts_t o = {.host = "127.0.0.1", .port = 0, .path = "/sse", .streams = 1000, .threads = 1,
                .warmup_s = 3, .duration_s = 10, .connect_timeout_s = 30, .settle_s = 2,
                .src_first = 2, .src_last = 250, .connect_batch = 512, .label = "run",
                .proto = PROTO_H1, .conns = 1, .h2_window = 16 << 20, .hs_threads = 4, .hs_warmup_s = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        bool ok = true;
        if (strcmp(a, "--host") == 0 && has)
            o.host = argv[++i];
        else if (strcmp(a, "--port") == 0 && has)
            ok = parse_int(argv[++i], 1, 65535, &o.port);
        else if (strcmp(a, "--path") == 0 && has)
            o.path = argv[++i];
        else if (strcmp(a, "--streams") == 0 && has)
            ok = parse_int(argv[++i], 1, 1000000, &o.streams);
        else if (strcmp(a, "--threads") == 0 && has)
            ok = parse_int(argv[++i], 1, 64, &o.threads);
        else if (strcmp(a, "--warmup") == 0 && has)
            ok = parse_double(argv[++i], &o.warmup_s);
        else if (strcmp(a, "--duration") == 0 && has)
            ok = parse_double(argv[++i], &o.duration_s);
        else if (strcmp(a, "--connect-timeout") == 0 && has)
            ok = parse_double(argv[++i], &o.connect_timeout_s);
        else if (strcmp(a, "--settle") == 0 && has)
            ok = parse_double(argv[++i], &o.settle_s);
        else if (strcmp(a, "--idle") == 0)
            o.idle = true;
        else if (strcmp(a, "--src-first") == 0 && has)
            ok = parse_int(argv[++i], 0, 254, &o.src_first);
        else if (strcmp(a, "--src-last") == 0 && has)
            ok = parse_int(argv[++i], 1, 254, &o.src_last);
        else if (strcmp(a, "--connect-batch") == 0 && has)
            ok = parse_int(argv[++i], 1, 100000, &o.connect_batch);
        else if (strcmp(a, "--pace-us") == 0 && has) {
            int v;
            ok = parse_int(argv[++i], 0, 1000000, &v);
            o.pace_us = v;
        } else if (strcmp(a, "--proxy-pids") == 0 && has)
            ok = parse_pids(argv[++i], &o);
        else if (strcmp(a, "--origin-pid") == 0 && has) {
            int v;
            ok = parse_int(argv[++i], 1, 1 << 30, &v);
            o.origin_pid = (pid_t)v;
        } else if (strcmp(a, "--label") == 0 && has)
            o.label = argv[++i];
        else if (strcmp(a, "--proto") == 0 && has) {
            const char *v = argv[++i];
            o.proto = strcmp(v, "h1") == 0 ? PROTO_H1 : strcmp(v, "h2c") == 0 ? PROTO_H2C
                                                    : strcmp(v, "h2tls") == 0 ? PROTO_H2TLS : -1;
            ok = o.proto >= 0;
        } else if (strcmp(a, "--conns") == 0 && has)
            ok = parse_int(argv[++i], 1, 100000, &o.conns);
        else if (strcmp(a, "--h2-window") == 0 && has)
            ok = parse_int(argv[++i], 65535, 0x7fffffff, &o.h2_window);
        else if (strcmp(a, "--handshake-rate") == 0 && has)
            ok = parse_double(argv[++i], &o.hs_rate) && o.hs_rate <= 100000;
        else if (strcmp(a, "--handshake-port") == 0 && has)
            ok = parse_int(argv[++i], 1, 65535, &o.hs_port);
        else if (strcmp(a, "--handshake-threads") == 0 && has)
            ok = parse_int(argv[++i], 1, MAX_HS_THREADS, &o.hs_threads);
        else if (strcmp(a, "--handshake-warmup") == 0 && has)
            ok = parse_double(argv[++i], &o.hs_warmup_s);
        else {
            usage();
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
        if (!ok) {
            fprintf(stderr, "loadgen: bad value for %s\n", a);
            return 2;
        }
    }
    if (o.proto != PROTO_H1 && (o.conns > o.streams || o.threads > o.conns)) {
        fprintf(stderr, "loadgen: --conns must be between --threads and --streams\n");
        return 2;
    }
    if (o.port == 0 || (o.src_first > 0 && o.src_last < o.src_first)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    shared_t sh = {.o = &o};
    bool h2 = o.proto != PROTO_H1;
    if (o.proto == PROTO_H2TLS || o.hs_rate > 0) {
        sh.ssl_ctx = tls_client_ctx();
        if (!sh.ssl_ctx) {
            fprintf(stderr, "loadgen: TLS setup failed\n");
            return 1;
        }
    }
    if (h2 && !(sh.h2cb = h2_callbacks())) {
        fprintf(stderr, "loadgen: nghttp2 setup failed\n");
        return 1;
    }
    long base_rss = o.nproxy ? rss_sum(o.proxy_pids, o.nproxy) : -1;
    worker_t *ws = calloc((size_t)o.threads, sizeof(*ws));
    if (!ws) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        w->sh = &sh;
        w->id = t;
        w->nst = o.streams / o.threads + (t < o.streams % o.threads ? 1 : 0);
        if (h2) {
            /* Connection g = local index * threads + t carries streams / conns streams, one more for the
             * first streams % conns connections. */
            w->ncn = o.conns / o.threads + (t < o.conns % o.threads ? 1 : 0);
            w->cn = calloc((size_t)w->ncn, sizeof(*w->cn));
            if (!w->cn)
                return 1;
            w->nst = 0;
            for (int i = 0; i < w->ncn; i++) {
                int g = i * o.threads + t;
                w->cn[i].fd = -1;
                w->cn[i].first = w->nst;
                w->cn[i].count = o.streams / o.conns + (g < o.streams % o.conns ? 1 : 0);
                w->nst += w->cn[i].count;
            }
        }
        w->st = calloc((size_t)w->nst + 1, sizeof(*w->st));
        w->rbuf = malloc(RBUF);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        for (int k = 0; k < (o.hs_rate > 0 ? 2 : 1); k++) {
            w->m[k].hus = calloc(US_BUCKETS, sizeof(*w->m[k].hus));
            w->m[k].hms = calloc(MS_BUCKETS, sizeof(*w->m[k].hms));
            if (!w->m[k].hus || !w->m[k].hms)
                return 1;
        }
        if (!w->st || !w->rbuf || w->epfd < 0) {
            fprintf(stderr, "loadgen: setup failed\n");
            return 1;
        }
        int rc = pthread_create(&w->th, NULL, worker_main, w);
        if (rc != 0) {
            fprintf(stderr, "loadgen: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }

    /* Connect phase: until every stream has its head (or failed), bounded by --connect-timeout. */
    uint64_t t0 = now_ns();
    while (atomic_load(&sh.connected) + atomic_load(&sh.failed) < o.streams &&
           (double)(now_ns() - t0) / 1e9 < o.connect_timeout_s)
        sleep_s(0.02);
    double connect_s = (double)(now_ns() - t0) / 1e9;
    int connected = atomic_load(&sh.connected);
    fprintf(stderr, "loadgen[%s]: %d/%d streams connected in %.2f s\n", o.label, connected, o.streams, connect_s);

    long rss = -1;
    cpu_win_t cw = {-1, -1, -1, -1, -1, -1, -1, -1, 0}, bw = cw;
    hs_t hs[MAX_HS_THREADS] = {0};
    int nhs = 0;
    double hs_window = 0;
    if (connected == 0) {
        atomic_store(&sh.stop, true); /* nothing to measure */
    } else if (o.idle) {
        /* Wait for the first event on the streams (end-to-end proof), then let allocations settle. */
        uint64_t t1 = now_ns();
        for (;;) {
            uint64_t fe = 0;
            for (int t = 0; t < o.threads; t++)
                fe += atomic_load_explicit(&ws[t].first_events, memory_order_relaxed);
            if ((int)fe >= atomic_load(&sh.connected) || (double)(now_ns() - t1) / 1e9 > 5)
                break;
            sleep_s(0.05);
        }
        sleep_s(o.settle_s);
        connected = atomic_load(&sh.connected);
        rss = o.nproxy ? rss_sum(o.proxy_pids, o.nproxy) : -1;
        printf("READY connected=%d\n", connected);
        fflush(stdout);
        sleep_s(o.duration_s);
        atomic_store(&sh.stop, true);
    } else {
        sleep_s(o.warmup_s);
        if (o.hs_rate > 0) {
            /* The baseline window, then the handshakes start and the measured window follows. */
            measure_window(&o, &sh.base_start, &sh.base_end, &bw);
            uint64_t hs_t0 = now_ns();
            for (nhs = 0; nhs < o.hs_threads; nhs++) {
                hs[nhs] = (hs_t){.sh = &sh, .id = nhs, .nthreads = o.hs_threads, .t0 = hs_t0};
                if (pthread_create(&hs[nhs].th, NULL, hs_main, &hs[nhs]) != 0)
                    break;
            }
            sleep_s(o.hs_warmup_s);
        }
        measure_window(&o, &sh.win_start, &sh.win_end, &cw);
        hs_window = cw.window;
        atomic_store(&sh.hs_stop, true);
        for (int i = 0; i < nhs; i++)
            pthread_join(hs[i].th, NULL);
        sleep_s(0.3);
        atomic_store(&sh.stop, true);
    }
    for (int t = 0; t < o.threads; t++)
        pthread_join(ws[t].th, NULL);

    /* Merge per-thread figures. */
    meas_t mw[2] = {{0}};
    for (int k = 0; k < 2; k++) {
        mw[k].hus = calloc(US_BUCKETS, sizeof(*mw[k].hus));
        mw[k].hms = calloc(MS_BUCKETS, sizeof(*mw[k].hms));
        if (!mw[k].hus || !mw[k].hms)
            return 1;
        meas_merge(ws, o.threads, k, &mw[k]);
    }
    uint64_t gaps = 0, missing = 0, errors = 0, bad = 0, closed = 0, closed_live = 0;
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        gaps += w->gaps;
        missing += w->missing;
        errors += w->errors;
        closed += w->closed;
        closed_live += w->closed_live;
        bad += w->bad_lines;
    }
    /* Streams still open at the end: connected minus those that closed after their head. */
    int open_streams = connected - (int)closed_live;
    printf("RESULT label=%s mode=%s streams=%d connected=%d connect_s=%.2f", o.label, o.idle ? "idle" : "stream",
           o.streams, connected, connect_s);
    if (h2)
        printf(" proto=%s conns=%d", o.proto == PROTO_H2C ? "h2c" : "h2tls", o.conns);
    if (o.idle) {
        printf(" rss_base_kib=%ld rss_kib=%ld", base_rss, rss);
        if (base_rss >= 0 && rss >= 0 && connected > 0)
            printf(" kib_per_stream=%.2f", (double)(rss - base_rss) / connected);
    } else {
        print_window("", &mw[0], &cw);
        if (o.hs_rate > 0) {
            print_window("base_", &mw[1], &bw);
            uint64_t ok = 0, fail = 0, in_win = 0, sum = 0, mx = 0;
            for (int i = 0; i < nhs; i++) {
                ok += hs[i].ok;
                fail += hs[i].fail;
                in_win += hs[i].in_win;
                sum += hs[i].sum_ns;
                mx = hs[i].max_ns > mx ? hs[i].max_ns : mx;
            }
            printf(" hs_offered=%.0f hs_rate=%.0f hs_ok=%llu hs_failed=%llu hs_avg_ms=%.2f hs_max_ms=%.2f", o.hs_rate,
                   hs_window > 0 ? (double)in_win / hs_window : 0.0, (unsigned long long)ok,
                   (unsigned long long)fail, ok ? (double)sum / (double)ok / 1e6 : 0.0, (double)mx / 1e6);
            if (mw[1].events > 0)
                printf(" p99_ratio=%.2f", hist_quantile(mw[0].hus, mw[0].hms, mw[0].events, 0.99) /
                                              hist_quantile(mw[1].hus, mw[1].hms, mw[1].events, 0.99));
        }
    }
    printf(" gaps=%llu missing=%llu errors=%llu closed=%llu bad_lines=%llu open=%d\n", (unsigned long long)gaps,
           (unsigned long long)missing, (unsigned long long)errors, (unsigned long long)closed,
           (unsigned long long)bad, open_streams);
    fflush(stdout);
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        if (h2) {
            for (int i = 0; i < w->ncn; i++)
                conn_close(w, &w->cn[i]);
        } else {
            for (int i = 0; i < w->nst; i++)
                if (w->st[i].phase != P_NEW && w->st[i].phase != P_DONE)
                    close(w->st[i].fd);
        }
        for (int i = 0; i < w->nst; i++)
            free(w->st[i].head);
        close(w->epfd);
        free(w->st);
        free(w->cn);
        for (int k = 0; k < 2; k++) {
            free(w->m[k].hus);
            free(w->m[k].hms);
        }
        free(w->rbuf);
    }
    free(ws);
    for (int k = 0; k < 2; k++) {
        free(mw[k].hus);
        free(mw[k].hms);
    }
    if (sh.h2cb)
        nghttp2_session_callbacks_del(sh.h2cb);
    SSL_CTX_free(sh.ssl_ctx);
    return 0;
}
