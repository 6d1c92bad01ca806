/* thread.h: naming a background thread and lowering its priority below the workers'. */
#ifndef SG_THREAD_H
#define SG_THREAD_H
#include <errno.h>
#include <pthread.h>
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

#endif
