/* metrics.h: per-worker metric shards (single writer, relaxed atomics, no locks on the data path) and
 * their rendering as Prometheus text on the admin listener. */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <stdatomic.h>
#include <stdio.h>

#include "core/sg.h"

#define SG_METRICS_ROUTES 256       /* distinct routes tracked per worker; more are counted as "other" */
#define SG_METRICS_BUCKETS 15
#define SG_METRICS_LISTENERS 32     /* listening sockets tracked per worker; more are counted as "other" */

typedef _Atomic uint64_t sg_counter_t;

/* One writer (the owning worker): an increment is a plain load/add/store, never a locked instruction. */
static inline void sg_counter_add(sg_counter_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

static inline void sg_counter_sub(sg_counter_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - v, memory_order_relaxed);
}

typedef struct sg_histogram {
    sg_counter_t buckets[SG_METRICS_BUCKETS]; /* cumulative at render time; stored per bucket; their sum is the count */
    sg_counter_t sum_us;
} sg_histogram_t;

#define SG_GRPC_CODES 17            /* grpc-status 0 (OK) .. 16 (UNAUTHENTICATED) */

typedef struct sg_route_metrics {
    char key[160];                  /* "namespace/name"; written once before `used` is published */
    atomic_bool used;
    sg_counter_t requests;
    sg_counter_t sse_active;
    sg_counter_t sse_total;
    sg_counter_t sse_events;
    sg_counter_t shared_streams;    /* gauge: shared upstream streams of this route (fanout/) */
    sg_counter_t shared_subscribers; /* gauge: their subscribers */
    sg_counter_t ws_active;                     /* WebSockets open (after the switch) */
    sg_counter_t ws_upgrades[4];                /* WebSocket handshakes by result (sg_metrics_ws_results) */
    sg_counter_t grpc_active;       /* gRPC calls (HTTP/2 requests with content-type application/grpc) open */
    sg_counter_t grpc_status[SG_GRPC_CODES]; /* gRPC calls ended, by grpc-status (unknown values count as 2) */
} sg_route_metrics_t;

/* The results of a WebSocket handshake (ssegate_websocket_upgrades_total{result}). */
enum { SG_WS_SWITCHED = 0, SG_WS_REJECTED, SG_WS_FAILED, SG_WS_ABANDONED, SG_WS_RESULTS };
extern const char *const sg_metrics_ws_results[SG_WS_RESULTS];

enum { SG_MPROTO_H1 = 0, SG_MPROTO_H2 = 1, SG_MPROTO_N = 2 };

/* Connections and streams of one listening socket ("address:port"), by protocol. */
typedef struct sg_listener_metrics {
    char key[64];                   /* written once before `used` is published */
    atomic_bool used;
    sg_counter_t conns_active[SG_MPROTO_N];
    sg_counter_t conns_total[SG_MPROTO_N];
    sg_counter_t streams_active[SG_MPROTO_N];
    sg_counter_t streams_total[SG_MPROTO_N];
} sg_listener_metrics_t;

/* Why a TLS connection to a backend failed (ssegate_upstream_tls_errors_total{reason}). */
enum {
    SG_UPTLS_EXPIRED = 0,       /* the certificate has expired, or is not valid yet */
    SG_UPTLS_HOSTNAME,          /* it does not carry the policy's hostname */
    SG_UPTLS_SAN,               /* it carries none of the policy's subjectAltNames */
    SG_UPTLS_UNKNOWN_CA,        /* it does not chain to a trusted CA (self-signed, another CA) */
    SG_UPTLS_VERIFY,            /* any other verification failure */
    SG_UPTLS_HANDSHAKE,         /* the handshake failed before or without verification (protocol, alert, reset) */
    SG_UPTLS_N
};
extern const char *const sg_metrics_uptls_reasons[SG_UPTLS_N];

typedef struct sg_metrics {
    sg_listener_metrics_t listeners[SG_METRICS_LISTENERS];
    sg_listener_metrics_t other_listener;
    sg_counter_t bytes_in;
    sg_counter_t bytes_out;
    sg_counter_t upstream_status[6];  /* index: status / 100 (0: no response) */
    sg_counter_t upstream_connect_errors;
    sg_counter_t upstream_tls_errors[SG_UPTLS_N];
    sg_counter_t upstream_tls_handshakes[2]; /* new TLS connections to backends: [0] full handshake, [1] resumed */
    sg_counter_t slow_consumer_closes;
    sg_counter_t upstream_h2_sessions; /* gauge: HTTP/2 sessions to backends, open or connecting */
    sg_counter_t upstream_h2_streams;  /* gauge: streams on them (and waiting for one) */
    sg_counter_t upstream_h2_goaways;  /* GOAWAY frames received from backends */
    sg_counter_t upstream_h2_retries;  /* streams sent again: refused (REFUSED_STREAM, above a GOAWAY's last id) */
    sg_counter_t upstream_h2_ping_timeouts; /* sessions failed: a PING unanswered within --h2-upstream-ping-timeout */
    sg_counter_t upstream_trailers;    /* responses that came with trailers (HTTP/2 backends) */
    sg_counter_t upstream_h2_alpn_h1;  /* TLS connections where an h2 port's backend chose http/1.1 (ALPN) */
    sg_counter_t h2_buffered_bytes;    /* gauge: response bytes queued on HTTP/2 streams (with segment headers) */
    sg_counter_t h2_budget_pauses;     /* a connection's buffer budget was exceeded: its upstreams paused */
    sg_counter_t h2_stall_resets;      /* streams reset after --stall-timeout blocked by a zero window */
    sg_counter_t h2_stall_closes;      /* connections closed because every stream was so blocked */
    sg_counter_t h2_data_bytes[2];     /* HTTP/2 DATA payload sent: [0] copied into the output, [1] by reference */
    sg_counter_t tls_handshakes[2];    /* [0] completed, [1] failed or timed out */
    sg_counter_t saturated_rounds;     /* loop iterations that found a full batch (then paused) */
    sg_counter_t relay_full_rounds;    /* full batches, mostly tunnel relays: flushed at once, no pause */
    sg_counter_t log_dropped;
    sg_counter_t accept_fd_limit;      /* accepts that failed for want of a descriptor (each pauses the listener) */
    sg_counter_t h2_reset_unstarted;   /* HTTP/2 streams reset by the client before any work started */
    sg_counter_t h2_reset_started;     /* ... after their upstream exchange started */
    sg_counter_t h2_reset_goaways;     /* connections sent GOAWAY for resetting too many started streams */
    sg_counter_t client_rate_refused;  /* exchanges refused by the per-client-address budget */
    sg_counter_t cors_preflights[2];   /* preflights the gateway answered: [0] refused, [1] allowed */
    /* shared SSE streams (fanout/) */
    sg_counter_t fanout_streams;       /* gauge: shared upstream streams open (held by this worker) */
    sg_counter_t fanout_followers;     /* gauge: this worker's copies of shared streams held by another worker */
    sg_counter_t fanout_subscribers;   /* gauge: subscribers on shared streams */
    sg_counter_t fanout_subscribers_total;
    sg_counter_t fanout_ring_events;   /* gauge: events held in replay rings */
    sg_counter_t fanout_ring_bytes;    /* gauge: their bytes */
    sg_counter_t fanout_replays[3];    /* Last-Event-ID answered: [0] from the ring, [1] by the backend, [2] live */
    sg_counter_t fanout_failovers;     /* shared upstreams reconnected after ending mid-stream */
    sg_counter_t fanout_merges;        /* dedicated replays (Last-Event-ID too old) that moved onto the shared stream */
    sg_counter_t fanout_slow[2];       /* slow subscribers: [0] moved to replay from the ring, [1] closed */
    sg_counter_t fanout_events;        /* events received on shared upstreams */
    sg_counter_t fanout_deliveries;    /* events handed to subscribers (live and replayed) */
    sg_histogram_t duration;
    sg_histogram_t ttfb;
    sg_route_metrics_t routes[SG_METRICS_ROUTES];
    sg_route_metrics_t other;
} sg_metrics_t;

void sg_metrics_observe(sg_histogram_t *h, uint64_t us);
/* The slot of a listening socket, created on first use (worker thread only). Never NULL. */
sg_listener_metrics_t *sg_metrics_listener(sg_metrics_t *m, const char *label);
/* The per-route slot for ns/name, created on first use (worker thread only). Never NULL. */
sg_route_metrics_t *sg_metrics_route(sg_metrics_t *m, const char *ns, const char *name);

/* Process-wide facts the main thread owns. */
typedef struct sg_metrics_global {
    bool draining;
    size_t drain_remaining;
    uint64_t reloads_ok;
    uint64_t reloads_failed;
    uint64_t config_generation;
    uint64_t admin_accept_fd_limit;   /* the admin listener's accepts that failed for want of a descriptor */
    uint64_t admin_reserve_accepts;   /* admin connections accepted on a reserved descriptor */
} sg_metrics_global_t;

/* Renders every shard summed, in Prometheus text exposition format. Returns bytes written to f. */
void sg_metrics_render(FILE *f, const sg_metrics_t *const *shards, size_t n, const sg_metrics_global_t *g);

#endif
