/* test_h2io.c: the HTTP/2 pieces both sides share: segment queues (bytes and allocation kept in step across
 * partial takes and pops) and the data provider's step (EOF, DEFERRED, bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "net/h2io.h"

static void test_segq_take_across_segments(void **state)
{
    (void)state;
    sg_h2segq_t q = {0};
    assert_int_equal(sg_h2segq_append(&q, "hello ", 6), 0);
    assert_int_equal(sg_h2segq_append(&q, "world", 5), 0);
    assert_int_equal(q.bytes, 11);
    assert_int_equal(q.mem, 2 * sizeof(sg_h2seg_t) + 11);
    uint8_t buf[16];
    assert_int_equal(sg_h2segq_take(&q, buf, 4), 4);
    assert_memory_equal(buf, "hell", 4);
    assert_int_equal(q.bytes, 7);
    assert_int_equal(q.mem, 2 * sizeof(sg_h2seg_t) + 11); /* the first segment is still partly there */
    assert_int_equal(sg_h2segq_take(&q, buf, sizeof(buf)), 7);
    assert_memory_equal(buf, "o world", 7);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.mem, 0);
    assert_null(q.head);
    assert_null(q.tail);
    assert_int_equal(sg_h2segq_take(&q, buf, sizeof(buf)), 0);
}

static void test_segq_pop_after_partial_take(void **state)
{
    (void)state;
    sg_h2segq_t q = {0};
    sg_h2segq_append(&q, "abcdef", 6);
    sg_h2segq_append(&q, "gh", 2);
    uint8_t buf[2];
    sg_h2segq_take(&q, buf, 2);
    sg_h2seg_t *g = sg_h2segq_pop(&q);
    assert_non_null(g);
    assert_int_equal(g->len - g->off, 4);
    assert_memory_equal(g->data + g->off, "cdef", 4);
    free(g);
    assert_int_equal(q.bytes, 2);
    assert_int_equal(q.mem, sizeof(sg_h2seg_t) + 2);
    g = sg_h2segq_pop(&q);
    free(g);
    assert_null(sg_h2segq_pop(&q));
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.mem, 0);
    sg_h2segq_append(&q, "x", 1);
    sg_h2segq_clear(&q);
    assert_int_equal(q.bytes, 0);
    assert_null(q.head);
}

/* A refused stream's sent body goes back ahead of what was still queued: order, bytes and allocation kept. */
static void test_segq_prepend(void **state)
{
    (void)state;
    sg_h2segq_t q = {0}, front = {0};
    sg_h2segq_prepend(&q, &front); /* both empty */
    assert_null(q.head);
    sg_h2segq_append(&q, "cd", 2);
    sg_h2segq_append(&front, "a", 1);
    sg_h2segq_append(&front, "b", 1);
    sg_h2segq_prepend(&q, &front);
    assert_null(front.head);
    assert_null(front.tail);
    assert_int_equal(front.bytes, 0);
    assert_int_equal(front.mem, 0);
    assert_int_equal(q.bytes, 4);
    assert_int_equal(q.mem, 3 * sizeof(sg_h2seg_t) + 4);
    uint8_t buf[8];
    assert_int_equal(sg_h2segq_take(&q, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "abcd", 4);
    assert_null(q.tail);
    /* Into an empty queue: the tail follows. */
    sg_h2segq_append(&front, "xy", 2);
    sg_h2segq_prepend(&q, &front);
    assert_ptr_equal(q.head, q.tail);
    sg_h2segq_append(&q, "z", 1);
    assert_int_equal(sg_h2segq_take(&q, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "xyz", 3);
    assert_int_equal(q.mem, 0);
}

static void test_provided(void **state)
{
    (void)state;
    uint32_t flags = 0;
    bool deferred = false;
    /* Bytes taken, more queued: just the bytes. */
    assert_int_equal(sg_h2io_provided(10, 5, true, &flags, &deferred), 10);
    assert_int_equal(flags, 0);
    /* The last bytes of an ended producer: EOF with them. */
    assert_int_equal(sg_h2io_provided(10, 0, true, &flags, &deferred), 10);
    assert_true(flags & NGHTTP2_DATA_FLAG_EOF);
    flags = 0;
    /* Nothing now, more to come: deferred, to be resumed. */
    assert_int_equal(sg_h2io_provided(0, 0, false, &flags, &deferred), NGHTTP2_ERR_DEFERRED);
    assert_true(deferred);
    assert_int_equal(flags, 0);
    deferred = false;
    /* Nothing, and the producer has ended: an empty DATA with END_STREAM. */
    assert_int_equal(sg_h2io_provided(0, 0, true, &flags, &deferred), 0);
    assert_true(flags & NGHTTP2_DATA_FLAG_EOF);
    assert_false(deferred);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_segq_take_across_segments),
        cmocka_unit_test(test_segq_pop_after_partial_take),
        cmocka_unit_test(test_segq_prepend),
        cmocka_unit_test(test_provided),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
