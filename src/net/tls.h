/* tls.h: OpenSSL 3 for HTTPS listeners: one SSL_CTX per certificate, SNI choosing among them, ALPN (h2,
 * http/1.1), TLS 1.2 and later only. Handshakes are non-blocking and driven by conn.c. */
#ifndef SG_TLS_H
#define SG_TLS_H

#include "core/sg.h"

struct ssl_st;
struct x509_st;

/* One certificate of a listener. Strings are read during sg_tls_server_new only. */
typedef struct sg_tls_cert_spec {
    const char *hostname;       /* listener hostname ("*.example.com" allowed); NULL: any */
    const char *crt;            /* PEM: leaf certificate, then its chain */
    size_t crt_len;
    const char *key;            /* PEM private key */
    size_t key_len;
    bool h1_only;               /* ALPN offers http/1.1 only */
} sg_tls_cert_spec_t;

typedef struct sg_tls_server sg_tls_server_t;

/* Client-certificate validation of one HTTPS port (frontend mTLS). Strings are read during sg_tls_server_new
 * only. */
typedef struct sg_tls_client_verify {
    const char *ca;             /* PEM bundle: the CAs a client certificate must chain to */
    size_t ca_len;
    bool optional;              /* AllowInsecureFallback: a handshake without a valid certificate still succeeds */
    const char *subject_alt_name; /* NULL, or a DNS name, URI, e-mail or IP the client certificate must carry */
} sg_tls_client_verify_t;

/* What the handshake learned about the client's certificate (sg_tls_client_info). */
typedef enum sg_tls_client_state {
    SG_TLS_CLIENT_NONE = 0,     /* the port does not ask for client certificates */
    SG_TLS_CLIENT_VERIFIED,     /* a certificate that chains to the CA bundle (and has the SAN, if one is set) */
    SG_TLS_CLIENT_UNVERIFIED,   /* AllowInsecureFallback: a certificate that did not verify */
    SG_TLS_CLIENT_ABSENT,       /* AllowInsecureFallback: no certificate */
} sg_tls_client_state_t;

/*
 * Checks that crt parses, key parses and they belong together. Returns 0, or -EINVAL with a one-line reason
 * in err.
 */
int sg_tls_check_pair(const char *crt, size_t crt_len, const char *key, size_t key_len, char *err, size_t cap);

struct ssl_ctx_st;
struct x509_store_st;
struct stack_st_X509_NAME;

/* Loads a PEM certificate chain (leaf first) and its private key into ctx (the listener's certificate, or the
 * client certificate a gateway shows to backends). leaf_out (may be NULL) gets a reference to the leaf. Returns 0
 * or -EINVAL with a one-line reason in err. */
int sg_tls_load_pair(struct ssl_ctx_st *ctx, const char *crt, size_t crt_len, const char *key, size_t key_len,
                     struct x509_st **leaf_out, char *err, size_t cap);
/* Reads every certificate of a PEM bundle into store (NULL: count only) and their subjects into names (NULL: not
 * kept). Returns the count, or -EINVAL when the bundle holds no certificate or something that is not one. */
int sg_tls_read_ca(const char *ca, size_t ca_len, struct x509_store_st *store, struct stack_st_X509_NAME *names,
                   char *err, size_t cap);

/* Checks that ca is a PEM bundle of at least one certificate (and nothing else). Returns the number of
 * certificates, or -EINVAL with a one-line reason in err. */
int sg_tls_check_ca(const char *ca, size_t ca_len, char *err, size_t cap);

/*
 * Builds the TLS side of one listening port from its certificates (n >= 1). The first certificate whose
 * hostname is NULL is the default (else the first). verify (NULL: none) asks every client of the port for a
 * certificate and checks it, whichever certificate SNI picks. Returns NULL with a reason in err.
 */
sg_tls_server_t *sg_tls_server_new(const sg_tls_cert_spec_t *certs, size_t n, const sg_tls_client_verify_t *verify,
                                   char *err, size_t cap);
/* Frees the server. SSL objects made from it keep their contexts alive. Accepts NULL. */
void sg_tls_server_free(sg_tls_server_t *srv);

/* A server-side SSL object on fd, ready for SSL_do_handshake. srv must outlive the handshake. NULL: no memory. */
struct ssl_st *sg_tls_accept(sg_tls_server_t *srv, int fd);

/* True when the handshake selected "h2" through ALPN. */
bool sg_tls_is_h2(struct ssl_st *ssl);

/*
 * After a finished handshake: what the client's certificate proved, and, unless the state is NONE or ABSENT,
 * its identity in the form of Envoy's X-Forwarded-Client-Cert element into out (NUL-terminated, at most cap - 1
 * bytes; entries that would not fit are left out): Hash=<sha256 of the DER, hex>;Subject="<RFC 2253>";URI=..;
 * DNS=.. (one per SAN). Every byte outside printable ASCII is escaped, so a certificate cannot inject header
 * syntax. out is "" for NONE and ABSENT.
 */
sg_tls_client_state_t sg_tls_client_info(struct ssl_st *ssl, char *out, size_t cap);

#endif
