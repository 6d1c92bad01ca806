/* config_mtls.c: frontend mTLS: CA bundles (ConfigMap, Secret key ca.crt), Gateway spec.tls.frontend (default and
 * perPort validation), AGC's FrontendTLSPolicy, and the client validation each HTTPS listener gets. */
#include "config/config_int.h"

#include <stdio.h>
#include <string.h>

#include "net/tls.h"

#define GW_GROUP "gateway.networking.k8s.io"
#define ALB_GROUP "alb.networking.azure.io"
#define CA_KEY "ca.crt"

/* ---- CA bundles ---- */

static cabundle_t *add_bundle(loader_t *ld, const char *kind, const meta_t *m, pos_t at)
{
    for (size_t i = 0; i < ld->ncas; i++)
        if (strcmp(ld->cas[i].kind, kind) == 0 && strcmp(ld->cas[i].ns, m->ns) == 0 &&
            strcmp(ld->cas[i].name, m->name) == 0) {
            ERR(ld, at, "duplicate %s %s/%s (first at line %d)", kind, m->ns, m->name, ld->cas[i].pos.line);
            return NULL;
        }
    cabundle_t *b = VPUSH(ld, ld->cas, ld->ncas, ld->capcas);
    b->kind = kind;
    b->ns = m->ns;
    b->name = m->name;
    b->pos = at;
    return b;
}

void sg__config_parse_configmap(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t m;
    if (!parse_meta(ld, root, at, &m))
        return;
    cabundle_t *b = add_bundle(ld, "ConfigMap", &m, at);
    struct fy_node *data = get_map(ld, root, "data", false, at);
    char *pem = get_str(ld, data, CA_KEY, false, at);
    if (b == NULL || pem == NULL)
        return; /* a ConfigMap without ca.crt is an error only when a caCertificateRef names it */
    b->pem = pem;
    b->len = strlen(pem);
    b->pos = npos(field(data, CA_KEY), at);
}

void sg__config_secret_ca(loader_t *ld, const meta_t *m, struct fy_node *root, pos_t at)
{
    struct fy_node *data = get_map(ld, root, "data", false, at);
    struct fy_node *sdata = get_map(ld, root, "stringData", false, at);
    char *v = get_str(ld, data, CA_KEY, false, at);
    char *sv = get_str(ld, sdata, CA_KEY, false, at);
    if (v == NULL && sv == NULL)
        return;
    cabundle_t *b = add_bundle(ld, "Secret", m, at);
    if (b == NULL)
        return;
    if (v != NULL) {
        b->pos = npos(field(data, CA_KEY), at);
        if (!sg__config_b64_decode(ld, v, &b->pem, &b->len)) {
            ERR(ld, b->pos, "Secret %s/%s: data.%s is not valid base64", m->ns, m->name, CA_KEY);
            b->pem = NULL;
        }
    } else {
        b->pos = npos(field(sdata, CA_KEY), at);
        b->pem = sv;
        b->len = strlen(sv);
    }
}

/* ---- validation blocks ---- */

void sg__config_parse_caref(loader_t *ld, valdef_t *v, struct fy_node *r, const char *def_ns, size_t *cap, pos_t at)
{
    pos_t rp = npos(r, at);
    if (fy_node_get_type(r) != FYNT_MAPPING) {
        ERR(ld, rp, "caCertificateRef: expected a mapping with kind and name");
        return;
    }
    check_keys(ld, r, "caCertificateRef", KEYS("group", "kind", "name", "namespace"));
    char *group = get_str(ld, r, "group", false, rp);
    char *kind = get_str(ld, r, "kind", true, rp);
    char *name = get_str(ld, r, "name", true, rp);
    char *ns = get_str(ld, r, "namespace", false, rp);
    if (kind == NULL || name == NULL)
        return;
    bool core = group == NULL || group[0] == '\0' || strcmp(group, "core") == 0;
    if (!core || (strcmp(kind, "ConfigMap") != 0 && strcmp(kind, "Secret") != 0)) {
        ERR(ld, rp, "caCertificateRef: kind %s%s%s is not served (InvalidCACertificateKind): only a core ConfigMap "
            "or Secret with key %s", core ? "" : group, core ? "" : "/", kind, CA_KEY);
        return;
    }
    caref_t *c = VPUSH(ld, v->refs, v->nrefs, *cap);
    c->kind = kind;
    c->name = name;
    c->ns = ns ? ns : (char *)def_ns;
    c->pos = rp;
}

/* Gateway API FrontendTLSValidation: {caCertificateRefs (1..8), mode}. */
static valdef_t *parse_validation(loader_t *ld, struct fy_node *n, const gwdef_t *gw, const char *where, pos_t at)
{
    if (n == NULL)
        return NULL;
    pos_t vp = npos(n, at);
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(ld, vp, "%s.validation: expected a mapping", where);
        return NULL;
    }
    check_keys(ld, n, "frontend validation", KEYS("caCertificateRefs", "mode"));
    valdef_t *v = aalloc(ld, sizeof(*v));
    v->pos = vp;
    v->from_group = GW_GROUP;
    v->from_kind = "Gateway";
    v->from_ns = gw->ns;
    size_t len = strlen(gw->ns) + strlen(gw->name) + strlen(where) + 32;
    v->source = aalloc(ld, len);
    snprintf(v->source, len, "Gateway %s/%s %s", gw->ns, gw->name, where);
    char *mode = get_str(ld, n, "mode", false, vp);
    if (mode != NULL && strcmp(mode, "AllowInsecureFallback") == 0)
        v->insecure_fallback = true;
    else if (mode != NULL && strcmp(mode, "AllowValidOnly") != 0)
        ERR(ld, npos(field(n, "mode"), vp), "%s.validation.mode \"%s\" is not AllowValidOnly or AllowInsecureFallback",
            where, mode);
    struct fy_node *refs = get_seq(ld, n, "caCertificateRefs", true, vp);
    size_t cap = 0;
    void *it = NULL;
    struct fy_node *r;
    while (refs && (r = fy_node_sequence_iterate(refs, &it)) != NULL)
        sg__config_parse_caref(ld, v, r, gw->ns, &cap, vp);
    if (refs != NULL && (seq_len(refs) == 0 || seq_len(refs) > 8))
        ERR(ld, npos(refs, vp), "%s.validation.caCertificateRefs: between 1 and 8 references", where);
    return v;
}

/* TLSConfig: {validation}. */
static valdef_t *parse_tlsconfig(loader_t *ld, struct fy_node *n, const gwdef_t *gw, const char *where, pos_t at)
{
    if (n == NULL)
        return NULL;
    if (fy_node_get_type(n) != FYNT_MAPPING) {
        ERR(ld, npos(n, at), "%s: expected a mapping", where);
        return NULL;
    }
    check_keys(ld, n, where, KEYS("validation"));
    return parse_validation(ld, field(n, "validation"), gw, where, npos(n, at));
}

void sg__config_parse_gateway_tls(loader_t *ld, size_t gwi, struct fy_node *tls, pos_t at)
{
    if (tls == NULL)
        return;
    pos_t tp = npos(tls, at);
    if (fy_node_get_type(tls) != FYNT_MAPPING) {
        ERR(ld, tp, "Gateway spec.tls: expected a mapping");
        return;
    }
    check_keys(ld, tls, "Gateway spec.tls", KEYS("frontend", "backend"));
    sg__config_parse_gateway_backend_tls(ld, gwi, get_map(ld, tls, "backend", false, tp), tp);
    struct fy_node *fe = get_map(ld, tls, "frontend", false, tp);
    if (fe == NULL)
        return;
    pos_t fp = npos(fe, tp);
    check_keys(ld, fe, "Gateway spec.tls.frontend", KEYS("default", "perPort"));
    gwdef_t *gw = &ld->gws[gwi];
    struct fy_node *def = get_map(ld, fe, "default", true, fp);
    gw->fe_default = parse_tlsconfig(ld, def, gw, "spec.tls.frontend.default", fp);
    struct fy_node *pp = get_seq(ld, fe, "perPort", false, fp);
    size_t cap = 0;
    void *it = NULL;
    struct fy_node *e;
    while (pp && (e = fy_node_sequence_iterate(pp, &it)) != NULL) {
        pos_t ep = npos(e, fp);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, ep, "perPort[]: expected a mapping with port and tls");
            continue;
        }
        check_keys(ld, e, "perPort[]", KEYS("port", "tls"));
        long port = 0;
        bool port_ok = get_int(ld, e, "port", 1, 65535, true, &port, ep);
        struct fy_node *t = get_map(ld, e, "tls", true, ep);
        if (!port_ok || t == NULL)
            continue;
        char where[64];
        snprintf(where, sizeof(where), "spec.tls.frontend.perPort[port %ld].tls", port);
        for (size_t i = 0; i < gw->nperport; i++)
            if (gw->perport[i].port == port)
                ERR(ld, ep, "perPort: port %ld is given twice (first at line %d)", port, gw->perport[i].pos.line);
        perport_t *p = VPUSH(ld, gw->perport, gw->nperport, cap);
        p->port = port;
        p->pos = ep;
        p->val = parse_tlsconfig(ld, t, gw, where, ep);
    }
}

/* ---- AGC FrontendTLSPolicy ---- */

void sg__config_parse_frontend_tls_policy(loader_t *ld, struct fy_node *root, pos_t at)
{
    check_keys(ld, root, "FrontendTLSPolicy", KEYS("apiVersion", "kind", "metadata", "spec", "status"));
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "FrontendTLSPolicy spec", KEYS("targetRef", "default", "override"));
    if (field(spec, "override") != NULL)
        ERR(ld, key_pos(spec, "override", sp), "FrontendTLSPolicy spec.override is not supported (use default)");
    ftpolicy_t *p = VPUSH(ld, ld->ftpols, ld->nftpols, ld->capftpols);
    p->ns = md.ns;
    p->name = md.name;
    p->pos = at;
    struct fy_node *t = get_map(ld, spec, "targetRef", true, sp);
    if (t != NULL) {
        pos_t tp = npos(t, sp);
        p->tpos = tp;
        check_keys(ld, t, "targetRef", KEYS("group", "kind", "name", "namespace", "sectionName", "sectionNames"));
        char *group = get_str(ld, t, "group", false, tp);
        char *kind = get_str(ld, t, "kind", true, tp);
        char *name = get_str(ld, t, "name", true, tp);
        char *ns = get_str(ld, t, "namespace", false, tp);
        if (kind != NULL && (strcmp(kind, "Gateway") != 0 || (group != NULL && strcmp(group, GW_GROUP) != 0)))
            ERR(ld, tp, "FrontendTLSPolicy %s/%s: targetRef must be a %s Gateway", md.ns, md.name, GW_GROUP);
        else if (name != NULL)
            p->gw_name = name;
        p->gw_ns = ns ? ns : md.ns;
        if (ns != NULL && strcmp(ns, md.ns) != 0)
            ERR(ld, tp, "FrontendTLSPolicy %s/%s: a policy attaches only to a Gateway of its own namespace", md.ns,
                md.name);
        char *sec = get_str(ld, t, "sectionName", false, tp);
        struct fy_node *secs = get_seq(ld, t, "sectionNames", false, tp);
        size_t cap = 0;
        if (sec != NULL)
            *VPUSH(ld, p->sections, p->nsections, cap) = sec;
        void *it = NULL;
        struct fy_node *e;
        while (secs && (e = fy_node_sequence_iterate(secs, &it)) != NULL) {
            char *s = scalar_str(ld, e, "sectionNames[]", tp);
            if (s != NULL)
                *VPUSH(ld, p->sections, p->nsections, cap) = s;
        }
    }
    struct fy_node *def = get_map(ld, spec, "default", true, sp);
    if (def == NULL)
        return;
    pos_t dp = npos(def, sp);
    check_keys(ld, def, "FrontendTLSPolicy default", KEYS("verify", "policyType"));
    /* AGC's predefined and custom TLS policies pick protocol versions and ciphers; ssegate has its own fixed set
     * (TLS 1.2+), so a named policy could not be honoured. */
    if (field(def, "policyType") != NULL)
        ERR(ld, key_pos(def, "policyType", dp), "FrontendTLSPolicy default.policyType is not supported: ssegate "
            "offers TLS 1.2 and 1.3 with OpenSSL's default ciphers and cannot apply a named TLS policy");
    struct fy_node *v = get_map(ld, def, "verify", true, dp);
    if (v == NULL)
        return;
    pos_t vp = npos(v, dp);
    check_keys(ld, v, "FrontendTLSPolicy verify", KEYS("caCertificateRef", "subjectAltName"));
    valdef_t *val = aalloc(ld, sizeof(*val));
    val->pos = vp;
    val->from_group = ALB_GROUP;
    val->from_kind = "FrontendTLSPolicy";
    val->from_ns = md.ns;
    size_t len = strlen(md.ns) + strlen(md.name) + 32;
    val->source = aalloc(ld, len);
    snprintf(val->source, len, "FrontendTLSPolicy %s/%s", md.ns, md.name);
    val->san = get_str(ld, v, "subjectAltName", false, vp);
    if (val->san != NULL && val->san[0] == '\0')
        ERR(ld, npos(field(v, "subjectAltName"), vp), "FrontendTLSPolicy verify.subjectAltName is empty");
    struct fy_node *r = get_map(ld, v, "caCertificateRef", true, vp);
    size_t cap = 0;
    if (r != NULL)
        sg__config_parse_caref(ld, val, r, md.ns, &cap, vp);
    p->val = val;
}

/* ---- once every document is read ---- */

static const cabundle_t *find_bundle(const loader_t *ld, const caref_t *r)
{
    for (size_t i = 0; i < ld->ncas; i++)
        if (strcmp(ld->cas[i].kind, r->kind) == 0 && strcmp(ld->cas[i].ns, r->ns) == 0 &&
            strcmp(ld->cas[i].name, r->name) == 0)
            return &ld->cas[i];
    return NULL;
}

void sg__config_resolve_ca(loader_t *ld, valdef_t *v)
{
    if (v == NULL || v->resolved != NULL || v->nrefs == 0)
        return;
    size_t total = 0;
    bool ok = true;
    const cabundle_t **bs = aalloc(ld, v->nrefs * sizeof(*bs));
    for (size_t i = 0; i < v->nrefs; i++) {
        const caref_t *r = &v->refs[i];
        if (strcmp(r->ns, v->from_ns) != 0 &&
            !granted(ld, v->from_group, v->from_kind, v->from_ns, r->ns, "", r->kind, r->name)) {
            ERR(ld, r->pos, "%s: caCertificateRef to %s %s/%s is not permitted (RefNotPermitted): no ReferenceGrant "
                "in namespace \"%s\" lets %ss of namespace \"%s\" refer to it", v->source, r->kind, r->ns, r->name,
                r->ns, v->from_kind, v->from_ns);
            ok = false;
            continue;
        }
        const cabundle_t *b = find_bundle(ld, r);
        if (b == NULL || b->pem == NULL) {
            ERR(ld, r->pos, "%s: caCertificateRef to %s %s/%s (InvalidCACertificateRef): %s", v->source, r->kind,
                r->ns, r->name, b == NULL ? "no such object in the config" : "it has no key " CA_KEY);
            ok = false;
            continue;
        }
        char err[512];
        if (sg_tls_check_ca(b->pem, b->len, err, sizeof(err)) < 0) {
            ERR(ld, r->pos, "%s: caCertificateRef to %s %s/%s (InvalidCACertificateRef): %s (the %s is at line %d)",
                v->source, r->kind, r->ns, r->name, err, r->kind, b->pos.line);
            ok = false;
            continue;
        }
        bs[i] = b;
        total += b->len + 1;
    }
    if (!ok)
        return;
    sg_client_validation_t *cv = aalloc(ld, sizeof(*cv));
    cv->ca = aalloc(ld, total + 1);
    for (size_t i = 0; i < v->nrefs; i++) {
        memcpy(cv->ca + cv->ca_len, bs[i]->pem, bs[i]->len);
        cv->ca_len += bs[i]->len;
        cv->ca[cv->ca_len++] = '\n';
    }
    cv->insecure_fallback = v->insecure_fallback;
    cv->subject_alt_name = v->san;
    cv->source = v->source;
    v->resolved = cv;
}

/* A listener that asks for client certificates through two objects would enforce only one of them. */
static void set_validation(loader_t *ld, sg_listener_t *li, const valdef_t *v, pos_t at)
{
    if (li->client_validation != NULL) {
        ERR(ld, at, "listener \"%s\": client-certificate validation is given by both %s and %s (Conflicted)", li->name,
            li->client_validation->source, v->source);
        return;
    }
    li->client_validation = v->resolved;
}

void sg__config_apply_frontend_tls(loader_t *ld)
{
    for (size_t g = 0; g < ld->ngws; g++) {
        gwdef_t *gw = &ld->gws[g];
        sg__config_resolve_ca(ld, gw->fe_default);
        for (size_t p = 0; p < gw->nperport; p++) {
            sg__config_resolve_ca(ld, gw->perport[p].val);
            bool https = false;
            for (size_t i = gw->first; i < gw->first + gw->n; i++)
                https |= ld->lis[i].protocol == SG_PROTO_HTTPS && ld->lis[i].port == gw->perport[p].port;
            if (!https)
                ERR(ld, gw->perport[p].pos, "Gateway %s/%s: perPort port %ld has no HTTPS listener, so its validation "
                    "would apply to nothing", gw->ns, gw->name, gw->perport[p].port);
        }
        for (size_t i = gw->first; i < gw->first + gw->n; i++) {
            sg_listener_t *li = &ld->lis[i];
            if (li->protocol != SG_PROTO_HTTPS)
                continue;
            const valdef_t *v = gw->fe_default;
            for (size_t p = 0; p < gw->nperport; p++)
                if (gw->perport[p].port == li->port)
                    v = gw->perport[p].val;
            if (v != NULL)
                li->client_validation = v->resolved;
        }
    }
    for (size_t k = 0; k < ld->nftpols; k++) {
        ftpolicy_t *p = &ld->ftpols[k];
        if (p->gw_name == NULL || p->val == NULL)
            continue;
        sg__config_resolve_ca(ld, p->val);
        const gwdef_t *gw = NULL;
        for (size_t g = 0; g < ld->ngws && gw == NULL; g++)
            if (strcmp(ld->gws[g].name, p->gw_name) == 0 && strcmp(ld->gws[g].ns, p->gw_ns) == 0)
                gw = &ld->gws[g];
        if (gw == NULL) {
            ERR(ld, p->tpos, "FrontendTLSPolicy %s/%s: no Gateway %s/%s (TargetNotFound)", p->ns, p->name, p->gw_ns,
                p->gw_name);
            continue;
        }
        for (size_t s = 0; s < p->nsections; s++) {
            bool found = false;
            for (size_t i = gw->first; i < gw->first + gw->n && !found; i++) {
                sg_listener_t *li = &ld->lis[i];
                if (strcmp(li->name, p->sections[s]) != 0)
                    continue;
                found = true;
                if (li->protocol != SG_PROTO_HTTPS)
                    ERR(ld, p->tpos, "FrontendTLSPolicy %s/%s: listener \"%s\" is not HTTPS, so it cannot ask for "
                        "client certificates", p->ns, p->name, li->name);
                else
                    set_validation(ld, li, p->val, p->tpos);
            }
            if (!found)
                ERR(ld, p->tpos, "FrontendTLSPolicy %s/%s: Gateway %s/%s has no listener named \"%s\" "
                    "(TargetNotFound)", p->ns, p->name, gw->ns, gw->name, p->sections[s]);
        }
        if (p->nsections == 0) {
            bool any = false;
            for (size_t i = gw->first; i < gw->first + gw->n; i++)
                if (ld->lis[i].protocol == SG_PROTO_HTTPS) {
                    any = true;
                    set_validation(ld, &ld->lis[i], p->val, p->tpos);
                }
            if (!any)
                ERR(ld, p->tpos, "FrontendTLSPolicy %s/%s: Gateway %s/%s has no HTTPS listener", p->ns, p->name,
                    gw->ns, gw->name);
        }
    }
}
