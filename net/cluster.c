/* Redis Cluster arithmetic (net/cluster.h). The slot is CRC16/XMODEM (polynomial 0x1021, no
 * reflection, initial 0) modulo 16384 of the key, or of the part between the first '{' and
 * the first '}' after it when that part is not empty: the rule of the Redis Cluster
 * specification, so that "<prefix>:{room}" and "<prefix>:{room}:seq" share a slot. */
#include "cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint8_t)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

unsigned ws_cluster_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) % WS_CLUSTER_SLOTS;
    }
    return crc16(key, len) % WS_CLUSTER_SLOTS;
}

static int node_index(ws_cluster_map_t *m, const redisReply *addr, const redisReply *port)
{
    if (addr->type != REDIS_REPLY_STRING || port->type != REDIS_REPLY_INTEGER ||
        addr->len >= sizeof m->node[0].host || port->integer <= 0 || port->integer > 65535)
        return -EBADMSG;
    for (unsigned i = 0; i < m->nnodes; i++)
        if (m->node[i].port == port->integer && strcmp(m->node[i].host, addr->str) == 0)
            return (int)i;
    if (m->nnodes == WS_CLUSTER_NODES_MAX)
        return -E2BIG;
    ws_cluster_node_t *n = &m->node[m->nnodes];
    memcpy(n->host, addr->str, addr->len);
    n->host[addr->len] = '\0';
    n->port = (int)port->integer;
    return (int)m->nnodes++;
}

/* Each element: [first slot, last slot, [master host, port, id, ...], replicas...]. */
int ws_cluster_parse_slots(const redisReply *rep, ws_cluster_map_t *m)
{
    m->nnodes = 0;
    memset(m->slot, 0xff, sizeof m->slot);
    if (rep->type != REDIS_REPLY_ARRAY)
        return -EBADMSG;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *r = rep->element[i];
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER ||
            r->element[2]->type != REDIS_REPLY_ARRAY || r->element[2]->elements < 2)
            return -EBADMSG;
        long long lo = r->element[0]->integer, hi = r->element[1]->integer;
        if (lo < 0 || hi < lo || hi >= WS_CLUSTER_SLOTS)
            return -EBADMSG;
        int idx = node_index(m, r->element[2]->element[0], r->element[2]->element[1]);
        if (idx < 0)
            return idx;
        for (long long s = lo; s <= hi; s++)
            m->slot[s] = (uint16_t)idx;
    }
    return 0;
}

int ws_cluster_parse_redirect(const char *err, size_t len, ws_cluster_node_t *n)
{
    int kind = len > 6 && memcmp(err, "MOVED ", 6) == 0 ? 1
               : len > 4 && memcmp(err, "ASK ", 4) == 0 ? 2
                                                        : 0;
    if (!kind)
        return 0;
    size_t word = kind == 1 ? 6 : 4;
    const char *sp = memchr(err + word, ' ', len - word); /* after the slot */
    const char *colon = sp ? memrchr(sp, ':', (size_t)(err + len - sp)) : NULL;
    if (!sp || !colon || colon == sp + 1 || (size_t)(colon - sp - 1) >= sizeof n->host)
        return 0;
    char port[8];
    size_t pl = (size_t)(err + len - colon - 1);
    if (pl == 0 || pl >= sizeof port)
        return 0;
    memcpy(port, colon + 1, pl);
    port[pl] = '\0';
    char *end;
    long v = strtol(port, &end, 10);
    if (*end || v <= 0 || v > 65535)
        return 0;
    memcpy(n->host, sp + 1, (size_t)(colon - sp - 1));
    n->host[colon - sp - 1] = '\0';
    n->port = (int)v;
    return kind;
}
