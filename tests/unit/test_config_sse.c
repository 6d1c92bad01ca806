/* test_config_sse.c: the SSEPolicy kind (ssegate.io/v1alpha1): defaults, every field, sectionName, precedence over a
 * route-wide policy, conflicts and refusals, and RoutePolicy's deprecated sse.heartbeatInterval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config/config.h"

#define BASE                                                                                                          \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  listeners:\n"            \
    "  - {name: http, protocol: HTTP, port: 80}\n---\n"                                                               \
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n"                        \
    "  parentRefs: [{name: gw}]\n  rules:\n"                                                                          \
    "  - name: live\n    matches: [{path: {type: PathPrefix, value: /live}}]\n"                                       \
    "    backendRefs: [{name: 10.0.0.1, port: 80}]\n"                                                                 \
    "  - matches: [{path: {type: PathPrefix, value: /}}]\n    backendRefs: [{name: 10.0.0.1, port: 80}]\n---\n"
#define SSEP(name, target, def)                                                                                       \
    "apiVersion: ssegate.io/v1alpha1\nkind: SSEPolicy\nmetadata: {name: " name "}\nspec:\n"                           \
    "  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r" target "}\n  default: " def "\n"

typedef struct result {
    int rc;
    sg_config_t *cfg;
    char *errs;
} result_t;

static result_t load(const char *yaml)
{
    result_t r = {0, NULL, NULL};
    size_t len = 0;
    FILE *f = open_memstream(&r.errs, &len);
    assert_non_null(f);
    r.rc = sg_config_load_ex("c.yaml", yaml, strlen(yaml), SG_CONFIG_NO_DNS, f, &r.cfg);
    fclose(f);
    return r;
}

static void done(result_t *r)
{
    sg_config_unref(r->cfg);
    free(r->errs);
}

#define HAS(r, s)                                                                                                    \
    do {                                                                                                             \
        if (strstr((r).errs, (s)) == NULL) {                                                                         \
            fprintf(stderr, "missing \"%s\" in:\n%s", (s), (r).errs);                                                \
            fail();                                                                                                  \
        }                                                                                                            \
    } while (0)

static void test_defaults_and_section(void **state)
{
    (void)state;
    result_t r = load(BASE SSEP("p", ", sectionName: live", "{sharing: {enabled: true}}"));
    assert_int_equal(r.rc, 0);
    const sg_rule_t *live = &r.cfg->routes[0].rules[0], *other = &r.cfg->routes[0].rules[1];
    assert_non_null(live->ssep);
    assert_null(other->ssep);
    assert_int_equal(r.cfg->nshared_rules, 1);
    const sg_sse_policy_t *p = live->ssep;
    assert_true(p->sharing);
    assert_false(p->public_stream);
    assert_int_equal(p->nkey_headers, 0);
    assert_int_equal(p->linger_ms, 5000);
    assert_int_equal(p->replay_max_events, 1000);
    assert_int_equal(p->replay_max_bytes, 1024 * 1024);
    assert_int_equal(p->replay_max_age_ms, 300000);
    assert_int_equal(p->on_too_old, SG_SSE_TOO_OLD_BACKEND);
    assert_int_equal(p->slow_action, SG_SSE_SLOW_REPLAY);
    assert_int_equal(p->max_retry_ms, 10000);
    assert_int_equal(p->on_ep_removed, SG_SSE_EP_KEEP);
    assert_int_equal(p->ep_removed_after_ms, 10000);
    assert_int_equal(live->heartbeat_ms, SG_TIMEOUT_UNSET);
    done(&r);
}

/* onEndpointRemoved: without sharing too; every refusal with its position. */
static void test_endpoint_removed(void **state)
{
    (void)state;
    result_t r = load(BASE SSEP("p", "", "{onEndpointRemoved: {action: Close, after: 2s}}"));
    assert_int_equal(r.rc, 0);
    const sg_sse_policy_t *p = r.cfg->routes[0].rules[1].ssep;
    assert_non_null(p);
    assert_false(p->sharing);
    assert_int_equal(p->on_ep_removed, SG_SSE_EP_CLOSE);
    assert_int_equal(p->ep_removed_after_ms, 2000);
    done(&r);
    r = load(BASE SSEP("p", "", "{onEndpointRemoved: {action: Close}}"));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->routes[0].rules[1].ssep->ep_removed_after_ms, 10000);
    done(&r);
    r = load(BASE SSEP("p", "", "{onEndpointRemoved: {action: Keep}}"));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->routes[0].rules[1].ssep->on_ep_removed, SG_SSE_EP_KEEP);
    done(&r);
    /* The unknown key is on line 25 (default:), at its column. */
    r = load(BASE SSEP("p", "", "{onEndpointRemoved: {action: Close, delay: 2s}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "c.yaml:25:48: SSEPolicy onEndpointRemoved: unknown field");
    HAS(r, "SSEPolicy onEndpointRemoved: unknown field \"delay\"");
    done(&r);
    r = load(BASE SSEP("p", "", "{onEndpointRemoved: {action: close}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy onEndpointRemoved.action: \"close\" (expected Keep or Close)");
    done(&r);
    r = load(BASE SSEP("p", "", "{onEndpointRemoved: {after: 5s}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy onEndpointRemoved.after applies to action Close only");
    done(&r);
    r = load(BASE SSEP("p", "", "{onEndpointRemoved: {action: Close, after: 2h}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy onEndpointRemoved.after: at most 1h");
    done(&r);
    r = load(BASE SSEP("p", "", "{onEndpointRemoved: Close}"));
    assert_int_equal(r.rc, -EINVAL);
    done(&r);
}

static void test_every_field(void **state)
{
    (void)state;
    result_t r = load(BASE SSEP("p", "", "\n    heartbeatInterval: 7s\n"
                                        "    sharing: {enabled: true, public: true, keyHeaders: [X-Tenant, accept],"
                                        " lingerAfterLastSubscriber: 0s}\n"
                                        "    replay: {maxEvents: 10, maxBytes: 4096, maxAge: 1m, onTooOld: live}\n"
                                        "    slowSubscriber: {action: close, maxLagEvents: 20, maxLagBytes: 8192}\n"
                                        "    failover: {maxRetryDelay: 2s}"));
    if (r.rc != 0)
        fprintf(stderr, "%s", r.errs);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->nshared_rules, 2);
    for (int i = 0; i < 2; i++) {
        const sg_rule_t *rule = &r.cfg->routes[0].rules[i];
        const sg_sse_policy_t *p = rule->ssep;
        assert_non_null(p);
        assert_int_equal(rule->heartbeat_ms, 7000);
        assert_true(p->public_stream);
        assert_int_equal(p->nkey_headers, 2);
        assert_string_equal(p->key_headers[0], "x-tenant");
        assert_string_equal(p->key_headers[1], "accept");
        assert_int_equal(p->linger_ms, 0);
        assert_int_equal(p->replay_max_events, 10);
        assert_int_equal(p->replay_max_bytes, 4096);
        assert_int_equal(p->replay_max_age_ms, 60000);
        assert_int_equal(p->on_too_old, SG_SSE_TOO_OLD_LIVE);
        assert_int_equal(p->slow_action, SG_SSE_SLOW_CLOSE);
        assert_int_equal(p->max_lag_events, 20);
        assert_int_equal(p->max_lag_bytes, 8192);
        assert_int_equal(p->max_retry_ms, 2000);
    }
    done(&r);
}

static void test_precedence_and_conflicts(void **state)
{
    (void)state;
    /* The rule's own policy wins over the route's, whatever the order. */
    result_t r = load(BASE SSEP("rule", ", sectionName: live", "{sharing: {enabled: true, public: true}}")
                      "---\n" SSEP("route", "", "{sharing: {enabled: true}}"));
    assert_int_equal(r.rc, 0);
    assert_true(r.cfg->routes[0].rules[0].ssep->public_stream);
    assert_false(r.cfg->routes[0].rules[1].ssep->public_stream);
    done(&r);
    r = load(BASE SSEP("route", "", "{sharing: {enabled: true}}")
             "---\n" SSEP("rule", ", sectionName: live", "{sharing: {enabled: true, public: true}}"));
    assert_int_equal(r.rc, 0);
    assert_true(r.cfg->routes[0].rules[0].ssep->public_stream);
    assert_false(r.cfg->routes[0].rules[1].ssep->public_stream);
    done(&r);
    r = load(BASE SSEP("a", "", "{sharing: {enabled: true}}") "---\n" SSEP("b", "", "{sharing: {enabled: true}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy default/b and SSEPolicy default/a (line");
    done(&r);
    r = load(BASE SSEP("a", ", sectionName: nope", "{sharing: {enabled: true}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy default/a: HTTPRoute default/r has no rule named \"nope\"");
    done(&r);
    r = load(BASE "apiVersion: ssegate.io/v1alpha1\nkind: SSEPolicy\nmetadata: {name: p}\nspec:\n"
                  "  targetRef: {kind: HTTPRoute, name: nothere}\n  default: {sharing: {enabled: true}}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy default/p targets HTTPRoute default/nothere, which does not exist");
    done(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    result_t r = load(BASE SSEP("p", "", "{sharing: {enabled: true, share: yes}, replay: {onTooOld: maybe}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy sharing: unknown field \"share\" (not supported, so refused rather than ignored)");
    HAS(r, "SSEPolicy replay.onTooOld: \"maybe\" (expected backend or live)");
    done(&r);
    r = load(BASE SSEP("p", "", "{replay: {maxEvents: 5}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "need sharing.enabled: true");
    done(&r);
    r = load(BASE SSEP("p", "", "{sharing: {enabled: true}, slowSubscriber: {maxLagEvents: 5}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "maxLagEvents/maxLagBytes apply to action close");
    done(&r);
    r = load(BASE SSEP("p", "", "{sharing: {enabled: true, keyHeaders: [Cookie]}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "\"cookie\" cannot be part of a sharing key");
    done(&r);
    r = load(BASE SSEP("p", "", "{sharing: {enabled: true, keyHeaders: [\"bad header\"]}}"));
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "is not a header name");
    done(&r);
    r = load(BASE "apiVersion: ssegate.io/v1alpha1\nkind: SSEPolicy\nmetadata: {name: p}\nspec:\n"
                  "  targetRef: {kind: Service, name: r}\n  default: {sharing: {enabled: true}}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy targetRef kind \"Service\" not supported (only HTTPRoute)");
    done(&r);
    r = load(BASE "apiVersion: ssegate.io/v1\nkind: SSEPolicy\nmetadata: {name: p}\nspec: {}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy: apiVersion \"ssegate.io/v1\" not supported (expected ssegate.io/v1alpha1)");
    done(&r);
    /* Other kinds of the group are still refused (fail closed). */
    r = load(BASE "apiVersion: ssegate.io/v1alpha1\nkind: FanoutPolicy\nmetadata: {name: p}\nspec: {}\n");
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "kind FanoutPolicy (ssegate.io/v1alpha1) is not supported");
    done(&r);
}

static void test_heartbeat_moved(void **state)
{
    (void)state;
    const char *rp = "apiVersion: alb.networking.azure.io/v1\nkind: RoutePolicy\nmetadata: {name: old}\nspec:\n"
                     "  targetRef: {kind: HTTPRoute, name: r}\n  default: {sse: {heartbeatInterval: 9s}}\n";
    char y[4096];
    snprintf(y, sizeof(y), "%s%s", BASE, rp);
    result_t r = load(y);
    assert_int_equal(r.rc, 0);
    HAS(r, "warning: RoutePolicy default/old: sse.heartbeatInterval is deprecated; set heartbeatInterval in an "
           "SSEPolicy (ssegate.io/v1alpha1) spec.default instead");
    assert_int_equal(r.cfg->routes[0].rules[0].heartbeat_ms, 9000);
    done(&r);
    /* Both places, the same value: fine; different values: an error naming both. */
    snprintf(y, sizeof(y), "%s%s---\n%s", BASE, rp, SSEP("new", "", "{heartbeatInterval: 9s}"));
    r = load(y);
    assert_int_equal(r.rc, 0);
    done(&r);
    snprintf(y, sizeof(y), "%s%s---\n%s", BASE, rp, SSEP("new", "", "{heartbeatInterval: 3s}"));
    r = load(y);
    assert_int_equal(r.rc, -EINVAL);
    HAS(r, "SSEPolicy default/new sets heartbeatInterval 3000ms, conflicting with the deprecated RoutePolicy "
           "sse.heartbeatInterval (9000ms)");
    done(&r);
    /* Heartbeat alone, without sharing. */
    r = load(BASE SSEP("new", "", "{heartbeatInterval: 0s}"));
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.cfg->routes[0].rules[1].heartbeat_ms, 0);
    assert_int_equal(r.cfg->nshared_rules, 0);
    assert_false(r.cfg->routes[0].rules[1].ssep->sharing);
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_section),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_precedence_and_conflicts),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_endpoint_removed),
        cmocka_unit_test(test_heartbeat_moved),
    };
    return cmocka_run_group_tests_name("config_sse", tests, NULL, NULL);
}
