/* tlsclient.h: OpenSSL 3 client contexts for TLS to backends (BackendTLSPolicy): trusted CAs or the system store,
 * SNI and name verification, a client certificate (backend mTLS), session resumption, and why a handshake failed. */
#ifndef SG_TLSCLIENT_H
#define SG_TLSCLIENT_H

#include "core/sg.h"

struct ssl_st;
struct ssl_session_st;

/* What one policy asks for. Strings are read during sg_tls_client_new only. */
typedef struct sg_tls_client_spec {
    const char *ca;             /* PEM bundle the backend's certificate must chain to; NULL: see system */
    size_t ca_len;
    bool system;                /* wellKnownCACertificates: System: the OS trust store */
    const char *hostname;       /* SNI; also the name verified when there are no SANs below */
    const char *const *san_hosts; /* subjectAltNames of type Hostname: the certificate must match one of these or */
    size_t nsan_hosts;
    const char *const *san_uris;  /* ... one of these URIs, instead of hostname */
    size_t nsan_uris;
    const char *crt;            /* client certificate chain (PEM) shown to backends that ask; NULL: none */
    size_t crt_len;
    const char *key;
    size_t key_len;
} sg_tls_client_spec_t;

typedef struct sg_tls_client sg_tls_client_t;

#define SG_TLS_CLIENT_ID_LEN 32

/* Builds the context. Returns NULL with a one-line reason in err. */
sg_tls_client_t *sg_tls_client_new(const sg_tls_client_spec_t *spec, char *err, size_t cap);
/* Accepts NULL. SSL objects made from it keep its context alive; the rest is freed. */
void sg_tls_client_free(sg_tls_client_t *c);
/* A digest of everything the spec says: two contexts with the same id verify alike, so a connection or session made
 * under one may be used under the other (across reloads). */
const uint8_t *sg_tls_client_id(const sg_tls_client_t *c);
const char *sg_tls_client_hostname(const sg_tls_client_t *c);

/* Called with a session the backend gave (ownership passes: the callee frees it with SSL_SESSION_free). */
typedef struct sg_tls_session_hook {
    void (*fn)(struct sg_tls_session_hook *h, struct ssl_session_st *sess);
} sg_tls_session_hook_t;

/*
 * A client SSL on fd, with SNI, ready for sg_tls_client_handshake. sess (may be NULL; not taken) is offered for
 * resumption. hook (may be NULL) hears of the sessions the backend issues on this connection; it must outlive the
 * SSL. Returns NULL when out of memory.
 */
struct ssl_st *sg_tls_client_ssl(const sg_tls_client_t *c, int fd, struct ssl_session_st *sess,
                                 sg_tls_session_hook_t *hook);

/*
 * One non-blocking handshake step. Returns 0 when done, SG_EAGAIN with *want_write set when it waits for the
 * socket, or -EKEYREJECTED when it failed: *reason is an SG_UPTLS_* and *why (a static string) says what went
 * wrong: OpenSSL's verification error ("certificate has expired", "hostname mismatch") when verification failed,
 * else its error reason or "connection closed by the backend".
 */
int sg_tls_client_handshake(struct ssl_st *ssl, bool *want_write, int *reason, const char **why);

/* True when the finished handshake resumed a session. */
bool sg_tls_client_resumed(struct ssl_st *ssl);

#endif
