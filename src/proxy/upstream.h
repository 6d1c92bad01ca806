/* upstream.h: choosing a backend of a rule (by backendRef weight) and an endpoint of a backend (by the
 * Service's load-balancing strategy, endpoint health and session affinity). */
#ifndef SG_UPSTREAM_H
#define SG_UPSTREAM_H

#include "config/config.h"
#include "core/worker.h"

/* What a request brings to the choice of endpoint. */
typedef struct sg_pick_ctx {
    sg_str_t hash_key;          /* ring-hash key: the hash header, the affinity cookie or the client address */
    sg_str_t affinity;          /* value of the rule's affinity cookie, when the request has one */
} sg_pick_ctx_t;

/* Picks a backendRef by weight; weight 0 is never chosen. Returns NULL when the rule has no backend
 * with a positive weight, or when the one picked has no endpoint (unresolvable: HTTP 500). */
const sg_backend_t *sg_upstream_pick_backend(sg_worker_t *w, const sg_rule_t *rule);

/* Picks a usable endpoint of b (which has at least one) by its strategy. When no endpoint is usable, picks
 * among all of them (better an attempt than a certain failure). */
const sg_endpoint_t *sg_upstream_pick_endpoint(sg_worker_t *w, const sg_backend_t *b, const sg_pick_ctx_t *ctx);

/* Another usable endpoint of b than `not`, or NULL when b has no other. */
const sg_endpoint_t *sg_upstream_pick_other(sg_worker_t *w, const sg_backend_t *b, const sg_endpoint_t *not);

/* The endpoint of the rule's backends whose affinity token is `token`, if it is usable; sets *backend. */
const sg_endpoint_t *sg_upstream_find_affinity(sg_worker_t *w, const sg_rule_t *rule, sg_str_t token,
                                               const sg_backend_t **backend);

/* Writes the affinity token of ep (16 hex digits) into out (>= 17 bytes); returns 16. */
size_t sg_upstream_affinity_token(const sg_endpoint_t *ep, char *out);

/* FNV-1a, 64 bits. */
uint64_t sg_upstream_hash(const void *p, size_t n, uint64_t seed);

#endif
