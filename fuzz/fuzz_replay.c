/* fuzz_replay.c: libFuzzer harness for shared-stream replay: an arbitrary event stream is split into events
 * (fanout/segment.c) and kept in a replay ring (fanout/ring.c); replay after any id must give exactly the events
 * after it, with no gap and no duplicate. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/sse.h"
#include "fanout/ring.h"
#include "fanout/segment.h"

/*
 * Input: byte 0 bounds the ring (1..32 events), byte 1 the feed stride (1..64 bytes per feed); then the stream,
 * then optionally "\0\0" and query ids separated by "\0". Checks:
 * - every emitted event ends with a line end and re-parsing all of them dispatches exactly the events the whole
 *   stream dispatches, ending with the same last event id (splitting neither loses nor repeats an event);
 * - for every event's id and every query id, sg_ring_find agrees with a model of the ring (the newest held event
 *   that carried the id, else the base id), and the events from there to the head are the model's, in order.
 * Any difference aborts.
 */

#define MAXEV 4096

typedef struct mev {
    char *p;
    size_t n;
    char id[SG_SSE_MAX_ID];
    size_t id_len;
    bool id_set, id_ok;
} mev_t;

typedef struct run {
    sg_ring_t ring;
    mev_t ev[MAXEV];
    size_t nev;
    bool overflow;
} run_t;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_replay: %s\n", what);
        abort();
    }
}

static void on_event(void *ctx, const sg_seg_event_t *se)
{
    run_t *r = ctx;
    check(se->n > 0 && (se->p[se->n - 1] == '\n' || se->p[se->n - 1] == '\r'), "event does not end with a line end");
    check(se->id_len <= SG_SSE_MAX_ID, "id length");
    if (r->nev == MAXEV) {
        r->overflow = true;
        return;
    }
    mev_t *m = &r->ev[r->nev++];
    m->p = malloc(se->n);
    check(m->p != NULL, "oom");
    memcpy(m->p, se->p, se->n);
    m->n = se->n;
    memcpy(m->id, se->id, se->id_len);
    m->id_len = se->id_len;
    m->id_set = se->id_set;
    m->id_ok = se->id_ok;
    sg_event_t *ev = sg_event_new(se->p, se->n);
    check(ev != NULL, "oom");
    check(sg_ring_push(&r->ring, 0, ev, se->id, se->id_len, se->id_set, se->id_ok) == 0, "push");
    sg_event_unref(ev);
}

static int64_t model_find(const run_t *r, const char *id, size_t n)
{
    if (n > SG_SSE_MAX_ID)
        return -1;
    size_t oldest = (size_t)sg_ring_oldest(&r->ring);
    for (size_t i = r->nev; i-- > oldest;) {
        const mev_t *m = &r->ev[i];
        if (m->id_set && m->id_ok && m->id_len == n && memcmp(m->id, id, n) == 0)
            return (int64_t)i + 1;
    }
    if (oldest > 0) {
        const mev_t *b = &r->ev[oldest - 1];
        if (b->id_set && b->id_ok && b->id_len == n && memcmp(b->id, id, n) == 0)
            return (int64_t)oldest;
    }
    return -1;
}

static void query(const run_t *r, const char *id, size_t n)
{
    int64_t want = model_find(r, id, n);
    int64_t got = sg_ring_find(&r->ring, id, n);
    check(want == got, "find disagrees with the model");
    if (got < 0)
        return;
    for (uint64_t seq = (uint64_t)got; seq < r->ring.head_seq; seq++) {
        const sg_ring_ent_t *e = sg_ring_get(&r->ring, seq);
        check(e != NULL, "a replayed event is missing (gap)");
        const mev_t *m = &r->ev[seq];
        check(e->ev->len == m->n && memcmp(e->ev->data, m->p, m->n) == 0, "a replayed event differs");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t max_events = 1 + data[0] % 32;
    size_t stride = 1 + data[1] % 64;
    const char *in = (const char *)data + 2;
    size_t n = size - 2, slen = n;
    for (size_t i = 0; i + 1 < n; i++)
        if (in[i] == '\0' && in[i + 1] == '\0') {
            slen = i;
            break;
        }
    run_t *r = calloc(1, sizeof(*r));
    check(r != NULL, "oom");
    sg_ring_init(&r->ring, max_events, UINT64_MAX, 0);
    sg_seg_t seg;
    sg_seg_init(&seg, 1 << 20);
    for (size_t off = 0; off < slen; off += stride) {
        size_t k = slen - off < stride ? slen - off : stride;
        char *copy = malloc(k);
        check(copy != NULL, "oom");
        memcpy(copy, in + off, k);
        check(sg_seg_feed(&seg, copy, k, on_event, r) == 0, "feed failed");
        free(copy);
    }
    if (!r->overflow) {
        /* Splitting loses and repeats nothing: the events re-parsed dispatch what the whole stream does. */
        sg_sse_t whole, again;
        sg_sse_init(&whole);
        sg_sse_init(&again);
        sg_sse_feed(&whole, in, slen, NULL);
        for (size_t i = 0; i < r->nev; i++)
            sg_sse_feed(&again, r->ev[i].p, r->ev[i].n, NULL);
        check(whole.events == again.events, "events lost or repeated by the split");
        if (r->nev > 0) {
            const mev_t *last = &r->ev[r->nev - 1];
            check(again.last_id_len == last->id_len && memcmp(again.last_id, last->id, last->id_len) == 0,
                  "last id after the events");
        }
        check(r->ring.count == (r->nev < max_events ? r->nev : max_events), "ring count bound");
        for (size_t i = 0; i < r->nev; i++)
            query(r, r->ev[i].id, r->ev[i].id_len);
        size_t q = slen + 2;
        while (q <= n) {
            size_t e = q;
            while (e < n && in[e] != '\0')
                e++;
            query(r, in + q, e - q);
            q = e + 1;
        }
    }
    for (size_t i = 0; i < r->nev; i++)
        free(r->ev[i].p);
    sg_seg_free(&seg);
    sg_ring_free(&r->ring);
    free(r);
    return 0;
}
