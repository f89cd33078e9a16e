/* Provided buffer ring: registration by hand (liburing 2.3 has no io_uring_setup_buf_ring),
 * buffer chunks allocated with mmap so they go back to the kernel when freed, growth by
 * adding chunks to a ring that was registered with room for the maximum. */
#include "bufring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "uringws/common.h"

static uint32_t pow2_at_least(uint32_t v)
{
    uint32_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* Allocates `count` more buffers and hands them to the kernel. */
static int add_chunk(ws_bufring_t *b, uint32_t count)
{
    if (b->nchunks == WS_BUFRING_MAX_CHUNKS)
        return -ENOSPC;
    size_t bytes = (size_t)count * b->buf_size;
    void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return -ENOMEM;
    b->chunk[b->nchunks].base = base;
    b->chunk[b->nchunks].bytes = bytes;
    b->nchunks++;
    unsigned mask = io_uring_buf_ring_mask(b->entries);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t bid = b->nbufs + i;
        b->addr[bid] = (uint8_t *)base + (size_t)i * b->buf_size;
        io_uring_buf_ring_add(b->br, b->addr[bid], b->buf_size, (unsigned short)bid, mask, (int)i);
    }
    io_uring_buf_ring_advance(b->br, (int)count);
    b->nbufs += count;
    return 0;
}

int ws_bufring_init(ws_bufring_t *b, struct io_uring *ring, uint16_t bgid, uint32_t buf_size,
                    uint32_t nbufs, uint32_t max_bufs)
{
    int rc;
    memset(b, 0, sizeof(*b));
    if (buf_size == 0 || nbufs == 0 || max_bufs > WS_BUFRING_MAX_ENTRIES)
        return -EINVAL;
    if (max_bufs < nbufs)
        max_bufs = nbufs;
    b->bgid = bgid;
    b->buf_size = buf_size;
    b->max_bufs = max_bufs;
    b->entries = pow2_at_least(max_bufs);
    b->br_bytes = (size_t)b->entries * sizeof(struct io_uring_buf);
    /* The kernel wants the ring page aligned; mmap gives that. */
    void *mem = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    b->br = mem;
    b->addr = calloc(b->entries, sizeof(*b->addr));
    if (!b->addr) {
        rc = -ENOMEM;
        goto err;
    }
    io_uring_buf_ring_init(b->br);
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)b->br;
    reg.ring_entries = b->entries;
    reg.bgid = bgid;
    rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0)
        goto err;
    b->registered = true;
    rc = add_chunk(b, nbufs);
    if (rc < 0)
        goto err;
    return 0;
err:
    ws_bufring_free(b, ring);
    return rc;
}

int ws_bufring_grow(ws_bufring_t *b)
{
    if (b->nbufs >= b->max_bufs)
        return -ENOSPC;
    uint32_t more = b->nbufs;
    if (more > b->max_bufs - b->nbufs)
        more = b->max_bufs - b->nbufs;
    return add_chunk(b, more);
}

void ws_bufring_free(ws_bufring_t *b, struct io_uring *ring)
{
    if (b->registered && ring)
        io_uring_unregister_buf_ring(ring, b->bgid);
    b->registered = false;
    for (unsigned i = 0; i < b->nchunks; i++)
        munmap(b->chunk[i].base, b->chunk[i].bytes);
    b->nchunks = 0;
    free(b->addr);
    b->addr = NULL;
    if (b->br)
        munmap(b->br, b->br_bytes);
    b->br = NULL;
    b->nbufs = 0;
}
