/* test_grpcroute.c: GRPCRoute loading and matching: service/method Exact and RegularExpression, headers, the spec's
 * precedence, the HTTPRoute/GRPCRoute hostname rule, allowedRoutes kinds, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/route.h"

#define GW "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n" \
           "  gatewayClassName: x\n  listeners:\n  - {name: http, protocol: HTTP, port: 80}\n---\n"
#define GR(name, rest) "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: " name "}\n" \
                       "spec:\n  parentRefs: [{name: gw}]\n" rest "---\n"
#define HR(name, rest) "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " name "}\n" \
                       "spec:\n  parentRefs: [{name: gw}]\n" rest "---\n"
#define BE "    backendRefs: [{name: 10.0.0.1, port: 9000}]\n"
#define ALL "  - backendRefs: [{name: 10.0.0.1, port: 9000}]\n" /* a rule without matches */

static int load(const char *yaml, sg_config_t **cfg, char **errs)
{
    size_t len = 0;
    *errs = NULL;
    FILE *f = open_memstream(errs, &len);
    assert_non_null(f);
    *cfg = NULL;
    int rc = sg_config_load_ex("t.yaml", yaml, strlen(yaml), SG_CONFIG_NO_DNS, f, cfg);
    fclose(f);
    return rc;
}

static sg_config_t *load_ok(const char *yaml)
{
    sg_config_t *cfg;
    char *errs;
    int rc = load(yaml, &cfg, &errs);
    if (rc != 0)
        fprintf(stderr, "load failed (%d):\n%s\n", rc, errs);
    free(errs);
    assert_int_equal(rc, 0);
    return cfg;
}

/* Loads a config that must be refused with a message containing `want`. */
static void load_refused(const char *yaml, const char *want)
{
    sg_config_t *cfg;
    char *errs;
    int rc = load(yaml, &cfg, &errs);
    if (rc == 0 || strstr(errs, want) == NULL)
        fprintf(stderr, "expected an error with \"%s\", got rc %d:\n%s\n", want, rc, errs);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(errs, want));
    free(errs);
    sg_config_unref(cfg);
}

/* The route name and rule index a call is routed to ("" when no route). */
static const char *route_of(const sg_config_t *cfg, void *scratch, const char *host, const char *path,
                            const char *hname, const char *hvalue, size_t *rule)
{
    sg_h1_header_t h[2] = {{SG_STR("content-type"), SG_STR("application/grpc")}};
    size_t nh = 1;
    if (hname != NULL)
        h[nh++] = (sg_h1_header_t){sg_str_c(hname), sg_str_c(hvalue)};
    sg_route_req_t rq = {.method = SG_STR("POST"), .host = sg_str_c(host), .path = sg_str_c(path),
                         .query = SG_STR(""), .headers = h, .nheaders = nh, .scratch = scratch};
    sg_route_match_t m;
    if (sg_route_match(cfg, 80, &rq, &m) != 0)
        return "";
    if (rule)
        *rule = m.rule->index;
    return m.route->name;
}

static void test_method_matches(void **state)
{
    (void)state;
    sg_config_t *cfg = load_ok(GW GR("exact", "  rules:\n  - matches: [{method: {service: pkg.Svc, method: Get}}]\n" BE)
        GR("svc", "  rules:\n  - matches: [{method: {service: pkg.Svc}}]\n" BE)
        GR("meth", "  rules:\n  - matches: [{method: {method: Watch}}]\n" BE)
        GR("re", "  rules:\n  - matches: [{method: {type: RegularExpression, service: 'other\\.v[0-9]+\\.Api', "
                 "method: 'List.*'}}]\n" BE)
        GR("hdr", "  rules:\n  - matches: [{method: {service: hdr.Svc}, headers: [{name: x-tenant, value: blue}]}]\n"
                  "    backendRefs: [{name: 10.0.0.2, port: 9000}]\n"
                  "  - matches: [{headers: [{type: RegularExpression, name: x-tenant, value: 'gr.*'}]}]\n" BE));
    void *sc = sg_route_scratch_new();
    assert_non_null(sc);
    assert_string_equal(route_of(cfg, sc, "a", "/pkg.Svc/Get", NULL, NULL, NULL), "exact");
    assert_string_equal(route_of(cfg, sc, "a", "/pkg.Svc/Put", NULL, NULL, NULL), "svc");
    /* Service characters come before method characters: pkg.Svc (7) beats Watch (5). */
    assert_string_equal(route_of(cfg, sc, "a", "/pkg.Svc/Watch", NULL, NULL, NULL), "svc");
    assert_string_equal(route_of(cfg, sc, "a", "/x.Y/Watch", NULL, NULL, NULL), "meth");
    /* Exact is case-sensitive and whole-segment. */
    assert_string_equal(route_of(cfg, sc, "a", "/pkg.svc/Get", NULL, NULL, NULL), "");
    assert_string_equal(route_of(cfg, sc, "a", "/pkg.Svc2/Get", NULL, NULL, NULL), "");
    assert_string_equal(route_of(cfg, sc, "a", "/other.v2.Api/ListThings", NULL, NULL, NULL), "re");
    assert_string_equal(route_of(cfg, sc, "a", "/other.v2.Api/GetThing", NULL, NULL, NULL), "");
    assert_string_equal(route_of(cfg, sc, "a", "/other.vX.Api/ListThings", NULL, NULL, NULL), "");
    size_t rule = 99;
    assert_string_equal(route_of(cfg, sc, "a", "/hdr.Svc/A", "x-tenant", "blue", &rule), "hdr");
    assert_int_equal(rule, 0);
    assert_string_equal(route_of(cfg, sc, "a", "/hdr.Svc/A", "x-tenant", "red", NULL), "");
    assert_string_equal(route_of(cfg, sc, "a", "/any.Svc/A", "X-Tenant", "green", &rule), "hdr");
    assert_int_equal(rule, 1);
    /* Not a "/service/method" path: only a rule without a method match could take it. */
    assert_string_equal(route_of(cfg, sc, "a", "/pkg.Svc/Get/more", NULL, NULL, NULL), "");
    assert_string_equal(route_of(cfg, sc, "a", "/", NULL, NULL, NULL), "");
    assert_string_equal(route_of(cfg, sc, "a", "/justone", "x-tenant", "gray", NULL), "hdr");
    sg_route_scratch_free(sc);
    sg_config_unref(cfg);
}

static void test_precedence_and_hostnames(void **state)
{
    (void)state;
    /* Across routes: hostname first (exact over wildcard), then service length, then the oldest route. */
    sg_config_t *cfg = load_ok(GW GR("wild", "  hostnames: ['*.example.com']\n  rules:\n"
                                            "  - matches: [{method: {service: a.B, method: LongMethodName}}]\n" BE)
        GR("exact-host", "  hostnames: [api.example.com]\n  rules:\n  - matches: [{method: {method: M}}]\n" BE)
        GR("first", "  hostnames: [other.example.org]\n  rules:\n  - matches: [{method: {service: s.T}}]\n" BE)
        GR("second", "  hostnames: [other.example.org]\n  rules:\n  - matches: [{method: {service: s.T}}]\n" BE)
        GR("all", "  hostnames: [all.example.org]\n  rules:\n" ALL));
    void *sc = sg_route_scratch_new();
    assert_string_equal(route_of(cfg, sc, "api.example.com", "/a.B/M", NULL, NULL, NULL), "exact-host");
    assert_string_equal(route_of(cfg, sc, "x.example.com", "/a.B/LongMethodName", NULL, NULL, NULL), "wild");
    assert_string_equal(route_of(cfg, sc, "other.example.org", "/s.T/M", NULL, NULL, NULL), "first");
    /* A rule with no matches takes every call, whatever the path. */
    assert_string_equal(route_of(cfg, sc, "all.example.org", "/whatever.Svc/M", NULL, NULL, NULL), "all");
    assert_string_equal(route_of(cfg, sc, "nothing.example.net", "/a.B/M", NULL, NULL, NULL), "");
    sg_route_scratch_free(sc);
    sg_config_unref(cfg);
}

static void test_http_and_grpc_on_one_listener(void **state)
{
    (void)state;
    sg_config_t *cfg;
    char *errs;
    /* Overlapping hostnames: the first (older) route wins, the other is not attached, with a warning. */
    int rc = load(GW HR("web", "  hostnames: ['*.example.com']\n  rules:\n  - backendRefs: [{name: 10.0.0.9, port: 80}]\n")
                  GR("rpc", "  hostnames: [api.example.com]\n  rules:\n  - matches: [{method: {service: a.B}}]\n" BE)
                  GR("rpc2", "  hostnames: [grpc.example.org]\n  rules:\n" ALL),
                  &cfg, &errs);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(errs, "warning: GRPCRoute default/rpc: not attached to listener gw/http: its hostnames "
                                 "intersect those of HTTPRoute default/web"));
    assert_null(strstr(errs, "rpc2"));
    free(errs);
    void *sc = sg_route_scratch_new();
    assert_string_equal(route_of(cfg, sc, "api.example.com", "/a.B/C", NULL, NULL, NULL), "web");
    assert_string_equal(route_of(cfg, sc, "grpc.example.org", "/a.B/C", NULL, NULL, NULL), "rpc2");
    sg_config_unref(cfg);
    /* Without hostnames both claim every name: the GRPCRoute came first this time. */
    rc = load(GW GR("rpc", "  rules:\n" ALL) HR("web", "  rules:\n  - backendRefs: [{name: 10.0.0.9, port: 80}]\n"),
              &cfg, &errs);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(errs, "warning: HTTPRoute default/web: not attached"));
    free(errs);
    assert_string_equal(route_of(cfg, sc, "a", "/index.html", NULL, NULL, NULL), "rpc");
    sg_route_scratch_free(sc);
    sg_config_unref(cfg);
}

static void test_allowed_kinds(void **state)
{
    (void)state;
#define GWK(kinds) "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n" \
                   "  gatewayClassName: x\n  listeners:\n  - {name: http, protocol: HTTP, port: 80, allowedRoutes: " \
                   "{kinds: [" kinds "]}}\n---\n"
    sg_config_t *cfg = load_ok(GWK("{kind: GRPCRoute}") GR("rpc", "  rules:\n" ALL));
    sg_config_unref(cfg);
    cfg = load_ok(GWK("{kind: HTTPRoute}, {group: gateway.networking.k8s.io, kind: GRPCRoute}")
                  GR("rpc", "  hostnames: [a.example]\n  rules:\n" ALL)
                  HR("web", "  hostnames: [b.example]\n  rules:\n  - backendRefs: [{name: 10.0.0.9, port: 80}]\n"));
    sg_config_unref(cfg);
    load_refused(GWK("{kind: GRPCRoute}") HR("web", "  rules:\n  - backendRefs: [{name: 10.0.0.9, port: 80}]\n"),
                 "HTTPRoute default/web: not allowed by the listeners of Gateway default/gw (NotAllowedByListeners): "
                 "listener \"http\" admits only route kinds: GRPCRoute");
    load_refused(GWK("{kind: HTTPRoute}") GR("rpc", "  rules:\n" ALL),
                 "GRPCRoute default/rpc: not allowed by the listeners");
    load_refused(GWK("{kind: TLSRoute}"), "allowedRoutes kind gateway.networking.k8s.io/TLSRoute is not served");
#undef GWK
}

static void test_refused(void **state)
{
    (void)state;
    load_refused(GW GR("m", "  rules:\n  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: x, "
                            "port: 1}}}]\n" BE), "GRPCRoute filter type RequestMirror is not supported");
    load_refused(GW GR("e", "  rules:\n  - filters: [{type: ExtensionRef, extensionRef: {group: g, kind: K, name: n}}]\n"
                            BE), "GRPCRoute filter type ExtensionRef is not supported");
    load_refused(GW GR("e", "  rules:\n  - backendRefs: [{name: 10.0.0.1, port: 9000, filters: [{type: RequestMirror, "
                            "requestMirror: {backendRef: {name: x, port: 1}}}]}]\n"),
                 "GRPCRoute filter type RequestMirror is not supported");
    load_refused(GW GR("u", "  rules:\n  - filters: [{type: URLRewrite, urlRewrite: {}}]\n" BE),
                 "GRPCRoute filter type \"URLRewrite\" is not one of");
    load_refused(GW GR("s", "  rules:\n  - matches: [{method: {service: 'a/b'}}]\n" BE),
                 "service \"a/b\" is not a valid gRPC service name");
    load_refused(GW GR("s", "  rules:\n  - matches: [{method: {method: 'Get-It'}}]\n" BE),
                 "method \"Get-It\" is not a valid gRPC method name");
    load_refused(GW GR("s", "  rules:\n  - matches: [{method: {type: Exact}}]\n" BE),
                 "one or both of service and method must be given");
    load_refused(GW GR("s", "  rules:\n  - matches: [{method: {type: RegularExpression, service: '('}}]\n" BE),
                 "invalid regular expression");
    load_refused(GW GR("s", "  rules:\n  - matches: [{method: {type: Prefix, service: a}}]\n" BE),
                 "method match type \"Prefix\" must be Exact or RegularExpression");
    load_refused(GW GR("s", "  rules:\n  - sessionPersistence: {sessionName: x}\n" BE),
                 "sessionPersistence is not supported");
    load_refused(GW GR("s", "  rules:\n  - matches: [{path: {value: /x}}]\n" BE), "");
    load_refused(GW "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: GRPCRoute\nmetadata: {name: a}\nspec: {}\n",
                 "GRPCRoute: apiVersion \"gateway.networking.k8s.io/v1alpha2\" not supported");
    load_refused(GW GR("p", "  rules:\n" ALL) "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\n"
                 "metadata: {name: p}\nspec:\n  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: p}\n"
                 "  default: {sse: {heartbeatInterval: 5s}}\n",
                 "sse.heartbeatInterval does not apply to GRPCRoute default/p");
    load_refused(GW GR("p", "  rules:\n" ALL) "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\n"
                 "metadata: {name: p}\nspec:\n  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: q}\n"
                 "  default: {timeouts: {routeTimeout: 5s}}\n",
                 "RoutePolicy default/p targets GRPCRoute default/q, which does not exist");
}

static void test_reference_grant(void **state)
{
    (void)state;
    sg_config_t *cfg;
    char *errs;
    const char *route = GW GR("x", "  rules:\n  - backendRefs: [{name: svc, namespace: other, port: 9000}]\n")
        "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: other}\nspec: {ports: [{port: 9000}]}\n";
    int rc = load(route, &cfg, &errs);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(errs, "GRPCRoute default/x: backendRef to Service other/svc is not permitted (RefNotPermitted)"));
    assert_non_null(strstr(errs, "get grpc-status 14 (UNAVAILABLE)"));
    free(errs);
    sg_config_unref(cfg);
    /* A grant for HTTPRoutes does not let a GRPCRoute in; one for GRPCRoutes does. */
    char y[4096];
    static const char grant[] = "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
        "metadata: {name: g, namespace: other}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: %s, "
        "namespace: default}]\n  to: [{group: \"\", kind: Service}]\n";
    char g[512];
    snprintf(g, sizeof(g), grant, "HTTPRoute");
    snprintf(y, sizeof(y), "%s%s", route, g);
    rc = load(y, &cfg, &errs);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(errs, "is not permitted (RefNotPermitted)"));
    free(errs);
    sg_config_unref(cfg);
    snprintf(g, sizeof(g), grant, "GRPCRoute");
    snprintf(y, sizeof(y), "%s%s", route, g);
    rc = load(y, &cfg, &errs);
    assert_int_equal(rc, 0);
    assert_null(strstr(errs, "RefNotPermitted"));
    free(errs);
    sg_config_unref(cfg);
}

static void test_policy_timeout(void **state)
{
    (void)state;
    sg_config_t *cfg = load_ok(GW GR("p", "  rules:\n" ALL)
                               HR("p", "  hostnames: [h.example]\n  rules:\n  - backendRefs: [{name: 10.0.0.9, port: 80}]\n")
                               "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\n"
                               "metadata: {name: p}\nspec:\n  targetRef: {group: gateway.networking.k8s.io, kind: "
                               "GRPCRoute, name: p}\n  default: {timeouts: {routeTimeout: 7s}}\n");
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const sg_route_t *rt = &cfg->routes[i];
        assert_int_equal(rt->rules[0].request_timeout_ms, rt->kind == SG_ROUTE_GRPC ? 7000 : SG_TIMEOUT_UNSET);
    }
    sg_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_method_matches),
        cmocka_unit_test(test_precedence_and_hostnames),
        cmocka_unit_test(test_http_and_grpc_on_one_listener),
        cmocka_unit_test(test_allowed_kinds),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_policy_timeout),
        cmocka_unit_test(test_reference_grant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
