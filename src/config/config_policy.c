/* config_policy.c: the alb.networking.azure.io/v1 policy kinds (RoutePolicy, BackendLoadBalancingPolicy,
 * HealthCheckPolicy) and how they attach to routes, rules and backends once every document is read. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

/* ---- common ---- */

/* Policies of this API group name core objects with group "" (AGC's examples) and Gateway API objects with
 * their group; both spellings of each are accepted. */
static bool group_ok(const char *group, bool core)
{
    if (group == NULL || group[0] == '\0')
        return true;
    return core ? strcmp(group, "core") == 0 : strcmp(group, "gateway.networking.k8s.io") == 0;
}

/* targetRef to a Service: {group, kind, name, namespace[, ports]}. Returns false when unusable. */
static bool parse_svcref(loader_t *ld, struct fy_node *tr, pos_t at, const char *defns, bool with_ports,
                         svcref_t *out)
{
    pos_t tp = npos(tr, at);
    memset(out, 0, sizeof(*out));
    out->pos = tp;
    if (fy_node_get_type(tr) != FYNT_MAPPING) {
        ERR(ld, tp, "targetRef: expected a mapping");
        return false;
    }
    if (with_ports)
        check_keys(ld, tr, "targetRef", KEYS("group", "kind", "name", "namespace", "ports", "sectionName"));
    else
        check_keys(ld, tr, "targetRef", KEYS("group", "kind", "name", "namespace", "sectionName"));
    char *group = get_str(ld, tr, "group", false, tp);
    char *kind = get_str(ld, tr, "kind", true, tp);
    out->name = get_str(ld, tr, "name", true, tp);
    out->ns = get_str(ld, tr, "namespace", false, tp);
    if (out->ns == NULL)
        out->ns = astrdup(ld, defns);
    bool ok = out->name != NULL && kind != NULL;
    if (!group_ok(group, true)) {
        ERR(ld, npos(field(tr, "group"), tp), "targetRef group \"%s\" not supported (expected \"\" for a Service)",
            group);
        ok = false;
    }
    if (kind && strcmp(kind, "Service") != 0) {
        ERR(ld, npos(field(tr, "kind"), tp), "targetRef kind \"%s\" not supported (only Service)", kind);
        ok = false;
    }
    if (field(tr, "sectionName") != NULL)
        ERR(ld, npos(field(tr, "sectionName"), tp), "targetRef sectionName is not supported; refused, because the "
            "policy would apply to every port of the Service");
    struct fy_node *ps = with_ports ? get_seq(ld, tr, "ports", false, tp) : NULL;
    out->ports = aalloc(ld, (seq_len(ps) + 1) * sizeof(*out->ports));
    void *it = NULL;
    struct fy_node *e;
    while (ps && (e = fy_node_sequence_iterate(ps, &it)) != NULL) {
        pos_t pp = npos(e, tp);
        long v;
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, pp, "ports[]: expected a mapping with \"port\"");
            continue;
        }
        check_keys(ld, e, "targetRef port", KEYS("port"));
        if (get_int(ld, e, "port", 1, 65535, true, &v, pp))
            out->ports[out->nports++] = (uint16_t)v;
    }
    return ok;
}

static bool svcref_matches(const svcref_t *t, const sg_backend_t *b)
{
    if (t->name == NULL || b->name == NULL || strcmp(t->name, b->name) != 0 || strcmp(t->ns, b->ns) != 0)
        return false;
    if (t->nports == 0)
        return true;
    for (size_t i = 0; i < t->nports; i++)
        if (t->ports[i] == b->port)
            return true;
    return false;
}

/* Two references overlap when they name the same Service and share a port (no ports: all of them). */
static bool svcref_overlap(const svcref_t *a, const svcref_t *b)
{
    if (a->name == NULL || b->name == NULL || strcmp(a->name, b->name) != 0 || strcmp(a->ns, b->ns) != 0)
        return false;
    if (a->nports == 0 || b->nports == 0)
        return true;
    for (size_t i = 0; i < a->nports; i++)
        for (size_t j = 0; j < b->nports; j++)
            if (a->ports[i] == b->ports[j])
                return true;
    return false;
}

/* ---- RoutePolicy ---- */

/* A cookie-name is an RFC 6265 token. */
static bool valid_cookie_name(const char *s)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= 256 && is_token(s);
}

/* A duration given as "3600s" (AGC's examples) or as a plain number of seconds. */
static bool get_seconds(loader_t *ld, struct fy_node *m, const char *key, int64_t *out, pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL)
        return false;
    const char *s = fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
    if (s != NULL && s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
        long sec;
        if (!scalar_int(ld, v, key, 0, 100L * 365 * 86400, &sec, at))
            return false;
        *out = sec;
        return true;
    }
    int64_t ms;
    if (!get_duration(ld, m, key, &ms, at))
        return false;
    if (ms % 1000 != 0) {
        ERR(ld, npos(v, at), "%s: cookie lifetimes are whole seconds", key);
        return false;
    }
    *out = ms / 1000;
    return true;
}

static void parse_affinity(loader_t *ld, struct fy_node *sa, pos_t at, policy_t *p)
{
    pos_t ap = npos(sa, at);
    p->apos = ap;
    check_keys(ld, sa, "sessionAffinity", KEYS("affinityType", "cookieName", "cookieDuration"));
    char *type = get_str(ld, sa, "affinityType", true, ap);
    if (type == NULL)
        return;
    if (strcmp(type, "managed-cookie") == 0) {
        /* AGC discards cookieName and cookieDuration for managed cookies; say so rather than be surprising. */
        if (field(sa, "cookieName") != NULL)
            WARN(ld, npos(field(sa, "cookieName"), ap), "cookieName is ignored with managed-cookie (the cookie is "
                 SG_AFFINITY_MANAGED_COOKIE ")");
        if (field(sa, "cookieDuration") != NULL)
            WARN(ld, npos(field(sa, "cookieDuration"), ap), "cookieDuration is ignored with managed-cookie "
                 "(86400 s)");
        p->affinity.type = SG_AFFINITY_MANAGED;
        p->affinity.cookie = SG_AFFINITY_MANAGED_COOKIE;
        p->affinity.duration_s = SG_AFFINITY_MANAGED_DURATION_S;
        return;
    }
    if (strcmp(type, "application-cookie") != 0) {
        ERR(ld, npos(field(sa, "affinityType"), ap), "affinityType \"%s\": expected managed-cookie or "
            "application-cookie", type);
        return;
    }
    char *name = get_str(ld, sa, "cookieName", false, ap);
    int64_t dur = 0;
    bool have_dur = get_seconds(ld, sa, "cookieDuration", &dur, ap);
    if (name == NULL && field(sa, "cookieName") == NULL)
        ERR(ld, ap, "application-cookie requires \"cookieName\"");
    if (!have_dur && field(sa, "cookieDuration") == NULL)
        ERR(ld, ap, "application-cookie requires \"cookieDuration\"");
    if (name != NULL && !valid_cookie_name(name)) {
        ERR(ld, npos(field(sa, "cookieName"), ap), "cookieName \"%s\" is not a valid cookie name (an RFC 6265 "
            "token)", name);
        return;
    }
    if (name == NULL || !have_dur)
        return;
    p->affinity.type = SG_AFFINITY_APPLICATION;
    p->affinity.cookie = name;
    p->affinity.duration_s = dur;
}

void sg__config_parse_route_policy(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "RoutePolicy spec", KEYS("targetRef", "default", "override"));
    if (field(spec, "override") != NULL)
        ERR(ld, npos(field(spec, "override"), sp), "RoutePolicy override is not supported (use default); refused "
            "rather than ignored");
    struct fy_node *tr = get_map(ld, spec, "targetRef", true, sp);
    if (tr == NULL)
        return;
    pos_t tp = npos(tr, sp);
    check_keys(ld, tr, "targetRef", KEYS("group", "kind", "name", "namespace"));
    char *group = get_str(ld, tr, "group", false, tp);
    char *kind = get_str(ld, tr, "kind", true, tp);
    policy_t *p = VPUSH(ld, ld->pols, ld->npols, ld->cappols);
    p->ns = md.ns;
    p->name = md.name;
    p->pos = at;
    p->tpos = tp;
    p->route_timeout_ms = SG_TIMEOUT_UNSET;
    p->heartbeat_ms = SG_TIMEOUT_UNSET;
    p->tname = get_str(ld, tr, "name", true, tp);
    p->tns = get_str(ld, tr, "namespace", false, tp);
    if (p->tns == NULL)
        p->tns = md.ns;
    if (!group_ok(group, false))
        ERR(ld, npos(field(tr, "group"), tp), "targetRef group \"%s\" not supported", group);
    if (kind && strcmp(kind, "GRPCRoute") == 0) {
        p->tkind = SG_ROUTE_GRPC;
    } else if (kind && strcmp(kind, "HTTPRoute") != 0) {
        ERR(ld, npos(field(tr, "kind"), tp), "targetRef kind \"%s\" not supported (only HTTPRoute and GRPCRoute)",
            kind);
        p->tname = NULL;
    }
    struct fy_node *def = get_map(ld, spec, "default", false, sp);
    pos_t dp = npos(def, sp);
    check_keys(ld, def, "RoutePolicy default", KEYS("timeouts", "sessionAffinity", "sse"));
    struct fy_node *to = get_map(ld, def, "timeouts", false, dp);
    check_keys(ld, to, "RoutePolicy timeouts", KEYS("routeTimeout"));
    if (get_duration(ld, to, "routeTimeout", &p->route_timeout_ms, npos(to, dp)))
        p->pos = npos(field(to, "routeTimeout"), dp);
    struct fy_node *sa = get_map(ld, def, "sessionAffinity", false, dp);
    if (sa != NULL)
        parse_affinity(ld, sa, dp, p);
    /* ssegate extension: spec.default.sse.heartbeatInterval */
    struct fy_node *sse = get_map(ld, def, "sse", false, dp);
    check_keys(ld, sse, "RoutePolicy sse", KEYS("heartbeatInterval"));
    if (get_duration(ld, sse, "heartbeatInterval", &p->heartbeat_ms, npos(sse, dp))) {
        p->hpos = npos(field(sse, "heartbeatInterval"), dp);
        /* AGC's RoutePolicy CRD would reject this field in a cluster: it lives in SSEPolicy now. */
        WARN(ld, p->hpos, "RoutePolicy %s/%s: sse.heartbeatInterval is deprecated; set heartbeatInterval in an "
             "SSEPolicy (ssegate.io/v1alpha1) spec.default instead", p->ns, p->name);
    }
}

static bool same_affinity(const sg_affinity_t *a, const sg_affinity_t *b)
{
    return a->type == b->type && a->duration_s == b->duration_s &&
           (a->cookie == b->cookie || (a->cookie && b->cookie && strcmp(a->cookie, b->cookie) == 0));
}

void sg__config_apply_route_policies(loader_t *ld)
{
    for (size_t i = 0; i < ld->npols; i++) {
        policy_t *p = &ld->pols[i];
        if (p->tname == NULL)
            continue;
        sg_route_t *rt = NULL;
        for (size_t j = 0; j < ld->nroutes && rt == NULL; j++)
            if (ld->routes[j].kind == p->tkind && strcmp(ld->routes[j].name, p->tname) == 0 &&
                strcmp(ld->routes[j].ns, p->tns) == 0)
                rt = &ld->routes[j];
        if (rt == NULL) {
            ERR(ld, p->tpos, "RoutePolicy %s/%s targets %s %s/%s, which does not exist", p->ns, p->name,
                p->tkind == SG_ROUTE_GRPC ? "GRPCRoute" : "HTTPRoute", p->tns, p->tname);
            continue;
        }
        /* Several policies may target one route; each setting must then agree. */
        for (size_t j = 0; j < i; j++) {
            policy_t *q = &ld->pols[j];
            if (q->tname == NULL || q->tkind != p->tkind || strcmp(q->tname, p->tname) != 0 ||
                strcmp(q->tns, p->tns) != 0)
                continue;
            if (p->route_timeout_ms != SG_TIMEOUT_UNSET && q->route_timeout_ms != SG_TIMEOUT_UNSET &&
                q->route_timeout_ms != p->route_timeout_ms)
                ERR(ld, p->pos, "RoutePolicy %s/%s sets routeTimeout %lldms for HTTPRoute %s/%s, conflicting with "
                    "RoutePolicy %s/%s (%lldms, line %d)", p->ns, p->name, (long long)p->route_timeout_ms, p->tns,
                    p->tname, q->ns, q->name, (long long)q->route_timeout_ms, q->pos.line);
            if (p->affinity.type != SG_AFFINITY_NONE && q->affinity.type != SG_AFFINITY_NONE &&
                !same_affinity(&p->affinity, &q->affinity))
                ERR(ld, p->apos, "RoutePolicy %s/%s sets sessionAffinity for HTTPRoute %s/%s, conflicting with "
                    "RoutePolicy %s/%s (line %d)", p->ns, p->name, p->tns, p->tname, q->ns, q->name, q->apos.line);
            if (p->heartbeat_ms != SG_TIMEOUT_UNSET && q->heartbeat_ms != SG_TIMEOUT_UNSET &&
                p->heartbeat_ms != q->heartbeat_ms)
                ERR(ld, p->hpos, "RoutePolicy %s/%s sets sse.heartbeatInterval %lldms for HTTPRoute %s/%s, "
                    "conflicting with RoutePolicy %s/%s (%lldms, line %d)", p->ns, p->name,
                    (long long)p->heartbeat_ms, p->tns, p->tname, q->ns, q->name, (long long)q->heartbeat_ms,
                    q->hpos.line);
        }
        if (rt->kind == SG_ROUTE_GRPC && p->heartbeat_ms != SG_TIMEOUT_UNSET)
            ERR(ld, p->hpos, "RoutePolicy %s/%s: sse.heartbeatInterval does not apply to GRPCRoute %s/%s (it writes SSE "
                "comments); refused rather than ignored", p->ns, p->name, p->tns, p->tname);
        if (rt->kind == SG_ROUTE_GRPC && p->affinity.type != SG_AFFINITY_NONE)
            ERR(ld, p->apos, "RoutePolicy %s/%s: sessionAffinity is a cookie, which gRPC clients do not keep; not "
                "supported for GRPCRoute %s/%s (use a BackendLoadBalancingPolicy ring-hash on a header instead)",
                p->ns, p->name, p->tns, p->tname);
        if (p->route_timeout_ms != SG_TIMEOUT_UNSET)
            rt->policy_timeout_ms = p->route_timeout_ms;
        if (p->affinity.type != SG_AFFINITY_NONE)
            rt->affinity = p->affinity;
        if (p->heartbeat_ms != SG_TIMEOUT_UNSET)
            rt->heartbeat_ms = p->heartbeat_ms;
    }
    for (size_t j = 0; j < ld->nroutes; j++) {
        sg_route_t *rt = &ld->routes[j];
        for (size_t k = 0; k < rt->nrules; k++) {
            sg_rule_t *r = &rt->rules[k];
            /* A rule's own timeouts win over the route's RoutePolicy (as in AGC): the policy applies only to
             * rules that set neither, so a rule's `request: 0s` turns timeouts off even under a policy. */
            if (r->request_timeout_ms == SG_TIMEOUT_UNSET && r->backend_timeout_ms == SG_TIMEOUT_UNSET) {
                r->request_timeout_ms = rt->policy_timeout_ms;
                r->backend_timeout_ms = rt->policy_timeout_ms;
            }
            r->affinity = rt->affinity;
            r->heartbeat_ms = rt->heartbeat_ms;
        }
    }
}

/* ---- BackendLoadBalancingPolicy ---- */

static const struct {
    const char *name;
    sg_lb_t lb;
} strategies[] = {
    {"round-robin", SG_LB_ROUND_ROBIN},
    {"weighted-round-robin", SG_LB_WEIGHTED},
    {"weighted", SG_LB_WEIGHTED},
    {"least-request", SG_LB_LEAST_REQUEST},
    {"ring-hash", SG_LB_RING_HASH},
};

void sg__config_parse_lb_policy(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "BackendLoadBalancingPolicy spec", KEYS("targetRefs", "loadBalancing"));
    lbpolicy_t *p = VPUSH(ld, ld->lbpols, ld->nlbpols, ld->caplbpols);
    p->ns = md.ns;
    p->name = md.name;
    p->pos = at;
    p->lb = SG_LB_ROUND_ROBIN;
    p->ring_size = SG_RING_HASH_DEFAULT_SIZE;
    struct fy_node *ts = get_seq(ld, spec, "targetRefs", true, sp);
    p->targets = aalloc(ld, (seq_len(ts) + 1) * sizeof(*p->targets));
    void *it = NULL;
    struct fy_node *e;
    while (ts && (e = fy_node_sequence_iterate(ts, &it)) != NULL)
        if (parse_svcref(ld, e, sp, md.ns, true, &p->targets[p->ntargets]))
            p->ntargets++;
    if (ts != NULL && seq_len(ts) == 0)
        ERR(ld, npos(ts, sp), "targetRefs: at least one Service");
    struct fy_node *lb = get_map(ld, spec, "loadBalancing", false, sp);
    if (lb == NULL)
        return;
    pos_t lp = npos(lb, sp);
    check_keys(ld, lb, "loadBalancing", KEYS("strategy", "slowStart", "loadAware", "ringHash"));
    char *strategy = get_str(ld, lb, "strategy", false, lp);
    if (strategy != NULL) {
        size_t k;
        for (k = 0; k < SG_ARRAY_LEN(strategies); k++)
            if (strcmp(strategy, strategies[k].name) == 0)
                break;
        if (k < SG_ARRAY_LEN(strategies))
            p->lb = strategies[k].lb;
        else if (strcmp(strategy, "load-aware") == 0)
            ERR(ld, npos(field(lb, "strategy"), lp), "strategy load-aware is not supported (it needs ORCA load "
                "reports); use least-request");
        else
            ERR(ld, npos(field(lb, "strategy"), lp), "strategy \"%s\": expected round-robin, "
                "weighted-round-robin, least-request or ring-hash", strategy);
    }
    if (field(lb, "slowStart") != NULL)
        ERR(ld, npos(field(lb, "slowStart"), lp), "slowStart is not supported; refused rather than ignored");
    if (field(lb, "loadAware") != NULL)
        ERR(ld, npos(field(lb, "loadAware"), lp), "loadAware is not supported; refused rather than ignored");
    struct fy_node *rh = get_map(ld, lb, "ringHash", false, lp);
    if (rh == NULL)
        return;
    pos_t rp = npos(rh, lp);
    if (p->lb != SG_LB_RING_HASH)
        WARN(ld, rp, "ringHash applies to strategy ring-hash only; ignored");
    /* ssegate extension: how big the ring is and which request header is hashed. */
    check_keys(ld, rh, "ringHash", KEYS("minimumRingSize", "header"));
    long v;
    if (get_int(ld, rh, "minimumRingSize", 1, 8388608, false, &v, rp))
        p->ring_size = (uint32_t)v;
    char *h = get_str(ld, rh, "header", false, rp);
    if (h != NULL) {
        if (!is_token(h)) {
            ERR(ld, npos(field(rh, "header"), rp), "ringHash.header \"%s\" is not a valid header name", h);
        } else {
            for (char *c = h; *c; c++)
                *c = sg_lower(*c);
            p->hash_header = h;
        }
    }
}

/* ---- HealthCheckPolicy ---- */

static bool valid_host(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || strchr("/?#@\"\\", c) != NULL)
            return false;
    }
    return true;
}

static void parse_status_codes(loader_t *ld, struct fy_node *cs, pos_t at, sg_healthcheck_t *hc)
{
    hc->codes = aalloc(ld, (seq_len(cs) + 1) * sizeof(*hc->codes));
    hc->ncodes = 0;
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(cs, &it)) != NULL) {
        pos_t ep = npos(e, at);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, ep, "statusCodes[]: expected a mapping with start and end");
            continue;
        }
        check_keys(ld, e, "statusCodes[]", KEYS("start", "end"));
        long s, en;
        if (!get_int(ld, e, "start", 100, 599, true, &s, ep))
            continue;
        if (field(e, "end") == NULL)
            en = s;
        else if (!get_int(ld, e, "end", 100, 599, true, &en, ep))
            continue;
        if (en < s) {
            ERR(ld, npos(field(e, "end"), ep), "statusCodes: end %ld is below start %ld", en, s);
            continue;
        }
        hc->codes[hc->ncodes].start = (int)s;
        hc->codes[hc->ncodes++].end = (int)en;
    }
    if (seq_len(cs) == 0)
        ERR(ld, at, "statusCodes: expected at least one range");
}

static void parse_hc_http(loader_t *ld, struct fy_node *http, pos_t at, sg_healthcheck_t *hc)
{
    pos_t hp = npos(http, at);
    check_keys(ld, http, "HealthCheckPolicy http", KEYS("host", "path", "match"));
    char *host = get_str(ld, http, "host", false, hp);
    if (host != NULL) {
        if (valid_host(host))
            hc->host = host;
        else
            ERR(ld, npos(field(http, "host"), hp), "http.host \"%s\" is not a valid host", host);
    }
    char *path = get_str(ld, http, "path", false, hp);
    if (path != NULL) {
        if (path[0] == '/' && valid_path(path) && strlen(path) <= 1024)
            hc->path = path;
        else
            ERR(ld, npos(field(http, "path"), hp), "http.path \"%s\" must be an absolute path", path);
    }
    struct fy_node *m = get_map(ld, http, "match", false, hp);
    if (m == NULL)
        return;
    pos_t mp = npos(m, hp);
    check_keys(ld, m, "HealthCheckPolicy match", KEYS("statusCodes", "body"));
    if (field(m, "body") != NULL)
        ERR(ld, npos(field(m, "body"), mp), "match.body is not supported");
    struct fy_node *cs = get_seq(ld, m, "statusCodes", false, mp);
    if (cs != NULL)
        parse_status_codes(ld, cs, npos(cs, mp), hc);
}

void sg__config_parse_hc_policy(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "HealthCheckPolicy spec", KEYS("targetRef", "default", "override"));
    if (field(spec, "override") != NULL)
        ERR(ld, npos(field(spec, "override"), sp), "HealthCheckPolicy override is not supported (use default); "
            "refused rather than ignored");
    hcpolicy_t *p = VPUSH(ld, ld->hcpols, ld->nhcpols, ld->caphcpols);
    p->ns = md.ns;
    p->name = md.name;
    p->pos = at;
    struct fy_node *tr = get_map(ld, spec, "targetRef", true, sp);
    if (tr != NULL && !parse_svcref(ld, tr, sp, md.ns, false, &p->target))
        p->target.name = NULL;
    sg_healthcheck_t *hc = aalloc(ld, sizeof(*hc));
    p->hc = hc;
    size_t plen = strlen(md.ns) + strlen(md.name) + 2;
    char *pol = aalloc(ld, plen);
    snprintf(pol, plen, "%s/%s", md.ns, md.name);
    hc->policy = pol;
    hc->interval_ms = 5000;
    hc->use_tls = -1;
    hc->timeout_ms = 30000;
    hc->healthy_threshold = 1;
    hc->unhealthy_threshold = 3;
    hc->host = "localhost";
    hc->path = "/";
    hc->codes = aalloc(ld, sizeof(*hc->codes));
    hc->codes[0] = (sg_status_range_t){200, 399};
    hc->ncodes = 1;
    struct fy_node *def = get_map(ld, spec, "default", false, sp);
    if (def == NULL)
        return;
    pos_t dp = npos(def, sp);
    check_keys(ld, def, "HealthCheckPolicy default",
               KEYS("interval", "timeout", "healthyThreshold", "unhealthyThreshold", "port", "grpc", "http", "useTLS"));
    if (get_duration(ld, def, "interval", &hc->interval_ms, dp) && hc->interval_ms <= 0)
        ERR(ld, npos(field(def, "interval"), dp), "interval must be more than 0s");
    if (get_duration(ld, def, "timeout", &hc->timeout_ms, dp) && hc->timeout_ms <= 0)
        ERR(ld, npos(field(def, "timeout"), dp), "timeout must be more than 0s");
    long v;
    if (get_int(ld, def, "healthyThreshold", 1, 1000, false, &v, dp))
        hc->healthy_threshold = (int)v;
    if (get_int(ld, def, "unhealthyThreshold", 1, 1000, false, &v, dp))
        hc->unhealthy_threshold = (int)v;
    if (get_int(ld, def, "port", 1, 65535, false, &v, dp))
        hc->port = (uint16_t)v;
    struct fy_node *grpc = field(def, "grpc");
    if (grpc != NULL) {
        /* grpc.health.v1.Health/Check over HTTP/2 (h2c, or h2 over TLS), SERVING = healthy. */
        pos_t gp = npos(grpc, dp);
        if (fy_node_get_type(grpc) != FYNT_MAPPING) {
            ERR(ld, gp, "grpc: expected a mapping ({} for the defaults)");
        } else {
            check_keys(ld, grpc, "HealthCheckPolicy grpc", KEYS("authority", "service"));
            hc->grpc = true;
            hc->grpc_service = get_str(ld, grpc, "service", false, gp);
            hc->grpc_authority = get_str(ld, grpc, "authority", false, gp);
            if (hc->grpc_service && strlen(hc->grpc_service) > 1024)
                ERR(ld, npos(field(grpc, "service"), gp), "grpc.service: at most 1024 characters");
            if (hc->grpc_authority && !is_hostname(hc->grpc_authority, false))
                ERR(ld, npos(field(grpc, "authority"), gp), "grpc.authority \"%s\" is not a valid host name",
                    hc->grpc_authority);
        }
        if (field(def, "http") != NULL)
            ERR(ld, key_pos(def, "http", dp), "HealthCheckPolicy: http and grpc cannot both be given (one probe per "
                "endpoint)");
    }
    struct fy_node *tls = field(def, "useTLS");
    if (tls != NULL) {
        const char *tv = fy_node_get_type(tls) == FYNT_SCALAR ? fy_node_get_scalar0(tls) : NULL;
        if (tv == NULL || (strcmp(tv, "true") != 0 && strcmp(tv, "false") != 0))
            ERR(ld, npos(tls, dp), "useTLS: expected true or false");
        else
            hc->use_tls = strcmp(tv, "true") == 0;
        p->tlspos = npos(tls, dp);
    }
    struct fy_node *http = get_map(ld, def, "http", false, dp);
    if (http != NULL)
        parse_hc_http(ld, http, dp, hc);
}

/* ---- attaching backend policies ---- */

void sg__config_apply_backend_policies(loader_t *ld)
{
    for (size_t i = 0; i < ld->nlbpols; i++)
        for (size_t j = 0; j < i; j++)
            for (size_t a = 0; a < ld->lbpols[i].ntargets; a++)
                for (size_t b = 0; b < ld->lbpols[j].ntargets; b++)
                    if (svcref_overlap(&ld->lbpols[i].targets[a], &ld->lbpols[j].targets[b]))
                        ERR(ld, ld->lbpols[i].targets[a].pos, "BackendLoadBalancingPolicy %s/%s targets Service "
                            "%s/%s, as does %s/%s (line %d)", ld->lbpols[i].ns, ld->lbpols[i].name,
                            ld->lbpols[i].targets[a].ns, ld->lbpols[i].targets[a].name, ld->lbpols[j].ns,
                            ld->lbpols[j].name, ld->lbpols[j].pos.line);
    for (size_t i = 0; i < ld->nhcpols; i++)
        for (size_t j = 0; j < i; j++)
            if (svcref_overlap(&ld->hcpols[i].target, &ld->hcpols[j].target))
                ERR(ld, ld->hcpols[i].target.pos, "HealthCheckPolicy %s/%s targets Service %s/%s, as does %s/%s "
                    "(line %d)", ld->hcpols[i].ns, ld->hcpols[i].name, ld->hcpols[i].target.ns,
                    ld->hcpols[i].target.name, ld->hcpols[j].ns, ld->hcpols[j].name, ld->hcpols[j].pos.line);
    for (size_t r = 0; r < ld->nroutes; r++) {
        sg_route_t *rt = &ld->routes[r];
        for (size_t k = 0; k < rt->nrules; k++) {
            sg_rule_t *ru = &rt->rules[k];
            for (size_t bi = 0; bi < ru->nbackends; bi++) {
                sg_backend_t *b = &ru->backends[bi];
                b->ring_size = SG_RING_HASH_DEFAULT_SIZE;
                bool lb_done = false;
                for (size_t i = 0; i < ld->nlbpols && !lb_done; i++) {
                    lbpolicy_t *p = &ld->lbpols[i];
                    for (size_t t = 0; t < p->ntargets && !lb_done; t++) {
                        if (!svcref_matches(&p->targets[t], b))
                            continue;
                        b->lb = p->lb;
                        b->ring_size = p->ring_size;
                        b->hash_header = p->hash_header;
                        p->used = lb_done = true;
                    }
                }
                for (size_t i = 0; i < ld->nhcpols; i++) {
                    hcpolicy_t *p = &ld->hcpols[i];
                    if (svcref_matches(&p->target, b)) {
                        b->health_check = p->hc;
                        p->used = true;
                        break;
                    }
                }
            }
        }
    }
    /* A policy nobody uses is most likely a typo in its target. */
    for (size_t i = 0; i < ld->nlbpols; i++)
        if (!ld->lbpols[i].used && ld->lbpols[i].ntargets > 0)
            WARN(ld, ld->lbpols[i].pos, "BackendLoadBalancingPolicy %s/%s: no backendRef uses its target Service",
                 ld->lbpols[i].ns, ld->lbpols[i].name);
    for (size_t i = 0; i < ld->nhcpols; i++)
        if (!ld->hcpols[i].used && ld->hcpols[i].target.name != NULL)
            WARN(ld, ld->hcpols[i].pos, "HealthCheckPolicy %s/%s: no backendRef uses Service %s/%s",
                 ld->hcpols[i].ns, ld->hcpols[i].name, ld->hcpols[i].target.ns, ld->hcpols[i].target.name);
}
