/* Shared declarations of the fan-out load generator (bench/fanout): the run configuration the
 * CLI fills, the per-worker command and result blocks that live in shared memory between the
 * parent and its worker processes, and the worker entry point. Nothing here does I/O. */
#ifndef URINGWS_BENCH_FANOUT_H
#define URINGWS_BENCH_FANOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"

/* The bytes at the start of every payload: scheduled send time and message id. */
#define WS_FO_META     16
#define WS_FO_MIN_SIZE WS_FO_META
#define WS_FO_MAX_SIZE 65536
/* Read chunk: large so that one read() drains many frames of a busy connection. */
#define WS_FO_READ_CHUNK (256 * 1024)
/* A publisher whose unsent bytes pass this drops scheduled messages (counted as lost)
 * instead of queueing without bound. */
#define WS_FO_MAX_BACKLOG (8u << 20)
/* Distinct close codes kept per worker; further codes are folded into the last slot. */
#define WS_FO_CLOSE_CODES 8
/* Worker processes (--procs) at most, and connections one worker opens at most (below the
 * usual descriptor limit of 20,000; docs/fanout.md). */
#define WS_FO_MAX_PROCS    64
#define WS_FO_MAX_PER_PROC 19000

enum ws_fo_mode {
    WS_FO_OPEN,
    WS_FO_SATURATE,
    WS_FO_ALLTOALL,
    WS_FO_STORM,
    WS_FO_IDLE,
};

typedef struct ws_fo_config {
    enum ws_fo_mode mode;
    const char *url;
    bool tls;
    char host[64];  /* as written in the URL, for Host: and SNI */
    char room[128]; /* path without the leading '/' */
    struct sockaddr_storage dst;
    socklen_t dst_len;
    unsigned rooms, subs, pubs, size, procs, src_addrs, window;
    double rate;       /* per publisher, messages/s (open mode) */
    double start_rate; /* saturate: first total rate; 0 = rate * pubs * rooms */
    double warmup_s, duration_s, drain_s, step_s, max_time_s, settle_s;
    double p99_bound_ms;
    unsigned coalesce_us; /* hold between busy rounds of reads; 0 = react to every event */
    int server_pid;       /* 0 = none */
    bool json;
    char cpus[128]; /* --cpus as given, "" = no pinning */
} ws_fo_config_t;

/* Commands the parent writes into the shared block, then announces with one byte down each
 * worker's pipe. Times are CLOCK_MONOTONIC nanoseconds, the same clock in every process. */
enum ws_fo_cmd_kind {
    WS_FO_CMD_CONNECT = 1, /* open this worker's connections, report when all are settled */
    WS_FO_CMD_RUN,         /* publish at `rate` from t_start, measure [t_measure, t_end) */
    WS_FO_CMD_ROUNDS, /* all-to-all closed loop from t_start to t_end, measure after t_measure */
    WS_FO_CMD_QUIT,
};

typedef struct ws_fo_cmd {
    enum ws_fo_cmd_kind kind;
    double rate_per_pub;
    int64_t t_start, t_measure, t_end, t_drain_end;
} ws_fo_cmd_t;

typedef struct ws_fo_close_count {
    uint32_t code;
    uint32_t count;
} ws_fo_close_count_t;

/* What one worker reports for the last command. The parent reads it only after the
 * worker's completion byte arrived, so no locking is needed. */
typedef struct ws_fo_result {
    uint64_t connected, err_connect, err_handshake, err_closed;
    ws_fo_close_count_t closes[WS_FO_CLOSE_CODES];
    int64_t connect_done_ns; /* when the last of this worker's connections settled */
    uint64_t scheduled;      /* messages this worker's publishers scheduled in the window */
    uint64_t dropped;        /* of those, dropped because the publisher's backlog was full */
    uint64_t expected;       /* receipts this worker's connections should see */
    uint64_t deliveries;     /* receipts of messages scheduled in the measured window */
    uint64_t rounds;
    double cpu;      /* fraction of one core used over the measured interval */
    double cpu_busy; /* busy fraction of the CPU the worker is pinned to (its own use and
                      * everyone else's), or -1 when not pinned to one CPU */
    ws_hist_t latency;
    ws_hist_t round;
} ws_fo_result_t;

typedef struct ws_fo_shared {
    ws_fo_cmd_t cmd;
    ws_fo_result_t result[]; /* one per worker */
} ws_fo_shared_t;

/* Runs worker `idx` of `cfg->procs` until WS_FO_CMD_QUIT: reads commands from `cmd_fd`, and
 * writes its index as one byte to `done_fd` after each command. Returns the exit status. */
int ws_fo_worker_main(const ws_fo_config_t *cfg, unsigned idx, ws_fo_shared_t *sh, int cmd_fd,
                      int done_fd);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t ws_fo_now(void);

#endif
