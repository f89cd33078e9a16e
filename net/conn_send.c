/* What a connection is given to send, and the slow-consumer policy: frames queued (owned
 * buffers, control frames, broadcast block references) with the queue_bytes gauge and the
 * write-stall clock kept, backpressure episodes judged over slow_grace, and closes requested
 * for the end of the pass, and the submission of the one send in flight (corked small
 * frames, iovecs by reference, the transport first). Used by everything that hands a
 * connection bytes: rooms, pages, routes, the TLS transport. */
#include "conn_send.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "deadline.h"
#include "log.h"
#include "worker.h"
#include "server_internal.h"
#include "uringws/frame.h"

void ws_conn_send_account(ws_worker_t *c, uint64_t before, uint64_t after)
{
    if (after > before)
        ws_metric_add(&c->m->queue_bytes, after - before);
    else if (before > after)
        ws_metric_sub(&c->m->queue_bytes, before - after);
}

void ws_conn_send_drop(ws_worker_t *c, ws_conn_t *conn, bool all)
{
    uint64_t before = conn->sq.bytes;
    if (all)
        ws_sendq_clear(&conn->sq, &c->brefs);
    else
        ws_sendq_drop_unsent(&conn->sq, &c->brefs);
    ws_conn_send_account(c, before, conn->sq.bytes);
}

/* True when nothing waits to be sent and no send is in flight (TLS ciphertext included: it
 * is in flight whenever it exists). */
bool ws_conn_send_idle(const ws_conn_t *conn)
{
    return ws_sendq_empty(&conn->sq) && !(conn->flags & WS_CONN_F_SEND);
}

/* Bytes were queued; `was_idle` says whether nothing was pending before them. The write-stall
 * clock (re)starts then: t_tx is the last send progress, or when bytes started waiting. The
 * clock is cleared lazily by the timer once nothing is pending. The timer is lazy too (it
 * fires at the earliest deadline known when it was set), so pull it in when the stall
 * deadline is earlier. */
static void stall_clock_start(ws_worker_t *c, ws_conn_t *conn, bool was_idle)
{
    if ((conn->flags & WS_CONN_F_STALL_CLOCK) && !was_idle)
        return;
    conn->flags |= WS_CONN_F_STALL_CLOCK;
    conn->t_tx = c->now_ms;
    uint32_t stall = c->cfg->write_stall_ms;
    if (stall && conn->state == WS_CONN_OPEN &&
        (!ws_timer_armed(&conn->timer) || conn->timer.deadline > conn->t_tx + stall))
        ws_deadline_schedule(c, conn);
}

/* ---- queueing ---------------------------------------------------------------------- */

/* Appends one entry (an owned buffer or a block reference) and does what every queued byte
 * needs: the gauge, the write-stall clock, a send at the end of the pass. -ENOMEM when the
 * queue could not take it (nothing changed; the caller still owns `owner`). */
static int push(ws_worker_t *c, ws_conn_t *conn, uint8_t kind, const void *data, uint32_t len,
                void *owner)
{
    bool was_idle = ws_conn_send_idle(conn);
    if (ws_sendq_push(&conn->sq, kind, data, len, owner) < 0)
        return -ENOMEM;
    ws_metric_add(&c->m->queue_bytes, len);
    stall_clock_start(c, conn, was_idle);
    ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND);
    return 0;
}

int ws_conn_send_owned(ws_worker_t *c, ws_conn_t *conn, uint8_t *buf, uint32_t len)
{
    if (push(c, conn, WS_SQ_OWNED, buf, len, buf) < 0) {
        free(buf);
        return -ENOMEM;
    }
    return 0;
}

int ws_conn_send_copy(ws_worker_t *c, ws_conn_t *conn, const void *p, size_t len)
{
    uint8_t *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, p, len);
    return ws_conn_send_owned(c, conn, buf, (uint32_t)len);
}

int ws_conn_send_control(ws_worker_t *c, ws_conn_t *conn, uint8_t opcode, const void *payload,
                         size_t len)
{
    if (len > WS_CONTROL_MAX)
        len = WS_CONTROL_MAX;
    uint8_t hdr[10];
    size_t h = ws_frame_header_write(hdr, opcode, true, len);
    uint8_t *b = malloc(h + len);
    if (!b)
        return -ENOMEM;
    memcpy(b, hdr, h);
    if (len)
        memcpy(b + h, payload, len);
    return ws_conn_send_owned(c, conn, b, (uint32_t)(h + len));
}

int ws_conn_send_close_frame(ws_worker_t *c, ws_conn_t *conn, unsigned code, const char *why)
{
    uint8_t payload[WS_CONTROL_MAX];
    size_t wlen = why ? strlen(why) : 0;
    if (wlen > WS_CONTROL_MAX - 2)
        wlen = WS_CONTROL_MAX - 2;
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (wlen)
        memcpy(payload + 2, why, wlen);
    conn->flags |= WS_CONN_F_CLOSE_SENT;
    ws_metrics_close_sent(c->m, code);
    return ws_conn_send_control(c, conn, WS_OP_CLOSE, payload, 2 + wlen);
}

/* ---- slow consumers ---------------------------------------------------------------- *
 *
 * A member is slow when its socket stops taking what it is offered, not when one loop pass
 * queued more than the limits for it (a publisher's burst lands on every member's queue
 * before any send was tried). So a queue over max_queue or max_queue_frames starts an
 * episode and is judged in windows of slow_grace: a window passes when the sends during it
 * took at least what was over the limits at its start; one that ends with the queue still
 * over and that backlog not taken is a slow consumer, and slow_policy applies. A reader
 * that keeps up therefore absorbs a burst of up to about max_queue plus two windows of its
 * own throughput, and a stuck one holds at most max_queue plus the room's traffic in one
 * window (two, when a trickle got it past the first) before it is closed or trimmed. A
 * lone queued entry never counts as over, so one message larger than max_queue (within
 * max_message) still goes. slow_grace 0 judges at once: the limits are then hard. */

bool ws_conn_send_over(const ws_worker_t *c, const ws_conn_t *conn)
{
    const ws_sendq_t *q = &conn->sq;
    return q->count > 1 && (q->bytes > c->cfg->max_queue || q->frames > c->cfg->max_queue_frames);
}

/* Opens a judgment window now: its end must see the queue's current excess sent. */
static void window_start(ws_worker_t *c, ws_conn_t *conn)
{
    const ws_server_config_t *cfg = c->cfg;
    const ws_sendq_t *q = &conn->sq;
    conn->t_win = c->now_ms;
    conn->win_bytes = q->sent_bytes + (q->bytes > cfg->max_queue ? q->bytes - cfg->max_queue : 0);
    conn->win_frames = q->sent_frames +
                       (q->frames > cfg->max_queue_frames ? q->frames - cfg->max_queue_frames : 0);
    uint64_t end = conn->t_win + cfg->slow_grace_ms;
    if (cfg->slow_grace_ms && (!ws_timer_armed(&conn->timer) || conn->timer.deadline > end))
        ws_deadline_schedule(c, conn);
}

void ws_conn_send_shrank(ws_worker_t *c, ws_conn_t *conn)
{
    if ((conn->flags & WS_CONN_F_OVER) && !ws_conn_send_over(c, conn))
        conn->flags &= ~WS_CONN_F_OVER; /* the burst drained; the timer just finds nothing */
}

/* "--max-queue 1048576 by 5000 bytes": the limit the queue is over, and by how much. */
static void over_what(const ws_worker_t *c, const ws_conn_t *conn, char *out, size_t cap)
{
    const ws_server_config_t *cfg = c->cfg;
    if (conn->sq.bytes > cfg->max_queue)
        snprintf(out, cap, "--max-queue %llu by %llu bytes", (unsigned long long)cfg->max_queue,
                 (unsigned long long)(conn->sq.bytes - cfg->max_queue));
    else
        snprintf(out, cap, "--max-queue-frames %u by %u frames", cfg->max_queue_frames,
                 conn->sq.frames - cfg->max_queue_frames);
}

/* --slow-policy drop-oldest: drops the oldest data frames no send has started (a frame
 * partly sent is finished, control frames and responses stay) down to 3/4 of the limits, so
 * that a reader that stays behind costs one pass over its queue per quarter of it, not one
 * per message. */
static void drop_oldest(ws_worker_t *c, ws_conn_t *conn, const char *what, uint64_t over_ms)
{
    const ws_server_config_t *cfg = c->cfg;
    uint64_t bytes = 0, before = conn->sq.bytes;
    unsigned n = ws_sendq_drop_oldest(&conn->sq, cfg->max_queue / 4 * 3,
                                      cfg->max_queue_frames / 4 * 3, &c->brefs, &bytes);
    ws_conn_send_account(c, before, conn->sq.bytes);
    if (!n)
        return;
    ws_metric_add(&c->m->slow_drop_frames, n);
    ws_metric_add(&c->m->slow_drop_bytes, bytes);
    /* The first time at -v; a reader that stays behind does this once per window. */
    if (conn->flags & WS_CONN_F_DROPPED) {
        ws_log_debug("conn %u: slow consumer: dropped %u frames (%llu bytes), over %s for %llu ms",
                     conn->idx, n, (unsigned long long)bytes, what, (unsigned long long)over_ms);
    } else {
        conn->flags |= WS_CONN_F_DROPPED;
        ws_log_verbose("conn %u: slow consumer: dropped its %u oldest queued frames (%llu "
                       "bytes), over %s for %llu ms; later drops are logged at -vv",
                       conn->idx, n, (unsigned long long)bytes, what, (unsigned long long)over_ms);
    }
}

/* A window ended with the queue still over and its backlog not taken. */
static void slow_verdict(ws_worker_t *c, ws_conn_t *conn)
{
    char what[96];
    over_what(c, conn, what, sizeof(what));
    uint64_t over_ms = c->now_ms - conn->t_over;
    if (c->cfg->slow_policy == WS_SLOW_DROP_OLDEST) {
        drop_oldest(c, conn, what, over_ms);
        if (ws_conn_send_over(c, conn))
            window_start(c, conn); /* what is left cannot be dropped: judged again later */
        else
            conn->flags &= ~WS_CONN_F_OVER;
        return;
    }
    ws_metric_inc(&c->m->slow_closes);
    ws_log_verbose("conn %u: slow consumer: %llu bytes, %u frames queued, over %s for %llu ms "
                   "(its socket took %llu bytes meanwhile), closing with 1008",
                   conn->idx, (unsigned long long)conn->sq.bytes, conn->sq.frames, what,
                   (unsigned long long)over_ms,
                   (unsigned long long)(conn->sq.sent_bytes - conn->over_sent0));
    conn->flags &= ~WS_CONN_F_OVER;
    ws_conn_send_close_later(c, conn, WS_CLOSE_POLICY, "slow consumer");
}

/* Called after frames were queued on an open connection, and by its timer: starts an
 * episode when the queue went over the limits, ends it when it is back within them, and
 * judges it when its window is over. */
void ws_conn_send_backpressure(ws_worker_t *c, ws_conn_t *conn)
{
    if (!ws_conn_send_over(c, conn)) {
        conn->flags &= ~WS_CONN_F_OVER;
        return;
    }
    if (!(conn->flags & WS_CONN_F_OVER)) {
        conn->flags |= WS_CONN_F_OVER;
        conn->t_over = c->now_ms;
        conn->over_sent0 = conn->sq.sent_bytes;
        ws_metric_inc(&c->m->queue_over);
        ws_log_debug("conn %u: send queue over the limits (%llu bytes, %u frames)", conn->idx,
                     (unsigned long long)conn->sq.bytes, conn->sq.frames);
        window_start(c, conn);
    }
    if (c->now_ms < conn->t_win + c->cfg->slow_grace_ms)
        return;
    if (conn->sq.sent_bytes >= conn->win_bytes && conn->sq.sent_frames >= conn->win_frames)
        window_start(c, conn); /* it took the backlog: a burst, or a room faster than it */
    else
        slow_verdict(c, conn);
}

void ws_conn_send_deliver(ws_worker_t *c, ws_conn_t *conn, ws_bref_t *br)
{
    uint32_t len = br->block->len;
    if (conn->state != WS_CONN_OPEN || (conn->flags & WS_CONN_F_NEED_CLOSE)) {
        ws_bref_put(&c->brefs, br);
        return;
    }
    if (push(c, conn, WS_SQ_BREF, br->block->data, len, br) < 0) {
        ws_bref_put(&c->brefs, br);
        ws_conn_send_close_later(c, conn, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    ws_metric_add(&c->m->msgs_out, br->frames);
    ws_conn_send_backpressure(c, conn);
}

void ws_conn_send_close_later(ws_worker_t *c, ws_conn_t *conn, unsigned code, const char *why)
{
    if (conn->state != WS_CONN_OPEN || (conn->flags & WS_CONN_F_NEED_CLOSE))
        return;
    conn->close_code = (uint16_t)code;
    conn->close_why = why;
    ws_worker_pending(c, conn, WS_CONN_F_NEED_CLOSE);
}

/* ---- submitting -------------------------------------------------------------------- */

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

void ws_conn_send_iov(ws_worker_t *c, ws_conn_t *conn, ws_sendctx_t *s, const struct iovec *iov,
                      unsigned n, bool keep)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    if (n == 1) {
        io_uring_prep_send(sqe, conn->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        if (keep)
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
    if (conn->direct)
        sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_SEND, conn->idx, conn->gen));
    conn->flags |= WS_CONN_F_SEND;
    ws_metric_inc(&c->m->sends);
}

/* Submits one send or sendmsg of what the queue holds unsent. */
static void submit(ws_worker_t *c, ws_conn_t *conn)
{
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
        unsigned m = ws_sendq_coalesce(iov, n, s->cork, WS_CORK_BYTES, WS_CORK_SMALL);
        corked = m < n;
        n = m;
    }
    if (conn->transport == WS_TRANSPORT_KTLS)
        ktls_tx_account(c, s, iov, n, bytes);
    ws_conn_send_iov(c, conn, s, iov, n, corked);
}

bool ws_conn_send_start(ws_worker_t *c, ws_conn_t *conn)
{
    if ((conn->flags & WS_CONN_F_SEND) || conn->state == WS_CONN_DEAD)
        return false;
    if (conn->tp->send && conn->tp->send(c, conn))
        return false; /* the transport sent (or waits), or ended the stream its own way */
    if (ws_sendq_has_unsent(&conn->sq)) {
        submit(c, conn);
        return false;
    }
    return (conn->flags & WS_CONN_F_FLUSH_CLOSE) && ws_sendq_empty(&conn->sq);
}

void ws_conn_send_done(ws_worker_t *c, ws_conn_t *conn, int res)
{
    conn->flags &= ~WS_CONN_F_SEND;
    size_t sent = res > 0 ? (size_t)res : 0;
    uint64_t before = conn->sq.bytes;
    ws_sendq_complete(&conn->sq, sent, &c->brefs);
    ws_conn_send_account(c, before, conn->sq.bytes);
    ws_conn_send_shrank(c, conn);
    if (sent)
        conn->t_tx = c->now_ms; /* progress: the write-stall clock restarts */
    if (conn->tp->sent)
        conn->tp->sent(c, conn, sent);
    ws_metric_add(&c->m->bytes_out, sent);
    if (conn->sctx) {
        ws_worker_sctx_put(c, conn->sctx);
        conn->sctx = NULL;
    }
}
