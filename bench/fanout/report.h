/* What a fan-out run reports: the workers' results merged per measurement, the steps of a
 * saturation search, and the two ways of printing them (a table, or one JSON object). The
 * printing reads these structs only; it must not decide anything about the run. */
#ifndef URINGWS_BENCH_FANOUT_REPORT_H
#define URINGWS_BENCH_FANOUT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fanout.h"

/* Above this fraction of one core a worker may be what limits the result. It is compared
 * with the worker's CPU use and, when the worker is pinned to one CPU, with how busy that CPU
 * was in all (/proc/stat, softirq and steal included): a worker whose CPU was 90% busy is
 * short of CPU whether it used the time itself or another process or the hypervisor did.
 * Run-queue wait (schedstat) is not used: on a VM it mostly measures wake-up latency from
 * idle, which a busy worker does not pay. */
#define WS_FO_SATURATED_CPU 0.90

/* Everything one measurement produced, merged over the workers. */
typedef struct ws_fo_totals {
    uint64_t connected, err_connect, err_handshake, err_closed;
    uint64_t scheduled, dropped, expected, deliveries, rounds;
    double cpu_max;    /* highest CPU use of one worker, fraction of a core */
    double demand_max; /* highest of: a worker's CPU use, how busy its pinned CPU was */
    bool busy_known;   /* some worker was pinned to one CPU, so demand_max saw its load */
    int64_t connect_done_ns;
    ws_hist_t latency, round;
    ws_fo_close_count_t closes[WS_FO_CLOSE_CODES * WS_FO_MAX_PROCS];
    unsigned nclose;
} ws_fo_totals_t;

/* One measured interval of the publishing modes, with server CPU sampled over it. */
typedef struct ws_fo_step {
    double rate; /* total scheduled messages/s */
    ws_fo_totals_t t;
    double server_cpu; /* fraction of one core, or -1 */
    double duration_s;
    bool held;
} ws_fo_step_t;

/* What the run reports; fields that do not apply to the mode stay negative (null). */
typedef struct ws_fo_report {
    ws_fo_step_t main;   /* the measurement reported (saturate: the highest held step) */
    bool have_main;      /* main holds a latency/throughput measurement */
    ws_fo_totals_t last; /* the latest merge: cumulative connection errors */
    double connect_per_s;
    double rounds_per_s;
    double storm_s;
    double connect_server_cpu; /* server CPU while connecting, fraction of a core */
    double rss_per_conn;
    bool client_saturated;
    bool client_bound; /* saturate: the client saturated after a step had held: the
                          highest held step stands, as a lower bound on the server */
    ws_fo_step_t steps[64];
    unsigned nsteps;
} ws_fo_report_t;

/* One saturation step as a line (progress on stderr, the table on stdout); cpu is the
 * busiest worker's use and, in parentheses, how busy the busiest worker's CPU was in all. */
void ws_fo_report_step(FILE *f, unsigned n, const ws_fo_step_t *st);
/* The result as one JSON object on stdout; what does not apply to the mode is null. */
void ws_fo_report_json(const ws_fo_config_t *cfg, const ws_fo_report_t *rep);
/* The result as a table on stdout. */
void ws_fo_report_table(const ws_fo_config_t *cfg, const ws_fo_report_t *rep);

#endif
