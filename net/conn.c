/* A connection's life cycle. Rules that keep it safe:
 *  - a connection is freed only by ws_conn_maybe_free(), once it is DEAD and no operation of
 *    it is in flight (recv, send, shutdown);
 *  - the recv completion handler (net/conn_io.c) keeps WS_CONN_F_RECV set until its very
 *    end, so nothing it calls can free the connection under it;
 *  - nothing reached from the parser callbacks or a room's delivery loop tears a connection
 *    down: closes there queue a close frame (ws_conn_close) or are deferred to the core's
 *    pending list (ws_conn_send_close_later);
 *  - every queued byte is accounted in the core's queue_bytes gauge (net/conn_send.c).
 * Here: closing, lingering, teardown and freeing, arming and cancelling the connection's
 * operations, and what its deadlines do when they pass. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admission.h"
#include "conn_send.h"
#include "deadline.h"
#include "log.h"
#include "worker.h"
#include "uringws/frame.h"

void ws_conn_head_done(ws_worker_t *c, ws_conn_t *conn)
{
    if (ws_qlink_linked(&conn->head_link)) {
        ws_qlink_remove(&conn->head_link);
        c->nheads--;
    }
}

void ws_conn_arm_recv(ws_worker_t *c, ws_conn_t *conn)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    bool own = conn->tp->prep_recv && conn->tp->prep_recv(c, conn, sqe);
    if (!own && c->multishot_recv)
        io_uring_prep_recv_multishot(sqe, conn->fd, NULL, 0, 0);
    else if (!own)
        io_uring_prep_recv(sqe, conn->fd, NULL, c->bufs.buf_size, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = WS_BGID;
    if (conn->direct)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_RECV, conn->idx, conn->gen));
    conn->flags |= WS_CONN_F_RECV;
}

void ws_conn_cancel(ws_worker_t *c, ws_conn_t *conn, unsigned kind)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    io_uring_prep_cancel64(sqe, ws_ud_make(kind, conn->idx, conn->gen), 0);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_CANCEL, conn->idx, conn->gen));
}

/* ---- teardown ---------------------------------------------------------------------- */

void ws_conn_maybe_free(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->state != WS_CONN_DEAD ||
        (conn->flags & (WS_CONN_F_RECV | WS_CONN_F_SEND | WS_CONN_F_SHUT)))
        return;
    if (conn->direct)
        ws_worker_close_direct(c, (unsigned)conn->fd);
    else
        close(conn->fd);
    ws_conn_send_drop(c, conn, true);
    if (conn->sctx) {
        ws_worker_sctx_put(c, conn->sctx);
        conn->sctx = NULL;
    }
    if (conn->flags & WS_CONN_F_PARSER)
        ws_parser_free(&conn->parser);
    if (conn->tp->free)
        conn->tp->free(c, conn);
    ws_http_head_free(&conn->head);
    free(conn->sub);
    ws_log_debug("conn %u: freed", conn->idx);
    ws_worker_slot_free(c, conn);
    free(conn);
}

void ws_conn_teardown(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->state == WS_CONN_DEAD)
        return;
    if (conn->ep)
        conn->ep->close(c, conn);
    ws_conn_head_done(c, conn);
    conn->state = WS_CONN_DEAD;
    ws_timer_del(&c->wheel, &conn->timer);
    ws_dlink_remove(&conn->pending);
    conn->flags &= ~(WS_CONN_F_NEED_SEND | WS_CONN_F_NEED_RECV | WS_CONN_F_NEED_CLOSE);
    ws_http_head_free(&conn->head);
    ws_conn_send_drop(c, conn, false);
    ws_admission_release(c, conn);
    ws_metric_sub(&c->m->conns_by_transport[conn->transport], 1);
    if (conn->flags & WS_CONN_F_RECV)
        ws_conn_cancel(c, conn, WS_UD_RECV);
    if (conn->flags & WS_CONN_F_SEND)
        ws_conn_cancel(c, conn, WS_UD_SEND);
    ws_conn_maybe_free(c, conn);
}

/* ---- closing ----------------------------------------------------------------------- */

void ws_conn_closing(ws_worker_t *c, ws_conn_t *conn)
{
    ws_conn_head_done(c, conn);
    conn->state = WS_CONN_CLOSING;
    conn->t_close = c->now_ms + c->cfg->close_timeout_ms;
    ws_deadline_schedule(c, conn);
}

void ws_conn_finish(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->state == WS_CONN_DEAD)
        return;
    conn->flags |= WS_CONN_F_FLUSH_CLOSE;
    if (conn->state == WS_CONN_HTTP || conn->state == WS_CONN_OPEN)
        ws_conn_closing(c, conn);
    ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND);
}

void ws_conn_close(ws_worker_t *c, ws_conn_t *conn, unsigned code, const char *why, bool drop_queue)
{
    if (conn->state == WS_CONN_HTTP) {
        ws_conn_teardown(c, conn);
        return;
    }
    if (conn->state != WS_CONN_OPEN)
        return;
    if (conn->ep)
        conn->ep->close(c, conn);
    if (drop_queue)
        ws_conn_send_drop(c, conn, false);
    ws_conn_closing(c, conn);
    conn->parser.sent_close = (uint16_t)code; /* its echo is the peer's answer */
    if (ws_conn_send_close_frame(c, conn, code, why) < 0) {
        /* No memory for 2..125 bytes: give up on the handshake, just end the stream. */
        conn->flags |= WS_CONN_F_FLUSH_CLOSE;
    }
    ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND);
}

/* Our side is done sending: half-close and keep reading (and discarding) until the peer
 * closes too, so the kernel never answers unread data with a RST that could destroy our
 * last bytes in flight (lingering close). */
void ws_conn_linger(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->state == WS_CONN_LINGER || conn->state == WS_CONN_DEAD)
        return;
    if (!(conn->flags & (WS_CONN_F_RECV | WS_CONN_F_NEED_RECV))) {
        ws_conn_teardown(c, conn);
        return;
    }
    if (conn->state != WS_CONN_CLOSING)
        conn->t_close = c->now_ms + c->cfg->close_timeout_ms;
    conn->state = WS_CONN_LINGER;
    ws_deadline_schedule(c, conn);
    if (conn->direct) {
        struct io_uring_sqe *sqe = ws_worker_sqe(c);
        io_uring_prep_shutdown(sqe, conn->fd, SHUT_WR);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_SHUTDOWN, conn->idx, conn->gen));
        conn->flags |= WS_CONN_F_SHUT;
    } else if (shutdown(conn->fd, SHUT_WR) < 0) {
        ws_conn_teardown(c, conn);
    }
}

/* ---- deadlines --------------------------------------------------------------------- */

/* The write-stall rule: a connection whose pending sends made no progress for
 * write_stall_ms takes no bytes, so a close frame would not reach it either. Returns true
 * when it was dropped. */
static bool stalled(ws_worker_t *c, ws_conn_t *conn)
{
    uint32_t stall = c->cfg->write_stall_ms;
    if (!stall || !(conn->flags & WS_CONN_F_STALL_CLOCK) || c->now_ms < conn->t_tx + stall)
        return false;
    if (ws_conn_send_idle(conn)) {
        conn->flags &= ~WS_CONN_F_STALL_CLOCK; /* everything went out meanwhile */
        return false;
    }
    ws_log_verbose("conn %u: no send progress for %u ms (%llu bytes queued), dropping", conn->idx,
                   stall, (unsigned long long)conn->sq.bytes);
    ws_metric_inc(&c->m->write_stalls);
    ws_conn_teardown(c, conn);
    return true;
}

/* An open connection's deadlines. Returns false when it was torn down. */
static bool open_deadlines(ws_worker_t *c, ws_conn_t *conn)
{
    const ws_server_config_t *cfg = c->cfg;
    uint64_t now = c->now_ms;
    if (conn->flags & WS_CONN_F_OVER) {
        ws_conn_send_backpressure(c, conn);
        if (conn->flags & WS_CONN_F_NEED_CLOSE)
            return true; /* judged slow: its close comes with the pending work */
    }
    if (stalled(c, conn))
        return false;
    if ((conn->flags & WS_CONN_F_EXPIRES) && now >= conn->t_exp) {
        ws_log_verbose("conn %u: token expired (sub %s), closing with 1008", conn->idx,
                       conn->sub ? conn->sub : "-");
        ws_metric_inc(&c->m->token_expired);
        conn->flags &= ~WS_CONN_F_EXPIRES;
        ws_conn_close(c, conn, WS_CLOSE_POLICY, "token expired", false);
    } else if (cfg->first_frame_timeout_ms && !(conn->flags & WS_CONN_F_FRAME_SEEN) &&
               now >= conn->t_open + cfg->first_frame_timeout_ms) {
        ws_log_verbose("conn %u: no frame within %u ms of the upgrade, closing with 1008",
                       conn->idx, cfg->first_frame_timeout_ms);
        ws_metric_inc(&c->m->first_frame_timeouts);
        ws_conn_close(c, conn, WS_CLOSE_POLICY, "no frame", false);
    } else if (cfg->idle_timeout_ms && now >= conn->t_rx + cfg->idle_timeout_ms) {
        ws_log_verbose("conn %u: idle for %u ms, closing with 1001", conn->idx,
                       cfg->idle_timeout_ms);
        ws_conn_close(c, conn, WS_CLOSE_GOING_AWAY, "idle timeout", false);
    } else if (cfg->ping_interval_ms && now >= conn->t_ping + cfg->ping_interval_ms) {
        conn->t_ping = now;
        if (!ws_conn_send_over(c, conn) && ws_conn_send_control(c, conn, WS_OP_PING, NULL, 0) < 0)
            ws_log_error("conn %u: out of memory for a ping", conn->idx);
    }
    return true;
}

void ws_conn_on_timer(void *ctx, ws_timer_t *t)
{
    ws_worker_t *c = ctx;
    ws_conn_t *conn = ws_container_of(t, ws_conn_t, timer);
    switch (conn->state) {
    case WS_CONN_HTTP:
        if ((conn->flags & WS_CONN_F_HTTP_IDLE) &&
            c->now_ms >= conn->t_rx + ws_deadline_keepalive_ms(c->cfg)) {
            ws_log_debug("conn %u: keep-alive connection idle, closed", conn->idx);
            ws_conn_teardown(c, conn);
            return;
        }
        if (!(conn->flags & WS_CONN_F_HTTP_IDLE) &&
            c->now_ms >= conn->t_req + c->cfg->handshake_timeout_ms) {
            if (!conn->tp->timed_out || !conn->tp->timed_out(c, conn)) {
                ws_log_verbose("conn %u: rejected: handshake timeout", conn->idx);
                ws_metric_inc(&c->m->hs_errors[WS_HS_408]);
            }
            ws_metric_inc(&c->m->head_timeouts);
            ws_conn_teardown(c, conn);
            return;
        }
        break;
    case WS_CONN_OPEN:
        if (!open_deadlines(c, conn))
            return;
        break;
    case WS_CONN_CLOSING:
    case WS_CONN_LINGER:
        if (c->now_ms >= conn->t_close) {
            ws_log_debug("conn %u: close timeout", conn->idx);
            ws_conn_teardown(c, conn);
            return;
        }
        break;
    default:
        return;
    }
    ws_deadline_schedule(c, conn);
}
