/* Per-core counters and their Prometheus text rendering. Each core writes only its own
 * block (single writer: a relaxed load and store, no read-modify-write atomics); any core
 * rendering /metrics reads the others with relaxed atomic loads, so there is no data race
 * and no cross-core cache-line bouncing on the hot path. */
#ifndef URINGWS_NET_METRICS_H
#define URINGWS_NET_METRICS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* HTTP statuses counted as handshake errors. */
enum ws_hs_err {
    WS_HS_400,
    WS_HS_404,
    WS_HS_405,
    WS_HS_408, /* handshake timeout: no response, the socket is just closed */
    WS_HS_426,
    WS_HS_431,
    WS_HS_503,
    WS_HS_OTHER,
    WS_HS_N,
};

#define WS_CLOSE_CODES 16 /* close frames sent, by code 1000..1015 */

typedef struct ws_metrics {
    alignas(64) _Atomic uint64_t conns_current; /* connections counted against max_conns */
    _Atomic uint64_t conns_accepted;            /* sockets accepted, total */
    _Atomic uint64_t conns_upgraded;            /* WebSocket handshakes completed */
    _Atomic uint64_t http_requests;             /* plain HTTP requests answered */
    _Atomic uint64_t rooms;                     /* rooms homed here with members anywhere */
    _Atomic uint64_t msgs_in;                   /* data messages received */
    _Atomic uint64_t msgs_out;                  /* data frames queued to recipients */
    _Atomic uint64_t bytes_in;                  /* bytes received */
    _Atomic uint64_t bytes_out;                 /* bytes sent */
    _Atomic uint64_t frames_built;              /* broadcast blocks built */
    _Atomic uint64_t sends;                     /* send/sendmsg SQEs submitted */
    _Atomic uint64_t slow_closes;               /* slow-consumer closes (1008) */
    _Atomic uint64_t queue_bytes;               /* bytes waiting in send queues */
    _Atomic uint64_t enobufs;                   /* recv ENOBUFS (buffer ring empty) */
    _Atomic uint64_t recv_bufs;                 /* provided buffers in the ring */
    _Atomic uint64_t xevents;                   /* cross-core events received */
    _Atomic uint64_t xwakes;                    /* MSG_RING wakeups sent */
    _Atomic uint64_t hs_errors[WS_HS_N];
    _Atomic uint64_t closes_sent[WS_CLOSE_CODES];
} ws_metrics_t;

static inline void ws_metric_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void ws_metric_sub(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - v,
                          memory_order_relaxed);
}

static inline void ws_metric_inc(_Atomic uint64_t *c)
{
    ws_metric_add(c, 1);
}

enum ws_hs_err ws_metrics_hs_index(int status);
void ws_metrics_close_sent(ws_metrics_t *m, unsigned code);

/* Renders the Prometheus text exposition of n cores' metrics (per core with label core="i",
 * and totals) into a malloc'd buffer. Returns its length with *out set, or -ENOMEM. */
long ws_metrics_render(const ws_metrics_t *per_core, unsigned n, char **out);

#endif
