/* h2probe.c: an HTTP/2 GET for health probes, through an nghttp2 client session fed by hand. */
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h2probe.h"

struct sg_h2probe {
    nghttp2_session *ses;
    char *req;
    size_t len;
    int status;
    bool reset;
};

static int on_header(nghttp2_session *ses, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    (void)ses;
    (void)f;
    (void)flags;
    sg_h2probe_t *p = ud;
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
    return 0;
}

sg_h2probe_t *sg_h2probe_new(const char *path, const char *host, bool https, const char **req, size_t *len)
{
    sg_h2probe_t *p = calloc(1, sizeof(*p));
    nghttp2_session_callbacks *cbs = NULL;
    if (p == NULL || nghttp2_session_callbacks_new(&cbs) != 0)
        goto fail;
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    int rc = nghttp2_session_client_new(&p->ses, cbs, p);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    const char *scheme = https ? "https" : "http";
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"GET", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)scheme, 7, strlen(scheme), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)host, 10, strlen(host), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"user-agent", (uint8_t *)"ssegate-health", 10, 14, NGHTTP2_NV_FLAG_NONE},
    };
    if (nghttp2_submit_settings(p->ses, NGHTTP2_FLAG_NONE, iv, 1) != 0 ||
        nghttp2_submit_request(p->ses, NULL, nv, SG_ARRAY_LEN(nv), NULL, NULL) < 0)
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

int sg_h2probe_feed(sg_h2probe_t *p, const char *buf, size_t len)
{
    if (nghttp2_session_mem_recv(p->ses, (const uint8_t *)buf, len) < 0)
        return -EPROTO;
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
