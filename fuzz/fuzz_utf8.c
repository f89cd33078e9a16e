/* libFuzzer driver for the UTF-8 module: a differential check of every validator (baseline,
 * scalar, dispatcher, AVX2 and AVX-512 where the CPU has them) on the input, and of the
 * incremental validator fed the same bytes in chunks derived from the input, whose first
 * failing feed must be the one that holds the first byte no valid text can have (found
 * independently with the baseline decoder). Any disagreement traps.
 *
 * Each copy of the input handed to a validator ends exactly at the end of its heap block, so
 * AddressSanitizer reports any read past the end. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/cpu.h"
#include "uringws/utf8.h"

static void fail(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "fuzz_utf8: %s (input of %zu bytes)\n", what, n);
    for (size_t i = 0; i < n && i < 64; i++)
        fprintf(stderr, "%02x%s", p[i], i % 32 == 31 ? "\n" : " ");
    fprintf(stderr, "\n");
    __builtin_trap();
}

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A heap copy of p[0..n) placed so that its last byte is the last byte of the allocation and its
 * first byte has the given misalignment. */
static uint8_t *copy_at_end(const uint8_t *p, size_t n, size_t misalign, uint8_t **block)
{
    *block = malloc(misalign + n + 1); /* + 1: malloc(0) may return NULL */
    if (*block == NULL)
        abort();
    uint8_t *dst = *block + misalign + 1;
    if (n)
        memcpy(dst, p, n);
    return dst;
}

/* Whether p[0..k) can be continued into valid UTF-8. Every lead's allowed second-byte range
 * contains 0x80, 0x90 or 0xa0 and later bytes allow 0x80, so these endings cover every way an
 * unfinished last character can be completed. */
static bool prefix_ok(const uint8_t *p, size_t k)
{
    static const char *const endings[] = {
        "",         "\x80",     "\x90",         "\xa0",         "\x80\x80",
        "\x90\x80", "\xa0\x80", "\x80\x80\x80", "\x90\x80\x80", "\xa0\x80\x80"};
    /* Start from the last byte, among the last four, that is not a continuation: every valid
     * completion has a character boundary before it, so what precedes it must be valid on its
     * own, and what follows it is the unfinished character (at most four bytes). */
    size_t lo = k > 4 ? k - 4 : 0;
    size_t start = k;
    while (start > lo && (p[start - 1] & 0xc0) == 0x80)
        start--;
    if (start > lo)
        start--;
    else if (lo > 0)
        return false; /* four continuation bytes in a row */
    if (!ws_utf8_valid_baseline(p, start))
        return false;
    uint8_t tail[8];
    size_t m = k - start;
    for (size_t e = 0; e < sizeof(endings) / sizeof(endings[0]); e++) {
        size_t el = strlen(endings[e]);
        memcpy(tail, p + start, m);
        memcpy(tail + m, endings[e], el);
        if (ws_utf8_valid_baseline(tail, m + el))
            return true;
    }
    return false;
}

/* Length of the shortest prefix that cannot be continued into valid UTF-8, or n + 1. */
static size_t fail_at(const uint8_t *p, size_t n)
{
    size_t lo = 0, hi = n + 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (prefix_ok(p, mid))
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

/* Feeds p[0..n) in chunks whose lengths come from the seed (or single bytes when bytewise),
 * each chunk in its own exactly-sized heap block. */
static void check_feed(const uint8_t *p, size_t n, uint64_t seed, bool bytewise, size_t bad,
                       bool one_shot)
{
    ws_utf8_state_t st;
    ws_utf8_init(&st);
    size_t start = 0;
    do {
        size_t len;
        if (bytewise) {
            len = n ? 1 : 0;
        } else {
            uint64_t r = mix(&seed);
            switch (r & 3) {
            case 0:
                len = (r >> 8) % 4; /* 0..3: empty chunks and cut characters */
                break;
            case 1:
                len = (r >> 8) % 70;
                break;
            default:
                len = (r >> 8) % (n + 1);
                break;
            }
        }
        if (len > n - start)
            len = n - start;
        uint8_t *block;
        const uint8_t *chunk = copy_at_end(p + start, len, (seed >> 3) % 64, &block);
        bool ok = ws_utf8_feed(&st, chunk, len);
        free(block);
        bool expect_ok = !(bad >= start + 1 && bad <= start + len);
        if (ok != expect_ok)
            fail(ok ? "feed accepted the chunk where the text turns invalid"
                    : "feed rejected a chunk that is a valid prefix",
                 p, n);
        if (!ok)
            return;
        if (st.npartial > 3 || (st.npartial == 0) != (st.need == 0))
            fail("feed left an inconsistent state", p, n);
        start += len;
    } while (start < n);
    if (bad != n + 1 || ws_utf8_complete(&st) != one_shot)
        fail("incremental and one-shot verdicts differ", p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The seed for chunking and misalignment comes from the input, so every input is replayed
     * identically and mutations explore the chunking too. */
    uint64_t seed = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;

    uint8_t *block;
    const uint8_t *p = copy_at_end(data, size, seed % 64, &block);
    bool ref = ws_utf8_valid_baseline(p, size);
    if (ws_utf8_valid_scalar(p, size) != ref)
        fail("scalar differs from baseline", p, size);
    if (ws_utf8_valid(p, size) != ref)
        fail("dispatched validator differs from baseline", p, size);
    if (ws_cpu_has_avx2() && ws_utf8_valid_avx2(p, size) != ref)
        fail("avx2 differs from baseline", p, size);
    if (ws_cpu_has_avx512() && ws_utf8_valid_avx512(p, size) != ref)
        fail("avx512 differs from baseline", p, size);

    size_t bad = fail_at(p, size);
    if (ref && bad != size + 1)
        fail("valid text has an invalid prefix", p, size);
    check_feed(p, size, seed, false, bad, ref);
    check_feed(p, size, seed ^ 0x5555, false, bad, ref);
    if (size <= 4096)
        check_feed(p, size, seed, true, bad, ref);
    free(block);
    return 0;
}
