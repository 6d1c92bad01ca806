/* diag.h: the loader's lenient mode and its per-object diagnostics: what Gateway API status needs to say about every
 * object of a configuration built from a cluster, whether it was served, partly served or dropped, and why. */
#ifndef SG_CONFIG_DIAG_H
#define SG_CONFIG_DIAG_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

/* One condition as Gateway API writes it: status True (ok) or False, a CamelCase reason and a message. */
typedef struct sg_diag_cond {
    bool ok;
    const char *reason;         /* e.g. "Accepted", "NotAllowedByListeners" */
    const char *message;
} sg_diag_cond_t;

/* One parentRef of an HTTPRoute, with its fields as the spec wrote them (NULL / 0 when not given), so status can
 * echo it in status.parents[].parentRef. */
typedef struct sg_diag_parent {
    const char *group, *kind, *ns, *name, *section;
    long port;
    sg_diag_cond_t accepted;    /* attached to at least one listener */
    sg_diag_cond_t resolved;    /* every backendRef of the kept rules resolves (ResolvedRefs) */
} sg_diag_parent_t;

/* One listener of a Gateway. */
typedef struct sg_diag_listener {
    const char *name;
    long port;
    const char *protocol;       /* "HTTP", "HTTPS", or what the spec said */
    bool served;                /* in the generation (a socket may still fail to bind: that is the publish result's) */
    sg_diag_cond_t accepted;
    sg_diag_cond_t resolved;
    sg_diag_cond_t conflicted;  /* ok = Conflicted True (a conflict); normally False / NoConflicts */
    size_t attached;            /* attachedRoutes: routes with a parentRef attached to this listener */
    unsigned kinds;             /* route kinds it admits: bits 1 << sg_route_kind_t (served listeners) */
} sg_diag_listener_t;

/* An HTTPRoute rule dropped from the generation. */
typedef struct sg_diag_rule {
    size_t index;               /* position in spec.rules */
    const char *reason, *message;
} sg_diag_rule_t;

typedef enum sg_diag_kind {
    SG_DIAG_OTHER = 0,          /* Service, EndpointSlice, Secret...: no status of ours */
    SG_DIAG_GATEWAYCLASS,
    SG_DIAG_GATEWAY,
    SG_DIAG_HTTPROUTE,          /* HTTPRoute or GRPCRoute (kind says which): status.parents */
    SG_DIAG_POLICY_AGC,         /* alb.networking.azure.io policies and ssegate.io's SSEPolicy: status.conditions */
    SG_DIAG_POLICY_GW,          /* Gateway API policies (BackendTLSPolicy): status.ancestors (GEP-713) */
} sg_diag_kind_t;

/* One document of the input: one Kubernetes object. */
typedef struct sg_diag_obj {
    sg_diag_kind_t type;
    const char *kind, *api_version, *ns, *name; /* ns NULL when the document gave none (cluster-scoped kinds) */
    int64_t generation;         /* metadata.generation; 0 when absent */
    bool dropped;               /* left out of the generation entirely */
    sg_diag_cond_t accepted;    /* the object's own Accepted (Gateway, policies; a dropped object's reason) */
    const char *class_name;     /* Gateway: spec.gatewayClassName; GatewayClass: spec.controllerName */
    sg_diag_listener_t *listeners; /* Gateway */
    size_t nlisteners;
    sg_diag_parent_t *parents;  /* HTTPRoute */
    size_t nparents;
    sg_diag_rule_t *dropped_rules; /* HTTPRoute */
    size_t ndropped_rules;
    size_t nrules;              /* HTTPRoute: rules in the spec */
    const char *target_group, *target_kind, *target_ns, *target_name; /* policies: the (first) targetRef */
} sg_diag_obj_t;

/* The diagnostics of one lenient load. Owned by the caller: zero it, pass it to sg_config_load_lenient, read it, and
 * free what the load put in it with sg_config_diag_free (then it may be reused). */
typedef struct sg_config_diag {
    sg_diag_obj_t *objs;        /* in document order */
    size_t nobjs;
    size_t passes;              /* loads it took (1 when nothing was dropped) */
    const char *error;          /* why the whole load failed (an error no object could be blamed for), or NULL */
    void *mem;                  /* the strings and arrays above */
} sg_config_diag_t;

/*
 * Lenient load, for configurations built from a cluster: an object, an HTTPRoute rule or parentRef, or a Gateway
 * listener that has an error is dropped and reported in *diag against that object, and everything else is loaded.
 * The file mode (sg_config_load*) stays strict. flags are SG_CONFIG_* as for sg_config_load_ex. The messages of the
 * final load (warnings) go to errs, as "NAME:LINE:COL: ..." lines, as do those of the errors that made it drop
 * something. Returns 0 and *out (refs = 1) with *diag filled; -EINVAL when an error could not be blamed on an object
 * (diag->error says which); -ENOMEM.
 */
int sg_config_load_lenient(const char *name, const char *yaml, size_t len, unsigned flags, FILE *errs,
                           sg_config_diag_t *diag, sg_config_t **out);

/*
 * The same from documents already parsed, in this order, as if they were the documents of one YAML stream (the kube
 * build keeps each object's parsed form, so a build parses only what changed). The loader only reads them. Positions
 * in messages (and so the blame of errors on objects, rules, parentRefs and listeners) come from each document's
 * marks, counted from the line sg_config_doc_set_line gave its root (1 when none): give each the line it would start
 * on in the text, and the messages are those of that text.
 */
struct fy_document;
int sg_config_load_docs_lenient(const char *name, struct fy_document *const *docs, size_t ndocs, unsigned flags,
                                FILE *errs, sg_config_diag_t *diag, sg_config_t **out);
/* Sets the line doc's marks count from (line >= 1; kept in its root node's meta pointer). 0, or -EINVAL. */
int sg_config_doc_set_line(struct fy_document *doc, int line);

/* Frees what a load put in *diag and zeroes it. Accepts a zeroed diag. */
void sg_config_diag_free(sg_config_diag_t *diag);

/* The object of *diag with this kind, namespace and name, or NULL. */
const sg_diag_obj_t *sg_config_diag_find(const sg_config_diag_t *diag, const char *kind, const char *ns,
                                         const char *name);

#endif
