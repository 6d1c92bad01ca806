/* ring.c: the replay ring of a shared stream (ring.h). */
#include <stdlib.h>
#include <string.h>

#include "fanout/ring.h"

void sg_ring_init(sg_ring_t *r, uint32_t max_events, uint64_t max_bytes, int64_t max_age_ms)
{
    memset(r, 0, sizeof(*r));
    r->max_events = max_events;
    r->max_bytes = max_bytes;
    r->max_age_ms = max_age_ms;
}

static sg_ring_ent_t *slot(const sg_ring_t *r, uint32_t i)
{
    return &r->ents[(r->first + i) % r->cap];
}

/* The oldest event leaves; everything after it is still held, so its id becomes the base when it had one. */
static void drop_oldest(sg_ring_t *r)
{
    sg_ring_ent_t *e = slot(r, 0);
    r->base_ok = e->id_set && e->id_ok;
    r->base_len = e->id_len;
    memcpy(r->base_id, e->id, e->id_len);
    r->bytes -= e->ev->len;
    sg_event_unref(e->ev);
    sg_rbuf_unref(e->h1_chunk);
    e->ev = NULL;
    e->h1_chunk = NULL;
    r->first = (r->first + 1) % r->cap;
    r->count--;
}

static void clear(sg_ring_t *r)
{
    while (r->count > 0)
        drop_oldest(r);
    r->base_ok = false;
}

void sg_ring_free(sg_ring_t *r)
{
    clear(r);
    free(r->ents);
    r->ents = NULL;
    r->cap = 0;
    r->first = 0;
}

void sg_ring_set_base(sg_ring_t *r, const char *id, size_t n)
{
    if (r->count > 0)
        return;
    r->base_ok = n <= SG_SSE_MAX_ID;
    r->base_len = r->base_ok ? (uint8_t)n : 0;
    if (r->base_ok)
        memcpy(r->base_id, id, n);
}

static int grow(sg_ring_t *r)
{
    uint32_t ncap = r->cap ? r->cap * 2 : 16;
    if (ncap > r->max_events)
        ncap = r->max_events;
    sg_ring_ent_t *n = malloc((size_t)ncap * sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->count; i++)
        n[i] = *slot(r, i);
    free(r->ents);
    r->ents = n;
    r->cap = ncap;
    r->first = 0;
    return 0;
}

int sg_ring_push(sg_ring_t *r, uint64_t now_ms, sg_event_t *ev, const char *id, size_t id_len, bool id_set,
                 bool id_ok)
{
    r->head_seq++;
    r->pushed_bytes += ev->len;
    sg_ring_expire(r, now_ms);
    if (r->max_events == 0 || ev->len > r->max_bytes) {
        clear(r);
        return 0;
    }
    while (r->count > 0 && (r->count >= r->max_events || r->bytes + ev->len > r->max_bytes))
        drop_oldest(r);
    if (r->count == r->cap && grow(r) < 0) {
        clear(r);
        return -ENOMEM;
    }
    sg_ring_ent_t *e = slot(r, r->count);
    e->ev = sg_rbuf_ref(ev);
    e->h1_chunk = NULL;
    e->at_ms = now_ms;
    e->end_bytes = r->pushed_bytes;
    e->id_set = id_set;
    e->id_ok = id_ok && id_len <= SG_SSE_MAX_ID;
    e->id_len = (uint8_t)SG_MIN(id_len, (size_t)SG_SSE_MAX_ID);
    memcpy(e->id, id, e->id_len);
    r->count++;
    r->bytes += ev->len;
    return 0;
}

void sg_ring_expire(sg_ring_t *r, uint64_t now_ms)
{
    if (r->max_age_ms <= 0)
        return;
    while (r->count > 0 && slot(r, 0)->at_ms + (uint64_t)r->max_age_ms < now_ms)
        drop_oldest(r);
}

int64_t sg_ring_find(const sg_ring_t *r, const char *id, size_t n)
{
    if (n > SG_SSE_MAX_ID)
        return -1;
    for (uint32_t i = r->count; i-- > 0;) {
        const sg_ring_ent_t *e = slot(r, i);
        if (e->id_set && e->id_ok && e->id_len == n && memcmp(e->id, id, n) == 0)
            return (int64_t)(sg_ring_oldest(r) + i + 1);
    }
    if (r->base_ok && r->base_len == n && memcmp(r->base_id, id, n) == 0)
        return (int64_t)sg_ring_oldest(r);
    return -1;
}

sg_ring_ent_t *sg_ring_get(const sg_ring_t *r, uint64_t seq)
{
    if (seq < sg_ring_oldest(r) || seq >= r->head_seq)
        return NULL;
    return slot(r, (uint32_t)(seq - sg_ring_oldest(r)));
}

uint64_t sg_ring_bytes_from(const sg_ring_t *r, uint64_t seq)
{
    const sg_ring_ent_t *e = sg_ring_get(r, seq);
    if (e == NULL)
        return seq >= r->head_seq ? 0 : r->bytes;
    return r->pushed_bytes - (e->end_bytes - e->ev->len);
}
