/* config.c: Gateway API YAML (Gateway, HTTPRoute, Service, EndpointSlice) -> sg_config_t generations; the loader's
 * shared helpers. The alb.networking.azure.io policies are in config_policy.c. */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libfyaml.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "route.h"

void *aalloc(loader_t *ld, size_t n)
{
    priv_t *pv = ld->priv;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    blk_t *b = pv->blocks;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 32768 ? n : 32768;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            longjmp(ld->oom, 1);
        b->cap = cap;
        b->used = 0;
        if (pv->blocks != NULL && n > 32768) {
            /* Keep filling the current block; put the big one behind it. */
            b->next = pv->blocks->next;
            pv->blocks->next = b;
        } else {
            b->next = pv->blocks;
            pv->blocks = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *astrndup(loader_t *ld, const char *s, size_t n)
{
    char *p = aalloc(ld, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *astrdup(loader_t *ld, const char *s)
{
    return astrndup(ld, s, strlen(s));
}

/* Returns a pointer to a fresh zeroed slot at the end of *arr, growing it in the arena. */
void *vpush(loader_t *ld, void **arr, size_t *n, size_t *cap, size_t sz)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *na = aalloc(ld, ncap * sz);
        if (*n)
            memcpy(na, *arr, *n * sz);
        *arr = na;
        *cap = ncap;
    }
    void *slot = (char *)*arr + (*n)++ * sz;
    memset(slot, 0, sz);
    return slot;
}


/* ---- reporting ---- */

SG_PRINTF(4, 5) void report(loader_t *ld, pos_t p, bool warn, const char *fmt, ...)
{
    va_list ap;
    if (!warn)
        ld->nerr++;
    if (ld->errs == NULL)
        return;
    fprintf(ld->errs, "%s:%d:%d: %s", ld->file, p.line, p.col, warn ? "warning: " : "");
    va_start(ap, fmt);
    vfprintf(ld->errs, fmt, ap);
    va_end(ap);
    fputc('\n', ld->errs);
}


/* Position of a node: its scalar token, or for collections the first key / item; `fb` when empty. */
pos_t npos(struct fy_node *n, pos_t fb)
{
    for (int depth = 0; n != NULL && depth < 64; depth++) {
        void *it = NULL;
        switch (fy_node_get_type(n)) {
        case FYNT_SCALAR: {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (m == NULL)
                return fb;
            return (pos_t){m->line + 1, m->column + 1};
        }
        case FYNT_SEQUENCE:
            n = fy_node_sequence_iterate(n, &it);
            break;
        case FYNT_MAPPING: {
            struct fy_node_pair *pr = fy_node_mapping_iterate(n, &it);
            n = pr ? fy_node_pair_key(pr) : NULL;
            break;
        }
        default:
            return fb;
        }
    }
    return fb;
}

/* ---- typed field access; every problem is reported, never fatal ---- */

bool nnull(struct fy_node *n)
{
    if (n == NULL)
        return true;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
        return false;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    return s == NULL || len == 0 || (len == 1 && s[0] == '~') || (len == 4 && memcmp(s, "null", 4) == 0);
}

struct fy_node *field(struct fy_node *m, const char *key)
{
    if (m == NULL || fy_node_get_type(m) != FYNT_MAPPING)
        return NULL;
    struct fy_node *v = fy_node_mapping_lookup_by_string(m, key, strlen(key));
    return nnull(v) ? NULL : v;
}

/* Warns about keys not in `known` (NULL-terminated); a typo must not pass silently. */
void check_keys(loader_t *ld, struct fy_node *m, const char *what, const char *const *known)
{
    void *it = NULL;
    struct fy_node_pair *pr;
    if (m == NULL || fy_node_get_type(m) != FYNT_MAPPING)
        return;
    while ((pr = fy_node_mapping_iterate(m, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pr);
        pos_t p = npos(k, (pos_t){0, 0});
        size_t len;
        const char *s = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &len) : NULL;
        if (s == NULL) {
            ERR(ld, p, "%s: keys must be strings", what);
            continue;
        }
        bool ok = false;
        for (size_t i = 0; known[i] != NULL && !ok; i++)
            ok = strlen(known[i]) == len && memcmp(known[i], s, len) == 0;
        if (!ok)
            WARN(ld, p, "%s: unknown field \"%.*s\" ignored", what, (int)SG_MIN(len, 64), s);
    }
}


char *scalar_str(loader_t *ld, struct fy_node *v, const char *key, pos_t at)
{
    if (fy_node_get_type(v) != FYNT_SCALAR) {
        ERR(ld, npos(v, at), "%s: expected a string", key);
        return NULL;
    }
    size_t len;
    const char *s = fy_node_get_scalar(v, &len);
    if (s == NULL)
        s = "";
    if (memchr(s, '\0', len) != NULL) {
        ERR(ld, npos(v, at), "%s: contains a NUL byte", key);
        return NULL;
    }
    return astrndup(ld, s, len);
}

/* String field; NULL when absent (error if required) or on a type error. */
char *get_str(loader_t *ld, struct fy_node *m, const char *key, bool req, pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL) {
        if (req)
            ERR(ld, at, "missing required field \"%s\"", key);
        return NULL;
    }
    return scalar_str(ld, v, key, at);
}

bool scalar_int(loader_t *ld, struct fy_node *v, const char *key, long min, long max, long *out, pos_t at)
{
    size_t len;
    const char *s = fy_node_get_type(v) == FYNT_SCALAR && fy_node_get_style(v) == FYNS_PLAIN
                        ? fy_node_get_scalar(v, &len) : NULL;
    char buf[32];
    if (s == NULL || len == 0 || len >= sizeof(buf)) {
        ERR(ld, npos(v, at), "%s: expected an integer", key);
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long x = strtol(buf, &end, 10);
    if (*end != '\0' || errno != 0 || !(isdigit((unsigned char)buf[0]) || buf[0] == '-')) {
        ERR(ld, npos(v, at), "%s: expected an integer, got \"%s\"", key, buf);
        return false;
    }
    if (x < min || x > max) {
        ERR(ld, npos(v, at), "%s: %ld out of range %ld..%ld", key, x, min, max);
        return false;
    }
    *out = x;
    return true;
}

/* Integer field; returns true and sets *out when present and valid. */
bool get_int(loader_t *ld, struct fy_node *m, const char *key, long min, long max, bool req, long *out,
                    pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL) {
        if (req)
            ERR(ld, at, "missing required field \"%s\"", key);
        return false;
    }
    return scalar_int(ld, v, key, min, max, out, at);
}

struct fy_node *get_typed(loader_t *ld, struct fy_node *m, const char *key, enum fy_node_type t, bool req,
                                 pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL) {
        if (req)
            ERR(ld, at, "missing required field \"%s\"", key);
        return NULL;
    }
    if (fy_node_get_type(v) != t) {
        ERR(ld, npos(v, at), "%s: expected a %s", key, t == FYNT_MAPPING ? "mapping" : "list");
        return NULL;
    }
    return v;
}


size_t seq_len(struct fy_node *s)
{
    int n = s ? fy_node_sequence_item_count(s) : 0;
    return n > 0 ? (size_t)n : 0;
}

/* ---- value validation ---- */

int sg_config_parse_duration(const char *s, int64_t *ms)
{
    /* Gateway API Duration: ^([0-9]{1,5}(h|m|s|ms)){1,4}$ */
    int64_t total = 0;
    int groups = 0;
    if (s == NULL || *s == '\0')
        return -EINVAL;
    while (*s != '\0') {
        int digits = 0;
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            if (++digits > 5)
                return -EINVAL;
        }
        if (digits == 0)
            return -EINVAL;
        if (s[0] == 'm' && s[1] == 's') {
            s += 2;
        } else if (*s == 'h') {
            v *= 3600000;
            s++;
        } else if (*s == 'm') {
            v *= 60000;
            s++;
        } else if (*s == 's') {
            v *= 1000;
            s++;
        } else {
            return -EINVAL;
        }
        total += v;
        if (++groups > 4)
            return -EINVAL;
    }
    *ms = total;
    return 0;
}

bool get_duration(loader_t *ld, struct fy_node *m, const char *key, int64_t *out, pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL)
        return false;
    char *s = scalar_str(ld, v, key, at);
    if (s == NULL)
        return false;
    if (sg_config_parse_duration(s, out) != 0) {
        ERR(ld, npos(v, at), "%s: invalid duration \"%s\" (expected e.g. 500ms, 10s, 1h30m; 0s = none)", key, s);
        return false;
    }
    return true;
}

static bool tchar(unsigned char c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!tchar((unsigned char)*s))
            return false;
    return true;
}

/* RFC 1123 lowercase host name, optionally "*." + one. */
bool is_hostname(const char *s, bool allow_wild)
{
    size_t label = 0, n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    if (s[0] == '*') {
        if (!allow_wild || s[1] != '.' || s[2] == '\0')
            return false;
        s += 2;
    }
    for (const char *p = s; ; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return false;
            if (*p == '\0')
                break;
            label = 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (*p == '-' && label > 0)))
            return false;
        label++;
    }
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, s, &a4) != 1 && inet_pton(AF_INET6, s, &a6) != 1;
}

/* Absolute path as the HTTPRoute CRD requires: starts with '/', no "//", "/./", "/../", "%2f", "#". */
bool valid_path(const char *s)
{
    if (s[0] != '/')
        return false;
    if (strstr(s, "//") || strstr(s, "/./") || strstr(s, "/../") || strstr(s, "%2f") || strstr(s, "%2F") ||
        strchr(s, '#') || strchr(s, '?'))
        return false;
    size_t n = strlen(s);
    if ((n >= 2 && strcmp(s + n - 2, "/.") == 0) || (n >= 3 && strcmp(s + n - 3, "/..") == 0))
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

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

/* ---- common pieces ---- */

bool parse_meta(loader_t *ld, struct fy_node *root, pos_t at, meta_t *m)
{
    struct fy_node *md = get_map(ld, root, "metadata", true, at);
    memset(m, 0, sizeof(*m));
    if (md == NULL)
        return false;
    pos_t p = npos(md, at);
    m->name = get_str(ld, md, "name", true, p);
    m->ns = get_str(ld, md, "namespace", false, p);
    m->labels = get_map(ld, md, "labels", false, p);
    if (m->ns == NULL)
        m->ns = astrdup(ld, "default");
    return m->name != NULL;
}

/* ---- Gateway ---- */

static void parse_gateway(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    for (size_t i = 0; i < ld->ngws; i++)
        if (strcmp(ld->gws[i].name, md.name) == 0 && strcmp(ld->gws[i].ns, md.ns) == 0)
            ERR(ld, at, "duplicate Gateway %s/%s (first at line %d)", md.ns, md.name, ld->gws[i].pos.line);
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "Gateway spec",
               KEYS("gatewayClassName", "listeners", "addresses", "infrastructure", "backendTLS"));
    gwdef_t *gw = VPUSH(ld, ld->gws, ld->ngws, ld->capgws);
    gw->name = md.name;
    gw->ns = md.ns;
    gw->pos = at;
    gw->first = ld->nlis;
    size_t gwi = ld->ngws - 1;

    struct fy_node *addrs = get_seq(ld, spec, "addresses", false, sp);
    void *it = NULL;
    struct fy_node *a;
    while (addrs && (a = fy_node_sequence_iterate(addrs, &it)) != NULL) {
        pos_t ap = npos(a, sp);
        if (fy_node_get_type(a) != FYNT_MAPPING) {
            ERR(ld, ap, "addresses[]: expected a mapping");
            continue;
        }
        check_keys(ld, a, "address", KEYS("type", "value"));
        char *type = get_str(ld, a, "type", false, ap);
        char *val = get_str(ld, a, "value", true, ap);
        if (type && strcmp(type, "IPAddress") != 0) {
            ERR(ld, ap, "address type \"%s\" not supported (only IPAddress)", type);
            continue;
        }
        if (val == NULL)
            continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, val, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
        } else if (inet_pton(AF_INET6, val, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
        } else {
            ERR(ld, ap, "address \"%s\" is not an IP address", val);
            continue;
        }
        gwaddr_t *ga = VPUSH(ld, ld->gwaddr, ld->ngwaddr, ld->capgwaddr);
        ga->ss = ss;
        ga->gw = gwi;
    }

    struct fy_node *ls = get_seq(ld, spec, "listeners", true, sp);
    if (ls != NULL && seq_len(ls) == 0)
        ERR(ld, npos(ls, sp), "listeners: at least one listener is required");
    it = NULL;
    struct fy_node *l;
    while (ls && (l = fy_node_sequence_iterate(ls, &it)) != NULL) {
        pos_t lp = npos(l, sp);
        if (fy_node_get_type(l) != FYNT_MAPPING) {
            ERR(ld, lp, "listeners[]: expected a mapping");
            continue;
        }
        check_keys(ld, l, "listener", KEYS("name", "port", "protocol", "hostname", "tls", "allowedRoutes"));
        char *name = get_str(ld, l, "name", true, lp);
        long port = 0;
        bool port_ok = get_int(ld, l, "port", 1, 65535, true, &port, lp);
        char *proto = get_str(ld, l, "protocol", true, lp);
        char *host = get_str(ld, l, "hostname", false, lp);
        sg_proto_t pr = SG_PROTO_HTTP;
        bool ok = name != NULL && port_ok && proto != NULL;
        if (proto && strcmp(proto, "HTTPS") == 0) {
            pr = SG_PROTO_HTTPS;
        } else if (proto && strcmp(proto, "HTTP") != 0) {
            ERR(ld, npos(field(l, "protocol"), lp), "listener protocol \"%s\" not supported (HTTP or HTTPS)", proto);
            ok = false;
        }
        if (host && !is_hostname(host, true)) {
            ERR(ld, npos(field(l, "hostname"), lp), "listener hostname \"%s\" is not a valid (wildcard) host name",
                host);
            ok = false;
        }
        if (!ok)
            continue;
        for (size_t i = gw->first; i < ld->nlis; i++) {
            sg_listener_t *o = &ld->lis[i];
            if (strcmp(o->name, name) == 0)
                ERR(ld, lp, "duplicate listener name \"%s\" in Gateway %s (first at line %d)", name, gw->name,
                    o->line);
            else if (o->port == port && (o->hostname == host || (o->hostname && host && !strcmp(o->hostname, host))))
                ERR(ld, lp, "listeners \"%s\" and \"%s\" have the same port %ld and hostname %s", o->name, name, port,
                    host ? host : "(none)");
        }
        sg_listener_t *li = VPUSH(ld, ld->lis, ld->nlis, ld->caplis);
        li->gateway = gw->name;
        li->ns = gw->ns;
        li->name = name;
        li->port = (uint16_t)port;
        li->protocol = pr;
        li->hostname = host;
        li->file = ld->file;
        li->line = lp.line;
        li->col = lp.col;
        struct fy_node *tls = get_map(ld, l, "tls", false, lp);
        struct fy_node *refs = get_seq(ld, tls, "certificateRefs", false, npos(tls, lp));
        if (pr == SG_PROTO_HTTPS && refs == NULL)
            WARN(ld, lp, "HTTPS listener \"%s\" has no tls.certificateRefs", name);
        li->ncert_refs = 0;
        li->cert_refs = aalloc(ld, (seq_len(refs) + 1) * sizeof(char *));
        void *it2 = NULL;
        struct fy_node *r;
        while (refs && (r = fy_node_sequence_iterate(refs, &it2)) != NULL) {
            pos_t rp = npos(r, lp);
            char *rn = get_str(ld, r, "name", true, rp);
            char *rns = get_str(ld, r, "namespace", false, rp);
            if (rn == NULL)
                continue;
            size_t len = strlen(rn) + strlen(rns ? rns : gw->ns) + 2;
            char *s = aalloc(ld, len);
            snprintf(s, len, "%s/%s", rns ? rns : gw->ns, rn);
            li->cert_refs[li->ncert_refs++] = s;
        }
        sg__config_parse_listener_tls(ld, li, tls, lp);
    }
    gw->n = ld->nlis - gw->first;
}

/* ---- HTTPRoute ---- */

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
        WARN(ld, npos(field(n, "sessionPersistence"), at), "sessionPersistence is not supported yet; ignored");
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

static void parse_httproute(loader_t *ld, struct fy_node *root, pos_t at)
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

/* ---- Service / EndpointSlice ---- */

static void parse_service(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    pos_t sp = npos(spec, at);
    struct fy_node *ps = get_seq(ld, spec, "ports", spec != NULL, sp);
    svc_t *s = VPUSH(ld, ld->svcs, ld->nsvcs, ld->capsvcs);
    s->ns = md.ns;
    s->name = md.name;
    s->pos = at;
    s->ports = aalloc(ld, (seq_len(ps) + 1) * sizeof(*s->ports));
    void *it = NULL;
    struct fy_node *e;
    while (ps && (e = fy_node_sequence_iterate(ps, &it)) != NULL) {
        pos_t pp = npos(e, sp);
        long v;
        if (!get_int(ld, e, "port", 1, 65535, true, &v, pp))
            continue;
        char *name = get_str(ld, e, "name", false, pp);
        struct fy_node *tp = field(e, "targetPort");
        long tv;
        if (tp != NULL && fy_node_get_type(tp) == FYNT_SCALAR && fy_node_get_style(tp) == FYNS_PLAIN &&
            isdigit((unsigned char)*fy_node_get_scalar0(tp)))
            (void)scalar_int(ld, tp, "targetPort", 1, 65535, &tv, pp);
        else if (tp != NULL)
            (void)scalar_str(ld, tp, "targetPort", pp);
        s->ports[s->nports].name = name ? name : astrdup(ld, "");
        s->ports[s->nports++].port = (int)v;
    }
}

static void parse_slice(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    char *svc = md.labels ? get_str(ld, md.labels, "kubernetes.io/service-name", false, at) : NULL;
    if (svc == NULL) {
        WARN(ld, at, "EndpointSlice %s/%s has no kubernetes.io/service-name label; skipped", md.ns, md.name);
        return;
    }
    char *type = get_str(ld, root, "addressType", true, at);
    if (type && strcmp(type, "IPv4") != 0 && strcmp(type, "IPv6") != 0) {
        WARN(ld, npos(field(root, "addressType"), at), "EndpointSlice addressType %s not supported; skipped", type);
        return;
    }
    slice_t *sl = VPUSH(ld, ld->slices, ld->nslices, ld->capslices);
    sl->ns = md.ns;
    sl->svc = svc;
    struct fy_node *eps = get_seq(ld, root, "endpoints", false, at);
    size_t cap = 0;
    void *it = NULL;
    struct fy_node *e;
    while (eps && (e = fy_node_sequence_iterate(eps, &it)) != NULL) {
        pos_t ep = npos(e, at);
        struct fy_node *cond = get_map(ld, e, "conditions", false, ep);
        struct fy_node *ready = field(cond, "ready");
        if (ready != NULL) {
            const char *rv = fy_node_get_type(ready) == FYNT_SCALAR ? fy_node_get_scalar0(ready) : NULL;
            if (rv == NULL || (strcmp(rv, "true") != 0 && strcmp(rv, "false") != 0)) {
                ERR(ld, npos(ready, ep), "conditions.ready: expected true or false");
                continue;
            }
            if (strcmp(rv, "false") == 0)
                continue;
        }
        struct fy_node *as = get_seq(ld, e, "addresses", true, ep);
        void *it2 = NULL;
        struct fy_node *a;
        while (as && (a = fy_node_sequence_iterate(as, &it2)) != NULL) {
            char *s = scalar_str(ld, a, "addresses[]", ep);
            unsigned char buf[sizeof(struct in6_addr)];
            if (s == NULL)
                continue;
            if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1) {
                ERR(ld, npos(a, ep), "endpoint address \"%s\" is not an IP address", s);
                continue;
            }
            *VPUSH(ld, sl->addrs, sl->naddrs, cap) = s;
        }
    }
    struct fy_node *ps = get_seq(ld, root, "ports", false, at);
    sl->ports = aalloc(ld, (seq_len(ps) + 1) * sizeof(*sl->ports));
    it = NULL;
    while (ps && (e = fy_node_sequence_iterate(ps, &it)) != NULL) {
        pos_t pp = npos(e, at);
        long v;
        if (!get_int(ld, e, "port", 1, 65535, true, &v, pp))
            continue;
        char *name = get_str(ld, e, "name", false, pp);
        sl->ports[sl->nports].name = name ? name : astrdup(ld, "");
        sl->ports[sl->nports++].port = (int)v;
    }
}

/* ---- documents ---- */

static void parse_doc(loader_t *ld, struct fy_node *root)
{
    pos_t at = npos(root, (pos_t){1, 1});
    if (root == NULL || nnull(root))
        return;
    if (fy_node_get_type(root) != FYNT_MAPPING) {
        ERR(ld, at, "a document must be a mapping with apiVersion and kind");
        return;
    }
    char *kind = get_str(ld, root, "kind", true, at);
    char *api = get_str(ld, root, "apiVersion", true, at);
    if (kind == NULL || api == NULL)
        return;
    static const struct {
        const char *kind, *api, *api2;
        void (*fn)(loader_t *, struct fy_node *, pos_t);
    } kinds[] = {
        {"Gateway", "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1", parse_gateway},
        {"HTTPRoute", "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1", parse_httproute},
        {"RoutePolicy", "alb.networking.azure.io/v1", NULL, sg__config_parse_route_policy},
        {"BackendLoadBalancingPolicy", "alb.networking.azure.io/v1", NULL, sg__config_parse_lb_policy},
        {"HealthCheckPolicy", "alb.networking.azure.io/v1", NULL, sg__config_parse_hc_policy},
        {"Service", "v1", NULL, parse_service},
        {"EndpointSlice", "discovery.k8s.io/v1", NULL, parse_slice},
        {"Secret", "v1", NULL, sg__config_parse_secret},
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(kinds); i++) {
        if (strcmp(kind, kinds[i].kind) != 0)
            continue;
        if (strcmp(api, kinds[i].api) != 0 && (kinds[i].api2 == NULL || strcmp(api, kinds[i].api2) != 0)) {
            ERR(ld, npos(field(root, "apiVersion"), at), "%s: apiVersion \"%s\" not supported (expected %s)", kind,
                api, kinds[i].api);
            return;
        }
        kinds[i].fn(ld, root, at);
        return;
    }
    WARN(ld, npos(field(root, "kind"), at), "skipping unknown kind %s", kind);
}

/* ---- cross-document resolution ---- */

static void set_label(sg_endpoint_t *ep)
{
    char ip[INET6_ADDRSTRLEN];
    if (ep->addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ep->addr;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(ep->label, sizeof(ep->label), "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ep->addr;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(ep->label, sizeof(ep->label), "%s:%u", ip, ntohs(s4->sin_port));
    }
}

static void add_endpoint(loader_t *ld, sg_backend_t *b, size_t *cap, const struct sockaddr *sa, socklen_t len,
                         uint16_t port)
{
    sg_endpoint_t ep;
    memset(&ep, 0, sizeof(ep));
    if (len > sizeof(ep.addr))
        return;
    memcpy(&ep.addr, sa, len);
    ep.addrlen = len;
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)&ep.addr)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)&ep.addr)->sin_port = htons(port);
    set_label(&ep);
    for (size_t i = 0; i < b->nendpoints; i++)
        if (strcmp(b->endpoints[i].label, ep.label) == 0)
            return;
    *VPUSH(ld, b->endpoints, b->nendpoints, *cap) = ep;
}

static resolved_t *resolve_name(loader_t *ld, const char *name)
{
    for (size_t i = 0; i < ld->nres; i++)
        if (strcmp(ld->res[i].name, name) == 0)
            return &ld->res[i];
    resolved_t *r = VPUSH(ld, ld->res, ld->nres, ld->capres);
    r->name = astrdup(ld, name);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(name, NULL, &hints, &ai) != 0) {
        if (ld->flags & SG_CONFIG_NO_DNS)
            return r;
        hints.ai_flags = 0;
        ai = NULL;
        if (getaddrinfo(name, NULL, &hints, &ai) != 0)
            return r;
    }
    size_t n = 0;
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        n++;
    r->addrs = aalloc(ld, (n + 1) * sizeof(*r->addrs));
    r->lens = aalloc(ld, (n + 1) * sizeof(*r->lens));
    for (struct addrinfo *p = ai; p; p = p->ai_next) {
        if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) || p->ai_addrlen > sizeof(r->addrs[0]))
            continue;
        memcpy(&r->addrs[r->n], p->ai_addr, p->ai_addrlen);
        r->lens[r->n++] = p->ai_addrlen;
    }
    freeaddrinfo(ai);
    return r;
}

/* Kubernetes' mapping: backendRef port -> Service port -> its name -> EndpointSlice port of that name. */
static void resolve_backend(loader_t *ld, sg_backend_t *b, const sg_rule_t *r)
{
    size_t cap = 0;
    svc_t *svc = NULL;
    for (size_t i = 0; i < ld->nsvcs && svc == NULL; i++)
        if (strcmp(ld->svcs[i].name, b->name) == 0 && strcmp(ld->svcs[i].ns, b->ns) == 0)
            svc = &ld->svcs[i];
    bool have_slices = false;
    if (svc != NULL) {
        const svcport_t *sp = NULL;
        for (size_t i = 0; i < svc->nports && sp == NULL; i++)
            if (svc->ports[i].port == b->port)
                sp = &svc->ports[i];
        for (size_t i = 0; i < ld->nslices; i++) {
            slice_t *sl = &ld->slices[i];
            if (strcmp(sl->svc, svc->name) != 0 || strcmp(sl->ns, svc->ns) != 0)
                continue;
            have_slices = true;
            if (sp == NULL)
                continue;
            const svcport_t *p = NULL;
            for (size_t j = 0; j < sl->nports && p == NULL; j++)
                if (strcmp(sl->ports[j].name, sp->name) == 0)
                    p = &sl->ports[j];
            if (p == NULL && sp->name[0] == '\0' && sl->nports == 1)
                p = &sl->ports[0];
            for (size_t j = 0; p != NULL && j < sl->naddrs; j++) {
                resolved_t *res = resolve_name(ld, sl->addrs[j]);
                for (size_t k = 0; k < res->n; k++)
                    add_endpoint(ld, b, &cap, (struct sockaddr *)&res->addrs[k], res->lens[k], (uint16_t)p->port);
            }
        }
        if (sp == NULL && have_slices)
            WARN(ld, ((pos_t){r->line, r->col}), "Service %s/%s has no port %u; backend has no endpoints", svc->ns,
                 svc->name, b->port);
    }
    if (!have_slices) {
        resolved_t *res = resolve_name(ld, b->name);
        for (size_t k = 0; k < res->n; k++)
            add_endpoint(ld, b, &cap, (struct sockaddr *)&res->addrs[k], res->lens[k], b->port);
    }
}

static void resolve_backends(loader_t *ld)
{
    for (size_t i = 0; i < ld->nroutes; i++) {
        sg_route_t *rt = &ld->routes[i];
        for (size_t j = 0; j < rt->nrules; j++) {
            sg_rule_t *r = &rt->rules[j];
            r->total_weight = 0;
            for (size_t k = 0; k < r->nbackends; k++) {
                sg_backend_t *b = &r->backends[k];
                if (b->name == NULL)
                    continue;
                resolve_backend(ld, b, r);
                if (b->nendpoints > 0)
                    r->total_weight += b->weight;
            }
        }
    }
}

static void build_binds(loader_t *ld, sg_config_t *cfg)
{
    size_t cap = 0;
    for (size_t g = 0; g < ld->ngws; g++) {
        gwdef_t *gw = &ld->gws[g];
        struct sockaddr_storage any;
        memset(&any, 0, sizeof(any));
        ((struct sockaddr_in *)&any)->sin_family = AF_INET;
        size_t naddr = 0;
        for (size_t a = 0; a < ld->ngwaddr; a++)
            naddr += ld->gwaddr[a].gw == g;
        for (size_t a = 0; a < (naddr ? ld->ngwaddr : 1); a++) {
            if (naddr && ld->gwaddr[a].gw != g)
                continue;
            const struct sockaddr_storage *ss = naddr ? &ld->gwaddr[a].ss : &any;
            for (size_t i = gw->first; i < gw->first + gw->n; i++) {
                sg_listener_t *li = &ld->lis[i];
                sg_bind_t b;
                memset(&b, 0, sizeof(b));
                b.addr = *ss;
                b.port = li->port;
                b.protocol = li->protocol;
                if (ss->ss_family == AF_INET6) {
                    ((struct sockaddr_in6 *)&b.addr)->sin6_port = htons(li->port);
                    b.addrlen = sizeof(struct sockaddr_in6);
                } else {
                    ((struct sockaddr_in *)&b.addr)->sin_port = htons(li->port);
                    b.addrlen = sizeof(struct sockaddr_in);
                }
                sg_endpoint_t tmp;
                memset(&tmp, 0, sizeof(tmp));
                tmp.addr = b.addr;
                set_label(&tmp);
                memcpy(b.label, tmp.label, sizeof(b.label));
                bool found = false;
                for (size_t k = 0; k < cfg->nbinds && !found; k++) {
                    sg_bind_t *o = &cfg->binds[k];
                    if (strcmp(o->label, b.label) != 0)
                        continue;
                    found = true;
                    if (o->protocol != b.protocol)
                        ERR(ld, ((pos_t){li->line, li->col}), "listener \"%s\": %s is already used with protocol "
                            "%s", li->name, b.label, o->protocol == SG_PROTO_HTTPS ? "HTTPS" : "HTTP");
                }
                if (!found)
                    *VPUSH(ld, cfg->binds, cfg->nbinds, cap) = b;
            }
        }
    }
}

/* ---- load / lifetime ---- */

static void free_priv(priv_t *pv)
{
    if (pv == NULL)
        return;
    for (size_t i = 0; i < pv->ncodes; i++)
        pcre2_code_free(pv->codes[i]);
    free(pv->codes);
    blk_t *b = pv->blocks;
    while (b != NULL) {
        blk_t *nx = b->next;
        free(b);
        b = nx;
    }
    free(pv);
}

static void free_tables(sg_config_t *cfg)
{
    sg__config_free_tls(cfg);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        sg_route_table_free(cfg->listeners[i].table);
        cfg->listeners[i].table = NULL;
    }
}

static void report_yaml_errors(loader_t *ld)
{
    void *it = NULL;
    struct fy_diag_error *de;
    int n = 0;
    while ((de = fy_diag_errors_iterate(ld->diag, &it)) != NULL) {
        if (de->type < FYET_ERROR)
            continue;
        /* libfyaml's collected errors are already 1-based */
        ERR(ld, ((pos_t){de->line, de->column}), "YAML: %s", de->msg ? de->msg : "syntax error");
        n++;
    }
    if (n == 0)
        ERR(ld, ((pos_t){1, 1}), "YAML: cannot parse the document");
}

/* Offset of the first byte that is not well-formed UTF-8 (RFC 3629), or len. */
static size_t utf8_bad(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3
                 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
        if (n == 0 || i + n > len)
            return i;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) || (c == 0xf0 && s[i + 1] < 0x90) ||
            (c == 0xf4 && s[i + 1] > 0x8f))
            return i;
        i += n;
    }
    return len;
}

static int load(loader_t *ld, const char *yaml, size_t len, sg_config_t **out)
{
    /* YAML streams here are UTF-8; libfyaml 0.7.12 also loops forever on some invalid bytes (found by
     * fuzz_config), so they are refused before it sees them. */
    size_t bad = utf8_bad((const unsigned char *)yaml, len);
    if (bad < len) {
        int line = 1, col = 1;
        for (size_t i = 0; i < bad; i++, col++)
            if (yaml[i] == '\n') {
                line++;
                col = 0;
            }
        ld->file = astrdup(ld, ld->file);
        ERR(ld, ((pos_t){line, col}), "YAML: invalid UTF-8 (byte 0x%02x)", (unsigned char)yaml[bad]);
        return -EINVAL;
    }
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.fp = NULL;
    dcfg.level = FYET_ERROR;
    dcfg.output_fn = NULL;
    ld->file = astrdup(ld, ld->file); /* routes keep it after the caller's string is gone */
    ld->diag = fy_diag_create(&dcfg);
    if (ld->diag == NULL)
        return -ENOMEM;
    fy_diag_set_collect_errors(ld->diag, true);
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT;
    pcfg.diag = ld->diag;
    ld->fyp = fy_parser_create(&pcfg);
    if (ld->fyp == NULL || fy_parser_set_string(ld->fyp, yaml, len) != 0)
        return -ENOMEM;
    for (;;) {
        ld->doc = fy_parse_load_document(ld->fyp);
        if (ld->doc == NULL)
            break;
        parse_doc(ld, fy_document_root(ld->doc));
        fy_parse_document_destroy(ld->fyp, ld->doc);
        ld->doc = NULL;
    }
    if (fy_parser_get_stream_error(ld->fyp) || fy_diag_got_error(ld->diag))
        report_yaml_errors(ld);

    sg_config_t *cfg = aalloc(ld, sizeof(*cfg));
    atomic_init(&cfg->refs, 1);
    cfg->priv = ld->priv;
    cfg->listeners = ld->lis;
    cfg->nlisteners = ld->nlis;
    cfg->routes = ld->routes;
    cfg->nroutes = ld->nroutes;
    /* Cross-document checks run even after errors, so one run reports everything; name resolution
     * (possibly DNS) only for a config that will be used. */
    sg__config_apply_route_policies(ld);
    sg__config_apply_backend_policies(ld);
    build_binds(ld, cfg);
    sg__config_build_tls(ld, cfg);
    if (ld->nerr == 0)
        resolve_backends(ld);
    int rc = sg_route_compile(cfg, ld->errs);
    if (rc == -ENOMEM) {
        free_tables(cfg);
        return -ENOMEM;
    }
    if (rc != 0)
        ld->nerr++;
    if (ld->nerr > 0) {
        free_tables(cfg);
        return -EINVAL;
    }
    *out = cfg;
    return 0;
}

int sg_config_load_string(const char *name, const char *yaml, size_t len, FILE *errs, sg_config_t **out)
{
    return sg_config_load_ex(name, yaml, len, 0, errs, out);
}

int sg_config_load_ex(const char *name, const char *yaml, size_t len, unsigned flags, FILE *errs,
                      sg_config_t **out)
{
    *out = NULL;
    loader_t *ld = calloc(1, sizeof(*ld));
    if (ld == NULL)
        return -ENOMEM;
    ld->file = name;
    ld->errs = errs;
    ld->flags = flags;
    ld->priv = calloc(1, sizeof(priv_t));
    int rc = -ENOMEM;
    if (ld->priv != NULL) {
        if (setjmp(ld->oom) == 0)
            rc = load(ld, yaml, len, out);
        else
            rc = -ENOMEM;
    }
    if (ld->doc != NULL)
        fy_parse_document_destroy(ld->fyp, ld->doc);
    if (ld->fyp != NULL)
        fy_parser_destroy(ld->fyp);
    if (ld->diag != NULL)
        fy_diag_destroy(ld->diag);
    if (rc != 0) {
        if (rc == -ENOMEM && errs != NULL)
            fprintf(errs, "%s: out of memory while loading the configuration\n", name);
        free_priv(ld->priv);
        *out = NULL;
    }
    free(ld);
    return rc;
}

int sg_config_load(const char *path, FILE *errs, sg_config_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        if (errs)
            fprintf(errs, "%s: cannot open: %s\n", path, strerror(e));
        return -e;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        char *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f) ? EIO : 0;
    fclose(f);
    if (buf == NULL)
        return -ENOMEM;
    if (err) {
        free(buf);
        if (errs)
            fprintf(errs, "%s: read error\n", path);
        return -err;
    }
    int rc = sg_config_load_string(path, buf, len, errs, out);
    free(buf);
    return rc;
}

void sg_config_ref(sg_config_t *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
}

void sg_config_unref(sg_config_t *cfg)
{
    if (cfg == NULL || atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    free_tables(cfg);
    /* cfg itself lives in the arena. */
    free_priv(cfg->priv);
}
