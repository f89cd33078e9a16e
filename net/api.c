/* The HTTP API's routes (net/api.h): authentication first (401 before anything else is
 * looked at, so an unauthenticated client learns nothing about routes or rooms), then the
 * route and its method, then the route itself. Every answer is JSON and counted by route and
 * status; the connection stays open for the next request unless the request said close. */
#include "api.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_publish.h"
#include "api_reply.h"
#include "disconnect.h"
#include "log.h"
#include "worker.h"
#include "server_internal.h"
#include "uringws/frame.h"
#include "uringws/handshake.h"
#include "uringws/http.h"

#define ROOMS_PAGE_DEFAULT 100
#define ROOMS_PAGE_MAX     1000

static bool route_posts(enum ws_api_route r)
{
    return r == WS_API_PUBLISH || r == WS_API_BATCH || r == WS_API_DISCONNECT;
}

/* ---- GET /api/rooms, /api/rooms/<room> ------------------------------------------------ */

typedef struct room_count {
    char name[WS_ROOM_MAX + 1];
    uint32_t members;
} room_count_t;

typedef struct listing {
    room_count_t *v;
    size_t n, cap;
    const char *after; /* only names after it (the previous page's last) */
} listing_t;

static int collect(void *arg, const uint8_t *key, size_t len, uint32_t count)
{
    listing_t *l = arg;
    if (len > WS_ROOM_MAX)
        return 0;
    room_count_t rc = {.members = count};
    memcpy(rc.name, key, len);
    if (l->after && strcmp(rc.name, l->after) <= 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        room_count_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = rc;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const room_count_t *)a)->name, ((const room_count_t *)b)->name);
}

/* ?limit=N (1..1000, default 100) and ?after=<name>: rooms with members, sorted by name
 * (bytewise), and the cursor of the next page (null on the last). */
static void list_rooms(ws_worker_t *c, ws_conn_t *conn)
{
    char after[WS_ROOM_MAX + 1], num[8];
    long al = ws_http_query_param(c->req.target, "after", after, WS_ROOM_MAX);
    long nl = ws_http_query_param(c->req.target, "limit", num, sizeof(num) - 1);
    long limit = ROOMS_PAGE_DEFAULT;
    if (nl > 0) {
        num[nl] = '\0';
        char *end;
        limit = strtol(num, &end, 10);
        if (*end || limit < 1 || limit > ROOMS_PAGE_MAX)
            nl = -1;
    }
    if (al < 0 || nl < 0) {
        ws_api_reply_error(c, conn, WS_API_ROOMS, 400, "limit must be 1..1000, after a room name");
        return;
    }
    after[al] = '\0';
    listing_t l = {.after = al ? after : NULL};
    if (ws_keycount_each(c->srv->room_counts, collect, &l) < 0) {
        free(l.v);
        ws_api_reply_error(c, conn, WS_API_ROOMS, 503, "out of memory");
        return;
    }
    qsort(l.v, l.n, sizeof(*l.v), by_name);
    json_t *rooms = json_array();
    size_t shown = l.n < (size_t)limit ? l.n : (size_t)limit;
    for (size_t i = 0; i < shown; i++)
        json_array_append_new(rooms, ws_api_reply_room_members(l.v[i].name, l.v[i].members));
    json_t *next = shown < l.n ? json_string(l.v[shown - 1].name) : json_null();
    ws_api_reply_json(c, conn, WS_API_ROOMS, 200,
                      json_pack("{s:o,s:o}", "rooms", rooms, "next", next));
    free(l.v);
}

static void get_room(ws_worker_t *c, ws_conn_t *conn, ws_slice_t room)
{
    char name[WS_ROOM_MAX + 1];
    size_t len;
    const char *why = room.len > 1 ? ws_handshake_room_decode(room, name, &len) : "no room";
    if (why) {
        ws_api_reply_error(c, conn, WS_API_ROOM, 400, why);
        return;
    }
    ws_api_reply_json(c, conn, WS_API_ROOM, 200, ws_api_reply_room(c, name, len));
}

/* ---- POST /api/disconnect -------------------------------------------------------------- */

/* {"sub": "...", "code": 4000, "reason": "..."}: code defaults to 1008, reason to "". */
static void disconnect(ws_worker_t *c, ws_conn_t *conn, const uint8_t *body, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *sub = NULL, *reason = "";
    json_int_t code = WS_CLOSE_POLICY;
    size_t sub_len = 0, reason_len = 0;
    const char *why = NULL;
    if (!j || json_unpack(j, "{s:s%,s?I,s?s%!}", "sub", &sub, &sub_len, "code", &code, "reason",
                          &reason, &reason_len) < 0)
        why = "body must be {\"sub\": string, \"code\": number, \"reason\": string}";
    else if (sub_len == 0 || sub_len > 128 || memchr(sub, '\0', sub_len))
        why = "sub must be 1..128 bytes";
    else if (code < 1001 || code > 4999 || !ws_frame_close_code_valid((unsigned)code))
        why = "code must be 1001-1003, 1007-1011 or 3000-4999";
    else if (reason_len > WS_DISCONNECT_REASON_MAX)
        why = "reason: at most 123 bytes";
    long n = why ? 0 : ws_disconnect_sub(c, sub, sub_len, (unsigned)code, reason, reason_len);
    if (why || n < 0) {
        ws_api_reply_error(c, conn, WS_API_DISCONNECT, why ? 400 : 503,
                           why ? why : "out of memory");
    } else {
        ws_log_info("api: disconnect sub %s with %d (%ld here, the other cores in their next pass)",
                    sub, (int)code, n);
        ws_api_reply_json(c, conn, WS_API_DISCONNECT, 200,
                          json_pack("{s:s%,s:I}", "sub", sub, sub_len, "code", code));
    }
    json_decref(j);
}

/* ---- routing ---------------------------------------------------------------------------- */

static bool has_prefix(ws_slice_t s, const char *lit, ws_slice_t *rest)
{
    size_t n = strlen(lit);
    if (s.len < n || memcmp(s.base, lit, n) != 0)
        return false;
    *rest = ws_slice(s.base + n, s.len - n);
    return true;
}

/* Methods are case-sensitive (RFC 9110 9.1). */
static bool method_is(const ws_worker_t *c, const char *m)
{
    return c->req.method.len == strlen(m) && memcmp(c->req.method.base, m, c->req.method.len) == 0;
}

/* The route of a path, and the path after the route's prefix (the room). */
static enum ws_api_route route_of(ws_slice_t path, ws_slice_t *rest)
{
    *rest = ws_slice(NULL, 0);
    if (path.len == 12 && memcmp(path.base, "/api/publish", 12) == 0)
        return WS_API_BATCH;
    if (path.len == 10 && memcmp(path.base, "/api/rooms", 10) == 0)
        return WS_API_ROOMS;
    if (path.len == 15 && memcmp(path.base, "/api/disconnect", 15) == 0)
        return WS_API_DISCONNECT;
    /* The room's path keeps its leading '/', as ws_handshake_room_decode reads it. */
    if (has_prefix(path, "/api/publish", rest) && rest->base[0] == '/')
        return WS_API_PUBLISH;
    if (has_prefix(path, "/api/rooms", rest) && rest->base[0] == '/')
        return WS_API_ROOM;
    return WS_API_UNKNOWN;
}

void ws_api_request(ws_worker_t *c, ws_conn_t *conn, ws_slice_t path, const uint8_t *body,
                    size_t len)
{
    if (ws_http_keep_alive(&c->req))
        conn->flags |= WS_CONN_F_KEEPALIVE;
    ws_slice_t rest;
    enum ws_api_route r = route_of(path, &rest);
    if (!ws_api_keys_allow(c->srv->api_keys, &c->req)) {
        ws_api_reply_error(c, conn, r, 401, "missing or unknown API key");
        return;
    }
    bool post = route_posts(r);
    if (r == WS_API_UNKNOWN) {
        ws_api_reply_error(c, conn, r, 404, "no such API route");
    } else if (!method_is(c, post ? "POST" : "GET")) {
        ws_api_reply_error(c, conn, r, 405, post ? "use POST" : "use GET");
    } else if (post && !ws_http_find(&c->req, "Content-Length")) {
        ws_api_reply_error(c, conn, r, 411, "a POST needs Content-Length");
    } else if (r == WS_API_PUBLISH) {
        ws_api_publish_room(c, conn, rest, body, len);
    } else if (r == WS_API_BATCH) {
        ws_api_publish_batch(c, conn, body, len);
    } else if (r == WS_API_ROOMS) {
        list_rooms(c, conn);
    } else if (r == WS_API_ROOM) {
        get_room(c, conn, rest);
    } else {
        disconnect(c, conn, body, len);
    }
}
