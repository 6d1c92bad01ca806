/* metrics.c: histogram buckets, per-route slots and the Prometheus text rendering. */
#include <inttypes.h>

#include "core/metrics.h"

/* Upper bounds in microseconds: 5 ms .. 300 s, then +Inf. */
const char *const sg_metrics_uptls_reasons[SG_UPTLS_N] = {
    [SG_UPTLS_EXPIRED] = "expired", [SG_UPTLS_HOSTNAME] = "hostname_mismatch", [SG_UPTLS_SAN] = "san_mismatch",
    [SG_UPTLS_UNKNOWN_CA] = "unknown_ca", [SG_UPTLS_VERIFY] = "verify_failed", [SG_UPTLS_HANDSHAKE] = "handshake",
};

static const uint64_t bounds_us[SG_METRICS_BUCKETS - 1] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
    60000000, 300000000,
};

void sg_metrics_observe(sg_histogram_t *h, uint64_t us)
{
    size_t i = 0;
    while (i < SG_METRICS_BUCKETS - 1 && us > bounds_us[i])
        i++;
    sg_counter_add(&h->buckets[i], 1);
    sg_counter_add(&h->sum_us, us);
}

sg_listener_metrics_t *sg_metrics_listener(sg_metrics_t *m, const char *label)
{
    for (size_t i = 0; i < SG_METRICS_LISTENERS; i++) {
        sg_listener_metrics_t *l = &m->listeners[i];
        if (!atomic_load_explicit(&l->used, memory_order_acquire)) {
            snprintf(l->key, sizeof(l->key), "%s", label);
            atomic_store_explicit(&l->used, true, memory_order_release);
            return l;
        }
        if (strcmp(l->key, label) == 0)
            return l;
    }
    return &m->other_listener;
}

sg_route_metrics_t *sg_metrics_route(sg_metrics_t *m, const char *ns, const char *name)
{
    char key[160];
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    for (size_t i = 0; i < SG_METRICS_ROUTES; i++) {
        sg_route_metrics_t *r = &m->routes[i];
        if (!atomic_load_explicit(&r->used, memory_order_acquire)) {
            memcpy(r->key, key, sizeof(key));
            atomic_store_explicit(&r->used, true, memory_order_release);
            return r;
        }
        if (strcmp(r->key, key) == 0)
            return r;
    }
    return &m->other;
}

static uint64_t ld(const sg_counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#define SUM(field)                                                                                            \
    ({                                                                                                        \
        uint64_t _s = 0;                                                                                      \
        for (size_t _i = 0; _i < n; _i++)                                                                     \
            _s += ld(&shards[_i]->field);                                                                     \
        _s;                                                                                                   \
    })

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(FILE *f, const char *name, const char *help, const sg_metrics_t *const *shards, size_t n,
                      size_t offset)
{
    head(f, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t b = 0; b < SG_METRICS_BUCKETS; b++) {
        for (size_t i = 0; i < n; i++) {
            const sg_histogram_t *h = (const sg_histogram_t *)((const char *)shards[i] + offset);
            cum += ld(&h->buckets[b]);
        }
        if (b < SG_METRICS_BUCKETS - 1)
            fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, (double)bounds_us[b] / 1e6, cum);
        else
            fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const sg_histogram_t *h = (const sg_histogram_t *)((const char *)shards[i] + offset);
        sum += ld(&h->sum_us);
    }
    /* The count is the +Inf bucket as read above: a count read on its own could include an observation made after the
     * buckets were read, and a scrape would show _count above the +Inf bucket, which Prometheus defines as equal. */
    fprintf(f, "%s_sum %.6f\n%s_count %" PRIu64 "\n", name, (double)sum / 1e6, name, cum);
}

/* Label values are route names (DNS-1123) and fixed words; escape anyway. */
static void label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static uint64_t route_value(const sg_route_metrics_t *rm, size_t offset)
{
    return ld((const sg_counter_t *)((const char *)rm + offset));
}

/* One sample per route; `extra` adds labels (",code=\"0\""), and with skip_zero zeros are left out. */
static void route_samples(FILE *f, const char *name, const sg_metrics_t *const *shards, size_t n, size_t offset,
                          const char *extra, bool skip_zero)
{
    /* Each worker slots routes in its own first-use order: merge by key. */
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < SG_METRICS_ROUTES; r++) {
            const sg_route_metrics_t *rm = &shards[i]->routes[r];
            if (!atomic_load_explicit(&rm->used, memory_order_acquire))
                break;
            bool printed = false;
            for (size_t j = 0; j < i && !printed; j++)
                for (size_t q = 0; q < SG_METRICS_ROUTES && !printed; q++) {
                    const sg_route_metrics_t *o = &shards[j]->routes[q];
                    if (!atomic_load_explicit(&o->used, memory_order_acquire))
                        break;
                    printed = strcmp(o->key, rm->key) == 0;
                }
            if (printed)
                continue;
            uint64_t v = 0;
            for (size_t j = i; j < n; j++)
                for (size_t q = 0; q < SG_METRICS_ROUTES; q++) {
                    const sg_route_metrics_t *o = &shards[j]->routes[q];
                    if (!atomic_load_explicit(&o->used, memory_order_acquire))
                        break;
                    if (strcmp(o->key, rm->key) == 0)
                        v += route_value(o, offset);
                }
            if (skip_zero && v == 0)
                continue;
            fprintf(f, "%s{route=\"", name);
            label(f, rm->key);
            fprintf(f, "\"%s} %" PRIu64 "\n", extra ? extra : "", v);
        }
    }
    uint64_t other = 0;
    for (size_t i = 0; i < n; i++)
        other += route_value(&shards[i]->other, offset);
    if (other > 0)
        fprintf(f, "%s{route=\"other\"%s} %" PRIu64 "\n", name, extra ? extra : "", other);
}

static void route_family(FILE *f, const char *name, const char *type, const char *help,
                         const sg_metrics_t *const *shards, size_t n, size_t offset)
{
    head(f, name, type, help);
    route_samples(f, name, shards, n, offset, NULL, false);
}

const char *const sg_metrics_ws_results[SG_WS_RESULTS] = {"switched", "rejected", "failed", "abandoned"};

static void ws_families(FILE *f, const sg_metrics_t *const *shards, size_t n)
{
    route_family(f, "ssegate_websockets_active", "gauge", "WebSockets open (after the switch of protocols).", shards,
                 n, offsetof(sg_route_metrics_t, ws_active));
    head(f, "ssegate_websocket_upgrades_total", "counter",
         "WebSocket handshakes by result: switched (101, or 200 to an HTTP/2 extended CONNECT), rejected (a 4xx or "
         "3xx answer, the gateway's or the backend's), failed (5xx: no backend, a backend that did not switch), "
         "abandoned (the client left first).");
    for (int r = 0; r < SG_WS_RESULTS; r++) {
        char extra[32];
        snprintf(extra, sizeof(extra), ",result=\"%s\"", sg_metrics_ws_results[r]);
        route_samples(f, "ssegate_websocket_upgrades_total", shards, n,
                      offsetof(sg_route_metrics_t, ws_upgrades) + (size_t)r * sizeof(sg_counter_t), extra, false);
    }
}

static uint64_t listener_value(const sg_listener_metrics_t *l, size_t offset, int proto)
{
    return ld((const sg_counter_t *)((const char *)l + offset) + proto);
}

/* One family by listener and protocol; each worker slots listeners in its own order: merge by key. */
static void listener_family(FILE *f, const char *name, const char *type, const char *help,
                            const sg_metrics_t *const *shards, size_t n, size_t offset)
{
    static const char *const protos[SG_MPROTO_N] = {"http/1.1", "h2"};
    head(f, name, type, help);
    for (size_t i = 0; i < n; i++) {
        for (size_t q = 0; q < SG_METRICS_LISTENERS; q++) {
            const sg_listener_metrics_t *l = &shards[i]->listeners[q];
            if (!atomic_load_explicit(&l->used, memory_order_acquire))
                break;
            bool printed = false;
            for (size_t j = 0; j < i && !printed; j++)
                for (size_t r = 0; r < SG_METRICS_LISTENERS && !printed; r++) {
                    const sg_listener_metrics_t *o = &shards[j]->listeners[r];
                    if (!atomic_load_explicit(&o->used, memory_order_acquire))
                        break;
                    printed = strcmp(o->key, l->key) == 0;
                }
            if (printed)
                continue;
            for (int p = 0; p < SG_MPROTO_N; p++) {
                uint64_t v = 0;
                for (size_t j = i; j < n; j++)
                    for (size_t r = 0; r < SG_METRICS_LISTENERS; r++) {
                        const sg_listener_metrics_t *o = &shards[j]->listeners[r];
                        if (!atomic_load_explicit(&o->used, memory_order_acquire))
                            break;
                        if (strcmp(o->key, l->key) == 0)
                            v += listener_value(o, offset, p);
                    }
                fprintf(f, "%s{listener=\"", name);
                label(f, l->key);
                fprintf(f, "\",protocol=\"%s\"} %" PRIu64 "\n", protos[p], v);
            }
        }
    }
    for (int p = 0; p < SG_MPROTO_N; p++) {
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
            v += listener_value(&shards[i]->other_listener, offset, p);
        if (v > 0)
            fprintf(f, "%s{listener=\"other\",protocol=\"%s\"} %" PRIu64 "\n", name, protos[p], v);
    }
}

void sg_metrics_render(FILE *f, const sg_metrics_t *const *shards, size_t n, const sg_metrics_global_t *g)
{
    listener_family(f, "ssegate_connections_active", "gauge", "Client connections open.", shards, n,
                    offsetof(sg_listener_metrics_t, conns_active));
    listener_family(f, "ssegate_connections_total", "counter", "Client connections accepted.", shards, n,
                    offsetof(sg_listener_metrics_t, conns_total));
    listener_family(f, "ssegate_streams_active", "gauge", "Requests (streams) in progress.", shards, n,
                    offsetof(sg_listener_metrics_t, streams_active));
    listener_family(f, "ssegate_streams_total", "counter", "Requests (streams) started.", shards, n,
                    offsetof(sg_listener_metrics_t, streams_total));
    route_family(f, "ssegate_route_requests_total", "counter", "Requests matched to a route.", shards, n,
                 offsetof(sg_route_metrics_t, requests));
    route_family(f, "ssegate_sse_streams_active", "gauge", "SSE streams being relayed.", shards, n,
                 offsetof(sg_route_metrics_t, sse_active));
    route_family(f, "ssegate_sse_streams_total", "counter", "SSE streams started.", shards, n,
                 offsetof(sg_route_metrics_t, sse_total));
    route_family(f, "ssegate_sse_events_total", "counter", "SSE events relayed to clients.", shards, n,
                 offsetof(sg_route_metrics_t, sse_events));
    route_family(f, "ssegate_fanout_route_streams", "gauge", "Shared SSE upstream streams, by route.", shards, n,
                 offsetof(sg_route_metrics_t, shared_streams));
    route_family(f, "ssegate_fanout_route_subscribers", "gauge", "Subscribers of shared SSE streams, by route "
                 "(divided by ssegate_fanout_route_streams: subscribers per stream).", shards, n,
                 offsetof(sg_route_metrics_t, shared_subscribers));
    route_family(f, "ssegate_grpc_calls_active", "gauge", "gRPC calls being relayed.", shards, n,
                 offsetof(sg_route_metrics_t, grpc_active));
    head(f, "ssegate_grpc_calls_total", "counter",
         "gRPC calls ended, by grpc-status (the backend's, or the gateway's own error).");
    for (int c = 0; c < SG_GRPC_CODES; c++) {
        char extra[24];
        snprintf(extra, sizeof(extra), ",code=\"%d\"", c);
        /* 17 codes per route: code 0 always (the family is never empty), the others once they occurred. */
        route_samples(f, "ssegate_grpc_calls_total", shards, n,
                      offsetof(sg_route_metrics_t, grpc_status) + (size_t)c * sizeof(sg_counter_t), extra, c != 0);
    }
    head(f, "ssegate_fanout_streams", "gauge", "Shared SSE upstream streams open (one per instance and sharing key).");
    fprintf(f, "ssegate_fanout_streams %" PRIu64 "\n", SUM(fanout_streams));
    head(f, "ssegate_fanout_follower_streams", "gauge", "Workers' local feeds of shared SSE streams whose upstream "
         "another worker holds.");
    fprintf(f, "ssegate_fanout_follower_streams %" PRIu64 "\n", SUM(fanout_followers));
    head(f, "ssegate_fanout_worker_subscribers", "gauge", "Clients subscribed to shared SSE streams, by worker.");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "ssegate_fanout_worker_subscribers{worker=\"%zu\"} %" PRIu64 "\n", i,
                ld(&shards[i]->fanout_subscribers));
    head(f, "ssegate_fanout_subscribers", "gauge", "Clients subscribed to shared SSE streams.");
    fprintf(f, "ssegate_fanout_subscribers %" PRIu64 "\n", SUM(fanout_subscribers));
    head(f, "ssegate_fanout_subscribers_total", "counter", "Clients that joined shared SSE streams.");
    fprintf(f, "ssegate_fanout_subscribers_total %" PRIu64 "\n", SUM(fanout_subscribers_total));
    head(f, "ssegate_fanout_ring_events", "gauge", "Events held in the replay rings of shared streams.");
    fprintf(f, "ssegate_fanout_ring_events %" PRIu64 "\n", SUM(fanout_ring_events));
    head(f, "ssegate_fanout_ring_bytes", "gauge", "Bytes of the events held in replay rings.");
    fprintf(f, "ssegate_fanout_ring_bytes %" PRIu64 "\n", SUM(fanout_ring_bytes));
    head(f, "ssegate_fanout_replays_total", "counter", "Subscribers that arrived with Last-Event-ID, by how they were "
         "answered.");
    fprintf(f, "ssegate_fanout_replays_total{source=\"ring\"} %" PRIu64 "\n", SUM(fanout_replays[0]));
    fprintf(f, "ssegate_fanout_replays_total{source=\"backend\"} %" PRIu64 "\n", SUM(fanout_replays[1]));
    fprintf(f, "ssegate_fanout_replays_total{source=\"live\"} %" PRIu64 "\n", SUM(fanout_replays[2]));
    head(f, "ssegate_fanout_failovers_total", "counter", "Shared upstream streams resumed with Last-Event-ID after "
         "they ended.");
    fprintf(f, "ssegate_fanout_failovers_total %" PRIu64 "\n", SUM(fanout_failovers));
    head(f, "ssegate_fanout_merges_total", "counter", "Subscribers replayed by the backend (a Last-Event-ID older than "
         "the ring) that then moved onto the shared stream.");
    fprintf(f, "ssegate_fanout_merges_total %" PRIu64 "\n", SUM(fanout_merges));
    head(f, "ssegate_fanout_slow_subscribers_total", "counter", "Slow subscribers, by what was done.");
    fprintf(f, "ssegate_fanout_slow_subscribers_total{action=\"replay\"} %" PRIu64 "\n", SUM(fanout_slow[0]));
    fprintf(f, "ssegate_fanout_slow_subscribers_total{action=\"close\"} %" PRIu64 "\n", SUM(fanout_slow[1]));
    head(f, "ssegate_fanout_events_total", "counter", "Events received on shared upstream streams.");
    fprintf(f, "ssegate_fanout_events_total %" PRIu64 "\n", SUM(fanout_events));
    head(f, "ssegate_fanout_deliveries_total", "counter", "Events handed to subscribers of shared streams.");
    fprintf(f, "ssegate_fanout_deliveries_total %" PRIu64 "\n", SUM(fanout_deliveries));
    ws_families(f, shards, n);
    head(f, "ssegate_bytes_received_total", "counter", "Bytes read from clients.");
    fprintf(f, "ssegate_bytes_received_total %" PRIu64 "\n", SUM(bytes_in));
    head(f, "ssegate_bytes_sent_total", "counter", "Response bytes relayed to clients.");
    fprintf(f, "ssegate_bytes_sent_total %" PRIu64 "\n", SUM(bytes_out));
    head(f, "ssegate_upstream_responses_total", "counter", "Upstream responses by status class.");
    for (int c = 1; c <= 5; c++)
        fprintf(f, "ssegate_upstream_responses_total{class=\"%dxx\"} %" PRIu64 "\n", c, SUM(upstream_status[c]));
    head(f, "ssegate_upstream_connect_errors_total", "counter", "Upstream connections refused or timed out.");
    fprintf(f, "ssegate_upstream_connect_errors_total %" PRIu64 "\n", SUM(upstream_connect_errors));
    head(f, "ssegate_upstream_tls_errors_total", "counter",
         "TLS connections to backends that failed, by reason (each answered 502).");
    for (int r = 0; r < SG_UPTLS_N; r++)
        fprintf(f, "ssegate_upstream_tls_errors_total{reason=\"%s\"} %" PRIu64 "\n", sg_metrics_uptls_reasons[r],
                SUM(upstream_tls_errors[r]));
    head(f, "ssegate_upstream_tls_handshakes_total", "counter",
         "TLS handshakes with backends that succeeded: full, or resumed from a session of an earlier connection.");
    fprintf(f, "ssegate_upstream_tls_handshakes_total{resumed=\"false\"} %" PRIu64 "\n",
            SUM(upstream_tls_handshakes[0]));
    fprintf(f, "ssegate_upstream_tls_handshakes_total{resumed=\"true\"} %" PRIu64 "\n",
            SUM(upstream_tls_handshakes[1]));
    head(f, "ssegate_upstream_h2_sessions", "gauge", "HTTP/2 sessions to backends (open or connecting).");
    fprintf(f, "ssegate_upstream_h2_sessions %" PRIu64 "\n", SUM(upstream_h2_sessions));
    head(f, "ssegate_upstream_h2_streams", "gauge",
         "Streams on HTTP/2 sessions to backends, or waiting for one (divide by the sessions for streams per session).");
    fprintf(f, "ssegate_upstream_h2_streams %" PRIu64 "\n", SUM(upstream_h2_streams));
    head(f, "ssegate_upstream_h2_goaways_total", "counter", "GOAWAY frames received from HTTP/2 backends.");
    fprintf(f, "ssegate_upstream_h2_goaways_total %" PRIu64 "\n", SUM(upstream_h2_goaways));
    head(f, "ssegate_upstream_h2_retries_total", "counter",
         "Upstream HTTP/2 streams the backend refused unprocessed (REFUSED_STREAM, GOAWAY), sent again on another "
         "connection.");
    fprintf(f, "ssegate_upstream_h2_retries_total %" PRIu64 "\n", SUM(upstream_h2_retries));
    head(f, "ssegate_upstream_h2_ping_timeouts_total", "counter",
         "HTTP/2 backend sessions closed because a PING was not answered within --h2-upstream-ping-timeout.");
    fprintf(f, "ssegate_upstream_h2_ping_timeouts_total %" PRIu64 "\n", SUM(upstream_h2_ping_timeouts));
    head(f, "ssegate_upstream_trailers_total", "counter", "Upstream responses that ended with trailers.");
    fprintf(f, "ssegate_upstream_trailers_total %" PRIu64 "\n", SUM(upstream_trailers));
    head(f, "ssegate_upstream_h2_alpn_fallbacks_total", "counter",
         "TLS connections to an HTTP/2 (https) port whose backend chose http/1.1 in ALPN.");
    fprintf(f, "ssegate_upstream_h2_alpn_fallbacks_total %" PRIu64 "\n", SUM(upstream_h2_alpn_h1));
    head(f, "ssegate_slow_consumer_closes_total", "counter", "Clients closed for taking no bytes too long.");
    fprintf(f, "ssegate_slow_consumer_closes_total %" PRIu64 "\n", SUM(slow_consumer_closes));
    head(f, "ssegate_h2_buffered_bytes", "gauge",
         "Response bytes queued on HTTP/2 streams, waiting for the client's flow-control window or socket.");
    fprintf(f, "ssegate_h2_buffered_bytes %" PRIu64 "\n", SUM(h2_buffered_bytes));
    head(f, "ssegate_h2_buffer_pauses_total", "counter",
         "Times an HTTP/2 connection's buffer (--h2-conn-buffer) filled and its streams' upstream reads paused.");
    fprintf(f, "ssegate_h2_buffer_pauses_total %" PRIu64 "\n", SUM(h2_budget_pauses));
    head(f, "ssegate_h2_stall_resets_total", "counter",
         "HTTP/2 streams reset after --stall-timeout with bytes queued and a zero flow-control window.");
    fprintf(f, "ssegate_h2_stall_resets_total %" PRIu64 "\n", SUM(h2_stall_resets));
    head(f, "ssegate_h2_stall_closes_total", "counter",
         "HTTP/2 connections closed (GOAWAY) because every stream was blocked by flow control that long.");
    fprintf(f, "ssegate_h2_stall_closes_total %" PRIu64 "\n", SUM(h2_stall_closes));
    head(f, "ssegate_h2_data_bytes_total", "counter",
         "HTTP/2 DATA payload bytes sent to clients: copied into the output, or queued by reference to a shared "
         "stream's event (no copy per subscriber).");
    fprintf(f, "ssegate_h2_data_bytes_total{how=\"copied\"} %" PRIu64 "\n", SUM(h2_data_bytes[0]));
    fprintf(f, "ssegate_h2_data_bytes_total{how=\"reference\"} %" PRIu64 "\n", SUM(h2_data_bytes[1]));
    head(f, "ssegate_tls_handshakes_total", "counter", "TLS handshakes by result (failed includes timed out).");
    fprintf(f, "ssegate_tls_handshakes_total{result=\"ok\"} %" PRIu64 "\n", SUM(tls_handshakes[0]));
    fprintf(f, "ssegate_tls_handshakes_total{result=\"failed\"} %" PRIu64 "\n", SUM(tls_handshakes[1]));
    head(f, "ssegate_worker_saturated_rounds_total", "counter",
         "Loop rounds that found a full batch of ready sockets, each followed by --saturation-pause-us.");
    fprintf(f, "ssegate_worker_saturated_rounds_total %" PRIu64 "\n", SUM(saturated_rounds));
    head(f, "ssegate_worker_relay_full_rounds_total", "counter",
         "Loop rounds that found a full batch of ready sockets, at least half of them tunnels (WebSocket relays), "
         "flushed at once and not paused (--saturation-tunnels relay).");
    fprintf(f, "ssegate_worker_relay_full_rounds_total %" PRIu64 "\n", SUM(relay_full_rounds));
    head(f, "ssegate_access_log_dropped_total", "counter", "Access log lines dropped (log pipe full).");
    fprintf(f, "ssegate_access_log_dropped_total %" PRIu64 "\n", SUM(log_dropped));
    head(f, "ssegate_accept_fd_limit_total", "counter",
         "Accepts that failed for want of a file descriptor (EMFILE, ENFILE, ENOBUFS, ENOMEM); each pauses that "
         "listener.");
    fprintf(f, "ssegate_accept_fd_limit_total{listener=\"traffic\"} %" PRIu64 "\n", SUM(accept_fd_limit));
    fprintf(f, "ssegate_accept_fd_limit_total{listener=\"admin\"} %" PRIu64 "\n", g->admin_accept_fd_limit);
    head(f, "ssegate_admin_reserve_accepts_total", "counter",
         "Admin connections (probes) accepted on a descriptor held in reserve, at the fd limit.");
    fprintf(f, "ssegate_admin_reserve_accepts_total %" PRIu64 "\n", g->admin_reserve_accepts);
    head(f, "ssegate_h2_streams_reset_total", "counter",
         "HTTP/2 streams reset by the client, by whether their upstream exchange had started.");
    fprintf(f, "ssegate_h2_streams_reset_total{started=\"no\"} %" PRIu64 "\n", SUM(h2_reset_unstarted));
    fprintf(f, "ssegate_h2_streams_reset_total{started=\"yes\"} %" PRIu64 "\n", SUM(h2_reset_started));
    head(f, "ssegate_h2_reset_flood_goaways_total", "counter",
         "HTTP/2 connections closed (GOAWAY ENHANCE_YOUR_CALM) for resetting more started streams than "
         "--h2-reset-budget.");
    fprintf(f, "ssegate_h2_reset_flood_goaways_total %" PRIu64 "\n", SUM(h2_reset_goaways));
    head(f, "ssegate_client_rate_refused_total", "counter",
         "Requests refused (503, HTTP/2 REFUSED_STREAM) by the per-client-address budget --client-rate.");
    fprintf(f, "ssegate_client_rate_refused_total %" PRIu64 "\n", SUM(client_rate_refused));
    head(f, "ssegate_cors_preflights_total", "counter",
         "CORS preflights answered by the gateway (routes with a CORS filter), by result.");
    fprintf(f, "ssegate_cors_preflights_total{result=\"allowed\"} %" PRIu64 "\n", SUM(cors_preflights[1]));
    fprintf(f, "ssegate_cors_preflights_total{result=\"refused\"} %" PRIu64 "\n", SUM(cors_preflights[0]));
    histogram(f, "ssegate_request_duration_seconds", "Time from request head to the end of the response.",
              shards, n, offsetof(sg_metrics_t, duration));
    histogram(f, "ssegate_time_to_first_byte_seconds", "Time from request head to the upstream response head.",
              shards, n, offsetof(sg_metrics_t, ttfb));
    head(f, "ssegate_draining", "gauge", "1 while draining after SIGTERM/SIGINT.");
    fprintf(f, "ssegate_draining %d\n", g->draining ? 1 : 0);
    head(f, "ssegate_drain_connections_remaining", "gauge", "Client connections left while draining.");
    fprintf(f, "ssegate_drain_connections_remaining %zu\n", g->draining ? g->drain_remaining : (size_t)0);
    head(f, "ssegate_config_reloads_total", "counter", "Config reloads (SIGHUP) by result.");
    fprintf(f, "ssegate_config_reloads_total{result=\"ok\"} %" PRIu64 "\n", g->reloads_ok);
    fprintf(f, "ssegate_config_reloads_total{result=\"failed\"} %" PRIu64 "\n", g->reloads_failed);
    head(f, "ssegate_config_generation", "gauge", "Generation of the config in force (1 at start).");
    fprintf(f, "ssegate_config_generation %" PRIu64 "\n", g->config_generation);
}
