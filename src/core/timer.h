/* timer.h: hashed timer wheel with 1 ms ticks. Pure: the caller supplies the clock. */
#ifndef SG_TIMER_H
#define SG_TIMER_H

#include "core/list.h"
#include "core/sg.h"

#define SG_WHEEL_SLOTS 1024 /* power of two */

typedef struct sg_timer sg_timer_t;
typedef void (*sg_timer_cb)(sg_timer_t *t);

struct sg_timer {
    sg_list_t link;     /* unlinked when not armed */
    uint64_t expire;    /* absolute ms */
    sg_timer_cb cb;
};

typedef struct sg_wheel {
    sg_list_t slots[SG_WHEEL_SLOTS];
    uint64_t now;       /* last time advanced to */
    size_t count;       /* armed timers */
} sg_wheel_t;

void sg_wheel_init(sg_wheel_t *w, uint64_t now_ms);

/* Prepares a timer; it starts disarmed. */
void sg_timer_init(sg_timer_t *t, sg_timer_cb cb);

/* (Re)arms t to fire at absolute time expire_ms (a time in the past fires on the next advance). */
void sg_timer_arm(sg_wheel_t *w, sg_timer_t *t, uint64_t expire_ms);

/* Disarms t if armed. Safe to call from any timer callback, on any timer. */
void sg_timer_cancel(sg_wheel_t *w, sg_timer_t *t);

static inline bool sg_timer_armed(const sg_timer_t *t)
{
    return sg_list_linked(&t->link);
}

/* Milliseconds until the next timer may be due (bounded by a scan window), or -1 with none armed. */
int sg_wheel_timeout(const sg_wheel_t *w);

/* Advances the wheel to now_ms and calls the callbacks of every expired timer. Returns how many fired. */
size_t sg_wheel_advance(sg_wheel_t *w, uint64_t now_ms);

#endif
