/* Types and return conventions shared by every uringws module. Holds no code with state. */
#ifndef URINGWS_COMMON_H
#define URINGWS_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view of bytes owned by someone else; never NUL-terminated. */
typedef struct ws_slice {
    const uint8_t *base;
    size_t len;
} ws_slice_t;

/* The one error convention: functions return 0 (or, for a parser, the bytes it consumed) or
 * -errno. "Need more input" is WS_INCOMPLETE (-EAGAIN). An HTTP status or a WebSocket close
 * code to answer with never travels in a return value: it goes in an out-parameter or a
 * field the function documents (ws_http_request_t.status, ws_parser_t.close_code,
 * ws_handshake_t.status). */
#define WS_INCOMPLETE (-EAGAIN)

#define WS_WARN_UNUSED __attribute__((warn_unused_result))
#define WS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define WS_UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline ws_slice_t ws_slice(const void *base, size_t len)
{
    ws_slice_t s = {(const uint8_t *)base, len};
    return s;
}

/* Stores v big-endian (network order) in out[0..8): frame lengths, TLS sequence numbers. */
static inline void ws_store_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

#endif
