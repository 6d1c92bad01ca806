/* key.h: which requests may share an SSE stream, and their sharing key. Pure: no I/O. */
#ifndef SG_FANOUT_KEY_H
#define SG_FANOUT_KEY_H

#include "codec/h1parse.h"
#include "config/config.h"

/* A growable byte buffer for a key; the caller frees p. */
typedef struct sg_fkey {
    char *p;
    size_t n, cap;
    bool oom;
} sg_fkey_t;

/*
 * True when a GET for a rule whose SSEPolicy turns sharing on may share: no body, no upgrade (WebSocket), an
 * origin-form target, and no credentials (Authorization, Cookie, a client certificate: client_cert) unless the
 * policy says the stream is public.
 */
bool sg_fanout_may_share(const sg_rule_t *rule, const sg_h1_msg_t *msg, bool has_body, bool client_cert);

/*
 * Builds the sharing key of msg into k: the generation and the rule (by identity), the Host, the request target
 * (path and query, byte for byte), each header the policy names (every value, in order; absent and empty differ),
 * and the Origin when the rule has a CORS filter (the response head depends on it). Last-Event-ID is never part
 * of it. k->oom is set when memory ran out. Returns the key's hash (FNV-1a).
 */
uint64_t sg_fanout_key(sg_fkey_t *k, const void *generation, const sg_rule_t *rule, const sg_h1_msg_t *msg);

#endif
