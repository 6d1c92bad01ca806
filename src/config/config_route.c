/* config_route.c: the HTTPRoute phase: parentRefs, hostnames and rules (matches, filters, backendRefs, timeouts,
 * retry), with the regular expressions of matches compiled into the generation. */
#include "config/config_int.h"
#include "config/cors.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- HTTPRoute ---- */

void *compile_re(loader_t *ld, const char *re, struct fy_node *n, pos_t at)
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

sg_header_mod_t *parse_header_mod(loader_t *ld, struct fy_node *n, pos_t at)
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

/* A plain true or false; returns false (and *out untouched) when absent or invalid (reported). */
static bool get_bool(loader_t *ld, struct fy_node *m, const char *key, bool *out, pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL)
        return false;
    const char *s = fy_node_get_type(v) == FYNT_SCALAR && fy_node_get_style(v) == FYNS_PLAIN
                        ? fy_node_get_scalar0(v) : NULL;
    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        *out = s[0] == 't';
        return true;
    }
    ERR(ld, npos(v, at), "%s: expected true or false", key);
    return false;
}

/* A list of strings for the CORS filter: at most `max`, no duplicates (case-insensitive when `nocase`), "*" only
 * alone. Returns the entries (in the arena) with their positions in *pos, their count in *n and whether "*" was
 * among them. */
static char **cors_list(loader_t *ld, struct fy_node *m, const char *key, size_t max, bool nocase, size_t *n,
                        bool *star, pos_t **pos, pos_t at)
{
    struct fy_node *s = get_seq(ld, m, key, false, at);
    size_t cnt = seq_len(s);
    char **v = aalloc(ld, (cnt + 1) * sizeof(char *));
    *pos = aalloc(ld, (cnt + 1) * sizeof(pos_t));
    *n = 0;
    *star = false;
    if (cnt > max)
        ERR(ld, npos(s, at), "%s: at most %zu entries", key, max);
    void *it = NULL;
    struct fy_node *e;
    while (s && (e = fy_node_sequence_iterate(s, &it)) != NULL) {
        char *x = scalar_str(ld, e, key, at);
        if (x == NULL)
            continue;
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = nocase ? sg_str_ieq(sg_str_c(v[j]), sg_str_c(x)) : strcmp(v[j], x) == 0;
        if (dup) {
            ERR(ld, npos(e, at), "%s: \"%s\" is listed twice", key, x);
            continue;
        }
        if (strcmp(x, "*") == 0)
            *star = true;
        (*pos)[*n] = npos(e, at);
        v[(*n)++] = x;
    }
    if (*star && *n > 1)
        ERR(ld, npos(s, at), "%s: \"*\" already allows everything; it cannot be listed with other entries", key);
    return v;
}

static char *join(loader_t *ld, char **v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(v[i]) + 2;
    char *out = aalloc(ld, len), *p = out;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (i > 0) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, v[i], l);
        p += l;
    }
    *p = '\0';
    return out;
}

/* The cors block of a CORS filter (HTTPCORSFilter). Every field is checked here: what cannot be enforced as written
 * is refused. */
static sg_cors_t *parse_cors(loader_t *ld, struct fy_node *n, pos_t at)
{
    sg_cors_t *c = aalloc(ld, sizeof(*c));
    check_keys(ld, n, "cors", KEYS("allowOrigins", "allowCredentials", "allowMethods", "allowHeaders",
                                   "exposeHeaders", "maxAge"));
    size_t no, nm, nh, ne;
    bool expose_any;
    pos_t *op, *mp, *hp, *ep;

    char **origins = cors_list(ld, n, "allowOrigins", 64, true, &no, &c->any_origin, &op, at);
    c->origins = aalloc(ld, (no + 1) * sizeof(*c->origins));
    for (size_t j = 0; j < no && !c->any_origin; j++) {
        const char *why;
        /* Parsed from the arena copy: the slices must outlive the YAML document. */
        if (strlen(origins[j]) > 253)
            ERR(ld, op[j], "allowOrigins: \"%.64s...\" is longer than 253 characters", origins[j]);
        else if (sg_cors_origin_parse(sg_str_c(origins[j]), true, &c->origins[c->norigins], &why) != 0)
            ERR(ld, op[j], "allowOrigins: \"%s\": %s", origins[j], why);
        else
            c->norigins++;
    }
    get_bool(ld, n, "allowCredentials", &c->credentials, at);

    c->methods = cors_list(ld, n, "allowMethods", 9, false, &nm, &c->any_method, &mp, at);
    c->nmethods = nm;
    for (size_t j = 0; j < nm && !c->any_method; j++)
        if (!valid_method(c->methods[j]))
            ERR(ld, mp[j], "allowMethods: \"%s\" is not one of GET HEAD POST PUT DELETE CONNECT OPTIONS TRACE "
                "PATCH, or \"*\" alone", c->methods[j]);
    if (nm > 0 && !c->any_method)
        c->allow_methods = join(ld, c->methods, nm);

    c->headers = cors_list(ld, n, "allowHeaders", 64, true, &nh, &c->any_header, &hp, at);
    c->nheaders = nh;
    for (size_t j = 0; j < nh && !c->any_header; j++)
        if (!is_token(c->headers[j]))
            ERR(ld, hp[j], "allowHeaders: \"%s\" is not a valid header name", c->headers[j]);
    if (nh > 0 && !c->any_header)
        c->allow_headers = join(ld, c->headers, nh);

    char **expose = cors_list(ld, n, "exposeHeaders", 64, true, &ne, &expose_any, &ep, at);
    for (size_t j = 0; j < ne && !expose_any; j++)
        if (!is_token(expose[j]))
            ERR(ld, ep[j], "exposeHeaders: \"%s\" is not a valid header name", expose[j]);
    /* With credentials a browser reads "*" as a header named "*" (Fetch), so the setting would expose nothing
     * while it reads as "everything". */
    if (expose_any && c->credentials)
        ERR(ld, key_pos(n, "exposeHeaders", at), "exposeHeaders: \"*\" cannot be used with allowCredentials: true "
            "(browsers then read it as a header named \"*\"); list the header names");
    if (ne > 0)
        c->expose_headers = join(ld, expose, ne);

    long age = 5;
    if (field(n, "maxAge") != NULL && !get_int(ld, n, "maxAge", 1, 2147483647L, false, &age, at))
        age = 5;
    snprintf(c->max_age, sizeof(c->max_age), "%ld", age);
    return c;
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
                     {"URLRewrite", "urlRewrite"},
                     {"CORS", "cors"}};
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
        static const char *const unserved[] = {"requestMirror", "extensionRef"};
        for (size_t j = 0; j < SG_ARRAY_LEN(unserved); j++)
            if (field(n, unserved[j]) != NULL)
                ERR(ld, npos(field(n, unserved[j]), fp), "filter of type %s must not set %s", type, unserved[j]);
        struct fy_node *cfgn = get_map(ld, n, kinds[k].key, true, fp);
        if (cfgn == NULL)
            continue;
        pos_t cp = npos(cfgn, fp);
        void **slot = k == 0 ? (void **)&f->req_headers : k == 1 ? (void **)&f->resp_headers
                    : k == 2 ? (void **)&f->redirect : k == 3 ? (void **)&f->rewrite : (void **)&f->cors;
        if (*slot != NULL) {
            ERR(ld, fp, "filter %s given twice", type);
            continue;
        }
        if (k == 4) {
            /* The gateway answers a preflight before it chooses a backend, and a browser caches that answer for
             * the route: a policy that depended on the weighted pick would answer for one backend and apply
             * another's. */
            if (backend_level)
                ERR(ld, npos(field(n, "type"), fp), "a CORS filter on a backendRef is not supported (the gateway "
                    "answers preflights before it picks a backend); put it in the rule's filters");
            else
                *slot = parse_cors(ld, cfgn, cp);
        } else if (k <= 1) {
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
}

void parse_value_matches(loader_t *ld, struct fy_node *seq, pos_t at, bool header, sg_value_match_t **out,
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

void parse_backend_ref(loader_t *ld, struct fy_node *n, pos_t at, const char *ns, sg_backend_t *b)
{
    check_keys(ld, n, "backendRef", KEYS("group", "kind", "name", "namespace", "port", "weight", "filters"));
    char *group = get_str(ld, n, "group", false, at);
    char *kind = get_str(ld, n, "kind", false, at);
    if ((group && group[0] != '\0') || (kind && strcmp(kind, "Service") != 0))
        ERR(ld, at, "backendRef kind %s/%s not supported (InvalidKind): only core Service", group ? group : "",
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
}

static void parse_backend(loader_t *ld, struct fy_node *n, pos_t at, const char *ns, bool prefix_ok,
                          sg_backend_t *b)
{
    parse_backend_ref(ld, n, at, ns, b);
    struct fy_node *fs = get_seq(ld, n, "filters", false, at);
    if (fs != NULL)
        parse_filters(ld, fs, npos(fs, at), &b->filters, prefix_ok, true);
}


void rule_common(loader_t *ld, struct fy_node *n, pos_t at, sg_rule_t *r, match_parser_t parse_one)
{
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
        parse_one(ld, e, npos(e, at), m);
    }
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
    rule_common(ld, n, at, r, parse_match);
    /* ReplacePrefixMatch needs the prefix it replaces: one match, of type PathPrefix (the default). */
    bool prefix_ok = r->nmatches == 0 || (r->nmatches == 1 && r->matches[0].path_type == SG_MATCH_PREFIX);
    struct fy_node *fs = get_seq(ld, n, "filters", false, at);
    if (fs != NULL)
        parse_filters(ld, fs, npos(fs, at), &r->filters, prefix_ok, false);
    struct fy_node *bs = get_seq(ld, n, "backendRefs", false, at);
    size_t nb = seq_len(bs);
    r->backends = aalloc(ld, (nb + 1) * sizeof(*r->backends));
    void *it = NULL;
    struct fy_node *e;
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

static uint64_t route_key(sg_route_kind_t kind, const char *ns, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;
    for (const char *p = ns; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ '/') * 1099511628211ull;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* The first route read with this kind, namespace and name, or NULL: a hash table over ld->routes, so a thousand routes
 * are not a million comparisons. */
const sg_route_t *sg__config_find_route(const loader_t *ld, sg_route_kind_t kind, const char *ns, const char *name)
{
    if (ld->route_tabcap == 0)
        return NULL;
    size_t mask = ld->route_tabcap - 1;
    for (size_t i = route_key(kind, ns, name) & mask; ld->route_tab[i] != 0; i = (i + 1) & mask) {
        const sg_route_t *r = &ld->routes[ld->route_tab[i] - 1];
        if (r->kind == kind && strcmp(r->name, name) == 0 && strcmp(r->ns, ns) == 0)
            return r;
    }
    return NULL;
}

static void route_tab_put(size_t *tab, size_t cap, const sg_route_t *r, size_t idx)
{
    size_t i = route_key(r->kind, r->ns, r->name) & (cap - 1);
    while (tab[i] != 0)
        i = (i + 1) & (cap - 1);
    tab[i] = idx + 1;
}

/* Adds the last route read (a duplicate too: the first stays the one found). */
static void route_tab_add(loader_t *ld)
{
    if (2 * ld->nroutes > ld->route_tabcap) {
        size_t cap = ld->route_tabcap ? ld->route_tabcap * 2 : 64;
        while (2 * ld->nroutes > cap)
            cap *= 2;
        size_t *tab = aalloc(ld, cap * sizeof(*tab)); /* zeroed; the old table stays in the arena until the unref */
        for (size_t i = 0; i + 1 < ld->nroutes; i++)
            route_tab_put(tab, cap, &ld->routes[i], i);
        ld->route_tab = tab;
        ld->route_tabcap = cap;
    }
    route_tab_put(ld->route_tab, ld->route_tabcap, &ld->routes[ld->nroutes - 1], ld->nroutes - 1);
}

sg_route_t *parse_route_head(loader_t *ld, struct fy_node *root, pos_t at, sg_route_kind_t kind,
                             struct fy_node **specp)
{
    const char *kname = kind == SG_ROUTE_GRPC ? "GRPCRoute" : "HTTPRoute";
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return NULL;
    const sg_route_t *dup = sg__config_find_route(ld, kind, md.ns, md.name);
    if (dup != NULL)
        ERR(ld, at, "duplicate %s %s/%s (first at line %d)", kname, md.ns, md.name, dup->line);
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return NULL;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, kind == SG_ROUTE_GRPC ? "GRPCRoute spec" : "HTTPRoute spec",
               KEYS("parentRefs", "hostnames", "rules"));
    sg_route_t *rt = VPUSH(ld, ld->routes, ld->nroutes, ld->caproutes);
    rt->kind = kind;
    rt->ns = md.ns;
    rt->name = md.name;
    rt->order = ld->route_order++;
    rt->policy_timeout_ms = SG_TIMEOUT_UNSET;
    rt->heartbeat_ms = SG_TIMEOUT_UNSET;
    rt->file = ld->file;
    rt->line = at.line;
    rt->col = at.col;
    route_tab_add(ld);

    struct fy_node *ps = get_seq(ld, spec, "parentRefs", true, sp);
    rt->parents = aalloc(ld, (seq_len(ps) + 1) * sizeof(*rt->parents));
    void *it = NULL;
    struct fy_node *e;
    size_t pi = 0;
    while (ps && (e = fy_node_sequence_iterate(ps, &it)) != NULL) {
        if (sg__config_dropped(ld, DX_PARENT, pi++))
            continue;
        pos_t pp = npos(e, sp);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, pp, "parentRefs[]: expected a mapping");
            continue;
        }
        check_keys(ld, e, "parentRef", KEYS("group", "kind", "name", "namespace", "sectionName", "port"));
        char *pkind = get_str(ld, e, "kind", false, pp);
        if (pkind && strcmp(pkind, "Gateway") != 0) {
            ERR(ld, pp, "parentRef kind \"%s\" not supported (only Gateway)", pkind);
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
    *specp = spec;
    return rt;
}

void parse_httproute(loader_t *ld, struct fy_node *root, pos_t at)
{
    struct fy_node *spec;
    sg_route_t *rt = parse_route_head(ld, root, at, SG_ROUTE_HTTP, &spec);
    if (rt == NULL)
        return;
    pos_t sp = npos(spec, at);
    void *it = NULL;
    struct fy_node *e;
    struct fy_node *rs = get_seq(ld, spec, "rules", false, sp);
    size_t nr = seq_len(rs);
    rt->rules = aalloc(ld, (nr + 1) * sizeof(*rt->rules));
    it = NULL;
    size_t ri = 0;
    while (rs && (e = fy_node_sequence_iterate(rs, &it)) != NULL) {
        if (sg__config_dropped(ld, DX_RULE, ri++))
            continue;
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
