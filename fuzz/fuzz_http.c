/* libFuzzer driver for the HTTP request-head parser and the WebSocket handshake.
 *
 * Differential: the input is parsed in one shot and fed incrementally in pieces whose
 * sizes come from the input's own hash; both must agree on the result and, for a parsed
 * head, on every slice. Every intermediate call must also equal a fresh one-shot parse of
 * the same prefix (the resume path is exact), and a prefix may only answer WS_INCOMPLETE or
 * the final result; the status beside a refusal must match its errno. Each run is repeated under
 * small limits derived from the input, so the 431 paths are reached. Every parsed head then goes
 * through ws_handshake_check and ws_handshake_response with invariants on their output, and
 * through the body-length, query-parameter and keep-alive rules. Each call
 * gets an exactly sized heap copy so that AddressSanitizer sees any read past len. Any mismatch
 * aborts. */
#include "uringws/handshake.h"
#include "uringws/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_http: " __VA_ARGS__);                                                \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t next(uint64_t *s)
{
    /* splitmix64: cheap, and a different sequence for every input. */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint8_t *dup_exact(const uint8_t *data, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    if (p == NULL)
        abort();
    if (len != 0)
        memcpy(p, data, len);
    return p;
}

/* One parse, as one comparable number: the head length after 0, else the errno. Aborts when
 * the out fields do not agree with the errno (status 400 with -EBADMSG, 431 with -EMSGSIZE,
 * else 0; head_len only after 0). */
static int parse(const uint8_t *buf, size_t len, size_t prev, const ws_http_limits_t *lim,
                 ws_http_request_t *req)
{
    int rc = ws_http_parse_request(buf, len, prev, lim, req);
    int status = rc == -EBADMSG ? 400 : rc == -EMSGSIZE ? 431 : 0;
    if (rc != 0 && rc != WS_INCOMPLETE && rc != -EBADMSG && rc != -EMSGSIZE)
        FAIL("unexpected result %d", rc);
    if (req->status != status || (rc == 0) != (req->head_len != 0))
        FAIL("result %d with status %d and head length %zu", rc, req->status, req->head_len);
    return rc == 0 ? (int)req->head_len : rc;
}

static bool in_buf(ws_slice_t s, const uint8_t *buf, size_t len)
{
    return s.len <= len && s.base >= buf && s.base <= buf + len - s.len;
}

static bool same_slice(ws_slice_t a, const uint8_t *abuf, ws_slice_t b, const uint8_t *bbuf)
{
    return a.len == b.len && a.base - abuf == b.base - bbuf;
}

static void compare(int r, const ws_http_request_t *a, const uint8_t *abuf,
                    const ws_http_request_t *b, const uint8_t *bbuf, const char *what)
{
    if (r <= 0)
        return;
    if (!same_slice(a->method, abuf, b->method, bbuf) ||
        !same_slice(a->target, abuf, b->target, bbuf) || a->minor_version != b->minor_version ||
        a->num_headers != b->num_headers)
        FAIL("%s: request line or header count differs", what);
    for (size_t i = 0; i < a->num_headers; i++)
        if (!same_slice(a->headers[i].name, abuf, b->headers[i].name, bbuf) ||
            !same_slice(a->headers[i].value, abuf, b->headers[i].value, bbuf))
            FAIL("%s: header %zu differs", what, i);
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* What a parsed head must look like, whatever the input. */
static void check_head(int r, const ws_http_request_t *req, const uint8_t *buf, size_t len,
                       size_t max_bytes, size_t max_headers)
{
    if (r <= 0)
        return;
    size_t n = (size_t)r;
    if (n > len || n > max_bytes || n < 4 || memcmp(buf + n - 4, "\r\n\r\n", 4) != 0)
        FAIL("head length %d does not end at CRLF CRLF within %zu bytes", r, len);
    /* The head ends at the first CRLF CRLF. */
    for (size_t i = 0; i + 4 < n; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
            FAIL("head of %d bytes has an earlier CRLF CRLF at %zu", r, i);
    if (req->num_headers > max_headers)
        FAIL("%zu headers over the limit %zu", req->num_headers, max_headers);
    if (req->minor_version != 0 && req->minor_version != 1)
        FAIL("minor version %d", req->minor_version);
    if (req->method.len == 0 || req->target.len == 0 || !in_buf(req->method, buf, n) ||
        !in_buf(req->target, buf, n))
        FAIL("request line slices outside the head");
    for (size_t i = 0; i < req->num_headers; i++) {
        ws_slice_t k = req->headers[i].name, v = req->headers[i].value;
        if (k.len == 0 || !in_buf(k, buf, n) || !in_buf(v, buf, n))
            FAIL("header %zu outside the head", i);
        if (k.base[k.len] != ':')
            FAIL("header %zu name not followed by a colon", i);
        if (v.len != 0 && (is_ows(v.base[0]) || is_ows(v.base[v.len - 1])))
            FAIL("header %zu value not trimmed", i);
        for (size_t j = 0; j < v.len; j++)
            if ((v.base[j] < 0x20 && v.base[j] != '\t') || v.base[j] == 0x7f)
                FAIL("control byte in header %zu value", i);
    }
}

static void check_handshake(const ws_http_request_t *req, const uint8_t *buf, size_t n)
{
    ws_handshake_t hs;
    char out[1024];
    int rc = ws_handshake_check(req, &hs);
    int st = hs.status;
    if (st != 0 && st != 101 && st != 400 && st != 405 && st != 426)
        FAIL("handshake status %d", st);
    if (rc != (st == 0 || st == 101 ? 0 : -EINVAL))
        FAIL("handshake returned %d with status %d", rc, st);
    if ((st == 0 || st == 101) != (hs.error == NULL))
        FAIL("error string does not match status %d", st);
    /* Every slice points into the head, except the static "/" of an empty absolute path. */
    if (!in_buf(hs.host, buf, n) && hs.host.base != NULL)
        FAIL("host outside the head");
    if ((!in_buf(hs.origin, buf, n) && hs.origin.base != NULL) ||
        (!in_buf(hs.extensions, buf, n) && hs.extensions.base != NULL) ||
        (!in_buf(hs.protocols, buf, n) && hs.protocols.base != NULL))
        FAIL("offered fields outside the head");
    /* An unusable target leaves the path empty; such a request never succeeds. */
    if (hs.path.base == NULL
            ? hs.path.len != 0 || st == 0 || st == 101
            : !in_buf(hs.path, buf, n) && !(hs.path.len == 1 && hs.path.base[0] == '/'))
        FAIL("path outside the head");
    if (hs.path.base != NULL && (hs.path.len == 0 || hs.path.base[0] != '/'))
        FAIL("path does not start with '/'");
    if (hs.room_len > WS_ROOM_MAX || strlen(hs.room) != hs.room_len)
        FAIL("room length %zu", hs.room_len);
    if (st == 101) {
        if (hs.room_len == 0 || strlen(hs.accept) != 28)
            FAIL("101 without room or accept");
        for (size_t i = 0; i < hs.room_len; i++)
            if ((uint8_t)hs.room[i] < 0x20 || hs.room[i] == 0x7f)
                FAIL("room has a forbidden byte");
        if (hs.room[0] == '/' || hs.room[hs.room_len - 1] == '/' || strstr(hs.room, "//"))
            FAIL("room has an empty segment");
        const ws_http_header_t *key = ws_http_find(req, "Sec-WebSocket-Key");
        char again[29];
        if (key == NULL)
            FAIL("101 without a key");
        ws_handshake_accept(key->value, again);
        if (strcmp(again, hs.accept) != 0)
            FAIL("accept value not reproducible");
    } else if (hs.room_len != 0) {
        FAIL("room set with status %d", st);
    }

    size_t len = ws_handshake_response(&hs, out, sizeof out);
    if (st == 0) {
        if (len != 0)
            FAIL("response written for a plain request");
        return;
    }
    char status_line[16];
    snprintf(status_line, sizeof status_line, "HTTP/1.1 %d ", st);
    if (len == 0 || len > sizeof out || memcmp(out, status_line, strlen(status_line)) != 0)
        FAIL("response for %d: %zu bytes", st, len);
    if (memmem(out, len, "\r\n\r\n", 4) == NULL)
        FAIL("response without end of head");
    if (ws_handshake_response(&hs, out, len) != len || ws_handshake_response(&hs, out, len - 1))
        FAIL("response does not fit exactly in %zu bytes", len);
}

/* The body rules on a parsed head: the out fields agree with the result, a length comes from
 * a Content-Length header that says it, and the query and keep-alive helpers stay inside
 * their buffers. */
static void check_body(const ws_http_request_t *req, uint64_t seed)
{
    ws_http_limits_t lim = {0, 0, seed % 4096};
    uint64_t len = 1;
    int status = -1;
    int rc = ws_http_body_length(req, &lim, &len, &status);
    if (rc == 0) {
        if (status != 0 || len > lim.max_body)
            FAIL("body length %llu (limit %llu) with status %d", (unsigned long long)len,
                 (unsigned long long)lim.max_body, status);
        const ws_http_header_t *cl = ws_http_find(req, "Content-Length");
        if (len && (!cl || cl->value.len == 0))
            FAIL("a body without Content-Length");
        if (ws_http_find(req, "Transfer-Encoding"))
            FAIL("Transfer-Encoding accepted");
    } else if (rc != -EBADMSG || (status != 400 && status != 413 && status != 501)) {
        FAIL("body length answered %d with status %d", rc, status);
    }
    char *out = malloc(16);
    if (!out)
        abort();
    long q = ws_http_query_param(req->target, "token", out, 16);
    if (q > 16 || (q < 0 && q != -EINVAL))
        FAIL("query parameter of %ld bytes", q);
    free(out);
    (void)ws_http_keep_alive(req);
}

/* One-shot vs incremental under one set of limits. */
static void run(const uint8_t *data, size_t size, const ws_http_limits_t *lim, uint64_t seed,
                size_t max_bytes, size_t max_headers)
{
    ws_http_request_t one, part;
    uint8_t *whole = dup_exact(data, size);
    int want = parse(whole, size, 0, lim, &one);
    check_head(want, &one, whole, size, max_bytes, max_headers);

    /* Feed in pieces: mostly small ones, sometimes a large jump. */
    size_t prev = 0;
    int got = WS_INCOMPLETE;
    while (prev < size && got == WS_INCOMPLETE) {
        uint64_t z = next(&seed);
        size_t step =
            (z & 3) == 0 ? (size_t)(z >> 8) % (size - prev) + 1 : (size_t)(z >> 8) % 8 + 1;
        size_t k = prev + step < size ? prev + step : size;
        uint8_t *buf = dup_exact(data, k);
        got = parse(buf, k, prev, lim, &part);
        ws_http_request_t fresh;
        int alone = parse(buf, k, 0, lim, &fresh);
        if (alone != got)
            FAIL("prefix %zu: resumed from %zu gives %d, fresh parse %d", k, prev, got, alone);
        compare(got, &part, buf, &fresh, buf, "resumed vs fresh");
        if (got != WS_INCOMPLETE && got != want)
            FAIL("prefix %zu gives %d, whole input %d", k, got, want);
        compare(got, &part, buf, &one, whole, "incremental vs one-shot");
        free(buf);
        prev = k;
    }
    if (got != want)
        FAIL("incremental gives %d, one-shot %d", got, want);

    if (want > 0) {
        check_handshake(&one, whole, (size_t)want);
        check_body(&one, seed);
    } else if (want != WS_INCOMPLETE) {
        char out[512];
        size_t n = ws_handshake_error_response(one.status, NULL, out, sizeof out);
        if (n == 0 || memcmp(out, want == -EBADMSG ? "HTTP/1.1 400 " : "HTTP/1.1 431 ", 13) != 0)
            FAIL("error response for %d", want);
    }
    free(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t seed = fnv1a(data, size);
    run(data, size, NULL, seed, WS_HTTP_MAX_HEADER_BYTES_DEFAULT, WS_HTTP_MAX_HEADERS_DEFAULT);
    ws_http_limits_t small = {(size_t)(seed % 512) + 1, (size_t)((seed >> 16) % 8) + 1, 0};
    run(data, size, &small, seed >> 1, small.max_header_bytes, small.max_headers);
    return 0;
}
