/* Timer wheel: timers fire at the first expire at or after their deadline (never before),
 * across turns of the wheel, after re-arming and deletion, including deletion of a timer
 * already on the expired list; a large random schedule matches a brute-force model;
 * ws_timer_fire runs each due timer's callback with the caller's context, and a callback may
 * re-arm its own timer or disarm another due one. */
#include <stddef.h>
#include <string.h>

#include "../net/timer.h"
#include "check.h"

#define N 2000

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void basic(void)
{
    ws_wheel_t w;
    ws_timer_wheel_init(&w, 1000, 250);
    ws_timer_t a, b, c;
    ws_timer_init(&a, NULL);
    ws_timer_init(&b, NULL);
    ws_timer_init(&c, NULL);
    CHECK(!ws_timer_armed(&a));
    ws_timer_add(&w, &a, 1500);
    ws_timer_add(&w, &b, 1000 + 250 * WS_WHEEL_SLOTS + 100); /* more than a turn away */
    ws_timer_add(&w, &c, 900);                               /* already due */
    CHECK_EQ_U(w.count, 3);
    CHECK_EQ_U(ws_timer_expire(&w, 1100), 1);
    CHECK(ws_timer_pop_expired(&w) == &c);
    CHECK(ws_timer_pop_expired(&w) == NULL);
    CHECK(!ws_timer_armed(&c));
    CHECK_EQ_U(ws_timer_expire(&w, 1499), 0);
    CHECK_EQ_U(ws_timer_expire(&w, 1500), 1);
    CHECK(ws_timer_pop_expired(&w) == &a);
    /* b shares slots with nearer deadlines for a whole turn but must not fire early. */
    for (uint64_t t = 1500; t < 1000 + 250 * WS_WHEEL_SLOTS + 100; t += 250)
        CHECK_EQ_U(ws_timer_expire(&w, t), 0);
    CHECK_EQ_U(ws_timer_expire(&w, 1000 + 250 * WS_WHEEL_SLOTS + 100), 1);
    CHECK(ws_timer_pop_expired(&w) == &b);
    CHECK_EQ_U(w.count, 0);

    /* Re-arming moves a timer; deleting one on the expired list takes it off. */
    ws_timer_add(&w, &a, 400000);
    ws_timer_add(&w, &a, 300000);
    ws_timer_add(&w, &b, 300000);
    CHECK_EQ_U(w.count, 2);
    CHECK_EQ_U(ws_timer_expire(&w, 300000), 2);
    ws_timer_del(&w, &b);
    CHECK(ws_timer_pop_expired(&w) == &a);
    CHECK(ws_timer_pop_expired(&w) == NULL);
    CHECK_EQ_U(w.count, 0);
    ws_timer_del(&w, &b); /* not armed: no-op */
    CHECK_EQ_U(w.count, 0);
}

static void model(void)
{
    static ws_timer_t t[N];
    static uint64_t deadline[N];
    static int armed[N];
    ws_wheel_t w;
    uint64_t now = 5000;
    ws_timer_wheel_init(&w, now, 100);
    for (int i = 0; i < N; i++)
        ws_timer_init(&t[i], NULL);
    memset(armed, 0, sizeof(armed));
    for (int step = 0; step < 20000; step++) {
        int i = (int)(rnd() % N);
        switch (rnd() % 4) {
        case 0:
        case 1: /* (re)arm: mostly near, sometimes beyond a turn, sometimes in the past */
            deadline[i] = now + (rnd() % 4 == 0 ? rnd() % 300000 : rnd() % 5000) - 200;
            ws_timer_add(&w, &t[i], deadline[i]);
            armed[i] = 1;
            break;
        case 2:
            ws_timer_del(&w, &t[i]);
            armed[i] = 0;
            break;
        default: {
            now += rnd() % 700;
            ws_timer_expire(&w, now);
            ws_timer_t *e;
            while ((e = ws_timer_pop_expired(&w))) {
                int k = (int)(e - t);
                CHECK(armed[k]);
                CHECK(deadline[k] <= now);
                armed[k] = 0;
            }
            /* Everything still armed must be in the future. */
            for (int k = 0; k < N; k++)
                if (armed[k])
                    CHECK(deadline[k] > now);
            break;
        }
        }
    }
    size_t count = 0;
    for (int k = 0; k < N; k++)
        count += armed[k];
    CHECK_EQ_U(w.count, count);
}

/* Owners of timers for fire(): each records what ran and does one thing to the wheel. */
typedef struct owner {
    ws_timer_t timer;
    ws_timer_t *victim; /* disarmed when this one fires */
    uint64_t rearm;     /* re-armed for this deadline once, when nonzero */
    int fired;
} owner_t;

static void on_fire(void *ctx, ws_timer_t *t)
{
    ws_wheel_t *w = ctx;
    owner_t *o = (owner_t *)((char *)t - offsetof(owner_t, timer));
    o->fired++;
    if (o->victim)
        ws_timer_del(w, o->victim);
    if (o->rearm) {
        ws_timer_add(w, t, o->rearm);
        o->rearm = 0;
    }
}

static void callbacks(void)
{
    ws_wheel_t w;
    ws_timer_wheel_init(&w, 0, 100);
    owner_t a = {0}, b = {0}, c = {0};
    ws_timer_init(&a.timer, on_fire);
    ws_timer_init(&b.timer, on_fire);
    ws_timer_init(&c.timer, on_fire);
    a.victim = &b.timer; /* both due at 500: whichever runs first, b must not run after a */
    a.rearm = 900;
    ws_timer_add(&w, &a.timer, 500);
    ws_timer_add(&w, &b.timer, 500);
    ws_timer_add(&w, &c.timer, 700);
    CHECK_EQ_U(ws_timer_fire(&w, 400, &w), 0);
    size_t ran = ws_timer_fire(&w, 600, &w);
    CHECK_EQ_U(a.fired, 1);
    CHECK(ran == 1 || ran == 2);
    CHECK_EQ_U((size_t)(1 + b.fired), ran); /* b ran only if it came before a */
    CHECK(!ws_timer_armed(&b.timer));
    CHECK(ws_timer_armed(&a.timer)); /* re-armed from its own callback */
    CHECK_EQ_U(ws_timer_fire(&w, 899, &w), 1);
    CHECK_EQ_U(c.fired, 1);
    a.victim = NULL;
    CHECK_EQ_U(ws_timer_fire(&w, 900, &w), 1);
    CHECK_EQ_U(a.fired, 2);
    CHECK_EQ_U(w.count, 0);
}

int main(void)
{
    basic();
    model();
    callbacks();
    return check_exit_status("test_net_timer");
}
