/* One worker (a thread with its own ring): its io_uring, listeners, buffer ring, connection
 * table, timer wheel, rooms and cross-core endpoints, and the low-level services every part
 * above uses (net/worker.c); net/loop.c drives it. Everything in ws_worker_t is
 * touched only by the core's own thread, except `m` (metrics, read by /metrics renderers on
 * other cores) and the room structs other cores read by name under the protocol in room.h. */
#ifndef URINGWS_NET_WORKER_H
#define URINGWS_NET_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bufring.h"
#include "compat.h"
#include "conn.h"
#include "list.h"
#include "metrics.h"
#include "room.h"
#include "sendq.h"
#include "timer.h"
#include "udata.h"
#include "uringws/http.h"
#include "uringws/server.h"
#include "xcore.h"

struct ws_server;

#define WS_BGID 0 /* buffer group of the core's receive ring */

/* A send context: the iovec array and msghdr of one send in flight, and its cork area.
 * Small queued frames (at most WS_CORK_SMALL bytes each) are copied into the cork area,
 * WS_CORK_BYTES per context, so that a batch of them is one iovec (see ws_sendq_coalesce);
 * larger frames stay by reference. Pooled per core; a connection holds one (conn->sctx)
 * while its send in flight is a sendmsg or a send out of the cork area; net/conn_send.c
 * takes and gives them back. */
#define WS_CORK_BYTES 4096
#define WS_CORK_SMALL 512

typedef struct ws_sendctx {
    struct ws_sendctx *next_free;
    struct msghdr msg;
    uint8_t *cork;      /* WS_CORK_BYTES, after the iovecs in the same allocation */
    struct iovec iov[]; /* cfg->send_max_iov */
} ws_sendctx_t;

/* The core's listening sockets, plain ws and TLS, each with its own multishot accept; the
 * accept's user_data carries the index. */
enum ws_lsn_kind {
    WS_LSN_PLAIN,
    WS_LSN_TLS, /* accepted as regular fds always: the kTLS hand-off needs setsockopt */
    WS_LSN_N,
};

typedef struct ws_listen {
    int fd;     /* -1 when this kind is not served (or already closed) */
    bool armed; /* an accept is in flight */
    bool retry; /* re-arm the accept on the next tick (after ENFILE/EMFILE) */
    /* With max_conns_per_ip the accept must report the peer address. A multishot accept
     * would write every connection's address into one buffer, overwritten before its CQE is
     * read, so that mode uses single-shot accepts, one in flight, each with this buffer. */
    struct sockaddr_storage peer;
    socklen_t peer_len;
} ws_listen_t;

/* A completion, copied out of the CQ before it is handled. */
typedef struct ws_cqe {
    uint64_t ud;
    int res;
    unsigned flags;
} ws_cqe_t;

struct ws_worker;
/* The owner of a user_data kind: the loop hands it every completion of that kind. */
typedef void ws_handler_fn(struct ws_worker *c, void *owner, const ws_cqe_t *e);
typedef struct ws_handler {
    ws_handler_fn *fn; /* NULL: the kind has no owner (its completions are logged, dropped) */
    void *owner;
    const char *name; /* for logs */
} ws_handler_t;

typedef struct ws_conn_slot {
    ws_conn_t *conn;    /* NULL when free */
    uint32_t gen;       /* bumped on every free; completions carry the gen they were made for */
    uint32_t next_free; /* free list link (index), UINT32_MAX ends it */
} ws_conn_slot_t;

typedef struct ws_worker {
    unsigned id;
    unsigned ncores;
    struct ws_server *srv;
    struct ws_backplane *bp; /* the core's Redis backplane (net/backplane.c); NULL: one node */
    const ws_server_config_t *cfg;
    ws_metrics_t *m;

    struct io_uring ring;
    bool ring_ok;
    int ring_fd; /* the real fd, for other cores' MSG_RING */
    bool ring_fd_registered;
    unsigned setup_flags;
    bool direct; /* accepted sockets are direct descriptors */
    bool files_registered;
    bool multishot_recv; /* else single-shot recv re-armed after each completion */
    bool multishot_accept;

    ws_handler_t handlers[WS_UD_KIND_MAX]; /* by user_data kind (udata.h) */

    ws_listen_t lsn[WS_LSN_N];
    uint64_t accept_warned_ms; /* last "accept: EMFILE" warning (rate-limited) */

    ws_bufring_t bufs;
    bool enobufs_seen; /* the ring already grew in this loop iteration */
    /* Input burst (see LINGER_GAP_US in loop.c): the connection of the last data message
     * and how many times the sender changed over consecutive passes that brought messages. */
    uint32_t burst_conn;
    uint32_t burst_senders;

    ws_conn_slot_t *slots;
    uint32_t nslots;
    uint32_t free_head;
    uint32_t nconns; /* live connection structs (dead ones waiting for completions too) */

    uint64_t now_ms;
    ws_wheel_t wheel;
    struct __kernel_timespec tick_ts;
    bool tick_armed;
    bool tick_due; /* the tick completed in this pass: timers run after the completions */

    ws_dlink_t *pending; /* connections with end-of-iteration work */
    ws_dlink_t *batched; /* rooms holding this pass's messages (ws_room_t.batch_link) */
    ws_qlink_t heads;    /* connections in WS_CONN_HTTP, oldest first (max_pending) */
    uint32_t nheads;
    uint32_t max_heads; /* this core's share of max_pending */

    ws_roommap_t rooms;
    ws_bref_pool_t brefs;
    ws_sendctx_t *sctx_free;
    unsigned sctx_live;

    /* Cross-core: destinations pushed to in this iteration (each wakes at most once). */
    uint8_t *xdirty;
    unsigned *xdirty_list;
    unsigned nxdirty;

    int stop_efd;      /* eventfd written by ws_server_stop; a read on it is always armed */
    uint64_t stop_buf; /* the armed read's 8 bytes */
    bool stop_armed;
    bool stopping;
    bool forced; /* shutdown_timeout passed: everything left was torn down */
    uint64_t stop_deadline;
    int err; /* first fatal error, reported by ws_server_wait */

    ws_http_request_t req; /* scratch for the HTTP parser (4 KiB: kept off the stack) */
} ws_worker_t;

/* An SQE; submits (once, without waiting) when the SQ is full. Never NULL: see worker.c. */
struct io_uring_sqe *ws_worker_sqe(ws_worker_t *c);
/* Closes the socket in direct-descriptor slot `slot` so that its peer sees the FIN now:
 * shutdown first, then the close (see worker.c for why). Both complete as WS_UD_CLOSE. */
void ws_worker_close_direct(ws_worker_t *c, unsigned slot);

/* A data message arrived from connection idx (for the linger heuristic). */
static inline void ws_worker_note_sender(ws_worker_t *c, uint32_t idx)
{
    if (c->burst_conn != idx || c->burst_senders == 0) {
        c->burst_conn = idx;
        c->burst_senders++;
    }
}

/* Handler table. The fixed kinds (enum ws_ud_kind) are set by their modules at setup;
 * another owner of I/O on this ring (a pipe, a timerfd, an outbound client) takes a free
 * kind with ws_worker_handler_add and tags its SQEs ws_ud_make(kind, idx, gen); idx and gen
 * are its own. Both return 0 / the kind, or -EINVAL / -ENOSPC. */
int ws_worker_handler_set(ws_worker_t *c, unsigned kind, ws_handler_fn *fn, void *owner,
                          const char *name);
int ws_worker_handler_add(ws_worker_t *c, ws_handler_fn *fn, void *owner, const char *name);
/* Gives a kind back (its owner is gone and none of its operations is in flight). */
void ws_worker_handler_del(ws_worker_t *c, unsigned kind);

/* Connection table. */
static inline ws_conn_t *ws_worker_conn(ws_worker_t *c, uint64_t ud)
{
    uint32_t idx = ws_ud_idx(ud);
    if (idx >= c->nslots)
        return NULL;
    ws_conn_slot_t *s = &c->slots[idx];
    if (!s->conn || !ws_ud_gen_eq(ud, s->gen))
        return NULL;
    return s->conn;
}
/* Claims a slot for conn (sets conn->idx/gen). -ENFILE when the table is full. */
int ws_worker_slot_alloc(ws_worker_t *c, ws_conn_t *conn);
void ws_worker_slot_free(ws_worker_t *c, ws_conn_t *conn);

/* Marks conn as having end-of-iteration work (flag is one of WS_CONN_F_NEED_*). */
static inline void ws_worker_pending(ws_worker_t *c, ws_conn_t *conn, uint32_t flag)
{
    conn->flags |= flag;
    if (!ws_dlink_linked(&conn->pending))
        ws_dlink_push(&c->pending, &conn->pending);
}

/* Send contexts. */
ws_sendctx_t *ws_worker_sctx_get(ws_worker_t *c);
void ws_worker_sctx_put(ws_worker_t *c, ws_sendctx_t *s);

/* Cross-core: queue an event for core dst (never this core). */
void ws_worker_xpush(ws_worker_t *c, unsigned dst, const ws_xev_t *ev);
/* One MSG_RING wakeup per destination pushed to since the last call (the loop calls it
 * before each submit). */
void ws_worker_xflush(ws_worker_t *c);

#endif
