/* The HTTP phase of a connection (net/http_conn.c): the request head assembled in
 * conn->head (net/http_head.c), then the complete head and the bytes after it handed to the
 * routes (net/routes.c), or a malformed or oversize head answered 400 or 431. */
#ifndef URINGWS_NET_HTTP_CONN_H
#define URINGWS_NET_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

struct ws_worker;
struct ws_conn;

/* Bytes received by a connection in WS_CONN_HTTP. */
void ws_http_conn_input(struct ws_worker *c, struct ws_conn *conn, uint8_t *p, size_t n);

#endif
