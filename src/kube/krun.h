/* krun.h: the status thread. It holds the status Lease (klease.h) and, while it leads, writes the status
 * (kswrite.h) of the newest generation the main thread has published: the kube thread hands over each build's
 * diagnostics, the main thread says when that build serves. Every replica runs one; only the leader writes. */
#ifndef SG_KRUN_H
#define SG_KRUN_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/diag.h"
#include "kube/kswrite.h"

typedef struct sg_krun_opts {
    sg_kreq_fn req;             /* requests to the API server (thread-safe: the kube client); req_ctx is its ctx */
    void *req_ctx;
    const char *controller;     /* --controller-name */
    const char *lease_ns;       /* --lease-namespace, else the pod's namespace, else "default" (the caller decides) */
    const char *lease_name;     /* NULL: sg_krun_lease_name(controller) */
    const char *identity;       /* NULL: sg_krun_identity() */
    int64_t lease_duration_ms;  /* 0: 15 s (--lease-duration) */
    int64_t renew_deadline_ms;  /* 0: two thirds of the duration (10 s for 15 s) */
    int64_t retry_ms;           /* 0: a seventh of the duration, at least 100 ms (2 s for 15 s) */
    const char *publish_service; /* --publish-service NS/NAME, or NULL */
    int64_t resync_ms;          /* re-read every object's status this often while leading; 0: 5 min */
    int nice;                   /* the status thread's nice value (sg_thread_background) */
    bool cpus_set;              /* the status thread keeps to cpus (sg_thread_pin); else it runs anywhere */
    cpu_set_t cpus;
} sg_krun_opts_t;

typedef struct sg_krun sg_krun_t;

/* Starts the thread. NULL with a reason in err. The strings of o are copied. */
sg_krun_t *sg_krun_start(const sg_krun_opts_t *o, char *err, size_t cap);
/* The kube thread built generation `build` with these diagnostics: *diag's contents move to the runner (and *diag is
 * zeroed). Any thread. */
void sg_krun_built(sg_krun_t *r, uint64_t build, sg_config_diag_t *diag);
/* The main thread published generation `build` (and every earlier one is gone); failed: ports whose socket did not
 * bind. Status for that build is written (Programmed) from here on. Any thread. */
void sg_krun_published(sg_krun_t *r, uint64_t build, const uint16_t *failed, size_t nfailed);
/* Build `build` is still the one serving, and a bind retry changed its unbound ports to failed: its status is
 * synced again with them. Ignored when a newer build was published (that one carries its own). Any thread. */
void sg_krun_rebound(sg_krun_t *r, uint64_t build, const uint16_t *failed, size_t nfailed);
/* Whether this replica leads now. Any thread. */
bool sg_krun_leader(const sg_krun_t *r);
/* Prometheus text: ssegate_kube_leader, ssegate_kube_leader_acquired_total, ssegate_kube_status_writes_total{result}.
 * Any thread. */
void sg_krun_render_metrics(const sg_krun_t *r, FILE *f);
/* Stops the thread, gives the Lease up when leading (so another replica takes over at once), frees. Accepts NULL. */
void sg_krun_stop(sg_krun_t *r);

/* "ssegate-status-" and 8 hex digits of a hash of the controller name: one Lease per controller name. */
void sg_krun_lease_name(const char *controller, char *out, size_t cap);
/* POD_NAME (the downward API), else "<hostname>_<pid>". */
void sg_krun_identity(char *out, size_t cap);

#endif
