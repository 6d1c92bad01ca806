/* fuzz_h2conn.c: libFuzzer harness for a whole HTTP/2 server connection: any sequence of frames, from the
 * preface on, fed through a real accepted TCP connection into the real worker loop (h1 hand-over, h2.c,
 * proxy.c, the admission table), in pieces so that read batches split anywhere. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "config/route.h"
#include "http/admit.h"
#include "http/conn.h"
#include "http/h2.h"
#include "proxy/proxy.h"
#include "serve.h"

/*
 * Input: byte 0 is the mode, the rest are client bytes.
 *   bit 0: 0 = the harness sends the client preface first; 1 = the input is sent raw (bad prefaces).
 *   bits 1-3: the size of each write: all at once, or 1, 9, 17, 64, 256, 1024, 4096 bytes; the worker loop
 *   runs between writes, so a HEADERS and its RST_STREAM can land in one read batch or in two.
 * The config routes /a to 127.0.0.1:1 (refused: no backend is ever reachable) and answers 404 elsewhere; the
 * reset budget and the per-address budget are small so that both trip. Besides sanitizer reports, the
 * connection must be gone once the client has closed and the loop has run.
 */
#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                    \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char YAML[] =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
    "spec:\n  listeners:\n  - {name: http, protocol: HTTP, port: 8080}\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
    "spec:\n  parentRefs: [{name: gw}]\n  rules:\n"
    "  - matches: [{path: {type: PathPrefix, value: /a}}]\n    backendRefs: [{name: 127.0.0.1, port: 1}]\n";

typedef struct env {
    sg_worker_t w;
    sg_settings_t st;
    sg_listen_sock_t ls;
    struct sockaddr_in addr;
    sg_timer_t tick;
} env_t;

static env_t *env;

static void tick_cb(sg_timer_t *t)
{
    (void)t;
}

static void env_init(void)
{
    env = calloc(1, sizeof(*env));
    CHECK(env != NULL);
    env->st = (sg_settings_t){.header_timeout_ms = 10000, .idle_timeout_ms = 60000, .connect_timeout_ms = 1000,
                              .response_timeout_ms = 1000, .out_high_wm = 256 * 1024, .out_low_wm = 64 * 1024,
                              .log_fd = -1, .stall_timeout_ms = 60000, .h2_max_streams = 64,
                              .h2_reset_budget = 5, .client_rate = 50};
    sg_config_t *cfg = NULL;
    CHECK(sg_config_load_ex("fuzz.yaml", YAML, sizeof(YAML) - 1, SG_CONFIG_NO_DNS, stderr, &cfg) == 0);
    sg_worker_t *w = &env->w;
    CHECK(sg_loop_init(&w->loop) == 0);
    w->loop.data = w;
    w->settings = &env->st;
    w->cfg = cfg;
    w->rng = 0x9e3779b97f4a7c15ull;
    w->route_scratch = sg_route_scratch_new();
    w->admit = sg_admit_new(env->st.client_rate, 1);
    w->protos = &sg_serve_protos;
    w->handler = &sg_proxy_handler;
    w->msg = malloc(sizeof(*w->msg));
    CHECK(w->route_scratch != NULL && w->admit != NULL && w->msg != NULL);
    sg_list_init(&w->conns);
    sg_timer_init(&env->tick, tick_cb);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(lfd >= 0);
    env->addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(env->addr);
    CHECK(bind(lfd, (struct sockaddr *)&env->addr, sizeof(env->addr)) == 0);
    CHECK(listen(lfd, 16) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&env->addr, &al) == 0);
    env->ls = (sg_listen_sock_t){.w = {.fd = lfd}, .worker = w, .port = 8080, .protocol = SG_PROTO_HTTP};
    snprintf(env->ls.label, sizeof(env->ls.label), "fuzz");
}

/* Runs the worker loop a few rounds without sleeping, and drains what the gateway wrote to the client. */
static void pump(int cfd, int rounds)
{
    sg_worker_t *w = &env->w;
    for (int i = 0; i < rounds; i++) {
        sg_timer_arm(&w->loop.wheel, &env->tick, sg_now_ms());
        sg_loop_run_once(&w->loop);
        char buf[16384];
        while (cfd >= 0 && read(cfd, buf, sizeof(buf)) > 0)
            ;
    }
}

static const size_t piece_sizes[8] = {0, 1, 9, 17, 64, 256, 1024, 4096};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 262144)
        return 0;
    if (env == NULL)
        env_init();
    sg_worker_t *w = &env->w;
    bool raw = data[0] & 1;
    size_t piece = piece_sizes[(data[0] >> 1) & 7];
    data++;
    size--;

    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(cfd >= 0);
    CHECK(connect(cfd, (struct sockaddr *)&env->addr, sizeof(env->addr)) == 0);
    CHECK(fcntl(cfd, F_SETFL, O_NONBLOCK) == 0);
    sg_conn_accept(&env->ls);
    CHECK(w->nconns == 1);

    if (!raw) {
        CHECK(write(cfd, SG_H2_PREFACE, SG_H2_PREFACE_LEN) == SG_H2_PREFACE_LEN);
        pump(cfd, 1);
    }
    size_t off = 0;
    while (off < size && w->nconns > 0) {
        size_t n = piece ? SG_MIN(piece, size - off) : size - off;
        ssize_t k = write(cfd, data + off, n);
        if (k < 0 && errno != EAGAIN)
            break; /* the gateway closed: the rest has nowhere to go */
        if (k > 0)
            off += (size_t)k;
        pump(cfd, 2);
    }
    pump(cfd, 4);
    /* The client goes away: the connection must follow (lingering ends at our EOF). */
    close(cfd);
    pump(-1, 8);
    while (!sg_list_empty(&w->conns))
        sg_conn_close(SG_CONTAINER_OF(w->conns.next, sg_conn_t, link));
    pump(-1, 1);
    CHECK(w->nconns == 0);
    return 0;
}
