/* The uringws server: configuration with every limit as a named field, and the calls that
 * start, stop and wait for the io_uring engine (net/). The engine runs one thread per core,
 * each with its own ring, listener and connections; this header hides all of that. */
#ifndef URINGWS_SERVER_H
#define URINGWS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uringws/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WS_BIND_MAX 64 /* bytes of the bind address literal, NUL included */

/* Log levels for ws_server_config_t.log_level (and net/log.h). */
enum ws_log_level {
    WS_LOG_ERROR = 0,   /* always printed unless the level is below 0 */
    WS_LOG_WARN = 1,    /* degraded features, resource trouble */
    WS_LOG_INFO = 2,    /* start-up: features found, listening address; the default */
    WS_LOG_VERBOSE = 3, /* -v: one line per rejection, protocol close, slow consumer */
    WS_LOG_DEBUG = 4,   /* -vv: connection life cycle */
};

/* TLS protocol versions for ws_server_config_t.tls_min_version (as on the wire, the same
 * values as WS_TLS_V1_2 / WS_TLS_V1_3 of uringws/tls.h). */
#define WS_TLS_MIN_1_2 0x0303
#define WS_TLS_MIN_1_3 0x0304

/* What to do with kernel TLS (ws_server_config_t.ktls). The kernel is probed once at start
 * (TCP_ULP "tls" on a loopback pair). */
enum ws_ktls_mode {
    WS_KTLS_AUTO = 0, /* hand TX (and RX where the kernel takes it) to the kernel after each
                         handshake when the probe passed; else log once, stay in userspace */
    WS_KTLS_OFF,      /* always userspace TLS */
    WS_KTLS_REQUIRE,  /* refuse to start (-EOPNOTSUPP) when the probe fails */
    WS_KTLS_TRY,      /* attempt the hand-off on every connection whatever the probe said:
                         exercises the per-connection fallback (a kernel may refuse one
                         cipher or RX only); on a kernel without kTLS every attempt fails
                         with ENOENT and the connection stays in userspace */
};

/* What a slow consumer (ws_server_config_t.slow_policy) gets. */
enum ws_slow_policy {
    WS_SLOW_CLOSE = 0,   /* close with 1008 after dropping what is queued (no gaps ever) */
    WS_SLOW_DROP_OLDEST, /* drop the oldest queued data frames that no send has started, down
                            to 3/4 of the limit; the connection stays open and sees gaps */
};

/* Whether members of a room may write into it (ws_server_config_t.client_publish). */
enum ws_client_publish {
    WS_CLIENT_PUBLISH_ANY = 0, /* every member (the chat page); the default */
    WS_CLIENT_PUBLISH_TOKEN,   /* members whose token's `publish` claim covers the room */
    WS_CLIENT_PUBLISH_NONE,    /* nobody: only the HTTP API publishes (a feed) */
};

/* What happens to a live connection when its token's exp passes (token_expiry). */
enum ws_token_expiry {
    WS_TOKEN_EXPIRY_CLOSE = 0, /* close with 1008 "token expired"; the default */
    WS_TOKEN_EXPIRY_KEEP,      /* keep it: the token only decides the upgrade */
};

/* The Redis backplane's answer to a room that may have missed messages (backplane_gap). */
enum ws_backplane_gap {
    WS_BACKPLANE_GAP_CLOSE = 0, /* close its members with 1012 so they reconnect; the default */
    WS_BACKPLANE_GAP_IGNORE,    /* keep them; the gap is counted and logged */
};

/* Publishes while the backplane is down (backplane_down). */
enum ws_backplane_down {
    WS_BACKPLANE_DOWN_REFUSE = 0, /* a member's write: close 1013; the API: 503; the default */
    WS_BACKPLANE_DOWN_LOCAL,      /* delivered to this node's members only */
};

#define WS_ORIGINS_MAX 64  /* entries in the --origin list */
#define WS_ORIGIN_LEN  256 /* bytes of one entry */

/* Every limit the server enforces. ws_server_config_defaults() fills in the documented
 * defaults; a field left 0 where "0 = default" is said also takes the default. */
typedef struct ws_server_config {
    /* Threads. */
    unsigned cores; /* worker threads, one io_uring each. Default 0: online CPUs */
    bool pin;       /* pin worker i to CPU i (modulo online CPUs). Default false */

    /* Listening. */
    char bind_addr[WS_BIND_MAX]; /* IPv4 or IPv6 literal; "" = all addresses: [::] dual
                                    stack (IPV6_V6ONLY=0), or 0.0.0.0 without IPv6.
                                    Default "" */
    uint16_t port;               /* TCP port; 0 lets the kernel pick (see ws_server_port).
                                    Default 8080 */
    int backlog;                 /* listen() backlog per core. Default 4096 */

    /* Connections. */
    uint32_t max_conns;        /* open connections, all cores together; a new one past it
                                  gets `503` and is closed. Default 10000 */
    uint64_t max_message;      /* bytes of one assembled message; over it: close 1009.
                                  Default 16 MiB (WS_MAX_MESSAGE_DEFAULT) */
    uint64_t max_queue;        /* bytes queued for sending on one connection. A queue over
                                  it for longer than slow_grace_ms (its socket did not take
                                  the backlog in that time) is a slow consumer: slow_policy
                                  applies. A lone queued frame never counts as over.
                                  Default 4 MiB */
    uint32_t max_queue_frames; /* frames queued on one connection; over it: as above.
                                  Default 65536 */
    uint32_t max_header_bytes; /* HTTP request head; over it: 431. Default 8 KiB */
    uint32_t max_headers;      /* HTTP header lines; over it: 431. Default 64 */
    uint32_t max_conns_per_ip; /* open connections from one remote address (exact IPv4 or
                                  IPv6 address, all cores together); a new one past it gets
                                  `429` and is closed. 0 = no limit. Default 0 */
    uint32_t max_pending;      /* connections still sending their request head, all cores
                                  together (each core keeps max_pending / cores); a new
                                  connection past it evicts the core's oldest such connection
                                  (closed without a response), so clients that trickle their
                                  head (slowloris) cannot lock out new ones. Default 1024 */
    uint32_t max_rooms;        /* rooms with members, all cores together; an upgrade that
                                  would create one more gets `503`. 0 = no limit (rooms are
                                  still bounded by max_conns). Default 0 */
    int slow_policy;           /* enum ws_slow_policy: what a slow consumer (over max_queue
                                  or max_queue_frames for slow_grace_ms) gets.
                                  Default WS_SLOW_CLOSE */
    /* Origin allow-list: comma-separated exact origins ("https://a.example,http://b:8080"),
     * compared ASCII case-insensitively with the upgrade's Origin header; any other origin
     * gets `403`. The entry `none` admits upgrades without an Origin header (non-browser
     * clients), which are refused otherwise. NULL or "" = no check (every origin, and none,
     * is accepted). Copied by ws_server_start. Default NULL */
    const char *origins;

    /* Time limits, in milliseconds. */
    uint32_t handshake_timeout_ms;   /* accept to complete request head (TLS handshake
                                        included), a total not extended by arriving bytes;
                                        then closed without a response. Default 10 s */
    uint32_t ping_interval_ms;       /* a ping to every open connection this often; 0 = never.
                                        Default 30 s */
    uint32_t idle_timeout_ms;        /* close (1001) a connection silent this long; 0 = never.
                                        Default 120 s */
    uint32_t first_frame_timeout_ms; /* after the 101: close (1008) a connection that has
                                        sent no complete frame (a message, ping, pong or
                                        close; the pong to the server's first ping counts)
                                        this long; 0 = never. Default 60 s */
    uint32_t slow_grace_ms;          /* how long a send queue may stay over max_queue or
                                        max_queue_frames while its socket drains it (a burst)
                                        before slow_policy applies; 0 = at once. The room's
                                        traffic during this time is the memory a stuck member
                                        may hold beyond max_queue (docs/operations.md).
                                        Default 1 s */
    uint32_t write_stall_ms;         /* a connection with bytes to send whose sends have made no
                                        progress this long is dropped (no close frame: it could
                                        not be delivered); 0 = never. Default 30 s */
    uint32_t close_timeout_ms;       /* after the server's close frame or a final HTTP
                                        response: wait this long for the peer, then drop the
                                        socket. Default 5 s */
    uint32_t shutdown_timeout_ms;    /* on stop: after sending 1001 to everyone, wait this long
                                        for the close handshakes. Default 5 s */
    uint32_t tick_ms;                /* period of the per-core timer tick that checks all the
                                        deadlines above (their resolution). Default 250 ms */

    /* Rings and buffers (per core). */
    uint32_t sq_entries;     /* submission queue entries. Default 4096 */
    uint32_t cq_entries;     /* completion queue entries (multishot ops post many CQEs per
                                SQE). Default 65536 */
    uint32_t recv_buf_size;  /* bytes of one provided receive buffer. Default 4 KiB */
    uint32_t recv_bufs;      /* provided buffers at start. Default 1024 */
    uint32_t recv_bufs_max;  /* the buffer ring grows on ENOBUFS up to this many (at most
                                32768). Default 16384 */
    uint32_t send_max_iov;   /* queued frames gathered into one sendmsg. Default 64 */
    uint32_t send_max_bytes; /* bytes gathered into one sendmsg (a single larger frame is
                                still sent whole). Default 1 MiB */

    /* Engine switches. */
    bool use_direct_fds; /* accept into io_uring's fixed-file table when the kernel can;
                            false keeps regular fds (needed for setsockopt-based features
                            such as kTLS). Applies to the plain listener: TLS connections
                            always use regular fds (see tls_port). Default true */

    /* wss. The strings are read by ws_server_start only (the certificate and key are
     * loaded there), so they need not outlive it. */
    bool plain;                /* serve ws:// on `port`. Default true; false needs tls */
    bool tls;                  /* serve wss:// on tls_port. Default false */
    uint16_t tls_port;         /* TCP port of the TLS listeners; 0 lets the kernel pick (the
                                  start-up log names it). TLS connections are accepted as
                                  regular fds, never direct descriptors, so that the kTLS
                                  hand-off (a setsockopt) is possible. Default 0 */
    const char *tls_cert_file; /* PEM chain, leaf first, then intermediates */
    const char *tls_key_file;  /* PEM private key (RSA or ECDSA) of the leaf */
    uint16_t tls_min_version;  /* WS_TLS_MIN_1_2 (default) or WS_TLS_MIN_1_3; the maximum is
                                  always TLS 1.3 */
    int ktls;                  /* enum ws_ktls_mode. Default WS_KTLS_AUTO */

    /* Connection tokens (docs/tokens.md): JWTs passed as `?token=` on the upgrade URL. The
     * strings are read by ws_server_start only. */
    const char *token_key_file; /* the one key tokens are verified with: a secret for HS256
                                   (the file's bytes, at least 32), or a PEM public key (RSA:
                                   RS256, P-256: ES256, Ed25519: EdDSA). NULL = tokens are not
                                   looked at. Default NULL */
    bool require_token;         /* an upgrade without a valid token gets 401 (needs
                                   token_key_file). Default false */
    uint32_t token_leeway_s;    /* clock skew allowed on exp, nbf and iat. Default 5 */
    const char *token_issuer;   /* when set, the `iss` a token must carry. Default NULL */
    const char *token_audience; /* when set, an `aud` entry a token must carry. Default NULL */
    int client_publish;         /* enum ws_client_publish; TOKEN needs token_key_file. A
                                   write that is not allowed: close 1008. Default ANY */
    int token_expiry;           /* enum ws_token_expiry. Default CLOSE */

    /* The HTTP API (docs/api.md): off unless api_key_file is set. */
    const char *api_key_file; /* API keys, one per line (blank lines and lines starting with
                                 '#' skipped); requests carry `Authorization: Bearer <key>`.
                                 Read by ws_server_start. Default NULL */

    /* Rooms across nodes (docs/cluster.md): redis://[user:pass@]host:port[/db]. NULL = one
     * node, no Redis. Read by ws_server_start (the host is resolved there). Default NULL */
    const char *backplane_url;
    const char *backplane_prefix; /* channel and key prefix. Default "uringws" */
    int backplane_gap;            /* enum ws_backplane_gap. Default CLOSE */
    int backplane_down;           /* enum ws_backplane_down. Default REFUSE */

    int log_level; /* enum ws_log_level. Default WS_LOG_INFO */
} ws_server_config_t;

/* Fills cfg with the defaults documented above. */
void ws_server_config_defaults(ws_server_config_t *cfg);

/* Checks the values for consistency (ranges, bind address syntax). Returns 0, or -EINVAL
 * with a one-line reason in err (NUL-terminated) when err is not NULL. */
int ws_server_config_check(const ws_server_config_t *cfg, char *err, size_t errlen);

typedef struct ws_server ws_server_t;

/* Probes the kernel, logs the io_uring features found, binds the listeners and starts the
 * worker threads. Returns 0 with *out set, or -errno (after logging why): -ENOSYS when the
 * kernel is older than 5.19 or has no usable io_uring, -EADDRINUSE etc. from bind, -ENOKEY
 * when the TLS certificate or key cannot be used (unreadable, not PEM, not matching each
 * other), -EOPNOTSUPP for ktls = WS_KTLS_REQUIRE on a kernel without kTLS (or TLS options in
 * a build without TLS). TLS errors are checked first, before anything else is logged. Signals
 * are not touched; the calling thread keeps its mask (workers block SIGPIPE). */
int ws_server_start(const ws_server_config_t *cfg, ws_server_t **out) WS_WARN_UNUSED;

/* The TCP port the listeners are bound to (useful when cfg->port was 0); 0 without plain
 * listeners. */
uint16_t ws_server_port(const ws_server_t *srv);

/* Asks every core to shut down: stop accepting, send close 1001 to every connection, wait
 * up to shutdown_timeout_ms for the close handshakes, then drop what is left. Returns at
 * once; call ws_server_wait to join. Thread-safe, idempotent and async-signal-safe (it only
 * writes to eventfds); not after ws_server_wait has returned. */
void ws_server_stop(ws_server_t *srv);

/* Joins the workers, frees every resource and srv itself. Returns 0, or the first error a
 * worker stopped with (-errno). */
int ws_server_wait(ws_server_t *srv);

/* Runs a server until SIGINT or SIGTERM: blocks those signals (and SIGPIPE) in the calling
 * thread before starting, so every worker inherits the mask, waits with sigwait, then stops
 * and waits. Returns 0 on a clean shutdown, or -errno when the server could not start. */
int ws_server_run(const ws_server_config_t *cfg);

#ifdef __cplusplus
}
#endif

#endif
