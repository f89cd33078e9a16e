/* Request routing: the upgrade (its token, admission, the 101, the session on the endpoint
 * of the path), the HTTP API under /api/ when it is on, the table of plain pages, and the
 * answers to everything else. */
#include "routes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admission.h"
#include "api.h"
#include "conn_send.h"
#include "endpoint.h"
#include "log.h"
#include "pages.h"
#include "server_internal.h"
#include "session.h"
#include "token.h"
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

/* What the token granted, on the connection: its subject, whether it may write, and the
 * deadline of its exp on the worker's clock (exp + leeway, the moment verification starts
 * refusing the token). */
static int apply_grant(ws_worker_t *c, ws_conn_t *conn, const ws_token_grant_t *g)
{
    if (!g->may_publish)
        conn->flags |= WS_CONN_F_READONLY;
    if (g->sub[0] && !(conn->sub = strdup(g->sub)))
        return -ENOMEM;
    if (g->has_token && c->cfg->token_expiry == WS_TOKEN_EXPIRY_CLOSE) {
        int64_t left = g->exp - (int64_t)time(NULL);
        const int64_t max_s = 100LL * 365 * 86400; /* beyond a century: never, in practice */
        left = left > max_s ? max_s : left + (int64_t)c->cfg->token_leeway_s;
        conn->t_exp = c->now_ms + (left > 0 ? (uint64_t)left * 1000 : 0);
        conn->flags |= WS_CONN_F_EXPIRES;
    }
    return 0;
}

static void upgrade(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs, uint8_t *rest,
                    size_t rest_len)
{
    const ws_endpoint_t *ep = ws_endpoint_for(hs->room, hs->room_len);
    ws_refusal_t no;
    ws_token_grant_t g;
    if (ws_token_upgrade(c, &c->req, hs->room, hs->room_len, &g, &no) < 0 ||
        ws_admission_upgrade(c, conn, hs, ep->room, &no) < 0) {
        ws_routes_reject(c, conn, no.status, no.why);
        return;
    }
    if (apply_grant(c, conn, &g) < 0) {
        ws_log_error("conn %u: out of memory for the token's subject", conn->idx);
        ws_admission_room_release(c, conn, hs->room, hs->room_len);
        ws_conn_teardown(c, conn);
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

static void page(ws_worker_t *c, ws_conn_t *conn, const ws_handshake_t *hs, const uint8_t *body,
                 size_t body_len)
{
    ws_metric_inc(&c->m->http_requests);
    if (c->srv->api_keys && hs->path.len >= 5 && memcmp(hs->path.base, "/api/", 5) == 0) {
        ws_api_request(c, conn, hs->path, body, body_len);
        return;
    }
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

void ws_routes_request(ws_worker_t *c, ws_conn_t *conn, const uint8_t *body, size_t body_len,
                       uint8_t *rest, size_t rest_len)
{
    ws_handshake_t hs;
    if (ws_handshake_check(&c->req, &hs) == 0) {
        if (hs.status == 101 && body_len) {
            ws_routes_reject(c, conn, 400, "an upgrade request carries no body");
            return;
        }
        if (hs.status == 101) {
            upgrade(c, conn, &hs, rest, rest_len);
            return;
        }
        page(c, conn, &hs, body, body_len);
        if (conn->flags & WS_CONN_F_KEEPALIVE)
            return; /* the API answered and keeps the connection for the next request */
    } else {
        int st = hs.status;
        char resp[1024];
        size_t n = ws_handshake_response(&hs, resp, sizeof(resp));
        /* The path only: the query may hold a token. */
        const uint8_t *q = memchr(c->req.target.base, '?', c->req.target.len);
        size_t tl = q ? (size_t)(q - c->req.target.base) : c->req.target.len;
        ws_log_verbose("conn %u: rejected with %d: %s (path %.*s)", conn->idx, st,
                       hs.error ? hs.error : "bad request", (int)(tl > 200 ? 200 : tl),
                       (const char *)c->req.target.base);
        ws_metric_inc(&c->m->hs_errors[ws_metrics_hs_index(st)]);
        if (n)
            (void)ws_conn_send_copy(c, conn, resp, n);
    }
    ws_conn_finish(c, conn);
}
