/* The server object shared by the cores: configuration, the cores themselves, the
 * cross-core queues and the global connection count. Private to net/. */
#ifndef URINGWS_NET_SERVER_INTERNAL_H
#define URINGWS_NET_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "api_auth.h"
#include "keycount.h"
#include "redis.h"
#include "origins.h"
#include "metrics.h"
#include "probe.h"
#include "worker.h"
#include "uringws/jwt.h"
#include "uringws/server.h"
#include "xcore.h"

#define WS_CORES_MAX 1024 /* --cores */

struct ws_server {
    ws_server_config_t cfg;
    ws_features_t feat;
    unsigned ncores;
    uint16_t port;
    ws_worker_t *cores;    /* [ncores] */
    ws_metrics_t *metrics; /* [ncores], cache-line aligned */
    pthread_t *threads;
    unsigned nthreads;
    ws_xcore_t xcore;
    _Atomic uint32_t open_conns; /* counted connections, all cores (max_conns) */
    ws_keycount_t *ip_counts;    /* connections per peer address; NULL without max_conns_per_ip */
    ws_keycount_t *room_counts;  /* members per room name; NULL without max_rooms */
    ws_origins_t origins;        /* parsed cfg.origins; cfg.origins is non-NULL when it is on */
    ws_jwt_key_t *token_key;     /* --token-key; NULL: tokens are not looked at */
    char *token_issuer, *token_audience; /* copies cfg's point to */
    ws_api_keys_t *api_keys;             /* --api-key-file; NULL: the API is off */
    struct ws_backplane_conf *bp_conf;   /* --backplane; NULL: one node */
    char *bp_prefix;                     /* the copy cfg.backplane_prefix points to */
    _Atomic bool *bp_up;                 /* [ncores]: each core's backplane is up */
    _Atomic uint8_t *bp_slots;           /* Cluster: [ncores][WS_CLUSTER_SLOTS], 1 where that
                                            core has a master up for the slot */
    /* Start-up: every core sets up, then waits until all have (`go`); a failure anywhere
     * (start_err) stops them all before any loop runs. */
    pthread_mutex_t start_lock;
    pthread_cond_t start_cond;
    unsigned nready;
    bool go;
    _Atomic int start_err;
    /* wss (net/conn_tls.c): the context every TLS session shares, and the kTLS policy. */
    struct ws_tls_ctx *tls_ctx; /* NULL without TLS listeners */
    bool ktls_active;           /* attempt the kTLS hand-off after each TLS handshake */
    int ktls_probe;             /* 1 = not probed, 0 = the kernel has kTLS, else -errno */
    /* Stop: set once; each core then gets a write on its stop eventfd (async-signal-safe). */
    _Atomic bool stop_requested;
};

/* Whether connections accepted on listener `tls` get direct descriptors. TLS connections
 * need a regular fd only for the kTLS hand-off (a setsockopt on the socket); without it
 * they are direct like the rest (no fget/fput per send). */
static inline bool ws_worker_direct_for(const ws_worker_t *c, bool tls)
{
    return c->direct && (!tls || !c->srv->ktls_active);
}

#endif
