/* test_health.c: the health table, passive backoff, stream counts, status parsing, and active probes against a
 * local server driven from the same poll loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "config/config.h"
#include "proxy/health.h"
#include "core/loop.h"

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
    return sa;
}

static void test_parse_status(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int want;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\n", 200},
        {"HTTP/1.0 503 Service Unavailable\r\nX: y\r\n", 503},
        {"HTTP/1.1 404\r\n", 404},
        {"HTTP/1.1 301\n", 301},
        {"HTTP/1.1 200 OK", SG_EINCOMPLETE},
        {"HTTP/1.", SG_EINCOMPLETE},
        {"HTT", SG_EINCOMPLETE},
        {"", SG_EINCOMPLETE},
        {"HTTP/2 200\r\n", SG_EBADMSG},
        {"SSH-2.0-OpenSSH\r\n", SG_EBADMSG},
        {"HTTP/1.1 2000 OK\r\n", SG_EBADMSG},
        {"HTTP/1.1 20 OK\r\n", SG_EBADMSG},
        {"HTTP/1.1 099 X\r\n", SG_EBADMSG},
        {"HTTP/1.1 600 X\r\n", SG_EBADMSG},
        {"HTTP/1.1  200\r\n", SG_EBADMSG},
        {"HTTP/1.x 200\r\n", SG_EBADMSG},
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
        int got = sg_health_parse_status(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].want)
            fprintf(stderr, "case %zu \"%s\": got %d want %d\n", i, cases[i].s, got, cases[i].want);
        assert_int_equal(got, cases[i].want);
    }
    /* an endless first line is refused rather than waited for */
    char big[400];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 ", 13);
    assert_int_equal(sg_health_parse_status(big, sizeof(big)), SG_EBADMSG);
}

static void test_status_ok(void **state)
{
    (void)state;
    sg_healthcheck_t hc;
    memset(&hc, 0, sizeof(hc));
    /* no ranges: AGC's default 200-399 */
    assert_true(sg_health_status_ok(&hc, 200));
    assert_true(sg_health_status_ok(&hc, 399));
    assert_false(sg_health_status_ok(&hc, 199));
    assert_false(sg_health_status_ok(&hc, 400));
    sg_status_range_t r[] = {{200, 299}, {418, 418}};
    hc.codes = r;
    hc.ncodes = 2;
    assert_true(sg_health_status_ok(&hc, 204));
    assert_true(sg_health_status_ok(&hc, 418));
    assert_false(sg_health_status_ok(&hc, 302));
    assert_false(sg_health_status_ok(&hc, 500));
}

static void count_entry(const sg_health_entry_t *e, void *arg)
{
    assert_non_null(e);
    (*(size_t *)arg)++;
}

static void test_table_keys(void **state)
{
    (void)state;
    sg_health_t h;
    assert_int_equal(sg_health_init(&h), 0);
    struct sockaddr_in a = v4("10.0.0.1", 80), b = v4("10.0.0.1", 81), c = v4("10.0.0.2", 80);
    sg_health_entry_t *ea = sg_health_get(&h, (struct sockaddr *)&a, sizeof(a));
    assert_non_null(ea);
    assert_ptr_equal(sg_health_get(&h, (struct sockaddr *)&a, sizeof(a)), ea);
    assert_ptr_not_equal(sg_health_get(&h, (struct sockaddr *)&b, sizeof(b)), ea);
    assert_ptr_not_equal(sg_health_get(&h, (struct sockaddr *)&c, sizeof(c)), ea);
    assert_string_equal(ea->label, "10.0.0.1:80");
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(443);
    inet_pton(AF_INET6, "::1", &s6.sin6_addr);
    sg_health_entry_t *e6 = sg_health_get(&h, (struct sockaddr *)&s6, sizeof(s6));
    assert_non_null(e6);
    assert_string_equal(e6->label, "[::1]:443");
    /* growth keeps every entry where it was */
    sg_health_entry_t *first[3000];
    for (int i = 0; i < 3000; i++) {
        struct sockaddr_in x = v4("10.1.0.0", 0);
        x.sin_addr.s_addr = htonl(0x0a010000u + (uint32_t)i);
        x.sin_port = htons(8080);
        first[i] = sg_health_get(&h, (struct sockaddr *)&x, sizeof(x));
        assert_non_null(first[i]);
    }
    for (int i = 0; i < 3000; i++) {
        struct sockaddr_in x = v4("10.1.0.0", 0);
        x.sin_addr.s_addr = htonl(0x0a010000u + (uint32_t)i);
        x.sin_port = htons(8080);
        assert_ptr_equal(sg_health_get(&h, (struct sockaddr *)&x, sizeof(x)), first[i]);
    }
    assert_ptr_equal(sg_health_get(&h, (struct sockaddr *)&a, sizeof(a)), ea);
    assert_int_equal(h.nentries, 3004);
    size_t seen = 0;
    sg_health_each(&h, count_entry, &seen);
    assert_int_equal(seen, 3004);
    sg_health_free(&h);
    sg_health_free(&h); /* a freed table is a zeroed one */
}

static void test_passive_backoff(void **state)
{
    (void)state;
    sg_health_t h;
    assert_int_equal(sg_health_init(&h), 0);
    struct sockaddr_in a = v4("10.0.0.1", 80);
    sg_health_entry_t *e = sg_health_get(&h, (struct sockaddr *)&a, sizeof(a));
    uint64_t t = 1000000;
    assert_true(sg_health_usable(e, t));
    assert_true(sg_health_usable(NULL, t));
    sg_health_report_failure(NULL, t); /* NULL-tolerant */
    /* 1 s, then 2 s, 4 s ... doubling per failure in a row, at most 30 s */
    static const uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (size_t i = 0; i < SG_ARRAY_LEN(want); i++) {
        sg_health_report_failure(e, t);
        assert_false(sg_health_usable(e, t));
        assert_false(sg_health_usable(e, t + want[i] - 1));
        assert_true(sg_health_usable(e, t + want[i]));
        /* failures while ejected (streams that were in flight together) do not lengthen it */
        sg_health_report_failure(e, t + 1);
        assert_true(sg_health_usable(e, t + want[i]));
        t += want[i];
    }
    assert_int_equal(atomic_load(&e->consecutive_failures), (int)SG_ARRAY_LEN(want));
    /* a success resets the backoff */
    sg_health_report_success(e);
    assert_int_equal(atomic_load(&e->consecutive_failures), 0);
    sg_health_report_failure(e, t);
    assert_true(sg_health_usable(e, t + 1000));
    /* active checks and passive ejection combine */
    atomic_store(&e->healthy, 0);
    assert_false(sg_health_usable(e, t + 5000));
    sg_health_free(&h);
}

static void test_stream_counts(void **state)
{
    (void)state;
    sg_health_t h;
    assert_int_equal(sg_health_init(&h), 0);
    struct sockaddr_in a = v4("10.0.0.1", 80);
    sg_health_entry_t *e = sg_health_get(&h, (struct sockaddr *)&a, sizeof(a));
    for (int i = 0; i < 5; i++)
        sg_health_stream_begin(e);
    sg_health_stream_end(e);
    assert_int_equal(sg_health_active(e), 4);
    sg_health_stream_begin(NULL);
    sg_health_stream_end(NULL);
    assert_int_equal(sg_health_active(NULL), 0);
    sg_health_free(&h);
}

/* ---- active probes against a server in the same loop ---- */

#define MAXC 8

typedef struct server {
    int lfd;
    uint16_t port;
    int status;         /* what to answer; 0: accept and never answer */
    int conns[MAXC];
    char req[MAXC][1024];
    size_t reqlen[MAXC];
    int answered;
    char last_req[1024];
} server_t;

static void server_open(server_t *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < MAXC; i++)
        s->conns[i] = -1;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in sa = v4("127.0.0.1", 0);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
}

static void server_close(server_t *s)
{
    for (int i = 0; i < MAXC; i++)
        if (s->conns[i] >= 0)
            close(s->conns[i]);
    close(s->lfd);
}

static void server_io(server_t *s)
{
    int fd;
    while ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        int i = 0;
        while (i < MAXC && s->conns[i] >= 0)
            i++;
        if (i == MAXC) {
            close(fd);
            continue;
        }
        s->conns[i] = fd;
        s->reqlen[i] = 0;
    }
    for (int i = 0; i < MAXC; i++) {
        if (s->conns[i] < 0)
            continue;
        ssize_t r = recv(s->conns[i], s->req[i] + s->reqlen[i], sizeof(s->req[i]) - 1 - s->reqlen[i], 0);
        if (r > 0) {
            s->reqlen[i] += (size_t)r;
            s->req[i][s->reqlen[i]] = '\0';
        }
        if (r == 0) {
            close(s->conns[i]);
            s->conns[i] = -1;
            continue;
        }
        if (strstr(s->req[i], "\r\n\r\n") == NULL || s->status == 0)
            continue;
        char resp[128];
        int n = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                         s->status);
        assert_int_equal(send(s->conns[i], resp, (size_t)n, MSG_NOSIGNAL), n);
        memcpy(s->last_req, s->req[i], s->reqlen[i] + 1);
        close(s->conns[i]);
        s->conns[i] = -1;
        s->answered++;
    }
}

/* Runs the health poll loop (and the server) until cond() holds or ms pass. */
static bool drive(sg_health_t *h, server_t *s, uint64_t ms, bool (*cond)(sg_health_t *, server_t *, void *),
                  void *arg)
{
    uint64_t end = sg_now_ms() + ms;
    while (sg_now_ms() < end) {
        if (cond(h, s, arg))
            return true;
        struct pollfd pfds[1 + SG_HEALTH_MAX_INFLIGHT];
        int nh = sg_health_pollfds(h, pfds);
        int ns = 0;
        if (s != NULL) {
            pfds[nh] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
            ns = 1;
        }
        int to = sg_health_next_timeout_ms(h, sg_now_ms());
        poll(pfds, (nfds_t)(nh + ns), to < 0 || to > 10 ? 10 : to);
        if (s != NULL)
            server_io(s);
        sg_health_handle(h, pfds, nh, sg_now_ms());
        if (s != NULL)
            server_io(s);
    }
    return cond(h, s, arg);
}

static bool answered_at_least(sg_health_t *h, server_t *s, void *arg)
{
    (void)h;
    return s->answered >= *(int *)arg;
}

typedef struct want {
    int healthy;
    sg_health_entry_t *e;
} want_t;

static bool entry_is(sg_health_t *h, server_t *s, void *arg)
{
    (void)h;
    (void)s;
    const want_t *w = arg;
    return atomic_load(&w->e->healthy) == w->healthy;
}

static sg_config_t *config_for(uint16_t port, const char *hc_default)
{
    char y[2048];
    int n = snprintf(y, sizeof(y),
                     "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
                     "spec:\n  listeners:\n  - {name: http, protocol: HTTP, port: 80}\n---\n"
                     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
                     "spec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: [{name: 127.0.0.1, port: %u}]\n"
                     "%s%s",
                     port, hc_default ? "---\napiVersion: alb.networking.azure.io/v1\nkind: HealthCheckPolicy\n"
                                        "metadata: {name: hc}\nspec:\n  targetRef: {group: '', kind: Service, "
                                        "name: 127.0.0.1}\n  default: " : "",
                     hc_default ? hc_default : "");
    assert_true(n > 0 && (size_t)n < sizeof(y));
    sg_config_t *cfg = NULL;
    int rc = sg_config_load_ex("h.yaml", y, (size_t)n, SG_CONFIG_NO_DNS, stderr, &cfg);
    assert_int_equal(rc, 0);
    return cfg;
}

static void test_probe_thresholds(void **state)
{
    (void)state;
    server_t s;
    server_open(&s);
    sg_health_t h;
    assert_int_equal(sg_health_init(&h), 0);
    sg_config_t *cfg = config_for(s.port, "{interval: 50ms, timeout: 2s, healthyThreshold: 2, unhealthyThreshold: 3,"
                                          " http: {host: probe.example, path: /healthz}}\n");
    assert_int_equal(sg_health_attach(&h, cfg), 0);
    sg_endpoint_t *ep = &cfg->routes[0].rules[0].backends[0].endpoints[0];
    assert_non_null(ep->health);
    sg_health_entry_t *e = ep->health;
    assert_int_equal(h.nprobes, 1);

    s.status = 200;
    int want = 2;
    assert_true(drive(&h, &s, 3000, answered_at_least, &want));
    assert_non_null(strstr(s.last_req, "GET /healthz HTTP/1.1\r\n"));
    assert_non_null(strstr(s.last_req, "\r\nHost: probe.example\r\n"));
    assert_non_null(strstr(s.last_req, "\r\nConnection: close\r\n"));
    assert_int_equal(atomic_load(&e->healthy), 1);

    /* 500: unhealthy only after the third failure in a row */
    s.status = 500;
    s.answered = 0;
    want = 2;
    assert_true(drive(&h, &s, 3000, answered_at_least, &want));
    /* the probe has read answer 2 by the time the next one is served; allow one more loop turn */
    drive(&h, &s, 20, answered_at_least, &(int){1000});
    if (s.answered == 2)
        assert_int_equal(atomic_load(&e->healthy), 1);
    want = 3;
    assert_true(drive(&h, &s, 3000, answered_at_least, &want));
    want_t w0 = {0, e};
    assert_true(drive(&h, &s, 1000, entry_is, &w0));
    assert_false(sg_health_usable(e, sg_now_ms()));

    /* 200 again: healthy after two passes */
    s.status = 200;
    s.answered = 0;
    want = 1;
    assert_true(drive(&h, &s, 3000, answered_at_least, &want));
    drive(&h, &s, 5, answered_at_least, &(int){1000});
    if (s.answered == 1)
        assert_int_equal(atomic_load(&e->healthy), 0);
    want_t w1 = {1, e};
    assert_true(drive(&h, &s, 3000, entry_is, &w1));
    assert_true(s.answered >= 2);

    /* a reload that keeps the address keeps the entry; one without the policy trusts it again */
    atomic_store(&e->healthy, 0);
    sg_config_t *cfg2 = config_for(s.port, NULL);
    assert_int_equal(sg_health_attach(&h, cfg2), 0);
    assert_ptr_equal(cfg2->routes[0].rules[0].backends[0].endpoints[0].health, e);
    assert_int_equal(h.nprobes, 0);
    assert_int_equal(atomic_load(&e->healthy), 1);
    assert_int_equal(sg_health_next_timeout_ms(&h, sg_now_ms()), -1);

    sg_config_unref(cfg);
    sg_config_unref(cfg2);
    sg_health_free(&h);
    server_close(&s);
}

static void test_probe_failures(void **state)
{
    (void)state;
    sg_health_t h;
    assert_int_equal(sg_health_init(&h), 0);
    /* connection refused: a port nobody listens on */
    server_t s;
    server_open(&s);
    uint16_t dead = s.port;
    server_close(&s);
    sg_config_t *cfg = config_for(dead, "{interval: 20ms, timeout: 1s, unhealthyThreshold: 2}\n");
    assert_int_equal(sg_health_attach(&h, cfg), 0);
    sg_health_entry_t *e = cfg->routes[0].rules[0].backends[0].endpoints[0].health;
    want_t w0 = {0, e};
    assert_true(drive(&h, NULL, 3000, entry_is, &w0));
    sg_config_unref(cfg);

    /* a server that accepts and never answers: the timeout fails it; the probe port overrides the endpoint's */
    server_open(&s);
    s.status = 0;
    atomic_store(&e->healthy, 1);
    char def[256];
    snprintf(def, sizeof(def), "{interval: 20ms, timeout: 100ms, unhealthyThreshold: 1, port: %u}\n", s.port);
    cfg = config_for(dead, def);
    assert_int_equal(sg_health_attach(&h, cfg), 0);
    assert_ptr_equal(cfg->routes[0].rules[0].backends[0].endpoints[0].health, e);
    uint64_t t0 = sg_now_ms();
    assert_true(drive(&h, &s, 3000, entry_is, &w0));
    assert_true(sg_now_ms() - t0 >= 90);
    bool got = false;
    for (int i = 0; i < MAXC; i++)
        got |= s.conns[i] >= 0 || s.reqlen[i] > 0;
    assert_true(got); /* it did reach the probe port */

    /* status outside the configured ranges */
    server_close(&s);
    server_open(&s);
    s.status = 302;
    snprintf(def, sizeof(def), "{interval: 20ms, unhealthyThreshold: 1, port: %u, http: {match: {statusCodes: "
             "[{start: 200, end: 299}]}}}\n", s.port);
    sg_config_t *cfg2 = config_for(dead, def);
    atomic_store(&e->healthy, 1);
    assert_int_equal(sg_health_attach(&h, cfg2), 0);
    assert_true(drive(&h, &s, 3000, entry_is, &w0));
    assert_true(s.answered >= 1);
    sg_config_unref(cfg);
    sg_config_unref(cfg2);
    sg_health_free(&h);
    server_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_status),    cmocka_unit_test(test_status_ok),
        cmocka_unit_test(test_table_keys),      cmocka_unit_test(test_passive_backoff),
        cmocka_unit_test(test_stream_counts),   cmocka_unit_test(test_probe_thresholds),
        cmocka_unit_test(test_probe_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
