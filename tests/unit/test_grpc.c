/* test_grpc.c: the gRPC formats of codec/grpc.c: content-type kinds, grpc-timeout, grpc-status, percent-encoded
 * grpc-message, and the grpc.health.v1 Check messages (bytes as protoc would write them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "codec/grpc.h"

static sg_grpc_kind_t kind_of(const char *ct)
{
    sg_h1_msg_t msg;
    memset(&msg, 0, sizeof(msg));
    msg.headers[0] = (sg_h1_header_t){SG_STR("Content-Type"), sg_str_c(ct)};
    msg.nheaders = 1;
    return sg_grpc_kind(&msg);
}

static void test_kind(void **state)
{
    (void)state;
    assert_int_equal(kind_of("application/grpc"), SG_GRPC_CALL);
    assert_int_equal(kind_of("application/grpc+proto"), SG_GRPC_CALL);
    assert_int_equal(kind_of("Application/GRPC;charset=x"), SG_GRPC_CALL);
    assert_int_equal(kind_of("application/grpc-web"), SG_GRPC_WEB);
    assert_int_equal(kind_of("application/grpc-web-text+proto"), SG_GRPC_WEB);
    assert_int_equal(kind_of("application/grpcx"), SG_GRPC_NOT);
    assert_int_equal(kind_of("application/json"), SG_GRPC_NOT);
    assert_int_equal(kind_of("application/grp"), SG_GRPC_NOT);
}

static void test_timeout(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("100m"), &ms), 0);
    assert_int_equal(ms, 100);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("2S"), &ms), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("3M"), &ms), 0);
    assert_int_equal(ms, 180000);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("1H"), &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("1500u"), &ms), 0);
    assert_int_equal(ms, 2); /* rounded up */
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("5n"), &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("0m"), &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("99999999H"), &ms), 0);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("123456789S"), &ms), SG_EBADMSG); /* 9 digits */
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("10"), &ms), SG_EBADMSG);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("m"), &ms), SG_EBADMSG);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("1 S"), &ms), SG_EBADMSG);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("-1S"), &ms), SG_EBADMSG);
    assert_int_equal(sg_grpc_parse_timeout(SG_STR("1s"), &ms), SG_EBADMSG);
}

static void test_status(void **state)
{
    (void)state;
    sg_h1_header_t h[2] = {{SG_STR("x"), SG_STR("1")}, {SG_STR("Grpc-Status"), SG_STR("14")}};
    assert_int_equal(sg_grpc_status_of(h, 2), 14);
    h[1].value = SG_STR("0");
    assert_int_equal(sg_grpc_status_of(h, 2), 0);
    h[1].value = SG_STR("17");
    assert_int_equal(sg_grpc_status_of(h, 2), SG_GRPC_UNKNOWN);
    h[1].value = SG_STR("1x");
    assert_int_equal(sg_grpc_status_of(h, 2), -1);
    assert_int_equal(sg_grpc_status_of(h, 1), -1);

    sg_h1_header_t out[3];
    char buf[64];
    size_t n = sg_grpc_status_fields(12, "no route: caf\xc3\xa9 100%", true, out, buf, sizeof(buf));
    assert_int_equal(n, 3);
    assert_true(sg_str_eq(out[0].value, SG_STR("application/grpc")));
    assert_true(sg_str_eq(out[1].name, SG_STR("grpc-status")));
    assert_true(sg_str_eq(out[1].value, SG_STR("12")));
    assert_true(sg_str_eq(out[2].value, SG_STR("no route: caf%C3%A9 100%25")));
    /* Cut, never past the buffer, never in the middle of an escape. */
    n = sg_grpc_status_fields(4, "\xff\xff\xff\xff\xff", false, out, buf, 9);
    assert_int_equal(n, 2);
    assert_true(sg_str_eq(out[1].value, SG_STR("%FF%FF")));
}

static void test_health(void **state)
{
    (void)state;
    uint8_t b[64];
    assert_int_equal(sg_grpc_health_request("", b, sizeof(b)), 5);
    assert_memory_equal(b, "\0\0\0\0\0", 5);
    assert_int_equal(sg_grpc_health_request("sgtest.Echo", b, sizeof(b)), 5 + 2 + 11);
    assert_memory_equal(b, "\0\0\0\0\x0d\x0a\x0bsgtest.Echo", 18);
    assert_int_equal(sg_grpc_health_request("sgtest.Echo", b, 10), -E2BIG);

    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x02\x08\x01", 7), 1);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x02\x08\x02", 7), 2);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x00", 5), 0); /* UNKNOWN, the default */
    /* Unknown fields of every wire type are skipped. */
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x0f\x12\x02hi\x19\1\2\3\4\5\6\7\x08\x08\x01", 20), 1);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x02\x08", 6), SG_EINCOMPLETE);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0", 3), SG_EINCOMPLETE);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\1\0\0\0\x02\x08\x01", 7), SG_EBADMSG);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x01\x08", 6), SG_EBADMSG);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x02\x12\x05", 7), SG_EBADMSG);
    assert_int_equal(sg_grpc_health_response((const uint8_t *)"\0\0\0\0\x01\x0b", 6), SG_EBADMSG); /* group */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
