/* klease.h: leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it, as a pure state
 * machine on an injected clock: it says which request to make next and learns from each answer; the caller does the
 * I/O. Only the leader writes status; every replica serves. */
#ifndef SG_KLEASE_H
#define SG_KLEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* client-go / controller-runtime defaults */
#define SG_KLEASE_DURATION_MS 15000
#define SG_KLEASE_RENEW_DEADLINE_MS 10000
#define SG_KLEASE_RETRY_MS 2000

typedef struct sg_klease_cfg {
    const char *ns, *name;      /* the Lease */
    const char *identity;       /* holderIdentity: POD_NAME, or hostname + pid */
    int64_t duration_ms;        /* leaseDurationSeconds (whole seconds on the wire, at least 1) */
    int64_t renew_deadline_ms;  /* a leader that has not renewed for this long steps down */
    int64_t retry_ms;           /* pause between tries, and between renewals */
} sg_klease_cfg_t;

typedef enum sg_klease_op {
    SG_KLEASE_WAIT = 0,         /* nothing now: call again after *wait_ms */
    SG_KLEASE_GET,              /* GET the Lease */
    SG_KLEASE_CREATE,           /* POST body to the collection */
    SG_KLEASE_UPDATE,           /* PUT body to the Lease (it carries the resourceVersion read) */
} sg_klease_op_t;

typedef struct sg_klease {
    sg_klease_cfg_t cfg;
    char identity[256], ns[254], name[254];
    bool leader;
    bool busy;                  /* an op was handed out and its answer not given yet */
    sg_klease_op_t pending;
    int64_t next_ms;            /* monotonic time of the next try */
    int64_t renewed_ms;         /* monotonic time of our last successful write */
    /* The record last read or written, and when (on our clock) it last changed: the Lease expires
     * duration after that, whatever the clocks of other machines say. */
    bool known;                 /* a record was read (or the Lease found absent: rv "") */
    bool reread;                /* read it again before acting */
    char holder[256], rv[64], renew_time[64], acquire_time[64];
    int64_t duration_ms;
    long transitions;
    int64_t observed_ms;
    uint64_t acquired, lost;    /* counts, for logs and tests */
} sg_klease_t;

/* Starts as a follower that tries at once. Strings of cfg are copied (cut at the buffers' sizes). */
void sg_klease_init(sg_klease_t *l, const sg_klease_cfg_t *cfg, int64_t now_ms);

/*
 * The next request at monotonic time now_ms. wall is the current time as a Kubernetes MicroTime
 * ("2026-01-02T03:04:05.000000Z"), written into bodies. For CREATE and UPDATE, *body gets the JSON (cap bytes; a
 * Lease that does not fit is SG_KLEASE_WAIT). Returns SG_KLEASE_WAIT with *wait_ms > 0 when there is nothing to do
 * yet, or while an op is outstanding.
 */
sg_klease_op_t sg_klease_next(sg_klease_t *l, int64_t now_ms, const char *wall, char *body, size_t cap,
                              int64_t *wait_ms);

/* The answer to the op sg_klease_next gave: HTTP status (0 for no answer: connect error, timeout) and body. */
void sg_klease_done(sg_klease_t *l, int64_t now_ms, int status, const char *body, size_t len);

/* Whether we lead at now_ms: our last renewal is younger than the renew deadline. */
bool sg_klease_leader(const sg_klease_t *l, int64_t now_ms);

/* On shutdown: when we lead, the UPDATE that gives the Lease up (no holder, leaseDurationSeconds 1, as client-go's
 * ReleaseOnCancel) in *body, and we stop leading at once; else SG_KLEASE_WAIT. */
sg_klease_op_t sg_klease_release(sg_klease_t *l, const char *wall, char *body, size_t cap);

#endif
