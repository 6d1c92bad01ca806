/* test_cpus.c: CPU lists for --worker-cpus and --kube-cpus (cpus.c): parsing, formatting, round robin, subsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/cpus.h"
#include "core/sg.h"
#include "guard.h"

static sg_guard_t g;

/* Parses s placed with its NUL against the guard page, so that a read past the end faults. */
static int parse(const char *s, cpu_set_t *out)
{
    return sg_cpus_parse(guard_put(&g, s, strlen(s) + 1), out);
}

static const char *roundtrip(const char *s)
{
    static char buf[256];
    cpu_set_t set;
    assert_int_equal(parse(s, &set), 0);
    return sg_cpus_format(&set, buf, sizeof(buf));
}

static void test_lists_parse(void **state)
{
    (void)state;
    cpu_set_t set;
    assert_int_equal(parse("0", &set), 0);
    assert_int_equal(CPU_COUNT(&set), 1);
    assert_true(CPU_ISSET(0, &set));
    assert_int_equal(parse("1-3,6", &set), 0);
    assert_int_equal(CPU_COUNT(&set), 4);
    assert_true(CPU_ISSET(1, &set) && CPU_ISSET(3, &set) && CPU_ISSET(6, &set));
    assert_false(CPU_ISSET(0, &set) || CPU_ISSET(4, &set));
    /* Overlaps and any order are one set; the format merges ranges. */
    assert_string_equal(roundtrip("6,0-2,2,3"), "0-3,6");
    assert_string_equal(roundtrip("5-5"), "5");
    assert_string_equal(roundtrip("0,2,4"), "0,2,4");
    char top[16];
    snprintf(top, sizeof(top), "%d", CPU_SETSIZE - 1);
    assert_string_equal(roundtrip(top), top);
}

static void test_bad_lists_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {"", ",", "0,", ",0", "-1", "1-", "-", "3-1", "0 1", " 0", "0-1 ", "a", "0x1", "1.5",
                         "0,,1", "1--2", "99999999999999999999"};
    cpu_set_t set;
    for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
        CPU_SET(0, &set);
        assert_int_equal(parse(bad[i], &set), -EINVAL);
    }
    char big[16];
    snprintf(big, sizeof(big), "%d", CPU_SETSIZE);
    assert_int_equal(parse(big, &set), -EINVAL);
    assert_int_equal(sg_cpus_parse(NULL, &set), -EINVAL);
}

static void test_nth_wraps_around(void **state)
{
    (void)state;
    cpu_set_t set;
    assert_int_equal(parse("2,5-6", &set), 0);
    assert_int_equal(sg_cpus_nth(&set, 0), 2);
    assert_int_equal(sg_cpus_nth(&set, 1), 5);
    assert_int_equal(sg_cpus_nth(&set, 2), 6);
    assert_int_equal(sg_cpus_nth(&set, 3), 2);
    assert_int_equal(sg_cpus_nth(&set, 7), 5);
    CPU_ZERO(&set);
    assert_int_equal(sg_cpus_nth(&set, 0), -1);
}

static void test_outside_names_the_first_cpu(void **state)
{
    (void)state;
    cpu_set_t want, allowed;
    int cpu = -1;
    assert_int_equal(parse("0-1", &allowed), 0);
    assert_int_equal(parse("1", &want), 0);
    assert_int_equal(sg_cpus_outside(&want, &allowed, &cpu), 0);
    assert_int_equal(parse("1,3,5", &want), 0);
    assert_int_equal(sg_cpus_outside(&want, &allowed, &cpu), -EINVAL);
    assert_int_equal(cpu, 3);
}

static void test_format_is_bounded(void **state)
{
    (void)state;
    cpu_set_t set;
    char buf[8];
    assert_int_equal(parse("0,2,4,6,8,10,12", &set), 0);
    /* Whole items only: "0,2,4,6" fits in 8 bytes with its NUL, ",8" does not. */
    assert_string_equal(sg_cpus_format(&set, buf, sizeof(buf)), "0,2,4,6");
    assert_string_equal(sg_cpus_format(&set, buf, 1), "");
}

int main(void)
{
    guard_init(&g, 4096);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_parse),
        cmocka_unit_test(test_bad_lists_are_refused),
        cmocka_unit_test(test_nth_wraps_around),
        cmocka_unit_test(test_outside_names_the_first_cpu),
        cmocka_unit_test(test_format_is_bounded),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    guard_fini(&g);
    return rc;
}
