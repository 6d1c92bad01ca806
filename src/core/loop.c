/* loop.c: the per-worker epoll loop. */
#include <stdint.h>
#include <sys/eventfd.h>
#include <malloc.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

uint64_t sg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wake_cb(sg_watcher_t *w, uint32_t events)
{
    sg_loop_t *loop = SG_CONTAINER_OF(w, sg_loop_t, wake_w);
    uint64_t v;
    (void)events;
    if (read(w->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return;
    if (loop->on_wake)
        loop->on_wake(loop);
}

int sg_loop_init(sg_loop_t *loop)
{
    memset(loop, 0, sizeof(*loop));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return -errno;
    loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->wakefd < 0) {
        int err = -errno;
        close(loop->epfd);
        return err;
    }
    loop->now_ms = sg_now_ms();
    sg_wheel_init(&loop->wheel, loop->now_ms);
    sg_pool_init(&loop->pool);
    sg_list_init(&loop->flush_list);
    sg_list_init(&loop->relay_list);
    sg_list_init(&loop->reap_list);
    loop->wake_w.fd = loop->wakefd;
    loop->wake_w.cb = wake_cb;
    int rc = sg_loop_watch(loop, &loop->wake_w, EPOLLIN);
    if (rc < 0) {
        close(loop->wakefd);
        close(loop->epfd);
        return rc;
    }
    return 0;
}

void sg_loop_free(sg_loop_t *loop)
{
    sg_pool_free(&loop->pool);
    if (loop->wakefd >= 0)
        close(loop->wakefd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->wakefd = loop->epfd = -1;
}

int sg_loop_watch(sg_loop_t *loop, sg_watcher_t *w, uint32_t mask)
{
    if (mask == w->mask)
        return 0;
    struct epoll_event ev = {.events = mask, .data.ptr = w};
    int op = w->mask == 0 ? EPOLL_CTL_ADD : (mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
    if (epoll_ctl(loop->epfd, op, w->fd, &ev) < 0)
        return -errno;
    w->mask = mask;
    return 0;
}

void sg_loop_wake(sg_loop_t *loop)
{
    uint64_t one = 1;
    ssize_t n = write(loop->wakefd, &one, sizeof(one));
    (void)n; /* EAGAIN means a wakeup is already pending */
}

static void run_list(sg_list_t *list)
{
    sg_list_t *n;
    while ((n = sg_list_pop(list)) != NULL) {
        sg_deferred_t *d = SG_CONTAINER_OF(n, sg_deferred_t, link);
        d->cb(d);
    }
}

void sg_loop_run_once(sg_loop_t *loop)
{
    struct epoll_event evs[SG_LOOP_BATCH];
    int timeout = (loop->stop || !sg_list_empty(&loop->flush_list)) ? 0 : sg_wheel_timeout(&loop->wheel);
    if (loop->pool.dirty && (timeout < 0 || timeout > SG_IDLE_TRIM_MS))
        timeout = SG_IDLE_TRIM_MS;
    int n = epoll_wait(loop->epfd, evs, SG_LOOP_BATCH, timeout);

    loop->now_ms = sg_now_ms();
    if (n > 0) {
        loop->busy_ms = loop->now_ms;
    } else if (loop->pool.dirty && loop->now_ms - loop->busy_ms >= SG_IDLE_TRIM_MS) {
        /* Idle for a while after activity: the chunks kept for reuse, and what the allocator keeps of
         * freed memory (a burst of connections leaves plenty), go back to the system. Once per idle
         * period; under load the pool keeps its chunks. */
        sg_pool_release(&loop->pool);
        malloc_trim(0);
    }
    int interactive = 0;
    for (int i = 0; i < n; i++) {
        sg_watcher_t *w = evs[i].data.ptr;
        /* A watcher removed earlier in this batch has mask 0: its object may be on the reap list. */
        if (w->mask == 0)
            continue;
        if (!w->interactive || loop->interactive_pause) {
            w->cb(w, evs[i].events);
            continue;
        }
        /* An interactive relay (a tunnel): what its callback queued (the peer's write, as a rule) runs now, so
         * that a message read early in a large batch is not held until every other event of the batch is
         * handled (docs/benchmarks.md, the WebSocket tail). A tunnel's sockets are one-to-one, so nothing
         * would gather in that write by waiting; with the old rule (interactive_pause) it waits like any. */
        interactive++;
        loop->in_relay = true;
        w->cb(w, evs[i].events);
        loop->in_relay = false;
        run_list(&loop->relay_list);
    }
    sg_wheel_advance(&loop->wheel, loop->now_ms);
    /* Saturated (a full batch of events): let the queues fill for one more batch before flushing, so each
     * client gets fewer, larger writes, and yield once so that co-located processes run. Below saturation
     * every iteration flushes: latency first. A batch that is mostly interactive relays (tunnels, where each
     * message waits for the last answer) is not treated as saturated: nothing gathers in those sockets
     * while the worker waits, the peers wait for what it holds back, and the pause only gives the worker's
     * CPU share away (docs/benchmarks.md, the WebSocket closed loop). */
    bool saturated = sg_loop_saturated(n, SG_LOOP_BATCH, interactive);
    if (!saturated || loop->flush_deferred || loop->stop) {
        loop->flush_deferred = false;
        run_list(&loop->flush_list);
    } else {
        loop->flush_deferred = true;
    }
    run_list(&loop->reap_list);
    if (n == SG_LOOP_BATCH && !saturated && loop->relay_full_count != NULL)
        atomic_fetch_add_explicit(loop->relay_full_count, 1, memory_order_relaxed);
    if (saturated) {
        if (loop->saturated_count != NULL)
            atomic_fetch_add_explicit(loop->saturated_count, 1, memory_order_relaxed);
        /* Saturated: pause, so that more bytes gather in each socket and the next reads and writes carry
         * several events each, and so that co-located processes (the backends, often) get the CPU. Under
         * overload this halves the CPU per event (docs/benchmarks.md); below saturation it never runs. */
        if (loop->pause_us > 0) {
            struct timespec ts = {0, (long)loop->pause_us * 1000};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
}
