/* A request (head and body) assembled from whatever pieces the receives bring
 * (net/http_head.c): the head bounded by max_header_bytes and max_headers and parsed
 * incrementally, then a Content-Length body of at most max_body. Needs no connection and no
 * ring. */
#ifndef URINGWS_NET_HTTP_HEAD_H
#define URINGWS_NET_HTTP_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "uringws/http.h"

/* A request that spans receives. Empty (all zero) until one does. */
typedef struct ws_http_head {
    uint8_t *buf;
    uint32_t len, cap;
    uint32_t prev;     /* head bytes already parsed (incremental parse) */
    uint32_t head_len; /* once the head is whole and its body is awaited: the head's bytes */
    uint64_t need;     /* then: head_len + the body's length, what buf must reach */
} ws_http_head_t;

enum ws_http_head_state {
    WS_HEAD_MORE,   /* incomplete: wait for more bytes */
    WS_HEAD_DONE,   /* *req holds the head, body/body_len its body; rest/rest_len follow */
    WS_HEAD_REJECT, /* answer `status` (400, 413, 431 or 501) and close */
};

typedef struct ws_http_head_out {
    enum ws_http_head_state state;
    int status;          /* WS_HEAD_REJECT */
    const uint8_t *body; /* WS_HEAD_DONE: the body (NULL when body_len is 0) */
    size_t body_len;
    uint8_t *rest; /* WS_HEAD_DONE: the bytes after the request (in p or in `owned`) */
    size_t rest_len;
    uint8_t *owned; /* WS_HEAD_DONE: a buffer *req and body (and maybe rest) point into, the
                       caller's to free() once done with all of them; NULL when they point
                       into p */
} ws_http_head_out_t;

/* Feeds n received bytes. `slack` is how much more than max_header_bytes one receive may
 * bring (WebSocket bytes can follow the head in it). A request that arrives in one piece is
 * parsed in p itself. 0, or -ENOMEM (the buffer could not grow). */
int ws_http_head_feed(ws_http_head_t *h, uint8_t *p, size_t n, const ws_http_limits_t *lim,
                      size_t slack, ws_http_request_t *req, ws_http_head_out_t *out);
void ws_http_head_free(ws_http_head_t *h);

#endif
