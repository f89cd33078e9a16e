/* The HTTP API (docs/api.md), on when --api-key-file is given: backends publish into rooms,
 * list rooms and disconnect a token subject. net/api.c authenticates and routes, with the
 * room listing and disconnect; net/api_publish.c turns request bodies into room messages;
 * net/api_reply.c writes the JSON answers (keep-alive unless the request said close). */
#ifndef URINGWS_NET_API_H
#define URINGWS_NET_API_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "uringws/common.h"

struct ws_worker;

/* A request under /api/ (path without the query), body[0..len). Answers it; sets
 * WS_CONN_F_KEEPALIVE when the connection stays for another request. */
void ws_api_request(struct ws_worker *c, ws_conn_t *conn, ws_slice_t path, const uint8_t *body,
                    size_t len);

#endif
