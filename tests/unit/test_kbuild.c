/* test_kbuild.c: the kube build from the store's parsed documents (sg_kbuild_load) against the text it replaces: the
 * same store written as --dump-config's YAML and loaded leniently must give the same generation, the same messages
 * (line and column included) and the same per-object blame (object, rule, parentRef, listener); and a build parses
 * only the objects that changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/diag.h"
#include "config/route.h"
#include "kube/kbuild.h"
#include "kube/kstore.h"
#include "kube/kwatch.h"

#define CTL "ssegate.io/gateway-controller"

static void put(sg_kstore_t *s, int kind, const char *json)
{
    sg_kjson_t d;
    assert_int_equal(sg_kjson_parse(&d, json, strlen(json)), 0);
    assert_true(sg_kstore_put(s, kind, &d, 1) >= 0);
    sg_kjson_free(&d);
}

#define RT(name, body) "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":" \
    "\"" name "\",\"namespace\":\"ns\"},\"spec\":" body "}"

/* A store with a problem of every kind lenient mode blames, and objects it must not (a route half another
 * controller's, written filtered). */
static sg_kstore_t *store_with_errors(void)
{
    sg_kstore_t *s = sg_kstore_new();
    assert_non_null(s);
    put(s, SG_KK_GATEWAYCLASS, "{\"metadata\":{\"name\":\"ours\"},\"spec\":{\"controllerName\":\"" CTL "\"}}");
    put(s, SG_KK_GATEWAYCLASS, "{\"metadata\":{\"name\":\"theirs\"},\"spec\":{\"controllerName\":\"x.io/other\"}}");
    /* listener "tcp" is bad (UnsupportedProtocol), "http" serves */
    put(s, SG_KK_GATEWAY, "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"ns\"},\"spec\":{\"gatewayClassName\":\"ours\","
                          "\"listeners\":[{\"name\":\"tcp\",\"port\":9000,\"protocol\":\"TCP\"},{\"name\":\"http\","
                          "\"port\":8080,\"protocol\":\"HTTP\"}]}}");
    put(s, SG_KK_GATEWAY, "{\"metadata\":{\"name\":\"other\",\"namespace\":\"ns\"},\"spec\":{\"gatewayClassName\":"
                          "\"theirs\",\"listeners\":[{\"name\":\"http\",\"port\":8081,\"protocol\":\"HTTP\"}]}}");
    put(s, SG_KK_SERVICE, "{\"metadata\":{\"name\":\"svc\",\"namespace\":\"ns\"},\"spec\":{\"ports\":[{\"name\":\"http\","
                          "\"port\":80}]}}");
    put(s, SG_KK_ENDPOINTSLICE, "{\"metadata\":{\"name\":\"svc-1\",\"namespace\":\"ns\",\"labels\":{\"kubernetes.io/"
                                "service-name\":\"svc\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":"
                                "[\"10.0.0.1\"],\"conditions\":{\"ready\":true}},{\"addresses\":[\"10.0.0.2\"]}],"
                                "\"ports\":[{\"name\":\"http\",\"port\":8080}]}");
    put(s, SG_KK_HTTPROUTE, RT("good", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[{\"matches\":[{\"path\":{\"type\":"
                                       "\"PathPrefix\",\"value\":\"/good\"}}],\"backendRefs\":[{\"name\":\"svc\","
                                       "\"port\":80}]}]}"));
    /* rule 1 of 2 is bad */
    put(s, SG_KK_HTTPROUTE, RT("badrule", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[{\"matches\":[{\"path\":{"
                                          "\"type\":\"PathPrefix\",\"value\":\"/ok\"}}],\"backendRefs\":[{\"name\":"
                                          "\"svc\",\"port\":80}]},{\"matches\":[{\"path\":{\"type\":\"Nonsense\","
                                          "\"value\":\"/bad\"}}],\"backendRefs\":[{\"name\":\"svc\",\"port\":80}]}]}"));
    /* parentRef 0 of 2 is bad */
    put(s, SG_KK_HTTPROUTE, RT("badparent", "{\"parentRefs\":[{\"name\":\"gw\",\"port\":99999},{\"name\":\"gw\"}],"
                                            "\"rules\":[{\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":"
                                            "\"/bp\"}}],\"backendRefs\":[{\"name\":\"svc\",\"port\":80}]}]}"));
    /* bad as a whole (hostnames is not a list) */
    put(s, SG_KK_HTTPROUTE, RT("badwhole", "{\"parentRefs\":[{\"name\":\"gw\"}],\"hostnames\":\"a.example\",\"rules\":"
                                           "[{\"backendRefs\":[{\"name\":\"svc\",\"port\":80}]}]}"));
    /* to a Service that does not exist: kept, ResolvedRefs False */
    put(s, SG_KK_HTTPROUTE, RT("nosvc", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[{\"matches\":[{\"path\":{"
                                        "\"type\":\"PathPrefix\",\"value\":\"/nosvc\"}}],\"backendRefs\":[{\"name\":"
                                        "\"missing\",\"port\":80}]}]}"));
    /* ours and theirs: written with only our parentRef; its bad rule is still blamed on it */
    put(s, SG_KK_HTTPROUTE, RT("both", "{\"parentRefs\":[{\"name\":\"other\"},{\"name\":\"gw\"}],\"rules\":[{"
                                       "\"matches\":[{\"path\":{\"type\":\"Nonsense\",\"value\":\"/x\"}}]},{\"matches\":"
                                       "[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/both\"}}],\"backendRefs\":[{"
                                       "\"name\":\"svc\",\"port\":80}]}]}"));
    return s;
}

typedef struct result {
    int rc;
    sg_config_t *cfg;
    sg_config_diag_t d;
    char *errs;
} result_t;

static void from_text(sg_kstore_t *s, result_t *r)
{
    char *text = NULL, *errs = NULL;
    size_t len = 0, elen = 0;
    FILE *f = open_memstream(&text, &len);
    assert_true(sg_kbuild_write(s, CTL, f) > 0);
    fclose(f);
    FILE *ef = open_memstream(&errs, &elen);
    r->rc = sg_config_load_lenient("kube", text, len, SG_CONFIG_NO_DNS, ef, &r->d, &r->cfg);
    fclose(ef);
    r->errs = errs;
    free(text);
}

static void from_docs(sg_kbuild_t *b, sg_kstore_t *s, result_t *r, int want)
{
    char *errs = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&errs, &elen);
    int rc = sg_kbuild_load(b, s, CTL, ef, &r->d, &r->cfg);
    fclose(ef);
    assert_int_equal(rc, want);
    r->rc = rc == 1 || rc == 2 ? 0 : rc;
    r->errs = errs;
}

static void result_free(result_t *r)
{
    sg_config_unref(r->cfg);
    sg_config_diag_free(&r->d);
    free(r->errs);
}

static void same_cond(const sg_diag_cond_t *a, const sg_diag_cond_t *b)
{
    assert_int_equal(a->ok, b->ok);
    assert_string_equal(a->reason ? a->reason : "", b->reason ? b->reason : "");
    assert_string_equal(a->message ? a->message : "", b->message ? b->message : "");
}

static void same(const result_t *t, const result_t *d)
{
    assert_int_equal(t->rc, d->rc);
    assert_string_equal(t->errs ? t->errs : "", d->errs ? d->errs : "");
    assert_int_equal(t->d.nobjs, d->d.nobjs);
    assert_int_equal(t->d.passes, d->d.passes);
    for (size_t i = 0; i < t->d.nobjs; i++) {
        const sg_diag_obj_t *a = &t->d.objs[i], *b = &d->d.objs[i];
        assert_string_equal(a->kind, b->kind);
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->dropped, b->dropped);
        same_cond(&a->accepted, &b->accepted);
        assert_int_equal(a->nparents, b->nparents);
        for (size_t j = 0; j < a->nparents; j++) {
            same_cond(&a->parents[j].accepted, &b->parents[j].accepted);
            same_cond(&a->parents[j].resolved, &b->parents[j].resolved);
        }
        assert_int_equal(a->ndropped_rules, b->ndropped_rules);
        for (size_t j = 0; j < a->ndropped_rules; j++) {
            assert_int_equal(a->dropped_rules[j].index, b->dropped_rules[j].index);
            assert_string_equal(a->dropped_rules[j].message, b->dropped_rules[j].message);
        }
        assert_int_equal(a->nlisteners, b->nlisteners);
        for (size_t j = 0; j < a->nlisteners; j++) {
            assert_int_equal(a->listeners[j].served, b->listeners[j].served);
            assert_int_equal(a->listeners[j].attached, b->listeners[j].attached);
            same_cond(&a->listeners[j].accepted, &b->listeners[j].accepted);
        }
    }
    assert_int_equal(t->cfg != NULL, d->cfg != NULL);
    if (t->cfg != NULL) {
        assert_int_equal(t->cfg->nroutes, d->cfg->nroutes);
        assert_int_equal(t->cfg->nlisteners, d->cfg->nlisteners);
    }
}

/* Two generations route alike: the same routes, rules, backendRefs, weights and endpoints (in order), and each
 * rule is found by a request for its path, in that generation's own routes. */
static void same_cfg(const sg_config_t *a, const sg_config_t *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->nlisteners, b->nlisteners);
    assert_int_equal(a->nbinds, b->nbinds);
    assert_int_equal(a->nroutes, b->nroutes);
    for (size_t i = 0; i < a->nroutes; i++) {
        const sg_route_t *x = &a->routes[i], *y = &b->routes[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->nrules, y->nrules);
        for (size_t j = 0; j < x->nrules; j++) {
            const sg_rule_t *p = &x->rules[j], *q = &y->rules[j];
            assert_ptr_equal(q->route, y);
            assert_int_equal(p->total_weight, q->total_weight);
            assert_int_equal(p->nbackends, q->nbackends);
            for (size_t k = 0; k < p->nbackends; k++) {
                const sg_backend_t *u = &p->backends[k], *v = &q->backends[k];
                assert_string_equal(u->name ? u->name : "", v->name ? v->name : "");
                assert_int_equal(u->weight, v->weight);
                assert_int_equal(u->nendpoints, v->nendpoints);
                for (size_t e = 0; e < u->nendpoints; e++)
                    assert_string_equal(u->endpoints[e].label, v->endpoints[e].label);
            }
            for (size_t m = 0; m < q->nmatches; m++) {
                const sg_match_t *mm = &q->matches[m];
                if (mm->path_type != SG_MATCH_PREFIX || mm->path == NULL || mm->nheaders || mm->nquery ||
                    mm->method != NULL || mm->grpc != NULL)
                    continue;
                sg_route_req_t req = {.method = SG_STR("GET"), .host = SG_STR("x.example"),
                                      .path = {mm->path, strlen(mm->path)}};
                sg_route_match_t mt;
                assert_int_equal(sg_route_match(b, 8080, &req, &mt), 0);
                /* the rule found is in b's routes (the route tables were made for b), the same as in a */
                assert_true(mt.route >= b->routes && mt.route < b->routes + b->nroutes);
                sg_route_match_t ma;
                assert_int_equal(sg_route_match(a, 8080, &req, &ma), 0);
                assert_int_equal(mt.route - b->routes, ma.route - a->routes);
                assert_int_equal(mt.rule->index, ma.rule->index);
            }
        }
    }
}

static const sg_diag_obj_t *obj(const result_t *r, const char *kind, const char *name)
{
    const sg_diag_obj_t *o = sg_config_diag_find(&r->d, kind, "ns", name);
    assert_non_null(o);
    return o;
}

/* The documents give what the text gives, and every error is blamed where it lies. */
static void test_docs_blame_as_text(void **state)
{
    (void)state;
    sg_kstore_t *s = store_with_errors();
    sg_kbuild_t *b = sg_kbuild_new();
    assert_non_null(b);
    result_t t = {0}, d = {0};
    from_text(s, &t);
    from_docs(b, s, &d, 1);
    assert_int_equal(d.rc, 0);
    assert_true(d.d.passes > 1); /* errors were found and blamed, then dropped */
    same(&t, &d);
    /* and blamed on the right parts, with lines of the --dump-config text (line 1 the header, document i on 3 + 2i) */
    const sg_diag_obj_t *gw = obj(&d, "Gateway", "gw");
    assert_false(gw->dropped);
    assert_false(gw->listeners[0].accepted.ok);
    assert_true(gw->listeners[1].served);
    const sg_diag_obj_t *br = obj(&d, "HTTPRoute", "badrule");
    assert_false(br->dropped);
    assert_int_equal(br->ndropped_rules, 1);
    assert_int_equal(br->dropped_rules[0].index, 1);
    const sg_diag_obj_t *bp = obj(&d, "HTTPRoute", "badparent");
    assert_false(bp->dropped);
    assert_false(bp->parents[0].accepted.ok);
    assert_true(bp->parents[1].accepted.ok);
    assert_true(obj(&d, "HTTPRoute", "badwhole")->dropped);
    const sg_diag_obj_t *ns = obj(&d, "HTTPRoute", "nosvc");
    assert_false(ns->dropped);
    assert_false(ns->parents[0].resolved.ok);
    assert_string_equal(ns->parents[0].resolved.reason, "BackendNotFound");
    const sg_diag_obj_t *both = obj(&d, "HTTPRoute", "both");
    assert_false(both->dropped);
    assert_int_equal(both->nparents, 1); /* theirs was filtered out */
    assert_int_equal(both->ndropped_rules, 1);
    assert_int_equal(both->dropped_rules[0].index, 0);
    assert_false(obj(&d, "HTTPRoute", "good")->dropped);
    /* the messages carry the lines of the text: the header is line 1, document i's JSON line 3 + 2i, in the order
     * kind, namespace, name: Gateway gw, then HTTPRoutes badparent, badrule, badwhole, both, ... */
    assert_non_null(strstr(d.errs, "kube:3:"));
    assert_non_null(strstr(d.errs, "kube:5:"));
    assert_non_null(strstr(d.errs, "kube:7:"));
    assert_non_null(strstr(d.errs, "kube:9:"));
    assert_non_null(strstr(d.errs, "kube:11:"));
    result_free(&t);
    result_free(&d);
    sg_kbuild_free(b);
    sg_kstore_free(s);
}

/* An unchanged store is not rebuilt; a change rebuilds, and re-parses only the changed object. */
static void test_docs_kept_and_reparsed_on_change(void **state)
{
    (void)state;
    sg_kstore_t *s = store_with_errors();
    sg_kbuild_t *b = sg_kbuild_new();
    result_t r = {0};
    from_docs(b, s, &r, 1);
    result_free(&r);
    const sg_kobj_t *good = sg_kstore_get(s, SG_KK_HTTPROUTE, "ns", "good");
    const sg_kobj_t *slice = sg_kstore_get(s, SG_KK_ENDPOINTSLICE, "ns", "svc-1");
    assert_non_null(good->doc);
    assert_non_null(slice->doc);
    struct fy_document *gdoc = good->doc;
    memset(&r, 0, sizeof(r));
    from_docs(b, s, &r, 0); /* nothing changed */
    assert_null(r.cfg);
    result_free(&r);
    /* the slice changes: its endpoint 10.0.0.2 goes not ready and 10.0.0.3 comes */
    put(s, SG_KK_ENDPOINTSLICE, "{\"metadata\":{\"name\":\"svc-1\",\"namespace\":\"ns\",\"labels\":{\"kubernetes.io/"
                                "service-name\":\"svc\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":"
                                "[\"10.0.0.1\"]},{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":true}},{\"addresses\":[\"10.0.0.2\"],"
                                "\"conditions\":{\"ready\":false}}],\"ports\":[{\"name\":\"http\",\"port\":8080}]}");
    slice = sg_kstore_get(s, SG_KK_ENDPOINTSLICE, "ns", "svc-1");
    assert_null(slice->doc); /* dropped with its old JSON */
    memset(&r, 0, sizeof(r));
    from_docs(b, s, &r, 2); /* only a slice changed: a patch */
    assert_non_null(r.cfg);
    assert_ptr_equal(sg_kstore_get(s, SG_KK_HTTPROUTE, "ns", "good")->doc, gdoc); /* not parsed again */
    assert_non_null(slice->doc);
    /* the generation has the new endpoints */
    const sg_route_t *rt = NULL;
    for (size_t i = 0; i < r.cfg->nroutes; i++)
        if (strcmp(r.cfg->routes[i].name, "good") == 0)
            rt = &r.cfg->routes[i];
    assert_non_null(rt);
    assert_int_equal(rt->rules[0].backends[0].nendpoints, 2);
    assert_string_equal(rt->rules[0].backends[0].endpoints[0].label, "10.0.0.1:8080");
    assert_string_equal(rt->rules[0].backends[0].endpoints[1].label, "10.0.0.3:8080");
    result_t t = {0};
    from_text(s, &t);
    same_cfg(t.cfg, r.cfg); /* a patch leaves status as it was: only the generation is compared */
    assert_int_equal(r.d.nobjs, 0);
    result_free(&t);
    result_free(&r);
    /* a route changes: a full load again, blamed as the text is */
    put(s, SG_KK_HTTPROUTE, RT("good", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[{\"matches\":[{\"path\":{\"type\":"
                                       "\"PathPrefix\",\"value\":\"/better\"}}],\"backendRefs\":[{\"name\":\"svc\","
                                       "\"port\":80}]}]}"));
    memset(&r, 0, sizeof(r));
    from_docs(b, s, &r, 1);
    memset(&t, 0, sizeof(t));
    from_text(s, &t);
    same(&t, &r);
    same_cfg(t.cfg, r.cfg);
    result_free(&t);
    result_free(&r);
    sg_kbuild_free(b);
    sg_kstore_free(s);
}

/* A null ready (the API server's JSON for a nil *bool) is ready, as the API documents ("consumers should interpret
 * this unknown state as ready"); a null serving or terminating changes nothing. Both ways (the store's documents,
 * and --dump-config's text loaded leniently) serve 10.0.0.1-3 and skip 10.0.0.4 (ready false) with no message. */
static void test_null_ready_serves(void **state)
{
    (void)state;
    sg_kstore_t *s = store_with_errors();
    put(s, SG_KK_ENDPOINTSLICE, "{\"metadata\":{\"name\":\"svc-1\",\"namespace\":\"ns\",\"labels\":{\"kubernetes.io/"
                                "service-name\":\"svc\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":"
                                "[\"10.0.0.1\"],\"conditions\":{\"ready\":null}},{\"addresses\":[\"10.0.0.2\"],"
                                "\"conditions\":{\"ready\":null,\"serving\":null,\"terminating\":null}},{\"addresses\":"
                                "[\"10.0.0.3\"],\"conditions\":null},{\"addresses\":[\"10.0.0.4\"],\"conditions\":"
                                "{\"ready\":false,\"serving\":null,\"terminating\":null}}],\"ports\":[{\"name\":"
                                "\"http\",\"port\":8080}]}");
    const sg_kobj_t *slice = sg_kstore_get(s, SG_KK_ENDPOINTSLICE, "ns", "svc-1");
    assert_non_null(slice);
    assert_null(strstr(slice->json, "null")); /* slimmed as ready: no conditions kept */
    assert_null(strstr(slice->json, "10.0.0.4"));
    sg_kbuild_t *b = sg_kbuild_new();
    result_t r = {0};
    from_docs(b, s, &r, 1);
    assert_non_null(r.cfg);
    assert_null(strstr(r.errs ? r.errs : "", "conditions"));
    const sg_route_t *rt = NULL;
    for (size_t i = 0; i < r.cfg->nroutes; i++)
        if (strcmp(r.cfg->routes[i].name, "good") == 0)
            rt = &r.cfg->routes[i];
    assert_non_null(rt);
    assert_int_equal(rt->rules[0].backends[0].nendpoints, 3);
    assert_string_equal(rt->rules[0].backends[0].endpoints[0].label, "10.0.0.1:8080");
    assert_string_equal(rt->rules[0].backends[0].endpoints[1].label, "10.0.0.2:8080");
    assert_string_equal(rt->rules[0].backends[0].endpoints[2].label, "10.0.0.3:8080");
    result_t t = {0};
    from_text(s, &t);
    same(&t, &r);
    result_free(&t);
    result_free(&r);
    sg_kbuild_free(b);
    sg_kstore_free(s);
}

/* ---- patches: a change to EndpointSlices only ---- */

#define SVC(name, ports) "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns\"},\"spec\":{\"ports\":" ports "}}"

/* Slice `name` of Service svc: n endpoints from a pool that the seed picks, each ready, not ready or of unknown
 * readiness, and one more (ready, its address from `tag`) so that every call changes the slice. */
static void put_slice(sg_kstore_t *s, const char *name, const char *svc, const char *port, unsigned n, unsigned *seed,
                      unsigned tag)
{
    char j[4096];
    int o = snprintf(j, sizeof(j), "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"ns\",\"labels\":{\"kubernetes.io/"
                     "service-name\":\"%s\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":[\"10.200.%u.%u\"]}",
                     name, svc, tag / 250, tag % 250 + 1);
    for (unsigned i = 0; i < n; i++) {
        unsigned r = (unsigned)rand_r(seed);
        const char *cond = r % 3 == 0 ? "" : r % 3 == 1 ? ",\"conditions\":{\"ready\":true}" : ",\"conditions\":{\"ready\":false}";
        o += snprintf(j + o, sizeof(j) - (size_t)o, ",{\"addresses\":[\"10.0.%u.%u\"]%s}", (r >> 4) % 3, (r >> 8) % 6 + 1, cond);
    }
    snprintf(j + o, sizeof(j) - (size_t)o, "],\"ports\":[%s]}", port);
    put(s, SG_KK_ENDPOINTSLICE, j);
}

#define GWJ "{\"metadata\":{\"name\":\"gw\",\"namespace\":\"ns\"},\"spec\":{\"gatewayClassName\":\"ours\",\"listeners\":" \
    "[{\"name\":\"http\",\"port\":8080,\"protocol\":\"HTTP\"}]}}"
#define BREF(svc, port, w) "{\"name\":\"" svc "\",\"port\":" port ",\"weight\":" w "}"
#define RULE(path, refs) "{\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"" path "\"}}],\"backendRefs\":[" refs "]}"

/* Services a (a named port), b (an unnamed one), c (two slices), d (not sent to by any route), and routes that
 * weigh them against each other, so that a Service whose endpoints all go makes the rule's total weight change. */
static sg_kstore_t *store_for_patches(unsigned *seed)
{
    sg_kstore_t *s = sg_kstore_new();
    assert_non_null(s);
    put(s, SG_KK_GATEWAYCLASS, "{\"metadata\":{\"name\":\"ours\"},\"spec\":{\"controllerName\":\"" CTL "\"}}");
    put(s, SG_KK_GATEWAY, GWJ);
    put(s, SG_KK_SERVICE, SVC("a", "[{\"name\":\"http\",\"port\":80},{\"name\":\"admin\",\"port\":81}]"));
    put(s, SG_KK_SERVICE, SVC("b", "[{\"port\":80}]"));
    put(s, SG_KK_SERVICE, SVC("c", "[{\"name\":\"web\",\"port\":80}]"));
    put(s, SG_KK_SERVICE, SVC("d", "[{\"port\":80}]"));
    put_slice(s, "a-1", "a", "{\"name\":\"http\",\"port\":8080},{\"name\":\"admin\",\"port\":9090}", 3, seed, 0);
    put_slice(s, "b-1", "b", "{\"port\":7070}", 2, seed, 0);
    put_slice(s, "c-1", "c", "{\"name\":\"web\",\"port\":6060}", 2, seed, 0);
    put_slice(s, "c-2", "c", "{\"name\":\"web\",\"port\":6061}", 2, seed, 0);
    put_slice(s, "d-1", "d", "{\"port\":5050}", 2, seed, 0);
    put(s, SG_KK_HTTPROUTE, RT("r1", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[" RULE("/a", BREF("a", "80", "1"))
                                     "," RULE("/admin", BREF("a", "81", "1")) "]}"));
    put(s, SG_KK_HTTPROUTE, RT("r2", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[" RULE("/ab", BREF("a", "80", "1")
                                     "," BREF("b", "80", "3")) "]}"));
    put(s, SG_KK_HTTPROUTE, RT("r3", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[" RULE("/c", BREF("c", "80", "2")
                                     "," BREF("b", "80", "5")) "," RULE("/none", BREF("nosuch", "80", "1")) "]}"));
    return s;
}

/* Builds the store (want: sg_kbuild_load's result), loads its --dump-config text in full, and checks that both route
 * alike and, for a full load, blame alike. Returns the rules with no weight left (no endpoint in any backendRef). */
static size_t build_and_compare(sg_kbuild_t *b, sg_kstore_t *s, int want)
{
    result_t r = {0}, t = {0};
    from_docs(b, s, &r, want);
    from_text(s, &t);
    assert_int_equal(t.rc, 0);
    if (want == 1)
        same(&t, &r);
    same_cfg(t.cfg, r.cfg);
    size_t emptied = 0;
    for (size_t q = 0; q < t.cfg->nroutes; q++)
        for (size_t u = 0; u < t.cfg->routes[q].nrules; u++)
            emptied += t.cfg->routes[q].rules[u].total_weight == 0;
    result_free(&t);
    result_free(&r);
    return emptied;
}

/* Many random changes to slices, each built as a patch, each routing as the full load of the same store does;
 * now and then a route changes, which loads in full, and patches follow from that load. */
static void test_patch_equals_full_load(void **state)
{
    (void)state;
    unsigned seed = 12345;
    sg_kstore_t *s = store_for_patches(&seed);
    sg_kbuild_t *b = sg_kbuild_new();
    build_and_compare(b, s, 1);
    static const char *const names[] = {"a-1", "b-1", "c-1", "c-2"};
    static const char *const svcs[] = {"a", "b", "c", "c"};
    static const char *const ports[] = {"{\"name\":\"http\",\"port\":8080},{\"name\":\"admin\",\"port\":9090}",
                                        "{\"port\":7070}", "{\"name\":\"web\",\"port\":6060}",
                                        "{\"name\":\"web\",\"port\":6061}"};
    size_t emptied = 0;
    for (unsigned i = 1; i <= 300; i++) {
        int want = 2;
        if (i % 50 == 0) {
            char path[32], j[1024];
            snprintf(path, sizeof(path), "/a%u", i);
            snprintf(j, sizeof(j), RT("r1", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[{\"matches\":[{\"path\":{"
                     "\"type\":\"PathPrefix\",\"value\":\"%s\"}}],\"backendRefs\":[" BREF("a", "80", "1") "]}]}"), path);
            put(s, SG_KK_HTTPROUTE, j);
            want = 1;
        }
        unsigned k = (unsigned)rand_r(&seed) % 4, n = (unsigned)rand_r(&seed) % 5;
        put_slice(s, names[k], svcs[k], ports[k], n, &seed, i);
        if (i % 7 == 0) /* two Services in one patch */
            put_slice(s, names[(k + 1) % 4], svcs[(k + 1) % 4], ports[(k + 1) % 4], n, &seed, i + 1000);
        if (i % 11 == 0) /* a Service no route sends to: not in the build at all */
            put_slice(s, "d-1", "d", "{\"port\":5050}", 1, &seed, i);
        emptied += build_and_compare(b, s, want);
    }
    assert_int_equal(sg_kbuild_patches(b), 300 - 300 / 50);
    assert_int_equal(sg_kbuild_walks(b), 300 - 300 / 50); /* each without selecting again */
    /* what a change can matter to: the Services the routes name (one that does not exist too), not d */
    assert_true(sg_kbuild_needs_service(b, "ns", "a"));
    assert_true(sg_kbuild_needs_service(b, "ns", "c"));
    assert_true(sg_kbuild_needs_service(b, "ns", "nosuch"));
    assert_false(sg_kbuild_needs_service(b, "ns", "d"));
    assert_false(sg_kbuild_needs_service(b, "other", "a"));
    assert_true(emptied > 0); /* rules lost all their endpoints on the way (and the patches weighed them so) */
    sg_kbuild_free(b);
    sg_kstore_free(s);
}

/* A build that walks the kept selection hashes its input as a selection does: after walks and patches, a change that
 * makes the build select again (an object comes that the selection leaves out) finds nothing changed; and a change to
 * anything but a slice's contents selects again. */
static void test_kept_selection(void **state)
{
    (void)state;
    unsigned seed = 99;
    sg_kstore_t *s = store_for_patches(&seed);
    /* a route half another controller's, written filtered: its document is not the stored one */
    put(s, SG_KK_GATEWAYCLASS, "{\"metadata\":{\"name\":\"theirs\"},\"spec\":{\"controllerName\":\"x.io/other\"}}");
    put(s, SG_KK_GATEWAY, "{\"metadata\":{\"name\":\"other\",\"namespace\":\"ns\"},\"spec\":{\"gatewayClassName\":"
                          "\"theirs\",\"listeners\":[{\"name\":\"http\",\"port\":8081,\"protocol\":\"HTTP\"}]}}");
    put(s, SG_KK_HTTPROUTE, RT("both", "{\"parentRefs\":[{\"name\":\"other\"},{\"name\":\"gw\"}],\"rules\":["
                                       RULE("/both", BREF("b", "80", "1")) "]}"));
    sg_kbuild_t *b = sg_kbuild_new();
    build_and_compare(b, s, 1);
    result_t r = {0};
    from_docs(b, s, &r, 0); /* nothing changed: the walk says so */
    result_free(&r);
    assert_int_equal(sg_kbuild_walks(b), 1);
    put_slice(s, "b-1", "b", "{\"port\":7070}", 3, &seed, 1);
    build_and_compare(b, s, 2);
    put_slice(s, "d-1", "d", "{\"port\":5050}", 3, &seed, 1); /* a slice the selection leaves out */
    memset(&r, 0, sizeof(r));
    from_docs(b, s, &r, 0);
    result_free(&r);
    assert_int_equal(sg_kbuild_walks(b), 3);
    /* a Service no route names comes: the shape moves, the build selects again, and finds the patched input */
    put(s, SG_KK_SERVICE, SVC("e", "[{\"port\":80}]"));
    memset(&r, 0, sizeof(r));
    from_docs(b, s, &r, 0);
    result_free(&r);
    assert_int_equal(sg_kbuild_walks(b), 3);
    put_slice(s, "c-2", "c", "{\"name\":\"web\",\"port\":6061}", 1, &seed, 2);
    build_and_compare(b, s, 2);
    assert_int_equal(sg_kbuild_walks(b), 4);
    /* a slice moved to another Service, a Service changed, a slice gone: each selects again */
    put_slice(s, "c-2", "b", "{\"port\":6061}", 1, &seed, 3);
    build_and_compare(b, s, 1);
    put(s, SG_KK_SERVICE, SVC("b", "[{\"port\":80},{\"name\":\"x\",\"port\":81}]"));
    build_and_compare(b, s, 1);
    assert_int_equal(sg_kstore_delete(s, SG_KK_ENDPOINTSLICE, "ns", "c-2"), 1);
    build_and_compare(b, s, 1);
    assert_int_equal(sg_kbuild_walks(b), 4);
    put_slice(s, "c-1", "c", "{\"name\":\"web\",\"port\":6060}", 2, &seed, 4);
    build_and_compare(b, s, 2);
    assert_int_equal(sg_kbuild_walks(b), 5);
    sg_kbuild_free(b);
    sg_kstore_free(s);
}

/* What a patch cannot carry is loaded in full: a slice added, removed or moved to another Service, a slice the loader
 * reports on, a Service that lacks the port a route names. A patch outlives the full load it shares data with. */
static void test_patch_falls_back(void **state)
{
    (void)state;
    unsigned seed = 7;
    sg_kstore_t *s = store_for_patches(&seed);
    sg_kbuild_t *b = sg_kbuild_new();
    assert_true(sg_kbuild_needs_service(b, "ns", "d")); /* nothing selected yet: every change may matter */
    build_and_compare(b, s, 1);
    /* a new slice of a */
    put_slice(s, "a-2", "a", "{\"name\":\"http\",\"port\":8081}", 2, &seed, 1);
    build_and_compare(b, s, 1);
    /* a slice with an address that is none: the full load reports it */
    put(s, SG_KK_ENDPOINTSLICE, "{\"metadata\":{\"name\":\"a-2\",\"namespace\":\"ns\",\"labels\":{\"kubernetes.io/"
                                "service-name\":\"a\"}},\"addressType\":\"IPv4\",\"endpoints\":[{\"addresses\":"
                                "[\"not-an-ip\"]}],\"ports\":[{\"name\":\"http\",\"port\":8081}]}");
    result_t r = {0};
    from_docs(b, s, &r, 1);
    assert_non_null(strstr(r.errs, "not an IP address"));
    result_free(&r);
    put_slice(s, "a-1", "a", "{\"name\":\"http\",\"port\":8080},{\"name\":\"admin\",\"port\":9090}", 1, &seed, 9);
    build_and_compare(b, s, 1); /* a's slices, one still bad: the patch reads it, and leaves it to the full load */
    /* mended: a patch, which reads a's slices afresh (the last load had dropped the bad one) */
    put_slice(s, "a-2", "a", "{\"name\":\"http\",\"port\":8081}", 1, &seed, 2);
    build_and_compare(b, s, 2);
    /* moved to Service b */
    put_slice(s, "a-2", "b", "{\"port\":8081}", 1, &seed, 3);
    build_and_compare(b, s, 1);
    /* a route to port 82 of a, which a lacks: a warning the full load gives; a change to a's slices loads in full */
    put(s, SG_KK_HTTPROUTE, RT("r4", "{\"parentRefs\":[{\"name\":\"gw\"}],\"rules\":[" RULE("/a82", BREF("a", "82", "1")) "]}"));
    memset(&r, 0, sizeof(r));
    from_docs(b, s, &r, 1);
    assert_non_null(strstr(r.errs, "has no port 82"));
    result_free(&r);
    put_slice(s, "a-1", "a", "{\"name\":\"http\",\"port\":8080},{\"name\":\"admin\",\"port\":9090}", 2, &seed, 4);
    build_and_compare(b, s, 1);
    /* c's slices are still patched */
    put_slice(s, "c-1", "c", "{\"name\":\"web\",\"port\":6060}", 3, &seed, 5);
    memset(&r, 0, sizeof(r));
    from_docs(b, s, &r, 2);
    /* the patch outlives the builder and every other generation: the full load it shares data with stays */
    sg_kbuild_free(b);
    result_t t = {0};
    from_text(s, &t);
    same_cfg(t.cfg, r.cfg);
    result_free(&t);
    result_free(&r);
    sg_kstore_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_blame_as_text),
        cmocka_unit_test(test_kept_selection),
        cmocka_unit_test(test_docs_kept_and_reparsed_on_change),
        cmocka_unit_test(test_null_ready_serves),
        cmocka_unit_test(test_patch_equals_full_load),
        cmocka_unit_test(test_patch_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
