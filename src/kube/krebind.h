/* krebind.h: kube mode's retry of listeners whose port could not be bound (main thread). A Gateway listener whose
 * port is taken (another process, a replica's predecessor still draining) is tried again with backoff until it binds,
 * without waiting for a config change; its status follows (PortUnavailable, then Programmed). */
#ifndef SG_KREBIND_H
#define SG_KREBIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/worker.h"

/* The first retry comes 1 s after the failure, then the delay doubles up to 30 s and stays there (docs/ARCHITECTURE.md,
 * "Bind retry"). */
#define SG_KREBIND_FIRST_MS 1000
#define SG_KREBIND_MAX_MS 30000

typedef struct sg_rebind {
    uint64_t build;     /* the kube build whose listeners did not all bind; 0: nothing to retry */
    uint64_t gen;       /* its config generation (a worker on another one ignores the request) */
    uint16_t failed[SG_WORKER_MAX_BIND_FAILED]; /* ports still not bound */
    size_t nfailed;
    uint64_t due_ms;    /* the next round */
    uint32_t delay_ms;  /* the wait after the next round, if it fails */
    uint64_t seq;       /* the round asked of the workers */
    bool inflight;      /* asked, not yet answered by every worker */
    unsigned tries;     /* rounds since the failure */
} sg_krebind_t;

/* The ports some worker could not bind (SO_REUSEPORT: the same for all, unless one raced), each once, into out
 * (room for SG_WORKER_MAX_BIND_FAILED). Returns how many. */
size_t sg_krebind_collect(const sg_worker_t *ws, int n, uint16_t *out);
/* Every worker has taken generation gen (kube build `build`) and these ports did not bind: retries start (or stop,
 * when nfailed is 0). Logs once when there is something to retry. A round in flight is forgotten. */
void sg_krebind_start(sg_krebind_t *rb, uint64_t build, uint64_t gen, const uint16_t *failed, size_t nfailed,
                     uint64_t now);
/* A new generation was handed to the workers: whatever was being retried belongs to the old one. */
void sg_krebind_reset(sg_krebind_t *rb);
/* Asks the workers for a round when one is due; collects it once every worker has answered. Returns true when the
 * set of unbound ports changed (then rb->failed/nfailed is the new set, for the status writer; each port that bound
 * is logged once). */
bool sg_krebind_tick(sg_krebind_t *rb, sg_worker_t *ws, int n, uint64_t now);
/* How long the main loop may sleep before sg_krebind_tick has work: -1 for as long as it likes. */
int sg_krebind_wait_ms(const sg_krebind_t *rb, uint64_t now);

#endif
