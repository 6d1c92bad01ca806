/* worker.h: the process-wide settings and one worker thread's state (its loop, listeners, config
 * generation, upstream pools), as every layer sees it. A connection never leaves its worker. The layers
 * above the core are named here only by pointer; serve.c fills them in and runs the thread. */
#ifndef SG_WORKER_H
#define SG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/list.h"
#include "core/loop.h"
#include "core/metrics.h"

struct sg_admit;
struct sg_config;
struct sg_fanout;
struct sg_conn_protos;
struct sg_h1_msg;
struct sg_hspool;
struct sg_listen_sock;
struct sg_stream_handler;
struct sg_uppool;

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
    int64_t ws_idle_ms;           /* a WebSocket with no byte either way for this long is closed; 0: off */
    uint32_t h2_max_streams;      /* HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; 0: 256 */
    uint32_t h2_stream_window;    /* HTTP/2 initial stream receive window (request bodies); 0: 256 KiB */
    uint32_t h2_conn_window;      /* HTTP/2 connection receive window; 0: 1 MiB */
    size_t h2_conn_buffer;        /* HTTP/2 response bytes queued across a connection's streams; 0: 1 MiB */
    int64_t tls_handshake_timeout_ms; /* a TLS handshake must finish within; 0: 10 s */
    uint32_t saturation_pause_us; /* a worker's pause after a full batch of events; 0: yield only */
    bool saturation_tunnels_pause; /* --saturation-tunnels pause: tunnel events count towards saturation
                                    * (default relay: a batch mostly of tunnels is flushed, never paused) */
    uint32_t client_rate;         /* new upstream exchanges per second (and burst) per client address per
                                     worker; past it: 503 / REFUSED_STREAM. 0: no limit */
    uint32_t h2_reset_budget;     /* HTTP/2: started streams a connection may reset per 10 s (burst) before
                                     GOAWAY ENHANCE_YOUR_CALM. 0: no limit */
    /* HTTP/2 to backends (proxy/upclient_h2.c); 0 takes the default named, except h2_up_replay (0: none). */
    uint32_t h2_up_conns;         /* sessions per endpoint per worker; 0: 16 */
    uint32_t h2_up_max_streams;   /* streams per session, below the backend's own limit; 0: 10,000 */
    uint32_t h2_up_window;        /* stream receive window: what a paused stream may hold; 0: 128 KiB */
    uint32_t h2_up_replay;        /* request body bytes kept until the response head, to resend a refused stream */
    int64_t h2_up_ping_ms;        /* a session is pinged this often; 0: 30 s */
    int64_t h2_up_ping_timeout_ms; /* ... and fails when the PING's answer takes longer; 0: 10 s */
} sg_settings_t;

typedef struct sg_worker {
    sg_loop_t loop;
    int id;
    pthread_t thread;
    const sg_settings_t *settings;
    const struct sg_conn_protos *protos;  /* the protocols a connection can speak (conn.h) */
    const struct sg_stream_handler *handler; /* what serves the protocols' streams (stream.h) */
    struct sg_config *cfg;                /* this worker's reference to the current generation */
    _Atomic(struct sg_config *) pending_cfg; /* handed over by the main thread (with a reference) */
    atomic_bool stop;                     /* hard stop: close everything now */
    atomic_bool drain;                    /* graceful drain requested */
    atomic_bool done;                     /* the loop has exited */
    atomic_size_t nconns_pub;             /* nconns, published for the main thread's drain log */
    /* After adopting a handed-over generation and opening its listeners: the ports of its binds that could not be
     * opened (the first SG_WORKER_MAX_BIND_FAILED), then that generation's number (release), so the main thread can
     * tell when a generation serves and which listeners did not bind (Gateway status: Programmed, PortUnavailable). */
#define SG_WORKER_MAX_BIND_FAILED 16
    uint16_t bind_failed[SG_WORKER_MAX_BIND_FAILED];
    size_t nbind_failed;
    _Atomic uint64_t adopted_gen;
    /* Another try at the binds that failed (src/kube/krebind.c, kube mode): the main thread stores rebind_gen, then
     * rebind_seq, and wakes the loop; a worker still on generation rebind_gen opens its missing listeners again
     * (quietly: the main thread logs the changes), rewrites bind_failed, then stores rebind_ack = rebind_seq
     * (release). */
    _Atomic uint64_t rebind_gen, rebind_seq, rebind_ack;
    uint64_t rebind_seen;
    bool draining;
    uint64_t drain_end_ms;                /* hard deadline of the drain */
    sg_timer_t drain_timer;
    struct sg_listen_sock **listeners;    /* stable pointers: epoll holds &ls->w */
    size_t nlisteners;
    struct sg_uppool **pools;             /* stable pointers: pooled connections point at theirs (upclient.c) */
    size_t npools;
    sg_list_t conns;                      /* live downstream connections */
    sg_list_t streams;                    /* live proxy streams (proxy.c), for proxy/epgone.c */
    size_t nconns;
    uint64_t rid_prefix;                  /* random per worker, for X-Request-Id */
    uint64_t rid_seq;
    uint64_t rng;                         /* xorshift state for backend picks */
    uint64_t rr;                          /* round-robin position */
    void *route_scratch;                  /* per-thread matcher scratch (route.c) */
    struct sg_admit *admit;               /* per-client-address budgets and log limits (admit.c); NULL: none */
    struct sg_fanout *fanout;             /* this worker's shared streams (fanout.c); NULL: none yet */
    struct sg_h1_msg *msg;                /* scratch for parsing one head at a time */
    char scratch[32 * 1024];              /* scratch for building one head at a time */
    sg_metrics_t metrics;                 /* this worker's shard, summed by the admin listener */
    struct sg_hspool *hspool;             /* TLS handshake threads (shared), or NULL: handshakes on the loop */
    pthread_mutex_t hs_lock;              /* guards hs_done (pool threads append) */
    sg_list_t hs_done;                    /* handshake steps back from the pool */
    size_t hs_inflight;                   /* connections whose handshake step is in the pool */
} sg_worker_t;

static inline uint64_t sg_worker_rand(sg_worker_t *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

/* A random moment in the spread window at the end of the drain, for closing one stream. */
static inline uint64_t sg_worker_drain_moment(sg_worker_t *w)
{
    uint64_t spread = (uint64_t)w->settings->drain_spread_ms;
    uint64_t start = w->drain_end_ms - SG_MIN(spread, w->drain_end_ms);
    if (start < w->loop.now_ms)
        start = w->loop.now_ms;
    /* Leave a little room before the hard deadline for the stream to reach an event boundary. */
    uint64_t end = w->drain_end_ms > start + 50 ? w->drain_end_ms - 50 : start + 1;
    return start + sg_worker_rand(w) % (end - start);
}

#endif
