/* Broadcast blocks: build one unmasked server frame per message in a single allocation and
 * free it when the last reference is dropped. The reference rules are at ws_block_t in
 * uringws/block.h; this file never touches data[] after building it. */
#include "uringws/block.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/frame.h"

ws_block_t *ws_block_frame(uint8_t opcode, const uint8_t *payload, size_t len)
{
    if (len > UINT32_MAX - WS_FRAME_HEADER_MAX)
        return NULL;
    size_t hl = ws_frame_header_size(len);
    ws_block_t *b = malloc(sizeof(*b) + hl + len);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = (uint32_t)(hl + len);
    b->seq = 0;
    b->opcode = opcode;
    b->header_len = (uint8_t)ws_frame_header_write(b->data, opcode, true, len);
    if (len)
        memcpy(b->data + hl, payload, len);
    return b;
}

ws_block_t *ws_block_batch(uint32_t cap)
{
    ws_block_t *b = malloc(sizeof(*b) + cap);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = 0;
    b->seq = 0;
    b->opcode = 0;
    b->header_len = 0;
    return b;
}

ws_block_t *ws_block_append(ws_block_t *batch, uint32_t *cap, const uint8_t *p, uint32_t n)
{
    assert(atomic_load_explicit(&batch->refs, memory_order_relaxed) == 1);
    if (n > UINT32_MAX - batch->len)
        return NULL;
    uint32_t need = batch->len + n;
    if (need > *cap) {
        uint64_t ncap = (uint64_t)*cap * 2;
        if (ncap < need)
            ncap = need;
        if (ncap > UINT32_MAX)
            ncap = UINT32_MAX;
        ws_block_t *nb = realloc(batch, sizeof(*nb) + ncap);
        if (nb == NULL)
            return NULL;
        batch = nb;
        *cap = (uint32_t)ncap;
    }
    memcpy(batch->data + batch->len, p, n);
    batch->len = need;
    return batch;
}

/* The decrement is acq_rel: release so this holder's reads of data[] (its send) happen
 * before the free on whichever core frees, and acquire so the freeing core sees every other
 * holder's release. A release decrement plus an acquire fence on zero would do the same, but
 * ThreadSanitizer does not model stand-alone fences. */
void ws_block_unref_n(ws_block_t *b, uint32_t n)
{
    if (n == 0)
        return;
    uint32_t prev = atomic_fetch_sub_explicit(&b->refs, n, memory_order_acq_rel);
    assert(prev >= n && "ws_block_unref_n: more references dropped than held");
    if (prev == n)
        free(b);
}

void ws_block_unref(ws_block_t *b)
{
    ws_block_unref_n(b, 1);
}
