/* worker.h: the process-wide settings and one worker thread's state (its loop, listeners, config
 * generation, upstream pools). A connection never leaves its worker. */
#ifndef SG_WORKER_H
#define SG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "config.h"
#include "h1parse.h"
#include "list.h"
#include "loop.h"
#include "metrics.h"

typedef struct sg_settings {
    int64_t header_timeout_ms;    /* whole request head must arrive within (408) */
    int64_t idle_timeout_ms;      /* keep-alive client connection idle between requests */
    int64_t connect_timeout_ms;   /* upstream connect (504) */
    int64_t response_timeout_ms;  /* default: time to response headers when no explicit route timeout (504) */
    int64_t upstream_idle_ms;     /* pooled idle upstream connection */
    size_t out_high_wm;           /* client queue above: stop reading the upstream */
    size_t out_low_wm;            /* below: resume */
    size_t pool_max_idle;         /* idle upstream connections kept per endpoint per worker */
    int log_fd;                   /* write end of the access log pipe, non-blocking; -1: off */
    int64_t drain_timeout_ms;     /* SIGTERM: SSE streams may run this long (default 300 s) */
    int64_t drain_spread_ms;      /* ... and are closed at random moments over its last part (default 30 s) */
    int64_t heartbeat_ms;         /* ":" comment on SSE streams idle this long; 0: off (default) */
    int64_t stall_timeout_ms;     /* a client that takes no byte for this long is closed (default 60 s) */
    uint32_t h2_max_streams;      /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; 0: 256 */
    uint32_t h2_stream_window;    /* HTTP/2 initial stream receive window (request bodies); 0: 256 KiB */
    uint32_t h2_conn_window;      /* HTTP/2 connection receive window; 0: 1 MiB */
    int64_t tls_handshake_timeout_ms; /* a TLS handshake must finish within; 0: 10 s */
    uint32_t saturation_pause_us; /* a worker's pause after a full batch of events; 0: yield only */
} sg_settings_t;

typedef struct sg_uppool {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    sg_list_t idle;
    size_t nidle;
} sg_uppool_t;

typedef struct sg_listen_sock {
    sg_watcher_t w;
    struct sg_worker *worker;
    uint16_t port;
    sg_proto_t protocol;
    struct sockaddr_storage addr;   /* what it is bound to, to match binds across reloads */
    char label[64];                 /* "address:port", the listener label of metrics */
    socklen_t addrlen;
} sg_listen_sock_t;

typedef struct sg_worker {
    sg_loop_t loop;
    int id;
    pthread_t thread;
    const sg_settings_t *settings;
    sg_config_t *cfg;                     /* this worker's reference to the current generation */
    _Atomic(sg_config_t *) pending_cfg;   /* handed over by the main thread (with a reference) */
    atomic_bool stop;                     /* hard stop: close everything now */
    atomic_bool drain;                    /* graceful drain requested */
    atomic_bool done;                     /* the loop has exited */
    atomic_size_t nconns_pub;             /* nconns, published for the main thread's drain log */
    bool draining;
    uint64_t drain_end_ms;                /* hard deadline of the drain */
    sg_timer_t drain_timer;
    sg_listen_sock_t **listeners;         /* stable pointers: epoll holds &ls->w */
    size_t nlisteners;
    sg_uppool_t **pools;                  /* stable pointers: pooled connections point at theirs */
    size_t npools;
    sg_list_t conns;                      /* live downstream connections */
    size_t nconns;
    uint64_t rid_prefix;                  /* random per worker, for X-Request-Id */
    uint64_t rid_seq;
    uint64_t rng;                         /* xorshift state for backend picks */
    uint64_t rr;                          /* round-robin position */
    void *route_scratch;                  /* per-thread matcher scratch (route.c) */
    sg_h1_msg_t msg;                      /* scratch for parsing one head at a time */
    char scratch[32 * 1024];              /* scratch for building one head at a time */
    sg_metrics_t metrics;                 /* this worker's shard, summed by the admin listener */
    struct sg_hspool *hspool;             /* TLS handshake threads (shared), or NULL: handshakes on the loop */
    pthread_mutex_t hs_lock;              /* guards hs_done (pool threads append) */
    sg_list_t hs_done;                    /* handshake steps back from the pool */
    size_t hs_inflight;                   /* connections whose handshake step is in the pool */
} sg_worker_t;

/* Creates the worker's loop and listening sockets for cfg->binds. Returns 0 or -errno (message logged). */
int sg_worker_init(sg_worker_t *w, int id, const sg_settings_t *settings, sg_config_t *cfg);
/* Runs the loop until stop is set and every connection has closed. */
void *sg_worker_main(void *arg);
void sg_worker_free(sg_worker_t *w);
/* Asks a worker (from another thread) to stop now. */
void sg_worker_request_stop(sg_worker_t *w);
/* Asks a worker (from another thread) to drain: stop accepting, let streams end, then exit. */
void sg_worker_request_drain(sg_worker_t *w);
/* A random moment in the spread window at the end of the drain, for closing one stream. */
uint64_t sg_worker_drain_moment(sg_worker_t *w);

static inline uint64_t sg_worker_rand(sg_worker_t *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

#endif
