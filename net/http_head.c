/* The request head: parsed in the receive buffer itself when it arrives in one piece, else
 * gathered in a growing buffer (bounded: the head limit plus one receive) and parsed
 * incrementally, so a head in any pieces gives what parsing it at once gives. */
#include "http_head.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ws_http_head_free(ws_http_head_t *h)
{
    free(h->buf);
    memset(h, 0, sizeof(*h));
}

static int append(ws_http_head_t *h, const uint8_t *p, size_t n, size_t max)
{
    size_t need = (size_t)h->len + n;
    if (need > max)
        return -E2BIG;
    if (need > h->cap) {
        size_t cap = h->cap ? h->cap : 1024;
        while (cap < need)
            cap *= 2;
        uint8_t *nb = realloc(h->buf, cap);
        if (!nb)
            return -ENOMEM;
        h->buf = nb;
        h->cap = (uint32_t)cap;
    }
    memcpy(h->buf + h->len, p, n);
    h->len = (uint32_t)need;
    return 0;
}

/* What the parser said, for the caller: rc is ws_http_parse_request's, with req->head_len
 * or req->status beside it. */
static int parsed(int rc, const ws_http_request_t *req, uint8_t *base, size_t len,
                  ws_http_head_out_t *out)
{
    if (rc == WS_INCOMPLETE) {
        out->state = WS_HEAD_MORE;
    } else if (rc == 0) {
        out->state = WS_HEAD_DONE;
        out->rest = base + req->head_len;
        out->rest_len = len - req->head_len;
    } else {
        out->state = WS_HEAD_REJECT;
        out->status = req->status;
    }
    return 0;
}

int ws_http_head_feed(ws_http_head_t *h, uint8_t *p, size_t n, const ws_http_limits_t *lim,
                      size_t slack, ws_http_request_t *req, ws_http_head_out_t *out)
{
    memset(out, 0, sizeof(*out));
    int rc;
    if (h->len == 0) {
        /* Fast path: a head that arrives in one receive is parsed in the buffer itself, and
         * so are the WebSocket bytes after it. */
        rc = ws_http_parse_request(p, n, 0, lim, req);
        if (rc != WS_INCOMPLETE)
            return parsed(rc, req, p, n, out);
    }
    /* More than the head limit plus one receive's slack cannot be a valid head (the parser
     * says 431 before). */
    rc = append(h, p, n, lim->max_header_bytes + slack);
    if (rc == -E2BIG) {
        out->state = WS_HEAD_REJECT;
        out->status = 431;
        return 0;
    }
    if (rc < 0)
        return rc;
    if (h->prev == 0 && h->len == n) {
        h->prev = h->len; /* these bytes were just parsed in place */
        out->state = WS_HEAD_MORE;
        return 0;
    }
    rc = ws_http_parse_request(h->buf, h->len, h->prev, lim, req);
    h->prev = h->len;
    if (rc == 0) {
        /* The request and the bytes after it live in the buffer: the caller frees it. */
        parsed(rc, req, h->buf, h->len, out);
        out->owned = h->buf;
        memset(h, 0, sizeof(*h));
        return 0;
    }
    return parsed(rc, req, NULL, 0, out);
}
