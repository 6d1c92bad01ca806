/* kswrite.c: the status writer: GET (or one paged LIST for many objects of a collection), diff, PUT /status with the
 * resourceVersion read; a 409 reads again; 5xx, 429 and transport errors wait (a Retry-After as long as it says) and
 * try again, a bounded number of times; a cache of what is in place skips objects whose desired status has not
 * changed since. */
#include "kube/kswrite.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kclient.h"
#include "kube/kwatch.h"

#define PREFETCH_MIN 8          /* objects to read in one collection (kind and namespace) before a LIST pays */
#define PREFETCH_GROUPS 64      /* collections listed per sync at most; the rest are read one by one */
#define PREFETCH_PAGE 500
#define PREFETCH_PAGES 200      /* 100,000 objects per collection at most */

const char *const sg_kswrite_results[SG_KSW_N] = {"written", "unchanged", "conflict", "gone", "error"};

typedef struct kentry {
    char *key;                  /* "Kind/ns/name" */
    uint64_t hash;              /* of the desired status (fixed time) in place */
    char *path;                 /* to clean up our parents entries later (HTTPRoutes) */
    bool route;
    bool seen;                  /* in the current sync's diagnostics */
} kentry_t;

struct sg_kscache {
    kentry_t *e;
    size_t n, cap;
    /* Lookup by key (a sync looks up every object: a scan made a sync quadratic, 15 ms of the status thread per build
     * at 1,000 routes): open addressing over fnv(key), each slot an entry's position + 1 (0: empty). Rebuilt when
     * entries move (a removal swaps in the last) or it fills past half. */
    uint32_t *idx;
    size_t icap;                /* a power of two; 0: none */
    bool stale;
};

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void sg_kswrite_init(sg_kswriter_t *w, const sg_kreq_t *req, const char *controller)
{
    memset(w, 0, sizeof(*w));
    w->req = *req;
    w->controller = controller;
    w->max_attempts = 5;
    w->backoff_ms = 100;
    for (int i = 0; i < SG_KSW_N; i++)
        atomic_init(&w->counts[i], 0);
}

static void clear(sg_kscache_t *c)
{
    for (size_t i = 0; c && i < c->n; i++) {
        free(c->e[i].key);
        free(c->e[i].path);
    }
    if (c) {
        c->n = 0;
        c->stale = true;
    }
}

static void index_add(sg_kscache_t *c, size_t pos)
{
    size_t m = c->icap - 1;
    for (size_t h = fnv(c->e[pos].key) & m;; h = (h + 1) & m)
        if (c->idx[h] == 0) {
            c->idx[h] = (uint32_t)pos + 1;
            return;
        }
}

/* Rebuilds the index for n entries and room to grow. Returns 0 or -ENOMEM (lookups then scan). */
static int index_build(sg_kscache_t *c)
{
    size_t want = 64;
    while (want < 4 * c->n)
        want *= 2;
    if (want != c->icap) {
        uint32_t *idx = realloc(c->idx, want * sizeof(*idx));
        if (idx == NULL)
            return -ENOMEM;
        c->idx = idx;
        c->icap = want;
    }
    memset(c->idx, 0, c->icap * sizeof(*c->idx));
    for (size_t i = 0; i < c->n; i++)
        index_add(c, i);
    c->stale = false;
    return 0;
}

void sg_kswrite_free(sg_kswriter_t *w)
{
    if (w->cache) {
        clear(w->cache);
        free(w->cache->e);
        free(w->cache->idx);
        free(w->cache);
    }
    w->cache = NULL;
}

void sg_kswrite_forget(sg_kswriter_t *w)
{
    /* Keep the routes' paths (their cleanup must still happen), drop the hashes. */
    for (size_t i = 0; w->cache && i < w->cache->n; i++)
        w->cache->e[i].hash = 0;
}

static kentry_t *find(sg_kswriter_t *w, const char *key)
{
    sg_kscache_t *c = w->cache;
    if (c == NULL || c->n == 0)
        return NULL;
    if ((c->stale || 2 * c->n >= c->icap) && index_build(c) < 0) {
        for (size_t i = 0; i < c->n; i++)
            if (strcmp(c->e[i].key, key) == 0)
                return &c->e[i];
        return NULL;
    }
    size_t m = c->icap - 1;
    for (size_t h = fnv(key) & m; c->idx[h] != 0; h = (h + 1) & m)
        if (strcmp(c->e[c->idx[h] - 1].key, key) == 0)
            return &c->e[c->idx[h] - 1];
    return NULL;
}

static kentry_t *remember(sg_kswriter_t *w, const char *key, const char *path, uint64_t hash)
{
    kentry_t *e = find(w, key);
    if (e == NULL) {
        if (w->cache == NULL && (w->cache = calloc(1, sizeof(*w->cache))) == NULL)
            return NULL;
        sg_kscache_t *c = w->cache;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            kentry_t *ne = realloc(c->e, cap * sizeof(*ne));
            if (ne == NULL)
                return NULL;
            c->e = ne;
            c->cap = cap;
        }
        e = &c->e[c->n];
        memset(e, 0, sizeof(*e));
        e->key = strdup(key);
        e->path = strdup(path);
        if (e->key == NULL || e->path == NULL) {
            free(e->key);
            free(e->path);
            return NULL;
        }
        c->n++;
        if (!c->stale && 2 * c->n < c->icap)
            index_add(c, c->n - 1);
        else
            c->stale = true;
    }
    e->hash = hash;
    e->route = strncmp(key, "HTTPRoute/", 10) == 0 || strncmp(key, "GRPCRoute/", 10) == 0;
    return e;
}

static void plural(const char *kind, char *out, size_t cap)
{
    size_t n = 0;
    for (; *kind && n + 4 < cap; kind++)
        out[n++] = (char)tolower((unsigned char)*kind);
    out[n] = '\0';
    if (n > 1 && out[n - 1] == 'y' && strchr("aeiou", out[n - 2]) == NULL) /* policy -> policies, gateway -> gateways */
        snprintf(out + n - 1, cap - (n - 1), "ies");
    else if (n > 0 && out[n - 1] == 's')
        snprintf(out + n, cap - n, "es");
    else
        snprintf(out + n, cap - n, "s");
}

static bool path_safe(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '.' || *s == '_'))
            return false;
    return true;
}

int sg_kswrite_path(const char *api_version, const char *kind, const char *ns, const char *name, char *out,
                    size_t cap)
{
    char pl[80];
    if (api_version == NULL || kind == NULL || !path_safe(name) || (ns && *ns && !path_safe(ns)) ||
        strlen(kind) > 60)
        return -EINVAL;
    plural(kind, pl, sizeof(pl));
    bool core = strchr(api_version, '/') == NULL;
    int n = (ns && *ns) ? snprintf(out, cap, "/%s/%s/namespaces/%s/%s/%s", core ? "api" : "apis", api_version, ns,
                                   pl, name)
                        : snprintf(out, cap, "/%s/%s/%s/%s", core ? "api" : "apis", api_version, pl, name);
    return n > 0 && (size_t)n < cap ? n : -ENOSPC;
}

static int req(sg_kswriter_t *w, const char *method, const char *path, const char *body, char **resp, size_t *len,
               int *retry_after_s)
{
    *resp = NULL;
    *len = 0;
    *retry_after_s = -1;
    return w->req.fn(w->req.ctx, method, path, body, body ? strlen(body) : 0, resp, len, retry_after_s);
}

/* The wait before the next try: the backoff, or the server's Retry-After on a 429 or 503 when that is longer. */
static int64_t next_wait(int64_t backoff, int st, int retry_after_s)
{
    if ((st == 429 || st == 503) && retry_after_s > 0) {
        int64_t ra = (int64_t)(retry_after_s < SG_KSW_RETRY_AFTER_MAX_S ? retry_after_s : SG_KSW_RETRY_AFTER_MAX_S);
        if (ra * 1000 > backoff)
            return ra * 1000;
    }
    return backoff;
}

static int count(sg_kswriter_t *w, int result)
{
    atomic_fetch_add_explicit(&w->counts[result], 1, memory_order_relaxed);
    return result;
}

/* -EPERM and -ECANCELED are the runner's "no longer leading" and "stopping": nothing to wait out. */
static bool retryable(int st)
{
    return (st < 0 && st != -EPERM && st != -ECANCELED) || st == 429 || st >= 500;
}

/* pre: the object as a LIST just returned it (JSON), read instead of the first GET; NULL: GET it. */
static int write_object(sg_kswriter_t *w, const char *path, const char *key, const char *desired,
                        const char *desired_key, sg_kstatus_shape_t shape, const char *pre)
{
    uint64_t h = fnv(desired_key);
    kentry_t *e = find(w, key);
    if (e != NULL) {
        e->seen = true;
        if (e->hash == h)
            return SG_KSW_UNCHANGED; /* in place since we wrote or read it; not counted: no request was made */
    }
    char spath[1100];
    if (snprintf(spath, sizeof(spath), "%s/status", path) >= (int)sizeof(spath))
        return count(w, SG_KSW_ERROR);
    int64_t wait = w->backoff_ms;
    int conflicts = 0;
    bool pause = false;         /* the last try failed in a way worth waiting out */
    int st = 0, ra = -1;        /* the last answer, and its Retry-After */
    for (int attempt = 0; attempt < w->max_attempts; attempt++) {
        if (pause && w->req.sleep_ms != NULL) {
            if (!w->req.sleep_ms(w->req.ctx, next_wait(wait, st, ra)))
                break;
            wait = wait * 2 > 2000 ? 2000 : wait * 2;
        }
        pause = true;
        char *cur = NULL;
        size_t clen = 0;
        if (pre != NULL) {
            /* the LIST's copy; a 409 on its PUT means it has changed since, and the next try GETs it */
            cur = strdup(pre);
            clen = cur ? strlen(cur) : 0;
            st = cur ? 200 : -ENOMEM;
            pre = NULL;
        } else {
            st = req(w, "GET", path, NULL, &cur, &clen, &ra);
        }
        if (st == 404) {
            free(cur);
            return count(w, SG_KSW_GONE);
        }
        if (st != 200) {
            free(cur);
            if (retryable(st))
                continue;
            return count(w, SG_KSW_ERROR);
        }
        char *body = NULL;
        int rc = cur ? sg_kstatus_merge(cur, clen, desired, shape, w->controller, &body) : -EINVAL;
        free(cur);
        if (rc == 1) {
            kentry_t *ne = remember(w, key, path, h);
            if (ne)
                ne->seen = true;
            return count(w, SG_KSW_UNCHANGED);
        }
        if (rc != 0)
            return count(w, SG_KSW_ERROR);
        char *resp = NULL;
        size_t rlen = 0;
        st = req(w, "PUT", spath, body, &resp, &rlen, &ra);
        free(body);
        free(resp);
        if (st == 200 || st == 201) {
            kentry_t *ne = remember(w, key, path, h);
            if (ne)
                ne->seen = true;
            return count(w, SG_KSW_WRITTEN);
        }
        if (st == 409) {
            count(w, SG_KSW_CONFLICT); /* someone wrote in between: read again at once, without waiting */
            if (++conflicts > 16)
                break;
            attempt--;
            pause = false;
            continue;
        }
        if (st == 404)
            return count(w, SG_KSW_GONE);
        if (!retryable(st))
            return count(w, SG_KSW_ERROR);
    }
    return count(w, SG_KSW_ERROR);
}

int sg_kswrite_object(sg_kswriter_t *w, const char *path, const char *key, const char *desired,
                      const char *desired_key, sg_kstatus_shape_t shape)
{
    return write_object(w, path, key, desired, desired_key, shape, NULL);
}

static void obj_key(const sg_diag_obj_t *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s", o->kind, o->ns ? o->ns : "", o->name);
}

/* ---- reading many objects with one LIST ----
 * A new leader (or the periodic resync) knows nothing of what is in place, and would GET every object before deciding
 * whether to write it: a thousand routes, a thousand GETs. Where a collection (a kind in a namespace) holds many
 * objects to read, a paged LIST reads them all instead, and each object's status is diffed against its listed copy; a
 * copy that has gone stale by the time of the PUT gets a 409, and the writer reads that object again. */

typedef struct pre {
    char *key;                  /* "Kind/ns/name" */
    char *json;
} pre_t;

typedef struct prefetch {
    pre_t *e;
    size_t n, cap;
} prefetch_t;

static void pf_free(prefetch_t *pf)
{
    for (size_t i = 0; i < pf->n; i++) {
        free(pf->e[i].key);
        free(pf->e[i].json);
    }
    free(pf->e);
    memset(pf, 0, sizeof(*pf));
}

static int pre_cmp(const void *a, const void *b)
{
    return strcmp(((const pre_t *)a)->key, ((const pre_t *)b)->key);
}

static const char *pf_find(const prefetch_t *pf, const char *key)
{
    pre_t k = {.key = (char *)key};
    const pre_t *e = pf->n ? bsearch(&k, pf->e, pf->n, sizeof(*pf->e), pre_cmp) : NULL;
    return e ? e->json : NULL;
}

static const char *scalar_at(struct fy_node *n, const char *path)
{
    struct fy_node *v = n ? fy_node_by_path(n, path, FY_NT, FYNWF_DONT_FOLLOW) : NULL;
    return v && fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar0(v) : NULL;
}

/* One listed item into pf. Items of a list of a built-in kind carry no apiVersion and kind (a PUT needs them): they
 * are added from the list's. */
static int pf_add(prefetch_t *pf, const char *kind, const char *api_version, struct fy_node *item)
{
    const char *name = scalar_at(item, "/metadata/name"), *ns = scalar_at(item, "/metadata/namespace");
    if (name == NULL)
        return 0;
    char *json = sg_kstatus_node_json(item), *key = NULL;
    if (json == NULL || json[0] != '{')
        goto nomem;
    if (scalar_at(item, "/kind") == NULL || scalar_at(item, "/apiVersion") == NULL) {
        size_t cap = strlen(json) + strlen(kind) + strlen(api_version) + 40;
        char *j = malloc(cap);
        if (j == NULL)
            goto nomem;
        snprintf(j, cap, "{\"apiVersion\":\"%s\",\"kind\":\"%s\"%s%s", api_version, kind, json[1] == '}' ? "" : ",",
                 json + 1);
        free(json);
        json = j;
    }
    if (pf->n == pf->cap) {
        size_t cap = pf->cap ? pf->cap * 2 : 256;
        pre_t *e = realloc(pf->e, cap * sizeof(*e));
        if (e == NULL)
            goto nomem;
        pf->e = e;
        pf->cap = cap;
    }
    size_t kl = strlen(kind) + strlen(ns ? ns : "") + strlen(name) + 3;
    if ((key = malloc(kl)) == NULL)
        goto nomem;
    snprintf(key, kl, "%s/%s/%s", kind, ns ? ns : "", name);
    pf->e[pf->n++] = (pre_t){key, json};
    return 0;
nomem:
    free(json);
    return -ENOMEM;
}

/* Every page of the LIST of coll into pf. A failure leaves what was read: the rest is read one by one. */
static void list_into(sg_kswriter_t *w, const char *coll, const char *kind, const char *api_version, prefetch_t *pf)
{
    char path[2400], cont[1024] = "";
    for (int page = 0; page < PREFETCH_PAGES; page++) {
        snprintf(path, sizeof(path), "%s?limit=%d%s%s", coll, PREFETCH_PAGE, cont[0] ? "&continue=" : "", cont);
        char *body = NULL;
        size_t len = 0;
        int ra;
        int st = req(w, "GET", path, NULL, &body, &len, &ra);
        struct fy_document *d = st == 200 && body ? sg_kwatch_parse_json(body, len) : NULL;
        free(body);
        if (d == NULL)
            return;
        struct fy_node *root = fy_document_root(d);
        struct fy_node *items = fy_node_by_path(root, "/items", FY_NT, FYNWF_DONT_FOLLOW);
        void *it = NULL;
        struct fy_node *item;
        int rc = 0;
        while (rc == 0 && items && fy_node_get_type(items) == FYNT_SEQUENCE &&
               (item = fy_node_sequence_iterate(items, &it)) != NULL)
            rc = pf_add(pf, kind, api_version, item);
        const char *c = scalar_at(root, "/metadata/continue");
        bool more = rc == 0 && c != NULL && c[0] != '\0' && sg_kclient_query_escape(c, cont, sizeof(cont)) >= 0;
        fy_document_destroy(d);
        if (!more)
            return;
    }
}

typedef struct pgroup {
    char coll[1024];
    const sg_diag_obj_t *o;     /* one of its objects: kind and apiVersion */
    int n;                      /* objects to read in it */
} pgroup_t;

/* An object whose status is not known to be in place: it must be read before it is written. */
typedef struct job {
    const sg_diag_obj_t *o;
    char *des, *des_key;
    sg_kstatus_shape_t shape;
    char key[800], path[1024];
} job_t;

/* LISTs the collections where many objects are to be read (after a forget: all of them). */
static void prefetch(sg_kswriter_t *w, const job_t *jobs, size_t njobs, prefetch_t *pf)
{
    pgroup_t *g = calloc(PREFETCH_GROUPS, sizeof(*g));
    size_t ng = 0;
    if (g == NULL)
        return;
    for (size_t i = 0; i < njobs; i++) {
        const sg_diag_obj_t *o = jobs[i].o;
        if (o->ns == NULL || o->ns[0] == '\0')
            continue;
        char coll[1024];
        snprintf(coll, sizeof(coll), "%s", jobs[i].path);
        char *slash = strrchr(coll, '/');
        if (slash == NULL)
            continue;
        *slash = '\0';
        size_t j = 0;
        while (j < ng && strcmp(g[j].coll, coll) != 0)
            j++;
        if (j == ng) {
            if (ng == PREFETCH_GROUPS)
                continue;
            snprintf(g[ng].coll, sizeof(g[ng].coll), "%s", coll);
            g[ng++].o = o;
        }
        g[j].n++;
    }
    for (size_t j = 0; j < ng; j++)
        if (g[j].n >= PREFETCH_MIN)
            list_into(w, g[j].coll, g[j].o->kind, g[j].o->api_version, pf);
    free(g);
    if (pf->n > 1)
        qsort(pf->e, pf->n, sizeof(*pf->e), pre_cmp);
}

int sg_kswrite_sync(sg_kswriter_t *w, const sg_config_diag_t *d, const sg_kstatus_env_t *env)
{
    int failed = 0;
    sg_kstatus_env_t fixed = *env;
    fixed.now = "1970-01-01T00:00:00Z";
    for (size_t i = 0; w->cache && i < w->cache->n; i++)
        w->cache->e[i].seen = false;
    /* First the desired status of each object; those in place (by our cache) need no request, the others are read:
     * by LISTs where there are many in one collection, else one by one. */
    job_t *jobs = NULL;
    size_t njobs = 0, capjobs = 0;
    for (size_t i = 0; i < d->nobjs; i++) {
        const sg_diag_obj_t *o = &d->objs[i];
        char *des = NULL, *des_key = NULL;
        sg_kstatus_shape_t shape;
        if (o->type == SG_DIAG_GATEWAYCLASS || o->type == SG_DIAG_OTHER)
            continue;           /* GatewayClasses are written from the listed objects (krun.c) */
        int rc = sg_kstatus_desired(d, o, env, &des, &shape);
        if (rc == -ENOENT)
            continue;
        if (rc == 0)
            rc = sg_kstatus_desired(d, o, &fixed, &des_key, &shape);
        char key[800], path[1024];
        obj_key(o, key, sizeof(key));
        if (rc == 0 && sg_kswrite_path(o->api_version, o->kind, o->ns, o->name, path, sizeof(path)) < 0)
            rc = -EINVAL;
        const kentry_t *e = rc == 0 ? find(w, key) : NULL;
        if (rc == 0 && (e == NULL || e->hash != fnv(des_key))) {
            if (njobs == capjobs) {
                size_t cap = capjobs ? capjobs * 2 : 64;
                job_t *nj = realloc(jobs, cap * sizeof(*nj));
                if (nj == NULL) {
                    rc = -ENOMEM;
                } else {
                    jobs = nj;
                    capjobs = cap;
                }
            }
            if (rc == 0) {
                job_t *j = &jobs[njobs++];
                j->o = o;
                j->des = des;
                j->des_key = des_key;
                j->shape = shape;
                snprintf(j->key, sizeof(j->key), "%s", key);
                snprintf(j->path, sizeof(j->path), "%s", path);
                continue;       /* des and des_key are the job's now */
            }
        }
        if (rc == 0) {
            write_object(w, path, key, des, des_key, shape, NULL); /* in place: marks it seen, no request */
        } else {
            failed++;
            count(w, SG_KSW_ERROR);
        }
        free(des);
        free(des_key);
    }
    prefetch_t pf = {0};
    prefetch(w, jobs, njobs, &pf);
    for (size_t i = 0; i < njobs; i++) {
        job_t *j = &jobs[i];
        int r = write_object(w, j->path, j->key, j->des, j->des_key, j->shape, pf_find(&pf, j->key));
        failed += r == SG_KSW_ERROR;
        free(j->des);
        free(j->des_key);
    }
    free(jobs);
    pf_free(&pf);
    /* Routes we wrote before that the build no longer has (deleted, or naming none of our Gateways now): our entries
     * go. A deleted one answers 404, and is forgotten either way. */
    for (size_t i = 0; w->cache && i < w->cache->n;) {
        kentry_t *e = &w->cache->e[i];
        if (e->seen || !e->route) {
            i++;
            continue;
        }
        char *path = e->path, *key = e->key;
        e->hash = 0;
        e->seen = true;
        int r = sg_kswrite_object(w, path, key, "{\"parents\":[]}", "{\"parents\":[]}#gone", SG_KSTATUS_PARENTS);
        failed += r == SG_KSW_ERROR;
        if (r == SG_KSW_ERROR) {
            i++;
            continue;           /* try again at the next sync */
        }
        /* Ours are gone from it (or it is): forget it. remember() found the entry, so it did not move. */
        free(e->key);
        free(e->path);
        w->cache->e[i] = w->cache->e[--w->cache->n];
        w->cache->stale = true;
    }
    return failed;
}
