/* krun.c: the status thread: the Lease loop, and while leading, status syncs of the newest published build (on each
 * publish, on becoming leader, and every resync period): our GatewayClasses (listed from the API server), the
 * addresses of --publish-service, the Gateway API bundle-version, then every object of the diagnostics. */
#include "kube/krun.h"

#include <errno.h>
#include <libfyaml.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/thread.h"
#include "kube/klease.h"
#include "kube/kstatus.h"

#define MAX_CLASSES 64
#define MAX_ADDRS 16

typedef struct slot {
    bool set;
    uint64_t build;
    sg_config_diag_t d;
} slot_t;

struct sg_krun {
    sg_krun_opts_t o;
    char *controller, *lease_ns, *lease_name, *identity, *publish_service;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, wake;
    slot_t built;               /* the newest build, not yet published */
    slot_t ready;               /* published, not yet taken by the thread */
    uint16_t failed[64];        /* ready's unbound ports; or, with refailed, mine's after a bind retry */
    size_t nfailed;
    bool refailed;              /* a bind retry changed the unbound ports of build refailed_build */
    uint64_t refailed_build;
    /* the thread's */
    sg_klease_t lease;
    sg_kswriter_t w;
    slot_t mine;
    uint16_t mine_failed[64];
    size_t mine_nfailed;
    _Atomic bool leader;
    _Atomic bool stopping;      /* set first by sg_krun_stop: a sync in progress makes no further request */
    _Atomic uint64_t acquired, syncs;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Kubernetes MicroTime (micro) or Time (seconds) in UTC. */
static void wall(char *out, size_t cap, bool micro)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        base[0] = '\0';
    if (micro)
        snprintf(out, cap, "%.19s.%06dZ", base, (int)((ts.tv_nsec / 1000) % 1000000));
    else
        snprintf(out, cap, "%.19sZ", base);
}

void sg_krun_lease_name(const char *controller, char *out, size_t cap)
{
    uint32_t h = 2166136261u;
    for (const char *p = controller; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, cap, "ssegate-status-%08x", h);
}

void sg_krun_identity(char *out, size_t cap)
{
    const char *pod = getenv("POD_NAME");
    if (pod != NULL && *pod != '\0') {
        snprintf(out, cap, "%s", pod);
        return;
    }
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "unknown");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, cap, "%s_%ld", host, (long)getpid());
}

static void slot_clear(slot_t *s)
{
    if (s->set)
        sg_config_diag_free(&s->d);
    memset(s, 0, sizeof(*s));
}

/* ---- reading what status needs from the API server ---- */

static struct fy_document *get_json(sg_krun_t *r, const char *path)
{
    char *body = NULL;
    size_t len = 0;
    int ra;
    int st = r->o.req(r->o.req_ctx, "GET", path, NULL, 0, &body, &len, &ra);
    struct fy_document *doc = NULL;
    if (st == 200 && body != NULL) {
        struct fy_diag_cfg dcfg;
        memset(&dcfg, 0, sizeof(dcfg));
        dcfg.level = FYET_ERROR;
        struct fy_diag *diag = fy_diag_create(&dcfg);
        if (diag != NULL) {
            fy_diag_set_collect_errors(diag, true);
            struct fy_parse_cfg cfg;
            memset(&cfg, 0, sizeof(cfg));
            cfg.flags = FYPCF_QUIET | FYPCF_JSON_FORCE;
            cfg.diag = diag;
            /* the document refers to the text: it takes the buffer, and frees it with itself */
            doc = fy_document_build_from_malloc_string(&cfg, body, len);
            if (doc != NULL)
                body = NULL;
            fy_diag_unref(diag);
        }
    }
    free(body);
    return doc;
}

static const char *scalar(struct fy_node *root, const char *ypath, char *out, size_t cap)
{
    struct fy_node *n = root ? fy_node_by_path(root, ypath, (size_t)-1, FYNWF_DONT_FOLLOW) : NULL;
    size_t len;
    const char *s = n && fy_node_get_type(n) == FYNT_SCALAR ? fy_node_get_scalar(n, &len) : NULL;
    if (s == NULL || len == 0 || len >= cap)
        return NULL;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

typedef struct klass {
    char name[254];
    int64_t generation;
} klass_t;

/* Our GatewayClasses. Returns how many, or -1 when the list could not be read. */
static int list_classes(sg_krun_t *r, klass_t *out, size_t cap)
{
    struct fy_document *doc = get_json(r, "/apis/gateway.networking.k8s.io/v1/gatewayclasses");
    if (doc == NULL)
        return -1;
    struct fy_node *items = fy_node_by_path(fy_document_root(doc), "/items", (size_t)-1, FYNWF_DONT_FOLLOW);
    void *it = NULL;
    struct fy_node *e;
    size_t n = 0;
    while (items && fy_node_get_type(items) == FYNT_SEQUENCE && n < cap &&
           (e = fy_node_sequence_iterate(items, &it)) != NULL) {
        char ctl[256], gen[32];
        if (scalar(e, "/spec/controllerName", ctl, sizeof(ctl)) == NULL || strcmp(ctl, r->controller) != 0 ||
            scalar(e, "/metadata/name", out[n].name, sizeof(out[n].name)) == NULL)
            continue;
        out[n].generation = scalar(e, "/metadata/generation", gen, sizeof(gen)) ? strtoll(gen, NULL, 10) : 0;
        n++;
    }
    fy_document_destroy(doc);
    return (int)n;
}

static void bundle_version(sg_krun_t *r, char *out, size_t cap, bool *known)
{
    struct fy_document *doc =
        get_json(r, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gatewayclasses.gateway.networking.k8s.io");
    /* the annotation's key holds a '/', which a libfyaml path cannot name: look it up among the pairs */
    static const char key[] = "gateway.networking.k8s.io/bundle-version";
    struct fy_node *ann = doc ? fy_node_by_path(fy_document_root(doc), "/metadata/annotations", (size_t)-1,
                                                FYNWF_DONT_FOLLOW) : NULL;
    struct fy_node_pair *p;
    void *it = NULL;
    *known = false;
    while (ann && fy_node_get_type(ann) == FYNT_MAPPING && !*known && (p = fy_node_mapping_iterate(ann, &it))) {
        size_t kl = 0, vl = 0;
        const char *k = fy_node_get_type(fy_node_pair_key(p)) == FYNT_SCALAR
                            ? fy_node_get_scalar(fy_node_pair_key(p), &kl) : NULL;
        struct fy_node *v = fy_node_pair_value(p);
        const char *s = v && fy_node_get_type(v) == FYNT_SCALAR ? fy_node_get_scalar(v, &vl) : NULL;
        if (k && s && kl == sizeof(key) - 1 && memcmp(k, key, kl) == 0 && vl > 0 && vl < cap) {
            memcpy(out, s, vl);
            out[vl] = '\0';
            *known = true;
        }
    }
    if (doc)
        fy_document_destroy(doc);
}

/* --publish-service: its load balancer's IPs and hostnames, else its clusterIP. */
static size_t publish_addresses(sg_krun_t *r, char (*addrs)[256], size_t cap)
{
    if (r->publish_service == NULL)
        return 0;
    const char *slash = strchr(r->publish_service, '/');
    char path[600];
    char ns[254];
    snprintf(ns, sizeof(ns), "%.*s", slash ? (int)(slash - r->publish_service) : 0, r->publish_service);
    if (sg_kswrite_path("v1", "Service", ns, slash ? slash + 1 : "", path, sizeof(path)) < 0)
        return 0;
    struct fy_document *doc = get_json(r, path);
    if (doc == NULL)
        return 0;
    struct fy_node *root = fy_document_root(doc);
    struct fy_node *ing = fy_node_by_path(root, "/status/loadBalancer/ingress", (size_t)-1, FYNWF_DONT_FOLLOW);
    size_t n = 0;
    void *it = NULL;
    struct fy_node *e;
    while (ing && fy_node_get_type(ing) == FYNT_SEQUENCE && n < cap && (e = fy_node_sequence_iterate(ing, &it)))
        if (scalar(e, "/ip", addrs[n], sizeof(addrs[n])) || scalar(e, "/hostname", addrs[n], sizeof(addrs[n])))
            n++;
    if (n == 0 && scalar(root, "/spec/clusterIP", addrs[0], sizeof(addrs[0])) && strcmp(addrs[0], "None") != 0)
        n = 1;
    fy_document_destroy(doc);
    return n;
}

/* ---- a sync ---- */

static void sync_all(sg_krun_t *r)
{
    klass_t classes[MAX_CLASSES];
    int nc = list_classes(r, classes, MAX_CLASSES);
    if (nc < 0) {
        atomic_fetch_add(&r->w.counts[SG_KSW_ERROR], 1);
        return;                 /* without the classes no Gateway is known to be ours: try at the next sync */
    }
    const char *names[MAX_CLASSES];
    for (int i = 0; i < nc; i++)
        names[i] = classes[i].name;
    char bv[64], now[40], addrs[MAX_ADDRS][256];
    const char *addrp[MAX_ADDRS];
    bool known;
    bundle_version(r, bv, sizeof(bv), &known);
    size_t na = publish_addresses(r, addrs, MAX_ADDRS);
    for (size_t i = 0; i < na; i++)
        addrp[i] = addrs[i];
    wall(now, sizeof(now), false);
    sg_kstatus_env_t env = {
        .controller = r->controller,
        .programmed = r->mine.set,
        .addresses = addrp,
        .naddresses = na,
        .failed_ports = r->mine_failed,
        .nfailed_ports = r->mine_nfailed,
        .bundle_version = known ? bv : NULL,
        .classes = names,
        .nclasses = (size_t)nc,
        .now = now,
    };
    sg_kstatus_env_t fixed = env;
    fixed.now = "1970-01-01T00:00:00Z";
    for (int i = 0; i < nc; i++) {
        char *des = NULL, *des_key = NULL, path[600], key[300];
        if (sg_kstatus_class_desired(classes[i].generation, &env, &des) == 0 &&
            sg_kstatus_class_desired(classes[i].generation, &fixed, &des_key) == 0 &&
            sg_kswrite_path("gateway.networking.k8s.io/v1", "GatewayClass", NULL, classes[i].name, path,
                            sizeof(path)) > 0) {
            snprintf(key, sizeof(key), "GatewayClass//%.253s", classes[i].name);
            sg_kswrite_object(&r->w, path, key, des, des_key, SG_KSTATUS_WHOLE);
        }
        free(des);
        free(des_key);
    }
    if (r->mine.set) {
        int failed = sg_kswrite_sync(&r->w, &r->mine.d, &env);
        if (failed > 0)
            sg_log_error("kube: status: %d objects could not be written; trying again at the next sync",
                   failed);
    }
    atomic_fetch_add(&r->syncs, 1);
}

/* ---- the thread ---- */

static void lease_step(sg_krun_t *r, int64_t *wait);

/* The writer's requests go through the caller's function; its ctx is the runner (for nap). A sync of a big cluster
 * takes many requests: the Lease is renewed between them when due, and a write is not made by a replica that has
 * stopped leading meanwhile. */
static int via(void *ctx, const char *method, const char *path, const char *body, size_t len, char **resp,
               size_t *resp_len, int *retry_after_s)
{
    sg_krun_t *r = ctx;
    if (atomic_load(&r->stopping))
        return -ECANCELED;      /* stopping (drain): the main thread waits for this thread, so be quick */
    int64_t wait;
    lease_step(r, &wait);
    bool lead = sg_klease_leader(&r->lease, mono_ms());
    atomic_store(&r->leader, lead);
    if (!lead && strcmp(method, "GET") != 0)
        return -EPERM;
    return r->o.req(r->o.req_ctx, method, path, body, len, resp, resp_len, retry_after_s);
}

/* Waits for ms or until woken; false when stopping. The Lease is renewed meanwhile when due, so a long wait (a
 * server's Retry-After) does not cost the leadership. */
static bool nap(void *ctx, int64_t ms)
{
    sg_krun_t *r = ctx;
    int64_t end = mono_ms() + ms;
    for (;;) {
        int64_t now = mono_ms(), lw = ms;
        if (now >= end)
            return !atomic_load(&r->stopping);
        lease_step(r, &lw);
        int64_t step = end - now < lw ? end - now : lw;
        if (step < 1)
            step = 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += step / 1000;
        ts.tv_nsec += (step % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&r->mu);
        while (!r->stop && !r->wake && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
            ;
        bool stop = r->stop, woken = r->wake;
        pthread_mutex_unlock(&r->mu);
        if (stop)
            return false;
        if (woken)
            return true;
    }
}

static void lease_step(sg_krun_t *r, int64_t *wait)
{
    char body[4096], now[40], path[600], coll[600];
    for (int i = 0; i < 4; i++) {
        wall(now, sizeof(now), true);
        int64_t t = mono_ms();
        sg_klease_op_t op = sg_klease_next(&r->lease, t, now, body, sizeof(body), wait);
        if (op == SG_KLEASE_WAIT)
            return;
        sg_kswrite_path("coordination.k8s.io/v1", "Lease", r->lease_ns, r->lease_name, path, sizeof(path));
        snprintf(coll, sizeof(coll), "/apis/coordination.k8s.io/v1/namespaces/%s/leases", r->lease_ns);
        char *resp = NULL;
        size_t len = 0;
        int ra;
        int st = r->o.req(r->o.req_ctx, op == SG_KLEASE_GET ? "GET" : op == SG_KLEASE_CREATE ? "POST" : "PUT",
                          op == SG_KLEASE_CREATE ? coll : path, op == SG_KLEASE_GET ? NULL : body,
                          op == SG_KLEASE_GET ? 0 : strlen(body), &resp, &len, &ra);
        sg_klease_done(&r->lease, mono_ms(), st > 0 ? st : 0, resp, len);
        free(resp);
    }
}

static void *run(void *arg)
{
    sg_krun_t *r = arg;
    int nrc = sg_thread_background("ssegate-kstatus", r->o.nice);
    if (nrc < 0)
        sg_log_error("kube: status thread: cannot set nice %d: %s", r->o.nice, strerror(-nrc));
    if ((nrc = sg_thread_pin(r->o.cpus_set ? &r->o.cpus : NULL)) < 0)
        sg_log_error("kube: status thread: cannot keep to --kube-cpus: %s", strerror(-nrc));
    int64_t last_sync = 0;
    bool was_leader = false;
    for (;;) {
        int64_t wait = 1000;
        lease_step(r, &wait);
        int64_t now = mono_ms();
        bool lead = sg_klease_leader(&r->lease, now);
        atomic_store(&r->leader, lead);
        if (lead && !was_leader) {
            atomic_fetch_add(&r->acquired, 1);
            sg_log_info("kube: this replica (%s) now holds Lease %s/%s and writes status", r->identity,
                   r->lease_ns, r->lease_name);
            sg_kswrite_forget(&r->w); /* a new leader writes everything */
        } else if (!lead && was_leader) {
            sg_log_error("kube: lost Lease %s/%s; status writes stop", r->lease_ns, r->lease_name);
        }
        bool fresh = false;
        pthread_mutex_lock(&r->mu);
        if (r->stop) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        r->wake = false;
        if (r->ready.set) {
            slot_clear(&r->mine);
            r->mine = r->ready;
            memset(&r->ready, 0, sizeof(r->ready));
            memcpy(r->mine_failed, r->failed, r->nfailed * sizeof(r->failed[0]));
            r->mine_nfailed = r->nfailed;
            fresh = true;
        } else if (r->refailed && r->mine.set && r->mine.build == r->refailed_build) {
            memcpy(r->mine_failed, r->failed, r->nfailed * sizeof(r->failed[0]));
            r->mine_nfailed = r->nfailed;
            fresh = true;
        }
        r->refailed = false;
        pthread_mutex_unlock(&r->mu);
        if (lead && (fresh || !was_leader || now - last_sync >= r->o.resync_ms)) {
            if (now - last_sync >= r->o.resync_ms)
                sg_kswrite_forget(&r->w);
            sync_all(r);
            last_sync = mono_ms();
            if (sg_klease_leader(&r->lease, last_sync) == false)
                sg_log_error("kube: the status sync outlasted the Lease renew deadline");
        }
        was_leader = lead;
        if (wait > r->o.resync_ms)
            wait = r->o.resync_ms;
        if (!nap(r, wait > 0 ? wait : 1))
            break;
    }
    return NULL;
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s != NULL ? s : dflt);
}

sg_krun_t *sg_krun_start(const sg_krun_opts_t *o, char *err, size_t cap)
{
    sg_krun_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    r->o = *o;
    char lname[64], id[300];
    sg_krun_lease_name(o->controller, lname, sizeof(lname));
    sg_krun_identity(id, sizeof(id));
    r->controller = dup_or(o->controller, SG_KSTATUS_DEFAULT_CONTROLLER);
    r->lease_ns = dup_or(o->lease_ns, "default");
    r->lease_name = dup_or(o->lease_name, lname);
    r->identity = dup_or(o->identity, id);
    r->publish_service = o->publish_service ? strdup(o->publish_service) : NULL;
    if (r->o.lease_duration_ms <= 0)
        r->o.lease_duration_ms = SG_KLEASE_DURATION_MS;
    if (r->o.renew_deadline_ms <= 0)
        r->o.renew_deadline_ms = r->o.lease_duration_ms * 2 / 3;
    if (r->o.retry_ms <= 0)
        r->o.retry_ms = r->o.lease_duration_ms / 7 > 100 ? r->o.lease_duration_ms / 7 : 100;
    if (r->o.resync_ms <= 0)
        r->o.resync_ms = 300000;
    if (r->controller == NULL || r->lease_ns == NULL || r->lease_name == NULL || r->identity == NULL ||
        (o->publish_service && r->publish_service == NULL)) {
        snprintf(err, cap, "out of memory");
        free(r->controller);
        free(r->lease_ns);
        free(r->lease_name);
        free(r->identity);
        free(r->publish_service);
        free(r);
        return NULL;
    }
    sg_klease_cfg_t lc = {.ns = r->lease_ns, .name = r->lease_name, .identity = r->identity,
                          .duration_ms = r->o.lease_duration_ms, .renew_deadline_ms = r->o.renew_deadline_ms,
                          .retry_ms = r->o.retry_ms};
    sg_klease_init(&r->lease, &lc, mono_ms());
    sg_kreq_t rq = {via, r, nap};
    sg_kswrite_init(&r->w, &rq, r->controller);
    atomic_init(&r->leader, false);
    atomic_init(&r->stopping, false);
    atomic_init(&r->acquired, 0);
    atomic_init(&r->syncs, 0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&r->thread, NULL, run, r);
    if (rc != 0) {
        snprintf(err, cap, "cannot start the status thread: %s", strerror(rc));
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r->controller);
        free(r->lease_ns);
        free(r->lease_name);
        free(r->identity);
        free(r->publish_service);
        sg_kswrite_free(&r->w);
        free(r);
        return NULL;
    }
    return r;
}

void sg_krun_built(sg_krun_t *r, uint64_t build, sg_config_diag_t *diag)
{
    pthread_mutex_lock(&r->mu);
    slot_clear(&r->built);
    r->built.set = true;
    r->built.build = build;
    r->built.d = *diag;
    memset(diag, 0, sizeof(*diag));
    pthread_mutex_unlock(&r->mu);
}

void sg_krun_published(sg_krun_t *r, uint64_t build, const uint16_t *failed, size_t nfailed)
{
    pthread_mutex_lock(&r->mu);
    if (r->built.set && r->built.build <= build) {
        slot_clear(&r->ready);
        r->ready = r->built;
        memset(&r->built, 0, sizeof(r->built));
        r->nfailed = nfailed < SG_ARRAY_LEN(r->failed) ? nfailed : SG_ARRAY_LEN(r->failed);
        if (r->nfailed > 0) /* failed may be NULL when the list is empty: memcpy from NULL is undefined */
            memcpy(r->failed, failed, r->nfailed * sizeof(r->failed[0]));
        r->wake = true;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

void sg_krun_rebound(sg_krun_t *r, uint64_t build, const uint16_t *failed, size_t nfailed)
{
    pthread_mutex_lock(&r->mu);
    bool waiting = r->ready.set && r->ready.build == build; /* published, not yet taken: it takes these */
    if (waiting || (!r->ready.set && !(r->built.set && r->built.build <= build))) {
        r->nfailed = nfailed < SG_ARRAY_LEN(r->failed) ? nfailed : SG_ARRAY_LEN(r->failed);
        if (r->nfailed > 0)
            memcpy(r->failed, failed, r->nfailed * sizeof(r->failed[0]));
        if (!waiting) {
            r->refailed = true;
            r->refailed_build = build;
            r->wake = true;
            pthread_cond_signal(&r->cv);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

bool sg_krun_leader(const sg_krun_t *r)
{
    return atomic_load(&((sg_krun_t *)r)->leader);
}

void sg_krun_render_metrics(const sg_krun_t *r, FILE *f)
{
    sg_krun_t *m = (sg_krun_t *)r;
    fprintf(f, "# HELP ssegate_kube_leader Whether this replica holds the status Lease and writes status (1) or not "
               "(0).\n# TYPE ssegate_kube_leader gauge\nssegate_kube_leader %d\n", atomic_load(&m->leader) ? 1 : 0);
    fprintf(f, "# HELP ssegate_kube_leader_acquired_total Times this replica took the status Lease.\n"
               "# TYPE ssegate_kube_leader_acquired_total counter\nssegate_kube_leader_acquired_total %llu\n",
            (unsigned long long)atomic_load(&m->acquired));
    fprintf(f, "# HELP ssegate_kube_status_writes_total Status writes to the API server, by result.\n"
               "# TYPE ssegate_kube_status_writes_total counter\n");
    for (int i = 0; i < SG_KSW_N; i++)
        fprintf(f, "ssegate_kube_status_writes_total{result=\"%s\"} %llu\n", sg_kswrite_results[i],
                (unsigned long long)atomic_load(&m->w.counts[i]));
}

void sg_krun_stop(sg_krun_t *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, true);
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    /* Give the Lease up, so another replica takes over at its next try instead of after the duration. */
    char body[4096], now[40], path[600];
    wall(now, sizeof(now), true);
    if (sg_klease_release(&r->lease, now, body, sizeof(body)) == SG_KLEASE_UPDATE &&
        sg_kswrite_path("coordination.k8s.io/v1", "Lease", r->lease_ns, r->lease_name, path, sizeof(path)) > 0) {
        char *resp = NULL;
        size_t len = 0;
        int ra;
        int st = r->o.req(r->o.req_ctx, "PUT", path, body, strlen(body), &resp, &len, &ra);
        sg_klease_done(&r->lease, mono_ms(), st > 0 ? st : 0, resp, len);
        free(resp);
        sg_log_info("kube: released Lease %s/%s (%d)", r->lease_ns, r->lease_name, st);
    }
    atomic_store(&r->leader, false);
    slot_clear(&r->built);
    slot_clear(&r->ready);
    slot_clear(&r->mine);
    sg_kswrite_free(&r->w);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->controller);
    free(r->lease_ns);
    free(r->lease_name);
    free(r->identity);
    free(r->publish_service);
    free(r);
}
