/* Broadcast blocks: one server frame (header + payload) in one allocation, built once per
 * message and shared read-only by every recipient's send queue on every core. */
#ifndef URINGWS_BLOCK_H
#define URINGWS_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"

/* The C++ benchmark harness includes this header too; C++17 has no _Atomic, and
 * std::atomic<uint32_t> has the same size, alignment and lock-free representation. */
#ifdef __cplusplus
#include <atomic>
#define WS_ATOMIC(T) std::atomic<T>
extern "C" {
#else
#include <stdatomic.h>
#define WS_ATOMIC(T) _Atomic(T)
#endif

/* Ownership: ws_block_frame() returns a block holding one reference, owned by the caller
 * (the sender's core builds it, then hands that reference to the room's home core, which
 * numbers the message and fans it out). Every send-queue entry that points at the block
 * holds one reference; a core may take n at once with ws_block_ref(b, n). Each holder calls
 * ws_block_unref() exactly once when done (for a send: after the completion CQE of the send
 * that wrote its last byte; a zero-copy send would have to wait for its notification CQE,
 * which is why the server does not use one, see docs/benchmarks.md). The holder that drops the
 * count to zero frees the block. Nobody writes to data[] after ws_block_frame() returns, so cores
 * share it without locks; the count is the only shared, mutable field (atomic). */
typedef struct ws_block {
    WS_ATOMIC(uint32_t) refs;
    uint32_t len;       /* bytes of data[]: the whole frame */
    uint64_t seq;       /* room sequence number, set by the home core before sharing */
    uint8_t opcode;     /* the frame's opcode; 0 for a batch */
    uint8_t header_len; /* 0 for a batch */
    uint8_t data[];     /* header then payload; payload starts at data + header_len */
} ws_block_t;

/* Builds a final (FIN) server frame of `opcode` carrying payload[0..len). Returns NULL on
 * allocation failure or when len does not fit a block (over UINT32_MAX - 14). */
ws_block_t *ws_block_frame(uint8_t opcode, const uint8_t *payload, size_t len) WS_WARN_UNUSED;

/* A batch: several complete frames back to back in one block, gathered by one core during
 * one loop pass so that each local recipient queues them as one entry and gets them in one
 * send (see net/broadcast.c). ws_block_batch() returns an empty batch with room for cap bytes
 * holding one reference, or NULL on allocation failure. ws_block_append() copies n bytes
 * (whole frames) to the end, growing the allocation when needed; it may move the block, so
 * only the holder of its only reference may call it, before sharing it. Returns the block,
 * or NULL when it could not grow (the batch is then unchanged and still valid) or when the
 * result would exceed UINT32_MAX bytes. *cap tracks the allocation. */
ws_block_t *ws_block_batch(uint32_t cap) WS_WARN_UNUSED;
ws_block_t *ws_block_append(ws_block_t *batch, uint32_t *cap, const uint8_t *p,
                            uint32_t n) WS_WARN_UNUSED;

/* Takes n more references. Relaxed is enough: the caller already holds one, so the block
 * cannot be freed concurrently, and nothing is published by taking a reference. */
static inline void ws_block_ref(ws_block_t *b, uint32_t n)
{
#ifdef __cplusplus
    b->refs.fetch_add(n, std::memory_order_relaxed);
#else
    atomic_fetch_add_explicit(&b->refs, n, memory_order_relaxed);
#endif
}

/* Drops one reference; frees the block when it was the last. */
void ws_block_unref(ws_block_t *b);
/* Drops n references at once (a core done with n sends of the same block). */
void ws_block_unref_n(ws_block_t *b, uint32_t n);

#ifdef __cplusplus
}
#endif

#endif
