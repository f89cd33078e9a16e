/* Connection deadlines (net/deadline.c). */
#ifndef URINGWS_NET_DEADLINE_H
#define URINGWS_NET_DEADLINE_H

#include <stdint.h>

#include "uringws/server.h"

struct ws_worker;
struct ws_conn;

/* How long a keep-alive connection may wait between requests: --idle-timeout, or the
 * request timeout when idle timeouts are off (a connection always has a deadline). */
static inline uint64_t ws_deadline_keepalive_ms(const ws_server_config_t *cfg)
{
    return cfg->idle_timeout_ms ? cfg->idle_timeout_ms : cfg->handshake_timeout_ms;
}

/* (Re)arms conn->timer at the earliest deadline of its state, or disarms it. */
void ws_deadline_schedule(struct ws_worker *c, struct ws_conn *conn);

#endif
