/* grpc.c: the gateway's own errors and endings in gRPC calls (Trailers-Only answers, status trailers). */
#include "proxy/grpc.h"

int sg_grpc_code_for_http(int http_status)
{
    switch (http_status) {
    case 404:
    case 501:
        return SG_GRPC_UNIMPLEMENTED;
    case 500:   /* no usable backend: the spec's UNAVAILABLE for invalid backendRefs */
    case 502:
    case 503:
        return SG_GRPC_UNAVAILABLE;
    case 504:
        return SG_GRPC_DEADLINE_EXCEEDED;
    case 429:
    case 431:   /* request header fields too large */
        return SG_GRPC_RESOURCE_EXHAUSTED;
    default:
        return http_status >= 500 ? SG_GRPC_INTERNAL : SG_GRPC_UNKNOWN;
    }
}

int sg_grpc_answer(const sg_stream_ops_t *ops, void *down, int code, const char *msg)
{
    sg_h1_header_t h[3];
    char buf[320];
    size_t n = sg_grpc_status_fields(code, msg, true, h, buf, sizeof(buf));
    /* no_body: the head goes with END_STREAM, and clients read its grpc-status as the call's status. */
    int rc = ops->send_head(down, 200, h, n, -1, true);
    if (rc < 0 && rc != SG_EAGAIN)
        return rc;
    rc = ops->send_end(down);
    return rc == SG_EAGAIN ? 0 : rc;
}

int sg_grpc_end(const sg_stream_ops_t *ops, void *down, int code, const char *msg)
{
    sg_h1_header_t h[3];
    char buf[320];
    size_t n = sg_grpc_status_fields(code, msg, false, h, buf, sizeof(buf));
    return ops->send_trailers(down, h, n);
}
