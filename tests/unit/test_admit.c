/* test_admit.c: the per-address budgets (admit.c): burst then refill, addresses and IPv6 /64s apart, the
 * table bounded under many addresses, and the one-line-per-interval log limit with its suppressed count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "http/admit.h"

static struct sockaddr_in6 v4(const char *ip)
{
    struct sockaddr_in6 ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    return ss;
}

static struct sockaddr_in6 v6(const char *ip)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return a;
}

static int take_n(sg_admit_t *a, const struct sockaddr_in6 *p, int n, uint64_t now)
{
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += sg_admit_take(a, p, now);
    return ok;
}

static void test_burst_then_refill(void **state)
{
    (void)state;
    sg_admit_t *a = sg_admit_new(10, 42);
    struct sockaddr_in6 p = v4("192.0.2.1");
    assert_int_equal(take_n(a, &p, 25, 1000), 10);      /* the burst is the rate */
    assert_int_equal(take_n(a, &p, 5, 1099), 0);        /* 99 ms at 10/s: no whole token yet */
    assert_int_equal(take_n(a, &p, 5, 1100), 1);        /* 100 ms: one */
    assert_int_equal(take_n(a, &p, 25, 1650), 5);       /* the remainder carried over: 550 ms, five */
    assert_int_equal(take_n(a, &p, 25, 100000), 10);    /* never more than the burst */
    sg_admit_free(a);
}

static void test_addresses_apart(void **state)
{
    (void)state;
    sg_admit_t *a = sg_admit_new(3, 7);
    struct sockaddr_in6 p1 = v4("192.0.2.1"), p2 = v4("192.0.2.2");
    struct sockaddr_in6 q1 = v6("2001:db8:1:2::1"), q2 = v6("2001:db8:1:2:ffff::9"), q3 = v6("2001:db8:1:3::1");
    struct sockaddr_in6 mapped = v6("::ffff:192.0.2.1");
    assert_int_equal(take_n(a, &p1, 5, 0), 3);
    assert_int_equal(take_n(a, &p2, 5, 0), 3);
    assert_int_equal(take_n(a, &mapped, 5, 0), 0);      /* a v4-mapped address is the same client */
    assert_int_equal(take_n(a, &q1, 5, 0), 3);
    assert_int_equal(take_n(a, &q2, 5, 0), 0);          /* same /64 */
    assert_int_equal(take_n(a, &q3, 5, 0), 3);          /* another /64 */
    sg_admit_free(a);
    assert_true(sg_admit_take(NULL, &p1, 0));           /* no table: no limit */
    a = sg_admit_new(0, 7);
    assert_int_equal(take_n(a, &p1, 100, 0), 100);      /* rate 0: no limit */
    sg_admit_free(a);
}

static void test_table_bounded(void **state)
{
    (void)state;
    /* 100,000 addresses, one per millisecond, through a table of SETS x WAYS (one allocation: it cannot
     * grow), while one address keeps asking: it keeps its spent budget as the others come and go, and gets
     * what its rate allows over the 100 s (1/s). */
    sg_admit_t *a = sg_admit_new(1, 99);
    struct sockaddr_in6 hot = v4("198.51.100.1");
    int got = 0;
    for (uint32_t i = 0; i < 100000; i++) {
        struct sockaddr_in6 p = v4("10.0.0.0");
        ((struct sockaddr_in *)&p)->sin_addr.s_addr = htonl(0x0a000000u + i);
        sg_admit_take(a, &p, i);
        if (i % 64 == 0)
            got += sg_admit_take(a, &hot, i);
    }
    assert_in_range(got, 90, 100000 / 1000 + 1);
    sg_admit_free(a);
}

static void test_log_limit(void **state)
{
    (void)state;
    sg_admit_t *a = sg_admit_new(0, 5);
    struct sockaddr_in6 p = v4("192.0.2.9"), o = v4("192.0.2.10");
    uint64_t held = 99;
    assert_true(sg_admit_may_log(a, &p, SG_ADMIT_LOG_RESET, 1000, &held));
    assert_int_equal(held, 0);
    for (int i = 0; i < 7; i++)
        assert_false(sg_admit_may_log(a, &p, SG_ADMIT_LOG_RESET, 1000 + (uint64_t)i * 1000, &held));
    assert_true(sg_admit_may_log(a, &p, SG_ADMIT_LOG_RATE, 2000, &held)); /* each reason on its own */
    assert_true(sg_admit_may_log(a, &o, SG_ADMIT_LOG_RESET, 2000, &held)); /* each address on its own */
    assert_true(sg_admit_may_log(a, &p, SG_ADMIT_LOG_RESET, 1000 + SG_ADMIT_LOG_MS, &held));
    assert_int_equal(held, 7);                           /* what was held back since the last line */
    assert_false(sg_admit_may_log(a, &p, 7, 50000, &held));
    sg_admit_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_addresses_apart),
        cmocka_unit_test(test_table_bounded),
        cmocka_unit_test(test_log_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
