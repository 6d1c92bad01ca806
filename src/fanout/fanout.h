/* fanout.h: shared SSE streams. Requests that match a rule whose SSEPolicy turns sharing on, with the same sharing
 * key, are served by one upstream stream per instance: its events are parsed once, kept in a replay ring and handed
 * to every subscriber, on every worker. Every other request is passed to the proxy unchanged. */
#ifndef SG_FANOUT_H
#define SG_FANOUT_H

#include "http/stream.h"
#include "core/worker.h"

typedef struct sg_fanout sg_fanout_t;

/* The handler the worker gives the protocols: shared streams here, every other stream to sg_proxy_handler. */
extern const sg_stream_handler_t sg_fanout_handler;

/* Creates the worker's table of shared streams (w->fanout). Returns 0 or -ENOMEM. */
int sg_fanout_init(sg_worker_t *w);
/* Closes every shared upstream stream (hard stop; their subscribers' connections are closed by the caller).
 * Safe to call more than once. */
void sg_fanout_close_all(sg_worker_t *w);
/* Frees the table (after the loop has ended). */
void sg_fanout_free(sg_worker_t *w);

/*
 * One upstream per instance (share.c): links the workers' tables through one table of sharing keys for the process,
 * so that a key's upstream is held by one worker (its owner) and the others' subscribers are fed from it through
 * their mailboxes. Called once by the main thread after every sg_fanout_init and before the threads start; without
 * it each worker shares alone. Returns 0 or -ENOMEM.
 */
int sg_fanout_link(sg_worker_t *workers, int n);
/* The worker's loop was woken: reads what other workers posted to it. */
void sg_fanout_wake(sg_worker_t *w);
/* True while the worker holds an upstream that other workers' subscribers still use: a draining worker stays up. */
bool sg_fanout_holds(const sg_worker_t *w);

#endif
