/* upstream.c: weighted backend choice; endpoint choice by strategy (round-robin, weighted, least-request with
 * two random choices, ring-hash as rendezvous hashing), skipping unhealthy endpoints; affinity tokens. */
#include <stdio.h>

#include "proxy/health.h"
#include "proxy/upstream.h"

uint64_t sg_upstream_hash(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    /* Final avalanche (from MurmurHash3's fmix64): FNV alone mixes the last bytes poorly. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

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

static bool usable(const sg_worker_t *w, const sg_endpoint_t *ep)
{
    return sg_health_usable(ep->health, w->loop.now_ms);
}

static size_t count_usable(const sg_worker_t *w, const sg_backend_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nendpoints; i++)
        n += usable(w, &b->endpoints[i]) ? 1 : 0;
    return n;
}

/* The k-th usable endpoint (k < count_usable), or the k-th of all when all_ok. */
static const sg_endpoint_t *nth(const sg_worker_t *w, const sg_backend_t *b, size_t k, bool all_ok)
{
    for (size_t i = 0; i < b->nendpoints; i++) {
        if (!all_ok && !usable(w, &b->endpoints[i]))
            continue;
        if (k-- == 0)
            return &b->endpoints[i];
    }
    return &b->endpoints[0];
}

static const sg_endpoint_t *ring_hash(const sg_worker_t *w, const sg_backend_t *b, sg_str_t key, bool all_ok)
{
    /* Rendezvous (highest random weight) hashing: every endpoint scores hash(key, endpoint) and the highest
     * wins. Consistent like a ring (removing an endpoint moves only its own keys) with no ring to build or
     * keep per generation; O(endpoints) per pick. */
    uint64_t kh = sg_upstream_hash(key.p, key.n, 0);
    const sg_endpoint_t *best = NULL;
    uint64_t best_score = 0;
    for (size_t i = 0; i < b->nendpoints; i++) {
        const sg_endpoint_t *ep = &b->endpoints[i];
        if (!all_ok && !usable(w, ep))
            continue;
        uint64_t score = sg_upstream_hash(ep->label, strlen(ep->label), kh);
        if (best == NULL || score > best_score) {
            best = ep;
            best_score = score;
        }
    }
    return best ? best : &b->endpoints[0];
}

const sg_endpoint_t *sg_upstream_pick_endpoint(sg_worker_t *w, const sg_backend_t *b, const sg_pick_ctx_t *ctx)
{
    size_t n = count_usable(w, b);
    bool all_ok = n == 0; /* nothing usable: choose among all rather than fail for sure */
    if (all_ok)
        n = b->nendpoints;
    if (n == 1)
        return nth(w, b, 0, all_ok);

    switch (b->lb) {
    case SG_LB_LEAST_REQUEST: {
        /* Power of two choices on open streams (all workers): long-lived SSE streams spread evenly without
         * the herd effect of always taking the global minimum. */
        size_t i = (size_t)(sg_worker_rand(w) % n);
        size_t j = (size_t)(sg_worker_rand(w) % (n - 1));
        if (j >= i)
            j++;
        const sg_endpoint_t *a = nth(w, b, i, all_ok), *c = nth(w, b, j, all_ok);
        int aa = sg_health_active(a->health), ca = sg_health_active(c->health);
        return ca < aa ? c : a;
    }
    case SG_LB_RING_HASH:
        return ring_hash(w, b, ctx ? ctx->hash_key : (sg_str_t){"", 0}, all_ok);
    case SG_LB_WEIGHTED:   /* endpoints carry no weight: backendRef weights already applied */
    case SG_LB_ROUND_ROBIN:
    default:
        return nth(w, b, (size_t)(w->rr++ % n), all_ok);
    }
}

const sg_endpoint_t *sg_upstream_pick_other(sg_worker_t *w, const sg_backend_t *b, const sg_endpoint_t *not)
{
    size_t n = 0;
    for (size_t i = 0; i < b->nendpoints; i++)
        if (&b->endpoints[i] != not && usable(w, &b->endpoints[i]))
            n++;
    if (n == 0)
        return NULL;
    size_t k = (size_t)(sg_worker_rand(w) % n);
    for (size_t i = 0; i < b->nendpoints; i++) {
        const sg_endpoint_t *ep = &b->endpoints[i];
        if (ep == not || !usable(w, ep))
            continue;
        if (k-- == 0)
            return ep;
    }
    return NULL;
}

size_t sg_upstream_affinity_token(const sg_endpoint_t *ep, char *out)
{
    uint64_t h = sg_upstream_hash(ep->label, strlen(ep->label), 0x5347);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return 16;
}

const sg_endpoint_t *sg_upstream_find_affinity(sg_worker_t *w, const sg_rule_t *rule, sg_str_t token,
                                               const sg_backend_t **backend)
{
    char t[17];
    if (token.n != 16)
        return NULL;
    for (size_t i = 0; i < rule->nbackends; i++) {
        const sg_backend_t *b = &rule->backends[i];
        if (b->weight == 0)
            continue;
        for (size_t j = 0; j < b->nendpoints; j++) {
            sg_upstream_affinity_token(&b->endpoints[j], t);
            if (memcmp(t, token.p, 16) == 0) {
                if (!usable(w, &b->endpoints[j]))
                    return NULL;
                *backend = b;
                return &b->endpoints[j];
            }
        }
    }
    return NULL;
}
