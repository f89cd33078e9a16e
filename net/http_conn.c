/* The request-head phase: a complete head goes to the routes with the bytes after it, a
 * malformed or oversize one is answered 400 or 431, no memory for the head buffer ends the
 * connection. */
#include "http_conn.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "http_head.h"
#include "log.h"
#include "routes.h"
#include "worker.h"

void ws_http_conn_input(ws_worker_t *c, ws_conn_t *conn, uint8_t *p, size_t n)
{
    ws_http_limits_t lim = {c->cfg->max_header_bytes, c->cfg->max_headers};
    size_t slack = conn->tp->max_input > c->bufs.buf_size ? conn->tp->max_input : c->bufs.buf_size;
    ws_http_head_out_t out;
    if (ws_http_head_feed(&conn->head, p, n, &lim, slack, &c->req, &out) < 0) {
        ws_log_error("conn %u: out of memory for the request head", conn->idx);
        ws_conn_teardown(c, conn);
        return;
    }
    if (out.state == WS_HEAD_DONE) {
        ws_routes_request(c, conn, out.rest, out.rest_len);
        free(out.owned);
    } else if (out.state == WS_HEAD_REJECT) {
        ws_routes_reject(c, conn, out.status,
                         out.status == 431 ? "request head too large" : "malformed request head");
    }
}
