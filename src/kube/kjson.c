/* kjson.c: see kjson.h. One pass over the text with an explicit stack (no recursion while parsing): nodes go
 * into one growing array, decoded scalars into one growing buffer. */
#include "kube/kjson.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg.h"

static int grow_nodes(sg_kjson_t *d)
{
    uint32_t cap = d->cap ? d->cap * 2 : 64;
    sg_kjson_node_t *n = realloc(d->n, (size_t)cap * sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    d->n = n;
    d->cap = cap;
    return 0;
}

/* Appends a node; returns its index, or 0 when out of memory. */
static uint32_t add_node(sg_kjson_t *d, int type, size_t off)
{
    if (d->count + 1 >= d->cap && grow_nodes(d) < 0)
        return 0;
    uint32_t i = ++d->count;
    d->n[i] = (sg_kjson_node_t){.type = (uint8_t)type, .end = i + 1, .off = (uint32_t)off};
    return i;
}

/* Makes room for n more bytes of decoded text. */
static int reserve_strs(sg_kjson_t *d, size_t n)
{
    if (d->strs_len + n <= d->strs_cap)
        return 0;
    size_t cap = d->strs_cap ? d->strs_cap : 256;
    while (cap < d->strs_len + n)
        cap *= 2;
    char *s = realloc(d->strs, cap);
    if (s == NULL)
        return -ENOMEM;
    d->strs = s;
    d->strs_cap = cap;
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p[0..n) (p[0] >= 0x80), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < need + 1 || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++)
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
    return need + 1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The string at t[*pi] (its opening quote): validated, decoded into strs, its node added. */
static int parse_string(sg_kjson_t *d, const char *t, size_t len, size_t *pi)
{
    size_t i = *pi + 1, e = i;
    /* Printable ASCII without escapes (most of what the API server sends) is found with memchr and copied as it is;
     * anything else is scanned and decoded byte by byte. */
    const char *q = memchr(t + i, '"', len - i);
    bool plain = q != NULL && memchr(t + i, '\\', (size_t)(q - (t + i))) == NULL;
    if (plain) {
        e = (size_t)(q - t);
        unsigned bad = 0;
        for (size_t k = i; k < e; k++)
            bad |= (unsigned)((unsigned char)t[k] < 0x20) | (unsigned)((unsigned char)t[k] >= 0x80);
        plain = bad == 0;
    } else {
        while (e < len && t[e] != '"')
            e += t[e] == '\\' ? 2 : 1;
    }
    if (e >= len)
        return SG_EBADMSG;
    uint32_t node = add_node(d, SG_KJSON_STRING, *pi);
    if (node == 0 || reserve_strs(d, e - i + 1) < 0)
        return -ENOMEM;
    char *o = d->strs + d->strs_len, *o0 = o;
    if (plain) {
        memcpy(o, t + i, e - i);
        o += e - i;
        i = e;
    }
    while (i < e) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20)
            return SG_EBADMSG;
        if (c >= 0x80) {
            size_t l = utf8_len((const unsigned char *)t + i, e - i);
            if (l == 0)
                return SG_EBADMSG;
            memcpy(o, t + i, l);
            o += l;
            i += l;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        char x = t[i + 1]; /* i + 1 < e: the scan above stepped over it */
        i += 2;
        switch (x) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            int u = i + 4 <= e ? hex4(t + i) : -1;
            if (u < 0)
                return SG_EBADMSG;
            i += 4;
            uint32_t cp = (uint32_t)u;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return SG_EBADMSG; /* a low surrogate first */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                int lo = i + 6 <= e && t[i] == '\\' && t[i + 1] == 'u' ? hex4(t + i + 2) : -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return SG_EBADMSG; /* a lone high surrogate */
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
            }
            o += put_utf8(o, cp); /* never longer than its escape */
            break;
        }
        default:
            return SG_EBADMSG;
        }
    }
    *o = '\0';
    d->n[node].str = (uint32_t)d->strs_len;
    d->n[node].slen = (uint32_t)(o - o0);
    d->n[node].len = (uint32_t)(e + 1 - *pi);
    d->strs_len += (size_t)(o - o0) + 1;
    *pi = e + 1;
    return 0;
}

/* A number or a literal at t[*pi]. */
static int parse_atom(sg_kjson_t *d, const char *t, size_t len, size_t *pi)
{
    size_t i = *pi;
    int type;
    static const char *const lits[] = {"null", "false", "true"};
    if (t[i] == 'n' || t[i] == 'f' || t[i] == 't') {
        type = t[i] == 'n' ? SG_KJSON_NULL : t[i] == 'f' ? SG_KJSON_FALSE : SG_KJSON_TRUE;
        size_t l = strlen(lits[type - SG_KJSON_NULL]);
        if (len - i < l || memcmp(t + i, lits[type - SG_KJSON_NULL], l) != 0)
            return SG_EBADMSG;
        i += l;
    } else {
        type = SG_KJSON_NUMBER;
        if (t[i] == '-')
            i++;
        if (i < len && t[i] == '0')
            i++;
        else if (i < len && t[i] >= '1' && t[i] <= '9')
            while (i < len && t[i] >= '0' && t[i] <= '9')
                i++;
        else
            return SG_EBADMSG;
        if (i < len && t[i] == '.') {
            size_t f = ++i;
            while (i < len && t[i] >= '0' && t[i] <= '9')
                i++;
            if (i == f)
                return SG_EBADMSG;
        }
        if (i < len && (t[i] == 'e' || t[i] == 'E')) {
            i++;
            if (i < len && (t[i] == '+' || t[i] == '-'))
                i++;
            size_t f = i;
            while (i < len && t[i] >= '0' && t[i] <= '9')
                i++;
            if (i == f)
                return SG_EBADMSG;
        }
    }
    /* A literal or number runs into the next token: "truex" or "1x" is not JSON. */
    if (i < len && t[i] != ',' && t[i] != ']' && t[i] != '}' && t[i] != ' ' && t[i] != '\t' && t[i] != '\n' &&
        t[i] != '\r')
        return SG_EBADMSG;
    uint32_t node = add_node(d, type, *pi);
    if (node == 0)
        return -ENOMEM;
    d->n[node].len = (uint32_t)(i - *pi);
    if (type != SG_KJSON_NULL) {
        if (reserve_strs(d, i - *pi + 1) < 0)
            return -ENOMEM;
        memcpy(d->strs + d->strs_len, t + *pi, i - *pi);
        d->strs[d->strs_len + i - *pi] = '\0';
        d->n[node].str = (uint32_t)d->strs_len;
        d->n[node].slen = (uint32_t)(i - *pi);
        d->strs_len += i - *pi + 1;
    }
    *pi = i;
    return 0;
}

typedef struct keyref {
    const char *p;
    uint32_t n;
} keyref_t;

static int cmp_key(const void *a, const void *b)
{
    const keyref_t *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->n < y->n ? x->n : y->n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

static bool same_key(const sg_kjson_t *d, uint32_t a, uint32_t b)
{
    return d->n[a].slen == d->n[b].slen && memcmp(d->strs + d->n[a].str, d->strs + d->n[b].str, d->n[a].slen) == 0;
}

/* Object o is complete: 0, or SG_EBADMSG when a key repeats. */
static int check_keys(const sg_kjson_t *d, uint32_t o)
{
    uint32_t m = 0;
    for (uint32_t k = sg_kjson_first(d, o); k; k = sg_kjson_next_key(d, o, k))
        m++;
    if (m <= 16) {
        for (uint32_t a = sg_kjson_first(d, o); a; a = sg_kjson_next_key(d, o, a))
            for (uint32_t b = sg_kjson_next_key(d, o, a); b; b = sg_kjson_next_key(d, o, b))
                if (same_key(d, a, b))
                    return SG_EBADMSG;
        return 0;
    }
    keyref_t *v = malloc((size_t)m * sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    uint32_t j = 0;
    for (uint32_t k = sg_kjson_first(d, o); k; k = sg_kjson_next_key(d, o, k))
        v[j++] = (keyref_t){d->strs + d->n[k].str, d->n[k].slen};
    qsort(v, m, sizeof(*v), cmp_key);
    int rc = 0;
    for (j = 1; j < m && rc == 0; j++)
        if (cmp_key(&v[j - 1], &v[j]) == 0)
            rc = SG_EBADMSG;
    free(v);
    return rc;
}

static size_t skip_ws(const char *t, size_t len, size_t i)
{
    while (i < len && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r'))
        i++;
    return i;
}

static int parse(sg_kjson_t *d, const char *t, size_t len)
{
    uint32_t stack[SG_KJSON_MAX_DEPTH];
    uint32_t depth = 0;
    size_t i = 0;
    int rc;
value:
    i = skip_ws(t, len, i);
    if (i >= len)
        return SG_EBADMSG;
    if (t[i] == '{' || t[i] == '[') {
        if (depth == SG_KJSON_MAX_DEPTH)
            return SG_EBADMSG;
        uint32_t c = add_node(d, t[i] == '{' ? SG_KJSON_OBJECT : SG_KJSON_ARRAY, i);
        if (c == 0)
            return -ENOMEM;
        stack[depth++] = c;
        i = skip_ws(t, len, i + 1);
        if (i < len && t[i] == (d->n[c].type == SG_KJSON_OBJECT ? '}' : ']'))
            goto close;
        if (d->n[c].type == SG_KJSON_ARRAY)
            goto value;
        goto key;
    }
    if (t[i] == '"')
        rc = parse_string(d, t, len, &i);
    else
        rc = parse_atom(d, t, len, &i);
    if (rc < 0)
        return rc;
after:
    i = skip_ws(t, len, i);
    if (depth == 0)
        return i == len ? 0 : SG_EBADMSG;
    if (i >= len)
        return SG_EBADMSG;
    if (t[i] == ',') {
        i++;
        if (d->n[stack[depth - 1]].type == SG_KJSON_ARRAY)
            goto value;
        goto key;
    }
    if (t[i] != (d->n[stack[depth - 1]].type == SG_KJSON_OBJECT ? '}' : ']'))
        return SG_EBADMSG;
close: {
    uint32_t c = stack[--depth];
    d->n[c].end = d->count + 1;
    d->n[c].len = (uint32_t)(i + 1 - d->n[c].off);
    i++;
    if (d->n[c].type == SG_KJSON_OBJECT && (rc = check_keys(d, c)) < 0)
        return rc;
    goto after;
}
key:
    i = skip_ws(t, len, i);
    if (i >= len || t[i] != '"')
        return SG_EBADMSG;
    if ((rc = parse_string(d, t, len, &i)) < 0)
        return rc;
    i = skip_ws(t, len, i);
    if (i >= len || t[i] != ':')
        return SG_EBADMSG;
    i++;
    goto value;
}

int sg_kjson_parse(sg_kjson_t *d, const char *text, size_t len)
{
    memset(d, 0, sizeof(*d));
    if (len > (size_t)INT32_MAX)
        return SG_EBADMSG;
    d->text = text;
    int rc = parse(d, text, len);
    if (rc < 0)
        sg_kjson_free(d);
    return rc;
}

void sg_kjson_free(sg_kjson_t *d)
{
    free(d->n);
    free(d->strs);
    memset(d, 0, sizeof(*d));
}

const char *sg_kjson_scalar(const sg_kjson_t *d, uint32_t i)
{
    int t = sg_kjson_type(d, i);
    return t >= SG_KJSON_FALSE && t <= SG_KJSON_STRING ? d->strs + d->n[i].str : NULL;
}

bool sg_kjson_is(const sg_kjson_t *d, uint32_t i, const char *s)
{
    const char *v = sg_kjson_scalar(d, i);
    return v != NULL && strlen(s) == d->n[i].slen && memcmp(v, s, d->n[i].slen) == 0;
}

uint32_t sg_kjson_key(const sg_kjson_t *d, uint32_t o, const char *key)
{
    if (sg_kjson_type(d, o) != SG_KJSON_OBJECT)
        return 0;
    size_t l = strlen(key);
    for (uint32_t k = sg_kjson_first(d, o); k; k = sg_kjson_next_key(d, o, k))
        if (d->n[k].slen == l && memcmp(d->strs + d->n[k].str, key, l) == 0)
            return k;
    return 0;
}

uint32_t sg_kjson_get_type(const sg_kjson_t *d, uint32_t o, const char *key, int type)
{
    uint32_t v = sg_kjson_get(d, o, key);
    return sg_kjson_type(d, v) == type ? v : 0;
}

const char *sg_kjson_get_str(const sg_kjson_t *d, uint32_t o, const char *key)
{
    return sg_kjson_scalar(d, sg_kjson_get(d, o, key));
}

/* ---- emitting ---- */

typedef struct out {
    char *p;
    size_t n, cap;
    bool oom;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap * 2;
        while (cap < o->n + n + 1)
            cap *= 2;
        char *p = realloc(o->p, cap);
        if (p == NULL) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

/* Recursion is bounded by SG_KJSON_MAX_DEPTH. */
static void emit(const sg_kjson_t *d, uint32_t i, const char *prefix, out_t *o)
{
    const sg_kjson_node_t *x = &d->n[i];
    if (x->type != SG_KJSON_OBJECT && x->type != SG_KJSON_ARRAY) {
        put(o, d->text + x->off, x->len);
        return;
    }
    bool obj = x->type == SG_KJSON_OBJECT, first = true;
    put(o, obj ? "{" : "[", 1);
    if (prefix != NULL && prefix[0] != '\0') {
        put(o, prefix, strlen(prefix));
        first = false;
    }
    for (uint32_t c = sg_kjson_first(d, i); c; c = obj ? sg_kjson_next_key(d, i, c) : sg_kjson_next_elem(d, i, c)) {
        if (d->n[c].flags & SG_KJSON_DROP)
            continue;
        if (!first)
            put(o, ", ", 2);
        first = false;
        if (obj) {
            put(o, d->text + d->n[c].off, d->n[c].len);
            put(o, ": ", 2);
            emit(d, c + 1, NULL, o);
        } else {
            emit(d, c, NULL, o);
        }
    }
    put(o, obj ? "}" : "]", 1);
}

char *sg_kjson_emit(const sg_kjson_t *d, uint32_t i, const char *prefix, size_t *len)
{
    out_t o = {.cap = (size_t)d->n[i].len + d->n[i].len / 4 + (prefix ? strlen(prefix) : 0) + 16};
    o.p = malloc(o.cap);
    if (o.p == NULL)
        return NULL;
    emit(d, i, prefix, &o);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    o.p[o.n] = '\0';
    if (len != NULL)
        *len = o.n;
    return o.p;
}
