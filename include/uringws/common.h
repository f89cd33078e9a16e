/* Types and return conventions shared by every uringws module. Holds no code with state. */
#ifndef URINGWS_COMMON_H
#define URINGWS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view of bytes owned by someone else; never NUL-terminated. */
typedef struct ws_slice {
    const uint8_t *base;
    size_t len;
} ws_slice_t;

/* Parsers return bytes consumed (>= 0), WS_INCOMPLETE when they need more input, or another
 * negative value naming the error (an HTTP status as -400, a close code as -1002, -errno). */
#define WS_INCOMPLETE (-2)

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
