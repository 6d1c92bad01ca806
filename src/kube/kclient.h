/* kclient.h: a small HTTPS/1.1 client for the Kubernetes API server: where the server is (in-cluster or a
 * kubeconfig), OpenSSL with the cluster CA and SNI / IP-SAN checks, a bearer token re-read from its file, requests on
 * kept-alive connections (a small pool shared by the kube threads) under a client-side rate limit, and a streaming
 * GET for watches on connections of their own. Blocking I/O bounded by poll timeouts; for the kube threads (never a
 * worker). */
#ifndef SG_KCLIENT_H
#define SG_KCLIENT_H

#include "core/sg.h"

/* Where the API server is and how to authenticate. Every string is owned (malloc'd) by the struct; free it
 * with sg_kconf_free. */
typedef struct sg_kconf {
    char *host;        /* host name or IP literal (no brackets), for connect, SNI and verification */
    char *port;        /* "443" when the URL names none */
    char *base_path;   /* path prefix of the server URL without the trailing '/' ("" for none) */
    char *tls_server_name; /* kubeconfig tls-server-name: SNI and the name verified instead of host; or NULL */
    char *ca_pem;      /* PEM bundle the server's certificate must chain to; NULL: the system store */
    size_t ca_len;
    char *token;       /* a fixed bearer token (kubeconfig token:); NULL when token_file is used */
    char *token_file;  /* file to (re-)read the bearer token from; NULL when none */
    char *namespace;   /* the pod's namespace (in-cluster), or the current context's namespace; may be NULL */
} sg_kconf_t;

/*
 * In-cluster config: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, with ca.crt, token and namespace
 * from sa_dir (NULL: /var/run/secrets/kubernetes.io/serviceaccount). Returns 0, or -errno with a one-line reason
 * in err (cap bytes).
 */
int sg_kconf_incluster(sg_kconf_t *kc, const char *sa_dir, char *err, size_t cap);
/*
 * A kubeconfig file: the current context's cluster (server, certificate-authority or -data, tls-server-name) and
 * user (token or tokenFile). What ssegate cannot do is refused with a reason: client certificates, exec and
 * auth-provider plugins, basic auth, insecure-skip-tls-verify, proxy-url. Returns 0, -EINVAL (refused or
 * malformed), or -errno reading files; err says why.
 */
int sg_kconf_load_kubeconfig(sg_kconf_t *kc, const char *path, char *err, size_t cap);
void sg_kconf_free(sg_kconf_t *kc);

typedef struct sg_kclient sg_kclient_t;

/* Builds a client (its TLS context) from kc, which is copied. NULL with a reason in err. */
sg_kclient_t *sg_kclient_new(const sg_kconf_t *kc, char *err, size_t cap);
/* Accepts NULL. No request or stream of the client may be in use. */
void sg_kclient_free(sg_kclient_t *c);
/* The namespace of the config (may be NULL). */
const char *sg_kclient_namespace(const sg_kclient_t *c);
/* Re-read the token file before the next request (after a 401). Any thread. */
void sg_kclient_token_expire(sg_kclient_t *c);

/* The client-side rate limit of sg_kclient_do (watches are not counted), as client-go's QPS and Burst: a token bucket
 * of `burst` requests refilled at qps per second; a request beyond it waits its turn. qps <= 0: no limit. client-go's
 * own default (5 / 10) is for a human at a keyboard; kubelet and kube-scheduler use 50 / 100. ssegate's requests come
 * in bursts (a new leader's first sync writes every object's status, one PUT each), so twice that; the server's own
 * limit (API Priority and Fairness: 429 with Retry-After) is honoured on top. */
#define SG_KCLIENT_QPS 100
#define SG_KCLIENT_BURST 200
void sg_kclient_set_rate(sg_kclient_t *c, double qps, int burst);

/* Counters since the client was made. */
typedef struct sg_kclient_stats {
    uint64_t connections;   /* TLS connections opened (requests and watches) */
    uint64_t requests;      /* request exchanges started by sg_kclient_do, retries included */
    uint64_t reused;        /* of them, sent on a kept-alive connection */
    uint64_t retried;       /* sent again on a new connection as the kept-alive one had been closed by the server */
    uint64_t throttled_ms;  /* time requests waited for the rate limit */
} sg_kclient_stats_t;
void sg_kclient_stats(const sg_kclient_t *c, sg_kclient_stats_t *out);

/* A complete response. body is malloc'd and NUL-terminated (len excludes the NUL); NULL when empty. */
typedef struct sg_kresp {
    int status;
    char *body;
    size_t len;
    int retry_after_s;  /* Retry-After in seconds, or -1 */
} sg_kresp_t;

void sg_kresp_free(sg_kresp_t *r);

#define SG_KCLIENT_MAX_BODY (256u << 20) /* a larger response body fails with -EMSGSIZE */

/*
 * One request, thread-safe: several threads may call it on one client. It waits for the rate limit, then takes a
 * kept-alive connection when one is idle (GET, HEAD, PUT, DELETE; a POST or PATCH opens a new one, so it is never sent
 * twice) and leaves it idle after a complete, framed response the server did not end with Connection: close. An
 * idempotent request whose reused connection turns out closed (no response at all) is sent once more on a new
 * connection. path is the absolute path with its query ("/api/v1/namespaces/x/leases/y"), URL-encoded by the caller;
 * the config's base path is prepended. method is "GET", "PUT", "POST", "PATCH" or "DELETE"; body (may be NULL)
 * is sent with content_type (NULL: "application/json"). The whole exchange is bounded by timeout_ms. A 401
 * re-reads the token file and tries once more. Any HTTP status fills resp and returns 0 (the caller reads
 * resp->status); -ETIMEDOUT, -ECONNREFUSED and other -errno when there is no response, -EKEYREJECTED when the
 * server's certificate does not verify, SG_EBADMSG for a malformed response, -EMSGSIZE for a body over
 * SG_KCLIENT_MAX_BODY. On error resp is empty.
 */
int sg_kclient_do(sg_kclient_t *c, const char *method, const char *path, const char *content_type,
                  const char *body, size_t body_len, int timeout_ms, sg_kresp_t *resp);

/* A streaming response body (a watch), read as it arrives. One thread at a time. */
typedef struct sg_kstream sg_kstream_t;

/*
 * Opens a GET whose body is read incrementally. Waits at most timeout_ms for the response head. When the status
 * is 200 returns 0 with *out set. Any other status returns -EPROTO with the complete (bounded) response in
 * *err_resp (the caller frees it), so a 410 or 429 can be told apart. Transport errors as sg_kclient_do.
 */
int sg_kclient_stream(sg_kclient_t *c, const char *path, int timeout_ms, sg_kstream_t **out, sg_kresp_t *err_resp);
/* The socket to poll for POLLIN before sg_kstream_read; but call sg_kstream_read first while it has_pending. */
int sg_kstream_fd(const sg_kstream_t *s);
/* True when bytes are already buffered (in OpenSSL or in the decoder), so polling the socket could sleep on them. */
bool sg_kstream_has_pending(const sg_kstream_t *s);
/*
 * Reads decoded body bytes without blocking: returns the count (>0), SG_EAGAIN when nothing is available now,
 * 0 at the end of the body (the server closed the watch cleanly), or -errno / SG_EBADMSG when the stream broke.
 */
ssize_t sg_kstream_read(sg_kstream_t *s, char *buf, size_t cap);
/* Accepts NULL. */
void sg_kstream_close(sg_kstream_t *s);

/* Percent-encodes s for a query value into out (cap bytes, NUL-terminated). Returns the length, or -ENOSPC. */
int sg_kclient_query_escape(const char *s, char *out, size_t cap);

#endif
