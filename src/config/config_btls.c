/* config_btls.c: TLS to backends: BackendTLSPolicy (Gateway API v1/v1alpha3 and AGC's alb.networking.azure.io/v1),
 * Gateway spec.tls.backend (the client certificate shown to backends), and the TLS client context of each backend. */
#include "config/config_int.h"

#include <stdio.h>
#include <string.h>

#include "net/tls.h"
#include "net/tlsclient.h"

#define GW_GROUP "gateway.networking.k8s.io"
#define ALB_GROUP "alb.networking.azure.io"
#define MAX_SANS 5              /* Gateway API's limit on validation.subjectAltNames */

static bool core_group(const char *g)
{
    return g == NULL || g[0] == '\0' || strcmp(g, "core") == 0;
}

/* A reference to a Secret: {group, kind, name, namespace}. */
static certref_t *parse_certref(loader_t *ld, struct fy_node *r, const char *def_ns, const char *what, pos_t at)
{
    pos_t rp = npos(r, at);
    if (fy_node_get_type(r) != FYNT_MAPPING) {
        ERR(ld, rp, "%s: expected a mapping with kind and name", what);
        return NULL;
    }
    check_keys(ld, r, what, KEYS("group", "kind", "name", "namespace"));
    char *group = get_str(ld, r, "group", false, rp);
    char *kind = get_str(ld, r, "kind", false, rp);
    char *name = get_str(ld, r, "name", true, rp);
    char *ns = get_str(ld, r, "namespace", false, rp);
    if (!core_group(group) || (kind != NULL && strcmp(kind, "Secret") != 0)) {
        ERR(ld, rp, "%s: only a core Secret (type kubernetes.io/tls) is served (InvalidKind)", what);
        return NULL;
    }
    if (name == NULL)
        return NULL;
    certref_t *c = aalloc(ld, sizeof(*c));
    c->name = name;
    c->ns = ns ? ns : (char *)def_ns;
    c->pos = rp;
    return c;
}

void sg__config_parse_gateway_backend_tls(loader_t *ld, size_t gwi, struct fy_node *be, pos_t at)
{
    if (be == NULL)
        return;
    pos_t bp = npos(be, at);
    check_keys(ld, be, "Gateway spec.tls.backend", KEYS("clientCertificateRef"));
    struct fy_node *r = get_map(ld, be, "clientCertificateRef", true, bp);
    if (r != NULL)
        ld->gws[gwi].be_cert = parse_certref(ld, r, ld->gws[gwi].ns, "spec.tls.backend.clientCertificateRef", bp);
}

static btpolicy_t *new_policy(loader_t *ld, const meta_t *md, pos_t at)
{
    btpolicy_t *p = VPUSH(ld, ld->btpols, ld->nbtpols, ld->capbtpols);
    p->ns = md->ns;
    p->name = md->name;
    p->pos = at;
    size_t len = strlen(md->ns) + strlen(md->name) + 32;
    p->label = aalloc(ld, len);
    snprintf(p->label, len, "BackendTLSPolicy %s/%s", md->ns, md->name);
    return p;
}

static void new_val(loader_t *ld, btpolicy_t *p, const char *from_group, pos_t at)
{
    p->val = aalloc(ld, sizeof(*p->val));
    p->val->pos = at;
    p->val->from_group = from_group;
    p->val->from_kind = "BackendTLSPolicy";
    p->val->from_ns = p->ns;
    p->val->source = p->label;
}

/* Gateway API targetRefs[]: {group: "", kind: Service, name, sectionName}. */
static void parse_target(loader_t *ld, btpolicy_t *p, struct fy_node *t, size_t *cap, pos_t at)
{
    pos_t tp = npos(t, at);
    if (fy_node_get_type(t) != FYNT_MAPPING) {
        ERR(ld, tp, "targetRefs[]: expected a mapping with group, kind and name");
        return;
    }
    check_keys(ld, t, "BackendTLSPolicy targetRef", KEYS("group", "kind", "name", "sectionName"));
    char *group = get_str(ld, t, "group", false, tp);
    char *kind = get_str(ld, t, "kind", true, tp);
    char *name = get_str(ld, t, "name", true, tp);
    char *sec = get_str(ld, t, "sectionName", false, tp);
    if (kind != NULL && (!core_group(group) || strcmp(kind, "Service") != 0)) {
        ERR(ld, tp, "%s: targetRef %s%s%s is not served: only a core Service", p->label, core_group(group) ? "" : group,
            core_group(group) ? "" : "/", kind);
        return;
    }
    if (name == NULL || kind == NULL)
        return;
    bttarget_t *bt = VPUSH(ld, p->targets, p->ntargets, *cap);
    bt->ns = p->ns;             /* a policy applies to Services of its own namespace only */
    bt->name = name;
    bt->section = sec;
    bt->pos = tp;
}

static void add_san(loader_t *ld, btpolicy_t *p, bool uri, char *v, size_t *caph, size_t *capu)
{
    if (uri)
        *VPUSH(ld, p->san_uris, p->nsan_uris, *capu) = v;
    else
        *VPUSH(ld, p->san_hosts, p->nsan_hosts, *caph) = v;
}

/* validation.subjectAltNames[]: {type: Hostname, hostname} or {type: URI, uri}. */
static void parse_sans(loader_t *ld, btpolicy_t *p, struct fy_node *sans, pos_t at)
{
    size_t caph = 0, capu = 0;
    void *it = NULL;
    struct fy_node *e;
    if (seq_len(sans) == 0 || seq_len(sans) > MAX_SANS)
        ERR(ld, npos(sans, at), "%s: validation.subjectAltNames: between 1 and %d entries", p->label, MAX_SANS);
    while ((e = fy_node_sequence_iterate(sans, &it)) != NULL) {
        pos_t ep = npos(e, at);
        if (fy_node_get_type(e) != FYNT_MAPPING) {
            ERR(ld, ep, "subjectAltNames[]: expected a mapping with type and hostname or uri");
            p->ok = false;
            continue;
        }
        check_keys(ld, e, "subjectAltName", KEYS("type", "hostname", "uri"));
        char *type = get_str(ld, e, "type", true, ep);
        if (type == NULL) {
            p->ok = false;
            continue;
        }
        bool uri = strcmp(type, "URI") == 0;
        if (!uri && strcmp(type, "Hostname") != 0) {
            ERR(ld, npos(field(e, "type"), ep), "subjectAltName type \"%s\" is not Hostname or URI", type);
            p->ok = false;
            continue;
        }
        const char *key = uri ? "uri" : "hostname";
        if (field(e, uri ? "hostname" : "uri") != NULL)
            ERR(ld, key_pos(e, uri ? "hostname" : "uri", ep), "subjectAltName of type %s takes \"%s\" only", type,
                key);
        char *v = get_str(ld, e, key, true, ep);
        if (v == NULL) {
            p->ok = false;
            continue;
        }
        if (!uri && !is_hostname(v, true)) {
            ERR(ld, npos(field(e, key), ep), "subjectAltName hostname \"%s\" is not a valid DNS name", v);
            p->ok = false;
            continue;
        }
        if (uri && (v[0] == '\0' || strchr(v, ':') == NULL)) {
            ERR(ld, npos(field(e, key), ep), "subjectAltName uri \"%s\" is not an absolute URI", v);
            p->ok = false;
            continue;
        }
        add_san(ld, p, uri, v, &caph, &capu);
    }
}

void sg__config_parse_backend_tls_policy(loader_t *ld, struct fy_node *root, pos_t at)
{
    check_keys(ld, root, "BackendTLSPolicy", KEYS("apiVersion", "kind", "metadata", "spec", "status"));
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    btpolicy_t *p = new_policy(ld, &md, at);
    int nerr = ld->nerr;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "BackendTLSPolicy spec", KEYS("targetRefs", "validation", "options"));
    /* options carry implementation-specific TLS settings (versions, ciphers); none is served. */
    if (field(spec, "options") != NULL && fy_node_mapping_item_count(field(spec, "options")) > 0)
        ERR(ld, key_pos(spec, "options", sp), "%s: spec.options is not supported: ssegate uses TLS 1.2 or 1.3 with "
            "OpenSSL's defaults to backends and cannot apply other settings", p->label);
    struct fy_node *trs = get_seq(ld, spec, "targetRefs", true, sp);
    size_t cap = 0;
    void *it = NULL;
    struct fy_node *t;
    while (trs && (t = fy_node_sequence_iterate(trs, &it)) != NULL)
        parse_target(ld, p, t, &cap, sp);
    if (trs != NULL && seq_len(trs) == 0)
        ERR(ld, npos(trs, sp), "%s: targetRefs is empty", p->label);
    struct fy_node *v = get_map(ld, spec, "validation", true, sp);
    if (v == NULL)
        return;
    pos_t vp = npos(v, sp);
    check_keys(ld, v, "BackendTLSPolicy validation",
               KEYS("caCertificateRefs", "wellKnownCACertificates", "hostname", "subjectAltNames"));
    p->hostname = get_str(ld, v, "hostname", true, vp);
    if (p->hostname != NULL && !is_hostname(p->hostname, false))
        ERR(ld, npos(field(v, "hostname"), vp), "%s: validation.hostname \"%s\" is not a valid DNS name (it is sent "
            "as SNI)", p->label, p->hostname);
    struct fy_node *refs = get_seq(ld, v, "caCertificateRefs", false, vp);
    char *wk = get_str(ld, v, "wellKnownCACertificates", false, vp);
    if ((refs != NULL) == (wk != NULL))
        ERR(ld, vp, "%s: validation needs exactly one of caCertificateRefs and wellKnownCACertificates", p->label);
    if (wk != NULL) {
        if (strcmp(wk, "System") != 0)
            ERR(ld, npos(field(v, "wellKnownCACertificates"), vp), "%s: wellKnownCACertificates \"%s\" is not "
                "\"System\"", p->label, wk);
        p->system = true;
    }
    if (refs != NULL) {
        new_val(ld, p, GW_GROUP, vp);
        size_t rcap = 0;
        it = NULL;
        struct fy_node *r;
        while ((r = fy_node_sequence_iterate(refs, &it)) != NULL)
            sg__config_parse_caref(ld, p->val, r, p->ns, &rcap, vp);
        if (seq_len(refs) == 0 || seq_len(refs) > 8)
            ERR(ld, npos(refs, vp), "%s: validation.caCertificateRefs: between 1 and 8 references", p->label);
    }
    struct fy_node *sans = get_seq(ld, v, "subjectAltNames", false, vp);
    p->ok = true;
    if (sans != NULL)
        parse_sans(ld, p, sans, vp);
    p->ok = p->ok && ld->nerr == nerr;
}

/* AGC's form: spec.targetRef (one Service), spec.default {sni, ports, clientCertificateRef, verify}. */
void sg__config_parse_agc_backend_tls_policy(loader_t *ld, struct fy_node *root, pos_t at)
{
    check_keys(ld, root, "BackendTLSPolicy", KEYS("apiVersion", "kind", "metadata", "spec", "status"));
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    btpolicy_t *p = new_policy(ld, &md, at);
    int nerr = ld->nerr;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "BackendTLSPolicy spec", KEYS("targetRef", "default", "override"));
    if (field(spec, "override") != NULL)
        ERR(ld, key_pos(spec, "override", sp), "%s: spec.override is not supported (use default)", p->label);
    struct fy_node *t = get_map(ld, spec, "targetRef", true, sp);
    if (t != NULL) {
        pos_t tp = npos(t, sp);
        check_keys(ld, t, "BackendTLSPolicy targetRef", KEYS("group", "kind", "name", "namespace"));
        char *group = get_str(ld, t, "group", false, tp);
        char *kind = get_str(ld, t, "kind", true, tp);
        char *name = get_str(ld, t, "name", true, tp);
        char *ns = get_str(ld, t, "namespace", false, tp);
        if (kind != NULL && (!core_group(group) || strcmp(kind, "Service") != 0))
            ERR(ld, tp, "%s: targetRef must be a core Service", p->label);
        else if (ns != NULL && strcmp(ns, p->ns) != 0)
            ERR(ld, tp, "%s: a policy applies only to a Service of its own namespace", p->label);
        else if (name != NULL && kind != NULL) {
            size_t cap = 0;
            bttarget_t *bt = VPUSH(ld, p->targets, p->ntargets, cap);
            bt->ns = p->ns;
            bt->name = name;
            bt->pos = tp;
        }
    }
    struct fy_node *def = get_map(ld, spec, "default", true, sp);
    if (def == NULL)
        return;
    pos_t dp = npos(def, sp);
    check_keys(ld, def, "BackendTLSPolicy default", KEYS("sni", "ports", "clientCertificateRef", "verify"));
    p->hostname = get_str(ld, def, "sni", true, dp);
    if (p->hostname != NULL && !is_hostname(p->hostname, false))
        ERR(ld, npos(field(def, "sni"), dp), "%s: default.sni \"%s\" is not a valid DNS name", p->label, p->hostname);
    struct fy_node *ps = get_seq(ld, def, "ports", false, dp);
    if (p->ntargets == 1 && ps != NULL) {
        bttarget_t *bt = &p->targets[0];
        bt->ports = aalloc(ld, (seq_len(ps) + 1) * sizeof(*bt->ports));
        void *it = NULL;
        struct fy_node *e;
        while ((e = fy_node_sequence_iterate(ps, &it)) != NULL) {
            pos_t pp = npos(e, dp);
            long v;
            if (fy_node_get_type(e) != FYNT_MAPPING) {
                ERR(ld, pp, "ports[]: expected a mapping with \"port\"");
                continue;
            }
            check_keys(ld, e, "BackendTLSPolicy port", KEYS("port"));
            if (get_int(ld, e, "port", 1, 65535, true, &v, pp))
                bt->ports[bt->nports++] = (uint16_t)v;
        }
    }
    struct fy_node *cr = get_map(ld, def, "clientCertificateRef", false, dp);
    if (cr != NULL)
        p->cert = parse_certref(ld, cr, p->ns, "default.clientCertificateRef", dp);
    /* Without verify, AGC would connect without checking the backend: ssegate never does, so it is required. */
    struct fy_node *v = get_map(ld, def, "verify", true, dp);
    if (v != NULL) {
        pos_t vp = npos(v, dp);
        check_keys(ld, v, "BackendTLSPolicy verify", KEYS("caCertificateRef", "subjectAltName"));
        struct fy_node *r = get_map(ld, v, "caCertificateRef", true, vp);
        new_val(ld, p, ALB_GROUP, vp);
        size_t rcap = 0;
        if (r != NULL)
            sg__config_parse_caref(ld, p->val, r, p->ns, &rcap, vp);
        char *san = get_str(ld, v, "subjectAltName", false, vp);
        if (san != NULL) {
            size_t caph = 0, capu = 0;
            if (!is_hostname(san, true))
                ERR(ld, npos(field(v, "subjectAltName"), vp), "%s: verify.subjectAltName \"%s\" is not a valid DNS "
                    "name", p->label, san);
            add_san(ld, p, false, san, &caph, &capu);
        }
    }
    p->ok = ld->nerr == nerr;
}

/* ---- once every document is read ---- */

static const secret_t *find_secret(const loader_t *ld, const certref_t *r)
{
    for (size_t i = 0; i < ld->nsecrets; i++)
        if (strcmp(ld->secrets[i].ns, r->ns) == 0 && strcmp(ld->secrets[i].name, r->name) == 0)
            return &ld->secrets[i];
    return NULL;
}

/* A client certificate reference -> its Secret, checked (grant, presence, a usable pair); NULL after an error. */
static const secret_t *resolve_cert(loader_t *ld, const certref_t *r, const char *from_group, const char *from_kind,
                                    const char *from_ns, const char *source)
{
    if (strcmp(r->ns, from_ns) != 0 &&
        !granted(ld, from_group, from_kind, from_ns, r->ns, "", "Secret", r->name)) {
        ERR(ld, r->pos, "%s: clientCertificateRef to Secret %s/%s is not permitted (RefNotPermitted): no "
            "ReferenceGrant in namespace \"%s\" lets %ss of namespace \"%s\" refer to it", source, r->ns, r->name,
            r->ns, from_kind, from_ns);
        return NULL;
    }
    const secret_t *s = find_secret(ld, r);
    if (s == NULL || s->crt == NULL || s->key == NULL) {
        ERR(ld, r->pos, "%s: clientCertificateRef to Secret %s/%s (InvalidCertificateRef): %s", source, r->ns,
            r->name, s == NULL ? "no such kubernetes.io/tls Secret in the config" : "it has no usable tls.crt and "
            "tls.key");
        return NULL;
    }
    char err[512];
    if (sg_tls_check_pair(s->crt, s->crt_len, s->key, s->key_len, err, sizeof(err)) < 0) {
        ERR(ld, r->pos, "%s: clientCertificateRef to Secret %s/%s (InvalidCertificateRef): %s", source, r->ns,
            r->name, err);
        return NULL;
    }
    return s;
}

/* The port number a sectionName names; 0 after an error. */
static int section_port(loader_t *ld, const btpolicy_t *p, const bttarget_t *t)
{
    const svc_t *s = sg__config_find_svc(ld, t->ns, t->name);
    if (s == NULL) {
        ERR(ld, t->pos, "%s: targetRef sectionName \"%s\" names a port of Service %s/%s, which is not in the config "
            "(TargetNotFound)", p->label, t->section, t->ns, t->name);
        return 0;
    }
    for (size_t i = 0; i < s->nports; i++)
        if (strcmp(s->ports[i].name, t->section) == 0)
            return s->ports[i].port;
    ERR(ld, t->pos, "%s: Service %s/%s has no port named \"%s\" (TargetNotFound)", p->label, t->ns, t->name,
        t->section);
    return 0;
}

/* Does target t (with its sectionName already turned into port sp, 0: none) cover backend b? */
static bool target_covers(const bttarget_t *t, int sp, const sg_backend_t *b)
{
    if (b->name == NULL || strcmp(t->name, b->name) != 0 || strcmp(t->ns, b->ns) != 0)
        return false;
    if (t->section != NULL && sp != b->port)
        return false;
    if (t->nports == 0)
        return true;
    for (size_t i = 0; i < t->nports; i++)
        if (t->ports[i] == b->port)
            return true;
    return false;
}

/* One built client context: a policy with one client certificate (or none). */
typedef struct built {
    const btpolicy_t *pol;
    const secret_t *cert;
    sg_tls_client_t *tls;
} built_t;

static sg_tls_client_t *client_for(loader_t *ld, sg_config_t *cfg, built_t **bs, size_t *nb, size_t *capb,
                                   const btpolicy_t *p, const secret_t *cert, pos_t at)
{
    for (size_t i = 0; i < *nb; i++)
        if ((*bs)[i].pol == p && (*bs)[i].cert == cert)
            return (*bs)[i].tls;
    sg_tls_client_spec_t spec = {
        .ca = p->val && p->val->resolved ? p->val->resolved->ca : NULL,
        .ca_len = p->val && p->val->resolved ? p->val->resolved->ca_len : 0,
        .system = p->system,
        .hostname = p->hostname,
        .san_hosts = (const char *const *)p->san_hosts,
        .nsan_hosts = p->nsan_hosts,
        .san_uris = (const char *const *)p->san_uris,
        .nsan_uris = p->nsan_uris,
        .crt = cert ? cert->crt : NULL,
        .crt_len = cert ? cert->crt_len : 0,
        .key = cert ? cert->key : NULL,
        .key_len = cert ? cert->key_len : 0,
    };
    char err[512];
    sg_tls_client_t *c = sg_tls_client_new(&spec, err, sizeof(err));
    if (c == NULL) {
        ERR(ld, at, "%s: cannot be applied: %s", p->label, err);
        return NULL;
    }
    size_t cap = cfg->nupstream_tls; /* the arena array grows by one each time: its capacity is its length */
    *VPUSH(ld, cfg->upstream_tls, cfg->nupstream_tls, cap) = c;
    built_t *b = VPUSH(ld, *bs, *nb, *capb);
    b->pol = p;
    b->cert = cert;
    b->tls = c;
    return c;
}

/* The client certificate of the Gateways b's route attaches to (they must agree); *bad after an error. */
static const secret_t *gateway_cert(loader_t *ld, const sg_route_t *rt, const sg_backend_t *b,
                                    const secret_t *const *gw_certs, bool *bad)
{
    const secret_t *cert = NULL;
    const gwdef_t *first = NULL;
    for (size_t k = 0; k < rt->nparents; k++) {
        for (size_t g = 0; g < ld->ngws; g++) {
            const gwdef_t *gw = &ld->gws[g];
            if (strcmp(gw->name, rt->parents[k].name) != 0 || strcmp(gw->ns, rt->parents[k].ns) != 0)
                continue;
            if (first != NULL && gw_certs[g] != cert) {
                ERR(ld, ((pos_t){b->line, b->col}), "backendRef %s/%s: its route attaches to Gateways %s/%s and %s/%s, "
                    "which show different client certificates to backends (spec.tls.backend); one backend gets one",
                    b->ns, b->name, first->ns, first->name, gw->ns, gw->name);
                *bad = true;
                return NULL;
            }
            first = gw;
            cert = gw_certs[g];
        }
    }
    return cert;
}

/* HealthCheckPolicy useTLS: true verifies like the data path, so it needs the backend's BackendTLSPolicy. */
static void check_health_tls(loader_t *ld)
{
    for (size_t i = 0; i < ld->nhcpols; i++) {
        const hcpolicy_t *hp = &ld->hcpols[i];
        if (hp->hc == NULL || hp->hc->use_tls != 1)
            continue;
        for (size_t r = 0; r < ld->nroutes; r++)
            for (size_t k = 0; k < ld->routes[r].nrules; k++)
                for (size_t j = 0; j < ld->routes[r].rules[k].nbackends; j++) {
                    const sg_backend_t *b = &ld->routes[r].rules[k].backends[j];
                    if (b->health_check == hp->hc && b->tls == NULL && !b->not_permitted) {
                        ERR(ld, hp->tlspos, "HealthCheckPolicy %s/%s: useTLS is true, but no BackendTLSPolicy applies "
                            "to Service %s/%s port %u, so nothing says how to verify its certificate", hp->ns,
                            hp->name, b->ns, b->name, b->port);
                        return;
                    }
                }
    }
}

void sg__config_apply_backend_tls(loader_t *ld, sg_config_t *cfg)
{
    const secret_t **gw_certs = aalloc(ld, (ld->ngws + 1) * sizeof(*gw_certs));
    bool gw_bad = false;
    for (size_t g = 0; g < ld->ngws; g++) {
        const gwdef_t *gw = &ld->gws[g];
        if (gw->be_cert == NULL)
            continue;
        char src[320];
        snprintf(src, sizeof(src), "Gateway %s/%s spec.tls.backend", gw->ns, gw->name);
        gw_certs[g] = resolve_cert(ld, gw->be_cert, GW_GROUP, "Gateway", gw->ns, src);
        gw_bad |= gw_certs[g] == NULL;
    }
    const secret_t **pol_certs = aalloc(ld, (ld->nbtpols + 1) * sizeof(*pol_certs));
    int **sports = aalloc(ld, (ld->nbtpols + 1) * sizeof(*sports));
    for (size_t i = 0; i < ld->nbtpols; i++) {
        btpolicy_t *p = &ld->btpols[i];
        sg__config_resolve_ca(ld, p->val);
        if (p->val != NULL && p->val->nrefs > 0 && p->val->resolved == NULL)
            p->ok = false;
        if (p->cert != NULL && (pol_certs[i] = resolve_cert(ld, p->cert, ALB_GROUP, "BackendTLSPolicy", p->ns,
                                                            p->label)) == NULL)
            p->ok = false;
        sports[i] = aalloc(ld, (p->ntargets + 1) * sizeof(int));
        for (size_t t = 0; t < p->ntargets; t++)
            if (p->targets[t].section != NULL && (sports[i][t] = section_port(ld, p, &p->targets[t])) == 0)
                p->ok = false;
        /* Two policies for one Service port: Gateway API lets the older win; ssegate refuses both (Conflicted),
         * so what is in force never depends on creation times the file does not carry. */
        for (size_t j = 0; j < i; j++)
            for (size_t t = 0; t < p->ntargets; t++)
                for (size_t u = 0; u < ld->btpols[j].ntargets; u++) {
                    const bttarget_t *a = &p->targets[t], *b = &ld->btpols[j].targets[u];
                    bool same_port = a->section == NULL || b->section == NULL || sports[i][t] == sports[j][u];
                    if (strcmp(a->ns, b->ns) == 0 && strcmp(a->name, b->name) == 0 && same_port &&
                        a->nports + b->nports == 0)
                        ERR(ld, a->pos, "%s: Service %s/%s is also targeted by %s (at line %d); one port takes one "
                            "BackendTLSPolicy (Conflicted)", p->label, a->ns, a->name, ld->btpols[j].label,
                            b->pos.line);
                }
    }
    built_t *bs = NULL;
    size_t nb = 0, capb = 0;
    for (size_t r = 0; r < ld->nroutes; r++) {
        const sg_route_t *rt = &ld->routes[r];
        for (size_t k = 0; k < rt->nrules; k++) {
            for (size_t j = 0; j < rt->rules[k].nbackends; j++) {
                sg_backend_t *b = &rt->rules[k].backends[j];
                if (b->not_permitted)
                    continue;
                const btpolicy_t *pol = NULL;
                size_t pi = 0;
                for (size_t i = 0; i < ld->nbtpols; i++)
                    for (size_t t = 0; t < ld->btpols[i].ntargets; t++)
                        if (target_covers(&ld->btpols[i].targets[t], sports[i][t], b)) {
                            if (pol != NULL && pol != &ld->btpols[i])
                                ERR(ld, ((pos_t){b->line, b->col}), "backendRef %s/%s port %u: both %s and %s apply "
                                    "(Conflicted)", b->ns, b->name, b->port, pol->label, ld->btpols[i].label);
                            pol = &ld->btpols[i];
                            pi = i;
                        }
                if (pol == NULL || !pol->ok || gw_bad)
                    continue;
                bool bad = false;
                const secret_t *cert = gateway_cert(ld, rt, b, gw_certs, &bad);
                if (pol_certs[pi] != NULL)
                    cert = pol_certs[pi]; /* AGC's per-policy certificate is the more specific one */
                if (bad)
                    continue;
                b->tls = client_for(ld, cfg, &bs, &nb, &capb, pol, cert, ((pos_t){b->line, b->col}));
                b->tls_policy = pol->label;
            }
        }
    }
    check_health_tls(ld);
}
