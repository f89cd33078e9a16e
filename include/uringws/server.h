/* The uringws server: configuration with every limit as a named field, and the calls that
 * start, stop and wait for the io_uring engine (net/). The engine runs one thread per core,
 * each with its own ring, listener and connections; this header hides all of that. */
#ifndef URINGWS_SERVER_H
#define URINGWS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WS_BIND_MAX 64 /* bytes of the bind address literal, NUL included */

/* Log levels for ws_server_config_t.log_level (and net/log.h). */
enum ws_log_level {
    WS_LOG_ERROR = 0,   /* always printed unless the level is below 0 */
    WS_LOG_WARN = 1,    /* degraded features, resource trouble */
    WS_LOG_INFO = 2,    /* start-up: features found, listening address; the default */
    WS_LOG_VERBOSE = 3, /* -v: one line per rejection, protocol close, slow consumer */
    WS_LOG_DEBUG = 4,   /* -vv: connection life cycle */
};

/* Every limit the server enforces. ws_server_config_defaults() fills in the documented
 * defaults; a field left 0 where "0 = default" is said also takes the default. */
typedef struct ws_server_config {
    /* Threads. */
    unsigned cores; /* worker threads, one io_uring each. Default 0: online CPUs */
    bool pin;       /* pin worker i to CPU i (modulo online CPUs). Default false */

    /* Listening. */
    char bind_addr[WS_BIND_MAX]; /* IPv4 or IPv6 literal; "" = all addresses: [::] dual
                                    stack (IPV6_V6ONLY=0), or 0.0.0.0 without IPv6.
                                    Default "" */
    uint16_t port;               /* TCP port; 0 lets the kernel pick (see ws_server_port).
                                    Default 8080 */
    int backlog;                 /* listen() backlog per core. Default 4096 */

    /* Connections. */
    uint32_t max_conns;        /* open connections, all cores together; a new one past it
                                  gets `503` and is closed. Default 10000 */
    uint64_t max_message;      /* bytes of one assembled message; over it: close 1009.
                                  Default 16 MiB (WS_MAX_MESSAGE_DEFAULT) */
    uint64_t max_queue;        /* bytes queued for sending on one connection; over it the
                                  connection is closed with 1008. Default 4 MiB */
    uint32_t max_queue_frames; /* frames queued on one connection; over it: 1008 as above.
                                  Default 65536 */
    uint32_t max_header_bytes; /* HTTP request head; over it: 431. Default 8 KiB */
    uint32_t max_headers;      /* HTTP header lines; over it: 431. Default 64 */

    /* Time limits, in milliseconds. */
    uint32_t handshake_timeout_ms; /* accept to complete request head. Default 10 s */
    uint32_t ping_interval_ms;     /* a ping to every open connection this often; 0 = never.
                                      Default 30 s */
    uint32_t idle_timeout_ms;      /* close (1001) a connection silent this long; 0 = never.
                                      Default 120 s */
    uint32_t close_timeout_ms;     /* after the server's close frame or a final HTTP
                                      response: wait this long for the peer, then drop the
                                      socket. Default 5 s */
    uint32_t shutdown_timeout_ms;  /* on stop: after sending 1001 to everyone, wait this long
                                      for the close handshakes. Default 5 s */
    uint32_t tick_ms;              /* period of the per-core timer tick that checks all the
                                      deadlines above (their resolution). Default 250 ms */

    /* Rings and buffers (per core). */
    uint32_t sq_entries;     /* submission queue entries. Default 4096 */
    uint32_t cq_entries;     /* completion queue entries (multishot ops post many CQEs per
                                SQE). Default 65536 */
    uint32_t recv_buf_size;  /* bytes of one provided receive buffer. Default 4 KiB */
    uint32_t recv_bufs;      /* provided buffers at start. Default 1024 */
    uint32_t recv_bufs_max;  /* the buffer ring grows on ENOBUFS up to this many (at most
                                32768). Default 16384 */
    uint32_t send_max_iov;   /* queued frames gathered into one sendmsg. Default 64 */
    uint32_t send_max_bytes; /* bytes gathered into one sendmsg (a single larger frame is
                                still sent whole). Default 1 MiB */

    /* Engine switches. */
    bool use_direct_fds; /* accept into io_uring's fixed-file table when the kernel can;
                            false keeps regular fds (needed for setsockopt-based features
                            such as kTLS). Default true */

    int log_level; /* enum ws_log_level. Default WS_LOG_INFO */
} ws_server_config_t;

/* Fills cfg with the defaults documented above. */
void ws_server_config_defaults(ws_server_config_t *cfg);

/* Checks the values for consistency (ranges, bind address syntax). Returns 0, or -EINVAL
 * with a one-line reason in err (NUL-terminated) when err is not NULL. */
int ws_server_config_check(const ws_server_config_t *cfg, char *err, size_t errlen);

typedef struct ws_server ws_server_t;

/* Probes the kernel, logs the io_uring features found, binds the listeners and starts the
 * worker threads. Returns 0 with *out set, or -errno (after logging why): -ENOSYS when the
 * kernel is older than 5.19 or has no usable io_uring, -EADDRINUSE etc. from bind. Signals
 * are not touched; the calling thread keeps its mask (workers block SIGPIPE). */
int ws_server_start(const ws_server_config_t *cfg, ws_server_t **out) WS_WARN_UNUSED;

/* The TCP port the listeners are bound to (useful when cfg->port was 0). */
uint16_t ws_server_port(const ws_server_t *srv);

/* Asks every core to shut down: stop accepting, send close 1001 to every connection, wait
 * up to shutdown_timeout_ms for the close handshakes, then drop what is left. Returns at
 * once; call ws_server_wait to join. Thread-safe, idempotent and async-signal-safe (it only
 * writes to eventfds); not after ws_server_wait has returned. */
void ws_server_stop(ws_server_t *srv);

/* Joins the workers, frees every resource and srv itself. Returns 0, or the first error a
 * worker stopped with (-errno). */
int ws_server_wait(ws_server_t *srv);

/* Runs a server until SIGINT or SIGTERM: blocks those signals (and SIGPIPE) in the calling
 * thread before starting, so every worker inherits the mask, waits with sigwait, then stops
 * and waits. Returns 0 on a clean shutdown, or -errno when the server could not start. */
int ws_server_run(const ws_server_config_t *cfg);

#ifdef __cplusplus
}
#endif

#endif
