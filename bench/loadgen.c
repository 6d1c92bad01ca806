/* loadgen: the benchmark's SSE client; N HTTP/1.1 streams, incremental (de)chunking + SSE parsing, gaps, latency. */
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

#define MAX_EV 512
#define RBUF (256 * 1024)      /* one read drains many events at once */
#define HEAD_MAX 4096
#define LINE_MAX_ 512
#define US_BUCKETS 100000      /* 1 us resolution up to 100 ms */
#define MS_BUCKETS 120000      /* then 1 ms resolution up to 120 s */
#define MAX_PIDS 16

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
} opts_t;

enum { P_NEW, P_CONNECTING, P_HEAD, P_BODY, P_DONE };
enum { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_TRAILER, C_TRAILER_LF, C_END };

typedef struct stream {
    int fd;
    uint8_t phase;
    uint8_t cstate;
    bool chunked;
    bool line_over;          /* the current line overflowed LINE_MAX_; it is dropped */
    bool has_id, has_ts;
    bool seen_line;          /* trailer line had content */
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
    _Atomic bool stop;
} shared_t;

typedef struct worker {
    shared_t *sh;
    int id;
    int epfd;
    stream_t *st;
    int nst;
    int next_connect;        /* next stream index to connect */
    int inflight;
    uint64_t events, warm_events, gaps, missing, errors, closed, closed_live, bad_lines;
    _Atomic uint64_t first_events; /* streams that got their first event; read by the main thread */
    uint64_t lat_max;
    uint32_t *hus, *hms, hover;
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
            "usage: loadgen --port N [--host 127.0.0.1] [--path /sse] [--streams N] [--threads N]\n"
            "               [--warmup S] [--duration S] [--connect-timeout S] [--idle] [--settle S]\n"
            "               [--src-first 2 --src-last 250 | --src-first 0] [--connect-batch N]\n"
            "               [--pace-us N] [--proxy-pids P,P,...] [--origin-pid P] [--label NAME]\n"
            "  Streaming mode: connects every stream, waits --warmup, then counts events, id gaps and the\n"
            "  latency (now - the CLOCK_MONOTONIC stamp in each event) for --duration seconds.\n"
            "  Idle mode (--idle): connects every stream, waits for its first event, waits --settle, then\n"
            "  samples the VmRSS of --proxy-pids (the baseline is sampled before connecting) and holds the\n"
            "  streams for --duration. The last stdout line is `RESULT key=value ...`.\n"
            "  --pace-us N spaces epoll rounds by N us so each read() takes many events (less client CPU, at\n"
            "  the price of up to N us added to the measured latency).\n");
}

/* --- /proc sampling of the proxy under test --- */

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

static long rss_sum(const opts_t *o)
{
    long sum = 0;
    for (int i = 0; i < o->nproxy; i++) {
        long v = rss_kib(o->proxy_pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* utime + stime of a process (all its threads), in clock ticks. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* After ")": state(3) ppid(4) ... utime(14) stime(15). */
    long long ut = 0, stt = 0;
    int field = 2;
    for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
        field++;
        if (field == 14)
            ut = atoll(tok);
        if (field == 15) {
            stt = atoll(tok);
            break;
        }
    }
    return ut + stt;
}

static long long cpu_sum(const pid_t *pids, int n)
{
    long long sum = 0;
    for (int i = 0; i < n; i++) {
        long long v = cpu_ticks(pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* --- latency histogram --- */

static void hist_add(worker_t *w, uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (ns > w->lat_max)
        w->lat_max = ns;
    if (us < US_BUCKETS)
        w->hus[us]++;
    else if (us / 1000 < MS_BUCKETS)
        w->hms[us / 1000]++;
    else
        w->hover++;
}

/* Returns the q-quantile in microseconds over the merged histograms. */
static double hist_quantile(const uint64_t *hus, const uint64_t *hms, uint64_t over, uint64_t total, double q)
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
    (void)over;
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
        uint64_t ws = atomic_load_explicit(&w->sh->win_start, memory_order_relaxed);
        uint64_t we = atomic_load_explicit(&w->sh->win_end, memory_order_relaxed);
        if (ws != 0 && now >= ws && now < we) {
            w->events++;
            hist_add(w, now > s->ev_ts ? now - s->ev_ts : 0);
        } else if (ws == 0 || now < ws) {
            w->warm_events++;
        }
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

static void stream_close(worker_t *w, stream_t *s, bool error)
{
    if (s->phase == P_DONE)
        return;
    if (s->phase == P_CONNECTING || s->phase == P_HEAD) {
        w->inflight--;
        atomic_fetch_add(&w->sh->failed, 1);
    }
    else
        w->closed_live++;
    if (error)
        w->errors++;
    w->closed++;
    s->phase = P_DONE;
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    free(s->head);
    s->head = NULL;
}

static void start_connect(worker_t *w, int idx)
{
    const opts_t *o = w->sh->o;
    stream_t *s = &w->st[idx];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
        s->phase = P_DONE;
        w->errors++;
        atomic_fetch_add(&w->sh->failed, 1);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->src_first > 0) {
        /* Spread sources over 127.0.0.x so 9,000+ streams never run out of ephemeral ports; the port is
         * chosen at connect() time (IP_BIND_ADDRESS_NO_PORT) so each source has its full port range. */
        int global = idx * o->threads + w->id;
        int span = o->src_last - o->src_first + 1;
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
        src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(o->src_first + global % span));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            fprintf(stderr, "loadgen: bind: %s\n", strerror(errno));
            close(fd);
            s->phase = P_DONE;
            w->errors++;
            atomic_fetch_add(&w->sh->failed, 1);
            return;
        }
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->host, &dst.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad host %s (IPv4 literal expected)\n", o->host);
        exit(2);
    }
    s->fd = fd;
    s->phase = P_CONNECTING;
    w->inflight++;
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
        stream_close(w, s, true);
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
        stream_close(w, s, true);
}

static void on_connected(worker_t *w, int idx)
{
    const opts_t *o = w->sh->o;
    stream_t *s = &w->st[idx];
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
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
        while (w->next_connect < w->nst && w->inflight < per_thread_batch)
            start_connect(w, w->next_connect++);
        int n = epoll_wait(w->epfd, evs, MAX_EV, 50);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: epoll_wait");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            int idx = (int)evs[i].data.u64;
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

int main(int argc, char **argv)
{
    opts_t o = {.host = "127.0.0.1", .port = 0, .path = "/sse", .streams = 1000, .threads = 1,
                .warmup_s = 3, .duration_s = 10, .connect_timeout_s = 30, .settle_s = 2,
                .src_first = 2, .src_last = 250, .connect_batch = 512, .label = "run"};
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
        else {
            usage();
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
        if (!ok) {
            fprintf(stderr, "loadgen: bad value for %s\n", a);
            return 2;
        }
    }
    if (o.port == 0 || (o.src_first > 0 && o.src_last < o.src_first)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    shared_t sh = {.o = &o};
    long base_rss = o.nproxy ? rss_sum(&o) : -1;
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
        w->st = calloc((size_t)w->nst, sizeof(*w->st));
        w->hus = calloc(US_BUCKETS, sizeof(*w->hus));
        w->hms = calloc(MS_BUCKETS, sizeof(*w->hms));
        w->rbuf = malloc(RBUF);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!w->st || !w->hus || !w->hms || !w->rbuf || w->epfd < 0) {
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
    long long cpu0 = -1, cpu1 = -1, ocpu0 = -1, ocpu1 = -1;
    double window = 0;
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
        rss = o.nproxy ? rss_sum(&o) : -1;
        printf("READY connected=%d\n", connected);
        fflush(stdout);
        sleep_s(o.duration_s);
        atomic_store(&sh.stop, true);
    } else {
        sleep_s(o.warmup_s);
        cpu0 = o.nproxy ? cpu_sum(o.proxy_pids, o.nproxy) : -1;
        ocpu0 = o.origin_pid ? cpu_ticks(o.origin_pid) : -1;
        uint64_t ws0 = now_ns();
        uint64_t we0 = ws0 + (uint64_t)(o.duration_s * 1e9);
        atomic_store(&sh.win_end, we0);
        atomic_store(&sh.win_start, ws0);
        sleep_s(o.duration_s);
        cpu1 = o.nproxy ? cpu_sum(o.proxy_pids, o.nproxy) : -1;
        ocpu1 = o.origin_pid ? cpu_ticks(o.origin_pid) : -1;
        window = (double)(we0 - ws0) / 1e9;
        sleep_s(0.3);
        atomic_store(&sh.stop, true);
    }
    for (int t = 0; t < o.threads; t++)
        pthread_join(ws[t].th, NULL);

    /* Merge per-thread figures. */
    uint64_t *hus = calloc(US_BUCKETS, sizeof(*hus));
    uint64_t *hms = calloc(MS_BUCKETS, sizeof(*hms));
    if (!hus || !hms)
        return 1;
    uint64_t events = 0, gaps = 0, missing = 0, errors = 0, bad = 0, over = 0, lmax = 0, closed = 0, closed_live = 0;
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        events += w->events;
        gaps += w->gaps;
        missing += w->missing;
        errors += w->errors;
        closed += w->closed;
        closed_live += w->closed_live;
        bad += w->bad_lines;
        over += w->hover;
        if (w->lat_max > lmax)
            lmax = w->lat_max;
        for (size_t i = 0; i < US_BUCKETS; i++)
            hus[i] += w->hus[i];
        for (size_t i = 0; i < MS_BUCKETS; i++)
            hms[i] += w->hms[i];
    }
    /* Streams still open at the end: connected minus those that closed after their head. */
    int open_streams = connected - (int)closed_live;
    long tck = sysconf(_SC_CLK_TCK);
    printf("RESULT label=%s mode=%s streams=%d connected=%d connect_s=%.2f", o.label, o.idle ? "idle" : "stream",
           o.streams, connected, connect_s);
    if (o.idle) {
        printf(" rss_base_kib=%ld rss_kib=%ld", base_rss, rss);
        if (base_rss >= 0 && rss >= 0 && connected > 0)
            printf(" kib_per_stream=%.2f", (double)(rss - base_rss) / connected);
    } else {
        printf(" window_s=%.2f events=%llu rate=%.0f", window, (unsigned long long)events,
               window > 0 ? (double)events / window : 0.0);
        printf(" p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f", hist_quantile(hus, hms, over, events, 0.50),
               hist_quantile(hus, hms, over, events, 0.99), hist_quantile(hus, hms, over, events, 0.999),
               (double)lmax / 1000.0);
        if (cpu0 >= 0 && cpu1 >= 0 && window > 0)
            printf(" proxy_cpu_pct=%.0f", (double)(cpu1 - cpu0) * 100.0 / (double)tck / window);
        if (ocpu0 >= 0 && ocpu1 >= 0 && window > 0)
            printf(" origin_cpu_pct=%.0f", (double)(ocpu1 - ocpu0) * 100.0 / (double)tck / window);
    }
    printf(" gaps=%llu missing=%llu errors=%llu closed=%llu bad_lines=%llu open=%d\n", (unsigned long long)gaps,
           (unsigned long long)missing, (unsigned long long)errors, (unsigned long long)closed,
           (unsigned long long)bad, open_streams);
    fflush(stdout);
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        for (int i = 0; i < w->nst; i++) {
            if (w->st[i].phase != P_NEW && w->st[i].phase != P_DONE)
                close(w->st[i].fd);
            free(w->st[i].head);
        }
        close(w->epfd);
        free(w->st);
        free(w->hus);
        free(w->hms);
        free(w->rbuf);
    }
    free(ws);
    free(hus);
    free(hms);
    return 0;
}
