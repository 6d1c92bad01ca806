/* kstatus.c: Gateway API status from the loader's diagnostics and the publish result (what we want), and the status
 * diff against the object the API server has (what to write). Pure: JSON text in, JSON text out. */
#include "kube/kstatus.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW_GROUP "gateway.networking.k8s.io"
#define MAX_MESSAGE 1024        /* Gateway API allows 32768; ours are one sentence, a long one is cut */

/* ---- desired status: JSON written with stdio ---- */

static void jstrn(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void jstr(FILE *f, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > MAX_MESSAGE) {
        n = MAX_MESSAGE;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) /* not inside a UTF-8 sequence */
            n--;
    }
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* One condition. status is "True", "False" or "Unknown". */
static void jcond(FILE *f, bool first, const char *type, const char *status, const char *reason, const char *msg,
                  int64_t gen, const char *now)
{
    fprintf(f, "%s{\"type\":", first ? "" : ",");
    jstr(f, type);
    fputs(",\"status\":", f);
    jstr(f, status);
    fputs(",\"reason\":", f);
    jstr(f, reason && reason[0] ? reason : type);
    fputs(",\"message\":", f);
    jstr(f, msg && msg[0] ? msg : reason && reason[0] ? reason : type);
    fprintf(f, ",\"observedGeneration\":%lld,\"lastTransitionTime\":", (long long)gen);
    jstr(f, now);
    fputc('}', f);
}

static void jdcond(FILE *f, bool first, const char *type, const sg_diag_cond_t *c, int64_t gen, const char *now)
{
    jcond(f, first, type, c->ok ? "True" : "False", c->reason, c->message, gen, now);
}

bool sg_kstatus_class_ours(const sg_config_diag_t *d, const sg_kstatus_env_t *env, const char *class_name)
{
    if (class_name == NULL)
        return false;
    if (env->classes != NULL) {
        for (size_t i = 0; i < env->nclasses; i++)
            if (env->classes[i] && strcmp(env->classes[i], class_name) == 0)
                return true;
        return false;
    }
    for (size_t i = 0; i < d->nobjs; i++) {
        const sg_diag_obj_t *o = &d->objs[i];
        if (o->type == SG_DIAG_GATEWAYCLASS && o->name && strcmp(o->name, class_name) == 0)
            return o->class_name && strcmp(o->class_name, env->controller) == 0;
    }
    return false;
}

static const sg_diag_obj_t *our_gateway(const sg_config_diag_t *d, const sg_kstatus_env_t *env, const char *ns,
                                        const char *name)
{
    for (size_t i = 0; i < d->nobjs; i++) {
        const sg_diag_obj_t *o = &d->objs[i];
        if (o->type == SG_DIAG_GATEWAY && o->name && strcmp(o->name, name) == 0 &&
            strcmp(o->ns ? o->ns : "default", ns) == 0)
            return sg_kstatus_class_ours(d, env, o->class_name) ? o : NULL;
    }
    return NULL;
}

bool sg_kstatus_gateway_ours(const sg_config_diag_t *d, const sg_kstatus_env_t *env, const char *ns,
                             const char *name)
{
    return our_gateway(d, env, ns, name) != NULL;
}

/* A parentRef names one of our Gateways (group and kind default to Gateway API's Gateway). */
static bool parent_ours(const sg_config_diag_t *d, const sg_kstatus_env_t *env, const sg_diag_obj_t *rt,
                        const sg_diag_parent_t *p)
{
    if ((p->group && strcmp(p->group, GW_GROUP) != 0) || (p->kind && strcmp(p->kind, "Gateway") != 0) ||
        p->name == NULL)
        return false;
    const char *ns = p->ns ? p->ns : rt->ns ? rt->ns : "default";
    return our_gateway(d, env, ns, p->name) != NULL;
}

static bool port_failed(const sg_kstatus_env_t *env, long port)
{
    for (size_t i = 0; i < env->nfailed_ports; i++)
        if (env->failed_ports[i] == port)
            return true;
    return false;
}

/* SupportedVersion: ssegate serves the v1 API of Gateway API bundles v1.x. */
static void class_status(FILE *f, int64_t gen, const sg_kstatus_env_t *env)
{
    const char *bv = env->bundle_version;
    bool known = bv != NULL && bv[0] != '\0';
    bool supported = known && strncmp(bv, "v1.", 3) == 0;
    char msg[256];
    fputs("{\"conditions\":[", f);
    if (known && !supported) {
        snprintf(msg, sizeof(msg), "Gateway API bundle-version %s is not supported (ssegate serves v1.x)", bv);
        jcond(f, true, "Accepted", "False", "UnsupportedVersion", msg, gen, env->now);
        jcond(f, false, "SupportedVersion", "False", "UnsupportedVersion", msg, gen, env->now);
    } else {
        jcond(f, true, "Accepted", "True", "Accepted", "Valid GatewayClass", gen, env->now);
        if (supported) {
            snprintf(msg, sizeof(msg), "Gateway API bundle-version %s is supported", bv);
            jcond(f, false, "SupportedVersion", "True", "SupportedVersion", msg, gen, env->now);
        } else {
            jcond(f, false, "SupportedVersion", "Unknown", "Pending", "the bundle-version annotation of the Gateway "
                  "API CRDs could not be read", gen, env->now);
        }
    }
    fputs("]}", f);
}

static void gateway_status(FILE *f, const sg_diag_obj_t *o, const sg_kstatus_env_t *env)
{
    int64_t g = o->generation;
    fputc('{', f);
    if (env->naddresses > 0 && !o->dropped) {
        fputs("\"addresses\":[", f);
        for (size_t i = 0; i < env->naddresses; i++) {
            unsigned char buf[16];
            bool ip = inet_pton(AF_INET, env->addresses[i], buf) == 1 || inet_pton(AF_INET6, env->addresses[i], buf) == 1;
            fprintf(f, "%s{\"type\":\"%s\",\"value\":", i ? "," : "", ip ? "IPAddress" : "Hostname");
            jstr(f, env->addresses[i]);
            fputc('}', f);
        }
        fputs("],", f);
    }
    size_t nprog = 0, nbound_bad = 0;
    fputs("\"listeners\":[", f);
    bool first = true;
    for (size_t i = 0; i < o->nlisteners; i++) {
        const sg_diag_listener_t *l = &o->listeners[i];
        if (l->name == NULL)
            continue;
        bool failed = l->served && port_failed(env, l->port);
        bool prog = l->served && env->programmed && !failed;
        nprog += prog;
        nbound_bad += failed;
        fprintf(f, "%s{\"name\":", first ? "" : ",");
        first = false;
        jstr(f, l->name);
        /* supportedKinds: what allowedRoutes.kinds admits (both route kinds by default); a dropped listener's none */
        unsigned kinds = l->served ? (l->kinds ? l->kinds : 3u) : 0u;
        fputs(",\"supportedKinds\":[", f);
        if (kinds & 1u)
            fprintf(f, "{\"group\":\"%s\",\"kind\":\"HTTPRoute\"}", GW_GROUP);
        if (kinds & 2u)
            fprintf(f, "%s{\"group\":\"%s\",\"kind\":\"GRPCRoute\"}", kinds & 1u ? "," : "", GW_GROUP);
        fprintf(f, "],\"attachedRoutes\":%zu,\"conditions\":[", l->attached);
        if (failed) {
            char msg[128];
            snprintf(msg, sizeof(msg), "port %ld could not be bound", l->port);
            jcond(f, true, "Accepted", "False", "PortUnavailable", msg, g, env->now);
        } else {
            jdcond(f, true, "Accepted", &l->accepted, g, env->now);
        }
        /* A port that did not bind is retried (krebind.c): Pending, "not yet online and ready to accept client
         * traffic", rather than Invalid, which says the listener itself is wrong. */
        char pmsg[128];
        if (failed)
            snprintf(pmsg, sizeof(pmsg), "port %ld could not be bound; retrying", l->port);
        jcond(f, false, "Programmed", prog ? "True" : "False",
              prog ? "Programmed" : l->served ? "Pending" : "Invalid",
              prog ? "listener is serving" : failed ? pmsg : l->served ? "the configuration is not serving yet"
                                                                       : "listener is not served",
              g, env->now);
        jdcond(f, false, "ResolvedRefs", &l->resolved, g, env->now);
        jcond(f, false, "Conflicted", l->conflicted.ok ? "True" : "False", l->conflicted.reason,
              l->conflicted.message, g, env->now);
        fputs("]}", f);
    }
    fputs("],\"conditions\":[", f);
    if (nbound_bad > 0 && o->accepted.ok)
        jcond(f, true, "Accepted", "True", "ListenersNotValid", "some listeners could not bind their port", g,
              env->now);
    else
        jdcond(f, true, "Accepted", &o->accepted, g, env->now);
    if (nprog > 0)
        jcond(f, false, "Programmed", "True", "Programmed", "the Gateway is serving", g, env->now);
    else if (!o->dropped && o->accepted.ok && !env->programmed)
        jcond(f, false, "Programmed", "False", "Pending", "the configuration is not serving yet", g, env->now);
    else if (!o->dropped && o->accepted.ok && nbound_bad > 0)
        jcond(f, false, "Programmed", "False", "Pending", "no listener is serving yet: their ports could not be bound; "
              "retrying", g, env->now);
    else
        jcond(f, false, "Programmed", "False", "Invalid", "no listener is serving", g, env->now);
    fputs("]}", f);
}

static void jref(FILE *f, const sg_diag_parent_t *p)
{
    fputc('{', f);
    bool first = true;
    const char *keys[] = {"group", "kind", "namespace", "name", "sectionName"};
    const char *vals[] = {p->group, p->kind, p->ns, p->name, p->section};
    for (size_t i = 0; i < 5; i++) {
        if (vals[i] == NULL)
            continue;
        fprintf(f, "%s\"%s\":", first ? "" : ",", keys[i]);
        jstr(f, vals[i]);
        first = false;
    }
    if (p->port > 0)
        fprintf(f, "%s\"port\":%ld", first ? "" : ",", p->port);
    fputc('}', f);
}

static void route_status(FILE *f, const sg_config_diag_t *d, const sg_diag_obj_t *o, const sg_kstatus_env_t *env)
{
    int64_t g = o->generation;
    fputs("{\"parents\":[", f);
    bool first = true;
    for (size_t i = 0; i < o->nparents; i++) {
        const sg_diag_parent_t *p = &o->parents[i];
        if (!parent_ours(d, env, o, p))
            continue;
        /* The same parentRef twice would be two entries with one key: the first speaks for both. */
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++) {
            const sg_diag_parent_t *q = &o->parents[k];
#define EQ(a, b) (((a) == NULL && (b) == NULL) || ((a) && (b) && strcmp((a), (b)) == 0))
            dup = EQ(p->group, q->group) && EQ(p->kind, q->kind) && EQ(p->ns, q->ns) && EQ(p->name, q->name) &&
                  EQ(p->section, q->section) && p->port == q->port;
#undef EQ
        }
        if (dup)
            continue;
        fprintf(f, "%s{\"parentRef\":", first ? "" : ",");
        first = false;
        jref(f, p);
        fputs(",\"controllerName\":", f);
        jstr(f, env->controller);
        fputs(",\"conditions\":[", f);
        jdcond(f, true, "Accepted", &p->accepted, g, env->now);
        jdcond(f, false, "ResolvedRefs", &p->resolved, g, env->now);
        if (o->ndropped_rules > 0 && !o->dropped) {
            char msg[512];
            snprintf(msg, sizeof(msg), "Dropped Rule %zu: %s", o->dropped_rules[0].index,
                     o->dropped_rules[0].message ? o->dropped_rules[0].message : "");
            jcond(f, false, "PartiallyInvalid", "True", "UnsupportedValue", msg, g, env->now);
        }
        fputs("]}", f);
    }
    fputs("]}", f);
}

/* An AGC policy is ours when what it targets is: a RoutePolicy's HTTPRoute names one of our Gateways; the others
 * (Services, Gateways) when we serve any Gateway at all. */
static bool policy_ours(const sg_config_diag_t *d, const sg_diag_obj_t *o, const sg_kstatus_env_t *env)
{
    if (o->target_kind && strcmp(o->target_kind, "HTTPRoute") == 0 && o->target_name) {
        const sg_diag_obj_t *rt = sg_config_diag_find(d, "HTTPRoute", o->target_ns, o->target_name);
        for (size_t i = 0; rt && i < rt->nparents; i++)
            if (parent_ours(d, env, rt, &rt->parents[i]))
                return true;
        return rt == NULL; /* a missing target: TargetNotFound is ours to say */
    }
    if (o->target_kind && strcmp(o->target_kind, "Gateway") == 0 && o->target_name)
        return our_gateway(d, env, o->target_ns ? o->target_ns : "default", o->target_name) != NULL ||
               sg_config_diag_find(d, "Gateway", o->target_ns, o->target_name) == NULL;
    for (size_t i = 0; i < d->nobjs; i++)
        if (d->objs[i].type == SG_DIAG_GATEWAY && sg_kstatus_class_ours(d, env, d->objs[i].class_name))
            return true;
    return false;
}

/* GEP-713: the ancestors of a policy on a Service are the Gateways; we report against each of ours. */
static void ancestors_status(FILE *f, const sg_config_diag_t *d, const sg_diag_obj_t *o, const sg_kstatus_env_t *env)
{
    fputs("{\"ancestors\":[", f);
    bool first = true;
    for (size_t i = 0; i < d->nobjs; i++) {
        const sg_diag_obj_t *gw = &d->objs[i];
        if (gw->type != SG_DIAG_GATEWAY || !sg_kstatus_class_ours(d, env, gw->class_name))
            continue;
        fprintf(f, "%s{\"ancestorRef\":{\"group\":\"%s\",\"kind\":\"Gateway\",\"namespace\":", first ? "" : ",",
                GW_GROUP);
        first = false;
        jstr(f, gw->ns ? gw->ns : "default");
        fputs(",\"name\":", f);
        jstr(f, gw->name);
        fputs("},\"controllerName\":", f);
        jstr(f, env->controller);
        fputs(",\"conditions\":[", f);
        jdcond(f, true, "Accepted", &o->accepted, o->generation, env->now);
        fputs("]}", f);
    }
    fputs("]}", f);
}

int sg_kstatus_class_desired(int64_t generation, const sg_kstatus_env_t *env, char **json)
{
    size_t len = 0;
    *json = NULL;
    FILE *f = open_memstream(json, &len);
    if (f == NULL)
        return -ENOMEM;
    class_status(f, generation, env);
    if (fclose(f) != 0 || *json == NULL) {
        free(*json);
        *json = NULL;
        return -ENOMEM;
    }
    return 0;
}

int sg_kstatus_desired(const sg_config_diag_t *d, const sg_diag_obj_t *o, const sg_kstatus_env_t *env, char **json,
                       sg_kstatus_shape_t *shape)
{
    *json = NULL;
    *shape = SG_KSTATUS_WHOLE;
    if (o->name == NULL)
        return -ENOENT;
    switch (o->type) {
    case SG_DIAG_GATEWAYCLASS:
        if (o->class_name == NULL || strcmp(o->class_name, env->controller) != 0)
            return -ENOENT;
        break;
    case SG_DIAG_GATEWAY:
        if (!sg_kstatus_class_ours(d, env, o->class_name))
            return -ENOENT;
        break;
    case SG_DIAG_HTTPROUTE:
        *shape = SG_KSTATUS_PARENTS;
        break;
    case SG_DIAG_POLICY_AGC:
        if (!policy_ours(d, o, env))
            return -ENOENT;
        break;
    case SG_DIAG_POLICY_GW:
        *shape = SG_KSTATUS_ANCESTORS;
        break;
    default:
        return -ENOENT;
    }
    size_t len = 0;
    FILE *f = open_memstream(json, &len);
    if (f == NULL)
        return -ENOMEM;
    switch (o->type) {
    case SG_DIAG_GATEWAYCLASS:
        class_status(f, o->generation, env);
        break;
    case SG_DIAG_GATEWAY:
        gateway_status(f, o, env);
        break;
    case SG_DIAG_HTTPROUTE:
        route_status(f, d, o, env);
        break;
    case SG_DIAG_POLICY_GW:
        ancestors_status(f, d, o, env);
        break;
    default:
        fputs("{\"conditions\":[", f);
        jdcond(f, true, "Accepted", &o->accepted, o->generation, env->now);
        fputs("]}", f);
        break;
    }
    if (fclose(f) != 0 || *json == NULL) {
        free(*json);
        *json = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* ---- the diff ---- */

static struct fy_node *get(struct fy_node *m, const char *key)
{
    if (m == NULL || fy_node_get_type(m) != FYNT_MAPPING)
        return NULL;
    return fy_node_mapping_lookup_by_string(m, key, strlen(key));
}

/* Same content: mappings regardless of key order, lists in order, scalars by text. */
static bool same(struct fy_node *a, struct fy_node *b, int depth)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (fy_node_get_type(a) != fy_node_get_type(b) || depth > 64)
        return false;
    void *it = NULL;
    switch (fy_node_get_type(a)) {
    case FYNT_SCALAR: {
        size_t la, lb;
        const char *sa = fy_node_get_scalar(a, &la), *sb = fy_node_get_scalar(b, &lb);
        return sa && sb && la == lb && memcmp(sa, sb, la) == 0;
    }
    case FYNT_SEQUENCE: {
        if (fy_node_sequence_item_count(a) != fy_node_sequence_item_count(b))
            return false;
        void *it2 = NULL;
        struct fy_node *x, *y;
        while ((x = fy_node_sequence_iterate(a, &it)) != NULL) {
            y = fy_node_sequence_iterate(b, &it2);
            if (!same(x, y, depth + 1))
                return false;
        }
        return true;
    }
    case FYNT_MAPPING: {
        if (fy_node_mapping_item_count(a) != fy_node_mapping_item_count(b))
            return false;
        /* Keys compared as text: fy_node_mapping_lookup_by_string would parse a key read from the server as YAML. */
        struct fy_node_pair *p, *q;
        while ((p = fy_node_mapping_iterate(a, &it)) != NULL) {
            void *it2 = NULL;
            struct fy_node *v = NULL;
            while (v == NULL && (q = fy_node_mapping_iterate(b, &it2)) != NULL)
                if (same(fy_node_pair_key(p), fy_node_pair_key(q), depth + 1))
                    v = fy_node_pair_value(q);
            if (v == NULL || !same(fy_node_pair_value(p), v, depth + 1))
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

static bool str_is(struct fy_node *n, const char *s)
{
    size_t len;
    const char *v = n && fy_node_get_type(n) == FYNT_SCALAR ? fy_node_get_scalar(n, &len) : NULL;
    return v != NULL && len == strlen(s) && memcmp(v, s, len) == 0;
}

/* Each condition of `conds` keeps the lastTransitionTime of the condition of `old` with its type, if that one had
 * the same status (metav1 semantics: the time moves only when the status does). */
static int keep_times(struct fy_document *doc, struct fy_node *conds, struct fy_node *old)
{
    void *it = NULL;
    struct fy_node *c;
    if (conds == NULL || old == NULL || fy_node_get_type(conds) != FYNT_SEQUENCE ||
        fy_node_get_type(old) != FYNT_SEQUENCE)
        return 0;
    while ((c = fy_node_sequence_iterate(conds, &it)) != NULL) {
        void *it2 = NULL;
        struct fy_node *o;
        while ((o = fy_node_sequence_iterate(old, &it2)) != NULL) {
            if (!same(get(c, "type"), get(o, "type"), 0))
                continue;
            struct fy_node *t = get(o, "lastTransitionTime");
            struct fy_node_pair *p = fy_node_mapping_lookup_pair_by_string(c, "lastTransitionTime", -1);
            if (t != NULL && p != NULL && same(get(c, "status"), get(o, "status"), 0)) {
                struct fy_node *cp = fy_node_copy(doc, t);
                if (cp == NULL || fy_node_pair_set_value(p, cp) != 0)
                    return -ENOMEM;
            }
            break;
        }
    }
    return 0;
}

static int keep_listener_times(struct fy_document *doc, struct fy_node *st, struct fy_node *old)
{
    void *it = NULL;
    struct fy_node *l;
    struct fy_node *ls = get(st, "listeners"), *ols = get(old, "listeners");
    if (ls == NULL || ols == NULL || fy_node_get_type(ls) != FYNT_SEQUENCE || fy_node_get_type(ols) != FYNT_SEQUENCE)
        return 0;
    while ((l = fy_node_sequence_iterate(ls, &it)) != NULL) {
        void *it2 = NULL;
        struct fy_node *o;
        while ((o = fy_node_sequence_iterate(ols, &it2)) != NULL)
            if (same(get(l, "name"), get(o, "name"), 0)) {
                if (keep_times(doc, get(l, "conditions"), get(o, "conditions")) != 0)
                    return -ENOMEM;
                break;
            }
    }
    return 0;
}

/* parents / ancestors: the other controllers' current entries in their order, then ours (desired). */
static int merge_entries(struct fy_document *doc, struct fy_node *st, struct fy_node *old, const char *key,
                         const char *refkey, const char *controller)
{
    struct fy_node *mine = get(st, key), *cur = get(old, key);
    struct fy_node *seq = fy_node_create_sequence(doc);
    if (seq == NULL)
        return -ENOMEM;
    void *it = NULL;
    struct fy_node *e;
    while (cur != NULL && fy_node_get_type(cur) == FYNT_SEQUENCE && (e = fy_node_sequence_iterate(cur, &it)) != NULL)
        if (!str_is(get(e, "controllerName"), controller)) {
            struct fy_node *cp = fy_node_copy(doc, e);
            if (cp == NULL || fy_node_sequence_append(seq, cp) != 0)
                return -ENOMEM;
        }
    it = NULL;
    while (mine != NULL && fy_node_get_type(mine) == FYNT_SEQUENCE && (e = fy_node_sequence_iterate(mine, &it))) {
        struct fy_node *cp = fy_node_copy(doc, e);
        if (cp == NULL)
            return -ENOMEM;
        void *it2 = NULL;
        struct fy_node *o;
        while (cur != NULL && fy_node_get_type(cur) == FYNT_SEQUENCE &&
               (o = fy_node_sequence_iterate(cur, &it2)) != NULL)
            if (str_is(get(o, "controllerName"), controller) && same(get(o, refkey), get(e, refkey), 0)) {
                if (keep_times(doc, get(cp, "conditions"), get(o, "conditions")) != 0)
                    return -ENOMEM;
                break;
            }
        if (fy_node_sequence_append(seq, cp) != 0)
            return -ENOMEM;
    }
    struct fy_node_pair *p = fy_node_mapping_lookup_pair_by_string(st, key, -1);
    if (p != NULL && fy_node_pair_set_value(p, seq) == 0)
        return 0;
    struct fy_node *k = p == NULL ? fy_node_create_scalar_copy(doc, key, strlen(key)) : NULL;
    if (k != NULL && fy_node_mapping_append(st, k, seq) == 0)
        return 0;
    fy_node_free(k);
    fy_node_free(seq);
    return -ENOMEM;
}

static struct fy_document *parse_json(struct fy_diag *diag, const char *s, size_t len)
{
    struct fy_parse_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.flags = FYPCF_QUIET | FYPCF_JSON_FORCE;
    cfg.diag = diag;
    struct fy_document *doc = fy_document_build_from_string(&cfg, s, len);
    if (doc != NULL && fy_node_get_type(fy_document_root(doc)) != FYNT_MAPPING) {
        fy_document_destroy(doc);
        return NULL;
    }
    return doc;
}

/* A plain scalar that JSON writes bare: a number, true, false, null. */
static bool json_literal(const char *s, size_t n)
{
    if ((n == 4 && (memcmp(s, "true", 4) == 0 || memcmp(s, "null", 4) == 0)) || (n == 5 && memcmp(s, "false", 5) == 0))
        return true;
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d || (s[d] == '0' && i - d > 1))
        return false;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e)
            return false;
    }
    return i == n;
}

/* JSON of a node tree. Written here rather than by libfyaml's emitter, which leaks on long escaped scalars in JSON
 * mode (libfyaml 0.7.12, found by fuzz_kstatus). */
static void emit(FILE *f, struct fy_node *n, int depth)
{
    void *it = NULL;
    if (n == NULL || depth > 256) {
        fputs("null", f);
        return;
    }
    switch (fy_node_get_type(n)) {
    case FYNT_SCALAR: {
        size_t len = 0;
        const char *t = fy_node_get_scalar(n, &len);
        if (t == NULL)
            fputs("null", f);
        else if (fy_node_get_style(n) == FYNS_PLAIN && json_literal(t, len))
            fwrite(t, 1, len, f);
        else
            jstrn(f, t, len);
        break;
    }
    case FYNT_SEQUENCE: {
        struct fy_node *e;
        bool first = true;
        fputc('[', f);
        while ((e = fy_node_sequence_iterate(n, &it)) != NULL) {
            if (!first)
                fputc(',', f);
            first = false;
            emit(f, e, depth + 1);
        }
        fputc(']', f);
        break;
    }
    case FYNT_MAPPING: {
        struct fy_node_pair *p;
        bool first = true;
        fputc('{', f);
        while ((p = fy_node_mapping_iterate(n, &it)) != NULL) {
            size_t len = 0;
            struct fy_node *k = fy_node_pair_key(p);
            const char *t = k && fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar(k, &len) : NULL;
            if (t == NULL)
                continue;       /* JSON has only string keys */
            if (!first)
                fputc(',', f);
            first = false;
            jstrn(f, t, len);
            fputc(':', f);
            emit(f, fy_node_pair_value(p), depth + 1);
        }
        fputc('}', f);
        break;
    }
    default:
        fputs("null", f);
        break;
    }
}

static char *to_json(struct fy_node *root)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f == NULL)
        return NULL;
    emit(f, root, 0);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

char *sg_kstatus_node_json(struct fy_node *n)
{
    return to_json(n);
}

int sg_kstatus_merge(const char *cur, size_t cur_len, const char *desired, sg_kstatus_shape_t shape,
                     const char *controller, char **out)
{
    *out = NULL;
    /* Parse errors are collected, never printed: a bad object is the caller's -EINVAL. */
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag == NULL)
        return -ENOMEM;
    fy_diag_set_collect_errors(diag, true);
    struct fy_document *doc = parse_json(diag, cur, cur_len), *des = parse_json(diag, desired, strlen(desired));
    int rc = -EINVAL;
    struct fy_node *st = NULL;  /* the new status, ours to free until it is in the document */
    if (doc == NULL || des == NULL)
        goto done;
    struct fy_node *root = fy_document_root(doc);
    struct fy_node *old = get(root, "status");
    if (old != NULL && fy_node_get_type(old) != FYNT_MAPPING)
        old = NULL;
    st = fy_node_copy(doc, fy_document_root(des));
    rc = -ENOMEM;
    if (st == NULL)
        goto done;
    if (shape == SG_KSTATUS_WHOLE) {
        if (keep_times(doc, get(st, "conditions"), get(old, "conditions")) != 0 ||
            keep_listener_times(doc, st, old) != 0)
            goto done;
    } else {
        const char *key = shape == SG_KSTATUS_PARENTS ? "parents" : "ancestors";
        if (merge_entries(doc, st, old, key, shape == SG_KSTATUS_PARENTS ? "parentRef" : "ancestorRef",
                          controller) != 0)
            goto done;
        /* Other fields of the current status are not ours to drop. */
        void *it = NULL;
        struct fy_node_pair *p;
        while (old != NULL && (p = fy_node_mapping_iterate(old, &it)) != NULL) {
            struct fy_node *k = fy_node_pair_key(p);
            if (str_is(k, key))
                continue;
            struct fy_node *kc = fy_node_copy(doc, k), *vc = fy_node_copy(doc, fy_node_pair_value(p));
            if (kc == NULL || vc == NULL || fy_node_mapping_append(st, kc, vc) != 0)
                goto done;
        }
        struct fy_node *entries = get(st, key);
        if (old == NULL && fy_node_sequence_item_count(entries) == 0) {
            rc = 1;             /* no status, and none of ours to write */
            goto done;
        }
    }
    if (same(old, st, 0)) {
        rc = 1;
        goto done;
    }
    struct fy_node_pair *sp = fy_node_mapping_lookup_pair_by_string(root, "status", -1);
    if (sp != NULL) {
        if (fy_node_pair_set_value(sp, st) != 0)
            goto done;
    } else {
        struct fy_node *k = fy_node_create_scalar_copy(doc, "status", 6);
        if (k == NULL || fy_node_mapping_append(root, k, st) != 0) {
            fy_node_free(k);
            goto done;
        }
    }
    st = NULL;
    *out = to_json(root);
    rc = *out != NULL ? 0 : -ENOMEM;
done:
    fy_node_free(st);
    if (doc != NULL)
        fy_document_destroy(doc);
    if (des != NULL)
        fy_document_destroy(des);
    fy_diag_destroy(diag);
    return rc;
}
