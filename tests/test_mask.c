/* Unit test for core/mask.c: every implementation (and the benchmark baselines) against a
 * byte-at-a-time reference at every alignment, length and key offset, on random large
 * buffers, across chunk splits, and against guard pages to prove no byte outside p[0..n)
 * is read or written. SIMD parts are skipped, with a note, on CPUs without them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uringws/cpu.h"
#include "uringws/mask.h"

#include "check.h"

typedef void (*mask_fn)(uint8_t *, size_t, const uint8_t *, uint64_t);

typedef struct impl {
    const char *name;
    mask_fn fn;
} impl_t;

static impl_t impls[8];
static size_t nimpls;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng();
}

static void mask_reference(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= key[(offset + i) & 3];
}

static void test_rfc_example(void)
{
    /* RFC 6455 5.7: "Hello" masked with 37 fa 21 3d. */
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    const uint8_t masked[5] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    for (size_t i = 0; i < nimpls; i++) {
        uint8_t buf[5];
        memcpy(buf, "Hello", 5);
        impls[i].fn(buf, 5, key, 0);
        CHECK(memcmp(buf, masked, 5) == 0);
        impls[i].fn(buf, 5, key, 0);
        CHECK(memcmp(buf, "Hello", 5) == 0);
    }
}

/* Every alignment 0..63, every length 0..300, every offset 0..3, with 64 guard bytes on
 * each side that must come back unchanged. */
static void test_exhaustive_small(void)
{
    enum { GUARD = 64, MAXLEN = 300, ALIGNS = 64 };
    /* aligned_alloc wants a multiple of the alignment. */
    size_t total = (GUARD + ALIGNS + MAXLEN + GUARD + 63) & ~(size_t)63;
    uint8_t *orig = aligned_alloc(64, total);
    uint8_t *want = aligned_alloc(64, total);
    uint8_t *got = aligned_alloc(64, total);
    REQUIRE(orig && want && got);
    for (size_t align = 0; align < ALIGNS; align++) {
        for (size_t len = 0; len <= MAXLEN; len++) {
            for (uint64_t offset = 0; offset < 4; offset++) {
                uint8_t key[4];
                fill_random(key, 4);
                fill_random(orig, total);
                memcpy(want, orig, total);
                mask_reference(want + GUARD + align, len, key, offset);
                for (size_t i = 0; i < nimpls; i++) {
                    memcpy(got, orig, total);
                    impls[i].fn(got + GUARD + align, len, key, offset);
                    if (memcmp(got, want, total) != 0) {
                        fprintf(stderr, "%s: mismatch align %zu len %zu offset %llu\n",
                                impls[i].name, align, len, (unsigned long long)offset);
                        exit(1);
                    }
                }
            }
        }
    }
    free(orig);
    free(want);
    free(got);
}

/* Large random buffers at random alignments and offsets (offsets beyond 32 bits too). */
static void test_random_large(void)
{
    size_t cap = (2u << 20) + 128;
    uint8_t *orig = malloc(cap), *want = malloc(cap), *got = malloc(cap);
    REQUIRE(orig && want && got);
    for (int iter = 0; iter < 40; iter++) {
        size_t len = (size_t)(rng() % (2u << 20));
        size_t align = (size_t)(rng() % 64);
        uint64_t offset = rng();
        uint8_t key[4];
        fill_random(key, 4);
        fill_random(orig, len + align + 64);
        memcpy(want, orig, len + align + 64);
        mask_reference(want + align, len, key, offset);
        for (size_t i = 0; i < nimpls; i++) {
            memcpy(got, orig, len + align + 64);
            impls[i].fn(got + align, len, key, offset);
            if (memcmp(got, want, len + align + 64) != 0) {
                fprintf(stderr, "%s: large mismatch len %zu align %zu\n", impls[i].name, len,
                        align);
                exit(1);
            }
        }
    }
    free(orig);
    free(want);
    free(got);
}

/* A payload masked chunk by chunk with the running offset equals masking it at once. */
static void test_split(void)
{
    enum { LEN = 5000 };
    uint8_t orig[LEN], want[LEN], got[LEN];
    for (int iter = 0; iter < 200; iter++) {
        uint8_t key[4];
        fill_random(key, 4);
        fill_random(orig, LEN);
        memcpy(want, orig, LEN);
        mask_reference(want, LEN, key, 0);
        for (size_t i = 0; i < nimpls; i++) {
            memcpy(got, orig, LEN);
            size_t pos = 0;
            while (pos < LEN) {
                size_t n = (size_t)(rng() % 300);
                if (n > LEN - pos)
                    n = LEN - pos;
                impls[i].fn(got + pos, n, key, pos);
                pos += n;
            }
            CHECK(memcmp(got, want, LEN) == 0);
        }
    }
}

/* Buffers that end right before, or start right after, an inaccessible page: an access
 * outside p[0..n) faults. Masked AVX-512 tails must suppress the fault. */
static void test_guard_pages(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(map != MAP_FAILED);
    REQUIRE(mprotect(map, page, PROT_NONE) == 0);
    REQUIRE(mprotect(map + 2 * page, page, PROT_NONE) == 0);
    uint8_t *lo = map + page, *hi = map + 2 * page;
    uint8_t want[1024];
    const uint8_t key[4] = {1, 2, 3, 4};
    for (size_t i = 0; i < nimpls; i++) {
        for (size_t len = 0; len <= 1024; len++) {
            for (uint64_t offset = 0; offset < 4; offset++) {
                uint8_t *p = hi - len; /* ends at the guard page */
                fill_random(p, len);
                memcpy(want, p, len);
                mask_reference(want, len, key, offset);
                impls[i].fn(p, len, key, offset);
                CHECK(memcmp(p, want, len) == 0);
                p = lo; /* starts right after the guard page */
                fill_random(p, len);
                memcpy(want, p, len);
                mask_reference(want, len, key, offset);
                impls[i].fn(p, len, key, offset);
                CHECK(memcmp(p, want, len) == 0);
            }
        }
    }
    munmap(map, 3 * page);
}

static void test_dispatch(void)
{
    const char *name = ws_mask_impl();
    const char *env = getenv("URINGWS_SIMD");
    const char *expect = ws_cpu_has_avx512() ? "avx512" : ws_cpu_has_avx2() ? "avx2" : "scalar";
    if (env && strcmp(env, "scalar") == 0)
        expect = "scalar";
    else if (env && strcmp(env, "avx2") == 0 && ws_cpu_has_avx2())
        expect = "avx2";
    printf("test_mask: ws_mask uses %s\n", name);
    CHECK(strcmp(name, expect) == 0);
}

int main(void)
{
    impls[nimpls++] = (impl_t){"scalar", ws_mask_scalar};
    impls[nimpls++] = (impl_t){"dispatch", ws_mask};
    impls[nimpls++] = (impl_t){"baseline_bytes", ws_mask_baseline_bytes};
    impls[nimpls++] = (impl_t){"baseline_word", ws_mask_baseline_word};
    if (ws_cpu_has_avx2())
        impls[nimpls++] = (impl_t){"avx2", ws_mask_avx2};
    else
        printf("test_mask: CPU has no AVX2, skipping ws_mask_avx2\n");
    if (ws_cpu_has_avx512())
        impls[nimpls++] = (impl_t){"avx512", ws_mask_avx512};
    else
        printf("test_mask: CPU has no AVX-512 F/BW/VL, skipping ws_mask_avx512\n");

    test_dispatch();
    test_rfc_example();
    test_exhaustive_small();
    test_random_large();
    test_split();
    test_guard_pages();
    printf("test_mask: %zu implementations\n", nimpls);
    return check_exit_status("test_mask");
}
