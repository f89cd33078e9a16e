/* uringws: the WebSocket broadcast server executable. Parses the command line into a
 * ws_server_config_t and runs the server until SIGINT/SIGTERM. Exit status: 0 after a clean
 * shutdown, 1 when the server cannot start (old kernel, port in use, --ktls require without
 * kTLS...), 2 for a bad command line or an unusable TLS certificate or key.
 *
 * Every option is one row of `options`: getopt_long's table, the short option string and the
 * --help text are all generated from it, so an option cannot be parsed without being
 * documented, and the defaults in --help are formatted from ws_server_config_defaults, never
 * retyped. A row names the ws_server_config_t field its value goes to and how the value is
 * parsed; the few options that do more than set one field have a handler. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_values.h"
#include "uringws/server.h"

#ifndef WS_VERSION
#define WS_VERSION "0.0.0"
#endif

/* What the command line sets besides the server configuration. */
typedef struct cli {
    ws_server_config_t cfg;
    ws_server_config_t defaults; /* what --help prints, whatever came before it */
    int verbose;
    bool quiet;
} cli_t;

enum opt_kind {
    OPT_U64,    /* decimal integer in [min, max] (ws_cli_values_u64) */
    OPT_SIZE,   /* bytes with k/m/g suffixes in [min, max] (ws_cli_values_size) */
    OPT_DUR,    /* duration in [min, max] milliseconds (ws_cli_values_duration) */
    OPT_CHOICE, /* one of `names`; the field gets values[i], or i without values */
    OPT_TEXT,   /* the field is a const char * pointing at the argument */
    OPT_CHARS,  /* the argument is copied into a char array of `width` bytes */
    OPT_TRUE,   /* no value; sets a bool field */
    OPT_FALSE,  /* no value; clears a bool field */
    OPT_FN,     /* no field: `fn` does it all */
};

/* The headings of --help, in the order printed; general has none. */
enum opt_section { SEC_GENERAL, SEC_WSS, SEC_ACCESS, SEC_CLUSTER, SEC_COUNT };

typedef struct opt opt_t;
struct opt {
    const char *name; /* long name, without the dashes */
    char letter;      /* short option, 0 for none */
    const char *arg;  /* value placeholder; NULL: no value (a choice lists its names) */
    const char *help; /* "{}" stands for the default, formatted from the field's default */
    enum opt_kind kind;
    enum opt_section section;
    size_t off, width;        /* the field of ws_server_config_t */
    uint64_t min, max;        /* numbers: accepted range (durations in milliseconds) */
    const char *want;         /* sizes and char arrays: what the error message asks for */
    const char *const *names; /* choices, NULL-terminated, in the order of their enum */
    const int *values;        /* choices: the value of each name; NULL: its index */
    /* When set, called instead of set_field (it may call set_field itself); val is NULL for
     * an option without a value. */
    void (*fn)(cli_t *cli, const opt_t *o, const char *val);
};

#define FIELD(f)                                                                                   \
    .off = offsetof(ws_server_config_t, f), .width = sizeof(((ws_server_config_t *)0)->f)
#define U64(f, lo, hi)     .kind = OPT_U64, FIELD(f), .min = lo, .max = hi
#define SIZE(f, lo, hi, w) .kind = OPT_SIZE, FIELD(f), .min = lo, .max = hi, .want = w
#define DUR(f, lo)         .kind = OPT_DUR, FIELD(f), .min = lo, .max = UINT32_MAX
#define CHOICE(f, n, v)    .kind = OPT_CHOICE, FIELD(f), .names = n, .values = v
#define FLAG(f, on)        .kind = (on) ? OPT_TRUE : OPT_FALSE, FIELD(f)

/* ws_cli_values_choice indexes name lists in these enums' order. */
_Static_assert(WS_KTLS_AUTO == 0 && WS_KTLS_OFF == 1 && WS_KTLS_REQUIRE == 2 && WS_KTLS_TRY == 3,
               "--ktls names follow enum ws_ktls_mode");
_Static_assert(WS_SLOW_CLOSE == 0 && WS_SLOW_DROP_OLDEST == 1,
               "--slow-policy names follow enum ws_slow_policy");
static const char *const slow_policies[] = {"close", "drop-oldest", NULL};
static const char *const ktls_modes[] = {"auto", "off", "require", "try", NULL};
_Static_assert(WS_CLIENT_PUBLISH_ANY == 0 && WS_CLIENT_PUBLISH_TOKEN == 1 &&
                   WS_CLIENT_PUBLISH_NONE == 2 && WS_TOKEN_EXPIRY_CLOSE == 0 &&
                   WS_TOKEN_EXPIRY_KEEP == 1,
               "--client-publish and --token-expiry names follow their enums");
static const char *const client_publish_modes[] = {"any", "token", "none", NULL};
_Static_assert(WS_BACKPLANE_GAP_CLOSE == 0 && WS_BACKPLANE_GAP_IGNORE == 1 &&
                   WS_BACKPLANE_DOWN_REFUSE == 0 && WS_BACKPLANE_DOWN_LOCAL == 1,
               "--backplane-gap and --backplane-down names follow their enums");
static const char *const backplane_gaps[] = {"close", "ignore", NULL};
static const char *const backplane_downs[] = {"refuse", "local", NULL};
static const char *const token_expiry_modes[] = {"close", "keep", NULL};
static const char *const tls_versions[] = {"1.2", "1.3", NULL};
static const int tls_version_values[] = {WS_TLS_MIN_1_2, WS_TLS_MIN_1_3};

static void set_tls_port(cli_t *cli, const opt_t *o, const char *val);
static void count_verbose(cli_t *cli, const opt_t *o, const char *val);
static void set_quiet(cli_t *cli, const opt_t *o, const char *val);
static void print_help(cli_t *cli, const opt_t *o, const char *val);
static void print_version(cli_t *cli, const opt_t *o, const char *val);

static const opt_t options[] = {
    {"cores", 'c', "N", "worker threads, one io_uring each (default: online CPUs)",
     U64(cores, 1, 1024)},
    {"port", 'p', "N", "TCP port (default {})", U64(port, 0, 65535)},
    {"bind", 'b', "ADDR", "IPv4 or IPv6 address (default: all, dual stack)", .kind = OPT_CHARS,
     FIELD(bind_addr), .want = "an IPv4 or IPv6 address"},
    {"max-message", 0, "SIZE", "largest message, k/m/g suffixes (default {})",
     SIZE(max_message, 1, (1ull << 32) - 64, "1 byte to 4g, e.g. 64k or 16m")},
    {"max-conns", 0, "N", "open connections; more get 503 (default {})",
     U64(max_conns, 1, 1u << 24)},
    {"max-conns-per-ip", 0, "N",
     "open connections from one IP address; more get 429 (default {}: no limit)",
     U64(max_conns_per_ip, 0, 1u << 24)},
    {"max-pending", 0, "N",
     "connections still sending their request head; past it the oldest is closed to admit a "
     "new one (default {})",
     U64(max_pending, 1, 1u << 24)},
    {"max-header-bytes", 0, "SIZE", "request head size; larger gets 431 (default {})",
     SIZE(max_header_bytes, 256, 1u << 20, "256 bytes to 1m, e.g. 8k")},
    {"max-headers", 0, "N", "header lines in the request head; more get 431 (default {})",
     U64(max_headers, 1, 128)},
    {"max-rooms", 0, "N",
     "rooms with members; an upgrade that would create one more gets 503 (default {}: no "
     "limit)",
     U64(max_rooms, 0, 1u << 24)},
    {"max-queue", 0, "SIZE",
     "bytes queued per connection; a queue over it that its socket does not drain within "
     "--slow-grace is a slow consumer (default {})",
     SIZE(max_queue, 1024, 1ull << 40, "at least 1k, e.g. 4m")},
    {"max-queue-frames", 0, "N", "frames queued per connection, the same way (default {})",
     U64(max_queue_frames, 1, UINT32_MAX)},
    {"slow-grace", 0, "DUR",
     "how long a queue may stay over those limits while its socket takes the backlog (a "
     "burst); 0 = judged at once (default {})",
     DUR(slow_grace_ms, 0)},
    {"slow-policy", 0, NULL,
     "a slow consumer: close with 1008, or drop its oldest unsent messages (default {})",
     CHOICE(slow_policy, slow_policies, NULL)},
    {"origin", 0, "LIST",
     "comma-separated allowed Origin values, exact; others get 403; `none` admits upgrades "
     "without Origin (default: no check)",
     .kind = OPT_TEXT, FIELD(origins)},
    {"ping-interval", 0, "DUR", "ping every DUR, 0 = never (default {})", DUR(ping_interval_ms, 0)},
    {"idle-timeout", 0, "DUR", "close connections silent for DUR, 0 = never (default {})",
     DUR(idle_timeout_ms, 0)},
    {"handshake-timeout", 0, "DUR",
     "time from accept to the end of the request head; then closed without a response "
     "(default {})",
     DUR(handshake_timeout_ms, 1)},
    {"first-frame-timeout", 0, "DUR",
     "close with 1008 a client that sends no frame within DUR of the 101 (a pong counts), 0 = "
     "never (default {})",
     DUR(first_frame_timeout_ms, 0)},
    {"write-stall-timeout", 0, "DUR",
     "drop a connection whose pending sends make no progress for DUR, 0 = never (default {})",
     DUR(write_stall_ms, 0)},
    {"close-timeout", 0, "DUR", "wait for the peer's close reply (default {})",
     DUR(close_timeout_ms, 1)},
    {"shutdown-timeout", 0, "DUR", "on SIGINT/SIGTERM, wait for close handshakes (default {})",
     DUR(shutdown_timeout_ms, 0)},
    {"pin", 0, NULL, "pin worker i to CPU i (default {})", FLAG(pin, true)},
    {"no-direct", 0, NULL, "regular fds instead of io_uring direct descriptors",
     FLAG(use_direct_fds, false)},
    {"verbose", 'v', NULL, "more logging (repeat for debug)", .kind = OPT_FN, .fn = count_verbose},
    {"quiet", 'q', NULL, "errors only", .kind = OPT_FN, .fn = set_quiet},
    {"help", 'h', NULL, "this text", .kind = OPT_FN, .fn = print_help},
    {"version", 'V', NULL, "print the version", .kind = OPT_FN, .fn = print_version},
    {"tls-port", 0, "N",
     "serve wss:// (and https://) on port N, next to the plain port (0: any free port)",
     U64(tls_port, 0, 65535), .fn = set_tls_port, .section = SEC_WSS},
    {"tls-cert", 0, "FILE", "PEM certificate chain, leaf first", .kind = OPT_TEXT,
     FIELD(tls_cert_file), .section = SEC_WSS},
    {"tls-key", 0, "FILE", "PEM private key of the leaf (RSA or ECDSA)", .kind = OPT_TEXT,
     FIELD(tls_key_file), .section = SEC_WSS},
    {"tls-min", 0, NULL, "oldest TLS version accepted (default {})",
     CHOICE(tls_min_version, tls_versions, tls_version_values), .section = SEC_WSS},
    {"ktls", 0, NULL,
     "kernel TLS after the handshake: auto uses it when the kernel has it, require refuses to "
     "start without it, try attempts it on every connection (testing the fallback) (default {})",
     CHOICE(ktls, ktls_modes, NULL), .section = SEC_WSS},
    {"no-plain", 0, NULL, "no plain ws:// listener: TLS only", FLAG(plain, false),
     .section = SEC_WSS},
    {"token-key", 0, "FILE",
     "verify connection tokens (?token=JWT) with this key: an HS256 secret, or a PEM public "
     "key (RSA: RS256, P-256: ES256, Ed25519: EdDSA)",
     .kind = OPT_TEXT, FIELD(token_key_file), .section = SEC_ACCESS},
    {"require-token", 0, NULL, "refuse upgrades without a valid token with 401",
     FLAG(require_token, true), .section = SEC_ACCESS},
    {"token-leeway", 0, "N", "seconds of clock skew allowed on exp, nbf and iat (default {})",
     U64(token_leeway_s, 0, 3600), .section = SEC_ACCESS},
    {"token-issuer", 0, "ISS", "tokens must carry this iss", .kind = OPT_TEXT, FIELD(token_issuer),
     .section = SEC_ACCESS},
    {"token-audience", 0, "AUD", "tokens must carry this aud", .kind = OPT_TEXT,
     FIELD(token_audience), .section = SEC_ACCESS},
    {"token-expiry", 0, NULL,
     "at a token's exp: close its connection with 1008, or keep it (default {})",
     CHOICE(token_expiry, token_expiry_modes, NULL), .section = SEC_ACCESS},
    {"client-publish", 0, NULL,
     "who may write into a room: any member, members whose token's publish claim covers it, "
     "or none (only the API); others are closed with 1008 (default {})",
     CHOICE(client_publish, client_publish_modes, NULL), .section = SEC_ACCESS},
    {"api-key-file", 0, "FILE",
     "serve the HTTP API under /api/ (docs/api.md) to requests with Authorization: Bearer and "
     "one of the keys in FILE, one per line",
     .kind = OPT_TEXT, FIELD(api_key_file), .section = SEC_ACCESS},
    {"backplane", 0, "URL",
     "rooms span every node on the same Redis: redis://[user:pass@]host:port[/db], or "
     "Redis Cluster: redis-cluster://[user:pass@]host:port[,host:port...]",
     .kind = OPT_TEXT, FIELD(backplane_url), .section = SEC_CLUSTER},
    {"backplane-prefix", 0, "P", "Redis channel and key prefix (default {})", .kind = OPT_TEXT,
     FIELD(backplane_prefix), .section = SEC_CLUSTER},
    {"backplane-gap", 0, NULL,
     "a room that may have missed messages: close its members with 1012, or keep them "
     "(default {})",
     CHOICE(backplane_gap, backplane_gaps, NULL), .section = SEC_CLUSTER},
    {"backplane-down", 0, NULL,
     "publishes while Redis is unreachable: refuse (1013, API 503) or deliver on this node "
     "only (default {})",
     CHOICE(backplane_down, backplane_downs, NULL), .section = SEC_CLUSTER},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char help_intro[] =
    "WebSocket broadcast server on io_uring. Clients join ws://HOST:PORT/<room>\n"
    "(\"/\" is room \"lobby\"); ws://HOST:PORT/echo echoes; GET / serves a chat page,\n"
    "/healthz and /metrics (Prometheus) report health.\n";
static const char *const section_headings[SEC_COUNT] = {
    [SEC_WSS] = "wss (TLS 1.2 and 1.3: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; ALPN "
                "http/1.1):",
    [SEC_ACCESS] = "tokens and the HTTP API (docs/tokens.md, docs/api.md):",
    [SEC_CLUSTER] = "rooms across nodes (docs/cluster.md):",
};
static const char help_outro[] =
    "DUR is seconds, or a number with ms, s or m (\"500ms\", \"30s\", \"2m\").\n";

/* The integer fields of ws_server_config_t are 2, 4 or 8 bytes wide; the range checks of
 * the table keep every value within its field. */
typedef union uint_field {
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
} uint_field_t;

static uint64_t load_uint(const void *p, size_t width)
{
    uint_field_t v;
    memcpy(&v, p, width);
    return width == 2 ? v.u16 : width == 4 ? v.u32 : v.u64;
}

static void store_uint(void *p, size_t width, uint64_t x)
{
    uint_field_t v;
    if (width == 2)
        v.u16 = (uint16_t)x;
    else if (width == 4)
        v.u32 = (uint32_t)x;
    else
        v.u64 = x;
    memcpy(p, &v, width);
}

/* Writes a choice's names into buf as "a, b or c" (sep ", ", last " or ") or "a|b|c". */
static void join_names(const char *const *names, const char *sep, const char *last, char *buf,
                       size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; names[i] && n < len; i++) {
        const char *s = i == 0 ? "" : names[i + 1] ? sep : last;
        n += (size_t)snprintf(buf + n, len - n, "%s%s", s, names[i]);
    }
}

/* Sets the option's field from val, dying with the option's message when val is bad. */
static void set_field(cli_t *cli, const opt_t *o, const char *val)
{
    char flag[40], want[64];
    snprintf(flag, sizeof(flag), "--%s", o->name);
    snprintf(want, sizeof(want), "%" PRIu64 "..%" PRIu64, o->min, o->max);
    char *field = (char *)&cli->cfg + o->off;
    switch (o->kind) {
    case OPT_U64:
        store_uint(field, o->width, ws_cli_values_u64(flag, val, o->min, o->max, want));
        break;
    case OPT_SIZE:
        store_uint(field, o->width, ws_cli_values_size(flag, val, o->min, o->max, o->want));
        break;
    case OPT_DUR:
        store_uint(field, o->width,
                   ws_cli_values_duration(flag, val, (uint32_t)o->min, (uint32_t)o->max));
        break;
    case OPT_CHOICE: {
        join_names(o->names, ", ", " or ", want, sizeof(want));
        int i = ws_cli_values_choice(flag, val, o->names, want);
        store_uint(field, o->width, o->values ? (uint64_t)o->values[i] : (uint64_t)i);
        break;
    }
    case OPT_TEXT:
        memcpy(field, &val, sizeof(val));
        break;
    case OPT_CHARS:
        if (strlen(val) >= o->width)
            ws_cli_values_die(flag, val, o->want);
        memcpy(field, val, strlen(val) + 1);
        break;
    case OPT_TRUE:
    case OPT_FALSE:
        *(bool *)field = o->kind == OPT_TRUE;
        break;
    case OPT_FN:
        break;
    }
}

static void set_tls_port(cli_t *cli, const opt_t *o, const char *val)
{
    cli->cfg.tls = true;
    set_field(cli, o, val);
}

static void count_verbose(cli_t *cli, const opt_t *o, const char *val)
{
    (void)o;
    (void)val;
    cli->verbose++;
}

static void set_quiet(cli_t *cli, const opt_t *o, const char *val)
{
    (void)o;
    (void)val;
    cli->quiet = true;
}

static void print_version(cli_t *cli, const opt_t *o, const char *val)
{
    (void)cli;
    (void)o;
    (void)val;
    printf("uringws %s\n", WS_VERSION);
    exit(0);
}

/* The field's default as the option would take it: "16m", "30s", "close", "off". */
static void format_default(const opt_t *o, const ws_server_config_t *d, char *buf, size_t len)
{
    const char *field = (const char *)d + o->off;
    if (o->kind == OPT_TEXT) { /* a text with a default: "uringws" */
        const char *text;
        memcpy(&text, field, sizeof(text));
        snprintf(buf, len, "%s", text ? text : "");
        return;
    }
    if (o->kind == OPT_CHARS || o->kind == OPT_FN)
        return; /* no number to format: the help text says the default in words */
    uint64_t v = o->kind == OPT_TRUE || o->kind == OPT_FALSE ? *(const bool *)field
                                                             : load_uint(field, o->width);
    static const char units[] = "kmg";
    int u = -1;
    switch (o->kind) {
    case OPT_SIZE:
        while (u < 2 && v >= 1024 && v % 1024 == 0) {
            v /= 1024;
            u++;
        }
        snprintf(buf, len, "%" PRIu64 "%.*s", v, u >= 0 ? 1 : 0, u >= 0 ? &units[u] : "");
        break;
    case OPT_DUR:
        snprintf(buf, len, "%" PRIu64 "%s", v % 1000 ? v : v / 1000, v % 1000 ? "ms" : "s");
        break;
    case OPT_CHOICE:
        for (int i = 0; o->names[i]; i++) {
            if ((o->values ? (uint64_t)o->values[i] : (uint64_t)i) == v)
                snprintf(buf, len, "%s", o->names[i]);
        }
        break;
    case OPT_TRUE:
    case OPT_FALSE:
        snprintf(buf, len, "%s", v ? "on" : "off");
        break;
    default:
        snprintf(buf, len, "%" PRIu64, v);
        break;
    }
}

/* One option of --help: the names and value in the first 28 columns, the help text with
 * its default filled in, wrapped at 80 columns and indented to column 28. */
static void print_option(FILE *out, const opt_t *o, const ws_server_config_t *d)
{
    enum { HELP_COL = 28, WIDTH = 80 };
    char arg[64], def[32] = "", text[512], *save = NULL;
    if (o->kind == OPT_CHOICE && !o->arg)
        join_names(o->names, "|", "|", arg, sizeof(arg));
    else
        snprintf(arg, sizeof(arg), "%s", o->arg ? o->arg : "");
    const char *mark = strstr(o->help, "{}");
    if (mark)
        format_default(o, d, def, sizeof(def));
    snprintf(text, sizeof(text), "%.*s%s%s", mark ? (int)(mark - o->help) : (int)strlen(o->help),
             o->help, def, mark ? mark + 2 : "");
    int col = o->letter ? fprintf(out, "  -%c, --%s", o->letter, o->name)
                        : fprintf(out, "      --%s", o->name);
    if (arg[0])
        col += fprintf(out, " %s", arg);
    col += fprintf(out, "%*s", col + 2 <= HELP_COL ? HELP_COL - col : 2, "");
    /* "(default ...)" is never broken across lines: its spaces are \1 until printed. */
    for (char *p = strstr(text, "(default"); p && *p && *p != ')'; p++)
        *p = *p == ' ' ? '\1' : *p;
    int start = col;
    for (char *w = strtok_r(text, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        int n = (int)strlen(w);
        if (col > start && col + 1 + n > WIDTH) {
            col = fprintf(out, "\n%*s", HELP_COL, "") - 1;
            start = col;
        }
        if (col > start)
            col += fprintf(out, " ");
        for (char *c = w; *c; c++)
            fputc(*c == '\1' ? ' ' : *c, out);
        col += n;
    }
    fputc('\n', out);
}

static void print_help(cli_t *cli, const opt_t *o, const char *val)
{
    (void)o;
    (void)val;
    printf("Usage: %s [options]\n%s", ws_cli_values_prog, help_intro);
    for (int s = 0; s < SEC_COUNT; s++) {
        printf("\n%s%s", section_headings[s] ? section_headings[s] : "",
               section_headings[s] ? "\n" : "");
        for (size_t i = 0; i < N_OPTIONS; i++) {
            if (options[i].section == (enum opt_section)s)
                print_option(stdout, &options[i], &cli->defaults);
        }
    }
    printf("\n%s", help_outro);
    exit(0);
}

/* getopt_long returns an option's letter, or 256 + its row for one without a letter. */
static const opt_t *find_option(int val)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (val == (options[i].letter ? options[i].letter : 256 + (int)i))
            return &options[i];
    }
    return NULL;
}

/* Applies argv to cli. Returns 0, or 2 after printing why the command line is bad. */
static int parse_args(cli_t *cli, int argc, char **argv)
{
    struct option longopts[N_OPTIONS + 1];
    char shortopts[2 * N_OPTIONS + 2] = ":";
    size_t ns = 1;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_t *o = &options[i];
        bool has_arg = o->arg || o->kind == OPT_CHOICE;
        int val = o->letter ? o->letter : 256 + (int)i;
        longopts[i] =
            (struct option){o->name, has_arg ? required_argument : no_argument, NULL, val};
        if (o->letter) {
            shortopts[ns++] = o->letter;
            if (has_arg)
                shortopts[ns++] = ':';
        }
    }
    longopts[N_OPTIONS] = (struct option){NULL, 0, NULL, 0};
    shortopts[ns] = '\0';
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const opt_t *o = find_option(opt);
        if (opt == ':') {
            fprintf(stderr, "%s: option %s needs a value (see --help)\n", ws_cli_values_prog,
                    argv[optind - 1]);
            return 2;
        }
        if (!o) {
            fprintf(stderr, "%s: unknown option %s (see --help)\n", ws_cli_values_prog,
                    argv[optind - 1]);
            return 2;
        }
        if (o->fn)
            o->fn(cli, o, optarg);
        else
            set_field(cli, o, optarg);
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", ws_cli_values_prog,
                argv[optind]);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static cli_t cli;
    ws_server_config_defaults(&cli.cfg);
    cli.defaults = cli.cfg;
    if (parse_args(&cli, argc, argv) != 0)
        return 2;
    ws_server_config_t *cfg = &cli.cfg;
    cfg->log_level = cli.quiet ? WS_LOG_ERROR : WS_LOG_INFO + cli.verbose;
    if (cfg->log_level > WS_LOG_DEBUG)
        cfg->log_level = WS_LOG_DEBUG;
    if (!cfg->tls && (cfg->tls_cert_file || cfg->tls_key_file)) {
        fprintf(stderr, "%s: --tls-cert and --tls-key need --tls-port (see --help)\n",
                ws_cli_values_prog);
        return 2;
    }
    char err[200];
    if (ws_server_config_check(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", ws_cli_values_prog, err);
        return 2;
    }
    /* Keep freed memory for reuse instead of handing it back to the kernel after every
     * burst: glibc trims an arena once 128 KiB at its top are free, and a wss fan-out frees
     * and reallocates megabytes of per-connection ciphertext per message, so every batch
     * faulted its pages back in (10% of a core at 4 KiB messages, docs/benchmarks.md). Up
     * to 64 MiB per arena stays mapped after a burst. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    int rc = ws_server_run(cfg);
    if (rc == -ENOKEY)
        return 2; /* the certificate or key: the one error line says which and why */
    return rc < 0 ? 1 : 0;
}
