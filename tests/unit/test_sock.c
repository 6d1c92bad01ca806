/* test_sock.c: a plain sg_sock on a real stream socket pair: a flush of one buffer and of several (send and sendmsg)
 * reaches the peer whole and in order; a read fills the chunk and says EAGAIN and EOF; a full socket arms EPOLLOUT
 * and the rest goes once the peer reads; and a flush to a closed peer is -EPIPE with SIGPIPE at its default
 * disposition (the process is not killed: the calls carry MSG_NOSIGNAL, so the sock does not rely on main.c
 * ignoring the signal). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/sock.h"

typedef struct fx {
    sg_loop_t loop;
    sg_sock_t sock;
    int peer;
} fx_t;

static void no_cb(sg_watcher_t *w, uint32_t events)
{
    (void)w;
    (void)events;
}

static void no_flush(sg_deferred_t *d)
{
    (void)d;
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    int sv[2];
    if (fx == NULL || sg_loop_init(&fx->loop) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return -1;
    sg_sock_init(&fx->sock, &fx->loop, sv[0], no_cb, no_flush);
    fx->peer = sv[1];
    /* The signal's default action, as in a program that never set it: a write without MSG_NOSIGNAL to a closed
     * peer would end this test binary. */
    signal(SIGPIPE, SIG_DFL);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    sg_loop_cancel(&fx->sock.flush_d);
    sg_sock_close(&fx->sock);
    if (fx->peer >= 0)
        close(fx->peer);
    sg_loop_free(&fx->loop);
    free(fx);
    return 0;
}

static size_t peer_read(fx_t *fx, char *buf, size_t cap)
{
    size_t k = 0;
    while (k < cap) {
        ssize_t n = read(fx->peer, buf + k, cap - k);
        if (n <= 0)
            break;
        k += (size_t)n;
    }
    return k;
}

static void test_one_buffer(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(sg_sock_write(&fx->sock, "hello", 5), 0);
    assert_int_equal(sg_sock_flush(&fx->sock), 0);
    assert_int_equal(fx->sock.out.bytes, 0);
    char buf[16];
    assert_int_equal(peer_read(fx, buf, sizeof(buf)), 5);
    assert_memory_equal(buf, "hello", 5);
}

static void test_several_buffers_in_order(void **state)
{
    fx_t *fx = *state;
    struct iovec iov[3] = {{"5\r\n", 3}, {"data:", 5}, {"\r\n", 2}};
    assert_int_equal(sg_sock_writev(&fx->sock, iov, 3), 0);
    sg_rbuf_t *b = sg_rbuf_new(" x\n\n", 4);
    assert_non_null(b);
    assert_int_equal(sg_sock_write_ref(&fx->sock, b), 0);
    sg_rbuf_unref(b);
    assert_int_equal(sg_sock_flush(&fx->sock), 0);
    char buf[32];
    assert_int_equal(peer_read(fx, buf, sizeof(buf)), 14);
    assert_memory_equal(buf, "5\r\ndata:\r\n x\n\n", 14);
}

static void test_read_eagain_and_eof(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(sg_sock_read(&fx->sock), SG_EAGAIN);
    assert_null(fx->sock.in); /* an empty read gives its chunk back */
    assert_int_equal(write(fx->peer, "abc", 3), 3);
    assert_int_equal(sg_sock_read(&fx->sock), 3);
    assert_int_equal(write(fx->peer, "de", 2), 2);
    assert_int_equal(sg_sock_read(&fx->sock), 2);
    assert_int_equal(sg_chunk_len(fx->sock.in), 5);
    assert_memory_equal(fx->sock.in->data + fx->sock.in->rpos, "abcde", 5);
    sg_sock_consume(&fx->sock, 5);
    assert_null(fx->sock.in);
    close(fx->peer);
    fx->peer = -1;
    assert_int_equal(sg_sock_read(&fx->sock), 0);
}

/* Back-pressure: what the socket does not take stays queued with EPOLLOUT armed, and goes once the peer reads. */
static void test_full_socket_arms_epollout(void **state)
{
    fx_t *fx = *state;
    static char block[65536];
    memset(block, 'z', sizeof(block));
    size_t queued = 0;
    int rc = 0;
    for (int i = 0; i < 256 && rc == 0; i++) {
        assert_int_equal(sg_sock_write(&fx->sock, block, sizeof(block)), 0);
        queued += sizeof(block);
        rc = sg_sock_flush(&fx->sock);
    }
    assert_int_equal(rc, SG_EAGAIN);
    assert_true(fx->sock.write_blocked);
    assert_true(fx->sock.w.mask & EPOLLOUT);
    size_t got = 0;
    static char sink[65536];
    while (got < queued) {
        ssize_t n = read(fx->peer, sink, sizeof(sink));
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        assert_true(n < 0 && errno == EAGAIN);
        rc = sg_sock_flush(&fx->sock); /* the peer made room: what fits goes */
        assert_true(rc == 0 || rc == SG_EAGAIN);
    }
    assert_int_equal(sg_sock_flush(&fx->sock), 0);
    assert_int_equal(got, queued);
    assert_false(fx->sock.write_blocked);
    assert_false(fx->sock.w.mask & EPOLLOUT);
}

static void test_closed_peer_is_epipe(void **state)
{
    fx_t *fx = *state;
    close(fx->peer);
    fx->peer = -1;
    assert_int_equal(sg_sock_write(&fx->sock, "x", 1), 0);
    assert_int_equal(sg_sock_flush(&fx->sock), -EPIPE);
    struct iovec iov[2] = {{"a", 1}, {"b", 1}};
    assert_int_equal(sg_sock_writev(&fx->sock, iov, 2), 0);
    assert_int_equal(sg_sock_flush(&fx->sock), -EPIPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_buffers_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_eagain_and_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_socket_arms_epollout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_peer_is_epipe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
