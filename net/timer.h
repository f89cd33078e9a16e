/* Hashed timer wheel for deadlines (a connection's handshake, ping, idle and close; any other
 * owner's). The core arms ONE io_uring timeout that ticks every tick_ms and calls
 * ws_timer_fire, which runs each due timer's callback; nobody gets its own timeout SQE. Add,
 * delete and re-arm are O(1); a tick costs the timers in the slots it passes. Each
 * connection keeps a single timer set to its earliest deadline and recomputes the next one
 * when it fires (lazy: activity does not touch the wheel). */
#ifndef URINGWS_NET_TIMER_H
#define URINGWS_NET_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ws_timer;
/* What a due timer runs: ctx is what the wheel's owner passes (the loop passes its worker);
 * the owner finds itself from t (container_of). */
typedef void ws_timer_fn(void *ctx, struct ws_timer *t);

/* Intrusive timer, embedded in its owner. pprev == NULL means not armed. */
typedef struct ws_timer {
    struct ws_timer *next;
    struct ws_timer **pprev;
    uint64_t deadline; /* ms, the clock the caller passes to ws_timer_expire */
    ws_timer_fn *fire; /* run by ws_timer_fire for each due timer */
} ws_timer_t;

#define WS_WHEEL_SLOTS 1024 /* power of two; at a 250 ms tick one turn is 256 s */

typedef struct ws_wheel {
    ws_timer_t *slot[WS_WHEEL_SLOTS];
    ws_timer_t *expired; /* due timers not yet popped */
    uint64_t tick_ms;
    uint64_t cur; /* tick index whose slot is scanned first by the next expire */
    size_t count; /* armed timers, expired list included */
} ws_wheel_t;

void ws_timer_wheel_init(ws_wheel_t *w, uint64_t now_ms, uint32_t tick_ms);

static inline void ws_timer_init(ws_timer_t *t, ws_timer_fn *fire)
{
    t->next = NULL;
    t->pprev = NULL;
    t->deadline = 0;
    t->fire = fire;
}

static inline bool ws_timer_armed(const ws_timer_t *t)
{
    return t->pprev != NULL;
}

/* Arms t for deadline_ms (re-arms it if it was armed). A deadline already past fires on the
 * next ws_timer_expire. */
void ws_timer_add(ws_wheel_t *w, ws_timer_t *t, uint64_t deadline_ms);
/* Disarms t; no-op when it is not armed (also removes it from the expired list). */
void ws_timer_del(ws_wheel_t *w, ws_timer_t *t);
/* Moves every timer whose deadline is <= now_ms to the expired list; returns how many. */
size_t ws_timer_expire(ws_wheel_t *w, uint64_t now_ms);
/* Pops one expired timer (disarmed), or NULL. Popping one at a time keeps it safe for the
 * handler of one timer to delete or re-arm any other. */
ws_timer_t *ws_timer_pop_expired(ws_wheel_t *w);
/* Expires what is due at now_ms and runs each timer's fire(ctx, t), one popped at a time;
 * returns how many ran. */
size_t ws_timer_fire(ws_wheel_t *w, uint64_t now_ms, void *ctx);

#endif
