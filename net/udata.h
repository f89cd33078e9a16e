/* io_uring user_data encoding: every SQE the engine submits carries (kind, connection index,
 * generation) packed into 64 bits, so a completion names its operation and its connection
 * without a pointer, and a completion that outlived its connection (the slot was freed and
 * reused, bumping the generation) is detected instead of being applied to the new owner. */
#ifndef URINGWS_NET_UDATA_H
#define URINGWS_NET_UDATA_H

#include <stdbool.h>
#include <stdint.h>

/* What an SQE was for; the worker's handler table (net/worker.h) maps each kind to the code
 * that owns its completions. 0 is never used so a zeroed user_data cannot pass for a real one. */
enum ws_ud_kind {
    WS_UD_NONE = 0,
    WS_UD_ACCEPT,   /* multishot accept on the core's listener */
    WS_UD_RECV,     /* (multishot) recv of a connection, provided buffers */
    WS_UD_SEND,     /* the one send/sendmsg in flight on a connection */
    WS_UD_SHUTDOWN, /* IORING_OP_SHUTDOWN(SHUT_WR) on a direct descriptor */
    WS_UD_CANCEL,   /* ASYNC_CANCEL of a connection's recv or send; result ignored */
    WS_UD_CLOSE,    /* IORING_OP_CLOSE of a direct descriptor; connection already freed */
    WS_UD_TICK,     /* the core's periodic IORING_OP_TIMEOUT */
    WS_UD_TICK_DEL, /* TIMEOUT_REMOVE of the tick at exit */
    WS_UD_XWAKE,    /* MSG_RING from another core: cross-core queues have events */
    WS_UD_STOP,     /* read on the core's stop eventfd completed: shut down */
    WS_UD_MSG_SENT, /* our own MSG_RING SQE (only completes on error: CQE_SKIP_SUCCESS) */
    WS_UD_FIXED_MAX,
    /* Kinds from WS_UD_FIXED_MAX up are handed out at run time to other owners of I/O on a
     * worker's ring (ws_worker_handler_add, net/worker.h): idx and gen are theirs to use. */
    WS_UD_KIND_MAX = 64,
};

#define WS_UD_IDX_BITS  32
#define WS_UD_GEN_BITS  24
#define WS_UD_KIND_BITS 8
#define WS_UD_GEN_MASK  ((1u << WS_UD_GEN_BITS) - 1)

_Static_assert(WS_UD_IDX_BITS + WS_UD_GEN_BITS + WS_UD_KIND_BITS == 64, "user_data is 64 bits");
_Static_assert(WS_UD_KIND_MAX <= (1u << WS_UD_KIND_BITS), "kind must fit its field");

static inline uint64_t ws_ud_make(unsigned kind, uint32_t idx, uint32_t gen)
{
    return ((uint64_t)kind << (WS_UD_IDX_BITS + WS_UD_GEN_BITS)) |
           ((uint64_t)(gen & WS_UD_GEN_MASK) << WS_UD_IDX_BITS) | (uint64_t)idx;
}

static inline unsigned ws_ud_kind(uint64_t ud)
{
    return (unsigned)(ud >> (WS_UD_IDX_BITS + WS_UD_GEN_BITS));
}

static inline uint32_t ws_ud_idx(uint64_t ud)
{
    return (uint32_t)ud;
}

static inline uint32_t ws_ud_gen(uint64_t ud)
{
    return (uint32_t)(ud >> WS_UD_IDX_BITS) & WS_UD_GEN_MASK;
}

/* True when a completion's generation matches the slot's current one. */
static inline bool ws_ud_gen_eq(uint64_t ud, uint32_t slot_gen)
{
    return ws_ud_gen(ud) == (slot_gen & WS_UD_GEN_MASK);
}

#endif
