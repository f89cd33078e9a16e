/* Prometheus text rendering of the per-core counters: one family per metric for the
 * per-core series (uringws_core_*{core="i"}) and one for the totals (uringws_*), so a sum()
 * over a family never double counts. */
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const hs_label[WS_HS_N] = {"400", "401", "403", "404", "405", "408",  "426",
                                              "429", "413", "431", "501", "503", "other"};

static const short hs_code[WS_HS_OTHER] = {400, 401, 403, 404, 405, 408,
                                           426, 429, 413, 431, 501, 503};

enum ws_hs_err ws_metrics_hs_index(int status)
{
    for (unsigned i = 0; i < WS_HS_OTHER; i++)
        if (hs_code[i] == status)
            return (enum ws_hs_err)i;
    return WS_HS_OTHER;
}

const char *ws_metrics_token_refusal_name(unsigned r)
{
    if (r > WS_JWT_OK && r < WS_JWT_REFUSAL_COUNT)
        return ws_jwt_refusal_name((enum ws_jwt_refusal)r);
    return r == WS_TOKEN_MISSING ? "missing" : r == WS_TOKEN_ROOM ? "room" : NULL;
}

static const int api_status_code[WS_API_STATUS_N - 1] = {200, 400, 401, 404, 405, 411, 413, 503};
static const char *const api_status_label[WS_API_STATUS_N] = {"200", "400", "401", "404",  "405",
                                                              "411", "413", "503", "other"};
static const char *const api_route_label[WS_API_ROUTE_N] = {"publish", "publish_batch", "rooms",
                                                            "room",    "disconnect",    "unknown"};

enum ws_api_status ws_metrics_api_index(int status)
{
    for (unsigned i = 0; i < WS_API_STATUS_N - 1; i++)
        if (api_status_code[i] == status)
            return (enum ws_api_status)i;
    return WS_API_STATUS_OTHER;
}

void ws_metrics_close_sent(ws_metrics_t *m, unsigned code)
{
    if (code >= 1000 && code < 1000 + WS_CLOSE_CODES)
        ws_metric_inc(&m->closes_sent[code - 1000]);
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int err;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(buf_t *b, const char *fmt, ...)
{
    if (b->err)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = -EINVAL;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->err = -ENOMEM;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* One scalar metric: the per-core family and the total family. */
static void scalar(buf_t *b, const ws_metrics_t *m, unsigned n, size_t off, const char *name,
                   const char *type, const char *help)
{
    uint64_t total = 0;
    put(b, "# HELP uringws_core_%s %s, per core.\n# TYPE uringws_core_%s %s\n", name, help, name,
        type);
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = ld((const _Atomic uint64_t *)((const char *)&m[i] + off));
        total += v;
        put(b, "uringws_core_%s{core=\"%u\"} %llu\n", name, i, (unsigned long long)v);
    }
    put(b, "# HELP uringws_%s %s.\n# TYPE uringws_%s %s\nuringws_%s %llu\n", name, help, name, type,
        name, (unsigned long long)total);
}

static const char *const transport_label[WS_TRANSPORT_N] = {"plain", "tls", "ktls"};
static const char *const tls_ver_label[WS_TLS_VER_N] = {"1.2", "1.3"};
static const char *const tls_cipher_label[WS_TLS_CIPHER_N] = {"aes128gcm", "aes256gcm", "chacha20",
                                                              "other"};
static const char *const ktls_dirs_label[4] = {NULL, "tx", "rx", "tx_rx"};

/* A family with one label besides core: per core, then totals. values[i * k + j] is core i,
 * label j; labels[j] NULL skips that slot. */
static void labeled(buf_t *b, const ws_metrics_t *m, unsigned n, size_t off, unsigned k,
                    const char *name, const char *type, const char *label,
                    const char *const *labels, const char *help)
{
    put(b, "# HELP uringws_core_%s %s, per core.\n# TYPE uringws_core_%s %s\n", name, help, name,
        type);
    for (unsigned i = 0; i < n; i++) {
        const _Atomic uint64_t *v = (const _Atomic uint64_t *)((const char *)&m[i] + off);
        for (unsigned j = 0; j < k; j++) {
            if (labels[j])
                put(b, "uringws_core_%s{core=\"%u\",%s=\"%s\"} %llu\n", name, i, label, labels[j],
                    (unsigned long long)ld(&v[j]));
        }
    }
    put(b, "# HELP uringws_%s %s.\n# TYPE uringws_%s %s\n", name, help, name, type);
    for (unsigned j = 0; j < k; j++) {
        if (!labels[j])
            continue;
        uint64_t total = 0;
        for (unsigned i = 0; i < n; i++)
            total += ld((const _Atomic uint64_t *)((const char *)&m[i] + off) + j);
        put(b, "uringws_%s{%s=\"%s\"} %llu\n", name, label, labels[j], (unsigned long long)total);
    }
}

static void render_tls(buf_t *b, const ws_metrics_t *m, unsigned n, const ws_metrics_tls_t *tls)
{
    put(b, "# HELP uringws_core_tls_handshakes_total TLS handshakes completed, by version and "
           "cipher, per core.\n# TYPE uringws_core_tls_handshakes_total counter\n");
    uint64_t hs[WS_TLS_VER_N][WS_TLS_CIPHER_N] = {{0}};
    for (unsigned i = 0; i < n; i++) {
        for (int v = 0; v < WS_TLS_VER_N; v++) {
            for (int c = 0; c < WS_TLS_CIPHER_N; c++) {
                uint64_t x = ld(&m[i].tls_handshakes[v][c]);
                hs[v][c] += x;
                put(b,
                    "uringws_core_tls_handshakes_total{core=\"%u\",version=\"%s\",cipher=\"%s\"} "
                    "%llu\n",
                    i, tls_ver_label[v], tls_cipher_label[c], (unsigned long long)x);
            }
        }
    }
    put(b, "# HELP uringws_tls_handshakes_total TLS handshakes completed, by version and "
           "cipher.\n# TYPE uringws_tls_handshakes_total counter\n");
    for (int v = 0; v < WS_TLS_VER_N; v++)
        for (int c = 0; c < WS_TLS_CIPHER_N; c++)
            put(b, "uringws_tls_handshakes_total{version=\"%s\",cipher=\"%s\"} %llu\n",
                tls_ver_label[v], tls_cipher_label[c], (unsigned long long)hs[v][c]);
    labeled(b, m, n, offsetof(ws_metrics_t, tls_errors), WS_TLS_ERR_SLOTS, "tls_errors_total",
            "counter", "reason", tls->err_names,
            "TLS sessions that failed (each closed), by cause");
    labeled(b, m, n, offsetof(ws_metrics_t, ktls_offloads), 4, "ktls_offloads_total", "counter",
            "dirs", ktls_dirs_label, "Connections handed to kernel TLS, by directions");
    scalar(b, m, n, offsetof(ws_metrics_t, ktls_refused), "ktls_refused_total", "counter",
           "kTLS hand-offs the kernel refused (the connection stayed in userspace TLS)");
    scalar(b, m, n, offsetof(ws_metrics_t, ktls_tx_ref_bytes), "ktls_tx_ref_bytes_total", "counter",
           "Bytes passed to sends on kernel-TLS sockets straight from the queued frames (no "
           "userspace copy)");
    scalar(b, m, n, offsetof(ws_metrics_t, ktls_tx_copied_bytes), "ktls_tx_copied_bytes_total",
           "counter",
           "Bytes passed to sends on kernel-TLS sockets after a copy into the cork area (runs of "
           "small frames)");
    /* The probe's errno by name (ENOENT: no tls module), which says more than 0. */
    const char *probe = "error";
    if (tls->ktls_probe == 1)
        probe = "not_probed";
    else if (tls->ktls_probe == 0)
        probe = "ok";
    else if (strerrorname_np(-tls->ktls_probe))
        probe = strerrorname_np(-tls->ktls_probe);
    put(b,
        "# HELP uringws_ktls_available Whether the kernel accepted TCP_ULP \"tls\" when probed "
        "at start (1) or not (0), with the --ktls mode and the probe result.\n"
        "# TYPE uringws_ktls_available gauge\n"
        "uringws_ktls_available{mode=\"%s\",probe=\"%s\"} %d\n",
        tls->ktls_mode, probe, tls->ktls_probe == 0);
}

long ws_metrics_render(const ws_metrics_t *m, unsigned n, char **out)
{
    return ws_metrics_render_tls(m, n, NULL, out);
}

/* The scalar families, in the order rendered. */
static const struct scalar_metric {
    size_t off;
    const char *name, *type, *help;
} scalars[] = {
#define S(field, name, type, help)                                                                 \
    {                                                                                              \
        offsetof(ws_metrics_t, field), name, type, help                                            \
    }
    S(conns_current, "connections", "gauge", "Open connections"),
    S(conns_accepted, "connections_accepted_total", "counter", "Sockets accepted"),
    S(conns_upgraded, "websocket_upgrades_total", "counter", "WebSocket handshakes completed"),
    S(http_requests, "http_requests_total", "counter", "Plain HTTP requests answered"),
    S(rooms, "rooms", "gauge", "Rooms homed on the core with members on any core"),
    S(msgs_in, "messages_in_total", "counter", "Data messages received"),
    S(msgs_out, "messages_out_total", "counter", "Data frames queued to recipients"),
    S(bytes_in, "bytes_in_total", "counter", "Bytes received"),
    S(bytes_out, "bytes_out_total", "counter", "Bytes sent"),
    S(frames_built, "frames_built_total", "counter", "Broadcast frames built"),
    S(sends, "sends_submitted_total", "counter", "Send operations submitted"),
    S(slow_closes, "slow_consumer_closes_total", "counter", "Connections closed as slow consumers"),
    S(queue_over, "queue_over_limit_total", "counter",
      "Times a send queue went over --max-queue or --max-queue-frames (bursts and slow consumers)"),
    S(slow_drop_frames, "slow_consumer_dropped_frames_total", "counter",
      "Queued frames dropped by --slow-policy drop-oldest"),
    S(slow_drop_bytes, "slow_consumer_dropped_bytes_total", "counter",
      "Bytes of the frames dropped by --slow-policy drop-oldest"),
    S(ip_rejects, "per_ip_rejects_total", "counter",
      "Connections refused with 429 past --max-conns-per-ip"),
    S(origin_rejects, "origin_rejects_total", "counter",
      "Upgrades refused with 403: Origin not in --origin"),
    S(room_rejects, "room_limit_rejects_total", "counter",
      "Upgrades refused with 503: a new room past --max-rooms"),
    S(conn_rejects, "connection_limit_rejects_total", "counter",
      "Connections refused with 503 past --max-conns"),
    S(pending_evictions, "pending_evictions_total", "counter",
      "Connections still sending their request head closed to admit a new one (--max-pending)"),
    S(head_timeouts, "head_timeouts_total", "counter",
      "Connections closed at the request-head deadline (--handshake-timeout)"),
    S(first_frame_timeouts, "first_frame_timeouts_total", "counter",
      "Connections closed with 1008: no frame within --first-frame-timeout of the 101"),
    S(write_stalls, "write_stall_drops_total", "counter",
      "Connections dropped: no send progress for --write-stall-timeout"),
    S(queue_bytes, "queue_bytes", "gauge", "Bytes waiting in send queues"),
    S(enobufs, "recv_enobufs_total", "counter", "Receives that found the buffer ring empty"),
    S(recv_bufs, "recv_buffers", "gauge", "Provided receive buffers"),
    S(xevents, "xcore_events_total", "counter", "Cross-core events received"),
    S(xwakes, "xcore_wakeups_total", "counter", "Cross-core MSG_RING wakeups sent"),
    S(token_expired, "token_expired_closes_total", "counter",
      "Connections closed with 1008 when their token expired (--token-expiry close)"),
    S(bp_up, "backplane_up", "gauge", "Cores whose Redis backplane connections are up"),
    S(bp_in, "backplane_messages_in_total", "counter",
      "Messages received from the Redis backplane"),
    S(bp_out, "backplane_messages_out_total", "counter",
      "Messages published to the Redis backplane"),
    S(bp_subs, "backplane_subscriptions", "gauge", "Room channels subscribed on the backplane"),
    S(bp_reconnects, "backplane_reconnects_total", "counter",
      "Backplane connections lost (then retried)"),
    S(bp_gaps, "backplane_gaps_total", "counter",
      "Rooms that may have missed messages (a numbering gap or a lost connection); each is logged "
      "with its room"),
    S(bp_dropped, "backplane_dropped_total", "counter",
      "Publishes not delivered: backplane down, refused by Redis, or out of memory"),
    S(bp_rtt_us, "backplane_publish_rtt_microseconds_sum", "counter",
      "Round trips of publishes through Redis (script sent to reply), summed"),
    S(bp_rtt_count, "backplane_publish_rtt_microseconds_count", "counter",
      "Round trips of publishes through Redis, counted"),
    S(publish_refused, "publish_refused_closes_total", "counter",
      "Connections closed with 1008 for a message they may not publish (--client-publish)"),
#undef S
};

/* Handshake errors by status: every status, per core and in total. */
static void render_hs_errors(buf_t *b, const ws_metrics_t *m, unsigned n)
{
    put(b, "# HELP uringws_core_handshake_errors_total Requests rejected, by status, per core.\n"
           "# TYPE uringws_core_handshake_errors_total counter\n");
    uint64_t hs_total[WS_HS_N] = {0};
    for (unsigned i = 0; i < n; i++) {
        for (int s = 0; s < WS_HS_N; s++) {
            uint64_t v = ld(&m[i].hs_errors[s]);
            hs_total[s] += v;
            put(b, "uringws_core_handshake_errors_total{core=\"%u\",status=\"%s\"} %llu\n", i,
                hs_label[s], (unsigned long long)v);
        }
    }
    put(b, "# HELP uringws_handshake_errors_total Requests rejected, by status.\n"
           "# TYPE uringws_handshake_errors_total counter\n");
    for (int s = 0; s < WS_HS_N; s++)
        put(b, "uringws_handshake_errors_total{status=\"%s\"} %llu\n", hs_label[s],
            (unsigned long long)hs_total[s]);
}

/* Close frames sent by code: per core only the codes sent, in total every code that can
 * appear on the wire. */
static void render_closes(buf_t *b, const ws_metrics_t *m, unsigned n)
{
    put(b, "# HELP uringws_core_close_frames_sent_total Close frames sent, by code, per core.\n"
           "# TYPE uringws_core_close_frames_sent_total counter\n");
    uint64_t cl_total[WS_CLOSE_CODES] = {0};
    for (unsigned i = 0; i < n; i++) {
        for (int c = 0; c < WS_CLOSE_CODES; c++) {
            uint64_t v = ld(&m[i].closes_sent[c]);
            cl_total[c] += v;
            if (v)
                put(b, "uringws_core_close_frames_sent_total{core=\"%u\",code=\"%d\"} %llu\n", i,
                    1000 + c, (unsigned long long)v);
        }
    }
    put(b, "# HELP uringws_close_frames_sent_total Close frames sent, by code.\n"
           "# TYPE uringws_close_frames_sent_total counter\n");
    for (int c = 0; c < WS_CLOSE_CODES; c++) {
        if (c == 4 || c == 5 || c == 6 || c == 15)
            continue; /* 1004-1006 and 1015 never appear on the wire */
        put(b, "uringws_close_frames_sent_total{code=\"%d\"} %llu\n", 1000 + c,
            (unsigned long long)cl_total[c]);
    }
}

/* Tokens, publishes by source and API requests by route and status (totals only: a
 * route x status table per core would be mostly zeros). */
static void render_access(buf_t *b, const ws_metrics_t *m, unsigned n)
{
    const char *reason[WS_TOKEN_REFUSALS];
    for (unsigned r = 0; r < WS_TOKEN_REFUSALS; r++)
        reason[r] = ws_metrics_token_refusal_name(r);
    labeled(b, m, n, offsetof(ws_metrics_t, token_refusals), WS_TOKEN_REFUSALS,
            "token_refusals_total", "counter", "reason", reason,
            "Upgrades refused for their token (401, or 403 for a room the token does not grant)");
    static const char *const source[WS_PUB_N] = {"client", "api"};
    labeled(b, m, n, offsetof(ws_metrics_t, publishes), WS_PUB_N, "publishes_total", "counter",
            "source", source, "Messages published into rooms, by source");
    put(b, "# HELP uringws_api_requests_total HTTP API requests answered, by route and status.\n"
           "# TYPE uringws_api_requests_total counter\n");
    for (unsigned r = 0; r < WS_API_ROUTE_N; r++) {
        for (unsigned s = 0; s < WS_API_STATUS_N; s++) {
            uint64_t total = 0;
            for (unsigned i = 0; i < n; i++)
                total += ld(&m[i].api_requests[r][s]);
            if (total || s == WS_API_200)
                put(b, "uringws_api_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                    api_route_label[r], api_status_label[s], (unsigned long long)total);
        }
    }
}

long ws_metrics_render_tls(const ws_metrics_t *m, unsigned n, const ws_metrics_tls_t *tls,
                           char **out)
{
    buf_t b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return -ENOMEM;
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        scalar(&b, m, n, scalars[i].off, scalars[i].name, scalars[i].type, scalars[i].help);
    render_hs_errors(&b, m, n);
    render_closes(&b, m, n);
    labeled(&b, m, n, offsetof(ws_metrics_t, conns_by_transport), WS_TRANSPORT_N,
            "connections_by_transport", "gauge", "transport", transport_label,
            "Open connections by transport (plain ws, TLS in userspace, kernel TLS)");
    render_access(&b, m, n);
    if (tls)
        render_tls(&b, m, n, tls);
    if (b.err) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    return (long)b.len;
}
