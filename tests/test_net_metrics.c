/* Metrics: single-writer counters and the Prometheus text: per-core series carry a core
 * label, totals are the sums, labeled families list every status and the close codes sent. */
#include <stdlib.h>
#include <string.h>

#include "../net/metrics.h"
#include "check.h"

static int has(const char *text, const char *line)
{
    return strstr(text, line) != NULL;
}

int main(void)
{
    static ws_metrics_t m[2];
    memset(m, 0, sizeof(m));
    ws_metric_add(&m[0].msgs_in, 5);
    ws_metric_add(&m[1].msgs_in, 7);
    ws_metric_inc(&m[1].conns_current);
    ws_metric_add(&m[1].queue_bytes, 100);
    ws_metric_sub(&m[1].queue_bytes, 40);
    ws_metric_inc(&m[0].hs_errors[ws_metrics_hs_index(426)]);
    ws_metric_inc(&m[1].hs_errors[ws_metrics_hs_index(599)]);
    ws_metrics_close_sent(&m[0], 1002);
    ws_metrics_close_sent(&m[1], 1002);
    ws_metrics_close_sent(&m[1], 999); /* out of range: ignored */
    char *text = NULL;
    long n = ws_metrics_render(m, 2, &text);
    REQUIRE(n > 0 && text);
    CHECK_EQ_U(strlen(text), (size_t)n);
    CHECK(has(text, "uringws_core_messages_in_total{core=\"0\"} 5\n"));
    CHECK(has(text, "uringws_core_messages_in_total{core=\"1\"} 7\n"));
    CHECK(has(text, "\nuringws_messages_in_total 12\n"));
    CHECK(has(text, "# TYPE uringws_messages_in_total counter\n"));
    CHECK(has(text, "# TYPE uringws_connections gauge\n"));
    CHECK(has(text, "\nuringws_connections 1\n"));
    CHECK(has(text, "\nuringws_queue_bytes 60\n"));
    CHECK(has(text, "uringws_core_handshake_errors_total{core=\"0\",status=\"426\"} 1\n"));
    CHECK(has(text, "uringws_handshake_errors_total{status=\"426\"} 1\n"));
    CHECK(has(text, "uringws_handshake_errors_total{status=\"other\"} 1\n"));
    CHECK(has(text, "uringws_handshake_errors_total{status=\"400\"} 0\n"));
    CHECK(has(text, "uringws_close_frames_sent_total{code=\"1002\"} 2\n"));
    CHECK(has(text, "uringws_core_close_frames_sent_total{core=\"1\",code=\"1002\"} 1\n"));
    CHECK(!has(text, "code=\"1005\""));
    /* Every sample line is "name[{labels}] value". */
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#')
            continue;
        char *sp = strrchr(line, ' ');
        CHECK(sp && sp[1] >= '0' && sp[1] <= '9');
        CHECK(strncmp(line, "uringws_", 8) == 0);
    }
    free(text);

    /* The TLS families: connections by transport always, the rest only with TLS facts. */
    ws_metric_inc(&m[0].conns_by_transport[WS_TRANSPORT_TLS]);
    ws_metric_inc(&m[1].conns_by_transport[WS_TRANSPORT_TLS]);
    ws_metric_inc(&m[1].tls_handshakes[1][WS_TLS_CHACHA20]);
    ws_metric_add(&m[0].tls_errors[3], 2);
    ws_metric_inc(&m[1].tls_errors[WS_TLS_ERR_HS_TIMEOUT]);
    ws_metric_inc(&m[0].ktls_refused);
    static const char *names[WS_TLS_ERR_SLOTS] = {
        [3] = "handshake", [WS_TLS_ERR_HS_TIMEOUT] = "handshake_timeout"};
    ws_metrics_tls_t tls = {.ktls_mode = "auto", .ktls_probe = -2 /* ENOENT */, .err_names = names};
    n = ws_metrics_render_tls(m, 2, &tls, &text);
    REQUIRE(n > 0 && text);
    CHECK(has(text, "uringws_connections_by_transport{transport=\"tls\"} 2\n"));
    CHECK(has(text, "uringws_core_connections_by_transport{core=\"1\",transport=\"tls\"} 1\n"));
    CHECK(has(text, "uringws_connections_by_transport{transport=\"plain\"} 0\n"));
    CHECK(has(text, "uringws_tls_handshakes_total{version=\"1.3\",cipher=\"chacha20\"} 1\n"));
    CHECK(has(text, "uringws_tls_handshakes_total{version=\"1.2\",cipher=\"aes128gcm\"} 0\n"));
    CHECK(has(text, "uringws_tls_errors_total{reason=\"handshake\"} 2\n"));
    CHECK(has(text, "uringws_tls_errors_total{reason=\"handshake_timeout\"} 1\n"));
    CHECK(has(text, "\nuringws_ktls_refused_total 1\n"));
    CHECK(has(text, "uringws_ktls_available{mode=\"auto\",probe=\"ENOENT\"} 0\n"));
    CHECK(!has(text, "reason=\"(null)\""));
    free(text);
    /* Without TLS facts: no TLS families, but the transport gauges. */
    n = ws_metrics_render(m, 2, &text);
    REQUIRE(n > 0 && text);
    CHECK(has(text, "uringws_connections_by_transport{transport=\"tls\"} 2\n"));
    CHECK(!has(text, "uringws_tls_errors_total"));
    CHECK(!has(text, "uringws_ktls_available"));
    free(text);
    return check_exit_status("test_net_metrics");
}
