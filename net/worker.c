/* A worker's low-level services, used by everything above it and calling nothing above
 * it: SQEs, the connection slot table, pooled send contexts, cross-core pushes and their
 * wakeups, and the close of a direct descriptor. */
#include "worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "server_internal.h"

#define SCTX_POOL_KEEP 1024

/* ---- SQEs, slots, pools ------------------------------------------------------------ */

struct io_uring_sqe *ws_worker_sqe(ws_worker_t *c)
{
    for (int tries = 0;; tries++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
        if (sqe)
            return sqe;
        /* SQ full: flush it now (this is the only submit besides the loop's own). */
        int rc = io_uring_submit(&c->ring);
        if (rc == -EAGAIN || rc == -EBUSY)
            (void)io_uring_get_events(&c->ring); /* flush overflowed CQEs, then retry */
        else if (rc < 0 && rc != -EINTR)
            ws_log_error("io_uring_submit: %s", strerror(-rc));
        if (tries == 1000) {
            /* The kernel takes no SQEs at all: nothing can be cancelled or closed any more,
             * so no clean state is reachable. Only possible when kernel memory is gone. */
            ws_log_error("io_uring submission queue stuck; aborting");
            abort();
        }
    }
}

int ws_worker_handler_set(ws_worker_t *c, unsigned kind, ws_handler_fn *fn, void *owner,
                          const char *name)
{
    if (kind == WS_UD_NONE || kind >= WS_UD_KIND_MAX || !fn)
        return -EINVAL;
    c->handlers[kind] = (ws_handler_t){fn, owner, name};
    return 0;
}

int ws_worker_handler_add(ws_worker_t *c, ws_handler_fn *fn, void *owner, const char *name)
{
    for (unsigned k = WS_UD_FIXED_MAX; k < WS_UD_KIND_MAX; k++) {
        if (!c->handlers[k].fn)
            return ws_worker_handler_set(c, k, fn, owner, name) < 0 ? -EINVAL : (int)k;
    }
    return -ENOSPC;
}

void ws_worker_handler_del(ws_worker_t *c, unsigned kind)
{
    if (kind >= WS_UD_FIXED_MAX && kind < WS_UD_KIND_MAX)
        c->handlers[kind] = (ws_handler_t){NULL, NULL, NULL};
}

int ws_worker_slot_alloc(ws_worker_t *c, ws_conn_t *conn)
{
    if (c->free_head == UINT32_MAX)
        return -ENFILE;
    uint32_t idx = c->free_head;
    ws_conn_slot_t *s = &c->slots[idx];
    c->free_head = s->next_free;
    s->conn = conn;
    s->next_free = UINT32_MAX;
    conn->idx = idx;
    conn->gen = s->gen;
    c->nconns++;
    return 0;
}

void ws_worker_slot_free(ws_worker_t *c, ws_conn_t *conn)
{
    ws_conn_slot_t *s = &c->slots[conn->idx];
    s->conn = NULL;
    s->gen = (s->gen + 1) & WS_UD_GEN_MASK; /* completions for the old owner now miss */
    s->next_free = c->free_head;
    c->free_head = conn->idx;
    c->nconns--;
}

ws_sendctx_t *ws_worker_sctx_get(ws_worker_t *c)
{
    ws_sendctx_t *s = c->sctx_free;
    if (s) {
        c->sctx_free = s->next_free;
    } else {
        size_t iov_bytes = sizeof(struct iovec) * c->cfg->send_max_iov;
        s = malloc(sizeof(*s) + iov_bytes + WS_CORK_BYTES);
        if (!s)
            return NULL;
        s->cork = (uint8_t *)s->iov + iov_bytes;
    }
    s->next_free = NULL;
    c->sctx_live++;
    return s;
}

void ws_worker_sctx_put(ws_worker_t *c, ws_sendctx_t *s)
{
    c->sctx_live--;
    s->next_free = c->sctx_free;
    c->sctx_free = s;
}

/* ---- cross-core -------------------------------------------------------------------- */

void ws_worker_xpush(ws_worker_t *c, unsigned dst, const ws_xev_t *ev)
{
    ws_xcore_q_push(ws_xcore_q(&c->srv->xcore, c->id, dst), ev);
    if (!c->xdirty[dst]) {
        c->xdirty[dst] = 1;
        c->xdirty_list[c->nxdirty++] = dst;
    }
}

/* One MSG_RING per destination that got events in this iteration, and none while the
 * destination still has an unanswered wakeup from us. */
void ws_worker_xflush(ws_worker_t *c)
{
    for (unsigned i = 0; i < c->nxdirty; i++) {
        unsigned dst = c->xdirty_list[i];
        c->xdirty[dst] = 0;
        if (!ws_xcore_q_need_wake(ws_xcore_q(&c->srv->xcore, c->id, dst)))
            continue;
        struct io_uring_sqe *sqe = ws_worker_sqe(c);
        io_uring_prep_msg_ring(sqe, c->srv->cores[dst].ring_fd, 0,
                               ws_ud_make(WS_UD_XWAKE, c->id, 0), 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_MSG_SENT, dst, 0));
        ws_metric_inc(&c->m->xwakes);
    }
    c->nxdirty = 0;
}

/* Before Linux 6.4, a file removed from the fixed-file table is released by a delayed work
 * (io_rsrc_put_work, queued with a delay of HZ), so a direct descriptor's socket lives on,
 * and its FIN waits, up to a second after IORING_OP_CLOSE completed: the peer sees its EOF
 * late (on 6.1 a close timeout of 500 ms became about 1.5 s). A shutdown sends the FIN at
 * once; the hard link runs the close whatever the shutdown's result (ENOTCONN after a
 * reset). Both SQEs go in one submission so the link holds. */
void ws_worker_close_direct(ws_worker_t *c, unsigned slot)
{
    if (io_uring_sq_space_left(&c->ring) < 2)
        (void)io_uring_submit(&c->ring);
    bool linked = io_uring_sq_space_left(&c->ring) >= 2;
    struct io_uring_sqe *sqe;
    if (linked) {
        sqe = ws_worker_sqe(c);
        io_uring_prep_shutdown(sqe, (int)slot, SHUT_RDWR);
        sqe->flags |= IOSQE_FIXED_FILE | IOSQE_IO_HARDLINK;
        io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_CLOSE, 0, 0));
    }
    sqe = ws_worker_sqe(c);
    io_uring_prep_close_direct(sqe, slot);
    io_uring_sqe_set_data64(sqe, ws_ud_make(WS_UD_CLOSE, 0, 0));
}
