/* Cross-core queues: FIFO order across many segments with a real producer and consumer
 * thread, segment recycling, and the wakeup protocol: the consumer sleeps whenever it finds
 * the queue empty and is woken only when ws_xcore_q_need_wake says so; a lost wakeup would leave
 * it asleep (caught by a timeout), and most batches must not need one. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <time.h>

#include "../net/xcore.h"
#include "check.h"

#define EVENTS    2000000u
#define BATCH_MAX 300u

static ws_xq_t q;
static sem_t wake;
static _Atomic unsigned wakes_sent;

static void *producer(void *arg)
{
    (void)arg;
    uint64_t seed = 12345;
    uint32_t next = 0;
    while (next < EVENTS) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t batch = 1 + (uint32_t)(seed >> 33) % BATCH_MAX;
        for (uint32_t i = 0; i < batch && next < EVENTS; i++, next++) {
            ws_xev_t ev = {.type = WS_XEV_PUBLISH,
                           .src = (uint16_t)(next & 0xffff),
                           .room = (struct ws_room *)(uintptr_t)next,
                           .block = NULL};
            ws_xcore_q_push(&q, &ev);
        }
        if (ws_xcore_q_need_wake(&q)) {
            atomic_fetch_add(&wakes_sent, 1);
            sem_post(&wake);
        }
    }
    return NULL;
}

int main(void)
{
    ws_xcore_q_init(&q);
    sem_init(&wake, 0, 0);
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, producer, NULL) == 0);
    uint32_t expect = 0;
    unsigned sleeps = 0;
    while (expect < EVENTS) {
        ws_xcore_q_rearm(&q);
        ws_xev_t ev;
        bool any = false;
        while (ws_xcore_q_pop(&q, &ev)) {
            any = true;
            if ((uint32_t)(uintptr_t)ev.room != expect || ev.src != (expect & 0xffff) ||
                ev.type != WS_XEV_PUBLISH) {
                fprintf(stderr, "out of order: got %u, expected %u\n", (unsigned)(uintptr_t)ev.room,
                        expect);
                return 1;
            }
            expect++;
        }
        if (any || expect == EVENTS)
            continue;
        /* Empty: sleep until the producer says it woke us. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        sleeps++;
        if (sem_timedwait(&wake, &ts) < 0 && errno == ETIMEDOUT) {
            fprintf(stderr, "lost wakeup: consumer asleep at %u of %u\n", expect, EVENTS);
            return 1;
        }
    }
    pthread_join(t, NULL);
    ws_xev_t ev;
    CHECK(!ws_xcore_q_pop(&q, &ev));
    CHECK_EQ_U(expect, EVENTS);
    printf("events %u, wakeups %u, consumer sleeps %u\n", EVENTS, atomic_load(&wakes_sent), sleeps);
    CHECK(atomic_load(&wakes_sent) <= EVENTS / 2);
    ws_xcore_q_free(&q);
    sem_destroy(&wake);

    /* ws_xcore_t: n*n queues, none for n == 1. */
    ws_xcore_t x;
    REQUIRE(ws_xcore_init(&x, 1) == 0);
    CHECK(x.q == NULL);
    ws_xcore_free(&x);
    REQUIRE(ws_xcore_init(&x, 3) == 0);
    ws_xev_t e1 = {.type = WS_XEV_JOIN, .src = 2, .room = NULL, .block = NULL};
    ws_xcore_q_push(ws_xcore_q(&x, 2, 0), &e1);
    CHECK(!ws_xcore_q_pop(ws_xcore_q(&x, 1, 0), &ev));
    CHECK(ws_xcore_q_pop(ws_xcore_q(&x, 2, 0), &ev) && ev.src == 2 && ev.type == WS_XEV_JOIN);
    ws_xcore_q_push(ws_xcore_q(&x, 0, 1), &e1); /* left queued: freed by ws_xcore_free */
    ws_xcore_free(&x);
    return check_exit_status("test_net_xcore");
}
