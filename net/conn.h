/* A connection and its life cycle (net/conn.c): HTTP request head -> WebSocket (or one
 * plain HTTP response) -> close handshake -> lingering close -> teardown, and its deadlines.
 * A connection belongs to one core and is only touched by it. It is freed only when no
 * operation of it is in flight any more, so a completion always finds either its connection
 * or a freed slot with a newer generation. What drives it: net/conn_io.c (accept,
 * completions, input by state); what it sits on: a transport (plain here, TLS in
 * net/conn_tls.c) and, once upgraded, an endpoint (net/endpoint.c). */
#ifndef URINGWS_NET_CONN_H
#define URINGWS_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "list.h"
#include "sendq.h"
#include "timer.h"
#include "http_head.h"
#include "uringws/parser.h"

struct ws_worker;
struct ws_room;
struct ws_sendctx;
struct ws_conn_tls;
struct ws_conn;
struct io_uring_sqe;
struct ws_block;

/* The transport under a connection: plain TCP (net/conn_io.c) or TLS (net/conn_tls.c).
 * Nothing above a transport asks which one a connection has. NULL hooks are not needed by
 * that transport. */
typedef struct ws_transport_ops {
    const char *name;
    /* res bytes from the recv (ciphertext for TLS); p may be modified in place */
    void (*input)(struct ws_worker *c, struct ws_conn *conn, uint8_t *p, size_t n);
    /* fills the recv SQE itself (kernel TLS RX needs recvmsg); false: a plain recv */
    bool (*prep_recv)(struct ws_worker *c, struct ws_conn *conn, struct io_uring_sqe *sqe);
    /* the recv ended with res: true when the transport takes over (the kTLS hand-off) */
    bool (*recv_ended)(struct ws_worker *c, struct ws_conn *conn, int res);
    /* with no send in flight: true when it submitted or must wait; false: the plain path */
    bool (*send)(struct ws_worker *c, struct ws_conn *conn);
    /* the send completed with `sent` bytes */
    void (*sent)(struct ws_worker *c, struct ws_conn *conn, size_t sent);
    /* the handshake deadline passed: true when the transport's own handshake was late (it
     * counted and logged that) */
    bool (*timed_out)(struct ws_worker *c, struct ws_conn *conn);
    void (*free)(struct ws_worker *c, struct ws_conn *conn);
    /* the largest plaintext one input may bring beyond a receive buffer (a TLS record) */
    uint32_t max_input;
} ws_transport_ops_t;

/* What an upgraded connection is for (net/endpoint.c): a room, or /echo. */
typedef struct ws_endpoint {
    const char *name;
    bool room; /* joins a room: counts against max_rooms */
    /* joins `name` (a room); 0 or -ENOMEM */
    int (*open)(struct ws_worker *c, struct ws_conn *conn, const char *name, size_t len);
    /* a complete message, built into a frame (one reference, the callee's) */
    void (*message)(struct ws_worker *c, struct ws_conn *conn, struct ws_block *b);
    /* leaves; idempotent (teardown after a close calls it again) */
    void (*close)(struct ws_worker *c, struct ws_conn *conn);
} ws_endpoint_t;

enum ws_conn_state {
    WS_CONN_HTTP,    /* reading requests (one, or several with keep-alive) */
    WS_CONN_OPEN,    /* WebSocket open */
    WS_CONN_CLOSING, /* close frame or final HTTP response queued; waiting for the peer */
    WS_CONN_LINGER,  /* our side shut down (SHUT_WR); discarding input until EOF */
    WS_CONN_DEAD,    /* torn down; waiting for in-flight operations, then freed */
};

enum ws_conn_flags {
    WS_CONN_F_RECV = 1u << 0,          /* a recv is armed (multishot or single) */
    WS_CONN_F_SEND = 1u << 1,          /* the one send is in flight */
    WS_CONN_F_SHUT = 1u << 3,          /* IORING_OP_SHUTDOWN in flight */
    WS_CONN_F_COUNTED = 1u << 4,       /* counted against max_conns */
    WS_CONN_F_CLOSE_SENT = 1u << 5,    /* our close frame is queued */
    WS_CONN_F_CLOSE_RCVD = 1u << 6,    /* the peer's close frame arrived */
    WS_CONN_F_FLUSH_CLOSE = 1u << 7,   /* once the queue drains: SHUT_WR and linger */
    WS_CONN_F_PARSER = 1u << 8,        /* parser initialised */
    WS_CONN_F_NEED_SEND = 1u << 10,    /* pending work: start a send */
    WS_CONN_F_NEED_RECV = 1u << 11,    /* pending work: re-arm the recv (after ENOBUFS) */
    WS_CONN_F_NEED_CLOSE = 1u << 12,   /* pending work: server close with close_code */
    WS_CONN_F_IP_COUNTED = 1u << 13,   /* counted in the server's per-address table (peer) */
    WS_CONN_F_ROOM_COUNTED = 1u << 14, /* counted in the server's room table (max_rooms) */
    WS_CONN_F_FRAME_SEEN = 1u << 15,   /* a complete frame arrived after the 101 */
    WS_CONN_F_STALL_CLOCK = 1u << 16,  /* write-stall clock runs from t_tx (the timer clears it
                                          once nothing is pending) */
    WS_CONN_F_DROPPED = 1u << 17,      /* drop-oldest dropped frames of it (logged once at -v) */
    WS_CONN_F_OVER = 1u << 18,         /* its send queue is over max_queue or max_queue_frames:
                                          t_over and the judgment window below are set */
    WS_CONN_F_READONLY = 1u << 19,     /* may not publish into its room (--client-publish) */
    WS_CONN_F_EXPIRES = 1u << 20,      /* closed (1008) at t_exp, its token's exp */
    WS_CONN_F_KEEPALIVE = 1u << 21,    /* the request being answered lets another follow */
    WS_CONN_F_HTTP_IDLE = 1u << 22,    /* keep-alive: between requests, idle since t_rx */
};

typedef struct ws_conn {
    uint32_t idx; /* slot in the core's table */
    uint32_t gen; /* the slot's generation when this connection got it */
    int fd;       /* regular fd, or direct descriptor (fixed-file index) when `direct` */
    bool direct;
    uint8_t transport;   /* enum ws_transport (metrics.h), for the gauges by transport */
    uint8_t state;       /* enum ws_conn_state */
    uint16_t close_code; /* pending server close (F_NEED_CLOSE) */
    uint32_t flags;      /* enum ws_conn_flags */
    const char *close_why;
    uint64_t t_accept; /* ms */
    uint64_t t_rx;     /* last byte received */
    uint64_t t_ping;   /* last ping sent (or the upgrade) */
    uint64_t t_close;  /* deadline in CLOSING/LINGER */
    uint64_t t_open;   /* the upgrade (first-frame deadline) */
    uint64_t t_tx;     /* last send progress, or when bytes started waiting (F_STALL_CLOCK) */
    uint64_t t_req;    /* the current request's first byte (its head and body deadline) */
    uint64_t t_exp;    /* F_EXPIRES: when the token expires, on the worker's clock */
    /* Backpressure (F_OVER, net/conn_send.c "slow consumers"): since when the queue is over a
     * limit, sq.sent_bytes then, and the current judgment window: its start and the
     * sq.sent_bytes / sq.sent_frames that its end must have reached (what was over the
     * limits when it started). */
    uint64_t t_over, over_sent0;
    uint64_t t_win, win_bytes, win_frames;
    uint8_t peer[16]; /* peer address key (keycount.h) when F_IP_COUNTED */
    ws_timer_t timer;
    ws_qlink_t head_link; /* in the core's FIFO of connections in WS_CONN_HTTP */
    ws_dlink_t pending;   /* the core's list of connections with end-of-iteration work */
    /* HTTP phase: a request when it spans receives (freed after the handshake). */
    ws_http_head_t head;
    const ws_transport_ops_t *tp; /* never NULL */
    /* WebSocket phase. */
    const ws_endpoint_t *ep; /* set at the upgrade */
    char *sub;               /* the token's subject (malloc'd), NULL without one */
    struct ws_room *room;
    ws_dlink_t member; /* in room->members */
    ws_parser_t parser;
    /* Sending. */
    ws_sendq_t sq;
    struct ws_sendctx *sctx; /* iovec array of the sendmsg in flight, NULL for a plain send */
    /* wss: the TLS transport's state (net/conn_tls.c); NULL for ws://. */
    struct ws_conn_tls *tls;
} ws_conn_t;

/* Server-initiated close: leaves the room, optionally drops unsent data, queues a close frame
 * with `code` and waits up to close_timeout for the peer. From inside a room's delivery loop
 * use ws_conn_send_close_later (net/conn_send.h). HTTP-phase connections are simply torn down. */
void ws_conn_close(struct ws_worker *c, ws_conn_t *conn, unsigned code, const char *why,
                   bool drop_queue);
/* The close handshake started (ours or the peer's): CLOSING, with the close deadline. */
void ws_conn_closing(struct ws_worker *c, ws_conn_t *conn);
/* Finishes the connection after what is queued: SHUT_WR once the queue drains, then discard
 * input until EOF or close_timeout. */
void ws_conn_finish(struct ws_worker *c, ws_conn_t *conn);
/* Everything queued went out and F_FLUSH_CLOSE asked for the end: half-close and linger. */
void ws_conn_linger(struct ws_worker *c, ws_conn_t *conn);
/* Immediate teardown: cancels what is in flight, releases everything, frees the connection
 * once the last completion is in. */
void ws_conn_teardown(struct ws_worker *c, ws_conn_t *conn);
/* Frees the connection when it is dead and nothing of it is in flight any more. */
void ws_conn_maybe_free(struct ws_worker *c, ws_conn_t *conn);
/* The connection left the request-head phase (upgraded, answered or torn down). */
void ws_conn_head_done(struct ws_worker *c, ws_conn_t *conn);

/* Arms the recv (multishot when the kernel has it, buffer select; the transport may fill the
 * SQE itself). */
void ws_conn_arm_recv(struct ws_worker *c, ws_conn_t *conn);
/* Cancels the connection's operation of user_data kind `kind`. */
void ws_conn_cancel(struct ws_worker *c, ws_conn_t *conn, unsigned kind);
/* The timer callback of conn->timer (ws_timer_fn; ctx is the worker): acts on the deadline
 * that passed and re-arms the next. */
void ws_conn_on_timer(void *ctx, ws_timer_t *t);

#endif
