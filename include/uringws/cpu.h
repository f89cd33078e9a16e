/* Runtime CPU feature detection for the SIMD dispatchers (masking, UTF-8). */
#ifndef URINGWS_CPU_H
#define URINGWS_CPU_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* True when the CPU and OS support AVX2 (with the ymm state enabled). */
bool ws_cpu_has_avx2(void);
/* True when the CPU and OS support AVX-512 F, BW and VL (zmm state enabled). */
bool ws_cpu_has_avx512(void);
/* Setting the environment variable URINGWS_SIMD to "scalar" or "avx2" before the
 * first dispatch caps the level the dispatchers pick (tests and benchmarks use it). */
int ws_cpu_simd_cap(void);
enum { WS_SIMD_SCALAR = 0, WS_SIMD_AVX2 = 1, WS_SIMD_AVX512 = 2 };

#ifdef __cplusplus
}
#endif

#endif
