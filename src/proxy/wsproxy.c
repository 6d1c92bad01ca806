/* wsproxy.c: the WebSocket handshake through the gateway (see wsproxy.h). */
#include <stdlib.h>

#include "proxy/wsproxy.h"

struct sg_wsreq {
    bool h2;                            /* extended CONNECT: the gateway speaks the HTTP/1.1 handshake for it */
    bool switched;
    char key[SG_WS_KEY_LEN + 1];        /* HTTP/2: the key the gateway sent */
    char accept[SG_WS_ACCEPT_LEN + 1];  /* ... and the accept it expects */
};

bool sg_wsproxy_is_ext_connect(const sg_h1_msg_t *msg, const sg_down_info_t *info)
{
    return sg_str_eq(msg->method, SG_STR("CONNECT")) && sg_str_eq(info->protocol, SG_STR("websocket"));
}

int sg_wsproxy_check(sg_worker_t *w, const sg_h1_msg_t *msg, const sg_down_info_t *info, sg_route_metrics_t *rm,
                     sg_wsreq_t **out, const char **why)
{
    bool h2 = sg_wsproxy_is_ext_connect(msg, info);
    *out = NULL;
    int rc = sg_ws_check_upgrade(msg, h2, why);
    if (rc >= 400 && rm != NULL)
        sg_counter_add(&rm->ws_upgrades[SG_WS_REJECTED], 1);
    if (rc != 1)
        return rc;
    sg_wsreq_t *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        *why = "out of memory";
        return 503;
    }
    ws->h2 = h2;
    if (h2) {
        uint8_t rnd[16];
        uint64_t a = sg_worker_rand(w), b = sg_worker_rand(w);
        memcpy(rnd, &a, 8);
        memcpy(rnd + 8, &b, 8);
        sg_ws_make_key(rnd, ws->key);
        if (sg_ws_accept(sg_str_c(ws->key), ws->accept) < 0) {
            free(ws);
            *why = "cannot compute the WebSocket accept key";
            return 503;
        }
    }
    *out = ws;
    return 1;
}

bool sg_wsproxy_drop_header(const sg_wsreq_t *ws, sg_str_t name)
{
    return ws->h2 && (sg_str_ieq_lit(name, "sec-websocket-key") || sg_str_ieq_lit(name, "sec-websocket-accept"));
}

static void put(char *p, size_t *n, size_t cap, bool *overflow, const char *s, size_t len)
{
    if (*n + len > cap) {
        *overflow = true;
        return;
    }
    memcpy(p + *n, s, len);
    *n += len;
}

void sg_wsproxy_put_upgrade(const sg_wsreq_t *ws, char *p, size_t *n, size_t cap, bool *overflow)
{
    static const char up[] = "Connection: Upgrade\r\nUpgrade: websocket\r\n";
    put(p, n, cap, overflow, up, sizeof(up) - 1);
    if (ws->h2) {
        put(p, n, cap, overflow, "Sec-WebSocket-Key: ", 19);
        put(p, n, cap, overflow, ws->key, SG_WS_KEY_LEN);
        put(p, n, cap, overflow, "\r\n", 2);
    }
}

int sg_wsproxy_on_head(const sg_wsreq_t *ws, const sg_h1_msg_t *msg, const char **why)
{
    *why = NULL;
    if (msg->status == 101) {
        if (!sg_ws_header_has_token(msg, "upgrade", "websocket")) {
            *why = "101 without Upgrade: websocket";
            return -1;
        }
        if (ws->h2) {
            size_t from = 0;
            const sg_h1_header_t *h = sg_h1parse_find(msg, "sec-websocket-accept", &from);
            if (h == NULL || !sg_str_eq(h->value, sg_str_c(ws->accept))) {
                *why = h == NULL ? "101 without Sec-WebSocket-Accept" : "101 with a wrong Sec-WebSocket-Accept";
                return -1;
            }
        }
        return 1;
    }
    if (msg->status >= 200 && msg->status < 300) {
        /* The backend ignored the upgrade: relaying its 200 would leave the client with a puzzling answer, and
         * for HTTP/2 a 2xx means the tunnel is open. */
        *why = "the backend answered the upgrade with a 2xx, not 101 (does it speak WebSocket?)";
        return -1;
    }
    return 0;
}

int sg_wsproxy_status(const sg_wsreq_t *ws)
{
    return ws->h2 ? 200 : 101;
}

bool sg_wsproxy_is_h2(const sg_wsreq_t *ws)
{
    return ws != NULL && ws->h2;
}

size_t sg_wsproxy_resp_headers(const sg_wsreq_t *ws, sg_h1_header_t *out, size_t n, size_t cap)
{
    if (ws->h2) {
        size_t j = 0;
        for (size_t i = 0; i < n; i++)
            if (!sg_str_ieq_lit(out[i].name, "sec-websocket-accept"))
                out[j++] = out[i];
        return j;
    }
    if (n + 2 <= cap) {
        out[n++] = (sg_h1_header_t){SG_STR("Upgrade"), SG_STR("websocket")};
        out[n++] = (sg_h1_header_t){SG_STR("Connection"), SG_STR("Upgrade")};
    }
    return n;
}

void sg_wsproxy_switched(sg_wsreq_t *ws, sg_route_metrics_t *rm)
{
    ws->switched = true;
    if (rm != NULL) {
        sg_counter_add(&rm->ws_upgrades[SG_WS_SWITCHED], 1);
        sg_counter_add(&rm->ws_active, 1);
    }
}

void sg_wsproxy_end(sg_wsreq_t *ws, sg_route_metrics_t *rm, bool switched, int status)
{
    if (ws == NULL)
        return;
    if (rm != NULL) {
        if (ws->switched)
            sg_counter_sub(&rm->ws_active, 1);
        else if (!switched)
            sg_counter_add(&rm->ws_upgrades[status == 499 || status == 0 ? SG_WS_ABANDONED
                                            : status < 500           ? SG_WS_REJECTED
                                                                     : SG_WS_FAILED], 1);
    }
    free(ws);
}
