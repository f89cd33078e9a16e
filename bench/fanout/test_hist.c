/* Unit test of the fan-out generator's histogram (bench/fanout/hist.c): exact below 128 us,
 * under 1% error above, quantiles by rank, merging by addition, exact max. */
#include <stdint.h>

#include "../../tests/check.h"
#include "hist.h"

static ws_hist_t a, b;

int main(void)
{
    /* Exact region: 1..100 once each, p50 is 50 and p99 is 99. */
    ws_hist_reset(&a);
    for (uint64_t v = 1; v <= 100; v++)
        ws_hist_record(&a, v);
    CHECK_EQ_U(a.count, 100);
    CHECK_EQ_U(ws_hist_quantile(&a, 0.5), 50);
    CHECK_EQ_U(ws_hist_quantile(&a, 0.99), 99);
    CHECK_EQ_U(ws_hist_quantile(&a, 1.0), 100);

    /* Every value reads back within 1% (the bucket's upper edge, capped at max). */
    for (uint64_t v = 1; v < (1ull << 36); v += v / 7 + 1) {
        ws_hist_reset(&b);
        ws_hist_record(&b, v);
        ws_hist_record(&b, 1ull << 37); /* keeps max above v so the cap does not hide error */
        uint64_t got = ws_hist_quantile(&b, 0.5);
        CHECK(got >= v);
        CHECK((double)(got - v) <= (double)v * 0.01);
    }

    /* Merge: two halves give the quantiles of the whole; max is exact. */
    ws_hist_reset(&a);
    ws_hist_reset(&b);
    for (uint64_t v = 1; v <= 10000; v++)
        ws_hist_record(v % 2 ? &a : &b, v * 10);
    ws_hist_record(&b, 123457);
    ws_hist_merge(&a, &b);
    CHECK_EQ_U(a.count, 10001);
    CHECK_EQ_U(a.max_us, 123457);
    CHECK_EQ_U(ws_hist_quantile(&a, 1.0), 123457);
    uint64_t p50 = ws_hist_quantile(&a, 0.5), p99 = ws_hist_quantile(&a, 0.99);
    CHECK(p50 >= 50000 && p50 <= 50500);
    CHECK(p99 >= 99000 && p99 <= 100000);

    /* Empty histogram: 0, not garbage. */
    ws_hist_reset(&b);
    CHECK_EQ_U(ws_hist_quantile(&b, 0.99), 0);
    return check_exit_status("test_fanout_hist");
}
