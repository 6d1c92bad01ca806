/* grpc.h: the gateway's own words in a gRPC call: its errors as Trailers-Only responses, a started call ended with a
 * status in trailers, and which status an answer of the gateway's means. */
#ifndef SG_PROXY_GRPC_H
#define SG_PROXY_GRPC_H

#include "http/stream.h"
#include "codec/grpc.h"

/* The gRPC status for an answer the gateway would give as this HTTP status (no route 404 -> UNIMPLEMENTED, an
 * unreachable or failing backend 502/503/500 -> UNAVAILABLE, a timeout 504 -> DEADLINE_EXCEEDED, ...). */
int sg_grpc_code_for_http(int http_status);

/* Answers a call that has no response yet: one HEADERS frame with END_STREAM carrying :status 200, content-type,
 * grpc-status and grpc-message (Trailers-Only); the message is the first line of body ("ssegate: no route\n"), always
 * starting "ssegate: ". Returns 0 or -errno. */
int sg_grpc_answer(const sg_stream_ops_t *ops, void *down, int code, const char *body);

/* When a request cannot be a gRPC call here: gk is what its content-type says, h2 whether its protocol carries
 * trailers, grpc_route whether a GRPCRoute matched it (false before routing). Returns the HTTP status to answer
 * with (505 gRPC over HTTP/1.x, 415 gRPC-Web on a GRPCRoute) and sets *body, or 0 when it may go on. */
int sg_grpc_refusal(sg_grpc_kind_t gk, bool h2, bool grpc_route, const char **body);

/* The deadline of a call: the client's grpc-timeout when it is shorter than the route's timeout t (ms;
 * SG_TIMEOUT_UNSET or 0: none), with *client set; otherwise t. */
int64_t sg_grpc_deadline(const sg_h1_msg_t *msg, int64_t t, bool *client);

/* Ends a call whose response head was sent: grpc-status and grpc-message as trailers. Returns 0 or -errno. */
int sg_grpc_end(const sg_stream_ops_t *ops, void *down, int code, const char *msg);

#endif
