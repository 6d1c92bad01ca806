/* test_h2req.c: HTTP/1.1 request heads (as proxy.c writes them) as HTTP/2 request fields; inputs end at a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "codec/h2req.h"
#include "guard.h"

static sg_guard_t g;
static char lower[4096];
static sg_h1_header_t fields[32];

static int run(const char *in, bool https, sg_h2req_t *r)
{
    size_t n = strlen(in);
    const char *p = guard_put(&g, in, n);
    *r = (sg_h2req_t){.fields = fields, .cap = SG_ARRAY_LEN(fields)};
    return sg_h2req_from_h1(p, n, https, lower, r);
}

static void field_is(const sg_h2req_t *r, size_t i, const char *name, const char *value)
{
    assert_true(i < r->nfields);
    assert_int_equal(r->fields[i].name.n, strlen(name));
    assert_memory_equal(r->fields[i].name.p, name, strlen(name));
    assert_int_equal(r->fields[i].value.n, strlen(value));
    assert_memory_equal(r->fields[i].value.p, value, strlen(value));
}

static void test_pseudo_fields_and_dropped_ones(void **state)
{
    (void)state;
    sg_h2req_t r;
    const char *in = "POST /a/b?c=1 HTTP/1.1\r\nHost: gw.test:8080\r\nX-Request-Id: r1\r\nTE: trailers\r\n"
                     "Connection: TE\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nProxy-Connection: x\r\n"
                     "Content-Length: 5\r\n\r\nhello";
    int rc = run(in, false, &r);
    assert_int_equal(rc, (int)strlen(in) - 5);
    assert_int_equal(r.body, SG_H1_BODY_LENGTH);
    field_is(&r, 0, ":method", "POST");
    field_is(&r, 1, ":scheme", "http");
    field_is(&r, 2, ":authority", "gw.test:8080");
    field_is(&r, 3, ":path", "/a/b?c=1");
    field_is(&r, 4, "x-request-id", "r1");
    field_is(&r, 5, "te", "trailers");
    field_is(&r, 6, "content-length", "5");
    assert_int_equal(r.nfields, 7);
}

static void test_chunked_te_and_other_te(void **state)
{
    (void)state;
    sg_h2req_t r;
    int rc = run("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTE: gzip\r\nX-A:  v  \r\n\r\n", true, &r);
    assert_true(rc > 0);
    assert_int_equal(r.body, SG_H1_BODY_CHUNKED);
    field_is(&r, 1, ":scheme", "https");
    field_is(&r, 4, "x-a", "v");
    assert_int_equal(r.nfields, 5);
}

static void test_no_host_no_authority(void **state)
{
    (void)state;
    sg_h2req_t r;
    int rc = run("GET /x HTTP/1.1\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n", false, &r);
    assert_true(rc > 0);
    assert_int_equal(r.body, SG_H1_BODY_NONE);
    field_is(&r, 0, ":method", "GET");
    field_is(&r, 2, ":path", "/x");
    field_is(&r, 3, "accept", "*/*");
    for (size_t i = 0; i < r.nfields; i++)
        assert_false(sg_str_eq(r.fields[i].name, SG_STR(":authority")));
}

static void test_incomplete_and_refused(void **state)
{
    (void)state;
    sg_h2req_t r;
    assert_int_equal(run("GET / HTTP/1.1\r\nHost: h\r\n\r", false, &r), SG_EINCOMPLETE);
    assert_int_equal(run("GET / HTTP/1.1\r\nHost: h\r\n", false, &r), SG_EINCOMPLETE);
    assert_int_equal(run("", false, &r), SG_EINCOMPLETE);
    assert_int_equal(run("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", false, &r), SG_EBADMSG);
    assert_string_equal(r.error, "CONNECT to an HTTP/2 backend is not supported");
    assert_int_equal(run("GET\r\n\r\n", false, &r), SG_EBADMSG);
    assert_non_null(r.error);
    assert_int_equal(run("GET / HTTP/1.1\r\nno colon here\r\n\r\n", false, &r), SG_EBADMSG);
    assert_non_null(r.error);
    sg_h1_header_t few[5];
    const char *in = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n";
    const char *p = guard_put(&g, in, strlen(in));
    r = (sg_h2req_t){.fields = few, .cap = 5};
    assert_int_equal(sg_h2req_from_h1(p, strlen(in), false, lower, &r), SG_EHDRTOOBIG);
}

static int setup(void **state)
{
    (void)state;
    guard_init(&g, 4096);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    guard_fini(&g);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pseudo_fields_and_dropped_ones),
        cmocka_unit_test(test_chunked_te_and_other_te),
        cmocka_unit_test(test_no_host_no_authority),
        cmocka_unit_test(test_incomplete_and_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
