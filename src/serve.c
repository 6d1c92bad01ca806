/* serve.c: the worker threads: each one's listening sockets (SO_REUSEPORT), its loop, config hand-over and
 * drain. It is the top of the data path: it hands each worker the protocols and the stream handler. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/conn.h"
#include "http/h1.h"
#include "http/admit.h"
#include "codec/h1parse.h"
#include "http/h2.h"
#include "core/log.h"
#include "proxy/proxy.h"
#include "fanout/fanout.h"
#include "config/route.h"
#include "serve.h"
#include "proxy/upclient.h"
#include "proxy/epgone.h"

static void listen_cb(sg_watcher_t *w, uint32_t events)
{
    (void)events;
    sg_conn_accept(SG_CONTAINER_OF(w, sg_listen_sock_t, w));
}

static int open_listener(const sg_bind_t *b)
{
    int fd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&b->addr, b->addrlen) < 0 || listen(fd, 4096) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static void reconcile_listeners(sg_worker_t *w, const sg_config_t *cfg, bool quiet);

/* Takes the generation the main thread handed over, if any. */
static void adopt_config(sg_worker_t *w)
{
    sg_config_t *next = atomic_exchange(&w->pending_cfg, NULL);
    if (next == NULL)
        return;
    sg_config_unref(w->cfg);
    w->cfg = next;
    if (!w->draining)
        sg_epgone_adopted(w, next);
    w->nbind_failed = 0;
    if (!w->draining && !atomic_load(&w->stop))
        reconcile_listeners(w, next, false);
    atomic_store_explicit(&w->adopted_gen, next->generation, memory_order_release);
}

static void close_listener(sg_worker_t *w, sg_listen_sock_t *ls)
{
    if (ls->w.fd < 0)
        return;
    sg_conn_listen_stop(ls);
    sg_loop_watch(&w->loop, &ls->w, 0);
    close(ls->w.fd);
    ls->w.fd = -1;
}

static void close_listeners(sg_worker_t *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        close_listener(w, w->listeners[i]);
}

/* Opens a listener for b and adds it to the worker. Returns 0 or -errno (logged unless quiet). */
static int add_listener(sg_worker_t *w, const sg_bind_t *b, bool quiet)
{
    sg_listen_sock_t **nl = realloc(w->listeners, (w->nlisteners + 1) * sizeof(*nl));
    if (nl == NULL)
        return -ENOMEM;
    w->listeners = nl;
    sg_listen_sock_t *ls = calloc(1, sizeof(*ls));
    if (ls == NULL)
        return -ENOMEM;
    int fd = open_listener(b);
    if (fd < 0) {
        if (!quiet)
            sg_log_error("cannot listen on %s: %s", b->label, strerror(-fd));
        free(ls);
        return fd;
    }
    ls->w.fd = fd;
    ls->w.cb = listen_cb;
    ls->worker = w;
    sg_conn_listen_init(ls);
    ls->port = b->port;
    ls->protocol = b->protocol;
    memcpy(&ls->addr, &b->addr, b->addrlen);
    ls->addrlen = b->addrlen;
    snprintf(ls->label, sizeof(ls->label), "%s", b->label);
    int rc = sg_loop_watch(&w->loop, &ls->w, EPOLLIN);
    if (rc < 0) {
        close(fd);
        free(ls);
        return rc;
    }
    nl[w->nlisteners++] = ls;
    return 0;
}

static bool same_bind(const sg_listen_sock_t *ls, const sg_bind_t *b)
{
    return ls->addrlen == b->addrlen && memcmp(&ls->addr, &b->addr, b->addrlen) == 0;
}

/* After a reload: listeners that appeared are opened, those that vanished are closed for new connections
 * (connections they accepted live on). Also a bind retry: the same cfg opens only what is missing. */
static void reconcile_listeners(sg_worker_t *w, const sg_config_t *cfg, bool quiet)
{
    size_t keep = 0;
    for (size_t i = 0; i < w->nlisteners; i++) {
        sg_listen_sock_t *ls = w->listeners[i];
        bool wanted = false;
        for (size_t j = 0; j < cfg->nbinds && !wanted; j++)
            if (same_bind(ls, &cfg->binds[j])) {
                wanted = true;
                ls->protocol = cfg->binds[j].protocol;
            }
        if (wanted && ls->w.fd >= 0) {
            w->listeners[keep++] = ls;
        } else {
            close_listener(w, ls);
            free(ls);
        }
    }
    w->nlisteners = keep;
    for (size_t j = 0; j < cfg->nbinds; j++) {
        bool have = false;
        for (size_t i = 0; i < w->nlisteners && !have; i++)
            have = same_bind(w->listeners[i], &cfg->binds[j]);
        if (!have && add_listener(w, &cfg->binds[j], quiet) < 0 && w->nbind_failed < SG_WORKER_MAX_BIND_FAILED)
            w->bind_failed[w->nbind_failed++] = cfg->binds[j].port;
    }
}

static void hard_stop(sg_worker_t *w)
{
    close_listeners(w);
    sg_fanout_close_all(w);
    sg_upclient_pool_close_all(w);
    while (!sg_list_empty(&w->conns))
        sg_conn_close(SG_CONTAINER_OF(w->conns.next, sg_conn_t, link));
    w->loop.stop = true;
}

static void drain_deadline(sg_timer_t *t)
{
    sg_worker_t *w = SG_CONTAINER_OF(t, sg_worker_t, drain_timer);
    if (w->nconns > 0)
        sg_log_info("worker %d: drain deadline, closing %zu connections", w->id, w->nconns);
    hard_stop(w);
}

static void start_drain(sg_worker_t *w)
{
    sg_loop_t *loop = &w->loop;
    w->draining = true;
    w->drain_end_ms = loop->now_ms + (uint64_t)w->settings->drain_timeout_ms;
    close_listeners(w);
    sg_upclient_pool_close_all(w);
    sg_timer_arm(&loop->wheel, &w->drain_timer, w->drain_end_ms);
    /* on_drain may close the connection: walk with the next pointer taken first. */
    for (sg_list_t *n = w->conns.next, *next; n != &w->conns; n = next) {
        next = n->next;
        sg_conn_t *c = SG_CONTAINER_OF(n, sg_conn_t, link);
        if (c->proto && c->proto->on_drain)
            c->proto->on_drain(c);
        else
            sg_conn_close(c);
    }
}

/* The main thread asks for another try at this generation's binds that failed (src/kube/krebind.c). Run before
 * adopt_config: a request made for the generation being left is answered before it is left, so bind_failed is
 * never written after a newer generation's adopted_gen. */
static void retry_binds(sg_worker_t *w)
{
    uint64_t seq = atomic_load_explicit(&w->rebind_seq, memory_order_acquire);
    if (seq == w->rebind_seen)
        return;
    w->rebind_seen = seq;
    if (w->nbind_failed > 0 && !w->draining && !atomic_load(&w->stop) &&
        atomic_load(&w->rebind_gen) == w->cfg->generation) {
        w->nbind_failed = 0;
        reconcile_listeners(w, w->cfg, true);
    }
    atomic_store_explicit(&w->rebind_ack, seq, memory_order_release);
}

static void on_wake(sg_loop_t *loop)
{
    sg_worker_t *w = loop->data;
    sg_conn_hs_collect(w);
    sg_fanout_wake(w);
    retry_binds(w);
    adopt_config(w);
    if (atomic_load(&w->stop)) {
        hard_stop(w);
        return;
    }
    if (atomic_load(&w->drain) && !w->draining)
        start_drain(w);
}

const sg_conn_protos_t sg_serve_protos = {.h1 = sg_h1_attach, .h2 = sg_h2_attach};

int sg_serve_init(sg_worker_t *w, int id, const sg_settings_t *settings, sg_config_t *cfg)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    pthread_mutex_init(&w->hs_lock, NULL);
    sg_list_init(&w->hs_done);
    w->settings = settings;
    sg_list_init(&w->conns);
    sg_list_init(&w->streams);
    sg_timer_init(&w->drain_timer, drain_deadline);
    int rc = sg_loop_init(&w->loop);
    if (rc < 0)
        return rc;
    w->loop.data = w;
    w->loop.pause_us = settings->saturation_pause_us;
    w->loop.interactive_pause = settings->saturation_tunnels_pause;
    w->loop.saturated_count = &w->metrics.saturated_rounds;
    w->loop.relay_full_count = &w->metrics.relay_full_rounds;
    w->loop.on_wake = on_wake;
    if (getrandom(&w->rid_prefix, sizeof(w->rid_prefix), 0) != sizeof(w->rid_prefix))
        w->rid_prefix = (uint64_t)sg_now_ms() * 2654435761u + (uint64_t)id;
    w->rng = w->rid_prefix | 1;
    w->protos = &sg_serve_protos;
    w->handler = &sg_fanout_handler;
    w->route_scratch = sg_route_scratch_new();
    w->msg = calloc(1, sizeof(*w->msg));
    w->admit = sg_admit_new(settings->client_rate, w->rng * 0x9e3779b97f4a7c15ull);
    if (w->route_scratch == NULL || w->msg == NULL || w->admit == NULL || sg_fanout_init(w) < 0) {
        sg_fanout_free(w);
        sg_route_scratch_free(w->route_scratch);
        free(w->msg);
        sg_admit_free(w->admit);
        w->admit = NULL;
        sg_loop_free(&w->loop);
        return -ENOMEM;
    }
    sg_config_ref(cfg);
    w->cfg = cfg;
    for (size_t i = 0; i < cfg->nbinds; i++) {
        rc = add_listener(w, &cfg->binds[i], false);
        if (rc < 0) {
            sg_serve_free(w);
            return rc;
        }
    }
    return 0;
}

void *sg_serve_main(void *arg)
{
    sg_worker_t *w = arg;
    char name[16];
    snprintf(name, sizeof(name), "ssegate-w%d", w->id);
    pthread_setname_np(pthread_self(), name);
    while (!w->loop.stop) {
        sg_loop_run_once(&w->loop);
        atomic_store_explicit(&w->nconns_pub, w->nconns, memory_order_relaxed);
        /* An upstream that other workers' subscribers still use keeps its worker up until they have left. */
        if (w->draining && w->nconns == 0 && !sg_fanout_holds(w)) {
            sg_timer_cancel(&w->loop.wheel, &w->drain_timer);
            w->loop.stop = true;
        }
    }
    /* Nothing may outlive the loop: handshake steps still in the pool come back (their connections were
     * closed, so they are only released), pooled upstream connections go, then the last flushes and reaps. */
    for (int i = 0; w->hs_inflight > 0 && i < 10000; i++) {
        sg_conn_hs_collect(w);
        if (w->hs_inflight > 0)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    sg_fanout_close_all(w);
    sg_upclient_pool_close_all(w);
    sg_loop_run_once(&w->loop);
    atomic_store(&w->done, true);
    return NULL;
}

void sg_serve_request_drain(sg_worker_t *w)
{
    atomic_store(&w->drain, true);
    sg_loop_wake(&w->loop);
}

void sg_serve_request_stop(sg_worker_t *w)
{
    atomic_store(&w->stop, true);
    sg_loop_wake(&w->loop);
}

void sg_serve_free(sg_worker_t *w)
{
    close_listeners(w);
    for (size_t i = 0; i < w->nlisteners; i++)
        free(w->listeners[i]);
    free(w->listeners);
    w->listeners = NULL;
    w->nlisteners = 0;
    for (size_t i = 0; i < w->npools; i++)
        free(w->pools[i]);
    free(w->pools);
    w->pools = NULL;
    sg_route_scratch_free(w->route_scratch);
    w->route_scratch = NULL;
    free(w->msg);
    w->msg = NULL;
    sg_admit_free(w->admit);
    w->admit = NULL;
    sg_fanout_free(w);
    sg_config_unref(atomic_exchange(&w->pending_cfg, NULL));
    sg_config_unref(w->cfg);
    w->cfg = NULL;
    sg_loop_free(&w->loop);
    pthread_mutex_destroy(&w->hs_lock);
}
