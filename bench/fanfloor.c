/* fanfloor: the floor of the fan-out latency on this machine, with no gateway. One process (the writer) holds the
 * accepted side of N loopback TCP connections; a forked child (the reader) holds the connecting side. For each
 * event the writer takes a CLOCK_MONOTONIC stamp and then writes one chunk of --size bytes to every connection, from
 * --writers threads (each owns a slice of the connections); the reader's --readers threads (epoll, each with its
 * slice) read them and note when each event reached its last connection. Reported: the fan-out time of each event
 * (the last receipt - the stamp: what the fan-out benchmark measures, minus the gateway), the writers' own time (the
 * stamp to the last write() returned), p50 / p90 / max over the events.
 * Bounded: at most --events events (<= 1000), each waits at most 10 s for its last receipt.
 * Usage: fanfloor [--conns N] [--writers 1|2] [--readers 1|2] [--events K] [--size B] [--gap-ms G] [--nodelay 0|1]
 *                 [--pin 0|1]   (pin: writer thread i and reader thread i to CPU i % ncpu) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 1000
#define MAX_THREADS 2
#define MAX_SIZE 4096

typedef struct shared {
    _Atomic int phase;                   /* 1: reader connected everything; 2: writer accepted all; 3: stop */
    _Atomic int failed;
    uint64_t stamp[MAX_EVENTS];          /* writer: before the first write of the event */
    uint64_t wrote[MAX_EVENTS];          /* writer: after the last write() returned */
    _Atomic uint64_t last[MAX_EVENTS];   /* reader: latest receipt of the event's last byte on any connection */
    _Atomic int got[MAX_EVENTS];         /* reader: connections that have the whole event */
} shared_t;

typedef struct opts {
    int conns, writers, readers, events, size, gap_ms, nodelay, pin;
} opts_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin_to(int i)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(i % (n > 0 ? n : 1)), &set);
    sched_setaffinity(0, sizeof(set), &set);
}

/* ---- reader (child process) ---- */

typedef struct rthread {
    const opts_t *o;
    shared_t *sh;
    int *fds;
    int n, idx;
    uint32_t *bytes;                     /* per connection: bytes received */
} rthread_t;

static void *reader_main(void *arg)
{
    rthread_t *t = arg;
    const opts_t *o = t->o;
    if (o->pin)
        pin_to(t->idx);
    int ep = epoll_create1(0);
    if (ep < 0) {
        atomic_store(&t->sh->failed, 1);
        return NULL;
    }
    for (int i = 0; i < t->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, t->fds[i], &ev) < 0) {
            atomic_store(&t->sh->failed, 1);
            close(ep);
            return NULL;
        }
    }
    struct epoll_event evs[512];
    char buf[MAX_SIZE * 4];
    uint64_t total = (uint64_t)o->events * (uint64_t)o->size * (uint64_t)t->n, seen = 0;
    while (seen < total && atomic_load(&t->sh->phase) != 3) {
        int k = epoll_wait(ep, evs, 512, 200);
        for (int j = 0; j < k; j++) {
            uint32_t i = evs[j].data.u32;
            ssize_t r = read(t->fds[i], buf, sizeof(buf));
            if (r <= 0)
                continue;
            uint64_t at = now_ns();
            uint32_t before = t->bytes[i];
            t->bytes[i] += (uint32_t)r;
            seen += (uint64_t)r;
            /* every event completed by this read */
            for (uint32_t e = before / (uint32_t)o->size; e < t->bytes[i] / (uint32_t)o->size; e++) {
                if (e >= (uint32_t)o->events)
                    break;
                uint64_t cur = atomic_load(&t->sh->last[e]);
                while (cur < at && !atomic_compare_exchange_weak(&t->sh->last[e], &cur, at))
                    ;
                atomic_fetch_add(&t->sh->got[e], 1);
            }
        }
    }
    close(ep);
    return NULL;
}

static int reader(const opts_t *o, shared_t *sh, int port)
{
    int *fds = calloc((size_t)o->conns, sizeof(int));
    uint32_t *bytes = calloc((size_t)o->conns, sizeof(uint32_t));
    if (fds == NULL || bytes == NULL)
        return 1;
    for (int i = 0; i < o->conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            perror("fanfloor: socket");
            return 1;
        }
        /* Source addresses spread over 127.0.0.2-201. */
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % 200))};
        struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
            connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
            perror("fanfloor: connect");
            return 1;
        }
        fds[i] = fd;
    }
    atomic_store(&sh->phase, 1);
    for (int w = 0; w < 1000 && atomic_load(&sh->phase) < 2; w++)
        usleep(10000);
    rthread_t t[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int per = o->conns / o->readers;
    for (int r = 0; r < o->readers; r++) {
        int from = r * per, to = r == o->readers - 1 ? o->conns : from + per;
        t[r] = (rthread_t){.o = o, .sh = sh, .fds = fds + from, .n = to - from, .idx = r, .bytes = bytes + from};
        if (pthread_create(&th[r], NULL, reader_main, &t[r]) != 0)
            return 1;
    }
    for (int r = 0; r < o->readers; r++)
        pthread_join(th[r], NULL);
    for (int i = 0; i < o->conns; i++)
        close(fds[i]);
    free(fds);
    free(bytes);
    return 0;
}

/* ---- writer (parent) ---- */

typedef struct wthread {
    const opts_t *o;
    shared_t *sh;
    int *fds;
    int n, idx;
    const char *chunk;
    pthread_barrier_t *start, *end;
    _Atomic int *event;                  /* the event to write; -1: exit */
    uint64_t done_at;                    /* when this thread's last write() returned */
} wthread_t;

static void *writer_main(void *arg)
{
    wthread_t *t = arg;
    if (t->o->pin)
        pin_to(t->idx);
    for (;;) {
        pthread_barrier_wait(t->start);
        if (atomic_load(t->event) < 0)
            return NULL;
        for (int i = 0; i < t->n; i++) {
            size_t off = 0;
            while (off < (size_t)t->o->size) {
                ssize_t w = write(t->fds[i], t->chunk + off, (size_t)t->o->size - off);
                if (w > 0)
                    off += (size_t)w;
                else if (w < 0 && errno != EINTR) {
                    atomic_store(&t->sh->failed, 1);
                    break;
                }
            }
        }
        t->done_at = now_ns();
        pthread_barrier_wait(t->end);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

static int parse(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.conns = 10000, .writers = 1, .readers = 1, .events = 30, .size = 100, .gap_ms = 100, .nodelay = 1};
    for (int i = 1; i < argc; i++) {
        int *dst = NULL;
        if (strcmp(argv[i], "--conns") == 0)
            dst = &o->conns;
        else if (strcmp(argv[i], "--writers") == 0)
            dst = &o->writers;
        else if (strcmp(argv[i], "--readers") == 0)
            dst = &o->readers;
        else if (strcmp(argv[i], "--events") == 0)
            dst = &o->events;
        else if (strcmp(argv[i], "--size") == 0)
            dst = &o->size;
        else if (strcmp(argv[i], "--gap-ms") == 0)
            dst = &o->gap_ms;
        else if (strcmp(argv[i], "--nodelay") == 0)
            dst = &o->nodelay;
        else if (strcmp(argv[i], "--pin") == 0)
            dst = &o->pin;
        if (dst == NULL || i + 1 >= argc)
            return -1;
        *dst = atoi(argv[++i]);
    }
    if (o->conns < 1 || o->conns > 19000 || o->writers < 1 || o->writers > MAX_THREADS || o->readers < 1 ||
        o->readers > MAX_THREADS || o->events < 1 || o->events > MAX_EVENTS || o->size < 1 || o->size > MAX_SIZE ||
        o->gap_ms < 0 || o->gap_ms > 10000)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse(argc, argv, &o) < 0) {
        fprintf(stderr, "usage: fanfloor [--conns N<=19000] [--writers 1|2] [--readers 1|2] [--events K<=1000] "
                        "[--size B<=4096] [--gap-ms G] [--nodelay 0|1] [--pin 0|1]\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.conns + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    shared_t *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    memset(sh, 0, sizeof(*sh));
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
        perror("fanfloor: listen");
        return 1;
    }
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        close(lfd);
        _exit(reader(&o, sh, ntohs(a.sin_port)));
    }
    int *fds = calloc((size_t)o.conns, sizeof(int));
    if (fds == NULL)
        return 1;
    for (int i = 0; i < o.conns; i++) {
        fds[i] = accept(lfd, NULL, NULL);
        if (fds[i] < 0) {
            perror("fanfloor: accept");
            kill(child, SIGKILL);
            return 1;
        }
        int one = 1;
        if (o.nodelay)
            setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    close(lfd);
    for (int w = 0; w < 1000 && atomic_load(&sh->phase) < 1; w++)
        usleep(10000);
    atomic_store(&sh->phase, 2);
    usleep(500000); /* the reader's threads are in epoll_wait */

    char chunk[MAX_SIZE];
    memset(chunk, 'x', sizeof(chunk));
    chunk[o.size - 1] = '\n';
    pthread_barrier_t start, end;
    pthread_barrier_init(&start, NULL, (unsigned)o.writers + 1);
    pthread_barrier_init(&end, NULL, (unsigned)o.writers + 1);
    _Atomic int event = 0;
    wthread_t t[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int per = o.conns / o.writers;
    for (int w = 0; w < o.writers; w++) {
        int from = w * per, to = w == o.writers - 1 ? o.conns : from + per;
        t[w] = (wthread_t){.o = &o, .sh = sh, .fds = fds + from, .n = to - from, .idx = w, .chunk = chunk,
                           .start = &start, .end = &end, .event = &event};
        if (pthread_create(&th[w], NULL, writer_main, &t[w]) != 0)
            return 1;
    }
    int done = 0;
    for (int e = 0; e < o.events && !atomic_load(&sh->failed); e++) {
        atomic_store(&event, e);
        sh->stamp[e] = now_ns();
        pthread_barrier_wait(&start);
        pthread_barrier_wait(&end);
        uint64_t last = 0;
        for (int w = 0; w < o.writers; w++)
            last = t[w].done_at > last ? t[w].done_at : last;
        sh->wrote[e] = last;
        uint64_t deadline = now_ns() + 10000000000u;
        while (atomic_load(&sh->got[e]) < o.conns && now_ns() < deadline)
            usleep(200);
        if (atomic_load(&sh->got[e]) < o.conns) {
            fprintf(stderr, "fanfloor: event %d reached %d of %d connections in 10 s\n", e, atomic_load(&sh->got[e]),
                    o.conns);
            break;
        }
        done++;
        usleep((useconds_t)o.gap_ms * 1000);
    }
    atomic_store(&event, -1);
    pthread_barrier_wait(&start);
    for (int w = 0; w < o.writers; w++)
        pthread_join(th[w], NULL);
    atomic_store(&sh->phase, 3);
    for (int i = 0; i < o.conns; i++)
        close(fds[i]);
    int st = 0;
    waitpid(child, &st, 0);
    if (done == 0) {
        fprintf(stderr, "fanfloor: no event completed\n");
        return 1;
    }
    uint64_t fan[MAX_EVENTS], wr[MAX_EVENTS];
    for (int e = 0; e < done; e++) {
        fan[e] = atomic_load(&sh->last[e]) - sh->stamp[e];
        wr[e] = sh->wrote[e] - sh->stamp[e];
    }
    qsort(fan, (size_t)done, sizeof(fan[0]), cmp_u64);
    qsort(wr, (size_t)done, sizeof(wr[0]), cmp_u64);
    printf("RESULT conns=%d writers=%d readers=%d size=%d nodelay=%d pin=%d events=%d fanout_ms_p50=%.1f p90=%.1f "
           "max=%.1f write_ms_p50=%.1f p90=%.1f max=%.1f\n",
           o.conns, o.writers, o.readers, o.size, o.nodelay, o.pin, done, pct(fan, done, 0.5), pct(fan, done, 0.9),
           (double)fan[done - 1] / 1e6, pct(wr, done, 0.5), pct(wr, done, 0.9), (double)wr[done - 1] / 1e6);
    free(fds);
    return 0;
}
