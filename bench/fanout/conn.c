/* Client WebSocket connection for the fan-out load generator; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/base64.h>
#include <openssl/err.h>

#include "uringws/common.h"
#include "uringws/handshake.h"
#include "uringws/mask.h"

#include "tls.h"

#define WS_FO_HEAD_MAX 2048

/* Masks only need to be unpredictable to intermediaries, not cryptographically strong, so a
 * xorshift64* generator seeded once from getrandom() is enough and costs a few cycles a
 * frame (a browser draws from a CSPRNG; the server cannot tell the difference). */
static uint64_t rand_state = 0x9e3779b97f4a7c15ull;

void ws_fo_rand_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), 0) != sizeof(s) || s == 0)
        s = (uint64_t)ws_fo_now() | 1;
    rand_state = s;
}

static uint64_t next_rand(void)
{
    uint64_t x = rand_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rand_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void close_conn(ws_fo_conn_t *c, bool reset);

static void set_pollout(ws_fo_loop_t *l, ws_fo_conn_t *c, bool on)
{
    if (c->pollout == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET | (on ? EPOLLOUT : 0),
                             .data.u64 = c->index};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->pollout = on;
}

void ws_fo_conn_close(ws_fo_conn_t *c)
{
    close_conn(c, false);
}

void ws_fo_conn_abort(ws_fo_conn_t *c)
{
    close_conn(c, true);
}

/* Ends the connection; `reset` closes with RST so that no TIME_WAIT entry is left behind:
 * a run of 19,000 connections would otherwise hold most of the ephemeral ports of its
 * source address for a minute and slow the next run's connects down. */
static void close_conn(ws_fo_conn_t *c, bool reset)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        struct linger lg = {1, 0};
        if (reset)
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
        c->fd = -1;
    }
    free(c->head);
    c->head = NULL;
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = c->out_cap = 0;
    c->state = WS_FO_C_DEAD;
}

void ws_fo_conn_fail(ws_fo_loop_t *l, ws_fo_conn_t *c, enum ws_fo_fail why, unsigned code)
{
    if (c->state == WS_FO_C_DEAD)
        return;
    ws_fo_conn_close(c);
    l->on_fail(l, c, why, code);
}

/* The failure kind that matches how far the connection got. */
static enum ws_fo_fail fail_kind(const ws_fo_conn_t *c)
{
    switch (c->state) {
    case WS_FO_C_CONNECTING:
        return WS_FO_FAIL_CONNECT;
    case WS_FO_C_TLS:
    case WS_FO_C_UPGRADE:
        return WS_FO_FAIL_HANDSHAKE;
    default:
        return WS_FO_FAIL_CLOSED;
    }
}

/* Makes room for `n` more bytes at out + out_len. */
static int out_reserve(ws_fo_conn_t *c, uint32_t n)
{
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + n <= c->out_cap)
        return 0;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_len + n <= c->out_cap)
            return 0;
    }
    uint32_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n)
        cap *= 2;
    uint8_t *p = realloc(c->out, cap);
    if (!p)
        return -ENOMEM;
    c->out = p;
    c->out_cap = cap;
    return 0;
}

/* Writes from p; returns bytes written, -EAGAIN or another -errno (0 counts as failure). */
static ssize_t io_write(ws_fo_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->ssl) {
        ssize_t r =
            ws_fo_tls_result(c->ssl, SSL_write(c->ssl, p, n > (1u << 30) ? (1 << 30) : (int)n));
        return r == 0 ? -EPIPE : r;
    }
    ssize_t r = write(c->fd, p, n);
    return r >= 0 ? r : -errno;
}

void ws_fo_conn_flush(ws_fo_loop_t *l, ws_fo_conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t r = io_write(c, c->out + c->out_off, c->out_len - c->out_off);
        if (r == -EAGAIN || r == -EINTR) {
            if (r == -EAGAIN) {
                set_pollout(l, c, true);
                return;
            }
            continue;
        }
        if (r < 0) {
            ws_fo_conn_fail(l, c, fail_kind(c), WS_CLOSE_ABNORMAL);
            return;
        }
        c->out_off += (uint32_t)r;
    }
    if (c->state == WS_FO_C_OPEN || c->state == WS_FO_C_UPGRADE)
        set_pollout(l, c, false);
}

/* Queues a masked frame; `payload` may be NULL for zeros after the first `plen` bytes. */
static int queue_frame(ws_fo_conn_t *c, uint8_t opcode, const uint8_t *payload, uint32_t plen,
                       uint32_t size)
{
    if (out_reserve(c, WS_FRAME_HEADER_MAX + size) != 0)
        return -ENOMEM;
    uint64_t r = next_rand();
    uint8_t key[4];
    memcpy(key, &r, 4);
    uint8_t *p = c->out + c->out_len;
    size_t hl = ws_frame_header_write_masked(p, opcode, true, size, key);
    memcpy(p + hl, payload, plen);
    memset(p + hl + plen, 0, size - plen);
    ws_mask(p + hl, size, key, 0);
    c->out_len += (uint32_t)(hl + size);
    return 0;
}

int ws_fo_conn_send(ws_fo_loop_t *l, ws_fo_conn_t *c, const uint8_t meta[WS_FO_META], uint32_t size)
{
    (void)l;
    if (c->state != WS_FO_C_OPEN)
        return -ENOTCONN;
    if (ws_fo_conn_backlog(c) > WS_FO_MAX_BACKLOG)
        return -ENOBUFS;
    return queue_frame(c, WS_OP_BINARY, meta, WS_FO_META, size);
}

static void send_upgrade(ws_fo_loop_t *l, ws_fo_conn_t *c)
{
    const ws_fo_config_t *cfg = l->cfg;
    uint8_t raw[16];
    uint64_t a = next_rand(), b = next_rand();
    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    EVP_EncodeBlock((uint8_t *)c->key, raw, 16);
    char room[160];
    if (cfg->rooms > 1)
        snprintf(room, sizeof(room), "%s-%u", cfg->room, c->room);
    else
        snprintf(room, sizeof(room), "%s", cfg->room);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     room, cfg->host, c->key);
    c->head = malloc(WS_FO_HEAD_MAX);
    if (!c->head || out_reserve(c, (uint32_t)n) != 0) {
        ws_fo_conn_fail(l, c, WS_FO_FAIL_HANDSHAKE, 0);
        return;
    }
    memcpy(c->out + c->out_len, req, (size_t)n);
    c->out_len += (uint32_t)n;
    c->head_len = 0;
    c->state = WS_FO_C_UPGRADE;
    ws_fo_conn_flush(l, c);
}

static void tls_step(ws_fo_loop_t *l, ws_fo_conn_t *c)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        send_upgrade(l, c);
        return;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        set_pollout(l, c, false);
        return;
    case SSL_ERROR_WANT_WRITE:
        set_pollout(l, c, true);
        return;
    default:
        ERR_clear_error();
        ws_fo_conn_fail(l, c, WS_FO_FAIL_HANDSHAKE, 0);
    }
}

int ws_fo_conn_start(ws_fo_loop_t *l, ws_fo_conn_t *c, const struct sockaddr_storage *src)
{
    const ws_fo_config_t *cfg = l->cfg;
    int one = 1, err;
    c->state = WS_FO_C_CONNECTING;
    c->started_ns = ws_fo_now();
    c->fd = socket(cfg->dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        goto err;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (src) {
        /* The port is chosen at connect() time, per destination, so each source address
         * has the whole ephemeral range for this server. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (const struct sockaddr *)src, sizeof(struct sockaddr_in)) != 0)
            goto err;
    }
    if (connect(c->fd, (const struct sockaddr *)&cfg->dst, cfg->dst_len) != 0 &&
        errno != EINPROGRESS)
        goto err;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u64 = c->index};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto err;
    c->pollout = true;
    return 0;
err:
    err = -errno;
    ws_fo_conn_fail(l, c, WS_FO_FAIL_CONNECT, 0);
    return err;
}

/* Connect finished (EPOLLOUT while CONNECTING). */
static void connected(ws_fo_loop_t *l, ws_fo_conn_t *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        ws_fo_conn_fail(l, c, WS_FO_FAIL_CONNECT, 0);
        return;
    }
    if (!l->cfg->tls) {
        send_upgrade(l, c);
        return;
    }
    c->ssl = ws_fo_tls_new(l, c->fd);
    if (!c->ssl) {
        ws_fo_conn_fail(l, c, WS_FO_FAIL_HANDSHAKE, 0);
        return;
    }
    c->state = WS_FO_C_TLS;
    tls_step(l, c);
}

/* Payload of a control frame or the meta of a data frame is complete. */
static void frame_done(ws_fo_loop_t *l, ws_fo_conn_t *c, int64_t now)
{
    switch (c->opcode) {
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (c->got == WS_FO_META)
            l->on_message(l, c, c->keep, now);
        break;
    case WS_OP_PING:
        if (queue_frame(c, WS_OP_PONG, c->keep, c->got, c->got) == 0)
            ws_fo_conn_flush(l, c);
        break;
    case WS_OP_CLOSE: {
        unsigned code = c->got >= 2 ? ((unsigned)c->keep[0] << 8 | c->keep[1]) : WS_CLOSE_NO_STATUS;
        ws_fo_conn_fail(l, c, WS_FO_FAIL_CLOSED, code);
        break;
    }
    default:
        break; /* pong, continuation: nothing to measure */
    }
}

/* Walks frames in p[0..n): headers are parsed, only the kept prefix of each payload is
 * copied, the rest is skipped. */
static void read_frames(ws_fo_loop_t *l, ws_fo_conn_t *c, const uint8_t *p, size_t n, int64_t now)
{
    while (c->state == WS_FO_C_OPEN) {
        /* The common case of a fan-out stream, measured in place: a whole small data frame
         * (FIN, no RSV bits, unmasked, 7-bit length) with nothing carried over. At hundreds
         * of thousands of deliveries per second per worker, the general path's header copy
         * and parse were a quarter of the client's time. */
        if (!c->in_payload && c->hdr_len == 0 && n >= 2 && p[1] < 126 && n >= 2u + p[1] &&
            (p[0] == (0x80 | WS_OP_TEXT) || p[0] == (0x80 | WS_OP_BINARY))) {
            size_t len = p[1];
            if (len >= WS_FO_META)
                l->on_message(l, c, p + 2, now);
            p += 2 + len;
            n -= 2 + len;
            continue;
        }
        if (!c->in_payload) {
            if (n == 0)
                return;
            size_t take = sizeof(c->hdr) - c->hdr_len;
            if (take > n)
                take = n;
            memcpy(c->hdr + c->hdr_len, p, take);
            ws_frame_header_t h;
            int r = ws_frame_header_parse(c->hdr, c->hdr_len + take, 0, &h);
            if (r == WS_INCOMPLETE) {
                c->hdr_len += (uint8_t)take;
                return;
            }
            if (r < 0 || h.masked) {
                ws_fo_conn_fail(l, c, WS_FO_FAIL_CLOSED, WS_CLOSE_PROTOCOL_ERROR);
                return;
            }
            size_t used = (size_t)r - c->hdr_len;
            p += used;
            n -= used;
            c->hdr_len = 0;
            c->in_payload = true;
            c->opcode = h.opcode;
            c->remain = h.payload_len;
            c->got = 0;
            if (ws_opcode_is_control(h.opcode))
                c->want = (uint8_t)h.payload_len;
            else if (h.opcode == WS_OP_CONT || h.payload_len < WS_FO_META)
                c->want = 0;
            else
                c->want = WS_FO_META;
        }
        size_t take = c->remain < n ? (size_t)c->remain : n;
        if (c->got < c->want) {
            size_t k = c->want - c->got;
            if (k > take)
                k = take;
            memcpy(c->keep + c->got, p, k);
            c->got += (uint8_t)k;
        }
        p += take;
        n -= take;
        c->remain -= take;
        if (c->remain > 0)
            return;
        c->in_payload = false;
        frame_done(l, c, now);
    }
}

/* Collects the 101 response; what follows it is already frames. */
static void upgrade_input(ws_fo_loop_t *l, ws_fo_conn_t *c, const uint8_t *p, size_t n, int64_t now)
{
    size_t room = WS_FO_HEAD_MAX - 1 - c->head_len;
    size_t take = n < room ? n : room;
    memcpy(c->head + c->head_len, p, take);
    size_t old = c->head_len;
    c->head_len += (uint16_t)take;
    c->head[c->head_len] = 0;
    char *end = strstr(c->head, "\r\n\r\n");
    if (!end) {
        if (c->head_len >= WS_FO_HEAD_MAX - 1)
            ws_fo_conn_fail(l, c, WS_FO_FAIL_HANDSHAKE, 0);
        return;
    }
    size_t head_len = (size_t)(end + 4 - c->head);
    *end = 0;
    char accept[29];
    ws_handshake_accept(ws_slice(c->key, strlen(c->key)), accept);
    const char *a = strcasestr(c->head, "\r\nSec-WebSocket-Accept:");
    if (strncmp(c->head, "HTTP/1.1 101", 12) != 0 || !a) {
        ws_fo_conn_fail(l, c, WS_FO_FAIL_HANDSHAKE, 0);
        return;
    }
    a += strlen("\r\nSec-WebSocket-Accept:");
    a += strspn(a, " \t");
    if (strncmp(a, accept, 28) != 0) {
        ws_fo_conn_fail(l, c, WS_FO_FAIL_HANDSHAKE, 0);
        return;
    }
    free(c->head);
    c->head = NULL;
    c->state = WS_FO_C_OPEN;
    l->on_open(l, c);
    size_t rest = head_len - old;
    if (c->state == WS_FO_C_OPEN && rest < n)
        read_frames(l, c, p + rest, n - rest, now);
}

/* Hands plaintext to the upgrade or frame reader. */
static void plain_input(ws_fo_loop_t *l, ws_fo_conn_t *c, const uint8_t *p, size_t n)
{
    int64_t now = ws_fo_now();
    if (c->state == WS_FO_C_UPGRADE)
        upgrade_input(l, c, p, n, now);
    else
        read_frames(l, c, p, n, now);
}

/* One read of up to a chunk, handed to the TLS or plain input. Returns the bytes read, 0
 * when the socket had nothing (EAGAIN), or -1 when the connection failed. */
static ssize_t input_once(ws_fo_loop_t *l, ws_fo_conn_t *c)
{
    ssize_t r;
    do
        r = read(c->fd, l->rbuf, WS_FO_READ_CHUNK);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN)
        return 0;
    if (r <= 0) {
        ws_fo_conn_fail(l, c, fail_kind(c), WS_CLOSE_ABNORMAL);
        return -1;
    }
    if (!c->ssl) {
        plain_input(l, c, l->rbuf, (size_t)r);
        return r;
    }
    l->cur = l->rbuf;
    l->cur_len = (size_t)r;
    if (c->state == WS_FO_C_TLS)
        tls_step(l, c);
    /* Decrypt every complete record of the chunk; a partial one stays inside BoringSSL. */
    while (c->state == WS_FO_C_UPGRADE || c->state == WS_FO_C_OPEN) {
        ssize_t n = ws_fo_tls_result(c->ssl, SSL_read(c->ssl, l->pbuf, WS_FO_READ_CHUNK));
        if (n == -EAGAIN)
            break;
        if (n <= 0) {
            ws_fo_conn_fail(l, c, fail_kind(c), WS_CLOSE_ABNORMAL);
            break;
        }
        plain_input(l, c, l->pbuf, (size_t)n);
    }
    l->cur_len = 0;
    return r;
}

/* Sockets are edge-triggered: read until a read comes back short (the receive queue was
 * empty at that moment, and data arriving later raises a new edge). Level-triggered epoll
 * polled every socket once more on the next epoll_wait after it was read, which was a fifth
 * of the client's time with 10,000 connections (tcp_poll, sock_poll). */
static void input(ws_fo_loop_t *l, ws_fo_conn_t *c)
{
    while (input_once(l, c) == (ssize_t)WS_FO_READ_CHUNK &&
           (c->state == WS_FO_C_TLS || c->state == WS_FO_C_UPGRADE || c->state == WS_FO_C_OPEN))
        ;
}

void ws_fo_conn_event(ws_fo_loop_t *l, ws_fo_conn_t *c, uint32_t events)
{
    switch (c->state) {
    case WS_FO_C_CONNECTING:
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connected(l, c);
        return;
    case WS_FO_C_TLS:
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            input(l, c); /* feeds the handshake, then any records behind it */
        else
            tls_step(l, c);
        return;
    case WS_FO_C_UPGRADE:
    case WS_FO_C_OPEN:
        if (events & EPOLLOUT)
            ws_fo_conn_flush(l, c);
        if (c->state != WS_FO_C_DEAD && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            input(l, c);
        return;
    default:
        return;
    }
}
