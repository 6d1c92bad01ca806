/* config.c: Gateway API YAML -> sg_config_t generations: the loader's arena, reporting, typed field access and value
 * validation, the document dispatcher, and load/lifetime. Each kind is parsed in a config_*.c file: Gateway in
 * config_gateway.c, HTTPRoute in config_route.c, Service and EndpointSlice in config_backend.c, the
 * alb.networking.azure.io policies in config_policy.c, Secrets and TLS in config_tls.c. */
#include "config/config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libfyaml.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "config/diag.h"
#include "config/route.h"
#include "core/escape.h"

void *aalloc(loader_t *ld, size_t n)
{
    priv_t *pv = ld->priv;
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    blk_t *b = pv->blocks;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 32768 ? n : 32768;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            longjmp(ld->oom, 1);
        b->cap = cap;
        b->used = 0;
        if (pv->blocks != NULL && n > 32768) {
            /* Keep filling the current block; put the big one behind it. */
            b->next = pv->blocks->next;
            pv->blocks->next = b;
        } else {
            b->next = pv->blocks;
            pv->blocks = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *astrndup(loader_t *ld, const char *s, size_t n)
{
    char *p = aalloc(ld, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *astrdup(loader_t *ld, const char *s)
{
    return astrndup(ld, s, strlen(s));
}

/* Returns a pointer to a fresh zeroed slot at the end of *arr, growing it in the arena. */
void *vpush(loader_t *ld, void **arr, size_t *n, size_t *cap, size_t sz)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *na = aalloc(ld, ncap * sz);
        if (*n)
            memcpy(na, *arr, *n * sz);
        *arr = na;
        *cap = ncap;
    }
    void *slot = (char *)*arr + (*n)++ * sz;
    memset(slot, 0, sz);
    return slot;
}


/* ---- reporting ---- */

SG_PRINTF(4, 5) void report(loader_t *ld, pos_t p, bool warn, const char *fmt, ...)
{
    va_list ap;
    if (!warn)
        ld->nerr++;
    else
        ld->nwarn++;
    if (ld->errs == NULL)
        return;
    /* Messages quote config values and libfyaml's text: escaped, a "\n" in a value cannot split one
     * FILE:LINE:COL line into two (nor forge one), and control bytes cannot reach the terminal. */
    char msg[1024];
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    sg_escape_fputline(ld->errs, "%s:%d:%d: %s%s", ld->file, p.line, p.col, warn ? "warning: " : "", msg);
}


int sg__config_line_base(struct fy_node *n)
{
    struct fy_document *d = n ? fy_node_document(n) : NULL;
    struct fy_node *root = d ? fy_document_root(d) : NULL;
    intptr_t line = root ? (intptr_t)fy_node_get_meta(root) : 0;
    return line > 0 && line <= INT_MAX ? (int)line : 1;
}

int sg_config_doc_set_line(struct fy_document *doc, int line)
{
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    if (root == NULL || line < 1)
        return -EINVAL;
    return fy_node_set_meta(root, (void *)(intptr_t)line) == 0 ? 0 : -EINVAL;
}

/* Position of a node: its scalar token, or for collections the first key / item; `fb` when empty. A document given
 * parsed (sg_config_load_docs_lenient) counts its lines from the line its root was given. */
pos_t npos(struct fy_node *n, pos_t fb)
{
    for (int depth = 0; n != NULL && depth < 64; depth++) {
        void *it = NULL;
        switch (fy_node_get_type(n)) {
        case FYNT_SCALAR: {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (m == NULL)
                return fb;
            return (pos_t){m->line + sg__config_line_base(n), m->column + 1};
        }
        case FYNT_SEQUENCE:
            n = fy_node_sequence_iterate(n, &it);
            break;
        case FYNT_MAPPING: {
            struct fy_node_pair *pr = fy_node_mapping_iterate(n, &it);
            n = pr ? fy_node_pair_key(pr) : NULL;
            break;
        }
        default:
            return fb;
        }
    }
    return fb;
}

/* ---- typed field access; every problem is reported, never fatal ---- */

bool nnull(struct fy_node *n)
{
    if (n == NULL)
        return true;
    if (fy_node_get_type(n) != FYNT_SCALAR || fy_node_get_style(n) != FYNS_PLAIN)
        return false;
    size_t len;
    const char *s = fy_node_get_scalar(n, &len);
    return s == NULL || len == 0 || (len == 1 && s[0] == '~') || (len == 4 && memcmp(s, "null", 4) == 0);
}

/* A mapping's value for a scalar key, compared as text. libfyaml's lookup by string parses the key as YAML: a whole
 * document for each key that is not a plain word ("kubernetes.io/service-name"), most of a build's lookups' time. */
struct fy_node *field_raw(struct fy_node *m, const char *key)
{
    if (m == NULL || fy_node_get_type(m) != FYNT_MAPPING)
        return NULL;
    size_t klen = strlen(key);
    void *it = NULL;
    struct fy_node_pair *pr;
    while ((pr = fy_node_mapping_iterate(m, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pr);
        size_t len;
        const char *s = k && fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar(k, &len) : NULL;
        if (s != NULL && len == klen && memcmp(s, key, len) == 0)
            return fy_node_pair_value(pr);
    }
    return NULL;
}

struct fy_node *field(struct fy_node *m, const char *key)
{
    struct fy_node *v = field_raw(m, key);
    return nnull(v) ? NULL : v;
}

pos_t key_pos(struct fy_node *m, const char *key, pos_t fb)
{
    void *it = NULL;
    struct fy_node_pair *pr;
    if (m == NULL || fy_node_get_type(m) != FYNT_MAPPING)
        return fb;
    while ((pr = fy_node_mapping_iterate(m, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pr);
        size_t len;
        const char *s = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &len) : NULL;
        if (s != NULL && len == strlen(key) && memcmp(s, key, len) == 0)
            return npos(k, fb);
    }
    return fb;
}

/* Refuses keys not in `known` (NULL-terminated): a field ssegate does not enforce must not look as if it did, and a
 * typo must not pass silently (fail closed). */
void check_keys(loader_t *ld, struct fy_node *m, const char *what, const char *const *known)
{
    void *it = NULL;
    struct fy_node_pair *pr;
    if (m == NULL || fy_node_get_type(m) != FYNT_MAPPING)
        return;
    while ((pr = fy_node_mapping_iterate(m, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pr);
        pos_t p = npos(k, (pos_t){0, 0});
        size_t len;
        const char *s = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &len) : NULL;
        if (s == NULL) {
            ERR(ld, p, "%s: keys must be strings", what);
            continue;
        }
        bool ok = false;
        for (size_t i = 0; known[i] != NULL && !ok; i++)
            ok = strlen(known[i]) == len && memcmp(known[i], s, len) == 0;
        if (!ok)
            ERR(ld, p, "%s: unknown field \"%.*s\" (not supported, so refused rather than ignored)", what,
                (int)SG_MIN(len, 64), s);
    }
}


char *scalar_str(loader_t *ld, struct fy_node *v, const char *key, pos_t at)
{
    if (fy_node_get_type(v) != FYNT_SCALAR) {
        ERR(ld, npos(v, at), "%s: expected a string", key);
        return NULL;
    }
    size_t len;
    const char *s = fy_node_get_scalar(v, &len);
    if (s == NULL)
        s = "";
    if (memchr(s, '\0', len) != NULL) {
        ERR(ld, npos(v, at), "%s: contains a NUL byte", key);
        return NULL;
    }
    return astrndup(ld, s, len);
}

/* String field; NULL when absent (error if required) or on a type error. */
char *get_str(loader_t *ld, struct fy_node *m, const char *key, bool req, pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL) {
        if (req)
            ERR(ld, at, "missing required field \"%s\"", key);
        return NULL;
    }
    return scalar_str(ld, v, key, at);
}

bool scalar_int(loader_t *ld, struct fy_node *v, const char *key, long min, long max, long *out, pos_t at)
{
    size_t len;
    const char *s = fy_node_get_type(v) == FYNT_SCALAR && fy_node_get_style(v) == FYNS_PLAIN
                        ? fy_node_get_scalar(v, &len) : NULL;
    char buf[32];
    if (s == NULL || len == 0 || len >= sizeof(buf)) {
        ERR(ld, npos(v, at), "%s: expected an integer", key);
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long x = strtol(buf, &end, 10);
    if (*end != '\0' || errno != 0 || !(isdigit((unsigned char)buf[0]) || buf[0] == '-')) {
        ERR(ld, npos(v, at), "%s: expected an integer, got \"%s\"", key, buf);
        return false;
    }
    if (x < min || x > max) {
        ERR(ld, npos(v, at), "%s: %ld out of range %ld..%ld", key, x, min, max);
        return false;
    }
    *out = x;
    return true;
}

/* Integer field; returns true and sets *out when present and valid. */
bool get_int(loader_t *ld, struct fy_node *m, const char *key, long min, long max, bool req, long *out,
                    pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL) {
        if (req)
            ERR(ld, at, "missing required field \"%s\"", key);
        return false;
    }
    return scalar_int(ld, v, key, min, max, out, at);
}

struct fy_node *get_typed(loader_t *ld, struct fy_node *m, const char *key, enum fy_node_type t, bool req,
                                 pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL) {
        if (req)
            ERR(ld, at, "missing required field \"%s\"", key);
        return NULL;
    }
    if (fy_node_get_type(v) != t) {
        ERR(ld, npos(v, at), "%s: expected a %s", key, t == FYNT_MAPPING ? "mapping" : "list");
        return NULL;
    }
    return v;
}


size_t seq_len(struct fy_node *s)
{
    int n = s ? fy_node_sequence_item_count(s) : 0;
    return n > 0 ? (size_t)n : 0;
}

/* ---- value validation ---- */

int sg_config_parse_duration(const char *s, int64_t *ms)
{
    /* Gateway API Duration: ^([0-9]{1,5}(h|m|s|ms)){1,4}$ */
    int64_t total = 0;
    int groups = 0;
    if (s == NULL || *s == '\0')
        return -EINVAL;
    while (*s != '\0') {
        int digits = 0;
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            v = v * 10 + (*s++ - '0');
            if (++digits > 5)
                return -EINVAL;
        }
        if (digits == 0)
            return -EINVAL;
        if (s[0] == 'm' && s[1] == 's') {
            s += 2;
        } else if (*s == 'h') {
            v *= 3600000;
            s++;
        } else if (*s == 'm') {
            v *= 60000;
            s++;
        } else if (*s == 's') {
            v *= 1000;
            s++;
        } else {
            return -EINVAL;
        }
        total += v;
        if (++groups > 4)
            return -EINVAL;
    }
    *ms = total;
    return 0;
}

bool get_duration(loader_t *ld, struct fy_node *m, const char *key, int64_t *out, pos_t at)
{
    struct fy_node *v = field(m, key);
    if (v == NULL)
        return false;
    char *s = scalar_str(ld, v, key, at);
    if (s == NULL)
        return false;
    if (sg_config_parse_duration(s, out) != 0) {
        ERR(ld, npos(v, at), "%s: invalid duration \"%s\" (expected e.g. 500ms, 10s, 1h30m; 0s = none)", key, s);
        return false;
    }
    return true;
}

static bool tchar(unsigned char c)
{
    return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!tchar((unsigned char)*s))
            return false;
    return true;
}

/* RFC 1123 lowercase host name, optionally "*." + one. */
bool is_hostname(const char *s, bool allow_wild)
{
    size_t label = 0, n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    if (s[0] == '*') {
        if (!allow_wild || s[1] != '.' || s[2] == '\0')
            return false;
        s += 2;
    }
    for (const char *p = s; ; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return false;
            if (*p == '\0')
                break;
            label = 0;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (*p == '-' && label > 0)))
            return false;
        label++;
    }
    struct in6_addr a6;
    struct in_addr a4;
    return inet_pton(AF_INET, s, &a4) != 1 && inet_pton(AF_INET6, s, &a6) != 1;
}

/* Absolute path as the HTTPRoute CRD requires: starts with '/', no "//", "/./", "/../", "%2f", "#". */
bool valid_path(const char *s)
{
    if (s[0] != '/')
        return false;
    if (strstr(s, "//") || strstr(s, "/./") || strstr(s, "/../") || strstr(s, "%2f") || strstr(s, "%2F") ||
        strchr(s, '#') || strchr(s, '?'))
        return false;
    size_t n = strlen(s);
    if ((n >= 2 && strcmp(s + n - 2, "/.") == 0) || (n >= 3 && strcmp(s + n - 3, "/..") == 0))
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* ---- common pieces ---- */

bool parse_meta(loader_t *ld, struct fy_node *root, pos_t at, meta_t *m)
{
    struct fy_node *md = get_map(ld, root, "metadata", true, at);
    memset(m, 0, sizeof(*m));
    if (md == NULL)
        return false;
    pos_t p = npos(md, at);
    m->name = get_str(ld, md, "name", true, p);
    m->ns = get_str(ld, md, "namespace", false, p);
    m->labels = get_map(ld, md, "labels", false, p);
    if (m->ns == NULL)
        m->ns = astrdup(ld, "default");
    return m->name != NULL;
}

/* ---- documents ---- */

void sg__config_parse_doc(loader_t *ld, struct fy_node *root)
{
    sg__config_index_doc(ld, root); /* lenient mode: every document, the empty ones too, keeps its number */
    pos_t at = npos(root, (pos_t){1, 1});
    if (root == NULL || nnull(root))
        return;
    if (fy_node_get_type(root) != FYNT_MAPPING) {
        ERR(ld, at, "a document must be a mapping with apiVersion and kind");
        return;
    }
    if (sg__config_dropped(ld, DX_DOC, 0))
        return;
    char *kind = get_str(ld, root, "kind", true, at);
    char *api = get_str(ld, root, "apiVersion", true, at);
    if (kind == NULL || api == NULL)
        return;
    static const struct {
        const char *kind, *api, *api2;
        void (*fn)(loader_t *, struct fy_node *, pos_t);
    } kinds[] = {
        {"Gateway", "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1", parse_gateway},
        {"HTTPRoute", "gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1", parse_httproute},
        {"GRPCRoute", "gateway.networking.k8s.io/v1", NULL, parse_grpcroute},
        {"RoutePolicy", "alb.networking.azure.io/v1", NULL, sg__config_parse_route_policy},
        {"BackendLoadBalancingPolicy", "alb.networking.azure.io/v1", NULL, sg__config_parse_lb_policy},
        {"HealthCheckPolicy", "alb.networking.azure.io/v1", NULL, sg__config_parse_hc_policy},
        {"Service", "v1", NULL, parse_service},
        {"EndpointSlice", "discovery.k8s.io/v1", NULL, parse_slice},
        {"Secret", "v1", NULL, sg__config_parse_secret},
        {"Namespace", "v1", NULL, sg__config_parse_namespace},
        {"ConfigMap", "v1", NULL, sg__config_parse_configmap},
        {"FrontendTLSPolicy", "alb.networking.azure.io/v1", NULL, sg__config_parse_frontend_tls_policy},
        {"SSEPolicy", "ssegate.io/v1alpha1", NULL, sg__config_parse_sse_policy},
        {"ReferenceGrant", "gateway.networking.k8s.io/v1beta1", "gateway.networking.k8s.io/v1",
         sg__config_parse_refgrant},
    };
    /* BackendTLSPolicy comes in two forms: Gateway API's and AGC's, told apart by the group. */
    if (strcmp(kind, "BackendTLSPolicy") == 0) {
        if (strcmp(api, "gateway.networking.k8s.io/v1") == 0 || strcmp(api, "gateway.networking.k8s.io/v1alpha3") == 0)
            sg__config_parse_backend_tls_policy(ld, root, at);
        else if (strcmp(api, "alb.networking.azure.io/v1") == 0)
            sg__config_parse_agc_backend_tls_policy(ld, root, at);
        else
            ERR(ld, npos(field(root, "apiVersion"), at), "BackendTLSPolicy: apiVersion \"%s\" not supported (expected "
                "gateway.networking.k8s.io/v1, v1alpha3, or alb.networking.azure.io/v1)", api);
        return;
    }
    for (size_t i = 0; i < SG_ARRAY_LEN(kinds); i++) {
        if (strcmp(kind, kinds[i].kind) != 0)
            continue;
        if (strcmp(api, kinds[i].api) != 0 && (kinds[i].api2 == NULL || strcmp(api, kinds[i].api2) != 0)) {
            ERR(ld, npos(field(root, "apiVersion"), at), "%s: apiVersion \"%s\" not supported (expected %s)", kind,
                api, kinds[i].api);
            return;
        }
        kinds[i].fn(ld, root, at);
        return;
    }
    /* A kind that would change how traffic is routed or secured, if ssegate served it, is refused: the operator
     * would believe it in force. Other kinds (TLSRoute, TCPRoute, Ingress, GatewayClass...) carry
     * no meaning for this gateway and are skipped. */
    const char *slash = strchr(api, '/');
    size_t glen = slash ? (size_t)(slash - api) : 0;
    static const char *const own_groups[] = {"alb.networking.azure.io", "ssegate.io", "gateway.envoyproxy.io"};
    bool refuse = false;
    for (size_t i = 0; i < SG_ARRAY_LEN(own_groups) && !refuse; i++)
        refuse = glen == strlen(own_groups[i]) && strncmp(api, own_groups[i], glen) == 0;
    size_t klen = strlen(kind);
    refuse |= klen >= 6 && strcmp(kind + klen - 6, "Policy") == 0;
    static const char *const refused_kinds[] = {"ListenerSet", "XListenerSet"};
    for (size_t i = 0; i < SG_ARRAY_LEN(refused_kinds) && !refuse; i++)
        refuse = strcmp(kind, refused_kinds[i]) == 0;
    if (refuse)
        ERR(ld, npos(field(root, "kind"), at), "kind %s (%s) is not supported; refused, because it would change how "
            "traffic is routed or secured if it were in force", kind, api);
    else
        WARN(ld, npos(field(root, "kind"), at), "skipping kind %s: ssegate does not serve it", kind);
}

/* ---- load / lifetime ---- */

void sg__config_free_priv(priv_t *pv)
{
    if (pv == NULL)
        return;
    for (size_t i = 0; i < pv->ncodes; i++)
        pcre2_code_free(pv->codes[i]);
    free(pv->codes);
    blk_t *b = pv->blocks;
    while (b != NULL) {
        blk_t *nx = b->next;
        free(b);
        b = nx;
    }
    free(pv);
}

static void free_tables(sg_config_t *cfg)
{
    sg__config_free_tls(cfg);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        sg_route_table_free(cfg->listeners[i].table);
        cfg->listeners[i].table = NULL;
    }
}

static void report_yaml_errors(loader_t *ld)
{
    void *it = NULL;
    struct fy_diag_error *de;
    int n = 0;
    while ((de = fy_diag_errors_iterate(ld->diag, &it)) != NULL) {
        if (de->type < FYET_ERROR)
            continue;
        /* libfyaml's collected errors are already 1-based */
        ERR(ld, ((pos_t){de->line, de->column}), "YAML: %s", de->msg ? de->msg : "syntax error");
        n++;
    }
    if (n == 0)
        ERR(ld, ((pos_t){1, 1}), "YAML: cannot parse the document");
}

/* Offset of the first byte that is not well-formed UTF-8 (RFC 3629), or len. */
size_t utf8_bad(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3
                 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
        if (n == 0 || i + n > len)
            return i;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) || (c == 0xf0 && s[i + 1] < 0x90) ||
            (c == 0xf4 && s[i + 1] > 0x8f))
            return i;
        i += n;
    }
    return len;
}

/* Documents given parsed: read in order, as a stream's would be. They are the caller's (the loader only reads them). */
static int load_docs(loader_t *ld, const cin_t *in)
{
    ld->file = astrdup(ld, ld->file);
    for (size_t i = 0; i < in->ndocs; i++) {
        sg__config_parse_doc(ld, in->docs[i] ? fy_document_root(in->docs[i]) : NULL);
        ld->docno++;
    }
    return 0;
}

static int load_text(loader_t *ld, const char *yaml, size_t len)
{
    /* YAML streams here are UTF-8; libfyaml 0.7.12 also loops forever on some invalid bytes (found by
     * fuzz_config), so they are refused before it sees them. */
    size_t bad = utf8_bad((const unsigned char *)yaml, len);
    if (bad < len) {
        int line = 1, col = 1;
        for (size_t i = 0; i < bad; i++, col++)
            if (yaml[i] == '\n') {
                line++;
                col = 0;
            }
        ld->file = astrdup(ld, ld->file);
        ERR(ld, ((pos_t){line, col}), "YAML: invalid UTF-8 (byte 0x%02x)", (unsigned char)yaml[bad]);
        return -EINVAL;
    }
    struct fy_diag_cfg dcfg;
    memset(&dcfg, 0, sizeof(dcfg));
    dcfg.fp = NULL;
    dcfg.level = FYET_ERROR;
    dcfg.output_fn = NULL;
    ld->file = astrdup(ld, ld->file); /* routes keep it after the caller's string is gone */
    ld->diag = fy_diag_create(&dcfg);
    if (ld->diag == NULL)
        return -ENOMEM;
    fy_diag_set_collect_errors(ld->diag, true);
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT;
    pcfg.diag = ld->diag;
    ld->fyp = fy_parser_create(&pcfg);
    if (ld->fyp == NULL || fy_parser_set_string(ld->fyp, yaml, len) != 0)
        return -ENOMEM;
    for (;;) {
        ld->doc = fy_parse_load_document(ld->fyp);
        if (ld->doc == NULL)
            break;
        sg__config_parse_doc(ld, fy_document_root(ld->doc));
        fy_parse_document_destroy(ld->fyp, ld->doc);
        ld->doc = NULL;
        ld->docno++;
    }
    if (fy_parser_get_stream_error(ld->fyp) || fy_diag_got_error(ld->diag))
        report_yaml_errors(ld);
    return 0;
}

static int load(loader_t *ld, const cin_t *in, sg_config_t **out)
{
    int lrc = in->docs != NULL ? load_docs(ld, in) : load_text(ld, in->yaml, in->len);
    if (lrc != 0)
        return lrc;
    sg__config_index_services(ld);
    sg_config_t *cfg = aalloc(ld, sizeof(*cfg));
    atomic_init(&cfg->refs, 1);
    cfg->priv = ld->priv;
    cfg->listeners = ld->lis;
    cfg->nlisteners = ld->nlis;
    cfg->routes = ld->routes;
    cfg->nroutes = ld->nroutes;
    /* Cross-document checks run even after errors, so one run reports everything; name resolution
     * (possibly DNS) only for a config that will be used. */
    sg__config_apply_route_policies(ld);
    sg__config_apply_sse_policies(ld, cfg);
    sg__config_apply_backend_policies(ld);
    sg__config_apply_namespaces(ld);
    sg__config_apply_frontend_tls(ld);
    build_binds(ld, cfg);
    sg__config_build_tls(ld, cfg);
    sg__config_apply_backend_tls(ld, cfg);
    sg__config_apply_app_protocols(ld);
    if (ld->nerr == 0)
        resolve_backends(ld);
    int rc = sg_route_compile(cfg, ld->errs);
    if (rc == -ENOMEM) {
        free_tables(cfg);
        return -ENOMEM;
    }
    if (rc != 0)
        ld->nerr++;
    if (ld->nerr > 0) {
        free_tables(cfg);
        return -EINVAL;
    }
    if (ld->dx != NULL)
        sg__config_diag_fill(ld, cfg);
    *out = cfg;
    return 0;
}

int sg_config_load_string(const char *name, const char *yaml, size_t len, FILE *errs, sg_config_t **out)
{
    return sg_config_load_ex(name, yaml, len, 0, errs, out);
}

int sg_config_load_ex(const char *name, const char *yaml, size_t len, unsigned flags, FILE *errs,
                      sg_config_t **out)
{
    cin_t in = {.yaml = yaml, .len = len};
    return sg__config_load_dx(name, &in, flags, NULL, errs, out);
}

int sg__config_load_dx(const char *name, const cin_t *in, unsigned flags, struct sg_dx *dx, FILE *errs,
                       sg_config_t **out)
{
    *out = NULL;
    loader_t *ld = calloc(1, sizeof(*ld));
    if (ld == NULL)
        return -ENOMEM;
    ld->file = name;
    ld->errs = errs;
    ld->flags = flags;
    ld->dx = dx;
    ld->priv = calloc(1, sizeof(priv_t));
    int rc = -ENOMEM;
    if (ld->priv != NULL) {
        if (setjmp(ld->oom) == 0)
            rc = load(ld, in, out);
        else
            rc = -ENOMEM;
    }
    if (ld->doc != NULL)
        fy_parse_document_destroy(ld->fyp, ld->doc);
    if (ld->fyp != NULL)
        fy_parser_destroy(ld->fyp);
    if (ld->diag != NULL)
        fy_diag_destroy(ld->diag);
    if (rc != 0) {
        if (rc == -ENOMEM && errs != NULL)
            sg_escape_fputline(errs, "%s: out of memory while loading the configuration", name);
        sg__config_free_priv(ld->priv);
        *out = NULL;
    }
    free(ld);
    return rc;
}

int sg_config_load(const char *path, FILE *errs, sg_config_t **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        if (errs)
            sg_escape_fputline(errs, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap)
            break;
        char *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f) ? EIO : 0;
    fclose(f);
    if (buf == NULL)
        return -ENOMEM;
    if (err) {
        free(buf);
        if (errs)
            sg_escape_fputline(errs, "%s: read error", path);
        return -err;
    }
    int rc = sg_config_load_string(path, buf, len, errs, out);
    free(buf);
    return rc;
}

void sg_config_ref(sg_config_t *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
}

void sg_config_unref(sg_config_t *cfg)
{
    if (cfg == NULL || atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    priv_t *pv = cfg->priv;
    sg_config_t *root = pv->root;
    if (root == NULL)
        free_tables(cfg);
    else /* a patch: its own route tables; the TLS contexts are the root's */
        for (size_t i = 0; i < cfg->nlisteners; i++)
            sg_route_table_free(cfg->listeners[i].table);
    /* cfg itself lives in the arena. */
    sg__config_free_priv(pv);
    sg_config_unref(root);
}
