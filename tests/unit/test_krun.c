/* test_krun.c: the status thread against an in-process fake API server: two replicas, one Lease; only the leader
 * writes status; when the leader stops it gives the Lease up and the other takes over and writes. Waits are bounded
 * loops on outcomes, never assertions on durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/diag.h"
#include "kube/krun.h"

#define CTL "ssegate.io/gateway-controller"
#define RPATH "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes/r"
#define LPATH "/apis/coordination.k8s.io/v1/namespaces/ns/leases/"

typedef struct fake {
    pthread_mutex_t mu;
    char *lease;                /* JSON, or NULL */
    int lease_rv;
    char *route;
    int route_rv;
    int status_puts[2];         /* by replica */
    int lease_releases;
} fake_t;

typedef struct conn {
    fake_t *f;
    int who;
} conn_t;

/* body with "resourceVersion" set to rv (appended into metadata when absent) */
static char *with_rv(const char *body, int rv)
{
    const char *p = strstr(body, "\"resourceVersion\"");
    size_t cap = strlen(body) + 64;
    char *n = malloc(cap);
    if (p != NULL) {
        const char *q = strchr(p + 17, '"');
        const char *r = strchr(q + 1, '"');
        snprintf(n, cap, "%.*s\"%d\"%s", (int)(q - body), body, rv, r + 1);
    } else {
        const char *m = strstr(body, "\"metadata\":{");
        snprintf(n, cap, "%.*s\"resourceVersion\":\"%d\",%s", (int)(m + 12 - body), body, rv, m + 12);
    }
    return n;
}

static int rv_of(const char *b)
{
    const char *p = strstr(b, "\"resourceVersion\"");
    return p ? atoi(strchr(p + 17, '"') + 1) : -1;
}

static int answer(const char *s, char **resp, size_t *len)
{
    *resp = strdup(s);
    *len = strlen(s);
    return 200;
}

static int fake_req(void *ctx, const char *method, const char *path, const char *body, size_t blen, char **resp,
                    size_t *len, int *retry_after_s)
{
    *retry_after_s = -1;
    conn_t *c = ctx;
    fake_t *f = c->f;
    (void)blen;
    int st = 404;
    pthread_mutex_lock(&f->mu);
    if (strcmp(path, "/apis/gateway.networking.k8s.io/v1/gatewayclasses") == 0) {
        st = answer("{\"kind\":\"GatewayClassList\",\"items\":[{\"metadata\":{\"name\":\"ssegate\",\"generation\":1},"
                    "\"spec\":{\"controllerName\":\"" CTL "\"}}]}", resp, len);
    } else if (strncmp(path, "/apis/gateway.networking.k8s.io/v1/gatewayclasses/", 51) == 0) {
        st = strcmp(method, "GET") == 0
                 ? answer("{\"metadata\":{\"name\":\"ssegate\",\"resourceVersion\":\"1\"}}", resp, len) : 200;
    } else if (strncmp(path, LPATH, strlen(LPATH)) == 0 || strcmp(path, "/apis/coordination.k8s.io/v1/namespaces/ns/"
                                                                          "leases") == 0) {
        if (strcmp(method, "GET") == 0) {
            st = f->lease ? answer(f->lease, resp, len) : 404;
        } else if (strcmp(method, "POST") == 0) {
            if (f->lease) {
                st = 409;
            } else {
                f->lease = with_rv(body, ++f->lease_rv);
                st = answer(f->lease, resp, len);
            }
        } else if (f->lease == NULL || rv_of(body) != f->lease_rv) {
            st = 409;
        } else {
            free(f->lease);
            f->lease = with_rv(body, ++f->lease_rv);
            f->lease_releases += strstr(body, "\"holderIdentity\":\"\"") != NULL;
            st = answer(f->lease, resp, len);
        }
    } else if (strcmp(path, RPATH) == 0 && strcmp(method, "GET") == 0) {
        st = answer(f->route, resp, len);
    } else if (strcmp(path, RPATH "/status") == 0) {
        if (rv_of(body) != f->route_rv) {
            st = 409;
        } else {
            free(f->route);
            f->route = with_rv(body, ++f->route_rv);
            f->status_puts[c->who]++;
            st = answer(f->route, resp, len);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return st;
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int puts_of(fake_t *f, int who)
{
    pthread_mutex_lock(&f->mu);
    int n = f->status_puts[who];
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void feed(sg_krun_t *r, const char *yaml, uint64_t build)
{
    sg_config_diag_t d;
    sg_config_t *cfg = NULL;
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sg_config_load_lenient("kube", yaml, strlen(yaml), SG_CONFIG_NO_DNS, devnull, &d, &cfg), 0);
    fclose(devnull);
    sg_config_unref(cfg);
    sg_krun_built(r, build, &d);
    assert_null(d.objs);
    sg_krun_published(r, build, NULL, 0);
}

#define YAML(gen)                                                                                                    \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: apps}\n"               \
    "spec:\n  gatewayClassName: ssegate\n  listeners:\n  - {name: http, protocol: HTTP, port: 8080}\n---\n"          \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: apps, generation: " gen \
    "}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - matches: [{path: {value: /x}}]\n"

static void test_one_leader_and_takeover(void **state)
{
    (void)state;
    fake_t f;
    memset(&f, 0, sizeof(f));
    pthread_mutex_init(&f.mu, NULL);
    f.route_rv = 5;
    f.route = strdup("{\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\",\"namespace\":\"apps\","
                     "\"resourceVersion\":\"5\",\"generation\":1},\"spec\":{}}");
    conn_t c0 = {&f, 0}, c1 = {&f, 1};
    sg_krun_opts_t o = {.req = fake_req, .controller = CTL, .lease_ns = "ns", .lease_duration_ms = 1500};
    char err[128];
    o.req_ctx = &c0;
    o.identity = "pod-0";
    sg_krun_t *r0 = sg_krun_start(&o, err, sizeof(err));
    assert_non_null(r0);
    int i;
    for (i = 0; i < 500 && !sg_krun_leader(r0); i++)
        nap_ms(10);
    assert_true(sg_krun_leader(r0));
    o.req_ctx = &c1;
    o.identity = "pod-1";
    sg_krun_t *r1 = sg_krun_start(&o, err, sizeof(err));
    assert_non_null(r1);
    feed(r0, YAML("1"), 1);
    feed(r1, YAML("1"), 1);
    for (i = 0; i < 500 && puts_of(&f, 0) == 0; i++)
        nap_ms(10);
    assert_int_equal(puts_of(&f, 0), 1);
    nap_ms(600);                /* several lease periods: the follower stays a follower and writes nothing */
    assert_false(sg_krun_leader(r1));
    assert_int_equal(puts_of(&f, 1), 0);
    pthread_mutex_lock(&f.mu);
    assert_non_null(strstr(f.route, CTL));
    assert_non_null(strstr(f.route, "\"observedGeneration\":1"));
    pthread_mutex_unlock(&f.mu);

    char *m = NULL;
    size_t ml = 0;
    FILE *mf = open_memstream(&m, &ml);
    sg_krun_render_metrics(r0, mf);
    fclose(mf);
    assert_non_null(strstr(m, "ssegate_kube_leader 1\n"));
    assert_non_null(strstr(m, "ssegate_kube_status_writes_total{result=\"written\"} 1\n"));
    free(m);

    /* a spec change: the leader writes the new observedGeneration */
    feed(r0, YAML("2"), 2);
    feed(r1, YAML("2"), 2);
    for (i = 0; i < 500 && puts_of(&f, 0) < 2; i++)
        nap_ms(10);
    assert_int_equal(puts_of(&f, 0), 2);

    /* the leader stops: it releases the Lease, and the other takes over and writes (everything: a new leader's
     * first sync reads every object, and finds the status in place) */
    sg_krun_stop(r0);
    assert_int_equal(f.lease_releases, 1);
    for (i = 0; i < 500 && !sg_krun_leader(r1); i++)
        nap_ms(10);
    assert_true(sg_krun_leader(r1));
    feed(r1, YAML("3"), 3);
    for (i = 0; i < 500 && puts_of(&f, 1) == 0; i++)
        nap_ms(10);
    assert_int_equal(puts_of(&f, 1), 1);
    pthread_mutex_lock(&f.mu);
    assert_non_null(strstr(f.route, "\"observedGeneration\":3"));
    assert_non_null(strstr(f.lease, "pod-1"));
    pthread_mutex_unlock(&f.mu);
    sg_krun_stop(r1);
    free(f.lease);
    free(f.route);
    pthread_mutex_destroy(&f.mu);
}

static void test_names(void **state)
{
    (void)state;
    char a[64], b[64], id[300];
    sg_krun_lease_name(CTL, a, sizeof(a));
    sg_krun_lease_name("example.com/other", b, sizeof(b));
    assert_int_equal(strncmp(a, "ssegate-status-", 15), 0);
    assert_int_equal(strlen(a), 23);
    assert_string_not_equal(a, b);
    setenv("POD_NAME", "ssegate-7d9f-abcde", 1);
    sg_krun_identity(id, sizeof(id));
    assert_string_equal(id, "ssegate-7d9f-abcde");
    unsetenv("POD_NAME");
    sg_krun_identity(id, sizeof(id));
    assert_non_null(strchr(id, '_'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_one_leader_and_takeover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
