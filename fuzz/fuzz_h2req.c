/* fuzz_h2req.c: libFuzzer harness for the HTTP/1.1-head-to-HTTP/2-fields translation (codec/h2req.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/h2req.h"

/*
 * Besides crashes and sanitizer reports (the input sits in its own exact-size allocation), the harness checks:
 *  - a complete head lies within the input and ends in CRLF CRLF; every slice points into the input or `lower`;
 *  - pseudo-fields come first, :method, :scheme and :path are always there, :authority at most once;
 *  - no connection-specific field survives, te only as "trailers", and every name is lowercase;
 *  - every refusal says why; too small a field array is the only other error.
 */
#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                    \
            abort();                                                                                     \
        }                                                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(sg_str_t s, const char *a, size_t n)
{
    return s.n == 0 || (s.p >= a && s.p + s.n <= a + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    char *in = malloc(size ? size : 1);
    char *lower = malloc(size ? size : 1);
    if (in == NULL || lower == NULL) {
        free(in);
        free(lower);
        return 0;
    }
    memcpy(in, data, size);
    sg_h1_header_t f[64];
    sg_h2req_t r = {.fields = f, .cap = 64};
    bool https = size > 0 && (data[0] & 1);
    int rc = sg_h2req_from_h1(in, size, https, lower, &r);
    if (rc > 0) {
        CHECK((size_t)rc <= size && rc >= 4 && memcmp(in + rc - 4, "\r\n\r\n", 4) == 0);
        CHECK(r.nfields >= 3 && r.nfields <= r.cap);
        CHECK(sg_str_eq(f[0].name, SG_STR(":method")) && sg_str_eq(f[1].name, SG_STR(":scheme")));
        size_t pseudo = 0, authority = 0, path = 0;
        bool regular = false;
        for (size_t i = 0; i < r.nfields; i++) {
            sg_str_t n = f[i].name, v = f[i].value;
            CHECK(n.n > 0);
            CHECK(inside(v, in, size) || sg_str_eq(n, SG_STR(":scheme")));
            if (n.p[0] == ':') {
                CHECK(!regular);
                pseudo++;
                authority += sg_str_eq(n, SG_STR(":authority"));
                path += sg_str_eq(n, SG_STR(":path"));
                continue;
            }
            regular = true;
            CHECK(inside(n, lower, size));
            for (size_t k = 0; k < n.n; k++)
                CHECK(n.p[k] < 'A' || n.p[k] > 'Z');
            CHECK(!sg_str_eq(n, SG_STR("connection")) && !sg_str_eq(n, SG_STR("host")) &&
                  !sg_str_eq(n, SG_STR("transfer-encoding")) && !sg_str_eq(n, SG_STR("upgrade")) &&
                  !sg_str_eq(n, SG_STR("keep-alive")) && !sg_str_eq(n, SG_STR("proxy-connection")));
            if (sg_str_eq(n, SG_STR("te")))
                CHECK(sg_str_ieq_lit(v, "trailers"));
        }
        CHECK(authority <= 1 && path == 1 && pseudo == 3 + authority);
    } else {
        CHECK(rc == SG_EINCOMPLETE || rc == SG_EBADMSG || rc == SG_EHDRTOOBIG);
        if (rc == SG_EBADMSG)
            CHECK(r.error != NULL);
    }
    free(in);
    free(lower);
    return 0;
}
