/* WebSocket frame headers (RFC 6455 5.2): parsing one header, writing server and client
 * headers with minimal length encoding, and close codes (7.4). No payload handling here:
 * see parser.h for message assembly and block.h for broadcast frames. */
#ifndef URINGWS_FRAME_H
#define URINGWS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

static inline bool ws_opcode_is_control(uint8_t op)
{
    return (op & 0x8) != 0;
}

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never on the wire: "close frame had no code" */
    WS_CLOSE_ABNORMAL = 1006,  /* never on the wire: "connection dropped" */
    WS_CLOSE_INVALID_PAYLOAD = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_MANDATORY_EXT = 1010,
    WS_CLOSE_INTERNAL = 1011,
    WS_CLOSE_SERVICE_RESTART = 1012, /* IANA registry: we send it, never expect it */
    WS_CLOSE_TRY_AGAIN = 1013,       /* IANA registry: we send it, never expect it */
};

/* True when `code` may appear in a close frame on the wire (RFC 6455 7.4.1 and 7.4.2:
 * 1000-1003, 1007-1011, 3000-4999). 1004, 1005, 1006, 1015 and 1012-2999 are not. */
bool ws_frame_close_code_valid(unsigned code);

#define WS_FRAME_HEADER_MAX 14 /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_CONTROL_MAX      125

typedef struct ws_frame_header {
    bool fin;
    bool masked;
    uint8_t rsv;    /* RSV1..RSV3 as bits 2..0 */
    uint8_t opcode; /* enum ws_opcode */
    uint8_t header_len;
    uint8_t mask[4]; /* valid when masked */
    uint64_t payload_len;
} ws_frame_header_t;

enum ws_frame_flags {
    WS_FRAME_REQUIRE_MASK = 1 << 0, /* server side: client frames must be masked (5.1) */
    WS_FRAME_ALLOW_RSV1 = 1 << 1,   /* an extension using RSV1 was negotiated */
};

/* Parses one frame header from p[0..n). Returns the header length (bytes consumed, > 0),
 * WS_INCOMPLETE (-EAGAIN), or -EPROTO when the header alone breaks the protocol (answered
 * with close code 1002, WS_CLOSE_PROTOCOL_ERROR, the only code a header can earn): RSV bits
 * without an extension, reserved opcode, control frame fragmented or longer than 125, 64-bit
 * length with the top bit set, unmasked frame under WS_FRAME_REQUIRE_MASK. Reads nothing past n.
 * Errors are reported as soon as the bytes that show them are in (a bad first byte with
 * n == 1). Non-minimal length encodings (5.2 asks senders, not receivers, for minimal ones)
 * are accepted; control frames must still use the 7-bit length. WS_FRAME_ALLOW_RSV1 allows
 * RSV1 on text and binary frames only, the first frame of a message (RFC 7692 6). */
int ws_frame_header_parse(const uint8_t *p, size_t n, unsigned flags, ws_frame_header_t *h);

/* Bytes a server header for a payload of `len` takes (2, 4 or 10). */
size_t ws_frame_header_size(uint64_t len);
/* Writes a server (unmasked) header; returns its length (2, 4 or 10). */
size_t ws_frame_header_write(uint8_t out[10], uint8_t opcode, bool fin, uint64_t len);
/* Writes a client header masked with `key`; returns its length (6, 8 or 14). The payload
 * must then be masked with ws_mask(payload, len, key, 0). */
size_t ws_frame_header_write_masked(uint8_t out[WS_FRAME_HEADER_MAX], uint8_t opcode, bool fin,
                                    uint64_t len, const uint8_t key[4]);

#ifdef __cplusplus
}
#endif

#endif
