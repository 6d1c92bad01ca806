/* h1.c: HTTP/1.1 server side: request heads and bodies in, responses out (chunked when the length is
 * unknown), keep-alive and pipelining in order, strict errors that close the connection. */
#include <stdio.h>
#include <stdlib.h>

#include "http/h1.h"
#include "codec/h1parse.h"
#include "http/h2.h"
#include "core/log.h"
#include "http/stream.h"

typedef enum h1_state {
    H1_IDLE = 0,    /* between requests */
    H1_HEAD,        /* some bytes of a head have arrived */
    H1_BODY,        /* reading the request body */
    H1_WAIT,        /* request read; the response is under way */
    H1_TUNNEL,      /* after a 101: every byte each way is the tunnel's (WebSocket) */
    H1_DONE,        /* error sent or closing */
} h1_state_t;

typedef struct sg_h1 {
    sg_conn_t *conn;
    sg_stream_t *stream;
    h1_state_t state;
    bool keep_alive;
    bool chunked_body;
    bool resp_chunked;
    bool resp_no_body;
    bool resp_started;
    bool paused;            /* body reading paused by back-pressure */
    bool minor0;
    bool starting;          /* inside the handler's start: a detach is recorded, handled after it returns */
    bool first;             /* no request yet: an HTTP/2 preface may still come (h2c prior knowledge) */
    bool tunnel_eof;        /* H1_TUNNEL: the client's EOF was passed on */
    sg_deferred_t feed_d;   /* H1_TUNNEL: bytes that came with the head go to the tunnel after the switch */
    int8_t pending_detach;  /* 0 none, 1 ok, -1 failed */
    uint32_t scanned;       /* bytes of the current head already seen by the parser */
    uint64_t body_left;
    sg_h1_chunked_t dec;
} sg_h1_t;

static void h1_process(sg_h1_t *h);
static void feed_tunnel(sg_h1_t *h);
static void h1_close(sg_conn_t *c);
static const sg_conn_proto_t h1_proto;

static const char *status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 200 ? "Informational" : status < 300 ? "OK" : status < 400 ? "Redirect"
                  : status < 500 ? "Client Error" : "Server Error";
    }
}

void sg_h1_send_error(sg_conn_t *c, int status, const char *body)
{
    char head[256];
    size_t blen = strlen(body);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, status_reason(status), blen);
    struct iovec iov[2] = {{head, (size_t)n}, {(void *)body, blen}};
    if (sg_conn_send(c, iov, 2) == -ENOMEM) {
        sg_conn_close(c);
        return;
    }
    sg_conn_close_after_flush(c);
}

static void h1_fail(sg_h1_t *h, int status, const char *body)
{
    h->state = H1_DONE;
    sg_timer_cancel(&h->conn->worker->loop.wheel, &h->conn->timer);
    sg_h1_send_error(h->conn, status, body);
}

static void arm_timer(sg_h1_t *h, int64_t ms)
{
    sg_loop_t *loop = &h->conn->worker->loop;
    h->conn->stalled = false; /* the timer is the protocol's again; a stall re-arms it on the next flush */
    if (ms > 0)
        sg_timer_arm(&loop->wheel, &h->conn->timer, loop->now_ms + (uint64_t)ms);
    else
        sg_timer_cancel(&loop->wheel, &h->conn->timer);
}

/* ---- stream ops (called by proxy.c) ---- */

static int op_send_head(void *down, int status, const sg_h1_header_t *hdrs, size_t n, int64_t clen, bool no_body)
{
    sg_h1_t *h = down;
    sg_worker_t *w = h->conn->worker;
    char *b = w->scratch;
    size_t cap = sizeof(w->scratch), len = 0;
    int k;

    h->resp_started = true;
    h->resp_no_body = no_body;
    if (status == 101) {
        /* The switch (proxy.c sends it only for a WebSocket handshake, with Upgrade and Connection among hdrs):
         * no framing, no Connection: close; from here on the connection is a tunnel. */
        h->resp_chunked = false;
        h->keep_alive = false;
        k = snprintf(b, cap, "HTTP/1.1 101 Switching Protocols\r\n");
        len = (size_t)k;
        for (size_t i = 0; i < n; i++) {
            size_t need = hdrs[i].name.n + hdrs[i].value.n + 4;
            if (len + need + 2 > cap)
                return -E2BIG;
            memcpy(b + len, hdrs[i].name.p, hdrs[i].name.n);
            len += hdrs[i].name.n;
            b[len++] = ':';
            b[len++] = ' ';
            memcpy(b + len, hdrs[i].value.p, hdrs[i].value.n);
            len += hdrs[i].value.n;
            b[len++] = '\r';
            b[len++] = '\n';
        }
        b[len++] = '\r';
        b[len++] = '\n';
        struct iovec iov = {b, len};
        int rc = sg_conn_send(h->conn, &iov, 1);
        h->state = H1_TUNNEL;
        h->conn->sock.w.interactive = true; /* a relay: a full batch of these does not pause the loop */
        sg_conn_set_reading(h->conn, true);
        if (h->conn->sock.in != NULL)
            sg_loop_flush_later(&w->loop, &h->feed_d);
        return rc;
    }
    h->resp_chunked = !no_body && clen < 0 && !h->minor0;
    if (!no_body && clen < 0 && h->minor0)
        h->keep_alive = false; /* HTTP/1.0: the body ends at close */
    /* A request whose body we have not read to the end cannot leave the connection reusable, and a
     * draining gateway tells every client to go elsewhere for the next request. */
    if (h->state == H1_BODY || w->draining)
        h->keep_alive = false;

    k = snprintf(b, cap, "HTTP/1.1 %d %s\r\n", status, status_reason(status));
    len = (size_t)k;
    for (size_t i = 0; i < n; i++) {
        size_t need = hdrs[i].name.n + hdrs[i].value.n + 4;
        if (len + need + 64 > cap)
            return -E2BIG;
        memcpy(b + len, hdrs[i].name.p, hdrs[i].name.n);
        len += hdrs[i].name.n;
        b[len++] = ':';
        b[len++] = ' ';
        memcpy(b + len, hdrs[i].value.p, hdrs[i].value.n);
        len += hdrs[i].value.n;
        b[len++] = '\r';
        b[len++] = '\n';
    }
    if (clen >= 0 && !(status == 204 || status == 304 || (status >= 100 && status < 200)))
        len += (size_t)snprintf(b + len, cap - len, "Content-Length: %lld\r\n", (long long)clen);
    else if (h->resp_chunked)
        len += (size_t)snprintf(b + len, cap - len, "Transfer-Encoding: chunked\r\n");
    if (!h->keep_alive)
        len += (size_t)snprintf(b + len, cap - len, "Connection: close\r\n");
    else if (h->minor0)
        len += (size_t)snprintf(b + len, cap - len, "Connection: keep-alive\r\n");
    b[len++] = '\r';
    b[len++] = '\n';
    struct iovec iov = {b, len};
    return sg_conn_send(h->conn, &iov, 1);
}

static int op_send_body(void *down, const char *p, size_t n)
{
    sg_h1_t *h = down;
    if (n == 0 || h->resp_no_body)
        return 0;
    if (!h->resp_chunked) {
        struct iovec iov = {(void *)p, n};
        return sg_conn_send(h->conn, &iov, 1);
    }
    char line[24];
    size_t ll = sg_h1_chunk_head(line, n);
    struct iovec iov[3] = {{line, ll}, {(void *)p, n}, {"\r\n", 2}};
    return sg_conn_send(h->conn, iov, 3);
}

/* A shared stream's event, by reference: framed as a chunk once for every HTTP/1.1 subscriber. */
static int op_send_shared(void *down, sg_rbuf_t *ev, sg_rbuf_t **h1_chunk)
{
    sg_h1_t *h = down;
    if (ev->len == 0 || h->resp_no_body)
        return 0;
    if (!h->resp_chunked)
        return sg_conn_send_ref(h->conn, ev);
    if (*h1_chunk == NULL) {
        char line[24];
        size_t ll = sg_h1_chunk_head(line, ev->len);
        sg_rbuf_t *c = sg_rbuf_new(NULL, ll + ev->len + 2);
        if (c == NULL)
            return -ENOMEM;
        memcpy(c->data, line, ll);
        memcpy(c->data + ll, ev->data, ev->len);
        memcpy(c->data + ll + ev->len, "\r\n", 2);
        *h1_chunk = c;
    }
    return sg_conn_send_ref(h->conn, *h1_chunk);
}

static int op_send_end(void *down)
{
    sg_h1_t *h = down;
    if (h->resp_chunked && !h->resp_no_body) {
        struct iovec iov = {"0\r\n\r\n", 5};
        return sg_conn_send(h->conn, &iov, 1);
    }
    return 0;
}

static void op_abort(void *down)
{
    sg_h1_t *h = down;
    /* What was relayed goes out, then the connection closes without a terminating chunk: the client sees
     * an incomplete response, never a faked complete one. */
    h->keep_alive = false;
    h->state = H1_DONE;
    sg_conn_close_after_flush(h->conn);
}

static void op_resume_body(void *down)
{
    sg_h1_t *h = down;
    if ((h->state != H1_BODY && h->state != H1_TUNNEL) || !h->paused)
        return;
    h->paused = false;
    if (h->state == H1_TUNNEL) {
        feed_tunnel(h);
        if (h->state == H1_TUNNEL && !h->paused && !h->tunnel_eof && !h->conn->closed)
            sg_conn_set_reading(h->conn, true);
        return;
    }
    /* Bytes may wait in the buffer already; process them before reading more. */
    h1_process(h);
    if (h->state == H1_BODY && !h->paused && !h->conn->closed)
        sg_conn_set_reading(h->conn, true);
}

static void finish_response(sg_h1_t *h, bool ok)
{
    sg_conn_t *c = h->conn;

    if (c->closed)
        return;
    if (!ok || !h->keep_alive || h->state != H1_WAIT || c->worker->draining) {
        h->state = H1_DONE;
        sg_conn_close_after_flush(c);
        return;
    }
    /* Next request: pipelined bytes may already be buffered. */
    h->state = H1_IDLE;
    h->resp_started = false;
    arm_timer(h, c->worker->settings->idle_timeout_ms);
    sg_conn_set_reading(c, true);
    if (c->sock.in != NULL)
        h1_process(h);
}

static void op_detach(void *down, bool ok)
{
    sg_h1_t *h = down;

    h->stream = NULL;
    if (h->starting) {
        h->pending_detach = ok ? 1 : -1;
        return;
    }
    finish_response(h, ok);
}

static const sg_stream_ops_t h1_ops = {
    .send_head = op_send_head,
    .send_body = op_send_body,
    .send_shared = op_send_shared,
    .send_end = op_send_end,
    .abort = op_abort,
    .resume_body = op_resume_body,
    .detach = op_detach,
};

/* ---- request side ---- */

static int status_for(int err)
{
    switch (err) {
    case SG_ETOOLONG: return 414;
    case SG_EHDRTOOBIG: return 431;
    case SG_ENOTIMPL: return 501;
    default: return 400;
    }
}

static const char *body_for(int status)
{
    switch (status) {
    case 414: return "ssegate: request line too long\n";
    case 431: return "ssegate: request header fields too large\n";
    case 501: return "ssegate: transfer coding not implemented\n";
    case 408: return "ssegate: request header timeout\n";
    default: return "ssegate: bad request\n";
    }
}

/* Checks the chunked body bytes already buffered, so a bad chunk size is refused before anything is sent
 * upstream. */
static bool chunked_prefix_ok(const sg_h1_chunked_t *dec, const char *p, size_t n)
{
    sg_h1_chunked_t d = *dec;
    while (n > 0) {
        size_t used = 0;
        sg_str_t data;
        int rc = sg_h1_chunked_decode(&d, p, n, &used, &data);
        if (rc < 0)
            return false;
        if (rc == 2)
            return true;
        p += used;
        n -= used;
        if (rc == 0 && used == 0)
            break;
    }
    return true;
}

static void start_request(sg_h1_t *h, sg_h1_msg_t *msg)
{
    sg_conn_t *c = h->conn;
    bool has_body = msg->body == SG_H1_BODY_LENGTH ? msg->content_length > 0 : msg->body == SG_H1_BODY_CHUNKED;
    size_t head_len = msg->head_len;

    h->keep_alive = msg->keep_alive;
    h->minor0 = msg->minor_version == 0;
    h->chunked_body = msg->body == SG_H1_BODY_CHUNKED;
    h->body_left = msg->body == SG_H1_BODY_LENGTH ? msg->content_length : 0;
    sg_h1_chunked_init(&h->dec);
    if (h->chunked_body) {
        sg_chunk_t *in = c->sock.in;
        if (!chunked_prefix_ok(&h->dec, in->data + in->rpos + head_len, sg_chunk_len(in) - head_len)) {
            h1_fail(h, 400, "ssegate: bad chunked body\n");
            return;
        }
    }
    sg_timer_cancel(&c->worker->loop.wheel, &c->timer);
    h->first = false;
    h->state = has_body ? H1_BODY : H1_WAIT;
    if (has_body && msg->expect_continue) {
        struct iovec iov = {"HTTP/1.1 100 Continue\r\n\r\n", 25};
        if (sg_conn_send(c, &iov, 1) == -ENOMEM) {
            sg_conn_close(c);
            return;
        }
    }
    sg_down_info_t info = {.conn = c, .tls = c->scheme == SG_PROTO_HTTPS,
                           .proto = h->minor0 ? "HTTP/1.0" : "HTTP/1.1",
                           .client_cert_state = c->client_cert_state, .client_cert = c->client_cert};
    /* The head's bytes stay in the buffer (msg points into it) until the stream has copied what it needs. */
    h->starting = true;
    h->pending_detach = 0;
    sg_stream_t *s = c->worker->handler->start(c->worker, &h1_ops, h, &info, msg, has_body,
                                    h->chunked_body ? -1 : (int64_t)h->body_left);
    h->starting = false;
    if (c->closed)
        return;
    sg_sock_consume(&c->sock, head_len);
    if (h->pending_detach != 0) {
        /* Answered at once (404, 500, redirect, ...). */
        finish_response(h, h->pending_detach > 0);
        return;
    }
    if (s == NULL) {
        h1_fail(h, 503, "ssegate: out of memory\n");
        return;
    }
    h->stream = s;
    if (!has_body)
        sg_conn_set_reading(c, false);
}

/* Feeds buffered body bytes to the stream. */
static void feed_body(sg_h1_t *h)
{
    sg_conn_t *c = h->conn;

    while (h->state == H1_BODY && !h->paused && c->sock.in != NULL && !c->closed) {
        sg_chunk_t *in = c->sock.in;
        const char *p = in->data + in->rpos;
        size_t avail = sg_chunk_len(in);
        int rc;

        if (!h->chunked_body) {
            size_t k = (size_t)SG_MIN((uint64_t)avail, h->body_left);
            h->body_left -= k;
            rc = h->stream ? h->conn->worker->handler->req_body(h->stream, p, k) : 0;
            sg_sock_consume(&c->sock, k);
            if (h->body_left == 0) {
                h->state = H1_WAIT;
                sg_conn_set_reading(c, false);
                if (h->stream)
                    h->conn->worker->handler->req_end(h->stream);
                return;
            }
        } else {
            size_t used = 0;
            sg_str_t data = {0};
            int d = sg_h1_chunked_decode(&h->dec, p, avail, &used, &data);
            if (d < 0) {
                if (h->stream && h->resp_started) {
                    /* Too late for a 400: cut both sides. */
                    h->state = H1_DONE;
                    sg_conn_close(c);
                    return;
                }
                if (h->stream) {
                    h->conn->worker->handler->down_closed(h->stream);
                    h->stream = NULL;
                }
                h1_fail(h, 400, "ssegate: bad chunked body\n");
                return;
            }
            rc = 0;
            if (d == 1 && h->stream)
                rc = h->conn->worker->handler->req_body(h->stream, data.p, data.n);
            sg_sock_consume(&c->sock, used);
            if (d == 2) {
                h->state = H1_WAIT;
                sg_conn_set_reading(c, false);
                if (h->stream)
                    h->conn->worker->handler->req_end(h->stream);
                return;
            }
            if (d == 0 && used == 0)
                return;
        }
        if (rc == SG_EAGAIN) {
            h->paused = true;
            sg_conn_set_reading(c, false);
            return;
        }
        if (rc < 0) {
            h->state = H1_DONE;
            sg_conn_close(c);
            return;
        }
    }
}

/* Tunnel bytes from the client (after a 101) go to the stream as they come, until it says SG_EAGAIN. */
static void feed_tunnel(sg_h1_t *h)
{
    sg_conn_t *c = h->conn;
    while (h->state == H1_TUNNEL && !h->paused && c->sock.in != NULL && !c->closed && h->stream != NULL) {
        sg_chunk_t *in = c->sock.in;
        size_t n = sg_chunk_len(in);
        int rc = c->worker->handler->req_body(h->stream, in->data + in->rpos, n);
        if (c->closed)
            return;
        sg_sock_consume(&c->sock, n);
        if (rc == SG_EAGAIN) {
            h->paused = true;
            sg_conn_set_reading(c, false);
            return;
        }
        if (rc < 0) {
            h->state = H1_DONE;
            sg_conn_close(c);
            return;
        }
    }
}

static void feed_cb(sg_deferred_t *d)
{
    sg_h1_t *h = SG_CONTAINER_OF(d, sg_h1_t, feed_d);
    if (h->state == H1_TUNNEL && !h->conn->closed)
        feed_tunnel(h);
}

/* Parses heads and feeds bodies from what is buffered. */
static void h1_process(sg_h1_t *h)
{
    sg_conn_t *c = h->conn;

    for (;;) {
        if (c->closed || h->state == H1_DONE || h->state == H1_WAIT)
            return;
        if (h->state == H1_TUNNEL) {
            feed_tunnel(h);
            return;
        }
        if (h->state == H1_BODY) {
            feed_body(h);
            return;
        }
        sg_chunk_t *in = c->sock.in;
        if (in == NULL || sg_chunk_len(in) == 0)
            return;
        if (h->state == H1_IDLE) {
            h->state = H1_HEAD;
            arm_timer(h, c->worker->settings->header_timeout_ms);
        }
        if (h->first) {
            /* h2c with prior knowledge: the connection starts with the HTTP/2 preface. */
            size_t n = SG_MIN(sg_chunk_len(in), (size_t)SG_H2_PREFACE_LEN);
            if (memcmp(in->data + in->rpos, SG_H2_PREFACE, n) == 0) {
                if (n < SG_H2_PREFACE_LEN)
                    return;
                h1_close(c);
                if (sg_h2_attach(c) < 0)
                    sg_conn_close(c);
                return;
            }
        }
        /* The parser rescans from the start: with a head trickling in, parse again only when the new
         * bytes hold a line end or cross a limit, so a slow sender costs O(n), not O(n^2). */
        size_t len = sg_chunk_len(in);
        if (h->scanned > 0 && h->scanned < len && len < SG_CHUNK_SIZE &&
            memchr(in->data + in->rpos + h->scanned, '\n', len - h->scanned) == NULL &&
            !(h->scanned <= SG_H1_MAX_REQLINE && len > SG_H1_MAX_REQLINE) &&
            !(h->scanned <= SG_H1_MAX_HEAD_BYTES && len > SG_H1_MAX_HEAD_BYTES)) {
            h->scanned = len;
            return;
        }
        h->scanned = len;
        sg_h1_msg_t *msg = c->worker->msg;
        int rc = sg_h1parse_request(in->data + in->rpos, sg_chunk_len(in), msg);
        if (rc == SG_EINCOMPLETE) {
            if (sg_chunk_len(in) >= SG_CHUNK_SIZE)
                h1_fail(h, 431, body_for(431));
            return;
        }
        if (rc < 0) {
            int st = status_for(rc);
            h1_fail(h, st, body_for(st));
            return;
        }
        h->scanned = 0;
        start_request(h, msg);
        if (h->state == H1_WAIT || c->closed)
            return;
    }
}

static void h1_readable(sg_conn_t *c)
{
    sg_h1_t *h = c->proto_data;

    for (int round = 0; round < 4; round++) {
        if (c->closed || !c->sock.reading)
            return;
        ssize_t n = sg_conn_read(c);
        if (n == SG_EAGAIN)
            return;
        if (n == -ENOBUFS) {
            /* Buffer full while a head is incomplete: the parser's limits decide (431/414). */
            h1_process(h);
            return;
        }
        if (n == 0 && h->state == H1_TUNNEL && h->stream != NULL && !h->tunnel_eof) {
            /* The client's half close: the backend gets it once the queue is out, and may still answer. */
            h->tunnel_eof = true;
            c->sock.reading = false;
            c->sock.rdhup = false;
            if (sg_sock_update(&c->sock) < 0) {
                sg_conn_close(c);
                return;
            }
            c->worker->handler->req_end(h->stream);
            return;
        }
        if (n <= 0) {
            /* EOF or error. A half-sent head is simply dropped; a request in flight is aborted. */
            if (h->stream) {
                h->conn->worker->handler->down_closed(h->stream);
                h->stream = NULL;
            }
            sg_conn_close(c);
            return;
        }
        h1_process(h);
        if (c->proto != &h1_proto)
            return; /* handed over to HTTP/2: h is gone (its memory may already be h2's) */
        if ((size_t)n < SG_CHUNK_SIZE / 2)
            return;
    }
}

static void h1_hup(sg_conn_t *c)
{
    sg_h1_t *h = c->proto_data;
    if (h->stream) {
        h->conn->worker->handler->down_closed(h->stream);
        h->stream = NULL;
    }
    sg_conn_close(c);
}

static void h1_drained(sg_conn_t *c)
{
    sg_h1_t *h = c->proto_data;
    if (h->stream)
        h->conn->worker->handler->down_writable(h->stream);
}

static void h1_timeout(sg_conn_t *c)
{
    sg_h1_t *h = c->proto_data;
    if (h->state == H1_HEAD) {
        h1_fail(h, 408, body_for(408));
        return;
    }
    /* Idle keep-alive connection (or one that never sent a byte): close quietly. */
    sg_conn_close(c);
}

static void h1_close(sg_conn_t *c)
{
    sg_h1_t *h = c->proto_data;
    if (h == NULL)
        return;
    sg_loop_cancel(&h->feed_d);
    if (h->stream) {
        h->conn->worker->handler->down_closed(h->stream);
        h->stream = NULL;
    }
    free(h);
    c->proto_data = NULL;
}

static void h1_drain(sg_conn_t *c)
{
    sg_h1_t *h = c->proto_data;
    if (h->state == H1_IDLE && c->sock.out.bytes == 0) {
        sg_conn_close(c);
        return;
    }
    /* A response under way ends with Connection: close (or closes after it); an SSE stream is closed at
     * an event boundary at a random moment of the drain's spread window. */
    h->keep_alive = false;
    if (h->stream)
        h->conn->worker->handler->drain(h->stream, sg_worker_drain_moment(c->worker));
}

static const sg_conn_proto_t h1_proto = {
    .on_readable = h1_readable,
    .on_drained = h1_drained,
    .on_hup = h1_hup,
    .on_timeout = h1_timeout,
    .on_close = h1_close,
    .on_drain = h1_drain,
};

int sg_h1_attach(sg_conn_t *c)
{
    sg_h1_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return -ENOMEM;
    h->conn = c;
    h->state = H1_IDLE;
    h->first = true;
    sg_deferred_init(&h->feed_d, feed_cb);
    c->proto = &h1_proto;
    c->proto_data = h;
    /* Until the first byte, the header timeout bounds how long a silent connection may sit here. */
    arm_timer(h, c->worker->settings->header_timeout_ms);
    return 0;
}
