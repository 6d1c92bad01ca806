/* cors.c: the HTTPRoute CORS filter's decisions (origin syntax and matching, preflight answers, actual-response
 * headers); pure, so the loader and the proxy share one definition of an origin. */
#include "config/cors.h"

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A DNS name or IPv4 address: dot-separated non-empty labels of letters, digits and inner hyphens. */
static bool valid_dns(sg_str_t h)
{
    if (h.n == 0 || h.n > 253)
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= h.n; i++) {
        if (i == h.n || h.p[i] == '.') {
            size_t len = i - start;
            if (len == 0 || len > 63 || h.p[start] == '-' || h.p[i - 1] == '-')
                return false;
            start = i + 1;
            continue;
        }
        if (!is_alpha(h.p[i]) && !is_digit(h.p[i]) && h.p[i] != '-')
            return false;
    }
    return true;
}

/* "[v6]": hex digits, colons and dots (an embedded IPv4) between brackets. */
static bool valid_v6(sg_str_t h)
{
    if (h.n < 4 || h.p[0] != '[' || h.p[h.n - 1] != ']')
        return false;
    for (size_t i = 1; i + 1 < h.n; i++)
        if (!is_hex(h.p[i]) && h.p[i] != ':' && h.p[i] != '.')
            return false;
    return true;
}

int sg_cors_origin_parse(sg_str_t s, bool pattern, sg_cors_origin_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    *why = "an origin is scheme://host[:port] (scheme http or https), or \"*\" alone";
    size_t i = 0;
    while (i < s.n && (is_alpha(s.p[i]) || (i > 0 && (is_digit(s.p[i]) || s.p[i] == '+' || s.p[i] == '-' ||
                                                         s.p[i] == '.'))))
        i++;
    if (i == 0 || s.n - i < 3 || memcmp(s.p + i, "://", 3) != 0)
        return -EINVAL;
    out->scheme = (sg_str_t){s.p, i};
    bool http = sg_str_ieq_lit(out->scheme, "http"), https = sg_str_ieq_lit(out->scheme, "https");
    if (pattern && !http && !https)
        return -EINVAL;
    sg_str_t rest = {s.p + i + 3, s.n - i - 3};
    const char *slash = memchr(rest.p, '/', rest.n);
    if (slash != NULL || memchr(rest.p, '?', rest.n) != NULL || memchr(rest.p, '#', rest.n) != NULL) {
        *why = "an origin has no path, query or fragment (not even a trailing \"/\")";
        return -EINVAL;
    }
    if (memchr(rest.p, '@', rest.n) != NULL) {
        *why = "an origin has no user information";
        return -EINVAL;
    }
    /* The port is after the last ':' that is not inside an IPv6 literal. */
    size_t hl = rest.n;
    const char *close = rest.n > 0 && rest.p[0] == '[' ? memchr(rest.p, ']', rest.n) : NULL;
    size_t from = close ? (size_t)(close - rest.p) : 0;
    const char *colon = memchr(rest.p + from, ':', rest.n - from);
    if (colon != NULL) {
        hl = (size_t)(colon - rest.p);
        sg_str_t ps = {colon + 1, rest.n - hl - 1};
        unsigned long port = 0;
        if (ps.n == 0 || ps.n > 5) {
            *why = "an origin's port is a number from 1 to 65535";
            return -EINVAL;
        }
        for (size_t k = 0; k < ps.n; k++) {
            if (!is_digit(ps.p[k])) {
                *why = "an origin's port is a number from 1 to 65535";
                return -EINVAL;
            }
            port = port * 10 + (unsigned long)(ps.p[k] - '0');
        }
        if (port < 1 || port > 65535) {
            *why = "an origin's port is a number from 1 to 65535";
            return -EINVAL;
        }
        out->port = (uint16_t)port;
    } else {
        out->port = http ? 80 : https ? 443 : 0;
    }
    sg_str_t host = {rest.p, hl};
    const char *star = memchr(host.p, '*', host.n);
    if (star != NULL) {
        if (!pattern)
            return -EINVAL;
        size_t stars = 0;
        for (size_t k = 0; k < host.n; k++)
            stars += host.p[k] == '*';
        if (star != host.p || (host.n > 1 && host.p[1] != '.') || stars > 1) {
            *why = "a wildcard is the whole host (\"https://*\") or its left-most label (\"https://*.example.com\")";
            return -EINVAL;
        }
        out->wild = true;
        out->host = (sg_str_t){host.p + 1, host.n - 1};
        if (out->host.n > 0 && !valid_dns((sg_str_t){out->host.p + 1, out->host.n - 1})) {
            *why = "an origin's host is a DNS name, an IPv4 address or a bracketed IPv6 address";
            return -EINVAL;
        }
        return 0;
    }
    if (!valid_dns(host) && !valid_v6(host)) {
        *why = "an origin's host is a DNS name, an IPv4 address or a bracketed IPv6 address";
        return -EINVAL;
    }
    out->host = host;
    return 0;
}

bool sg_cors_origin_match(const sg_cors_origin_t *p, const sg_cors_origin_t *o)
{
    if (!sg_str_ieq(p->scheme, o->scheme) || p->port != o->port || o->wild)
        return false;
    if (!p->wild)
        return sg_str_ieq(p->host, o->host);
    if (p->host.n == 0)
        return true;
    /* "*.example.com" needs at least one character before ".example.com": example.com itself is not in it. */
    if (o->host.n <= p->host.n)
        return false;
    return sg_str_ieq((sg_str_t){o->host.p + o->host.n - p->host.n, p->host.n}, p->host);
}

bool sg_cors_origin_allowed(const sg_cors_t *c, sg_str_t origin)
{
    sg_cors_origin_t o;
    const char *why;
    /* An opaque origin ("null": sandboxed frames, file: pages) is refused even by "*": echoing it back would let
     * any sandboxed page read the response, with credentials when they are allowed. */
    if (c == NULL || origin.n == 0 || sg_cors_origin_parse(origin, false, &o, &why) != 0)
        return false;
    if (c->any_origin)
        return true;
    for (size_t i = 0; i < c->norigins; i++)
        if (sg_cors_origin_match(&c->origins[i], &o))
            return true;
    return false;
}

sg_str_t sg_cors_header(const sg_h1_msg_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (sg_str_ieq_lit(req->headers[i].name, name))
            return req->headers[i].value;
    return (sg_str_t){NULL, 0};
}

bool sg_cors_is_preflight(const sg_h1_msg_t *req)
{
    return sg_str_eq(req->method, SG_STR("OPTIONS")) && sg_cors_header(req, "origin").p != NULL &&
           sg_cors_header(req, "access-control-request-method").p != NULL;
}

static bool tchar(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool is_token(sg_str_t t)
{
    if (t.n == 0)
        return false;
    for (size_t i = 0; i < t.n; i++)
        if (!tchar(t.p[i]))
            return false;
    return true;
}

static bool method_allowed(const sg_cors_t *c, sg_str_t m)
{
    if (!is_token(m))
        return false;
    /* CORS-safelisted methods need no permission (Fetch); method names are case-sensitive. */
    if (sg_str_eq(m, SG_STR("GET")) || sg_str_eq(m, SG_STR("HEAD")) || sg_str_eq(m, SG_STR("POST")))
        return true;
    if (c->any_method)
        return true;
    for (size_t i = 0; i < c->nmethods; i++)
        if (sg_str_eq(m, sg_str_c(c->methods[i])))
            return true;
    return false;
}

/* Every name of the comma-separated Access-Control-Request-Headers list is allowed. */
static bool headers_allowed(const sg_cors_t *c, sg_str_t list)
{
    size_t a = 0;
    while (a < list.n) {
        size_t e = a;
        while (e < list.n && list.p[e] != ',')
            e++;
        size_t x = a, y = e;
        while (x < y && (list.p[x] == ' ' || list.p[x] == '\t'))
            x++;
        while (y > x && (list.p[y - 1] == ' ' || list.p[y - 1] == '\t'))
            y--;
        sg_str_t name = {list.p + x, y - x};
        a = e + 1;
        if (name.n == 0)
            continue;
        if (!is_token(name))
            return false;
        if (c->any_header)
            continue;
        bool found = false;
        for (size_t i = 0; i < c->nheaders && !found; i++)
            found = sg_str_ieq(name, sg_str_c(c->headers[i]));
        if (!found)
            return false;
    }
    return true;
}

bool sg_cors_preflight(const sg_cors_t *c, const sg_h1_msg_t *req, sg_h1_header_t *out, size_t *n)
{
    sg_str_t origin = sg_cors_header(req, "origin");
    sg_str_t method = sg_cors_header(req, "access-control-request-method");
    sg_str_t hdrs = sg_cors_header(req, "access-control-request-headers");
    size_t k = 0;

    out[k++] = (sg_h1_header_t){SG_STR("Vary"), SG_STR("Origin, Access-Control-Request-Method, "
                                                        "Access-Control-Request-Headers")};
    *n = k;
    if (!sg_cors_origin_allowed(c, origin) || !method_allowed(c, method) || !headers_allowed(c, hdrs))
        return false;
    out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Origin"), origin};
    if (c->credentials)
        out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Credentials"), SG_STR("true")};
    /* "*" is answered by echoing what was asked: a literal "*" means nothing to a browser when credentials are
     * allowed, and never covers Authorization; the echo works in both cases. */
    if (c->any_method)
        out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Methods"), method};
    else if (c->allow_methods != NULL)
        out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Methods"), sg_str_c(c->allow_methods)};
    if (c->any_header) {
        if (hdrs.n > 0)
            out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Headers"), hdrs};
    } else if (c->allow_headers != NULL) {
        out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Headers"), sg_str_c(c->allow_headers)};
    }
    out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Max-Age"), sg_str_c(c->max_age)};
    *n = k;
    return true;
}

size_t sg_cors_actual(const sg_cors_t *c, sg_str_t origin, sg_h1_header_t *out)
{
    size_t k = 0;
    out[k++] = (sg_h1_header_t){SG_STR("Vary"), SG_STR("Origin")};
    if (!sg_cors_origin_allowed(c, origin))
        return k;
    out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Origin"), origin};
    if (c->credentials)
        out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Allow-Credentials"), SG_STR("true")};
    if (c->expose_headers != NULL)
        out[k++] = (sg_h1_header_t){SG_STR("Access-Control-Expose-Headers"), sg_str_c(c->expose_headers)};
    return k;
}

bool sg_cors_owns_header(sg_str_t name)
{
    static const char prefix[] = "access-control-";
    if (name.n <= sizeof(prefix) - 1 || !sg_str_ieq((sg_str_t){name.p, sizeof(prefix) - 1}, SG_STR(prefix)))
        return false;
    sg_str_t rest = {name.p + sizeof(prefix) - 1, name.n - (sizeof(prefix) - 1)};
    return sg_str_ieq_lit(rest, "allow-origin") || sg_str_ieq_lit(rest, "allow-credentials") ||
           sg_str_ieq_lit(rest, "allow-methods") || sg_str_ieq_lit(rest, "allow-headers") ||
           sg_str_ieq_lit(rest, "expose-headers") || sg_str_ieq_lit(rest, "max-age");
}
