/* proxy.h: one stream: a downstream request relayed to an upstream exchange, with SSE awareness and
 * back-pressure. proxy.c never knows the client's HTTP version: it talks to it through sg_stream_ops_t
 * (stream.h), and the protocols reach it through sg_proxy_handler. */
#ifndef SG_PROXY_H
#define SG_PROXY_H

#include "http/conn.h"
#include "codec/h1parse.h"
#include "http/stream.h"
#include "core/worker.h"
#include "config/config.h"

/* The handler the worker gives the protocols: the functions below. */
extern const sg_stream_handler_t sg_proxy_handler;

/*
 * Starts a stream for a parsed request (msg slices are read during the call only). Always answers:
 * an error status (404, 500, 502, 503, 504) goes out through ops. Returns the stream, or NULL when
 * it could not even be created (out of memory: the caller answers 503 and closes).
 * has_body: a request body follows through sg_proxy_req_body / sg_proxy_req_end.
 */
sg_stream_t *sg_proxy_start(sg_worker_t *w, const sg_stream_ops_t *ops, void *down, const sg_down_info_t *info,
                            const sg_h1_msg_t *msg, bool has_body, int64_t body_len);
/* Request body bytes. Returns 0, SG_EAGAIN (accepted, but pause until resume_body) or -errno. */
int sg_proxy_req_body(sg_stream_t *s, const char *p, size_t n);
/* End of the request body. */
void sg_proxy_req_end(sg_stream_t *s);
/* The client's queue fell below the low watermark. */
void sg_proxy_down_writable(sg_stream_t *s);
/* The downstream side wants no more body for now (a connection-wide budget): pause the upstream. */
void sg_proxy_down_blocked(sg_stream_t *s);
/* The client went away: release everything without calling ops again. */
void sg_proxy_down_closed(sg_stream_t *s);
/* The worker drains: an SSE stream ends at an event boundary at at_ms (after a retry: hint); other
 * streams finish on their own. */
void sg_proxy_drain(sg_stream_t *s, uint64_t at_ms);
/* The stream of a node of w->streams. */
sg_stream_t *sg_proxy_stream_of(sg_list_t *n);
/* epgone.c: a live SSE stream's rule, backend and endpoint (false: not such a stream), and whether an end is
 * planned for it because its endpoint left the config. */
bool sg_proxy_ep_of(const sg_stream_t *s, const sg_rule_t **rule, const sg_backend_t **be, const sg_endpoint_t **ep,
                    bool *planned);
/* epgone.c: end an SSE stream at an event boundary at at_ms, as a drain does (a shared stream's upstream with no
 * retry: hint: fanout/ fails over); 0 cancels such a plan. Never ends the stream within the call. */
void sg_proxy_plan_end(sg_stream_t *s, uint64_t at_ms);
/* True when the stream relays an SSE response. */
bool sg_proxy_is_sse(const sg_stream_t *s);

#endif
