/* stream.h: the two tables between a server-side protocol (h1.c, h2.c) and what serves its streams
 * (proxy.c): stream ops go down to the protocol, the stream handler goes up. Neither side includes the
 * other: the worker holds the handler (w->handler) and each stream holds its ops. */
#ifndef SG_STREAM_H
#define SG_STREAM_H

#include "http/conn.h"
#include "codec/h1parse.h"
#include "core/worker.h"

typedef struct sg_stream sg_stream_t;

/* Every stream object a handler hands out begins with one byte saying whose it is, so that one handler can wrap
 * another (fanout/ serves shared streams and passes every other stream to proxy/). */
enum { SG_STREAM_KIND_PROXY = 0, SG_STREAM_KIND_SHARED = 1 };
static inline uint8_t sg_stream_kind(const sg_stream_t *s)
{
    return *(const uint8_t *)(const void *)s;
}

/* Implemented by h1.c and h2.c, used only by the handler (proxy.c). `down` is the protocol's stream object. */
typedef struct sg_stream_ops {
    /* Response head; hdrs are the end-to-end headers to send. content_length < 0: unknown.
     * no_body: HEAD request or 204/304. Returns 0, SG_EAGAIN (above the watermark) or -errno. */
    int (*send_head)(void *down, int status, const sg_h1_header_t *hdrs, size_t n, int64_t content_length,
                     bool no_body);
    /* Returns 0, SG_EAGAIN (queued, above the high watermark: wait for sg_proxy_down_writable) or -errno. */
    int (*send_body)(void *down, const char *p, size_t n);
    /* Optional (NULL: send_body): body bytes of a shared stream, queued by reference instead of copied. ev is the
     * raw event; *h1_chunk caches its HTTP/1.1 chunk framing, made by the first subscriber that needs it and
     * reused by the next ones (its owner drops it). Returns like send_body. */
    int (*send_shared)(void *down, sg_rbuf_t *ev, sg_rbuf_t **h1_chunk);
    /* The response is complete. */
    int (*send_end)(void *down);
    /* Optional (NULL: the protocol has no trailers, i.e. HTTP/1.x here): the response is complete, and these fields
     * follow its body as trailers (h2: a HEADERS frame with END_STREAM). Instead of send_end. Returns 0 or -errno. */
    int (*send_trailers)(void *down, const sg_h1_header_t *hdrs, size_t n);
    /* The response cannot complete: the client must see it cut (h1: close; h2: RST_STREAM). */
    void (*abort)(void *down);
    /* The upstream queue drained: read more of the request body. */
    void (*resume_body)(void *down);
    /* Optional: the request is refused before any work was started for it, so the client may safely retry
     * it (h2: RST_STREAM REFUSED_STREAM). NULL: the handler answers 503 instead. detach(ok) follows. */
    void (*refuse)(void *down);
    /* The stream is finished and about to be freed; drop any pointer to it. */
    void (*detach)(void *down, bool ok);
} sg_stream_ops_t;

/* What the downstream side knows about its connection. */
typedef struct sg_down_info {
    sg_conn_t *conn;
    bool tls;
    const char *proto;          /* "HTTP/1.1", "HTTP/1.0", "HTTP/2" for the access log */
    /* Frontend mTLS: sg_tls_client_state_t and the client's identity (NULL with SG_TLS_CLIENT_NONE), valid while
     * the connection lives; the proxy sends them as X-Forwarded-Client-Cert. */
    uint8_t client_cert_state;
    const char *client_cert;
    sg_str_t protocol;          /* HTTP/2 extended CONNECT's :protocol (RFC 8441); empty otherwise */
    bool shared_upstream;       /* the upstream exchange of a shared stream (fanout/), not a client's own */
} sg_down_info_t;

/* Implemented by proxy.c (sg_proxy_handler), called by h1.c and h2.c through w->handler. */
typedef struct sg_stream_handler {
    /* Starts a stream for a parsed request; see sg_proxy_start. */
    sg_stream_t *(*start)(sg_worker_t *w, const sg_stream_ops_t *ops, void *down, const sg_down_info_t *info,
                          const sg_h1_msg_t *msg, bool has_body, int64_t body_len);
    int (*req_body)(sg_stream_t *s, const char *p, size_t n);
    void (*req_end)(sg_stream_t *s);
    void (*down_writable)(sg_stream_t *s);
    /* The downstream connection is over its buffer budget: stop reading the upstream until down_writable. */
    void (*down_blocked)(sg_stream_t *s);
    void (*down_closed)(sg_stream_t *s);
    void (*drain)(sg_stream_t *s, uint64_t at_ms);
} sg_stream_handler_t;

#endif
