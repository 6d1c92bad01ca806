/* log.h: the error log (stderr) and the access log (a pipe drained by a logger thread, so a slow log
 * destination never blocks a worker). */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <pthread.h>

#include "core/sg.h"

void sg_log_error(const char *fmt, ...) SG_PRINTF(1, 2);
void sg_log_info(const char *fmt, ...) SG_PRINTF(1, 2);

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
