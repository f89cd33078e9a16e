/* The Redis backplane of one core (net/backplane.c): rooms spanning nodes. A core talks to
 * Redis for the rooms it is the home of: it subscribes to a room's channel while the room
 * has members on any core of this node (unsubscribing after a linger when the last leaves),
 * publishes each message for the room through a Lua script that numbers it atomically and
 * PUBLISHes it, and delivers what comes back on the subscription, its own messages too, in
 * Redis's order. With a Redis Cluster, a room's channel and counter share a hash slot and
 * live on the master that serves it (sharded pub/sub). Gaps in the numbering, and lost
 * connections or subscriptions, apply --backplane-gap. The
 * layer above hears of messages and gaps only through the ops it handed in. */
#ifndef URINGWS_NET_BACKPLANE_H
#define URINGWS_NET_BACKPLANE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"
#include "uringws/block.h"
#include "uringws/server.h"

struct ws_worker;
struct bp_chan;

typedef struct ws_backplane_ops {
    /* A message for room name[0..len) from Redis, numbered seq; b is a frame (the callee's
     * reference). */
    void (*deliver)(struct ws_worker *c, const char *name, size_t len, uint64_t seq, ws_block_t *b);
    /* The room may have missed messages and --backplane-gap is close: close its members. */
    void (*gap)(struct ws_worker *c, const char *name, size_t len);
} ws_backplane_ops_t;

#define WS_BP_BUCKETS   4096
#define WS_BP_SEEDS_MAX 16

/* --backplane, parsed: one Redis (cluster false, seed[0]) or the seed nodes of a Cluster,
 * each with the URL's user and password. */
typedef struct ws_backplane_conf {
    bool cluster;
    unsigned nseeds;
    ws_redis_target_t seed[WS_BP_SEEDS_MAX];
} ws_backplane_conf_t;

struct bp_link;
struct ws_cluster_map;

typedef struct ws_backplane {
    struct ws_worker *c;
    const ws_backplane_ops_t *ops;
    const ws_backplane_conf_t *conf;
    _Atomic bool *up; /* every link up (the server's flag for this core: /healthz, and other
                         cores before they publish) */
    _Atomic uint8_t *slots_up; /* Cluster: the server's row for this core, a slot's master up */
    unsigned kind;             /* the handler kind of all its connections */
    const struct bp_link_ops *lops;
    /* Links: [0] for one Redis; one per Cluster master ever seen (closed when it no longer
     * serves slots), and the Cluster's map of slots to links. */
    struct bp_link **link;
    unsigned nlinks;
    uint16_t *slot_link;        /* [WS_CLUSTER_SLOTS]: index in link, or WS_CLUSTER_NO_NODE */
    struct ws_cluster_map *map; /* scratch for a CLUSTER SLOTS reply */
    bool have_map;
    /* Cluster: the topology connection, to a seed or a known master, rotating on failure. */
    ws_redis_t ctl;
    ws_redis_target_t ctl_target;
    unsigned ctl_next;
    bool ctl_asked;  /* CLUSTER SLOTS in flight */
    bool ctl_again;  /* ask again when it is answered (a redirection came meanwhile) */
    bool ctl_failed; /* the last answer was refused (logged once) */
    ws_timer_t refresh;
    struct bp_ring *reroute; /* bp_flight_t: publishes redirected, sent once the map is new */
    struct bp_chan *bucket[WS_BP_BUCKETS];
    uint32_t nchans;
    ws_timer_t linger; /* unsubscribes rooms whose linger passed */
    bool linger_armed;
    uint64_t refused_log_ms, refused_quiet; /* publishes refused: when to log next, unlogged */
    bool stopped;
} ws_backplane_t;

/* Parses --backplane (redis://[user:pass@]host:port[/db] or
 * redis-cluster://[user:pass@]host:port[,host:port...]) and resolves the hosts. 0, or
 * -EINVAL with why in err (never the password). */
int ws_backplane_parse(const char *url, ws_backplane_conf_t *conf, char *err, size_t errlen);

/* Starts core c's backplane (its connections). NULL without memory. */
ws_backplane_t *ws_backplane_new(struct ws_worker *c, const ws_backplane_conf_t *conf,
                                 const ws_backplane_ops_t *ops, _Atomic bool *up,
                                 _Atomic uint8_t *slots_up);
/* Stops (server stop): connections shut down, queued publishes dropped. */
void ws_backplane_stop(ws_backplane_t *bp);
void ws_backplane_free(ws_backplane_t *bp);

/* Whether a core's backplane is up, from its flag (any core may ask). */
static inline bool ws_backplane_flag_up(_Atomic bool *up)
{
    return atomic_load_explicit(up, memory_order_acquire);
}

static inline bool ws_backplane_up(const ws_backplane_t *bp)
{
    return ws_backplane_flag_up(bp->up);
}

/* The Cluster hash slot of room name[0..len)'s channel under prefix. */
unsigned ws_backplane_keyslot(const char *prefix, const char *name, size_t len);

/* Whether a publish into room name[0..len) can go through the backplane of the core whose
 * flags these are (any core may ask): every link up, or with a Cluster (slots not NULL)
 * the master of the room's slot. */
static inline bool ws_backplane_room_up(_Atomic bool *up, _Atomic uint8_t *slots,
                                        const char *prefix, const char *name, size_t len)
{
    if (!slots)
        return ws_backplane_flag_up(up);
    return atomic_load_explicit(&slots[ws_backplane_keyslot(prefix, name, len)],
                                memory_order_acquire) != 0;
}

/* The room's members on this node: present (on) or gone (off). */
void ws_backplane_watch(ws_backplane_t *bp, const char *name, size_t len, bool on);
/* Publishes frame b (takes the reference) into the room through Redis. 0, or -ENOTCONN while
 * the backplane is down, or -ENOMEM (the reference is dropped either way). */
int ws_backplane_publish(ws_backplane_t *bp, const char *name, size_t len, ws_block_t *b);

#endif
