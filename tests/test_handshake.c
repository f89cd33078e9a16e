/* Unit test for core/handshake.c: the RFC 6455 example handshake with its exact accept value,
 * a Chromium request, every rejection with its status (and the 426/405 headers), case and
 * whitespace tolerance, room decoding, target forms, and the exact response bytes. */
#include "uringws/handshake.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static bool slice_is(ws_slice_t s, const char *want)
{
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.base, want, s.len) == 0);
}

static ws_http_request_t req;

/* Parses `raw` (which must be a complete head) and runs the check; reports at the caller's
 * line when the head does not parse, the status is not `want`, or the return does not match
 * it (0 for 0 and 101, -EINVAL for a refusal). Returns the status. */
static int run_at(int line, const char *raw, int want, ws_handshake_t *hs)
{
    size_t len = strlen(raw);
    int r = ws_http_parse_request((const uint8_t *)raw, len, 0, NULL, &req);
    if (r != 0 || req.head_len != len) {
        fprintf(stderr, "%s:%d: request did not parse (%d, %zu bytes)\n", __FILE__, line, r,
                req.head_len);
        check_failures++;
        memset(hs, 0, sizeof *hs);
        return -1;
    }
    int rc = ws_handshake_check(&req, hs);
    int status = hs->status;
    if (status != want || rc != (status == 0 || status == 101 ? 0 : -EINVAL)) {
        fprintf(stderr, "%s:%d: returned %d with status %d (%s), want %d\n", __FILE__, line, rc,
                status, hs->error ? hs->error : "no error", want);
        check_failures++;
    }
    if ((status == 0 || status == 101) != (hs->error == NULL)) {
        fprintf(stderr, "%s:%d: error string does not match status %d\n", __FILE__, line, status);
        check_failures++;
    }
    return status;
}

#define RUN(raw, want, hs) run_at(__LINE__, raw, want, hs)

/* The lines of a valid upgrade, to be recombined with one of them changed. */
#define GET_CHAT "GET /chat HTTP/1.1\r\n"
#define HOST     "Host: server.example.com\r\n"
#define UPGRADE  "Upgrade: websocket\r\n"
#define CONN     "Connection: Upgrade\r\n"
#define KEY      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VERSION  "Sec-WebSocket-Version: 13\r\n"
#define END      "\r\n"

#define ACCEPT_RFC "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Finds "\r\n\r\n" and checks Content-Length against the body that follows. */
static bool body_matches_length(const char *out, size_t n)
{
    const char *end = memmem(out, n, "\r\n\r\n", 4);
    const char *cl = memmem(out, n, "\r\nContent-Length: ", 18);
    if (end == NULL || cl == NULL || cl > end)
        return false;
    size_t body = n - (size_t)(end + 4 - out);
    return strtoul(cl + 18, NULL, 10) == body;
}

static bool has(const char *out, size_t n, const char *s)
{
    return memmem(out, n, s, strlen(s)) != NULL;
}

static void test_accept(void)
{
    char out[29];
    /* RFC 6455 1.3. */
    ws_handshake_accept(ws_slice("dGhlIHNhbXBsZSBub25jZQ==", 24), out);
    CHECK(strcmp(out, ACCEPT_RFC) == 0);
    /* A second published pair (the example of the WebSocket article on Wikipedia), checked
     * independently with `printf %s KEY258EAFA5-E914-47DA-95CA-C5AB0DC85B11 | openssl sha1
     * -binary | base64`. */
    ws_handshake_accept(ws_slice("x3JJHMbDL1EzLkh9GBhXDw==", 24), out);
    CHECK(strcmp(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);
}

static void test_rfc_example(void)
{
    static const char raw[] = "GET /chat HTTP/1.1\r\n"
                              "Host: server.example.com\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Origin: http://example.com\r\n"
                              "Sec-WebSocket-Protocol: chat, superchat\r\n"
                              "Sec-WebSocket-Version: 13\r\n"
                              "\r\n";
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                               "\r\n";
    ws_handshake_t hs;
    char out[256];

    CHECK_INT(RUN(raw, 101, &hs), 101);
    CHECK(strcmp(hs.accept, ACCEPT_RFC) == 0);
    CHECK(slice_is(hs.path, "/chat"));
    CHECK(strcmp(hs.room, "chat") == 0);
    CHECK_INT(hs.room_len, 4);
    CHECK(slice_is(hs.host, "server.example.com"));
    CHECK(slice_is(hs.origin, "http://example.com"));
    CHECK(slice_is(hs.protocols, "chat, superchat"));
    CHECK_INT(hs.extensions.len, 0);
    /* Slices point into the request. */
    CHECK(hs.host.base > (const uint8_t *)raw && hs.host.base < (const uint8_t *)raw + sizeof raw);

    size_t n = ws_handshake_response(&hs, out, sizeof out);
    CHECK_INT(n, sizeof want - 1);
    CHECK(n == sizeof want - 1 && memcmp(out, want, n) == 0);
    /* The offered subprotocols are not selected: no Sec-WebSocket-Protocol in the 101. */
    CHECK(!has(out, n, "Sec-WebSocket-Protocol"));
    CHECK_INT(ws_handshake_response(&hs, out, sizeof want - 1), sizeof want - 1);
    CHECK_INT(ws_handshake_response(&hs, out, sizeof want - 2), 0);
}

static void test_chromium(void)
{
    /* What Chromium 120 sends for new WebSocket("ws://127.0.0.1:8080/"). */
    static const char raw[] =
        "GET / HTTP/1.1\r\n"
        "Host: 127.0.0.1:8080\r\n"
        "Connection: Upgrade\r\n"
        "Pragma: no-cache\r\n"
        "Cache-Control: no-cache\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36\r\n"
        "Upgrade: websocket\r\n"
        "Origin: http://127.0.0.1:8080\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Accept-Encoding: gzip, deflate, br\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n"
        "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        "\r\n";
    ws_handshake_t hs;
    char out[256];

    CHECK_INT(RUN(raw, 101, &hs), 101);
    CHECK(strcmp(hs.accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=") == 0);
    CHECK(strcmp(hs.room, WS_ROOM_DEFAULT) == 0);
    CHECK_INT(hs.room_len, 5);
    CHECK(slice_is(hs.path, "/"));
    CHECK(slice_is(hs.host, "127.0.0.1:8080"));
    CHECK(slice_is(hs.origin, "http://127.0.0.1:8080"));
    CHECK(slice_is(hs.extensions, "permessage-deflate; client_max_window_bits"));
    CHECK_INT(hs.protocols.len, 0);
    size_t n = ws_handshake_response(&hs, out, sizeof out);
    CHECK(n > 0 && has(out, n, "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n"));
    /* permessage-deflate is not implemented, so it must not be accepted. */
    CHECK(!has(out, n, "Sec-WebSocket-Extensions"));
}

static void test_plain(void)
{
    ws_handshake_t hs;
    char out[256];

    RUN("GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\n\r\n", 0, &hs);
    CHECK(slice_is(hs.path, "/"));
    CHECK(slice_is(hs.host, "a"));
    CHECK_INT(hs.room_len, 0);
    CHECK(hs.room[0] == '\0');
    CHECK_INT(ws_handshake_response(&hs, out, sizeof out), 0);
    RUN("GET /healthz?verbose=1 HTTP/1.1\r\nHost: a\r\n\r\n", 0, &hs);
    CHECK(slice_is(hs.path, "/healthz"));
    RUN("GET /metrics HTTP/1.0\r\n\r\n", 0, &hs);
    CHECK(slice_is(hs.path, "/metrics"));
    /* Paths that would be bad rooms are fine pages (the caller answers 404). */
    RUN("GET /a/b/%zz HTTP/1.1\r\nHost: a\r\n\r\n", 0, &hs);
    CHECK(slice_is(hs.path, "/a/b/%zz"));
    /* Method handling of plain requests belongs to the caller. */
    RUN("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0, &hs);
    /* Connection: Upgrade without an Upgrade header is not an upgrade attempt. */
    RUN("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n", 0, &hs);
    /* RFC 9112 3.2: an HTTP/1.1 request needs exactly one Host. */
    RUN("GET / HTTP/1.1\r\n\r\n", 400, &hs);
    CHECK(slice_is(hs.path, "/"));
    RUN("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, &hs);
    RUN("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, &hs);
    RUN("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400, &hs);
}

static void check_error_response(int line, const ws_handshake_t *hs, const char *status_line,
                                 const char *extra)
{
    char out[512];
    size_t n = ws_handshake_response(hs, out, sizeof out);
    bool ok = n > 0 && n < sizeof out && strncmp(out, status_line, strlen(status_line)) == 0 &&
              has(out, n, "\r\nContent-Type: text/plain") &&
              has(out, n, "\r\nConnection: close\r\n") && body_matches_length(out, n) &&
              hs->error != NULL && has(out, n, hs->error) && (extra == NULL || has(out, n, extra));
    if (!ok) {
        fprintf(stderr, "%s:%d: bad error response: %.*s\n", __FILE__, line, (int)n, out);
        check_failures++;
    }
    if (ws_handshake_response(hs, out, n) != n || ws_handshake_response(hs, out, n - 1) != 0) {
        fprintf(stderr, "%s:%d: error response does not fit exactly\n", __FILE__, line);
        check_failures++;
    }
}

static void test_rejections(void)
{
    ws_handshake_t hs;

    /* 405 with Allow: GET. Methods are case-sensitive. */
    RUN("POST /chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 405, &hs);
    check_error_response(__LINE__, &hs, "HTTP/1.1 405 Method Not Allowed\r\n",
                         "\r\nAllow: GET\r\n");
    RUN("get /chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 405, &hs);
    RUN("HEAD /chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 405, &hs);

    /* HTTP/1.0 */
    RUN("GET /chat HTTP/1.0\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    check_error_response(__LINE__, &hs, "HTTP/1.1 400 Bad Request\r\n", NULL);

    /* Host: missing, repeated, empty. */
    RUN(GET_CHAT UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN(GET_CHAT "Host:\r\n" UPGRADE CONN KEY VERSION END, 400, &hs);

    /* Upgrade: other protocol, empty, missing while a key is present, near misses. */
    RUN(GET_CHAT HOST "Upgrade: h2c\r\n" CONN KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST "Upgrade:\r\n" CONN KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST CONN KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST "Upgrade: websockets\r\n" CONN KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST "Upgrade: websocket/13\r\n" CONN KEY VERSION END, 400, &hs);

    /* Connection without upgrade, or missing. */
    RUN(GET_CHAT HOST UPGRADE "Connection: keep-alive\r\n" KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST UPGRADE KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST UPGRADE "Connection: upgrades\r\n" KEY VERSION END, 400, &hs);

    /* Sec-WebSocket-Key: missing, repeated, not 16 bytes, not base64. */
    RUN(GET_CHAT HOST UPGRADE CONN VERSION END, 400, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN KEY KEY VERSION END, 400, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" VERSION END, 400,
        &hs); /* 15 bytes */
    RUN(GET_CHAT HOST UPGRADE CONN "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n" VERSION END,
        400, &hs); /* 17 bytes */
    RUN(GET_CHAT HOST UPGRADE CONN
        "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n" VERSION END,
        400, &hs); /* 21 bytes */
    RUN(GET_CHAT HOST UPGRADE CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n" VERSION END, 400,
        &hs); /* unpadded */
    RUN(GET_CHAT HOST UPGRADE CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=\r\n" VERSION END,
        400, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN "Sec-WebSocket-Key: dGhlIHNhbXB sZSBub25jZQ==\r\n" VERSION END,
        400, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN "Sec-WebSocket-Key:\r\n" VERSION END, 400, &hs);
    check_error_response(__LINE__, &hs, "HTTP/1.1 400 Bad Request\r\n", NULL);

    /* Sec-WebSocket-Version: missing or other -> 426 naming 13; repeated -> 400. */
    RUN(GET_CHAT HOST UPGRADE CONN KEY END, 426, &hs);
    check_error_response(__LINE__, &hs, "HTTP/1.1 426 Upgrade Required\r\n",
                         "\r\nSec-WebSocket-Version: 13\r\n");
    RUN(GET_CHAT HOST UPGRADE CONN KEY "Sec-WebSocket-Version: 8\r\n" END, 426, &hs);
    check_error_response(__LINE__, &hs, "HTTP/1.1 426 Upgrade Required\r\n",
                         "\r\nSec-WebSocket-Version: 13\r\n");
    RUN(GET_CHAT HOST UPGRADE CONN KEY "Sec-WebSocket-Version: 013\r\n" END, 426, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN KEY "Sec-WebSocket-Version: 13, 8\r\n" END, 426, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN KEY "Sec-WebSocket-Version:\r\n" END, 426, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN KEY VERSION VERSION END, 400, &hs);
    RUN(GET_CHAT HOST UPGRADE CONN KEY VERSION "Sec-WebSocket-Version: 8\r\n" END, 400, &hs);
    /* The version is judged before the key: an old draft learns which version we speak. */
    RUN(GET_CHAT HOST UPGRADE CONN "Sec-WebSocket-Version: 8\r\n" END, 426, &hs);

    /* A key alone marks an upgrade attempt, which then lacks Upgrade. */
    RUN(GET_CHAT HOST KEY VERSION END, 400, &hs);
    CHECK(hs.error != NULL && strstr(hs.error, "Upgrade") != NULL);
}

static void test_tolerance(void)
{
    ws_handshake_t hs;

    /* Header names and the Upgrade/Connection tokens in any case. */
    RUN("GET /chat HTTP/1.1\r\n"
        "HOST: server.example.com\r\n"
        "UPGRADE: WebSocket\r\n"
        "connection: UPGRADE\r\n"
        "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "SEC-WEBSOCKET-VERSION: 13\r\n"
        "oRiGiN: null\r\n"
        "\r\n",
        101, &hs);
    CHECK(strcmp(hs.accept, ACCEPT_RFC) == 0);
    CHECK(slice_is(hs.origin, "null"));
    /* Token lists. */
    RUN(GET_CHAT HOST UPGRADE "Connection: keep-alive, Upgrade\r\n" KEY VERSION END, 101, &hs);
    RUN(GET_CHAT HOST UPGRADE "Connection: Upgrade,keep-alive\r\n" KEY VERSION END, 101, &hs);
    RUN(GET_CHAT HOST UPGRADE "Connection: keep-alive\r\nConnection: upgrade\r\n" KEY VERSION END,
        101, &hs);
    RUN(GET_CHAT HOST "Upgrade: foo/2, websocket\r\n" CONN KEY VERSION END, 101, &hs);
    /* Optional whitespace around values, none at all, tabs. */
    RUN("GET /chat HTTP/1.1\r\n"
        "Host:server.example.com\r\n"
        "Upgrade:websocket\r\n"
        "Connection: \t Upgrade \t \r\n"
        "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n"
        "Sec-WebSocket-Version:\t13\t\r\n"
        "\r\n",
        101, &hs);
    CHECK(strcmp(hs.accept, ACCEPT_RFC) == 0);
    CHECK(slice_is(hs.host, "server.example.com"));
}

/* The room for path `path` of an otherwise valid upgrade: `want` NULL means 400. */
static void room_at(int line, const char *path, const char *want, size_t want_len)
{
    char raw[1024];
    ws_handshake_t hs;
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, path);
    int status = run_at(line, raw, want ? 101 : 400, &hs);
    if (want != NULL && status == 101 &&
        (hs.room_len != want_len || memcmp(hs.room, want, want_len) != 0 ||
         hs.room[want_len] != '\0')) {
        fprintf(stderr, "%s:%d: room of %s is \"%s\" (%zu bytes)\n", __FILE__, line, path, hs.room,
                hs.room_len);
        check_failures++;
    }
}

#define ROOM(path, want) room_at(__LINE__, path, want, sizeof(want) - 1)
#define ROOM_BAD(path)   room_at(__LINE__, path, NULL, 0)

static void test_rooms(void)
{
    ROOM("/", "lobby");
    ROOM("/lobby", "lobby");
    ROOM("/a%20b", "a b");
    ROOM("/%E2%82%AC", "\xe2\x82\xac");
    ROOM("/%e2%82%ac", "\xe2\x82\xac");
    ROOM("/caf\xc3\xa9", "caf\xc3\xa9"); /* raw UTF-8 in the target */
    ROOM("/room?x=1", "room");
    ROOM("/?x=1", "lobby");
    ROOM("/a+b", "a+b");
    ROOM("/%3F%23", "?#");
    ROOM("/%F0%9F%98%80", "\xf0\x9f\x98\x80");
    ROOM("/%F4%8F%BF%BF", "\xf4\x8f\xbf\xbf"); /* U+10FFFF */

    ROOM_BAD("/%zz");
    ROOM_BAD("/%2");
    ROOM_BAD("/%");
    ROOM_BAD("/a%g0");
    ROOM("/a/b", "a/b");
    ROOM("/news/eu/fr", "news/eu/fr");
    ROOM("/a/%20b", "a/ b");
    ROOM_BAD("//");
    ROOM_BAD("/a//b");
    ROOM_BAD("/a/");
    ROOM_BAD("/%2F");
    ROOM_BAD("/%2f");
    ROOM_BAD("/%00");
    ROOM_BAD("/a%0Ab");
    ROOM_BAD("/%1f");
    ROOM_BAD("/%7F");
    ROOM_BAD("/%C0%AF");       /* overlong '/' */
    ROOM_BAD("/%E0%80%80");    /* overlong */
    ROOM_BAD("/%ED%A0%80");    /* surrogate */
    ROOM_BAD("/%F4%90%80%80"); /* above U+10FFFF */
    ROOM_BAD("/%E2%82");       /* truncated */
    ROOM_BAD("/%80");          /* lone continuation */
    ROOM_BAD("/%FF");
    ROOM_BAD("/\xff");

    /* 64 bytes fit, 65 do not, whether raw or escaped. */
    char path[512], want[65];
    memset(want, 'r', 64);
    path[0] = '/';
    memset(path + 1, 'r', 64);
    path[65] = '\0';
    room_at(__LINE__, path, want, 64);
    path[65] = 'r';
    path[66] = '\0';
    ROOM_BAD(path);
    path[0] = '/';
    for (int i = 0; i < 64; i++)
        memcpy(path + 1 + 3 * i, "%72", 3);
    path[1 + 3 * 64] = '\0';
    room_at(__LINE__, path, want, 64);
    memcpy(path + 1 + 3 * 64, "%72", 4);
    ROOM_BAD(path);
    /* 21 euro signs are 63 bytes; a 22nd is 66. */
    path[0] = '/';
    path[1] = '\0';
    for (int i = 0; i < 22; i++)
        strcat(path, "%E2%82%AC");
    ROOM_BAD(path);
    path[1 + 21 * 9] = '\0';
    ws_handshake_t hs;
    char raw[1024];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, path);
    RUN(raw, 101, &hs);
    CHECK_INT(hs.room_len, 63);
}

static void test_targets(void)
{
    ws_handshake_t hs;

    RUN("GET * HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN("GET chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN("GET server.example.com:80 HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    /* absolute-form: accepted (RFC 6455 4.2.1, RFC 9112 3.2.2); its authority is the host. */
    RUN("GET http://other.example:8080/chat?x=1 HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END,
        101, &hs);
    CHECK(strcmp(hs.room, "chat") == 0);
    CHECK(slice_is(hs.path, "/chat"));
    CHECK(slice_is(hs.host, "other.example:8080"));
    RUN("GET HTTPS://h/%41 HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 101, &hs);
    CHECK(strcmp(hs.room, "A") == 0);
    RUN("GET http://h HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 101, &hs);
    CHECK(slice_is(hs.path, "/"));
    CHECK(strcmp(hs.room, "lobby") == 0);
    RUN("GET http://h?x HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 101, &hs);
    CHECK(strcmp(hs.room, "lobby") == 0);
    RUN("GET http://user@h/chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN("GET http:///chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN("GET http://h#x/chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN("GET http://h#x HTTP/1.1\r\nHost: h\r\n\r\n", 400, &hs);
    RUN("GET ftp://h/chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN("GET ws://h/chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    RUN("GET http:/chat HTTP/1.1\r\n" HOST UPGRADE CONN KEY VERSION END, 400, &hs);
    /* Plain requests in absolute-form get their path too. */
    RUN("GET http://h/healthz?x HTTP/1.1\r\nHost: h\r\n\r\n", 0, &hs);
    CHECK(slice_is(hs.path, "/healthz"));
}

static void test_error_responses(void)
{
    char out[512];
    static const char want431[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 32\r\n"
                                  "Connection: close\r\n"
                                  "\r\n"
                                  "Request Header Fields Too Large\n";
    size_t n = ws_handshake_error_response(431, NULL, out, sizeof out);
    CHECK_INT(n, sizeof want431 - 1);
    CHECK(n == sizeof want431 - 1 && memcmp(out, want431, n) == 0);

    static const char want426[] = "HTTP/1.1 426 Upgrade Required\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Content-Length: 4\r\n"
                                  "Connection: close\r\n"
                                  "Sec-WebSocket-Version: 13\r\n"
                                  "\r\n"
                                  "v13\n";
    n = ws_handshake_error_response(426, "v13", out, sizeof out);
    CHECK_INT(n, sizeof want426 - 1);
    CHECK(n == sizeof want426 - 1 && memcmp(out, want426, n) == 0);

    n = ws_handshake_error_response(400, "malformed request head", out, sizeof out);
    CHECK(n > 0 && strncmp(out, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(body_matches_length(out, n));
    CHECK(n > 0 && memcmp(out + n - 23, "malformed request head\n", 23) == 0);
    /* A reason longer than the body bound is cut, not overflowed. */
    char longwhy[600];
    memset(longwhy, 'w', sizeof longwhy - 1);
    longwhy[sizeof longwhy - 1] = '\0';
    n = ws_handshake_error_response(400, longwhy, out, sizeof out);
    CHECK(n > 0 && body_matches_length(out, n));
    CHECK(n > 0 && out[n - 1] == '\n');

    CHECK_INT(ws_handshake_error_response(200, NULL, out, sizeof out), 0);
    CHECK_INT(ws_handshake_error_response(101, NULL, out, sizeof out), 0);
    CHECK_INT(ws_handshake_error_response(400, NULL, out, 10), 0);
}

static void test_pipelined(void)
{
    /* The client may send its first frame in the same packet as the head. */
    static const char raw[] =
        GET_CHAT HOST UPGRADE CONN KEY VERSION END "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    ws_http_request_t r;
    ws_handshake_t hs;
    CHECK_INT(ws_http_parse_request((const uint8_t *)raw, sizeof raw - 1, 0, NULL, &r), 0);
    CHECK_INT(r.head_len, sizeof raw - 1 - 11);
    CHECK_INT(ws_handshake_check(&r, &hs), 0);
    CHECK_INT(hs.status, 101);
    CHECK(strcmp(hs.accept, ACCEPT_RFC) == 0);
}

int main(void)
{
    test_accept();
    test_rfc_example();
    test_chromium();
    test_plain();
    test_rejections();
    test_tolerance();
    test_rooms();
    test_targets();
    test_error_responses();
    test_pipelined();
    return check_exit_status("test_handshake");
}
