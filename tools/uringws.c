/* uringws: the WebSocket broadcast server executable. Parses the command line into a
 * ws_server_config_t and runs the server until SIGINT/SIGTERM. Exit status: 0 after a clean
 * shutdown, 1 when the server cannot start (old kernel, port in use, --ktls require without
 * kTLS...), 2 for a bad command line or an unusable TLS certificate or key. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uringws/server.h"

#ifndef WS_VERSION
#define WS_VERSION "0.0.0"
#endif

static const char *prog = "uringws";

static void usage(FILE *out, const ws_server_config_t *d)
{
    fprintf(out,
            "Usage: %s [options]\n"
            "WebSocket broadcast server on io_uring. Clients join ws://HOST:PORT/<room>\n"
            "(\"/\" is room \"lobby\"); ws://HOST:PORT/echo echoes; GET / serves a chat page,\n"
            "/healthz and /metrics (Prometheus) report health.\n"
            "\n"
            "  -c, --cores N             worker threads, one io_uring each (default: online "
            "CPUs)\n"
            "  -p, --port N              TCP port (default %u)\n"
            "  -b, --bind ADDR           IPv4 or IPv6 address (default: all, dual stack)\n"
            "      --max-message SIZE    largest message, k/m/g suffixes (default 16m)\n"
            "      --max-conns N         open connections; more get 503 (default %" PRIu32 ")\n"
            "      --max-conns-per-ip N  open connections from one IP address; more get 429\n"
            "                            (default 0: no limit)\n"
            "      --max-pending N       connections still sending their request head; past\n"
            "                            it the oldest is closed to admit a new one\n"
            "                            (default %" PRIu32 ")\n"
            "      --max-header-bytes SIZE  request head size; larger gets 431 (default 8k)\n"
            "      --max-headers N       header lines in the request head; more get 431\n"
            "                            (default %" PRIu32 ")\n"
            "      --max-rooms N         rooms with members; an upgrade that would create\n"
            "                            one more gets 503 (default 0: no limit)\n"
            "      --max-queue SIZE      bytes queued per connection; a queue over it that its\n"
            "                            socket does not drain within --slow-grace is a slow\n"
            "                            consumer (default 4m)\n"
            "      --max-queue-frames N  frames queued per connection, the same way\n"
            "                            (default %" PRIu32 ")\n"
            "      --slow-grace DUR      how long a queue may stay over those limits while its\n"
            "                            socket takes the backlog (a burst); 0 = judged at\n"
            "                            once (default 1s)\n"
            "      --slow-policy close|drop-oldest  a slow consumer: close with 1008, or drop\n"
            "                            its oldest unsent messages (default close)\n"
            "      --origin LIST         comma-separated allowed Origin values, exact; others\n"
            "                            get 403; `none` admits upgrades without Origin\n"
            "                            (default: no check)\n"
            "      --ping-interval DUR   ping every DUR, 0 = never (default 30s)\n"
            "      --idle-timeout DUR    close connections silent for DUR, 0 = never\n"
            "                            (default 120s)\n"
            "      --handshake-timeout DUR  time from accept to the end of the request head;\n"
            "                            then closed without a response (default 10s)\n"
            "      --first-frame-timeout DUR  close with 1008 a client that sends no frame\n"
            "                            within DUR of the 101 (a pong counts), 0 = never\n"
            "                            (default 60s)\n"
            "      --write-stall-timeout DUR  drop a connection whose pending sends make no\n"
            "                            progress for DUR, 0 = never (default 30s)\n"
            "      --close-timeout DUR   wait for the peer's close reply (default 5s)\n"
            "      --shutdown-timeout DUR  on SIGINT/SIGTERM, wait for close handshakes\n"
            "                            (default 5s)\n"
            "      --pin                 pin worker i to CPU i (default off)\n"
            "      --no-direct           regular fds instead of io_uring direct descriptors\n"
            "\n"
            "wss (TLS 1.2 and 1.3: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; ALPN http/1.1):\n"
            "      --tls-port N          serve wss:// (and https://) on port N, next to the plain\n"
            "                            port (0: any free port)\n"
            "      --tls-cert FILE       PEM certificate chain, leaf first\n"
            "      --tls-key FILE        PEM private key of the leaf (RSA or ECDSA)\n"
            "      --tls-min 1.2|1.3     oldest TLS version accepted (default 1.2)\n"
            "      --ktls auto|off|require|try  kernel TLS after the handshake: auto uses it\n"
            "                            when the kernel has it, require refuses to start\n"
            "                            without it, try attempts it on every connection\n"
            "                            (testing the fallback) (default auto)\n"
            "      --no-plain            no plain ws:// listener: TLS only\n"
            "  -v, --verbose             more logging (repeat for debug)\n"
            "  -q, --quiet               errors only\n"
            "  -h, --help                this text\n"
            "  -V, --version             print the version\n"
            "\n"
            "DUR is seconds, or a number with ms, s or m (\"500ms\", \"30s\", \"2m\").\n",
            prog, d->port, d->max_conns, d->max_pending, d->max_headers, d->max_queue_frames);
}

static _Noreturn void die_value(const char *opt, const char *val, const char *want)
{
    fprintf(stderr, "%s: invalid value for %s: '%s' (%s)\n", prog, opt, val, want);
    exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max,
                          const char *want)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        die_value(opt, s, want);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        die_value(opt, s, want);
    return v;
}

static uint64_t parse_size(const char *opt, const char *s, uint64_t min, uint64_t max,
                           const char *want)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        die_value(opt, s, want);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        die_value(opt, s, want);
    unsigned shift = 0;
    if (*end) {
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        default:
            die_value(opt, s, want);
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (*end)
            die_value(opt, s, want);
    }
    if (shift && v > (UINT64_MAX >> shift))
        die_value(opt, s, want);
    v <<= shift;
    if (v < min || v > max)
        die_value(opt, s, want);
    return v;
}

/* Index of s in the NULL-terminated names; dies with `want` when absent. */
static int parse_choice(const char *opt, const char *s, const char *const *names, const char *want)
{
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0)
            return i;
    }
    die_value(opt, s, want);
}

/* Duration in milliseconds: "30" (seconds), "500ms", "30s", "2m". */
static uint32_t parse_duration(const char *opt, const char *s, uint32_t min_ms, uint32_t max_ms)
{
    const char *want = "a duration such as 30, 30s, 500ms or 2m";
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        die_value(opt, s, want);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        die_value(opt, s, want);
    unsigned long long mult = 0;
    if (!*end || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else
        die_value(opt, s, want);
    if (v > UINT32_MAX / mult)
        die_value(opt, s, want);
    v *= mult;
    if (v < min_ms || v > max_ms)
        die_value(opt, s, want);
    return (uint32_t)v;
}

/* parse_choice indexes name lists in these enums' order. */
_Static_assert(WS_KTLS_AUTO == 0 && WS_KTLS_OFF == 1 && WS_KTLS_REQUIRE == 2 && WS_KTLS_TRY == 3,
               "--ktls names follow enum ws_ktls_mode");
_Static_assert(WS_SLOW_CLOSE == 0 && WS_SLOW_DROP_OLDEST == 1,
               "--slow-policy names follow enum ws_slow_policy");

enum {
    OPT_MAX_MESSAGE = 256,
    OPT_MAX_CONNS,
    OPT_MAX_QUEUE,
    OPT_PING,
    OPT_IDLE,
    OPT_HANDSHAKE,
    OPT_CLOSE,
    OPT_SHUTDOWN,
    OPT_PIN,
    OPT_NO_DIRECT,
    OPT_TLS_PORT,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_MIN,
    OPT_KTLS,
    OPT_NO_PLAIN,
    OPT_MAX_PER_IP,
    OPT_MAX_PENDING,
    OPT_MAX_HEADER,
    OPT_MAX_ROOMS,
    OPT_SLOW_POLICY,
    OPT_ORIGIN,
    OPT_FIRST_FRAME,
    OPT_WRITE_STALL,
    OPT_MAX_HEADERS,
    OPT_MAX_QUEUE_FRAMES,
    OPT_SLOW_GRACE,
};

int main(int argc, char **argv)
{
    ws_server_config_t cfg, defaults;
    ws_server_config_defaults(&cfg);
    defaults = cfg;
    static const struct option longopts[] = {
        {"cores", required_argument, NULL, 'c'},
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
        {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
        {"max-queue", required_argument, NULL, OPT_MAX_QUEUE},
        {"ping-interval", required_argument, NULL, OPT_PING},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE},
        {"close-timeout", required_argument, NULL, OPT_CLOSE},
        {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN},
        {"pin", no_argument, NULL, OPT_PIN},
        {"no-direct", no_argument, NULL, OPT_NO_DIRECT},
        {"tls-port", required_argument, NULL, OPT_TLS_PORT},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"tls-min", required_argument, NULL, OPT_TLS_MIN},
        {"ktls", required_argument, NULL, OPT_KTLS},
        {"no-plain", no_argument, NULL, OPT_NO_PLAIN},
        {"max-conns-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
        {"max-pending", required_argument, NULL, OPT_MAX_PENDING},
        {"max-header-bytes", required_argument, NULL, OPT_MAX_HEADER},
        {"max-rooms", required_argument, NULL, OPT_MAX_ROOMS},
        {"slow-policy", required_argument, NULL, OPT_SLOW_POLICY},
        {"origin", required_argument, NULL, OPT_ORIGIN},
        {"first-frame-timeout", required_argument, NULL, OPT_FIRST_FRAME},
        {"write-stall-timeout", required_argument, NULL, OPT_WRITE_STALL},
        {"max-headers", required_argument, NULL, OPT_MAX_HEADERS},
        {"max-queue-frames", required_argument, NULL, OPT_MAX_QUEUE_FRAMES},
        {"slow-grace", required_argument, NULL, OPT_SLOW_GRACE},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int verbose = 0;
    bool quiet = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:p:b:vqhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cfg.cores = (unsigned)parse_u64("--cores", optarg, 1, 1024, "1..1024");
            break;
        case 'p':
            cfg.port = (uint16_t)parse_u64("--port", optarg, 0, 65535, "0..65535");
            break;
        case 'b':
            if (strlen(optarg) >= sizeof(cfg.bind_addr))
                die_value("--bind", optarg, "an IPv4 or IPv6 address");
            strcpy(cfg.bind_addr, optarg);
            break;
        case OPT_MAX_MESSAGE:
            cfg.max_message = parse_size("--max-message", optarg, 1, (1ull << 32) - 64,
                                         "1 byte to 4g, e.g. 64k or 16m");
            break;
        case OPT_MAX_CONNS:
            cfg.max_conns = (uint32_t)parse_u64("--max-conns", optarg, 1, 1u << 24, "1..16777216");
            break;
        case OPT_MAX_QUEUE:
            cfg.max_queue =
                parse_size("--max-queue", optarg, 1024, 1ull << 40, "at least 1k, e.g. 4m");
            break;
        case OPT_MAX_PER_IP:
            cfg.max_conns_per_ip =
                (uint32_t)parse_u64("--max-conns-per-ip", optarg, 0, 1u << 24, "0..16777216");
            break;
        case OPT_MAX_PENDING:
            cfg.max_pending =
                (uint32_t)parse_u64("--max-pending", optarg, 1, 1u << 24, "1..16777216");
            break;
        case OPT_MAX_HEADER:
            cfg.max_header_bytes = (uint32_t)parse_size("--max-header-bytes", optarg, 256, 1u << 20,
                                                        "256 bytes to 1m, e.g. 8k");
            break;
        case OPT_MAX_HEADERS:
            cfg.max_headers = (uint32_t)parse_u64("--max-headers", optarg, 1, 128, "1..128");
            break;
        case OPT_MAX_QUEUE_FRAMES:
            cfg.max_queue_frames =
                (uint32_t)parse_u64("--max-queue-frames", optarg, 1, UINT32_MAX, "1..4294967295");
            break;
        case OPT_MAX_ROOMS:
            cfg.max_rooms = (uint32_t)parse_u64("--max-rooms", optarg, 0, 1u << 24, "0..16777216");
            break;
        case OPT_SLOW_POLICY: {
            /* In the order of enum ws_slow_policy. */
            static const char *const names[] = {"close", "drop-oldest", NULL};
            cfg.slow_policy = parse_choice("--slow-policy", optarg, names, "close or drop-oldest");
            break;
        }
        case OPT_ORIGIN:
            cfg.origins = optarg;
            break;
        case OPT_FIRST_FRAME:
            cfg.first_frame_timeout_ms =
                parse_duration("--first-frame-timeout", optarg, 0, UINT32_MAX);
            break;
        case OPT_SLOW_GRACE:
            cfg.slow_grace_ms = parse_duration("--slow-grace", optarg, 0, UINT32_MAX);
            break;
        case OPT_WRITE_STALL:
            cfg.write_stall_ms = parse_duration("--write-stall-timeout", optarg, 0, UINT32_MAX);
            break;
        case OPT_PING:
            cfg.ping_interval_ms = parse_duration("--ping-interval", optarg, 0, UINT32_MAX);
            break;
        case OPT_IDLE:
            cfg.idle_timeout_ms = parse_duration("--idle-timeout", optarg, 0, UINT32_MAX);
            break;
        case OPT_HANDSHAKE:
            cfg.handshake_timeout_ms = parse_duration("--handshake-timeout", optarg, 1, UINT32_MAX);
            break;
        case OPT_CLOSE:
            cfg.close_timeout_ms = parse_duration("--close-timeout", optarg, 1, UINT32_MAX);
            break;
        case OPT_SHUTDOWN:
            cfg.shutdown_timeout_ms = parse_duration("--shutdown-timeout", optarg, 0, UINT32_MAX);
            break;
        case OPT_PIN:
            cfg.pin = true;
            break;
        case OPT_NO_DIRECT:
            cfg.use_direct_fds = false;
            break;
        case OPT_TLS_PORT:
            cfg.tls = true;
            cfg.tls_port = (uint16_t)parse_u64("--tls-port", optarg, 0, 65535, "0..65535");
            break;
        case OPT_TLS_CERT:
            cfg.tls_cert_file = optarg;
            break;
        case OPT_TLS_KEY:
            cfg.tls_key_file = optarg;
            break;
        case OPT_TLS_MIN: {
            static const char *const names[] = {"1.2", "1.3", NULL};
            cfg.tls_min_version = parse_choice("--tls-min", optarg, names, "1.2 or 1.3") == 0
                                      ? WS_TLS_MIN_1_2
                                      : WS_TLS_MIN_1_3;
            break;
        }
        case OPT_KTLS: {
            /* In the order of enum ws_ktls_mode. */
            static const char *const names[] = {"auto", "off", "require", "try", NULL};
            cfg.ktls = parse_choice("--ktls", optarg, names, "auto, off, require or try");
            break;
        }
        case OPT_NO_PLAIN:
            cfg.plain = false;
            break;
        case 'v':
            verbose++;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout, &defaults);
            return 0;
        case 'V':
            printf("uringws %s\n", WS_VERSION);
            return 0;
        case ':':
            fprintf(stderr, "%s: option %s needs a value (see --help)\n", prog, argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "%s: unknown option %s (see --help)\n", prog, argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[optind]);
        return 2;
    }
    cfg.log_level = quiet ? WS_LOG_ERROR : WS_LOG_INFO + verbose;
    if (cfg.log_level > WS_LOG_DEBUG)
        cfg.log_level = WS_LOG_DEBUG;
    if (!cfg.tls && (cfg.tls_cert_file || cfg.tls_key_file)) {
        fprintf(stderr, "%s: --tls-cert and --tls-key need --tls-port (see --help)\n", prog);
        return 2;
    }
    char err[200];
    if (ws_server_config_check(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    /* Keep freed memory for reuse instead of handing it back to the kernel after every
     * burst: glibc trims an arena once 128 KiB at its top are free, and a wss fan-out frees
     * and reallocates megabytes of per-connection ciphertext per message, so every batch
     * faulted its pages back in (10% of a core at 4 KiB messages, docs/benchmarks.md). Up
     * to 64 MiB per arena stays mapped after a burst. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    int rc = ws_server_run(&cfg);
    if (rc == -ENOKEY)
        return 2; /* the certificate or key: the one error line says which and why */
    return rc < 0 ? 1 : 0;
}
