/* epgone.c: SSE streams whose endpoint left the config (SSEPolicy onEndpointRemoved: Close). Endpoints are
 * objects of one generation, so a stream's endpoint is looked for in the new one by address and port, among the
 * endpoints of every backendRef to the same Service port. */
#include <netinet/in.h>
#include <string.h>

#include "core/log.h"
#include "proxy/epgone.h"
#include "proxy/proxy.h"

static bool same_addr(const sg_endpoint_t *a, const sg_endpoint_t *b)
{
    if (a->addr.ss_family != b->addr.ss_family)
        return false;
    if (a->addr.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;
        return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* Is ep an endpoint of backend be (its Service port) in cfg? A Service no route refers to any more has none. */
static bool still_there(const sg_config_t *cfg, const sg_backend_t *be, const sg_endpoint_t *ep)
{
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const sg_route_t *rt = &cfg->routes[i];
        for (size_t j = 0; j < rt->nrules; j++) {
            const sg_rule_t *r = &rt->rules[j];
            for (size_t k = 0; k < r->nbackends; k++) {
                const sg_backend_t *b = &r->backends[k];
                if (b->port != be->port || strcmp(b->name, be->name) != 0 || strcmp(b->ns, be->ns) != 0)
                    continue;
                for (size_t e = 0; e < b->nendpoints; e++)
                    if (same_addr(&b->endpoints[e], ep))
                        return true;
            }
        }
    }
    return false;
}

/* The policy in force for rule now: that of the same rule (route kind, namespace, name, rule position) in cfg, so
 * that a policy applied after a stream started governs it too; the stream's own when its route is gone. */
static const sg_sse_policy_t *policy_now(const sg_config_t *cfg, const sg_rule_t *rule)
{
    const sg_route_t *rt = rule->route;
    if (rt == NULL)
        return rule->ssep;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const sg_route_t *o = &cfg->routes[i];
        if (o->kind == rt->kind && strcmp(o->name, rt->name) == 0 && strcmp(o->ns, rt->ns) == 0)
            return rule->index < o->nrules ? o->rules[rule->index].ssep : rule->ssep;
    }
    return rule->ssep;
}

static bool closes(const sg_sse_policy_t *p)
{
    return p != NULL && p->on_ep_removed == SG_SSE_EP_CLOSE;
}

void sg_epgone_adopted(sg_worker_t *w, const sg_config_t *next)
{
    if (w->streams.next == NULL)
        return;
    /* Without any Close in the new generation, a stream needs looking at only when its own rule said Close (its
     * route may be gone) or an end is planned for it: a reload costs a walk of the list, no lookups. */
    bool any_close = false;
    for (size_t i = 0; i < next->nroutes && !any_close; i++)
        for (size_t j = 0; j < next->routes[i].nrules && !any_close; j++)
            any_close = closes(next->routes[i].rules[j].ssep);
    /* Streams of one rule and one endpoint often follow each other: the last answers are kept. */
    const sg_rule_t *last_rule = NULL;
    const sg_sse_policy_t *last_p = NULL;
    const sg_backend_t *last_be = NULL;
    const sg_endpoint_t *last_ep = NULL;
    bool last_there = false;
    size_t nplanned = 0, ncancelled = 0;
    /* Planning never ends a stream within the call, so the walk is safe. */
    for (sg_list_t *n = w->streams.next; n != &w->streams; n = n->next) {
        sg_stream_t *s = sg_proxy_stream_of(n);
        const sg_rule_t *rule;
        const sg_backend_t *be;
        const sg_endpoint_t *ep;
        bool planned;
        if (!sg_proxy_ep_of(s, &rule, &be, &ep, &planned))
            continue;
        const sg_sse_policy_t *p = NULL;
        if (any_close || closes(rule->ssep)) {
            if (rule != last_rule) {
                last_rule = rule;
                last_p = policy_now(next, rule);
            }
            p = last_p;
        }
        if (!closes(p)) {
            if (planned) /* the policy in force no longer asks for it */
                sg_proxy_plan_end(s, 0);
            continue;
        }
        if (be != last_be || ep != last_ep) {
            last_be = be;
            last_ep = ep;
            last_there = still_there(next, be, ep);
        }
        bool there = last_there;
        if (there && planned) {
            sg_proxy_plan_end(s, 0);
            ncancelled++;
        } else if (!there && !planned) {
            /* In the second half of `after`: an endpoint that is back within the first half (an EndpointSlice
             * briefly without it, a reload corrected at once) never costs a stream, and the ends are spread over
             * the second half. */
            uint64_t after = p->ep_removed_after_ms > 0 ? (uint64_t)p->ep_removed_after_ms : 0;
            uint64_t half = after / 2, spread = after - half;
            uint64_t at = w->loop.now_ms + half + (spread ? sg_worker_rand(w) % spread : 0);
            sg_proxy_plan_end(s, at ? at : 1);
            nplanned++;
        }
    }
    if (nplanned > 0)
        sg_log_info("worker %d: generation %llu: %zu SSE streams on removed endpoints end within "
                    "onEndpointRemoved.after", w->id, (unsigned long long)next->generation, nplanned);
    if (ncancelled > 0)
        sg_log_info("worker %d: generation %llu: %zu SSE streams keep running (their endpoints are back)", w->id,
                    (unsigned long long)next->generation, ncancelled);
}
