/* A connection's one timer: the earliest of the deadlines its state has (request, keep-alive,
 * token expiry, ping,
 * idle, first frame, write stall, slow-consumer window, close), set on the worker's wheel.
 * Lazy: the timer handler (ws_conn_on_timer) finds which deadline passed. */
#include "deadline.h"

#include <stdint.h>

#include "worker.h"

static uint64_t deadline(const ws_worker_t *c, const ws_conn_t *conn)
{
    const ws_server_config_t *cfg = c->cfg;
    uint64_t d = UINT64_MAX;
    switch (conn->state) {
    case WS_CONN_HTTP:
        if (conn->flags & WS_CONN_F_HTTP_IDLE)
            d = conn->t_rx + ws_deadline_keepalive_ms(cfg);
        else
            d = conn->t_req + cfg->handshake_timeout_ms;
        break;
    case WS_CONN_OPEN:
        if (cfg->ping_interval_ms)
            d = conn->t_ping + cfg->ping_interval_ms;
        if (cfg->idle_timeout_ms && conn->t_rx + cfg->idle_timeout_ms < d)
            d = conn->t_rx + cfg->idle_timeout_ms;
        if (cfg->first_frame_timeout_ms && !(conn->flags & WS_CONN_F_FRAME_SEEN) &&
            conn->t_open + cfg->first_frame_timeout_ms < d)
            d = conn->t_open + cfg->first_frame_timeout_ms;
        if (cfg->write_stall_ms && (conn->flags & WS_CONN_F_STALL_CLOCK) &&
            conn->t_tx + cfg->write_stall_ms < d)
            d = conn->t_tx + cfg->write_stall_ms;
        if ((conn->flags & WS_CONN_F_OVER) && conn->t_win + cfg->slow_grace_ms < d)
            d = conn->t_win + cfg->slow_grace_ms;
        if ((conn->flags & WS_CONN_F_EXPIRES) && conn->t_exp < d)
            d = conn->t_exp;
        break;
    case WS_CONN_CLOSING:
    case WS_CONN_LINGER:
        d = conn->t_close;
        break;
    default:
        break;
    }
    return d;
}

void ws_deadline_schedule(ws_worker_t *c, ws_conn_t *conn)
{
    uint64_t d = deadline(c, conn);
    if (d == UINT64_MAX)
        ws_timer_del(&c->wheel, &conn->timer);
    else
        ws_timer_add(&c->wheel, &conn->timer, d);
}
