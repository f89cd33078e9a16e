/* Intrusive doubly linked list (hlist style: head pointer plus pprev), used for room
 * members and the per-core list of connections with end-of-iteration work. O(1) insert and
 * remove; a node knows whether it is linked. */
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

#endif
