/* config_patch.c: a generation made from another by resolving some Services' endpoints anew (patch.h). The copy is
 * shallow where nothing changes: routes, rules and backendRefs are copied as structs (their strings, matches,
 * filters, policies and TLS contexts stay the full load's, which the patch references), endpoint arrays are copied
 * (or resolved), and the route tables are copied with their entries pointed at the copies. */
#include "config/config_int.h"

#include <stdlib.h>

#include "config/patch.h"
#include "config/route.h"

/* The endpoints of a backendRef the patch does not touch: copied field by field (the main thread writes the health
 * pointers of a published generation, so the struct as a whole is not read), without health (sg_health_attach sets
 * it for the new generation). */
static void copy_endpoints(loader_t *ld, sg_backend_t *to, const sg_backend_t *from)
{
    to->endpoints = from->nendpoints ? aalloc(ld, from->nendpoints * sizeof(*to->endpoints)) : NULL;
    for (size_t i = 0; i < from->nendpoints; i++) {
        const sg_endpoint_t *f = &from->endpoints[i];
        sg_endpoint_t *t = &to->endpoints[i];
        memcpy(&t->addr, &f->addr, sizeof(t->addr));
        t->addrlen = f->addrlen;
        memcpy(t->label, f->label, sizeof(t->label));
    }
    to->nendpoints = from->nendpoints;
}

static bool is_kind(struct fy_document *d, const char *want)
{
    struct fy_node *k = d ? field(fy_document_root(d), "kind") : NULL;
    size_t len;
    const char *s = k && fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar(k, &len) : NULL;
    return s != NULL && len == strlen(want) && memcmp(s, want, len) == 0;
}

static int patch(loader_t *ld, sg_config_t *base, struct fy_document *const *docs, size_t ndocs, sg_config_t **out)
{
    for (size_t i = 0; i < ndocs; i++) {
        if (!is_kind(docs[i], "Service") && !is_kind(docs[i], "EndpointSlice"))
            return -EAGAIN;
        sg__config_parse_doc(ld, fy_document_root(docs[i]));
        ld->docno++;
    }
    if (ld->nerr > 0 || ld->nwarn > 0)
        return -EAGAIN;
    sg__config_index_services(ld);
    sg_config_t *cfg = aalloc(ld, sizeof(*cfg));
    atomic_init(&cfg->refs, 1);
    cfg->priv = ld->priv;
    cfg->binds = base->binds;
    cfg->nbinds = base->nbinds;
    cfg->upstream_tls = base->upstream_tls;
    cfg->nupstream_tls = base->nupstream_tls;
    cfg->nshared_rules = base->nshared_rules;
    cfg->nlisteners = base->nlisteners;
    cfg->listeners = aalloc(ld, (base->nlisteners + 1) * sizeof(*cfg->listeners));
    for (size_t i = 0; i < base->nlisteners; i++) {
        cfg->listeners[i] = base->listeners[i];
        cfg->listeners[i].table = NULL;
    }
    cfg->nroutes = base->nroutes;
    cfg->routes = aalloc(ld, (base->nroutes + 1) * sizeof(*cfg->routes));
    for (size_t i = 0; i < base->nroutes; i++) {
        sg_route_t *rt = &cfg->routes[i];
        *rt = base->routes[i];
        rt->rules = aalloc(ld, (rt->nrules + 1) * sizeof(*rt->rules));
        for (size_t j = 0; j < rt->nrules; j++) {
            sg_rule_t *r = &rt->rules[j];
            *r = base->routes[i].rules[j];
            r->route = rt;
            r->backends = aalloc(ld, (r->nbackends + 1) * sizeof(*r->backends));
            r->total_weight = 0;
            for (size_t k = 0; k < r->nbackends; k++) {
                sg_backend_t *b = &r->backends[k];
                *b = base->routes[i].rules[j].backends[k];
                /* As resolve_backends: a backendRef with no name or not permitted is never resolved nor weighed. */
                if (b->name == NULL || b->not_permitted) {
                    copy_endpoints(ld, b, &base->routes[i].rules[j].backends[k]);
                    continue;
                }
                if (sg__config_find_svc(ld, b->ns, b->name) == NULL)
                    copy_endpoints(ld, b, &base->routes[i].rules[j].backends[k]);
                else if (sg__config_resolve_patched(ld, b, r) < 0)
                    return -EAGAIN;
                if (b->nendpoints > 0)
                    r->total_weight += b->weight;
            }
        }
    }
    priv_t *bp = base->priv;
    sg_config_t *root = bp->root != NULL ? bp->root : base;
    /* Endpoints do not change which routes a listener takes nor how they are ordered: the base's tables are copied
     * with their entries pointed at the copied routes and rules, not compiled again. */
    int rc = 0;
    for (size_t i = 0; i < cfg->nlisteners && rc == 0; i++)
        rc = sg_route_table_rebase(base->listeners[i].table, base, cfg, &cfg->listeners[i].table);
    if (rc != 0 || ld->nerr > 0 || ld->nwarn > 0) {
        for (size_t i = 0; i < cfg->nlisteners; i++)
            sg_route_table_free(cfg->listeners[i].table);
        return rc == -ENOMEM ? -ENOMEM : -EAGAIN;
    }
    sg_config_ref(root);
    ld->priv->root = root;
    *out = cfg;
    return 0;
}

int sg_config_patch_endpoints(sg_config_t *base, struct fy_document *const *docs, size_t ndocs, sg_config_t **out)
{
    *out = NULL;
    if (base == NULL)
        return -EAGAIN;
    loader_t *ld = calloc(1, sizeof(*ld));
    if (ld == NULL)
        return -ENOMEM;
    ld->file = "patch";
    ld->flags = SG_CONFIG_NO_DNS;
    ld->priv = calloc(1, sizeof(priv_t));
    int rc = -ENOMEM;
    if (ld->priv != NULL) {
        if (setjmp(ld->oom) == 0)
            rc = patch(ld, base, docs, ndocs, out);
        else
            rc = -ENOMEM;
    }
    if (rc != 0) {
        sg__config_free_priv(ld->priv);
        *out = NULL;
    }
    free(ld);
    return rc;
}
