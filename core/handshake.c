/* WebSocket opening handshake, server side (RFC 6455 4.2.1 and 4.2.2): turns a parsed
 * request head into "plain HTTP", "upgrade to room R" or an error status, and writes the
 * matching response. Pure computation on the caller's buffers: no I/O, no allocation, no
 * state. SHA-1 and base64 come from BoringSSL's libcrypto rather than local copies.
 *
 * No extension and no subprotocol is ever negotiated. In particular permessage-deflate
 * (RFC 7692), which every browser offers, is not implemented: the 101 carries no
 * Sec-WebSocket-Extensions, so the client must send uncompressed frames (RSV1 clear), and
 * no Sec-WebSocket-Protocol, which a client offering protocols accepts as "none chosen". */
#include "uringws/handshake.h"

#include <errno.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/sha.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

_Static_assert(sizeof(((ws_handshake_t *)0)->accept) == 28 + 1,
               "base64 of a 20-byte SHA-1 digest is 28 characters");

void ws_handshake_accept(ws_slice_t key, char out[29])
{
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA_CTX c;
    SHA1_Init(&c);
    SHA1_Update(&c, key.base, key.len);
    SHA1_Update(&c, ws_guid, sizeof ws_guid - 1);
    SHA1_Final(md, &c);
    EVP_EncodeBlock((uint8_t *)out, md, sizeof md); /* writes 28 characters and a NUL */
}

/* The headers the handshake looks at, found in one pass over the request: the first of each,
 * and how often the ones that must be unique occur. */
typedef struct fields {
    const ws_http_header_t *host, *upgrade, *key, *version, *origin, *extensions, *protocols;
    unsigned n_host, n_key, n_version;
    /* Upgrade and Connection are lists that may span several header lines (RFC 9110 5.3),
     * so their tokens are judged line by line during the same pass. */
    bool upgrade_websocket, connection_upgrade;
} fields_t;

static void note(const ws_http_header_t **first, unsigned *count, const ws_http_header_t *h)
{
    if (*first == NULL)
        *first = h;
    if (count != NULL)
        (*count)++;
}

static void scan_fields(const ws_http_request_t *req, fields_t *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < req->num_headers; i++) {
        const ws_http_header_t *h = &req->headers[i];
        /* The names have distinct lengths, so one comparison per header at most. */
        switch (h->name.len) {
        case 4:
            if (ws_http_eq_ci(h->name, "Host"))
                note(&f->host, &f->n_host, h);
            break;
        case 6:
            if (ws_http_eq_ci(h->name, "Origin"))
                note(&f->origin, NULL, h);
            break;
        case 7:
            if (ws_http_eq_ci(h->name, "Upgrade")) {
                note(&f->upgrade, NULL, h);
                f->upgrade_websocket |= ws_http_list_has_token(h->value, "websocket");
            }
            break;
        case 10:
            if (ws_http_eq_ci(h->name, "Connection"))
                f->connection_upgrade |= ws_http_list_has_token(h->value, "upgrade");
            break;
        case 17:
            if (ws_http_eq_ci(h->name, "Sec-WebSocket-Key"))
                note(&f->key, &f->n_key, h);
            break;
        case 21:
            if (ws_http_eq_ci(h->name, "Sec-WebSocket-Version"))
                note(&f->version, &f->n_version, h);
            break;
        case 22:
            if (ws_http_eq_ci(h->name, "Sec-WebSocket-Protocol"))
                note(&f->protocols, NULL, h);
            break;
        case 24:
            if (ws_http_eq_ci(h->name, "Sec-WebSocket-Extensions"))
                note(&f->extensions, NULL, h);
            break;
        default:
            break;
        }
    }
}

static bool starts_with_ci(const uint8_t *p, size_t n, const char *lit, size_t lit_len)
{
    return n >= lit_len && ws_http_eq_ci(ws_slice(p, lit_len), lit);
}

/* Splits the request-target into the path without its query and, for absolute-form, the
 * authority. False when the target is neither origin-form nor an http/https URI with a
 * non-empty authority and no userinfo (RFC 9110 4.2.4 says to treat userinfo as an error).
 * The path of an absolute URI therefore starts with '/' or is empty, like an origin-form. */
static bool split_target(ws_slice_t t, ws_slice_t *path, ws_slice_t *authority)
{
    const uint8_t *p = t.base;
    size_t n = t.len, i = 0, a;

    if (n == 0)
        return false;
    if (p[0] != '/') {
        if (starts_with_ci(p, n, "http://", 7))
            i = 7;
        else if (starts_with_ci(p, n, "https://", 8))
            i = 8;
        else
            return false;
        /* A fragment is never part of a request-target (RFC 9112 3.2), so '#' is refused
         * rather than taken as the end of the authority. */
        for (a = i; i < n && p[i] != '/' && p[i] != '?'; i++)
            if (p[i] == '@' || p[i] == '#')
                return false;
        if (i == a)
            return false;
        *authority = ws_slice(p + a, i - a);
    }
    const uint8_t *q = memchr(p + i, '?', n - i);
    size_t plen = (q != NULL ? (size_t)(q - p) : n) - i;
    /* "http://host" and "http://host?x" have an empty path, which means "/" (RFC 9110 4.2.3). */
    *path = plen != 0 ? ws_slice(p + i, plen) : ws_slice("/", 1);
    return true;
}

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). A local
 * copy rather than ws_utf8_valid() so that the handshake does not depend on the SIMD UTF-8
 * module; room names are at most 64 bytes, where a plain loop is as fast as anything. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = s[i], cp, min;
        size_t more;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

const char *ws_handshake_room_check(const char *name, size_t n)
{
    if (n == 0 || n > WS_ROOM_MAX)
        return n ? "room name longer than 64 bytes" : "empty room name";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return "room name contains a control character";
        if (c == '/' && (i == 0 || i + 1 == n || name[i + 1] == '/'))
            return "empty segment in room name";
    }
    return utf8_valid((const uint8_t *)name, n) ? NULL : "room name is not valid UTF-8";
}

const char *ws_handshake_room_decode(ws_slice_t path, char room[WS_ROOM_MAX + 1], size_t *len)
{
    const uint8_t *p = path.base, *end = p + path.len;
    size_t n = 0;

    if (path.len <= 1) {
        memcpy(room, WS_ROOM_DEFAULT, sizeof WS_ROOM_DEFAULT);
        *len = sizeof WS_ROOM_DEFAULT - 1;
        return NULL;
    }
    room[0] = '\0';
    *len = 0;
    for (p++; p != end; p++) {
        int c = *p;
        if (c == '%') {
            int hi, lo;
            if (end - p < 3 || (hi = ws_http_hex_digit(p[1])) < 0 ||
                (lo = ws_http_hex_digit(p[2])) < 0)
                return "bad percent-escape in room name";
            c = hi << 4 | lo;
            p += 2;
            /* '/' separates segments only as itself, so that a room has one spelling. */
            if (c == '/')
                return "room name contains an escaped '/'";
        }
        if (n == WS_ROOM_MAX)
            return "room name longer than 64 bytes";
        room[n++] = (char)c;
    }
    /* The rest is checked after decoding, so "%00" is refused like the raw byte. */
    const char *why = ws_handshake_room_check(room, n);
    if (why)
        return why;
    room[n] = '\0';
    *len = n;
    return NULL;
}

/* A refusal: the status to answer with and why go in hs; the return is the errno. */
static int fail(ws_handshake_t *hs, int status, const char *why)
{
    hs->status = status;
    hs->error = why;
    hs->room[0] = '\0';
    hs->room_len = 0;
    return -EINVAL;
}

int ws_handshake_check(const ws_http_request_t *req, ws_handshake_t *hs)
{
    fields_t f;
    ws_slice_t authority = {NULL, 0};
    const char *why;

    memset(hs, 0, sizeof *hs);
    scan_fields(req, &f);
    bool target_ok = split_target(req->target, &hs->path, &authority);
    if (f.host != NULL)
        hs->host = f.host->value;
    /* RFC 9112 3.2.2: with an absolute-form target, its authority is the host. */
    if (authority.base != NULL)
        hs->host = authority;
    if (f.origin != NULL)
        hs->origin = f.origin->value;
    if (f.extensions != NULL)
        hs->extensions = f.extensions->value;
    if (f.protocols != NULL)
        hs->protocols = f.protocols->value;

    /* Plain HTTP: the caller serves the page for hs->path. A request that names a key but no
     * Upgrade is a broken upgrade, not a page request, and is checked like one. */
    if (f.upgrade == NULL && f.key == NULL) {
        if (!target_ok)
            return fail(hs, 400, "request-target is neither origin-form nor an http(s) URI");
        if (req->minor_version == 1 && f.n_host != 1)
            return fail(hs, 400, "HTTP/1.1 request needs exactly one Host header");
        hs->status = 0;
        return 0;
    }

    /* Methods are case-sensitive (RFC 9110 9.1): "get" is not GET. */
    if (req->method.len != 3 || memcmp(req->method.base, "GET", 3) != 0)
        return fail(hs, 405, "WebSocket upgrade needs the GET method");
    if (req->minor_version != 1)
        return fail(hs, 400, "WebSocket upgrade needs HTTP/1.1");
    if (!target_ok)
        return fail(hs, 400, "request-target is neither origin-form nor an http(s) URI");
    if (f.n_host != 1 || f.host->value.len == 0)
        return fail(hs, 400, "WebSocket upgrade needs exactly one non-empty Host header");
    if (!f.upgrade_websocket)
        return fail(hs, 400, "Upgrade header does not name websocket");
    if (!f.connection_upgrade)
        return fail(hs, 400, "Connection header does not contain upgrade");
    /* The version is checked before the key so that a client speaking another draft, whose
     * key may look different, learns the version we speak (RFC 6455 4.4). */
    if (f.n_version > 1)
        return fail(hs, 400, "repeated Sec-WebSocket-Version header");
    if (f.version == NULL || f.version->value.len != 2 ||
        memcmp(f.version->value.base, "13", 2) != 0)
        return fail(hs, 426, "only WebSocket version 13 is supported");
    if (f.n_key != 1)
        return fail(hs, 400, "WebSocket upgrade needs exactly one Sec-WebSocket-Key header");
    /* 16 bytes encode to 24 characters ending in "=="; anything else decodes to another size
     * or is not base64. */
    uint8_t nonce[18];
    size_t nonce_len;
    if (f.key->value.len != 24 ||
        !EVP_DecodeBase64(nonce, &nonce_len, sizeof nonce, f.key->value.base, 24) ||
        nonce_len != 16)
        return fail(hs, 400, "Sec-WebSocket-Key is not 16 bytes in base64");
    if ((why = ws_handshake_room_decode(hs->path, hs->room, &hs->room_len)) != NULL)
        return fail(hs, 400, why);
    ws_handshake_accept(f.key->value, hs->accept);
    hs->status = 101;
    return 0;
}

size_t ws_handshake_error_response(int status, const char *why, char *out, size_t cap)
{
    char body[256];
    size_t n;

    if (status < 400 || status > 599)
        return 0;
    if (why == NULL)
        why = ws_http_reason(status);
    /* The body is one line; static reasons are far below the bound, a longer one is cut. */
    n = strlen(why);
    if (n > sizeof body - 1)
        n = sizeof body - 1;
    memcpy(body, why, n);
    body[n++] = '\n';
    const char *extra = status == 426   ? "Sec-WebSocket-Version: 13\r\n"
                        : status == 405 ? "Allow: GET\r\n"
                                        : NULL;
    return ws_http_write_response(out, cap, status, "text/plain; charset=utf-8", extra, body, n);
}

size_t ws_handshake_response(const ws_handshake_t *hs, char *out, size_t cap)
{
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: ";
    const size_t n = sizeof head - 1 + 28 + 4;

    if (hs->status != 101)
        return ws_handshake_error_response(hs->status, hs->error, out, cap);
    if (cap < n)
        return 0;
    memcpy(out, head, sizeof head - 1);
    memcpy(out + sizeof head - 1, hs->accept, 28);
    memcpy(out + sizeof head - 1 + 28, "\r\n\r\n", 4);
    return n;
}
