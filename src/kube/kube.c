/* kube.c: the kube thread: a reflector per kind (paged LIST, WATCH from its resourceVersion with bookmarks, relist on
 * 410, backoff with jitter, absent CRDs re-checked), all on one epoll loop; the debounced build; the hand-over of each
 * generation to the main thread; metrics. */
#include "kube/kube.h"

#include <libfyaml.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "core/thread.h"
#include "config/diag.h"
#include "kube/kbuild.h"
#include "kube/kclient.h"
#include "kube/krun.h"
#include "kube/kstore.h"
#include "kube/kwatch.h"

#define LIST_LIMIT 500
/* Secrets and ConfigMaps may each hold up to about 1.5 MiB (etcd's request limit): 100 of them stay under a response's
 * cap (SG_KCLIENT_MAX_BODY, 256 MiB), which 500 would not; a LIST past the cap fails every time. */
#define LIST_LIMIT_LARGE 100
#define REQ_TIMEOUT_MS 30000      /* one LIST page, or a watch's response head */
#define ABSENT_RECHECK_MS 30000   /* a kind the server does not serve (CRD not installed) is asked for again */
#define BACKOFF_MIN_MS 800        /* client-go: 800 ms doubling to 30 s, jitter 1.0, reset after 2 min of health */
#define BACKOFF_MAX_MS 30000
#define BACKOFF_RESET_MS 120000
#define WATCH_MIN_S 300           /* timeoutSeconds is random in [5 min, 10 min), as client-go does */
#define WATCH_MARGIN_MS 30000     /* the server ends a watch at timeoutSeconds; past this margin we end it */
#define DEBOUNCE_QUIET_MS 100
#define DEBOUNCE_MAX_MS 1000
#define RESYNC_MS (30 * 60000)    /* a full relist every 30 min (+ up to 10 % jitter): a safety net for a missed event */
#define READ_ROUNDS 16            /* reads per watch per wakeup, so one busy kind cannot starve the others */
#define READ_PACE_MS 50           /* after a wakeup that read events, the next reads the watches no sooner than this */

enum { K_LIST = 0, K_WATCH, K_WAIT };
enum { R_EXPIRED = 0, R_CLOSED, R_TIMEOUT, R_ERROR, R_DECODE, R_N };
static const char *const reason_names[R_N] = {"expired", "closed", "timeout", "error", "decode"};

typedef struct kw {
    int kind;
    int state;
    bool relist;                /* K_WAIT ends in a LIST (else a WATCH from rv) */
    char rv[128];
    sg_kstream_t *st;           /* the watch; its socket is in the thread's epoll set while it is open */
    bool more;                  /* the last read left bytes in the stream's buffers, which its socket does not show */
    sg_kframer_t fr;
    uint64_t next_ms;
    uint64_t backoff_ms;
    uint64_t last_fail_ms;
    uint64_t watch_start_ms, watch_end_ms;
    uint64_t watch_events;
    uint64_t resync_ms;         /* when the next safety-net relist is due */
    /* read by the main thread (metrics) */
    atomic_bool synced;
    atomic_bool served;
    _Atomic uint64_t restarts[R_N];
    _Atomic uint64_t events;
    _Atomic uint64_t objects;
} kw_t;

struct sg_kube {
    sg_kclient_t *client;
    char *controller;
    char *watch_ns;
    char *lease_ns;
    char *publish_service;
    int64_t lease_duration_ms;
    int nice; /* the watch and status threads' */
    bool cpus_set;              /* --kube-cpus: the watch and status threads run on cpus */
    cpu_set_t cpus;
    sg_krun_t *krun;            /* the status thread (Lease, status writes); NULL once released; under lock */
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_bool relist_all;
    int wake_fd;                /* wakes the kube thread (stop, relist) */
    int ep;                     /* the kube thread's epoll set: wake_fd and the open watches */
    int ready_fd;               /* wakes the main thread: a generation waits */
    pthread_mutex_t lock;       /* guards pending */
    sg_config_t *pending;
    uint64_t pending_build;     /* its build number */
    uint64_t builds;            /* generations built (kube thread) */
    sg_kstore_t *store;
    sg_kdebounce_t deb;
    sg_kbuild_t *kbuild;        /* the build's state between builds */
    uint64_t rng;
    uint64_t read_ms;           /* the last wakeup that read events (0: none yet) */
    kw_t kinds[SG_KK_N];
    /* metrics */
    _Atomic uint64_t reads;     /* wakeups that read events */
    _Atomic uint64_t builds_ok, builds_failed, builds_unchanged, builds_patched;
    _Atomic uint64_t build_us_sum, build_us_last, build_cpu_us_last;
    _Atomic uint64_t store_bytes;
};

static char *xdup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL) {
        fprintf(stderr, "ssegate: out of memory\n");
        abort();
    }
    return d;
}

static uint64_t rnd(sg_kube_t *k)
{
    k->rng ^= k->rng << 13;
    k->rng ^= k->rng >> 7;
    k->rng ^= k->rng << 17;
    return k->rng;
}

sg_kube_t *sg_kube_new(const sg_kube_opts_t *o, char *err, size_t cap)
{
    sg_kconf_t kc;
    int rc = o->kubeconfig ? sg_kconf_load_kubeconfig(&kc, o->kubeconfig, err, cap)
                           : sg_kconf_incluster(&kc, o->sa_dir, err, cap);
    if (rc < 0)
        return NULL;
    sg_kube_t *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        sg_kconf_free(&kc);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    k->wake_fd = k->ready_fd = k->ep = -1;
    pthread_mutex_init(&k->lock, NULL);
    k->client = sg_kclient_new(&kc, err, cap);
    const char *pod_ns = getenv("POD_NAMESPACE");
    k->lease_ns = xdup(o->lease_ns                ? o->lease_ns
                       : pod_ns && *pod_ns        ? pod_ns
                       : o->incluster && kc.namespace ? kc.namespace
                                                  : "default");
    sg_kconf_free(&kc);
    if (k->client == NULL) {
        sg_kube_free(k);
        return NULL;
    }
    sg_kclient_set_rate(k->client, o->api_rate_set ? (double)o->api_qps : SG_KCLIENT_QPS,
                        o->api_burst ? (int)o->api_burst : SG_KCLIENT_BURST);
    k->controller = xdup(o->controller ? o->controller : "ssegate.io/gateway-controller");
    k->publish_service = xdup(o->publish_service);
    k->lease_duration_ms = o->lease_duration_ms;
    k->nice = o->nice_set ? (int)o->nice : SG_KUBE_NICE;
    k->cpus_set = o->cpus_set;
    k->cpus = o->cpus;
    k->watch_ns = xdup(o->watch_ns);
    k->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    k->ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    k->ep = epoll_create1(EPOLL_CLOEXEC);
    k->store = sg_kstore_new();
    k->kbuild = sg_kbuild_new();
    struct epoll_event wev = {.events = EPOLLIN, .data.u32 = SG_KK_N};
    if (k->wake_fd < 0 || k->ready_fd < 0 || k->ep < 0 || k->store == NULL || k->kbuild == NULL ||
        epoll_ctl(k->ep, EPOLL_CTL_ADD, k->wake_fd, &wev) < 0) {
        snprintf(err, cap, "cannot set up the kube thread: %s", strerror(errno));
        sg_kube_free(k);
        return NULL;
    }
    if (getrandom(&k->rng, sizeof(k->rng), 0) != sizeof(k->rng))
        k->rng = sg_now_ms();
    k->rng |= 1;
    sg_kdebounce_init(&k->deb, DEBOUNCE_QUIET_MS, DEBOUNCE_MAX_MS);
    for (int i = 0; i < SG_KK_N; i++) {
        kw_t *w = &k->kinds[i];
        w->kind = i;
        w->state = K_LIST;
        w->backoff_ms = BACKOFF_MIN_MS;
        sg_kframer_init(&w->fr, SG_KWATCH_MAX_LINE);
    }
    return k;
}

const char *sg_kube_controller(const sg_kube_t *k)
{
    return k->controller;
}

const char *sg_kube_lease_namespace(const sg_kube_t *k)
{
    return k->lease_ns;
}

static void wake(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof(one));
    (void)n;
}

static void drain_fd(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
}

void sg_kube_free(sg_kube_t *k)
{
    if (k == NULL)
        return;
    if (k->started) {
        atomic_store(&k->stop, true);
        wake(k->wake_fd);
        pthread_join(k->thread, NULL);
    }
    for (int i = 0; i < SG_KK_N; i++) {
        sg_kstream_close(k->kinds[i].st);
        sg_kframer_free(&k->kinds[i].fr);
    }
    sg_kube_release(k);         /* before the client goes: the release is a request */
    sg_config_unref(k->pending);
    sg_kbuild_free(k->kbuild);
    sg_kstore_free(k->store);
    sg_kclient_free(k->client);
    if (k->wake_fd >= 0)
        close(k->wake_fd);
    if (k->ready_fd >= 0)
        close(k->ready_fd);
    if (k->ep >= 0)
        close(k->ep);
    pthread_mutex_destroy(&k->lock);
    free(k->controller);
    free(k->watch_ns);
    free(k->lease_ns);
    free(k->publish_service);
    free(k);
}

int sg_kube_fd(const sg_kube_t *k)
{
    return k->ready_fd;
}

sg_config_t *sg_kube_take(sg_kube_t *k, uint64_t *build)
{
    drain_fd(k->ready_fd);
    pthread_mutex_lock(&k->lock);
    sg_config_t *c = k->pending;
    k->pending = NULL;
    if (build)
        *build = k->pending_build;
    pthread_mutex_unlock(&k->lock);
    return c;
}

int sg_kube_request(void *ctx, const char *method, const char *path, const char *body, size_t len, char **resp,
                    size_t *resp_len, int *retry_after_s)
{
    sg_kube_t *k = ctx;
    sg_kresp_t r;
    *resp = NULL;
    *resp_len = 0;
    *retry_after_s = -1;
    int rc = sg_kclient_do(k->client, method, path, NULL, body, len, REQ_TIMEOUT_MS, &r);
    if (rc < 0)
        return rc == SG_EBADMSG ? -EPROTO : rc;
    *resp = r.body;
    *resp_len = r.len;
    *retry_after_s = r.retry_after_s;
    return r.status;
}

void sg_kube_published(sg_kube_t *k, uint64_t build, const uint16_t *failed, size_t nfailed)
{
    pthread_mutex_lock(&k->lock);
    if (k->krun != NULL)
        sg_krun_published(k->krun, build, failed, nfailed);
    pthread_mutex_unlock(&k->lock);
}

void sg_kube_rebound(sg_kube_t *k, uint64_t build, const uint16_t *failed, size_t nfailed)
{
    pthread_mutex_lock(&k->lock);
    if (k->krun != NULL)
        sg_krun_rebound(k->krun, build, failed, nfailed);
    pthread_mutex_unlock(&k->lock);
}

void sg_kube_release(sg_kube_t *k)
{
    pthread_mutex_lock(&k->lock);
    sg_krun_t *r = k->krun;
    k->krun = NULL;
    pthread_mutex_unlock(&k->lock);
    sg_krun_stop(r);
}

void sg_kube_relist(sg_kube_t *k)
{
    atomic_store(&k->relist_all, true);
    wake(k->wake_fd);
}

/* ---- paths ---- */

static void collection_path(const sg_kube_t *k, int kind, char *out, size_t cap)
{
    const sg_kkind_t *kk = &sg_kkinds[kind];
    char ns[320] = "";
    if (kk->namespaced && k->watch_ns != NULL) {
        char esc[256];
        if (sg_kclient_query_escape(k->watch_ns, esc, sizeof(esc)) >= 0)
            snprintf(ns, sizeof(ns), "/namespaces/%s", esc);
    }
    if (kk->group[0])
        snprintf(out, cap, "/apis/%s/%s%s/%s", kk->group, kk->version, ns, kk->resource);
    else
        snprintf(out, cap, "/api/%s%s/%s", kk->version, ns, kk->resource);
}

/* The Secret types the store never keeps (kstore.c keeps kubernetes.io/tls, and Opaque or untyped ones holding a
 * ca.crt), left out by the server: Helm keeps every release revision in a Secret of up to 1 MiB, so a cluster's
 * Secrets are mostly those, and a page of 500 of them could outgrow a response's cap (SG_KCLIENT_MAX_BODY) and hold the
 * LIST (and /ready) back for good. A Secret's type is immutable: none moves in or out of the selection. */
#define SECRET_SELECTOR "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token,type!=kubernetes.io/dockercfg," \
                        "type!=kubernetes.io/dockerconfigjson,type!=kubernetes.io/basic-auth,type!=kubernetes.io/ssh-auth," \
                        "type!=bootstrap.kubernetes.io/token"

/* "&fieldSelector=..." for kind's LIST and WATCH, or "". */
static void selector(int kind, char *out, size_t cap)
{
    char esc[512];
    out[0] = '\0';
    if (kind == SG_KK_SECRET && sg_kclient_query_escape(SECRET_SELECTOR, esc, sizeof(esc)) >= 0)
        snprintf(out, cap, "&fieldSelector=%s", esc);
}

static const char *kind_label(int kind)
{
    return sg_kkinds[kind].kind;
}

/* ---- reflector ---- */

static void set_wait(sg_kube_t *k, kw_t *w, uint64_t now, bool relist, int retry_after_s)
{
    if (w->last_fail_ms != 0 && now - w->last_fail_ms > BACKOFF_RESET_MS)
        w->backoff_ms = BACKOFF_MIN_MS;
    uint64_t d = w->backoff_ms + rnd(k) % (w->backoff_ms + 1); /* jitter 1.0: [b, 2b] */
    if (retry_after_s > 0 && (uint64_t)retry_after_s * 1000 > d)
        d = (uint64_t)retry_after_s * 1000;
    w->backoff_ms = SG_MIN(w->backoff_ms * 2, (uint64_t)BACKOFF_MAX_MS);
    w->last_fail_ms = now;
    w->state = K_WAIT;
    w->relist = relist;
    w->next_ms = now + d;
}

static void close_watch(sg_kube_t *k, kw_t *w)
{
    if (w->st != NULL)
        (void)epoll_ctl(k->ep, EPOLL_CTL_DEL, sg_kstream_fd(w->st), NULL); /* before its fd can be another's */
    sg_kstream_close(w->st);
    w->st = NULL;
    w->more = false;
    sg_kframer_reset(&w->fr);
}

static void restart(sg_kube_t *k, kw_t *w, int reason)
{
    atomic_fetch_add_explicit(&w->restarts[reason], 1, memory_order_relaxed);
    close_watch(k, w);
}

static void counted(sg_kube_t *k, kw_t *w)
{
    atomic_store_explicit(&w->objects, sg_kstore_count(k->store, w->kind), memory_order_relaxed);
    atomic_store_explicit(&k->store_bytes, sg_kstore_bytes(k->store), memory_order_relaxed);
}

static void changed(sg_kube_t *k, kw_t *w)
{
    sg_kdebounce_touch(&k->deb, sg_now_ms());
    counted(k, w);
}

/* Whether a change to this object can change the build (sg_kbuild_needs_service): only Services and EndpointSlices
 * are told apart, by the Service (a slice's, as stored: its kubernetes.io/service-name). */
static bool service_wanted(const sg_kube_t *k, int kind, const char *ns, const char *name)
{
    if (kind == SG_KK_SERVICE)
        return sg_kbuild_needs_service(k->kbuild, ns, name);
    if (kind != SG_KK_ENDPOINTSLICE)
        return true;
    const sg_kobj_t *o = sg_kstore_get(k->store, kind, ns, name);
    if (o == NULL || o->aux == NULL)
        return false; /* not stored, or no Service: the build leaves it out */
    return sg_kbuild_needs_service_key(k->kbuild, o->aux);
}

static const char *status_text(const sg_kresp_t *r)
{
    return r->body && r->len ? r->body : "";
}

/* One LIST of a kind, every page, into the store with replace-with-deletes. Returns 0 (rv set), -ENOENT when the
 * server does not serve the kind, or another error with *retry_after set for a 429. */
static int list_kind(sg_kube_t *k, kw_t *w, int *retry_after)
{
    char base[512], path[2304], cont[1024] = "", sel[600];
    collection_path(k, w->kind, base, sizeof(base));
    selector(w->kind, sel, sizeof(sel));
    int limit = w->kind == SG_KK_SECRET || w->kind == SG_KK_CONFIGMAP ? LIST_LIMIT_LARGE : LIST_LIMIT;
    *retry_after = -1;
    int expired_restarts = 0;
    bool begun = false;
    for (;;) {
        if (cont[0])
            snprintf(path, sizeof(path), "%s?limit=%d&continue=%s%s", base, limit, cont, sel);
        else
            snprintf(path, sizeof(path), "%s?limit=%d%s", base, limit, sel);
        sg_kresp_t r;
        int rc = sg_kclient_do(k->client, "GET", path, NULL, NULL, 0, REQ_TIMEOUT_MS, &r);
        if (rc < 0) {
            sg_log_error("kube: LIST %s: %s", base, strerror(rc == SG_EBADMSG ? EPROTO : -rc));
            return rc;
        }
        if (r.status == 410 && cont[0] && expired_restarts++ < 3) {
            /* The continue token expired (the list took too long): start over with a full list. */
            sg_kresp_free(&r);
            cont[0] = '\0';
            continue;
        }
        if (r.status == 404) {
            sg_kresp_free(&r);
            return -ENOENT;
        }
        if (r.status != 200) {
            sg_log_error("kube: LIST %s: HTTP %d %.200s", base, r.status, status_text(&r));
            *retry_after = r.retry_after_s;
            int st = r.status;
            sg_kresp_free(&r);
            return st == 403 ? -EPERM : st == 401 ? -EACCES : -EAGAIN;
        }
        sg_kjson_t d;
        int prc = sg_kjson_parse(&d, r.body ? r.body : "", r.len);
        if (prc == -ENOMEM) {
            sg_kresp_free(&r);
            return -ENOMEM;
        }
        uint32_t md = prc == 0 ? sg_kjson_get_type(&d, 1, "metadata", SG_KJSON_OBJECT) : 0;
        uint32_t items = prc == 0 ? sg_kjson_get(&d, 1, "items") : 0;
        int itype = sg_kjson_type(&d, items);
        const char *rv = sg_kjson_get_str(&d, md, "resourceVersion");
        if (rv == NULL || (items != 0 && itype != SG_KJSON_ARRAY && itype != SG_KJSON_NULL)) {
            sg_log_error("kube: LIST %s: not a list", base);
            sg_kjson_free(&d);
            sg_kresp_free(&r);
            return SG_EBADMSG;
        }
        if (!begun) {
            sg_kstore_relist_begin(k->store, w->kind);
            begun = true;
        }
        bool any = false;
        for (uint32_t it = itype == SG_KJSON_ARRAY ? sg_kjson_first(&d, items) : 0; it;
             it = sg_kjson_next_elem(&d, items, it)) {
            prc = sg_kstore_put(k->store, w->kind, &d, it);
            if (prc == -ENOMEM) {
                sg_kjson_free(&d);
                sg_kresp_free(&r);
                return -ENOMEM;
            }
            any |= prc == 1;
        }
        snprintf(w->rv, sizeof(w->rv), "%s", rv);
        const char *c = sg_kjson_get_str(&d, md, "continue");
        if (c != NULL && c[0] != '\0') {
            if (sg_kclient_query_escape(c, cont, sizeof(cont)) < 0) {
                sg_kjson_free(&d);
                sg_kresp_free(&r);
                return -ENOSPC;
            }
        } else {
            cont[0] = '\0';
        }
        sg_kjson_free(&d);
        sg_kresp_free(&r);
        if (any)
            changed(k, w);
        if (cont[0] == '\0')
            break;
    }
    if (sg_kstore_relist_end(k->store, w->kind) > 0)
        changed(k, w);
    atomic_store_explicit(&w->objects, sg_kstore_count(k->store, w->kind), memory_order_relaxed);
    return 0;
}

static void mark_synced(sg_kube_t *k, kw_t *w)
{
    if (!atomic_load(&w->synced)) {
        atomic_store(&w->synced, true);
        sg_kdebounce_touch(&k->deb, sg_now_ms()); /* the first build waits for the last kind */
    }
}

static void open_watch(sg_kube_t *k, kw_t *w, uint64_t now)
{
    char base[512], path[1600], rv[300], sel[600];
    collection_path(k, w->kind, base, sizeof(base));
    selector(w->kind, sel, sizeof(sel));
    if (sg_kclient_query_escape(w->rv, rv, sizeof(rv)) < 0)
        rv[0] = '\0';
    unsigned timeout_s = WATCH_MIN_S + (unsigned)(rnd(k) % WATCH_MIN_S);
    snprintf(path, sizeof(path), "%s?watch=1&allowWatchBookmarks=true&resourceVersion=%s&timeoutSeconds=%u%s", base, rv,
             timeout_s, sel);
    sg_kresp_t r;
    int rc = sg_kclient_stream(k->client, path, REQ_TIMEOUT_MS, &w->st, &r);
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)w->kind};
        if (epoll_ctl(k->ep, EPOLL_CTL_ADD, sg_kstream_fd(w->st), &ev) < 0) {
            sg_log_error("kube: WATCH %s: %s", base, strerror(errno));
            restart(k, w, R_ERROR);
            set_wait(k, w, now, false, -1);
            return;
        }
        w->state = K_WATCH;
        w->watch_start_ms = now;
        w->watch_end_ms = now + timeout_s * 1000ull + WATCH_MARGIN_MS;
        w->watch_events = 0;
        sg_kframer_reset(&w->fr);
        w->more = sg_kstream_has_pending(w->st); /* the body's first bytes may have come with the head */
        return;
    }
    if (rc == -EPROTO && r.status == 410) {
        /* Our resourceVersion is too old for the server's history: only a relist can catch up. */
        atomic_fetch_add_explicit(&w->restarts[R_EXPIRED], 1, memory_order_relaxed);
        sg_kresp_free(&r);
        w->state = K_LIST;
        return;
    }
    if (rc == -EPROTO)
        sg_log_error("kube: WATCH %s: HTTP %d %.200s", base, r.status, status_text(&r));
    else
        sg_log_error("kube: WATCH %s: %s", base, strerror(rc == SG_EBADMSG ? EPROTO : -rc));
    atomic_fetch_add_explicit(&w->restarts[R_ERROR], 1, memory_order_relaxed);
    set_wait(k, w, now, r.status == 404, r.retry_after_s);
    sg_kresp_free(&r);
}

static void do_list(sg_kube_t *k, kw_t *w, uint64_t now)
{
    int retry_after = -1;
    int rc = list_kind(k, w, &retry_after);
    if (rc == -EPERM && sg_kkinds[w->kind].optional) {
        /* Our RBAC does not let us read a policy kind: serve without it rather than never be ready (the log above
         * says which; deploy/kubernetes/rbac.yaml grants every kind ssegate reads). Asked again like an absent CRD. */
        rc = -ENOENT;
    }
    if (rc == -ENOENT) {
        /* Not served: the CRD is not installed (or was removed: then its objects go). Ask again later. */
        if (atomic_load(&w->served) || !atomic_load(&w->synced))
            sg_log_info("kube: %s (%s/%s) is not served by the API server, or not ours to read; skipped, checked again "
                        "every %d s",
                        kind_label(w->kind), sg_kkinds[w->kind].group, sg_kkinds[w->kind].version,
                        ABSENT_RECHECK_MS / 1000);
        atomic_store(&w->served, false);
        sg_kstore_relist_begin(k->store, w->kind);
        if (sg_kstore_relist_end(k->store, w->kind) > 0)
            changed(k, w);
        mark_synced(k, w);
        w->state = K_WAIT;
        w->relist = true;
        w->next_ms = now + ABSENT_RECHECK_MS;
        return;
    }
    if (rc < 0) {
        if (rc == -EACCES)
            sg_kclient_token_expire(k->client);
        set_wait(k, w, now, true, retry_after);
        return;
    }
    if (!atomic_load(&w->served) && atomic_load(&w->synced))
        sg_log_info("kube: %s is served now", kind_label(w->kind));
    w->resync_ms = now + RESYNC_MS + rnd(k) % (RESYNC_MS / 10);
    atomic_store(&w->served, true);
    mark_synced(k, w);
    open_watch(k, w, sg_now_ms());
}

static bool apply_event(sg_kube_t *k, kw_t *w, sg_kevent_t *ev)
{
    atomic_fetch_add_explicit(&w->events, 1, memory_order_relaxed);
    /* A watch that delivers is healthy: its next failure starts the backoff over (client-go waits for 2 minutes
     * of health; a watch that has worked is evidence enough, and keeps a server's brief hiccups brief). */
    if (w->watch_events++ == 0) {
        w->backoff_ms = BACKOFF_MIN_MS;
        w->last_fail_ms = 0;
    }
    if (ev->rv != NULL)
        snprintf(w->rv, sizeof(w->rv), "%s", ev->rv);
    uint32_t md = sg_kjson_get_type(&ev->doc, ev->object, "metadata", SG_KJSON_OBJECT);
    const char *name = sg_kjson_get_str(&ev->doc, md, "name");
    const char *nss = sg_kjson_get_str(&ev->doc, md, "namespace");
    if (nss == NULL || !sg_kkinds[w->kind].namespaced)
        nss = "";
    /* A Service or EndpointSlice no route (nor Service policy) names cannot change the build: it is stored, and not
     * built for. Most of a cluster's Services are such; their pods' churn then costs the event and no selection. */
    bool wanted = name == NULL || service_wanted(k, w->kind, nss, name);
    int rc = 0;
    if (ev->type == SG_KEV_ADDED || ev->type == SG_KEV_MODIFIED) {
        rc = sg_kstore_put(k->store, w->kind, &ev->doc, ev->object);
    } else if (ev->type == SG_KEV_DELETED) {
        if (name != NULL)
            rc = sg_kstore_delete(k->store, w->kind, nss, name);
    }
    if (rc == 1) {
        wanted = wanted || name == NULL || service_wanted(k, w->kind, nss, name); /* a slice moved to a wanted one */
        if (wanted)
            changed(k, w);
        else
            counted(k, w);
    }
    return rc >= 0 || rc == SG_EBADMSG;
}

/* Events received, every kind (the watch thread's own counters). */
static uint64_t events_in(const sg_kube_t *k)
{
    uint64_t n = 0;
    for (int i = 0; i < SG_KK_N; i++)
        n += atomic_load_explicit(&k->kinds[i].events, memory_order_relaxed);
    return n;
}

/* Reads what the watch has; ends it on an error, an expired resourceVersion or the end of the body. */
static void read_watch(sg_kube_t *k, kw_t *w, uint64_t now)
{
    char buf[65536];
    w->more = false;
    for (int round = 0; round < READ_ROUNDS && w->st != NULL; round++) {
        ssize_t n = sg_kstream_read(w->st, buf, sizeof(buf));
        if (n == SG_EAGAIN)
            return;
        if (n == 0) {
            /* The server ended the watch (timeoutSeconds). Resume from the last resourceVersion; but a watch that
             * ends at once with nothing is a failure (client-go), or we would spin on it. */
            bool quick = now - w->watch_start_ms < 1000 && w->watch_events == 0;
            restart(k, w, R_CLOSED);
            if (quick)
                set_wait(k, w, now, false, -1);
            else
                open_watch(k, w, now);
            return;
        }
        if (n < 0) {
            sg_log_error("kube: watch of %s broke: %s", kind_label(w->kind),
                         n == SG_EBADMSG ? "malformed chunked body" : strerror((int)-n));
            restart(k, w, R_ERROR);
            set_wait(k, w, now, false, -1);
            return;
        }
        int rc = sg_kframer_push(&w->fr, buf, (size_t)n);
        if (rc < 0) {
            sg_log_error("kube: watch of %s: an event over %u bytes; relisting", kind_label(w->kind),
                         SG_KWATCH_MAX_LINE);
            restart(k, w, R_DECODE);
            set_wait(k, w, now, true, -1);
            return;
        }
        sg_str_t line;
        while (w->st != NULL && sg_kframer_next(&w->fr, &line) == 1) {
            sg_kevent_t ev;
            rc = sg_kwatch_decode(line.p, line.n, &ev);
            if (rc < 0) {
                /* An event we cannot read may be a change we miss: only a relist is sure to catch up. */
                sg_log_error("kube: watch of %s: undecodable event; relisting", kind_label(w->kind));
                restart(k, w, R_DECODE);
                set_wait(k, w, now, true, -1);
                return;
            }
            if (sg_kevent_expired(&ev)) {
                restart(k, w, R_EXPIRED);
                w->state = K_LIST;
                sg_kevent_free(&ev);
                return;
            }
            if (ev.type == SG_KEV_ERROR) {
                sg_log_error("kube: watch of %s: error %d %s: %s", kind_label(w->kind), ev.code,
                             ev.reason ? ev.reason : "", ev.message ? ev.message : "");
                restart(k, w, R_ERROR);
                set_wait(k, w, now, false, -1);
                sg_kevent_free(&ev);
                return;
            }
            bool ok = apply_event(k, w, &ev);
            sg_kevent_free(&ev);
            if (!ok) {
                restart(k, w, R_ERROR);
                set_wait(k, w, now, true, -1);
                return;
            }
        }
        /* Read on to EAGAIN: the next wakeup may be READ_PACE_MS away, so a burst's events are read in one go
         * (one failed read per batch), not one TLS record per wakeup. */
    }
    /* READ_ROUNDS reached: the thread comes back at once (no pacing) once the other kinds had a turn. What the
     * stream's buffers hold, its socket may not show again. */
    w->more = w->st != NULL;
}

/* ---- build ---- */

static bool all_synced(const sg_kube_t *k)
{
    for (int i = 0; i < SG_KK_N; i++)
        if (!atomic_load(&k->kinds[i].synced))
            return false;
    return true;
}

/* Writes the store as YAML; returns the text (malloc'd) or NULL. */
static char *write_text(sg_kube_t *k, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (f == NULL)
        return NULL;
    ssize_t rc = sg_kbuild_write(k->store, k->controller, f);
    if (fclose(f) != 0 || rc < 0) {
        free(text);
        return NULL;
    }
    return text;
}

static void build(sg_kube_t *k)
{
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    char *errs = NULL;
    size_t elen = 0;
    FILE *ef = open_memstream(&errs, &elen);
    sg_config_t *cfg = NULL;
    sg_config_diag_t diag;
    int rc = sg_kbuild_load(k->kbuild, k->store, k->controller, ef, &diag, &cfg);
    if (ef)
        fclose(ef);
    if (rc == 0) {
        /* Nothing the loader reads changed (a status write, an object of no interest): no new generation. */
        sg_config_diag_free(&diag);
        free(errs);
        atomic_fetch_add(&k->builds_unchanged, 1);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    int64_t cus = (int64_t)(c1.tv_sec - c0.tv_sec) * 1000000 + ((int64_t)c1.tv_nsec - (int64_t)c0.tv_nsec) / 1000;
    atomic_store(&k->build_cpu_us_last, cus > 0 ? (uint64_t)cus : 0);
    int64_t sus = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + ((int64_t)t1.tv_nsec - (int64_t)t0.tv_nsec) / 1000;
    uint64_t us = sus > 0 ? (uint64_t)sus : 0;
    atomic_store(&k->build_us_last, us);
    atomic_fetch_add(&k->build_us_sum, us);
    if (rc < 0 && diag.error != NULL)
        sg_log_error("kube: config not built: %s", diag.error);
    if (rc < 0) {
        sg_config_diag_free(&diag);
        atomic_fetch_add(&k->builds_failed, 1);
        /* The running generation stays in force. One line per problem, bounded, from the loader's own report. */
        const char *p = errs ? errs : "";
        for (int i = 0; i < 20 && *p; i++) {
            const char *nl = strchr(p, '\n');
            int n = nl ? (int)(nl - p) : (int)strlen(p);
            sg_log_error("kube: config not built: %.*s", n, p);
            p += n + (nl ? 1 : 0);
        }
        free(errs);
        return;
    }
    /* What was dropped: the errors' lines (warnings are not logged per build). Status says it per object too. */
    const char *p = errs ? errs : "";
    for (int i = 0; i < 20 && *p; i++) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        if (strstr(p, ": warning: ") == NULL || strstr(p, ": warning: ") > p + n)
            sg_log_error("kube: dropped from the config: %.*s", n, p);
        p += n + (nl ? 1 : 0);
    }
    free(errs);
    atomic_fetch_add(rc == 2 ? &k->builds_patched : &k->builds_ok, 1);
    pthread_mutex_lock(&k->lock);
    sg_config_t *old = k->pending;
    k->pending = cfg;
    k->pending_build = ++k->builds;
    /* A patch (rc 2) changed endpoints only: every object's status stays the last build's. */
    if (k->krun != NULL && rc == 1)
        sg_krun_built(k->krun, k->pending_build, &diag);
    pthread_mutex_unlock(&k->lock);
    sg_config_diag_free(&diag);
    sg_config_unref(old); /* never published: a newer one replaces it */
    wake(k->ready_fd);
}

/* ---- the thread ---- */

static void step_kind(sg_kube_t *k, kw_t *w, uint64_t now)
{
    if (w->state == K_WAIT && now >= w->next_ms) {
        if (w->relist)
            w->state = K_LIST;
        else
            open_watch(k, w, now);
    }
    if (w->state == K_LIST)
        do_list(k, w, now);
    if (w->state == K_WATCH && w->resync_ms != 0 && now >= w->resync_ms) {
        /* Istio users blame stale endpoints on a missed watch event: a periodic replace catches any. */
        close_watch(k, w);
        w->state = K_LIST;
        do_list(k, w, now);
    }
    if (w->state == K_WATCH && now >= w->watch_end_ms) {
        restart(k, w, R_TIMEOUT); /* the server did not end it at timeoutSeconds: a hung connection */
        open_watch(k, w, now);
    }
}

static void *kube_main(void *arg)
{
    sg_kube_t *k = arg;
    int nrc = sg_thread_background("ssegate-kube", k->nice);
    if (nrc < 0)
        sg_log_error("kube: watch thread: cannot set nice %d: %s", k->nice, strerror(-nrc));
    if ((nrc = sg_thread_pin(k->cpus_set ? &k->cpus : NULL)) < 0)
        sg_log_error("kube: watch thread: cannot keep to --kube-cpus: %s", strerror(-nrc));
    while (!atomic_load(&k->stop)) {
        uint64_t now = sg_now_ms();
        if (atomic_exchange(&k->relist_all, false))
            for (int i = 0; i < SG_KK_N; i++) {
                close_watch(k, &k->kinds[i]);
                k->kinds[i].state = K_LIST;
            }
        for (int i = 0; i < SG_KK_N && !atomic_load(&k->stop); i++)
            step_kind(k, &k->kinds[i], sg_now_ms());
        now = sg_now_ms();
        if (all_synced(k) && sg_kdebounce_due_in(&k->deb, now) == 0) {
            sg_kdebounce_done(&k->deb);
            build(k);
        }
        int64_t timeout = 1000;
        bool more = false;
        for (int i = 0; i < SG_KK_N; i++) {
            kw_t *w = &k->kinds[i];
            if (w->state == K_WATCH && w->st != NULL) {
                if (w->more) {
                    timeout = 0;
                    more = true;
                }
                if (w->watch_end_ms > now && (int64_t)(w->watch_end_ms - now) < timeout)
                    timeout = (int64_t)(w->watch_end_ms - now);
            } else if (w->state == K_WAIT) {
                int64_t d = w->next_ms > now ? (int64_t)(w->next_ms - now) : 0;
                if (d < timeout)
                    timeout = d;
            } else {
                timeout = 0;
            }
        }
        int64_t due = all_synced(k) ? sg_kdebounce_due_in(&k->deb, now) : -1;
        if (due >= 0 && due < timeout)
            timeout = due;
        if (k->read_ms != 0 && now < k->read_ms + READ_PACE_MS && timeout > 0) {
            /* Events came a moment ago. Let the next ones gather in the sockets: a burst (a rolling update, a
             * cluster's pod churn) then costs a wakeup per batch and not per event, on cores the workers share.
             * Only the wake fd (stop, relist) is waited on meanwhile. The first event after a pause is read at
             * once; a change in a burst reaches the debounce at most READ_PACE_MS later. */
            struct pollfd p = {.fd = k->wake_fd, .events = POLLIN};
            int hold = (int)SG_MIN((int64_t)(k->read_ms + READ_PACE_MS - now), timeout);
            int rc = poll(&p, 1, hold);
            if (rc < 0 && errno != EINTR)
                break;
            if (rc > 0)
                drain_fd(k->wake_fd);
            continue;
        }
        /* The open watches stay in the epoll set from open to close: a wakeup costs one call, not a poll of every
         * kind's socket. */
        struct epoll_event evs[SG_KK_N + 1];
        int n = epoll_wait(k->ep, evs, SG_KK_N + 1, (int)timeout);
        if (n < 0 && errno != EINTR)
            break;
        now = sg_now_ms();
        bool ready[SG_KK_N] = {false};
        for (int j = 0; j < n; j++) {
            if (evs[j].data.u32 == SG_KK_N)
                drain_fd(k->wake_fd);
            else if (evs[j].data.u32 < SG_KK_N)
                ready[evs[j].data.u32] = true;
        }
        uint64_t before = events_in(k);
        for (int i = 0; i < SG_KK_N; i++) {
            kw_t *w = &k->kinds[i];
            if (w->state == K_WATCH && w->st != NULL && (ready[i] || w->more))
                read_watch(k, w, now);
        }
        if (events_in(k) != before) {
            k->read_ms = now;
            if (!more) /* a wakeup, not the rest of the last one's reads */
                atomic_fetch_add_explicit(&k->reads, 1, memory_order_relaxed);
        }
    }
    return NULL;
}

int sg_kube_start(sg_kube_t *k)
{
    sg_krun_opts_t ro = {.req = sg_kube_request, .req_ctx = k, .controller = k->controller,
                         .lease_ns = k->lease_ns, .lease_duration_ms = k->lease_duration_ms,
                         .publish_service = k->publish_service, .nice = k->nice,
                         .cpus_set = k->cpus_set, .cpus = k->cpus};
    char err[256];
    k->krun = sg_krun_start(&ro, err, sizeof(err));
    if (k->krun == NULL)
        sg_log_error("kube: the status writer did not start (%s): no status is written", err);
    int rc = pthread_create(&k->thread, NULL, kube_main, k);
    if (rc != 0)
        return -rc;
    k->started = true;
    return 0;
}

int sg_kube_dump(sg_kube_t *k, FILE *out)
{
    for (int i = 0; i < SG_KK_N; i++) {
        int retry_after;
        int rc = list_kind(k, &k->kinds[i], &retry_after);
        if (rc < 0 && rc != -ENOENT) {
            fprintf(stderr, "ssegate: --dump-config: cannot list %s\n", kind_label(i));
            return rc;
        }
    }
    size_t len = 0;
    char *text = write_text(k, &len);
    if (text == NULL)
        return -ENOMEM;
    fwrite(text, 1, len, out);
    free(text);
    return fflush(out) == 0 ? 0 : -EIO;
}

/* ---- metrics ---- */

void sg_kube_render_metrics(sg_kube_t *k, FILE *f)
{
    pthread_mutex_lock(&k->lock);
    if (k->krun != NULL)
        sg_krun_render_metrics(k->krun, f);
    pthread_mutex_unlock(&k->lock);
    sg_kclient_stats_t cs;
    sg_kclient_stats(k->client, &cs);
    fprintf(f, "# HELP ssegate_kube_api_connections_total TLS connections opened to the API server (watches "
               "included).\n# TYPE ssegate_kube_api_connections_total counter\n"
               "ssegate_kube_api_connections_total %llu\n"
               "# HELP ssegate_kube_api_requests_total Requests to the API server (watches aside), by connection: a "
               "new one, or one kept alive.\n# TYPE ssegate_kube_api_requests_total counter\n"
               "ssegate_kube_api_requests_total{connection=\"new\"} %llu\n"
               "ssegate_kube_api_requests_total{connection=\"reused\"} %llu\n"
               "# HELP ssegate_kube_api_retries_total Requests sent again on a new connection because the kept-alive "
               "one had been closed by the server.\n# TYPE ssegate_kube_api_retries_total counter\n"
               "ssegate_kube_api_retries_total %llu\n"
               "# HELP ssegate_kube_api_throttled_seconds_total Time requests waited for the client-side rate limit "
               "(--kube-api-qps).\n# TYPE ssegate_kube_api_throttled_seconds_total counter\n"
               "ssegate_kube_api_throttled_seconds_total %.3f\n",
            (unsigned long long)cs.connections, (unsigned long long)(cs.requests - cs.reused),
            (unsigned long long)cs.reused, (unsigned long long)cs.retried, (double)cs.throttled_ms / 1000.0);
    fputs("# HELP ssegate_kube_synced 1 once the kind's first LIST has completed (an unserved kind counts as synced).\n"
          "# TYPE ssegate_kube_synced gauge\n", f);
    for (int i = 0; i < SG_KK_N; i++)
        fprintf(f, "ssegate_kube_synced{kind=\"%s\",group=\"%s\"} %d\n", kind_label(i), sg_kkinds[i].group,
                atomic_load(&k->kinds[i].synced) ? 1 : 0);
    fputs("# HELP ssegate_kube_served 1 when the API server serves the kind (0: its CRD is not installed).\n"
          "# TYPE ssegate_kube_served gauge\n", f);
    for (int i = 0; i < SG_KK_N; i++)
        fprintf(f, "ssegate_kube_served{kind=\"%s\",group=\"%s\"} %d\n", kind_label(i), sg_kkinds[i].group,
                atomic_load(&k->kinds[i].served) ? 1 : 0);
    fputs("# HELP ssegate_kube_objects Objects of the kind in the store.\n# TYPE ssegate_kube_objects gauge\n", f);
    for (int i = 0; i < SG_KK_N; i++)
        fprintf(f, "ssegate_kube_objects{kind=\"%s\",group=\"%s\"} %llu\n", kind_label(i), sg_kkinds[i].group,
                (unsigned long long)atomic_load_explicit(&k->kinds[i].objects, memory_order_relaxed));
    fputs("# HELP ssegate_kube_events_total Watch events received.\n# TYPE ssegate_kube_events_total counter\n", f);
    for (int i = 0; i < SG_KK_N; i++)
        fprintf(f, "ssegate_kube_events_total{kind=\"%s\",group=\"%s\"} %llu\n", kind_label(i), sg_kkinds[i].group,
                (unsigned long long)atomic_load_explicit(&k->kinds[i].events, memory_order_relaxed));
    fprintf(f, "# HELP ssegate_kube_watch_reads_total Wakeups of the watch thread that read events. After one, the "
               "watches are read again no sooner than %d ms later: a burst is read in batches.\n"
               "# TYPE ssegate_kube_watch_reads_total counter\nssegate_kube_watch_reads_total %llu\n",
            READ_PACE_MS, (unsigned long long)atomic_load_explicit(&k->reads, memory_order_relaxed));
    fputs("# HELP ssegate_kube_watch_restarts_total Watches ended, by reason (expired: 410, a relist follows; closed: "
          "the server ended it; timeout: no end from the server; error; decode: an unreadable event, a relist "
          "follows).\n# TYPE ssegate_kube_watch_restarts_total counter\n", f);
    for (int i = 0; i < SG_KK_N; i++)
        for (int r = 0; r < R_N; r++)
            fprintf(f, "ssegate_kube_watch_restarts_total{kind=\"%s\",group=\"%s\",reason=\"%s\"} %llu\n",
                    kind_label(i), sg_kkinds[i].group, reason_names[r],
                    (unsigned long long)atomic_load_explicit(&k->kinds[i].restarts[r], memory_order_relaxed));
    fprintf(f, "# HELP ssegate_kube_store_bytes Bytes of the stripped objects held as JSON (not their parsed "
               "documents, kept for the build).\n"
               "# TYPE ssegate_kube_store_bytes gauge\nssegate_kube_store_bytes %llu\n",
            (unsigned long long)atomic_load(&k->store_bytes));
    fprintf(f, "# HELP ssegate_kube_builds_total Config builds from the store, by result (ok: a full load; patched: "
               "only EndpointSlices changed, and the last generation was copied with their Services' endpoints "
               "resolved anew; unchanged: the input was the same, nothing loaded).\n"
               "# TYPE ssegate_kube_builds_total counter\n"
               "ssegate_kube_builds_total{result=\"ok\"} %llu\nssegate_kube_builds_total{result=\"patched\"} %llu\n"
               "ssegate_kube_builds_total{result=\"failed\"} %llu\n"
               "ssegate_kube_builds_total{result=\"unchanged\"} %llu\n",
            (unsigned long long)atomic_load(&k->builds_ok), (unsigned long long)atomic_load(&k->builds_patched),
            (unsigned long long)atomic_load(&k->builds_failed), (unsigned long long)atomic_load(&k->builds_unchanged));
    uint64_t n = atomic_load(&k->builds_ok) + atomic_load(&k->builds_patched) + atomic_load(&k->builds_failed);
    fprintf(f, "# HELP ssegate_config_build_seconds Time to select the store's objects and load them as a generation.\n"
               "# TYPE ssegate_config_build_seconds summary\nssegate_config_build_seconds_sum %.6f\n"
               "ssegate_config_build_seconds_count %llu\n"
               "# HELP ssegate_config_build_last_seconds The last build's time.\n"
               "# TYPE ssegate_config_build_last_seconds gauge\nssegate_config_build_last_seconds %.6f\n"
               "# HELP ssegate_config_build_last_cpu_seconds The last build's CPU time on the kube thread (on a busy "
               "machine the wall time above includes waiting for a core).\n"
               "# TYPE ssegate_config_build_last_cpu_seconds gauge\nssegate_config_build_last_cpu_seconds %.6f\n",
            (double)atomic_load(&k->build_us_sum) / 1e6, (unsigned long long)n,
            (double)atomic_load(&k->build_us_last) / 1e6, (double)atomic_load(&k->build_cpu_us_last) / 1e6);
}
