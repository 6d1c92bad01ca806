/* config_tls.c: Secrets of type kubernetes.io/tls (base64 data, or file paths outside a cluster), listener tls
 * blocks, and the TLS contexts of HTTPS binds, checked at load time with file positions. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "net/tls.h"
#include "net/tlsclient.h"

#define MAX_PEM (1024 * 1024)
#define ANN_CRT_FILE "ssegate.io/tls-crt-file"
#define ANN_KEY_FILE "ssegate.io/tls-key-file"
#define OPT_ALPN "ssegate.io/alpn"

/* Decodes base64 (whitespace ignored, as YAML may fold it) into the arena. Returns false when invalid. */
#define b64_decode sg__config_b64_decode
bool b64_decode(loader_t *ld, const char *in, char **out, size_t *out_len)
{
    size_t n = strlen(in), k = 0;
    char *clean = aalloc(ld, n + 1);
    for (size_t i = 0; i < n; i++)
        if (in[i] != ' ' && in[i] != '\n' && in[i] != '\r' && in[i] != '\t')
            clean[k++] = in[i];
    if (k == 0 || k % 4 != 0)
        return false;
    unsigned char *dst = aalloc(ld, k / 4 * 3 + 1);
    int m = EVP_DecodeBlock(dst, (const unsigned char *)clean, (int)k);
    if (m < 0)
        return false;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    size_t pad = (clean[k - 1] == '=') + (clean[k - 2] == '=');
    *out = (char *)dst;
    *out_len = (size_t)m - pad;
    return true;
}

/* Reads a file named by a Secret; a relative path is relative to the config file's directory. */
static bool read_file(loader_t *ld, const char *path, pos_t at, char **out, size_t *out_len)
{
    char full[4096];
    const char *slash = strrchr(ld->file, '/');
    if (path[0] != '/' && slash != NULL)
        snprintf(full, sizeof(full), "%.*s/%s", (int)(slash - ld->file), ld->file, path);
    else
        snprintf(full, sizeof(full), "%s", path);
    FILE *f = fopen(full, "rb");
    if (f == NULL) {
        ERR(ld, at, "cannot read %s: %s", full, strerror(errno));
        return false;
    }
    /* Read into a scratch buffer and keep only what the file holds: the config lives as long as its
     * generation, and a 1 MiB block per certificate file would stay resident all that time. */
    char *tmp = malloc(MAX_PEM + 1);
    if (tmp == NULL) {
        fclose(f);
        ERR(ld, at, "cannot read %s: out of memory", full);
        return false;
    }
    size_t n = fread(tmp, 1, MAX_PEM + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || n > MAX_PEM) {
        free(tmp);
        ERR(ld, at, "cannot read %s: %s", full, bad ? "read error" : "larger than 1 MiB");
        return false;
    }
    char *buf = aalloc(ld, n + 1);
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    free(tmp);
    *out = buf;
    *out_len = n;
    return true;
}

void sg__config_parse_secret(loader_t *ld, struct fy_node *root, pos_t at)
{
    meta_t m;
    if (!parse_meta(ld, root, at, &m))
        return;
    char *type = get_str(ld, root, "type", false, at);
    sg__config_secret_ca(ld, &m, root, at); /* a ca.crt may be a caCertificateRef's target, whatever the type */
    if (type == NULL || strcmp(type, "kubernetes.io/tls") != 0)
        return; /* other Secrets are none of our business */
    secret_t *s = VPUSH(ld, ld->secrets, ld->nsecrets, ld->capsecrets);
    s->ns = m.ns;
    s->name = m.name;
    s->pos = at;
    struct fy_node *meta = field(root, "metadata");
    struct fy_node *ann = get_map(ld, meta, "annotations", false, at);
    char *crt_file = get_str(ld, ann, ANN_CRT_FILE, false, at);
    char *key_file = get_str(ld, ann, ANN_KEY_FILE, false, at);
    struct fy_node *data = get_map(ld, root, "data", false, at);
    struct fy_node *sdata = get_map(ld, root, "stringData", false, at);
    if ((crt_file != NULL) != (key_file != NULL)) {
        ERR(ld, npos(ann, at), "Secret %s/%s: give both %s and %s", s->ns, s->name, ANN_CRT_FILE, ANN_KEY_FILE);
        return;
    }
    if (crt_file != NULL) {
        if (read_file(ld, crt_file, npos(field(ann, ANN_CRT_FILE), at), &s->crt, &s->crt_len) &&
            !read_file(ld, key_file, npos(field(ann, ANN_KEY_FILE), at), &s->key, &s->key_len))
            s->crt = NULL;
        return;
    }
    static const char *const keys[2] = {"tls.crt", "tls.key"};
    char **dst[2] = {&s->crt, &s->key};
    size_t *dlen[2] = {&s->crt_len, &s->key_len};
    for (int i = 0; i < 2; i++) {
        char *v = get_str(ld, data, keys[i], false, at);
        if (v != NULL) {
            if (!b64_decode(ld, v, dst[i], dlen[i]))
                ERR(ld, npos(field(data, keys[i]), at), "Secret %s/%s: data.%s is not valid base64", s->ns, s->name,
                    keys[i]);
            continue;
        }
        v = get_str(ld, sdata, keys[i], false, at);
        if (v != NULL) {
            *dst[i] = v;
            *dlen[i] = strlen(v);
            continue;
        }
        ERR(ld, at, "Secret %s/%s of type kubernetes.io/tls has no data.%s (nor the %s annotations)", s->ns, s->name,
            keys[i], i == 0 ? ANN_CRT_FILE : ANN_KEY_FILE);
    }
    if (s->crt == NULL || s->key == NULL) {
        s->crt = s->key = NULL;
        return;
    }
    char err[512];
    if (sg_tls_check_pair(s->crt, s->crt_len, s->key, s->key_len, err, sizeof(err)) < 0) {
        ERR(ld, at, "Secret %s/%s: %s", s->ns, s->name, err);
        s->crt = s->key = NULL;
    }
}

void sg__config_parse_listener_tls(loader_t *ld, sg_listener_t *li, struct fy_node *tls, pos_t at)
{
    if (tls == NULL)
        return;
    pos_t tp = npos(tls, at);
    check_keys(ld, tls, "listener tls", KEYS("mode", "certificateRefs", "options", "frontendValidation"));
    if (field(tls, "frontendValidation") != NULL)
        ERR(ld, key_pos(tls, "frontendValidation", tp), "listener \"%s\": tls.frontendValidation is the older form "
            "of client-certificate validation, which Gateway API replaced because listeners sharing a port cannot "
            "each enforce their own; use the current one, Gateway spec.tls.frontend.default.validation (or "
            "spec.tls.frontend.perPort)", li->name);
    char *mode = get_str(ld, tls, "mode", false, tp);
    if (mode != NULL && strcmp(mode, "Terminate") != 0)
        ERR(ld, npos(field(tls, "mode"), tp), "listener \"%s\": tls.mode \"%s\" not supported (only Terminate)",
            li->name, mode);
    struct fy_node *opts = get_map(ld, tls, "options", false, tp);
    check_keys(ld, opts, "listener tls.options", KEYS(OPT_ALPN));
    char *alpn = get_str(ld, opts, OPT_ALPN, false, tp);
    if (alpn != NULL) {
        if (strcmp(alpn, "http/1.1") == 0)
            li->tls_h1_only = true;
        else if (strcmp(alpn, "h2,http/1.1") != 0)
            ERR(ld, npos(field(opts, OPT_ALPN), tp), "listener \"%s\": %s must be \"h2,http/1.1\" or \"http/1.1\"",
                li->name, OPT_ALPN);
    }
}

static const secret_t *find_secret(loader_t *ld, const char *ref)
{
    for (size_t i = 0; i < ld->nsecrets; i++) {
        const secret_t *s = &ld->secrets[i];
        size_t nl = strlen(s->ns);
        if (strncmp(ref, s->ns, nl) == 0 && ref[nl] == '/' && strcmp(ref + nl + 1, s->name) == 0)
            return s;
    }
    return NULL;
}

void sg__config_build_tls(loader_t *ld, sg_config_t *cfg)
{
    for (size_t b = 0; b < cfg->nbinds; b++) {
        sg_bind_t *bd = &cfg->binds[b];
        if (bd->protocol != SG_PROTO_HTTPS)
            continue;
        size_t cap = 0, n = 0;
        for (size_t i = 0; i < cfg->nlisteners; i++)
            if (cfg->listeners[i].protocol == SG_PROTO_HTTPS && cfg->listeners[i].port == bd->port)
                cap += cfg->listeners[i].ncert_refs;
        sg_tls_cert_spec_t *specs = aalloc(ld, (cap + 1) * sizeof(*specs));
        const sg_listener_t *first = NULL;
        for (size_t i = 0; i < cfg->nlisteners; i++) {
            const sg_listener_t *li = &cfg->listeners[i];
            if (li->protocol != SG_PROTO_HTTPS || li->port != bd->port)
                continue;
            if (first == NULL)
                first = li;
            /* SNI picks a certificate, the Host header a listener, and nothing makes them agree: a listener
             * without validation on the port would let any client reach the listeners that have it. */
            if (li->client_validation != first->client_validation)
                ERR(ld, ((pos_t){li->line, li->col}), "HTTPS port %u: listeners \"%s\" (%s) and \"%s\" (%s) share "
                    "the port but not their client-certificate validation; one port has one validation", bd->port,
                    first->name, first->client_validation ? first->client_validation->source : "none", li->name,
                    li->client_validation ? li->client_validation->source : "none");
            for (size_t r = 0; r < li->ncert_refs; r++) {
                const secret_t *s = find_secret(ld, li->cert_refs[r]);
                if (s == NULL) {
                    /* As in a cluster: an unresolved reference leaves the listener without that certificate. */
                    WARN(ld, ((pos_t){li->line, li->col}), "listener \"%s\": certificateRef %s: no Secret of type "
                         "kubernetes.io/tls with that name", li->name, li->cert_refs[r]);
                    continue;
                }
                if (s->crt == NULL)
                    continue; /* reported at the Secret */
                specs[n++] = (sg_tls_cert_spec_t){li->hostname, s->crt, s->crt_len, s->key, s->key_len,
                                                  li->tls_h1_only};
            }
        }
        if (n == 0) {
            /* Never serve plain text on a port the config calls HTTPS: that would send what clients believe is
             * encrypted in the clear, or fail them in confusing ways. */
            if (first != NULL)
                ERR(ld, ((pos_t){first->line, first->col}), "HTTPS port %u has no usable certificate: an HTTPS "
                    "listener needs a certificateRef to a kubernetes.io/tls Secret", bd->port);
            continue;
        }
        if (ld->nerr > 0)
            continue; /* the config will not be used; OpenSSL contexts would only be freed again */
        char err[512];
        const sg_client_validation_t *cv = first->client_validation;
        sg_tls_client_verify_t verify = {cv ? cv->ca : NULL, cv ? cv->ca_len : 0, cv && cv->insecure_fallback,
                                         cv ? cv->subject_alt_name : NULL};
        bd->tls = sg_tls_server_new(specs, n, cv ? &verify : NULL, err, sizeof(err));
        if (bd->tls == NULL)
            ERR(ld, ((pos_t){first->line, first->col}), "HTTPS port %u: %s", bd->port, err);
    }
}

void sg__config_free_tls(sg_config_t *cfg)
{
    for (size_t b = 0; b < cfg->nbinds; b++) {
        sg_tls_server_free(cfg->binds[b].tls);
        cfg->binds[b].tls = NULL;
    }
    for (size_t i = 0; i < cfg->nupstream_tls; i++)
        sg_tls_client_free(cfg->upstream_tls[i]);
    cfg->nupstream_tls = 0;
}
