/* kstatus.h: Gateway API status from the loader's diagnostics and the publish result, and the status diff that decides
 * what to write. Pure: no I/O, no clock (the caller passes "now"); the writer (kstatus_write.c) does the requests. */
#ifndef SG_KSTATUS_H
#define SG_KSTATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/diag.h"

#define SG_KSTATUS_DEFAULT_CONTROLLER "ssegate.io/gateway-controller"

/* What status is computed from besides the diagnostics. */
typedef struct sg_kstatus_env {
    const char *controller;     /* our controllerName (--controller-name) */
    /* The generation built from these diagnostics is serving (the main thread published it): only then is anything
     * Programmed. */
    bool programmed;
    const char *const *addresses; /* --publish-service: the Service's load-balancer IPs / hostnames, else its clusterIP */
    size_t naddresses;
    const uint16_t *failed_ports; /* ports whose socket did not bind in that publish (PortUnavailable) */
    size_t nfailed_ports;
    /* gateway.networking.k8s.io/bundle-version of the installed Gateway API CRDs (e.g. "v1.2.1"), or NULL when it
     * could not be read: SupportedVersion is then Unknown. */
    const char *bundle_version;
    /* Our GatewayClasses (controllerName is ours), as listed from the API server; NULL: taken from GatewayClass
     * documents in the diagnostics (the build writes none: then set this). */
    const char *const *classes;
    size_t nclasses;
    const char *now;            /* RFC 3339 time for a lastTransitionTime that changes, e.g. "2026-01-02T03:04:05Z" */
} sg_kstatus_env_t;

/* Which part of an object's status is ours, for the merge. */
typedef enum sg_kstatus_shape {
    SG_KSTATUS_WHOLE = 0,       /* GatewayClass, Gateway, AGC policies: the status is ours alone */
    SG_KSTATUS_PARENTS,         /* HTTPRoute: status.parents[], ours are those with our controllerName */
    SG_KSTATUS_ANCESTORS,       /* Gateway API policies: status.ancestors[] (GEP-713), same rule */
} sg_kstatus_shape_t;

/* Whether the GatewayClass / Gateway named is ours: one of env->classes (or, without that list, a GatewayClass of
 * the diagnostics whose controllerName is env->controller), and a Gateway of such a class. */
bool sg_kstatus_class_ours(const sg_config_diag_t *d, const sg_kstatus_env_t *env, const char *class_name);
bool sg_kstatus_gateway_ours(const sg_config_diag_t *d, const sg_kstatus_env_t *env, const char *ns,
                             const char *name);

/* The status of a GatewayClass whose spec.controllerName is ours (Accepted, SupportedVersion), for the class as
 * listed from the API server (the build does not pass GatewayClasses to the loader). Returns 0 and *json (malloc'd),
 * or -ENOMEM. Merge it with SG_KSTATUS_WHOLE. */
int sg_kstatus_class_desired(int64_t generation, const sg_kstatus_env_t *env, char **json);

/*
 * The status we want on object o of d, as one-line JSON (the value of "status", our part only; every condition with
 * observedGeneration = o->generation and lastTransitionTime = env->now, which the merge keeps from the current object
 * where the condition's status did not change). *shape says how to merge it. Returns 0 and *json (malloc'd, the
 * caller frees it); -ENOENT when the object gets no status from us (a kind without status, a class or Gateway of
 * another controller, a route none of whose parentRefs names our Gateways: then an HTTPRoute still gets "parents":[]
 * so our stale entries go: see below); -ENOMEM.
 * An HTTPRoute always returns 0 (possibly with no entries of ours), so entries we wrote before are removed when the
 * route no longer names our Gateways.
 */
int sg_kstatus_desired(const sg_config_diag_t *d, const sg_diag_obj_t *o, const sg_kstatus_env_t *env, char **json,
                       sg_kstatus_shape_t *shape);

/*
 * The status diff. cur is the object as the API server has it (JSON; its status may be absent), desired the output of
 * sg_kstatus_desired. Builds the status to write: for SG_KSTATUS_WHOLE the desired one; for PARENTS / ANCESTORS the
 * current entries of other controllers, in their order, followed by ours. Each condition keeps its lastTransitionTime
 * from the current object when a condition of that type (in the same listener, or the same parentRef) had the same
 * status. Returns 0 and *out (malloc'd JSON of the whole object with the new status, metadata.resourceVersion kept, to
 * PUT to /status); 1 when the status would not change (*out NULL: nothing to write); -EINVAL when cur or desired is
 * not a JSON object; -ENOMEM.
 */
/* JSON text of a libfyaml node tree (malloc'd), or NULL for no memory. The status writer uses it for the items of a
 * LIST. */
struct fy_node;
char *sg_kstatus_node_json(struct fy_node *n);

int sg_kstatus_merge(const char *cur, size_t cur_len, const char *desired, sg_kstatus_shape_t shape,
                     const char *controller, char **out);

#endif
