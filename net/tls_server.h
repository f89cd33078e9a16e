/* The server-level TLS (net/tls_server.c): context, kTLS policy, /metrics facts. Built only
 * with WITH_TLS; without it these are no-ops (no TLS listener exists). */
#ifndef URINGWS_NET_TLS_SERVER_H
#define URINGWS_NET_TLS_SERVER_H

#include "metrics.h"

struct ws_server;

#ifdef WS_WITH_TLS

/* Server start: creates the TLS context from the configuration and decides the kTLS policy
 * (probe, log line). Returns 0, -ENOKEY (certificate or key unusable; one error line
 * logged), -EOPNOTSUPP (kTLS required but unavailable), -ENOMEM. */
int ws_tls_server_init(struct ws_server *srv);
void ws_tls_server_free(struct ws_server *srv);
/* The server-wide TLS facts /metrics shows (kTLS mode and probe, error category names). */
void ws_tls_server_metrics_info(const struct ws_server *srv, ws_metrics_tls_t *out);

#else

static inline int ws_tls_server_init(struct ws_server *srv)
{
    (void)srv;
    return 0;
}
static inline void ws_tls_server_free(struct ws_server *srv)
{
    (void)srv;
}
static inline void ws_tls_server_metrics_info(const struct ws_server *srv, ws_metrics_tls_t *out)
{
    (void)srv;
    (void)out;
}

#endif

#endif
