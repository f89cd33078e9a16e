/* What an upgraded connection talks to (net/endpoint.c): a room (ws://HOST/<room>) or the
 * echo endpoint (ws://HOST/echo). The session (net/session.c) hands every message to
 * conn->ep and knows no more about either. */
#ifndef URINGWS_NET_ENDPOINT_H
#define URINGWS_NET_ENDPOINT_H

#include <stddef.h>

#include "conn.h"

extern const ws_endpoint_t ws_endpoint_room;
extern const ws_endpoint_t ws_endpoint_echo;

/* The endpoint for an upgrade to room name `name` (the handshake's room: "echo" is /echo). */
const ws_endpoint_t *ws_endpoint_for(const char *name, size_t len);

#endif
