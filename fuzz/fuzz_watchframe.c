/* fuzz_watchframe.c: libFuzzer harness for the watch framer and event decoder: the stream fed whole and split at
 * positions taken from the input must give the same lines and the same decoded events. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kwatch.h"

#define MAX_LINES 256

typedef struct obs {
    size_t nlines;
    uint64_t sum;      /* a digest of the lines and events seen */
    int overflow;      /* pushes refused for a line too long */
} obs_t;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void drain(sg_kframer_t *f, obs_t *o)
{
    sg_str_t line;
    while (sg_kframer_next(f, &line) == 1 && o->nlines < MAX_LINES) {
        if (line.n == 0 || memchr(line.p, '\n', line.n) != NULL)
            abort(); /* lines are never empty and never hold their terminator */
        o->nlines++;
        o->sum = mix(o->sum, line.p, line.n);
        sg_kevent_t ev;
        int rc = sg_kwatch_decode(line.p, line.n, &ev);
        o->sum = mix(o->sum, &rc, sizeof(rc));
        if (rc == 0) {
            if (ev.object == 0 || (ev.type != SG_KEV_ERROR && ev.rv == NULL))
                abort();
            int t = (int)ev.type;
            o->sum = mix(o->sum, &t, sizeof(t));
            if (ev.rv)
                o->sum = mix(o->sum, ev.rv, strlen(ev.rv));
            o->sum = mix(o->sum, &ev.code, sizeof(ev.code));
            sg_kevent_free(&ev);
        }
    }
}

/* Feeds p[0..n) in pieces ending at the given cuts; each piece is its own exact-size allocation. */
static void run(const uint8_t *p, size_t n, const size_t *cuts, size_t ncuts, obs_t *o)
{
    sg_kframer_t f;
    sg_kframer_init(&f, 1024);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        if (end < at)
            end = at;
        char *piece = malloc(end - at + 1);
        if (piece == NULL)
            abort();
        memcpy(piece, p + at, end - at);
        int rc = sg_kframer_push(&f, piece, end - at);
        free(piece);
        if (rc == -EMSGSIZE)
            o->overflow++;
        else if (rc != 0)
            abort();
        drain(&f, o);
        at = end;
    }
    sg_kframer_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t cut1 = data[0] % (size - 1), cut2 = cut1 + data[1] % (size - 1 - cut1 + 1);
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    if (cut2 > n)
        cut2 = n;
    if (cut1 > cut2)
        cut1 = cut2;
    obs_t whole = {0}, split = {0};
    run(p, n, NULL, 0, &whole);
    size_t cuts[2] = {cut1, cut2};
    run(p, n, cuts, 2, &split);
    /* A line over the cap can be refused at different pushes depending on the cuts; only compare clean streams. */
    if (whole.overflow == 0 && split.overflow == 0 && (whole.nlines != split.nlines || whole.sum != split.sum)) {
        fprintf(stderr, "fuzz_watchframe: split feed differs from whole feed\n");
        abort();
    }
    return 0;
}
