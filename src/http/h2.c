/* h2.c: HTTP/2 server side on a downstream connection: nghttp2 through mem_recv / mem_send, request headers
 * to a request head for proxy.c (started after the read batch), responses as deferred DATA resumed per
 * upstream read, flow control both ways, nghttp2's flood limits, the reset budget, GOAWAY on errors and on
 * shutdown. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>

#include "http/h2.h"
#include "net/h2io.h"
#include "core/log.h"
#include "http/admit.h"
#include "core/metrics.h"
#include "http/stream.h"
#include "http/h2trail.h"

#define READ_ROUNDS 8
#define MAX_RESP_HEADERS (SG_H1_MAX_HEADERS + 24)
/* Decoded header bytes beyond this many times the limit are an HPACK bomb: GOAWAY, not a 431. */
#define HEADER_BOMB_FACTOR 4
/* Rapid reset (CVE-2023-44487): RST_STREAM tokens, and how many come back per second. */
#define RST_BURST 1000
#define RST_RATE 33
#define MAX_CONTINUATIONS 8
#define MAX_OUTBOUND_ACK 1000
/* --h2-reset-budget is the burst; it comes back over this many milliseconds. */
#define RESET_BUDGET_MS 10000

typedef struct h2s h2s_t;

typedef struct sg_h2 {
    sg_conn_t *conn;
    nghttp2_session *ses;
    sg_deferred_t send_d;       /* runs mem_send before the loop sleeps */
    sg_list_t streams;          /* h2s_t.link */
    sg_list_t wake;             /* blocked streams whose own queue is low, in the order they blocked: each is told
                                 * down_writable when the connection is under its budget */
    sg_list_t starts;           /* streams whose request head is complete, started after the read batch */
    uint32_t rst_tokens;        /* started streams the client may still reset (--h2-reset-budget) */
    uint64_t rst_received;      /* RST_STREAM frames from the client, to tell nghttp2's reset limit apart */
    uint64_t rst_refill_ms;
    size_t nstreams;
    size_t buffered;            /* segq mem of every stream: bounded by --h2-conn-buffer (plus one read) */
    bool over_budget;           /* buffered passed the budget; cleared at half of it */
    bool closing;               /* h2_close is freeing the streams: schedule nothing */
    sg_timer_t fc_timer;        /* sweeps for streams blocked by a zero window while bytes are queued */
    size_t nheading;            /* streams whose request headers have begun but not ended */
    bool header_timer;          /* the conn timer bounds a request head (408's counterpart), not idleness */
    bool failed;                /* fatal error: nothing more is read or submitted */
    bool goaway_final;
    bool reset_flood;           /* GOAWAY for a reset flood (counted and logged once) */
    bool draining;              /* shutdown notice sent; the final GOAWAY follows on the timer */
} sg_h2_t;

struct h2s {
    sg_h2_t *h2;
    sg_list_t link;
    sg_list_t wake_link;
    sg_list_t start_link;       /* h2->starts */
    sg_stream_t *stream;        /* proxy stream, NULL once detached or before start */
    /* request head, gathered until END_HEADERS: records [u32 nlen][u32 vlen][name][value] */
    char *hbuf;
    size_t hlen, hcap;
    size_t hdecoded;            /* decoded bytes, for limits (counted even when dropped) */
    sg_h2segq_t early;               /* request body received before the start (bounded by the stream window) */
    size_t unconsumed;          /* received body bytes not yet given back to the flow-control windows */
    /* response */
    sg_h2segq_t out;                 /* DATA bytes waiting for the window */
    sg_h2_trailers_t *trailers; /* send_trailers: HEADERS with END_STREAM after the queue, instead of an empty DATA */
    uint64_t progress_ms;       /* last time DATA left this stream's queue, or the queue became non-empty */
    int32_t id;
    uint32_t nhdrs;
    /* flags, packed together (one h2s per open stream: idle HTTP/2 memory is counted per stream) */
    bool too_big;
    bool heading;               /* counted in nheading */
    bool head_done;             /* request head complete: on h2->starts, or started */
    bool req_started;
    bool hdr_end_stream;        /* END_STREAM on the request HEADERS */
    bool req_end_stream;        /* END_STREAM seen from the client */
    bool has_body;              /* the handler expects req_body / req_end */
    bool body_paused;           /* proxy said SG_EAGAIN: WINDOW_UPDATEs wait */
    bool resp_started;
    bool resp_no_body;
    bool resp_eof;              /* send_end: EOF after the queue */
    bool resp_abort;            /* abort: RST_STREAM after the queue */
    bool deferred;              /* the data provider returned DEFERRED */
    bool blocked;               /* the producer was told to stop (SG_EAGAIN or down_blocked) */
    bool fc_reset;              /* reset for a flow-control stall: takes no more bytes */
    bool starting;              /* inside the handler's start */
    bool refused;               /* RST_STREAM REFUSED_STREAM sent: no work was done */
    int8_t pending_detach;
};

static void heading_done(h2s_t *s);
static void h2_send(sg_h2_t *h2);

static void schedule_send(sg_h2_t *h2)
{
    if (!h2->conn->closed && !h2->closing)
        sg_loop_flush_later(&h2->conn->worker->loop, &h2->send_d);
}

static uint32_t setting_or(uint32_t v, uint32_t def)
{
    return v ? v : def;
}

static size_t conn_budget(const sg_h2_t *h2)
{
    size_t b = h2->conn->worker->settings->h2_conn_buffer;
    return b ? b : SG_H2_DEFAULT_CONN_BUFFER;
}

static void budget_add(sg_h2_t *h2, size_t n)
{
    h2->buffered += n;
    sg_counter_add(&h2->conn->worker->metrics.h2_buffered_bytes, n);
}

/* Hysteresis (as the watermarks have): resuming only at half the budget lets each resumed upstream read a
 * few times before the next pause, instead of pausing and resuming on every event. */
static void budget_sub(sg_h2_t *h2, size_t n)
{
    h2->buffered -= n;
    sg_counter_sub(&h2->conn->worker->metrics.h2_buffered_bytes, n);
    if (h2->over_budget && h2->buffered <= conn_budget(h2) / 2) {
        h2->over_budget = false;
        if (!h2->closing)
            schedule_send(h2);
    }
}

/* Frees a stream's queued DATA and gives it back to the connection's budget. */
static void out_clear(h2s_t *s)
{
    size_t mem = s->out.mem;
    sg_h2segq_clear(&s->out);
    budget_sub(s->h2, mem);
}

/* The stream's producer waits; it goes on the wake list once its own queue is low. */
static void block(h2s_t *s)
{
    s->blocked = true;
    if (!sg_list_linked(&s->wake_link) && s->out.bytes <= s->h2->conn->worker->settings->out_low_wm)
        sg_list_insert_tail(&s->h2->wake, &s->wake_link);
}

/* Writes a GOAWAY ourselves, for fatal errors after which nghttp2 must not be asked to send anything. */
static void raw_goaway(sg_h2_t *h2, uint32_t code)
{
    int32_t last = h2->ses ? nghttp2_session_get_last_proc_stream_id(h2->ses) : 0;
    unsigned char f[17] = {0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0};
    f[9] = (unsigned char)((last >> 24) & 0x7f);
    f[10] = (unsigned char)(last >> 16);
    f[11] = (unsigned char)(last >> 8);
    f[12] = (unsigned char)last;
    f[13] = (unsigned char)(code >> 24);
    f[14] = (unsigned char)(code >> 16);
    f[15] = (unsigned char)(code >> 8);
    f[16] = (unsigned char)code;
    struct iovec iov = {f, sizeof(f)};
    sg_conn_send(h2->conn, &iov, 1);
}

/* A fatal error: tell the client why (when we can), and close once that is written. */
static void h2_fail(sg_h2_t *h2, uint32_t code)
{
    if (h2->failed || h2->conn->closed)
        return;
    h2->failed = true;
    raw_goaway(h2, code);
    sg_conn_close_after_flush(h2->conn);
}

/* The connection's queues passed its budget: every stream stops reading its upstream now, not at its next
 * read, so the connection holds the budget plus one read at most. `cur` is the stream inside send_body (its
 * caller pauses it on SG_EAGAIN). A stream whose response has not begun is paused too: its head waits, and a
 * response head that does arrive is sent but its body waits (op_send_head). */
static void over_budget(sg_h2_t *h2, h2s_t *cur)
{
    h2->over_budget = true;
    sg_counter_add(&h2->conn->worker->metrics.h2_budget_pauses, 1);
    for (sg_list_t *n = h2->streams.next; n != &h2->streams; n = n->next) {
        h2s_t *s = SG_CONTAINER_OF(n, h2s_t, link);
        if (s == cur || s->blocked || s->stream == NULL || s->resp_eof || s->fc_reset)
            continue;
        block(s);
        h2->conn->worker->handler->down_blocked(s->stream);
    }
}

/* The flow-control sweep runs every quarter of --stall-timeout while any byte is queued. */
static void arm_fc_timer(sg_h2_t *h2)
{
    sg_loop_t *loop = &h2->conn->worker->loop;
    int64_t stall = h2->conn->worker->settings->stall_timeout_ms;
    if (stall <= 0 || h2->buffered == 0 || sg_timer_armed(&h2->fc_timer) || h2->closing)
        return;
    sg_timer_arm(&loop->wheel, &h2->fc_timer, loop->now_ms + (uint64_t)(stall / 4 > 0 ? stall / 4 : 1));
}

/* ---- streams ---- */

static h2s_t *stream_new(sg_h2_t *h2, int32_t id)
{
    h2s_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->h2 = h2;
    s->id = id;
    sg_list_init(&s->wake_link);
    sg_list_init(&s->start_link);
    sg_list_insert_tail(&h2->streams, &s->link);
    h2->nstreams++;
    return s;
}

/* give_back: the session lives on, so body bytes held for a stream that never started go back to the
 * connection window (nghttp2 does not return a closed stream's unconsumed bytes by itself). */
static void stream_free(h2s_t *s, bool give_back)
{
    sg_h2_t *h2 = s->h2;
    if (sg_list_linked(&s->start_link))
        sg_list_remove(&s->start_link);
    if (give_back && s->early.bytes > 0 && !h2->failed)
        nghttp2_session_consume_connection(h2->ses, s->early.bytes);
    sg_h2segq_clear(&s->early);
    if (s->stream) {
        s->h2->conn->worker->handler->down_closed(s->stream);
        s->stream = NULL;
    }
    heading_done(s);
    sg_list_remove(&s->link);
    if (sg_list_linked(&s->wake_link))
        sg_list_remove(&s->wake_link);
    out_clear(s);
    free(s->hbuf);
    free(s->trailers);
    free(s);
    h2->nstreams--;
}

/* One timer per connection: the header timeout while a request head is incomplete (a slow or stuck
 * HEADERS/CONTINUATION sequence), the idle timeout with no stream open, nothing otherwise. */
static void update_idle_timer(sg_h2_t *h2)
{
    sg_conn_t *c = h2->conn;
    sg_loop_t *loop = &c->worker->loop;
    if (c->stalled || (h2->draining && !h2->goaway_final))
        return; /* the timer watches a slow consumer, or waits to send the final GOAWAY */
    if (h2->nheading > 0) {
        int64_t hms = c->worker->settings->header_timeout_ms;
        if (!h2->header_timer && hms > 0) {
            h2->header_timer = true;
            sg_timer_arm(&loop->wheel, &c->timer, loop->now_ms + (uint64_t)hms);
        }
        return;
    }
    if (h2->header_timer) {
        h2->header_timer = false;
        sg_timer_cancel(&loop->wheel, &c->timer);
    }
    if (h2->nstreams > 0) {
        sg_timer_cancel(&loop->wheel, &c->timer);
        return;
    }
    int64_t ms = c->worker->settings->idle_timeout_ms;
    if (ms > 0 && !sg_timer_armed(&c->timer))
        sg_timer_arm(&loop->wheel, &c->timer, loop->now_ms + (uint64_t)ms);
}

static void heading_done(h2s_t *s)
{
    if (s->heading) {
        s->heading = false;
        s->h2->nheading--;
    }
}

/* Gives received body bytes back to the windows (sends WINDOW_UPDATE in time). */
static void consume(h2s_t *s, size_t n)
{
    if (n == 0 || s->h2->failed)
        return;
    nghttp2_session_consume(s->h2->ses, s->id, n);
    schedule_send(s->h2);
}

/* ---- stream ops (called by proxy.c) ---- */

/* n bytes (mem_before - s->out.mem of budget) left the stream's queue. */
static void out_taken(h2s_t *s, size_t n, size_t mem_before)
{
    sg_h2_t *h2 = s->h2;
    if (n > 0)
        s->progress_ms = h2->conn->worker->loop.now_ms;
    budget_sub(h2, mem_before - s->out.mem);
    if (s->blocked && !sg_list_linked(&s->wake_link) && s->out.bytes <= h2->conn->worker->settings->out_low_wm)
        sg_list_insert_tail(&h2->wake, &s->wake_link);
}

static ssize_t data_read_cb(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                            nghttp2_data_source *src, void *ud)
{
    (void)id;
    (void)ud;
    h2s_t *s = src->ptr;
    size_t n, left;

    const sg_h2seg_t *g = s->out.head;
    if (g != NULL && g->ref != NULL && g->len - g->off >= SG_H2_REF_MIN && s->h2->conn->sock.ssl == NULL) {
        /* A shared stream's event: send_data_cb writes the frame, its payload by reference to the event. */
        n = SG_MIN(len, s->out.bytes);
        left = s->out.bytes - n;
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    } else {
        size_t mem = s->out.mem;
        n = sg_h2segq_take(&s->out, buf, len);
        left = s->out.bytes;
        out_taken(s, n, mem);
        sg_counter_add(&s->h2->conn->worker->metrics.h2_data_bytes[0], n);
    }
    if (left == 0 && s->resp_abort)
        return n == 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE /* RST_STREAM INTERNAL_ERROR after what was relayed */
                      : (ssize_t)n;
    ssize_t r = sg_h2io_provided(n, left, s->resp_eof, flags, &s->deferred);
    if ((*flags & NGHTTP2_DATA_FLAG_EOF) && s->trailers != NULL) {
        /* nghttp2 copies the pairs; END_STREAM then rides on the trailing HEADERS. */
        if (nghttp2_submit_trailer(ses, s->id, s->trailers->nv, s->trailers->n) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        free(s->trailers);
        s->trailers = NULL;
    }
    return r;
}

/* A NGHTTP2_DATA_FLAG_NO_COPY frame (see data_read_cb), written into the connection's output queue when nghttp2
 * serializes it: flow control, priorities and the frame header are nghttp2's as for any DATA. */
static int send_data_cb(nghttp2_session *ses, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
                        nghttp2_data_source *src, void *ud)
{
    (void)ses;
    sg_h2_t *h2 = ud;
    h2s_t *s = src->ptr;
    sg_conn_t *c = h2->conn;
    if (c->sock.out.bytes > c->worker->settings->out_high_wm)
        return NGHTTP2_ERR_WOULDBLOCK; /* mem_send returns; this frame is written when the socket drained */
    size_t mem = s->out.mem, by_ref, copied;
    int rc = sg_h2io_send_data(&c->sock, &s->out, framehd, length, frame->data.padlen, &by_ref, &copied);
    if (rc == -ERANGE)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the queue was cleared meanwhile: reset the stream */
    if (rc < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    out_taken(s, length, mem);
    sg_counter_add(&c->worker->metrics.h2_data_bytes[0], copied);
    sg_counter_add(&c->worker->metrics.h2_data_bytes[1], by_ref);
    return 0;
}

static void lower_copy(char *dst, sg_str_t src)
{
    for (size_t i = 0; i < src.n; i++)
        dst[i] = sg_lower(src.p[i]);
}

static int op_send_head(void *down, int status, const sg_h1_header_t *hdrs, size_t n, int64_t clen, bool no_body)
{
    h2s_t *s = down;
    sg_h2_t *h2 = s->h2;
    sg_worker_t *w = h2->conn->worker;
    nghttp2_nv nv[MAX_RESP_HEADERS + 2];
    size_t k = 0;
    char *names = w->scratch;
    size_t used = 0, cap = sizeof(w->scratch);
    char st[8], cl[24];

    if (h2->failed || s->resp_started)
        return -EPIPE;
    s->resp_started = true;
    s->resp_no_body = no_body;
    int sl = snprintf(st, sizeof(st), "%d", status);
    nv[k++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st, 7, (size_t)sl, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < n && k < MAX_RESP_HEADERS; i++) {
        sg_str_t name = hdrs[i].name;
        /* Connection-specific fields have no meaning in HTTP/2 (RFC 9113 8.2.2); proxy.c drops most. */
        if (name.n == 0 || sg_str_ieq_lit(name, "connection") || sg_str_ieq_lit(name, "keep-alive") ||
            sg_str_ieq_lit(name, "proxy-connection") || sg_str_ieq_lit(name, "transfer-encoding") ||
            sg_str_ieq_lit(name, "upgrade") || sg_str_ieq_lit(name, "content-length"))
            continue;
        if (used + name.n > cap)
            return -E2BIG;
        lower_copy(names + used, name);
        nv[k++] = (nghttp2_nv){(uint8_t *)names + used, (uint8_t *)hdrs[i].value.p, name.n, hdrs[i].value.n,
                               NGHTTP2_NV_FLAG_NONE};
        used += name.n;
    }
    if (clen >= 0 && status != 204 && status != 304) {
        int cn = snprintf(cl, sizeof(cl), "%lld", (long long)clen);
        nv[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)cl, 14, (size_t)cn, NGHTTP2_NV_FLAG_NONE};
    }
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = data_read_cb};
    /* nghttp2 copies the name/value pairs: the scratch buffer is free again when this returns. */
    int rc = nghttp2_submit_response(h2->ses, s->id, nv, k, no_body ? NULL : &prd);
    if (rc != 0)
        return -EPROTO;
    schedule_send(h2);
    if (h2->over_budget && !no_body) {
        /* The head goes out; the body waits for the connection's budget, so no byte of it is read meanwhile. */
        block(s);
        return SG_EAGAIN;
    }
    return 0;
}

/* Queues body bytes, copied (p) or by reference (ref). */
static int queue_body(h2s_t *s, const char *p, size_t n, sg_rbuf_t *ref)
{
    sg_h2_t *h2 = s->h2;
    if (h2->failed)
        return -EPIPE;
    if (s->fc_reset)
        return -EPIPE;
    if (n == 0 || s->resp_no_body)
        return 0;
    size_t mem = s->out.mem;
    if (s->out.bytes == 0)
        s->progress_ms = h2->conn->worker->loop.now_ms; /* the stall clock starts with the first byte held */
    if ((ref ? sg_h2segq_append_ref(&s->out, ref) : sg_h2segq_append(&s->out, p, n)) < 0)
        return -ENOMEM;
    budget_add(h2, s->out.mem - mem);
    arm_fc_timer(h2);
    if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(h2->ses, s->id);
    }
    schedule_send(h2);
    if (!h2->over_budget && h2->buffered > conn_budget(h2))
        over_budget(h2, s);
    if (s->out.bytes > h2->conn->worker->settings->out_high_wm || h2->over_budget) {
        block(s);
        return SG_EAGAIN;
    }
    return 0;
}

static int op_send_body(void *down, const char *p, size_t n)
{
    return queue_body(down, p, n, NULL);
}

/* A shared stream's event: DATA frames are per stream (the header names it), so each subscriber gets its own 9-byte
 * header and a reference to the event's bytes (data_read_cb, send_data_cb). */
static int op_send_shared(void *down, sg_rbuf_t *ev, sg_rbuf_t **h1_chunk)
{
    (void)h1_chunk;
    return queue_body(down, ev->data, ev->len, ev);
}

static int op_send_end(void *down)
{
    h2s_t *s = down;
    sg_h2_t *h2 = s->h2;
    if (h2->failed)
        return -EPIPE;
    s->resp_eof = true;
    if (s->deferred) {
        s->deferred = false;
        nghttp2_session_resume_data(h2->ses, s->id);
    }
    schedule_send(h2);
    return 0;
}

static int op_send_trailers(void *down, const sg_h1_header_t *hdrs, size_t n)
{
    h2s_t *s = down;
    if (s->h2->failed || s->resp_no_body || s->resp_eof)
        return -EPIPE;
    free(s->trailers);
    s->trailers = sg_h2_trailers_new(hdrs, n);
    if (s->trailers == NULL)
        return -ENOMEM;
    return op_send_end(s);
}

static void op_abort(void *down)
{
    h2s_t *s = down;
    sg_h2_t *h2 = s->h2;
    if (h2->failed || s->fc_reset)
        return; /* a stall reset is already on its way */
    if (!s->resp_started || s->resp_no_body) {
        nghttp2_submit_rst_stream(h2->ses, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    } else {
        /* What was relayed goes out first; then the stream is reset, never ended as if complete. */
        s->resp_abort = true;
        if (s->deferred) {
            s->deferred = false;
            nghttp2_session_resume_data(h2->ses, s->id);
        }
    }
    schedule_send(h2);
}

static void op_refuse(void *down)
{
    h2s_t *s = down;
    sg_h2_t *h2 = s->h2;
    if (h2->failed)
        return;
    s->refused = true;
    nghttp2_submit_rst_stream(h2->ses, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
    schedule_send(h2);
}

static void op_resume_body(void *down)
{
    h2s_t *s = down;
    if (!s->body_paused)
        return;
    s->body_paused = false;
    size_t n = s->unconsumed;
    s->unconsumed = 0;
    consume(s, n);
}

static void op_detach(void *down, bool ok)
{
    h2s_t *s = down;
    s->stream = NULL;
    if (s->starting) {
        s->pending_detach = ok ? 1 : -1;
        return;
    }
    sg_h2_t *h2 = s->h2;
    if (h2->failed)
        return;
    /* Body bytes held back for the stream's sake are no longer wanted. */
    if (s->unconsumed > 0) {
        size_t n = s->unconsumed;
        s->unconsumed = 0;
        s->body_paused = false;
        consume(s, n);
    }
    if (!ok && !s->resp_eof && !s->resp_abort && !s->refused)
        op_abort(s);
}

static const sg_stream_ops_t h2_ops = {
    .send_head = op_send_head,
    .send_body = op_send_body,
    .send_shared = op_send_shared,
    .send_end = op_send_end,
    .send_trailers = op_send_trailers,
    .abort = op_abort,
    .resume_body = op_resume_body,
    .refuse = op_refuse,
    .detach = op_detach,
};

/* ---- request side ---- */

static void local_response(h2s_t *s, int status, const char *body)
{
    sg_h1_header_t ct = {SG_STR("content-type"), SG_STR("text/plain")};
    size_t n = strlen(body);
    int rc = op_send_head(s, status, &ct, 1, (int64_t)n, false);
    if (rc == 0 || rc == SG_EAGAIN) {
        op_send_body(s, body, n);
        op_send_end(s);
    }
}

/* Header records: [u32 nlen][u32 vlen][name][value]. */
static int hbuf_add(h2s_t *s, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    size_t need = 8 + nlen + vlen;
    if (s->hlen + need > s->hcap) {
        size_t cap = s->hcap ? s->hcap : 512;
        while (cap < s->hlen + need)
            cap *= 2;
        char *p = realloc(s->hbuf, cap);
        if (p == NULL)
            return -ENOMEM;
        s->hbuf = p;
        s->hcap = cap;
    }
    uint32_t l[2] = {(uint32_t)nlen, (uint32_t)vlen};
    memcpy(s->hbuf + s->hlen, l, 8);
    memcpy(s->hbuf + s->hlen + 8, name, nlen);
    memcpy(s->hbuf + s->hlen + 8 + nlen, value, vlen);
    s->hlen += need;
    return 0;
}

/* Builds a request head from the gathered fields and starts the proxy stream. */
static void start_request(h2s_t *s, bool end_stream)
{
    sg_h2_t *h2 = s->h2;
    sg_conn_t *c = h2->conn;
    sg_worker_t *w = c->worker;
    sg_h1_msg_t *msg = w->msg;
    sg_str_t method = {0}, path = {0}, authority = {0}, protocol = {0};
    int64_t clen = -1;
    char *cookie = NULL;
    size_t cookie_len = 0;

    s->req_started = true;
    heading_done(s);
    update_idle_timer(h2);
    if (s->too_big) {
        local_response(s, 431, "ssegate: request header fields too large\n");
        return;
    }
    /* The worker's message is shared with HTTP/1.1 parsing: every field is reset, so none of an earlier request's
     * (an upgrade, an Expect, an error) carries over. The header array is filled below. */
    sg_h1parse_reset(msg);
    msg->minor_version = 1;
    msg->keep_alive = true;
    size_t ncookies = 0;
    for (size_t off = 0; off < s->hlen;) {
        uint32_t l[2];
        memcpy(l, s->hbuf + off, 8);
        sg_str_t name = {s->hbuf + off + 8, l[0]};
        sg_str_t value = {s->hbuf + off + 8 + l[0], l[1]};
        off += 8 + l[0] + l[1];
        if (name.n > 0 && name.p[0] == ':') {
            if (sg_str_eq(name, SG_STR(":method")))
                method = value;
            else if (sg_str_eq(name, SG_STR(":path")))
                path = value;
            else if (sg_str_eq(name, SG_STR(":authority")))
                authority = value;
            else if (sg_str_eq(name, SG_STR(":protocol")))
                protocol = value; /* extended CONNECT (RFC 8441); nghttp2 checks it comes with CONNECT */
            continue;
        }
        if (sg_str_eq(name, SG_STR("host"))) {
            if (authority.n == 0)
                authority = value; /* :authority comes first (nghttp2 checks the order) and wins */
            continue;
        }
        if (sg_str_eq(name, SG_STR("cookie"))) {
            ncookies++;
            cookie_len += value.n + 2;
        }
        if (sg_str_eq(name, SG_STR("content-length"))) {
            /* nghttp2 has checked it is a number and will check it against the DATA received. */
            clen = 0;
            for (size_t i = 0; i < value.n; i++)
                clen = clen * 10 + (value.p[i] - '0');
        }
        if (msg->nheaders + 2 >= SG_H1_MAX_HEADERS) {
            local_response(s, 431, "ssegate: request header fields too large\n");
            return;
        }
        msg->headers[msg->nheaders++] = (sg_h1_header_t){name, value};
    }
    if (ncookies > 1) {
        /* Cookie crumbs are joined for HTTP/1.1 (RFC 9113 8.2.3). */
        cookie = malloc(cookie_len);
        if (cookie == NULL) {
            local_response(s, 503, "ssegate: out of memory\n");
            return;
        }
        size_t cl = 0, j = 0;
        for (size_t i = 0; i < msg->nheaders; i++) {
            if (!sg_str_eq(msg->headers[i].name, SG_STR("cookie"))) {
                msg->headers[j++] = msg->headers[i];
                continue;
            }
            if (cl > 0) {
                memcpy(cookie + cl, "; ", 2);
                cl += 2;
            }
            memcpy(cookie + cl, msg->headers[i].value.p, msg->headers[i].value.n);
            cl += msg->headers[i].value.n;
        }
        msg->nheaders = j;
        msg->headers[msg->nheaders++] = (sg_h1_header_t){SG_STR("cookie"), {cookie, cl}};
    }
    if (authority.n > 0) {
        msg->host_index = (int)msg->nheaders;
        msg->headers[msg->nheaders++] = (sg_h1_header_t){SG_STR("host"), authority};
    }
    msg->method = method;
    msg->target = path;
    bool has_body = !end_stream && clen != 0;
    if (clen >= 0) {
        msg->body = SG_H1_BODY_LENGTH;
        msg->content_length = (uint64_t)clen;
    } else {
        msg->body = has_body ? SG_H1_BODY_CHUNKED : SG_H1_BODY_NONE;
    }

    sg_down_info_t info = {.conn = c, .tls = c->scheme == SG_PROTO_HTTPS, .proto = "HTTP/2",
                           .client_cert_state = c->client_cert_state, .client_cert = c->client_cert,
                           .protocol = protocol};
    s->starting = true;
    s->pending_detach = 0;
    sg_stream_t *st = w->handler->start(w, &h2_ops, s, &info, msg, has_body, has_body ? clen : 0);
    s->starting = false;
    free(cookie);
    free(s->hbuf);
    s->hbuf = NULL;
    s->hlen = s->hcap = 0;
    if (s->pending_detach != 0) {
        op_detach(s, s->pending_detach > 0);
        return;
    }
    if (st == NULL) {
        local_response(s, 503, "ssegate: out of memory\n");
        return;
    }
    s->stream = st;
    s->has_body = has_body;
}

/* Hands request body bytes to the started stream; their window comes back once the upstream took them. */
static void deliver_body(h2s_t *s, const uint8_t *data, size_t len)
{
    sg_h2_t *h2 = s->h2;
    if (s->stream == NULL || !s->has_body) {
        consume(s, len);
        return;
    }
    int rc = h2->conn->worker->handler->req_body(s->stream, (const char *)data, len);
    if (rc == SG_EAGAIN || s->body_paused) {
        /* Accepted, but the upstream is behind: hold the window back so the client slows down. */
        s->body_paused = true;
        s->unconsumed += len;
        return;
    }
    if (rc < 0) {
        if (!h2->failed)
            nghttp2_submit_rst_stream(h2->ses, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    consume(s, len);
}

/* Starts the streams whose request heads completed in the read batch just fed to nghttp2 and that the
 * client did not reset in the same batch; then gives them the body bytes that came with them. */
static void start_pending(sg_h2_t *h2)
{
    sg_conn_t *c = h2->conn;
    while (!sg_list_empty(&h2->starts)) {
        /* A session that is ending (GOAWAY for abuse, a fatal error) starts nothing more. */
        if (c->closed || h2->failed || !nghttp2_session_want_read(h2->ses))
            return;
        h2s_t *s = SG_CONTAINER_OF(sg_list_pop(&h2->starts), h2s_t, start_link);
        sg_list_init(&s->start_link);
        start_request(s, s->hdr_end_stream);
        sg_h2seg_t *g;
        while (!c->closed && (g = sg_h2segq_pop(&s->early)) != NULL) {
            deliver_body(s, (const uint8_t *)g->data, g->len);
            free(g);
        }
        if (!c->closed && s->stream != NULL && s->has_body && s->req_end_stream)
            h2->conn->worker->handler->req_end(s->stream);
    }
}

/* A connection is sent GOAWAY for a reset flood: counted, and logged once per client address and interval. */
static void reset_flood(sg_h2_t *h2, const char *why)
{
    sg_conn_t *c = h2->conn;
    sg_worker_t *w = c->worker;
    uint64_t held = 0;
    h2->reset_flood = true;
    sg_counter_add(&w->metrics.h2_reset_goaways, 1);
    if (sg_admit_may_log(w->admit, &c->peer, SG_ADMIT_LOG_RESET, w->loop.now_ms, &held)) {
        char ip[64];
        sg_conn_peer_ip(c, ip, sizeof(ip));
        sg_log_info("h2: client %s reset %s: GOAWAY (%llu more such lines suppressed)", ip, why,
                    (unsigned long long)held);
    }
}

/* The client reset stream s. Before its start that costs nothing (the point of starting after the batch);
 * after it, an upstream exchange was begun for nothing, and a connection that does that more than its
 * budget allows is an attack: GOAWAY ENHANCE_YOUR_CALM, logged once per client and interval. */
static void client_reset(sg_h2_t *h2, h2s_t *s)
{
    sg_conn_t *c = h2->conn;
    sg_worker_t *w = c->worker;
    if (!s->req_started) {
        if (s->head_done)
            sg_counter_add(&w->metrics.h2_reset_unstarted, 1);
        return;
    }
    if (s->refused)
        return;
    sg_counter_add(&w->metrics.h2_reset_started, 1);
    uint32_t budget = w->settings->h2_reset_budget;
    if (budget == 0 || h2->goaway_final)
        return;
    uint64_t now = w->loop.now_ms;
    uint64_t add = (now - h2->rst_refill_ms) * budget / RESET_BUDGET_MS;
    if (h2->rst_tokens + add >= budget) {
        h2->rst_tokens = budget;
        h2->rst_refill_ms = now;
    } else if (add > 0) {
        h2->rst_tokens += (uint32_t)add;
        h2->rst_refill_ms += add * RESET_BUDGET_MS / budget;
    }
    if (h2->rst_tokens > 0) {
        h2->rst_tokens--;
        return;
    }
    reset_flood(h2, "more started streams than --h2-reset-budget allows");
    nghttp2_session_terminate_session(h2->ses, NGHTTP2_ENHANCE_YOUR_CALM);
    h2->goaway_final = true;
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    sg_h2_t *h2 = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    h2s_t *s = stream_new(h2, f->hd.stream_id);
    if (s == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ses, f->hd.stream_id, s);
    s->heading = true;
    h2->nheading++;
    update_idle_timer(h2);
    return 0;
}

static int on_header(nghttp2_session *ses, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    sg_h2_t *h2 = ud;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2s_t *s = nghttp2_session_get_stream_user_data(ses, f->hd.stream_id);
    if (s == NULL || s->head_done)
        return 0; /* trailers are not relayed */
    s->hdecoded += nlen + vlen + 32;
    s->nhdrs++;
    if (s->hdecoded > (size_t)SG_H2_MAX_HEADER_LIST * HEADER_BOMB_FACTOR ||
        s->nhdrs > SG_H1_MAX_HEADERS * HEADER_BOMB_FACTOR) {
        /* Decoding goes on for the HPACK state, but a list this large is an attack, not a request. */
        sg_log_info("h2: header list bomb from a client: GOAWAY");
        nghttp2_session_terminate_session(ses, NGHTTP2_ENHANCE_YOUR_CALM);
        h2->goaway_final = true;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (s->hdecoded > SG_H2_MAX_HEADER_LIST || s->nhdrs > SG_H1_MAX_HEADERS) {
        s->too_big = true;
        return 0;
    }
    if (hbuf_add(s, name, nlen, value, vlen) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    sg_h2_t *h2 = ud;
    if (f->hd.type == NGHTTP2_RST_STREAM) {
        h2->rst_received++;
        h2s_t *r = nghttp2_session_get_stream_user_data(ses, f->hd.stream_id);
        if (r != NULL)
            client_reset(h2, r);
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
        return 0;
    h2s_t *s = nghttp2_session_get_stream_user_data(ses, f->hd.stream_id);
    if (s == NULL)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS && !s->head_done) {
        /* Started after the read batch (start_pending), so that a RST_STREAM in the same batch cancels the
         * request before any backend sees it (rapid reset, CVE-2023-44487). */
        s->head_done = true;
        s->hdr_end_stream = end;
        if (end)
            s->req_end_stream = true;
        heading_done(s);
        update_idle_timer(h2);
        sg_list_insert_tail(&h2->starts, &s->start_link);
        return 0;
    }
    if (end && !s->req_end_stream) {
        s->req_end_stream = true;
        if (s->stream && s->has_body)
            s->h2->conn->worker->handler->req_end(s->stream);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ses, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    h2s_t *s = nghttp2_session_get_stream_user_data(ses, id);
    if (s == NULL) {
        nghttp2_session_consume_connection(ses, len);
        return 0;
    }
    if (sg_list_linked(&s->start_link)) {
        /* Not started yet: held, with its window, until the start after this read batch. */
        if (sg_h2segq_append(&s->early, (const char *)data, len) < 0) {
            nghttp2_submit_rst_stream(ses, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
            nghttp2_session_consume_connection(ses, len);
        }
        return 0;
    }
    if (s->stream == NULL) {
        consume(s, len);
        return 0;
    }
    deliver_body(s, data, len);
    return 0;
}

static int on_frame_send(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    (void)ses;
    sg_h2_t *h2 = ud;
    /* nghttp2's own RST_STREAM rate limit ends the session by itself with GOAWAY INTERNAL_ERROR: say so. */
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code == NGHTTP2_INTERNAL_ERROR && !h2->reset_flood &&
        h2->rst_received >= RST_BURST)
        reset_flood(h2, "streams faster than nghttp2's limit (1000, then 33/s)");
    return 0;
}

static int on_stream_close(nghttp2_session *ses, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    sg_h2_t *h2 = ud;
    h2s_t *s = nghttp2_session_get_stream_user_data(ses, id);
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ses, id, NULL);
    stream_free(s, true);
    update_idle_timer(h2);
    return 0;
}

/* ---- connection ---- */

/* Serializes what nghttp2 has to send into the connection's output queue, up to the high watermark. */
static void h2_send(sg_h2_t *h2)
{
    sg_conn_t *c = h2->conn;
    if (c->closed || h2->failed)
        return;
    int ngerr = 0;
    int rc = sg_h2io_send(h2->ses, &c->sock, c->worker->settings->out_high_wm, &ngerr);
    if (c->sock.out.bytes > c->worker->settings->out_high_wm)
        c->above_wm = true; /* as sg_conn_send would say: the conn tells us when it drained */
    if (rc == -EPROTO) {
        sg_log_error("h2: mem_send: %s", nghttp2_strerror(ngerr));
        h2_fail(h2, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    if (rc < 0) {
        sg_conn_close(c);
        return;
    }
    /* Streams whose queues drained: their upstreams may be read again (outside nghttp2's callbacks), in the
     * order they blocked, for as long as the connection stays under its budget. One that fills the budget
     * blocks the rest again; they resume first next time. */
    while (!c->closed && !h2->over_budget && !sg_list_empty(&h2->wake)) {
        h2s_t *s = SG_CONTAINER_OF(sg_list_pop(&h2->wake), h2s_t, wake_link);
        s->blocked = false;
        if (s->stream)
            s->h2->conn->worker->handler->down_writable(s->stream);
    }
    if (c->closed)
        return;
    /* Done: nothing to read or write. A shutdown notice alone does not end the connection: in-flight
     * streams may still arrive until the final GOAWAY. */
    if (!nghttp2_session_want_read(h2->ses) && !nghttp2_session_want_write(h2->ses) &&
        (!h2->draining || h2->goaway_final))
        sg_conn_close_after_flush(c);
}

static void send_cb(sg_deferred_t *d)
{
    sg_h2_t *h2 = SG_CONTAINER_OF(d, sg_h2_t, send_d);
    h2_send(h2);
}

/* Feeds what is buffered to nghttp2. Returns false when the connection failed. */
static bool h2_feed(sg_h2_t *h2)
{
    sg_conn_t *c = h2->conn;
    int n = 0;
    int rc = sg_h2io_feed(h2->ses, &c->sock, &n);
    if (c->closed)
        return false;
    if (rc < 0) {
        /* Floods and CONTINUATION storms are abuse; a bad preface is a protocol error. */
        uint32_t code = NGHTTP2_INTERNAL_ERROR;
        if (n == NGHTTP2_ERR_FLOODED || n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
            code = NGHTTP2_ENHANCE_YOUR_CALM;
        else if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            code = NGHTTP2_PROTOCOL_ERROR;
        sg_log_info("h2: closing a client connection: %s", nghttp2_strerror(n));
        h2_fail(h2, code);
        return false;
    }
    schedule_send(h2);
    return true;
}

static void h2_readable(sg_conn_t *c)
{
    sg_h2_t *h2 = c->proto_data;
    for (int round = 0; round < READ_ROUNDS; round++) {
        if (c->closed || h2->failed || !c->sock.reading)
            break;
        ssize_t n = sg_sock_read(&c->sock);
        if (n == SG_EAGAIN)
            break;
        if (n <= 0) {
            /* EOF or error: the streams go with the connection. */
            sg_conn_close(c);
            return;
        }
        if (!h2_feed(h2))
            return;
    }
    /* The whole batch has been seen: start what it did not also cancel. More input may be waiting: it comes
     * on the next iteration rather than starve other connections. */
    start_pending(h2);
}

static void h2_hup(sg_conn_t *c)
{
    sg_conn_close(c);
}

static void h2_drained(sg_conn_t *c)
{
    schedule_send(c->proto_data);
}

static void h2_timeout(sg_conn_t *c)
{
    sg_h2_t *h2 = c->proto_data;
    if (h2->header_timer) {
        /* A request head that never completes holds HPACK state hostage: the connection goes. */
        h2->header_timer = false;
        sg_log_info("h2: request headers not complete within the header timeout: GOAWAY");
        nghttp2_session_terminate_session(h2->ses, NGHTTP2_PROTOCOL_ERROR);
        h2->goaway_final = true;
        h2_send(h2);
        sg_conn_close_after_flush(c);
        return;
    }
    if (h2->draining && !h2->goaway_final) {
        /* A round trip after the notice: streams the client started meanwhile are in; no more after this. */
        sg_h2_goaway(c, true);
        return;
    }
    if (h2->nstreams > 0)
        return;
    /* Idle: say goodbye properly, then close. */
    nghttp2_submit_goaway(h2->ses, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2->ses),
                          NGHTTP2_NO_ERROR, NULL, 0);
    h2_send(h2);
    sg_conn_close_after_flush(c);
}

/*
 * A stream that holds bytes but may send none (its window or the connection's is 0) and has sent nothing for
 * --stall-timeout is reset, its bytes freed and its upstream closed. The socket-level stall timer cannot see
 * this: the socket is idle, the client only withholds WINDOW_UPDATE. If that leaves no stream that is not so
 * reset, the client is starving every stream: GOAWAY and close.
 */
static void fc_timer_cb(sg_timer_t *t)
{
    sg_h2_t *h2 = SG_CONTAINER_OF(t, sg_h2_t, fc_timer);
    sg_conn_t *c = h2->conn;
    sg_worker_t *w = c->worker;
    int64_t stall = w->settings->stall_timeout_ms;
    if (c->closed || h2->failed || h2->closing || stall <= 0)
        return;
    uint64_t now = w->loop.now_ms;
    bool conn_blocked = nghttp2_session_get_remote_window_size(h2->ses) <= 0;
    size_t reset = 0, live = 0, fresh = 0;
    for (sg_list_t *n = h2->streams.next; n != &h2->streams; n = n->next) {
        h2s_t *s = SG_CONTAINER_OF(n, h2s_t, link);
        if (s->fc_reset) {
            reset++;
            continue;
        }
        live++;
        if (s->out.bytes == 0 || now - s->progress_ms < (uint64_t)stall)
            continue;
        if (!conn_blocked && nghttp2_session_get_stream_remote_window_size(h2->ses, s->id) > 0)
            continue; /* the window is open: the socket is what is slow, and the connection stall timer watches it */
        s->fc_reset = true;
        fresh++;
        reset++;
        live--;
        if (sg_list_linked(&s->wake_link))
            sg_list_remove(&s->wake_link);
        out_clear(s);
        nghttp2_submit_rst_stream(h2->ses, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        if (s->stream) {
            sg_stream_t *st = s->stream;
            s->stream = NULL;
            w->handler->down_closed(st);
        }
    }
    if (fresh > 0) {
        sg_counter_add(&w->metrics.h2_stall_resets, fresh);
        if (live == 0) {
            char peer[64];
            sg_conn_peer_str(c, peer, sizeof(peer));
            sg_log_info("h2: closing %s: every stream blocked by flow control for %lld ms (%zu reset now): GOAWAY",
                        peer, (long long)stall, reset);
            sg_counter_add(&w->metrics.h2_stall_closes, 1);
            nghttp2_session_terminate_session(h2->ses, NGHTTP2_ENHANCE_YOUR_CALM);
            h2->goaway_final = true;
            h2_send(h2);
            sg_conn_close_after_flush(c);
            return;
        }
        schedule_send(h2);
    }
    arm_fc_timer(h2);
}

static void h2_close(sg_conn_t *c)
{
    sg_h2_t *h2 = c->proto_data;
    if (h2 == NULL)
        return;
    h2->closing = true;
    sg_loop_cancel(&h2->send_d);
    sg_timer_cancel(&c->worker->loop.wheel, &h2->fc_timer);
    while (!sg_list_empty(&h2->streams))
        stream_free(SG_CONTAINER_OF(h2->streams.next, h2s_t, link), false);
    nghttp2_session_del(h2->ses);
    free(h2);
    c->proto_data = NULL;
}

/* Graceful drain: GOAWAY in two steps; each SSE stream ends at an event boundary at its own random moment. */
static void h2_drain(sg_conn_t *c)
{
    sg_h2_t *h2 = c->proto_data;
    if (h2->failed)
        return;
    h2->draining = true;
    if (h2->nstreams == 0) {
        sg_h2_goaway(c, true);
        return;
    }
    if (sg_h2_goaway(c, false) < 0) {
        sg_conn_close(c);
        return;
    }
    sg_loop_t *loop = &c->worker->loop;
    sg_timer_arm(&loop->wheel, &c->timer, loop->now_ms + 1000);
    for (sg_list_t *n = h2->streams.next; n != &h2->streams; n = n->next) {
        h2s_t *s = SG_CONTAINER_OF(n, h2s_t, link);
        if (s->stream)
            s->h2->conn->worker->handler->drain(s->stream, sg_worker_drain_moment(c->worker));
    }
}

static const sg_conn_proto_t h2_proto = {
    .on_drain = h2_drain,
    .on_readable = h2_readable,
    .on_drained = h2_drained,
    .on_hup = h2_hup,
    .on_timeout = h2_timeout,
    .on_close = h2_close,
};

bool sg_h2_is(const sg_conn_t *c)
{
    return c->proto == &h2_proto;
}

size_t sg_h2_nstreams(const sg_conn_t *c)
{
    return sg_h2_is(c) && c->proto_data ? ((const sg_h2_t *)c->proto_data)->nstreams : 0;
}

int sg_h2_goaway(sg_conn_t *c, bool final)
{
    if (!sg_h2_is(c) || c->closed)
        return -EINVAL;
    sg_h2_t *h2 = c->proto_data;
    if (h2->failed)
        return 0;
    int rc;
    if (!final) {
        h2->draining = true;
        rc = nghttp2_submit_shutdown_notice(h2->ses);
    } else {
        h2->goaway_final = true;
        rc = nghttp2_submit_goaway(h2->ses, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2->ses),
                                   NGHTTP2_NO_ERROR, NULL, 0);
    }
    if (rc != 0)
        return rc == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
    schedule_send(h2);
    return 0;
}

static int session_new(sg_h2_t *h2)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
    /* Request bodies give their window back only once the upstream has taken them. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_stream_reset_rate_limit(opt, RST_BURST, RST_RATE);
    nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS);
    nghttp2_option_set_max_outbound_ack(opt, MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int rc = nghttp2_session_server_new2(&h2->ses, cbs, h2, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return rc == 0 ? 0 : -ENOMEM;
}

int sg_h2_attach(sg_conn_t *c)
{
    const sg_settings_t *st = c->worker->settings;
    sg_h2_t *h2 = calloc(1, sizeof(*h2));
    if (h2 == NULL)
        return -ENOMEM;
    h2->conn = c;
    sg_list_init(&h2->streams);
    sg_list_init(&h2->wake);
    sg_list_init(&h2->starts);
    h2->rst_tokens = st->h2_reset_budget;
    h2->rst_refill_ms = c->worker->loop.now_ms;
    sg_deferred_init(&h2->send_d, send_cb);
    sg_timer_init(&h2->fc_timer, fc_timer_cb);
    if (session_new(h2) < 0) {
        free(h2);
        return -ENOMEM;
    }
    uint32_t conn_window = setting_or(st->h2_conn_window, SG_H2_DEFAULT_CONN_WINDOW);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, setting_or(st->h2_max_streams, SG_H2_DEFAULT_MAX_STREAMS)},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, setting_or(st->h2_stream_window, SG_H2_DEFAULT_STREAM_WINDOW)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, SG_H2_MAX_HEADER_LIST},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1}, /* WebSocket over HTTP/2 (RFC 8441) */
    };
    int rc = nghttp2_submit_settings(h2->ses, NGHTTP2_FLAG_NONE, iv, SG_ARRAY_LEN(iv));
    if (rc == 0 && conn_window > 65535)
        rc = nghttp2_session_set_local_window_size(h2->ses, NGHTTP2_FLAG_NONE, 0, (int32_t)conn_window);
    if (rc != 0) {
        nghttp2_session_del(h2->ses);
        free(h2);
        return -ENOMEM;
    }
    c->proto = &h2_proto;
    c->proto_data = h2;
    sg_conn_set_mproto(c, SG_MPROTO_H2);
    /* Until the first stream the idle timeout applies (the preface and SETTINGS come at once). */
    sg_timer_cancel(&c->worker->loop.wheel, &c->timer);
    update_idle_timer(h2);
    sg_conn_set_reading(c, true);
    schedule_send(h2);
    if (h2_feed(h2))
        start_pending(h2);
    return 0;
}
