/* config_grpcroute.c: the GRPCRoute phase (gateway.networking.k8s.io/v1): rules with service/method and header
 * matches, the header filters and weighted backendRefs; what ssegate does not serve is refused. */
#include "config/config_int.h"

#include <stdio.h>
#include <string.h>

/* The CRD's syntax for an Exact service: ^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$ */
static bool valid_service(const char *s)
{
    if (*s == '.')
        s++;
    for (;;) {
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return false;
        s++;
        while (*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9'))
            s++;
        if (*s == '\0')
            return true;
        if (*s++ != '.')
            return false;
    }
}

/* ... and for an Exact method: ^[A-Za-z_][A-Za-z_0-9]*$ */
static bool valid_method_name(const char *s)
{
    if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return false;
    for (s++; *s; s++)
        if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static void parse_method(loader_t *ld, struct fy_node *n, pos_t at, sg_match_t *m)
{
    check_keys(ld, n, "GRPCRoute method match", KEYS("type", "service", "method"));
    sg_grpc_method_t *g = aalloc(ld, sizeof(*g));
    char *type = get_str(ld, n, "type", false, at);
    g->type = SG_MATCH_EXACT;
    if (type != NULL && strcmp(type, "RegularExpression") == 0) {
        g->type = SG_MATCH_REGEX;
    } else if (type != NULL && strcmp(type, "Exact") != 0) {
        ERR(ld, npos(field(n, "type"), at), "method match type \"%s\" must be Exact or RegularExpression", type);
        return;
    }
    g->service = get_str(ld, n, "service", false, at);
    g->method = get_str(ld, n, "method", false, at);
    /* An empty value means "any", as an absent one does. */
    if (g->service && g->service[0] == '\0')
        g->service = NULL;
    if (g->method && g->method[0] == '\0')
        g->method = NULL;
    if (g->service == NULL && g->method == NULL) {
        ERR(ld, at, "method match: one or both of service and method must be given");
        return;
    }
    const char *sides[2] = {g->service, g->method};
    static const char *const keys[2] = {"service", "method"};
    for (int i = 0; i < 2; i++) {
        if (sides[i] == NULL)
            continue;
        pos_t vp = npos(field(n, keys[i]), at);
        if (strlen(sides[i]) > 1024) {
            ERR(ld, vp, "%s: at most 1024 characters", keys[i]);
            return;
        }
        if (g->type == SG_MATCH_EXACT && !(i == 0 ? valid_service(sides[i]) : valid_method_name(sides[i]))) {
            ERR(ld, vp, "%s \"%s\" is not a valid gRPC %s name (Exact %s must match %s)", keys[i], sides[i], keys[i],
                keys[i], i == 0 ? "^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$" : "^[A-Za-z_][A-Za-z_0-9]*$");
            return;
        }
        if (g->type == SG_MATCH_REGEX) {
            void *re = compile_re(ld, sides[i], field(n, keys[i]), at);
            if (re == NULL)
                return;
            if (i == 0)
                g->service_re = re;
            else
                g->method_re = re;
        }
    }
    m->grpc = g;
}

static void parse_match(loader_t *ld, struct fy_node *n, pos_t at, sg_match_t *m)
{
    m->path_type = SG_MATCH_PREFIX;
    m->path = astrdup(ld, "/");
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(ld, at, "matches[]: expected a mapping");
        return;
    }
    check_keys(ld, n, "GRPCRoute match", KEYS("method", "headers"));
    struct fy_node *mm = get_map(ld, n, "method", false, at);
    if (mm != NULL)
        parse_method(ld, mm, npos(mm, at), m);
    parse_value_matches(ld, get_seq(ld, n, "headers", false, at), at, true, &m->headers, &m->nheaders);
}

/* filters[] of a rule or a backendRef: the two header modifiers; RequestMirror and ExtensionRef are refused. */
static void parse_filters(loader_t *ld, struct fy_node *seq, pos_t at, sg_filters_t *f)
{
    if (seq_len(seq) > 16)
        ERR(ld, npos(seq, at), "filters: at most 16 entries");
    void *it = NULL;
    struct fy_node *n;
    while ((n = fy_node_sequence_iterate(seq, &it)) != NULL) {
        pos_t fp = npos(n, at);
        if (fy_node_get_type(n) != FYNT_MAPPING) {
            ERR(ld, fp, "filters[]: expected a mapping");
            continue;
        }
        check_keys(ld, n, "GRPCRoute filter",
                   KEYS("type", "requestHeaderModifier", "responseHeaderModifier", "requestMirror", "extensionRef"));
        char *type = get_str(ld, n, "type", true, fp);
        if (type == NULL)
            continue;
        bool req = strcmp(type, "RequestHeaderModifier") == 0, resp = strcmp(type, "ResponseHeaderModifier") == 0;
        if (strcmp(type, "RequestMirror") == 0 || strcmp(type, "ExtensionRef") == 0) {
            /* Refused rather than skipped: the spec says a filter that cannot be applied must not be ignored. */
            ERR(ld, npos(field(n, "type"), fp), "GRPCRoute filter type %s is not supported by ssegate; refused "
                "rather than ignored", type);
            continue;
        }
        if (!req && !resp) {
            ERR(ld, npos(field(n, "type"), fp), "GRPCRoute filter type \"%s\" is not one of RequestHeaderModifier, "
                "ResponseHeaderModifier, RequestMirror, ExtensionRef", type);
            continue;
        }
        const char *key = req ? "requestHeaderModifier" : "responseHeaderModifier";
        static const char *const others[] = {"requestHeaderModifier", "responseHeaderModifier", "requestMirror",
                                             "extensionRef"};
        for (size_t j = 0; j < SG_ARRAY_LEN(others); j++)
            if (strcmp(others[j], key) != 0 && field(n, others[j]) != NULL)
                ERR(ld, npos(field(n, others[j]), fp), "filter of type %s must not set %s", type, others[j]);
        struct fy_node *cfgn = get_map(ld, n, key, true, fp);
        if (cfgn == NULL)
            continue;
        sg_header_mod_t **slot = req ? &f->req_headers : &f->resp_headers;
        if (*slot != NULL) {
            ERR(ld, fp, "filter %s given twice", type);
            continue;
        }
        *slot = parse_header_mod(ld, cfgn, npos(cfgn, fp));
    }
}

static void rule_defaults(sg_route_t *rt, sg_rule_t *r, pos_t at)
{
    r->request_timeout_ms = SG_TIMEOUT_UNSET;
    r->backend_timeout_ms = SG_TIMEOUT_UNSET;
    r->heartbeat_ms = SG_TIMEOUT_UNSET;
    r->route = rt;
    r->line = at.line;
    r->col = at.col;
}

static void parse_rule(loader_t *ld, struct fy_node *n, pos_t at, sg_route_t *rt, sg_rule_t *r)
{
    rule_defaults(rt, r, at);
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(ld, at, "rules[]: expected a mapping");
        return;
    }
    check_keys(ld, n, "GRPCRoute rule", KEYS("name", "matches", "filters", "backendRefs", "sessionPersistence"));
    rule_common(ld, n, at, r, parse_match);
    struct fy_node *fs = get_seq(ld, n, "filters", false, at);
    if (fs != NULL)
        parse_filters(ld, fs, npos(fs, at), &r->filters);
    struct fy_node *bs = get_seq(ld, n, "backendRefs", false, at);
    size_t nb = seq_len(bs);
    if (nb > 16)
        ERR(ld, npos(bs, at), "backendRefs: at most 16 entries");
    r->backends = aalloc(ld, (nb + 1) * sizeof(*r->backends));
    void *it = NULL;
    struct fy_node *e;
    while (bs && (e = fy_node_sequence_iterate(bs, &it)) != NULL) {
        pos_t bp = npos(e, at);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, bp, "backendRefs[]: expected a mapping");
            continue;
        }
        sg_backend_t *b = &r->backends[r->nbackends++];
        parse_backend_ref(ld, e, bp, rt->ns, b);
        struct fy_node *bf = get_seq(ld, e, "filters", false, bp);
        if (bf != NULL)
            parse_filters(ld, bf, npos(bf, bp), &b->filters);
    }
}

void parse_grpcroute(loader_t *ld, struct fy_node *root, pos_t at)
{
    struct fy_node *spec;
    sg_route_t *rt = parse_route_head(ld, root, at, SG_ROUTE_GRPC, &spec);
    if (rt == NULL)
        return;
    pos_t sp = npos(spec, at);
    struct fy_node *rs = get_seq(ld, spec, "rules", false, sp);
    size_t nr = seq_len(rs);
    if (nr > 16)
        ERR(ld, npos(rs, sp), "rules: at most 16 entries");
    rt->rules = aalloc(ld, (nr + 1) * sizeof(*rt->rules));
    void *it = NULL;
    struct fy_node *e;
    size_t total = 0, ri = 0;
    while (rs && (e = fy_node_sequence_iterate(rs, &it)) != NULL) {
        if (sg__config_dropped(ld, DX_RULE, ri++))
            continue;
        sg_rule_t *r = &rt->rules[rt->nrules];
        r->index = rt->nrules++;
        parse_rule(ld, e, npos(e, sp), rt, r);
        total += r->nmatches;
    }
    if (total > 128)
        ERR(ld, npos(rs, sp), "rules: at most 128 matches across all rules of a GRPCRoute");
    if (rs == NULL) {
        /* No rules: one rule that matches every call and has no backend (every call gets UNAVAILABLE). */
        sg_rule_t *r = &rt->rules[rt->nrules++];
        rule_defaults(rt, r, sp);
    }
}
