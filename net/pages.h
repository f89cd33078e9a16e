/* Plain HTTP responses: the embedded chat page at /, /healthz and /metrics; 404/405 for
 * anything else. */
#ifndef URINGWS_NET_PAGES_H
#define URINGWS_NET_PAGES_H

#include <stddef.h>

#include "conn.h"
#include "uringws/handshake.h"
#include "uringws/http.h"

struct ws_worker;

/* The chat page, generated at build time from net/pages/chat.html (NUL-terminated copy;
 * ws_page_chat_len excludes the NUL). */
extern const unsigned char ws_page_chat[];
extern const size_t ws_page_chat_len;

/* Queues the response for a plain (non-upgrade) request; returns its status. The caller
 * then finishes the connection. */
int ws_pages_respond(struct ws_worker *c, ws_conn_t *conn, const ws_http_request_t *req,
                     const ws_handshake_t *hs);

#endif
