/* test_kclient.c: the API client's kept-alive connections against a scripted TLS server on loopback (a certificate
 * made at test time): responses framed by Content-Length and chunked share one connection; Connection: close, an
 * HTTP/1.0 answer, a body read to the end of the connection and bytes past a body each end reuse (the server keeps
 * those connections open, so a client that reused one would be seen); a server that closes an idle connection is
 * noticed before reuse; one that closes a reused connection as a request arrives gets a GET or PUT sent once more on a
 * new connection, and a POST never rides a reused connection; the token is read per request; the rate limit waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kube/kclient.h"

#define MAX_CONNS 64

typedef struct srv {
    SSL_CTX *ctx;
    int lfd;
    int port;
    pthread_t acceptor;
    pthread_t conns[MAX_CONNS];
    _Atomic int nconns;
    _Atomic int drops;           /* /drop requests that were dropped */
    _Atomic int bye_closed;      /* connections closed by /bye */
    _Atomic int served_after_close; /* requests met on a connection after we told the client it would close */
    pthread_mutex_t mu;
    char last_auth[256];
    char ca_pem[4096];
} srv_t;

typedef struct cn {
    srv_t *s;
    int fd;
} cn_t;

static int make_cert(srv_t *s)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (k == NULL || x == NULL)
        return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"kclient-test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_set_pubkey(x, k);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, san, -1);
    X509_add_ext(x, bc, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION_free(bc);
    X509_sign(x, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    snprintf(s->ca_pem, sizeof(s->ca_pem), "%.*s", (int)len, p);
    BIO_free(b);
    s->ctx = SSL_CTX_new(TLS_server_method());
    int rc = SSL_CTX_use_certificate(s->ctx, x) == 1 && SSL_CTX_use_PrivateKey(s->ctx, k) == 1 ? 0 : -1;
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static int ssl_write_all(SSL *ssl, const char *p, size_t n)
{
    return SSL_write(ssl, p, (int)n) == (int)n ? 0 : -1;
}

/* One request head (and its body): path into path; -1 at EOF. */
static int read_request(SSL *ssl, char *path, size_t cap, char *auth, size_t acap)
{
    char buf[8192];
    size_t len = 0;
    char *end = NULL;
    buf[0] = '\0';
    while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
        if (len + 1 >= sizeof(buf))
            return -1;
        int r = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len));
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
    }
    char method[16];
    if (sscanf(buf, "%15s %255s", method, path) != 2)
        return -1;
    auth[0] = '\0';
    const char *a = strstr(buf, "Authorization: ");
    if (a != NULL)
        snprintf(auth, acap, "%.*s", (int)strcspn(a + 15, "\r"), a + 15);
    const char *cl = strstr(buf, "Content-Length: ");
    size_t want = cl ? (size_t)atoi(cl + 16) : 0, have = len - (size_t)(end + 4 - buf);
    while (have < want) {
        int r = SSL_read(ssl, buf, (int)SG_MIN(sizeof(buf), want - have));
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    /* the method goes into the path's front, for the script: "GET /cl" */
    char target[300];
    snprintf(target, sizeof(target), "%s", path);
    snprintf(path, cap, "%.15s %.255s", method, target);
    return 0;
}

static void *serve_conn(void *arg)
{
    cn_t *c = arg;
    srv_t *s = c->s;
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, c->fd);
    if (SSL_accept(ssl) != 1)
        goto out;
    bool told_close = false;
    for (int served = 0;; served++) {
        char path[300], auth[256];
        if (read_request(ssl, path, sizeof(path), auth, sizeof(auth)) < 0)
            break;
        if (told_close)
            atomic_fetch_add(&s->served_after_close, 1);
        pthread_mutex_lock(&s->mu);
        snprintf(s->last_auth, sizeof(s->last_auth), "%s", auth);
        pthread_mutex_unlock(&s->mu);
        const char *p = strchr(path, ' ') + 1;
        const char *resp = NULL;
        char b[512];
        if (strcmp(p, "/cl") == 0) {
            resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        } else if (strcmp(p, "/chunked") == 0) {
            resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        } else if (strcmp(p, "/close") == 0) {
            resp = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
            told_close = true;   /* but the connection is kept open: a reuse would show */
        } else if (strcmp(p, "/http10") == 0) {
            resp = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
            told_close = true;
        } else if (strcmp(p, "/extra") == 0) {
            resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloXX";
            told_close = true;
        } else if (strcmp(p, "/eof") == 0) {
            ssl_write_all(ssl, "HTTP/1.1 200 OK\r\n\r\nhello", 24);
            break;
        } else if (strcmp(p, "/bye") == 0) {
            ssl_write_all(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 43);
            SSL_shutdown(ssl);
            shutdown(c->fd, SHUT_RDWR);
            atomic_fetch_add(&s->bye_closed, 1);
            break;
        } else if (strcmp(p, "/drop") == 0) {
            if (served > 0) {    /* a reused connection: closed as the request arrives, no answer */
                atomic_fetch_add(&s->drops, 1);
                break;
            }
            resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh";
        } else {
            snprintf(b, sizeof(b), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            resp = b;
        }
        if (ssl_write_all(ssl, resp, strlen(resp)) < 0)
            break;
    }
out:
    SSL_free(ssl);
    close(c->fd);
    free(c);
    return NULL;
}

static void *acceptor(void *arg)
{
    srv_t *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        int i = atomic_fetch_add(&s->nconns, 1);
        cn_t *c = malloc(sizeof(*c));
        c->s = s;
        c->fd = fd;
        if (i >= MAX_CONNS || pthread_create(&s->conns[i], NULL, serve_conn, c) != 0) {
            close(fd);
            free(c);
        }
    }
}

static void srv_start(srv_t *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(make_cert(s), 0);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    socklen_t sl = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &sl);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->acceptor, NULL, acceptor, s), 0);
}

/* After the client is freed (its connections closed), every connection thread ends. */
static void srv_stop(srv_t *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    int n = atomic_load(&s->nconns);
    for (int i = 0; i < n && i < MAX_CONNS; i++)
        pthread_join(s->conns[i], NULL);
    SSL_CTX_free(s->ctx);
    pthread_mutex_destroy(&s->mu);
}

static sg_kclient_t *client(srv_t *s, const char *token_file)
{
    char port[16], err[256];
    snprintf(port, sizeof(port), "%d", s->port);
    sg_kconf_t kc = {.host = "127.0.0.1", .port = port, .base_path = "", .ca_pem = s->ca_pem,
                     .ca_len = strlen(s->ca_pem), .token = token_file ? NULL : "t0",
                     .token_file = (char *)token_file};
    sg_kclient_t *c = sg_kclient_new(&kc, err, sizeof(err));
    assert_non_null(c);
    sg_kclient_set_rate(c, 0, 1);
    return c;
}

/* A request that must answer 200 with body want. */
static void ok(sg_kclient_t *c, const char *method, const char *path, const char *want)
{
    sg_kresp_t r;
    assert_int_equal(sg_kclient_do(c, method, path, NULL, strcmp(method, "GET") ? "{}" : NULL,
                                   strcmp(method, "GET") ? 2 : 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(r.body);
    assert_string_equal(r.body, want);
    sg_kresp_free(&r);
}

static sg_kclient_stats_t stats(sg_kclient_t *c)
{
    sg_kclient_stats_t st;
    sg_kclient_stats(c, &st);
    return st;
}

static void test_framings_share_a_connection(void **state)
{
    (void)state;
    srv_t s;
    srv_start(&s);
    sg_kclient_t *c = client(&s, NULL);
    ok(c, "GET", "/cl", "hello");
    ok(c, "GET", "/chunked", "hello");
    ok(c, "PUT", "/cl", "hello");
    ok(c, "GET", "/chunked", "hello");
    ok(c, "DELETE", "/cl", "hello");
    assert_int_equal(atomic_load(&s.nconns), 1);
    assert_int_equal(stats(c).connections, 1);
    assert_int_equal(stats(c).reused, 4);
    sg_kclient_free(c);
    srv_stop(&s);
}

/* Each of these ends the connection's use: the next request opens a new one, and the old one (kept open by the server)
 * never carries another request. */
static void test_no_reuse_after(void **state)
{
    (void)state;
    static const char *const paths[] = {"/close", "/http10", "/extra", "/eof"};
    for (size_t i = 0; i < SG_ARRAY_LEN(paths); i++) {
        srv_t s;
        srv_start(&s);
        sg_kclient_t *c = client(&s, NULL);
        ok(c, "GET", paths[i], "hello");
        ok(c, "GET", "/cl", "hello");
        ok(c, "GET", "/cl", "hello");
        assert_int_equal(atomic_load(&s.nconns), 2);
        assert_int_equal(stats(c).reused, 1);
        sg_kclient_free(c);
        srv_stop(&s);
        assert_int_equal(atomic_load(&s.served_after_close), 0);
    }
}

/* The server closed the idle connection (close_notify, FIN): noticed before reuse, no request lost or retried. */
static void test_idle_closed_by_server(void **state)
{
    (void)state;
    srv_t s;
    srv_start(&s);
    sg_kclient_t *c = client(&s, NULL);
    ok(c, "GET", "/bye", "hello");
    for (int i = 0; i < 500 && atomic_load(&s.bye_closed) == 0; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&s.bye_closed), 1);
    usleep(20000);               /* the close_notify and FIN on their way over loopback */
    ok(c, "GET", "/cl", "hello");
    assert_int_equal(atomic_load(&s.nconns), 2);
    assert_int_equal(stats(c).reused, 0);
    assert_int_equal(stats(c).retried, 0);
    sg_kclient_free(c);
    srv_stop(&s);
}

/* The race a liveness check cannot see: the server closes a reused connection as the request arrives. A GET or PUT is
 * sent once more on a new connection; a POST never takes a reused connection, so it is never sent twice. */
static void test_dead_reused_connection(void **state)
{
    (void)state;
    srv_t s;
    srv_start(&s);
    sg_kclient_t *c = client(&s, NULL);
    ok(c, "GET", "/cl", "hello");
    ok(c, "GET", "/drop", "fresh");     /* dropped on the reused connection, answered on a new one */
    assert_int_equal(atomic_load(&s.drops), 1);
    assert_int_equal(stats(c).retried, 1);
    ok(c, "PUT", "/drop", "fresh");
    assert_int_equal(atomic_load(&s.drops), 2);
    assert_int_equal(stats(c).retried, 2);
    int conns = atomic_load(&s.nconns);
    ok(c, "POST", "/drop", "fresh");    /* a new connection, first request on it */
    assert_int_equal(atomic_load(&s.nconns), conns + 1);
    assert_int_equal(atomic_load(&s.drops), 2);
    assert_int_equal(stats(c).retried, 2);
    ok(c, "GET", "/cl", "hello");       /* and the POST's connection is kept alive after it */
    assert_int_equal(atomic_load(&s.nconns), conns + 1);
    sg_kclient_free(c);
    srv_stop(&s);
}

/* The token is read per request: a rotated one goes out on the kept-alive connection. */
static void test_token_per_request(void **state)
{
    (void)state;
    srv_t s;
    srv_start(&s);
    char tf[] = "/tmp/kclient-token-XXXXXX";
    int fd = mkstemp(tf);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "first\n", 6), 6);
    close(fd);
    sg_kclient_t *c = client(&s, tf);
    ok(c, "GET", "/cl", "hello");
    assert_string_equal(s.last_auth, "Bearer first");
    FILE *f = fopen(tf, "w");
    fputs("second", f);
    fclose(f);
    sg_kclient_token_expire(c);
    ok(c, "GET", "/cl", "hello");
    assert_string_equal(s.last_auth, "Bearer second");
    assert_int_equal(atomic_load(&s.nconns), 1);
    sg_kclient_free(c);
    srv_stop(&s);
    unlink(tf);
}

/* The rate limit: a burst of 1 at 50 per second makes the following requests wait (and none fails). */
static void test_rate_limit_waits(void **state)
{
    (void)state;
    srv_t s;
    srv_start(&s);
    sg_kclient_t *c = client(&s, NULL);
    sg_kclient_set_rate(c, 50, 1);
    for (int i = 0; i < 5; i++)
        ok(c, "GET", "/cl", "hello");
    assert_true(stats(c).throttled_ms > 0);
    sg_kclient_set_rate(c, 0, 1);
    uint64_t t = stats(c).throttled_ms;
    for (int i = 0; i < 5; i++)
        ok(c, "GET", "/cl", "hello");
    assert_int_equal(stats(c).throttled_ms, t);
    sg_kclient_free(c);
    srv_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framings_share_a_connection),
        cmocka_unit_test(test_no_reuse_after),
        cmocka_unit_test(test_idle_closed_by_server),
        cmocka_unit_test(test_dead_reused_connection),
        cmocka_unit_test(test_token_per_request),
        cmocka_unit_test(test_rate_limit_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
