/* kbuild.c: the rebuild debounce, and the store written out as the multi-document YAML of file mode, filtered to
 * the Gateways of our GatewayClasses and the routes that attach to them. */
#include "kube/kbuild.h"

#include <libfyaml.h>
#include <limits.h>
#include <stdlib.h>

#include "config/patch.h"
#include "kube/kwatch.h"

void sg_kdebounce_init(sg_kdebounce_t *d, uint64_t quiet_ms, uint64_t max_ms)
{
    memset(d, 0, sizeof(*d));
    d->quiet_ms = quiet_ms;
    d->max_ms = max_ms;
}

void sg_kdebounce_touch(sg_kdebounce_t *d, uint64_t now)
{
    if (!d->pending) {
        d->pending = true;
        d->first_ms = now;
    }
    d->last_ms = now;
}

int64_t sg_kdebounce_due_in(const sg_kdebounce_t *d, uint64_t now)
{
    if (!d->pending)
        return -1;
    uint64_t due = SG_MIN(d->last_ms + d->quiet_ms, d->first_ms + d->max_ms);
    return now >= due ? 0 : (int64_t)(due - now);
}

void sg_kdebounce_done(sg_kdebounce_t *d)
{
    d->pending = false;
}

/* ---- translation ---- */

typedef struct names {
    const char **v;
    size_t n, cap;
} names_t;

static int names_add(names_t *s, const char *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        const char **v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

static bool names_has(const names_t *s, const char *x, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strncmp(s->v[i], x, len) == 0 && s->v[i][len] == '\0')
            return true;
    return false;
}

/* Our Gateways as "ns/name" strings (malloc'd, in gws->v). */
static int our_gateways(const sg_kobj_t *const *v, size_t n, const char *controller, names_t *classes, names_t *gws)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->kind == SG_KK_GATEWAYCLASS && v[i]->aux && strcmp(v[i]->aux, controller) == 0 &&
            names_add(classes, v[i]->name) < 0)
            return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (v[i]->kind != SG_KK_GATEWAY || v[i]->aux == NULL || !names_has(classes, v[i]->aux, strlen(v[i]->aux)))
            continue;
        size_t l = strlen(v[i]->ns) + strlen(v[i]->name) + 2;
        char *k = malloc(l);
        if (k == NULL || names_add(gws, k) < 0) {
            free(k);
            return -ENOMEM;
        }
        snprintf(k, l, "%s/%s", v[i]->ns, v[i]->name);
    }
    return 0;
}

/* How many of a route's parentRefs are ours, and how many it has. */
static void count_refs(const char *aux, const names_t *gws, size_t *ours, size_t *all)
{
    *ours = *all = 0;
    for (const char *p = aux; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        (*all)++;
        if (len > 0 && names_has(gws, p, len))
            (*ours)++;
        p += len + (nl ? 1 : 0);
    }
}

/* A route attached to our Gateways and others': its JSON with only our parentRefs (malloc'd), or NULL. */
static char *route_filtered(const sg_kobj_t *o, const names_t *gws)
{
    struct fy_document *d = sg_kwatch_parse_json(o->json, o->len);
    if (d == NULL)
        return NULL;
    struct fy_node *refs = fy_node_by_path(fy_document_root(d), "/spec/parentRefs", FY_NT, FYNWF_DONT_FOLLOW);
    const char *aux = o->aux;
    struct fy_node *drop[64];
    size_t nd = 0;
    void *it = NULL;
    struct fy_node *e;
    while (refs && (e = fy_node_sequence_iterate(refs, &it)) != NULL && aux && *aux) {
        const char *nl = strchr(aux, '\n');
        size_t len = nl ? (size_t)(nl - aux) : strlen(aux);
        if (!(len > 0 && names_has(gws, aux, len)) && nd < SG_ARRAY_LEN(drop))
            drop[nd++] = e;
        aux += len + (nl ? 1 : 0);
    }
    for (size_t i = 0; i < nd; i++)
        fy_node_free(fy_node_sequence_remove(refs, drop[i]));
    char *json = fy_emit_node_to_string(fy_document_root(d), FYECF_MODE_JSON_ONELINE | FYECF_NO_ENDING_NEWLINE);
    fy_document_destroy(d);
    return json;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The "ns/name" keys of the HTTPRoutes the build writes, sorted (malloc'd strings in routes->v). */
static int our_routes(const sg_kobj_t *const *v, size_t n, const names_t *gws, names_t *routes)
{
    for (size_t i = 0; i < n; i++) {
        size_t ours, all;
        if (v[i]->kind != SG_KK_HTTPROUTE)
            continue;
        count_refs(v[i]->aux, gws, &ours, &all);
        if (ours == 0)
            continue;
        size_t l = strlen(v[i]->ns) + strlen(v[i]->name) + 2;
        char *k = malloc(l);
        if (k == NULL || names_add(routes, k) < 0) {
            free(k);
            return -ENOMEM;
        }
        snprintf(k, l, "%s/%s", v[i]->ns, v[i]->name);
    }
    if (routes->n > 1)
        qsort(routes->v, routes->n, sizeof(*routes->v), cmp_str);
    return 0;
}

/* Adds each "ns/name" line of refs to set (copies). */
static int add_lines(names_t *set, const char *refs)
{
    for (const char *p = refs; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            char *k = strndup(p, len);
            if (k == NULL || names_add(set, k) < 0) {
                free(k);
                return -ENOMEM;
            }
        }
        p += len + (nl ? 1 : 0);
    }
    return 0;
}

/* The Services the build needs, sorted: those the written routes send to, and those a Service policy targets (so a
 * policy never names a Service the loader lacks). The cluster's other Services and their EndpointSlices, usually
 * the bulk of the store, are left out: their churn then leaves the text unchanged and nothing is rebuilt. */
static int needed_services(const sg_kobj_t *const *v, size_t n, const names_t *gws, names_t *svcs)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i]->refs == NULL)
            continue;
        if (v[i]->kind == SG_KK_HTTPROUTE || v[i]->kind == SG_KK_GRPCROUTE) {
            size_t ours, all;
            count_refs(v[i]->aux, gws, &ours, &all);
            if (ours == 0)
                continue;
        }
        if (add_lines(svcs, v[i]->refs) < 0)
            return -ENOMEM;
    }
    if (svcs->n > 1)
        qsort(svcs->v, svcs->n, sizeof(*svcs->v), cmp_str);
    return 0;
}

static bool sorted_has(const names_t *set, const char *key)
{
    return set->n > 0 && bsearch(&key, set->v, set->n, sizeof(*set->v), cmp_str) != NULL;
}

static void names_free(names_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free((char *)s->v[i]);
    free(s->v);
}

/* Whether "ns/name" key names object o. */
static bool key_is(const char *key, const sg_kobj_t *o)
{
    size_t l = strlen(o->ns);
    return strncmp(key, o->ns, l) == 0 && key[l] == '/' && strcmp(key + l + 1, o->name) == 0;
}

/* Called for each document of the build, in order: the object, and for a route written with only some of its
 * parentRefs, that JSON (else NULL: the object's own). Returns 0 or a negative error, which stops the walk. */
typedef int (*visit_fn)(void *ctx, const sg_kobj_t *o, const char *filtered);

/* The selection sg_kbuild_write documents. Returns the number of documents or a negative error. */
static ssize_t select_docs(const sg_kstore_t *s, const char *controller, visit_fn visit, void *ctx, names_t *needed)
{
    const sg_kobj_t **v = NULL;
    ssize_t n = sg_kstore_sorted(s, &v);
    if (n < 0)
        return n;
    names_t classes = {0}, gws = {0}, routes = {0}, svcs = {0};
    ssize_t rc = our_gateways(v, (size_t)n, controller, &classes, &gws);
    if (rc == 0)
        rc = our_routes(v, (size_t)n, &gws, &routes);
    if (rc == 0)
        rc = needed_services(v, (size_t)n, &gws, &svcs);
    char svckey[640];
    ssize_t docs = 0;
    for (ssize_t i = 0; rc == 0 && i < n; i++) {
        const sg_kobj_t *o = v[i];
        if (o->kind == SG_KK_GATEWAYCLASS)
            continue;
        if (o->kind == SG_KK_GATEWAY) {
            bool ours = false;
            for (size_t g = 0; g < gws.n && !ours; g++)
                ours = key_is(gws.v[g], o);
            if (!ours)
                continue;
        } else if ((o->kind == SG_KK_ROUTEPOLICY || o->kind == SG_KK_SSEPOLICY) && o->aux != NULL) {
            /* A policy on a route we do not serve (another controller's) is not ours to report on. */
            if (!sorted_has(&routes, o->aux))
                continue;
        } else if (o->kind == SG_KK_SERVICE) {
            snprintf(svckey, sizeof(svckey), "%s/%s", o->ns, o->name);
            if (!sorted_has(&svcs, svckey))
                continue;
        } else if (o->kind == SG_KK_ENDPOINTSLICE) {
            if (o->aux == NULL || !sorted_has(&svcs, o->aux))
                continue;
        } else if (o->kind == SG_KK_FRONTENDTLSPOLICY && o->aux != NULL) {
            if (!names_has(&gws, o->aux, strlen(o->aux)))
                continue; /* on another controller's Gateway */
        } else if (o->kind == SG_KK_HTTPROUTE || o->kind == SG_KK_GRPCROUTE) {
            size_t ours, all;
            count_refs(o->aux, &gws, &ours, &all);
            if (ours == 0)
                continue;
            if (ours < all) {
                char *json = route_filtered(o, &gws);
                rc = json ? visit(ctx, o, json) : -ENOMEM;
                free(json);
                docs++;
                continue;
            }
        }
        rc = visit(ctx, o, NULL);
        docs++;
    }
    names_free(&gws);
    names_free(&routes);
    if (needed != NULL && rc == 0) {
        names_free(needed);
        *needed = svcs; /* sorted: sg_kbuild_needs_service looks them up */
    } else {
        names_free(&svcs);
    }
    free(classes.v);
    free(v);
    return rc < 0 ? rc : docs;
}

static int write_doc(void *ctx, const sg_kobj_t *o, const char *filtered)
{
    FILE *f = ctx;
    if (filtered != NULL)
        fprintf(f, "---\n%s\n", filtered);
    else
        fprintf(f, "---\n%.*s\n", (int)o->len, o->json);
    return 0;
}

#define HEADER "# ssegate: the objects of the API server that controller %s serves, as file mode reads them\n"

ssize_t sg_kbuild_write(const sg_kstore_t *s, const char *controller, FILE *f)
{
    fprintf(f, HEADER, controller);
    return select_docs(s, controller, write_doc, f, NULL);
}

/* ---- the build ---- */

/* A build reads the documents the text would hold, parsed, without the text: each object's parsed form is kept with it
 * in the store (sg_kstore_doc), so only what changed since the last build is parsed. Each document's root is given the
 * line its JSON has in the text (the header is line 1; document i's "---" is line 2 + 2i and its JSON line 3 + 2i),
 * so the loader's messages, and the blame of errors on objects, are those of --dump-config's text. */
/* One EndpointSlice of a build, in document order. */
typedef struct kslice {
    uint64_t hash;              /* of its JSON */
    const char *svc;            /* "ns/name" of its Service: the stored object's, valid during the build only */
} kslice_t;

struct sg_kbuild {
    uint64_t last_hash;
    bool built_once;
    struct fy_document **docs;  /* this build's documents */
    bool *owned;                /* docs[i] was made for this build (a filtered route) and is destroyed after it */
    const sg_kobj_t **objs;     /* the stored object of docs[i]; only a selection writes it, so it outlives the docs */
    uint64_t *folds;            /* what docs[i] adds to hash and sig (fold_doc) */
    size_t n, cap;
    uint64_t hash;              /* of what the loader reads: each document's JSON */
    /* Of the same, with each EndpointSlice's JSON left out (its namespace, name and Service are in): equal for two
     * inputs that differ only in what their slices hold, which a patch can carry (config/patch.h). */
    uint64_t sig, last_sig;
    kslice_t *slices, *last_slices; /* this build's EndpointSlices, and the last build's (svc no longer valid) */
    size_t nslices, capslices, nlast_slices, caplast;
    sg_config_t *base;          /* the last generation built: the next patch starts from it */
    names_t needed;             /* the Services the last selection took ("ns/name", sorted) */
    bool selected;              /* a selection was made: needed is meaningful */
    /* The last selection, kept while the store's shape stays (sg_kstore_shape): the same objects, at the same
     * addresses, of which only EndpointSlices can have changed. A build then walks it instead of selecting again. */
    size_t nsel;                /* its length: objs[0..nsel) and folds[0..nsel) */
    const sg_kstore_t *sel_store;
    uint64_t sel_shape;
    bool sel_ok;
    uint64_t patches;           /* builds made as patches */
    uint64_t walks;             /* builds decided by a walk of the kept selection */
};

sg_kbuild_t *sg_kbuild_new(void)
{
    return calloc(1, sizeof(sg_kbuild_t));
}

static void drop_docs(sg_kbuild_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->owned[i])
            fy_document_destroy(b->docs[i]);
    b->n = 0;
    b->nslices = 0;
}

void sg_kbuild_free(sg_kbuild_t *b)
{
    if (b == NULL)
        return;
    drop_docs(b);
    free(b->docs);
    free(b->owned);
    free(b->objs);
    free(b->folds);
    free(b->slices);
    free(b->last_slices);
    sg_config_unref(b->base);
    names_free(&b->needed);
    free(b);
}

bool sg_kbuild_needs_service_key(const sg_kbuild_t *b, const char *key)
{
    return !b->selected || sorted_has(&b->needed, key);
}

bool sg_kbuild_needs_service(const sg_kbuild_t *b, const char *ns, const char *name)
{
    char key[640];
    int n = snprintf(key, sizeof(key), "%s/%s", ns, name);
    return n < 0 || (size_t)n >= sizeof(key) || sg_kbuild_needs_service_key(b, key);
}

uint64_t sg_kbuild_patches(const sg_kbuild_t *b)
{
    return b->patches;
}

/* The line document i's JSON has in the --dump-config text (see above). */
static int doc_line(size_t i)
{
    return 3 + 2 * (int)SG_MIN(i, (size_t)(INT_MAX / 2 - 2));
}

/* Adds document o (fold: what it adds, see collect_doc) to the build's hash and sig, and an EndpointSlice to its slices.
 * A full selection and a walk of the kept one fold the same way, so their hashes compare. */
static int fold_doc(sg_kbuild_t *b, const sg_kobj_t *o, uint64_t fold)
{
    if (o->kind == SG_KK_ENDPOINTSLICE && o->aux != NULL) {
        if (b->nslices == b->capslices) {
            size_t cap = b->capslices ? b->capslices * 2 : 64;
            kslice_t *v = realloc(b->slices, cap * sizeof(*v));
            if (v == NULL)
                return -ENOMEM;
            b->slices = v;
            b->capslices = cap;
        }
        b->slices[b->nslices++] = (kslice_t){o->hash, o->aux};
        b->hash = sg_kstore_hash((const char *)&o->hash, sizeof(o->hash), b->hash);
        b->sig = sg_kstore_hash(o->ns, strlen(o->ns) + 1, b->sig);
        b->sig = sg_kstore_hash(o->name, strlen(o->name) + 1, b->sig);
        b->sig = sg_kstore_hash(o->aux, strlen(o->aux) + 1, b->sig);
        return 0;
    }
    b->hash = sg_kstore_hash((const char *)&fold, sizeof(fold), b->hash);
    b->sig = sg_kstore_hash((const char *)&fold, sizeof(fold), b->sig);
    return 0;
}

uint64_t sg_kbuild_walks(const sg_kbuild_t *b)
{
    return b->walks;
}

static int collect_doc(void *ctx, const sg_kobj_t *o, const char *filtered)
{
    sg_kbuild_t *b = ctx;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct fy_document **d = realloc(b->docs, cap * sizeof(*d));
        if (d == NULL)
            return -ENOMEM;
        b->docs = d;
        bool *w = realloc(b->owned, cap * sizeof(*w));
        if (w == NULL)
            return -ENOMEM;
        b->owned = w;
        const sg_kobj_t **ov = realloc(b->objs, cap * sizeof(*ov));
        if (ov == NULL)
            return -ENOMEM;
        b->objs = ov;
        uint64_t *fv = realloc(b->folds, cap * sizeof(*fv));
        if (fv == NULL)
            return -ENOMEM;
        b->folds = fv;
        b->cap = cap;
    }
    /* A document adds the hash of its JSON: the store's own for an object written as it is (not hashed again each
     * build), that of the filtered JSON for a route written with only our parentRefs. */
    size_t len = filtered != NULL ? strlen(filtered) : 0;
    uint64_t fold = filtered != NULL ? sg_kstore_hash(filtered, len, 0) : o->hash;
    if (fold_doc(b, o, fold) < 0)
        return -ENOMEM;
    struct fy_document *d = filtered != NULL ? sg_kwatch_parse_json(filtered, len) : sg_kstore_doc(o);
    if (d == NULL)
        return -ENOMEM;
    b->owned[b->n] = filtered != NULL;
    b->objs[b->n] = o;
    b->folds[b->n] = fold;
    b->docs[b->n] = d;
    if (sg_config_doc_set_line(d, doc_line(b->n)) < 0) {
        b->n++;
        return -EINVAL;
    }
    b->n++;
    return 0;
}

/* Most Services a patch takes on; more changed at once, and a full load costs about as much. */
#define PATCH_MAX_SERVICES 64

/* The input differs from the last build's only in what some EndpointSlices hold: a patch of the last generation
 * with the endpoints of their Services resolved anew. objs: the selection, in document order. 0 and *out, or -EAGAIN
 * (a full load is needed), -ENOMEM. */
static int try_patch(sg_kbuild_t *b, const sg_kobj_t *const *objs, size_t n, sg_config_t **out)
{
    if (b->base == NULL || b->sig != b->last_sig || b->nslices != b->nlast_slices)
        return -EAGAIN;
    const char *svcs[PATCH_MAX_SERVICES];
    size_t nsvcs = 0;
    for (size_t i = 0; i < b->nslices; i++) {
        if (b->slices[i].hash == b->last_slices[i].hash)
            continue;
        bool seen = false;
        for (size_t j = 0; j < nsvcs && !seen; j++)
            seen = strcmp(svcs[j], b->slices[i].svc) == 0;
        if (seen)
            continue;
        if (nsvcs == PATCH_MAX_SERVICES)
            return -EAGAIN;
        svcs[nsvcs++] = b->slices[i].svc;
    }
    if (nsvcs == 0)
        return -EAGAIN;
    struct fy_document **docs = malloc((n + 1) * sizeof(*docs));
    if (docs == NULL)
        return -ENOMEM;
    size_t nd = 0, nsvc_docs = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const sg_kobj_t *o = objs[i];
        bool want = false;
        for (size_t j = 0; j < nsvcs && !want; j++)
            want = o->kind == SG_KK_SERVICE ? key_is(svcs[j], o)
                 : o->kind == SG_KK_ENDPOINTSLICE && o->aux != NULL && strcmp(o->aux, svcs[j]) == 0;
        if (!want)
            continue;
        /* A Service and its slices are written as they are stored (never filtered): their documents are the store's. */
        struct fy_document *d = sg_kstore_doc(o);
        if (d == NULL)
            rc = -ENOMEM;
        else if (sg_config_doc_set_line(d, doc_line(i)) < 0)
            rc = -EAGAIN;
        nsvc_docs += o->kind == SG_KK_SERVICE;
        docs[nd++] = d;
    }
    /* A changed slice of a Service that is not there (or is there twice) is the full load's to judge. */
    if (rc == 0)
        rc = nsvc_docs == nsvcs ? sg_config_patch_endpoints(b->base, docs, nd, out) : -EAGAIN;
    free(docs);
    return rc;
}

/* This build's input becomes the one the next is compared with. */
static int keep_input(sg_kbuild_t *b)
{
    if (b->nslices > b->caplast) {
        kslice_t *v = realloc(b->last_slices, b->nslices * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        b->last_slices = v;
        b->caplast = b->nslices;
    }
    if (b->nslices > 0)
        memcpy(b->last_slices, b->slices, b->nslices * sizeof(*b->slices));
    b->nlast_slices = b->nslices;
    b->last_sig = b->sig;
    b->last_hash = b->hash;
    b->built_once = true;
    return 0;
}

static void keep_base(sg_kbuild_t *b, sg_config_t *cfg)
{
    sg_config_unref(b->base);
    b->base = cfg;
    if (cfg != NULL)
        sg_config_ref(cfg);
}

/* A patch was made (*out): its input is kept as the last, and the generation as the base of the next. 2 or -ENOMEM. */
static int patched(sg_kbuild_t *b, sg_config_diag_t *diag, sg_config_t **out)
{
    int krc = keep_input(b);
    drop_docs(b);
    if (krc < 0) {
        sg_config_unref(*out);
        *out = NULL;
        diag->error = "out of memory";
        return krc;
    }
    keep_base(b, *out);
    b->patches++;
    return 2;
}

/* Keeps this build's selection (objs, folds: a walk reads them in place) for the builds that follow while the store's
 * shape stays. */
static void keep_selection(sg_kbuild_t *b, const sg_kstore_t *s)
{
    b->nsel = b->n;
    b->sel_store = s;
    b->sel_shape = sg_kstore_shape(s);
    b->sel_ok = true;
}

/* The store kept its shape since the last selection: only EndpointSlices can have changed, and the selection is the
 * same objects. Its walk folds the hash as the selection would, without selecting: 0 (nothing changed), 2 and *out (a
 * patch), -EAGAIN (a full build is needed) or -ENOMEM. */
static int walk_kept(sg_kbuild_t *b, const sg_kstore_t *s, sg_config_diag_t *diag, sg_config_t **out)
{
    if (!b->sel_ok || b->sel_store != s || b->sel_shape != sg_kstore_shape(s) || !b->built_once)
        return -EAGAIN;
    for (size_t i = 0; i < b->nsel; i++)
        if (fold_doc(b, b->objs[i], b->folds[i]) < 0)
            return -ENOMEM;
    if (b->hash == b->last_hash) {
        b->walks++;
        return 0;
    }
    int rc = try_patch(b, b->objs, b->nsel, out);
    if (rc != 0)
        return rc;
    b->walks++;
    return patched(b, diag, out);
}

int sg_kbuild_load(sg_kbuild_t *b, const sg_kstore_t *s, const char *controller, FILE *errs, sg_config_diag_t *diag,
                   sg_config_t **out)
{
    *out = NULL;
    memset(diag, 0, sizeof(*diag));
    drop_docs(b);
    uint64_t seed = sg_kstore_hash(controller, strlen(controller) + 1, 0);
    b->hash = b->sig = seed;
    int wrc = walk_kept(b, s, diag, out);
    if (wrc != -EAGAIN) {
        drop_docs(b);
        if (wrc == -ENOMEM)
            diag->error = "out of memory";
        return wrc;
    }
    drop_docs(b);
    b->hash = b->sig = seed;
    ssize_t n = select_docs(s, controller, collect_doc, b, &b->needed);
    b->selected = b->selected || n >= 0;
    if (n < 0) {
        b->sel_ok = false;
        drop_docs(b);
        diag->error = n == -ENOMEM ? "out of memory" : "a stored object cannot be read back";
        return n == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    keep_selection(b, s);
    if (b->built_once && b->hash == b->last_hash) {
        drop_docs(b);
        return 0;
    }
    int prc = try_patch(b, b->objs, b->n, out);
    if (prc == 0)
        return patched(b, diag, out);
    if (prc == -ENOMEM) {
        drop_docs(b);
        diag->error = "out of memory";
        return -ENOMEM;
    }
    /* Lenient: a bad object, rule, parentRef or listener is dropped and reported in diag (then in its status), and
     * the rest is built; only an error no object holds fails the build. */
    int rc = sg_config_load_docs_lenient("kube", b->docs, b->n, SG_CONFIG_NO_DNS, errs, diag, out);
    /* A failed load is kept as the input too (the same input is not loaded again), but never patched from: the
     * next change loads in full. */
    int krc = keep_input(b);
    drop_docs(b);
    keep_base(b, rc == 0 && krc == 0 ? *out : NULL);
    if (krc < 0 && rc == 0) {
        sg_config_unref(*out);
        *out = NULL;
        diag->error = "out of memory";
        return krc;
    }
    return rc < 0 ? rc : 1;
}
