/* Segmented SPSC queues between cores. The producer owns tail/tail_n, the consumer owns
 * head/head_i; they meet only through the segments' `count` and `next` (release/acquire),
 * the one-slot `spare` used to recycle a drained segment, and the wakeup flag. */
#include "xcore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ws_xcore_q_init(ws_xq_t *q)
{
    memset(q, 0, sizeof(*q));
    atomic_init(&q->first, NULL);
    atomic_init(&q->spare, NULL);
    atomic_init(&q->wake_pending, 0);
}

static ws_xseg_t *seg_new(ws_xq_t *q)
{
    ws_xseg_t *s = atomic_exchange_explicit(&q->spare, NULL, memory_order_acquire);
    if (!s) {
        s = malloc(sizeof(*s));
        if (!s) {
            static const char msg[] = "uringws: out of memory for a cross-core queue segment\n";
            ssize_t w = write(2, msg, sizeof(msg) - 1);
            (void)w;
            abort();
        }
    }
    atomic_init(&s->next, NULL);
    atomic_init(&s->count, 0);
    return s;
}

void ws_xcore_q_push(ws_xq_t *q, const ws_xev_t *ev)
{
    if (!q->tail) {
        q->tail = seg_new(q);
        q->tail_n = 0;
        q->tail->ev[0] = *ev;
        q->tail_n = 1;
        atomic_store_explicit(&q->tail->count, 1, memory_order_relaxed);
        /* Publishes the segment with its first event. */
        atomic_store_explicit(&q->first, q->tail, memory_order_release);
        return;
    }
    if (q->tail_n == WS_XSEG_EVENTS) {
        ws_xseg_t *s = seg_new(q);
        s->ev[0] = *ev;
        atomic_store_explicit(&s->count, 1, memory_order_relaxed);
        atomic_store_explicit(&q->tail->next, s, memory_order_release);
        q->tail = s;
        q->tail_n = 1;
        return;
    }
    q->tail->ev[q->tail_n++] = *ev;
    atomic_store_explicit(&q->tail->count, q->tail_n, memory_order_release);
}

bool ws_xcore_q_need_wake(ws_xq_t *q)
{
    /* Orders our count/next stores before reading the flag (pairs with ws_xcore_q_rearm). */
    atomic_thread_fence(memory_order_seq_cst);
    return atomic_exchange_explicit(&q->wake_pending, 1, memory_order_relaxed) == 0;
}

void ws_xcore_q_rearm(ws_xq_t *q)
{
    atomic_store_explicit(&q->wake_pending, 0, memory_order_relaxed);
    /* Orders the flag store before the drain's loads of count/next. */
    atomic_thread_fence(memory_order_seq_cst);
}

bool ws_xcore_q_pop(ws_xq_t *q, ws_xev_t *ev)
{
    if (!q->head) {
        q->head = atomic_load_explicit(&q->first, memory_order_acquire);
        q->head_i = 0;
        if (!q->head)
            return false;
    }
    for (;;) {
        uint32_t n = atomic_load_explicit(&q->head->count, memory_order_acquire);
        if (q->head_i < n) {
            *ev = q->head->ev[q->head_i++];
            return true;
        }
        if (q->head_i < WS_XSEG_EVENTS)
            return false; /* the producer has not filled this segment yet */
        ws_xseg_t *next = atomic_load_explicit(&q->head->next, memory_order_acquire);
        if (!next)
            return false;
        ws_xseg_t *done = q->head;
        q->head = next;
        q->head_i = 0;
        /* Offer the drained segment back to the producer; free whatever was there. */
        ws_xseg_t *old = atomic_exchange_explicit(&q->spare, done, memory_order_acq_rel);
        free(old);
    }
}

void ws_xcore_q_free(ws_xq_t *q)
{
    ws_xseg_t *s = atomic_load_explicit(&q->first, memory_order_acquire);
    /* Segments before head were already recycled or freed by the consumer. */
    if (q->head)
        s = q->head;
    while (s) {
        ws_xseg_t *next = atomic_load_explicit(&s->next, memory_order_acquire);
        free(s);
        s = next;
    }
    free(atomic_load_explicit(&q->spare, memory_order_acquire));
    ws_xcore_q_init(q);
}

int ws_xcore_init(ws_xcore_t *x, unsigned n)
{
    x->n = n;
    x->q = NULL;
    if (n < 2)
        return 0;
    x->q = aligned_alloc(64, sizeof(ws_xq_t) * (size_t)n * n);
    if (!x->q)
        return -ENOMEM;
    for (size_t i = 0; i < (size_t)n * n; i++)
        ws_xcore_q_init(&x->q[i]);
    return 0;
}

void ws_xcore_free(ws_xcore_t *x)
{
    if (x->q) {
        for (size_t i = 0; i < (size_t)x->n * x->n; i++)
            ws_xcore_q_free(&x->q[i]);
    }
    free(x->q);
    x->q = NULL;
    x->n = 0;
}
