/* test_config_diag.c: the loader's lenient mode: a bad object, rule, parentRef or listener is dropped and reported
 * with its Gateway API reason while the rest loads; the diagnostics carry what status needs; file mode stays strict. */
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

#define GW(name, ns, extra)                                                                                          \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: " name ", namespace: " ns              \
    ", generation: 3}\nspec:\n  gatewayClassName: ssegate\n  listeners:\n"                                            \
    "  - {name: http, protocol: HTTP, port: 8080" extra "}\n---\n"
#define SVC(name, ns, port)                                                                                          \
    "apiVersion: v1\nkind: Service\nmetadata: {name: " name ", namespace: " ns "}\nspec: {ports: [{port: " port     \
    "}]}\n---\n"                                                                                                     \
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: " name "-1, namespace: " ns             \
    ", labels: {kubernetes.io/service-name: " name "}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1]}]\n"  \
    "ports: [{port: " port "}]\n---\n"
#define ROUTE(name, ns, parents, rules)                                                                              \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " name ", namespace: " ns           \
    ", generation: 7}\nspec:\n  parentRefs: " parents "\n  rules:\n" rules "---\n"
#define RULE(path, svc) "  - matches: [{path: {type: PathPrefix, value: \"" path "\"}}]\n" \
                        "    backendRefs: [{name: " svc ", port: 80}]\n"

typedef struct res {
    int rc;
    sg_config_t *cfg;
    sg_config_diag_t d;
    char *errs;
} res_t;

static res_t lenient(const char *yaml)
{
    res_t r;
    memset(&r, 0, sizeof(r));
    size_t len = 0;
    FILE *f = open_memstream(&r.errs, &len);
    assert_non_null(f);
    r.rc = sg_config_load_lenient("kube", yaml, strlen(yaml), SG_CONFIG_NO_DNS, f, &r.d, &r.cfg);
    fclose(f);
    if (r.rc != 0)
        fprintf(stderr, "rc %d error %s\n%s", r.rc, r.d.error ? r.d.error : "-", r.errs);
    return r;
}

static void done(res_t *r)
{
    sg_config_unref(r->cfg);
    sg_config_diag_free(&r->d);
    free(r->errs);
}

static const sg_diag_obj_t *obj(const res_t *r, const char *kind, const char *ns, const char *name)
{
    const sg_diag_obj_t *o = sg_config_diag_find(&r->d, kind, ns, name);
    if (o == NULL)
        fprintf(stderr, "no %s %s/%s in the diagnostics\n", kind, ns, name);
    assert_non_null(o);
    return o;
}

static const sg_route_t *route(const sg_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->nroutes; i++)
        if (strcmp(c->routes[i].name, name) == 0)
            return &c->routes[i];
    return NULL;
}

/* A bad route between good ones: the good ones load and are Accepted; the bad one is dropped with its reason. */
static void test_bad_route_next_to_good(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", "") SVC("a", "apps", "80")
        ROUTE("good1", "apps", "[{name: gw}]", RULE("/a", "a"))
        ROUTE("bad", "apps", "[{name: gw}]", "  - matches: [{path: {type: PathPrefix, value: \"no-slash\"}}]\n")
        ROUTE("good2", "apps", "[{name: gw}]", RULE("/b", "a")));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->nroutes, 2);
    assert_non_null(route(r.cfg, "good1"));
    assert_non_null(route(r.cfg, "good2"));
    assert_null(route(r.cfg, "bad"));
    assert_true(r.d.passes >= 2);

    const sg_diag_obj_t *bad = obj(&r, "HTTPRoute", "apps", "bad");
    assert_int_equal(bad->type, SG_DIAG_HTTPROUTE);
    assert_int_equal(bad->generation, 7);
    assert_int_equal(bad->nparents, 1);
    assert_false(bad->parents[0].accepted.ok);
    assert_string_equal(bad->parents[0].accepted.reason, "UnsupportedValue");
    assert_non_null(strstr(bad->parents[0].accepted.message, "no-slash"));
    assert_string_equal(bad->parents[0].name, "gw");
    assert_null(bad->parents[0].ns);                 /* echoed as written: not given */

    const sg_diag_obj_t *g1 = obj(&r, "HTTPRoute", "apps", "good1");
    assert_true(g1->parents[0].accepted.ok);
    assert_string_equal(g1->parents[0].accepted.reason, "Accepted");
    assert_true(g1->parents[0].resolved.ok);
    assert_string_equal(g1->parents[0].resolved.reason, "ResolvedRefs");

    const sg_diag_obj_t *gw = obj(&r, "Gateway", "apps", "gw");
    assert_int_equal(gw->generation, 3);
    assert_string_equal(gw->class_name, "ssegate");
    assert_true(gw->accepted.ok);
    assert_int_equal(gw->nlisteners, 1);
    assert_true(gw->listeners[0].served);
    assert_int_equal(gw->listeners[0].attached, 2); /* the bad route is not counted */
    assert_string_equal(gw->listeners[0].name, "http");
    assert_int_equal(gw->listeners[0].port, 8080);
    done(&r);
}

/* File mode is as strict as before on the same input. */
static void test_file_mode_stays_strict(void **state)
{
    (void)state;
    const char *y = GW("gw", "apps", "") SVC("a", "apps", "80")
        ROUTE("good1", "apps", "[{name: gw}]", RULE("/a", "a"))
        ROUTE("bad", "apps", "[{name: gw}]", "  - matches: [{path: {type: PathPrefix, value: \"no-slash\"}}]\n");
    sg_config_t *cfg = NULL;
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sg_config_load_ex("c.yaml", y, strlen(y), SG_CONFIG_NO_DNS, devnull, &cfg), -EINVAL);
    fclose(devnull);
    assert_null(cfg);
}

/* A bad rule is dropped; its siblings stay and the route stays Accepted. */
static void test_bad_rule_dropped_siblings_kept(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", "") SVC("a", "apps", "80")
        ROUTE("r", "apps", "[{name: gw}]",
              RULE("/first", "a")
              "  - matches: [{path: {type: PathPrefix, value: \"/x\"}}]\n    timeouts: {request: bogus}\n"
              RULE("/third", "a")));
    assert_int_equal(r.rc, 0);
    const sg_route_t *rt = route(r.cfg, "r");
    assert_non_null(rt);
    assert_int_equal(rt->nrules, 2);
    assert_string_equal(rt->rules[0].matches[0].path, "/first");
    assert_string_equal(rt->rules[1].matches[0].path, "/third");
    const sg_diag_obj_t *o = obj(&r, "HTTPRoute", "apps", "r");
    assert_int_equal(o->nrules, 3);
    assert_int_equal(o->ndropped_rules, 1);
    assert_int_equal(o->dropped_rules[0].index, 1);
    assert_string_equal(o->dropped_rules[0].reason, "UnsupportedValue");
    assert_non_null(strstr(o->dropped_rules[0].message, "bogus"));
    assert_true(o->parents[0].accepted.ok);
    assert_false(o->dropped);
    done(&r);
}

/* A rule whose backendRef is not a Service: dropped, and ResolvedRefs says InvalidKind. */
static void test_invalid_kind(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", "") SVC("a", "apps", "80")
        ROUTE("r", "apps", "[{name: gw}]",
              RULE("/ok", "a")
              "  - backendRefs: [{group: example.com, kind: Thing, name: t, port: 80}]\n"));
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *o = obj(&r, "HTTPRoute", "apps", "r");
    assert_int_equal(o->ndropped_rules, 1);
    assert_string_equal(o->dropped_rules[0].reason, "InvalidKind");
    assert_true(o->parents[0].accepted.ok);
    assert_false(o->parents[0].resolved.ok);
    assert_string_equal(o->parents[0].resolved.reason, "InvalidKind");
    done(&r);
}

/* One parentRef not allowed by the listeners, one to a Gateway that does not exist, one good: each its reason. */
static void test_parent_reasons(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", "") GW("other", "infra", "") SVC("a", "apps", "80")
        ROUTE("r", "apps", "[{name: other, namespace: infra}, {name: nope}, {name: gw, sectionName: http}]",
              RULE("/", "a")));
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *o = obj(&r, "HTTPRoute", "apps", "r");
    assert_int_equal(o->nparents, 3);
    assert_false(o->parents[0].accepted.ok);
    assert_string_equal(o->parents[0].accepted.reason, "NotAllowedByListeners");
    assert_string_equal(o->parents[0].ns, "infra");
    assert_false(o->parents[1].accepted.ok);
    assert_string_equal(o->parents[1].accepted.reason, "NoMatchingParent");
    assert_true(o->parents[2].accepted.ok);
    assert_string_equal(o->parents[2].section, "http");
    assert_non_null(route(r.cfg, "r"));
    assert_int_equal(obj(&r, "Gateway", "infra", "other")->listeners[0].attached, 0);
    assert_int_equal(obj(&r, "Gateway", "apps", "gw")->listeners[0].attached, 1);
    done(&r);
}

/* Hostnames that miss the listener's: kept in the config (a warning), Accepted False NoMatchingListenerHostname. */
static void test_no_matching_hostname(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", ", hostname: a.example.com") SVC("a", "apps", "80")
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: apps}\n"
        "spec:\n  parentRefs: [{name: gw}]\n  hostnames: [b.example.com]\n  rules:\n" RULE("/", "a"));
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *o = obj(&r, "HTTPRoute", "apps", "r");
    assert_false(o->parents[0].accepted.ok);
    assert_string_equal(o->parents[0].accepted.reason, "NoMatchingListenerHostname");
    assert_int_equal(obj(&r, "Gateway", "apps", "gw")->listeners[0].attached, 0);
    done(&r);
}

/* A backendRef to a Service that does not exist, or to another namespace without a ReferenceGrant: the route is
 * Accepted and ResolvedRefs is False with BackendNotFound / RefNotPermitted. */
static void test_resolved_refs(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", "") SVC("a", "apps", "80") SVC("b", "other", "80")
        ROUTE("missing", "apps", "[{name: gw}]", RULE("/m", "ghost"))
        ROUTE("cross", "apps", "[{name: gw}]",
              "  - backendRefs: [{name: b, namespace: other, port: 80}]\n"));
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *m = obj(&r, "HTTPRoute", "apps", "missing");
    assert_true(m->parents[0].accepted.ok);
    assert_false(m->parents[0].resolved.ok);
    assert_string_equal(m->parents[0].resolved.reason, "BackendNotFound");
    assert_non_null(strstr(m->parents[0].resolved.message, "ghost"));
    const sg_diag_obj_t *c = obj(&r, "HTTPRoute", "apps", "cross");
    assert_true(c->parents[0].accepted.ok);
    assert_false(c->parents[0].resolved.ok);
    assert_string_equal(c->parents[0].resolved.reason, "RefNotPermitted");
    done(&r);
}

/* A bad listener is dropped alone; the Gateway stays Accepted with ListenersNotValid and its other listener serves. */
static void test_bad_listener(void **state)
{
    (void)state;
    res_t r = lenient(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: apps}\n"
        "spec:\n  gatewayClassName: ssegate\n  listeners:\n  - {name: http, protocol: HTTP, port: 8080}\n"
        "  - {name: udp, protocol: UDP, port: 8081}\n---\n" SVC("a", "apps", "80")
        ROUTE("r", "apps", "[{name: gw}]", RULE("/", "a")));
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *gw = obj(&r, "Gateway", "apps", "gw");
    assert_true(gw->accepted.ok);
    assert_string_equal(gw->accepted.reason, "ListenersNotValid");
    assert_true(gw->listeners[0].served);
    assert_false(gw->listeners[1].served);
    assert_false(gw->listeners[1].accepted.ok);
    assert_string_equal(gw->listeners[1].accepted.reason, "UnsupportedProtocol");
    assert_int_equal(r.cfg->nlisteners, 1);
    assert_true(obj(&r, "HTTPRoute", "apps", "r")->parents[0].accepted.ok);
    done(&r);
}

/* A policy whose target route was dropped cascades: TargetNotFound; a policy on a missing Service too. */
static void test_policy_reasons(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", "") SVC("a", "apps", "80")
        ROUTE("bad", "apps", "[{name: gw}]", "  - matches: [{path: {type: Exact, value: \"x\"}}]\n")
        ROUTE("good", "apps", "[{name: gw}]", RULE("/", "a"))
        "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: p, namespace: apps}\n"
        "spec:\n  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: bad}\n"
        "  default: {timeouts: {routeTimeout: 30s}}\n---\n"
        "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: q, namespace: apps}\n"
        "spec:\n  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: good}\n"
        "  default: {timeouts: {routeTimeout: 30s}}\n---\n"
        "apiVersion: alb.networking.azure.io/v1\nkind: HealthCheckPolicy\nmetadata: {name: h, namespace: apps}\n"
        "spec:\n  targetRef: {group: \"\", kind: Service, name: ghost}\n  default: {interval: 5s}\n");
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *p = obj(&r, "RoutePolicy", "apps", "p");
    assert_int_equal(p->type, SG_DIAG_POLICY_AGC);
    assert_true(p->dropped);
    assert_false(p->accepted.ok);
    assert_string_equal(p->accepted.reason, "TargetNotFound");
    const sg_diag_obj_t *q = obj(&r, "RoutePolicy", "apps", "q");
    assert_true(q->accepted.ok);
    assert_string_equal(q->target_name, "good");
    assert_int_equal(route(r.cfg, "good")->policy_timeout_ms, 30000);
    const sg_diag_obj_t *h = obj(&r, "HealthCheckPolicy", "apps", "h");
    assert_false(h->accepted.ok);
    assert_string_equal(h->accepted.reason, "TargetNotFound");
    done(&r);
}

/* Every rule bad: the route is not Accepted. */
static void test_all_rules_bad(void **state)
{
    (void)state;
    res_t r = lenient(GW("gw", "apps", "") SVC("a", "apps", "80")
        ROUTE("r", "apps", "[{name: gw}]", "  - matches: [{path: {type: Exact, value: \"x\"}}]\n"));
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *o = obj(&r, "HTTPRoute", "apps", "r");
    assert_false(o->parents[0].accepted.ok);
    assert_false(o->accepted.ok);
    assert_true(o->dropped);
    assert_int_equal(o->ndropped_rules, 1);
    assert_null(route(r.cfg, "r"));
    assert_int_equal(obj(&r, "Gateway", "apps", "gw")->listeners[0].attached, 0);
    done(&r);
}

/* An error no object holds (broken YAML) fails the whole load, saying why. */
static void test_unattributable(void **state)
{
    (void)state;
    const char *y = GW("gw", "apps", "") "key: [unclosed\n";
    sg_config_diag_t d;
    sg_config_t *cfg = NULL;
    int rc = sg_config_load_lenient("kube", y, strlen(y), SG_CONFIG_NO_DNS, NULL, &d, &cfg);
    assert_int_equal(rc, -EINVAL);
    assert_null(cfg);
    assert_non_null(d.error);
    sg_config_diag_free(&d);
    assert_null(d.objs);
}

/* A GRPCRoute is indexed and dropped per rule like an HTTPRoute, and told apart from an HTTPRoute of the same name;
 * a listener admitting HTTPRoutes only says so, and does not count the GRPCRoute. */
static void test_grpcroute(void **state)
{
    (void)state;
    res_t r = lenient(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: apps}\n"
        "spec:\n  gatewayClassName: ssegate\n  listeners:\n  - {name: http, protocol: HTTP, port: 8080}\n"
        "  - {name: web, protocol: HTTP, port: 8081, allowedRoutes: {kinds: [{kind: HTTPRoute}]}}\n---\n"
        SVC("a", "apps", "80")
        ROUTE("r", "apps", "[{name: gw}]", RULE("/", "a"))
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r, namespace: apps, generation: 4}\n"
        "spec:\n  parentRefs: [{name: gw}]\n  rules:\n"
        "  - matches: [{method: {service: pkg.Svc, method: Get}}]\n    backendRefs: [{name: a, port: 80}]\n"
        "  - matches: [{method: {service: \"9bad\", method: Get}}]\n    backendRefs: [{name: a, port: 80}]\n");
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *g = obj(&r, "GRPCRoute", "apps", "r");
    assert_int_equal(g->type, SG_DIAG_HTTPROUTE);
    assert_int_equal(g->generation, 4);
    assert_int_equal(g->ndropped_rules, 1);
    assert_int_equal(g->dropped_rules[0].index, 1);
    assert_true(g->parents[0].accepted.ok);
    const sg_diag_obj_t *h = obj(&r, "HTTPRoute", "apps", "r");
    assert_int_equal(h->ndropped_rules, 0);
    assert_true(h->parents[0].accepted.ok);
    const sg_diag_obj_t *gw = obj(&r, "Gateway", "apps", "gw");
    assert_int_equal(gw->listeners[0].attached, 2);
    assert_int_equal(gw->listeners[1].attached, 1);
    assert_int_equal(gw->listeners[1].kinds, 1u << SG_ROUTE_HTTP);
    done(&r);
}

/* JSON-style input (one line per object) blames by column too. */
static void test_flow_style(void **state)
{
    (void)state;
    res_t r = lenient(
        "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\",\"metadata\":{\"name\":\"gw\","
        "\"namespace\":\"apps\"},\"spec\":{\"gatewayClassName\":\"ssegate\",\"listeners\":[{\"name\":\"http\","
        "\"protocol\":\"HTTP\",\"port\":8080}]}}\n---\n" SVC("a", "apps", "80")
        "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\","
        "\"namespace\":\"apps\",\"generation\":2},\"spec\":{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":["
        "{\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/a\"}}],\"backendRefs\":[{\"name\":\"a\","
        "\"port\":80}]},{\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"bad\"}}]}]}}\n");
    assert_int_equal(r.rc, 0);
    const sg_diag_obj_t *o = obj(&r, "HTTPRoute", "apps", "r");
    assert_int_equal(o->generation, 2);
    assert_int_equal(o->ndropped_rules, 1);
    assert_int_equal(o->dropped_rules[0].index, 1);
    assert_int_equal(route(r.cfg, "r")->nrules, 1);
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_route_next_to_good),
        cmocka_unit_test(test_file_mode_stays_strict),
        cmocka_unit_test(test_bad_rule_dropped_siblings_kept),
        cmocka_unit_test(test_invalid_kind),
        cmocka_unit_test(test_parent_reasons),
        cmocka_unit_test(test_no_matching_hostname),
        cmocka_unit_test(test_resolved_refs),
        cmocka_unit_test(test_bad_listener),
        cmocka_unit_test(test_policy_reasons),
        cmocka_unit_test(test_all_rules_bad),
        cmocka_unit_test(test_unattributable),
        cmocka_unit_test(test_flow_style),
        cmocka_unit_test(test_grpcroute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
