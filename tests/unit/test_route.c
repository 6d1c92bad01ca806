/* test_route.c: sg_route_match against every Gateway API conformance case (route_cases.h), regex and precedence. */
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
#include "testcert.h"
#include "route_cases.h"

/* ---- request building ---- */

typedef struct req {
    sg_route_req_t r;
    sg_h1_header_t h[16];
    char hostbuf[128];
} req_t;

static void mkreq(req_t *q, const char *method, const char *host, const char *target, void *scratch)
{
    memset(q, 0, sizeof(*q));
    q->r.method = sg_str_c(method);
    q->r.host = sg_str_c(host);
    const char *qm = strchr(target, '?');
    q->r.path = (sg_str_t){target, qm ? (size_t)(qm - target) : strlen(target)};
    q->r.query = qm ? sg_str_c(qm + 1) : (sg_str_t){"", 0};
    q->r.headers = q->h;
    q->r.scratch = scratch;
}

static void addhdr(req_t *q, const char *name, const char *value)
{
    q->h[q->r.nheaders].name = sg_str_c(name);
    q->h[q->r.nheaders++].value = sg_str_c(value);
}

static sg_config_t *load_ok(const char *yaml_in)
{
    sg_config_t *cfg = NULL;
    char *errs = NULL;
    size_t errlen = 0;
    /* HTTPS listeners need their certificate: the peer cases name the Secret test-cert. */
    static const char secret[] = "---\n" TEST_CERT_SECRET("default", "test-cert");
    char *yaml = malloc(strlen(yaml_in) + sizeof(secret) + 2);
    assert_non_null(yaml);
    memcpy(yaml, yaml_in, strlen(yaml_in) + 1);
    if (strstr(yaml_in, "certificateRefs") != NULL) {
        if (yaml[strlen(yaml) - 1] != '\n')
            strcat(yaml, "\n");
        strcat(yaml, secret);
    }
    FILE *f = open_memstream(&errs, &errlen);
    assert_non_null(f);
    int rc = sg_config_load_ex("t.yaml", yaml, strlen(yaml), SG_CONFIG_NO_DNS, f, &cfg);
    free(yaml);
    fclose(f);
    if (rc != 0)
        fprintf(stderr, "load failed (%d):\n%s\n", rc, errs);
    free(errs);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

/* ---- models of what the proxy does with a matched rule (Gateway API rules) ---- */

static void join_prefix(char *out, size_t cap, const char *repl, const char *rest)
{
    size_t rl = strlen(repl);
    if (*rest == '\0') {
        snprintf(out, cap, "%s", rl ? repl : "/");
        return;
    }
    while (rl > 0 && repl[rl - 1] == '/')
        rl--;
    snprintf(out, cap, "%.*s%s%s", (int)rl, repl, rest[0] == '/' ? "" : "/", rest);
}

static void apply_path(char *out, size_t cap, sg_pathmod_t kind, const char *repl, const char *path, size_t plen,
                       size_t prefix_len)
{
    char p[512];
    snprintf(p, sizeof(p), "%.*s", (int)plen, path);
    if (kind == SG_PATHMOD_FULL)
        snprintf(out, cap, "%s", repl);
    else if (kind == SG_PATHMOD_PREFIX)
        join_prefix(out, cap, repl, p + prefix_len);
    else
        snprintf(out, cap, "%s", p);
}

typedef struct hset {
    char name[32][64];
    char value[32][128];
    size_t n;
} hset_t;

static void hs_del(hset_t *s, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (strcasecmp(s->name[i], name) == 0)
            continue;
        memmove(s->name[k], s->name[i], sizeof(s->name[0]));
        memmove(s->value[k], s->value[i], sizeof(s->value[0]));
        k++;
    }
    s->n = k;
}

static void hs_add(hset_t *s, const char *name, const char *value)
{
    assert_true(s->n < 32);
    snprintf(s->name[s->n], sizeof(s->name[0]), "%s", name);
    snprintf(s->value[s->n++], sizeof(s->value[0]), "%s", value);
}

/* All values of `name`, joined with ',' (the peer's comparison); false when absent. */
static bool hs_get(const hset_t *s, const char *name, char *out, size_t cap)
{
    bool found = false;
    out[0] = '\0';
    for (size_t i = 0; i < s->n; i++) {
        if (strcasecmp(s->name[i], name) != 0)
            continue;
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", found ? "," : "", s->value[i]);
        found = true;
    }
    return found;
}

static void hs_apply(hset_t *s, const sg_header_mod_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nset; i++) {
        hs_del(s, m->set[i].name);
        hs_add(s, m->set[i].name, m->set[i].value);
    }
    for (size_t i = 0; i < m->nadd; i++)
        hs_add(s, m->add[i].name, m->add[i].value);
    for (size_t i = 0; i < m->nremove; i++)
        hs_del(s, m->remove[i]);
}

static bool is_peer_backend(const char *n)
{
    return strcmp(n, "backend-v1") == 0 || strcmp(n, "backend-v2") == 0 || strcmp(n, "backend-v3") == 0;
}

#define CHECK(cond, ...)                                                                                             \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            fprintf(stderr, "%s: ", c->id);                                                                          \
            fprintf(stderr, __VA_ARGS__);                                                                            \
            fputc('\n', stderr);                                                                                     \
            return 1;                                                                                                \
        }                                                                                                            \
    } while (0)

/* Returns 0 when the case holds. */
static int run_case(const gw_case_t *c, const sg_config_t *cfg, void *scratch)
{
    req_t q;
    char host[128];
    if (c->host[0] != '\0')
        snprintf(host, sizeof(host), "%s", c->host);
    else
        snprintf(host, sizeof(host), "127.0.0.1:%d", c->port);
    mkreq(&q, c->method, host, c->path, scratch);
    for (size_t i = 0; i < c->nhdrs; i++)
        addhdr(&q, c->hdrs[i][0], c->hdrs[i][1]);
    sg_route_match_t m;
    int rc = sg_route_match(cfg, (uint16_t)c->port, &q.r, &m);
    if (c->status == 404) {
        CHECK(rc == -ENOENT, "expected no match (404), got rc %d (rule %zu of %s)", rc, rc == 0 ? m.rule->index : 0,
              rc == 0 ? m.route->name : "-");
        return 0;
    }
    CHECK(rc == 0, "expected a match, got %d", rc);
    CHECK(m.listener != NULL && m.route != NULL && m.rule != NULL && m.rule->route == m.route, "incomplete match");
    const sg_rule_t *rule = m.rule;
    const sg_backend_t *be = NULL;
    if (c->backend != NULL) {
        for (size_t i = 0; i < rule->nbackends && be == NULL; i++)
            if (strcmp(rule->backends[i].name, c->backend) == 0 && rule->backends[i].weight > 0)
                be = &rule->backends[i];
        CHECK(be != NULL, "rule %zu of route %s has no backend %s", rule->index, m.route->name, c->backend);
    } else if (rule->nbackends == 1) {
        be = &rule->backends[0];
    }
    const sg_filters_t *bf = be ? &be->filters : NULL;
    if (c->redirect) {
        const sg_redirect_t *rd = rule->filters.redirect ? rule->filters.redirect : bf ? bf->redirect : NULL;
        CHECK(rd != NULL, "expected a redirect filter");
        CHECK(rd->status == c->status, "redirect status %d, expected %d", rd->status, c->status);
        const char *scheme = rd->scheme ? rd->scheme : c->scheme;
        int port = rd->port ? rd->port : rd->scheme ? (strcmp(rd->scheme, "https") == 0 ? 443 : 80) : c->port;
        bool omit = (strcmp(scheme, "http") == 0 && port == 80) || (strcmp(scheme, "https") == 0 && port == 443);
        CHECK(strcmp(c->r_scheme, "=request") == 0 ? strcmp(scheme, c->scheme) == 0 : strcmp(scheme, c->r_scheme) == 0,
              "redirect scheme %s", scheme);
        const char *rhost = rd->hostname ? rd->hostname : "=request";
        CHECK(strcmp(c->r_host, "=request") == 0 ? rd->hostname == NULL : strcmp(rhost, c->r_host) == 0,
              "redirect host %s", rhost);
        char pbuf[16];
        snprintf(pbuf, sizeof(pbuf), "%d", port);
        CHECK(c->r_port == NULL ? omit : (!omit && strcmp(pbuf, c->r_port) == 0), "redirect port %d (omit %d)", port,
              omit);
        char path[512];
        apply_path(path, sizeof(path), rd->path_kind, rd->path, q.r.path.p, q.r.path.n, m.prefix_len);
        if (strcmp(c->r_path, "=request") == 0)
            CHECK(rd->path_kind == SG_PATHMOD_NONE, "redirect rewrites the path to %s", path);
        else
            CHECK(strcmp(path, c->r_path) == 0, "redirect path %s, expected %s", path, c->r_path);
        return 0;
    }
    if (c->status == 500 && strstr(c->feature, "retry") == NULL) {
        bool any = false;
        for (size_t i = 0; i < rule->nbackends; i++)
            any |= rule->backends[i].weight > 0 && is_peer_backend(rule->backends[i].name);
        CHECK(!any, "expected no usable backend (500)");
        return 0;
    }
    if (strstr(c->feature, "retry") != NULL)
        CHECK(rule->retry != NULL && rule->retry->attempts > 0 && rule->retry->ncodes > 0, "expected a retry block");
    /* timeouts: the peer's backend sleeps ?delay=1s */
    if (strstr(c->path, "delay=1s") != NULL) {
        int64_t t1 = rule->request_timeout_ms, t2 = rule->backend_timeout_ms;
        bool fires = (t1 > 0 && t1 < 1000) || (t2 > 0 && t2 < 1000);
        CHECK(fires == (c->status == -1), "timeouts request=%lld backend=%lld, expected %s", (long long)t1,
              (long long)t2, c->status == -1 ? "one < 1s" : "none < 1s");
    }
    if (strstr(c->feature, "timeout") != NULL && strstr(c->path, "delay") == NULL)
        CHECK(rule->request_timeout_ms != SG_TIMEOUT_UNSET || rule->backend_timeout_ms != SG_TIMEOUT_UNSET,
              "expected an explicit timeout on the rule");
    const sg_rewrite_t *rw = rule->filters.rewrite ? rule->filters.rewrite : bf ? bf->rewrite : NULL;
    if (c->up_path != NULL) {
        char path[512], full[600];
        apply_path(path, sizeof(path), rw ? rw->path_kind : SG_PATHMOD_NONE, rw ? rw->path : NULL, q.r.path.p,
                   q.r.path.n, m.prefix_len);
        snprintf(full, sizeof(full), "%s%s%.*s", path, q.r.query.n ? "?" : "", (int)q.r.query.n, q.r.query.p);
        CHECK(strcmp(full, c->up_path) == 0, "upstream path %s, expected %s", full, c->up_path);
    }
    if (c->up_host != NULL)
        CHECK(rw && rw->hostname && strcmp(rw->hostname, c->up_host) == 0, "upstream host rewrite");
    if (c->nup_hdrs || c->nup_absent) {
        hset_t *hs = calloc(1, sizeof(*hs));
        for (size_t i = 0; i < c->nhdrs; i++)
            hs_add(hs, c->hdrs[i][0], c->hdrs[i][1]);
        hs_apply(hs, rule->filters.req_headers);
        hs_apply(hs, bf ? bf->req_headers : NULL);
        char v[512];
        int bad = 0;
        for (size_t i = 0; i < c->nup_hdrs && !bad; i++)
            bad = !hs_get(hs, c->up_hdrs[i][0], v, sizeof(v)) || strcmp(v, c->up_hdrs[i][1]) != 0 ? (int)i + 1 : 0;
        for (size_t i = 0; i < c->nup_absent && !bad; i++)
            bad = hs_get(hs, c->up_absent[i], v, sizeof(v)) ? 100 : 0;
        free(hs);
        CHECK(!bad, "upstream headers differ (%d)", bad);
    }
    if (c->nresp_hdrs || c->nresp_absent) {
        hset_t *hs = calloc(1, sizeof(*hs));
        for (size_t i = 0; i < c->nbe_resp; i++)
            hs_add(hs, c->be_resp[i][0], c->be_resp[i][1]);
        hs_apply(hs, rule->filters.resp_headers);
        hs_apply(hs, bf ? bf->resp_headers : NULL);
        char v[512];
        int bad = 0;
        for (size_t i = 0; i < c->nresp_hdrs && !bad; i++)
            bad = !hs_get(hs, c->resp_hdrs[i][0], v, sizeof(v)) || strcasecmp(v, c->resp_hdrs[i][1]) != 0 ? (int)i + 1
                                                                                                           : 0;
        for (size_t i = 0; i < c->nresp_absent && !bad; i++)
            bad = hs_get(hs, c->resp_absent[i], v, sizeof(v)) ? 100 : 0;
        free(hs);
        CHECK(!bad, "response headers differ (%d)", bad);
    }
    return 0;
}

static void test_conformance_cases(void **state)
{
    (void)state;
    void *scratch = sg_route_scratch_new();
    assert_non_null(scratch);
    sg_config_t *cfgs[SG_ARRAY_LEN(gw_configs)];
    for (size_t i = 0; i < SG_ARRAY_LEN(gw_configs); i++)
        cfgs[i] = load_ok(gw_configs[i].yaml);
    int failed = 0;
    for (size_t i = 0; i < SG_ARRAY_LEN(gw_cases); i++)
        failed += run_case(&gw_cases[i], cfgs[gw_cases[i].config], scratch);
    for (size_t i = 0; i < SG_ARRAY_LEN(gw_configs); i++)
        sg_config_unref(cfgs[i]);
    sg_route_scratch_free(scratch);
    assert_int_equal(failed, 0);
    assert_int_equal(SG_ARRAY_LEN(gw_cases), 152);
}

/* ---- our own cases ---- */

static const char *GW = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\n"
                        "spec:\n  listeners:\n  - {name: http, protocol: HTTP, port: 80}\n---\n";

static sg_config_t *load_routes(const char *routes)
{
    char buf[8192];
    snprintf(buf, sizeof(buf), "%s%s", GW, routes);
    return load_ok(buf);
}

/* Returns the matched rule index, -1 for 404, -2 for another error. */
static int match_idx(const sg_config_t *cfg, const char *method, const char *host, const char *target,
                     const char *hname, const char *hval, void *scratch, size_t *prefix_len)
{
    req_t q;
    mkreq(&q, method, host, target, scratch);
    if (hname)
        addhdr(&q, hname, hval);
    sg_route_match_t m;
    int rc = sg_route_match(cfg, 80, &q.r, &m);
    if (rc == -ENOENT)
        return -1;
    if (rc != 0)
        return -2;
    if (prefix_len)
        *prefix_len = m.prefix_len;
    return (int)m.rule->index;
}

#define M(cfg, path) match_idx((cfg), "GET", "h", (path), NULL, NULL, scratch, NULL)

static void test_regex(void **state)
{
    (void)state;
    sg_config_t *cfg = load_routes(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
        "  parentRefs: [{name: gw}]\n  rules:\n"
        "  - matches: [{path: {type: RegularExpression, value: '/users/[0-9]+'}}]\n"          /* 0 */
        "  - matches: [{path: {type: PathPrefix, value: /users}}]\n"                          /* 1 */
        "  - matches: [{path: {type: Exact, value: /users/42}}]\n"                            /* 2 */
        "  - matches: [{headers: [{type: RegularExpression, name: X-Ver, value: 'v[12]'}]}]\n" /* 3 */
        "  - matches: [{queryParams: [{type: RegularExpression, name: id, value: '[a-f]{4}'}]}]\n" /* 4 */
        "  - matches: [{path: {type: RegularExpression, value: '/a.*'}}]\n");                 /* 5 */
    void *scratch = sg_route_scratch_new();
    assert_int_equal(M(cfg, "/users/42"), 2);    /* Exact beats RegularExpression */
    assert_int_equal(M(cfg, "/users/7"), 0);     /* RegularExpression beats PathPrefix */
    assert_int_equal(M(cfg, "/users/7x"), 1);    /* the regex must match the whole path */
    assert_int_equal(M(cfg, "/users"), 1);
    assert_int_equal(M(cfg, "/x/users/7"), -1);  /* anchored at the start too */
    assert_int_equal(M(cfg, "/abc"), 5);
    assert_int_equal(match_idx(cfg, "GET", "h", "/z", "x-ver", "v2", scratch, NULL), 3);
    assert_int_equal(match_idx(cfg, "GET", "h", "/z", "X-Ver", "v3", scratch, NULL), -1);
    assert_int_equal(match_idx(cfg, "GET", "h", "/z", "X-Ver", "v22", scratch, NULL), -1);
    assert_int_equal(M(cfg, "/z?id=beef"), 4);
    assert_int_equal(M(cfg, "/z?x=1&id=beef&id=0000"), 4);
    assert_int_equal(M(cfg, "/z?id=0000&id=beef"), -1); /* first occurrence only */
    assert_int_equal(M(cfg, "/z?id=beefy"), -1);
    /* without per-thread scratch a regex cannot be evaluated: loud, not a silent miss */
    assert_int_equal(match_idx(cfg, "GET", "h", "/users/7", NULL, NULL, NULL, NULL), -2);
    /* but a match decided before any regex needs none */
    assert_int_equal(match_idx(cfg, "GET", "h", "/users/42", NULL, NULL, NULL, NULL), 2);
    sg_route_scratch_free(scratch);
    sg_config_unref(cfg);
}

static void test_prefix_segments(void **state)
{
    (void)state;
    sg_config_t *cfg = load_routes(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
        "  parentRefs: [{name: gw}]\n  rules:\n"
        "  - matches: [{path: {type: PathPrefix, value: /foo}}]\n"      /* 0 */
        "  - matches: [{path: {type: PathPrefix, value: /foo/}}]\n"     /* 1: same paths, one more char: wins */
        "  - matches: [{path: {type: PathPrefix, value: /foo/bar}}]\n"  /* 2 */
        "  - matches: [{path: {type: Exact, value: /foo/bar}}]\n"       /* 3 */
        "  - matches: [{path: {type: PathPrefix, value: /}}]\n");       /* 4 */
    void *scratch = NULL;
    size_t pl = 99;
    assert_int_equal(match_idx(cfg, "GET", "h", "/foo", NULL, NULL, NULL, &pl), 1);
    assert_int_equal(pl, 4);
    assert_int_equal(M(cfg, "/foo/"), 1);
    assert_int_equal(match_idx(cfg, "GET", "h", "/foo/bar/baz", NULL, NULL, NULL, &pl), 2);
    assert_int_equal(pl, 8);
    assert_int_equal(M(cfg, "/foo/bar"), 3);
    assert_int_equal(M(cfg, "/foo/barn"), 1);
    assert_int_equal(M(cfg, "/foobar"), 4);
    assert_int_equal(match_idx(cfg, "GET", "h", "/anything", NULL, NULL, NULL, &pl), 4);
    assert_int_equal(pl, 0);
    /* deeper than the precomputed boundaries */
    char deep[1024] = "/foo";
    for (int i = 0; i < 100; i++)
        strcat(deep, "/x");
    assert_int_equal(M(cfg, deep), 1);
    memcpy(deep, "/foo/bar", 8);
    assert_int_equal(M(cfg, deep), 2); /* "/foo/bar/x/x/..." */
    deep[8] = 'n';
    assert_int_equal(M(cfg, deep), 1); /* "/foo/barnx/x/..." */
    sg_config_unref(cfg);
}

static void test_precedence_across_routes(void **state)
{
    (void)state;
    sg_config_t *cfg = load_routes(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: zzz-old}\nspec:\n"
        "  parentRefs: [{name: gw}]\n  rules:\n"
        "  - matches: [{path: {type: PathPrefix, value: /p}}]\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: aaa-new}\nspec:\n"
        "  parentRefs: [{name: gw}]\n  rules:\n"
        "  - matches: [{path: {type: PathPrefix, value: /p}}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /p}, method: GET}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /p}, headers: [{name: a, value: '1'}]}]\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: host}\nspec:\n"
        "  parentRefs: [{name: gw}]\n  hostnames: ['*.example.com']\n  rules:\n"
        "  - matches: [{path: {type: PathPrefix, value: /w}}]\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: host2}\nspec:\n"
        "  parentRefs: [{name: gw}]\n  hostnames: [foo.example.com]\n  rules:\n"
        "  - matches: [{path: {type: PathPrefix, value: /w}}]\n");
    req_t q;
    sg_route_match_t m;
    mkreq(&q, "POST", "h", "/p", NULL);
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    assert_string_equal(m.route->name, "zzz-old"); /* oldest route wins the tie, not the alphabetical one */
    mkreq(&q, "GET", "h", "/p/x", NULL);
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    assert_string_equal(m.route->name, "aaa-new"); /* method match beats an older route without one */
    assert_int_equal(m.rule->index, 1);
    addhdr(&q, "A", "1");
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    assert_int_equal(m.rule->index, 1); /* method outranks headers */
    mkreq(&q, "PUT", "h", "/p/x", NULL);
    addhdr(&q, "a", "1");
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    assert_int_equal(m.rule->index, 2);
    /* hostnames: exact over wildcard; wildcard needs a label; ports and case in Host ignored */
    mkreq(&q, "GET", "FOO.example.com:8080", "/w", NULL);
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    assert_string_equal(m.route->name, "host2");
    mkreq(&q, "GET", "a.b.example.com.", "/w", NULL);
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    assert_string_equal(m.route->name, "host");
    mkreq(&q, "GET", "example.com", "/w", NULL);
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), -ENOENT);
    /* a request for foo.example.com that its exact route cannot serve falls to the less specific routes */
    mkreq(&q, "POST", "foo.example.com", "/p", NULL);
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    assert_string_equal(m.route->name, "zzz-old");
    mkreq(&q, "GET", "[::1]:80", "/p", NULL);
    assert_int_equal(sg_route_match(cfg, 80, &q.r, &m), 0);
    mkreq(&q, "GET", "h", "/p", NULL);
    assert_int_equal(sg_route_match(cfg, 81, &q.r, &m), -ENOENT);
    sg_config_unref(cfg);
}

static void test_invalid_regex_is_config_error(void **state)
{
    (void)state;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s%s", GW,
             "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"
             "  parentRefs: [{name: gw}]\n  rules:\n"
             "  - matches: [{path: {type: RegularExpression, value: '/a[b'}}]\n"
             "  - matches: [{headers: [{type: RegularExpression, name: x, value: '(?<'}]}]\n");
    char *errs = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&errs, &len);
    sg_config_t *cfg = NULL;
    assert_int_equal(sg_config_load_ex("re.yaml", buf, strlen(buf), SG_CONFIG_NO_DNS, f, &cfg), -EINVAL);
    fclose(f);
    assert_null(cfg);
    assert_non_null(strstr(errs, "re.yaml:14:56: invalid regular expression \"/a[b\" at offset 4: missing terminating ]"));
    assert_non_null(strstr(errs, "re.yaml:15:69: invalid regular expression \"(?<\""));
    free(errs);
}

static void test_scratch_threads_independent(void **state)
{
    (void)state;
    void *a = sg_route_scratch_new(), *b = sg_route_scratch_new();
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    sg_route_scratch_free(a);
    sg_route_scratch_free(b);
    sg_route_scratch_free(NULL);
    sg_route_table_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_cases),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_prefix_segments),
        cmocka_unit_test(test_precedence_across_routes),
        cmocka_unit_test(test_invalid_regex_is_config_error),
        cmocka_unit_test(test_scratch_threads_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
