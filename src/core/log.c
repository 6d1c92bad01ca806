/* log.c: error log lines to stderr; access log lines through a pipe to a logger thread. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/escape.h"
#include "core/log.h"
#include "core/loop.h"

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

bool sg_ratelimit_take(sg_ratelimit_t *rl, uint64_t now_ms, uint64_t *suppressed)
{
    *suppressed = 0;
    uint64_t end = atomic_load_explicit(&rl->window_end_ms, memory_order_relaxed);
    if (now_ms >= end &&
        atomic_compare_exchange_strong_explicit(&rl->window_end_ms, &end, now_ms + SG_LOG_WINDOW_MS,
                                                memory_order_acq_rel, memory_order_relaxed)) {
        /* This thread opened the window: it writes the first line, with the count of the last window's losses.
         * Another thread may still count a line in the old window meanwhile; the burst is then off by one. */
        atomic_store_explicit(&rl->count, 1, memory_order_relaxed);
        *suppressed = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_acq_rel);
        return true;
    }
    /* Past the burst nothing is added to count, so it cannot wrap however long the flood lasts. */
    if (atomic_load_explicit(&rl->count, memory_order_relaxed) < SG_LOG_BURST &&
        atomic_fetch_add_explicit(&rl->count, 1, memory_order_relaxed) < SG_LOG_BURST)
        return true;
    atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
    return false;
}

void sg_log_write(sg_ratelimit_t *rl, const char *level, const char *fmt, ...)
{
    uint64_t suppressed = 0;
    if (rl != NULL && !sg_ratelimit_take(rl, sg_now_ms(), &suppressed))
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t mlen = SG_MIN((size_t)m, sizeof(msg) - 1);

    char line[1024];
    size_t n = sg_log_time(line, sizeof(line));
    int k = snprintf(line + n, sizeof(line) - n, " ssegate %s: ", level);
    if (k > 0)
        n = SG_MIN(n + (size_t)k, sizeof(line) - 1);
    /* Room is kept for the suppression note and the newline: the message is what gets cut. */
    n += sg_escape(line + n, sizeof(line) - 80 - n, msg, mlen, 0);
    if (suppressed > 0) {
        k = snprintf(line + n, sizeof(line) - n, " (%llu similar lines suppressed)", (unsigned long long)suppressed);
        if (k > 0)
            n = SG_MIN(n + (size_t)k, sizeof(line) - 2);
    }
    line[n++] = '\n';
    /* One write per line so lines from several threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
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
