/* Server life cycle: configuration defaults and checks, feature probe, listeners, one thread
 * per core (each creates its own ring: SINGLE_ISSUER wants the submitter to own it), the
 * stop request (a write on each core's eventfd), joining and freeing, and ws_server_run's
 * signal handling. */
#include "uringws/server.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tls_server.h"
#include "token.h"
#include "backplane.h"
#include "cluster.h"
#include "probe.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "server_internal.h"
#include "uringws/http.h"
#include "uringws/parser.h"

#define SLOT_SLACK 256 /* table room beyond max_conns for sockets that only get a 503 */

uint16_t ws_server_port(const ws_server_t *srv)
{
    return srv->port;
}

/* ---- threads ----------------------------------------------------------------------- */

static void *core_main(void *arg)
{
    ws_worker_t *c = arg;
    ws_server_t *srv = c->srv;
    ws_log_set_core((int)c->id);
    /* Named so that `top -H`, perf and /proc/PID/task tell the workers apart. */
    char name[16];
    snprintf(name, sizeof(name), "uringws-c%u", c->id);
    pthread_setname_np(pthread_self(), name);
    int rc = ws_loop_setup(c);
    if (rc < 0) {
        int expected = 0;
        atomic_compare_exchange_strong(&srv->start_err, &expected, rc);
        c->err = rc;
    }
    pthread_mutex_lock(&srv->start_lock);
    srv->nready++;
    pthread_cond_broadcast(&srv->start_cond);
    while (!srv->go)
        pthread_cond_wait(&srv->start_cond, &srv->start_lock);
    pthread_mutex_unlock(&srv->start_lock);
    /* Every ring exists now, so every MSG_RING target is valid. */
    if (atomic_load(&srv->start_err) == 0)
        ws_loop_run(c);
    ws_loop_teardown_thread(c);
    return NULL;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* The CPU that --pin gives worker i: the i-th CPU this process may run on (its affinity
 * mask, which taskset or a cpuset may have narrowed), wrapping around when there are more
 * workers than CPUs. */
static int pin_cpu(const cpu_set_t *allowed, unsigned i)
{
    int n = CPU_COUNT(allowed);
    if (n <= 0)
        return -1;
    int want = (int)(i % (unsigned)n);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, allowed) && want-- == 0)
            return cpu;
    }
    return -1;
}

/* Raises the soft fd limit to the hard one: regular-fd connections need one fd each, and a
 * direct-descriptor table cannot be larger than RLIMIT_NOFILE. Returns the soft limit. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

typedef struct probe_arg {
    ws_server_t *srv;
    int rc;
} probe_arg_t;

static void *probe_main(void *arg)
{
    probe_arg_t *p = arg;
    p->rc = ws_probe_features(&p->srv->cfg, &p->srv->feat);
    return NULL;
}

/* Probes on a short-lived thread: when a ring is torn down, the kernel's exit work posts
 * signal-style task work to every task that used it, which would interrupt a blocking
 * system call of the caller's thread with EINTR some time later. A thread that has exited
 * is no longer on that list. */
static int probe_in_thread(ws_server_t *srv)
{
    probe_arg_t p = {srv, 0};
    pthread_t t;
    int rc = pthread_create(&t, NULL, probe_main, &p);
    if (rc)
        return -rc;
    pthread_join(t, NULL);
    return p.rc;
}

static void free_server(ws_server_t *srv)
{
    for (unsigned i = 0; i < srv->ncores && srv->cores; i++) {
        ws_worker_t *c = &srv->cores[i];
        for (unsigned k = 0; k < WS_LSN_N; k++) {
            if (c->lsn[k].fd >= 0)
                close(c->lsn[k].fd);
            c->lsn[k].fd = -1;
        }
        ws_loop_free(c);
        if (c->stop_efd >= 0)
            close(c->stop_efd);
        c->stop_efd = -1;
    }
    ws_xcore_free(&srv->xcore);
    ws_keycount_free(srv->ip_counts);
    ws_keycount_free(srv->room_counts);
    ws_origins_free(&srv->origins);
    ws_jwt_key_free(srv->token_key);
    free(srv->token_issuer);
    free(srv->bp_prefix);
    if (srv->bp_conf)
        explicit_bzero(srv->bp_conf, sizeof(*srv->bp_conf)); /* the Redis password */
    free(srv->bp_conf);
    free(srv->bp_up);
    free(srv->bp_slots);
    free(srv->token_audience);
    ws_api_keys_free(srv->api_keys);
    ws_tls_server_free(srv); /* after the cores: every session is gone */
    free(srv->cores);
    free(srv->metrics);
    free(srv->threads);
    pthread_mutex_destroy(&srv->start_lock);
    pthread_cond_destroy(&srv->start_cond);
    free(srv);
}

/* The server struct from a checked configuration: TLS context (a bad certificate is a
 * configuration error, reported as the only line), the parsed origin list, the token key and
 * the API keys, the key-count tables of the limits (and the API) that need them. */
static int server_new(const ws_server_config_t *cfg_in, ws_server_t **out)
{
    ws_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    *out = srv;
    pthread_mutex_init(&srv->start_lock, NULL);
    pthread_cond_init(&srv->start_cond, NULL);
    srv->cfg = *cfg_in;
    ws_server_config_t *cfg = &srv->cfg;
    srv->ncores = cfg->cores ? cfg->cores : online_cpus();
    if (srv->ncores > WS_CORES_MAX)
        srv->ncores = WS_CORES_MAX;
    srv->ktls_probe = 1;
    int rc;
    if (cfg->tls && (rc = ws_tls_server_init(srv)) < 0)
        return rc;
    /* The file names were for loading only; they belong to the caller. */
    cfg->tls_cert_file = cfg->tls_key_file = NULL;
    /* The origin list is the caller's string: keep a parsed copy. */
    if (cfg->origins && cfg->origins[0]) {
        rc = ws_origins_parse(cfg->origins, &srv->origins, NULL, 0);
        if (rc < 0)
            return rc;
        cfg->origins = srv->origins.text;
    } else {
        cfg->origins = NULL;
    }
    if ((rc = ws_token_key_load(cfg, &srv->token_key)) < 0 ||
        (rc = ws_api_keys_load(cfg->api_key_file, &srv->api_keys)) < 0)
        return rc;
    cfg->token_key_file = cfg->api_key_file = NULL;
    if ((cfg->token_issuer &&
         !(cfg->token_issuer = srv->token_issuer = strdup(cfg->token_issuer))) ||
        (cfg->token_audience &&
         !(cfg->token_audience = srv->token_audience = strdup(cfg->token_audience))))
        return -ENOMEM;
    if (cfg->backplane_url) {
        char err[256];
        if (!(srv->bp_conf = calloc(1, sizeof(*srv->bp_conf))))
            return -ENOMEM;
        if ((rc = ws_backplane_parse(cfg->backplane_url, srv->bp_conf, err, sizeof err)) < 0) {
            ws_log_error("%s", err);
            return rc;
        }
        cfg->backplane_url = NULL;
        if (!(srv->bp_up = calloc(srv->ncores, sizeof(*srv->bp_up))))
            return -ENOMEM;
        if (srv->bp_conf->cluster &&
            !(srv->bp_slots =
                  calloc((size_t)srv->ncores * WS_CLUSTER_SLOTS, sizeof(*srv->bp_slots))))
            return -ENOMEM;
    }
    if (!(cfg->backplane_prefix = srv->bp_prefix = strdup(cfg->backplane_prefix)))
        return -ENOMEM;
    /* Members per room are counted for --max-rooms and for the API's room listing. */
    if ((cfg->max_conns_per_ip && !(srv->ip_counts = ws_keycount_new())) ||
        ((cfg->max_rooms || srv->api_keys) && !(srv->room_counts = ws_keycount_new())))
        return -ENOMEM;
    return 0;
}

/* Connection slots per core: max_conns plus slack, within the open-file limit. */
static uint32_t slots_per_core(const ws_server_t *srv)
{
    const ws_server_config_t *cfg = &srv->cfg;
    rlim_t nofile = raise_nofile();
    uint64_t nslots = (uint64_t)cfg->max_conns + SLOT_SLACK;
    /* Per core: reuseport may send every connection to one core. Keep fds for listeners,
     * rings and the process itself below the limit. */
    rlim_t reserve = 16 + 4 * (rlim_t)srv->ncores;
    if (nofile > reserve && nslots > nofile - reserve) {
        nslots = nofile - reserve;
        ws_log_warn("max-conns %u is above the open-file limit (%llu): connections per core "
                    "are capped at %llu",
                    cfg->max_conns, (unsigned long long)nofile, (unsigned long long)nslots);
    }
    return (uint32_t)nslots;
}

/* The worker structs (not their rings: each thread makes its own), metrics, stop eventfds
 * and the cross-core queues. */
static int cores_new(ws_server_t *srv, uint32_t nslots)
{
    srv->cores = calloc(srv->ncores, sizeof(*srv->cores));
    if (!srv->cores)
        return -ENOMEM;
    for (unsigned i = 0; i < srv->ncores; i++) {
        for (unsigned k = 0; k < WS_LSN_N; k++)
            srv->cores[i].lsn[k].fd = -1; /* free_server closes only what was opened */
        srv->cores[i].stop_efd = -1;
    }
    srv->metrics = aligned_alloc(64, sizeof(ws_metrics_t) * srv->ncores);
    srv->threads = calloc(srv->ncores, sizeof(*srv->threads));
    if (!srv->metrics || !srv->threads)
        return -ENOMEM;
    memset(srv->metrics, 0, sizeof(ws_metrics_t) * srv->ncores);
    for (unsigned i = 0; i < srv->ncores; i++) {
        ws_worker_t *c = &srv->cores[i];
        c->id = i;
        c->ncores = srv->ncores;
        c->srv = srv;
        c->cfg = &srv->cfg;
        c->m = &srv->metrics[i];
        c->nslots = nslots;
        c->stop_efd = eventfd(0, EFD_CLOEXEC);
        if (c->stop_efd < 0) {
            int rc = -errno;
            ws_log_error("eventfd: %s", strerror(-rc));
            return rc;
        }
    }
    return ws_xcore_init(&srv->xcore, srv->ncores);
}

/* One listener of each served kind per core (SO_REUSEPORT), and the "listening on" text. */
static int listeners_open(ws_server_t *srv, char *where, size_t cap)
{
    const ws_server_config_t *cfg = &srv->cfg;
    uint16_t port = cfg->port, tls_port = cfg->tls_port;
    for (unsigned i = 0; i < srv->ncores; i++) {
        for (unsigned k = 0; k < WS_LSN_N; k++) {
            bool tls = k == WS_LSN_TLS;
            if (!(tls ? cfg->tls : cfg->plain))
                continue;
            /* The first listener of each kind also checks that nobody else holds the port. */
            int rc = ws_listener_open(cfg, tls ? &tls_port : &port, i == 0);
            if (rc < 0) {
                ws_log_error("cannot listen%s on %s%s%s port %u: %s", tls ? " for TLS" : "",
                             cfg->bind_addr[0] ? "" : "all", cfg->bind_addr,
                             cfg->bind_addr[0] ? "" : " addresses", tls ? cfg->tls_port : cfg->port,
                             strerror(-rc));
                return rc;
            }
            srv->cores[i].lsn[k].fd = rc;
        }
    }
    srv->port = cfg->plain ? port : 0;
    /* Described now: once the cores run, core 0 owns its listeners and may close them at any
     * time. */
    char plain[128] = "", tls[128] = "";
    if (cfg->plain)
        ws_listener_describe(srv->cores[0].lsn[WS_LSN_PLAIN].fd, plain, sizeof(plain));
    if (cfg->tls)
        ws_listener_describe(srv->cores[0].lsn[WS_LSN_TLS].fd, tls, sizeof(tls));
    snprintf(where, cap, "%s%s%s%s", plain, cfg->plain && cfg->tls ? ", " : "", tls,
             cfg->tls ? " (wss)" : "");
    return 0;
}

/* Starts one thread per core (pinned with --pin) and releases them together once every
 * ring exists. Returns 0 or the first error a core reported. */
static int threads_start(ws_server_t *srv)
{
    const ws_server_config_t *cfg = &srv->cfg;
    /* Workers take no asynchronous signals: the controlling thread handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (cfg->pin) {
        if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
            CPU_ZERO(&allowed);
        if ((unsigned)CPU_COUNT(&allowed) < srv->ncores)
            ws_log_warn("--pin: %u cores on %d allowed CPUs: some CPUs run two workers",
                        srv->ncores, CPU_COUNT(&allowed));
    }
    for (unsigned i = 0; i < srv->ncores; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        int cpu = cfg->pin ? pin_cpu(&allowed, i) : -1;
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
            ws_log_info("core %u pinned to CPU %d", i, cpu);
        }
        int rc = pthread_create(&srv->threads[i], &attr, core_main, &srv->cores[i]);
        pthread_attr_destroy(&attr);
        if (rc) {
            ws_log_error("cannot start core %u: %s", i, strerror(rc));
            atomic_store(&srv->start_err, -rc); /* start none of the loops */
            break;
        }
        srv->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_lock(&srv->start_lock);
    while (srv->nready < srv->nthreads)
        pthread_cond_wait(&srv->start_cond, &srv->start_lock);
    srv->go = true;
    pthread_cond_broadcast(&srv->start_cond);
    pthread_mutex_unlock(&srv->start_lock);
    int rc = atomic_load(&srv->start_err);
    if (rc < 0) {
        for (unsigned i = 0; i < srv->nthreads; i++)
            pthread_join(srv->threads[i], NULL);
        srv->nthreads = 0;
    }
    return rc;
}

int ws_server_start(const ws_server_config_t *cfg_in, ws_server_t **out)
{
    char err[200];
    int rc = ws_server_config_check(cfg_in, err, sizeof(err));
    if (rc < 0) {
        ws_log_error("invalid configuration: %s", err);
        return rc;
    }
    ws_log_set_level(cfg_in->log_level);
    ws_server_t *srv = NULL;
    char where[300];
    if ((rc = server_new(cfg_in, &srv)) < 0 || (rc = probe_in_thread(srv)) < 0)
        goto err;
    ws_probe_log(&srv->feat, &srv->cfg);
    if ((rc = cores_new(srv, slots_per_core(srv))) < 0 ||
        (rc = listeners_open(srv, where, sizeof(where))) < 0 || (rc = threads_start(srv)) < 0)
        goto err;
    const ws_worker_t *c0 = &srv->cores[0];
    ws_log_info("listening on %s with %u core%s (%s%s)", where, srv->ncores,
                srv->ncores == 1 ? "" : "s", c0->direct ? "direct descriptors" : "regular fds",
                c0->direct && srv->cfg.tls && srv->ktls_active ? "; TLS: regular fds, for kTLS"
                                                               : "");
    *out = srv;
    return 0;
err:
    if (srv)
        free_server(srv);
    return rc;
}

void ws_server_stop(ws_server_t *srv)
{
    if (atomic_exchange(&srv->stop_requested, true))
        return;
    static const uint64_t one = 1;
    for (unsigned i = 0; i < srv->ncores; i++) {
        /* An eventfd write only fails on counter overflow, impossible with one write. */
        ssize_t w;
        do
            w = write(srv->cores[i].stop_efd, &one, sizeof(one));
        while (w < 0 && errno == EINTR);
    }
}

int ws_server_wait(ws_server_t *srv)
{
    for (unsigned i = 0; i < srv->nthreads; i++)
        pthread_join(srv->threads[i], NULL);
    /* Events nobody consumed (a core stopped before another's last LEAVE or FANOUT) still
     * hold block references. */
    for (unsigned s = 0; s < srv->ncores && srv->xcore.q; s++) {
        for (unsigned d = 0; d < srv->ncores; d++) {
            if (s == d)
                continue;
            ws_xev_t ev;
            while (ws_xcore_q_pop(ws_xcore_q(&srv->xcore, s, d), &ev)) {
                if (ev.block)
                    ws_block_unref(ev.block);
                if (ev.type == WS_XEV_PUBLISH_NAME)
                    ws_room_free(ev.room); /* made for the event only */
            }
        }
    }
    int rc = 0;
    for (unsigned i = 0; i < srv->ncores; i++) {
        if (srv->cores[i].err && !rc)
            rc = srv->cores[i].err;
    }
    free_server(srv);
    return rc;
}

int ws_server_run(const ws_server_config_t *cfg)
{
    sigset_t wait_set, block_set, old;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGTERM);
    block_set = wait_set;
    sigaddset(&block_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block_set, &old);
    ws_server_t *srv;
    int rc = ws_server_start(cfg, &srv);
    if (rc < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    int sig = 0;
    while (sigwait(&wait_set, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
        ;
    ws_log_info("%s: shutting down (up to %u ms for close handshakes)",
                sig == SIGINT ? "SIGINT" : "SIGTERM", cfg->shutdown_timeout_ms);
    ws_server_stop(srv);
    rc = ws_server_wait(srv);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0)
        ws_log_info("stopped");
    return rc;
}
