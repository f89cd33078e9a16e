/* Log-linear latency histogram (HDR-style) for the fan-out load generator: microsecond
 * resolution up to 127 us, then 128 sub-buckets per power of two (under 1% error). It is a
 * flat array of counters so that worker processes can fill it in shared memory and the
 * parent can merge them by addition. It must not allocate. */
#ifndef URINGWS_BENCH_FANOUT_HIST_H
#define URINGWS_BENCH_FANOUT_HIST_H

#include <stdint.h>

#define WS_HIST_SUB_BITS 7
#define WS_HIST_SUB      (1u << WS_HIST_SUB_BITS)
/* Values up to 2^40 us (12 days) are kept; larger ones land in the last bucket. */
#define WS_HIST_BUCKETS (WS_HIST_SUB * (40 - WS_HIST_SUB_BITS + 1))

typedef struct ws_hist {
    uint64_t count;
    uint64_t max_us;
    uint64_t bucket[WS_HIST_BUCKETS];
} ws_hist_t;

void ws_hist_reset(ws_hist_t *h);

/* Inline: a worker records every delivery, tens of millions per second. */
static inline unsigned ws_hist_index(uint64_t v)
{
    if (v < WS_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= WS_HIST_SUB_BITS */
    unsigned sub = (unsigned)(v >> (e - WS_HIST_SUB_BITS)) & (WS_HIST_SUB - 1);
    unsigned idx = (e - WS_HIST_SUB_BITS + 1) * WS_HIST_SUB + sub;
    return idx < WS_HIST_BUCKETS ? idx : WS_HIST_BUCKETS - 1;
}

static inline void ws_hist_record(ws_hist_t *h, uint64_t us)
{
    h->bucket[ws_hist_index(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

/* Adds every counter of `from` into `into`. */
void ws_hist_merge(ws_hist_t *into, const ws_hist_t *from);
/* Value at quantile q (0..1): the upper edge of the bucket holding it, capped at max_us so
 * that p100 is the exact maximum. 0 when the histogram is empty. */
uint64_t ws_hist_quantile(const ws_hist_t *h, double q);

#endif
