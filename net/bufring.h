/* Provided-buffer ring for one core's receives. The ring is registered with a fixed number
 * of entries (the maximum buffer count) but starts with fewer buffers; on ENOBUFS the core
 * calls ws_bufring_grow to add more (doubling) without re-registering. Buffers are returned
 * with ws_bufring_recycle as soon as the parser is done with them. Owned by one core. */
#ifndef URINGWS_NET_BUFRING_H
#define URINGWS_NET_BUFRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compat.h"
#include "uringws/common.h"

#define WS_BUFRING_MAX_CHUNKS  16
#define WS_BUFRING_MAX_ENTRIES 32768 /* kernel limit on buffer ring entries */

typedef struct ws_bufring {
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    uint32_t entries; /* ring entries, a power of two >= max_bufs */
    uint32_t buf_size;
    uint32_t nbufs;    /* buffers allocated and handed to the ring so far */
    uint32_t max_bufs; /* growth stops here */
    uint16_t bgid;
    bool registered;
    uint8_t **addr; /* bid -> buffer */
    unsigned nchunks;
    struct {
        uint8_t *base;
        size_t bytes;
    } chunk[WS_BUFRING_MAX_CHUNKS];
} ws_bufring_t;

/* Allocates nbufs buffers of buf_size bytes and a ring of entries for max_bufs, registers
 * it as buffer group bgid on `ring` and hands all buffers to the kernel. Returns 0 or
 * -errno (-EINVAL from the kernel means no buffer rings: kernel < 5.19). On error nothing
 * is left allocated or registered. */
int ws_bufring_init(ws_bufring_t *b, struct io_uring *ring, uint16_t bgid, uint32_t buf_size,
                    uint32_t nbufs, uint32_t max_bufs) WS_WARN_UNUSED;

/* Doubles the buffer count (up to max_bufs). Returns 0, -ENOSPC at the maximum, -ENOMEM. */
int ws_bufring_grow(ws_bufring_t *b) WS_WARN_UNUSED;

static inline uint8_t *ws_bufring_addr(const ws_bufring_t *b, uint16_t bid)
{
    return b->addr[bid];
}

/* True when bid names a buffer of this ring (a completion from a confused kernel or a
 * corrupted flag must not index past the table). */
static inline bool ws_bufring_valid(const ws_bufring_t *b, uint32_t bid)
{
    return bid < b->nbufs;
}

/* Gives buffer bid back to the kernel. */
static inline void ws_bufring_recycle(ws_bufring_t *b, uint16_t bid)
{
    io_uring_buf_ring_add(b->br, b->addr[bid], b->buf_size, bid, io_uring_buf_ring_mask(b->entries),
                          0);
    io_uring_buf_ring_advance(b->br, 1);
}

/* Unregisters (when ring is not NULL and the ring is still alive) and frees everything. */
void ws_bufring_free(ws_bufring_t *b, struct io_uring *ring);

#endif
