/* config_ssepolicy.c: the ssegate.io/v1alpha1 SSEPolicy kind (shared event streams, replay, heartbeats) and the
 * rules it applies to once every document is read. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

#define DEFAULT_LINGER_MS 5000
#define DEFAULT_RING_EVENTS 1000
#define DEFAULT_RING_BYTES (1024 * 1024)
#define DEFAULT_RING_AGE_MS (5 * 60 * 1000)
#define DEFAULT_MAX_RETRY_MS 10000
#define DEFAULT_EP_REMOVED_AFTER_MS 10000
#define MAX_EP_REMOVED_AFTER_MS (60 * 60 * 1000)
#define MAX_RING_EVENTS 1000000
#define MAX_KEY_HEADERS 16

static bool get_flag(loader_t *ld, struct fy_node *m, const char *key, bool *out, pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL)
        return false;
    char *s = scalar_str(ld, v, key, at);
    if (s != NULL && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        *out = strcmp(s, "true") == 0;
        return true;
    }
    if (s != NULL)
        ERR(ld, npos(v, at), "%s: expected true or false", key);
    return false;
}

static void parse_sharing(loader_t *ld, struct fy_node *sh, pos_t at, sg_sse_policy_t *p)
{
    check_keys(ld, sh, "SSEPolicy sharing", KEYS("enabled", "public", "keyHeaders", "lingerAfterLastSubscriber"));
    get_flag(ld, sh, "enabled", &p->sharing, at);
    get_flag(ld, sh, "public", &p->public_stream, at);
    int64_t linger;
    if (get_duration(ld, sh, "lingerAfterLastSubscriber", &linger, at))
        p->linger_ms = linger;
    struct fy_node *kh = get_seq(ld, sh, "keyHeaders", false, at);
    if (kh == NULL)
        return;
    size_t n = seq_len(kh);
    if (n > MAX_KEY_HEADERS) {
        ERR(ld, npos(kh, at), "SSEPolicy sharing.keyHeaders: at most %d headers", MAX_KEY_HEADERS);
        return;
    }
    p->key_headers = aalloc(ld, (n ? n : 1) * sizeof(char *));
    void *it = NULL;
    struct fy_node *e;
    while ((e = fy_node_sequence_iterate(kh, &it)) != NULL) {
        char *s = scalar_str(ld, e, "keyHeaders[]", at);
        if (s == NULL)
            continue;
        if (!is_token(s)) {
            ERR(ld, npos(e, at), "SSEPolicy sharing.keyHeaders: \"%s\" is not a header name", s);
            continue;
        }
        for (char *c = s; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        /* The credentials rule is decided by the policy's `public`, never by naming a header in the key. */
        if (strcmp(s, "authorization") == 0 || strcmp(s, "cookie") == 0 || strcmp(s, "last-event-id") == 0) {
            ERR(ld, npos(e, at), "SSEPolicy sharing.keyHeaders: \"%s\" cannot be part of a sharing key (requests "
                "with credentials share only when the policy sets public: true; Last-Event-ID selects a replay)", s);
            continue;
        }
        p->key_headers[p->nkey_headers++] = s;
    }
}

static void parse_replay(loader_t *ld, struct fy_node *rp, pos_t at, sg_sse_policy_t *p)
{
    check_keys(ld, rp, "SSEPolicy replay", KEYS("maxEvents", "maxBytes", "maxAge", "onTooOld"));
    long v;
    if (get_int(ld, rp, "maxEvents", 0, MAX_RING_EVENTS, false, &v, at))
        p->replay_max_events = (uint32_t)v;
    if (get_int(ld, rp, "maxBytes", 0, 1L << 30, false, &v, at))
        p->replay_max_bytes = (uint64_t)v;
    int64_t age;
    if (get_duration(ld, rp, "maxAge", &age, at))
        p->replay_max_age_ms = age;
    char *o = get_str(ld, rp, "onTooOld", false, at);
    if (o != NULL) {
        if (strcmp(o, "backend") == 0)
            p->on_too_old = SG_SSE_TOO_OLD_BACKEND;
        else if (strcmp(o, "live") == 0)
            p->on_too_old = SG_SSE_TOO_OLD_LIVE;
        else
            ERR(ld, npos(field(rp, "onTooOld"), at), "SSEPolicy replay.onTooOld: \"%s\" (expected backend or live)",
                o);
    }
}

static void parse_slow(loader_t *ld, struct fy_node *sl, pos_t at, sg_sse_policy_t *p)
{
    check_keys(ld, sl, "SSEPolicy slowSubscriber", KEYS("action", "maxLagEvents", "maxLagBytes"));
    char *a = get_str(ld, sl, "action", false, at);
    if (a != NULL) {
        if (strcmp(a, "replay") == 0)
            p->slow_action = SG_SSE_SLOW_REPLAY;
        else if (strcmp(a, "close") == 0)
            p->slow_action = SG_SSE_SLOW_CLOSE;
        else
            ERR(ld, npos(field(sl, "action"), at), "SSEPolicy slowSubscriber.action: \"%s\" (expected replay or "
                "close)", a);
    }
    long v;
    if (get_int(ld, sl, "maxLagEvents", 1, 100000000, false, &v, at))
        p->max_lag_events = (uint32_t)v;
    if (get_int(ld, sl, "maxLagBytes", 1, 1L << 30, false, &v, at))
        p->max_lag_bytes = (uint64_t)v;
    /* With replay, a lagging subscriber is served from the ring until its position leaves it: the ring's bounds
     * are the lag bound, and a second one could not be enforced differently from close. */
    if (p->slow_action == SG_SSE_SLOW_REPLAY && (p->max_lag_events || p->max_lag_bytes))
        ERR(ld, npos(sl, at), "SSEPolicy slowSubscriber: maxLagEvents/maxLagBytes apply to action close; with "
            "replay the ring's bounds (replay.maxEvents, maxBytes, maxAge) bound the lag");
}

static void parse_ep_removed(loader_t *ld, struct fy_node *er, pos_t at, sg_sse_policy_t *p)
{
    check_keys(ld, er, "SSEPolicy onEndpointRemoved", KEYS("action", "after"));
    char *a = get_str(ld, er, "action", false, at);
    if (a != NULL) {
        if (strcmp(a, "Keep") == 0)
            p->on_ep_removed = SG_SSE_EP_KEEP;
        else if (strcmp(a, "Close") == 0)
            p->on_ep_removed = SG_SSE_EP_CLOSE;
        else
            ERR(ld, npos(field(er, "action"), at), "SSEPolicy onEndpointRemoved.action: \"%s\" (expected Keep or "
                "Close)", a);
    }
    int64_t d;
    if (get_duration(ld, er, "after", &d, at)) {
        if (d > MAX_EP_REMOVED_AFTER_MS)
            ERR(ld, npos(field(er, "after"), at), "SSEPolicy onEndpointRemoved.after: at most 1h");
        else
            p->ep_removed_after_ms = d;
        if (p->on_ep_removed != SG_SSE_EP_CLOSE)
            ERR(ld, npos(field(er, "after"), at), "SSEPolicy onEndpointRemoved.after applies to action Close only");
    }
}

void sg__config_parse_sse_policy(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t md;
    if (!parse_meta(ld, root, at, &md))
        return;
    struct fy_node *spec = get_map(ld, root, "spec", true, at);
    if (spec == NULL)
        return;
    pos_t sp = npos(spec, at);
    check_keys(ld, spec, "SSEPolicy spec", KEYS("targetRef", "default"));
    struct fy_node *tr = get_map(ld, spec, "targetRef", true, sp);
    if (tr == NULL)
        return;
    pos_t tp = npos(tr, sp);
    check_keys(ld, tr, "SSEPolicy targetRef", KEYS("group", "kind", "name", "namespace", "sectionName"));
    char *group = get_str(ld, tr, "group", false, tp);
    char *kind = get_str(ld, tr, "kind", true, tp);
    ssepol_t *e = VPUSH(ld, ld->ssepols, ld->nssepols, ld->capssepols);
    sg_sse_policy_t *p = aalloc(ld, sizeof(*p));
    e->p = p;
    e->pos = at;
    e->tpos = tp;
    e->heartbeat_ms = SG_TIMEOUT_UNSET;
    p->ns = md.ns;
    p->name = md.name;
    p->linger_ms = DEFAULT_LINGER_MS;
    p->replay_max_events = DEFAULT_RING_EVENTS;
    p->replay_max_bytes = DEFAULT_RING_BYTES;
    p->replay_max_age_ms = DEFAULT_RING_AGE_MS;
    p->max_retry_ms = DEFAULT_MAX_RETRY_MS;
    p->ep_removed_after_ms = DEFAULT_EP_REMOVED_AFTER_MS;
    e->tname = get_str(ld, tr, "name", true, tp);
    e->tns = get_str(ld, tr, "namespace", false, tp);
    if (e->tns == NULL)
        e->tns = md.ns;
    e->section = get_str(ld, tr, "sectionName", false, tp);
    if (group != NULL && group[0] != '\0' && strcmp(group, "gateway.networking.k8s.io") != 0)
        ERR(ld, npos(field(tr, "group"), tp), "SSEPolicy targetRef group \"%s\" not supported (expected "
            "gateway.networking.k8s.io)", group);
    if (kind && strcmp(kind, "HTTPRoute") != 0) {
        ERR(ld, npos(field(tr, "kind"), tp), "SSEPolicy targetRef kind \"%s\" not supported (only HTTPRoute)", kind);
        e->tname = NULL;
    }
    struct fy_node *def = get_map(ld, spec, "default", true, sp);
    if (def == NULL)
        return;
    pos_t dp = npos(def, sp);
    check_keys(ld, def, "SSEPolicy default", KEYS("sharing", "replay", "slowSubscriber", "heartbeatInterval",
                                                  "failover", "onEndpointRemoved"));
    if (get_duration(ld, def, "heartbeatInterval", &e->heartbeat_ms, dp))
        e->hpos = npos(field(def, "heartbeatInterval"), dp);
    struct fy_node *sh = get_map(ld, def, "sharing", false, dp);
    if (sh != NULL)
        parse_sharing(ld, sh, npos(sh, dp), p);
    struct fy_node *rp = get_map(ld, def, "replay", false, dp);
    if (rp != NULL)
        parse_replay(ld, rp, npos(rp, dp), p);
    struct fy_node *sl = get_map(ld, def, "slowSubscriber", false, dp);
    if (sl != NULL)
        parse_slow(ld, sl, npos(sl, dp), p);
    struct fy_node *fo = get_map(ld, def, "failover", false, dp);
    if (fo != NULL) {
        pos_t fp = npos(fo, dp);
        check_keys(ld, fo, "SSEPolicy failover", KEYS("maxRetryDelay"));
        int64_t d;
        if (get_duration(ld, fo, "maxRetryDelay", &d, fp))
            p->max_retry_ms = d;
    }
    struct fy_node *er = get_map(ld, def, "onEndpointRemoved", false, dp);
    if (er != NULL)
        parse_ep_removed(ld, er, npos(er, dp), p);
    bool share_opts = sh != NULL && (field(sh, "keyHeaders") != NULL || field(sh, "public") != NULL ||
                                     field(sh, "lingerAfterLastSubscriber") != NULL);
    if (!p->sharing && (share_opts || rp != NULL || sl != NULL || fo != NULL))
        ERR(ld, dp, "SSEPolicy %s/%s: replay, slowSubscriber, failover and sharing settings need "
            "sharing.enabled: true (they apply to shared streams only)", p->ns, p->name);
}

void sg__config_apply_sse_policies(loader_t *ld, sg_config_t *cfg)
{
    for (size_t i = 0; i < ld->nssepols; i++) {
        ssepol_t *e = &ld->ssepols[i];
        if (e->tname == NULL)
            continue;
        sg_route_t *rt = NULL;
        for (size_t j = 0; j < ld->nroutes && rt == NULL; j++)
            if (strcmp(ld->routes[j].name, e->tname) == 0 && strcmp(ld->routes[j].ns, e->tns) == 0)
                rt = &ld->routes[j];
        if (rt == NULL) {
            ERR(ld, e->tpos, "SSEPolicy %s/%s targets HTTPRoute %s/%s, which does not exist", e->p->ns, e->p->name,
                e->tns, e->tname);
            continue;
        }
        bool found = false;
        for (size_t k = 0; k < rt->nrules; k++) {
            sg_rule_t *r = &rt->rules[k];
            if (e->section != NULL && (r->name == NULL || strcmp(r->name, e->section) != 0))
                continue;
            found = true;
            /* A policy naming the rule (sectionName) is more specific than one for the whole route and wins
             * (Gateway API policy attachment); two at the same level conflict. */
            bool mine_specific = e->section != NULL;
            for (size_t j = 0; j < ld->nssepols; j++) {
                ssepol_t *o = &ld->ssepols[j];
                if (j == i || o->tname == NULL || o->p != r->ssep)
                    continue;
                bool other_specific = o->section != NULL;
                if (other_specific == mine_specific)
                    ERR(ld, e->tpos, "SSEPolicy %s/%s and SSEPolicy %s/%s (line %d) both apply to rule %zu of "
                        "HTTPRoute %s/%s", e->p->ns, e->p->name, o->p->ns, o->p->name, o->pos.line, k, rt->ns,
                        rt->name);
            }
            bool take = r->ssep == NULL;
            if (!take) {
                for (size_t j = 0; j < ld->nssepols; j++)
                    if (ld->ssepols[j].p == r->ssep && ld->ssepols[j].section == NULL && mine_specific)
                        take = true;
            }
            if (!take)
                continue;
            if (e->heartbeat_ms != SG_TIMEOUT_UNSET) {
                if (r->heartbeat_ms != SG_TIMEOUT_UNSET && rt->heartbeat_ms != SG_TIMEOUT_UNSET &&
                    rt->heartbeat_ms != e->heartbeat_ms && r->ssep == NULL)
                    ERR(ld, e->hpos, "SSEPolicy %s/%s sets heartbeatInterval %lldms, conflicting with the deprecated "
                        "RoutePolicy sse.heartbeatInterval (%lldms) for HTTPRoute %s/%s", e->p->ns, e->p->name,
                        (long long)e->heartbeat_ms, (long long)rt->heartbeat_ms, rt->ns, rt->name);
                r->heartbeat_ms = e->heartbeat_ms;
            }
            r->ssep = e->p;
        }
        if (!found)
            ERR(ld, e->tpos, "SSEPolicy %s/%s: HTTPRoute %s/%s has no rule named \"%s\"", e->p->ns, e->p->name,
                e->tns, e->tname, e->section);
    }
    for (size_t j = 0; j < ld->nroutes; j++)
        for (size_t k = 0; k < ld->routes[j].nrules; k++)
            if (ld->routes[j].rules[k].ssep != NULL && ld->routes[j].rules[k].ssep->sharing)
                cfg->nshared_rules++;
}
