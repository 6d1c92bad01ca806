/* ring.h: the replay ring of one shared stream: its most recent complete events, bounded by count, bytes and
 * age, found by event id. Pure: no I/O; it allocates only the events it keeps. */
#ifndef SG_RING_H
#define SG_RING_H

#include "core/buf.h"
#include "core/sg.h"
#include "codec/sse.h"

/* One complete event as relayed (its raw lines up to and including the blank line that ends it), shared by
 * reference: the ring holds one reference and every subscriber queue that still has to send it holds one. */
typedef sg_rbuf_t sg_event_t;

/* Returns a new event (refs = 1) holding a copy of p[0..n), or NULL. */
static inline sg_event_t *sg_event_new(const char *p, size_t n)
{
    return sg_rbuf_new(p, n);
}
/* Drops a reference; the last frees the event. Accepts NULL. */
static inline void sg_event_unref(sg_event_t *e)
{
    sg_rbuf_unref(e);
}

typedef struct sg_ring_ent {
    sg_event_t *ev;
    sg_rbuf_t *h1_chunk;        /* its HTTP/1.1 chunk framing, made on first use (stream.h send_shared) */
    uint64_t at_ms;
    uint64_t end_bytes;         /* bytes of every event pushed so far, this one included */
    bool id_set;                /* the event carried an id line: the event a Last-Event-ID names */
    bool id_ok;                 /* the id is whole (not truncated at SG_SSE_MAX_ID bytes) */
    uint8_t id_len;
    char id[SG_SSE_MAX_ID];     /* the last event id after this event */
} sg_ring_ent_t;

typedef struct sg_ring {
    sg_ring_ent_t *ents;        /* circular, cap slots, grown on demand up to max_events */
    uint32_t cap, count, first; /* first: slot of the oldest event */
    uint64_t head_seq;          /* sequence number the next event gets; the oldest held is head_seq - count */
    uint64_t bytes;             /* event bytes held */
    uint64_t pushed_bytes;      /* event bytes ever pushed */
    uint32_t max_events;        /* 0: nothing is kept */
    uint64_t max_bytes;
    int64_t max_age_ms;         /* 0: no age bound */
    /* The id of the event just before the oldest held one, when every event after it is held: an id the ring
     * can still replay after although the event itself is gone (or was never seen: the id a shared stream
     * asked its backend to resume from). */
    bool base_ok;
    uint8_t base_len;
    char base_id[SG_SSE_MAX_ID];
} sg_ring_t;

void sg_ring_init(sg_ring_t *r, uint32_t max_events, uint64_t max_bytes, int64_t max_age_ms);
/* Drops every event and the slots. */
void sg_ring_free(sg_ring_t *r);
/* Sets the base id (see sg_ring_t) of an empty ring. An id longer than SG_SSE_MAX_ID bytes is not kept. */
void sg_ring_set_base(sg_ring_t *r, const char *id, size_t n);
/*
 * Appends an event, taking a reference on ev, and gives it the sequence number head_seq (which then grows by
 * one, whether or not the event is kept). Older events leave to keep the bounds; an event alone larger than
 * max_bytes, or one that cannot be stored, empties the ring (replay across it would have a gap).
 * Returns 0, or -ENOMEM (the ring was emptied, the sequence number still taken).
 */
int sg_ring_push(sg_ring_t *r, uint64_t now_ms, sg_event_t *ev, const char *id, size_t id_len, bool id_set,
                 bool id_ok);
/* Drops events older than max_age_ms at now_ms. */
void sg_ring_expire(sg_ring_t *r, uint64_t now_ms);
/*
 * The sequence number of the first event after the event whose id is id[0..n): the newest held event that
 * carried that id, or the base id. Returns it (it may equal head_seq: nothing to replay), or -1 when the id
 * is unknown or older than the ring (ids are opaque strings and cannot be ordered: unknown counts as too old).
 */
int64_t sg_ring_find(const sg_ring_t *r, const char *id, size_t n);
/* The event with sequence number seq, or NULL when it is no longer (or not yet) held. */
sg_ring_ent_t *sg_ring_get(const sg_ring_t *r, uint64_t seq);
/* Sequence number of the oldest held event (== head_seq when empty). */
static inline uint64_t sg_ring_oldest(const sg_ring_t *r)
{
    return r->head_seq - r->count;
}
/* Event bytes held from sequence number seq to the head (seq older than the ring: all). */
uint64_t sg_ring_bytes_from(const sg_ring_t *r, uint64_t seq);

#endif
