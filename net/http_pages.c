/* Plain HTTP answers for the few pages the server has. Each response is one owned buffer
 * queued on the connection, followed by the lingering close (Connection: close). */
#include "pages.h"

#include <stdlib.h>
#include <string.h>

#include "conn_tls.h"
#include "log.h"
#include "metrics.h"
#include "conn_send.h"
#include "worker.h"
#include "server_internal.h"

static bool path_is(ws_slice_t path, const char *lit)
{
    size_t n = strlen(lit);
    return path.len == n && memcmp(path.base, lit, n) == 0;
}

static int respond(ws_worker_t *c, ws_conn_t *conn, int status, const char *type, const char *extra,
                   const void *body, size_t len)
{
    size_t cap = len + 512;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        ws_log_error("conn %u: out of memory for a %zu-byte response", conn->idx, len);
        return status;
    }
    size_t n = ws_http_write_response((char *)buf, cap, status, type, extra, body, len);
    if (!n) {
        free(buf);
        ws_log_error("conn %u: response for status %d did not fit", conn->idx, status);
        return status;
    }
    (void)ws_conn_send_owned(c, conn, buf, (uint32_t)n); /* frees buf on failure */
    return status;
}

static int error_page(ws_worker_t *c, ws_conn_t *conn, int status, const char *extra,
                      ws_slice_t path)
{
    const char *reason = ws_http_reason(status);
    ws_log_verbose("conn %u: rejected with %d: %s (path %.*s)", conn->idx, status, reason,
                   (int)(path.len > 200 ? 200 : path.len), (const char *)path.base);
    ws_metric_inc(&c->m->hs_errors[ws_metrics_hs_index(status)]);
    return respond(c, conn, status, "text/plain; charset=utf-8", extra, reason, strlen(reason));
}

int ws_pages_respond(ws_worker_t *c, ws_conn_t *conn, const ws_http_request_t *req,
                     const ws_handshake_t *hs)
{
    ws_metric_inc(&c->m->http_requests);
    if (req->method.len != 3 || memcmp(req->method.base, "GET", 3) != 0)
        return error_page(c, conn, 405, "Allow: GET\r\n", hs->path);
    if (path_is(hs->path, "/"))
        return respond(c, conn, 200, "text/html; charset=utf-8", "Cache-Control: no-cache\r\n",
                       ws_page_chat, ws_page_chat_len);
    if (path_is(hs->path, "/healthz"))
        return respond(c, conn, 200, "text/plain; charset=utf-8", "Cache-Control: no-store\r\n",
                       "ok\n", 3);
    if (path_is(hs->path, "/metrics")) {
        char *text = NULL;
        ws_metrics_tls_t tls;
        bool with_tls = c->srv->tls_ctx != NULL;
        if (with_tls)
            ws_conn_tls_metrics_info(c->srv, &tls);
        long n =
            ws_metrics_render_tls(c->srv->metrics, c->srv->ncores, with_tls ? &tls : NULL, &text);
        if (n < 0) {
            ws_log_error("conn %u: out of memory rendering /metrics", conn->idx);
            return error_page(c, conn, 503, NULL, hs->path);
        }
        int st = respond(c, conn, 200, "text/plain; version=0.0.4; charset=utf-8",
                         "Cache-Control: no-store\r\n", text, (size_t)n);
        free(text);
        return st;
    }
    return error_page(c, conn, 404, NULL, hs->path);
}
