/* h1parse.c: strict HTTP/1.1 head parser and chunked decoder (RFC 9112). Pure: no I/O, no allocation. */
#include "codec/h1parse.h"

/*
 * The head parser is stateless like picohttpparser: each call parses buf from the start, so the caller
 * keeps the bytes and calls again when more arrive. A head is short and a partial head rarely arrives
 * more than a few times, so rescanning costs less than keeping resumable state. It is stricter than
 * picohttpparser: whatever a peer could parse differently from us (bare CR/LF, obs-fold, whitespace
 * before ':', duplicate or list Content-Length, CL with TE, odd transfer codings) is rejected, because
 * a gateway that accepts what the backend reads otherwise is a request-smuggling gateway.
 *
 * Limits are checked before completeness, so an endless request line or header section fails as soon
 * as it is too long instead of making the caller buffer it.
 */

#define MAX_LEADING_CRLF 8 /* empty lines skipped before a request line (RFC 9112 2.2 asks for at least one) */

/* Byte classes, one bit each, looked up once per byte. */
enum {
    C_TCHAR = 1,  /* token character (RFC 9110 5.6.2) */
    C_VALUE = 2,  /* field-vchar, SP or HTAB: may appear in a field value (RFC 9110 5.5) */
    C_TARGET = 4, /* may appear in a request-target: VCHAR except '#' (no fragment on the wire) */
    C_HEX = 8,    /* HEXDIG */
    C_QDTEXT = 16, /* qdtext of a quoted-string (RFC 9110 5.6.4) */
    C_HOST = 32,  /* reg-name / IPv4 character of a Host value (unreserved, pct-encoded, sub-delims but ',') */
};

#define TCH (C_TCHAR | C_VALUE | C_TARGET | C_QDTEXT)
#define HTC (TCH | C_HOST)
#define HEXC (HTC | C_HEX)
#define VAL (C_VALUE | C_TARGET | C_QDTEXT)
#define VALH (VAL | C_HOST)
#define OBS (C_VALUE | C_QDTEXT)

static const unsigned char cls[256] = {
    /* 0x00-0x1F: CTLs; only HTAB is allowed, in values and quoted strings */
    [0x09] = C_VALUE | C_QDTEXT,
    [' '] = C_VALUE | C_QDTEXT,
    ['!'] = HTC, ['"'] = C_VALUE | C_TARGET, ['#'] = TCH & ~C_TARGET, ['$'] = HTC, ['%'] = HTC,
    ['&'] = HTC, ['\''] = HTC, ['('] = VALH, [')'] = VALH, ['*'] = HTC, ['+'] = HTC, [','] = VAL,
    ['-'] = HTC, ['.'] = HTC, ['/'] = VAL, [':'] = VAL, [';'] = VALH, ['<'] = VAL, ['='] = VALH,
    ['>'] = VAL, ['?'] = VAL, ['@'] = VAL, ['['] = VAL, ['\\'] = C_VALUE | C_TARGET, [']'] = VAL,
    ['^'] = TCH, ['_'] = HTC, ['`'] = TCH, ['{'] = VAL, ['|'] = TCH, ['}'] = VAL, ['~'] = HTC,
    ['0'] = HEXC, ['1'] = HEXC, ['2'] = HEXC, ['3'] = HEXC, ['4'] = HEXC,
    ['5'] = HEXC, ['6'] = HEXC, ['7'] = HEXC, ['8'] = HEXC, ['9'] = HEXC,
    ['A'] = HEXC, ['B'] = HEXC, ['C'] = HEXC, ['D'] = HEXC, ['E'] = HEXC, ['F'] = HEXC,
    ['G'] = HTC, ['H'] = HTC, ['I'] = HTC, ['J'] = HTC, ['K'] = HTC, ['L'] = HTC, ['M'] = HTC,
    ['N'] = HTC, ['O'] = HTC, ['P'] = HTC, ['Q'] = HTC, ['R'] = HTC, ['S'] = HTC, ['T'] = HTC,
    ['U'] = HTC, ['V'] = HTC, ['W'] = HTC, ['X'] = HTC, ['Y'] = HTC, ['Z'] = HTC,
    ['a'] = HEXC, ['b'] = HEXC, ['c'] = HEXC, ['d'] = HEXC, ['e'] = HEXC, ['f'] = HEXC,
    ['g'] = HTC, ['h'] = HTC, ['i'] = HTC, ['j'] = HTC, ['k'] = HTC, ['l'] = HTC, ['m'] = HTC,
    ['n'] = HTC, ['o'] = HTC, ['p'] = HTC, ['q'] = HTC, ['r'] = HTC, ['s'] = HTC, ['t'] = HTC,
    ['u'] = HTC, ['v'] = HTC, ['w'] = HTC, ['x'] = HTC, ['y'] = HTC, ['z'] = HTC,
    /* 0x7F DEL is a CTL: 0. obs-text 0x80-0xFF: values and quoted strings only */
    [0x80 ... 0xFF] = OBS,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

/* Records why a parse failed (a static string, for the caller's log) and returns code. */
#define FAIL(m, code, why) ((m)->error = (why), (code))

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

/*
 * Word-at-a-time skipping for the long runs (targets, values): a 64-bit load tells whether any of its
 * 8 bytes could stop the run, so ordinary text costs a few operations per 8 bytes. The per-byte loop
 * after it decides exactly. has_less() is exact as a yes/no answer for n <= 128.
 */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t load64(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    return x;
}

static inline uint64_t has_less(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, unsigned b)
{
    return has_less(x ^ (ONES * b), 1);
}

/* Skips bytes that are surely field-value bytes: no CTL (HTAB included, the byte loop takes it), no DEL. */
static const char *skip_value(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load64(p);
        if (has_less(x, 0x20) | has_byte(x, 0x7F))
            break;
        p += 8;
    }
    while (p < end && IS(*p, C_VALUE))
        p++;
    return p;
}

/* Same for the request-target: VCHAR except '#'. */
static const char *skip_target(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t x = load64(p);
        if (has_less(x, 0x21) | has_byte(x, 0x7F) | has_byte(x, '#') | (x & HIGHS))
            break;
        p += 8;
    }
    while (p < end && IS(*p, C_TARGET))
        p++;
    return p;
}

/* Do the avail bytes at p begin like lit, as far as they go? */
static bool prefix_ok(const char *p, size_t avail, const char *lit, size_t litlen)
{
    return memcmp(p, lit, SG_MIN(avail, litlen)) == 0;
}

/* ---------------------------------------------------------------- field section */

/*
 * Parses field lines from p (the start of the field section, where the size limit counts from) up to and
 * including the empty line. Returns the offset after the final CRLF from buf, or an SG_E* code.
 */
static int parse_fields(const char *buf, const char *p, const char *end, sg_h1_msg_t *msg)
{
    const char *hdr_start = p;

    for (;;) {
        if (p == end)
            goto incomplete;
        if (*p == '\r') {
            if (p + 1 == end)
                goto incomplete;
            if (p[1] != '\n')
                return FAIL(msg, SG_EBADMSG, "bare CR in the header section");
            p += 2;
            if ((size_t)(p - hdr_start) > SG_H1_MAX_HEAD_BYTES)
                return FAIL(msg, SG_EHDRTOOBIG, "header section too large");
            return (int)(p - buf);
        }
        /* A field line: name must start at once (no obs-fold, no whitespace after the start line). */
        if (SG_UNLIKELY(msg->nheaders == SG_H1_MAX_HEADERS))
            return FAIL(msg, SG_EHDRTOOBIG, "too many header fields");
        const char *name = p;
        while (p < end && IS(*p, C_TCHAR))
            p++;
        if (p == end)
            goto incomplete;
        if (p == name && is_ows(*p))
            return FAIL(msg, SG_EBADMSG, "obs-fold or whitespace before a field name");
        if (p == name && *p == '\n')
            return FAIL(msg, SG_EBADMSG, "bare LF in the header section");
        if (is_ows(*p) && p != name)
            return FAIL(msg, SG_EBADMSG, "whitespace between a field name and ':'");
        if (*p != ':' || p == name)
            return FAIL(msg, SG_EBADMSG, "invalid character in a field name");
        sg_h1_header_t *h = &msg->headers[msg->nheaders];
        h->name = (sg_str_t){name, (size_t)(p - name)};
        p++;
        while (p < end && is_ows(*p))
            p++;
        const char *val = p;
        p = skip_value(p, end);
        if (p == end)
            goto incomplete;
        if (*p == '\n')
            return FAIL(msg, SG_EBADMSG, "bare LF in a field value");
        if (*p != '\r')
            return FAIL(msg, SG_EBADMSG, "control character in a field value"); /* NUL, DEL or another CTL */
        if (p + 1 == end)
            goto incomplete;
        if (p[1] != '\n')
            return FAIL(msg, SG_EBADMSG, "bare CR in a field value");
        const char *last = p;
        while (last > val && is_ows(last[-1]))
            last--;
        h->value = (sg_str_t){val, (size_t)(last - val)};
        msg->nheaders++;
        p += 2;
        if ((size_t)(p - hdr_start) > SG_H1_MAX_HEAD_BYTES)
            return FAIL(msg, SG_EHDRTOOBIG, "header section too large");
    }

incomplete:
    if ((size_t)(end - hdr_start) > SG_H1_MAX_HEAD_BYTES)
        return FAIL(msg, SG_EHDRTOOBIG, "header section too large");
    return SG_EINCOMPLETE;
}

/* ---------------------------------------------------------------- field semantics */

/* Iterates the comma-separated elements of a list value, OWS trimmed; empty elements come out empty. */
typedef struct list_it {
    const char *p, *end;
    bool done;
} list_it_t;

static bool list_next(list_it_t *it, sg_str_t *out)
{
    if (it->done)
        return false;
    const char *comma = memchr(it->p, ',', (size_t)(it->end - it->p));
    const char *e = comma ? comma : it->end;
    const char *s = it->p;
    while (s < e && is_ows(*s))
        s++;
    const char *t = e;
    while (t > s && is_ows(t[-1]))
        t--;
    *out = (sg_str_t){s, (size_t)(t - s)};
    if (comma)
        it->p = comma + 1;
    else
        it->done = true;
    return true;
}

static bool is_token(sg_str_t s)
{
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!IS(s.p[i], C_TCHAR))
            return false;
    return true;
}

/* Content-Length = 1*DIGIT, bounded so that it never wraps and stays exact in a double. */
static bool parse_content_length(sg_str_t v, uint64_t *out)
{
    uint64_t n = 0;

    if (v.n == 0)
        return false;
    for (size_t i = 0; i < v.n; i++) {
        if (!is_digit(v.p[i]))
            return false;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
        if (n > SG_H1_MAX_CONTENT_LENGTH)
            return false;
    }
    *out = n;
    return true;
}

/*
 * Host = uri-host [ ":" port ] (RFC 9110 7.2). Rejects what would let two parsers pick different
 * authorities: whitespace, userinfo, lists (',' is a sub-delim, but no real host has one), a path.
 * require_port is for CONNECT's authority-form.
 */
static bool valid_host(sg_str_t v, bool require_port)
{
    size_t i = 0;

    if (v.n == 0)
        return !require_port;
    if (v.p[0] == '[') {
        /* IP-literal: hex digits, ':' and '.' cover IPv6 and IPv4-in-IPv6; no zone ids. */
        for (i = 1; i < v.n && v.p[i] != ']'; i++)
            if (!IS(v.p[i], C_HEX) && v.p[i] != ':' && v.p[i] != '.')
                return false;
        if (i == v.n || i == 1)
            return false;
        i++;
    } else {
        while (i < v.n && IS(v.p[i], C_HOST))
            i++;
        if (i == 0)
            return false;
    }
    if (i == v.n)
        return !require_port;
    if (v.p[i] != ':')
        return false;
    i++;
    if (require_port && i == v.n)
        return false;
    for (; i < v.n; i++)
        if (!is_digit(v.p[i]))
            return false;
    return true;
}

enum {
    TE_CHUNKED = 1,      /* some element is "chunked" */
    TE_CHUNKED_LAST = 2, /* the last element seen is "chunked" */
    TE_OTHER = 4,        /* a coding we do not implement */
    TE_BAD = 8,          /* empty, not a token, identity, or chunked twice */
};

static unsigned te_scan(sg_str_t v, unsigned te)
{
    list_it_t it = {v.p, v.p + v.n, false};
    sg_str_t e;

    while (list_next(&it, &e)) {
        if (!is_token(e))
            return te | TE_BAD;
        if (sg_str_ieq_lit(e, "chunked")) {
            if (te & TE_CHUNKED)
                return te | TE_BAD;
            te |= TE_CHUNKED | TE_CHUNKED_LAST;
        } else if (sg_str_ieq_lit(e, "identity")) {
            return te | TE_BAD;
        } else {
            te = (te & ~(unsigned)TE_CHUNKED_LAST) | TE_OTHER;
        }
    }
    return te;
}

enum { CONN_CLOSE = 1, CONN_KEEPALIVE = 2, CONN_UPGRADE = 4 };

static unsigned conn_scan(sg_str_t v, unsigned c)
{
    list_it_t it = {v.p, v.p + v.n, false};
    sg_str_t e;

    while (list_next(&it, &e)) {
        if (sg_str_ieq_lit(e, "close"))
            c |= CONN_CLOSE;
        else if (sg_str_ieq_lit(e, "keep-alive"))
            c |= CONN_KEEPALIVE;
        else if (sg_str_ieq_lit(e, "upgrade"))
            c |= CONN_UPGRADE;
    }
    return c;
}

/* What the framing-relevant fields of a head say, gathered in one pass. */
typedef struct fields {
    unsigned te;
    unsigned conn;
    int ncl;
    int nte;
    int nhost;
    bool cl_ok;
    bool has_upgrade;
} fields_t;

/* Matches the few names we care about by length first, so ordinary fields cost one switch. */
static int scan_fields(sg_h1_msg_t *msg, fields_t *f)
{
    memset(f, 0, sizeof(*f));
    f->cl_ok = true;
    for (size_t i = 0; i < msg->nheaders; i++) {
        const sg_h1_header_t *h = &msg->headers[i];
        switch (h->name.n) {
        case 4:
            if (sg_str_ieq_lit(h->name, "host")) {
                f->nhost++;
                msg->host_index = (int)i;
            }
            break;
        case 6:
            if (sg_str_ieq_lit(h->name, "expect") && sg_str_ieq_lit(h->value, "100-continue"))
                msg->expect_continue = true;
            break;
        case 7:
            if (sg_str_ieq_lit(h->name, "upgrade"))
                f->has_upgrade = true;
            break;
        case 10:
            if (sg_str_ieq_lit(h->name, "connection"))
                f->conn = conn_scan(h->value, f->conn);
            break;
        case 14:
            if (sg_str_ieq_lit(h->name, "content-length")) {
                f->ncl++;
                if (!parse_content_length(h->value, &msg->content_length))
                    f->cl_ok = false;
            }
            break;
        case 17:
            if (sg_str_ieq_lit(h->name, "transfer-encoding")) {
                f->nte++;
                f->te = te_scan(h->value, f->te);
            }
            break;
        default:
            break;
        }
    }
    /* Repeated Content-Length is rejected even when the values agree: we never normalise framing. */
    if (f->ncl > 1)
        return FAIL(msg, SG_EBADMSG, "repeated Content-Length");
    if (!f->cl_ok)
        return FAIL(msg, SG_EBADMSG, "invalid Content-Length");
    if (f->ncl && f->nte)
        return FAIL(msg, SG_EBADMSG, "both Content-Length and Transfer-Encoding");
    if (f->te & TE_BAD)
        return FAIL(msg, SG_EBADMSG, "invalid Transfer-Encoding (empty, identity, or chunked twice)");
    return 0;
}

static void set_connection(sg_h1_msg_t *msg, const fields_t *f)
{
    if (msg->minor_version >= 1)
        msg->keep_alive = !(f->conn & CONN_CLOSE);
    else
        msg->keep_alive = (f->conn & CONN_KEEPALIVE) && !(f->conn & CONN_CLOSE);
    msg->upgrade = (f->conn & CONN_UPGRADE) && f->has_upgrade;
}

void sg_h1parse_reset(sg_h1_msg_t *msg)
{
    msg->method = (sg_str_t){NULL, 0};
    msg->target = (sg_str_t){NULL, 0};
    msg->status = 0;
    msg->reason = (sg_str_t){NULL, 0};
    msg->minor_version = 0;
    msg->nheaders = 0;
    msg->head_len = 0;
    msg->body = SG_H1_BODY_NONE;
    msg->content_length = 0;
    msg->keep_alive = false;
    msg->expect_continue = false;
    msg->upgrade = false;
    msg->host_index = -1;
    msg->error = NULL;
}

/*
 * Parses "HTTP/1.0" or "HTTP/1.1" at p. Returns 8 when complete, 0 when the bytes so far could still
 * become one, SG_EBADMSG otherwise. Other versions (2.0, 1.2, 0.9) are rejected: we speak only these.
 */
static int parse_version(const char *p, const char *end, int *minor)
{
    size_t avail = (size_t)(end - p);

    if (!prefix_ok(p, avail, "HTTP/1.", 7))
        return SG_EBADMSG;
    if (avail < 8)
        return 0;
    if (p[7] != '0' && p[7] != '1')
        return SG_EBADMSG;
    *minor = p[7] - '0';
    return 8;
}

/*
 * Is an unfinished start line already over the limit? A CR at the very end may be the line's CRLF,
 * which the limit does not count: the answer must not change when the LF arrives.
 */
static bool line_too_long(const char *line, const char *end)
{
    size_t n = (size_t)(end - line);

    if (n && end[-1] == '\r')
        n--;
    return n > SG_H1_MAX_REQLINE;
}

/* ---------------------------------------------------------------- requests */

/* Checks the request-target form against the method (RFC 9112 3.2). */
static bool valid_target(sg_str_t m, sg_str_t t)
{
    if (sg_str_eq(m, SG_STR("CONNECT")))
        return valid_host(t, true);
    if (t.p[0] == '/')
        return true;
    if (t.p[0] == '*')
        return t.n == 1 && sg_str_eq(m, SG_STR("OPTIONS"));
    /*
     * absolute-form: scheme "://" authority path-abempty [ "?" query ], scheme = ALPHA *( ALPHA / DIGIT /
     * "+" / "-" / "." ). A gateway can only forward URIs with an authority, so other forms are rejected.
     */
    size_t i = 0;
    if (!is_alpha(t.p[0]))
        return false;
    while (i < t.n && (is_alpha(t.p[i]) || is_digit(t.p[i]) || t.p[i] == '+' || t.p[i] == '-' || t.p[i] == '.'))
        i++;
    if (t.n - i < 4 || memcmp(t.p + i, "://", 3) != 0)
        return false;
    /* The authority must be a valid host: userinfo there is an error (RFC 9110 4.2.4). */
    size_t a = i + 3, e = a;
    while (e < t.n && t.p[e] != '/' && t.p[e] != '?')
        e++;
    return e > a && valid_host((sg_str_t){t.p + a, e - a}, false);
}

int sg_h1parse_request(const char *buf, size_t len, sg_h1_msg_t *msg)
{
    const char *p = buf, *end = buf + len;
    int skipped = 0;

    sg_h1parse_reset(msg);

    /* Empty lines before the request line (left over after a previous body) are skipped, a few. */
    for (;;) {
        if (p == end)
            return SG_EINCOMPLETE;
        if (*p != '\r')
            break;
        if (p + 1 == end)
            return SG_EINCOMPLETE;
        if (p[1] != '\n' || ++skipped > MAX_LEADING_CRLF)
            return FAIL(msg, SG_EBADMSG, "bare CR or too many empty lines before the request line");
        p += 2;
    }

    const char *line = p;

    /* method SP */
    while (p < end && IS(*p, C_TCHAR))
        p++;
    if (p == end)
        goto incomplete_line;
    if (*p != ' ' || p == line)
        return FAIL(msg, SG_EBADMSG, "malformed method");
    msg->method = (sg_str_t){line, (size_t)(p - line)};
    p++;

    /* request-target SP */
    const char *target = p;
    p = skip_target(p, end);
    if (p == end)
        goto incomplete_line;
    if (*p != ' ' || p == target)
        return FAIL(msg, SG_EBADMSG, "malformed request-target");
    msg->target = (sg_str_t){target, (size_t)(p - target)};
    p++;

    /* HTTP-version CRLF */
    int r = parse_version(p, end, &msg->minor_version);
    if (r < 0)
        return FAIL(msg, r, "not HTTP/1.0 or HTTP/1.1");
    if (r == 0)
        goto incomplete_line;
    p += r;
    if (p == end)
        goto incomplete_line;
    if (*p != '\r')
        return FAIL(msg, SG_EBADMSG, "malformed request line");
    if (p + 1 == end)
        goto incomplete_line;
    if (p[1] != '\n')
        return FAIL(msg, SG_EBADMSG, "bare CR in the request line");
    if ((size_t)(p - line) > SG_H1_MAX_REQLINE)
        return FAIL(msg, SG_ETOOLONG, "request line too long");
    p += 2;

    if (!valid_target(msg->method, msg->target))
        return FAIL(msg, SG_EBADMSG, "request-target does not fit the method");

    r = parse_fields(buf, p, end, msg);
    if (r < 0)
        return r;
    msg->head_len = (size_t)r;

    fields_t f;
    int err = scan_fields(msg, &f);
    if (err)
        return err;
    if (f.nhost > 1 || (f.nhost == 0 && msg->minor_version >= 1))
        return FAIL(msg, SG_EBADMSG, f.nhost ? "repeated Host" : "no Host in HTTP/1.1");
    if (f.nhost == 1 && !valid_host(msg->headers[msg->host_index].value, false))
        return FAIL(msg, SG_EBADMSG, "invalid Host");
    if (f.nte) {
        /* RFC 9112 6.1: TE in HTTP/1.0 is faulty framing; chunked must be the final coding (6.3 rule 4). */
        if (msg->minor_version == 0)
            return FAIL(msg, SG_EBADMSG, "Transfer-Encoding in an HTTP/1.0 request");
        if ((f.te & TE_CHUNKED) && !(f.te & TE_CHUNKED_LAST))
            return FAIL(msg, SG_EBADMSG, "chunked is not the final transfer coding");
        if (f.te & TE_OTHER)
            return FAIL(msg, SG_ENOTIMPL, "transfer coding other than chunked");
        msg->body = SG_H1_BODY_CHUNKED;
    } else if (f.ncl) {
        msg->body = SG_H1_BODY_LENGTH;
    }
    set_connection(msg, &f);
    /* RFC 9110 10.1.1: a server ignores 100-continue in an HTTP/1.0 request */
    if (msg->minor_version == 0)
        msg->expect_continue = false;
    return r;

incomplete_line:
    if (line_too_long(line, end))
        return FAIL(msg, SG_ETOOLONG, "request line too long");
    return SG_EINCOMPLETE;
}

/* ---------------------------------------------------------------- responses */

int sg_h1parse_response(const char *buf, size_t len, bool is_head_request, sg_h1_msg_t *msg)
{
    const char *p = buf, *end = buf + len;

    sg_h1parse_reset(msg);

    /* HTTP-version SP 3DIGIT SP reason CRLF; the SP before an empty reason may be missing. */
    int r = parse_version(p, end, &msg->minor_version);
    if (r < 0)
        return FAIL(msg, r, "not an HTTP/1.0 or HTTP/1.1 status line");
    if (r == 0)
        return SG_EINCOMPLETE;
    p += r;
    for (int i = 0; i < 4; i++) {
        if (p == end)
            return SG_EINCOMPLETE;
        if (i == 0 ? *p != ' ' : !is_digit(*p))
            return FAIL(msg, SG_EBADMSG, "malformed status code");
        if (i)
            msg->status = msg->status * 10 + (*p - '0');
        p++;
    }
    if (msg->status < 100 || msg->status > 599)
        return FAIL(msg, SG_EBADMSG, "status code out of range");
    if (p < end && *p == ' ')
        p++;
    else if (p < end && *p != '\r')
        return FAIL(msg, SG_EBADMSG, "malformed status code");
    const char *reason = p;
    p = skip_value(p, end);
    if (p == end)
        goto incomplete_line;
    if (*p != '\r')
        return FAIL(msg, SG_EBADMSG, *p == '\n' ? "bare LF in the status line" : "control character in the status line");
    if (p + 1 == end)
        goto incomplete_line;
    if (p[1] != '\n')
        return FAIL(msg, SG_EBADMSG, "bare CR in the status line");
    if ((size_t)(p - buf) > SG_H1_MAX_REQLINE)
        return FAIL(msg, SG_EHDRTOOBIG, "status line too long");
    msg->reason = (sg_str_t){reason, (size_t)(p - reason)};
    p += 2;

    r = parse_fields(buf, p, end, msg);
    if (r < 0)
        return r;
    msg->head_len = (size_t)r;

    fields_t f;
    int err = scan_fields(msg, &f);
    if (err)
        return err;
    msg->host_index = -1; /* Host means nothing in a response */
    set_connection(msg, &f);

    /*
     * Transfer codings are checked on every response, bodiless ones included: we relay bodies decoded, so a
     * coding other than chunked would reach the client as plain bytes that nothing says are encoded. RFC 9112
     * lets a recipient read a response whose chunked is not final until close, and treats TE in HTTP/1.0 as
     * faulty framing; a gateway has no use for either, so both are refused (502) rather than guessed at.
     */
    if (f.nte) {
        if (msg->minor_version == 0)
            return FAIL(msg, SG_EBADMSG, "Transfer-Encoding in an HTTP/1.0 response");
        if (f.te & TE_OTHER)
            return FAIL(msg, SG_ENOTIMPL, "transfer coding other than chunked");
    }
    int s = msg->status;
    if (s < 200 || s == 204 || s == 304 || is_head_request) {
        msg->body = SG_H1_BODY_NONE;
        /*
         * No body follows whatever the fields say, but a backend that sends framing on a 1xx or 204 (which
         * must not have any) may send a body too: its bytes would be read as the next response. Such a
         * connection is not reused. Content-Length: 0 on a 204 is common and harmless.
         */
        if ((s < 200 || s == 204) && (f.nte || (f.ncl && msg->content_length != 0)))
            msg->keep_alive = false;
    } else if (f.nte) {
        msg->body = SG_H1_BODY_CHUNKED;
    } else if (f.ncl) {
        msg->body = SG_H1_BODY_LENGTH;
    } else {
        msg->body = SG_H1_BODY_UNTIL_CLOSE;
    }
    if (msg->body == SG_H1_BODY_UNTIL_CLOSE)
        msg->keep_alive = false;
    return r;

incomplete_line:
    if (line_too_long(buf, end))
        return FAIL(msg, SG_EHDRTOOBIG, "status line too long");
    return SG_EINCOMPLETE;
}

const sg_h1_header_t *sg_h1parse_find(const sg_h1_msg_t *msg, const char *name, size_t *from)
{
    size_t n = strlen(name);

    for (size_t i = from ? *from : 0; i < msg->nheaders; i++) {
        if (msg->headers[i].name.n == n && sg_str_ieq(msg->headers[i].name, (sg_str_t){name, n})) {
            if (from)
                *from = i + 1;
            return &msg->headers[i];
        }
    }
    if (from)
        *from = msg->nheaders;
    return NULL;
}

/* ---------------------------------------------------------------- chunked decoder */

enum {
    CH_SIZE_START = 0, /* before the first hex digit of a chunk-size */
    CH_SIZE,           /* in chunk-size */
    CH_EXT_NAME_START, /* after ';': an ext-name must follow */
    CH_EXT_NAME,
    CH_EXT_VAL_START, /* after '=' */
    CH_EXT_VAL_TOKEN,
    CH_EXT_QVAL,      /* inside a quoted ext-val */
    CH_EXT_QPAIR,     /* after a backslash in a quoted ext-val */
    CH_EXT_QEND,      /* after the closing quote */
    CH_SIZE_LF,       /* CR seen at the end of the chunk-size line */
    CH_DATA,
    CH_DATA_CR,       /* data done, CR must follow */
    CH_DATA_LF,
    CH_TRAILER_START, /* at the start of a trailer line, or of the final empty line */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_FINAL_LF,
    CH_DONE,
    CH_ERROR,
};

void sg_h1_chunked_init(sg_h1_chunked_t *d)
{
    memset(d, 0, sizeof(*d));
    d->state = CH_SIZE_START;
}

int sg_h1_chunked_decode(sg_h1_chunked_t *d, const char *in, size_t len, size_t *consumed, sg_str_t *data)
{
    size_t i = 0;
    const char *why = NULL;

    *data = (sg_str_t){NULL, 0};
    while (i < len) {
        char c = in[i];

        /* The chunk-size line, extensions included and CRLF excluded, is bounded. */
        if (d->state >= CH_SIZE && d->state <= CH_EXT_QEND && c != '\r' && ++d->line_bytes > SG_H1_MAX_CHUNK_LINE) {
            why = "chunk-size line too long";
            goto bad;
        }
        /* So are extensions over the whole body, beyond its data bytes. */
        if (d->state >= CH_EXT_NAME_START && d->state <= CH_EXT_QEND && c != '\r' &&
            ++d->ext_bytes > d->data_bytes + SG_H1_MAX_CHUNK_EXT_OVERHEAD) {
            why = "too many chunk-extension bytes";
            goto bad;
        }
        switch (d->state) {
        case CH_SIZE_START:
            if (!IS(c, C_HEX))
                goto bad;
            d->remaining = (uint64_t)hexval(c);
            d->line_bytes = 1;
            d->state = CH_SIZE;
            break;
        case CH_SIZE:
            if (IS(c, C_HEX)) {
                /* stays below 2^60: no wrap, and far beyond any real chunk */
                if (d->remaining >= (UINT64_C(1) << 56)) {
                    why = "chunk size too large";
                    goto bad;
                }
                d->remaining = d->remaining * 16 + (uint64_t)hexval(c);
            } else if (c == ';') {
                d->ext_bytes++;
                if (d->ext_bytes > d->data_bytes + SG_H1_MAX_CHUNK_EXT_OVERHEAD) {
                    why = "too many chunk-extension bytes";
                    goto bad;
                }
                d->state = CH_EXT_NAME_START;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else {
                goto bad; /* whitespace, '0x', '-', '_' ... */
            }
            break;
        case CH_EXT_NAME_START:
            if (!IS(c, C_TCHAR))
                goto bad;
            d->state = CH_EXT_NAME;
            break;
        case CH_EXT_NAME:
            if (c == '=')
                d->state = CH_EXT_VAL_START;
            else if (c == ';')
                d->state = CH_EXT_NAME_START;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (!IS(c, C_TCHAR))
                goto bad;
            break;
        case CH_EXT_VAL_START:
            if (c == '"')
                d->state = CH_EXT_QVAL;
            else if (IS(c, C_TCHAR))
                d->state = CH_EXT_VAL_TOKEN;
            else
                goto bad;
            break;
        case CH_EXT_VAL_TOKEN:
            if (c == ';')
                d->state = CH_EXT_NAME_START;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else if (!IS(c, C_TCHAR))
                goto bad;
            break;
        case CH_EXT_QVAL:
            if (c == '"')
                d->state = CH_EXT_QEND;
            else if (c == '\\')
                d->state = CH_EXT_QPAIR;
            else if (!IS(c, C_QDTEXT))
                goto bad;
            break;
        case CH_EXT_QPAIR:
            if (!IS(c, C_VALUE))
                goto bad;
            d->state = CH_EXT_QVAL;
            break;
        case CH_EXT_QEND:
            if (c == ';')
                d->state = CH_EXT_NAME_START;
            else if (c == '\r')
                d->state = CH_SIZE_LF;
            else
                goto bad;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                goto bad;
            d->state = d->remaining ? CH_DATA : CH_TRAILER_START;
            break;
        case CH_DATA: {
            size_t n = (size_t)SG_MIN((uint64_t)(len - i), d->remaining);
            *data = (sg_str_t){in + i, n};
            d->remaining -= n;
            d->data_bytes += n;
            if (!d->remaining)
                d->state = CH_DATA_CR;
            *consumed = i + n;
            return 1;
        }
        case CH_DATA_CR:
            if (c != '\r')
                goto bad;
            d->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                goto bad;
            d->state = CH_SIZE_START;
            break;
        case CH_TRAILER_START:
            if (++d->trailer_bytes > SG_H1_MAX_TRAILER_BYTES)
                goto bad;
            if (c == '\r')
                d->state = CH_FINAL_LF;
            else if (IS(c, C_TCHAR))
                d->state = CH_TRAILER_NAME;
            else
                goto bad; /* obs-fold, whitespace, bare LF */
            break;
        case CH_TRAILER_NAME:
            if (++d->trailer_bytes > SG_H1_MAX_TRAILER_BYTES)
                goto bad;
            if (c == ':')
                d->state = CH_TRAILER_VALUE;
            else if (!IS(c, C_TCHAR))
                goto bad;
            break;
        case CH_TRAILER_VALUE:
            if (++d->trailer_bytes > SG_H1_MAX_TRAILER_BYTES)
                goto bad;
            if (c == '\r')
                d->state = CH_TRAILER_LF;
            else if (!IS(c, C_VALUE))
                goto bad;
            break;
        case CH_TRAILER_LF:
            if (c != '\n' || ++d->trailer_bytes > SG_H1_MAX_TRAILER_BYTES)
                goto bad;
            d->state = CH_TRAILER_START;
            break;
        case CH_FINAL_LF:
            if (c != '\n' || ++d->trailer_bytes > SG_H1_MAX_TRAILER_BYTES)
                goto bad;
            d->state = CH_DONE;
            *consumed = i + 1;
            return 2;
        case CH_DONE:
            *consumed = i;
            return 2;
        default:
            goto bad;
        }
        i++;
    }
    *consumed = i;
    if (d->state == CH_DONE)
        return 2;
    if (d->state == CH_ERROR)
        return SG_EBADMSG;
    /* A zero-length chunk of data needs no call back; an empty read in CH_DATA is just "need more". */
    return 0;

bad:
    if (why == NULL) {
        /* Where the byte was unexpected says enough. */
        if (d->state <= CH_SIZE)
            why = in[i] == '\n' ? "bare LF in a chunk-size line" : "invalid chunk size";
        else if (d->state <= CH_EXT_QEND)
            why = "invalid chunk extension";
        else if (d->state == CH_SIZE_LF || d->state == CH_DATA_LF || d->state == CH_FINAL_LF ||
                 d->state == CH_TRAILER_LF)
            why = "bare CR in chunked framing";
        else if (d->state == CH_DATA_CR)
            why = "chunk data not followed by CRLF";
        else if (d->state >= CH_TRAILER_START && d->state <= CH_TRAILER_VALUE)
            why = d->trailer_bytes > SG_H1_MAX_TRAILER_BYTES ? "trailer section too large" : "invalid trailer field";
        else
            why = "invalid chunked framing";
    }
    if (d->state != CH_ERROR)
        d->error = why;
    d->state = CH_ERROR;
    *consumed = i;
    return SG_EBADMSG;
}

size_t sg_h1_chunk_head(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t k = 0;

    do {
        tmp[k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    for (size_t i = 0; i < k; i++)
        out[i] = tmp[k - 1 - i];
    out[k] = '\r';
    out[k + 1] = '\n';
    return k + 2;
}
