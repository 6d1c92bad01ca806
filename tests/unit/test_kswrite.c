/* test_kswrite.c: the status writer against a fake API server with resourceVersions: PUT to /status with the version
 * read, 409 re-reads and keeps what the other writer put there, retries with backoff on 5xx, nothing written (nor
 * read) when nothing changed, our parents entries removed from a route the build no longer has. */
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
#include "kube/kswrite.h"

#define CTL "ssegate.io/gateway-controller"

typedef struct fobj {
    char path[256];
    char *json;                 /* with "resourceVersion":"<rv>" */
    int rv;
} fobj_t;

typedef struct fake {
    fobj_t objs[160];
    size_t nobjs;
    int gets, puts, sleeps, lists;
    int list_page;              /* items per LIST page (0: all in one) */
    int fail_puts;              /* answer 500 to this many PUTs */
    bool refuse_puts;           /* answer -EPERM to PUTs, as the runner does once it stopped leading */
    int race_puts;              /* before this many PUTs of a route, another controller writes it first */
    int throttle;               /* answer 429 with Retry-After retry_after_s to this many requests */
    int retry_after_s;
    int64_t slept_ms;           /* the waits asked for, summed */
} fake_t;

static fobj_t *fobj(fake_t *f, const char *path)
{
    for (size_t i = 0; i < f->nobjs; i++)
        if (strcmp(f->objs[i].path, path) == 0)
            return &f->objs[i];
    return NULL;
}

/* Stores json with resourceVersion set to ++rv (json must carry "resourceVersion":"..."). */
static void fset(fobj_t *o, const char *json)
{
    const char *p = strstr(json, "\"resourceVersion\"");
    assert_non_null(p);
    const char *q = strchr(p + 17, '"');
    const char *r = strchr(q + 1, '"');
    size_t cap = strlen(json) + 32;
    char *n = malloc(cap);
    o->rv++;
    snprintf(n, cap, "%.*s\"%d\"%s", (int)(q - json), json, o->rv, r + 1);
    free(o->json);
    o->json = n;
}

static void fadd(fake_t *f, const char *path, const char *json)
{
    fobj_t *o = &f->objs[f->nobjs++];
    snprintf(o->path, sizeof(o->path), "%s", path);
    o->rv = 10;
    o->json = NULL;
    fset(o, json);
}

static int body_rv(const char *b)
{
    const char *p = strstr(b, "\"resourceVersion\"");
    if (p == NULL)
        return -1;
    p = strchr(p + 17, '"');
    return atoi(p + 1);
}

static int fake_req(void *ctx, const char *method, const char *path, const char *body, size_t len, char **resp,
                    size_t *resp_len, int *retry_after_s)
{
    fake_t *f = ctx;
    (void)len;
    if (f->throttle > 0) {
        f->throttle--;
        *retry_after_s = f->retry_after_s;
        return 429;
    }
    char p[300];
    snprintf(p, sizeof(p), "%s", path);
    size_t pl = strlen(p);
    bool status = pl > 7 && strcmp(p + pl - 7, "/status") == 0;
    if (status)
        p[pl - 7] = '\0';
    char *q = strchr(p, '?');
    if (q != NULL && strcmp(method, "GET") == 0) {
        /* a LIST: the collection's objects (those whose path is coll/<name>), paged by a continue token "<index>" */
        *q = '\0';
        const char *c = strstr(q + 1, "continue=");
        size_t from = c ? (size_t)atoi(c + 9) : 0, n = 0, coll = strlen(p);
        char *out = NULL;
        size_t olen = 0;
        FILE *m = open_memstream(&out, &olen);
        fprintf(m, "{\"kind\":\"List\",\"metadata\":{");
        size_t i = 0, next = 0;
        fputs("},\"items\":[", m);
        for (size_t j = 0; j < f->nobjs; j++) {
            fobj_t *e = &f->objs[j];
            if (strncmp(e->path, p, coll) != 0 || e->path[coll] != '/' || strchr(e->path + coll + 1, '/'))
                continue;
            if (i++ < from)
                continue;
            if (f->list_page && n == (size_t)f->list_page) {
                next = i - 1;
                break;
            }
            /* as a list of a built-in kind: items without apiVersion and kind */
            const char *meta = strstr(e->json, "\"metadata\"");
            fprintf(m, "%s{%s", n++ ? "," : "", meta);
        }
        fputs("]}", m);
        fclose(m);
        if (next) {
            /* put the continue token into metadata: rebuild with it */
            char *with = malloc(olen + 64);
            snprintf(with, olen + 64, "{\"kind\":\"List\",\"metadata\":{\"continue\":\"%zu\"%s", next,
                     out + strlen("{\"kind\":\"List\",\"metadata\":{"));
            free(out);
            out = with;
        }
        f->lists++;
        *resp = out;
        *resp_len = strlen(out);
        return 200;
    }
    fobj_t *o = fobj(f, p);
    if (strcmp(method, "GET") == 0) {
        f->gets++;
        if (o == NULL) {
            return 404;
        }
        *resp = strdup(o->json);
        *resp_len = strlen(o->json);
        return 200;
    }
    assert_string_equal(method, "PUT");
    assert_true(status);
    f->puts++;
    if (f->refuse_puts)
        return -EPERM;
    if (f->fail_puts > 0) {
        f->fail_puts--;
        return 500;
    }
    if (o == NULL)
        return 404;
    if (f->race_puts > 0 && strstr(p, "/httproutes/") != NULL) {
        f->race_puts--;
        /* another controller adds its entry to the route's parents, which moves the resourceVersion */
        char *j = o->json, *pos = strstr(j, "\"parents\"");
        if (pos != NULL) {
            pos = strchr(pos, '[');
            size_t cap = strlen(j) + 200;
            char *n = malloc(cap);
            snprintf(n, cap, "%.*s{\"parentRef\":{\"name\":\"mesh%d\"},\"controllerName\":\"example.com/mesh\","
                       "\"conditions\":[]}%s%s", (int)(pos + 1 - j), j, o->rv, pos[1] == ']' ? "" : ",", pos + 1);
            fset(o, n);
            free(n);
        } else {
            fset(o, j);
        }
    }
    if (body_rv(body) != o->rv)
        return 409;
    fset(o, body);
    *resp = strdup(o->json);
    *resp_len = strlen(o->json);
    return 200;
}

static bool fake_sleep(void *ctx, int64_t ms)
{
    fake_t *f = ctx;
    assert_true(ms > 0 && ms <= (f->retry_after_s > 2 ? f->retry_after_s * 1000 : 2000));
    f->sleeps++;
    f->slept_ms += ms;
    return true;
}

#define ROUTES_YAML                                                                                                  \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: apps}\n"               \
    "spec:\n  gatewayClassName: ssegate\n  listeners:\n  - {name: http, protocol: HTTP, port: 8080}\n---\n"          \
    "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: apps}\nspec: {ports: [{port: 80}]}\n---\n"       \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: apps, generation: 2}\n" \
    "spec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: [{name: a, port: 80}]\n"
#define RPATH "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes/r"
#define GPATH "/apis/gateway.networking.k8s.io/v1/namespaces/apps/gateways/gw"

typedef struct fx {
    fake_t f;
    sg_kswriter_t w;
    sg_config_t *cfg;
    sg_config_diag_t d;
    sg_kstatus_env_t env;
} fx_t;

static const char *const classes[] = {"ssegate"};

static void setup(fx_t *x, const char *yaml)
{
    memset(x, 0, sizeof(*x));
    fadd(&x->f, RPATH, "{\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\",\"namespace\":\"apps\","
                       "\"resourceVersion\":\"1\",\"generation\":2},\"spec\":{},\"status\":{\"parents\":["
                       "{\"parentRef\":{\"name\":\"other\"},\"controllerName\":\"example.com/other\","
                       "\"conditions\":[]}]}}");
    fadd(&x->f, GPATH, "{\"kind\":\"Gateway\",\"metadata\":{\"name\":\"gw\",\"namespace\":\"apps\","
                       "\"resourceVersion\":\"1\"},\"spec\":{}}");
    sg_kreq_t rq = {fake_req, &x->f, fake_sleep};
    sg_kswrite_init(&x->w, &rq, CTL);
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sg_config_load_lenient("kube", yaml, strlen(yaml), SG_CONFIG_NO_DNS, devnull, &x->d, &x->cfg),
                     0);
    fclose(devnull);
    x->env.controller = CTL;
    x->env.programmed = true;
    x->env.classes = classes;
    x->env.nclasses = 1;
    x->env.now = "2026-01-01T00:00:00Z";
}

static void teardown(fx_t *x)
{
    sg_kswrite_free(&x->w);
    sg_config_unref(x->cfg);
    sg_config_diag_free(&x->d);
    for (size_t i = 0; i < x->f.nobjs; i++)
        free(x->f.objs[i].json);
}

static uint64_t cnt(fx_t *x, int r)
{
    return atomic_load(&x->w.counts[r]);
}

static void test_paths(void **state)
{
    (void)state;
    char p[256];
    assert_true(sg_kswrite_path("gateway.networking.k8s.io/v1", "HTTPRoute", "apps", "r", p, sizeof(p)) > 0);
    assert_string_equal(p, RPATH);
    assert_true(sg_kswrite_path("gateway.networking.k8s.io/v1", "Gateway", "apps", "gw", p, sizeof(p)) > 0);
    assert_string_equal(p, GPATH);
    assert_true(sg_kswrite_path("gateway.networking.k8s.io/v1", "GatewayClass", NULL, "c", p, sizeof(p)) > 0);
    assert_string_equal(p, "/apis/gateway.networking.k8s.io/v1/gatewayclasses/c");
    assert_true(sg_kswrite_path("alb.networking.azure.io/v1", "RoutePolicy", "a", "p", p, sizeof(p)) > 0);
    assert_string_equal(p, "/apis/alb.networking.azure.io/v1/namespaces/a/routepolicies/p");
    assert_true(sg_kswrite_path("coordination.k8s.io/v1", "Lease", "a", "l", p, sizeof(p)) > 0);
    assert_string_equal(p, "/apis/coordination.k8s.io/v1/namespaces/a/leases/l");
    assert_int_equal(sg_kswrite_path("v1", "Service", "a", "x/../y", p, sizeof(p)), -EINVAL);
    assert_int_equal(sg_kswrite_path("v1", "Service", "a", "s", p, 8), -ENOSPC);
}

/* First sync writes the Gateway and the route (the route keeping the other controller's entry); a second sync with
 * nothing changed makes no request at all; a resync after forget reads but writes nothing. */
static void test_sync_and_skip(void **state)
{
    (void)state;
    fx_t x;
    setup(&x, ROUTES_YAML);
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(cnt(&x, SG_KSW_WRITTEN), 2);
    assert_int_equal(x.f.puts, 2);
    const char *r = fobj(&x.f, RPATH)->json;
    assert_non_null(strstr(r, "example.com/other"));
    assert_non_null(strstr(r, CTL));
    assert_non_null(strstr(fobj(&x.f, GPATH)->json, "\"attachedRoutes\":1"));
    int gets = x.f.gets, puts = x.f.puts;
    x.env.now = "2026-06-06T00:00:00Z";        /* a new time alone is no change */
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.gets, gets);
    assert_int_equal(x.f.puts, puts);
    sg_kswrite_forget(&x.w);
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.gets, gets + 2);
    assert_int_equal(x.f.puts, puts);
    assert_int_equal(cnt(&x, SG_KSW_UNCHANGED), 2);
    assert_null(strstr(fobj(&x.f, RPATH)->json, "2026-06-06")); /* transition times kept */
    teardown(&x);
}

/* Nine routes in one namespace: a first sync reads them with one LIST (paged), not nine GETs, and writes each with the
 * resourceVersion listed; a listed copy gone stale by the PUT gets a 409 and is read again. */
static void test_prefetch_list(void **state)
{
    (void)state;
    char yaml[8192];
    int n = snprintf(yaml, sizeof(yaml), "%s", ROUTES_YAML);
    for (int i = 0; i < 9; i++)
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n,
                      "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: q%d, "
                      "namespace: apps, generation: 1}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: "
                      "[{name: a, port: 80}]\n", i);
    fx_t x;
    setup(&x, yaml);
    for (int i = 0; i < 9; i++) {
        char path[256], json[512];
        snprintf(path, sizeof(path), "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes/q%d", i);
        snprintf(json, sizeof(json), "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
                 "\"metadata\":{\"name\":\"q%d\",\"namespace\":\"apps\",\"resourceVersion\":\"1\",\"generation\":1},"
                 "\"spec\":{}}", i);
        fadd(&x.f, path, json);
    }
    x.f.list_page = 4;
    x.f.race_puts = 1;          /* the first route PUT meets another writer's newer version */
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(cnt(&x, SG_KSW_WRITTEN), 11);     /* 10 routes and the Gateway */
    assert_int_equal(x.f.lists, 3);                     /* 10 routes in pages of 4 */
    assert_int_equal(x.f.gets, 1 + 1);                  /* the Gateway (alone in its collection), the raced route */
    assert_int_equal(cnt(&x, SG_KSW_CONFLICT), 1);
    for (int i = 0; i < 9; i++) {
        char path[256];
        snprintf(path, sizeof(path), "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes/q%d", i);
        const char *j = fobj(&x.f, path)->json;
        assert_non_null(strstr(j, CTL));
        assert_non_null(strstr(j, "\"kind\":\"HTTPRoute\""));   /* added back to the listed copy */
    }
    assert_non_null(strstr(fobj(&x.f, RPATH)->json, "example.com/other"));
    /* nothing changed: no request; after a forget, one LIST again and no write */
    int lists = x.f.lists, gets = x.f.gets, puts = x.f.puts;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.lists + x.f.gets + x.f.puts, lists + gets + puts);
    sg_kswrite_forget(&x.w);
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.lists, lists + 3);
    assert_int_equal(x.f.gets, gets + 1);
    assert_int_equal(x.f.puts, puts);
    teardown(&x);
}

/* Another controller writes the route between our GET and PUT: 409, read again, and the result has both entries. */
static void test_conflict_keeps_theirs(void **state)
{
    (void)state;
    fx_t x;
    setup(&x, ROUTES_YAML);
    x.f.race_puts = 2;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(cnt(&x, SG_KSW_CONFLICT), 2);
    const char *r = fobj(&x.f, RPATH)->json;
    assert_non_null(strstr(r, "example.com/other"));
    assert_non_null(strstr(r, "example.com/mesh"));
    assert_non_null(strstr(r, CTL));
    assert_int_equal(x.f.sleeps, 0);          /* a conflict re-reads at once */
    teardown(&x);
}

/* 500s are retried with backoff; after the attempts, an error that the next sync tries again. */
static void test_retry_and_give_up(void **state)
{
    (void)state;
    fx_t x;
    setup(&x, ROUTES_YAML);
    x.f.fail_puts = 2;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.sleeps, 2);
    assert_int_equal(cnt(&x, SG_KSW_WRITTEN), 2);
    teardown(&x);

    setup(&x, ROUTES_YAML);
    x.f.fail_puts = 100;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 2);
    assert_int_equal(cnt(&x, SG_KSW_ERROR), 2);
    assert_int_equal(x.f.puts, 2 * 5);
    x.f.fail_puts = 0;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(cnt(&x, SG_KSW_WRITTEN), 2);
    teardown(&x);
}

/* A 429 with Retry-After waits as long as the server says (longer than the backoff would), then writes. */
static void test_retry_after(void **state)
{
    (void)state;
    fx_t x;
    setup(&x, ROUTES_YAML);
    x.f.throttle = 2;
    x.f.retry_after_s = 3;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.sleeps, 2);
    assert_int_equal(x.f.slept_ms, 2 * 3000);
    assert_int_equal(cnt(&x, SG_KSW_WRITTEN), 2);
    teardown(&x);

    /* a Retry-After shorter than the backoff does not shorten it */
    setup(&x, ROUTES_YAML);
    x.w.backoff_ms = 1500;
    x.f.throttle = 1;
    x.f.retry_after_s = 1;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.slept_ms, 1500);
    teardown(&x);
}

/* A write refused before it is sent (the replica stopped leading) is not retried: no waiting, one try each. */
static void test_refused_not_retried(void **state)
{
    (void)state;
    fx_t x;
    setup(&x, ROUTES_YAML);
    x.f.refuse_puts = true;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 2);
    assert_int_equal(x.f.puts, 2);
    assert_int_equal(x.f.sleeps, 0);
    assert_null(strstr(fobj(&x.f, RPATH)->json, CTL));
    teardown(&x);
}

/* A route the build no longer has: our entry is removed, the other controller's stays; a deleted object is "gone". */
/* Routes numbered i, of those with i % keep_mod == 0 (keep_mod 1: all), as the loader sees them. */
static void many_routes(fx_t *x, int n, int keep_mod)
{
    size_t cap = 512 + (size_t)n * 256;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    int k = snprintf(yaml, cap, "%s", ROUTES_YAML);
    for (int i = 0; i < n; i++)
        if (i % keep_mod == 0)
            k += snprintf(yaml + k, cap - (size_t)k,
                          "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: m%d, "
                          "namespace: apps, generation: 1}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - "
                          "backendRefs: [{name: a, port: 80}]\n", i);
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sg_config_load_lenient("kube", yaml, strlen(yaml), SG_CONFIG_NO_DNS, devnull, &x->d, &x->cfg), 0);
    fclose(devnull);
    free(yaml);
}

/* The cache of what is in place holds more objects than its first index has room for, and loses some from its middle:
 * every lookup still finds its object (nothing is read or written again), and no forgotten one is. */
static void test_cache_grows_and_shrinks(void **state)
{
    (void)state;
    enum { N = 150 };
    fx_t x;
    setup(&x, ROUTES_YAML);
    sg_config_unref(x.cfg);
    sg_config_diag_free(&x.d);
    many_routes(&x, N, 1);
    for (int i = 0; i < N; i++) {
        char path[256], json[512];
        snprintf(path, sizeof(path), "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes/m%d", i);
        snprintf(json, sizeof(json), "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
                 "\"metadata\":{\"name\":\"m%d\",\"namespace\":\"apps\",\"resourceVersion\":\"1\",\"generation\":1},"
                 "\"spec\":{}}", i);
        fadd(&x.f, path, json);
    }
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(cnt(&x, SG_KSW_WRITTEN), N + 2);  /* the routes, r and the Gateway */
    int req = x.f.gets + x.f.puts + x.f.lists;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.gets + x.f.puts + x.f.lists, req); /* all found in place */
    /* two routes in three go: our entries are taken out of each, once */
    sg_config_unref(x.cfg);
    sg_config_diag_free(&x.d);
    many_routes(&x, N, 3);
    int puts = x.f.puts;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.puts - puts, N - N / 3 + 1); /* the 100 gone, and the Gateway's attachedRoutes */
    for (int i = 0; i < N; i++) {
        char path[256];
        snprintf(path, sizeof(path), "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes/m%d", i);
        assert_true((strstr(fobj(&x.f, path)->json, CTL) != NULL) == (i % 3 == 0));
    }
    req = x.f.gets + x.f.puts + x.f.lists;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(x.f.gets + x.f.puts + x.f.lists, req); /* the rest still found, the gone ones not cleaned again */
    teardown(&x);
}

static void test_cleanup(void **state)
{
    (void)state;
    fx_t x;
    setup(&x, ROUTES_YAML);
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_non_null(strstr(fobj(&x.f, RPATH)->json, CTL));
    sg_config_unref(x.cfg);
    sg_config_diag_free(&x.d);
    const char *y = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: apps}\n"
                    "spec:\n  gatewayClassName: ssegate\n  listeners:\n  - {name: http, protocol: HTTP, port: 8080}\n";
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sg_config_load_lenient("kube", y, strlen(y), SG_CONFIG_NO_DNS, devnull, &x.d, &x.cfg), 0);
    fclose(devnull);
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    const char *r = fobj(&x.f, RPATH)->json;
    assert_null(strstr(r, CTL));
    assert_non_null(strstr(r, "example.com/other"));
    assert_non_null(strstr(fobj(&x.f, GPATH)->json, "\"attachedRoutes\":0"));
    int puts = x.f.puts;
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0); /* forgotten: no further cleanup */
    assert_int_equal(x.f.puts, puts);
    /* the Gateway is deleted: gone, not an error */
    x.f.objs[1].path[0] = '\0';
    sg_kswrite_forget(&x.w);
    assert_int_equal(sg_kswrite_sync(&x.w, &x.d, &x.env), 0);
    assert_int_equal(cnt(&x, SG_KSW_GONE), 1);
    teardown(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_sync_and_skip),
        cmocka_unit_test(test_conflict_keeps_theirs),
        cmocka_unit_test(test_retry_and_give_up),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_prefetch_list),
        cmocka_unit_test(test_cleanup),
        cmocka_unit_test(test_cache_grows_and_shrinks),
        cmocka_unit_test(test_refused_not_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
