/* The plain HTTP pages the server has (the chat page, /healthz, /metrics) and its error
 * pages. Each response is one owned buffer queued on the connection; the routes
 * (net/routes.c) end the connection after it (Connection: close) unless the request was one
 * for the API that keeps it (WS_CONN_F_KEEPALIVE: Connection: keep-alive). */
#include "pages.h"

#include <stdlib.h>
#include <string.h>

#include "backplane.h"
#include "backplane.h"
#include "conn_send.h"
#include "tls_server.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "server_internal.h"

void ws_pages_respond(ws_worker_t *c, ws_conn_t *conn, int status, const char *type,
                      const char *extra, const void *body, size_t len)
{
    size_t cap = len + 512;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        ws_log_error("conn %u: out of memory for a %zu-byte response", conn->idx, len);
        conn->flags &= ~WS_CONN_F_KEEPALIVE; /* no answer: the connection ends, unanswered */
        return;
    }
    size_t n = ws_http_write_response_conn((char *)buf, cap, status, type, extra, body, len,
                                           conn->flags & WS_CONN_F_KEEPALIVE);
    if (!n) {
        free(buf);
        ws_log_error("conn %u: response for status %d did not fit", conn->idx, status);
        conn->flags &= ~WS_CONN_F_KEEPALIVE;
        return;
    }
    /* Frees buf on failure; then the next pipelined answer must not take this one's place. */
    if (ws_conn_send_owned(c, conn, buf, (uint32_t)n) < 0)
        conn->flags &= ~WS_CONN_F_KEEPALIVE;
}

void ws_pages_error(ws_worker_t *c, ws_conn_t *conn, int status, const char *extra, ws_slice_t path)
{
    const char *reason = ws_http_reason(status);
    ws_log_verbose("conn %u: rejected with %d: %s (path %.*s)", conn->idx, status, reason,
                   (int)(path.len > 200 ? 200 : path.len), (const char *)path.base);
    ws_metric_inc(&c->m->hs_errors[ws_metrics_hs_index(status)]);
    ws_pages_respond(c, conn, status, "text/plain; charset=utf-8", extra, reason, strlen(reason));
}

void ws_pages_chat(ws_worker_t *c, ws_conn_t *conn, const ws_http_request_t *req,
                   const ws_handshake_t *hs)
{
    (void)req;
    (void)hs;
    ws_pages_respond(c, conn, 200, "text/html; charset=utf-8", "Cache-Control: no-cache\r\n",
                     ws_page_chat, ws_page_chat_len);
}

void ws_pages_healthz(ws_worker_t *c, ws_conn_t *conn, const ws_http_request_t *req,
                      const ws_handshake_t *hs)
{
    (void)req;
    (void)hs;
    for (unsigned i = 0; c->srv->bp_up && i < c->srv->ncores; i++) {
        if (!ws_backplane_flag_up(&c->srv->bp_up[i])) {
            ws_pages_respond(c, conn, 503, "text/plain; charset=utf-8",
                             "Cache-Control: no-store\r\n", "backplane down\n", 15);
            return;
        }
    }
    ws_pages_respond(c, conn, 200, "text/plain; charset=utf-8", "Cache-Control: no-store\r\n",
                     "ok\n", 3);
}

void ws_pages_metrics(ws_worker_t *c, ws_conn_t *conn, const ws_http_request_t *req,
                      const ws_handshake_t *hs)
{
    (void)req;
    char *text = NULL;
    ws_metrics_tls_t tls;
    bool with_tls = c->srv->tls_ctx != NULL;
    if (with_tls)
        ws_tls_server_metrics_info(c->srv, &tls);
    long n = ws_metrics_render_tls(c->srv->metrics, c->srv->ncores, with_tls ? &tls : NULL, &text);
    if (n < 0) {
        ws_log_error("conn %u: out of memory rendering /metrics", conn->idx);
        ws_pages_error(c, conn, 503, NULL, hs->path);
        return;
    }
    ws_pages_respond(c, conn, 200, "text/plain; version=0.0.4; charset=utf-8",
                     "Cache-Control: no-store\r\n", text, (size_t)n);
    free(text);
}
