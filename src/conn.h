/* conn.h: socket I/O shared by both sides (sg_sock_t: non-blocking read into a pooled chunk, queued
 * writes flushed before the loop sleeps) and the downstream connection (accept, timeouts, close -> reap). */
#ifndef SG_CONN_H
#define SG_CONN_H

#define SG_LINGER_MS 2000                   /* a closing connection discards input this long at most */
#define SG_LINGER_MAX_BYTES (16u << 20)    /* ... and this many bytes at most */

#include <netinet/in.h>

#include "buf.h"
#include "loop.h"
#include "worker.h"

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
/* Writes what is queued. Returns 0 when drained, SG_EAGAIN when EPOLLOUT was armed, or -errno. */
int sg_sock_flush(sg_sock_t *s);
/* Releases buffers, deregisters and closes the fd. */
void sg_sock_close(sg_sock_t *s);

typedef struct sg_conn sg_conn_t;

/* What a protocol (h1 now, h2 later) implements on top of a downstream connection. */
typedef struct sg_conn_proto {
    void (*on_readable)(sg_conn_t *c);
    void (*on_drained)(sg_conn_t *c);   /* output queue fell below the low watermark */
    void (*on_hup)(sg_conn_t *c);       /* peer closed or reset */
    void (*on_timeout)(sg_conn_t *c);
    void (*on_close)(sg_conn_t *c);     /* free protocol state; the conn goes away at reap */
    void (*on_drain)(sg_conn_t *c);     /* the worker drains: finish, close idle, schedule SSE closes */
} sg_conn_proto_t;

struct sg_conn {
    sg_sock_t sock;
    sg_worker_t *worker;
    sg_list_t link;                 /* worker->conns */
    sg_deferred_t reap_d;
    sg_timer_t timer;               /* header / idle timeout, as the protocol arms it */
    const sg_conn_proto_t *proto;
    void *proto_data;
    struct sockaddr_in6 peer;       /* v4 peers stored as sockaddr_in in the same space */
    uint16_t port;                  /* listener port accepted on */
    sg_proto_t scheme;
    bool closing;                   /* close once the output queue drains */
    bool closed;
    bool lingering;                 /* our side is shut: discarding input until EOF or the linger limit */
    uint32_t linger_bytes;          /* input discarded while lingering */
    bool above_wm;
    bool stalled;                   /* the timer watches a client that takes no bytes */
    bool handshaking;               /* TLS handshake under way: no protocol yet */
    bool hs_busy;                   /* a handshake step is on the pool: the SSL and the fd are its */
    struct hs_ctx *hs;              /* the pool job, while handshaking with a pool */
    sg_config_t *tls_cfg;           /* reference held during the handshake (the SNI callback reads it) */
    sg_deferred_t tls_read_d;       /* decrypted bytes wait inside OpenSSL: epoll will not say so */
    uint8_t mproto;                 /* SG_MPROTO_*: which connection counters this one is in */
    sg_listener_metrics_t *lm;      /* counters of the listening socket it came from */
};

/* Accepts pending connections on a listening socket (bounded per call). */
void sg_conn_accept(sg_listen_sock_t *ls);
/* Closes now: deregisters, frees protocol state, reap at the end of the iteration. Idempotent. */
void sg_conn_close(sg_conn_t *c);
/* Takes back the TLS handshake steps the pool has finished (worker thread, on its loop's wake). */
void sg_conn_hs_collect(sg_worker_t *w);
/* Closes after what is queued has been written. */
void sg_conn_close_after_flush(sg_conn_t *c);
/* Queues bytes to the client. Returns 0, SG_EAGAIN (queued, but above the high watermark) or -ENOMEM. */
int sg_conn_send(sg_conn_t *c, const struct iovec *iov, int n);
/* Formats the peer as "ip:port" into out (>= 64 bytes). */
void sg_conn_peer_str(const sg_conn_t *c, char *out, size_t cap);
/* Peer IP only (for X-Forwarded-For). */
void sg_conn_peer_ip(const sg_conn_t *c, char *out, size_t cap);
void sg_conn_set_reading(sg_conn_t *c, bool on);
/* sg_sock_read on the client socket, counting the bytes in the worker's metrics. */
ssize_t sg_conn_read(sg_conn_t *c);
/* Moves the connection to another protocol's counters (h1 -> h2 after ALPN or the h2c preface). */
void sg_conn_set_mproto(sg_conn_t *c, uint8_t mproto);

#endif
