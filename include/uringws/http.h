/* HTTP/1.1 request-head parser for the WebSocket upgrade (and the few plain GETs the server
 * answers). Zero copy: every field is a slice into the caller's buffer. Incremental in the
 * picohttpparser way: call again on the grown buffer, passing how many bytes the previous
 * call saw, and the search for the end of the head resumes where it stopped. */
#ifndef URINGWS_HTTP_H
#define URINGWS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WS_HTTP_MAX_HEADER_BYTES_DEFAULT 8192
#define WS_HTTP_MAX_HEADERS_DEFAULT      64
#define WS_HTTP_HEADERS_CAP              128 /* hard cap on max_headers (size of the array below) */

/* A field left 0 takes its default, so a zeroed config struct means "defaults". */
typedef struct ws_http_limits {
    size_t max_header_bytes; /* request line + headers + final CRLF; over it: 431. 8 KiB */
    size_t max_headers;      /* header lines; over it: 431. 64, at most WS_HTTP_HEADERS_CAP */
    uint64_t max_body;       /* Content-Length; over it: 413 (ws_http_body_length). 0 = no
                                request may carry a body */
} ws_http_limits_t;

typedef struct ws_http_header {
    ws_slice_t name;  /* as sent (compare case-insensitively) */
    ws_slice_t value; /* leading and trailing spaces/tabs trimmed */
} ws_http_header_t;

typedef struct ws_http_request {
    ws_slice_t method;
    ws_slice_t target; /* request-target as sent, e.g. "/room?x=1" */
    int minor_version; /* 1 for HTTP/1.1, 0 for HTTP/1.0 */
    size_t num_headers;
    size_t head_len; /* after 0: bytes of the head with its final CRLF CRLF; else 0 */
    int status;      /* after -EBADMSG: 400; after -EMSGSIZE: 431; else 0 */
    ws_http_header_t headers[WS_HTTP_HEADERS_CAP];
} ws_http_request_t;

/* Parses the request head in buf[0..len). `prev_len` is the len of the previous call on the
 * same request (0 the first time). `lim` may be NULL for the defaults. Returns:
 *   0              complete: req->head_len is the head's length including the final CRLF CRLF
 *                  (bytes after it belong to the WebSocket stream);
 *   WS_INCOMPLETE  (-EAGAIN) need more bytes;
 *   -EBADMSG       malformed head (bad request line, bare CR, NUL or other control bytes,
 *                  header without colon, space before colon, obsolete line folding, HTTP
 *                  version other than 1.x): req->status is 400, the status to answer with;
 *   -EMSGSIZE      the head exceeds max_header_bytes or max_headers (also while still
 *                  incomplete): req->status is 431.
 * req->status and req->head_len are 0 whenever they are not set as above; the other fields
 * of `req` are meaningful only after 0.
 *
 * Lines must end in CRLF: a bare LF is rejected (-EBADMSG) like a bare CR, so the head ends
 * at exactly the first CRLF CRLF and nothing in front of us can read a different head. Method
 * and header names are tokens; the target is visible ASCII or bytes >= 0x80; values are
 * VCHAR, SP, HTAB or bytes >= 0x80. A malformed line is reported once its LF has arrived and
 * the header count once the first byte of one line too many has, so the result on a prefix
 * is either WS_INCOMPLETE or the result on the whole buffer: feeding a request in any pieces
 * gives what parsing it at once gives. */
WS_WARN_UNUSED int ws_http_parse_request(const uint8_t *buf, size_t len, size_t prev_len,
                                         const ws_http_limits_t *lim, ws_http_request_t *req);

/* First header named `name` (case-insensitive), or NULL. */
const ws_http_header_t *ws_http_find(const ws_http_request_t *req, const char *name);
/* Number of headers named `name`. */
size_t ws_http_count(const ws_http_request_t *req, const char *name);
/* True when some `name` header holds `token` in its comma-separated list (case-insensitive,
 * optional whitespace around commas), e.g. "Connection: keep-alive, Upgrade". */
bool ws_http_has_token(const ws_http_request_t *req, const char *name, const char *token);
/* True when one field value, read as a comma-separated list (RFC 9110 5.6.1: optional
 * whitespace around elements, empty elements skipped), holds `token` (case-insensitive). */
bool ws_http_list_has_token(ws_slice_t value, const char *token);
/* Case-insensitive comparison of a slice with a NUL-terminated ASCII string. */
bool ws_http_eq_ci(ws_slice_t s, const char *lit);

/* The length of the request's body (RFC 9112 6.3) into *len: 0 with *len set (0 without
 * Content-Length: no body), or -EBADMSG with *status 400 (a Content-Length that is not
 * digits, or several that differ), 413 (over lim->max_body) or 501 (any Transfer-Encoding:
 * chunked bodies are not supported). */
WS_WARN_UNUSED int ws_http_body_length(const ws_http_request_t *req, const ws_http_limits_t *lim,
                                       uint64_t *len, int *status);
/* The value of a hex digit (either case), or -1. */
int ws_http_hex_digit(int ch);
/* The value of the first query parameter `name` in a request-target ("/x?a=1&name=v"),
 * percent-decoded ('+' stays '+') into out[0..cap): its length, 0 when the parameter is
 * absent or empty, or -EINVAL for a bad escape or a value longer than cap. */
long ws_http_query_param(ws_slice_t target, const char *name, char *out, size_t cap);
/* Whether the connection may carry another request after this one: HTTP/1.1 without
 * `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`. */
bool ws_http_keep_alive(const ws_http_request_t *req);

/* Reason phrase for the statuses the server sends ("Bad Request", ...), "Error" otherwise. */
const char *ws_http_reason(int status);
/* Writes a complete response with `Connection: close`, the given content type and body, and
 * optional extra header lines (`extra` must end in CRLF, may be NULL). Returns the length, or
 * 0 when it does not fit in cap (exactly cap bytes fit; no NUL is written) or status is not
 * three digits. content_type NULL omits Content-Type. The strings are the server's own and
 * are copied as they are. */
size_t ws_http_write_response(char *out, size_t cap, int status, const char *content_type,
                              const char *extra, const void *body, size_t body_len);
/* The same with `Connection: keep-alive` when keep_alive is set (else `close`). */
size_t ws_http_write_response_conn(char *out, size_t cap, int status, const char *content_type,
                                   const char *extra, const void *body, size_t body_len,
                                   bool keep_alive);

#ifdef __cplusplus
}
#endif

#endif
