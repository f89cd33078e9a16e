/* The backplane's publishes (net/bp_internal.h). A publish is one EVAL of a script that
 * numbers the message with INCR on the room's counter and (S)PUBLISHes "<seq> <t|b><payload>"
 * on its channel; its frame is kept until the script's reply. A Cluster may answer with a
 * redirection: MOVED (the slot has a new master: the map is asked for again and the publish
 * sent again, after the ones redirected before it, once the new map is in), or ASK (the slot
 * is migrating: ASKING and the EVAL go to the node named, this once). A publish redirected
 * more than MAX_TRIES times, refused by Redis, or in flight on a connection that was lost is
 * dropped and counted. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bp_internal.h"
#include "cluster.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "uringws/frame.h"

#define MAX_TRIES 5

#define SCRIPT(PUBLISH)                                                                            \
    "local seq = redis.call('INCR', KEYS[1]) "                                                     \
    "redis.call('EXPIRE', KEYS[1], 604800) "                                                       \
    "redis.call('" PUBLISH "', KEYS[2], seq .. ' ' .. ARGV[1]) "                                   \
    "return seq"

static const char script[] = SCRIPT("PUBLISH");
static const char script_sharded[] = SCRIPT("SPUBLISH");

uint64_t ws__bp_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void settle(ws_backplane_t *bp, bp_flight_t *f, bool ok)
{
    if (!f->b)
        return;
    if (!ok)
        ws_metric_inc(&bp->c->m->bp_dropped);
    ws_block_unref(f->b);
    f->ch->inflight--;
    ws__bp_chan_maybe_free(bp, f->ch);
}

/* EVAL of f on l (after ASKING when asking). 0, or -ENOTCONN/-ENOMEM with f untouched. */
static int eval(ws_backplane_t *bp, bp_link_t *l, const bp_flight_t *f, bool asking)
{
    if (!l->up)
        return -ENOTCONN;
    char seqkey[WS_ROOM_MAX + 80], chan[WS_ROOM_MAX + 80];
    size_t sl = ws__bp_chan_key(bp, f->ch, true, seqkey, sizeof seqkey);
    size_t cl = ws__bp_chan_key(bp, f->ch, false, chan, sizeof chan);
    size_t plen = f->b->len - f->b->header_len;
    /* The payload with its type in front: one copy here, one in the formatter. */
    char *arg = malloc(plen + 1);
    if (!arg)
        return -ENOMEM;
    arg[0] = f->b->opcode == WS_OP_TEXT ? 't' : 'b';
    memcpy(arg + 1, f->b->data + f->b->header_len, plen);
    bool sharded = bp->conf->cluster;
    const char *argv[6] = {"EVAL", sharded ? script_sharded : script, "2", seqkey, chan, arg};
    size_t lens[6] = {4,       (sharded ? sizeof script_sharded : sizeof script) - 1, 1, sl, cl,
                      plen + 1};
    const char *ask_argv[1] = {"ASKING"};
    size_t ask_len[1] = {6};
    bp_flight_t ask_f = {.ch = f->ch};
    int rc = 0;
    if (asking && ((rc = ws__bp_ring_push(&l->flight, &ask_f)) < 0 ||
                   (rc = ws_redis_command(&l->pub, 1, ask_argv, ask_len)) < 0)) {
        free(arg);
        return rc; /* a pushed ASKING entry stays; its reply (or the loss) pops it */
    }
    if ((rc = ws__bp_ring_push(&l->flight, f)) == 0 &&
        (rc = ws_redis_command(&l->pub, 6, argv, lens)) < 0)
        l->flight.len--; /* not sent: the entry just pushed goes */
    free(arg);
    if (rc == 0)
        ws_metric_inc(&bp->c->m->bp_out);
    return rc;
}

int ws__bp_publish_send(ws_backplane_t *bp, bp_chan_t *ch, ws_block_t *b)
{
    bp_flight_t f = {.ch = ch, .b = b, .t0 = ws__bp_now_us()};
    bp_link_t *l = ws__bp_link_for(bp, ch);
    ch->inflight++;
    int rc = l ? eval(bp, l, &f, false) : -ENOTCONN;
    if (rc < 0)
        settle(bp, &f, false);
    return rc;
}

static void reroute_later(ws_backplane_t *bp, bp_flight_t *f)
{
    f->tries++;
    if (f->tries > MAX_TRIES || ws__bp_ring_push(bp->reroute, f) < 0) {
        ws_log_error("backplane: a publish in room '%s' was redirected %u times: dropped",
                     f->ch->name, f->tries);
        return settle(bp, f, false);
    }
    ws__bp_links_refresh(bp);
}

void ws__bp_publish_reroute(ws_backplane_t *bp)
{
    for (uint32_t n = bp->reroute->len; n > 0; n--) {
        bp_flight_t f = *(bp_flight_t *)ws__bp_ring_front(bp->reroute);
        ws__bp_ring_pop(bp->reroute);
        bp_link_t *l = ws__bp_link_for(bp, f.ch);
        if (!l || eval(bp, l, &f, false) < 0)
            settle(bp, &f, false);
    }
}

/* An error reply to f: a redirection, or a refusal. */
static void refused(bp_link_t *l, bp_flight_t *f, const redisReply *rep)
{
    ws_backplane_t *bp = l->bp;
    ws_cluster_node_t node;
    int kind = ws_cluster_parse_redirect(rep->str, rep->len, &node);
    if (kind == 2) { /* ASK */
        bp_link_t *to = ws__bp_link_find(bp, node.host, node.port);
        f->tries++;
        if (to && f->tries <= MAX_TRIES && eval(bp, to, f, true) == 0)
            return;
        return reroute_later(bp, f);
    }
    if (kind == 1 || (rep->len >= 8 && memcmp(rep->str, "TRYAGAIN", 8) == 0))
        return reroute_later(bp, f);
    /* A Cluster that lost a slot refuses every write (CLUSTERDOWN, under
     * cluster-require-full-coverage yes): one line a second says so. */
    if (bp->c->now_ms >= bp->refused_log_ms) {
        ws_log_error("backplane: publish in room '%s' refused by Redis: %.200s (%llu more "
                     "refused in the last second)",
                     f->ch->name, rep->str, (unsigned long long)bp->refused_quiet);
        bp->refused_log_ms = bp->c->now_ms + 1000;
        bp->refused_quiet = 0;
    } else {
        bp->refused_quiet++;
    }
    settle(bp, f, false);
}

void ws__bp_publish_reply(bp_link_t *l, redisReply *rep)
{
    ws_backplane_t *bp = l->bp;
    bp_flight_t *fp = ws__bp_ring_front(&l->flight);
    if (!fp) {
        ws_log_error("backplane: a reply from %s nothing was sent for", l->target.where);
        return;
    }
    bp_flight_t f = *fp;
    ws__bp_ring_pop(&l->flight);
    if (!f.b) { /* ASKING */
        if (rep->type == REDIS_REPLY_ERROR)
            ws_log_warn("backplane: ASKING refused by %s: %.200s", l->target.where, rep->str);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR)
        return refused(l, &f, rep);
    ws_metric_add(&bp->c->m->bp_rtt_us, ws__bp_now_us() - f.t0);
    ws_metric_inc(&bp->c->m->bp_rtt_count);
    settle(bp, &f, true);
}

/* What was in flight on a lost link may or may not have been published: dropped, counted
 * (the rooms subscribed there are under the gap policy already). */
void ws__bp_publish_link_down(bp_link_t *l)
{
    for (bp_flight_t *f; (f = ws__bp_ring_front(&l->flight));) {
        bp_flight_t copy = *f;
        ws__bp_ring_pop(&l->flight);
        settle(l->bp, &copy, false);
    }
}

void ws__bp_publish_free(ws_backplane_t *bp)
{
    for (unsigned i = 0; i < bp->nlinks; i++)
        for (bp_flight_t *f; (f = ws__bp_ring_front(&bp->link[i]->flight));) {
            if (f->b)
                ws_block_unref(f->b);
            ws__bp_ring_pop(&bp->link[i]->flight);
        }
    if (bp->reroute) {
        for (bp_flight_t *f; (f = ws__bp_ring_front(bp->reroute));) {
            ws_block_unref(f->b);
            ws__bp_ring_pop(bp->reroute);
        }
        ws__bp_ring_free(bp->reroute);
        free(bp->reroute);
    }
}
