/* sse.h: incremental text/event-stream parser (WHATWG HTML "Server-sent events" rules) and writer. Pure. */
#ifndef SG_SSE_H
#define SG_SSE_H

#include "sg.h"

#define SG_SSE_MAX_ID 256 /* a longer id is tracked truncated, flagged by id_truncated */

typedef struct sg_sse {
    int state;            /* line-parser state */
    bool bom_done;        /* a leading BOM has been considered */
    uint8_t bom_seen;     /* bytes of a possible leading BOM seen so far */
    bool pending_cr;      /* last byte was CR: a following LF belongs to it */
    bool event_open;      /* at least one field line since the last dispatch/boundary */
    bool has_data;        /* the open event has a data field (it would dispatch) */
    /* current line's field name, compared as it streams */
    char field[8];
    size_t field_len;
    bool field_overflow;
    /* id being accumulated for the open event */
    char pending_id[SG_SSE_MAX_ID];
    size_t pending_id_len;
    bool pending_id_set;
    bool pending_id_nul;
    /* last event id (as the client would hold it after the last dispatched event) */
    char last_id[SG_SSE_MAX_ID];
    size_t last_id_len;
    bool id_truncated;
    /* retry value of the last valid retry field, or -1 */
    int64_t retry_ms;
    int64_t pending_retry;
    uint64_t events;      /* events dispatched (blank line after a data field) */
    uint64_t lines;
} sg_sse_t;

void sg_sse_init(sg_sse_t *s);

/*
 * Feeds bytes of the stream. Returns the number of events dispatched within them. If boundary_off
 * is not NULL it receives the offset just past the last event boundary within p[0..n) (the end of a
 * blank line that closed an event or ended a run of lines), or -1 if none.
 */
size_t sg_sse_feed(sg_sse_t *s, const char *p, size_t n, ssize_t *boundary_off);

/* True when every byte fed so far ends at an event boundary: nothing of a next event has begun. */
bool sg_sse_at_boundary(const sg_sse_t *s);

/* Writes "retry: MS\n\n" into out (cap >= 32); returns its length. */
size_t sg_sse_write_retry(char *out, size_t cap, uint32_t ms);

/* Writes a heartbeat comment ":\n" into out (cap >= 2); returns its length. */
size_t sg_sse_write_heartbeat(char *out, size_t cap);

#endif
