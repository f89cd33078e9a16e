// Microbenchmark of the opening handshake as the server runs it for each new connection:
// ws_http_parse_request + ws_handshake_check + ws_handshake_response on the request a
// Chromium browser sends, and each step alone. The harness is C++ (Google Benchmark); the
// code measured is the C library.
#include <benchmark/benchmark.h>

#include <cstring>

#include "uringws/handshake.h"
#include "uringws/http.h"

namespace
{

// What Chromium 120 sends for new WebSocket("ws://127.0.0.1:8080/lobby"): 12 headers, 486
// bytes, Origin and the permessage-deflate offer included.
const char kChromium[] =
    "GET /lobby HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "Connection: Upgrade\r\n"
    "Pragma: no-cache\r\n"
    "Cache-Control: no-cache\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Upgrade: websocket\r\n"
    "Origin: http://127.0.0.1:8080\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "\r\n";

const uint8_t *req_bytes()
{
    return reinterpret_cast<const uint8_t *>(kChromium);
}

void BM_HandshakeFull(benchmark::State &state)
{
    ws_http_request_t req;
    ws_handshake_t hs;
    char out[256];
    for (auto _ : state) {
        int n = ws_http_parse_request(req_bytes(), sizeof kChromium - 1, 0, nullptr, &req);
        int st = ws_handshake_check(&req, &hs);
        size_t len = ws_handshake_response(&hs, out, sizeof out);
        if (n != 0 || st != 0 || hs.status != 101 || len == 0) {
            state.SkipWithError("handshake failed");
            break;
        }
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(sizeof kChromium - 1));
}
BENCHMARK(BM_HandshakeFull);

void BM_Parse(benchmark::State &state)
{
    ws_http_request_t req;
    for (auto _ : state) {
        int n = ws_http_parse_request(req_bytes(), sizeof kChromium - 1, 0, nullptr, &req);
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(sizeof kChromium - 1));
}
BENCHMARK(BM_Parse);

void BM_Check(benchmark::State &state)
{
    ws_http_request_t req;
    ws_handshake_t hs;
    if (ws_http_parse_request(req_bytes(), sizeof kChromium - 1, 0, nullptr, &req) != 0) {
        state.SkipWithError("parse failed");
        return;
    }
    for (auto _ : state) {
        int st = ws_handshake_check(&req, &hs);
        benchmark::DoNotOptimize(st);
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_Check);

// The SHA-1 + base64 part of the check on its own.
void BM_Accept(benchmark::State &state)
{
    char out[29];
    const ws_slice_t key = ws_slice("x3JJHMbDL1EzLkh9GBhXDw==", 24);
    for (auto _ : state) {
        ws_handshake_accept(key, out);
        benchmark::DoNotOptimize(out);
        benchmark::ClobberMemory();
    }
}
BENCHMARK(BM_Accept);

// The resume path: a head arriving in 16-byte pieces, as a slow client sends it.
void BM_ParseTrickle16(benchmark::State &state)
{
    ws_http_request_t req;
    const size_t len = sizeof kChromium - 1;
    for (auto _ : state) {
        int n = WS_INCOMPLETE;
        size_t prev = 0;
        while (n == WS_INCOMPLETE) {
            size_t k = prev + 16 < len ? prev + 16 : len;
            n = ws_http_parse_request(req_bytes(), k, prev, nullptr, &req);
            prev = k;
        }
        benchmark::DoNotOptimize(n);
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}
BENCHMARK(BM_ParseTrickle16);

} // namespace
