/* fuzz_wsframe.c: libFuzzer harness for codec/ws.c: the frame-boundary tracker and the upgrade-request checks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ws.h"

/*
 * Input: byte 0 picks a split position and the mode, the rest is the data.
 *  - Tracker: the stream is fed whole, split in two at that position, and one byte at a time. Each way must find
 *    the same frame ends, and they must equal those of a naive whole-input model of RFC 6455 5.2 written below.
 *    A close frame that the tracker said fits between frames is fed too: it must be one frame, ending where it
 *    was put.
 *  - Upgrade checks (odd byte 0): the data is parsed as a request head; an accepted head is classified both as
 *    HTTP/1.1 and as an HTTP/2 extended CONNECT; the answer must be 0, 1, 400 or 426, with a reason exactly when
 *    it refuses, and a valid handshake's key must give a 28-character accept.
 * Chunks are copied into exact-size allocations so that ASan catches a read past their end.
 */

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                    \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENDS 4096

/* The model: frame end offsets of the whole input; *lost when a 64-bit length has its top bit set. */
static size_t model(const uint8_t *p, size_t n, size_t *ends, bool *lost, size_t *last)
{
    size_t k = 0, o = 0;
    *lost = false;
    *last = 0;
    while (o < n) {
        if (n - o < 2)
            break;
        size_t hl = 2 + ((p[o + 1] & 0x80) ? 4 : 0);
        uint8_t l7 = p[o + 1] & 0x7f;
        hl += l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
        if (n - o < hl)
            break;
        uint64_t len = l7;
        if (l7 == 126)
            len = ((uint64_t)p[o + 2] << 8) | p[o + 3];
        if (l7 == 127) {
            len = 0;
            for (int j = 0; j < 8; j++)
                len = (len << 8) | p[o + 2 + j];
            if (len >> 63) {
                *lost = true;
                break;
            }
        }
        if (len > n - o - hl)
            break;
        o += hl + (size_t)len;
        *last = o;
        if (k < MAX_ENDS)
            ends[k] = o;
        k++;
    }
    return k;
}

static void feed_copy(sg_ws_track_t *t, const uint8_t *p, size_t n, size_t *fb)
{
    uint8_t *c = malloc(n ? n : 1);
    if (c == NULL)
        abort();
    memcpy(c, p, n);
    sg_ws_track_feed(t, c, n, fb);
    free(c);
}

static void tracker(const uint8_t *p, size_t n, size_t split)
{
    static size_t ends[MAX_ENDS];
    bool lost;
    size_t last;
    size_t k = model(p, n, ends, &lost, &last);
    size_t kk = k < MAX_ENDS ? k : MAX_ENDS;

    sg_ws_track_t whole, two, bytes;
    size_t fb;
    sg_ws_track_init(&whole);
    feed_copy(&whole, p, n, &fb);
    CHECK(whole.frames == k);
    CHECK(whole.lost == lost);
    CHECK(fb == (k > 0 ? ends[0] : SIZE_MAX));
    CHECK(sg_ws_track_at_boundary(&whole) == (!lost && last == n));

    if (split > n)
        split = n;
    sg_ws_track_init(&two);
    feed_copy(&two, p, split, &fb);
    size_t fb2;
    feed_copy(&two, p + split, n - split, &fb2);
    size_t want = SIZE_MAX;
    for (size_t j = 0; j < kk; j++)
        if (ends[j] > split) {
            want = ends[j] - split;
            break;
        }
    if (kk == k || want != SIZE_MAX)
        CHECK(fb2 == want);
    CHECK(two.frames == whole.frames && two.lost == whole.lost && two.left == whole.left && two.have == whole.have);

    sg_ws_track_init(&bytes);
    size_t e = 0;
    for (size_t i = 0; i < n && n <= 4096; i++) {
        feed_copy(&bytes, p + i, 1, &fb);
        bool at_end = e < kk && ends[e] == i + 1;
        CHECK((fb == 1) == at_end);
        if (at_end)
            e++;
    }
    if (n <= 4096)
        CHECK(bytes.frames == whole.frames && bytes.lost == whole.lost);

    /* A close frame put where the tracker says the stream sits between frames is one more frame. */
    if (sg_ws_track_at_boundary(&whole)) {
        uint8_t f[SG_WS_CLOSE_MAX];
        size_t cn = sg_ws_close_frame(f, sizeof(f), SG_WS_GOING_AWAY, "going away", (split & 1) != 0, (uint32_t)n);
        CHECK(cn > 0);
        uint64_t before = whole.frames;
        feed_copy(&whole, f, cn, &fb);
        CHECK(fb == cn && whole.frames == before + 1 && whole.close_seen && sg_ws_track_at_boundary(&whole));
    }
}

static void upgrade(const uint8_t *p, size_t n)
{
    static sg_h1_msg_t msg;
    char *c = malloc(n ? n : 1);
    if (c == NULL)
        abort();
    memcpy(c, p, n);
    int rc = sg_h1parse_request(c, n, &msg);
    if (rc > 0) {
        for (int h2 = 0; h2 < 2; h2++) {
            const char *why = (const char *)1;
            int r = sg_ws_check_upgrade(&msg, h2 != 0, &why);
            CHECK(r == 0 || r == 1 || r == 400 || r == 426);
            CHECK((r >= 400) == (why != NULL));
            if (r == 1 && !h2) {
                size_t from = 0;
                const sg_h1_header_t *k = sg_h1parse_find(&msg, "sec-websocket-key", &from);
                CHECK(k != NULL && k->value.n == SG_WS_KEY_LEN);
                char acc[SG_WS_ACCEPT_LEN + 1];
                CHECK(sg_ws_accept(k->value, acc) == 0 && strlen(acc) == SG_WS_ACCEPT_LEN);
            }
        }
    }
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t b = data[0];
    if (b & 1)
        upgrade(data + 1, size - 1);
    else
        tracker(data + 1, size - 1, (size_t)(b >> 1) * 7);
    return 0;
}
