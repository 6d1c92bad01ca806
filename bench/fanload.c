/* fanload: the fan-out benchmark's subscriber side; holds N SSE subscriptions (HTTP/1.1, source addresses spread
 * over 127.0.0.x), starts the publisher once all are subscribed, and measures each event from its origin stamp to
 * its last subscriber, every subscriber's id sequence, the proxy's memory per subscriber and CPU per event. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

#define MAX_EV 1024
#define RBUF (64 * 1024)
#define HEAD_MAX 4096
#define LINE_MAX_ 512
#define MAX_PIDS 16
#define MAX_THREADS 8
#define HIST_BUCKETS 200000   /* 10 us per bucket: up to 2 s; beyond counts in the last bucket */
#define HIST_RES_NS 10000ull

typedef struct opts {
    const char *host;
    int port;
    const char *path;
    int subs;
    int threads;
    int events;               /* the run: ids 1..events */
    int phase_at;             /* events 1..phase_at measure latency, the rest throughput and CPU; 0 = one phase */
    double connect_timeout_s, settle_s, drain_s;
    int src_first, src_last;
    int connect_batch;
    pid_t proxy_pids[MAX_PIDS];
    int nproxy;
    pid_t start_pid;          /* sent SIGUSR1 once every subscriber is in (the publisher's start) */
    const char *label;
} opts_t;

enum { P_NEW, P_CONNECTING, P_HEAD, P_BODY, P_DONE };
enum { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_TRAILER_LF, C_END };

typedef struct sub {
    int fd;
    uint8_t phase;
    uint8_t cstate;
    bool chunked;
    bool line_over;
    bool has_data;
    bool seen_line;
    uint16_t llen;
    uint16_t hlen;
    uint32_t got;             /* events of the run received */
    uint32_t last_seq;        /* last event number received; 0 = none */
    uint64_t crem;
    uint64_t ev_seq, ev_ts;
    char *head;               /* the response head while it is read; freed after */
    char line[LINE_MAX_];
} sub_t;

typedef struct shared {
    const opts_t *o;
    _Atomic int connected, failed;
    _Atomic int closed;           /* subscribers that ended after their head (the proxy closed them) */
    _Atomic bool stop;
    _Atomic uint32_t *ev_count;   /* [seq]: subscribers that got event seq */
    _Atomic uint64_t *ev_last;    /* [seq]: the latest receipt (CLOCK_MONOTONIC ns) */
    _Atomic uint64_t *ev_stamp;   /* [seq]: the origin's stamp */
} shared_t;

typedef struct worker {
    shared_t *sh;
    int id, epfd;
    sub_t *s;
    int n, next_connect, inflight;
    uint64_t deliveries, gaps, dups, bad_lines, closed_live, errors, foreign;
    uint32_t *hist;
    uint64_t lat_max;
    char *rbuf;
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
    fprintf(stderr,
            "usage: fanload --port N --events K [--host 127.0.0.1] [--path /sse] [--subs 10000] [--threads 2]\n"
            "               [--src-first 2 --src-last 250] [--connect-batch 256] [--connect-timeout S]\n"
            "               [--settle S] [--drain S] [--start-pid P] [--proxy-pids P,P,...] [--label NAME]\n"
            "               [--phase-at K1]\n"
            "  Opens --subs SSE subscriptions, waits until each has its 200 head, waits --settle, samples the\n"
            "  VmRSS of --proxy-pids (the baseline is sampled before connecting), sends SIGUSR1 to --start-pid,\n"
            "  then reads events whose data is `<seq> <CLOCK_MONOTONIC ns of the origin's write> ...` until every\n"
            "  subscriber has event K or --drain seconds after the publisher's expected end. Per event: the last\n"
            "  receipt minus the stamp (fan-out time); per subscriber: ids 1..K each once, in order.\n"
            "  With --phase-at K1, events 1..K1 give the fan-out times (fan_*) and K1+1..K the throughput figures\n"
            "  (thr_*: delivered/s, proxy CPU per million deliveries, fan-out times under that load).\n"
            "  Prints `RESULT key=value ...` as its last line; exit 0 if every subscriber got every event.\n");
}

/* --- SSE --- */

static void dispatch(worker_t *w, sub_t *s, uint64_t now)
{
    if (!s->has_data)
        return;
    s->has_data = false;
    shared_t *sh = w->sh;
    uint64_t seq = s->ev_seq;
    if (seq == 0 || seq > (uint64_t)sh->o->events) {
        w->foreign++;  /* not an event of the run (e.g. a replayed or later one) */
        return;
    }
    if (seq <= s->last_seq) {
        w->dups++;
        return;
    }
    if (seq != (uint64_t)s->last_seq + 1)
        w->gaps++;
    s->last_seq = (uint32_t)seq;
    s->got++;
    w->deliveries++;
    uint64_t lat = now > s->ev_ts ? now - s->ev_ts : 0;
    uint64_t b = lat / HIST_RES_NS;
    w->hist[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
    if (lat > w->lat_max)
        w->lat_max = lat;
    atomic_fetch_add_explicit(&sh->ev_count[seq], 1, memory_order_relaxed);
    atomic_store_explicit(&sh->ev_stamp[seq], s->ev_ts, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&sh->ev_last[seq], memory_order_relaxed);
    while (now > cur && !atomic_compare_exchange_weak_explicit(&sh->ev_last[seq], &cur, now, memory_order_relaxed,
                                                               memory_order_relaxed)) {
    }
}

static uint64_t parse_u64(const char *p, size_t n, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    *used = i;
    return v;
}

static void sse_line(worker_t *w, sub_t *s, const char *p, size_t n, uint64_t now)
{
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (n == 0) {
        dispatch(w, s, now);
        return;
    }
    if (n > 5 && memcmp(p, "data:", 5) == 0) {
        size_t off = p[5] == ' ' ? 6 : 5, u1, u2;
        uint64_t seq = parse_u64(p + off, n - off, &u1);
        if (u1 == 0 || off + u1 >= n || p[off + u1] != ' ') {
            w->bad_lines++;
            return;
        }
        uint64_t ts = parse_u64(p + off + u1 + 1, n - off - u1 - 1, &u2);
        if (u2 == 0) {
            w->bad_lines++;
            return;
        }
        s->ev_seq = seq;
        s->ev_ts = ts;
        s->has_data = true;
    }
    /* id:, retry:, event: and comments carry nothing we measure (ids differ between peers: nchan's are its own). */
}

static void sse_feed(worker_t *w, sub_t *s, const char *p, size_t n, uint64_t now)
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
static int dechunk(worker_t *w, sub_t *s, const char *p, size_t n, uint64_t now)
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

static void sub_close(worker_t *w, sub_t *s, bool error)
{
    if (s->phase == P_DONE)
        return;
    if (s->phase == P_CONNECTING || s->phase == P_HEAD) {
        w->inflight--;
        atomic_fetch_add(&w->sh->failed, 1);
    } else if (s->phase == P_BODY) {
        w->closed_live++;
        atomic_fetch_add(&w->sh->closed, 1);
    } else {
        atomic_fetch_add(&w->sh->failed, 1);
    }
    if (error)
        w->errors++;
    s->phase = P_DONE;
    if (s->fd >= 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    s->fd = -1;
    free(s->head);
    s->head = NULL;
}

static void start_connect(worker_t *w, int idx)
{
    const opts_t *o = w->sh->o;
    sub_t *s = &w->s[idx];
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->fd < 0) {
        fprintf(stderr, "fanload: socket: %s\n", strerror(errno));
        sub_close(w, s, true);
        return;
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->src_first > 0) {
        /* Sources over 127.0.0.x, the port chosen at connect() (IP_BIND_ADDRESS_NO_PORT): each its own range. */
        int span = o->src_last - o->src_first + 1, n = idx * o->threads + w->id;
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(o->src_first + n % span));
        setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            fprintf(stderr, "fanload: bind: %s\n", strerror(errno));
            sub_close(w, s, true);
            return;
        }
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    inet_pton(AF_INET, o->host, &dst.sin_addr);
    if (connect(s->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
        sub_close(w, s, true);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
        sub_close(w, s, true);
        return;
    }
    s->phase = P_CONNECTING;
    w->inflight++;
}

static void on_connected(worker_t *w, sub_t *s, int idx)
{
    const opts_t *o = w->sh->o;
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        sub_close(w, s, true);
        return;
    }
    char req[768];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "User-Agent: ssegate-fanload\r\n\r\n",
                     o->path, o->host, o->port);
    if (n <= 0 || (size_t)n >= sizeof(req) || write(s->fd, req, (size_t)n) != n) {
        sub_close(w, s, true);
        return;
    }
    s->head = malloc(HEAD_MAX);
    if (!s->head) {
        sub_close(w, s, true);
        return;
    }
    s->phase = P_HEAD;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0)
        sub_close(w, s, true);
}

static bool head_has(const char *head, size_t n, const char *name, const char *value)
{
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

/* Body bytes; false if the subscriber was closed. */
static bool body_bytes(worker_t *w, sub_t *s, const char *p, size_t n, uint64_t now)
{
    if (!s->chunked) {
        sse_feed(w, s, p, n, now);
        return true;
    }
    int r = dechunk(w, s, p, n, now);
    if (r < 0) {
        fprintf(stderr, "fanload: chunked framing error\n");
        sub_close(w, s, true);
        return false;
    }
    if (r > 0) {
        sub_close(w, s, false);
        return false;
    }
    return true;
}

/* Head bytes; returns how many of p it took, or -1 if the subscriber was closed. */
static ssize_t head_bytes(worker_t *w, sub_t *s, const char *p, size_t n)
{
    size_t room = HEAD_MAX - s->hlen, take = n < room ? n : room;
    memcpy(s->head + s->hlen, p, take);
    size_t old = s->hlen;
    s->hlen = (uint16_t)(s->hlen + take);
    char *end = memmem(s->head, s->hlen, "\r\n\r\n", 4);
    if (!end) {
        if (s->hlen == HEAD_MAX) {
            fprintf(stderr, "fanload: response head too large\n");
            sub_close(w, s, true);
            return -1;
        }
        return (ssize_t)take;
    }
    size_t hl = (size_t)(end - s->head) + 4;
    if (s->hlen < 12 || memcmp(s->head + 9, "200", 3) != 0 ||
        !head_has(s->head, hl, "Content-Type", "text/event-stream")) {
        if (atomic_load(&w->sh->failed) < 3)
            fprintf(stderr, "fanload: bad response head: %.*s\n", (int)(hl < 200 ? hl : 200), s->head);
        sub_close(w, s, true);
        return -1;
    }
    s->chunked = head_has(s->head, hl, "Transfer-Encoding", "chunked");
    free(s->head);
    s->head = NULL;
    s->phase = P_BODY;
    w->inflight--;
    atomic_fetch_add(&w->sh->connected, 1);
    return (ssize_t)(hl - old);
}

static void on_readable(worker_t *w, sub_t *s)
{
    for (int round = 0; round < 4; round++) {
        ssize_t r = read(s->fd, w->rbuf, RBUF);
        uint64_t now = now_ns();
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                sub_close(w, s, true);
            return;
        }
        if (r == 0) {
            sub_close(w, s, false);
            return;
        }
        const char *p = w->rbuf;
        size_t n = (size_t)r;
        if (s->phase == P_HEAD) {
            ssize_t used = head_bytes(w, s, p, n);
            if (used < 0)
                return;
            p += used;
            n -= (size_t)used;
        }
        if (n > 0 && s->phase == P_BODY && !body_bytes(w, s, p, n, now))
            return;
        if ((size_t)r < RBUF)
            return;
    }
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    const opts_t *o = w->sh->o;
    struct epoll_event evs[MAX_EV];
    while (!atomic_load_explicit(&w->sh->stop, memory_order_relaxed)) {
        while (w->next_connect < w->n && w->inflight < o->connect_batch)
            start_connect(w, w->next_connect++);
        int k = epoll_wait(w->epfd, evs, MAX_EV, 50);
        for (int i = 0; i < k; i++) {
            int idx = (int)evs[i].data.u64;
            sub_t *s = &w->s[idx];
            if (s->phase == P_DONE)
                continue;
            if (s->phase == P_CONNECTING) {
                on_connected(w, s, idx);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                on_readable(w, s);
        }
    }
    return NULL;
}

/* --- main --- */

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || *e || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double q_sorted(const uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return -1;
    size_t i = (size_t)(q * (double)n);
    if (i >= n)
        i = n - 1;
    return (double)v[i];
}

static double hist_q(const uint64_t *h, uint64_t total, double q)
{
    if (total == 0)
        return -1;
    uint64_t rank = (uint64_t)(q * (double)total), acc = 0;
    if (rank >= total)
        rank = total - 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        acc += h[i];
        if (acc > rank)
            return (double)(i * HIST_RES_NS) / 1000.0;
    }
    return (double)(HIST_BUCKETS * HIST_RES_NS) / 1000.0;
}

/* Figures over the events first..last: fan-out time (last receipt - stamp) of each event that every subscriber
 * still open at the end got (subscribers the proxy closed are counted apart, as `closed`). */
typedef struct phase {
    size_t n, partial;
    double p50, p99, max;     /* us; -1 when no event was complete */
    uint64_t deliveries;
    double span_s;            /* first stamp to last receipt */
} phase_t;

static phase_t phase(shared_t *sh, int first, int last, int connected)
{
    connected -= atomic_load(&sh->closed);
    phase_t p = {.p50 = -1, .p99 = -1, .max = -1};
    uint64_t *fan = calloc((size_t)(last - first + 1), sizeof(uint64_t));
    uint64_t first_stamp = 0, last_recv = 0;
    for (int e = first; e <= last; e++) {
        uint32_t c = atomic_load(&sh->ev_count[e]);
        uint64_t st = atomic_load(&sh->ev_stamp[e]), lr = atomic_load(&sh->ev_last[e]);
        if (c == 0)
            continue;
        p.deliveries += c;
        if (first_stamp == 0 || st < first_stamp)
            first_stamp = st;
        if (lr > last_recv)
            last_recv = lr;
        if (c < (uint32_t)connected)
            p.partial++;
        else if (fan)
            fan[p.n++] = lr > st ? lr - st : 0;
    }
    if (fan && p.n) {
        qsort(fan, p.n, sizeof(*fan), cmp_u64);
        p.p50 = q_sorted(fan, p.n, 0.5) / 1000.0;
        p.p99 = q_sorted(fan, p.n, 0.99) / 1000.0;
        p.max = (double)fan[p.n - 1] / 1000.0;
    }
    free(fan);
    p.span_s = last_recv > first_stamp ? (double)(last_recv - first_stamp) / 1e9 : 0;
    return p;
}

int main(int argc, char **argv)
{
    opts_t o = {.host = "127.0.0.1", .path = "/sse", .subs = 10000, .threads = 2, .events = 0,
                .connect_timeout_s = 60, .settle_s = 1, .drain_s = 10, .src_first = 2, .src_last = 250,
                .connect_batch = 256, .label = "fanload"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        double v;
        if (strcmp(a, "--host") == 0 && has) {
            o.host = argv[++i];
        } else if (strcmp(a, "--port") == 0 && has && parse_num(argv[++i], 1, 65535, &v)) {
            o.port = (int)v;
        } else if (strcmp(a, "--path") == 0 && has) {
            o.path = argv[++i];
        } else if (strcmp(a, "--subs") == 0 && has && parse_num(argv[++i], 1, 1000000, &v)) {
            o.subs = (int)v;
        } else if (strcmp(a, "--threads") == 0 && has && parse_num(argv[++i], 1, MAX_THREADS, &v)) {
            o.threads = (int)v;
        } else if (strcmp(a, "--events") == 0 && has && parse_num(argv[++i], 1, 10000000, &v)) {
            o.events = (int)v;
        } else if (strcmp(a, "--phase-at") == 0 && has && parse_num(argv[++i], 0, 10000000, &v)) {
            o.phase_at = (int)v;
        } else if (strcmp(a, "--connect-timeout") == 0 && has && parse_num(argv[++i], 0.1, 3600, &v)) {
            o.connect_timeout_s = v;
        } else if (strcmp(a, "--settle") == 0 && has && parse_num(argv[++i], 0, 3600, &v)) {
            o.settle_s = v;
        } else if (strcmp(a, "--drain") == 0 && has && parse_num(argv[++i], 0, 3600, &v)) {
            o.drain_s = v;
        } else if (strcmp(a, "--src-first") == 0 && has && parse_num(argv[++i], 0, 254, &v)) {
            o.src_first = (int)v;
        } else if (strcmp(a, "--src-last") == 0 && has && parse_num(argv[++i], 1, 254, &v)) {
            o.src_last = (int)v;
        } else if (strcmp(a, "--connect-batch") == 0 && has && parse_num(argv[++i], 1, 100000, &v)) {
            o.connect_batch = (int)v;
        } else if (strcmp(a, "--start-pid") == 0 && has && parse_num(argv[++i], 1, 1e9, &v)) {
            o.start_pid = (pid_t)v;
        } else if (strcmp(a, "--proxy-pids") == 0 && has) {
            char *list = argv[++i], *save = NULL;
            for (char *t = strtok_r(list, ",", &save); t && o.nproxy < MAX_PIDS; t = strtok_r(NULL, ",", &save))
                o.proxy_pids[o.nproxy++] = (pid_t)atoi(t);
        } else if (strcmp(a, "--label") == 0 && has) {
            o.label = argv[++i];
        } else {
            usage();
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    struct in_addr probe;
    if (o.port == 0 || o.events == 0 || o.phase_at >= o.events || inet_pton(AF_INET, o.host, &probe) != 1 ||
        (o.src_first > 0 && o.src_last < o.src_first)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    shared_t sh = {.o = &o};
    sh.ev_count = calloc((size_t)o.events + 1, sizeof(*sh.ev_count));
    sh.ev_last = calloc((size_t)o.events + 1, sizeof(*sh.ev_last));
    sh.ev_stamp = calloc((size_t)o.events + 1, sizeof(*sh.ev_stamp));
    worker_t *ws = calloc((size_t)o.threads, sizeof(*ws));
    if (!sh.ev_count || !sh.ev_last || !sh.ev_stamp || !ws) {
        fprintf(stderr, "fanload: out of memory\n");
        return 1;
    }
    long rss_base = o.nproxy ? rss_sum(o.proxy_pids, o.nproxy) : -1;
    uint64_t t0 = now_ns();
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        w->sh = &sh;
        w->id = t;
        w->n = o.subs / o.threads + (t < o.subs % o.threads);
        w->s = calloc((size_t)w->n, sizeof(sub_t));
        w->hist = calloc(HIST_BUCKETS, sizeof(uint32_t));
        w->rbuf = malloc(RBUF);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!w->s || !w->hist || !w->rbuf || w->epfd < 0) {
            fprintf(stderr, "fanload: setup failed\n");
            return 1;
        }
        for (int k = 0; k < w->n; k++)
            w->s[k].fd = -1;
        int rc = pthread_create(&w->th, NULL, worker_main, w);
        if (rc != 0) {
            fprintf(stderr, "fanload: pthread_create: %s\n", strerror(rc));
            return 1;
        }
    }

    /* Every subscriber in (or failed), within the connect timeout. */
    uint64_t deadline = t0 + (uint64_t)(o.connect_timeout_s * 1e9);
    while (atomic_load(&sh.connected) + atomic_load(&sh.failed) < o.subs && now_ns() < deadline)
        usleep(10000);
    double connect_s = (double)(now_ns() - t0) / 1e9;
    int connected = atomic_load(&sh.connected);
    fprintf(stderr, "fanload: %d of %d subscribed in %.1f s (%d failed)\n", connected, o.subs, connect_s,
            atomic_load(&sh.failed));
    usleep((useconds_t)(o.settle_s * 1e6));
    long rss_subs = o.nproxy ? rss_sum(o.proxy_pids, o.nproxy) : -1;

    long long cpu0 = o.nproxy ? cpu_sum(o.proxy_pids, o.nproxy) : -1;
    uint64_t start = now_ns();
    if (o.start_pid > 0 && kill(o.start_pid, SIGUSR1) != 0)
        fprintf(stderr, "fanload: cannot signal the publisher %d: %s\n", (int)o.start_pid, strerror(errno));
    /* Until every live subscriber has the last event, or --drain seconds after it was stamped / after a stall. */
    uint64_t last_progress = start, seen = 0, mid = 0;
    long long cpu_mid = -1;
    for (;;) {
        usleep(10000);
        uint64_t now = now_ns(), tot = 0;
        if (o.phase_at > 0 && mid == 0 && atomic_load_explicit(&sh.ev_count[o.phase_at + 1], memory_order_relaxed)) {
            mid = now;
            cpu_mid = o.nproxy ? cpu_sum(o.proxy_pids, o.nproxy) : -1;
        }
        for (int e = 1; e <= o.events; e++)
            tot += atomic_load_explicit(&sh.ev_count[e], memory_order_relaxed);
        if (tot != seen) {
            seen = tot;
            last_progress = now;
        }
        int open = connected - atomic_load(&sh.closed);
        if (atomic_load_explicit(&sh.ev_count[o.events], memory_order_relaxed) >= (uint32_t)(open > 0 ? open : 1))
            break;
        if (now - last_progress > (uint64_t)(o.drain_s * 1e9))
            break;
    }
    uint64_t end = now_ns();
    long long cpu1 = o.nproxy ? cpu_sum(o.proxy_pids, o.nproxy) : -1;
    atomic_store(&sh.stop, true);
    for (int t = 0; t < o.threads; t++)
        pthread_join(ws[t].th, NULL);

    uint64_t deliveries = 0, gaps = 0, dups = 0, bad = 0, closed = 0, errors = 0, foreign = 0, lat_max = 0;
    uint64_t *hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    int complete = 0;
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        deliveries += w->deliveries;
        gaps += w->gaps;
        dups += w->dups;
        bad += w->bad_lines;
        closed += w->closed_live;
        errors += w->errors;
        foreign += w->foreign;
        if (w->lat_max > lat_max)
            lat_max = w->lat_max;
        for (size_t i = 0; hist && i < HIST_BUCKETS; i++)
            hist[i] += w->hist[i];
        for (int k = 0; k < w->n; k++)
            if (w->s[k].got == (uint32_t)o.events && w->s[k].last_seq == (uint32_t)o.events)
                complete++;
    }
    phase_t lat = phase(&sh, 1, o.phase_at ? o.phase_at : o.events, connected);
    phase_t thr = o.phase_at ? phase(&sh, o.phase_at + 1, o.events, connected) : lat;
    double clk = (double)sysconf(_SC_CLK_TCK);
    if (!o.phase_at) {
        mid = start;
        cpu_mid = cpu0;
    }
    double cpu_s = cpu_mid >= 0 && cpu1 >= 0 && mid ? (double)(cpu1 - cpu_mid) / clk : -1;
    double win_s = mid ? (double)(end - mid) / 1e9 : 0;
    long per_sub_b = rss_base >= 0 && rss_subs >= 0 && connected > 0 ? (rss_subs - rss_base) * 1024 / connected : -1;

    printf("RESULT label=%s subs=%d connected=%d failed=%d connect_s=%.1f events=%d deliveries=%llu "
           "complete_subs=%d gaps=%llu dups=%llu foreign=%llu bad_lines=%llu closed=%llu errors=%llu "
           "fan_events=%zu fan_partial=%zu fan_p50_us=%.0f fan_p99_us=%.0f fan_max_us=%.0f "
           "lat_p50_us=%.0f lat_p99_us=%.0f lat_max_us=%.0f "
           "thr_events=%zu thr_partial=%zu thr_fan_p50_us=%.0f thr_fan_p99_us=%.0f thr_fan_max_us=%.0f "
           "rate=%.0f thr_span_s=%.2f rss_base_kib=%ld rss_kib=%ld bytes_per_sub=%ld proxy_cpu_s=%.2f "
           "proxy_cpu_pct=%.1f cpu_s_per_mev=%.2f\n",
           o.label, o.subs, connected, atomic_load(&sh.failed), connect_s, o.events, (unsigned long long)deliveries,
           complete, (unsigned long long)gaps, (unsigned long long)dups, (unsigned long long)foreign,
           (unsigned long long)bad, (unsigned long long)closed, (unsigned long long)errors, lat.n, lat.partial,
           lat.p50, lat.p99, lat.max, hist ? hist_q(hist, deliveries, 0.5) : -1,
           hist ? hist_q(hist, deliveries, 0.99) : -1, (double)lat_max / 1000.0, thr.n, thr.partial, thr.p50, thr.p99,
           thr.max, thr.span_s > 0 ? (double)thr.deliveries / thr.span_s : 0, thr.span_s, rss_base, rss_subs,
           per_sub_b, cpu_s, cpu_s >= 0 && win_s > 0 ? 100.0 * cpu_s / win_s : -1,
           cpu_s >= 0 && thr.deliveries > 0 ? cpu_s / ((double)thr.deliveries / 1e6) : -1);
    fflush(stdout);
    bool ok = connected == o.subs && complete == o.subs && gaps == 0 && dups == 0;
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        for (int k = 0; k < w->n; k++) {
            if (w->s[k].fd >= 0)
                close(w->s[k].fd);
            free(w->s[k].head);
        }
        close(w->epfd);
        free(w->s);
        free(w->hist);
        free(w->rbuf);
    }
    free(ws);
    free(hist);
    free((void *)sh.ev_count);
    free((void *)sh.ev_last);
    free((void *)sh.ev_stamp);
    return ok ? 0 : 1;
}
