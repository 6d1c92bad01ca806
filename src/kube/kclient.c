/* kclient.c: HTTPS/1.1 to the API server: connect with a deadline, OpenSSL verification against the cluster CA
 * (SNI and host name, or the IP SAN for an IP), bearer token re-read from its file, a small pool of kept-alive
 * connections for requests (an idempotent one retried once when a reused connection turns out dead), a token-bucket
 * rate limit, and a streaming body for watches on connections of their own (chunked decoding by codec/h1parse). */
#include "kube/kclient.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "codec/h1parse.h"
#include "core/loop.h"

#define TOKEN_MAX 16384
#define TOKEN_REREAD_MS 60000 /* client-go re-reads projected tokens every minute */
#define HEAD_MAX (SG_H1_MAX_HEAD_BYTES + SG_H1_MAX_REQLINE)
#define POOL_MAX 4            /* idle connections kept: the kube thread's LISTs and the status thread take one each */
#define IDLE_MAX_MS 90000     /* an idle connection older than this is closed, not reused (client-go: 90 s) */

typedef struct kconn {
    int fd;
    SSL *ssl;
    bool reused;              /* taken from the idle pool (it carried an exchange before) */
    uint64_t idle_ms;         /* when it went idle (in the pool) */
} kconn_t;

struct sg_kclient {
    sg_kconf_t conf;
    SSL_CTX *ctx;
    bool name_is_ip;
    pthread_mutex_t lock; /* guards the token cache, the idle pool and the rate limiter */
    char *token;
    uint64_t token_read_ms;
    kconn_t idle[POOL_MAX];   /* kept-alive connections, newest last */
    size_t nidle;
    double qps, burst, tokens; /* the rate limit (qps 0: none) and the bucket */
    uint64_t tokens_ms;       /* when the bucket was last filled */
    _Atomic uint64_t opened, requests, reused, retried, throttled_ms;
};

struct sg_kstream {
    kconn_t cn;
    sg_h1_body_t body;
    uint64_t remaining;       /* SG_H1_BODY_LENGTH: bytes left */
    sg_h1_chunked_t dech;
    char *dec;                /* decoded bytes not yet handed out */
    size_t dec_off, dec_len, dec_cap;
    bool done;                /* the body ended */
    bool keep;                /* the server keeps the connection open after this response (HTTP/1.1, framed body) */
    bool extra;               /* bytes arrived past the body: the connection cannot carry another exchange */
    int error;                /* sticky error */
};

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char *dups(const char *s)
{
    return s ? dupn(s, strlen(s)) : NULL;
}

static bool is_ip(const char *s)
{
    unsigned char b[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static void conn_close(kconn_t *cn);

/* ---- client ---- */

static int load_ca(SSL_CTX *ctx, const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return -ENOMEM;
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(st, x) == 1)
            n++;
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(bio);
    return n > 0 ? 0 : -EINVAL;
}

sg_kclient_t *sg_kclient_new(const sg_kconf_t *kc, char *err, size_t cap)
{
    sg_kclient_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    sg_kclient_set_rate(c, SG_KCLIENT_QPS, SG_KCLIENT_BURST);
    c->conf.host = dups(kc->host);
    c->conf.port = dups(kc->port ? kc->port : "443");
    c->conf.base_path = dups(kc->base_path ? kc->base_path : "");
    c->conf.tls_server_name = dups(kc->tls_server_name);
    c->conf.token = dups(kc->token);
    c->conf.token_file = dups(kc->token_file);
    c->conf.namespace = dups(kc->namespace);
    if (kc->ca_pem != NULL) {
        c->conf.ca_pem = dupn(kc->ca_pem, kc->ca_len);
        c->conf.ca_len = kc->ca_len;
    }
    if (c->conf.host == NULL || c->conf.port == NULL || c->conf.base_path == NULL) {
        snprintf(err, cap, "no API server host");
        goto fail;
    }
    c->name_is_ip = is_ip(c->conf.tls_server_name ? c->conf.tls_server_name : c->conf.host);
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        snprintf(err, cap, "cannot create a TLS context");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(c->ctx, SSL_MODE_AUTO_RETRY);
    if (c->conf.ca_pem != NULL) {
        if (load_ca(c->ctx, c->conf.ca_pem, c->conf.ca_len) < 0) {
            snprintf(err, cap, "the certificate authority holds no PEM certificate");
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        snprintf(err, cap, "cannot load the system trust store");
        goto fail;
    }
    return c;
fail:
    sg_kclient_free(c);
    return NULL;
}

void sg_kclient_free(sg_kclient_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        conn_close(&c->idle[i]);
    SSL_CTX_free(c->ctx);
    sg_kconf_free(&c->conf);
    free(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

const char *sg_kclient_namespace(const sg_kclient_t *c)
{
    return c->conf.namespace;
}

void sg_kclient_set_rate(sg_kclient_t *c, double qps, int burst)
{
    pthread_mutex_lock(&c->lock);
    c->qps = qps > 0 ? qps : 0;
    c->burst = burst > 1 ? burst : 1;
    c->tokens = c->burst;
    c->tokens_ms = sg_now_ms();
    pthread_mutex_unlock(&c->lock);
}

void sg_kclient_stats(const sg_kclient_t *c, sg_kclient_stats_t *out)
{
    sg_kclient_t *m = (sg_kclient_t *)c;
    out->connections = atomic_load_explicit(&m->opened, memory_order_relaxed);
    out->requests = atomic_load_explicit(&m->requests, memory_order_relaxed);
    out->reused = atomic_load_explicit(&m->reused, memory_order_relaxed);
    out->retried = atomic_load_explicit(&m->retried, memory_order_relaxed);
    out->throttled_ms = atomic_load_explicit(&m->throttled_ms, memory_order_relaxed);
}

void sg_kclient_token_expire(sg_kclient_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->token_read_ms = 0;
    pthread_mutex_unlock(&c->lock);
}

/* Copies the current bearer token into out ("" for none), re-reading its file once a minute or after a 401. A file
 * that cannot be read keeps the last token: the kubelet replaces it atomically, so a failed read is transient. */
static void get_token(sg_kclient_t *c, char *out, size_t cap)
{
    out[0] = '\0';
    pthread_mutex_lock(&c->lock);
    uint64_t now = sg_now_ms();
    if (c->conf.token_file != NULL && (c->token == NULL || c->token_read_ms == 0 ||
                                       now - c->token_read_ms >= TOKEN_REREAD_MS)) {
        FILE *f = fopen(c->conf.token_file, "re");
        if (f != NULL) {
            char *buf = malloc(TOKEN_MAX);
            size_t n = buf ? fread(buf, 1, TOKEN_MAX - 1, f) : 0;
            fclose(f);
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                n--;
            if (buf != NULL) {
                buf[n] = '\0';
                free(c->token);
                c->token = buf;
                c->token_read_ms = now;
            }
        }
    }
    const char *t = c->conf.token_file ? c->token : c->conf.token;
    if (t != NULL)
        snprintf(out, cap, "%s", t);
    pthread_mutex_unlock(&c->lock);
}

/* ---- connection ---- */

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = sg_now_ms();
    return now >= deadline ? 0 : (int)SG_MIN(deadline - now, (uint64_t)INT32_MAX);
}

static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = ev};
        int ms = remaining_ms(deadline);
        if (ms == 0)
            return -ETIMEDOUT;
        int n = poll(&p, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ETIMEDOUT;
        return 0;
    }
}

static void conn_close(kconn_t *cn)
{
    if (cn->ssl != NULL) {
        SSL_free(cn->ssl);
        cn->ssl = NULL;
    }
    if (cn->fd >= 0) {
        close(cn->fd);
        cn->fd = -1;
    }
}

static int tcp_connect(const sg_kclient_t *c, uint64_t deadline)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *ai = NULL;
    int gai = getaddrinfo(c->conf.host, c->conf.port, &hints, &ai);
    if (gai != 0)
        return gai == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
    int rc = -ECONNREFUSED;
    for (struct addrinfo *p = ai; p != NULL; p = p->ai_next) {
        int fd = socket(p->ai_family, p->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, p->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* A watch may carry nothing for minutes: keepalive finds a peer that vanished without a FIN. */
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        int idle = 30, intvl = 10, cnt = 3;
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        if (connect(fd, p->ai_addr, p->ai_addrlen) == 0) {
            rc = fd;
            break;
        }
        if (errno != EINPROGRESS) {
            rc = -errno;
            close(fd);
            continue;
        }
        rc = wait_fd(fd, POLLOUT, deadline);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
            rc = fd;
            break;
        }
        if (rc == 0)
            rc = -(soerr ? soerr : ECONNREFUSED);
        close(fd);
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(ai);
    return rc;
}

static int conn_open(sg_kclient_t *c, uint64_t deadline, kconn_t *cn)
{
    cn->fd = -1;
    cn->ssl = NULL;
    cn->reused = false;
    int fd = tcp_connect(c, deadline);
    if (fd < 0)
        return fd;
    atomic_fetch_add_explicit(&c->opened, 1, memory_order_relaxed);
    cn->fd = fd;
    cn->ssl = SSL_new(c->ctx);
    if (cn->ssl == NULL) {
        conn_close(cn);
        return -ENOMEM;
    }
    const char *name = c->conf.tls_server_name ? c->conf.tls_server_name : c->conf.host;
    if (c->name_is_ip) {
        /* In a cluster the server is https://<ClusterIP>: its certificate must carry that IP as a SAN. */
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cn->ssl), name);
    } else {
        SSL_set_tlsext_host_name(cn->ssl, name);
        SSL_set1_host(cn->ssl, name);
    }
    SSL_set_fd(cn->ssl, fd);
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(cn->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(cn->ssl, r);
        int rc;
        if (e == SSL_ERROR_WANT_READ)
            rc = wait_fd(fd, POLLIN, deadline);
        else if (e == SSL_ERROR_WANT_WRITE)
            rc = wait_fd(fd, POLLOUT, deadline);
        else
            rc = SSL_get_verify_result(cn->ssl) != X509_V_OK ? -EKEYREJECTED : -ECONNRESET;
        if (rc < 0) {
            conn_close(cn);
            ERR_clear_error();
            return rc;
        }
    }
}

/* Whether an idle kept-alive connection can carry another request: not too old, and the server has neither closed it
 * (FIN, close_notify, RST) nor sent anything. A TLS 1.3 server may send session tickets after the handshake; reading
 * them leaves nothing for the application, and the connection stays usable. */
static bool conn_alive(kconn_t *cn, uint64_t now)
{
    if (now - cn->idle_ms > IDLE_MAX_MS)
        return false;
    struct pollfd p = {.fd = cn->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    if (n == 0)
        return true;
    if (n < 0 || (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
        return false;
    char b[1];
    ERR_clear_error();
    int r = SSL_read(cn->ssl, b, 1);
    if (r > 0)
        return false;           /* bytes no request asked for */
    int e = SSL_get_error(cn->ssl, r);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_READ;
}

/* A connection for one exchange: the newest idle one still alive when may_reuse (closing the dead ones met on the
 * way), else a new one. */
static int conn_get(sg_kclient_t *c, bool may_reuse, uint64_t deadline, kconn_t *cn)
{
    while (may_reuse) {
        pthread_mutex_lock(&c->lock);
        bool got = c->nidle > 0;
        if (got)
            *cn = c->idle[--c->nidle];
        pthread_mutex_unlock(&c->lock);
        if (!got)
            break;
        if (conn_alive(cn, sg_now_ms())) {
            cn->reused = true;
            return 0;
        }
        conn_close(cn);
    }
    return conn_open(c, deadline, cn);
}

/* Keeps a connection whose exchange ended cleanly for the next request; the oldest idle one goes when the pool is
 * full. */
static void conn_put(sg_kclient_t *c, kconn_t *cn)
{
    kconn_t old = {.fd = -1};
    cn->idle_ms = sg_now_ms();
    pthread_mutex_lock(&c->lock);
    if (c->nidle == POOL_MAX) {
        old = c->idle[0];
        memmove(&c->idle[0], &c->idle[1], (POOL_MAX - 1) * sizeof(c->idle[0]));
        c->nidle--;
    }
    c->idle[c->nidle++] = *cn;
    pthread_mutex_unlock(&c->lock);
    conn_close(&old);
    cn->fd = -1;
    cn->ssl = NULL;
}

static int conn_write(kconn_t *cn, const char *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ERR_clear_error();
        int r = SSL_write(cn->ssl, p, (int)SG_MIN(n, (size_t)INT32_MAX));
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        int e = SSL_get_error(cn->ssl, r);
        int rc;
        if (e == SSL_ERROR_WANT_READ)
            rc = wait_fd(cn->fd, POLLIN, deadline);
        else if (e == SSL_ERROR_WANT_WRITE)
            rc = wait_fd(cn->fd, POLLOUT, deadline);
        else
            rc = -ECONNRESET;
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Reads what is there: >0 bytes, SG_EAGAIN, 0 at EOF, -ECONNRESET. */
static ssize_t conn_read_now(kconn_t *cn, char *buf, size_t cap)
{
    ERR_clear_error();
    int r = SSL_read(cn->ssl, buf, (int)SG_MIN(cap, (size_t)INT32_MAX));
    if (r > 0)
        return r;
    int e = SSL_get_error(cn->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return SG_EAGAIN;
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    /* A peer that closes without close_notify: the body framing tells whether anything was lost. */
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) {
        ERR_clear_error();
        return r == 0 ? 0 : -ECONNRESET;
    }
    return -ECONNRESET;
}

static ssize_t conn_read(kconn_t *cn, char *buf, size_t cap, uint64_t deadline)
{
    for (;;) {
        ssize_t n = conn_read_now(cn, buf, cap);
        if (n != SG_EAGAIN)
            return n;
        int rc = wait_fd(cn->fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

/* ---- request ---- */

static const char *content_type_or(const char *ct)
{
    return ct ? ct : "application/json";
}

static int send_request(sg_kclient_t *c, kconn_t *cn, const char *method, const char *path, const char *ctype,
                        const char *body, size_t body_len, bool close, uint64_t deadline)
{
    char *token = malloc(TOKEN_MAX);
    if (token == NULL)
        return -ENOMEM;
    get_token(c, token, TOKEN_MAX);
    size_t cap = TOKEN_MAX + strlen(path) + strlen(c->conf.base_path) + strlen(c->conf.host) + 512;
    char *head = malloc(cap);
    if (head == NULL) {
        free(token);
        return -ENOMEM;
    }
    bool v6 = strchr(c->conf.host, ':') != NULL;
    int n = snprintf(head, cap,
                     "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: ssegate\r\nAccept: application/json\r\n"
                     "%s%s%s%s",
                     method, c->conf.base_path, path, v6 ? "[" : "", c->conf.host, v6 ? "]" : "", c->conf.port,
                     close ? "Connection: close\r\n" : "", token[0] ? "Authorization: Bearer " : "", token,
                     token[0] ? "\r\n" : "");
    free(token);
    if (n > 0 && (size_t)n < cap && (body != NULL || strcmp(method, "GET") != 0))
        n += snprintf(head + n, cap - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                      content_type_or(ctype), body ? body_len : 0);
    if (n > 0 && (size_t)n < cap)
        n += snprintf(head + n, cap - (size_t)n, "\r\n");
    if (n < 0 || (size_t)n >= cap) {
        free(head);
        return -ENOSPC;
    }
    int rc = conn_write(cn, head, (size_t)n, deadline);
    free(head);
    if (rc == 0 && body != NULL && body_len > 0)
        rc = conn_write(cn, body, body_len, deadline);
    return rc;
}

/* ---- response ---- */

static int dec_append(sg_kstream_t *s, const char *p, size_t n)
{
    if (s->dec_off > 0 && s->dec_off == s->dec_len)
        s->dec_off = s->dec_len = 0;
    if (s->dec_len + n > s->dec_cap) {
        if (s->dec_off > 0) {
            memmove(s->dec, s->dec + s->dec_off, s->dec_len - s->dec_off);
            s->dec_len -= s->dec_off;
            s->dec_off = 0;
        }
        if (s->dec_len + n > s->dec_cap) {
            size_t cap = s->dec_cap ? s->dec_cap : 16384;
            while (cap < s->dec_len + n)
                cap *= 2;
            char *d = realloc(s->dec, cap);
            if (d == NULL)
                return -ENOMEM;
            s->dec = d;
            s->dec_cap = cap;
        }
    }
    memcpy(s->dec + s->dec_len, p, n);
    s->dec_len += n;
    return 0;
}

/* Feeds raw body bytes through the framing into the decoded buffer. */
static int body_feed(sg_kstream_t *s, const char *p, size_t n)
{
    if (s->body == SG_H1_BODY_UNTIL_CLOSE)
        return dec_append(s, p, n);
    if (s->body == SG_H1_BODY_LENGTH) {
        size_t take = (size_t)SG_MIN((uint64_t)n, s->remaining);
        s->extra |= take < n;
        s->remaining -= take;
        if (s->remaining == 0)
            s->done = true;
        return dec_append(s, p, take);
    }
    while (n > 0 && !s->done) {
        size_t used = 0;
        sg_str_t data = {0};
        int r = sg_h1_chunked_decode(&s->dech, p, n, &used, &data);
        if (r < 0)
            return SG_EBADMSG;
        if (r == 1 && data.n > 0 && dec_append(s, data.p, data.n) < 0)
            return -ENOMEM;
        if (r == 2)
            s->done = true;
        p += used;
        n -= used;
        if (r == 0)
            break;
    }
    s->extra |= s->done && n > 0;
    return 0;
}

/* Reads and parses a response head; leftover body bytes go to the stream's decoder. Skips 1xx. *got says whether any
 * byte of a response arrived (a reused connection that answers nothing was closed by the server). */
static int read_head(kconn_t *cn, uint64_t deadline, bool head_req, sg_kstream_t *s, int *status, int *retry_after,
                     bool *got)
{
    *got = false;
    char *buf = malloc(HEAD_MAX);
    if (buf == NULL)
        return -ENOMEM;
    size_t len = 0;
    sg_h1_msg_t *msg = malloc(sizeof(*msg));
    if (msg == NULL) {
        free(buf);
        return -ENOMEM;
    }
    int rc;
    for (;;) {
        rc = sg_h1parse_response(buf, len, head_req, msg);
        if (rc > 0 && msg->status >= 100 && msg->status < 200) {
            memmove(buf, buf + rc, len - (size_t)rc);
            len -= (size_t)rc;
            continue;
        }
        if (rc != SG_EINCOMPLETE)
            break;
        if (len == HEAD_MAX) {
            rc = SG_EBADMSG;
            break;
        }
        ssize_t n = conn_read(cn, buf + len, HEAD_MAX - len, deadline);
        if (n <= 0) {
            rc = n == 0 ? -ECONNRESET : (int)n;
            break;
        }
        *got = true;
        len += (size_t)n;
    }
    if (rc > 0) {
        *status = msg->status;
        *retry_after = -1;
        const sg_h1_header_t *h = sg_h1parse_find(msg, "Retry-After", &(size_t){0});
        if (h != NULL && h->value.n > 0 && h->value.n < 10) {
            int v = 0;
            bool ok = true;
            for (size_t i = 0; i < h->value.n; i++) {
                char ch = h->value.p[i];
                ok &= ch >= '0' && ch <= '9';
                v = v * 10 + (ch - '0');
            }
            if (ok)
                *retry_after = v;
        }
        s->body = msg->body;
        s->keep = msg->keep_alive && msg->body != SG_H1_BODY_UNTIL_CLOSE;
        s->remaining = msg->content_length;
        sg_h1_chunked_init(&s->dech);
        if (s->body == SG_H1_BODY_NONE || (s->body == SG_H1_BODY_LENGTH && s->remaining == 0))
            s->done = true;
        size_t head_len = (size_t)rc;
        rc = 0;
        if (!s->done && len > head_len)
            rc = body_feed(s, buf + head_len, len - head_len);
        else if (len > head_len)
            s->extra = true;    /* bytes after a response without a body */
    }
    free(msg);
    free(buf);
    return rc;
}

static ssize_t stream_read(sg_kstream_t *s, char *buf, size_t cap, uint64_t deadline, bool block)
{
    char tmp[16384];
    for (;;) {
        if (s->dec_off < s->dec_len) {
            size_t n = SG_MIN(cap, s->dec_len - s->dec_off);
            memcpy(buf, s->dec + s->dec_off, n);
            s->dec_off += n;
            return (ssize_t)n;
        }
        if (s->error)
            return s->error;
        if (s->done)
            return 0;
        ssize_t n = block ? conn_read(&s->cn, tmp, sizeof(tmp), deadline) : conn_read_now(&s->cn, tmp, sizeof(tmp));
        if (n == SG_EAGAIN)
            return SG_EAGAIN;
        if (n == 0) {
            if (s->body == SG_H1_BODY_UNTIL_CLOSE)
                s->done = true;
            else
                s->error = -ECONNRESET; /* cut inside a framed body */
            continue;
        }
        if (n < 0) {
            s->error = (int)n;
            continue;
        }
        int rc = body_feed(s, tmp, (size_t)n);
        if (rc < 0)
            s->error = rc;
    }
}

/* Sends a request and reads its response head. keep: a kept-alive exchange (else the server is asked to close the
 * connection after the response: a watch); reuse: it may take an idle connection. *dead_reused says that the failure
 * was a reused connection that gave no response at all: the server had closed it. */
static int open_exchange(sg_kclient_t *c, const char *method, const char *path, const char *ctype, const char *body,
                         size_t body_len, bool keep, bool reuse, uint64_t deadline, sg_kstream_t **out, int *status,
                         int *retry_after, bool *dead_reused)
{
    *dead_reused = false;
    sg_kstream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    bool got = false;
    int rc = conn_get(c, reuse, deadline, &s->cn);
    if (rc == 0 && s->cn.reused)
        atomic_fetch_add_explicit(&c->reused, 1, memory_order_relaxed);
    if (rc == 0)
        rc = send_request(c, &s->cn, method, path, ctype, body, body_len, !keep, deadline);
    if (rc == 0)
        rc = read_head(&s->cn, deadline, strcmp(method, "HEAD") == 0, s, status, retry_after, &got);
    if (rc < 0) {
        *dead_reused = s->cn.reused && !got && rc != -ETIMEDOUT && rc != -ENOMEM && rc != -ENOSPC;
        sg_kstream_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* Reads the rest of the body into resp. */
static int read_all(sg_kstream_t *s, uint64_t deadline, sg_kresp_t *resp)
{
    size_t cap = 0;
    for (;;) {
        if (resp->len + 16384 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > SG_KCLIENT_MAX_BODY + 16384 + 1)
                return -EMSGSIZE;
            char *b = realloc(resp->body, ncap);
            if (b == NULL)
                return -ENOMEM;
            resp->body = b;
            cap = ncap;
        }
        ssize_t n = stream_read(s, resp->body + resp->len, cap - resp->len - 1, deadline, true);
        if (n == 0)
            break;
        if (n < 0)
            return (int)n;
        resp->len += (size_t)n;
        if (resp->len > SG_KCLIENT_MAX_BODY)
            return -EMSGSIZE;
    }
    if (resp->body != NULL)
        resp->body[resp->len] = '\0';
    return 0;
}

void sg_kresp_free(sg_kresp_t *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

/* Methods a server may see twice with no harm (RFC 9110 9.2.2). Our PUTs carry the resourceVersion read, so a PUT
 * that did land answers its repeat with 409 Conflict, which the writer reads again on. */
static bool idempotent(const char *method)
{
    return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "DELETE") == 0;
}

/* One exchange, kept alive. An idempotent request takes an idle connection when there is one; when that connection
 * turns out to have been closed by the server (no response at all), it is sent once more on a new connection. A
 * non-idempotent request (POST, PATCH) always opens a new connection, so it is never sent twice. */
static int do_once(sg_kclient_t *c, const char *method, const char *path, const char *ctype, const char *body,
                   size_t body_len, uint64_t deadline, sg_kresp_t *resp)
{
    bool idem = idempotent(method);
    for (int attempt = 0;; attempt++) {
        memset(resp, 0, sizeof(*resp));
        sg_kstream_t *s = NULL;
        bool dead_reused = false;
        atomic_fetch_add_explicit(&c->requests, 1, memory_order_relaxed);
        int rc = open_exchange(c, method, path, ctype, body, body_len, true, idem && attempt == 0, deadline, &s,
                               &resp->status, &resp->retry_after_s, &dead_reused);
        if (rc == 0)
            rc = read_all(s, deadline, resp);
        if (rc == 0 && s->keep && s->done && !s->extra && !s->error)
            conn_put(c, &s->cn);
        sg_kstream_close(s);
        if (rc < 0) {
            sg_kresp_free(resp);
            memset(resp, 0, sizeof(*resp));
            if (dead_reused && attempt == 0) {
                atomic_fetch_add_explicit(&c->retried, 1, memory_order_relaxed);
                continue;
            }
        }
        return rc;
    }
}

/* The rate limit: a token bucket of `burst` tokens filled at qps per second; a request without a token waits for the
 * one it reserved (as client-go's token-bucket limiter), at most until its deadline. */
static void throttle(sg_kclient_t *c, uint64_t deadline)
{
    pthread_mutex_lock(&c->lock);
    if (c->qps <= 0) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    uint64_t now = sg_now_ms();
    c->tokens += (double)(now - c->tokens_ms) * c->qps / 1000.0;
    if (c->tokens > c->burst)
        c->tokens = c->burst;
    c->tokens_ms = now;
    c->tokens -= 1.0;
    double wait = c->tokens < 0 ? -c->tokens * 1000.0 / c->qps : 0;
    pthread_mutex_unlock(&c->lock);
    uint64_t ms = (uint64_t)(wait + 0.999);
    if (ms == 0)
        return;
    ms = SG_MIN(ms, (uint64_t)remaining_ms(deadline));
    atomic_fetch_add_explicit(&c->throttled_ms, ms, memory_order_relaxed);
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int sg_kclient_do(sg_kclient_t *c, const char *method, const char *path, const char *content_type,
                  const char *body, size_t body_len, int timeout_ms, sg_kresp_t *resp)
{
    uint64_t deadline = sg_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    throttle(c, deadline);
    int rc = do_once(c, method, path, content_type, body, body_len, deadline, resp);
    if (rc == 0 && resp->status == 401 && c->conf.token_file != NULL) {
        /* The token may have rotated since we last read it: read it again and try once more. */
        sg_kresp_free(resp);
        sg_kclient_token_expire(c);
        rc = do_once(c, method, path, content_type, body, body_len, deadline, resp);
    }
    return rc;
}

int sg_kclient_stream(sg_kclient_t *c, const char *path, int timeout_ms, sg_kstream_t **out, sg_kresp_t *err_resp)
{
    uint64_t deadline = sg_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    memset(err_resp, 0, sizeof(*err_resp));
    *out = NULL;
    sg_kstream_t *s = NULL;
    bool dead_reused;
    int rc = open_exchange(c, "GET", path, NULL, NULL, 0, false, false, deadline, &s, &err_resp->status,
                           &err_resp->retry_after_s, &dead_reused);
    if (rc < 0)
        return rc;
    if (err_resp->status != 200) {
        if (err_resp->status == 401)
            sg_kclient_token_expire(c);
        rc = read_all(s, deadline, err_resp);
        sg_kstream_close(s);
        if (rc < 0) {
            int st = err_resp->status, ra = err_resp->retry_after_s;
            sg_kresp_free(err_resp);
            err_resp->status = st; /* the status still tells what happened */
            err_resp->retry_after_s = ra;
        }
        return -EPROTO;
    }
    *out = s;
    return 0;
}

int sg_kstream_fd(const sg_kstream_t *s)
{
    return s->cn.fd;
}

bool sg_kstream_has_pending(const sg_kstream_t *s)
{
    return s->dec_off < s->dec_len || s->done || s->error || (s->cn.ssl && SSL_pending(s->cn.ssl) > 0);
}

ssize_t sg_kstream_read(sg_kstream_t *s, char *buf, size_t cap)
{
    return stream_read(s, buf, cap, 0, false);
}

void sg_kstream_close(sg_kstream_t *s)
{
    if (s == NULL)
        return;
    conn_close(&s->cn);
    free(s->dec);
    free(s);
}

int sg_kclient_query_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                     ch == '.' || ch == '_' || ch == '~';
        if (o + (plain ? 1 : 3) >= cap)
            return -ENOSPC;
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (o >= cap)
        return -ENOSPC;
    out[o] = '\0';
    return (int)o;
}
