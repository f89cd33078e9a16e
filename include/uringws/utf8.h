/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
 *
 * One-shot validators for whole buffers, and an incremental validator for text messages
 * that arrive in fragments: it fails as soon as the bytes seen so far cannot be the prefix
 * of valid UTF-8 (RFC 6455 8.1 "fail fast"), not only at the end of the message. */
#ifndef URINGWS_UTF8_H
#define URINGWS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Dispatches once to the best implementation; true when p[0..n) is valid UTF-8. */
bool ws_utf8_valid(const uint8_t *p, size_t n);
/* "avx512", "avx2" or "scalar". */
const char *ws_utf8_impl(void);

/* The implementations behind ws_utf8_valid(), exported for tests and benchmarks. Call the AVX2
 * one only when ws_cpu_has_avx2() is true and the AVX-512 one only when ws_cpu_has_avx512() is
 * (otherwise they raise SIGILL). None reads outside p[0..n); p may be NULL when n is 0. */
bool ws_utf8_valid_scalar(const uint8_t *p, size_t n);
bool ws_utf8_valid_avx2(const uint8_t *p, size_t n);
bool ws_utf8_valid_avx512(const uint8_t *p, size_t n);
/* Baseline for benchmarks: a straightforward byte-at-a-time decoder, not auto-vectorized. */
bool ws_utf8_valid_baseline(const uint8_t *p, size_t n);

/* Incremental state: the bytes of a code point cut off at the end of the last chunk. */
typedef struct ws_utf8_state {
    uint8_t partial[4]; /* the cut-off bytes, partial[0] is the lead byte */
    uint8_t npartial;   /* how many of partial[] are held (0..3) */
    uint8_t need;       /* total length of that code point (2..4), 0 when npartial == 0 */
} ws_utf8_state_t;

void ws_utf8_init(ws_utf8_state_t *st);
/* Validates the next chunk of a stream. Returns false as soon as the stream so far cannot be
 * a prefix of valid UTF-8 (the state is then meaningless). Uses the SIMD path for the bulk. */
bool ws_utf8_feed(ws_utf8_state_t *st, const uint8_t *p, size_t n);
/* True when the stream ends on a code point boundary (no cut-off character pending). */
bool ws_utf8_complete(const ws_utf8_state_t *st);

#ifdef __cplusplus
}
#endif

#endif
