/* wsproxy.h: the WebSocket handshake as the proxy sees it: which requests are one (HTTP/1.1 Upgrade, or an HTTP/2
 * extended CONNECT with :protocol websocket, RFC 8441), the upgrade headers of the upstream request, the check of
 * the backend's answer, the headers of the switch, and the handshake metrics. The bytes after the switch are
 * tunnel.c's. */
#ifndef SG_WSPROXY_H
#define SG_WSPROXY_H

#include "codec/ws.h"
#include "core/worker.h"
#include "http/stream.h"

typedef struct sg_wsreq sg_wsreq_t;

/* True for an HTTP/2 extended CONNECT with :protocol websocket: routed as a GET (a plain CONNECT is refused). */
bool sg_wsproxy_is_ext_connect(const sg_h1_msg_t *msg, const sg_down_info_t *info);
/*
 * Classifies a request. Returns 0 when it is not a WebSocket handshake (it goes on as a plain request, upgrade
 * headers stripped, as before), 1 with *out set (allocated; sg_wsproxy_end frees it), or the status to answer
 * (400, 426) with *why, counted in rm as rejected. An out-of-memory gives 503.
 */
int sg_wsproxy_check(sg_worker_t *w, const sg_h1_msg_t *msg, const sg_down_info_t *info, sg_route_metrics_t *rm,
                     sg_wsreq_t **out, const char **why);
/* Request headers of the client's not to forward (HTTP/2: a Sec-WebSocket-Key; the gateway makes its own). */
bool sg_wsproxy_drop_header(const sg_wsreq_t *ws, sg_str_t name);
/* Appends Connection/Upgrade (and, for HTTP/2, the gateway's Sec-WebSocket-Key) to the upstream request head. */
void sg_wsproxy_put_upgrade(const sg_wsreq_t *ws, char *p, size_t *n, size_t cap, bool *overflow);
/*
 * The backend's answer: 1 when it switched (101, with the right Sec-WebSocket-Accept when the gateway made the
 * key), 0 for an answer to relay as it is (3xx, 4xx, 5xx: the backend refused the WebSocket), -1 when it must
 * become a 502 (*why: a 2xx, a 101 with a wrong or missing accept).
 */
int sg_wsproxy_on_head(const sg_wsreq_t *ws, const sg_h1_msg_t *msg, const char **why);
/* The switch's status for the client (101; 200 on HTTP/2) and its headers: out[0..n) are the backend's end-to-end
 * ones; Upgrade and Connection are added for HTTP/1.1, Sec-WebSocket-Accept dropped for HTTP/2. Returns the new n. */
int sg_wsproxy_status(const sg_wsreq_t *ws);
size_t sg_wsproxy_resp_headers(const sg_wsreq_t *ws, sg_h1_header_t *out, size_t n, size_t cap);
bool sg_wsproxy_is_h2(const sg_wsreq_t *ws);
/* The switch happened: counts it, and the WebSocket as open. */
void sg_wsproxy_switched(sg_wsreq_t *ws, sg_route_metrics_t *rm);
/* The stream ends: counts the result (a handshake that did not switch, by its status) and frees ws (NULL: no-op). */
void sg_wsproxy_end(sg_wsreq_t *ws, sg_route_metrics_t *rm, bool switched, int status);

#endif
