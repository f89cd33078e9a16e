/* Command line of the fan-out load generator; see args.h. Every option is one row of
 * `options`: getopt_long's table and --help are both generated from it, and the defaults in
 * --help are formatted from `defaults`, the configuration a run starts from. After the
 * options come the rules between them (mode-dependent defaults, connections per process)
 * and the loopback-only check of the target. Nothing here opens a connection. */
#include "args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mode-dependent defaults, for the options not given. */
#define ALLTOALL_SIZE      20   /* --size in alltoall */
#define SATURATE_COALESCE  5000 /* --coalesce-us in saturate */
#define SRC_ADDRS_MIN      8    /* --src-addrs is max(--procs, this) */
#define STRINGIFY(x)       #x
#define STRINGIFY_VALUE(x) STRINGIFY(x)

static const ws_fo_config_t defaults = {
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

_Static_assert(WS_FO_OPEN == 0 && WS_FO_IDLE == 4, "mode names follow enum ws_fo_mode");
static const char *const mode_names[] = {"open", "saturate", "alltoall", "storm", "idle", NULL};

enum opt_kind {
    OPT_REAL,  /* a number in [min, max] into a double */
    OPT_WHOLE, /* a whole number in [min, max] into an unsigned */
    OPT_PID,   /* a whole number in [min, max] into an int */
    OPT_TEXT,  /* the field is a const char * pointing at the argument */
    OPT_CHARS, /* the argument is copied into a char array of `width` bytes */
    OPT_MODE,  /* one of mode_names into an enum ws_fo_mode */
    OPT_FLAG,  /* no value; sets a bool */
    OPT_HELP,  /* no value; prints the help and exits 0 */
    OPT_ALIAS, /* another name for the option `alias` */
};

typedef struct opt {
    const char *name; /* long name, without the dashes */
    const char *arg;  /* value placeholder; NULL: no value */
    const char *help; /* "{}" stands for the default, formatted from `defaults` */
    enum opt_kind kind;
    size_t off, width; /* the field of ws_fo_config_t */
    double min, max;   /* numbers: accepted range */
    const char *alias; /* OPT_ALIAS: the name of the option this one stands for */
} opt_t;

#define FIELD_SIZE(f)    sizeof(((ws_fo_config_t *)0)->f)
#define FIELD(f)         .off = offsetof(ws_fo_config_t, f), .width = FIELD_SIZE(f)
#define REAL(f, lo, hi)  .kind = OPT_REAL, FIELD(f), .min = lo, .max = hi
#define WHOLE(f, lo, hi) .kind = OPT_WHOLE, FIELD(f), .min = lo, .max = hi

static const opt_t options[] = {
    {"url", "URL", "ws:// or wss:// target on a loopback address (127.0.0.0/8, ::1)",
     .kind = OPT_TEXT, FIELD(url)},
    {"mode", "MODE", "{}", .kind = OPT_MODE, FIELD(mode)},
    {"subs", "S", "subscribers per room; clients in alltoall (default {})", WHOLE(subs, 1, 1e6)},
    {"clients", "N", "same as --subs", .kind = OPT_ALIAS, .alias = "subs"},
    {"pubs", "P", "publishers per room (default {}); they receive too", WHOLE(pubs, 0, 1e4)},
    {"rooms", "N", "rooms ROOM-0..ROOM-(N-1) when N > 1 (default {})", WHOLE(rooms, 1, 1e5)},
    {"size", "B",
     "message bytes, " STRINGIFY_VALUE(WS_FO_MIN_SIZE) ".." STRINGIFY_VALUE(
         WS_FO_MAX_SIZE) " (default {}; alltoall " STRINGIFY_VALUE(ALLTOALL_SIZE) ")",
     WHOLE(size, WS_FO_MIN_SIZE, WS_FO_MAX_SIZE)},
    {"rate", "R", "messages/s per publisher, open mode (default {})", REAL(rate, 0.001, 1e7)},
    {"start-rate", "R", "saturate: first total rate (default rate x pubs x rooms)",
     REAL(start_rate, 0.001, 1e8)},
    {"p99-bound", "MS", "saturate: a step holds when p99 <= MS and nothing is lost ({})",
     REAL(p99_bound_ms, 0.001, 1e6)},
    {"step-duration", "SEC", "saturate: measured seconds per step (default {})",
     REAL(step_s, 0.1, 3600)},
    {"max-time", "SEC", "saturate: bound on the whole search (default {})",
     REAL(max_time_s, 1, 86400)},
    {"warmup", "SEC", "unmeasured seconds before each measurement (default {})",
     REAL(warmup_s, 0, 3600)},
    {"duration", "SEC", "measured seconds, open and alltoall (default {})",
     REAL(duration_s, 0.1, 86400)},
    {"drain", "SEC", "wait for in-flight messages after the window (default {})",
     REAL(drain_s, 0, 3600)},
    {"procs", "K",
     "worker processes (default {}; at most " STRINGIFY_VALUE(
         WS_FO_MAX_PER_PROC) " connections each)",
     WHOLE(procs, 1, WS_FO_MAX_PROCS)},
    {"src-addrs", "N",
     "spread connections over source 127.0.0.1..N (default max(K, " STRINGIFY_VALUE(
         SRC_ADDRS_MIN) "))",
     WHOLE(src_addrs, 1, 254)},
    {"connect-window", "N", "connects in flight at once, all workers (default {})",
     WHOLE(window, 1, 1e6)},
    {"coalesce-us", "US",
     "under continuous traffic, wait up to US between rounds of reads so one read takes "
     "several frames (default {}; saturate " STRINGIFY_VALUE(SATURATE_COALESCE) ")",
     WHOLE(coalesce_us, 0, 100000)},
    {"settle", "SEC", "idle: wait before reading the server's RSS (default {})",
     REAL(settle_s, 0, 3600)},
    {"server-pid", "PID", "also report server CPU (and RSS in idle mode)", .kind = OPT_PID,
     FIELD(server_pid), .min = 1, .max = 1e9},
    {"cpus", "LIST", "pin workers to these CPUs, round robin (e.g. 1 or 2-3,5)", .kind = OPT_CHARS,
     FIELD(cpus)},
    {"json", NULL, "print one JSON object instead of the table", .kind = OPT_FLAG, FIELD(json)},
    {"help", NULL, "this text", .kind = OPT_HELP},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char help_head[] = "usage: fanout --url ws://HOST:PORT/ROOM [options]\n";
static const char help_tail[] =
    "Exit status: 0 done, 1 run failed, 2 bad usage, 3 client saturated (result refused).\n";

static _Noreturn void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "fanout: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    exit(WS_FO_EXIT_USAGE);
}

static double parse_num(const char *flag, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "bad value for %s: '%%s' (allowed %g..%g)", flag, lo, hi);
        die_usage(msg, s);
    }
    return v;
}

static unsigned parse_whole(const char *flag, const char *s, double lo, double hi)
{
    double v = parse_num(flag, s, lo, hi);
    if (v != floor(v))
        die_usage("%s takes a whole number", flag);
    return (unsigned)v;
}

/* Parses ws[s]://HOST[:PORT]/ROOM and checks that HOST is a loopback address. */
static void parse_url(ws_fo_config_t *cfg, const char *url)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        p = url + 6;
        cfg->tls = true;
    } else {
        die_usage("--url must start with ws:// or wss://: '%s'", url);
    }
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    if (hostport == 0 || hostport >= sizeof(cfg->host))
        die_usage("bad host in --url '%s'", url);
    memcpy(cfg->host, p, hostport);
    cfg->host[hostport] = 0;
    snprintf(cfg->room, sizeof(cfg->room), "%s", slash && slash[1] ? slash + 1 : "bench");
    char host[64];
    const char *port = NULL;
    if (cfg->host[0] == '[') {
        const char *rb = strchr(cfg->host, ']');
        if (!rb)
            die_usage("bad IPv6 host in --url '%s'", url);
        snprintf(host, sizeof(host), "%.*s", (int)(rb - cfg->host - 1), cfg->host + 1);
        if (rb[1] == ':')
            port = rb + 2;
        else if (rb[1])
            die_usage("bad host in --url '%s'", url);
    } else {
        snprintf(host, sizeof(host), "%s", cfg->host);
        char *colon = strchr(host, ':');
        if (colon) {
            *colon = 0;
            port = cfg->host + (colon - host) + 1;
        }
    }
    unsigned portno = port ? parse_whole("the --url port", port, 1, 65535) : cfg->tls ? 443 : 80;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0)
        die_usage("cannot resolve the --url host '%s'", host);
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
        die_usage("refusing a target that is not loopback (127.0.0.0/8 or ::1): '%s'", host);
}

int ws_fo_args_cpus(const char *s, int *cpus, int max)
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

const char *ws_fo_args_mode_name(enum ws_fo_mode m)
{
    return mode_names[m];
}

/* The mode names joined by sep; `mark` follows the default one. */
static void join_modes(const char *sep, const char *mark, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; mode_names[i] && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s%s", i ? sep : "", mode_names[i],
                              (int)defaults.mode == i ? mark : "");
}

/* The help text of o with "{}" replaced by the default. */
static void expand_help(const opt_t *o, char *buf, size_t len)
{
    char def[128] = "";
    const char *mark = strstr(o->help, "{}");
    const char *field = (const char *)&defaults + o->off;
    if (mark && o->kind == OPT_REAL)
        snprintf(def, sizeof(def), "%g", *(const double *)field);
    else if (mark && o->kind == OPT_WHOLE)
        snprintf(def, sizeof(def), "%u", *(const unsigned *)field);
    else if (mark && o->kind == OPT_MODE)
        join_modes(" | ", " (default)", def, sizeof(def));
    snprintf(buf, len, "%.*s%s%s", mark ? (int)(mark - o->help) : (int)strlen(o->help), o->help,
             def, mark ? mark + 2 : "");
}

/* One option of --help: name and value in the first 23 columns, then the help text wrapped
 * at 88 columns; "(default ...)" is never broken (its spaces are \1 until printed). */
static void print_option(const opt_t *o)
{
    enum { HELP_COL = 23, WIDTH = 88 };
    char text[512], *save = NULL;
    expand_help(o, text, sizeof(text));
    for (char *p = strstr(text, "(default"); p && *p && *p != ')'; p++)
        *p = *p == ' ' ? '\1' : *p;
    int col = printf("  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    col += printf("%*s", col + 1 <= HELP_COL ? HELP_COL - col : 1, "");
    int start = col;
    for (char *w = strtok_r(text, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        int n = (int)strlen(w);
        if (col > start && col + 1 + n > WIDTH) {
            col = printf("\n%*s", HELP_COL, "") - 1;
            start = col;
        }
        if (col > start)
            col += printf(" ");
        for (char *c = w; *c; c++)
            putchar(*c == '\1' ? ' ' : *c);
        col += n;
    }
    putchar('\n');
}

static void print_help(void)
{
    fputs(help_head, stdout);
    for (size_t i = 0; i < N_OPTIONS; i++)
        print_option(&options[i]);
    fputs(help_tail, stdout);
}

/* The row an option's value goes to: itself, or the row it is an alias of. */
static size_t target_row(size_t i)
{
    if (options[i].kind != OPT_ALIAS)
        return i;
    for (size_t j = 0; j < N_OPTIONS; j++) {
        if (strcmp(options[j].name, options[i].alias) == 0)
            return j;
    }
    abort(); /* an alias of no option: a bug in the table */
}

static void set_option(ws_fo_config_t *cfg, const opt_t *o, const char *val)
{
    char flag[40], msg[160];
    snprintf(flag, sizeof(flag), "--%s", o->name);
    char *field = (char *)cfg + o->off;
    switch (o->kind) {
    case OPT_REAL:
        *(double *)field = parse_num(flag, val, o->min, o->max);
        break;
    case OPT_WHOLE:
        *(unsigned *)field = parse_whole(flag, val, o->min, o->max);
        break;
    case OPT_PID:
        *(int *)field = (int)parse_whole(flag, val, o->min, o->max);
        break;
    case OPT_TEXT:
        *(const char **)field = val;
        break;
    case OPT_CHARS:
        snprintf(msg, sizeof(msg), "%s list too long: '%%s'", flag);
        if (strlen(val) >= o->width)
            die_usage(msg, val);
        memcpy(field, val, strlen(val) + 1);
        break;
    case OPT_MODE: {
        int m = 0;
        while (mode_names[m] && strcmp(val, mode_names[m]) != 0)
            m++;
        char names[64];
        join_modes("|", "", names, sizeof(names));
        snprintf(msg, sizeof(msg), "bad %s '%%s' (%s)", flag, names);
        if (!mode_names[m])
            die_usage(msg, val);
        *(enum ws_fo_mode *)field = (enum ws_fo_mode)m;
        break;
    }
    case OPT_FLAG:
        *(bool *)field = true;
        break;
    case OPT_HELP:
        print_help();
        exit(0);
    case OPT_ALIAS:
        abort(); /* getopt_long returns the row of the option it stands for */
    }
}

/* Whether the option that sets the field at `off` was given. */
static bool given_field(const bool *given, size_t off)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (given[i] && options[i].kind != OPT_ALIAS && options[i].off == off)
            return true;
    }
    return false;
}

/* The rules between options, once all are read; given[i] says whether row i was. */
static void apply_rules(ws_fo_config_t *cfg, const bool *given)
{
    /* Without coalescing, a plain-ws client that keeps up reads once per server send and
     * reaches 90% of a core long before one uringws core does (measured: refused at 400
     * msgs/s x 1010 members; with 5 ms held across scheduled sends, 12.9M deliveries/s held
     * at 0.78 of a core; docs/fanout.md). 5 ms is 5% of the default p99 bound. */
    if (!given_field(given, offsetof(ws_fo_config_t, coalesce_us)))
        cfg->coalesce_us = cfg->mode == WS_FO_SATURATE ? SATURATE_COALESCE : 0;
    /* Every source address has its own ephemeral range towards the server; loopback has
     * them all, so spreading costs nothing and keeps connect() off a crowded range. */
    if (!given_field(given, offsetof(ws_fo_config_t, src_addrs)))
        cfg->src_addrs = cfg->procs > SRC_ADDRS_MIN ? cfg->procs : SRC_ADDRS_MIN;
    if (cfg->mode == WS_FO_ALLTOALL) {
        if (!given_field(given, offsetof(ws_fo_config_t, size)))
            cfg->size = ALLTOALL_SIZE;
        if (cfg->procs != 1)
            die_usage("%s", "--mode alltoall runs in one process (--procs 1)");
        cfg->rooms = 1;
        cfg->pubs = 0;
    }
    if ((cfg->mode == WS_FO_OPEN || cfg->mode == WS_FO_SATURATE) && cfg->pubs == 0)
        die_usage("%s", "--pubs must be at least 1 in this mode");
    if (cfg->mode == WS_FO_STORM || cfg->mode == WS_FO_IDLE)
        cfg->pubs = 0;
    if (cfg->mode == WS_FO_IDLE && !cfg->server_pid)
        die_usage("%s", "--mode idle needs --server-pid");
    unsigned members = cfg->subs + cfg->pubs;
    double total = (double)members * cfg->rooms;
    if (total > (double)cfg->procs * WS_FO_MAX_PER_PROC) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%.0f connections need --procs %.0f or more", total,
                 ceil(total / WS_FO_MAX_PER_PROC));
        die_usage("%s", msg);
    }
    if (cfg->cpus[0]) {
        int cpus[CPU_SETSIZE];
        if (ws_fo_args_cpus(cfg->cpus, cpus, CPU_SETSIZE) < 0)
            die_usage("bad --cpus list '%s'", cfg->cpus);
    }
}

void ws_fo_args_parse(ws_fo_config_t *cfg, int argc, char **argv)
{
    struct option longopts[N_OPTIONS + 1];
    bool given[N_OPTIONS] = {false};
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_t *o = &options[target_row(i)];
        longopts[i] = (struct option){options[i].name, o->arg ? required_argument : no_argument,
                                      NULL, 256 + (int)target_row(i)};
    }
    longopts[N_OPTIONS] = (struct option){NULL, 0, NULL, 0};
    *cfg = defaults;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c < 256)
            die_usage("unknown or incomplete option '%s'", argv[optind - 1]);
        given[c - 256] = true;
        set_option(cfg, &options[c - 256], optarg);
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!cfg->url)
        die_usage("%s", "--url is required");
    parse_url(cfg, cfg->url);
    apply_rules(cfg, given);
}
