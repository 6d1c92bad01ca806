/* h2io.c: the HTTP/2 pieces both sides share: DATA segment queues, the data provider's step, mem_send into a
 * socket's queue, mem_recv from its input. */
#include <stdlib.h>
#include <string.h>

#include "net/h2io.h"

int sg_h2segq_append(sg_h2segq_t *q, const char *p, size_t n)
{
    sg_h2seg_t *g = malloc(sizeof(*g) + n);
    if (g == NULL)
        return -ENOMEM;
    g->next = NULL;
    g->len = n;
    g->off = 0;
    g->ref = NULL;
    memcpy(g->data, p, n);
    if (q->tail)
        q->tail->next = g;
    else
        q->head = g;
    q->tail = g;
    q->bytes += n;
    q->mem += sizeof(*g) + n;
    return 0;
}

int sg_h2segq_append_ref(sg_h2segq_t *q, sg_rbuf_t *b)
{
    sg_h2seg_t *g = malloc(sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    g->next = NULL;
    g->len = b->len;
    g->off = 0;
    g->ref = sg_rbuf_ref(b);
    if (q->tail)
        q->tail->next = g;
    else
        q->head = g;
    q->tail = g;
    q->bytes += b->len;
    q->mem += sizeof(*g);
    return 0;
}

/* What a segment costs its queue's budget. */
static size_t seg_mem(const sg_h2seg_t *g)
{
    return sizeof(*g) + (g->ref ? 0 : g->len);
}

void sg_h2seg_free(sg_h2seg_t *g)
{
    sg_rbuf_unref(g->ref);
    free(g);
}

size_t sg_h2segq_take(sg_h2segq_t *q, uint8_t *dst, size_t cap)
{
    size_t n = 0;
    while (n < cap && q->head != NULL) {
        sg_h2seg_t *g = q->head;
        size_t k = SG_MIN(cap - n, g->len - g->off);
        memcpy(dst + n, (g->ref ? g->ref->data : g->data) + g->off, k);
        g->off += k;
        n += k;
        if (g->off == g->len) {
            q->head = g->next;
            if (q->head == NULL)
                q->tail = NULL;
            q->mem -= seg_mem(g);
            sg_h2seg_free(g);
        }
    }
    q->bytes -= n;
    return n;
}

void sg_h2segq_prepend(sg_h2segq_t *q, sg_h2segq_t *front)
{
    if (front->head == NULL)
        return;
    front->tail->next = q->head;
    if (q->tail == NULL)
        q->tail = front->tail;
    q->head = front->head;
    q->bytes += front->bytes;
    q->mem += front->mem;
    *front = (sg_h2segq_t){0};
}

sg_h2seg_t *sg_h2segq_pop(sg_h2segq_t *q)
{
    sg_h2seg_t *g = q->head;
    if (g == NULL)
        return NULL;
    q->head = g->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->bytes -= g->len - g->off;
    q->mem -= seg_mem(g);
    g->next = NULL;
    return g;
}

void sg_h2segq_clear(sg_h2segq_t *q)
{
    while (q->head != NULL) {
        sg_h2seg_t *g = q->head;
        q->head = g->next;
        sg_h2seg_free(g);
    }
    q->tail = NULL;
    q->bytes = 0;
    q->mem = 0;
}

int sg_h2io_send_data(sg_sock_t *sock, sg_h2segq_t *q, const uint8_t *framehd, size_t len, size_t padlen,
                      size_t *by_ref, size_t *copied)
{
    static const uint8_t zeros[256];
    *by_ref = *copied = 0;
    if (q->bytes < len || padlen > sizeof(zeros))
        return -ERANGE;
    uint8_t hd[10];
    size_t hlen = padlen > 0 ? 10 : 9;
    memcpy(hd, framehd, 9);
    if (padlen > 0)
        hd[9] = (uint8_t)(padlen - 1);
    bool refs_ok = sock->ssl == NULL, hd_out = false;
    while (len > 0) {
        sg_h2seg_t *g = q->head;
        size_t k = SG_MIN(len, g->len - g->off);
        int rc;
        if (g->ref != NULL && refs_ok) {
            /* The header rides in the reference's own node: one queue node per frame, no copy of the payload. */
            rc = sg_sock_write_ref_range(sock, hd_out ? NULL : hd, hd_out ? 0 : hlen, g->ref, g->off, k);
            *by_ref += k;
        } else {
            if (!hd_out && sg_sock_write(sock, hd, hlen) < 0)
                return -ENOMEM;
            rc = sg_sock_write(sock, (g->ref ? g->ref->data : g->data) + g->off, k);
            *copied += k;
        }
        if (rc < 0)
            return -ENOMEM;
        hd_out = true;
        g->off += k;
        len -= k;
        q->bytes -= k;
        if (g->off == g->len) {
            q->head = g->next;
            if (q->head == NULL)
                q->tail = NULL;
            q->mem -= seg_mem(g);
            sg_h2seg_free(g);
        }
    }
    if (!hd_out && sg_sock_write(sock, hd, hlen) < 0)
        return -ENOMEM;
    if (padlen > 1 && sg_sock_write(sock, zeros, padlen - 1) < 0)
        return -ENOMEM;
    return 0;
}

ssize_t sg_h2io_provided(size_t n, size_t left, bool eof, uint32_t *flags, bool *deferred)
{
    if (left == 0 && eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    if (n == 0) {
        *deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

int sg_h2io_send(nghttp2_session *ses, sg_sock_t *sock, size_t high_wm, int *ngerr)
{
    while (sock->out.bytes <= high_wm) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(ses, &data);
        if (n < 0) {
            *ngerr = (int)n;
            return -EPROTO;
        }
        if (n == 0)
            break;
        if (sg_sock_write(sock, data, (size_t)n) < 0)
            return -ENOMEM;
    }
    return 0;
}

int sg_h2io_feed(nghttp2_session *ses, sg_sock_t *sock, int *ngerr)
{
    sg_chunk_t *in = sock->in;
    if (in == NULL || sg_chunk_len(in) == 0)
        return 0;
    ssize_t n = nghttp2_session_mem_recv(ses, (const uint8_t *)in->data + in->rpos, sg_chunk_len(in));
    if (n < 0) {
        *ngerr = (int)n;
        return -EPROTO;
    }
    /* The callbacks may have closed the socket (and dropped its input) meanwhile. */
    if (sock->in == in)
        sg_sock_consume(sock, (size_t)n);
    return 0;
}
