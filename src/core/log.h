/* log.h: the error log (stderr) and the access log (a pipe drained by a logger thread, so a slow log
 * destination never blocks a worker). */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/sg.h"

/*
 * Every error-log line is rate-limited per call site: at most SG_LOG_BURST lines per SG_LOG_WINDOW_MS from
 * one sg_log_error/sg_log_info call; the first line after a window that held some back says how many. A
 * condition that repeats (a full fd table, a flood of bad peers) thus costs a bounded number of lines
 * whatever its rate, while distinct problems each still get their own lines.
 *
 * The state is a static atomic per call site (the macros below declare it), the one kind of process-wide
 * mutable state outside main.c: the limit must hold across threads (a per-worker limit would multiply with
 * --workers), it must be lock-free on the data path, and it holds no resource and steers nothing but
 * whether a line is written.
 */
#define SG_LOG_BURST 10
#define SG_LOG_WINDOW_MS 10000

typedef struct sg_ratelimit {
    _Atomic uint64_t window_end_ms; /* the current window ends then; 0: none yet */
    _Atomic uint32_t count;         /* lines taken in the current window */
    _Atomic uint64_t suppressed;    /* lines held back since the last one written */
} sg_ratelimit_t;

/* Whether a line may be written at now_ms. On true, *suppressed gets the number of lines held back before it
 * (to be reported with it); on false it is 0. Lock-free; any thread. */
bool sg_ratelimit_take(sg_ratelimit_t *rl, uint64_t now_ms, uint64_t *suppressed);

/* Writes one line "TIME ssegate LEVEL: MESSAGE" to stderr, subject to rl (NULL: never limited). The message
 * is escaped (escape.h): a value quoted in it cannot split the line or send terminal controls. */
void sg_log_write(sg_ratelimit_t *rl, const char *level, const char *fmt, ...) SG_PRINTF(3, 4);

#define sg_log_error(...)                                                                                         \
    do {                                                                                                          \
        static sg_ratelimit_t sg_log_rl_;                                                                         \
        sg_log_write(&sg_log_rl_, "error", __VA_ARGS__);                                                          \
    } while (0)
#define sg_log_info(...)                                                                                          \
    do {                                                                                                          \
        static sg_ratelimit_t sg_log_rl_;                                                                         \
        sg_log_write(&sg_log_rl_, "info", __VA_ARGS__);                                                           \
    } while (0)

typedef struct sg_accesslog {
    int pipe_r, pipe_w;   /* workers write lines to pipe_w (non-blocking) */
    int out_fd;           /* destination */
    bool own_out;
    pthread_t thread;
    bool running;
} sg_accesslog_t;

/* Opens the access log: dest is a path, "-" for stdout. Returns 0 or -errno. */
int sg_accesslog_open(sg_accesslog_t *al, const char *dest);
/* Stops the logger after draining what the workers wrote (call after the workers have exited). */
void sg_accesslog_close(sg_accesslog_t *al);
/* Writes one line (atomically, up to PIPE_BUF). Returns 0, or SG_EAGAIN when the pipe is full (dropped). */
int sg_accesslog_write(int fd, const char *line, size_t n);

/* Formats the current wall-clock time as RFC 3339 with ms ("2026-11-24T20:10:00.123Z"). */
size_t sg_log_time(char *out, size_t cap);

#endif
