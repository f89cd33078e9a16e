/* Per-connection send queue.
 *
 * A connection has at most ONE send in flight so its bytes can never reorder. Frames that
 * arrive meanwhile are queued here; when the send completes, everything queued is gathered
 * into one sendmsg (iovec array). A short send leaves the head entry partly sent and the
 * rest is resubmitted. Entries are broadcast blocks (through a per-core ws_bref_t), owned
 * heap buffers (pongs, close frames, HTTP responses) or static bytes. No I/O happens here. */
#ifndef URINGWS_NET_SENDQ_H
#define URINGWS_NET_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bref.h"
#include "uringws/block.h"
#include "uringws/common.h"

enum ws_sq_kind {
    WS_SQ_BREF = 1, /* owner is a ws_bref_t; base points into its block */
    WS_SQ_OWNED,    /* owner is a malloc'd buffer freed on release (base points into it) */
    WS_SQ_STATIC,   /* bytes that outlive the server; nothing to release */
};

typedef struct ws_sq_entry {
    const uint8_t *base;
    void *owner;
    uint32_t len;
    uint8_t kind;
} ws_sq_entry_t;

typedef struct ws_sendq {
    ws_sq_entry_t *ring; /* circular, cap a power of two (0 = not allocated) */
    uint32_t cap;
    uint32_t head;     /* oldest entry */
    uint32_t count;    /* entries queued, in-flight ones included */
    uint32_t head_off; /* bytes of the head entry already sent (short send) */
    uint32_t inflight; /* entries from head covered by the send in flight (0 = none) */
    uint32_t frames;   /* frames queued: an entry of a batch bref counts its frames, any
                          other entry one */
    uint64_t bytes;    /* bytes still to send, in-flight ones included */
    /* Progress since the queue was set up, for the slow-consumer judgment (net/conn_send.c):
     * bytes that sends took and frames of the entries they finished. Drops do not count. */
    uint64_t sent_bytes;
    uint64_t sent_frames;
} ws_sendq_t;

void ws_sendq_init(ws_sendq_t *q);

static inline bool ws_sendq_empty(const ws_sendq_t *q)
{
    return q->count == 0;
}

/* True when entries wait that no send in flight covers. */
static inline bool ws_sendq_has_unsent(const ws_sendq_t *q)
{
    return q->count > q->inflight;
}

/* Appends an entry. Returns 0 or -ENOMEM (the queue could not grow; the caller keeps
 * ownership of `owner`). len may be 0 only for kind WS_SQ_STATIC (then nothing is queued). */
int ws_sendq_push(ws_sendq_t *q, uint8_t kind, const void *base, uint32_t len,
                  void *owner) WS_WARN_UNUSED;

/* Fills iov with the queued bytes from the first unsent one: at most max_iov entries and,
 * past the first, at most max_bytes in total. Marks them in flight and returns how many
 * iovecs were filled (0 when nothing waits or a send is already in flight); *bytes gets
 * their total. */
unsigned ws_sendq_gather(ws_sendq_t *q, struct iovec *iov, unsigned max_iov, size_t max_bytes,
                         size_t *bytes);

/* The send in flight completed with `sent` bytes (<= what was gathered; 0 for an error):
 * releases the entries fully sent, keeps a partly sent head, clears the in-flight mark.
 * Returns the number of entries released. */
unsigned ws_sendq_complete(ws_sendq_t *q, size_t sent, ws_bref_pool_t *pool);

/* Releases every entry that no send in flight covers, except a partly sent head (its tail
 * must still go out to keep the stream's framing intact). For slow-consumer closes. */
void ws_sendq_drop_unsent(ws_sendq_t *q, ws_bref_pool_t *pool);

/* Drops the oldest broadcast entries (WS_SQ_BREF) that no send covers, oldest first, until
 * at most max_bytes and max_frames remain (or no such entry is left). A partly sent head is
 * kept (the stream's framing needs its tail), and so are owned and static entries (control
 * frames, responses); the order of what stays is unchanged. Returns the frames dropped and
 * adds their bytes to *dropped_bytes. For --slow-policy drop-oldest. */
unsigned ws_sendq_drop_oldest(ws_sendq_t *q, uint64_t max_bytes, uint32_t max_frames,
                              ws_bref_pool_t *pool, uint64_t *dropped_bytes);

/* Copies each run of two or more consecutive iovecs of at most `small` bytes into buf (up to
 * cap bytes in all) and replaces the run by one iovec over the copy, so that a batch of small
 * frames reaches the kernel as one contiguous piece instead of many tiny segments (each of
 * which costs the kernel a separate copy step). The byte sequence is unchanged; once buf is
 * full the remaining iovecs are left as they are. Returns the new iovec count (<= n). buf
 * must stay untouched until the send that uses it completes. */
unsigned ws_sendq_coalesce(struct iovec *iov, unsigned n, uint8_t *buf, size_t cap, size_t small);

/* Releases every entry and frees the ring. Only when no send is in flight. */
void ws_sendq_clear(ws_sendq_t *q, ws_bref_pool_t *pool);

#endif
