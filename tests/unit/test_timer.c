/* test_timer.c: the timer wheel: ordering, cancel/re-arm from callbacks, far timers, timeouts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/timer.h"

typedef struct probe {
    sg_timer_t t;
    int fired;
    uint64_t at;
    sg_wheel_t *w;
    sg_timer_t *other;   /* cancelled or re-armed from the callback */
    int action;          /* 0 none, 1 cancel other, 2 re-arm self +10 once */
} probe_t;

static uint64_t g_now;

static void cb(sg_timer_t *t)
{
    probe_t *p = SG_CONTAINER_OF(t, probe_t, t);
    p->fired++;
    p->at = g_now;
    if (p->action == 1 && p->other)
        sg_timer_cancel(p->w, p->other);
    if (p->action == 2 && p->fired == 1)
        sg_timer_arm(p->w, &p->t, g_now + 10);
}

static void advance(sg_wheel_t *w, uint64_t to)
{
    for (uint64_t t = w->now + 1; t <= to; t++) {
        g_now = t;
        sg_wheel_advance(w, t);
    }
}

static void test_fires_at_expiry_not_before(void **state)
{
    (void)state;
    sg_wheel_t w;
    probe_t a = {0}, b = {0};
    sg_wheel_init(&w, 1000);
    sg_timer_init(&a.t, cb);
    sg_timer_init(&b.t, cb);
    sg_timer_arm(&w, &a.t, 1005);
    sg_timer_arm(&w, &b.t, 1003);
    assert_int_equal(sg_wheel_timeout(&w), 3);
    advance(&w, 1002);
    assert_int_equal(a.fired + b.fired, 0);
    advance(&w, 1003);
    assert_int_equal(b.fired, 1);
    assert_int_equal(b.at, 1003);
    assert_int_equal(a.fired, 0);
    advance(&w, 1010);
    assert_int_equal(a.fired, 1);
    assert_int_equal(a.at, 1005);
    assert_int_equal(w.count, 0);
    assert_int_equal(sg_wheel_timeout(&w), -1);
}

static void test_far_timer_survives_laps(void **state)
{
    (void)state;
    sg_wheel_t w;
    probe_t a = {0};
    sg_wheel_init(&w, 0);
    sg_timer_init(&a.t, cb);
    sg_timer_arm(&w, &a.t, 5 * SG_WHEEL_SLOTS + 7);
    advance(&w, 5 * SG_WHEEL_SLOTS + 6);
    assert_int_equal(a.fired, 0);
    advance(&w, 5 * SG_WHEEL_SLOTS + 7);
    assert_int_equal(a.fired, 1);
}

static void test_big_jump_fires_everything_due(void **state)
{
    (void)state;
    sg_wheel_t w;
    probe_t p[10] = {0};
    sg_wheel_init(&w, 0);
    for (int i = 0; i < 10; i++) {
        sg_timer_init(&p[i].t, cb);
        sg_timer_arm(&w, &p[i].t, (uint64_t)(i * 700));
    }
    g_now = 3000;
    sg_wheel_advance(&w, 3000); /* jump of more than one lap */
    for (int i = 0; i < 10; i++)
        assert_int_equal(p[i].fired, i * 700 <= 3000 ? 1 : 0);
    g_now = 7000;
    sg_wheel_advance(&w, 7000);
    for (int i = 0; i < 10; i++)
        assert_int_equal(p[i].fired, 1);
}

static void test_cancel_and_rearm_from_callback(void **state)
{
    (void)state;
    sg_wheel_t w;
    probe_t a = {0}, b = {0}, c = {0};
    sg_wheel_init(&w, 0);
    sg_timer_init(&a.t, cb);
    sg_timer_init(&b.t, cb);
    sg_timer_init(&c.t, cb);
    a.w = b.w = c.w = &w;
    a.action = 1;
    a.other = &b.t;            /* same slot, fires after a: must be cancelled */
    sg_timer_arm(&w, &a.t, 5);
    sg_timer_arm(&w, &b.t, 5);
    c.action = 2;              /* re-arms itself once */
    sg_timer_arm(&w, &c.t, 5);
    advance(&w, 5);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    assert_false(sg_timer_armed(&b.t));
    assert_int_equal(c.fired, 1);
    assert_true(sg_timer_armed(&c.t));
    advance(&w, 15);
    assert_int_equal(c.fired, 2);
    assert_int_equal(c.at, 15);
    assert_int_equal(w.count, 0);
}

static void test_rearm_moves_and_cancel_is_idempotent(void **state)
{
    (void)state;
    sg_wheel_t w;
    probe_t a = {0};
    sg_wheel_init(&w, 0);
    sg_timer_init(&a.t, cb);
    sg_timer_arm(&w, &a.t, 10);
    sg_timer_arm(&w, &a.t, 20);
    assert_int_equal(w.count, 1);
    advance(&w, 19);
    assert_int_equal(a.fired, 0);
    sg_timer_cancel(&w, &a.t);
    sg_timer_cancel(&w, &a.t);
    assert_int_equal(w.count, 0);
    advance(&w, 40);
    assert_int_equal(a.fired, 0);
    /* A time in the past fires on the next advance. */
    sg_timer_arm(&w, &a.t, 3);
    assert_int_equal(sg_wheel_timeout(&w), 0);
    advance(&w, 41);
    assert_int_equal(a.fired, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_at_expiry_not_before),
        cmocka_unit_test(test_far_timer_survives_laps),
        cmocka_unit_test(test_big_jump_fires_everything_due),
        cmocka_unit_test(test_cancel_and_rearm_from_callback),
        cmocka_unit_test(test_rearm_moves_and_cancel_is_idempotent),
    };
    return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
