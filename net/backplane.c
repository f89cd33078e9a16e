/* The Redis backplane (net/backplane.h).
 *
 * Channel of a room: "<prefix>:<room>"; its counter: "<prefix>:<room>:seq" (expires a week
 * after its last message). A message on the channel is "<seq> <t|b><payload>": the number
 * the script gave it, then text or binary and the payload. Per room (bp_chan_t) the core
 * keeps the subscription's state, whether it has members here, the last number seen, and
 * the publishes waiting for the subscription to be confirmed (a node must not publish into
 * a channel before it hears it, or it would miss its own message). */
#include "backplane.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "room.h"
#include "worker.h"
#include "uringws/frame.h"

#define LINGER_MS 2000 /* a room without members stays subscribed this long */

static const char script[] = "local seq = redis.call('INCR', KEYS[1]) "
                             "redis.call('EXPIRE', KEYS[1], 604800) "
                             "redis.call('PUBLISH', KEYS[2], seq .. ' ' .. ARGV[1]) "
                             "return seq";

enum chan_state { IDLE, SUBSCRIBING, SUBSCRIBED, UNSUBSCRIBING };

typedef struct bp_chan {
    struct bp_chan *next;
    uint64_t hash;
    uint8_t len;
    uint8_t state;
    bool want;
    bool have_seq;
    uint64_t last_seq;
    uint64_t linger_until; /* 0: not lingering */
    ws_block_t **pend;     /* publishes waiting for the subscription */
    uint32_t npend, cap;
    char name[WS_ROOM_MAX + 1];
} bp_chan_t;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- the URL ------------------------------------------------------------------------- */

static int url_err(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "backplane: %s", why);
    return -EINVAL;
}

/* [user:pass@] into t; returns the rest. */
static const char *userinfo(const char *p, ws_redis_target_t *t, char *err, size_t errlen, int *rc)
{
    const char *at = strrchr(p, '@');
    *rc = 0;
    if (!at)
        return p;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    size_t ul = colon ? (size_t)(colon - p) : 0;
    const char *pw = colon ? colon + 1 : p;
    size_t pl = (size_t)(at - pw);
    if (ul >= sizeof t->user || pl >= sizeof t->pass || pl == 0) {
        *rc = url_err(err, errlen, "user or password too long, or empty password");
        return NULL;
    }
    memcpy(t->user, p, ul);
    memcpy(t->pass, pw, pl);
    return at + 1;
}

int ws_backplane_parse(const char *url, ws_redis_target_t *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (strncmp(url, "redis://", 8) != 0)
        return url_err(err, errlen, "the URL must be redis://[user:pass@]host:port[/db]");
    int rc;
    const char *p = userinfo(url + 8, t, err, errlen, &rc);
    if (!p)
        return rc;
    char host[128], port[8] = "6379";
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    if (hl == 0 || hl >= sizeof host)
        return url_err(err, errlen, "no host, or a host name too long");
    memcpy(host, p, hl);
    host[hl] = '\0';
    char *colon = strrchr(host, ':');
    if (host[0] == '[') { /* [v6]:port */
        char *close = strchr(host, ']');
        if (!close)
            return url_err(err, errlen, "unclosed [ in the host");
        colon = close[1] == ':' ? close + 1 : NULL;
        *close = '\0';
        memmove(host, host + 1, strlen(host));
    }
    if (colon) {
        *colon = '\0';
        if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port)
            return url_err(err, errlen, "bad port");
        strcpy(port, colon + 1);
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000000)
            return url_err(err, errlen, "bad database number");
        t->db = (int)db;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot resolve %.100s:%s: %s", host, port, gai_strerror(g));
        return url_err(err, errlen, why);
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(t->where, sizeof t->where, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    return 0;
}

/* ---- channels -------------------------------------------------------------------------- */

static bp_chan_t **slot(ws_backplane_t *bp, const char *name, size_t len, uint64_t h)
{
    bp_chan_t **pp = &bp->bucket[h % WS_BP_BUCKETS];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static bp_chan_t *chan_get(ws_backplane_t *bp, const char *name, size_t len, bool create)
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
    *pp = ch;
    bp->nchans++;
    return ch;
}

static void drop_pending(ws_backplane_t *bp, bp_chan_t *ch)
{
    for (uint32_t i = 0; i < ch->npend; i++) {
        ws_block_unref(ch->pend[i]);
        ws_metric_inc(&bp->c->m->bp_dropped);
    }
    ch->npend = 0;
}

/* Frees ch when nothing needs it: no members, no subscription, nothing waiting. */
static void chan_maybe_free(ws_backplane_t *bp, bp_chan_t *ch)
{
    if (ch->want || ch->state != IDLE || ch->npend)
        return;
    bp_chan_t **pp = slot(bp, ch->name, ch->len, ch->hash);
    *pp = ch->next;
    bp->nchans--;
    free(ch->pend);
    free(ch);
}

/* "<prefix>:<room>" (+ ":seq") into buf. */
static size_t chan_key(const ws_backplane_t *bp, const bp_chan_t *ch, bool seq, char *buf,
                       size_t cap)
{
    int n = snprintf(buf, cap, "%s:%.*s%s", bp->c->cfg->backplane_prefix, (int)ch->len, ch->name,
                     seq ? ":seq" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void subscribe(ws_backplane_t *bp, bp_chan_t *ch, bool on)
{
    char key[WS_ROOM_MAX + 80];
    size_t kl = chan_key(bp, ch, false, key, sizeof key);
    const char *argv[2] = {on ? "SUBSCRIBE" : "UNSUBSCRIBE", key};
    size_t lens[2] = {strlen(argv[0]), kl};
    if (ws_redis_command(&bp->sub, 2, argv, lens) < 0)
        return; /* down: the resubscription after the reconnect covers it */
    ch->state = on ? SUBSCRIBING : UNSUBSCRIBING;
}

/* ---- publishing ------------------------------------------------------------------------ */

static int dropped(ws_backplane_t *bp, ws_block_t *b, int rc)
{
    ws_metric_inc(&bp->c->m->bp_dropped);
    ws_block_unref(b);
    return rc;
}

static int eval(ws_backplane_t *bp, bp_chan_t *ch, ws_block_t *b)
{
    char seqkey[WS_ROOM_MAX + 80], chan[WS_ROOM_MAX + 80];
    size_t sl = chan_key(bp, ch, true, seqkey, sizeof seqkey);
    size_t cl = chan_key(bp, ch, false, chan, sizeof chan);
    size_t plen = b->len - b->header_len;
    /* The payload with its type in front: one copy here, one in the formatter. */
    char *arg = malloc(plen + 1);
    if (!arg)
        return dropped(bp, b, -ENOMEM);
    arg[0] = b->opcode == WS_OP_TEXT ? 't' : 'b';
    memcpy(arg + 1, b->data + b->header_len, plen);
    ws_block_unref(b);
    const char *argv[6] = {"EVAL", script, "2", seqkey, chan, arg};
    size_t lens[6] = {4, sizeof script - 1, 1, sl, cl, plen + 1};
    int rc = ws_redis_command(&bp->pub, 6, argv, lens);
    free(arg);
    if (rc < 0) {
        ws_metric_inc(&bp->c->m->bp_dropped);
        return rc;
    }
    if (bp->rtt_len == bp->rtt_cap) {
        uint32_t cap = bp->rtt_cap ? bp->rtt_cap * 2 : 256;
        uint64_t *v = malloc(cap * sizeof(*v));
        if (!v)
            return 0; /* only the round-trip metric misses this one */
        for (uint32_t i = 0; i < bp->rtt_len; i++)
            v[i] = bp->rtt[(bp->rtt_head + i) % bp->rtt_cap];
        free(bp->rtt);
        bp->rtt = v;
        bp->rtt_head = 0;
        bp->rtt_cap = cap;
    }
    bp->rtt[(bp->rtt_head + bp->rtt_len++) % bp->rtt_cap] = now_us();
    ws_metric_inc(&bp->c->m->bp_out);
    return 0;
}

int ws_backplane_publish(ws_backplane_t *bp, const char *name, size_t len, ws_block_t *b)
{
    if (bp->stopped || !ws_backplane_up(bp))
        return dropped(bp, b, -ENOTCONN);
    bp_chan_t *ch = chan_get(bp, name, len, true);
    if (!ch)
        return dropped(bp, b, -ENOMEM);
    /* With members here, nothing is published before the subscription is confirmed (an
     * UNSUBSCRIBE may still be in flight, or the SUBSCRIBE not sent yet): the node would
     * miss its own message. */
    if (ch->want && ch->state != SUBSCRIBED) {
        if (ch->npend == ch->cap) {
            uint32_t cap = ch->cap ? ch->cap * 2 : 8;
            ws_block_t **v = realloc(ch->pend, cap * sizeof(*v));
            if (!v)
                return dropped(bp, b, -ENOMEM);
            ch->pend = v;
            ch->cap = cap;
        }
        ch->pend[ch->npend++] = b;
        if (ch->state == IDLE)
            subscribe(bp, ch, true);
        return 0;
    }
    int rc = eval(bp, ch, b);
    chan_maybe_free(bp, ch);
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
    bp_chan_t *ch = chan_get(bp, name, len, on);
    if (!ch) {
        if (on)
            ws_log_error("backplane: out of memory: room '%.*s' is not subscribed", (int)len, name);
        return;
    }
    ch->want = on;
    if (on) {
        ch->linger_until = 0;
        if (ch->state == IDLE && ws_backplane_up(bp))
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
            if (ch->state == SUBSCRIBED)
                subscribe(bp, ch, false);
            chan_maybe_free(bp, ch);
        }
    }
    if (next != UINT64_MAX)
        arm_linger(bp, next);
}

/* ---- what Redis sends ------------------------------------------------------------------ */

/* The room may have missed messages: --backplane-gap. */
static void gap(ws_backplane_t *bp, bp_chan_t *ch, const char *why)
{
    ws_metric_inc(&bp->c->m->bp_gaps);
    bool close = bp->c->cfg->backplane_gap == WS_BACKPLANE_GAP_CLOSE;
    ws_log_warn("backplane: room '%s' may have missed messages (%s)%s", ch->name, why,
                close ? ": closing its members with 1012" : "");
    if (close)
        bp->ops->gap(bp->c, ch->name, ch->len);
}

/* The room's name in "<prefix>:<room>", or NULL. */
static const char *room_of(const ws_backplane_t *bp, const redisReply *chan, size_t *len)
{
    const char *prefix = bp->c->cfg->backplane_prefix;
    size_t pl = strlen(prefix);
    if (chan->type != REDIS_REPLY_STRING || chan->len <= pl + 1 ||
        memcmp(chan->str, prefix, pl) != 0 || chan->str[pl] != ':')
        return NULL;
    *len = chan->len - pl - 1;
    return *len <= WS_ROOM_MAX ? chan->str + pl + 1 : NULL;
}

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
        gap(bp, ch, why);
    }
    ch->have_seq = true;
    ch->last_seq = seq;
    const uint8_t *p = (const uint8_t *)sp + 2;
    size_t n = msg->len - (size_t)(sp - msg->str) - 2;
    ws_block_t *b = ws_block_frame(sp[1] == 't' ? WS_OP_TEXT : WS_OP_BINARY, p, n);
    if (!b) {
        gap(bp, ch, "out of memory for a message");
        return;
    }
    ws_metric_inc(&bp->c->m->frames_built);
    bp->ops->deliver(bp->c, ch->name, ch->len, seq, b);
}

static void confirmed(ws_backplane_t *bp, bp_chan_t *ch, bool subscribed)
{
    if (subscribed) {
        ch->state = SUBSCRIBED;
        ws_metric_inc(&bp->c->m->bp_subs);
        for (uint32_t i = 0; i < ch->npend; i++)
            (void)eval(bp, ch, ch->pend[i]); /* failures are counted there */
        ch->npend = 0;
        if (!ch->want && !ch->linger_until)
            subscribe(bp, ch, false);
        return;
    }
    ch->state = IDLE;
    ch->have_seq = false;
    ws_metric_sub(&bp->c->m->bp_subs, 1);
    if (ch->want)
        subscribe(bp, ch, true);
    else
        chan_maybe_free(bp, ch);
}

static void sub_reply(ws_worker_t *c, ws_redis_t *r, redisReply *rep)
{
    (void)c;
    ws_backplane_t *bp = r->owner;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING) {
        ws_log_error("backplane: unexpected reply on the subscription: type %d", rep->type);
        return;
    }
    const char *kind = rep->element[0]->str;
    size_t len;
    const char *name = room_of(bp, rep->element[1], &len);
    bp_chan_t *ch = name ? chan_get(bp, name, len, false) : NULL;
    if (!ch)
        return; /* a channel that is not ours (another prefix), or already forgotten */
    if (strcmp(kind, "message") == 0)
        message(bp, ch, rep->element[2]);
    else if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "unsubscribe") == 0)
        confirmed(bp, ch, kind[0] == 's');
}

static void pub_reply(ws_worker_t *c, ws_redis_t *r, redisReply *rep)
{
    ws_backplane_t *bp = r->owner;
    if (bp->rtt_len) {
        uint64_t t0 = bp->rtt[bp->rtt_head];
        bp->rtt_head = (bp->rtt_head + 1) % bp->rtt_cap;
        bp->rtt_len--;
        ws_metric_add(&c->m->bp_rtt_us, now_us() - t0);
        ws_metric_inc(&c->m->bp_rtt_count);
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        ws_metric_inc(&c->m->bp_dropped);
        ws_log_error("backplane: publish refused by Redis: %.200s", rep->str);
    }
}

/* ---- connections ----------------------------------------------------------------------- */

static void both_up(ws_backplane_t *bp)
{
    if (!bp->pub.up || !bp->sub.up)
        return;
    atomic_store_explicit(bp->up, true, memory_order_release);
    ws_metric_add(&bp->c->m->bp_up, 1);
    for (unsigned i = 0; i < WS_BP_BUCKETS; i++)
        for (bp_chan_t *ch = bp->bucket[i]; ch; ch = ch->next)
            if (ch->want && ch->state == IDLE)
                subscribe(bp, ch, true);
}

static void on_up(ws_worker_t *c, ws_redis_t *r)
{
    (void)c;
    both_up(r->owner);
}

/* Either connection lost: the other is ended too (its state is tied to this one's), every
 * room that was subscribed or had publishes in flight may have missed messages. */
static void on_down(ws_worker_t *c, ws_redis_t *r, const char *why)
{
    ws_backplane_t *bp = r->owner;
    if (atomic_exchange_explicit(bp->up, false, memory_order_acq_rel))
        ws_metric_sub(&c->m->bp_up, 1);
    ws_metric_inc(&c->m->bp_reconnects);
    ws_redis_t *other = r == &bp->pub ? &bp->sub : &bp->pub;
    if (other->target && other->fd >= 0)
        ws_redis_reset(other, "the other backplane connection was lost");
    bp->rtt_len = 0;
    for (unsigned i = 0; i < WS_BP_BUCKETS; i++) {
        for (bp_chan_t *ch = bp->bucket[i], *n; ch; ch = n) {
            n = ch->next;
            drop_pending(bp, ch);
            if (ch->state == SUBSCRIBED || ch->state == UNSUBSCRIBING)
                ws_metric_sub(&c->m->bp_subs, 1);
            bool had = ch->state != IDLE;
            ch->state = IDLE;
            ch->have_seq = false;
            if (had && ch->want && !bp->stopped)
                gap(bp, ch, why);
            chan_maybe_free(bp, ch);
        }
    }
}

static const ws_redis_ops_t pub_ops = {.up = on_up, .reply = pub_reply, .down = on_down};
static const ws_redis_ops_t sub_ops = {.up = on_up, .reply = sub_reply, .down = on_down};

ws_backplane_t *ws_backplane_new(ws_worker_t *c, const ws_redis_target_t *t,
                                 const ws_backplane_ops_t *ops, _Atomic bool *up)
{
    ws_backplane_t *bp = calloc(1, sizeof(*bp));
    if (!bp)
        return NULL;
    bp->up = up;
    bp->c = c;
    bp->ops = ops;
    bp->target = t;
    ws_timer_init(&bp->linger, on_linger);
    bp->pub.fd = bp->sub.fd = -1; /* on_down may look at the other before it starts */
    if (ws_redis_init(&bp->pub, c, t, &pub_ops, bp, "publish") < 0) {
        free(bp);
        return NULL;
    }
    if (ws_redis_init(&bp->sub, c, t, &sub_ops, bp, "subscribe") < 0) {
        ws_redis_close(&bp->pub);
        ws_worker_handler_del(c, bp->pub.kind);
        ws_redis_free(&bp->pub);
        free(bp);
        return NULL;
    }
    return bp;
}

void ws_backplane_stop(ws_backplane_t *bp)
{
    bp->stopped = true;
    if (atomic_exchange_explicit(bp->up, false, memory_order_acq_rel))
        ws_metric_sub(&bp->c->m->bp_up, 1);
    ws_timer_del(&bp->c->wheel, &bp->linger);
    ws_redis_close(&bp->pub);
    ws_redis_close(&bp->sub);
}

void ws_backplane_free(ws_backplane_t *bp)
{
    if (!bp)
        return;
    for (unsigned i = 0; i < WS_BP_BUCKETS; i++) {
        for (bp_chan_t *ch = bp->bucket[i], *n; ch; ch = n) {
            n = ch->next;
            for (uint32_t j = 0; j < ch->npend; j++)
                ws_block_unref(ch->pend[j]);
            free(ch->pend);
            free(ch);
        }
    }
    ws_redis_free(&bp->pub);
    ws_redis_free(&bp->sub);
    free(bp->rtt);
    free(bp);
}
