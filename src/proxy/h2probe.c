/* h2probe.c: an HTTP/2 GET for health probes, through an nghttp2 client session fed by hand. */
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "proxy/h2probe.h"
#include "codec/grpc.h"

struct sg_h2probe {
    nghttp2_session *ses;
    char *req;
    size_t len;
    int status;
    bool reset;
    /* gRPC health mode: the request message to send, the response DATA and the call's grpc-status */
    bool grpc;
    bool closed;
    int grpc_status;            /* -1 until seen */
    uint8_t msg[64];
    size_t msglen, msgsent;
    uint8_t in[256];
    size_t inlen;
};

static int on_header(nghttp2_session *ses, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)ses;
    (void)f;
    (void)flags;
    sg_h2probe_t *p = ud;
    if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        sg_h1_header_t h = {{(const char *)name, nlen}, {(const char *)value, vlen}};
        p->grpc_status = sg_grpc_status_of(&h, 1);
    }
    if (nlen == 7 && memcmp(name, ":status", 7) == 0 && vlen == 3) {
        int s = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        if (s >= 200 && s <= 599)
            p->status = s; /* a 1xx is interim: the final status follows */
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ses, int32_t id, uint32_t code, void *ud)
{
    (void)ses;
    (void)id;
    sg_h2probe_t *p = ud;
    if (code != NGHTTP2_NO_ERROR)
        p->reset = true;
    p->closed = true;
    return 0;
}

static int on_data(nghttp2_session *ses, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *ud)
{
    (void)ses;
    (void)flags;
    (void)id;
    sg_h2probe_t *p = ud;
    size_t n = SG_MIN(len, sizeof(p->in) - p->inlen); /* a HealthCheckResponse is a few bytes; the rest is not read */
    memcpy(p->in + p->inlen, data, n);
    p->inlen += n;
    return 0;
}

static ssize_t body_read(nghttp2_session *ses, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)ses;
    (void)id;
    (void)src;
    sg_h2probe_t *p = ud;
    size_t n = SG_MIN(len, p->msglen - p->msgsent);
    memcpy(buf, p->msg + p->msgsent, n);
    p->msgsent += n;
    if (p->msgsent == p->msglen)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* The session, its SETTINGS and one request; a gRPC health call when p->grpc (its message is in p->msg). */
static sg_h2probe_t *probe_new(sg_h2probe_t *p, const char *path, const char *host, bool https, const char **req,
                               size_t *len)
{
    nghttp2_session_callbacks *cbs = NULL;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
    int rc = nghttp2_session_client_new(&p->ses, cbs, p);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    const char *scheme = https ? "https" : "http";
    const char *method = p->grpc ? "POST" : "GET";
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)scheme, 7, strlen(scheme), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)host, 10, strlen(host), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"user-agent", (uint8_t *)"ssegate-health", 10, 14, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider body = {.read_callback = body_read};
    if (nghttp2_submit_settings(p->ses, NGHTTP2_FLAG_NONE, iv, 1) != 0 ||
        nghttp2_submit_request(p->ses, NULL, nv, p->grpc ? SG_ARRAY_LEN(nv) : 5, p->grpc ? &body : NULL, NULL) < 0)
        goto fail;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(p->ses, &data);
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
        char *r = realloc(p->req, p->len + (size_t)n);
        if (r == NULL)
            goto fail;
        p->req = r;
        memcpy(p->req + p->len, data, (size_t)n);
        p->len += (size_t)n;
    }
    *req = p->req;
    *len = p->len;
    return p;
fail:
    sg_h2probe_free(p);
    return NULL;
}

sg_h2probe_t *sg_h2probe_new(const char *path, const char *host, bool https, const char **req, size_t *len)
{
    sg_h2probe_t *p = calloc(1, sizeof(*p));
    return p ? probe_new(p, path, host, https, req, len) : NULL;
}

sg_h2probe_t *sg_h2probe_new_grpc(const char *service, const char *host, bool https, const char **req, size_t *len)
{
    sg_h2probe_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->grpc = true;
    p->grpc_status = -1;
    int n = sg_grpc_health_request(service, p->msg, sizeof(p->msg));
    if (n < 0) {
        free(p);
        return NULL;
    }
    p->msglen = (size_t)n;
    return probe_new(p, "/grpc.health.v1.Health/Check", host, https, req, len);
}

int sg_h2probe_grpc_result(const sg_h2probe_t *p, char *why, size_t cap)
{
    if (p->status != 200) {
        snprintf(why, cap, "gRPC health: HTTP status %d", p->status);
        return 0;
    }
    if (p->grpc_status != 0) {
        snprintf(why, cap, "gRPC health: grpc-status %d", p->grpc_status);
        return 0;
    }
    int st = sg_grpc_health_response(p->in, p->inlen);
    static const char *const names[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
    if (st < 0) {
        snprintf(why, cap, "gRPC health: malformed HealthCheckResponse");
        return 0;
    }
    snprintf(why, cap, "gRPC health: %s", names[st]);
    return st == 1;
}

int sg_h2probe_feed(sg_h2probe_t *p, const char *buf, size_t len)
{
    if (nghttp2_session_mem_recv(p->ses, (const uint8_t *)buf, len) < 0)
        return -EPROTO;
    if (p->grpc) {
        /* The call is over when its stream closes (trailers, or a Trailers-Only head, with END_STREAM). */
        if (p->reset)
            return -EPROTO;
        return p->closed ? (p->status > 0 ? p->status : -EPROTO) : SG_EINCOMPLETE;
    }
    if (p->status > 0)
        return p->status;
    return p->reset ? -EPROTO : SG_EINCOMPLETE;
}

void sg_h2probe_free(sg_h2probe_t *p)
{
    if (p == NULL)
        return;
    if (p->ses != NULL)
        nghttp2_session_del(p->ses);
    free(p->req);
    free(p);
}
