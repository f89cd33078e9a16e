/* Request routing: the upgrade (admission, the 101, the session on the endpoint of the
 * path), the table of plain pages, and the answers to everything else. */
#include "routes.h"

#include <string.h>

#include "admission.h"
#include "conn_send.h"
#include "endpoint.h"
#include "log.h"
#include "pages.h"
#include "session.h"
#include "worker.h"
#include "uringws/handshake.h"

static const struct route {
    const char *path;
    ws_page_fn *fn;
} routes[] = {
    {"/", ws_pages_chat},
    {"/healthz", ws_pages_healthz},
    {"/metrics", ws_pages_metrics},
};

void ws_routes_reject(ws_worker_t *c, ws_conn_t *conn, int status, const char *why)
{
    ws_log_verbose("conn %u: rejected with %d: %s", conn->idx, status, why);
    ws_metric_inc(&c->m->hs_errors[ws_metrics_hs_index(status)]);
    char resp[1024];
    size_t n = ws_handshake_error_response(status, why, resp, sizeof(resp));
    if (n)
        (void)ws_conn_send_copy(c, conn, resp, n);
    ws_conn_finish(c, conn);
}

static void upgrade(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs, uint8_t *rest,
                    size_t rest_len)
{
    const ws_endpoint_t *ep = ws_endpoint_for(hs->room, hs->room_len);
    ws_refusal_t no;
    if (ws_admission_upgrade(c, conn, hs, ep->room, &no) < 0) {
        ws_routes_reject(c, conn, no.status, no.why);
        return;
    }
    char resp[512];
    size_t n = ws_handshake_response(hs, resp, sizeof(resp));
    if (!n || ws_conn_send_copy(c, conn, resp, n) < 0) {
        ws_log_error("conn %u: cannot queue the 101 response", conn->idx);
        ws_admission_room_release(c, conn, hs->room, hs->room_len);
        ws_conn_teardown(c, conn);
        return;
    }
    ws_session_open(c, conn, ep, hs->room, hs->room_len, rest, rest_len);
}

static bool path_is(ws_slice_t path, const char *lit)
{
    size_t n = strlen(lit);
    return path.len == n && memcmp(path.base, lit, n) == 0;
}

static void page(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs)
{
    ws_metric_inc(&c->m->http_requests);
    if (c->req.method.len != 3 || memcmp(c->req.method.base, "GET", 3) != 0) {
        ws_pages_error(c, conn, 405, "Allow: GET\r\n", hs->path);
        return;
    }
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (path_is(hs->path, routes[i].path)) {
            routes[i].fn(c, conn, &c->req, hs);
            return;
        }
    }
    ws_pages_error(c, conn, 404, NULL, hs->path);
}

void ws_routes_request(ws_worker_t *c, ws_conn_t *conn, uint8_t *rest, size_t rest_len)
{
    ws_handshake_t hs;
    if (ws_handshake_check(&c->req, &hs) == 0) {
        if (hs.status == 101) {
            upgrade(c, conn, &hs, rest, rest_len);
            return;
        }
        page(c, conn, &hs);
    } else {
        int st = hs.status;
        char resp[1024];
        size_t n = ws_handshake_response(&hs, resp, sizeof(resp));
        ws_log_verbose("conn %u: rejected with %d: %s (target %.*s)", conn->idx, st,
                       hs.error ? hs.error : "bad request",
                       (int)(c->req.target.len > 200 ? 200 : c->req.target.len),
                       (const char *)c->req.target.base);
        ws_metric_inc(&c->m->hs_errors[ws_metrics_hs_index(st)]);
        if (n)
            (void)ws_conn_send_copy(c, conn, resp, n);
    }
    ws_conn_finish(c, conn);
}
