/* Plain HTTP pages (net/pages.c): the embedded chat page, /healthz and /metrics, and
 * the error pages (404, 405, 503). The route table that picks one is net/routes.c. */
#ifndef URINGWS_NET_PAGES_H
#define URINGWS_NET_PAGES_H

#include <stddef.h>

#include "conn.h"
#include "uringws/handshake.h"
#include "uringws/http.h"

struct ws_worker;

extern const unsigned char ws_page_chat[];
extern const size_t ws_page_chat_len;

/* A page: queues its response on conn (the caller finishes the connection). */
typedef void ws_page_fn(struct ws_worker *c, ws_conn_t *conn, const ws_http_request_t *req,
                        const ws_handshake_t *hs);
ws_page_fn ws_pages_chat, ws_pages_healthz, ws_pages_metrics;

/* An error page for `status` (extra: more header lines, or NULL), logged and counted. */
/* Queues a whole response (Connection: keep-alive when conn has WS_CONN_F_KEEPALIVE, else
 * close); out of memory is logged and the response dropped. */
void ws_pages_respond(struct ws_worker *c, ws_conn_t *conn, int status, const char *type,
                      const char *extra, const void *body, size_t len);
void ws_pages_error(struct ws_worker *c, ws_conn_t *conn, int status, const char *extra,
                    ws_slice_t path);

#endif
