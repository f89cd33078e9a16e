/* An outbound Redis connection (net/redis.h). States: connecting (IORING_OP_CONNECT), then
 * AUTH/SELECT answered (handshake), then up. One send in flight at a time (the queued
 * commands go out in one send), one recv armed while connected. A failure anywhere ends the
 * connection: the socket is shut down and closed (its stale completions are recognised by
 * generation), the owner hears `down`, and a timer reconnects after a backoff doubling from
 * 100 ms to 5 s. */
#include "redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define DEAD_MS        10000 /* connect, handshake, or unacknowledged bytes: then it failed */

enum { OP_CONNECT, OP_SEND, OP_RECV };

static void arm(ws_redis_t *r, unsigned op)
{
    struct io_uring_sqe *sqe = ws_worker_sqe(r->c);
    if (op == OP_CONNECT) {
        io_uring_prep_connect(sqe, r->fd, (const struct sockaddr *)&r->target->addr,
                              r->target->addr_len);
    } else if (op == OP_SEND) {
        io_uring_prep_send(sqe, r->fd, r->snd + r->snd_off, r->snd_len - r->snd_off, MSG_NOSIGNAL);
        r->send_armed = true;
    } else {
        io_uring_prep_recv(sqe, r->fd, r->rbuf, sizeof(r->rbuf), 0);
        r->recv_armed = true;
    }
    io_uring_sqe_set_data64(sqe, ws_ud_make(r->kind, r->id * 4 + op, r->gen));
}

/* Ends the socket (r->fd >= 0) and everything tied to it. */
static void end_socket(ws_redis_t *r)
{
    /* SQEs not yet submitted name the fd by number: submit them before the number can be
     * reused. Then shutdown completes what is in flight; their generation is old. */
    io_uring_submit(&r->c->ring);
    shutdown(r->fd, SHUT_RDWR);
    close(r->fd);
    r->fd = -1;
    r->up = false;
    r->handshake = 0;
    r->gen++;
    r->send_armed = r->recv_armed = false;
    r->out_len = r->snd_len = r->snd_off = 0;
    redisReaderFree(r->reader);
    r->reader = NULL;
}

static void fail(ws_redis_t *r, const char *why)
{
    if (r->fd < 0)
        return;
    bool was_up = r->up;
    end_socket(r);
    if (r->closing)
        return;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS)
        r->backoff_ms = BACKOFF_MAX_MS;
    ws_log_warn("backplane: %s connection to %s %s: %s; retrying in %u ms", r->name,
                r->target->where, was_up ? "lost" : "failed", why, r->backoff_ms);
    ws_timer_add(&r->c->wheel, &r->timer, r->c->now_ms + r->backoff_ms);
    r->ops->down(r->c, r, why);
}

static int append(ws_redis_t *r, const char *p, size_t n)
{
    if (r->out_len + n > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 4096;
        while (cap < r->out_len + n)
            cap *= 2;
        char *o = realloc(r->out, cap);
        if (!o)
            return -ENOMEM;
        r->out = o;
        r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
    return 0;
}

/* With no send in flight: what was collected becomes the next send. */
static void flush(ws_redis_t *r)
{
    if (r->send_armed || r->out_len == 0)
        return;
    char *t = r->snd;
    size_t cap = r->snd_cap;
    r->snd = r->out;
    r->snd_cap = r->out_cap;
    r->snd_len = r->out_len;
    r->snd_off = 0;
    r->out = t;
    r->out_cap = cap;
    r->out_len = 0;
    arm(r, OP_SEND);
}

static int queue(ws_redis_t *r, int argc, const char **argv, const size_t *lens)
{
    char *cmd;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0)
        return -ENOMEM;
    int rc = append(r, cmd, (size_t)n);
    free(cmd);
    if (rc == 0)
        flush(r);
    return rc;
}

int ws_redis_command(ws_redis_t *r, int argc, const char **argv, const size_t *lens)
{
    if (!r->up)
        return -ENOTCONN;
    return queue(r, argc, argv, lens);
}

static void start(ws_redis_t *r)
{
    int fd = socket(r->target->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r->fd = -1;
        ws_log_error("backplane: socket: %s", strerror(errno));
        ws_timer_add(&r->c->wheel, &r->timer, r->c->now_ms + BACKOFF_MAX_MS);
        return;
    }
    /* A Redis that vanishes without a reset (a partition, a dead host) is noticed: idle
     * connections by keepalive probes, unacknowledged sends by TCP_USER_TIMEOUT. */
    int one = 1, idle = 5, intvl = 2, cnt = 3, user_timeout = DEAD_MS;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
    r->fd = fd;
    r->reader = redisReaderCreate();
    if (!r->reader) {
        fail(r, "out of memory");
        return;
    }
    arm(r, OP_CONNECT);
    ws_timer_add(&r->c->wheel, &r->timer, r->c->now_ms + DEAD_MS); /* connect and handshake */
}

static void on_timer(void *ctx, ws_timer_t *t)
{
    (void)ctx;
    ws_redis_t *r = ws_container_of(t, ws_redis_t, timer);
    if (r->closing)
        return;
    if (r->fd < 0) {
        r->reconnects++;
        start(r);
    } else if (!r->up) {
        fail(r, "no answer within 10 s");
    }
}

static void became_up(ws_redis_t *r)
{
    ws_timer_del(&r->c->wheel, &r->timer);
    r->up = true;
    r->backoff_ms = 0;
    ws_log_info("backplane: %s connection to %s up", r->name, r->target->where);
    r->ops->up(r->c, r);
}

/* Connected: AUTH and SELECT go first; their replies are the connection's. */
static void connected(ws_redis_t *r)
{
    const ws_redis_target_t *t = r->target;
    if (t->pass[0]) {
        const char *argv[3] = {"AUTH", t->user[0] ? t->user : t->pass, t->pass};
        size_t lens[3] = {4, strlen(argv[1]), strlen(t->pass)};
        if (queue(r, t->user[0] ? 3 : 2, argv, lens) < 0)
            return fail(r, "out of memory");
        r->handshake++;
    }
    if (t->db > 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", t->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, strlen(db)};
        if (queue(r, 2, argv, lens) < 0)
            return fail(r, "out of memory");
        r->handshake++;
    }
    arm(r, OP_RECV);
    if (r->handshake == 0)
        became_up(r);
}

static void handshake_reply(ws_redis_t *r, redisReply *rep)
{
    if (rep->type == REDIS_REPLY_ERROR) {
        /* The error text names the command, never the password. */
        char why[160];
        snprintf(why, sizeof why, "AUTH or SELECT refused: %.120s", rep->str);
        freeReplyObject(rep);
        return fail(r, why);
    }
    freeReplyObject(rep);
    if (--r->handshake == 0)
        became_up(r);
}

static void received(ws_redis_t *r, int n)
{
    if (n <= 0)
        return fail(r, n == 0 ? "closed by Redis" : strerror(-n));
    if (redisReaderFeed(r->reader, r->rbuf, (size_t)n) != REDIS_OK)
        return fail(r, "reply buffer");
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(r->reader, &rep) != REDIS_OK)
            return fail(r, "malformed reply");
        if (!rep)
            break;
        uint32_t gen = r->gen;
        if (r->handshake)
            handshake_reply(r, rep);
        else {
            r->ops->reply(r->c, r, rep);
            freeReplyObject(rep);
        }
        if (r->gen != gen || r->fd < 0)
            return; /* the owner or a failure ended this connection */
    }
    arm(r, OP_RECV);
}

static void sent(ws_redis_t *r, int n)
{
    r->send_armed = false;
    if (n <= 0)
        return fail(r, n == 0 ? "send returned 0" : strerror(-n));
    r->snd_off += (size_t)n;
    if (r->snd_off < r->snd_len)
        arm(r, OP_SEND); /* a short send: the rest of the same bytes */
    else
        flush(r);
}

void ws_redis_cqe(ws_redis_t *r, const ws_cqe_t *e)
{
    if (!ws_ud_gen_eq(e->ud, r->gen) || r->fd < 0 || r->closing)
        return; /* a completion of an earlier connection */
    switch (ws_ud_idx(e->ud) % 4) {
    case OP_CONNECT:
        if (e->res < 0)
            return fail(r, strerror(-e->res));
        connected(r);
        break;
    case OP_SEND:
        sent(r, e->res);
        break;
    default:
        r->recv_armed = false;
        received(r, e->res);
        break;
    }
}

void ws_redis_init(ws_redis_t *r, ws_worker_t *c, const ws_redis_target_t *t,
                   const ws_redis_ops_t *ops, void *owner, const char *name, unsigned kind,
                   uint32_t id)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->ops = ops;
    r->owner = owner;
    r->target = t;
    r->name = name;
    r->fd = -1;
    r->kind = kind;
    r->id = id;
    ws_timer_init(&r->timer, on_timer);
    start(r);
}

void ws_redis_reset(ws_redis_t *r, const char *why)
{
    fail(r, why);
}

void ws_redis_close(ws_redis_t *r)
{
    r->closing = true;
    ws_timer_del(&r->c->wheel, &r->timer);
    if (r->fd >= 0)
        end_socket(r); /* without a socket, its failure reset the rest already */
}

void ws_redis_open(ws_redis_t *r)
{
    if (!r->closing)
        return;
    r->closing = false;
    r->backoff_ms = 0;
    start(r);
}

void ws_redis_free(ws_redis_t *r)
{
    redisReaderFree(r->reader);
    r->reader = NULL;
    free(r->out);
    free(r->snd);
    r->out = r->snd = NULL;
}
