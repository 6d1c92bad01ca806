/* health.c: the endpoint health table (keyed by address, so it survives reloads), passive ejection with
 * exponential backoff, open-stream counts, and active HTTP probes driven by the main thread's poll loop. */
#include "proxy/health.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/loop.h"
#include "net/tlsclient.h"
#include "proxy/h2probe.h"

/* ---- worker side: atomics only ---- */

bool sg_health_usable(const sg_health_entry_t *e, uint64_t now_ms)
{
    if (e == NULL)
        return true;
    return atomic_load_explicit(&e->healthy, memory_order_relaxed) != 0 &&
           atomic_load_explicit(&e->ejected_until_ms, memory_order_relaxed) <= now_ms;
}

void sg_health_report_failure(sg_health_entry_t *e, uint64_t now_ms)
{
    if (e == NULL)
        return;
    uint64_t until = atomic_load_explicit(&e->ejected_until_ms, memory_order_relaxed);
    if (until > now_ms)
        return; /* already ejected: requests that were in flight together count once */
    int n = atomic_fetch_add_explicit(&e->consecutive_failures, 1, memory_order_relaxed) + 1;
    uint64_t backoff = SG_HEALTH_EJECT_BASE_MS;
    for (int i = 1; i < n && backoff < SG_HEALTH_EJECT_MAX_MS; i++)
        backoff *= 2;
    if (backoff > SG_HEALTH_EJECT_MAX_MS)
        backoff = SG_HEALTH_EJECT_MAX_MS;
    /* Another worker may have ejected it meanwhile; the later deadline wins either way. */
    uint64_t want = now_ms + backoff;
    while (until < want &&
           !atomic_compare_exchange_weak_explicit(&e->ejected_until_ms, &until, want, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void sg_health_report_success(sg_health_entry_t *e)
{
    /* Read first: a store on every success would bounce the cache line between workers. */
    if (e != NULL && atomic_load_explicit(&e->consecutive_failures, memory_order_relaxed) != 0)
        atomic_store_explicit(&e->consecutive_failures, 0, memory_order_relaxed);
}

void sg_health_stream_begin(sg_health_entry_t *e)
{
    if (e != NULL)
        atomic_fetch_add_explicit(&e->active, 1, memory_order_relaxed);
}

void sg_health_stream_end(sg_health_entry_t *e)
{
    if (e != NULL)
        atomic_fetch_sub_explicit(&e->active, 1, memory_order_relaxed);
}

int sg_health_active(const sg_health_entry_t *e)
{
    return e == NULL ? 0 : atomic_load_explicit(&e->active, memory_order_relaxed);
}

/* ---- pure pieces ---- */

int sg_health_parse_status(const char *buf, size_t len)
{
    static const char proto[] = "HTTP/1.";
    size_t plen = sizeof(proto) - 1;
    if (memcmp(buf, proto, SG_MIN(len, plen)) != 0)
        return SG_EBADMSG;
    const char *nl = memchr(buf, '\n', len);
    if (nl == NULL)
        return len > 256 ? SG_EBADMSG : SG_EINCOMPLETE;
    size_t n = (size_t)(nl - buf);
    /* "HTTP/1.x NNN" then SP, CR or the LF */
    if (n < plen + 5 || buf[plen] < '0' || buf[plen] > '9' || buf[plen + 1] != ' ')
        return SG_EBADMSG;
    const char *d = buf + plen + 2;
    int status = 0;
    for (int i = 0; i < 3; i++) {
        if (d[i] < '0' || d[i] > '9')
            return SG_EBADMSG;
        status = status * 10 + (d[i] - '0');
    }
    if (d + 3 < nl && d[3] != ' ' && d[3] != '\r')
        return SG_EBADMSG;
    if (status < 100 || status > 599)
        return SG_EBADMSG;
    return status;
}

bool sg_health_status_ok(const sg_healthcheck_t *hc, int status)
{
    if (hc->ncodes == 0)
        return status >= 200 && status <= 399;
    for (size_t i = 0; i < hc->ncodes; i++)
        if (status >= hc->codes[i].start && status <= hc->codes[i].end)
            return true;
    return false;
}

/* ---- the table ---- */

/* The bytes that identify an address: family, port, IP (and IPv6 scope). */
static size_t addr_key(const struct sockaddr *sa, socklen_t len, unsigned char key[32])
{
    if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        key[0] = 6;
        memcpy(key + 1, &s6->sin6_port, 2);
        memcpy(key + 3, &s6->sin6_addr, 16);
        memcpy(key + 19, &s6->sin6_scope_id, 4);
        return 23;
    }
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &s4->sin_port, 2);
        memcpy(key + 3, &s4->sin_addr, 4);
        return 7;
    }
    return 0;
}

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

int sg_health_init(sg_health_t *h)
{
    memset(h, 0, sizeof(*h));
    h->nbuckets = 256;
    h->buckets = calloc(h->nbuckets, sizeof(*h->buckets));
    if (h->buckets == NULL)
        return -ENOMEM;
    h->rng = (sg_now_ms() * 0x9e3779b97f4a7c15ull) | 1;
    return 0;
}

static int grow(sg_health_t *h)
{
    size_t nb = h->nbuckets * 2;
    sg_health_entry_t **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < h->nbuckets; i++) {
        sg_health_entry_t *e = h->buckets[i];
        while (e != NULL) {
            sg_health_entry_t *nx = e->next;
            unsigned char key[32];
            size_t kn = addr_key((struct sockaddr *)&e->addr, e->addrlen, key);
            size_t slot = fnv1a(key, kn) & (nb - 1);
            e->next = b[slot];
            b[slot] = e;
            e = nx;
        }
    }
    free(h->buckets);
    h->buckets = b;
    h->nbuckets = nb;
    return 0;
}

static void format_label(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(s4->sin_port));
    }
}

sg_health_entry_t *sg_health_get(sg_health_t *h, const struct sockaddr *sa, socklen_t len)
{
    unsigned char key[32], k2[32];
    size_t kn = addr_key(sa, len, key);
    if (kn == 0 || h->buckets == NULL)
        return NULL;
    size_t slot = fnv1a(key, kn) & (h->nbuckets - 1);
    for (sg_health_entry_t *e = h->buckets[slot]; e != NULL; e = e->next)
        if (addr_key((struct sockaddr *)&e->addr, e->addrlen, k2) == kn && memcmp(key, k2, kn) == 0)
            return e;
    if (h->nentries >= h->nbuckets * 2 && grow(h) == 0)
        slot = fnv1a(key, kn) & (h->nbuckets - 1);
    sg_health_entry_t *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    atomic_init(&e->healthy, 1);
    atomic_init(&e->ejected_until_ms, 0);
    atomic_init(&e->active, 0);
    atomic_init(&e->consecutive_failures, 0);
    memcpy(&e->addr, sa, SG_MIN((size_t)len, sizeof(e->addr)));
    e->addrlen = len;
    format_label(sa, e->label, sizeof(e->label));
    e->next = h->buckets[slot];
    h->buckets[slot] = e;
    h->nentries++;
    return e;
}

/* ---- probes ---- */

typedef enum probe_state {
    P_IDLE = 0,     /* waiting for next_at */
    P_CONNECTING,
    P_HANDSHAKE,    /* TLS (useTLS, or a BackendTLSPolicy on the probed port) */
    P_SENDING,
    P_READING,
} probe_state_t;

struct sg_health_probe {
    sg_health_entry_t *e;
    sg_healthcheck_t hc;        /* a copy: the generation it came from may be freed before the probe */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *req;                  /* the whole request */
    size_t reqlen, sent;
    /* The port speaks HTTP/2 (appProtocol kubernetes.io/h2c or https): the probe asks in HTTP/2, over TLS when ALPN
     * chose h2 (else in HTTP/1.1, as the data path falls back). h2path/h2host: what it asks for. */
    bool h2;
    char *h2path, *h2host;
    sg_h2probe_t *h2p;          /* this attempt's HTTP/2 session, when it speaks HTTP/2 */
    const char *h2req;
    size_t h2len;
    /* The backend's TLS policy, from the generation attached last (the table holds it); NULL: plain HTTP. */
    const sg_tls_client_t *tls;
    SSL *ssl;
    bool want_write;            /* P_HANDSHAKE: the handshake waits to write */
    probe_state_t state;
    int fd;
    uint64_t next_at;           /* P_IDLE: when to start */
    uint64_t deadline;          /* otherwise: when it times out */
    int ok_run, fail_run;       /* consecutive results */
    char buf[512];
    size_t len;
};

static void probe_close(sg_health_probe_t *p)
{
    sg_h2probe_free(p->h2p);
    p->h2p = NULL;
    SSL_free(p->ssl);
    p->ssl = NULL;
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->state = P_IDLE;
}

static void probe_free(sg_health_probe_t *p)
{
    if (p == NULL)
        return;
    probe_close(p);
    free(p->h2path);
    free(p->h2host);
    free(p->req);
    free(p->hc.codes);
    free(p);
}

static bool same_settings(const sg_health_probe_t *p, const sg_healthcheck_t *hc, const char *req, size_t reqlen,
                          const sg_tls_client_t *tls, bool h2)
{
    if (p->h2 != h2 || (p->tls == NULL) != (tls == NULL) ||
        (tls != NULL && memcmp(sg_tls_client_id(p->tls), sg_tls_client_id(tls), SG_TLS_CLIENT_ID_LEN) != 0))
        return false;
    return p->hc.interval_ms == hc->interval_ms && p->hc.timeout_ms == hc->timeout_ms &&
           p->hc.healthy_threshold == hc->healthy_threshold && p->hc.unhealthy_threshold == hc->unhealthy_threshold &&
           p->hc.port == hc->port && p->hc.ncodes == hc->ncodes && p->reqlen == reqlen &&
           memcmp(p->req, req, reqlen) == 0 &&
           (hc->ncodes == 0 || memcmp(p->hc.codes, hc->codes, hc->ncodes * sizeof(*hc->codes)) == 0);
}

/* Builds the probe request; returns its length, or 0 when it does not fit. */
static size_t build_request(const sg_healthcheck_t *hc, char *out, size_t cap)
{
    if (hc->grpc) {
        /* Sent as an HTTP/2 call (h2probe.c); this text only tells one probe's settings from another's. */
        int g = snprintf(out, cap, "grpc.health.v1 service=%s authority=%s", hc->grpc_service ? hc->grpc_service : "",
                         hc->grpc_authority ? hc->grpc_authority : hc->host ? hc->host : "localhost");
        return g > 0 && (size_t)g < cap ? (size_t)g : 0;
    }
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ssegate-health\r\nAccept: */*\r\n"
                     "Connection: close\r\n\r\n",
                     hc->path ? hc->path : "/", hc->host ? hc->host : "localhost");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static sg_health_probe_t *probe_new(sg_health_entry_t *e, const sg_healthcheck_t *hc, const char *req, size_t reqlen,
                                    const sg_tls_client_t *tls, bool h2)
{
    sg_health_probe_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->h2 = h2;
    if (h2) {
        /* A gRPC probe keeps the service to ask about where an HTTP one keeps its path. */
        p->h2path = strdup(hc->grpc ? (hc->grpc_service ? hc->grpc_service : "") : hc->path ? hc->path : "/");
        p->h2host = strdup(hc->grpc && hc->grpc_authority ? hc->grpc_authority : hc->host ? hc->host : "localhost");
        if (p->h2path == NULL || p->h2host == NULL) {
            probe_free(p);
            return NULL;
        }
    }
    p->fd = -1;
    p->tls = tls;
    p->e = e;
    p->hc = *hc;
    p->hc.host = NULL; /* only the built request keeps them */
    p->hc.path = NULL;
    p->hc.policy = NULL;
    p->hc.codes = NULL;
    p->hc.grpc_service = NULL;
    p->hc.grpc_authority = NULL;
    p->req = malloc(reqlen + 1);
    if (hc->ncodes > 0)
        p->hc.codes = malloc(hc->ncodes * sizeof(*hc->codes));
    if (p->req == NULL || (hc->ncodes > 0 && p->hc.codes == NULL)) {
        probe_free(p);
        return NULL;
    }
    memcpy(p->req, req, reqlen + 1);
    p->reqlen = reqlen;
    if (hc->ncodes > 0)
        memcpy(p->hc.codes, hc->codes, hc->ncodes * sizeof(*hc->codes));
    p->addr = e->addr;
    p->addrlen = e->addrlen;
    if (hc->port != 0) {
        if (p->addr.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&p->addr)->sin6_port = htons(hc->port);
        else
            ((struct sockaddr_in *)&p->addr)->sin_port = htons(hc->port);
    }
    return p;
}

static uint64_t next_rand(sg_health_t *h)
{
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return h->rng = x;
}

static void probe_done(sg_health_t *h, sg_health_probe_t *p, bool ok, uint64_t now, const char *why)
{
    probe_close(p);
    /* A little jitter so probes of many endpoints do not move in lockstep. */
    uint64_t jitter = (uint64_t)(p->hc.interval_ms / 10);
    p->next_at = now + (uint64_t)p->hc.interval_ms + (jitter ? next_rand(h) % jitter : 0);
    int healthy = atomic_load_explicit(&p->e->healthy, memory_order_relaxed);
    if (ok) {
        p->fail_run = 0;
        p->ok_run++;
        if (!healthy && p->ok_run >= p->hc.healthy_threshold) {
            atomic_store_explicit(&p->e->healthy, 1, memory_order_relaxed);
            sg_log_info("health: %s healthy again (%d check%s passed)", p->e->label, p->ok_run,
                        p->ok_run == 1 ? "" : "s");
        }
    } else {
        p->ok_run = 0;
        p->fail_run++;
        if (healthy && p->fail_run >= p->hc.unhealthy_threshold) {
            atomic_store_explicit(&p->e->healthy, 0, memory_order_relaxed);
            sg_log_info("health: %s unhealthy: %s (%d check%s failed)", p->e->label, why, p->fail_run,
                        p->fail_run == 1 ? "" : "s");
        }
    }
}

static void probe_start(sg_health_t *h, sg_health_probe_t *p, uint64_t now)
{
    p->len = 0;
    p->sent = 0;
    p->deadline = now + (uint64_t)p->hc.timeout_ms;
    p->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        probe_done(h, p, false, now, "socket failed");
        return;
    }
    if (connect(p->fd, (struct sockaddr *)&p->addr, p->addrlen) < 0 && errno != EINPROGRESS) {
        char why[96];
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        probe_done(h, p, false, now, why);
        return;
    }
    p->state = P_CONNECTING;
}

static void probe_io(sg_health_t *h, sg_health_probe_t *p, short revents, uint64_t now)
{
    char why[96];
    if (p->state == P_CONNECTING) {
        if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
            return;
        int err = 0;
        socklen_t elen = sizeof(err);
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
            err = errno;
        if (err != 0) {
            snprintf(why, sizeof(why), "connect: %s", strerror(err));
            probe_done(h, p, false, now, why);
            return;
        }
        p->state = P_SENDING;
        if (p->tls != NULL) {
            static const unsigned char protos[] = "\x02h2\x08http/1.1";
            p->ssl = sg_tls_client_ssl(p->tls, p->fd, NULL, NULL);
            if (p->ssl != NULL && p->h2 && SSL_set_alpn_protos(p->ssl, protos, sizeof(protos) - 1) != 0) {
                SSL_free(p->ssl);
                p->ssl = NULL;
            }
            if (p->ssl == NULL) {
                probe_done(h, p, false, now, "tls: out of memory");
                return;
            }
            p->state = P_HANDSHAKE;
        }
    }
    if (p->state == P_HANDSHAKE) {
        int reason = 0;
        const char *tw = NULL;
        int rc = sg_tls_client_handshake(p->ssl, &p->want_write, &reason, &tw);
        if (rc == SG_EAGAIN)
            return;
        if (rc < 0) {
            snprintf(why, sizeof(why), "tls: %s", tw ? tw : "handshake failed");
            probe_done(h, p, false, now, why);
            return;
        }
        p->state = P_SENDING;
    }
    if (p->state == P_SENDING && p->h2 && p->h2p == NULL && p->sent == 0) {
        const unsigned char *alpn = NULL;
        unsigned alen = 0;
        if (p->ssl != NULL)
            SSL_get0_alpn_selected(p->ssl, &alpn, &alen);
        if (p->ssl == NULL || (alen == 2 && memcmp(alpn, "h2", 2) == 0)) {
            p->h2p = p->hc.grpc ? sg_h2probe_new_grpc(p->h2path, p->h2host, p->ssl != NULL, &p->h2req, &p->h2len)
                                : sg_h2probe_new(p->h2path, p->h2host, p->ssl != NULL, &p->h2req, &p->h2len);
            if (p->h2p == NULL) {
                probe_done(h, p, false, now, "out of memory");
                return;
            }
        } else if (p->hc.grpc) {
            probe_done(h, p, false, now, "gRPC health: the backend did not choose h2 in ALPN");
            return;
        }
    }
    if (p->state == P_SENDING) {
        const char *req = p->h2p ? p->h2req : p->req;
        size_t reqlen = p->h2p ? p->h2len : p->reqlen;
        while (p->sent < reqlen) {
            ssize_t w;
            if (p->ssl != NULL) {
                ERR_clear_error();
                int k = SSL_write(p->ssl, req + p->sent, (int)(reqlen - p->sent));
                int e = k > 0 ? SSL_ERROR_NONE : SSL_get_error(p->ssl, k);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
                    return;
                w = k > 0 ? k : -1;
                if (w < 0)
                    errno = EPIPE;
            } else {
                w = send(p->fd, req + p->sent, reqlen - p->sent, MSG_NOSIGNAL);
            }
            if (w < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            if (w < 0) {
                snprintf(why, sizeof(why), "send: %s", strerror(errno));
                probe_done(h, p, false, now, why);
                return;
            }
            p->sent += (size_t)w;
        }
        p->state = P_READING;
        return; /* the answer comes with a later POLLIN */
    }
    if (p->state != P_READING || !(revents & (POLLIN | POLLERR | POLLHUP)))
        return;
    for (;;) {
        ssize_t r;
        if (p->ssl != NULL) {
            ERR_clear_error();
            int k = SSL_read(p->ssl, p->buf + p->len, (int)(sizeof(p->buf) - p->len));
            int e = k > 0 ? SSL_ERROR_NONE : SSL_get_error(p->ssl, k);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return;
            r = k > 0 ? k : e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? 0 : -1;
            if (r < 0)
                errno = EPROTO;
        } else {
            r = recv(p->fd, p->buf + p->len, sizeof(p->buf) - p->len, 0);
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0) {
            snprintf(why, sizeof(why), "recv: %s", strerror(errno));
            probe_done(h, p, false, now, why);
            return;
        }
        if (p->h2p != NULL) {
            /* HTTP/2: frames go to the session as they come; the buffer is reused. */
            int st2 = r > 0 ? sg_h2probe_feed(p->h2p, p->buf, (size_t)r) : -EPROTO;
            p->len = 0;
            if (st2 == SG_EINCOMPLETE)
                continue;
            if (st2 < 0) {
                probe_done(h, p, false, now, r == 0 ? "closed before a status" : "HTTP/2 error");
                return;
            }
            if (p->hc.grpc) {
                bool ok = sg_h2probe_grpc_result(p->h2p, why, sizeof(why)) == 1;
                probe_done(h, p, ok, now, why);
                return;
            }
            snprintf(why, sizeof(why), "status %d", st2);
            probe_done(h, p, sg_health_status_ok(&p->hc, st2), now, why);
            return;
        }
        p->len += (size_t)r;
        int st = sg_health_parse_status(p->buf, p->len);
        if (st == SG_EINCOMPLETE && r > 0 && p->len < sizeof(p->buf))
            continue;
        if (st < 0) {
            probe_done(h, p, false, now, r == 0 ? "closed before a status line" : "malformed status line");
            return;
        }
        snprintf(why, sizeof(why), "status %d", st);
        probe_done(h, p, sg_health_status_ok(&p->hc, st), now, why);
        return;
    }
}

static void free_probes(sg_health_probe_t **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        probe_free(v[i]);
}

/* Calls fn once per distinct entry that cfg's endpoints point at. */
static void each_entry_of(sg_health_t *h, const sg_config_t *cfg, void (*fn)(sg_health_entry_t *e))
{
    uint64_t epoch = ++h->epoch;
    for (size_t r = 0; r < cfg->nroutes; r++) {
        const sg_route_t *rt = &cfg->routes[r];
        for (size_t k = 0; k < rt->nrules; k++) {
            const sg_rule_t *ru = &rt->rules[k];
            for (size_t b = 0; b < ru->nbackends; b++) {
                const sg_backend_t *be = &ru->backends[b];
                for (size_t i = 0; i < be->nendpoints; i++) {
                    sg_health_entry_t *e = be->endpoints[i].health;
                    if (e != NULL && e->mark != epoch) {
                        e->mark = epoch;
                        fn(e);
                    }
                }
            }
        }
    }
}

static void gen_hold(sg_health_entry_t *e)
{
    e->gens++;
}

static void gen_drop(sg_health_entry_t *e)
{
    e->gens--;
}

/* Frees every entry that no held generation names. Probes only exist for entries of the newest one. */
static size_t sweep(sg_health_t *h)
{
    size_t freed = 0;
    for (size_t i = 0; h->buckets != NULL && i < h->nbuckets; i++) {
        sg_health_entry_t **pp = &h->buckets[i];
        while (*pp != NULL) {
            sg_health_entry_t *e = *pp;
            if (e->gens == 0) {
                *pp = e->next;
                free(e);
                h->nentries--;
                freed++;
            } else {
                pp = &e->next;
            }
        }
    }
    h->pruned += freed;
    return freed;
}

size_t sg_health_prune(sg_health_t *h)
{
    bool dropped = false;
    size_t w = 0;
    for (size_t i = 0; i < h->ngens; i++) {
        sg_config_t *g = h->gens[i];
        /*
         * Only our reference left: no worker, stream or connection can reach g any more (they take a reference
         * only from one they hold), so none can touch its entries again. The acquire pairs with the release in
         * the last other sg_config_unref(), which follows the stream's last use of an entry.
         */
        if (atomic_load_explicit(&g->refs, memory_order_acquire) == 1) {
            each_entry_of(h, g, gen_drop);
            sg_config_unref(g);
            dropped = true;
        } else {
            h->gens[w++] = g;
        }
    }
    h->ngens = w;
    return dropped || h->orphans ? (h->orphans = false, sweep(h)) : 0;
}

int sg_health_attach(sg_health_t *h, sg_config_t *cfg)
{
    if (h->ngens == h->capgens) {
        size_t c2 = h->capgens ? h->capgens * 2 : 8;
        sg_config_t **g2 = realloc(h->gens, c2 * sizeof(*g2));
        if (g2 == NULL)
            return -ENOMEM;
        h->gens = g2;
        h->capgens = c2;
    }
    sg_health_probe_t **nv = NULL;
    size_t nn = 0, ncap = 0;
    uint64_t now = sg_now_ms();
    char req[2048];
    h->npolled = 0; /* what the last pollfds listed may be freed below */
    for (size_t r = 0; r < cfg->nroutes; r++) {
        const sg_route_t *rt = &cfg->routes[r];
        for (size_t k = 0; k < rt->nrules; k++) {
            const sg_rule_t *ru = &rt->rules[k];
            for (size_t b = 0; b < ru->nbackends; b++) {
                sg_backend_t *be = &ru->backends[b];
                const sg_healthcheck_t *hc = be->health_check;
                size_t reqlen = hc ? build_request(hc, req, sizeof(req)) : 0;
                const sg_tls_client_t *tls =
                    hc != NULL && (hc->use_tls == 1 || (hc->use_tls == -1 && hc->port == 0)) ? be->tls : NULL;
                /* A probe to another port (hc->port) speaks HTTP/1.1: appProtocol says what the Service port speaks. */
                bool h2 = hc != NULL && ((be->proto == SG_BACKEND_H2 && hc->port == 0) || hc->grpc);
                if (hc != NULL && reqlen == 0)
                    sg_log_error("health: %s: probe request too long; not probing", hc->policy ? hc->policy : "?");
                for (size_t i = 0; i < be->nendpoints; i++) {
                    sg_endpoint_t *ep = &be->endpoints[i];
                    ep->health = sg_health_get(h, (struct sockaddr *)&ep->addr, ep->addrlen);
                    if (ep->health == NULL)
                        goto fail;
                    if (reqlen == 0)
                        continue;
                    bool dup = false;
                    for (size_t j = 0; j < nn && !dup; j++)
                        dup = nv[j]->e == ep->health;
                    if (dup)
                        continue; /* one probe per address; the first policy met wins */
                    sg_health_probe_t *p = NULL;
                    for (size_t j = 0; j < h->nprobes && p == NULL; j++) {
                        sg_health_probe_t *o = h->probes[j];
                        if (o != NULL && o->e == ep->health && same_settings(o, hc, req, reqlen, tls, h2)) {
                            p = o;
                            p->tls = tls; /* the same policy, from the generation attached now */
                            h->probes[j] = NULL; /* carried over */
                        }
                    }
                    if (p == NULL) {
                        p = probe_new(ep->health, hc, req, reqlen, tls, h2);
                        if (p == NULL)
                            goto fail;
                        p->next_at = now;
                    }
                    if (nn == ncap) {
                        size_t c2 = ncap ? ncap * 2 : 16;
                        sg_health_probe_t **v2 = realloc(nv, c2 * sizeof(*v2));
                        if (v2 == NULL) {
                            probe_free(p);
                            goto fail;
                        }
                        nv = v2;
                        ncap = c2;
                    }
                    nv[nn++] = p;
                }
            }
        }
    }
    /* Probes that did not carry over: an address no longer checked is trusted again. */
    for (size_t j = 0; j < h->nprobes; j++) {
        sg_health_probe_t *o = h->probes[j];
        if (o == NULL)
            continue;
        bool kept = false;
        for (size_t i = 0; i < nn && !kept; i++)
            kept = nv[i]->e == o->e;
        if (!kept && !atomic_load_explicit(&o->e->healthy, memory_order_relaxed)) {
            atomic_store_explicit(&o->e->healthy, 1, memory_order_relaxed);
            sg_log_info("health: %s no longer checked; considered healthy", o->e->label);
        }
        probe_free(o);
    }
    free(h->probes);
    h->probes = nv;
    h->nprobes = nn;
    h->capprobes = ncap;
    sg_config_ref(cfg);
    h->gens[h->ngens++] = cfg;
    each_entry_of(h, cfg, gen_hold);
    return 0;
fail:
    h->orphans = true; /* entries made for cfg that no generation holds: the next prune frees them */
    /* The old probes stay (those moved out are in nv and go with it; they restart when next attached). */
    free_probes(nv, nn);
    free(nv);
    {
        size_t w = 0;
        for (size_t j = 0; j < h->nprobes; j++)
            if (h->probes[j] != NULL)
                h->probes[w++] = h->probes[j];
        h->nprobes = w;
    }
    return -ENOMEM;
}

int sg_health_pollfds(sg_health_t *h, struct pollfd *pfds)
{
    int n = 0;
    for (size_t i = 0; i < h->nprobes && n < SG_HEALTH_MAX_INFLIGHT; i++) {
        sg_health_probe_t *p = h->probes[i];
        if (p->fd < 0)
            continue;
        bool in = p->state == P_READING || (p->state == P_HANDSHAKE && !p->want_write);
        pfds[n] = (struct pollfd){.fd = p->fd, .events = in ? POLLIN : POLLOUT};
        h->polled[n++] = p;
    }
    h->npolled = n;
    return n;
}

void sg_health_handle(sg_health_t *h, const struct pollfd *pfds, int n, uint64_t now_ms)
{
    int np = SG_MIN(n, h->npolled);
    for (int i = 0; i < np; i++) {
        sg_health_probe_t *p = h->polled[i];
        if (p->fd == pfds[i].fd && pfds[i].revents != 0)
            probe_io(h, p, pfds[i].revents, now_ms);
    }
    h->npolled = 0;
    sg_health_prune(h);
    int inflight = 0;
    for (size_t i = 0; i < h->nprobes; i++) {
        sg_health_probe_t *p = h->probes[i];
        if (p->fd >= 0 && now_ms >= p->deadline)
            probe_done(h, p, false, now_ms, "timed out");
        inflight += p->fd >= 0;
    }
    for (size_t i = 0; i < h->nprobes && inflight < SG_HEALTH_MAX_INFLIGHT; i++) {
        sg_health_probe_t *p = h->probes[i];
        if (p->fd < 0 && now_ms >= p->next_at) {
            probe_start(h, p, now_ms);
            inflight += p->fd >= 0;
        }
    }
}

int sg_health_next_timeout_ms(const sg_health_t *h, uint64_t now_ms)
{
    if (h->nprobes == 0)
        return -1;
    uint64_t soonest = UINT64_MAX;
    for (size_t i = 0; i < h->nprobes; i++) {
        const sg_health_probe_t *p = h->probes[i];
        uint64_t t = p->fd >= 0 ? p->deadline : p->next_at;
        if (t < soonest)
            soonest = t;
    }
    if (soonest <= now_ms)
        return 0;
    uint64_t d = soonest - now_ms;
    return d > 60000 ? 60000 : (int)d;
}

void sg_health_each(const sg_health_t *h, void (*fn)(const sg_health_entry_t *e, void *arg), void *arg)
{
    for (size_t i = 0; h->buckets != NULL && i < h->nbuckets; i++)
        for (const sg_health_entry_t *e = h->buckets[i]; e != NULL; e = e->next)
            fn(e, arg);
}

void sg_health_free(sg_health_t *h)
{
    free_probes(h->probes, h->nprobes);
    free(h->probes);
    for (size_t i = 0; i < h->ngens; i++)
        sg_config_unref(h->gens[i]);
    free(h->gens);
    for (size_t i = 0; h->buckets != NULL && i < h->nbuckets; i++) {
        sg_health_entry_t *e = h->buckets[i];
        while (e != NULL) {
            sg_health_entry_t *nx = e->next;
            free(e);
            e = nx;
        }
    }
    free(h->buckets);
    memset(h, 0, sizeof(*h));
}
