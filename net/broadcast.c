/* Room routing: local joins/leaves, JOIN/LEAVE/LEAVE_ACK with the home core, PUBLISH to the
 * home core, FANOUT from it, and delivery to local members, a loop pass's messages batched
 * into one block, with one block reference per core (a ws_bref_t counts the local recipients
 * without atomics). */
#include "broadcast.h"

#include <errno.h>

#include "backplane.h"
#include "cluster.h"
#include "keycount.h"
#include "log.h"
#include "conn_send.h"
#include "worker.h"
#include "room.h"
#include "sendq.h"
#include "uringws/frame.h"
#include "server_internal.h"

static void room_maybe_free(ws_worker_t *c, ws_room_t *r)
{
    if (!ws_room_unused(r, c->id))
        return;
    ws_room_remove(&c->rooms, r);
    ws_room_free(r);
}

/* The home core's bookkeeping for core `core` gaining or losing its members; the backplane
 * hears of the node's first and last member. */
static void home_set_peer(ws_worker_t *c, ws_room_t *r, unsigned core, ws_room_t *peer)
{
    if (peer && !r->peer[core]) {
        if (r->member_cores++ == 0) {
            ws_metric_inc(&c->m->rooms);
            if (c->bp)
                ws_backplane_watch(c->bp, r->name, r->name_len, true);
        }
    } else if (!peer && r->peer[core]) {
        if (--r->member_cores == 0) {
            ws_metric_sub(&c->m->rooms, 1);
            if (c->bp)
                ws_backplane_watch(c->bp, r->name, r->name_len, false);
        }
    }
    r->peer[core] = peer;
}

/* Batching: the messages a room gets during one loop pass are delivered to its local
 * members together at the end of the pass (ws_broadcast_flush), copied back to back into
 * one block when there are several. A member then queues one entry per pass instead of one
 * per message, so the per-recipient work of a busy room is one queue entry and one send per
 * pass, whatever the message count (the work that stays per message is one copy per core).
 * A lone message is delivered as its own block, uncopied. Frames over BATCH_FRAME_MAX skip
 * the copy: the room's batch so far is delivered first, then the frame, so order holds. */
#define BATCH_FRAME_MAX (16u << 10) /* larger frames are delivered as they are */
#define BATCH_MAX       (64u << 10) /* a batch this large is delivered and a new one begun */
#define BATCH_FRAMES    65535u      /* frames per batch */
#define BATCH_FIRST_CAP (4u << 10)

/* Delivers b (one reference, held by this core; `frames` frames) to every local member. */
static void deliver_now(ws_worker_t *c, ws_room_t *r, ws_block_t *b, uint32_t frames)
{
    if (r->nmembers == 0) {
        ws_block_unref(b);
        return;
    }
    ws_bref_t *br = ws_bref_new(&c->brefs, b, r->nmembers);
    if (!br) {
        /* A member that silently misses a message would break the ordering promise: close
         * them all instead (deferred, the member list is being walked). */
        ws_log_error("out of memory delivering to room '%s': closing its local members", r->name);
        for (ws_dlink_t *n = r->members; n; n = n->next)
            ws_conn_send_close_later(c, ws_container_of(n, ws_conn_t, member), WS_CLOSE_INTERNAL,
                                     "out of memory");
        ws_block_unref(b);
        return;
    }
    br->frames = frames;
    /* ws_conn_send_deliver never unlinks a member synchronously (closes are deferred), so the
     * walk is safe; br may be freed by the last failed delivery, after which it is unused. */
    ws_dlink_t *n = r->members;
    while (n) {
        ws_dlink_t *next = n->next;
        ws_conn_send_deliver(c, ws_container_of(n, ws_conn_t, member), br);
        n = next;
    }
}

/* Delivers what r gathered this pass. */
static void batch_flush(ws_worker_t *c, ws_room_t *r)
{
    ws_block_t *b = r->batch;
    if (!b)
        return;
    ws_dlink_remove(&r->batch_link);
    r->batch = NULL;
    deliver_now(c, r, b, r->batch_frames);
}

/* Adds b (this core's reference) to r's batch; false when no memory was left for it (the
 * caller still holds b). */
static bool batch_add(ws_worker_t *c, ws_room_t *r, ws_block_t *b)
{
    if (!r->batch) {
        r->batch = b;
        r->batch_frames = 1;
        r->batch_cap = 0;
        ws_dlink_push(&c->batched, &r->batch_link);
        return true;
    }
    if (r->batch_cap == 0) {
        /* The second message: copy the first into a batch. */
        ws_block_t *first = r->batch;
        uint32_t cap = first->len + b->len;
        cap = cap < BATCH_FIRST_CAP ? BATCH_FIRST_CAP : cap;
        ws_block_t *nb = ws_block_batch(cap);
        if (!nb)
            return false;
        nb = ws_block_append(nb, &cap, first->data, first->len); /* fits: no growth */
        r->batch = nb;
        r->batch_cap = cap;
        ws_block_unref(first);
    }
    ws_block_t *nb = ws_block_append(r->batch, &r->batch_cap, b->data, b->len);
    if (!nb)
        return false;
    r->batch = nb;
    r->batch_frames++;
    ws_block_unref(b);
    return true;
}

/* b (one reference, held by this core) for every local member of r. */
static void deliver_local(ws_worker_t *c, ws_room_t *r, ws_block_t *b)
{
    if (r->nmembers == 0) {
        ws_block_unref(b);
        return;
    }
    if (b->len > BATCH_FRAME_MAX) {
        batch_flush(c, r);
        deliver_now(c, r, b, 1);
        return;
    }
    if (r->batch && (r->batch->len + b->len > BATCH_MAX || r->batch_frames == BATCH_FRAMES))
        batch_flush(c, r);
    if (!batch_add(c, r, b)) {
        /* No memory to copy into: deliver in order without batching. */
        batch_flush(c, r);
        deliver_now(c, r, b, 1);
    }
}

void ws_broadcast_flush(ws_worker_t *c)
{
    ws_dlink_t *n;
    while ((n = c->batched))
        batch_flush(c, ws_container_of(n, ws_room_t, batch_link));
}

/* Home core: hands the numbered message to every core with members. */
static void home_fanout(ws_worker_t *c, ws_room_t *r, ws_block_t *b)
{
    if (r->member_cores == 0) {
        ws_block_unref(b);
        return;
    }
    if (r->member_cores > 1)
        ws_block_ref(b, r->member_cores - 1);
    bool local = false;
    for (unsigned i = 0; i < c->ncores; i++) {
        if (!r->peer[i])
            continue;
        if (i == c->id) {
            local = true;
            continue;
        }
        ws_xev_t ev = {
            .type = WS_XEV_FANOUT, .src = (uint16_t)c->id, .room = r->peer[i], .block = b};
        ws_worker_xpush(c, i, &ev);
    }
    if (local)
        deliver_local(c, r, b);
}

static bool room_up(ws_worker_t *c, unsigned home, const char *name, size_t len)
{
    _Atomic uint8_t *slots = c->srv->bp_slots;
    return ws_backplane_room_up(&c->srv->bp_up[home],
                                slots ? slots + (size_t)home * WS_CLUSTER_SLOTS : NULL,
                                c->cfg->backplane_prefix, name, len);
}

/* Home core: a message for the room `name` (r is its struct here, NULL when this node has no
 * members). One node: numbered here and fanned out. With the backplane: to Redis, which
 * numbers it and sends it back to every node with members, this one too; while the
 * backplane is down, delivered here only under --backplane-down local, else dropped (the
 * publishing core refused it already when it could see the backplane was down). */
static void home_publish_name(ws_worker_t *c, ws_room_t *r, const char *name, size_t len,
                              ws_block_t *b)
{
    if (c->bp && room_up(c, c->id, name, len)) {
        (void)ws_backplane_publish(c->bp, name, len, b); /* failures are counted there */
        return;
    }
    if (c->bp && c->cfg->backplane_down != WS_BACKPLANE_DOWN_LOCAL) {
        ws_metric_inc(&c->m->bp_dropped);
        ws_block_unref(b);
        return;
    }
    if (!r) {
        ws_block_unref(b);
        return;
    }
    b->seq = ++r->seq;
    home_fanout(c, r, b);
}

static void home_publish(ws_worker_t *c, ws_room_t *r, ws_block_t *b)
{
    home_publish_name(c, r, r->name, r->name_len, b);
}

/* Whether a publish into room `name` homed on `home` is refused now: the backplane of that
 * core cannot route it (it is down; with a Cluster: the master of the room's slot is) and
 * --backplane-down is refuse. */
static bool refused(ws_worker_t *c, unsigned home, const char *name, size_t len)
{
    return c->bp && c->cfg->backplane_down == WS_BACKPLANE_DOWN_REFUSE &&
           !room_up(c, home, name, len);
}

void ws_broadcast_from_backplane(ws_worker_t *c, const char *name, size_t len, uint64_t seq,
                                 ws_block_t *b)
{
    ws_room_t *r = ws_room_find(&c->rooms, ws_room_hash(name, len), name, len);
    if (!r || r->home != c->id) {
        ws_block_unref(b); /* its members left while the subscription lingers */
        return;
    }
    b->seq = seq;
    home_fanout(c, r, b);
}

/* Closes (deferred) every member of this core's struct r with 1012. */
static void close_members(ws_worker_t *c, ws_room_t *r)
{
    for (ws_dlink_t *n = r->members; n; n = n->next)
        ws_conn_send_close_later(c, ws_container_of(n, ws_conn_t, member), WS_CLOSE_SERVICE_RESTART,
                                 "backplane gap");
}

void ws_broadcast_backplane_gap(ws_worker_t *c, const char *name, size_t len)
{
    ws_room_t *r = ws_room_find(&c->rooms, ws_room_hash(name, len), name, len);
    if (!r || r->home != c->id)
        return;
    for (unsigned i = 0; i < c->ncores; i++) {
        if (!r->peer[i])
            continue;
        if (i == c->id) {
            close_members(c, r);
            continue;
        }
        ws_xev_t ev = {.type = WS_XEV_ROOM_CLOSE, .src = (uint16_t)c->id, .room = r->peer[i]};
        ws_worker_xpush(c, i, &ev);
    }
}

int ws_broadcast_join(ws_worker_t *c, ws_conn_t *conn, const char *name, size_t len)
{
    uint64_t h = ws_room_hash(name, len);
    ws_room_t *r = ws_room_find(&c->rooms, h, name, len);
    if (!r) {
        r = ws_room_new(name, len, c->ncores, c->id);
        if (!r)
            return -ENOMEM;
        if (ws_room_insert(&c->rooms, r) < 0)
            ws_log_warn("room map could not grow; lookups get slower");
    }
    /* A new member gets the messages published after it joined, not those of this pass. */
    batch_flush(c, r);
    ws_dlink_push(&r->members, &conn->member);
    conn->room = r;
    if (r->nmembers++ > 0)
        return 0;
    if (r->home == c->id) {
        home_set_peer(c, r, c->id, r);
    } else if (!r->registered) {
        r->registered = true;
        ws_xev_t ev = {.type = WS_XEV_JOIN, .src = (uint16_t)c->id, .room = r, .block = NULL};
        ws_worker_xpush(c, r->home, &ev);
    }
    return 0;
}

void ws_broadcast_leave(ws_worker_t *c, ws_conn_t *conn)
{
    ws_room_t *r = conn->room;
    if (!r)
        return;
    ws_dlink_remove(&conn->member);
    conn->room = NULL;
    if (--r->nmembers > 0)
        return;
    /* A batch this pass gathered for r is dropped by the end-of-pass flush (no members), or
     * by ws_room_free below when r goes now. */
    if (r->home == c->id) {
        home_set_peer(c, r, c->id, NULL);
    } else if (r->registered) {
        r->registered = false;
        r->leaves_pending++;
        ws_xev_t ev = {.type = WS_XEV_LEAVE, .src = (uint16_t)c->id, .room = r, .block = NULL};
        ws_worker_xpush(c, r->home, &ev);
    }
    room_maybe_free(c, r);
}

int ws_broadcast_publish(ws_worker_t *c, ws_conn_t *conn, ws_block_t *b)
{
    ws_room_t *r = conn->room;
    if (!r || refused(c, r->home, r->name, r->name_len)) {
        ws_block_unref(b);
        return r ? -ENOTCONN : 0;
    }
    if (r->home == c->id) {
        home_publish(c, r, b);
        return 0;
    }
    ws_xev_t ev = {.type = WS_XEV_PUBLISH, .src = (uint16_t)c->id, .room = r, .block = b};
    ws_worker_xpush(c, r->home, &ev);
    return 0;
}

int ws_broadcast_publish_name(ws_worker_t *c, const char *name, size_t len, ws_block_t *b)
{
    if (len == 0 || len > WS_ROOM_MAX) {
        ws_block_unref(b);
        return -EINVAL;
    }
    uint64_t h = ws_room_hash(name, len);
    unsigned home = ws_room_home(h, c->ncores);
    if (refused(c, home, name, len)) {
        ws_block_unref(b);
        return -ENOTCONN;
    }
    if (home == c->id) {
        /* Without members here the room may still have some on other nodes. */
        home_publish_name(c, ws_room_find(&c->rooms, h, name, len), name, len, b);
        return 0;
    }
    ws_room_t *name_only = ws_room_new(name, len, c->ncores, c->id);
    if (!name_only) {
        ws_block_unref(b);
        return -ENOMEM;
    }
    ws_xev_t ev = {
        .type = WS_XEV_PUBLISH_NAME, .src = (uint16_t)c->id, .room = name_only, .block = b};
    ws_worker_xpush(c, home, &ev);
    return 0;
}

void ws_broadcast_deliver_one(ws_worker_t *c, ws_conn_t *conn, ws_block_t *b)
{
    ws_bref_t *br = ws_bref_new(&c->brefs, b, 1);
    if (!br) {
        ws_block_unref(b);
        ws_conn_send_close_later(c, conn, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    ws_conn_send_deliver(c, conn, br);
}

/* The home core's struct for the room another core's struct names. */
static ws_room_t *home_room_of(ws_worker_t *c, const ws_room_t *remote, bool create)
{
    ws_room_t *r = ws_room_find(&c->rooms, remote->hash, remote->name, remote->name_len);
    if (r || !create)
        return r;
    r = ws_room_new(remote->name, remote->name_len, c->ncores, c->id);
    if (!r)
        return NULL;
    if (ws_room_insert(&c->rooms, r) < 0)
        ws_log_warn("room map could not grow; lookups get slower");
    return r;
}

void ws_broadcast_on_event(ws_worker_t *c, const ws_xev_t *ev)
{
    ws_room_t *r;
    switch (ev->type) {
    case WS_XEV_JOIN:
        r = home_room_of(c, ev->room, true);
        if (!r) {
            /* The joining core's members will miss the room's messages; it is told nothing
             * (no reply channel for failure), so say it loudly. */
            ws_log_error("out of memory: room '%s' cannot take core %u", ev->room->name, ev->src);
            return;
        }
        home_set_peer(c, r, ev->src, ev->room);
        break;
    case WS_XEV_LEAVE: {
        r = home_room_of(c, ev->room, false);
        if (r && r->peer[ev->src] == ev->room) {
            home_set_peer(c, r, ev->src, NULL);
            room_maybe_free(c, r);
        }
        /* Acknowledge even when nothing matched, or the sender would keep its struct. */
        ws_xev_t ack = {
            .type = WS_XEV_LEAVE_ACK, .src = (uint16_t)c->id, .room = ev->room, .block = NULL};
        ws_worker_xpush(c, ev->src, &ack);
        break;
    }
    case WS_XEV_LEAVE_ACK:
        r = ev->room;
        r->leaves_pending--;
        room_maybe_free(c, r);
        break;
    case WS_XEV_PUBLISH:
        r = home_room_of(c, ev->room, false);
        if (!r) {
            /* Only after the JOIN failed for lack of memory. */
            ws_block_unref(ev->block);
            return;
        }
        home_publish(c, r, ev->block);
        break;
    case WS_XEV_FANOUT:
        deliver_local(c, ev->room, ev->block);
        break;
    case WS_XEV_PUBLISH_NAME:
        r = home_room_of(c, ev->room, false);
        home_publish_name(c, r, ev->room->name, ev->room->name_len, ev->block);
        ws_room_free(ev->room);
        break;
    case WS_XEV_ROOM_CLOSE:
        close_members(c, ev->room);
        break;
    default:
        ws_log_error("unknown cross-core event type %u from core %u", ev->type, ev->src);
        if (ev->block)
            ws_block_unref(ev->block);
        break;
    }
}
