/* Closing every connection of a token subject (`sub`) on every core, for the API's
 * POST /api/disconnect (net/disconnect.c). The order travels to the other cores as a block
 * (one allocation, reference counted across cores) in a WS_XEV_DISCONNECT event. */
#ifndef URINGWS_NET_DISCONNECT_H
#define URINGWS_NET_DISCONNECT_H

#include <stddef.h>

#include "xcore.h"

struct ws_worker;

#define WS_DISCONNECT_REASON_MAX 123 /* bytes of a close reason */

/* Closes this core's connections whose subject is sub[0..len) with `code` and `reason` (the
 * caller checked both) and sends the order to every other core. Returns how many it closed
 * here (the others close theirs within one loop pass of their own), or -ENOMEM. */
long ws_disconnect_sub(struct ws_worker *c, const char *sub, size_t len, unsigned code,
                       const char *reason, size_t reason_len);
/* An order from another core; drops the event's block reference. */
void ws_disconnect_on_event(struct ws_worker *c, const ws_xev_t *ev);

#endif
