/* tlsclient.c: OpenSSL 3 client contexts for TLS to backends: verification (CAs or the system store, hostname or
 * subjectAltNames), a client certificate, session resumption through a per-connection hook, and failure reasons. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "net/tls.h"
#include "net/tlsclient.h"

static const unsigned char ALPN_H1[] = "\x08http/1.1";

struct sg_tls_client {
    SSL_CTX *ctx;
    char *hostname;
    char **san_hosts;
    size_t nsan_hosts;
    char **san_uris;
    size_t nsan_uris;
    uint8_t id[SG_TLS_CLIENT_ID_LEN];
};

/* The verification error a subjectAltNames mismatch is recorded as (OpenSSL has none of its own for URIs). */
#define SAN_MISMATCH X509_V_ERR_APPLICATION_VERIFICATION

static void set_err(char *err, size_t cap, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[256];
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err, cap, "%s (%s)", what, buf);
    } else {
        snprintf(err, cap, "%s", what);
    }
    ERR_clear_error();
}

static bool san_matches(const sg_tls_client_t *c, X509 *x)
{
    for (size_t i = 0; i < c->nsan_hosts; i++)
        if (X509_check_host(x, c->san_hosts[i], 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1)
            return true;
    if (c->nsan_uris == 0)
        return false;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
        for (size_t k = 0; k < c->nsan_uris && !found; k++)
            found = (size_t)u->length == strlen(c->san_uris[k]) &&
                    memcmp(u->data, c->san_uris[k], (size_t)u->length) == 0;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

/* OpenSSL checks the chain (and the hostname, set on the context's parameters); the subjectAltNames rule, when
 * the policy has one, replaces the hostname check and is applied here to the leaf. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    const sg_tls_client_t *c = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
    /* No policy (the context outlived it: never expected, as a handshake runs under its generation): refuse. */
    if (c == NULL)
        return 0;
    if (c->nsan_hosts + c->nsan_uris == 0)
        return ok;
    if (ok && X509_STORE_CTX_get_error_depth(x) == 0 && !san_matches(c, X509_STORE_CTX_get_current_cert(x))) {
        X509_STORE_CTX_set_error(x, SAN_MISMATCH);
        return 0;
    }
    return ok;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    sg_tls_session_hook_t *h = SSL_get_app_data(ssl);
    if (h == NULL || h->fn == NULL)
        return 0;
    h->fn(h, sess);
    return 1; /* the hook owns the session now */
}

static char **dup_list(const char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof(*out));
    for (size_t i = 0; out != NULL && i < n; i++)
        if ((out[i] = strdup(v[i])) == NULL) {
            while (i-- > 0)
                free(out[i]);
            free(out);
            return NULL;
        }
    return out;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

static void digest_part(EVP_MD_CTX *md, const char *p, size_t n)
{
    uint64_t len = p ? n : UINT64_MAX;
    EVP_DigestUpdate(md, &len, sizeof(len));
    if (p != NULL && n > 0)
        EVP_DigestUpdate(md, p, n);
}

static int make_id(const sg_tls_client_spec_t *s, uint8_t *id)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    if (ok) {
        digest_part(md, s->ca, s->ca_len);
        digest_part(md, s->system ? "system" : "", s->system ? 6 : 0);
        digest_part(md, s->hostname, s->hostname ? strlen(s->hostname) : 0);
        for (size_t i = 0; i < s->nsan_hosts; i++)
            digest_part(md, s->san_hosts[i], strlen(s->san_hosts[i]));
        digest_part(md, "uris", 4);
        for (size_t i = 0; i < s->nsan_uris; i++)
            digest_part(md, s->san_uris[i], strlen(s->san_uris[i]));
        digest_part(md, s->crt, s->crt_len);
        digest_part(md, s->key, s->key_len);
        ok = EVP_DigestFinal_ex(md, id, &len) == 1 && len == SG_TLS_CLIENT_ID_LEN;
    }
    EVP_MD_CTX_free(md);
    return ok ? 0 : -ENOMEM;
}

void sg_tls_client_free(sg_tls_client_t *c)
{
    if (c == NULL)
        return;
    if (c->ctx != NULL)
        SSL_CTX_set_app_data(c->ctx, NULL); /* SSL objects may keep the context alive; the policy goes */
    SSL_CTX_free(c->ctx);
    free(c->hostname);
    free_list(c->san_hosts, c->nsan_hosts);
    free_list(c->san_uris, c->nsan_uris);
    free(c);
}

sg_tls_client_t *sg_tls_client_new(const sg_tls_client_spec_t *spec, char *err, size_t cap)
{
    sg_tls_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL || spec->hostname == NULL || (c->hostname = strdup(spec->hostname)) == NULL ||
        (c->san_hosts = dup_list(spec->san_hosts, spec->nsan_hosts)) == NULL ||
        (c->san_uris = dup_list(spec->san_uris, spec->nsan_uris)) == NULL || make_id(spec, c->id) < 0 ||
        (c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        snprintf(err, cap, spec->hostname == NULL ? "no hostname" : "out of memory");
        sg_tls_client_free(c);
        return NULL;
    }
    c->nsan_hosts = spec->nsan_hosts;
    c->nsan_uris = spec->nsan_uris;
    SSL_CTX *ctx = c->ctx;
    SSL_CTX_set_app_data(ctx, c);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Our output queue may move between retries; idle connections (and idle SSE streams) give their TLS buffers
     * back, which is most of what a TLS connection costs at rest. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* One read(2) takes every record that has arrived, not one record: SSE events are small records. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* Sessions are kept by the caller (per worker and endpoint, through the hook), not in a shared cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    if (SSL_CTX_set_alpn_protos(ctx, ALPN_H1, sizeof(ALPN_H1) - 1) != 0) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    if (spec->ca != NULL) {
        if (sg_tls_read_ca(spec->ca, spec->ca_len, SSL_CTX_get_cert_store(ctx), NULL, err, cap) < 0)
            goto fail;
    } else if (spec->system) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            set_err(err, cap, "the system's CA certificates cannot be loaded");
            goto fail;
        }
    } else {
        snprintf(err, cap, "no CA certificates to verify the backend with");
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    if (spec->nsan_hosts + spec->nsan_uris == 0) {
        X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(vp, spec->hostname, 0) != 1) {
            set_err(err, cap, "hostname not usable");
            goto fail;
        }
    }
    if (spec->crt != NULL && sg_tls_load_pair(ctx, spec->crt, spec->crt_len, spec->key, spec->key_len, NULL, err,
                                              cap) < 0)
        goto fail;
    return c;
fail:
    sg_tls_client_free(c);
    return NULL;
}

const uint8_t *sg_tls_client_id(const sg_tls_client_t *c)
{
    return c->id;
}

const char *sg_tls_client_hostname(const sg_tls_client_t *c)
{
    return c->hostname;
}

struct ssl_st *sg_tls_client_ssl(const sg_tls_client_t *c, int fd, struct ssl_session_st *sess,
                                 sg_tls_session_hook_t *hook)
{
    SSL *ssl = SSL_new(c->ctx);
    if (ssl == NULL)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, c->hostname) != 1 ||
        (sess != NULL && SSL_set_session(ssl, sess) != 1)) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    SSL_set_app_data(ssl, hook);
    SSL_set_connect_state(ssl);
    return ssl;
}

static int verify_reason(long v)
{
    switch (v) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return SG_UPTLS_EXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
        return SG_UPTLS_HOSTNAME;
    case SAN_MISMATCH:
        return SG_UPTLS_SAN;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return SG_UPTLS_UNKNOWN_CA;
    default:
        return SG_UPTLS_VERIFY;
    }
}

int sg_tls_client_handshake(struct ssl_st *ssl, bool *want_write, int *reason, const char **why)
{
    ERR_clear_error();
    errno = 0;
    int rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return 0;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *want_write = e == SSL_ERROR_WANT_WRITE;
        return SG_EAGAIN;
    }
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        *reason = verify_reason(v);
        *why = v == SAN_MISMATCH ? "no subjectAltName of the policy matches the certificate"
                                 : X509_verify_cert_error_string(v);
    } else {
        unsigned long le = ERR_peek_last_error();
        const char *r = le != 0 ? ERR_reason_error_string(le) : NULL;
        *reason = SG_UPTLS_HANDSHAKE;
        *why = r != NULL ? r : e == SSL_ERROR_SYSCALL && errno != 0 ? "connection reset during the handshake"
                                                                     : "connection closed by the backend";
    }
    ERR_clear_error();
    return -EKEYREJECTED;
}

bool sg_tls_client_resumed(struct ssl_st *ssl)
{
    return SSL_session_reused(ssl) == 1;
}
