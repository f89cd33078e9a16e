/* The WebSocket phase: the parser's callbacks (messages to the endpoint, pings answered
 * unless the queue is over its limits, the peer's close answered), protocol errors closed
 * with their code, and the session's start after the 101. */
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conn_send.h"
#include "deadline.h"
#include "log.h"
#include "worker.h"
#include "uringws/block.h"
#include "uringws/frame.h"

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
    conn->ep->message(c, conn, b);
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
        conn->ep->close(c, conn);
        ws_conn_closing(c, conn);
        if (ws_conn_send_close_frame(c, conn, ws_parser_close_reply_code(code), NULL) < 0)
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

/* The parser stopped with -EPROTO or -ENOMEM: close with the code it names. */
static void protocol_error(ws_worker_t *c, ws_conn_t *conn)
{
    unsigned code = conn->parser.close_code;
    if (!ws_frame_close_code_valid(code))
        code = WS_CLOSE_PROTOCOL_ERROR;
    ws_log_verbose("conn %u: protocol error, closing with %u", conn->idx, code);
    /* The parser is dead: do not wait for the peer's close reply. */
    conn->flags |= WS_CONN_F_FLUSH_CLOSE;
    ws_conn_close(c, conn, code,
                  code == WS_CLOSE_TOO_BIG           ? "message too big"
                  : code == WS_CLOSE_INVALID_PAYLOAD ? "invalid UTF-8"
                  : code == WS_CLOSE_INTERNAL        ? "out of memory"
                                                     : "protocol error",
                  false);
    ws_worker_pending(c, conn, WS_CONN_F_NEED_SEND);
}

void ws_session_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n)
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
        if (rc == WS_PARSER_CLOSED)
            return; /* bytes after the peer's close frame: ignored */
        if (ws_log_level >= WS_LOG_DEBUG)
            log_bad_input(conn, rc, p, n, used);
        protocol_error(c, conn);
        return;
    }
}

void ws_session_open(ws_worker_t *c, ws_conn_t *conn, const ws_endpoint_t *ep, const char *name,
                     size_t len, uint8_t *rest, size_t rest_len)
{
    ws_conn_head_done(c, conn);
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
    if (ep->open(c, conn, name, len) < 0) {
        ws_log_error("conn %u: out of memory joining room '%.*s'", conn->idx, (int)len, name);
        ws_conn_close(c, conn, WS_CLOSE_INTERNAL, "out of memory", false);
        return;
    }
    conn->ep = ep;
    ws_log_debug("conn %u: upgraded, %s '%.*s'", conn->idx, ep->name, (int)len, name);
    if (rest_len)
        ws_session_input(c, conn, rest, rest_len);
}
