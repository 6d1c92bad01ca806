/* kstore.h: the watched objects, stripped to what the loader reads, keyed kind/namespace/name; replace-with-deletes
 * on a relist; and the table of kinds ssegate watches. Used by the kube thread only. */
#ifndef SG_KSTORE_H
#define SG_KSTORE_H

#include "kube/kjson.h"
#include "core/sg.h"

struct fy_node;
struct fy_document;

/* One watched kind (a collection of the API). */
typedef struct sg_kkind {
    const char *kind;       /* "HTTPRoute" */
    const char *group;      /* "" for the core group */
    const char *version;    /* "v1" */
    const char *resource;   /* "httproutes" */
    bool namespaced;
    bool optional;          /* a policy kind: a 403 on it is reported and the kind left empty, not waited for */
} sg_kkind_t;

enum {
    SG_KK_GATEWAYCLASS = 0,
    SG_KK_GATEWAY,
    SG_KK_HTTPROUTE,
    SG_KK_REFERENCEGRANT,
    SG_KK_NAMESPACE,
    SG_KK_SERVICE,
    SG_KK_ENDPOINTSLICE,
    SG_KK_SECRET,
    SG_KK_CONFIGMAP,
    SG_KK_ROUTEPOLICY,
    SG_KK_HEALTHCHECKPOLICY,
    SG_KK_BLBPOLICY,
    SG_KK_BACKENDTLSPOLICY,
    SG_KK_AGC_BACKENDTLSPOLICY,
    SG_KK_FRONTENDTLSPOLICY,
    SG_KK_SSEPOLICY,
    SG_KK_GRPCROUTE,        /* optional: a cluster without the GRPCRoute CRD (or our RBAC on it) serves HTTPRoutes */
    SG_KK_N
};
extern const sg_kkind_t sg_kkinds[SG_KK_N];

/* A stored object: its stripped form as one line of JSON (also a YAML document the loader reads). */
typedef struct sg_kobj {
    struct sg_kobj *next;  /* hash chain */
    int kind;
    char *ns;              /* "" for cluster-scoped kinds */
    char *name;
    char *json;
    size_t len;
    char *aux;             /* what the build filters by, without parsing json again: GatewayClass: its controllerName;
                            * Gateway: its gatewayClassName; HTTPRoute, GRPCRoute: "ns/name\n" per parentRef of kind
                            * Gateway ("\n" alone for a parentRef of another kind); RoutePolicy, SSEPolicy: "ns/name"
                            * of the HTTPRoute it targets; FrontendTLSPolicy: of its Gateway; NULL otherwise */
    char *refs;            /* the Services it names, "ns/name\n" each: a route's backendRefs, a Service policy's
                            * targets (HealthCheckPolicy, BackendLoadBalancingPolicy, BackendTLSPolicy); NULL otherwise.
                            * An EndpointSlice's aux is "ns/service" */
    uint64_t hash;         /* of json */
    uint32_t mark;         /* the relist epoch that last saw it */
    struct fy_document *doc; /* json parsed, made by the first build that reads it (sg_kstore_doc) and kept until json
                              * changes: a build then parses only the objects that changed since the last one */
} sg_kobj_t;

typedef struct sg_kstore sg_kstore_t;

sg_kstore_t *sg_kstore_new(void);
void sg_kstore_free(sg_kstore_t *s);

/*
 * Stores object obj of d (written back without managedFields, annotations, resourceVersion, status and, for
 * Secrets and ConfigMaps, the keys ssegate does not read; kind and apiVersion filled in for LIST items). Secrets that
 * are neither kubernetes.io/tls nor hold a ca.crt, and ConfigMaps without ca.crt, are not kept (a stored one is
 * deleted). Returns 1 when what the loader would read changed, 0 when not (a status-only or resourceVersion-only
 * update), SG_EBADMSG when obj has no metadata.name, -ENOMEM.
 */
int sg_kstore_put(sg_kstore_t *s, int kind, sg_kjson_t *d, uint32_t obj);
/* Returns 1 when the object was stored (and is now gone), else 0. */
int sg_kstore_delete(sg_kstore_t *s, int kind, const char *ns, const char *name);
/* A relist of kind begins: objects it does not put again before sg_kstore_sweep are deleted by the sweep. */
void sg_kstore_relist_begin(sg_kstore_t *s, int kind);
/* Deletes the objects of kind that the relist did not see. Returns how many. */
size_t sg_kstore_relist_end(sg_kstore_t *s, int kind);
const sg_kobj_t *sg_kstore_get(const sg_kstore_t *s, int kind, const char *ns, const char *name);
/* Moves whenever an object comes or goes, or changes, except an EndpointSlice whose contents change and whose Service
 * stays: two stores of the same shape hold the same objects at the same addresses, and differ at most in what some
 * EndpointSlices hold. */
uint64_t sg_kstore_shape(const sg_kstore_t *s);
size_t sg_kstore_count(const sg_kstore_t *s, int kind);
/* Bytes held by the stored objects (strings and entries, not allocator overhead). */
size_t sg_kstore_bytes(const sg_kstore_t *s);
/* Every object sorted by kind, namespace, name, into a malloc'd array (*out; the caller frees the array only). Returns
 * the count, or -ENOMEM. */
ssize_t sg_kstore_sorted(const sg_kstore_t *s, const sg_kobj_t ***out);

/* The object's json as a parsed document (made on first use, then kept with the object; the build's, which only reads
 * it and sets its root's meta pointer), or NULL when out of memory. */
struct fy_document *sg_kstore_doc(const sg_kobj_t *o);

uint64_t sg_kstore_hash(const char *p, size_t n, uint64_t seed);

#endif
