/* Who gets in (net/admission.c): max_conns, max_conns_per_ip, the max_pending eviction of
 * stalled request heads, the Origin allow-list and max_rooms. Every count a connection takes
 * is taken and released here, and nothing here closes or answers a connection: a refusal
 * comes back as an HTTP status for the caller to send. Needs no ring. */
#ifndef URINGWS_NET_ADMISSION_H
#define URINGWS_NET_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "conn.h"
#include "uringws/handshake.h"

struct ws_worker;

/* A refusal: the HTTP status to answer with and why (a static string). */
typedef struct ws_refusal {
    int status;
    const char *why;
} ws_refusal_t;

/* A new connection against max_conns and then max_conns_per_ip (peer: the remote address,
 * or NULL when the accept did not ask for it). 0 when admitted; -EUSERS when refused (503
 * or 429 in *out; -ENOMEM counting the address is a 503 too). The counts taken are released
 * by ws_admission_release, refused or not. */
int ws_admission_accept(struct ws_worker *c, ws_conn_t *conn, const struct sockaddr *peer,
                        socklen_t peer_len, ws_refusal_t *out);

/* The connection to evict so that one more can send its request head (max_pending: this
 * core's share is full and its oldest head is old enough), or NULL. */
ws_conn_t *ws_admission_evictee(struct ws_worker *c);

/* A valid upgrade: the Origin allow-list (403), then, when it joins a room, max_rooms (503;
 * takes the room's count). 0, or -EACCES / -EUSERS / -ENOMEM with *out set. */
int ws_admission_upgrade(struct ws_worker *c, ws_conn_t *conn, const ws_handshake_t *hs,
                         bool joins_room, ws_refusal_t *out);

/* Gives back the room count ws_admission_upgrade took (leaving the room `name`, or a join
 * that did not happen). */
void ws_admission_room_release(struct ws_worker *c, ws_conn_t *conn, const char *name, size_t len);
/* Gives back the connection's max_conns and per-address counts (teardown). */
void ws_admission_release(struct ws_worker *c, ws_conn_t *conn);

#endif
