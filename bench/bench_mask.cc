// Microbenchmark for core/mask.c: unmasking throughput of the byte loop and the 8-byte word
// loop (core/baseline.c, not auto-vectorized), the production scalar fallback, AVX2 and
// AVX-512, at 64 B, 1 KiB, 64 KiB and 1 MiB. Buffers are 64-byte aligned; the *_misaligned
// runs start one byte later, as a payload after a 6- or 8-byte header usually does.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "uringws/cpu.h"
#include "uringws/mask.h"

namespace
{

using mask_fn = void (*)(uint8_t *, size_t, const uint8_t *, uint64_t);

enum Need { kNone, kAvx2, kAvx512 };

void BM_mask(benchmark::State &state, mask_fn fn, Need need, size_t misalign)
{
    if ((need == kAvx2 && !ws_cpu_has_avx2()) || (need == kAvx512 && !ws_cpu_has_avx512())) {
        state.SkipWithError("CPU lacks the instruction set");
        return;
    }
    const size_t n = static_cast<size_t>(state.range(0));
    const size_t cap = (n + misalign + 63) & ~size_t{63};
    auto *buf = static_cast<uint8_t *>(std::aligned_alloc(64, cap));
    std::memset(buf, 0x5a, cap);
    const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    for (auto _ : state) {
        fn(buf + misalign, n, key, 0);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
    std::free(buf);
}

void Sizes(benchmark::internal::Benchmark *b)
{
    b->Arg(64)->Arg(1 << 10)->Arg(16 << 10)->Arg(64 << 10)->Arg(1 << 20);
}

} // namespace

BENCHMARK_CAPTURE(BM_mask, baseline_bytes, ws_mask_baseline_bytes, kNone, 0)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_mask, baseline_word, ws_mask_baseline_word, kNone, 0)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_mask, scalar, ws_mask_scalar, kNone, 0)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_mask, avx2, ws_mask_avx2, kAvx2, 0)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_mask, avx512, ws_mask_avx512, kAvx512, 0)->Apply(Sizes);
BENCHMARK_CAPTURE(BM_mask, baseline_word_misaligned, ws_mask_baseline_word, kNone, 1)
    ->Arg(64 << 10);
BENCHMARK_CAPTURE(BM_mask, avx2_misaligned, ws_mask_avx2, kAvx2, 1)->Arg(64 << 10);
BENCHMARK_CAPTURE(BM_mask, avx512_misaligned, ws_mask_avx512, kAvx512, 1)->Arg(64 << 10);
