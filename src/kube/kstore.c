/* kstore.c: the kube thread's object store: stripping, hashing, kind/namespace/name lookup, and relist sweeps. */
#include "kube/kstore.h"

#include <libfyaml.h>
#include <stdlib.h>

#include "kube/kwatch.h"

#define GW "gateway.networking.k8s.io"
#define AGC "alb.networking.azure.io"

const sg_kkind_t sg_kkinds[SG_KK_N] = {
    [SG_KK_GATEWAYCLASS] = {"GatewayClass", GW, "v1", "gatewayclasses", false},
    [SG_KK_GATEWAY] = {"Gateway", GW, "v1", "gateways", true},
    [SG_KK_HTTPROUTE] = {"HTTPRoute", GW, "v1", "httproutes", true},
    [SG_KK_REFERENCEGRANT] = {"ReferenceGrant", GW, "v1beta1", "referencegrants", true},
    [SG_KK_NAMESPACE] = {"Namespace", "", "v1", "namespaces", false},
    [SG_KK_SERVICE] = {"Service", "", "v1", "services", true},
    [SG_KK_ENDPOINTSLICE] = {"EndpointSlice", "discovery.k8s.io", "v1", "endpointslices", true},
    [SG_KK_SECRET] = {"Secret", "", "v1", "secrets", true},
    [SG_KK_CONFIGMAP] = {"ConfigMap", "", "v1", "configmaps", true},
    [SG_KK_ROUTEPOLICY] = {"RoutePolicy", AGC, "v1", "routepolicies", true, true},
    [SG_KK_HEALTHCHECKPOLICY] = {"HealthCheckPolicy", AGC, "v1", "healthcheckpolicies", true, true},
    [SG_KK_BLBPOLICY] = {"BackendLoadBalancingPolicy", AGC, "v1", "backendloadbalancingpolicies", true, true},
    [SG_KK_BACKENDTLSPOLICY] = {"BackendTLSPolicy", GW, "v1", "backendtlspolicies", true, true},
    [SG_KK_AGC_BACKENDTLSPOLICY] = {"BackendTLSPolicy", AGC, "v1", "backendtlspolicies", true, true},
    [SG_KK_FRONTENDTLSPOLICY] = {"FrontendTLSPolicy", AGC, "v1", "frontendtlspolicies", true, true},
    [SG_KK_SSEPOLICY] = {"SSEPolicy", "ssegate.io", "v1alpha1", "ssepolicies", true, true},
    [SG_KK_GRPCROUTE] = {"GRPCRoute", GW, "v1", "grpcroutes", true, true},
};

struct sg_kstore {
    sg_kobj_t **tab;
    size_t nbuckets;
    size_t count;
    size_t bytes;
    size_t per_kind[SG_KK_N];
    uint32_t epoch[SG_KK_N];
};

uint64_t sg_kstore_hash(const char *p, size_t n, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t key_hash(int kind, const char *ns, const char *name)
{
    uint64_t h = sg_kstore_hash((const char *)&kind, sizeof(kind), 0);
    h = sg_kstore_hash(ns, strlen(ns) + 1, h);
    return sg_kstore_hash(name, strlen(name), h);
}

sg_kstore_t *sg_kstore_new(void)
{
    sg_kstore_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->nbuckets = 1024;
    s->tab = calloc(s->nbuckets, sizeof(*s->tab));
    if (s->tab == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

static size_t obj_bytes(const sg_kobj_t *o)
{
    return sizeof(*o) + strlen(o->ns) + strlen(o->name) + 2 + o->len + 1 + (o->aux ? strlen(o->aux) + 1 : 0) +
           (o->refs ? strlen(o->refs) + 1 : 0);
}

static void obj_free(sg_kobj_t *o)
{
    if (o->doc != NULL)
        fy_document_destroy(o->doc);
    free(o->aux);
    free(o->refs);
    free(o->ns);
    free(o->name);
    free(o->json);
    free(o);
}

void sg_kstore_free(sg_kstore_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (sg_kobj_t *o = s->tab[i], *nx; o; o = nx) {
            nx = o->next;
            obj_free(o);
        }
    free(s->tab);
    free(s);
}

static sg_kobj_t **find(const sg_kstore_t *s, int kind, const char *ns, const char *name)
{
    sg_kobj_t **pp = &s->tab[key_hash(kind, ns, name) & (s->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->kind == kind && strcmp((*pp)->ns, ns) == 0 && strcmp((*pp)->name, name) == 0)
            return pp;
    return pp;
}

static void grow(sg_kstore_t *s)
{
    size_t nb = s->nbuckets * 2;
    sg_kobj_t **tab = calloc(nb, sizeof(*tab));
    if (tab == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++)
        for (sg_kobj_t *o = s->tab[i], *nx; o; o = nx) {
            nx = o->next;
            size_t b = key_hash(o->kind, o->ns, o->name) & (nb - 1);
            o->next = tab[b];
            tab[b] = o;
        }
    free(s->tab);
    s->tab = tab;
    s->nbuckets = nb;
}

const sg_kobj_t *sg_kstore_get(const sg_kstore_t *s, int kind, const char *ns, const char *name)
{
    return *find(s, kind, ns ? ns : "", name);
}

size_t sg_kstore_count(const sg_kstore_t *s, int kind)
{
    return s->per_kind[kind];
}

size_t sg_kstore_bytes(const sg_kstore_t *s)
{
    return s->bytes + s->nbuckets * sizeof(*s->tab) + sizeof(*s);
}

static void unlink_obj(sg_kstore_t *s, sg_kobj_t **pp)
{
    sg_kobj_t *o = *pp;
    *pp = o->next;
    s->count--;
    s->per_kind[o->kind]--;
    s->bytes -= obj_bytes(o);
    obj_free(o);
}

int sg_kstore_delete(sg_kstore_t *s, int kind, const char *ns, const char *name)
{
    sg_kobj_t **pp = find(s, kind, ns ? ns : "", name);
    if (*pp == NULL)
        return 0;
    unlink_obj(s, pp);
    return 1;
}

void sg_kstore_relist_begin(sg_kstore_t *s, int kind)
{
    s->epoch[kind]++;
}

size_t sg_kstore_relist_end(sg_kstore_t *s, int kind)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nbuckets; i++) {
        sg_kobj_t **pp = &s->tab[i];
        while (*pp) {
            if ((*pp)->kind == kind && (*pp)->mark != s->epoch[kind]) {
                unlink_obj(s, pp);
                n++;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    return n;
}

/* ---- stripping ---- */

static const char *sval(struct fy_node *map, const char *key)
{
    struct fy_node *v = map && fy_node_get_type(map) == FYNT_MAPPING ? fy_node_mapping_lookup_by_string(map, key, FY_NT)
                                                                     : NULL;
    return v && fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
}

static struct fy_node *mval(struct fy_node *map, const char *key)
{
    struct fy_node *v = map && fy_node_get_type(map) == FYNT_MAPPING ? fy_node_mapping_lookup_by_string(map, key, FY_NT)
                                                                     : NULL;
    return v && fy_node_get_type(v) == FYNT_MAPPING ? v : NULL;
}

/* Removes every key of map not in keep (a NULL-terminated list). */
static void keep_only(struct fy_node *map, const char *const *keep)
{
    if (map == NULL || fy_node_get_type(map) != FYNT_MAPPING)
        return;
    void *it = NULL;
    struct fy_node_pair *p;
    struct fy_node *drop[64];
    size_t n;
    do {
        n = 0;
        it = NULL;
        while (n < SG_ARRAY_LEN(drop) && (p = fy_node_mapping_iterate(map, &it)) != NULL) {
            struct fy_node *k = fy_node_pair_key(p);
            const char *ks = k && fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
            bool keepit = false;
            for (size_t i = 0; ks && keep[i] && !keepit; i++)
                keepit = strcmp(ks, keep[i]) == 0;
            if (!keepit)
                drop[n++] = k;
        }
        for (size_t i = 0; i < n; i++)
            fy_node_free(fy_node_mapping_remove_by_key(map, drop[i]));
    } while (n == SG_ARRAY_LEN(drop));
}

static int set_str(struct fy_node *map, const char *key, const char *val)
{
    struct fy_document *d = fy_node_document(map);
    struct fy_node_pair *p = fy_node_mapping_lookup_pair_by_string(map, key, FY_NT);
    if (p != NULL)
        fy_node_free(fy_node_mapping_remove_by_key(map, fy_node_pair_key(p)));
    struct fy_node *k = fy_node_create_scalar_copy(d, key, strlen(key));
    struct fy_node *v = fy_node_create_scalar_copy(d, val, strlen(val));
    if (k == NULL || v == NULL || fy_node_mapping_prepend(map, k, v) != 0) {
        fy_node_free(k);
        fy_node_free(v);
        return -ENOMEM;
    }
    return 0;
}

/* What the loader reads of a Service is spec.ports[]{name, port, targetPort, appProtocol}, and of an EndpointSlice's
 * endpoints[] only addresses and conditions.ready (config_backend.c). Everything else is dropped before the object is
 * stored: each JSON value a kept document holds costs about 0.4-0.5 KB in libfyaml (a node, its tokens and their
 * marks), and a cluster's Services (clusterIP(s), ipFamilies, selector, sessionAffinity...) and endpoints (nodeName,
 * zone, targetRef, hints, serving, terminating) are mostly what the loader never reads. For an endpoint, ready true
 * (or absent or null: discovery/v1 says a nil ready is an unknown state consumers should take as ready, and the
 * loader does) is written as no conditions, and an endpoint with ready false, which the loader skips, is not
 * written: a slice keeps only its ready addresses. A ready of any other value is kept as it is, so the loader still
 * reports it on this slice. serving and terminating are dropped: ready is false on a terminating endpoint (unless its
 * Service publishes not-ready addresses, when Kubernetes means it to get traffic), and a nil serving defers to it. */
static const char *const svc_spec_keys[] = {"ports", NULL};
static const char *const svc_port_keys[] = {"name", "port", "targetPort", "appProtocol", NULL};
static const char *const ep_keys[] = {"addresses", "conditions", NULL};
static const char *const ep_cond_keys[] = {"ready", NULL};

static struct fy_node *seq_of(struct fy_node *map, const char *key);

static void slim_service(struct fy_node *obj)
{
    struct fy_node *spec = mval(obj, "spec");
    keep_only(spec, svc_spec_keys);
    struct fy_node *ports = seq_of(spec, "ports"), *e;
    void *it = NULL;
    while (ports && (e = fy_node_sequence_iterate(ports, &it)) != NULL)
        keep_only(e, svc_port_keys);
}

/* The endpoint's conditions.ready: 1 true (or no ready, or null), 0 false, -1 anything else (left for the loader to
 * report). null is the JSON the API server writes for a nil *bool. */
/* A YAML or JSON null, as the loader reads one (config.c nnull): a plain null, ~ or nothing. */
static bool is_null(struct fy_node *n)
{
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
        return false;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    return s == NULL || len == 0 || (len == 1 && s[0] == '~') || (len == 4 && memcmp(s, "null", 4) == 0);
}

static int ep_ready(struct fy_node *cond)
{
    if (cond == NULL)
        return 1;
    if (is_null(cond))
        return 1;
    if (fy_node_get_type(cond) != FYNT_MAPPING)
        return -1;
    struct fy_node *r = fy_node_mapping_lookup_by_string(cond, "ready", FY_NT);
    if (r == NULL || is_null(r))
        return 1;
    const char *v = fy_node_get_type(r) == FYNT_SCALAR ? fy_node_get_scalar0(r) : NULL;
    return v == NULL ? -1 : strcmp(v, "true") == 0 ? 1 : strcmp(v, "false") == 0 ? 0 : -1;
}

static void slim_slice(struct fy_node *obj)
{
    struct fy_node *eps = seq_of(obj, "endpoints"), *e;
    struct fy_node *drop[64];
    size_t n;
    do {
        void *it = NULL;
        n = 0;
        while (eps && n < SG_ARRAY_LEN(drop) && (e = fy_node_sequence_iterate(eps, &it)) != NULL) {
            if (fy_node_get_type(e) != FYNT_MAPPING)
                continue;
            keep_only(e, ep_keys);
            struct fy_node_pair *cp = fy_node_mapping_lookup_pair_by_string(e, "conditions", FY_NT);
            struct fy_node *cond = cp ? fy_node_pair_value(cp) : NULL;
            keep_only(cond, ep_cond_keys);
            int ready = cp ? ep_ready(cond) : 1;
            if (ready == 0)
                drop[n++] = e;
            else if (ready == 1 && cp != NULL)
                fy_node_free(fy_node_mapping_remove_by_key(e, fy_node_pair_key(cp)));
        }
        for (size_t i = 0; i < n; i++)
            fy_node_free(fy_node_sequence_remove(eps, drop[i]));
    } while (n == SG_ARRAY_LEN(drop));
}

/* The top-level keys the loader reads, per kind (status is never among them: it is not ours to read). */
static const char *const top_keys[] = {"apiVersion", "kind", "metadata", "spec", NULL};
static const char *const top_keys_slice[] = {"apiVersion", "kind", "metadata", "addressType", "endpoints", "ports", NULL};
static const char *const top_keys_secret[] = {"apiVersion", "kind", "metadata", "type", "data", NULL};
static const char *const top_keys_cm[] = {"apiVersion", "kind", "metadata", "data", NULL};
/* annotations are dropped: none is read in a cluster, and the Secret file-path annotations of file mode must not
 * let an object in the cluster make the gateway read its own files. */
static const char *const meta_keys[] = {"name", "namespace", "labels", "generation", "uid", NULL};
/* Labels are read of a Namespace (allowedRoutes selectors) and of an EndpointSlice (its Service's name) only; a
 * cluster copies a Service's labels onto each of its slices, and charts put a handful on every object. */
static const char *const meta_keys_unlabelled[] = {"name", "namespace", "generation", "uid", NULL};
static const char *const slice_labels[] = {"kubernetes.io/service-name", NULL};
static const char *const secret_data[] = {"tls.crt", "tls.key", "ca.crt", NULL};
static const char *const cm_data[] = {"ca.crt", NULL};

#define GW_GROUP "gateway.networking.k8s.io"

/* The filter facts of an object (see sg_kobj_t.aux). Returns a malloc'd string, NULL when the kind has none, or
 * (char *)-1 when out of memory. */
static char *make_aux(int kind, struct fy_node *obj, const char *ns)
{
    struct fy_node *spec = mval(obj, "spec");
    const char *v = NULL;
    if (kind == SG_KK_GATEWAYCLASS)
        v = sval(spec, "controllerName");
    else if (kind == SG_KK_GATEWAY)
        v = sval(spec, "gatewayClassName");
    if (kind == SG_KK_GATEWAYCLASS || kind == SG_KK_GATEWAY) {
        char *d = strdup(v ? v : "");
        return d ? d : (char *)-1;
    }
    if (kind == SG_KK_ROUTEPOLICY || kind == SG_KK_SSEPOLICY || kind == SG_KK_FRONTENDTLSPOLICY) {
        struct fy_node *tr = mval(spec, "targetRef");
        const char *tk = sval(tr, "kind"), *tn = sval(tr, "name"), *tns = sval(tr, "namespace");
        const char *want = kind == SG_KK_FRONTENDTLSPOLICY ? "Gateway" : "HTTPRoute";
        if (tn == NULL || (tk != NULL && strcmp(tk, want) != 0))
            return NULL; /* the loader says what is wrong with it */
        size_t l = strlen(tns ? tns : ns) + strlen(tn) + 2;
        char *d = malloc(l);
        if (d == NULL)
            return (char *)-1;
        snprintf(d, l, "%s/%s", tns ? tns : ns, tn);
        return d;
    }
    if (kind != SG_KK_HTTPROUTE && kind != SG_KK_GRPCROUTE)
        return NULL;
    struct fy_node *refs = spec ? fy_node_mapping_lookup_by_string(spec, "parentRefs", FY_NT) : NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return (char *)-1;
    void *it = NULL;
    struct fy_node *e;
    while (refs && fy_node_get_type(refs) == FYNT_SEQUENCE && (e = fy_node_sequence_iterate(refs, &it)) != NULL) {
        const char *group = sval(e, "group"), *k = sval(e, "kind"), *n = sval(e, "name"), *rns = sval(e, "namespace");
        bool gw = (group == NULL || strcmp(group, GW_GROUP) == 0) && (k == NULL || strcmp(k, "Gateway") == 0);
        if (gw && n != NULL)
            fprintf(f, "%s/%s\n", rns ? rns : ns, n);
        else
            fputc('\n', f);
    }
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        return (char *)-1;
    }
    return buf;
}

/* Appends "ns/name\n" for a reference to a core Service (group "" and kind Service, or absent). */
static void ref_service(FILE *f, struct fy_node *ref, const char *ns)
{
    const char *group = sval(ref, "group"), *k = sval(ref, "kind"), *n = sval(ref, "name"), *rns = sval(ref, "namespace");
    if (n != NULL && (group == NULL || group[0] == '\0') && (k == NULL || strcmp(k, "Service") == 0))
        fprintf(f, "%s/%s\n", rns ? rns : ns, n);
}

static struct fy_node *seq_of(struct fy_node *map, const char *key)
{
    struct fy_node *v = map && fy_node_get_type(map) == FYNT_MAPPING ? fy_node_mapping_lookup_by_string(map, key, FY_NT)
                                                                     : NULL;
    return v && fy_node_get_type(v) == FYNT_SEQUENCE ? v : NULL;
}

/* The Services an object names (see sg_kobj_t.refs): a malloc'd string, NULL for none, (char *)-1 when out of memory. */
static char *make_refs(int kind, struct fy_node *obj, const char *ns)
{
    struct fy_node *spec = mval(obj, "spec");
    if (kind == SG_KK_ENDPOINTSLICE) {
        const char *svc = sval(mval(mval(obj, "metadata"), "labels"), "kubernetes.io/service-name");
        if (svc == NULL)
            return NULL;
        size_t l = strlen(ns) + strlen(svc) + 2;
        char *d = malloc(l);
        if (d == NULL)
            return (char *)-1;
        snprintf(d, l, "%s/%s", ns, svc);
        return d;
    }
    if (kind != SG_KK_HTTPROUTE && kind != SG_KK_GRPCROUTE && kind != SG_KK_HEALTHCHECKPOLICY &&
        kind != SG_KK_BLBPOLICY && kind != SG_KK_BACKENDTLSPOLICY && kind != SG_KK_AGC_BACKENDTLSPOLICY)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return (char *)-1;
    void *it = NULL, *it2;
    struct fy_node *e, *b;
    if (kind == SG_KK_HTTPROUTE || kind == SG_KK_GRPCROUTE) {
        struct fy_node *rules = seq_of(spec, "rules");
        while (rules && (e = fy_node_sequence_iterate(rules, &it)) != NULL) {
            struct fy_node *brs = seq_of(e, "backendRefs");
            it2 = NULL;
            while (brs && (b = fy_node_sequence_iterate(brs, &it2)) != NULL)
                ref_service(f, b, ns);
        }
    } else {
        if (mval(spec, "targetRef"))
            ref_service(f, mval(spec, "targetRef"), ns);
        struct fy_node *trs = seq_of(spec, "targetRefs");
        while (trs && (e = fy_node_sequence_iterate(trs, &it)) != NULL)
            ref_service(f, e, ns);
    }
    if (fclose(f) != 0 || buf == NULL) {
        free(buf);
        return (char *)-1;
    }
    if (len == 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int sg_kstore_put(sg_kstore_t *s, int kind, struct fy_node *obj)
{
    if (obj == NULL || fy_node_get_type(obj) != FYNT_MAPPING)
        return SG_EBADMSG;
    struct fy_node *md = mval(obj, "metadata");
    const char *name = sval(md, "name");
    if (name == NULL || name[0] == '\0')
        return SG_EBADMSG;
    const char *ns = sg_kkinds[kind].namespaced ? sval(md, "namespace") : "";
    if (ns == NULL)
        ns = "";
    if (kind == SG_KK_SECRET || kind == SG_KK_CONFIGMAP) {
        const char *type = kind == SG_KK_SECRET ? sval(obj, "type") : NULL;
        bool tls = type != NULL && strcmp(type, "kubernetes.io/tls") == 0;
        /* A CA bundle in a Secret is an Opaque (or TLS) one; service-account token Secrets carry a ca.crt too, one per
         * service account in legacy clusters, and are nobody's caCertificateRef. */
        bool ca_type = kind == SG_KK_CONFIGMAP || type == NULL || tls || strcmp(type, "Opaque") == 0;
        bool ca = ca_type && sval(mval(obj, "data"), "ca.crt") != NULL;
        if (!tls && !ca)
            return sg_kstore_delete(s, kind, ns, name);
        keep_only(mval(obj, "data"), kind == SG_KK_SECRET ? secret_data : cm_data);
    }
    const char *const *top = kind == SG_KK_ENDPOINTSLICE ? top_keys_slice
                             : kind == SG_KK_SECRET      ? top_keys_secret
                             : kind == SG_KK_CONFIGMAP   ? top_keys_cm
                                                         : top_keys;
    /* name and ns point into obj: copy them before the keys around them are edited. */
    char *cns = strdup(ns), *cname = strdup(name);
    if (cns == NULL || cname == NULL) {
        free(cns);
        free(cname);
        return -ENOMEM;
    }
    char *aux = kind == SG_KK_ENDPOINTSLICE ? make_refs(kind, obj, cns) : make_aux(kind, obj, cns);
    char *refs = kind == SG_KK_ENDPOINTSLICE ? NULL : make_refs(kind, obj, cns);
    if (aux == (char *)-1 || refs == (char *)-1) {
        if (aux != (char *)-1)
            free(aux);
        if (refs != (char *)-1)
            free(refs);
        free(cns);
        free(cname);
        return -ENOMEM;
    }
    keep_only(obj, top);
    keep_only(md, kind == SG_KK_NAMESPACE || kind == SG_KK_ENDPOINTSLICE ? meta_keys : meta_keys_unlabelled);
    if (kind == SG_KK_ENDPOINTSLICE)
        keep_only(mval(md, "labels"), slice_labels);
    if (kind == SG_KK_SERVICE)
        slim_service(obj);
    else if (kind == SG_KK_ENDPOINTSLICE)
        slim_slice(obj);
    const sg_kkind_t *k = &sg_kkinds[kind];
    char api[128];
    if (k->group[0])
        snprintf(api, sizeof(api), "%s/%s", k->group, k->version);
    else
        snprintf(api, sizeof(api), "%s", k->version);
    /* LIST items carry no kind or apiVersion; a watch event's object does, and may carry the version the server
     * was asked for: either way the one we asked for is written. */
    char *json = NULL;
    if (set_str(obj, "kind", k->kind) < 0 || set_str(obj, "apiVersion", api) < 0 || /* prepended: apiVersion first */
        (json = fy_emit_node_to_string(obj, FYECF_MODE_JSON_ONELINE | FYECF_NO_ENDING_NEWLINE)) == NULL) {
        free(cns);
        free(cname);
        free(aux);
        free(refs);
        return -ENOMEM;
    }
    size_t len = strlen(json);
    uint64_t h = sg_kstore_hash(json, len, 0);
    sg_kobj_t **pp = find(s, kind, cns, cname);
    sg_kobj_t *o = *pp;
    if (o != NULL) {
        o->mark = s->epoch[kind];
        free(cns);
        free(cname);
        if (o->hash == h && o->len == len && memcmp(o->json, json, len) == 0) {
            free(json);
            free(aux);
            free(refs);
            return 0;
        }
        s->bytes -= obj_bytes(o);
        if (o->doc != NULL)
            fy_document_destroy(o->doc);
        o->doc = NULL;
        free(o->json);
        free(o->aux);
        free(o->refs);
        o->aux = aux;
        o->refs = refs;
        o->json = json;
        o->len = len;
        o->hash = h;
        s->bytes += obj_bytes(o);
        return 1;
    }
    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        free(cns);
        free(cname);
        free(json);
        free(aux);
        free(refs);
        return -ENOMEM;
    }
    o->aux = aux;
    o->refs = refs;
    o->kind = kind;
    o->ns = cns;
    o->name = cname;
    o->json = json;
    o->len = len;
    o->hash = h;
    o->mark = s->epoch[kind];
    *pp = o;
    s->count++;
    s->per_kind[kind]++;
    s->bytes += obj_bytes(o);
    if (s->count > s->nbuckets)
        grow(s);
    return 1;
}

struct fy_document *sg_kstore_doc(const sg_kobj_t *o)
{
    if (o->doc == NULL)
        ((sg_kobj_t *)o)->doc = sg_kwatch_parse_json_ex(o->json, o->len, FYPCF_DISABLE_ACCELERATORS); /* a memo */
    return o->doc;
}

static int cmp_obj(const void *a, const void *b)
{
    const sg_kobj_t *x = *(const sg_kobj_t *const *)a, *y = *(const sg_kobj_t *const *)b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

ssize_t sg_kstore_sorted(const sg_kstore_t *s, const sg_kobj_t ***out)
{
    const sg_kobj_t **v = malloc((s->count + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (const sg_kobj_t *o = s->tab[i]; o; o = o->next)
            v[n++] = o;
    qsort(v, n, sizeof(*v), cmp_obj);
    *out = v;
    return (ssize_t)n;
}
