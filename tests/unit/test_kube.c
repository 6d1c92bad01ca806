/* test_kube.c: the kube config source's pure parts: the watch framer over arbitrary splits, event decoding, the
 * store's stripping and replace-with-deletes, the rebuild debounce on a virtual clock, and the translation filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "guard.h"
#include "kube/kbuild.h"
#include "kube/kstore.h"
#include "kube/kwatch.h"

static const char STREAM[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"resourceVersion\":\"9\"}}}\r\n"
    "\n"
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Service\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"12\"}}}\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Expired\",\"code\":410,"
    "\"message\":\"too old resource version: 1 (12)\"}}\n";

/* Feeds STREAM cut at every pair of positions (three pieces, each from a guarded copy) and checks that the same four
 * events come out, in order, whatever the cuts. */
static void test_framer_any_split(void **state)
{
    (void)state;
    size_t n = sizeof(STREAM) - 1;
    sg_guard_t g;
    guard_init(&g, n);
    for (size_t a = 0; a <= n; a += 3) {
        for (size_t b = a; b <= n; b += 7) {
            sg_kframer_t f;
            sg_kframer_init(&f, 4096);
            size_t cuts[4] = {0, a, b, n};
            int types[8], nt = 0;
            const char *rv[8];
            char rvbuf[8][16];
            for (int p = 0; p < 3; p++) {
                const char *piece = guard_put(&g, STREAM + cuts[p], cuts[p + 1] - cuts[p]);
                assert_int_equal(sg_kframer_push(&f, piece, cuts[p + 1] - cuts[p]), 0);
                sg_str_t line;
                while (sg_kframer_next(&f, &line) == 1) {
                    sg_kevent_t ev;
                    assert_int_equal(sg_kwatch_decode(line.p, line.n, &ev), 0);
                    assert_true(nt < 8);
                    types[nt] = (int)ev.type;
                    snprintf(rvbuf[nt], sizeof(rvbuf[nt]), "%s", ev.rv ? ev.rv : "-");
                    rv[nt] = rvbuf[nt];
                    if (ev.type == SG_KEV_ERROR) {
                        assert_int_equal(ev.code, 410);
                        assert_true(sg_kevent_expired(&ev));
                    }
                    nt++;
                    sg_kevent_free(&ev);
                }
            }
            assert_int_equal(nt, 4);
            assert_int_equal(types[0], SG_KEV_ADDED);
            assert_string_equal(rv[0], "5");
            assert_int_equal(types[1], SG_KEV_BOOKMARK);
            assert_string_equal(rv[1], "9");
            assert_int_equal(types[2], SG_KEV_DELETED);
            assert_string_equal(rv[2], "12");
            assert_int_equal(types[3], SG_KEV_ERROR);
            assert_int_equal(sg_kframer_pending(&f), 0);
            sg_kframer_free(&f);
        }
    }
    guard_fini(&g);
}

static void test_framer_line_cap(void **state)
{
    (void)state;
    sg_kframer_t f;
    sg_kframer_init(&f, 16);
    sg_str_t line;
    assert_int_equal(sg_kframer_push(&f, "0123456789", 10), 0);
    assert_int_equal(sg_kframer_next(&f, &line), 0);
    assert_int_equal(sg_kframer_push(&f, "0123456789", 10), -EMSGSIZE); /* 20 bytes, no end */
    assert_int_equal(sg_kframer_pending(&f), 0);
    assert_int_equal(sg_kframer_push(&f, "short\nnext", 10), 0);
    assert_int_equal(sg_kframer_next(&f, &line), 1);
    assert_int_equal(line.n, 5);
    assert_memory_equal(line.p, "short", 5);
    assert_int_equal(sg_kframer_next(&f, &line), 0);
    assert_int_equal(sg_kframer_pending(&f), 4);
    sg_kframer_free(&f);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not json", "[1,2]", "{\"type\":\"ADDED\"}", "{\"type\":\"NOPE\",\"object\":{}}",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}", /* no resourceVersion */
        "{\"type\":\"ADDED\",\"object\":[1]}",
    };
    for (size_t i = 0; i < SG_ARRAY_LEN(bad); i++) {
        sg_kevent_t ev;
        assert_int_equal(sg_kwatch_decode(bad[i], strlen(bad[i]), &ev), SG_EBADMSG);
        assert_null(ev.doc.n);
    }
}

/* ---- store ---- */

static int put_json(sg_kstore_t *s, int kind, const char *json)
{
    sg_kjson_t d;
    assert_int_equal(sg_kjson_parse(&d, json, strlen(json)), 0);
    int rc = sg_kstore_put(s, kind, &d, 1);
    sg_kjson_free(&d);
    return rc;
}

static void test_store_strips_and_skips_noops(void **state)
{
    (void)state;
    sg_kstore_t *s = sg_kstore_new();
    assert_non_null(s);
    /* A LIST item: no kind or apiVersion; managedFields, annotations, resourceVersion and status go. */
    assert_int_equal(put_json(s, SG_KK_HTTPROUTE,
                              "{\"metadata\":{\"name\":\"r\",\"namespace\":\"ns\",\"resourceVersion\":\"1\","
                              "\"generation\":2,\"managedFields\":[{\"manager\":\"kubectl\"}],\"annotations\":"
                              "{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},\"spec\":{\"parentRefs\":"
                              "[{\"name\":\"gw\"},{\"kind\":\"Service\",\"name\":\"s\"}]},\"status\":{\"parents\":[]}}"),
                     1);
    const sg_kobj_t *o = sg_kstore_get(s, SG_KK_HTTPROUTE, "ns", "r");
    assert_non_null(o);
    assert_null(strstr(o->json, "managedFields"));
    assert_null(strstr(o->json, "annotations"));
    assert_null(strstr(o->json, "resourceVersion"));
    assert_null(strstr(o->json, "status"));
    assert_non_null(strstr(o->json, "\"kind\": \"HTTPRoute\""));
    assert_non_null(strstr(o->json, "\"apiVersion\": \"gateway.networking.k8s.io/v1\""));
    assert_non_null(strstr(o->json, "\"generation\": 2"));
    assert_string_equal(o->aux, "ns/gw\n\n");
    /* The same object with a new resourceVersion and status only: nothing the loader reads changed. */
    assert_int_equal(put_json(s, SG_KK_HTTPROUTE,
                              "{\"kind\":\"HTTPRoute\",\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"metadata\":"
                              "{\"name\":\"r\",\"namespace\":\"ns\",\"resourceVersion\":\"7\",\"generation\":2},\"spec\":"
                              "{\"parentRefs\":[{\"name\":\"gw\"},{\"kind\":\"Service\",\"name\":\"s\"}]},\"status\":"
                              "{\"parents\":[{\"controllerName\":\"x\"}]}}"),
                     0);
    assert_int_equal(sg_kstore_count(s, SG_KK_HTTPROUTE), 1);
    /* Secrets: an Opaque one without ca.crt is not kept; a TLS one keeps only the keys the loader reads. */
    assert_int_equal(put_json(s, SG_KK_SECRET, "{\"metadata\":{\"name\":\"o\",\"namespace\":\"ns\"},\"type\":\"Opaque\","
                                               "\"data\":{\"password\":\"aGk=\"}}"),
                     0);
    assert_null(sg_kstore_get(s, SG_KK_SECRET, "ns", "o"));
    assert_int_equal(put_json(s, SG_KK_SECRET, "{\"metadata\":{\"name\":\"t\",\"namespace\":\"ns\"},\"type\":"
                                               "\"kubernetes.io/tls\",\"data\":{\"tls.crt\":\"QQ==\",\"tls.key\":\"Qg==\","
                                               "\"other\":\"Qw==\"}}"),
                     1);
    o = sg_kstore_get(s, SG_KK_SECRET, "ns", "t");
    assert_non_null(o);
    assert_non_null(strstr(o->json, "tls.key"));
    assert_null(strstr(o->json, "other"));
    /* A stored Secret that changes type to one we do not read is deleted. */
    assert_int_equal(put_json(s, SG_KK_SECRET, "{\"metadata\":{\"name\":\"t\",\"namespace\":\"ns\"},\"type\":\"Opaque\"}"),
                     1);
    assert_null(sg_kstore_get(s, SG_KK_SECRET, "ns", "t"));
    assert_int_equal(put_json(s, SG_KK_SERVICE, "{\"metadata\":{}}"), SG_EBADMSG);
    sg_kstore_free(s);
}

/* Services and EndpointSlices keep only what the loader reads: labels only on a slice (its Service's name) or a
 * Namespace; a Service its spec.ports' name, port, targetPort and
 * appProtocol; an endpoint its addresses, and conditions.ready only when it is not true, false or null (for the loader
 * to report). A ready endpoint is written without conditions and a not-ready one not at all. */
static void test_store_slims_services_and_slices(void **state)
{
    (void)state;
    sg_kstore_t *s = sg_kstore_new();
    assert_non_null(s);
    assert_int_equal(put_json(s, SG_KK_SERVICE,
                              "{\"metadata\":{\"name\":\"svc\",\"namespace\":\"ns\",\"labels\":{\"app\":\"a\"}},\"spec\":{\"clusterIP\":\"10.96.0.9\","
                              "\"clusterIPs\":[\"10.96.0.9\"],\"ipFamilies\":[\"IPv4\"],\"selector\":{\"app\":\"a\"},"
                              "\"type\":\"ClusterIP\",\"ports\":[{\"name\":\"http\",\"port\":80,\"protocol\":\"TCP\","
                              "\"targetPort\":8080,\"appProtocol\":\"kubernetes.io/h2c\"}]}}"),
                     1);
    const sg_kobj_t *o = sg_kstore_get(s, SG_KK_SERVICE, "ns", "svc");
    assert_non_null(o);
    assert_non_null(strstr(o->json, "\"spec\": {\"ports\": [{\"name\": \"http\", \"port\": 80, \"targetPort\": 8080, "
                                    "\"appProtocol\": \"kubernetes.io/h2c\"}]}"));
    assert_null(strstr(o->json, "clusterIP"));
    assert_null(strstr(o->json, "labels"));
    assert_null(strstr(o->json, "selector"));
    assert_null(strstr(o->json, "TCP"));
    assert_int_equal(put_json(s, SG_KK_ENDPOINTSLICE,
                              "{\"metadata\":{\"name\":\"svc-1\",\"namespace\":\"ns\",\"labels\":{\"app\":\"a\","
                              "\"kubernetes.io/service-name\":\"svc\",\"endpointslice.kubernetes.io/managed-by\":\"c\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":"
                              "[\"10.0.0.1\"],\"conditions\":{\"ready\":true,\"serving\":true,\"terminating\":false},"
                              "\"nodeName\":\"n1\",\"zone\":\"z\",\"targetRef\":{\"kind\":\"Pod\",\"name\":\"p1\","
                              "\"namespace\":\"ns\",\"uid\":\"u1\"}},{\"addresses\":[\"10.0.0.2\"],\"conditions\":"
                              "{\"ready\":false,\"serving\":true,\"terminating\":true}},{\"addresses\":[\"10.0.0.3\"],"
                              "\"conditions\":{\"ready\":\"maybe\",\"serving\":true}},{\"addresses\":[\"10.0.0.4\"],"
                              "\"conditions\":{\"serving\":true}},{\"addresses\":[\"10.0.0.5\"]},{\"addresses\":"
                              "[\"10.0.0.6\"],\"conditions\":{\"ready\":\"true\"}},{\"addresses\":[\"10.0.0.7\"],"
                              "\"conditions\":{\"ready\":null}}],\"ports\":[{\"name\":\"http\","
                              "\"port\":8080,\"protocol\":\"TCP\"}]}"),
                     1);
    o = sg_kstore_get(s, SG_KK_ENDPOINTSLICE, "ns", "svc-1");
    assert_non_null(o);
    assert_non_null(strstr(o->json, "\"endpoints\": [{\"addresses\": [\"10.0.0.1\"]}, {\"addresses\": [\"10.0.0.3\"], "
                                    "\"conditions\": {\"ready\": \"maybe\"}}, {\"addresses\": [\"10.0.0.4\"]}, "
                                    "{\"addresses\": [\"10.0.0.5\"]}, {\"addresses\": [\"10.0.0.6\"]}, "
                                    "{\"addresses\": [\"10.0.0.7\"]}]")); /* ready null: unknown, taken as ready */
    assert_non_null(strstr(o->json, "\"labels\": {\"kubernetes.io/service-name\": \"svc\"}"));
    assert_null(strstr(o->json, "10.0.0.2"));
    assert_null(strstr(o->json, "nodeName"));
    assert_null(strstr(o->json, "serving"));
    /* The slice's ports are the loader's: kept whole. */
    assert_non_null(strstr(o->json, "\"protocol\": \"TCP\""));
    /* A Namespace keeps its labels: allowedRoutes selects on them. */
    assert_int_equal(put_json(s, SG_KK_NAMESPACE, "{\"metadata\":{\"name\":\"ns\",\"labels\":{\"team\":\"a\"}}}"), 1);
    o = sg_kstore_get(s, SG_KK_NAMESPACE, "", "ns");
    assert_non_null(o);
    assert_non_null(strstr(o->json, "\"labels\": {\"team\": \"a\"}"));
    sg_kstore_free(s);
}

static void test_store_relist_replaces_with_deletes(void **state)
{
    (void)state;
    sg_kstore_t *s = sg_kstore_new();
    char json[256];
    for (int i = 0; i < 3000; i++) {
        snprintf(json, sizeof(json), "{\"metadata\":{\"name\":\"s%d\",\"namespace\":\"n%d\"},\"spec\":{\"ports\":[]}}",
                 i, i % 7);
        assert_int_equal(put_json(s, SG_KK_SERVICE, json), 1);
    }
    assert_int_equal(put_json(s, SG_KK_NAMESPACE, "{\"metadata\":{\"name\":\"n1\"}}"), 1);
    assert_int_equal(sg_kstore_count(s, SG_KK_SERVICE), 3000);
    size_t before = sg_kstore_bytes(s);
    /* A relist that sees only the even Services (one of them changed) deletes the odd ones, and no other kind. */
    sg_kstore_relist_begin(s, SG_KK_SERVICE);
    for (int i = 0; i < 3000; i += 2) {
        snprintf(json, sizeof(json), "{\"metadata\":{\"name\":\"s%d\",\"namespace\":\"n%d\"},\"spec\":{\"ports\":[%s]}}",
                 i, i % 7, i == 10 ? "{\"port\":80}" : "");
        assert_int_equal(put_json(s, SG_KK_SERVICE, json), i == 10 ? 1 : 0);
    }
    assert_int_equal(sg_kstore_relist_end(s, SG_KK_SERVICE), 1500);
    assert_int_equal(sg_kstore_count(s, SG_KK_SERVICE), 1500);
    assert_null(sg_kstore_get(s, SG_KK_SERVICE, "n1", "s1"));
    assert_non_null(sg_kstore_get(s, SG_KK_SERVICE, "n3", "s10"));
    assert_non_null(sg_kstore_get(s, SG_KK_NAMESPACE, "", "n1"));
    assert_true(sg_kstore_bytes(s) < before);
    /* An empty relist (the CRD went away) empties the kind. */
    sg_kstore_relist_begin(s, SG_KK_SERVICE);
    assert_int_equal(sg_kstore_relist_end(s, SG_KK_SERVICE), 1500);
    assert_int_equal(sg_kstore_count(s, SG_KK_SERVICE), 0);
    assert_int_equal(sg_kstore_delete(s, SG_KK_NAMESPACE, NULL, "n1"), 1);
    assert_int_equal(sg_kstore_delete(s, SG_KK_NAMESPACE, NULL, "n1"), 0);
    sg_kstore_free(s);
}

/* ---- debounce, on a virtual clock ---- */

static void test_debounce(void **state)
{
    (void)state;
    sg_kdebounce_t d;
    sg_kdebounce_init(&d, 100, 1000);
    assert_int_equal(sg_kdebounce_due_in(&d, 5), -1);
    sg_kdebounce_touch(&d, 1000);
    assert_int_equal(sg_kdebounce_due_in(&d, 1000), 100);
    assert_int_equal(sg_kdebounce_due_in(&d, 1099), 1);
    assert_int_equal(sg_kdebounce_due_in(&d, 1100), 0);
    /* Changes every 50 ms keep it quiet-waiting, but never past 1 s after the first. */
    uint64_t t = 1000;
    for (; t < 1900; t += 50) {
        sg_kdebounce_touch(&d, t);
        assert_true(sg_kdebounce_due_in(&d, t) > 0);
    }
    sg_kdebounce_touch(&d, 1950);
    assert_int_equal(sg_kdebounce_due_in(&d, 1950), 50); /* max hold: 2000 */
    assert_int_equal(sg_kdebounce_due_in(&d, 2000), 0);
    sg_kdebounce_done(&d);
    assert_int_equal(sg_kdebounce_due_in(&d, 2000), -1);
    sg_kdebounce_touch(&d, 5000); /* a new burst starts its own max window */
    assert_int_equal(sg_kdebounce_due_in(&d, 5000), 100);
}

/* ---- translation ---- */

static void test_build_serves_only_our_gateways(void **state)
{
    (void)state;
    sg_kstore_t *s = sg_kstore_new();
    assert_int_equal(put_json(s, SG_KK_GATEWAYCLASS, "{\"metadata\":{\"name\":\"ours\"},\"spec\":{\"controllerName\":"
                                                     "\"ssegate.io/gateway-controller\"}}"), 1);
    assert_int_equal(put_json(s, SG_KK_GATEWAYCLASS, "{\"metadata\":{\"name\":\"theirs\"},\"spec\":{\"controllerName\":"
                                                     "\"example.com/other\"}}"), 1);
    const char *gw = "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\"},\"spec\":{\"gatewayClassName\":\"%s\","
                     "\"listeners\":[{\"name\":\"http\",\"port\":%d,\"protocol\":\"HTTP\",\"allowedRoutes\":"
                     "{\"namespaces\":{\"from\":\"All\"}}}]}}";
    char buf[512];
    snprintf(buf, sizeof(buf), gw, "mine", "ours", 18080);
    assert_int_equal(put_json(s, SG_KK_GATEWAY, buf), 1);
    snprintf(buf, sizeof(buf), gw, "other", "theirs", 18081);
    assert_int_equal(put_json(s, SG_KK_GATEWAY, buf), 1);
    const char *rt = "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\"},\"spec\":{\"parentRefs\":[%s],\"rules\":"
                     "[{\"backendRefs\":[{\"name\":\"svc\",\"port\":80}]}]}}";
    snprintf(buf, sizeof(buf), rt, "both", "{\"name\":\"other\"},{\"name\":\"mine\"}");
    assert_int_equal(put_json(s, SG_KK_HTTPROUTE, buf), 1);
    snprintf(buf, sizeof(buf), rt, "theirsonly", "{\"name\":\"other\"}");
    assert_int_equal(put_json(s, SG_KK_HTTPROUTE, buf), 1);
    /* GRPCRoutes are filtered the same way (a parentRef to their Gateway dropped, theirs alone left out). */
    snprintf(buf, sizeof(buf), rt, "grpc-both", "{\"name\":\"other\"},{\"name\":\"mine\"}");
    assert_int_equal(put_json(s, SG_KK_GRPCROUTE, buf), 1);
    snprintf(buf, sizeof(buf), rt, "grpc-theirs", "{\"name\":\"other\"}");
    assert_int_equal(put_json(s, SG_KK_GRPCROUTE, buf), 1);
    assert_int_equal(put_json(s, SG_KK_SERVICE, "{\"metadata\":{\"name\":\"svc\",\"namespace\":\"ns\"},\"spec\":"
                                                "{\"ports\":[{\"port\":80,\"targetPort\":8080}]}}"), 1);
    /* Policies on their route and on ours: only ours is written (theirs would name a route the loader lacks). */
    const char *pol = "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\"},\"spec\":{\"targetRef\":{\"group\":"
                      "\"gateway.networking.k8s.io\",\"kind\":\"HTTPRoute\",\"name\":\"%s\"},\"default\":"
                      "{\"timeouts\":{\"routeTimeout\":\"0s\"}}}}";
    snprintf(buf, sizeof(buf), pol, "pol-theirs", "theirsonly");
    assert_int_equal(put_json(s, SG_KK_ROUTEPOLICY, buf), 1);
    snprintf(buf, sizeof(buf), pol, "pol-ours", "both");
    assert_int_equal(put_json(s, SG_KK_ROUTEPOLICY, buf), 1);
    assert_int_equal(put_json(s, SG_KK_FRONTENDTLSPOLICY,
                              "{\"metadata\":{\"name\":\"ftls-theirs\",\"namespace\":\"ns\"},\"spec\":{\"targetRef\":"
                              "{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"Gateway\",\"name\":\"other\"}}}"),
                     1);
    /* A Service nobody here sends to, with its slice: left out (its churn must not rebuild anything). One a
     * HealthCheckPolicy targets: kept, or the policy would name a Service the loader lacks. */
    assert_int_equal(put_json(s, SG_KK_SERVICE, "{\"metadata\":{\"name\":\"unused\",\"namespace\":\"kube-system\"},"
                                                "\"spec\":{\"ports\":[{\"port\":53}]}}"), 1);
    assert_int_equal(put_json(s, SG_KK_ENDPOINTSLICE, "{\"metadata\":{\"name\":\"unused-1\",\"namespace\":"
                                                      "\"kube-system\",\"labels\":{\"kubernetes.io/service-name\":"
                                                      "\"unused\"}},\"addressType\":\"IPv4\",\"endpoints\":[]}"), 1);
    assert_int_equal(put_json(s, SG_KK_SERVICE, "{\"metadata\":{\"name\":\"probed\",\"namespace\":\"ns\"},"
                                                "\"spec\":{\"ports\":[{\"port\":80}]}}"), 1);
    assert_int_equal(put_json(s, SG_KK_HEALTHCHECKPOLICY, "{\"metadata\":{\"name\":\"hc\",\"namespace\":\"ns\"},"
                                                          "\"spec\":{\"targetRef\":{\"group\":\"\",\"kind\":"
                                                          "\"Service\",\"name\":\"probed\"},\"default\":{\"interval\":"
                                                          "\"5s\"}}}"), 1);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(sg_kbuild_write(s, "ssegate.io/gateway-controller", f), 7);
    fclose(f);
    assert_non_null(strstr(text, "\"name\": \"mine\""));
    assert_null(strstr(text, "\"name\": \"other\""));
    assert_null(strstr(text, "theirsonly"));
    assert_non_null(strstr(text, "grpc-both"));
    assert_null(strstr(text, "grpc-theirs"));
    assert_null(strstr(text, "GatewayClass"));
    assert_null(strstr(text, "pol-theirs"));
    assert_non_null(strstr(text, "pol-ours"));
    assert_null(strstr(text, "ftls-theirs"));
    assert_null(strstr(text, "unused"));
    assert_non_null(strstr(text, "\"name\": \"probed\""));
    /* The text is what file mode reads: it loads, and serves one listener with the filtered route. */
    sg_config_t *cfg = NULL;
    char *errs = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&errs, &elen);
    int rc = sg_config_load_ex("kube", text, len, SG_CONFIG_NO_DNS, ef, &cfg);
    fclose(ef);
    if (rc != 0)
        fprintf(stderr, "%s\n---\n%s\n", text, errs);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg->nbinds, 1);
    assert_int_equal(cfg->nroutes, 2);
    assert_int_equal(cfg->routes[0].kind + cfg->routes[1].kind, SG_ROUTE_HTTP + SG_ROUTE_GRPC);
    sg_config_unref(cfg);
    free(errs);
    free(text);
    sg_kstore_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framer_any_split),
        cmocka_unit_test(test_framer_line_cap),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_store_strips_and_skips_noops),
        cmocka_unit_test(test_store_slims_services_and_slices),
        cmocka_unit_test(test_store_relist_replaces_with_deletes),
        cmocka_unit_test(test_debounce),
        cmocka_unit_test(test_build_serves_only_our_gateways),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
