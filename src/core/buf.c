/* buf.c: chunk pool and output queues. */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

void sg_pool_init(sg_pool_t *p)
{
    sg_list_init(&p->free);
    p->nfree = 0;
    p->in_use = 0;
    p->dirty = false;
    sg_list_init(&p->reffree);
    p->nreffree = 0;
}

void sg_pool_free(sg_pool_t *p)
{
    sg_list_t *n;
    while ((n = sg_list_pop(&p->free)) != NULL)
        free(SG_CONTAINER_OF(n, sg_chunk_t, link));
    p->nfree = 0;
    while ((n = sg_list_pop(&p->reffree)) != NULL)
        free(SG_CONTAINER_OF(n, sg_chunk_t, link));
    p->nreffree = 0;
}

void sg_pool_release(sg_pool_t *p)
{
    sg_pool_free(p);
    p->dirty = false;
}

sg_chunk_t *sg_pool_get(sg_pool_t *p)
{
    sg_chunk_t *c;
    sg_list_t *n = sg_list_pop(&p->free);

    if (n != NULL) {
        p->nfree--;
        c = SG_CONTAINER_OF(n, sg_chunk_t, link);
    } else {
        /* malloc, not calloc: the data need not be zeroed, and untouched pages stay unbacked. */
        c = malloc(sizeof(*c) + SG_CHUNK_SIZE);
        if (c == NULL)
            return NULL;
        sg_list_init(&c->link);
        c->cap = SG_CHUNK_SIZE;
    }
    c->rpos = c->wpos = 0;
    p->in_use++;
    return c;
}

void sg_pool_put(sg_pool_t *p, sg_chunk_t *c)
{
    if (c == NULL)
        return;
    p->dirty = true;
    if (c->cap != SG_CHUNK_SIZE) {
        free(c); /* right-sized: never pooled */
        return;
    }
    p->in_use--;
    if (p->nfree >= SG_POOL_KEEP) {
        free(c);
        return;
    }
    sg_list_insert_tail(&p->free, &c->link);
    p->nfree++;
}

sg_rbuf_t *sg_rbuf_new(const void *p, size_t n)
{
    if (n > UINT32_MAX)
        return NULL;
    sg_rbuf_t *b = malloc(sizeof(*b) + n);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)n;
    if (p != NULL && n > 0)
        memcpy(b->data, p, n);
    return b;
}

void sg_rbuf_unref(sg_rbuf_t *b)
{
    if (b == NULL)
        return;
    uint32_t r = atomic_load_explicit(&b->refs, memory_order_relaxed);
    if (r & SG_RBUF_SHARED) {
        if ((atomic_fetch_sub_explicit(&b->refs, 1, memory_order_release) & ~SG_RBUF_SHARED) == 1) {
            atomic_thread_fence(memory_order_acquire);
            free(b);
        }
        return;
    }
    if (r == 1)
        free(b);
    else
        atomic_store_explicit(&b->refs, r - 1, memory_order_relaxed);
}

/*
 * A reference chunk (cap 0) holds no bytes of its own but a reference and an optional prefix. Its data[]:
 * [sg_rbuf_t *b][uint32 off][uint8 plen][plen prefix bytes]. Its bytes are prefix, then b->data[off..): rpos and
 * wpos index into that sequence, so consuming needs nothing special. (data[] is not pointer-aligned: memcpy.)
 */
#define REF_OFF sizeof(sg_rbuf_t *)
#define REF_PLEN (REF_OFF + sizeof(uint32_t))
#define REF_PREFIX (REF_PLEN + 1)
#define REF_NODE_SIZE (sizeof(sg_chunk_t) + REF_PREFIX + SG_REF_PREFIX_MAX)

static sg_rbuf_t *ref_of(const sg_chunk_t *c)
{
    sg_rbuf_t *b;
    memcpy(&b, c->data, sizeof(b));
    return b;
}

static uint32_t ref_off(const sg_chunk_t *c)
{
    uint32_t off;
    memcpy(&off, c->data + REF_OFF, sizeof(off));
    return off;
}

/* Gives a chunk that left a queue back: a reference chunk drops its reference; its node is kept for reuse. */
static void chunk_done(sg_pool_t *p, sg_chunk_t *c)
{
    if (c->cap == 0) {
        sg_rbuf_unref(ref_of(c));
        if (p->nreffree < SG_POOL_KEEP_REFS) {
            sg_list_insert_tail(&p->reffree, &c->link);
            p->nreffree++;
            p->dirty = true;
        } else {
            free(c);
        }
        return;
    }
    sg_pool_put(p, c);
}

int sg_outq_append_ref(sg_outq_t *q, sg_pool_t *p, sg_rbuf_t *b)
{
    return sg_outq_append_ref_range(q, p, NULL, 0, b, 0, b->len);
}

int sg_outq_append_ref_range(sg_outq_t *q, sg_pool_t *p, const void *prefix, size_t plen, sg_rbuf_t *b, size_t off,
                             size_t n)
{
    if (plen > SG_REF_PREFIX_MAX || off > b->len || n > b->len - off)
        return -EINVAL;
    if (n == 0) {
        if (plen == 0)
            return 0;
        return sg_outq_append(q, p, prefix, plen);
    }
    sg_chunk_t *c;
    sg_list_t *l = sg_list_pop(&p->reffree);
    if (l != NULL) {
        p->nreffree--;
        c = SG_CONTAINER_OF(l, sg_chunk_t, link);
    } else {
        c = malloc(REF_NODE_SIZE);
        if (c == NULL)
            return -ENOMEM;
    }
    sg_list_init(&c->link);
    c->rpos = 0;
    c->wpos = (uint32_t)(plen + n);
    c->cap = 0;
    sg_rbuf_ref(b);
    uint32_t o = (uint32_t)off;
    uint8_t pl = (uint8_t)plen;
    memcpy(c->data, &b, sizeof(b));
    memcpy(c->data + REF_OFF, &o, sizeof(o));
    memcpy(c->data + REF_PLEN, &pl, 1);
    if (plen > 0)
        memcpy(c->data + REF_PREFIX, prefix, plen);
    sg_list_insert_tail(&q->chunks, &c->link);
    q->bytes += plen + n;
    return 0;
}

void sg_outq_init(sg_outq_t *q)
{
    sg_list_init(&q->chunks);
    q->bytes = 0;
}

int sg_outq_append(sg_outq_t *q, sg_pool_t *p, const void *data, size_t n)
{
    const char *src = data;
    sg_list_t added;

    sg_list_init(&added);
    /* Fill the tail's free room first. */
    if (!sg_list_empty(&q->chunks) && n > 0) {
        sg_chunk_t *tail = SG_CONTAINER_OF(q->chunks.prev, sg_chunk_t, link);
        size_t room = tail->cap > tail->wpos ? tail->cap - tail->wpos : 0; /* a reference chunk has none */
        if (room > 0) {
            size_t k = SG_MIN(room, n);
            /* Take the remaining chunks before touching the tail, so failure leaves the queue as it was. */
            size_t rest = n - k;
            while (rest > 0) {
                sg_chunk_t *c = sg_pool_get(p);
                if (c == NULL)
                    goto fail;
                sg_list_insert_tail(&added, &c->link);
                rest -= SG_MIN(rest, (size_t)SG_CHUNK_SIZE);
            }
            memcpy(tail->data + tail->wpos, src, k);
            tail->wpos += (uint32_t)k;
            src += k;
            n -= k;
            q->bytes += k;
            goto fill;
        }
    }
    if (n > 0 && n <= SG_SMALL_WRITE &&
        (sg_list_empty(&q->chunks) || SG_CONTAINER_OF(q->chunks.prev, sg_chunk_t, link)->cap == 0)) {
        /* A small write into an empty queue (a request head waiting for its connect, an event for a blocked
         * client), or after a reference chunk (a shared stream's subscriber): a chunk of its own size, so that a
         * burst of thousands of them does not take thousands of 20 KiB chunks, which the allocator would keep as
         * resident memory afterwards. */
        sg_chunk_t *c = malloc(sizeof(*c) + n);
        if (c == NULL)
            return -ENOMEM;
        sg_list_init(&c->link);
        c->rpos = c->wpos = 0;
        c->cap = (uint32_t)n;
        sg_list_insert_tail(&added, &c->link);
        goto fill;
    }
    for (size_t rest = n; rest > 0; rest -= SG_MIN(rest, (size_t)SG_CHUNK_SIZE)) {
        sg_chunk_t *c = sg_pool_get(p);
        if (c == NULL)
            goto fail;
        sg_list_insert_tail(&added, &c->link);
    }
fill:
    while (!sg_list_empty(&added)) {
        sg_chunk_t *c = SG_CONTAINER_OF(sg_list_pop(&added), sg_chunk_t, link);
        size_t k = SG_MIN(n, (size_t)c->cap);
        memcpy(c->data, src, k);
        c->wpos = (uint32_t)k;
        src += k;
        n -= k;
        q->bytes += k;
        sg_list_insert_tail(&q->chunks, &c->link);
    }
    return 0;
fail:
    while (!sg_list_empty(&added))
        sg_pool_put(p, SG_CONTAINER_OF(sg_list_pop(&added), sg_chunk_t, link));
    return -ENOMEM;
}

int sg_outq_iov(const sg_outq_t *q, struct iovec *iov, int max)
{
    int n = 0;
    for (const sg_list_t *l = q->chunks.next; l != &q->chunks && n < max; l = l->next) {
        const sg_chunk_t *c = SG_CONTAINER_OF(l, sg_chunk_t, link);
        if (sg_chunk_len(c) == 0)
            continue;
        if (c->cap != 0) {
            iov[n].iov_base = (void *)(c->data + c->rpos);
            iov[n].iov_len = sg_chunk_len(c);
            n++;
            continue;
        }
        uint32_t plen = (uint8_t)c->data[REF_PLEN];
        const char *data = ref_of(c)->data + ref_off(c);
        if (c->rpos < plen) {
            iov[n].iov_base = (void *)(c->data + REF_PREFIX + c->rpos);
            iov[n].iov_len = plen - c->rpos;
            n++;
            if (n == max)
                break;
            iov[n].iov_base = (void *)data;
            iov[n].iov_len = c->wpos - plen;
        } else {
            iov[n].iov_base = (void *)(data + (c->rpos - plen));
            iov[n].iov_len = sg_chunk_len(c);
        }
        n++;
    }
    return n;
}

void sg_outq_consume(sg_outq_t *q, sg_pool_t *p, size_t n)
{
    while (n > 0 && !sg_list_empty(&q->chunks)) {
        sg_chunk_t *c = SG_CONTAINER_OF(q->chunks.next, sg_chunk_t, link);
        size_t k = SG_MIN(n, sg_chunk_len(c));
        c->rpos += (uint32_t)k;
        n -= k;
        q->bytes -= k;
        if (sg_chunk_len(c) == 0) {
            sg_list_remove(&c->link);
            chunk_done(p, c);
        }
    }
}

void sg_outq_clear(sg_outq_t *q, sg_pool_t *p)
{
    sg_list_t *n;
    while ((n = sg_list_pop(&q->chunks)) != NULL)
        chunk_done(p, SG_CONTAINER_OF(n, sg_chunk_t, link));
    q->bytes = 0;
}
