/* test_h2.c: h2.c in-process: a real loop and a real accepted TCP connection, driven by an nghttp2 client
 * session: h2c prior-knowledge hand-over, SETTINGS from sg_settings_t, a 404 answered as HEADERS + DATA,
 * and GOAWAY for a PING flood. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/conn.h"
#include "codec/h1parse.h"
#include "http/h2.h"
#include "proxy/proxy.h"
#include "config/route.h"
#include "serve.h"

typedef struct env {
    sg_worker_t *w;
    sg_settings_t st;
    sg_listen_sock_t ls;
    int cfd;
    nghttp2_session *cli;
    int status;
    char body[256];
    size_t body_len;
    bool stream_closed;
    uint32_t goaway_code;
    bool goaway;
    sg_timer_t tick;            /* keeps sg_loop_run_once from sleeping on the gateway's long timers */
} env_t;

static void tick_cb(sg_timer_t *t)
{
    (void)t;
}

static const char YAML[] = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
                           "spec:\n  listeners:\n  - {name: http, protocol: HTTP, port: 8080}\n";

static ssize_t cli_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    env_t *e = ud;
    ssize_t n = write(e->cfd, data, len);
    return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static int cli_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)s;
    (void)f;
    (void)flags;
    env_t *e = ud;
    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        e->status = atoi((const char *)value) + 0 * (int)vlen;
    return 0;
}

static int cli_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
    (void)s;
    (void)flags;
    (void)id;
    env_t *e = ud;
    size_t k = SG_MIN(len, sizeof(e->body) - e->body_len);
    memcpy(e->body + e->body_len, data, k);
    e->body_len += k;
    return 0;
}

static int cli_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)s;
    (void)id;
    (void)code;
    ((env_t *)ud)->stream_closed = true;
    return 0;
}

static int cli_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    env_t *e = ud;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        e->goaway = true;
        e->goaway_code = f->goaway.error_code;
    }
    return 0;
}

/* Runs the gateway's loop and the client's reads for a while, until done(e) or the rounds run out. */
static void pump(env_t *e, bool (*done)(env_t *e))
{
    for (int i = 0; i < 200 && !(done && done(e)); i++) {
        sg_timer_arm(&e->w->loop.wheel, &e->tick, sg_now_ms() + 1);
        sg_loop_run_once(&e->w->loop);
        struct pollfd p = {e->cfd, POLLIN, 0};
        while (poll(&p, 1, 2) > 0 && (p.revents & POLLIN)) {
            uint8_t buf[16384];
            ssize_t n = read(e->cfd, buf, sizeof(buf));
            if (n <= 0)
                return;
            assert_true(nghttp2_session_mem_recv(e->cli, buf, (size_t)n) == n);
        }
        nghttp2_session_send(e->cli);
    }
}

static int setup_env(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    e->w = calloc(1, sizeof(*e->w));
    e->st = (sg_settings_t){.header_timeout_ms = 10000, .idle_timeout_ms = 60000, .connect_timeout_ms = 1000,
                            .response_timeout_ms = 1000, .out_high_wm = 256 * 1024, .out_low_wm = 64 * 1024,
                            .log_fd = -1, .stall_timeout_ms = 60000, .h2_max_streams = 7};
    sg_config_t *cfg = NULL;
    assert_int_equal(sg_config_load_ex("t.yaml", YAML, sizeof(YAML) - 1, SG_CONFIG_NO_DNS, stderr, &cfg), 0);
    sg_worker_t *w = e->w;
    assert_int_equal(sg_loop_init(&w->loop), 0);
    w->loop.data = w;
    w->settings = &e->st;
    w->cfg = cfg;
    w->route_scratch = sg_route_scratch_new();
    w->protos = &sg_serve_protos;
    w->handler = &sg_proxy_handler;
    w->msg = malloc(sizeof(*w->msg));
    sg_list_init(&w->conns);
    sg_timer_init(&e->tick, tick_cb);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    e->cfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(e->cfd, (struct sockaddr *)&a, sizeof(a)), 0);
    e->ls = (sg_listen_sock_t){.w = {.fd = lfd}, .worker = w, .port = 8080, .protocol = SG_PROTO_HTTP};
    sg_conn_accept(&e->ls);
    assert_int_equal(w->nconns, 1);

    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, cli_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, cli_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cli_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, cli_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, cli_frame);
    nghttp2_session_client_new(&e->cli, cb, e);
    nghttp2_session_callbacks_del(cb);
    *state = e;
    return 0;
}

static int teardown_env(void **state)
{
    env_t *e = *state;
    nghttp2_session_del(e->cli);
    close(e->cfd);
    while (!sg_list_empty(&e->w->conns))
        sg_conn_close(SG_CONTAINER_OF(e->w->conns.next, sg_conn_t, link));
    sg_timer_cancel(&e->w->loop.wheel, &e->tick);
    e->w->loop.stop = true; /* run the reap list without waiting */
    sg_loop_run_once(&e->w->loop);
    close(e->ls.w.fd);
    sg_route_scratch_free(e->w->route_scratch);
    free(e->w->msg);
    sg_config_unref(e->w->cfg);
    sg_loop_free(&e->w->loop);
    free(e->w);
    free(e);
    return 0;
}

static bool closed_stream(env_t *e)
{
    return e->stream_closed;
}

static bool conn_gone(env_t *e)
{
    return e->w->nconns == 0;
}

static bool got_goaway(env_t *e)
{
    return e->goaway;
}

static void test_h2c_request_answered(void **state)
{
    env_t *e = *state;
    nghttp2_submit_settings(e->cli, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
        {(uint8_t *)":path", (uint8_t *)"/x", 5, 2, 0},
        {(uint8_t *)":authority", (uint8_t *)"gw.test", 10, 7, 0},
    };
    assert_true(nghttp2_submit_request(e->cli, NULL, nv, 4, NULL, NULL) == 1);
    nghttp2_session_send(e->cli); /* the preface and the request in one write: h1 hands the bytes over */
    pump(e, closed_stream);
    assert_true(e->stream_closed);
    assert_int_equal(e->status, 404);
    assert_int_equal(e->body_len, strlen("ssegate: no route\n"));
    assert_memory_equal(e->body, "ssegate: no route\n", e->body_len);
    /* Our SETTINGS came from sg_settings_t (7) and the defaults. */
    assert_int_equal(nghttp2_session_get_remote_settings(e->cli, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 7);
    assert_int_equal(nghttp2_session_get_remote_settings(e->cli, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE),
                     SG_H2_DEFAULT_STREAM_WINDOW);
    assert_int_equal(nghttp2_session_get_remote_settings(e->cli, NGHTTP2_SETTINGS_ENABLE_PUSH), 0);
    sg_conn_t *c = SG_CONTAINER_OF(e->w->conns.next, sg_conn_t, link);
    assert_true(sg_h2_is(c));
    assert_int_equal(sg_h2_nstreams(c), 0);
}

static void test_ping_flood_goaway(void **state)
{
    env_t *e = *state;
    nghttp2_submit_settings(e->cli, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_session_send(e->cli);
    pump(e, NULL);
    /* 3,000 PINGs in one write: more outstanding PING ACKs than nghttp2 lets queue up. */
    static uint8_t flood[3000 * 17];
    for (int i = 0; i < 3000; i++) {
        uint8_t *f = flood + i * 17;
        memset(f, 0, 17);
        f[2] = 8;
        f[3] = NGHTTP2_PING;
    }
    assert_int_equal(write(e->cfd, flood, sizeof(flood)), (ssize_t)sizeof(flood));
    pump(e, got_goaway);
    assert_true(e->goaway);
    assert_int_equal(e->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
}

static void test_goaway_two_steps(void **state)
{
    env_t *e = *state;
    nghttp2_submit_settings(e->cli, NGHTTP2_FLAG_NONE, NULL, 0);
    nghttp2_session_send(e->cli);
    pump(e, NULL);
    sg_conn_t *c = SG_CONTAINER_OF(e->w->conns.next, sg_conn_t, link);
    assert_true(sg_h2_is(c));
    assert_int_equal(sg_h2_goaway(c, false), 0);
    pump(e, got_goaway);
    assert_true(e->goaway);
    assert_int_equal(e->goaway_code, NGHTTP2_NO_ERROR);
    pump(e, NULL);
    assert_int_equal(e->w->nconns, 1); /* a notice leaves room for streams already on their way */
    assert_int_equal(sg_h2_goaway(c, true), 0);
    /* No streams: after the final GOAWAY the gateway shuts its side (pump returns at our EOF), then lingers,
     * discarding input, until the client closes too; then the connection is gone. */
    pump(e, conn_gone);
    uint8_t b[64];
    assert_int_equal(read(e->cfd, b, sizeof(b)), 0);
    assert_int_equal(e->w->nconns, 1);
    assert_true(c->lingering);
    assert_int_equal(write(e->cfd, "late bytes", 10), 10); /* read and dropped, no RST */
    close(e->cfd);
    e->cfd = -1;
    pump(e, conn_gone);
    assert_int_equal(e->w->nconns, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_h2c_request_answered, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_ping_flood_goaway, setup_env, teardown_env),
        cmocka_unit_test_setup_teardown(test_goaway_two_steps, setup_env, teardown_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
