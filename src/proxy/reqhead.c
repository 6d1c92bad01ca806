/* reqhead.c: the pieces of an upstream request head: a bounded output buffer, hop-by-hop headers, the header
 * modifiers of HTTPRoute filters, path rewrites. Pure: no I/O, no allocation. */
#include <string.h>

#include "proxy/reqhead.h"

void sg_hbuf_put(sg_hbuf_t *b, const char *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void sg_hbuf_put_str(sg_hbuf_t *b, sg_str_t s)
{
    sg_hbuf_put(b, s.p, s.n);
}

void sg_hbuf_put_header(sg_hbuf_t *b, sg_str_t name, sg_str_t value)
{
    sg_hbuf_put_str(b, name);
    sg_hbuf_put(b, ": ", 2);
    sg_hbuf_put_str(b, value);
    sg_hbuf_put(b, "\r\n", 2);
}

/* Hop-by-hop headers (RFC 9110 7.6.1) and the ones we regenerate. */
bool sg_reqhead_hop_by_hop(sg_str_t name)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
                                         "upgrade", "trailer", "proxy-authenticate", "proxy-authorization"};
    for (size_t i = 0; i < SG_ARRAY_LEN(names); i++)
        if (sg_str_ieq_lit(name, names[i]))
            return true;
    return false;
}

/* True when `name` is one of the comma-separated tokens of any Connection header. */
bool sg_reqhead_in_connection(const sg_h1_msg_t *msg, sg_str_t name)
{
    for (size_t i = 0; i < msg->nheaders; i++) {
        if (!sg_str_ieq_lit(msg->headers[i].name, "connection"))
            continue;
        sg_str_t v = msg->headers[i].value;
        size_t a = 0;
        while (a < v.n) {
            size_t e = a;
            while (e < v.n && v.p[e] != ',')
                e++;
            size_t x = a, y = e;
            while (x < y && (v.p[x] == ' ' || v.p[x] == '\t'))
                x++;
            while (y > x && (v.p[y - 1] == ' ' || v.p[y - 1] == '\t'))
                y--;
            if (sg_str_ieq((sg_str_t){v.p + x, y - x}, name))
                return true;
            a = e + 1;
        }
    }
    return false;
}

static bool in_list(char *const *names, size_t n, sg_str_t name)
{
    for (size_t i = 0; i < n; i++)
        if (sg_str_ieq_lit(name, names[i]))
            return true;
    return false;
}

static bool in_kv(const sg_kv_t *kv, size_t n, sg_str_t name)
{
    for (size_t i = 0; i < n; i++)
        if (sg_str_ieq_lit(name, kv[i].name))
            return true;
    return false;
}

/* Whether a header modifier drops an incoming header (removed, or replaced by a `set`). */
bool sg_reqhead_mod_drops(const sg_header_mod_t *m, sg_str_t name)
{
    return m != NULL && (in_list(m->remove, m->nremove, name) || in_kv(m->set, m->nset, name));
}

void sg_reqhead_mod_emit(sg_hbuf_t *b, const sg_header_mod_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nset; i++)
        sg_hbuf_put_header(b, sg_str_c(m->set[i].name), sg_str_c(m->set[i].value));
    for (size_t i = 0; i < m->nadd; i++)
        sg_hbuf_put_header(b, sg_str_c(m->add[i].name), sg_str_c(m->add[i].value));
}

/* Applies ReplaceFullPath / ReplacePrefixMatch to path (no query), writing into b. */
void sg_reqhead_put_path(sg_hbuf_t *b, sg_pathmod_t kind, const char *repl, sg_str_t path, size_t prefix_len)
{
    if (kind == SG_PATHMOD_FULL) {
        sg_hbuf_put_str(b, sg_str_c(repl));
        return;
    }
    if (kind != SG_PATHMOD_PREFIX) {
        sg_hbuf_put_str(b, path);
        return;
    }
    sg_str_t rest = {path.p + SG_MIN(prefix_len, path.n), path.n - SG_MIN(prefix_len, path.n)};
    sg_str_t r = sg_str_c(repl);
    /* Join without doubling or losing the slash between the replacement and the rest. */
    if (r.n > 0 && r.p[r.n - 1] == '/' && rest.n > 0 && rest.p[0] == '/')
        r.n--;
    if (r.n == 0 && (rest.n == 0 || rest.p[0] != '/'))
        sg_hbuf_put(b, "/", 1);
    sg_hbuf_put_str(b, r);
    if (r.n > 0 && rest.n > 0 && rest.p[0] != '/' && r.p[r.n - 1] != '/')
        sg_hbuf_put(b, "/", 1);
    sg_hbuf_put_str(b, rest);
}

sg_str_t sg_reqhead_host_only(sg_str_t host)
{
    if (host.n > 0 && host.p[0] == '[') {
        const char *e = memchr(host.p, ']', host.n);
        return e ? (sg_str_t){host.p, (size_t)(e - host.p) + 1} : host;
    }
    const char *c = memchr(host.p, ':', host.n);
    return c ? (sg_str_t){host.p, (size_t)(c - host.p)} : host;
}

