/* demo_backend: the single-threaded SSE ticker and demo page behind `make run` (loopback only). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define RING_LEN 300            /* events kept for clients that reconnect with Last-Event-ID */
#define EVENT_MAX 192           /* one formatted tick is ~90 bytes */
#define IN_MAX 8192             /* request head limit; more is a 431-worthy client, we answer 400 */
#define OUT_MAX (1024 * 1024)   /* a client that lets this much pile up is dropped, not buffered forever */
#define MAX_CLIENTS 4096
#define MAX_EVENTS 64

enum cstate { C_HEAD, C_SSE };

typedef struct client {
    int fd;
    enum cstate state;
    bool chunked;        /* SSE body framing: chunked for HTTP/1.1 requests, close-delimited for 1.0 */
    bool close_after;    /* close once the output is flushed */
    bool dead;           /* closed; freed at the end of the event batch */
    bool want_out;       /* EPOLLOUT registered */
    size_t in_len;
    char in[IN_MAX];
    char *out;
    size_t out_off, out_len, out_cap;
    struct client *next_dead;
} client_t;

typedef struct ring_event {
    uint64_t id;
    size_t len;
    char text[EVENT_MAX];
} ring_event_t;

typedef struct server {
    int epfd, lfd, tfd;
    char *page;          /* examples/index.html, read once at start; NULL if not found */
    size_t page_len;
    uint64_t next_id;    /* global id counter: a reconnecting client resumes from any id still in the ring */
    ring_event_t ring[RING_LEN];
    client_t *clients[MAX_CLIENTS];
    size_t nclients;
    client_t *dead;      /* reap list */
    bool quiet;
} server_t;

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--port N] [--www DIR] [--interval-ms N] [--quiet]\n"
            "  Serves GET / (index.html) and GET /events (text/event-stream, one `tick` per interval)\n"
            "  on 127.0.0.1. Honours Last-Event-ID for the last %d events.\n",
            argv0, RING_LEN);
}

/* Reads a whole small file; returns a malloc'd buffer (caller owns it) or NULL. */
static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 16 * 1024 * 1024) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *len = got;
    return buf;
}

/* The page lives next to the sources; the binary lives in build/examples/, so look there and beside it. */
static void load_page(server_t *s, const char *www)
{
    char path[PATH_MAX + 32];
    if (www) {
        snprintf(path, sizeof(path), "%s/index.html", www);
        s->page = read_file(path, &s->page_len);
        if (!s->page)
            fprintf(stderr, "demo_backend: cannot read %s: GET / will answer 404\n", path);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        const char *rel[] = {"/index.html", "/../../examples/index.html", "/../examples/index.html"};
        for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]) && !s->page; i++) {
            snprintf(path, sizeof(path), "%s%s", exe, rel[i]);
            s->page = read_file(path, &s->page_len);
        }
    }
    if (!s->page)
        s->page = read_file("examples/index.html", &s->page_len);
    if (!s->page)
        fprintf(stderr, "demo_backend: index.html not found (use --www DIR): GET / will answer 404\n");
}

static void kill_client(server_t *s, client_t *c)
{
    if (c->dead)
        return;
    c->dead = true;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    for (size_t i = 0; i < s->nclients; i++) {
        if (s->clients[i] == c) {
            s->clients[i] = s->clients[--s->nclients];
            break;
        }
    }
    /* Freed after the current epoll batch: a later event in the same batch may still point at it. */
    c->next_dead = s->dead;
    s->dead = c;
}

static void reap(server_t *s)
{
    while (s->dead) {
        client_t *c = s->dead;
        s->dead = c->next_dead;
        free(c->out);
        free(c);
    }
}

static void set_out_interest(server_t *s, client_t *c, bool want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        kill_client(s, c);
        return;
    }
    c->want_out = want;
}

/* Writes what is queued; returns false if the client was dropped. */
static bool flush_out(server_t *s, client_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_out_interest(s, c, true);
            return !c->dead;
        }
        if (n <= 0) {
            kill_client(s, c);
            return false;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    if (c->close_after) {
        shutdown(c->fd, SHUT_WR);
        kill_client(s, c);
        return false;
    }
    set_out_interest(s, c, false);
    return !c->dead;
}

/* Appends bytes to the client's queue; drops a client whose queue would pass OUT_MAX. */
static bool queue(server_t *s, client_t *c, const char *p, size_t n)
{
    if (c->dead)
        return false;
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len - c->out_off + n > OUT_MAX) {
        if (!s->quiet)
            fprintf(stderr, "demo_backend: dropping a client that does not read (%zu bytes queued)\n",
                    c->out_len - c->out_off);
        kill_client(s, c);
        return false;
    }
    if (c->out_len + n > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        if (cap != c->out_cap) {
            char *nb = realloc(c->out, cap);
            if (!nb) {
                kill_client(s, c);
                return false;
            }
            c->out = nb;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return true;
}

/* Queues one piece of the SSE body, framed as a chunk when the response is chunked. */
static bool queue_body(server_t *s, client_t *c, const char *p, size_t n)
{
    if (!c->chunked)
        return queue(s, c, p, n);
    char hdr[24];
    int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", n);
    return queue(s, c, hdr, (size_t)hl) && queue(s, c, p, n) && queue(s, c, "\r\n", 2);
}

static void respond_simple(server_t *s, client_t *c, int status, const char *reason, const char *extra)
{
    char buf[512];
    char body[128];
    int bl = snprintf(body, sizeof(body), "%d %s\n", status, reason);
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n%s",
                     status, reason, bl, extra ? extra : "", body);
    c->close_after = true;
    if (queue(s, c, buf, (size_t)n))
        flush_out(s, c);
}

static void start_sse(server_t *s, client_t *c, bool http11, const char *last_id, size_t last_id_len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n%s\r\n",
                     http11 ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
    c->state = C_SSE;
    c->chunked = http11;
    if (!queue(s, c, head, (size_t)n))
        return;
    /* The retry hint goes first, with the headers, so the client sees the stream open at once. */
    static const char retry[] = "retry: 2000\n\n";
    if (!queue_body(s, c, retry, sizeof(retry) - 1))
        return;

    /* Replay what the client missed: ids are one global counter, so anything still in the ring is exact. */
    size_t replayed = 0;
    bool resumed = false;
    uint64_t after = 0;
    if (last_id && last_id_len > 0 && last_id_len < 21) {
        char tmp[24];
        memcpy(tmp, last_id, last_id_len);
        tmp[last_id_len] = '\0';
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (errno == 0 && end && *end == '\0' && tmp[0] >= '0' && tmp[0] <= '9') {
            after = v;
            resumed = true;
        }
    }
    if (resumed) {
        uint64_t oldest = s->next_id > RING_LEN ? s->next_id - RING_LEN : 1;
        uint64_t from = after + 1 > oldest ? after + 1 : oldest;
        for (uint64_t id = from; id < s->next_id; id++) {
            const ring_event_t *e = &s->ring[id % RING_LEN];
            if (e->id != id)
                continue;
            if (!queue_body(s, c, e->text, e->len))
                return;
            replayed++;
        }
    }
    if (!s->quiet) {
        if (resumed)
            fprintf(stderr, "demo_backend: stream opened with Last-Event-ID %llu, replayed %zu event(s)\n",
                    (unsigned long long)after, replayed);
        else
            fprintf(stderr, "demo_backend: stream opened (%zu streams)\n", s->nclients);
    }
    flush_out(s, c);
}

static bool token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Parses and answers one complete request head of length hl (ending in CRLFCRLF). */
static void handle_request(server_t *s, client_t *c, size_t hl)
{
    char *p = c->in;
    char *end = c->in + hl;
    char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol) {
        respond_simple(s, c, 400, "Bad Request", NULL);
        return;
    }
    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1 || eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1') || sp1[1] != '/') {
        respond_simple(s, c, 400, "Bad Request", NULL);
        return;
    }
    for (char *q = p; q < sp1; q++) {
        if (!token_char(*q)) {
            respond_simple(s, c, 400, "Bad Request", NULL);
            return;
        }
    }
    for (char *q = sp1 + 1; q < sp2; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            respond_simple(s, c, 400, "Bad Request", NULL);
            return;
        }
    }
    bool http11 = sp2[8] == '1';
    size_t mlen = (size_t)(sp1 - p);
    bool is_get = mlen == 3 && memcmp(p, "GET", 3) == 0;
    bool is_head = mlen == 4 && memcmp(p, "HEAD", 4) == 0;
    char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    char *qm = memchr(target, '?', tlen);
    size_t plen = qm ? (size_t)(qm - target) : tlen;

    /* Header fields. */
    bool keep_alive = http11;
    const char *last_id = NULL;
    size_t last_id_len = 0;
    bool has_body = false;
    /* ?lastEventId=N: a page that opens a new EventSource cannot set the header, so it may pass the id here.
     * The header, when present, wins (it is what a reconnecting browser sends). */
    for (char *q = qm; q && q < sp2;) {
        q++;
        char *amp = memchr(q, '&', (size_t)(sp2 - q));
        char *pe = amp ? amp : sp2;
        if (pe - q > 12 && memcmp(q, "lastEventId=", 12) == 0) {
            last_id = q + 12;
            last_id_len = (size_t)(pe - q - 12);
        }
        q = amp;
    }
    for (char *line = eol + 2; line < end - 2;) {
        char *le = memmem(line, (size_t)(end - line), "\r\n", 2);
        if (!le || le == line)
            break;
        char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line) {
            respond_simple(s, c, 400, "Bad Request", NULL);
            return;
        }
        for (char *q = line; q < colon; q++) {
            if (!token_char(*q)) {
                respond_simple(s, c, 400, "Bad Request", NULL);
                return;
            }
        }
        for (char *q = colon + 1; q < le; q++) {
            unsigned char ch = (unsigned char)*q;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
                respond_simple(s, c, 400, "Bad Request", NULL);
                return;
            }
        }
        size_t nlen = (size_t)(colon - line);
        char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        char *ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vlen = (size_t)(ve - v);
        if (nlen == 13 && strncasecmp(line, "last-event-id", 13) == 0) {
            last_id = v;
            last_id_len = vlen;
        } else if (nlen == 10 && strncasecmp(line, "connection", 10) == 0) {
            if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
                keep_alive = false;
            else if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                keep_alive = true;
        } else if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
            if (!(vlen == 1 && v[0] == '0'))
                has_body = true;
        } else if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
            has_body = true;
        }
        line = le + 2;
    }
    /* This server takes no request bodies; refusing them keeps the connection framing trivially right. */
    if (has_body) {
        respond_simple(s, c, 400, "Bad Request", NULL);
        return;
    }
    if (!is_get && !is_head) {
        respond_simple(s, c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
        return;
    }
    if (plen == 7 && memcmp(target, "/events", 7) == 0) {
        if (is_head) {
            static const char h[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                    "Cache-Control: no-cache\r\nContent-Length: 0\r\n\r\n";
            c->close_after = !keep_alive;
            if (queue(s, c, h, sizeof(h) - 1))
                flush_out(s, c);
            return;
        }
        start_sse(s, c, http11, last_id, last_id_len);
        return;
    }
    if ((plen == 1 && target[0] == '/') || (plen == 11 && memcmp(target, "/index.html", 11) == 0)) {
        if (!s->page) {
            respond_simple(s, c, 404, "Not Found", NULL);
            return;
        }
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
                         "Cache-Control: no-cache\r\n%s\r\n",
                         s->page_len, keep_alive ? "" : "Connection: close\r\n");
        c->close_after = !keep_alive;
        if (!queue(s, c, head, (size_t)n))
            return;
        if (is_get && !queue(s, c, s->page, s->page_len))
            return;
        flush_out(s, c);
        return;
    }
    respond_simple(s, c, 404, "Not Found", NULL);
}

static void on_readable(server_t *s, client_t *c)
{
    for (;;) {
        if (c->state == C_SSE || c->close_after) {
            /* Nothing more is expected from this client: read and discard, to notice when it goes away. */
            char sink[4096];
            ssize_t n = read(c->fd, sink, sizeof(sink));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n <= 0) {
                if (!s->quiet && c->state == C_SSE)
                    fprintf(stderr, "demo_backend: stream closed by the client\n");
                kill_client(s, c);
                return;
            }
            continue;
        }
        if (c->in_len == IN_MAX) {
            respond_simple(s, c, 400, "Bad Request", NULL);
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            kill_client(s, c);
            return;
        }
        c->in_len += (size_t)n;
        /* Answer every complete request in the buffer (pipelining), in order. */
        while (!c->dead && c->state == C_HEAD && !c->close_after) {
            char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (!e)
                break;
            size_t hl = (size_t)(e - c->in) + 4;
            handle_request(s, c, hl);
            if (c->dead)
                return;
            memmove(c->in, c->in + hl, c->in_len - hl);
            c->in_len -= hl;
        }
    }
}

static void on_accept(server_t *s)
{
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("demo_backend: accept");
            return;
        }
        if (s->nclients == MAX_CLIENTS) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        client_t *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->state = C_HEAD;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
            continue;
        }
        s->clients[s->nclients++] = c;
    }
}

static void on_tick(server_t *s)
{
    uint64_t expirations;
    if (read(s->tfd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
        return;
    uint64_t id = s->next_id++;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    ring_event_t *e = &s->ring[id % RING_LEN];
    e->id = id;
    int n = snprintf(e->text, sizeof(e->text), "id: %llu\nevent: tick\ndata: {\"n\":%llu,\"time\":\"%s\"}\n\n",
                     (unsigned long long)id, (unsigned long long)id, ts);
    e->len = (size_t)n;
    /* Iterate backwards: kill_client swaps the last client into the freed slot. */
    for (size_t i = s->nclients; i-- > 0;) {
        client_t *c = s->clients[i];
        if (c->state != C_SSE || c->dead)
            continue;
        if (queue_body(s, c, e->text, e->len))
            flush_out(s, c);
    }
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
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 512) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int main(int argc, char **argv)
{
    int port = 9090;
    long interval_ms = 1000;
    const char *www = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *e;
            long v = strtol(argv[++i], &e, 10);
            if (*e || v < 1 || v > 65535) {
                usage(argv[0]);
                return 2;
            }
            port = (int)v;
        } else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) {
            char *e;
            interval_ms = strtol(argv[++i], &e, 10);
            if (*e || interval_ms < 1 || interval_ms > 3600000) {
                usage(argv[0]);
                return 2;
            }
        } else if (strcmp(argv[i], "--www") == 0 && i + 1 < argc) {
            www = argv[++i];
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else {
            usage(argv[0]);
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);

    server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        fprintf(stderr, "demo_backend: out of memory\n");
        return 1;
    }
    s->quiet = quiet;
    s->next_id = 1;
    load_page(s, www);

    s->lfd = listen_on(port);
    if (s->lfd < 0) {
        fprintf(stderr, "demo_backend: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(-s->lfd));
        return 1;
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s->epfd < 0 || s->tfd < 0) {
        perror("demo_backend: epoll/timerfd");
        return 1;
    }
    struct itimerspec its = {
        .it_interval = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000L},
        .it_value = {.tv_sec = interval_ms / 1000, .tv_nsec = (interval_ms % 1000) * 1000000L},
    };
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &s->lfd};
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &s->tfd};
    if (timerfd_settime(s->tfd, 0, &its, NULL) != 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &lev) != 0 ||
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &tev) != 0) {
        perror("demo_backend: setup");
        return 1;
    }
    fprintf(stderr, "demo_backend: listening on 127.0.0.1:%d\n", port);

    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(s->epfd, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("demo_backend: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &s->lfd) {
                on_accept(s);
                continue;
            }
            if (p == &s->tfd) {
                on_tick(s);
                continue;
            }
            client_t *c = p;
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                kill_client(s, c);
                continue;
            }
            if (evs[i].events & EPOLLOUT)
                flush_out(s, c);
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLRDHUP)))
                on_readable(s, c);
        }
        reap(s);
    }
}
