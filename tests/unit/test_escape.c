/* test_escape.c: the escaping of quoted input (escape.c) and the per-call-site log rate limit (log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/escape.h"
#include "core/log.h"
#include "guard.h"

static sg_guard_t g;

/* Escapes n bytes placed against the guard page and returns the output (static buffer). */
static const char *esc(const char *in, size_t n, unsigned flags)
{
    static char out[512];
    const char *p = guard_put(&g, in, n);
    size_t len = sg_escape(out, sizeof(out), p, n, flags);
    assert_int_equal(len, strlen(out));
    return out;
}

#define ESC(lit, flags) esc(lit, sizeof(lit) - 1, flags)

static void test_controls_are_escaped(void **state)
{
    (void)state;
    assert_string_equal(ESC("a\nb", 0), "a\\nb");
    assert_string_equal(ESC("a\r\n\tb", 0), "a\\r\\n\\tb");
    assert_string_equal(ESC("\x1b[31mred", 0), "\\x1b[31mred");
    assert_string_equal(ESC("\x7f\x01", 0), "\\x7f\\x01");
    assert_string_equal(ESC("nul\0here", 0), "nul\\x00here");
    /* A message never spans two lines, whatever the input holds. */
    assert_null(strchr(ESC("x\ny\rz\x0b", 0), '\n'));
}

static void test_valid_utf8_passes_unchanged(void **state)
{
    (void)state;
    const char *samples[] = {"plain ascii /path?q=1", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
                             "\xf0\x9f\x98\x80 emoji", "\xc2\xa0nbsp", "\xef\xbb\xbf" "bom", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        assert_string_equal(esc(samples[i], strlen(samples[i]), 0), samples[i]);
        assert_false(sg_escape_needed(samples[i], strlen(samples[i]), 0));
    }
}

static void test_bad_utf8_is_escaped_byte_by_byte(void **state)
{
    (void)state;
    assert_string_equal(ESC("\xff\xfe", 0), "\\xff\\xfe");
    assert_string_equal(ESC("a\x80z", 0), "a\\x80z");                   /* lone continuation */
    assert_string_equal(ESC("\xc3", 0), "\\xc3");                       /* truncated at the end */
    assert_string_equal(ESC("\xc3(", 0), "\\xc3(");                     /* bad continuation */
    assert_string_equal(ESC("\xc0\xaf", 0), "\\xc0\\xaf");              /* overlong '/' */
    assert_string_equal(ESC("\xe0\x80\xaf", 0), "\\xe0\\x80\\xaf");     /* overlong, 3 bytes */
    assert_string_equal(ESC("\xed\xa0\x80", 0), "\\xed\\xa0\\x80");     /* surrogate U+D800 */
    assert_string_equal(ESC("\xf4\x90\x80\x80", 0), "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
    assert_string_equal(ESC("\xc2\x9b" "2J", 0), "\\xc2\\x9b" "2J");     /* C1 CSI */
    assert_true(sg_escape_needed("\xff", 1, 0));
}

static void test_field_mode_escapes_separators(void **state)
{
    (void)state;
    assert_string_equal(ESC("a b\"c\\d", SG_ESC_FIELD), "a\\x20b\\x22c\\x5cd");
    assert_string_equal(ESC("a b\"c\\d", 0), "a b\"c\\d");
    assert_string_equal(ESC("id status=200", SG_ESC_FIELD), "id\\x20status=200");
    assert_true(sg_escape_needed(" ", 1, SG_ESC_FIELD));
    assert_false(sg_escape_needed(" ", 1, 0));
}

static void test_truncation_never_splits(void **state)
{
    (void)state;
    char out[8];
    /* "ab" then an escape of 4 that does not fit before the NUL: cut before it. */
    size_t n = sg_escape(out, 6, "ab\x01z", 4, 0);
    assert_int_equal(n, 2);
    assert_string_equal(out, "ab");
    /* A 3-byte character that does not fit whole is left out whole. */
    n = sg_escape(out, 5, "ab\xe6\x97\xa5", 5, 0);
    assert_int_equal(n, 2);
    n = sg_escape(out, 6, "ab\xe6\x97\xa5", 5, 0);
    assert_int_equal(n, 5);
    assert_string_equal(out, "ab\xe6\x97\xa5");
    assert_int_equal(sg_escape(out, 1, "abc", 3, 0), 0);
    assert_string_equal(out, "");
    assert_int_equal(sg_escape(out, 0, "abc", 3, 0), 0);
}

static void test_ratelimit_burst_then_count(void **state)
{
    (void)state;
    sg_ratelimit_t rl;
    memset(&rl, 0, sizeof(rl));
    uint64_t sup = 99;
    uint64_t now = 5000;
    int written = 0;
    for (int i = 0; i < 1000; i++)
        written += sg_ratelimit_take(&rl, now, &sup) ? 1 : 0;
    assert_int_equal(written, SG_LOG_BURST);
    /* Still inside the window: nothing more. */
    assert_false(sg_ratelimit_take(&rl, now + SG_LOG_WINDOW_MS - 1, &sup));
    assert_int_equal(sup, 0);
    /* The first line of the next window carries what was held back. */
    assert_true(sg_ratelimit_take(&rl, now + SG_LOG_WINDOW_MS, &sup));
    assert_int_equal(sup, 1000 - SG_LOG_BURST + 1);
    /* ... and the count starts again from zero. */
    assert_true(sg_ratelimit_take(&rl, now + SG_LOG_WINDOW_MS + 1, &sup));
    assert_int_equal(sup, 0);
}

static void test_ratelimit_quiet_site_is_never_limited(void **state)
{
    (void)state;
    sg_ratelimit_t rl;
    memset(&rl, 0, sizeof(rl));
    uint64_t sup;
    /* One line per second forever, from time 0: never held back. */
    for (uint64_t t = 0; t < 100000; t += 1000) {
        assert_true(sg_ratelimit_take(&rl, t, &sup));
        assert_int_equal(sup, 0);
    }
}

static void test_ratelimit_bounds_a_flood(void **state)
{
    (void)state;
    sg_ratelimit_t rl;
    memset(&rl, 0, sizeof(rl));
    uint64_t sup, total_sup = 0;
    int written = 0;
    /* A call every 10 us of virtual time for 60 s: 6 million calls. */
    for (uint64_t i = 0; i < 6000000; i++) {
        if (sg_ratelimit_take(&rl, i / 100, &sup)) {
            written++;
            total_sup += sup;
        }
    }
    assert_true(written <= (60000 / SG_LOG_WINDOW_MS + 1) * SG_LOG_BURST);
    /* Everything not written is accounted for, except what the last window still holds. */
    assert_true(total_sup + (uint64_t)written <= 6000000);
    assert_true(total_sup + (uint64_t)written + atomic_load(&rl.suppressed) == 6000000);
}

int main(void)
{
    guard_init(&g, 4096);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_controls_are_escaped),
        cmocka_unit_test(test_valid_utf8_passes_unchanged),
        cmocka_unit_test(test_bad_utf8_is_escaped_byte_by_byte),
        cmocka_unit_test(test_field_mode_escapes_separators),
        cmocka_unit_test(test_truncation_never_splits),
        cmocka_unit_test(test_ratelimit_burst_then_count),
        cmocka_unit_test(test_ratelimit_quiet_site_is_never_limited),
        cmocka_unit_test(test_ratelimit_bounds_a_flood),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    guard_fini(&g);
    return rc;
}
