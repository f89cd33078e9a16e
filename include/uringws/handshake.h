/* WebSocket opening handshake, server side (RFC 6455 4.2): classifies a parsed request as an
 * upgrade or a plain HTTP request, validates the upgrade, extracts the room from the path,
 * and writes the 101 response or the error response. */
#ifndef URINGWS_HANDSHAKE_H
#define URINGWS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "uringws/common.h"
#include "uringws/http.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WS_ROOM_MAX     64 /* bytes of a decoded room name */
#define WS_ROOM_DEFAULT "lobby"

typedef struct ws_handshake {
    /* 101 for a valid upgrade; 0 for a plain HTTP request (no Upgrade header: the caller
     * serves pages); else the error status to answer with: 400 malformed or bad room name,
     * 405 upgrade with a method other than GET, 426 wrong Sec-WebSocket-Version. */
    int status;
    const char *error; /* why, for the log line (static string), NULL on success */
    ws_slice_t path;   /* request-target without the query string */
    ws_slice_t host;
    ws_slice_t origin;          /* empty when absent */
    ws_slice_t extensions;      /* Sec-WebSocket-Extensions as offered (first header), or empty */
    ws_slice_t protocols;       /* Sec-WebSocket-Protocol as offered (first header), or empty */
    char accept[29];            /* Sec-WebSocket-Accept value, NUL-terminated, when status 101 */
    char room[WS_ROOM_MAX + 1]; /* percent-decoded room name, NUL-terminated: "/" -> "lobby" */
    size_t room_len;
} ws_handshake_t;

/* Decodes a room name from a path ("/" or "" is the default room, WS_ROOM_DEFAULT): percent
 * escapes decoded, '/' separating segments (none empty; "%2F" refused, so a room has one
 * spelling), no control characters, valid UTF-8, at most WS_ROOM_MAX bytes. NULL with
 * room[0..*len) NUL-terminated, or why not. */
const char *ws_handshake_room_decode(ws_slice_t path, char room[WS_ROOM_MAX + 1], size_t *len);
/* The rules on a decoded name (name[0..n)): 1..WS_ROOM_MAX bytes, no control characters, no
 * empty segment, valid UTF-8. NULL, or why not. */
const char *ws_handshake_room_check(const char *name, size_t n);

/* Fills hs from req. Returns 0 when the request is acceptable, hs->status saying how: 101 for
 * a valid upgrade, 0 for a plain HTTP request; or -EINVAL when it is refused, hs->status then
 * holding the error status to answer with (400, 405 or 426) and hs->error why. Room names: the path
 * after the leading '/' as ws_handshake_room_decode reads it ("/news/eu" is the room
 * "news/eu"); anything else is 400.
 *
 * An upgrade attempt is a request with an Upgrade or a Sec-WebSocket-Key header; it is
 * checked in this order: GET (405), HTTP/1.1, request-target, one Host, Upgrade has
 * `websocket`, Connection has `upgrade` (400 each), one Sec-WebSocket-Version (400 when
 * repeated) equal to 13 (426), one Sec-WebSocket-Key of 16 base64 bytes, room (400 each).
 * A plain request gets status 0 with path set, or 400 for a target that is neither form
 * below or an HTTP/1.1 request without exactly one Host (RFC 9112 3.2); the room is only
 * decoded for upgrades. The target may be origin-form ("/room?x") or, as RFC 6455 4.2.1 and
 * RFC 9112 3.2.2 require servers to accept, an absolute http/https URI: then host is the
 * URI's authority (userinfo is refused) and an empty path reads as "/" (a static string, the
 * one slice of hs that does not point into the request). Other slices of hs point into the
 * request buffer and are empty ({NULL, 0}) when absent. */
WS_WARN_UNUSED int ws_handshake_check(const ws_http_request_t *req, ws_handshake_t *hs);

/* Computes base64(SHA-1(key + GUID)) into out (28 chars + NUL). */
void ws_handshake_accept(ws_slice_t key, char out[29]);

/* Writes the response for hs->status 101 (Upgrade, Connection, Sec-WebSocket-Accept) or an
 * error status (with `Sec-WebSocket-Version: 13` on 426, `Allow: GET` on 405, and
 * Connection: close). Returns its length, or 0 if it does not fit in cap. */
size_t ws_handshake_response(const ws_handshake_t *hs, char *out, size_t cap);

/* Writes the error response for `status` (400..599) with `why` as the text/plain body (the
 * reason phrase when NULL): what ws_handshake_response writes for an error, and what the
 * server sends when ws_http_parse_request refuses a head (with its req->status). Adds
 * `Sec-WebSocket-Version: 13` on 426 and `Allow: GET` on 405. Returns its length, or 0 if it
 * does not fit in cap or status is not an error. */
size_t ws_handshake_error_response(int status, const char *why, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
