/* test_config.c: unit tests of the Gateway API YAML loader: kinds, errors with positions, timeouts, endpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "config/config.h"
#include "testcert.h"
#include "config/route.h"

#define GWHDR "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
#define RTHDR "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
#define GW80 GWHDR "metadata: {name: gw}\nspec:\n  listeners:\n  - {name: http, protocol: HTTP, port: 80}\n---\n"

typedef struct result {
    int rc;
    sg_config_t *cfg;
    char *errs;
} result_t;

static result_t load(const char *yaml)
{
    result_t r = {0, NULL, NULL};
    size_t len = 0;
    FILE *f = open_memstream(&r.errs, &len);
    assert_non_null(f);
    r.rc = sg_config_load_ex("c.yaml", yaml, strlen(yaml), SG_CONFIG_NO_DNS, f, &r.cfg);
    fclose(f);
    return r;
}

static void done(result_t *r)
{
    sg_config_unref(r->cfg);
    free(r->errs);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#define HAS(r, s)                                                                                                    \
    do {                                                                                                             \
        if (strstr((r).errs, (s)) == NULL) {                                                                         \
            fprintf(stderr, "missing \"%s\" in:\n%s", (s), (r).errs);                                                \
            fail();                                                                                                  \
        }                                                                                                            \
    } while (0)

static void test_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {{"0s", 0}, {"500ms", 500}, {"1s", 1000}, {"1m30s", 90000}, {"1h", 3600000}, {"1h2m3s4ms", 3723004},
              {"99999ms", 99999}};
    for (size_t i = 0; i < SG_ARRAY_LEN(ok); i++) {
        int64_t ms = -5;
        assert_int_equal(sg_config_parse_duration(ok[i].s, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"", "1", "s", "1d", "1.5s", "-1s", "100000s", "1h1m1s1ms1s", " 1s", "1s ",
                                      "1S", "1us"};
    for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
        int64_t ms = 0;
        assert_int_equal(sg_config_parse_duration(bad[i], &ms), -EINVAL);
    }
}

/* An HTTPS listener never falls back to plain text: without a usable certificate the config is refused. */
static void test_https_needs_a_certificate(void **state)
{
    (void)state;
    static const char gw[] = GWHDR "metadata: {name: gw}\nspec:\n  listeners:\n"
                             "  - name: s\n    protocol: HTTPS\n    port: 8443\n"
                             "    tls: {certificateRefs: [{name: missing}]}\n";
    result_t r = load(gw);
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:6:5: HTTPS port 8443 has no usable certificate");
    done(&r);
    char y[8192];
    snprintf(y, sizeof(y), "%s---\n%s", gw, TEST_CERT_SECRET("default", "missing"));
    r = load(y);
    if (r.rc != 0)
        fprintf(stderr, "%s", r.errs);
    assert_int_equal(r.rc, 0);
    assert_non_null(r.cfg->binds[0].tls);
    done(&r);
}

static void test_every_kind(void **state)
{
    (void)state;
    result_t r = load(
        GWHDR "metadata: {name: gw, namespace: infra}\nspec:\n"
        "  gatewayClassName: x\n"
        "  addresses: [{type: IPAddress, value: 127.0.0.1}, {value: '::1'}]\n"
        "  listeners:\n"
        "  - {name: http, protocol: HTTP, port: 8080}\n"
        "  - {name: web, protocol: HTTP, port: 8080, hostname: '*.example.com',\n"
        "     allowedRoutes: {namespaces: {from: All}}}\n"
        "  - name: tls\n    protocol: HTTPS\n    port: 8443\n    hostname: secure.example.com\n"
        "    tls: {certificateRefs: [{name: cert1}]}\n"
        "---\n" TEST_CERT_SECRET("infra", "cert1")
        "---\n" GWHDR "metadata: {name: gw2}\nspec:\n  listeners:\n  - {name: a, protocol: HTTP, port: 9000}\n"
        "---\n" RTHDR "metadata: {name: r, namespace: apps}\nspec:\n"
        "  parentRefs: [{name: gw, namespace: infra, sectionName: web}]\n"
        "  hostnames: [a.example.com]\n"
        "  rules:\n"
        "  - name: first\n"
        "    matches:\n"
        "    - path: {type: Exact, value: /x}\n"
        "      headers: [{name: X-A, value: b}]\n"
        "      queryParams: [{name: q, value: '1'}]\n"
        "      method: POST\n"
        "    filters:\n"
        "    - type: RequestHeaderModifier\n"
        "      requestHeaderModifier: {set: [{name: A, value: b}], add: [{name: C, value: d}], remove: [E]}\n"
        "    - type: ResponseHeaderModifier\n"
        "      responseHeaderModifier: {remove: [Server]}\n"
        "    - type: URLRewrite\n"
        "      urlRewrite: {hostname: up.internal, path: {type: ReplaceFullPath, replaceFullPath: /y}}\n"
        "    backendRefs:\n"
        "    - {name: svc, port: 80, weight: 3}\n"
        "    - {name: '127.0.0.1', port: 9999, weight: 0}\n"
        "    - {name: 'no-such-host.invalid', port: 1}\n"
        "    timeouts: {request: 10s, backendRequest: 2s}\n"
        "    retry: {codes: [502, 503], attempts: 2, backoff: 100ms}\n"
        "  - filters:\n"
        "    - type: RequestRedirect\n"
        "      requestRedirect: {scheme: https, hostname: b.example.com, port: 8443, statusCode: 301,\n"
        "                        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: apps}\n"
        "spec:\n  ports: [{name: http, port: 80, targetPort: web}, {name: admin, port: 81, targetPort: 9001}]\n"
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: svc-1, namespace: apps, labels: {kubernetes.io/service-name: svc}}\n"
        "addressType: IPv4\n"
        "endpoints:\n"
        "- addresses: [10.0.0.1]\n"
        "- addresses: [10.0.0.2]\n  conditions: {ready: true}\n"
        "- addresses: [10.0.0.3]\n  conditions: {ready: false}\n"
        "ports: [{name: admin, port: 9001}, {name: http, port: 8080}]\n"
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: svc-2, namespace: apps, labels: {kubernetes.io/service-name: svc}}\n"
        "addressType: IPv6\n"
        "endpoints: [{addresses: ['::1']}]\n"
        "ports: [{name: http, port: 8081}]\n"
        "---\napiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: p, namespace: apps}\n"
        "spec:\n  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}\n"
        "  default: {timeouts: {routeTimeout: 30s}}\n");
    if (r.rc != 0)
        fprintf(stderr, "%s", r.errs);
    assert_int_equal(r.rc, 0);
    sg_config_t *c = r.cfg;
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_int_equal(c->nlisteners, 4);
    assert_string_equal(c->listeners[0].ns, "infra");
    assert_int_equal(c->listeners[2].protocol, SG_PROTO_HTTPS);
    assert_int_equal(c->listeners[2].ncert_refs, 1);
    assert_string_equal(c->listeners[2].cert_refs[0], "infra/cert1");
    assert_string_equal(c->listeners[1].hostname, "*.example.com");
    assert_null(c->listeners[0].hostname);
    /* binds: 2 addresses x 2 ports of gw, plus gw2 on all addresses */
    assert_int_equal(c->nbinds, 5);
    assert_string_equal(c->binds[0].label, "127.0.0.1:8080");
    assert_string_equal(c->binds[1].label, "127.0.0.1:8443");
    assert_int_equal(c->binds[1].protocol, SG_PROTO_HTTPS);
    assert_string_equal(c->binds[2].label, "[::1]:8080");
    assert_string_equal(c->binds[4].label, "0.0.0.0:9000");
    assert_int_equal(c->binds[4].port, 9000);

    assert_int_equal(c->nroutes, 1);
    const sg_route_t *rt = &c->routes[0];
    assert_string_equal(rt->ns, "apps");
    assert_int_equal(rt->nparents, 1);
    assert_string_equal(rt->parents[0].ns, "infra");
    assert_int_equal(rt->nrules, 2);
    const sg_rule_t *u = &rt->rules[0];
    assert_string_equal(u->name, "first");
    assert_int_equal(u->nmatches, 1);
    assert_int_equal(u->matches[0].path_type, SG_MATCH_EXACT);
    assert_string_equal(u->matches[0].method, "POST");
    assert_int_equal(u->matches[0].nheaders, 1);
    assert_int_equal(u->matches[0].nquery, 1);
    assert_int_equal(u->filters.req_headers->nset, 1);
    assert_int_equal(u->filters.req_headers->nadd, 1);
    assert_string_equal(u->filters.req_headers->remove[0], "E");
    assert_int_equal(u->filters.resp_headers->nremove, 1);
    assert_string_equal(u->filters.rewrite->hostname, "up.internal");
    assert_int_equal(u->filters.rewrite->path_kind, SG_PATHMOD_FULL);
    assert_int_equal(u->request_timeout_ms, 10000);
    assert_int_equal(u->backend_timeout_ms, 2000);
    assert_non_null(u->retry);
    assert_int_equal(u->retry->attempts, 2);
    assert_int_equal(u->retry->ncodes, 2);
    assert_int_equal(u->retry->codes[1], 503);
    assert_int_equal(u->retry->backoff_ms, 100);
    /* Service port 80 -> its name "http" -> slice ports named "http"; not-ready skipped; v6 label */
    assert_int_equal(u->nbackends, 3);
    const sg_backend_t *b = &u->backends[0];
    assert_string_equal(b->ns, "apps");
    assert_int_equal(b->weight, 3);
    assert_int_equal(b->nendpoints, 3);
    assert_string_equal(b->endpoints[0].label, "10.0.0.1:8080");
    assert_string_equal(b->endpoints[1].label, "10.0.0.2:8080");
    assert_string_equal(b->endpoints[2].label, "[::1]:8081");
    assert_int_equal(b->endpoints[2].addrlen, sizeof(struct sockaddr_in6));
    /* no Service: the name itself, numeric first */
    assert_int_equal(u->backends[1].nendpoints, 1);
    assert_string_equal(u->backends[1].endpoints[0].label, "127.0.0.1:9999");
    assert_int_equal(u->backends[1].weight, 0);
    assert_int_equal(u->backends[2].nendpoints, 0); /* unresolvable: not a load error */
    assert_int_equal(u->total_weight, 3);
    /* rule without matches, redirect; policy timeout fills what the rule leaves unset */
    const sg_rule_t *v = &rt->rules[1];
    assert_int_equal(v->nmatches, 0);
    assert_int_equal(v->filters.redirect->status, 301);
    assert_int_equal(v->filters.redirect->port, 8443);
    assert_string_equal(v->filters.redirect->scheme, "https");
    assert_int_equal(v->filters.redirect->path_kind, SG_PATHMOD_PREFIX);
    assert_string_equal(v->filters.redirect->path, "/new");
    assert_int_equal(v->request_timeout_ms, 30000);
    assert_int_equal(v->backend_timeout_ms, 30000);
    assert_int_equal(rt->policy_timeout_ms, 30000);

    /* routing through the loaded tables */
    sg_route_req_t q = {.method = SG_STR("POST"), .host = SG_STR("a.example.com:8080"), .path = SG_STR("/x"),
                        .query = SG_STR("q=1")};
    sg_h1_header_t h = {SG_STR("x-a"), SG_STR("b")};
    q.headers = &h;
    q.nheaders = 1;
    sg_route_match_t m;
    assert_int_equal(sg_route_match(c, 8080, &q, &m), 0);
    assert_string_equal(m.listener->name, "web");
    assert_ptr_equal(m.rule, u);
    q.host = SG_STR("b.example.com");
    assert_int_equal(sg_route_match(c, 8080, &q, &m), -ENOENT); /* route hostname a.example.com only */
    sg_config_ref(c);
    sg_config_unref(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    done(&r);
}

static void test_defaults(void **state)
{
    (void)state;
    result_t r = load(GW80 RTHDR "metadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.errs, "");
    const sg_route_t *rt = &r.cfg->routes[0];
    assert_string_equal(rt->ns, "default");
    assert_int_equal(rt->nrules, 1); /* CRD default: one rule, PathPrefix "/" */
    assert_int_equal(rt->rules[0].nbackends, 0);
    assert_int_equal(rt->rules[0].request_timeout_ms, SG_TIMEOUT_UNSET);
    assert_int_equal(rt->rules[0].backend_timeout_ms, SG_TIMEOUT_UNSET);
    assert_int_equal(r.cfg->nbinds, 1);
    assert_string_equal(r.cfg->binds[0].label, "0.0.0.0:80");
    sg_route_req_t q = {.method = SG_STR("GET"), .host = SG_STR("x"), .path = SG_STR("/any/thing")};
    sg_route_match_t m;
    assert_int_equal(sg_route_match(r.cfg, 80, &q, &m), 0);
    assert_int_equal(m.prefix_len, 0);
    done(&r);
}

static void test_errors_with_positions(void **state)
{
    (void)state;
    const char *y =
        GWHDR "metadata: {name: gw}\n"                                     /* 1-3 */
        "spec:\n"                                                          /* 4 */
        "  listeners:\n"                                                   /* 5 */
        "  - {name: http, protocol: HTTP, port: 80}\n"                     /* 6 */
        "  - {name: http, protocol: HTTP, port: 81}\n"                     /* 7: duplicate name */
        "  - {name: b, protocol: HTTP, port: 80}\n"                        /* 8: same port+hostname */
        "  - {name: c, protocol: HTTPS, port: 80, hostname: x.com}\n"      /* 9: protocol conflict on :80 */
        "  - {name: d, protocol: UDP, port: '82'}\n"                       /* 10 */
        "---\n"                                                            /* 11 */
        RTHDR                                                              /* 12-13 */
        "metadata: {name: r}\n"                                            /* 14 */
        "spec:\n"                                                          /* 15 */
        "  parentRefs: [{name: gw, sectionName: nope}, {name: ghost}]\n"  /* 16 */
        "  rules:\n"                                                       /* 17 */
        "  - matches:\n"                                                   /* 18 */
        "    - path: {type: Exact, value: 'no-slash'}\n"                   /* 19 */
        "      method: FETCH\n"                                            /* 20 */
        "    filters:\n"                                                   /* 21 */
        "    - type: ExternalAuth\n"                                       /* 22 */
        "    - type: URLRewrite\n"                                         /* 23 */
        "      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /x}}\n" /* 24 */
        "    backendRefs: [{name: a, port: 80, weight: 2000000}, {name: b}]\n"          /* 25 */
        "    timeouts: {request: 1s, backendRequest: 2s}\n"                /* 26 */
        "  - timeouts: {request: forever}\n"                               /* 27 */
        "---\n"                                                            /* 28 */
        "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\n"     /* 29-30 */
        "metadata: {name: p}\n"                                            /* 31 */
        "spec:\n  targetRef: {kind: HTTPRoute, name: gone}\n"              /* 32-33 */
        "---\nkind: Widget\napiVersion: v9\n"                              /* 34-36 */
        "---\n- just\n- a list\n";                                         /* 37-39 */
    result_t r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    assert_null(r.cfg);
    HAS(r, "c.yaml:7:6: duplicate listener name \"http\" in Gateway gw (first at line 6)\n");
    HAS(r, "c.yaml:8:6: listeners \"http\" and \"b\" have the same port 80 and hostname (none)\n");
    HAS(r, "c.yaml:10:37: port: expected an integer\n");
    HAS(r, "c.yaml:10:25: listener protocol \"UDP\" not supported (HTTP or HTTPS)\n");
    HAS(r, "c.yaml:9:6: listener \"c\": 0.0.0.0:80 is already used with protocol HTTP\n");
    HAS(r, "c.yaml:16:17: HTTPRoute default/r: Gateway default/gw has no listener named \"nope\" (NoMatchingParent)\n");
    HAS(r, "c.yaml:16:48: HTTPRoute default/r: parentRef names Gateway default/ghost, which does not exist "
           "(NoMatchingParent)\n");
    HAS(r, "c.yaml:19:35: path value \"no-slash\" must be an absolute path starting with '/'\n");
    HAS(r, "c.yaml:20:15: method \"FETCH\" is not one of");
    HAS(r, "c.yaml:22:13: filter type \"ExternalAuth\" is not supported\n");
    HAS(r, "c.yaml:24:20: ReplacePrefixMatch requires exactly one match of type PathPrefix in the rule\n");
    HAS(r, "c.yaml:25:47: weight: 2000000 out of range 0..1000000\n");
    HAS(r, "c.yaml:25:58: backendRef to a Service requires \"port\"\n");
    HAS(r, "c.yaml:26:16: timeouts: backendRequest must not be longer than request\n");
    HAS(r, "c.yaml:27:25: request: invalid duration \"forever\"");
    HAS(r, "c.yaml:33:15: RoutePolicy default/p targets HTTPRoute default/gone, which does not exist\n");
    HAS(r, "c.yaml:35:7: warning: skipping kind Widget: ssegate does not serve it\n");
    HAS(r, "c.yaml:38:3: a document must be a mapping with apiVersion and kind\n");
    done(&r);
}

static void test_yaml_syntax_error(void **state)
{
    (void)state;
    result_t r = load(GW80 "kind: HTTPRoute\nspec: {a: [1, 2}\n");
    assert_int_equal(r.rc, -EINVAL);
    assert_null(r.cfg);
    assert_non_null(strstr(r.errs, "c.yaml:9:"));
    assert_non_null(strstr(r.errs, ": YAML: "));
    done(&r);
    r = load("a: 1\na: 2\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:2:1: YAML: duplicate key\n");
    done(&r);
    /* libfyaml 0.7.12 hangs on a directive line with an invalid byte: refused first (fuzz_config finding) */
    r = load("a: 1\n%x\xff\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:2:3: YAML: invalid UTF-8 (byte 0xff)\n");
    done(&r);
    r = load("a: \xc3\xa9\xe2\x80\xa6\n"); /* valid UTF-8 is fine */
    assert_int_equal(r.rc, -EINVAL);             /* (but not a Kubernetes object) */
    HAS(r, "c.yaml:1:1: missing required field \"kind\"\n");
    done(&r);
    r = load("x: *nowhere\n");
    assert_int_equal(r.rc, -EINVAL);
    done(&r);
}

static void test_unknown_kind_is_a_warning(void **state)
{
    (void)state;
    result_t r = load(GW80 "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: x}\n");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.errs, "c.yaml:9:7: warning: skipping kind TCPRoute: ssegate does not serve it\n");
    done(&r);
    /* ...but a kind that would route or secure traffic is refused (fail closed) */
    r = load(GW80 "apiVersion: gateway.networking.k8s.io/v1\nkind: ListenerSet\nmetadata: {name: x}\n---\n"
             "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTrafficPolicy\nmetadata: {name: y}\n---\n"
             "apiVersion: alb.networking.azure.io/v1\nkind: WebApplicationFirewallPolicy\nmetadata: {name: z}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:9:7: kind ListenerSet (gateway.networking.k8s.io/v1) is not supported; refused");
    HAS(r, "c.yaml:13:7: kind BackendTrafficPolicy (gateway.networking.k8s.io/v1) is not supported; refused");
    HAS(r, "c.yaml:17:7: kind WebApplicationFirewallPolicy (alb.networking.azure.io/v1) is not supported; refused");
    done(&r);
}

/* BackendTLSPolicy: a backendRef to the Service gets a TLS client context; every error names its place. */
#define BTLS_ROUTE RTHDR "metadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n" \
    "  - backendRefs: [{name: svc, port: 443}]\n---\n" \
    "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\nspec:\n  ports: [{name: https, port: 443}]\n---\n"
#define BTLS_POLICY(validation) \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: p}\nspec:\n" \
    "  targetRefs: [{group: \"\", kind: Service, name: svc, sectionName: https}]\n  validation:\n" validation

static const sg_backend_t *first_backend(const sg_config_t *cfg)
{
    return &cfg->routes[0].rules[0].backends[0];
}

static void test_backend_tls_policy(void **state)
{
    (void)state;
    result_t r = load(GW80 BTLS_ROUTE TEST_CA_CONFIGMAP("default", "ca") "---\n" BTLS_POLICY(
        "    hostname: svc.example\n    caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]\n"));
    assert_int_equal(r.rc, 0);
    assert_non_null(first_backend(r.cfg)->tls);
    assert_string_equal(first_backend(r.cfg)->tls_policy, "BackendTLSPolicy default/p");
    assert_int_equal(r.cfg->nupstream_tls, 1);
    done(&r);
    /* the system trust store, and subjectAltNames of both types */
    r = load(GW80 BTLS_ROUTE BTLS_POLICY("    hostname: svc.example\n    wellKnownCACertificates: System\n"
                                         "    subjectAltNames: [{type: Hostname, hostname: a.example}, "
                                         "{type: URI, uri: \"spiffe://c/ns/x\"}]\n"));
    assert_int_equal(r.rc, 0);
    assert_non_null(first_backend(r.cfg)->tls);
    done(&r);
    /* without a policy: plaintext */
    r = load(GW80 BTLS_ROUTE);
    assert_int_equal(r.rc, 0);
    assert_null(first_backend(r.cfg)->tls);
    done(&r);
    /* a missing ConfigMap */
    r = load(GW80 BTLS_ROUTE BTLS_POLICY("    hostname: svc.example\n    caCertificateRefs: [{kind: ConfigMap, name: nope}]\n"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:29:26: BackendTLSPolicy default/p: caCertificateRef to ConfigMap default/nope "
           "(InvalidCACertificateRef): no such object in the config\n");
    done(&r);
    /* a CA that is not PEM */
    r = load(GW80 BTLS_ROUTE "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca}\ndata: {ca.crt: not a pem}\n---\n"
             BTLS_POLICY("    hostname: svc.example\n    caCertificateRefs: [{kind: ConfigMap, name: ca}]\n"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "(InvalidCACertificateRef): ca.crt holds no PEM certificate");
    done(&r);
    /* a CA in another namespace without a ReferenceGrant */
    r = load(GW80 BTLS_ROUTE TEST_CA_CONFIGMAP("other", "ca") "---\n" BTLS_POLICY(
        "    hostname: svc.example\n    caCertificateRefs: [{kind: ConfigMap, name: ca, namespace: other}]\n"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "caCertificateRef to ConfigMap other/ca is not permitted (RefNotPermitted)");
    done(&r);
    /* ... which a ReferenceGrant in that namespace permits */
    r = load(GW80 BTLS_ROUTE TEST_CA_CONFIGMAP("other", "ca") "---\n"
             "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: other}\n"
             "spec:\n  from: [{group: gateway.networking.k8s.io, kind: BackendTLSPolicy, namespace: default}]\n"
             "  to: [{group: \"\", kind: ConfigMap}]\n---\n" BTLS_POLICY(
        "    hostname: svc.example\n    caCertificateRefs: [{kind: ConfigMap, name: ca, namespace: other}]\n"));
    assert_int_equal(r.rc, 0);
    assert_non_null(first_backend(r.cfg)->tls);
    done(&r);
    /* unknown fields, a missing hostname, both trust sources, a port name the Service does not have */
    r = load(GW80 BTLS_ROUTE BTLS_POLICY("    wellKnownCACertificates: System\n    verifyDepth: 3\n"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:29:5: BackendTLSPolicy validation: unknown field \"verifyDepth\" (not supported, so refused");
    HAS(r, "missing required field \"hostname\"");
    done(&r);
    r = load(GW80 BTLS_ROUTE TEST_CA_CONFIGMAP("default", "ca") "---\n" BTLS_POLICY(
        "    hostname: svc.example\n    wellKnownCACertificates: System\n    caCertificateRefs: [{kind: ConfigMap, name: ca}]\n"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "validation needs exactly one of caCertificateRefs and wellKnownCACertificates");
    done(&r);
    r = load(GW80 BTLS_ROUTE BTLS_POLICY("    hostname: svc.example\n    wellKnownCACertificates: System\n")
             "---\napiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: q}\nspec:\n"
             "  targetRefs: [{group: \"\", kind: Service, name: svc, sectionName: grpc}]\n"
             "  validation: {hostname: svc.example, wellKnownCACertificates: System}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "BackendTLSPolicy default/q: Service default/svc has no port named \"grpc\" (TargetNotFound)");
    done(&r);
    /* two policies for one port */
    r = load(GW80 BTLS_ROUTE BTLS_POLICY("    hostname: svc.example\n    wellKnownCACertificates: System\n")
             "---\n" "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: q}\nspec:\n"
             "  targetRefs: [{group: \"\", kind: Service, name: svc}]\n"
             "  validation: {hostname: svc.example, wellKnownCACertificates: System}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "(Conflicted)");
    done(&r);
}

static const char *const ROUTE_T =
    RTHDR "metadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n"
    "  - matches: [{path: {value: /a}}]\n    timeouts: {request: 5s}\n"
    "  - matches: [{path: {value: /b}}]\n    timeouts: {backendRequest: 0s}\n"
    "  - matches: [{path: {value: /c}}]\n";

static void test_timeout_precedence(void **state)
{
    (void)state;
    char y[4096];
    /* no policy: unset unless the rule says */
    snprintf(y, sizeof(y), "%s%s", GW80, ROUTE_T);
    result_t r = load(y);
    assert_int_equal(r.rc, 0);
    const sg_rule_t *u = r.cfg->routes[0].rules;
    assert_int_equal(u[0].request_timeout_ms, 5000);
    assert_int_equal(u[0].backend_timeout_ms, SG_TIMEOUT_UNSET);
    assert_int_equal(u[1].request_timeout_ms, SG_TIMEOUT_UNSET);
    assert_int_equal(u[1].backend_timeout_ms, 0);
    assert_int_equal(u[2].request_timeout_ms, SG_TIMEOUT_UNSET);
    done(&r);
    /* policy fills both where the rule is silent; "0s" = none; two policies agreeing are fine */
    const char *pol = "---\napiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: %s}\n"
                      "spec:\n  targetRef: {kind: HTTPRoute, name: r}\n  default: {timeouts: {routeTimeout: %s}}\n";
    char p1[512], p2[512];
    snprintf(p1, sizeof(p1), pol, "p1", "0s");
    snprintf(p2, sizeof(p2), pol, "p2", "0s");
    snprintf(y, sizeof(y), "%s%s%s%s", GW80, ROUTE_T, p1, p2);
    r = load(y);
    assert_int_equal(r.rc, 0);
    u = r.cfg->routes[0].rules;
    /* A rule that sets either timeout is left alone by the policy (AGC precedence); only /c inherits. */
    assert_int_equal(u[0].request_timeout_ms, 5000);
    assert_int_equal(u[0].backend_timeout_ms, SG_TIMEOUT_UNSET);
    assert_int_equal(u[1].request_timeout_ms, SG_TIMEOUT_UNSET);
    assert_int_equal(u[1].backend_timeout_ms, 0);
    assert_int_equal(u[2].request_timeout_ms, 0);
    assert_int_equal(u[2].backend_timeout_ms, 0);
    done(&r);
    /* conflicting policies: error at the second one's value */
    snprintf(p2, sizeof(p2), pol, "p2", "1m");
    snprintf(y, sizeof(y), "%s%s%s%s", GW80, ROUTE_T, p1, p2);
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    size_t line = count_lines(GW80) + count_lines(ROUTE_T) + count_lines(p1) + 7;
    char want[256];
    snprintf(want, sizeof(want), "c.yaml:%zu:38: RoutePolicy default/p2 sets routeTimeout 60000ms for HTTPRoute "
             "default/r, conflicting with RoutePolicy default/p1 (0ms", line);
    HAS(r, want);
    done(&r);
}

static void test_unresolved_service_port(void **state)
{
    (void)state;
    result_t r = load(GW80 RTHDR "metadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n"
                      "  - backendRefs: [{name: s, port: 90}, {name: u, port: 70}]\n---\n"
                      "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n---\n"
                      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
                      "metadata: {name: s1, labels: {kubernetes.io/service-name: s}}\naddressType: IPv4\n"
                      "endpoints: [{addresses: [10.1.1.1]}]\nports: [{port: 8080}]\n---\n"
                      "apiVersion: v1\nkind: Service\nmetadata: {name: u}\nspec: {ports: [{port: 70}]}\n---\n"
                      "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
                      "metadata: {name: u1, labels: {kubernetes.io/service-name: u}}\naddressType: IPv4\n"
                      "endpoints: [{addresses: [10.1.1.2]}]\nports: [{port: 7070}]\n");
    assert_int_equal(r.rc, 0);
    const sg_rule_t *u = &r.cfg->routes[0].rules[0];
    assert_int_equal(u->backends[0].nendpoints, 0); /* Service s has no port 90 */
    assert_non_null(strstr(r.errs, "warning: Service default/s has no port 90"));
    assert_int_equal(u->backends[1].nendpoints, 1); /* unnamed port: the slice's single port */
    assert_string_equal(u->backends[1].endpoints[0].label, "10.1.1.2:7070");
    assert_int_equal(u->total_weight, 1);
    done(&r);
}

#define ALBHDR "---\napiVersion: alb.networking.azure.io/v1\n"
/* Two Services (a: ports 80 and 81, b: port 80) used by three rules, each with one endpoint. */
#define SVCS                                                                                                         \
    GW80 RTHDR "metadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n"                                  \
               "  - backendRefs: [{name: a, port: 80}]\n"                                                            \
               "  - backendRefs: [{name: a, port: 81}]\n"                                                            \
               "  - backendRefs: [{name: b, port: 80}]\n---\n"                                                       \
               "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"                                                  \
               "spec: {ports: [{name: h, port: 80}, {name: g, port: 81}]}\n---\n"                                  \
               "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"                                              \
               "metadata: {name: a1, labels: {kubernetes.io/service-name: a}}\naddressType: IPv4\n"                  \
               "endpoints: [{addresses: [10.1.1.1]}]\nports: [{name: h, port: 8080}, {name: g, port: 8081}]\n"

static const sg_backend_t *backend_of(const result_t *r, size_t rule)
{
    return &r->cfg->routes[0].rules[rule].backends[0];
}

static void test_lb_policy(void **state)
{
    (void)state;
    /* no policy: round-robin everywhere */
    result_t r = load(SVCS);
    assert_int_equal(r.rc, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(backend_of(&r, i)->lb, SG_LB_ROUND_ROBIN);
        assert_null(backend_of(&r, i)->health_check);
    }
    done(&r);
    /* a port-scoped least-request policy and a ring-hash one with its parameters */
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: lr}\nspec:\n"
             "  targetRefs: [{group: '', kind: Service, name: a, ports: [{port: 81}]}]\n"
             "  loadBalancing: {strategy: least-request}\n"
             ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: rh}\nspec:\n"
             "  targetRefs: [{kind: Service, name: b}]\n"
             "  loadBalancing:\n    strategy: ring-hash\n    ringHash: {minimumRingSize: 64, header: X-User}\n");
    if (r.rc != 0)
        fprintf(stderr, "%s", r.errs);
    assert_int_equal(r.rc, 0);
    assert_int_equal(backend_of(&r, 0)->lb, SG_LB_ROUND_ROBIN);
    assert_int_equal(backend_of(&r, 1)->lb, SG_LB_LEAST_REQUEST);
    assert_int_equal(backend_of(&r, 2)->lb, SG_LB_RING_HASH);
    assert_int_equal(backend_of(&r, 2)->ring_size, 64);
    assert_string_equal(backend_of(&r, 2)->hash_header, "x-user");
    assert_int_equal(backend_of(&r, 1)->ring_size, SG_RING_HASH_DEFAULT_SIZE);
    assert_null(backend_of(&r, 1)->hash_header);
    assert_string_equal(r.errs, "");
    done(&r);
    /* slowStart cannot be enforced: refused */
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: w}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a}]\n"
             "  loadBalancing: {strategy: weighted-round-robin, slowStart: {window: 0s}}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "slowStart is not supported; refused rather than ignored");
    done(&r);
    /* the weighted names */
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: w}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a}]\n"
             "  loadBalancing: {strategy: weighted-round-robin}\n");
    assert_int_equal(r.rc, 0);
    assert_int_equal(backend_of(&r, 0)->lb, SG_LB_WEIGHTED);
    assert_int_equal(backend_of(&r, 1)->lb, SG_LB_WEIGHTED);
    done(&r);
    /* errors, each with its position */
    size_t base = count_lines(SVCS) + 1;
    char want[256];
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: x}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a}]\n  loadBalancing: {strategy: random}\n");
    assert_int_equal(r.rc, -EINVAL);
    snprintf(want, sizeof(want), "c.yaml:%zu:29: strategy \"random\": expected round-robin", base + 6);
    HAS(r, want);
    done(&r);
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: x}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a}]\n  loadBalancing: {strategy: load-aware}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "strategy load-aware is not supported");
    done(&r);
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: x}\nspec:\n"
             "  targetRefs: [{kind: Deployment, name: a}]\n");
    assert_int_equal(r.rc, -EINVAL);
    snprintf(want, sizeof(want), "c.yaml:%zu:", base + 5);
    HAS(r, want);
    HAS(r, "targetRef kind \"Deployment\" not supported (only Service)");
    done(&r);
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: x}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a}]\n  loadBalancing: {ringHash: {minimumRingSize: 0}}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "minimumRingSize: 0 out of range");
    HAS(r, "warning: ringHash applies to strategy ring-hash only");
    done(&r);
    /* two policies on one Service port conflict; on different ports they do not */
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: p1}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a, ports: [{port: 80}]}]\n"
             ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: p2}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a, ports: [{port: 81}]}]\n"
             "  loadBalancing: {strategy: least-request}\n");
    assert_int_equal(r.rc, 0);
    assert_int_equal(backend_of(&r, 0)->lb, SG_LB_ROUND_ROBIN);
    assert_int_equal(backend_of(&r, 1)->lb, SG_LB_LEAST_REQUEST);
    done(&r);
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: p1}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a, ports: [{port: 80}]}]\n"
             ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: p2}\nspec:\n"
             "  targetRefs: [{kind: Service, name: a}]\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "BackendLoadBalancingPolicy default/p2 targets Service default/a, as does default/p1");
    done(&r);
    /* a policy nobody uses is a warning */
    r = load(SVCS ALBHDR "kind: BackendLoadBalancingPolicy\nmetadata: {name: p}\nspec:\n"
             "  targetRefs: [{kind: Service, name: typo}]\n");
    assert_int_equal(r.rc, 0);
    HAS(r, "warning: BackendLoadBalancingPolicy default/p: no backendRef uses its target Service");
    done(&r);
}

#define RP "kind: RoutePolicy\nmetadata: {name: %s}\nspec:\n  targetRef: {group: '', kind: HTTPRoute, name: r}\n"

static void test_session_affinity(void **state)
{
    (void)state;
    char y[4096];
    /* none by default */
    result_t r = load(SVCS);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->routes[0].rules[0].affinity.type, SG_AFFINITY_NONE);
    assert_null(r.cfg->routes[0].rules[0].affinity.cookie);
    done(&r);
    /* managed-cookie: AGC's fixed name and lifetime on every rule of the route */
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    sessionAffinity: {affinityType: managed-cookie}\n", "p");
    r = load(y);
    assert_int_equal(r.rc, 0);
    for (size_t i = 0; i < 3; i++) {
        const sg_affinity_t *a = &r.cfg->routes[0].rules[i].affinity;
        assert_int_equal(a->type, SG_AFFINITY_MANAGED);
        assert_string_equal(a->cookie, "AGCAffinity");
        assert_int_equal(a->duration_s, 86400);
    }
    assert_string_equal(r.errs, "");
    done(&r);
    /* application-cookie, as in AGC's example, and a plain number of seconds */
    static const char *const durs[] = {"3600s", "1h", "3600"};
    for (size_t i = 0; i < SG_ARRAY_LEN(durs); i++) {
        snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    sessionAffinity:\n      affinityType: "
                 "\"application-cookie\"\n      cookieName: \"nomnom\"\n      cookieDuration: %s\n", "p", durs[i]);
        r = load(y);
        assert_int_equal(r.rc, 0);
        const sg_affinity_t *a = &r.cfg->routes[0].rules[1].affinity;
        assert_int_equal(a->type, SG_AFFINITY_APPLICATION);
        assert_string_equal(a->cookie, "nomnom");
        assert_int_equal(a->duration_s, 3600);
        done(&r);
    }
    /* managed-cookie discards cookieName with a warning */
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    sessionAffinity: {affinityType: managed-cookie, "
             "cookieName: x}\n", "p");
    r = load(y);
    assert_int_equal(r.rc, 0);
    HAS(r, "warning: cookieName is ignored with managed-cookie");
    done(&r);
    /* errors with positions */
    size_t base = count_lines(SVCS) + 1;
    char want[256];
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    sessionAffinity: {affinityType: sticky}\n", "p");
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    snprintf(want, sizeof(want), "c.yaml:%zu:37: affinityType \"sticky\": expected managed-cookie or "
             "application-cookie", base + 7);
    HAS(r, want);
    done(&r);
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    sessionAffinity: {affinityType: application-cookie}\n",
             "p");
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "application-cookie requires \"cookieName\"");
    HAS(r, "application-cookie requires \"cookieDuration\"");
    done(&r);
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    sessionAffinity: {affinityType: application-cookie, "
             "cookieName: 'a b', cookieDuration: 1500ms}\n", "p");
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "cookieName \"a b\" is not a valid cookie name");
    HAS(r, "cookieDuration: cookie lifetimes are whole seconds");
    done(&r);
    /* two policies on one route must agree */
    char p2[512];
    snprintf(p2, sizeof(p2), ALBHDR RP "  default:\n    sessionAffinity: {affinityType: application-cookie, "
             "cookieName: s, cookieDuration: 60s}\n", "p2");
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    sessionAffinity: {affinityType: managed-cookie}\n%s",
             "p1", p2);
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "RoutePolicy default/p2 sets sessionAffinity for HTTPRoute default/r, conflicting with RoutePolicy "
           "default/p1");
    done(&r);
}

static void test_heartbeat_policy(void **state)
{
    (void)state;
    char y[4096];
    result_t r = load(SVCS);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->routes[0].rules[0].heartbeat_ms, SG_TIMEOUT_UNSET);
    assert_int_equal(r.cfg->routes[0].heartbeat_ms, SG_TIMEOUT_UNSET);
    done(&r);
    /* combined with a timeout in one policy */
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default:\n    timeouts: {routeTimeout: 0s}\n"
             "    sse: {heartbeatInterval: 15s}\n", "p");
    r = load(y);
    assert_int_equal(r.rc, 0);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r.cfg->routes[0].rules[i].heartbeat_ms, 15000);
        assert_int_equal(r.cfg->routes[0].rules[i].request_timeout_ms, 0);
    }
    done(&r);
    /* 0s turns it off for the route even when --heartbeat is set */
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default: {sse: {heartbeatInterval: 0s}}\n", "p");
    r = load(y);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->routes[0].rules[2].heartbeat_ms, 0);
    done(&r);
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default: {sse: {heartbeatInterval: often, heartbeat: 1s}}\n", "p");
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    char want[256];
    snprintf(want, sizeof(want), "c.yaml:%zu:38: heartbeatInterval: invalid duration \"often\"",
             count_lines(SVCS) + 1 + 6);
    HAS(r, want);
    HAS(r, "RoutePolicy sse: unknown field \"heartbeat\" (not supported, so refused rather than ignored)");
    done(&r);
    char p2[512];
    snprintf(p2, sizeof(p2), ALBHDR RP "  default: {sse: {heartbeatInterval: 5s}}\n", "p2");
    snprintf(y, sizeof(y), SVCS ALBHDR RP "  default: {sse: {heartbeatInterval: 10s}}\n%s", "p1", p2);
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "sets sse.heartbeatInterval 5000ms for HTTPRoute default/r, conflicting with RoutePolicy default/p1");
    done(&r);
}

#define HCP "kind: HealthCheckPolicy\nmetadata: {name: hc}\nspec:\n  targetRef: {group: '', kind: Service, name: a}\n"

static void test_health_check_policy(void **state)
{
    (void)state;
    /* AGC's defaults */
    result_t r = load(SVCS ALBHDR HCP);
    assert_int_equal(r.rc, 0);
    const sg_healthcheck_t *hc = backend_of(&r, 0)->health_check;
    assert_non_null(hc);
    assert_ptr_equal(backend_of(&r, 1)->health_check, hc); /* every port of the Service */
    assert_null(backend_of(&r, 2)->health_check);
    assert_int_equal(hc->interval_ms, 5000);
    assert_int_equal(hc->timeout_ms, 30000);
    assert_int_equal(hc->healthy_threshold, 1);
    assert_int_equal(hc->unhealthy_threshold, 3);
    assert_int_equal(hc->port, 0);
    assert_string_equal(hc->host, "localhost");
    assert_string_equal(hc->path, "/");
    assert_int_equal(hc->ncodes, 1);
    assert_int_equal(hc->codes[0].start, 200);
    assert_int_equal(hc->codes[0].end, 399);
    assert_string_equal(hc->policy, "default/hc");
    done(&r);
    /* AGC's example, in full */
    r = load(SVCS ALBHDR HCP "  default:\n    interval: 5s\n    timeout: 3s\n    healthyThreshold: 1\n"
             "    unhealthyThreshold: 1\n    port: 8123\n    http:\n      host: contoso.com\n      path: /\n"
             "      match:\n        statusCodes:\n        - start: 200\n          end: 299\n        - start: 418\n"
             "    useTLS: false\n");
    if (r.rc != 0)
        fprintf(stderr, "%s", r.errs);
    assert_int_equal(r.rc, 0);
    hc = backend_of(&r, 0)->health_check;
    assert_int_equal(hc->timeout_ms, 3000);
    assert_int_equal(hc->unhealthy_threshold, 1);
    assert_int_equal(hc->port, 8123);
    assert_string_equal(hc->host, "contoso.com");
    assert_int_equal(hc->ncodes, 2);
    assert_int_equal(hc->codes[0].end, 299);
    assert_int_equal(hc->codes[1].start, 418);
    assert_int_equal(hc->codes[1].end, 418);
    assert_string_equal(r.errs, "");
    done(&r);
    /* errors, each with its position */
    size_t base = count_lines(SVCS) + 1 + 7; /* the line after "default:" */
    static const struct {
        const char *def;
        size_t line;
        int col;
        const char *msg;
    } bad[] = {
        {"    interval: 0s\n", 0, 15, "interval must be more than 0s"},
        {"    timeout: soon\n", 0, 14, "timeout: invalid duration \"soon\""},
        {"    healthyThreshold: 0\n", 0, 23, "healthyThreshold: 0 out of range 1..1000"},
        {"    port: 70000\n", 0, 11, "port: 70000 out of range 1..65535"},
        {"    grpc: {authority: 'a b'}\n", 0, 24, "grpc.authority \"a b\" is not a valid host name"},
        {"    grpc: on\n", 0, 11, "grpc: expected a mapping"},
        {"    useTLS: maybe\n", 0, 13, "useTLS: expected true or false"},
        /* probes over TLS verify like the data path: without a BackendTLSPolicy nothing says how */
        {"    useTLS: true\n", 0, 13,
         "HealthCheckPolicy default/hc: useTLS is true, but no BackendTLSPolicy applies"},
        {"    http: {path: healthz}\n", 0, 18, "http.path \"healthz\" must be an absolute path"},
        {"    http: {host: 'a b'}\n", 0, 19, "http.host \"a b\" is not a valid host"},
        {"    http:\n      match:\n        statusCodes: [{start: 500, end: 200}]\n", 2, 41,
         "statusCodes: end 200 is below start 500"},
        {"    http:\n      match:\n        statusCodes: [{start: 700}]\n", 2, 31, "start: 700 out of range 100..599"},
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
        char y[4096], want[256];
        snprintf(y, sizeof(y), "%s%s%s  default:\n%s", SVCS, ALBHDR, HCP, bad[i].def);
        r = load(y);
        assert_int_equal(r.rc, -EINVAL);
        snprintf(want, sizeof(want), "c.yaml:%zu:%d: %s", base + bad[i].line, bad[i].col, bad[i].msg);
        HAS(r, want);
        done(&r);
    }
    /* target kind, conflicts, unused */
    r = load(SVCS ALBHDR "kind: HealthCheckPolicy\nmetadata: {name: hc}\nspec:\n  targetRef: {kind: HTTPRoute, "
             "name: r}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "targetRef kind \"HTTPRoute\" not supported (only Service)");
    done(&r);
    r = load(SVCS ALBHDR HCP ALBHDR "kind: HealthCheckPolicy\nmetadata: {name: hc2}\nspec:\n"
             "  targetRef: {kind: Service, name: a}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "HealthCheckPolicy default/hc2 targets Service default/a, as does default/hc");
    done(&r);
    r = load(SVCS ALBHDR "kind: HealthCheckPolicy\nmetadata: {name: hc, namespace: other}\nspec:\n"
             "  targetRef: {kind: Service, name: a}\n");
    assert_int_equal(r.rc, 0);
    assert_null(backend_of(&r, 0)->health_check); /* other/a is not default/a */
    HAS(r, "warning: HealthCheckPolicy other/hc: no backendRef uses Service other/a");
    done(&r);
}

/* EndpointConditions.ready: "A nil value indicates an unknown state. In most cases consumers should interpret this
 * unknown state as ready" (discovery/v1). So every YAML spelling of null, a missing ready and missing or null
 * conditions serve; false does not; anything else is still an error. serving and terminating are not read: ready
 * is false for a terminating endpoint, and a nil serving defers to ready. */
#define NULL_READY_CFG(endpoints)                                                                                    \
    GW80 RTHDR "metadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: [{name: s, port: 80}]\n" \
    "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n"                        \
    "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"                                                    \
    "metadata: {name: s-1, labels: {kubernetes.io/service-name: s}}\naddressType: IPv4\n"                           \
    "endpoints:\n" endpoints "ports: [{port: 8080}]\n"

static void test_endpoint_ready_null_is_ready(void **state)
{
    (void)state;
    result_t r = load(NULL_READY_CFG("- addresses: [10.0.0.1]\n  conditions: {ready: null}\n"
                                     "- addresses: [10.0.0.2]\n  conditions: {ready: ~}\n"
                                     "- addresses: [10.0.0.3]\n  conditions:\n    ready:\n    serving: true\n"
                                     "- addresses: [10.0.0.4]\n  conditions: {ready: null, serving: true, terminating: false}\n"
                                     "- addresses: [10.0.0.5]\n  conditions: {ready: null, serving: null, terminating: null}\n"
                                     "- addresses: [10.0.0.6]\n  conditions: null\n"
                                     "- addresses: [10.0.0.7]\n  conditions: {}\n"
                                     "- addresses: [10.0.0.8]\n  conditions: {serving: false, terminating: null}\n"
                                     "- addresses: [10.0.0.9]\n  conditions: {ready: false, serving: null}\n"
                                     "- addresses: [10.0.0.10]\n  conditions: {ready: false, serving: true, terminating: true}\n"));
    if (r.rc != 0)
        fprintf(stderr, "%s", r.errs);
    assert_int_equal(r.rc, 0);
    const sg_backend_t *b = &r.cfg->routes[0].rules[0].backends[0];
    assert_int_equal(b->nendpoints, 8);
    for (int i = 0; i < 8; i++) {
        char want[32];
        snprintf(want, sizeof(want), "10.0.0.%d:8080", i + 1);
        assert_string_equal(b->endpoints[i].label, want);
    }
    done(&r);
    /* a quoted "null" is a string, not null: still refused, as any other value is */
    r = load(NULL_READY_CFG("- addresses: [10.0.0.1]\n  conditions: {ready: \"null\"}\n"
                            "- addresses: [10.0.0.2]\n  conditions: {ready: maybe}\n"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:27:24: conditions.ready: expected true, false or null\n");
    HAS(r, "c.yaml:29:23: conditions.ready: expected true, false or null\n");
    done(&r);
}

static void test_load_file(void **state)
{
    (void)state;
    sg_config_t *cfg = (sg_config_t *)1;
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sg_config_load("/nonexistent/x.yaml", devnull, &cfg), -ENOENT);
    assert_null(cfg);
    char path[] = "/tmp/sgcfgXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *y = GW80 RTHDR "metadata: {name: r}\nspec:\n  parentRefs: [{name: gw}]\n";
    assert_int_equal(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    assert_int_equal(sg_config_load(path, devnull, &cfg), 0);
    unlink(path);
    assert_string_equal(cfg->routes[0].file, path); /* the loader keeps its own copy of the name */
    sg_config_unref(cfg);
    sg_config_unref(NULL);
    fclose(devnull);
}

/* Wrong types everywhere: each value of a valid config replaced by other YAML shapes must give errors (or a
 * config), never a crash or a leak. */
static void test_wrong_types_never_crash(void **state)
{
    (void)state;
    static const char base[] =
        GWHDR "metadata: {name: gw}\nspec:\n  addresses: [{type: IPAddress, value: 127.0.0.1}]\n  listeners:\n"
        "  - {name: http, protocol: HTTP, port: 80, hostname: a.com, allowedRoutes: {namespaces: {from: All}}}\n"
        "  - name: s\n    protocol: HTTPS\n    port: 443\n    tls: {certificateRefs: [{name: c}]}\n---\n"
        TEST_CERT_SECRET("default", "c") "---\n"
        RTHDR "metadata: {name: r, namespace: n}\nspec:\n  parentRefs: [{name: gw, namespace: default, port: 80}]\n"
        "  hostnames: [a.com]\n  rules:\n  - name: x\n    matches:\n"
        "    - path: {type: RegularExpression, value: '/a.*'}\n"
        "      headers: [{type: Exact, name: h, value: v}]\n"
        "      queryParams: [{name: q, value: v}]\n      method: GET\n"
        "    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {set: [{name: a, value: b}],"
        " remove: [c]}\n"
        "    - type: URLRewrite\n      urlRewrite: {hostname: b.com, path: {type: ReplaceFullPath, replaceFullPath: /}}\n"
        "    backendRefs:\n    - name: s\n      port: 80\n      weight: 1\n      filters: [{type: ResponseHeaderModifier,"
        " responseHeaderModifier: {add: [{name: x, value: y}]}}]\n"
        "    timeouts: {request: 1s}\n    retry: {codes: [500], attempts: 1}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\nspec: {ports: [{name: p, port: 80}]}\n---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: e, namespace: n, labels: {kubernetes.io/service-name: s}}\naddressType: IPv4\n"
        "endpoints: [{addresses: [10.0.0.1], conditions: {ready: true}}]\nports: [{name: p, port: 8080}]\n---\n"
        "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: p, namespace: n}\n"
        "spec: {targetRef: {kind: HTTPRoute, name: r}, default: {timeouts: {routeTimeout: 2s}, sessionAffinity: "
        "{affinityType: application-cookie, cookieName: c, cookieDuration: 60s}, sse: {heartbeatInterval: 5s}}}\n---\n"
        "apiVersion: alb.networking.azure.io/v1\nkind: BackendLoadBalancingPolicy\nmetadata: {name: l, namespace: n}\n"
        "spec:\n  targetRefs: [{group: '', kind: Service, name: s, ports: [{port: 80}]}]\n"
        "  loadBalancing: {strategy: ring-hash, ringHash: {minimumRingSize: 16, header: x-u}}\n---\n"
        "apiVersion: alb.networking.azure.io/v1\nkind: HealthCheckPolicy\nmetadata: {name: h, namespace: n}\n"
        "spec:\n  targetRef: {group: '', kind: Service, name: s}\n  default: {interval: 1s, timeout: 1s, "
        "healthyThreshold: 1, unhealthyThreshold: 2, port: 81, useTLS: false,\n"
        "    http: {host: h, path: /h, match: {statusCodes: [{start: 200, end: 299}]}}}\n";
    result_t r = load(base);
    if (r.rc != 0)
        fprintf(stderr, "%s", r.errs);
    assert_int_equal(r.rc, 0);
    done(&r);
    static const char *const shapes[] = {"[]", "{}", "[1, [2]]", "{a: {b: c}}", "''", "-1", "null", "~",
                                         "99999999999999999999", "\"\\0\"", "*x", "&a x", "!!binary aGk="};
    size_t n = strlen(base), runs = 0, crashes_would_abort = 0;
    char *buf = malloc(n + 64);
    for (size_t i = 0; i < n; i++) {
        /* replace the value after each ": " or "{" / "[" / "- " opener up to the next delimiter */
        bool opener = (base[i] == ':' && base[i + 1] == ' ') || (base[i] == '-' && base[i + 1] == ' ');
        if (!opener)
            continue;
        size_t start = i + 2, end = start;
        while (end < n && strchr(",}]\n", base[end]) == NULL)
            end++;
        for (size_t s = 0; s < SG_ARRAY_LEN(shapes); s++) {
            size_t sl = strlen(shapes[s]);
            memcpy(buf, base, start);
            memcpy(buf + start, shapes[s], sl);
            memcpy(buf + start + sl, base + end, n - end + 1);
            result_t x = load(buf);
            assert_true(x.rc == 0 || x.rc == -EINVAL);
            assert_true((x.rc == 0) == (x.cfg != NULL));
            if (x.rc == -EINVAL)
                assert_true(strlen(x.errs) > 0);
            crashes_would_abort += x.rc != 0 && x.rc != -EINVAL;
            done(&x);
            runs++;
        }
    }
    free(buf);
    assert_true(runs > 500);
    assert_int_equal(crashes_would_abort, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_every_kind),
        cmocka_unit_test(test_https_needs_a_certificate),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors_with_positions),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_unknown_kind_is_a_warning),
        cmocka_unit_test(test_timeout_precedence),
        cmocka_unit_test(test_unresolved_service_port),
        cmocka_unit_test(test_lb_policy),
        cmocka_unit_test(test_backend_tls_policy),
        cmocka_unit_test(test_session_affinity),
        cmocka_unit_test(test_heartbeat_policy),
        cmocka_unit_test(test_health_check_policy),
        cmocka_unit_test(test_endpoint_ready_null_is_ready),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_wrong_types_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
