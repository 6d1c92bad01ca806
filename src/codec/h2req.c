/* h2req.c: an HTTP/1.1 request head as HTTP/2 request fields, for upstream HTTP/2 (pure). */
#include <string.h>

#include "codec/h2req.h"

/* Connection-specific fields have no meaning in HTTP/2 (RFC 9113 8.2.2); TE may only say "trailers". */
static bool dropped(sg_str_t name, sg_str_t value)
{
    if (sg_str_ieq_lit(name, "te"))
        return !sg_str_ieq_lit(value, "trailers");
    return sg_str_ieq_lit(name, "connection") || sg_str_ieq_lit(name, "keep-alive") ||
           sg_str_ieq_lit(name, "proxy-connection") || sg_str_ieq_lit(name, "transfer-encoding") ||
           sg_str_ieq_lit(name, "upgrade") || sg_str_ieq_lit(name, "host");
}

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

static int bad(sg_h2req_t *r, const char *why)
{
    r->error = why;
    return SG_EBADMSG;
}

int sg_h2req_from_h1(const char *head, size_t len, bool https, char *lower, sg_h2req_t *r)
{
    r->nfields = 0;
    r->body = SG_H1_BODY_NONE;
    r->error = NULL;
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len && end == NULL; i++)
        if (head[i] == '\r' && head[i + 1] == '\n' && head[i + 2] == '\r' && head[i + 3] == '\n')
            end = head + i + 4;
    if (end == NULL)
        return SG_EINCOMPLETE;
    if (r->cap < 4)
        return SG_EHDRTOOBIG;
    const char *eol = find_crlf(head, end);
    const char *sp1 = memchr(head, ' ', (size_t)(eol - head));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == head || sp2 == sp1 + 1)
        return bad(r, "request line not understood");
    sg_str_t method = {head, (size_t)(sp1 - head)};
    if (sg_str_eq(method, SG_STR("CONNECT")))
        return bad(r, "CONNECT to an HTTP/2 backend is not supported");
    r->fields[r->nfields++] = (sg_h1_header_t){SG_STR(":method"), method};
    r->fields[r->nfields++] = (sg_h1_header_t){SG_STR(":scheme"), https ? SG_STR("https") : SG_STR("http")};
    size_t authority_at = r->nfields++;
    r->fields[authority_at].name.n = 0;
    r->fields[r->nfields++] = (sg_h1_header_t){SG_STR(":path"), {sp1 + 1, (size_t)(sp2 - sp1 - 1)}};
    bool have_authority = false;
    for (const char *line = eol + 2; line < end - 2; line = eol + 2) {
        eol = find_crlf(line, end);
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL || colon == line)
            return bad(r, "request field not understood");
        sg_str_t name = {line, (size_t)(colon - line)};
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        const char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        sg_str_t value = {v, (size_t)(ve - v)};
        if (sg_str_ieq_lit(name, "content-length"))
            r->body = value.n == 1 && value.p[0] == '0' ? SG_H1_BODY_NONE : SG_H1_BODY_LENGTH;
        else if (sg_str_ieq_lit(name, "transfer-encoding"))
            r->body = SG_H1_BODY_CHUNKED;
        if (sg_str_ieq_lit(name, "host")) {
            if (!have_authority)
                r->fields[authority_at] = (sg_h1_header_t){SG_STR(":authority"), value};
            have_authority = true;
            continue;
        }
        if (dropped(name, value))
            continue;
        if (r->nfields == r->cap)
            return SG_EHDRTOOBIG;
        char *n0 = lower + (name.p - head);
        for (size_t i = 0; i < name.n; i++)
            n0[i] = sg_lower(name.p[i]);
        r->fields[r->nfields++] = (sg_h1_header_t){{n0, name.n}, value};
    }
    if (!have_authority) {
        /* No Host (an HTTP/1.0 client): no :authority, as RFC 9113 8.3.1 allows. */
        memmove(r->fields + authority_at, r->fields + authority_at + 1,
                (r->nfields - authority_at - 1) * sizeof(*r->fields));
        r->nfields--;
    }
    return (int)(end - head);
}
