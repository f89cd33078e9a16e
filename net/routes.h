/* What a complete request head gets (net/routes.c): a valid upgrade is admitted and becomes
 * a session on its endpoint; any other GET is looked up in the route table of pages
 * (net/pages.c), or under /api/ by the API (net/api.c); a bad head or handshake is answered
 * with its status. */
#ifndef URINGWS_NET_ROUTES_H
#define URINGWS_NET_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

struct ws_worker;

/* c->req holds a complete request head, body[] its body; rest[] are the bytes after it. An
 * answer that keeps the connection for another request sets WS_CONN_F_KEEPALIVE (the API's
 * do, unless the request said `Connection: close`); every other one finishes it. */
void ws_routes_request(struct ws_worker *c, ws_conn_t *conn, const uint8_t *body, size_t body_len,
                       uint8_t *rest, size_t rest_len);
/* Answers `status` with a short text body saying why, counted, then finishes. */
void ws_routes_reject(struct ws_worker *c, ws_conn_t *conn, int status, const char *why);

#endif
