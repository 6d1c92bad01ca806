/* test_sse.c: unit tests of the SSE parser (WHATWG conformance facts, chunking, boundaries) and writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/sse.h"

/* Every chunk is fed from guard.h's placement: a read past its end hits a PROT_NONE page. */
#include "guard.h"

/* What the gateway observes of a stream after some bytes. */
typedef struct obs {
    uint64_t events;     /* s.events */
    uint64_t returned;   /* sum of sg_sse_feed() results */
    uint64_t lines;
    char last_id[SG_SSE_MAX_ID];
    size_t last_id_len;
    bool id_truncated;
    int64_t retry_ms;
    bool at_boundary;
    ssize_t last_boundary; /* absolute offset of the last boundary_off reported, -1 if none */
} obs_t;

static void obs_take(obs_t *o, const sg_sse_t *s)
{
    o->events = s->events;
    o->lines = s->lines;
    memcpy(o->last_id, s->last_id, s->last_id_len);
    o->last_id_len = s->last_id_len;
    o->id_truncated = s->id_truncated;
    o->retry_ms = s->retry_ms;
    o->at_boundary = sg_sse_at_boundary(s);
}

static void obs_equal(const obs_t *a, const obs_t *b)
{
    assert_int_equal(a->events, b->events);
    assert_int_equal(a->returned, b->returned);
    assert_int_equal(a->lines, b->lines);
    assert_int_equal(a->last_id_len, b->last_id_len);
    assert_memory_equal(a->last_id, b->last_id, a->last_id_len);
    assert_int_equal(a->id_truncated, b->id_truncated);
    assert_int_equal(a->retry_ms, b->retry_ms);
    assert_int_equal(a->at_boundary, b->at_boundary);
    assert_int_equal(a->last_boundary, b->last_boundary);
}

/* Feeds p[0..n) cut at cuts[] (ascending), each chunk against the guard page. */
static void feed_cuts(sg_sse_t *s, const char *p, size_t n, const size_t *cuts, size_t ncuts, obs_t *o)
{
    sg_guard_t g;
    size_t at = 0;

    guard_init(&g, n);
    o->returned = 0;
    o->last_boundary = -1;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        ssize_t b = -2;
        o->returned += sg_sse_feed(s, guard_put(&g, p + at, end - at), end - at, &b);
        assert_true(b >= -1 && b <= (ssize_t)(end - at));
        if (b >= 0)
            o->last_boundary = (ssize_t)at + b;
        at = end;
    }
    guard_fini(&g);
    obs_take(o, s);
}

static void run_whole(const char *p, size_t n, obs_t *o)
{
    sg_sse_t s;
    sg_sse_init(&s);
    feed_cuts(&s, p, n, NULL, 0, o);
}

/*
 * Feeds the input whole, byte by byte, and cut at every point, and requires identical observations.
 * Also checks boundary_off against sg_sse_at_boundary() after every prefix. Returns the whole-feed result.
 */
static void run_all(const char *p, size_t n, obs_t *whole)
{
    obs_t o;
    sg_sse_t s;
    bool *bound = calloc(n + 1, sizeof(*bound));
    assert_non_null(bound);

    run_whole(p, n, whole);

    /* byte by byte, recording at_boundary after each prefix */
    sg_guard_t g;
    guard_init(&g, 1);
    sg_sse_init(&s);
    bound[0] = sg_sse_at_boundary(&s);
    o.returned = 0;
    o.last_boundary = bound[0] ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        ssize_t b = -2;
        o.returned += sg_sse_feed(&s, guard_put(&g, p + i, 1), 1, &b);
        bound[i + 1] = sg_sse_at_boundary(&s);
        /* a one-byte chunk reports 1 iff after it we are at a boundary, else 0 iff we were before it */
        assert_int_equal(b, bound[i + 1] ? 1 : (bound[i] ? 0 : -1));
        if (b >= 0)
            o.last_boundary = (ssize_t)i + b;
    }
    guard_fini(&g);
    obs_take(&o, &s);
    obs_equal(&o, whole);

    ssize_t last = -1;
    for (size_t k = 0; k <= n; k++)
        if (bound[k])
            last = (ssize_t)k;
    assert_int_equal(whole->last_boundary, last);
    assert_int_equal(whole->at_boundary, bound[n]);

    /* every single cut; the first chunk's boundary_off is checked on its own too */
    for (size_t cut = 0; cut <= n; cut++) {
        sg_sse_init(&s);
        ssize_t b1 = -2;
        guard_init(&g, n);
        sg_sse_feed(&s, guard_put(&g, p, cut), cut, &b1);
        guard_fini(&g);
        ssize_t want = -1;
        for (size_t k = 0; k <= cut; k++)
            if (bound[k])
                want = (ssize_t)k;
        assert_int_equal(b1, want);
        sg_sse_init(&s);
        feed_cuts(&s, p, n, &cut, 1, &o);
        obs_equal(&o, whole);
    }
    /* every pair of cuts, for short inputs (CR|LF and BOM splits over three chunks) */
    if (n <= 64) {
        for (size_t c1 = 0; c1 <= n; c1++) {
            for (size_t c2 = c1; c2 <= n; c2++) {
                size_t cuts[2] = {c1, c2};
                sg_sse_init(&s);
                feed_cuts(&s, p, n, cuts, 2, &o);
                obs_equal(&o, whole);
            }
        }
    }
    free(bound);
}

#define LIT(s) (s), (sizeof(s) - 1)

static void expect_id(const obs_t *o, const char *id, size_t n)
{
    assert_int_equal(o->last_id_len, n);
    assert_memory_equal(o->last_id, id, n);
}

/* ---- conformance facts (eventsource-cases.jsonl, format cases), restated ---- */

/* ES-BOM-1: a leading BOM is stripped once; a later BOM is data (its line's field name is unknown). */
static void es_bom_1(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("\xEF\xBB\xBF" "data:1\n\n\xEF\xBB\xBF" "data:2\n\ndata:3\n\n\n"), &o);
    assert_int_equal(o.events, 2);
    expect_id(&o, "", 0);
    assert_true(o.at_boundary);
}

/* ES-FIELD-PARSING: NUL in data, case-sensitive names, CR endings; one event at the final blank line. */
static void es_field_parsing(void **st)
{
    (void)st;
    obs_t o;
    static const char body[] = "data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\r"
                               "data:\r\n data:32\ndata:4\n\n";
    run_all(body, sizeof(body) - 1, &o);
    assert_int_equal(o.events, 1);
    assert_int_equal(o.lines, 13);
    assert_int_equal(o.retry_ms, -1);
    assert_true(o.at_boundary);
}

/* ES-LEADING-SPACE */
static void es_leading_space(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("data:\ttest\rdata: \ndata:test\n\n\n"), &o);
    assert_int_equal(o.events, 1);
    assert_int_equal(o.lines, 5);
    assert_true(o.at_boundary);
}

/* ES-UTF8: bytes, not decoded text; U+2026 passes as its UTF-8 bytes. */
static void es_utf8(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("data:ok\xE2\x80\xA6\n\n\n"), &o);
    assert_int_equal(o.events, 1);
}

/* ES-RETRY: 02000 is decimal 2000. */
static void es_retry(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("retry:02000\ndata:x\n\n\n"), &o);
    assert_int_equal(o.retry_ms, 2000);
    assert_int_equal(o.events, 1);
}

/* ES-RETRY-BOGUS: a non-digit value is ignored, the earlier one stays. */
static void es_retry_bogus(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("retry:2000\nretry:1000x\ndata:x\n\n\n"), &o);
    assert_int_equal(o.retry_ms, 2000);
    assert_int_equal(o.events, 1);
}

/* ES-RETRY-EMPTY */
static void es_retry_empty(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("retry\ndata:test\n\n\n"), &o);
    assert_int_equal(o.retry_ms, -1);
    assert_int_equal(o.events, 1);
}

/* ES-ID-ECHO: a non-ASCII id, then streams without id keep it (the client reconnects with it). */
static void es_id_echo(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("id: \xE2\x80\xA6\nretry: 200\ndata: hello\n\n"), &o);
    expect_id(&o, "\xE2\x80\xA6", 3);
    assert_int_equal(o.retry_ms, 200);
    assert_int_equal(o.events, 1);

    /* connections 2 and 3: the gateway seeds the parser with the request's Last-Event-ID */
    sg_sse_t s;
    sg_sse_init(&s);
    sg_sse_set_last_id(&s, LIT("\xE2\x80\xA6"));
    feed_cuts(&s, LIT("data: \xE2\x80\xA6\n\n"), NULL, 0, &o);
    assert_int_equal(o.events, 1);
    expect_id(&o, "\xE2\x80\xA6", 3);
}

/* ES-ID-NULL: an id containing NUL is ignored. */
static void es_id_null(void **st)
{
    (void)st;
    obs_t o;
    static const char body[] = "id: \0\0\nretry: 200\ndata: hello\n\n";
    run_all(body, sizeof(body) - 1, &o);
    expect_id(&o, "", 0);
    assert_int_equal(o.retry_ms, 200);
    assert_int_equal(o.events, 1);
}

/* ES-ID-RESETS: an empty id resets the last event id; it then persists as empty. */
static void es_id_resets(void **st)
{
    (void)st;
    static const char body[] = "id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n";
    obs_t o;
    run_all(LIT("id: 1\ndata: 1\n\n"), &o);
    expect_id(&o, "1", 1);
    run_all(LIT("id: 1\ndata: 1\n\nid:\ndata:2\n"), &o);
    expect_id(&o, "1", 1); /* the blank line has not come yet */
    run_all(body, sizeof(body) - 1, &o);
    expect_id(&o, "", 0);
    assert_int_equal(o.events, 3);
}

/* format-field-id-3 persist and "id without colon" reset. */
static void es_id_persists(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("id: 1\ndata: 1\n\ndata: 2\n\n"), &o);
    expect_id(&o, "1", 1);
    assert_int_equal(o.events, 2);
    run_all(LIT("id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\ndata:4\n\n"), &o);
    expect_id(&o, "2", 1);
    assert_int_equal(o.events, 4);
    run_all(LIT("id: 1\ndata: 1\n\nid\ndata:2\n\n"), &o);
    expect_id(&o, "", 0);
}

/* ES-STREAM-CHUNKS, fed in the origin's own chunks, with at_boundary after each. */
static void es_stream_chunks(void **st)
{
    (void)st;
    static const char *const chunks[] = {"data:msg", "\n", "data: msg", "\n\n", ":", "\n", "falsefield:msg", "\n\n",
                                         "falsefield:msg", "\n", "Data:data", "\n\n", "data", "\n\n", "data:end",
                                         "\n\n"};
    static const bool bound_after[] = {false, false, false, true, false, true, false, true,
                                       false, false, false, true,  false, true, false, true};
    static const int events_after[] = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3};
    char all[256];
    size_t n = 0;
    sg_sse_t s;
    sg_sse_init(&s);
    for (size_t i = 0; i < SG_ARRAY_LEN(chunks); i++) {
        size_t len = strlen(chunks[i]);
        obs_t o;
        feed_cuts(&s, chunks[i], len, NULL, 0, &o);
        assert_int_equal(o.at_boundary, bound_after[i]);
        assert_int_equal(o.events, events_after[i]);
        memcpy(all + n, chunks[i], len);
        n += len;
    }
    obs_t o;
    run_all(all, n, &o);
    assert_int_equal(o.events, 3);
}

/* ES-X-SPLIT-CRLF: CR and LF of one CRLF in different chunks are one line end. */
static void es_split_crlf(void **st)
{
    (void)st;
    static const char *const chunks[] = {"data:a\r", "\ndata:b\r", "\n\r", "\n"};
    static const bool bound_after[] = {false, false, true, true};
    static const ssize_t boff[] = {0, -1, 2, 1};
    sg_sse_t s;
    sg_sse_init(&s);
    for (size_t i = 0; i < SG_ARRAY_LEN(chunks); i++) {
        ssize_t b;
        size_t ev = sg_sse_feed(&s, chunks[i], strlen(chunks[i]), &b);
        assert_int_equal(ev, i == 2 ? 1 : 0);
        assert_int_equal(b, boff[i]);
        assert_int_equal(sg_sse_at_boundary(&s), bound_after[i]);
    }
    assert_int_equal(s.events, 1);
    assert_int_equal(s.lines, 3); /* "data:a", "data:b", blank; the LFs after CRs are not lines */
    obs_t o;
    run_all(LIT("data:a\r\ndata:b\r\n\r\n"), &o);
    assert_int_equal(o.events, 1);
}

/* ES-RECONNECT-200 first connection: retry applies at its line end; the stream ends mid-event. */
static void es_reconnect_retry_only(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("retry: 2\n"), &o);
    assert_int_equal(o.retry_ms, 2);
    assert_int_equal(o.events, 0);
    assert_false(o.at_boundary);
}

/* ES-ONOPEN / ES-REDIRECT-* / ES-CORS-* / ES-MIME-TRAILING-SEMICOLON body. */
static void es_simple_body(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("data: data\n\n\n"), &o);
    assert_int_equal(o.events, 1);
    assert_int_equal(o.last_boundary, 13);
    assert_true(o.at_boundary);
}

/* Incomplete final event is not dispatched. */
static void incomplete_final_event(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("data:1\n\ndata:2"), &o);
    assert_int_equal(o.events, 1);
    assert_false(o.at_boundary);
    assert_int_equal(o.last_boundary, 8);
    run_all(LIT("data:1\n\ndata:2\n"), &o);
    assert_int_equal(o.events, 1);
    assert_false(o.at_boundary);
    run_all(LIT("id: 9\ndata:1\n"), &o);
    expect_id(&o, "", 0); /* the id is in the buffer, but no blank line copied it */
}

/* ---- more parsing facts ---- */

static void bom_variants(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("\xEF\xBB\xBF\xEF\xBB\xBF" "data:1\n\n"), &o);
    assert_int_equal(o.events, 0); /* the second BOM makes the name unknown */
    run_all(LIT("\xEF\xBB" "data:1\n\n"), &o);
    assert_int_equal(o.events, 0);
    run_all(LIT("\xEF" "data:1\n\ndata:2\n\n"), &o);
    assert_int_equal(o.events, 1);
    run_all(LIT("\xEF\n\n"), &o);
    assert_int_equal(o.events, 0);
    assert_int_equal(o.lines, 2);
    run_all(LIT("\xEF\xBB\xBF"), &o);
    assert_true(o.at_boundary);
    assert_int_equal(o.last_boundary, 3);
    run_all(LIT("\xEF\xBB"), &o);
    assert_false(o.at_boundary);
    assert_int_equal(o.last_boundary, 0);
    run_all(LIT("\xEF\xBB\xBF:c\n" "data:1\n\n"), &o);
    assert_int_equal(o.events, 1);
    run_all(LIT("\xBB\xBF" "data:1\n\n"), &o);
    assert_int_equal(o.events, 0);
}

static void comments(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT(":comment\n"), &o);
    assert_true(o.at_boundary);
    assert_int_equal(o.events, 0);
    assert_int_equal(o.last_boundary, 9);
    run_all(LIT("data:x\n:c\n\n"), &o);
    assert_int_equal(o.events, 1);
    run_all(LIT(":data:x\n\n"), &o);
    assert_int_equal(o.events, 0);
    run_all(LIT(":x"), &o);
    assert_false(o.at_boundary); /* mid-line */
    run_all(LIT(":x\r"), &o);
    assert_true(o.at_boundary);
    run_all(LIT("data:x\n:c\n"), &o);
    assert_false(o.at_boundary); /* a comment inside an event does not end it */
    assert_int_equal(o.last_boundary, 0);
}

static void field_names(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("Data:x\n\n"), &o);
    assert_int_equal(o.events, 0);
    run_all(LIT("data\n\n"), &o);
    assert_int_equal(o.events, 1); /* data buffer holds "\n": dispatched with empty data */
    run_all(LIT("datax:1\n\n"), &o);
    assert_int_equal(o.events, 0);
    run_all(LIT("dat:1\n\n"), &o);
    assert_int_equal(o.events, 0);
    run_all(LIT("event: foo\n\n"), &o);
    assert_int_equal(o.events, 0);
    assert_true(o.at_boundary);
    run_all(LIT("event: foo\ndata\n\n"), &o);
    assert_int_equal(o.events, 1);
    run_all(LIT("ID: 5\n\n"), &o);
    expect_id(&o, "", 0);
    run_all(LIT("idx: 5\n\n"), &o);
    expect_id(&o, "", 0);
    run_all(LIT("i: 5\n\n"), &o);
    expect_id(&o, "", 0);
    run_all(LIT("retryy: 5\n\n"), &o);
    assert_int_equal(o.retry_ms, -1);
    run_all(LIT("verylongfieldname: 5\nretry:7\n\n"), &o);
    assert_int_equal(o.retry_ms, 7);
    run_all(LIT("unknown\n"), &o);
    assert_false(o.at_boundary); /* an unknown field still opens an event */
}

static void line_endings(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("data:a\rdata:b\r\r"), &o);
    assert_int_equal(o.events, 1);
    run_all(LIT("data:a\r\n\r\ndata:b\r\n\r\n"), &o);
    assert_int_equal(o.events, 2);
    run_all(LIT("data:a\n\rdata:b\n\r"), &o);
    assert_int_equal(o.events, 2);
    run_all(LIT("data:a\r\r\n"), &o); /* CR, then CRLF: one blank line */
    assert_int_equal(o.events, 1);
    assert_int_equal(o.lines, 2);
    run_all(LIT("data:a\n\n\n\n"), &o); /* extra blank lines dispatch nothing */
    assert_int_equal(o.events, 1);
    assert_int_equal(o.lines, 4);
    run_all(LIT("\r\n\r\n\n\r"), &o);
    assert_int_equal(o.events, 0);
    assert_int_equal(o.lines, 4);
}

static void ids(void **st)
{
    (void)st;
    obs_t o;
    static const char nul_later[] = "id: a\n\nid: b\0c\n\n";
    run_all(nul_later, sizeof(nul_later) - 1, &o);
    expect_id(&o, "a", 1);
    static const char nul_same_event[] = "id: a\nid: b\0\ndata\n\n";
    run_all(nul_same_event, sizeof(nul_same_event) - 1, &o);
    expect_id(&o, "a", 1);
    run_all(LIT("id: 7\n\n"), &o);
    expect_id(&o, "7", 1); /* a blank line without data still sets the last event id string */
    assert_int_equal(o.events, 0);
    run_all(LIT("id:  x \n\n"), &o);
    expect_id(&o, " x ", 3); /* one leading space removed, nothing else trimmed */
    run_all(LIT("id:\tx\n\n"), &o);
    expect_id(&o, "\tx", 2);
    run_all(LIT("id:a:b\n\n"), &o);
    expect_id(&o, "a:b", 3);
    run_all(LIT("id: 1\nid: 2\n\n"), &o);
    expect_id(&o, "2", 1);
    run_all(LIT("id: 1\n\nid: 2\n:c\n"), &o);
    expect_id(&o, "1", 1);
}

static void long_ids(void **st)
{
    (void)st;
    char body[600];
    obs_t o;
    size_t n = 0;

    memcpy(body, "id: ", 4);
    n = 4;
    for (size_t i = 0; i < 300; i++)
        body[n++] = (char)('a' + i % 26);
    memcpy(body + n, "\n\n", 2);
    n += 2;
    run_all(body, n, &o);
    assert_int_equal(o.last_id_len, SG_SSE_MAX_ID);
    assert_memory_equal(o.last_id, body + 4, SG_SSE_MAX_ID);
    assert_true(o.id_truncated);

    /* a NUL past the kept part still voids the line */
    body[4 + 290] = '\0';
    run_all(body, n, &o);
    expect_id(&o, "", 0);
    assert_false(o.id_truncated);

    /* exactly SG_SSE_MAX_ID bytes is not truncated */
    memcpy(body, "id:", 3);
    memset(body + 3, 'z', SG_SSE_MAX_ID);
    memcpy(body + 3 + SG_SSE_MAX_ID, "\n\n", 2);
    run_all(body, 3 + SG_SSE_MAX_ID + 2, &o);
    assert_int_equal(o.last_id_len, SG_SSE_MAX_ID);
    assert_false(o.id_truncated);

    /* a later short id clears the flag */
    sg_sse_t s;
    sg_sse_init(&s);
    memset(body + 3, 'y', 400);
    memcpy(body + 403, "\n\nid: ok\n\n", 10);
    feed_cuts(&s, body, 403 + 2, NULL, 0, &o);
    assert_true(o.id_truncated);
    feed_cuts(&s, body + 405, 8, NULL, 0, &o);
    expect_id(&o, "ok", 2);
    assert_false(o.id_truncated);

    /* seeding with a long Last-Event-ID */
    sg_sse_init(&s);
    sg_sse_set_last_id(&s, body + 3, 400);
    assert_int_equal(s.last_id_len, SG_SSE_MAX_ID);
    assert_true(s.id_truncated);
    feed_cuts(&s, LIT("data:x\n\n"), NULL, 0, &o);
    assert_int_equal(o.last_id_len, SG_SSE_MAX_ID);
    assert_true(o.id_truncated);
}

static void retries(void **st)
{
    (void)st;
    obs_t o;
    run_all(LIT("retry: 1000\n"), &o);
    assert_int_equal(o.retry_ms, 1000); /* applied when the line ends, no blank line needed */
    run_all(LIT("retry: 1000"), &o);
    assert_int_equal(o.retry_ms, -1); /* the line has not ended */
    run_all(LIT("retry:  100\n"), &o);
    assert_int_equal(o.retry_ms, -1);
    run_all(LIT("retry:-1\n"), &o);
    assert_int_equal(o.retry_ms, -1);
    run_all(LIT("retry:\n"), &o);
    assert_int_equal(o.retry_ms, -1);
    run_all(LIT("retry: \n"), &o);
    assert_int_equal(o.retry_ms, -1);
    run_all(LIT("retry:0\r\n"), &o);
    assert_int_equal(o.retry_ms, 0);
    run_all(LIT("retry:5\rretry:1 \rretry:1.5\r"), &o);
    assert_int_equal(o.retry_ms, 5);
    run_all(LIT("retry:99999999999999999999999999\n"), &o);
    assert_int_equal(o.retry_ms, INT64_MAX);
    run_all(LIT("retry:9223372036854775807\n"), &o);
    assert_int_equal(o.retry_ms, INT64_MAX);
    run_all(LIT("retry:9223372036854775806\n"), &o);
    assert_int_equal(o.retry_ms, INT64_MAX - 1);
}

/* ---- boundaries ---- */

static void boundary_offsets(void **st)
{
    (void)st;
    sg_sse_t s;
    ssize_t b;

    sg_sse_init(&s);
    assert_true(sg_sse_at_boundary(&s));
    assert_false(sg_sse_insert_ok(&s)); /* nothing from upstream yet: a BOM may still come */
    assert_int_equal(sg_sse_feed(&s, LIT("data:1\n\ndata:2\n\ndata:3"), &b), 2);
    assert_int_equal(b, 16);
    assert_false(sg_sse_at_boundary(&s));
    assert_int_equal(sg_sse_feed(&s, LIT("\nid:4\n"), &b), 0);
    assert_int_equal(b, -1);
    assert_int_equal(sg_sse_feed(&s, LIT("\n:hb\ndata:5"), &b), 1);
    assert_int_equal(b, 5); /* after the comment line */
    assert_int_equal(sg_sse_feed(&s, LIT("\n\n"), &b), 1);
    assert_int_equal(b, 2);
    assert_true(sg_sse_insert_ok(&s));
    assert_int_equal(s.last_id_len, 1);
    assert_int_equal(s.last_id[0], '4');

    /* a chunk starting at a boundary with none inside reports 0 */
    assert_int_equal(sg_sse_feed(&s, LIT("data:6"), &b), 0);
    assert_int_equal(b, 0);
    /* empty chunk */
    assert_int_equal(sg_sse_feed(&s, "", 0, &b), 0);
    assert_int_equal(b, -1);
    assert_int_equal(sg_sse_feed(&s, LIT("\n\r"), &b), 1);
    assert_int_equal(b, 2); /* the CR ends a blank line: a boundary though an LF may follow */
    assert_true(sg_sse_at_boundary(&s));
    assert_int_equal(sg_sse_feed(&s, LIT("\ndata:7\n"), &b), 0);
    assert_int_equal(b, 1); /* forwarding that LF as well keeps the client's line ends intact */
    assert_int_equal(sg_sse_feed(&s, "", 0, NULL), 0);

    /* partial lines */
    sg_sse_init(&s);
    sg_sse_feed(&s, LIT("da"), NULL);
    assert_false(sg_sse_at_boundary(&s));
    sg_sse_feed(&s, LIT("ta:x\n"), NULL);
    assert_false(sg_sse_at_boundary(&s));
    sg_sse_feed(&s, LIT("\r"), NULL);
    assert_true(sg_sse_at_boundary(&s));
    sg_sse_feed(&s, LIT(":"), NULL);
    assert_false(sg_sse_at_boundary(&s));
    sg_sse_feed(&s, LIT("\r"), NULL);
    assert_true(sg_sse_at_boundary(&s));
    sg_sse_feed(&s, LIT("\n"), NULL);
    assert_true(sg_sse_at_boundary(&s));
    sg_sse_feed(&s, LIT("x"), NULL);
    assert_false(sg_sse_at_boundary(&s));

    /* a BOM split across feeds */
    sg_sse_init(&s);
    assert_int_equal(sg_sse_feed(&s, LIT("\xEF"), &b), 0);
    assert_int_equal(b, 0);
    assert_false(sg_sse_at_boundary(&s));
    assert_int_equal(sg_sse_feed(&s, LIT("\xBB"), &b), 0);
    assert_int_equal(b, -1);
    assert_int_equal(sg_sse_feed(&s, LIT("\xBF"), &b), 0);
    assert_int_equal(b, 1);
    assert_true(sg_sse_insert_ok(&s));
    assert_int_equal(sg_sse_feed(&s, LIT("data:1\n\n"), &b), 1);
    assert_int_equal(b, 8);
}

/* ---- big inputs: nothing grows, counts stay right ---- */

static void huge_lines(void **st)
{
    (void)st;
    enum { CHUNK = 64 * 1024, ROUNDS = 256 }; /* 16 MiB per line */
    char *buf = malloc(CHUNK);
    assert_non_null(buf);
    sg_sse_t s;
    ssize_t b;

    sg_sse_init(&s);
    memset(buf, 'a', CHUNK);
    sg_sse_feed(&s, LIT("data:"), NULL);
    for (int r = 0; r < ROUNDS; r++) {
        assert_int_equal(sg_sse_feed(&s, buf, CHUNK, &b), 0);
        assert_int_equal(b, -1);
    }
    assert_int_equal(sg_sse_feed(&s, LIT("\n\n"), &b), 1);
    assert_int_equal(b, 2);

    /* a huge field name, then a huge id, a huge retry */
    for (int r = 0; r < ROUNDS; r++)
        sg_sse_feed(&s, buf, CHUNK, NULL);
    sg_sse_feed(&s, LIT(":x\nid:"), NULL);
    for (int r = 0; r < ROUNDS; r++)
        sg_sse_feed(&s, buf, CHUNK, NULL);
    sg_sse_feed(&s, LIT("\nretry:"), NULL);
    memset(buf, '7', CHUNK);
    for (int r = 0; r < 4; r++)
        sg_sse_feed(&s, buf, CHUNK, NULL);
    sg_sse_feed(&s, LIT("\n\n"), NULL);
    assert_int_equal(s.events, 1);
    assert_int_equal(s.last_id_len, SG_SSE_MAX_ID);
    assert_true(s.id_truncated);
    assert_int_equal(s.retry_ms, INT64_MAX);

    /* CR-only lines in one large chunk (checks the LF search is not redone per line) */
    for (size_t i = 0; i < CHUNK; i += 8)
        memcpy(buf + i, "data:x\r\r", 8);
    assert_int_equal(sg_sse_feed(&s, buf, CHUNK, &b), CHUNK / 8);
    assert_int_equal(b, CHUNK);
    free(buf);
}

/* ---- writers ---- */

static void writers(void **st)
{
    (void)st;
    char out[32];
    sg_sse_t s;

    assert_int_equal(sg_sse_write_retry(out, sizeof(out), 0), 10);
    assert_memory_equal(out, "retry: 0\n\n", 10);
    assert_int_equal(sg_sse_write_retry(out, sizeof(out), 4294967295u), 19);
    assert_memory_equal(out, "retry: 4294967295\n\n", 19);
    assert_int_equal(sg_sse_write_retry(out, 18, 4294967295u), 0);
    assert_int_equal(sg_sse_write_retry(out, 10, 1500), 0);
    size_t n = sg_sse_write_retry(out, 13, 1500);
    assert_int_equal(n, 13);
    assert_memory_equal(out, "retry: 1500\n\n", 13);

    /* what we write parses as intended and leaves the stream at a boundary */
    sg_sse_init(&s);
    sg_sse_feed(&s, LIT("data:1\n\n"), NULL);
    sg_sse_feed(&s, out, n, NULL);
    assert_int_equal(s.retry_ms, 1500);
    assert_true(sg_sse_at_boundary(&s));
    assert_int_equal(s.events, 1);

    assert_int_equal(sg_sse_write_heartbeat(out, 1), 0);
    assert_int_equal(sg_sse_write_heartbeat(out, 2), 2);
    assert_memory_equal(out, ":\n", 2);
    sg_sse_feed(&s, out, 2, NULL);
    assert_true(sg_sse_at_boundary(&s));
    assert_int_equal(s.events, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(es_bom_1),
        cmocka_unit_test(es_field_parsing),
        cmocka_unit_test(es_leading_space),
        cmocka_unit_test(es_utf8),
        cmocka_unit_test(es_retry),
        cmocka_unit_test(es_retry_bogus),
        cmocka_unit_test(es_retry_empty),
        cmocka_unit_test(es_id_echo),
        cmocka_unit_test(es_id_null),
        cmocka_unit_test(es_id_resets),
        cmocka_unit_test(es_id_persists),
        cmocka_unit_test(es_stream_chunks),
        cmocka_unit_test(es_split_crlf),
        cmocka_unit_test(es_reconnect_retry_only),
        cmocka_unit_test(es_simple_body),
        cmocka_unit_test(incomplete_final_event),
        cmocka_unit_test(bom_variants),
        cmocka_unit_test(comments),
        cmocka_unit_test(field_names),
        cmocka_unit_test(line_endings),
        cmocka_unit_test(ids),
        cmocka_unit_test(long_ids),
        cmocka_unit_test(retries),
        cmocka_unit_test(boundary_offsets),
        cmocka_unit_test(huge_lines),
        cmocka_unit_test(writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
