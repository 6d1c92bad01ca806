/* h2probe.h: the HTTP/2 side of an active health probe (health.c): the bytes of one GET (preface, SETTINGS,
 * HEADERS) and the :status read back from what the backend answers, through an nghttp2 client session. */
#ifndef SG_H2PROBE_H
#define SG_H2PROBE_H

#include "core/sg.h"

typedef struct sg_h2probe sg_h2probe_t;

/* A probe for GET path with :authority host; *req and *len (owned by the probe) are the bytes to send. Returns NULL
 * when out of memory. */
sg_h2probe_t *sg_h2probe_new(const char *path, const char *host, bool https, const char **req, size_t *len);
/* A grpc.health.v1.Health/Check call for service ("" for the server) with :authority host; as sg_h2probe_new. */
sg_h2probe_t *sg_h2probe_new_grpc(const char *service, const char *host, bool https, const char **req, size_t *len);
/* After feed returned > 0 on a gRPC probe: 1 when the call ended with grpc-status 0 and SERVING, else 0; why says
 * what was seen ("gRPC health: NOT_SERVING"). */
int sg_h2probe_grpc_result(const sg_h2probe_t *p, char *why, size_t cap);
/* Feeds bytes read from the backend. Returns the response's status (> 0) once its head is in (a gRPC probe: once
 * the call has ended), SG_EINCOMPLETE, or -EPROTO (not HTTP/2, or the stream was reset). */
int sg_h2probe_feed(sg_h2probe_t *p, const char *buf, size_t len);
/* Accepts NULL. */
void sg_h2probe_free(sg_h2probe_t *p);

#endif
