/* The server's configuration (uringws/server.h): the documented defaults and the checks of
 * every value, before anything is started. */
#include "uringws/server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "listener.h"
#include "origins.h"
#include "server_internal.h"
#include "uringws/http.h"
#include "uringws/parser.h"

void ws_server_config_defaults(ws_server_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->cores = 0;
    cfg->pin = false;
    cfg->bind_addr[0] = '\0';
    cfg->port = 8080;
    cfg->backlog = 4096;
    cfg->max_conns = 10000;
    cfg->max_message = WS_MAX_MESSAGE_DEFAULT;
    cfg->max_queue = 4u << 20;
    cfg->max_queue_frames = 65536;
    cfg->max_header_bytes = WS_HTTP_MAX_HEADER_BYTES_DEFAULT;
    cfg->max_headers = WS_HTTP_MAX_HEADERS_DEFAULT;
    cfg->max_conns_per_ip = 0;
    cfg->max_pending = 1024;
    cfg->max_rooms = 0;
    cfg->slow_policy = WS_SLOW_CLOSE;
    cfg->origins = NULL;
    cfg->handshake_timeout_ms = 10000;
    cfg->ping_interval_ms = 30000;
    cfg->idle_timeout_ms = 120000;
    cfg->first_frame_timeout_ms = 60000;
    cfg->slow_grace_ms = 1000;
    cfg->write_stall_ms = 30000;
    cfg->close_timeout_ms = 5000;
    cfg->shutdown_timeout_ms = 5000;
    cfg->tick_ms = 250;
    cfg->sq_entries = 4096;
    cfg->cq_entries = 65536;
    cfg->recv_buf_size = 4096;
    cfg->recv_bufs = 1024;
    cfg->recv_bufs_max = 16384;
    cfg->send_max_iov = 64;
    cfg->send_max_bytes = 1u << 20;
    cfg->use_direct_fds = true;
    cfg->plain = true;
    cfg->tls = false;
    cfg->tls_port = 0;
    cfg->tls_min_version = WS_TLS_MIN_1_2;
    cfg->ktls = WS_KTLS_AUTO;
    cfg->token_leeway_s = 5;
    cfg->backplane_prefix = "uringws";
    cfg->client_publish = WS_CLIENT_PUBLISH_ANY;
    cfg->token_expiry = WS_TOKEN_EXPIRY_CLOSE;
    cfg->log_level = WS_LOG_INFO;
}

/* Tokens and who may write: NULL or why not. */
static const char *check_access(const ws_server_config_t *cfg)
{
    if (cfg->client_publish < WS_CLIENT_PUBLISH_ANY || cfg->client_publish > WS_CLIENT_PUBLISH_NONE)
        return "client-publish must be any, token or none";
    if (cfg->token_expiry != WS_TOKEN_EXPIRY_CLOSE && cfg->token_expiry != WS_TOKEN_EXPIRY_KEEP)
        return "token-expiry must be close or keep";
    if (!cfg->token_key_file && (cfg->require_token || cfg->token_issuer || cfg->token_audience ||
                                 cfg->client_publish == WS_CLIENT_PUBLISH_TOKEN))
        return "require-token, token-issuer, token-audience and client-publish token need "
               "--token-key";
    if (cfg->token_leeway_s > 3600)
        return "token-leeway: at most 3600 seconds";
    if (cfg->backplane_gap != WS_BACKPLANE_GAP_CLOSE &&
        cfg->backplane_gap != WS_BACKPLANE_GAP_IGNORE)
        return "backplane-gap must be close or ignore";
    if (cfg->backplane_down != WS_BACKPLANE_DOWN_REFUSE &&
        cfg->backplane_down != WS_BACKPLANE_DOWN_LOCAL)
        return "backplane-down must be refuse or local";
    if (!cfg->backplane_prefix || !cfg->backplane_prefix[0] || strlen(cfg->backplane_prefix) > 64 ||
        strpbrk(cfg->backplane_prefix, " \t\r\n"))
        return "backplane-prefix must be 1..64 bytes without spaces";
    return NULL;
}

int ws_server_config_check(const ws_server_config_t *cfg, char *err, size_t errlen)
{
    const char *why = NULL;
    char tmp[160];
    if (cfg->cores > WS_CORES_MAX)
        why = "cores: at most 1024";
    else if (cfg->backlog < 1)
        why = "backlog must be positive";
    else if (cfg->max_conns < 1)
        why = "max-conns must be at least 1";
    else if (cfg->max_conns > (1u << 24))
        why = "max-conns: at most 16777216";
    else if (cfg->max_message < 1 || cfg->max_message > (1ull << 32) - 64)
        why = "max-message must be between 1 byte and 4 GiB";
    else if (cfg->max_queue < 1024)
        why = "max-queue must be at least 1 KiB";
    else if (cfg->max_queue_frames < 1)
        why = "max-queue-frames must be at least 1";
    else if (cfg->max_header_bytes < 256 || cfg->max_header_bytes > (1u << 20))
        why = "max-header-bytes must be between 256 and 1 MiB";
    else if (cfg->max_headers < 1 || cfg->max_headers > WS_HTTP_HEADERS_CAP)
        why = "max-headers must be between 1 and 128";
    else if (cfg->max_conns_per_ip > cfg->max_conns)
        why = "max-conns-per-ip must be at most max-conns";
    else if (cfg->max_pending < 1 || cfg->max_pending > (1u << 24))
        why = "max-pending must be between 1 and 16777216";
    else if (cfg->max_rooms > cfg->max_conns)
        why = "max-rooms must be at most max-conns (a room needs a member)";
    else if (cfg->slow_policy != WS_SLOW_CLOSE && cfg->slow_policy != WS_SLOW_DROP_OLDEST)
        why = "slow-policy must be close or drop-oldest";
    else if (cfg->origins && ws_origins_parse(cfg->origins, NULL, tmp, sizeof(tmp)) < 0)
        why = tmp;
    else if (cfg->handshake_timeout_ms < 1 || cfg->close_timeout_ms < 1)
        why = "handshake and close timeouts must be positive";
    else if (cfg->tick_ms < 10 || cfg->tick_ms > 10000)
        why = "tick must be between 10 ms and 10 s";
    else if (cfg->sq_entries < 8 || cfg->cq_entries < cfg->sq_entries)
        why = "sq-entries must be at least 8 and cq-entries at least sq-entries";
    else if (cfg->recv_buf_size < 256 || cfg->recv_buf_size > (1u << 20))
        why = "recv-buf-size must be between 256 bytes and 1 MiB";
    else if (cfg->recv_bufs < 1 || cfg->recv_bufs_max > 32768 ||
             cfg->recv_bufs > cfg->recv_bufs_max)
        why = "recv-bufs must be at least 1 and at most recv-bufs-max (<= 32768)";
    else if (cfg->send_max_iov < 1 || cfg->send_max_iov > 1024)
        why = "send-max-iov must be between 1 and 1024";
    else if (cfg->send_max_bytes < 1024)
        why = "send-max-bytes must be at least 1 KiB";
    else if (!cfg->plain && !cfg->tls)
        why = "nothing to serve: the plain listener is off and no TLS port is set";
#ifndef WS_WITH_TLS
    else if (cfg->tls)
        why = "this build has no TLS support (built with WITH_TLS=OFF)";
#endif
    else if (cfg->tls && (!cfg->tls_cert_file || !cfg->tls_cert_file[0] || !cfg->tls_key_file ||
                          !cfg->tls_key_file[0]))
        why = "a TLS port needs a certificate and a key (--tls-cert and --tls-key)";
    else if (cfg->tls && cfg->plain && cfg->tls_port && cfg->tls_port == cfg->port)
        why = "the TLS port must differ from the plain port";
    else if (cfg->tls_min_version != WS_TLS_MIN_1_2 && cfg->tls_min_version != WS_TLS_MIN_1_3)
        why = "the minimum TLS version must be 1.2 or 1.3";
    else if (cfg->ktls < WS_KTLS_AUTO || cfg->ktls > WS_KTLS_TRY)
        why = "ktls must be auto, off, require or try";
    else if (cfg->bind_addr[0]) {
        struct sockaddr_storage ss;
        socklen_t len;
        if (memchr(cfg->bind_addr, '\0', sizeof(cfg->bind_addr)) == NULL ||
            ws_listener_parse_addr(cfg->bind_addr, 0, &ss, &len) < 0) {
            snprintf(tmp, sizeof(tmp), "bind: '%.64s' is not an IPv4 or IPv6 address",
                     cfg->bind_addr);
            why = tmp;
        }
    }
    if (!why)
        why = check_access(cfg);
    if (!why)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
    return -EINVAL;
}
