/* tunnel.c: a stream in tunnel mode (WebSocket after the switch): bytes both ways with back-pressure, frame
 * boundaries tracked each way so that a close frame is only put between frames, an idle timeout, and the clean
 * close used by drain and timeouts. */
#include <stdlib.h>

#include "codec/ws.h"
#include "core/log.h"
#include "proxy/tunnel.h"

#define CLOSE_GRACE_MS 2000     /* after both close frames: the backend's own close, or we close */
#define HALF_CLOSE_MS 30000     /* after the client's last byte: the backend's close, or we close */

struct sg_tunnel {
    sg_worker_t *w;
    const sg_stream_ops_t *ops;
    void *down;
    sg_upclient_t *up;
    sg_tunnel_end_fn end;
    void *ctx;
    uint64_t *bytes_out;
    sg_timer_t timer;
    sg_ws_track_t to_up;        /* client -> backend frames */
    sg_ws_track_t to_down;      /* backend -> client frames */
    uint64_t last_ms;           /* last byte either way */
    uint64_t grace_end_ms;      /* 0: none */
    uint16_t code;
    bool closing;               /* close frames wanted */
    bool sent_up;               /* close frame to the backend queued (or impossible): its bytes are discarded */
    bool sent_down;             /* close frame to the client queued (or impossible) */
    bool down_eof;
    bool ended;
};

static void arm(sg_tunnel_t *t)
{
    uint64_t at = 0;
    int64_t idle = t->w->settings->ws_idle_ms;
    if (idle > 0 && !t->closing)
        at = t->last_ms + (uint64_t)idle;
    if (t->grace_end_ms && (at == 0 || t->grace_end_ms < at))
        at = t->grace_end_ms;
    if (at)
        sg_timer_arm(&t->w->loop.wheel, &t->timer, at);
    else
        sg_timer_cancel(&t->w->loop.wheel, &t->timer);
}

static void end(sg_tunnel_t *t, bool ok)
{
    if (t->ended)
        return;
    t->ended = true;
    sg_timer_cancel(&t->w->loop.wheel, &t->timer);
    if (ok) {
        int rc = t->ops->send_end(t->down);
        ok = rc >= 0 || rc == SG_EAGAIN;
    }
    if (!ok)
        t->ops->abort(t->down);
    t->end(t->ctx, ok);
}

static int to_client(sg_tunnel_t *t, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    *t->bytes_out += n;
    return t->ops->send_body(t->down, p, n);
}

/* Both close frames are out: the backend gets its FIN after its frame, and has CLOSE_GRACE_MS to close. */
static void both_sent(sg_tunnel_t *t)
{
    if (!t->sent_up || !t->sent_down)
        return;
    sg_upclient_shutdown_write(t->up);
    uint64_t g = t->w->loop.now_ms + CLOSE_GRACE_MS;
    if (t->grace_end_ms == 0 || g < t->grace_end_ms)
        t->grace_end_ms = g;
    arm(t);
}

static int send_close_up(sg_tunnel_t *t)
{
    uint8_t f[SG_WS_CLOSE_MAX];
    t->sent_up = true;
    if (t->to_up.lost || t->down_eof)
        return 0;
    size_t n = sg_ws_close_frame(f, sizeof(f), t->code, "going away", true, (uint32_t)sg_worker_rand(t->w));
    struct iovec iov = {f, n};
    int rc = sg_upclient_send(t->up, &iov, 1);
    return rc == SG_EAGAIN ? 0 : rc;
}

static int send_close_down(sg_tunnel_t *t)
{
    uint8_t f[SG_WS_CLOSE_MAX];
    t->sent_down = true;
    if (t->to_down.lost)
        return 0;
    size_t n = sg_ws_close_frame(f, sizeof(f), t->code, "going away", false, 0);
    int rc = to_client(t, f, n);
    return rc == SG_EAGAIN ? 0 : rc;
}

static void timer_cb(sg_timer_t *tm)
{
    sg_tunnel_t *t = SG_CONTAINER_OF(tm, sg_tunnel_t, timer);
    uint64_t now = t->w->loop.now_ms;
    if (t->grace_end_ms && now >= t->grace_end_ms) {
        end(t, true);
        return;
    }
    int64_t idle = t->w->settings->ws_idle_ms;
    if (!t->closing && idle > 0 && now >= t->last_ms + (uint64_t)idle) {
        sg_tunnel_close(t, SG_WS_GOING_AWAY);
        return;
    }
    arm(t);
}

sg_tunnel_t *sg_tunnel_new(sg_worker_t *w, const sg_stream_ops_t *ops, void *down, sg_upclient_t *up,
                           sg_tunnel_end_fn endfn, void *ctx, uint64_t *bytes_out)
{
    sg_tunnel_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->w = w;
    t->ops = ops;
    t->down = down;
    t->up = up;
    t->end = endfn;
    t->ctx = ctx;
    t->bytes_out = bytes_out;
    t->last_ms = w->loop.now_ms;
    sg_ws_track_init(&t->to_up);
    sg_ws_track_init(&t->to_down);
    sg_timer_init(&t->timer, timer_cb);
    arm(t);
    return t;
}

void sg_tunnel_free(sg_tunnel_t *t)
{
    if (t == NULL)
        return;
    sg_timer_cancel(&t->w->loop.wheel, &t->timer);
    free(t);
}

int sg_tunnel_from_down(sg_tunnel_t *t, const char *p, size_t n)
{
    if (t->ended || n == 0)
        return 0;
    t->last_ms = t->w->loop.now_ms;
    if (t->sent_up)
        return 0; /* after our close frame the backend gets nothing more (RFC 6455 5.5.1) */
    size_t k = SIZE_MAX;
    sg_ws_track_feed(&t->to_up, (const uint8_t *)p, n, &k);
    size_t take = t->closing && k != SIZE_MAX ? k : n;
    struct iovec iov = {(void *)p, take};
    int rc = sg_upclient_send(t->up, &iov, 1);
    if (rc < 0 && rc != SG_EAGAIN)
        return rc;
    if (t->closing && k != SIZE_MAX) {
        int e = send_close_up(t);
        if (e < 0)
            return e;
        both_sent(t);
    } else if (t->closing && t->to_up.lost) {
        t->sent_up = true;
        both_sent(t);
    }
    return rc;
}

void sg_tunnel_down_eof(sg_tunnel_t *t)
{
    if (t->ended || t->down_eof)
        return;
    t->down_eof = true;
    sg_upclient_shutdown_write(t->up);
    uint64_t g = t->w->loop.now_ms + HALF_CLOSE_MS;
    if (t->grace_end_ms == 0 || g < t->grace_end_ms)
        t->grace_end_ms = g;
    arm(t);
}

void sg_tunnel_from_up(sg_tunnel_t *t, const char *p, size_t n)
{
    if (t->ended || n == 0)
        return;
    t->last_ms = t->w->loop.now_ms;
    if (t->sent_down)
        return;
    size_t k = SIZE_MAX;
    sg_ws_track_feed(&t->to_down, (const uint8_t *)p, n, &k);
    size_t take = t->closing && k != SIZE_MAX ? k : n;
    int rc = to_client(t, p, take);
    if (rc >= 0 && t->closing && (k != SIZE_MAX || t->to_down.lost)) {
        rc = send_close_down(t);
        if (rc >= 0)
            both_sent(t);
    }
    if (rc < 0 && rc != SG_EAGAIN) {
        end(t, false);
        return;
    }
    if (rc == SG_EAGAIN)
        sg_upclient_pause(t->up, true);
}

void sg_tunnel_up_closed(sg_tunnel_t *t, bool ok)
{
    end(t, ok);
}

void sg_tunnel_close(sg_tunnel_t *t, uint16_t code)
{
    if (t->ended || t->closing)
        return;
    t->closing = true;
    t->code = code;
    int rc = 0;
    if (!t->sent_up && (sg_ws_track_at_boundary(&t->to_up) || t->to_up.lost))
        rc = send_close_up(t);
    if (rc >= 0 && !t->sent_down && (sg_ws_track_at_boundary(&t->to_down) || t->to_down.lost))
        rc = send_close_down(t);
    if (rc < 0) {
        end(t, false);
        return;
    }
    /* A side in mid-frame gets its close frame at that frame's end; a peer that never finishes the frame is
     * bounded by the grace, like the drain's hard deadline bounds everything. */
    uint64_t g = t->w->loop.now_ms + CLOSE_GRACE_MS * 2;
    if (t->grace_end_ms == 0 || g < t->grace_end_ms)
        t->grace_end_ms = g;
    both_sent(t);
    arm(t);
}
