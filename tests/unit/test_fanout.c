/* test_fanout.c: the replay ring (bounds by count, bytes and age; lookup by id; eviction edges; the base id) and the
 * sharing key and credentials rule of shared SSE streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fanout/key.h"
#include "fanout/ring.h"

/* Pushes event "id: <id>\ndata: x\n\n" (len bytes of data at least) with that id set. */
static void push(sg_ring_t *r, uint64_t now, const char *id, size_t len)
{
    char buf[4096];
    int n = snprintf(buf, sizeof(buf), "id: %s\ndata: ", id);
    size_t k = (size_t)n;
    while (k < len && k < sizeof(buf) - 3)
        buf[k++] = 'x';
    buf[k++] = '\n';
    buf[k++] = '\n';
    sg_event_t *ev = sg_event_new(buf, k);
    assert_non_null(ev);
    assert_int_equal(sg_ring_push(r, now, ev, id, strlen(id), true, true), 0);
    sg_event_unref(ev);
}

static void push_noid(sg_ring_t *r, uint64_t now, const char *inherited)
{
    sg_event_t *ev = sg_event_new("data: y\n\n", 9);
    assert_int_equal(sg_ring_push(r, now, ev, inherited, strlen(inherited), false, true), 0);
    sg_event_unref(ev);
}

static int64_t find(const sg_ring_t *r, const char *id)
{
    return sg_ring_find(r, id, strlen(id));
}

static void test_count_bound_and_edges(void **state)
{
    (void)state;
    sg_ring_t r;
    sg_ring_init(&r, 5, 1 << 20, 0);
    assert_int_equal(find(&r, "1"), -1);
    char id[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(id, sizeof(id), "%d", i);
        push(&r, 0, id, 20);
    }
    assert_int_equal(r.count, 5);
    assert_int_equal(r.head_seq, 10);
    assert_int_equal(sg_ring_oldest(&r), 5);
    /* Held: 6..10 (seq 5..9). After 10: nothing to replay (head). After 7: seq 7 (event 8). */
    assert_int_equal(find(&r, "10"), 10);
    assert_int_equal(find(&r, "7"), 7);
    assert_int_equal(find(&r, "6"), 6);
    /* 5 left last: every event after it is still held, so the ring can still replay after it. */
    assert_int_equal(find(&r, "5"), 5);
    /* 4 left before 5: too old. Unknown ids count as too old. */
    assert_int_equal(find(&r, "4"), -1);
    assert_int_equal(find(&r, "11"), -1);
    assert_int_equal(find(&r, ""), -1);
    assert_null(sg_ring_get(&r, 4));
    assert_non_null(sg_ring_get(&r, 5));
    assert_null(sg_ring_get(&r, 10));
    assert_memory_equal(sg_ring_get(&r, 9)->ev->data, "id: 10\n", 7);
    sg_ring_free(&r);
}

static void test_bytes_bound(void **state)
{
    (void)state;
    sg_ring_t r;
    sg_ring_init(&r, 1000, 1000, 0);
    char id[16];
    for (int i = 1; i <= 10; i++) {
        snprintf(id, sizeof(id), "%d", i);
        push(&r, 0, id, 298); /* 300 bytes each */
    }
    assert_true(r.bytes <= 1000);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.bytes, 900);
    assert_int_equal(find(&r, "7"), 7);
    assert_int_equal(find(&r, "6"), -1);
    assert_int_equal(sg_ring_bytes_from(&r, 8), 600);
    assert_int_equal(sg_ring_bytes_from(&r, 10), 0);
    /* An event alone larger than the bound empties the ring: replay across it would have a gap. */
    push(&r, 0, "big", 1500);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.head_seq, 11);
    assert_int_equal(find(&r, "10"), -1);
    assert_int_equal(find(&r, "big"), -1);
    push(&r, 0, "12", 10);
    assert_int_equal(find(&r, "12"), 12);
    assert_int_equal(sg_ring_oldest(&r), 11);
    sg_ring_free(&r);
}

static void test_age_bound(void **state)
{
    (void)state;
    sg_ring_t r;
    sg_ring_init(&r, 100, 1 << 20, 1000);
    push(&r, 0, "a", 10);
    push(&r, 500, "b", 10);
    push(&r, 900, "c", 10);
    sg_ring_expire(&r, 1000);
    assert_int_equal(r.count, 3); /* exactly maxAge old is still held */
    sg_ring_expire(&r, 1001);
    assert_int_equal(r.count, 2);
    assert_int_equal(find(&r, "a"), 1); /* the base: everything after a is held */
    sg_ring_expire(&r, 1901);
    assert_int_equal(r.count, 0);
    assert_int_equal(find(&r, "c"), 3);
    assert_int_equal(find(&r, "b"), -1);
    sg_ring_free(&r);
}

static void test_ids_inherited_and_repeated(void **state)
{
    (void)state;
    sg_ring_t r;
    sg_ring_init(&r, 3, 1 << 20, 0);
    push(&r, 0, "a", 10);
    push_noid(&r, 0, "a");
    push_noid(&r, 0, "a");
    /* A client at either id-less event reports "a": it is replayed from the event that carried a (never a loss). */
    assert_int_equal(find(&r, "a"), 1);
    push(&r, 0, "b", 10); /* evicts the event that carried a: everything after it is held, a is the base */
    assert_int_equal(find(&r, "a"), 1);
    push(&r, 0, "b", 10); /* evicts an id-less event: a client at it would miss it, so a is too old now */
    assert_int_equal(find(&r, "a"), -1);
    assert_int_equal(find(&r, "b"), 5); /* a repeated id: after the newest event carrying it */
    /* A truncated id is never matched. */
    char long_id[SG_SSE_MAX_ID + 10];
    memset(long_id, 'z', sizeof(long_id));
    sg_event_t *ev = sg_event_new("id: zz\n\n", 8);
    assert_int_equal(sg_ring_push(&r, 0, ev, long_id, SG_SSE_MAX_ID, true, false), 0);
    sg_event_unref(ev);
    assert_int_equal(sg_ring_find(&r, long_id, SG_SSE_MAX_ID), -1);
    assert_int_equal(sg_ring_find(&r, long_id, sizeof(long_id)), -1);
    sg_ring_free(&r);
}

static void test_base_and_no_ring(void **state)
{
    (void)state;
    sg_ring_t r;
    sg_ring_init(&r, 10, 1 << 20, 0);
    sg_ring_set_base(&r, "41", 2);
    assert_int_equal(find(&r, "41"), 0);
    push(&r, 0, "42", 10);
    assert_int_equal(find(&r, "41"), 0);
    assert_int_equal(find(&r, "42"), 1);
    sg_ring_free(&r);
    /* maxEvents 0: nothing is kept, every id is too old, sequence numbers still advance. */
    sg_ring_init(&r, 0, 1 << 20, 0);
    push(&r, 0, "1", 10);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.head_seq, 1);
    assert_int_equal(find(&r, "1"), -1);
    sg_ring_free(&r);
}

static void test_events_are_shared_by_reference(void **state)
{
    (void)state;
    sg_ring_t r;
    sg_ring_init(&r, 2, 1 << 20, 0);
    sg_event_t *ev = sg_event_new("data: q\n\n", 9);
    assert_int_equal(sg_ring_push(&r, 0, ev, "", 0, false, true), 0);
    assert_int_equal(ev->refs, 2);
    push(&r, 0, "x", 5);
    push(&r, 0, "y", 5); /* evicts ev: only our reference is left */
    assert_int_equal(ev->refs, 1);
    sg_event_unref(ev);
    sg_ring_free(&r);
}

/* ---- sharing key ---- */

static sg_h1_msg_t *msg_of(const char *target, const char *const *hdrs)
{
    sg_h1_msg_t *m = calloc(1, sizeof(*m));
    m->method = SG_STR("GET");
    m->target = sg_str_c(target);
    m->host_index = -1;
    for (size_t i = 0; hdrs && hdrs[i]; i += 2) {
        m->headers[m->nheaders] = (sg_h1_header_t){sg_str_c(hdrs[i]), sg_str_c(hdrs[i + 1])};
        if (strcmp(hdrs[i], "Host") == 0)
            m->host_index = (int)m->nheaders;
        m->nheaders++;
    }
    return m;
}

typedef struct keyed {
    sg_fkey_t k;
    uint64_t h;
} keyed_t;

static keyed_t key_of(const sg_rule_t *r, const char *target, const char *const *hdrs)
{
    sg_h1_msg_t *m = msg_of(target, hdrs);
    keyed_t out = {{0}, 0};
    out.h = sg_fanout_key(&out.k, (void *)0x1, r, m);
    assert_false(out.k.oom);
    free(m);
    return out;
}

static bool same(keyed_t a, keyed_t b)
{
    bool eq = a.k.n == b.k.n && memcmp(a.k.p, b.k.p, a.k.n) == 0;
    if (eq)
        assert_true(a.h == b.h);
    free(a.k.p);
    free(b.k.p);
    return eq;
}

#define H(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_key(void **state)
{
    (void)state;
    char *names[] = {"x-tenant", "accept-language"};
    sg_sse_policy_t pol = {.sharing = true, .key_headers = names, .nkey_headers = 2};
    sg_rule_t rule = {0}, other = {0};
    rule.ssep = &pol;
    other.ssep = &pol;
    assert_true(same(key_of(&rule, "/s?a=1", H("Host", "h")), key_of(&rule, "/s?a=1", H("Host", "h", "X-Other", "1"))));
    assert_false(same(key_of(&rule, "/s?a=1", H("Host", "h")), key_of(&rule, "/s?a=2", H("Host", "h"))));
    assert_false(same(key_of(&rule, "/s?a=1", H("Host", "h")), key_of(&rule, "/s?a=1", H("Host", "g"))));
    assert_false(same(key_of(&rule, "/s", NULL), key_of(&other, "/s", NULL)));
    /* Named headers: case-insensitive names, every value in order, absent differs from empty. */
    assert_true(same(key_of(&rule, "/s", H("X-Tenant", "a")), key_of(&rule, "/s", H("x-tenant", "a"))));
    assert_false(same(key_of(&rule, "/s", H("X-Tenant", "a")), key_of(&rule, "/s", H("X-Tenant", "b"))));
    assert_false(same(key_of(&rule, "/s", NULL), key_of(&rule, "/s", H("X-Tenant", ""))));
    assert_false(same(key_of(&rule, "/s", H("X-Tenant", "a", "X-Tenant", "b")),
                      key_of(&rule, "/s", H("X-Tenant", "b", "X-Tenant", "a"))));
    /* Parts are length-prefixed: values cannot run into the next header. */
    assert_false(same(key_of(&rule, "/s", H("X-Tenant", "ab", "Accept-Language", "c")),
                      key_of(&rule, "/s", H("X-Tenant", "a", "Accept-Language", "bc"))));
    /* Last-Event-ID is never part of the key. */
    assert_true(same(key_of(&rule, "/s", NULL), key_of(&rule, "/s", H("Last-Event-ID", "7"))));
}

static void test_may_share(void **state)
{
    (void)state;
    sg_sse_policy_t pol = {.sharing = true};
    sg_rule_t rule = {0};
    rule.ssep = &pol;
    sg_h1_msg_t *m = msg_of("/s", NULL);
    assert_true(sg_fanout_may_share(&rule, m, false, false));
    assert_false(sg_fanout_may_share(&rule, m, true, false));
    assert_false(sg_fanout_may_share(&rule, m, false, true));
    m->upgrade = true; /* WebSocket: a tunnel, never shared */
    assert_false(sg_fanout_may_share(&rule, m, false, false));
    m->upgrade = false;
    m->method = SG_STR("POST");
    assert_false(sg_fanout_may_share(&rule, m, false, false));
    free(m);
    m = msg_of("/s", H("Authorization", "Bearer x"));
    assert_false(sg_fanout_may_share(&rule, m, false, false));
    pol.public_stream = true;
    assert_true(sg_fanout_may_share(&rule, m, false, false));
    assert_true(sg_fanout_may_share(&rule, m, false, true));
    pol.public_stream = false;
    free(m);
    m = msg_of("/s", H("cookie", "a=b"));
    assert_false(sg_fanout_may_share(&rule, m, false, false));
    free(m);
    m = msg_of("http://h/s", NULL);
    assert_false(sg_fanout_may_share(&rule, m, false, false));
    free(m);
    pol.sharing = false;
    m = msg_of("/s", NULL);
    assert_false(sg_fanout_may_share(&rule, m, false, false));
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_bound_and_edges),
        cmocka_unit_test(test_bytes_bound),
        cmocka_unit_test(test_age_bound),
        cmocka_unit_test(test_ids_inherited_and_repeated),
        cmocka_unit_test(test_base_and_no_ring),
        cmocka_unit_test(test_events_are_shared_by_reference),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_may_share),
    };
    return cmocka_run_group_tests_name("fanout", tests, NULL, NULL);
}
