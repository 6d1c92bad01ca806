/* test_krebind.c: kube mode's bind retry rounds (src/kube/krebind.c): nothing is asked before a round is due; a round is
 * asked of every worker and collected only once every one has answered; the delay doubles from 1 s to 30 s and stays
 * there; a change in the unbound ports is reported once; a new generation forgets the round. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "kube/krebind.h"
#include "core/loop.h"

#define N 2

static void init(sg_worker_t *ws)
{
    memset(ws, 0, N * sizeof(*ws));
    for (int i = 0; i < N; i++)
        assert_int_equal(sg_loop_init(&ws[i].loop), 0);
}

static void fini(sg_worker_t *ws)
{
    for (int i = 0; i < N; i++)
        sg_loop_free(&ws[i].loop);
}

/* Worker i answers the round it was asked, with these ports still unbound. */
static void answer(sg_worker_t *w, const uint16_t *ports, size_t n)
{
    if (n > 0)
        memcpy(w->bind_failed, ports, n * sizeof(*ports));
    w->nbind_failed = n;
    atomic_store(&w->rebind_ack, atomic_load(&w->rebind_seq));
}

static void test_backoff_and_report(void **state)
{
    (void)state;
    sg_worker_t ws[N];
    init(ws);
    const uint16_t taken[] = {8081, 8082};
    answer(&ws[0], taken, 2);
    answer(&ws[1], taken + 1, 1);
    uint16_t f[SG_WORKER_MAX_BIND_FAILED];
    assert_int_equal(sg_krebind_collect(ws, N, f), 2); /* each port once */
    sg_krebind_t rb = {0};
    uint64_t t = 100000;
    sg_krebind_start(&rb, 7, 3, f, 2, t);
    assert_int_equal(sg_krebind_wait_ms(&rb, t), SG_KREBIND_FIRST_MS);
    assert_false(sg_krebind_tick(&rb, ws, N, t + SG_KREBIND_FIRST_MS - 1));
    assert_int_equal(atomic_load(&ws[0].rebind_seq), 0); /* not due: not asked */
    /* the delays between rounds while nothing binds: 1 s, then doubling to 30 s, then 30 s */
    const uint32_t want[] = {2000, 4000, 8000, 16000, 30000, 30000};
    t += SG_KREBIND_FIRST_MS;
    for (size_t r = 0; r < SG_ARRAY_LEN(want); r++) {
        assert_false(sg_krebind_tick(&rb, ws, N, t));
        uint64_t seq = atomic_load(&ws[0].rebind_seq);
        assert_int_equal(seq, r + 1);
        assert_int_equal(atomic_load(&ws[1].rebind_seq), seq);
        assert_int_equal(atomic_load(&ws[1].rebind_gen), 3);
        answer(&ws[0], taken, 2);
        assert_false(sg_krebind_tick(&rb, ws, N, t)); /* worker 1 has not answered */
        assert_true(rb.inflight);
        answer(&ws[1], taken, 2);
        assert_false(sg_krebind_tick(&rb, ws, N, t)); /* answered; the same ports: nothing to report */
        assert_false(rb.inflight);
        assert_int_equal(sg_krebind_wait_ms(&rb, t), want[r]);
        t += want[r];
    }
    /* 8081 binds: reported, 8082 still retried */
    assert_false(sg_krebind_tick(&rb, ws, N, t));
    answer(&ws[0], taken + 1, 1);
    answer(&ws[1], taken + 1, 1);
    assert_true(sg_krebind_tick(&rb, ws, N, t));
    assert_int_equal(rb.nfailed, 1);
    assert_int_equal(rb.failed[0], 8082);
    assert_int_equal(rb.build, 7);
    /* a new generation: the round in flight is forgotten, nothing more is asked */
    t += 30000;
    assert_false(sg_krebind_tick(&rb, ws, N, t));
    assert_true(rb.inflight);
    uint64_t asked = atomic_load(&ws[0].rebind_seq);
    sg_krebind_reset(&rb);
    assert_int_equal(sg_krebind_wait_ms(&rb, t), -1);
    assert_false(sg_krebind_tick(&rb, ws, N, t + 60000));
    assert_int_equal(atomic_load(&ws[0].rebind_seq), asked);
    /* retries resume with the next failure, with fresh round numbers */
    sg_krebind_start(&rb, 8, 4, taken, 1, t);
    assert_false(sg_krebind_tick(&rb, ws, N, t + SG_KREBIND_FIRST_MS));
    assert_true(atomic_load(&ws[0].rebind_seq) > asked);
    answer(&ws[0], NULL, 0);
    answer(&ws[1], NULL, 0);
    assert_true(sg_krebind_tick(&rb, ws, N, t + SG_KREBIND_FIRST_MS));
    assert_int_equal(rb.nfailed, 0);
    assert_int_equal(sg_krebind_wait_ms(&rb, t), -1);
    /* nothing failed: nothing to do */
    sg_krebind_start(&rb, 9, 5, NULL, 0, t);
    assert_int_equal(sg_krebind_wait_ms(&rb, t), -1);
    fini(ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_and_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
