/* route.h: HTTPRoute matching. Routes are compiled at load into per-listener tables sorted by Gateway API
 * precedence; a match is a walk over that table. Pure: no I/O, no allocation per match. */
#ifndef SG_ROUTE_H
#define SG_ROUTE_H

#include "config/config.h"
#include "codec/h1parse.h"

typedef struct sg_route_req {
    sg_str_t method;
    sg_str_t host;             /* Host header or :authority as received; a port is ignored */
    sg_str_t path;             /* path only, no query */
    sg_str_t query;            /* after '?', without it; empty if none */
    const sg_h1_header_t *headers;
    size_t nheaders;
    /* Per-thread regex scratch from sg_route_scratch_new(); required only when the config has
     * RegularExpression matches (without it such a match attempt returns -EINVAL). Tables are shared
     * by threads, so regex match data cannot live in them. */
    void *scratch;
} sg_route_req_t;

typedef struct sg_route_match {
    const sg_listener_t *listener;
    const sg_route_t *route;
    const sg_rule_t *rule;
    size_t prefix_len;         /* length of the matched path prefix (PathPrefix/Exact), for ReplacePrefixMatch */
} sg_route_match_t;

/*
 * Chooses the listener on `port` whose hostname fits req->host best (exact over wildcard over none),
 * then the first rule in precedence order whose match fits. Returns 0 with *out filled, or -ENOENT
 * when no listener or rule matches (HTTP 404).
 */
int sg_route_match(const sg_config_t *cfg, uint16_t port, const sg_route_req_t *req, sg_route_match_t *out);

/* Per-worker regex scratch (PCRE2 match data + match limits). Owned by the caller; free with
 * sg_route_scratch_free (accepts NULL). Returns NULL on allocation failure. */
void *sg_route_scratch_new(void);
void sg_route_scratch_free(void *scratch);

/* Builds listener->table for every listener from cfg->routes; called by the config loader.
 * Problems are printed to errs as "FILE:LINE:COL: message". Returns 0, -EINVAL or -ENOMEM. */
int sg_route_compile(sg_config_t *cfg, FILE *errs);

/* Whether parentRef p of route rt attaches to listener l: p names l (Gateway, sectionName, port), l admits routes of
 * rt's namespace, and one of rt's hostnames intersects l's (or either has none). Gateway API status counts it. */
bool sg_route_parent_attaches(const sg_route_t *rt, const sg_parent_ref_t *p, const sg_listener_t *l);

/* A copy of table t, compiled for config `from`, for config `to`, whose routes are copies of from's: as many, in the
 * same order, each with as many rules in the same order (config_patch.c). Its entries point to to's routes and rules;
 * matches, paths and hostnames are shared with from, which must outlive the copy. 0 and *out, -EINVAL when the
 * routes do not correspond, or -ENOMEM. Freed with sg_route_table_free. */
int sg_route_table_rebase(const sg_route_table_t *t, const sg_config_t *from, const sg_config_t *to,
                          sg_route_table_t **out);

/* Frees a table built by sg_route_compile. Accepts NULL. */
void sg_route_table_free(sg_route_table_t *t);

#endif
