/* fanorigin: the fan-out benchmark's event source; one broadcast SSE stream served to every GET (each event framed
 * once, its origin stamp in the data), or GRIP hold answers for Pushpin, and a publisher to Pushpin or nchan. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EV 256
#define EVENT_MAX 8192
#define HEAD_MAX 8192u
#define PEND_MAX (1024 * 1024)   /* a stream that falls this far behind is closed */

enum { PUB_NONE, PUB_PUSHPIN, PUB_NCHAN };

typedef struct opts {
    int port;                 /* serve SSE (or GRIP answers) here; 0 = no server */
    int events;               /* publish ids 1..events, then stay quiet */
    double rate;              /* events per second */
    int then_events;          /* after --events, this many more ... */
    double then_rate;         /* ... at this rate (the benchmark's throughput phase) */
    int size;                 /* bytes of the data line's value, about */
    const char *grip;         /* answer every GET with a GRIP stream hold on this channel */
    int pub;                  /* PUB_*: publish each event to Pushpin's or nchan's HTTP publish endpoint */
    int pub_port;
    const char *pub_path;
    const char *stats;        /* written after every event and at exit: accepted, requests, live, max_live */
    bool start_now;           /* otherwise the first event waits for SIGUSR1 */
} opts_t;

typedef struct stream {
    int fd;
    bool live, dead, want_out;
    uint16_t hlen;
    char *head;               /* the request head while it is read */
    char *pend;               /* bytes a short write left behind */
    size_t plen, poff, pcap;
    struct stream *next_dead;
    struct stream *prev, *next;  /* every stream not yet closed (freed at exit) */
    int pos;                  /* index in the live array, -1 if not live */
} stream_t;

typedef struct origin {
    const opts_t *o;
    int epfd, lfd, tfd, sfd, pubfd;
    stream_t **live;
    size_t nlive, caplive;
    stream_t *dead;
    stream_t *all;            /* streams not yet closed */
    uint64_t *stamps;         /* [seq]: the stamp of each event published so far */
    int seq;
    bool started;
    uint64_t accepted, requests, max_live, pub_errors, stalled;
} origin_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fanorigin --events K --rate R [--port N] [--size B] [--grip CHANNEL]\n"
            "                 [--publish pushpin|nchan --publish-port P --publish-path PATH]\n"
            "                 [--stats FILE] [--start-now] [--then-events K2 --then-rate R2]\n"
            "  --port: every GET gets one shared SSE stream (chunked): `id: <seq>\\ndata: <seq> <ns> xx..\\n\\n`,\n"
            "  each event formatted once and written to every stream; Last-Event-ID: n replays n+1.. first.\n"
            "  With --grip, every GET is answered with a Pushpin GRIP stream hold on CHANNEL instead.\n"
            "  --publish: each event is POSTed to 127.0.0.1:P PATH (Pushpin's JSON publish API, or nchan's\n"
            "  publisher location with the data as body). <ns> is CLOCK_MONOTONIC just before the write (or the\n"
            "  POST). Events start on SIGUSR1 (or at once with --start-now), K of them at R per second, then K2 more\n"
            "  at R2 per second.\n");
}

static void write_stats(origin_t *g)
{
    if (!g->o->stats)
        return;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", g->o->stats);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "accepted=%llu requests=%llu live=%zu max_live=%llu published=%d pub_errors=%llu stalled=%llu\n",
            (unsigned long long)g->accepted, (unsigned long long)g->requests, g->nlive,
            (unsigned long long)g->max_live, g->seq, (unsigned long long)g->pub_errors,
            (unsigned long long)g->stalled);
    fclose(f);
    rename(tmp, g->o->stats);
}

/* The data line's value: "<seq> <stamp> xxx..." (length about --size). */
static size_t format_data(const opts_t *o, int seq, uint64_t stamp, char *buf)
{
    int n = snprintf(buf, EVENT_MAX, "%d %llu ", seq, (unsigned long long)stamp);
    size_t len = (size_t)n;
    while (len < (size_t)o->size && len < EVENT_MAX - 64)
        buf[len++] = 'x';
    buf[len] = '\0';
    return len;
}

/* One SSE event as an HTTP/1.1 chunk. */
static size_t format_chunk(const opts_t *o, int seq, uint64_t stamp, char *out)
{
    char data[EVENT_MAX], ev[EVENT_MAX + 64];
    format_data(o, seq, stamp, data);
    int el = snprintf(ev, sizeof(ev), "id: %d\ndata: %s\n\n", seq, data);
    int n = snprintf(out, EVENT_MAX + 96, "%x\r\n%s\r\n", el, ev);
    return (size_t)n;
}

static void live_remove(origin_t *g, stream_t *s)
{
    if (s->pos < 0)
        return;
    size_t i = (size_t)s->pos;
    g->live[i] = g->live[--g->nlive];
    g->live[i]->pos = (int)i;
    s->pos = -1;
}

static void kill_stream(origin_t *g, stream_t *s)
{
    if (s->dead)
        return;
    s->dead = true;
    live_remove(g, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        g->all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    epoll_ctl(g->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->next_dead = g->dead;
    g->dead = s;
}

static void set_out(origin_t *g, stream_t *s, bool want)
{
    if (s->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u), .data.ptr = s};
    if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, s->fd, &ev) != 0) {
        kill_stream(g, s);
        return;
    }
    s->want_out = want;
}

static void flush_pend(origin_t *g, stream_t *s)
{
    while (s->poff < s->plen) {
        ssize_t r = write(s->fd, s->pend + s->poff, s->plen - s->poff);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_stream(g, s);
            return;
        }
        s->poff += (size_t)r;
    }
    s->poff = s->plen = 0;
    set_out(g, s, false);
}

/* Writes p to s, behind what is pending; keeps what the socket does not take (bounded). */
static void send_bytes(origin_t *g, stream_t *s, const char *p, size_t n)
{
    if (s->plen == s->poff) {
        ssize_t r = write(s->fd, p, n);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                kill_stream(g, s);
                return;
            }
            r = 0;
        }
        p += r;
        n -= (size_t)r;
        if (n == 0)
            return;
        s->plen = s->poff = 0;
    }
    if (s->plen + n > PEND_MAX) {
        g->stalled++;
        kill_stream(g, s);
        return;
    }
    if (s->plen + n > s->pcap) {
        size_t cap = s->pcap ? s->pcap : 4096;
        while (cap < s->plen + n)
            cap *= 2;
        char *np = realloc(s->pend, cap);
        if (!np) {
            kill_stream(g, s);
            return;
        }
        s->pend = np;
        s->pcap = cap;
    }
    memcpy(s->pend + s->plen, p, n);
    s->plen += n;
    set_out(g, s, true);
}

static long header_num(const char *head, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 1 < n; i++) {
        if ((i == 0 || head[i - 1] == '\n') && strncasecmp(head + i, name, nl) == 0 && head[i + nl] == ':')
            return strtol(head + i + nl + 1, NULL, 10);
    }
    return -1;
}

/* A complete request head: answer it (GRIP hold), or start the shared stream with any replay. */
static void on_request(origin_t *g, stream_t *s, size_t hl)
{
    const opts_t *o = g->o;
    g->requests++;
    if (o->grip) {
        char resp[512];
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                         "Grip-Hold: stream\r\nGrip-Channel: %s\r\nContent-Length: 0\r\n\r\n",
                         o->grip);
        send_bytes(g, s, resp, (size_t)n);
        return;
    }
    long lei = header_num(s->head, hl, "Last-Event-ID");
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    send_bytes(g, s, head, sizeof(head) - 1);
    char buf[EVENT_MAX + 96];
    for (long id = lei + 1; lei >= 0 && id <= g->seq && !s->dead; id++)
        send_bytes(g, s, buf, format_chunk(o, (int)id, g->stamps[id], buf));
    if (s->dead)
        return;
    if (g->nlive == g->caplive) {
        size_t cap = g->caplive ? g->caplive * 2 : 1024;
        stream_t **nl = realloc(g->live, cap * sizeof(*nl));
        if (!nl) {
            kill_stream(g, s);
            return;
        }
        g->live = nl;
        g->caplive = cap;
    }
    s->live = true;
    s->pos = (int)g->nlive;
    g->live[g->nlive++] = s;
    if (g->nlive > g->max_live)
        g->max_live = g->nlive;
    free(s->head);
    s->head = NULL;
}

static void on_read(origin_t *g, stream_t *s)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                kill_stream(g, s);
            return;
        }
        if (n == 0) {
            kill_stream(g, s);
            return;
        }
        if (s->live)
            continue;  /* nothing more is expected on a stream; read to notice the close */
        size_t off = 0;
        while (off < (size_t)n && !s->dead && !s->live) {
            if (!s->head && !(s->head = malloc(HEAD_MAX))) {
                kill_stream(g, s);
                return;
            }
            size_t room = HEAD_MAX - s->hlen, take = (size_t)n - off < room ? (size_t)n - off : room;
            memcpy(s->head + s->hlen, buf + off, take);
            size_t old = s->hlen;
            s->hlen = (uint16_t)(s->hlen + take);
            char *end = memmem(s->head, s->hlen, "\r\n\r\n", 4);
            if (!end) {
                if (s->hlen == HEAD_MAX)
                    kill_stream(g, s);
                break;
            }
            size_t hl = (size_t)(end - s->head) + 4;
            on_request(g, s, hl);
            off += hl - old;  /* a GRIP answer keeps the connection for the next request */
            if (!s->dead && !s->live)
                s->hlen = 0;
        }
    }
}

static void on_accept(origin_t *g)
{
    for (;;) {
        int fd = accept4(g->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "fanorigin: accept: %s\n", strerror(errno));
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
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
        if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(s);
            continue;
        }
        g->accepted++;
        s->next = g->all;
        if (g->all)
            g->all->prev = s;
        g->all = s;
    }
}

/* --- publisher (blocking) --- */

static int pub_connect(const opts_t *o)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->pub_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response; returns its status, or -1 if the connection failed. */
static int pub_response(int fd)
{
    char buf[8192];
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len == sizeof(buf))
            return -1;
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        end = memmem(buf, len, "\r\n\r\n", 4);
    }
    size_t hl = (size_t)(end - buf) + 4;
    int status = len > 12 ? atoi(buf + 9) : -1;
    long cl = header_num(buf, hl, "Content-Length");
    if (cl >= 0) {
        size_t have = len - hl;
        while (have < (size_t)cl) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0)
                return -1;
            have += (size_t)r;
        }
        return status;
    }
    /* chunked (or no body on a 204): read until the last chunk */
    if (status == 204 || status == 304)
        return status;
    memmove(buf, buf + hl, len - hl);
    len -= hl;
    while (!memmem(buf, len, "0\r\n\r\n", 5)) {
        if (len > 16) {
            memmove(buf, buf + len - 16, 16);
            len = 16;
        }
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
    }
    return status;
}

static void publish(origin_t *g, int seq)
{
    const opts_t *o = g->o;
    char data[EVENT_MAX], body[3 * EVENT_MAX], req[4 * EVENT_MAX];
    /* A connection per event, made before the stamp: Pushpin's publish endpoint closes after each answer. */
    if ((g->pubfd = pub_connect(o)) < 0) {
        g->pub_errors++;
        return;
    }
    uint64_t stamp = now_ns();
    g->stamps[seq] = stamp;
    format_data(o, seq, stamp, data);
    int bl;
    const char *ctype;
    if (o->pub == PUB_PUSHPIN) {
        bl = snprintf(body, sizeof(body),
                      "{\"items\":[{\"channel\":\"%s\",\"id\":\"%d\",\"formats\":{\"http-stream\":"
                      "{\"content\":\"id: %d\\ndata: %s\\n\\n\"}}}]}",
                      o->grip ? o->grip : "fan", seq, seq, data);
        ctype = "application/json";
    } else {
        bl = snprintf(body, sizeof(body), "%s", data);
        ctype = "text/plain";
    }
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                     "Connection: close\r\n\r\n%s",
                     o->pub_path, o->pub_port, ctype, bl, body);
    if (write(g->pubfd, req, (size_t)n) != n) {
        g->pub_errors++;
        close(g->pubfd);
        g->pubfd = -1;
        return;
    }
    int st = pub_response(g->pubfd);
    if (st < 200 || st > 299) {
        if (g->pub_errors < 3)
            fprintf(stderr, "fanorigin: publish of event %d answered %d\n", seq, st);
        g->pub_errors++;
    }
    close(g->pubfd);
    g->pubfd = -1;
}

static void arm(origin_t *g, double rate)
{
    long ns = (long)(1e9 / rate);
    struct itimerspec its = {.it_interval = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000},
                             .it_value = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000}};
    if (timerfd_settime(g->tfd, 0, &its, NULL) != 0)
        perror("fanorigin: timerfd_settime");
}

static void on_tick(origin_t *g)
{
    uint64_t exp;
    if (read(g->tfd, &exp, sizeof(exp)) != (ssize_t)sizeof(exp))
        return;
    int total = g->o->events + g->o->then_events;
    if (g->seq >= total)
        return;
    int seq = ++g->seq;
    if (g->o->pub != PUB_NONE) {
        publish(g, seq);
    } else {
        char buf[EVENT_MAX + 96];
        uint64_t stamp = now_ns();
        g->stamps[seq] = stamp;
        size_t n = format_chunk(g->o, seq, stamp, buf);
        for (size_t i = g->nlive; i-- > 0;)
            send_bytes(g, g->live[i], buf, n);
    }
    write_stats(g);
    if (g->seq == g->o->events && g->o->then_events > 0) {
        arm(g, g->o->then_rate);
    } else if (g->seq == total) {
        struct itimerspec off = {0};
        timerfd_settime(g->tfd, 0, &off, NULL);
        fprintf(stderr, "fanorigin: %d events published\n", g->seq);
    }
}

static void start_ticks(origin_t *g)
{
    if (g->started)
        return;
    g->started = true;
    arm(g, g->o->rate);
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4096) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* Frees the streams closed in this round (an event later in the same epoll batch may still name one). */
static void reap(origin_t *g)
{
    while (g->dead) {
        stream_t *s = g->dead;
        g->dead = s->next_dead;
        free(s->head);
        free(s->pend);
        free(s);
    }
}

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

int main(int argc, char **argv)
{
    opts_t o = {.rate = 10, .size = 100, .pub_path = "/publish/"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        double v;
        if (strcmp(a, "--port") == 0 && has && parse_num(argv[++i], 1, 65535, &v)) {
            o.port = (int)v;
        } else if (strcmp(a, "--events") == 0 && has && parse_num(argv[++i], 1, 10000000, &v)) {
            o.events = (int)v;
        } else if (strcmp(a, "--rate") == 0 && has && parse_num(argv[++i], 0.01, 100000, &v)) {
            o.rate = v;
        } else if (strcmp(a, "--then-events") == 0 && has && parse_num(argv[++i], 0, 10000000, &v)) {
            o.then_events = (int)v;
        } else if (strcmp(a, "--then-rate") == 0 && has && parse_num(argv[++i], 0.01, 100000, &v)) {
            o.then_rate = v;
        } else if (strcmp(a, "--size") == 0 && has && parse_num(argv[++i], 20, EVENT_MAX - 128, &v)) {
            o.size = (int)v;
        } else if (strcmp(a, "--grip") == 0 && has) {
            o.grip = argv[++i];
        } else if (strcmp(a, "--publish") == 0 && has) {
            const char *k = argv[++i];
            o.pub = strcmp(k, "pushpin") == 0 ? PUB_PUSHPIN : strcmp(k, "nchan") == 0 ? PUB_NCHAN : -1;
        } else if (strcmp(a, "--publish-port") == 0 && has && parse_num(argv[++i], 1, 65535, &v)) {
            o.pub_port = (int)v;
        } else if (strcmp(a, "--publish-path") == 0 && has) {
            o.pub_path = argv[++i];
        } else if (strcmp(a, "--stats") == 0 && has) {
            o.stats = argv[++i];
        } else if (strcmp(a, "--start-now") == 0) {
            o.start_now = true;
        } else {
            usage();
            return strcmp(a, "--help") == 0 ? 0 : 2;
        }
    }
    if (o.events == 0 || o.pub < 0 || (o.pub != PUB_NONE && o.pub_port == 0) || (o.port == 0 && o.pub == PUB_NONE)) {
        usage();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    origin_t g = {.o = &o, .lfd = -1, .pubfd = -1};
    if (o.then_rate <= 0)
        o.then_rate = o.rate;
    g.stamps = calloc((size_t)(o.events + o.then_events) + 1, sizeof(uint64_t));
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    g.epfd = epoll_create1(EPOLL_CLOEXEC);
    g.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    g.sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &g.tfd};
    struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &g.sfd};
    if (!g.stamps || g.epfd < 0 || g.tfd < 0 || g.sfd < 0 || epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.tfd, &tev) != 0 ||
        epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.sfd, &sev) != 0) {
        perror("fanorigin: setup");
        return 1;
    }
    if (o.port) {
        g.lfd = listen_on(o.port);
        struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &g.lfd};
        if (g.lfd < 0 || epoll_ctl(g.epfd, EPOLL_CTL_ADD, g.lfd, &lev) != 0) {
            fprintf(stderr, "fanorigin: cannot listen on 127.0.0.1:%d: %s\n", o.port, strerror(g.lfd < 0 ? -g.lfd : errno));
            return 1;
        }
    }
    write_stats(&g);
    fprintf(stderr, "fanorigin: %s%s, %d events at %.1f/s%s\n", o.port ? "serving" : "publishing only",
            o.grip ? " (GRIP)" : "", o.events, o.rate, o.start_now ? "" : " after SIGUSR1");
    if (o.start_now)
        start_ticks(&g);
    struct epoll_event evs[MAX_EV];
    for (;;) {
        int n = epoll_wait(g.epfd, evs, MAX_EV, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("fanorigin: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &g.lfd) {
                on_accept(&g);
            } else if (p == &g.tfd) {
                on_tick(&g);
            } else if (p == &g.sfd) {
                struct signalfd_siginfo si;
                while (read(g.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    if (si.ssi_signo == SIGUSR1) {
                        start_ticks(&g);
                    } else {
                        write_stats(&g);
                        while (g.all)
                            kill_stream(&g, g.all);
                        reap(&g);
                        free(g.live);
                        free(g.stamps);
                        return 0;
                    }
                }
            } else {
                stream_t *s = p;
                if (s->dead)
                    continue;
                if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                    kill_stream(&g, s);
                    continue;
                }
                if (evs[i].events & EPOLLOUT)
                    flush_pend(&g, s);
                if (!s->dead && (evs[i].events & (EPOLLIN | EPOLLRDHUP)))
                    on_read(&g, s);
            }
        }
        reap(&g);
    }
}
