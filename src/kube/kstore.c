/* kstore.c: the kube thread's object store: stripping, hashing, kind/namespace/name lookup, and relist sweeps. */
#include "kube/kstore.h"

#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* sg_kstore_sorted's order, kept until an object comes or goes (a change keeps an object where it is): an
     * EndpointSlice update, most of a cluster's traffic, then costs no sort. */
    const sg_kobj_t **sorted;
    bool sorted_ok;
    uint64_t shape;             /* sg_kstore_shape */
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
    free(s->sorted);
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

uint64_t sg_kstore_shape(const sg_kstore_t *s)
{
    return s->shape;
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
    s->sorted_ok = false;
    s->shape++;
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

/* ---- stripping ----
 * The object is a node of a parsed event or list page (kube/kjson.c). Nothing is removed from it: what the
 * loader never reads is flagged SG_KJSON_DROP, and the object is written back without it. */

static const char *sval(const sg_kjson_t *d, uint32_t map, const char *key)
{
    return sg_kjson_get_str(d, map, key);
}

static uint32_t mval(const sg_kjson_t *d, uint32_t map, const char *key)
{
    return sg_kjson_get_type(d, map, key, SG_KJSON_OBJECT);
}

static uint32_t seq_of(const sg_kjson_t *d, uint32_t map, const char *key)
{
    return sg_kjson_get_type(d, map, key, SG_KJSON_ARRAY);
}

/* Flags every key of map not in keep (a NULL-terminated list). */
static void keep_only(sg_kjson_t *d, uint32_t map, const char *const *keep)
{
    if (sg_kjson_type(d, map) != SG_KJSON_OBJECT)
        return;
    for (uint32_t k = sg_kjson_first(d, map); k; k = sg_kjson_next_key(d, map, k)) {
        bool keepit = false;
        for (size_t i = 0; keep[i] && !keepit; i++)
            keepit = sg_kjson_is(d, k, keep[i]);
        if (!keepit)
            d->n[k].flags |= SG_KJSON_DROP;
    }
}

static void drop_key(sg_kjson_t *d, uint32_t map, const char *key)
{
    uint32_t k = sg_kjson_key(d, map, key);
    if (k)
        d->n[k].flags |= SG_KJSON_DROP;
}

/* What the loader reads of a Service is spec.ports[]{name, port, targetPort, appProtocol}, and of an EndpointSlice's
 * endpoints[] only addresses and conditions.ready (config_backend.c). Everything else is dropped before the object is
 * stored: each JSON value a kept document holds costs about 0.4-0.5 KB in libfyaml (a node, its tokens and their
 * marks), and a cluster's Services (clusterIP(s), ipFamilies, selector, sessionAffinity...) and endpoints (nodeName,
 * zone, targetRef, hints, serving, terminating) are mostly what the loader never reads. For an endpoint, ready true
 * (or absent or null, which the loader and Kubernetes take as ready: discovery/v1 says a nil ready is an unknown
 * state consumers should in most cases take as ready) is written as no conditions, and an endpoint with ready
 * false, which the loader skips, is not written: a slice keeps only its ready addresses. A ready of any other value
 * is kept as it is, so the loader still reports it on this slice. serving and terminating are dropped: ready is
 * false on a terminating endpoint (unless its Service publishes not-ready addresses, when Kubernetes means it to get
 * traffic), and a nil serving defers to ready. */
static const char *const svc_spec_keys[] = {"ports", NULL};
static const char *const svc_port_keys[] = {"name", "port", "targetPort", "appProtocol", NULL};
static const char *const ep_keys[] = {"addresses", "conditions", NULL};
static const char *const ep_cond_keys[] = {"ready", NULL};

static void slim_service(sg_kjson_t *d, uint32_t obj)
{
    uint32_t spec = mval(d, obj, "spec");
    keep_only(d, spec, svc_spec_keys);
    uint32_t ports = seq_of(d, spec, "ports");
    for (uint32_t e = sg_kjson_first(d, ports); e; e = sg_kjson_next_elem(d, ports, e))
        keep_only(d, e, svc_port_keys);
}

/* The endpoint's conditions.ready: 1 true (or no ready, or null: Kubernetes reads an unknown state as ready; or
 * conditions itself null), 0 false, -1 anything else (left for the loader to report). */
static int ep_ready(const sg_kjson_t *d, uint32_t cond)
{
    if (cond == 0)
        return 1;
    if (sg_kjson_type(d, cond) == SG_KJSON_NULL)
        return 1;
    if (sg_kjson_type(d, cond) != SG_KJSON_OBJECT)
        return -1;
    uint32_t r = sg_kjson_get(d, cond, "ready");
    if (r == 0 || sg_kjson_type(d, r) == SG_KJSON_NULL)
        return 1;
    return sg_kjson_is(d, r, "true") ? 1 : sg_kjson_is(d, r, "false") ? 0 : -1;
}

static void slim_slice(sg_kjson_t *d, uint32_t obj)
{
    uint32_t eps = seq_of(d, obj, "endpoints");
    for (uint32_t e = sg_kjson_first(d, eps); e; e = sg_kjson_next_elem(d, eps, e)) {
        if (sg_kjson_type(d, e) != SG_KJSON_OBJECT)
            continue;
        keep_only(d, e, ep_keys);
        uint32_t cp = sg_kjson_key(d, e, "conditions");
        uint32_t cond = cp ? cp + 1 : 0;
        keep_only(d, cond, ep_cond_keys);
        int ready = ep_ready(d, cond);
        if (ready == 0)
            d->n[e].flags |= SG_KJSON_DROP;
        else if (ready == 1 && cp != 0)
            d->n[cp].flags |= SG_KJSON_DROP;
    }
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
static char *make_aux(int kind, const sg_kjson_t *d, uint32_t obj, const char *ns)
{
    uint32_t spec = mval(d, obj, "spec");
    const char *v = NULL;
    if (kind == SG_KK_GATEWAYCLASS)
        v = sval(d, spec, "controllerName");
    else if (kind == SG_KK_GATEWAY)
        v = sval(d, spec, "gatewayClassName");
    if (kind == SG_KK_GATEWAYCLASS || kind == SG_KK_GATEWAY) {
        char *c = strdup(v ? v : "");
        return c ? c : (char *)-1;
    }
    if (kind == SG_KK_ROUTEPOLICY || kind == SG_KK_SSEPOLICY || kind == SG_KK_FRONTENDTLSPOLICY) {
        uint32_t tr = mval(d, spec, "targetRef");
        const char *tk = sval(d, tr, "kind"), *tn = sval(d, tr, "name"), *tns = sval(d, tr, "namespace");
        const char *want = kind == SG_KK_FRONTENDTLSPOLICY ? "Gateway" : "HTTPRoute";
        if (tn == NULL || (tk != NULL && strcmp(tk, want) != 0))
            return NULL; /* the loader says what is wrong with it */
        size_t l = strlen(tns ? tns : ns) + strlen(tn) + 2;
        char *c = malloc(l);
        if (c == NULL)
            return (char *)-1;
        snprintf(c, l, "%s/%s", tns ? tns : ns, tn);
        return c;
    }
    if (kind != SG_KK_HTTPROUTE && kind != SG_KK_GRPCROUTE)
        return NULL;
    uint32_t refs = seq_of(d, spec, "parentRefs");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return (char *)-1;
    for (uint32_t e = sg_kjson_first(d, refs); e; e = sg_kjson_next_elem(d, refs, e)) {
        const char *group = sval(d, e, "group"), *k = sval(d, e, "kind"), *n = sval(d, e, "name"),
                   *rns = sval(d, e, "namespace");
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
static void ref_service(FILE *f, const sg_kjson_t *d, uint32_t ref, const char *ns)
{
    const char *group = sval(d, ref, "group"), *k = sval(d, ref, "kind"), *n = sval(d, ref, "name"),
               *rns = sval(d, ref, "namespace");
    if (n != NULL && (group == NULL || group[0] == '\0') && (k == NULL || strcmp(k, "Service") == 0))
        fprintf(f, "%s/%s\n", rns ? rns : ns, n);
}

/* The Services an object names (see sg_kobj_t.refs): a malloc'd string, NULL for none, (char *)-1 when out of memory. */
static char *make_refs(int kind, const sg_kjson_t *d, uint32_t obj, const char *ns)
{
    uint32_t spec = mval(d, obj, "spec");
    if (kind == SG_KK_ENDPOINTSLICE) {
        const char *svc = sval(d, mval(d, mval(d, obj, "metadata"), "labels"), "kubernetes.io/service-name");
        if (svc == NULL)
            return NULL;
        size_t l = strlen(ns) + strlen(svc) + 2;
        char *c = malloc(l);
        if (c == NULL)
            return (char *)-1;
        snprintf(c, l, "%s/%s", ns, svc);
        return c;
    }
    if (kind != SG_KK_HTTPROUTE && kind != SG_KK_GRPCROUTE && kind != SG_KK_HEALTHCHECKPOLICY &&
        kind != SG_KK_BLBPOLICY && kind != SG_KK_BACKENDTLSPOLICY && kind != SG_KK_AGC_BACKENDTLSPOLICY)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return (char *)-1;
    if (kind == SG_KK_HTTPROUTE || kind == SG_KK_GRPCROUTE) {
        uint32_t rules = seq_of(d, spec, "rules");
        for (uint32_t e = sg_kjson_first(d, rules); e; e = sg_kjson_next_elem(d, rules, e)) {
            uint32_t brs = seq_of(d, e, "backendRefs");
            for (uint32_t b = sg_kjson_first(d, brs); b; b = sg_kjson_next_elem(d, brs, b))
                ref_service(f, d, b, ns);
        }
    } else {
        if (mval(d, spec, "targetRef"))
            ref_service(f, d, mval(d, spec, "targetRef"), ns);
        uint32_t trs = seq_of(d, spec, "targetRefs");
        for (uint32_t e = sg_kjson_first(d, trs); e; e = sg_kjson_next_elem(d, trs, e))
            ref_service(f, d, e, ns);
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

int sg_kstore_put(sg_kstore_t *s, int kind, sg_kjson_t *d, uint32_t obj)
{
    if (sg_kjson_type(d, obj) != SG_KJSON_OBJECT)
        return SG_EBADMSG;
    uint32_t md = mval(d, obj, "metadata");
    const char *name = sval(d, md, "name");
    if (name == NULL || name[0] == '\0')
        return SG_EBADMSG;
    const char *ns = sg_kkinds[kind].namespaced ? sval(d, md, "namespace") : "";
    if (ns == NULL)
        ns = "";
    if (kind == SG_KK_SECRET || kind == SG_KK_CONFIGMAP) {
        const char *type = kind == SG_KK_SECRET ? sval(d, obj, "type") : NULL;
        bool tls = type != NULL && strcmp(type, "kubernetes.io/tls") == 0;
        /* A CA bundle in a Secret is an Opaque (or TLS) one; service-account token Secrets carry a ca.crt too, one per
         * service account in legacy clusters, and are nobody's caCertificateRef. */
        bool ca_type = kind == SG_KK_CONFIGMAP || type == NULL || tls || strcmp(type, "Opaque") == 0;
        bool ca = ca_type && sval(d, mval(d, obj, "data"), "ca.crt") != NULL;
        if (!tls && !ca)
            return sg_kstore_delete(s, kind, ns, name);
        keep_only(d, mval(d, obj, "data"), kind == SG_KK_SECRET ? secret_data : cm_data);
    }
    const char *const *top = kind == SG_KK_ENDPOINTSLICE ? top_keys_slice
                             : kind == SG_KK_SECRET      ? top_keys_secret
                             : kind == SG_KK_CONFIGMAP   ? top_keys_cm
                                                         : top_keys;
    /* name and ns point into the parsed document: the object keeps its own copies. */
    char *cns = strdup(ns), *cname = strdup(name);
    if (cns == NULL || cname == NULL) {
        free(cns);
        free(cname);
        return -ENOMEM;
    }
    char *aux = kind == SG_KK_ENDPOINTSLICE ? make_refs(kind, d, obj, cns) : make_aux(kind, d, obj, cns);
    char *refs = kind == SG_KK_ENDPOINTSLICE ? NULL : make_refs(kind, d, obj, cns);
    if (aux == (char *)-1 || refs == (char *)-1) {
        if (aux != (char *)-1)
            free(aux);
        if (refs != (char *)-1)
            free(refs);
        free(cns);
        free(cname);
        return -ENOMEM;
    }
    keep_only(d, obj, top);
    keep_only(d, md, kind == SG_KK_NAMESPACE || kind == SG_KK_ENDPOINTSLICE ? meta_keys : meta_keys_unlabelled);
    if (kind == SG_KK_ENDPOINTSLICE)
        keep_only(d, mval(d, md, "labels"), slice_labels);
    if (kind == SG_KK_SERVICE)
        slim_service(d, obj);
    else if (kind == SG_KK_ENDPOINTSLICE)
        slim_slice(d, obj);
    const sg_kkind_t *k = &sg_kkinds[kind];
    /* LIST items carry no kind or apiVersion; a watch event's object does, and may carry the version the server
     * was asked for: either way the one we asked for is written, first. */
    char head[160];
    snprintf(head, sizeof(head), "\"apiVersion\": \"%s%s%s\", \"kind\": \"%s\"", k->group, k->group[0] ? "/" : "",
             k->version, k->kind);
    drop_key(d, obj, "kind");
    drop_key(d, obj, "apiVersion");
    size_t len = 0;
    char *json = sg_kjson_emit(d, obj, head, &len);
    if (json == NULL) {
        free(cns);
        free(cname);
        free(aux);
        free(refs);
        return -ENOMEM;
    }
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
        /* An EndpointSlice that stays with its Service keeps the shape: what a patch can carry. */
        if (kind != SG_KK_ENDPOINTSLICE || o->aux == NULL || aux == NULL || strcmp(o->aux, aux) != 0)
            s->shape++;
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
    s->sorted_ok = false;
    s->shape++;
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

ssize_t sg_kstore_sorted(const sg_kstore_t *cs, const sg_kobj_t ***out)
{
    sg_kstore_t *s = (sg_kstore_t *)cs; /* the order is a memo */
    const sg_kobj_t **v = malloc((s->count + 1) * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    if (!s->sorted_ok) {
        size_t n = 0;
        for (size_t i = 0; i < s->nbuckets; i++)
            for (const sg_kobj_t *o = s->tab[i]; o; o = o->next)
                v[n++] = o;
        qsort(v, n, sizeof(*v), cmp_obj);
        const sg_kobj_t **keep = realloc(s->sorted, (s->count + 1) * sizeof(*keep));
        if (keep != NULL) {
            memcpy(keep, v, n * sizeof(*v));
            s->sorted = keep;
            s->sorted_ok = true;
        }
        *out = v;
        return (ssize_t)n;
    }
    memcpy(v, s->sorted, s->count * sizeof(*v));
    *out = v;
    return (ssize_t)s->count;
}
