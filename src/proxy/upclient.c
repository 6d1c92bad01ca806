/* upclient.c: upstream HTTP/1.1 exchanges (over TLS when a BackendTLSPolicy applies) and the per-worker keep-alive
 * pool, which also keeps each endpoint's newest TLS sessions for resumption. */
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <time.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/tlsclient.h"
#include "proxy/upclient.h"
#include "proxy/upclient_int.h"

typedef enum up_state {
    UP_CONNECTING = 0,
    UP_HANDSHAKE,   /* TCP connected; TLS handshake under way */
    UP_HEAD,        /* connected; waiting for the response head */
    UP_BODY,        /* relaying the body */
    UP_DONE,        /* response complete; waiting for release */
    UP_IDLE,        /* in the pool */
    UP_DEAD,        /* failed or closed; waiting for release */
} up_state_t;

struct sg_upclient {
    sg_upkind_t kind;           /* first: h2 false (sg_upclient_h2.c's streams have it true) */
    sg_sock_t sock;
    sg_worker_t *worker;
    sg_uppool_t *pool;
    sg_list_t pool_link;
    sg_deferred_t reap_d;
    sg_timer_t timer;           /* connect timeout, or idle timeout in the pool */
    const sg_upclient_cbs_t *cbs;
    void *ctx;
    const sg_tls_client_t *tls; /* NULL: plaintext */
    sg_tls_session_hook_t hook; /* sessions the backend issues go to the pool */
    up_state_t state;
    bool head_request;
    bool req_done;
    bool keep_alive;
    bool reused;
    bool paused;
    bool above_wm;
    bool released;
    bool tls_failed;            /* the TLS handshake failed (why says how) */
    bool upgrade;               /* the request asks for an upgrade: a 101 switches to raw bytes both ways */
    bool shut_wr;               /* shut our sending side once the queue is flushed (a tunnel's client left) */
    uint8_t interim;            /* 1xx responses skipped in this exchange */
    bool interim_suspect;       /* one of them carried framing (or close): do not reuse the connection */
    sg_h1_body_t body;
    uint64_t body_left;
    sg_h1_chunked_t dec;
    const char *why;            /* after -EPROTO: what was wrong with the response (static string) */
};

/* 1xx responses skipped before the final one; more is a backend stalling in a loop, not Early Hints. */
#define MAX_INTERIM 16

static void up_read(sg_upclient_t *u);

static bool session_live(const SSL_SESSION *s)
{
    return s != NULL && (uint64_t)time(NULL) < (uint64_t)SSL_SESSION_get_time(s) + (uint64_t)SSL_SESSION_get_timeout(s);
}

/* True while p keeps a session worth offering (the newest has not expired). */
static bool pool_has_session(const sg_uppool_t *p)
{
    return p->nsessions > 0 && session_live(p->sessions[p->nsessions - 1]);
}

static void pool_drop_sessions(sg_uppool_t *p)
{
    while (p->nsessions > 0)
        SSL_SESSION_free(p->sessions[--p->nsessions]);
}

/* Takes ownership of s; the oldest goes when the pool keeps UP_SESSIONS already. */
void sg__uppool_push_session(sg_uppool_t *p, SSL_SESSION *s)
{
    if (p->nsessions == UP_SESSIONS) {
        SSL_SESSION_free(p->sessions[0]);
        memmove(p->sessions, p->sessions + 1, (UP_SESSIONS - 1) * sizeof(p->sessions[0]));
        p->nsessions--;
    }
    p->sessions[p->nsessions++] = s;
}

/*
 * The session for a new connection (the caller frees its reference); NULL when none. The newest is taken out of the
 * pool while others remain; the last one is offered again rather than not at all, because servers with stateless
 * tickets (most, Node's included) issue no new ticket on a resumed connection that closes at once, and accept a
 * ticket more than once; a server that does not simply makes a full handshake.
 */
SSL_SESSION *sg__uppool_take_session(sg_uppool_t *p)
{
    while (p != NULL && p->nsessions > 0) {
        SSL_SESSION *s = p->sessions[p->nsessions - 1];
        if (!session_live(s)) {
            p->nsessions--;
            SSL_SESSION_free(s);
            continue;
        }
        if (p->nsessions > 1) {
            p->nsessions--;
            return s;
        }
        /* A copy: OpenSSL marks the session of a connection freed without close_notify not resumable. */
        return SSL_SESSION_dup(s);
    }
    return NULL;
}

static void pool_remove(sg_worker_t *w, size_t i)
{
    sg_uppool_t *p = w->pools[i];
    w->pools[i] = w->pools[--w->npools];
    sg_loop_cancel(&p->h2dispatch_d);
    pool_drop_sessions(p);
    free(p);
}

/* A connection to p's address is gone; the last one takes p out of the worker's list, unless p keeps a TLS
 * session for the next connection (pool_for drops it once it has expired). */
void sg__uppool_unuse(sg_worker_t *w, sg_uppool_t *p)
{
    if (p == NULL || --p->users > 0 || pool_has_session(p))
        return;
    for (size_t i = 0; i < w->npools; i++) {
        if (w->pools[i] == p) {
            pool_remove(w, i);
            break;
        }
    }
}

static void up_reap(sg_deferred_t *d)
{
    sg_upclient_t *u = SG_CONTAINER_OF(d, sg_upclient_t, reap_d);
    sg__uppool_unuse(u->worker, u->pool);
    free(u);
}

static void up_close(sg_upclient_t *u)
{
    sg_loop_t *loop = &u->worker->loop;
    sg_timer_cancel(&loop->wheel, &u->timer);
    if (sg_list_linked(&u->pool_link)) {
        sg_list_remove(&u->pool_link);
        u->pool->nidle--;
    }
    sg_sock_close(&u->sock);
    sg_loop_reap_later(loop, &u->reap_d);
}

/* Fails the exchange: the user hears once, then must release. */
static void up_fail(sg_upclient_t *u, int err)
{
    if (err != -EPROTO && err != -EKEYREJECTED)
        u->why = NULL;
    if (u->state == UP_DEAD || u->state == UP_DONE)
        return;
    u->state = UP_DEAD;
    sg_timer_cancel(&u->worker->loop.wheel, &u->timer);
    sg_sock_close(&u->sock);
    if (!u->released && u->cbs)
        u->cbs->on_error(u->ctx, err);
}

/*
 * The backend issued a session (TLS 1.3: after the handshake, maybe later): the pool keeps it. A copy is kept because
 * OpenSSL marks a connection's own session not resumable when the connection is freed without a close_notify, which
 * is how most keep-alive connections end (the backend's idle timeout).
 */
static void session_cb(sg_tls_session_hook_t *h, SSL_SESSION *sess)
{
    sg_upclient_t *u = SG_CONTAINER_OF(h, sg_upclient_t, hook);
    SSL_SESSION *copy = u->pool != NULL ? SSL_SESSION_dup(sess) : NULL;
    SSL_SESSION_free(sess);
    if (copy == NULL)
        return;
    sg__uppool_push_session(u->pool, copy);
}

static int update(sg_upclient_t *u)
{
    int rc = sg_sock_update(&u->sock);
    if (rc < 0)
        up_fail(u, rc);
    return rc;
}

static void up_flush(sg_upclient_t *u)
{
    if (u->state == UP_CONNECTING || u->state == UP_HANDSHAKE || u->state == UP_DEAD || u->sock.w.fd < 0)
        return;
    int rc = sg_sock_flush(&u->sock);
    if (rc < 0 && rc != SG_EAGAIN) {
        up_fail(u, rc);
        return;
    }
    if (rc == 0 && u->shut_wr && u->sock.out.bytes == 0) {
        u->shut_wr = false;
        if (u->sock.ssl != NULL) {
            ERR_clear_error();
            SSL_shutdown(u->sock.ssl); /* close_notify, best effort */
        }
        shutdown(u->sock.w.fd, SHUT_WR);
    }
    if (u->above_wm && u->sock.out.bytes <= u->worker->settings->out_low_wm) {
        u->above_wm = false;
        if (!u->released && u->cbs->on_drained)
            u->cbs->on_drained(u->ctx);
    }
}

static void flush_cb(sg_deferred_t *d)
{
    up_flush(SG_CONTAINER_OF(d, sg_upclient_t, sock.flush_d));
}

static void finish(sg_upclient_t *u)
{
    u->state = UP_DONE;
    u->sock.reading = false;
    u->sock.rdhup = false;
    if (update(u) < 0)
        return;
    if (!u->released)
        u->cbs->on_end(u->ctx);
}

/* Delivers body bytes from the input buffer. */
static void deliver(sg_upclient_t *u)
{
    while (u->state == UP_BODY && !u->paused && u->sock.in != NULL && !u->released) {
        sg_chunk_t *in = u->sock.in;
        const char *p = in->data + in->rpos;
        size_t avail = sg_chunk_len(in);

        if (u->body == SG_H1_BODY_CHUNKED) {
            size_t used = 0;
            sg_str_t data = {0};
            int d = sg_h1_chunked_decode(&u->dec, p, avail, &used, &data);
            if (d < 0) {
                u->why = u->dec.error;
                up_fail(u, -EPROTO);
                return;
            }
            /* The slice points into the chunk: consume only after the callback has used it. */
            if (d == 1)
                u->cbs->on_body(u->ctx, data.p, data.n);
            if (u->sock.in == in)
                sg_sock_consume(&u->sock, used);
            if (u->released || u->state != UP_BODY)
                return;
            if (d == 2) {
                /* Bytes after the body on a response would be a protocol error: do not reuse. */
                if (u->sock.in != NULL)
                    u->keep_alive = false;
                finish(u);
                return;
            }
            if (d == 0 && used == 0)
                return;
        } else {
            size_t k = avail;
            if (u->body == SG_H1_BODY_LENGTH)
                k = (size_t)SG_MIN((uint64_t)avail, u->body_left);
            u->body_left -= u->body == SG_H1_BODY_LENGTH ? k : 0;
            /* Consume before the callback: the user may pause or release inside it. */
            char *copy = in->data + in->rpos;
            in->rpos += (uint32_t)k;
            bool empty = in->rpos >= in->wpos;
            if (k > 0)
                u->cbs->on_body(u->ctx, copy, k);
            if (empty && u->sock.in == in) {
                sg_pool_put(&u->worker->loop.pool, in);
                u->sock.in = NULL;
            }
            if (u->body == SG_H1_BODY_LENGTH && u->body_left == 0 && u->state == UP_BODY) {
                if (u->sock.in != NULL)
                    u->keep_alive = false;
                finish(u);
                return;
            }
            if (k == 0)
                return;
        }
    }
}

static void parse_head(sg_upclient_t *u)
{
    while (u->state == UP_HEAD && u->sock.in != NULL) {
        sg_chunk_t *in = u->sock.in;
        sg_h1_msg_t *msg = u->worker->msg;
        int rc = sg_h1parse_response(in->data + in->rpos, sg_chunk_len(in), u->head_request, msg);
        if (rc == SG_EINCOMPLETE) {
            if (sg_chunk_len(in) >= SG_CHUNK_SIZE) {
                u->why = "response head larger than the input buffer";
                up_fail(u, -EPROTO);
            }
            return;
        }
        if (rc < 0) {
            u->why = msg->error ? msg->error : "malformed response head";
            up_fail(u, -EPROTO);
            return;
        }
        if (msg->status == 101 && u->upgrade) {
            /* The switch asked for (sg_upclient_expect_upgrade): from here on, bytes until close, never reused. */
            u->body = SG_H1_BODY_UNTIL_CLOSE;
            u->keep_alive = false;
            u->state = UP_BODY;
            u->sock.w.interactive = true; /* a tunnel's relay: a full batch of these does not pause the loop */
            u->cbs->on_head(u->ctx, msg);
            sg_sock_consume(&u->sock, (size_t)rc);
            if (!u->released && u->state == UP_BODY)
                deliver(u);
            return;
        }
        if (msg->status == 101) {
            /* Upgrade was not forwarded, so a switch of protocols was not asked for: what follows is not HTTP. */
            u->why = "101 Switching Protocols to a request that asked for no upgrade";
            up_fail(u, -EPROTO);
            return;
        }
        if (msg->status >= 100 && msg->status < 200) {
            /* Interim responses are not relayed (we never forward Expect); a few are skipped, not a stream. */
            if (++u->interim > MAX_INTERIM) {
                u->why = "too many 1xx interim responses";
                up_fail(u, -EPROTO);
                return;
            }
            if (!msg->keep_alive)
                u->interim_suspect = true;
            sg_sock_consume(&u->sock, (size_t)rc);
            continue;
        }
        u->body = msg->body;
        u->body_left = msg->body == SG_H1_BODY_LENGTH ? msg->content_length : 0;
        u->keep_alive = msg->keep_alive && msg->body != SG_H1_BODY_UNTIL_CLOSE && !u->interim_suspect;
        sg_h1_chunked_init(&u->dec);
        u->state = UP_BODY;
        u->cbs->on_head(u->ctx, msg);
        sg_sock_consume(&u->sock, (size_t)rc);
        if (u->released || u->state != UP_BODY)
            return;
        if (u->body == SG_H1_BODY_NONE || (u->body == SG_H1_BODY_LENGTH && u->body_left == 0)) {
            if (u->sock.in != NULL)
                u->keep_alive = false;
            finish(u);
            return;
        }
        deliver(u);
        return;
    }
}

static void up_read(sg_upclient_t *u)
{
    for (int round = 0; round < 4; round++) {
        if (u->state == UP_DEAD || u->released || u->paused || u->state == UP_DONE)
            return;
        ssize_t n = sg_sock_read(&u->sock);
        if (n == SG_EAGAIN)
            return;
        if (n == -ENOBUFS) {
            u->why = "response head larger than the input buffer";
            up_fail(u, -EPROTO);
            return;
        }
        if (n == 0) {
            if (u->state == UP_BODY && u->body == SG_H1_BODY_UNTIL_CLOSE) {
                u->keep_alive = false;
                finish(u);
                return;
            }
            up_fail(u, -ECONNRESET);
            return;
        }
        if (n < 0) {
            up_fail(u, (int)n);
            return;
        }
        if (u->state == UP_HEAD)
            parse_head(u);
        else
            deliver(u);
        if ((size_t)n < SG_CHUNK_SIZE / 2)
            return;
    }
}

static void ready(sg_upclient_t *u);

/* One step of the TLS handshake, on the worker's loop; the connect timeout covers it too. A failure is never
 * retried in plaintext: the exchange fails (502) with the reason. */
static void handshake(sg_upclient_t *u)
{
    bool want_write = false;
    int reason = SG_UPTLS_HANDSHAKE;
    const char *why = NULL;
    int rc = sg_tls_client_handshake(u->sock.ssl, &want_write, &reason, &why);
    if (rc == SG_EAGAIN) {
        u->sock.reading = !want_write;
        u->sock.write_blocked = want_write;
        u->sock.rdhup = false;
        update(u);
        return;
    }
    sg_metrics_t *m = &u->worker->metrics;
    if (rc < 0) {
        sg_counter_add(&m->upstream_tls_errors[reason], 1);
        u->tls_failed = true;
        u->why = why;
        up_fail(u, -EKEYREJECTED);
        return;
    }
    bool resumed = sg_tls_client_resumed(u->sock.ssl);
    sg_counter_add(&m->upstream_tls_handshakes[resumed ? 1 : 0], 1);
    /* TLS 1.2 resumes the same session again and issues no new one: it goes back to the pool. */
    if (resumed && u->pool != NULL && SSL_version(u->sock.ssl) < TLS1_3_VERSION) {
        SSL_SESSION *copy = SSL_SESSION_dup(SSL_get0_session(u->sock.ssl));
        if (copy != NULL)
            sg__uppool_push_session(u->pool, copy);
    }
    u->sock.write_blocked = false;
    ready(u);
}

static void connected(sg_upclient_t *u)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(u->sock.w.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr != 0) {
        up_fail(u, -soerr);
        return;
    }
    if (u->tls != NULL) {
        SSL_SESSION *sess = sg__uppool_take_session(u->pool);
        u->sock.ssl = sg_tls_client_ssl(u->tls, u->sock.w.fd, sess, &u->hook);
        SSL_SESSION_free(sess); /* the SSL holds its own reference */
        if (u->sock.ssl == NULL) {
            up_fail(u, -ENOMEM);
            return;
        }
        u->state = UP_HANDSHAKE;
        handshake(u);
        return;
    }
    ready(u);
}

/* Connected (and, over TLS, the handshake done): the request goes out; the connect timeout is over. */
static void ready(sg_upclient_t *u)
{
    sg_timer_cancel(&u->worker->loop.wheel, &u->timer);
    u->state = UP_HEAD;
    u->sock.reading = !u->paused; /* paused while connecting (the client side's budget): read nothing yet */
    u->sock.rdhup = false;
    u->sock.write_blocked = false;
    if (update(u) < 0)
        return;
    up_flush(u);
}

/* Over TLS, bytes on an idle connection may be a session ticket (TLS 1.3 sends them after the handshake), which
 * SSL_read takes in without returning data: the connection is still good. */
static bool tls_idle_ok(sg_upclient_t *u)
{
    char b;
    ERR_clear_error();
    int n = SSL_read(u->sock.ssl, &b, 1);
    return n <= 0 && SSL_get_error(u->sock.ssl, n) == SSL_ERROR_WANT_READ;
}

static void idle_event(sg_upclient_t *u, uint32_t events)
{
    /* An idle pooled connection that becomes readable was closed (or misbehaves): drop it. */
    if (u->sock.ssl != NULL && !(events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) && tls_idle_ok(u))
        return;
    up_close(u);
}

static void io_cb(sg_watcher_t *w, uint32_t events)
{
    sg_upclient_t *u = SG_CONTAINER_OF(w, sg_upclient_t, sock.w);

    if (u->state == UP_IDLE) {
        idle_event(u, events);
        return;
    }
    if (u->state == UP_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connected(u);
        return;
    }
    if (u->state == UP_HANDSHAKE) {
        handshake(u);
        return;
    }
    if (events & EPOLLOUT) {
        up_flush(u);
        if (u->state == UP_DEAD)
            return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        up_read(u);
}

static void timer_cb(sg_timer_t *t)
{
    sg_upclient_t *u = SG_CONTAINER_OF(t, sg_upclient_t, timer);
    if (u->state == UP_IDLE) {
        up_close(u);
        return;
    }
    if (u->state == UP_CONNECTING || u->state == UP_HANDSHAKE)
        up_fail(u, -ETIMEDOUT);
}

/* The pool of addr under tls (NULL: plain). Unused pools whose session has expired are dropped on the way. */
static sg_uppool_t *pool_for(sg_worker_t *w, const struct sockaddr *addr, socklen_t alen, const sg_tls_client_t *tls)
{
    sg_uppool_t *found = NULL;
    for (size_t i = 0; i < w->npools;) {
        sg_uppool_t *p = w->pools[i];
        if (p->users == 0 && !pool_has_session(p)) {
            pool_remove(w, i);
            continue;
        }
        if (found == NULL && p->addrlen == alen && memcmp(&p->addr, addr, alen) == 0 && p->tls == (tls != NULL) &&
            (tls == NULL || memcmp(p->tls_id, sg_tls_client_id(tls), SG_TLS_CLIENT_ID_LEN) == 0))
            found = p;
        i++;
    }
    return found;
}

sg_uppool_t *sg__uppool_get(sg_worker_t *w, const struct sockaddr *addr, socklen_t alen,
                                    const sg_tls_client_t *tls)
{
    sg_uppool_t *p = pool_for(w, addr, alen, tls);
    if (p != NULL)
        return p;
    sg_uppool_t **np = realloc(w->pools, (w->npools + 1) * sizeof(*np));
    if (np == NULL)
        return NULL;
    w->pools = np;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    memcpy(&p->addr, addr, alen);
    p->addrlen = alen;
    p->tls = tls != NULL;
    if (tls != NULL)
        memcpy(p->tls_id, sg_tls_client_id(tls), SG_TLS_CLIENT_ID_LEN);
    sg_list_init(&p->idle);
    p->worker = w;
    sg_list_init(&p->h2sess);
    sg_list_init(&p->h2wait);
    sg_deferred_init(&p->h2dispatch_d, NULL); /* upclient_h2.c sets its callback when it first uses the pool */
    np[w->npools++] = p;
    return p;
}

static bool still_open(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

sg_upclient_t *sg_upclient_open(sg_worker_t *w, const struct sockaddr *addr, socklen_t alen,
                                const struct sg_tls_client *tls, int proto, const sg_upclient_cbs_t *cbs, void *ctx,
                                bool head_request, int *err)
{
    sg_uppool_t *p = pool_for(w, addr, alen, tls);
    sg_loop_t *loop = &w->loop;

    /* Over TLS an HTTP/2 port falls back to HTTP/1.1 where the backend's ALPN chose it. */
    if (proto == SG_UPCLIENT_H2 && (tls == NULL || p == NULL || !p->no_h2))
        return sg__uph2_open(w, addr, alen, tls, cbs, ctx, head_request, err);

    /* Most recently used first: the one least likely to have hit the server's idle timeout. */
    while (p != NULL && p->nidle > 0) {
        sg_upclient_t *u = SG_CONTAINER_OF(p->idle.prev, sg_upclient_t, pool_link);
        sg_list_remove(&u->pool_link);
        p->nidle--;
        if (u->sock.ssl != NULL ? !tls_idle_ok(u) : !still_open(u->sock.w.fd)) {
            up_close(u);
            continue;
        }
        sg_timer_cancel(&loop->wheel, &u->timer);
        u->cbs = cbs;
        u->ctx = ctx;
        u->state = UP_HEAD;
        u->head_request = head_request;
        u->req_done = false;
        u->released = false;
        u->paused = false;
        u->above_wm = false;
        u->reused = true;
        u->interim = 0;
        u->interim_suspect = false;
        u->upgrade = false;
        u->shut_wr = false;
        u->why = NULL;
        u->sock.reading = true;
        u->sock.rdhup = false;
        if (sg_sock_update(&u->sock) < 0) {
            up_close(u);
            continue;
        }
        return u;
    }

    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sg_upclient_t *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    u->pool = sg__uppool_get(w, addr, alen, tls); /* NULL (out of memory): the connection is just not pooled */
    if (u->pool != NULL)
        u->pool->users++;
    u->worker = w;
    u->cbs = cbs;
    u->ctx = ctx;
    u->tls = tls;
    u->hook.fn = session_cb;
    u->head_request = head_request;
    sg_list_init(&u->pool_link);
    sg_deferred_init(&u->reap_d, up_reap);
    sg_timer_init(&u->timer, timer_cb);
    sg_sock_init(&u->sock, loop, fd, io_cb, flush_cb);
    int rc = connect(fd, addr, alen);
    if (rc < 0 && errno != EINPROGRESS) {
        /* Refused at once (loopback): report through the callback, like any other failure, but not
         * from inside this call. */
        *err = -errno;
        close(fd);
        sg__uppool_unuse(w, u->pool);
        free(u);
        return NULL;
    }
    u->state = UP_CONNECTING;
    u->sock.write_blocked = true;
    if (sg_sock_update(&u->sock) < 0) {
        *err = -errno;
        sg_sock_close(&u->sock);
        sg__uppool_unuse(w, u->pool);
        free(u);
        return NULL;
    }
    if (w->settings->connect_timeout_ms > 0)
        sg_timer_arm(&loop->wheel, &u->timer, loop->now_ms + (uint64_t)w->settings->connect_timeout_ms);
    return u;
}

int sg_upclient_send(sg_upclient_t *u, const struct iovec *iov, int n)
{
    if (u->kind.h2)
        return sg__uph2_send(u, iov, n);
    if (u->state == UP_DEAD)
        return -EPIPE;
    int rc = sg_sock_writev(&u->sock, iov, n);
    if (rc < 0)
        return rc;
    if (u->sock.out.bytes > u->worker->settings->out_high_wm) {
        u->above_wm = true;
        return SG_EAGAIN;
    }
    return 0;
}

void sg_upclient_expect_upgrade(sg_upclient_t *u)
{
    u->upgrade = true;
    u->keep_alive = false;
}

void sg_upclient_shutdown_write(sg_upclient_t *u)
{
    if (u->state == UP_DEAD)
        return;
    u->shut_wr = true;
    if (u->state != UP_CONNECTING && u->state != UP_HANDSHAKE)
        sg_loop_flush_later(&u->worker->loop, &u->sock.flush_d);
}

void sg_upclient_request_done(sg_upclient_t *u)
{
    if (u->kind.h2) {
        sg__uph2_request_done(u);
        return;
    }
    u->req_done = true;
}

void sg_upclient_pause(sg_upclient_t *u, bool paused)
{
    if (u->kind.h2) {
        sg__uph2_pause(u, paused);
        return;
    }
    if (u->paused == paused || u->state == UP_DEAD)
        return;
    u->paused = paused;
    if (u->state != UP_HEAD && u->state != UP_BODY)
        return;
    u->sock.reading = !paused;
    if (update(u) < 0)
        return;
    if (!paused && u->sock.in != NULL) {
        if (u->state == UP_HEAD)
            parse_head(u);
        else
            deliver(u);
    }
}

int sg_upclient_move(sg_upclient_t *u, const struct sockaddr *addr, socklen_t alen)
{
    return u->kind.h2 ? sg__uph2_move(u, addr, alen) : -ENOTSUP;
}

bool sg_upclient_reused(const sg_upclient_t *u)
{
    if (u->kind.h2)
        return sg__uph2_reused(u);
    return u->reused;
}

const char *sg_upclient_error(const sg_upclient_t *u)
{
    if (u->kind.h2)
        return sg__uph2_error(u);
    return u->why;
}

const char *sg_upclient_tls_error(const sg_upclient_t *u)
{
    if (u->kind.h2)
        return sg__uph2_tls_error(u);
    return u->tls_failed ? u->why : NULL;
}

void sg_upclient_release(sg_upclient_t *u)
{
    if (u->kind.h2) {
        sg__uph2_release(u);
        return;
    }
    sg_worker_t *w = u->worker;
    u->released = true;
    u->cbs = NULL;
    u->ctx = NULL;
    if (u->state == UP_DEAD) {
        sg_loop_reap_later(&w->loop, &u->reap_d);
        return;
    }
    if (u->state == UP_DONE && u->keep_alive && u->req_done && u->sock.out.bytes == 0 && u->sock.in == NULL
        && u->pool != NULL && u->pool->nidle < w->settings->pool_max_idle
        && !w->draining && !atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        /* Watch it: readable while idle means the server closed it (or broke the protocol). */
        u->state = UP_IDLE;
        u->sock.reading = true;
        u->sock.rdhup = true;
        if (sg_sock_update(&u->sock) == 0) {
            sg_list_insert_tail(&u->pool->idle, &u->pool_link);
            u->pool->nidle++;
            sg_timer_arm(&w->loop.wheel, &u->timer, w->loop.now_ms + (uint64_t)w->settings->upstream_idle_ms);
            return;
        }
    }
    up_close(u);
}

void sg_upclient_pool_close_all(sg_worker_t *w)
{
    for (size_t i = 0; i < w->npools; i++) {
        sg__uph2_close_idle(w, w->pools[i]);
        sg_list_t *n;
        while ((n = sg_list_pop(&w->pools[i]->idle)) != NULL) {
            sg_upclient_t *u = SG_CONTAINER_OF(n, sg_upclient_t, pool_link);
            w->pools[i]->nidle--;
            up_close(u);
        }
        pool_drop_sessions(w->pools[i]);
    }
}
