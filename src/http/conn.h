/* conn.h: the downstream connection: accept, TLS handshake, protocol choice, timeouts, close -> reap. */
#ifndef SG_CONN_H
#define SG_CONN_H

#define SG_LINGER_MS 2000                   /* a closing connection discards input this long at most */
#define SG_LINGER_MAX_BYTES (16u << 20)    /* ... and this many bytes at most */

#include <netinet/in.h>

#include "core/buf.h"
#include "config/config.h"
#include "core/loop.h"
#include "core/metrics.h"
#include "net/sock.h"
#include "core/worker.h"

typedef struct sg_conn sg_conn_t;

/* One listening socket of a worker (SO_REUSEPORT: each worker has its own). */
typedef struct sg_listen_sock {
    sg_watcher_t w;
    struct sg_worker *worker;
    uint16_t port;
    sg_proto_t protocol;
    struct sockaddr_storage addr;   /* what it is bound to, to match binds across reloads */
    char label[64];                 /* "address:port", the listener label of metrics */
    socklen_t addrlen;
    sg_timer_t pause_timer;         /* out of descriptors: accepting resumes when it fires */
    uint32_t backoff_ms;            /* the current pause; 0 after a successful accept */
} sg_listen_sock_t;

/* Out of descriptors, a listener stops accepting for a pause that doubles from the first to the last value
 * while accept keeps failing (docs/ARCHITECTURE.md, "At the descriptor limit"). */
#define SG_ACCEPT_BACKOFF_MIN_MS 50
#define SG_ACCEPT_BACKOFF_MAX_MS 1000

/* Sets up ls's pause timer; call before ls is first watched. */
void sg_conn_listen_init(sg_listen_sock_t *ls);
/* Stops ls's pause (before its fd is closed or it is freed). */
void sg_conn_listen_stop(sg_listen_sock_t *ls);

/* The protocols a connection can be handed to, given to conn.c by the worker (w->protos), so that conn.c
 * does not call up into the protocols it dispatches to. Each returns 0 or -ENOMEM (c is left for the
 * caller to close). */
typedef struct sg_conn_protos {
    int (*h1)(sg_conn_t *c);        /* HTTP/1.1 (also the start of an h2c connection) */
    int (*h2)(sg_conn_t *c);        /* HTTP/2 after ALPN h2 */
} sg_conn_protos_t;

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
    uint8_t client_cert_state;      /* sg_tls_client_state_t: what the client's certificate proved */
    char *client_cert;              /* its identity (sg_tls_client_info), owned; NULL unless a cert was asked for */
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
/* Same, for bytes queued by reference (sg_sock_write_ref). */
int sg_conn_send_ref(sg_conn_t *c, sg_rbuf_t *b);
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
