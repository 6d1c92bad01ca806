/* h2trail.h: HTTP/2 response trailers: the fields copied into one block of nghttp2 name/value pairs, held by the
 * stream until its last DATA frame is written (nghttp2 takes trailers from the data provider at EOF). */
#ifndef SG_H2TRAIL_H
#define SG_H2TRAIL_H

#include <nghttp2/nghttp2.h>

#include "codec/h1parse.h"

typedef struct sg_h2_trailers {
    size_t n;
    nghttp2_nv nv[];            /* names lowercased; names and values live in the same block, after the pairs */
} sg_h2_trailers_t;

/* Copies hdrs: names lowercased, pseudo-headers and connection-specific fields dropped (RFC 9113 8.1, 8.2.2).
 * The caller owns the block (free()). Returns NULL when out of memory. */
sg_h2_trailers_t *sg_h2_trailers_new(const sg_h1_header_t *hdrs, size_t n);

#endif
