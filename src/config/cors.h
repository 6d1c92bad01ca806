/* cors.h: the HTTPRoute CORS filter's decisions: origin syntax and matching, the answer to a preflight and the
 * headers of an actual response. Pure: no I/O, no allocation; every returned slice points into the filter (the
 * generation), the request, or static text. */
#ifndef SG_CORS_H
#define SG_CORS_H

#include "config/config.h"
#include "codec/h1parse.h"

/* Most headers sg_cors_preflight or sg_cors_actual add. */
#define SG_CORS_MAX_HEADERS 6

/*
 * Parses "scheme://host[:port]" with nothing after it. pattern: an allowOrigins entry, whose scheme must be http or
 * https and whose host may be "*" (any host) or start with "*." (any number of labels in front of the rest);
 * otherwise a request's Origin, whose host has no wildcard (an opaque origin such as "null" does not parse).
 * Returns 0 with *out filled (slices into s), or -EINVAL with *why set to a static sentence.
 */
int sg_cors_origin_parse(sg_str_t s, bool pattern, sg_cors_origin_t *out, const char **why);

/* Whether the request origin o fits the pattern p (both parsed): scheme and port equal, host equal or, for a
 * wildcard, ending with what follows the "*" after at least one more character. ASCII case-insensitive. */
bool sg_cors_origin_match(const sg_cors_origin_t *p, const sg_cors_origin_t *o);

/* Whether a request's Origin header value is allowed by c. A value that is not a serialized origin never is. */
bool sg_cors_origin_allowed(const sg_cors_t *c, sg_str_t origin);

/* A preflight: an OPTIONS request that carries Origin and Access-Control-Request-Method. */
bool sg_cors_is_preflight(const sg_h1_msg_t *req);

/* The value of the first header `name` of req; {NULL, 0} when absent. */
sg_str_t sg_cors_header(const sg_h1_msg_t *req, const char *name);

/*
 * The answer to a preflight req under c: writes at most SG_CORS_MAX_HEADERS headers to out and their count to *n.
 * Returns true when the origin, the requested method and every requested header are allowed (then out has
 * Access-Control-Allow-Origin and the rest); false otherwise, when out has only Vary.
 */
bool sg_cors_preflight(const sg_cors_t *c, const sg_h1_msg_t *req, sg_h1_header_t *out, size_t *n);

/* The CORS headers of an actual response to a request with this Origin value ({NULL, 0}: none): Vary: Origin
 * always, Access-Control-Allow-Origin (the origin itself), -Credentials and -Expose-Headers when it is allowed.
 * Writes at most SG_CORS_MAX_HEADERS headers; returns their count. */
size_t sg_cors_actual(const sg_cors_t *c, sg_str_t origin, sg_h1_header_t *out);

/* The response headers the filter owns: a backend's own Access-Control-Allow-*, -Expose-Headers and -Max-Age are
 * dropped on a route with the filter, so the browser sees one policy, the route's. */
bool sg_cors_owns_header(sg_str_t name);

#endif
