/* serve.h: the worker threads (serve.c): set up, run, drain, stop and free one worker. */
#ifndef SG_SERVE_H
#define SG_SERVE_H

#include "config/config.h"
#include "http/conn.h"
#include "core/worker.h"

/* The protocols every worker hands to conn.c (HTTP/1.1 and HTTP/2). */
extern const sg_conn_protos_t sg_serve_protos;

/* Creates the worker's loop and listening sockets for cfg->binds, and gives it the protocols and the stream
 * handler. Returns 0 or -errno (message logged). */
int sg_serve_init(sg_worker_t *w, int id, const sg_settings_t *settings, sg_config_t *cfg);
/* Runs the loop until stop is set and every connection has closed. */
void *sg_serve_main(void *arg);
void sg_serve_free(sg_worker_t *w);
/* Asks a worker (from another thread) to stop now. */
void sg_serve_request_stop(sg_worker_t *w);
/* Asks a worker (from another thread) to drain: stop accepting, let streams end, then exit. */
void sg_serve_request_drain(sg_worker_t *w);

#endif
