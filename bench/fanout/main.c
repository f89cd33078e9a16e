/* fanout: the fan-out latency load generator for uringws (docs/fanout.md). This file is the
 * parent process: worker processes, the phases of each mode (open loop, saturation search,
 * all-to-all rounds, connection storm, idle memory), sampling the server's CPU and RSS
 * (proc.c) and merging the workers' results. The command line is args.c, the printing
 * report.c. The workers (worker.c) do all network I/O; the parent must not touch a
 * connection. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "fanout.h"
#include "proc.h"
#include "report.h"

#define WS_FO_EXIT_SATURATED 3

typedef struct ws_fo_parent {
    const ws_fo_config_t *cfg;
    ws_fo_shared_t *sh;
    int cmd_fd[WS_FO_MAX_PROCS];
    int done_fd;
    pid_t pid[WS_FO_MAX_PROCS];
} ws_fo_parent_t;

static void pin(const ws_fo_config_t *cfg, unsigned worker)
{
    int cpus[CPU_SETSIZE];
    if (!cfg->cpus[0])
        return;
    int n = ws_fo_args_cpus(cfg->cpus, cpus, CPU_SETSIZE);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[worker % (unsigned)n], &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        fprintf(stderr, "fanout: cannot pin worker %u to CPU %d: %s\n", worker,
                cpus[worker % (unsigned)n], strerror(errno));
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {t / 1000000000ll, t % 1000000000ll};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Wakes every worker to read sh->cmd. */
static int announce(ws_fo_parent_t *pa)
{
    for (unsigned i = 0; i < pa->cfg->procs; i++) {
        uint8_t b = 1;
        if (write(pa->cmd_fd[i], &b, 1) != 1)
            return -EPIPE;
    }
    return 0;
}

/* Waits until every worker has reported the command done, or `deadline`. */
static int wait_done(ws_fo_parent_t *pa, int64_t deadline)
{
    unsigned procs = pa->cfg->procs, done = 0;
    while (done < procs) {
        int64_t left = deadline - ws_fo_now();
        if (left <= 0)
            return -ETIMEDOUT;
        /* A worker that died cannot report: look for one every second rather than wait out
         * the deadline. */
        int status;
        if (waitpid(-1, &status, WNOHANG) > 0)
            return -ECHILD;
        struct pollfd pfd = {.fd = pa->done_fd, .events = POLLIN};
        int ms = left / 1000000 < 1000 ? (int)(left / 1000000) + 1 : 1000;
        if (poll(&pfd, 1, ms) <= 0)
            continue;
        uint8_t b[WS_FO_MAX_PROCS];
        ssize_t n = read(pa->done_fd, b, procs - done);
        if (n <= 0)
            return -EPIPE;
        done += (unsigned)n;
    }
    return 0;
}

static void merge(const ws_fo_parent_t *pa, ws_fo_totals_t *t)
{
    memset(t, 0, sizeof(*t));
    for (unsigned i = 0; i < pa->cfg->procs; i++) {
        const ws_fo_result_t *r = &pa->sh->result[i];
        t->connected += r->connected;
        t->err_connect += r->err_connect;
        t->err_handshake += r->err_handshake;
        t->err_closed += r->err_closed;
        t->scheduled += r->scheduled;
        t->dropped += r->dropped;
        t->expected += r->expected;
        t->deliveries += r->deliveries;
        t->rounds += r->rounds;
        if (r->cpu > t->cpu_max)
            t->cpu_max = r->cpu;
        double demand = r->cpu_busy > r->cpu ? r->cpu_busy : r->cpu;
        t->busy_known |= r->cpu_busy >= 0;
        if (demand > t->demand_max)
            t->demand_max = demand;
        if (r->connect_done_ns > t->connect_done_ns)
            t->connect_done_ns = r->connect_done_ns;
        ws_hist_merge(&t->latency, &r->latency);
        ws_hist_merge(&t->round, &r->round);
        for (unsigned k = 0; k < WS_FO_CLOSE_CODES && r->closes[k].count; k++) {
            unsigned j = 0;
            while (j < t->nclose && t->closes[j].code != r->closes[k].code)
                j++;
            if (j == t->nclose)
                t->closes[t->nclose++].code = r->closes[k].code;
            t->closes[j].count += r->closes[k].count;
        }
    }
}

static int measure(ws_fo_parent_t *pa, enum ws_fo_cmd_kind kind, double total_rate,
                   double duration_s, ws_fo_step_t *st)
{
    const ws_fo_config_t *cfg = pa->cfg;
    ws_fo_cmd_t *cmd = &pa->sh->cmd;
    memset(cmd, 0, sizeof(*cmd));
    cmd->kind = kind;
    cmd->rate_per_pub = kind == WS_FO_CMD_RUN ? total_rate / ((double)cfg->pubs * cfg->rooms) : 0;
    /* A short lead lets every worker read the command before the schedule starts. */
    cmd->t_start = ws_fo_now() + 50000000ll;
    cmd->t_measure = cmd->t_start + (int64_t)(cfg->warmup_s * 1e9);
    cmd->t_end = cmd->t_measure + (int64_t)(duration_s * 1e9);
    cmd->t_drain_end = cmd->t_end + (int64_t)(cfg->drain_s * 1e9);
    int64_t t_measure = cmd->t_measure, t_end = cmd->t_end, t_drain = cmd->t_drain_end;
    int err = announce(pa);
    if (err != 0)
        return err;
    st->server_cpu = -1;
    if (cfg->server_pid) {
        sleep_until(t_measure);
        double c0 = ws_fo_proc_cpu_s(cfg->server_pid);
        sleep_until(t_end);
        double c1 = ws_fo_proc_cpu_s(cfg->server_pid);
        if (c0 >= 0 && c1 >= 0)
            st->server_cpu = (c1 - c0) / duration_s;
    }
    err = wait_done(pa, t_drain + 30000000000ll);
    if (err != 0)
        return err;
    merge(pa, &st->t);
    st->rate = kind == WS_FO_CMD_RUN ? total_rate : 0;
    st->duration_s = duration_s;
    return 0;
}

static int connect_all(ws_fo_parent_t *pa, ws_fo_report_t *rep)
{
    ws_fo_shared_t *sh = pa->sh;
    memset(&sh->cmd, 0, sizeof(sh->cmd));
    sh->cmd.kind = WS_FO_CMD_CONNECT;
    int pid = pa->cfg->server_pid;
    double cpu0 = pid ? ws_fo_proc_cpu_s(pid) : -1;
    int64_t t0 = ws_fo_now();
    int err = announce(pa);
    if (err == 0)
        err = wait_done(pa, t0 + 3600ll * 1000000000ll);
    if (err != 0)
        return err;
    merge(pa, &rep->last);
    double secs = (double)(rep->last.connect_done_ns - t0) / 1e9;
    rep->storm_s = secs;
    double cpu1 = pid ? ws_fo_proc_cpu_s(pid) : -1;
    if (cpu0 >= 0 && cpu1 >= 0 && secs > 0)
        rep->connect_server_cpu = (cpu1 - cpu0) / secs;
    rep->connect_per_s = secs > 0 ? (double)rep->last.connected / secs : 0;
    return rep->last.connected > 0 ? 0 : -ENOTCONN;
}

static bool saturated(const ws_fo_totals_t *t)
{
    return t->demand_max > WS_FO_SATURATED_CPU;
}

static bool step_held(const ws_fo_config_t *cfg, const ws_fo_step_t *st)
{
    const ws_fo_totals_t *t = &st->t;
    uint64_t p99 = ws_hist_quantile(&t->latency, 0.99);
    return t->deliveries == t->expected && t->dropped == 0 &&
           (double)p99 <= cfg->p99_bound_ms * 1000 && !saturated(t) && t->expected > 0;
}

/* Raises the total rate (x2) until a step fails, then bisects twice between the highest
 * held rate and the lowest failed one; a first step that fails halves instead. */
static int saturate(ws_fo_parent_t *pa, ws_fo_report_t *rep, int64_t t_begin)
{
    const ws_fo_config_t *cfg = pa->cfg;
    double rate = cfg->start_rate > 0 ? cfg->start_rate : cfg->rate * cfg->pubs * cfg->rooms;
    double lo = 0, hi = INFINITY;
    unsigned bisections = 0, halvings = 0;
    double step_cost = cfg->warmup_s + cfg->step_s + cfg->drain_s + 0.5;
    while (rep->nsteps < sizeof(rep->steps) / sizeof(rep->steps[0])) {
        if ((double)(ws_fo_now() - t_begin) / 1e9 + step_cost > cfg->max_time_s)
            break;
        ws_fo_step_t *st = &rep->steps[rep->nsteps++];
        uint64_t closed_before = st == rep->steps ? rep->last.err_closed : st[-1].t.err_closed;
        int err = measure(pa, WS_FO_CMD_RUN, rate, cfg->step_s, st);
        if (err != 0)
            return err;
        st->held = step_held(cfg, st);
        if (!cfg->json)
            ws_fo_report_step(stderr, rep->nsteps, st);
        if (saturated(&st->t)) {
            /* Past this point the search measures the client, not the server. The steps
             * that held were measured with the client below the bound, so the highest of
             * them stands as a lower bound on what the server holds; with none, there is no
             * result at all. */
            if (rep->have_main)
                rep->client_bound = true;
            else
                rep->client_saturated = true;
            break;
        }
        if (st->t.err_closed > closed_before) {
            /* The server dropped connections (a slow-consumer close, say): later steps would
             * measure fewer members and count every message to the dead ones as lost. */
            st->held = false;
            if (!cfg->json)
                fprintf(stderr, "fanout: %llu connections closed at %.0f msgs/s; search ends\n",
                        (unsigned long long)(st->t.err_closed - closed_before), rate);
            break;
        }
        if (st->held) {
            lo = rate;
            rep->main = *st;
            rep->have_main = true;
        } else {
            hi = rate;
        }
        if (isinf(hi)) {
            rate *= 2;
        } else if (lo == 0) {
            if (++halvings > 4)
                break;
            rate = hi / 2;
        } else {
            if (bisections++ == 2)
                break;
            rate = (lo + hi) / 2;
        }
    }
    return 0;
}

static int run(ws_fo_parent_t *pa, ws_fo_report_t *rep)
{
    const ws_fo_config_t *cfg = pa->cfg;
    long long rss0 = cfg->mode == WS_FO_IDLE ? ws_fo_proc_rss(cfg->server_pid) : -1;
    if (cfg->mode == WS_FO_IDLE && rss0 < 0) {
        fprintf(stderr, "fanout: cannot read /proc/%d/status\n", cfg->server_pid);
        return -ESRCH;
    }
    int err = connect_all(pa, rep);
    if (err != 0)
        return err;
    int64_t t_begin = ws_fo_now();
    switch (cfg->mode) {
    case WS_FO_OPEN:
        err = measure(pa, WS_FO_CMD_RUN, cfg->rate * cfg->pubs * cfg->rooms, cfg->duration_s,
                      &rep->main);
        rep->have_main = err == 0;
        rep->client_saturated = saturated(&rep->main.t);
        break;
    case WS_FO_SATURATE:
        err = saturate(pa, rep, t_begin);
        break;
    case WS_FO_ALLTOALL:
        err = measure(pa, WS_FO_CMD_ROUNDS, 0, cfg->duration_s, &rep->main);
        rep->have_main = err == 0;
        rep->rounds_per_s = (double)rep->main.t.rounds / cfg->duration_s;
        rep->client_saturated = saturated(&rep->main.t);
        if (rep->client_saturated && rep->have_main)
            fprintf(stderr, "fanout: %.1f rounds/s with the client saturated (not a result)\n",
                    rep->rounds_per_s);
        break;
    case WS_FO_STORM:
        /* The storm's result is a rate, so a client short of CPU voids it too. */
        rep->client_saturated = saturated(&rep->last);
        break;
    case WS_FO_IDLE: {
        sleep_until(ws_fo_now() + (int64_t)(cfg->settle_s * 1e9));
        long long rss1 = ws_fo_proc_rss(cfg->server_pid);
        if (rss1 >= 0)
            rep->rss_per_conn = (double)(rss1 - rss0) / (double)rep->last.connected;
        break;
    }
    }
    ws_fo_totals_t last;
    merge(pa, &last);
    rep->last.err_connect = last.err_connect;
    rep->last.err_handshake = last.err_handshake;
    rep->last.err_closed = last.err_closed;
    memcpy(rep->last.closes, last.closes, sizeof(last.closes));
    rep->last.nclose = last.nclose;
    return err;
}

int main(int argc, char **argv)
{
    static ws_fo_config_t cfg;
    ws_fo_args_parse(&cfg, argc, argv);
    /* Every connection is a descriptor; the platform's hard limit is the ceiling. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    size_t shsize = sizeof(ws_fo_shared_t) + cfg.procs * sizeof(ws_fo_result_t);
    ws_fo_shared_t *sh =
        mmap(NULL, shsize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("fanout: mmap");
        return 1;
    }
    static ws_fo_parent_t pa;
    pa.cfg = &cfg;
    pa.sh = sh;
    int done[2];
    if (pipe2(done, O_CLOEXEC) != 0) {
        perror("fanout: pipe");
        return 1;
    }
    pa.done_fd = done[0];
    for (unsigned i = 0; i < cfg.procs; i++) {
        int cmd[2];
        if (pipe2(cmd, O_CLOEXEC) != 0) {
            perror("fanout: pipe");
            return 1;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fanout: fork");
            return 1;
        }
        if (pid == 0) {
            close(cmd[1]);
            close(done[0]);
            pin(&cfg, i);
            _exit(ws_fo_worker_main(&cfg, i, sh, cmd[0], done[1]));
        }
        close(cmd[0]);
        pa.cmd_fd[i] = cmd[1];
        pa.pid[i] = pid;
    }
    close(done[1]);
    pin(&cfg, 0);
    static ws_fo_report_t rep;
    for (unsigned i = 0; i < sizeof(rep.steps) / sizeof(rep.steps[0]); i++)
        rep.steps[i].server_cpu = -1;
    rep.main.server_cpu = -1;
    rep.rounds_per_s = rep.storm_s = rep.rss_per_conn = rep.connect_per_s = -1;
    rep.connect_server_cpu = -1;
    int err = run(&pa, &rep);
    sh->cmd.kind = WS_FO_CMD_QUIT;
    announce(&pa);
    for (unsigned i = 0; i < cfg.procs; i++)
        waitpid(pa.pid[i], NULL, 0);
    if (err != 0 && err != -ENOTCONN)
        fprintf(stderr, "fanout: run failed: %s\n", strerror(-err));
    if (cfg.json)
        ws_fo_report_json(&cfg, &rep);
    else
        ws_fo_report_table(&cfg, &rep);
    if (err != 0)
        return 1;
    return rep.client_saturated ? WS_FO_EXIT_SATURATED : 0;
}
