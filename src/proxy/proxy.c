/* proxy.c: one stream from request to response: route, pick a backend, build the upstream request
 * (filters, X-Forwarded-*, X-Request-Id), relay the response (SSE-aware), timeouts and the access log. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/tls.h"
#include "proxy/health.h"
#include "core/escape.h"
#include "core/log.h"
#include "http/admit.h"
#include "proxy/proxy.h"
#include "config/cors.h"
#include "config/route.h"
#include "codec/sse.h"
#include "proxy/tunnel.h"
#include "proxy/grpc.h"
#include "proxy/reqhead.h"
#include "proxy/upclient.h"
#include "proxy/upstream.h"
#include "proxy/wsproxy.h"

#define MAX_OUT_HEADERS (SG_H1_MAX_HEADERS + 16)
#define LOG_REQ_MAX 512

struct sg_stream {
    uint8_t kind;                   /* SG_STREAM_KIND_PROXY (stream.h): first, always 0 */
    bool has_body;
    bool body_chunked;
    bool req_done;
    bool resp_started;
    bool head_request;
    bool close_at_boundary;         /* timeout hit mid-event: end at the next event boundary */
    bool retry_hint;                /* send a retry: hint before that end (draining) */
    bool epgone;                    /* drain_at_ms is an end planned because the endpoint left (epgone.c) */
    bool shared_up;                 /* feeds a shared stream (fanout/): such an end sends no retry: hint */
    bool finished;
    uint8_t attempts;               /* upstream connections tried for this request */
    uint8_t retries;                /* HTTPRoute retries done */
    uint8_t mproto;
    bool set_affinity;              /* the response carries a Set-Cookie binding the client to s->ep */
    bool grpc;                      /* a gRPC call over HTTP/2: the gateway's own answers are gRPC statuses */
    bool grpc_counted;              /* counted in rm->grpc_active */
    bool grpc_deadline;             /* the deadline is the client's grpc-timeout: it outlasts the response head */
    bool trailers_sent;             /* the backend's trailers went to the client: they ended the response */
    int8_t grpc_status;             /* the call's grpc-status once known, else -1 */
    int8_t grpc_code;               /* >= 0: the status the next gateway answer gives (instead of the mapping) */
    int status;
    const sg_stream_ops_t *ops;
    void *down;
    sg_worker_t *worker;
    sg_config_t *cfg;               /* the generation this stream started with */
    const sg_rule_t *rule;
    const sg_backend_t *backend;
    const sg_endpoint_t *ep;
    sg_upclient_t *up;
    struct sse_state *sse;          /* allocated for SSE responses only */
    sg_tunnel_t *tunnel;            /* after a WebSocket switch: bytes both ways (tunnel.c) */
    sg_wsreq_t *ws;                 /* a WebSocket handshake (wsproxy.c); NULL otherwise */
    sg_timer_t timer;               /* route timeout / default time-to-headers / drain moment, the earliest */
    uint64_t deadline_ms;           /* route timeout (0: none) */
    uint64_t drain_at_ms;           /* drain close moment (0: none) */
    uint64_t retry_at_ms;           /* HTTPRoute retry after its backoff (0: none) */
    uint64_t start_ms;
    uint64_t bytes_out;
    const sg_endpoint_t *counted;   /* endpoint whose open-stream count includes this stream */
    char *reqinfo;                  /* "method path" for the access log */
    char *cors_origin;              /* the request's Origin when its rule's CORS filter allows it (NUL-terminated) */
    char *head_copy;                /* request head kept for one retry on a stale pooled connection */
    size_t head_len;
    sg_route_metrics_t *rm;         /* per-route counters of this worker, once routed */
    sg_listener_metrics_t *lm;      /* the listener's counters (they live as long as the worker) */
    const char *proto;              /* "HTTP/1.1", "HTTP/1.0", "HTTP/2": a static string */
    char client[64];
    char rid[40];
    sg_list_t wlink;                /* in w->streams */
};

_Static_assert(offsetof(struct sg_stream, kind) == 0, "sg_stream_kind() reads the first byte");

/* SSE-only state, allocated when a response turns out to be an event stream. */
typedef struct sse_state {
    sg_sse_t p;
    sg_timer_t hb;                  /* heartbeat: armed while the stream is idle */
    sg_stream_t *s;
    bool data_seen;                 /* the first upstream body byte has been relayed (or decided on) */
    bool inserted;                  /* we sent our own lines before any upstream byte */
    uint8_t bom_held;               /* bytes of a leading BOM held back while undecided */
} sse_state_t;

static const char BOM[3] = "\xEF\xBB\xBF";

/* May we insert our own lines (heartbeat, retry hint) now? Only between events, and never while a leading
 * BOM is half-read. Before any upstream byte it is allowed: if the stream then starts with a BOM, that BOM
 * is dropped, since after our bytes it would no longer be leading (a client strips a leading BOM anyway). */
static bool can_insert(const sse_state_t *x)
{
    if (x->bom_held)
        return false;
    return !x->data_seen || sg_sse_at_boundary(&x->p);
}

static void up_on_head(void *ctx, const sg_h1_msg_t *msg);
static void ws_switch(sg_stream_t *s, sg_h1_header_t *out, size_t n);
static void up_on_body(void *ctx, const char *p, size_t n);
static void up_on_end(void *ctx);
static void up_on_error(void *ctx, int err);
static void up_on_drained(void *ctx);
static void up_on_trailers(void *ctx, const sg_h1_header_t *h, size_t n);

static const sg_upclient_cbs_t up_cbs = {
    .on_trailers = up_on_trailers,
    .on_head = up_on_head,
    .on_body = up_on_body,
    .on_end = up_on_end,
    .on_error = up_on_error,
    .on_drained = up_on_drained,
};

bool sg_proxy_is_sse(const sg_stream_t *s)
{
    return s->sse != NULL;
}

static void access_log(sg_stream_t *s)
{
    int fd = s->worker->settings->log_fd;
    if (fd < 0)
        return;
    char line[4096]; /* PIPE_BUF: one atomic write; room for a path of LOG_REQ_MAX bytes all escaped */
    size_t n = sg_log_time(line, sizeof(line));
    const sg_route_t *r = s->rule ? s->rule->route : NULL;
    double dur = (double)(s->worker->loop.now_ms - s->start_ms);
    /* The request id may be the client's own X-Request-Id: escaped like every field that comes from input. */
    char rid[4 * sizeof(s->rid)];
    sg_escape(rid, sizeof(rid), s->rid, strlen(s->rid), SG_ESC_FIELD);
    char gs[16] = ""; /* a gRPC call's grpc-status (-1: none seen) */
    if (s->grpc)
        snprintf(gs, sizeof(gs), " grpc=%d", s->grpc_status);
    int k = snprintf(line + n, sizeof(line) - n,
                     " client=%s proto=%s %s status=%d bytes=%llu dur_ms=%.0f route=%s%s%s backend=%s events=%llu%s "
                     "rid=%s\n",
                     s->client, s->proto, s->reqinfo ? s->reqinfo : "method=- path=-", s->status,
                     (unsigned long long)s->bytes_out, dur, r ? r->ns : "-", r ? "/" : "", r ? r->name : "",
                     s->ep ? s->ep->label : "-", (unsigned long long)(s->sse ? s->sse->p.events : 0), gs, rid);
    if (k < 0)
        return;
    n += (size_t)k;
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    if (sg_accesslog_write(fd, line, n) == SG_EAGAIN)
        sg_counter_add(&s->worker->metrics.log_dropped, 1);
}

static void count_endpoint(sg_stream_t *s, const sg_endpoint_t *ep)
{
    if (s->counted == ep)
        return;
    if (s->counted)
        sg_health_stream_end(s->counted->health);
    s->counted = ep;
    if (ep)
        sg_health_stream_begin(ep->health);
}

static int64_t heartbeat_ms(const sg_stream_t *s)
{
    int64_t r = s->rule ? s->rule->heartbeat_ms : SG_TIMEOUT_UNSET;
    return r == SG_TIMEOUT_UNSET ? s->worker->settings->heartbeat_ms : r;
}

static void stream_free(sg_stream_t *s)
{
    count_endpoint(s, NULL);
    sg_metrics_t *m = &s->worker->metrics;
    sg_counter_sub(&s->lm->streams_active[s->mproto], 1);
    sg_metrics_observe(&m->duration, (s->worker->loop.now_ms - s->start_ms) * 1000);
    if (s->sse && s->rm)
        sg_counter_sub(&s->rm->sse_active, 1);
    if (s->grpc_counted) {
        sg_counter_sub(&s->rm->grpc_active, 1);
        sg_counter_add(&s->rm->grpc_status[s->grpc_status >= 0 ? s->grpc_status : SG_GRPC_UNKNOWN], 1);
    }
    sg_timer_cancel(&s->worker->loop.wheel, &s->timer);
    if (s->sse)
        sg_timer_cancel(&s->worker->loop.wheel, &s->sse->hb);
    sg_wsproxy_end(s->ws, s->rm, s->tunnel != NULL, s->status);
    sg_tunnel_free(s->tunnel);
    if (s->up) {
        sg_upclient_release(s->up);
        s->up = NULL;
    }
    if (sg_list_linked(&s->wlink))
        sg_list_remove(&s->wlink);
    sg_config_unref(s->cfg);
    free(s->sse);
    free(s->reqinfo);
    free(s->cors_origin);
    free(s->head_copy);
    free(s);
}

/* Ends the stream: log, tell the downstream side (which may start its next request), free. */
static void finish(sg_stream_t *s, bool ok)
{
    if (s->finished)
        return;
    s->finished = true;
    if (s->up) {
        sg_upclient_release(s->up);
        s->up = NULL;
    }
    access_log(s);
    s->ops->detach(s->down, ok);
    stream_free(s);
}

/* Ends a gRPC call with a status of the gateway's: in trailers once the response has started, else Trailers-Only. */
static void end_grpc(sg_stream_t *s, int code, const char *msg)
{
    s->grpc_status = (int8_t)code;
    int rc = s->resp_started ? sg_grpc_end(s->ops, s->down, code, msg) : sg_grpc_answer(s->ops, s->down, code, msg);
    s->status = s->resp_started ? s->status : 200;
    s->resp_started = true;
    finish(s, rc >= 0);
}

/* A gRPC call gets the gateway's answer as a gRPC status (Trailers-Only), the body's line as grpc-message. */
static void respond_grpc(sg_stream_t *s, int status, const char *body)
{
    end_grpc(s, s->grpc_code >= 0 ? s->grpc_code : sg_grpc_code_for_http(status), body);
}

/* Answers with a status and a one-line body (nothing of a response has been sent yet). */
static void respond(sg_stream_t *s, int status, const char *body, const sg_h1_header_t *extra, size_t nextra)
{
    sg_h1_header_t hdrs[4 + SG_CORS_MAX_HEADERS];
    size_t n = 0;
    size_t blen = strlen(body);

    if (s->grpc) {
        respond_grpc(s, status, body);
        return;
    }
    s->status = status;
    s->resp_started = true;
    hdrs[n++] = (sg_h1_header_t){SG_STR("Content-Type"), SG_STR("text/plain")};
    for (size_t i = 0; i < nextra && n < 4; i++)
        hdrs[n++] = extra[i];
    /* The gateway's own answers on a CORS route (redirects, 5xx) carry the policy too, so a page can read them. */
    if (s->rule != NULL && s->rule->filters.cors != NULL)
        n += sg_cors_actual(s->rule->filters.cors, sg_str_c(s->cors_origin), hdrs + n);
    int rc = s->ops->send_head(s->down, status, hdrs, n, (int64_t)blen, s->head_request);
    if (rc >= 0 || rc == SG_EAGAIN) {
        if (!s->head_request)
            rc = s->ops->send_body(s->down, body, blen);
        s->bytes_out += s->head_request ? 0 : blen;
        if (rc >= 0 || rc == SG_EAGAIN)
            rc = s->ops->send_end(s->down);
    }
    /* With a request body still coming the connection cannot be reused; the downstream side knows. */
    finish(s, rc >= 0 || rc == SG_EAGAIN);
}

/* ---- timeouts, draining, heartbeats ---- */

static void end_sse_cleanly(sg_stream_t *s)
{
    int rc = 0;
    if (s->retry_hint) {
        /* Jittered reconnection delay: with the close moments already spread, reconnects do not
         * arrive as one wave at the remaining gateways. */
        char hint[40];
        uint32_t ms = 1000 + (uint32_t)(sg_worker_rand(s->worker) % 4000);
        size_t n = sg_sse_write_retry(hint, sizeof(hint), ms);
        s->bytes_out += n;
        rc = s->ops->send_body(s->down, hint, n);
    }
    if (rc >= 0 || rc == SG_EAGAIN)
        rc = s->ops->send_end(s->down);
    finish(s, rc >= 0 || rc == SG_EAGAIN);
}

/* Ends an SSE stream at the next event boundary (now, if it sits at one). */
static void end_at_boundary(sg_stream_t *s)
{
    if (can_insert(s->sse))
        end_sse_cleanly(s);
    else
        s->close_at_boundary = true;
}

static void arm(sg_stream_t *s)
{
    uint64_t at = s->deadline_ms;
    if (s->drain_at_ms && (at == 0 || s->drain_at_ms < at))
        at = s->drain_at_ms;
    if (s->retry_at_ms && (at == 0 || s->retry_at_ms < at))
        at = s->retry_at_ms;
    if (at)
        sg_timer_arm(&s->worker->loop.wheel, &s->timer, at);
    else
        sg_timer_cancel(&s->worker->loop.wheel, &s->timer);
}

static void retry_now(sg_stream_t *s);

static void timer_cb(sg_timer_t *t)
{
    sg_stream_t *s = SG_CONTAINER_OF(t, sg_stream_t, timer);
    uint64_t now = s->worker->loop.now_ms;

    if (s->retry_at_ms && now >= s->retry_at_ms && (s->deadline_ms == 0 || s->retry_at_ms < s->deadline_ms)) {
        retry_now(s);
        return;
    }

    if (s->drain_at_ms && now >= s->drain_at_ms && (s->deadline_ms == 0 || s->drain_at_ms <= s->deadline_ms)) {
        s->drain_at_ms = 0;
        if (s->tunnel != NULL) {
            sg_tunnel_close(s->tunnel, SG_WS_GOING_AWAY);
            arm(s);
            return;
        }
        if (s->sse != NULL) {
            s->retry_hint = !(s->epgone && s->shared_up);
            end_at_boundary(s);
            return;
        }
        if (s->grpc) { /* UNAVAILABLE: clients retry on another connection (this one had its GOAWAY) */
            end_grpc(s, SG_GRPC_UNAVAILABLE, "ssegate: the gateway is shutting down");
            return;
        }
        /* Not an event stream (yet): ordinary requests finish; the drain's hard deadline bounds them. */
        arm(s);
        return;
    }
    s->deadline_ms = 0;
    if (!s->resp_started) {
        respond(s, 504, "ssegate: upstream response timeout\n", NULL, 0);
        return;
    }
    if (s->sse != NULL) {
        end_at_boundary(s);
        return;
    }
    if (s->tunnel != NULL) {
        sg_tunnel_close(s->tunnel, SG_WS_GOING_AWAY); /* an explicit route timeout, as it cuts SSE */
        return;
    }
    if (s->grpc) {
        end_grpc(s, SG_GRPC_DEADLINE_EXCEEDED, s->grpc_deadline ? "ssegate: deadline exceeded (grpc-timeout)"
                                                                 : "ssegate: route timeout");
        return;
    }
    s->ops->abort(s->down);
    finish(s, false);
}

static void heartbeat_cb(sg_timer_t *t)
{
    sse_state_t *x = SG_CONTAINER_OF(t, sse_state_t, hb);
    sg_stream_t *s = x->s;
    int64_t every = heartbeat_ms(s);

    if (can_insert(x) && !s->close_at_boundary) {
        if (!x->data_seen)
            x->inserted = true;
        char hb[4];
        size_t n = sg_sse_write_heartbeat(hb, sizeof(hb));
        s->bytes_out += n;
        int rc = s->ops->send_body(s->down, hb, n);
        if (rc < 0 && rc != SG_EAGAIN) {
            s->ops->abort(s->down);
            finish(s, false);
            return;
        }
    }
    sg_timer_arm(&s->worker->loop.wheel, &x->hb, s->worker->loop.now_ms + (uint64_t)every);
}

void sg_proxy_drain(sg_stream_t *s, uint64_t at_ms)
{
    if (s->finished)
        return;
    s->drain_at_ms = at_ms ? at_ms : 1;
    s->epgone = false;
    arm(s);
}

bool sg_proxy_ep_of(const sg_stream_t *s, const sg_rule_t **rule, const sg_backend_t **be, const sg_endpoint_t **ep,
                    bool *planned)
{
    *rule = s->rule;
    *be = s->backend;
    *ep = s->ep;
    *planned = s->epgone;
    return !s->finished && s->sse != NULL && s->rule != NULL && s->backend != NULL && s->ep != NULL;
}

sg_stream_t *sg_proxy_stream_of(sg_list_t *n)
{
    return SG_CONTAINER_OF(n, sg_stream_t, wlink);
}

void sg_proxy_plan_end(sg_stream_t *s, uint64_t at_ms)
{
    if (s->finished || s->worker->draining || (at_ms == 0 && !s->epgone))
        return;
    s->drain_at_ms = at_ms;
    s->epgone = at_ms != 0;
    arm(s);
}

/* ---- request building ---- */

static void do_redirect(sg_stream_t *s, const sg_redirect_t *r, sg_str_t host, sg_str_t path, sg_str_t query,
                        size_t prefix_len, const sg_down_info_t *info)
{
    char loc[4096];
    sg_hbuf_t b = {loc, 0, sizeof(loc), false};
    const char *req_scheme = info->tls ? "https" : "http";
    const char *scheme = r->scheme ? r->scheme : req_scheme;
    int port;

    if (r->port > 0)
        port = r->port;
    else if (r->scheme)
        port = strcmp(scheme, "https") == 0 ? 443 : strcmp(scheme, "http") == 0 ? 80 : info->conn->port;
    else
        port = info->conn->port;
    sg_hbuf_put_str(&b, sg_str_c(scheme));
    sg_hbuf_put(&b, "://", 3);
    sg_hbuf_put_str(&b, r->hostname ? sg_str_c(r->hostname) : sg_reqhead_host_only(host));
    bool default_port = (strcmp(scheme, "http") == 0 && port == 80) || (strcmp(scheme, "https") == 0 && port == 443);
    if (!default_port) {
        char pb[16];
        int k = snprintf(pb, sizeof(pb), ":%d", port);
        sg_hbuf_put(&b, pb, (size_t)k);
    }
    sg_reqhead_put_path(&b, r->path_kind, r->path, path, prefix_len);
    if (query.n > 0) {
        sg_hbuf_put(&b, "?", 1);
        sg_hbuf_put_str(&b, query);
    }
    if (b.overflow) {
        respond(s, 500, "ssegate: redirect location too long\n", NULL, 0);
        return;
    }
    sg_h1_header_t h = {SG_STR("Location"), {loc, b.n}};
    respond(s, r->status ? r->status : 302, "", &h, 1);
}

/* Answers a CORS preflight for `rule` itself: 204, with the Access-Control-Allow-* headers when the origin, method
 * and headers asked for are allowed, without them otherwise. The backend never sees it. */
static void answer_preflight(sg_stream_t *s, const sg_rule_t *rule, const sg_h1_msg_t *msg)
{
    sg_h1_header_t h[SG_CORS_MAX_HEADERS];
    size_t n;

    s->rule = rule;
    s->rm = sg_metrics_route(&s->worker->metrics, rule->route->ns, rule->route->name);
    sg_counter_add(&s->rm->requests, 1);
    bool ok = sg_cors_preflight(rule->filters.cors, msg, h, &n);
    sg_counter_add(&s->worker->metrics.cors_preflights[ok ? 1 : 0], 1);
    s->status = 204;
    s->resp_started = true;
    int rc = s->ops->send_head(s->down, 204, h, n, 0, true);
    if (rc >= 0 || rc == SG_EAGAIN)
        rc = s->ops->send_end(s->down);
    finish(s, rc >= 0 || rc == SG_EAGAIN);
}

/* Keeps the request's Origin when the rule's CORS filter allows it, for the response head. */
static int keep_origin(sg_stream_t *s, const sg_h1_msg_t *msg)
{
    const sg_cors_t *c = s->rule->filters.cors;
    sg_str_t o = sg_cors_header(msg, "origin");
    if (c == NULL || !sg_cors_origin_allowed(c, o))
        return 0;
    s->cors_origin = malloc(o.n + 1);
    if (s->cors_origin == NULL)
        return -ENOMEM;
    memcpy(s->cors_origin, o.p, o.n);
    s->cors_origin[o.n] = '\0';
    return 0;
}

static void make_rid(sg_stream_t *s, const sg_h1_msg_t *msg)
{
    size_t from = 0;
    const sg_h1_header_t *h = sg_h1parse_find(msg, "x-request-id", &from);
    if (h != NULL && h->value.n > 0 && h->value.n < sizeof(s->rid)) {
        memcpy(s->rid, h->value.p, h->value.n);
        s->rid[h->value.n] = '\0';
        return;
    }
    sg_worker_t *w = s->worker;
    snprintf(s->rid, sizeof(s->rid), "%016llx%08llx", (unsigned long long)w->rid_prefix,
             (unsigned long long)(++w->rid_seq & 0xffffffffu));
}

/* Splits the request-target into path and query; absolute-form gives its authority too. */
static void split_target(sg_str_t t, sg_str_t *authority, sg_str_t *path, sg_str_t *query)
{
    authority->p = NULL;
    authority->n = 0;
    if (t.n > 7 && (sg_str_ieq((sg_str_t){t.p, 7}, SG_STR("http://")) ||
                    (t.n > 8 && sg_str_ieq((sg_str_t){t.p, 8}, SG_STR("https://"))))) {
        size_t skip = sg_lower(t.p[4]) == 's' ? 8 : 7;
        const char *a = t.p + skip, *end = t.p + t.n;
        const char *slash = a;
        while (slash < end && *slash != '/' && *slash != '?')
            slash++;
        *authority = (sg_str_t){a, (size_t)(slash - a)};
        t = (sg_str_t){slash, (size_t)(end - slash)};
        if (t.n == 0)
            t = SG_STR("/");
    }
    const char *q = memchr(t.p, '?', t.n);
    if (q) {
        *path = (sg_str_t){t.p, (size_t)(q - t.p)};
        *query = (sg_str_t){q + 1, t.n - (size_t)(q - t.p) - 1};
    } else {
        *path = t;
        *query = (sg_str_t){"", 0};
    }
}

static int build_request(sg_stream_t *s, const sg_h1_msg_t *msg, const sg_route_match_t *m, sg_str_t host,
                         sg_str_t path, sg_str_t query, const sg_down_info_t *info, sg_hbuf_t *b)
{
    const sg_filters_t *rf = &m->rule->filters;
    const sg_filters_t *bf = &s->backend->filters;
    const sg_rewrite_t *rw = bf->rewrite ? bf->rewrite : rf->rewrite;
    char ip[INET6_ADDRSTRLEN];

    sg_hbuf_put_str(b, s->ws != NULL ? SG_STR("GET") : msg->method); /* HTTP/2 extended CONNECT becomes an upgrade */
    sg_hbuf_put(b, " ", 1);
    if (rw && rw->path_kind != SG_PATHMOD_NONE)
        sg_reqhead_put_path(b, rw->path_kind, rw->path, path, m->prefix_len);
    else
        sg_hbuf_put_str(b, path);
    if (query.n > 0 || (msg->target.n > 0 && msg->target.p[msg->target.n - 1] == '?')) {
        sg_hbuf_put(b, "?", 1);
        sg_hbuf_put_str(b, query);
    }
    sg_hbuf_put(b, " HTTP/1.1\r\n", 11);

    bool have_host = false;
    sg_str_t xff = {0};
    for (size_t i = 0; i < msg->nheaders; i++) {
        sg_str_t name = msg->headers[i].name;
        if (s->backend->proto == SG_BACKEND_H2 && sg_str_ieq_lit(name, "te") &&
            sg_str_ieq_lit(msg->headers[i].value, "trailers")) {
            /* The one TE an HTTP/2 request may carry (gRPC needs it): upclient_h2.c keeps it, drops Connection. */
            sg_hbuf_put(b, "TE: trailers\r\nConnection: TE\r\n", 30);
            continue;
        }
        if (sg_reqhead_hop_by_hop(name) || sg_reqhead_in_connection(msg, name))
            continue;
        if (sg_str_ieq_lit(name, "content-length") || sg_str_ieq_lit(name, "expect"))
            continue;
        if (sg_str_ieq_lit(name, "x-forwarded-for")) {
            if (xff.n == 0)
                xff = msg->headers[i].value;
            continue;
        }
        /* X-Forwarded-Client-Cert is ours alone, on every listener: a client must never pass one on. */
        if (sg_str_ieq_lit(name, "x-forwarded-proto") || sg_str_ieq_lit(name, "x-forwarded-host") ||
            sg_str_ieq_lit(name, "x-request-id") || sg_str_ieq_lit(name, "x-forwarded-client-cert"))
            continue;
        if (sg_str_ieq_lit(name, "host")) {
            have_host = true;
            sg_hbuf_put_header(b, name, rw && rw->hostname ? sg_str_c(rw->hostname) : msg->headers[i].value);
            continue;
        }
        if (sg_reqhead_mod_drops(rf->req_headers, name) || sg_reqhead_mod_drops(bf->req_headers, name))
            continue;
        if (s->ws != NULL && sg_wsproxy_drop_header(s->ws, name))
            continue;
        sg_hbuf_put_header(b, name, msg->headers[i].value);
    }
    if (!have_host && host.n > 0)
        sg_hbuf_put_header(b, SG_STR("Host"), rw && rw->hostname ? sg_str_c(rw->hostname) : host);
    sg_reqhead_mod_emit(b, rf->req_headers);
    sg_reqhead_mod_emit(b, bf->req_headers);

    sg_conn_peer_ip(info->conn, ip, sizeof(ip));
    sg_hbuf_put(b, "X-Forwarded-For: ", 17);
    if (xff.n > 0) {
        sg_hbuf_put_str(b, xff);
        sg_hbuf_put(b, ", ", 2);
    }
    sg_hbuf_put_str(b, sg_str_c(ip));
    sg_hbuf_put(b, "\r\n", 2);
    sg_hbuf_put_header(b, SG_STR("X-Forwarded-Proto"), info->tls ? SG_STR("https") : SG_STR("http"));
    if (host.n > 0)
        sg_hbuf_put_header(b, SG_STR("X-Forwarded-Host"), host);
    sg_hbuf_put_header(b, SG_STR("X-Request-Id"), sg_str_c(s->rid));
    if (info->client_cert_state != SG_TLS_CLIENT_NONE && info->client_cert != NULL) {
        /* Envoy's element (docs/operations.md), plus Verified: true only for a certificate that chains to the
         * listener's CAs; AllowInsecureFallback also lets in clients without one, or with one that did not. */
        bool ok = info->client_cert_state == SG_TLS_CLIENT_VERIFIED;
        sg_hbuf_put(b, "X-Forwarded-Client-Cert: ", 25);
        sg_hbuf_put_str(b, sg_str_c(info->client_cert));
        if (info->client_cert[0] != '\0')
            sg_hbuf_put(b, ";", 1);
        sg_hbuf_put(b, ok ? "Verified=true\r\n" : "Verified=false\r\n", ok ? 15 : 16);
    }
    if (s->ws != NULL) {
        sg_wsproxy_put_upgrade(s->ws, b->p, &b->n, b->cap, &b->overflow);
    } else if (msg->body == SG_H1_BODY_LENGTH) {
        char cl[40];
        int k = snprintf(cl, sizeof(cl), "Content-Length: %llu\r\n", (unsigned long long)msg->content_length);
        sg_hbuf_put(b, cl, (size_t)k);
    } else if (msg->body == SG_H1_BODY_CHUNKED) {
        sg_hbuf_put(b, "Transfer-Encoding: chunked\r\n", 28);
    }
    sg_hbuf_put(b, "\r\n", 2);
    return b->overflow ? -E2BIG : 0;
}

/* The value of cookie `name` in the request's Cookie headers. */
static sg_str_t find_cookie(const sg_h1_msg_t *msg, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < msg->nheaders; i++) {
        if (!sg_str_ieq_lit(msg->headers[i].name, "cookie"))
            continue;
        sg_str_t v = msg->headers[i].value;
        size_t a = 0;
        while (a < v.n) {
            while (a < v.n && (v.p[a] == ' ' || v.p[a] == ';'))
                a++;
            size_t e = a;
            while (e < v.n && v.p[e] != ';')
                e++;
            if (e - a > nl && memcmp(v.p + a, name, nl) == 0 && v.p[a + nl] == '=')
                return (sg_str_t){v.p + a + nl + 1, e - a - nl - 1};
            a = e;
        }
    }
    return (sg_str_t){NULL, 0};
}

/* Chooses s->backend's endpoint: the client's affinity endpoint when it is usable, else by strategy. */
static void pick_endpoint(sg_stream_t *s, const sg_h1_msg_t *msg, const sg_down_info_t *info)
{
    const sg_affinity_t *aff = &s->rule->affinity;
    sg_pick_ctx_t ctx = {{NULL, 0}, {NULL, 0}};
    char ip[64];

    if (aff->type != SG_AFFINITY_NONE && aff->cookie) {
        ctx.affinity = find_cookie(msg, aff->cookie);
        const sg_backend_t *b = NULL;
        const sg_endpoint_t *ep = ctx.affinity.n ? sg_upstream_find_affinity(s->worker, s->rule, ctx.affinity, &b)
                                                 : NULL;
        if (ep != NULL) {
            s->backend = b;
            s->ep = ep;
            return;
        }
        s->set_affinity = true;
    }
    if (s->backend->lb == SG_LB_RING_HASH) {
        size_t from = 0;
        const sg_h1_header_t *h = s->backend->hash_header ? sg_h1parse_find(msg, s->backend->hash_header, &from)
                                                          : NULL;
        if (h != NULL) {
            ctx.hash_key = h->value;
        } else if (ctx.affinity.n > 0) {
            ctx.hash_key = ctx.affinity;
        } else {
            sg_conn_peer_ip(info->conn, ip, sizeof(ip));
            ctx.hash_key = sg_str_c(ip);
        }
    }
    s->ep = sg_upstream_pick_endpoint(s->worker, s->backend, &ctx);
}

/* The client's address is over its budget of new upstream exchanges (--client-rate): no work for it. */
static void refuse(sg_stream_t *s, const sg_down_info_t *info)
{
    sg_worker_t *w = s->worker;
    uint64_t held = 0;
    sg_counter_add(&w->metrics.client_rate_refused, 1);
    if (sg_admit_may_log(w->admit, &info->conn->peer, SG_ADMIT_LOG_RATE, w->loop.now_ms, &held)) {
        char ip[64];
        sg_conn_peer_ip(info->conn, ip, sizeof(ip));
        sg_log_info("client %s: over --client-rate (%u new upstream exchanges/s per worker): refused "
                    "(%llu more such lines suppressed)", ip, w->settings->client_rate, (unsigned long long)held);
    }
    if (s->ops->refuse != NULL) {
        s->status = 503;
        s->resp_started = true;
        s->ops->refuse(s->down);
        finish(s, true);
        return;
    }
    sg_h1_header_t ra = {SG_STR("Retry-After"), SG_STR("1")};
    respond(s, 503, "ssegate: too many new requests from this client address\n", &ra, 1);
}

static int open_upstream(sg_stream_t *s)
{
    int err = 0;
    count_endpoint(s, s->ep);
    s->up = sg_upclient_open(s->worker, (const struct sockaddr *)&s->ep->addr, s->ep->addrlen, s->backend->tls,
                             /* A WebSocket goes to its backend as an HTTP/1.1 upgrade, whatever the port's protocol. */
                             s->backend->proto == SG_BACKEND_H2 && s->ws == NULL ? SG_UPCLIENT_H2 : SG_UPCLIENT_H1,
                             &up_cbs, s, s->head_request, &err);
    if (s->up != NULL && s->ws != NULL)
        sg_upclient_expect_upgrade(s->up);
    return s->up ? 0 : err;
}

static void fail_connect(sg_stream_t *s, int err)
{
    sg_counter_add(&s->worker->metrics.upstream_connect_errors, 1);
    if (s->ep)
        sg_health_report_failure(s->ep->health, s->worker->loop.now_ms);
    if (err == -ECONNREFUSED) {
        respond(s, 502, "ssegate: upstream connection refused\n", NULL, 0);
    } else if (err == -ETIMEDOUT) {
        s->grpc_code = SG_GRPC_UNAVAILABLE; /* the backend is unreachable: not the call's deadline */
        respond(s, 504, "ssegate: upstream connect timeout\n", NULL, 0);
    }
    else
        respond(s, 502, "ssegate: upstream connect failed\n", NULL, 0);
}

sg_stream_t *sg_proxy_start(sg_worker_t *w, const sg_stream_ops_t *ops, void *down, const sg_down_info_t *info,
                            const sg_h1_msg_t *msg, bool has_body, int64_t body_len)
{
    sg_stream_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->ops = ops;
    s->down = down;
    s->worker = w;
    s->cfg = w->cfg;
    sg_config_ref(s->cfg);
    s->start_ms = w->loop.now_ms;
    s->has_body = has_body;
    s->body_chunked = has_body && body_len < 0;
    s->head_request = sg_str_eq(msg->method, SG_STR("HEAD"));
    s->grpc_status = -1;
    s->grpc_code = -1;
    s->shared_up = info->shared_upstream;
    if (w->streams.next == NULL) /* a worker not set up by serve.c (fuzz targets) */
        sg_list_init(&w->streams);
    sg_list_insert_tail(&w->streams, &s->wlink);
    sg_timer_init(&s->timer, timer_cb);
    s->mproto = info->conn->mproto;
    s->proto = info->proto ? info->proto : "-";
    s->lm = info->conn->lm;
    sg_counter_add(&s->lm->streams_active[s->mproto], 1);
    sg_counter_add(&s->lm->streams_total[s->mproto], 1);
    sg_conn_peer_str(info->conn, s->client, sizeof(s->client));
    make_rid(s, msg);

    size_t tn = SG_MIN(msg->target.n, (size_t)LOG_REQ_MAX);
    /* Method and path go to the access log escaped (escape.h): an HTTP/2 :path may carry bytes that are not
     * UTF-8, and no field may hold a space, a quote or a control byte that would forge the next one. */
    size_t mn = SG_MIN(msg->method.n, (size_t)64);
    size_t cap = 4 * (mn + tn) + 16;
    s->reqinfo = malloc(cap);
    if (s->reqinfo) {
        size_t o = (size_t)snprintf(s->reqinfo, cap, "method=");
        o += sg_escape(s->reqinfo + o, cap - o, msg->method.p, mn, SG_ESC_FIELD);
        o += (size_t)snprintf(s->reqinfo + o, cap - o, " path=");
        sg_escape(s->reqinfo + o, cap - o, msg->target.p, tn, SG_ESC_FIELD);
    }

    /* gRPC runs over HTTP/2 only (its status travels in trailers); over HTTP/1.x it is refused with a reason. */
    sg_grpc_kind_t gk = sg_grpc_kind(msg);
    const char *gwhy = NULL;
    s->grpc = gk == SG_GRPC_CALL && ops->send_trailers != NULL;
    int gr = sg_grpc_refusal(gk, ops->send_trailers != NULL, false, &gwhy);
    if (gr != 0) {
        respond(s, gr, gwhy, NULL, 0);
        return s;
    }
    /* A gateway routes requests; it does not open tunnels. On both protocols, before any routing. (On
     * HTTP/2 a CONNECT has no :path, which nghttp2 requires of every other method.) */
    bool ext_connect = sg_wsproxy_is_ext_connect(msg, info);
    if (sg_str_eq(msg->method, SG_STR("CONNECT")) && !ext_connect) {
        respond(s, 501, "ssegate: CONNECT not implemented\n", NULL, 0);
        return s;
    }
    sg_str_t authority, path, query, host = {0};
    split_target(msg->target, &authority, &path, &query);
    if (msg->host_index >= 0)
        host = msg->headers[msg->host_index].value;
    if (authority.n > 0)
        host = authority;

    sg_route_match_t m;
    sg_route_req_t rq = {.method = ext_connect ? SG_STR("GET") : msg->method, .host = host, .path = path, .query = query,
                         .headers = msg->headers, .nheaders = msg->nheaders, .scratch = w->route_scratch};
    bool routed = s->cfg != NULL && sg_route_match(s->cfg, info->conn->port, &rq, &m) == 0;
    if (s->cfg != NULL && sg_cors_is_preflight(msg)) {
        /* A preflight asks about the request that will follow, so it is routed first as that request's method:
         * a rule that matches only GET still answers the preflight for its GET. */
        sg_route_match_t pm;
        sg_route_req_t pq = rq;
        pq.method = sg_cors_header(msg, "access-control-request-method");
        if (sg_route_match(s->cfg, info->conn->port, &pq, &pm) == 0 && pm.rule->filters.cors != NULL) {
            answer_preflight(s, pm.rule, msg);
            return s;
        }
        if (routed && m.rule->filters.cors != NULL) {
            answer_preflight(s, m.rule, msg);
            return s;
        }
    }
    if (!routed) {
        respond(s, 404, "ssegate: no route\n", NULL, 0);
        return s;
    }
    s->rule = m.rule;
    s->rm = sg_metrics_route(&w->metrics, m.rule->route->ns, m.rule->route->name);
    sg_counter_add(&s->rm->requests, 1);
    const char *why = NULL;
    int wsr = sg_wsproxy_check(w, msg, info, s->rm, &s->ws, &why);
    if (wsr >= 400) {
        /* A broken handshake is answered here; the backend never sees it (RFC 6455 4.2.2 for the version). */
        char body[128];
        snprintf(body, sizeof(body), "ssegate: bad WebSocket handshake: %s\n", why);
        sg_h1_header_t v = {SG_STR("Sec-WebSocket-Version"), SG_STR("13")};
        respond(s, wsr, body, &v, wsr == 426 ? 1 : 0);
        return s;
    }
    if (s->ws != NULL)
        s->body_chunked = false; /* HTTP/2 DATA after the switch are the tunnel's bytes, not a chunked body */
    if (s->grpc) {
        s->grpc_counted = true;
        sg_counter_add(&s->rm->grpc_active, 1);
    }
    if ((gr = sg_grpc_refusal(gk, ops->send_trailers != NULL, m.rule->route->kind == SG_ROUTE_GRPC, &gwhy)) != 0) {
        respond(s, gr, gwhy, NULL, 0);
        return s;
    }
    if (keep_origin(s, msg) < 0) {
        respond(s, 503, "ssegate: out of memory\n", NULL, 0);
        return s;
    }
    if (m.rule->filters.redirect) {
        do_redirect(s, m.rule->filters.redirect, host, path, query, m.prefix_len, info);
        return s;
    }
    s->backend = sg_upstream_pick_backend(w, m.rule);
    if (s->backend == NULL) {
        respond(s, 500, "ssegate: no backend available for this route\n", NULL, 0);
        return s;
    }
    if (s->backend->filters.redirect) {
        do_redirect(s, s->backend->filters.redirect, host, path, query, m.prefix_len, info);
        return s;
    }
    /* Charged here, where work for a backend begins: local answers (404, redirects) cost a backend nothing. */
    if (!sg_admit_take(w->admit, &info->conn->peer, w->loop.now_ms)) {
        refuse(s, info);
        return s;
    }
    pick_endpoint(s, msg, info);

    sg_hbuf_t b = {w->scratch, 0, sizeof(w->scratch), false};
    if (build_request(s, msg, &m, host, path, query, info, &b) < 0) {
        respond(s, 431, "ssegate: request header fields too large\n", NULL, 0);
        return s;
    }
    s->attempts = 1;
    int err = open_upstream(s);
    if (err == -ECONNREFUSED && !has_body) {
        /* Refused at once (loopback): try another endpoint, like an asynchronous refusal. */
        sg_health_report_failure(s->ep->health, w->loop.now_ms);
        const sg_endpoint_t *ep = sg_upstream_pick_other(w, s->backend, s->ep);
        if (ep != NULL) {
            s->ep = ep;
            s->attempts = 2;
            err = open_upstream(s);
        }
    }
    if (err < 0) {
        fail_connect(s, err);
        return s;
    }
    if (!has_body) {
        /* Keep the head until the response starts: a stale pooled connection, or an endpoint that refuses,
         * gets one retry (requests with a body are not replayed: their bytes are already consumed). */
        s->head_copy = malloc(b.n);
        if (s->head_copy) {
            memcpy(s->head_copy, b.p, b.n);
            s->head_len = b.n;
        }
    }
    struct iovec iov = {b.p, b.n};
    int rc = sg_upclient_send(s->up, &iov, 1);
    if (rc < 0 && rc != SG_EAGAIN) {
        respond(s, 503, "ssegate: out of memory\n", NULL, 0);
        return s;
    }
    if (!has_body) {
        s->req_done = true;
        sg_upclient_request_done(s->up);
    }

    /* Explicit timeouts are honoured exactly (0 = none); otherwise only the wait for response headers
     * is bounded, so an SSE stream is never cut by a default. */
    int64_t t = m.rule->request_timeout_ms;
    int64_t bt = m.rule->backend_timeout_ms;
    if (t == SG_TIMEOUT_UNSET || (bt > 0 && bt < t) || (t == 0 && bt > 0))
        t = bt;
    /* The client's deadline bounds a whole call (the route's timeout still applies when shorter); without one, a
     * call is as long-lived as an SSE stream: only the wait for its response head is bounded. */
    if (s->grpc)
        t = sg_grpc_deadline(msg, t, &s->grpc_deadline);
    if (t == SG_TIMEOUT_UNSET)
        t = w->settings->response_timeout_ms;
    if (s->grpc && w->draining)
        sg_proxy_drain(s, sg_worker_drain_moment(w)); /* started on a connection that had its first GOAWAY */
    if (t > 0) {
        s->deadline_ms = w->loop.now_ms + (uint64_t)t;
        arm(s);
    }
    s->status = 0;
    return s;
}

int sg_proxy_req_body(sg_stream_t *s, const char *p, size_t n)
{
    if (s->tunnel != NULL)
        return sg_tunnel_from_down(s->tunnel, p, n);
    if (s->up == NULL || n == 0)
        return 0;
    if (s->body_chunked) {
        char line[24];
        size_t ll = sg_h1_chunk_head(line, n);
        struct iovec iov[3] = {{line, ll}, {(void *)p, n}, {"\r\n", 2}};
        return sg_upclient_send(s->up, iov, 3);
    }
    struct iovec iov = {(void *)p, n};
    return sg_upclient_send(s->up, &iov, 1);
}

void sg_proxy_req_end(sg_stream_t *s)
{
    if (s->tunnel != NULL) {
        sg_tunnel_down_eof(s->tunnel);
        return;
    }
    s->req_done = true;
    if (s->up == NULL)
        return;
    if (s->body_chunked) {
        struct iovec iov = {"0\r\n\r\n", 5};
        if (sg_upclient_send(s->up, &iov, 1) == -ENOMEM) {
            up_on_error(s, -ENOMEM);
            return;
        }
    }
    sg_upclient_request_done(s->up);
}

void sg_proxy_down_writable(sg_stream_t *s)
{
    if (s->up)
        sg_upclient_pause(s->up, false);
}

void sg_proxy_down_blocked(sg_stream_t *s)
{
    if (s->up)
        sg_upclient_pause(s->up, true);
}

void sg_proxy_down_closed(sg_stream_t *s)
{
    if (s->finished)
        return;
    s->finished = true;
    if (s->grpc_status < 0)
        s->grpc_status = SG_GRPC_CANCELLED;
    if (s->status == 0 || !s->resp_started)
        s->status = 499; /* client closed before the response (nginx's convention) */
    access_log(s);
    stream_free(s);
}

/* ---- upstream callbacks ---- */

static bool is_event_stream(sg_str_t ct)
{
    static const char want[] = "text/event-stream";
    if (ct.n < sizeof(want) - 1 || !sg_str_ieq((sg_str_t){ct.p, sizeof(want) - 1}, SG_STR(want)))
        return false;
    if (ct.n == sizeof(want) - 1)
        return true;
    char c = ct.p[sizeof(want) - 1];
    return c == ';' || c == ' ' || c == '\t';
}

/* Sends the kept request head again, on another endpoint of the backend when it has one (HTTPRoute retry). */
static void retry_now(sg_stream_t *s)
{
    s->retry_at_ms = 0;
    arm(s);
    const sg_endpoint_t *ep = sg_upstream_pick_other(s->worker, s->backend, s->ep);
    if (ep != NULL)
        s->ep = ep;
    int e = open_upstream(s);
    if (e == 0) {
        struct iovec iov = {s->head_copy, s->head_len};
        e = sg_upclient_send(s->up, &iov, 1);
        if (e >= 0 || e == SG_EAGAIN) {
            sg_upclient_request_done(s->up);
            return;
        }
    }
    fail_connect(s, e);
}

static bool retry_wanted(const sg_stream_t *s, int status)
{
    const sg_retry_t *r = s->rule->retry;
    if (r == NULL || s->retries >= r->attempts || s->head_copy == NULL)
        return false;
    for (size_t i = 0; i < r->ncodes; i++)
        if (r->codes[i] == status)
            return true;
    return false;
}

static void up_on_head(void *ctx, const sg_h1_msg_t *msg)
{
    sg_stream_t *s = ctx;

    if (retry_wanted(s, msg->status)) {
        /* HTTPRoute retry (experimental channel): a listed status before anything reached the client. The
         * attempt's connection is dropped (its body is unread), the head is sent again after the backoff. */
        s->retries++;
        sg_counter_add(&s->worker->metrics.upstream_status[msg->status / 100 <= 5 ? msg->status / 100 : 0], 1);
        sg_upclient_release(s->up);
        s->up = NULL;
        int64_t backoff = s->rule->retry->backoff_ms;
        if (backoff > 0) {
            s->retry_at_ms = s->worker->loop.now_ms + (uint64_t)backoff;
            arm(s);
        } else {
            retry_now(s);
        }
        return;
    }
    sg_h1_header_t out[MAX_OUT_HEADERS + SG_CORS_MAX_HEADERS];
    size_t n = 0;
    const sg_header_mod_t *rm = s->rule->filters.resp_headers;
    const sg_header_mod_t *bm = s->backend->filters.resp_headers;
    const sg_cors_t *cors = s->rule->filters.cors;
    bool sse = false;

    int sw = 0;
    if (s->ws != NULL) {
        const char *why = NULL;
        sw = sg_wsproxy_on_head(s->ws, msg, &why);
        if (sw < 0) {
            sg_log_error("upstream %s: WebSocket handshake failed (%s): answered 502 rid=%s",
                         s->ep ? s->ep->label : "-", why, s->rid);
            respond(s, 502, "ssegate: the backend did not switch to WebSocket\n", NULL, 0);
            return;
        }
    }
    free(s->head_copy);
    s->head_copy = NULL;
    sg_counter_add(&s->worker->metrics.upstream_status[msg->status / 100 <= 5 ? msg->status / 100 : 0], 1);
    sg_metrics_observe(&s->worker->metrics.ttfb, (s->worker->loop.now_ms - s->start_ms) * 1000);
    sg_health_report_success(s->ep->health);
    for (size_t i = 0; i < msg->nheaders; i++) {
        sg_str_t name = msg->headers[i].name;
        if (sg_reqhead_hop_by_hop(name) || sg_reqhead_in_connection(msg, name) ||
            sg_str_ieq_lit(name, "content-length"))
            continue;
        if (sg_str_ieq_lit(name, "content-type") && is_event_stream(msg->headers[i].value))
            sse = true;
        if (sg_reqhead_mod_drops(rm, name) || sg_reqhead_mod_drops(bm, name) ||
            (cors != NULL && sg_cors_owns_header(name)))
            continue;
        if (n < MAX_OUT_HEADERS)
            out[n++] = msg->headers[i];
    }
    if (cors != NULL)
        n += sg_cors_actual(cors, sg_str_c(s->cors_origin), out + n);
    const sg_header_mod_t *mods[2] = {rm, bm};
    for (int j = 0; j < 2; j++) {
        const sg_header_mod_t *mm = mods[j];
        if (mm == NULL)
            continue;
        for (size_t i = 0; i < mm->nset && n < MAX_OUT_HEADERS; i++)
            out[n++] = (sg_h1_header_t){sg_str_c(mm->set[i].name), sg_str_c(mm->set[i].value)};
        for (size_t i = 0; i < mm->nadd && n < MAX_OUT_HEADERS; i++)
            out[n++] = (sg_h1_header_t){sg_str_c(mm->add[i].name), sg_str_c(mm->add[i].value)};
    }
    char cookie[256];
    if (s->set_affinity && n < MAX_OUT_HEADERS) {
        const sg_affinity_t *aff = &s->rule->affinity;
        char tok[17];
        sg_upstream_affinity_token(s->ep, tok);
        int k = aff->duration_s > 0
                    ? snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; Max-Age=%lld; HttpOnly", aff->cookie, tok,
                               (long long)aff->duration_s)
                    : snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly", aff->cookie, tok);
        if (k > 0 && (size_t)k < sizeof(cookie))
            out[n++] = (sg_h1_header_t){SG_STR("Set-Cookie"), {cookie, (size_t)k}};
    }
    if (sw == 1) {
        ws_switch(s, out, n);
        return;
    }
    if (sse && !s->head_request) {
        s->sse = calloc(1, sizeof(*s->sse));
        if (s->sse == NULL) {
            respond(s, 503, "ssegate: out of memory\n", NULL, 0);
            return;
        }
        sg_sse_init(&s->sse->p);
        s->sse->s = s;
        sg_counter_add(&s->rm->sse_active, 1);
        sg_counter_add(&s->rm->sse_total, 1);
        sg_timer_init(&s->sse->hb, heartbeat_cb);
        if (heartbeat_ms(s) > 0)
            sg_timer_arm(&s->worker->loop.wheel, &s->sse->hb, s->worker->loop.now_ms + (uint64_t)heartbeat_ms(s));
        if (s->worker->draining && s->drain_at_ms == 0)
            sg_proxy_drain(s, sg_worker_drain_moment(s->worker));
    }
    s->status = msg->status;
    s->resp_started = true;
    bool no_body = s->head_request || msg->status == 204 || msg->status == 304;
    /* A head that carries grpc-status is a Trailers-Only response: it must reach the client with END_STREAM. */
    if (s->grpc && (s->grpc_status = (int8_t)sg_grpc_status_of(msg->headers, msg->nheaders)) >= 0)
        no_body = true;
    int64_t clen = msg->body == SG_H1_BODY_LENGTH ? (int64_t)msg->content_length : -1;
    /* The default timeout bounded only the wait for these headers; explicit route timeouts go on. */
    if (!s->grpc_deadline && s->rule->request_timeout_ms == SG_TIMEOUT_UNSET &&
        s->rule->backend_timeout_ms == SG_TIMEOUT_UNSET) {
        s->deadline_ms = 0;
        arm(s);
    }
    int rc = s->ops->send_head(s->down, msg->status, out, n, clen, no_body);
    if (rc == SG_EAGAIN)
        sg_upclient_pause(s->up, true);
    else if (rc < 0) {
        s->ops->abort(s->down);
        finish(s, false);
    }
}

/* The tunnel is over: the stream ends. */
static void tunnel_end(void *ctx, bool ok)
{
    finish(ctx, ok);
}

/* The backend switched to WebSocket: the client gets the switch, and the stream becomes a tunnel. */
static void ws_switch(sg_stream_t *s, sg_h1_header_t *out, size_t n)
{
    n = sg_wsproxy_resp_headers(s->ws, out, n, MAX_OUT_HEADERS + SG_CORS_MAX_HEADERS);
    s->tunnel = sg_tunnel_new(s->worker, s->ops, s->down, s->up, tunnel_end, s, &s->bytes_out);
    if (s->tunnel == NULL) {
        respond(s, 503, "ssegate: out of memory\n", NULL, 0);
        return;
    }
    sg_wsproxy_switched(s->ws, s->rm);
    s->status = sg_wsproxy_status(s->ws);
    s->resp_started = true;
    /* As for SSE: the default timeout bounded only the wait for this answer; explicit route timeouts go on. */
    if (s->rule->request_timeout_ms == SG_TIMEOUT_UNSET && s->rule->backend_timeout_ms == SG_TIMEOUT_UNSET) {
        s->deadline_ms = 0;
        arm(s);
    }
    int rc = s->ops->send_head(s->down, s->status, out, n, -1, false);
    if (rc < 0 && rc != SG_EAGAIN) {
        s->ops->abort(s->down);
        finish(s, false);
        return;
    }
    if (rc == SG_EAGAIN)
        sg_upclient_pause(s->up, true);
    if (sg_wsproxy_is_h2(s->ws) && s->req_done)
        sg_tunnel_down_eof(s->tunnel); /* END_STREAM came before the switch */
    if (s->worker->draining && s->drain_at_ms == 0)
        sg_proxy_drain(s, sg_worker_drain_moment(s->worker));
}

static void up_on_body(void *ctx, const char *p, size_t n)
{
    sg_stream_t *s = ctx;
    bool end_now = false;

    if (s->tunnel != NULL) {
        sg_tunnel_from_up(s->tunnel, p, n);
        return;
    }

    if (s->sse != NULL) {
        sse_state_t *x = s->sse;
        size_t skip = 0;
        ssize_t boundary = -1;
        size_t events = sg_sse_feed(&x->p, p, n, &boundary);
        if (!x->data_seen && n > 0) {
            if (!x->inserted) {
                x->data_seen = true;
            } else {
                /* Our lines went first: a leading BOM must not follow them (see can_insert). */
                size_t k = 0;
                while (k < n && x->bom_held + k < 3 && p[k] == BOM[x->bom_held + k])
                    k++;
                if (x->bom_held + k == 3) {
                    skip = k;
                    x->bom_held = 0;
                    x->data_seen = true;
                } else if (k == n) {
                    x->bom_held = (uint8_t)(x->bom_held + k); /* undecided: hold these bytes back */
                    return;
                } else {
                    if (x->bom_held) {
                        int rc = s->ops->send_body(s->down, BOM, x->bom_held);
                        s->bytes_out += x->bom_held;
                        if (rc < 0 && rc != SG_EAGAIN) {
                            s->ops->abort(s->down);
                            finish(s, false);
                            return;
                        }
                    }
                    x->bom_held = 0;
                    x->data_seen = true;
                }
            }
        }
        p += skip;
        n -= skip;
        if (boundary >= 0)
            boundary = boundary >= (ssize_t)skip ? boundary - (ssize_t)skip : 0;
        if (events)
            sg_counter_add(&s->rm->sse_events, events);
        if (heartbeat_ms(s) > 0)
            sg_timer_arm(&s->worker->loop.wheel, &s->sse->hb, s->worker->loop.now_ms + (uint64_t)heartbeat_ms(s));
        if (s->close_at_boundary && boundary >= 0) {
            /* Relay up to the end of the last complete event, then end the stream there. */
            n = (size_t)boundary;
            end_now = true;
        }
    }
    s->bytes_out += n;
    int rc = s->ops->send_body(s->down, p, n);
    if (rc < 0 && rc != SG_EAGAIN) {
        s->ops->abort(s->down);
        finish(s, false);
        return;
    }
    if (end_now) {
        end_sse_cleanly(s);
        return;
    }
    if (rc == SG_EAGAIN)
        sg_upclient_pause(s->up, true);
}

static void up_on_end(void *ctx)
{
    sg_stream_t *s = ctx;
    if (s->tunnel != NULL) {
        sg_tunnel_up_closed(s->tunnel, true);
        return;
    }
    if (s->grpc && s->grpc_status < 0 && s->status == 200 && !s->trailers_sent) {
        /* Ended without trailers (an HTTP/1.1 backend cannot send them): the client would see no status at all. */
        end_grpc(s, SG_GRPC_INTERNAL, "ssegate: the backend ended the call without a grpc-status");
        return;
    }
    int rc = s->trailers_sent ? 0 : s->ops->send_end(s->down);
    finish(s, (rc >= 0 || rc == SG_EAGAIN) && s->req_done);
}

static void up_on_error(void *ctx, int err)
{
    sg_stream_t *s = ctx;
    if (s->tunnel != NULL) {
        sg_tunnel_up_closed(s->tunnel, false);
        return;
    }

    if (!s->resp_started && (err == -EBUSY || err == -ECONNREFUSED) && s->attempts < 2) {
        /* An HTTP/2 stream its endpoint did not process (refused it, or refused the connection): another endpoint
         * takes it, body and all, when the upstream still holds it whole. */
        const sg_endpoint_t *ep = sg_upstream_pick_other(s->worker, s->backend, s->ep);
        if (ep != NULL && sg_upclient_move(s->up, (const struct sockaddr *)&ep->addr, ep->addrlen) == 0) {
            if (err == -ECONNREFUSED)
                sg_health_report_failure(s->ep->health, s->worker->loop.now_ms);
            s->ep = ep;
            s->attempts++;
            count_endpoint(s, ep);
            return;
        }
    }
    bool stale = sg_upclient_reused(s->up) && err != -ECONNREFUSED && err != -ETIMEDOUT;
    if (!s->resp_started && s->head_copy != NULL && (stale || (err == -ECONNREFUSED && s->attempts < 2))) {
        /* A pooled connection the server had closed: retry on a fresh connection to the same endpoint.
         * An endpoint that refused: retry once on another endpoint, if the backend has one. */
        if (!stale) {
            sg_health_report_failure(s->ep->health, s->worker->loop.now_ms);
            const sg_endpoint_t *ep = sg_upstream_pick_other(s->worker, s->backend, s->ep);
            if (ep == NULL) {
                fail_connect(s, err);
                return;
            }
            s->ep = ep;
            s->attempts++;
        }
        sg_upclient_release(s->up);
        s->up = NULL;
        char *head = s->head_copy;
        s->head_copy = NULL;
        int e = open_upstream(s);
        if (e == 0) {
            struct iovec iov = {head, s->head_len};
            if (sg_upclient_send(s->up, &iov, 1) != -ENOMEM) {
                sg_upclient_request_done(s->up);
                free(head);
                return;
            }
            e = -ENOMEM;
        }
        free(head);
        fail_connect(s, e);
        return;
    }
    if (err == -EPROTO) {
        /* A backend that breaks framing is a bug or an attack on the next hop: say which endpoint and why. */
        const char *why = sg_upclient_error(s->up);
        sg_log_error("upstream %s: invalid response (%s): %s rid=%s", s->ep ? s->ep->label : "-",
                     why ? why : "protocol error", s->resp_started ? "response cut" : "answered 502", s->rid);
    }
    if (err == -EKEYREJECTED) {
        /* The backend's certificate did not verify (or the handshake failed): never retried in plaintext. The
         * endpoint is not ejected: health is kept per address, and the failure is the policy's as much as the
         * address's (another policy may verify the same address). */
        const char *why = sg_upclient_tls_error(s->up);
        sg_log_error("upstream %s: TLS to the backend failed (%s; %s): answered 502 rid=%s", s->ep ? s->ep->label : "-",
                     why ? why : "handshake failed", s->backend->tls_policy ? s->backend->tls_policy : "-", s->rid);
        respond(s, 502, "ssegate: TLS to the upstream failed\n", NULL, 0);
        return;
    }
    if (!s->resp_started) {
        if (err == -ETIMEDOUT && sg_upclient_error(s->up) != NULL) { /* an HTTP/2 session failed its PING */
            s->grpc_code = SG_GRPC_UNAVAILABLE;
            sg_health_report_failure(s->ep->health, s->worker->loop.now_ms);
            respond(s, 504, "ssegate: the upstream stopped answering\n", NULL, 0);
        } else if (err == -ECONNREFUSED || err == -ETIMEDOUT)
            fail_connect(s, err);
        else if (err == -EPROTO)
            respond(s, 502, "ssegate: invalid response from upstream\n", NULL, 0);
        else if (err == -EBUSY) /* an HTTP/2 backend refused it unprocessed; the client may send it again */
            respond(s, 503, "ssegate: the upstream refused the request without processing it\n", NULL, 0);
        else
            respond(s, 502, "ssegate: upstream closed the connection\n", NULL, 0);
        return;
    }
    if (s->sse != NULL) {
        /* The backend died mid-stream. End the stream cleanly: an event it had begun stays incomplete, and
         * a client discards an incomplete event at the end of a stream, so what it has seen ends at the
         * last complete event. EventSource then reconnects with Last-Event-ID. */
        s->ops->send_end(s->down);
        finish(s, true);
        return;
    }
    if (s->grpc) { /* its status says why (a reset would read as INTERNAL to the client) */
        end_grpc(s, SG_GRPC_UNAVAILABLE, "ssegate: the backend connection was lost");
        return;
    }
    /* Mid-response: never fake a complete response. */
    s->ops->abort(s->down);
    finish(s, false);
}

/* Response trailers (HTTP/2 backends), before on_end: relayed as trailers to an HTTP/2 client (the stream ops copy
 * them), dropped for HTTP/1.x, which has no way to carry them here. */
static void up_on_trailers(void *ctx, const sg_h1_header_t *h, size_t n)
{
    sg_stream_t *s = ctx;
    if (n > 0)
        sg_counter_add(&s->worker->metrics.upstream_trailers, 1);
    int gs = sg_grpc_status_of(h, n);
    if (gs >= 0)
        s->grpc_status = (int8_t)gs;
    if (s->ops->send_trailers == NULL || s->trailers_sent || s->finished)
        return;
    int rc = s->ops->send_trailers(s->down, h, n);
    if (rc < 0) {
        s->ops->abort(s->down);
        finish(s, false);
        return;
    }
    s->trailers_sent = true;
}

static void up_on_drained(void *ctx)
{
    sg_stream_t *s = ctx;
    s->ops->resume_body(s->down);
}

const sg_stream_handler_t sg_proxy_handler = {
    .start = sg_proxy_start,
    .req_body = sg_proxy_req_body,
    .req_end = sg_proxy_req_end,
    .down_writable = sg_proxy_down_writable,
    .down_blocked = sg_proxy_down_blocked,
    .down_closed = sg_proxy_down_closed,
    .drain = sg_proxy_drain,
};
