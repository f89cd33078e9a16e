/* The per-core event loop: ring and resource setup, one io_uring_submit_and_wait per
 * iteration, completion dispatch by user_data kind, cross-core drain and wakeups, the timer
 * tick, end-of-iteration connection work, and the shutdown sequence. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backplane.h"
#include "cluster.h"
#include "broadcast.h"
#include "conn_send.h"
#include "disconnect.h"
#include "conn_io.h"
#include "probe.h"
#include "log.h"
#include "server_internal.h"

#define CQE_BATCH 256
/* After the shutdown deadline every connection is torn down; cancellations complete at
 * once, so a loop still waiting this much later means a completion was lost. */
#define STOP_GRACE_MS 2000

/* Linger: while data messages keep arriving from more than one connection (a pass of the
 * loop bringing messages from at least two senders, or consecutive passes with messages
 * from different ones: a busy room), keep taking input as long as completions follow each
 * other within LINGER_GAP_US, for at most LINGER_MAX_US, before flushing sends. Then each
 * recipient gets the frames of many senders in one send; each send costs the kernel a
 * loopback TCP transmit and a wakeup of the reader whatever its size. A single sender
 * (echo, a lone publisher) never waits, and neither does anyone once a pass brings no
 * message; what a linger adds to latency is one gap once the input pauses. */
#define LINGER_GAP_US 20
#define LINGER_MAX_US 100

/* Catch-up: on a DEFER_TASKRUN ring the kernel runs at most 20 deferred completions per
 * pass of io_uring_enter (IO_LOCAL_TW_DEFAULT_MAX, Linux 6.13+) and leaves the rest for the
 * next call, so a burst of receives reaches the CQ a few dozen at a time. Flushing sends
 * after each of those slices sends every room member a slice of the burst: at 500 all-to-all
 * clients, 14 sends per member per round instead of 2 or 3. So when a pass brought at least
 * CATCHUP_MIN completions, the loop asks for more (io_uring_get_events, no wait) until a
 * call brings fewer, at most CATCHUP_CALLS times, before it flushes. */
#define CATCHUP_MIN   16
#define CATCHUP_CALLS 64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
    return now_ns() / 1000000;
}

static void xdrain(ws_worker_t *c)
{
    uint64_t n = 0;
    for (unsigned src = 0; src < c->ncores; src++) {
        if (src == c->id)
            continue;
        ws_xq_t *q = ws_xcore_q(&c->srv->xcore, src, c->id);
        ws_xcore_q_rearm(q);
        ws_xev_t ev;
        while (ws_xcore_q_pop(q, &ev)) {
            if (ev.type == WS_XEV_DISCONNECT)
                ws_disconnect_on_event(c, &ev);
            else
                ws_broadcast_on_event(c, &ev);
            n++;
        }
    }
    if (n)
        ws_metric_add(&c->m->xevents, n);
}

/* ---- accept, tick, stop ------------------------------------------------------------ */

static void arm_accept(ws_worker_t *c, unsigned i)
{
    ws_listen_t *l = &c->lsn[i];
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    /* The peer address is wanted only for max_conns_per_ip (see ws_listen_t). */
    bool multishot = c->multishot_accept && !c->cfg->max_conns_per_ip;
    struct sockaddr *sa = NULL;
    socklen_t *salen = NULL;
    if (c->cfg->max_conns_per_ip) {
        l->peer_len = sizeof(l->peer);
        sa = (struct sockaddr *)&l->peer;
        salen = &l->peer_len;
    }
    if (ws_worker_direct_for(c, i == WS_LSN_TLS)) {
        if (multishot)
            io_uring_prep_multishot_accept_direct(sqe, l->fd, NULL, NULL, 0);
        else
            ws_prep_accept_direct_alloc(sqe, l->fd, sa, salen);
    } else {
        if (multishot)
            io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
        else
            io_uring_prep_accept(sqe, l->fd, sa, salen, SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_ACCEPT, i, 0));
    l->armed = true;
    l->retry = false;
}

static void arm_accepts(ws_worker_t *c)
{
    for (unsigned i = 0; i < WS_LSN_N; i++) {
        if (c->lsn[i].fd >= 0)
            arm_accept(c, i);
    }
}

static bool accepts_armed(const ws_worker_t *c)
{
    for (unsigned i = 0; i < WS_LSN_N; i++) {
        if (c->lsn[i].armed)
            return true;
    }
    return false;
}

static void close_listener(ws_worker_t *c, unsigned i)
{
    if (c->lsn[i].fd >= 0) {
        close(c->lsn[i].fd);
        c->lsn[i].fd = -1;
    }
}

static void on_accept(ws_worker_t *c, unsigned i, int res, unsigned flags)
{
    ws_listen_t *l = &c->lsn[i];
    bool direct = ws_worker_direct_for(c, i == WS_LSN_TLS);
    if (!(flags & IORING_CQE_F_MORE))
        l->armed = false;
    if (res >= 0) {
        if (c->stopping) {
            if (direct)
                ws_worker_close_direct(c, (unsigned)res);
            else
                close(res);
        } else {
            bool with_peer = c->cfg->max_conns_per_ip != 0;
            ws_conn_io_accept(c, res, i == WS_LSN_TLS,
                              with_peer ? (struct sockaddr *)&l->peer : NULL,
                              with_peer ? l->peer_len : 0);
        }
    } else if (res == -EINVAL && c->multishot_accept && !l->armed) {
        c->multishot_accept = false;
        ws_log_warn("multishot accept refused by the kernel: using single-shot accepts");
    } else if (res == -ENFILE || res == -EMFILE || res == -ENOMEM || res == -ENOBUFS) {
        /* Sustained overload would log this every tick: once per 10 s is enough. */
        if (c->now_ms >= c->accept_warned_ms + 10000 || !c->accept_warned_ms) {
            c->accept_warned_ms = c->now_ms ? c->now_ms : 1;
            ws_log_warn("accept: %s (%u connections on this core): pausing accepts until the "
                        "next tick",
                        strerror(-res), c->nconns);
        }
        if (!l->armed)
            l->retry = true;
        return;
    } else if (res != -ECANCELED) {
        ws_log_debug("accept: %s", strerror(-res));
    }
    if (l->armed)
        return;
    if (c->stopping)
        close_listener(c, i);
    else
        arm_accept(c, i);
}

static void arm_tick(ws_worker_t *c)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    io_uring_prep_timeout(sqe, &c->tick_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_TICK, 0, 0));
    c->tick_armed = true;
}

static void stop_conn(ws_worker_t *c, ws_conn_t *conn, bool force)
{
    if (force) {
        ws_conn_teardown(c, conn);
        return;
    }
    switch (conn->state) {
    case WS_CONN_HTTP:
        /* Answers already queued (a keep-alive API connection's) still go out; a request not
         * yet answered is dropped unanswered, so its client knows to retry it. */
        if (ws_conn_send_idle(conn))
            ws_conn_teardown(c, conn);
        else
            ws_conn_finish(c, conn);
        break;
    case WS_CONN_OPEN:
        ws_conn_close(c, conn, WS_CLOSE_GOING_AWAY, "server shutdown", false);
        break;
    default:
        break;
    }
}

static void for_each_conn(ws_worker_t *c, bool force)
{
    for (uint32_t i = 0; i < c->nslots; i++) {
        ws_conn_t *conn = c->slots[i].conn;
        if (conn)
            stop_conn(c, conn, force);
    }
}

static void arm_stop(ws_worker_t *c)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(c);
    io_uring_prep_read(sqe, c->stop_efd, &c->stop_buf, sizeof(c->stop_buf), 0);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_STOP, 0, 0));
    c->stop_armed = true;
}

static void begin_stop(ws_worker_t *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    if (c->bp)
        ws_backplane_stop(c->bp);
    if (c->stop_armed) {
        /* Stopping for another reason (a fatal ring error): the read must not outlive us. */
        struct io_uring_sqe *sqe = ws_worker_sqe(c);
        io_uring_prep_cancel64(sqe, ws_ud_make(WS_UD_STOP, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_CANCEL, 0, 0));
    }
    c->stop_deadline = c->now_ms + c->cfg->shutdown_timeout_ms;
    ws_log_debug("stopping: %u connections", c->nconns);
    for (unsigned i = 0; i < WS_LSN_N; i++) {
        if (c->lsn[i].armed) {
            struct io_uring_sqe *sqe = ws_worker_sqe(c);
            io_uring_prep_cancel64(sqe, ws_ud_make(WS_UD_ACCEPT, i, 0), 0);
            io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_CANCEL, 0, 0));
        } else {
            close_listener(c, i);
        }
    }
    for_each_conn(c, false);
}

static void on_tick(ws_worker_t *c)
{
    ws_timer_fire(&c->wheel, c->now_ms, c);
    for (unsigned i = 0; i < WS_LSN_N; i++) {
        if (c->lsn[i].retry && !c->stopping && !c->lsn[i].armed)
            arm_accept(c, i);
    }
    if (c->stopping && !c->forced && c->now_ms >= c->stop_deadline) {
        c->forced = true;
        if (c->nconns)
            ws_log_info("shutdown timeout: dropping %u connections", c->nconns);
        for_each_conn(c, true);
    }
}

/* ---- the loop's own completions ------------------------------------------------------ */

static void on_accept_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)owner;
    if (ws_ud_idx(e->ud) < WS_LSN_N)
        on_accept(c, ws_ud_idx(e->ud), e->res, e->flags);
}

static void on_tick_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)owner;
    (void)e;
    c->tick_armed = false;
    c->tick_due = true;
    if (!c->stopping || c->nconns || accepts_armed(c) || c->stop_armed)
        arm_tick(c);
}

static void on_xwake_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)c;
    (void)owner;
    (void)e; /* the queues are drained every iteration */
}

static void on_stop_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)owner;
    c->stop_armed = false;
    if (e->res < 0 && e->res != -ECANCELED)
        ws_log_error("stop eventfd read: %s: stopping", strerror(-e->res));
    begin_stop(c);
}

/* Only failed MSG_RINGs post a completion (CQE_SKIP_SUCCESS). Re-open the wakeup flag and
 * retry on the next iteration; meanwhile the destination's own tick bounds the delay. */
static void on_msg_sent_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)owner;
    unsigned dst = ws_ud_idx(e->ud);
    ws_log_warn("cross-core wakeup to core %u failed: %s; retrying", dst, strerror(-e->res));
    if (dst < c->ncores && dst != c->id) {
        atomic_store_explicit(&ws_xcore_q(&c->srv->xcore, c->id, dst)->wake_pending, 0,
                              memory_order_relaxed);
        if (!c->xdirty[dst]) {
            c->xdirty[dst] = 1;
            c->xdirty_list[c->nxdirty++] = dst;
        }
    }
}

/* Cancels, closes of direct descriptors and the tick's removal: only failures are news. */
static void on_done_cqe(ws_worker_t *c, void *owner, const ws_cqe_t *e)
{
    (void)c;
    (void)owner;
    if (e->res < 0 && e->res != -ENOENT && e->res != -EALREADY && e->res != -ENOTCONN)
        ws_log_debug("%s: %s", ws_ud_kind(e->ud) == WS_UD_CLOSE ? "close" : "cancel",
                     strerror(-e->res));
}

static void set_handlers(ws_worker_t *c)
{
    static const struct {
        unsigned kind;
        ws_handler_fn *fn;
        const char *name;
    } own[] = {
        {WS_UD_ACCEPT, on_accept_cqe, "accept"},   {WS_UD_TICK, on_tick_cqe, "tick"},
        {WS_UD_XWAKE, on_xwake_cqe, "wakeup"},     {WS_UD_STOP, on_stop_cqe, "stop"},
        {WS_UD_MSG_SENT, on_msg_sent_cqe, "wake"}, {WS_UD_CANCEL, on_done_cqe, "cancel"},
        {WS_UD_CLOSE, on_done_cqe, "close"},       {WS_UD_TICK_DEL, on_done_cqe, "tick-del"},
    };
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        ws_worker_handler_set(c, own[i].kind, own[i].fn, NULL, own[i].name);
    ws_conn_io_register(c);
}

static void dispatch(ws_worker_t *c, const ws_cqe_t *e)
{
    unsigned kind = ws_ud_kind(e->ud);
    const ws_handler_t *h = kind < WS_UD_KIND_MAX ? &c->handlers[kind] : NULL;
    if (h && h->fn)
        h->fn(c, h->owner, e);
    else
        ws_log_error("completion with unknown user_data %#llx", (unsigned long long)e->ud);
}

static void process_pending(ws_worker_t *c)
{
    ws_dlink_t *n;
    while ((n = ws_dlink_pop(&c->pending)))
        ws_conn_io_pending(c, ws_container_of(n, ws_conn_t, pending));
}

/* ---- setup, loop, teardown --------------------------------------------------------- */

int ws_loop_setup(ws_worker_t *c)
{
    const ws_server_config_t *cfg = c->cfg;
    const ws_features_t *f = &c->srv->feat;
    int rc;
    c->now_ms = now_ms();
    rc = ws_probe_ring_create(&c->ring, cfg->sq_entries, cfg->cq_entries, f->setup_flags,
                              &c->setup_flags, true);
    if (rc < 0) {
        ws_log_error("io_uring setup: %s", strerror(-rc));
        return rc;
    }
    c->ring_ok = true;
    c->ring_fd = c->ring.ring_fd;
    /* Saves the fd lookup on every io_uring_enter; optional (5.18). */
    c->ring_fd_registered = io_uring_register_ring_fd(&c->ring) == 1;
    c->multishot_recv = f->multishot_recv;
    c->multishot_accept = f->multishot_accept;
    if (cfg->use_direct_fds && f->direct_fds) {
        rc = io_uring_register_files_sparse(&c->ring, c->nslots);
        if (rc == 0) {
            c->direct = true;
            c->files_registered = true;
        } else if (c->id == 0) {
            ws_log_warn("direct descriptors: registering %u slots failed (%s): using regular fds",
                        c->nslots, strerror(-rc));
        }
    }
    rc = ws_bufring_init(&c->bufs, &c->ring, WS_BGID, cfg->recv_buf_size, cfg->recv_bufs,
                         cfg->recv_bufs_max);
    if (rc < 0) {
        ws_log_error("buffer ring: %s", strerror(-rc));
        return rc;
    }
    ws_metric_add(&c->m->recv_bufs, c->bufs.nbufs);
    c->slots = calloc(c->nslots, sizeof(*c->slots));
    c->xdirty = calloc(c->ncores, 1);
    c->xdirty_list = calloc(c->ncores, sizeof(*c->xdirty_list));
    if (!c->slots || !c->xdirty || !c->xdirty_list)
        return -ENOMEM;
    for (uint32_t i = 0; i < c->nslots; i++)
        c->slots[i].next_free = i + 1 < c->nslots ? i + 1 : UINT32_MAX;
    c->free_head = c->nslots ? 0 : UINT32_MAX;
    rc = ws_room_map_init(&c->rooms);
    if (rc < 0)
        return rc;
    ws_bref_pool_init(&c->brefs);
    ws_qlink_init_head(&c->heads);
    c->max_heads = (cfg->max_pending + c->ncores - 1) / c->ncores;
    ws_timer_wheel_init(&c->wheel, c->now_ms, cfg->tick_ms);
    c->tick_ts.tv_sec = cfg->tick_ms / 1000;
    c->tick_ts.tv_nsec = (long long)(cfg->tick_ms % 1000) * 1000000;
    set_handlers(c);
    return 0;
}

/* Dispatches every completion in the CQ; returns how many. */
static unsigned drain_cq(ws_worker_t *c)
{
    ws_cqe_t batch[CQE_BATCH];
    struct io_uring_cqe *cqes[CQE_BATCH];
    unsigned n, total = 0;
    while ((n = io_uring_peek_batch_cqe(&c->ring, cqes, CQE_BATCH)) > 0) {
        /* Copy out and release the CQ slots first: handlers may submit (when the SQ is
         * full), and inline completions must find room in the CQ. */
        for (unsigned i = 0; i < n; i++) {
            batch[i].ud = cqes[i]->user_data;
            batch[i].res = cqes[i]->res;
            batch[i].flags = cqes[i]->flags;
        }
        io_uring_cq_advance(&c->ring, n);
        for (unsigned i = 0; i < n; i++)
            dispatch(c, &batch[i]);
        total += n;
        if (n < CQE_BATCH)
            break;
    }
    return total;
}

/* See CATCHUP_MIN: n is what the pass has dispatched so far. */
static void catch_up(ws_worker_t *c, unsigned n)
{
    for (unsigned i = 0; i < CATCHUP_CALLS && n >= CATCHUP_MIN; i++) {
        int rc = io_uring_submit_and_get_events(&c->ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            break;
        n = drain_cq(c);
    }
}

/* See LINGER_GAP_US: gathers what keeps arriving (the sends wait in the pending list
 * meanwhile; everything else submitted so far goes out now). */
static void linger(ws_worker_t *c)
{
    uint64_t deadline = now_ns() + LINGER_MAX_US * 1000u;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline)
            break;
        uint64_t left = deadline - now;
        if (left > LINGER_GAP_US * 1000u)
            left = LINGER_GAP_US * 1000u;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = (long long)left};
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&c->ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -EINTR)
            break; /* -ETIME: the input paused */
        unsigned n = drain_cq(c);
        if (n == 0)
            break;
        catch_up(c, n);
    }
    c->now_ms = now_ms();
}

static const ws_backplane_ops_t backplane_ops = {
    .deliver = ws_broadcast_from_backplane,
    .gap = ws_broadcast_backplane_gap,
};

void ws_loop_run(ws_worker_t *c)
{
    if (c->srv->bp_conf &&
        !(c->bp = ws_backplane_new(
              c, c->srv->bp_conf, &backplane_ops, &c->srv->bp_up[c->id],
              c->srv->bp_slots ? c->srv->bp_slots + (size_t)c->id * WS_CLUSTER_SLOTS : NULL))) {
        ws_log_error("core %u: cannot start the backplane: stopping", c->id);
        c->err = -ENOMEM;
        begin_stop(c);
    }
    arm_accepts(c);
    arm_tick(c);
    arm_stop(c);
    for (;;) {
        ws_worker_xflush(c);
        int rc = io_uring_submit_and_wait(&c->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME) {
            if (!c->err) {
                ws_log_error("io_uring_submit_and_wait: %s: stopping this core", strerror(-rc));
                c->err = rc;
            }
            /* Keep looping (the connections still need their completions), but do not spin
             * on a ring that keeps failing. */
            begin_stop(c);
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
        c->now_ms = now_ms();
        c->enobufs_seen = false;
        uint64_t msgs = atomic_load_explicit(&c->m->msgs_in, memory_order_relaxed);
        catch_up(c, drain_cq(c));
        if (atomic_load_explicit(&c->m->msgs_in, memory_order_relaxed) == msgs)
            c->burst_senders = 0; /* a pass without messages ends the burst */
        else if (c->burst_senders >= 2 && c->pending && !c->stopping)
            linger(c);
        if (c->ncores > 1)
            xdrain(c);
        if (c->tick_due) {
            c->tick_due = false;
            on_tick(c);
        }
        ws_broadcast_flush(c);
        process_pending(c);
        if (c->stopping) {
            if (c->nconns == 0 && !accepts_armed(c) && !c->stop_armed)
                break;
            if (c->now_ms >= c->stop_deadline + STOP_GRACE_MS) {
                ws_log_error("shutdown: %u connections still have operations in flight", c->nconns);
                break;
            }
        }
    }
    /* Let other cores see the last LEAVEs (they are drained at exit if nobody reads them). */
    ws_worker_xflush(c);
    io_uring_submit(&c->ring);
}

void ws_loop_teardown_thread(ws_worker_t *c)
{
    for (unsigned i = 0; i < WS_LSN_N; i++)
        close_listener(c, i);
    if (c->ring_ok) {
        /* Registration calls must come from the ring's owner (SINGLE_ISSUER). */
        ws_bufring_free(&c->bufs, &c->ring);
        if (c->ring_fd_registered)
            io_uring_unregister_ring_fd(&c->ring);
    } else {
        ws_bufring_free(&c->bufs, NULL);
    }
}

void ws_loop_free(ws_worker_t *c)
{
    ws_backplane_free(c->bp);
    c->bp = NULL;
    if (c->nconns == 0 && c->brefs.live)
        ws_log_error("core %u: %zu block references leaked", c->id, c->brefs.live);
    if (c->rooms.buckets)
        ws_room_map_free(&c->rooms);
    ws_bref_pool_free(&c->brefs);
    while (c->sctx_free) {
        ws_sendctx_t *s = c->sctx_free;
        c->sctx_free = s->next_free;
        free(s);
    }
    free(c->slots);
    c->slots = NULL;
    free(c->xdirty);
    free(c->xdirty_list);
    c->xdirty = NULL;
    c->xdirty_list = NULL;
    if (c->ring_ok)
        io_uring_queue_exit(&c->ring);
    c->ring_ok = false;
}
