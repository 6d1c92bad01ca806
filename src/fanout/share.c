/* share.c: one upstream per instance. The process's table of sharing keys (which worker owns each key's upstream),
 * the workers' mailboxes, and what owner and follower hubs say to each other through them: attach (answered with a
 * copy of the ring by reference), the response head, events by reference, the end, detach. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fanout/fanout.h"
#include "fanout/hub.h"

#define XS_BUCKETS 1024

/* One sharing key of the instance and the worker whose hub holds its upstream. */
typedef struct sg_fxent {
    struct sg_fxent *next;          /* bucket chain (under the table's lock) */
    uint64_t hash;
    char *key;
    size_t key_len;
    int owner;                      /* the owner's worker id (set once) */
    hub_t *owner_hub;               /* read and written only by the owner's thread; NULL once it left the table */
    bool in_table;                  /* under the table's lock */
    atomic_int refs;                /* the table, the owner hub, each follower hub */
} sg_fxent_t;

enum { M_ATTACH, M_DETACH, M_SNAPSHOT, M_LIVE, M_EVENT, M_END, M_DETACHED, M_GONE };
enum { END_FAIL, END_OK, END_PLAIN };

/* A response head (and a non-SSE answer's body), copied into one allocation. */
typedef struct head {
    int status;
    size_t n;
    sg_h1_header_t *hdrs;
    char *body;
    size_t body_len;
} head_t;

typedef struct snap_ent {
    sg_event_t *ev;
    uint64_t at_ms;
    bool id_set, id_ok;
    uint8_t id_len;
    char id[SG_SSE_MAX_ID];
} snap_ent_t;

/* The owner's ring when a follower attached: its events by reference, and its base id. */
typedef struct snap {
    bool base_ok;
    uint8_t base_len;
    char base_id[SG_SSE_MAX_ID];
    uint32_t n;
    snap_ent_t ents[];
} snap_t;

typedef struct msg {
    struct msg *next;
    uint8_t type, end;
    int from;                       /* the sender's worker id */
    sg_fxent_t *xe;                 /* ATTACH, DETACH: the key, with a reference of the message's own */
    hub_t *fhub;                    /* the follower hub it is about (dereferenced only on the follower's worker) */
    sg_event_t *ev;                 /* EVENT: a reference */
    uint64_t at_ms;
    bool id_set, id_ok;
    uint8_t id_len;
    char id[SG_SSE_MAX_ID];
    head_t *head;                   /* SNAPSHOT (when live), LIVE, END (plain) */
    snap_t *snap;                   /* SNAPSHOT */
} msg_t;

typedef struct box {
    pthread_mutex_t lock;
    msg_t *head, *tail;
    sg_loop_t *loop;
} box_t;

typedef struct outq {
    msg_t *head, *tail;
} outq_t;

typedef struct sg_fxs {
    pthread_mutex_t lock;           /* the key table */
    sg_fxent_t *buckets[XS_BUCKETS];
    int n;                          /* workers */
    atomic_int refs;                /* the workers' tables */
    box_t *boxes;                   /* [n]: each worker's mailbox */
    outq_t *out;                    /* [n * n]: out[from * n + to], what `from` queued this iteration (its own) */
} sg_fxs_t;

struct follower {
    int worker;
    hub_t *fhub;
};

/* ---- messages ---- */

static void xent_unref(sg_fxent_t *e);

static void msg_free(msg_t *m)
{
    xent_unref(m->xe);
    sg_event_unref(m->ev);
    free(m->head);
    if (m->snap != NULL) {
        for (uint32_t i = 0; i < m->snap->n; i++)
            sg_event_unref(m->snap->ents[i].ev);
        free(m->snap);
    }
    free(m);
}

static void free_list(msg_t *m)
{
    while (m != NULL) {
        msg_t *next = m->next;
        msg_free(m);
        m = next;
    }
}

static msg_t *msg_new(uint8_t type, hub_t *fhub)
{
    msg_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        sg_log_error("fanout: out of memory for a message between workers");
        return NULL;
    }
    m->type = type;
    m->fhub = fhub;
    return m;
}

/* Queued for worker `to`; posted to its mailbox (one lock, one wakeup per worker) before this loop sleeps (events: at
 * once), so the messages of one iteration travel together, and always in order. Takes m. */
static void post(sg_fanout_t *fo, int to, msg_t *m)
{
    if (m == NULL)
        return;
    sg_fxs_t *xs = fo->xs;
    m->from = fo->w->id;
    outq_t *q = &xs->out[fo->w->id * xs->n + to];
    if (q->tail != NULL)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    sg_loop_flush_later(&fo->w->loop, &fo->flush_d);
}

static void flush_now(sg_fanout_t *fo)
{
    sg_fxs_t *xs = fo->xs;
    if (xs == NULL)
        return;
    for (int to = 0; to < xs->n; to++) {
        outq_t *q = &xs->out[fo->w->id * xs->n + to];
        if (q->head == NULL)
            continue;
        box_t *b = &xs->boxes[to];
        pthread_mutex_lock(&b->lock);
        /* The receiver reads its eventfd before it empties the box: a box that is not empty has a wakeup coming. */
        bool was_empty = b->head == NULL;
        if (b->tail != NULL)
            b->tail->next = q->head;
        else
            b->head = q->head;
        b->tail = q->tail;
        pthread_mutex_unlock(&b->lock);
        q->head = q->tail = NULL;
        if (was_empty)
            sg_loop_wake(b->loop);
    }
}

static void flush_cb(sg_deferred_t *d)
{
    flush_now(SG_CONTAINER_OF(d, sg_fanout_t, flush_d));
}

/* A copy of the hub's head (and, with body, its non-SSE answer's body). NULL when out of memory. */
static head_t *head_copy(const hub_t *h, bool body)
{
    size_t bytes = sizeof(head_t) + h->nrhdrs * sizeof(sg_h1_header_t) + (body ? h->body_len : 0);
    for (size_t i = 0; i < h->nrhdrs; i++)
        bytes += h->rhdrs[i].name.n + h->rhdrs[i].value.n;
    head_t *c = malloc(bytes);
    if (c == NULL)
        return NULL;
    c->status = h->status;
    c->n = h->nrhdrs;
    c->hdrs = (sg_h1_header_t *)(void *)(c + 1);
    char *o = (char *)(c->hdrs + c->n);
    for (size_t i = 0; i < c->n; i++) {
        const sg_h1_header_t *s = &h->rhdrs[i];
        memcpy(o, s->name.p, s->name.n);
        c->hdrs[i].name = (sg_str_t){o, s->name.n};
        o += s->name.n;
        memcpy(o, s->value.p, s->value.n);
        c->hdrs[i].value = (sg_str_t){o, s->value.n};
        o += s->value.n;
    }
    c->body = o;
    c->body_len = body ? h->body_len : 0;
    if (c->body_len > 0)
        memcpy(o, h->body, h->body_len);
    return c;
}

/* ---- the key table ---- */

static sg_fxent_t *xent_ref(sg_fxent_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

static void xent_unref(sg_fxent_t *e)
{
    if (e != NULL && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        free(e->key);
        free(e);
    }
}

/* Finds the key, or registers it with hub as its owner (*mine). Returns the entry with a reference for the caller,
 * or NULL when out of memory. */
static sg_fxent_t *claim(sg_fxs_t *xs, const hub_t *h, int self, hub_t *hub, bool *mine)
{
    sg_fxent_t **bucket = &xs->buckets[h->hash % XS_BUCKETS];
    pthread_mutex_lock(&xs->lock);
    for (sg_fxent_t *e = *bucket; e != NULL; e = e->next)
        if (e->hash == h->hash && e->key_len == h->key_len && memcmp(e->key, h->key, h->key_len) == 0) {
            atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
            pthread_mutex_unlock(&xs->lock);
            *mine = false;
            return e;
        }
    sg_fxent_t *e = calloc(1, sizeof(*e));
    char *key = malloc(h->key_len ? h->key_len : 1);
    if (e == NULL || key == NULL) {
        pthread_mutex_unlock(&xs->lock);
        free(e);
        free(key);
        return NULL;
    }
    memcpy(key, h->key, h->key_len);
    e->key = key;
    e->key_len = h->key_len;
    e->hash = h->hash;
    e->owner = self;
    e->owner_hub = hub;
    e->in_table = true;
    atomic_init(&e->refs, 2);
    e->next = *bucket;
    *bucket = e;
    pthread_mutex_unlock(&xs->lock);
    *mine = true;
    return e;
}

/* ---- roles ---- */

static void set_owner(hub_t *h)
{
    h->role = HUB_OWNER;
    h->synced = true;
    sg_counter_add(&h->w->metrics.fanout_streams, 1);
    sg_counter_add(&h->rm->shared_streams, 1);
}

static void set_follower(hub_t *h)
{
    h->role = HUB_FOLLOWER;
    h->synced = false;
    sg_counter_add(&h->w->metrics.fanout_followers, 1);
}

/* Registers the hub as the key's owner, or asks the owner's worker to feed it. */
static void join(hub_t *h)
{
    sg_fanout_t *fo = h->fo;
    bool mine = true;
    sg_fxent_t *e = claim(fo->xs, h, fo->w->id, h, &mine);
    h->xe = e;
    if (e == NULL || mine) {
        set_owner(h); /* out of memory for the table: this worker shares alone, as without it */
        return;
    }
    set_follower(h);
    msg_t *m = msg_new(M_ATTACH, h);
    if (m == NULL) {
        /* It could not ask: the key is served here alone, and registered nowhere. */
        xent_unref(e);
        h->xe = NULL;
        sg_counter_sub(&h->w->metrics.fanout_followers, 1);
        set_owner(h);
        return;
    }
    m->xe = xent_ref(e);
    post(fo, e->owner, m);
}

void sg__share_join(hub_t *h)
{
    if (h->fo->xs == NULL) {
        set_owner(h);
        return;
    }
    join(h);
}

void sg__share_withdraw(hub_t *h)
{
    sg_fxent_t *e = h->xe;
    if (e == NULL || e->owner_hub != h)
        return;
    sg_fxs_t *xs = h->fo->xs;
    pthread_mutex_lock(&xs->lock);
    if (e->in_table) {
        for (sg_fxent_t **pp = &xs->buckets[e->hash % XS_BUCKETS]; *pp != NULL; pp = &(*pp)->next)
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        e->in_table = false;
        atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel); /* the table's; the hub still holds one */
    }
    pthread_mutex_unlock(&xs->lock);
    e->owner_hub = NULL;
}

/* ---- the owner's side ---- */

static void followers_cleared(hub_t *h)
{
    if (h->nfol > 0) {
        h->nfol = 0;
        h->fo->nowners_fed--;
    }
}

void sg__share_event(hub_t *h, sg_event_t *ev, const char *id, size_t id_len, bool id_set, bool id_ok,
                     uint64_t at_ms)
{
    sg_rbuf_share(ev);
    for (uint32_t i = 0; i < h->nfol; i++) {
        msg_t *m = msg_new(M_EVENT, h->fol[i].fhub);
        if (m == NULL)
            continue;
        m->ev = sg_rbuf_ref(ev);
        m->at_ms = at_ms;
        m->id_set = id_set;
        m->id_ok = id_ok;
        m->id_len = (uint8_t)SG_MIN(id_len, (size_t)SG_SSE_MAX_ID);
        memcpy(m->id, id, m->id_len);
        post(h->fo, h->fol[i].worker, m);
    }
    /* Posted now, before this worker hands the event to its own subscribers: the other workers deliver it
     * meanwhile (an uncontended lock and at most one wakeup per follower worker and event). */
    flush_now(h->fo);
}

void sg__share_live(hub_t *h)
{
    for (uint32_t i = 0; i < h->nfol; i++) {
        msg_t *m = msg_new(M_LIVE, h->fol[i].fhub);
        if (m != NULL && (m->head = head_copy(h, false)) == NULL) {
            free(m);
            m = NULL;
        }
        post(h->fo, h->fol[i].worker, m);
    }
}

void sg__share_end(hub_t *h, bool ok, bool plain)
{
    for (uint32_t i = 0; i < h->nfol; i++) {
        msg_t *m = msg_new(M_END, h->fol[i].fhub);
        if (m == NULL)
            continue;
        m->end = ok ? END_OK : plain ? END_PLAIN : END_FAIL;
        if (plain && (m->head = head_copy(h, true)) == NULL)
            m->end = END_FAIL;
        post(h->fo, h->fol[i].worker, m);
    }
    followers_cleared(h);
}

static snap_t *snapshot(hub_t *h)
{
    const sg_ring_t *r = &h->ring;
    snap_t *sn = malloc(sizeof(*sn) + (size_t)r->count * sizeof(snap_ent_t));
    if (sn == NULL)
        return NULL;
    sn->base_ok = r->base_ok;
    sn->base_len = r->base_len;
    memcpy(sn->base_id, r->base_id, r->base_len);
    sn->n = 0;
    for (uint64_t seq = sg_ring_oldest(r); seq < r->head_seq; seq++) {
        const sg_ring_ent_t *e = sg_ring_get(r, seq);
        snap_ent_t *o = &sn->ents[sn->n++];
        sg_rbuf_share(e->ev);
        o->ev = sg_rbuf_ref(e->ev);
        o->at_ms = e->at_ms;
        o->id_set = e->id_set;
        o->id_ok = e->id_ok;
        o->id_len = e->id_len;
        memcpy(o->id, e->id, e->id_len);
    }
    return sn;
}

static void on_attach(sg_fanout_t *fo, msg_t *m)
{
    hub_t *h = m->xe->owner_hub;
    msg_t *r = NULL;
    if (h != NULL && !h->closing && h->in_table) {
        r = msg_new(M_SNAPSHOT, m->fhub);
        if (r != NULL && ((r->snap = snapshot(h)) == NULL || (h->live && (r->head = head_copy(h, false)) == NULL))) {
            msg_free(r);
            r = NULL;
        }
        if (r != NULL && h->nfol == h->capfol) {
            uint32_t cap = h->capfol ? h->capfol * 2 : 4;
            struct follower *f = realloc(h->fol, cap * sizeof(*f));
            if (f == NULL) {
                msg_free(r);
                r = NULL;
            } else {
                h->fol = f;
                h->capfol = cap;
            }
        }
    }
    if (r == NULL) {
        /* Gone (or no memory to feed it): the follower takes the key itself. */
        post(fo, m->from, msg_new(M_GONE, m->fhub));
        return;
    }
    h->fol[h->nfol++] = (struct follower){m->from, m->fhub};
    if (h->nfol == 1)
        fo->nowners_fed++;
    sg_timer_cancel(&fo->w->loop.wheel, &h->t_linger);
    post(fo, m->from, r);
}

static void on_detach(sg_fanout_t *fo, msg_t *m)
{
    hub_t *h = m->xe->owner_hub;
    if (h != NULL)
        for (uint32_t i = 0; i < h->nfol; i++)
            if (h->fol[i].worker == m->from && h->fol[i].fhub == m->fhub) {
                h->fol[i] = h->fol[--h->nfol];
                if (h->nfol == 0) {
                    fo->nowners_fed--;
                    sg__hub_check_unused(h);
                }
                break;
            }
    /* Nothing more will be sent about that follower: it may go. */
    post(fo, m->from, msg_new(M_DETACHED, m->fhub));
}

/* ---- the follower's side ---- */

static void on_snapshot(hub_t *h, msg_t *m)
{
    snap_t *sn = m->snap;
    sg_ring_t *r = &h->ring;
    r->base_ok = sn->base_ok;
    r->base_len = sn->base_len;
    memcpy(r->base_id, sn->base_id, sn->base_len);
    for (uint32_t i = 0; i < sn->n; i++) {
        const snap_ent_t *e = &sn->ents[i];
        sg_ring_push(r, e->at_ms, e->ev, e->id, e->id_len, e->id_set, e->id_ok);
    }
    h->synced = true;
    sg__hub_replay_waiting(h);
    if (m->head != NULL && sg__hub_keep_head(h, m->head->status, m->head->hdrs, m->head->n) == 0)
        sg__hub_live(h);
}

static void on_end(hub_t *h, msg_t *m)
{
    sg__hub_table_remove(h); /* a new subscriber starts a new stream */
    if (m->end == END_PLAIN && m->head != NULL &&
        sg__hub_keep_head(h, m->head->status, m->head->hdrs, m->head->n) == 0) {
        free(h->body);
        h->body = malloc(m->head->body_len ? m->head->body_len : 1);
        h->body_len = h->body ? m->head->body_len : 0;
        if (h->body != NULL)
            memcpy(h->body, m->head->body, h->body_len);
        sg__hub_answer_plain(h);
    }
    sg__hub_end_all(h, m->end == END_OK);
    sg__hub_check_unused(h);
}

/* The owner the follower asked for is gone: it takes the key (or follows whoever has it now). */
static void on_gone(hub_t *h)
{
    xent_unref(h->xe);
    h->xe = NULL;
    sg_counter_sub(&h->w->metrics.fanout_followers, 1);
    join(h);
    if (h->role == HUB_OWNER) {
        sg__hub_replay_waiting(h);
        if (h->nsubs > 0)
            sg__hub_connect_soon(h);
        else
            sg__hub_check_unused(h);
    }
}

static void handle(sg_fanout_t *fo, msg_t *m)
{
    hub_t *h = m->fhub;
    switch (m->type) {
    case M_ATTACH:
        on_attach(fo, m);
        break;
    case M_DETACH:
        on_detach(fo, m);
        break;
    case M_SNAPSHOT:
        if (!h->detaching)
            on_snapshot(h, m);
        break;
    case M_LIVE:
        if (!h->detaching && sg__hub_keep_head(h, m->head->status, m->head->hdrs, m->head->n) == 0)
            sg__hub_live(h);
        break;
    case M_EVENT:
        if (!h->detaching) {
            sg__hub_event(h, m->ev, m->id, m->id_len, m->id_set, m->id_ok, m->at_ms);
            m->ev = NULL; /* the hub took the reference */
        }
        break;
    case M_END:
        if (!h->detaching)
            on_end(h, m);
        break;
    case M_DETACHED:
        sg__hub_free(h);
        break;
    case M_GONE:
        /* A follower that already let go waits for the answer to its DETACH (posted after its ATTACH). */
        if (!h->detaching)
            on_gone(h);
        break;
    }
    msg_free(m);
}

void sg__share_leave(hub_t *h)
{
    sg__hub_table_remove(h);
    h->detaching = true;
    msg_t *m = msg_new(M_DETACH, h);
    if (m == NULL)
        return; /* the owner keeps feeding a hub that ignores it; freed with the worker's table */
    m->xe = xent_ref(h->xe);
    post(h->fo, h->xe->owner, m);
}

void sg__share_hub_free(hub_t *h)
{
    if (h->role == HUB_OWNER) {
        sg_counter_sub(&h->w->metrics.fanout_streams, 1);
        sg_counter_sub(&h->rm->shared_streams, 1);
        followers_cleared(h);
        sg__share_withdraw(h);
    } else {
        sg_counter_sub(&h->w->metrics.fanout_followers, 1);
    }
    free(h->fol);
    h->fol = NULL;
    xent_unref(h->xe);
    h->xe = NULL;
}

/* ---- the worker's side ---- */

void sg__share_init(sg_fanout_t *fo)
{
    sg_deferred_init(&fo->flush_d, flush_cb);
}

void sg__share_close(sg_fanout_t *fo)
{
    sg_loop_cancel(&fo->flush_d);
    flush_now(fo);
}

void sg_fanout_wake(sg_worker_t *w)
{
    sg_fanout_t *fo = w->fanout;
    if (fo == NULL || fo->xs == NULL)
        return;
    box_t *b = &fo->xs->boxes[w->id];
    pthread_mutex_lock(&b->lock);
    msg_t *m = b->head;
    b->head = b->tail = NULL;
    pthread_mutex_unlock(&b->lock);
    while (m != NULL) {
        msg_t *next = m->next;
        m->next = NULL;
        if (fo->closed)
            msg_free(m); /* its hub may be gone: nothing is read after close_all */
        else
            handle(fo, m);
        m = next;
    }
}

bool sg_fanout_holds(const sg_worker_t *w)
{
    return w->fanout != NULL && w->fanout->nowners_fed > 0;
}

int sg_fanout_link(sg_worker_t *workers, int n)
{
    if (n < 2)
        return 0; /* one worker: nothing to share with, and nothing on its path changes */
    sg_fxs_t *xs = calloc(1, sizeof(*xs));
    if (xs == NULL)
        return -ENOMEM;
    xs->boxes = calloc((size_t)n, sizeof(*xs->boxes));
    xs->out = calloc((size_t)n * (size_t)n, sizeof(*xs->out));
    if (xs->boxes == NULL || xs->out == NULL) {
        free(xs->boxes);
        free(xs->out);
        free(xs);
        return -ENOMEM;
    }
    pthread_mutex_init(&xs->lock, NULL);
    xs->n = n;
    atomic_init(&xs->refs, n);
    for (int i = 0; i < n; i++) {
        pthread_mutex_init(&xs->boxes[i].lock, NULL);
        xs->boxes[i].loop = &workers[i].loop;
        workers[i].fanout->xs = xs;
    }
    return 0;
}

void sg__share_unlink(sg_fanout_t *fo)
{
    sg_fxs_t *xs = fo->xs;
    fo->xs = NULL;
    if (xs == NULL || atomic_fetch_sub(&xs->refs, 1) != 1)
        return;
    /* The last worker's table: every loop has ended. What was never read is released. */
    for (int i = 0; i < xs->n; i++) {
        free_list(xs->boxes[i].head);
        pthread_mutex_destroy(&xs->boxes[i].lock);
    }
    for (int i = 0; i < xs->n * xs->n; i++)
        free_list(xs->out[i].head);
    for (int i = 0; i < XS_BUCKETS; i++)
        while (xs->buckets[i] != NULL) {
            sg_fxent_t *e = xs->buckets[i];
            xs->buckets[i] = e->next;
            xent_unref(e);
        }
    pthread_mutex_destroy(&xs->lock);
    free(xs->boxes);
    free(xs->out);
    free(xs);
}
