/* Publishing over the HTTP API (net/api_publish.c). */
#ifndef URINGWS_NET_API_PUBLISH_H
#define URINGWS_NET_API_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "uringws/common.h"

struct ws_worker;

/* POST /api/publish/<room>: `room` is the path from the '/' before the room name; the body
 * is one message (text for text/... and application/json, else binary). */
void ws_api_publish_room(struct ws_worker *c, ws_conn_t *conn, ws_slice_t room, const uint8_t *body,
                         size_t len);
/* POST /api/publish: a JSON batch (docs/api.md). */
void ws_api_publish_batch(struct ws_worker *c, ws_conn_t *conn, const uint8_t *body, size_t len);

#endif
