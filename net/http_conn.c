/* The HTTP phase: each complete request (head and body) goes to the routes with the bytes
 * after it; while a route answers with keep-alive, the bytes after a request are the next
 * request (pipelining: answered in order, since every answer is queued on the one send
 * queue). A malformed or oversize request is answered with its status and ends the
 * connection; no memory for the request buffer ends it at once. */
#include "http_conn.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "deadline.h"
#include "http_head.h"
#include "log.h"
#include "routes.h"
#include "worker.h"

static const char *reject_why(int status)
{
    switch (status) {
    case 413:
        return "request body too large";
    case 431:
        return "request head too large";
    case 501:
        return "chunked request bodies are not supported";
    default:
        return "malformed request";
    }
}

/* One feed: 1 when a request was answered and its connection is ready for the next, 0 when
 * the bytes are used up or the connection left the HTTP phase. */
static int one(ws_worker_t *c, ws_conn_t *conn, uint8_t **p, size_t *n, uint8_t **hold)
{
    ws_http_limits_t lim = {c->cfg->max_header_bytes, c->cfg->max_headers, c->cfg->max_message};
    size_t slack = conn->tp->max_input > c->bufs.buf_size ? conn->tp->max_input : c->bufs.buf_size;
    ws_http_head_out_t out;
    if (ws_http_head_feed(&conn->head, *p, *n, &lim, slack, &c->req, &out) < 0) {
        ws_log_error("conn %u: out of memory for a request", conn->idx);
        ws_conn_teardown(c, conn);
        return 0;
    }
    if (out.state == WS_HEAD_MORE)
        return 0;
    if (out.state == WS_HEAD_REJECT) {
        ws_routes_reject(c, conn, out.status, reject_why(out.status));
        return 0;
    }
    if (out.owned) {
        /* The previous one is done with: this request and the bytes after it were copied
         * out of it into the new buffer. */
        free(*hold);
        *hold = out.owned;
    }
    conn->flags &= ~WS_CONN_F_KEEPALIVE;
    ws_routes_request(c, conn, out.body, out.body_len, out.rest, out.rest_len);
    if (conn->state != WS_CONN_HTTP || !(conn->flags & WS_CONN_F_KEEPALIVE))
        return 0;
    /* Answered, and the connection stays for another request: it has shown it speaks
     * HTTP, so it no longer counts among the heads max_pending may evict. */
    ws_conn_head_done(c, conn);
    *p = out.rest;
    *n = out.rest_len;
    conn->t_req = c->now_ms;
    return 1;
}

void ws_http_conn_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n)
{
    uint8_t *hold = NULL;
    if (conn->flags & WS_CONN_F_HTTP_IDLE) {
        conn->flags &= ~WS_CONN_F_HTTP_IDLE;
        conn->t_req = c->now_ms;
        ws_deadline_schedule(c, conn);
    }
    while (one(c, conn, &p, &n, &hold)) {
        if (n == 0) {
            conn->flags |= WS_CONN_F_HTTP_IDLE;
            ws_deadline_schedule(c, conn);
            break;
        }
    }
    free(hold);
}
