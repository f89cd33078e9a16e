/* fanout: the fan-out latency load generator for uringws (docs/fanout.md). This file is the
 * parent process: command line, loopback-only target check, worker processes, the phases of
 * each mode (open loop, saturation search, all-to-all rounds, connection storm, idle
 * memory), server CPU/RSS sampling, merging the workers' results and printing them. The
 * workers (worker.c) do all network I/O; the parent must not touch a connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
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

#include "fanout.h"

#define WS_FO_EXIT_USAGE     2
#define WS_FO_EXIT_SATURATED 3
/* Above this fraction of one core a worker may be what limits the result. It is compared
 * with the worker's CPU use and, when the worker is pinned to one CPU, with how busy that CPU
 * was in all (/proc/stat, softirq and steal included): a worker whose CPU was 90% busy is
 * short of CPU whether it used the time itself or another process or the hypervisor did.
 * Run-queue wait (schedstat) is not used: on a VM it mostly measures wake-up latency from
 * idle, which a busy worker does not pay. */
#define WS_FO_SATURATED_CPU 0.90
#define WS_FO_MAX_PROCS     64
#define WS_FO_MAX_PER_PROC  19000

static const char ws__usage[] =
    "usage: fanout --url ws://HOST:PORT/ROOM [options]\n"
    "  --url URL            ws:// or wss:// target on a loopback address (127.0.0.0/8, ::1)\n"
    "  --mode MODE          open (default) | saturate | alltoall | storm | idle\n"
    "  --subs S             subscribers per room; clients in alltoall (default 100)\n"
    "  --clients N          same as --subs\n"
    "  --pubs P             publishers per room (default 1); they receive too\n"
    "  --rooms N            rooms ROOM-0..ROOM-(N-1) when N > 1 (default 1)\n"
    "  --size B             message bytes, 16..65536 (default 128; alltoall 20)\n"
    "  --rate R             messages/s per publisher, open mode (default 10)\n"
    "  --start-rate R       saturate: first total rate (default rate x pubs x rooms)\n"
    "  --p99-bound MS       saturate: a step holds when p99 <= MS and nothing is lost (100)\n"
    "  --step-duration SEC  saturate: measured seconds per step (default 5)\n"
    "  --max-time SEC       saturate: bound on the whole search (default 120)\n"
    "  --warmup SEC         unmeasured seconds before each measurement (default 1)\n"
    "  --duration SEC       measured seconds, open and alltoall (default 10)\n"
    "  --drain SEC          wait for in-flight messages after the window (default 2)\n"
    "  --procs K            worker processes (default 1; at most 19000 connections each)\n"
    "  --src-addrs N        spread connections over source 127.0.0.1..N (default max(K, 8))\n"
    "  --connect-window N   connects in flight at once, all workers (default 1000)\n"
    "  --coalesce-us US     under continuous traffic, wait up to US between rounds of reads\n"
    "                       so one read takes several frames (default 0; saturate 5000)\n"
    "  --settle SEC         idle: wait before reading the server's RSS (default 3)\n"
    "  --server-pid PID     also report server CPU (and RSS in idle mode)\n"
    "  --cpus LIST          pin workers to these CPUs, round robin (e.g. 1 or 2-3,5)\n"
    "  --json               print one JSON object instead of the table\n"
    "  --help               this text\n"
    "Exit status: 0 done, 1 run failed, 2 bad usage, 3 client saturated (result refused).\n";

static void ws__die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "fanout: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    exit(WS_FO_EXIT_USAGE);
}

static double ws__num(const char *flag, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "bad value for %s: '%%s' (allowed %g..%g)", flag, lo, hi);
        ws__die_usage(msg, s);
    }
    return v;
}

static unsigned ws__uint(const char *flag, const char *s, double lo, double hi)
{
    double v = ws__num(flag, s, lo, hi);
    if (v != floor(v))
        ws__die_usage("%s takes a whole number", flag);
    return (unsigned)v;
}

/* Parses ws[s]://HOST[:PORT]/ROOM and checks that HOST is a loopback address. */
static void ws__parse_url(ws_fo_config_t *cfg, const char *url)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        p = url + 6;
        cfg->tls = true;
    } else {
        ws__die_usage("--url must start with ws:// or wss://: '%s'", url);
    }
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    if (hostport == 0 || hostport >= sizeof(cfg->host))
        ws__die_usage("bad host in --url '%s'", url);
    memcpy(cfg->host, p, hostport);
    cfg->host[hostport] = 0;
    snprintf(cfg->room, sizeof(cfg->room), "%s", slash && slash[1] ? slash + 1 : "bench");
    char host[64];
    const char *port = NULL;
    if (cfg->host[0] == '[') {
        const char *rb = strchr(cfg->host, ']');
        if (!rb)
            ws__die_usage("bad IPv6 host in --url '%s'", url);
        snprintf(host, sizeof(host), "%.*s", (int)(rb - cfg->host - 1), cfg->host + 1);
        if (rb[1] == ':')
            port = rb + 2;
        else if (rb[1])
            ws__die_usage("bad host in --url '%s'", url);
    } else {
        snprintf(host, sizeof(host), "%s", cfg->host);
        char *colon = strchr(host, ':');
        if (colon) {
            *colon = 0;
            port = cfg->host + (colon - host) + 1;
        }
    }
    unsigned portno = port ? ws__uint("the --url port", port, 1, 65535) : cfg->tls ? 443 : 80;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        ws__die_usage("cannot resolve the --url host '%s'", host);
    memcpy(&cfg->dst, ai->ai_addr, ai->ai_addrlen);
    cfg->dst_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    bool loopback = false;
    if (cfg->dst.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&cfg->dst;
        sin->sin_port = htons((uint16_t)portno);
        loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    } else if (cfg->dst.ss_family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&cfg->dst;
        sin6->sin6_port = htons((uint16_t)portno);
        loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
    }
    if (!loopback)
        ws__die_usage("refusing a target that is not loopback (127.0.0.0/8 or ::1): '%s'", host);
}

/* Parses "1", "0-3", "1,3,5-6" into a list of CPU numbers. */
static int ws__parse_cpus(const char *s, int *cpus, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s || a < 0 || a >= CPU_SETSIZE)
            return -EINVAL;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            if (end == s + 1 || b < a || b >= CPU_SETSIZE)
                return -EINVAL;
            s = end;
        }
        for (long c = a; c <= b && n < max; c++)
            cpus[n++] = (int)c;
        if (*s == ',')
            s++;
        else if (*s)
            return -EINVAL;
    }
    return n > 0 ? n : -EINVAL;
}

static const char *ws__mode_name(enum ws_fo_mode m)
{
    static const char *names[] = {"open", "saturate", "alltoall", "storm", "idle"};
    return names[m];
}

static void ws__parse_args(ws_fo_config_t *cfg, int argc, char **argv)
{
    enum {
        O_URL = 256,
        O_MODE,
        O_SUBS,
        O_PUBS,
        O_ROOMS,
        O_SIZE,
        O_RATE,
        O_START_RATE,
        O_P99,
        O_STEP,
        O_MAX_TIME,
        O_WARMUP,
        O_DURATION,
        O_DRAIN,
        O_PROCS,
        O_SRC,
        O_WINDOW,
        O_SETTLE,
        O_PID,
        O_CPUS,
        O_JSON,
        O_HELP,
        O_COALESCE,
    };
    static const struct option opts[] = {
        {"url", 1, 0, O_URL},
        {"mode", 1, 0, O_MODE},
        {"subs", 1, 0, O_SUBS},
        {"clients", 1, 0, O_SUBS},
        {"pubs", 1, 0, O_PUBS},
        {"rooms", 1, 0, O_ROOMS},
        {"size", 1, 0, O_SIZE},
        {"rate", 1, 0, O_RATE},
        {"start-rate", 1, 0, O_START_RATE},
        {"p99-bound", 1, 0, O_P99},
        {"step-duration", 1, 0, O_STEP},
        {"max-time", 1, 0, O_MAX_TIME},
        {"warmup", 1, 0, O_WARMUP},
        {"duration", 1, 0, O_DURATION},
        {"drain", 1, 0, O_DRAIN},
        {"procs", 1, 0, O_PROCS},
        {"src-addrs", 1, 0, O_SRC},
        {"connect-window", 1, 0, O_WINDOW},
        {"settle", 1, 0, O_SETTLE},
        {"server-pid", 1, 0, O_PID},
        {"cpus", 1, 0, O_CPUS},
        {"json", 0, 0, O_JSON},
        {"help", 0, 0, O_HELP},
        {"coalesce-us", 1, 0, O_COALESCE},
        {0, 0, 0, 0},
    };
    const char *url = NULL;
    bool size_set = false;
    unsigned src_addrs = 0;
    int coalesce = -1;
    *cfg = (ws_fo_config_t){
        .mode = WS_FO_OPEN,
        .rooms = 1,
        .subs = 100,
        .pubs = 1,
        .size = 128,
        .procs = 1,
        .window = 1000,
        .rate = 10,
        .warmup_s = 1,
        .duration_s = 10,
        .drain_s = 2,
        .step_s = 5,
        .max_time_s = 120,
        .settle_s = 3,
        .p99_bound_ms = 100,
    };
    opterr = 0;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_URL:
            url = optarg;
            break;
        case O_MODE: {
            int m = 0;
            while (m <= WS_FO_IDLE && strcmp(optarg, ws__mode_name(m)) != 0)
                m++;
            if (m > WS_FO_IDLE)
                ws__die_usage("bad --mode '%s' (open|saturate|alltoall|storm|idle)", optarg);
            cfg->mode = m;
            break;
        }
        case O_SUBS:
            cfg->subs = ws__uint("--subs", optarg, 1, 1e6);
            break;
        case O_PUBS:
            cfg->pubs = ws__uint("--pubs", optarg, 0, 1e4);
            break;
        case O_ROOMS:
            cfg->rooms = ws__uint("--rooms", optarg, 1, 1e5);
            break;
        case O_SIZE:
            cfg->size = ws__uint("--size", optarg, WS_FO_MIN_SIZE, WS_FO_MAX_SIZE);
            size_set = true;
            break;
        case O_RATE:
            cfg->rate = ws__num("--rate", optarg, 0.001, 1e7);
            break;
        case O_START_RATE:
            cfg->start_rate = ws__num("--start-rate", optarg, 0.001, 1e8);
            break;
        case O_P99:
            cfg->p99_bound_ms = ws__num("--p99-bound", optarg, 0.001, 1e6);
            break;
        case O_STEP:
            cfg->step_s = ws__num("--step-duration", optarg, 0.1, 3600);
            break;
        case O_MAX_TIME:
            cfg->max_time_s = ws__num("--max-time", optarg, 1, 86400);
            break;
        case O_WARMUP:
            cfg->warmup_s = ws__num("--warmup", optarg, 0, 3600);
            break;
        case O_DURATION:
            cfg->duration_s = ws__num("--duration", optarg, 0.1, 86400);
            break;
        case O_DRAIN:
            cfg->drain_s = ws__num("--drain", optarg, 0, 3600);
            break;
        case O_PROCS:
            cfg->procs = ws__uint("--procs", optarg, 1, WS_FO_MAX_PROCS);
            break;
        case O_SRC:
            src_addrs = ws__uint("--src-addrs", optarg, 1, 254);
            break;
        case O_WINDOW:
            cfg->window = ws__uint("--connect-window", optarg, 1, 1e6);
            break;
        case O_SETTLE:
            cfg->settle_s = ws__num("--settle", optarg, 0, 3600);
            break;
        case O_PID:
            cfg->server_pid = (int)ws__uint("--server-pid", optarg, 1, 1e9);
            break;
        case O_CPUS:
            if (strlen(optarg) >= sizeof(cfg->cpus))
                ws__die_usage("--cpus list too long: '%s'", optarg);
            snprintf(cfg->cpus, sizeof(cfg->cpus), "%s", optarg);
            break;
        case O_COALESCE:
            coalesce = (int)ws__uint("--coalesce-us", optarg, 0, 100000);
            break;
        case O_JSON:
            cfg->json = true;
            break;
        case O_HELP:
            fputs(ws__usage, stdout);
            exit(0);
        default:
            ws__die_usage("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        ws__die_usage("unexpected argument '%s'", argv[optind]);
    if (!url)
        ws__die_usage("%s", "--url is required");
    cfg->url = url;
    ws__parse_url(cfg, url);
    /* Every source address has its own ephemeral range towards the server; loopback has
     * them all, so spreading costs nothing and keeps connect() off a crowded range. */
    /* Without coalescing, a plain-ws client that keeps up reads once per server send and
     * reaches 90% of a core long before one uringws core does (measured: refused at 400
     * msgs/s x 1010 members; with 5 ms held across scheduled sends, 12.9M deliveries/s held
     * at 0.78 of a core; docs/fanout.md). 5 ms is 5% of the default p99 bound. */
    cfg->coalesce_us = coalesce >= 0 ? (unsigned)coalesce : cfg->mode == WS_FO_SATURATE ? 5000 : 0;
    cfg->src_addrs = src_addrs ? src_addrs : (cfg->procs > 8 ? cfg->procs : 8);
    if (cfg->mode == WS_FO_ALLTOALL) {
        if (!size_set)
            cfg->size = 20;
        if (cfg->procs != 1)
            ws__die_usage("%s", "--mode alltoall runs in one process (--procs 1)");
        cfg->rooms = 1;
        cfg->pubs = 0;
    }
    if ((cfg->mode == WS_FO_OPEN || cfg->mode == WS_FO_SATURATE) && cfg->pubs == 0)
        ws__die_usage("%s", "--pubs must be at least 1 in this mode");
    if (cfg->mode == WS_FO_STORM || cfg->mode == WS_FO_IDLE)
        cfg->pubs = 0;
    if (cfg->mode == WS_FO_IDLE && !cfg->server_pid)
        ws__die_usage("%s", "--mode idle needs --server-pid");
    unsigned members = cfg->subs + cfg->pubs;
    double total = (double)members * cfg->rooms;
    if (total > (double)cfg->procs * WS_FO_MAX_PER_PROC) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%.0f connections need --procs %.0f or more", total,
                 ceil(total / WS_FO_MAX_PER_PROC));
        ws__die_usage("%s", msg);
    }
    if (cfg->cpus[0]) {
        int cpus[CPU_SETSIZE];
        if (ws__parse_cpus(cfg->cpus, cpus, CPU_SETSIZE) < 0)
            ws__die_usage("bad --cpus list '%s'", cfg->cpus);
    }
}

static void ws__pin(const ws_fo_config_t *cfg, unsigned worker)
{
    int cpus[CPU_SETSIZE];
    if (!cfg->cpus[0])
        return;
    int n = ws__parse_cpus(cfg->cpus, cpus, CPU_SETSIZE);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[worker % (unsigned)n], &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        fprintf(stderr, "fanout: cannot pin worker %u to CPU %d: %s\n", worker,
                cpus[worker % (unsigned)n], strerror(errno));
}

/* Server CPU seconds (utime + stime) from /proc/PID/stat, or -1. */
static double ws__server_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Server VmRSS in bytes, or -1. */
static long long ws__server_rss(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

typedef struct ws_fo_parent {
    const ws_fo_config_t *cfg;
    ws_fo_shared_t *sh;
    int cmd_fd[WS_FO_MAX_PROCS];
    int done_fd;
    pid_t pid[WS_FO_MAX_PROCS];
} ws_fo_parent_t;

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

static void ws__sleep_until(int64_t t)
{
    struct timespec ts = {t / 1000000000ll, t % 1000000000ll};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Wakes every worker to read sh->cmd. */
static int ws__announce(ws_fo_parent_t *pa)
{
    for (unsigned i = 0; i < pa->cfg->procs; i++) {
        uint8_t b = 1;
        if (write(pa->cmd_fd[i], &b, 1) != 1)
            return -EPIPE;
    }
    return 0;
}

/* Waits until every worker has reported the command done, or `deadline`. */
static int ws__wait(ws_fo_parent_t *pa, int64_t deadline)
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

static void ws__merge(const ws_fo_parent_t *pa, ws_fo_totals_t *t)
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

/* One measured interval of the publishing modes, with server CPU sampled over it. */
typedef struct ws_fo_step {
    double rate; /* total scheduled messages/s */
    ws_fo_totals_t t;
    double server_cpu; /* fraction of one core, or -1 */
    double duration_s;
    bool held;
} ws_fo_step_t;

static int ws__measure(ws_fo_parent_t *pa, enum ws_fo_cmd_kind kind, double total_rate,
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
    int err = ws__announce(pa);
    if (err != 0)
        return err;
    st->server_cpu = -1;
    if (cfg->server_pid) {
        ws__sleep_until(t_measure);
        double c0 = ws__server_cpu_s(cfg->server_pid);
        ws__sleep_until(t_end);
        double c1 = ws__server_cpu_s(cfg->server_pid);
        if (c0 >= 0 && c1 >= 0)
            st->server_cpu = (c1 - c0) / duration_s;
    }
    err = ws__wait(pa, t_drain + 30000000000ll);
    if (err != 0)
        return err;
    ws__merge(pa, &st->t);
    st->rate = kind == WS_FO_CMD_RUN ? total_rate : 0;
    st->duration_s = duration_s;
    return 0;
}

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

static int ws__connect_all(ws_fo_parent_t *pa, ws_fo_report_t *rep)
{
    ws_fo_shared_t *sh = pa->sh;
    memset(&sh->cmd, 0, sizeof(sh->cmd));
    sh->cmd.kind = WS_FO_CMD_CONNECT;
    int pid = pa->cfg->server_pid;
    double cpu0 = pid ? ws__server_cpu_s(pid) : -1;
    int64_t t0 = ws_fo_now();
    int err = ws__announce(pa);
    if (err == 0)
        err = ws__wait(pa, t0 + 3600ll * 1000000000ll);
    if (err != 0)
        return err;
    ws__merge(pa, &rep->last);
    double secs = (double)(rep->last.connect_done_ns - t0) / 1e9;
    rep->storm_s = secs;
    double cpu1 = pid ? ws__server_cpu_s(pid) : -1;
    if (cpu0 >= 0 && cpu1 >= 0 && secs > 0)
        rep->connect_server_cpu = (cpu1 - cpu0) / secs;
    rep->connect_per_s = secs > 0 ? (double)rep->last.connected / secs : 0;
    return rep->last.connected > 0 ? 0 : -ENOTCONN;
}

static bool ws__saturated(const ws_fo_totals_t *t)
{
    return t->demand_max > WS_FO_SATURATED_CPU;
}

static bool ws__step_held(const ws_fo_config_t *cfg, const ws_fo_step_t *st)
{
    const ws_fo_totals_t *t = &st->t;
    uint64_t p99 = ws_hist_quantile(&t->latency, 0.99);
    return t->deliveries == t->expected && t->dropped == 0 &&
           (double)p99 <= cfg->p99_bound_ms * 1000 && !ws__saturated(t) && t->expected > 0;
}

/* One saturation step as a line (progress on stderr, the table on stdout); cpu is the
 * busiest worker's use and, in parentheses, how busy the busiest worker's CPU was in all. */
static void ws__print_step(FILE *f, unsigned n, const ws_fo_step_t *st)
{
    fprintf(
        f,
        "step %-3u rate %.0f/s  deliveries %.0f/s  p99 %llu us  lost %lld  cpu %.2f (%.2f)  %s\n",
        n, st->rate, (double)st->t.deliveries / st->duration_s,
        (unsigned long long)ws_hist_quantile(&st->t.latency, 0.99),
        (long long)(st->t.expected - st->t.deliveries), st->t.cpu_max, st->t.demand_max,
        st->held ? "held" : "failed");
}

/* Raises the total rate (x2) until a step fails, then bisects twice between the highest
 * held rate and the lowest failed one; a first step that fails halves instead. */
static int ws__saturate(ws_fo_parent_t *pa, ws_fo_report_t *rep, int64_t t_begin)
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
        int err = ws__measure(pa, WS_FO_CMD_RUN, rate, cfg->step_s, st);
        if (err != 0)
            return err;
        st->held = ws__step_held(cfg, st);
        if (!cfg->json)
            ws__print_step(stderr, rep->nsteps, st);
        if (ws__saturated(&st->t)) {
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

static void ws__json_num(const char *key, double v, bool last)
{
    if (v < 0 || isnan(v))
        printf("\"%s\":null%s", key, last ? "" : ",");
    else if (v == floor(v) && v < 1e15)
        printf("\"%s\":%.0f%s", key, v, last ? "" : ",");
    else
        printf("\"%s\":%.6g%s", key, v, last ? "" : ",");
}

static void ws__print_json(const ws_fo_config_t *cfg, const ws_fo_report_t *rep)
{
    const ws_fo_step_t *m = &rep->main;
    bool valid = rep->have_main && !rep->client_saturated;
    bool publishing = cfg->mode == WS_FO_OPEN || cfg->mode == WS_FO_SATURATE;
    printf("{\"url\":\"%s\",\"mode\":\"%s\",", cfg->url, ws__mode_name(cfg->mode));
    ws__json_num("rooms", cfg->rooms, false);
    ws__json_num("subs", cfg->subs, false);
    ws__json_num("pubs", publishing ? (double)cfg->pubs : -1, false);
    ws__json_num("size",
                 cfg->mode == WS_FO_STORM || cfg->mode == WS_FO_IDLE ? -1 : (double)cfg->size,
                 false);
    double rate = -1;
    if (valid)
        rate = cfg->mode == WS_FO_ALLTOALL ? rep->rounds_per_s * cfg->subs : m->rate;
    ws__json_num("rate", rate, false);
    ws__json_num("duration_s", valid ? m->duration_s : -1, false);
    ws__json_num("deliveries", valid ? (double)m->t.deliveries : -1, false);
    ws__json_num("deliveries_per_s", valid ? (double)m->t.deliveries / m->duration_s : -1, false);
    if (valid && m->t.latency.count) {
        const ws_hist_t *h = &m->t.latency;
        printf("\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,"
               "\"max\":%llu},",
               (unsigned long long)ws_hist_quantile(h, 0.5),
               (unsigned long long)ws_hist_quantile(h, 0.9),
               (unsigned long long)ws_hist_quantile(h, 0.99),
               (unsigned long long)ws_hist_quantile(h, 0.999), (unsigned long long)h->max_us);
    } else {
        printf("\"latency_us\":null,");
    }
    ws__json_num("lost",
                 valid && publishing ? (double)(int64_t)(m->t.expected - m->t.deliveries) : -1,
                 false);
    printf("\"errors\":{\"connect\":%llu,\"handshake\":%llu,\"closed\":%llu,\"close_codes\":{",
           (unsigned long long)rep->last.err_connect, (unsigned long long)rep->last.err_handshake,
           (unsigned long long)rep->last.err_closed);
    for (unsigned i = 0; i < rep->last.nclose; i++)
        printf("%s\"%u\":%u", i ? "," : "", rep->last.closes[i].code, rep->last.closes[i].count);
    printf("}},");
    ws__json_num("connect_per_s",
                 cfg->mode == WS_FO_STORM && rep->client_saturated ? -1 : rep->connect_per_s,
                 false);
    bool storm = cfg->mode == WS_FO_STORM;
    bool cpu_measured = rep->have_main || rep->nsteps > 0 || storm;
    double cpu = storm ? rep->last.cpu_max : rep->main.t.cpu_max;
    for (unsigned i = 0; i < rep->nsteps; i++)
        cpu = rep->steps[i].t.cpu_max > cpu ? rep->steps[i].t.cpu_max : cpu;
    ws__json_num("client_cpu", cpu_measured ? cpu : -1, false);
    printf("\"client_saturated\":%s,", rep->client_saturated ? "true" : "false");
    printf("\"client_bound\":%s,", rep->client_bound ? "true" : "false");
    double server_cpu = valid ? m->server_cpu : -1;
    if (cfg->mode == WS_FO_STORM)
        server_cpu = rep->connect_server_cpu;
    ws__json_num("server_cpu", server_cpu, false);
    ws__json_num("rounds_per_s", valid ? rep->rounds_per_s : -1, false);
    if (valid && cfg->mode == WS_FO_ALLTOALL)
        printf("\"round_us\":{\"p50\":%llu,\"p99\":%llu},",
               (unsigned long long)ws_hist_quantile(&m->t.round, 0.5),
               (unsigned long long)ws_hist_quantile(&m->t.round, 0.99));
    else
        printf("\"round_us\":null,");
    ws__json_num("storm_s", storm && !rep->client_saturated ? rep->storm_s : -1, false);
    ws__json_num("rss_per_conn_bytes", rep->rss_per_conn, false);
    if (cfg->mode != WS_FO_SATURATE) {
        printf("\"steps\":null}\n");
        return;
    }
    printf("\"steps\":[");
    for (unsigned i = 0; i < rep->nsteps; i++) {
        const ws_fo_step_t *st = &rep->steps[i];
        printf("%s{", i ? "," : "");
        ws__json_num("rate", st->rate, false);
        ws__json_num("deliveries_per_s", (double)st->t.deliveries / st->duration_s, false);
        ws__json_num("p99_us", (double)ws_hist_quantile(&st->t.latency, 0.99), false);
        ws__json_num("lost", (double)(int64_t)(st->t.expected - st->t.deliveries), false);
        printf("\"held\":%s}", st->held ? "true" : "false");
    }
    printf("]}\n");
}

static void ws__print_cpu_line(const ws_fo_config_t *cfg, const ws_fo_totals_t *t)
{
    printf("%-22s %.2f of a core (busiest of %u workers)", "client cpu", t->cpu_max, cfg->procs);
    if (t->busy_known)
        printf("; its CPU was %.2f busy in all", t->demand_max);
    printf("\n");
}

/* The reported measurement's client CPU; when there is none (refused, nothing held), the
 * last step's. */
static void ws__print_client_cpu(const ws_fo_config_t *cfg, const ws_fo_report_t *rep)
{
    if (!rep->have_main && rep->nsteps == 0)
        return;
    const ws_fo_totals_t *ct = &rep->main.t;
    if (rep->nsteps && (!rep->have_main || rep->client_saturated))
        ct = &rep->steps[rep->nsteps - 1].t;
    ws__print_cpu_line(cfg, ct);
}

static void ws__print_refusal(void)
{
    printf("client saturated, result refused (a worker needed more than %.0f%% of a core; "
           "add --procs or CPUs)\n",
           WS_FO_SATURATED_CPU * 100);
}

static void ws__print_table(const ws_fo_config_t *cfg, const ws_fo_report_t *rep)
{
    const ws_fo_step_t *m = &rep->main;
    const ws_fo_totals_t *t = &m->t;
    printf("fanout %s  mode %s  rooms %u  subs %u  pubs %u  size %u", cfg->url,
           ws__mode_name(cfg->mode), cfg->rooms, cfg->subs, cfg->pubs, cfg->size);
    if (cfg->coalesce_us)
        printf("  coalesce %u us", cfg->coalesce_us);
    printf("\n");
    printf("%-22s %llu ok, %llu connect errors, %llu handshake errors, %.0f conn/s\n",
           "connections", (unsigned long long)rep->last.connected,
           (unsigned long long)rep->last.err_connect, (unsigned long long)rep->last.err_handshake,
           rep->connect_per_s);
    printf("%-22s %llu", "unexpected closes", (unsigned long long)rep->last.err_closed);
    for (unsigned i = 0; i < rep->last.nclose; i++)
        printf("%s%u x%u", i ? ", " : " (codes: ", rep->last.closes[i].code,
               rep->last.closes[i].count);
    printf("%s\n", rep->last.nclose ? ")" : "");
    if (cfg->mode == WS_FO_STORM) {
        ws__print_cpu_line(cfg, &rep->last);
        if (rep->client_saturated) {
            ws__print_refusal();
            return;
        }
        printf("%-22s %.3f s for %llu connections (%.0f/s)\n", "storm", rep->storm_s,
               (unsigned long long)rep->last.connected, rep->connect_per_s);
        if (rep->connect_server_cpu >= 0)
            printf("%-22s %.2f of a core\n", "server cpu", rep->connect_server_cpu);
    }
    if (cfg->mode == WS_FO_IDLE)
        printf("%-22s %.0f bytes\n", "server RSS per conn", rep->rss_per_conn);
    for (unsigned i = 0; i < rep->nsteps; i++)
        ws__print_step(stdout, i + 1, &rep->steps[i]);
    if (rep->client_saturated) {
        ws__print_client_cpu(cfg, rep);
        ws__print_refusal();
        return;
    }
    if (!rep->have_main) {
        ws__print_client_cpu(cfg, rep);
        if (cfg->mode == WS_FO_SATURATE)
            printf("no step held\n");
        return;
    }
    if (cfg->mode == WS_FO_SATURATE)
        printf("%-22s %.0f msgs/s%s\n", "highest held rate", m->rate,
               rep->client_bound ? " (a lower bound: the next step saturated the client)" : "");
    if (cfg->mode == WS_FO_ALLTOALL)
        printf("%-22s %.1f rounds/s  round p50 %llu us  p99 %llu us\n", "rounds", rep->rounds_per_s,
               (unsigned long long)ws_hist_quantile(&t->round, 0.5),
               (unsigned long long)ws_hist_quantile(&t->round, 0.99));
    else
        printf("%-22s %.0f msgs/s scheduled over %.1f s\n", "sent", m->rate, m->duration_s);
    printf("%-22s %llu (%.0f/s)\n", "deliveries", (unsigned long long)t->deliveries,
           (double)t->deliveries / m->duration_s);
    if (cfg->mode != WS_FO_ALLTOALL)
        printf("%-22s %lld of %llu expected (%llu dropped at the sender)\n", "lost",
               (long long)(t->expected - t->deliveries), (unsigned long long)t->expected,
               (unsigned long long)t->dropped);
    const ws_hist_t *h = &t->latency;
    if (cfg->mode != WS_FO_ALLTOALL) /* alltoall measures round times only */
        printf("%-22s p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n", "latency us",
               (unsigned long long)ws_hist_quantile(h, 0.5),
               (unsigned long long)ws_hist_quantile(h, 0.9),
               (unsigned long long)ws_hist_quantile(h, 0.99),
               (unsigned long long)ws_hist_quantile(h, 0.999), (unsigned long long)h->max_us);
    ws__print_client_cpu(cfg, rep);
    if (m->server_cpu >= 0)
        printf("%-22s %.2f of a core\n", "server cpu", m->server_cpu);
}

static int ws__run(ws_fo_parent_t *pa, ws_fo_report_t *rep)
{
    const ws_fo_config_t *cfg = pa->cfg;
    long long rss0 = cfg->mode == WS_FO_IDLE ? ws__server_rss(cfg->server_pid) : -1;
    if (cfg->mode == WS_FO_IDLE && rss0 < 0) {
        fprintf(stderr, "fanout: cannot read /proc/%d/status\n", cfg->server_pid);
        return -ESRCH;
    }
    int err = ws__connect_all(pa, rep);
    if (err != 0)
        return err;
    int64_t t_begin = ws_fo_now();
    switch (cfg->mode) {
    case WS_FO_OPEN:
        err = ws__measure(pa, WS_FO_CMD_RUN, cfg->rate * cfg->pubs * cfg->rooms, cfg->duration_s,
                          &rep->main);
        rep->have_main = err == 0;
        rep->client_saturated = ws__saturated(&rep->main.t);
        break;
    case WS_FO_SATURATE:
        err = ws__saturate(pa, rep, t_begin);
        break;
    case WS_FO_ALLTOALL:
        err = ws__measure(pa, WS_FO_CMD_ROUNDS, 0, cfg->duration_s, &rep->main);
        rep->have_main = err == 0;
        rep->rounds_per_s = (double)rep->main.t.rounds / cfg->duration_s;
        rep->client_saturated = ws__saturated(&rep->main.t);
        if (rep->client_saturated && rep->have_main)
            fprintf(stderr, "fanout: %.1f rounds/s with the client saturated (not a result)\n",
                    rep->rounds_per_s);
        break;
    case WS_FO_STORM:
        /* The storm's result is a rate, so a client short of CPU voids it too. */
        rep->client_saturated = ws__saturated(&rep->last);
        break;
    case WS_FO_IDLE: {
        ws__sleep_until(ws_fo_now() + (int64_t)(cfg->settle_s * 1e9));
        long long rss1 = ws__server_rss(cfg->server_pid);
        if (rss1 >= 0)
            rep->rss_per_conn = (double)(rss1 - rss0) / (double)rep->last.connected;
        break;
    }
    }
    ws_fo_totals_t last;
    ws__merge(pa, &last);
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
    ws__parse_args(&cfg, argc, argv);
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
            ws__pin(&cfg, i);
            _exit(ws_fo_worker_main(&cfg, i, sh, cmd[0], done[1]));
        }
        close(cmd[0]);
        pa.cmd_fd[i] = cmd[1];
        pa.pid[i] = pid;
    }
    close(done[1]);
    ws__pin(&cfg, 0);
    static ws_fo_report_t rep;
    for (unsigned i = 0; i < sizeof(rep.steps) / sizeof(rep.steps[0]); i++)
        rep.steps[i].server_cpu = -1;
    rep.main.server_cpu = -1;
    rep.rounds_per_s = rep.storm_s = rep.rss_per_conn = rep.connect_per_s = -1;
    rep.connect_server_cpu = -1;
    int err = ws__run(&pa, &rep);
    sh->cmd.kind = WS_FO_CMD_QUIT;
    ws__announce(&pa);
    for (unsigned i = 0; i < cfg.procs; i++)
        waitpid(pa.pid[i], NULL, 0);
    if (err != 0 && err != -ENOTCONN)
        fprintf(stderr, "fanout: run failed: %s\n", strerror(-err));
    if (cfg.json)
        ws__print_json(&cfg, &rep);
    else
        ws__print_table(&cfg, &rep);
    if (err != 0)
        return 1;
    return rep.client_saturated ? WS_FO_EXIT_SATURATED : 0;
}
