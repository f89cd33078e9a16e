/* Listening sockets: SO_REUSEPORT so each core has its own accept queue (the kernel spreads
 * connections by flow hash), dual-stack [::] unless an address is given. */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int ws_listener_parse_addr(const char *text, uint16_t port, struct sockaddr_storage *ss,
                           socklen_t *len)
{
    char buf[WS_BIND_MAX];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, text, n + 1);
    if (buf[0] == '[') {
        if (n < 3 || buf[n - 1] != ']')
            return -EINVAL;
        memmove(buf, buf + 1, n - 2);
        buf[n - 2] = '\0';
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (text[0] != '[' && inet_pton(AF_INET, buf, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}

static int open_one(const struct sockaddr_storage *ss, socklen_t len, bool dual, int backlog,
                    uint16_t *port)
{
    static const int one = 1, zero = 0;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc;
    /* TCP_NODELAY on the listener: accepted sockets inherit it, direct descriptors
     * included (a setsockopt on those needs URING_CMD, Linux 6.7). The engine batches its
     * own sends, so Nagle would only delay a room's next message behind an ACK. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto err;
    if (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
        goto err;
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, backlog) < 0)
        goto err;
    struct sockaddr_storage got;
    socklen_t glen = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &glen) < 0)
        goto err;
    *port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                            : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
err:
    rc = -errno;
    close(fd);
    return rc;
}

/* SO_REUSEPORT lets any process of the same user join our port. Binding a plain socket
 * first (and closing it) makes a second server instance fail with EADDRINUSE instead of
 * silently sharing the port with the first. */
static int check_free(const struct sockaddr_storage *ss, socklen_t len, bool dual)
{
    static const int one = 1, zero = 0;
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (dual)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (const struct sockaddr *)ss, len) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

static int open_checked(const struct sockaddr_storage *ss, socklen_t len, bool dual, int backlog,
                        uint16_t *port)
{
    if (*port) {
        int rc = check_free(ss, len, dual);
        if (rc < 0)
            return rc;
    }
    return open_one(ss, len, dual, backlog, port);
}

int ws_listener_open(const ws_server_config_t *cfg, uint16_t *port, bool first)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (cfg->bind_addr[0]) {
        if (ws_listener_parse_addr(cfg->bind_addr, *port, &ss, &len) < 0)
            return -EINVAL;
        return first ? open_checked(&ss, len, false, cfg->backlog, port)
                     : open_one(&ss, len, false, cfg->backlog, port);
    }
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_any;
    in6->sin6_port = htons(*port);
    int fd = first ? open_checked(&ss, sizeof(*in6), true, cfg->backlog, port)
                   : open_one(&ss, sizeof(*in6), true, cfg->backlog, port);
    if (fd != -EAFNOSUPPORT && fd != -EADDRNOTAVAIL && fd != -EPROTONOSUPPORT)
        return fd;
    /* No IPv6 on this host: all IPv4 addresses. */
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    in4->sin_family = AF_INET;
    in4->sin_addr.s_addr = htonl(INADDR_ANY);
    in4->sin_port = htons(*port);
    return first ? open_checked(&ss, sizeof(*in4), false, cfg->backlog, port)
                 : open_one(&ss, sizeof(*in4), false, cfg->backlog, port);
}

void ws_listener_describe(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        snprintf(out, cap, "?");
        return;
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        int v6only = 1;
        socklen_t ol = sizeof(v6only);
        getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol);
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u%s", host, ntohs(in6->sin6_port),
                 v6only ? "" : " (dual stack: IPv6 and IPv4)");
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(in4->sin_port));
    }
}
