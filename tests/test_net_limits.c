/* Admission limits: the shared key counter (per-key and distinct-key limits, release, exact
 * counts under four threads hammering the same keys, as cores do), the peer-address key
 * (IPv4 and its IPv4-mapped IPv6 form count as one address), the --origin list parser and
 * matcher, and ws_server_config_check on the new limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

#include "../net/keycount.h"
#include "../net/origins.h"
#include "check.h"
#include "uringws/server.h"

static void keycount_limits(void)
{
    ws_keycount_t *t = ws_keycount_new();
    REQUIRE(t);
    CHECK_INT(ws_keycount_acquire(t, "a", 1, 2, 2), 0);
    CHECK_INT(ws_keycount_acquire(t, "a", 1, 2, 2), 0);
    CHECK_INT(ws_keycount_acquire(t, "a", 1, 2, 2), -EUSERS); /* per-key limit */
    CHECK_INT(ws_keycount_get(t, "a", 1), 2);
    CHECK_INT(ws_keycount_acquire(t, "b", 1, 2, 2), 0);
    CHECK_INT(ws_keycount_acquire(t, "c", 1, 2, 2), -ENOSPC); /* distinct-key limit */
    CHECK_INT(ws_keycount_keys(t), 2);
    CHECK_INT(ws_keycount_acquire(t, "b", 1, 0, 2), 0); /* existing key: no key limit */
    ws_keycount_release(t, "b", 1);
    ws_keycount_release(t, "b", 1);
    CHECK_INT(ws_keycount_get(t, "b", 1), 0);
    CHECK_INT(ws_keycount_keys(t), 1);
    CHECK_INT(ws_keycount_acquire(t, "c", 1, 2, 2), 0); /* room again once b is gone */
    char big[WS_KEY_MAX + 1];
    memset(big, 'x', sizeof(big));
    CHECK_INT(ws_keycount_acquire(t, big, sizeof(big), 0, 0), -EINVAL);
    ws_keycount_release(t, "a", 1);
    CHECK_INT(ws_keycount_acquire(t, "a", 1, 2, 2), 0); /* released one of a's two */
    ws_keycount_free(t);                                /* frees what is left (ASan: no leak) */
}

#define THREADS 4
#define ROUNDS  20000

typedef struct worker {
    ws_keycount_t *t;
    unsigned id;
    unsigned kept; /* takes of the last round never released */
} worker_t;

/* Each thread takes and drops keys shared with the others under a per-key limit of 3 (more
 * holders than that would mean a lost update), keeping one of each at the end. */
static void *hammer(void *arg)
{
    worker_t *w = arg;
    char key[8];
    for (unsigned i = 0; i < ROUNDS; i++) {
        int n = snprintf(key, sizeof(key), "k%u", i % 16);
        if (ws_keycount_acquire(w->t, key, (size_t)n, 3, 0) == 0) {
            if (i + 16 < ROUNDS)
                ws_keycount_release(w->t, key, (size_t)n);
            else
                w->kept++;
        }
    }
    return NULL;
}

static void keycount_threads(void)
{
    ws_keycount_t *t = ws_keycount_new();
    REQUIRE(t);
    pthread_t th[THREADS];
    worker_t w[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (worker_t){t, i, 0};
        REQUIRE(pthread_create(&th[i], NULL, hammer, &w[i]) == 0);
    }
    unsigned kept = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        kept += w[i].kept;
    }
    /* Each thread keeps its last take of each of the 16 keys unless it was refused then;
     * with 4 threads and a limit of 3, every key ends with 1..3 holders, and the counts add
     * up to the takes kept exactly (a lost update would show here). */
    unsigned held = 0;
    for (unsigned k = 0; k < 16; k++) {
        char key[8];
        int n = snprintf(key, sizeof(key), "k%u", k);
        uint32_t v = ws_keycount_get(t, key, (size_t)n);
        CHECK(v >= 1 && v <= 3);
        held += v;
    }
    CHECK_INT(ws_keycount_keys(t), 16);
    CHECK_INT(held, kept);
    ws_keycount_free(t);
}

static void peer_keys(void)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(1)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(2)};
    REQUIRE(inet_pton(AF_INET, "127.0.0.2", &v4.sin_addr) == 1);
    REQUIRE(inet_pton(AF_INET6, "::ffff:127.0.0.2", &v6.sin6_addr) == 1);
    uint8_t a[16], b[16];
    REQUIRE(ws_keycount_peer_key((struct sockaddr *)&v4, sizeof(v4), a));
    REQUIRE(ws_keycount_peer_key((struct sockaddr *)&v6, sizeof(v6), b));
    CHECK(memcmp(a, b, 16) == 0); /* same address on a dual-stack and an IPv4 listener */
    REQUIRE(inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr) == 1);
    REQUIRE(ws_keycount_peer_key((struct sockaddr *)&v6, sizeof(v6), b));
    CHECK(memcmp(a, b, 16) != 0);
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK(!ws_keycount_peer_key(&un, sizeof(un), a));
    CHECK(!ws_keycount_peer_key((struct sockaddr *)&v4, 4, a)); /* truncated address */
}

static ws_slice_t sl(const char *s)
{
    return ws_slice(s, strlen(s));
}

static void origins(void)
{
    ws_origins_t o;
    char err[128];
    REQUIRE(ws_origins_parse(" http://a.example ,https://B.example:8443", &o, err, sizeof(err)) ==
            0);
    CHECK_INT(o.n, 2);
    CHECK(!o.allow_none);
    CHECK(ws_origins_allow(&o, sl("http://a.example")));
    CHECK(ws_origins_allow(&o, sl("HTTP://A.EXAMPLE")));
    CHECK(ws_origins_allow(&o, sl("https://b.example:8443")));
    CHECK(!ws_origins_allow(&o, sl("https://b.example")));
    CHECK(!ws_origins_allow(&o, sl("http://a.example.evil")));
    CHECK(!ws_origins_allow(&o, sl("http://a.exampl")));
    CHECK(!ws_origins_allow(&o, sl("null")));
    CHECK(!ws_origins_allow(&o, ws_slice(NULL, 0))); /* no Origin header */
    ws_origins_free(&o);
    REQUIRE(ws_origins_parse("none,http://x", &o, NULL, 0) == 0);
    CHECK(o.allow_none);
    CHECK_INT(o.n, 1);
    CHECK(ws_origins_allow(&o, ws_slice(NULL, 0)));
    ws_origins_free(&o);
    const char *bad[] = {"", ",", "http://a,", "http://a,,http://b", "http://a b", "http://\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(ws_origins_parse(bad[i], NULL, err, sizeof(err)), -EINVAL);
        CHECK(strncmp(err, "origin: ", 8) == 0);
    }
    char many[65 * 12 + 1] = "";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%shttp://%d", i ? "," : "", i);
    CHECK_INT(ws_origins_parse(many, NULL, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "64") != NULL);
}

static void config(void)
{
    ws_server_config_t cfg;
    char err[200];
    ws_server_config_defaults(&cfg);
    CHECK_INT(cfg.max_conns_per_ip, 0);
    CHECK_INT(cfg.max_pending, 1024);
    CHECK_INT(cfg.max_rooms, 0);
    CHECK_INT(cfg.slow_policy, WS_SLOW_CLOSE);
    CHECK(cfg.origins == NULL);
    CHECK_INT(cfg.first_frame_timeout_ms, 60000);
    CHECK_INT(cfg.write_stall_ms, 30000);
    CHECK_INT(ws_server_config_check(&cfg, err, sizeof(err)), 0);
#define BAD(field, value, what)                                                                    \
    do {                                                                                           \
        ws_server_config_defaults(&cfg);                                                           \
        cfg.field = value;                                                                         \
        err[0] = '\0';                                                                             \
        CHECK_INT(ws_server_config_check(&cfg, err, sizeof(err)), -EINVAL);                        \
        CHECK(strstr(err, what) != NULL);                                                          \
    } while (0)
    BAD(max_conns_per_ip, 10001, "max-conns-per-ip");
    BAD(max_pending, 0, "max-pending");
    BAD(max_pending, (1u << 24) + 1, "max-pending");
    BAD(max_rooms, 10001, "max-rooms");
    BAD(slow_policy, 2, "slow-policy");
    BAD(origins, "http://a,,http://b", "origin");
#undef BAD
    ws_server_config_defaults(&cfg);
    cfg.slow_policy = WS_SLOW_DROP_OLDEST;
    cfg.origins = "http://a.example,none";
    cfg.max_conns_per_ip = 10;
    cfg.max_rooms = 100;
    cfg.first_frame_timeout_ms = 0;
    cfg.write_stall_ms = 0;
    CHECK_INT(ws_server_config_check(&cfg, err, sizeof(err)), 0);
    /* A small --max-conns with the default --max-pending stays valid. */
    ws_server_config_defaults(&cfg);
    cfg.max_conns = 1;
    CHECK_INT(ws_server_config_check(&cfg, err, sizeof(err)), 0);
}

int main(void)
{
    keycount_limits();
    keycount_threads();
    peer_keys();
    origins();
    config();
    return check_exit_status("test_net_limits");
}
