/* h2req.h: an HTTP/1.1 request head, as proxy.c writes it for a backend, as the fields of an HTTP/2 request
 * (RFC 9113 8.3.1, 8.2.2): pseudo-fields first, host as :authority, connection-specific fields dropped, te only
 * as "trailers", names lowercased. Pure: no I/O, no allocation. */
#ifndef SG_H2REQ_H
#define SG_H2REQ_H

#include "codec/h1parse.h"

typedef struct sg_h2req {
    sg_h1_header_t *fields;     /* the caller's array of cap entries: :method, :scheme, [:authority,] :path, then */
    size_t cap;                 /* the fields; slices point into the head and into `lower` */
    size_t nfields;
    sg_h1_body_t body;          /* SG_H1_BODY_NONE, _LENGTH (a non-zero content-length) or _CHUNKED */
    const char *error;          /* after SG_EBADMSG: why, a static string */
} sg_h2req_t;

/*
 * Translates the head at head[0..len) (the request line, fields, CRLF CRLF; bytes after it are the body's). Names
 * are lowercased into lower, which must hold len bytes. https picks :scheme. Returns the head's length,
 * SG_EINCOMPLETE (no CRLF CRLF yet), SG_EBADMSG (a line it cannot split, or CONNECT, which is not a request HTTP/2
 * can carry this way: r->error says why) or SG_EHDRTOOBIG (more fields than r->cap).
 */
int sg_h2req_from_h1(const char *head, size_t len, bool https, char *lower, sg_h2req_t *r);

#endif
