/* upclient_h2.c: upstream exchanges as streams of HTTP/2 sessions (h2c with prior knowledge, or h2 over TLS chosen
 * by ALPN, falling back to HTTP/1.1): a few sessions per endpoint per worker within the backend's
 * MAX_CONCURRENT_STREAMS, request heads translated from the HTTP/1.1 bytes proxy.c writes, response DATA consumed
 * (WINDOW_UPDATE) only as the client side takes it, refused streams sent again, trailers passed up. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/h1parse.h"
#include "codec/h2req.h"
#include "core/log.h"
#include "net/h2io.h"
#include "proxy/upclient_int.h"

/* The operator's settings (main.c's --h2-upstream-* flags) when a worker's are left at 0. */
#define DEF_CONNS 16                 /* sessions per endpoint per worker */
#define DEF_STREAMS_CAP 10000        /* streams per session, whatever the backend allows */
#define DEF_WINDOW (128 * 1024)      /* per stream: what a paused stream may hold unconsumed */
#define DEF_PING_MS 30000            /* a session is pinged this often... */
#define DEF_PING_TIMEOUT_MS 10000    /* ...and fails when the answer takes longer */
#define CONN_WINDOW (1 << 30)        /* per session: large, so that paused streams never block the others */
/* Reads per wakeup. A session carries hundreds of streams, so its socket gets the budget of many: with 8 (the
 * downstream h2 side's) a saturated worker left events queued in the kernel and p50/p99 rose to 0.3-0.9 s in the
 * h2upthr bench, against 32-57 ms / 0.28-0.31 s with 32 (docs/benchmarks.md). */
#define READ_ROUNDS 32
#define MAX_RETRIES 3
#define MAX_HEADER_BYTES (64 * 1024) /* decoded response header (or trailer) section */
#define MAX_INTERIM 16

#define SETTING(w, f, def) ((w)->settings->f > 0 ? (w)->settings->f : (def))

typedef enum sstate {
    S_CONNECTING = 0,
    S_HANDSHAKE,
    S_OPEN,
    S_DEAD,
} sstate_t;

typedef struct h2sess {
    sg_sock_t sock;
    sg_worker_t *w;
    sg_uppool_t *pool;
    sg_list_t link;             /* pool->h2sess */
    nghttp2_session *ses;       /* NULL until connected */
    const sg_tls_client_t *tls;
    sg_tls_session_hook_t hook;
    sg_timer_t timer;           /* connect (until the backend's SETTINGS), then idle PING */
    sg_deferred_t send_d;       /* mem_send before the loop sleeps */
    sg_deferred_t reap_d;
    sg_list_t streams;          /* uph2s_t.link: assigned to this session (released ones until nghttp2 closes them) */
    size_t nstreams;            /* of them, counting against the backend's limit */
    uint64_t idle_since_ms;     /* when nstreams fell to 0 */
    uint64_t ping_at_ms;        /* when the last PING went (or the backend's SETTINGS came) */
    sstate_t state;
    bool settings_seen;         /* the backend's SETTINGS arrived: its MAX_CONCURRENT_STREAMS is known */
    bool goaway;                /* GOAWAY received (or ids ran out): no new streams */
    bool ping_out;              /* a liveness PING is unanswered (since ping_at_ms) */
    bool used;                  /* a stream has ended on it: a failure before any response byte may be staleness */
} h2sess_t;

typedef struct uph2s {
    sg_upkind_t kind;           /* first: h2 true */
    sg_worker_t *w;
    sg_uppool_t *pool;
    h2sess_t *sess;             /* NULL while waiting in pool->h2wait, or after its session let it go */
    sg_list_t link;
    sg_deferred_t ev_d;         /* a failure or a drain, told outside the call that found it */
    sg_deferred_t reap_d;
    const sg_upclient_cbs_t *cbs;
    void *ctx;
    sg_upclient_t *h1;          /* ALPN chose http/1.1: every call goes to this exchange */
    int32_t id;                 /* 0: not submitted */
    /* request: HTTP/1.1 bytes from proxy.c, kept raw until the stream is submitted (a fallback replays them) */
    sg_h2segq_t raw;
    char *nvbuf;                /* the translated head: names (lowercase) and values, kept for a retry */
    nghttp2_nv *nv;
    size_t nnv;
    sg_h1_body_t req_body;
    sg_h1_chunked_t dec;
    char *pend;                 /* chunked framing not decoded yet (a partial size line) */
    size_t npend;
    sg_h2segq_t out;            /* request body DATA for the data provider */
    sg_h2segq_t replay;         /* DATA nghttp2 took, kept until the response head to send a refused stream again */
    /* response */
    char *rh;                   /* header records [u32 nlen][u32 vlen][name][value] of the head, then trailers */
    size_t rhlen, rhcap;
    sg_h2segq_t in;             /* DATA received and not yet given up (paused), not yet consumed */
    int status;
    int err;                    /* for ev_d: on_error(err) */
    const char *why;
    uint8_t retries;
    uint8_t interim;
    bool head_request;
    bool translated;            /* the head is in nv; raw is empty from now on */
    bool req_done;
    bool req_eof_sent;
    bool body_sent;             /* DATA left and replay does not hold it all: the request cannot be sent again */
    bool deferred;
    bool above_wm;
    bool drained;               /* for ev_d: on_drained */
    bool head_seen;
    bool trailers;              /* rh holds trailers */
    bool end_seen;              /* END_STREAM from the backend */
    bool ended;                 /* on_end told */
    bool closed;                /* nghttp2 closed the stream */
    bool paused;
    bool released;
    bool delivering;
    bool reused;
    bool tls_failed;
} uph2s_t;

static void sess_fail(h2sess_t *ss, int err, const char *why);
static void fail_waiting(sg_uppool_t *p, int err, const char *why, bool tls_failed);
static void schedule_dispatch(sg_uppool_t *p);
static void stream_fail(uph2s_t *st, int err, const char *why);
static void try_finish(uph2s_t *st);

/* ---- small helpers ---- */

static void schedule_send(h2sess_t *ss)
{
    if (ss->state == S_OPEN)
        sg_loop_flush_later(&ss->w->loop, &ss->send_d);
}

static uph2s_t *of(sg_upclient_t *u)
{
    return (uph2s_t *)(void *)u;
}

/* Gives n received bytes back to the windows: the stream's (while nghttp2 has it) and the session's. */
static void give_back(uph2s_t *st, h2sess_t *ss, size_t n)
{
    if (n == 0 || ss == NULL || ss->ses == NULL || ss->state != S_OPEN)
        return;
    if (st != NULL && !st->closed && st->id > 0)
        nghttp2_session_consume(ss->ses, st->id, n);
    else
        nghttp2_session_consume_connection(ss->ses, n);
    schedule_send(ss);
}

static void stream_reap(sg_deferred_t *d)
{
    uph2s_t *st = SG_CONTAINER_OF(d, uph2s_t, reap_d);
    sg_h2segq_clear(&st->raw);
    sg_h2segq_clear(&st->out);
    sg_h2segq_clear(&st->replay);
    sg_h2segq_clear(&st->in);
    free(st->nvbuf);
    free(st->nv);
    free(st->pend);
    free(st->rh);
    sg_counter_sub(&st->w->metrics.upstream_h2_streams, 1);
    sg__uppool_unuse(st->w, st->pool);
    free(st);
}

/* The session lets st go: no longer counted against its limit. */
static void detach(uph2s_t *st)
{
    h2sess_t *ss = st->sess;
    if (ss == NULL)
        return;
    sg_list_remove(&st->link);
    sg_list_init(&st->link);
    ss->nstreams--;
    st->sess = NULL;
    schedule_dispatch(st->pool);
}

static void ev_cb(sg_deferred_t *d)
{
    uph2s_t *st = SG_CONTAINER_OF(d, uph2s_t, ev_d);
    if (st->released || st->h1 != NULL)
        return;
    if (st->err != 0) {
        int err = st->err;
        st->err = 0;
        st->cbs->on_error(st->ctx, err);
        return;
    }
    if (st->drained) {
        st->drained = false;
        if (st->cbs->on_drained)
            st->cbs->on_drained(st->ctx);
    }
}

/* The exchange failed: the user hears once (from the loop, not from inside its own call), then must release. */
static void stream_fail(uph2s_t *st, int err, const char *why)
{
    if (st->released || st->ended || st->err != 0)
        return;
    if (st->sess != NULL && st->id > 0 && !st->closed && st->sess->state == S_OPEN) {
        nghttp2_submit_rst_stream(st->sess->ses, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
        schedule_send(st->sess);
    }
    st->why = why;
    st->err = err;
    st->ended = true;
    sg_loop_flush_later(&st->w->loop, &st->ev_d);
}

/* ---- request translation: HTTP/1.1 bytes -> HEADERS + DATA ---- */

/* Appends the body bytes p[0..n) of the request to the DATA queue (dechunked). Returns 0, -EPROTO or -ENOMEM. */
static int body_bytes(uph2s_t *st, const char *p, size_t n)
{
    if (st->req_body == SG_H1_BODY_NONE || n == 0)
        return 0;
    if (st->req_body != SG_H1_BODY_CHUNKED)
        return sg_h2segq_append(&st->out, p, n);
    char *np = realloc(st->pend, st->npend + n);
    if (np == NULL)
        return -ENOMEM;
    st->pend = np;
    memcpy(st->pend + st->npend, p, n);
    st->npend += n;
    size_t off = 0;
    while (off < st->npend) {
        size_t used = 0;
        sg_str_t data = {0};
        int d = sg_h1_chunked_decode(&st->dec, st->pend + off, st->npend - off, &used, &data);
        if (d < 0) {
            st->why = st->dec.error;
            return -EPROTO;
        }
        if (d == 1 && data.n > 0 && sg_h2segq_append(&st->out, data.p, data.n) < 0)
            return -ENOMEM;
        off += used;
        if (d == 2) {
            off = st->npend; /* nothing follows the last chunk of a request we framed ourselves */
            break;
        }
        if (d == 0 || used == 0)
            break;
    }
    memmove(st->pend, st->pend + off, st->npend - off);
    st->npend -= off;
    return 0;
}

/*
 * Turns the raw HTTP/1.1 bytes into the HEADERS fields (kept in st->nv, pointing into st->nvbuf) and the start of the
 * DATA queue (codec/h2req.c). Returns 0, SG_EAGAIN (the head is not complete yet), -EPROTO or -ENOMEM.
 */
static int translate(uph2s_t *st)
{
    size_t total = st->raw.bytes;
    char *buf = malloc(total + 1);
    if (buf == NULL)
        return -ENOMEM;
    size_t got = 0;
    for (sg_h2seg_t *g = st->raw.head; g != NULL; g = g->next) {
        memcpy(buf + got, g->data + g->off, g->len - g->off);
        got += g->len - g->off;
    }
    const char *end = memmem(buf, total, "\r\n\r\n", 4);
    if (end == NULL) {
        free(buf);
        st->why = "request head too large";
        return total > SG_H1_MAX_HEAD_BYTES + SG_H1_MAX_REQLINE ? -EPROTO : SG_EAGAIN;
    }
    size_t hlen = (size_t)(end - buf) + 4;
    size_t nlines = 0;
    for (size_t i = 0; i + 1 < hlen; i++)
        nlines += buf[i] == '\r' && buf[i + 1] == '\n';
    /* The head and its lowercased names, side by side: the fields point into both. */
    st->nvbuf = malloc(2 * hlen);
    sg_h1_header_t *f = calloc(nlines + 4, sizeof(*f));
    st->nv = calloc(nlines + 4, sizeof(*st->nv));
    if (st->nvbuf == NULL || f == NULL || st->nv == NULL) {
        free(f);
        free(buf);
        return -ENOMEM;
    }
    memcpy(st->nvbuf, buf, hlen);
    sg_h2req_t r = {.fields = f, .cap = nlines + 4};
    int rc = sg_h2req_from_h1(st->nvbuf, hlen, st->pool->tls, st->nvbuf + hlen, &r);
    if (rc < 0) {
        st->why = r.error ? r.error : "request head not understood";
        free(f);
        free(buf);
        return -EPROTO;
    }
    for (size_t i = 0; i < r.nfields; i++)
        st->nv[i] = (nghttp2_nv){(uint8_t *)f[i].name.p, (uint8_t *)f[i].value.p, f[i].name.n, f[i].value.n,
                                 NGHTTP2_NV_FLAG_NONE};
    st->nnv = r.nfields;
    st->req_body = r.body;
    free(f);
    sg_h1_chunked_init(&st->dec);
    st->translated = true;
    sg_h2segq_clear(&st->raw);
    rc = body_bytes(st, buf + hlen, total - hlen);
    free(buf);
    return rc;
}

/* ---- the request's data provider ---- */

/* DATA handed to nghttp2 is kept (up to --h2-upstream-replay bytes) until the response head says the backend took the
 * stream: a stream refused after its body began (REFUSED_STREAM, or above a GOAWAY's last stream id, which RFC 9113
 * section 8.7 says was not processed) can then be sent again whole. Past the bound it cannot. */
static void keep_for_replay(uph2s_t *st, const uint8_t *p, size_t n)
{
    if (!st->body_sent && !st->head_seen && st->replay.bytes + n <= st->w->settings->h2_up_replay &&
        sg_h2segq_append(&st->replay, (const char *)p, n) == 0)
        return;
    sg_h2segq_clear(&st->replay);
    st->body_sent = true;
}

static ssize_t req_read_cb(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *ud)
{
    (void)ses;
    (void)id;
    (void)ud;
    uph2s_t *st = src->ptr;
    size_t n = sg_h2segq_take(&st->out, buf, len);
    if (n > 0)
        keep_for_replay(st, buf, n);
    if (st->above_wm && st->out.bytes <= st->w->settings->out_low_wm && !st->released) {
        st->above_wm = false;
        st->drained = true;
        sg_loop_flush_later(&st->w->loop, &st->ev_d);
    }
    bool eof = st->req_done && st->npend == 0;
    ssize_t rc = sg_h2io_provided(n, st->out.bytes, eof, flags, &st->deferred);
    if (rc >= 0 && (*flags & NGHTTP2_DATA_FLAG_EOF))
        st->req_eof_sent = true;
    return rc;
}

static void resume(uph2s_t *st)
{
    if (st->deferred && st->sess != NULL && st->id > 0 && !st->closed) {
        st->deferred = false;
        nghttp2_session_resume_data(st->sess->ses, st->id);
    }
    if (st->sess != NULL)
        schedule_send(st->sess);
}

/* Sends st's HEADERS (and DATA provider) on its session. */
static void submit(uph2s_t *st)
{
    h2sess_t *ss = st->sess;
    if (!st->translated) {
        int rc = translate(st);
        if (rc == SG_EAGAIN)
            return; /* the rest of the head comes with the next send */
        if (rc < 0) {
            stream_fail(st, rc, st->why);
            return;
        }
    }
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = req_read_cb};
    st->deferred = false;
    st->req_eof_sent = st->req_body == SG_H1_BODY_NONE;
    int32_t id = nghttp2_submit_request(ss->ses, NULL, st->nv, st->nnv,
                                        st->req_body == SG_H1_BODY_NONE ? NULL : &prd, st);
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
        /* This session has used up its stream ids: the stream goes to another one. */
        ss->goaway = true;
        detach(st);
        sg_list_insert_tail(&st->pool->h2wait, &st->link);
        schedule_dispatch(st->pool);
        return;
    }
    if (id < 0) {
        stream_fail(st, -ENOMEM, NULL);
        return;
    }
    st->id = id;
    st->reused = ss->used;
    schedule_send(ss);
}

/* ---- sessions ---- */

static void sess_reap(sg_deferred_t *d)
{
    h2sess_t *ss = SG_CONTAINER_OF(d, h2sess_t, reap_d);
    if (ss->ses != NULL)
        nghttp2_session_del(ss->ses);
    sg_counter_sub(&ss->w->metrics.upstream_h2_sessions, 1);
    sg__uppool_unuse(ss->w, ss->pool);
    free(ss);
}

static bool sess_usable(const h2sess_t *ss)
{
    return ss->state == S_OPEN && ss->settings_seen && !ss->goaway;
}

static size_t sess_capacity(const h2sess_t *ss)
{
    uint32_t max = nghttp2_session_get_remote_settings(ss->ses, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    uint32_t cap = SETTING(ss->w, h2_up_max_streams, DEF_STREAMS_CAP);
    return max < cap ? max : cap;
}

/* The session's timer, from the times kept (so arming it again never puts a deadline off): the answer to an
 * outstanding PING is due --h2-upstream-ping-timeout after it went; otherwise the next PING --h2-upstream-ping after
 * the last, or an idle session's end (--upstream-idle) when that comes first. A PING goes whether or not streams are
 * busy: a backend that stops reading while it still sends is stuck all the same. */
static void arm_idle(h2sess_t *ss)
{
    sg_worker_t *w = ss->w;
    if (ss->state != S_OPEN || !ss->settings_seen)
        return;
    uint64_t at = ss->ping_at_ms + (uint64_t)(ss->ping_out ? SETTING(w, h2_up_ping_timeout_ms, DEF_PING_TIMEOUT_MS)
                                                           : SETTING(w, h2_up_ping_ms, DEF_PING_MS));
    if (!ss->ping_out && ss->nstreams == 0 && ss->idle_since_ms + (uint64_t)w->settings->upstream_idle_ms < at)
        at = ss->idle_since_ms + (uint64_t)w->settings->upstream_idle_ms;
    sg_timer_arm(&w->loop.wheel, &ss->timer, at);
}

/* Whether an idle session should go now: it can take nothing more, or the worker is ending. */
static bool idle_ends(const h2sess_t *ss)
{
    return ss->state == S_OPEN && ss->nstreams == 0 &&
           (ss->goaway || ss->w->draining || atomic_load_explicit(&ss->w->stop, memory_order_relaxed));
}

/* A session with nothing on it is closed when it can take nothing more (from send_cb: never inside nghttp2's
 * callbacks); otherwise it waits, pinged, for reuse until the idle timeout of pooled connections. */
static void maybe_idle(h2sess_t *ss)
{
    if (ss->state != S_OPEN || ss->nstreams > 0)
        return;
    ss->idle_since_ms = ss->w->loop.now_ms;
    if (idle_ends(ss)) {
        sg_loop_flush_later(&ss->w->loop, &ss->send_d);
        return;
    }
    arm_idle(ss);
}

/* Closes the session. Streams that were never submitted, or were refused, go back to the pool; streams whose
 * response already ended keep what they hold to give up; the others fail with err (0: -ECONNRESET). */
static void sess_fail(h2sess_t *ss, int err, const char *why)
{
    if (ss->state == S_DEAD)
        return;
    if (ss->state == S_OPEN && ss->ses != NULL && err == 0) {
        /* A clean close: what nghttp2 still has to say (GOAWAY) goes out first. */
        int ngerr;
        sg_h2io_send(ss->ses, &ss->sock, SIZE_MAX, &ngerr);
        sg_sock_flush(&ss->sock);
    }
    ss->state = S_DEAD;
    sg_loop_cancel(&ss->send_d);
    sg_timer_cancel(&ss->w->loop.wheel, &ss->timer);
    sg_list_remove(&ss->link);
    sg_list_init(&ss->link);
    ss->pool->nh2sess--;
    sg_sock_close(&ss->sock);
    while (!sg_list_empty(&ss->streams)) {
        uph2s_t *st = SG_CONTAINER_OF(ss->streams.next, uph2s_t, link);
        detach(st);
        st->closed = true;
        if (st->released) {
            sg_loop_reap_later(&ss->w->loop, &st->reap_d);
            continue;
        }
        if (st->id == 0 && !st->ended) {
            sg_list_insert_tail(&st->pool->h2wait, &st->link);
            continue;
        }
        if (st->end_seen)
            continue; /* the response is complete: delivered as the client side takes it */
        stream_fail(st, err != 0 ? err : -ECONNRESET, why);
    }
    sg_loop_reap_later(&ss->w->loop, &ss->reap_d);
    /* A session that failed before the backend's SETTINGS (refused, timed out, not HTTP/2, TLS failed): the streams
     * waiting for it fail too, unless another session may take them; opening session after session to a backend
     * that cannot speak would only repeat the failure. */
    if (err != 0 && !ss->settings_seen)
        fail_waiting(ss->pool, err, why, err == -EKEYREJECTED);
    schedule_dispatch(ss->pool);
}

static void sess_flush(h2sess_t *ss)
{
    if (ss->state != S_OPEN)
        return;
    int rc = sg_sock_flush(&ss->sock);
    if (rc < 0 && rc != SG_EAGAIN) {
        sess_fail(ss, rc, NULL);
        return;
    }
    if (ss->sock.out.bytes <= ss->w->settings->out_low_wm && nghttp2_session_want_write(ss->ses))
        schedule_send(ss);
}

static void flush_cb(sg_deferred_t *d)
{
    sess_flush(SG_CONTAINER_OF(d, h2sess_t, sock.flush_d));
}

static void send_cb(sg_deferred_t *d)
{
    h2sess_t *ss = SG_CONTAINER_OF(d, h2sess_t, send_d);
    if (ss->state != S_OPEN)
        return;
    int ngerr = 0;
    int rc = sg_h2io_send(ss->ses, &ss->sock, ss->w->settings->out_high_wm, &ngerr);
    if (rc == -EPROTO) {
        sg_log_error("upstream h2: mem_send: %s", nghttp2_strerror(ngerr));
        sess_fail(ss, -EPROTO, "HTTP/2 session failed");
        return;
    }
    if (rc < 0) {
        sess_fail(ss, rc, NULL);
        return;
    }
    if (idle_ends(ss)) {
        if (!ss->goaway)
            nghttp2_session_terminate_session(ss->ses, NGHTTP2_NO_ERROR);
        sess_fail(ss, 0, NULL);
        return;
    }
    if (!nghttp2_session_want_read(ss->ses) && !nghttp2_session_want_write(ss->ses))
        sess_fail(ss, 0, NULL);
}

/* ---- nghttp2 callbacks ---- */

static uph2s_t *stream_of(nghttp2_session *ses, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ses, id);
}

static int rh_add(uph2s_t *st, const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen)
{
    size_t need = 8 + nlen + vlen;
    if (st->rhlen + need > MAX_HEADER_BYTES)
        return -E2BIG;
    if (st->rhlen + need > st->rhcap) {
        size_t cap = st->rhcap ? st->rhcap : 512;
        while (cap < st->rhlen + need)
            cap *= 2;
        char *p = realloc(st->rh, cap);
        if (p == NULL)
            return -ENOMEM;
        st->rh = p;
        st->rhcap = cap;
    }
    uint32_t l[2] = {(uint32_t)nlen, (uint32_t)vlen};
    memcpy(st->rh + st->rhlen, l, 8);
    memcpy(st->rh + st->rhlen + 8, name, nlen);
    memcpy(st->rh + st->rhlen + 8 + nlen, value, vlen);
    st->rhlen += need;
    return 0;
}

/* The records of rh as fields (pseudo-fields left out). Returns how many, or -E2BIG. */
static int rh_fields(const uph2s_t *st, sg_h1_header_t *h, size_t cap)
{
    size_t n = 0;
    for (size_t off = 0; off < st->rhlen;) {
        uint32_t l[2];
        memcpy(l, st->rh + off, 8);
        sg_str_t name = {st->rh + off + 8, l[0]};
        sg_str_t value = {st->rh + off + 8 + l[0], l[1]};
        off += 8 + l[0] + l[1];
        if (name.n > 0 && name.p[0] == ':')
            continue;
        if (n == cap)
            return -E2BIG;
        h[n++] = (sg_h1_header_t){name, value};
    }
    return (int)n;
}

static int on_begin_headers(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    uph2s_t *st = stream_of(ses, f->hd.stream_id);
    if (st == NULL || st->released)
        return 0;
    st->rhlen = 0;
    st->status = 0;
    return 0;
}

static int on_header(nghttp2_session *ses, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    uph2s_t *st = stream_of(ses, f->hd.stream_id);
    if (st == NULL || st->released || st->ended)
        return 0;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
        int s = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            s = s * 10 + (value[i] - '0');
        st->status = s;
        return 0;
    }
    int rc = rh_add(st, name, nlen, value, vlen);
    if (rc < 0) {
        stream_fail(st, -EPROTO, rc == -E2BIG ? "response header section too large" : NULL);
        return 0;
    }
    return 0;
}

/* Hands the response head up. */
static void deliver_head(uph2s_t *st, bool end_stream)
{
    sg_h1_msg_t msg;
    sg_h1parse_reset(&msg);
    int n = rh_fields(st, msg.headers, SG_H1_MAX_HEADERS);
    if (n < 0) {
        stream_fail(st, -EPROTO, "too many response header fields");
        return;
    }
    msg.nheaders = (size_t)n;
    msg.status = st->status;
    msg.minor_version = 1;
    msg.keep_alive = true;
    msg.host_index = -1;
    size_t from = 0;
    const sg_h1_header_t *cl = sg_h1parse_find(&msg, "content-length", &from);
    if (st->head_request || st->status == 204 || st->status == 304) {
        msg.body = SG_H1_BODY_NONE;
    } else if (cl != NULL) {
        /* nghttp2 has checked it is a number and checks the DATA against it. */
        uint64_t v = 0;
        for (size_t i = 0; i < cl->value.n && v < SG_H1_MAX_CONTENT_LENGTH; i++)
            v = v * 10 + (uint64_t)(cl->value.p[i] - '0');
        msg.body = SG_H1_BODY_LENGTH;
        msg.content_length = v;
    } else if (end_stream) {
        msg.body = SG_H1_BODY_LENGTH;
        msg.content_length = 0;
    } else {
        msg.body = SG_H1_BODY_CHUNKED; /* length unknown: the end of the stream ends it */
    }
    st->head_seen = true;
    st->cbs->on_head(st->ctx, &msg);
    /* No retry after a response head: the translated request and the header buffer go (an idle SSE stream keeps
     * neither; trailers, if any, make a new buffer). */
    free(st->rh);
    st->rh = NULL;
    st->rhlen = st->rhcap = 0;
    free(st->nv);
    free(st->nvbuf);
    st->nv = NULL;
    st->nvbuf = NULL;
    sg_h2segq_clear(&st->replay);
}

static int on_frame_recv(nghttp2_session *ses, const nghttp2_frame *f, void *ud)
{
    h2sess_t *ss = ud;
    if (f->hd.stream_id == 0) {
        if (f->hd.type == NGHTTP2_SETTINGS && !(f->hd.flags & NGHTTP2_FLAG_ACK) && !ss->settings_seen) {
            ss->settings_seen = true;
            ss->ping_at_ms = ss->w->loop.now_ms;
            sg_timer_cancel(&ss->w->loop.wheel, &ss->timer);
            maybe_idle(ss);
            schedule_dispatch(ss->pool);
        } else if (f->hd.type == NGHTTP2_GOAWAY) {
            /* Streams above last_stream_id were not processed: nghttp2 closes them with REFUSED_STREAM and they
             * are sent again elsewhere; those below run to their end; new streams go to another session. */
            ss->goaway = true;
            sg_counter_add(&ss->w->metrics.upstream_h2_goaways, 1);
            schedule_dispatch(ss->pool);
        } else if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) && ss->ping_out) {
            ss->ping_out = false;
            arm_idle(ss);
        }
        return 0;
    }
    uph2s_t *st = stream_of(ses, f->hd.stream_id);
    if (st == NULL || st->released || st->ended)
        return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS) {
        if (!st->head_seen) {
            if (st->status >= 100 && st->status < 200) {
                /* Interim responses are not relayed; a few are skipped, not a stream of them. */
                if (++st->interim > MAX_INTERIM)
                    stream_fail(st, -EPROTO, "too many 1xx interim responses");
                st->rhlen = 0;
                return 0;
            }
            if (end)
                st->end_seen = true;
            deliver_head(st, end);
        } else {
            st->trailers = true;
            st->end_seen = true; /* nghttp2 refuses trailers without END_STREAM */
        }
    } else if (f->hd.type == NGHTTP2_DATA && end) {
        st->end_seen = true;
    }
    if (!st->released && st->end_seen)
        try_finish(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *ses, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    h2sess_t *ss = ud;
    uph2s_t *st = stream_of(ses, id);
    if (st == NULL || st->released || st->ended) {
        nghttp2_session_consume_connection(ses, len);
        return 0;
    }
    if (st->paused || st->in.head != NULL || st->delivering) {
        /* Held, with its window, until the client side takes more: the backend stops at the window. */
        if (sg_h2segq_append(&st->in, (const char *)data, len) < 0) {
            nghttp2_session_consume_connection(ses, len);
            stream_fail(st, -ENOMEM, NULL);
        }
        return 0;
    }
    st->cbs->on_body(st->ctx, (const char *)data, len);
    give_back(st, ss, len);
    return 0;
}

static bool can_retry(const uph2s_t *st)
{
    return !st->head_seen && !st->body_sent && st->translated && st->retries < MAX_RETRIES && !st->released;
}

/* Why a stream the backend did not process is not sent again (proxy.c answers 503, gRPC UNAVAILABLE). */
static const char *refused_why(const uph2s_t *st)
{
    if (st->body_sent)
        return "the backend refused the stream after more of its request body had gone than --h2-upstream-replay "
               "keeps to send it again";
    if (st->retries >= MAX_RETRIES)
        return "the backend refused the stream each time it was sent";
    return "the backend refused the stream";
}

/* The backend did not process st (REFUSED_STREAM, or above a GOAWAY's last stream id): it goes to the pool again
 * as it was, for another session. */
static void retry(uph2s_t *st)
{
    detach(st);
    st->id = 0;
    st->closed = false;
    st->deferred = false;
    st->rhlen = 0;
    st->status = 0;
    st->interim = 0;
    st->retries++;
    sg_h2segq_prepend(&st->out, &st->replay); /* the body goes again from its first byte */
    sg_counter_add(&st->w->metrics.upstream_h2_retries, 1);
    sg_list_insert_tail(&st->pool->h2wait, &st->link);
    schedule_dispatch(st->pool);
}

static int on_stream_close(nghttp2_session *ses, int32_t id, uint32_t code, void *ud)
{
    (void)ud;
    uph2s_t *st = stream_of(ses, id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ses, id, NULL);
    h2sess_t *ss = st->sess;
    if (st->released) {
        if (ss != NULL && st->end_seen)
            ss->used = true;
        detach(st);
        sg_loop_reap_later(&st->w->loop, &st->reap_d);
        if (ss != NULL)
            maybe_idle(ss);
        return 0;
    }
    if (code == NGHTTP2_REFUSED_STREAM && can_retry(st)) {
        retry(st);
        if (ss != NULL)
            maybe_idle(ss);
        return 0;
    }
    /* The stream is over: bytes still held go back to the session's window now (the backend can send no more on
     * this stream, and they stay bounded by its window). */
    if (ss != NULL && st->in.bytes > 0)
        nghttp2_session_consume_connection(ses, st->in.bytes);
    if (ss != NULL && st->end_seen)
        ss->used = true;
    st->closed = true;
    detach(st);
    if (code == NGHTTP2_REFUSED_STREAM && !st->head_seen && !st->ended)
        stream_fail(st, -EBUSY, refused_why(st));
    else if (!st->end_seen && !st->ended)
        stream_fail(st, -ECONNRESET, code == NGHTTP2_NO_ERROR ? NULL : nghttp2_http2_strerror(code));
    if (ss != NULL)
        maybe_idle(ss);
    return 0;
}

static int on_frame_not_send(nghttp2_session *ses, const nghttp2_frame *f, int lib_error, void *ud)
{
    (void)lib_error;
    h2sess_t *ss = ud;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    /* A request that could not start (GOAWAY received, ids exhausted) was never seen by the backend. */
    for (sg_list_t *n = ss->streams.next; n != &ss->streams; n = n->next) {
        uph2s_t *st = SG_CONTAINER_OF(n, uph2s_t, link);
        if (st->id != f->hd.stream_id)
            continue;
        (void)ses;
        if (st->released) {
            detach(st);
            sg_loop_reap_later(&st->w->loop, &st->reap_d);
        } else if (can_retry(st)) {
            retry(st);
        } else {
            st->closed = true;
            detach(st);
            stream_fail(st, -EBUSY, refused_why(st));
        }
        break;
    }
    return 0;
}

/* ---- connecting ---- */

static int start_session(h2sess_t *ss)
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
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    /* DATA gives its window back only once the client side took it. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    int rc = nghttp2_session_client_new2(&ss->ses, cbs, ss, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        return -ENOMEM;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SETTING(ss->w, h2_up_window, DEF_WINDOW)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
    };
    rc = nghttp2_submit_settings(ss->ses, NGHTTP2_FLAG_NONE, iv, SG_ARRAY_LEN(iv));
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(ss->ses, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    return rc == 0 ? 0 : -ENOMEM;
}

/* Connected (and, over TLS, agreed on h2): the preface goes out; streams come once the backend's SETTINGS say
 * how many it takes. The connect timeout runs until then. */
static void ready(h2sess_t *ss)
{
    if (start_session(ss) < 0) {
        sess_fail(ss, -ENOMEM, NULL);
        return;
    }
    ss->state = S_OPEN;
    ss->sock.reading = true;
    ss->sock.rdhup = false;
    ss->sock.write_blocked = false;
    if (sg_sock_update(&ss->sock) < 0) {
        sess_fail(ss, -EIO, NULL);
        return;
    }
    schedule_send(ss);
}

static void session_cb(sg_tls_session_hook_t *h, SSL_SESSION *sess)
{
    h2sess_t *ss = SG_CONTAINER_OF(h, h2sess_t, hook);
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    SSL_SESSION_free(sess);
    if (copy != NULL)
        sg__uppool_push_session(ss->pool, copy);
}

/* Waiting streams fail with err, unless another session of the pool may still take them. */
static void fail_waiting(sg_uppool_t *p, int err, const char *why, bool tls_failed)
{
    for (sg_list_t *n = p->h2sess.next; n != &p->h2sess; n = n->next)
        if (sess_usable(SG_CONTAINER_OF(n, h2sess_t, link)))
            return;
    while (!sg_list_empty(&p->h2wait)) {
        uph2s_t *st = SG_CONTAINER_OF(sg_list_pop(&p->h2wait), uph2s_t, link);
        sg_list_init(&st->link);
        st->tls_failed = tls_failed;
        stream_fail(st, err, why);
    }
}

static void handshake(h2sess_t *ss)
{
    bool want_write = false;
    int reason = SG_UPTLS_HANDSHAKE;
    const char *why = NULL;
    int rc = sg_tls_client_handshake(ss->sock.ssl, &want_write, &reason, &why);
    if (rc == SG_EAGAIN) {
        ss->sock.reading = !want_write;
        ss->sock.write_blocked = want_write;
        ss->sock.rdhup = false;
        if (sg_sock_update(&ss->sock) < 0)
            sess_fail(ss, -EIO, NULL);
        return;
    }
    sg_metrics_t *m = &ss->w->metrics;
    sg_uppool_t *p = ss->pool;
    if (rc < 0) {
        sg_counter_add(&m->upstream_tls_errors[reason], 1);
        sess_fail(ss, -EKEYREJECTED, why);
        return;
    }
    bool resumed = sg_tls_client_resumed(ss->sock.ssl);
    sg_counter_add(&m->upstream_tls_handshakes[resumed ? 1 : 0], 1);
    if (resumed && SSL_version(ss->sock.ssl) < TLS1_3_VERSION) {
        SSL_SESSION *copy = SSL_SESSION_dup(SSL_get0_session(ss->sock.ssl));
        if (copy != NULL)
            sg__uppool_push_session(p, copy);
    }
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ss->sock.ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
        /* The backend speaks HTTP/1.1 only: this pool's exchanges are HTTP/1.1 from now on. The connection is
         * closed rather than handed over; the next ones resume its TLS session. */
        p->no_h2 = true;
        sg_counter_add(&m->upstream_h2_alpn_h1, 1);
        sess_fail(ss, 0, NULL);
        return;
    }
    ready(ss);
}

static void connected(h2sess_t *ss)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(ss->sock.w.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr != 0) {
        sess_fail(ss, -soerr, NULL);
        return;
    }
    if (ss->tls == NULL) {
        ready(ss);
        return;
    }
    SSL_SESSION *sess = sg__uppool_take_session(ss->pool);
    ss->sock.ssl = sg_tls_client_ssl(ss->tls, ss->sock.w.fd, sess, &ss->hook);
    SSL_SESSION_free(sess);
    static const unsigned char protos[] = "\x02h2\x08http/1.1";
    if (ss->sock.ssl == NULL || SSL_set_alpn_protos(ss->sock.ssl, protos, sizeof(protos) - 1) != 0) {
        sess_fail(ss, -ENOMEM, NULL);
        return;
    }
    ss->state = S_HANDSHAKE;
    handshake(ss);
}

static void sess_read(h2sess_t *ss)
{
    for (int round = 0; round < READ_ROUNDS && ss->state == S_OPEN; round++) {
        ssize_t n = sg_sock_read(&ss->sock);
        if (n == SG_EAGAIN)
            break;
        if (n == 0 && !ss->settings_seen) {
            /* An HTTP/1.1 server answers the preface with a 400 and closes: say what is likely wrong. */
            sess_fail(ss, -EPROTO, "the backend closed the connection before its SETTINGS: does it speak HTTP/2?");
            return;
        }
        if (n <= 0) {
            sess_fail(ss, n == 0 ? -ECONNRESET : (int)n, n == 0 ? "the backend closed the connection" : NULL);
            return;
        }
        int ngerr = 0;
        if (sg_h2io_feed(ss->ses, &ss->sock, &ngerr) < 0) {
            sg_log_info("upstream h2: closing a backend session: %s", nghttp2_strerror(ngerr));
            nghttp2_session_terminate_session(ss->ses, NGHTTP2_PROTOCOL_ERROR);
            sess_fail(ss, -EPROTO, "HTTP/2 protocol error from the backend");
            return;
        }
        if (!ss->settings_seen && !nghttp2_session_want_read(ss->ses)) {
            /* nghttp2 gave up on the first bytes (an HTTP/1.1 answer to the preface, typically). */
            sess_fail(ss, -EPROTO, "the backend does not speak HTTP/2 (no SETTINGS after the preface)");
            return;
        }
    }
    schedule_send(ss);
}

static void io_cb(sg_watcher_t *wt, uint32_t events)
{
    h2sess_t *ss = SG_CONTAINER_OF(wt, h2sess_t, sock.w);
    if (ss->state == S_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connected(ss);
        return;
    }
    if (ss->state == S_HANDSHAKE) {
        handshake(ss);
        return;
    }
    if (ss->state != S_OPEN)
        return;
    if (events & EPOLLOUT) {
        sess_flush(ss);
        if (ss->state != S_OPEN)
            return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
        sess_read(ss);
}

static void timer_cb(sg_timer_t *t)
{
    h2sess_t *ss = SG_CONTAINER_OF(t, h2sess_t, timer);
    if (ss->state != S_OPEN || !ss->settings_seen) {
        sess_fail(ss, -ETIMEDOUT, NULL);
        return;
    }
    /* A PING says whether the backend is still there; one unanswered for --h2-upstream-ping-timeout fails the
     * session, and its streams end as on a lost connection (SSE cleanly; a stream without its head gets 504). An
     * idle session past the pool's idle timeout is closed. The timer may come early (re-armed): times decide. */
    sg_worker_t *w = ss->w;
    uint64_t now = w->loop.now_ms;
    if (ss->ping_out) {
        if (now >= ss->ping_at_ms + (uint64_t)SETTING(w, h2_up_ping_timeout_ms, DEF_PING_TIMEOUT_MS)) {
            sg_counter_add(&w->metrics.upstream_h2_ping_timeouts, 1);
            sg_log_info("upstream h2: a backend did not answer a PING within --h2-upstream-ping-timeout: closing its "
                        "session (%zu streams)", ss->nstreams);
            sess_fail(ss, -ETIMEDOUT, "the backend did not answer a PING");
            return;
        }
    } else if (ss->nstreams == 0 && now >= ss->idle_since_ms + (uint64_t)w->settings->upstream_idle_ms) {
        nghttp2_session_terminate_session(ss->ses, NGHTTP2_NO_ERROR);
        sess_fail(ss, 0, NULL);
        return;
    } else if (now >= ss->ping_at_ms + (uint64_t)SETTING(w, h2_up_ping_ms, DEF_PING_MS)) {
        /* Out of memory for the PING (its only failure): no answer is awaited, and a missing one is not blamed on
         * the backend; the next round tries again. */
        ss->ping_at_ms = now;
        if (nghttp2_submit_ping(ss->ses, NGHTTP2_FLAG_NONE, NULL) == 0) {
            ss->ping_out = true;
            schedule_send(ss);
        }
    }
    arm_idle(ss);
}

/* Opens one more session to p's address. Returns 0 or -errno. */
static int sess_open(sg_uppool_t *p, const sg_tls_client_t *tls)
{
    sg_worker_t *w = p->worker;
    int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2sess_t *ss = calloc(1, sizeof(*ss));
    if (ss == NULL) {
        close(fd);
        return -ENOMEM;
    }
    if (connect(fd, (const struct sockaddr *)&p->addr, p->addrlen) < 0 && errno != EINPROGRESS) {
        int err = -errno;
        close(fd);
        free(ss);
        return err;
    }
    ss->w = w;
    ss->pool = p;
    ss->tls = tls;
    ss->hook.fn = session_cb;
    sg_list_init(&ss->streams);
    sg_deferred_init(&ss->send_d, send_cb);
    sg_deferred_init(&ss->reap_d, sess_reap);
    sg_timer_init(&ss->timer, timer_cb);
    sg_sock_init(&ss->sock, &w->loop, fd, io_cb, flush_cb);
    ss->state = S_CONNECTING;
    ss->sock.write_blocked = true;
    if (sg_sock_update(&ss->sock) < 0) {
        int err = -errno;
        sg_sock_close(&ss->sock);
        free(ss);
        return err;
    }
    p->users++;
    p->nh2sess++;
    sg_list_insert_tail(&p->h2sess, &ss->link);
    sg_counter_add(&w->metrics.upstream_h2_sessions, 1);
    int64_t ms = w->settings->connect_timeout_ms > 0 ? w->settings->connect_timeout_ms : 5000;
    sg_timer_arm(&w->loop.wheel, &ss->timer, w->loop.now_ms + (uint64_t)ms);
    return 0;
}

/* ---- the pool: streams to sessions ---- */

/* ALPN chose http/1.1: st becomes a plain HTTP/1.1 exchange, with what proxy.c wrote so far replayed into it. */
static void fall_back(uph2s_t *st, const sg_tls_client_t *tls)
{
    int err = 0;
    sg_uppool_t *p = st->pool;
    st->h1 = sg_upclient_open(st->w, (const struct sockaddr *)&p->addr, p->addrlen, tls, SG_UPCLIENT_H1, st->cbs,
                              st->ctx, st->head_request, &err);
    if (st->h1 == NULL) {
        stream_fail(st, err, NULL);
        return;
    }
    sg_h2seg_t *g;
    while ((g = sg_h2segq_pop(&st->raw)) != NULL) {
        struct iovec iov = {g->data + g->off, g->len - g->off};
        sg_upclient_send(st->h1, &iov, 1);
        free(g);
    }
    if (st->req_done)
        sg_upclient_request_done(st->h1);
    if (st->paused)
        sg_upclient_pause(st->h1, true);
}

static void assign(h2sess_t *ss, uph2s_t *st)
{
    st->sess = ss;
    ss->nstreams++;
    sg_list_insert_tail(&ss->streams, &st->link);
    sg_timer_cancel(&ss->w->loop.wheel, &ss->timer);
    arm_idle(ss);
    submit(st);
}

/* A stream keeps the TLS policy its pool was made for; the pool keeps only its identity, so the dispatcher takes
 * it from a waiting stream. */
typedef struct {
    uph2s_t base;
    const sg_tls_client_t *tls;
} uph2s_tls_t;

static void dispatch_cb(sg_deferred_t *d)
{
    sg_uppool_t *p = SG_CONTAINER_OF(d, sg_uppool_t, h2dispatch_d);
    while (!sg_list_empty(&p->h2wait)) {
        uph2s_t *st = SG_CONTAINER_OF(p->h2wait.next, uph2s_t, link);
        const sg_tls_client_t *tls = ((uph2s_tls_t *)st)->tls;
        if (p->no_h2) {
            sg_list_remove(&st->link);
            sg_list_init(&st->link);
            fall_back(st, tls);
            continue;
        }
        h2sess_t *pick = NULL;
        bool pending = false;
        for (sg_list_t *n = p->h2sess.next; n != &p->h2sess; n = n->next) {
            h2sess_t *ss = SG_CONTAINER_OF(n, h2sess_t, link);
            if (ss->state != S_DEAD && !ss->goaway && !sess_usable(ss))
                pending = true;
            if (sess_usable(ss) && ss->nstreams < sess_capacity(ss) && (pick == NULL || ss->nstreams < pick->nstreams))
                pick = ss;
        }
        if (pick != NULL) {
            sg_list_remove(&st->link);
            sg_list_init(&st->link);
            assign(pick, st);
            continue;
        }
        if (pending || p->nh2sess >= SETTING(p->worker, h2_up_conns, DEF_CONNS))
            return; /* a session on its way, or a slot, takes it */
        int err = sess_open(p, tls);
        if (err < 0) {
            fail_waiting(p, err, NULL, false);
            return;
        }
        return;
    }
}

static void schedule_dispatch(sg_uppool_t *p)
{
    if (!sg_list_empty(&p->h2wait))
        sg_loop_flush_later(&p->worker->loop, &p->h2dispatch_d);
}

/* ---- the sg_upclient_t interface ---- */

sg_upclient_t *sg__uph2_open(sg_worker_t *w, const struct sockaddr *addr, socklen_t alen, const sg_tls_client_t *tls,
                             const sg_upclient_cbs_t *cbs, void *ctx, bool head_request, int *err)
{
    sg_uppool_t *p = sg__uppool_get(w, addr, alen, tls);
    if (p == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    uph2s_tls_t *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    uph2s_t *st = &x->base;
    x->tls = tls;
    st->kind.h2 = true;
    st->w = w;
    st->pool = p;
    st->cbs = cbs;
    st->ctx = ctx;
    st->head_request = head_request;
    sg_deferred_init(&st->ev_d, ev_cb);
    sg_deferred_init(&st->reap_d, stream_reap);
    p->users++;
    p->h2dispatch_d.cb = dispatch_cb;
    sg_list_insert_tail(&p->h2wait, &st->link);
    sg_counter_add(&w->metrics.upstream_h2_streams, 1);
    schedule_dispatch(p);
    return (sg_upclient_t *)(void *)st;
}

int sg__uph2_send(sg_upclient_t *u, const struct iovec *iov, int n)
{
    uph2s_t *st = of(u);
    if (st->h1 != NULL)
        return sg_upclient_send(st->h1, iov, n);
    if (st->ended || st->err != 0)
        return -EPIPE;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len == 0)
            continue;
        int rc = st->translated ? body_bytes(st, iov[i].iov_base, iov[i].iov_len)
                                : sg_h2segq_append(&st->raw, iov[i].iov_base, iov[i].iov_len);
        if (rc == -EPROTO) {
            stream_fail(st, -EPROTO, st->why);
            return 0;
        }
        if (rc < 0)
            return rc;
    }
    if (!st->translated && st->sess != NULL && st->id == 0)
        submit(st);
    else
        resume(st);
    if (st->out.bytes + st->raw.bytes > st->w->settings->out_high_wm) {
        st->above_wm = true;
        return SG_EAGAIN;
    }
    return 0;
}

void sg__uph2_request_done(sg_upclient_t *u)
{
    uph2s_t *st = of(u);
    if (st->h1 != NULL) {
        sg_upclient_request_done(st->h1);
        return;
    }
    st->req_done = true;
    resume(st);
}

/* Gives up held DATA while the client side takes it, then the end. */
static void deliver(uph2s_t *st)
{
    if (st->delivering)
        return;
    st->delivering = true;
    sg_h2seg_t *g;
    while (!st->paused && !st->released && !st->ended && (g = sg_h2segq_pop(&st->in)) != NULL) {
        size_t n = g->len - g->off;
        st->cbs->on_body(st->ctx, g->data + g->off, n);
        give_back(st, st->sess, n);
        free(g);
    }
    st->delivering = false;
    if (!st->released && st->end_seen)
        try_finish(st);
}

static void try_finish(uph2s_t *st)
{
    if (st->ended || st->released || !st->head_seen || st->in.head != NULL || st->delivering)
        return;
    st->ended = true;
    if (st->trailers && st->cbs->on_trailers != NULL) {
        sg_h1_header_t h[SG_H1_MAX_HEADERS];
        int n = rh_fields(st, h, SG_H1_MAX_HEADERS);
        if (n > 0)
            st->cbs->on_trailers(st->ctx, h, (size_t)n);
        if (st->released)
            return;
    }
    st->cbs->on_end(st->ctx);
}

void sg__uph2_pause(sg_upclient_t *u, bool paused)
{
    uph2s_t *st = of(u);
    if (st->h1 != NULL) {
        sg_upclient_pause(st->h1, paused);
        return;
    }
    if (st->paused == paused)
        return;
    st->paused = paused;
    if (!paused)
        deliver(st);
}

void sg__uph2_release(sg_upclient_t *u)
{
    uph2s_t *st = of(u);
    st->released = true;
    st->cbs = NULL;
    st->ctx = NULL;
    sg_loop_cancel(&st->ev_d);
    if (st->h1 != NULL) {
        sg_upclient_release(st->h1);
        st->h1 = NULL;
    }
    h2sess_t *ss = st->sess;
    /* Held bytes are no longer wanted: their window goes back to the session. */
    size_t held = st->in.bytes;
    sg_h2segq_clear(&st->in);
    if (ss != NULL) {
        if (held > 0 && ss->state == S_OPEN)
            nghttp2_session_consume_connection(ss->ses, held);
        if (st->id > 0 && !st->closed && ss->state == S_OPEN) {
            /* nghttp2 holds st until it closes the stream: freed then (on_stream_close). */
            if (!(st->end_seen && st->req_eof_sent))
                nghttp2_submit_rst_stream(ss->ses, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
            schedule_send(ss);
            return;
        }
        if (st->id > 0 && !st->closed)
            return; /* the session is going: sess_fail reaps it */
        detach(st);
        maybe_idle(ss);
    } else if (sg_list_linked(&st->link)) {
        sg_list_remove(&st->link);
        sg_list_init(&st->link);
    }
    sg_loop_reap_later(&st->w->loop, &st->reap_d);
}

int sg__uph2_move(sg_upclient_t *u, const struct sockaddr *addr, socklen_t alen)
{
    uph2s_t *st = of(u);
    /* Only a request the backend never processed (on_error -EBUSY or -ECONNREFUSED), which is still whole here. */
    if (st->h1 != NULL || st->released || st->head_seen || st->body_sent || st->sess != NULL || !st->ended)
        return -EINVAL;
    sg_uppool_t *p = sg__uppool_get(st->w, addr, alen, ((uph2s_tls_t *)st)->tls);
    if (p == NULL)
        return -ENOMEM;
    if (p->no_h2 && st->translated)
        return -EINVAL; /* that endpoint chose HTTP/1.1, and the HTTP/1.1 bytes of this request are gone */
    sg_loop_cancel(&st->ev_d);
    if (sg_list_linked(&st->link)) {
        sg_list_remove(&st->link);
        sg_list_init(&st->link);
    }
    p->users++;
    p->h2dispatch_d.cb = dispatch_cb;
    sg__uppool_unuse(st->w, st->pool);
    st->pool = p;
    st->ended = st->closed = st->deferred = st->tls_failed = false;
    st->err = 0;
    st->why = NULL;
    st->id = 0;
    st->retries = 0;
    st->rhlen = 0;
    st->status = 0;
    st->interim = 0;
    sg_h2segq_prepend(&st->out, &st->replay);
    sg_list_insert_tail(&p->h2wait, &st->link);
    schedule_dispatch(p);
    return 0;
}

bool sg__uph2_reused(const sg_upclient_t *u)
{
    const uph2s_t *st = (const uph2s_t *)(const void *)u;
    return st->h1 != NULL ? sg_upclient_reused(st->h1) : st->reused;
}

const char *sg__uph2_error(const sg_upclient_t *u)
{
    const uph2s_t *st = (const uph2s_t *)(const void *)u;
    return st->h1 != NULL ? sg_upclient_error(st->h1) : st->why;
}

const char *sg__uph2_tls_error(const sg_upclient_t *u)
{
    const uph2s_t *st = (const uph2s_t *)(const void *)u;
    if (st->h1 != NULL)
        return sg_upclient_tls_error(st->h1);
    return st->tls_failed ? st->why : NULL;
}

void sg__uph2_close_idle(sg_worker_t *w, sg_uppool_t *p)
{
    sg_list_t *n = p->h2sess.next;
    while (n != &p->h2sess) {
        h2sess_t *ss = SG_CONTAINER_OF(n, h2sess_t, link);
        n = n->next;
        /* Once the loop has stopped, sessions still holding released streams (RST_STREAM not yet sent) go too. */
        if (ss->nstreams == 0 || w->loop.stop) {
            if (ss->state == S_OPEN)
                nghttp2_session_terminate_session(ss->ses, NGHTTP2_NO_ERROR);
            sess_fail(ss, 0, NULL);
        }
    }
}
