/* tls.c: OpenSSL 3 contexts for HTTPS listeners: certificates from PEM blobs, SNI, ALPN, TLS 1.2+. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "net/tls.h"

static const unsigned char ALPN_H2[] = "\x02h2\x08http/1.1";
static const unsigned char ALPN_H1[] = "\x08http/1.1";

typedef struct entry {
    char *hostname;             /* lower case; NULL: any */
    SSL_CTX *ctx;
    X509 *leaf;                 /* for SNI names the listener hostname does not cover */
    bool h1_only;
} entry_t;

struct sg_tls_server {
    entry_t *entries;
    size_t n;
    size_t def;                 /* default entry */
};

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

/* Loads the certificate chain and key of spec into ctx. Returns 0 or -EINVAL with err set. */
static int load_pair(SSL_CTX *ctx, const char *crt, size_t crt_len, const char *key, size_t key_len, X509 **leaf_out,
                     char *err, size_t cap)
{
    int rc = -EINVAL;
    BIO *cb = BIO_new_mem_buf(crt, (int)crt_len);
    BIO *kb = BIO_new_mem_buf(key, (int)key_len);
    X509 *leaf = NULL;
    EVP_PKEY *pk = NULL;
    if (cb == NULL || kb == NULL) {
        snprintf(err, cap, "out of memory");
        goto out;
    }
    leaf = PEM_read_bio_X509_AUX(cb, NULL, NULL, NULL);
    if (leaf == NULL) {
        set_err(err, cap, "tls.crt holds no PEM certificate");
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        set_err(err, cap, "tls.crt: certificate not usable");
        goto out;
    }
    for (;;) {
        X509 *ca = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        if (ca == NULL)
            break;
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            set_err(err, cap, "tls.crt: chain certificate not usable");
            goto out;
        }
    }
    ERR_clear_error(); /* the end of the PEM stream reads as an error */
    pk = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    if (pk == NULL) {
        set_err(err, cap, "tls.key holds no PEM private key");
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, cap, "tls.key does not match the certificate in tls.crt");
        goto out;
    }
    if (leaf_out) {
        *leaf_out = leaf;
        leaf = NULL;
    }
    rc = 0;
out:
    X509_free(leaf);
    EVP_PKEY_free(pk);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

int sg_tls_check_pair(const char *crt, size_t crt_len, const char *key, size_t key_len, char *err, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    int rc = load_pair(ctx, crt, crt_len, key, key_len, NULL, err, cap);
    SSL_CTX_free(ctx);
    return rc;
}

static bool host_matches(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        /* "*.example.com" covers one or more labels before example.com (Gateway API listener rule). */
        const char *suffix = pattern + 1;
        size_t sl = strlen(suffix), nl = strlen(name);
        return nl > sl && strcasecmp(name + nl - sl, suffix) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    sg_tls_server_t *srv = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || srv->n < 2)
        return SSL_TLSEXT_ERR_OK;
    const entry_t *pick = NULL;
    /* Exact listener hostnames first, then wildcards, then what the certificates themselves cover. */
    for (size_t i = 0; i < srv->n && !pick; i++)
        if (srv->entries[i].hostname && srv->entries[i].hostname[0] != '*' &&
            host_matches(srv->entries[i].hostname, name))
            pick = &srv->entries[i];
    for (size_t i = 0; i < srv->n && !pick; i++)
        if (srv->entries[i].hostname && srv->entries[i].hostname[0] == '*' &&
            host_matches(srv->entries[i].hostname, name))
            pick = &srv->entries[i];
    for (size_t i = 0; i < srv->n && !pick; i++)
        if (srv->entries[i].hostname == NULL && X509_check_host(srv->entries[i].leaf, name, 0, 0, NULL) == 1)
            pick = &srv->entries[i];
    if (pick != NULL && SSL_get_SSL_CTX(ssl) != pick->ctx)
        SSL_set_SSL_CTX(ssl, pick->ctx);
    return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                   unsigned int inlen, void *arg)
{
    (void)ssl;
    const entry_t *e = arg;
    const unsigned char *ours = e->h1_only ? ALPN_H1 : ALPN_H2;
    unsigned int ourlen = e->h1_only ? sizeof(ALPN_H1) - 1 : sizeof(ALPN_H2) - 1;
    unsigned char *sel = NULL;
    /* Our preference order wins: h2 when the client offers it. */
    if (SSL_select_next_proto(&sel, outlen, ours, ourlen, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

void sg_tls_server_free(sg_tls_server_t *srv)
{
    if (srv == NULL)
        return;
    for (size_t i = 0; i < srv->n; i++) {
        SSL_CTX_free(srv->entries[i].ctx);
        X509_free(srv->entries[i].leaf);
        free(srv->entries[i].hostname);
    }
    free(srv->entries);
    free(srv);
}

sg_tls_server_t *sg_tls_server_new(const sg_tls_cert_spec_t *certs, size_t n, char *err, size_t cap)
{
    sg_tls_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL || n == 0 || (srv->entries = calloc(n, sizeof(entry_t))) == NULL) {
        snprintf(err, cap, n == 0 ? "no certificate" : "out of memory");
        free(srv);
        return NULL;
    }
    bool have_def = false;
    for (size_t i = 0; i < n; i++) {
        entry_t *e = &srv->entries[srv->n];
        e->ctx = SSL_CTX_new(TLS_server_method());
        if (e->ctx == NULL) {
            snprintf(err, cap, "out of memory");
            goto fail;
        }
        srv->n++;
        e->h1_only = certs[i].h1_only;
        if (certs[i].hostname) {
            e->hostname = strdup(certs[i].hostname);
            if (e->hostname == NULL) {
                snprintf(err, cap, "out of memory");
                goto fail;
            }
        } else if (!have_def) {
            have_def = true;
            srv->def = i;
        }
        SSL_CTX_set_min_proto_version(e->ctx, TLS1_2_VERSION);
        /* Renegotiation is a DoS vector and HTTP/2 forbids it; server order picks the strongest cipher. */
        SSL_CTX_set_options(e->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                        SSL_OP_NO_COMPRESSION);
        /* Our output queue may move between retries; idle connections give their TLS buffers back. */
        SSL_CTX_set_mode(e->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                     SSL_MODE_RELEASE_BUFFERS);
        SSL_CTX_set_session_id_context(e->ctx, (const unsigned char *)"ssegate", 7);
        if (load_pair(e->ctx, certs[i].crt, certs[i].crt_len, certs[i].key, certs[i].key_len, &e->leaf, err, cap) < 0)
            goto fail;
        SSL_CTX_set_tlsext_servername_callback(e->ctx, sni_cb);
        SSL_CTX_set_tlsext_servername_arg(e->ctx, srv);
        SSL_CTX_set_alpn_select_cb(e->ctx, alpn_cb, e);
    }
    return srv;
fail:
    sg_tls_server_free(srv);
    return NULL;
}

struct ssl_st *sg_tls_accept(sg_tls_server_t *srv, int fd)
{
    SSL *ssl = SSL_new(srv->entries[srv->def].ctx);
    if (ssl == NULL)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

bool sg_tls_is_h2(struct ssl_st *ssl)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}
