/* guard.h: places unit-test inputs right before a PROT_NONE page, so a parser that reads past the end crashes. */
#ifndef SG_TEST_GUARD_H
#define SG_TEST_GUARD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Usage (as in picohttpparser's tests):
 *     sg_guard_t g;
 *     guard_init(&g, 64 * 1024);                 // largest input this test will place
 *     const char *p = guard_put(&g, data, n);    // p[n] is the first byte of the guard page
 *     ... parse p[0..n) ...
 *     guard_fini(&g);
 * guard_put() reuses the same mapping, so earlier pointers are invalid after the next put.
 * A test keeps one guard per test function; setup failures abort, since a test without its guard
 * would prove nothing.
 */
typedef struct sg_guard {
    char *map;      /* data pages followed by one PROT_NONE page */
    size_t map_len;
    size_t cap;     /* bytes available before the guard page */
} sg_guard_t;

static inline void guard_init(sg_guard_t *g, size_t cap)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data = (cap + page - 1) / page * page;

    if (data == 0)
        data = page;
    g->map_len = data + page;
    g->cap = data;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) {
        perror("guard: mmap");
        abort();
    }
    if (mprotect(g->map + data, page, PROT_NONE) != 0) {
        perror("guard: mprotect");
        abort();
    }
}

/* Copies data[0..n) so that it ends exactly at the guard page; returns where it starts. */
static inline const char *guard_put(sg_guard_t *g, const void *data, size_t n)
{
    if (n > g->cap) {
        fprintf(stderr, "guard: %zu bytes do not fit in %zu\n", n, g->cap);
        abort();
    }
    char *p = g->map + g->cap - n;
    if (n)
        memcpy(p, data, n);
    return p;
}

static inline const char *guard_put_str(sg_guard_t *g, const char *s)
{
    return guard_put(g, s, strlen(s));
}

static inline void guard_fini(sg_guard_t *g)
{
    if (g->map && g->map != MAP_FAILED && munmap(g->map, g->map_len) != 0) {
        perror("guard: munmap");
        abort();
    }
    g->map = NULL;
}

#endif
