/* The --backplane URL (net/backplane.h): redis://[user:pass@]host:port[/db] or
 * redis-cluster://[user:pass@]host:port[,host:port...]. Names are resolved here, once, at
 * start-up; the nodes a cluster announces later are addresses (ws__bp_target_numeric). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp_internal.h"

static int url_err(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "backplane: %s", why);
    return -EINVAL;
}

/* [user:pass@] into t; returns the rest. */
static const char *userinfo(const char *p, ws_redis_target_t *t, char *err, size_t errlen, int *rc)
{
    const char *at = strrchr(p, '@');
    *rc = 0;
    if (!at)
        return p;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    size_t ul = colon ? (size_t)(colon - p) : 0;
    const char *pw = colon ? colon + 1 : p;
    size_t pl = (size_t)(at - pw);
    if (ul >= sizeof t->user || pl >= sizeof t->pass || pl == 0) {
        *rc = url_err(err, errlen, "user or password too long, or empty password");
        return NULL;
    }
    memcpy(t->user, p, ul);
    memcpy(t->pass, pw, pl);
    return at + 1;
}

void ws__bp_where(char *buf, size_t cap, const char *host, const char *port)
{
    snprintf(buf, cap, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
}

/* host[:port] (host a name, IPv4 or [IPv6]) of p[0..n) into t, resolved. */
static int host_port(const char *p, size_t n, ws_redis_target_t *t, char *err, size_t errlen)
{
    char host[128], port[8] = "6379";
    if (n == 0 || n >= sizeof host)
        return url_err(err, errlen, "no host, or a host name too long");
    memcpy(host, p, n);
    host[n] = '\0';
    char *colon = strrchr(host, ':');
    if (host[0] == '[') { /* [v6]:port */
        char *close = strchr(host, ']');
        if (!close)
            return url_err(err, errlen, "unclosed [ in the host");
        colon = close[1] == ':' ? close + 1 : NULL;
        *close = '\0';
        memmove(host, host + 1, strlen(host));
    }
    if (colon) {
        *colon = '\0';
        if (strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof port)
            return url_err(err, errlen, "bad port");
        strcpy(port, colon + 1);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot resolve %.100s:%s: %s", host, port, gai_strerror(g));
        return url_err(err, errlen, why);
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    ws__bp_where(t->where, sizeof t->where, host, port);
    return 0;
}

static int parse_cluster(const char *p, ws_backplane_conf_t *conf, char *err, size_t errlen)
{
    ws_redis_target_t auth = conf->seed[0]; /* user and password */
    if (strchr(p, '/'))
        return url_err(err, errlen, "a cluster has no database number (only 0)");
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (conf->nseeds == WS_BP_SEEDS_MAX)
            return url_err(err, errlen, "more than 16 seed nodes");
        ws_redis_target_t *t = &conf->seed[conf->nseeds];
        *t = auth;
        int rc = host_port(p, n, t, err, errlen);
        if (rc < 0)
            return rc;
        conf->nseeds++;
        p += n + (comma ? 1 : 0);
        if (comma && !*p)
            return url_err(err, errlen, "an empty seed after ','");
    }
    return conf->nseeds ? 0 : url_err(err, errlen, "no seed node");
}

int ws_backplane_parse(const char *url, ws_backplane_conf_t *conf, char *err, size_t errlen)
{
    memset(conf, 0, sizeof(*conf));
    size_t skip = strncmp(url, "redis://", 8) == 0            ? 8
                  : strncmp(url, "redis-cluster://", 16) == 0 ? 16
                                                              : 0;
    if (!skip)
        return url_err(err, errlen,
                       "the URL must be redis://[user:pass@]host:port[/db] or "
                       "redis-cluster://[user:pass@]host:port[,host:port...]");
    conf->cluster = skip == 16;
    int rc;
    const char *p = userinfo(url + skip, &conf->seed[0], err, errlen, &rc);
    if (!p)
        return rc;
    if (conf->cluster)
        return parse_cluster(p, conf, err, errlen);
    ws_redis_target_t *t = &conf->seed[0];
    const char *slash = strchr(p, '/');
    if ((rc = host_port(p, slash ? (size_t)(slash - p) : strlen(p), t, err, errlen)) < 0)
        return rc;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000000)
            return url_err(err, errlen, "bad database number");
        t->db = (int)db;
    }
    conf->nseeds = 1;
    return 0;
}

int ws__bp_target_numeric(ws_redis_target_t *t, const char *host, int port)
{
    char ps[8];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    if (getaddrinfo(host, ps, &hints, &ai) != 0)
        return -EINVAL; /* a name: resolving it would block the worker */
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    ws__bp_where(t->where, sizeof t->where, host, ps);
    return 0;
}
