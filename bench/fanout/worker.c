/* Worker process of the fan-out load generator: owns a share of the connections, runs one
 * epoll loop, opens connections within a window, publishes on an open-loop schedule, runs
 * all-to-all rounds and records receipts into its result block in shared memory. It must
 * not print results (the parent merges and reports). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "fanout.h"
#include "proc.h"
#include "tls.h"

#define WS_FO_CMD_TAG    UINT64_MAX
#define WS_FO_EVENTS     1024
#define WS_FO_HS_TIMEOUT (10ll * 1000000000ll)

typedef struct ws_fo_worker {
    ws_fo_loop_t loop; /* first: callbacks get &loop and cast back */
    const ws_fo_config_t *cfg;
    unsigned idx;
    ws_fo_result_t *res;
    int done_fd;
    ws_fo_conn_t *conns;
    uint32_t nconns;
    uint32_t *room_members; /* local connections per room */
    uint32_t *pubs;         /* indices of the open-loop publishers among conns */
    uint32_t npubs;
    /* CONNECT */
    bool connecting;
    uint32_t next_connect, in_flight, settled, window;
    int64_t last_scan_ns;
    /* RUN / ROUNDS */
    ws_fo_cmd_t cmd;
    bool running, rounds_mode, cpu_started;
    double cpu0_s;
    int pinned_cpu; /* -1: not pinned to one CPU */
    uint64_t busy0, total0;
    bool cpu_stopped;
    int64_t wall0_ns;
    uint32_t open_conns;
    uint64_t round_seq, round_recv;
    int64_t round_start_ns;
} ws_fo_worker_t;

int64_t ws_fo_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Members of each room (every connection receives every message of its room). */
static unsigned members_per_room(const ws_fo_config_t *cfg)
{
    if (cfg->mode == WS_FO_OPEN || cfg->mode == WS_FO_SATURATE)
        return cfg->subs + cfg->pubs;
    return cfg->subs;
}

/* Publisher p's message k is due at t_start + offset(p) + k * 1e9 / rate. Offsets spread the
 * publishers evenly over one interval so they do not all fire at the same instant. */
static int64_t sched(const ws_fo_cmd_t *cmd, uint32_t gpub, uint32_t npubs, uint64_t k)
{
    double iv = 1e9 / cmd->rate_per_pub;
    return cmd->t_start + (int64_t)(iv * gpub / npubs) + (int64_t)((double)k * iv);
}

/* First k whose due time is >= t. */
static uint64_t first_at(const ws_fo_cmd_t *cmd, uint32_t gpub, uint32_t npubs, int64_t t)
{
    double est = (double)(t - sched(cmd, gpub, npubs, 0)) * cmd->rate_per_pub / 1e9;
    uint64_t k = est > 0 ? (uint64_t)est : 0;
    while (k > 0 && sched(cmd, gpub, npubs, k - 1) >= t)
        k--;
    while (sched(cmd, gpub, npubs, k) < t)
        k++;
    return k;
}

/* Messages publisher gpub schedules in the measured window [t_measure, t_end). */
static uint64_t window_count(const ws_fo_cmd_t *cmd, uint32_t gpub, uint32_t npubs)
{
    return first_at(cmd, gpub, npubs, cmd->t_end) - first_at(cmd, gpub, npubs, cmd->t_measure);
}

static void record_close(ws_fo_result_t *res, unsigned code)
{
    for (unsigned i = 0; i < WS_FO_CLOSE_CODES; i++) {
        ws_fo_close_count_t *cc = &res->closes[i];
        if (cc->count == 0 || cc->code == code || i == WS_FO_CLOSE_CODES - 1) {
            cc->code = cc->count == 0 ? code : cc->code;
            cc->count++;
            return;
        }
    }
}

static void settle_one(ws_fo_worker_t *w)
{
    if (!w->connecting)
        return;
    w->in_flight--;
    w->settled++;
}

static void on_open(ws_fo_loop_t *l, ws_fo_conn_t *c)
{
    ws_fo_worker_t *w = (ws_fo_worker_t *)l;
    (void)c;
    w->res->connected++;
    w->open_conns++;
    settle_one(w);
}

static void on_fail(ws_fo_loop_t *l, ws_fo_conn_t *c, enum ws_fo_fail why, unsigned code)
{
    ws_fo_worker_t *w = (ws_fo_worker_t *)l;
    (void)c;
    switch (why) {
    case WS_FO_FAIL_CONNECT:
        w->res->err_connect++;
        settle_one(w);
        break;
    case WS_FO_FAIL_HANDSHAKE:
        w->res->err_handshake++;
        settle_one(w);
        break;
    case WS_FO_FAIL_CLOSED:
        w->res->err_closed++;
        w->open_conns--;
        record_close(w->res, code);
        break;
    }
}

static void on_message(ws_fo_loop_t *l, ws_fo_conn_t *c, const uint8_t meta[WS_FO_META],
                       int64_t now)
{
    ws_fo_worker_t *w = (ws_fo_worker_t *)l;
    (void)c;
    if (!w->running)
        return;
    int64_t ts;
    uint32_t seq;
    memcpy(&ts, meta, 8);
    memcpy(&seq, meta + 12, 4);
    if (w->rounds_mode) {
        /* Only the round time is measured: per-delivery latency adds nothing to it and cost
         * the client 15% of its time at 500 clients (250,000 receipts per round). */
        if (seq == (uint32_t)w->round_seq)
            w->round_recv++;
        return;
    }
    if (ts < w->cmd.t_measure || ts >= w->cmd.t_end)
        return;
    w->res->deliveries++;
    ws_hist_record(&w->res->latency, (uint64_t)(now > ts ? now - ts : 0) / 1000);
}

static void report_done(ws_fo_worker_t *w)
{
    uint8_t b = (uint8_t)w->idx;
    while (write(w->done_fd, &b, 1) < 0 && errno == EINTR)
        ;
}

/* Source address for global connection g: 127.0.0.1 + (g mod src_addrs). */
static void src_for(const ws_fo_config_t *cfg, uint32_t g, struct sockaddr_storage *ss)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(0x7f000001u + g % cfg->src_addrs);
}

/* Starts measuring this worker's CPU use, and how busy its CPU is in all. */
static void cpu_start(ws_fo_worker_t *w, int64_t now)
{
    w->cpu_started = true;
    w->cpu_stopped = false;
    w->cpu0_s = ws_fo_proc_self_cpu_s();
    w->wall0_ns = now;
    if (w->pinned_cpu >= 0 && ws_fo_proc_cpu_ticks(w->pinned_cpu, &w->busy0, &w->total0) != 0)
        w->total0 = 0;
}

/* Ends the CPU measurement (once). */
static void cpu_stop(ws_fo_worker_t *w, int64_t now)
{
    if (!w->cpu_started || w->cpu_stopped)
        return;
    w->cpu_stopped = true;
    double wall = (double)(now - w->wall0_ns) / 1e9;
    if (wall <= 0)
        return;
    w->res->cpu = (ws_fo_proc_self_cpu_s() - w->cpu0_s) / wall;
    uint64_t busy, total;
    w->res->cpu_busy = -1;
    if (w->pinned_cpu >= 0 && w->total0 > 0 &&
        ws_fo_proc_cpu_ticks(w->pinned_cpu, &busy, &total) == 0 && total > w->total0)
        w->res->cpu_busy = (double)(busy - w->busy0) / (double)(total - w->total0);
}

static void connect_tick(ws_fo_worker_t *w, int64_t now)
{
    const ws_fo_config_t *cfg = w->cfg;
    while (w->in_flight < w->window && w->next_connect < w->nconns) {
        ws_fo_conn_t *c = &w->conns[w->next_connect++];
        struct sockaddr_storage src;
        uint32_t g = c->index * cfg->procs + w->idx;
        src_for(cfg, g, &src);
        w->in_flight++;
        ws_fo_conn_start(&w->loop, c, cfg->dst.ss_family == AF_INET ? &src : NULL);
    }
    /* A server that accepts but never answers must not stall the run: handshakes past
     * the deadline count as failed. Scanning is cheap next to the connects themselves. */
    if (now - w->last_scan_ns > 100000000ll) {
        w->last_scan_ns = now;
        for (uint32_t i = 0; i < w->next_connect; i++) {
            ws_fo_conn_t *c = &w->conns[i];
            if (c->state >= WS_FO_C_CONNECTING && c->state < WS_FO_C_OPEN &&
                now - c->started_ns > WS_FO_HS_TIMEOUT)
                ws_fo_conn_fail(
                    &w->loop, c,
                    c->state == WS_FO_C_CONNECTING ? WS_FO_FAIL_CONNECT : WS_FO_FAIL_HANDSHAKE, 0);
        }
    }
    if (w->settled == w->nconns) {
        w->connecting = false;
        w->res->connect_done_ns = now;
        cpu_stop(w, now);
        report_done(w);
    }
}

static void put_meta(uint8_t meta[WS_FO_META], int64_t ts, uint32_t id, uint32_t seq)
{
    memcpy(meta, &ts, 8);
    memcpy(meta + 8, &id, 4);
    memcpy(meta + 12, &seq, 4);
}

/* Sends every message that is due, stamped with its scheduled (not actual) time, so a late
 * publisher's delay shows up as latency instead of vanishing (no coordinated omission). */
static void publish_tick(ws_fo_worker_t *w, int64_t now)
{
    const ws_fo_config_t *cfg = w->cfg;
    uint32_t npubs = cfg->pubs * cfg->rooms;
    for (uint32_t i = 0; i < w->npubs; i++) {
        ws_fo_conn_t *c = &w->conns[w->pubs[i]];
        bool sent = false;
        while (c->next_ns <= now && c->next_ns < w->cmd.t_end) {
            bool in_window = c->next_ns >= w->cmd.t_measure;
            uint8_t meta[WS_FO_META];
            put_meta(meta, c->next_ns, (uint32_t)c->pub, (uint32_t)c->seq);
            int r = ws_fo_conn_send(&w->loop, c, meta, cfg->size);
            if (in_window) {
                w->res->scheduled++;
                if (r != 0)
                    w->res->dropped++;
            }
            sent |= r == 0;
            c->seq++;
            c->next_ns = sched(&w->cmd, (uint32_t)c->pub, npubs, c->seq);
        }
        if (sent)
            ws_fo_conn_flush(&w->loop, c);
    }
}

static int64_t next_publish(const ws_fo_worker_t *w)
{
    int64_t next = INT64_MAX;
    for (uint32_t i = 0; i < w->npubs; i++) {
        const ws_fo_conn_t *c = &w->conns[w->pubs[i]];
        if (c->state == WS_FO_C_OPEN && c->next_ns < next && c->next_ns < w->cmd.t_end)
            next = c->next_ns;
    }
    return next;
}

static void start_round(ws_fo_worker_t *w, int64_t now)
{
    w->round_seq++;
    w->round_recv = 0;
    w->round_start_ns = now;
    for (uint32_t i = 0; i < w->nconns; i++) {
        ws_fo_conn_t *c = &w->conns[i];
        if (c->state != WS_FO_C_OPEN)
            continue;
        uint8_t meta[WS_FO_META];
        put_meta(meta, now, i, (uint32_t)w->round_seq);
        if (ws_fo_conn_send(&w->loop, c, meta, w->cfg->size) == 0)
            ws_fo_conn_flush(&w->loop, c);
    }
}

static void rounds_tick(ws_fo_worker_t *w, int64_t now)
{
    uint64_t n = w->open_conns;
    if (w->round_recv < n * n)
        return;
    if (w->round_seq > 0 && w->round_start_ns >= w->cmd.t_measure && now <= w->cmd.t_end) {
        /* Deliveries count with their round, so deliveries/s = rounds/s x N x N. */
        w->res->rounds++;
        w->res->deliveries += n * n;
        ws_hist_record(&w->res->round, (uint64_t)(now - w->round_start_ns) / 1000);
    }
    if (now < w->cmd.t_end)
        start_round(w, now);
}

static void begin_run(ws_fo_worker_t *w, const ws_fo_cmd_t *cmd)
{
    const ws_fo_config_t *cfg = w->cfg;
    ws_fo_result_t *res = w->res;
    w->cmd = *cmd;
    w->running = true;
    w->rounds_mode = cmd->kind == WS_FO_CMD_ROUNDS;
    w->cpu_started = w->cpu_stopped = false;
    res->cpu_busy = -1;
    res->scheduled = res->dropped = res->expected = res->deliveries = res->rounds = 0;
    res->cpu = 0;
    ws_hist_reset(&res->latency);
    ws_hist_reset(&res->round);
    if (w->rounds_mode) {
        w->round_seq = 0;
        w->round_recv = UINT64_MAX / 2; /* the first tick starts round 1 */
        return;
    }
    uint32_t npubs = cfg->pubs * cfg->rooms;
    for (uint32_t r = 0; r < cfg->rooms; r++) {
        uint64_t msgs = 0;
        for (uint32_t j = 0; j < cfg->pubs; j++)
            msgs += window_count(cmd, r * cfg->pubs + j, npubs);
        res->expected += msgs * w->room_members[r];
    }
    for (uint32_t i = 0; i < w->npubs; i++) {
        ws_fo_conn_t *c = &w->conns[w->pubs[i]];
        c->seq = 0;
        c->next_ns = sched(cmd, (uint32_t)c->pub, npubs, 0);
    }
}

/* Drives the running command; returns the time the loop must wake up by. */
static int64_t run_tick(ws_fo_worker_t *w, int64_t now)
{
    const ws_fo_cmd_t *cmd = &w->cmd;
    if (!w->cpu_started && now >= cmd->t_measure)
        cpu_start(w, now);
    if (now >= cmd->t_end)
        cpu_stop(w, now);
    int64_t wake;
    if (w->rounds_mode) {
        if (now >= cmd->t_start)
            rounds_tick(w, now);
        uint64_t n = w->open_conns;
        bool settled = now >= cmd->t_end && (w->round_recv >= n * n || n == 0);
        if (settled || now >= cmd->t_drain_end)
            goto finish;
        wake = now < cmd->t_start ? cmd->t_start : cmd->t_end;
    } else {
        publish_tick(w, now);
        if (now >= cmd->t_drain_end ||
            (now >= cmd->t_end && w->res->deliveries >= w->res->expected))
            goto finish;
        wake = next_publish(w);
        if (wake > cmd->t_end)
            wake = cmd->t_end;
    }
    if (!w->cpu_started && cmd->t_measure < wake)
        wake = cmd->t_measure;
    if (now >= cmd->t_end && cmd->t_drain_end < wake)
        wake = cmd->t_drain_end;
    if (now >= cmd->t_end && now + 10000000ll < wake)
        wake = now + 10000000ll; /* re-check the drain every 10 ms */
    return wake;
finish:
    cpu_stop(w, now);
    w->running = false;
    report_done(w);
    return INT64_MAX;
}

static int setup(ws_fo_worker_t *w)
{
    const ws_fo_config_t *cfg = w->cfg;
    unsigned members = members_per_room(cfg);
    uint64_t total = (uint64_t)members * cfg->rooms;
    w->nconns = (uint32_t)((total + cfg->procs - 1 - w->idx) / cfg->procs);
    w->conns = calloc(w->nconns ? w->nconns : 1, sizeof(*w->conns));
    w->room_members = calloc(cfg->rooms, sizeof(*w->room_members));
    w->loop.rbuf = malloc(WS_FO_READ_CHUNK);
    w->loop.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!w->conns || !w->room_members || !w->loop.rbuf || w->loop.epfd < 0)
        return -ENOMEM;
    if (cfg->tls && !(w->loop.pbuf = malloc(WS_FO_READ_CHUNK)))
        return -ENOMEM;
    if (cfg->tls && !(w->loop.ssl_ctx = ws_fo_tls_ctx_new()))
        return -EPROTO;
    bool all_publish = cfg->mode == WS_FO_ALLTOALL;
    w->pubs = calloc(w->nconns ? w->nconns : 1, sizeof(*w->pubs));
    if (!w->pubs)
        return -ENOMEM;
    for (uint32_t i = 0; i < w->nconns; i++) {
        ws_fo_conn_t *c = &w->conns[i];
        uint64_t g = (uint64_t)i * cfg->procs + w->idx;
        uint32_t room = (uint32_t)(g / members), j = (uint32_t)(g % members);
        c->fd = -1;
        c->index = i;
        c->room = room;
        c->pub = -1;
        if (all_publish)
            c->pub = (int32_t)g;
        else if ((cfg->mode == WS_FO_OPEN || cfg->mode == WS_FO_SATURATE) && j < cfg->pubs)
            c->pub = (int32_t)(room * cfg->pubs + j);
        if (c->pub >= 0 && !all_publish)
            w->pubs[w->npubs++] = i;
        w->room_members[room]++;
    }
    w->window = cfg->window / cfg->procs;
    if (w->window == 0)
        w->window = 1;
    return 0;
}

/* Runs what is due of the connect phase and the running command; returns the time the loop
 * must wake up by (INT64_MAX: only for events). */
static int64_t tick(ws_fo_worker_t *w, int64_t now)
{
    int64_t wake = INT64_MAX;
    if (w->connecting) {
        connect_tick(w, now);
        if (w->connecting)
            wake = now + 100000000ll;
    }
    if (w->running) {
        int64_t t = run_tick(w, now);
        if (t < wake)
            wake = t;
    }
    return wake;
}

/* Coalescing: while traffic is continuous, let up to C us of frames pile up in the socket
 * buffers before the next round of reads, so that one read() takes several frames instead of
 * one. A client that keeps up reads one frame per system call and then costs more per
 * delivery than a batching server. Scheduled sends are never held back: the worker wakes for
 * each one, sends it (the ticks) and goes on holding its reads. After a quiet spell the first
 * event is handled at once, so the added latency is at most C. Returns false when it woke
 * for a send that is due (the reads stay held), true when the reads may go ahead, with *now
 * brought up to date after a hold. */
static bool hold_reads(const ws_fo_config_t *cfg, int64_t busy_since_ns, int64_t wake, int64_t *now)
{
    if (cfg->coalesce_us == 0 || busy_since_ns == 0)
        return true;
    int64_t hold = busy_since_ns + (int64_t)cfg->coalesce_us * 1000;
    if (hold <= *now)
        return true;
    int64_t until = hold < wake ? hold : wake;
    struct timespec hs = {until / 1000000000ll, until % 1000000000ll};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &hs, NULL);
    if (until < hold)
        return false;
    *now = ws_fo_now();
    return true;
}

/* Reads the parent's announcement and starts the command in sh->cmd. Returns false when the
 * worker is done: told to quit, or the parent went away. */
static bool take_command(ws_fo_worker_t *w, const ws_fo_shared_t *sh, int cmd_fd)
{
    uint8_t b;
    if (read(cmd_fd, &b, 1) != 1)
        return false; /* the parent went away */
    ws_fo_cmd_t cmd = sh->cmd;
    switch (cmd.kind) {
    case WS_FO_CMD_CONNECT:
        w->connecting = true;
        w->last_scan_ns = ws_fo_now();
        w->res->cpu = 0;
        w->res->cpu_busy = -1;
        cpu_start(w, w->last_scan_ns);
        break;
    case WS_FO_CMD_RUN:
    case WS_FO_CMD_ROUNDS:
        begin_run(w, &cmd);
        break;
    case WS_FO_CMD_QUIT:
        for (uint32_t k = 0; k < w->nconns; k++)
            ws_fo_conn_abort(&w->conns[k]);
        return false;
    }
    return true;
}

int ws_fo_worker_main(const ws_fo_config_t *cfg, unsigned idx, ws_fo_shared_t *sh, int cmd_fd,
                      int done_fd)
{
    static ws_fo_worker_t w;
    w.cfg = cfg;
    w.idx = idx;
    w.res = &sh->result[idx];
    w.done_fd = done_fd;
    w.loop.cfg = cfg;
    w.loop.on_open = on_open;
    w.loop.on_message = on_message;
    w.loop.on_fail = on_fail;
    ws_fo_rand_seed();
    w.pinned_cpu = ws_fo_proc_pinned_cpu();
    /* Timer slack would add up to 50 us to every scheduled send wakeup. */
    prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
    int err = setup(&w);
    if (err != 0) {
        fprintf(stderr, "fanout: worker %u: setup failed: %s\n", idx, strerror(-err));
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WS_FO_CMD_TAG};
    epoll_ctl(w.loop.epfd, EPOLL_CTL_ADD, cmd_fd, &ev);
    static struct epoll_event evs[WS_FO_EVENTS];
    int64_t busy_since_ns = 0; /* when the last epoll_wait that returned events returned */
    for (;;) {
        int64_t now = ws_fo_now();
        int64_t wake = tick(&w, now);
        if (!hold_reads(cfg, busy_since_ns, wake, &now))
            continue; /* a send is due; the reads stay held */
        struct timespec ts = {0, 0};
        if (wake != INT64_MAX && wake > now) {
            ts.tv_sec = (wake - now) / 1000000000ll;
            ts.tv_nsec = (wake - now) % 1000000000ll;
        }
        int n = epoll_pwait2(w.loop.epfd, evs, WS_FO_EVENTS, wake == INT64_MAX ? NULL : &ts, NULL);
        /* A full event array means more sockets are ready: the next round of reads goes at
         * once. Holding there would let only WS_FO_EVENTS reads through per hold (at 10,000
         * connections, a cap of about 200,000 reads/s with a 5 ms hold). */
        busy_since_ns = n > 0 && n < WS_FO_EVENTS ? ws_fo_now() : 0;
        if (n < 0 && errno != EINTR) {
            perror("fanout: epoll_pwait2");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 != WS_FO_CMD_TAG)
                ws_fo_conn_event(&w.loop, &w.conns[evs[i].data.u64], evs[i].events);
            else if (!take_command(&w, sh, cmd_fd))
                return 0;
        }
    }
}
