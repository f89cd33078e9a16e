/* WebSocket masking (RFC 6455 5.3): XOR a payload with a 4-byte key, in place.
 *
 * Every function takes `offset`, the number of payload bytes already processed before `p`,
 * so a payload split across buffers unmasks correctly chunk by chunk: the byte at p[i] is
 * XORed with key[(offset + i) & 3]. None reads or writes outside p[0..n). */
#ifndef URINGWS_MASK_H
#define URINGWS_MASK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Dispatches once (first call) to the best implementation this CPU supports. */
void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);
/* Name of the implementation ws_mask uses: "avx512", "avx2" or "scalar". */
const char *ws_mask_impl(void);

/* The individual implementations, for tests and benchmarks. The SIMD ones must only be
 * called when ws_cpu_has_avx2()/ws_cpu_has_avx512() say so. */
void ws_mask_scalar(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);
void ws_mask_avx2(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);
void ws_mask_avx512(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);

/* Baselines compiled without auto-vectorization (core/baseline.c), for benchmarks only:
 * a byte-at-a-time loop and the 8-byte word XOR loop uWebSockets uses. */
void ws_mask_baseline_bytes(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);
void ws_mask_baseline_word(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);

#ifdef __cplusplus
}
#endif

#endif
