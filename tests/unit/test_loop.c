/* test_loop.c: the loop's saturation rule: a full batch of ready sockets defers its flushes and pauses, unless
 * most of the batch is interactive relays (tunnels), whose peers wait for what the worker would hold back; and the
 * relay order: what an interactive watcher's callback queues runs as soon as that callback returns, before the next
 * event of the batch, while a plain watcher's flush waits for the end of the batch. */
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
    sg_deferred_t flush;    /* its own, as each socket has */
    int flushed;
} probe_t;

typedef struct fixture {
    sg_loop_t loop;
    probe_t p[BATCH + 8];
    int n;
    int flushed;            /* flushes run, all probes */
    _Atomic uint64_t saturated;
    _Atomic uint64_t relay_full;
    int log[2 * (BATCH + 8)]; /* what ran, in order: probe i's callback is i, its flush is ~i */
    int nlog;
} fixture_t;

static fixture_t *g_fx;

static void note(int v)
{
    if (g_fx->nlog < (int)(sizeof(g_fx->log) / sizeof(g_fx->log[0])))
        g_fx->log[g_fx->nlog++] = v;
}

static void on_flush(sg_deferred_t *d)
{
    probe_t *p = SG_CONTAINER_OF(d, probe_t, flush);
    p->flushed++;
    g_fx->flushed++;
    note(~(int)(p - g_fx->p));
}

/* Each ready watcher takes its event and queues its flush (as a socket with output would). */
static void on_event(sg_watcher_t *w, uint32_t events)
{
    (void)events;
    probe_t *p = SG_CONTAINER_OF(w, probe_t, w);
    uint64_t v;
    assert_int_equal(read(w->fd, &v, sizeof(v)), (ssize_t)sizeof(v));
    p->calls++;
    note((int)(p - g_fx->p));
    sg_loop_flush_later(&g_fx->loop, &p->flush);
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
    fx->n = n;
    for (int i = 0; i < n; i++) {
        probe_t *p = &fx->p[i];
        sg_deferred_init(&p->flush, on_flush);
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
    sg_loop_run_once(&fx->loop);   /* nothing ready: the deferred flushes run */
    assert_int_equal(fx->flushed, BATCH);
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
    assert_int_equal(fx->flushed, BATCH);
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
    assert_int_equal(fx->flushed, BATCH);
    assert_int_equal(atomic_load(&fx->saturated), 0);
    teardown_fx(fx);

    /* Saturated: the plain sockets' flushes wait for the next iteration; the relays' ran already. */
    fx = setup_fx(BATCH, BATCH / 4);
    sg_loop_run_once(&fx->loop);
    assert_int_equal(fx->flushed, BATCH / 4);
    for (int i = 0; i < BATCH; i++)
        assert_int_equal(fx->p[i].flushed, i < BATCH / 4);
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
    assert_int_equal(fx->flushed, BATCH - 1);
    assert_int_equal(atomic_load(&fx->saturated), 0);
    assert_int_equal(atomic_load(&fx->relay_full), 0);
    teardown_fx(fx);
}

/* The relay order, in a batch of 4 relays and 4 plain sockets (whatever order epoll gives them): each relay's flush
 * runs right after its own callback, before the next callback; each plain socket's flush runs after the last
 * callback of the batch. */
static void test_relay_flushes_before_the_next_event(void **state)
{
    (void)state;
    fixture_t *fx = setup_fx(8, 4);
    sg_loop_run_once(&fx->loop);
    assert_int_equal(calls(fx), 8);
    assert_int_equal(fx->flushed, 8);
    assert_int_equal(fx->nlog, 16);
    int last_cb = -1;
    for (int k = 0; k < fx->nlog; k++)
        if (fx->log[k] >= 0)
            last_cb = k;
    for (int k = 0; k < fx->nlog; k++) {
        int v = fx->log[k];
        if (v < 0)
            continue;
        int pos = -1;
        for (int j = 0; j < fx->nlog; j++)
            if (fx->log[j] == ~v)
                pos = j;
        assert_true(pos > k);
        if (v < 4)
            assert_int_equal(pos, k + 1);   /* a relay: flushed before anything else runs */
        else
            assert_true(pos > last_cb);     /* plain: after every callback of the batch */
    }
    teardown_fx(fx);
}

/* The old rule (interactive_pause): a relay's flush waits for the end of the batch like any other. */
static void test_interactive_pause_flushes_at_the_end(void **state)
{
    (void)state;
    fixture_t *fx = setup_fx(8, 4);
    fx->loop.interactive_pause = true;
    sg_loop_run_once(&fx->loop);
    assert_int_equal(fx->nlog, 16);
    for (int k = 0; k < 8; k++)
        assert_true(fx->log[k] >= 0);       /* the 8 callbacks, then the 8 flushes */
    for (int k = 8; k < 16; k++)
        assert_true(fx->log[k] < 0);
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
        cmocka_unit_test(test_relay_flushes_before_the_next_event),
        cmocka_unit_test(test_interactive_pause_flushes_at_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
