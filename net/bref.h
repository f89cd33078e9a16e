/* Per-core references to broadcast blocks: one atomic block reference per core per block,
 * shared by that core's send-queue entries without atomics. */
#ifndef URINGWS_NET_BREF_H
#define URINGWS_NET_BREF_H

#include <stddef.h>
#include <stdint.h>

#include "uringws/block.h"
#include "uringws/common.h"

/* One core's share of a broadcast block. The core that receives a block for m local
 * recipients holds exactly one block reference (taken by the room's home core) and creates
 * one ws_bref_t with refs = m; each send-queue entry holds one of those m. The entry's
 * release (send done, or queue dropped) decrements refs without atomics; the last one drops
 * the core's block reference (one atomic per core per block, not per recipient) and returns
 * the bref to its core's pool. Only the owning core touches a bref. */
typedef struct ws_bref {
    ws_block_t *block;
    uint32_t refs;
    uint32_t frames; /* frames in the block: 1, or a batch's count (ws_block_batch) */
    struct ws_bref *next_free;
} ws_bref_t;

typedef struct ws_bref_pool {
    ws_bref_t *free;
    size_t nfree;
    size_t live; /* brefs handed out and not yet returned (leak check at exit) */
} ws_bref_pool_t;

void ws_bref_pool_init(ws_bref_pool_t *p);
/* Frees the pooled (unused) brefs. Live ones are the send queues' to release first. */
void ws_bref_pool_free(ws_bref_pool_t *p);
/* A bref holding `refs` entries' worth of the caller's one block reference, or NULL on
 * allocation failure (the caller still owns its block reference). frames starts at 1; the
 * caller sets it for a batch. */
ws_bref_t *ws_bref_new(ws_bref_pool_t *p, ws_block_t *b, uint32_t refs) WS_WARN_UNUSED;
/* Drops one entry's reference; the last drops the block reference and recycles the bref. */
void ws_bref_put(ws_bref_pool_t *p, ws_bref_t *r);

#endif
