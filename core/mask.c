/* WebSocket masking (RFC 6455 5.3): XOR with a 4-byte key, in place, scalar, AVX2 and
 * AVX-512, and the dispatcher that picks one once per process.
 *
 * Every implementation touches exactly p[0..n): heads and tails are done with AVX-512 masked
 * loads/stores (which suppress faults on the lanes they leave out) or with narrower scalar
 * steps, never with a full-width access that runs past the end. Callers therefore need no
 * padding after their buffers. */
#include "uringws/mask.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

#include "uringws/common.h"
#include "uringws/cpu.h"

/* Software prefetch distance of the main loops. A buffer larger than L1d streams from L2, and
 * there the hardware prefetchers alone leave about 10% of the throughput unused (measured
 * with bench_mask on Sapphire Rapids at 64 KiB and 1 MiB). The prefetching loop stops PF
 * bytes before the end, so no prefetch reaches past p[0..n) either. */
#define WS_MASK_PF 1024

/* The key as a little-endian word whose byte i masks payload byte (offset + i). Every SIMD
 * step covers a multiple of 4 bytes, so one rotated word stays right for a whole buffer;
 * only a head of length h that is not a multiple of 4 needs rotate_key(k, h). */
static inline uint32_t key_word(const uint8_t key[4], uint64_t offset)
{
    uint8_t rot[4];
    for (unsigned i = 0; i < 4; i++)
        rot[i] = key[(offset + i) & 3];
    uint32_t k;
    memcpy(&k, rot, 4);
    return k;
}

static inline uint32_t rotate_key(uint32_t k, size_t advance)
{
    unsigned r = (unsigned)(advance & 3) * 8;
    return r ? (k >> r) | (k << (32 - r)) : k;
}

/* Fewer than 16 bytes with a key word aligned to p[0]. */
static inline void mask_tail(uint8_t *p, size_t n, uint32_t k)
{
    if (n >= 8) {
        uint64_t k8 = ((uint64_t)k << 32) | k, w;
        memcpy(&w, p, 8);
        w ^= k8;
        memcpy(p, &w, 8);
        p += 8, n -= 8;
    }
    if (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        w ^= k;
        memcpy(p, &w, 4);
        p += 4, n -= 4;
    }
    for (size_t i = 0; i < n; i++)
        p[i] ^= (uint8_t)(k >> (8 * i));
}

void ws_mask_scalar(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
    uint32_t k = key_word(key, offset);
    uint64_t k8 = ((uint64_t)k << 32) | k;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= k8;
        memcpy(p, &w, 8);
    }
    mask_tail(p, n, k);
}

__attribute__((target("avx2"))) static inline void mask128_avx2(uint8_t *p, __m256i vk)
{
    __m256i a = _mm256_loadu_si256((const __m256i *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(p + 32));
    __m256i c = _mm256_loadu_si256((const __m256i *)(p + 64));
    __m256i d = _mm256_loadu_si256((const __m256i *)(p + 96));
    _mm256_storeu_si256((__m256i *)p, _mm256_xor_si256(a, vk));
    _mm256_storeu_si256((__m256i *)(p + 32), _mm256_xor_si256(b, vk));
    _mm256_storeu_si256((__m256i *)(p + 64), _mm256_xor_si256(c, vk));
    _mm256_storeu_si256((__m256i *)(p + 96), _mm256_xor_si256(d, vk));
}

__attribute__((target("avx2"))) void ws_mask_avx2(uint8_t *p, size_t n, const uint8_t key[4],
                                                  uint64_t offset)
{
    uint32_t k = key_word(key, offset);
    /* Align large buffers to 32 bytes so no store in the main loop splits a cache line; for
     * short ones the scalar head would cost more than it saves. */
    if (n >= 256) {
        size_t head = (size_t)(-(uintptr_t)p) & 31;
        for (size_t i = 0; i < head; i++)
            p[i] ^= (uint8_t)(k >> (8 * (i & 3)));
        p += head, n -= head;
        k = rotate_key(k, head);
    }
    const __m256i vk = _mm256_set1_epi32((int)k);
    for (; n >= 128 + WS_MASK_PF; p += 128, n -= 128) {
        _mm_prefetch((const char *)p + WS_MASK_PF, _MM_HINT_T0);
        _mm_prefetch((const char *)p + WS_MASK_PF + 64, _MM_HINT_T0);
        mask128_avx2(p, vk);
    }
    for (; n >= 128; p += 128, n -= 128)
        mask128_avx2(p, vk);
    for (; n >= 32; p += 32, n -= 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)p);
        _mm256_storeu_si256((__m256i *)p, _mm256_xor_si256(a, vk));
    }
    if (n >= 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)p);
        _mm_storeu_si128((__m128i *)p, _mm_xor_si128(a, _mm256_castsi256_si128(vk)));
        p += 16, n -= 16;
    }
    mask_tail(p, n, k);
}

/* XORs the first len (1..64) bytes at p; the masked load and store leave the other lanes
 * untouched in memory and never fault on them. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline void
mask_partial512(uint8_t *p, size_t len, __m512i vk)
{
    __mmask64 m = len >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << len) - 1);
    __m512i a = _mm512_maskz_loadu_epi8(m, p);
    _mm512_mask_storeu_epi8(p, m, _mm512_xor_si512(a, vk));
}

/* 256 bytes at a 64-byte aligned p. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static inline void mask256_avx512(uint8_t *p,
                                                                                       __m512i vk)
{
    __m512i a = _mm512_load_si512((const void *)p);
    __m512i b = _mm512_load_si512((const void *)(p + 64));
    __m512i c = _mm512_load_si512((const void *)(p + 128));
    __m512i d = _mm512_load_si512((const void *)(p + 192));
    _mm512_store_si512((void *)p, _mm512_xor_si512(a, vk));
    _mm512_store_si512((void *)(p + 64), _mm512_xor_si512(b, vk));
    _mm512_store_si512((void *)(p + 128), _mm512_xor_si512(c, vk));
    _mm512_store_si512((void *)(p + 192), _mm512_xor_si512(d, vk));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void
ws_mask_avx512(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
    if (n == 0)
        return;
    uint32_t k = key_word(key, offset);
    __m512i vk = _mm512_set1_epi32((int)k);
    if (n <= 64) {
        mask_partial512(p, n, vk);
        return;
    }
    /* A 64-byte access that is not 64-byte aligned always spans two cache lines; one masked
     * head step makes every access in the main loop aligned. */
    size_t head = (size_t)(-(uintptr_t)p) & 63;
    if (head) {
        mask_partial512(p, head, vk);
        p += head, n -= head;
        k = rotate_key(k, head);
        vk = _mm512_set1_epi32((int)k);
    }
    for (; n >= 256 + WS_MASK_PF; p += 256, n -= 256) {
        for (size_t i = 0; i < 256; i += 64)
            _mm_prefetch((const char *)p + WS_MASK_PF + i, _MM_HINT_T0);
        mask256_avx512(p, vk);
    }
    for (; n >= 256; p += 256, n -= 256)
        mask256_avx512(p, vk);
    for (; n >= 64; p += 64, n -= 64) {
        __m512i a = _mm512_load_si512((const void *)p);
        _mm512_store_si512((void *)p, _mm512_xor_si512(a, vk));
    }
    if (n)
        mask_partial512(p, n, vk);
}

typedef void (*ws_mask_fn)(uint8_t *, size_t, const uint8_t *, uint64_t);

/* Resolved on first use. Threads racing on the first call all compute the same pointer; the
 * atomic only keeps that race defined. */
static _Atomic(ws_mask_fn) mask_selected;

static ws_mask_fn mask_resolve(void)
{
    switch (ws_cpu_simd_cap()) {
    case WS_SIMD_AVX512:
        return ws_mask_avx512;
    case WS_SIMD_AVX2:
        return ws_mask_avx2;
    default:
        return ws_mask_scalar;
    }
}

static ws_mask_fn mask_get(void)
{
    ws_mask_fn f = atomic_load_explicit(&mask_selected, memory_order_acquire);
    if (WS_UNLIKELY(f == NULL)) {
        f = mask_resolve();
        atomic_store_explicit(&mask_selected, f, memory_order_release);
    }
    return f;
}

void ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
    mask_get()(p, n, key, offset);
}

const char *ws_mask_impl(void)
{
    ws_mask_fn f = mask_get();
    return f == ws_mask_avx512 ? "avx512" : f == ws_mask_avx2 ? "avx2" : "scalar";
}
