/* cpus.h: CPU lists ("0-3,6") for placing threads: the workers on some CPUs, the kube threads on others. */
#ifndef SG_CPUS_H
#define SG_CPUS_H

#include <sched.h>
#include <stddef.h>

/* Parses a CPU list: comma-separated CPU numbers and inclusive ranges, "0", "0-3", "0,2-3". No spaces, no empty item,
 * no descending range, every CPU below CPU_SETSIZE. Returns 0 (out holds the set, never empty) or -EINVAL. */
int sg_cpus_parse(const char *s, cpu_set_t *out);

/* Writes set as a CPU list (ranges merged) into buf, always NUL-terminated. Returns buf. */
const char *sg_cpus_format(const cpu_set_t *set, char *buf, size_t cap);

/* The n-th CPU of set (n counts from 0 and wraps around the set's size), or -1 for an empty set. */
int sg_cpus_nth(const cpu_set_t *set, int n);

/* 0 if every CPU of want is in allowed; else the first one that is not. */
int sg_cpus_outside(const cpu_set_t *want, const cpu_set_t *allowed, int *cpu);

#endif
