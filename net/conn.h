/* Connection state machine: HTTP request head -> WebSocket (or one plain HTTP response) ->
 * close handshake -> lingering close -> teardown. A connection belongs to one core and is
 * only touched by it. It is freed only when no operation of it is in flight any more, so a
 * completion always finds either its connection or a freed slot with a newer generation. */
#ifndef URINGWS_NET_CONN_H
#define URINGWS_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "list.h"
#include "sendq.h"
#include "timer.h"
#include "uringws/parser.h"

struct ws_worker;
struct ws_room;
struct ws_sendctx;
struct ws_conn_tls;

enum ws_conn_state {
    WS_CONN_HTTP,    /* reading the request head */
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
    WS_CONN_F_ECHO = 1u << 9,          /* the /echo endpoint: messages go back to the sender */
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
    /* Backpressure (F_OVER, net/conn.c "slow consumers"): since when the queue is over a
     * limit, sq.sent_bytes then, and the current judgment window: its start and the
     * sq.sent_bytes / sq.sent_frames that its end must have reached (what was over the
     * limits when it started). */
    uint64_t t_over, over_sent0;
    uint64_t t_win, win_bytes, win_frames;
    uint8_t peer[16]; /* peer address key (limits.h) when F_IP_COUNTED */
    ws_timer_t timer;
    ws_qlink_t head_link; /* in the core's FIFO of connections in WS_CONN_HTTP */
    ws_dlink_t pending;   /* the core's list of connections with end-of-iteration work */
    /* HTTP phase: the request head when it spans receives (freed after the handshake). */
    uint8_t *hbuf;
    uint32_t hlen, hcap, hprev;
    /* WebSocket phase. */
    struct ws_room *room;
    ws_dlink_t member; /* in room->members */
    ws_parser_t parser;
    /* Sending. */
    ws_sendq_t sq;
    struct ws_sendctx *sctx; /* iovec array of the sendmsg in flight, NULL for a plain send */
    /* wss: the TLS session and its transport state (net/conn_tls.c); NULL for ws://. */
    struct ws_conn_tls *tls;
} ws_conn_t;

/* Takes a new socket from accept (fd or direct descriptor; always a regular fd when tls).
 * peer is the remote address when the accept asked for it (max_conns_per_ip), else NULL.
 * Never fails visibly: when the connection cannot be set up, the socket is closed and
 * counted. */
void ws_conn_accept(struct ws_worker *c, int fd, bool tls, const struct sockaddr *peer,
                    socklen_t peer_len);

/* Completions, routed by the loop after the generation check. */
void ws_conn_on_recv(struct ws_worker *c, ws_conn_t *conn, int res, unsigned cqe_flags,
                     uint8_t *buf);
void ws_conn_on_send(struct ws_worker *c, ws_conn_t *conn, int res);
void ws_conn_on_shutdown(struct ws_worker *c, ws_conn_t *conn, int res);

/* Deadline handling: called when conn->timer fires. */
void ws_conn_on_timer(struct ws_worker *c, ws_conn_t *conn);
/* The connection's end-of-iteration work (sends, re-arms, deferred closes). */
void ws_conn_do_pending(struct ws_worker *c, ws_conn_t *conn);

/* Server-initiated close: leaves the room, optionally drops unsent data, queues a close frame
 * with `code` and waits up to close_timeout for the peer. From inside a room's delivery loop
 * use ws_conn_send_close_later (net/conn_send.h). HTTP-phase connections are simply torn down. */
void ws_conn_close(struct ws_worker *c, ws_conn_t *conn, unsigned code, const char *why,
                   bool drop_queue);

/* Immediate teardown: cancels what is in flight, releases everything, frees the connection
 * once the last completion is in. */
void ws_conn_teardown(struct ws_worker *c, ws_conn_t *conn);

/* Finishes the connection after what is queued: SHUT_WR once the queue drains, then discard
 * input until EOF or close_timeout. */
void ws_conn_finish(struct ws_worker *c, ws_conn_t *conn);

#endif
