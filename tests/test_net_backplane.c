/* The --backplane URL (net/bp_url.c): user, password, host (name, IPv4, [IPv6]), port and
 * database, cluster seeds, and every malformed form refused with a reason that never holds
 * the password. The Cluster arithmetic (net/cluster.c): key slots against the values Redis
 * gives (CLUSTER KEYSLOT), CLUSTER SLOTS replies and redirections. */
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <string.h>

#include "../net/backplane.h"
#include "../net/cluster.h"
#include "check.h"

static void cluster_good(const char *url, unsigned nseeds, const char *first, const char *last)
{
    ws_backplane_conf_t conf;
    char err[256] = "";
    REQUIRE_MSG(ws_backplane_parse(url, &conf, err, sizeof err) == 0, "%s: %s", url, err);
    CHECK(conf.cluster);
    CHECK_INT(conf.nseeds, nseeds);
    CHECK(strcmp(conf.seed[0].where, first) == 0);
    CHECK(strcmp(conf.seed[nseeds - 1].where, last) == 0);
    CHECK(strcmp(conf.seed[nseeds - 1].pass, conf.seed[0].pass) == 0);
}

/* Values from redis-server 7.0's CLUSTER KEYSLOT. */
static void keyslots(void)
{
    CHECK_INT(ws_cluster_keyslot("123456789", 9), 12739);
    CHECK_INT(ws_cluster_keyslot("user1000", 8), 3443);
    CHECK_INT(ws_cluster_keyslot("{user1000}.following", 20), 3443);
    CHECK_INT(ws_cluster_keyslot("foo{}{bar}", 10), 8363); /* empty tag: the whole key */
    CHECK_INT(ws_cluster_keyslot("foo{{bar}}zap", 13), 4015);
    CHECK_INT(ws_cluster_keyslot("{bar", 4), 4015);
    CHECK_INT(ws_backplane_keyslot("uringws", "lobby", 5), ws_cluster_keyslot("lobby", 5));
    CHECK_INT(ws_cluster_keyslot("uringws:{r/1}:seq", 17), ws_cluster_keyslot("uringws:{r/1}", 13));
}

static redisReply *reply_of(const char *resp)
{
    redisReader *r = redisReaderCreate();
    void *rep = NULL;
    REQUIRE(redisReaderFeed(r, resp, strlen(resp)) == REDIS_OK);
    REQUIRE(redisReaderGetReply(r, &rep) == REDIS_OK && rep);
    redisReaderFree(r);
    return rep;
}

static void slots(void)
{
    static ws_cluster_map_t m;
    redisReply *rep = reply_of("*3\r\n"
                               "*3\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
                               "*4\r\n:5461\r\n:10922\r\n*2\r\n$0\r\n\r\n:7001\r\n"
                               "*2\r\n$9\r\n127.0.0.1\r\n:7004\r\n"
                               "*3\r\n:10923\r\n:16000\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n");
    CHECK_INT(ws_cluster_parse_slots(rep, &m), 0);
    CHECK_INT(m.nnodes, 2); /* 7000 twice is one master; the replica is not one */
    CHECK(strcmp(m.node[0].host, "127.0.0.1") == 0 && m.node[0].port == 7000);
    CHECK(m.node[1].host[0] == '\0' && m.node[1].port == 7001);
    CHECK_INT(m.slot[0], 0);
    CHECK_INT(m.slot[5461], 1);
    CHECK_INT(m.slot[16000], 0);
    CHECK_INT(m.slot[16001], WS_CLUSTER_NO_NODE);
    freeReplyObject(rep);
    const char *bad[] = {"+OK\r\n", "*1\r\n*2\r\n:0\r\n:1\r\n",
                         "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\na\r\n:1\r\n",
                         "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n",
                         "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:0\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rep = reply_of(bad[i]);
        CHECK_INT(ws_cluster_parse_slots(rep, &m), -EBADMSG);
        freeReplyObject(rep);
    }
}

static void redirects(void)
{
    ws_cluster_node_t n;
    const char *moved = "MOVED 3999 127.0.0.1:6381";
    CHECK_INT(ws_cluster_parse_redirect(moved, strlen(moved), &n), 1);
    CHECK(strcmp(n.host, "127.0.0.1") == 0 && n.port == 6381);
    const char *ask = "ASK 3999 ::1:6382";
    CHECK_INT(ws_cluster_parse_redirect(ask, strlen(ask), &n), 2);
    CHECK(strcmp(n.host, "::1") == 0 && n.port == 6382);
    const char *bad[] = {"ERR unknown",
                         "MOVED 3999",
                         "MOVED 3999 host:",
                         "MOVED 3999 :6379",
                         "MOVED 3999 h:99999",
                         "ASK 1 h:12x",
                         "CLUSTERDOWN The cluster is down"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(ws_cluster_parse_redirect(bad[i], strlen(bad[i]), &n), 0);
}

static void good(const char *url, const char *user, const char *pass, int db, const char *where)
{
    ws_backplane_conf_t conf;
    char err[256] = "";
    REQUIRE_MSG(ws_backplane_parse(url, &conf, err, sizeof err) == 0, "%s: %s", url, err);
    CHECK(!conf.cluster);
    CHECK_INT(conf.nseeds, 1);
    const ws_redis_target_t t = conf.seed[0];
    CHECK(strcmp(t.user, user) == 0);
    CHECK(strcmp(t.pass, pass) == 0);
    CHECK_INT(t.db, db);
    CHECK(strcmp(t.where, where) == 0);
    CHECK(t.addr_len > 0);
}

static void bad(const char *url)
{
    ws_backplane_conf_t conf;
    char err[256] = "";
    CHECK(ws_backplane_parse(url, &conf, err, sizeof err) == -EINVAL);
    CHECK(err[0] != '\0');
    CHECK(strstr(err, "s3cret") == NULL);
}

int main(void)
{
    good("redis://127.0.0.1:6380", "", "", 0, "127.0.0.1:6380");
    good("redis://127.0.0.1", "", "", 0, "127.0.0.1:6379");
    good("redis://localhost:6379/3", "", "", 3, "localhost:6379");
    good("redis://:s3cret@127.0.0.1:6379", "", "s3cret", 0, "127.0.0.1:6379");
    good("redis://app:s3cret@127.0.0.1:7000/1", "app", "s3cret", 1, "127.0.0.1:7000");
    good("redis://[::1]:6379", "", "", 0, "[::1]:6379");
    bad("http://127.0.0.1:6379");
    bad("redis://");
    bad("redis://:@127.0.0.1");
    bad("redis://app:s3cret@127.0.0.1:/0");
    bad("redis://127.0.0.1:6379/x");
    bad("redis://[::1:6379");
    bad("redis://app:s3cret@no-such-host.invalid:6379");
    cluster_good("redis-cluster://127.0.0.1:7000", 1, "127.0.0.1:7000", "127.0.0.1:7000");
    cluster_good("redis-cluster://app:s3cret@127.0.0.1:7000,[::1]:7001,localhost", 3,
                 "127.0.0.1:7000", "localhost:6379");
    bad("redis-cluster://");
    bad("redis-cluster://127.0.0.1:7000/1");
    bad("redis-cluster://:s3cret@127.0.0.1:7000,");
    bad("redis-cluster://127.0.0.1:7000,,127.0.0.1:7001");
    bad("redis-cluster://a:s3cret@no-such-host.invalid:7000");
    keyslots();
    slots();
    redirects();
    return check_exit_status("test_net_backplane");
}
