/* hub.h: the shared stream (hub) and its subscribers, as fanout.c and share.c see them. Internal to fanout/. */
#ifndef SG_FANOUT_HUB_H
#define SG_FANOUT_HUB_H

#include "core/worker.h"
#include "http/conn.h"
#include "http/stream.h"
#include "fanout/ring.h"
#include "fanout/segment.h"

#define HUB_BUCKETS 256
#define MAX_EVENT_BYTES (1024 * 1024)   /* an event still open past this is a broken upstream: fail over */
#define MAX_PLAIN_BODY (64 * 1024)      /* a non-SSE answer kept to give every waiting subscriber */
#define MAX_HEAD_BYTES (16 * 1024)
#define RETRY_BASE_MS 100

typedef struct hub hub_t;

/* One client of a shared stream. Small on purpose: thousands of these share one upstream. */
typedef struct sub {
    uint8_t kind;                   /* SG_STREAM_KIND_SHARED (stream.h): first */
    bool head_sent;
    bool blocked;                   /* its queue is above the watermark: fed from the ring once writable */
    bool was_slow;
    bool finished;
    uint8_t replay;                 /* 0 none, 1 ring, 2 backend (the shared stream resumed), 3 live */
    uint8_t mproto;
    uint16_t status;                /* the response status its client got */
    const sg_stream_ops_t *ops;
    void *down;
    sg_down_info_t info;
    hub_t *hub;
    sg_list_t link;
    uint64_t next_seq;              /* the ring sequence number of the next event this client gets */
    uint64_t start_ms;
    uint64_t bytes_out;
    uint64_t events;
    uint64_t drain_at_ms;
    sg_timer_t timer;               /* drain moment */
    sg_listener_metrics_t *lm;
    struct catchup *cu;             /* a dedicated replay by the backend, until it meets the shared stream */
} sub_t;

_Static_assert(offsetof(sub_t, kind) == 0, "sg_stream_kind() reads the first byte");

/* A subscriber whose Last-Event-ID the ring could not serve gets a dedicated exchange carrying it (the backend
 * replays); its events are relayed whole, and as soon as one of them is also in the shared stream (its id in the
 * ring, or the shared stream's next event carries the id it last got) it moves onto the shared stream at that
 * point and the dedicated exchange closes. */
typedef struct catchup {
    sg_stream_t *own;               /* the dedicated proxy stream, or NULL once it is over */
    sg_seg_t seg;
    bool starting;                  /* inside sg_proxy_start: a detach is recorded, handled after it returns */
    int8_t detached;                /* 0 none, 1 ok, -1 failed (while starting) */
    bool failed;                    /* relaying to the client failed */
    bool eagain_now;
    bool sse;                       /* its response is an event stream (else relayed as it comes) */
    bool merged;                    /* on the shared stream now: own is closed from the loop */
    bool eagain;                    /* the client's queue passed the watermark during this delivery */
    bool id_ok;
    uint8_t id_len;
    char id[SG_SSE_MAX_ID];         /* the id after the last event relayed */
} catchup_t;

typedef enum { ATT_NONE = 0, ATT_SSE, ATT_PLAIN, ATT_FAILED, ATT_STOP } attempt_t;

struct hub {
    hub_t *next;                    /* hash bucket chain */
    sg_list_t alink;                /* in the worker's list of every hub, in the table or not */
    bool in_table;
    bool live;                      /* an event-stream head was received: subscribers have theirs */
    bool starting;                  /* inside sg_proxy_start */
    bool closing;
    bool ended;                     /* ended for good (end_all): a dedicated replay that meets its ring gets the rest
                                     * of the ring, then ends there (end_hint: with a retry: hint) */
    bool end_hint;
    uint8_t attempt;                /* attempt_t of the current upstream exchange */
    bool attempt_over;
    bool last_id_ok;
    uint8_t last_id_len;
    uint32_t fails;                 /* consecutive attempts without an event stream */
    sg_fanout_t *fo;
    sg_worker_t *w;
    sg_config_t *cfg;               /* the generation the shared stream started with */
    const sg_rule_t *rule;
    const sg_sse_policy_t *pol;
    sg_route_metrics_t *rm;
    uint64_t hash;
    char *key;
    size_t key_len;
    /* the request, kept for every (re)connect */
    char *req;                      /* target and header bytes */
    sg_str_t target;
    sg_h1_header_t *hdrs;
    size_t nhdrs;
    int host_index;
    /* the response head given to subscribers, and a non-SSE answer's body */
    int status;
    sg_h1_header_t *rhdrs;
    size_t nrhdrs;
    char *rstore;
    char *body;
    size_t body_len;
    sg_stream_t *up;                /* the proxy stream feeding this hub, or NULL between attempts */
    sg_seg_t seg;                   /* the upstream bytes split into events */
    char last_id[SG_SSE_MAX_ID];    /* id of the last complete event: a reconnect resumes there */
    sg_ring_t ring;
    sg_list_t subs;                 /* on the shared stream (head sent or waiting for it) */
    sg_list_t catchup;              /* on a dedicated replay (sub_t.cu) */
    size_t nsubs;                   /* both */
    sg_timer_t t_reap;              /* closes the dedicated exchanges of subscribers that merged */
    sg_timer_t t_retry;             /* end of an attempt, then the reconnect */
    sg_timer_t t_linger;            /* close after the last subscriber left */
    sg_timer_t t_hb;
    uint64_t last_send_ms;
    sg_rbuf_t *hb;                  /* the heartbeat comment, queued by reference like events */
    sg_rbuf_t *hb_h1;
    uint64_t ring_events_pub, ring_bytes_pub; /* what this ring adds to the worker's gauges */
    char origin_id[SG_SSE_MAX_ID];  /* the Last-Event-ID the first subscriber brought */
    uint8_t origin_len;
    /* Across workers (share.c): one hub per key and instance holds the upstream (the owner); the other workers'
     * hubs for the key (followers) get its events through their mailboxes. */
    uint8_t role;                   /* HUB_OWNER or HUB_FOLLOWER */
    bool synced;                    /* follower: the owner's ring and head arrived */
    bool detaching;                 /* follower: out of the table, freed once the owner confirms it let go */
    struct sg_fxent *xe;            /* the key in the instance's table (NULL: this worker alone) */
    struct follower *fol;           /* owner: the follower hubs it feeds */
    uint32_t nfol, capfol;
    sg_list_t waiting;              /* follower: subscribers with a Last-Event-ID, until the ring arrives */
    sg_conn_t tconn;                /* who the upstream request is from (the first subscriber's address, port, */
    sg_down_info_t tinfo;           /*   listener), kept so that it can be (re)opened without a local subscriber */
};

enum { HUB_OWNER = 0, HUB_FOLLOWER = 1 };

struct sg_fanout {
    sg_worker_t *w;
    hub_t *buckets[HUB_BUCKETS];
    size_t nhubs;
    sg_list_t all;
    struct sg_fxs *xs;              /* the instance's table of keys and the workers' mailboxes (NULL: alone) */
    sg_deferred_t flush_d;          /* posts what this worker queued for the others, once per iteration */
    bool closed;                    /* close_all ran: mailbox messages are dropped unread */
    size_t nowners_fed;             /* owner hubs with followers: the worker stays up while they exist */
};

/* fanout.c, for share.c */
void sg__hub_event(hub_t *h, sg_event_t *ev, const char *id, size_t id_len, bool id_set, bool id_ok, uint64_t at_ms);
int sg__hub_keep_head(hub_t *h, int status, const sg_h1_header_t *hdrs, size_t n);
void sg__hub_live(hub_t *h);
void sg__hub_answer_plain(hub_t *h);
void sg__hub_end_all(hub_t *h, bool ok);
void sg__hub_end_everyone(hub_t *h, bool ok);
void sg__hub_table_remove(hub_t *h);
void sg__hub_check_unused(hub_t *h);
void sg__hub_free(hub_t *h);
void sg__hub_connect_soon(hub_t *h);
void sg__hub_replay_waiting(hub_t *h);
void sg__publish_ring(hub_t *h);

/* share.c, for fanout.c */
/* Decides who holds the upstream of a new hub: registers it as the key's owner in the instance, or makes it a
 * follower of the worker that owns the key (asking that worker for its ring). Without a table (one worker, tests),
 * every hub is an owner. */
void sg__share_join(hub_t *h);
/* The owner's hooks: an event was pushed into its ring, its head arrived, it ended for good (ok: a clean end,
 * 204; plain: a non-SSE answer is in h->status/rhdrs/body; else a failure), it leaves the instance's table. */
void sg__share_event(hub_t *h, sg_event_t *ev, const char *id, size_t id_len, bool id_set, bool id_ok,
                     uint64_t at_ms);
void sg__share_live(hub_t *h);
void sg__share_end(hub_t *h, bool ok, bool plain);
void sg__share_withdraw(hub_t *h);
/* A follower's last subscriber left: it lets the owner go and is freed once the owner has confirmed. */
void sg__share_leave(hub_t *h);
/* Drops what the hub holds of the sharing (its key entry, its followers' list). */
void sg__share_hub_free(hub_t *h);
/* Sets up the worker's side (its flush step). */
void sg__share_init(sg_fanout_t *fo);
/* close_all ran: posts what is queued for the other workers now (nothing here will be read from the mailbox). */
void sg__share_close(sg_fanout_t *fo);
/* The worker's table is being freed (every loop has ended): drops its reference on the instance's table. */
void sg__share_unlink(sg_fanout_t *fo);

#endif
