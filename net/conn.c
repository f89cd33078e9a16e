/* Connection state machine. Rules that keep it safe:
 *  - a connection is freed only by maybe_finalize(), once it is DEAD and no operation of it
 *    is in flight (recv, send, shutdown);
 *  - the recv completion handler keeps WS_CONN_F_RECV set until its very end, so nothing it
 *    calls can free the connection under it;
 *  - nothing reached from the parser callbacks or a room's delivery loop tears a connection
 *    down: closes there queue a close frame (ws_conn_close) or are deferred to the core's
 *    pending list (ws_conn_send_close_later);
 *  - every queued byte is accounted in the core's queue_bytes gauge. */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broadcast.h"
#include "conn_send.h"
#include "conn_tls.h"
#include "deadline.h"
#include "limits.h"
#include "log.h"
#include "pages.h"
#include "worker.h"
#include "server_internal.h"
#include "uringws/block.h"
#include "uringws/frame.h"
#include "uringws/handshake.h"
#include "uringws/http.h"

static void start_send(ws_worker_t *c, ws_conn_t *conn);
static void frames_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n);

/* ---- small helpers ------------------------------------------------------------------ */

/* The connection left the request-head phase (upgraded, answered or torn down). */
static void head_phase_end(ws_worker_t *c, ws_conn_t *conn)
{
    if (ws_qlink_linked(&conn->head_link)) {
        ws_qlink_remove(&conn->head_link);
        c->nheads--;
    }
}

/* Closes a socket that has (or no longer has) a connection struct. */
static void close_socket(ws_worker_t *c, int fd, bool direct)
{
    if (direct)
        ws_worker_close_direct(c, (unsigned)fd);
    else
        close(fd);
}

static void set_fixed(const ws_conn_t *conn, struct io_uring_sqe *sqe)
{
    if (conn->direct)
        sqe->flags |= IOSQE_FIXED_FILE;
}

static void arm_recv(ws_worker_t *c, ws_conn_t *conn)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    if (conn->tls && ws_conn_tls_rx_in_kernel(conn))
        ws_conn_tls_prep_recvmsg(c, conn, sqe); /* kernel TLS needs the record type */
    else if (c->multishot_recv)
        io_uring_prep_recv_multishot(sqe, conn->fd, NULL, 0, 0);
    else
        io_uring_prep_recv(sqe, conn->fd, NULL, c->bufs.buf_size, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = WS_BGID;
    set_fixed(conn, sqe);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_RECV, conn->idx, conn->gen));
    conn->flags |= WS_CONN_F_RECV;
}

static void cancel_op(ws_worker_t *c, ws_conn_t *conn, unsigned kind)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    io_uring_prep_cancel64(sqe, ws_ud_make(kind, conn->idx, conn->gen), 0);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_CANCEL, conn->idx, conn->gen));
}

/* With TX in kernel TLS the kernel encrypts straight from the iovecs: count the bytes that
 * go from the queue's own entries (broadcast blocks, by reference) and those that were
 * copied into the cork area first (runs of small frames). */
static void ktls_tx_account(ws_worker_t *c, const ws_sendctx_t *s, const struct iovec *iov,
                            unsigned n, size_t bytes)
{
    size_t copied = 0;
    for (unsigned i = 0; s && i < n; i++) {
        const uint8_t *p = iov[i].iov_base;
        if (p >= s->cork && p < s->cork + WS_CORK_BYTES)
            copied += iov[i].iov_len;
    }
    ws_metric_add(&c->m->ktls_tx_ref_bytes, bytes - copied);
    ws_metric_add(&c->m->ktls_tx_copied_bytes, copied);
}

/* Frees the connection once it is dead and nothing of it is in flight. */
static void maybe_finalize(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->state != WS_CONN_DEAD ||
        (conn->flags & (WS_CONN_F_RECV | WS_CONN_F_SEND | WS_CONN_F_SHUT)))
        return;
    close_socket(c, conn->fd, conn->direct);
    ws_conn_send_drop(c, conn, true);
    if (conn->sctx) {
        ws_worker_sctx_put(c, conn->sctx);
        conn->sctx = NULL;
    }
    if (conn->flags & WS_CONN_F_PARSER)
        ws_parser_free(&conn->parser);
    if (conn->tls)
        ws_conn_tls_free(c, conn);
    free(conn->hbuf);
    ws_log_debug("conn %u: freed", conn->idx);
    ws_worker_slot_free(c, conn);
    free(conn);
}

void ws_conn_teardown(ws_worker_t *c, ws_conn_t *conn)
{
    if (conn->state == WS_CONN_DEAD)
        return;
    ws_room_leave(c, conn);
    head_phase_end(c, conn);
    conn->state = WS_CONN_DEAD;
    ws_wheel_del(&c->wheel, &conn->timer);
    ws_dlink_remove(&conn->pending);
    conn->flags &= ~(WS_CONN_F_NEED_SEND | WS_CONN_F_NEED_RECV | WS_CONN_F_NEED_CLOSE);
    free(conn->hbuf);
    conn->hbuf = NULL;
    conn->hlen = conn->hcap = conn->hprev = 0;
    ws_conn_send_drop(c, conn, false);
    if (conn->flags & WS_CONN_F_COUNTED) {
        conn->flags &= ~WS_CONN_F_COUNTED;
        atomic_fetch_sub_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
        ws_metric_sub(&c->m->conns_current, 1);
    }
    if (conn->flags & WS_CONN_F_IP_COUNTED) {
        conn->flags &= ~WS_CONN_F_IP_COUNTED;
        ws_keycount_release(c->srv->ip_counts, conn->peer, sizeof(conn->peer));
    }
    ws_metric_sub(&c->m->conns_by_transport[conn->transport], 1);
    if (conn->flags & WS_CONN_F_RECV)
        cancel_op(c, conn, WS_UD_RECV);
    if (conn->flags & WS_CONN_F_SEND)
        cancel_op(c, conn, WS_UD_SEND);
    maybe_finalize(c, conn);
}

/* ---- closing ----------------------------------------------------------------------- */

static void enter_closing(ws_worker_t *c, ws_conn_t *conn)
{
    head_phase_end(c, conn);
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
        enter_closing(c, conn);
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
    ws_room_leave(c, conn);
    if (drop_queue)
        ws_conn_send_drop(c, conn, false);
    enter_closing(c, conn);
    if (ws_conn_send_close_frame(c, conn, code, why) < 0) {
        /* No memory for 2..125 bytes: give up on the handshake, just end the stream. */
        conn->flags |= WS_CONN_F_FLUSH_CLOSE;
    }
    ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND);
}

/* Our side is done sending: half-close and keep reading (and discarding) until the peer
 * closes too, so the kernel never answers unread data with a RST that could destroy our
 * last bytes in flight (lingering close). */
static void begin_linger(ws_worker_t *c, ws_conn_t *conn)
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

/* ---- sending ----------------------------------------------------------------------- */

static void start_send(ws_worker_t *c, ws_conn_t *conn)
{
    if ((conn->flags & WS_CONN_F_SEND) || conn->state == WS_CONN_DEAD)
        return;
    if (conn->tls && ws_conn_tls_send(c, conn))
        return; /* encrypted and sent (or waiting), or kernel TLS's own close_notify */
    if (!ws_sendq_has_unsent(&conn->sq)) {
        if ((conn->flags & WS_CONN_F_FLUSH_CLOSE) && ws_sendq_empty(&conn->sq))
            begin_linger(c, conn);
        return;
    }
    /* Without a pooled iovec array (allocation failure) send one entry at a time. */
    ws_sendctx_t *s = ws_worker_sctx_get(c);
    struct iovec single;
    struct iovec *iov = s ? s->iov : &single;
    unsigned max_iov = s ? c->cfg->send_max_iov : 1;
    size_t bytes;
    unsigned n = ws_sendq_gather(&conn->sq, iov, max_iov, c->cfg->send_max_bytes, &bytes);
    /* A batch of small frames (a busy chat room) goes out as one contiguous copy rather than
     * dozens of tiny iovecs: the kernel's per-segment copy cost outweighs the memcpy. */
    bool corked = false;
    if (s && n > 1) {
        unsigned m = ws_iov_coalesce(iov, n, s->cork, WS_CORK_BYTES, WS_CORK_SMALL);
        corked = m < n;
        n = m;
    }
    if (conn->transport == WS_TRANSPORT_KTLS)
        ktls_tx_account(c, s, iov, n, bytes);
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    if (n == 1) {
        io_uring_prep_send(sqe, conn->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        if (corked)
            conn->sctx = s; /* the cork copy must live until the send completes */
        else if (s)
            ws_worker_sctx_put(c, s);
    } else {
        memset(&s->msg, 0, sizeof(s->msg));
        s->msg.msg_iov = s->iov;
        s->msg.msg_iovlen = n;
        io_uring_prep_sendmsg(sqe, conn->fd, &s->msg, MSG_NOSIGNAL);
        conn->sctx = s;
    }
    set_fixed(conn, sqe);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_SEND, conn->idx, conn->gen));
    conn->flags |= WS_CONN_F_SEND;
    ws_metric_inc(&c->m->sends);
}

void ws_conn_on_send(ws_worker_t *c, ws_conn_t *conn, int res)
{
    conn->flags &= ~WS_CONN_F_SEND;
    size_t sent = res > 0 ? (size_t)res : 0;
    uint64_t before = conn->sq.bytes;
    ws_sendq_complete(&conn->sq, sent, &c->brefs);
    ws_conn_send_account(c, before, conn->sq.bytes);
    ws_conn_send_shrank(c, conn);
    if (sent)
        conn->t_tx = c->now_ms; /* progress: the write-stall clock restarts */
    if (conn->tls)
        ws_conn_tls_sent(c, conn, sent);
    ws_metric_add(&c->m->bytes_out, sent);
    if (conn->sctx) {
        ws_worker_sctx_put(c, conn->sctx);
        conn->sctx = NULL;
    }
    if (conn->state == WS_CONN_DEAD) {
        maybe_finalize(c, conn);
        return;
    }
    if (res <= 0) {
        ws_log_debug("conn %u: send failed: %s", conn->idx, res ? strerror(-res) : "0 bytes");
        ws_conn_teardown(c, conn);
        return;
    }
    start_send(c, conn); /* the rest of a short send, or what queued meanwhile */
}

/* ---- HTTP phase -------------------------------------------------------------------- */

static void reject(ws_worker_t *c, ws_conn_t *conn, int status, const char *why)
{
    ws_log_verbose("conn %u: rejected with %d: %s", conn->idx, status, why);
    ws_metric_inc(&c->m->hs_errors[ws_metrics_hs_index(status)]);
    char resp[1024];
    size_t n = ws_handshake_error_response(status, why, resp, sizeof(resp));
    uint8_t *buf = n ? malloc(n) : NULL;
    if (buf) {
        memcpy(buf, resp, n);
        (void)ws_conn_send_owned(c, conn, buf, (uint32_t)n); /* frees buf on failure */
    }
    ws_conn_finish(c, conn);
}

/* Releases the room count taken by admit() when the join does not happen. */
static void room_uncount(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs)
{
    if (conn->flags & WS_CONN_F_ROOM_COUNTED) {
        conn->flags &= ~WS_CONN_F_ROOM_COUNTED;
        ws_keycount_release(c->srv->room_counts, hs->room, hs->room_len);
    }
}

static bool is_echo(const ws_handshake_t *hs)
{
    return hs->room_len == 4 && memcmp(hs->room, "echo", 4) == 0;
}

/* The server's own checks on a valid upgrade: the origin allow-list (403) and the room limit
 * (503, taking the room count on success). Returns 0 or the status it answered with. */
static int admit(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs)
{
    if (c->cfg->origins && !ws_origins_allow(&c->srv->origins, hs->origin)) {
        ws_metric_inc(&c->m->origin_rejects);
        ws_log_verbose("conn %u: Origin '%.*s' not allowed", conn->idx,
                       (int)(hs->origin.len > 200 ? 200 : hs->origin.len),
                       hs->origin.len ? (const char *)hs->origin.base : "");
        reject(c, conn, 403, hs->origin.len ? "origin not allowed" : "Origin header required");
        return 403;
    }
    if (c->srv->room_counts && !is_echo(hs)) {
        int rc =
            ws_keycount_acquire(c->srv->room_counts, hs->room, hs->room_len, 0, c->cfg->max_rooms);
        if (rc < 0) {
            ws_metric_inc(&c->m->room_rejects);
            ws_log_verbose("conn %u: room '%s' refused: %s", conn->idx, hs->room,
                           rc == -ENOSPC ? "room limit reached" : strerror(-rc));
            reject(c, conn, 503, rc == -ENOSPC ? "too many rooms" : "out of memory");
            return 503;
        }
        conn->flags |= WS_CONN_F_ROOM_COUNTED;
    }
    return 0;
}

static void upgrade(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs, uint8_t *rest,
                    size_t rest_len)
{
    char resp[512];
    size_t n = ws_handshake_response(hs, resp, sizeof(resp));
    uint8_t *buf = n ? malloc(n) : NULL;
    if (buf)
        memcpy(buf, resp, n);
    else
        ws_log_error("conn %u: cannot build the 101 response", conn->idx);
    if (!buf || ws_conn_send_owned(c, conn, buf, (uint32_t)n) < 0) {
        room_uncount(c, conn, hs);
        ws_conn_teardown(c, conn);
        return;
    }
    head_phase_end(c, conn);
    ws_parser_config_t pc;
    memset(&pc, 0, sizeof(pc));
    pc.max_message = c->cfg->max_message;
    pc.frame_flags = WS_FRAME_REQUIRE_MASK;
    ws_parser_init(&conn->parser, &pc);
    conn->flags |= WS_CONN_F_PARSER;
    conn->state = WS_CONN_OPEN;
    conn->t_rx = conn->t_ping = conn->t_open = c->now_ms;
    ws_deadline_schedule(c, conn);
    ws_metric_inc(&c->m->conns_upgraded);
    if (is_echo(hs)) {
        conn->flags |= WS_CONN_F_ECHO;
        ws_log_debug("conn %u: upgraded (echo)", conn->idx);
    } else if (ws_room_join(c, conn, hs->room, hs->room_len) < 0) {
        room_uncount(c, conn, hs);
        ws_conn_close(c, conn, WS_CLOSE_INTERNAL, "out of memory", false);
        return;
    } else {
        ws_log_debug("conn %u: upgraded, room '%s'", conn->idx, hs->room);
    }
    if (rest_len)
        frames_input(c, conn, rest, rest_len);
}

/* c->req holds a complete request head; rest[] are the bytes after it. */
static void handle_request(ws_worker_t *c, ws_conn_t *conn, uint8_t *rest, size_t rest_len)
{
    ws_handshake_t hs;
    int st = ws_handshake_check(&c->req, &hs);
    if (st == 101) {
        if (admit(c, conn, &hs) == 0)
            upgrade(c, conn, &hs, rest, rest_len);
    } else if (st == 0) {
        ws_pages_respond(c, conn, &c->req, &hs);
        ws_conn_finish(c, conn);
    } else {
        char resp[1024];
        size_t n = ws_handshake_response(&hs, resp, sizeof(resp));
        ws_log_verbose("conn %u: rejected with %d: %s (target %.*s)", conn->idx, st,
                       hs.error ? hs.error : "bad request",
                       (int)(c->req.target.len > 200 ? 200 : c->req.target.len),
                       (const char *)c->req.target.base);
        ws_metric_inc(&c->m->hs_errors[ws_metrics_hs_index(st)]);
        uint8_t *buf = n ? malloc(n) : NULL;
        if (buf) {
            memcpy(buf, resp, n);
            (void)ws_conn_send_owned(c, conn, buf, (uint32_t)n);
        }
        ws_conn_finish(c, conn);
    }
}

static int hbuf_append(ws_worker_t *c, ws_conn_t *conn, const uint8_t *p, size_t n)
{
    size_t need = (size_t)conn->hlen + n;
    /* The head may be up to max_header_bytes and WebSocket bytes may follow it in the same
     * receive (or TLS record: up to 16 KiB of plaintext); more than that cannot be a valid
     * head (the parser says 431 before). */
    size_t slice = conn->tls && c->bufs.buf_size < 16384 ? 16384 : c->bufs.buf_size;
    if (need > (size_t)c->cfg->max_header_bytes + slice)
        return -E2BIG;
    if (need > conn->hcap) {
        size_t cap = conn->hcap ? conn->hcap : 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(conn->hbuf, cap);
        if (!nb)
            return -ENOMEM;
        conn->hbuf = nb;
        conn->hcap = (uint32_t)cap;
    }
    memcpy(conn->hbuf + conn->hlen, p, n);
    conn->hlen = (uint32_t)need;
    return 0;
}

static void http_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n)
{
    ws_http_limits_t lim = {c->cfg->max_header_bytes, c->cfg->max_headers};
    int rc;
    if (conn->hlen == 0) {
        /* Fast path: a head that arrives in one receive is parsed in the ring buffer itself,
         * and so are the WebSocket bytes after it. */
        rc = ws_http_parse_request(p, n, 0, &lim, &c->req);
        if (rc > 0) {
            handle_request(c, conn, p + rc, n - (size_t)rc);
            return;
        }
        if (rc != WS_INCOMPLETE)
            goto fail;
    }
    int arc = hbuf_append(c, conn, p, n);
    if (arc == -E2BIG) {
        rc = -431;
        goto fail;
    }
    if (arc < 0) {
        ws_log_error("conn %u: out of memory for the request head", conn->idx);
        ws_conn_teardown(c, conn);
        return;
    }
    if (conn->hprev == 0 && conn->hlen == n) {
        conn->hprev = conn->hlen; /* these bytes were just parsed in place */
        return;
    }
    rc = ws_http_parse_request(conn->hbuf, conn->hlen, conn->hprev, &lim, &c->req);
    conn->hprev = conn->hlen;
    if (rc == WS_INCOMPLETE)
        return;
    if (rc > 0) {
        /* The request and the bytes after it live in hbuf: free it only afterwards. */
        uint8_t *hb = conn->hbuf;
        uint32_t hlen = conn->hlen;
        conn->hbuf = NULL;
        conn->hlen = conn->hcap = conn->hprev = 0;
        handle_request(c, conn, hb + rc, hlen - (size_t)rc);
        free(hb);
        return;
    }
fail:
    if (rc == -431)
        reject(c, conn, 431, "request head too large");
    else
        reject(c, conn, 400, "malformed request head");
}

/* ---- WebSocket phase --------------------------------------------------------------- */

typedef struct cb_ctx {
    ws_worker_t *c;
    ws_conn_t *conn;
} cb_ctx_t;

static int cb_message(void *ud, uint8_t opcode, const uint8_t *payload, size_t len)
{
    cb_ctx_t *x = ud;
    ws_worker_t *c = x->c;
    ws_conn_t *conn = x->conn;
    conn->flags |= WS_CONN_F_FRAME_SEEN;
    if (conn->state != WS_CONN_OPEN)
        return 0; /* after our close frame, data is read and dropped */
    ws_metric_inc(&c->m->msgs_in);
    ws_worker_note_sender(c, conn->idx);
    ws_block_t *b = ws_block_frame(opcode, payload, len);
    if (!b) {
        ws_log_error("conn %u: out of memory for a %zu-byte message", conn->idx, len);
        ws_conn_close(c, conn, WS_CLOSE_INTERNAL, "out of memory", true);
        return 1;
    }
    ws_metric_inc(&c->m->frames_built);
    if (conn->flags & WS_CONN_F_ECHO)
        ws_room_deliver_one(c, conn, b);
    else
        ws_room_publish(c, conn, b);
    return 0;
}

static int cb_control(void *ud, uint8_t opcode, const uint8_t *payload, size_t len)
{
    cb_ctx_t *x = ud;
    ws_worker_t *c = x->c;
    ws_conn_t *conn = x->conn;
    conn->flags |= WS_CONN_F_FRAME_SEEN;
    if (opcode != WS_OP_PING || conn->state != WS_CONN_OPEN)
        return 0; /* pongs only prove liveness (t_rx is already updated) */
    /* A peer that pings without reading our pongs is a slow consumer like any other, and
     * while its queue is over the limits it gets no pong (a later ping gets one): pongs are
     * not droppable, so under drop-oldest they could otherwise pile up without bound. */
    if ((conn->flags & WS_CONN_F_NEED_CLOSE) || ws_conn_send_over(c, conn))
        return 0;
    if (ws_conn_send_control(c, conn, WS_OP_PONG, payload, len) < 0) {
        ws_conn_close(c, conn, WS_CLOSE_INTERNAL, "out of memory", true);
        return 1;
    }
    ws_conn_send_backpressure(c, conn);
    return 0;
}

static int cb_close(void *ud, unsigned code, const uint8_t *reason, size_t len)
{
    (void)reason;
    (void)len;
    cb_ctx_t *x = ud;
    ws_worker_t *c = x->c;
    ws_conn_t *conn = x->conn;
    conn->flags |= WS_CONN_F_FRAME_SEEN;
    conn->flags |= WS_CONN_F_CLOSE_RCVD;
    ws_log_debug("conn %u: peer closed with %u", conn->idx, code);
    if (conn->state == WS_CONN_OPEN) {
        ws_room_leave(c, conn);
        enter_closing(c, conn);
        if (ws_conn_send_close_frame(c, conn, ws_close_reply_code(code), NULL) < 0)
            ws_log_error("conn %u: out of memory for the close reply", conn->idx);
    }
    /* Both close frames are (or will be) on the wire: end the stream after the queue. */
    conn->flags |= WS_CONN_F_FLUSH_CLOSE;
    ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND);
    return 1;
}

static const ws_parser_callbacks_t callbacks = {
    .on_message = cb_message,
    .on_control = cb_control,
    .on_close = cb_close,
};

/* Debug aid for a protocol error: where the parser stood and the chunk's bytes around the point
 * it stopped at ('|'). Payload bytes before it are already unmasked in place, so a bad UTF-8
 * byte shows there; header bytes after it are as received. */
static void log_bad_input(const ws_conn_t *conn, int rc, const uint8_t *p, size_t n, size_t used)
{
    const ws_parser_t *ps = &conn->parser;
    char hex[3 * 40 + 3];
    size_t from = used > 32 ? used - 32 : 0, to = n - used > 8 ? used + 8 : n, k = 0;
    for (size_t i = from; i < to; i++) {
        if (i == used)
            k += (size_t)snprintf(hex + k, sizeof(hex) - k, " |");
        k += (size_t)snprintf(hex + k, sizeof(hex) - k, " %02x", p[i]);
    }
    hex[k] = '\0';
    ws_log_debug("conn %u: parser error %d in frame opcode %u fin %d len %llu at %llu (message "
                 "opcode %u, %zu bytes so far); chunk of %zu, bytes %zu..%zu:%s",
                 conn->idx, rc, ps->frame.opcode, ps->frame.fin,
                 (unsigned long long)ps->frame.payload_len, (unsigned long long)ps->frame_done,
                 ps->msg_opcode, ps->msg_len, n, from, to, hex);
}

/* Plaintext received: the HTTP head or WebSocket frames, by state. p may be modified in place
 * (unmasking) and is not kept after the call. */
static void conn_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n)
{
    if (conn->state == WS_CONN_HTTP)
        http_input(c, conn, p, n);
    else if (conn->state == WS_CONN_OPEN || conn->state == WS_CONN_CLOSING)
        frames_input(c, conn, p, n);
    /* LINGER and DEAD: the bytes are dropped. */
}

static void frames_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n)
{
    cb_ctx_t x = {c, conn};
    while (n) {
        if (!(conn->flags & WS_CONN_F_PARSER) ||
            (conn->flags & (WS_CONN_F_CLOSE_RCVD | WS_CONN_F_FLUSH_CLOSE)) ||
            (conn->state != WS_CONN_OPEN && conn->state != WS_CONN_CLOSING))
            return;
        size_t used = 0;
        int rc = ws_parser_feed(&conn->parser, p, n, &used, &callbacks, &x);
        if (rc == 0)
            return;
        if (rc > 0) {
            p += used;
            n -= used;
            continue;
        }
        if (rc == -WS_CLOSE_NORMAL)
            return; /* bytes after the peer's close frame: ignored */
        unsigned code = rc == -ENOMEM ? WS_CLOSE_INTERNAL : (unsigned)-rc;
        if (!ws_close_code_valid(code))
            code = WS_CLOSE_PROTOCOL_ERROR;
        ws_log_verbose("conn %u: protocol error, closing with %u", conn->idx, code);
        if (ws_log_level >= WS_LOG_DEBUG)
            log_bad_input(conn, rc, p, n, used);
        /* The parser is dead: do not wait for the peer's close reply. */
        conn->flags |= WS_CONN_F_FLUSH_CLOSE;
        ws_conn_close(c, conn, code,
                      code == WS_CLOSE_TOO_BIG           ? "message too big"
                      : code == WS_CLOSE_INVALID_PAYLOAD ? "invalid UTF-8"
                      : code == WS_CLOSE_INTERNAL        ? "out of memory"
                                                         : "protocol error",
                      false);
        ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND);
        return;
    }
}

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

void ws_conn_on_recv(ws_worker_t *c, ws_conn_t *conn, int res, unsigned cqe_flags, uint8_t *buf)
{
    bool more = (cqe_flags & IORING_CQE_F_MORE) != 0;
    if (res > 0) {
        ws_metric_add(&c->m->bytes_in, (uint64_t)res);
        conn->t_rx = c->now_ms;
        if (conn->tls)
            ws_conn_tls_input(c, conn, buf, (size_t)res);
        else if (conn->state == WS_CONN_HTTP)
            http_input(c, conn, buf, (size_t)res);
        else if (conn->state == WS_CONN_OPEN || conn->state == WS_CONN_CLOSING)
            frames_input(c, conn, buf, (size_t)res);
        /* LINGER and DEAD: the bytes are dropped. */
    }
    if (more)
        return;
    /* The recv ended: clear the flag only now, so nothing above could free conn. */
    conn->flags &= ~WS_CONN_F_RECV;
    if (conn->state == WS_CONN_DEAD) {
        maybe_finalize(c, conn);
        return;
    }
    if (conn->tls && ws_conn_tls_recv_ended(c, conn, res))
        return; /* stopped for the kTLS hand-off, which re-arms it */
    if (res > 0) {
        arm_recv(c, conn);
    } else if (res == -ENOBUFS) {
        bufs_exhausted(c);
        ws_worker_pending(c, conn, WS_CONN_F_NEED_RECV); /* after this batch returned buffers */
    } else if (res == -EINVAL && c->multishot_recv) {
        c->multishot_recv = false;
        ws_log_warn("multishot recv refused by the kernel: using single-shot receives");
        arm_recv(c, conn);
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

void ws_conn_on_shutdown(ws_worker_t *c, ws_conn_t *conn, int res)
{
    conn->flags &= ~WS_CONN_F_SHUT;
    if (res < 0 && conn->state != WS_CONN_DEAD) {
        ws_conn_teardown(c, conn);
        return;
    }
    maybe_finalize(c, conn);
}

/* ---- accept, timers, pending work -------------------------------------------------- */

/* A head-phase connection younger than this is never evicted: a burst of legitimate clients
 * (a reconnect storm, a load balancer draining into this server) connects faster than their
 * heads arrive, and cutting them would turn a burst into failed handshakes. Trickling
 * slowloris sockets are older than this by the time they matter. */
#define WS_EVICT_MIN_AGE_MS 500

/* Makes room for one more connection in the request-head phase: past this core's share of
 * max_pending the oldest one is closed (no response; it had its chance) once it has been
 * sending its head for WS_EVICT_MIN_AGE_MS (or half the head deadline, if shorter). Trickling
 * heads (slowloris) thus cycle through a bounded set instead of filling max_conns; younger
 * ones are all kept, bounded by max_conns. */
static void evict_oldest_head(ws_worker_t *c)
{
    if (c->nheads < c->max_heads)
        return;
    ws_qlink_t *q = ws_qlink_first(&c->heads);
    ws_conn_t *old = ws_container_of(q, ws_conn_t, head_link);
    uint64_t min_age = c->cfg->handshake_timeout_ms / 2;
    if (min_age > WS_EVICT_MIN_AGE_MS)
        min_age = WS_EVICT_MIN_AGE_MS;
    if (c->now_ms - old->t_accept < min_age)
        return;
    ws_log_verbose("conn %u: evicted after %llu ms without a complete request head (%u "
                   "connections in the head phase on this core)",
                   old->idx, (unsigned long long)(c->now_ms - old->t_accept), c->nheads);
    ws_metric_inc(&c->m->pending_evictions);
    ws_conn_teardown(c, old);
}

/* Counts the connection against max_conns_per_ip. Returns 0, or the status to refuse it
 * with. */
static int count_peer(ws_worker_t *c, ws_conn_t *conn, const struct sockaddr *peer,
                      socklen_t peer_len)
{
    if (!peer || !c->srv->ip_counts || !ws_peer_key(peer, peer_len, conn->peer))
        return 0;
    int rc = ws_keycount_acquire(c->srv->ip_counts, conn->peer, sizeof(conn->peer),
                                 c->cfg->max_conns_per_ip, 0);
    if (rc == 0) {
        conn->flags |= WS_CONN_F_IP_COUNTED;
        return 0;
    }
    if (rc == -EUSERS)
        ws_metric_inc(&c->m->ip_rejects);
    else
        ws_log_error("conn %u: out of memory counting its address", conn->idx);
    return rc == -EUSERS ? 429 : 503;
}

/* How the TLS transport reaches this connection (net/conn_tls.h). */
static const ws_conn_up_t tls_up = {
    .input = conn_input,
    .arm_recv = arm_recv,
    .cancel = cancel_op,
    .finish = ws_conn_finish,
};

void ws_conn_accept(ws_worker_t *c, int fd, bool tls, const struct sockaddr *peer,
                    socklen_t peer_len)
{
    bool direct = ws_worker_direct_for(c, tls);
    ws_conn_t *conn = calloc(1, sizeof(*conn));
    if (!conn || (tls && ws_conn_tls_attach(c, conn, &tls_up) < 0)) {
        ws_log_error("out of memory for a new connection");
        free(conn);
        close_socket(c, fd, direct);
        return;
    }
    conn->fd = fd;
    conn->direct = direct;
    if (ws_worker_slot_alloc(c, conn) < 0) {
        ws_log_warn("connection table full (%u): dropping a new connection", c->nslots);
        if (conn->tls)
            ws_conn_tls_free(c, conn);
        free(conn);
        close_socket(c, fd, direct);
        return;
    }
    conn->transport = tls ? WS_TRANSPORT_TLS : WS_TRANSPORT_PLAIN;
    ws_metric_inc(&c->m->conns_by_transport[conn->transport]);
    evict_oldest_head(c);
    ws_qlink_push_tail(&c->heads, &conn->head_link);
    c->nheads++;
    ws_timer_init(&conn->timer);
    ws_dlink_init(&conn->pending);
    ws_dlink_init(&conn->member);
    ws_sendq_init(&conn->sq);
    conn->state = WS_CONN_HTTP;
    conn->t_accept = conn->t_rx = c->now_ms;
    ws_metric_inc(&c->m->conns_accepted);
    uint32_t prev = atomic_fetch_add_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
    int refuse = 0;
    if (prev >= c->cfg->max_conns) {
        atomic_fetch_sub_explicit(&c->srv->open_conns, 1, memory_order_relaxed);
        ws_metric_inc(&c->m->conn_rejects);
        refuse = 503;
    } else {
        conn->flags |= WS_CONN_F_COUNTED;
        ws_metric_inc(&c->m->conns_current);
        refuse = count_peer(c, conn, peer, peer_len);
    }
    arm_recv(c, conn);
    ws_log_debug("conn %u: accepted (fd %d%s%s)", conn->idx, fd, conn->direct ? ", direct" : "",
                 tls ? ", TLS" : "");
    if (refuse) {
        reject(c, conn, refuse,
               refuse == 429 ? "too many connections from this address" : "too many connections");
        return;
    }
    ws_deadline_schedule(c, conn);
}

void ws_conn_on_timer(ws_worker_t *c, ws_conn_t *conn)
{
    const ws_server_config_t *cfg = c->cfg;
    uint64_t now = c->now_ms;
    switch (conn->state) {
    case WS_CONN_HTTP:
        if (now >= conn->t_accept + cfg->handshake_timeout_ms) {
            if (!conn->tls || !ws_conn_tls_timed_out(c, conn)) {
                ws_log_verbose("conn %u: rejected: handshake timeout", conn->idx);
                ws_metric_inc(&c->m->hs_errors[WS_HS_408]);
            }
            ws_metric_inc(&c->m->head_timeouts);
            ws_conn_teardown(c, conn);
            return;
        }
        break;
    case WS_CONN_OPEN:
        if (conn->flags & WS_CONN_F_OVER) {
            ws_conn_send_backpressure(c, conn);
            if (conn->flags & WS_CONN_F_NEED_CLOSE)
                break; /* judged slow: its close comes with the pending work */
        }
        if (cfg->write_stall_ms && (conn->flags & WS_CONN_F_STALL_CLOCK) &&
            now >= conn->t_tx + cfg->write_stall_ms && ws_conn_send_idle(conn))
            conn->flags &= ~WS_CONN_F_STALL_CLOCK; /* everything went out meanwhile */
        if (cfg->write_stall_ms && (conn->flags & WS_CONN_F_STALL_CLOCK) &&
            now >= conn->t_tx + cfg->write_stall_ms) {
            /* It takes no bytes, so a close frame would not reach it either: just drop it. */
            ws_log_verbose("conn %u: no send progress for %u ms (%llu bytes queued), dropping",
                           conn->idx, cfg->write_stall_ms, (unsigned long long)conn->sq.bytes);
            ws_metric_inc(&c->m->write_stalls);
            ws_conn_teardown(c, conn);
            return;
        }
        if (cfg->first_frame_timeout_ms && !(conn->flags & WS_CONN_F_FRAME_SEEN) &&
            now >= conn->t_open + cfg->first_frame_timeout_ms) {
            ws_log_verbose("conn %u: no frame within %u ms of the upgrade, closing with 1008",
                           conn->idx, cfg->first_frame_timeout_ms);
            ws_metric_inc(&c->m->first_frame_timeouts);
            ws_conn_close(c, conn, WS_CLOSE_POLICY, "no frame", false);
            break;
        }
        if (cfg->idle_timeout_ms && now >= conn->t_rx + cfg->idle_timeout_ms) {
            ws_log_verbose("conn %u: idle for %u ms, closing with 1001", conn->idx,
                           cfg->idle_timeout_ms);
            ws_conn_close(c, conn, WS_CLOSE_GOING_AWAY, "idle timeout", false);
            break;
        }
        if (cfg->ping_interval_ms && now >= conn->t_ping + cfg->ping_interval_ms) {
            conn->t_ping = now;
            if (!ws_conn_send_over(c, conn)) {
                if (ws_conn_send_control(c, conn, WS_OP_PING, NULL, 0) < 0)
                    ws_log_error("conn %u: out of memory for a ping", conn->idx);
            }
        }
        break;
    case WS_CONN_CLOSING:
    case WS_CONN_LINGER:
        if (now >= conn->t_close) {
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

void ws_conn_do_pending(ws_worker_t *c, ws_conn_t *conn)
{
    uint32_t f = conn->flags;
    conn->flags &= ~(WS_CONN_F_NEED_SEND | WS_CONN_F_NEED_RECV | WS_CONN_F_NEED_CLOSE);
    if (conn->state == WS_CONN_DEAD)
        return;
    if (f & WS_CONN_F_NEED_CLOSE) {
        if (conn->close_code != WS_CLOSE_POLICY) /* slow_verdict logged those */
            ws_log_verbose("conn %u: closing with %u (%s)", conn->idx, conn->close_code,
                           conn->close_why ? conn->close_why : "");
        /* Drop what is queued: a slow consumer would never get through it anyway. */
        ws_conn_close(c, conn, conn->close_code, conn->close_why, true);
    }
    if ((f & WS_CONN_F_NEED_RECV) && !(conn->flags & WS_CONN_F_RECV))
        arm_recv(c, conn);
    start_send(c, conn); /* may tear down (and free) conn: last */
}
