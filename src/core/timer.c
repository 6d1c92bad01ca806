/* timer.c: the timer wheel: O(1) arm/cancel, expiry by walking the slots passed since the last advance. */
#include "core/timer.h"

#define MASK (SG_WHEEL_SLOTS - 1)
#define SCAN_WINDOW 256 /* slots looked ahead for the epoll timeout; beyond, wake up anyway */

void sg_wheel_init(sg_wheel_t *w, uint64_t now_ms)
{
    for (size_t i = 0; i < SG_WHEEL_SLOTS; i++)
        sg_list_init(&w->slots[i]);
    w->now = now_ms;
    w->count = 0;
}

void sg_timer_init(sg_timer_t *t, sg_timer_cb cb)
{
    sg_list_init(&t->link);
    t->expire = 0;
    t->cb = cb;
}

void sg_timer_arm(sg_wheel_t *w, sg_timer_t *t, uint64_t expire_ms)
{
    if (sg_timer_armed(t))
        sg_list_remove(&t->link);
    else
        w->count++;
    /* A timer already due goes to the current slot so the next advance sees it. */
    if (expire_ms < w->now)
        expire_ms = w->now;
    t->expire = expire_ms;
    sg_list_insert_tail(&w->slots[expire_ms & MASK], &t->link);
}

void sg_timer_cancel(sg_wheel_t *w, sg_timer_t *t)
{
    if (!sg_timer_armed(t))
        return;
    sg_list_remove(&t->link);
    w->count--;
}

int sg_wheel_timeout(const sg_wheel_t *w)
{
    if (w->count == 0)
        return -1;
    for (uint64_t d = 0; d < SCAN_WINDOW; d++) {
        const sg_list_t *slot = &w->slots[(w->now + d) & MASK];
        for (const sg_list_t *n = slot->next; n != slot; n = n->next) {
            const sg_timer_t *t = SG_CONTAINER_OF(n, sg_timer_t, link);
            if (t->expire <= w->now + d)
                return (int)d;
        }
    }
    return SCAN_WINDOW;
}

/* Fires the due timers of one slot. The slot is detached first so callbacks may arm or cancel any timer. */
static size_t run_slot(sg_wheel_t *w, size_t idx, uint64_t now)
{
    sg_list_t pending;
    size_t fired = 0;

    sg_list_init(&pending);
    sg_list_splice(&pending, &w->slots[idx]);
    while (!sg_list_empty(&pending)) {
        sg_list_t *n = pending.next;
        sg_timer_t *t = SG_CONTAINER_OF(n, sg_timer_t, link);
        sg_list_remove(n);
        if (t->expire <= now) {
            w->count--;
            fired++;
            t->cb(t);
        } else {
            sg_list_insert_tail(&w->slots[idx], n);
        }
    }
    return fired;
}

size_t sg_wheel_advance(sg_wheel_t *w, uint64_t now_ms)
{
    size_t fired = 0;
    uint64_t from = w->now;

    if (now_ms < from)
        now_ms = from;
    w->now = now_ms;
    if (now_ms - from >= SG_WHEEL_SLOTS) {
        for (size_t i = 0; i < SG_WHEEL_SLOTS; i++)
            fired += run_slot(w, i, now_ms);
        return fired;
    }
    for (uint64_t t = from; t <= now_ms; t++)
        fired += run_slot(w, (size_t)(t & MASK), now_ms);
    return fired;
}
