/* config_ns.c: namespace boundaries: Namespace and ReferenceGrant documents, listener allowedRoutes (Same, All,
 * Selector; kinds), and the ReferenceGrants that certificateRefs and backendRefs to other namespaces need. */
#include "config/config_int.h"

#include <stdio.h>
#include <string.h>

#define GW_GROUP "gateway.networking.k8s.io"
#define NS_NAME_LABEL "kubernetes.io/metadata.name"

/* A mapping of string keys to string values (labels, matchLabels) into an arena array. */
static void parse_string_map(loader_t *ld, struct fy_node *m, const char *what, pos_t at, sg_kv_t **out,
                             size_t *n)
{
    size_t cap = 0;
    void *it = NULL;
    struct fy_node_pair *pr;
    while (m && (pr = fy_node_mapping_iterate(m, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pr);
        char *key = scalar_str(ld, k, what, at);
        char *val = scalar_str(ld, fy_node_pair_value(pr), what, npos(k, at));
        if (key == NULL || val == NULL)
            continue;
        sg_kv_t *kv = VPUSH(ld, *out, *n, cap);
        kv->name = key;
        kv->value = val;
    }
}

/* ---- Namespace ---- */

void sg__config_parse_namespace(loader_t *ld, struct fy_node *root, pos_t at)
{
    check_keys(ld, root, "Namespace", KEYS("apiVersion", "kind", "metadata", "spec", "status"));
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    for (size_t i = 0; i < ld->nnss; i++)
        if (strcmp(ld->nss[i].name, md.name) == 0) {
            ERR(ld, at, "duplicate Namespace %s (first at line %d)", md.name, ld->nss[i].pos.line);
            return;
        }
    nsdef_t *ns = VPUSH(ld, ld->nss, ld->nnss, ld->capnss);
    ns->name = md.name;
    ns->pos = at;
    parse_string_map(ld, md.labels, "metadata.labels", at, &ns->labels, &ns->nlabels);
}

/* The value of label key on namespace ns, or NULL. A namespace the config does not describe has only the label
 * the API server gives every namespace, kubernetes.io/metadata.name. */
static const char *ns_label(const loader_t *ld, const char *ns, const char *key)
{
    if (strcmp(key, NS_NAME_LABEL) == 0)
        return ns;
    for (size_t i = 0; i < ld->nnss; i++) {
        if (strcmp(ld->nss[i].name, ns) != 0)
            continue;
        for (size_t j = 0; j < ld->nss[i].nlabels; j++)
            if (strcmp(ld->nss[i].labels[j].name, key) == 0)
                return ld->nss[i].labels[j].value;
    }
    return NULL;
}

/* ---- label selectors ---- */

static struct sg_selector *parse_selector(loader_t *ld, struct fy_node *sel, pos_t at)
{
    check_keys(ld, sel, "selector", KEYS("matchLabels", "matchExpressions"));
    struct sg_selector *s = aalloc(ld, sizeof(*s));
    struct fy_node *ml = get_map(ld, sel, "matchLabels", false, at);
    parse_string_map(ld, ml, "matchLabels", npos(ml, at), &s->match, &s->nmatch);
    struct fy_node *me = get_seq(ld, sel, "matchExpressions", false, at);
    size_t cap = 0;
    void *it = NULL;
    struct fy_node *e;
    while (me && (e = fy_node_sequence_iterate(me, &it)) != NULL) {
        pos_t ep = npos(e, at);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, ep, "matchExpressions[]: expected a mapping");
            continue;
        }
        check_keys(ld, e, "matchExpressions[]", KEYS("key", "operator", "values"));
        char *key = get_str(ld, e, "key", true, ep);
        char *op = get_str(ld, e, "operator", true, ep);
        if (key == NULL || op == NULL)
            continue;
        selreq_t rq = {.key = key};
        if (strcmp(op, "In") == 0) {
            rq.op = SEL_IN;
        } else if (strcmp(op, "NotIn") == 0) {
            rq.op = SEL_NOT_IN;
        } else if (strcmp(op, "Exists") == 0) {
            rq.op = SEL_EXISTS;
        } else if (strcmp(op, "DoesNotExist") == 0) {
            rq.op = SEL_DOES_NOT_EXIST;
        } else {
            ERR(ld, npos(field(e, "operator"), ep), "matchExpressions operator \"%s\" is not In, NotIn, Exists or "
                "DoesNotExist", op);
            continue;
        }
        struct fy_node *vs = get_seq(ld, e, "values", false, ep);
        size_t vcap = 0;
        void *it2 = NULL;
        struct fy_node *v;
        while (vs && (v = fy_node_sequence_iterate(vs, &it2)) != NULL) {
            char *val = scalar_str(ld, v, "values[]", ep);
            if (val != NULL)
                *VPUSH(ld, rq.values, rq.nvalues, vcap) = val;
        }
        bool want_values = rq.op == SEL_IN || rq.op == SEL_NOT_IN;
        if (want_values && rq.nvalues == 0) {
            ERR(ld, ep, "matchExpressions operator %s needs a non-empty values list", op);
            continue;
        }
        if (!want_values && vs != NULL && seq_len(vs) > 0) {
            ERR(ld, ep, "matchExpressions operator %s takes no values", op);
            continue;
        }
        *VPUSH(ld, s->exprs, s->nexprs, cap) = rq;
    }
    return s;
}

/* Kubernetes label selector semantics: every matchLabels pair and every expression must hold; {} matches all. */
static bool selector_matches(const loader_t *ld, const struct sg_selector *s, const char *ns)
{
    for (size_t i = 0; i < s->nmatch; i++) {
        const char *v = ns_label(ld, ns, s->match[i].name);
        if (v == NULL || strcmp(v, s->match[i].value) != 0)
            return false;
    }
    for (size_t i = 0; i < s->nexprs; i++) {
        const selreq_t *rq = &s->exprs[i];
        const char *v = ns_label(ld, ns, rq->key);
        bool in = false;
        for (size_t j = 0; v != NULL && j < rq->nvalues && !in; j++)
            in = strcmp(v, rq->values[j]) == 0;
        switch (rq->op) {
        case SEL_IN:
            if (!in)
                return false;
            break;
        case SEL_NOT_IN:
            if (in)
                return false;
            break;
        case SEL_EXISTS:
            if (v == NULL)
                return false;
            break;
        case SEL_DOES_NOT_EXIST:
            if (v != NULL)
                return false;
            break;
        }
    }
    return true;
}

/* ---- listener allowedRoutes ---- */

void sg__config_parse_allowed_routes(loader_t *ld, sg_listener_t *li, struct fy_node *ar, pos_t at)
{
    li->allow_from = SG_ALLOW_SAME;
    li->allow_kinds = SG_ROUTE_KINDS_ALL;
    if (ar == NULL || nnull(ar))
        return;
    if (fy_node_get_type(ar) != FYNT_MAPPING) {
        ERR(ld, npos(ar, at), "allowedRoutes: expected a mapping");
        return;
    }
    pos_t ap = npos(ar, at);
    check_keys(ld, ar, "allowedRoutes", KEYS("namespaces", "kinds"));
    struct fy_node *ns = get_map(ld, ar, "namespaces", false, ap);
    if (ns != NULL) {
        pos_t np = npos(ns, ap);
        check_keys(ld, ns, "allowedRoutes.namespaces", KEYS("from", "selector"));
        char *from = get_str(ld, ns, "from", false, np);
        struct fy_node *sel = get_map(ld, ns, "selector", false, np);
        if (from == NULL || strcmp(from, "Same") == 0) {
            li->allow_from = SG_ALLOW_SAME;
        } else if (strcmp(from, "All") == 0) {
            li->allow_from = SG_ALLOW_ALL;
        } else if (strcmp(from, "Selector") == 0) {
            li->allow_from = SG_ALLOW_SELECTOR;
            if (sel == NULL)
                ERR(ld, npos(field(ns, "from"), np), "allowedRoutes.namespaces.from Selector needs a selector");
            else
                li->selector = parse_selector(ld, sel, npos(sel, np));
        } else {
            ERR(ld, npos(field(ns, "from"), np), "allowedRoutes.namespaces.from \"%s\" is not Same, All or Selector",
                from);
        }
        /* A selector that would not be used must not look as if it were (fail closed). */
        if (sel != NULL && li->allow_from != SG_ALLOW_SELECTOR)
            ERR(ld, npos(sel, np), "allowedRoutes.namespaces.selector applies only with from: Selector");
    }
    /* ssegate serves HTTPRoute and GRPCRoute on HTTP and HTTPS listeners (both by default, as the spec's defaults
     * for those protocols); a listener that lists another kind would not get it (Gateway API: ResolvedRefs False,
     * InvalidRouteKinds), so the config is refused rather than half served. */
    struct fy_node *kinds = get_seq(ld, ar, "kinds", false, ap);
    void *it = NULL;
    struct fy_node *k;
    if (kinds != NULL)
        li->allow_kinds = 0;
    while (kinds && (k = fy_node_sequence_iterate(kinds, &it)) != NULL) {
        pos_t kp = npos(k, ap);
        if (fy_node_get_type(k) != FYNT_MAPPING) {
            ERR(ld, kp, "allowedRoutes.kinds[]: expected a mapping");
            continue;
        }
        check_keys(ld, k, "allowedRoutes.kinds[]", KEYS("group", "kind"));
        char *group = get_str(ld, k, "group", false, kp);
        char *kind = get_str(ld, k, "kind", true, kp);
        if (kind == NULL)
            continue;
        bool gw = group == NULL || strcmp(group, GW_GROUP) == 0;
        if (gw && strcmp(kind, "HTTPRoute") == 0)
            li->allow_kinds |= 1u << SG_ROUTE_HTTP;
        else if (gw && strcmp(kind, "GRPCRoute") == 0)
            li->allow_kinds |= 1u << SG_ROUTE_GRPC;
        else
            ERR(ld, kp, "listener \"%s\": allowedRoutes kind %s/%s is not served (InvalidRouteKinds): ssegate "
                "serves %s/HTTPRoute and %s/GRPCRoute", li->name, group ? group : GW_GROUP, kind, GW_GROUP, GW_GROUP);
    }
    if (kinds != NULL && seq_len(kinds) == 0)
        ERR(ld, npos(kinds, ap), "listener \"%s\": allowedRoutes.kinds is empty, so no route could attach "
            "(InvalidRouteKinds)", li->name);
}

/* ---- ReferenceGrant ---- */

void sg__config_parse_refgrant(loader_t *ld, struct fy_node *root, pos_t at)
{
    check_keys(ld, root, "ReferenceGrant", KEYS("apiVersion", "kind", "metadata", "spec"));
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "ReferenceGrant spec", KEYS("from", "to"));
    struct fy_node *from = get_seq(ld, spec, "from", true, sp);
    struct fy_node *to = get_seq(ld, spec, "to", true, sp);
    if (from == NULL || to == NULL)
        return;
    grant_t g = {.ns = md.ns, .name = md.name, .pos = at};
    size_t cap = 0;
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(from, &it)) != NULL) {
        pos_t ep = npos(e, sp);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, ep, "ReferenceGrant from[]: expected a mapping");
            continue;
        }
        check_keys(ld, e, "ReferenceGrant from[]", KEYS("group", "kind", "namespace"));
        grant_from_t f = {get_str(ld, e, "group", true, ep), get_str(ld, e, "kind", true, ep),
                          get_str(ld, e, "namespace", true, ep)};
        if (f.group && f.kind && f.ns)
            *VPUSH(ld, g.from, g.nfrom, cap) = f;
    }
    cap = 0;
    it = NULL;
    while ((e = fy_node_sequence_iterate(to, &it)) != NULL) {
        pos_t ep = npos(e, sp);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, ep, "ReferenceGrant to[]: expected a mapping");
            continue;
        }
        check_keys(ld, e, "ReferenceGrant to[]", KEYS("group", "kind", "name"));
        grant_to_t t = {get_str(ld, e, "group", true, ep), get_str(ld, e, "kind", true, ep),
                        get_str(ld, e, "name", false, ep)};
        if (t.group && t.kind)
            *VPUSH(ld, g.to, g.nto, cap) = t;
    }
    *VPUSH(ld, ld->grants, ld->ngrants, ld->capgrants) = g;
}

/* See config_int.h. */
bool granted(const loader_t *ld, const char *from_group, const char *from_kind, const char *from_ns,
             const char *to_ns, const char *to_group, const char *to_kind, const char *to_name)
{
    for (size_t i = 0; i < ld->ngrants; i++) {
        const grant_t *g = &ld->grants[i];
        if (strcmp(g->ns, to_ns) != 0)
            continue;
        bool from_ok = false, to_ok = false;
        for (size_t j = 0; j < g->nfrom && !from_ok; j++)
            from_ok = strcmp(g->from[j].group, from_group) == 0 && strcmp(g->from[j].kind, from_kind) == 0 &&
                      strcmp(g->from[j].ns, from_ns) == 0;
        for (size_t j = 0; j < g->nto && !to_ok; j++)
            to_ok = strcmp(g->to[j].group, to_group) == 0 && strcmp(g->to[j].kind, to_kind) == 0 &&
                    (g->to[j].name == NULL || strcmp(g->to[j].name, to_name) == 0);
        if (from_ok && to_ok)
            return true;
    }
    return false;
}

/* ---- once every document is read ---- */

static void add_allowed(loader_t *ld, sg_listener_t *li, const char *ns, size_t *cap)
{
    for (size_t i = 0; i < li->nallow_ns; i++)
        if (strcmp(li->allow_ns[i], ns) == 0)
            return;
    if (selector_matches(ld, li->selector, ns))
        *VPUSH(ld, li->allow_ns, li->nallow_ns, *cap) = (char *)ns;
}

void sg__config_apply_namespaces(loader_t *ld)
{
    for (size_t i = 0; i < ld->nlis; i++) {
        sg_listener_t *li = &ld->lis[i];
        if (li->allow_from == SG_ALLOW_SELECTOR && li->selector != NULL) {
            size_t cap = 0;
            for (size_t r = 0; r < ld->nroutes; r++)
                add_allowed(ld, li, ld->routes[r].ns, &cap);
        }
        for (size_t c = 0; c < li->ncert_refs; c++) {
            const char *ref = li->cert_refs[c], *slash = strchr(ref, '/');
            size_t nslen = (size_t)(slash - ref);
            if (strlen(li->ns) == nslen && strncmp(ref, li->ns, nslen) == 0)
                continue;
            char *ns = astrndup(ld, ref, nslen);
            if (!granted(ld, GW_GROUP, "Gateway", li->ns, ns, "", "Secret", slash + 1))
                ERR(ld, ((pos_t){li->line, li->col}), "listener \"%s\": certificateRef to Secret %s is not permitted "
                    "(RefNotPermitted): no ReferenceGrant in namespace \"%s\" lets Gateways of namespace \"%s\" refer "
                    "to it", li->name, ref, ns, li->ns);
        }
    }
    for (size_t r = 0; r < ld->nroutes; r++) {
        sg_route_t *rt = &ld->routes[r];
        for (size_t j = 0; j < rt->nrules; j++) {
            sg_rule_t *rule = &rt->rules[j];
            for (size_t k = 0; k < rule->nbackends; k++) {
                sg_backend_t *b = &rule->backends[k];
                if (b->name == NULL || b->ns == NULL || strcmp(b->ns, rt->ns) == 0)
                    continue;
                const char *kind = rt->kind == SG_ROUTE_GRPC ? "GRPCRoute" : "HTTPRoute";
                if (granted(ld, GW_GROUP, kind, rt->ns, b->ns, "", "Service", b->name))
                    continue;
                b->not_permitted = true;
                WARN(ld, ((pos_t){b->line, b->col}), "%s %s/%s: backendRef to Service %s/%s is not permitted "
                     "(RefNotPermitted): no ReferenceGrant in namespace \"%s\" lets %ss of namespace \"%s\" "
                     "refer to it; requests sent to it get %s", kind, rt->ns, rt->name, b->ns, b->name, b->ns, kind,
                     rt->ns, rt->kind == SG_ROUTE_GRPC ? "grpc-status 14 (UNAVAILABLE)" : "500");
            }
        }
    }
}
