/* test_config_churn.c: repeated loads of configs full of quoted scalars (good and broken) leave the heap where it was. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libfyaml.h>

#include "config/config.h"

/*
 * libfyaml 0.7.12 was reported to leak 512 B to 4 KiB per load of some quoted scalars. These are the shapes
 * the loader reads through each accessor it uses (fy_node_get_scalar, fy_node_get_scalar0, mapping lookups by
 * string, token marks for positions): double-quoted with escapes (\t, \", \uXXXX, \x61), single-quoted with
 * '', quoted keys, multi-line quoted, and quoted scalars inside YAML errors (bad escape, unterminated). Each
 * is loaded many times, through ssegate's loader and through libfyaml alone, and the bytes in use must not
 * grow. A real leak of even 512 B per load would show as hundreds of KiB here.
 */
static const char *const docs[] = {
    "apiVersion: \"gateway.networking.k8s.io/v1\"\nkind: 'Gateway'\n"
    "metadata: {name: \"gw\", annotations: {\"note\": \"a \\\"q\\\"\\tb \\u0041\\x61\", 'q': 'it''s'}}\n"
    "spec:\n  gatewayClassName: \"ssegate\"\n  listeners:\n  - {name: \"http\", protocol: \"HTTP\", port: 80}\n---\n"
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: \"r\\u0061\"}\nspec:\n"
    "  parentRefs: [{name: \"gw\"}]\n  rules:\n"
    "  - matches: [{path: {type: \"PathPrefix\", value: \"/api\"}, headers: [{name: \"X-Env\", value: \"pr\\u006Fd\"}]}]\n"
    "    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
    "        set: [{name: \"X-Tag\", value: \"t\\u00e9st \\\"q\\\" folded\n          over two lines\"}]\n"
    "    backendRefs: [{name: \"127.0.0.1\", port: 8080}]\n",
    /* errors inside quoted scalars */
    "apiVersion: \"gateway.networking.k8s.io/v1\"\nkind: Gateway\nmetadata: {name: \"bad \\q escape\"}\n",
    "apiVersion: \"gateway.networking.k8s.io/v1\"\nkind: Gateway\nmetadata: {name: \"unterminated\n",
    "apiVersion: 'gateway.networking.k8s.io/v1'\nkind: Gateway\nmetadata: {name: 'unterminated\n",
    "kind: \"Gateway\"\nmetadata: {\"name\": \"x\\u00\"}\n",
    /* loader errors that quote a quoted value back */
    "apiVersion: \"gateway.networking.k8s.io/v1\"\nkind: \"Gateway\"\nmetadata: {name: \"gw\"}\n"
    "spec:\n  listeners:\n  - {name: \"h\\tttp\", protocol: \"HT\\\"TP\", port: \"eighty\"}\n",
};

static size_t in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

static void load_ours(const char *yaml)
{
    char *errs = NULL;
    size_t elen = 0;
    FILE *f = open_memstream(&errs, &elen);
    assert_non_null(f);
    sg_config_t *cfg = NULL;
    int rc = sg_config_load_ex("c.yaml", yaml, strlen(yaml), SG_CONFIG_NO_DNS, f, &cfg);
    fclose(f);
    assert_true(rc == 0 || rc == -EINVAL);
    sg_config_unref(cfg);
    free(errs);
}

/* Every scalar through every accessor we use, with libfyaml alone. */
static void walk(struct fy_node *n)
{
    size_t len;
    void *it = NULL;
    if (n == NULL)
        return;
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR:
        (void)fy_node_get_scalar(n, &len);
        (void)fy_node_get_scalar0(n);
        (void)fy_token_start_mark(fy_node_get_scalar_token(n));
        break;
    case FYNT_SEQUENCE: {
        struct fy_node *c;
        while ((c = fy_node_sequence_iterate(n, &it)) != NULL)
            walk(c);
        break;
    }
    case FYNT_MAPPING: {
        struct fy_node_pair *p;
        (void)fy_node_mapping_lookup_by_string(n, "name", 4);
        while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
            walk(fy_node_pair_key(p));
            walk(fy_node_pair_value(p));
        }
        break;
    }
    }
}

static void load_libfyaml(const char *yaml)
{
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    assert_non_null(diag);
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT;
    pcfg.diag = diag;
    struct fy_parser *fyp = fy_parser_create(&pcfg);
    assert_non_null(fyp);
    assert_int_equal(fy_parser_set_string(fyp, yaml, strlen(yaml)), 0);
    struct fy_document *doc;
    while ((doc = fy_parse_load_document(fyp)) != NULL) {
        walk(fy_document_root(doc));
        fy_parse_document_destroy(fyp, doc);
    }
    fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
}

static void churn(void (*load)(const char *))
{
    enum { WARM = 50, ROUNDS = 2000 };
    for (int i = 0; i < WARM; i++)
        for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++)
            load(docs[d]);
    size_t before = in_use();
    if (before == 0)
        skip(); /* a sanitizer's allocator: mallinfo2 says nothing (LeakSanitizer checks at exit instead) */
    for (int i = 0; i < ROUNDS; i++)
        for (size_t d = 0; d < sizeof(docs) / sizeof(docs[0]); d++)
            load(docs[d]);
    size_t after = in_use();
    /* 2,000 x 6 loads: 12,000 loads; a 512 B leak per load would be 6 MB. Allow allocator slack only. */
    if (after > before + 16 * 1024)
        fail_msg("heap in use grew from %zu to %zu bytes over %d loads", before, after, ROUNDS * 6);
}

static void ours_do_not_grow(void **state)
{
    (void)state;
    churn(load_ours);
}

static void libfyaml_alone_does_not_grow(void **state)
{
    (void)state;
    churn(load_libfyaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ours_do_not_grow),
        cmocka_unit_test(libfyaml_alone_does_not_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
