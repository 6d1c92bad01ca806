/* hspool.c: the TLS handshake thread pool (see hspool.h). */
#include <errno.h>
#include <string.h>
#include <malloc.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/hspool.h"
#include "core/log.h"
#include "core/thread.h"

#define HS_NICE 10          /* added to the handshake threads' nice value */
#define HS_TRIM_IDLE_MS 200 /* handshakes paused this long: return freed memory to the system */

int sg_hs_step(struct ssl_st *ssl)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return SG_HS_DONE;
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return SG_HS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return SG_HS_WANT_WRITE;
    default:
        return SG_HS_FAILED;
    }
}

/* Waits on the pool's condition until ms have passed (CLOCK_MONOTONIC, as the condition was set up). */
static void wait_ms(sg_hspool_t *p, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cond, &p->lock, &ts);
}

static void *pool_main(void *arg)
{
    sg_hspool_t *p = arg;
    bool dirty = false; /* handshakes since the last trim */
    /* A handshake can wait a millisecond; an event should not. At a lower priority (nice +10: about a
     * tenth of a worker's CPU share when both want the core) the workers win the CPU when both are
     * runnable, so handshakes take the idle time instead of the events' latency. */
    int nrc = sg_thread_background("ssegate-tls", HS_NICE);
    if (nrc < 0)
        sg_log_error("TLS handshake thread: cannot lower its priority: %s", strerror(-nrc));
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (sg_list_empty(&p->queue) && !p->stop && dirty) {
            /* A handshake leaves freed scratch (its messages, the transcript) in this thread's malloc arena,
             * where no other thread reuses it. Once handshakes pause for HS_TRIM_IDLE_MS, give it back. */
            wait_ms(p, HS_TRIM_IDLE_MS);
            if (sg_list_empty(&p->queue) && !p->stop) {
                pthread_mutex_unlock(&p->lock);
                malloc_trim(0);
                pthread_mutex_lock(&p->lock);
                dirty = false;
            }
            continue;
        }
        while (sg_list_empty(&p->queue) && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        sg_list_t *n = sg_list_pop(&p->queue);
        if (n == NULL)
            break; /* stopping and nothing left */
        pthread_mutex_unlock(&p->lock);
        sg_hs_job_t *j = SG_CONTAINER_OF(n, sg_hs_job_t, link);
        j->result = sg_hs_step(j->ssl);
        j->complete(j);
        dirty = true;
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    /* OpenSSL keeps an error queue per thread: free ours before the thread ends. */
    OPENSSL_thread_stop();
    return NULL;
}

sg_hspool_t *sg_hspool_start(int n)
{
    sg_hspool_t *p = calloc(1, sizeof(*p) + (size_t)n * sizeof(pthread_t));
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cond, &ca);
    pthread_condattr_destroy(&ca);
    sg_list_init(&p->queue);
    for (int i = 0; i < n; i++) {
        int rc = pthread_create(&p->threads[i], NULL, pool_main, p);
        if (rc != 0) {
            sg_log_error("TLS handshake thread: %s", strerror(rc));
            break;
        }
        p->nthreads++;
    }
    if (p->nthreads == 0) {
        sg_hspool_stop(p);
        return NULL;
    }
    return p;
}

void sg_hspool_submit(sg_hspool_t *p, sg_hs_job_t *j)
{
    pthread_mutex_lock(&p->lock);
    sg_list_insert_tail(&p->queue, &j->link);
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

void sg_hspool_stop(sg_hspool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
