/* conn.c: downstream connections: accept, TLS handshake, protocol choice, flush, watermarks, close -> reap. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http/conn.h"
#include "net/hspool.h"
#include "core/log.h"
#include "net/tls.h"

#define ACCEPT_BATCH 64

/* ---- downstream connections ---- */

static void conn_reap(sg_deferred_t *d)
{
    sg_conn_t *c = SG_CONTAINER_OF(d, sg_conn_t, reap_d);
    free(c->hs);
    free(c->client_cert);
    free(c);
}

/* A handshake step handed to the pool (hspool.h). */
struct hs_ctx {
    sg_hs_job_t job;
    sg_conn_t *c;
};

void sg_conn_close(sg_conn_t *c)
{
    if (c->closed)
        return;
    c->closed = true;
    sg_timer_cancel(&c->worker->loop.wheel, &c->timer);
    sg_loop_cancel(&c->tls_read_d);
    if (c->hs_busy) {
        /* The pool is using the SSL (and the config its SNI callback reads): it is released when the step
         * comes back (sg_conn_hs_collect); the connection is gone from the worker's view now. */
        sg_list_remove(&c->link);
        c->worker->nconns--;
        sg_counter_sub(&c->lm->conns_active[c->mproto], 1);
        return;
    }
    if (c->proto && c->proto->on_close)
        c->proto->on_close(c);
    sg_sock_close(&c->sock);
    sg_list_remove(&c->link);
    c->worker->nconns--;
    sg_counter_sub(&c->lm->conns_active[c->mproto], 1);
    sg_loop_reap_later(&c->worker->loop, &c->reap_d);
}

/*
 * Lingering close. Closing a socket whose receive queue holds unread bytes makes the kernel send RST, and a
 * client that gets RST may drop our last bytes unread (the error response, the GOAWAY). So after the final
 * flush and shutdown(SHUT_WR) the protocol is let go, and the socket stays open only to read and discard
 * what the client still sends, until its EOF, SG_LINGER_MS or SG_LINGER_MAX_BYTES (nginx's lingering_close).
 */
static void linger(sg_conn_t *c)
{
    if (c->proto && c->proto->on_close)
        c->proto->on_close(c);
    c->proto = NULL;
    c->proto_data = NULL;
    sg_loop_cancel(&c->tls_read_d);
    c->lingering = true;
    c->stalled = false;
    c->sock.reading = true;
    c->sock.write_blocked = false;
    c->sock.rdhup = true;
    if (sg_sock_update(&c->sock) < 0) {
        sg_conn_close(c);
        return;
    }
    sg_timer_arm(&c->worker->loop.wheel, &c->timer, c->worker->loop.now_ms + SG_LINGER_MS);
}

static void linger_read(sg_conn_t *c)
{
    char buf[16384];
    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(c->sock.w.fd, buf, sizeof(buf), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0 || (c->linger_bytes += (uint32_t)n) > SG_LINGER_MAX_BYTES) {
            sg_conn_close(c);
            return;
        }
    }
}

static void conn_flush_cb(sg_deferred_t *d)
{
    sg_conn_t *c = SG_CONTAINER_OF(d, sg_conn_t, sock.flush_d);
    if (c->closed)
        return;
    size_t before = c->sock.out.bytes;
    int rc = sg_sock_flush(&c->sock);
    bool progressed = c->sock.out.bytes < before;
    sg_counter_add(&c->worker->metrics.bytes_out, before - c->sock.out.bytes);
    if (rc < 0 && rc != SG_EAGAIN) {
        sg_conn_close(c);
        return;
    }
    /* Slow consumer: a client with bytes queued must take some within the stall limit. Each flush that
     * makes progress restarts the clock; a drained queue stops it. */
    int64_t stall = c->worker->settings->stall_timeout_ms;
    if (rc == SG_EAGAIN && stall > 0 && (!c->stalled || progressed)) {
        c->stalled = true;
        sg_timer_arm(&c->worker->loop.wheel, &c->timer, c->worker->loop.now_ms + (uint64_t)stall);
    } else if (rc == 0 && c->stalled) {
        c->stalled = false;
        sg_timer_cancel(&c->worker->loop.wheel, &c->timer);
    }
    if (rc == 0 && c->closing) {
        /* Lingering close: stop writing, let the client read our last response before the FIN/RST. */
        if (c->sock.ssl != NULL && !c->handshaking) {
            ERR_clear_error();
            SSL_shutdown(c->sock.ssl); /* close_notify, best effort: the socket is non-blocking */
        }
        shutdown(c->sock.w.fd, SHUT_WR);
        linger(c);
        return;
    }
    if (c->above_wm && c->sock.out.bytes <= c->worker->settings->out_low_wm) {
        c->above_wm = false;
        if (c->proto && c->proto->on_drained)
            c->proto->on_drained(c);
    }
}

int sg_conn_send(sg_conn_t *c, const struct iovec *iov, int n)
{
    if (c->closed)
        return -EPIPE;
    int rc = sg_sock_writev(&c->sock, iov, n);
    if (rc < 0)
        return rc;
    if (c->sock.out.bytes > c->worker->settings->out_high_wm) {
        c->above_wm = true;
        return SG_EAGAIN;
    }
    return 0;
}

int sg_conn_send_ref(sg_conn_t *c, sg_rbuf_t *b)
{
    if (c->closed)
        return -EPIPE;
    int rc = sg_sock_write_ref(&c->sock, b);
    if (rc < 0)
        return rc;
    if (c->sock.out.bytes > c->worker->settings->out_high_wm) {
        c->above_wm = true;
        return SG_EAGAIN;
    }
    return 0;
}

void sg_conn_close_after_flush(sg_conn_t *c)
{
    if (c->closed)
        return;
    c->closing = true;
    c->sock.reading = false;
    sg_sock_update(&c->sock);
    sg_loop_flush_later(&c->worker->loop, &c->sock.flush_d);
}

/* Bytes OpenSSL already decrypted (a record larger than the room we read into) raise no epoll event:
 * read them before the loop sleeps. */
static void tls_check_pending(sg_conn_t *c)
{
    if (c->sock.ssl != NULL && !c->closed && !c->handshaking && c->sock.reading && SSL_pending(c->sock.ssl) > 0)
        sg_loop_flush_later(&c->worker->loop, &c->tls_read_d);
}

static void tls_read_cb(sg_deferred_t *d)
{
    sg_conn_t *c = SG_CONTAINER_OF(d, sg_conn_t, tls_read_d);
    if (c->closed || c->lingering || !c->sock.reading)
        return;
    /* No re-check here: a protocol that cannot take the bytes yet would spin the flush list. */
    c->proto->on_readable(c);
}

void sg_conn_set_reading(sg_conn_t *c, bool on)
{
    if (c->closed || c->sock.reading == on)
        return;
    c->sock.reading = on;
    if (sg_sock_update(&c->sock) < 0) {
        sg_conn_close(c);
        return;
    }
    tls_check_pending(c);
}

static void tls_done(sg_conn_t *c)
{
    if (c->tls_cfg != NULL) {
        sg_config_unref(c->tls_cfg);
        c->tls_cfg = NULL;
    }
}

/* Acts on one handshake step's result; on success ALPN picks the protocol. */
static void tls_step_done(sg_conn_t *c, int r)
{
    if (r == SG_HS_WANT_READ || r == SG_HS_WANT_WRITE) {
        c->sock.write_blocked = r == SG_HS_WANT_WRITE;
        if (sg_sock_update(&c->sock) < 0) /* back into epoll after a pool step; else a no-op if unchanged */
            sg_conn_close(c);
        return;
    }
    if (r != SG_HS_DONE) {
        /* Failed handshakes are the client's problem (scanners, wrong protocol, old TLS): no log noise. */
        sg_counter_add(&c->worker->metrics.tls_handshakes[1], 1);
        sg_conn_close(c);
        return;
    }
    c->handshaking = false;
    sg_counter_add(&c->worker->metrics.tls_handshakes[0], 1);
    /* Read the client's certificate once, here: every request of the connection carries what it proved. */
    char id[2048];
    c->client_cert_state = (uint8_t)sg_tls_client_info(c->sock.ssl, id, sizeof(id));
    if (c->client_cert_state != SG_TLS_CLIENT_NONE && (c->client_cert = strdup(id)) == NULL) {
        sg_conn_close(c);
        return;
    }
    free(c->hs);
    c->hs = NULL;
    tls_done(c);
    sg_timer_cancel(&c->worker->loop.wheel, &c->timer);
    c->sock.write_blocked = false;
    if (sg_sock_update(&c->sock) < 0) { /* back into epoll after a pool step; else a no-op if unchanged */
        sg_conn_close(c);
        return;
    }
    int arc = sg_tls_is_h2(c->sock.ssl) ? c->worker->protos->h2(c) : c->worker->protos->h1(c);
    if (arc < 0) {
        sg_conn_close(c);
        return;
    }
    /* Request bytes may have come with the handshake's last flight, already inside OpenSSL's buffers. */
    if (!c->closed && c->sock.reading)
        c->proto->on_readable(c);
}

/* Pool thread: hands the finished step to the connection's worker. */
static void hs_complete(sg_hs_job_t *j)
{
    sg_worker_t *w = SG_CONTAINER_OF(j, struct hs_ctx, job)->c->worker;
    pthread_mutex_lock(&w->hs_lock);
    sg_list_insert_tail(&w->hs_done, &j->link);
    pthread_mutex_unlock(&w->hs_lock);
    sg_loop_wake(&w->loop);
}

/* Runs the next handshake step: on the pool when there is one (the socket leaves epoll until the step is
 * back, so the loop never waits on the key exchange and signature), else here. */
static void tls_handshake(sg_conn_t *c)
{
    if (c->hs == NULL) {
        tls_step_done(c, sg_hs_step(c->sock.ssl));
        return;
    }
    if (sg_loop_watch(c->sock.loop, &c->sock.w, 0) < 0) {
        sg_conn_close(c);
        return;
    }
    c->hs_busy = true;
    c->worker->hs_inflight++;
    sg_hspool_submit(c->worker->hspool, &c->hs->job);
}

void sg_conn_hs_collect(sg_worker_t *w)
{
    sg_list_t done;
    sg_list_init(&done);
    pthread_mutex_lock(&w->hs_lock);
    while (!sg_list_empty(&w->hs_done))
        sg_list_insert_tail(&done, sg_list_pop(&w->hs_done));
    pthread_mutex_unlock(&w->hs_lock);
    sg_list_t *n;
    while ((n = sg_list_pop(&done)) != NULL) {
        struct hs_ctx *x = SG_CONTAINER_OF(n, struct hs_ctx, job.link);
        sg_conn_t *c = x->c;
        w->hs_inflight--;
        c->hs_busy = false;
        if (c->closed) {
            /* Closed while the step ran: finish what sg_conn_close left. */
            if (c->proto && c->proto->on_close)
                c->proto->on_close(c);
            sg_sock_close(&c->sock);
            sg_loop_reap_later(&w->loop, &c->reap_d);
            continue;
        }
        tls_step_done(c, x->job.result);
    }
}

static void tls_hs_readable(sg_conn_t *c)
{
    tls_handshake(c);
}

static void tls_hs_hup(sg_conn_t *c)
{
    sg_conn_close(c);
}

static void tls_hs_timeout(sg_conn_t *c)
{
    sg_counter_add(&c->worker->metrics.tls_handshakes[1], 1);
    sg_conn_close(c);
}

static void tls_hs_close(sg_conn_t *c)
{
    tls_done(c);
}

static const sg_conn_proto_t tls_hs_proto = {
    .on_readable = tls_hs_readable,
    .on_hup = tls_hs_hup,
    .on_timeout = tls_hs_timeout,
    .on_close = tls_hs_close,
};

/* The TLS contexts for a listening port in the worker's current generation, or NULL (plain). */
static sg_tls_server_t *tls_for_port(sg_worker_t *w, uint16_t port)
{
    if (w->cfg == NULL)
        return NULL;
    for (size_t i = 0; i < w->cfg->nbinds; i++)
        if (w->cfg->binds[i].port == port && w->cfg->binds[i].protocol == SG_PROTO_HTTPS)
            return w->cfg->binds[i].tls;
    return NULL;
}

static void conn_io_cb(sg_watcher_t *w, uint32_t events)
{
    sg_conn_t *c = SG_CONTAINER_OF(w, sg_conn_t, sock.w);

    if (c->lingering) {
        linger_read(c);
        return;
    }
    if (c->handshaking) {
        if (events & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP))
            tls_handshake(c);
        else if (events & EPOLLRDHUP)
            sg_conn_close(c);
        return;
    }

    if (events & EPOLLOUT) {
        conn_flush_cb(&c->sock.flush_d);
        if (c->closed)
            return;
    }
    /* An error goes to the read that reports it, but only while the protocol reads: one that is not reading (its
     * request is in, the response under way) would ignore it, and EPOLLERR is level-triggered: a client that reset
     * its connection was then reported on every loop iteration and its stream (a quiet SSE subscriber) never ended.
     * It goes to on_hup instead, as a hang-up does. */
    if ((events & EPOLLIN) || ((events & EPOLLERR) && c->sock.reading)) {
        c->proto->on_readable(c);
        tls_check_pending(c);
        return;
    }
    /* The protocol decides: an SSE stream ends at once, an ordinary request may still be answered. */
    if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        c->proto->on_hup(c);
}

static void conn_timer_cb(sg_timer_t *t)
{
    sg_conn_t *c = SG_CONTAINER_OF(t, sg_conn_t, timer);
    if (c->closed)
        return;
    if (c->lingering) {
        sg_conn_close(c);
        return;
    }
    if (c->stalled) {
        char peer[64];
        sg_conn_peer_str(c, peer, sizeof(peer));
        sg_log_info("closing %s: slow consumer, %zu bytes unread for %lld ms", peer, c->sock.out.bytes,
                    (long long)c->worker->settings->stall_timeout_ms);
        sg_counter_add(&c->worker->metrics.slow_consumer_closes, 1);
        sg_conn_close(c);
        return;
    }
    if (c->proto->on_timeout)
        c->proto->on_timeout(c);
}

ssize_t sg_conn_read(sg_conn_t *c)
{
    ssize_t n = sg_sock_read(&c->sock);
    if (n > 0)
        sg_counter_add(&c->worker->metrics.bytes_in, (uint64_t)n);
    return n;
}

void sg_conn_set_mproto(sg_conn_t *c, uint8_t mproto)
{
    sg_listener_metrics_t *m = c->lm;
    if (mproto == c->mproto || mproto >= SG_MPROTO_N)
        return;
    sg_counter_sub(&m->conns_active[c->mproto], 1);
    sg_counter_sub(&m->conns_total[c->mproto], 1);
    c->mproto = mproto;
    sg_counter_add(&m->conns_active[mproto], 1);
    sg_counter_add(&m->conns_total[mproto], 1);
}

void sg_conn_peer_ip(const sg_conn_t *c, char *out, size_t cap)
{
    const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
    if (sa->sa_family == AF_INET) {
        if (!inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap))
            snprintf(out, cap, "?");
    } else if (!inet_ntop(AF_INET6, &c->peer.sin6_addr, out, (socklen_t)cap)) {
        snprintf(out, cap, "?");
    }
}

void sg_conn_peer_str(const sg_conn_t *c, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
    sg_conn_peer_ip(c, ip, sizeof(ip));
    if (sa->sa_family == AF_INET)
        snprintf(out, cap, "%s:%u", ip, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    else
        snprintf(out, cap, "[%s]:%u", ip, ntohs(c->peer.sin6_port));
}

static void listen_resume(sg_timer_t *t)
{
    sg_listen_sock_t *ls = SG_CONTAINER_OF(t, sg_listen_sock_t, pause_timer);
    sg_worker_t *w = ls->worker;
    if (ls->w.fd < 0)
        return;
    if (sg_loop_watch(&w->loop, &ls->w, EPOLLIN) < 0)
        sg_timer_arm(&w->loop.wheel, &ls->pause_timer, w->loop.now_ms + ls->backoff_ms);
}

void sg_conn_listen_init(sg_listen_sock_t *ls)
{
    sg_timer_init(&ls->pause_timer, listen_resume);
    ls->backoff_ms = 0;
}

void sg_conn_listen_stop(sg_listen_sock_t *ls)
{
    sg_timer_cancel(&ls->worker->loop.wheel, &ls->pause_timer);
}

/*
 * accept failed for want of a descriptor (or of kernel memory for one). The listening socket is level-
 * triggered: left in epoll, it would wake the loop again at once and spin on the same failure (issue 11
 * measured 63% CPU and 130,000 log lines/s). So it leaves epoll for a pause that doubles while the failures
 * go on; connections wait in the kernel's backlog meanwhile and are taken once descriptors free up.
 */
static void listen_pause(sg_listen_sock_t *ls, int err)
{
    sg_worker_t *w = ls->worker;
    ls->backoff_ms = ls->backoff_ms == 0 ? SG_ACCEPT_BACKOFF_MIN_MS
                                         : SG_MIN(ls->backoff_ms * 2, (uint32_t)SG_ACCEPT_BACKOFF_MAX_MS);
    sg_counter_add(&w->metrics.accept_fd_limit, 1);
    sg_log_error("accept on %s: %s: not accepting for %u ms", ls->label, strerror(err), ls->backoff_ms);
    if (sg_loop_watch(&w->loop, &ls->w, 0) < 0)
        return; /* still watched: the next wakeup tries again, as before */
    sg_timer_arm(&w->loop.wheel, &ls->pause_timer, w->loop.now_ms + ls->backoff_ms);
}

void sg_conn_accept(sg_listen_sock_t *ls)
{
    sg_worker_t *w = ls->worker;

    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_in6 peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(ls->w.fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                listen_pause(ls, errno);
                return;
            }
            /* Anything else is about that one connection (EPROTO, EPERM from a firewall): the next one may do. */
            sg_log_error("accept on %s: %s", ls->label, strerror(errno));
            return;
        }
        ls->backoff_ms = 0;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        sg_conn_t *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->worker = w;
        memcpy(&c->peer, &peer, SG_MIN((size_t)plen, sizeof(c->peer)));
        c->port = ls->port;
        c->scheme = ls->protocol;
        sg_sock_init(&c->sock, &w->loop, fd, conn_io_cb, conn_flush_cb);
        sg_deferred_init(&c->reap_d, conn_reap);
        sg_deferred_init(&c->tls_read_d, tls_read_cb);
        sg_timer_init(&c->timer, conn_timer_cb);
        sg_list_insert_tail(&w->conns, &c->link);
        w->nconns++;
        c->mproto = SG_MPROTO_H1;
        c->lm = sg_metrics_listener(&w->metrics, ls->label);
        sg_counter_add(&c->lm->conns_active[SG_MPROTO_H1], 1);
        sg_counter_add(&c->lm->conns_total[SG_MPROTO_H1], 1);
        c->sock.reading = true;
        c->sock.rdhup = true;
        sg_tls_server_t *tls = ls->protocol == SG_PROTO_HTTPS ? tls_for_port(w, ls->port) : NULL;
        if (tls != NULL) {
            /* The handshake runs on the loop like any read; ALPN then picks h2 or h1. */
            c->sock.ssl = sg_tls_accept(tls, fd);
            c->handshaking = true;
            c->tls_cfg = w->cfg;
            sg_config_ref(c->tls_cfg);
            c->proto = &tls_hs_proto;
            if (w->hspool != NULL && c->sock.ssl != NULL) {
                c->hs = calloc(1, sizeof(*c->hs));
                if (c->hs != NULL) {
                    c->hs->c = c;
                    c->hs->job.ssl = c->sock.ssl;
                    c->hs->job.complete = hs_complete;
                }
            }
            int64_t ms = w->settings->tls_handshake_timeout_ms > 0 ? w->settings->tls_handshake_timeout_ms : 10000;
            sg_timer_arm(&w->loop.wheel, &c->timer, w->loop.now_ms + (uint64_t)ms);
            if (c->sock.ssl == NULL || sg_sock_update(&c->sock) < 0)
                sg_conn_close(c);
            continue;
        }
        if (w->protos->h1(c) < 0 || sg_sock_update(&c->sock) < 0) {
            sg_conn_close(c);
            continue;
        }
    }
}
