/* The request head buffer (net/http_head.c), without a connection or a ring: a head in one
 * piece is parsed in place and the bytes after it are handed on; the same head fed in every
 * split (and byte by byte) gives the same request and the same trailing bytes, from its own
 * buffer; a malformed head is 400, one over max_header_bytes 431, and the buffer never
 * grows past the limit plus one receive. */
#include <stdlib.h>
#include <string.h>

#include "../net/http_head.h"
#include "check.h"

static const char head[] = "GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
static const ws_http_limits_t lim = {8192, 64, 1 << 20};

/* Feeds text in pieces of `step` bytes (the last one shorter); returns the last outcome. */
static ws_http_head_out_t feed(ws_http_head_t *h, const char *text, size_t len, size_t step,
                               ws_http_request_t *req, uint8_t *copy)
{
    ws_http_head_out_t out = {0};
    memcpy(copy, text, len);
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        REQUIRE(ws_http_head_feed(h, copy + off, n, &lim, 4096, req, &out) == 0);
        if (out.state != WS_HEAD_MORE)
            break;
    }
    return out;
}

static void splits(void)
{
    const char tail[] = "\x81\x85rest!";
    char text[sizeof(head) + sizeof(tail)];
    size_t hl = strlen(head), len = hl + strlen(tail);
    memcpy(text, head, hl);
    memcpy(text + hl, tail, strlen(tail));
    static uint8_t copy[1024];
    for (size_t step = 1; step <= len; step++) {
        ws_http_head_t h = {0};
        ws_http_request_t req;
        ws_http_head_out_t out = feed(&h, text, len, step, &req, copy);
        REQUIRE(out.state == WS_HEAD_DONE);
        CHECK(req.target.len == 5 && memcmp(req.target.base, "/room", 5) == 0);
        /* The piece that completed the head ends at `end`: the rest is hl..end. */
        size_t k = (hl - 1) / step, end = (k + 1) * step < len ? (k + 1) * step : len;
        CHECK_EQ_U(out.rest_len, end - hl);
        CHECK(memcmp(out.rest, tail, out.rest_len) == 0);
        if (k == 0) {
            CHECK(out.owned == NULL); /* one piece: parsed in place, in the receive buffer */
            CHECK(out.rest == copy + hl);
        } else {
            CHECK(out.owned && out.rest == out.owned + hl);
        }
        CHECK(h.buf == NULL && h.len == 0); /* the buffer went to the caller */
        free(out.owned);
    }
}

static void rejects(void)
{
    static uint8_t copy[20000];
    ws_http_request_t req;
    ws_http_head_t h = {0};
    /* A bare LF inside the request line is malformed, in one piece or in two. */
    const char bad[] = "GET / HTTP/1.1\rX\nHost: x\r\n\r\n";
    ws_http_head_out_t out = feed(&h, bad, strlen(bad), strlen(bad), &req, copy);
    CHECK(out.state == WS_HEAD_REJECT && out.status == 400);
    ws_http_head_free(&h);
    out = feed(&h, bad, strlen(bad), 7, &req, copy);
    CHECK(out.state == WS_HEAD_REJECT && out.status == 400);
    ws_http_head_free(&h);

    /* A head that never ends: 431 once past max_header_bytes, and the buffer is bounded. */
    static char big[12000];
    memcpy(big, "GET / HTTP/1.1\r\n", 16);
    for (size_t i = 16; i < sizeof(big); i += 9)
        memcpy(big + i, "X-A: 12\r\n", i + 9 <= sizeof(big) ? 9 : sizeof(big) - i);
    for (size_t step = 100; step <= 4000; step *= 3) {
        memset(&h, 0, sizeof(h));
        out = feed(&h, big, sizeof(big), step, &req, copy);
        CHECK(out.state == WS_HEAD_REJECT && out.status == 431);
        CHECK(h.cap <= 2 * (lim.max_header_bytes + 4096));
        ws_http_head_free(&h);
        CHECK(h.buf == NULL);
    }
}

/* Requests with bodies, pipelined after each other, fed in every split: each comes out whole
 * (head, body) with the right trailing bytes, and every one of them is found. */
static void bodies(void)
{
    static const char text[] =
        "POST /api/publish/a HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world"
        "POST /api/publish/b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        "GET /api/rooms HTTP/1.1\r\n\r\n"
        "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz";
    static const char *const targets[] = {"/api/publish/a", "/api/publish/b", "/api/rooms", "/x"};
    static const char *const want_body[] = {"hello world", "", "", "xyz"};
    size_t len = strlen(text);
    static uint8_t copy[1024];
    for (size_t step = 1; step <= len; step++) {
        memcpy(copy, text, len);
        ws_http_head_t h = {0};
        unsigned found = 0;
        for (size_t off = 0; off < len; off += step) {
            uint8_t *p = copy + off;
            size_t n = len - off < step ? len - off : step;
            uint8_t *held[4] = {0};
            unsigned nh = 0;
            while (n > 0 || h.need) {
                ws_http_request_t req;
                ws_http_head_out_t out;
                REQUIRE(ws_http_head_feed(&h, p, n, &lim, 4096, &req, &out) == 0);
                REQUIRE(out.state != WS_HEAD_REJECT);
                if (out.state == WS_HEAD_MORE)
                    break;
                REQUIRE(found < 4);
                CHECK(req.target.len == strlen(targets[found]) &&
                      memcmp(req.target.base, targets[found], req.target.len) == 0);
                CHECK_EQ_U(out.body_len, strlen(want_body[found]));
                CHECK(out.body_len == 0 || memcmp(out.body, want_body[found], out.body_len) == 0);
                found++;
                if (out.owned)
                    held[nh++] = out.owned;
                p = out.rest;
                n = out.rest_len;
                if (n == 0)
                    break;
            }
            for (unsigned i = 0; i < nh; i++)
                free(held[i]);
        }
        CHECK_INT(found, 4);
        ws_http_head_free(&h);
    }
    /* A body over max_body is 413, one with Transfer-Encoding 501, before any of it arrives. */
    static const char big[] = "POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n";
    static const char te[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    ws_http_request_t req;
    ws_http_head_t h = {0};
    ws_http_head_out_t out = feed(&h, big, strlen(big), 5, &req, copy);
    CHECK(out.state == WS_HEAD_REJECT && out.status == 413);
    ws_http_head_free(&h);
    out = feed(&h, te, strlen(te), strlen(te), &req, copy);
    CHECK(out.state == WS_HEAD_REJECT && out.status == 501);
    ws_http_head_free(&h);
}

int main(void)
{
    splits();
    rejects();
    bodies();
    return check_exit_status("test_net_http_head");
}
