/* test_ws.c: unit tests of codec/ws.c: the handshake checks (RFC 6455 4.2.1, RFC 8441), the accept key (the RFC's
 * own example), the frame-boundary tracker fed whole, byte by byte and split, and close frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/ws.h"
#include "guard.h"

static int check_req(const char *head, bool h2, const char **why)
{
    static sg_h1_msg_t msg;
    int rc = sg_h1parse_request(head, strlen(head), &msg);
    assert_true(rc > 0);
    if (h2)
        msg.method = SG_STR("CONNECT"); /* HTTP/2 extended CONNECT, as h2.c presents it (the h1 parser wants GET) */
    return sg_ws_check_upgrade(&msg, h2, why);
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static void handshake_checks(void **st)
{
    (void)st;
    const char *why;
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", false, &why), 1);
    /* tokens in lists, any case */
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: foo, WebSocket\r\nConnection: keep-alive, UPGRADE\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", false, &why), 1);
    /* not a WebSocket handshake: plain requests, h2c, Connection: upgrade alone, HTTP/1.0 */
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, &why), 0);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
                               false, &why), 0);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n", false, &why), 0);
    assert_int_equal(check_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", false, &why), 0);
    assert_int_equal(check_req("GET /c HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", false, &why), 0);
    /* broken ones */
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n", false, &why), 400);
    assert_non_null(strstr(why, "Sec-WebSocket-Key"));
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n", false, &why), 400);
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                               false, &why), 400); /* R carries bits past the 16th byte */
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Key: " KEY "\r\n"
                               "Sec-WebSocket-Version: 13\r\n\r\n", false, &why), 400);
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\n\r\n", false, &why), 400);
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n", false, &why), 426);
    assert_int_equal(check_req("POST /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n", false, &why), 400);
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\nContent-Length: 3\r\n\r\n",
                               false, &why), 400);
    /* RFC 8441: no key, the version still counts */
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Version: 13\r\n\r\n", true, &why), 1);
    assert_int_equal(check_req("GET /c HTTP/1.1\r\nHost: a\r\n\r\n", true, &why), 400);
}

static void accept_key(void **st)
{
    (void)st;
    char out[SG_WS_ACCEPT_LEN + 1];
    assert_int_equal(sg_ws_accept(SG_STR(KEY), out), 0); /* RFC 6455 1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    uint8_t rnd[16];
    for (int i = 0; i < 16; i++)
        rnd[i] = (uint8_t)(i * 37 + 1);
    char key[SG_WS_KEY_LEN + 1];
    sg_ws_make_key(rnd, key);
    assert_int_equal(strlen(key), SG_WS_KEY_LEN);
    /* a key we make passes our own check */
    char head[256];
    snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key);
    const char *why;
    assert_int_equal(check_req(head, false, &why), 1);
}

/* Builds a frame: opcode, fin, payload length n (payload bytes 'x'), masked or not; returns its length. */
static size_t mkframe(uint8_t *out, uint8_t op, bool fin, uint64_t n, bool masked)
{
    size_t o = 0;
    out[o++] = (uint8_t)((fin ? 0x80 : 0) | op);
    uint8_t m = masked ? 0x80 : 0;
    if (n < 126) {
        out[o++] = (uint8_t)(m | n);
    } else if (n < 65536) {
        out[o++] = m | 126;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[o++] = (uint8_t)(n >> (8 * i));
    }
    if (masked) {
        memcpy(out + o, "\x11\x22\x33\x44", 4);
        o += 4;
    }
    memset(out + o, 'x', n);
    return o + n;
}

static void tracker(void **st)
{
    (void)st;
    static uint8_t buf[300000];
    size_t ends[8], k = 0, o = 0;
    o += mkframe(buf + o, 1, true, 5, true);
    ends[k++] = o;
    o += mkframe(buf + o, 2, false, 200, false); /* 16-bit length, fragment */
    ends[k++] = o;
    o += mkframe(buf + o, 9, true, 0, true);     /* ping between fragments */
    ends[k++] = o;
    o += mkframe(buf + o, 0, true, 70000, true); /* 64-bit length, continuation */
    ends[k++] = o;
    o += mkframe(buf + o, 8, true, 2, false);
    ends[k++] = o;

    sg_guard_t g;
    guard_init(&g, sizeof(buf));
    /* whole: the first boundary is the first frame's end */
    sg_ws_track_t t;
    size_t fb;
    sg_ws_track_init(&t);
    assert_true(sg_ws_track_at_boundary(&t));
    sg_ws_track_feed(&t, (const uint8_t *)guard_put(&g, (const char *)buf, o), o, &fb);
    assert_int_equal(fb, ends[0]);
    assert_true(sg_ws_track_at_boundary(&t));
    assert_int_equal(t.frames, 5);
    assert_true(t.close_seen);
    /* byte by byte: at a boundary exactly at each frame end */
    sg_ws_track_init(&t);
    size_t e = 0;
    for (size_t i = 0; i < o; i++) {
        sg_ws_track_feed(&t, (const uint8_t *)guard_put(&g, (const char *)buf + i, 1), 1, &fb);
        bool at_end = e < k && i + 1 == ends[e];
        assert_int_equal(fb == 1, at_end);
        assert_int_equal(sg_ws_track_at_boundary(&t), at_end);
        if (at_end)
            e++;
    }
    /* every split point: the first boundary of the second piece is the next frame end after the split */
    for (size_t s = 1; s < o; s += 997) {
        sg_ws_track_init(&t);
        sg_ws_track_feed(&t, (const uint8_t *)guard_put(&g, (const char *)buf, s), s, &fb);
        sg_ws_track_feed(&t, (const uint8_t *)guard_put(&g, (const char *)buf + s, o - s), o - s, &fb);
        size_t want = SIZE_MAX;
        for (size_t j = 0; j < k; j++)
            if (ends[j] > s) {
                want = ends[j] - s;
                break;
            }
        assert_int_equal(fb, want);
        assert_int_equal(t.frames, 5);
    }
    /* a 64-bit length with its top bit set: lost for good */
    uint8_t bad[10] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    sg_ws_track_init(&t);
    sg_ws_track_feed(&t, (const uint8_t *)guard_put(&g, (const char *)bad, 10), 10, &fb);
    assert_true(t.lost);
    assert_false(sg_ws_track_at_boundary(&t));
    assert_int_equal(fb, SIZE_MAX);
    guard_fini(&g);
}

static void close_frames(void **st)
{
    (void)st;
    uint8_t f[SG_WS_CLOSE_MAX];
    size_t n = sg_ws_close_frame(f, sizeof(f), 1001, "going away", false, 0);
    assert_int_equal(n, 2 + 2 + 10);
    assert_int_equal(f[0], 0x88);
    assert_int_equal(f[1], 12);
    assert_int_equal(f[2], 0x03);
    assert_int_equal(f[3], 0xe9);
    assert_memory_equal(f + 4, "going away", 10);
    n = sg_ws_close_frame(f, sizeof(f), 1001, "going away", true, 0x01020304);
    assert_int_equal(n, 2 + 4 + 12);
    assert_int_equal(f[1], 0x80 | 12);
    uint8_t m[4] = {1, 2, 3, 4};
    assert_int_equal(f[6] ^ m[0], 0x03);
    assert_int_equal(f[7] ^ m[1], 0xe9);
    assert_int_equal(f[8] ^ m[2], 'g');
    /* the tracker sees one frame */
    sg_ws_track_t t;
    size_t fb;
    sg_ws_track_init(&t);
    sg_ws_track_feed(&t, f, n, &fb);
    assert_int_equal(fb, n);
    assert_true(t.close_seen);
    assert_int_equal(sg_ws_close_frame(f, 5, 1001, "going away", false, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_checks),
        cmocka_unit_test(accept_key),
        cmocka_unit_test(tracker),
        cmocka_unit_test(close_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
