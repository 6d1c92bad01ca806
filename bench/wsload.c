/* wsload: WebSocket load generator for bench/run.sh: opens --conns WebSockets to --port (the proxy, or the echo
 * origin directly) and sends binary messages of --size bytes that carry their send time; the echo gives the round
 * trip. Closed loop (default): each connection keeps --window messages in flight, so the figure is the
 * messages/s the path sustains. --rate R: R messages/s in total, spread over the connections, for latency at a
 * fixed load. Prints one RESULT line: rate (echoes/s in the window), p50/p99/p99.9/max round trip, and the CPU
 * of the proxy, the origin and itself over the window. --trace FILE: also writes every message echoed in the window,
 * one line each: its send time (us since the window's start), round trip (us) and connection number, for
 * finding where a tail comes from (clustered in time: a stall; spread: queueing). */
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

#define US_BUCKETS 100000   /* 1 us buckets up to 100 ms */
#define MS_BUCKETS 10000    /* then 1 ms buckets up to 10 s */
#define IN_CAP (64 * 1024)

typedef struct opts {
    int port, conns, size, window, threads;
    double warmup, duration, rate;
    const char *path, *label, *trace;
    pid_t origin_pid;
    pid_t proxy_pids[16];
    int nproxy;
} opts_t;

typedef struct trace_ent {
    uint64_t sent_ns;
    uint32_t rtt_ns;
    uint32_t conn;
} trace_ent_t;

typedef struct meas {
    uint64_t n, max_ns, over;
    uint32_t *hus, *hms;
    trace_ent_t *tr;        /* --trace: every message of the window, up to tr_cap */
    size_t tr_n, tr_cap;
} meas_t;

typedef struct lconn {
    int fd;
    int state;              /* 0 connecting, 1 handshake sent, 2 open, 3 dead */
    int inflight;
    size_t in_len;
    uint8_t in[IN_CAP];
    uint8_t *out;
    size_t out_len, out_off, out_cap;
} lconn_t;

typedef struct worker {
    const opts_t *o;
    int first, n;           /* its connections */
    lconn_t *c;
    int ep;
    meas_t m;
    int open, errors;
    uint64_t sent;
    pthread_t th;
} worker_t;

static _Atomic uint64_t g_start, g_end;   /* the measurement window, CLOCK_MONOTONIC ns */
static _Atomic bool g_stop;
static uint64_t g_t0;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long long cpu_proxy(const opts_t *o)
{
    return o->nproxy ? cpu_sum(o->proxy_pids, o->nproxy) : -1;
}

static void hist_add(meas_t *m, uint64_t ns)
{
    uint64_t us = ns / 1000;
    m->n++;
    if (ns > m->max_ns)
        m->max_ns = ns;
    if (us < US_BUCKETS)
        m->hus[us]++;
    else if (us / 1000 < MS_BUCKETS)
        m->hms[us / 1000]++;
    else
        m->over++;
}

static double quantile(const meas_t *m, double q)
{
    if (m->n == 0)
        return -1;
    uint64_t want = (uint64_t)(q * (double)m->n), acc = 0;
    if (want >= m->n)
        want = m->n - 1;
    for (uint64_t i = 0; i < US_BUCKETS; i++) {
        acc += m->hus[i];
        if (acc > want)
            return (double)i;
    }
    for (uint64_t i = 0; i < MS_BUCKETS; i++) {
        acc += m->hms[i];
        if (acc > want)
            return (double)i * 1000.0;
    }
    return (double)m->max_ns / 1000.0;
}

static int out_put(lconn_t *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap * 2 : 4096;
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

static void kill_conn(worker_t *w, lconn_t *c)
{
    if (c->state == 3)
        return;
    if (c->state == 2)
        w->open--;
    if (atomic_load(&g_end) == 0 || now_ns() < atomic_load(&g_end))
        w->errors++;
    c->state = 3;
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
}

static void flush(worker_t *w, lconn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno != EAGAIN)
                kill_conn(w, c);
            else {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
}

/* Queues one masked binary message carrying the send time. */
static int send_msg(worker_t *w, lconn_t *c)
{
    const opts_t *o = w->o;
    uint8_t buf[16 + 65536];
    size_t h = 0;
    buf[h++] = 0x82;
    if (o->size < 126) {
        buf[h++] = (uint8_t)(0x80 | o->size);
    } else {
        buf[h++] = 0x80 | 126;
        buf[h++] = (uint8_t)(o->size >> 8);
        buf[h++] = (uint8_t)o->size;
    }
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(buf + h, mask, 4);
    h += 4;
    uint64_t t = now_ns();
    memset(buf + h, 'w', (size_t)o->size);
    memcpy(buf + h, &t, 8);
    for (int i = 0; i < o->size; i++)
        buf[h + (size_t)i] ^= mask[i & 3];
    c->inflight++;
    w->sent++;
    return out_put(c, buf, h + (size_t)o->size);
}

static void on_open(worker_t *w, lconn_t *c)
{
    c->state = 2;
    w->open++;
    if (w->o->rate <= 0)
        for (int i = 0; i < w->o->window; i++)
            send_msg(w, c);
}

/* Parses echoes; each one records its round trip and, in the closed loop, sends the next message. */
static void on_frames(worker_t *w, lconn_t *c)
{
    size_t o = 0;
    uint64_t now = now_ns(), s = atomic_load(&g_start), e = atomic_load(&g_end);
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
            kill_conn(w, c);
            return;
        }
        if (c->in_len - o < hl + len)
            break;
        if ((h[0] & 0x0f) == 2 && len >= 8) {
            uint64_t t;
            memcpy(&t, h + hl, 8);
            c->inflight--;
            if (s && now >= s && (e == 0 || now < e)) {
                hist_add(&w->m, now - t);
                if (w->m.tr_n < w->m.tr_cap)
                    w->m.tr[w->m.tr_n++] = (trace_ent_t){t, (uint32_t)(now - t > UINT32_MAX ? UINT32_MAX : now - t),
                                                         (uint32_t)(w->first + (c - w->c))};
            }
            if (w->o->rate <= 0 && !atomic_load(&g_stop))
                send_msg(w, c);
        }
        o += hl + (size_t)len;
    }
    memmove(c->in, c->in + o, c->in_len - o);
    c->in_len -= o;
}

static void on_readable(worker_t *w, lconn_t *c)
{
    for (int round = 0; round < 4; round++) {
        ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (n < 0) {
            if (errno != EAGAIN)
                kill_conn(w, c);
            return;
        }
        if (n == 0) {
            kill_conn(w, c);
            return;
        }
        c->in_len += (size_t)n;
        if (c->state == 1) {
            uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (end == NULL)
                continue;
            if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) {
                kill_conn(w, c);
                return;
            }
            size_t hl = (size_t)(end - c->in) + 4;
            memmove(c->in, c->in + hl, c->in_len - hl);
            c->in_len -= hl;
            on_open(w, c);
        }
        if (c->state == 2)
            on_frames(w, c);
        if (c->state == 3 || (size_t)n < IN_CAP / 2)
            return;
    }
}

static void *run(void *arg)
{
    worker_t *w = arg;
    const opts_t *o = w->o;
    w->ep = epoll_create1(0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port), .sin_addr.s_addr = htonl(0x7f000001)};
    char req[512];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: bench.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", o->path);
    for (int i = 0; i < w->n; i++) {
        lconn_t *c = &w->c[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
            close(c->fd);
            c->state = 3;
            w->errors++;
            continue;
        }
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    struct epoll_event evs[512];
    lconn_t *dirty[512];
    double per_thread = o->rate / o->threads;
    uint64_t rate_t0 = 0, rate_sent = 0;
    int rr = 0;
    while (!atomic_load(&g_stop)) {
        int n = epoll_wait(w->ep, evs, 512, o->rate > 0 ? 1 : 100);
        int nd = 0;
        for (int i = 0; i < n; i++) {
            lconn_t *c = evs[i].data.ptr;
            if (c->state == 3)
                continue;
            if (c->state == 0) {
                int err = 0;
                socklen_t sl = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
                if (err) {
                    kill_conn(w, c);
                    continue;
                }
                c->state = 1;
                out_put(c, req, (size_t)rl);
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
                dirty[nd++] = c;
                continue;
            }
            if (evs[i].events & EPOLLOUT) {
                flush(w, c);
                if (c->state == 3)
                    continue;
                if (c->out_len == 0) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(w, c);
            if (c->state != 3 && c->out_len > c->out_off)
                dirty[nd++] = c;
        }
        for (int i = 0; i < nd; i++)
            if (dirty[i]->state != 3 && dirty[i]->out_len > dirty[i]->out_off)
                flush(w, dirty[i]);
        if (per_thread > 0 && w->open > 0) {
            uint64_t now = now_ns();
            if (rate_t0 == 0)
                rate_t0 = now;
            uint64_t due = (uint64_t)((double)(now - rate_t0) * per_thread / 1e9);
            int budget = 4096;
            while (rate_sent < due && budget-- > 0) {
                for (int k = 0; k < w->n; k++) {
                    lconn_t *c = &w->c[rr];
                    rr = (rr + 1) % w->n;
                    if (c->state == 2) {
                        send_msg(w, c);
                        flush(w, c);
                        break;
                    }
                }
                rate_sent++;
            }
        }
    }
    return NULL;
}

static void sleep_until(uint64_t t)
{
    for (;;) {
        uint64_t now = now_ns();
        if (now >= t)
            return;
        uint64_t d = t - now;
        struct timespec ts = {(time_t)(d / 1000000000ull), (long)(d % 1000000000ull)};
        nanosleep(&ts, NULL);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: wsload --port P [--path /ws] [--conns N] [--size B] [--window W | --rate R] [--warmup S]\n"
                    "              [--duration S] [--threads T] [--label L] [--origin-pid PID] [--proxy-pids A,B]\n"
                    "              [--trace FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    opts_t o = {.conns = 1000, .size = 128, .window = 1, .threads = 1, .warmup = 3, .duration = 10, .path = "/ws",
                .label = "ws"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        i++;
        if (!strcmp(a, "--port")) o.port = atoi(v);
        else if (!strcmp(a, "--path")) o.path = v;
        else if (!strcmp(a, "--conns")) o.conns = atoi(v);
        else if (!strcmp(a, "--size")) o.size = atoi(v);
        else if (!strcmp(a, "--window")) o.window = atoi(v);
        else if (!strcmp(a, "--rate")) o.rate = atof(v);
        else if (!strcmp(a, "--warmup")) o.warmup = atof(v);
        else if (!strcmp(a, "--duration")) o.duration = atof(v);
        else if (!strcmp(a, "--threads")) o.threads = atoi(v);
        else if (!strcmp(a, "--label")) o.label = v;
        else if (!strcmp(a, "--trace")) o.trace = v;
        else if (!strcmp(a, "--origin-pid")) o.origin_pid = (pid_t)atoi(v);
        else if (!strcmp(a, "--proxy-pids")) {
            char *s = strdup(v), *save = NULL;
            for (char *t = strtok_r(s, ",", &save); t && o.nproxy < 16; t = strtok_r(NULL, ",", &save))
                o.proxy_pids[o.nproxy++] = (pid_t)atoi(t);
            free(s);
        } else
            usage();
    }
    if (o.port <= 0 || o.conns < 1 || o.size < 16 || o.size > 65535 || o.window < 1 || o.threads < 1 ||
        o.threads > 16 || o.duration <= 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    worker_t ws[16];
    memset(ws, 0, sizeof(ws));
    int per = o.conns / o.threads, first = 0;
    for (int t = 0; t < o.threads; t++) {
        worker_t *w = &ws[t];
        w->o = &o;
        w->first = first;
        w->n = per + (t < o.conns % o.threads ? 1 : 0);
        first += w->n;
        w->c = calloc((size_t)w->n, sizeof(lconn_t));
        w->m.hus = calloc(US_BUCKETS, sizeof(uint32_t));
        w->m.hms = calloc(MS_BUCKETS, sizeof(uint32_t));
        if (w->c == NULL || w->m.hus == NULL || w->m.hms == NULL)
            return 1;
        if (o.trace) {
            /* the messages one thread can echo in the window at twice the asked rate (or 200,000/s closed) */
            double r = o.rate > 0 ? o.rate * 2 / o.threads : 200000.0;
            w->m.tr_cap = (size_t)(r * o.duration) + 1024;
            w->m.tr = malloc(w->m.tr_cap * sizeof(trace_ent_t));
            if (w->m.tr == NULL)
                return 1;
        }
    }
    g_t0 = now_ns();
    for (int t = 0; t < o.threads; t++)
        pthread_create(&ws[t].th, NULL, run, &ws[t]);
    /* Connect phase: until every connection is open (or 15 s), then the warm-up and the window. */
    uint64_t deadline = now_ns() + 15000000000ull;
    for (;;) {
        int open = 0, dead = 0;
        for (int t = 0; t < o.threads; t++) {
            open += ws[t].open;
            dead += ws[t].errors;
        }
        if (open + dead >= o.conns || now_ns() > deadline)
            break;
        usleep(10000);
    }
    uint64_t s = now_ns() + (uint64_t)(o.warmup * 1e9);
    sleep_until(s);
    long long p0 = cpu_proxy(&o), g0 = o.origin_pid ? cpu_ticks(o.origin_pid) : -1, c0 = cpu_ticks(getpid());
    long long i0 = machine_idle();
    atomic_store(&g_start, s);
    uint64_t e = s + (uint64_t)(o.duration * 1e9);
    atomic_store(&g_end, e);
    sleep_until(e);
    long long p1 = cpu_proxy(&o), g1 = o.origin_pid ? cpu_ticks(o.origin_pid) : -1, c1 = cpu_ticks(getpid());
    long long i1 = machine_idle();
    int open = 0, errors = 0;
    for (int t = 0; t < o.threads; t++) {
        open += ws[t].open;
        errors += ws[t].errors;
    }
    atomic_store(&g_stop, true);
    for (int t = 0; t < o.threads; t++)
        pthread_join(ws[t].th, NULL);
    meas_t m = {0};
    m.hus = calloc(US_BUCKETS, sizeof(uint32_t));
    m.hms = calloc(MS_BUCKETS, sizeof(uint32_t));
    for (int t = 0; t < o.threads; t++) {
        m.n += ws[t].m.n;
        m.over += ws[t].m.over;
        if (ws[t].m.max_ns > m.max_ns)
            m.max_ns = ws[t].m.max_ns;
        for (int i = 0; i < US_BUCKETS; i++)
            m.hus[i] += ws[t].m.hus[i];
        for (int i = 0; i < MS_BUCKETS; i++)
            m.hms[i] += ws[t].m.hms[i];
    }
    double tick = (double)sysconf(_SC_CLK_TCK);
    printf("RESULT label=%s conns=%d connected=%d rate=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f errors=%d",
           o.label, o.conns, open, (double)m.n / o.duration, quantile(&m, 0.5), quantile(&m, 0.99),
           quantile(&m, 0.999), (double)m.max_ns / 1000.0, errors);
    if (p0 >= 0 && p1 >= 0)
        printf(" proxy_cpu_pct=%.0f", (double)(p1 - p0) * 100.0 / tick / o.duration);
    if (g0 >= 0 && g1 >= 0)
        printf(" origin_cpu_pct=%.0f", (double)(g1 - g0) * 100.0 / tick / o.duration);
    printf(" client_cpu_pct=%.0f", (double)(c1 - c0) * 100.0 / tick / o.duration);
    if (i0 >= 0 && i1 >= 0)
        printf(" machine_cpu_pct=%.0f",
               ((double)sysconf(_SC_NPROCESSORS_ONLN) * o.duration - (double)(i1 - i0) / tick) * 100.0 / o.duration);
    if (p0 >= 0 && p1 >= 0 && m.n > 0)
        printf(" proxy_us_per_msg=%.1f", (double)(p1 - p0) / tick * 1e6 / (double)m.n);
    printf("\n");
    fflush(stdout); /* before a leak checker's exit handler can end the process */
    if (o.trace) {
        FILE *f = fopen(o.trace, "w");
        size_t lost = 0;
        if (f == NULL) {
            perror(o.trace);
        } else {
            fprintf(f, "# sent_us rtt_us conn (sent: since the window's start, CLOCK_MONOTONIC %llu ns)\n",
                    (unsigned long long)s);
            for (int t = 0; t < o.threads; t++) {
                for (size_t i = 0; i < ws[t].m.tr_n; i++) {
                    const trace_ent_t *x = &ws[t].m.tr[i];
                    fprintf(f, "%.1f %.1f %u\n", ((double)x->sent_ns - (double)s) / 1e3, x->rtt_ns / 1e3, x->conn);
                }
                lost += ws[t].m.n - ws[t].m.tr_n;
            }
            if (lost)
                fprintf(f, "# %zu messages not traced (the trace was full)\n", lost);
            fclose(f);
        }
    }
    for (int t = 0; t < o.threads; t++) {
        for (int i = 0; i < ws[t].n; i++)
            free(ws[t].c[i].out);
        free(ws[t].c);
        free(ws[t].m.hus);
        free(ws[t].m.hms);
        free(ws[t].m.tr);
    }
    free(m.hus);
    free(m.hms);
    return 0;
}
