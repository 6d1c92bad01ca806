/* krebind.c: kube mode's retry of listeners whose port could not be bound (see krebind.h). The workers own their
 * sockets, so a round is a request to each (core/worker.h rebind_*) and an answer from each. */
#include "kube/krebind.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/loop.h"

size_t sg_krebind_collect(const sg_worker_t *ws, int n, uint16_t *out)
{
    size_t nf = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < ws[i].nbind_failed; k++) {
            bool dup = false;
            for (size_t j = 0; j < nf && !dup; j++)
                dup = out[j] == ws[i].bind_failed[k];
            if (!dup && nf < SG_WORKER_MAX_BIND_FAILED)
                out[nf++] = ws[i].bind_failed[k];
        }
    return nf;
}

static void ports_text(const uint16_t *p, size_t n, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        int w = snprintf(out + at, cap - at, "%s%u", i ? ", " : "", (unsigned)p[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

void sg_krebind_reset(sg_krebind_t *rb)
{
    uint64_t seq = rb->seq; /* rounds keep counting up: a late answer to an old one is never taken for a new one */
    memset(rb, 0, sizeof(*rb));
    rb->seq = seq;
}

void sg_krebind_start(sg_krebind_t *rb, uint64_t build, uint64_t gen, const uint16_t *failed, size_t nfailed,
                     uint64_t now)
{
    sg_krebind_reset(rb);
    if (nfailed == 0)
        return;
    rb->build = build;
    rb->gen = gen;
    rb->nfailed = nfailed < SG_WORKER_MAX_BIND_FAILED ? nfailed : SG_WORKER_MAX_BIND_FAILED;
    memcpy(rb->failed, failed, rb->nfailed * sizeof(*failed));
    rb->delay_ms = SG_KREBIND_FIRST_MS;
    rb->due_ms = now + rb->delay_ms;
    char ports[128];
    ports_text(rb->failed, rb->nfailed, ports, sizeof(ports));
    sg_log_error("kube: %s %s could not be bound (Gateway status: PortUnavailable); retrying after %u ms, then "
                 "backing off to every %u ms until %s",
                 rb->nfailed > 1 ? "ports" : "port", ports, (unsigned)SG_KREBIND_FIRST_MS, (unsigned)SG_KREBIND_MAX_MS,
                 rb->nfailed > 1 ? "they bind" : "it binds");
}

static bool has(const uint16_t *p, size_t n, uint16_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == v)
            return true;
    return false;
}

bool sg_krebind_tick(sg_krebind_t *rb, sg_worker_t *ws, int n, uint64_t now)
{
    if (rb->nfailed == 0)
        return false;
    if (!rb->inflight) {
        if (now < rb->due_ms)
            return false;
        rb->seq++;
        rb->inflight = true;
        for (int i = 0; i < n; i++) {
            atomic_store(&ws[i].rebind_gen, rb->gen);
            atomic_store_explicit(&ws[i].rebind_seq, rb->seq, memory_order_release);
            sg_loop_wake(&ws[i].loop);
        }
        return false;
    }
    for (int i = 0; i < n; i++)
        if (atomic_load_explicit(&ws[i].rebind_ack, memory_order_acquire) != rb->seq)
            return false;
    rb->inflight = false;
    rb->tries++;
    uint16_t now_failed[SG_WORKER_MAX_BIND_FAILED];
    size_t nf = sg_krebind_collect(ws, n, now_failed);
    bool changed = nf != rb->nfailed;
    for (size_t i = 0; i < rb->nfailed; i++)
        if (!has(now_failed, nf, rb->failed[i])) {
            changed = true;
            sg_log_info("kube: port %u is bound now (after %u %s): its listeners serve", (unsigned)rb->failed[i],
                        rb->tries, rb->tries == 1 ? "retry" : "retries");
        }
    memcpy(rb->failed, now_failed, nf * sizeof(*now_failed));
    rb->nfailed = nf;
    rb->delay_ms = rb->delay_ms * 2 > SG_KREBIND_MAX_MS ? SG_KREBIND_MAX_MS : rb->delay_ms * 2;
    rb->due_ms = now + rb->delay_ms;
    return changed;
}

int sg_krebind_wait_ms(const sg_krebind_t *rb, uint64_t now)
{
    if (rb->nfailed == 0)
        return -1;
    if (rb->inflight)
        return 5;
    return rb->due_ms <= now ? 0 : rb->due_ms - now > 60000 ? 60000 : (int)(rb->due_ms - now);
}
