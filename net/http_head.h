/* A request head assembled from whatever pieces the receives bring (net/http_head.c),
 * bounded by max_header_bytes and max_headers and parsed incrementally. Needs no connection
 * and no ring. */
#ifndef URINGWS_NET_HTTP_HEAD_H
#define URINGWS_NET_HTTP_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "uringws/http.h"

/* A request head that spans receives. Empty (all zero) until one does. */
typedef struct ws_http_head {
    uint8_t *buf;
    uint32_t len, cap;
    uint32_t prev; /* bytes already parsed (incremental parse) */
} ws_http_head_t;

enum ws_http_head_state {
    WS_HEAD_MORE,   /* incomplete: wait for more bytes */
    WS_HEAD_DONE,   /* *req holds the head; rest/rest_len follow it */
    WS_HEAD_REJECT, /* answer `status` (400 or 431) and close */
};

typedef struct ws_http_head_out {
    enum ws_http_head_state state;
    int status;    /* WS_HEAD_REJECT */
    uint8_t *rest; /* WS_HEAD_DONE: the bytes after the head (in p or in `owned`) */
    size_t rest_len;
    uint8_t *owned; /* WS_HEAD_DONE: a buffer *req and rest point into, the caller's to
                       free() once done with both; NULL when they point into p */
} ws_http_head_out_t;

/* Feeds n received bytes. `slack` is how much more than max_header_bytes one receive may
 * bring (WebSocket bytes can follow the head in it). A head that arrives in one piece is
 * parsed in p itself. 0, or -ENOMEM (the head buffer could not grow). */
int ws_http_head_feed(ws_http_head_t *h, uint8_t *p, size_t n, const ws_http_limits_t *lim,
                      size_t slack, ws_http_request_t *req, ws_http_head_out_t *out);
void ws_http_head_free(ws_http_head_t *h);

#endif
