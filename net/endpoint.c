/* The endpoints: a room (join on open, publish each message to every member unless the
 * member may not write, leave on close; the max_rooms count goes with the membership) and echo
 * (each message back to its sender only). */
#include "endpoint.h"

#include <string.h>

#include "admission.h"
#include "broadcast.h"
#include "log.h"
#include "metrics.h"
#include "room.h"
#include "worker.h"
#include "uringws/block.h"
#include "uringws/frame.h"

/* Takes over the room count ws_admission_upgrade took: given back on leave, or now. */
static int room_open(ws_worker_t *c, ws_conn_t *conn, const char *name, size_t len)
{
    int rc = ws_broadcast_join(c, conn, name, len);
    if (rc < 0)
        ws_admission_room_release(c, conn, name, len);
    return rc;
}

static void room_close(ws_worker_t *c, ws_conn_t *conn)
{
    const ws_room_t *r = conn->room;
    if (!r)
        return;
    ws_admission_room_release(c, conn, r->name, r->name_len);
    ws_broadcast_leave(c, conn);
}

/* A member's message, unless it may not write (--client-publish): then 1008. */
static void room_message(ws_worker_t *c, ws_conn_t *conn, ws_block_t *b)
{
    if (conn->flags & WS_CONN_F_READONLY) {
        ws_block_unref(b);
        ws_log_verbose("conn %u: may not publish into its room (sub %s), closing with 1008",
                       conn->idx, conn->sub ? conn->sub : "-");
        ws_metric_inc(&c->m->publish_refused);
        ws_conn_close(c, conn, WS_CLOSE_POLICY, "publishing not allowed", true);
        return;
    }
    if (ws_broadcast_publish(c, conn, b) < 0) {
        ws_log_verbose("conn %u: backplane down, closing with 1013", conn->idx);
        ws_conn_close(c, conn, WS_CLOSE_TRY_AGAIN, "backplane down", false);
        return;
    }
    ws_metric_inc(&c->m->publishes[WS_PUB_CLIENT]);
}

const ws_endpoint_t ws_endpoint_room = {
    .name = "room",
    .room = true,
    .open = room_open,
    .message = room_message,
    .close = room_close,
};

static int echo_open(ws_worker_t *c, ws_conn_t *conn, const char *name, size_t len)
{
    (void)c;
    (void)conn;
    (void)name;
    (void)len;
    return 0;
}

static void echo_close(ws_worker_t *c, ws_conn_t *conn)
{
    (void)c;
    (void)conn;
}

const ws_endpoint_t ws_endpoint_echo = {
    .name = "echo",
    .open = echo_open,
    .message = ws_broadcast_deliver_one,
    .close = echo_close,
};

const ws_endpoint_t *ws_endpoint_for(const char *name, size_t len)
{
    if (len == 4 && memcmp(name, "echo", 4) == 0)
        return &ws_endpoint_echo;
    return &ws_endpoint_room;
}
