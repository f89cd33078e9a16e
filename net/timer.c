/* Hashed timer wheel: slot = deadline tick modulo WS_WHEEL_SLOTS; timers a full turn or more
 * away share slots with nearer ones and are skipped until their deadline passes. */
#include "timer.h"

#include <string.h>

void ws_timer_wheel_init(ws_wheel_t *w, uint64_t now_ms, uint32_t tick_ms)
{
    memset(w, 0, sizeof(*w));
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->cur = now_ms / w->tick_ms;
}

static void link_head(ws_timer_t **head, ws_timer_t *t)
{
    t->next = *head;
    if (t->next)
        t->next->pprev = &t->next;
    *head = t;
    t->pprev = head;
}

static void unlink_timer(ws_timer_t *t)
{
    *t->pprev = t->next;
    if (t->next)
        t->next->pprev = t->pprev;
    t->next = NULL;
    t->pprev = NULL;
}

void ws_timer_add(ws_wheel_t *w, ws_timer_t *t, uint64_t deadline_ms)
{
    if (ws_timer_armed(t))
        unlink_timer(t);
    else
        w->count++;
    t->deadline = deadline_ms;
    uint64_t tick = deadline_ms / w->tick_ms;
    /* A slot behind the scan position would wait a whole turn: use the current one. */
    if (tick < w->cur)
        tick = w->cur;
    link_head(&w->slot[tick & (WS_WHEEL_SLOTS - 1)], t);
}

void ws_timer_del(ws_wheel_t *w, ws_timer_t *t)
{
    if (!ws_timer_armed(t))
        return;
    unlink_timer(t);
    w->count--;
}

size_t ws_timer_expire(ws_wheel_t *w, uint64_t now_ms)
{
    uint64_t now_tick = now_ms / w->tick_ms;
    size_t n = 0;
    if (now_tick < w->cur)
        return 0;
    uint64_t span = now_tick - w->cur + 1;
    if (span > WS_WHEEL_SLOTS)
        span = WS_WHEEL_SLOTS; /* every slot once is every timer once */
    for (uint64_t k = 0; k < span; k++) {
        ws_timer_t **pp = &w->slot[(w->cur + k) & (WS_WHEEL_SLOTS - 1)];
        while (*pp) {
            ws_timer_t *t = *pp;
            if (t->deadline <= now_ms) {
                unlink_timer(t); /* *pp now holds the successor */
                link_head(&w->expired, t);
                n++;
            } else {
                pp = &t->next;
            }
        }
    }
    /* The slot of now_tick is only partly elapsed: the next call scans it again. */
    w->cur = now_tick;
    return n;
}

ws_timer_t *ws_timer_pop_expired(ws_wheel_t *w)
{
    ws_timer_t *t = w->expired;
    if (!t)
        return NULL;
    unlink_timer(t);
    w->count--;
    return t;
}

size_t ws_timer_fire(ws_wheel_t *w, uint64_t now_ms, void *ctx)
{
    ws_timer_expire(w, now_ms);
    size_t n = 0;
    ws_timer_t *t;
    while ((t = ws_timer_pop_expired(w))) {
        t->fire(ctx, t);
        n++;
    }
    return n;
}
