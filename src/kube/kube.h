/* kube.h: the Kubernetes config source: a thread that lists and watches the API server, keeps the store, and builds
 * config generations that the main thread publishes exactly as a SIGHUP reload does. */
#ifndef SG_KUBE_H
#define SG_KUBE_H

#include <sched.h>
#include <stdio.h>

#include "config/config.h"
#include "core/sg.h"

typedef struct sg_kube_opts {
    bool incluster;             /* --kube */
    const char *sa_dir;         /* service account directory (--kube-sa-dir); NULL: the standard path */
    const char *kubeconfig;     /* --kubeconfig FILE */
    const char *controller;     /* --controller-name */
    const char *watch_ns;       /* --watch-namespace, or NULL for all */
    const char *publish_service; /* --publish-service NS/NAME, or NULL */
    const char *lease_ns;       /* --lease-namespace, or NULL for the default (see sg_kube_lease_namespace) */
    int64_t lease_duration_ms;  /* --lease-duration; 0: 15 s */
    bool api_rate_set;          /* --kube-api-qps given (else SG_KCLIENT_QPS) */
    uint32_t api_qps;           /* --kube-api-qps; 0: no limit */
    uint32_t api_burst;         /* --kube-api-burst; 0: SG_KCLIENT_BURST */
    bool nice_set;              /* --kube-nice given (else SG_KUBE_NICE) */
    uint32_t nice;              /* --kube-nice: the watch and status threads' nice value, 0..19 */
    bool cpus_set;              /* --kube-cpus given */
    cpu_set_t cpus;             /* --kube-cpus: the CPUs of the watch and status threads */
} sg_kube_opts_t;

/* The watch and status threads run below the workers: a rebuild (tens of ms of CPU at a thousand routes) or a burst of
 * events must not hold a core that a worker's stream wakes up on (docs/ARCHITECTURE.md). */
#define SG_KUBE_NICE 10

typedef struct sg_kube sg_kube_t;
struct sg_krun;

/* Reads the connection settings and builds the client; starts nothing. NULL with a reason in err. */
sg_kube_t *sg_kube_new(const sg_kube_opts_t *o, char *err, size_t cap);
/* Stops the thread (if started) and frees everything, including a generation not taken. Accepts NULL. */
void sg_kube_free(sg_kube_t *k);
/* Starts the watch thread. Returns 0 or -errno. */
int sg_kube_start(sg_kube_t *k);
/* Readable (an eventfd) when a new generation waits in sg_kube_take. */
int sg_kube_fd(const sg_kube_t *k);
/* The newest generation built since the last call (ownership passes to the caller), or NULL; *build (may be NULL) gets
 * its build number (1, 2, ...: the status writer's key for "this build now serves"). Only complete caches are built:
 * every kind has finished its first LIST before the first generation. Main thread. */
sg_config_t *sg_kube_take(sg_kube_t *k, uint64_t *build);
/* One request through the watcher's client, in the shape of the status writer's request function (kswrite.h
 * sg_kreq_fn): ctx is the sg_kube_t. Returns the HTTP status with *resp malloc'd (NULL when empty) and *resp_len,
 * or -errno. Thread-safe. */
int sg_kube_request(void *ctx, const char *method, const char *path, const char *body, size_t len, char **resp,
                    size_t *resp_len, int *retry_after_s);
/* Every worker serves build `build` (from sg_kube_take): its status may now say Programmed; failed: the ports of its
 * listeners that could not be bound (PortUnavailable). Main thread. */
void sg_kube_published(sg_kube_t *k, uint64_t build, const uint16_t *failed, size_t nfailed);
/* Build `build` still serves, and a retry changed which of its listeners' ports are unbound (now failed): its
 * status is written again (a port that bound turns Programmed). Ignored once a newer build is published. Main
 * thread. */
void sg_kube_rebound(sg_kube_t *k, uint64_t build, const uint16_t *failed, size_t nfailed);
/* Stops writing status and gives the status Lease up (at drain, so another replica takes over at once). Idempotent;
 * sg_kube_free does it too. */
void sg_kube_release(sg_kube_t *k);
/* Asks the thread to relist every kind (SIGHUP in kube mode). Any thread. */
void sg_kube_relist(sg_kube_t *k);
/* Lists every kind once (no watch, no thread) and writes what file mode would read to out. Returns 0, or -errno with
 * the reason logged. */
int sg_kube_dump(sg_kube_t *k, FILE *out);
/* Prometheus text for the ssegate_kube_* and config build metrics (main thread; reads the thread's atomics). */
void sg_kube_render_metrics(sg_kube_t *k, FILE *f);
/* --controller-name, or its default. */
const char *sg_kube_controller(const sg_kube_t *k);
/* --lease-namespace, else the pod's namespace (POD_NAMESPACE, or the service account's), else "default". */
const char *sg_kube_lease_namespace(const sg_kube_t *k);

#endif
