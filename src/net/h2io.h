/* h2io.h: what both HTTP/2 sides share around one nghttp2 session on an sg_sock_t: the segment queue that holds
 * DATA for a stream's data provider (allocated to size), the data provider's take-or-defer step, mem_send into the
 * socket's queue up to a watermark, and mem_recv from the socket's input. The server side (http/h2.c) and the
 * upstream client (proxy/upclient_h2.c) each keep their own stream objects and callbacks on top. */
#ifndef SG_H2IO_H
#define SG_H2IO_H

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "net/sock.h"

/* A queued piece of DATA, allocated to size: an SSE event of 100 bytes costs 100 bytes, not a pooled 20 KiB chunk
 * per stream (1,000 streams fed in one tick would otherwise take 20 MB at once). */
typedef struct sg_h2seg {
    struct sg_h2seg *next;
    size_t len, off;
    sg_rbuf_t *ref;             /* the bytes are a shared stream's event, held by reference (no data[] then) */
    char data[];
} sg_h2seg_t;

typedef struct sg_h2segq {
    sg_h2seg_t *head, *tail;
    size_t bytes;               /* data bytes queued */
    size_t mem;                 /* bytes allocated for them (segment headers included): what budgets count */
} sg_h2segq_t;

/* Copies p[0..n) to the tail. Returns 0 or -ENOMEM. */
int sg_h2segq_append(sg_h2segq_t *q, const char *p, size_t n);
/* Queues b by reference (the node is all this queue pays for it). Returns 0 or -ENOMEM. */
int sg_h2segq_append_ref(sg_h2segq_t *q, sg_rbuf_t *b);
/* Frees a segment taken out of q (drops its reference, if any). */
void sg_h2seg_free(sg_h2seg_t *g);
/* Moves up to cap bytes from the head of q into dst; returns how many. */
size_t sg_h2segq_take(sg_h2segq_t *q, uint8_t *dst, size_t cap);
/* Takes the first segment out of q (the caller frees it); NULL when empty. */
sg_h2seg_t *sg_h2segq_pop(sg_h2segq_t *q);
void sg_h2segq_clear(sg_h2segq_t *q);
/* Moves every segment of front, in order, ahead of q's (front is left empty). */
void sg_h2segq_prepend(sg_h2segq_t *q, sg_h2segq_t *front);

/* What a data provider returns after taking n bytes from a queue that now holds `left`: EOF when the producer
 * has ended (*flags gets NGHTTP2_DATA_FLAG_EOF), NGHTTP2_ERR_DEFERRED when nothing was taken and more will come
 * (*deferred set: resume the stream when bytes arrive), else n. */
ssize_t sg_h2io_provided(size_t n, size_t left, bool eof, uint32_t *flags, bool *deferred);

/* A shared event goes by reference into an HTTP/2 DATA frame (see sg_h2io_send_data) when at least this many of
 * its bytes are left to send, on a plain connection. Below it, copying is cheaper (docs/benchmarks.md, "HTTP/2
 * fan-out by reference"). */
#ifndef SG_H2_REF_MIN
#define SG_H2_REF_MIN 1024
#endif

/*
 * The DATA frame nghttp2 asked a send_data_callback for (NGHTTP2_DATA_FLAG_NO_COPY): writes its 9-byte header
 * framehd, the pad length byte when padlen > 0, len payload bytes taken from the head of q, then the padding, into
 * sock's output queue. On a plain socket a segment held by reference is queued as a reference to its shared buffer
 * (no copy of the payload; the header rides in that queue node); on TLS, and for copied segments, the bytes are
 * copied once into the output queue. Returns 0 (*by_ref: payload bytes queued by reference, *copied: copied),
 * -ERANGE when q holds fewer than len bytes (nothing written), or -ENOMEM (the output holds a partial frame: the
 * connection must close).
 */
int sg_h2io_send_data(sg_sock_t *sock, sg_h2segq_t *q, const uint8_t *framehd, size_t len, size_t padlen,
                      size_t *by_ref, size_t *copied);

/*
 * Serializes what the session has to send into sock's output queue while it holds at most high_wm bytes. Returns 0,
 * -ENOMEM (queueing failed) or -EPROTO (nghttp2 failed: *ngerr is its error code).
 */
int sg_h2io_send(nghttp2_session *ses, sg_sock_t *sock, size_t high_wm, int *ngerr);
/*
 * Feeds sock's buffered input to the session and consumes what it took. Returns 0 or -EPROTO (*ngerr is nghttp2's
 * error code; the input is left as it was).
 */
int sg_h2io_feed(nghttp2_session *ses, sg_sock_t *sock, int *ngerr);

#endif
