/* config_gateway.c: the Gateway phase: Gateway documents (addresses, listeners and their tls blocks), and the binds
 * built from their listeners once every document is read. */
#include "config/config_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* ---- Gateway ---- */

void parse_gateway(loader_t *ld, struct fy_node *root, pos_t at)
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
               KEYS("gatewayClassName", "listeners", "addresses", "infrastructure", "backendTLS", "tls"));
    /* spec.backendTLS is the older place of the backend client certificate (Gateway API v1.3): refused with the
     * current form named, never ignored. spec.tls is parsed below (config_mtls.c, config_btls.c). */
    if (field(spec, "backendTLS") != NULL)
        ERR(ld, key_pos(spec, "backendTLS", sp), "Gateway spec.backendTLS is the older form and is not served; "
            "use spec.tls.backend.clientCertificateRef");
    gwdef_t *gw = VPUSH(ld, ld->gws, ld->ngws, ld->capgws);
    gw->name = md.name;
    gw->ns = md.ns;
    gw->pos = at;
    gw->first = ld->nlis;
    size_t gwi = ld->ngws - 1;
    sg__config_parse_gateway_tls(ld, gwi, field(spec, "tls"), sp);

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
    size_t li_no = 0;
    while (ls && (l = fy_node_sequence_iterate(ls, &it)) != NULL) {
        if (sg__config_dropped(ld, DX_LISTENER, li_no++))
            continue;
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
        sg__config_parse_allowed_routes(ld, li, field(l, "allowedRoutes"), lp);
    }
    gw->n = ld->nlis - gw->first;
}

void build_binds(loader_t *ld, sg_config_t *cfg)
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
