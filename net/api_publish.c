/* Publishing over HTTP (net/api.h): a request body becomes one frame per room, handed
 * to the room's home core by name (ws_broadcast_publish_name), which orders it with the
 * room's client messages. A batch is checked whole before any of it is published, so a 400
 * means nothing of it went out and a 200 means all of it did. */
#include "api_publish.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/base64.h>
#include <stdlib.h>
#include <string.h>

#include "api_reply.h"
#include "broadcast.h"
#include "log.h"
#include "worker.h"
#include "uringws/block.h"
#include "uringws/frame.h"
#include "uringws/handshake.h"
#include "uringws/http.h"
#include "uringws/utf8.h"

#define BATCH_MAX_PUBLISHES 10000       /* room x message pairs in one batch */
#define BATCH_MAX_BYTES     (64u << 20) /* their payload bytes: each pair is a frame of its own */

/* A text message for text/... and application/json bodies, binary for any other type. */
static bool text_type(const ws_http_request_t *req)
{
    const ws_http_header_t *h = ws_http_find(req, "Content-Type");
    if (!h)
        return false;
    ws_slice_t v = h->value;
    const uint8_t *semi = memchr(v.base, ';', v.len);
    size_t n = semi ? (size_t)(semi - v.base) : v.len;
    while (n && (v.base[n - 1] == ' ' || v.base[n - 1] == '\t'))
        n--;
    ws_slice_t type = ws_slice(v.base, n);
    return (n > 5 && ws_http_eq_ci(ws_slice(v.base, 5), "text/")) ||
           ws_http_eq_ci(type, "application/json");
}

/* One message into one room: 0 or -ENOMEM. */
static int publish(ws_worker_t *c, const char *name, size_t len, uint8_t opcode,
                   const uint8_t *data, size_t dlen)
{
    ws_block_t *b = ws_block_frame(opcode, data, dlen);
    if (!b)
        return -ENOMEM;
    ws_metric_inc(&c->m->frames_built);
    int rc = ws_broadcast_publish_name(c, name, len, b);
    if (rc == 0)
        ws_metric_inc(&c->m->publishes[WS_PUB_API]);
    return rc;
}

void ws_api_publish_room(ws_worker_t *c, ws_conn_t *conn, ws_slice_t room, const uint8_t *body,
                         size_t len)
{
    char name[WS_ROOM_MAX + 1];
    size_t nl;
    const char *why = room.len > 1 ? ws_handshake_room_decode(room, name, &nl) : "no room";
    bool text = text_type(&c->req);
    if (!why && text && !ws_utf8_valid(body, len))
        why = "a text body (text/*, application/json) must be valid UTF-8";
    if (why) {
        ws_api_reply_error(c, conn, WS_API_PUBLISH, 400, why);
        return;
    }
    int rc = publish(c, name, nl, text ? WS_OP_TEXT : WS_OP_BINARY, body, len);
    if (rc < 0) {
        ws_api_reply_error(c, conn, WS_API_PUBLISH, 503,
                           rc == -ENOTCONN ? "backplane down" : "out of memory");
        return;
    }
    ws_api_reply_json(c, conn, WS_API_PUBLISH, 200, ws_api_reply_room(c, name, nl));
}

/* ---- batches --------------------------------------------------------------------------- */

typedef struct item {
    json_t *rooms; /* borrowed: an array of strings, or one string */
    uint8_t opcode;
    const uint8_t *data;
    size_t len;
    uint8_t *owned; /* decoded base64 */
} item_t;

static const char *decode_data(json_t *o, item_t *it)
{
    json_t *text = json_object_get(o, "data"), *b64 = json_object_get(o, "data_base64");
    if (!text == !b64)
        return "each message needs one of data (text) or data_base64 (binary)";
    if (text) {
        if (!json_is_string(text))
            return "data must be a string";
        it->opcode = WS_OP_TEXT;
        it->data = (const uint8_t *)json_string_value(text);
        it->len = json_string_length(text);
        return NULL;
    }
    size_t n = json_is_string(b64) ? json_string_length(b64) : 0, cap;
    if (!json_is_string(b64) || !EVP_DecodedLength(&cap, n))
        return "data_base64 must be base64";
    if (!(it->owned = malloc(cap ? cap : 1)))
        return "out of memory";
    if (!EVP_DecodeBase64(it->owned, &it->len, cap, (const uint8_t *)json_string_value(b64), n))
        return "data_base64 must be base64";
    it->opcode = WS_OP_BINARY;
    it->data = it->owned;
    return NULL;
}

/* One message object: {"room": ..} or {"rooms": [..]}, and its data; the publishes it adds
 * to *total. NULL or why not. */
static const char *check_item(json_t *o, item_t *it, size_t *total, uint64_t *bytes)
{
    if (!json_is_object(o))
        return "each message must be an object";
    json_t *room = json_object_get(o, "room"), *rooms = json_object_get(o, "rooms");
    if (!room == !rooms)
        return "each message needs one of room or rooms";
    it->rooms = room ? room : rooms;
    size_t n = room ? 1 : json_is_array(rooms) ? json_array_size(rooms) : 0;
    if (n == 0)
        return "rooms must be a non-empty array of room names";
    for (size_t i = 0; i < n; i++) {
        json_t *r = room ? room : json_array_get(rooms, i);
        if (!json_is_string(r) ||
            ws_handshake_room_check(json_string_value(r), json_string_length(r)))
            return "a room name must be 1..64 bytes, no control characters or empty segments";
    }
    if ((*total += n) > BATCH_MAX_PUBLISHES)
        return "a batch holds at most 10000 room messages";
    const char *why = decode_data(o, it);
    if (!why && (*bytes += (uint64_t)n * it->len) > BATCH_MAX_BYTES)
        why = "a batch carries at most 64 MiB of room messages (rooms x data)";
    return why;
}

/* Publishes every checked item; the answer's list of rooms with their members. */
static json_t *publish_items(ws_worker_t *c, const item_t *v, size_t n, int *err)
{
    json_t *out = json_array();
    for (size_t i = 0; i < n && !*err; i++) {
        size_t k = json_is_array(v[i].rooms) ? json_array_size(v[i].rooms) : 1;
        for (size_t j = 0; j < k && !*err; j++) {
            json_t *r = json_is_array(v[i].rooms) ? json_array_get(v[i].rooms, j) : v[i].rooms;
            const char *name = json_string_value(r);
            size_t nl = json_string_length(r);
            if ((*err = publish(c, name, nl, v[i].opcode, v[i].data, v[i].len)) == 0)
                json_array_append_new(out, ws_api_reply_room(c, name, nl));
        }
    }
    return out;
}

void ws_api_publish_batch(ws_worker_t *c, ws_conn_t *conn, const uint8_t *body, size_t len)
{
    json_t *j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *msgs = json_is_object(j) ? json_object_get(j, "messages") : NULL;
    size_t n = msgs ? (json_is_array(msgs) ? json_array_size(msgs) : 0) : 1, total = 0;
    uint64_t bytes = 0;
    const char *why = !json_is_object(j) ? "body must be a JSON object"
                      : msgs && n == 0   ? "messages must be a non-empty array"
                                         : NULL;
    item_t *v = why ? NULL : calloc(n, sizeof(*v));
    if (!why && !v)
        why = "out of memory";
    for (size_t i = 0; i < n && !why; i++)
        why = check_item(msgs ? json_array_get(msgs, i) : j, &v[i], &total, &bytes);
    if (why) {
        ws_api_reply_error(c, conn, WS_API_BATCH, strcmp(why, "out of memory") ? 400 : 503, why);
    } else {
        int err = 0;
        json_t *out = publish_items(c, v, n, &err);
        if (err) {
            /* Cut short (no memory, or the backplane went down): what went out is listed, and
             * the status says not all. */
            const char *why = err == -ENOTCONN ? "backplane down" : "out of memory";
            ws_log_error("conn %u: API batch cut short: %s", conn->idx, why);
            ws_api_reply_json(c, conn, WS_API_BATCH, 503,
                              json_pack("{s:s,s:o}", "error", why, "published", out));
        } else {
            ws_api_reply_json(c, conn, WS_API_BATCH, 200, json_pack("{s:o}", "published", out));
        }
    }
    for (size_t i = 0; v && i < n; i++)
        free(v[i].owned);
    free(v);
    json_decref(j);
}
