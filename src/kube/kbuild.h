/* kbuild.h: from the store to the loader's input: the debounce that decides when to build (pure, on a clock the
 * caller passes), and the translation of the stored objects into the multi-document YAML that file mode reads (the
 * text --dump-config prints). */
#ifndef SG_KBUILD_H
#define SG_KBUILD_H

#include <stdio.h>

#include "config/diag.h"
#include "core/sg.h"
#include "kube/kstore.h"

/* Build after `quiet_ms` without a change, and at most `max_ms` after the first change of a burst. */
typedef struct sg_kdebounce {
    uint64_t quiet_ms, max_ms;
    uint64_t first_ms, last_ms;
    bool pending;
} sg_kdebounce_t;

void sg_kdebounce_init(sg_kdebounce_t *d, uint64_t quiet_ms, uint64_t max_ms);
/* A change happened at now. */
void sg_kdebounce_touch(sg_kdebounce_t *d, uint64_t now);
/* -1 when nothing is pending, 0 when the build is due, else the milliseconds until it is. */
int64_t sg_kdebounce_due_in(const sg_kdebounce_t *d, uint64_t now);
/* The build ran: the burst is over. */
void sg_kdebounce_done(sg_kdebounce_t *d);

/*
 * Writes the documents the loader reads, in a stable order (kind, namespace, name), to f: the Gateways whose
 * GatewayClass names controller (GatewayClasses themselves are not written: the loader does not read them), the
 * HTTPRoutes and GRPCRoutes with a parentRef to one of those Gateways (their other parentRefs removed: another
 * controller's Gateway is not ours to report missing), the RoutePolicies and SSEPolicies that target those routes
 * and the FrontendTLSPolicies on those Gateways (a policy on another controller's object is not ours to call
 * dangling), the Services (and their EndpointSlices) that those routes or a Service policy name, and every other stored object.
 * Returns the number of documents or -ENOMEM.
 */
ssize_t sg_kbuild_write(const sg_kstore_t *s, const char *controller, FILE *f);

/* The build's state kept from one build to the next. A builder reads one store through its life. */
typedef struct sg_kbuild sg_kbuild_t;

sg_kbuild_t *sg_kbuild_new(void);
void sg_kbuild_free(sg_kbuild_t *b);

/*
 * Builds a generation from the store: the documents sg_kbuild_write selects, loaded leniently (diag.h). Returns 1 and
 * *out (refs = 1) with *diag filled; 2 and *out when the input differs from the last build's only in what
 * EndpointSlices hold and the generation was made as a patch of the last one (config/patch.h): every object's status
 * is then the last build's, and *diag stays zeroed; 0 when nothing the loader reads changed since the last build that
 * returned 1 or 2 or failed (no load; *out NULL, *diag zeroed); -EINVAL when the load failed (diag->error); -ENOMEM.
 * The loader's messages go to errs. *diag must be freed with sg_config_diag_free in every case. The state keeps a
 * reference to the last generation built (freed with it).
 */
int sg_kbuild_load(sg_kbuild_t *b, const sg_kstore_t *s, const char *controller, FILE *errs, sg_config_diag_t *diag,
                   sg_config_t **out);

/* Whether a change to Service ns/name, or to one of its EndpointSlices, can change the next build: true when no
 * selection was made yet, or when the last selection took that Service (a route or a Service policy names it). A
 * change that would add a Service to the selection (a route, a policy) is a change of its own, which builds. */
bool sg_kbuild_needs_service(const sg_kbuild_t *b, const char *ns, const char *name);
/* The same for the Service "ns/name" (an EndpointSlice's stored aux). */
bool sg_kbuild_needs_service_key(const sg_kbuild_t *b, const char *key);

/* Builds that sg_kbuild_load made as patches. */
uint64_t sg_kbuild_patches(const sg_kbuild_t *b);
/* Builds that found the store's shape as the last selection left it (kstore.h) and walked that selection instead of
 * selecting again: only EndpointSlices had changed. */
uint64_t sg_kbuild_walks(const sg_kbuild_t *b);

#endif
