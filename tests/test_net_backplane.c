/* The --backplane URL (net/backplane.c): user, password, host (name, IPv4, [IPv6]), port and
 * database, and every malformed form refused with a reason that never holds the password. */
#include <netinet/in.h>
#include <string.h>

#include "../net/backplane.h"
#include "check.h"

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
    return check_exit_status("test_net_backplane");
}
