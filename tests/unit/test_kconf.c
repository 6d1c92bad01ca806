/* test_kconf.c: where the API server is: kubeconfig current context (server URL forms, CA file or data, token or
 * tokenFile, relative paths), what is refused with a reason, and the in-cluster service account. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kclient.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sg-kconf-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int load(const char *yaml, sg_kconf_t *kc, char *err, size_t cap)
{
    put("kc.yaml", yaml);
    char p[256];
    snprintf(p, sizeof(p), "%s/kc.yaml", dir);
    return sg_kconf_load_kubeconfig(kc, p, err, cap);
}

#define HEAD                                                                                                           \
    "apiVersion: v1\nkind: Config\ncurrent-context: b\n"                                                               \
    "contexts:\n- {name: a, context: {cluster: x, user: x}}\n- {name: b, context: {cluster: c1, user: u1, namespace: " \
    "team}}\n"

static void test_kubeconfig_current_context(void **state)
{
    (void)state;
    put("ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    put("tok", "secret\n");
    sg_kconf_t kc;
    char err[256] = "";
    assert_int_equal(load(HEAD "clusters:\n- {name: c1, cluster: {server: \"https://10.0.0.1:6443/prefix/\", "
                               "certificate-authority: ca.pem}}\nusers:\n- {name: u1, user: {tokenFile: tok}}\n",
                          &kc, err, sizeof(err)),
                     0);
    assert_string_equal(kc.host, "10.0.0.1");
    assert_string_equal(kc.port, "6443");
    assert_string_equal(kc.base_path, "/prefix");
    assert_string_equal(kc.namespace, "team");
    assert_non_null(strstr(kc.ca_pem, "BEGIN CERTIFICATE"));
    char want[256];
    snprintf(want, sizeof(want), "%s/tok", dir); /* relative to the kubeconfig's directory */
    assert_string_equal(kc.token_file, want);
    assert_null(kc.token);
    sg_kconf_free(&kc);

    /* certificate-authority-data (base64 of "PEM"), an inline token, IPv6 without a port, a host name. */
    assert_int_equal(load(HEAD "clusters:\n- {name: c1, cluster: {server: \"https://[::1]\", certificate-authority-data: "
                               "UEVN}}\nusers:\n- {name: u1, user: {token: abc}}\n",
                          &kc, err, sizeof(err)),
                     0);
    assert_string_equal(kc.host, "::1");
    assert_string_equal(kc.port, "443");
    assert_string_equal(kc.base_path, "");
    assert_int_equal(kc.ca_len, 3);
    assert_memory_equal(kc.ca_pem, "PEM", 3);
    assert_string_equal(kc.token, "abc");
    sg_kconf_free(&kc);
}

static void test_kubeconfig_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *cluster, *user, *why;
    } cases[] = {
        {"server: \"https://h:1\"", "exec: {command: aws}", "exec is not supported"},
        {"server: \"https://h:1\"", "client-certificate-data: QQ==", "client-certificate-data is not supported"},
        {"server: \"https://h:1\"", "auth-provider: {name: gcp}", "auth-provider is not supported"},
        {"server: \"https://h:1\"", "username: admin", "username is not supported"},
        {"server: \"https://h:1\", insecure-skip-tls-verify: true", "token: t", "insecure-skip-tls-verify"},
        {"server: \"http://h:1\"", "token: t", "only https://"},
        {"certificate-authority: nope.pem", "token: t", "has no server"},
        {"server: \"https://h:1\", certificate-authority: missing.pem", "token: t", "missing.pem"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char y[1024];
        snprintf(y, sizeof(y), HEAD "clusters:\n- {name: c1, cluster: {%s}}\nusers:\n- {name: u1, user: {%s}}\n",
                 cases[i].cluster, cases[i].user);
        sg_kconf_t kc;
        char err[256] = "";
        assert_true(load(y, &kc, err, sizeof(err)) < 0);
        if (strstr(err, cases[i].why) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].why);
        assert_null(kc.host);
    }
    sg_kconf_t kc;
    char err[256] = "";
    assert_true(load("current-context: zz\ncontexts: []\n", &kc, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "current-context"));
    assert_true(load("{{{ not yaml", &kc, err, sizeof(err)) < 0);
}

static void test_incluster(void **state)
{
    (void)state;
    sg_kconf_t kc;
    char err[256] = "";
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(sg_kconf_incluster(&kc, dir, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    char sa[128];
    snprintf(sa, sizeof(sa), "%s/sa", dir);
    mkdir(sa, 0700);
    assert_true(sg_kconf_incluster(&kc, sa, err, sizeof(err)) < 0); /* no token yet */
    assert_non_null(strstr(err, "/token"));
    put("sa/token", "t1\n");
    put("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
    put("sa/namespace", "gateways\n");
    assert_int_equal(sg_kconf_incluster(&kc, sa, err, sizeof(err)), 0);
    assert_string_equal(kc.host, "10.96.0.1");
    assert_string_equal(kc.port, "443");
    assert_string_equal(kc.namespace, "gateways");
    assert_non_null(strstr(kc.token_file, "/sa/token"));
    assert_null(kc.token); /* read from the file at each use, never once */
    sg_kconf_free(&kc);
}

static void test_query_escape(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(sg_kclient_query_escape("a b/c=d&e~", out, sizeof(out)), 18);
    assert_string_equal(out, "a%20b%2Fc%3Dd%26e~");
    assert_int_equal(sg_kclient_query_escape("abcdef", out, 6), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig_current_context),
        cmocka_unit_test(test_kubeconfig_refusals),
        cmocka_unit_test(test_incluster),
        cmocka_unit_test(test_query_escape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
