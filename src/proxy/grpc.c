/* grpc.c: the gateway's own errors and endings in gRPC calls (Trailers-Only answers, status trailers). */
#include "proxy/grpc.h"
#include "config/config.h"

#include <stdio.h>
#include <string.h>

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

int sg_grpc_answer(const sg_stream_ops_t *ops, void *down, int code, const char *body)
{
    sg_h1_header_t h[3];
    char buf[320], msg[192];
    const char *b = strncmp(body, "ssegate: ", 9) == 0 ? body + 9 : body;
    size_t bl = strcspn(b, "\n");
    snprintf(msg, sizeof(msg), "ssegate: %.*s", (int)SG_MIN(bl, sizeof(msg) - 10), b);
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

int sg_grpc_refusal(sg_grpc_kind_t gk, bool h2, bool grpc_route, const char **body)
{
    if (gk == SG_GRPC_CALL && !h2) {
        *body = "ssegate: gRPC needs HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2); this call came over "
                "HTTP/1.x\n";
        return 505;
    }
    /* A GRPCRoute serves gRPC over HTTP/2; gRPC-Web would need translating (not built), and HTTP/1.x cannot carry a
     * call. Other HTTP/2 requests go on: the backend answers them as a gRPC server does. */
    if (grpc_route && gk == SG_GRPC_WEB) {
        *body = "ssegate: gRPC-Web is not translated by this gateway; call the service with gRPC over HTTP/2, or put a "
                "gRPC-Web proxy in front of the backend\n";
        return 415;
    }
    if (grpc_route && !h2) {
        *body = "ssegate: this route serves gRPC, which needs HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2)\n";
        return 505;
    }
    return 0;
}

int64_t sg_grpc_deadline(const sg_h1_msg_t *msg, int64_t t, bool *client)
{
    size_t from = 0;
    const sg_h1_header_t *gt = sg_h1parse_find(msg, "grpc-timeout", &from);
    int64_t ms;
    *client = false;
    if (gt == NULL || sg_grpc_parse_timeout(gt->value, &ms) != 0 || (t > 0 && ms >= t))
        return t;
    *client = true;
    return ms;
}
