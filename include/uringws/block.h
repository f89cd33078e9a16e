/* Broadcast blocks: one server frame (header + payload) in one allocation, built once per
 * message and shared read-only by every recipient's send queue on every core. */
#ifndef URINGWS_BLOCK_H
#define URINGWS_BLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"

/* Ownership: ws_block_frame() returns a block holding one reference, owned by the caller
 * (the room's home core while it fans the message out). Every send-queue entry that points
 * at the block holds one reference; a core may take n at once with ws_block_ref(b, n). Each
 * holder calls ws_block_unref() exactly once when done (for a send: after its completion
 * CQE, and for SEND_ZC after the notification CQE). The holder that drops the count to zero
 * frees the block. Nobody writes to data[] after ws_block_frame() returns, so cores share
 * it without locks; the count is the only shared, mutable field (atomic). */
typedef struct ws_block {
    _Atomic uint32_t refs;
    uint32_t len;  /* bytes of data[]: the whole frame */
    uint64_t seq;  /* room sequence number, set by the home core before sharing */
    uint8_t opcode;
    uint8_t header_len;
    uint8_t data[]; /* header then payload; payload starts at data + header_len */
} ws_block_t;

/* Builds a final (FIN) server frame of `opcode` carrying payload[0..len). Returns NULL on
 * allocation failure or when len does not fit a block (over UINT32_MAX - 14). */
ws_block_t *ws_block_frame(uint8_t opcode, const uint8_t *payload, size_t len) WS_WARN_UNUSED;

static inline void ws_block_ref(ws_block_t *b, uint32_t n)
{
    atomic_fetch_add_explicit(&b->refs, n, memory_order_relaxed);
}

/* Drops one reference; frees the block when it was the last. */
void ws_block_unref(ws_block_t *b);
/* Drops n references at once (a core done with n sends of the same block). */
void ws_block_unref_n(ws_block_t *b, uint32_t n);

#endif
