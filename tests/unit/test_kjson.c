/* test_kjson.c: kube/kjson.c: what it accepts and refuses (RFC 8259, strictly), the node tree, decoded scalars,
 * and writing back with members left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kjson.h"
#include "core/sg.h"

static int parse(sg_kjson_t *d, const char *s)
{
    return sg_kjson_parse(d, s, strlen(s));
}

static void test_accepts(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}", "[]", "0", "-0", "1.5e-3", "-12E+4", "true", "false", "null", "\"\"", " \t\r\n{ \"a\" : [ 1 , 2 ] }\n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\"", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"\\ud83d\\ude00\"",
        "[[[[[[[[[[]]]]]]]]]]", "{\"a\":{\"b\":{\"c\":[null]}}}",
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(good); i++) {
        sg_kjson_t d;
        int rc = parse(&d, good[i]);
        if (rc != 0)
            fprintf(stderr, "refused: %s\n", good[i]);
        assert_int_equal(rc, 0);
        assert_int_equal(d.n[1].end, d.count + 1);
        sg_kjson_free(&d);
    }
}

static void test_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{,}", "[,1]", "01", "1.", ".5", "1e", "-", "+1", "0x10", "truex",
        "tru", "nul", "[1 2]", "{\"a\" 1}", "{a:1}", "{'a':1}", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\ud800\"",
        "\"\\udc00\\ud800\"", "\"\\ud800\\u0041\"", "\"tab\there\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
        "\"\xf5\x80\x80\x80\"", "{} {}", "[] x", "{\"a\":1,\"a\":2}", "NaN", "Infinity", "[1]]", "{\"a\":1}}",
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
        sg_kjson_t d;
        int rc = parse(&d, bad[i]);
        if (rc != SG_EBADMSG)
            fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_int_equal(rc, SG_EBADMSG);
        assert_null(d.n);
        assert_null(d.strs);
    }
    /* one byte past the given length is not read: "1" of "12" */
    sg_kjson_t d;
    assert_int_equal(sg_kjson_parse(&d, "12", 1), 0);
    assert_string_equal(sg_kjson_scalar(&d, 1), "1");
    sg_kjson_free(&d);
}

static void test_duplicates_in_large_objects(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(buf + n, sizeof(buf) - n, "}");
    sg_kjson_t d;
    assert_int_equal(parse(&d, buf), 0);
    assert_string_equal(sg_kjson_get_str(&d, 1, "k39"), "39");
    sg_kjson_free(&d);
    buf[n] = '\0';
    snprintf(buf + n, sizeof(buf) - n, ",\"k17\":0}"); /* the 41st key repeats the 18th */
    assert_int_equal(parse(&d, buf), SG_EBADMSG);
    /* keys that decode alike are the same key */
    assert_int_equal(parse(&d, "{\"ab\":1,\"a\\u0062\":2}"), SG_EBADMSG);
}

static void test_depth(void **state)
{
    (void)state;
    char buf[2 * SG_KJSON_MAX_DEPTH + 4];
    for (unsigned depth = SG_KJSON_MAX_DEPTH; depth <= SG_KJSON_MAX_DEPTH + 1; depth++) {
        memset(buf, '[', depth);
        memset(buf + depth, ']', depth);
        buf[2 * depth] = '\0';
        sg_kjson_t d;
        int rc = parse(&d, buf);
        assert_int_equal(rc, depth <= SG_KJSON_MAX_DEPTH ? 0 : SG_EBADMSG);
        sg_kjson_free(&d);
    }
}

static void test_tree_and_scalars(void **state)
{
    (void)state;
    const char *s = "{\"metadata\":{\"name\":\"a\\u00e9\",\"gen\":2},\"list\":[1,\"two\",null,{}],\"nul\":\"x\\u0000y\","
                    "\"t\":true,\"f\":false,\"z\":null}";
    sg_kjson_t d;
    assert_int_equal(parse(&d, s), 0);
    assert_int_equal(sg_kjson_type(&d, 1), SG_KJSON_OBJECT);
    uint32_t md = sg_kjson_get_type(&d, 1, "metadata", SG_KJSON_OBJECT);
    assert_true(md != 0);
    assert_string_equal(sg_kjson_get_str(&d, md, "name"), "a\xc3\xa9");
    assert_string_equal(sg_kjson_get_str(&d, md, "gen"), "2");
    assert_int_equal(sg_kjson_get_type(&d, 1, "metadata", SG_KJSON_ARRAY), 0);
    assert_int_equal(sg_kjson_get(&d, 1, "missing"), 0);
    assert_null(sg_kjson_get_str(&d, 1, "missing"));
    assert_null(sg_kjson_get_str(&d, 1, "z"));   /* null is no text */
    assert_null(sg_kjson_get_str(&d, 1, "list")); /* nor is a container */
    assert_string_equal(sg_kjson_get_str(&d, 1, "t"), "true");
    assert_true(sg_kjson_is(&d, sg_kjson_get(&d, 1, "f"), "false"));
    uint32_t nul = sg_kjson_get(&d, 1, "nul");
    assert_int_equal(d.n[nul].slen, 3);
    assert_false(sg_kjson_is(&d, nul, "x")); /* the whole decoded length counts */
    uint32_t list = sg_kjson_get_type(&d, 1, "list", SG_KJSON_ARRAY);
    int types[8], n = 0;
    for (uint32_t e = sg_kjson_first(&d, list); e; e = sg_kjson_next_elem(&d, list, e))
        types[n++] = sg_kjson_type(&d, e);
    assert_int_equal(n, 4);
    assert_int_equal(types[0], SG_KJSON_NUMBER);
    assert_int_equal(types[1], SG_KJSON_STRING);
    assert_int_equal(types[2], SG_KJSON_NULL);
    assert_int_equal(types[3], SG_KJSON_OBJECT);
    assert_int_equal(sg_kjson_first(&d, sg_kjson_get(&d, 1, "t")), 0);
    int keys = 0;
    for (uint32_t k = sg_kjson_first(&d, 1); k; k = sg_kjson_next_key(&d, 1, k))
        keys++;
    assert_int_equal(keys, 6);
    sg_kjson_free(&d);
}

static void test_emit_drops_and_prefix(void **state)
{
    (void)state;
    const char *s = " { \"kind\" : \"X\", \"a\":[1, {\"b\":\"c\\n\"}, 3], \"e\":{}, \"f\":[ ] ,\"g\":-1.5e3 } ";
    sg_kjson_t d;
    assert_int_equal(parse(&d, s), 0);
    size_t len;
    char *out = sg_kjson_emit(&d, 1, NULL, &len);
    assert_string_equal(out, "{\"kind\": \"X\", \"a\": [1, {\"b\": \"c\\n\"}, 3], \"e\": {}, \"f\": [], \"g\": -1.5e3}");
    assert_int_equal(len, strlen(out));
    free(out);
    d.n[sg_kjson_key(&d, 1, "kind")].flags |= SG_KJSON_DROP;
    uint32_t a = sg_kjson_get(&d, 1, "a");
    d.n[sg_kjson_next_elem(&d, a, sg_kjson_first(&d, a))].flags |= SG_KJSON_DROP; /* the middle element */
    out = sg_kjson_emit(&d, 1, "\"kind\": \"Y\"", &len);
    assert_string_equal(out, "{\"kind\": \"Y\", \"a\": [1, 3], \"e\": {}, \"f\": [], \"g\": -1.5e3}");
    free(out);
    /* every member left out: only the prefix, or nothing */
    for (uint32_t k = sg_kjson_first(&d, 1); k; k = sg_kjson_next_key(&d, 1, k))
        d.n[k].flags |= SG_KJSON_DROP;
    out = sg_kjson_emit(&d, 1, NULL, &len);
    assert_string_equal(out, "{}");
    free(out);
    out = sg_kjson_emit(&d, 1, "\"p\": 1", &len);
    assert_string_equal(out, "{\"p\": 1}");
    free(out);
    sg_kjson_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_duplicates_in_large_objects),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_tree_and_scalars),
        cmocka_unit_test(test_emit_drops_and_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
