/* Logging: formats the whole line (UTC timestamp, core tag, level, message) into a stack
 * buffer and writes it with one write(2) to stderr, so concurrent cores never interleave
 * partial lines and no lock is taken. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int ws_log_level = WS_LOG_INFO;
static _Thread_local int log_core = -1;

void ws_log_set_level(int level)
{
    ws_log_level = level;
}

void ws_log_set_core(int core)
{
    log_core = core;
}

static const char *level_name(int level)
{
    switch (level) {
    case WS_LOG_ERROR:
        return "error";
    case WS_LOG_WARN:
        return "warn";
    case WS_LOG_INFO:
        return "info";
    case WS_LOG_VERBOSE:
        return "verbose";
    default:
        return "debug";
    }
}

void ws__log(int level, const char *fmt, ...)
{
    int saved_errno = errno;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    int k;
    if (log_core >= 0)
        k = snprintf(line + n, sizeof(line) - n,
                     ".%03ldZ uringws[core %d] %s: ", ts.tv_nsec / 1000000, log_core,
                     level_name(level));
    else
        k = snprintf(line + n, sizeof(line) - n, ".%03ldZ uringws %s: ", ts.tv_nsec / 1000000,
                     level_name(level));
    if (k > 0)
        n += (size_t)k;
    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2; /* truncated: keep the newline */
    line[n++] = '\n';
    for (size_t off = 0; off < n;) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    errno = saved_errno;
}
