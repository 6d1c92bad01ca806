/* segment.c: an upstream event stream split into complete events (segment.h). */
#include <stdlib.h>
#include <string.h>

#include "fanout/segment.h"

void sg_seg_init(sg_seg_t *s, size_t max)
{
    memset(s, 0, sizeof(*s));
    sg_sse_init(&s->parser);
    s->max = max;
    s->first_line = true;
}

void sg_seg_restart(sg_seg_t *s, const char *last_id, size_t n)
{
    int64_t retry = s->parser.retry_ms;
    sg_sse_init(&s->parser);
    sg_sse_set_last_id(&s->parser, last_id, n);
    /* The backend's retry: holds across reconnects, as it does for an EventSource. */
    s->parser.retry_ms = retry;
    s->len = 0;
    s->line_off = 0;
    s->fields = false;
    s->first_line = true;
}

void sg_seg_free(sg_seg_t *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

static int append(sg_seg_t *s, const char *p, size_t n)
{
    if (s->len + n > s->max)
        return -EMSGSIZE;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap < s->len + n)
            cap *= 2;
        char *q = realloc(s->buf, cap);
        if (q == NULL)
            return -ENOMEM;
        s->buf = q;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* A line of the open segment is complete: drop a leading BOM, note a field line. */
static void line_done(sg_seg_t *s)
{
    char *l = s->buf + s->line_off;
    size_t n = s->len - s->line_off;
    if (s->first_line) {
        s->first_line = false;
        if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0) {
            memmove(l, l + 3, n - 3);
            s->len -= 3;
            n -= 3;
        }
    }
    if (n >= 3 && memcmp(l, "\xEF\xBB\xBF", 3) == 0) {
        /* A BOM anywhere else starts a field name no client knows, so every client ignores the line; but as the
         * first bytes a late subscriber gets it would be taken for a leading BOM and dropped, turning the line
         * into a field. It becomes a comment instead, keeping its line end (removing the line could join a CR
         * before it with an LF after it into one line end). */
        l[0] = ':';
        memmove(l + 1, l + 3, n - 3);
        s->len -= 2;
        n -= 2;
    }
    if (n > 0 && l[0] != ':' && l[0] != '\r' && l[0] != '\n')
        s->fields = true;
    s->line_off = s->len;
}

/* Does the segment hold an id line ("id" alone or "id:..." at a line start)? */
static bool has_id_line(const char *p, size_t n)
{
    for (size_t i = 0; i + 2 <= n; i++) {
        if ((i == 0 || p[i - 1] == '\n' || p[i - 1] == '\r') && p[i] == 'i' && p[i + 1] == 'd' &&
            (i + 2 == n || p[i + 2] == ':' || p[i + 2] == '\n' || p[i + 2] == '\r'))
            return true;
    }
    return false;
}

static void segment_done(sg_seg_t *s, void (*emit)(void *ctx, const sg_seg_event_t *ev), void *ctx)
{
    if (s->fields && s->len > 0) {
        const sg_sse_t *ps = &s->parser;
        sg_seg_event_t ev = {s->buf, s->len, ps->last_id, ps->last_id_len, has_id_line(s->buf, s->len),
                             !ps->id_truncated};
        emit(ctx, &ev);
    }
    s->len = 0;
    s->line_off = 0;
    s->fields = false;
}

int sg_seg_feed(sg_seg_t *s, const char *p, size_t n, void (*emit)(void *ctx, const sg_seg_event_t *ev), void *ctx)
{
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && p[end] != '\n' && p[end] != '\r')
            end++;
        bool eol = end < n;
        if (eol) {
            end++;
            if (p[end - 1] == '\r' && end < n && p[end] == '\n')
                end++;
        }
        int rc = append(s, p + i, end - i);
        if (rc < 0) {
            s->len = 0;
            s->line_off = 0;
            s->fields = false;
            return rc;
        }
        sg_sse_feed(&s->parser, p + i, end - i, NULL);
        i = end;
        if (eol) {
            line_done(s);
            if (sg_sse_at_boundary(&s->parser))
                segment_done(s, emit, ctx);
        }
    }
    return 0;
}
