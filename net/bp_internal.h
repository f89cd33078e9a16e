/* What the files of the backplane module share (net/backplane.h): backplane.c (membership,
 * subscriptions, what Redis sends), bp_publish.c (publishes and their replies, redirections),
 * bp_links.c (the connections: one Redis, or one pair per Cluster master and the topology),
 * bp_chan.c (the room channels, the gap policy, a small ring) and bp_url.c (the URL). */
#ifndef URINGWS_NET_BP_INTERNAL_H
#define URINGWS_NET_BP_INTERNAL_H

#include "backplane.h"
#include "uringws/handshake.h"

struct redisReply;

/* A ring of fixed-size elements (the replies a connection still owes us, in order). */
typedef struct bp_ring {
    char *v;
    uint32_t head, len, cap, size;
} bp_ring_t;

enum bp_chan_state { BP_IDLE, BP_SUBSCRIBING, BP_SUBSCRIBED, BP_UNSUBSCRIBING };

typedef struct bp_chan {
    struct bp_chan *next;
    uint64_t hash;
    uint8_t len;
    uint8_t state;
    bool want; /* members on this node */
    bool have_seq;
    uint16_t slot;        /* the Cluster hash slot of the channel */
    uint32_t inflight;    /* publishes awaiting Redis's reply or a new route */
    struct bp_link *link; /* where the subscription is (state not BP_IDLE) */
    uint64_t last_seq;
    uint64_t linger_until; /* 0: not lingering */
    ws_block_t **pend;     /* publishes waiting for the subscription */
    uint32_t npend, cap;
    char name[WS_ROOM_MAX + 1];
} bp_chan_t;

/* A publish sent (or to be sent again): its frame is kept until Redis has numbered it. */
typedef struct bp_flight {
    bp_chan_t *ch;
    ws_block_t *b; /* NULL: the ASKING before a redirected publish */
    uint64_t t0;   /* microseconds, when first sent */
    uint32_t tries;
} bp_flight_t;

/* The two connections to one Redis (or Cluster master): publishes and subscriptions. */
typedef struct bp_link {
    ws_backplane_t *bp;
    ws_redis_target_t target;
    ws_redis_t pub, sub;
    unsigned idx;     /* in bp->link */
    bool open;        /* serves slots of the current topology (always, for one Redis) */
    bool up;          /* both connections up */
    bp_ring_t subq;   /* bp_chan_t *: (S)SUBSCRIBE/(S)UNSUBSCRIBE awaiting their reply */
    bp_ring_t flight; /* bp_flight_t: EVALs (and ASKINGs) awaiting their reply */
} bp_link_t;

/* How the links report to backplane.c and bp_publish.c. */
typedef struct bp_link_ops {
    void (*up)(bp_link_t *l);
    void (*down)(bp_link_t *l, const char *why); /* also: closed, no longer a master */
    void (*sub_reply)(bp_link_t *l, struct redisReply *rep);
    void (*pub_reply)(bp_link_t *l, struct redisReply *rep);
    void (*topology)(ws_backplane_t *bp); /* a new Cluster map is in place */
} bp_link_ops_t;

/* bp_chan.c */
int ws__bp_ring_push(bp_ring_t *r, const void *elem);
void *ws__bp_ring_front(bp_ring_t *r); /* NULL: empty */
void ws__bp_ring_pop(bp_ring_t *r);
void ws__bp_ring_free(bp_ring_t *r);
bp_chan_t *ws__bp_chan_get(ws_backplane_t *bp, const char *name, size_t len, bool create);
void ws__bp_chan_maybe_free(ws_backplane_t *bp, bp_chan_t *ch);
void ws__bp_chan_drop_pending(ws_backplane_t *bp, bp_chan_t *ch);
size_t ws__bp_chan_key(const ws_backplane_t *bp, const bp_chan_t *ch, bool seq, char *buf,
                       size_t cap);
const char *ws__bp_chan_room(const ws_backplane_t *bp, const struct redisReply *chan, size_t *len);
void ws__bp_chan_gap(ws_backplane_t *bp, bp_chan_t *ch, const char *why);
void ws__bp_chan_free_all(ws_backplane_t *bp);

/* bp_links.c */
int ws__bp_links_start(ws_backplane_t *bp, const bp_link_ops_t *ops);
bp_link_t *ws__bp_link_for(ws_backplane_t *bp, const bp_chan_t *ch); /* NULL: no route */
bp_link_t *ws__bp_link_find(ws_backplane_t *bp, const char *host, int port);
void ws__bp_links_refresh(ws_backplane_t *bp); /* asks the Cluster for its map again */
bool ws__bp_links_all_up(const ws_backplane_t *bp);
void ws__bp_links_stop(ws_backplane_t *bp);
void ws__bp_links_free(ws_backplane_t *bp);

/* bp_publish.c */
uint64_t ws__bp_now_us(void);
int ws__bp_publish_send(ws_backplane_t *bp, bp_chan_t *ch, ws_block_t *b);
void ws__bp_publish_reply(bp_link_t *l, struct redisReply *rep);
void ws__bp_publish_link_down(bp_link_t *l);
void ws__bp_publish_reroute(ws_backplane_t *bp);
void ws__bp_publish_free(ws_backplane_t *bp);

/* bp_url.c: a numeric host (as a Cluster announces its nodes) into t; -EINVAL for a name. */
int ws__bp_target_numeric(ws_redis_target_t *t, const char *host, int port);
/* "host:port", or "[host]:port" for IPv6: a target's `where`, what links are found by. */
void ws__bp_where(char *buf, size_t cap, const char *host, const char *port);

#endif
