/* upclient_int.h: what the upstream clients share inside the proxy layer: the per-worker pool of one endpoint
 * address (idle HTTP/1.1 connections, HTTP/2 sessions, TLS sessions for resumption), and the tag that tells an
 * HTTP/1.1 exchange (upclient.c) from a stream of an HTTP/2 session (upclient_h2.c) behind sg_upclient_t. */
#ifndef SG_UPCLIENT_INT_H
#define SG_UPCLIENT_INT_H

#include <openssl/ssl.h>
#include <sys/socket.h>

#include "core/list.h"
#include "core/loop.h"
#include "core/worker.h"
#include "net/tlsclient.h"
#include "proxy/upclient.h"

/* The first member of both kinds of sg_upclient_t (a struct may be read through a pointer to its first member). */
typedef struct sg_upkind {
    bool h2;
} sg_upkind_t;

#define UP_SESSIONS 4

/*
 * A worker's connections to one endpoint address, plain or under one TLS policy (w->pools). It lives while a
 * connection or HTTP/2 stream to that address does (users), or while it holds a TLS session that has not expired,
 * so addresses that left the config (pods that went away) do not pile up.
 */
typedef struct sg_uppool {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool tls;
    uint8_t tls_id[SG_TLS_CLIENT_ID_LEN]; /* sg_tls_client_id: connections verified alike share a pool */
    /* The endpoint's newest TLS sessions, newest last. A new connection takes one (sg__uppool_take_session): TLS 1.3
     * tickets are meant for one use (RFC 8446 C.4), and servers with stateful tickets accept each once. */
    SSL_SESSION *sessions[UP_SESSIONS];
    uint8_t nsessions;
    sg_list_t idle;
    size_t nidle;
    size_t users;               /* upclients, HTTP/2 sessions and streams pointing here, idle ones included */
    /* HTTP/2 (upclient_h2.c) */
    sg_list_t h2sess;           /* the sessions to this address */
    size_t nh2sess;
    sg_list_t h2wait;           /* streams waiting for a session with room */
    sg_deferred_t h2dispatch_d; /* hands waiting streams to sessions, outside any caller's call */
    sg_worker_t *worker;
    bool no_h2;                 /* over TLS the backend chose http/1.1 (ALPN): exchanges here are HTTP/1.1 */
} sg_uppool_t;

/* The pool of addr under tls (NULL: plain), made when missing. NULL when out of memory. */
sg_uppool_t *sg__uppool_get(sg_worker_t *w, const struct sockaddr *addr, socklen_t alen, const sg_tls_client_t *tls);
/* One user of p is gone (p may be freed). Accepts NULL. */
void sg__uppool_unuse(sg_worker_t *w, sg_uppool_t *p);
/* The TLS session to offer a new connection (the caller frees its reference), or NULL. */
SSL_SESSION *sg__uppool_take_session(sg_uppool_t *p);
/* Keeps s for resumption (ownership passes). */
void sg__uppool_push_session(sg_uppool_t *p, SSL_SESSION *s);

/* The HTTP/2 side of sg_upclient_open (flags as there). */
sg_upclient_t *sg__uph2_open(sg_worker_t *w, const struct sockaddr *addr, socklen_t alen, const sg_tls_client_t *tls,
                             const sg_upclient_cbs_t *cbs, void *ctx, bool head_request, int *err);
int sg__uph2_send(sg_upclient_t *u, const struct iovec *iov, int n);
void sg__uph2_request_done(sg_upclient_t *u);
void sg__uph2_pause(sg_upclient_t *u, bool paused);
void sg__uph2_release(sg_upclient_t *u);
int sg__uph2_move(sg_upclient_t *u, const struct sockaddr *addr, socklen_t alen);
bool sg__uph2_reused(const sg_upclient_t *u);
const char *sg__uph2_error(const sg_upclient_t *u);
const char *sg__uph2_tls_error(const sg_upclient_t *u);
/* Shutdown: closes every HTTP/2 session of p that carries no stream (every session once the loop has stopped). */
void sg__uph2_close_idle(sg_worker_t *w, sg_uppool_t *p);

#endif
