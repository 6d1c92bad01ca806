/* fanout.c: shared SSE streams (one upstream per instance and sharing key, N subscribers; the other workers' side is
 * share.c), their replay rings, gapless failover of the shared upstream, slow subscribers, and the handler that
 * passes every other stream to the proxy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/escape.h"
#include "core/log.h"
#include "codec/sse.h"
#include "config/route.h"
#include "fanout/fanout.h"
#include "fanout/key.h"
#include "fanout/segment.h"
#include "fanout/ring.h"
#include "fanout/hub.h"
#include "proxy/proxy.h"

static void hub_close(hub_t *h);
static void hub_connect(hub_t *h);
static void sub_pump(sub_t *s);
static void cu_merge(sub_t *s, uint64_t next_seq);
static void reap_cb(sg_timer_t *t);

/* ---- small helpers ---- */

static int64_t hb_ms(const hub_t *h)
{
    int64_t r = h->rule->heartbeat_ms;
    return r == SG_TIMEOUT_UNSET ? h->w->settings->heartbeat_ms : r;
}

/* The ring gauges count the owner's ring: a follower's holds the same events by reference. */
static void publish_ring(hub_t *h)
{
    if (h->role != HUB_OWNER)
        return;
    sg_metrics_t *m = &h->w->metrics;
    sg_counter_sub(&m->fanout_ring_events, h->ring_events_pub);
    sg_counter_sub(&m->fanout_ring_bytes, h->ring_bytes_pub);
    h->ring_events_pub = h->ring.count;
    h->ring_bytes_pub = h->ring.bytes;
    sg_counter_add(&m->fanout_ring_events, h->ring_events_pub);
    sg_counter_add(&m->fanout_ring_bytes, h->ring_bytes_pub);
}

static void table_remove(hub_t *h)
{
    if (h->role == HUB_OWNER)
        sg__share_withdraw(h);
    if (!h->in_table)
        return;
    hub_t **pp = &h->fo->buckets[h->hash % HUB_BUCKETS];
    while (*pp != NULL && *pp != h)
        pp = &(*pp)->next;
    if (*pp == h)
        *pp = h->next;
    h->in_table = false;
    h->fo->nhubs--;
}

/* ---- subscribers ---- */

static void access_log(sub_t *s, int status)
{
    sg_worker_t *w = s->hub->w;
    int fd = w->settings->log_fd;
    if (fd < 0)
        return;
    char line[4096];
    size_t n = sg_log_time(line, sizeof(line));
    char client[64], path[4 * 512 + 1];
    sg_conn_peer_str(s->info.conn, client, sizeof(client));
    sg_escape(path, sizeof(path), s->hub->target.p, SG_MIN(s->hub->target.n, (size_t)512), SG_ESC_FIELD);
    static const char *const replays[] = {"-", "ring", "backend", "live"};
    const sg_route_t *r = s->hub->rule->route;
    int k = snprintf(line + n, sizeof(line) - n,
                     " client=%s proto=%s method=GET path=%s status=%d bytes=%llu dur_ms=%llu route=%s/%s "
                     "backend=shared events=%llu shared=1 replay=%s slow=%d rid=-\n",
                     client, s->info.proto ? s->info.proto : "-", path, status, (unsigned long long)s->bytes_out,
                     (unsigned long long)(w->loop.now_ms - s->start_ms), r->ns, r->name,
                     (unsigned long long)s->events, replays[s->replay], s->was_slow ? 1 : 0);
    if (k < 0)
        return;
    n += (size_t)k;
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    if (sg_accesslog_write(fd, line, n) == SG_EAGAIN)
        sg_counter_add(&w->metrics.log_dropped, 1);
}

/* Unlinks and frees; the last subscriber leaving starts the hub's linger. */
static void cu_free(sub_t *s);

static void sub_free(sub_t *s)
{
    hub_t *h = s->hub;
    sg_worker_t *w = h->w;
    cu_free(s);
    sg_timer_cancel(&w->loop.wheel, &s->timer);
    sg_list_remove(&s->link);
    h->nsubs--;
    sg_counter_sub(&w->metrics.fanout_subscribers, 1);
    sg_counter_sub(&h->rm->shared_subscribers, 1);
    sg_counter_sub(&s->lm->streams_active[s->mproto], 1);
    if (s->head_sent && h->rm)
        sg_counter_sub(&h->rm->sse_active, 1);
    free(s);
    sg__hub_check_unused(h);
}

/* The last subscriber of the instance left: a follower lets its owner go; an owner without followers lingers (a
 * drain, or a hub that can no longer serve (ended, never live), closes at once: next tick). */
void sg__hub_check_unused(hub_t *h)
{
    sg_worker_t *w = h->w;
    if (h->nsubs > 0 || h->closing)
        return;
    if (h->role == HUB_FOLLOWER) {
        if (!h->detaching)
            sg__share_leave(h);
        return;
    }
    if (h->nfol > 0)
        return;
    int64_t linger = (w->draining || !h->in_table) ? 0 : h->pol->linger_ms;
    sg_timer_arm(&w->loop.wheel, &h->t_linger, w->loop.now_ms + (uint64_t)linger);
}

/* Ends a subscriber's response: ok, or cut (abort) when it could not be completed. */
static void sub_end(sub_t *s, bool ok, bool retry_hint)
{
    if (s->finished)
        return;
    s->finished = true;
    int rc = 0;
    if (ok && retry_hint) {
        char hint[40];
        uint32_t ms = 1000 + (uint32_t)(sg_worker_rand(s->hub->w) % 4000);
        size_t n = sg_sse_write_retry(hint, sizeof(hint), ms);
        s->bytes_out += n;
        rc = s->ops->send_body(s->down, hint, n);
    }
    if (ok && (rc >= 0 || rc == SG_EAGAIN))
        rc = s->ops->send_end(s->down);
    if (!ok || (rc < 0 && rc != SG_EAGAIN)) {
        s->ops->abort(s->down);
        ok = false;
    }
    access_log(s, s->head_sent ? s->status : 502);
    s->ops->detach(s->down, ok && !s->was_slow);
    sub_free(s);
}

/* Closes a subscriber that fell too far behind, at an event boundary (its queue holds whole events) with a
 * retry: hint: its EventSource reconnects with Last-Event-ID and is replayed from the ring or the backend. */
static void sub_close_slow(sub_t *s)
{
    s->was_slow = true;
    sg_counter_add(&s->hub->w->metrics.fanout_slow[1], 1);
    sub_end(s, true, true);
}

/* Hands one event to a subscriber, by reference when its protocol can (h1_chunk: the event's cached HTTP/1.1
 * framing). Returns 0 (sent or queued) or -1 (the subscriber is gone). */
static int sub_send(sub_t *s, sg_event_t *ev, sg_rbuf_t **h1_chunk)
{
    int rc = s->ops->send_shared ? s->ops->send_shared(s->down, ev, h1_chunk)
                                 : s->ops->send_body(s->down, ev->data, ev->len);
    if (rc < 0 && rc != SG_EAGAIN) {
        sub_end(s, false, false);
        return -1;
    }
    s->next_seq++;
    s->bytes_out += ev->len;
    s->events++;
    sg_counter_add(&s->hub->w->metrics.fanout_deliveries, 1);
    if (s->hub->rm)
        sg_counter_add(&s->hub->rm->sse_events, 1);
    if (rc == SG_EAGAIN && !s->blocked) {
        s->blocked = true;
        if (s->hub->pol->slow_action == SG_SSE_SLOW_REPLAY) {
            if (!s->was_slow)
                sg_counter_add(&s->hub->w->metrics.fanout_slow[0], 1);
            s->was_slow = true;
        }
    }
    return 0;
}

static bool lag_exceeded(const sub_t *s)
{
    const hub_t *h = s->hub;
    const sg_sse_policy_t *p = h->pol;
    if (s->next_seq < sg_ring_oldest(&h->ring))
        return true;
    if (p->slow_action != SG_SSE_SLOW_CLOSE)
        return false;
    if (p->max_lag_events == 0 && p->max_lag_bytes == 0)
        return true; /* close: a queue past the watermark is already too far behind */
    if (p->max_lag_events && h->ring.head_seq - s->next_seq > p->max_lag_events)
        return true;
    return p->max_lag_bytes && sg_ring_bytes_from(&h->ring, s->next_seq) > p->max_lag_bytes;
}

/* Feeds a subscriber from the ring up to the live edge, until its queue fills. On a stream that ended for good (one
 * that moved here from a dedicated replay after the end), the live edge is the end: it gets the end the others got. */
static void sub_pump(sub_t *s)
{
    hub_t *h = s->hub;
    while (!s->blocked && s->next_seq < h->ring.head_seq) {
        sg_ring_ent_t *e = sg_ring_get(&h->ring, s->next_seq);
        if (e == NULL) {
            /* Its next event left the ring: no gapless way on from here but a reconnect with its id. */
            sub_close_slow(s);
            return;
        }
        if (sub_send(s, e->ev, &e->h1_chunk) < 0)
            return;
    }
    if (h->ended && s->head_sent && s->next_seq >= h->ring.head_seq)
        sub_end(s, true, h->end_hint);
}

static void sub_drain_cb(sg_timer_t *t)
{
    sub_t *s = SG_CONTAINER_OF(t, sub_t, timer);
    if (!s->head_sent) {
        sub_end(s, false, false);
        return;
    }
    sub_end(s, true, true);
}

/* The response head goes out (the hub is live), then what the ring holds for it. */
static void sub_start(sub_t *s)
{
    hub_t *h = s->hub;
    int rc = s->ops->send_head(s->down, h->status, h->rhdrs, h->nrhdrs, -1, false);
    if (rc < 0 && rc != SG_EAGAIN) {
        sub_end(s, false, false);
        return;
    }
    s->head_sent = true;
    s->status = (uint16_t)h->status;
    if (h->rm) {
        sg_counter_add(&h->rm->sse_active, 1);
        sg_counter_add(&h->rm->sse_total, 1);
    }
    if (rc == SG_EAGAIN)
        s->blocked = true;
    if (h->w->draining && s->drain_at_ms == 0) {
        s->drain_at_ms = sg_worker_drain_moment(h->w);
        sg_timer_arm(&h->w->loop.wheel, &s->timer, s->drain_at_ms);
    }
    sub_pump(s);
}

/* ---- the shared stream: events from upstream ---- */

/* A complete event (or lines that set id or retry) from upstream; comment-only segments never get here (the hub
 * sends its own heartbeats). */
static void on_event(void *ctx, const sg_seg_event_t *se)
{
    hub_t *h = ctx;
    sg_event_t *ev = sg_event_new(se->p, se->n);
    if (ev == NULL)
        return; /* out of memory: this event is lost for everyone; the ring's sequence goes on without it */
    sg_counter_add(&h->w->metrics.fanout_events, 1);
    sg__hub_event(h, ev, se->id, se->id_len, se->id_set, se->id_ok, h->w->loop.now_ms);
}

/* An event (the owner's from upstream, or a follower's from its owner) goes into the ring, to the other workers'
 * followers (owner), and out to every subscriber at the live edge. Takes over the caller's reference on ev. */
void sg__hub_event(hub_t *h, sg_event_t *ev, const char *id, size_t id_len, bool id_set, bool id_ok, uint64_t at_ms)
{
    sg_worker_t *w = h->w;
    uint64_t seq = h->ring.head_seq;
    sg_ring_push(&h->ring, at_ms, ev, id, id_len, id_set, id_ok);
    memcpy(h->last_id, id, id_len);
    h->last_id_len = (uint8_t)id_len;
    h->last_id_ok = id_ok;
    publish_ring(h);
    if (h->nfol > 0)
        sg__share_event(h, ev, id, id_len, id_set, id_ok, at_ms);
    h->last_send_ms = w->loop.now_ms;
    /* Framed once per protocol: the ring entry caches the HTTP/1.1 chunk (an event the ring could not keep gets a
     * local one, dropped after this round). */
    sg_ring_ent_t *ent = sg_ring_get(&h->ring, seq);
    sg_rbuf_t *local = NULL, **h1_chunk = ent ? &ent->h1_chunk : &local;
    /* A dedicated replay that got exactly this event already goes on from the next one, shared. */
    if (id_set && id_ok)
        for (sg_list_t *n = h->catchup.next, *next; n != &h->catchup; n = next) {
            next = n->next;
            sub_t *s = SG_CONTAINER_OF(n, sub_t, link);
            if (s->cu->sse && s->cu->id_ok && s->cu->id_len == id_len &&
                memcmp(s->cu->id, id, id_len) == 0)
                cu_merge(s, seq + 1);
        }
    for (sg_list_t *n = h->subs.next, *next; n != &h->subs; n = next) {
        next = n->next;
        sub_t *s = SG_CONTAINER_OF(n, sub_t, link);
        if (!s->head_sent)
            continue;
        if (s->blocked) {
            if (lag_exceeded(s))
                sub_close_slow(s);
            continue;
        }
        if (s->next_seq == seq)
            sub_send(s, ev, h1_chunk);
        else
            sub_pump(s);
    }
    sg_rbuf_unref(local);
    sg_event_unref(ev);
}

/* The head is known: every subscriber waiting for it gets it, then what the ring holds for it. */
void sg__hub_live(hub_t *h)
{
    h->live = true;
    for (sg_list_t *q = h->subs.next, *next; q != &h->subs; q = next) {
        next = q->next;
        sub_t *s = SG_CONTAINER_OF(q, sub_t, link);
        if (!s->head_sent)
            sub_start(s);
    }
}

/* ---- the shared stream as the proxy's downstream ---- */

static bool is_event_stream(const sg_h1_header_t *hdrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!sg_str_ieq_lit(hdrs[i].name, "content-type"))
            continue;
        sg_str_t v = hdrs[i].value;
        static const char want[] = "text/event-stream";
        if (v.n < sizeof(want) - 1 || !sg_str_ieq((sg_str_t){v.p, sizeof(want) - 1}, SG_STR(want)))
            return false;
        return v.n == sizeof(want) - 1 || v.p[sizeof(want) - 1] == ';' || v.p[sizeof(want) - 1] == ' ';
    }
    return false;
}

/* Keeps the head every subscriber gets. Set-Cookie is the first client's business only: dropped. */
int sg__hub_keep_head(hub_t *h, int status, const sg_h1_header_t *hdrs, size_t n)
{
    size_t bytes = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        if (!sg_str_ieq_lit(hdrs[i].name, "set-cookie"))
            bytes += hdrs[i].name.n + hdrs[i].value.n, k++;
    if (bytes > MAX_HEAD_BYTES)
        return -E2BIG;
    free(h->rhdrs);
    free(h->rstore);
    h->rhdrs = malloc((k ? k : 1) * sizeof(*h->rhdrs));
    h->rstore = malloc(bytes ? bytes : 1);
    if (h->rhdrs == NULL || h->rstore == NULL)
        return -ENOMEM;
    char *o = h->rstore;
    h->nrhdrs = 0;
    for (size_t i = 0; i < n; i++) {
        if (sg_str_ieq_lit(hdrs[i].name, "set-cookie"))
            continue;
        memcpy(o, hdrs[i].name.p, hdrs[i].name.n);
        sg_str_t name = {o, hdrs[i].name.n};
        o += hdrs[i].name.n;
        memcpy(o, hdrs[i].value.p, hdrs[i].value.n);
        sg_str_t value = {o, hdrs[i].value.n};
        o += hdrs[i].value.n;
        h->rhdrs[h->nrhdrs++] = (sg_h1_header_t){name, value};
    }
    h->status = status;
    return 0;
}

static int up_send_head(void *down, int status, const sg_h1_header_t *hdrs, size_t n, int64_t clen, bool no_body)
{
    hub_t *h = down;
    (void)clen;
    (void)no_body;
    if (status == 200 && is_event_stream(hdrs, n)) {
        h->attempt = ATT_SSE;
        h->fails = 0;
        if (h->live)
            return 0; /* a failover: subscribers already have their head */
        if (sg__hub_keep_head(h, status, hdrs, n) < 0)
            return -ENOMEM;
        sg__share_live(h);
        sg__hub_live(h);
        return 0;
    }
    if (h->live) {
        /* A failover answered otherwise: 204 is the backend's "no more events" (an EventSource stops too);
         * anything else is tried again later. */
        h->attempt = status == 204 ? ATT_STOP : ATT_FAILED;
        return 0;
    }
    h->attempt = ATT_PLAIN;
    return sg__hub_keep_head(h, status, hdrs, n);
}

static int up_send_body(void *down, const char *p, size_t n)
{
    hub_t *h = down;
    if (h->attempt == ATT_SSE)
        return sg_seg_feed(&h->seg, p, n, on_event, h);
    if (h->attempt == ATT_PLAIN) {
        if (h->body_len + n > MAX_PLAIN_BODY)
            return -EMSGSIZE;
        char *b = realloc(h->body, h->body_len + n ? h->body_len + n : 1);
        if (b == NULL)
            return -ENOMEM;
        h->body = b;
        memcpy(h->body + h->body_len, p, n);
        h->body_len += n;
    }
    return 0;
}

static int up_send_end(void *down)
{
    (void)down;
    return 0;
}

static void up_abort(void *down)
{
    hub_t *h = down;
    if (h->attempt == ATT_PLAIN)
        h->attempt = ATT_FAILED;
}

static void up_resume_body(void *down)
{
    (void)down;
}

/* The proxy stream is over (it frees itself right after): what comes next is decided outside its callbacks. */
static void up_detach(void *down, bool ok)
{
    hub_t *h = down;
    (void)ok;
    h->up = NULL;
    h->attempt_over = true;
    sg_timer_arm(&h->w->loop.wheel, &h->t_retry, h->w->loop.now_ms);
}

static const sg_stream_ops_t hub_ops = {
    .send_head = up_send_head,
    .send_body = up_send_body,
    .send_end = up_send_end,
    .abort = up_abort,
    .resume_body = up_resume_body,
    .refuse = NULL,
    .detach = up_detach,
};

/* A non-SSE answer (an error, a redirect) goes to every subscriber still waiting for a head, as it came. */
void sg__hub_answer_plain(hub_t *h)
{
    for (sg_list_t *q = h->subs.next, *next; q != &h->subs; q = next) {
        next = q->next;
        sub_t *s = SG_CONTAINER_OF(q, sub_t, link);
        if (s->head_sent || s->finished)
            continue;
        s->finished = true;
        int rc = s->ops->send_head(s->down, h->status, h->rhdrs, h->nrhdrs, (int64_t)h->body_len, false);
        if ((rc >= 0 || rc == SG_EAGAIN) && h->body_len > 0)
            rc = s->ops->send_body(s->down, h->body, h->body_len);
        if (rc >= 0 || rc == SG_EAGAIN)
            rc = s->ops->send_end(s->down);
        s->bytes_out += h->body_len;
        s->status = (uint16_t)h->status;
        access_log(s, h->status);
        s->ops->detach(s->down, rc >= 0 || rc == SG_EAGAIN);
        sub_free(s);
    }
}

/* The shared stream ended for good (ok: cleanly, a 204): its subscribers end. A subscriber on a dedicated replay
 * stays on it (its events come from its own exchange); if it meets the ring later, it gets the ring's rest and then
 * this end (sub_pump). One that has an event-stream head from its replay although the stream never went live (it met
 * the ring's base) cannot be given the others' answer: it ends cleanly with a retry: hint, as it will after a merge. */
static void end_all(hub_t *h, bool ok)
{
    h->ended = true;
    h->end_hint = !(ok && h->live);
    for (sg_list_t *q = h->subs.next, *next; q != &h->subs; q = next) {
        next = q->next;
        sub_t *s = SG_CONTAINER_OF(q, sub_t, link);
        if (s->head_sent && !h->live)
            sub_end(s, true, true);
        else
            sub_end(s, ok && s->head_sent, false);
    }
}

/* Every subscriber, the ones on a dedicated replay too. */
static void end_everyone(hub_t *h, bool ok)
{
    end_all(h, ok);
    while (!sg_list_empty(&h->catchup)) {
        sub_t *s = SG_CONTAINER_OF(h->catchup.next, sub_t, link);
        sub_end(s, ok && s->head_sent, false);
    }
    while (!sg_list_empty(&h->waiting)) {
        sub_t *s = SG_CONTAINER_OF(h->waiting.next, sub_t, link);
        sub_end(s, false, false);
    }
}

void sg__hub_end_all(hub_t *h, bool ok)
{
    end_all(h, ok);
}

void sg__hub_end_everyone(hub_t *h, bool ok)
{
    end_everyone(h, ok);
}

void sg__publish_ring(hub_t *h)
{
    publish_ring(h);
}

void sg__hub_table_remove(hub_t *h)
{
    table_remove(h);
}

static void retry_cb(sg_timer_t *t)
{
    hub_t *h = SG_CONTAINER_OF(t, hub_t, t_retry);
    sg_worker_t *w = h->w;
    if (!h->attempt_over) {
        hub_connect(h);
        return;
    }
    h->attempt_over = false;
    uint8_t att = h->attempt;
    h->attempt = ATT_NONE;
    if (!h->live) {
        /* Never an event stream: every waiting subscriber gets the answer (or a cut), and the next request
         * starts a new shared stream. */
        table_remove(h);
        sg__share_end(h, false, att == ATT_PLAIN);
        if (att == ATT_PLAIN)
            sg__hub_answer_plain(h); /* those still waiting for a head; end_all ends the others */
        end_all(h, false);
        if (h->nsubs == 0)
            sg_timer_arm(&w->loop.wheel, &h->t_linger, w->loop.now_ms);
        return;
    }
    if (att == ATT_STOP) {
        table_remove(h);
        sg__share_end(h, true, false);
        end_all(h, true);
    }
    if (att == ATT_STOP || (h->nsubs == 0 && h->nfol == 0) || h->closing) {
        if (h->nsubs == 0 && h->nfol == 0)
            sg_timer_arm(&w->loop.wheel, &h->t_linger, w->loop.now_ms);
        return;
    }
    /* Failover: the next attempt resumes after the last complete event (the partial one is discarded when it
     * starts). */
    int64_t retry = sg_seg_retry_ms(&h->seg);
    uint64_t delay = retry >= 0 ? (uint64_t)SG_MIN(retry, h->pol->max_retry_ms) : 0;
    if (att != ATT_SSE) {
        h->fails++;
        uint64_t b = (uint64_t)RETRY_BASE_MS << SG_MIN(h->fails, 10u);
        uint64_t cap = h->pol->max_retry_ms > 0 ? (uint64_t)h->pol->max_retry_ms : 10000;
        if (b > cap)
            b = cap;
        if (b > delay)
            delay = b;
    }
    sg_timer_arm(&w->loop.wheel, &h->t_retry, w->loop.now_ms + delay);
}

/* The hub's request (as its first subscriber sent it, without Last-Event-ID), with Last-Event-ID: id when n > 0.
 * Returns a message the caller frees (it points into h and id), or NULL. */
static sg_h1_msg_t *hub_msg(const hub_t *h, const char *id, size_t n)
{
    sg_h1_msg_t *msg = calloc(1, sizeof(*msg));
    if (msg == NULL)
        return NULL;
    msg->method = SG_STR("GET");
    msg->target = h->target;
    msg->minor_version = 1;
    msg->keep_alive = true;
    msg->body = SG_H1_BODY_NONE;
    msg->host_index = h->host_index;
    size_t k = SG_MIN(h->nhdrs, (size_t)SG_H1_MAX_HEADERS - 1);
    memcpy(msg->headers, h->hdrs, k * sizeof(*h->hdrs));
    msg->nheaders = k;
    if (n > 0)
        msg->headers[msg->nheaders++] = (sg_h1_header_t){SG_STR("Last-Event-ID"), {id, n}};
    return msg;
}

/* Starts an upstream exchange for the hub through the proxy, as one of its subscribers would. */
static void hub_connect(hub_t *h)
{
    sg_worker_t *w = h->w;
    /* Subscribers here or on other workers' followers: the upstream serves the instance. */
    if ((h->nsubs == 0 && h->nfol == 0) || h->closing)
        return;
    /* Resume after the last complete event (the first subscriber's Last-Event-ID before any): an empty id means
     * the backend starts afresh, as it would for an EventSource. */
    sg_h1_msg_t *msg = hub_msg(h, h->last_id, h->last_id_ok ? h->last_id_len : 0);
    if (msg == NULL) {
        h->attempt_over = true;
        sg_timer_arm(&w->loop.wheel, &h->t_retry, w->loop.now_ms + 1000);
        return;
    }
    if (h->live)
        sg_counter_add(&w->metrics.fanout_failovers, 1);
    /* The partial event of the last attempt is gone: the parser starts over, knowing the last id. */
    sg_seg_restart(&h->seg, h->last_id, h->last_id_len);
    h->attempt = ATT_NONE;
    h->attempt_over = false;
    h->starting = true;
    sg_stream_t *s = sg_proxy_start(w, &hub_ops, h, &h->tinfo, msg, false, 0);
    h->starting = false;
    free(msg);
    if (h->attempt_over)
        return; /* answered at once (refused, no route...): the retry timer is armed */
    if (s == NULL) {
        h->attempt_over = true;
        sg_timer_arm(&w->loop.wheel, &h->t_retry, w->loop.now_ms + 1000);
        return;
    }
    h->up = s;
}

static void hb_cb(sg_timer_t *t)
{
    hub_t *h = SG_CONTAINER_OF(t, hub_t, t_hb);
    sg_worker_t *w = h->w;
    int64_t every = hb_ms(h);
    if (every <= 0)
        return;
    if (h->live && w->loop.now_ms >= h->last_send_ms + (uint64_t)every) {
        for (sg_list_t *q = h->subs.next, *next; q != &h->subs; q = next) {
            next = q->next;
            sub_t *s = SG_CONTAINER_OF(q, sub_t, link);
            if (!s->head_sent || s->blocked || s->next_seq != h->ring.head_seq)
                continue;
            int rc = s->ops->send_shared ? s->ops->send_shared(s->down, h->hb, &h->hb_h1)
                                         : s->ops->send_body(s->down, h->hb->data, h->hb->len);
            s->bytes_out += h->hb->len;
            if (rc < 0 && rc != SG_EAGAIN)
                sub_end(s, false, false);
            else if (rc == SG_EAGAIN)
                s->blocked = true;
        }
        h->last_send_ms = w->loop.now_ms;
    }
    sg_timer_arm(&w->loop.wheel, &h->t_hb, h->last_send_ms + (uint64_t)every);
}

void sg__hub_free(hub_t *h)
{
    sg_worker_t *w = h->w;
    table_remove(h);
    sg__share_hub_free(h);
    sg_timer_cancel(&w->loop.wheel, &h->t_retry);
    sg_timer_cancel(&w->loop.wheel, &h->t_linger);
    sg_timer_cancel(&w->loop.wheel, &h->t_hb);
    sg_timer_cancel(&w->loop.wheel, &h->t_reap);
    sg_ring_free(&h->ring);
    publish_ring(h);
    sg_list_remove(&h->alink);
    sg_config_unref(h->cfg);
    free((char *)h->tinfo.client_cert);
    free(h->key);
    free(h->req);
    free(h->hdrs);
    free(h->rhdrs);
    free(h->rstore);
    free(h->body);
    sg_seg_free(&h->seg);
    sg_rbuf_unref(h->hb);
    sg_rbuf_unref(h->hb_h1);
    free(h);
}

/* Closes the upstream and frees the hub; its subscribers are ended first (cut when not at their end). */
static void hub_close(hub_t *h)
{
    h->closing = true;
    table_remove(h);
    if (h->up != NULL) {
        sg_stream_t *s = h->up;
        h->up = NULL;
        sg_proxy_down_closed(s);
    }
    /* Another worker's subscribers of this stream end too (hard stop: every worker is closing). */
    if (h->nfol > 0)
        sg__share_end(h, true, false);
    end_everyone(h, true);
    if (h->role == HUB_FOLLOWER && !h->detaching)
        sg__share_leave(h);
    sg__hub_free(h);
}

static void linger_cb(sg_timer_t *t)
{
    hub_t *h = SG_CONTAINER_OF(t, hub_t, t_linger);
    if (h->nsubs > 0 || h->nfol > 0)
        return;
    hub_close(h);
}

/* ---- dedicated replays that join the shared stream ---- */

static void cu_free(sub_t *s)
{
    catchup_t *cu = s->cu;
    if (cu == NULL)
        return;
    s->cu = NULL;
    if (cu->own != NULL) {
        sg_stream_t *o = cu->own;
        cu->own = NULL;
        sg_proxy_down_closed(o);
    }
    sg_seg_free(&cu->seg);
    free(cu);
}

/* The subscriber has every event up to next_seq - 1: it goes on from the shared stream. Its dedicated exchange is
 * closed from the loop (this may run inside that exchange's callbacks). */
static void cu_merge(sub_t *s, uint64_t next_seq)
{
    hub_t *h = s->hub;
    s->cu->merged = true;
    s->next_seq = next_seq;
    s->blocked = s->cu->eagain;
    sg_list_remove(&s->link);
    sg_list_insert_tail(&h->subs, &s->link);
    sg_counter_add(&h->w->metrics.fanout_merges, 1);
    sg_timer_arm(&h->w->loop.wheel, &h->t_reap, h->w->loop.now_ms);
}

static void reap_cb(sg_timer_t *t)
{
    hub_t *h = SG_CONTAINER_OF(t, hub_t, t_reap);
    for (sg_list_t *q = h->subs.next, *next; q != &h->subs; q = next) {
        next = q->next;
        sub_t *s = SG_CONTAINER_OF(q, sub_t, link);
        if (s->cu == NULL || !s->cu->merged)
            continue;
        cu_free(s);
        sub_pump(s);
    }
}

static void cu_event(void *ctx, const sg_seg_event_t *se)
{
    sub_t *s = ctx;
    catchup_t *cu = s->cu;
    if (cu->merged || cu->failed)
        return;
    int rc = s->ops->send_body(s->down, se->p, se->n);
    if (rc < 0 && rc != SG_EAGAIN) {
        cu->failed = true;
        return;
    }
    s->bytes_out += se->n;
    s->events++;
    if (rc == SG_EAGAIN)
        cu->eagain = cu->eagain_now = true;
    memcpy(cu->id, se->id, se->id_len);
    cu->id_len = (uint8_t)se->id_len;
    cu->id_ok = se->id_ok;
    if (se->id_set && se->id_ok) {
        int64_t at = sg_ring_find(&s->hub->ring, se->id, se->id_len);
        if (at >= 0)
            cu_merge(s, (uint64_t)at);
    }
}

static int cu_send_head(void *down, int status, const sg_h1_header_t *hdrs, size_t n, int64_t clen, bool no_body)
{
    sub_t *s = down;
    s->cu->sse = status == 200 && is_event_stream(hdrs, n) && !no_body;
    s->head_sent = true;
    s->status = (uint16_t)status;
    if (s->cu->sse && s->hub->rm) {
        sg_counter_add(&s->hub->rm->sse_active, 1);
        sg_counter_add(&s->hub->rm->sse_total, 1);
    } else {
        s->head_sent = false; /* not counted as an SSE stream when it ends */
    }
    int rc = s->ops->send_head(s->down, status, hdrs, n, clen, no_body);
    if (rc == SG_EAGAIN)
        s->cu->eagain = true;
    return rc;
}

static int cu_send_body(void *down, const char *p, size_t n)
{
    sub_t *s = down;
    catchup_t *cu = s->cu;
    if (cu->merged)
        return 0;
    if (!cu->sse) {
        s->bytes_out += n;
        return s->ops->send_body(s->down, p, n);
    }
    cu->eagain_now = false;
    int rc = sg_seg_feed(&cu->seg, p, n, cu_event, s);
    if (rc < 0)
        return rc;
    if (cu->failed)
        return -EPIPE;
    return !cu->merged && cu->eagain_now ? SG_EAGAIN : 0;
}

static int cu_send_end(void *down)
{
    sub_t *s = down;
    return s->cu->merged ? 0 : s->ops->send_end(s->down);
}

static void cu_abort(void *down)
{
    sub_t *s = down;
    if (!s->cu->merged)
        s->ops->abort(s->down);
}

/* The dedicated exchange is over on its own (the backend ended it, or it failed): so is the client's response,
 * unless the subscriber has moved to the shared stream. */
static void cu_detach(void *down, bool ok)
{
    sub_t *s = down;
    catchup_t *cu = s->cu;
    cu->own = NULL;
    if (cu->starting) {
        cu->detached = ok ? 1 : -1;
        return;
    }
    if (cu->merged)
        return;
    s->finished = true;
    access_log(s, s->status ? s->status : 502);
    s->ops->detach(s->down, ok);
    sub_free(s);
}

static const sg_stream_ops_t cu_ops = {
    .send_head = cu_send_head,
    .send_body = cu_send_body,
    .send_end = cu_send_end,
    .abort = cu_abort,
    .resume_body = up_resume_body,
    .refuse = NULL,
    .detach = cu_detach,
};

static sub_t *sub_new(sg_worker_t *w, hub_t *h, const sg_stream_ops_t *ops, void *down, const sg_down_info_t *info,
                      sg_list_t *list)
{
    sub_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->kind = SG_STREAM_KIND_SHARED;
    s->ops = ops;
    s->down = down;
    s->info = *info;
    s->hub = h;
    s->start_ms = w->loop.now_ms;
    s->mproto = info->conn->mproto;
    s->lm = info->conn->lm;
    sg_timer_init(&s->timer, sub_drain_cb);
    sg_list_insert_tail(list, &s->link);
    h->nsubs++;
    sg_timer_cancel(&w->loop.wheel, &h->t_linger);
    sg_counter_add(&s->lm->streams_active[s->mproto], 1);
    sg_counter_add(&s->lm->streams_total[s->mproto], 1);
    sg_counter_add(&w->metrics.fanout_subscribers, 1);
    sg_counter_add(&w->metrics.fanout_subscribers_total, 1);
    sg_counter_add(&h->rm->shared_subscribers, 1);
    if (h->rm)
        sg_counter_add(&h->rm->requests, 1);
    return s;
}

/* A Last-Event-ID the ring cannot serve: a dedicated exchange carries it (the backend replays what it can) until
 * its events meet the shared stream. */
static sg_stream_t *cu_begin(sub_t *s, const sg_h1_msg_t *msg, sg_str_t lei, bool deferred);

static sg_stream_t *cu_start(sg_worker_t *w, hub_t *h, const sg_stream_ops_t *ops, void *down,
                             const sg_down_info_t *info, const sg_h1_msg_t *msg, sg_str_t lei)
{
    sub_t *s = sub_new(w, h, ops, down, info, &h->catchup);
    if (s == NULL)
        return NULL;
    return cu_begin(s, msg, lei, false);
}

/* s (on h->catchup) gets its dedicated exchange. Returns what the protocol's start returns. */
static sg_stream_t *cu_begin(sub_t *s, const sg_h1_msg_t *msg, sg_str_t lei, bool deferred)
{
    sg_worker_t *w = s->hub->w;
    catchup_t *cu = calloc(1, sizeof(*cu));
    if (cu != NULL) {
        s->cu = cu;
        s->replay = 2;
        sg_seg_init(&cu->seg, MAX_EVENT_BYTES);
        if (lei.n <= SG_SSE_MAX_ID) {
            memcpy(cu->id, lei.p, lei.n);
            cu->id_len = (uint8_t)lei.n;
            cu->id_ok = true;
            sg_seg_restart(&cu->seg, lei.p, lei.n);
        }
        cu->starting = true;
    }
    sg_stream_t *o = cu ? sg_proxy_start(w, &cu_ops, s, &s->info, msg, false, 0) : NULL;
    if (cu != NULL)
        cu->starting = false;
    if (cu != NULL && cu->detached != 0) {
        /* Answered at once (refused, 502...): the client has its answer; the protocol expects the detach. */
        s->finished = true;
        access_log(s, s->status ? s->status : 502);
        s->ops->detach(s->down, cu->detached > 0);
        sub_free(s);
        return o;
    }
    if (o == NULL) {
        s->finished = true;
        if (deferred) {
            /* After the protocol's start returned: it must be told, as for any response that cannot complete. */
            s->ops->abort(s->down);
            access_log(s, 502);
            s->ops->detach(s->down, false);
        }
        sub_free(s);
        return NULL;
    }
    cu->own = o;
    return (sg_stream_t *)(void *)s;
}

void sg__hub_connect_soon(hub_t *h)
{
    sg_timer_arm(&h->w->loop.wheel, &h->t_retry, h->w->loop.now_ms);
}

/* ---- joining ---- */

/* A subscriber of a follower that has not got its owner's ring yet: one with a Last-Event-ID waits for it to decide
 * (sg__hub_replay_waiting); the others start at the live edge it will have. */
static sg_stream_t *sub_wait(sg_worker_t *w, hub_t *h, const sg_stream_ops_t *ops, void *down,
                             const sg_down_info_t *info, sg_str_t lei)
{
    sub_t *s = sub_new(w, h, ops, down, info, lei.n > 0 ? &h->waiting : &h->subs);
    if (s == NULL) {
        sg__hub_check_unused(h);
        return NULL;
    }
    if (lei.n > 0) {
        catchup_t *cu = calloc(1, sizeof(*cu));
        if (cu == NULL) {
            s->finished = true;
            sub_free(s);
            return NULL;
        }
        s->cu = cu;
        if (lei.n <= SG_SSE_MAX_ID) {
            memcpy(cu->id, lei.p, lei.n);
            cu->id_len = (uint8_t)lei.n;
            cu->id_ok = true;
        }
    }
    return (sg_stream_t *)(void *)s;
}

/* The follower's ring arrived: the subscribers that joined before it start at its live edge, and those with a
 * Last-Event-ID are served as on an owner (ring, backend or live). */
void sg__hub_replay_waiting(hub_t *h)
{
    sg_worker_t *w = h->w;
    for (sg_list_t *q = h->subs.next; q != &h->subs; q = q->next) {
        sub_t *s = SG_CONTAINER_OF(q, sub_t, link);
        if (!s->head_sent)
            s->next_seq = h->ring.head_seq;
    }
    while (!sg_list_empty(&h->waiting)) {
        sub_t *s = SG_CONTAINER_OF(h->waiting.next, sub_t, link);
        catchup_t *cu = s->cu;
        sg_list_remove(&s->link);
        int64_t at = cu->id_ok ? sg_ring_find(&h->ring, cu->id, cu->id_len) : -1;
        if (at >= 0 || h->pol->on_too_old == SG_SSE_TOO_OLD_LIVE) {
            s->next_seq = at >= 0 ? (uint64_t)at : h->ring.head_seq;
            s->replay = at >= 0 ? 1 : 3;
            sg_counter_add(&w->metrics.fanout_replays[at >= 0 ? 0 : 2], 1);
            s->cu = NULL;
            free(cu);
            sg_list_insert_tail(&h->subs, &s->link);
            continue; /* its head goes with the others' (sg__hub_live) */
        }
        sg_counter_add(&w->metrics.fanout_replays[1], 1);
        sg_list_insert_tail(&h->catchup, &s->link);
        char id[SG_SSE_MAX_ID];
        sg_str_t lei = {id, cu->id_ok ? cu->id_len : 0};
        memcpy(id, cu->id, lei.n);
        s->cu = NULL;
        free(cu);
        sg_h1_msg_t *msg = hub_msg(h, lei.p, lei.n);
        if (msg == NULL) {
            sub_end(s, false, false);
            continue;
        }
        cu_begin(s, msg, lei, true); /* on failure the client's response ends there */
        free(msg);
    }
}

static hub_t *hub_new(sg_worker_t *w, const sg_rule_t *rule, const sg_h1_msg_t *msg, sg_fkey_t *key, uint64_t hash,
                      sg_str_t lei, const sg_down_info_t *info)
{
    hub_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    /* The upstream exchange is the first subscriber's request, whether or not that subscriber is still here (its
     * address for X-Forwarded-For, its listener's port for routing and counters). */
    h->tconn.worker = w;
    h->tconn.peer = info->conn->peer;
    h->tconn.port = info->conn->port;
    h->tconn.scheme = info->conn->scheme;
    h->tconn.mproto = info->conn->mproto;
    h->tconn.lm = info->conn->lm;
    h->tinfo = *info;
    h->tinfo.conn = &h->tconn;
    h->tinfo.protocol = (sg_str_t){NULL, 0};
    h->tinfo.shared_upstream = true;
    h->tinfo.client_cert = info->client_cert ? strdup(info->client_cert) : NULL;
    if (info->client_cert != NULL && h->tinfo.client_cert == NULL) {
        free(h);
        return NULL;
    }
    size_t bytes = msg->target.n;
    for (size_t i = 0; i < msg->nheaders; i++)
        bytes += msg->headers[i].name.n + msg->headers[i].value.n;
    char hb[4];
    size_t hbn = sg_sse_write_heartbeat(hb, sizeof(hb));
    h->hb = sg_rbuf_new(hb, hbn);
    h->req = malloc(bytes ? bytes : 1);
    h->hdrs = malloc((msg->nheaders ? msg->nheaders : 1) * sizeof(*h->hdrs));
    if (h->req == NULL || h->hdrs == NULL || h->hb == NULL) {
        free((char *)h->tinfo.client_cert);
        sg_rbuf_unref(h->hb);
        free(h->req);
        free(h->hdrs);
        free(h);
        return NULL;
    }
    char *o = h->req;
    memcpy(o, msg->target.p, msg->target.n);
    h->target = (sg_str_t){o, msg->target.n};
    o += msg->target.n;
    h->host_index = -1;
    for (size_t i = 0; i < msg->nheaders; i++) {
        const sg_h1_header_t *hd = &msg->headers[i];
        if (sg_str_ieq_lit(hd->name, "last-event-id"))
            continue;
        if ((int)i == msg->host_index)
            h->host_index = (int)h->nhdrs;
        memcpy(o, hd->name.p, hd->name.n);
        sg_str_t name = {o, hd->name.n};
        o += hd->name.n;
        memcpy(o, hd->value.p, hd->value.n);
        sg_str_t value = {o, hd->value.n};
        o += hd->value.n;
        h->hdrs[h->nhdrs++] = (sg_h1_header_t){name, value};
    }
    h->fo = w->fanout;
    h->w = w;
    h->cfg = w->cfg;
    sg_config_ref(h->cfg);
    h->rule = rule;
    h->pol = rule->ssep;
    h->rm = sg_metrics_route(&w->metrics, rule->route->ns, rule->route->name);
    h->key = key->p;
    h->key_len = key->n;
    key->p = NULL;
    h->hash = hash;
    sg_list_init(&h->subs);
    sg_list_init(&h->catchup);
    sg_list_init(&h->waiting);
    sg_seg_init(&h->seg, MAX_EVENT_BYTES);
    sg_ring_init(&h->ring, h->pol->replay_max_events, h->pol->replay_max_bytes, h->pol->replay_max_age_ms);
    if (lei.n > 0 && lei.n <= SG_SSE_MAX_ID) {
        memcpy(h->origin_id, lei.p, lei.n);
        h->origin_len = (uint8_t)lei.n;
        sg_ring_set_base(&h->ring, lei.p, lei.n);
        memcpy(h->last_id, lei.p, lei.n);
        h->last_id_len = (uint8_t)lei.n;
        h->last_id_ok = true;
    }
    sg_list_insert_tail(&w->fanout->all, &h->alink);
    sg_timer_init(&h->t_retry, retry_cb);
    sg_timer_init(&h->t_linger, linger_cb);
    sg_timer_init(&h->t_hb, hb_cb);
    sg_timer_init(&h->t_reap, reap_cb);
    h->last_send_ms = w->loop.now_ms;
    if (hb_ms(h) > 0)
        sg_timer_arm(&w->loop.wheel, &h->t_hb, w->loop.now_ms + (uint64_t)hb_ms(h));
    h->next = w->fanout->buckets[hash % HUB_BUCKETS];
    w->fanout->buckets[hash % HUB_BUCKETS] = h;
    h->in_table = true;
    w->fanout->nhubs++;
    sg__share_join(h);
    return h;
}

/* Decides whether the request joins a shared stream; NULL rule when it does not. */
static const sg_rule_t *shared_rule(sg_worker_t *w, const sg_down_info_t *info, const sg_h1_msg_t *msg,
                                    bool has_body)
{
    sg_config_t *cfg = w->cfg;
    if (cfg == NULL || cfg->nshared_rules == 0 || has_body || !sg_str_eq(msg->method, SG_STR("GET")) ||
        w->fanout == NULL || msg->target.n == 0 || msg->target.p[0] != '/')
        return NULL;
    sg_str_t path = msg->target, query = {"", 0};
    const char *q = memchr(msg->target.p, '?', msg->target.n);
    if (q != NULL) {
        path.n = (size_t)(q - msg->target.p);
        query = (sg_str_t){q + 1, msg->target.n - path.n - 1};
    }
    sg_str_t host = msg->host_index >= 0 ? msg->headers[msg->host_index].value : (sg_str_t){NULL, 0};
    sg_route_match_t m;
    sg_route_req_t rq = {.method = msg->method, .host = host, .path = path, .query = query,
                         .headers = msg->headers, .nheaders = msg->nheaders, .scratch = w->route_scratch};
    if (sg_route_match(cfg, info->conn->port, &rq, &m) != 0)
        return NULL;
    const sg_rule_t *r = m.rule;
    /* Credentials make a stream someone's own: it is shared only when the policy says it is public. A client
     * certificate (frontend mTLS) is a credential too. */
    if (!sg_fanout_may_share(r, msg, has_body, info->client_cert_state != 0))
        return NULL;
    return r;
}

static hub_t *hub_find(sg_fanout_t *fo, const sg_fkey_t *k, uint64_t hash)
{
    for (hub_t *h = fo->buckets[hash % HUB_BUCKETS]; h != NULL; h = h->next)
        if (h->hash == hash && h->key_len == k->n && memcmp(h->key, k->p, k->n) == 0)
            return h;
    return NULL;
}

static sg_stream_t *h_start(sg_worker_t *w, const sg_stream_ops_t *ops, void *down, const sg_down_info_t *info,
                            const sg_h1_msg_t *msg, bool has_body, int64_t body_len)
{
    const sg_rule_t *rule = shared_rule(w, info, msg, has_body);
    if (rule == NULL)
        return sg_proxy_start(w, ops, down, info, msg, has_body, body_len);
    sg_fkey_t k = {0};
    uint64_t hash = sg_fanout_key(&k, w->cfg, rule, msg);
    if (k.oom) {
        free(k.p);
        return NULL;
    }
    size_t from = 0;
    const sg_h1_header_t *lh = sg_h1parse_find(msg, "last-event-id", &from);
    sg_str_t lei = lh ? lh->value : (sg_str_t){NULL, 0};
    hub_t *h = hub_find(w->fanout, &k, hash);
    uint8_t replay = 0;
    uint64_t next_seq = 0;
    bool fresh = h == NULL;
    if (h != NULL) {
        free(k.p);
        if (h->role == HUB_FOLLOWER && !h->synced)
            return sub_wait(w, h, ops, down, info, lei);
        next_seq = h->ring.head_seq;
        if (lei.n > 0) {
            sg_ring_expire(&h->ring, w->loop.now_ms);
            publish_ring(h);
            int64_t at = sg_ring_find(&h->ring, lei.p, lei.n);
            if (at >= 0) {
                next_seq = (uint64_t)at;
                replay = 1;
            } else if (h->pol->on_too_old == SG_SSE_TOO_OLD_LIVE) {
                replay = 3;
            } else {
                /* Older than the ring, or unknown (ids are opaque: they cannot be ordered): a dedicated exchange
                 * carries the id, and the backend replays what it can. */
                sg_counter_add(&w->metrics.fanout_replays[1], 1);
                return cu_start(w, h, ops, down, info, msg, lei);
            }
            sg_counter_add(&w->metrics.fanout_replays[replay == 1 ? 0 : 2], 1);
        }
    }
    if (fresh) {
        h = hub_new(w, rule, msg, &k, hash, lei, info);
        free(k.p);
        if (h == NULL)
            return NULL;
        if (h->role == HUB_FOLLOWER)
            return sub_wait(w, h, ops, down, info, lei);
        if (lei.n > 0) {
            replay = 2;
            sg_counter_add(&w->metrics.fanout_replays[1], 1);
        }
    }
    sub_t *s = sub_new(w, h, ops, down, info, &h->subs);
    if (s == NULL) {
        if (fresh)
            sg_timer_arm(&w->loop.wheel, &h->t_linger, w->loop.now_ms);
        return NULL;
    }
    s->next_seq = next_seq;
    s->replay = replay;
    if (fresh) {
        /* Connect from the loop, not from inside the protocol's start: the proxy may answer at once, and a
         * callback is never called from inside the call that registered it. */
        sg_timer_arm(&w->loop.wheel, &h->t_retry, w->loop.now_ms);
    } else if (h->live) {
        /* Sent from here is fine: the protocol expects ops calls during start (the proxy answers 404s so), and
         * a detach from inside start is recorded by the protocol, which then ignores what start returns. */
        sub_start(s);
    }
    return (sg_stream_t *)(void *)s;
}

/* ---- the handler ---- */

static int h_req_body(sg_stream_t *st, const char *p, size_t n)
{
    if (sg_stream_kind(st) != SG_STREAM_KIND_SHARED)
        return sg_proxy_req_body(st, p, n);
    return 0;
}

static void h_req_end(sg_stream_t *st)
{
    if (sg_stream_kind(st) != SG_STREAM_KIND_SHARED)
        sg_proxy_req_end(st);
}

static void h_down_writable(sg_stream_t *st)
{
    if (sg_stream_kind(st) != SG_STREAM_KIND_SHARED) {
        sg_proxy_down_writable(st);
        return;
    }
    sub_t *s = (sub_t *)(void *)st;
    if (s->cu != NULL && !s->cu->merged) {
        s->cu->eagain = false;
        if (s->cu->own != NULL)
            sg_proxy_down_writable(s->cu->own);
        return;
    }
    if (!s->blocked)
        return;
    s->blocked = false;
    sub_pump(s);
}

static void h_down_blocked(sg_stream_t *st)
{
    if (sg_stream_kind(st) != SG_STREAM_KIND_SHARED) {
        sg_proxy_down_blocked(st);
        return;
    }
    sub_t *s = (sub_t *)(void *)st;
    if (s->cu != NULL && !s->cu->merged) {
        if (s->cu->own != NULL)
            sg_proxy_down_blocked(s->cu->own);
        return;
    }
    s->blocked = true;
}

static void h_down_closed(sg_stream_t *st)
{
    if (sg_stream_kind(st) != SG_STREAM_KIND_SHARED) {
        sg_proxy_down_closed(st);
        return;
    }
    sub_t *s = (sub_t *)(void *)st;
    if (s->finished)
        return;
    s->finished = true;
    access_log(s, s->head_sent ? s->status : 499);
    sub_free(s);
}

static void h_drain(sg_stream_t *st, uint64_t at_ms)
{
    if (sg_stream_kind(st) != SG_STREAM_KIND_SHARED) {
        sg_proxy_drain(st, at_ms);
        return;
    }
    sub_t *s = (sub_t *)(void *)st;
    if (s->finished)
        return;
    s->drain_at_ms = at_ms ? at_ms : 1;
    sg_timer_arm(&s->hub->w->loop.wheel, &s->timer, s->drain_at_ms);
}

const sg_stream_handler_t sg_fanout_handler = {
    .start = h_start,
    .req_body = h_req_body,
    .req_end = h_req_end,
    .down_writable = h_down_writable,
    .down_blocked = h_down_blocked,
    .down_closed = h_down_closed,
    .drain = h_drain,
};

int sg_fanout_init(sg_worker_t *w)
{
    sg_fanout_t *fo = calloc(1, sizeof(*fo));
    if (fo == NULL)
        return -ENOMEM;
    fo->w = w;
    sg_list_init(&fo->all);
    sg__share_init(fo);
    w->fanout = fo;
    return 0;
}

void sg_fanout_close_all(sg_worker_t *w)
{
    sg_fanout_t *fo = w->fanout;
    if (fo == NULL)
        return;
    fo->closed = true; /* from here on, what other workers post here is dropped unread */
    while (!sg_list_empty(&fo->all))
        hub_close(SG_CONTAINER_OF(fo->all.next, hub_t, alink));
    sg__share_close(fo);
}

void sg_fanout_free(sg_worker_t *w)
{
    sg_fanout_close_all(w);
    if (w->fanout != NULL)
        sg__share_unlink(w->fanout);
    free(w->fanout);
    w->fanout = NULL;
}
