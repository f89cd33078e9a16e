/* Cross-core hand-off: one single-producer single-consumer lock-free queue of events per
 * (source core, destination core) pair, and the wakeup protocol that lets a producer send at
 * most one IORING_OP_MSG_RING per destination per loop iteration (and none while the
 * destination has not yet drained the previous one). No io_uring here: the loop turns
 * "needs a wakeup" into the MSG_RING SQE. */
#ifndef URINGWS_NET_XCORE_H
#define URINGWS_NET_XCORE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "uringws/block.h"

struct ws_room;

enum ws_xev_type {
    WS_XEV_JOIN = 1,     /* src got its first member of `room` (src's room struct) */
    WS_XEV_LEAVE,        /* src lost its last member of `room`; home answers LEAVE_ACK */
    WS_XEV_LEAVE_ACK,    /* home processed LEAVE: it will never name `room` (ours) again */
    WS_XEV_PUBLISH,      /* a message for `room` (src's struct) built into `block`, to home */
    WS_XEV_FANOUT,       /* home to member core: `block` (seq set) for `room` (the dst's struct) */
    WS_XEV_PUBLISH_NAME, /* a message for the room named by `room`, a memberless struct that
                            src made for this event only: home owns it and frees it */
    WS_XEV_ROOM_CLOSE,   /* home to member core: close the members of `room` (the dst's
                            struct) with 1012, the backplane may have lost messages */
    WS_XEV_DISCONNECT,   /* close every connection of a token subject: `block` holds the
                            order (net/disconnect.c); `room` is NULL */
};

/* The event carries one block reference when it has a block. `room` always points to a room
 * struct owned by a core that keeps it alive while the event can be in flight (room.c). */
typedef struct ws_xev {
    uint8_t type;
    uint16_t src;
    struct ws_room *room;
    ws_block_t *block;
} ws_xev_t;

#define WS_XSEG_EVENTS 254

/* Queue segment: the producer fills ev[] and publishes with `count` (release); when full it
 * links a new segment through `next`. The consumer frees (or recycles) drained segments. */
typedef struct ws_xseg {
    _Atomic(struct ws_xseg *) next;
    _Atomic uint32_t count;
    ws_xev_t ev[WS_XSEG_EVENTS];
} ws_xseg_t;

typedef struct ws_xq {
    /* Producer's cache line. */
    alignas(64) ws_xseg_t *tail;
    uint32_t tail_n;
    /* Consumer's cache line. */
    alignas(64) ws_xseg_t *head;
    uint32_t head_i;
    /* Shared: the first segment (set once), the recycled segment, the wakeup flag. */
    alignas(64) _Atomic(ws_xseg_t *) first;
    _Atomic(ws_xseg_t *) spare;
    _Atomic int wake_pending;
} ws_xq_t;

void ws_xcore_q_init(ws_xq_t *q);
/* Frees every segment. Events still queued are lost: drain with ws_xcore_q_pop first (after the
 * threads are joined, when their blocks must be unreferenced). */
void ws_xcore_q_free(ws_xq_t *q);

/* Producer. Never fails: a segment that cannot be allocated aborts the process with a
 * message, because the membership protocol cannot lose an event and the queue only grows
 * when the whole machine is out of memory (per-client memory is bounded elsewhere). */
void ws_xcore_q_push(ws_xq_t *q, const ws_xev_t *ev);
/* Producer, after its pushes of this loop iteration: true when the caller must wake the
 * consumer (one MSG_RING), false when a wakeup is already pending that the consumer has
 * not acted on yet (it will see these events when it does). */
bool ws_xcore_q_need_wake(ws_xq_t *q);

/* Consumer, before draining: re-enables wakeups. Any event pushed after this call either is
 * seen by the drain that follows or triggers a new wakeup (store-buffer argument with a full
 * fence on both sides). */
void ws_xcore_q_rearm(ws_xq_t *q);
/* Consumer: pops one event, false when empty. */
bool ws_xcore_q_pop(ws_xq_t *q, ws_xev_t *ev);

/* All pairs of n cores; q(src, dst) for src != dst. */
typedef struct ws_xcore {
    unsigned n;
    ws_xq_t *q;
} ws_xcore_t;

int ws_xcore_init(ws_xcore_t *x, unsigned n);
void ws_xcore_free(ws_xcore_t *x);

static inline ws_xq_t *ws_xcore_q(ws_xcore_t *x, unsigned src, unsigned dst)
{
    return &x->q[(size_t)src * x->n + dst];
}

#endif
