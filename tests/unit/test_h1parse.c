/* test_h1parse.c: unit tests of the strict HTTP/1.1 head parser and chunked decoder, incl. the bad-request cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guard.h"
#include "codec/h1parse.h"

/*
 * Every input goes through guard_put(), so it ends right before a PROT_NONE page: a parser that looks
 * one byte too far faults. The guard and the message are file statics because cmocka runs the tests
 * one after the other in one thread; each test re-initialises what it uses.
 */
#define GUARD_CAP (256 * 1024)
static sg_guard_t G;
static sg_guard_t G2; /* for the pieces fed to the chunked decoder */
static sg_h1_msg_t M;

static int group_setup(void **state)
{
    (void)state;
    guard_init(&G, GUARD_CAP);
    guard_init(&G2, GUARD_CAP);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    guard_fini(&G);
    guard_fini(&G2);
    return 0;
}

static int reqn(const void *s, size_t n)
{
    return sg_h1parse_request(guard_put(&G, s, n), n, &M);
}

static int req(const char *s)
{
    return reqn(s, strlen(s));
}

static int respn(const void *s, size_t n, bool head)
{
    return sg_h1parse_response(guard_put(&G, s, n), n, head, &M);
}

static int resp(const char *s, bool head)
{
    return respn(s, strlen(s), head);
}

static bool slice_is(sg_str_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

#define assert_slice(s, lit)                                                                             \
    do {                                                                                                 \
        if (!slice_is((s), (lit)))                                                                       \
            fail_msg("slice '%.*s' != '%s'", (int)(s).n, (s).p ? (s).p : "", (lit));                     \
    } while (0)

/* Expects req() to give exactly code; prints the input on failure. */
#define assert_req(s, code)                                                                              \
    do {                                                                                                 \
        int r_ = req(s);                                                                                 \
        if (r_ != (code))                                                                                \
            fail_msg("request %s: got %d, want %d", #s, r_, (int)(code));                                 \
    } while (0)

#define assert_req_ok(s) assert_req((s), (int)strlen(s))

/*
 * Feeds in[0..n) to a fresh decoder in pieces of step bytes (0 = all at once), each piece placed
 * against the guard. Collects data into out. Returns the final code (2 done, 0 needs more, <0 error)
 * and in *used the total bytes consumed.
 */
static int dechunk(const char *in, size_t n, size_t step, char *out, size_t outcap, size_t *outlen, size_t *used)
{
    sg_h1_chunked_t d;
    size_t off = 0;
    int rc = 0;

    sg_h1_chunked_init(&d);
    *outlen = 0;
    while (off < n || (off == n && n == 0)) {
        size_t piece = step ? SG_MIN(step, n - off) : n - off;
        const char *p = guard_put(&G2, in + off, piece);
        size_t pos = 0;
        for (;;) {
            size_t c = 0;
            sg_str_t data;
            rc = sg_h1_chunked_decode(&d, p + pos, piece - pos, &c, &data);
            assert_true(c <= piece - pos);
            pos += c;
            if (rc == 1) {
                assert_true(data.n > 0);
                assert_true(data.p >= p && data.p + data.n <= p + piece);
                assert_true(*outlen + data.n <= outcap);
                memcpy(out + *outlen, data.p, data.n);
                *outlen += data.n;
                continue;
            }
            break;
        }
        off += pos;
        if (rc != 0 || n == 0)
            break;
        assert_int_equal(pos, piece);
    }
    *used = off;
    return rc;
}

/* ------------------------------------------------------------------ conformance cases */

/* Status a server answers for a parser result; 0 for "not a rejection". */
static int status_of(int rc)
{
    switch (rc) {
    case SG_EBADMSG:
        return 400;
    case SG_ETOOLONG:
        return 414;
    case SG_EHDRTOOBIG:
        return 431;
    case SG_ENOTIMPL:
        return 501;
    default:
        return 0;
    }
}

/* What the whole request (head, then a chunked or CL body) comes to: a status, or 200 with the body. */
static int outcome(const char *raw, size_t n, char *body, size_t *body_len)
{
    int r = reqn(raw, n);
    *body_len = 0;
    if (r < 0)
        return status_of(r);
    size_t h = (size_t)r;
    if (M.body == SG_H1_BODY_CHUNKED) {
        char copy[1024];
        size_t used, out2_len, used2;
        char out2[1024];
        assert_true(n - h <= sizeof(copy));
        memcpy(copy, raw + h, n - h);
        int rc = dechunk(copy, n - h, 0, body, 1024, body_len, &used);
        /* the byte-at-a-time decoder must agree with the one-shot one */
        int rc2 = dechunk(copy, n - h, 1, out2, sizeof(out2), &out2_len, &used2);
        assert_int_equal(rc, rc2);
        if (rc == 2) {
            assert_int_equal(used, used2);
            assert_int_equal(*body_len, out2_len);
            assert_memory_equal(body, out2, out2_len);
        }
        if (rc < 0)
            return status_of(rc);
        if (rc != 2 || used != n - h)
            return 0; /* incomplete, or bytes after the body: not an accepted single request */
        return 200;
    }
    if (M.body == SG_H1_BODY_LENGTH) {
        if (M.content_length != n - h)
            return 0;
        memcpy(body, raw + h, n - h);
        *body_len = n - h;
    }
    return 200;
}

typedef struct h1case {
    const char *id;
    const char *raw;
    size_t n;
    int status[2]; /* accepted statuses; 200 = accept */
    const char *body;
} h1case_t;

#define RAW(s) (s), sizeof(s) - 1

/* From http1-bad-requests.jsonl (llhttp, Http11Probe, RFC 9112), restated as C bytes. */
static const h1case_t cases[] = {
    {"H1-CL-DUP-DIFF",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\nhelloworld"),
     {400, 400}, NULL},
    {"H1-CL-LIST-DIFF", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5, 10\r\n\r\nhello"), {400, 400}, NULL},
    {"H1-CL-LIST-SAME", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5, 5\r\n\r\nhello"), {400, 400}, NULL},
    {"H1-CL-PLUS", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: +5\r\n\r\nhello"), {400, 400}, NULL},
    {"H1-CL-NEGATIVE", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: -1\r\n\r\n"), {400, 400}, NULL},
    {"H1-CL-INNER-SPACE", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 4 2\r\n\r\n"), {400, 400}, NULL},
    {"H1-CL-EMPTY", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length:\r\n\r\n"), {400, 400}, NULL},
    {"H1-CL-OVERFLOW", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 1000000000000000000000\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-CL-SP-BEFORE-COLON", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length : 4\r\n\r\nabcd"), {400, 400},
     NULL},
    {"H1-TECL-DESYNC",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\nX"
         "GET / HTTP/1.1\r\nHost: h.test\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-CL-TE-IDENTITY",
     RAW("PUT /url HTTP/1.1\r\nHost: h.test\r\nContent-Length: 1\r\nTransfer-Encoding: identity\r\n\r\nx"),
     {400, 501}, NULL},
    {"H1-TE-NOT-FINAL", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-TE-UNKNOWN", RAW("PUT /url HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: pigeons\r\n\r\n"), {501, 400}, NULL},
    {"H1-TE-CHUNKEDCHUNKED",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunkedchunked\r\n\r\n5\r\nWorld\r\n0\r\n\r\n"),
     {400, 501}, NULL},
    {"H1-TE-XCHUNKED-CL",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello"),
     {400, 501}, NULL},
    {"H1-TE-VTAB",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: \x0b"
         "chunked\r\nContent-Length: 5\r\n\r\nhello"),
     {400, 400}, NULL},
    {"H1-TE-FORMFEED",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: \fchunked\r\nContent-Length: 5\r\n\r\nhello"),
     {400, 400}, NULL},
    {"H1-TE-EMPTY-CL", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: \r\nContent-Length: 5\r\n\r\nhello"),
     {400, 400}, NULL},
    {"H1-TE-OBS-FOLD",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello"),
     {400, 400}, NULL},
    {"H1-CHUNK-SIZE-TRAILING-SP",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\na \r\n0123456789\r\n0\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-CHUNK-BARE-SEMICOLON",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"), {400, 400},
     NULL},
    {"H1-CHUNK-EXT-UNBALANCED-QUOTE",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5;ilovew3=\"abc\";somuchlove=\"def; ghi\r\nhello\r\n0\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-CHUNK-EXT-BAD-TOKEN",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n5;bad[=x\r\nhello\r\n0\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-CHUNK-HEX-PREFIX",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"), {400, 400},
     NULL},
    {"H1-CHUNK-NEGATIVE",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n"), {400, 400},
     NULL},
    {"H1-CHUNK-UNDERSCORE",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\nhello world!!!!!\r\n0\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-CHUNK-DATA-NO-CRLF",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n"), {400, 400}, NULL},
    {"H1-CHUNK-SIZE-BARE-CR",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"),
     {400, 400}, NULL},
    {"H1-CHUNK-SPILL",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!!\r\n0\r\n\r\n"), {400, 400},
     NULL},
    {"H1-SP-BEFORE-COLON", RAW("GET / HTTP/1.1\r\nHost: h.test\r\nX-Test : value\r\n\r\n"), {400, 400}, NULL},
    {"H1-WS-BEFORE-FIRST-HEADER", RAW("GET / HTTP/1.1\r\n Host: h.test\r\n\r\n"), {400, 400}, NULL},
    {"H1-BAD-NAME-AT", RAW("GET / HTTP/1.1\r\nHost: h.test\r\nFo@: Failure\r\n\r\n"), {400, 400}, NULL},
    {"H1-HDR-BARE-CR-SEP", RAW("GET / HTTP/1.1\r\nHost: h.test\r\nFoo: 1\rBar: 2\r\n\r\n"), {400, 400}, NULL},
    {"H1-HDR-BARE-CR-VALUE",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5\r\nX-Test: val\rue\r\n\r\nhello"), {400, 400}, NULL},
    {"H1-HDR-NUL-VALUE", RAW("GET / HTTP/1.1\r\nHost: h.test\r\nX-Test: val\0ue\r\n\r\n"), {400, 400}, NULL},
    {"H1-DUMMY-AFTER-HEADERS",
     RAW("GET / HTTP/1.1\r\nConnection: close\r\nHost: a\r\n\rZGET /evil: HTTP/1.1\r\nHost: a\r\n\r\n"), {400, 400},
     NULL},
    {"H1-HOST-TWO-DIFF", RAW("GET / HTTP/1.1\r\nHost: h.test\r\nHost: other.test\r\n\r\n"), {400, 400}, NULL},
    {"H1-HOST-TWO-SAME", RAW("GET / HTTP/1.1\r\nHost: h.test\r\nHost: h.test\r\n\r\n"), {400, 400}, NULL},
    {"H1-HOST-LIST", RAW("GET / HTTP/1.1\r\nHost: h.test, other.test\r\n\r\n"), {400, 400}, NULL},
    {"H1-HOST-USERINFO", RAW("GET / HTTP/1.1\r\nHost: user@h.test\r\n\r\n"), {400, 400}, NULL},
    {"H1-RL-BAD-VERSION", RAW("GET / HTTP/5.6\r\nHost: h.test\r\n\r\n"), {400, 505}, NULL},
    {"H1-RL-ASTERISK-GET", RAW("GET * HTTP/1.1\r\nHost: h.test\r\n\r\n"), {400, 400}, NULL},
    /* H1-LONG-HEADER-VALUE is built in conformance_long_header_value() */
    {"H1-OK-CHUNKED",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
     {200, 200}, "hello world"},
    {"H1-OK-CHUNK-EXT",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=value\r\nhello\r\n0\r\n\r\n"),
     {200, 200}, "hello"},
    {"H1-OK-TRAILER",
     RAW("POST / HTTP/1.1\r\nHost: h.test\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"),
     {200, 200}, "hello"},
    {"H1-OK-CL", RAW("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 5\r\n\r\nhello"), {200, 200}, "hello"},
};

static void conformance_cases(void **state)
{
    (void)state;
    assert_int_equal(SG_ARRAY_LEN(cases), 46);
    for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
        const h1case_t *c = &cases[i];
        char body[1024];
        size_t body_len;
        int st = outcome(c->raw, c->n, body, &body_len);
        if (st != c->status[0] && st != c->status[1])
            fail_msg("%s: status %d, want %d or %d", c->id, st, c->status[0], c->status[1]);
        if (c->body) {
            if (body_len != strlen(c->body) || memcmp(body, c->body, body_len) != 0)
                fail_msg("%s: body '%.*s', want '%s'", c->id, (int)body_len, body, c->body);
        }
    }
}

/* H1-LONG-HEADER-VALUE: "X-Big: {repeat:b:100000}" must be refused, also before it is complete. */
static void conformance_long_header_value(void **state)
{
    (void)state;
    static char buf[100200];
    size_t n = 0;
    const char *a = "GET / HTTP/1.1\r\nHost: h.test\r\nX-Big: ";
    memcpy(buf, a, strlen(a));
    n = strlen(a);
    memset(buf + n, 'b', 100000);
    n += 100000;
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    assert_int_equal(reqn(buf, n), SG_EHDRTOOBIG);
    /* at the limit + 1 byte, no line end yet */
    size_t hdr_start = strlen("GET / HTTP/1.1\r\n");
    assert_int_equal(reqn(buf, hdr_start + SG_H1_MAX_HEAD_BYTES), SG_EINCOMPLETE);
    assert_int_equal(reqn(buf, hdr_start + SG_H1_MAX_HEAD_BYTES + 1), SG_EHDRTOOBIG);
}

/* ------------------------------------------------------------------ request line */

static void request_basic(void **state)
{
    (void)state;
    const char *s = "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\n\r\nBODY";
    int r = req(s);
    assert_int_equal(r, (int)strlen(s) - 4);
    assert_slice(M.method, "GET");
    assert_slice(M.target, "/a/b?c=d");
    assert_int_equal(M.minor_version, 1);
    assert_int_equal(M.nheaders, 2);
    assert_slice(M.headers[0].name, "Host");
    assert_slice(M.headers[0].value, "example.com:8080");
    assert_slice(M.headers[1].name, "User-Agent");
    assert_int_equal(M.host_index, 0);
    assert_int_equal(M.head_len, (size_t)r);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_true(M.keep_alive);
    assert_false(M.expect_continue);
    assert_false(M.upgrade);

    assert_req_ok("GET / HTTP/1.0\r\n\r\n");
    assert_int_equal(M.minor_version, 0);
    assert_int_equal(M.host_index, -1);
    assert_false(M.keep_alive);
    /* extension methods are tokens */
    assert_req_ok("M-SEARCH! / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_slice(M.method, "M-SEARCH!");
    assert_req_ok("get / HTTP/1.1\r\nHost: h\r\n\r\n");
}

static void request_line_syntax(void **state)
{
    (void)state;
    assert_req("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);     /* double SP */
    assert_req("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);     /* HTAB separator */
    assert_req(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);        /* no target */
    assert_req("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);      /* '(' not tchar */
    assert_req("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG); /* raw UTF-8 must be %-encoded */
    assert_req("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    const char nul_target[] = "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(reqn(nul_target, sizeof(nul_target) - 1), SG_EBADMSG);
    /* versions: exactly HTTP/1.0 and HTTP/1.1 */
    assert_req("GET / HTTP/1.2\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/2.0\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/0.9\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.10\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / http/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET /\r\n\r\n", SG_EBADMSG); /* HTTP/0.9 */
    /* early rejection: bad version bytes are seen before the line ends */
    assert_req("GET / HTTX", SG_EBADMSG);
    assert_req("GET / HTTP/1.3", SG_EBADMSG);
    assert_req("GET / HTTP/1.1X", SG_EBADMSG);
    assert_req("GET / HTTP/1.1", SG_EINCOMPLETE);
    assert_req("GET / HTTP/1.1\r", SG_EINCOMPLETE);
    assert_req("GE", SG_EINCOMPLETE);
    assert_req("", SG_EINCOMPLETE);
}

static void request_line_endings(void **state)
{
    (void)state;
    assert_req("GET / HTTP/1.1\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\rHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\n\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\n\r\r", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX: a\nY: b\r\n\r\n", SG_EBADMSG);
    /* leading empty lines: CRLF skipped (and counted), bare LF or CR not */
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_req_ok(s);
    assert_slice(M.method, "GET");
    assert_int_equal(M.head_len, strlen(s));
    assert_req("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req_ok("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_req("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("\r\n", SG_EINCOMPLETE);
    assert_req("\r", SG_EINCOMPLETE);
}

static void request_target_forms(void **state)
{
    (void)state;
    assert_req_ok("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_slice(M.target, "*");
    assert_req("GET * HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req_ok("OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n");
    /* absolute-form */
    assert_req_ok("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_slice(M.target, "http://example.com/x?y");
    assert_req_ok("GET https://example.com:8443 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_req_ok("GET http://[::1]:80/ HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_req("GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", SG_EBADMSG);
    assert_req("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET http: HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET example.com HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET ?x HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    /* authority-form, only for CONNECT */
    assert_req_ok("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_slice(M.target, "example.com:443");
    assert_req_ok("CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_req("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("CONNECT u@example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("CONNECT http://example.com:443/ HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n", SG_EBADMSG);
}

/* ------------------------------------------------------------------ header fields */

static void header_syntax(void **state)
{
    (void)state;
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nX-A:   spaced \t value \t \r\nX-B:\r\nX-C:x\r\nX-D: \t\r\n\r\n");
    assert_int_equal(M.nheaders, 5);
    assert_slice(M.headers[1].value, "spaced \t value");
    assert_slice(M.headers[2].value, "");
    assert_slice(M.headers[3].value, "x");
    assert_slice(M.headers[4].value, "");
    /* all tchar in names; VCHAR and obs-text in values */
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09azAZ: \"(),/:;<=>?@[\\]{}\x80\xff\r\n\r\n");
    assert_slice(M.headers[1].name, "!#$%&'*+-.^_`|~09azAZ");
    assert_slice(M.headers[1].value, "\"(),/:;<=>?@[\\]{}\x80\xff");

    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A : v\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A\t: v\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX A: v\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX(A): v\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: v\r\n\r\n", SG_EBADMSG);
    /* obs-fold and whitespace at line start */
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\n\tHost: h\r\n\r\n", SG_EBADMSG);
    /* CTLs in values */
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x1b\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: \x0b\r\n\r\n", SG_EBADMSG);
    const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: \0\r\n\r\n";
    assert_int_equal(reqn(nul, sizeof(nul) - 1), SG_EBADMSG);
    /* a bad byte is seen before the head is complete */
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX-A: \x01", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\r\nX A", SG_EBADMSG);
}

/* The word-at-a-time skips: a stop byte at every offset of a long run is still found. */
static void long_runs_every_offset(void **state)
{
    (void)state;
    static const char value_bad[] = {'\0', '\x01', '\x0b', '\n', '\r', '\x1f', '\x7f'};
    static const char target_bad[] = {'\0', ' ', '\t', '#', '\x7f', '\x80', '\xff', '\r'};
    char buf[256];
    for (size_t off = 0; off < 24; off++) {
        for (size_t b = 0; b < sizeof(value_bad); b++) {
            int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX: %s\r\n\r\n",
                             "abcdefghijklmnopqrstuvwxyz0123456789");
            buf[28 + off] = value_bad[b];
            int r = reqn(buf, (size_t)n);
            if (r != SG_EBADMSG)
                fail_msg("value byte 0x%02x at %zu: %d", (unsigned char)value_bad[b], off, r);
        }
        /* allowed bytes do not stop the run: HTAB, SP, obs-text */
        int n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\nX: %s\r\n\r\n",
                         "abcdefghijklmnopqrstuvwxyz0123456789");
        buf[28 + off] = off == 0 ? '\x80' : off % 3 == 0 ? '\t' : off % 3 == 1 ? ' ' : '\x80'; /* OWS at 0 is trimmed */
        assert_int_equal(reqn(buf, (size_t)n), n);
        assert_int_equal(M.headers[1].value.n, 36);
        for (size_t b = 0; b < sizeof(target_bad); b++) {
            n = snprintf(buf, sizeof(buf), "GET /%s HTTP/1.1\r\nHost: h\r\n\r\n",
                         "abcdefghijklmnopqrstuvwxyz0123456789");
            buf[5 + off] = target_bad[b];
            int r = reqn(buf, (size_t)n);
            if (r != SG_EBADMSG)
                fail_msg("target byte 0x%02x at %zu: %d", (unsigned char)target_bad[b], off, r);
        }
    }
}

static void find_headers(void **state)
{
    (void)state;
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-b: 2\r\nX-a: 3\r\n\r\n");
    size_t from = 0;
    const sg_h1_header_t *h = sg_h1parse_find(&M, "x-a", &from);
    assert_non_null(h);
    assert_slice(h->value, "1");
    assert_int_equal(from, 2);
    h = sg_h1parse_find(&M, "X-A", &from);
    assert_non_null(h);
    assert_slice(h->value, "3");
    assert_null(sg_h1parse_find(&M, "x-a", &from));
    assert_null(sg_h1parse_find(&M, "x-c", NULL));
    h = sg_h1parse_find(&M, "X-B", NULL);
    assert_non_null(h);
    assert_slice(h->value, "2");
    assert_null(sg_h1parse_find(&M, "x-", NULL));
}

/* ------------------------------------------------------------------ framing */

static void framing_content_length(void **state)
{
    (void)state;
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", 47);
    assert_int_equal(M.body, SG_H1_BODY_LENGTH);
    assert_int_equal(M.content_length, 5);
    assert_req_ok("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(M.body, SG_H1_BODY_LENGTH);
    assert_int_equal(M.content_length, 0);
    assert_req_ok("POST / HTTP/1.1\r\nHost: h\r\ncontent-length:007 \r\n\r\n");
    assert_int_equal(M.content_length, 7);
    assert_req_ok("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9007199254740991\r\n\r\n");
    assert_int_equal(M.content_length, SG_H1_MAX_CONTENT_LENGTH);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9007199254740992\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5.0\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \xd9\xa5\r\n\r\n", SG_EBADMSG);
    /* GET without a body field has none; Content-Length is honoured on any method */
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n");
    assert_int_equal(M.body, SG_H1_BODY_LENGTH);
}

static void framing_transfer_encoding(void **state)
{
    (void)state;
    assert_req_ok("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(M.body, SG_H1_BODY_CHUNKED);
    assert_req_ok("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:  ChUnKeD \r\n\r\n");
    assert_int_equal(M.body, SG_H1_BODY_CHUNKED);

    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
               SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
               SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, identity, chunked\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", SG_EBADMSG);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n", SG_EBADMSG);
    /* valid codings we do not implement: 501 */
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", SG_ENOTIMPL);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
               SG_ENOTIMPL);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", SG_ENOTIMPL);
    assert_req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n", SG_ENOTIMPL);
}

/* ------------------------------------------------------------------ Host */

static void host_rules(void **state)
{
    (void)state;
    assert_req("GET / HTTP/1.1\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nhost: a\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", SG_EBADMSG);
    assert_req_ok("GET / HTTP/1.0\r\nHost: a\r\n\r\n");
    assert_int_equal(M.host_index, 0);
    assert_req_ok("GET / HTTP/1.1\r\nX: y\r\nhOsT: example.com\r\n\r\n");
    assert_int_equal(M.host_index, 1);
    assert_slice(M.headers[M.host_index].value, "example.com");
    assert_req_ok("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    assert_req_ok("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    assert_req_ok("GET / HTTP/1.1\r\nHost: [::ffff:127.0.0.1]\r\n\r\n");
    assert_req_ok("GET / HTTP/1.1\r\nHost: xn--bcher-kva.example_1-~%41\r\n\r\n");
    assert_req_ok("GET / HTTP/1.1\r\nHost: h:\r\n\r\n"); /* port = *DIGIT */
    assert_req_ok("GET / HTTP/1.1\r\nHost:\r\n\r\n");    /* RFC 9112 3.2: empty when the URI has no authority */
    assert_int_equal(M.host_index, 0);
    assert_req("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: a\tb\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: u:p@h\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h/x\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h:80a\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h:80:81\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: []\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: [fe80::1%eth0]\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\xc3\xa9\r\n\r\n", SG_EBADMSG);
    assert_req("GET / HTTP/1.1\r\nHost: h\\x\r\n\r\n", SG_EBADMSG);
}

/* ------------------------------------------------------------------ limits */

/* Builds "GET /aaaa... HTTP/1.1\r\n" with a request line of exactly line_len bytes (CRLF excluded). */
static size_t build_reqline(char *buf, size_t line_len)
{
    size_t fixed = strlen("GET / HTTP/1.1");
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', line_len - fixed);
    memcpy(buf + 5 + line_len - fixed, " HTTP/1.1\r\n", 11);
    return line_len + 2;
}

static void limits_request_line(void **state)
{
    (void)state;
    static char buf[SG_H1_MAX_REQLINE + 64];
    size_t n = build_reqline(buf, SG_H1_MAX_REQLINE);
    memcpy(buf + n, "Host: h\r\n\r\n", 11);
    assert_int_equal(reqn(buf, n + 11), (int)(n + 11));
    assert_int_equal(M.target.n, SG_H1_MAX_REQLINE - 14 + 1);
    /* the CR of a line at the limit is not counted before its LF arrives either */
    assert_int_equal(reqn(buf, n - 1), SG_EINCOMPLETE);

    n = build_reqline(buf, SG_H1_MAX_REQLINE + 1);
    memcpy(buf + n, "Host: h\r\n\r\n", 11);
    assert_int_equal(reqn(buf, n + 11), SG_ETOOLONG);
    /* still incomplete: the target alone passes the limit */
    assert_int_equal(reqn(buf, SG_H1_MAX_REQLINE), SG_EINCOMPLETE);
    assert_int_equal(reqn(buf, SG_H1_MAX_REQLINE + 1), SG_ETOOLONG);
    /* a long method counts too */
    memset(buf, 'A', SG_H1_MAX_REQLINE + 1);
    assert_int_equal(reqn(buf, SG_H1_MAX_REQLINE + 1), SG_ETOOLONG);
    assert_int_equal(reqn(buf, SG_H1_MAX_REQLINE), SG_EINCOMPLETE);
}

static void limits_header_section(void **state)
{
    (void)state;
    static char buf[SG_H1_MAX_HEAD_BYTES + 256];
    const char *line = "GET / HTTP/1.1\r\n";
    const char *host = "Host: h\r\n";
    size_t start = strlen(line);
    memcpy(buf, line, start);
    size_t n = start;
    memcpy(buf + n, host, strlen(host));
    n += strlen(host);
    /* one big field that makes the section exactly SG_H1_MAX_HEAD_BYTES with the final CRLF */
    size_t room = SG_H1_MAX_HEAD_BYTES - (n - start) - 2;
    memcpy(buf + n, "X: ", 3);
    memset(buf + n + 3, 'v', room - 5);
    n += room - 2;
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    assert_int_equal(n - start, SG_H1_MAX_HEAD_BYTES);
    assert_int_equal(reqn(buf, n), (int)n);
    /* one more byte in the value */
    memmove(buf + n - 3, buf + n - 4, 4);
    buf[n - 4] = 'v';
    assert_int_equal(reqn(buf, n + 1), SG_EHDRTOOBIG);

    /* field count: 100 fields fit, 101 do not, even before the head is complete */
    n = start;
    memcpy(buf + n, host, strlen(host));
    n += strlen(host);
    for (int i = 1; i < SG_H1_MAX_HEADERS; i++)
        n += (size_t)snprintf(buf + n, 32, "X-%d: v\r\n", i);
    memcpy(buf + n, "\r\n", 2);
    assert_int_equal(reqn(buf, n + 2), (int)(n + 2));
    assert_int_equal(M.nheaders, SG_H1_MAX_HEADERS);
    memcpy(buf + n, "Y: z\r\n\r\n", 8);
    assert_int_equal(reqn(buf, n + 8), SG_EHDRTOOBIG);
    assert_int_equal(reqn(buf, n + 1), SG_EHDRTOOBIG);
    assert_int_equal(reqn(buf, n), SG_EINCOMPLETE);

    /* many small empty-valued fields still count toward the byte limit while incomplete */
    n = start;
    while (n - start <= SG_H1_MAX_HEAD_BYTES)
        buf[n++] = 'x';
    assert_int_equal(reqn(buf, n), SG_EHDRTOOBIG);
    assert_int_equal(reqn(buf, n - 1), SG_EINCOMPLETE);
}

/* ------------------------------------------------------------------ connection semantics */

static void connection_flags(void **state)
{
    (void)state;
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_false(M.keep_alive);
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\n\r\n");
    assert_false(M.keep_alive);
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: foo,close\r\n\r\n");
    assert_false(M.keep_alive);
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, xclose\r\n\r\n");
    assert_true(M.keep_alive);
    assert_req_ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert_true(M.keep_alive);
    assert_req_ok("GET / HTTP/1.0\r\nConnection: te ,\tkeep-alive \r\n\r\n");
    assert_true(M.keep_alive);
    assert_req_ok("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
    assert_false(M.keep_alive);
    assert_req_ok("GET / HTTP/1.0\r\nKeep-Alive: 5\r\n\r\n");
    assert_false(M.keep_alive);

    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_true(M.upgrade);
    assert_true(M.keep_alive);
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
    assert_false(M.upgrade);
    assert_req_ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n");
    assert_false(M.upgrade);

    assert_req_ok("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert_true(M.expect_continue);
    assert_req_ok("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue-x\r\nContent-Length: 1\r\n\r\n");
    assert_false(M.expect_continue);
    assert_req_ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert_false(M.expect_continue);
}

/* ------------------------------------------------------------------ incomplete input */

static void incomplete_every_prefix(void **state)
{
    (void)state;
    static const char *const msgs[] = {
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nX-Empty:\r\n\r\n",
        "OPTIONS * HTTP/1.0\r\n\r\n",
        "PUT http://a.example:81/p HTTP/1.1\r\nHost: a.example:81\r\nTransfer-Encoding: chunked\r\n"
        "Connection: keep-alive, Upgrade\r\nUpgrade: x\r\nExpect: 100-continue\r\n\r\n",
    };
    for (size_t m = 0; m < SG_ARRAY_LEN(msgs); m++) {
        size_t n = strlen(msgs[m]);
        for (size_t k = 0; k < n; k++) {
            int r = reqn(msgs[m], k);
            if (r != SG_EINCOMPLETE)
                fail_msg("msg %zu prefix %zu: %d", m, k, r);
        }
        assert_int_equal(reqn(msgs[m], n), (int)n);
    }
    /* the last one's semantics */
    assert_int_equal(M.body, SG_H1_BODY_CHUNKED);
    assert_true(M.upgrade);
    assert_true(M.expect_continue);
    assert_true(M.keep_alive);

    static const char *const resps[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.0 204\r\n\r\n",
        "HTTP/1.1 404 \r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t m = 0; m < SG_ARRAY_LEN(resps); m++) {
        size_t n = strlen(resps[m]);
        for (size_t k = 0; k < n; k++) {
            int r = respn(resps[m], k, false);
            if (r != SG_EINCOMPLETE)
                fail_msg("resp %zu prefix %zu: %d", m, k, r);
        }
        assert_int_equal(respn(resps[m], n, false), (int)n);
    }
}

/* ------------------------------------------------------------------ responses */

static void response_status_line(void **state)
{
    (void)state;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(resp(s, false), (int)strlen(s) - 3);
    assert_int_equal(M.status, 200);
    assert_slice(M.reason, "OK");
    assert_int_equal(M.minor_version, 1);
    assert_int_equal(M.nheaders, 2);
    assert_int_equal(M.body, SG_H1_BODY_LENGTH);
    assert_int_equal(M.content_length, 3);
    assert_true(M.keep_alive);
    assert_int_equal(M.host_index, -1);

    assert_int_equal(resp("HTTP/1.1 404 Not \t Found \x80\r\n\r\n", false), 30);
    assert_slice(M.reason, "Not \t Found \x80");
    assert_int_equal(resp("HTTP/1.1 200 \r\n\r\n", false), 17);
    assert_slice(M.reason, "");
    assert_int_equal(resp("HTTP/1.1 200\r\n\r\n", false), 16);
    assert_slice(M.reason, "");
    assert_int_equal(resp("HTTP/1.1 599 x\r\n\r\n", false), 18);

    assert_int_equal(resp("HTTP/1.1 20 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 2000 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 099 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 600 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1  200 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 -20 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/2 200 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.2 200 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("ICY 200 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 O\rK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 O\x01K\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("\r\nHTTP/1.1 200 OK\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nX : y\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nX: y\n\r\n", false), SG_EBADMSG);
}

static void response_framing(void **state)
{
    (void)state;
    /* until close: no CL, no TE */
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", false), 52);
    assert_int_equal(M.body, SG_H1_BODY_UNTIL_CLOSE);
    assert_false(M.keep_alive);
    /* chunked */
    assert_true(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_CHUNKED);
    assert_true(M.keep_alive);
    /* any coding but a final chunked: refused (we would relay encoded bytes as plain), and so is TE in 1.0 */
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false), SG_ENOTIMPL);
    assert_string_equal(M.error, "transfer coding other than chunked");
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false), SG_ENOTIMPL);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false), SG_ENOTIMPL);
    assert_int_equal(resp("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n", false),
                     SG_EBADMSG);
    assert_string_equal(M.error, "Transfer-Encoding in an HTTP/1.0 response");
    /* ambiguous framing is refused: the gateway answers 502 rather than guess */
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", false),
                     SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n", false), SG_EBADMSG);
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", false), SG_EBADMSG);
    /* no body: 1xx, 204, 304, HEAD */
    assert_true(resp("HTTP/1.1 204 No Content\r\n\r\n", false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_true(M.keep_alive);
    assert_true(resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_true(M.keep_alive);
    assert_true(resp("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_int_equal(M.content_length, 100);
    assert_true(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_true(M.keep_alive);
    /* the codings are checked on bodiless responses too: one rule, whatever the status */
    assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true), SG_ENOTIMPL);
    assert_int_equal(resp("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n\r\n", false), SG_ENOTIMPL);
    /* framing on a 204 or 1xx (which must have none): no body is read, and the connection is not reused */
    assert_true(resp("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_true(M.keep_alive);
    assert_true(resp("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_false(M.keep_alive);
    assert_true(resp("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_false(M.keep_alive);
    assert_true(resp("HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", false) > 0);
    assert_false(M.keep_alive);
    assert_true(resp("HTTP/1.1 200 OK\r\n\r\n", true) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_true(M.keep_alive);
    assert_true(resp("HTTP/1.1 100 Continue\r\n\r\n", false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_int_equal(M.status, 100);
    assert_true(resp("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
                     false) > 0);
    assert_int_equal(M.body, SG_H1_BODY_NONE);
    assert_true(M.upgrade);
    /* keep-alive rules */
    assert_true(resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false) > 0);
    assert_false(M.keep_alive);
    assert_true(resp("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", false) > 0);
    assert_true(M.keep_alive);
    assert_true(resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false) > 0);
    assert_false(M.keep_alive);
    /* a 1xx carries no framing, but its fields are still checked */
    assert_int_equal(resp("HTTP/1.1 103 Early Hints\r\nLink : x\r\n\r\n", false), SG_EBADMSG);
}

/*
 * The bad-request conformance cases restated for responses (what a faulty or hostile backend sends), plus the
 * response-only ones. "reject" means the gateway answers 502 (before any byte of the response reached the
 * client) and logs `why`; a chunked-body error found after the head is a reject too (the relay is cut).
 */
typedef struct respcase {
    const char *id;
    const char *raw;
    size_t n;
    bool head_request;
    const char *why;  /* NULL: accepted, with `body` */
    const char *body;
} respcase_t;

static const respcase_t resp_cases[] = {
    {"R-CL-DUP-DIFF", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\nhelloworld"), false,
     "repeated Content-Length", NULL},
    {"R-CL-DUP-SAME", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"), false,
     "repeated Content-Length", NULL},
    {"R-CL-LIST-DIFF", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5, 10\r\n\r\nhello"), false, "invalid Content-Length", NULL},
    {"R-CL-LIST-SAME", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"), false, "invalid Content-Length", NULL},
    {"R-CL-PLUS", RAW("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"), false, "invalid Content-Length", NULL},
    {"R-CL-NEGATIVE", RAW("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), false, "invalid Content-Length", NULL},
    {"R-CL-INNER-SPACE", RAW("HTTP/1.1 200 OK\r\nContent-Length: 4 2\r\n\r\n"), false, "invalid Content-Length", NULL},
    {"R-CL-EMPTY", RAW("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"), false, "invalid Content-Length", NULL},
    {"R-CL-OVERFLOW", RAW("HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000000\r\n\r\n"), false,
     "invalid Content-Length", NULL},
    {"R-CL-SP-BEFORE-COLON", RAW("HTTP/1.1 200 OK\r\nContent-Length : 4\r\n\r\nabcd"), false,
     "whitespace between a field name and ':'", NULL},
    {"R-TECL-DESYNC", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 30\r\n\r\n0\r\n\r\nX"), false,
     "both Content-Length and Transfer-Encoding", NULL},
    {"R-TECL-HEAD", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), true,
     "both Content-Length and Transfer-Encoding", NULL},
    {"R-CL-TE-IDENTITY", RAW("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: identity\r\n\r\nx"), false,
     "both Content-Length and Transfer-Encoding", NULL},
    {"R-TE-IDENTITY", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nx"), false,
     "invalid Transfer-Encoding (empty, identity, or chunked twice)", NULL},
    {"R-TE-GZIP-CHUNKED", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), false,
     "transfer coding other than chunked", NULL},
    {"R-TE-GZIP-CHUNKED-2", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "5\r\nhello\r\n0\r\n\r\n"), false, "transfer coding other than chunked", NULL},
    {"R-TE-NOT-FINAL", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"), false,
     "transfer coding other than chunked", NULL},
    {"R-TE-UNKNOWN", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: pigeons\r\n\r\n"), false,
     "transfer coding other than chunked", NULL},
    {"R-TE-CHUNKEDCHUNKED", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunkedchunked\r\n\r\n5\r\nWorld\r\n0\r\n\r\n"),
     false, "transfer coding other than chunked", NULL},
    {"R-TE-CHUNKED-TWICE", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "0\r\n\r\n"), false, "invalid Transfer-Encoding (empty, identity, or chunked twice)", NULL},
    {"R-TE-XCHUNKED-CL", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhello"), false,
     "both Content-Length and Transfer-Encoding", NULL},
    {"R-TE-VTAB", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: \x0b" "chunked\r\nContent-Length: 5\r\n\r\nhello"), false,
     "control character in a field value", NULL},
    {"R-TE-FORMFEED", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: \x0c" "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), false,
     "control character in a field value", NULL},
    {"R-TE-EMPTY", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\nhello"), false,
     "invalid Transfer-Encoding (empty, identity, or chunked twice)", NULL},
    {"R-TE-OBS-FOLD", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), false,
     "obs-fold or whitespace before a field name", NULL},
    {"R-TE-HTTP10", RAW("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), false,
     "Transfer-Encoding in an HTTP/1.0 response", NULL},
    {"R-CHUNK-SIZE-TRAILING-SP", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na \r\n0123456789\r\n0\r\n\r\n"),
     false, "invalid chunk size", NULL},
    {"R-CHUNK-BARE-SEMICOLON", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"), false,
     "invalid chunk extension", NULL},
    {"R-CHUNK-EXT-UNBALANCED-QUOTE", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                         "5;a=\"abc\";b=\"def; ghi\r\nhello\r\n0\r\n\r\n"), false,
     "invalid chunk extension", NULL},
    {"R-CHUNK-EXT-BAD-TOKEN", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;bad[=x\r\nhello\r\n0\r\n\r\n"),
     false, "invalid chunk extension", NULL},
    {"R-CHUNK-HEX-PREFIX", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"), false,
     "invalid chunk size", NULL},
    {"R-CHUNK-NEGATIVE", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n"), false,
     "invalid chunk size", NULL},
    {"R-CHUNK-UNDERSCORE", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\nhello world!!!!!\r\n0\r\n\r\n"),
     false, "invalid chunk size", NULL},
    {"R-CHUNK-OVERFLOW", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n0\r\n\r\n"),
     false, "chunk size too large", NULL},
    {"R-CHUNK-DATA-NO-CRLF", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n"), false,
     "chunk data not followed by CRLF", NULL},
    {"R-CHUNK-SIZE-BARE-CR", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"),
     false, "bare CR in chunked framing", NULL},
    {"R-CHUNK-SIZE-BARE-LF", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"), false,
     "bare LF in a chunk-size line", NULL},
    {"R-CHUNK-SPILL", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!!\r\n0\r\n\r\n"), false,
     "chunk data not followed by CRLF", NULL},
    {"R-TRAILER-OBS-FOLD", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n"), false,
     "invalid trailer field", NULL},
    {"R-SP-BEFORE-COLON", RAW("HTTP/1.1 200 OK\r\nX-Test : value\r\nContent-Length: 0\r\n\r\n"), false,
     "whitespace between a field name and ':'", NULL},
    {"R-WS-BEFORE-FIRST-HEADER", RAW("HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n"), false,
     "obs-fold or whitespace before a field name", NULL},
    {"R-OBS-FOLD", RAW("HTTP/1.1 200 OK\r\nX-A: 1\r\n\t2\r\nContent-Length: 0\r\n\r\n"), false,
     "obs-fold or whitespace before a field name", NULL},
    {"R-BAD-NAME-AT", RAW("HTTP/1.1 200 OK\r\nFo@: Failure\r\n\r\n"), false, "invalid character in a field name", NULL},
    {"R-HDR-BARE-CR-SEP", RAW("HTTP/1.1 200 OK\r\nFoo: 1\rBar: 2\r\n\r\n"), false, "bare CR in a field value", NULL},
    {"R-HDR-BARE-LF-SEP", RAW("HTTP/1.1 200 OK\r\nFoo: 1\nContent-Length: 0\r\n\r\n"), false,
     "bare LF in a field value", NULL},
    {"R-HDR-BARE-LF-END", RAW("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"), false, "bare LF in the header section",
     NULL},
    {"R-HDR-NUL-VALUE", RAW("HTTP/1.1 200 OK\r\nX-Test: val\x00ue\r\n\r\n"), false, "control character in a field value",
     NULL},
    {"R-DUMMY-AFTER-HEADERS", RAW("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\rZHTTP/1.1 200 OK\r\n\r\n"), false,
     "bare CR in the header section", NULL},
    {"R-STATUS-BARE-LF", RAW("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"), false, "bare LF in the status line", NULL},
    {"R-STATUS-BARE-CR", RAW("HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n"), false, "bare CR in the status line", NULL},
    {"R-STATUS-2DIGIT", RAW("HTTP/1.1 20 OK\r\n\r\n"), false, "malformed status code", NULL},
    {"R-STATUS-4DIGIT", RAW("HTTP/1.1 2000 OK\r\n\r\n"), false, "malformed status code", NULL},
    {"R-STATUS-099", RAW("HTTP/1.1 099 Low\r\n\r\n"), false, "status code out of range", NULL},
    {"R-STATUS-600", RAW("HTTP/1.1 600 High\r\n\r\n"), false, "status code out of range", NULL},
    {"R-VERSION-2", RAW("HTTP/2.0 200 OK\r\n\r\n"), false, "not an HTTP/1.0 or HTTP/1.1 status line", NULL},
    {"R-VERSION-LOWER", RAW("http/1.1 200 OK\r\n\r\n"), false, "not an HTTP/1.0 or HTTP/1.1 status line", NULL},
    {"R-LEADING-CRLF", RAW("\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), false,
     "not an HTTP/1.0 or HTTP/1.1 status line", NULL},
    {"R-HTTP09", RAW("hello\n"), false, "not an HTTP/1.0 or HTTP/1.1 status line", NULL},
    /* positive controls */
    {"R-OK-CHUNKED", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
     false, NULL, "hello world"},
    {"R-OK-CHUNKED-CASE", RAW("HTTP/1.1 200 OK\r\ntransfer-encoding: ChUnKeD\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), false, NULL,
     "hello"},
    {"R-OK-CHUNK-EXT", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=value;q=\"a b\"\r\nhello\r\n0\r\n\r\n"),
     false, NULL, "hello"},
    {"R-OK-TRAILER", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n"),
     false, NULL, "hello"},
    {"R-OK-CL", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), false, NULL, "hello"},
    {"R-OK-CLOSE", RAW("HTTP/1.1 200 OK\r\n\r\nhello"), false, NULL, "hello"},
    {"R-OK-NO-REASON", RAW("HTTP/1.1 200\r\nContent-Length: 5\r\n\r\nhello"), false, NULL, "hello"},
    {"R-OK-HEAD-CL", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true, NULL, ""},
    {"R-OK-304-CL", RAW("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"), false, NULL, ""},
    {"R-OK-OBS-TEXT-REASON", RAW("HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\nContent-Length: 2\r\n\r\nok"), false, NULL, "ok"},
};

/* What a backend's response comes to: NULL and the body when the gateway relays it, else why it is a 502. */
static const char *resp_outcome(const respcase_t *c, char *body, size_t *body_len)
{
    int r = respn(c->raw, c->n, c->head_request);
    *body_len = 0;
    if (r < 0) {
        assert_true(r != SG_EINCOMPLETE);
        assert_non_null(M.error);
        return M.error;
    }
    size_t h = (size_t)r, rest = c->n - h;
    if (M.body == SG_H1_BODY_NONE)
        return NULL;
    if (M.body == SG_H1_BODY_LENGTH) {
        assert_true(M.content_length <= rest);
        memcpy(body, c->raw + h, (size_t)M.content_length);
        *body_len = (size_t)M.content_length;
        return NULL;
    }
    if (M.body == SG_H1_BODY_UNTIL_CLOSE) {
        memcpy(body, c->raw + h, rest);
        *body_len = rest;
        return NULL;
    }
    char copy[1024], out2[1024];
    size_t used, used2, out2_len;
    assert_true(rest <= sizeof(copy));
    memcpy(copy, c->raw + h, rest);
    int rc = dechunk(copy, rest, 0, body, 1024, body_len, &used);
    int rc2 = dechunk(copy, rest, 1, out2, sizeof(out2), &out2_len, &used2); /* byte at a time agrees */
    assert_int_equal(rc, rc2);
    if (rc < 0) {
        /* dechunk() keeps its decoder local: run once more to read why */
        sg_h1_chunked_t d;
        size_t k = 0, pos = 0;
        sg_str_t data;
        sg_h1_chunked_init(&d);
        const char *p = guard_put(&G2, copy, rest);
        while (sg_h1_chunked_decode(&d, p + pos, rest - pos, &k, &data) == 1)
            pos += k;
        assert_non_null(d.error);
        return d.error;
    }
    assert_int_equal(rc, 2);
    return NULL;
}

static void response_conformance(void **state)
{
    (void)state;
    for (size_t i = 0; i < SG_ARRAY_LEN(resp_cases); i++) {
        const respcase_t *c = &resp_cases[i];
        char body[1024];
        size_t body_len;
        const char *why = resp_outcome(c, body, &body_len);
        if ((why == NULL) != (c->why == NULL) || (why && strcmp(why, c->why) != 0))
            fail_msg("%s: %s, want %s", c->id, why ? why : "accepted", c->why ? c->why : "accepted");
        if (c->body && (body_len != strlen(c->body) || memcmp(body, c->body, body_len) != 0))
            fail_msg("%s: body '%.*s', want '%s'", c->id, (int)body_len, body, c->body);
    }
}

/* Extensions may not outweigh the data: 1-byte chunks with 4 KiB of extension each fail after 16 KiB. */
static void chunked_extension_budget(void **state)
{
    (void)state;
    static char in[64 * 1024];
    size_t n = 0, ext = SG_H1_MAX_CHUNK_LINE - 8;
    int chunks = 0;
    while (n + ext + 16 < sizeof(in)) {
        in[n++] = '1';
        in[n++] = ';';
        in[n++] = 'e';
        in[n++] = '=';
        memset(in + n, 'v', ext - 3);
        n += ext - 3;
        memcpy(in + n, "\r\nx\r\n", 5);
        n += 5;
        chunks++;
    }
    char out[256];
    size_t outlen, used;
    int rc = dechunk(in, n, 0, out, sizeof(out), &outlen, &used);
    assert_int_equal(rc, SG_EBADMSG);
    assert_true(outlen <= 5); /* stopped within the fifth chunk's extension */
    assert_true(used < (size_t)(5 * (ext + 6)));
    /* the same extensions on big chunks are fine: the budget grows with the data */
    n = 0;
    static char big[200 * 1024];
    for (int k = 0; k < 8; k++) {
        n += (size_t)snprintf(big + n, sizeof(big) - n, "1000;e=");
        memset(big + n, 'v', ext - 3);
        n += ext - 3;
        memcpy(big + n, "\r\n", 2);
        n += 2;
        memset(big + n, 'd', 0x1000);
        n += 0x1000;
        memcpy(big + n, "\r\n", 2);
        n += 2;
    }
    memcpy(big + n, "0\r\n\r\n", 5);
    n += 5;
    static char out2[64 * 1024];
    rc = dechunk(big, n, 0, out2, sizeof(out2), &outlen, &used);
    assert_int_equal(rc, 2);
    assert_int_equal(outlen, 8 * 0x1000);
}

static void response_limits(void **state)
{
    (void)state;
    static char buf[SG_H1_MAX_REQLINE + SG_H1_MAX_HEAD_BYTES + 64];
    size_t n = 0;
    /* a status line of exactly the limit passes, also while its LF is missing (found by the fuzzer) */
    memcpy(buf, "HTTP/1.1 101 ", 13);
    memset(buf + 13, 'r', SG_H1_MAX_REQLINE - 13);
    memcpy(buf + SG_H1_MAX_REQLINE, "\r\n\r\n", 4);
    assert_int_equal(respn(buf, SG_H1_MAX_REQLINE + 4, false), SG_H1_MAX_REQLINE + 4);
    for (size_t k = SG_H1_MAX_REQLINE - 2; k < SG_H1_MAX_REQLINE + 4; k++)
        assert_int_equal(respn(buf, k, false), SG_EINCOMPLETE);
    memcpy(buf, "HTTP/1.1 200 ", 13);
    n = 13;
    memset(buf + n, 'r', SG_H1_MAX_REQLINE);
    n += SG_H1_MAX_REQLINE;
    assert_int_equal(respn(buf, n, false), SG_EHDRTOOBIG);
    memcpy(buf + n, "\r\n\r\n", 4);
    assert_int_equal(respn(buf, n + 4, false), SG_EHDRTOOBIG);
    n = 13 + 2;
    memcpy(buf + 13, "\r\n", 2);
    memcpy(buf + n, "X: ", 3);
    memset(buf + n + 3, 'v', SG_H1_MAX_HEAD_BYTES);
    assert_int_equal(respn(buf, n + 3 + SG_H1_MAX_HEAD_BYTES, false), SG_EHDRTOOBIG);
}

/* ------------------------------------------------------------------ chunked decoder */

typedef struct chunk_case {
    const char *in;
    size_t n;
    int rc;           /* final result, fed all at once or in small pieces */
    const char *body; /* data delivered (also when incomplete) */
    size_t body_n;
    size_t used;      /* when rc == 2: where the next message starts; 0 = all of in */
} chunk_case_t;

#define CIN(s) (s), sizeof(s) - 1
#define BODY(s) (s), sizeof(s) - 1
#define NOBODY NULL, 0

static const chunk_case_t chunk_cases[] = {
    {CIN("0\r\n\r\n"), 2, BODY(""), 0},
    {CIN("5\r\nhello\r\n0\r\n\r\n"), 2, BODY("hello"), 0},
    {CIN("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), 2, BODY("hello world"), 26},
    {CIN("A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"), 2, BODY("0123456789abcdefghij"), 0},
    {CIN("0005\r\nhello\r\n000\r\n\r\n"), 2, BODY("hello"), 0},
    {CIN("5;a=b;c;d=\"q \\\" ;\\\\ v\\\x80\"\r\nhello\r\n0;last\r\n\r\n"), 2, BODY("hello"), 0},
    {CIN("5;ext=value\r\nhello\r\n0\r\n\r\n"), 2, BODY("hello"), 0},
    {CIN("5\r\nhello\r\n0\r\nX-Checksum: abc\r\nX-B:\r\nX-C:\t\x80 v \r\n\r\n"), 2, BODY("hello"), 0},
    {CIN("1\r\n\0\r\n0\r\n\r\n"), 2, BODY("\0"), 0},
    /* incomplete */
    {CIN("5\r\nhel"), 0, BODY("hel"), 0},
    {CIN("5\r\nhello\r\n0\r\n"), 0, BODY("hello"), 0},
    {CIN("5\r\nhello\r\n0\r\nX: y\r\n"), 0, BODY("hello"), 0},
    {CIN("fffffffffffffff\r\n"), 0, BODY(""), 0}, /* 2^60 - 1: accepted size */
    /* errors */
    {CIN("\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN(";a\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("1000000000000000\r\n"), SG_EBADMSG, NOBODY, 0}, /* 2^60 */
    {CIN("10000000000000000000\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN(" 5\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5 \r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5\t\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5 ;a\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5; a\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;a =b\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;a=\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;a=b c\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;a=\"b\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;a=\"\\\r\"\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5;;\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5\rhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5\r\nhello\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5\r\nhello\r0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5\r\nhelloX\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("5\r\nhell\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0}, /* "hell\r" is the data; '\n' is not CR */
    {CIN("0\r\n\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("0\r\n\r\r"), SG_EBADMSG, NOBODY, 0},
    {CIN("0\r\nX: y\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("0\r\nX: y\r\n z\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("0\r\nX : y\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("0\r\n: y\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("0\r\nX: \x7f\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("0\r\nX\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("+5\r\nhello\r\n0\r\n\r\n"), SG_EBADMSG, NOBODY, 0},
    {CIN("g\r\n"), SG_EBADMSG, NOBODY, 0},
};

static void chunked_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < SG_ARRAY_LEN(chunk_cases); i++) {
        const chunk_case_t *c = &chunk_cases[i];
        for (size_t step = 0; step <= 3; step++) {
            char out[256];
            size_t out_len, used;
            int rc = dechunk(c->in, c->n, step, out, sizeof(out), &out_len, &used);
            if (rc != c->rc)
                fail_msg("chunk case %zu step %zu: rc %d want %d", i, step, rc, c->rc);
            if (c->body && (out_len != c->body_n || memcmp(out, c->body, out_len) != 0))
                fail_msg("chunk case %zu step %zu: body '%.*s'", i, step, (int)out_len, out);
            size_t want_used = c->used ? c->used : c->n;
            if (rc == 2 && used != want_used)
                fail_msg("chunk case %zu step %zu: used %zu want %zu", i, step, used, want_used);
        }
    }
}

/* Every split of a rich body into two calls gives the same data and the same end. */
static void chunked_every_split(void **state)
{
    (void)state;
    const char in[] = "3;x=\"y\"\r\nabc\r\n10\r\n0123456789abcdef\r\n1\r\nZ\r\n0\r\nT: 1\r\n\r\nNEXT";
    const size_t n = sizeof(in) - 1;
    for (size_t split = 0; split <= n; split++) {
        sg_h1_chunked_t d;
        sg_h1_chunked_init(&d);
        char out[64];
        size_t out_len = 0, base = 0;
        int rc = 0;
        for (int part = 0; part < 2 && rc != 2; part++) {
            size_t from = part ? split : 0, to = part ? n : split;
            const char *p = guard_put(&G2, in + from, to - from);
            size_t pos = 0;
            for (;;) {
                size_t c;
                sg_str_t data;
                rc = sg_h1_chunked_decode(&d, p + pos, to - from - pos, &c, &data);
                pos += c;
                if (rc == 1) {
                    memcpy(out + out_len, data.p, data.n);
                    out_len += data.n;
                    continue;
                }
                break;
            }
            assert_true(rc == 0 || rc == 2);
            base = from + pos;
        }
        assert_int_equal(rc, 2);
        assert_int_equal(base, n - 4);
        assert_int_equal(out_len, 3 + 16 + 1);
        assert_memory_equal(out, "abc0123456789abcdefZ", out_len);
    }
}

static void chunked_state(void **state)
{
    (void)state;
    sg_h1_chunked_t d;
    size_t c;
    sg_str_t data;

    /* data is returned in pieces, stopping at the chunk end */
    sg_h1_chunked_init(&d);
    const char *p = guard_put_str(&G2, "3\r\nabcdef");
    assert_int_equal(sg_h1_chunked_decode(&d, p, 9, &c, &data), 1);
    assert_int_equal(c, 6);
    assert_true(data.p == p + 3 && data.n == 3);
    assert_int_equal(sg_h1_chunked_decode(&d, p + 6, 3, &c, &data), SG_EBADMSG);
    assert_int_equal(c, 0);
    /* the error sticks */
    assert_int_equal(sg_h1_chunked_decode(&d, "\r\n", 2, &c, &data), SG_EBADMSG);
    assert_int_equal(sg_h1_chunked_decode(&d, "", 0, &c, &data), SG_EBADMSG);

    /* after the end, nothing more is consumed */
    sg_h1_chunked_init(&d);
    p = guard_put_str(&G2, "0\r\n\r\nX");
    assert_int_equal(sg_h1_chunked_decode(&d, p, 6, &c, &data), 2);
    assert_int_equal(c, 5);
    assert_int_equal(sg_h1_chunked_decode(&d, p + 5, 1, &c, &data), 2);
    assert_int_equal(c, 0);
    assert_int_equal(sg_h1_chunked_decode(&d, p, 0, &c, &data), 2);

    /* empty input: nothing to do */
    sg_h1_chunked_init(&d);
    assert_int_equal(sg_h1_chunked_decode(&d, p, 0, &c, &data), 0);
    assert_int_equal(c, 0);

    /* a huge chunk is streamed, never buffered */
    sg_h1_chunked_init(&d);
    p = guard_put_str(&G2, "fffffffffffffff\r\nxyz");
    assert_int_equal(sg_h1_chunked_decode(&d, p, 20, &c, &data), 1);
    assert_int_equal(data.n, 3);
    assert_int_equal(d.remaining, (UINT64_C(1) << 60) - 1 - 3);
}

static void chunked_limits(void **state)
{
    (void)state;
    static char buf[SG_H1_MAX_TRAILER_BYTES + 64];
    char out[16];
    size_t out_len, used;

    /* chunk-size line: SG_H1_MAX_CHUNK_LINE bytes fit, one more does not */
    memcpy(buf, "1;x=", 4);
    memset(buf + 4, 'a', SG_H1_MAX_CHUNK_LINE - 4);
    memcpy(buf + SG_H1_MAX_CHUNK_LINE, "\r\nZ\r\n0\r\n\r\n", 10);
    assert_int_equal(dechunk(buf, SG_H1_MAX_CHUNK_LINE + 10, 0, out, sizeof(out), &out_len, &used), 2);
    assert_int_equal(out_len, 1);
    memset(buf + 4, 'a', SG_H1_MAX_CHUNK_LINE - 3);
    memcpy(buf + SG_H1_MAX_CHUNK_LINE + 1, "\r\nZ\r\n0\r\n\r\n", 10);
    assert_int_equal(dechunk(buf, SG_H1_MAX_CHUNK_LINE + 11, 0, out, sizeof(out), &out_len, &used), SG_EBADMSG);
    /* leading zeros count too */
    memset(buf, '0', SG_H1_MAX_CHUNK_LINE + 1);
    assert_int_equal(dechunk(buf, SG_H1_MAX_CHUNK_LINE + 1, 0, out, sizeof(out), &out_len, &used), SG_EBADMSG);
    assert_int_equal(dechunk(buf, SG_H1_MAX_CHUNK_LINE, 7, out, sizeof(out), &out_len, &used), 0);

    /* trailer section: SG_H1_MAX_TRAILER_BYTES in all, final CRLF included */
    size_t n = 0;
    memcpy(buf, "0\r\nX: ", 6);
    n = 6;
    size_t vlen = SG_H1_MAX_TRAILER_BYTES - 3 - 2 - 2;
    memset(buf + n, 'v', vlen);
    n += vlen;
    memcpy(buf + n, "\r\n\r\n", 4);
    n += 4;
    assert_int_equal(dechunk(buf, n, 0, out, sizeof(out), &out_len, &used), 2);
    assert_int_equal(used, n);
    memmove(buf + n - 3, buf + n - 4, 4);
    buf[n - 4] = 'v';
    assert_int_equal(dechunk(buf, n + 1, 0, out, sizeof(out), &out_len, &used), SG_EBADMSG);
    assert_int_equal(dechunk(buf, n + 1, 1, out, sizeof(out), &out_len, &used), SG_EBADMSG);
}

static void chunk_head_writer(void **state)
{
    (void)state;
    char out[20];
    assert_int_equal(sg_h1_chunk_head(out, 0), 3);
    assert_memory_equal(out, "0\r\n", 3);
    assert_int_equal(sg_h1_chunk_head(out, 255), 4);
    assert_memory_equal(out, "ff\r\n", 4);
    assert_int_equal(sg_h1_chunk_head(out, 0x10a0), 6);
    assert_memory_equal(out, "10a0\r\n", 6);
    assert_int_equal(sg_h1_chunk_head(out, SIZE_MAX), 18);
    assert_memory_equal(out, "ffffffffffffffff\r\n", 18);

    /* what we write, we read back */
    char msg[64];
    size_t k = sg_h1_chunk_head(msg, 11);
    memcpy(msg + k, "hello world\r\n", 13);
    k += 13;
    k += sg_h1_chunk_head(msg + k, 0);
    memcpy(msg + k, "\r\n", 2);
    k += 2;
    char body[32];
    size_t body_len, used;
    assert_int_equal(dechunk(msg, k, 0, body, sizeof(body), &body_len, &used), 2);
    assert_int_equal(used, k);
    assert_memory_equal(body, "hello world", 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conformance_cases),
        cmocka_unit_test(conformance_long_header_value),
        cmocka_unit_test(request_basic),
        cmocka_unit_test(request_line_syntax),
        cmocka_unit_test(request_line_endings),
        cmocka_unit_test(request_target_forms),
        cmocka_unit_test(header_syntax),
        cmocka_unit_test(long_runs_every_offset),
        cmocka_unit_test(find_headers),
        cmocka_unit_test(framing_content_length),
        cmocka_unit_test(framing_transfer_encoding),
        cmocka_unit_test(host_rules),
        cmocka_unit_test(limits_request_line),
        cmocka_unit_test(limits_header_section),
        cmocka_unit_test(connection_flags),
        cmocka_unit_test(incomplete_every_prefix),
        cmocka_unit_test(response_status_line),
        cmocka_unit_test(response_framing),
        cmocka_unit_test(response_limits),
        cmocka_unit_test(response_conformance),
        cmocka_unit_test(chunked_extension_budget),
        cmocka_unit_test(chunked_cases),
        cmocka_unit_test(chunked_every_split),
        cmocka_unit_test(chunked_state),
        cmocka_unit_test(chunked_limits),
        cmocka_unit_test(chunk_head_writer),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
