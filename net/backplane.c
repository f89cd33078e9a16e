/* The Redis backplane (net/backplane.h): membership, subscriptions and what Redis sends.
 *
 * Per room (bp_chan_t, bp_chan.c) the core keeps the subscription's state and the link it
 * lives on, whether the room has members here, the last number seen, and the publishes
 * waiting for the subscription to be confirmed (a node must not publish into a channel
 * before it hears it, or it would miss its own message). A link's subscribe connection
 * answers each (S)SUBSCRIBE and (S)UNSUBSCRIBE in order, which the link's ring of rooms
 * pairs with the command; an (S)UNSUBSCRIBE nobody asked for is a Cluster taking the slot
 * away (it moved): the room may have missed messages and is subscribed again where the new
 * map says. */
#include "backplane.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_internal.h"
#include "cluster.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "uringws/frame.h"

#define LINGER_MS   2000 /* a room without members stays subscribed this long */
#define PENDING_MAX 4096 /* publishes one room may queue for its subscription */

/* ---- subscriptions --------------------------------------------------------------------- */

static void subscribe(ws_backplane_t *bp, bp_chan_t *ch, bool on)
{
    bp_link_t *l = on ? ws__bp_link_for(bp, ch) : ch->link;
    if (!l || !l->up)
        return; /* no route, or down: the map or the reconnect brings it back */
    char key[WS_ROOM_MAX + 80];
    size_t kl = ws__bp_chan_key(bp, ch, false, key, sizeof key);
    bool s = bp->conf->cluster;
    const char *argv[2] = {
        on ? (s ? "SSUBSCRIBE" : "SUBSCRIBE") : (s ? "SUNSUBSCRIBE" : "UNSUBSCRIBE"), key};
    size_t lens[2] = {strlen(argv[0]), kl};
    if (ws__bp_ring_push(&l->subq, &ch) < 0)
        return;
    if (ws_redis_command(&l->sub, 2, argv, lens) < 0) {
        l->subq.len--;
        return;
    }
    ch->state = on ? BP_SUBSCRIBING : BP_UNSUBSCRIBING;
    ch->link = l;
}

/* Every room with members here and no subscription gets one (a link came up, a new map). */
static void subscribe_wanted(ws_backplane_t *bp)
{
    for (unsigned i = 0; i < WS_BP_BUCKETS; i++)
        for (bp_chan_t *ch = bp->bucket[i]; ch; ch = ch->next)
            if ((ch->want || ch->npend) && ch->state == BP_IDLE)
                subscribe(bp, ch, true);
}

static void set_up(ws_backplane_t *bp)
{
    bool up = !bp->stopped && ws__bp_links_all_up(bp);
    if (atomic_exchange_explicit(bp->up, up, memory_order_acq_rel) != up) {
        if (up)
            ws_metric_inc(&bp->c->m->bp_up);
        else
            ws_metric_sub(&bp->c->m->bp_up, 1);
    }
    for (unsigned s = 0; bp->slots_up && s < WS_CLUSTER_SLOTS; s++) {
        uint16_t i = bp->have_map ? bp->slot_link[s] : WS_CLUSTER_NO_NODE;
        bool v = !bp->stopped && i != WS_CLUSTER_NO_NODE && bp->link[i]->up;
        atomic_store_explicit(&bp->slots_up[s], v, memory_order_release);
    }
}

static void gone(ws_backplane_t *bp, bp_chan_t *ch)
{
    if (ch->state == BP_SUBSCRIBED || ch->state == BP_UNSUBSCRIBING)
        ws_metric_sub(&bp->c->m->bp_subs, 1);
    ch->state = BP_IDLE;
    ch->link = NULL;
    ch->have_seq = false;
}

/* ---- publishing ------------------------------------------------------------------------ */

static int dropped(ws_backplane_t *bp, ws_block_t *b, int rc)
{
    ws_metric_inc(&bp->c->m->bp_dropped);
    ws_block_unref(b);
    return rc;
}

int ws_backplane_publish(ws_backplane_t *bp, const char *name, size_t len, ws_block_t *b)
{
    if (bp->stopped)
        return dropped(bp, b, -ENOTCONN);
    bp_chan_t *ch = ws__bp_chan_get(bp, name, len, true);
    if (!ch)
        return dropped(bp, b, -ENOMEM);
    /* The room's route, from its cached slot (what the slot flags say, without hashing the
     * name again). */
    bp_link_t *l = ws__bp_link_for(bp, ch);
    if (!l || !l->up) {
        ws__bp_chan_maybe_free(bp, ch);
        return dropped(bp, b, -ENOTCONN);
    }
    /* With members here, nothing is published before the subscription is confirmed (an
     * UNSUBSCRIBE may still be in flight, or the SUBSCRIBE not sent yet): the node would
     * miss its own message. */
    if (ch->want && ch->state != BP_SUBSCRIBED) {
        if (ch->npend == PENDING_MAX)
            return dropped(bp, b, -ENOBUFS);
        if (ch->npend == ch->cap) {
            uint32_t cap = ch->cap ? ch->cap * 2 : 8;
            ws_block_t **v = realloc(ch->pend, cap * sizeof(*v));
            if (!v)
                return dropped(bp, b, -ENOMEM);
            ch->pend = v;
            ch->cap = cap;
        }
        ch->pend[ch->npend++] = b;
        if (ch->state == BP_IDLE)
            subscribe(bp, ch, true);
        return 0;
    }
    int rc = ws__bp_publish_send(bp, ch, b);
    ws__bp_chan_maybe_free(bp, ch);
    return rc;
}

/* ---- membership ------------------------------------------------------------------------ */

static void arm_linger(ws_backplane_t *bp, uint64_t when)
{
    if (!bp->linger_armed || bp->linger.deadline > when) {
        ws_timer_add(&bp->c->wheel, &bp->linger, when);
        bp->linger_armed = true;
    }
}

void ws_backplane_watch(ws_backplane_t *bp, const char *name, size_t len, bool on)
{
    if (bp->stopped)
        return;
    bp_chan_t *ch = ws__bp_chan_get(bp, name, len, on);
    if (!ch) {
        if (on)
            ws_log_error("backplane: out of memory: room '%.*s' is not subscribed", (int)len, name);
        return;
    }
    ch->want = on;
    if (on) {
        ch->linger_until = 0;
        if (ch->state == BP_IDLE)
            subscribe(bp, ch, true);
    } else {
        ch->linger_until = bp->c->now_ms + LINGER_MS;
        arm_linger(bp, ch->linger_until);
    }
}

static void on_linger(void *ctx, ws_timer_t *t)
{
    ws_worker_t *c = ctx;
    ws_backplane_t *bp = ws_container_of(t, ws_backplane_t, linger);
    bp->linger_armed = false;
    uint64_t next = UINT64_MAX;
    for (unsigned i = 0; i < WS_BP_BUCKETS; i++) {
        for (bp_chan_t *ch = bp->bucket[i], *n; ch; ch = n) {
            n = ch->next;
            if (ch->want || !ch->linger_until)
                continue;
            if (ch->linger_until > c->now_ms) {
                next = ch->linger_until < next ? ch->linger_until : next;
                continue;
            }
            ch->linger_until = 0;
            if (ch->state == BP_SUBSCRIBED)
                subscribe(bp, ch, false);
            ws__bp_chan_maybe_free(bp, ch);
        }
    }
    if (next != UINT64_MAX)
        arm_linger(bp, next);
}

/* ---- what Redis sends ------------------------------------------------------------------ */

static void message(ws_backplane_t *bp, bp_chan_t *ch, const redisReply *msg)
{
    char *sp = msg->type == REDIS_REPLY_STRING ? memchr(msg->str, ' ', msg->len) : NULL;
    char *end;
    unsigned long long seq = sp ? strtoull(msg->str, &end, 10) : 0;
    if (!sp || end != sp || (size_t)(sp - msg->str) + 2 > msg->len ||
        (sp[1] != 't' && sp[1] != 'b')) {
        ws_log_error("backplane: malformed message in room '%s' (not from uringws?)", ch->name);
        return;
    }
    ws_metric_inc(&bp->c->m->bp_in);
    /* Number 1 after others: the counter expired (a week without messages) and began
     * again; nothing was lost. */
    if (ch->have_seq && seq != ch->last_seq + 1 && seq != 1) {
        char why[80];
        snprintf(why, sizeof why, "number %llu after %llu", seq, (unsigned long long)ch->last_seq);
        ch->last_seq = seq;
        ws__bp_chan_gap(bp, ch, why);
    }
    ch->have_seq = true;
    ch->last_seq = seq;
    const uint8_t *p = (const uint8_t *)sp + 2;
    size_t n = msg->len - (size_t)(sp - msg->str) - 2;
    ws_block_t *b = ws_block_frame(sp[1] == 't' ? WS_OP_TEXT : WS_OP_BINARY, p, n);
    if (!b) {
        ws__bp_chan_gap(bp, ch, "out of memory for a message");
        return;
    }
    ws_metric_inc(&bp->c->m->frames_built);
    bp->ops->deliver(bp->c, ch->name, ch->len, seq, b);
}

static void confirmed(ws_backplane_t *bp, bp_chan_t *ch, bool subscribed)
{
    if (subscribed) {
        ch->state = BP_SUBSCRIBED;
        ws_metric_inc(&bp->c->m->bp_subs);
        for (uint32_t i = 0; i < ch->npend; i++)
            (void)ws__bp_publish_send(bp, ch, ch->pend[i]); /* failures are counted there */
        ch->npend = 0;
        if (!ch->want && !ch->linger_until)
            subscribe(bp, ch, false);
        return;
    }
    gone(bp, ch);
    if (ch->want)
        subscribe(bp, ch, true);
    else
        ws__bp_chan_maybe_free(bp, ch);
}

/* An error answers the command at the ring's head. A redirection (the slot moved before the
 * map did): subscribed again once the new map is in; anything else may repeat, so the
 * room's waiting publishes are dropped and its members are under the gap policy. */
static void sub_error(bp_link_t *l, bp_chan_t *ch, const redisReply *rep)
{
    ws_backplane_t *bp = l->bp;
    bool unsub = ch->state == BP_UNSUBSCRIBING;
    gone(bp, ch);
    if (rep->len >= 6 && (memcmp(rep->str, "MOVED ", 6) == 0 || memcmp(rep->str, "ASK ", 4) == 0)) {
        ws__bp_links_refresh(bp);
        ws__bp_chan_maybe_free(bp, ch);
        return;
    }
    ws_log_error("backplane: %s '%s' refused by %s: %.200s", unsub ? "unsubscribe" : "subscribe",
                 ch->name, l->target.where, rep->str);
    ws__bp_chan_drop_pending(bp, ch);
    if (ch->want)
        ws__bp_chan_gap(bp, ch, "subscription refused");
    ws__bp_chan_maybe_free(bp, ch);
}

static void sub_reply(bp_link_t *l, redisReply *rep)
{
    ws_backplane_t *bp = l->bp;
    bp_chan_t **head = ws__bp_ring_front(&l->subq);
    if (rep->type == REDIS_REPLY_ERROR) {
        if (!head) {
            ws_log_error("backplane: error on the subscription: %.200s", rep->str);
            return;
        }
        bp_chan_t *ch = *head;
        ws__bp_ring_pop(&l->subq);
        return sub_error(l, ch, rep);
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        ws_log_error("backplane: unexpected reply on the subscription: type %d", rep->type);
        return;
    }
    const char *kind = rep->element[0]->str + bp->conf->cluster; /* "s..." with a Cluster */
    size_t len;
    const char *name = ws__bp_chan_room(bp, rep->element[1], &len);
    bp_chan_t *ch = name ? ws__bp_chan_get(bp, name, len, false) : NULL;
    if (strcmp(kind, "message") == 0) {
        if (ch && ch->link == l)
            message(bp, ch, rep->element[2]);
        return; /* not ours (another prefix), or forgotten */
    }
    bool on = strcmp(kind, "subscribe") == 0;
    if (!on && strcmp(kind, "unsubscribe") != 0)
        return;
    if (head && *head == ch && ch->state == (on ? BP_SUBSCRIBING : BP_UNSUBSCRIBING)) {
        ws__bp_ring_pop(&l->subq);
        return confirmed(bp, ch, on);
    }
    if (!on && ch && ch->link == l && ch->state == BP_SUBSCRIBED) { /* the slot was taken */
        gone(bp, ch);
        if (ch->want)
            ws__bp_chan_gap(bp, ch, "the cluster moved its slot");
        ws__bp_links_refresh(bp);
        ws__bp_chan_maybe_free(bp, ch);
    }
}

/* ---- links ----------------------------------------------------------------------------- */

static void link_up(bp_link_t *l)
{
    set_up(l->bp);
    subscribe_wanted(l->bp);
}

/* Lost (or closed): what was in flight there is dropped, the rooms subscribed there may
 * have missed messages; they are subscribed again when a link for them is up. */
static void link_down(bp_link_t *l, const char *why)
{
    ws_backplane_t *bp = l->bp;
    set_up(bp);
    ws_metric_inc(&bp->c->m->bp_reconnects);
    ws__bp_publish_link_down(l);
    while (ws__bp_ring_front(&l->subq))
        ws__bp_ring_pop(&l->subq);
    for (unsigned i = 0; i < WS_BP_BUCKETS; i++) {
        for (bp_chan_t *ch = bp->bucket[i], *n; ch; ch = n) {
            n = ch->next;
            if (ch->link != l)
                continue;
            gone(bp, ch);
            ws__bp_chan_drop_pending(bp, ch);
            if (ch->want && !bp->stopped)
                ws__bp_chan_gap(bp, ch, why);
            ws__bp_chan_maybe_free(bp, ch);
        }
    }
}

static void topology(ws_backplane_t *bp)
{
    set_up(bp);
    ws__bp_publish_reroute(bp);
    subscribe_wanted(bp);
}

static const bp_link_ops_t link_ops = {
    .up = link_up,
    .down = link_down,
    .sub_reply = sub_reply,
    .pub_reply = ws__bp_publish_reply,
    .topology = topology,
};

/* ---- start and stop -------------------------------------------------------------------- */

ws_backplane_t *ws_backplane_new(ws_worker_t *c, const ws_backplane_conf_t *conf,
                                 const ws_backplane_ops_t *ops, _Atomic bool *up,
                                 _Atomic uint8_t *slots_up)
{
    ws_backplane_t *bp = calloc(1, sizeof(*bp));
    if (!bp)
        return NULL;
    bp->up = up;
    bp->slots_up = slots_up;
    bp->c = c;
    bp->ops = ops;
    bp->conf = conf;
    ws_timer_init(&bp->linger, on_linger);
    if ((bp->reroute = calloc(1, sizeof(*bp->reroute))))
        bp->reroute->size = sizeof(bp_flight_t);
    if (!bp->reroute || ws__bp_links_start(bp, &link_ops) < 0) {
        ws_backplane_stop(bp);
        ws_backplane_free(bp);
        return NULL;
    }
    return bp;
}

void ws_backplane_stop(ws_backplane_t *bp)
{
    bp->stopped = true;
    set_up(bp);
    ws_timer_del(&bp->c->wheel, &bp->linger);
    ws__bp_links_stop(bp);
}

void ws_backplane_free(ws_backplane_t *bp)
{
    if (!bp)
        return;
    ws__bp_publish_free(bp);
    ws__bp_chan_free_all(bp);
    ws__bp_links_free(bp);
    free(bp);
}
