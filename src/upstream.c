/* upstream.c: weighted backend choice and endpoint choice. */
#include "upstream.h"

const sg_backend_t *sg_upstream_pick_backend(sg_worker_t *w, const sg_rule_t *rule)
{
    uint64_t total = 0;
    for (size_t i = 0; i < rule->nbackends; i++)
        total += rule->backends[i].weight;
    if (total == 0)
        return NULL;
    uint64_t r = sg_worker_rand(w) % total;
    for (size_t i = 0; i < rule->nbackends; i++) {
        const sg_backend_t *b = &rule->backends[i];
        if (r < b->weight)
            return b->nendpoints > 0 ? b : NULL;
        r -= b->weight;
    }
    return NULL;
}

const sg_endpoint_t *sg_upstream_pick_other(sg_worker_t *w, const sg_backend_t *b, const sg_endpoint_t *not)
{
    if (b->nendpoints < 2)
        return NULL;
    size_t skip = (size_t)(not - b->endpoints);
    size_t k = (size_t)(sg_worker_rand(w) % (b->nendpoints - 1));
    return &b->endpoints[k >= skip ? k + 1 : k];
}

const sg_endpoint_t *sg_upstream_pick_endpoint(sg_worker_t *w, const sg_backend_t *b)
{
    if (b->nendpoints == 1)
        return &b->endpoints[0];
    return &b->endpoints[sg_worker_rand(w) % b->nendpoints];
}
