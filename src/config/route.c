/* route.c: HTTPRoutes compiled into per-listener tables in Gateway API precedence order; matching. Pure. */
#include "config/route.h"
#include "core/escape.h"

#include <stdio.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/*
 * Layout. A listener's table holds one group per effective hostname (route hostnames intersected with the
 * listener's), plus a catch-all group. A request tries its exact-host group, then wildcard groups from the
 * most to the least specific suffix, then the catch-all group, and stops at the first group with a match:
 * that is the spec's hostname precedence across routes.
 *
 * Inside a group, entries (one per route x rule x match) are sorted by precedence: Exact paths, then
 * RegularExpression paths (longer pattern first), then PathPrefix (longer prefix first); ties go to
 * method, most headers, most query params, oldest route, namespace/name, rule index, match index. Exact
 * paths and prefixes are hashed, so a lookup costs one probe for the exact path and one per '/' of the
 * request path, plus the regex entries.
 */

enum { CAT_EXACT = 0, CAT_REGEX = 1, CAT_PREFIX = 2, CAT_GRPC = 3 };

typedef struct entry {
    const sg_route_t *route;
    const sg_rule_t *rule;
    const sg_match_t *match;
    const char *key;            /* path value; for prefixes without its trailing '/' */
    uint32_t keylen;
    uint32_t rawlen;            /* path value length as written (precedence among equal keys) */
    int cat;
    uint32_t slen, mlen;        /* CAT_GRPC: characters of the service and method matched (pattern lengths for
                                 * RegularExpression), the spec's precedence */
} entry_t;

typedef struct bucket {
    const char *key;
    uint32_t keylen;
    uint32_t hash;
    uint32_t start, count;      /* entries range (groups: group index in start); count 0 = empty slot */
} bucket_t;

typedef struct htab {
    bucket_t *slots;
    uint32_t mask;
} htab_t;

typedef struct group {
    const char *host;           /* exact host, "*.suffix", or NULL for the catch-all */
    entry_t *entries;
    size_t nentries, cap;
    htab_t exact, prefix;
    uint32_t regex_start, regex_count;
    uint32_t grpc_start, grpc_count; /* GRPCRoute entries, tried in order before the others */
} group_t;

struct sg_route_table {
    group_t *groups;
    size_t ngroups, cap;
    htab_t hosts;               /* exact host -> group */
    htab_t wilds;               /* ".suffix" of "*.suffix" -> group */
    int catchall;               /* group index or -1 */
};

typedef struct scratch {
    pcre2_match_data *md;
    pcre2_match_context *mc;
} scratch_t;

static const sg_match_t default_match = {.path_type = SG_MATCH_PREFIX, .path = (char *)"/"};

/* ---- hashing ---- */

static uint32_t hash_bytes(const char *p, size_t n, bool fold)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)(fold ? sg_lower(p[i]) : p[i]);
        h *= 16777619u;
    }
    return h;
}

static const bucket_t *htab_get(const htab_t *t, const char *k, size_t n, uint32_t h, bool fold)
{
    if (t->slots == NULL)
        return NULL;
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        const bucket_t *b = &t->slots[i];
        if (b->count == 0)
            return NULL;
        if (b->hash == h && b->keylen == n &&
            (fold ? sg_str_ieq((sg_str_t){b->key, n}, (sg_str_t){k, n}) : memcmp(b->key, k, n) == 0))
            return b;
    }
}

/* Inserts into a table sized for at least `n` keys (built once: size fixed by the caller). */
static int htab_init(htab_t *t, size_t n)
{
    size_t cap = 8;
    while (cap < n * 2)
        cap *= 2;
    t->slots = calloc(cap, sizeof(bucket_t));
    if (t->slots == NULL)
        return -ENOMEM;
    t->mask = (uint32_t)(cap - 1);
    return 0;
}

static bucket_t *htab_put(htab_t *t, const char *k, size_t n, bool fold)
{
    uint32_t h = hash_bytes(k, n, fold);
    for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
        bucket_t *b = &t->slots[i];
        if (b->count == 0) {
            b->key = k;
            b->keylen = (uint32_t)n;
            b->hash = h;
            return b;
        }
        if (b->hash == h && b->keylen == n &&
            (fold ? sg_str_ieq((sg_str_t){b->key, n}, (sg_str_t){k, n}) : memcmp(b->key, k, n) == 0))
            return b;
    }
}

/* ---- hostnames ---- */

/* Does host `h` (no port) match pattern `p` (exact, or "*.suffix" = one or more labels + suffix)? */
static bool host_match(const char *p, sg_str_t h)
{
    if (p[0] == '*') {
        size_t sl = strlen(p + 1); /* ".suffix" */
        return h.n > sl && sg_str_ieq((sg_str_t){h.p + h.n - sl, sl}, (sg_str_t){p + 1, sl});
    }
    return sg_str_ieq(sg_str_c(p), h);
}

/* Intersection of a route hostname and a listener hostname (NULL = any); NULL when disjoint. */
static const char *host_intersect(const char *route_h, const char *lis_h)
{
    if (lis_h == NULL)
        return route_h;
    if (strcmp(route_h, lis_h) == 0)
        return route_h;
    bool rw = route_h[0] == '*', lw = lis_h[0] == '*';
    if (!rw && !lw)
        return NULL;
    if (!rw)
        return host_match(lis_h, sg_str_c(route_h)) ? route_h : NULL;
    if (!lw)
        return host_match(route_h, sg_str_c(lis_h)) ? lis_h : NULL;
    /* both wildcards: the more specific one, if it falls inside the other */
    if (host_match(lis_h, sg_str_c(route_h + 2)))
        return route_h;
    if (host_match(route_h, sg_str_c(lis_h + 2)))
        return lis_h;
    return NULL;
}

/* ---- compile ---- */

/* GRPCRoute precedence (within one hostname group): most characters of service, then of method (an Exact
 * before a RegularExpression of the same length), most header matches; then the oldest route, namespace/name, rule
 * and match order. */
static int cmp_grpc(const entry_t *a, const entry_t *b)
{
    if (a->slen != b->slen)
        return a->slen > b->slen ? -1 : 1;
    if (a->mlen != b->mlen)
        return a->mlen > b->mlen ? -1 : 1;
    const sg_grpc_method_t *ga = a->match->grpc, *gb = b->match->grpc;
    int ta = ga ? (int)ga->type : 0, tb = gb ? (int)gb->type : 0;
    if (ta != tb)
        return ta - tb;
    if (a->match->nheaders != b->match->nheaders)
        return a->match->nheaders > b->match->nheaders ? -1 : 1;
    int c;
    if (a->route->order != b->route->order)
        return a->route->order < b->route->order ? -1 : 1;
    if ((c = strcmp(a->route->ns, b->route->ns)) != 0 || (c = strcmp(a->route->name, b->route->name)) != 0)
        return c;
    if (a->rule->index != b->rule->index)
        return a->rule->index < b->rule->index ? -1 : 1;
    if (a->match->index != b->match->index)
        return a->match->index < b->match->index ? -1 : 1;
    return 0;
}

static int cmp_entries(const void *pa, const void *pb)
{
    const entry_t *a = pa, *b = pb;
    if (a->cat != b->cat)
        return a->cat - b->cat;
    if (a->cat == CAT_GRPC)
        return cmp_grpc(a, b);
    if (a->cat != CAT_EXACT && a->keylen != b->keylen)
        return a->keylen > b->keylen ? -1 : 1;
    int c = a->keylen == b->keylen ? memcmp(a->key, b->key, a->keylen)
                                   : (a->keylen < b->keylen ? -1 : 1);
    if (c != 0)
        return c;
    if (a->rawlen != b->rawlen)
        return a->rawlen > b->rawlen ? -1 : 1;
    const sg_match_t *ma = a->match, *mb = b->match;
    if ((ma->method != NULL) != (mb->method != NULL))
        return ma->method != NULL ? -1 : 1;
    if (ma->nheaders != mb->nheaders)
        return ma->nheaders > mb->nheaders ? -1 : 1;
    if (ma->nquery != mb->nquery)
        return ma->nquery > mb->nquery ? -1 : 1;
    if (a->route->order != b->route->order)
        return a->route->order < b->route->order ? -1 : 1;
    if ((c = strcmp(a->route->ns, b->route->ns)) != 0 || (c = strcmp(a->route->name, b->route->name)) != 0)
        return c;
    if (a->rule->index != b->rule->index)
        return a->rule->index < b->rule->index ? -1 : 1;
    if (ma->index != mb->index)
        return ma->index < mb->index ? -1 : 1;
    return 0;
}

static group_t *get_group(sg_route_table_t *t, const char *host)
{
    for (size_t i = 0; i < t->ngroups; i++) {
        const char *gh = t->groups[i].host;
        if (gh == host || (gh && host && strcmp(gh, host) == 0))
            return &t->groups[i];
    }
    if (t->ngroups == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 4;
        group_t *ng = realloc(t->groups, ncap * sizeof(*ng));
        if (ng == NULL)
            return NULL;
        t->groups = ng;
        t->cap = ncap;
    }
    group_t *g = &t->groups[t->ngroups++];
    memset(g, 0, sizeof(*g));
    g->host = host;
    return g;
}

static int add_entries(group_t *g, const sg_route_t *rt)
{
    for (size_t r = 0; r < rt->nrules; r++) {
        const sg_rule_t *rule = &rt->rules[r];
        size_t nm = rule->nmatches ? rule->nmatches : 1;
        for (size_t m = 0; m < nm; m++) {
            const sg_match_t *mt = rule->nmatches ? &rule->matches[m] : &default_match;
            if (g->nentries == g->cap) {
                size_t ncap = g->cap ? g->cap * 2 : 16;
                entry_t *ne = realloc(g->entries, ncap * sizeof(*ne));
                if (ne == NULL)
                    return -ENOMEM;
                g->entries = ne;
                g->cap = ncap;
            }
            entry_t *e = &g->entries[g->nentries++];
            e->route = rt;
            e->rule = rule;
            e->match = mt;
            e->key = mt->path ? mt->path : "/";
            e->rawlen = e->keylen = (uint32_t)strlen(e->key);
            e->cat = mt->path_type == SG_MATCH_EXACT ? CAT_EXACT : mt->path_type == SG_MATCH_REGEX ? CAT_REGEX
                                                                                                  : CAT_PREFIX;
            if (rt->kind == SG_ROUTE_GRPC) {
                e->cat = CAT_GRPC;
                e->slen = mt->grpc && mt->grpc->service ? (uint32_t)strlen(mt->grpc->service) : 0;
                e->mlen = mt->grpc && mt->grpc->method ? (uint32_t)strlen(mt->grpc->method) : 0;
                continue;
            }
            /* "/foo/" matches what "/foo" matches (the spec ignores a trailing slash); "/" matches all. */
            if (e->cat == CAT_PREFIX && e->keylen > 0 && e->key[e->keylen - 1] == '/')
                e->keylen--;
        }
    }
    return 0;
}

static int build_group(group_t *g)
{
    qsort(g->entries, g->nentries, sizeof(entry_t), cmp_entries);
    size_t nexact = 0, nprefix = 0;
    for (size_t i = 0; i < g->nentries; i++) {
        bool first = i == 0 || g->entries[i - 1].cat != g->entries[i].cat ||
                     g->entries[i - 1].keylen != g->entries[i].keylen ||
                     memcmp(g->entries[i - 1].key, g->entries[i].key, g->entries[i].keylen) != 0;
        if (first && g->entries[i].cat == CAT_EXACT)
            nexact++;
        if (first && g->entries[i].cat == CAT_PREFIX)
            nprefix++;
    }
    if (htab_init(&g->exact, nexact) != 0 || htab_init(&g->prefix, nprefix) != 0)
        return -ENOMEM;
    g->regex_start = 0;
    g->regex_count = 0;
    for (size_t i = 0; i < g->nentries; i++) {
        entry_t *e = &g->entries[i];
        if (e->cat == CAT_GRPC) {
            if (g->grpc_count++ == 0)
                g->grpc_start = (uint32_t)i;
            continue;
        }
        if (e->cat == CAT_REGEX) {
            if (g->regex_count++ == 0)
                g->regex_start = (uint32_t)i;
            continue;
        }
        bucket_t *b = htab_put(e->cat == CAT_EXACT ? &g->exact : &g->prefix, e->key, e->keylen, false);
        if (b->count++ == 0)
            b->start = (uint32_t)i;
    }
    return 0;
}

void sg_route_table_free(sg_route_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ngroups; i++) {
        free(t->groups[i].entries);
        free(t->groups[i].exact.slots);
        free(t->groups[i].prefix.slots);
    }
    free(t->groups);
    free(t->hosts.slots);
    free(t->wilds.slots);
    free(t);
}

static int htab_copy(htab_t *to, const htab_t *from)
{
    size_t n = (size_t)from->mask + 1;
    to->mask = from->mask;
    to->slots = from->slots ? malloc(n * sizeof(bucket_t)) : NULL;
    if (from->slots == NULL)
        return 0;
    if (to->slots == NULL)
        return -ENOMEM;
    memcpy(to->slots, from->slots, n * sizeof(bucket_t));
    return 0;
}

int sg_route_table_rebase(const sg_route_table_t *t, const sg_config_t *from, const sg_config_t *to,
                          sg_route_table_t **out)
{
    *out = NULL;
    if (t == NULL || from->nroutes != to->nroutes)
        return -EINVAL;
    sg_route_table_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    n->catchall = t->catchall;
    int rc = 0;
    n->groups = t->ngroups ? calloc(t->ngroups, sizeof(*n->groups)) : NULL;
    if (t->ngroups && n->groups == NULL)
        rc = -ENOMEM;
    else
        n->ngroups = n->cap = t->ngroups;
    for (size_t i = 0; i < n->ngroups && rc == 0; i++) {
        const group_t *g = &t->groups[i];
        group_t *h = &n->groups[i];
        *h = *g;
        h->entries = NULL;
        h->exact.slots = h->prefix.slots = NULL;
        h->cap = g->nentries;
        h->entries = g->nentries ? malloc(g->nentries * sizeof(*h->entries)) : NULL;
        if (g->nentries && h->entries == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (size_t k = 0; k < g->nentries; k++) {
            entry_t e = g->entries[k];
            size_t ri = (size_t)(e.route - from->routes);
            if (e.route < from->routes || ri >= from->nroutes || to->routes[ri].nrules != e.route->nrules ||
                e.rule < e.route->rules || (size_t)(e.rule - e.route->rules) >= e.route->nrules) {
                rc = -EINVAL;
                break;
            }
            size_t ui = (size_t)(e.rule - e.route->rules);
            e.route = &to->routes[ri];
            e.rule = &to->routes[ri].rules[ui];
            h->entries[k] = e;
        }
        if (rc == 0)
            rc = htab_copy(&h->exact, &g->exact);
        if (rc == 0)
            rc = htab_copy(&h->prefix, &g->prefix);
    }
    if (rc == 0)
        rc = htab_copy(&n->hosts, &t->hosts);
    if (rc == 0)
        rc = htab_copy(&n->wilds, &t->wilds);
    if (rc != 0) {
        sg_route_table_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

static bool parent_fits(const sg_parent_ref_t *p, const sg_listener_t *l)
{
    return strcmp(p->name, l->gateway) == 0 && strcmp(p->ns, l->ns) == 0 &&
           (p->section == NULL || strcmp(p->section, l->name) == 0) && (p->port == 0 || p->port == l->port);
}

/* Listener allowedRoutes.namespaces: may a route of namespace ns attach? */
static bool admits_ns(const sg_listener_t *l, const char *ns)
{
    switch (l->allow_from) {
    case SG_ALLOW_ALL:
        return true;
    case SG_ALLOW_SELECTOR:
        for (size_t i = 0; i < l->nallow_ns; i++)
            if (strcmp(l->allow_ns[i], ns) == 0)
                return true;
        return false;
    case SG_ALLOW_SAME:
    default:
        return strcmp(l->ns, ns) == 0;
    }
}

static bool admits_kind(const sg_listener_t *l, const sg_route_t *rt)
{
    return (l->allow_kinds & (1u << rt->kind)) != 0;
}

/* allowedRoutes: namespaces and kinds. */
static bool admits(const sg_listener_t *l, const sg_route_t *rt)
{
    return admits_kind(l, rt) && admits_ns(l, rt->ns);
}

static const char *allow_str(sg_allow_from_t a)
{
    return a == SG_ALLOW_ALL ? "All" : a == SG_ALLOW_SELECTOR ? "Selector" : "Same";
}

bool sg_route_parent_attaches(const sg_route_t *rt, const sg_parent_ref_t *p, const sg_listener_t *l)
{
    if (!parent_fits(p, l) || !admits(l, rt))
        return false;
    for (size_t h = 0; h < rt->nhostnames; h++)
        if (host_intersect(rt->hostnames[h], l->hostname) != NULL)
            return true;
    return rt->nhostnames == 0;
}

static const char *kind_str(const sg_route_t *rt)
{
    return rt->kind == SG_ROUTE_GRPC ? "GRPCRoute" : "HTTPRoute";
}

/* Route hostname h on listener l: the intersection, l's own hostname (NULL: any) when the route has none. *ok is
 * false when they are disjoint. */
static const char *eff_host(const sg_route_t *rt, size_t h, const sg_listener_t *l, bool *ok)
{
    if (rt->nhostnames == 0) {
        *ok = true;
        return l->hostname;
    }
    const char *e = host_intersect(rt->hostnames[h], l->hostname);
    *ok = e != NULL;
    return e;
}

/* Do two routes on listener l serve a hostname in common? */
static bool hosts_overlap(const sg_route_t *a, const sg_route_t *b, const sg_listener_t *l)
{
    size_t na = a->nhostnames ? a->nhostnames : 1, nb = b->nhostnames ? b->nhostnames : 1;
    for (size_t i = 0; i < na; i++) {
        bool oka, okb;
        const char *ha = eff_host(a, i, l, &oka);
        if (!oka)
            continue;
        for (size_t j = 0; j < nb; j++) {
            const char *hb = eff_host(b, j, l, &okb);
            if (okb && (ha == NULL || hb == NULL || host_intersect(ha, hb) != NULL))
                return true;
        }
    }
    return false;
}

/* Gateway API (GRPCRoute hostnames): an HTTPRoute and a GRPCRoute on one listener whose hostnames intersect
 * cannot both be accepted; the older route (document order here), then the first by namespace/name, is. Routes
 * are taken in document order, each refused when it meets an accepted route of the other kind. */
static const sg_route_t *conflicting(const sg_config_t *cfg, const sg_listener_t *l, size_t i, const bool *taken,
                                     const size_t *taken_kind)
{
    const sg_route_t *rt = &cfg->routes[i];
    if (taken_kind[rt->kind == SG_ROUTE_GRPC ? SG_ROUTE_HTTP : SG_ROUTE_GRPC] == 0)
        return NULL; /* no route of the other kind yet: nothing to meet (and no scan of the ones before) */
    for (size_t j = 0; j < i; j++)
        if (taken[j] && cfg->routes[j].kind != rt->kind && hosts_overlap(rt, &cfg->routes[j], l))
            return &cfg->routes[j];
    return NULL;
}

static int compile_listener(const sg_config_t *cfg, sg_listener_t *l, size_t *attached, FILE *errs)
{
    sg_route_table_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->catchall = -1;
    l->table = t;
    bool *taken = calloc(cfg->nroutes + 1, sizeof(bool));
    if (taken == NULL)
        return -ENOMEM;
    size_t taken_kind[2] = {0, 0}; /* taken routes by kind (SG_ROUTE_HTTP, SG_ROUTE_GRPC) */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const sg_route_t *rt = &cfg->routes[i];
        bool fits = false;
        for (size_t p = 0; p < rt->nparents && !fits; p++)
            fits = parent_fits(&rt->parents[p], l) && admits(l, rt);
        if (!fits)
            continue;
        const sg_route_t *other = conflicting(cfg, l, i, taken, taken_kind);
        if (other != NULL) {
            if (errs)
                sg_escape_fputline(errs, "%s:%d:%d: warning: %s %s/%s: not attached to listener %s/%s: its hostnames "
                        "intersect those of %s %s/%s, which comes first (Accepted False: a listener serves a hostname "
                        "with either HTTPRoutes or GRPCRoutes, the older route wins)", rt->file, rt->line, rt->col,
                        kind_str(rt), rt->ns, rt->name, l->gateway, l->name, kind_str(other), other->ns, other->name);
            attached[i]++; /* attached elsewhere in spirit: the NoMatchingListenerHostname warning would mislead */
            continue;
        }
        taken[i] = true;
        taken_kind[rt->kind == SG_ROUTE_GRPC ? SG_ROUTE_GRPC : SG_ROUTE_HTTP]++;
        size_t nh = rt->nhostnames ? rt->nhostnames : 1;
        for (size_t h = 0; h < nh; h++) {
            bool ok;
            const char *eff = eff_host(rt, h, l, &ok);
            if (!ok)
                continue;
            /* a route listing both a name and a wildcard covering it yields the name once per group */
            group_t *g = get_group(t, eff);
            if (g == NULL) {
                free(taken);
                return -ENOMEM;
            }
            bool dup = false;
            for (size_t k = 0; k < g->nentries && !dup; k++)
                dup = g->entries[k].route == rt;
            if (!dup && add_entries(g, rt) != 0) {
                free(taken);
                return -ENOMEM;
            }
            attached[i]++;
        }
    }
    free(taken);
    size_t nexact = 0, nwild = 0;
    for (size_t i = 0; i < t->ngroups; i++) {
        if (build_group(&t->groups[i]) != 0)
            return -ENOMEM;
        if (t->groups[i].host == NULL)
            t->catchall = (int)i;
        else if (t->groups[i].host[0] == '*')
            nwild++;
        else
            nexact++;
    }
    if (htab_init(&t->hosts, nexact) != 0 || htab_init(&t->wilds, nwild) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < t->ngroups; i++) {
        const char *h = t->groups[i].host;
        if (h == NULL)
            continue;
        bucket_t *b = h[0] == '*' ? htab_put(&t->wilds, h + 1, strlen(h + 1), true)
                                  : htab_put(&t->hosts, h, strlen(h), true);
        b->start = (uint32_t)i;
        b->count = 1;
    }
    return 0;
}

int sg_route_compile(sg_config_t *cfg, FILE *errs)
{
    int nerr = 0;
    /* parentRef validity: every ref must name a Gateway and at least one of its listeners. */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const sg_route_t *rt = &cfg->routes[i];
        for (size_t p = 0; p < rt->nparents; p++) {
            const sg_parent_ref_t *pr = &rt->parents[p];
            bool gw = false, fits = false, allowed = false;
            const sg_listener_t *refused = NULL;
            for (size_t k = 0; k < cfg->nlisteners; k++) {
                const sg_listener_t *l = &cfg->listeners[k];
                gw |= strcmp(pr->name, l->gateway) == 0 && strcmp(pr->ns, l->ns) == 0;
                if (!parent_fits(pr, l))
                    continue;
                fits = true;
                if (admits(l, rt))
                    allowed = true;
                else if (refused == NULL)
                    refused = l;
            }
            if (fits && allowed)
                continue;
            nerr++;
            if (errs == NULL)
                continue;
            if (fits && !admits_kind(refused, rt))
                sg_escape_fputline(errs, "%s:%d:%d: %s %s/%s: not allowed by the listeners of Gateway %s/%s "
                        "(NotAllowedByListeners): listener \"%s\" admits only route kinds: %s%s%s", rt->file, pr->line,
                        pr->col, kind_str(rt), rt->ns, rt->name, pr->ns, pr->name, refused->name,
                        refused->allow_kinds & (1u << SG_ROUTE_HTTP) ? "HTTPRoute" : "",
                        refused->allow_kinds == SG_ROUTE_KINDS_ALL ? ", " : "",
                        refused->allow_kinds & (1u << SG_ROUTE_GRPC) ? "GRPCRoute" : "");
            else if (fits)
                sg_escape_fputline(errs, "%s:%d:%d: %s %s/%s: not allowed by the listeners of Gateway %s/%s "
                        "(NotAllowedByListeners): listener \"%s\" admits routes from namespaces: %s%s%s%s", rt->file,
                        pr->line, pr->col, kind_str(rt), rt->ns, rt->name, pr->ns, pr->name, refused->name,
                        allow_str(refused->allow_from), refused->allow_from == SG_ALLOW_SAME ? " (" : "",
                        refused->allow_from == SG_ALLOW_SAME ? refused->ns : "",
                        refused->allow_from == SG_ALLOW_SAME ? ")" : "");
            else if (!gw)
                sg_escape_fputline(errs, "%s:%d:%d: %s %s/%s: parentRef names Gateway %s/%s, which does not exist "
                                   "(NoMatchingParent)",
                                   rt->file, pr->line, pr->col, kind_str(rt), rt->ns, rt->name, pr->ns, pr->name);
            else if (pr->port == 0)
                sg_escape_fputline(errs, "%s:%d:%d: %s %s/%s: Gateway %s/%s has no listener named \"%s\" "
                                   "(NoMatchingParent)",
                                   rt->file, pr->line, pr->col, kind_str(rt), rt->ns, rt->name, pr->ns, pr->name,
                                   pr->section);
            else
                sg_escape_fputline(errs, "%s:%d:%d: %s %s/%s: Gateway %s/%s has no listener%s%s%s on port %u "
                                   "(NoMatchingParent)",
                        rt->file, pr->line, pr->col, kind_str(rt), rt->ns, rt->name, pr->ns, pr->name,
                        pr->section ? " named \"" : "", pr->section ? pr->section : "", pr->section ? "\"" : "",
                        pr->port);
        }
    }
    if (nerr > 0)
        return -EINVAL;
    size_t *attached = calloc(cfg->nroutes + 1, sizeof(size_t));
    if (attached == NULL)
        return -ENOMEM;
    for (size_t k = 0; k < cfg->nlisteners; k++) {
        int rc = compile_listener(cfg, &cfg->listeners[k], attached, errs);
        if (rc != 0) {
            free(attached);
            return rc;
        }
        for (size_t j = 0; j < k && errs; j++) {
            const sg_listener_t *a = &cfg->listeners[j], *b = &cfg->listeners[k];
            if (a->port == b->port && (a->hostname == b->hostname ||
                                       (a->hostname && b->hostname && strcmp(a->hostname, b->hostname) == 0)))
                sg_escape_fputline(errs, "%s:%d:%d: warning: listener %s/%s shadows listener %s/%s (same port %u and "
                        "hostname); routes attached only to the latter are unreachable", a->file, b->line, b->col,
                        a->gateway, a->name, b->gateway, b->name, b->port);
        }
    }
    for (size_t i = 0; i < cfg->nroutes && errs; i++)
        if (attached[i] == 0)
            sg_escape_fputline(errs, "%s:%d:%d: warning: %s %s/%s: none of its hostnames intersects the hostname "
                    "of a listener it names; not attached (NoMatchingListenerHostname)", cfg->routes[i].file,
                    cfg->routes[i].line, cfg->routes[i].col, kind_str(&cfg->routes[i]), cfg->routes[i].ns,
                    cfg->routes[i].name);
    free(attached);
    return 0;
}

/* ---- match ---- */

void *sg_route_scratch_new(void)
{
    scratch_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->md = pcre2_match_data_create(1, NULL);
    s->mc = pcre2_match_context_create(NULL);
    if (s->md == NULL || s->mc == NULL) {
        sg_route_scratch_free(s);
        return NULL;
    }
    /* Bound the work a hostile path or header can cost (catastrophic backtracking). */
    pcre2_set_match_limit(s->mc, 100000);
    pcre2_set_depth_limit(s->mc, 1000);
    pcre2_set_heap_limit(s->mc, 1024);
    return s;
}

void sg_route_scratch_free(void *scratch)
{
    scratch_t *s = scratch;
    if (s == NULL)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mc);
    free(s);
}

/* 1 match, 0 no match, -EINVAL without scratch. A regex resource limit counts as no match. */
static int re_match(const void *re, sg_str_t s, const sg_route_req_t *req)
{
    scratch_t *sc = req->scratch;
    if (sc == NULL)
        return -EINVAL;
    int rc = pcre2_match(re, (PCRE2_SPTR)(s.p ? s.p : ""), s.n, 0, 0, sc->md, sc->mc);
    return rc >= 0 ? 1 : 0;
}

static int value_match(const sg_value_match_t *v, sg_str_t val, const sg_route_req_t *req)
{
    if (v->type == SG_MATCH_REGEX)
        return re_match(v->re, val, req);
    return sg_str_eq(val, sg_str_c(v->value));
}

/* First occurrence of query parameter `name`; names and values compared raw (no percent-decoding). */
static bool query_get(sg_str_t q, const char *name, sg_str_t *val)
{
    size_t nl = strlen(name);
    const char *p = q.p, *end = q.p + q.n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        const char *kend = eq ? eq : seg_end;
        if ((size_t)(kend - p) == nl && memcmp(p, name, nl) == 0) {
            *val = eq ? (sg_str_t){eq + 1, (size_t)(seg_end - eq - 1)} : (sg_str_t){seg_end, 0};
            return true;
        }
        p = seg_end + 1;
    }
    return false;
}

/* Method, headers, query params of one match entry. */
static int conds_match(const sg_match_t *m, const sg_route_req_t *req)
{
    if (m->method != NULL && !sg_str_eq(req->method, sg_str_c(m->method)))
        return 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        const sg_value_match_t *v = &m->headers[i];
        size_t k;
        for (k = 0; k < req->nheaders; k++)
            if (sg_str_ieq(req->headers[k].name, sg_str_c(v->name)))
                break;
        if (k == req->nheaders)
            return 0;
        int rc = value_match(v, req->headers[k].value, req);
        if (rc <= 0)
            return rc;
    }
    for (size_t i = 0; i < m->nquery; i++) {
        const sg_value_match_t *v = &m->query[i];
        sg_str_t val;
        if (!query_get(req->query, v->name, &val))
            return 0;
        int rc = value_match(v, val, req);
        if (rc <= 0)
            return rc;
    }
    return 1;
}

/* A GRPCRoute method match against the request's service and method (valid = the path was "/service/method"). */
static int grpc_match(const sg_grpc_method_t *gm, bool valid, sg_str_t svc, sg_str_t meth, const sg_route_req_t *req)
{
    if (gm == NULL)
        return 1;
    if (!valid)
        return 0;
    if (gm->type == SG_MATCH_REGEX) {
        int rc = 1;
        if (gm->service_re != NULL && (rc = re_match(gm->service_re, svc, req)) <= 0)
            return rc;
        if (gm->method_re != NULL && (rc = re_match(gm->method_re, meth, req)) <= 0)
            return rc;
        return 1;
    }
    return (gm->service == NULL || sg_str_eq(svc, sg_str_c(gm->service))) &&
           (gm->method == NULL || sg_str_eq(meth, sg_str_c(gm->method)));
}

/* GRPCRoute entries, in their precedence order. The path of a gRPC call is "/service/method". */
static int try_grpc(const group_t *g, const sg_route_req_t *req, sg_route_match_t *out)
{
    sg_str_t path = req->path, svc = {0}, meth = {0};
    const char *slash = path.n > 1 && path.p[0] == '/' ? memchr(path.p + 1, '/', path.n - 1) : NULL;
    bool valid = slash != NULL && slash > path.p + 1 && slash < path.p + path.n - 1 &&
                 memchr(slash + 1, '/', (size_t)(path.p + path.n - slash - 1)) == NULL;
    if (valid) {
        svc = (sg_str_t){path.p + 1, (size_t)(slash - path.p - 1)};
        meth = (sg_str_t){slash + 1, (size_t)(path.p + path.n - slash - 1)};
    }
    for (uint32_t i = g->grpc_start; i < g->grpc_start + g->grpc_count; i++) {
        const entry_t *e = &g->entries[i];
        int rc = grpc_match(e->match->grpc, valid, svc, meth, req);
        if (rc > 0)
            rc = conds_match(e->match, req);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            out->route = e->route;
            out->rule = e->rule;
            out->prefix_len = 0;
            return 1;
        }
    }
    return 0;
}

static int try_bucket(const group_t *g, const bucket_t *b, const sg_route_req_t *req, sg_route_match_t *out,
                      size_t plen)
{
    for (uint32_t i = b->start; i < b->start + b->count; i++) {
        const entry_t *e = &g->entries[i];
        int rc = conds_match(e->match, req);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            out->route = e->route;
            out->rule = e->rule;
            out->prefix_len = plen;
            return 1;
        }
    }
    return 0;
}

#define MAX_BOUNDS 64

static int try_group(const group_t *g, const sg_route_req_t *req, sg_route_match_t *out)
{
    sg_str_t path = req->path;
    uint32_t h = hash_bytes(path.p, path.n, false);
    const bucket_t *b = htab_get(&g->exact, path.p, path.n, h, false);
    int rc;
    /* A hostname is served by HTTPRoutes or by GRPCRoutes, never both (compile_listener), but a group may still
     * hold both kinds when one has no entry matching any request it could see; GRPCRoutes go first. */
    if (g->grpc_count > 0 && (rc = try_grpc(g, req, out)) != 0)
        return rc;
    if (b != NULL && (rc = try_bucket(g, b, req, out, path.n)) != 0)
        return rc;
    for (uint32_t i = g->regex_start; i < g->regex_start + g->regex_count; i++) {
        const entry_t *e = &g->entries[i];
        if ((rc = re_match(e->match->path_re, path, req)) > 0)
            rc = conds_match(e->match, req);
        if (rc < 0)
            return rc;
        if (rc > 0) {
            out->route = e->route;
            out->rule = e->rule;
            out->prefix_len = 0;
            return 1;
        }
    }
    if (g->prefix.slots == NULL)
        return 0;
    /* Segment boundaries of the path (ends of "/a", "/a/b", ... and the whole path), hashed in one pass;
     * prefix keys never end in '/', and the key "" (from "/") matches every path. */
    uint32_t bh[MAX_BOUNDS];
    uint32_t bl[MAX_BOUNDS];
    size_t nb = 0;
    uint32_t hh = 2166136261u;
    bh[nb] = hh;
    bl[nb++] = 0;
    for (size_t i = 0; i < path.n; i++) {
        if (path.p[i] == '/' && i > 0 && nb < MAX_BOUNDS) {
            bh[nb] = hh;
            bl[nb++] = (uint32_t)i;
        }
        hh ^= (unsigned char)path.p[i];
        hh *= 16777619u;
    }
    if (path.n > 0 && nb < MAX_BOUNDS && bl[nb - 1] != path.n) {
        bh[nb] = hh;
        bl[nb++] = (uint32_t)path.n;
    }
    /* Deeper than MAX_BOUNDS segments: the longest boundaries are probed without the precomputed hashes. */
    if (nb == MAX_BOUNDS) {
        for (size_t i = path.n; i > bl[nb - 1]; i--) {
            if (i != path.n && path.p[i] != '/')
                continue;
            b = htab_get(&g->prefix, path.p, i, hash_bytes(path.p, i, false), false);
            if (b != NULL && (rc = try_bucket(g, b, req, out, i)) != 0)
                return rc;
        }
    }
    while (nb-- > 0) {
        b = htab_get(&g->prefix, path.p, bl[nb], bh[nb], false);
        if (b != NULL && (rc = try_bucket(g, b, req, out, bl[nb])) != 0)
            return rc;
    }
    return 0;
}

/* Host without port (also "[v6]:port") and without a trailing dot. */
static sg_str_t host_only(sg_str_t h)
{
    if (h.n > 0 && h.p[0] == '[') {
        const char *rb = memchr(h.p, ']', h.n);
        if (rb != NULL)
            h.n = (size_t)(rb - h.p) + 1;
        return h;
    }
    const char *colon = h.n ? memchr(h.p, ':', h.n) : NULL;
    if (colon != NULL)
        h.n = (size_t)(colon - h.p);
    if (h.n > 0 && h.p[h.n - 1] == '.')
        h.n--;
    return h;
}

int sg_route_match(const sg_config_t *cfg, uint16_t port, const sg_route_req_t *req, sg_route_match_t *out)
{
    sg_str_t host = host_only(req->host);
    const sg_listener_t *best = NULL;
    size_t best_score = 0;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const sg_listener_t *l = &cfg->listeners[i];
        if (l->port != port)
            continue;
        size_t score;
        if (l->hostname == NULL)
            score = 1;
        else if (!host_match(l->hostname, host))
            continue;
        else
            score = l->hostname[0] == '*' ? 2 + strlen(l->hostname) : SIZE_MAX;
        if (score > best_score) {
            best = l;
            best_score = score;
        }
    }
    if (best == NULL || best->table == NULL)
        return -ENOENT;
    const sg_route_table_t *t = best->table;
    memset(out, 0, sizeof(*out));
    out->listener = best;
    int rc;
    const bucket_t *b = htab_get(&t->hosts, host.p, host.n, hash_bytes(host.p, host.n, true), true);
    if (b != NULL && (rc = try_group(&t->groups[b->start], req, out)) != 0)
        return rc > 0 ? 0 : rc;
    if (t->wilds.slots != NULL) {
        for (size_t i = 1; i < host.n; i++) {
            if (host.p[i] != '.')
                continue;
            sg_str_t suf = {host.p + i, host.n - i};
            b = htab_get(&t->wilds, suf.p, suf.n, hash_bytes(suf.p, suf.n, true), true);
            if (b != NULL && (rc = try_group(&t->groups[b->start], req, out)) != 0)
                return rc > 0 ? 0 : rc;
        }
    }
    if (t->catchall >= 0 && (rc = try_group(&t->groups[t->catchall], req, out)) != 0)
        return rc > 0 ? 0 : rc;
    out->listener = NULL;
    return -ENOENT;
}
