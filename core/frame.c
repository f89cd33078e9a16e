/* WebSocket frame headers (RFC 6455 5.2) and close codes (7.4): parse one header, write
 * server and client headers. Touches no payload bytes and allocates nothing; message
 * assembly lives in core/parser.c. */
#include "uringws/frame.h"

#include <errno.h>
#include <string.h>

bool ws_frame_close_code_valid(unsigned code)
{
    /* 7.4.1 defines 1000-1003 and 1007-1011 for use on the wire; 1004 is reserved, 1005,
     * 1006 and 1015 are local-only and 1012-2999 are reserved for future RFCs. 7.4.2 gives
     * 3000-3999 to registered libraries and 4000-4999 to applications. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

static inline bool opcode_reserved(uint8_t op)
{
    return (op >= 0x3 && op <= 0x7) || op >= 0xB;
}

/* Checks of the first byte alone, so a broken frame is refused even when only one byte of
 * it has arrived. RSV1 is only meaningful on the first frame of a data message (RFC 7692
 * 6), so even a negotiated extension does not allow it on continuations or control frames. */
static int check_byte0(uint8_t b0, unsigned flags)
{
    uint8_t op = b0 & 0x0f, rsv = (b0 >> 4) & 0x7;
    uint8_t allowed =
        (flags & WS_FRAME_ALLOW_RSV1) && (op == WS_OP_TEXT || op == WS_OP_BINARY) ? 0x4 : 0x0;
    if (rsv & ~allowed)
        return -EPROTO;
    if (opcode_reserved(op))
        return -EPROTO;
    if (ws_opcode_is_control(op) && !(b0 & 0x80))
        return -EPROTO;
    return 0;
}

int ws_frame_header_parse(const uint8_t *p, size_t n, unsigned flags, ws_frame_header_t *h)
{
    if (n == 0)
        return WS_INCOMPLETE;
    int rc = check_byte0(p[0], flags);
    if (rc)
        return rc;
    if (n < 2)
        return WS_INCOMPLETE;
    uint8_t op = p[0] & 0x0f, len7 = p[1] & 0x7f;
    bool masked = (p[1] & 0x80) != 0;
    if (ws_opcode_is_control(op) && len7 > WS_CONTROL_MAX)
        return -EPROTO;
    if ((flags & WS_FRAME_REQUIRE_MASK) && !masked)
        return -EPROTO;
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    size_t hl = 2 + ext + (masked ? 4 : 0);
    /* 5.2: "the most significant bit MUST be 0"; refuse as soon as that byte is here. */
    if (len7 == 127 && n > 2 && (p[2] & 0x80))
        return -EPROTO;
    if (n < hl)
        return WS_INCOMPLETE;

    /* Non-minimal length encodings (a 16-bit length under 126, a 64-bit one under 65536) are
     * accepted. 5.2 puts the "minimal number of bytes" duty on the sender; the length is
     * unambiguous either way, and refusing costs interoperability and buys no safety. */
    uint64_t len = len7;
    if (ext == 2) {
        len = ((uint64_t)p[2] << 8) | p[3];
    } else if (ext == 8) {
        len = 0;
        for (size_t i = 0; i < 8; i++)
            len = (len << 8) | p[2 + i];
    }
    h->fin = (p[0] & 0x80) != 0;
    h->rsv = (p[0] >> 4) & 0x7;
    h->opcode = op;
    h->masked = masked;
    h->header_len = (uint8_t)hl;
    h->payload_len = len;
    if (masked)
        memcpy(h->mask, p + 2 + ext, 4);
    else
        memset(h->mask, 0, 4);
    return (int)hl;
}

size_t ws_frame_header_size(uint64_t len)
{
    return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

/* Writes byte 0, the length byte with `mask_bit` and the extended length; returns 2, 4, 10. */
static size_t write_base(uint8_t *out, uint8_t opcode, bool fin, uint64_t len, uint8_t mask_bit)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (len < 126) {
        out[1] = mask_bit | (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = mask_bit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = mask_bit | 127;
    ws_store_be64(out + 2, len);
    return 10;
}

size_t ws_frame_header_write(uint8_t out[10], uint8_t opcode, bool fin, uint64_t len)
{
    return write_base(out, opcode, fin, len, 0);
}

size_t ws_frame_header_write_masked(uint8_t out[WS_FRAME_HEADER_MAX], uint8_t opcode, bool fin,
                                    uint64_t len, const uint8_t key[4])
{
    size_t hl = write_base(out, opcode, fin, len, 0x80);
    memcpy(out + hl, key, 4);
    return hl + 4;
}
