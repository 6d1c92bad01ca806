/* thread.h: naming a background thread, lowering its priority below the workers', and placing it on CPUs. */
#ifndef SG_THREAD_H
#define SG_THREAD_H
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

/* Names the calling thread and sets its nice value. Linux: a thread's nice value is its own (PRIO_PROCESS with a
 * thread id); raising it needs no privilege. Returns 0 or -errno (the name is set either way). */
static inline int sg_thread_background(const char *name, int nice)
{
    pthread_setname_np(pthread_self(), name);
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice) != 0)
        return -errno;
    return 0;
}

/* Keeps the calling thread on the CPUs of set (NULL: leaves it where it is). Returns 0 or -errno. */
static inline int sg_thread_pin(const cpu_set_t *set)
{
    if (set == NULL)
        return 0;
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(*set), set);
    return rc == 0 ? 0 : -rc;
}

#endif
