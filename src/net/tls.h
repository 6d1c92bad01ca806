/* tls.h: OpenSSL 3 for HTTPS listeners: one SSL_CTX per certificate, SNI choosing among them, ALPN (h2,
 * http/1.1), TLS 1.2 and later only. Handshakes are non-blocking and driven by conn.c. */
#ifndef SG_TLS_H
#define SG_TLS_H

#include "core/sg.h"

struct ssl_st;

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

/*
 * Checks that crt parses, key parses and they belong together. Returns 0, or -EINVAL with a one-line reason
 * in err.
 */
int sg_tls_check_pair(const char *crt, size_t crt_len, const char *key, size_t key_len, char *err, size_t cap);

/*
 * Builds the TLS side of one listening port from its certificates (n >= 1). The first certificate whose
 * hostname is NULL is the default (else the first). Returns NULL with a reason in err.
 */
sg_tls_server_t *sg_tls_server_new(const sg_tls_cert_spec_t *certs, size_t n, char *err, size_t cap);
/* Frees the server. SSL objects made from it keep their contexts alive. Accepts NULL. */
void sg_tls_server_free(sg_tls_server_t *srv);

/* A server-side SSL object on fd, ready for SSL_do_handshake. srv must outlive the handshake. NULL: no memory. */
struct ssl_st *sg_tls_accept(sg_tls_server_t *srv, int fd);

/* True when the handshake selected "h2" through ALPN. */
bool sg_tls_is_h2(struct ssl_st *ssl);

#endif
