/*
 * A deliberately minimal epoll broadcast server: the reference point for "what this machine
 * allows" in bench/compare.sh, not a product. One thread, level-triggered epoll. Each loop
 * iteration reads every ready socket, appends every complete message to its room's batch
 * (the server frame built once), and then writes each room's whole batch to each member
 * with one write(); what the socket does not take waits in that member's buffer until
 * EPOLLOUT. Same semantics as the other peers: every message to everyone in the room, the
 * sender included, text stays text, binary stays binary.
 *
 * What it leaves out on purpose (uringws does all of these): UTF-8 validation, fragmented
 * messages (closed with 1003), idle and handshake timeouts, HTTP error pages beyond 400,
 * per-core scaling. A member whose buffer passes 64 MiB is closed.
 *
 * ws://host:PORT/<room>: the room is the path after '/' ("/" is "lobby"), not decoded.
 * Usage: server PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/base64.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEAD    8192u
#define MAX_MESSAGE (16u << 20)
#define MAX_OUT     (64u << 20)

struct buf {
    uint8_t *p;
    size_t len, cap;
};

struct room;

struct conn {
    int fd;
    int open;   /* handshake done */
    int dead;   /* closed this iteration: freed after the flush */
    int polled; /* EPOLLOUT registered */
    struct room *room;
    size_t slot; /* index in room->members */
    struct buf in, out;
    struct conn *next_dead;
};

struct room {
    struct room *next, *next_dirty;
    char name[64];
    struct conn **members;
    size_t n, cap;
    struct buf batch;
    int dirty;
};

static int ep;
static struct room *rooms, *dirty;
static struct conn *graveyard;

static int buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static void buf_consume(struct buf *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static struct room *room_get(const char *name, size_t len)
{
    struct room *r;
    if (len == 0) {
        name = "lobby";
        len = 5;
    }
    if (len >= sizeof(r->name))
        return NULL;
    for (r = rooms; r; r = r->next)
        if (strlen(r->name) == len && !memcmp(r->name, name, len))
            return r;
    if (!(r = calloc(1, sizeof(*r))))
        return NULL;
    memcpy(r->name, name, len);
    r->next = rooms;
    rooms = r;
    return r;
}

static int room_join(struct room *r, struct conn *c)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct conn **m = realloc(r->members, cap * sizeof(*m));
        if (!m)
            return -1;
        r->members = m;
        r->cap = cap;
    }
    c->room = r;
    c->slot = r->n;
    r->members[r->n++] = c;
    return 0;
}

static void room_leave(struct conn *c)
{
    struct room *r = c->room;
    if (!r)
        return;
    r->members[c->slot] = r->members[--r->n];
    r->members[c->slot]->slot = c->slot;
    c->room = NULL;
}

static void conn_kill(struct conn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    room_leave(c);
    close(c->fd);
    c->next_dead = graveyard;
    graveyard = c;
}

/* Server frame header for a payload of n bytes; returns its length. */
static size_t frame_head(uint8_t *h, int opcode, size_t n)
{
    h[0] = 0x80 | (uint8_t)opcode;
    if (n < 126) {
        h[1] = (uint8_t)n;
        return 2;
    }
    if (n < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    return 10;
}

static void send_now(struct conn *c, const uint8_t *p, size_t n);

static void send_control(struct conn *c, int opcode, const uint8_t *p, size_t n)
{
    uint8_t f[2 + 125];
    size_t h = frame_head(f, opcode, n);
    memcpy(f + h, p, n);
    send_now(c, f, h + n);
}

static void close_with(struct conn *c, uint16_t code)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_control(c, 8, b, 2);
    conn_kill(c);
}

/* Writes now when nothing is queued, else queues; a partial write queues the rest. */
static void send_now(struct conn *c, const uint8_t *p, size_t n)
{
    if (c->dead)
        return;
    if (c->out.len == 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0 && errno != EAGAIN) {
            conn_kill(c);
            return;
        }
        if (w < 0)
            w = 0;
        p += w;
        n -= (size_t)w;
        if (n == 0)
            return;
    }
    if (c->out.len + n > MAX_OUT || buf_put(&c->out, p, n) < 0) {
        fprintf(stderr, "member too slow: closed\n");
        conn_kill(c);
        return;
    }
    if (!c->polled) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->polled = 1;
    }
}

static const char *header(const char *head, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n"))
        if (!strncasecmp(l + 2, name, n) && l[2 + n] == ':') {
            const char *v = l + 3 + n;
            while (*v == ' ')
                v++;
            return v;
        }
    return NULL;
}

static void handshake(struct conn *c)
{
    uint8_t *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in.len > MAX_HEAD)
            conn_kill(c);
        return;
    }
    size_t head_len = (size_t)(end - c->in.p) + 4;
    end[2] = 0; /* the head is a string up to the last CRLF */
    const char *head = (const char *)c->in.p, *key = header(head, "Sec-WebSocket-Key");
    const char *path = strchr(head, ' ');
    if (strncmp(head, "GET ", 4) || !key || !path || path[1] != '/') {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";
        send_now(c, (const uint8_t *)bad, sizeof(bad) - 1);
        conn_kill(c);
        return;
    }
    size_t room_len = strcspn(path + 2, " ?");
    size_t key_len = strcspn(key, " \r");
    uint8_t in[128], digest[SHA_DIGEST_LENGTH];
    char resp[256], accept[32];
    if (key_len > 64 || !(c->room = room_get(path + 2, room_len)))
        return conn_kill(c);
    memcpy(in, key, key_len);
    memcpy(in + key_len, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    SHA1(in, key_len + 36, digest);
    EVP_EncodeBlock((uint8_t *)accept, digest, sizeof(digest));
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    struct room *r = c->room;
    c->room = NULL;
    if (room_join(r, c) < 0)
        return conn_kill(c);
    c->open = 1;
    buf_consume(&c->in, head_len);
    send_now(c, (const uint8_t *)resp, (size_t)n);
}

/* Parses every complete frame in c->in: data goes into the room's batch. */
static void frames(struct conn *c)
{
    size_t off = 0;
    while (!c->dead) {
        uint8_t *p = c->in.p + off;
        size_t avail = c->in.len - off, h = 2;
        if (avail < 2)
            break;
        int fin = p[0] & 0x80, opcode = p[0] & 0x0f;
        uint64_t n = p[1] & 0x7f;
        if (!(p[1] & 0x80) || (p[0] & 0x70))
            return close_with(c, 1002);
        if (n == 126) {
            if (avail < 4)
                break;
            n = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (n == 127) {
            if (avail < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | p[2 + i];
            h = 10;
        }
        if (n > MAX_MESSAGE)
            return close_with(c, 1009);
        if (avail < h + 4 + n)
            break;
        uint8_t *mask = p + h, *data = p + h + 4;
        for (uint64_t i = 0; i < n; i++)
            data[i] ^= mask[i & 3];
        off += h + 4 + n;
        if (opcode == 8)
            return close_with(c, 1000);
        if (opcode == 9) {
            send_control(c, 10, data, n);
            continue;
        }
        if (opcode == 10)
            continue;
        if (!fin || (opcode != 1 && opcode != 2))
            return close_with(c, 1003);
        struct room *r = c->room;
        uint8_t fh[10];
        size_t fl = frame_head(fh, opcode, n);
        if (buf_put(&r->batch, fh, fl) < 0 || buf_put(&r->batch, data, n) < 0)
            return conn_kill(c);
        if (!r->dirty) {
            r->dirty = 1;
            r->next_dirty = dirty;
            dirty = r;
        }
    }
    if (!c->dead && off)
        buf_consume(&c->in, off);
}

static void on_read(struct conn *c)
{
    for (;;) {
        if (c->in.cap - c->in.len < 65536) {
            uint8_t *q = realloc(c->in.p, c->in.len + 65536);
            if (!q)
                return conn_kill(c);
            c->in.p = q;
            c->in.cap = c->in.len + 65536;
        }
        ssize_t r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            return conn_kill(c);
        if (r < 0)
            break;
        c->in.len += (size_t)r;
        if ((size_t)r < 65536)
            break;
    }
    if (!c->open)
        handshake(c);
    if (c->open && !c->dead)
        frames(c);
}

static void on_write(struct conn *c)
{
    ssize_t w = write(c->fd, c->out.p, c->out.len);
    if (w < 0 && errno != EAGAIN)
        return conn_kill(c);
    if (w > 0)
        buf_consume(&c->out, (size_t)w);
    if (c->out.len == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->polled = 0;
    }
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct conn *c = calloc(1, sizeof(*c));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
    }
}

/* One write of each dirty room's batch to each member. */
static void flush(void)
{
    while (dirty) {
        struct room *r = dirty;
        dirty = r->next_dirty;
        r->dirty = 0;
        for (size_t i = 0; i < r->n;) {
            struct conn *c = r->members[i];
            send_now(c, r->batch.p, r->batch.len);
            if (!c->dead) /* a killed member was swapped out of slot i */
                i++;
        }
        r->batch.len = 0;
    }
    while (graveyard) {
        struct conn *c = graveyard;
        graveyard = c->next_dead;
        free(c->in.p);
        free(c->out.p);
        free(c);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4096) < 0) {
        perror("listen");
        return 1;
    }
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    fprintf(stderr, "epoll-min: listening on %s\n", argv[1]);
    struct epoll_event evs[1024];
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                on_accept(lfd);
                continue;
            }
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_read(c);
            if (!c->dead && (evs[i].events & EPOLLOUT))
                on_write(c);
        }
        flush();
    }
}
