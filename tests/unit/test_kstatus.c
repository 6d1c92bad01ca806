/* test_kstatus.c: Gateway API status from diagnostics (desired) and the status diff (merge): other controllers'
 * parents kept, lastTransitionTime kept unless the status changes, observedGeneration, nothing written when nothing
 * changes, Programmed only once serving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/diag.h"
#include "kube/kstatus.h"

#define CTL "ssegate.io/gateway-controller"
#define CLASS "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ssegate, generation: 1}\n" \
              "spec: {controllerName: " CTL "}\n---\n"                                                              \
              "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: theirs}\n"          \
              "spec: {controllerName: example.com/other}\n---\n"
#define GW "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: apps, "         \
           "generation: 4}\nspec:\n  gatewayClassName: ssegate\n  listeners:\n"                                      \
           "  - {name: http, protocol: HTTP, port: 8080}\n  - {name: alt, protocol: HTTP, port: 8081}\n---\n"       \
           "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: other, namespace: apps}\n"    \
           "spec:\n  gatewayClassName: theirs\n  listeners:\n  - {name: http, protocol: HTTP, port: 9090}\n---\n"
#define SVC "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: apps}\nspec: {ports: [{port: 80}]}\n---\n"
#define ROUTE(name, gen, rules)                                                                                      \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " name ", namespace: apps, "        \
    "generation: " gen "}\nspec:\n  parentRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n"    \
    "  rules:\n" rules "---\n"
#define GOOD "  - backendRefs: [{name: a, port: 80}]\n"
#define BAD "  - matches: [{path: {value: nope}}]\n"

typedef struct fx {
    sg_config_t *cfg;
    sg_config_diag_t d;
} fx_t;

static void load(fx_t *fx, const char *yaml)
{
    FILE *devnull = fopen("/dev/null", "w");
    int rc = sg_config_load_lenient("kube", yaml, strlen(yaml), SG_CONFIG_NO_DNS, devnull, &fx->d, &fx->cfg);
    fclose(devnull);
    if (rc != 0)
        fprintf(stderr, "load: %d %s\n", rc, fx->d.error ? fx->d.error : "");
    assert_int_equal(rc, 0);
}

static void unload(fx_t *fx)
{
    sg_config_unref(fx->cfg);
    sg_config_diag_free(&fx->d);
}

static sg_kstatus_env_t env(const char *now, bool programmed)
{
    sg_kstatus_env_t e;
    memset(&e, 0, sizeof(e));
    e.controller = CTL;
    e.now = now;
    e.programmed = programmed;
    return e;
}

static char *desired(fx_t *fx, const char *kind, const char *ns, const char *name, const sg_kstatus_env_t *e,
                     sg_kstatus_shape_t *shape)
{
    const sg_diag_obj_t *o = sg_config_diag_find(&fx->d, kind, ns, name);
    assert_non_null(o);
    char *json = NULL;
    assert_int_equal(sg_kstatus_desired(&fx->d, o, e, &json, shape), 0);
    return json;
}

/* The emitter writes ": " and ", "; drop whitespace outside strings so the checks read like compact JSON. */
static char *squash(char *s)
{
    char *w = s;
    bool in = false;
    for (char *r = s; *r; r++) {
        if (*r == '"' && (r == s || r[-1] != '\\'))
            in = !in;
        if (!in && (*r == ' ' || *r == '\n'))
            continue;
        *w++ = *r;
    }
    *w = '\0';
    return s;
}

#define HAS(s, sub)                                                                                                  \
    do {                                                                                                             \
        if (strstr((s), (sub)) == NULL) {                                                                            \
            fprintf(stderr, "missing %s in\n%s\n", (sub), (s));                                                      \
            fail();                                                                                                  \
        }                                                                                                            \
    } while (0)
#define HASNT(s, sub)                                                                                                \
    do {                                                                                                             \
        if (strstr((s), (sub)) != NULL) {                                                                            \
            fprintf(stderr, "unexpected %s in\n%s\n", (sub), (s));                                                   \
            fail();                                                                                                  \
        }                                                                                                            \
    } while (0)

/* A bad route next to a good one: each gets its own parents entry; the bad one Accepted False with the reason. */
static void test_route_desired(void **state)
{
    (void)state;
    fx_t fx;
    load(&fx, CLASS GW SVC ROUTE("good", "2", GOOD) ROUTE("bad", "7", BAD));
    sg_kstatus_env_t e = env("2026-01-01T00:00:00Z", true);
    sg_kstatus_shape_t shape;
    char *j = desired(&fx, "HTTPRoute", "apps", "bad", &e, &shape);
    assert_int_equal(shape, SG_KSTATUS_PARENTS);
    HAS(j, "\"controllerName\":\"" CTL "\"");
    HAS(j, "\"parentRef\":{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"Gateway\",\"name\":\"gw\"}");
    HAS(j, "{\"type\":\"Accepted\",\"status\":\"False\",\"reason\":\"UnsupportedValue\"");
    HAS(j, "\"observedGeneration\":7");
    HASNT(j, "\"observedGeneration\":2");
    free(j);
    j = desired(&fx, "HTTPRoute", "apps", "good", &e, &shape);
    HAS(j, "{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\"");
    HAS(j, "{\"type\":\"ResolvedRefs\",\"status\":\"True\",\"reason\":\"ResolvedRefs\"");
    HAS(j, "\"observedGeneration\":2,\"lastTransitionTime\":\"2026-01-01T00:00:00Z\"");
    free(j);
    unload(&fx);
}

/* The merge keeps other controllers' entries (first, in their order), replaces ours, and keeps a condition's
 * lastTransitionTime when its status did not change; a changed status gets "now". */
static void test_merge_parents(void **state)
{
    (void)state;
    const char *cur =
        "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\","
        "\"namespace\":\"apps\",\"resourceVersion\":\"42\",\"generation\":3},\"spec\":{},\"status\":{\"parents\":["
        "{\"parentRef\":{\"name\":\"gw\"},\"controllerName\":\"" CTL "\",\"conditions\":["
        "{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\",\"message\":\"m\",\"observedGeneration\":2,"
        "\"lastTransitionTime\":\"2020-01-01T00:00:00Z\"},"
        "{\"type\":\"ResolvedRefs\",\"status\":\"True\",\"reason\":\"ResolvedRefs\",\"message\":\"m\","
        "\"observedGeneration\":2,\"lastTransitionTime\":\"2020-02-02T00:00:00Z\"}]},"
        "{\"parentRef\":{\"name\":\"theirs\"},\"controllerName\":\"example.com/other\",\"conditions\":[]}]}}";
    const char *des =
        "{\"parents\":[{\"parentRef\":{\"name\":\"gw\"},\"controllerName\":\"" CTL "\",\"conditions\":["
        "{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\",\"message\":\"m\",\"observedGeneration\":3,"
        "\"lastTransitionTime\":\"2030-03-03T00:00:00Z\"},"
        "{\"type\":\"ResolvedRefs\",\"status\":\"False\",\"reason\":\"BackendNotFound\",\"message\":\"x\","
        "\"observedGeneration\":3,\"lastTransitionTime\":\"2030-03-03T00:00:00Z\"}]}]}";
    char *out = NULL;
    assert_int_equal(sg_kstatus_merge(cur, strlen(cur), des, SG_KSTATUS_PARENTS, CTL, &out), 0);
    assert_non_null(out);
    squash(out);
    HAS(out, "\"resourceVersion\":\"42\"");
    char *theirs = strstr(out, "example.com/other"), *ours = strstr(out, "\"controllerName\":\"" CTL "\"");
    assert_non_null(theirs);
    assert_non_null(ours);
    assert_true(theirs < ours);                          /* theirs first, in their order */
    assert_null(strstr(ours + 1, "\"controllerName\":\"" CTL "\"")); /* ours once: replaced, not added */
    HAS(out, "\"lastTransitionTime\":\"2020-01-01T00:00:00Z\""); /* Accepted stayed True */
    HASNT(out, "2020-02-02");                                   /* ResolvedRefs changed: new time */
    HAS(out, "\"reason\":\"BackendNotFound\"");
    HAS(out, "\"observedGeneration\":3");
    HASNT(out, "\"observedGeneration\":2");

    /* Writing the merged object back and merging the same desired status again: nothing to write. */
    char *again = NULL;
    assert_int_equal(sg_kstatus_merge(out, strlen(out), des, SG_KSTATUS_PARENTS, CTL, &again), 1);
    assert_null(again);
    free(out);
}

/* observedGeneration alone changes: a write, with the transition times kept. */
static void test_observed_generation(void **state)
{
    (void)state;
    fx_t fx;
    load(&fx, CLASS GW SVC ROUTE("good", "5", GOOD));
    sg_kstatus_env_t e = env("2026-01-01T00:00:00Z", true);
    sg_kstatus_shape_t shape;
    char *des = desired(&fx, "HTTPRoute", "apps", "good", &e, &shape);
    const char *cur0 = "{\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"good\",\"namespace\":\"apps\","
                       "\"resourceVersion\":\"1\",\"generation\":5}}";
    char *v1 = NULL;
    assert_int_equal(sg_kstatus_merge(cur0, strlen(cur0), des, shape, CTL, &v1), 0);
    squash(v1);
    HAS(v1, "\"observedGeneration\":5");
    free(des);
    unload(&fx);

    load(&fx, CLASS GW SVC ROUTE("good", "6", GOOD));
    e.now = "2027-07-07T00:00:00Z";
    des = desired(&fx, "HTTPRoute", "apps", "good", &e, &shape);
    char *v2 = NULL;
    assert_int_equal(sg_kstatus_merge(v1, strlen(v1), des, shape, CTL, &v2), 0);
    squash(v2);
    HAS(v2, "\"observedGeneration\":6");
    HASNT(v2, "\"observedGeneration\":5");
    HAS(v2, "2026-01-01T00:00:00Z");   /* statuses unchanged: first transition time kept */
    HASNT(v2, "2027-07-07");
    free(des);
    free(v1);
    free(v2);
    unload(&fx);
}

/* A route that no longer names our Gateways: our entry goes, theirs stays; with nothing of ours and no status,
 * nothing is written. */
static void test_parents_cleanup(void **state)
{
    (void)state;
    fx_t fx;
    load(&fx, CLASS GW SVC
         "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: apps}\n"
         "spec:\n  parentRefs: [{name: other}]\n  rules:\n" GOOD);
    sg_kstatus_env_t e = env("2026-01-01T00:00:00Z", true);
    sg_kstatus_shape_t shape;
    char *des = desired(&fx, "HTTPRoute", "apps", "r", &e, &shape);
    assert_string_equal(des, "{\"parents\":[]}");
    const char *cur = "{\"metadata\":{\"name\":\"r\"},\"status\":{\"parents\":["
                      "{\"parentRef\":{\"name\":\"gw\"},\"controllerName\":\"" CTL "\",\"conditions\":[]},"
                      "{\"parentRef\":{\"name\":\"other\"},\"controllerName\":\"example.com/other\",\"conditions\":[]}]}}";
    char *out = NULL;
    assert_int_equal(sg_kstatus_merge(cur, strlen(cur), des, shape, CTL, &out), 0);
    squash(out);
    HASNT(out, CTL);
    HAS(out, "example.com/other");
    free(out);
    const char *bare = "{\"metadata\":{\"name\":\"r\"}}";
    assert_int_equal(sg_kstatus_merge(bare, strlen(bare), des, shape, CTL, &out), 1);
    free(des);
    unload(&fx);
}

/* Gateway: Programmed only once serving; listeners with attachedRoutes and supportedKinds; addresses; a port that
 * did not bind. Another controller's Gateway gets nothing from us. */
static void test_gateway(void **state)
{
    (void)state;
    fx_t fx;
    load(&fx, CLASS GW SVC ROUTE("good", "2", GOOD));
    sg_kstatus_env_t e = env("2026-01-01T00:00:00Z", false);
    sg_kstatus_shape_t shape;
    char *j = desired(&fx, "Gateway", "apps", "gw", &e, &shape);
    assert_int_equal(shape, SG_KSTATUS_WHOLE);
    HAS(j, "{\"type\":\"Programmed\",\"status\":\"False\",\"reason\":\"Pending\"");
    HASNT(j, "\"status\":\"True\",\"reason\":\"Programmed\"");
    HAS(j, "{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\"");
    HAS(j, "\"name\":\"http\",\"supportedKinds\":[{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"HTTPRoute\"},"
           "{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"GRPCRoute\"}],\"attachedRoutes\":1");
    HAS(j, "\"observedGeneration\":4");
    HASNT(j, "addresses");
    free(j);

    const char *addrs[] = {"203.0.113.7", "gw.example.com"};
    const uint16_t failed[] = {8081};
    e.programmed = true;
    e.addresses = addrs;
    e.naddresses = 2;
    e.failed_ports = failed;
    e.nfailed_ports = 1;
    j = desired(&fx, "Gateway", "apps", "gw", &e, &shape);
    HAS(j, "\"addresses\":[{\"type\":\"IPAddress\",\"value\":\"203.0.113.7\"},{\"type\":\"Hostname\",\"value\":"
           "\"gw.example.com\"}]");
    HAS(j, "{\"type\":\"Programmed\",\"status\":\"True\",\"reason\":\"Programmed\"");
    HAS(j, "\"name\":\"alt\",\"supportedKinds\":[{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"HTTPRoute\"},"
           "{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"GRPCRoute\"}],\"attachedRoutes\":1,\"conditions\":["
           "{\"type\":\"Accepted\",\"status\":\"False\",\"reason\":\"PortUnavailable\"");
    HAS(j, "\"reason\":\"ListenersNotValid\"");
    HAS(j, "{\"type\":\"Conflicted\",\"status\":\"False\",\"reason\":\"NoConflicts\"");
    /* retried (rebind.c): not ready yet, rather than invalid */
    HAS(j, "{\"type\":\"Programmed\",\"status\":\"False\",\"reason\":\"Pending\",\"message\":\"port 8081 could not "
           "be bound; retrying\"");
    HASNT(j, "\"reason\":\"Invalid\"");

    /* The diff keeps the listener's transition times when only the generation moved. */
    char *cur = NULL;
    const char *bare = "{\"metadata\":{\"name\":\"gw\",\"resourceVersion\":\"9\"}}";
    assert_int_equal(sg_kstatus_merge(bare, strlen(bare), j, shape, CTL, &cur), 0);
    char *again = NULL;
    e.now = "2029-09-09T00:00:00Z";
    char *j2 = desired(&fx, "Gateway", "apps", "gw", &e, &shape);
    assert_int_equal(sg_kstatus_merge(cur, strlen(cur), j2, shape, CTL, &again), 1);
    free(j2);
    free(cur);
    free(j);

    const sg_diag_obj_t *o = sg_config_diag_find(&fx.d, "Gateway", "apps", "other");
    assert_non_null(o);
    assert_int_equal(sg_kstatus_desired(&fx.d, o, &e, &j, &shape), -ENOENT);
    unload(&fx);
}

/* GatewayClass: Accepted and SupportedVersion from the CRDs' bundle-version; another controller's class: nothing. */
static void test_gatewayclass(void **state)
{
    (void)state;
    fx_t fx;
    load(&fx, CLASS GW);
    sg_kstatus_env_t e = env("2026-01-01T00:00:00Z", true);
    sg_kstatus_shape_t shape;
    e.bundle_version = "v1.2.1";
    char *j = desired(&fx, "GatewayClass", NULL, "ssegate", &e, &shape);
    HAS(j, "{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\",\"message\":\"Valid GatewayClass\"");
    HAS(j, "{\"type\":\"SupportedVersion\",\"status\":\"True\",\"reason\":\"SupportedVersion\"");
    HAS(j, "\"observedGeneration\":1");
    free(j);
    e.bundle_version = "v2.0.0";
    j = desired(&fx, "GatewayClass", NULL, "ssegate", &e, &shape);
    HAS(j, "{\"type\":\"Accepted\",\"status\":\"False\",\"reason\":\"UnsupportedVersion\"");
    free(j);
    e.bundle_version = NULL;
    j = desired(&fx, "GatewayClass", NULL, "ssegate", &e, &shape);
    HAS(j, "{\"type\":\"SupportedVersion\",\"status\":\"Unknown\"");
    free(j);
    const sg_diag_obj_t *o = sg_config_diag_find(&fx.d, "GatewayClass", NULL, "theirs");
    assert_non_null(o);
    assert_int_equal(sg_kstatus_desired(&fx.d, o, &e, &j, &shape), -ENOENT);
    unload(&fx);
}

/* Policies: AGC's status.conditions; Gateway API's status.ancestors (GEP-713) with our Gateways. */
static void test_policies(void **state)
{
    (void)state;
    fx_t fx;
    load(&fx, CLASS GW SVC ROUTE("good", "2", GOOD)
         "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: p, namespace: apps, "
         "generation: 9}\nspec:\n  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: good}\n"
         "  default: {timeouts: {routeTimeout: 30s}}\n---\n"
         "apiVersion: alb.networking.azure.io/v1\nkind: HealthCheckPolicy\nmetadata: {name: h, namespace: apps}\n"
         "spec:\n  targetRef: {group: \"\", kind: Service, name: ghost}\n  default: {interval: 5s}\n");
    sg_kstatus_env_t e = env("2026-01-01T00:00:00Z", true);
    sg_kstatus_shape_t shape;
    char *j = desired(&fx, "RoutePolicy", "apps", "p", &e, &shape);
    assert_int_equal(shape, SG_KSTATUS_WHOLE);
    assert_string_equal(j, "{\"conditions\":[{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\","
                           "\"message\":\"Accepted\",\"observedGeneration\":9,\"lastTransitionTime\":"
                           "\"2026-01-01T00:00:00Z\"}]}");
    free(j);
    j = desired(&fx, "HealthCheckPolicy", "apps", "h", &e, &shape);
    HAS(j, "\"status\":\"False\",\"reason\":\"TargetNotFound\"");
    free(j);
    unload(&fx);
}

/* The build writes no GatewayClasses: the classes listed from the API server say which Gateways are ours. */
static void test_env_classes(void **state)
{
    (void)state;
    fx_t fx;
    load(&fx, GW SVC ROUTE("good", "2", GOOD));
    sg_kstatus_env_t e = env("2026-01-01T00:00:00Z", true);
    const sg_diag_obj_t *o = sg_config_diag_find(&fx.d, "Gateway", "apps", "gw");
    sg_kstatus_shape_t shape;
    char *j = NULL;
    assert_int_equal(sg_kstatus_desired(&fx.d, o, &e, &j, &shape), -ENOENT); /* no class known */
    const char *classes[] = {"ssegate"};
    e.classes = classes;
    e.nclasses = 1;
    assert_int_equal(sg_kstatus_desired(&fx.d, o, &e, &j, &shape), 0);
    squash(j);
    HAS(j, "\"attachedRoutes\":1");
    free(j);
    j = desired(&fx, "HTTPRoute", "apps", "good", &e, &shape);
    HAS(j, CTL);
    free(j);
    o = sg_config_diag_find(&fx.d, "Gateway", "apps", "other");
    assert_int_equal(sg_kstatus_desired(&fx.d, o, &e, &j, &shape), -ENOENT);
    e.bundle_version = "v1.4.0";
    assert_int_equal(sg_kstatus_class_desired(12, &e, &j), 0);
    HAS(j, "\"observedGeneration\":12");
    HAS(j, "{\"type\":\"SupportedVersion\",\"status\":\"True\"");
    free(j);
    unload(&fx);
}

/* Malformed current objects are refused, not written over. */
static void test_merge_rejects_garbage(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(sg_kstatus_merge("[1,2]", 5, "{\"conditions\":[]}", SG_KSTATUS_WHOLE, CTL, &out), -EINVAL);
    assert_int_equal(sg_kstatus_merge("{\"a\":", 5, "{\"conditions\":[]}", SG_KSTATUS_WHOLE, CTL, &out), -EINVAL);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_desired),
        cmocka_unit_test(test_merge_parents),
        cmocka_unit_test(test_observed_generation),
        cmocka_unit_test(test_parents_cleanup),
        cmocka_unit_test(test_gateway),
        cmocka_unit_test(test_gatewayclass),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_env_classes),
        cmocka_unit_test(test_merge_rejects_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
