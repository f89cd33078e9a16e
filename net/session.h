/* The WebSocket phase of a connection (net/session.c): the parser and its callbacks, the
 * close handshake from the peer's side, protocol errors, and the hand-off of each message
 * to the connection's endpoint. */
#ifndef URINGWS_NET_SESSION_H
#define URINGWS_NET_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

struct ws_worker;

/* The 101 is queued: starts the session on endpoint ep (joining `name`), then feeds the
 * bytes that followed the request head. A failed join closes with 1011. */
void ws_session_open(struct ws_worker *c, ws_conn_t *conn, const ws_endpoint_t *ep,
                     const char *name, size_t len, uint8_t *rest, size_t rest_len);
/* Frames received (OPEN or CLOSING); p is unmasked in place and not kept. */
void ws_session_input(struct ws_worker *c, ws_conn_t *conn, uint8_t *p, size_t n);

#endif
