/* The HTTP API's answers (net/api_reply.h): JSON bodies, counted by route and status, with
 * the header lines their status calls for. */
#include "api_reply.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pages.h"
#include "worker.h"
#include "server_internal.h"

static bool route_posts(enum ws_api_route r)
{
    return r == WS_API_PUBLISH || r == WS_API_BATCH || r == WS_API_DISCONNECT;
}

/* The header lines an answer carries besides its body. */
static const char *extra_for(enum ws_api_route r, int status)
{
    if (status == 401)
        return "Cache-Control: no-store\r\nWWW-Authenticate: Bearer realm=\"uringws\"\r\n";
    if (status == 405)
        return route_posts(r) ? "Cache-Control: no-store\r\nAllow: POST\r\n"
                              : "Cache-Control: no-store\r\nAllow: GET\r\n";
    return "Cache-Control: no-store\r\n";
}

void ws_api_reply_json(ws_worker_t *c, ws_conn_t *conn, enum ws_api_route route, int status,
                       void *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    ws_metric_inc(&c->m->api_requests[route][ws_metrics_api_index(text ? status : 503)]);
    if (!text) {
        ws_log_error("conn %u: out of memory for an API answer", conn->idx);
        conn->flags &= ~WS_CONN_F_KEEPALIVE;
        ws_pages_respond(c, conn, 503, "application/json", extra_for(route, 503),
                         "{\"error\":\"out of memory\"}", 25);
        return;
    }
    size_t n = strlen(text);
    text[n++] = '\n'; /* json_dumps left room: it wrote the NUL there */
    ws_pages_respond(c, conn, status, "application/json", extra_for(route, status), text, n);
    free(text);
}

void ws_api_reply_error(ws_worker_t *c, ws_conn_t *conn, enum ws_api_route route, int status,
                        const char *why)
{
    ws_log_verbose("conn %u: API request answered %d: %s", conn->idx, status, why);
    ws_api_reply_json(c, conn, route, status, json_pack("{s:s}", "error", why));
}

void *ws_api_reply_room_members(const char *name, uint32_t members)
{
    return json_pack("{s:s,s:I}", "room", name, "members", (json_int_t)members);
}

void *ws_api_reply_room(ws_worker_t *c, const char *name, size_t len)
{
    uint32_t n = c->srv->room_counts ? ws_keycount_get(c->srv->room_counts, name, len) : 0;
    return ws_api_reply_room_members(name, n);
}
