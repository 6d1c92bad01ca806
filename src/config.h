/* config.h: Gateway API YAML (Gateway, HTTPRoute, RoutePolicy, Service, EndpointSlice) -> an immutable,
 * refcounted configuration generation. */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

#include "sg.h"

typedef struct sg_kv {
    char *name;
    char *value;
} sg_kv_t;

/* RequestHeaderModifier / ResponseHeaderModifier. */
typedef struct sg_header_mod {
    sg_kv_t *set;
    size_t nset;
    sg_kv_t *add;
    size_t nadd;
    char **remove;
    size_t nremove;
} sg_header_mod_t;

typedef enum sg_pathmod {
    SG_PATHMOD_NONE = 0,
    SG_PATHMOD_FULL,   /* ReplaceFullPath */
    SG_PATHMOD_PREFIX, /* ReplacePrefixMatch */
} sg_pathmod_t;

typedef struct sg_redirect {
    char *scheme;       /* NULL: keep the request's */
    char *hostname;     /* NULL: keep the request's */
    sg_pathmod_t path_kind;
    char *path;         /* replacement for path_kind != NONE */
    int port;           /* 0: unset (the spec's defaults apply) */
    int status;         /* 301, 302 (default), 303, 307, 308 */
} sg_redirect_t;

typedef struct sg_rewrite {
    char *hostname;     /* NULL: keep */
    sg_pathmod_t path_kind;
    char *path;
} sg_rewrite_t;

/* Filters of a rule or of a backendRef; each NULL when absent. */
typedef struct sg_filters {
    sg_header_mod_t *req_headers;
    sg_header_mod_t *resp_headers;
    sg_redirect_t *redirect;
    sg_rewrite_t *rewrite;
} sg_filters_t;

typedef struct sg_endpoint {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char label[64];             /* "ip:port" (IPv6 as [ip]:port), for logs */
} sg_endpoint_t;

typedef struct sg_backend {
    char *name;                 /* Service name of the backendRef */
    char *ns;
    uint16_t port;              /* backendRef port (Service port) */
    uint32_t weight;            /* default 1; 0 is never chosen */
    sg_endpoint_t *endpoints;   /* resolved addresses; nendpoints == 0: unresolvable */
    size_t nendpoints;
    sg_filters_t filters;       /* backendRef-level filters */
} sg_backend_t;

typedef enum sg_match_type {
    SG_MATCH_EXACT = 0,
    SG_MATCH_PREFIX,   /* paths only: segment-wise prefix */
    SG_MATCH_REGEX,    /* PCRE2, compiled at load */
} sg_match_type_t;

typedef struct sg_value_match {
    sg_match_type_t type;
    char *name;                 /* header name (matched case-insensitively) or query parameter name */
    char *value;
    void *re;                   /* pcre2_code * when type == SG_MATCH_REGEX */
} sg_value_match_t;

/* One entry of a rule's `matches`: all conditions ANDed. Entries of a rule are ORed. */
typedef struct sg_match {
    sg_match_type_t path_type;  /* default PathPrefix "/" */
    char *path;
    void *path_re;              /* pcre2_code * for RegularExpression */
    char *method;               /* NULL: any */
    sg_value_match_t *headers;
    size_t nheaders;
    sg_value_match_t *query;
    size_t nquery;
    size_t index;               /* position in its rule's matches */
} sg_match_t;

typedef struct sg_parent_ref {
    char *name;                 /* Gateway name */
    char *ns;
    char *section;              /* listener name, or NULL */
    uint16_t port;              /* 0: any */
    int line, col;              /* position, for attachment errors */
} sg_parent_ref_t;

#define SG_TIMEOUT_UNSET (-1)   /* no explicit value: the built-in default applies */

typedef struct sg_route sg_route_t;

/* HTTPRoute rule `retry` (experimental channel). attempts = retries after the first try. */
typedef struct sg_retry {
    int *codes;                 /* HTTP status codes (400..599) that trigger a retry */
    size_t ncodes;
    int attempts;               /* 0: no retry */
    int64_t backoff_ms;         /* SG_TIMEOUT_UNSET when not given */
} sg_retry_t;

typedef struct sg_rule {
    char *name;                 /* optional rule name, or NULL */
    size_t index;               /* position in its route */
    sg_match_t *matches;        /* nmatches == 0 means one match: PathPrefix "/" */
    size_t nmatches;
    sg_backend_t *backends;
    size_t nbackends;
    uint64_t total_weight;      /* sum of weights of backends with endpoints */
    sg_filters_t filters;
    /* Effective timeouts in ms after precedence (rule timeouts > RoutePolicy routeTimeout > unset):
     * SG_TIMEOUT_UNSET, 0 (none) or > 0. */
    int64_t request_timeout_ms;
    int64_t backend_timeout_ms;
    const sg_route_t *route;
    sg_retry_t *retry;          /* NULL: no retry block */
    int line, col;              /* position of the rule */
} sg_rule_t;

struct sg_route {
    char *ns;
    char *name;
    size_t order;               /* document order, stands for creation time */
    char **hostnames;
    size_t nhostnames;
    sg_parent_ref_t *parents;
    size_t nparents;
    sg_rule_t *rules;
    size_t nrules;
    int64_t policy_timeout_ms;  /* RoutePolicy routeTimeout, or SG_TIMEOUT_UNSET */
    const char *file;
    int line, col;
};

typedef enum sg_proto {
    SG_PROTO_HTTP = 0,
    SG_PROTO_HTTPS,
} sg_proto_t;

typedef struct sg_route_table sg_route_table_t; /* opaque, owned by route.c */

typedef struct sg_listener {
    char *gateway;              /* Gateway name */
    char *ns;
    char *name;                 /* listener (section) name */
    uint16_t port;
    sg_proto_t protocol;
    char *hostname;             /* NULL: any */
    sg_route_table_t *table;    /* compiled routes attached to this listener */
    char **cert_refs;           /* HTTPS: tls.certificateRefs[].name, as "ns/name" */
    size_t ncert_refs;
    const char *file;
    int line, col;              /* position of the listener */
} sg_listener_t;

/* One socket to open: all listeners sharing an address and port. */
typedef struct sg_bind {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint16_t port;
    sg_proto_t protocol;
    char label[64];
} sg_bind_t;

typedef struct sg_config {
    atomic_int refs;
    uint64_t generation;        /* set by the loader's caller */
    sg_listener_t *listeners;
    size_t nlisteners;
    sg_bind_t *binds;
    size_t nbinds;
    sg_route_t *routes;
    size_t nroutes;
    void *priv;                 /* loader's private data (arena, YAML documents) */
} sg_config_t;

/*
 * Loads a multi-document YAML file. Each problem is printed to errs as one line
 * "FILE:LINE:COL: message"; unknown kinds give a warning line "FILE:LINE:COL: warning: ..." and are
 * skipped. Returns 0 and *out (refs = 1) on success, -EINVAL when any error was reported, -errno when
 * the file cannot be read, -ENOMEM.
 */
int sg_config_load(const char *path, FILE *errs, sg_config_t **out);

/* Same, from a buffer; name is used in messages. */
int sg_config_load_string(const char *name, const char *yaml, size_t len, FILE *errs, sg_config_t **out);

/* Flags for sg_config_load_ex. */
#define SG_CONFIG_NO_DNS 1u /* backendRef names resolve only as numeric addresses (tests, fuzzing, dry runs) */

/* Same as sg_config_load_string, with SG_CONFIG_* flags. */
int sg_config_load_ex(const char *name, const char *yaml, size_t len, unsigned flags, FILE *errs,
                      sg_config_t **out);

void sg_config_ref(sg_config_t *cfg);
/* Drops a reference; the last one frees the whole generation. Accepts NULL. */
void sg_config_unref(sg_config_t *cfg);

/* Parses a Gateway API duration ("1h2m3s", "500ms", "0s") into ms. Returns 0 or -EINVAL. */
int sg_config_parse_duration(const char *s, int64_t *ms);

#endif
