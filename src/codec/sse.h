/* sse.h: incremental text/event-stream parser (WHATWG HTML "Server-sent events" rules) and writer. Pure. */
#ifndef SG_SSE_H
#define SG_SSE_H

#include "core/sg.h"

#define SG_SSE_MAX_ID 64 /* a longer id is tracked truncated, flagged by id_truncated */

/*
 * The parser state of one stream. Fixed size: nothing is allocated, whatever the input. Read-only for
 * callers are: last_id/last_id_len/id_truncated, retry_ms, events, lines; the rest is private.
 */
typedef struct sg_sse {
    /* Lengths are uint8_t (ids are at most SG_SSE_MAX_ID bytes) and the flags are packed: an idle SSE stream
     * holds one of these, so its size is part of every stream's memory. */
    uint8_t state;        /* line-parser state (private enum in sse.c) */
    uint8_t bom_seen;     /* bytes of a possible leading BOM seen so far */
    uint8_t field_len;
    uint8_t pending_id_len;
    uint8_t line_id_len;
    uint8_t last_id_len;
    bool bom_done;        /* a leading BOM has been considered */
    bool pending_cr;      /* last byte was a CR ending a line: a following LF belongs to it */
    bool event_open;      /* at least one field line since the last blank line: not at a boundary */
    bool has_data;        /* the open event has a data field (its blank line would dispatch it) */
    bool field_overflow;  /* the name is longer than any field we interpret */
    bool pending_id_set;  /* changed since last copied to last_id */
    bool pending_id_nul;  /* the id line being read contains NUL (it will be ignored) */
    bool pending_id_truncated;
    bool line_id_truncated;
    bool id_truncated;    /* last_id is the first SG_SSE_MAX_ID bytes of a longer id */
    bool retry_digits;    /* the retry line being read has at least one digit */
    /* current line's field name, compared once the name ends */
    char field[8];
    /*
     * The spec's "last event ID buffer": set by every id field line (without NUL) when the line ends,
     * never reset by a dispatch; copied to last_id by the next blank line.
     */
    char pending_id[SG_SSE_MAX_ID];
    /* value of the id line being read (it replaces pending_id only if it holds no NUL) */
    char line_id[SG_SSE_MAX_ID];
    /*
     * The event source's "last event ID string" (what the client sends as Last-Event-ID on reconnect):
     * the buffer as it was at the last blank line, whether or not that blank line dispatched an event.
     */
    char last_id[SG_SSE_MAX_ID];
    /* reconnection time set by the last valid retry field (applied when its line ends), or -1 */
    int64_t retry_ms;
    int64_t pending_retry; /* digits of the retry line being read (saturates at INT64_MAX) */
    uint64_t events;      /* events dispatched (blank line after a data field) */
    uint64_t lines;       /* complete lines seen (BOM excluded) */
} sg_sse_t;

void sg_sse_init(sg_sse_t *s);

/*
 * Seeds the last event id (both the spec's buffer and last_id) with the id the client already holds,
 * i.e. the request's Last-Event-ID header: browsers keep it across reconnects, so an event without an id
 * on the new stream still carries it. Longer than SG_SSE_MAX_ID: kept truncated with id_truncated set.
 * Call right after sg_sse_init(), before feeding.
 */
void sg_sse_set_last_id(sg_sse_t *s, const char *id, size_t n);

/*
 * Feeds bytes of the stream. Returns the number of events dispatched within them. If boundary_off
 * is not NULL it receives the largest k in [0, n] such that sg_sse_at_boundary() would have been true
 * right after p[0..k) was fed (the end of a blank line, of a comment line outside an event, of a
 * leading BOM; 0 when the chunk starts at a boundary and none follows), or -1 if there is none.
 * The caller may forward p[0..k) and then close or insert between events.
 */
size_t sg_sse_feed(sg_sse_t *s, const char *p, size_t n, ssize_t *boundary_off);

/*
 * True when every byte fed so far ends at an event boundary: nothing of a next event has begun (at the
 * start of a line, no field line since the last blank line; comment lines do not open an event). The
 * start of the stream is a boundary; a partial leading BOM is not. After a CR ending a blank or comment
 * line this is true although an LF may follow: if the caller inserts bytes there, that LF becomes an
 * extra empty line for the client, which changes nothing (no data buffered, last event id unchanged).
 */
bool sg_sse_at_boundary(const sg_sse_t *s);

/*
 * True when the caller may insert its own lines (heartbeat, retry hint) now: at a boundary, and not
 * before the first upstream byte, since a BOM arriving after inserted bytes would no longer be leading
 * and the client would read it as part of the first field name.
 */
bool sg_sse_insert_ok(const sg_sse_t *s);

/* Writes "retry: MS\n\n" into out (cap >= 32); returns its length, 0 if cap is too small. */
size_t sg_sse_write_retry(char *out, size_t cap, uint32_t ms);

/* Writes a heartbeat comment ":\n" into out (cap >= 2); returns its length, 0 if cap is too small. */
size_t sg_sse_write_heartbeat(char *out, size_t cap);

#endif
