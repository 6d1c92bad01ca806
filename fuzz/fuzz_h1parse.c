/* fuzz_h1parse.c: libFuzzer harness for the HTTP/1.1 request/response head parser and the chunked decoder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/h1parse.h"

/*
 * Besides crashes and sanitizer reports, the harness checks properties a wrong parser breaks:
 *  - a complete head lies within the input, ends in CRLF CRLF, and all slices point inside it;
 *  - parsing only the head gives the same result, and any proper prefix of it is just incomplete;
 *  - the chunked decoder gives the same data, result and end offset whether the input arrives at once,
 *    byte by byte, or in two pieces, and its extensions never outweigh its data by more than the budget;
 *  - every refusal, of a request, a response or a chunked body, carries a reason (the gateway logs it);
 *  - a response the parser accepts as chunked names no coding but chunked (else it would be relayed as
 *    plain bytes: the "gzip, chunked" bug).
 * Prefixes are copied to their own exact-size allocation so that ASan sees a read past their end.
 */

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                    \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(sg_str_t s, const char *base, size_t n)
{
    if (s.n == 0)
        return true;
    return s.p >= base && s.p + s.n <= base + n;
}

static bool known_error(int r)
{
    return r == SG_EINCOMPLETE || r == SG_EBADMSG || r == SG_ETOOLONG || r == SG_EHDRTOOBIG || r == SG_ENOTIMPL;
}

static void check_msg(const sg_h1_msg_t *m, const char *buf, int r, bool request)
{
    size_t n = (size_t)r;

    CHECK(m->head_len == n);
    CHECK(n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(m->nheaders <= SG_H1_MAX_HEADERS);
    CHECK(m->minor_version == 0 || m->minor_version == 1);
    CHECK(m->host_index >= -1 && m->host_index < (int)m->nheaders);
    CHECK(m->body >= SG_H1_BODY_NONE && m->body <= SG_H1_BODY_UNTIL_CLOSE);
    if (m->body == SG_H1_BODY_LENGTH)
        CHECK(m->content_length <= SG_H1_MAX_CONTENT_LENGTH);
    for (size_t i = 0; i < m->nheaders; i++) {
        CHECK(m->headers[i].name.n > 0);
        CHECK(inside(m->headers[i].name, buf, n));
        CHECK(inside(m->headers[i].value, buf, n));
    }
    if (request) {
        CHECK(m->method.n > 0 && inside(m->method, buf, n));
        CHECK(m->target.n > 0 && inside(m->target, buf, n));
        CHECK(m->target.n + m->method.n < SG_H1_MAX_REQLINE);
        CHECK(m->body != SG_H1_BODY_UNTIL_CLOSE);
        if (m->minor_version == 1)
            CHECK(m->host_index >= 0);
    } else {
        CHECK(m->status >= 100 && m->status <= 599);
        CHECK(inside(m->reason, buf, n));
        if (m->body == SG_H1_BODY_UNTIL_CLOSE)
            CHECK(!m->keep_alive);
    }
}

static int parse(const char *buf, size_t n, int kind, sg_h1_msg_t *m)
{
    if (kind == 0)
        return sg_h1parse_request(buf, n, m);
    return sg_h1parse_response(buf, n, kind == 2, m);
}

/* Runs one head parser over data and checks its properties; returns the head length or an error. */
static int fuzz_head(const char *data, size_t size, int kind, sg_h1_msg_t *m, sg_h1_msg_t *m2)
{
    int r = parse(data, size, kind, m);
    CHECK(r > 0 || known_error(r));
    if (kind != 0)
        CHECK(r != SG_ETOOLONG);
    /* every refusal says why (the gateway logs it), and a success leaves no stale reason */
    CHECK((r > 0 || r == SG_EINCOMPLETE) == (m->error == NULL));
    if (r <= 0) {
        /* a prefix of an incomplete head is incomplete too */
        if (r == SG_EINCOMPLETE && size > 0) {
            size_t k = size / 2;
            char *p = malloc(k ? k : 1);
            CHECK(p);
            memcpy(p, data, k);
            CHECK(parse(p, k, kind, m2) == SG_EINCOMPLETE);
            free(p);
        }
        return r;
    }
    CHECK((size_t)r <= size);
    check_msg(m, data, r, kind == 0);

    /* the head alone parses the same, and dropping any byte of its end leaves it incomplete */
    char *p = malloc((size_t)r);
    CHECK(p);
    memcpy(p, data, (size_t)r);
    CHECK(parse(p, (size_t)r, kind, m2) == r);
    CHECK(m2->nheaders == m->nheaders && m2->body == m->body && m2->keep_alive == m->keep_alive);
    free(p);
    for (size_t cut = 1; cut <= 3 && cut <= (size_t)r; cut++) {
        size_t k = (size_t)r - cut;
        p = malloc(k ? k : 1);
        CHECK(p);
        memcpy(p, data, k);
        CHECK(parse(p, k, kind, m2) == SG_EINCOMPLETE);
        free(p);
    }
    return r;
}

typedef struct dechunk_result {
    int rc;
    size_t used;
    size_t out_len;
} dechunk_result_t;

/*
 * Decodes in[0..n), fed in pieces: step 0 = all at once, else step bytes at a time; split (if not 0)
 * feeds [0, split) then the rest. Each piece gets its own exact allocation.
 */
static dechunk_result_t dechunk(const char *in, size_t n, size_t step, size_t split, char *out)
{
    sg_h1_chunked_t d;
    dechunk_result_t res = {0, 0, 0};
    size_t off = 0;

    sg_h1_chunked_init(&d);
    while (off < n) {
        size_t piece = n - off;
        if (step)
            piece = SG_MIN(step, piece);
        else if (split && off < split)
            piece = split - off;
        char *p = malloc(piece);
        CHECK(p);
        memcpy(p, in + off, piece);
        size_t pos = 0;
        int rc;
        for (;;) {
            size_t c = 0;
            sg_str_t chunk;
            rc = sg_h1_chunked_decode(&d, p + pos, piece - pos, &c, &chunk);
            CHECK(c <= piece - pos);
            pos += c;
            if (rc == 1) {
                CHECK(chunk.n > 0 && chunk.p >= p && chunk.p + chunk.n <= p + piece);
                memcpy(out + res.out_len, chunk.p, chunk.n);
                res.out_len += chunk.n;
                continue;
            }
            CHECK(rc == 0 || rc == 2 || rc == SG_EBADMSG);
            CHECK((rc == SG_EBADMSG) == (d.error != NULL));
            break;
        }
        free(p);
        off += pos;
        res.rc = rc;
        if (rc != 0)
            break;
        CHECK(pos == piece);
    }
    res.used = off;
    CHECK(res.out_len <= res.used);
    CHECK(d.ext_bytes <= d.data_bytes + SG_H1_MAX_CHUNK_EXT_OVERHEAD + 1); /* + the byte that broke it */
    return res;
}

static void fuzz_chunked(const char *in, size_t n)
{
    char *out = malloc(n ? n : 1), *out2 = malloc(n ? n : 1);
    CHECK(out && out2);

    dechunk_result_t a = dechunk(in, n, 0, 0, out);
    /* byte by byte is the slow path: keep it for inputs of a sane size */
    size_t step = n <= 4096 ? 1 : 7;
    dechunk_result_t b = dechunk(in, n, step, 0, out2);
    CHECK(a.rc == b.rc);
    CHECK(a.out_len == b.out_len && memcmp(out, out2, a.out_len) == 0);
    if (a.rc == 2)
        CHECK(a.used == b.used);
    if (n > 1) {
        size_t split = 1 + (n > 2 ? (size_t)(unsigned char)in[0] % (n - 1) : 0);
        dechunk_result_t c = dechunk(in, n, 0, split, out2);
        CHECK(a.rc == c.rc);
        CHECK(a.out_len == c.out_len && memcmp(out, out2, a.out_len) == 0);
        if (a.rc == 2)
            CHECK(a.used == c.used);
    }
    free(out);
    free(out2);
}

/* Every Transfer-Encoding element of an accepted chunked response is "chunked" (case aside), once. */
static void check_only_chunked(const sg_h1_msg_t *m)
{
    int n = 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        sg_str_t v = m->headers[i].value;
        if (!sg_str_ieq_lit(m->headers[i].name, "transfer-encoding"))
            continue;
        size_t a = 0;
        while (a <= v.n) {
            size_t b = a;
            while (b < v.n && v.p[b] != ',')
                b++;
            size_t s = a, e = b;
            while (s < e && (v.p[s] == ' ' || v.p[s] == '\t'))
                s++;
            while (e > s && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
                e--;
            CHECK(sg_str_ieq_lit((sg_str_t){v.p + s, e - s}, "chunked"));
            n++;
            a = b + 1;
        }
    }
    CHECK(n == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    sg_h1_msg_t *m = malloc(sizeof(*m)), *m2 = malloc(sizeof(*m2));
    CHECK(m && m2);

    int r = fuzz_head(buf, size, 0, m, m2);
    if (r > 0 && m->body == SG_H1_BODY_CHUNKED)
        fuzz_chunked(buf + r, size - (size_t)r);
    r = fuzz_head(buf, size, 1, m, m2);
    if (r > 0 && m->body == SG_H1_BODY_CHUNKED) {
        check_only_chunked(m);
        fuzz_chunked(buf + r, size - (size_t)r);
    }
    (void)fuzz_head(buf, size, 2, m, m2);
    /* the decoder on its own, so the fuzzer can shape chunk syntax without a head in front */
    fuzz_chunked(buf, size);

    char line[20];
    size_t k = sg_h1_chunk_head(line, size);
    CHECK(k >= 3 && k <= 18 && line[k - 2] == '\r' && line[k - 1] == '\n');

    free(m);
    free(m2);
    return 0;
}
