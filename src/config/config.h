/* config.h: Gateway API YAML (Gateway, HTTPRoute, RoutePolicy, BackendLoadBalancingPolicy, HealthCheckPolicy,
 * Service, EndpointSlice) -> an immutable, refcounted configuration generation. */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/sg.h"

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

/* One origin of an HTTPRoute CORS filter's allowOrigins, or of a request's Origin header (cors.c parses both). */
typedef struct sg_cors_origin {
    sg_str_t scheme;
    sg_str_t host;              /* wild: what follows the "*" (".example.com"), empty when the host is "*" */
    bool wild;
    uint16_t port;              /* explicit, else 80 for http and 443 for https (0 for another scheme) */
} sg_cors_origin_t;

/* HTTPRoute CORS filter (Gateway API experimental channel); rule level only. Strings live in the generation. */
typedef struct sg_cors {
    bool any_origin;            /* allowOrigins: ["*"] */
    sg_cors_origin_t *origins;
    size_t norigins;
    bool credentials;           /* allowCredentials */
    bool any_method;            /* allowMethods: ["*"] */
    char **methods;
    size_t nmethods;
    bool any_header;            /* allowHeaders: ["*"] */
    char **headers;
    size_t nheaders;
    char *allow_methods;        /* methods joined with ", "; NULL when none or any */
    char *allow_headers;        /* headers joined with ", "; NULL when none or any */
    char *expose_headers;       /* exposeHeaders joined with ", " (or "*"); NULL when none */
    char max_age[12];           /* maxAge in decimal (default 5) */
} sg_cors_t;

/* Filters of a rule or of a backendRef; each NULL when absent. */
typedef struct sg_filters {
    sg_header_mod_t *req_headers;
    sg_header_mod_t *resp_headers;
    sg_redirect_t *redirect;
    sg_rewrite_t *rewrite;
    sg_cors_t *cors;            /* rule level only (the loader refuses it on a backendRef) */
} sg_filters_t;

/* Process-wide health of one endpoint address, owned by health.c (see health.h). */
typedef struct sg_health_entry sg_health_entry_t;

typedef struct sg_endpoint {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char label[64];             /* "ip:port" (IPv6 as [ip]:port), for logs */
    /* Health of this address; it outlives the generation, so a reload keeps it. Set by sg_health_attach() on
     * the main thread before the generation is published; NULL when no table was attached (tests, --check),
     * which the sg_health_* functions treat as always usable. */
    sg_health_entry_t *health;
} sg_endpoint_t;

/* BackendLoadBalancingPolicy spec.loadBalancing.strategy, for the endpoints of one Service port. The weights of
 * a rule's backendRefs apply under every strategy (Gateway API); EndpointSlice endpoints carry no weight. */
typedef enum sg_lb {
    SG_LB_ROUND_ROBIN = 0,      /* "round-robin" (default) */
    SG_LB_WEIGHTED,             /* "weighted-round-robin" (AGC's name for backendRef weights) or "weighted" */
    SG_LB_LEAST_REQUEST,        /* "least-request": power of two choices on open streams */
    SG_LB_RING_HASH,            /* "ring-hash": consistent hash of the key below */
} sg_lb_t;

#define SG_RING_HASH_DEFAULT_SIZE 1024 /* Envoy's minimum_ring_size default */

/* HealthCheckPolicy http.match.statusCodes entry: start..end inclusive. */
typedef struct sg_status_range {
    int start, end;
} sg_status_range_t;

/* HealthCheckPolicy spec.default, with AGC's defaults filled in. Probes are HTTP/1.1 GETs, over TLS as use_tls says. */
typedef struct sg_healthcheck {
    int64_t interval_ms;        /* default 5 s */
    int64_t timeout_ms;         /* default 30 s */
    int healthy_threshold;      /* default 1 */
    int unhealthy_threshold;    /* default 3 */
    uint16_t port;              /* 0: the endpoint's own port */
    char *host;                 /* default "localhost" */
    char *path;                 /* default "/" */
    sg_status_range_t *codes;   /* default one range 200..399 */
    size_t ncodes;
    /* useTLS: 1 true, 0 false, -1 not given: TLS when a BackendTLSPolicy applies to the backend and the probe uses
     * the endpoint's own port (AGC: "the same protocol as the service"). Over TLS a probe verifies like the data
     * path, with the backend's policy; true without one is refused at load. */
    int use_tls;
    const char *policy;         /* "ns/name" of the HealthCheckPolicy, for logs */
    /* grpc: probes call grpc.health.v1.Health/Check over HTTP/2 (h2c, or h2 over TLS) and want SERVING; the http
     * fields are then unused. */
    bool grpc;
    char *grpc_service;         /* HealthCheckRequest.service; NULL: "" (the server as a whole) */
    char *grpc_authority;       /* :authority; NULL: the host field's default */
} sg_healthcheck_t;

/* sg_backend_t.proto */
enum { SG_BACKEND_H1 = 0, SG_BACKEND_H2 = 1 };

typedef struct sg_backend {
    char *name;                 /* Service name of the backendRef */
    char *ns;
    uint16_t port;              /* backendRef port (Service port) */
    uint32_t weight;            /* default 1; 0 is never chosen */
    sg_endpoint_t *endpoints;   /* resolved addresses; nendpoints == 0: unresolvable */
    size_t nendpoints;
    sg_filters_t filters;       /* backendRef-level filters */
    sg_lb_t lb;                 /* from a BackendLoadBalancingPolicy targeting the Service (and port) */
    uint32_t ring_size;         /* SG_LB_RING_HASH: loadBalancing.ringHash.minimumRingSize (default 1024) */
    /* SG_LB_RING_HASH key: the value of this request header (lowercase) when set and present, otherwise the
     * rule's affinity cookie when set and present, otherwise the client address. */
    char *hash_header;
    const sg_healthcheck_t *health_check; /* HealthCheckPolicy targeting the Service; NULL: no active checks */
    /* BackendTLSPolicy targeting the Service (and port): connections to the endpoints use TLS, verified as the
     * policy says, and never fall back to plaintext. NULL: plaintext. Owned by the generation (cfg->upstream_tls). */
    const struct sg_tls_client *tls;
    const char *tls_policy;     /* "kind ns/name" of that policy, for logs */
    /* The Service port's appProtocol (GEP-1911): SG_BACKEND_H2 is HTTP/2 with prior knowledge (kubernetes.io/h2c)
     * or, with tls, ALPN h2 falling back to http/1.1 (https). */
    uint8_t proto;
    bool not_permitted;         /* another namespace and no ReferenceGrant admits it (RefNotPermitted): never
                                 * resolved, so a request sent to it gets 500 */
    int line, col;              /* position of the backendRef */
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

/* GRPCRoute method match: the request path is "/service/method". A NULL side matches any; with type REGEX the
 * sides are PCRE2 patterns (whole-value, compiled at load). */
typedef struct sg_grpc_method {
    sg_match_type_t type;       /* SG_MATCH_EXACT or SG_MATCH_REGEX */
    char *service;
    char *method;
    void *service_re;           /* pcre2_code * when type == SG_MATCH_REGEX and service != NULL */
    void *method_re;
} sg_grpc_method_t;

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
    const sg_grpc_method_t *grpc; /* GRPCRoute: the method match, NULL when it has none (then the path fields
                                   * are unused) */
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

/* RoutePolicy spec.default.sessionAffinity. Both types mean a cookie the gateway sets and reads; they differ in
 * name and lifetime only (AGC). */
typedef enum sg_affinity_type {
    SG_AFFINITY_NONE = 0,
    SG_AFFINITY_MANAGED,        /* "managed-cookie": AGCAffinity, 86400 s */
    SG_AFFINITY_APPLICATION,    /* "application-cookie": cookieName, cookieDuration */
} sg_affinity_type_t;

#define SG_AFFINITY_MANAGED_COOKIE "AGCAffinity"
#define SG_AFFINITY_MANAGED_DURATION_S 86400

typedef struct sg_affinity {
    sg_affinity_type_t type;
    const char *cookie;         /* NULL when type == NONE */
    int64_t duration_s;         /* Max-Age of the Set-Cookie; 0: a session cookie (no Max-Age) */
} sg_affinity_t;

/* ssegate.io/v1alpha1 SSEPolicy (config_ssepolicy.c): how a rule's event streams are shared (fanout/). */
typedef enum { SG_SSE_TOO_OLD_BACKEND = 0, SG_SSE_TOO_OLD_LIVE } sg_sse_too_old_t;
typedef enum { SG_SSE_SLOW_REPLAY = 0, SG_SSE_SLOW_CLOSE } sg_sse_slow_t;
typedef enum { SG_SSE_EP_KEEP = 0, SG_SSE_EP_CLOSE } sg_sse_ep_removed_t;
typedef struct sg_sse_policy {
    const char *ns, *name;
    bool sharing;               /* spec.default.sharing.enabled */
    bool public_stream;         /* sharing.public: requests with credentials share too */
    char **key_headers;         /* sharing.keyHeaders, lower-cased */
    size_t nkey_headers;
    int64_t linger_ms;          /* sharing.lingerAfterLastSubscriber */
    uint32_t replay_max_events; /* replay.maxEvents (0: no ring) */
    uint64_t replay_max_bytes;  /* replay.maxBytes */
    int64_t replay_max_age_ms;  /* replay.maxAge (0: no age bound) */
    sg_sse_too_old_t on_too_old; /* replay.onTooOld */
    sg_sse_slow_t slow_action;  /* slowSubscriber.action */
    uint32_t max_lag_events;    /* slowSubscriber.maxLagEvents (action close; 0: none) */
    uint64_t max_lag_bytes;     /* slowSubscriber.maxLagBytes (action close; 0: none) */
    int64_t max_retry_ms;       /* failover.maxRetryDelay: bound on the backend's retry: */
    sg_sse_ep_removed_t on_ep_removed; /* onEndpointRemoved.action (proxy/epgone.c) */
    int64_t ep_removed_after_ms; /* onEndpointRemoved.after: the closes are spread over this */
} sg_sse_policy_t;

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
    sg_affinity_t affinity;     /* effective session affinity (from the route's RoutePolicy) */
    /* SSE heartbeat for this rule's streams: RoutePolicy spec.default.sse.heartbeatInterval (an ssegate
     * extension). SG_TIMEOUT_UNSET: the --heartbeat flag applies; 0: off; > 0: a ":" comment after this idle. */
    int64_t heartbeat_ms;
    const sg_sse_policy_t *ssep; /* the SSEPolicy that applies to this rule, or NULL */
    int line, col;              /* position of the rule */
} sg_rule_t;

typedef enum sg_route_kind {
    SG_ROUTE_HTTP = 0,          /* HTTPRoute */
    SG_ROUTE_GRPC,              /* GRPCRoute: matched on service/method, served over HTTP/2 to h2c/h2 backends */
} sg_route_kind_t;

#define SG_ROUTE_KINDS_ALL 3u   /* listener allowedRoutes: bit (1 << kind) */

struct sg_route {
    sg_route_kind_t kind;
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
    sg_affinity_t affinity;     /* RoutePolicy sessionAffinity; type NONE when absent */
    int64_t heartbeat_ms;       /* SSEPolicy heartbeatInterval (or RoutePolicy sse.*), or SG_TIMEOUT_UNSET */
    const char *file;
    int line, col;
};

typedef enum sg_proto {
    SG_PROTO_HTTP = 0,
    SG_PROTO_HTTPS,
} sg_proto_t;

typedef struct sg_route_table sg_route_table_t; /* opaque, owned by route.c */

/* Listener allowedRoutes.namespaces.from. */
typedef enum sg_allow_from {
    SG_ALLOW_SAME,              /* routes of the Gateway's namespace only (the default) */
    SG_ALLOW_ALL,
    SG_ALLOW_SELECTOR,          /* routes of the namespaces whose labels match the selector */
} sg_allow_from_t;

struct sg_selector;

/* Client-certificate validation of an HTTPS listener (frontend mTLS): Gateway spec.tls.frontend (default or
 * perPort) or AGC's FrontendTLSPolicy. Every listener of one port has the same one (or none). */
typedef struct sg_client_validation {
    char *ca;                   /* PEM bundle: every caCertificateRef, concatenated */
    size_t ca_len;
    bool insecure_fallback;     /* mode AllowInsecureFallback (default AllowValidOnly) */
    char *subject_alt_name;     /* FrontendTLSPolicy verify.subjectAltName, or NULL */
    const char *source;         /* where it was configured, for messages */
} sg_client_validation_t;

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
    bool tls_h1_only;           /* tls.options "ssegate.io/alpn": "http/1.1": ALPN offers no h2 */
    const sg_client_validation_t *client_validation; /* HTTPS: client certificates asked for and checked; NULL: none */
    sg_allow_from_t allow_from; /* allowedRoutes.namespaces.from */
    uint8_t allow_kinds;        /* allowedRoutes.kinds as bits (1 << sg_route_kind_t); default both */
    struct sg_selector *selector; /* SG_ALLOW_SELECTOR: the label selector (the loader's) */
    char **allow_ns;            /* SG_ALLOW_SELECTOR: the namespaces of the config's routes that it admits */
    size_t nallow_ns;
    const char *file;
    int line, col;              /* position of the listener */
} sg_listener_t;

/* One socket to open: all listeners sharing an address and port. */
typedef struct sg_bind {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint16_t port;
    sg_proto_t protocol;
    struct sg_tls_server *tls;  /* HTTPS with a usable certificate: the port's TLS contexts (tls.c); else NULL */
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
    struct sg_tls_client **upstream_tls; /* every BackendTLSPolicy's client context (freed with the generation) */
    size_t nupstream_tls;
    size_t nshared_rules;       /* rules whose SSEPolicy turns sharing on (0: fanout/ never looks) */
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
