/* Admission (net/admission.c) without a ring: max_conns refuses with 503 and gives the slot
 * back on release; max_conns_per_ip refuses a second connection from one address with 429
 * but not one from another; the max_pending evictee is the oldest head, and only once it is
 * old enough; the Origin allow-list answers 403 (with or without an Origin header);
 * max_rooms refuses a new room with 503 but not a member of an existing one, and the counts
 * come back on release. Each refusal is counted in its metric. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "../net/admission.h"
#include "../net/server_internal.h"
#include "check.h"

static ws_server_t srv;
static ws_metrics_t m;
static ws_worker_t w;

static void setup(ws_server_config_t *cfg)
{
    memset(&srv, 0, sizeof(srv));
    memset(&m, 0, sizeof(m));
    memset(&w, 0, sizeof(w));
    srv.cfg = *cfg;
    w.srv = &srv;
    w.cfg = &srv.cfg;
    w.m = &m;
    ws_qlink_init_head(&w.heads);
}

static struct sockaddr_in addr(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(40000)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static int accept_from(ws_conn_t *conn, const char *ip, ws_refusal_t *no)
{
    memset(conn, 0, sizeof(*conn));
    struct sockaddr_in a = addr(ip);
    return ws_admission_accept(&w, conn, (struct sockaddr *)&a, sizeof(a), no);
}

static void conns(void)
{
    ws_server_config_t cfg;
    ws_server_config_defaults(&cfg);
    cfg.max_conns = 2;
    cfg.max_conns_per_ip = 1;
    setup(&cfg);
    REQUIRE((srv.ip_counts = ws_keycount_new()) != NULL);
    ws_conn_t a, b, c, d;
    ws_refusal_t no = {0};
    CHECK_INT(accept_from(&a, "10.0.0.1", &no), 0);
    CHECK_INT(accept_from(&b, "10.0.0.1", &no), -EUSERS);
    CHECK_INT(no.status, 429);
    CHECK_EQ_U(m.ip_rejects, 1);
    ws_admission_release(&w, &b); /* a refused connection gives back what it took */
    CHECK_INT(accept_from(&c, "10.0.0.2", &no), 0);
    CHECK_INT(accept_from(&d, "10.0.0.3", &no), -EUSERS);
    CHECK_INT(no.status, 503);
    CHECK_EQ_U(m.conn_rejects, 1);
    ws_admission_release(&w, &d);
    CHECK_EQ_U(atomic_load(&srv.open_conns), 2);
    ws_admission_release(&w, &a);
    ws_admission_release(&w, &a); /* twice: no effect */
    CHECK_EQ_U(atomic_load(&srv.open_conns), 1);
    CHECK_INT(accept_from(&b, "10.0.0.1", &no), 0); /* its address and slot are free again */
    ws_admission_release(&w, &b);
    ws_admission_release(&w, &c);
    CHECK_EQ_U(atomic_load(&srv.open_conns), 0);
    CHECK_EQ_U(m.conns_current, 0);
    CHECK_EQ_U(ws_keycount_keys(srv.ip_counts), 0);
    ws_keycount_free(srv.ip_counts);
}

static void evictee(void)
{
    ws_server_config_t cfg;
    ws_server_config_defaults(&cfg);
    setup(&cfg);
    w.max_heads = 2;
    w.now_ms = 10000;
    static ws_conn_t h[3];
    for (int i = 0; i < 3; i++) {
        memset(&h[i], 0, sizeof(h[i]));
        h[i].t_accept = 9000 + 100 * (uint64_t)i;
    }
    ws_qlink_push_tail(&w.heads, &h[0].head_link);
    w.nheads = 1;
    CHECK(ws_admission_evictee(&w) == NULL); /* under the share */
    ws_qlink_push_tail(&w.heads, &h[1].head_link);
    w.nheads = 2;
    CHECK(ws_admission_evictee(&w) == &h[0]); /* the oldest, 1000 ms old */
    w.now_ms = 9400;
    CHECK(ws_admission_evictee(&w) == NULL); /* 400 ms: too young to evict */
    CHECK_EQ_U(m.pending_evictions, 1);
}

static ws_handshake_t upgrade_to(const char *room, const char *origin)
{
    ws_handshake_t hs;
    memset(&hs, 0, sizeof(hs));
    hs.room_len = strlen(room);
    memcpy(hs.room, room, hs.room_len);
    hs.origin.base = (const uint8_t *)origin;
    hs.origin.len = origin ? strlen(origin) : 0;
    return hs;
}

static void upgrades(void)
{
    ws_server_config_t cfg;
    ws_server_config_defaults(&cfg);
    cfg.max_rooms = 1;
    setup(&cfg);
    REQUIRE(ws_origins_parse("https://a.example,https://b.example", &srv.origins, NULL, 0) == 0);
    srv.cfg.origins = srv.origins.text;
    REQUIRE((srv.room_counts = ws_keycount_new()) != NULL);
    ws_conn_t a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    ws_refusal_t no = {0};
    ws_handshake_t hs = upgrade_to("lobby", "https://evil.example");
    CHECK_INT(ws_admission_upgrade(&w, &a, &hs, true, &no), -EACCES);
    CHECK_INT(no.status, 403);
    hs = upgrade_to("lobby", NULL);
    CHECK_INT(ws_admission_upgrade(&w, &a, &hs, true, &no), -EACCES);
    CHECK(strstr(no.why, "Origin") != NULL);
    CHECK_EQ_U(m.origin_rejects, 2);
    hs = upgrade_to("lobby", "https://b.example");
    CHECK_INT(ws_admission_upgrade(&w, &a, &hs, true, &no), 0);
    CHECK_INT(ws_admission_upgrade(&w, &b, &hs, true, &no), 0); /* same room: no new one */
    ws_handshake_t other = upgrade_to("other", "https://a.example");
    CHECK_INT(ws_admission_upgrade(&w, &c, &other, true, &no), -EUSERS);
    CHECK_INT(no.status, 503);
    CHECK_EQ_U(m.room_rejects, 1);
    CHECK_INT(ws_admission_upgrade(&w, &c, &other, false, &no), 0); /* /echo: not a room */
    ws_admission_room_release(&w, &a, "lobby", 5);
    CHECK_EQ_U(ws_keycount_get(srv.room_counts, "lobby", 5), 1);
    ws_admission_room_release(&w, &b, "lobby", 5);
    ws_admission_room_release(&w, &b, "lobby", 5); /* twice: no effect */
    CHECK_EQ_U(ws_keycount_keys(srv.room_counts), 0);
    CHECK_INT(ws_admission_upgrade(&w, &c, &other, true, &no), 0); /* the room slot is free */
    ws_admission_room_release(&w, &c, "other", 5);
    ws_keycount_free(srv.room_counts);
    ws_origins_free(&srv.origins);
}

int main(void)
{
    conns();
    evictee();
    upgrades();
    return check_exit_status("test_net_admission");
}
