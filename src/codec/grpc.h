/* grpc.h: the few gRPC-over-HTTP/2 formats the gateway reads and writes itself (pure: no I/O, no allocation):
 * what marks a call, grpc-timeout, grpc-status and a percent-encoded grpc-message, and the grpc.health.v1 Check
 * messages the health prober sends and reads. */
#ifndef SG_GRPC_H
#define SG_GRPC_H

#include "codec/h1parse.h"

/* The status codes the gateway produces itself (gRPC's codes.proto). */
enum {
    SG_GRPC_OK = 0,
    SG_GRPC_CANCELLED = 1,
    SG_GRPC_UNKNOWN = 2,
    SG_GRPC_DEADLINE_EXCEEDED = 4,
    SG_GRPC_RESOURCE_EXHAUSTED = 8,
    SG_GRPC_UNIMPLEMENTED = 12,
    SG_GRPC_INTERNAL = 13,
    SG_GRPC_UNAVAILABLE = 14,
};

typedef enum sg_grpc_kind {
    SG_GRPC_NOT = 0,            /* not gRPC */
    SG_GRPC_CALL,               /* content-type application/grpc, application/grpc+proto, application/grpc;... */
    SG_GRPC_WEB,                /* application/grpc-web, application/grpc-web-text (+...) */
} sg_grpc_kind_t;

/* What a request's (first) Content-Type says. */
sg_grpc_kind_t sg_grpc_kind(const sg_h1_msg_t *msg);

/* A grpc-timeout value ("1-8 digits" then H, M, S, m, u or n) in ms, rounded up to at least 1 ms.
 * Returns 0 and *ms, or SG_EBADMSG when malformed. */
int sg_grpc_parse_timeout(sg_str_t v, int64_t *ms);

/* The grpc-status value of a header list: 0..16 (an unknown number counts as 2, UNKNOWN), -1 when absent or not a
 * number. */
int sg_grpc_status_of(const sg_h1_header_t *hdrs, size_t n);

/* The fields of a gRPC status: grpc-status, and grpc-message when msg is not NULL (percent-encoded as the protocol
 * says, into buf; a message too long for buf is cut). With content_type, a content-type: application/grpc field
 * first (Trailers-Only responses need it). Writes up to 3 fields to out; returns how many. */
size_t sg_grpc_status_fields(int code, const char *msg, bool content_type, sg_h1_header_t *out, char *buf,
                             size_t cap);

/* A grpc.health.v1.Health/Check request for `service` ("" = the server as a whole) as one length-prefixed message:
 * a 5-byte prefix, then field 1 (string). Returns its length, or SG_E2BIG when it does not fit in cap. */
int sg_grpc_health_request(const char *service, uint8_t *out, size_t cap);

/* Reads the first length-prefixed HealthCheckResponse in p: returns its status field (1 SERVING, 2 NOT_SERVING,
 * 0 UNKNOWN, 3 SERVICE_UNKNOWN; 0 when absent), SG_EINCOMPLETE when more bytes are needed, SG_EBADMSG when it is
 * malformed or compressed. */
int sg_grpc_health_response(const uint8_t *p, size_t n);

#endif
