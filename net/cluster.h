/* Redis Cluster arithmetic (net/cluster.c): which of the 16384 hash slots a key belongs to
 * (CRC16 of the key or of its {hash tag}), the topology in a CLUSTER SLOTS reply, and the
 * target of a MOVED or ASK redirection. Pure functions: no I/O, no state. */
#ifndef URINGWS_NET_CLUSTER_H
#define URINGWS_NET_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct redisReply;

#define WS_CLUSTER_SLOTS     16384
#define WS_CLUSTER_NODES_MAX 128 /* masters one topology may name */
#define WS_CLUSTER_NO_NODE   0xffff

typedef struct ws_cluster_node {
    char host[64]; /* as announced: an IPv4 or IPv6 address ("" in the reply: the node asked) */
    int port;
} ws_cluster_node_t;

typedef struct ws_cluster_map {
    unsigned nnodes;
    ws_cluster_node_t node[WS_CLUSTER_NODES_MAX];
    uint16_t slot[WS_CLUSTER_SLOTS]; /* master index, or WS_CLUSTER_NO_NODE */
} ws_cluster_map_t;

/* The hash slot of key[0..len). */
unsigned ws_cluster_keyslot(const char *key, size_t len);

/* The masters of a CLUSTER SLOTS reply into m. 0; -EBADMSG for a reply of another shape;
 * -E2BIG past WS_CLUSTER_NODES_MAX masters. Slots the reply leaves out have no node. */
int ws_cluster_parse_slots(const struct redisReply *rep, ws_cluster_map_t *m);

/* "MOVED <slot> <host>:<port>" or "ASK ...": 1 for MOVED, 2 for ASK, with the node in *n;
 * 0 for any other error text. */
int ws_cluster_parse_redirect(const char *err, size_t len, ws_cluster_node_t *n);

#endif
