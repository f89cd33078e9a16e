/* Rooms as one core sees them, and the map from room name to room on that core.
 *
 * A room has a home core (hash(name) % ncores) that orders its messages. Every core with
 * members of the room keeps its own ws_room_t holding its local members; the home core's
 * ws_room_t also holds the home part: the sequence counter and, per core, the pointer to
 * that core's ws_room_t for the room (NULL when that core has no members). This file is the
 * data structure only; the membership protocol and message routing are in broadcast.c. */
#ifndef URINGWS_NET_ROOM_H
#define URINGWS_NET_ROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "uringws/block.h"
#include "uringws/common.h"
#include "uringws/handshake.h"

/* Lifetime: created by its core on the first local join (or, on the home core, on the first
 * JOIN from another core); freed by its core once ws_room_unused() holds. A non-home core
 * keeps its struct alive while the home core may still name it in a FANOUT or LEAVE_ACK,
 * i.e. until every LEAVE it sent has been acknowledged; the home core in turn reads another
 * core's struct (name only, immutable) only between that core's JOIN and LEAVE. */
typedef struct ws_room {
    struct ws_room *hnext; /* hash chain */
    uint64_t hash;
    uint16_t home;
    uint8_t name_len;
    char name[WS_ROOM_MAX + 1]; /* immutable after creation */
    /* Local part. */
    ws_dlink_t *members; /* connections of this core in the room */
    uint32_t nmembers;
    bool registered;         /* non-home: JOIN sent, no LEAVE since */
    uint32_t leaves_pending; /* non-home: LEAVEs not yet acknowledged */
    /* This loop pass's messages for the local members, delivered together at the end of
     * the pass (broadcast.c): NULL, one message's frame block, or a batch of several
     * (ws_block_batch, batch_cap bytes allocated; 0 while it is a single frame block). The
     * room holds its one reference. Linked on the core's `batched` list while non-NULL. */
    ws_block_t *batch;
    uint32_t batch_frames;
    uint32_t batch_cap;
    ws_dlink_t batch_link;
    /* Home part (this core is the home). */
    uint64_t seq;          /* last sequence number assigned */
    uint32_t member_cores; /* non-NULL entries of peer[] */
    struct ws_room **peer; /* [ncores]: each core's room struct, NULL when no members */
} ws_room_t;

typedef struct ws_roommap {
    ws_room_t **buckets;
    uint32_t nbuckets; /* power of two */
    uint32_t count;
} ws_roommap_t;

/* 64-bit FNV-1a with a final mix; the same on every core, so every core agrees on homes. */
uint64_t ws_room_hash(const char *name, size_t len);

static inline unsigned ws_room_home(uint64_t hash, unsigned ncores)
{
    return (unsigned)((hash >> 32) % ncores);
}

/* A new room struct for this core (`self`) with no members. The home part is allocated
 * only when self is the home. NULL on allocation failure or a name over WS_ROOM_MAX. */
ws_room_t *ws_room_new(const char *name, size_t len, unsigned ncores, unsigned self) WS_WARN_UNUSED;
void ws_room_free(ws_room_t *r);

/* True when nothing on this core and no other core's protocol state needs r any more. */
static inline bool ws_room_unused(const ws_room_t *r, unsigned self)
{
    return r->nmembers == 0 && !r->registered && r->leaves_pending == 0 &&
           (r->home != self || r->member_cores == 0);
}

int ws_room_map_init(ws_roommap_t *m) WS_WARN_UNUSED;
/* Frees the map and every room still in it. */
void ws_room_map_free(ws_roommap_t *m);
ws_room_t *ws_room_find(const ws_roommap_t *m, uint64_t hash, const char *name, size_t len);
/* Inserts r (its name must not be in the map). Returns 0 or -ENOMEM when the table could not
 * grow (r is inserted anyway: chains just get longer). */
int ws_room_insert(ws_roommap_t *m, ws_room_t *r);
void ws_room_remove(ws_roommap_t *m, ws_room_t *r);

#endif
