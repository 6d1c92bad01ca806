/* config_diag.c: the loader's lenient mode. It indexes where each object (and each HTTPRoute rule and parentRef, and
 * each Gateway listener) lies in the YAML stream, loads, blames each error line on the innermost part holding its
 * position, drops those parts and loads again, until a load has no errors; then it records per object what Gateway
 * API status needs (diag.h). The strict loader runs unchanged under it: lenient mode only makes it skip parts. */
#include "config/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/diag.h"
#include "config/route.h"

#define MAX_PASSES 16           /* a pass drops every part an error names; cascades (a dropped Gateway's routes) are few */

typedef struct dblk {
    struct dblk *next;
    _Alignas(max_align_t) unsigned char data[];
} dblk_t;

/* A range of positions (1-based line and column, as the loader reports them), inclusive. */
typedef struct rng {
    int l0, c0, l1, c1;
    bool set;
} rng_t;

typedef struct pdoc {
    rng_t r;
    rng_t *rules, *parents, *lis;
    size_t nrules, nparents, nlis;
} pdoc_t;

typedef struct drop {
    size_t doc;
    int part;
    size_t idx;
    const char *reason, *msg;
} drop_t;

struct sg_dx {
    sg_config_diag_t *diag;
    jmp_buf oom;
    jmp_buf *oomp;              /* where out of memory jumps: oom, or the loader's own while it runs */
    bool indexed;               /* the objects are known (the first load read them) */
    bool ranged;                /* and where they lie (read again only when a load has errors to blame) */
    size_t capdocs;
    pdoc_t *docs;
    size_t ndocs;
    drop_t *drops;
    size_t ndrops, capdrops;
};

/* ---- the diagnostics' memory: a list of blocks freed with the diag ---- */

static void *dalloc(struct sg_dx *dx, size_t n)
{
    dblk_t *b = calloc(1, sizeof(*b) + n);
    if (b == NULL)
        longjmp(*dx->oomp, 1);
    b->next = dx->diag->mem;
    dx->diag->mem = b;
    return b->data;
}

static const char *dstrndup(struct sg_dx *dx, const char *s, size_t n)
{
    char *p = dalloc(dx, n + 1);
    memcpy(p, s, n);
    return p;
}

static const char *dstrdup(struct sg_dx *dx, const char *s)
{
    return s ? dstrndup(dx, s, strlen(s)) : NULL;
}

void sg_config_diag_free(sg_config_diag_t *diag)
{
    dblk_t *b = diag->mem;
    while (b != NULL) {
        dblk_t *nx = b->next;
        free(b);
        b = nx;
    }
    memset(diag, 0, sizeof(*diag));
}

const sg_diag_obj_t *sg_config_diag_find(const sg_config_diag_t *diag, const char *kind, const char *ns,
                                         const char *name)
{
    for (size_t i = 0; i < diag->nobjs; i++) {
        const sg_diag_obj_t *o = &diag->objs[i];
        if (o->kind && o->name && strcmp(o->kind, kind) == 0 && strcmp(o->name, name) == 0 &&
            ((ns == NULL && o->ns == NULL) || (ns && o->ns && strcmp(o->ns, ns) == 0)))
            return o;
    }
    return NULL;
}

/* ---- the index: where each object and part lies ---- */

static void rng_add(rng_t *r, const struct fy_mark *m, int base)
{
    if (m == NULL)
        return;
    int l = m->line + base, c = m->column + 1;
    if (!r->set || l < r->l0 || (l == r->l0 && c < r->c0)) {
        r->l0 = l;
        r->c0 = c;
    }
    if (!r->set || l > r->l1 || (l == r->l1 && c > r->c1)) {
        r->l1 = l;
        r->c1 = c;
    }
    r->set = true;
}

/* The range of a node: from the first to the last scalar token of its subtree (keys included); base is the line its
 * document starts on. */
static void walk(struct fy_node *n, rng_t *r, int depth, int base)
{
    void *it = NULL;
    if (n == NULL || depth > 256)
        return;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        struct fy_token *t = fy_node_get_scalar_token(n);
        if (t != NULL) {
            rng_add(r, fy_token_start_mark(t), base);
            rng_add(r, fy_token_end_mark(t), base);
        }
        break;
    }
    case FYNT_SEQUENCE: {
        struct fy_node *e;
        while ((e = fy_node_sequence_iterate(n, &it)) != NULL)
            walk(e, r, depth + 1, base);
        break;
    }
    case FYNT_MAPPING: {
        struct fy_node_pair *pr;
        while ((pr = fy_node_mapping_iterate(n, &it)) != NULL) {
            walk(fy_node_pair_key(pr), r, depth + 1, base);
            walk(fy_node_pair_value(pr), r, depth + 1, base);
        }
        break;
    }
    default:
        break;
    }
}


/* A scalar field as a string of the diag, or NULL. */
static const char *sget(struct sg_dx *dx, struct fy_node *m, const char *key)
{
    struct fy_node *v = field_raw(m, key);
    size_t len;
    const char *s = v && fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar(v, &len) : NULL;
    if (s == NULL || (fy_node_get_style(v) == FYNS_PLAIN && ((len == 4 && memcmp(s, "null", 4) == 0) ||
                                                             (len == 1 && s[0] == '~'))))
        return NULL;
    return dstrndup(dx, s, len);
}

static long lget(struct sg_dx *dx, struct fy_node *m, const char *key)
{
    const char *s = sget(dx, m, key);
    return s ? strtol(s, NULL, 10) : 0;
}

/* The ranges of a list's items (only counted when !want); *n items. */
static rng_t *ranges(struct sg_dx *dx, struct fy_node *seq, size_t *n, bool want)
{
    *n = 0;
    if (seq == NULL || fy_node_get_type(seq) != FYNT_SEQUENCE)
        return NULL;
    int cnt = fy_node_sequence_item_count(seq);
    if (!want) {
        *n = cnt > 0 ? (size_t)cnt : 0;
        return NULL;
    }
    rng_t *r = dalloc(dx, (size_t)(cnt > 0 ? cnt : 0) * sizeof(*r) + 1);
    void *it = NULL;
    struct fy_node *e;
    int base = sg__config_line_base(seq);
    while ((e = fy_node_sequence_iterate(seq, &it)) != NULL && *n < (size_t)cnt)
        walk(e, &r[(*n)++], 0, base);
    return r;
}

static bool is_agc_policy(const char *kind, const char *api)
{
    if (strcmp(kind, "SSEPolicy") == 0 && api != NULL && strncmp(api, "ssegate.io/", 11) == 0)
        return true;        /* ssegate's own: the same status.conditions */
    static const char *const kinds[] = {"RoutePolicy", "BackendLoadBalancingPolicy", "HealthCheckPolicy",
                                        "FrontendTLSPolicy", "BackendTLSPolicy"};
    if (api == NULL || strncmp(api, "alb.networking.azure.io/", 24) != 0)
        return false;
    for (size_t i = 0; i < SG_ARRAY_LEN(kinds); i++)
        if (strcmp(kind, kinds[i]) == 0)
            return true;
    return false;
}

/* What the diagnostics need of one document; with want_ranges, where its parts lie (only the ranges are then
 * filled: the rest was read by the first load). */
static void index_doc(struct sg_dx *dx, struct fy_node *root, pdoc_t *pd, sg_diag_obj_t *o, bool want_ranges)
{
    if (want_ranges) {
        walk(root, &pd->r, 0, sg__config_line_base(root));
        if (o->kind == NULL)
            return;
        struct fy_node *sp = field_raw(root, "spec");
        size_t n;
        if (o->type == SG_DIAG_GATEWAY)
            pd->lis = ranges(dx, field_raw(sp, "listeners"), &n, true);
        if (o->type == SG_DIAG_HTTPROUTE) {
            pd->parents = ranges(dx, field_raw(sp, "parentRefs"), &n, true);
            pd->rules = ranges(dx, field_raw(sp, "rules"), &n, true);
        }
        return;
    }
    o->kind = sget(dx, root, "kind");
    o->api_version = sget(dx, root, "apiVersion");
    struct fy_node *md = field_raw(root, "metadata"), *spec = field_raw(root, "spec");
    o->name = sget(dx, md, "name");
    o->ns = sget(dx, md, "namespace");
    o->generation = lget(dx, md, "generation");
    if (o->kind == NULL)
        return;
    if (strcmp(o->kind, "GatewayClass") == 0) {
        o->type = SG_DIAG_GATEWAYCLASS;
        o->class_name = sget(dx, spec, "controllerName");
    } else if (strcmp(o->kind, "Gateway") == 0) {
        o->type = SG_DIAG_GATEWAY;
        o->class_name = sget(dx, spec, "gatewayClassName");
        struct fy_node *ls = field_raw(spec, "listeners");
        pd->lis = ranges(dx, ls, &pd->nlis, false);
        o->listeners = dalloc(dx, pd->nlis * sizeof(*o->listeners) + 1);
        o->nlisteners = pd->nlis;
        for (size_t i = 0; i < pd->nlis; i++) {
            struct fy_node *l = fy_node_sequence_get_by_index(ls, (int)i);
            o->listeners[i].name = sget(dx, l, "name");
            o->listeners[i].port = lget(dx, l, "port");
            o->listeners[i].protocol = sget(dx, l, "protocol");
        }
    } else if (strcmp(o->kind, "HTTPRoute") == 0 || strcmp(o->kind, "GRPCRoute") == 0) {
        o->type = SG_DIAG_HTTPROUTE;
        struct fy_node *ps = field_raw(spec, "parentRefs");
        pd->parents = ranges(dx, ps, &pd->nparents, false);
        o->parents = dalloc(dx, pd->nparents * sizeof(*o->parents) + 1);
        o->nparents = pd->nparents;
        for (size_t i = 0; i < pd->nparents; i++) {
            struct fy_node *p = fy_node_sequence_get_by_index(ps, (int)i);
            sg_diag_parent_t *dp = &o->parents[i];
            dp->group = sget(dx, p, "group");
            dp->kind = sget(dx, p, "kind");
            dp->ns = sget(dx, p, "namespace");
            dp->name = sget(dx, p, "name");
            dp->section = sget(dx, p, "sectionName");
            dp->port = lget(dx, p, "port");
        }
        pd->rules = ranges(dx, field_raw(spec, "rules"), &pd->nrules, false);
        o->nrules = pd->nrules;
    } else if (is_agc_policy(o->kind, o->api_version) ||
               (strcmp(o->kind, "BackendTLSPolicy") == 0 && o->api_version &&
                strncmp(o->api_version, "gateway.networking.k8s.io/", 26) == 0)) {
        o->type = is_agc_policy(o->kind, o->api_version) ? SG_DIAG_POLICY_AGC : SG_DIAG_POLICY_GW;
        struct fy_node *t = field_raw(spec, "targetRef"), *ts = field_raw(spec, "targetRefs");
        if (t == NULL && ts != NULL && fy_node_get_type(ts) == FYNT_SEQUENCE)
            t = fy_node_sequence_get_by_index(ts, 0);
        o->target_group = sget(dx, t, "group");
        o->target_kind = sget(dx, t, "kind");
        o->target_name = sget(dx, t, "name");
        o->target_ns = sget(dx, t, "namespace");
        if (o->target_ns == NULL)
            o->target_ns = o->ns;
    }
}

/* A new entry in the index, for the next document. */
static void new_doc(struct sg_dx *dx, pdoc_t **pd, sg_diag_obj_t **o)
{
    sg_config_diag_t *d = dx->diag;
    if (dx->ndocs == dx->capdocs) {
        size_t cap = dx->capdocs ? dx->capdocs * 2 : 64;
        pdoc_t *nd = dalloc(dx, cap * sizeof(*nd));
        sg_diag_obj_t *no = dalloc(dx, cap * sizeof(*no));
        if (dx->ndocs) {
            memcpy(nd, dx->docs, dx->ndocs * sizeof(*nd));
            memcpy(no, d->objs, d->nobjs * sizeof(*no));
        }
        dx->docs = nd;
        d->objs = no;
        dx->capdocs = cap;
    }
    *pd = &dx->docs[dx->ndocs++];
    memset(*pd, 0, sizeof(**pd));
    *o = &d->objs[d->nobjs++];
    memset(*o, 0, sizeof(**o));
}

void sg__config_index_doc(loader_t *ld, struct fy_node *root)
{
    struct sg_dx *dx = ld->dx;
    if (dx == NULL || dx->indexed)
        return;
    pdoc_t *pd;
    sg_diag_obj_t *o;
    dx->oomp = &ld->oom;        /* out of memory here is the loader's, which cleans up after itself */
    new_doc(dx, &pd, &o);
    index_doc(dx, root, pd, o, false);
    dx->oomp = &dx->oom;
}

/* Where each indexed document and its parts lie: the stream parsed once more (same parser settings, so the same
 * documents), only when a load had errors to blame; documents given parsed are walked as they are. */
static int range_stream(struct sg_dx *dx, const cin_t *in)
{
    if (in->docs != NULL) {
        for (size_t i = 0; i < in->ndocs && i < dx->ndocs; i++)
            if (in->docs[i] != NULL)
                index_doc(dx, fy_document_root(in->docs[i]), &dx->docs[i], &dx->diag->objs[i], true);
        return 0;
    }
    const char *yaml = in->yaml;
    size_t len = in->len;
    /* The loader reports YAML errors; this parse keeps quiet about them. */
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.level = FYET_ERROR;
    struct fy_diag *fyd = fy_diag_create(&dcfg);
    if (fyd == NULL)
        return -ENOMEM;
    fy_diag_set_collect_errors(fyd, true);
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT;
    pcfg.diag = fyd;
    struct fy_parser *fyp = fy_parser_create(&pcfg);
    if (fyp == NULL || fy_parser_set_string(fyp, yaml, len) != 0) {
        if (fyp)
            fy_parser_destroy(fyp);
        fy_diag_destroy(fyd);
        return -ENOMEM;
    }
    struct fy_document *doc;
    for (size_t i = 0; (doc = fy_parse_load_document(fyp)) != NULL; i++) {
        if (i < dx->ndocs)
            index_doc(dx, fy_document_root(doc), &dx->docs[i], &dx->diag->objs[i], true);
        fy_parse_document_destroy(fyp, doc);
    }
    fy_parser_destroy(fyp);
    fy_diag_destroy(fyd);
    return 0;
}

/* ---- blame: from an error line to the part that holds its position ---- */

static bool in(const rng_t *r, int l, int c)
{
    return r->set && (l > r->l0 || (l == r->l0 && c >= r->c0)) && (l < r->l1 || (l == r->l1 && c <= r->c1));
}

static bool blame(const struct sg_dx *dx, int l, int c, size_t *doc, int *part, size_t *idx)
{
    for (size_t d = 0; d < dx->ndocs; d++) {
        const pdoc_t *pd = &dx->docs[d];
        if (!in(&pd->r, l, c))
            continue;
        *doc = d;
        *part = DX_DOC;
        *idx = 0;
        static const int parts[] = {DX_RULE, DX_PARENT, DX_LISTENER};
        for (size_t k = 0; k < SG_ARRAY_LEN(parts); k++) {
            const rng_t *rs = parts[k] == DX_RULE ? pd->rules : parts[k] == DX_PARENT ? pd->parents : pd->lis;
            size_t n = parts[k] == DX_RULE ? pd->nrules : parts[k] == DX_PARENT ? pd->nparents : pd->nlis;
            for (size_t i = 0; i < n; i++)
                if (in(&rs[i], l, c)) {
                    *part = parts[k];
                    *idx = i;
                    return true;
                }
        }
        return true;
    }
    return false;
}

static const drop_t *find_drop(const struct sg_dx *dx, size_t doc, int part, size_t idx)
{
    for (size_t i = 0; i < dx->ndrops; i++)
        if (dx->drops[i].doc == doc && dx->drops[i].part == part && dx->drops[i].idx == idx)
            return &dx->drops[i];
    return NULL;
}

bool sg__config_dropped(const loader_t *ld, int part, size_t idx)
{
    if (ld->dx == NULL)
        return false;
    return find_drop(ld->dx, ld->docno, part, idx) != NULL || (part != DX_DOC &&
           find_drop(ld->dx, ld->docno, DX_DOC, 0) != NULL);
}

/* Reasons of ResolvedRefs rather than Accepted. */
static bool refs_reason(const char *r)
{
    return strcmp(r, "RefNotPermitted") == 0 || strcmp(r, "InvalidKind") == 0 || strcmp(r, "BackendNotFound") == 0 ||
           strcmp(r, "InvalidCertificateRef") == 0 || strcmp(r, "InvalidRouteKinds") == 0;
}

/* The Gateway API reason an error message names as "(Reason)", else a default for the kind of part. */
static const char *reason_of(const sg_diag_obj_t *o, int part, const char *msg)
{
    static const char *const named[] = {
        "NotAllowedByListeners", "NoMatchingListenerHostname", "NoMatchingParent", "RefNotPermitted",
        "InvalidRouteKinds", "InvalidKind", "BackendNotFound", "UnsupportedValue", "UnsupportedProtocol",
        "PortUnavailable", "InvalidCertificateRef", "HostnameConflict", "ProtocolConflict", "TargetNotFound",
        "Conflicted", "UnsupportedAddress", "IncompatibleFilters"};
    for (size_t i = 0; i < SG_ARRAY_LEN(named); i++) {
        char pat[64];
        snprintf(pat, sizeof(pat), "(%s)", named[i]);
        if (strstr(msg, pat) != NULL)
            return named[i];
    }
    if (o->type == SG_DIAG_HTTPROUTE)
        return "UnsupportedValue";
    if (part == DX_LISTENER) {
        if (strstr(msg, "protocol") != NULL)
            return "UnsupportedProtocol";
        if (strstr(msg, "same port") != NULL)
            return "HostnameConflict";
    }
    if ((o->type == SG_DIAG_POLICY_AGC || o->type == SG_DIAG_POLICY_GW) &&
        (strstr(msg, "does not exist") != NULL || strstr(msg, "not found") != NULL))
        return "TargetNotFound";
    return "Invalid";
}

/* Reads one load's messages: blames each error. Returns the number of new drops, or -1 when an error names no part
 * (diag->error is set). */
static int blame_errors(struct sg_dx *dx, const char *buf, FILE *errs)
{
    int added = 0;
    const char *p = buf;
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *line = p;
        p += n + (nl != NULL);
        /* NAME:LINE:COL: message; NAME comes first and may hold anything, so look for ":<n>:<n>: " */
        int l = 0, c = 0, used = 0;
        const char *msg = NULL;
        for (const char *q = line; q < line + n; q++)
            if (*q == ':' && sscanf(q, ":%d:%d: %n", &l, &c, &used) == 2 && used > 0 && q + used <= line + n) {
                msg = q + used;
                break;
            }
        size_t mlen = msg ? (size_t)(line + n - msg) : 0;
        if (msg != NULL && mlen >= 9 && memcmp(msg, "warning: ", 9) == 0)
            continue;
        if (errs != NULL)
            fprintf(errs, "%.*s\n", (int)n, line);
        size_t doc, idx;
        int part;
        if (msg == NULL || !blame(dx, l, c, &doc, &part, &idx)) {
            dx->diag->error = dstrndup(dx, line, n);
            return -1;
        }
        if (find_drop(dx, doc, part, idx) != NULL || find_drop(dx, doc, DX_DOC, 0) != NULL)
            continue;
        if (dx->ndrops + 2 > dx->capdrops) {
            size_t cap = dx->capdrops ? dx->capdrops * 2 : 16;
            drop_t *nd = dalloc(dx, cap * sizeof(*nd));
            if (dx->ndrops)
                memcpy(nd, dx->drops, dx->ndrops * sizeof(*nd));
            dx->drops = nd;
            dx->capdrops = cap;
        }
        drop_t *d = &dx->drops[dx->ndrops++];
        d->doc = doc;
        d->part = part;
        d->idx = idx;
        d->msg = dstrndup(dx, msg, mlen);
        d->reason = reason_of(&dx->diag->objs[doc], part, d->msg);
        added++;
        /* A route with every rule dropped serves nothing: it goes whole, so no listener counts it. */
        size_t nrule_drops = 0;
        for (size_t i = 0; part == DX_RULE && i < dx->ndrops; i++)
            nrule_drops += dx->drops[i].doc == doc && dx->drops[i].part == DX_RULE;
        if (part == DX_RULE && nrule_drops == dx->docs[doc].nrules) {
            drop_t whole = *d;
            whole.part = DX_DOC;
            whole.idx = 0;
            char m[1024];
            snprintf(m, sizeof(m), "every rule was dropped; rule %zu: %s", idx, d->msg);
            whole.msg = dstrdup(dx, m);
            dx->drops[dx->ndrops++] = whole; /* the array had room: a new one is made when it is full */
        }
    }
    return added;
}

/* ---- what status needs, from a generation that loaded ---- */

static sg_diag_cond_t cond(bool ok, const char *reason, const char *msg)
{
    return (sg_diag_cond_t){ok, reason, msg};
}

static bool numeric(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* ResolvedRefs of a route: its first backendRef that does not resolve, or a rule dropped for a reference. */
static sg_diag_cond_t route_refs(struct sg_dx *dx, const loader_t *ld, const sg_route_t *rt, size_t doc)
{
    char msg[512];
    for (size_t j = 0; rt != NULL && j < rt->nrules; j++)
        for (size_t k = 0; k < rt->rules[j].nbackends; k++) {
            const sg_backend_t *b = &rt->rules[j].backends[k];
            if (b->name == NULL)
                continue;
            if (b->not_permitted) {
                snprintf(msg, sizeof(msg), "backendRef to Service %s/%s is not permitted by any ReferenceGrant",
                         b->ns, b->name);
                return cond(false, "RefNotPermitted", dstrdup(dx, msg));
            }
            const svc_t *s = sg__config_find_svc(ld, b->ns, b->name);
            bool port = false;
            for (size_t p = 0; s != NULL && p < s->nports; p++)
                port |= s->ports[p].port == b->port;
            if (s == NULL && !numeric(b->name)) {
                snprintf(msg, sizeof(msg), "Service %s/%s not found", b->ns, b->name);
                return cond(false, "BackendNotFound", dstrdup(dx, msg));
            }
            if (s != NULL && !port) {
                snprintf(msg, sizeof(msg), "Service %s/%s has no port %u", b->ns, b->name, b->port);
                return cond(false, "BackendNotFound", dstrdup(dx, msg));
            }
        }
    for (size_t i = 0; i < dx->ndrops; i++) {
        const drop_t *d = &dx->drops[i];
        if (d->doc == doc && d->part == DX_RULE && refs_reason(d->reason))
            return cond(false, d->reason, d->msg);
    }
    return cond(true, "ResolvedRefs", "");
}

static const sg_route_t *find_route(const loader_t *ld, const sg_diag_obj_t *o)
{
    sg_route_kind_t kind = strcmp(o->kind, "GRPCRoute") == 0 ? SG_ROUTE_GRPC : SG_ROUTE_HTTP;
    return o->name ? sg__config_find_route(ld, kind, o->ns ? o->ns : "default", o->name) : NULL;
}

static void fill_route(struct sg_dx *dx, const loader_t *ld, const sg_config_t *cfg, size_t doc, sg_diag_obj_t *o)
{
    const drop_t *whole = find_drop(dx, doc, DX_DOC, 0);
    const sg_route_t *rt = whole ? NULL : find_route(ld, o);
    sg_diag_cond_t refs = route_refs(dx, ld, rt, doc);
    size_t ndropped = 0;
    for (size_t i = 0; i < dx->ndrops; i++)
        ndropped += dx->drops[i].doc == doc && dx->drops[i].part == DX_RULE;
    o->dropped_rules = dalloc(dx, ndropped * sizeof(*o->dropped_rules) + 1);
    for (size_t i = 0; i < dx->ndrops; i++) {
        const drop_t *d = &dx->drops[i];
        if (d->doc == doc && d->part == DX_RULE)
            o->dropped_rules[o->ndropped_rules++] = (sg_diag_rule_t){d->idx, d->reason, d->msg};
    }
    bool no_rules = o->nrules > 0 && o->ndropped_rules == o->nrules;
    size_t k = 0;                /* the route's kept parentRefs, in order */
    for (size_t i = 0; i < o->nparents; i++) {
        sg_diag_parent_t *p = &o->parents[i];
        p->resolved = refs;
        const drop_t *d = whole ? whole : find_drop(dx, doc, DX_PARENT, i);
        if (d != NULL) {
            p->accepted = cond(false, refs_reason(d->reason) ? "UnsupportedValue" : d->reason, d->msg);
            if (refs_reason(d->reason))
                p->resolved = cond(false, d->reason, d->msg);
            continue;
        }
        if (rt == NULL || k >= rt->nparents) {
            p->accepted = cond(false, "Pending", "not in the configuration");
            continue;
        }
        const sg_parent_ref_t *pr = &rt->parents[k++];
        bool fits = false, admitted = false, attached = false;
        for (size_t l = 0; l < cfg->nlisteners; l++) {
            const sg_listener_t *li = &cfg->listeners[l];
            attached |= sg_route_parent_attaches(rt, pr, li);
            bool f = strcmp(pr->name, li->gateway) == 0 && strcmp(pr->ns, li->ns) == 0 &&
                     (pr->section == NULL || strcmp(pr->section, li->name) == 0) &&
                     (pr->port == 0 || pr->port == li->port);
            fits |= f;
            admitted |= f && (li->allow_from == SG_ALLOW_ALL || strcmp(li->ns, rt->ns) == 0 ||
                              li->allow_from == SG_ALLOW_SELECTOR);
        }
        if (no_rules)
            p->accepted = cond(false, o->dropped_rules[0].reason && !refs_reason(o->dropped_rules[0].reason)
                                          ? o->dropped_rules[0].reason : "UnsupportedValue",
                               "every rule was dropped");
        else if (attached)
            p->accepted = cond(true, "Accepted", o->ndropped_rules ? "some rules were dropped" : "Route is Accepted");
        else if (!fits)
            p->accepted = cond(false, "NoMatchingParent", "no listener of the Gateway matches the parentRef");
        else if (!admitted)
            p->accepted = cond(false, "NotAllowedByListeners", "the listeners do not admit this namespace");
        else
            p->accepted = cond(false, "NoMatchingListenerHostname",
                               "none of the route's hostnames intersects a listener's hostname");
    }
    if (whole != NULL) {
        o->dropped = true;
        o->accepted = cond(false, whole->reason, whole->msg);
    } else {
        o->accepted = cond(!no_rules, no_rules ? "UnsupportedValue" : "Accepted", "");
    }
}

static void fill_gateway(struct sg_dx *dx, const sg_config_t *cfg, size_t doc, sg_diag_obj_t *o)
{
    const drop_t *whole = find_drop(dx, doc, DX_DOC, 0);
    const char *ns = o->ns ? o->ns : "default";
    size_t nserved = 0, nbad = 0;
    for (size_t i = 0; i < o->nlisteners; i++) {
        sg_diag_listener_t *dl = &o->listeners[i];
        dl->accepted = cond(true, "Accepted", "");
        dl->resolved = cond(true, "ResolvedRefs", "");
        dl->conflicted = cond(false, "NoConflicts", "");
        const drop_t *d = whole ? whole : find_drop(dx, doc, DX_LISTENER, i);
        if (d != NULL) {
            nbad++;
            if (strcmp(d->reason, "HostnameConflict") == 0 || strcmp(d->reason, "ProtocolConflict") == 0) {
                dl->conflicted = cond(true, d->reason, d->msg);
                dl->accepted = cond(false, "Invalid", d->msg);
            } else if (refs_reason(d->reason)) {
                dl->resolved = cond(false, d->reason, d->msg);
            } else {
                dl->accepted = cond(false, d->reason, d->msg);
            }
            continue;
        }
        const sg_listener_t *li = NULL;
        for (size_t l = 0; l < cfg->nlisteners && li == NULL; l++)
            if (dl->name && strcmp(cfg->listeners[l].gateway, o->name) == 0 && strcmp(cfg->listeners[l].ns, ns) == 0 &&
                strcmp(cfg->listeners[l].name, dl->name) == 0)
                li = &cfg->listeners[l];
        if (li == NULL) {
            dl->accepted = cond(false, "Pending", "not in the configuration");
            nbad++;
            continue;
        }
        dl->served = true;
        dl->kinds = li->allow_kinds;
        nserved++;
        for (size_t r = 0; r < cfg->nroutes; r++) {
            bool att = false;
            for (size_t p = 0; p < cfg->routes[r].nparents && !att; p++)
                att = sg_route_parent_attaches(&cfg->routes[r], &cfg->routes[r].parents[p], li);
            dl->attached += att;
        }
        /* A listener an earlier one shadows (same port and hostname, e.g. in another Gateway) serves nothing. */
        for (const sg_listener_t *e = cfg->listeners; e < li; e++)
            if (e->port == li->port && (e->hostname == li->hostname ||
                                        (e->hostname && li->hostname && strcmp(e->hostname, li->hostname) == 0))) {
                char msg[256];
                snprintf(msg, sizeof(msg), "listener %s/%s/%s has the same port and hostname", e->ns, e->gateway,
                         e->name);
                dl->conflicted = cond(true, "HostnameConflict", dstrdup(dx, msg));
                break;
            }
    }
    if (whole != NULL) {
        o->dropped = true;
        o->accepted = cond(false, whole->reason, whole->msg);
    } else if (nbad > 0) {
        o->accepted = cond(nserved > 0, "ListenersNotValid", nserved > 0 ? "some listeners are not valid"
                                                                         : "no listener is valid");
    } else {
        o->accepted = cond(true, "Accepted", "");
    }
}

void sg__config_diag_fill(loader_t *ld, const sg_config_t *cfg)
{
    struct sg_dx *dx = ld->dx;
    dx->oomp = &ld->oom;
    for (size_t i = 0; i < dx->diag->nobjs; i++) {
        sg_diag_obj_t *o = &dx->diag->objs[i];
        const drop_t *whole = find_drop(dx, i, DX_DOC, 0);
        switch (o->type) {
        case SG_DIAG_HTTPROUTE:
            fill_route(dx, ld, cfg, i, o);
            break;
        case SG_DIAG_GATEWAY:
            fill_gateway(dx, cfg, i, o);
            break;
        default:
            if (whole != NULL) {
                o->dropped = true;
                o->accepted = cond(false, whole->reason, whole->msg);
            } else if (o->target_kind && strcmp(o->target_kind, "Service") == 0 && o->target_name &&
                       sg__config_find_svc(ld, o->target_ns ? o->target_ns : "default", o->target_name) == NULL) {
                char msg[256];
                snprintf(msg, sizeof(msg), "Service %s/%s not found", o->target_ns ? o->target_ns : "default",
                         o->target_name);
                o->accepted = cond(false, "TargetNotFound", dstrdup(dx, msg));
            } else {
                o->accepted = cond(true, "Accepted", "");
            }
            break;
        }
    }
    dx->oomp = &dx->oom;
}

/* ---- the loop ---- */

static int passes(struct sg_dx *dx, const char *name, const cin_t *in, unsigned flags, FILE *errs,
                  sg_config_t **out, char **bufp)
{
    sg_config_diag_t *diag = dx->diag;
    int rc = 0;
    for (size_t pass = 0; rc == 0 && pass < MAX_PASSES; pass++) {
        size_t blen = 0;
        free(*bufp);
        *bufp = NULL;
        FILE *mem = open_memstream(bufp, &blen);
        if (mem == NULL)
            return -ENOMEM;
        diag->passes = pass + 1;
        rc = sg__config_load_dx(name, in, flags, dx, mem, out);
        fclose(mem);
        if (rc == 0) {
            if (errs != NULL && *bufp != NULL)
                fputs(*bufp, errs);
            return 0;
        }
        if (rc != -EINVAL)
            return rc;
        dx->indexed = true;     /* the first load read every document */
        /* Invalid UTF-8 can hang libfyaml 0.7.12 (fuzz_config found it): the loader refused it before parsing, and
         * so does this; its error then names no object, and the build fails as in file mode. */
        if (!dx->ranged && (in->docs != NULL || utf8_bad((const unsigned char *)in->yaml, in->len) == in->len) &&
            (rc = range_stream(dx, in)) != 0)
            return rc;
        dx->ranged = true;
        int added = blame_errors(dx, *bufp ? *bufp : "", errs);
        if (added < 0)
            return -EINVAL;
        if (added == 0) {
            diag->error = "the load still fails with every part that had an error dropped";
            return -EINVAL;
        }
        rc = 0;
    }
    if (rc == 0) {
        diag->error = "too many passes: each load blamed errors on further objects";
        rc = -EINVAL;
    }
    return rc;
}

static int lenient(const char *name, const cin_t *in, unsigned flags, FILE *errs, sg_config_diag_t *diag,
                   sg_config_t **out)
{
    *out = NULL;
    memset(diag, 0, sizeof(*diag));
    struct sg_dx *dx = calloc(1, sizeof(*dx));
    char **bufp = calloc(1, sizeof(char *));
    int rc;
    if (dx == NULL || bufp == NULL) {
        rc = -ENOMEM;
    } else {
        dx->diag = diag;
        dx->oomp = &dx->oom;
        /* Out of memory in the diagnostics jumps here (what a loader had allocated by then is lost). */
        if (setjmp(dx->oom) == 0)
            rc = passes(dx, name, in, flags, errs, out, bufp);
        else
            rc = -ENOMEM;
    }
    if (rc != 0 && *out != NULL) {
        sg_config_unref(*out);
        *out = NULL;
    }
    if (rc == -ENOMEM && diag->error == NULL)
        diag->error = "out of memory";
    if (bufp != NULL)
        free(*bufp);
    free(bufp);
    free(dx);
    return rc;
}

int sg_config_load_lenient(const char *name, const char *yaml, size_t len, unsigned flags, FILE *errs,
                           sg_config_diag_t *diag, sg_config_t **out)
{
    cin_t in = {.yaml = yaml, .len = len};
    return lenient(name, &in, flags, errs, diag, out);
}

int sg_config_load_docs_lenient(const char *name, struct fy_document *const *docs, size_t ndocs, unsigned flags,
                                FILE *errs, sg_config_diag_t *diag, sg_config_t **out)
{
    static struct fy_document *const none[1] = {NULL};
    cin_t in = {.docs = ndocs ? docs : none, .ndocs = ndocs};
    return lenient(name, &in, flags, errs, diag, out);
}
