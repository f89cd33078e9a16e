/* AVX-512 (F + BW) UTF-8 validator (Keiser-Lemire lookup method, see utf8_internal.h), one
 * 64-byte zmm per step. Compiled for the baseline ISA with AVX-512 enabled per function, so
 * this file must only be entered through the dispatcher in utf8.c or after
 * ws_cpu_has_avx512() returned true. It needs no VBMI: cross-lane byte shifts are built from
 * valignd (F) and vpalignr (BW). The target also names VL, which the runtime check requires
 * too, so the compiler may use EVEX forms of the 128-bit table loads.
 *
 * Tail handling: the last n % 64 bytes are read with a byte-masked load (vmovdqu8 with a
 * zeroing mask). Masked-off bytes are never accessed and cannot fault, so no load touches
 * memory past p + n. The zeroed bytes are ASCII, which also makes them catch a sequence cut
 * off by the end of the input: a lead byte followed by 0x00 is TOO_SHORT. */
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/utf8.h"
#include "utf8_internal.h"

#define WS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

typedef struct utf8_avx512_ctx {
    __m512i prev_high, prev_low, cur_high; /* the three tables, in all four 128-bit lanes */
    __m512i error;                         /* OR of every error class found so far */
    __m512i prev;                          /* the previous 64 input bytes */
    __m512i prev_incomplete;               /* non-zero when the previous block ended mid-char */
} utf8_avx512_ctx_t;

WS_AVX512 static inline __m512i table(const uint8_t t[16])
{
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t));
}

/* Byte i of the result is the byte N positions before byte i of cur, reaching into prev.
 * valignd by 12 dwords gives, per 128-bit lane, the 16 bytes before that lane of cur; vpalignr
 * then joins each lane with its predecessor and takes the window starting N bytes back. */
#define PREV_N(cur, carry, N) _mm512_alignr_epi8((cur), (carry), 16 - (N))

WS_AVX512 static inline __m512i check_vec(const utf8_avx512_ctx_t *c, __m512i cur, __m512i prev)
{
    const __m512i nib = _mm512_set1_epi8(0x0f);
    __m512i carry = _mm512_alignr_epi32(cur, prev, 12);
    __m512i p1 = PREV_N(cur, carry, 1);
    __m512i hi1 = _mm512_and_si512(_mm512_srli_epi16(p1, 4), nib);
    __m512i lo1 = _mm512_and_si512(p1, nib);
    __m512i hi0 = _mm512_and_si512(_mm512_srli_epi16(cur, 4), nib);
    /* 0x80 is the truth table of a & b & c. */
    __m512i sc = _mm512_ternarylogic_epi32(_mm512_shuffle_epi8(c->prev_high, hi1),
                                           _mm512_shuffle_epi8(c->prev_low, lo1),
                                           _mm512_shuffle_epi8(c->cur_high, hi0), 0x80);
    /* Bit 7 set where the byte must be the 3rd or 4th of a sequence; there TWO_CONTS is
     * required, elsewhere forbidden, so XOR turns the expected bit into zero and the rest into
     * an error. */
    __m512i p2 = PREV_N(cur, carry, 2);
    __m512i p3 = PREV_N(cur, carry, 3);
    __m512i is3 = _mm512_subs_epu8(p2, _mm512_set1_epi8((char)WS__U8_IS_3RD_SUB));
    __m512i is4 = _mm512_subs_epu8(p3, _mm512_set1_epi8((char)WS__U8_IS_4TH_SUB));
    /* 0xa8 is the truth table of (a | b) & c. */
    __m512i must23 = _mm512_ternarylogic_epi32(is3, is4, _mm512_set1_epi8((char)0x80), 0xa8);
    return _mm512_xor_si512(must23, sc);
}

WS_AVX512 static inline __m512i incomplete_vec(__m512i v)
{
    /* No limit (0xFF) except on the last three bytes, which sit in the top quadword. */
    const uint64_t top = ((uint64_t)WS__U8_LAST1_MAX << 56) | ((uint64_t)WS__U8_LAST2_MAX << 48) |
                         ((uint64_t)WS__U8_LAST3_MAX << 40) | 0xffffffffffULL;
    const __m512i max = _mm512_set_epi64((long long)top, -1, -1, -1, -1, -1, -1, -1);
    return _mm512_subs_epu8(v, max);
}

WS_AVX512 static inline void step(utf8_avx512_ctx_t *c, __m512i v)
{
    if (_mm512_movepi8_mask(v) == 0) {
        /* ASCII block: valid by itself, but it cannot continue a char the last block began. */
        c->error = _mm512_or_si512(c->error, c->prev_incomplete);
        c->prev_incomplete = _mm512_setzero_si512();
        c->prev = v;
        return;
    }
    c->error = _mm512_or_si512(c->error, check_vec(c, v, c->prev));
    c->prev_incomplete = incomplete_vec(v);
    c->prev = v;
}

WS_AVX512 bool ws_utf8_valid_avx512(const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    utf8_avx512_ctx_t c;
    c.prev_high = table(ws__utf8_prev_high);
    c.prev_low = table(ws__utf8_prev_low);
    c.cur_high = table(ws__utf8_cur_high);
    c.error = _mm512_setzero_si512();
    c.prev = _mm512_setzero_si512(); /* as if the input followed ASCII */
    c.prev_incomplete = _mm512_setzero_si512();

    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        step(&c, _mm512_loadu_si512((const void *)(p + i)));
    if (i < n) {
        /* Fewer than 64 bytes left: the zeroed lanes after them flag any sequence the input's
         * end cuts off, and leave prev_incomplete of this step at 0. */
        __mmask64 live = (__mmask64)((1ULL << (n - i)) - 1);
        step(&c, _mm512_maskz_loadu_epi8(live, p + i));
    }
    c.error = _mm512_or_si512(c.error, c.prev_incomplete);
    return _mm512_test_epi8_mask(c.error, c.error) == 0;
}
