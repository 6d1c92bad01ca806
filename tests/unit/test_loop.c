/* test_loop.c: the loop's saturation rule: a full batch of ready sockets defers its flushes and pauses, unless
 * most of the batch is interactive relays (tunnels), whose peers wait for what the worker would hold back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/loop.h"

#define BATCH SG_LOOP_BATCH

typedef struct probe {
    sg_watcher_t w;
    int calls;
} probe_t;

typedef struct fixture {
    sg_loop_t loop;
    probe_t p[BATCH + 8];
    int n;
    sg_deferred_t flush;
    int flushed;
    _Atomic uint64_t saturated;
    _Atomic uint64_t relay_full;
} fixture_t;

static fixture_t *g_fx;

static void on_flush(sg_deferred_t *d)
{
    (void)d;
    g_fx->flushed++;
}

/* Each ready watcher takes its event and queues the same flush (as a socket with output would). */
static void on_event(sg_watcher_t *w, uint32_t events)
{
    (void)events;
    probe_t *p = SG_CONTAINER_OF(w, probe_t, w);
    uint64_t v;
    assert_int_equal(read(w->fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    p->calls++;
    sg_loop_flush_later(&g_fx->loop, &g_fx->flush);
}

/* n ready watchers, the first `interactive` of them marked interactive. */
static fixture_t *setup_fx(int n, int interactive)
{
    fixture_t *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    g_fx = fx;
    assert_int_equal(sg_loop_init(&fx->loop), 0);
    fx->loop.pause_us = 1;
    fx->loop.saturated_count = &fx->saturated;
    fx->loop.relay_full_count = &fx->relay_full;
    sg_deferred_init(&fx->flush, on_flush);
    fx->n = n;
    for (int i = 0; i < n; i++) {
        probe_t *p = &fx->p[i];
        p->w.fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_true(p->w.fd >= 0);
        p->w.cb = on_event;
        p->w.interactive = i < interactive;
        assert_int_equal(sg_loop_watch(&fx->loop, &p->w, EPOLLIN), 0);
    }
    return fx;
}

static void teardown_fx(fixture_t *fx)
{
    for (int i = 0; i < fx->n; i++) {
        sg_loop_watch(&fx->loop, &fx->p[i].w, 0);
        close(fx->p[i].w.fd);
    }
    sg_loop_free(&fx->loop);
    free(fx);
    g_fx = NULL;
}

static int calls(const fixture_t *fx)
{
    int c = 0;
    for (int i = 0; i < fx->n; i++)
        c += fx->p[i].calls;
    return c;
}

static void test_rule(void **state)
{
    (void)state;
    assert_false(sg_loop_saturated(BATCH - 1, BATCH, 0));     /* below a full batch: never */
    assert_true(sg_loop_saturated(BATCH, BATCH, 0));
    assert_true(sg_loop_saturated(BATCH, BATCH, BATCH / 2 - 1));
    assert_false(sg_loop_saturated(BATCH, BATCH, BATCH / 2)); /* half of them interactive: no pause */
    assert_false(sg_loop_saturated(BATCH, BATCH, BATCH));
}

/* A full batch of plain sockets (SSE upstreams): the flush waits for the next iteration, and the pause is taken. */
static void test_full_plain_batch_defers_and_pauses(void **state)
{
    (void)state;
    fixture_t *fx = setup_fx(BATCH, 0);
    sg_loop_run_once(&fx->loop);
    assert_int_equal(calls(fx), BATCH);
    assert_int_equal(fx->flushed, 0);
    assert_true(fx->loop.flush_deferred);
    assert_int_equal(atomic_load(&fx->saturated), 1);
    assert_int_equal(atomic_load(&fx->relay_full), 0);
    sg_loop_run_once(&fx->loop);   /* nothing ready: the deferred flush runs */
    assert_int_equal(fx->flushed, 1);
    assert_false(fx->loop.flush_deferred);
    assert_int_equal(atomic_load(&fx->saturated), 1);
    teardown_fx(fx);
}

/* A full batch of tunnel relays: flushed in the same iteration, no pause. */
static void test_full_interactive_batch_flushes_at_once(void **state)
{
    (void)state;
    fixture_t *fx = setup_fx(BATCH, BATCH);
    sg_loop_run_once(&fx->loop);
    assert_int_equal(calls(fx), BATCH);
    assert_int_equal(fx->flushed, 1);
    assert_false(fx->loop.flush_deferred);
    assert_int_equal(atomic_load(&fx->saturated), 0);
    assert_int_equal(atomic_load(&fx->relay_full), 1);
    teardown_fx(fx);
}

/* interactive_pause (--saturation-tunnels pause): tunnels count like any socket, as before the rule. */
static void test_interactive_pause_restores_the_old_rule(void **state)
{
    (void)state;
    fixture_t *fx = setup_fx(BATCH, BATCH);
    fx->loop.interactive_pause = true;
    sg_loop_run_once(&fx->loop);
    assert_int_equal(fx->flushed, 0);
    assert_int_equal(atomic_load(&fx->saturated), 1);
    assert_int_equal(atomic_load(&fx->relay_full), 0);
    teardown_fx(fx);
}

/* Mixed batches: the plain sockets' majority decides. */
static void test_mixed_batches(void **state)
{
    (void)state;
    fixture_t *fx = setup_fx(BATCH, BATCH / 2);
    sg_loop_run_once(&fx->loop);
    assert_int_equal(fx->flushed, 1);
    assert_int_equal(atomic_load(&fx->saturated), 0);
    teardown_fx(fx);

    fx = setup_fx(BATCH, BATCH / 4);
    sg_loop_run_once(&fx->loop);
    assert_int_equal(fx->flushed, 0);
    assert_int_equal(atomic_load(&fx->saturated), 1);
    teardown_fx(fx);
}

/* Below a full batch nothing waits, interactive or not. */
static void test_partial_batch_flushes(void **state)
{
    (void)state;
    fixture_t *fx = setup_fx(BATCH - 1, 0);
    sg_loop_run_once(&fx->loop);
    assert_int_equal(calls(fx), BATCH - 1);
    assert_int_equal(fx->flushed, 1);
    assert_int_equal(atomic_load(&fx->saturated), 0);
    assert_int_equal(atomic_load(&fx->relay_full), 0);
    teardown_fx(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule),
        cmocka_unit_test(test_full_plain_batch_defers_and_pauses),
        cmocka_unit_test(test_full_interactive_batch_flushes_at_once),
        cmocka_unit_test(test_interactive_pause_restores_the_old_rule),
        cmocka_unit_test(test_mixed_batches),
        cmocka_unit_test(test_partial_batch_flushes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
