/* sg.h: forward typedefs, string slices, error codes and tiny inlines shared by every module. */
#ifndef SG_H
#define SG_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* A borrowed byte slice; never NUL-terminated unless said so. */
typedef struct sg_str {
    const char *p;
    size_t n;
} sg_str_t;

#define SG_STR(lit) ((sg_str_t){(lit), sizeof(lit) - 1})
#define SG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SG_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define SG_UNUSED __attribute__((unused))
#define SG_LIKELY(x) __builtin_expect(!!(x), 1)
#define SG_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Error codes beyond -errno. Functions return 0 / -errno / one of these. */
#define SG_EAGAIN (-EAGAIN)  /* would block, or above a watermark: wait for a callback */
#define SG_EINCOMPLETE (-4096) /* parser needs more input */
#define SG_EBADMSG (-4097)     /* malformed protocol input (HTTP 400) */
#define SG_ETOOLONG (-4098)    /* request line too long (HTTP 414) */
#define SG_EHDRTOOBIG (-4099)  /* header section too large or too many fields (HTTP 431) */
#define SG_ENOTIMPL (-4100)    /* unsupported feature (HTTP 501) */

static inline bool sg_str_eq(sg_str_t a, sg_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline char sg_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
}

/* ASCII case-insensitive equality (header names, tokens). */
static inline bool sg_str_ieq(sg_str_t a, sg_str_t b)
{
    if (a.n != b.n)
        return false;
    for (size_t i = 0; i < a.n; i++)
        if (sg_lower(a.p[i]) != sg_lower(b.p[i]))
            return false;
    return true;
}

static inline bool sg_str_ieq_lit(sg_str_t a, const char *lit)
{
    return sg_str_ieq(a, (sg_str_t){lit, strlen(lit)});
}

static inline sg_str_t sg_str_c(const char *s)
{
    return (sg_str_t){s, s ? strlen(s) : 0};
}

/* strcpy, strcat, sprintf, vsprintf and gets are banned in src/: `make` greps for them (a pragma poison
 * here would also trip on system headers included after this one). */

#endif
