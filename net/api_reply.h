/* The HTTP API's answers (net/api_reply.c). */
#ifndef URINGWS_NET_API_REPLY_H
#define URINGWS_NET_API_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "metrics.h"

struct ws_worker;

/* Answers `status` with the JSON value `obj` (a json_t *, taken: freed here; NULL, from an
 * allocation that failed, answers 503), counted for `route`. Keep-alive as conn's
 * WS_CONN_F_KEEPALIVE says; out of memory for the text drops keep-alive and answers 503. */
void ws_api_reply_json(struct ws_worker *c, ws_conn_t *conn, enum ws_api_route route, int status,
                       void *obj);
/* Answers `status` with {"error": why}, counted for `route` and logged at -v. */
void ws_api_reply_error(struct ws_worker *c, ws_conn_t *conn, enum ws_api_route route, int status,
                        const char *why);
/* {"room": name, "members": members} (a json_t *, NULL without memory). */
void *ws_api_reply_room_members(const char *name, uint32_t members);
/* The same with the room's members on all cores now (the --max-rooms / API room table). */
void *ws_api_reply_room(struct ws_worker *c, const char *name, size_t len);

#endif
