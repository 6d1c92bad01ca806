/* admit.c: per-client-address budgets of one worker: the token buckets of new upstream exchanges and the
 * rate limits of log lines about clients, in one fixed-size set-associative table. */
#include <stdlib.h>
#include <string.h>

#include "http/admit.h"

typedef struct entry {
    uint8_t key[8];             /* IPv4 address, or the /64 of an IPv6 address */
    bool used;
    uint32_t tokens;
    uint64_t refill_ms;         /* tokens are whole up to this moment */
    uint64_t touched_ms;        /* last use: the least recently used way is evicted */
    uint64_t log_ms[SG_ADMIT_LOG_N];
    bool logged[SG_ADMIT_LOG_N];
    uint32_t held[SG_ADMIT_LOG_N];
} entry_t;

struct sg_admit {
    uint32_t rate;
    uint64_t seed;
    entry_t e[SG_ADMIT_SETS][SG_ADMIT_WAYS];
};

sg_admit_t *sg_admit_new(uint32_t rate, uint64_t seed)
{
    sg_admit_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->rate = rate;
    a->seed = seed | 1;
    return a;
}

void sg_admit_free(sg_admit_t *a)
{
    free(a);
}

static void make_key(const struct sockaddr_in6 *peer, uint8_t key[8])
{
    memset(key, 0, 8);
    if (peer->sin6_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)peer;
        memcpy(key, &v4->sin_addr, 4);
        key[7] = 4;
        return;
    }
    if (IN6_IS_ADDR_V4MAPPED(&peer->sin6_addr)) {
        memcpy(key, peer->sin6_addr.s6_addr + 12, 4);
        key[7] = 4;
        return;
    }
    /* One IPv6 host usually holds a whole /64: per address, it could take a fresh budget per request. */
    memcpy(key, peer->sin6_addr.s6_addr, 8);
}

static uint64_t hash_key(const sg_admit_t *a, const uint8_t key[8])
{
    uint64_t h;
    memcpy(&h, key, 8);
    h ^= a->seed;
    h *= 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

/* The entry of key, created (evicting the least recently used way of its set) when absent. */
static entry_t *lookup(sg_admit_t *a, const struct sockaddr_in6 *peer, uint64_t now_ms)
{
    uint8_t key[8];
    make_key(peer, key);
    entry_t *set = a->e[hash_key(a, key) % SG_ADMIT_SETS];
    entry_t *victim = &set[0];
    for (int i = 0; i < SG_ADMIT_WAYS; i++) {
        entry_t *x = &set[i];
        if (x->used && memcmp(x->key, key, 8) == 0) {
            x->touched_ms = now_ms;
            return x;
        }
        if (!x->used || (victim->used && x->touched_ms < victim->touched_ms))
            victim = x;
    }
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->key, key, 8);
    victim->used = true;
    victim->tokens = a->rate;
    victim->refill_ms = now_ms;
    victim->touched_ms = now_ms;
    return victim;
}

bool sg_admit_take(sg_admit_t *a, const struct sockaddr_in6 *peer, uint64_t now_ms)
{
    if (a == NULL || a->rate == 0)
        return true;
    entry_t *x = lookup(a, peer, now_ms);
    if (now_ms > x->refill_ms) {
        uint64_t add = (now_ms - x->refill_ms) * a->rate / 1000;
        if (x->tokens + add >= a->rate) {
            x->tokens = a->rate;
            x->refill_ms = now_ms;
        } else if (add > 0) {
            x->tokens += (uint32_t)add;
            /* Only the time the whole tokens stand for is used up: the remainder counts next time. */
            x->refill_ms += add * 1000 / a->rate;
        }
    }
    if (x->tokens == 0)
        return false;
    x->tokens--;
    return true;
}

bool sg_admit_may_log(sg_admit_t *a, const struct sockaddr_in6 *peer, int reason, uint64_t now_ms,
                      uint64_t *suppressed)
{
    *suppressed = 0;
    if (a == NULL)
        return true;
    if (reason < 0 || reason >= SG_ADMIT_LOG_N)
        return false;
    entry_t *x = lookup(a, peer, now_ms);
    if (x->logged[reason] && now_ms < x->log_ms[reason] + SG_ADMIT_LOG_MS) {
        x->held[reason]++;
        return false;
    }
    *suppressed = x->held[reason];
    x->held[reason] = 0;
    x->logged[reason] = true;
    x->log_ms[reason] = now_ms;
    return true;
}
