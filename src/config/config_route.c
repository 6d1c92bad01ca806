/* config_route.c: the HTTPRoute phase: parentRefs, hostnames and rules (matches, filters, backendRefs, timeouts,
 * retry), with the regular expressions of matches compiled into the generation. */
#include "config/config_int.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- HTTPRoute ---- */

static void *compile_re(loader_t *ld, const char *re, struct fy_node *n, pos_t at)
{
    int ec;
    PCRE2_SIZE off;
    /* Whole-value match (as Envoy-based implementations do); bytes, not UTF, so no input is invalid. */
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED | PCRE2_ENDANCHORED,
                                     &ec, &off, NULL);
    if (code == NULL) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", ec);
        if (ec == PCRE2_ERROR_NOMEMORY)
            longjmp(ld->oom, 1);
        ERR(ld, npos(n, at), "invalid regular expression \"%s\" at offset %zu: %s", re, (size_t)off, (char *)msg);
        return NULL;
    }
    /* JIT is an optimisation: without it (e.g. unsupported CPU) pcre2_match interprets. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    priv_t *pv = ld->priv;
    if (pv->ncodes == pv->capcodes) {
        size_t ncap = pv->capcodes ? pv->capcodes * 2 : 16;
        pcre2_code **nc = realloc(pv->codes, ncap * sizeof(*nc));
        if (nc == NULL) {
            pcre2_code_free(code);
            longjmp(ld->oom, 1);
        }
        pv->codes = nc;
        pv->capcodes = ncap;
    }
    pv->codes[pv->ncodes++] = code;
    return code;
}

static bool valid_method(const char *m)
{
    static const char *const ms[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i < SG_ARRAY_LEN(ms); i++)
        if (strcmp(m, ms[i]) == 0)
            return true;
    return false;
}

static sg_header_mod_t *parse_header_mod(loader_t *ld, struct fy_node *n, pos_t at)
{
    sg_header_mod_t *hm = aalloc(ld, sizeof(*hm));
    check_keys(ld, n, "header modifier", KEYS("set", "add", "remove"));
    static const char *const which[] = {"set", "add"};
    for (int w = 0; w < 2; w++) {
        struct fy_node *s = get_seq(ld, n, which[w], false, at);
        size_t cnt = seq_len(s), k = 0;
        sg_kv_t *kv = aalloc(ld, (cnt + 1) * sizeof(*kv));
        void *it = NULL;
        struct fy_node *e;
        if (cnt > 16)
            ERR(ld, npos(s, at), "%s: at most 16 entries", which[w]);
        while (s && (e = fy_node_sequence_iterate(s, &it)) != NULL) {
            pos_t ep = npos(e, at);
            if (fy_node_get_type(e) != FYNT_MAPPING) {
                ERR(ld, ep, "%s[]: expected a mapping with name and value", which[w]);
                continue;
            }
            check_keys(ld, e, "header", KEYS("name", "value"));
            char *name = get_str(ld, e, "name", true, ep);
            char *value = get_str(ld, e, "value", true, ep);
            if (name == NULL || value == NULL)
                continue;
            if (!is_token(name)) {
                ERR(ld, ep, "header name \"%s\" is not a valid token", name);
                continue;
            }
            /* Only the gateway speaks for the client's certificate (docs/operations.md): a route that set it would
             * forge an identity for every client. */
            if (sg_str_ieq(sg_str_c(name), SG_STR("X-Forwarded-Client-Cert"))) {
                ERR(ld, ep, "header \"%s\" is set by the gateway from the client's certificate; a filter may not "
                    "set or add it", name);
                continue;
            }
            if (strpbrk(value, "\r\n") != NULL) {
                ERR(ld, ep, "header value for \"%s\" contains CR or LF", name);
                continue;
            }
            bool dup = false;
            for (size_t j = 0; j < k; j++)
                dup |= sg_str_ieq(sg_str_c(kv[j].name), sg_str_c(name));
            if (dup) {
                ERR(ld, ep, "%s: duplicate header name \"%s\"", which[w], name);
                continue;
            }
            kv[k].name = name;
            kv[k++].value = value;
        }
        if (w == 0) {
            hm->set = kv;
            hm->nset = k;
        } else {
            hm->add = kv;
            hm->nadd = k;
        }
    }
    struct fy_node *rm = get_seq(ld, n, "remove", false, at);
    hm->remove = aalloc(ld, (seq_len(rm) + 1) * sizeof(char *));
    void *it = NULL;
    struct fy_node *e;
    while (rm && (e = fy_node_sequence_iterate(rm, &it)) != NULL) {
        char *name = scalar_str(ld, e, "remove[]", at);
        if (name == NULL)
            continue;
        if (!is_token(name)) {
            ERR(ld, npos(e, at), "header name \"%s\" is not a valid token", name);
            continue;
        }
        hm->remove[hm->nremove++] = name;
    }
    return hm;
}

/* path {type: ReplaceFullPath|ReplacePrefixMatch, ...} of a redirect or rewrite. */
static void parse_pathmod(loader_t *ld, struct fy_node *n, pos_t at, sg_pathmod_t *kind, char **path)
{
    struct fy_node *p = get_map(ld, n, "path", false, at);
    *kind = SG_PATHMOD_NONE;
    if (p == NULL)
        return;
    pos_t pp = npos(p, at);
    check_keys(ld, p, "path modifier", KEYS("type", "replaceFullPath", "replacePrefixMatch"));
    char *type = get_str(ld, p, "type", true, pp);
    if (type == NULL)
        return;
    const char *key;
    if (strcmp(type, "ReplaceFullPath") == 0) {
        *kind = SG_PATHMOD_FULL;
        key = "replaceFullPath";
    } else if (strcmp(type, "ReplacePrefixMatch") == 0) {
        *kind = SG_PATHMOD_PREFIX;
        key = "replacePrefixMatch";
    } else {
        ERR(ld, npos(field(p, "type"), pp), "path type \"%s\" must be ReplaceFullPath or ReplacePrefixMatch", type);
        return;
    }
    const char *other = *kind == SG_PATHMOD_FULL ? "replacePrefixMatch" : "replaceFullPath";
    if (field(p, other) != NULL)
        ERR(ld, npos(field(p, other), pp), "%s is not allowed with type %s", other, type);
    *path = get_str(ld, p, key, true, pp);
    if (*path != NULL && !valid_path(*path)) {
        ERR(ld, npos(field(p, key), pp), "%s \"%s\" must be an absolute path", key, *path);
        *path = NULL;
    }
    if (*path == NULL)
        *kind = SG_PATHMOD_NONE;
}

/* filters[] into f. `prefix_ok`: the rule has exactly one PathPrefix match (ReplacePrefixMatch needs it). */
static void parse_filters(loader_t *ld, struct fy_node *seq, pos_t at, sg_filters_t *f, bool prefix_ok,
                          bool backend_level)
{
    void *it = NULL;
    struct fy_node *n;
    while ((n = fy_node_sequence_iterate(seq, &it)) != NULL) {
        pos_t fp = npos(n, at);
        if (fy_node_get_type(n) != FYNT_MAPPING) {
            ERR(ld, fp, "filters[]: expected a mapping");
            continue;
        }
        char *type = get_str(ld, n, "type", true, fp);
        if (type == NULL)
            continue;
        check_keys(ld, n, "filter",
                   KEYS("type", "requestHeaderModifier", "responseHeaderModifier", "requestRedirect", "urlRewrite",
                        "requestMirror", "extensionRef", "cors"));
        static const struct {
            const char *type, *key;
        } kinds[] = {{"RequestHeaderModifier", "requestHeaderModifier"},
                     {"ResponseHeaderModifier", "responseHeaderModifier"},
                     {"RequestRedirect", "requestRedirect"},
                     {"URLRewrite", "urlRewrite"}};
        size_t k;
        for (k = 0; k < SG_ARRAY_LEN(kinds); k++)
            if (strcmp(type, kinds[k].type) == 0)
                break;
        if (k == SG_ARRAY_LEN(kinds)) {
            ERR(ld, npos(field(n, "type"), fp), "filter type \"%s\" is not supported", type);
            continue;
        }
        for (size_t j = 0; j < SG_ARRAY_LEN(kinds); j++)
            if (j != k && field(n, kinds[j].key) != NULL)
                ERR(ld, npos(field(n, kinds[j].key), fp), "filter of type %s must not set %s", type, kinds[j].key);
        static const char *const unserved[] = {"requestMirror", "extensionRef", "cors"};
        for (size_t j = 0; j < SG_ARRAY_LEN(unserved); j++)
            if (field(n, unserved[j]) != NULL)
                ERR(ld, npos(field(n, unserved[j]), fp), "filter of type %s must not set %s", type, unserved[j]);
        struct fy_node *cfgn = get_map(ld, n, kinds[k].key, true, fp);
        if (cfgn == NULL)
            continue;
        pos_t cp = npos(cfgn, fp);
        void **slot = k == 0 ? (void **)&f->req_headers : k == 1 ? (void **)&f->resp_headers
                    : k == 2 ? (void **)&f->redirect : (void **)&f->rewrite;
        if (*slot != NULL) {
            ERR(ld, fp, "filter %s given twice", type);
            continue;
        }
        if (k <= 1) {
            *slot = parse_header_mod(ld, cfgn, cp);
        } else if (k == 2) {
            sg_redirect_t *r = aalloc(ld, sizeof(*r));
            check_keys(ld, cfgn, "requestRedirect", KEYS("scheme", "hostname", "path", "port", "statusCode"));
            r->scheme = get_str(ld, cfgn, "scheme", false, cp);
            if (r->scheme && strcmp(r->scheme, "http") != 0 && strcmp(r->scheme, "https") != 0) {
                ERR(ld, npos(field(cfgn, "scheme"), cp), "redirect scheme \"%s\" must be http or https", r->scheme);
                r->scheme = NULL;
            }
            r->hostname = get_str(ld, cfgn, "hostname", false, cp);
            if (r->hostname && !is_hostname(r->hostname, false)) {
                ERR(ld, npos(field(cfgn, "hostname"), cp), "redirect hostname \"%s\" is not a valid host name",
                    r->hostname);
                r->hostname = NULL;
            }
            parse_pathmod(ld, cfgn, cp, &r->path_kind, &r->path);
            long v;
            if (get_int(ld, cfgn, "port", 1, 65535, false, &v, cp))
                r->port = (int)v;
            r->status = 302;
            if (get_int(ld, cfgn, "statusCode", 0, 999, false, &v, cp)) {
                if (v == 301 || v == 302 || v == 303 || v == 307 || v == 308)
                    r->status = (int)v;
                else
                    ERR(ld, npos(field(cfgn, "statusCode"), cp), "redirect statusCode %ld must be one of 301, 302, "
                        "303, 307, 308", v);
            }
            if (r->path_kind == SG_PATHMOD_PREFIX && !prefix_ok)
                ERR(ld, cp, "ReplacePrefixMatch requires exactly one match of type PathPrefix in the rule");
            *slot = r;
        } else {
            sg_rewrite_t *w = aalloc(ld, sizeof(*w));
            check_keys(ld, cfgn, "urlRewrite", KEYS("hostname", "path"));
            w->hostname = get_str(ld, cfgn, "hostname", false, cp);
            if (w->hostname && !is_hostname(w->hostname, false)) {
                ERR(ld, npos(field(cfgn, "hostname"), cp), "rewrite hostname \"%s\" is not a valid host name",
                    w->hostname);
                w->hostname = NULL;
            }
            parse_pathmod(ld, cfgn, cp, &w->path_kind, &w->path);
            if (w->path_kind == SG_PATHMOD_PREFIX && !prefix_ok)
                ERR(ld, cp, "ReplacePrefixMatch requires exactly one match of type PathPrefix in the rule");
            *slot = w;
        }
    }
    if (f->redirect && f->rewrite)
        ERR(ld, at, "filters: RequestRedirect and URLRewrite cannot be combined");
    (void)backend_level;
}

static void parse_value_matches(loader_t *ld, struct fy_node *seq, pos_t at, bool header, sg_value_match_t **out,
                                size_t *nout)
{
    size_t cnt = seq_len(seq), k = 0;
    sg_value_match_t *vm = aalloc(ld, (cnt + 1) * sizeof(*vm));
    const char *what = header ? "headers" : "queryParams";
    if (cnt > 16)
        ERR(ld, npos(seq, at), "%s: at most 16 entries", what);
    void *it = NULL;
    struct fy_node *e;
    while (seq && (e = fy_node_sequence_iterate(seq, &it)) != NULL) {
        pos_t ep = npos(e, at);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, ep, "%s[]: expected a mapping", what);
            continue;
        }
        check_keys(ld, e, what, KEYS("type", "name", "value"));
        char *type = get_str(ld, e, "type", false, ep);
        char *name = get_str(ld, e, "name", true, ep);
        char *value = get_str(ld, e, "value", true, ep);
        sg_match_type_t t = SG_MATCH_EXACT;
        if (type && strcmp(type, "RegularExpression") == 0) {
            t = SG_MATCH_REGEX;
        } else if (type && strcmp(type, "Exact") != 0) {
            ERR(ld, npos(field(e, "type"), ep), "%s type \"%s\" must be Exact or RegularExpression", what, type);
            continue;
        }
        if (name == NULL || value == NULL)
            continue;
        if (header ? !is_token(name) : name[0] == '\0') {
            ERR(ld, npos(field(e, "name"), ep), "%s name \"%s\" is not valid", what, name);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            dup |= header ? sg_str_ieq(sg_str_c(vm[j].name), sg_str_c(name)) : strcmp(vm[j].name, name) == 0;
        if (dup) {
            ERR(ld, npos(field(e, "name"), ep), "%s: duplicate name \"%s\"", what, name);
            continue;
        }
        vm[k].type = t;
        vm[k].name = name;
        vm[k].value = value;
        if (t == SG_MATCH_REGEX && (vm[k].re = compile_re(ld, value, field(e, "value"), ep)) == NULL)
            continue;
        k++;
    }
    *out = vm;
    *nout = k;
}

static void parse_match(loader_t *ld, struct fy_node *n, pos_t at, sg_match_t *m)
{
    m->path_type = SG_MATCH_PREFIX;
    m->path = astrdup(ld, "/");
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(ld, at, "matches[]: expected a mapping");
        return;
    }
    check_keys(ld, n, "match", KEYS("path", "headers", "queryParams", "method"));
    struct fy_node *p = get_map(ld, n, "path", false, at);
    if (p != NULL) {
        pos_t pp = npos(p, at);
        check_keys(ld, p, "path match", KEYS("type", "value"));
        char *type = get_str(ld, p, "type", false, pp);
        char *value = get_str(ld, p, "value", false, pp);
        if (type == NULL || strcmp(type, "PathPrefix") == 0) {
            m->path_type = SG_MATCH_PREFIX;
        } else if (strcmp(type, "Exact") == 0) {
            m->path_type = SG_MATCH_EXACT;
        } else if (strcmp(type, "RegularExpression") == 0) {
            m->path_type = SG_MATCH_REGEX;
        } else {
            ERR(ld, npos(field(p, "type"), pp), "path match type \"%s\" must be Exact, PathPrefix or "
                "RegularExpression", type);
        }
        if (value != NULL)
            m->path = value;
        if (m->path_type == SG_MATCH_REGEX) {
            m->path_re = compile_re(ld, m->path, field(p, "value"), pp);
        } else if (!valid_path(m->path)) {
            ERR(ld, npos(field(p, "value"), pp), "path value \"%s\" must be an absolute path starting with '/'",
                m->path);
        }
    }
    parse_value_matches(ld, get_seq(ld, n, "headers", false, at), at, true, &m->headers, &m->nheaders);
    parse_value_matches(ld, get_seq(ld, n, "queryParams", false, at), at, false, &m->query, &m->nquery);
    m->method = get_str(ld, n, "method", false, at);
    if (m->method && !valid_method(m->method)) {
        ERR(ld, npos(field(n, "method"), at), "method \"%s\" is not one of GET HEAD POST PUT DELETE CONNECT OPTIONS "
            "TRACE PATCH", m->method);
        m->method = NULL;
    }
}

static void parse_backend(loader_t *ld, struct fy_node *n, pos_t at, const char *ns, bool prefix_ok,
                          sg_backend_t *b)
{
    check_keys(ld, n, "backendRef", KEYS("group", "kind", "name", "namespace", "port", "weight", "filters"));
    char *group = get_str(ld, n, "group", false, at);
    char *kind = get_str(ld, n, "kind", false, at);
    if ((group && group[0] != '\0') || (kind && strcmp(kind, "Service") != 0))
        ERR(ld, at, "backendRef kind %s/%s not supported (only core Service)", group ? group : "",
            kind ? kind : "Service");
    b->line = at.line;
    b->col = at.col;
    b->name = get_str(ld, n, "name", true, at);
    b->ns = get_str(ld, n, "namespace", false, at);
    if (b->ns == NULL)
        b->ns = astrdup(ld, ns);
    long v;
    if (get_int(ld, n, "port", 1, 65535, false, &v, at))
        b->port = (uint16_t)v;
    else if (field(n, "port") == NULL)
        ERR(ld, at, "backendRef to a Service requires \"port\"");
    b->weight = 1;
    if (get_int(ld, n, "weight", 0, 1000000, false, &v, at))
        b->weight = (uint32_t)v;
    struct fy_node *fs = get_seq(ld, n, "filters", false, at);
    if (fs != NULL)
        parse_filters(ld, fs, npos(fs, at), &b->filters, prefix_ok, true);
}

static void parse_rule(loader_t *ld, struct fy_node *n, pos_t at, sg_route_t *rt, sg_rule_t *r)
{
    r->request_timeout_ms = SG_TIMEOUT_UNSET;
    r->backend_timeout_ms = SG_TIMEOUT_UNSET;
    r->heartbeat_ms = SG_TIMEOUT_UNSET;
    r->route = rt;
    r->line = at.line;
    r->col = at.col;
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(ld, at, "rules[]: expected a mapping");
        return;
    }
    check_keys(ld, n, "rule",
               KEYS("name", "matches", "filters", "backendRefs", "timeouts", "retry", "sessionPersistence"));
    if (field(n, "sessionPersistence") != NULL)
        ERR(ld, npos(field(n, "sessionPersistence"), at), "sessionPersistence is not supported yet (use a "
            "RoutePolicy sessionAffinity); refused rather than ignored");
    r->name = get_str(ld, n, "name", false, at);
    struct fy_node *ms = get_seq(ld, n, "matches", false, at);
    size_t nm = seq_len(ms);
    if (nm > 64)
        ERR(ld, npos(ms, at), "matches: at most 64 entries");
    r->matches = aalloc(ld, (nm + 1) * sizeof(*r->matches));
    void *it = NULL;
    struct fy_node *e;
    while (ms && (e = fy_node_sequence_iterate(ms, &it)) != NULL) {
        sg_match_t *m = &r->matches[r->nmatches];
        m->index = r->nmatches++;
        parse_match(ld, e, npos(e, at), m);
    }
    /* ReplacePrefixMatch needs the prefix it replaces: one match, of type PathPrefix (the default). */
    bool prefix_ok = r->nmatches == 0 || (r->nmatches == 1 && r->matches[0].path_type == SG_MATCH_PREFIX);
    struct fy_node *fs = get_seq(ld, n, "filters", false, at);
    if (fs != NULL)
        parse_filters(ld, fs, npos(fs, at), &r->filters, prefix_ok, false);
    struct fy_node *bs = get_seq(ld, n, "backendRefs", false, at);
    size_t nb = seq_len(bs);
    r->backends = aalloc(ld, (nb + 1) * sizeof(*r->backends));
    it = NULL;
    while (bs && (e = fy_node_sequence_iterate(bs, &it)) != NULL) {
        pos_t bp = npos(e, at);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, bp, "backendRefs[]: expected a mapping");
            continue;
        }
        parse_backend(ld, e, bp, rt->ns, prefix_ok, &r->backends[r->nbackends++]);
    }
    if (r->filters.redirect != NULL && r->nbackends > 0)
        ERR(ld, at, "a rule with a RequestRedirect filter must not have backendRefs");
    struct fy_node *to = get_map(ld, n, "timeouts", false, at);
    if (to != NULL) {
        pos_t tp = npos(to, at);
        check_keys(ld, to, "timeouts", KEYS("request", "backendRequest"));
        get_duration(ld, to, "request", &r->request_timeout_ms, tp);
        get_duration(ld, to, "backendRequest", &r->backend_timeout_ms, tp);
        if (r->request_timeout_ms > 0 && r->backend_timeout_ms > r->request_timeout_ms)
            ERR(ld, tp, "timeouts: backendRequest must not be longer than request");
    }
    struct fy_node *rty = get_map(ld, n, "retry", false, at);
    if (rty != NULL) {
        pos_t yp = npos(rty, at);
        check_keys(ld, rty, "retry", KEYS("codes", "attempts", "backoff"));
        sg_retry_t *y = aalloc(ld, sizeof(*y));
        y->backoff_ms = SG_TIMEOUT_UNSET;
        long v;
        if (get_int(ld, rty, "attempts", 0, 1000, false, &v, yp))
            y->attempts = (int)v;
        get_duration(ld, rty, "backoff", &y->backoff_ms, yp);
        struct fy_node *cs = get_seq(ld, rty, "codes", false, yp);
        y->codes = aalloc(ld, (seq_len(cs) + 1) * sizeof(int));
        void *it2 = NULL;
        while (cs && (e = fy_node_sequence_iterate(cs, &it2)) != NULL)
            if (scalar_int(ld, e, "codes[]", 400, 599, &v, yp))
                y->codes[y->ncodes++] = (int)v;
        r->retry = y;
    }
}

void parse_httproute(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    for (size_t i = 0; i < ld->nroutes; i++)
        if (strcmp(ld->routes[i].name, md.name) == 0 && strcmp(ld->routes[i].ns, md.ns) == 0)
            ERR(ld, at, "duplicate HTTPRoute %s/%s (first at line %d)", md.ns, md.name, ld->routes[i].line);
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "HTTPRoute spec", KEYS("parentRefs", "hostnames", "rules"));
    sg_route_t *rt = VPUSH(ld, ld->routes, ld->nroutes, ld->caproutes);
    rt->ns = md.ns;
    rt->name = md.name;
    rt->order = ld->route_order++;
    rt->policy_timeout_ms = SG_TIMEOUT_UNSET;
    rt->heartbeat_ms = SG_TIMEOUT_UNSET;
    rt->file = ld->file;
    rt->line = at.line;
    rt->col = at.col;

    struct fy_node *ps = get_seq(ld, spec, "parentRefs", true, sp);
    rt->parents = aalloc(ld, (seq_len(ps) + 1) * sizeof(*rt->parents));
    void *it = NULL;
    struct fy_node *e;
    while (ps && (e = fy_node_sequence_iterate(ps, &it)) != NULL) {
        pos_t pp = npos(e, sp);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, pp, "parentRefs[]: expected a mapping");
            continue;
        }
        check_keys(ld, e, "parentRef", KEYS("group", "kind", "name", "namespace", "sectionName", "port"));
        char *kind = get_str(ld, e, "kind", false, pp);
        if (kind && strcmp(kind, "Gateway") != 0) {
            ERR(ld, pp, "parentRef kind \"%s\" not supported (only Gateway)", kind);
            continue;
        }
        sg_parent_ref_t *pr = &rt->parents[rt->nparents];
        pr->name = get_str(ld, e, "name", true, pp);
        pr->ns = get_str(ld, e, "namespace", false, pp);
        pr->section = get_str(ld, e, "sectionName", false, pp);
        long v;
        if (get_int(ld, e, "port", 1, 65535, false, &v, pp))
            pr->port = (uint16_t)v;
        pr->line = pp.line;
        pr->col = pp.col;
        if (pr->ns == NULL)
            pr->ns = md.ns;
        if (pr->name != NULL)
            rt->nparents++;
    }
    struct fy_node *hs = get_seq(ld, spec, "hostnames", false, sp);
    rt->hostnames = aalloc(ld, (seq_len(hs) + 1) * sizeof(char *));
    it = NULL;
    while (hs && (e = fy_node_sequence_iterate(hs, &it)) != NULL) {
        char *h = scalar_str(ld, e, "hostnames[]", sp);
        if (h == NULL)
            continue;
        if (!is_hostname(h, true)) {
            ERR(ld, npos(e, sp), "hostname \"%s\" is not a valid (wildcard) host name", h);
            continue;
        }
        rt->hostnames[rt->nhostnames++] = h;
    }
    struct fy_node *rs = get_seq(ld, spec, "rules", false, sp);
    size_t nr = seq_len(rs);
    rt->rules = aalloc(ld, (nr + 1) * sizeof(*rt->rules));
    it = NULL;
    while (rs && (e = fy_node_sequence_iterate(rs, &it)) != NULL) {
        sg_rule_t *r = &rt->rules[rt->nrules];
        r->index = rt->nrules++;
        parse_rule(ld, e, npos(e, sp), rt, r);
    }
    if (rs == NULL) {
        /* The CRD defaults rules to one rule matching PathPrefix "/" with no backends. */
        sg_rule_t *r = &rt->rules[rt->nrules++];
        r->request_timeout_ms = SG_TIMEOUT_UNSET;
        r->backend_timeout_ms = SG_TIMEOUT_UNSET;
        r->heartbeat_ms = SG_TIMEOUT_UNSET;
        r->route = rt;
        r->line = sp.line;
        r->col = sp.col;
        r->matches = NULL;
        r->backends = NULL;
    }
}
