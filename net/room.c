/* Room structs and the per-core name -> room hash map (chained, doubling at load 1). */
#include "room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ROOMMAP_INITIAL 64

uint64_t ws_room_hash(const char *name, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 0x100000001b3ull;
    }
    /* FNV's high bits mix poorly for short keys; the home core comes from them. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

ws_room_t *ws_room_new(const char *name, size_t len, unsigned ncores, unsigned self)
{
    if (len == 0 || len > WS_ROOM_MAX)
        return NULL;
    ws_room_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    memcpy(r->name, name, len);
    r->name[len] = '\0';
    r->name_len = (uint8_t)len;
    r->hash = ws_room_hash(name, len);
    r->home = (uint16_t)ws_room_home(r->hash, ncores);
    if (r->home == self) {
        r->peer = calloc(ncores, sizeof(*r->peer));
        if (!r->peer) {
            free(r);
            return NULL;
        }
    }
    return r;
}

void ws_room_free(ws_room_t *r)
{
    if (!r)
        return;
    ws_dlink_remove(&r->batch_link);
    if (r->batch)
        ws_block_unref(r->batch);
    free(r->peer);
    free(r);
}

int ws_room_map_init(ws_roommap_t *m)
{
    m->count = 0;
    m->nbuckets = ROOMMAP_INITIAL;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    return m->buckets ? 0 : -ENOMEM;
}

void ws_room_map_free(ws_roommap_t *m)
{
    for (uint32_t i = 0; m->buckets && i < m->nbuckets; i++) {
        ws_room_t *r = m->buckets[i];
        while (r) {
            ws_room_t *next = r->hnext;
            ws_room_free(r);
            r = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

ws_room_t *ws_room_find(const ws_roommap_t *m, uint64_t hash, const char *name, size_t len)
{
    for (ws_room_t *r = m->buckets[hash & (m->nbuckets - 1)]; r; r = r->hnext) {
        if (r->hash == hash && r->name_len == len && memcmp(r->name, name, len) == 0)
            return r;
    }
    return NULL;
}

static int grow(ws_roommap_t *m)
{
    uint32_t n = m->nbuckets * 2;
    ws_room_t **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (uint32_t i = 0; i < m->nbuckets; i++) {
        ws_room_t *r = m->buckets[i];
        while (r) {
            ws_room_t *next = r->hnext;
            ws_room_t **slot = &b[r->hash & (n - 1)];
            r->hnext = *slot;
            *slot = r;
            r = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
    return 0;
}

int ws_room_insert(ws_roommap_t *m, ws_room_t *r)
{
    int rc = 0;
    if (m->count >= m->nbuckets)
        rc = grow(m);
    ws_room_t **slot = &m->buckets[r->hash & (m->nbuckets - 1)];
    r->hnext = *slot;
    *slot = r;
    m->count++;
    return rc;
}

void ws_room_remove(ws_roommap_t *m, ws_room_t *r)
{
    ws_room_t **pp = &m->buckets[r->hash & (m->nbuckets - 1)];
    while (*pp && *pp != r)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = r->hnext;
        r->hnext = NULL;
        m->count--;
    }
}
