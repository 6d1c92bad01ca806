/* loop.h: one epoll loop per worker: fd watchers, the timer wheel, the flush-before-sleep list (and the relay list,
 * flushed right after the interactive watcher that queued it), the reap list and an eventfd to wake the loop from
 * other threads. */
#ifndef SG_LOOP_H
#define SG_LOOP_H

#include <sys/epoll.h>

#include "core/buf.h"
#include "core/list.h"
#include "core/timer.h"

#define SG_IDLE_TRIM_MS 1000 /* a loop this long without events gives its spare memory back */
#define SG_LOOP_BATCH 128    /* events taken per epoll_wait; a full batch is saturation */

typedef struct sg_loop sg_loop_t;
typedef struct sg_watcher sg_watcher_t;
typedef void (*sg_io_cb)(sg_watcher_t *w, uint32_t events);

struct sg_watcher {
    int fd;
    uint32_t mask;      /* events registered with epoll; 0 = not registered */
    bool interactive;   /* an interactive relay (a tunnel): its events do not count towards saturation */
    sg_io_cb cb;
};

/* A deferred call: queued once per iteration on the flush or reap list. */
typedef struct sg_deferred {
    sg_list_t link;
    void (*cb)(struct sg_deferred *d);
} sg_deferred_t;

struct sg_loop {
    int epfd;
    int wakefd;
    sg_watcher_t wake_w;
    void (*on_wake)(sg_loop_t *loop);
    sg_wheel_t wheel;
    uint64_t now_ms;    /* CLOCK_MONOTONIC, updated once per iteration */
    sg_pool_t pool;
    sg_list_t flush_list;
    sg_list_t relay_list;   /* flushes queued by an interactive watcher's callback: run as soon as it returns */
    sg_list_t reap_list;
    bool in_relay;          /* an interactive watcher's callback is running: its flushes go to relay_list */
    bool stop;
    bool flush_deferred;    /* the last (saturated) iteration left its flushes to this one */
    uint64_t busy_ms;       /* last iteration that had events */
    uint32_t pause_us;      /* pause after a saturated iteration (a full batch of events); 0: yield only */
    bool interactive_pause; /* interactive watchers count like any other towards saturation (the old rule) */
    _Atomic uint64_t *saturated_count; /* counts saturated iterations, if set (read by the metrics) */
    _Atomic uint64_t *relay_full_count; /* counts full batches not saturated (mostly interactive), if set */
    void *data;         /* the owning worker */
};

uint64_t sg_now_ms(void);

/* Returns 0 or -errno. */
int sg_loop_init(sg_loop_t *loop);
void sg_loop_free(sg_loop_t *loop);

/* Sets the events watched on w->fd (0 removes it). Returns 0 or -errno. */
int sg_loop_watch(sg_loop_t *loop, sg_watcher_t *w, uint32_t mask);

static inline void sg_deferred_init(sg_deferred_t *d, void (*cb)(sg_deferred_t *d))
{
    sg_list_init(&d->link);
    d->cb = cb;
}

/* Queues d to run before the loop sleeps (idempotent). Queued from an interactive watcher's callback (a tunnel's
 * relay), d runs as soon as that callback returns instead, before the other events of the batch are handled: a
 * relayed message is written when it is read, not after the rest of the batch (d already queued stays where it
 * is). */
static inline void sg_loop_flush_later(sg_loop_t *loop, sg_deferred_t *d)
{
    if (!sg_list_linked(&d->link))
        sg_list_insert_tail(loop->in_relay ? &loop->relay_list : &loop->flush_list, &d->link);
}

/* Queues d to run at the end of the iteration, after every I/O callback: frees happen there. */
static inline void sg_loop_reap_later(sg_loop_t *loop, sg_deferred_t *d)
{
    if (sg_list_linked(&d->link))
        sg_list_remove(&d->link);
    sg_list_insert_tail(&loop->reap_list, &d->link);
}

static inline void sg_loop_cancel(sg_deferred_t *d)
{
    if (sg_list_linked(&d->link))
        sg_list_remove(&d->link);
}

/* Wakes the loop from another thread. */
void sg_loop_wake(sg_loop_t *loop);

/* Whether a batch of n ready events, interactive of them on interactive watchers, saturates the worker: a full
 * batch (n == max) of which fewer than half are interactive. A saturated iteration leaves its flushes to the
 * next one and then pauses (pause_us). */
static inline bool sg_loop_saturated(int n, int max, int interactive)
{
    return n >= max && interactive * 2 < n;
}

/* One iteration: wait, dispatch I/O, run timers, flush, reap. */
void sg_loop_run_once(sg_loop_t *loop);

#endif
