/* Socket-level smoke test of the engine: starts the server in-process on a loopback port
 * (2 cores; once with direct descriptors, once with regular fds) and drives it with a tiny
 * raw client: plain pages, handshake rejections, echo, ping/pong, a room broadcast across
 * cores with ordering checks, the close handshake, a protocol error, a slow consumer, and
 * the shutdown close (1001). Exits 77 when io_uring is unavailable here. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "uringws/server.h"

static uint16_t port;
static unsigned eintr_count;

/* Blocking receive that retries EINTR (io_uring task work can interrupt blocking calls of
 * threads that own rings; a robust client retries). */
static ssize_t xrecv(int fd, void *p, size_t n)
{
    for (;;) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) {
            eintr_count++;
            continue;
        }
        return r;
    }
}

/* ---- raw client ---------------------------------------------------------------------- */

static int dial_rcvbuf(int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    /* Before connect, so the advertised window stays small too. */
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int dial(void)
{
    return dial_rcvbuf(0);
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        REQUIRE(w > 0);
        c += w;
        n -= (size_t)w;
    }
}

static int recv_exact(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = xrecv(fd, c, n);
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads an HTTP response head (and, with Content-Length, its body) into buf. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t r = xrecv(fd, buf + len, 1);
        if (r <= 0) {
            fprintf(stderr, "read_response: %s after %zu bytes\n", r ? strerror(errno) : "EOF",
                    len);
            return -1;
        }
        len++;
        buf[len] = '\0';
        if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    const char *cl = strstr(buf, "Content-Length: ");
    if (cl) {
        size_t body = strtoul(cl + 16, NULL, 10);
        if (len + body >= cap)
            return -1;
        if (recv_exact(fd, buf + len, body) < 0)
            return -1;
        len += body;
        buf[len] = '\0';
    }
    return (int)len;
}

static int status_of(const char *resp)
{
    return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? atoi(resp + 9) : -1;
}

/* True when the server closed the connection (EOF or reset) within the receive timeout. */
static int wait_eof(int fd)
{
    char b[256];
    for (;;) {
        ssize_t r = xrecv(fd, b, sizeof(b));
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 1;
        if (r < 0)
            return 0;
    }
}

static char *http_get(const char *path, int *status)
{
    int fd = dial();
    char req[256];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    send_all(fd, req, strlen(req));
    static char resp[65536];
    int n = read_response(fd, resp, sizeof(resp));
    *status = n > 0 ? status_of(resp) : -1;
    CHECK(wait_eof(fd));
    close(fd);
    return resp;
}

static int ws_open(const char *path)
{
    int fd = dial();
    char req[512];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             path);
    send_all(fd, req, strlen(req));
    char resp[1024];
    REQUIRE(read_response(fd, resp, sizeof(resp)) > 0);
    CHECK_EQ_U(status_of(resp), 101);
    CHECK(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    return fd;
}

static void ws_send(int fd, uint8_t opcode, const void *payload, size_t len)
{
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = 0x80 | opcode;
    if (len < 126) {
        hdr[h++] = 0x80 | (uint8_t)len;
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(hdr + h, key, 4);
    h += 4;
    uint8_t *buf = malloc(h + len);
    REQUIRE(buf);
    memcpy(buf, hdr, h);
    for (size_t i = 0; i < len; i++)
        buf[h + i] = ((const uint8_t *)payload)[i] ^ key[i & 3];
    send_all(fd, buf, h + len);
    free(buf);
}

/* Reads one server frame (unmasked, FIN). Returns the opcode, or -1 (closed, timeout) or -2
 * (masked); payload in *out (NULL on failure). */
static int ws_recv(int fd, uint8_t **out, size_t *len)
{
    *out = NULL; /* so callers may free(*out) whatever happened */
    *len = 0;
    uint8_t h[2];
    if (recv_exact(fd, h, 2) < 0)
        return -1;
    if (h[1] & 0x80)
        return -2; /* the server must not mask */
    uint64_t n = h[1] & 0x7f;
    if (n == 126) {
        uint8_t e[2];
        if (recv_exact(fd, e, 2) < 0)
            return -1;
        n = (uint64_t)e[0] << 8 | e[1];
    } else if (n == 127) {
        uint8_t e[8];
        if (recv_exact(fd, e, 8) < 0)
            return -1;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | e[i];
    }
    uint8_t *p = malloc(n + 1);
    REQUIRE(p);
    if (n && recv_exact(fd, p, n) < 0) {
        free(p);
        return -1;
    }
    p[n] = 0;
    *out = p;
    *len = n;
    return h[0] & 0x0f;
}

/* Expects a close frame with `code`, answers it, and expects the server to end the TCP
 * connection. */
static void expect_close(int fd, unsigned code)
{
    uint8_t *p;
    size_t n;
    int op;
    /* Data frames may precede the close. */
    while ((op = ws_recv(fd, &p, &n)) == 0x1 || op == 0x2 || op == 0x9)
        free(p);
    CHECK_EQ_U(op, 0x8);
    if (op >= 0) {
        CHECK(n >= 2);
        if (n >= 2)
            CHECK_EQ_U((unsigned)(p[0] << 8 | p[1]), code);
        free(p);
        uint8_t reply[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        ws_send(fd, 0x8, reply, 2);
    }
    CHECK(wait_eof(fd));
}

/* ---- scenarios ------------------------------------------------------------------------ */

static void pages(void)
{
    int st;
    char *r = http_get("/healthz", &st);
    CHECK_EQ_U(st, 200);
    CHECK(strstr(r, "\r\n\r\nok\n") != NULL);
    r = http_get("/", &st);
    CHECK_EQ_U(st, 200);
    CHECK(strstr(r, "Content-Type: text/html") != NULL);
    CHECK(strstr(r, "<") != NULL);
    r = http_get("/no-such-page", &st);
    CHECK_EQ_U(st, 404);
    r = http_get("/metrics", &st);
    CHECK_EQ_U(st, 200);
    CHECK(strstr(r, "uringws_connections_accepted_total ") != NULL);
    CHECK(strstr(r, "uringws_core_connections{core=\"0\"}") != NULL);

    /* Wrong version: 426 with the version we speak. */
    int fd = dial();
    const char *bad = "GET /room HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 12\r\n\r\n";
    send_all(fd, bad, strlen(bad));
    char resp[2048];
    CHECK(read_response(fd, resp, sizeof(resp)) > 0);
    CHECK_EQ_U(status_of(resp), 426);
    CHECK(strstr(resp, "Sec-WebSocket-Version: 13") != NULL);
    CHECK(wait_eof(fd));
    close(fd);

    /* Garbage: 400. A head over 8 KiB: 431. */
    fd = dial();
    send_all(fd, "BLAH\r\n\r\n", 8);
    CHECK(read_response(fd, resp, sizeof(resp)) > 0);
    CHECK_EQ_U(status_of(resp), 400);
    CHECK(wait_eof(fd));
    close(fd);
    fd = dial();
    send_all(fd, "GET / HTTP/1.1\r\nX: ", 19);
    static char pad[10000];
    memset(pad, 'a', sizeof(pad));
    send_all(fd, pad, sizeof(pad));
    CHECK(read_response(fd, resp, sizeof(resp)) > 0);
    CHECK_EQ_U(status_of(resp), 431);
    CHECK(wait_eof(fd));
    close(fd);
}

static void echo_and_ping(void)
{
    int fd = ws_open("/echo");
    uint8_t *p;
    size_t n;
    ws_send(fd, 0x1, "hello", 5);
    CHECK_EQ_U(ws_recv(fd, &p, &n), 0x1);
    CHECK(n == 5 && memcmp(p, "hello", 5) == 0);
    free(p);
    /* A binary message split over three TCP writes, 70000 bytes (64-bit length). */
    size_t big = 70000;
    uint8_t *msg = malloc(big);
    for (size_t i = 0; i < big; i++)
        msg[i] = (uint8_t)(i * 7);
    ws_send(fd, 0x2, msg, big);
    CHECK_EQ_U(ws_recv(fd, &p, &n), 0x2);
    CHECK(n == big && memcmp(p, msg, big) == 0);
    free(p);
    free(msg);
    ws_send(fd, 0x9, "pp", 2);
    CHECK_EQ_U(ws_recv(fd, &p, &n), 0xA);
    CHECK(n == 2 && memcmp(p, "pp", 2) == 0);
    free(p);
    /* Client-initiated close: the server echoes the code and ends the connection. */
    uint8_t code[2] = {0x03, 0xe8};
    ws_send(fd, 0x8, code, 2);
    CHECK_EQ_U(ws_recv(fd, &p, &n), 0x8);
    CHECK(n == 2 && p[0] == 0x03 && p[1] == 0xe8);
    free(p);
    CHECK(wait_eof(fd));
    close(fd);

    /* An unmasked client frame is a protocol error: close 1002, then the socket ends. */
    fd = ws_open("/echo");
    uint8_t unmasked[7] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o'};
    send_all(fd, unmasked, sizeof(unmasked));
    CHECK_EQ_U(ws_recv(fd, &p, &n), 0x8);
    CHECK(n >= 2 && (p[0] << 8 | p[1]) == 1002);
    free(p);
    CHECK(wait_eof(fd));
    close(fd);

    /* Upgrade and first frame in one write: the frame bytes after the head are parsed. */
    fd = dial();
    char req[512];
    int k = snprintf(req, sizeof(req),
                     "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n");
    uint8_t frame[8] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    memcpy(req + k, frame, sizeof(frame));
    send_all(fd, req, (size_t)k + sizeof(frame));
    char resp[1024];
    CHECK(read_response(fd, resp, sizeof(resp)) > 0);
    CHECK_EQ_U(ws_recv(fd, &p, &n), 0x1);
    CHECK(n == 2 && memcmp(p, "hi", 2) == 0);
    free(p);
    close(fd); /* abrupt: the server must clean up on its own */
}

#define MEMBERS    12
#define PER_SENDER 50

/* Every member sends PER_SENDER messages "s<id>:<k>"; every member must receive all
 * MEMBERS*PER_SENDER messages, each sender's in order, and all members the same sequence. */
static void broadcast(void)
{
    int fd[MEMBERS];
    for (int i = 0; i < MEMBERS; i++)
        fd[i] = ws_open("/smoke");
    /* Joins travel to the room's home core; a round trip through it orders them before the
     * messages below (echo on each connection would not), so give them a moment. */
    usleep(100 * 1000);
    for (int k = 0; k < PER_SENDER; k++) {
        for (int i = 0; i < MEMBERS; i++) {
            char m[32];
            int n = snprintf(m, sizeof(m), "s%d:%d", i, k);
            ws_send(fd[i], 0x1, m, (size_t)n);
        }
    }
    static char seq[MEMBERS][MEMBERS * PER_SENDER][16];
    for (int i = 0; i < MEMBERS; i++) {
        int next[MEMBERS] = {0};
        for (int j = 0; j < MEMBERS * PER_SENDER; j++) {
            uint8_t *p;
            size_t n;
            int op = ws_recv(fd[i], &p, &n);
            if (op != 0x1) {
                fprintf(stderr, "member %d: frame %d: opcode %d\n", i, j, op);
                check_failures++;
                return;
            }
            int s, k;
            CHECK(sscanf((char *)p, "s%d:%d", &s, &k) == 2);
            CHECK(s >= 0 && s < MEMBERS);
            if (s >= 0 && s < MEMBERS) {
                CHECK_EQ_U(k, next[s]); /* each sender's messages in the order sent */
                next[s] = k + 1;
            }
            snprintf(seq[i][j], sizeof(seq[i][j]), "%s", (char *)p);
            free(p);
        }
    }
    for (int i = 1; i < MEMBERS; i++) /* one room order for everyone */
        for (int j = 0; j < MEMBERS * PER_SENDER; j++)
            CHECK(strcmp(seq[i][j], seq[0][j]) == 0);
    for (int i = 0; i < MEMBERS; i++)
        close(fd[i]);
}

/* A member that never reads while the room is flooded is closed with 1008 once it has been
 * over --max-queue for SLOW_GRACE_MS without taking its backlog; the others keep receiving. */
#define SLOW_GRACE_MS 200
static void slow_consumer(void)
{
    int slow = dial_rcvbuf(4096);
    char req[512];
    snprintf(req, sizeof(req),
             "GET /slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    send_all(slow, req, strlen(req));
    char resp[1024];
    REQUIRE(read_response(slow, resp, sizeof(resp)) > 0);
    int fast = ws_open("/slow");
    usleep(100 * 1000);
    /* 150 x 60 KB = 9 MB: more than the kernel's socket buffers (the server's send buffer
     * autotunes up to 4 MB) plus the 1 MiB max-queue of this test. */
    size_t len = 60000;
    uint8_t *msg = calloc(1, len);
    int received = 0;
    for (int k = 0; k < 150; k++) {
        ws_send(fast, 0x2, msg, len);
        uint8_t *p;
        size_t n;
        if (ws_recv(fast, &p, &n) == 0x2) {
            received++;
            free(p);
        }
    }
    free(msg);
    CHECK_EQ_U(received, 150);
    /* Stay stuck past the grace: two windows (the kernel's buffers took bytes in the first),
     * with room for a loaded machine. */
    usleep(6 * SLOW_GRACE_MS * 1000);
    /* Now drain the slow one: some binary frames, then close 1008. */
    uint8_t *p;
    size_t n;
    int op;
    int frames = 0;
    while ((op = ws_recv(slow, &p, &n)) == 0x2) {
        frames++;
        free(p);
    }
    CHECK_EQ_U(op, 0x8);
    if (op >= 0) {
        CHECK(n >= 2 && (p[0] << 8 | p[1]) == 1008);
        free(p);
    }
    CHECK(frames < 150);
    close(slow);
    close(fast);
}

static ws_server_t *start(ws_server_config_t *cfg)
{
    cfg->port = 0;
    strcpy(cfg->bind_addr, "127.0.0.1");
    cfg->log_level = getenv("WS_TEST_VERBOSE") ? WS_LOG_DEBUG : WS_LOG_WARN;
    ws_server_t *srv;
    int rc = ws_server_start(cfg, &srv);
    if (rc == -ENOSYS) {
        printf("test_net_smoke: io_uring unavailable here: skipped\n");
        exit(77);
    }
    REQUIRE(rc == 0);
    port = ws_server_port(srv);
    return srv;
}

static long metric(const char *name)
{
    int st;
    char *r = http_get("/metrics", &st);
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name);
    char *p = strstr(r, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* max_conns, handshake timeout, pings and the idle timeout, with short limits. */
static void limits(bool direct)
{
    ws_server_config_t cfg;
    ws_server_config_defaults(&cfg);
    cfg.cores = 2;
    cfg.use_direct_fds = direct;
    cfg.max_conns = 2;
    cfg.handshake_timeout_ms = 300;
    cfg.ping_interval_ms = 200;
    cfg.idle_timeout_ms = 1200;
    cfg.close_timeout_ms = 500;
    cfg.tick_ms = 50;
    ws_server_t *srv = start(&cfg);

    /* Handshake timeout: a silent socket is closed without a response. */
    uint64_t t0 = ms_now();
    int quiet = dial();
    CHECK(wait_eof(quiet));
    uint64_t took = ms_now() - t0;
    CHECK(took >= 250 && took < 2000);
    close(quiet);

    int a = ws_open("/echo");
    int b = ws_open("/room");
    /* A third connection is over max_conns: 503, then closed. */
    int c = dial();
    char resp[1024];
    CHECK(read_response(c, resp, sizeof(resp)) > 0);
    CHECK_EQ_U(status_of(resp), 503);
    CHECK(wait_eof(c));
    close(c);

    /* Pings arrive every ~200 ms; answering them is not required. */
    uint8_t *p;
    size_t n;
    CHECK_EQ_U(ws_recv(b, &p, &n), 0x9);
    free(p);
    /* a stays active (pongs count as activity), b stays silent: b gets 1001 after ~1.2 s. */
    t0 = ms_now();
    int op;
    while ((op = ws_recv(b, &p, &n)) == 0x9) {
        free(p);
        ws_send(a, 0xA, "", 0);
    }
    CHECK_EQ_U(op, 0x8);
    if (op >= 0) {
        CHECK(n >= 2 && (p[0] << 8 | p[1]) == 1001);
        free(p);
    }
    took = ms_now() - t0;
    CHECK(took >= 700 && took < 4000);
    /* No close reply from b: the server drops it after close_timeout. */
    CHECK(wait_eof(b));
    close(b);
    /* a is still open and echoes. */
    ws_send(a, 0x1, "still", 5);
    while ((op = ws_recv(a, &p, &n)) == 0x9)
        free(p);
    CHECK_EQ_U(op, 0x1);
    if (op >= 0) {
        CHECK(n == 5 && memcmp(p, "still", 5) == 0);
        free(p);
    }
    close(a);
    usleep(100 * 1000);
    CHECK_EQ_U(metric("uringws_handshake_errors_total{status=\"503\"}"), 1);
    CHECK_EQ_U(metric("uringws_handshake_errors_total{status=\"408\"}"), 1);
    ws_server_stop(srv);
    CHECK_EQ_U(ws_server_wait(srv), 0);
}

/* A buffer ring of 1 buffer (growing to 4) per core under 16 concurrent senders: receives
 * hit ENOBUFS, the ring grows, recvs are re-armed, and every byte still arrives. */
static void tiny_buffers(bool direct)
{
    ws_server_config_t cfg;
    ws_server_config_defaults(&cfg);
    cfg.cores = 2;
    cfg.use_direct_fds = direct;
    cfg.recv_bufs = 1;
    cfg.recv_bufs_max = 4;
    cfg.recv_buf_size = 512;
    ws_server_t *srv = start(&cfg);
    enum { C = 16, K = 40 };
    int fd[C];
    for (int i = 0; i < C; i++)
        fd[i] = ws_open("/echo");
    static uint8_t msg[3000];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    for (int k = 0; k < K; k++)
        for (int i = 0; i < C; i++)
            ws_send(fd[i], 0x2, msg, 1000 + (size_t)k * 50);
    for (int i = 0; i < C; i++) {
        for (int k = 0; k < K; k++) {
            uint8_t *p;
            size_t n;
            int op = ws_recv(fd[i], &p, &n);
            CHECK_EQ_U(op, 0x2);
            if (op != 0x2)
                break;
            CHECK(n == 1000 + (size_t)k * 50 && memcmp(p, msg, n) == 0);
            free(p);
        }
        close(fd[i]);
    }
    CHECK(metric("uringws_recv_enobufs_total") > 0);
    CHECK(metric("uringws_recv_buffers") > 2);
    ws_server_stop(srv);
    CHECK_EQ_U(ws_server_wait(srv), 0);
}

/* With regular fds the server's sockets are this process's own: every accepted one (local
 * port = the server's, not listening) must have TCP_NODELAY, inherited from the listener
 * (direct descriptors are the same kernel sockets, so they get it the same way). Returns
 * how many it checked. */
static unsigned accepted_nodelay(void)
{
    unsigned checked = 0;
    for (int fd = 3; fd < 4096; fd++) {
        struct sockaddr_in a;
        socklen_t alen = sizeof(a);
        int listening = 0, nodelay = 0;
        socklen_t ilen = sizeof(int);
        if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0 || a.sin_family != AF_INET ||
            ntohs(a.sin_port) != port)
            continue;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0 || listening)
            continue;
        ilen = sizeof(int);
        CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &ilen) == 0 && nodelay == 1);
        checked++;
    }
    return checked;
}

static void run(bool direct, unsigned cores)
{
    ws_server_config_t cfg;
    ws_server_config_defaults(&cfg);
    cfg.cores = cores;
    cfg.max_queue = 1 << 20;
    cfg.slow_grace_ms = SLOW_GRACE_MS;
    cfg.use_direct_fds = direct;
    cfg.shutdown_timeout_ms = 2000;
    ws_server_t *srv = start(&cfg);
    printf("server on 127.0.0.1:%u (%u cores, %s)\n", port, cores,
           direct ? "direct descriptors" : "regular fds");
    pages();
    if (!direct) {
        int probe = ws_open("/echo");
        CHECK(accepted_nodelay() >= 1);
        close(probe);
    }
    echo_and_ping();
    broadcast();
    slow_consumer();
    if (cores > 1)
        CHECK(metric("uringws_xcore_events_total") > 0);
    /* Shutdown: open connections get 1001. */
    int a = ws_open("/bye"), b = ws_open("/echo");
    ws_server_stop(srv);
    expect_close(a, 1001);
    expect_close(b, 1001);
    close(a);
    close(b);
    CHECK_EQ_U(ws_server_wait(srv), 0);
}

int main(void)
{
    run(true, 2);
    run(false, 2);
    run(true, 1);
    limits(true);
    limits(false);
    tiny_buffers(true);
    tiny_buffers(false);
    printf("EINTR retries: %u\n", eintr_count);
    return check_exit_status("test_net_smoke");
}
