/* The per-core pool of block references. See bref.h. */
#include "bref.h"

#include <stdlib.h>
#include <string.h>

#define BREF_POOL_KEEP 4096 /* free brefs kept for reuse; more are returned to malloc */

void ws_bref_pool_init(ws_bref_pool_t *p)
{
    memset(p, 0, sizeof(*p));
}

void ws_bref_pool_free(ws_bref_pool_t *p)
{
    while (p->free) {
        ws_bref_t *r = p->free;
        p->free = r->next_free;
        free(r);
    }
    p->nfree = 0;
}

ws_bref_t *ws_bref_new(ws_bref_pool_t *p, ws_block_t *b, uint32_t refs)
{
    ws_bref_t *r = p->free;
    if (r) {
        p->free = r->next_free;
        p->nfree--;
    } else {
        r = malloc(sizeof(*r));
        if (!r)
            return NULL;
    }
    r->block = b;
    r->refs = refs;
    r->frames = 1;
    r->next_free = NULL;
    p->live++;
    return r;
}

void ws_bref_put(ws_bref_pool_t *p, ws_bref_t *r)
{
    if (--r->refs)
        return;
    ws_block_unref(r->block);
    r->block = NULL;
    p->live--;
    if (p->nfree >= BREF_POOL_KEEP) {
        free(r);
        return;
    }
    r->next_free = p->free;
    p->free = r;
    p->nfree++;
}
