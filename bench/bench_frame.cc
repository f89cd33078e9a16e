// Microbenchmark for the receive and send paths of one message: ws_parser_feed on a small
// masked text frame (header, unmask, UTF-8 check, callback) and on a 64 KiB binary frame,
// and ws_block_frame + ws_block_unref for a 128-byte broadcast.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "uringws/block.h"
#include "uringws/frame.h"
#include "uringws/mask.h"
#include "uringws/parser.h"

namespace
{

// Every key byte is below 0x80, and so is every payload byte: the parser unmasks in place,
// so the same buffer alternates between masked and plain on successive iterations, and
// both forms are ASCII, hence valid UTF-8. Each iteration is thus a complete, real parse
// of a valid frame without re-copying the input.
const uint8_t kKey[4] = {0x12, 0x34, 0x56, 0x78};

int OnMessage(void *ud, uint8_t, const uint8_t *, size_t len)
{
    *static_cast<size_t *>(ud) += len;
    return 0;
}

std::vector<uint8_t> MaskedFrame(uint8_t opcode, size_t len)
{
    std::vector<uint8_t> f(WS_FRAME_HEADER_MAX + len);
    size_t hl = ws_frame_header_write_masked(f.data(), opcode, true, len, kKey);
    for (size_t i = 0; i < len; i++)
        f[hl + i] = static_cast<uint8_t>('a' + i % 26);
    ws_mask(f.data() + hl, len, kKey, 0);
    f.resize(hl + len);
    return f;
}

void BM_parse(benchmark::State &state, uint8_t opcode)
{
    const size_t len = static_cast<size_t>(state.range(0));
    std::vector<uint8_t> frame = MaskedFrame(opcode, len);
    ws_parser_t ps;
    ws_parser_init(&ps, nullptr);
    ws_parser_callbacks_t cb = {OnMessage, nullptr, nullptr};
    size_t delivered = 0;
    for (auto _ : state) {
        size_t used;
        int rc = ws_parser_feed(&ps, frame.data(), frame.size(), &used, &cb, &delivered);
        if (rc != 0) {
            state.SkipWithError("parser refused the frame");
            break;
        }
    }
    if (delivered != len * state.iterations())
        state.SkipWithError("wrong number of payload bytes delivered");
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(frame.size()));
    ws_parser_free(&ps);
}

void BM_block_frame(benchmark::State &state)
{
    const size_t len = static_cast<size_t>(state.range(0));
    std::vector<uint8_t> payload(len, 'x');
    for (auto _ : state) {
        ws_block_t *b = ws_block_frame(WS_OP_TEXT, payload.data(), len);
        if (b == nullptr) {
            state.SkipWithError("allocation failed");
            break;
        }
        uint8_t *frame = b->data;
        benchmark::DoNotOptimize(frame);
        ws_block_unref(b);
    }
}

} // namespace

BENCHMARK_CAPTURE(BM_parse, text, static_cast<uint8_t>(WS_OP_TEXT))->Arg(20)->Arg(128);
BENCHMARK_CAPTURE(BM_parse, binary, static_cast<uint8_t>(WS_OP_BINARY))->Arg(128)->Arg(64 << 10);
BENCHMARK(BM_block_frame)->Arg(128);
