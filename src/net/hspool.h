/* hspool.h: TLS handshakes off the event loops. A handshake step that computes (the server's key share and
 * its signature: about 0.3 ms with RSA 2048) runs on a small thread pool, so that a worker's other streams
 * never wait behind it. The worker hands a job over with its socket out of epoll, and gets it back through
 * its own completion callback; an SSL object is used by one thread at a time. */
#ifndef SG_HSPOOL_H
#define SG_HSPOOL_H

#include <pthread.h>
#include <stdbool.h>

#include "core/list.h"

struct ssl_st;

enum { SG_HS_DONE, SG_HS_WANT_READ, SG_HS_WANT_WRITE, SG_HS_FAILED };

typedef struct sg_hs_job {
    sg_list_t link;
    struct ssl_st *ssl;
    int result;                                 /* SG_HS_*, set on the pool thread */
    void (*complete)(struct sg_hs_job *j);      /* called on the pool thread: hands the job back */
} sg_hs_job_t;

typedef struct sg_hspool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sg_list_t queue;
    bool stop;
    int nthreads;
    pthread_t threads[];
} sg_hspool_t;

/* Starts n threads. Returns NULL when no thread could be started (the caller handshakes on its loop). */
sg_hspool_t *sg_hspool_start(int n);
/* Queues one handshake step. */
void sg_hspool_submit(sg_hspool_t *p, sg_hs_job_t *j);
/* Runs one handshake step now, on the calling thread (what a pool thread does with a job). */
int sg_hs_step(struct ssl_st *ssl);
/* Stops and joins the threads; jobs still queued are completed first. NULL is a no-op. */
void sg_hspool_stop(sg_hspool_t *p);

#endif
