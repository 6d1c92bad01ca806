/* buf.h: fixed-size chunks from a per-worker pool, input buffers and output queues built from them.
 * An idle connection holds no chunk: buffers are taken on demand and given back when empty. */
#ifndef SG_BUF_H
#define SG_BUF_H

#include <stdatomic.h>
#include <sys/uio.h>

#include "core/list.h"
#include "core/sg.h"

#define SG_CHUNK_SIZE (20 * 1024) /* fits a 16 KiB header section plus the request line */
#define SG_POOL_KEEP 256          /* free chunks a pool keeps for reuse */

#define SG_POOL_KEEP_REFS 4096   /* reference chunk nodes a pool keeps for reuse (about 60 bytes each) */
#define SG_REF_PREFIX_MAX 15     /* bytes a reference chunk can carry ahead of the referenced ones (a frame header) */

#define SG_SMALL_WRITE 1024   /* a write this small into an empty queue gets a chunk of its own size */

typedef struct sg_chunk {
    sg_list_t link;
    uint32_t rpos, wpos;
    uint32_t cap;       /* SG_CHUNK_SIZE for pooled chunks; less for a right-sized one (freed, not pooled) */
    char data[];
} sg_chunk_t;

typedef struct sg_pool {
    sg_list_t free;
    size_t nfree;
    size_t in_use;      /* chunks handed out and not returned */
    bool dirty;         /* a chunk came back since the last sg_pool_release */
    sg_list_t reffree;  /* reference chunk nodes kept for reuse: one is taken per event and subscriber */
    size_t nreffree;
} sg_pool_t;

void sg_pool_init(sg_pool_t *p);
void sg_pool_free(sg_pool_t *p);
/* Returns an empty chunk, or NULL when memory is exhausted. */
sg_chunk_t *sg_pool_get(sg_pool_t *p);
/* Gives a chunk back. Accepts NULL. */
void sg_pool_put(sg_pool_t *p, sg_chunk_t *c);
/* Frees the chunks kept for reuse (the loop does it once it has been idle for a while). */
void sg_pool_release(sg_pool_t *p);

static inline size_t sg_chunk_len(const sg_chunk_t *c)
{
    return c->wpos - c->rpos;
}

/* Refcounted bytes, shared by reference between output queues (an SSE event of a shared stream, framed once per
 * protocol, queued to thousands of clients without a copy each).
 *
 * A buffer starts as one thread's: its count moves with a plain load and store (relaxed atomics, which compile to
 * ordinary moves), as cheap as a plain integer. Before a buffer is handed to another thread (a shared stream's event
 * fed to the subscribers of another worker, fanout/), its owner calls sg_rbuf_share(); from then on every thread
 * moves the count with atomic read-modify-writes. The mark is set only by the one thread that holds the buffer, before
 * it is published (under the mailbox's lock), and never cleared, so no thread ever mixes the two ways on one buffer. */
#define SG_RBUF_SHARED 0x80000000u
typedef struct sg_rbuf {
    _Atomic uint32_t refs;      /* count, and SG_RBUF_SHARED once the buffer may be used by several threads */
    uint32_t len;
    char data[];
} sg_rbuf_t;

/* Returns a new buffer (refs = 1) of n bytes, copied from p when p is not NULL; NULL when out of memory. */
sg_rbuf_t *sg_rbuf_new(const void *p, size_t n);
static inline sg_rbuf_t *sg_rbuf_ref(sg_rbuf_t *b)
{
    uint32_t r = atomic_load_explicit(&b->refs, memory_order_relaxed);
    if (r & SG_RBUF_SHARED)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    else
        atomic_store_explicit(&b->refs, r + 1, memory_order_relaxed);
    return b;
}
/* Marks b as used by several threads from now on (see above). Called by the only thread that holds it. */
static inline void sg_rbuf_share(sg_rbuf_t *b)
{
    uint32_t r = atomic_load_explicit(&b->refs, memory_order_relaxed);
    if (!(r & SG_RBUF_SHARED)) /* once marked, other threads may hold it: only atomic read-modify-writes then */
        atomic_store_explicit(&b->refs, r | SG_RBUF_SHARED, memory_order_relaxed);
}
/* Drops a reference; the last frees it. Accepts NULL. */
void sg_rbuf_unref(sg_rbuf_t *b);

/* Output queue: chunks appended at the tail, written from the head. A chunk with cap == 0 holds no bytes of its
 * own but a reference to a range of an sg_rbuf_t, after an optional short prefix of its own (rpos, wpos index into
 * prefix + range). */
typedef struct sg_outq {
    sg_list_t chunks;
    size_t bytes;
} sg_outq_t;

void sg_outq_init(sg_outq_t *q);
/* Copies n bytes to the tail. Returns 0 or -ENOMEM (the queue is then unchanged). */
int sg_outq_append(sg_outq_t *q, sg_pool_t *p, const void *data, size_t n);
/* Queues b by reference (takes a reference; no copy; the node comes from p). Returns 0 or -ENOMEM (the queue is
 * then unchanged). */
int sg_outq_append_ref(sg_outq_t *q, sg_pool_t *p, sg_rbuf_t *b);
/* Queues prefix[0..plen) (copied into the node: plen <= SG_REF_PREFIX_MAX) followed by b->data[off..off+n) by
 * reference, in one node. Returns 0, -EINVAL (plen too long, or the range not inside b) or -ENOMEM. */
int sg_outq_append_ref_range(sg_outq_t *q, sg_pool_t *p, const void *prefix, size_t plen, sg_rbuf_t *b, size_t off,
                             size_t n);
/* Fills iov from the head of the queue; returns how many are set (a reference chunk with a prefix takes two). */
int sg_outq_iov(const sg_outq_t *q, struct iovec *iov, int max);
/* Drops n bytes from the head, returning emptied chunks to the pool. */
void sg_outq_consume(sg_outq_t *q, sg_pool_t *p, size_t n);
/* Drops everything. */
void sg_outq_clear(sg_outq_t *q, sg_pool_t *p);

#endif
