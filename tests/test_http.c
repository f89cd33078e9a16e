/* Unit test for core/http.c: the request-head parser (field values, every rejection with its
 * exact result, limits, incremental feeding against one-shot parsing at every split point),
 * header lookup and token lists, and response writing. */
#include "uringws/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* The results the tests compare, one number each: the head length for a complete head, else
 * the errno. parse() checks that the out fields agree with the errno (req->status 400 with
 * -EBADMSG, 431 with -EMSGSIZE, 0 otherwise; req->head_len set only after 0). */
#define MORE (-EAGAIN)
#define BAD  (-EBADMSG)
#define BIG  (-EMSGSIZE)

static int parse_at(int line, const uint8_t *buf, size_t len, size_t prev_len,
                    const ws_http_limits_t *lim, ws_http_request_t *req)
{
    int rc = ws_http_parse_request(buf, len, prev_len, lim, req);
    int want_status = rc == BAD ? 400 : rc == BIG ? 431 : 0;
    if ((rc != 0 && rc != MORE && rc != BAD && rc != BIG) || req->status != want_status ||
        (rc == 0) != (req->head_len != 0) || req->head_len > len) {
        fprintf(stderr, "%s:%d: parse returned %d with status %d, head_len %zu\n", __FILE__, line,
                rc, req->status, req->head_len);
        check_failures++;
    }
    return rc == 0 ? (int)req->head_len : rc;
}

#define parse(...) parse_at(__LINE__, __VA_ARGS__)

static bool slice_is(ws_slice_t s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.base, want, s.len) == 0;
}

/* Parses a private, exactly sized copy so that sanitizer builds catch reads past len. */
static int parse_copy(const void *data, size_t len, size_t prev_len, const ws_http_limits_t *lim,
                      ws_http_request_t *req, uint8_t **copy)
{
    *copy = malloc(len ? len : 1);
    if (*copy == NULL)
        abort();
    memcpy(*copy, data, len);
    return parse(*copy, len, prev_len, lim, req);
}

static ws_http_request_t req_a, req_b;

/* Same result, and for a parsed head the same fields at the same offsets. */
static bool same_parse(int r, const ws_http_request_t *a, const uint8_t *abuf, int s,
                       const ws_http_request_t *b, const uint8_t *bbuf)
{
#define SAME(x, y) ((x).len == (y).len && (x).base - abuf == (y).base - bbuf)
    if (r != s)
        return false;
    if (r <= 0)
        return true;
    if (!SAME(a->method, b->method) || !SAME(a->target, b->target) ||
        a->minor_version != b->minor_version || a->num_headers != b->num_headers)
        return false;
    for (size_t i = 0; i < a->num_headers; i++)
        if (!SAME(a->headers[i].name, b->headers[i].name) ||
            !SAME(a->headers[i].value, b->headers[i].value))
            return false;
    return true;
#undef SAME
}

/* Feeds data in two pieces split at every byte boundary, then one byte at a time, always
 * growing the same buffer and passing prev_len; each must end with the one-shot result.
 * Also checks that every prefix parsed on its own gives MORE or that result. */
static void check_incremental(const char *name, const void *data, size_t len,
                              const ws_http_limits_t *lim)
{
    uint8_t *one, *buf;
    int want = parse_copy(data, len, 0, lim, &req_a, &one);
    int bad = 0;

    buf = malloc(len ? len : 1);
    if (buf == NULL)
        abort();
    memcpy(buf, data, len);
    for (size_t k = 1; k < len && !bad; k++) {
        int r = parse(buf, k, 0, lim, &req_b);
        if (r != MORE && !same_parse(want, &req_a, one, r, &req_b, buf)) {
            fprintf(stderr, "%s: prefix %zu alone gives %d, whole input %d\n", name, k, r, want);
            bad = 1;
        }
        if (r == MORE)
            r = parse(buf, len, k, lim, &req_b);
        if (!same_parse(want, &req_a, one, r, &req_b, buf)) {
            fprintf(stderr, "%s: split at %zu gives %d, one-shot %d\n", name, k, r, want);
            bad = 1;
        }
    }
    int r = MORE;
    size_t prev = 0;
    for (size_t k = 1; k <= len && r == MORE; k++) {
        r = parse(buf, k, prev, lim, &req_b);
        prev = k;
    }
    if (len != 0 && !same_parse(want, &req_a, one, r, &req_b, buf)) {
        fprintf(stderr, "%s: byte-at-a-time gives %d, one-shot %d\n", name, r, want);
        bad = 1;
    }
    if (bad) {
        fprintf(stderr, "%s:%d: incremental parse of \"%s\" differs from one-shot\n", __FILE__,
                __LINE__, name);
        check_failures++;
    }
    free(buf);
    free(one);
}

/* --- fixed vectors: one-shot result, then the incremental check on each ------------------- */

#define HEAD_LEN(s) ((int)sizeof(s) - 1)

typedef struct vec {
    const char *name;
    const char *data;
    size_t len;
    int want; /* head length, MORE, BAD or BIG (as parse() returns them) */
} vec_t;

#define V(name, lit, want)                                                                         \
    {                                                                                              \
        name, lit, sizeof(lit) - 1, want                                                           \
    }

#define RFC_HEAD                                                                                   \
    "GET /chat HTTP/1.1\r\n"                                                                       \
    "Host: server.example.com\r\n"                                                                 \
    "Upgrade: websocket\r\n"                                                                       \
    "Connection: Upgrade\r\n"                                                                      \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Origin: http://example.com\r\n"                                                               \
    "Sec-WebSocket-Protocol: chat, superchat\r\n"                                                  \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "\r\n"

#define CHROMIUM_HEAD                                                                              \
    "GET /lobby HTTP/1.1\r\n"                                                                      \
    "Host: 127.0.0.1:8080\r\n"                                                                     \
    "Connection: Upgrade\r\n"                                                                      \
    "Pragma: no-cache\r\n"                                                                         \
    "Cache-Control: no-cache\r\n"                                                                  \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "          \
    "Chrome/120.0.0.0 Safari/537.36\r\n"                                                           \
    "Upgrade: websocket\r\n"                                                                       \
    "Origin: http://127.0.0.1:8080\r\n"                                                            \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "Accept-Encoding: gzip, deflate, br\r\n"                                                       \
    "Accept-Language: en-US,en;q=0.9\r\n"                                                          \
    "Sec-WebSocket-Key: 8J+YgPCfmIDwn5iA8J+YgA==\r\n"                                              \
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"                     \
    "\r\n"

/* A masked "Hello" text frame (RFC 6455 5.7) sent in the same packet as the head. */
#define HELLO_FRAME "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"

static const vec_t vectors[] = {
    V("minimal", "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      HEAD_LEN("GET / HTTP/1.1\r\nHost: a\r\n\r\n")),
    V("rfc6455", RFC_HEAD, HEAD_LEN(RFC_HEAD)),
    V("chromium", CHROMIUM_HEAD, HEAD_LEN(CHROMIUM_HEAD)),
    V("http/1.0 no headers", "GET / HTTP/1.0\r\n\r\n", HEAD_LEN("GET / HTTP/1.0\r\n\r\n")),
    V("ows", "GET / HTTP/1.1\r\nHost:\t a \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n",
      HEAD_LEN("GET / HTTP/1.1\r\nHost:\t a \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n")),
    V("pipelined frame", RFC_HEAD HELLO_FRAME, HEAD_LEN(RFC_HEAD)),
    V("pipelined crlfcrlf", RFC_HEAD "\r\n\r\nGET / HTTP/1.1\r\n\r\n", HEAD_LEN(RFC_HEAD)),
    V("obs-text value", "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n",
      HEAD_LEN("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n")),
    V("utf-8 target", "GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
      HEAD_LEN("GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n")),
    V("htab and colon in value", "GET / HTTP/1.1\r\nX: a\tb:c\r\n\r\n",
      HEAD_LEN("GET / HTTP/1.1\r\nX: a\tb:c\r\n\r\n")),

    V("empty", "", MORE),
    V("request line only", "GET / HTTP/1.1\r\n", MORE),
    V("no final crlf", "GET / HTTP/1.1\r\nHost: a\r\n", MORE),
    V("final cr only", "GET / HTTP/1.1\r\nHost: a\r\n\r", MORE),
    V("bad byte, line unfinished", "GET / HTTP/1.1\r\nX: a\0b", MORE),
    V("bad version, line unfinished", "GET / HTTP/9.9", MORE),

    V("HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", BAD),
    V("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", BAD),
    V("HTTP/0.9 style", "GET /\r\n\r\n", BAD),
    V("lowercase http", "GET / http/1.1\r\n\r\n", BAD),
    V("version with extra byte", "GET / HTTP/1.11\r\n\r\n", BAD),
    V("space after version", "GET / HTTP/1.1 \r\n\r\n", BAD),
    V("double space", "GET  / HTTP/1.1\r\n\r\n", BAD),
    V("empty method", " / HTTP/1.1\r\n\r\n", BAD),
    V("empty target", "GET  HTTP/1.1\r\n\r\n", BAD),
    V("bad method char", "G(T / HTTP/1.1\r\n\r\n", BAD),
    V("control in target", "GET /a\x01z HTTP/1.1\r\n\r\n", BAD),
    V("DEL in target", "GET /a\x7fz HTTP/1.1\r\n\r\n", BAD),
    V("leading crlf", "\r\nGET / HTTP/1.1\r\n\r\n", BAD),
    V("lf-only request line", "GET / HTTP/1.1\n\n", BAD),
    V("lf-only header", "GET / HTTP/1.1\r\nHost: a\n\r\n", BAD),
    V("lf-only end", "GET / HTTP/1.1\r\nHost: a\r\n\n", BAD),
    V("bare cr in value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", BAD),
    V("bare cr at line start", "GET / HTTP/1.1\r\nHost: a\r\n\rX: b\r\n\r\n", BAD),
    V("bare cr in request line", "GET /\r HTTP/1.1\r\n\r\n", BAD),
    V("no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", BAD),
    V("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", BAD),
    V("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", BAD),
    V("obs-fold sp", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", BAD),
    V("obs-fold ht", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", BAD),
    V("space before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", BAD),
    V("empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", BAD),
    V("bad name char", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", BAD),
    V("utf-8 in name", "GET / HTTP/1.1\r\nH\xc3\xa9: a\r\n\r\n", BAD),
    V("NUL in value", "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", BAD),
    V("SOH in value", "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", BAD),
    V("VT in value", "GET / HTTP/1.1\r\nX: a\x0b\r\n\r\n", BAD),
    V("ESC in value", "GET / HTTP/1.1\r\nX: \x1b[0m\r\n\r\n", BAD),
    V("DEL in value", "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", BAD),
    V("NUL then lf", "GET / HTTP/1.1\r\nX: a\0b\n", BAD),
    V("error in head, more after", "GET / HTTP/1.1\r\nX y\r\nZ: 1\r\n\r\n" HELLO_FRAME, BAD),
};

static void test_vectors(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const vec_t *v = &vectors[i];
        uint8_t *copy;
        int r = parse_copy(v->data, v->len, 0, NULL, &req_a, &copy);
        if (r != v->want) {
            fprintf(stderr, "%s:%d: vector \"%s\": got %d, want %d\n", __FILE__, __LINE__, v->name,
                    r, v->want);
            check_failures++;
        }
        free(copy);
        check_incremental(v->name, v->data, v->len, NULL);
    }
}

/* --- field values --------------------------------------------------------------------------- */

static void test_fields(void)
{
    static const char in[] = "GET /chat?x=1 HTTP/1.1\r\n"
                             "Host:server.example.com\r\n"
                             "upgrade: \t websocket\t \r\n"
                             "X-Empty:   \r\n"
                             "X-Inner: a  b\r\n"
                             "\r\n" HELLO_FRAME;
    ws_http_request_t req;
    int r = parse((const uint8_t *)in, sizeof in - 1, 0, NULL, &req);
    CHECK_INT(r, sizeof in - 1 - (sizeof HELLO_FRAME - 1));
    CHECK(slice_is(req.method, "GET"));
    CHECK(slice_is(req.target, "/chat?x=1"));
    CHECK_INT(req.minor_version, 1);
    CHECK_INT(req.num_headers, 4);
    CHECK(slice_is(req.headers[0].name, "Host"));
    CHECK(slice_is(req.headers[0].value, "server.example.com"));
    CHECK(slice_is(req.headers[1].name, "upgrade"));
    CHECK(slice_is(req.headers[1].value, "websocket"));
    CHECK(slice_is(req.headers[2].name, "X-Empty"));
    CHECK_INT(req.headers[2].value.len, 0);
    CHECK(slice_is(req.headers[3].value, "a  b"));
    /* Zero copy: the slices point into the input. */
    CHECK(req.method.base == (const uint8_t *)in);
    CHECK(req.target.base == (const uint8_t *)in + 4);

    static const char v10[] = "HEAD /x HTTP/1.0\r\n\r\n";
    r = parse((const uint8_t *)v10, sizeof v10 - 1, 0, NULL, &req);
    CHECK_INT(r, sizeof v10 - 1);
    CHECK(slice_is(req.method, "HEAD"));
    CHECK_INT(req.minor_version, 0);
    CHECK_INT(req.num_headers, 0);

    /* The picohttpparser contract step by step: incomplete, then resumed with prev_len. */
    size_t cut = sizeof RFC_HEAD - 1 - 3;
    r = parse((const uint8_t *)RFC_HEAD, cut, 0, NULL, &req);
    CHECK_INT(r, MORE);
    r = parse((const uint8_t *)RFC_HEAD, cut + 1, cut, NULL, &req);
    CHECK_INT(r, MORE);
    r = parse((const uint8_t *)RFC_HEAD, sizeof RFC_HEAD - 1, cut + 1, NULL, &req);
    CHECK_INT(r, sizeof RFC_HEAD - 1);
    CHECK_INT(req.num_headers, 7);
    CHECK(slice_is(req.headers[6].value, "13"));
    /* No new bytes since the last call: still incomplete. */
    r = parse((const uint8_t *)RFC_HEAD, cut, cut, NULL, &req);
    CHECK_INT(r, MORE);

    /* The contract itself, without parse(): 0 with head_len, or the errno with the status to
     * answer with beside it. */
    CHECK_INT(ws_http_parse_request((const uint8_t *)RFC_HEAD, sizeof RFC_HEAD - 1, 0, NULL, &req),
              0);
    CHECK_INT(req.head_len, sizeof RFC_HEAD - 1);
    CHECK_INT(req.status, 0);
    CHECK_INT(ws_http_parse_request((const uint8_t *)RFC_HEAD, cut, 0, NULL, &req), -EAGAIN);
    CHECK_INT(req.status, 0);
    CHECK_INT(req.head_len, 0);
    static const char bad[] = "GET / HTTP/1.1\r\nHost a\r\n\r\n";
    CHECK_INT(ws_http_parse_request((const uint8_t *)bad, sizeof bad - 1, 0, NULL, &req), -EBADMSG);
    CHECK_INT(req.status, 400);
    ws_http_limits_t tiny = {16, 0, 0};
    CHECK_INT(ws_http_parse_request((const uint8_t *)RFC_HEAD, sizeof RFC_HEAD - 1, 0, &tiny, &req),
              -EMSGSIZE);
    CHECK_INT(req.status, 431);
    /* The status is reset by the next call. */
    CHECK_INT(ws_http_parse_request((const uint8_t *)RFC_HEAD, cut, 0, NULL, &req), -EAGAIN);
    CHECK_INT(req.status, 0);
}

/* --- limits --------------------------------------------------------------------------------- */

/* "GET / HTTP/1.1\r\n" + n headers "H<i>: v\r\n" + (final ? "\r\n" : "") + tail */
static size_t build_headers(char *out, size_t n, bool final, const char *tail)
{
    size_t len = (size_t)sprintf(out, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(out + len, "H%zu: v\r\n", i);
    if (final)
        len += (size_t)sprintf(out + len, "\r\n");
    len += (size_t)sprintf(out + len, "%s", tail);
    return len;
}

/* A head of exactly `total` bytes: request line, one X header padded to fit, CRLF. */
static size_t build_sized(char *out, size_t total, bool final)
{
    static const char line[] = "GET / HTTP/1.1\r\nX: ";
    size_t len = sizeof line - 1;
    memcpy(out, line, len);
    size_t pad = total - len - 4;
    memset(out + len, 'a', pad);
    len += pad;
    memcpy(out + len, final ? "\r\n\r\n" : "\r\n", final ? 4 : 2);
    return len + (final ? 4 : 2);
}

static void test_limits(void)
{
    static char big[32768];
    ws_http_request_t req;
    size_t n;
    int r;

    /* Header count: 64 pass, 65 are refused complete, incomplete, and as soon as the first
     * byte of the 65th line arrives. */
    n = build_headers(big, 64, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, NULL, &req), (int)n);
    CHECK_INT(req.num_headers, 64);
    check_incremental("64 headers", big, n, NULL);
    n = build_headers(big, 65, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, NULL, &req), BIG);
    check_incremental("65 headers", big, n, NULL);
    n = build_headers(big, 65, false, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, NULL, &req), BIG);
    n = build_headers(big, 64, false, "H");
    CHECK_INT(parse((uint8_t *)big, n, 0, NULL, &req), BIG);
    CHECK_INT(parse((uint8_t *)big, n - 1, 0, NULL, &req), MORE);
    CHECK_INT(parse((uint8_t *)big, n, n - 1, NULL, &req), BIG);
    /* 64 headers and the final CRLF arriving byte by byte is a complete head, not 431. */
    n = build_headers(big, 64, true, "");
    CHECK_INT(parse((uint8_t *)big, n - 1, 0, NULL, &req), MORE);
    CHECK_INT(parse((uint8_t *)big, n, n - 1, NULL, &req), (int)n);

    /* Head bytes: exactly 8192 pass, 8193 are refused. */
    n = build_sized(big, 8192, true);
    CHECK_INT(n, 8192);
    CHECK_INT(parse((uint8_t *)big, n, 0, NULL, &req), 8192);
    CHECK_INT(req.headers[0].value.len, 8192 - 23);
    n = build_sized(big, 8193, true);
    CHECK_INT(parse((uint8_t *)big, n, 0, NULL, &req), BIG);
    check_incremental("8193-byte head", big, n, NULL);
    /* The 8192-byte head followed by frame bytes is still fine. */
    n = build_sized(big, 8192, true);
    memcpy(big + n, HELLO_FRAME, sizeof HELLO_FRAME - 1);
    CHECK_INT(parse((uint8_t *)big, n + sizeof HELLO_FRAME - 1, 0, NULL, &req), 8192);

    /* An endless header line: refused once byte 8193 is in, not earlier, even though no LF
     * has come; fed a byte at a time, exactly at that call. */
    n = build_sized(big, 20000, false);
    CHECK_INT(parse((uint8_t *)big, 8192, 0, NULL, &req), MORE);
    CHECK_INT(parse((uint8_t *)big, 8193, 0, NULL, &req), BIG);
    CHECK_INT(parse((uint8_t *)big, 8193, 8192, NULL, &req), BIG);
    r = MORE;
    size_t k = 0;
    while (r == MORE && k < n) {
        k++;
        r = parse((uint8_t *)big, k, k - 1, NULL, &req);
    }
    CHECK_INT(r, BIG);
    CHECK_INT(k, 8193);
    /* A line without any LF at all (no request line end either). */
    memset(big, 'A', 9000);
    CHECK_INT(parse((uint8_t *)big, 9000, 0, NULL, &req), BIG);
    CHECK_INT(parse((uint8_t *)big, 9000, 4000, NULL, &req), BIG);
    CHECK_INT(parse((uint8_t *)big, 8192, 4000, NULL, &req), MORE);

    /* Which comes first decides: a malformed line completed early is 400 however long the
     * rest; a malformed line whose LF is past the limit is 431. */
    n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nX y\r\n");
    memset(big + n, 'a', 9000);
    CHECK_INT(parse((uint8_t *)big, n + 9000, 0, NULL, &req), BAD);
    n = (size_t)sprintf(big, "GET / HTTP/1.1\r\nX: \x01");
    memset(big + n, 'a', 9000);
    memcpy(big + n + 9000, "\r\n\r\n", 4);
    CHECK_INT(parse((uint8_t *)big, n + 9004, 0, NULL, &req), BIG);

    /* Configured limits, with the incremental check on each side of them. */
    ws_http_limits_t lim = {64, 3, 0};
    n = build_headers(big, 3, true, "");
    CHECK_INT(n, 39);
    CHECK_INT(parse((uint8_t *)big, n, 0, &lim, &req), 39);
    check_incremental("3 headers, limit 3", big, n, &lim);
    n = build_headers(big, 4, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, &lim, &req), BIG);
    check_incremental("4 headers, limit 3", big, n, &lim);
    lim.max_headers = 100;
    lim.max_header_bytes = 39;
    n = build_headers(big, 3, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, &lim, &req), 39);
    lim.max_header_bytes = 38;
    CHECK_INT(parse((uint8_t *)big, n, 0, &lim, &req), BIG);
    check_incremental("39 bytes, limit 38", big, n, &lim);
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
        check_incremental(vectors[i].name, vectors[i].data, vectors[i].len, &lim);

    /* Zero fields mean the defaults; max_headers is capped at WS_HTTP_HEADERS_CAP. */
    ws_http_limits_t zero = {0, 0, 0};
    n = build_headers(big, 64, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, &zero, &req), (int)n);
    n = build_headers(big, 65, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, &zero, &req), BIG);
    ws_http_limits_t huge = {1 << 20, 100000, 0};
    n = build_headers(big, WS_HTTP_HEADERS_CAP, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, &huge, &req), (int)n);
    CHECK_INT(req.num_headers, WS_HTTP_HEADERS_CAP);
    n = build_headers(big, WS_HTTP_HEADERS_CAP + 1, true, "");
    CHECK_INT(parse((uint8_t *)big, n, 0, &huge, &req), BIG);
}

/* --- lookups -------------------------------------------------------------------------------- */

static void test_lookup(void)
{
    static const char in[] = "GET / HTTP/1.1\r\n"
                             "Host: a\r\n"
                             "connection: keep-alive, Upgrade\r\n"
                             "X-List: ,, a ,\tb\t,,\r\n"
                             "CONNECTION: close\r\n"
                             "Upgrade: websocketx, xwebsocket\r\n"
                             "\r\n";
    ws_http_request_t req;
    CHECK_INT(parse((const uint8_t *)in, sizeof in - 1, 0, NULL, &req), sizeof in - 1);

    CHECK(ws_http_eq_ci(ws_slice("Upgrade", 7), "uPGRADE"));
    CHECK(!ws_http_eq_ci(ws_slice("Upgrade", 7), "Upgrad"));
    CHECK(!ws_http_eq_ci(ws_slice("Upgrad", 6), "Upgrade"));
    CHECK(ws_http_eq_ci(ws_slice("", 0), ""));
    /* Only letters fold: '@' (0x40) and '`' (0x60) differ by the case bit but are not equal. */
    CHECK(!ws_http_eq_ci(ws_slice("@", 1), "`"));
    CHECK(!ws_http_eq_ci(ws_slice("[", 1), "{"));

    const ws_http_header_t *h = ws_http_find(&req, "CONNECTION");
    CHECK(h != NULL && h == &req.headers[1]);
    CHECK(ws_http_find(&req, "Origin") == NULL);
    CHECK(ws_http_find(&req, "Hos") == NULL);
    CHECK_INT(ws_http_count(&req, "Connection"), 2);
    CHECK_INT(ws_http_count(&req, "host"), 1);
    CHECK_INT(ws_http_count(&req, "Origin"), 0);

    CHECK(ws_http_has_token(&req, "Connection", "upgrade"));
    CHECK(ws_http_has_token(&req, "Connection", "KEEP-ALIVE"));
    CHECK(ws_http_has_token(&req, "Connection", "close")); /* from the second header */
    CHECK(!ws_http_has_token(&req, "Connection", "keep"));
    CHECK(!ws_http_has_token(&req, "Connection", "alive, upgrade"));
    CHECK(ws_http_has_token(&req, "x-list", "a"));
    CHECK(ws_http_has_token(&req, "x-list", "b"));
    CHECK(!ws_http_has_token(&req, "x-list", ""));
    CHECK(!ws_http_has_token(&req, "Upgrade", "websocket"));
    CHECK(!ws_http_has_token(&req, "Origin", "a"));

    CHECK(ws_http_list_has_token(ws_slice("Upgrade", 7), "upgrade"));
    CHECK(ws_http_list_has_token(ws_slice(" \tkeep-alive ,\t UPGRADE\t", 24), "upgrade"));
    CHECK(ws_http_list_has_token(ws_slice("a,upgrade,", 10), "upgrade"));
    CHECK(!ws_http_list_has_token(ws_slice("up grade", 8), "upgrade"));
    CHECK(!ws_http_list_has_token(ws_slice("upgrade2", 8), "upgrade"));
    CHECK(!ws_http_list_has_token(ws_slice(",,,", 3), "upgrade"));
    CHECK(!ws_http_list_has_token(ws_slice("", 0), "upgrade"));
    /* Case folding is for letters only, in both directions. */
    CHECK(ws_http_eq_ci(ws_slice("sec-websocket-key", 17), "Sec-WebSocket-Key"));
    CHECK(!ws_http_eq_ci(ws_slice("Sec\rWebSocket-Key", 17), "Sec-WebSocket-Key"));
    CHECK(!ws_http_eq_ci(ws_slice("a", 1), "A\x01"));
    CHECK(!ws_http_eq_ci(ws_slice("\x01", 1), "!"));
    CHECK(!ws_http_eq_ci(ws_slice("\xc1", 1), "\xe1"));
    CHECK(!ws_http_eq_ci(ws_slice(" ", 1), ""));
}

/* --- responses ------------------------------------------------------------------------------ */

static void test_response(void)
{
    char out[512];
    static const char want[] = "HTTP/1.1 404 Not Found\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 5\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "nope\n";
    size_t n = ws_http_write_response(out, sizeof out, 404, "text/plain", NULL, "nope\n", 5);
    CHECK_INT(n, sizeof want - 1);
    CHECK(n == sizeof want - 1 && memcmp(out, want, n) == 0);
    /* Exactly the length fits (no NUL is written); one byte less does not. */
    CHECK_INT(ws_http_write_response(out, sizeof want - 1, 404, "text/plain", NULL, "nope\n", 5),
              sizeof want - 1);
    CHECK_INT(ws_http_write_response(out, sizeof want - 2, 404, "text/plain", NULL, "nope\n", 5),
              0);
    CHECK_INT(ws_http_write_response(out, 0, 404, "text/plain", NULL, "nope\n", 5), 0);

    static const char want2[] = "HTTP/1.1 405 Method Not Allowed\r\n"
                                "Content-Length: 0\r\n"
                                "Connection: close\r\n"
                                "Allow: GET\r\n"
                                "\r\n";
    n = ws_http_write_response(out, sizeof out, 405, NULL, "Allow: GET\r\n", NULL, 0);
    CHECK_INT(n, sizeof want2 - 1);
    CHECK(n == sizeof want2 - 1 && memcmp(out, want2, n) == 0);

    char body[1234];
    memset(body, 'x', sizeof body);
    static char big[2048];
    n = ws_http_write_response(big, sizeof big, 200, "text/html", NULL, body, sizeof body);
    CHECK(n > sizeof body && memcmp(big + n - sizeof body, body, sizeof body) == 0);
    CHECK(memmem(big, n, "Content-Length: 1234\r\n", 22) != NULL);

    CHECK_INT(ws_http_write_response(out, sizeof out, 99, NULL, NULL, NULL, 0), 0);
    CHECK_INT(ws_http_write_response(out, sizeof out, 1000, NULL, NULL, NULL, 0), 0);

    CHECK(strcmp(ws_http_reason(101), "Switching Protocols") == 0);
    CHECK(strcmp(ws_http_reason(200), "OK") == 0);
    CHECK(strcmp(ws_http_reason(400), "Bad Request") == 0);
    CHECK(strcmp(ws_http_reason(403), "Forbidden") == 0);
    CHECK(strcmp(ws_http_reason(404), "Not Found") == 0);
    CHECK(strcmp(ws_http_reason(405), "Method Not Allowed") == 0);
    CHECK(strcmp(ws_http_reason(408), "Request Timeout") == 0);
    CHECK(strcmp(ws_http_reason(426), "Upgrade Required") == 0);
    CHECK(strcmp(ws_http_reason(431), "Request Header Fields Too Large") == 0);
    CHECK(strcmp(ws_http_reason(500), "Internal Server Error") == 0);
    CHECK(strcmp(ws_http_reason(503), "Service Unavailable") == 0);
    CHECK(strcmp(ws_http_reason(299), "Error") == 0);
}

/* Parses a whole head into req (the test's buffer must outlive req's slices). */
static void parse_head(const char *text, ws_http_request_t *req)
{
    REQUIRE_INT(ws_http_parse_request((const uint8_t *)text, strlen(text), 0, NULL, req), 0);
}

/* ws_http_body_length: the Content-Length rules (RFC 9112 6.3) and the server's limits. */
static void test_body_length(void)
{
    static const struct {
        const char *head;
        int rc, status;
        uint64_t len;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0, 0},
        {"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0, 0}, /* no length: no body */
        {"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, 0, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n", 0, 0, 1000},
        {"POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n", -EBADMSG, 413, 0},
        {"POST / HTTP/1.1\r\ncontent-length: 5\r\nContent-Length: 5\r\n\r\n", 0, 0, 5},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", -EBADMSG, 400, 0},
        {"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", -EBADMSG, 400, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", -EBADMSG, 400, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", -EBADMSG, 400, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", -EBADMSG, 400, 0},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n", -EBADMSG, 413, 0},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG, 501, 0},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n", -EBADMSG, 501,
         0},
    };
    ws_http_limits_t lim = {0, 0, 1000};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ws_http_request_t req;
        parse_head(cases[i].head, &req);
        uint64_t len = 77;
        int status = -1;
        CHECK_INT(ws_http_body_length(&req, &lim, &len, &status), cases[i].rc);
        CHECK_INT(status, cases[i].status);
        CHECK_EQ_U(len, cases[i].rc == 0 ? cases[i].len : len);
    }
    /* No limits at all: no body may be carried. */
    ws_http_request_t req;
    parse_head("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", &req);
    uint64_t len;
    int status;
    CHECK_INT(ws_http_body_length(&req, NULL, &len, &status), -EBADMSG);
    CHECK_INT(status, 413);
}

static void test_query_and_keepalive(void)
{
    char out[32];
    ws_slice_t t = ws_slice("/room?a=1&token=x%2By+z&tok=no&token=second", 43);
    CHECK_INT(ws_http_query_param(t, "token", out, sizeof out), 5);
    CHECK(memcmp(out, "x+y+z", 5) == 0);
    CHECK_INT(ws_http_query_param(t, "a", out, sizeof out), 1);
    CHECK_INT(ws_http_query_param(t, "to", out, sizeof out), 0);
    CHECK_INT(ws_http_query_param(ws_slice("/room", 5), "a", out, sizeof out), 0);
    CHECK_INT(ws_http_query_param(ws_slice("/?a=%zz", 7), "a", out, sizeof out), -EINVAL);
    CHECK_INT(ws_http_query_param(ws_slice("/?a=%4", 6), "a", out, sizeof out), -EINVAL);
    CHECK_INT(ws_http_query_param(ws_slice("/?a=12345", 9), "a", out, 4), -EINVAL);
    CHECK_INT(ws_http_query_param(ws_slice("/?a=1234", 8), "a", out, 4), 4);
    CHECK_INT(ws_http_query_param(ws_slice("/?a=", 4), "a", out, 4), 0);

    ws_http_request_t req;
    parse_head("GET / HTTP/1.1\r\nHost: x\r\n\r\n", &req);
    CHECK(ws_http_keep_alive(&req));
    parse_head("GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n", &req);
    CHECK(!ws_http_keep_alive(&req));
    parse_head("GET / HTTP/1.0\r\n\r\n", &req);
    CHECK(!ws_http_keep_alive(&req));
    parse_head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &req);
    CHECK(ws_http_keep_alive(&req));

    char resp[256];
    size_t n = ws_http_write_response_conn(resp, sizeof resp, 200, NULL, NULL, "{}", 2, true);
    static const char want[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}";
    CHECK(n == sizeof want - 1 && memcmp(resp, want, n) == 0);
    CHECK(strcmp(ws_http_reason(401), "Unauthorized") == 0);
    CHECK(strcmp(ws_http_reason(413), "Content Too Large") == 0);
    CHECK(strcmp(ws_http_reason(501), "Not Implemented") == 0);
}

int main(void)
{
    test_body_length();
    test_query_and_keepalive();
    test_vectors();
    test_fields();
    test_limits();
    test_lookup();
    test_response();
    return check_exit_status("test_http");
}
