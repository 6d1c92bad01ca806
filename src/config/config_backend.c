/* config_backend.c: Service and EndpointSlice documents, and the cross-document resolution of backendRefs to
 * endpoints (Service port -> EndpointSlice port and ready addresses, or the name itself, numeric or DNS). */
#include "config/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* ---- Service / EndpointSlice ---- */

void parse_service(loader_t *ld, struct fy_node *root, pos_t at)
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
        s->ports[s->nports].app_protocol = get_str(ld, e, "appProtocol", false, pp);
        s->ports[s->nports].app_pos = npos(field(e, "appProtocol"), pp);
        s->ports[s->nports++].port = (int)v;
    }
}

void parse_slice(loader_t *ld, struct fy_node *root, pos_t at)
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
        /* A missing or null ready is ready: discovery/v1 says a nil ready is an unknown state that consumers should
         * in most cases take as ready (field() returns NULL for both). serving and terminating are not read: ready is
         * already false on a terminating endpoint, and a nil serving defers to ready. */
        struct fy_node *ready = field(cond, "ready");
        if (ready != NULL) {
            const char *rv = fy_node_get_type(ready) == FYNT_SCALAR ? fy_node_get_scalar0(ready) : NULL;
            if (rv == NULL || (strcmp(rv, "true") != 0 && strcmp(rv, "false") != 0)) {
                ERR(ld, npos(ready, ep), "conditions.ready: expected true, false or null");
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

/* ---- cross-document resolution ---- */

/* Lookups by name: thousands of routes over thousands of Services and slices were quadratic as linear scans. Ties keep
 * document order (the arrays are contiguous, so address order is document order), as the scans did. */
static int cmp_name(const char *ans, const char *an, const char *bns, const char *bn, const void *a, const void *b)
{
    int c = strcmp(ans, bns);
    if (c == 0)
        c = strcmp(an, bn);
    return c ? c : (const char *)a < (const char *)b ? -1 : (const char *)a > (const char *)b;
}

static int cmp_svcp(const void *a, const void *b)
{
    const svc_t *x = *(const svc_t *const *)a, *y = *(const svc_t *const *)b;
    return cmp_name(x->ns, x->name, y->ns, y->name, x, y);
}

static int cmp_slicep(const void *a, const void *b)
{
    const slice_t *x = *(const slice_t *const *)a, *y = *(const slice_t *const *)b;
    return cmp_name(x->ns, x->svc, y->ns, y->svc, x, y);
}

void sg__config_index_services(loader_t *ld)
{
    ld->svc_by_name = aalloc(ld, (ld->nsvcs + 1) * sizeof(*ld->svc_by_name));
    for (size_t i = 0; i < ld->nsvcs; i++)
        ld->svc_by_name[i] = &ld->svcs[i];
    qsort(ld->svc_by_name, ld->nsvcs, sizeof(*ld->svc_by_name), cmp_svcp);
    ld->slice_by_svc = aalloc(ld, (ld->nslices + 1) * sizeof(*ld->slice_by_svc));
    for (size_t i = 0; i < ld->nslices; i++)
        ld->slice_by_svc[i] = &ld->slices[i];
    qsort(ld->slice_by_svc, ld->nslices, sizeof(*ld->slice_by_svc), cmp_slicep);
}

/* Entry i of a sorted index, as its namespace and name. */
typedef void name_at_fn(const loader_t *ld, size_t i, const char **ns, const char **name);

static void svc_name_at(const loader_t *ld, size_t i, const char **ns, const char **name)
{
    *ns = ld->svc_by_name[i]->ns;
    *name = ld->svc_by_name[i]->name;
}

static void slice_name_at(const loader_t *ld, size_t i, const char **ns, const char **name)
{
    *ns = ld->slice_by_svc[i]->ns;
    *name = ld->slice_by_svc[i]->svc;
}

/* The entries named ns/name of an index sorted by (namespace, name), n long, whose entry i name_at gives: *first, and
 * how many (in document order). */
static size_t name_range(const loader_t *ld, size_t n, name_at_fn *name_at, const char *ns, const char *name,
                         size_t *first)
{
    const char *ins, *iname;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        name_at(ld, mid, &ins, &iname);
        int c = strcmp(ins, ns);
        if (c == 0)
            c = strcmp(iname, name);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    for (; end < n; end++) {
        name_at(ld, end, &ins, &iname);
        if (strcmp(ins, ns) != 0 || strcmp(iname, name) != 0)
            break;
    }
    *first = lo;
    return end - lo;
}

/* The Services named ns/name, in document order: *first in svc_by_name, and how many. */
static size_t svc_range(const loader_t *ld, const char *ns, const char *name, size_t *first)
{
    return name_range(ld, ld->nsvcs, svc_name_at, ns, name, first);
}

const svc_t *sg__config_find_svc(const loader_t *ld, const char *ns, const char *name)
{
    size_t first;
    return svc_range(ld, ns, name, &first) > 0 ? ld->svc_by_name[first] : NULL;
}

/* The EndpointSlices of Service ns/name, in document order: *first in slice_by_svc, and how many. */
static size_t find_slices(const loader_t *ld, const char *ns, const char *name, size_t *first)
{
    return name_range(ld, ld->nslices, slice_name_at, ns, name, first);
}

void set_label(sg_endpoint_t *ep)
{
    char ip[INET6_ADDRSTRLEN];
    if (ep->addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ep->addr;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(ep->label, sizeof(ep->label), "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        /* By hand: inet_ntop and snprintf were a tenth of a build at 5,000 endpoints. "a.b.c.d:port" fits the label
         * (at most 21 bytes and its NUL). */
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ep->addr;
        const unsigned char *a = (const unsigned char *)&s4->sin_addr;
        unsigned vals[5] = {a[0], a[1], a[2], a[3], ntohs(s4->sin_port)};
        char *p = ep->label;
        for (size_t k = 0; k < 5; k++) {
            char d[5];
            size_t n = 0;
            unsigned v = vals[k];
            do {
                d[n++] = (char)('0' + v % 10);
                v /= 10;
            } while (v > 0);
            while (n > 0)
                *p++ = d[--n];
            if (k < 4)
                *p++ = k < 3 ? '.' : ':';
        }
        *p = '\0';
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

/* The name the DNS fallback resolves for a backendRef with no EndpointSlice: the namespace is a boundary there
 * too. An IP address stands for itself, and a name in the default namespace resolves as written (localhost, a
 * host of the network). In any other namespace the name is qualified with it, "<name>.<namespace>" (in a
 * cluster, the resolver's search list makes that the Service's name), and never tried bare: a bare name would
 * resolve wherever the gateway's own resolver looks first, e.g. in the gateway's namespace. */
static const char *dns_name(loader_t *ld, const sg_backend_t *b)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (strcmp(b->ns, "default") == 0 || inet_pton(AF_INET, b->name, buf) == 1 ||
        inet_pton(AF_INET6, b->name, buf) == 1)
        return b->name;
    size_t n = strlen(b->name) + strlen(b->ns) + 2;
    char *q = aalloc(ld, n);
    snprintf(q, n, "%s.%s", b->name, b->ns);
    return q;
}

/* Kubernetes' mapping: backendRef port -> Service port -> its name -> EndpointSlice port of that name. */
static void resolve_backend(loader_t *ld, sg_backend_t *b, const sg_rule_t *r)
{
    size_t cap = 0;
    const svc_t *svc = sg__config_find_svc(ld, b->ns, b->name);
    bool have_slices = false;
    if (svc != NULL) {
        const svcport_t *sp = NULL;
        for (size_t i = 0; i < svc->nports && sp == NULL; i++)
            if (svc->ports[i].port == b->port)
                sp = &svc->ports[i];
        size_t first, nsl = find_slices(ld, svc->ns, svc->name, &first);
        for (size_t i = first; i < first + nsl; i++) {
            const slice_t *sl = ld->slice_by_svc[i];
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
                /* Slice addresses were checked to be IP literals when read: convert them here rather than through the
                 * name cache, whose linear lookup made thousands of endpoints quadratic. */
                struct sockaddr_storage ss;
                memset(&ss, 0, sizeof(ss));
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                if (inet_pton(AF_INET, sl->addrs[j], &s4->sin_addr) == 1) {
                    s4->sin_family = AF_INET;
                    add_endpoint(ld, b, &cap, (struct sockaddr *)s4, sizeof(*s4), (uint16_t)p->port);
                } else if (inet_pton(AF_INET6, sl->addrs[j], &s6->sin6_addr) == 1) {
                    s6->sin6_family = AF_INET6;
                    add_endpoint(ld, b, &cap, (struct sockaddr *)s6, sizeof(*s6), (uint16_t)p->port);
                }
            }
        }
        if (sp == NULL && have_slices)
            WARN(ld, ((pos_t){r->line, r->col}), "Service %s/%s has no port %u; backend has no endpoints", svc->ns,
                 svc->name, b->port);
    }
    if (!have_slices) {
        resolved_t *res = resolve_name(ld, dns_name(ld, b));
        for (size_t k = 0; k < res->n; k++)
            add_endpoint(ld, b, &cap, (struct sockaddr *)&res->addrs[k], res->lens[k], b->port);
    }
}

int sg__config_resolve_patched(loader_t *ld, sg_backend_t *b, const sg_rule_t *r)
{
    const svc_t *svc = sg__config_find_svc(ld, b->ns, b->name);
    if (svc == NULL)
        return -EAGAIN;
    bool port = false;
    for (size_t i = 0; i < svc->nports && !port; i++)
        port = svc->ports[i].port == b->port;
    size_t first;
    if (!port || find_slices(ld, svc->ns, svc->name, &first) == 0)
        return -EAGAIN;
    b->endpoints = NULL;
    b->nendpoints = 0;
    resolve_backend(ld, b, r);
    return 0;
}

void resolve_backends(loader_t *ld)
{
    for (size_t i = 0; i < ld->nroutes; i++) {
        sg_route_t *rt = &ld->routes[i];
        for (size_t j = 0; j < rt->nrules; j++) {
            sg_rule_t *r = &rt->rules[j];
            r->total_weight = 0;
            for (size_t k = 0; k < r->nbackends; k++) {
                sg_backend_t *b = &r->backends[k];
                if (b->name == NULL || b->not_permitted)
                    continue;
                resolve_backend(ld, b, r);
                if (b->nendpoints > 0)
                    r->total_weight += b->weight;
            }
        }
    }
}

/*
 * GEP-1911: a Service port's appProtocol says what its backends speak. The values ssegate knows:
 *   absent, "http"       HTTP/1.1 (over TLS when a BackendTLSPolicy applies)
 *   "kubernetes.io/h2c"  HTTP/2 with prior knowledge, cleartext
 *   "https"              TLS (a BackendTLSPolicy must say how to verify) offering ALPN h2 then http/1.1
 *   "kubernetes.io/ws"   WebSocket over cleartext HTTP/1.1
 *   "kubernetes.io/wss"  WebSocket over TLS: HTTP/1.1 over TLS, so a BackendTLSPolicy must apply
 * Anything else is refused (Gateway API's UnsupportedProtocol), as is a cleartext protocol on a port a
 * BackendTLSPolicy targets: which of the two was meant cannot be guessed, and guessing wrong either sends
 * plaintext where TLS was asked for or fails every request.
 */
static void apply_app_protocol(loader_t *ld, sg_backend_t *b, const sg_rule_t *r)
{
    const svcport_t *sp = NULL;
    size_t first, nsvc = svc_range(ld, b->ns, b->name, &first);
    for (size_t i = first; i < first + nsvc && sp == NULL; i++) {
        const svc_t *svc = ld->svc_by_name[i];
        for (size_t j = 0; j < svc->nports && sp == NULL; j++)
            if (svc->ports[j].port == b->port)
                sp = &svc->ports[j];
    }
    b->proto = SG_BACKEND_H1;
    if (r->route->kind == SG_ROUTE_GRPC) {
        /* gRPC is HTTP/2: a GRPCRoute's backends speak it without being told (GEP-1911 lets the route type say so),
         * h2c in cleartext, ALPN h2 under a BackendTLSPolicy; an appProtocol that says otherwise is refused. */
        const char *ap = sp ? sp->app_protocol : NULL;
        if (ap == NULL || strcmp(ap, "kubernetes.io/h2c") == 0 || strcmp(ap, "https") == 0 ||
            strcmp(ap, "grpc") == 0) {
            if (ap != NULL && strcmp(ap, "https") == 0 && b->tls == NULL)
                ERR(ld, sp->app_pos, "Service %s/%s port %u: appProtocol https is TLS, but no BackendTLSPolicy "
                    "applies to it, so nothing says how to verify the backend's certificate", b->ns, b->name, b->port);
            else if (ap != NULL && strcmp(ap, "kubernetes.io/h2c") == 0 && b->tls != NULL)
                ERR(ld, sp->app_pos, "Service %s/%s port %u: appProtocol %s is cleartext, but %s applies to it; use "
                    "\"https\" for h2 over TLS, or drop the policy", b->ns, b->name, b->port, ap,
                    b->tls_policy ? b->tls_policy : "a BackendTLSPolicy");
            b->proto = SG_BACKEND_H2;
            return;
        }
        ERR(ld, sp->app_pos, "Service %s/%s port %u: appProtocol %s cannot carry gRPC, which GRPCRoute %s/%s sends to "
            "it (UnsupportedProtocol); use kubernetes.io/h2c, https (h2 over TLS) or leave it out", b->ns, b->name,
            b->port, ap, r->route->ns, r->route->name);
        return;
    }
    if (sp == NULL || sp->app_protocol == NULL)
        return;
    const char *ap = sp->app_protocol;
    pos_t at = sp->app_pos;
    if (strcmp(ap, "http") == 0)
        return;
    if (strcmp(ap, "kubernetes.io/h2c") == 0 || strcmp(ap, "kubernetes.io/ws") == 0) {
        if (b->tls != NULL)
            ERR(ld, at, "Service %s/%s port %u: appProtocol %s is cleartext, but %s applies to it; use \"https\" "
                "(h2 or HTTP/1.1 over TLS) or \"kubernetes.io/wss\" for TLS, or drop the policy", b->ns, b->name,
                b->port, ap, b->tls_policy ? b->tls_policy : "a BackendTLSPolicy");
        else if (strcmp(ap, "kubernetes.io/h2c") == 0)
            b->proto = SG_BACKEND_H2;
        return;
    }
    if (strcmp(ap, "https") == 0 || strcmp(ap, "kubernetes.io/wss") == 0) {
        if (b->tls == NULL)
            ERR(ld, at, "Service %s/%s port %u: appProtocol %s is TLS, but no BackendTLSPolicy applies to it, so "
                "nothing says how to verify the backend's certificate", b->ns, b->name, b->port, ap);
        else if (strcmp(ap, "https") == 0)
            b->proto = SG_BACKEND_H2;
        return;
    }
    ERR(ld, at, "Service %s/%s port %u: appProtocol %s is not supported (UnsupportedProtocol); ssegate speaks "
        "http, https, kubernetes.io/h2c, kubernetes.io/ws and kubernetes.io/wss", b->ns, b->name, b->port, ap);
}

void sg__config_apply_app_protocols(loader_t *ld)
{
    for (size_t i = 0; i < ld->nroutes; i++) {
        sg_route_t *rt = &ld->routes[i];
        for (size_t j = 0; j < rt->nrules; j++)
            for (size_t k = 0; k < rt->rules[j].nbackends; k++) {
                sg_backend_t *b = &rt->rules[j].backends[k];
                if (b->name != NULL && !b->not_permitted)
                    apply_app_protocol(ld, b, &rt->rules[j]);
            }
    }
}
