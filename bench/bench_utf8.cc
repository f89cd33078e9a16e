// Microbenchmarks for UTF-8 validation (core/utf8*.c): the non-vectorized baseline decoder, the
// scalar validator, AVX2 and AVX-512, and the incremental validator, on pure ASCII and on text
// made only of 2-, 3- and 4-byte characters, at 64 B, 1 KiB, 64 KiB and 1 MiB. Reports bytes/s.
// Implementations the CPU lacks are reported as skipped, never run.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "uringws/cpu.h"
#include "uringws/utf8.h"

namespace
{

enum class Text { Ascii, Mixed };

using ValidateFn = bool (*)(const uint8_t *, size_t);

size_t encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = static_cast<uint8_t>(cp);
        return 1;
    }
    if (cp < 0x800) {
        out[0] = static_cast<uint8_t>(0xc0 | (cp >> 6));
        out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = static_cast<uint8_t>(0xe0 | (cp >> 12));
        out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3f));
        out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = static_cast<uint8_t>(0xf0 | (cp >> 18));
    out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3f));
    out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3f));
    out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3f));
    return 4;
}

// Printable ASCII, or characters whose encoded length is drawn uniformly from 2, 3 and 4 (the
// worst case for branchy decoders: every length change is a coin flip). A character that does
// not fit at the end is replaced by ASCII, so the text is always valid and exactly n bytes.
std::vector<uint8_t> make_text(Text kind, size_t n)
{
    std::mt19937_64 rng(42);
    std::vector<uint8_t> v(n);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        if (kind == Text::Ascii) {
            cp = 0x20 + static_cast<uint32_t>(rng() % 0x5f);
        } else {
            switch (rng() % 3) {
            case 0:
                cp = 0x80 + static_cast<uint32_t>(rng() % (0x800 - 0x80));
                break;
            case 1:
                cp = 0x800 + static_cast<uint32_t>(rng() % (0x10000 - 0x800 - 0x800));
                if (cp >= 0xd800)
                    cp += 0x800; // skip the surrogates
                break;
            default:
                cp = 0x10000 + static_cast<uint32_t>(rng() % (0x110000 - 0x10000));
                break;
            }
        }
        uint8_t buf[4];
        size_t len = encode(cp, buf);
        if (len > n - i) {
            for (; i < n; i++)
                v[i] = 'a';
            break;
        }
        for (size_t k = 0; k < len; k++)
            v[i++] = buf[k];
    }
    return v;
}

void bm_valid(benchmark::State &state, ValidateFn fn, Text kind, int level)
{
    if (ws_cpu_simd_cap() < level) {
        state.SkipWithError("CPU lacks the instruction set");
        return;
    }
    const size_t n = static_cast<size_t>(state.range(0));
    const std::vector<uint8_t> text = make_text(kind, n);
    if (!fn(text.data(), n)) {
        state.SkipWithError("generated text rejected");
        return;
    }
    for (auto _ : state) {
        bool ok = fn(text.data(), n);
        benchmark::DoNotOptimize(ok);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
}

// The incremental validator as the frame parser uses it: the message arrives in 4 KiB reads,
// cutting characters at arbitrary points, with the dispatched SIMD path doing the bulk.
void bm_feed(benchmark::State &state, Text kind)
{
    const size_t n = static_cast<size_t>(state.range(0));
    const size_t chunk = 4096;
    const std::vector<uint8_t> text = make_text(kind, n);
    for (auto _ : state) {
        ws_utf8_state_t st;
        ws_utf8_init(&st);
        bool ok = true;
        for (size_t off = 0; off < n && ok; off += chunk)
            ok = ws_utf8_feed(&st, text.data() + off, n - off < chunk ? n - off : chunk);
        ok = ok && ws_utf8_complete(&st);
        if (!ok) {
            state.SkipWithError("generated text rejected");
            break;
        }
        benchmark::DoNotOptimize(ok);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n));
    state.SetLabel(ws_utf8_impl());
}

void sizes(benchmark::internal::Benchmark *b)
{
    for (int64_t n : {int64_t{64}, int64_t{1} << 10, int64_t{64} << 10, int64_t{1} << 20})
        b->Arg(n);
}

} // namespace

BENCHMARK_CAPTURE(bm_valid, ascii_baseline, ws_utf8_valid_baseline, Text::Ascii, WS_SIMD_SCALAR)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_valid, ascii_scalar, ws_utf8_valid_scalar, Text::Ascii, WS_SIMD_SCALAR)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_valid, ascii_avx2, ws_utf8_valid_avx2, Text::Ascii, WS_SIMD_AVX2)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_valid, ascii_avx512, ws_utf8_valid_avx512, Text::Ascii, WS_SIMD_AVX512)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_valid, mixed_baseline, ws_utf8_valid_baseline, Text::Mixed, WS_SIMD_SCALAR)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_valid, mixed_scalar, ws_utf8_valid_scalar, Text::Mixed, WS_SIMD_SCALAR)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_valid, mixed_avx2, ws_utf8_valid_avx2, Text::Mixed, WS_SIMD_AVX2)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_valid, mixed_avx512, ws_utf8_valid_avx512, Text::Mixed, WS_SIMD_AVX512)
    ->Apply(sizes);
BENCHMARK_CAPTURE(bm_feed, mixed_4k_chunks, Text::Mixed)->Arg(int64_t{1} << 20);
