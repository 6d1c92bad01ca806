/* test_buf.c: chunk pool reuse and bounds, output queue append/iov/consume across chunk edges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/buf.h"

static void test_pool_reuses_and_bounds(void **state)
{
    (void)state;
    sg_pool_t p;
    sg_chunk_t *c[SG_POOL_KEEP + 10];
    sg_pool_init(&p);
    for (int i = 0; i < SG_POOL_KEEP + 10; i++) {
        c[i] = sg_pool_get(&p);
        assert_non_null(c[i]);
        c[i]->wpos = 5;
    }
    assert_int_equal(p.in_use, SG_POOL_KEEP + 10);
    for (int i = 0; i < SG_POOL_KEEP + 10; i++)
        sg_pool_put(&p, c[i]);
    assert_int_equal(p.in_use, 0);
    assert_int_equal(p.nfree, SG_POOL_KEEP); /* the rest went back to malloc */
    sg_chunk_t *again = sg_pool_get(&p);
    assert_int_equal(again->wpos, 0);
    assert_int_equal(again->rpos, 0);
    sg_pool_put(&p, again);
    sg_pool_put(&p, NULL);
    sg_pool_free(&p);
    assert_int_equal(p.nfree, 0);
}

static void test_outq_roundtrip_across_chunks(void **state)
{
    (void)state;
    sg_pool_t p;
    sg_outq_t q;
    size_t total = 3 * SG_CHUNK_SIZE + 123;
    char *src = malloc(total), *dst = malloc(total);
    for (size_t i = 0; i < total; i++)
        src[i] = (char)(i * 7 + 3);
    sg_pool_init(&p);
    sg_outq_init(&q);
    /* Appends of odd sizes so pieces straddle chunk edges. */
    size_t off = 0, step = 1;
    while (off < total) {
        size_t k = SG_MIN(step, total - off);
        assert_int_equal(sg_outq_append(&q, &p, src + off, k), 0);
        off += k;
        step = step * 3 + 1;
    }
    assert_int_equal(q.bytes, total);
    /* Drain through iovecs, consuming in uneven bites. */
    size_t got = 0;
    while (q.bytes > 0) {
        struct iovec iov[4];
        int n = sg_outq_iov(&q, iov, 4);
        assert_true(n >= 1);
        size_t bite = SG_MIN(iov[0].iov_len, (size_t)7777);
        memcpy(dst + got, iov[0].iov_base, bite);
        got += bite;
        sg_outq_consume(&q, &p, bite);
    }
    assert_int_equal(got, total);
    assert_memory_equal(src, dst, total);
    assert_int_equal(p.in_use, 0); /* every chunk went back */
    sg_pool_free(&p);
    free(src);
    free(dst);
}

static void test_outq_clear_returns_chunks(void **state)
{
    (void)state;
    sg_pool_t p;
    sg_outq_t q;
    char b[100] = {0};
    sg_pool_init(&p);
    sg_outq_init(&q);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sg_outq_append(&q, &p, b, sizeof(b)), 0);
    assert_true(p.in_use >= 4);
    sg_outq_clear(&q, &p);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(p.in_use, 0);
    sg_pool_free(&p);
}

/* A small write into an empty queue takes a chunk of its own size, not a pooled 20 KiB one: thousands of
 * streams each queueing a request head or one event must not take thousands of pooled chunks. */
static void test_small_write_is_right_sized(void **state)
{
    (void)state;
    sg_pool_t p;
    sg_outq_t q;
    char head[300], more[5000];
    memset(head, 'h', sizeof(head));
    memset(more, 'm', sizeof(more));
    sg_pool_init(&p);
    sg_outq_init(&q);
    assert_int_equal(sg_outq_append(&q, &p, head, sizeof(head)), 0);
    assert_int_equal(p.in_use, 0);
    sg_chunk_t *c = SG_CONTAINER_OF(q.chunks.next, sg_chunk_t, link);
    assert_int_equal(c->cap, sizeof(head));
    assert_int_equal(sg_chunk_len(c), sizeof(head));
    /* A later append does not fit in it: it goes to a pooled chunk behind, and the order holds. */
    assert_int_equal(sg_outq_append(&q, &p, more, sizeof(more)), 0);
    assert_int_equal(p.in_use, 1);
    assert_int_equal(q.bytes, sizeof(head) + sizeof(more));
    struct iovec iov[4];
    assert_int_equal(sg_outq_iov(&q, iov, 4), 2);
    assert_int_equal(iov[0].iov_len, sizeof(head));
    assert_memory_equal(iov[0].iov_base, head, sizeof(head));
    assert_int_equal(iov[1].iov_len, sizeof(more));
    sg_outq_consume(&q, &p, 100); /* part of the small chunk */
    sg_outq_consume(&q, &p, sizeof(head) - 100 + 10);
    assert_int_equal(q.bytes, sizeof(more) - 10);
    assert_int_equal(p.nfree, 0); /* the right-sized chunk was freed, never pooled */
    sg_outq_clear(&q, &p);
    assert_int_equal(p.in_use, 0);
    assert_int_equal(p.nfree, 1);
    /* A write over the limit into an empty queue is pooled as before. */
    assert_int_equal(sg_outq_append(&q, &p, more, SG_SMALL_WRITE + 1), 0);
    assert_int_equal(p.in_use, 1);
    sg_outq_clear(&q, &p);
    sg_pool_free(&p);
}

/* The pool marks itself dirty when a chunk comes back, and release frees what it kept for reuse. */
static void test_pool_release(void **state)
{
    (void)state;
    sg_pool_t p;
    sg_pool_init(&p);
    assert_false(p.dirty);
    sg_chunk_t *a = sg_pool_get(&p), *b = sg_pool_get(&p);
    assert_false(p.dirty);
    sg_pool_put(&p, a);
    sg_pool_put(&p, b);
    assert_true(p.dirty);
    assert_int_equal(p.nfree, 2);
    sg_pool_release(&p);
    assert_false(p.dirty);
    assert_int_equal(p.nfree, 0);
    assert_int_equal(p.in_use, 0);
    /* It still works afterwards. */
    a = sg_pool_get(&p);
    assert_non_null(a);
    sg_pool_put(&p, a);
    assert_true(p.dirty);
    sg_pool_free(&p);
}

/* Reference chunks: queued without a copy between copied bytes, written in order, released when consumed, and
 * never filled by a later copy. */
static void test_outq_references(void **state)
{
    (void)state;
    sg_pool_t p;
    sg_outq_t q;
    sg_pool_init(&p);
    sg_outq_init(&q);
    sg_rbuf_t *ev = sg_rbuf_new("data: shared\n\n", 14);
    assert_non_null(ev);
    assert_int_equal(sg_outq_append(&q, &p, "ab", 2), 0);
    assert_int_equal(sg_outq_append_ref(&q, &p, ev), 0);
    assert_int_equal(sg_outq_append(&q, &p, "cd", 2), 0);
    assert_int_equal(sg_outq_append_ref(&q, &p, ev), 0);
    assert_int_equal(ev->refs, 3);
    assert_int_equal(q.bytes, 2 + 14 + 2 + 14);
    struct iovec iov[8];
    int n = sg_outq_iov(&q, iov, 8);
    assert_int_equal(n, 4);
    assert_ptr_equal(iov[1].iov_base, ev->data); /* the bytes are the buffer's own: no copy */
    assert_int_equal(iov[1].iov_len, 14);
    assert_memory_equal(iov[2].iov_base, "cd", 2);
    sg_outq_consume(&q, &p, 2 + 5);
    assert_int_equal(sg_outq_iov(&q, iov, 8), 3);
    assert_ptr_equal(iov[0].iov_base, ev->data + 5);
    assert_int_equal(ev->refs, 3);
    sg_outq_consume(&q, &p, 9);
    assert_int_equal(ev->refs, 2);
    sg_outq_clear(&q, &p);
    assert_int_equal(ev->refs, 1);
    assert_int_equal(q.bytes, 0);
    sg_rbuf_unref(ev);
    sg_pool_free(&p);
}

/* A reference chunk with a prefix (an HTTP/2 frame header) and a range of the buffer: two iovs from one node,
 * consumed across the boundary; its node is kept by the pool and reused. */
static void test_outq_reference_prefix_range(void **state)
{
    (void)state;
    sg_pool_t p;
    sg_outq_t q;
    sg_pool_init(&p);
    sg_outq_init(&q);
    sg_rbuf_t *ev = sg_rbuf_new("0123456789", 10);
    assert_int_equal(sg_outq_append_ref_range(&q, &p, "HDR", 3, ev, 2, 5), 0);
    assert_int_equal(sg_outq_append_ref_range(&q, &p, "x", 1, ev, 8, 3), -EINVAL); /* past the end */
    assert_int_equal(sg_outq_append_ref_range(&q, &p, "0123456789abcdef", 16, ev, 0, 1), -EINVAL);
    assert_int_equal(q.bytes, 8);
    struct iovec iov[4];
    assert_int_equal(sg_outq_iov(&q, iov, 4), 2);
    assert_memory_equal(iov[0].iov_base, "HDR", 3);
    assert_int_equal(iov[0].iov_len, 3);
    assert_ptr_equal(iov[1].iov_base, ev->data + 2);
    assert_int_equal(iov[1].iov_len, 5);
    assert_int_equal(sg_outq_iov(&q, iov, 1), 1); /* room for the prefix only */
    sg_outq_consume(&q, &p, 2);
    assert_int_equal(sg_outq_iov(&q, iov, 4), 2);
    assert_memory_equal(iov[0].iov_base, "R", 1);
    sg_outq_consume(&q, &p, 3);
    assert_int_equal(sg_outq_iov(&q, iov, 4), 1);
    assert_ptr_equal(iov[0].iov_base, ev->data + 4);
    assert_int_equal(iov[0].iov_len, 3);
    assert_int_equal(ev->refs, 2);
    sg_outq_consume(&q, &p, 3);
    assert_int_equal(q.bytes, 0);
    assert_int_equal(ev->refs, 1);
    assert_int_equal(p.nreffree, 1);
    assert_int_equal(sg_outq_append_ref_range(&q, &p, NULL, 0, ev, 0, 10), 0);
    assert_int_equal(p.nreffree, 0); /* the node was reused */
    sg_outq_clear(&q, &p);
    assert_int_equal(p.nreffree, 1);
    sg_rbuf_unref(ev);
    sg_pool_release(&p);
    assert_int_equal(p.nreffree, 0);
}

/* A buffer marked shared is referenced and released by several threads at once (a shared stream's event on every
 * worker's subscribers): no update is lost, and the last reference, wherever it is dropped, frees it. */
#define RBUF_THREADS 4
#define RBUF_ROUNDS 200000
static void *rbuf_churn(void *arg)
{
    sg_rbuf_t *b = arg;
    for (int i = 0; i < RBUF_ROUNDS; i++) {
        sg_rbuf_ref(b);
        sg_rbuf_ref(b);
        sg_rbuf_unref(b);
        sg_rbuf_unref(b);
    }
    for (int i = 0; i < 1000; i++)
        sg_rbuf_unref(b); /* the references the main thread took for this one */
    return NULL;
}

static void test_rbuf_shared_across_threads(void **state)
{
    (void)state;
    sg_rbuf_t *b = sg_rbuf_new("id: 1\ndata: x\n\n", 15);
    assert_non_null(b);
    /* One thread's buffer: plain counting. */
    for (int i = 0; i < RBUF_THREADS * 1000; i++)
        sg_rbuf_ref(b);
    assert_int_equal(atomic_load(&b->refs), 1 + RBUF_THREADS * 1000);
    sg_rbuf_share(b);
    sg_rbuf_share(b); /* idempotent */
    pthread_t t[RBUF_THREADS];
    for (int i = 0; i < RBUF_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, rbuf_churn, b), 0);
    for (int i = 0; i < RBUF_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&b->refs), SG_RBUF_SHARED | 1);
    sg_rbuf_unref(b); /* the last: freed (ASan would see a leak otherwise) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_reuses_and_bounds),
        cmocka_unit_test(test_outq_roundtrip_across_chunks),
        cmocka_unit_test(test_outq_clear_returns_chunks),
        cmocka_unit_test(test_small_write_is_right_sized),
        cmocka_unit_test(test_pool_release),
        cmocka_unit_test(test_outq_references),
        cmocka_unit_test(test_outq_reference_prefix_range),
        cmocka_unit_test(test_rbuf_shared_across_threads),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
