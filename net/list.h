/* Intrusive doubly linked lists. ws_dlink_t (hlist style: head pointer plus pprev) for room
 * members and the per-core list of connections with end-of-iteration work; ws_qlink_t (a
 * ring around a sentinel) where the oldest entry is wanted: the per-core FIFO of connections
 * still sending their request head. O(1) insert and remove; a node knows whether it is
 * linked. */
#ifndef URINGWS_NET_LIST_H
#define URINGWS_NET_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ws_dlink {
    struct ws_dlink *next;
    struct ws_dlink **pprev; /* NULL when not linked */
} ws_dlink_t;

#define ws_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void ws_dlink_init(ws_dlink_t *n)
{
    n->next = NULL;
    n->pprev = NULL;
}

static inline bool ws_dlink_linked(const ws_dlink_t *n)
{
    return n->pprev != NULL;
}

static inline void ws_dlink_push(ws_dlink_t **head, ws_dlink_t *n)
{
    n->next = *head;
    if (n->next)
        n->next->pprev = &n->next;
    *head = n;
    n->pprev = head;
}

static inline void ws_dlink_remove(ws_dlink_t *n)
{
    if (!n->pprev)
        return;
    *n->pprev = n->next;
    if (n->next)
        n->next->pprev = n->pprev;
    n->next = NULL;
    n->pprev = NULL;
}

/* Removes and returns the first node, or NULL. */
static inline ws_dlink_t *ws_dlink_pop(ws_dlink_t **head)
{
    ws_dlink_t *n = *head;
    if (n)
        ws_dlink_remove(n);
    return n;
}

/* FIFO ring: the sentinel's next is the oldest node, its prev the newest. A node that is
 * not linked has next == NULL. */
typedef struct ws_qlink {
    struct ws_qlink *next, *prev;
} ws_qlink_t;

static inline void ws_qlink_init_head(ws_qlink_t *h)
{
    h->next = h->prev = h;
}

static inline void ws_qlink_init(ws_qlink_t *n)
{
    n->next = n->prev = NULL;
}

static inline bool ws_qlink_linked(const ws_qlink_t *n)
{
    return n->next != NULL;
}

static inline void ws_qlink_push_tail(ws_qlink_t *h, ws_qlink_t *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void ws_qlink_remove(ws_qlink_t *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

/* The oldest node, or NULL when the ring is empty. */
static inline ws_qlink_t *ws_qlink_first(ws_qlink_t *h)
{
    return h->next == h ? NULL : h->next;
}

#endif
