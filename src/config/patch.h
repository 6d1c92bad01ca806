/* patch.h: a generation that differs from one already built only in the endpoints of some Services, made without a
 * full load. In a cluster, EndpointSlices change far more often than anything else (every pod start, stop and
 * readiness flip); a full load at 1,000 routes and 5,000 endpoints takes tens of milliseconds of a core that open
 * streams share, a patch a small fraction of that. */
#ifndef SG_CONFIG_PATCH_H
#define SG_CONFIG_PATCH_H

#include <libfyaml.h>

#include "config/config.h"

/*
 * base: a generation from a full load (or a patch of one) whose input differed from the new input only in the
 * contents of EndpointSlices. docs: for each Service whose slices changed, the Service and every one of its
 * EndpointSlices, as the full load would read them (the caller's, only read).
 *
 * Returns 0 and *out (refs = 1): base's routes, listeners and policies (shared with the full load they came from,
 * which *out keeps alive) with the endpoints of every backendRef to one of those Services resolved anew, and the
 * rules' total weights and route tables made again; what a full load of the new input would give. Returns -EAGAIN
 * when it would not be the same and a full load is needed: a document other than a Service or an EndpointSlice,
 * any error or warning reading them, a backendRef whose Service lacks its port or has no EndpointSlice. -ENOMEM.
 * The generation number is the caller's to set; no health table is attached.
 */
int sg_config_patch_endpoints(sg_config_t *base, struct fy_document *const *docs, size_t ndocs, sg_config_t **out);

#endif
