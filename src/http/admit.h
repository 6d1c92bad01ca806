/* admit.h: one worker's per-client-address budgets: new upstream exchanges per second (a token bucket per
 * address in a fixed-size table, so a client spread over many addresses cannot grow it) and the rate-limited
 * log of clients that overrun a budget. */
#ifndef SG_ADMIT_H
#define SG_ADMIT_H

#include <netinet/in.h>
#include <stdint.h>

#include "core/sg.h"

#define SG_ADMIT_SETS 256           /* table: SETS x WAYS addresses per worker, about 56 KiB */
#define SG_ADMIT_WAYS 4
#define SG_ADMIT_LOG_MS 10000       /* at most one log line per client address and reason per 10 s */

typedef struct sg_admit sg_admit_t;

/* Why a client is logged: each reason has its own rate limit per address. */
enum { SG_ADMIT_LOG_RATE = 0, SG_ADMIT_LOG_RESET = 1, SG_ADMIT_LOG_N = 2 };

/* A table for one worker; rate = new upstream exchanges per second per address (and the burst), 0 = no
 * limit. seed randomises the hash. Returns NULL when out of memory. */
sg_admit_t *sg_admit_new(uint32_t rate, uint64_t seed);
void sg_admit_free(sg_admit_t *a);

/*
 * Takes one upstream exchange from the budget of peer's address (IPv4: the address; IPv6: its /64, what
 * one host is usually given). Returns true when the exchange may start, false when the budget is spent.
 * A NULL table or a rate of 0 always admits.
 */
bool sg_admit_take(sg_admit_t *a, const struct sockaddr_in6 *peer, uint64_t now_ms);

/*
 * Whether a line about this client and reason may be logged now: at most one per SG_ADMIT_LOG_MS. When it
 * returns true, *suppressed is the number of lines held back since the previous one; when false, the line
 * is counted as held back. A NULL table always allows (with 0 suppressed).
 */
bool sg_admit_may_log(sg_admit_t *a, const struct sockaddr_in6 *peer, int reason, uint64_t now_ms,
                      uint64_t *suppressed);

#endif
