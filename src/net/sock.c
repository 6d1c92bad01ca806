/* sock.c: non-blocking socket I/O for both sides: reads into a pooled chunk, queued writes flushed before the
 * loop sleeps, TLS through OpenSSL when set. */
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/sock.h"

/* iovecs per sendmsg: the kernel's limit (UIO_MAXIOV). A connection carrying many HTTP/2 streams of a shared stream
 * queues two per DATA frame (the header, then a reference to the event), so a small batch would cost a system call
 * per 32 frames. 16 KiB of stack. */
#define IOV_MAX_BATCH 1024

void sg_sock_init(sg_sock_t *s, sg_loop_t *loop, int fd, sg_io_cb cb, void (*flush_cb)(sg_deferred_t *d))
{
    memset(s, 0, sizeof(*s));
    s->w.fd = fd;
    s->w.cb = cb;
    s->loop = loop;
    sg_outq_init(&s->out);
    sg_deferred_init(&s->flush_d, flush_cb);
}

int sg_sock_update(sg_sock_t *s)
{
    uint32_t m = (s->reading ? EPOLLIN : 0) | (s->write_blocked ? EPOLLOUT : 0) | (s->rdhup ? EPOLLRDHUP : 0);
    /* Nothing wanted: stay registered for EPOLLERR/EPOLLHUP only (edge-triggered, reported once). */
    if (m == 0)
        m = EPOLLET;
    return sg_loop_watch(s->loop, &s->w, m);
}

/* SSL_read into the chunk; the same results as recv(2) gives sg_sock_read. SSL_read returns one record at a time, so
 * it is called again while OpenSSL holds more input (SSL_has_pending: with read-ahead, the upstream client's one
 * read(2) brings many records) until the chunk is full: one small record per call would make the caller wait for
 * the next readiness event, one loop round per SSE event. It stops when nothing is buffered, so that the last call
 * is not a read(2) that can only say EAGAIN. */
static ssize_t tls_read(sg_sock_t *s, sg_chunk_t *c, size_t room)
{
    size_t total = 0;
    int n;
    for (;;) {
        ERR_clear_error();
        n = SSL_read(s->ssl, c->data + c->wpos, (int)SG_MIN(room - total, (size_t)INT32_MAX));
        if (n <= 0)
            break;
        c->wpos += (uint32_t)n;
        total += (size_t)n;
        if (total == room || !SSL_has_pending(s->ssl))
            return (ssize_t)total;
    }
    if (total > 0) {
        /* What ended the batch (more data later, or EOF or an error) is seen by the next call. */
        return (ssize_t)total;
    }
    if (sg_chunk_len(c) == 0) {
        sg_pool_put(&s->loop->pool, c);
        s->in = NULL;
    }
    int e = SSL_get_error(s->ssl, n);
    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return SG_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        return errno != 0 && errno != EAGAIN ? -errno : 0;
    default:
        return -EPROTO;
    }
}

/* Writes the queue through TLS, one record batch per chunk. Returns bytes written, SG_EAGAIN or -errno. */
static ssize_t tls_write(sg_sock_t *s, const struct iovec *iov, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        ERR_clear_error();
        int w = SSL_write(s->ssl, iov[i].iov_base, (int)SG_MIN(iov[i].iov_len, (size_t)INT32_MAX));
        if (w > 0) {
            total += (size_t)w;
            if ((size_t)w < iov[i].iov_len)
                break;
            continue;
        }
        if (total > 0)
            break;
        int e = SSL_get_error(s->ssl, w);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            errno = EAGAIN;
            return -1;
        }
        errno = e == SSL_ERROR_SYSCALL && errno != 0 ? errno : EPIPE;
        return -1;
    }
    return (ssize_t)total;
}

ssize_t sg_sock_read(sg_sock_t *s)
{
    if (s->in == NULL) {
        s->in = sg_pool_get(&s->loop->pool);
        if (s->in == NULL)
            return -ENOMEM;
    }
    sg_chunk_t *c = s->in;
    if (c->rpos > 0 && c->wpos == SG_CHUNK_SIZE) {
        /* Compact so a partial head can grow. */
        memmove(c->data, c->data + c->rpos, sg_chunk_len(c));
        c->wpos -= c->rpos;
        c->rpos = 0;
    }
    size_t room = SG_CHUNK_SIZE - c->wpos;
    if (room == 0)
        return -ENOBUFS;
    if (s->ssl != NULL)
        return tls_read(s, c, room);
    ssize_t n = recv(s->w.fd, c->data + c->wpos, room, 0);
    if (n > 0) {
        c->wpos += (uint32_t)n;
        return n;
    }
    if (sg_chunk_len(c) == 0) {
        sg_pool_put(&s->loop->pool, c);
        s->in = NULL;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return SG_EAGAIN;
    return -errno;
}

void sg_sock_consume(sg_sock_t *s, size_t n)
{
    sg_chunk_t *c = s->in;
    if (c == NULL)
        return;
    c->rpos += (uint32_t)n;
    if (c->rpos >= c->wpos) {
        sg_pool_put(&s->loop->pool, c);
        s->in = NULL;
    }
}

int sg_sock_writev(sg_sock_t *s, const struct iovec *iov, int n)
{
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue;
        /* On failure a message may be partly queued: the caller closes the connection. */
        if (sg_outq_append(&s->out, &s->loop->pool, iov[i].iov_base, iov[i].iov_len) < 0)
            return -ENOMEM;
    }
    sg_loop_flush_later(s->loop, &s->flush_d);
    return 0;
}

int sg_sock_write_ref(sg_sock_t *s, sg_rbuf_t *b)
{
    return sg_sock_write_ref_range(s, NULL, 0, b, 0, b->len);
}

int sg_sock_write_ref_range(sg_sock_t *s, const void *prefix, size_t plen, sg_rbuf_t *b, size_t off, size_t n)
{
    int rc = sg_outq_append_ref_range(&s->out, &s->loop->pool, prefix, plen, b, off, n);
    if (rc < 0)
        return rc;
    sg_loop_flush_later(s->loop, &s->flush_d);
    return 0;
}

int sg_sock_write(sg_sock_t *s, const void *p, size_t n)
{
    struct iovec iov = {.iov_base = (void *)p, .iov_len = n};
    return sg_sock_writev(s, &iov, 1);
}

/* send(2) and sendmsg(2), not writev(2): a socket's own calls skip the file layer's checks and notifications
 * (docs/ARCHITECTURE.md), and MSG_NOSIGNAL makes a closed peer an EPIPE whatever SIGPIPE's disposition. One buffer
 * (a relayed WebSocket message, as a rule) goes by send(2), which copies no msghdr or iovec array in. */
static ssize_t send_iov(int fd, struct iovec *iov, int n)
{
    if (n == 1)
        return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

int sg_sock_flush(sg_sock_t *s)
{
    struct iovec iov[IOV_MAX_BATCH];

    while (s->out.bytes > 0) {
        int n = sg_outq_iov(&s->out, iov, IOV_MAX_BATCH);
        ssize_t w = s->ssl ? tls_write(s, iov, n) : send_iov(s->w.fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!s->write_blocked) {
                    s->write_blocked = true;
                    int rc = sg_sock_update(s);
                    if (rc < 0)
                        return rc;
                }
                return SG_EAGAIN;
            }
            return -errno;
        }
        sg_outq_consume(&s->out, &s->loop->pool, (size_t)w);
    }
    if (s->write_blocked) {
        s->write_blocked = false;
        int rc = sg_sock_update(s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void sg_sock_close(sg_sock_t *s)
{
    sg_loop_cancel(&s->flush_d);
    if (s->ssl != NULL) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->w.fd >= 0) {
        if (s->w.mask != 0)
            epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->w.fd, NULL);
        s->w.mask = 0;
        close(s->w.fd);
        s->w.fd = -1;
    }
    sg_outq_clear(&s->out, &s->loop->pool);
    sg_pool_put(&s->loop->pool, s->in);
    s->in = NULL;
}
