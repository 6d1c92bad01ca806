/* health.h: endpoint health that survives reloads (a process-wide table keyed by address), passive failure
 * accounting with exponential-backoff ejection, open-stream counts for least-request, and the active
 * HealthCheckPolicy probes run from the main thread's poll loop. */
#ifndef SG_HEALTH_H
#define SG_HEALTH_H

#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "config/config.h"

#define SG_HEALTH_EJECT_BASE_MS 1000   /* first passive ejection */
#define SG_HEALTH_EJECT_MAX_MS 30000   /* ejections double up to this */
#define SG_HEALTH_MAX_INFLIGHT 64      /* probes connected at once; more wait their turn */

/*
 * One endpoint address. Workers touch only the atomics, through the functions below; everything else is
 * the main thread's. An entry lives as long as some generation that points at it can still be used: the
 * table holds a reference on every generation it attached, and an entry is freed only once no generation
 * it holds names its address and each generation that did is referenced by the table alone (no worker,
 * stream or connection has it). So a generation's sg_endpoint_t.health pointer stays valid however long
 * streams keep that generation, and endpoints that left the config (pods that went away) do not pile up.
 */
struct sg_health_entry {
    atomic_int healthy;                 /* 1 unless active checks failed unhealthyThreshold times */
    _Atomic uint64_t ejected_until_ms;  /* passive ejection: unusable before this sg_now_ms() instant */
    atomic_int active;                  /* open streams on this endpoint, all workers (relaxed) */
    atomic_int consecutive_failures;    /* passive failures since the last success: the backoff exponent */
    /* main thread only */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char label[64];
    struct sg_health_entry *next;       /* hash chain */
    unsigned gens;                      /* held generations naming this address */
    uint64_t mark;                      /* counts each generation once (sg_health_t.epoch) */
};

typedef struct sg_health_probe sg_health_probe_t; /* opaque, owned by health.c */

/* The table and the probes. Owned by main.c; workers only see entries through endpoints. */
typedef struct sg_health {
    sg_health_entry_t **buckets;
    size_t nbuckets, nentries;
    sg_health_probe_t **probes;         /* one per health-checked entry of the current config */
    size_t nprobes, capprobes;
    sg_health_probe_t *polled[SG_HEALTH_MAX_INFLIGHT]; /* what the last sg_health_pollfds() listed, in order */
    int npolled;
    uint64_t rng;
    sg_config_t **gens;                 /* generations attached and still referenced here, oldest first */
    size_t ngens, capgens;
    uint64_t epoch;
    uint64_t pruned;                    /* entries freed so far (for /metrics) */
    bool orphans;                       /* a failed attach may have left entries no generation holds */
} sg_health_t;

/* Worker side: lock-free, NULL-tolerant (an endpoint without an entry is always usable). */

/* True when e passes active checks and is not passively ejected at now_ms. */
bool sg_health_usable(const sg_health_entry_t *e, uint64_t now_ms);
/* A connect refused / reset / failed: ejects e for 1 s, 2 s, 4 s ... at most 30 s, doubling with each
 * failure in a row. Failures reported while e is already ejected do not lengthen the backoff (streams that
 * started before the ejection fail together). */
void sg_health_report_failure(sg_health_entry_t *e, uint64_t now_ms);
/* A successful exchange (response head received): resets the backoff. */
void sg_health_report_success(sg_health_entry_t *e);
/* Open-stream count across workers, for least-request; every begin needs exactly one end. */
void sg_health_stream_begin(sg_health_entry_t *e);
void sg_health_stream_end(sg_health_entry_t *e);
int sg_health_active(const sg_health_entry_t *e);

/* Main thread side. */

/* Returns 0 or -ENOMEM. */
int sg_health_init(sg_health_t *h);
/* Closes every probe, drops the generations it holds and frees every entry; only after all workers have
 * stopped. Accepts a zeroed table. */
void sg_health_free(sg_health_t *h);
/* The entry for an address (the port counts), created on first sight; NULL when out of memory. */
sg_health_entry_t *sg_health_get(sg_health_t *h, const struct sockaddr *sa, socklen_t len);
/*
 * Points every endpoint of cfg at its entry and re-points the probes at cfg's health-checked endpoints:
 * probes whose endpoint and settings carry over keep their state (and their in-flight check); new ones
 * start at once; the others are closed, and an entry left without a probe is marked healthy again.
 * The table takes a reference on cfg (dropped by sg_health_prune once nothing else holds cfg).
 * Call before publishing cfg to the workers. Returns 0 or -ENOMEM (cfg is then partly attached: do not
 * publish it; entries it created are pruned).
 */
int sg_health_attach(sg_health_t *h, sg_config_t *cfg);
/*
 * Drops the generations only the table still references and frees the entries no remaining generation
 * names. Cheap when there is nothing to drop (a look at each held generation's count); sg_health_handle
 * calls it. Returns how many entries were freed.
 */
size_t sg_health_prune(sg_health_t *h);
/* Adds the fds of in-flight probes to pfds (room for SG_HEALTH_MAX_INFLIGHT); returns how many. */
int sg_health_pollfds(sg_health_t *h, struct pollfd *pfds);
/* Handles what poll reported for those fds (n may be 0), probe deadlines, and starts the probes due. */
void sg_health_handle(sg_health_t *h, const struct pollfd *pfds, int n, uint64_t now_ms);
/* Milliseconds until the next probe is due or times out (0: now); -1 when no probe is configured. */
int sg_health_next_timeout_ms(const sg_health_t *h, uint64_t now_ms);
/* Calls fn for every entry (e.g. to render endpoint health in /metrics); main thread only. */
void sg_health_each(const sg_health_t *h, void (*fn)(const sg_health_entry_t *e, void *arg), void *arg);

/* Pure pieces, exported for tests. */

/* Parses an HTTP/1.x status line at the start of buf[0..len). Returns the status (100..599),
 * SG_EINCOMPLETE without a complete line yet, or SG_EBADMSG. */
int sg_health_parse_status(const char *buf, size_t len);
/* True when status falls in one of hc's ranges. */
bool sg_health_status_ok(const sg_healthcheck_t *hc, int status);

#endif
