/* test_h2io.c: the HTTP/2 pieces both sides share: segment queues (bytes and allocation kept in step across
 * partial takes and pops) and the data provider's step (EOF, DEFERRED, bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <cmocka.h>

#include "core/loop.h"
#include "net/h2io.h"

static void no_flush(sg_deferred_t *d)
{
    (void)d;
}

/* A NO_COPY DATA frame: header, then the payload as references into the shared events (a range of the first, all
 * of the second), copied bytes for a copied segment; on TLS the payload is copied once into the output. */
static void send_data_case(bool tls)
{
    sg_loop_t loop;
    assert_int_equal(sg_loop_init(&loop), 0);
    sg_sock_t sock;
    sg_sock_init(&sock, &loop, -1, NULL, no_flush);
    if (tls)
        sock.ssl = (struct ssl_st *)&loop; /* only tested for NULL here; never used */
    sg_rbuf_t *a = sg_rbuf_new("id: 1\ndata: a\n\n", 15), *b = sg_rbuf_new("data: b\n\n", 9);
    sg_h2segq_t q = {0};
    assert_int_equal(sg_h2segq_append_ref(&q, a), 0);
    assert_int_equal(sg_h2segq_append(&q, "cc", 2), 0);
    assert_int_equal(sg_h2segq_append_ref(&q, b), 0);
    uint8_t buf[8];
    assert_int_equal(sg_h2segq_take(&q, buf, 3), 3); /* the frame starts inside the first event */
    const uint8_t hd[9] = {0, 0, 23, 0, 0, 0, 0, 0, 1};
    size_t by_ref = 99, copied = 99;
    assert_int_equal(sg_h2io_send_data(&sock, &q, hd, 30, 0, &by_ref, &copied), -ERANGE); /* only 23 queued */
    assert_int_equal(sock.out.bytes, 0);
    assert_int_equal(sg_h2io_send_data(&sock, &q, hd, 23, 0, &by_ref, &copied), 0);
    assert_int_equal(by_ref, tls ? 0 : 21);
    assert_int_equal(copied, tls ? 23 : 2);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(q.mem, 0);
    assert_null(q.head);
    assert_int_equal(sock.out.bytes, 9 + 23);
    struct iovec iov[8];
    int n = sg_outq_iov(&sock.out, iov, 8);
    char all[64];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, iov[i].iov_base, iov[i].iov_len);
        k += iov[i].iov_len;
    }
    assert_int_equal(k, 32);
    assert_memory_equal(all, hd, 9);
    assert_memory_equal(all + 9, " 1\ndata: a\n\nccdata: b\n\n", 23);
    if (!tls) {
        /* header | a[3..16) by reference | "cc" | b by reference */
        assert_int_equal(n, 4);
        assert_ptr_equal(iov[1].iov_base, a->data + 3);
        assert_int_equal(iov[1].iov_len, 12);
        assert_ptr_equal(iov[3].iov_base, b->data);
        assert_int_equal(a->refs, 2); /* the caller's and the output queue's */
    } else {
        for (int i = 0; i < n; i++)
            assert_true((char *)iov[i].iov_base < a->data || (char *)iov[i].iov_base >= a->data + a->len);
        assert_int_equal(a->refs, 1);
    }
    sg_outq_clear(&sock.out, &loop.pool);
    assert_int_equal(a->refs, 1);
    assert_int_equal(b->refs, 1);
    sg_rbuf_unref(a);
    sg_rbuf_unref(b);
    sock.ssl = NULL;
    sg_loop_cancel(&sock.flush_d);
    sg_loop_free(&loop);
}

static void test_send_data_by_reference(void **state)
{
    (void)state;
    send_data_case(false);
}

static void test_send_data_tls_copies_once(void **state)
{
    (void)state;
    send_data_case(true);
}

/* Padding (never asked for by ssegate's sessions, handled as RFC 9113 6.1 says): Pad Length, payload, zeros. */
static void test_send_data_padding(void **state)
{
    (void)state;
    sg_loop_t loop;
    assert_int_equal(sg_loop_init(&loop), 0);
    sg_sock_t sock;
    sg_sock_init(&sock, &loop, -1, NULL, no_flush);
    sg_rbuf_t *a = sg_rbuf_new("xyz", 3);
    sg_h2segq_t q = {0};
    sg_h2segq_append_ref(&q, a);
    const uint8_t hd[9] = {0, 0, 7, 0, 0x8, 0, 0, 0, 3};
    size_t by_ref, copied;
    assert_int_equal(sg_h2io_send_data(&sock, &q, hd, 3, 4, &by_ref, &copied), 0);
    struct iovec iov[8];
    int n = sg_outq_iov(&sock.out, iov, 8);
    char all[32];
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, iov[i].iov_base, iov[i].iov_len);
        k += iov[i].iov_len;
    }
    assert_int_equal(k, 9 + 1 + 3 + 3);
    assert_int_equal((uint8_t)all[9], 3);
    assert_memory_equal(all + 10, "xyz\0\0\0", 6);
    sg_outq_clear(&sock.out, &loop.pool);
    sg_rbuf_unref(a);
    sg_loop_cancel(&sock.flush_d);
    sg_loop_free(&loop);
}

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
        cmocka_unit_test(test_send_data_by_reference),
        cmocka_unit_test(test_send_data_tls_copies_once),
        cmocka_unit_test(test_send_data_padding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
