/* tunnel.h: the tunnel mode of a stream: after a WebSocket switch (an HTTP/1.1 101, or the 200 to an HTTP/2
 * extended CONNECT), bytes go both ways between the client's stream and the upstream connection, with
 * back-pressure each way, frame boundaries tracked each way, an idle timeout, and a clean close (1001 Going
 * Away to both sides, each at a frame boundary) for drain and timeouts. proxy.c owns the stream and the upstream
 * exchange; it routes its callbacks here while the tunnel lives. */
#ifndef SG_TUNNEL_H
#define SG_TUNNEL_H

#include "http/stream.h"
#include "proxy/upclient.h"

typedef struct sg_tunnel sg_tunnel_t;

/* The tunnel is over (ok: it ended cleanly). The owner finishes the stream, which frees the tunnel; nothing of
 * the tunnel is touched after this call. */
typedef void (*sg_tunnel_end_fn)(void *ctx, bool ok);

/* Starts relaying. bytes_out counts bytes to the client (the access log's). Returns NULL when out of memory. */
sg_tunnel_t *sg_tunnel_new(sg_worker_t *w, const sg_stream_ops_t *ops, void *down, sg_upclient_t *up,
                           sg_tunnel_end_fn end, void *ctx, uint64_t *bytes_out);
void sg_tunnel_free(sg_tunnel_t *t);
/* Client bytes. Returns 0, SG_EAGAIN (taken; pause the client until resume_body) or -errno. */
int sg_tunnel_from_down(sg_tunnel_t *t, const char *p, size_t n);
/* The client sent its last byte (h1: EOF; h2: END_STREAM): the backend gets a FIN once the queue drains. */
void sg_tunnel_down_eof(sg_tunnel_t *t);
/* Backend bytes. */
void sg_tunnel_from_up(sg_tunnel_t *t, const char *p, size_t n);
/* The backend closed (ok) or failed: the tunnel ends. */
void sg_tunnel_up_closed(sg_tunnel_t *t, bool ok);
/* Closes with a close frame carrying code to each side, each at its next frame boundary (now, where it sits at
 * one), then ends once the backend closes or a short grace passes. */
void sg_tunnel_close(sg_tunnel_t *t, uint16_t code);

#endif
