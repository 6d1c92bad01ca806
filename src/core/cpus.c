/* cpus.c: see cpus.h. */
#include "core/cpus.h"

#include <errno.h>
#include <stdio.h>

#include "core/sg.h"

/* One decimal CPU number below CPU_SETSIZE; advances *p past it. */
static int parse_cpu(const char **p, int *out)
{
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v >= CPU_SETSIZE)
            return -EINVAL;
        s++;
    }
    *p = s;
    *out = (int)v;
    return 0;
}

int sg_cpus_parse(const char *s, cpu_set_t *out)
{
    CPU_ZERO(out);
    if (s == NULL || *s == '\0')
        return -EINVAL;
    for (;;) {
        int a, b;
        if (parse_cpu(&s, &a) < 0)
            return -EINVAL;
        b = a;
        if (*s == '-') {
            s++;
            if (parse_cpu(&s, &b) < 0 || b < a)
                return -EINVAL;
        }
        for (int c = a; c <= b; c++)
            CPU_SET(c, out);
        if (*s == '\0')
            return 0;
        if (*s != ',')
            return -EINVAL;
        s++;
    }
}

const char *sg_cpus_format(const cpu_set_t *set, char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
            e++;
        int n = e == c ? snprintf(buf + len, cap - len, "%s%d", len ? "," : "", c)
                       : snprintf(buf + len, cap - len, "%s%d-%d", len ? "," : "", c, e);
        if (n < 0 || (size_t)n >= cap - len) {
            buf[len] = '\0'; /* what fits, whole items only */
            return buf;
        }
        len += (size_t)n;
        c = e;
    }
    return buf;
}

int sg_cpus_nth(const cpu_set_t *set, int n)
{
    int count = CPU_COUNT(set);
    if (count == 0 || n < 0)
        return -1;
    n %= count;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, set) && n-- == 0)
            return c;
    return -1;
}

int sg_cpus_outside(const cpu_set_t *want, const cpu_set_t *allowed, int *cpu)
{
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, want) && !CPU_ISSET(c, allowed)) {
            *cpu = c;
            return -EINVAL;
        }
    return 0;
}
