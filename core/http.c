/* HTTP/1.1 request-head parser (uringws/http.h) and the helpers the handshake and the plain
 * pages share: header lookup, token lists, reason phrases, response writing. It never
 * allocates and never copies request bytes, and it knows nothing of WebSocket rules: those
 * live in core/handshake.c.
 *
 * How the parser stays incremental without keeping state between calls: every result it can
 * give is decided at one byte position, and that position depends only on the bytes before
 * it. A malformed line is decided at its LF, the end of the head at the LF of the empty
 * line, "too many headers" at the first byte of the line one past the limit, and "too many
 * bytes" at byte max_header_bytes. A parse reports the earliest of these, so a prefix of a
 * request parses to WS_INCOMPLETE or to what the whole request parses to. When a call adds
 * bytes without an LF (and the previous call did not end on one), no new position can
 * decide anything, and the call answers from the byte count alone; otherwise it parses the
 * head again from the start, as picohttpparser does. Re-parsing happens at most twice per
 * line, and lines are bounded by max_headers, so a client trickling bytes costs
 * O(max_headers * max_header_bytes) in total, not per byte. */
#include "uringws/http.h"

#include <errno.h>
#include <string.h>

/* Byte classes. TCHAR: RFC 9110 5.6.2 token characters (methods, header names). VALUE:
 * field-value bytes, i.e. HTAB, SP, VCHAR and obs-text; every other control byte, DEL
 * included, is refused. TARGET: request-target bytes, VCHAR and, tolerated like
 * picohttpparser does, bytes >= 0x80 (the room check validates them as UTF-8 later). */
enum {
    C_TCHAR = 1,
    C_VALUE = 2,
    C_TARGET = 4,
};

static const uint8_t ctype[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    2, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 0x20  !"#$%&'()*+,-./ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0x30 0-9:;<=>? */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x40 @A-O */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* 0x50 P-Z[\]^_ */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x60 `a-o */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 0x70 p-z{|}~ DEL */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x80 obs-text */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x90 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xa0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xb0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xc0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xd0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xe0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xf0 */
};

/* The limits in force: zero fields take defaults; max_headers cannot exceed the array in
 * ws_http_request_t. */
static void effective_limits(const ws_http_limits_t *lim, size_t *max_bytes, size_t *max_headers)
{
    *max_bytes = WS_HTTP_MAX_HEADER_BYTES_DEFAULT;
    *max_headers = WS_HTTP_MAX_HEADERS_DEFAULT;
    if (lim != NULL) {
        if (lim->max_header_bytes != 0)
            *max_bytes = lim->max_header_bytes;
        if (lim->max_headers != 0)
            *max_headers =
                lim->max_headers < WS_HTTP_HEADERS_CAP ? lim->max_headers : WS_HTTP_HEADERS_CAP;
    }
}

/* The two refusals: the errno for the caller's branch, the status for its answer. */
static int malformed(ws_http_request_t *req)
{
    req->status = 400;
    return -EBADMSG;
}

static int too_large(ws_http_request_t *req)
{
    req->status = 431;
    return -EMSGSIZE;
}

/* Parses buf[0..len) from the start. Only the first max_bytes bytes are ever looked at:
 * running out of them with no decision means the head is over the limit. */
static int parse_head(const uint8_t *buf, size_t len, size_t max_bytes, size_t max_headers,
                      ws_http_request_t *req)
{
    const uint8_t *const end = buf + (len < max_bytes ? len : max_bytes);
    const uint8_t *q = buf, *s;

    /* request-line = method SP request-target SP HTTP-version CRLF, single spaces only. */
    s = q;
    while (q != end && (ctype[*q] & C_TCHAR))
        q++;
    if (q == end)
        goto more;
    if (q == s || *q != ' ')
        goto line_error;
    req->method = ws_slice(s, (size_t)(q - s));
    s = ++q;
    while (q != end && (ctype[*q] & C_TARGET))
        q++;
    if (q == end)
        goto more;
    if (q == s || *q != ' ')
        goto line_error;
    req->target = ws_slice(s, (size_t)(q - s));
    ++q;
    /* Only HTTP/1.0 and HTTP/1.1: a WebSocket upgrade needs 1.1, and 1.0 is kept so that old
     * tools get a proper answer for plain pages. HTTP-name is case-sensitive. */
    if (end - q < 10 || memcmp(q, "HTTP/1.", 7) != 0 || (q[7] != '0' && q[7] != '1') ||
        q[8] != '\r' || q[9] != '\n')
        goto line_error;
    req->minor_version = q[7] - '0';
    q += 10;

    req->num_headers = 0;
    for (;;) {
        if (q == end)
            goto more;
        if (*q == '\r') {
            if (end - q >= 2 && q[1] == '\n') {
                req->head_len = (size_t)(q + 2 - buf);
                return 0;
            }
            goto line_error; /* bare CR, or the LF is still to come */
        }
        if (req->num_headers == max_headers)
            return too_large(req);
        ws_http_header_t *h = &req->headers[req->num_headers];
        /* A line that starts with SP or HTAB (obs-fold, and whitespace before the first
         * header), an empty name, a byte that is not a token character, whitespace before the
         * colon (RFC 9112 5.1) and a missing colon all stop here without a colon. */
        s = q;
        while (q != end && (ctype[*q] & C_TCHAR))
            q++;
        if (q == end)
            goto more;
        if (q == s || *q != ':')
            goto line_error;
        h->name = ws_slice(s, (size_t)(q - s));
        ++q;
        while (q != end && (*q == ' ' || *q == '\t'))
            q++;
        s = q;
        while (q != end && (ctype[*q] & C_VALUE))
            q++;
        if (end - q < 2 || q[0] != '\r' || q[1] != '\n')
            goto line_error; /* a control byte, a bare CR or LF, or the line is unfinished */
        const uint8_t *ve = q;
        while (ve != s && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        h->value = ws_slice(s, (size_t)(ve - s));
        req->num_headers++;
        q += 2;
    }

line_error:
    /* The current line is malformed or unfinished. It is malformed only once its LF is in:
     * until then the result must be the one a shorter prefix gave. No LF lies between the
     * start of the line and q, so the first LF from q ends this line. */
    if (memchr(q, '\n', (size_t)(end - q)) != NULL)
        return malformed(req);
more:
    return len > max_bytes ? too_large(req) : WS_INCOMPLETE;
}

int ws_http_parse_request(const uint8_t *buf, size_t len, size_t prev_len,
                          const ws_http_limits_t *lim, ws_http_request_t *req)
{
    size_t max_bytes, max_headers;
    effective_limits(lim, &max_bytes, &max_headers);
    req->head_len = 0;
    req->status = 0;
    if (len == 0)
        return WS_INCOMPLETE;
    /* Resume: the previous call saw buf[0..prev_len) and found nothing decided. A new
     * decision needs a new LF, or a line start at prev_len (an LF at prev_len - 1); without
     * either, only the byte limit can have been crossed. */
    if (prev_len != 0 && prev_len <= len &&
        memchr(buf + prev_len - 1, '\n', len - prev_len + 1) == NULL)
        return len > max_bytes ? too_large(req) : WS_INCOMPLETE;
    return parse_head(buf, len, max_bytes, max_headers, req);
}

bool ws_http_eq_ci(ws_slice_t s, const char *lit)
{
    size_t i;
    for (i = 0; i < s.len; i++) {
        unsigned a = s.base[i], b = (unsigned char)lit[i];
        if (a == b)
            continue;
        /* Two different bytes match only as the two cases of one letter: equal once the 0x20
         * bit is set, and a letter then. The NUL ending lit never matches here. */
        unsigned la = a | 0x20;
        if (la != (b | 0x20) || la < 'a' || la > 'z')
            return false;
    }
    return lit[i] == '\0';
}

const ws_http_header_t *ws_http_find(const ws_http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++)
        if (ws_http_eq_ci(req->headers[i].name, name))
            return &req->headers[i];
    return NULL;
}

size_t ws_http_count(const ws_http_request_t *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++)
        n += ws_http_eq_ci(req->headers[i].name, name);
    return n;
}

bool ws_http_list_has_token(ws_slice_t v, const char *token)
{
    size_t i = 0;
    while (i < v.len) {
        size_t a = i, b;
        while (i < v.len && v.base[i] != ',')
            i++;
        b = i++;
        while (a < b && (v.base[a] == ' ' || v.base[a] == '\t'))
            a++;
        while (b > a && (v.base[b - 1] == ' ' || v.base[b - 1] == '\t'))
            b--;
        if (b > a && ws_http_eq_ci(ws_slice(v.base + a, b - a), token))
            return true;
    }
    return false;
}

bool ws_http_has_token(const ws_http_request_t *req, const char *name, const char *token)
{
    /* Repeated list headers are one list (RFC 9110 5.3): "Connection: keep-alive" followed by
     * "Connection: Upgrade" holds "upgrade". */
    for (size_t i = 0; i < req->num_headers; i++)
        if (ws_http_eq_ci(req->headers[i].name, name) &&
            ws_http_list_has_token(req->headers[i].value, token))
            return true;
    return false;
}

static int body_refused(int *status, int code)
{
    *status = code;
    return -EBADMSG;
}

/* A Content-Length value: digits only (RFC 9110 8.6), at most 18 of them. */
static bool parse_length(ws_slice_t v, uint64_t *out)
{
    if (v.len == 0 || v.len > 18)
        return false;
    uint64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.base[i] < '0' || v.base[i] > '9')
            return false;
        n = n * 10 + (uint64_t)(v.base[i] - '0');
    }
    *out = n;
    return true;
}

int ws_http_body_length(const ws_http_request_t *req, const ws_http_limits_t *lim, uint64_t *len,
                        int *status)
{
    *len = 0;
    *status = 0;
    if (ws_http_find(req, "Transfer-Encoding"))
        return body_refused(status, 501);
    bool have = false;
    for (size_t i = 0; i < req->num_headers; i++) {
        if (!ws_http_eq_ci(req->headers[i].name, "Content-Length"))
            continue;
        uint64_t n;
        if (!parse_length(req->headers[i].value, &n) || (have && n != *len))
            return body_refused(status, 400);
        have = true;
        *len = n;
    }
    if (*len > (lim ? lim->max_body : 0))
        return body_refused(status, 413);
    return 0;
}

int ws_http_hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes v into out[0..cap): its length, or -EINVAL. */
static long unescape(const uint8_t *v, const uint8_t *end, char *out, size_t cap)
{
    size_t k = 0;
    for (const uint8_t *p = v; p < end; p++) {
        int ch = *p;
        if (ch == '%') {
            int hi = end - p > 2 ? ws_http_hex_digit(p[1]) : -1,
                lo = end - p > 2 ? ws_http_hex_digit(p[2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = hi << 4 | lo;
            p += 2;
        }
        if (k == cap)
            return -EINVAL;
        out[k++] = (char)ch;
    }
    return (long)k;
}

long ws_http_query_param(ws_slice_t target, const char *name, char *out, size_t cap)
{
    const uint8_t *q = memchr(target.base, '?', target.len);
    if (!q)
        return 0;
    size_t nl = strlen(name);
    const uint8_t *end = target.base + target.len;
    for (const uint8_t *p = q + 1; p < end;) {
        const uint8_t *amp = memchr(p, '&', (size_t)(end - p));
        const uint8_t *e = amp ? amp : end;
        if ((size_t)(e - p) > nl && p[nl] == '=' && memcmp(p, name, nl) == 0)
            return unescape(p + nl + 1, e, out, cap);
        p = e + 1;
    }
    return 0;
}

bool ws_http_keep_alive(const ws_http_request_t *req)
{
    if (ws_http_has_token(req, "Connection", "close"))
        return false;
    return req->minor_version >= 1 || ws_http_has_token(req, "Connection", "keep-alive");
}

const char *ws_http_reason(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* Bounded appender: once something does not fit, the whole response is refused. */
typedef struct out_buf {
    char *p;
    size_t left;
    bool overflow;
} out_buf_t;

static void put(out_buf_t *o, const void *s, size_t n)
{
    if (n > o->left) {
        o->overflow = true;
        return;
    }
    if (n != 0)
        memcpy(o->p, s, n);
    o->p += n;
    o->left -= n;
}

static void put_str(out_buf_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_uint(out_buf_t *o, size_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put(o, tmp + i, sizeof tmp - i);
}

size_t ws_http_write_response(char *out, size_t cap, int status, const char *content_type,
                              const char *extra, const void *body, size_t body_len)
{
    return ws_http_write_response_conn(out, cap, status, content_type, extra, body, body_len,
                                       false);
}

size_t ws_http_write_response_conn(char *out, size_t cap, int status, const char *content_type,
                                   const char *extra, const void *body, size_t body_len,
                                   bool keep_alive)
{
    if (status < 100 || status > 999)
        return 0;
    out_buf_t o = {out, cap, false};
    put_str(&o, "HTTP/1.1 ");
    put_uint(&o, (size_t)status);
    put_str(&o, " ");
    put_str(&o, ws_http_reason(status));
    if (content_type != NULL) {
        put_str(&o, "\r\nContent-Type: ");
        put_str(&o, content_type);
    }
    put_str(&o, "\r\nContent-Length: ");
    put_uint(&o, body_len);
    put_str(&o, keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n");
    if (extra != NULL)
        put_str(&o, extra);
    put_str(&o, "\r\n");
    put(&o, body, body_len);
    return o.overflow ? 0 : cap - o.left;
}
