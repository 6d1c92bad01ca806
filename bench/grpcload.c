/* grpcload: the gRPC server-streaming benchmark, both ends, over h2c with nghttp2. --serve runs the origin: every
 * call gets an endless stream of gRPC messages as fast as flow control lets them go. Otherwise it is the client:
 * C connections x S streaming calls, every length-prefixed message counted, messages/s over a window (and the CPU
 * of --proxy-pids). grpc-js would be the bottleneck at these rates; this is the same wire format with nothing on top. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EV 256
#define RBUF (256 * 1024)
static int32_t window = 1 << 20; /* per-stream window both ends advertise (--window; grpc-go's BDP estimate reaches such sizes) */

typedef struct conn conn_t;
struct conn {
    int fd;
    nghttp2_session *ses;
    bool want_out;
    uint8_t *pend;              /* bytes nghttp2 produced that the socket did not take yet */
    size_t pendlen, pendoff;
};

/* Per client stream: where in a length-prefixed message we are. */
typedef struct cstream {
    uint8_t hdr[5];
    size_t hdrlen;
    uint32_t left;              /* payload bytes of the current message still to come */
    bool ok;
} cstream_t;

static int ep;
static void client_callbacks(nghttp2_session_callbacks *cb);
static size_t msg_size = 100;   /* payload bytes per message */
static uint8_t *msgbuf;         /* one message: prefix + payload */
static uint64_t msgs_total;     /* client: complete messages received */
static uint64_t streams_closed, streams_reset;
static uint8_t rbuf[RBUF];

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void watch(conn_t *c, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->want_out = out;
}

static void conn_close(conn_t *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    nghttp2_session_del(c->ses);
    free(c->pend);
    free(c);
}

/* Writes what nghttp2 has to send until the socket is full. Returns -1 when the connection is over. */
static int flush(conn_t *c)
{
    for (;;) {
        if (c->pendoff < c->pendlen) {
            ssize_t w = send(c->fd, c->pend + c->pendoff, c->pendlen - c->pendoff, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                if (!c->want_out)
                    watch(c, true);
                return 0;
            }
            if (w < 0)
                return -1;
            c->pendoff += (size_t)w;
            continue;
        }
        /* Gather up to 256 KiB of frames, then write them in one send. */
        c->pendlen = c->pendoff = 0;
        for (;;) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->ses, &data);
            if (n < 0)
                return -1;
            if (n == 0)
                break;
            uint8_t *p = realloc(c->pend, c->pendlen + (size_t)n);
            if (p == NULL)
                return -1;
            c->pend = p;
            memcpy(c->pend + c->pendlen, data, (size_t)n);
            c->pendlen += (size_t)n;
            if (c->pendlen >= 256 * 1024)
                break;
        }
        if (c->pendlen == 0) {
            if (c->want_out)
                watch(c, false);
            if (!nghttp2_session_want_read(c->ses) && !nghttp2_session_want_write(c->ses))
                return -1;
            return 0;
        }
    }
}

static int readable(conn_t *c)
{
    for (int round = 0; round < 4; round++) {
        ssize_t r = recv(c->fd, rbuf, sizeof(rbuf), 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (r <= 0)
            return -1;
        if (nghttp2_session_mem_recv(c->ses, rbuf, (size_t)r) < 0)
            return -1;
        if ((size_t)r < sizeof(rbuf))
            break;
    }
    return flush(c);
}

/* ---- origin ---- */

static ssize_t origin_read(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *ud)
{
    (void)ses;
    (void)id;
    (void)flags;
    (void)ud;
    /* An endless stream of messages; a frame may end inside one (the window decides), so the stream's offset in
     * the message pattern carries over to the next frame. */
    size_t one = 5 + msg_size, *off = src->ptr, n = 0;
    while (n < len) {
        size_t k = one - *off < len - n ? one - *off : len - n;
        memcpy(buf + n, msgbuf + *off, k);
        n += k;
        *off = (*off + k) % one;
    }
    return (ssize_t)n;
}

static int origin_frame(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        nghttp2_nv nv[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        };
        size_t *off = calloc(1, sizeof(size_t));
        nghttp2_data_provider prd = {.source.ptr = off, .read_callback = origin_read};
        nghttp2_session_set_stream_user_data(ses, f->hd.stream_id, off);
        nghttp2_submit_response(ses, f->hd.stream_id, nv, 2, &prd);
    }
    return 0;
}

static int origin_close(nghttp2_session *ses, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    (void)ud;
    free(nghttp2_session_get_stream_user_data(ses, id));
    return 0;
}

static conn_t *conn_new(int fd, bool server)
{
    conn_t *c = calloc(1, sizeof(*c));
    nghttp2_session_callbacks *cb;
    if (c == NULL || nghttp2_session_callbacks_new(&cb) != 0)
        die("alloc");
    c->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (server) {
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, origin_frame);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, origin_close);
        nghttp2_session_server_new(&c->ses, cb, c);
    } else {
        client_callbacks(cb);
        nghttp2_session_client_new(&c->ses, cb, c);
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 10000},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)window}};
    nghttp2_submit_settings(c->ses, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(c->ses, NGHTTP2_FLAG_NONE, 0, 16 * window);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        die("epoll_ctl");
    return c;
}

static void serve(int port)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 1024) < 0)
        die("listen");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event evs[MAX_EV];
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EV, -1);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
                    flush(conn_new(fd, true));
                continue;
            }
            int rc = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                rc = readable(c);
            else if (evs[i].events & EPOLLOUT)
                rc = flush(c);
            if (rc < 0)
                conn_close(c);
        }
    }
}

/* ---- client ---- */

static int client_data(nghttp2_session *ses, uint8_t flags, int32_t id, const uint8_t *p, size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    cstream_t *s = nghttp2_session_get_stream_user_data(ses, id);
    if (s == NULL)
        return 0;
    while (len > 0) {
        if (s->left > 0) {
            size_t k = len < s->left ? len : s->left;
            s->left -= (uint32_t)k;
            p += k;
            len -= k;
            if (s->left == 0)
                msgs_total++;
            continue;
        }
        s->hdr[s->hdrlen++] = *p++;
        len--;
        if (s->hdrlen == 5) {
            s->hdrlen = 0;
            s->left = (uint32_t)s->hdr[1] << 24 | (uint32_t)s->hdr[2] << 16 | (uint32_t)s->hdr[3] << 8 | s->hdr[4];
            if (s->left == 0)
                msgs_total++;
        }
    }
    return 0;
}

static int client_close(nghttp2_session *ses, int32_t id, uint32_t code, void *ud)
{
    (void)ud;
    cstream_t *s = nghttp2_session_get_stream_user_data(ses, id);
    streams_closed++;
    if (code != NGHTTP2_NO_ERROR)
        streams_reset++;
    free(s);
    return 0;
}

static void client_callbacks(nghttp2_session_callbacks *cb)
{
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, client_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, client_close);
}

static ssize_t req_body(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    (void)ses;
    (void)id;
    (void)src;
    (void)ud;
    (void)len;
    memset(buf, 0, 5); /* one empty request message */
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 5;
}

static uint64_t proc_cpu_ticks(const char *pids)
{
    uint64_t sum = 0;
    char list[512];
    snprintf(list, sizeof(list), "%s", pids);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char path[64], line[1024];
        snprintf(path, sizeof(path), "/proc/%s/stat", t);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(line, sizeof(line), f) != NULL) {
            char *rp = strrchr(line, ')');
            unsigned long ut = 0, st = 0;
            if (rp && sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
                sum += ut + st;
        }
        fclose(f);
    }
    return sum;
}

static uint64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u + (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int main(int argc, char **argv)
{
    int port = 0, conns = 4, streams = 25, serve_port = 0;
    double warmup = 2, duration = 10;
    const char *path = "/bench.Stream/Pull", *label = "grpc", *pids = NULL, *authority = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--serve") == 0 && v) serve_port = atoi(v), i++;
        else if (strcmp(a, "--port") == 0 && v) port = atoi(v), i++;
        else if (strcmp(a, "--conns") == 0 && v) conns = atoi(v), i++;
        else if (strcmp(a, "--streams") == 0 && v) streams = atoi(v), i++;
        else if (strcmp(a, "--size") == 0 && v) msg_size = (size_t)atoi(v), i++;
        else if (strcmp(a, "--window") == 0 && v) window = atoi(v), i++;
        else if (strcmp(a, "--warmup") == 0 && v) warmup = atof(v), i++;
        else if (strcmp(a, "--duration") == 0 && v) duration = atof(v), i++;
        else if (strcmp(a, "--path") == 0 && v) path = v, i++;
        else if (strcmp(a, "--authority") == 0 && v) authority = v, i++;
        else if (strcmp(a, "--label") == 0 && v) label = v, i++;
        else if (strcmp(a, "--proxy-pids") == 0 && v) pids = v, i++;
        else {
            fprintf(stderr, "usage: grpcload --serve PORT [--size B]\n"
                            "       grpcload --port P [--conns C] [--streams S] [--warmup SEC] [--duration SEC]\n"
                            "                [--path /svc/Method] [--authority HOST] [--proxy-pids P,P] [--label L]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    ep = epoll_create1(0);
    msgbuf = calloc(1, 5 + msg_size);
    msgbuf[1] = (uint8_t)(msg_size >> 24);
    msgbuf[2] = (uint8_t)(msg_size >> 16);
    msgbuf[3] = (uint8_t)(msg_size >> 8);
    msgbuf[4] = (uint8_t)msg_size;
    memset(msgbuf + 5, 'x', msg_size);
    if (serve_port) {
        serve(serve_port);
        return 0;
    }
    if (port == 0) {
        fprintf(stderr, "grpcload: --port is required\n");
        return 2;
    }
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
            die("connect");
        if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
            die("fcntl");
        conn_t *c = conn_new(fd, false);
        for (int s = 0; s < streams; s++) {
            nghttp2_nv nv[] = {
                {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)":authority", (uint8_t *)authority, 10, strlen(authority), NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE},
            };
            nghttp2_data_provider prd = {.read_callback = req_body};
            cstream_t *st = calloc(1, sizeof(*st));
            if (nghttp2_submit_request(c->ses, NULL, nv, 6, &prd, st) < 0)
                die("submit");
        }
        if (flush(c) < 0)
            die("flush");
    }
    struct epoll_event evs[MAX_EV];
    uint64_t t0 = now_us(), t_start = t0 + (uint64_t)(warmup * 1e6), t_end = t_start + (uint64_t)(duration * 1e6);
    uint64_t m_start = 0, cpu_start = 0, self_start = 0;
    bool measuring = false;
    long hz = sysconf(_SC_CLK_TCK);
    for (;;) {
        uint64_t now = now_us();
        if (!measuring && now >= t_start) {
            measuring = true;
            m_start = msgs_total;
            cpu_start = pids ? proc_cpu_ticks(pids) : 0;
            self_start = self_cpu_us();
        }
        if (now >= t_end)
            break;
        int n = epoll_wait(ep, evs, MAX_EV, 50);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            int rc = 0;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                rc = readable(c);
            if (rc == 0 && (evs[i].events & EPOLLOUT))
                rc = flush(c);
            if (rc < 0) {
                fprintf(stderr, "grpcload: a connection ended early\n");
                conn_close(c);
            }
        }
    }
    double secs = duration;
    uint64_t msgs = msgs_total - m_start;
    double cpu = pids ? (double)(proc_cpu_ticks(pids) - cpu_start) / (double)hz : -1;
    double self = (double)(self_cpu_us() - self_start) / 1e6;
    printf("RESULT label=%s msgs_per_s=%.0f mbytes_per_s=%.1f msgs=%llu proxy_cpu_pct=%.0f client_cpu_pct=%.0f "
           "cpu_us_per_kmsg=%.1f streams=%d streams_ended=%llu streams_reset=%llu\n",
           label, (double)msgs / secs, (double)msgs * (double)(5 + msg_size) / secs / 1e6, (unsigned long long)msgs,
           pids ? 100.0 * cpu / secs : -1.0, 100.0 * self / secs,
           pids && msgs ? cpu * 1e9 / (double)msgs : -1.0, conns * streams, (unsigned long long)streams_closed,
           (unsigned long long)streams_reset);
    return 0;
}
