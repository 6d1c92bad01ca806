/* sse.c: incremental text/event-stream parser (event boundaries, last event id, retry) and writers. Pure. */
#include "codec/sse.h"

#include <assert.h>

/*
 * The parser follows WHATWG HTML "Interpreting an event stream" on bytes rather than decoded text: UTF-8
 * decoding with replacement maps every ASCII byte to itself, so line ends, ':' and ' ' fall where the
 * client sees them, and a NUL byte is exactly a U+0000 in the decoded id. Only what the gateway needs is
 * kept: dispatch count, the id buffer and the last event id string, the reconnection time, boundaries.
 * Data and event values are skipped with memchr, never copied.
 */

enum {
    ST_LINE = 0,    /* at the start of a line */
    ST_NAME,        /* in a field name (bytes go to field[]) */
    ST_SKIP,        /* skip to the end of the line: comments, data/event values, unknown fields */
    ST_ID_START,    /* just after "id:": one space may be dropped */
    ST_ID,          /* in an id value */
    ST_RETRY_START, /* just after "retry:": one space may be dropped */
    ST_RETRY,       /* in a retry value, all digits so far */
};

#define NAME_MAX_INTERESTING 5 /* "retry"; a longer name is an unknown field */

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

void sg_sse_init(sg_sse_t *s)
{
    memset(s, 0, sizeof(*s));
    s->state = ST_LINE;
    s->retry_ms = -1;
}

void sg_sse_set_last_id(sg_sse_t *s, const char *id, size_t n)
{
    size_t k = SG_MIN(n, (size_t)SG_SSE_MAX_ID);

    if (k)
        memcpy(s->pending_id, id, k);
    s->pending_id_len = k;
    s->pending_id_truncated = n > k;
    s->pending_id_set = false;
    if (k)
        memcpy(s->last_id, id, k);
    s->last_id_len = k;
    s->id_truncated = n > k;
}

bool sg_sse_at_boundary(const sg_sse_t *s)
{
    return s->state == ST_LINE && !s->event_open && (s->bom_done || s->bom_seen == 0);
}

bool sg_sse_insert_ok(const sg_sse_t *s)
{
    return s->bom_done && sg_sse_at_boundary(s);
}

/*
 * Position of the next CR or LF at or after i, or n. nl1/cr1 cache one past the next LF/CR found by an
 * earlier call of the same feed (0 = unknown): each memchr then scans fresh bytes only, so a chunk of
 * CR-only lines does not rescan its tail for an LF at every line.
 */
static inline size_t find_eol(const char *p, size_t i, size_t n, size_t *nl1, size_t *cr1)
{
    if (*nl1 <= i) {
        const char *q = memchr(p + i, '\n', n - i);
        *nl1 = q ? (size_t)(q - p) + 1 : n + 1;
    }
    if (*cr1 <= i) {
        const char *q = memchr(p + i, '\r', n - i);
        *cr1 = q ? (size_t)(q - p) + 1 : n + 1;
    }
    return SG_MIN(*nl1, *cr1) - 1;
}

/* A field name ended (at ':' or at the end of the line): choose how its value is read. */
static inline void field_begin(sg_sse_t *s)
{
    const char *f = s->field;

    if (s->field_len == 4 && memcmp(f, "data", 4) == 0) {
        s->has_data = true;
        s->state = ST_SKIP;
    } else if (s->field_len == 2 && f[0] == 'i' && f[1] == 'd') {
        s->line_id_len = 0;
        s->line_id_truncated = false;
        s->pending_id_nul = false;
        s->state = ST_ID_START;
    } else if (s->field_len == 5 && memcmp(f, "retry", 5) == 0) {
        s->pending_retry = 0;
        s->retry_digits = false;
        s->state = ST_RETRY_START;
    } else {
        /* "event" and unknown fields change nothing we track, but they do open an event */
        s->state = ST_SKIP;
    }
}

/* A line ended with byte c; the next byte of the stream is at offset `after` of the chunk. */
static inline void line_end(sg_sse_t *s, char c, size_t after, ssize_t *boff)
{
    switch (s->state) {
    case ST_ID_START:
    case ST_ID:
        /* the spec sets the buffer only for an id without NUL; an empty id resets it */
        if (!s->pending_id_nul) {
            if (s->line_id_len)
                memcpy(s->pending_id, s->line_id, s->line_id_len);
            s->pending_id_len = s->line_id_len;
            s->pending_id_truncated = s->line_id_truncated;
            s->pending_id_set = true;
        }
        break;
    case ST_RETRY:
        if (s->retry_digits)
            s->retry_ms = s->pending_retry;
        break;
    default: /* ST_RETRY_START: an empty retry value is ignored */
        break;
    }
    s->state = ST_LINE;
    s->pending_cr = c == '\r';
    s->lines++;
    if (!s->event_open)
        *boff = (ssize_t)after;
}

/* A blank line: the spec's "dispatch the event". */
static inline void dispatch(sg_sse_t *s)
{
    /* the last event id string takes the buffer at every blank line, even when no event fires */
    if (s->pending_id_set) {
        if (s->pending_id_len)
            memcpy(s->last_id, s->pending_id, s->pending_id_len);
        s->last_id_len = s->pending_id_len;
        s->id_truncated = s->pending_id_truncated;
        s->pending_id_set = false;
    }
    if (s->has_data)
        s->events++;
    s->has_data = false;
    s->event_open = false;
    s->lines++;
}

static void append_id(sg_sse_t *s, const char *p, size_t n)
{
    size_t room = SG_SSE_MAX_ID - s->line_id_len;
    size_t k = SG_MIN(n, room);

    if (k) {
        memcpy(s->line_id + s->line_id_len, p, k);
        s->line_id_len += k;
    }
    if (k < n)
        s->line_id_truncated = true;
    /* NUL anywhere in the value, kept or not, voids the whole line */
    if (!s->pending_id_nul && memchr(p, '\0', n))
        s->pending_id_nul = true;
}

/* The line parser proper, on bytes past the BOM decision. */
static void run(sg_sse_t *s, const char *p, size_t n, ssize_t *boff)
{
    size_t i = 0;
    size_t nl1 = 0, cr1 = 0;

    while (i < n) {
        switch (s->state) {
        case ST_LINE: {
            char c = p[i];
            if (c == '\n' && s->pending_cr) {
                /* the LF of a CRLF whose CR ended the previous line */
                s->pending_cr = false;
                i++;
                if (!s->event_open)
                    *boff = (ssize_t)i;
                break;
            }
            s->pending_cr = false;
            if (c == '\r' || c == '\n') {
                dispatch(s);
                s->pending_cr = c == '\r';
                i++;
                *boff = (ssize_t)i;
                break;
            }
            if (c == ':') {
                s->state = ST_SKIP; /* a comment does not open an event */
                i++;
                break;
            }
            s->event_open = true;
            s->field_len = 0;
            s->field_overflow = false;
            s->state = ST_NAME;
            break;
        }
        case ST_NAME:
            for (;;) {
                if (i == n)
                    return;
                char c = p[i];
                if (c == ':') {
                    i++;
                    field_begin(s);
                    break;
                }
                if (c == '\r' || c == '\n') {
                    /* a line without ':' is the field with an empty value */
                    field_begin(s);
                    line_end(s, c, ++i, boff);
                    break;
                }
                if (s->field_len == NAME_MAX_INTERESTING) {
                    s->field_overflow = true;
                    s->state = ST_SKIP;
                    break;
                }
                s->field[s->field_len++] = c;
                i++;
            }
            break;
        case ST_SKIP: {
            size_t e = find_eol(p, i, n, &nl1, &cr1);
            if (e == n)
                return;
            i = e + 1;
            line_end(s, p[e], i, boff);
            break;
        }
        case ST_ID_START:
            s->state = ST_ID;
            if (p[i] == ' ')
                i++;
            break;
        case ST_ID: {
            size_t e = find_eol(p, i, n, &nl1, &cr1);
            append_id(s, p + i, e - i);
            if (e == n)
                return;
            i = e + 1;
            line_end(s, p[e], i, boff);
            break;
        }
        case ST_RETRY_START:
            s->state = ST_RETRY;
            if (p[i] == ' ')
                i++;
            break;
        case ST_RETRY:
            for (;;) {
                if (i == n)
                    return;
                unsigned char c = (unsigned char)p[i];
                if (c >= '0' && c <= '9') {
                    int64_t d = c - '0';
                    /* the spec's integer is unbounded: saturate rather than wrap */
                    if (s->pending_retry > (INT64_MAX - d) / 10)
                        s->pending_retry = INT64_MAX;
                    else
                        s->pending_retry = s->pending_retry * 10 + d;
                    s->retry_digits = true;
                    i++;
                    continue;
                }
                if (c == '\r' || c == '\n') {
                    line_end(s, (char)c, ++i, boff);
                    break;
                }
                s->state = ST_SKIP; /* not only digits: the field is ignored */
                break;
            }
            break;
        default:
            assert(!"sse: bad state");
            return;
        }
    }
}

size_t sg_sse_feed(sg_sse_t *s, const char *p, size_t n, ssize_t *boundary_off)
{
    uint64_t before = s->events;
    ssize_t boff = sg_sse_at_boundary(s) ? 0 : -1;
    size_t i = 0;

    /* One leading BOM is stripped, even split across feeds; anything else ends the check. */
    while (!s->bom_done && i < n) {
        if ((unsigned char)p[i] == bom[s->bom_seen]) {
            i++;
            if (++s->bom_seen == sizeof(bom)) {
                s->bom_done = true;
                boff = (ssize_t)i;
            }
            continue;
        }
        s->bom_done = true;
        if (s->bom_seen) {
            /* a partial BOM is data: its bytes start the first line */
            ssize_t ignored = -1;
            run(s, (const char *)bom, s->bom_seen, &ignored);
        }
    }
    if (i < n) {
        ssize_t b = -1;
        run(s, p + i, n - i, &b);
        if (b >= 0)
            boff = (ssize_t)i + b;
    }
    if (boundary_off)
        *boundary_off = boff;
    return (size_t)(s->events - before);
}

size_t sg_sse_write_retry(char *out, size_t cap, uint32_t ms)
{
    static const char head[] = "retry: ";
    char digits[10];
    size_t nd = 0;

    do {
        digits[nd++] = (char)('0' + ms % 10);
        ms /= 10;
    } while (ms);
    size_t len = sizeof(head) - 1 + nd + 2;
    if (cap < len)
        return 0;
    memcpy(out, head, sizeof(head) - 1);
    char *o = out + sizeof(head) - 1;
    while (nd)
        *o++ = digits[--nd];
    *o++ = '\n';
    *o++ = '\n';
    return len;
}

size_t sg_sse_write_heartbeat(char *out, size_t cap)
{
    if (cap < 2)
        return 0;
    out[0] = ':';
    out[1] = '\n';
    return 2;
}
