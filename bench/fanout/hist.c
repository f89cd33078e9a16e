/* Log-linear histogram for the fan-out load generator; see hist.h. */
#include "hist.h"

#include <string.h>

void ws_hist_reset(ws_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

/* Largest value that maps to bucket `idx`. */
static uint64_t hist_upper(unsigned idx)
{
    if (idx < WS_HIST_SUB)
        return idx;
    unsigned e = idx / WS_HIST_SUB - 1 + WS_HIST_SUB_BITS;
    uint64_t sub = idx % WS_HIST_SUB;
    uint64_t base = (1ull << e) | (sub << (e - WS_HIST_SUB_BITS));
    return base + (1ull << (e - WS_HIST_SUB_BITS)) - 1;
}

void ws_hist_merge(ws_hist_t *into, const ws_hist_t *from)
{
    for (unsigned i = 0; i < WS_HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
    into->count += from->count;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

uint64_t ws_hist_quantile(const ws_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < WS_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = hist_upper(i);
            return v < h->max_us ? v : h->max_us;
        }
    }
    return h->max_us;
}
