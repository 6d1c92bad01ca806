/* proc.h: what the load generators read from /proc about the processes they measure and the machine (a header of
 * static functions: each bench program is one .c file). */
#ifndef SG_BENCH_PROC_H
#define SG_BENCH_PROC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* VmRSS of a process in KiB, or -1. */
static inline long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* rss_kib summed over n processes (0 for none), or -1 when one cannot be read. */
static inline long rss_sum(const pid_t *pids, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        long v = rss_kib(pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* utime + stime of a process (all its threads), in clock ticks, or -1. */
static inline long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* After ")": state(3) ppid(4) ... utime(14) stime(15). */
    long long ut = 0, st = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 14)
            ut = atoll(tok);
        if (field == 15) {
            st = atoll(tok);
            break;
        }
    }
    return ut + st;
}

/* cpu_ticks summed over n processes (0 for none), or -1 when one cannot be read. */
static inline long long cpu_sum(const pid_t *pids, int n)
{
    long long sum = 0;
    for (int i = 0; i < n; i++) {
        long long v = cpu_ticks(pids[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* Idle + iowait time of the whole machine (all CPUs), in clock ticks, or -1. The busy fields of /proc/stat are
 * sampled at ticks and miss short runs on a tickless kernel; the idle time is measured, so busy time is taken as
 * CPUs x elapsed - idle (and a closed loop that leaves the CPUs idle shows it). */
static inline long long machine_idle(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    long long v[5] = {0};
    int n = fscanf(f, "cpu %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4]);
    fclose(f);
    return n == 5 ? v[3] + v[4] : -1;
}

#endif
