/* A connection's I/O: accept (admission, the transport, the first recv), the recv, send and
 * shutdown completions, received bytes routed by state (the request head to
 * net/http_conn.c, frames to net/session.c), receive-ring growth on ENOBUFS, and the
 * end-of-pass work (deferred closes, re-arms, the send). */
#include "conn_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admission.h"
#include "conn_send.h"
#include "conn_tls.h"
#include "deadline.h"
#include "http_conn.h"
#include "log.h"
#include "routes.h"
#include "session.h"
#include "worker.h"
#include "server_internal.h"

/* Plaintext received: the HTTP head or WebSocket frames, by state. p may be modified in place
 * (unmasking) and is not kept after the call. */
static void conn_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n)
{
    if (conn->state == WS_CONN_HTTP)
        ws_http_conn_input(c, conn, p, n);
    else if (conn->state == WS_CONN_OPEN || conn->state == WS_CONN_CLOSING)
        ws_session_input(c, conn, p, n);
    /* LINGER and DEAD: the bytes are dropped. */
}

/* Plain TCP: the bytes are the stream. */
static const ws_transport_ops_t plain = {
    .name = "plain",
    .input = conn_input,
};

/* How the TLS transport reaches this connection (net/conn_tls.h). */
static const ws_conn_up_t tls_up = {
    .input = conn_input,
    .arm_recv = ws_conn_arm_recv,
    .cancel = ws_conn_cancel,
    .finish = ws_conn_finish,
};

/* ---- completions ------------------------------------------------------------------- */

static void bufs_exhausted(ws_worker_t *c)
{
    ws_metric_inc(&c->m->enobufs);
    if (c->enobufs_seen)
        return; /* grow at most once per loop iteration */
    c->enobufs_seen = true;
    uint32_t before = c->bufs.nbufs;
    int rc = ws_bufring_grow(&c->bufs);
    if (rc == 0) {
        ws_metric_add(&c->m->recv_bufs, c->bufs.nbufs - before);
        ws_log_info("receive buffer ring grown from %u to %u buffers", before, c->bufs.nbufs);
    } else if (rc == -ENOMEM) {
        ws_log_warn("receive buffer ring cannot grow: out of memory");
    }
}

/* The recv ended (no IORING_CQE_F_MORE) with res. */
static void recv_ended(ws_worker_t *c, ws_conn_t *conn, int res)
{
    if (conn->tp->recv_ended && conn->tp->recv_ended(c, conn, res))
        return; /* stopped for the kTLS hand-off, which re-arms it */
    if (res > 0) {
        ws_conn_arm_recv(c, conn);
    } else if (res == -ENOBUFS) {
        bufs_exhausted(c);
        ws_worker_pending(c, conn, WS_CONN_F_NEED_RECV); /* after this batch returned buffers */
    } else if (res == -EINVAL && c->multishot_recv) {
        c->multishot_recv = false;
        ws_log_warn("multishot recv refused by the kernel: using single-shot receives");
        ws_conn_arm_recv(c, conn);
    } else if (res == 0 && conn->state != WS_CONN_LINGER) {
        /* The peer half-closed: it may still read. Send what it is owed (an HTTP response,
         * echoes, a close reply), possibly queued by this very batch and not yet submitted,
         * then close; tearing down here would drop it. The close timeout bounds a peer
         * that never reads. */
        ws_log_debug("conn %u: peer finished sending", conn->idx);
        ws_conn_finish(c, conn);
    } else {
        if (res < 0 && conn->state != WS_CONN_LINGER)
            ws_log_debug("conn %u: recv: %s", conn->idx, strerror(-res));
        else
            ws_log_debug("conn %u: peer closed the connection", conn->idx);
        ws_conn_teardown(c, conn);
    }
}

static void on_recv(ws_worker_t *c, ws_conn_t *conn, int res, unsigned cqe_flags, uint8_t *buf)
{
    if (res > 0) {
        ws_metric_add(&c->m->bytes_in, (uint64_t)res);
        conn->t_rx = c->now_ms;
        conn->tp->input(c, conn, buf, (size_t)res);
    }
    if (cqe_flags & IORING_CQE_F_MORE)
        return;
    /* The recv ended: clear the flag only now, so nothing above could free conn. */
    conn->flags &= ~WS_CONN_F_RECV;
    if (conn->state == WS_CONN_DEAD)
        ws_conn_maybe_free(c, conn);
    else
        recv_ended(c, conn, res);
}

static void on_recv_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)owner;
    int bid = -1;
    uint8_t *buf = NULL;
    int res = e->res;
    if (e->flags & IORING_CQE_F_BUFFER) {
        unsigned b = e->flags >> IORING_CQE_BUFFER_SHIFT;
        if (ws_bufring_valid(&c->bufs, b)) {
            bid = (int)b;
            buf = ws_bufring_addr(&c->bufs, (uint16_t)b);
        } else {
            ws_log_error("recv completion names unknown buffer %u", b);
        }
    }
    if (res > 0 && !buf)
        res = -EIO; /* data without a buffer: cannot happen with buffer select */
    ws_conn_t *conn = ws_worker_conn(c, e->ud);
    if (conn)
        on_recv(c, conn, res, e->flags, buf);
    else
        ws_log_debug("stale recv completion for slot %u", ws_ud_idx(e->ud));
    /* Whoever the data was for, the parser is done with it (it copies what it keeps). */
    if (bid >= 0)
        ws_bufring_recycle(&c->bufs, (uint16_t)bid);
}

static void start_send(ws_worker_t *c, ws_conn_t *conn)
{
    if (ws_conn_send_start(c, conn))
        ws_conn_linger(c, conn);
}

static void on_send_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)owner;
    ws_conn_t *conn = ws_worker_conn(c, e->ud);
    if (!conn) {
        ws_log_error("stale send completion for slot %u", ws_ud_idx(e->ud));
        return;
    }
    ws_conn_send_done(c, conn, e->res);
    if (conn->state == WS_CONN_DEAD) {
        ws_conn_maybe_free(c, conn);
    } else if (e->res <= 0) {
        ws_log_debug("conn %u: send failed: %s", conn->idx, e->res ? strerror(-e->res) : "0 bytes");
        ws_conn_teardown(c, conn);
    } else {
        start_send(c, conn); /* the rest of a short send, or what queued meanwhile */
    }
}

static void on_shutdown_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)owner;
    ws_conn_t *conn = ws_worker_conn(c, e->ud);
    if (!conn)
        return;
    conn->flags &= ~WS_CONN_F_SHUT;
    if (e->res < 0 && conn->state != WS_CONN_DEAD)
        ws_conn_teardown(c, conn);
    else
        ws_conn_maybe_free(c, conn);
}

void ws_conn_io_register(ws_worker_t *c)
{
    ws_worker_handler_set(c, WS_UD_RECV, on_recv_cqe, NULL, "recv");
    ws_worker_handler_set(c, WS_UD_SEND, on_send_cqe, NULL, "send");
    ws_worker_handler_set(c, WS_UD_SHUTDOWN, on_shutdown_cqe, NULL, "shutdown");
}

/* ---- accept, pending work ---------------------------------------------------------- */

/* A new connection struct on its transport, in the table. NULL (socket not closed) when
 * there is no memory or no free slot. */
static ws_conn_t *conn_new(ws_worker_t *c, int fd, bool tls, bool direct)
{
    ws_conn_t *conn = calloc(1, sizeof(*conn));
    if (!conn || (tls && ws_conn_tls_attach(c, conn, &tls_up) < 0)) {
        ws_log_error("out of memory for a new connection");
        free(conn);
        return NULL;
    }
    if (!tls)
        conn->tp = &plain;
    conn->fd = fd;
    conn->direct = direct;
    if (ws_worker_slot_alloc(c, conn) < 0) {
        ws_log_warn("connection table full (%u): dropping a new connection", c->nslots);
        if (conn->tp->free)
            conn->tp->free(c, conn);
        free(conn);
        return NULL;
    }
    conn->transport = tls ? WS_TRANSPORT_TLS : WS_TRANSPORT_PLAIN;
    return conn;
}

void ws_conn_io_accept(ws_worker_t *c, int fd, bool tls, const struct sockaddr *peer,
                       socklen_t peer_len)
{
    bool direct = ws_worker_direct_for(c, tls);
    ws_conn_t *conn = conn_new(c, fd, tls, direct);
    if (!conn) {
        if (direct)
            ws_worker_close_direct(c, (unsigned)fd);
        else
            close(fd);
        return;
    }
    ws_metric_inc(&c->m->conns_by_transport[conn->transport]);
    ws_conn_t *old = ws_admission_evictee(c);
    if (old)
        ws_conn_teardown(c, old);
    ws_qlink_push_tail(&c->heads, &conn->head_link);
    c->nheads++;
    ws_timer_init(&conn->timer, ws_conn_on_timer);
    ws_dlink_init(&conn->pending);
    ws_dlink_init(&conn->member);
    ws_sendq_init(&conn->sq);
    conn->state = WS_CONN_HTTP;
    conn->t_accept = conn->t_rx = conn->t_req = c->now_ms;
    ws_metric_inc(&c->m->conns_accepted);
    ws_refusal_t no;
    int refused = ws_admission_accept(c, conn, peer, peer_len, &no);
    ws_conn_arm_recv(c, conn);
    ws_log_debug("conn %u: accepted (fd %d%s%s)", conn->idx, fd, conn->direct ? ", direct" : "",
                 tls ? ", TLS" : "");
    if (refused < 0) {
        ws_routes_reject(c, conn, no.status, no.why);
        return;
    }
    ws_deadline_schedule(c, conn);
}

void ws_conn_io_pending(ws_worker_t *c, ws_conn_t *conn)
{
    uint32_t f = conn->flags;
    conn->flags &= ~(WS_CONN_F_NEED_SEND | WS_CONN_F_NEED_RECV | WS_CONN_F_NEED_CLOSE);
    if (conn->state == WS_CONN_DEAD)
        return;
    if (f & WS_CONN_F_NEED_CLOSE) {
        if (conn->close_code != WS_CLOSE_POLICY) /* the slow-consumer verdict logged those */
            ws_log_verbose("conn %u: closing with %u (%s)", conn->idx, conn->close_code,
                           conn->close_why ? conn->close_why : "");
        /* Drop what is queued: a slow consumer would never get through it anyway. */
        ws_conn_close(c, conn, conn->close_code, conn->close_why, true);
    }
    if ((f & WS_CONN_F_NEED_RECV) && !(conn->flags & WS_CONN_F_RECV))
        ws_conn_arm_recv(c, conn);
    start_send(c, conn); /* may tear down (and free) conn: last */
}
