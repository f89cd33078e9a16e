/* The request: parsed in the receive buffer itself when it arrives in one piece, else
 * gathered in a growing buffer (bounded: the head limit plus one receive, then the body's
 * Content-Length) and parsed incrementally, so a request in any pieces gives what parsing it
 * at once gives. A body that spans receives is gathered after its head in the same buffer;
 * the head is parsed again there once the body is whole (the first parse's slices pointed
 * into a receive buffer that is gone by then). */
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
        if (cap > UINT32_MAX)
            cap = need;
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

static void reject(ws_http_head_out_t *out, int status)
{
    out->state = WS_HEAD_REJECT;
    out->status = status;
}

/* The request in h->buf is whole: it, its body and the bytes after it go to the caller
 * with the buffer. */
static void hand_over(ws_http_head_t *h, size_t head_len, size_t body_len, ws_http_head_out_t *out)
{
    out->state = WS_HEAD_DONE;
    out->body = body_len ? h->buf + head_len : NULL;
    out->body_len = body_len;
    out->rest = h->buf + head_len + body_len;
    out->rest_len = h->len - head_len - body_len;
    out->owned = h->buf;
    memset(h, 0, sizeof(*h));
}

/* A complete head at base[0..req->head_len) with len bytes at base: its body is there too
 * (DONE), or it is awaited (MORE, with everything kept in h), or the head says no (REJECT).
 * `in_h` tells whether base is h->buf. */
static int head_done(ws_http_head_t *h, uint8_t *base, size_t len, bool in_h,
                     const ws_http_limits_t *lim, ws_http_request_t *req, ws_http_head_out_t *out)
{
    uint64_t blen;
    int status;
    if (ws_http_body_length(req, lim, &blen, &status) < 0) {
        reject(out, status);
        return 0;
    }
    size_t hl = req->head_len;
    if (blen > UINT32_MAX - hl) {
        reject(out, 413); /* the request buffer counts in 32 bits */
        return 0;
    }
    if (len - hl >= blen) {
        if (in_h) {
            hand_over(h, hl, (size_t)blen, out);
        } else {
            out->state = WS_HEAD_DONE;
            out->body = blen ? base + hl : NULL;
            out->body_len = (size_t)blen;
            out->rest = base + hl + blen;
            out->rest_len = len - hl - (size_t)blen;
        }
        return 0;
    }
    /* The body spans receives: keep the whole request so far. */
    if (!in_h) {
        int rc = append(h, base, len, len);
        if (rc < 0)
            return rc;
    }
    h->head_len = (uint32_t)hl;
    h->need = hl + blen;
    out->state = WS_HEAD_MORE;
    return 0;
}

/* Bytes of a body being gathered: take what belongs to it, and once it is whole parse its
 * head again in the buffer. */
static int body_bytes(ws_http_head_t *h, uint8_t *p, size_t n, const ws_http_limits_t *lim,
                      ws_http_request_t *req, ws_http_head_out_t *out)
{
    size_t take = h->need - h->len < n ? (size_t)(h->need - h->len) : n;
    int rc = append(h, p, take, (size_t)h->need);
    if (rc < 0)
        return rc;
    if (h->len < h->need) {
        out->state = WS_HEAD_MORE;
        return 0;
    }
    if (ws_http_parse_request(h->buf, h->head_len, 0, lim, req) != 0)
        return -EPROTO; /* the same bytes parsed before: cannot happen */
    size_t hl = h->head_len, blen = (size_t)(h->need - h->head_len);
    hand_over(h, hl, blen, out);
    out->rest = p + take;
    out->rest_len = n - take;
    return 0;
}

/* What the head parser said: rc is ws_http_parse_request's, with req->head_len or
 * req->status beside it. */
static int parsed(ws_http_head_t *h, int rc, uint8_t *base, size_t len, bool in_h,
                  const ws_http_limits_t *lim, ws_http_request_t *req, ws_http_head_out_t *out)
{
    if (rc == WS_INCOMPLETE) {
        out->state = WS_HEAD_MORE;
        return 0;
    }
    if (rc < 0) {
        reject(out, req->status);
        return 0;
    }
    return head_done(h, base, len, in_h, lim, req, out);
}

int ws_http_head_feed(ws_http_head_t *h, uint8_t *p, size_t n, const ws_http_limits_t *lim,
                      size_t slack, ws_http_request_t *req, ws_http_head_out_t *out)
{
    memset(out, 0, sizeof(*out));
    if (h->need)
        return body_bytes(h, p, n, lim, req, out);
    int rc;
    if (h->len == 0) {
        /* Fast path: a request that arrives in one receive is parsed in the buffer itself,
         * and so are the bytes after it. */
        rc = ws_http_parse_request(p, n, 0, lim, req);
        if (rc != WS_INCOMPLETE)
            return parsed(h, rc, p, n, false, lim, req, out);
    }
    /* More than the head limit plus one receive's slack cannot be a valid head (the parser
     * says 431 before). */
    rc = append(h, p, n, lim->max_header_bytes + slack);
    if (rc == -E2BIG) {
        reject(out, 431);
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
    return parsed(h, rc, h->buf, h->len, true, lim, req, out);
}
