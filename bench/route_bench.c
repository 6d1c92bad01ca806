/* route_bench.c: sg_route_match cost over 1,000 routes, and proof that a match allocates nothing. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "config/route.h"

/*
 * Allocation counting: this executable defines malloc & co., which ELF symbol interposition makes every
 * caller use (our objects, libfyaml, PCRE2, libc itself); they forward to glibc's __libc_* entry points.
 * Under AddressSanitizer the sanitizer owns the allocator, so the count is not available there.
 */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_ALLOCS 0
#else
#define COUNT_ALLOCS 1
static atomic_ulong n_allocs;
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

#define NROUTES 1000

static char *build_yaml(size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (f == NULL)
        return NULL;
    fprintf(f, "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n"
               "  listeners:\n  - {name: http, protocol: HTTP, port: 80}\n");
    for (int i = 0; i < NROUTES; i++) {
        fprintf(f, "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r%d}\nspec:\n"
                   "  parentRefs: [{name: gw}]\n", i);
        if (i % 4 == 0)
            fprintf(f, "  hostnames: [h%d.example.com, '*.w%d.example.com']\n", i, i);
        fprintf(f, "  rules:\n"
                   "  - matches: [{path: {type: Exact, value: /svc%d/exact}}]\n"
                   "    backendRefs: [{name: 127.0.0.1, port: 8080}]\n"
                   "  - matches: [{path: {type: PathPrefix, value: /svc%d/api}}]\n"
                   "    backendRefs: [{name: 127.0.0.1, port: 8081}]\n"
                   "  - matches: [{path: {type: PathPrefix, value: /svc%d}, headers: [{name: X-Tenant, value: t%d}]}]\n"
                   "    backendRefs: [{name: 127.0.0.1, port: 8082}]\n"
                   "  - matches: [{path: {type: PathPrefix, value: /svc%d/q}, queryParams: [{name: v, value: '%d'}],"
                   " method: GET}]\n"
                   "    backendRefs: [{name: 127.0.0.1, port: 8083}]\n",
                i, i, i, i, i, i);
        if (i % 100 == 0)
            fprintf(f, "  - matches: [{path: {type: RegularExpression, value: '/re%d/[0-9]+/items'}}]\n"
                       "    backendRefs: [{name: 127.0.0.1, port: 8084}]\n", i);
    }
    fprintf(f, "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: fallback}\n"
               "spec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: [{name: 127.0.0.1, port: 9000}]\n");
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

typedef struct breq {
    const char *method, *host, *path, *query, *hname, *hval;
    int expect_rule; /* -1: 404 */
} breq_t;

int main(void)
{
    size_t len = 0;
    char *yaml = build_yaml(&len);
    if (yaml == NULL) {
        fprintf(stderr, "route_bench: out of memory\n");
        return 1;
    }
    sg_config_t *cfg = NULL;
    struct timespec t0, t1;
#if COUNT_ALLOCS
    unsigned long load_allocs = atomic_load(&n_allocs);
#endif
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = sg_config_load_ex("bench.yaml", yaml, len, SG_CONFIG_NO_DNS, stderr, &cfg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(yaml);
#if COUNT_ALLOCS
    /* the counter must see the loader's allocations, or a zero below would prove nothing */
    if (atomic_load(&n_allocs) == load_allocs) {
        fprintf(stderr, "route_bench: malloc interposition is not working\n");
        return 1;
    }
#endif
    if (rc != 0) {
        fprintf(stderr, "route_bench: load failed: %d\n", rc);
        return 1;
    }
    double load_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    static const breq_t reqs[] = {
        {"GET", "x.test", "/svc517/exact", "", NULL, NULL, 0},
        {"GET", "x.test", "/svc999/api/v1/users/42/orders", "", NULL, NULL, 1},
        {"POST", "x.test", "/svc333/other/thing", "", "x-tenant", "t333", 2},
        {"GET", "x.test:80", "/svc42/q/search", "a=1&v=42&b=2", NULL, NULL, 3},
        {"GET", "h400.example.com", "/svc400/api/x", "", NULL, NULL, 1},
        {"GET", "a.b.w800.example.com", "/re800/12345/items", "", NULL, NULL, 4},
        {"GET", "x.test", "/nothing/here/at/all", "", NULL, NULL, 0},   /* the fallback route, rule 0 */
        {"PUT", "x.test", "/svc42/q/search", "v=41", NULL, NULL, 0},     /* method, header, query all miss */
    };
    void *scratch = sg_route_scratch_new();
    if (scratch == NULL)
        return 1;
    sg_h1_header_t hdr[4];
    sg_route_req_t rq[SG_ARRAY_LEN(reqs)];
    for (size_t i = 0; i < SG_ARRAY_LEN(reqs); i++) {
        memset(&rq[i], 0, sizeof(rq[i]));
        rq[i].method = sg_str_c(reqs[i].method);
        rq[i].host = sg_str_c(reqs[i].host);
        rq[i].path = sg_str_c(reqs[i].path);
        rq[i].query = sg_str_c(reqs[i].query);
        rq[i].scratch = scratch;
        hdr[0] = (sg_h1_header_t){SG_STR("user-agent"), SG_STR("bench")};
        hdr[1] = (sg_h1_header_t){SG_STR("accept"), SG_STR("text/event-stream")};
        rq[i].headers = hdr;
        rq[i].nheaders = 2;
    }
    static sg_h1_header_t tenant[3];
    tenant[0] = hdr[0];
    tenant[1] = hdr[1];
    tenant[2] = (sg_h1_header_t){SG_STR("X-Tenant"), SG_STR("t333")};
    rq[2].headers = tenant;
    rq[2].nheaders = 3;
    /* correctness first: the bench must measure real matches */
    int bad = 0;
    for (size_t i = 0; i < SG_ARRAY_LEN(reqs); i++) {
        sg_route_match_t m;
        rc = sg_route_match(cfg, 80, &rq[i], &m);
        int got = rc == 0 ? (int)m.rule->index : -1;
        if (got != reqs[i].expect_rule) {
            fprintf(stderr, "route_bench: request %zu (%s) matched rule %d, expected %d\n", i, reqs[i].path, got,
                    reqs[i].expect_rule);
            bad = 1;
        }
    }
    const size_t iters = 2000000;
    size_t hits = 0;
#if COUNT_ALLOCS
    unsigned long a0 = atomic_load(&n_allocs);
#endif
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t k = 0; k < iters; k++) {
        sg_route_match_t m;
        hits += sg_route_match(cfg, 80, &rq[k % SG_ARRAY_LEN(rq)], &m) == 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
#if COUNT_ALLOCS
    unsigned long allocs = atomic_load(&n_allocs) - a0;
#endif
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)iters;
#if COUNT_ALLOCS
    printf("route_bench: %d routes (load %.0f ms): %.1f ns/match over %zu matches (%zu hits), %lu allocations "
           "while matching%s\n", NROUTES + 1, load_ms, ns, iters, hits, allocs,
           ns < 1000.0 ? "" : " [over the 1 us target]");
    if (allocs != 0)
        bad = 1;
#else
    printf("route_bench: %d routes (load %.0f ms): %.1f ns/match over %zu matches (%zu hits); allocation count "
           "unavailable under ASan\n", NROUTES + 1, load_ms, ns, iters, hits);
#endif
    sg_route_scratch_free(scratch);
    sg_config_unref(cfg);
    return bad;
}
