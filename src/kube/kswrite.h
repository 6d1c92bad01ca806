/* kswrite.h: writes Gateway API status to the API server: per object a GET, the status diff (kstatus.h), and a PUT
 * to the /status subresource carrying the resourceVersion read, read again after a 409 Conflict; bounded retries with
 * backoff; counts by result. Requests go through a function the caller gives (the kube client), so it is tested
 * against a fake. Runs on the status thread (krun.c), never on the data path. */
#ifndef SG_KSWRITE_H
#define SG_KSWRITE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config/diag.h"
#include "kube/kstatus.h"

/* One request to the API server. path is absolute ("/apis/..."); body NULL for GET. Returns the HTTP status (> 0)
 * with *resp malloc'd (NULL when empty; the caller frees it), *resp_len and *retry_after_s (the Retry-After header in
 * seconds, -1 without one), or -errno when nothing was answered (-EPERM, -ECANCELED: refused before sending, as the
 * replica stopped leading or is stopping; not retried). */
typedef int (*sg_kreq_fn)(void *ctx, const char *method, const char *path, const char *body, size_t len,
                          char **resp, size_t *resp_len, int *retry_after_s);

typedef struct sg_kreq {
    sg_kreq_fn fn;
    void *ctx;
    /* Waits between retries; returns false when the writer should give up now (shutdown). NULL: no waiting. */
    bool (*sleep_ms)(void *ctx, int64_t ms);
} sg_kreq_t;

#define SG_KSW_RETRY_AFTER_MAX_S 60 /* a longer Retry-After is waited this long */

enum { SG_KSW_WRITTEN = 0, SG_KSW_UNCHANGED, SG_KSW_CONFLICT, SG_KSW_GONE, SG_KSW_ERROR, SG_KSW_N };
/* Labels of ssegate_kube_status_writes_total{result}: "written", "unchanged", "conflict" (each 409 met),
 * "gone" (the object was deleted), "error" (given up after the retries). */
extern const char *const sg_kswrite_results[SG_KSW_N];

typedef struct sg_kscache sg_kscache_t;

typedef struct sg_kswriter {
    sg_kreq_t req;
    const char *controller;
    int max_attempts;           /* per object; default 5 */
    int64_t backoff_ms;         /* first wait after a failure, doubled up to 2 s; default 100 (a 429 or 503 with
                                 * Retry-After waits that long instead, up to SG_KSW_RETRY_AFTER_MAX_S) */
    _Atomic uint64_t counts[SG_KSW_N];
    sg_kscache_t *cache;        /* what we last wrote or found in place, per object */
} sg_kswriter_t;

void sg_kswrite_init(sg_kswriter_t *w, const sg_kreq_t *req, const char *controller);
void sg_kswrite_free(sg_kswriter_t *w);
/* Forget what was written: the next sync reads every object again (on becoming leader, and periodically, so a status
 * someone else changed is repaired). */
void sg_kswrite_forget(sg_kswriter_t *w);

/* The REST path of an object ("/apis/gateway.networking.k8s.io/v1/namespaces/a/httproutes/r"); ns NULL or "" for
 * cluster-scoped kinds. Returns the length, or -ENOSPC / -EINVAL (a name that cannot be in a path). */
int sg_kswrite_path(const char *api_version, const char *kind, const char *ns, const char *name, char *out,
                    size_t cap);

/* Brings one object's status to `desired` (sg_kstatus_desired's JSON and shape). key names it in the cache
 * ("Kind/ns/name"); desired_key is the desired status computed with a fixed "now" (so a new time alone is no
 * change). Returns SG_KSW_WRITTEN, _UNCHANGED, _GONE or _ERROR, and counts it. */
int sg_kswrite_object(sg_kswriter_t *w, const char *path, const char *key, const char *desired,
                      const char *desired_key, sg_kstatus_shape_t shape);

/* Writes the status of every object of d that gets one from us (env->programmed says whether d's generation is
 * serving), and removes our parents entries from routes we wrote before that are no longer in d. Returns the number
 * of objects that failed (0 when all went through). */
int sg_kswrite_sync(sg_kswriter_t *w, const sg_config_diag_t *d, const sg_kstatus_env_t *env);

#endif
