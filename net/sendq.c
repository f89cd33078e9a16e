/* Send queue bookkeeping: a growable ring of entries, gathering into iovecs, and partial-send
 * accounting. */
#include "sendq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SQ_INITIAL_CAP 8
#define SQ_SHRINK_CAP  64 /* an emptied ring larger than this is freed */

void ws_sendq_init(ws_sendq_t *q)
{
    memset(q, 0, sizeof(*q));
}

static uint32_t entry_frames(const ws_sq_entry_t *e)
{
    return e->kind == WS_SQ_BREF ? ((const ws_bref_t *)e->owner)->frames : 1;
}

/* Drops e's hold on its bytes and takes its frames off q's count. */
static void release(ws_sendq_t *q, ws_sq_entry_t *e, ws_bref_pool_t *pool)
{
    q->frames -= entry_frames(e);
    switch (e->kind) {
    case WS_SQ_BREF:
        ws_bref_put(pool, e->owner);
        break;
    case WS_SQ_OWNED:
        free(e->owner);
        break;
    default:
        break;
    }
    e->owner = NULL;
}

static int grow(ws_sendq_t *q)
{
    uint32_t ncap = q->cap ? q->cap * 2 : SQ_INITIAL_CAP;
    if (ncap < q->cap)
        return -ENOMEM;
    ws_sq_entry_t *n = malloc((size_t)ncap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    /* Unroll the circle so the head lands at 0. */
    for (uint32_t i = 0; i < q->count; i++)
        n[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

int ws_sendq_push(ws_sendq_t *q, uint8_t kind, const void *base, uint32_t len, void *owner)
{
    if (len == 0 && kind == WS_SQ_STATIC)
        return 0;
    if (q->count == q->cap) {
        int rc = grow(q);
        if (rc < 0)
            return rc;
    }
    ws_sq_entry_t *e = &q->ring[(q->head + q->count) & (q->cap - 1)];
    e->base = base;
    e->owner = owner;
    e->len = len;
    e->kind = kind;
    q->frames += entry_frames(e);
    q->count++;
    q->bytes += len;
    return 0;
}

unsigned ws_sendq_gather(ws_sendq_t *q, struct iovec *iov, unsigned max_iov, size_t max_bytes,
                         size_t *bytes)
{
    *bytes = 0;
    if (q->inflight || q->count == 0 || max_iov == 0)
        return 0;
    unsigned n = 0;
    size_t total = 0;
    while (n < max_iov && n < q->count) {
        ws_sq_entry_t *e = &q->ring[(q->head + n) & (q->cap - 1)];
        uint32_t off = n == 0 ? q->head_off : 0;
        size_t len = e->len - off;
        /* The first entry always goes, however large; later ones only within max_bytes. */
        if (n > 0 && total + len > max_bytes)
            break;
        iov[n].iov_base = (void *)(e->base + off);
        iov[n].iov_len = len;
        total += len;
        n++;
    }
    q->inflight = n;
    *bytes = total;
    return n;
}

unsigned ws_sendq_complete(ws_sendq_t *q, size_t sent, ws_bref_pool_t *pool)
{
    unsigned released = 0;
    uint64_t bytes = q->bytes;
    uint32_t frames = q->frames;
    while (q->inflight) {
        ws_sq_entry_t *e = &q->ring[q->head];
        size_t left = e->len - q->head_off;
        if (sent < left) {
            q->head_off += (uint32_t)sent;
            q->bytes -= sent;
            break;
        }
        sent -= left;
        q->bytes -= left;
        release(q, e, pool);
        q->head = (q->head + 1) & (q->cap - 1);
        q->head_off = 0;
        q->count--;
        q->inflight--;
        released++;
    }
    q->inflight = 0;
    q->sent_bytes += bytes - q->bytes;
    q->sent_frames += frames - q->frames;
    if (q->count == 0) {
        q->head = 0;
        if (q->cap > SQ_SHRINK_CAP) {
            free(q->ring);
            q->ring = NULL;
            q->cap = 0;
        }
    }
    return released;
}

/* Entries from the head that must stay: those in flight, or a partly sent head. */
static uint32_t started(const ws_sendq_t *q)
{
    if (q->inflight == 0 && q->head_off > 0)
        return 1;
    return q->inflight;
}

unsigned ws_sendq_drop_oldest(ws_sendq_t *q, uint64_t max_bytes, uint32_t max_frames,
                              ws_bref_pool_t *pool, uint64_t *dropped_bytes)
{
    uint32_t n = q->count, w = started(q), dropped = 0;
    uint32_t mask = q->cap - 1;
    for (uint32_t r = w; r < n; r++) {
        ws_sq_entry_t *e = &q->ring[(q->head + r) & mask];
        if (e->kind == WS_SQ_BREF && (q->bytes > max_bytes || q->frames > max_frames)) {
            q->bytes -= e->len;
            *dropped_bytes += e->len;
            dropped += entry_frames(e);
            release(q, e, pool);
            continue;
        }
        if (w != r)
            q->ring[(q->head + w) & mask] = *e;
        w++;
    }
    q->count = w;
    return dropped;
}

void ws_sendq_drop_unsent(ws_sendq_t *q, ws_bref_pool_t *pool)
{
    uint32_t keep = started(q);
    while (q->count > keep) {
        ws_sq_entry_t *e = &q->ring[(q->head + q->count - 1) & (q->cap - 1)];
        q->bytes -= e->len;
        release(q, e, pool);
        q->count--;
    }
}

void ws_sendq_clear(ws_sendq_t *q, ws_bref_pool_t *pool)
{
    while (q->count) {
        release(q, &q->ring[q->head], pool);
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
    free(q->ring);
    ws_sendq_init(q);
}

unsigned ws_sendq_coalesce(struct iovec *iov, unsigned n, uint8_t *buf, size_t cap, size_t small)
{
    unsigned out = 0, i = 0;
    size_t used = 0;
    while (i < n) {
        /* The run of small iovecs starting at i that still fits in buf. */
        unsigned j = i;
        size_t run = 0;
        while (j < n && iov[j].iov_len <= small && used + run + iov[j].iov_len <= cap)
            run += iov[j++].iov_len;
        if (j - i < 2) {
            iov[out++] = iov[i++];
            continue;
        }
        uint8_t *dst = buf + used;
        for (unsigned k = i; k < j; k++) {
            memcpy(buf + used, iov[k].iov_base, iov[k].iov_len);
            used += iov[k].iov_len;
        }
        iov[out].iov_base = dst;
        iov[out].iov_len = run;
        out++;
        i = j;
    }
    return out;
}
