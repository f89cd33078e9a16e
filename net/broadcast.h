/* Room membership protocol and message routing between cores.
 *
 * Ordering: every message of a room passes through the room's home core, which numbers it
 * (block->seq) and forwards it, in that order, over FIFO queues to each core with members,
 * which appends it to each local member's FIFO send queue. So all members see a room's
 * messages in one order, and a sender's messages keep their order (they reach the home core
 * through one FIFO queue, or directly when the sender is on the home core). */
#ifndef URINGWS_NET_BROADCAST_H
#define URINGWS_NET_BROADCAST_H

#include <stddef.h>

#include "conn.h"
#include "uringws/block.h"
#include "xcore.h"

struct ws_worker;

/* Adds conn to the room `name` (creating it, telling the home core when this core gets its
 * first member). Returns 0 or -ENOMEM. */
int ws_broadcast_join(struct ws_worker *c, ws_conn_t *conn, const char *name,
                      size_t len) WS_WARN_UNUSED;
/* Removes conn from its room (no-op when in none). */
void ws_broadcast_leave(struct ws_worker *c, ws_conn_t *conn);
/* Publishes a message built by conn's core into conn's room; takes the block reference. 0, or
 * -ENOTCONN when the room's backplane is down and --backplane-down is refuse. */
int ws_broadcast_publish(struct ws_worker *c, ws_conn_t *conn, ws_block_t *b);
/* Publishes b (one frame; takes the caller's reference) to every member of the room `name`
 * from any core, without a member connection (the HTTP publish API, a backplane). The
 * room's home core orders it with the room's other messages. 0, -EINVAL (no name, or one
 * over WS_ROOM_MAX bytes), -ENOMEM, or -ENOTCONN (the backplane is down and
 * --backplane-down is refuse); a room without members anywhere drops it (0). */
int ws_broadcast_publish_name(struct ws_worker *c, const char *name, size_t len, ws_block_t *b);
/* The backplane's ops (net/backplane.h), on the room's home core: a message from Redis, and
 * a room that may have missed messages (its members on every core closed with 1012). */
void ws_broadcast_from_backplane(struct ws_worker *c, const char *name, size_t len, uint64_t seq,
                                 ws_block_t *b);
void ws_broadcast_backplane_gap(struct ws_worker *c, const char *name, size_t len);
/* Handles one cross-core event addressed to this core. */
void ws_broadcast_on_event(struct ws_worker *c, const ws_xev_t *ev);
/* Delivers every room's messages gathered during this loop pass to the local members; the
 * loop calls it once per pass, before it issues sends. */
void ws_broadcast_flush(struct ws_worker *c);
/* Queues one block to a single connection (the echo endpoint); takes the reference. */
void ws_broadcast_deliver_one(struct ws_worker *c, ws_conn_t *conn, ws_block_t *b);

#endif
