/* AVX2 UTF-8 validator (Keiser-Lemire lookup method, see utf8_internal.h), 64 bytes per step.
 * Compiled for the baseline ISA with AVX2 enabled per function, so this file must only be
 * entered through the dispatcher in utf8.c or after ws_cpu_has_avx2() returned true.
 *
 * Tail handling: the last n % 64 bytes are copied into a zeroed 64-byte local buffer and
 * validated from there, so no load ever touches memory past p + n (AVX2 has no byte-granular
 * fault-free masked load). The zero padding is ASCII, which also makes the padding catch a
 * sequence truncated by the end of the input: a lead byte followed by 0x00 is TOO_SHORT. */
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "uringws/utf8.h"
#include "utf8_internal.h"

#define WS_AVX2 __attribute__((target("avx2")))

typedef struct utf8_avx2_ctx {
    __m256i prev_high, prev_low, cur_high; /* the three tables, in both 128-bit lanes */
    __m256i error;                         /* OR of every error class found so far */
    __m256i prev;                          /* the previous 32 input bytes */
    __m256i prev_incomplete;               /* non-zero when the previous block ended mid-char */
} utf8_avx2_ctx_t;

WS_AVX2 static inline __m256i table(const uint8_t t[16])
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t));
}

/* The input shifted by N bytes towards higher addresses, with the last N bytes of the previous
 * vector shifted in: byte i of the result is the byte N positions before byte i. vpalignr works
 * within 128-bit lanes, so the low lane's carry-in comes from the previous vector's high lane
 * and the high lane's from the current low lane (vperm2i128 0x21 builds that pair). */
#define PREV_N(cur, prev, N)                                                                       \
    _mm256_alignr_epi8((cur), _mm256_permute2x128_si256((prev), (cur), 0x21), 16 - (N))

/* Error classes of 32 bytes given the 32 before them; zero when they are valid so far. */
WS_AVX2 static inline __m256i check_vec(const utf8_avx2_ctx_t *c, __m256i cur, __m256i prev)
{
    const __m256i nib = _mm256_set1_epi8(0x0f);
    __m256i p1 = PREV_N(cur, prev, 1);
    __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(p1, 4), nib);
    __m256i lo1 = _mm256_and_si256(p1, nib);
    __m256i hi0 = _mm256_and_si256(_mm256_srli_epi16(cur, 4), nib);
    __m256i sc = _mm256_and_si256(_mm256_and_si256(_mm256_shuffle_epi8(c->prev_high, hi1),
                                                   _mm256_shuffle_epi8(c->prev_low, lo1)),
                                  _mm256_shuffle_epi8(c->cur_high, hi0));
    /* Bit 7 set where the byte must be the 3rd or 4th of a sequence; there TWO_CONTS is
     * required, elsewhere forbidden, so XOR turns the expected bit into zero and the rest into
     * an error. */
    __m256i p2 = PREV_N(cur, prev, 2);
    __m256i p3 = PREV_N(cur, prev, 3);
    __m256i is3 = _mm256_subs_epu8(p2, _mm256_set1_epi8((char)WS__U8_IS_3RD_SUB));
    __m256i is4 = _mm256_subs_epu8(p3, _mm256_set1_epi8((char)WS__U8_IS_4TH_SUB));
    __m256i must23 = _mm256_and_si256(_mm256_or_si256(is3, is4), _mm256_set1_epi8((char)0x80));
    return _mm256_xor_si256(must23, sc);
}

WS_AVX2 static inline __m256i incomplete_vec(__m256i v)
{
    const __m256i max =
        _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, (char)WS__U8_LAST3_MAX,
                         (char)WS__U8_LAST2_MAX, (char)WS__U8_LAST1_MAX);
    return _mm256_subs_epu8(v, max);
}

WS_AVX2 static inline void step(utf8_avx2_ctx_t *c, const uint8_t *p)
{
    __m256i v0 = _mm256_loadu_si256((const __m256i *)p);
    __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
    if (_mm256_movemask_epi8(_mm256_or_si256(v0, v1)) == 0) {
        /* ASCII block: valid by itself, but it cannot continue a char the last block began. */
        c->error = _mm256_or_si256(c->error, c->prev_incomplete);
        c->prev_incomplete = _mm256_setzero_si256();
        c->prev = v1;
        return;
    }
    c->error = _mm256_or_si256(c->error, check_vec(c, v0, c->prev));
    c->error = _mm256_or_si256(c->error, check_vec(c, v1, v0));
    c->prev_incomplete = incomplete_vec(v1);
    c->prev = v1;
}

WS_AVX2 bool ws_utf8_valid_avx2(const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    utf8_avx2_ctx_t c;
    c.prev_high = table(ws__utf8_prev_high);
    c.prev_low = table(ws__utf8_prev_low);
    c.cur_high = table(ws__utf8_cur_high);
    c.error = _mm256_setzero_si256();
    c.prev = _mm256_setzero_si256(); /* as if the input followed ASCII */
    c.prev_incomplete = _mm256_setzero_si256();

    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        step(&c, p + i);
    if (i < n) {
        /* Fewer than 64 bytes left, so the buffer ends in at least one zero byte, which
         * flags any sequence the input's end cuts off; prev_incomplete of this step is 0. */
        uint8_t tail[64] __attribute__((aligned(32)));
        memset(tail, 0, sizeof(tail));
        memcpy(tail, p + i, n - i);
        step(&c, tail);
    }
    c.error = _mm256_or_si256(c.error, c.prev_incomplete);
    return _mm256_testz_si256(c.error, c.error);
}
