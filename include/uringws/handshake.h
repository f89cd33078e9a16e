/* WebSocket opening handshake, server side (RFC 6455 4.2): classifies a parsed request as an
 * upgrade or a plain HTTP request, validates the upgrade, extracts the room from the path,
 * and writes the 101 response or the error response. */
#ifndef URINGWS_HANDSHAKE_H
#define URINGWS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include "uringws/common.h"
#include "uringws/http.h"

#define WS_ROOM_MAX 64 /* bytes of a decoded room name */
#define WS_ROOM_DEFAULT "lobby"

typedef struct ws_handshake {
    /* 101 for a valid upgrade; 0 for a plain HTTP request (no Upgrade header: the caller
     * serves pages); else the error status to answer with: 400 malformed or bad room name,
     * 405 upgrade with a method other than GET, 426 wrong Sec-WebSocket-Version. */
    int status;
    const char *error; /* why, for the log line (static string), NULL on success */
    ws_slice_t path;   /* request-target without the query string */
    ws_slice_t host;
    ws_slice_t origin;     /* empty when absent */
    ws_slice_t extensions; /* Sec-WebSocket-Extensions as offered (first header), or empty */
    ws_slice_t protocols;  /* Sec-WebSocket-Protocol as offered (first header), or empty */
    char accept[29];       /* Sec-WebSocket-Accept value, NUL-terminated, when status 101 */
    char room[WS_ROOM_MAX + 1]; /* percent-decoded room name, NUL-terminated: "/" -> "lobby" */
    size_t room_len;
} ws_handshake_t;

/* Fills hs from req; returns hs->status. Room names: the path after the leading '/',
 * percent-decoded, 1..WS_ROOM_MAX bytes of valid UTF-8 with no control characters and no
 * '/'; anything else is 400. */
int ws_handshake_check(const ws_http_request_t *req, ws_handshake_t *hs);

/* Computes base64(SHA-1(key + GUID)) into out (28 chars + NUL). */
void ws_handshake_accept(ws_slice_t key, char out[29]);

/* Writes the response for hs->status 101 (Upgrade, Connection, Sec-WebSocket-Accept) or an
 * error status (with `Sec-WebSocket-Version: 13` on 426, `Allow: GET` on 405, and
 * Connection: close). Returns its length, or 0 if it does not fit in cap. */
size_t ws_handshake_response(const ws_handshake_t *hs, char *out, size_t cap);

#endif
