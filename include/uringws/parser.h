/* Incremental WebSocket message parser for the server side: frames in, messages out.
 *
 * Bytes are fed in chunks of any size (a chunk is typically one provided ring buffer).
 * Payloads are unmasked in place in the caller's chunk. A data message that is one
 * unfragmented frame lying wholly in the chunk is delivered as a slice of the chunk (zero
 * copy); a message that spans chunks or frames is copied into the parser's reassembly
 * buffer. Control frames may interleave with a fragmented message. Text is UTF-8 validated
 * incrementally (fail fast). The parser owns its reassembly buffer and nothing else. */
#ifndef URINGWS_PARSER_H
#define URINGWS_PARSER_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/frame.h"
#include "uringws/utf8.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WS_MAX_MESSAGE_DEFAULT (16u << 20) /* 16 MiB */

/* What ws_parser_feed returns once a close frame has been delivered and more bytes come: the
 * close handshake ended normally and the parser takes no more input (close_code is
 * WS_CLOSE_NORMAL). An errno, like every other negative return. */
#define WS_PARSER_CLOSED (-EPIPE)

typedef struct ws_parser_config {
    /* Bytes of one assembled message; over it: 1009. 0 means the default, 16 MiB. Checked
     * against each frame's declared length as soon as its header is in, before any of its
     * payload is buffered, so a peer cannot make the parser allocate past it. */
    uint64_t max_message;
    /* enum ws_frame_flags; the server uses WS_FRAME_REQUIRE_MASK. WS_FRAME_ALLOW_RSV1 is
     * ignored (RSV1 is always refused): the parser does not inflate, so a compression
     * extension must not be negotiated until it does. */
    unsigned frame_flags;
    /* Reassembly buffer capacity kept after a message for the next one; a larger buffer is
     * freed when its message has been delivered. Default 0: always freed, so idle
     * connections hold no reassembly memory. */
    size_t buf_keep;
} ws_parser_config_t;

/* Callbacks; each returns 0 to go on or a positive value that stops ws_parser_feed, which
 * then returns that value as it is: a caller's own "stop here" signal, never a status or a
 * close code (a negative return is a bug: it would read as an error). Slices are valid only
 * during the call. */
typedef struct ws_parser_callbacks {
    /* A complete text (valid UTF-8) or binary message. */
    int (*on_message)(void *ud, uint8_t opcode, const uint8_t *payload, size_t len);
    /* A ping or pong with its (unmasked) payload, at most 125 bytes. */
    int (*on_control)(void *ud, uint8_t opcode, const uint8_t *payload, size_t len);
    /* A valid close frame: code is WS_CLOSE_NO_STATUS when the frame had no payload; the
     * reason is valid UTF-8. After it the parser accepts no more input. */
    int (*on_close)(void *ud, unsigned code, const uint8_t *reason, size_t len);
} ws_parser_callbacks_t;

typedef struct ws_parser {
    ws_parser_config_t cfg;
    /* Current frame. */
    uint8_t hdr_buf[WS_FRAME_HEADER_MAX]; /* header bytes cut off at a chunk end */
    uint8_t hdr_have;                     /* bytes held in hdr_buf */
    bool in_frame;                        /* header parsed, payload not finished */
    bool closed;                          /* a close frame was delivered */
    ws_frame_header_t frame;
    uint64_t frame_done; /* payload bytes of the current frame already consumed */
    /* Data message being assembled (opcode 0 when none is open). */
    uint8_t msg_opcode;
    ws_utf8_state_t utf8;
    uint8_t *msg_buf;
    size_t msg_len, msg_cap;
    /* Control frame payload cut across chunks. */
    uint8_t ctl_buf[WS_CONTROL_MAX];
    uint8_t ctl_len;
    /* 0 while the parser takes input; else what every further feed returns: -EPROTO,
     * -ENOMEM, or WS_PARSER_CLOSED. */
    int error;
    /* 0 while error is 0; else the close code to answer with: 1002, 1007 or 1009 after
     * -EPROTO, 1011 after -ENOMEM, 1000 after WS_PARSER_CLOSED. */
    uint16_t close_code;
    /* The code of the close this side sent (0: none). A peer echoing it is answering, not
     * breaking the protocol, even where the code is one RFC 6455 keeps off the wire: the
     * server sends the IANA-registered 1012 (service restart) and 1013 (try again later),
     * and browsers and Node's ws echo them. */
    uint16_t sent_close;
} ws_parser_t;

/* cfg NULL means the defaults: 16 MiB messages, WS_FRAME_REQUIRE_MASK, no kept buffer. */
void ws_parser_init(ws_parser_t *ps, const ws_parser_config_t *cfg);
/* Frees the reassembly buffer; the parser may be initialised again after. */
void ws_parser_free(ws_parser_t *ps);

/* Consumes p[0..n) (unmasking payload bytes in place) and calls back for each complete
 * message, control frame and close frame. Returns 0 or a negative errno, or a callback's stop:
 *   0                   all n bytes consumed;
 *   > 0                 a callback's positive return: parsing stopped right after that
 *                       callback (*consumed says where); call again with the rest to go on;
 *   -EPROTO             the peer broke the protocol: send ps->close_code
 *                       (WS_CLOSE_PROTOCOL_ERROR 1002, WS_CLOSE_INVALID_PAYLOAD 1007 or
 *                       WS_CLOSE_TOO_BIG 1009);
 *   -ENOMEM             the reassembly buffer could not grow (ps->close_code is 1011);
 *   WS_PARSER_CLOSED    (-EPIPE) bytes follow a close frame (*consumed ends at the close
 *                       frame), or the parser had already delivered a close.
 * *consumed (`consumed` may be NULL) is the number of bytes parsed: n after 0, the end of
 * the frame whose callback stopped, the point where an error was found. -EPROTO, -ENOMEM and
 * WS_PARSER_CLOSED are sticky: every later call returns the same value, with the same
 * ps->close_code, and consumes 0. A callback's own return value is not sticky. Errors are found as
 * early as the bytes allow (a bad header byte, a too-long declared length, a byte that cannot
 * continue UTF-8), never later than the end of the frame that holds them. */
int ws_parser_feed(ws_parser_t *ps, uint8_t *p, size_t n, size_t *consumed,
                   const ws_parser_callbacks_t *cb, void *ud) WS_WARN_UNUSED;

/* The close code a server sends back for a received close `code` (RFC 6455 5.5.1 echo):
 * the same code when valid, 1000 for WS_CLOSE_NO_STATUS. */
unsigned ws_parser_close_reply_code(unsigned code);

#ifdef __cplusplus
}
#endif

#endif
