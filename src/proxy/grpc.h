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
 * grpc-status and grpc-message (Trailers-Only). ops must have send_trailers (HTTP/2). Returns 0 or -errno. */
int sg_grpc_answer(const sg_stream_ops_t *ops, void *down, int code, const char *msg);

/* Ends a call whose response head was sent: grpc-status and grpc-message as trailers. Returns 0 or -errno. */
int sg_grpc_end(const sg_stream_ops_t *ops, void *down, int code, const char *msg);

#endif
