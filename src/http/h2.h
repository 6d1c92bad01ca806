/* h2.h: the HTTP/2 server side on a downstream connection (nghttp2 through mem_recv / mem_send). */
#ifndef SG_H2_H
#define SG_H2_H

#include "http/conn.h"

#define SG_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define SG_H2_PREFACE_LEN 24

/* Defaults for the sg_settings_t fields left at 0. */
#define SG_H2_DEFAULT_MAX_STREAMS 256
#define SG_H2_DEFAULT_STREAM_WINDOW (256 * 1024)
#define SG_H2_DEFAULT_CONN_WINDOW (1024 * 1024)
#define SG_H2_DEFAULT_CONN_BUFFER (1024 * 1024) /* response bytes queued across a connection's streams */
#define SG_H2_MAX_HEADER_LIST (16 * 1024) /* same budget as an HTTP/1.1 header section */

/*
 * Makes c speak HTTP/2 as a server: sends SETTINGS, then processes the bytes already buffered in
 * c->sock.in (an h2c preface detected by h1.c, or nothing after a TLS handshake). c's previous protocol
 * state must already be gone. Returns 0, or -ENOMEM (c is left for the caller to close).
 */
int sg_h2_attach(sg_conn_t *c);

/* True when c speaks HTTP/2. */
bool sg_h2_is(const sg_conn_t *c);

/*
 * Graceful shutdown for draining. final = false: GOAWAY with the maximum stream id (a notice: new streams
 * are still accepted for one round trip). final = true: GOAWAY with the last stream id processed; the
 * connection closes once its open streams are done. Returns 0 or -errno.
 */
int sg_h2_goaway(sg_conn_t *c, bool final);

/* Open streams on an HTTP/2 connection (0 for other connections). */
size_t sg_h2_nstreams(const sg_conn_t *c);

#endif
