/* fuzz_kpatch.c: differential harness for the kube build's patches (config/patch.h). The input is a series of
 * records, one per line: the first byte picks one of three EndpointSlices, the Service it belongs to and its ports;
 * the rest is its "endpoints" value. Each record replaces that slice in a store with routes weighing the two Services
 * against each other, and whenever the build is made as a patch, it must route exactly as the full load of the
 * store's --dump-config text: the same endpoints in the same order behind every backendRef, the same weights. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/diag.h"
#include "kube/kbuild.h"
#include "kube/kjson.h"
#include "kube/kstore.h"

#define CTL "ssegate.io/gateway-controller"

static int put(sg_kstore_t *s, int kind, const char *json, size_t len)
{
    sg_kjson_t d;
    if (sg_kjson_parse(&d, json, len) != 0)
        return -1;
    int rc = sg_kstore_put(s, kind, &d, 1);
    sg_kjson_free(&d);
    return rc;
}

static void put0(sg_kstore_t *s, int kind, const char *json)
{
    if (put(s, kind, json, strlen(json)) < 0)
        abort();
}

static sg_config_t *full_load(sg_kstore_t *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return NULL;
    ssize_t n = sg_kbuild_write(s, CTL, f);
    fclose(f);
    sg_config_t *cfg = NULL;
    sg_config_diag_t d;
    memset(&d, 0, sizeof(d));
    if (n > 0 && sg_config_load_lenient("kube", text, len, SG_CONFIG_NO_DNS, NULL, &d, &cfg) != 0)
        cfg = NULL;
    sg_config_diag_free(&d);
    free(text);
    return cfg;
}

static void same(const sg_config_t *a, const sg_config_t *b)
{
    if (a == NULL || b == NULL || a->nroutes != b->nroutes || a->nlisteners != b->nlisteners)
        abort();
    for (size_t i = 0; i < a->nroutes; i++) {
        const sg_route_t *x = &a->routes[i], *y = &b->routes[i];
        if (strcmp(x->name, y->name) != 0 || x->nrules != y->nrules)
            abort();
        for (size_t j = 0; j < x->nrules; j++) {
            const sg_rule_t *p = &x->rules[j], *q = &y->rules[j];
            if (p->total_weight != q->total_weight || p->nbackends != q->nbackends || q->route != y)
                abort();
            for (size_t k = 0; k < p->nbackends; k++) {
                const sg_backend_t *u = &p->backends[k], *v = &q->backends[k];
                if (u->nendpoints != v->nendpoints || u->weight != v->weight)
                    abort();
                for (size_t e = 0; e < u->nendpoints; e++)
                    if (strcmp(u->endpoints[e].label, v->endpoints[e].label) != 0)
                        abort();
            }
        }
    }
}

static sg_kstore_t *store(void)
{
    sg_kstore_t *s = sg_kstore_new();
    if (s == NULL)
        abort();
    put0(s, SG_KK_GATEWAYCLASS, "{\"metadata\":{\"name\":\"ours\"},\"spec\":{\"controllerName\":\"" CTL "\"}}");
    put0(s, SG_KK_GATEWAY, "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"ns\"},\"spec\":{\"gatewayClassName\":\"ours\","
                           "\"listeners\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"HTTP\"}]}}");
    put0(s, SG_KK_SERVICE, "{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\"},\"spec\":{\"ports\":[{\"name\":\"http\","
                           "\"port\":80}]}}");
    put0(s, SG_KK_SERVICE, "{\"metadata\":{\"name\":\"b\",\"namespace\":\"ns\"},\"spec\":{\"ports\":[{\"port\":80}]}}");
    put0(s, SG_KK_HTTPROUTE, "{\"metadata\":{\"name\":\"r1\",\"namespace\":\"ns\"},\"spec\":{\"parentRefs\":[{\"name\":"
                             "\"gw\"}],\"rules\":[{\"backendRefs\":[{\"name\":\"a\",\"port\":80,\"weight\":1},{\"name\":"
                             "\"b\",\"port\":80,\"weight\":2}]}]}}");
    put0(s, SG_KK_HTTPROUTE, "{\"metadata\":{\"name\":\"r2\",\"namespace\":\"ns\"},\"spec\":{\"parentRefs\":[{\"name\":"
                             "\"gw\"}],\"rules\":[{\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/b\"}}],"
                             "\"backendRefs\":[{\"name\":\"b\",\"port\":80}]}]}}");
    static const char *const init[] = {"s0", "a", "s1", "a", "s2", "b"};
    for (size_t i = 0; i < 3; i++) {
        char j[512];
        snprintf(j, sizeof(j), "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"labels\":{\"kubernetes.io/service-"
                 "name\":\"%s\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.0.0.%zu\"]}],\"ports\":"
                 "[{\"name\":\"http\",\"port\":8080}]}", init[2 * i], init[2 * i + 1], i + 1);
        put0(s, SG_KK_ENDPOINTSLICE, j);
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ports[] = {"[{\"name\":\"http\",\"port\":8080}]", "[{\"port\":8080}]",
                                        "[{\"name\":\"x\",\"port\":9},{\"name\":\"http\",\"port\":8081}]"};
    sg_kstore_t *s = store();
    sg_kbuild_t *b = sg_kbuild_new();
    if (b == NULL)
        abort();
    sg_config_t *cfg = NULL;
    sg_config_diag_t d;
    if (sg_kbuild_load(b, s, CTL, NULL, &d, &cfg) != 1)
        abort();
    sg_config_diag_free(&d);
    sg_config_unref(cfg);
    size_t records = 0;
    for (size_t off = 0; off < size && records < 32; records++) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
        if (len >= 2 && len < 8192) {
            unsigned sel = data[off];
            char *j = malloc(len + 512);
            if (j == NULL)
                abort();
            int n = snprintf(j, 512, "{\"metadata\":{\"name\":\"s%u\",\"namespace\":\"ns\",\"labels\":{\"kubernetes.io/"
                             "service-name\":\"%s\"}},\"addressType\":\"IPv4\",\"ports\":%s,\"endpoints\":",
                             sel % 3, (sel / 3) % 4 == 3 ? "b" : "a", ports[(sel / 12) % 3]);
            memcpy(j + n, data + off + 1, len - 1);
            j[n + len - 1] = '}';
            if (put(s, SG_KK_ENDPOINTSLICE, j, (size_t)n + len) >= 0) {
                cfg = NULL;
                int rc = sg_kbuild_load(b, s, CTL, NULL, &d, &cfg);
                sg_config_diag_free(&d);
                if (rc == 2) {
                    sg_config_t *full = full_load(s);
                    same(full, cfg);
                    sg_config_unref(full);
                }
                sg_config_unref(cfg);
            }
            free(j);
        }
        off += len + 1;
    }
    sg_kbuild_free(b);
    sg_kstore_free(s);
    return 0;
}
