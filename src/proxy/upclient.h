/* upclient.h: one upstream exchange behind one interface, whatever the backend speaks: HTTP/1.1 (upclient.c:
 * connect with a timeout, send the request, parse the response head, dechunk, deliver the body, keep-alive pooling
 * per endpoint) or a stream of an HTTP/2 session (upclient_h2.c). */
#ifndef SG_UPCLIENT_H
#define SG_UPCLIENT_H

#include "codec/h1parse.h"
#include "net/sock.h"
#include "core/worker.h"

typedef struct sg_upclient sg_upclient_t;

/* Called by upclient.c, implemented by its user (proxy.c). ctx is the user's. */
typedef struct sg_upclient_cbs {
    /* msg is valid during the call only. */
    void (*on_head)(void *ctx, const sg_h1_msg_t *msg);
    void (*on_body)(void *ctx, const char *p, size_t n);
    void (*on_end)(void *ctx);
    /* err: -ECONNREFUSED, -ETIMEDOUT (connect timeout; or an HTTP/2 session's PING unanswered, when
     * sg_upclient_error() says so), -EPROTO (bad response: sg_upclient_error() says
     * why), -EKEYREJECTED (the TLS handshake failed: sg_upclient_tls_error() says why), -EBUSY (an HTTP/2 backend
     * refused the stream unprocessed and it could not be sent again: sg_upclient_error() says why), -ECONNRESET or
     * another -errno. The exchange is over; release it. */
    void (*on_error)(void *ctx, int err);
    /* The request queue fell below the low watermark. */
    void (*on_drained)(void *ctx);
    /* Response trailers (HTTP/2 HEADERS after the body), before on_end; the array is valid during the call only.
     * May be NULL: trailers are then dropped. HTTP/1.1 exchanges drop chunked trailers and never call it. */
    void (*on_trailers)(void *ctx, const sg_h1_header_t *h, size_t n);
} sg_upclient_cbs_t;

/* What the backend speaks (sg_upclient_open's proto). */
enum { SG_UPCLIENT_H1 = 0, SG_UPCLIENT_H2 = 1 };

struct sg_tls_client;

/*
 * Gets an exchange with addr. SG_UPCLIENT_H1: an idle pooled connection, or a new non-blocking connect.
 * SG_UPCLIENT_H2: a stream on an HTTP/2 session to addr (upclient_h2.c: prior knowledge in plaintext, ALPN h2 over
 * TLS falling back to HTTP/1.1 when the backend chooses it); the request is still written as HTTP/1.1 bytes with
 * sg_upclient_send, and translated. tls (NULL: plaintext) makes it a TLS connection verified under that policy;
 * pooled connections and sessions are shared only between policies with the same sg_tls_client_id. Callbacks are
 * never called from inside this function. Returns NULL with *err set (-errno) when no socket could be made.
 */
sg_upclient_t *sg_upclient_open(sg_worker_t *w, const struct sockaddr *addr, socklen_t alen,
                                const struct sg_tls_client *tls, int proto, const sg_upclient_cbs_t *cbs, void *ctx,
                                bool head_request, int *err);
/* Queues request bytes. Returns 0, SG_EAGAIN (queued, above the high watermark) or -errno. */
int sg_upclient_send(sg_upclient_t *u, const struct iovec *iov, int n);
/* The request asks for an upgrade (WebSocket): a 101 is then delivered through on_head, and every byte after it
 * through on_body until the backend closes (on_end); sg_upclient_send carries the client's bytes. Never pooled. */
void sg_upclient_expect_upgrade(sg_upclient_t *u);
/* Shuts the sending side (FIN; close_notify over TLS) once what is queued has gone out. */
void sg_upclient_shutdown_write(sg_upclient_t *u);
/* The request is complete. */
void sg_upclient_request_done(sg_upclient_t *u);
/* Stops or resumes reading the response (back-pressure from the client). */
void sg_upclient_pause(sg_upclient_t *u, bool paused);
/* The user is done: a clean, complete exchange goes back to the pool, anything else is closed.
 * No callback is called after this. */
void sg_upclient_release(sg_upclient_t *u);
/* From on_error(-EBUSY or -ECONNREFUSED): sends the same exchange, request body and all, to addr (another endpoint
 * of the same backend: same protocol, same TLS policy) as if it had just been opened there; the callbacks stay.
 * Only an HTTP/2 stream the backend never processed whose body is still held whole (--h2-upstream-replay) can go.
 * Returns 0, -ENOTSUP (an HTTP/1.1 exchange), -EINVAL (it cannot go again) or -ENOMEM; on failure nothing changed. */
int sg_upclient_move(sg_upclient_t *u, const struct sockaddr *addr, socklen_t alen);
/* True when it came from the pool (a failure before any response byte may be a stale connection). */
bool sg_upclient_reused(const sg_upclient_t *u);
/* After on_error(-EPROTO): what was wrong with the response, a static string for the log; else NULL. */
const char *sg_upclient_error(const sg_upclient_t *u);
/* After on_error(-EKEYREJECTED): why the TLS handshake failed (OpenSSL's verification error, e.g. "certificate has
 * expired"), a static string; else NULL. */
const char *sg_upclient_tls_error(const sg_upclient_t *u);
/* Closes every idle pooled connection of the worker (shutdown). */
void sg_upclient_pool_close_all(sg_worker_t *w);

#endif
