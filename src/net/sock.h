/* sock.h: non-blocking socket I/O shared by both sides (sg_sock_t: read into a pooled chunk, queued writes
 * flushed before the loop sleeps, TLS when an SSL is set). */
#ifndef SG_SOCK_H
#define SG_SOCK_H

#include "core/buf.h"
#include "core/loop.h"

struct ssl_st;

typedef struct sg_sock {
    sg_watcher_t w;
    sg_loop_t *loop;
    struct ssl_st *ssl;     /* TLS (downstream HTTPS): reads and writes go through it; NULL: plain */
    sg_chunk_t *in;         /* unread input, or NULL when none */
    sg_outq_t out;
    sg_deferred_t flush_d;  /* owner's flush callback, queued by sg_sock_write */
    bool reading;           /* EPOLLIN wanted */
    bool write_blocked;     /* EPOLLOUT wanted after a short write */
    bool rdhup;             /* EPOLLRDHUP wanted */
} sg_sock_t;

void sg_sock_init(sg_sock_t *s, sg_loop_t *loop, int fd, sg_io_cb cb, void (*flush_cb)(sg_deferred_t *d));
/* Applies reading / write_blocked / rdhup to epoll. Returns 0 or -errno. */
int sg_sock_update(sg_sock_t *s);
/*
 * Reads once into s->in (taking a chunk when it has none). Returns bytes read (> 0), 0 at EOF,
 * SG_EAGAIN, -ENOBUFS when the chunk is full, -ENOMEM, or -errno.
 */
ssize_t sg_sock_read(sg_sock_t *s);
/* Drops n consumed bytes at the front of s->in; gives the chunk back when it empties. */
void sg_sock_consume(sg_sock_t *s, size_t n);
/* Queues bytes and schedules a flush. Returns 0 or -ENOMEM. */
int sg_sock_write(sg_sock_t *s, const void *p, size_t n);
int sg_sock_writev(sg_sock_t *s, const struct iovec *iov, int n);
/* Queues b by reference (no copy; takes a reference). Returns 0 or -ENOMEM. */
int sg_sock_write_ref(sg_sock_t *s, sg_rbuf_t *b);
/* Queues prefix[0..plen) (copied, at most SG_REF_PREFIX_MAX bytes) and b->data[off..off+n) by reference, in one
 * queue node. Returns 0, -EINVAL or -ENOMEM. */
int sg_sock_write_ref_range(sg_sock_t *s, const void *prefix, size_t plen, sg_rbuf_t *b, size_t off, size_t n);
/* Writes what is queued. Returns 0 when drained, SG_EAGAIN when EPOLLOUT was armed, or -errno. */
int sg_sock_flush(sg_sock_t *s);
/* Releases buffers, deregisters and closes the fd. */
void sg_sock_close(sg_sock_t *s);

#endif
