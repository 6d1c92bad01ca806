/* log.c: error log lines to stderr; access log lines through a pipe to a logger thread. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

size_t sg_log_time(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return k > 0 ? n + (size_t)k : n;
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char line[1024];
    size_t n = sg_log_time(line, sizeof(line));
    int k = snprintf(line + n, sizeof(line) - n, " ssegate %s: ", level);
    if (k > 0)
        n += (size_t)k;
    if (n < sizeof(line)) {
        k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        if (k > 0)
            n = SG_MIN(n + (size_t)k, sizeof(line) - 2);
    }
    line[n++] = '\n';
    /* One write per line so lines from several threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void sg_log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("error", fmt, ap);
    va_end(ap);
}

void sg_log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("info", fmt, ap);
    va_end(ap);
}

static void *logger_main(void *arg)
{
    sg_accesslog_t *al = arg;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(al->pipe_r, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(al->out_fd, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                break; /* destination gone: drop */
            }
            off += w;
        }
    }
    return NULL;
}

int sg_accesslog_open(sg_accesslog_t *al, const char *dest)
{
    int p[2];
    memset(al, 0, sizeof(*al));
    al->pipe_r = al->pipe_w = al->out_fd = -1;
    if (strcmp(dest, "-") == 0) {
        al->out_fd = STDOUT_FILENO;
    } else {
        al->out_fd = open(dest, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (al->out_fd < 0)
            return -errno;
        al->own_out = true;
    }
    if (pipe2(p, O_CLOEXEC) < 0) {
        int err = -errno;
        if (al->own_out)
            close(al->out_fd);
        return err;
    }
    al->pipe_r = p[0];
    al->pipe_w = p[1];
    /* Only the write end is non-blocking: a worker never waits; the logger thread does. */
    if (fcntl(al->pipe_w, F_SETFL, O_NONBLOCK) < 0)
        goto fail;
    (void)fcntl(al->pipe_w, F_SETPIPE_SZ, 1 << 20); /* best effort: a deeper pipe drops fewer lines */
    if (pthread_create(&al->thread, NULL, logger_main, al) != 0) {
        errno = EAGAIN;
        goto fail;
    }
    al->running = true;
    return 0;
fail:;
    int err = -errno;
    close(al->pipe_r);
    close(al->pipe_w);
    if (al->own_out)
        close(al->out_fd);
    return err;
}

void sg_accesslog_close(sg_accesslog_t *al)
{
    if (!al->running)
        return;
    close(al->pipe_w);
    pthread_join(al->thread, NULL);
    close(al->pipe_r);
    if (al->own_out)
        close(al->out_fd);
    al->running = false;
}

int sg_accesslog_write(int fd, const char *line, size_t n)
{
    if (fd < 0)
        return 0;
    if (n > PIPE_BUF)
        n = PIPE_BUF;
    ssize_t w = write(fd, line, n);
    if (w < 0)
        return errno == EAGAIN ? SG_EAGAIN : -errno;
    return 0;
}
