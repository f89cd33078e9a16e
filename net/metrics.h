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

#include "uringws/jwt.h"

/* HTTP statuses counted as handshake errors. */
enum ws_hs_err {
    WS_HS_400,
    WS_HS_401, /* a token missing or invalid on the upgrade */
    WS_HS_403, /* Origin not in --origin */
    WS_HS_404,
    WS_HS_405,
    WS_HS_408, /* handshake timeout: no response, the socket is just closed */
    WS_HS_426,
    WS_HS_429, /* past --max-conns-per-ip */
    WS_HS_413, /* a body over --max-message */
    WS_HS_431,
    WS_HS_501, /* a chunked (Transfer-Encoding) body */
    WS_HS_503,
    WS_HS_OTHER,
    WS_HS_N,
};

/* Token refusals by reason: the ws_jwt_refusal values (uringws/jwt.h; slot 0 unused), then
 * these two of the upgrade's own. */
enum ws_token_refusal {
    WS_TOKEN_MISSING = WS_JWT_REFUSAL_COUNT, /* --require-token and no ?token= */
    WS_TOKEN_ROOM,                           /* the room is not in the `rooms` claim (403) */
    WS_TOKEN_REFUSALS,
};
const char *ws_metrics_token_refusal_name(unsigned r);

/* Where a published message came from. */
enum ws_pub_source {
    WS_PUB_CLIENT, /* a member's WebSocket message */
    WS_PUB_API,    /* POST /api/publish... */
    WS_PUB_N,
};

/* API requests by route and by status (net/api.c). */
enum ws_api_route {
    WS_API_PUBLISH,    /* POST /api/publish/<room> */
    WS_API_BATCH,      /* POST /api/publish */
    WS_API_ROOMS,      /* GET /api/rooms */
    WS_API_ROOM,       /* GET /api/rooms/<room> */
    WS_API_DISCONNECT, /* POST /api/disconnect */
    WS_API_UNKNOWN,    /* any other /api/ path */
    WS_API_ROUTE_N,
};
enum ws_api_status {
    WS_API_200,
    WS_API_400,
    WS_API_401,
    WS_API_404,
    WS_API_405,
    WS_API_411,
    WS_API_413,
    WS_API_503,
    WS_API_STATUS_OTHER,
    WS_API_STATUS_N,
};
enum ws_api_status ws_metrics_api_index(int status);

#define WS_CLOSE_CODES 16 /* close frames sent, by code 1000..1015 */

/* Transports a connection can be on (gauges by transport). */
enum ws_transport {
    WS_TRANSPORT_PLAIN, /* ws:// */
    WS_TRANSPORT_TLS,   /* wss://, TLS in userspace (BoringSSL) */
    WS_TRANSPORT_KTLS,  /* wss://, TX (and maybe RX) handed to kernel TLS */
    WS_TRANSPORT_N,
};

/* TLS error slots, indexed by ws_tls_err_t (uringws/tls.h; net/conn_tls.c checks that they
 * fit), plus handshake timeouts, which are the engine's to count. */
#define WS_TLS_ERR_SLOTS      16
#define WS_TLS_ERR_HS_TIMEOUT (WS_TLS_ERR_SLOTS - 1)

/* Negotiated TLS version x cipher family, for the handshakes counter. */
enum { WS_TLS_VER_N = 2 };
enum ws_tls_cipher_family {
    WS_TLS_AES128GCM,
    WS_TLS_AES256GCM,
    WS_TLS_CHACHA20,
    WS_TLS_CIPHER_OTHER,
    WS_TLS_CIPHER_N,
};

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
    _Atomic uint64_t queue_over;                /* send queues that went over the limits */
    _Atomic uint64_t slow_drop_frames;          /* frames dropped by --slow-policy drop-oldest */
    _Atomic uint64_t slow_drop_bytes;           /* their bytes */
    _Atomic uint64_t ip_rejects;                /* 429: past --max-conns-per-ip */
    _Atomic uint64_t origin_rejects;            /* 403: Origin not allowed */
    _Atomic uint64_t room_rejects;              /* 503: past --max-rooms */
    _Atomic uint64_t conn_rejects;              /* 503: past --max-conns */
    _Atomic uint64_t pending_evictions;         /* head-phase connections evicted (max_pending) */
    _Atomic uint64_t head_timeouts;             /* closed at the request-head deadline */
    _Atomic uint64_t first_frame_timeouts;      /* closed (1008): no frame after the 101 */
    _Atomic uint64_t write_stalls;              /* dropped: sends made no progress */
    _Atomic uint64_t queue_bytes;               /* bytes waiting in send queues */
    _Atomic uint64_t enobufs;                   /* recv ENOBUFS (buffer ring empty) */
    _Atomic uint64_t recv_bufs;                 /* provided buffers in the ring */
    _Atomic uint64_t xevents;                   /* cross-core events received */
    _Atomic uint64_t xwakes;                    /* MSG_RING wakeups sent */
    _Atomic uint64_t hs_errors[WS_HS_N];
    _Atomic uint64_t token_refusals[WS_TOKEN_REFUSALS]; /* upgrades refused, by reason */
    _Atomic uint64_t token_expired;                     /* closed (1008) at exp */
    _Atomic uint64_t publish_refused;                   /* closed (1008): may not write */
    _Atomic uint64_t publishes[WS_PUB_N];               /* messages published, by source */
    _Atomic uint64_t api_requests[WS_API_ROUTE_N][WS_API_STATUS_N]; /* answered, by route, status */
    _Atomic uint64_t bp_up;         /* this core's backplane connections are up (gauge, 0/1) */
    _Atomic uint64_t bp_in;         /* messages received from Redis */
    _Atomic uint64_t bp_out;        /* messages published to Redis */
    _Atomic uint64_t bp_subs;       /* channels subscribed (gauge) */
    _Atomic uint64_t bp_reconnects; /* backplane connections lost */
    _Atomic uint64_t bp_gaps;       /* rooms that may have missed messages */
    _Atomic uint64_t bp_dropped;    /* publishes dropped: backplane down, refused, no memory */
    _Atomic uint64_t bp_rtt_us;     /* publish round trips to Redis, summed */
    _Atomic uint64_t bp_rtt_count;
    _Atomic uint64_t closes_sent[WS_CLOSE_CODES];
    _Atomic uint64_t conns_by_transport[WS_TRANSPORT_N];            /* live connections (gauge) */
    _Atomic uint64_t tls_handshakes[WS_TLS_VER_N][WS_TLS_CIPHER_N]; /* [0] 1.2, [1] 1.3 */
    _Atomic uint64_t tls_errors[WS_TLS_ERR_SLOTS];                  /* sessions failed, by cause */
    _Atomic uint64_t ktls_offloads[4];     /* hand-offs done, by directions (WS_TLS_TX|WS_TLS_RX) */
    _Atomic uint64_t ktls_refused;         /* hand-offs the kernel refused: stayed in userspace */
    _Atomic uint64_t ktls_tx_ref_bytes;    /* kTLS sends: bytes straight from queued blocks */
    _Atomic uint64_t ktls_tx_copied_bytes; /* kTLS sends: bytes copied into the cork first */
} ws_metrics_t;

/* Server-wide TLS facts for /metrics (NULL when the server has no TLS listener). */
typedef struct ws_metrics_tls {
    const char *ktls_mode; /* "auto", "off", "require", "try" */
    int ktls_probe;        /* 0 when the kernel took TCP_ULP "tls", else -errno; 1 = not probed */
    const char *const *err_names; /* [WS_TLS_ERR_SLOTS] labels; NULL entries are not shown */
} ws_metrics_tls_t;

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
/* The same, plus the TLS families (connections by transport, handshakes by version and
 * cipher, TLS errors by cause, kTLS probe and hand-offs) when tls is not NULL. */
long ws_metrics_render_tls(const ws_metrics_t *per_core, unsigned n, const ws_metrics_tls_t *tls,
                           char **out);

#endif
