/* reqhead.h: the pieces of an upstream request head (proxy.c builds the head with them). Pure. */
#ifndef SG_REQHEAD_H
#define SG_REQHEAD_H

#include <stdbool.h>
#include <stddef.h>

#include "codec/h1parse.h"
#include "config/config.h"
#include "core/sg.h"

/* A bounded output buffer: bytes that do not fit set `overflow` and are dropped. */
typedef struct sg_hbuf {
    char *p;
    size_t n, cap;
    bool overflow;
} sg_hbuf_t;

void sg_hbuf_put(sg_hbuf_t *b, const char *p, size_t n);
void sg_hbuf_put_str(sg_hbuf_t *b, sg_str_t s);
/* "name: value\r\n". */
void sg_hbuf_put_header(sg_hbuf_t *b, sg_str_t name, sg_str_t value);

/* Hop-by-hop headers (RFC 9110 7.6.1) and the ones the proxy regenerates. */
bool sg_reqhead_hop_by_hop(sg_str_t name);
/* True when `name` is one of the comma-separated tokens of any Connection header of msg. */
bool sg_reqhead_in_connection(const sg_h1_msg_t *msg, sg_str_t name);
/* Whether a header modifier (NULL: none) drops an incoming header (removed, or replaced by a `set`). */
bool sg_reqhead_mod_drops(const sg_header_mod_t *m, sg_str_t name);
/* Writes the modifier's `set` and `add` headers (NULL: none). */
void sg_reqhead_mod_emit(sg_hbuf_t *b, const sg_header_mod_t *m);
/* Applies ReplaceFullPath / ReplacePrefixMatch to path (no query), writing into b. */
void sg_reqhead_put_path(sg_hbuf_t *b, sg_pathmod_t kind, const char *repl, sg_str_t path, size_t prefix_len);
/* The host of a Host header value, without its port ("[::1]" keeps its brackets). */
sg_str_t sg_reqhead_host_only(sg_str_t host);

#endif
