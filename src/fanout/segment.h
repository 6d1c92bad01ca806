/* segment.h: splits an upstream event stream into complete events, each with its bytes as received and the last
 * event id after it. Pure: it only keeps the bytes of the event still open. */
#ifndef SG_SEGMENT_H
#define SG_SEGMENT_H

#include "codec/sse.h"

typedef struct sg_seg_event {
    const char *p;              /* the event's lines, up to and including the blank line that ends it */
    size_t n;
    const char *id;             /* the last event id after it (the spec's "last event ID string") */
    size_t id_len;
    bool id_set;                /* it carried an id line */
    bool id_ok;                 /* the id is whole (not truncated at SG_SSE_MAX_ID) */
} sg_seg_event_t;

typedef struct sg_seg {
    sg_sse_t parser;
    char *buf;                  /* bytes of the open segment */
    size_t len, cap, line_off;
    size_t max;                 /* an open segment larger than this is an error */
    bool fields;                /* the open segment has a field line (an event, not only comments) */
    bool first_line;            /* the next line is the stream's first: a leading BOM is dropped */
} sg_seg_t;

/* max: the largest event kept whole (larger: sg_seg_feed fails). */
void sg_seg_init(sg_seg_t *s, size_t max);
/* A new stream (a reconnect): the open event is discarded; the last event id carries over. */
void sg_seg_restart(sg_seg_t *s, const char *last_id, size_t n);
void sg_seg_free(sg_seg_t *s);
/*
 * Feeds stream bytes. For each complete segment that holds a field line (an event, or lines that set id or retry),
 * calls emit(ctx, ev); segments of comments or blank lines only are dropped, and so is a leading BOM. emit may not
 * call back into s. Returns 0, -EMSGSIZE (an event larger than max) or -ENOMEM; the segment is then discarded.
 */
int sg_seg_feed(sg_seg_t *s, const char *p, size_t n, void (*emit)(void *ctx, const sg_seg_event_t *ev), void *ctx);
/* The backend's last retry: in ms, or -1. */
static inline int64_t sg_seg_retry_ms(const sg_seg_t *s)
{
    return s->parser.retry_ms;
}

#endif
