/* Printing of a fan-out run's results; see report.h. */
#include "report.h"

#include <math.h>

#include "args.h"

void ws_fo_report_step(FILE *f, unsigned n, const ws_fo_step_t *st)
{
    fprintf(
        f,
        "step %-3u rate %.0f/s  deliveries %.0f/s  p99 %llu us  lost %lld  cpu %.2f (%.2f)  %s\n",
        n, st->rate, (double)st->t.deliveries / st->duration_s,
        (unsigned long long)ws_hist_quantile(&st->t.latency, 0.99),
        (long long)(st->t.expected - st->t.deliveries), st->t.cpu_max, st->t.demand_max,
        st->held ? "held" : "failed");
}

static void json_num(const char *key, double v, bool last)
{
    if (v < 0 || isnan(v))
        printf("\"%s\":null%s", key, last ? "" : ",");
    else if (v == floor(v) && v < 1e15)
        printf("\"%s\":%.0f%s", key, v, last ? "" : ",");
    else
        printf("\"%s\":%.6g%s", key, v, last ? "" : ",");
}

void ws_fo_report_json(const ws_fo_config_t *cfg, const ws_fo_report_t *rep)
{
    const ws_fo_step_t *m = &rep->main;
    bool valid = rep->have_main && !rep->client_saturated;
    bool publishing = cfg->mode == WS_FO_OPEN || cfg->mode == WS_FO_SATURATE;
    printf("{\"url\":\"%s\",\"mode\":\"%s\",", cfg->url, ws_fo_args_mode_name(cfg->mode));
    json_num("rooms", cfg->rooms, false);
    json_num("subs", cfg->subs, false);
    json_num("pubs", publishing ? (double)cfg->pubs : -1, false);
    json_num("size", cfg->mode == WS_FO_STORM || cfg->mode == WS_FO_IDLE ? -1 : (double)cfg->size,
             false);
    double rate = -1;
    if (valid)
        rate = cfg->mode == WS_FO_ALLTOALL ? rep->rounds_per_s * cfg->subs : m->rate;
    json_num("rate", rate, false);
    json_num("duration_s", valid ? m->duration_s : -1, false);
    json_num("deliveries", valid ? (double)m->t.deliveries : -1, false);
    json_num("deliveries_per_s", valid ? (double)m->t.deliveries / m->duration_s : -1, false);
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
    json_num("lost", valid && publishing ? (double)(int64_t)(m->t.expected - m->t.deliveries) : -1,
             false);
    printf("\"errors\":{\"connect\":%llu,\"handshake\":%llu,\"closed\":%llu,\"close_codes\":{",
           (unsigned long long)rep->last.err_connect, (unsigned long long)rep->last.err_handshake,
           (unsigned long long)rep->last.err_closed);
    for (unsigned i = 0; i < rep->last.nclose; i++)
        printf("%s\"%u\":%u", i ? "," : "", rep->last.closes[i].code, rep->last.closes[i].count);
    printf("}},");
    json_num("connect_per_s",
             cfg->mode == WS_FO_STORM && rep->client_saturated ? -1 : rep->connect_per_s, false);
    bool storm = cfg->mode == WS_FO_STORM;
    bool cpu_measured = rep->have_main || rep->nsteps > 0 || storm;
    double cpu = storm ? rep->last.cpu_max : rep->main.t.cpu_max;
    for (unsigned i = 0; i < rep->nsteps; i++)
        cpu = rep->steps[i].t.cpu_max > cpu ? rep->steps[i].t.cpu_max : cpu;
    json_num("client_cpu", cpu_measured ? cpu : -1, false);
    printf("\"client_saturated\":%s,", rep->client_saturated ? "true" : "false");
    printf("\"client_bound\":%s,", rep->client_bound ? "true" : "false");
    double server_cpu = valid ? m->server_cpu : -1;
    if (cfg->mode == WS_FO_STORM)
        server_cpu = rep->connect_server_cpu;
    json_num("server_cpu", server_cpu, false);
    json_num("rounds_per_s", valid ? rep->rounds_per_s : -1, false);
    if (valid && cfg->mode == WS_FO_ALLTOALL)
        printf("\"round_us\":{\"p50\":%llu,\"p99\":%llu},",
               (unsigned long long)ws_hist_quantile(&m->t.round, 0.5),
               (unsigned long long)ws_hist_quantile(&m->t.round, 0.99));
    else
        printf("\"round_us\":null,");
    json_num("storm_s", storm && !rep->client_saturated ? rep->storm_s : -1, false);
    json_num("rss_per_conn_bytes", rep->rss_per_conn, false);
    if (cfg->mode != WS_FO_SATURATE) {
        printf("\"steps\":null}\n");
        return;
    }
    printf("\"steps\":[");
    for (unsigned i = 0; i < rep->nsteps; i++) {
        const ws_fo_step_t *st = &rep->steps[i];
        printf("%s{", i ? "," : "");
        json_num("rate", st->rate, false);
        json_num("deliveries_per_s", (double)st->t.deliveries / st->duration_s, false);
        json_num("p99_us", (double)ws_hist_quantile(&st->t.latency, 0.99), false);
        json_num("lost", (double)(int64_t)(st->t.expected - st->t.deliveries), false);
        printf("\"held\":%s}", st->held ? "true" : "false");
    }
    printf("]}\n");
}

static void print_cpu_line(const ws_fo_config_t *cfg, const ws_fo_totals_t *t)
{
    printf("%-22s %.2f of a core (busiest of %u workers)", "client cpu", t->cpu_max, cfg->procs);
    if (t->busy_known)
        printf("; its CPU was %.2f busy in all", t->demand_max);
    printf("\n");
}

/* The reported measurement's client CPU; when there is none (refused, nothing held), the
 * last step's. */
static void print_client_cpu(const ws_fo_config_t *cfg, const ws_fo_report_t *rep)
{
    if (!rep->have_main && rep->nsteps == 0)
        return;
    const ws_fo_totals_t *ct = &rep->main.t;
    if (rep->nsteps && (!rep->have_main || rep->client_saturated))
        ct = &rep->steps[rep->nsteps - 1].t;
    print_cpu_line(cfg, ct);
}

static void print_refusal(void)
{
    printf("client saturated, result refused (a worker needed more than %.0f%% of a core; "
           "add --procs or CPUs)\n",
           WS_FO_SATURATED_CPU * 100);
}

void ws_fo_report_table(const ws_fo_config_t *cfg, const ws_fo_report_t *rep)
{
    const ws_fo_step_t *m = &rep->main;
    const ws_fo_totals_t *t = &m->t;
    printf("fanout %s  mode %s  rooms %u  subs %u  pubs %u  size %u", cfg->url,
           ws_fo_args_mode_name(cfg->mode), cfg->rooms, cfg->subs, cfg->pubs, cfg->size);
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
        print_cpu_line(cfg, &rep->last);
        if (rep->client_saturated) {
            print_refusal();
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
        ws_fo_report_step(stdout, i + 1, &rep->steps[i]);
    if (rep->client_saturated) {
        print_client_cpu(cfg, rep);
        print_refusal();
        return;
    }
    if (!rep->have_main) {
        print_client_cpu(cfg, rep);
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
    print_client_cpu(cfg, rep);
    if (m->server_cpu >= 0)
        printf("%-22s %.2f of a core\n", "server cpu", m->server_cpu);
}
