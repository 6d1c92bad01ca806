/* klease.c: the Lease state machine (client-go's tryAcquireOrRenew): a follower reads the Lease and takes it when it
 * is free or has not changed for its duration on our clock; the leader renews every retry period with the
 * resourceVersion it last wrote and steps down when it cannot renew within the renew deadline. */
#include "kube/klease.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void sg_klease_init(sg_klease_t *l, const sg_klease_cfg_t *cfg, int64_t now_ms)
{
    memset(l, 0, sizeof(*l));
    l->cfg = *cfg;
    copy(l->identity, sizeof(l->identity), cfg->identity);
    copy(l->ns, sizeof(l->ns), cfg->ns);
    copy(l->name, sizeof(l->name), cfg->name);
    if (l->cfg.duration_ms <= 0)
        l->cfg.duration_ms = SG_KLEASE_DURATION_MS;
    if (l->cfg.renew_deadline_ms <= 0)
        l->cfg.renew_deadline_ms = SG_KLEASE_RENEW_DEADLINE_MS;
    if (l->cfg.retry_ms <= 0)
        l->cfg.retry_ms = SG_KLEASE_RETRY_MS;
    l->next_ms = now_ms;
}

bool sg_klease_leader(const sg_klease_t *l, int64_t now_ms)
{
    return l->leader && now_ms - l->renewed_ms < l->cfg.renew_deadline_ms;
}

/* JSON string (the Lease's strings are names and times: escape quotes, backslashes and controls). */
static int jstr(char *p, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3)
        return -1;
    p[n++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (n + 8 >= cap)
            return -1;
        if (c == '"' || c == '\\') {
            p[n++] = '\\';
            p[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(p + n, cap - n, "\\u%04x", c);
        } else {
            p[n++] = (char)c;
        }
    }
    p[n++] = '"';
    p[n] = '\0';
    return (int)n;
}

/* The Lease with us as holder (or no holder when releasing). */
static bool body_of(const sg_klease_t *l, bool create, bool release, const char *wall, char *body, size_t cap)
{
    char name[600], ns[600], id[600], rv[160], at[160], rt[160];
    bool taking = !l->known || strcmp(l->holder, l->identity) != 0;
    long transitions = l->transitions + (!create && !release && taking ? 1 : 0); /* as client-go counts them */
    int64_t secs = release ? 1 : (l->cfg.duration_ms + 999) / 1000;
    if (jstr(name, sizeof(name), l->name) < 0 || jstr(ns, sizeof(ns), l->ns) < 0 ||
        jstr(id, sizeof(id), release ? "" : l->identity) < 0 || jstr(rv, sizeof(rv), l->rv) < 0 ||
        jstr(at, sizeof(at), taking || release || l->acquire_time[0] == '\0' ? wall : l->acquire_time) < 0 ||
        jstr(rt, sizeof(rt), wall) < 0)
        return false;
    int n = snprintf(body, cap,
                     "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":%s,"
                     "\"namespace\":%s%s%s},\"spec\":{\"holderIdentity\":%s,\"leaseDurationSeconds\":%lld,"
                     "\"acquireTime\":%s,\"renewTime\":%s,\"leaseTransitions\":%ld}}",
                     name, ns, create ? "" : ",\"resourceVersion\":", create ? "" : rv, id, (long long)secs, at, rt,
                     transitions);
    return n > 0 && (size_t)n < cap;
}

sg_klease_op_t sg_klease_next(sg_klease_t *l, int64_t now_ms, const char *wall, char *body, size_t cap,
                              int64_t *wait_ms)
{
    *wait_ms = l->cfg.retry_ms;
    if (l->busy)
        return SG_KLEASE_WAIT;
    if (l->leader && !sg_klease_leader(l, now_ms)) {
        l->leader = false;      /* the renew deadline passed without a renewal */
        l->lost++;
    }
    if (now_ms < l->next_ms) {
        *wait_ms = l->next_ms - now_ms;
        return SG_KLEASE_WAIT;
    }
    sg_klease_op_t op;
    if (!l->known || l->reread) {
        op = SG_KLEASE_GET;
    } else if (l->rv[0] == '\0') {
        op = SG_KLEASE_CREATE;  /* read: there is none */
    } else if (l->leader || l->holder[0] == '\0' || strcmp(l->holder, l->identity) == 0 ||
               now_ms - l->observed_ms >= l->duration_ms) {
        op = SG_KLEASE_UPDATE;  /* renew ours, or take a free or expired one */
    } else {
        l->reread = true;       /* held by another and fresh: read it again next time */
        l->next_ms = now_ms + l->cfg.retry_ms;
        return SG_KLEASE_WAIT;
    }
    if (op != SG_KLEASE_GET && !body_of(l, op == SG_KLEASE_CREATE, false, wall, body, cap))
        return SG_KLEASE_WAIT;
    l->busy = true;
    l->pending = op;
    *wait_ms = 0;
    return op;
}

static struct fy_node *at(struct fy_node *m, const char *key)
{
    if (m == NULL || fy_node_get_type(m) != FYNT_MAPPING)
        return NULL;
    return fy_node_mapping_lookup_by_string(m, key, strlen(key));
}

static void str_at(struct fy_node *m, const char *key, char *dst, size_t cap)
{
    struct fy_node *v = at(m, key);
    size_t len = 0;
    const char *s = v && fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar(v, &len) : NULL;
    if (s == NULL || (len == 4 && memcmp(s, "null", 4) == 0 && fy_node_get_style(v) == FYNS_PLAIN))
        len = 0;
    if (len >= cap)
        len = cap - 1;
    if (len)
        memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Reads a Lease; returns false when the body is not one. */
static bool read_record(sg_klease_t *l, int64_t now_ms, const char *body, size_t len)
{
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (diag == NULL)
        return false;
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.flags = FYPCF_QUIET | FYPCF_JSON_FORCE;
    cfg.diag = diag;
    struct fy_document *doc = body ? fy_document_build_from_string(&cfg, body, len) : NULL;
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    struct fy_node *spec = at(root, "spec");
    bool ok = root != NULL && fy_node_get_type(root) == FYNT_MAPPING;
    if (ok) {
        char holder[256], rv[64], renew[64], secs[32], trans[32];
        str_at(at(root, "metadata"), "resourceVersion", rv, sizeof(rv));
        str_at(spec, "holderIdentity", holder, sizeof(holder));
        str_at(spec, "renewTime", renew, sizeof(renew));
        str_at(spec, "leaseDurationSeconds", secs, sizeof(secs));
        str_at(spec, "leaseTransitions", trans, sizeof(trans));
        str_at(spec, "acquireTime", l->acquire_time, sizeof(l->acquire_time));
        ok = rv[0] != '\0';
        /* A change of holder, renewal or version restarts the expiry clock; the same record read again does not. */
        if (ok && (!l->known || strcmp(holder, l->holder) != 0 || strcmp(renew, l->renew_time) != 0 ||
                   strcmp(rv, l->rv) != 0))
            l->observed_ms = now_ms;
        if (ok) {
            copy(l->holder, sizeof(l->holder), holder);
            copy(l->rv, sizeof(l->rv), rv);
            copy(l->renew_time, sizeof(l->renew_time), renew);
            long s = strtol(secs, NULL, 10);
            l->duration_ms = (s > 0 ? s : 1) * 1000;
            l->transitions = strtol(trans, NULL, 10);
            l->known = true;
        }
    }
    if (doc)
        fy_document_destroy(doc);
    fy_diag_destroy(diag);
    return ok;
}

static void step_down(sg_klease_t *l)
{
    if (l->leader)
        l->lost++;
    l->leader = false;
}

void sg_klease_done(sg_klease_t *l, int64_t now_ms, int status, const char *body, size_t len)
{
    sg_klease_op_t op = l->pending;
    l->busy = false;
    l->pending = SG_KLEASE_WAIT;
    if (op == SG_KLEASE_GET) {
        l->reread = false;
        if (status == 404) {
            l->known = true;    /* none: create it */
            l->holder[0] = l->rv[0] = l->renew_time[0] = l->acquire_time[0] = '\0';
            l->transitions = 0;
            l->next_ms = now_ms;
            return;
        }
        if (status == 200 && read_record(l, now_ms, body, len)) {
            if (l->leader && strcmp(l->holder, l->identity) != 0)
                step_down(l);   /* someone took it */
            l->next_ms = now_ms;
            return;
        }
        l->reread = true;
        l->next_ms = now_ms + l->cfg.retry_ms;
        return;
    }
    if ((status == 200 || status == 201) && read_record(l, now_ms, body, len) &&
        strcmp(l->holder, l->identity) == 0) {
        if (!l->leader)
            l->acquired++;
        l->leader = true;
        l->renewed_ms = now_ms;
        l->next_ms = now_ms + l->cfg.retry_ms;
        return;
    }
    /* 409: another wrote first (or created it): read again at once. Other failures: try again after the retry
     * period; a leader keeps leading until the renew deadline (sg_klease_leader). */
    l->reread = true;
    if (status == 409) {
        l->next_ms = now_ms;
        if (l->leader)
            step_down(l);       /* our resourceVersion is stale: someone else wrote the Lease */
    } else {
        l->next_ms = now_ms + l->cfg.retry_ms;
    }
}

sg_klease_op_t sg_klease_release(sg_klease_t *l, const char *wall, char *body, size_t cap)
{
    bool lead = l->leader;
    l->leader = false;
    if (!lead || !l->known || !body_of(l, false, true, wall, body, cap))
        return SG_KLEASE_WAIT;
    l->busy = true;
    l->pending = SG_KLEASE_UPDATE;
    return SG_KLEASE_UPDATE;
}
