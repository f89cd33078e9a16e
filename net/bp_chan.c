/* The backplane's room channels (net/bp_internal.h): a table by room name on each core, the
 * keys a room uses in Redis, the gap policy, and the ring the links keep their owed replies
 * in.
 *
 * Channel of a room: "<prefix>:<room>"; its counter: "<prefix>:<room>:seq" (expires a week
 * after its last message). With a Cluster the room is the hash tag, "<prefix>:{<room>}" and
 * "<prefix>:{<room>}:seq", so both live in one slot and one script may touch them. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_internal.h"
#include "cluster.h"
#include "log.h"
#include "metrics.h"
#include "room.h"
#include "worker.h"

int ws__bp_ring_push(bp_ring_t *r, const void *elem)
{
    if (r->len == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 64;
        char *v = malloc((size_t)cap * r->size);
        if (!v)
            return -ENOMEM;
        for (uint32_t i = 0; i < r->len; i++)
            memcpy(v + (size_t)i * r->size, r->v + (size_t)((r->head + i) % r->cap) * r->size,
                   r->size);
        free(r->v);
        r->v = v;
        r->head = 0;
        r->cap = cap;
    }
    memcpy(r->v + (size_t)((r->head + r->len++) % r->cap) * r->size, elem, r->size);
    return 0;
}

void *ws__bp_ring_front(bp_ring_t *r)
{
    return r->len ? r->v + (size_t)r->head * r->size : NULL;
}

void ws__bp_ring_pop(bp_ring_t *r)
{
    if (!r->len)
        return;
    r->head = (r->head + 1) % r->cap;
    r->len--;
}

void ws__bp_ring_free(bp_ring_t *r)
{
    free(r->v);
    r->v = NULL;
    r->head = r->len = r->cap = 0;
}

static bp_chan_t **slot(ws_backplane_t *bp, const char *name, size_t len, uint64_t h)
{
    bp_chan_t **pp = &bp->bucket[h % WS_BP_BUCKETS];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

/* A room's key in buf: "<prefix>:<room>" or, tagged, "<prefix>:{<room>}", then ":seq" for
 * its counter. Its length, or 0 when it does not fit. */
static size_t key(char *buf, size_t cap, const char *prefix, bool tag, const char *name, size_t len,
                  bool seq)
{
    int n = snprintf(buf, cap, "%s:%s%.*s%s%s", prefix, tag ? "{" : "", (int)len, name,
                     tag ? "}" : "", seq ? ":seq" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

unsigned ws_backplane_keyslot(const char *prefix, const char *name, size_t len)
{
    char buf[WS_ROOM_MAX + 80];
    return ws_cluster_keyslot(buf, key(buf, sizeof buf, prefix, true, name, len, false));
}

bp_chan_t *ws__bp_chan_get(ws_backplane_t *bp, const char *name, size_t len, bool create)
{
    uint64_t h = ws_room_hash(name, len);
    bp_chan_t **pp = slot(bp, name, len, h);
    if (*pp || !create || len > WS_ROOM_MAX)
        return *pp;
    bp_chan_t *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->hash = h;
    ch->len = (uint8_t)len;
    memcpy(ch->name, name, len);
    ch->slot = (uint16_t)ws_backplane_keyslot(bp->c->cfg->backplane_prefix, name, len);
    *pp = ch;
    bp->nchans++;
    return ch;
}

void ws__bp_chan_drop_pending(ws_backplane_t *bp, bp_chan_t *ch)
{
    for (uint32_t i = 0; i < ch->npend; i++) {
        ws_block_unref(ch->pend[i]);
        ws_metric_inc(&bp->c->m->bp_dropped);
    }
    ch->npend = 0;
}

/* Frees ch when nothing needs it: no members, no subscription, nothing waiting. */
void ws__bp_chan_maybe_free(ws_backplane_t *bp, bp_chan_t *ch)
{
    if (ch->want || ch->state != BP_IDLE || ch->npend || ch->inflight)
        return;
    bp_chan_t **pp = slot(bp, ch->name, ch->len, ch->hash);
    *pp = ch->next;
    bp->nchans--;
    free(ch->pend);
    free(ch);
}

size_t ws__bp_chan_key(const ws_backplane_t *bp, const bp_chan_t *ch, bool seq, char *buf,
                       size_t cap)
{
    return key(buf, cap, bp->c->cfg->backplane_prefix, bp->conf->cluster, ch->name, ch->len, seq);
}

const char *ws__bp_chan_room(const ws_backplane_t *bp, const redisReply *chan, size_t *len)
{
    const char *prefix = bp->c->cfg->backplane_prefix;
    size_t pl = strlen(prefix), tag = bp->conf->cluster;
    if (chan->type != REDIS_REPLY_STRING || chan->len <= pl + 1 + 2 * tag ||
        memcmp(chan->str, prefix, pl) != 0 || chan->str[pl] != ':')
        return NULL;
    if (tag && (chan->str[pl + 1] != '{' || chan->str[chan->len - 1] != '}'))
        return NULL;
    *len = chan->len - pl - 1 - 2 * tag;
    return *len <= WS_ROOM_MAX ? chan->str + pl + 1 + tag : NULL;
}

void ws__bp_chan_gap(ws_backplane_t *bp, bp_chan_t *ch, const char *why)
{
    ws_metric_inc(&bp->c->m->bp_gaps);
    bool close = bp->c->cfg->backplane_gap == WS_BACKPLANE_GAP_CLOSE;
    ws_log_warn("backplane: room '%s' may have missed messages (%s)%s", ch->name, why,
                close ? ": closing its members with 1012" : "");
    if (close)
        bp->ops->gap(bp->c, ch->name, ch->len);
}

void ws__bp_chan_free_all(ws_backplane_t *bp)
{
    for (unsigned i = 0; i < WS_BP_BUCKETS; i++) {
        for (bp_chan_t *ch = bp->bucket[i], *n; ch; ch = n) {
            n = ch->next;
            for (uint32_t j = 0; j < ch->npend; j++)
                ws_block_unref(ch->pend[j]);
            free(ch->pend);
            free(ch);
        }
        bp->bucket[i] = NULL;
    }
    bp->nchans = 0;
}
