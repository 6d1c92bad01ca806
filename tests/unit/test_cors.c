/* test_cors.c: unit tests of the CORS filter: origin syntax and matching (inputs against a guard page), preflight
 * answers, actual-response headers, and the loader's checks of every cors field with their positions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/cors.h"
#include "guard.h"

static sg_guard_t g;

/* Parses s placed right before the guard page: a read past its end crashes the test. */
static int parse_guarded(const char *s, bool pattern, sg_cors_origin_t *o)
{
    const char *why = NULL;
    const char *p = guard_put(&g, s, strlen(s));
    int rc = sg_cors_origin_parse((sg_str_t){p, strlen(s)}, pattern, o, &why);
    if (rc != 0)
        assert_non_null(why);
    return rc;
}

static bool str_is(sg_str_t a, const char *b)
{
    return a.n == strlen(b) && memcmp(a.p, b, a.n) == 0;
}

static void test_origin_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *s, *scheme, *host;
        bool wild;
        uint16_t port;
    } ok[] = {
        {"https://app.example", "https", "app.example", false, 443},
        {"http://app.example", "http", "app.example", false, 80},
        {"http://127.0.0.2:8080", "http", "127.0.0.2", false, 8080},
        {"https://[::1]:8443", "https", "[::1]", false, 8443},
        {"HTTPS://App.Example:443", "HTTPS", "App.Example", false, 443},
        {"https://*.example.com", "https", ".example.com", true, 443},
        {"http://*", "http", "", true, 80},
        {"https://*:8443", "https", "", true, 8443},
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(ok); i++) {
        sg_cors_origin_t o;
        assert_int_equal(parse_guarded(ok[i].s, true, &o), 0);
        assert_true(str_is(o.scheme, ok[i].scheme));
        assert_true(str_is(o.host, ok[i].host));
        assert_int_equal(o.wild, ok[i].wild);
        assert_int_equal(o.port, ok[i].port);
    }
    static const char *const bad[] = {
        "", "*", "null", "app.example", "https:/app.example", "https//app.example", "https://", "https://:443",
        "https://app.example/", "https://app.example/path", "https://app.example?x", "https://app.example#f",
        "https://u@app.example", "https://app.example:", "https://app.example:0", "https://app.example:65536",
        "https://app.example:99999", "https://app.example:8x", "ftp://app.example", "1http://app.example",
        "https://a..example", "https://-a.example", "https://a-.example", "https://a_b.example", "https://a b",
        "https://*.", "https://*example.com", "https://a.*.example", "https://*.*.example", "https://**",
        "https://[::1", "https://[zz]", "https://app.example:443:1",
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
        sg_cors_origin_t o;
        if (parse_guarded(bad[i], true, &o) != -EINVAL)
            fail_msg("pattern \"%s\" was accepted", bad[i]);
    }
    /* A request's Origin: any scheme, never a wildcard. */
    sg_cors_origin_t o;
    assert_int_equal(parse_guarded("chrome-extension://abcdef", false, &o), 0);
    assert_int_equal(o.port, 0);
    assert_int_equal(parse_guarded("https://*.example.com", false, &o), -EINVAL);
    assert_int_equal(parse_guarded("null", false, &o), -EINVAL);
}

/* Whether pattern p allows request origin o. */
static bool allows(const char *p, const char *o)
{
    sg_cors_origin_t po, oo;
    const char *why;
    assert_int_equal(sg_cors_origin_parse(sg_str_c(p), true, &po, &why), 0);
    if (parse_guarded(o, false, &oo) != 0)
        return false;
    return sg_cors_origin_match(&po, &oo);
}

static void test_origin_match(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *origin;
        bool match;
    } cases[] = {
        {"https://app.example", "https://app.example", true},
        {"https://app.example", "https://APP.example", true},
        {"https://app.example", "https://app.example:443", true},   /* the default port is the same origin */
        {"https://app.example:443", "https://app.example", true},
        {"https://app.example", "http://app.example", false},       /* scheme */
        {"https://app.example", "https://app.example:8443", false}, /* port */
        {"https://app.example", "https://app.example.evil", false},
        {"https://app.example", "https://evil-app.example", false},
        {"https://app.example", "https://x.app.example", false},
        {"http://127.0.0.2:8080", "http://127.0.0.2:8080", true},
        {"http://127.0.0.2:8080", "http://127.0.0.2", false},
        {"https://*.example.com", "https://a.example.com", true},
        {"https://*.example.com", "https://a.b.example.com", true}, /* greedy: any number of labels */
        {"https://*.example.com", "https://example.com", false},    /* at least one label in front */
        {"https://*.example.com", "https://aexample.com", false},
        {"https://*.example.com", "https://a.example.com.evil", false},
        {"https://*.example.com", "http://a.example.com", false},
        {"https://*.example.com", "https://a.example.com:8443", false},
        {"https://*", "https://anything.at.all", true},
        {"https://*", "http://anything", false},
        {"https://*:8443", "https://a.b:8443", true},
        {"https://*:8443", "https://a.b", false},
        {"https://app.example", "null", false},
        {"https://app.example", "https://app.example/", false},
        {"https://app.example", "https://app.example, https://app.example", false},
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++)
        if (allows(cases[i].pattern, cases[i].origin) != cases[i].match)
            fail_msg("%s vs %s: expected %s", cases[i].pattern, cases[i].origin, cases[i].match ? "match" : "none");
}

/* A filter as the loader builds it. */
static sg_cors_t make_cors(const char *const *origins, size_t norigins, bool creds, char **methods, size_t nm,
                           char **headers, size_t nh, const char *expose)
{
    static sg_cors_origin_t os[8];
    sg_cors_t c = {0};
    const char *why;
    for (size_t i = 0; i < norigins; i++) {
        if (strcmp(origins[i], "*") == 0) {
            c.any_origin = true;
            continue;
        }
        assert_int_equal(sg_cors_origin_parse(sg_str_c(origins[i]), true, &os[c.norigins++], &why), 0);
    }
    c.origins = os;
    c.credentials = creds;
    c.methods = methods;
    c.nmethods = nm;
    c.any_method = nm == 1 && strcmp(methods[0], "*") == 0;
    c.headers = headers;
    c.nheaders = nh;
    c.any_header = nh == 1 && strcmp(headers[0], "*") == 0;
    c.allow_methods = c.any_method || nm == 0 ? NULL : "PUT, DELETE";
    c.allow_headers = c.any_header || nh == 0 ? NULL : "x-token, content-type";
    c.expose_headers = (char *)expose;
    snprintf(c.max_age, sizeof(c.max_age), "5");
    return c;
}

static sg_h1_msg_t request(const char *method, sg_h1_header_t *h, size_t n)
{
    sg_h1_msg_t m;
    memset(&m, 0, sizeof(m));
    m.method = sg_str_c(method);
    for (size_t i = 0; i < n; i++)
        m.headers[i] = h[i];
    m.nheaders = n;
    return m;
}

static const char *value(const sg_h1_header_t *h, size_t n, const char *name)
{
    static char buf[256];
    for (size_t i = 0; i < n; i++)
        if (sg_str_ieq_lit(h[i].name, name)) {
            snprintf(buf, sizeof(buf), "%.*s", (int)h[i].value.n, h[i].value.p);
            return buf;
        }
    return NULL;
}

static void test_preflight(void **state)
{
    (void)state;
    static const char *const origins[] = {"https://app.example", "https://*.b.example"};
    static char *methods[] = {"PUT", "DELETE"};
    static char *headers[] = {"x-token", "content-type"};
    sg_cors_t c = make_cors(origins, 2, true, methods, 2, headers, 2, "x-seq");
    sg_h1_header_t out[SG_CORS_MAX_HEADERS];
    size_t n;

    sg_h1_header_t h[] = {{SG_STR("Origin"), SG_STR("https://x.b.example")},
                          {SG_STR("Access-Control-Request-Method"), SG_STR("PUT")},
                          {SG_STR("Access-Control-Request-Headers"), SG_STR("X-Token, content-type")}};
    sg_h1_msg_t m = request("OPTIONS", h, 3);
    assert_true(sg_cors_is_preflight(&m));
    assert_true(sg_cors_preflight(&c, &m, out, &n));
    assert_string_equal(value(out, n, "access-control-allow-origin"), "https://x.b.example");
    assert_string_equal(value(out, n, "access-control-allow-credentials"), "true");
    assert_string_equal(value(out, n, "access-control-allow-methods"), "PUT, DELETE");
    assert_string_equal(value(out, n, "access-control-allow-headers"), "x-token, content-type");
    assert_string_equal(value(out, n, "access-control-max-age"), "5");
    assert_non_null(value(out, n, "vary"));

    /* Refused: another origin, a method or a header not listed. Only Vary then. */
    h[0].value = SG_STR("https://evil.example");
    m = request("OPTIONS", h, 3);
    assert_false(sg_cors_preflight(&c, &m, out, &n));
    assert_int_equal(n, 1);
    assert_null(value(out, n, "access-control-allow-origin"));
    h[0].value = SG_STR("https://app.example");
    h[1].value = SG_STR("PATCH");
    m = request("OPTIONS", h, 3);
    assert_false(sg_cors_preflight(&c, &m, out, &n));
    h[1].value = SG_STR("put"); /* method names are case-sensitive */
    m = request("OPTIONS", h, 3);
    assert_false(sg_cors_preflight(&c, &m, out, &n));
    h[1].value = SG_STR("GET"); /* safelisted: always allowed */
    m = request("OPTIONS", h, 3);
    assert_true(sg_cors_preflight(&c, &m, out, &n));
    h[2].value = SG_STR("x-token, x-other");
    m = request("OPTIONS", h, 3);
    assert_false(sg_cors_preflight(&c, &m, out, &n));
    h[2].value = SG_STR(" , X-TOKEN ,");
    m = request("OPTIONS", h, 3);
    assert_true(sg_cors_preflight(&c, &m, out, &n));

    /* No Access-Control-Request-Method: not a preflight; GET with one is not either. */
    m = request("OPTIONS", h, 1);
    assert_false(sg_cors_is_preflight(&m));
    m = request("GET", h, 3);
    assert_false(sg_cors_is_preflight(&m));
}

static void test_preflight_wildcards(void **state)
{
    (void)state;
    static const char *const any[] = {"*"};
    static char *star[] = {"*"};
    sg_cors_t c = make_cors(any, 1, false, star, 1, star, 1, NULL);
    sg_h1_header_t out[SG_CORS_MAX_HEADERS];
    size_t n;
    sg_h1_header_t h[] = {{SG_STR("Origin"), SG_STR("http://127.0.0.2:9000")},
                          {SG_STR("Access-Control-Request-Method"), SG_STR("PATCH")},
                          {SG_STR("Access-Control-Request-Headers"), SG_STR("authorization,x-a")}};
    sg_h1_msg_t m = request("OPTIONS", h, 3);
    assert_true(sg_cors_preflight(&c, &m, out, &n));
    /* "*" answers with what was asked, and the origin is always the request's own, never "*" or a list. */
    assert_string_equal(value(out, n, "access-control-allow-origin"), "http://127.0.0.2:9000");
    assert_string_equal(value(out, n, "access-control-allow-methods"), "PATCH");
    assert_string_equal(value(out, n, "access-control-allow-headers"), "authorization,x-a");
    assert_null(value(out, n, "access-control-allow-credentials"));
    /* An opaque origin is refused even by "*". */
    h[0].value = SG_STR("null");
    m = request("OPTIONS", h, 3);
    assert_false(sg_cors_preflight(&c, &m, out, &n));
    /* No allowMethods: only the safelisted methods. */
    c = make_cors(any, 1, false, NULL, 0, NULL, 0, NULL);
    h[0].value = SG_STR("https://a.example");
    m = request("OPTIONS", h, 2);
    assert_false(sg_cors_preflight(&c, &m, out, &n));
    h[1].value = SG_STR("POST");
    m = request("OPTIONS", h, 2);
    assert_true(sg_cors_preflight(&c, &m, out, &n));
    assert_null(value(out, n, "access-control-allow-methods"));
    m = request("OPTIONS", h, 3); /* headers asked for, none allowed */
    assert_false(sg_cors_preflight(&c, &m, out, &n));
}

static void test_actual(void **state)
{
    (void)state;
    static const char *const origins[] = {"https://app.example"};
    sg_cors_t c = make_cors(origins, 1, true, NULL, 0, NULL, 0, "x-seq, x-id");
    sg_h1_header_t out[SG_CORS_MAX_HEADERS];
    size_t n = sg_cors_actual(&c, SG_STR("https://app.example"), out);
    assert_string_equal(value(out, n, "vary"), "Origin");
    assert_string_equal(value(out, n, "access-control-allow-origin"), "https://app.example");
    assert_string_equal(value(out, n, "access-control-allow-credentials"), "true");
    assert_string_equal(value(out, n, "access-control-expose-headers"), "x-seq, x-id");
    n = sg_cors_actual(&c, SG_STR("https://other.example"), out);
    assert_int_equal(n, 1);
    assert_string_equal(value(out, n, "vary"), "Origin");
    n = sg_cors_actual(&c, (sg_str_t){NULL, 0}, out);
    assert_int_equal(n, 1);

    assert_true(sg_cors_owns_header(SG_STR("Access-Control-Allow-Origin")));
    assert_true(sg_cors_owns_header(SG_STR("access-control-max-age")));
    assert_true(sg_cors_owns_header(SG_STR("ACCESS-CONTROL-EXPOSE-HEADERS")));
    assert_false(sg_cors_owns_header(SG_STR("access-control-request-method")));
    assert_false(sg_cors_owns_header(SG_STR("access-control-")));
    assert_false(sg_cors_owns_header(SG_STR("vary")));
}

/* ---- the loader ---- */

#define HEAD                                                                                                         \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"                         \
    "  listeners: [{name: http, protocol: HTTP, port: 80}]\n---\n"                                                  \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"                        \
    "  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: [{name: 10.0.0.1, port: 80}]\n    filters:\n"
/* HEAD is 14 lines: the first filter line is 15. */

static int load(const char *yaml, char **errs, sg_config_t **cfg)
{
    size_t len = 0;
    FILE *f = open_memstream(errs, &len);
    assert_non_null(f);
    int rc = sg_config_load_ex("c.yaml", yaml, strlen(yaml), SG_CONFIG_NO_DNS, f, cfg);
    fclose(f);
    return rc;
}

static void test_load(void **state)
{
    (void)state;
    const char *y = HEAD "    - type: CORS\n"
                         "      cors:\n"
                         "        allowOrigins: [\"https://app.example\", \"https://*.b.example\", \"http://127.0.0.2:81\"]\n"
                         "        allowCredentials: true\n"
                         "        allowMethods: [GET, PUT]\n"
                         "        allowHeaders: [x-token, Content-Type]\n"
                         "        exposeHeaders: [x-seq]\n"
                         "        maxAge: 600\n";
    char *errs = NULL;
    sg_config_t *cfg = NULL;
    assert_int_equal(load(y, &errs, &cfg), 0);
    assert_string_equal(errs, "");
    const sg_cors_t *c = cfg->routes[0].rules[0].filters.cors;
    assert_non_null(c);
    assert_int_equal(c->norigins, 3);
    assert_false(c->any_origin);
    assert_true(c->credentials);
    assert_string_equal(c->allow_methods, "GET, PUT");
    assert_string_equal(c->allow_headers, "x-token, Content-Type");
    assert_string_equal(c->expose_headers, "x-seq");
    assert_string_equal(c->max_age, "600");
    assert_true(sg_cors_origin_allowed(c, SG_STR("https://deep.x.b.example")));
    assert_false(sg_cors_origin_allowed(c, SG_STR("https://b.example")));
    sg_config_unref(cfg);
    free(errs);

    /* Defaults: maxAge 5, no credentials. */
    y = HEAD "    - {type: CORS, cors: {allowOrigins: [\"*\"]}}\n";
    cfg = NULL;
    assert_int_equal(load(y, &errs, &cfg), 0);
    c = cfg->routes[0].rules[0].filters.cors;
    assert_true(c->any_origin);
    assert_false(c->credentials);
    assert_string_equal(c->max_age, "5");
    assert_null(c->allow_methods);
    assert_null(c->expose_headers);
    sg_config_unref(cfg);
    free(errs);
}

static void test_load_errors(void **state)
{
    (void)state;
    static const struct {
        const char *filter, *err;
    } cases[] = {
        {"    - type: CORS\n", "c.yaml:15:7: missing required field \"cors\""},
        {"    - {type: CORS, cors: {allowOrigins: [\"https://a.example/\"]}}\n",
         "c.yaml:15:43: allowOrigins: \"https://a.example/\": an origin has no path"},
        {"    - {type: CORS, cors: {allowOrigins: [\"a.example\"]}}\n",
         "c.yaml:15:43: allowOrigins: \"a.example\": an origin is scheme://host[:port]"},
        {"    - {type: CORS, cors: {allowOrigins: [\"ftp://a.example\"]}}\n",
         "c.yaml:15:43: allowOrigins: \"ftp://a.example\": an origin is scheme://host[:port] (scheme http or https)"},
        {"    - {type: CORS, cors: {allowOrigins: [\"https://a.*.example\"]}}\n",
         "c.yaml:15:43: allowOrigins: \"https://a.*.example\": a wildcard is the whole host"},
        {"    - {type: CORS, cors: {allowOrigins: [\"https://a.example:70000\"]}}\n",
         "c.yaml:15:43: allowOrigins: \"https://a.example:70000\": an origin's port is a number from 1 to 65535"},
        {"    - {type: CORS, cors: {allowOrigins: [\"*\", \"https://a.example\"]}}\n",
         "c.yaml:15:43: allowOrigins: \"*\" already allows everything"},
        {"    - {type: CORS, cors: {allowOrigins: [\"https://a.example\", \"https://A.example\"]}}\n",
         "c.yaml:15:64: allowOrigins: \"https://A.example\" is listed twice"},
        {"    - {type: CORS, cors: {allowCredentials: yes}}\n", "c.yaml:15:45: allowCredentials: expected true or false"},
        {"    - {type: CORS, cors: {allowMethods: [GET, FETCH]}}\n",
         "c.yaml:15:47: allowMethods: \"FETCH\" is not one of"},
        {"    - {type: CORS, cors: {allowMethods: [\"*\", GET]}}\n",
         "c.yaml:15:43: allowMethods: \"*\" already allows everything"},
        {"    - {type: CORS, cors: {allowHeaders: [\"x token\"]}}\n",
         "c.yaml:15:43: allowHeaders: \"x token\" is not a valid header name"},
        {"    - {type: CORS, cors: {exposeHeaders: [\"a:b\"]}}\n",
         "c.yaml:15:44: exposeHeaders: \"a:b\" is not a valid header name"},
        {"    - {type: CORS, cors: {allowCredentials: true, exposeHeaders: [\"*\"]}}\n",
         "c.yaml:15:51: exposeHeaders: \"*\" cannot be used with allowCredentials: true"},
        {"    - {type: CORS, cors: {maxAge: 0}}\n", "c.yaml:15:35: maxAge: 0 out of range 1..2147483647"},
        {"    - {type: CORS, cors: {maxAge: 5s}}\n", "c.yaml:15:35: maxAge: expected an integer"},
        {"    - {type: CORS, cors: {allowOrigin: [\"*\"]}}\n", "c.yaml:15:27: cors: unknown field \"allowOrigin\""},
        {"    - {type: CORS, cors: {}}\n    - {type: CORS, cors: {}}\n", "c.yaml:16:8: filter CORS given twice"},
        {"    - {type: CORS, requestRedirect: {statusCode: 301}, cors: {}}\n",
         "c.yaml:15:38: filter of type CORS must not set requestRedirect"},
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(cases); i++) {
        char y[2048];
        snprintf(y, sizeof(y), "%s%s", HEAD, cases[i].filter);
        char *errs = NULL;
        sg_config_t *cfg = NULL;
        assert_int_equal(load(y, &errs, &cfg), -EINVAL);
        assert_null(cfg);
        if (strstr(errs, cases[i].err) == NULL)
            fail_msg("case %zu: missing \"%s\" in:\n%s", i, cases[i].err, errs);
        free(errs);
    }
}

static void test_backend_level_refused(void **state)
{
    (void)state;
    const char *y = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"
                    "  listeners: [{name: http, protocol: HTTP, port: 80}]\n---\n"
                    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
                    "  parentRefs: [{name: gw}]\n  rules:\n"
                    "  - backendRefs:\n"                                                      /* 13 */
                    "    - name: 10.0.0.1\n"                                                  /* 14 */
                    "      port: 80\n"                                                        /* 15 */
                    "      filters: [{type: CORS, cors: {allowOrigins: [\"*\"]}}]\n";      /* 16 */
    char *errs = NULL;
    sg_config_t *cfg = NULL;
    assert_int_equal(load(y, &errs, &cfg), -EINVAL);
    if (strstr(errs, "c.yaml:16:24: a CORS filter on a backendRef is not supported") == NULL)
        fail_msg("%s", errs);
    free(errs);
}

int main(void)
{
    guard_init(&g, 4096);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_origin_syntax),
        cmocka_unit_test(test_origin_match),
        cmocka_unit_test(test_preflight),
        cmocka_unit_test(test_preflight_wildcards),
        cmocka_unit_test(test_actual),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_backend_level_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    guard_fini(&g);
    return rc;
}
