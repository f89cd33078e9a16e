/* CPU feature detection for SIMD dispatch: CPUID for the instruction sets and XGETBV for the
 * register state the OS saves, since a CPU flag alone does not make the registers usable. */
#include "uringws/cpu.h"

#include <cpuid.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return WS_SIMD_SCALAR;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
        return WS_SIMD_SCALAR;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* SSE and AVX (ymm) state */
        return WS_SIMD_SCALAR;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX2))
        return WS_SIMD_SCALAR;
    int level = WS_SIMD_AVX2;
    const unsigned avx512 = bit_AVX512F | bit_AVX512BW | bit_AVX512VL;
    if ((b & avx512) == avx512 && (xcr0 & 0xe6) == 0xe6) /* opmask, zmm hi256, hi16 zmm */
        level = WS_SIMD_AVX512;
    return level;
}

/* Threads may race on the first call; each computes the same value, so a relaxed atomic
 * is enough to make that race benign. */
static int cached_level(void)
{
    static _Atomic int level = -1;
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l < 0) {
        l = detect();
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return l;
}

bool ws_cpu_has_avx2(void)
{
    return cached_level() >= WS_SIMD_AVX2;
}

bool ws_cpu_has_avx512(void)
{
    return cached_level() >= WS_SIMD_AVX512;
}

int ws_cpu_simd_cap(void)
{
    int level = cached_level();
    const char *env = getenv("URINGWS_SIMD");
    if (env) {
        if (strcmp(env, "scalar") == 0)
            level = WS_SIMD_SCALAR;
        else if (strcmp(env, "avx2") == 0 && level > WS_SIMD_AVX2)
            level = WS_SIMD_AVX2;
    }
    return level;
}
