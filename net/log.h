/* Logging: one line per event, levels from uringws/server.h, written with one write(2) so
 * lines from different cores never interleave. Safe from any thread; not from signal
 * handlers. */
#ifndef URINGWS_NET_LOG_H
#define URINGWS_NET_LOG_H

#include "uringws/server.h"

/* The level is set once before the workers start and only read afterwards. */
extern int ws_log_level;

void ws_log_set_level(int level);
/* Tags this thread's lines with "core N" (-1: no tag, the main thread). */
void ws_log_set_core(int core);

void ws__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ws_log(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= ws_log_level)                                                               \
            ws__log((level), __VA_ARGS__);                                                         \
    } while (0)

#define ws_log_error(...)   ws_log(WS_LOG_ERROR, __VA_ARGS__)
#define ws_log_warn(...)    ws_log(WS_LOG_WARN, __VA_ARGS__)
#define ws_log_info(...)    ws_log(WS_LOG_INFO, __VA_ARGS__)
#define ws_log_verbose(...) ws_log(WS_LOG_VERBOSE, __VA_ARGS__)
#define ws_log_debug(...)   ws_log(WS_LOG_DEBUG, __VA_ARGS__)

#endif
