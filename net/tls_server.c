/* The server's TLS: the context from the configuration (certificate and key checked first,
 * so a bad file is the one error line), the kTLS policy decided once at start (probe, log
 * lines naming what the kernel refuses), and the facts /metrics shows. Connections use it
 * through net/conn_tls.c. */
#include "tls_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "conn_tls.h"
#include "log.h"
#include "server_internal.h"
#include "uringws/tls.h"
#ifdef WS_WITH_KTLS
#include "uringws/ktls.h"
#endif

_Static_assert(WS_TLS_ERR__COUNT <= WS_TLS_ERR_HS_TIMEOUT,
               "TLS error categories must fit the metric slots");
_Static_assert(WS_TLS_MIN_1_2 == WS_TLS_V1_2 && WS_TLS_MIN_1_3 == WS_TLS_V1_3,
               "server.h and tls.h name the same versions");

static const char *ktls_mode_name(int mode)
{
    switch (mode) {
    case WS_KTLS_OFF:
        return "off";
    case WS_KTLS_REQUIRE:
        return "require";
    case WS_KTLS_TRY:
        return "try";
    default:
        return "auto";
    }
}

#ifdef WS_WITH_KTLS
/* "TLS 1.2 AES-128-GCM (ENOENT), ..." for the offered suites whose hand-off (errs[i], from
 * ws_ktls_probe_suites) failed; "" when none did or errs is NULL. Returns whether every
 * offered suite failed. */
static bool suites_refused(const ws_server_config_t *cfg, const int *errs, char *out, size_t cap)
{
    size_t n = 0;
    unsigned offered = 0, refused = 0;
    out[0] = 0;
    for (unsigned i = 0; errs && i < WS_KTLS_NSUITES && n < cap; i++) {
        if (ws_ktls_suites[i].version < cfg->tls_min_version)
            continue;
        offered++;
        if (errs[i] == 0)
            continue;
        refused++;
        const char *e = strerrorname_np(-errs[i]);
        int w = snprintf(out + n, cap - n, "%s%s (%s)", n ? ", " : "", ws_ktls_suites[i].name,
                         e ? e : "error");
        n = w < 0 ? cap : n + (size_t)w;
    }
    return errs && refused == offered;
}
#endif

/* Probes kTLS once and sets srv->ktls_active. Returns 0 or -EOPNOTSUPP (required, absent). */
static int ktls_policy(ws_server_t *srv)
{
    const ws_server_config_t *cfg = &srv->cfg;
    if (cfg->ktls == WS_KTLS_OFF) {
        ws_log_info("kTLS: off (--ktls off): TLS stays in userspace");
        return 0;
    }
#ifdef WS_WITH_KTLS
    ws_ktls_support_t sup;
    srv->ktls_probe = ws_ktls_probe_suites(&sup);
    bool ok = srv->ktls_probe == 0;
    if (cfg->ktls == WS_KTLS_REQUIRE && !ok) {
        ws_log_error("kTLS required (--ktls require) but this kernel refuses TCP_ULP \"tls\": %s "
                     "(try `modprobe tls`, or --ktls auto)",
                     strerror(-srv->ktls_probe));
        return -EOPNOTSUPP;
    }
    char tx_refused[256], rx_refused[256];
    bool none = suites_refused(cfg, ok ? sup.tx : NULL, tx_refused, sizeof(tx_refused));
    suites_refused(cfg, ok ? sup.rx : NULL, rx_refused, sizeof(rx_refused));
    if (cfg->ktls == WS_KTLS_REQUIRE && tx_refused[0]) {
        ws_log_error("kTLS required (--ktls require) but this kernel refuses TLS_TX for %s (load "
                     "the ciphers' crypto modules, e.g. `modprobe gcm aesni_intel "
                     "chacha20poly1305`, or use --ktls auto)",
                     tx_refused);
        return -EOPNOTSUPP;
    }
    srv->ktls_active = ok || cfg->ktls == WS_KTLS_TRY;
    if (!ok) {
        if (cfg->ktls == WS_KTLS_TRY)
            ws_log_info("kTLS: unavailable (TCP_ULP \"tls\": %s), trying every connection "
                        "anyway (--ktls try): each stays in userspace TLS",
                        strerror(-srv->ktls_probe));
        else
            ws_log_info("kTLS: unavailable (TCP_ULP \"tls\": %s): TLS stays in userspace",
                        strerror(-srv->ktls_probe));
        return 0;
    }
    if (!none)
        ws_log_info("kTLS: available: after each handshake TX (and RX where the kernel takes "
                    "the cipher) moves to kernel TLS");
    if (tx_refused[0])
        ws_log_info("kTLS: this kernel refuses TLS_TX for %s: those sessions stay in userspace "
                    "TLS (uringws_ktls_refused_total)",
                    tx_refused);
    if (rx_refused[0])
        ws_log_info("kTLS: this kernel refuses TLS_RX for %s: those sessions receive in "
                    "userspace TLS",
                    rx_refused);
    return 0;
#else
    if (cfg->ktls == WS_KTLS_REQUIRE || cfg->ktls == WS_KTLS_TRY) {
        ws_log_error("kTLS requested (--ktls %s) but this build has no kTLS support "
                     "(WITH_KTLS=OFF)",
                     ktls_mode_name(cfg->ktls));
        return -EOPNOTSUPP;
    }
    ws_log_info("kTLS: not built in (WITH_KTLS=OFF): TLS stays in userspace");
    return 0;
#endif
}

int ws_tls_server_init(ws_server_t *srv)
{
    const ws_server_config_t *cfg = &srv->cfg;
    ws_tls_config_t tc;
    ws_tls_config_init(&tc);
    tc.cert_file = cfg->tls_cert_file;
    tc.key_file = cfg->tls_key_file;
    tc.min_version = cfg->tls_min_version;
    /* Room for one encrypted batch (send_max_bytes) on top of what may still be pending. */
    size_t out = (size_t)cfg->send_max_bytes * 2 + WS_TLS_OUT_LOW + 64 * 1024;
    if (out > tc.max_out_bytes)
        tc.max_out_bytes = out;
    /* Check the files before the kTLS probe: a bad certificate must be the one line. */
    char err[256];
    ws_tls_ctx_t *probe_ctx = NULL;
    int rc = ws_tls_ctx_new(&tc, &probe_ctx, err, sizeof(err));
    if (rc < 0)
        goto bad_files;
    if ((rc = ktls_policy(srv)) < 0) {
        ws_tls_ctx_free(probe_ctx);
        return rc;
    }
    if (!srv->ktls_active) {
        srv->tls_ctx = probe_ctx;
        return 0;
    }
    /* The hand-off needs the TLS 1.3 traffic secrets captured during each handshake, which
     * only a context created with tc.ktls does. */
    ws_tls_ctx_free(probe_ctx);
    tc.ktls = true;
    rc = ws_tls_ctx_new(&tc, &srv->tls_ctx, err, sizeof(err));
    if (rc == 0)
        return 0;
bad_files:
    ws_log_error("TLS: %s", err[0] ? err : strerror(-rc));
    return rc == -ENOMEM ? rc : -ENOKEY;
}

void ws_tls_server_free(ws_server_t *srv)
{
    ws_tls_ctx_free(srv->tls_ctx);
    srv->tls_ctx = NULL;
}

/* /metrics: the TLS families need the server's kTLS facts and the category names. */
static const char *err_names[WS_TLS_ERR_SLOTS];
static pthread_once_t err_names_once = PTHREAD_ONCE_INIT;

static void err_names_init(void)
{
    for (int e = WS_TLS_ERR_NONE + 1; e < WS_TLS_ERR__COUNT; e++)
        err_names[e] = ws_tls_err_name((ws_tls_err_t)e);
    err_names[WS_TLS_ERR_HS_TIMEOUT] = "handshake_timeout";
}

void ws_tls_server_metrics_info(const ws_server_t *srv, ws_metrics_tls_t *out)
{
    pthread_once(&err_names_once, err_names_init);
    out->ktls_mode = ktls_mode_name(srv->cfg.ktls);
    out->ktls_probe = srv->ktls_probe;
    out->err_names = err_names;
}
