/* test_klease.c: the Lease state machine on a virtual clock against a small in-test Lease store with
 * resourceVersions and 409 on a stale one: acquire, renew, lose on conflict, step down at the renew deadline, take
 * over an expired Lease, release on shutdown, and two replicas racing for a new Lease. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/klease.h"

/* ---- the store: one Lease ---- */

typedef struct store {
    bool exists;
    int rv;
    char json[4096];
    bool down;                  /* answers 500 to everything */
    int writes;
} store_t;

static void keep(store_t *s, const char *body)
{
    const char *spec = strstr(body, "\"spec\":");
    assert_non_null(spec);
    size_t n = strlen(spec) - 1; /* without the object's closing brace */
    snprintf(s->json, sizeof(s->json),
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":\"l\","
             "\"namespace\":\"ns\",\"resourceVersion\":\"%d\"},%.*s}", ++s->rv, (int)n, spec);
    s->exists = true;
    s->writes++;
}

static int body_rv(const char *body)
{
    const char *p = strstr(body, "\"resourceVersion\":\"");
    return p ? atoi(p + 19) : -1;
}

static int serve(store_t *s, sg_klease_op_t op, const char *body, const char **resp)
{
    *resp = s->json;
    if (s->down)
        return 500;
    switch (op) {
    case SG_KLEASE_GET:
        return s->exists ? 200 : 404;
    case SG_KLEASE_CREATE:
        if (s->exists)
            return 409;
        keep(s, body);
        return 201;
    case SG_KLEASE_UPDATE:
        if (!s->exists)
            return 404;
        if (body_rv(body) != s->rv)
            return 409;
        keep(s, body);
        return 200;
    default:
        fail();
        return 0;
    }
}

/* Another party writes the Lease directly (kubectl, or a replica we do not model). */
static void seize(store_t *s, const char *holder)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":15,"
             "\"renewTime\":\"2026-01-01T00:00:0%d.000000Z\",\"leaseTransitions\":7}}", holder, s->rv % 10);
    keep(s, body);
}

/* Runs every op l wants at now (at most a few: a read then a write). */
static void step(sg_klease_t *l, store_t *s, int64_t now)
{
    for (int i = 0; i < 4; i++) {
        char body[2048];
        int64_t wait;
        sg_klease_op_t op = sg_klease_next(l, now, "2026-01-01T00:00:00.000000Z", body, sizeof(body), &wait);
        if (op == SG_KLEASE_WAIT) {
            assert_true(wait > 0);
            return;
        }
        const char *resp;
        int code = serve(s, op, body, &resp);
        sg_klease_done(l, now, code, resp, strlen(resp));
    }
}

static void run(sg_klease_t *l, store_t *s, int64_t from, int64_t to)
{
    for (int64_t t = from; t <= to; t += 100)
        step(l, s, t);
}

static sg_klease_cfg_t cfg(const char *id)
{
    return (sg_klease_cfg_t){.ns = "ns", .name = "l", .identity = id, .duration_ms = 15000,
                             .renew_deadline_ms = 10000, .retry_ms = 2000};
}

static void test_acquire_and_renew(void **state)
{
    (void)state;
    store_t s = {0};
    sg_klease_t a;
    sg_klease_cfg_t c = cfg("pod-a");
    sg_klease_init(&a, &c, 0);
    assert_false(sg_klease_leader(&a, 0));
    step(&a, &s, 0);
    assert_true(sg_klease_leader(&a, 0));
    assert_non_null(strstr(s.json, "\"holderIdentity\":\"pod-a\""));
    assert_non_null(strstr(s.json, "\"leaseDurationSeconds\":15"));
    assert_int_equal(s.writes, 1);
    run(&a, &s, 100, 30000);
    assert_true(sg_klease_leader(&a, 30000));
    assert_int_equal(s.writes, 1 + 15);       /* a renewal every 2 s */
    assert_int_equal(a.acquired, 1);
    assert_int_equal(a.lost, 0);
    assert_non_null(strstr(s.json, "\"leaseTransitions\":0"));
}

/* A follower waits while the holder renews; when the holder stops, it takes the Lease once it has not changed
 * for its duration (on the follower's own clock), and counts a transition. */
static void test_takeover_after_expiry(void **state)
{
    (void)state;
    store_t s = {0};
    sg_klease_t a, b;
    sg_klease_cfg_t ca = cfg("pod-a"), cb = cfg("pod-b");
    sg_klease_init(&a, &ca, 0);
    sg_klease_init(&b, &cb, 0);
    for (int64_t t = 0; t <= 20000; t += 100) {
        step(&a, &s, t);
        step(&b, &s, t);
    }
    assert_true(sg_klease_leader(&a, 20000));
    assert_false(sg_klease_leader(&b, 20000));
    /* a dies at 20 s; its last renewal was at 20 s */
    run(&b, &s, 20100, 34000);
    assert_false(sg_klease_leader(&b, 34000)); /* not yet 15 s of an unchanged Lease */
    run(&b, &s, 34100, 38000);
    assert_true(sg_klease_leader(&b, 38000));
    assert_non_null(strstr(s.json, "\"holderIdentity\":\"pod-b\""));
    assert_non_null(strstr(s.json, "\"leaseTransitions\":1"));
}

/* A leader whose renewal meets a newer resourceVersion stops leading at once, and follows the new holder. */
static void test_lose_on_conflict(void **state)
{
    (void)state;
    store_t s = {0};
    sg_klease_t a;
    sg_klease_cfg_t c = cfg("pod-a");
    sg_klease_init(&a, &c, 0);
    step(&a, &s, 0);
    assert_true(sg_klease_leader(&a, 0));
    seize(&s, "pod-x");
    run(&a, &s, 100, 2000);                   /* the renewal at 2 s: 409, then a read */
    assert_false(sg_klease_leader(&a, 2000));
    assert_int_equal(a.lost, 1);
    run(&a, &s, 2100, 10000);                 /* pod-x's Lease changed at 2 s on a's clock: fresh until 17 s */
    assert_false(sg_klease_leader(&a, 10000));
    assert_non_null(strstr(s.json, "pod-x"));
}

/* With the API server unreachable the leader keeps leading until the renew deadline, then steps down. */
static void test_renew_deadline(void **state)
{
    (void)state;
    store_t s = {0};
    sg_klease_t a;
    sg_klease_cfg_t c = cfg("pod-a");
    sg_klease_init(&a, &c, 0);
    run(&a, &s, 0, 4000);                     /* last renewal at 4 s */
    s.down = true;
    run(&a, &s, 4100, 13900);
    assert_true(sg_klease_leader(&a, 13900));
    run(&a, &s, 14000, 14000);
    assert_false(sg_klease_leader(&a, 14000));
    assert_int_equal(a.lost, 1);
    s.down = false;                           /* back: nobody else took it, so a renews and leads again */
    run(&a, &s, 14100, 20000);
    assert_true(sg_klease_leader(&a, 20000));
}

/* Release on shutdown: the Lease is left with no holder and a 1 s duration, and the follower takes it at its next
 * try, without waiting for the 15 s. */
static void test_release(void **state)
{
    (void)state;
    store_t s = {0};
    sg_klease_t a, b;
    sg_klease_cfg_t ca = cfg("pod-a"), cb = cfg("pod-b");
    sg_klease_init(&a, &ca, 0);
    sg_klease_init(&b, &cb, 50);
    for (int64_t t = 0; t <= 6000; t += 100) {
        step(&a, &s, t);
        step(&b, &s, t + 50);
    }
    assert_true(sg_klease_leader(&a, 6000));
    char body[2048];
    assert_int_equal(sg_klease_release(&a, "2026-01-01T00:00:06.000000Z", body, sizeof(body)), SG_KLEASE_UPDATE);
    assert_false(sg_klease_leader(&a, 6000));
    assert_non_null(strstr(body, "\"holderIdentity\":\"\""));
    assert_non_null(strstr(body, "\"leaseDurationSeconds\":1"));
    const char *resp;
    int code = serve(&s, SG_KLEASE_UPDATE, body, &resp);
    assert_int_equal(code, 200);
    sg_klease_done(&a, 6000, code, resp, strlen(resp));
    assert_false(sg_klease_leader(&a, 6000));
    run(&b, &s, 6100, 8200);
    assert_true(sg_klease_leader(&b, 8200));
    /* a follower that is not leading has nothing to release */
    sg_klease_t c;
    sg_klease_cfg_t cc = cfg("pod-c");
    sg_klease_init(&c, &cc, 0);
    assert_int_equal(sg_klease_release(&c, "x", body, sizeof(body)), SG_KLEASE_WAIT);
}

/* Two replicas find no Lease at once: both create, one wins, the other follows. */
static void test_create_race(void **state)
{
    (void)state;
    store_t s = {0};
    sg_klease_t a, b;
    sg_klease_cfg_t ca = cfg("pod-a"), cb = cfg("pod-b");
    sg_klease_init(&a, &ca, 0);
    sg_klease_init(&b, &cb, 0);
    char ba[2048], bb[2048];
    int64_t w;
    const char *resp;
    assert_int_equal(sg_klease_next(&a, 0, "t", ba, sizeof(ba), &w), SG_KLEASE_GET);
    assert_int_equal(sg_klease_next(&b, 0, "t", bb, sizeof(bb), &w), SG_KLEASE_GET);
    assert_int_equal(sg_klease_next(&a, 0, "t", ba, sizeof(ba), &w), SG_KLEASE_WAIT); /* one op at a time */
    sg_klease_done(&a, 0, serve(&s, SG_KLEASE_GET, "", &resp), "", 0);
    sg_klease_done(&b, 0, serve(&s, SG_KLEASE_GET, "", &resp), "", 0);
    assert_int_equal(sg_klease_next(&a, 0, "t", ba, sizeof(ba), &w), SG_KLEASE_CREATE);
    assert_int_equal(sg_klease_next(&b, 0, "t", bb, sizeof(bb), &w), SG_KLEASE_CREATE);
    int ca_code = serve(&s, SG_KLEASE_CREATE, ba, &resp);
    sg_klease_done(&a, 0, ca_code, resp, strlen(resp));
    int cb_code = serve(&s, SG_KLEASE_CREATE, bb, &resp);
    sg_klease_done(&b, 0, cb_code, resp, strlen(resp));
    assert_int_equal(ca_code, 201);
    assert_int_equal(cb_code, 409);
    for (int64_t t = 0; t <= 12000; t += 100) {
        step(&a, &s, t);
        step(&b, &s, t);
        assert_true(sg_klease_leader(&a, t));
        assert_false(sg_klease_leader(&b, t));
    }
}

/* Garbage from the server is not a Lease: no leadership from it. */
static void test_garbage_answer(void **state)
{
    (void)state;
    sg_klease_t a;
    sg_klease_cfg_t c = cfg("pod-a");
    sg_klease_init(&a, &c, 0);
    char body[2048];
    int64_t w;
    assert_int_equal(sg_klease_next(&a, 0, "t", body, sizeof(body), &w), SG_KLEASE_GET);
    sg_klease_done(&a, 0, 404, "", 0);
    assert_int_equal(sg_klease_next(&a, 0, "t", body, sizeof(body), &w), SG_KLEASE_CREATE);
    sg_klease_done(&a, 0, 201, "{\"not\": [a lease", 16);
    assert_false(sg_klease_leader(&a, 0));
    assert_int_equal(sg_klease_next(&a, 0, "t", body, sizeof(body), &w), SG_KLEASE_WAIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acquire_and_renew),
        cmocka_unit_test(test_takeover_after_expiry),
        cmocka_unit_test(test_lose_on_conflict),
        cmocka_unit_test(test_renew_deadline),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_create_race),
        cmocka_unit_test(test_garbage_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
