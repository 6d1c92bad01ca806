/* config_int.h: the loader's internals shared by config.c and the config_*.c files; no other module includes it. */
#ifndef SG_CONFIG_INT_H
#define SG_CONFIG_INT_H

#include <libfyaml.h>
#include <setjmp.h>
#include <stdio.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config/config.h"

/* ---- arena: one per generation, so unref frees everything at once ---- */

typedef struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
} blk_t;

typedef struct priv {
    blk_t *blocks;
    pcre2_code **codes;         /* every compiled regex, freed on the last unref */
    size_t ncodes, capcodes;
    /* A patched generation (config_patch.c): the full load whose strings, policies, TLS contexts and binds it
     * shares, referenced until the patch is freed. NULL for a full load. */
    sg_config_t *root;
} priv_t;

typedef struct pos {
    int line, col;
} pos_t;

/* An unresolved frontend validation block: its CA references and mode (config_mtls.c). */
typedef struct caref {
    char *kind, *ns, *name;     /* kind "ConfigMap" or "Secret" (core group) */
    pos_t pos;
} caref_t;
typedef struct valdef {
    caref_t *refs;
    size_t nrefs;
    bool insecure_fallback;
    char *san;
    const char *from_group, *from_kind, *from_ns; /* who refers, for ReferenceGrants */
    char *source;
    pos_t pos;
    sg_client_validation_t *resolved; /* NULL until resolved, or when a reference failed */
} valdef_t;
typedef struct perport {
    long port;
    valdef_t *val;
    pos_t pos;
} perport_t;

/* A reference to a kubernetes.io/tls Secret (a client certificate shown to backends). */
typedef struct certref {
    char *ns, *name;
    pos_t pos;
} certref_t;

typedef struct gwdef {
    char *name, *ns;
    pos_t pos;
    size_t first, n;            /* range in loader.listeners */
    certref_t *be_cert;         /* spec.tls.backend.clientCertificateRef, or NULL */
    valdef_t *fe_default;       /* spec.tls.frontend.default.validation, or NULL */
    perport_t *perport;         /* spec.tls.frontend.perPort */
    size_t nperport;
} gwdef_t;

/* A CA bundle: ConfigMap or Secret key ca.crt. */
typedef struct cabundle {
    const char *kind;
    char *ns, *name;
    char *pem;                  /* NULL: the object has no ca.crt */
    size_t len;
    pos_t pos;
} cabundle_t;

/* AGC FrontendTLSPolicy. */
typedef struct ftpolicy {
    char *ns, *name;
    char *gw_ns, *gw_name;      /* target Gateway */
    char **sections;            /* listener names; none: every HTTPS listener of the Gateway */
    size_t nsections;
    valdef_t *val;
    pos_t pos, tpos;
} ftpolicy_t;

/* RoutePolicy */
typedef struct policy {
    char *ns, *name;
    char *tns, *tname;          /* target HTTPRoute or GRPCRoute; tname NULL when the target is unusable */
    sg_route_kind_t tkind;
    int64_t route_timeout_ms;   /* SG_TIMEOUT_UNSET when not given */
    sg_affinity_t affinity;     /* type NONE when not given */
    int64_t heartbeat_ms;       /* SG_TIMEOUT_UNSET when not given */
    pos_t pos, tpos, apos, hpos; /* document / routeTimeout, targetRef, sessionAffinity, heartbeatInterval */
} policy_t;

/* ssegate.io SSEPolicy (config_ssepolicy.c) */
typedef struct ssepol {
    sg_sse_policy_t *p;
    char *tns, *tname;          /* target HTTPRoute; tname NULL when the target is unusable */
    char *section;              /* targetRef.sectionName: one rule by name; NULL: every rule */
    int64_t heartbeat_ms;       /* SG_TIMEOUT_UNSET when not given */
    pos_t pos, tpos, hpos;
} ssepol_t;

/* A policy's reference to a Service, optionally to some of its ports. */
typedef struct svcref {
    char *ns, *name;
    uint16_t *ports;            /* nports == 0: every port */
    size_t nports;
    pos_t pos;
} svcref_t;

/* BackendLoadBalancingPolicy */
typedef struct lbpolicy {
    char *ns, *name;
    svcref_t *targets;
    size_t ntargets;
    sg_lb_t lb;
    uint32_t ring_size;
    char *hash_header;
    bool used;                  /* some backendRef took it */
    pos_t pos;
} lbpolicy_t;

/* HealthCheckPolicy */
typedef struct hcpolicy {
    char *ns, *name;
    svcref_t target;            /* target.name NULL when unusable */
    sg_healthcheck_t *hc;
    bool used;
    pos_t pos, tlspos;          /* document / default.useTLS */
} hcpolicy_t;

typedef struct svcport {
    char *name;                 /* "" when unnamed */
    int port;
    char *app_protocol;         /* ports[].appProtocol (GEP-1911), NULL when absent */
    pos_t app_pos;
} svcport_t;

typedef struct svc {
    char *ns, *name;
    svcport_t *ports;
    size_t nports;
    pos_t pos;
} svc_t;

typedef struct slice {
    char *ns, *svc;
    char **addrs;               /* ready endpoints only */
    size_t naddrs;
    svcport_t *ports;
    size_t nports;
} slice_t;

typedef struct resolved {
    char *name;
    struct sockaddr_storage *addrs;
    socklen_t *lens;
    size_t n;
} resolved_t;

typedef struct gwaddr {
    struct sockaddr_storage ss;
    size_t gw;                  /* index in loader.gws */
} gwaddr_t;

/* Secret of type kubernetes.io/tls: PEM bytes, decoded from data or read from the files it names. */
typedef struct secret {
    char *ns, *name;
    char *crt, *key;            /* NULL when missing or unreadable (already reported) */
    size_t crt_len, key_len;
    pos_t pos;
} secret_t;

/* Namespace: its labels (kubernetes.io/metadata.name: <name> is implied, as the API server sets it). */
typedef struct nsdef {
    char *name;
    sg_kv_t *labels;
    size_t nlabels;
    pos_t pos;
} nsdef_t;

/* A label selector: matchLabels and matchExpressions, all of which must hold. */
typedef enum { SEL_IN, SEL_NOT_IN, SEL_EXISTS, SEL_DOES_NOT_EXIST } selop_t;
typedef struct selreq {
    char *key;
    selop_t op;
    char **values;
    size_t nvalues;
} selreq_t;
struct sg_selector {
    sg_kv_t *match;
    size_t nmatch;
    selreq_t *exprs;
    size_t nexprs;
};

/* ReferenceGrant: in namespace ns, lets the `from` kinds of other namespaces refer to the `to` kinds here. */
typedef struct grant_from {
    char *group, *kind, *ns;
} grant_from_t;
typedef struct grant_to {
    char *group, *kind, *name;  /* name NULL: any object of the kind */
} grant_to_t;
typedef struct grant {
    char *ns, *name;
    grant_from_t *from;
    size_t nfrom;
    grant_to_t *to;
    size_t nto;
    pos_t pos;
} grant_t;

/* One Service (port) a BackendTLSPolicy targets. */
typedef struct bttarget {
    char *ns, *name;
    char *section;              /* Gateway API sectionName: a Service port name; NULL: every port */
    uint16_t *ports;            /* AGC ports[]; nports == 0: every port */
    size_t nports;
    pos_t pos;
} bttarget_t;

/* BackendTLSPolicy: Gateway API (gateway.networking.k8s.io) or AGC's (alb.networking.azure.io) form. */
typedef struct btpolicy {
    char *ns, *name;
    char *label;                /* "BackendTLSPolicy ns/name", for messages and logs */
    bttarget_t *targets;
    size_t ntargets;
    valdef_t *val;              /* CA references; NULL with system */
    bool system;                /* wellKnownCACertificates: System */
    char *hostname;
    char **san_hosts;
    size_t nsan_hosts;
    char **san_uris;
    size_t nsan_uris;
    certref_t *cert;            /* AGC default.clientCertificateRef, or NULL */
    bool ok;                    /* parsed without errors: usable */
    pos_t pos;
} btpolicy_t;

struct sg_dx;                   /* lenient mode's state (config_diag.c) */

typedef struct loader {
    const char *file;
    FILE *errs;
    unsigned flags;
    int nerr;
    int nwarn;
    jmp_buf oom;
    priv_t *priv;
    struct fy_parser *fyp;
    struct fy_document *doc;
    struct fy_diag *diag;
    size_t route_order;
    struct sg_dx *dx;           /* lenient mode (sg_config_load_lenient); NULL in file mode */
    size_t docno;               /* index of the document being parsed, counting every document of the stream */
    /* collections, arena-backed growable arrays */
    gwdef_t *gws;
    size_t ngws, capgws;
    sg_listener_t *lis;
    size_t nlis, caplis;
    gwaddr_t *gwaddr;
    size_t ngwaddr, capgwaddr;
    sg_route_t *routes;
    size_t nroutes, caproutes;
    size_t *route_tab;          /* routes by kind, namespace and name: index + 1, 0 empty (open addressing) */
    size_t route_tabcap;        /* a power of two, or 0 */
    policy_t *pols;
    size_t npols, cappols;
    lbpolicy_t *lbpols;
    size_t nlbpols, caplbpols;
    hcpolicy_t *hcpols;
    size_t nhcpols, caphcpols;
    svc_t *svcs;
    size_t nsvcs, capsvcs;
    slice_t *slices;
    size_t nslices, capslices;
    svc_t **svc_by_name;        /* the Services sorted by namespace, name (then document order), and */
    slice_t **slice_by_svc;     /* the EndpointSlices by namespace, Service: built once every document is read */
    resolved_t *res;
    size_t nres, capres;
    secret_t *secrets;
    size_t nsecrets, capsecrets;
    nsdef_t *nss;
    size_t nnss, capnss;
    grant_t *grants;
    size_t ngrants, capgrants;
    cabundle_t *cas;
    size_t ncas, capcas;
    ftpolicy_t *ftpols;
    size_t nftpols, capftpols;
    btpolicy_t *btpols;
    size_t nbtpols, capbtpols;
    ssepol_t *ssepols;
    size_t nssepols, capssepols;
} loader_t;
typedef struct meta {
    char *name, *ns;
    struct fy_node *labels;
} meta_t;

/* Cross-file helpers keep their short names inside the loader; the linker sees sg__config_*. */
#define aalloc sg__config_aalloc
#define rule_common sg__config_rule_common
#define astrndup sg__config_astrndup
#define astrdup sg__config_astrdup
#define vpush sg__config_vpush
#define report sg__config_report
#define npos sg__config_npos
#define key_pos sg__config_key_pos
#define nnull sg__config_nnull
#define field sg__config_field
#define check_keys sg__config_check_keys
#define scalar_str sg__config_scalar_str
#define get_str sg__config_get_str
#define scalar_int sg__config_scalar_int
#define get_int sg__config_get_int
#define get_typed sg__config_get_typed
#define seq_len sg__config_seq_len
#define get_duration sg__config_get_duration
#define is_token sg__config_is_token
#define is_hostname sg__config_is_hostname
#define valid_path sg__config_valid_path
#define parse_meta sg__config_parse_meta
#define parse_gateway sg__config_parse_gateway
#define build_binds sg__config_build_binds
#define parse_httproute sg__config_parse_httproute
#define parse_grpcroute sg__config_parse_grpcroute
#define parse_route_head sg__config_parse_route_head
#define parse_backend_ref sg__config_parse_backend_ref
#define parse_header_mod sg__config_parse_header_mod
#define parse_value_matches sg__config_parse_value_matches
#define compile_re sg__config_compile_re
#define parse_service sg__config_parse_service
#define parse_slice sg__config_parse_slice
#define set_label sg__config_set_label
#define resolve_backends sg__config_resolve_backends

/* Arena allocation: zeroed; longjmps to ld->oom when out of memory. */
void *aalloc(loader_t *ld, size_t n);
char *astrndup(loader_t *ld, const char *s, size_t n);
char *astrdup(loader_t *ld, const char *s);
/* Returns a pointer to a fresh zeroed slot at the end of *arr, growing it in the arena. */
void *vpush(loader_t *ld, void **arr, size_t *n, size_t *cap, size_t sz);
#define VPUSH(ld, arr, n, cap) ((__typeof__(arr))vpush((ld), (void **)&(arr), &(n), &(cap), sizeof(*(arr))))

/* Prints "FILE:LINE:COL: [warning: ]message"; errors make the load fail. */
void report(loader_t *ld, pos_t p, bool warn, const char *fmt, ...) SG_PRINTF(4, 5);
#define ERR(ld, p, ...) report((ld), (p), false, __VA_ARGS__)
#define WARN(ld, p, ...) report((ld), (p), true, __VA_ARGS__)

/* Position of a node: its scalar token, or for collections the first key / item; fb when empty. */
pos_t npos(struct fy_node *n, pos_t fb);
bool nnull(struct fy_node *n);
/* Position of the key `key` in mapping m (where a refusal of the whole field points); fb when absent. */
pos_t key_pos(struct fy_node *m, const char *key, pos_t fb);
/* A mapping's value for key; NULL when absent or null. */
struct fy_node *field(struct fy_node *m, const char *key);
/* As field(), but a null value is returned as it is. */
struct fy_node *field_raw(struct fy_node *m, const char *key);
/* Warns about keys not in known (NULL-terminated). */
void check_keys(loader_t *ld, struct fy_node *m, const char *what, const char *const *known);
#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})
char *scalar_str(loader_t *ld, struct fy_node *v, const char *key, pos_t at);
/* String field; NULL when absent (error if required) or on a type error. */
char *get_str(loader_t *ld, struct fy_node *m, const char *key, bool req, pos_t at);
bool scalar_int(loader_t *ld, struct fy_node *v, const char *key, long min, long max, long *out, pos_t at);
/* Integer field; true and *out when present and valid. */
bool get_int(loader_t *ld, struct fy_node *m, const char *key, long min, long max, bool req, long *out, pos_t at);
struct fy_node *get_typed(loader_t *ld, struct fy_node *m, const char *key, enum fy_node_type t, bool req, pos_t at);
#define get_map(ld, m, k, r, at) get_typed((ld), (m), (k), FYNT_MAPPING, (r), (at))
#define get_seq(ld, m, k, r, at) get_typed((ld), (m), (k), FYNT_SEQUENCE, (r), (at))
size_t seq_len(struct fy_node *s);
/* Duration field; true and *out (ms) when present and valid. */
bool get_duration(loader_t *ld, struct fy_node *m, const char *key, int64_t *out, pos_t at);
bool is_token(const char *s);
bool is_hostname(const char *s, bool allow_wild);
bool valid_path(const char *s);
/* metadata.name (required), .namespace (default "default"), .labels. */
bool parse_meta(loader_t *ld, struct fy_node *root, pos_t at, meta_t *m);

/* config_gateway.c: Gateway documents, then the binds their listeners make once every document is read. */
void parse_gateway(loader_t *ld, struct fy_node *root, pos_t at);
/* Builds cfg->binds[] from every Gateway's addresses x listeners; one bind per address:port. */
void build_binds(loader_t *ld, sg_config_t *cfg);

/* config_route.c: HTTPRoute documents, into ld->routes. */
void parse_httproute(loader_t *ld, struct fy_node *root, pos_t at);
/* What HTTPRoute and GRPCRoute share: metadata (duplicates of the same kind refused), parentRefs and hostnames
 * into a new ld->routes entry; *spec is the spec mapping. NULL when the document has no usable spec. */
sg_route_t *parse_route_head(loader_t *ld, struct fy_node *root, pos_t at, sg_route_kind_t kind,
                             struct fy_node **spec);
/* A backendRef's Service reference, port and weight (not its filters, which differ per route kind). */
void parse_backend_ref(loader_t *ld, struct fy_node *n, pos_t at, const char *ns, sg_backend_t *b);
/* RequestHeaderModifier / ResponseHeaderModifier settings. */
sg_header_mod_t *parse_header_mod(loader_t *ld, struct fy_node *n, pos_t at);
/* headers (header = true) or queryParams matches. */
void parse_value_matches(loader_t *ld, struct fy_node *seq, pos_t at, bool header, sg_value_match_t **out,
                         size_t *nout);
/* A whole-value PCRE2 pattern, kept by the generation; NULL (reported) when it does not compile. */
void *compile_re(loader_t *ld, const char *re, struct fy_node *n, pos_t at);

/* config_grpcroute.c: GRPCRoute documents, into ld->routes (kind SG_ROUTE_GRPC). */
void parse_grpcroute(loader_t *ld, struct fy_node *root, pos_t at);

/* config_backend.c: Service and EndpointSlice documents, and backendRefs -> endpoints once every document is read. */
void parse_service(loader_t *ld, struct fy_node *root, pos_t at);
void parse_slice(loader_t *ld, struct fy_node *root, pos_t at);
/* Sets ep->label to "ip:port" or "[ip6]:port" from ep->addr. */
void set_label(sg_endpoint_t *ep);
/* Fills every backend's endpoints and every rule's total_weight (may use DNS unless SG_CONFIG_NO_DNS). */
void resolve_backends(loader_t *ld);
/* A patch's resolution of backendRef b (config_patch.c) against the Services and EndpointSlices the loader read: 0, or
 * -EAGAIN when a full load would resolve it another way (its Service has no such port, or no EndpointSlice: the
 * warning and the name fallback are the full load's). */
int sg__config_resolve_patched(loader_t *ld, sg_backend_t *b, const sg_rule_t *r);
/* The first route read with this kind, namespace and name, or NULL. */
const sg_route_t *sg__config_find_route(const loader_t *ld, sg_route_kind_t kind, const char *ns, const char *name);
/* Sorts the Services and EndpointSlices read for the lookups below (after the last document, before any lookup). */
void sg__config_index_services(loader_t *ld);
/* The first Service read with this namespace and name, or NULL. */
const svc_t *sg__config_find_svc(const loader_t *ld, const char *ns, const char *name);

/* config_policy.c: alb.networking.azure.io/v1 kinds, then their effect once every document is read. */
void sg__config_parse_route_policy(loader_t *ld, struct fy_node *root, pos_t at);
void sg__config_parse_lb_policy(loader_t *ld, struct fy_node *root, pos_t at);
void sg__config_parse_hc_policy(loader_t *ld, struct fy_node *root, pos_t at);
/* RoutePolicy timeouts, sessionAffinity and sse -> routes and their rules. */
void sg__config_apply_route_policies(loader_t *ld);
/* BackendLoadBalancingPolicy and HealthCheckPolicy -> the backends that reference their Service. */
void sg__config_apply_backend_policies(loader_t *ld);

/* config_tls.c: Secrets, listener tls blocks, and the TLS contexts of HTTPS binds. */
void sg__config_parse_secret(loader_t *ld, struct fy_node *root, pos_t at);
void sg__config_parse_listener_tls(loader_t *ld, sg_listener_t *li, struct fy_node *tls, pos_t at);
/* Builds cfg->binds[].tls from the HTTPS listeners' certificateRefs and client validation. */
void sg__config_build_tls(loader_t *ld, sg_config_t *cfg);
void sg__config_free_tls(sg_config_t *cfg);

/* config_ns.c: namespace boundaries: Namespace and ReferenceGrant documents, listener allowedRoutes, and the
 * grants that cross-namespace references need, checked once every document is read. */
void sg__config_parse_namespace(loader_t *ld, struct fy_node *root, pos_t at);
void sg__config_parse_refgrant(loader_t *ld, struct fy_node *root, pos_t at);
void sg__config_parse_allowed_routes(loader_t *ld, sg_listener_t *li, struct fy_node *ar, pos_t at);
/* Selector listeners -> the route namespaces they admit; certificateRefs and backendRefs to other namespaces
 * -> refused without a ReferenceGrant (an error for a certificateRef, a 500 for a backendRef). */
void sg__config_apply_namespaces(loader_t *ld);
/* True when a ReferenceGrant in to_ns lets a from_kind (of from_group) in from_ns refer to the to_kind object
 * to_name (of to_group, "" for the core group). */
#define granted sg__config_granted
bool granted(const loader_t *ld, const char *from_group, const char *from_kind, const char *from_ns,
             const char *to_ns, const char *to_group, const char *to_kind, const char *to_name);

/* config_mtls.c: frontend mTLS: CA bundles (ConfigMap, and Secret key ca.crt), Gateway spec.tls, AGC's
 * FrontendTLSPolicy, and the validation each HTTPS listener gets once every document is read. */
void sg__config_parse_configmap(loader_t *ld, struct fy_node *root, pos_t at);
/* A Secret's ca.crt (data, base64, or stringData), for caCertificateRefs of kind Secret. */
void sg__config_secret_ca(loader_t *ld, const meta_t *m, struct fy_node *root, pos_t at);
void sg__config_parse_gateway_tls(loader_t *ld, size_t gw, struct fy_node *tls, pos_t at);
void sg__config_parse_frontend_tls_policy(loader_t *ld, struct fy_node *root, pos_t at);
/* Resolves CA references (with ReferenceGrants) and sets every HTTPS listener's client_validation. */
void sg__config_apply_frontend_tls(loader_t *ld);
/* One caCertificateRef ({group, kind, name, namespace}; ns defaults to def_ns) appended to v->refs. */
void sg__config_parse_caref(loader_t *ld, valdef_t *v, struct fy_node *r, const char *def_ns, size_t *cap, pos_t at);
/* v's CA references -> v->resolved (one PEM bundle), each failure reported at its reference with Gateway API's
 * reason (RefNotPermitted without a ReferenceGrant, InvalidCACertificateRef). */
void sg__config_resolve_ca(loader_t *ld, valdef_t *v);

/* config_btls.c: TLS to backends: BackendTLSPolicy (Gateway API and AGC forms), Gateway spec.tls.backend, and the
 * client context each backend gets once every document is read. */
void sg__config_parse_backend_tls_policy(loader_t *ld, struct fy_node *root, pos_t at);
void sg__config_parse_agc_backend_tls_policy(loader_t *ld, struct fy_node *root, pos_t at);
/* Gateway spec.tls.backend: {clientCertificateRef}. */
void sg__config_parse_gateway_backend_tls(loader_t *ld, size_t gw, struct fy_node *be, pos_t at);
/* Policies -> backends' TLS client contexts (kept in cfg->upstream_tls). */
void sg__config_apply_backend_tls(loader_t *ld, sg_config_t *cfg);
/* Service ports[].appProtocol -> the protocol each backendRef speaks (after the BackendTLSPolicies applied). */
void sg__config_apply_app_protocols(loader_t *ld);

/* config_ssepolicy.c: ssegate.io/v1alpha1 SSEPolicy, then the rules it applies to once every document is read
 * (after the RoutePolicies: its heartbeatInterval and RoutePolicy's deprecated sse.heartbeatInterval must agree). */
void sg__config_parse_sse_policy(loader_t *ld, struct fy_node *root, pos_t at);
void sg__config_apply_sse_policies(loader_t *ld, sg_config_t *cfg);

/* Reads one entry of a rule's `matches` (HTTPRoute and GRPCRoute each have their own). */
typedef void (*match_parser_t)(loader_t *ld, struct fy_node *n, pos_t at, sg_match_t *m);
/* What both route kinds read alike in a rule (config_route.c): sessionPersistence refused, `name`, and up to 64
 * `matches`, each read by parse_one. */
void rule_common(loader_t *ld, struct fy_node *n, pos_t at, sg_rule_t *r, match_parser_t parse_one);

/* Base64 with whitespace ignored, into the arena (config_tls.c). False when invalid. */
bool sg__config_b64_decode(loader_t *ld, const char *in, char **out, size_t *out_len);

/* ---- lenient mode (config_diag.c) ---- */

/* Parts of a document lenient mode can drop. */
enum { DX_DOC, DX_RULE, DX_PARENT, DX_LISTENER };
/* Lenient mode: whether part `part` number idx (its position in the document's list) of the document being parsed
 * (ld->docno) was dropped in an earlier pass, so the loader skips it. Always false in file mode. */
bool sg__config_dropped(const loader_t *ld, int part, size_t idx);
#define utf8_bad sg__config_utf8_bad
/* Offset of the first byte that is not well-formed UTF-8 (RFC 3629), or len. libfyaml must never see such bytes. */
size_t utf8_bad(const unsigned char *s, size_t len);
/* The loader's input: YAML text, or (docs != NULL) documents already parsed, each root's line set with
 * sg_config_doc_set_line (lenient mode's kube build). */
typedef struct sg__cin {
    const char *yaml;
    size_t len;
    struct fy_document *const *docs;
    size_t ndocs;
} cin_t;
/* sg_config_load_ex with lenient mode's state (NULL: file mode). */
/* One document of a stream: dispatched on its kind (config.c). */
void sg__config_parse_doc(loader_t *ld, struct fy_node *root);
void sg__config_free_priv(priv_t *pv);
int sg__config_load_dx(const char *name, const cin_t *in, unsigned flags, struct sg_dx *dx, FILE *errs,
                       sg_config_t **out);
/* The line a node's document starts on (1 for a document of a YAML stream: its marks count from there). */
int sg__config_line_base(struct fy_node *n);
/* Lenient mode, the first load: records the document (object, kind, name, generation, parts) in the index. */
void sg__config_index_doc(loader_t *ld, struct fy_node *root);
/* Lenient mode, after a load without errors: records what status needs from the finished generation. */
void sg__config_diag_fill(loader_t *ld, const sg_config_t *cfg);

#endif
