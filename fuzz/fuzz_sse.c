/* fuzz_sse.c: libFuzzer harness for the SSE parser: split-feed and byte-feed vs whole-feed vs a line model. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/sse.h"

/*
 * Input: byte 0 picks a split position, the rest is the stream. The stream is fed whole, split in two
 * at that position, and one byte at a time; every way must give the same observations, and they must
 * equal those of a deliberately naive whole-input model of the WHATWG rules below. Any difference aborts.
 * Each chunk is copied into its own exact-size allocation so that ASan catches a read past its end.
 */

typedef struct obs {
    uint64_t events;
    uint64_t returned;
    uint64_t lines;
    const char *last_id; /* points into the parser or the input; compared by content */
    size_t last_id_len;
    bool id_truncated;
    int64_t retry_ms;
    bool at_boundary;
    long long last_boundary; /* absolute offset of the last reported boundary, -1 if none */
} obs_t;

static void check(bool ok, const char *how, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_sse: %s: mismatch in %s\n", how, what);
        abort();
    }
}

static void obs_equal(const obs_t *a, const obs_t *b, const char *how)
{
    check(a->events == b->events, how, "events");
    check(a->returned == b->returned, how, "returned events");
    check(a->lines == b->lines, how, "lines");
    check(a->last_id_len == b->last_id_len, how, "last_id_len");
    check(a->last_id_len == 0 || memcmp(a->last_id, b->last_id, a->last_id_len) == 0, how, "last_id");
    check(a->id_truncated == b->id_truncated, how, "id_truncated");
    check(a->retry_ms == b->retry_ms, how, "retry_ms");
    check(a->at_boundary == b->at_boundary, how, "at_boundary");
    check(a->last_boundary == b->last_boundary, how, "last boundary");
}

static void feed(sg_sse_t *s, const uint8_t *p, size_t n, size_t at, obs_t *o)
{
    char *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    if (n)
        memcpy(copy, p, n);
    ssize_t b = -2;
    o->returned += sg_sse_feed(s, copy, n, &b);
    free(copy);
    check(b >= -1 && b <= (ssize_t)n, "feed", "boundary_off range");
    check(!sg_sse_at_boundary(s) || b == (ssize_t)n, "feed", "at_boundary but boundary_off short of the end");
    if (b >= 0)
        o->last_boundary = (long long)(at + (size_t)b);
}

static void take(const sg_sse_t *s, obs_t *o)
{
    o->events = s->events;
    o->lines = s->lines;
    o->last_id = s->last_id;
    o->last_id_len = s->last_id_len;
    o->id_truncated = s->id_truncated;
    o->retry_ms = s->retry_ms;
    o->at_boundary = sg_sse_at_boundary(s);
    check(s->last_id_len <= SG_SSE_MAX_ID, "state", "last_id_len bound");
}

/* The naive model: whole input, split into lines, each line interpreted as the spec words it. */
static void model(const uint8_t *p, size_t n, obs_t *o)
{
    static const uint8_t bom[3] = {0xEF, 0xBB, 0xBF};
    const uint8_t *idbuf = NULL; /* the last event ID buffer, untruncated */
    size_t idbuf_len = 0;
    bool event_open = false, has_data = false;
    size_t i = 0;

    memset(o, 0, sizeof(*o));
    o->retry_ms = -1;
    o->last_id = "";
    o->last_boundary = 0;
    if (n >= 3 && memcmp(p, bom, 3) == 0) {
        i = 3;
        o->last_boundary = 3;
    }
    bool bom_undecided = n > 0 && n < 3 && memcmp(p, bom, n) == 0;
    if (bom_undecided)
        i = n; /* nothing to parse yet */

    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '\r' && p[j] != '\n')
            j++;
        if (j == n) {
            event_open = true; /* a partial line: not a boundary (comment or field alike) */
            break;
        }
        const uint8_t *line = p + i;
        size_t len = j - i;
        i = j + ((p[j] == '\r' && j + 1 < n && p[j + 1] == '\n') ? 2 : 1);
        o->lines++;
        if (len == 0) {
            o->last_id = (const char *)(idbuf ? idbuf : (const uint8_t *)"");
            o->last_id_len = idbuf_len > SG_SSE_MAX_ID ? SG_SSE_MAX_ID : idbuf_len;
            o->id_truncated = idbuf_len > SG_SSE_MAX_ID;
            if (has_data)
                o->events++;
            has_data = event_open = false;
        } else if (line[0] != ':') {
            event_open = true;
            const uint8_t *colon = memchr(line, ':', len);
            size_t nlen = colon ? (size_t)(colon - line) : len;
            const uint8_t *val = colon ? colon + 1 : line + len;
            size_t vlen = (size_t)(line + len - val);
            if (vlen && val[0] == ' ') {
                val++;
                vlen--;
            }
            if (nlen == 4 && memcmp(line, "data", 4) == 0) {
                has_data = true;
            } else if (nlen == 2 && memcmp(line, "id", 2) == 0) {
                if (!memchr(val, 0, vlen)) {
                    idbuf = val;
                    idbuf_len = vlen;
                }
            } else if (nlen == 5 && memcmp(line, "retry", 5) == 0) {
                bool digits = vlen > 0;
                int64_t v = 0;
                for (size_t k = 0; k < vlen && digits; k++) {
                    if (val[k] < '0' || val[k] > '9')
                        digits = false;
                    else if (v > (INT64_MAX - (val[k] - '0')) / 10)
                        v = INT64_MAX;
                    else
                        v = v * 10 + (val[k] - '0');
                }
                if (digits)
                    o->retry_ms = v;
            }
        }
        if (!event_open)
            o->last_boundary = (long long)i;
    }
    o->returned = o->events;
    o->at_boundary = !event_open && !bom_undecided;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    size_t cut = n ? (size_t)data[0] * n / 255 : 0;
    sg_sse_t s1, s2, s3;
    obs_t whole = {0}, split = {0}, bytes = {0}, ref;

    sg_sse_init(&s1);
    whole.last_boundary = -1;
    feed(&s1, p, n, 0, &whole);
    take(&s1, &whole);

    sg_sse_init(&s2);
    split.last_boundary = -1;
    feed(&s2, p, cut, 0, &split);
    feed(&s2, p + cut, n - cut, cut, &split);
    take(&s2, &split);
    obs_equal(&split, &whole, "split");

    sg_sse_init(&s3);
    bytes.last_boundary = -1;
    if (n == 0)
        feed(&s3, p, 0, 0, &bytes);
    for (size_t i = 0; i < n; i++)
        feed(&s3, p + i, 1, i, &bytes);
    take(&s3, &bytes);
    obs_equal(&bytes, &whole, "bytes");

    model(p, n, &ref);
    obs_equal(&ref, &whole, "model");
    return 0;
}
