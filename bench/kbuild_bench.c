/* kbuild_bench.c: the kube build alone, in one process, without an API server: a store filled as bench/kube-bench.mjs
 * fills the simulator (ROUTES HTTPRoutes over as many Services, ENDPOINTS ready endpoints in slices of at most 100),
 * then REPEAT builds, each after changing one object (CHANGE: "route" adds a route, "slice" flips a slice's endpoint).
 * Prints the CPU time per build, the heap the store's parsed documents take and the RSS. SHAPE "cluster" gives the
 * Services and slices what an API server sends (clusterIP(s), selector, labels copied to the slices, nodeName,
 * targetRef, zone, serving/terminating), "plain" (the default) only what the loader reads, as the simulator does.
 * For profiles: valgrind --tool=callgrind build/bench/kbuild_bench 1000 5000 3.
 * Usage: kbuild_bench [ROUTES [ENDPOINTS [REPEAT [route|slice [plain|cluster]]]]] */
#include <libfyaml.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "config/diag.h"
#include "kube/kbuild.h"
#include "kube/kstore.h"
#include "kube/kwatch.h"

static void put(sg_kstore_t *s, int kind, const char *json)
{
    sg_kjson_t d;
    if (sg_kjson_parse(&d, json, strlen(json)) != 0 || sg_kstore_put(s, kind, &d, 1) < 0) {
        fprintf(stderr, "kbuild_bench: cannot store %s\n", json);
        exit(1);
    }
    sg_kjson_free(&d);
}

static bool cluster_shape;

static void route(sg_kstore_t *s, const char *name, const char *path, const char *svc)
{
    char j[1024];
    snprintf(j, sizeof(j), "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":"
             "\"%s\",\"namespace\":\"default\"},\"spec\":{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[{\"matches\":[{"
             "\"path\":{\"type\":\"PathPrefix\",\"value\":\"%s\"}}],\"backendRefs\":[{\"name\":\"%s\",\"port\":80}]}]}}",
             name, path, svc);
    put(s, SG_KK_HTTPROUTE, j);
}

static void slice(sg_kstore_t *s, const char *name, const char *svc, unsigned first, unsigned n, unsigned flip)
{
    size_t cap = 512 + (size_t)n * 320, len = 0;
    char *j = malloc(cap);
    len += (size_t)snprintf(j + len, cap - len, "{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
                            "\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\",\"labels\":{%s\"kubernetes.io/"
                            "service-name\":\"%s\"}},\"addressType\":\"IPv4\",\"endpoints\":[", name,
                            cluster_shape ? "\"app.kubernetes.io/name\":\"web\",\"app.kubernetes.io/instance\":\"web-1\","
                                            "\"helm.sh/chart\":\"web-1.2.3\",\"endpointslice.kubernetes.io/managed-by\":"
                                            "\"endpointslice-controller.k8s.io\"," : "", svc);
    for (unsigned i = 0; i < n; i++) {
        unsigned a = first + i;
        const char *ready = i == flip ? "false" : "true";
        if (cluster_shape)
            len += (size_t)snprintf(j + len, cap - len, "%s{\"addresses\":[\"10.%u.%u.%u\"],\"conditions\":{\"ready\":%s,"
                                    "\"serving\":%s,\"terminating\":false},\"nodeName\":\"node-%u\",\"targetRef\":{"
                                    "\"kind\":\"Pod\",\"name\":\"%s-7d4b9c-%u\",\"namespace\":\"default\",\"uid\":"
                                    "\"0b8e5f2a-%08x-4c1d-9a7e-5f3c2b1a0d9e\"},\"zone\":\"zone-%u\"}",
                                    i ? "," : "", (a >> 16) & 255, (a >> 8) & 255, a & 255, ready, ready, a % 50, svc, a, a,
                                    a % 3);
        else
            len += (size_t)snprintf(j + len, cap - len, "%s{\"addresses\":[\"10.%u.%u.%u\"],\"conditions\":{\"ready\":%s}}",
                                    i ? "," : "", (a >> 16) & 255, (a >> 8) & 255, a & 255, ready);
    }
    snprintf(j + len, cap - len, "],\"ports\":[{\"name\":\"http\",\"port\":8080}]}");
    put(s, SG_KK_ENDPOINTSLICE, j);
    free(j);
}

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    unsigned nroutes = argc > 1 ? (unsigned)atoi(argv[1]) : 1000, neps = argc > 2 ? (unsigned)atoi(argv[2]) : 5000;
    int repeat = argc > 3 ? atoi(argv[3]) : 5;
    bool by_slice = argc > 4 && strcmp(argv[4], "slice") == 0;
    cluster_shape = argc > 5 && strcmp(argv[5], "cluster") == 0;
    sg_kstore_t *s = sg_kstore_new();
    put(s, SG_KK_GATEWAYCLASS, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\",\"metadata\":"
        "{\"name\":\"ssegate\"},\"spec\":{\"controllerName\":\"ssegate.io/gateway-controller\"}}");
    put(s, SG_KK_GATEWAY, "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\",\"metadata\":{\"name\":"
        "\"gw\",\"namespace\":\"default\"},\"spec\":{\"gatewayClassName\":\"ssegate\",\"listeners\":[{\"name\":\"http\","
        "\"port\":8080,\"protocol\":\"HTTP\"}]}}");
    unsigned per = nroutes ? (neps / nroutes ? neps / nroutes : 1) : 0, n = 0;
    char name[64], path[64], svc[64], js[1024];
    for (unsigned i = 0; i < nroutes; i++) {
        snprintf(name, sizeof(name), "r%u", i);
        snprintf(path, sizeof(path), "/r%u/", i);
        snprintf(svc, sizeof(svc), "s%u", i);
        route(s, name, path, svc);
        if (cluster_shape)
            snprintf(js, sizeof(js), "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
                     "\"default\",\"labels\":{\"app.kubernetes.io/name\":\"web\",\"app.kubernetes.io/instance\":\"web-1\","
                     "\"helm.sh/chart\":\"web-1.2.3\"}},\"spec\":{\"clusterIP\":\"10.96.%u.%u\",\"clusterIPs\":["
                     "\"10.96.%u.%u\"],\"internalTrafficPolicy\":\"Cluster\",\"ipFamilies\":[\"IPv4\"],"
                     "\"ipFamilyPolicy\":\"SingleStack\",\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\","
                     "\"targetPort\":8080}],\"selector\":{\"app.kubernetes.io/name\":\"web\"},\"sessionAffinity\":"
                     "\"None\",\"type\":\"ClusterIP\"}}", svc, i >> 8 & 255, i & 255, i >> 8 & 255, i & 255);
        else
            snprintf(js, sizeof(js), "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
                     "\"default\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80}]}}", svc);
        put(s, SG_KK_SERVICE, js);
        unsigned cnt = i == nroutes - 1 ? neps - n : (per < neps - n ? per : neps - n);
        for (unsigned k = 0; k < cnt; k += 100) {
            snprintf(name, sizeof(name), "s%u-%u", i, k / 100);
            slice(s, name, svc, n + k + 1, cnt - k < 100 ? cnt - k : 100, ~0u);
        }
        n += cnt;
    }
    sg_kbuild_t *b = sg_kbuild_new();
    double total = 0;
    size_t heap0 = mallinfo2().uordblks;
    for (int r = 0; r < repeat; r++) {
        if (by_slice) {
            slice(s, "s0-0", "s0", 1, per < 100 ? per : 100, (unsigned)r % (per ? per : 1));
        } else {
            snprintf(name, sizeof(name), "probe%d", r);
            snprintf(path, sizeof(path), "/probe%d", r);
            route(s, name, path, "s0");
        }
        double c0 = cpu_ms();
        sg_config_t *cfg = NULL;
        sg_config_diag_t diag;
        int rc = sg_kbuild_load(b, s, "ssegate.io/gateway-controller", getenv("KB_ERRS") ? stderr : NULL, &diag, &cfg);
        double ms = cpu_ms() - c0;
        total += ms;
        printf("build %d: rc %d, %zu routes, %.1f ms CPU\n", r, rc, cfg ? cfg->nroutes : 0, ms);
        sg_config_diag_free(&diag);
        sg_config_unref(cfg);
        if (r == 0)
            printf("heap in use: %zu KiB more after the first build (the parsed documents the store keeps)\n",
                   (mallinfo2().uordblks - heap0) / 1024);
    }
    printf("store %zu KiB; mean %.1f ms CPU per build\n", sg_kstore_bytes(s) / 1024, repeat ? total / repeat : 0);
    printf("after the builds: heap %zu KiB in use (%zu KiB more than before the first), RSS %ld KiB\n",
           mallinfo2().uordblks / 1024, (mallinfo2().uordblks - heap0) / 1024, rss_kib(getpid()));
    sg_kbuild_free(b);
    sg_kstore_free(s);
    return 0;
}
