/* What drives a connection (net/conn_io.c): its accept, the completions of its recv, send
 * and shutdown (registered in the worker's handler table), the received bytes routed by
 * state (request head, frames), and the end-of-pass work. */
#ifndef URINGWS_NET_CONN_IO_H
#define URINGWS_NET_CONN_IO_H

#include <stdbool.h>
#include <sys/socket.h>

#include "conn.h"

struct ws_worker;

/* Registers the connection kinds (WS_UD_RECV, WS_UD_SEND, WS_UD_SHUTDOWN) in c's handler
 * table. */
void ws_conn_io_register(struct ws_worker *c);

/* Takes a new socket from accept (fd or direct descriptor; always a regular fd when tls).
 * peer is the remote address when the accept asked for it (max_conns_per_ip), else NULL.
 * Never fails visibly: when the connection cannot be set up, the socket is closed and
 * counted. */
void ws_conn_io_accept(struct ws_worker *c, int fd, bool tls, const struct sockaddr *peer,
                       socklen_t peer_len);

/* The connection's end-of-pass work (sends, re-arms, deferred closes). */
void ws_conn_io_pending(struct ws_worker *c, ws_conn_t *conn);

#endif
