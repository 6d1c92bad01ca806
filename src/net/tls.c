/* tls.c: OpenSSL 3 contexts for HTTPS listeners: certificates from PEM blobs, SNI, ALPN, TLS 1.2+, and the
 * verification of client certificates (frontend mTLS) with the identity it yields. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    X509_STORE *ca;             /* client-certificate validation: the trusted CAs; NULL: not asked for */
    bool optional;              /* AllowInsecureFallback */
    char *san;                  /* a SAN the client certificate must carry, or NULL */
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

int sg_tls_load_pair(SSL_CTX *ctx, const char *crt, size_t crt_len, const char *key, size_t key_len, X509 **leaf_out,
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
    int rc = sg_tls_load_pair(ctx, crt, crt_len, key, key_len, NULL, err, cap);
    SSL_CTX_free(ctx);
    return rc;
}

int sg_tls_read_ca(const char *ca, size_t ca_len, X509_STORE *store, STACK_OF(X509_NAME) *names, char *err,
                   size_t cap)
{
    BIO *b = BIO_new_mem_buf(ca, (int)ca_len);
    if (b == NULL) {
        snprintf(err, cap, "out of memory");
        return -ENOMEM;
    }
    int n = 0, rc = 0;
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (x == NULL) {
            unsigned long e = ERR_peek_last_error();
            /* The end of the stream reads as "no start line"; anything else is a broken certificate. */
            if (ERR_GET_REASON(e) != PEM_R_NO_START_LINE || n == 0) {
                set_err(err, cap, n == 0 ? "ca.crt holds no PEM certificate" : "ca.crt: a certificate does not parse");
                rc = -EINVAL;
            }
            ERR_clear_error();
            break;
        }
        n++;
        bool ok = store == NULL || X509_STORE_add_cert(store, x) == 1;
        if (ok && names != NULL) {
            X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(x));
            ok = nm != NULL && sk_X509_NAME_push(names, nm) > 0;
            if (!ok)
                X509_NAME_free(nm);
        }
        X509_free(x);
        if (!ok) {
            set_err(err, cap, "ca.crt: certificate not usable");
            rc = -EINVAL;
            break;
        }
    }
    BIO_free(b);
    return rc < 0 ? rc : n;
}

int sg_tls_check_ca(const char *ca, size_t ca_len, char *err, size_t cap)
{
    return sg_tls_read_ca(ca, ca_len, NULL, NULL, err, cap);
}

/* True when the certificate carries san as a DNS name, e-mail address, IP address or URI (exactly). */
static bool san_matches(X509 *x, const char *san)
{
    if (X509_check_host(x, san, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1 || X509_check_email(x, san, 0, 0) == 1 ||
        X509_check_ip_asc(x, san, 0) == 1)
        return true;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_URI)
            continue;
        const ASN1_IA5STRING *u = g->d.uniformResourceIdentifier;
        found = (size_t)u->length == strlen(san) && memcmp(u->data, san, (size_t)u->length) == 0;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

/* OpenSSL's verdict on each certificate of the client's chain, plus the SAN rule on the leaf. Under
 * AllowInsecureFallback every failure is let through: the error stays recorded in the SSL's verify result,
 * which is what sg_tls_client_info reports. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    const sg_tls_server_t *srv = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
    if (srv == NULL)
        return ok;
    if (ok && srv->san != NULL && X509_STORE_CTX_get_error_depth(x) == 0 &&
        !san_matches(X509_STORE_CTX_get_current_cert(x), srv->san)) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_SUBJECT_ISSUER_MISMATCH);
        ok = 0;
    }
    return srv->optional ? 1 : ok;
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
    if (pick != NULL && SSL_get_SSL_CTX(ssl) != pick->ctx) {
        SSL_set_SSL_CTX(ssl, pick->ctx);
        /* SSL_set_SSL_CTX keeps the verify mode the SSL was made with; every context of a port has the same
         * one, but a switch must never be a way around client-certificate validation. */
        SSL_set_verify(ssl, SSL_CTX_get_verify_mode(pick->ctx), SSL_CTX_get_verify_callback(pick->ctx));
    }
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
    X509_STORE_free(srv->ca);
    free(srv->san);
    free(srv);
}

sg_tls_server_t *sg_tls_server_new(const sg_tls_cert_spec_t *certs, size_t n, const sg_tls_client_verify_t *verify,
                                   char *err, size_t cap)
{
    sg_tls_server_t *srv = calloc(1, sizeof(*srv));
    if (srv == NULL || n == 0 || (srv->entries = calloc(n, sizeof(entry_t))) == NULL) {
        snprintf(err, cap, n == 0 ? "no certificate" : "out of memory");
        free(srv);
        return NULL;
    }
    STACK_OF(X509_NAME) *names = NULL;
    if (verify != NULL) {
        srv->optional = verify->optional;
        names = sk_X509_NAME_new_null();
        if ((srv->ca = X509_STORE_new()) == NULL || names == NULL ||
            (verify->subject_alt_name != NULL && (srv->san = strdup(verify->subject_alt_name)) == NULL)) {
            snprintf(err, cap, "out of memory");
            goto fail;
        }
        if (sg_tls_read_ca(verify->ca, verify->ca_len, srv->ca, names, err, cap) < 0)
            goto fail;
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
        /* A session made where no client certificate was asked for never resumes where one is. */
        if (srv->ca != NULL)
            SSL_CTX_set_session_id_context(e->ctx, (const unsigned char *)"ssegate-mtls", 12);
        else
            SSL_CTX_set_session_id_context(e->ctx, (const unsigned char *)"ssegate", 7);
        if (sg_tls_load_pair(e->ctx, certs[i].crt, certs[i].crt_len, certs[i].key, certs[i].key_len, &e->leaf, err,
                             cap) < 0)
            goto fail;
        SSL_CTX_set_tlsext_servername_callback(e->ctx, sni_cb);
        SSL_CTX_set_tlsext_servername_arg(e->ctx, srv);
        SSL_CTX_set_alpn_select_cb(e->ctx, alpn_cb, e);
        SSL_CTX_set_app_data(e->ctx, srv);
        if (srv->ca != NULL) {
            STACK_OF(X509_NAME) *dup = SSL_dup_CA_list(names);
            if (dup == NULL) {
                snprintf(err, cap, "out of memory");
                goto fail;
            }
            SSL_CTX_set1_cert_store(e->ctx, srv->ca); /* a reference: every context of the port shares the store */
            SSL_CTX_set_client_CA_list(e->ctx, dup); /* the CertificateRequest names them: clients pick a cert */
            SSL_CTX_set_verify(e->ctx, SSL_VERIFY_PEER | (srv->optional ? 0 : SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
                               verify_cb);
        }
    }
    sk_X509_NAME_pop_free(names, X509_NAME_free);
    return srv;
fail:
    sk_X509_NAME_pop_free(names, X509_NAME_free);
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

/* ---- the client's identity, for X-Forwarded-Client-Cert ---- */

typedef struct out {
    char *p;
    size_t n, cap;
} out_t;

/* Appends key=value (with a ';' before it unless first) only if it fits whole. Printable ASCII other than the
 * element syntax goes as is; a value with ',', ';', '=', '"', '\\' or a space is quoted, with '"' and '\\'
 * backslash-escaped; every other byte becomes %HH. */
static void put_kv(out_t *o, const char *key, const unsigned char *v, size_t vn, bool quote)
{
    char tmp[1024];
    size_t k = 0;
    for (size_t i = 0; i < vn && !quote; i++)
        quote = strchr(",;=\"\\ ", v[i]) != NULL;
    k += (size_t)snprintf(tmp, sizeof(tmp), "%s%s=%s", o->n ? ";" : "", key, quote ? "\"" : "");
    for (size_t i = 0; i < vn; i++) {
        if (k + 5 >= sizeof(tmp))
            return;
        unsigned char c = v[i];
        if (c == '"' || c == '\\') {
            tmp[k++] = '\\';
            tmp[k++] = (char)c;
        } else if (c < 0x20 || c > 0x7e || c == '%') {
            k += (size_t)snprintf(tmp + k, sizeof(tmp) - k, "%%%02X", c);
        } else {
            tmp[k++] = (char)c;
        }
    }
    if (quote)
        tmp[k++] = '"';
    if (o->n + k + 1 > o->cap)
        return;
    memcpy(o->p + o->n, tmp, k);
    o->n += k;
    o->p[o->n] = '\0';
}

sg_tls_client_state_t sg_tls_client_info(struct ssl_st *ssl, char *outp, size_t cap)
{
    if (cap > 0)
        outp[0] = '\0';
    if ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) == 0)
        return SG_TLS_CLIENT_NONE;
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL)
        return SG_TLS_CLIENT_ABSENT;
    sg_tls_client_state_t st = SSL_get_verify_result(ssl) == X509_V_OK ? SG_TLS_CLIENT_VERIFIED
                                                                        : SG_TLS_CLIENT_UNVERIFIED;
    out_t o = {outp, 0, cap};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdn = 0;
    if (X509_digest(x, EVP_sha256(), md, &mdn) == 1) {
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        for (unsigned int i = 0; i < mdn; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        put_kv(&o, "Hash", (const unsigned char *)hex, 2 * mdn, false);
    }
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        if (n >= 0)
            put_kv(&o, "Subject", (const unsigned char *)p, (size_t)n, true);
    }
    BIO_free(b);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            if (pass == 0 && g->type == GEN_URI)
                put_kv(&o, "URI", g->d.uniformResourceIdentifier->data,
                       (size_t)g->d.uniformResourceIdentifier->length, false);
            else if (pass == 1 && g->type == GEN_DNS)
                put_kv(&o, "DNS", g->d.dNSName->data, (size_t)g->d.dNSName->length, false);
        }
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return st;
}
