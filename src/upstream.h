/* upstream.h: choosing a backend of a rule (by weight) and an endpoint of a backend. */
#ifndef SG_UPSTREAM_H
#define SG_UPSTREAM_H

#include "config.h"
#include "worker.h"

/* Picks a backendRef by weight; weight 0 is never chosen. Returns NULL when the rule has no backend
 * with a positive weight, or when the one picked has no endpoint (unresolvable: HTTP 500). */
const sg_backend_t *sg_upstream_pick_backend(sg_worker_t *w, const sg_rule_t *rule);

/* Picks an endpoint of b (which has at least one), round-robin from a random start. */
const sg_endpoint_t *sg_upstream_pick_endpoint(sg_worker_t *w, const sg_backend_t *b);

/* Another endpoint of b than `not`, or NULL when b has no other. */
const sg_endpoint_t *sg_upstream_pick_other(sg_worker_t *w, const sg_backend_t *b, const sg_endpoint_t *not);

#endif
