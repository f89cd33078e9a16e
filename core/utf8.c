/* UTF-8 validation front end: the runtime dispatcher (picked once from ws_cpu_simd_cap()),
 * the portable scalar validator every SIMD path is tested against, and the incremental
 * validator for fragmented text messages. The vector code lives in utf8_avx2.c and
 * utf8_avx512.c; this file must not use instructions beyond the baseline ISA.
 *
 * The byte rules are those of RFC 3629 / Unicode Table 3-7 (well-formed byte sequences):
 *   00..7F
 *   C2..DF 80..BF
 *   E0     A0..BF 80..BF        (E0 80..9F would be overlong)
 *   E1..EC 80..BF 80..BF
 *   ED     80..9F 80..BF        (ED A0..BF would be a surrogate)
 *   EE..EF 80..BF 80..BF
 *   F0     90..BF 80..BF 80..BF (F0 80..8F would be overlong)
 *   F1..F3 80..BF 80..BF 80..BF
 *   F4     80..8F 80..BF 80..BF (F4 90.. would be above U+10FFFF)
 * Only the second byte's range depends on the lead; every later byte is 80..BF. */
#include "uringws/utf8.h"

#include <stdatomic.h>
#include <string.h>

#include "uringws/common.h"
#include "uringws/cpu.h"

/* Length of the sequence a byte starts: 1 for ASCII, 2..4 for a valid lead, 0 for a byte that
 * cannot start one (a continuation, C0, C1, F5..FF). */
static inline unsigned seq_len(uint8_t b)
{
    if (b < 0x80)
        return 1;
    if (b < 0xc2)
        return 0;
    if (b < 0xe0)
        return 2;
    if (b < 0xf0)
        return 3;
    if (b < 0xf5)
        return 4;
    return 0;
}

/* Whether b may be byte number pos (1..3) of the sequence that lead (a valid lead) starts. */
static inline bool cont_ok(uint8_t lead, unsigned pos, uint8_t b)
{
    uint8_t lo = 0x80, hi = 0xbf;
    if (pos == 1) {
        switch (lead) {
        case 0xe0:
            lo = 0xa0;
            break;
        case 0xed:
            hi = 0x9f;
            break;
        case 0xf0:
            lo = 0x90;
            break;
        case 0xf4:
            hi = 0x8f;
            break;
        default:
            break;
        }
    }
    return b >= lo && b <= hi;
}

bool ws_utf8_valid_scalar(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            /* Text is mostly ASCII: skip it eight bytes at a time while no byte has bit 7. */
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            while (i < n && p[i] < 0x80)
                i++;
            continue;
        }
        unsigned len = seq_len(p[i]);
        if (len == 0 || n - i < len)
            return false;
        if (!cont_ok(p[i], 1, p[i + 1]))
            return false;
        for (unsigned k = 2; k < len; k++)
            if (!cont_ok(p[i], k, p[i + k]))
                return false;
        i += len;
    }
    return true;
}

typedef struct utf8_impl {
    bool (*valid)(const uint8_t *p, size_t n);
    const char *name;
} utf8_impl_t;

static const utf8_impl_t utf8_impls[] = {
    [WS_SIMD_SCALAR] = {ws_utf8_valid_scalar, "scalar"},
    [WS_SIMD_AVX2] = {ws_utf8_valid_avx2, "avx2"},
    [WS_SIMD_AVX512] = {ws_utf8_valid_avx512, "avx512"},
};

/* Resolved on first use rather than in a constructor so that URINGWS_SIMD set by a test or
 * benchmark before its first call still counts. Threads racing on the first call all compute
 * the same answer and store the same pointer; relaxed ordering suffices because the pointer
 * targets constant data. */
static _Atomic(const utf8_impl_t *) utf8_chosen;

static const utf8_impl_t *utf8_impl(void)
{
    const utf8_impl_t *impl = atomic_load_explicit(&utf8_chosen, memory_order_relaxed);
    if (WS_LIKELY(impl != NULL))
        return impl;
    int level = ws_cpu_simd_cap();
    if (level < WS_SIMD_SCALAR || level > WS_SIMD_AVX512)
        level = WS_SIMD_SCALAR;
    impl = &utf8_impls[level];
    atomic_store_explicit(&utf8_chosen, impl, memory_order_relaxed);
    return impl;
}

bool ws_utf8_valid(const uint8_t *p, size_t n)
{
    return utf8_impl()->valid(p, n);
}

const char *ws_utf8_impl(void)
{
    return utf8_impl()->name;
}

void ws_utf8_init(ws_utf8_state_t *st)
{
    memset(st, 0, sizeof(*st));
}

/* A chunk is validated in three parts: the head finishes the character the previous chunk cut
 * off (scalar, at most three bytes), the middle up to the start of the last character is
 * checked by the dispatched one-shot validator, and a last character the chunk cuts off is
 * checked as a prefix (scalar) and kept. Because a valid stream has a character boundary
 * before every byte that is not a continuation byte, cutting the middle right before the last
 * lead byte gives exactly the verdict of validating the whole stream up to there. */
bool ws_utf8_feed(ws_utf8_state_t *st, const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    if (st->npartial != 0) {
        size_t i = 0;
        unsigned have = st->npartial;
        while (have < st->need) {
            if (i == n) {
                st->npartial = (uint8_t)have;
                return true;
            }
            if (!cont_ok(st->partial[0], have, p[i]))
                return false;
            st->partial[have++] = p[i++];
        }
        st->npartial = 0;
        st->need = 0;
        p += i;
        n -= i;
        if (n == 0)
            return true;
    }

    /* Find a lead byte among the last three that starts a sequence longer than what is left
     * of the chunk. A non-continuation byte further back, or three trailing continuation
     * bytes, means no character is cut off (or the middle check rejects the chunk). */
    size_t cut = n;
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t b = p[n - k];
        if ((b & 0xc0) == 0x80)
            continue;
        unsigned nominal = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        if (b >= 0xc0 && k < nominal)
            cut = n - k;
        break;
    }

    if (cut != 0 && !ws_utf8_valid(p, cut))
        return false;
    if (cut == n)
        return true;

    /* Here seq_len() of a valid lead equals the nominal length above, so need > n - cut. */
    uint8_t lead = p[cut];
    unsigned need = seq_len(lead);
    if (need < 2)
        return false;
    st->partial[0] = lead;
    for (size_t k = 1; cut + k < n; k++) {
        if (!cont_ok(lead, (unsigned)k, p[cut + k]))
            return false;
        st->partial[k] = p[cut + k];
    }
    st->npartial = (uint8_t)(n - cut);
    st->need = (uint8_t)need;
    return true;
}

bool ws_utf8_complete(const ws_utf8_state_t *st)
{
    return st->npartial == 0;
}
